/* Commands of the VM nouns: hvm vm, hvm checkpoint, hvm base. */
#ifndef HVM_CLI_VM_COMMON_H
#define HVM_CLI_VM_COMMON_H

#include <stdbool.h>

#include "vm/store.h"

int cmd_vm(int argc, char **argv);
int cmd_vm_create(int argc, char **argv);
int cmd_vm_list(int argc, char **argv);
int cmd_vm_show(int argc, char **argv);
int cmd_vm_set(int argc, char **argv);
int cmd_vm_rename(int argc, char **argv);
int cmd_vm_delete(int argc, char **argv);
int cmd_vm_check(int argc, char **argv);
int cmd_vm_serve(int argc, char **argv);
int cmd_vm_export(int argc, char **argv);
int cmd_vm_import(int argc, char **argv);
int cmd_vm_move(int argc, char **argv);
int cmd_vm_start(int argc, char **argv);
int cmd_vm_stop(int argc, char **argv);
int cmd_vm_turn_off(int argc, char **argv);
int cmd_vm_pause(int argc, char **argv);
int cmd_vm_resume(int argc, char **argv);
int cmd_vm_save(int argc, char **argv);
int cmd_vm_console(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_base(int argc, char **argv);
int cmd_host(int argc, char **argv);

/* Opens the store or prints why; returns EXIT_OK or EXIT_ERROR. A folder
 * that is no store yet is refused. */
int vm_cli_open_store(const char *dir, struct store *s);
/* The same, with what to do about a missing store (see store_open_how);
 * "created store DIR" on stderr when it was made. */
int vm_cli_open_store_how(const char *dir, enum store_missing how, struct store *s);
/* For listings: the default store may be missing (nothing to list), a
 * store named by --store or $HVM_STORE may not. */
int vm_cli_open_listed_store(const char *dir, struct store *s);
/* Parses --store DIR, --json (when as_json is not NULL), --help and exactly
 * want positional arguments (from argv[optind]; -1: any number). Returns 0, -1 after
 * printing the help, -2 after printing a usage error. */
int vm_cli_parse(int argc, char **argv, const char *usage, int want, const char **store_dir,
                 bool *as_json);
/* Opens the store and the VM (taking its lock), prints a notice the VM has
 * for the user; on failure prints why and returns EXIT_ERROR. */
struct vm;
int vm_cli_open(const char *store_dir, const char *name, struct store *s, struct vm **vm);

/* What hvm vm save, stop and turn-off do to a running VM, for them and for
 * hvm host stop. Each closes vm (its worker needs the lock to record how
 * the VM ended), waits for the worker to end and sets *final to the state
 * the VM reached. vm_cli_shutdown waits timeout_s for the guest to power
 * off, then fails with -ETIMEDOUT or, with force, turns it off and
 * returns 1. */
int vm_cli_save(struct store *s, struct vm *vm, const char **final);
int vm_cli_shutdown(struct store *s, struct vm *vm, int timeout_s, bool force, const char **final);
int vm_cli_turn_off(struct store *s, struct vm *vm, const char **final);

#endif
