/* Commands of the VM nouns: hvm vm, hvm checkpoint, hvm base. */
#ifndef HVM_CLI_VM_COMMON_H
#define HVM_CLI_VM_COMMON_H

#include <stdbool.h>

#include "vm/store.h"

struct cli_args;

int cmd_vm_create(const struct cli_args *a);
int cmd_vm_list(const struct cli_args *a);
int cmd_vm_show(const struct cli_args *a);
int cmd_vm_set(const struct cli_args *a);
int cmd_vm_rename(const struct cli_args *a);
int cmd_vm_delete(const struct cli_args *a);
int cmd_vm_check(const struct cli_args *a);
int cmd_vm_serve(const struct cli_args *a);
int cmd_vm_export(const struct cli_args *a);
int cmd_vm_import(const struct cli_args *a);
int cmd_vm_move(const struct cli_args *a);
int cmd_vm_migrate(const struct cli_args *a);
/* hvm migrate-receive [--store DIR]: the destination's end of vm migrate (hidden). */
int cli_migrate_receive(int argc, char **argv);
int cmd_vm_start(const struct cli_args *a);
int cmd_vm_stop(const struct cli_args *a);
int cmd_vm_turn_off(const struct cli_args *a);
int cmd_vm_pause(const struct cli_args *a);
int cmd_vm_resume(const struct cli_args *a);
int cmd_vm_save(const struct cli_args *a);
int cmd_vm_console(const struct cli_args *a);
int cmd_vm_screenshot(const struct cli_args *a);
int cmd_vm_send_keys(const struct cli_args *a);
/* hvm vm console --vnc [--listen ADDR:PORT] (vm_screen.c). */
int vm_console_vnc(const struct cli_args *a);
int cmd_checkpoint_take(const struct cli_args *a);
int cmd_checkpoint_list(const struct cli_args *a);
int cmd_checkpoint_revert(const struct cli_args *a);
int cmd_checkpoint_apply(const struct cli_args *a);
int cmd_checkpoint_rename(const struct cli_args *a);
int cmd_checkpoint_show(const struct cli_args *a);
int cmd_checkpoint_delete(const struct cli_args *a);
int cmd_base_list(const struct cli_args *a);
int cmd_base_remove(const struct cli_args *a);
int cmd_host_start(const struct cli_args *a);
int cmd_host_stop(const struct cli_args *a);
int cmd_switch_create(const struct cli_args *a);
int cmd_switch_list(const struct cli_args *a);
int cmd_switch_show(const struct cli_args *a);
int cmd_switch_delete(const struct cli_args *a);
int cmd_switch_up(const struct cli_args *a);
int cmd_switch_down(const struct cli_args *a);
int cmd_switch_forward(const struct cli_args *a);
int cmd_switch_diagnose(const struct cli_args *a);
int cmd_switch_set(const struct cli_args *a);
int cmd_web_serve(const struct cli_args *a); /* web_cmd.c */

/* Opens the store or prints why; returns EXIT_OK or EXIT_ERROR. A folder
 * that is no store yet is refused. */
int vm_cli_open_store(const char *dir, struct store *s);
/* The same, with what to do about a missing store (see store_open_how);
 * "created store DIR" on stderr when it was made. */
int vm_cli_open_store_how(const char *dir, enum store_missing how, struct store *s);
/* For listings: the default store may be missing (nothing to list), a
 * store named by --store or $HVM_STORE may not. */
int vm_cli_open_listed_store(const char *dir, struct store *s);
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
