/* Shared pieces of the command line: one cmd_<noun>_<verb>(args) per
 * command (its arguments parsed from the command table, table.h), output
 * helpers, the progress bar. Only cli/ prints. */
#ifndef HVM_CLI_CLI_H
#define HVM_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes: 0 success, 1 check found problems, 2 error. */
enum { EXIT_OK = 0, EXIT_PROBLEMS = 1, EXIT_ERROR = 2 };

struct cli_args;

/* Prints "hvm: <last error message>" and returns EXIT_ERROR. */
int cli_fail(void);
/* Who holds a disk file (owner.c). When message is a refused disk lock
 * (see util/filelock.h), a line naming the VM (drive, state) or the base
 * (its VMs) that holds the file, malloc'd; NULL otherwise. */
char *cli_owner_explain(const char *message);
/* Refuses (-EBUSY, message recorded) to 'what' (e.g. "merging X into it")
 * file when it is a registered base that VMs use, other than the VM that
 * holds user (a disk built on it; NULL: none). Consults only existing
 * stores: user's, store_dir or $HVM_STORE, the default. */
int cli_base_guard(const char *file, const char *user, const char *store_dir, const char *what);
/* Prints "hvm: <formatted>" and returns EXIT_ERROR. */
int cli_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses a size argument or fails with a message naming the option. */
int cli_size(const char *option, const char *text, uint64_t *out);
/* Dumps JSON to stdout, pretty, with a newline; takes the reference. */
int cli_print_json(json_t *value);

/* Progress bar on stderr when it is a terminal; silent otherwise. */
struct progress {
    const char *label;
    bool enabled;
    int last_permille;
};
void progress_init(struct progress *p, const char *label);
void progress_update(void *opaque, uint64_t done, uint64_t total);
void progress_done(struct progress *p);

struct disk;
/* Serves d over NBD on socket_path until SIGTERM/SIGINT, then flushes it.
 * Call cli_serve_signals first, before any slow set-up, so that a signal
 * arriving early is not lost. */
void cli_serve_signals(void);
int cli_serve_disk(struct disk *d, const char *socket_path, bool read_only, const char *label);

int cmd_vhd_create(const struct cli_args *a);
int cmd_vhd_diff(const struct cli_args *a);
int cmd_vhd_info(const struct cli_args *a);
int cmd_vhd_check(const struct cli_args *a);
int cmd_vhd_repair(const struct cli_args *a);
int cmd_vhd_convert(const struct cli_args *a);
int cmd_vhd_merge(const struct cli_args *a);
int cmd_vhd_rebase(const struct cli_args *a);
int cmd_vhd_set_parent(const struct cli_args *a);
int cmd_vhd_compact(const struct cli_args *a);
int cmd_vhd_resize(const struct cli_args *a);
int cmd_vhd_serve(const struct cli_args *a);
int cmd_vhd_bench(const struct cli_args *a);

#endif
