/* The store's side of migrating a VM between hosts (hvm vm migrate): what
 * the destination must check (the facts of the VM), the destination's
 * report and adoption of a VM folder on shared storage, the source's
 * hand-over of its entry, and the "moved to HOST" records the source
 * store keeps (moved.json) so that vm list and vm show can say where a VM
 * went. The control channel and the runtime steps are in src/cli. */
#ifndef HVM_VM_MIGRATE_H
#define HVM_VM_MIGRATE_H

#include <jansson.h>
#include <stdbool.h>

#include "vm/vm.h"

/* The protocol of the control channel; both sides must speak the same. */
#define VM_MIGRATE_PROTOCOL 1

/* What the destination needs to judge and adopt the VM: name, id, state,
 * folder (real path, which must be the same on both hosts), switches of
 * every configuration (now and checkpoints), the files outside the folder
 * it needs (bases, kernel, initrd, firmware), the accelerator it ran with.
 * NULL with the error recorded. */
json_t *vm_migrate_facts(struct vm *vm);

/* The destination's compatibility report for facts: {"version", "host",
 * "switches": {name: bool}, "files": {path: bool}, "folder_visible",
 * "name_free", "free_bytes", "accel", "cpu"}; the refusals are appended
 * to problems (strings). */
json_t *vm_migrate_check(struct store *s, json_t *facts, const char *version, json_t *problems);

/* Destination: registers the shared folder of facts as the VM facts.name
 * (the store's entry becomes a link to it, any "moved" record of that name
 * goes, a base is registered with the VM as a child). */
int vm_migrate_adopt(struct store *s, json_t *facts);
/* Destination: the VM runs here (or was taken off): the marker that lets
 * store_recover undo an adoption whose hvm died goes. */
void vm_migrate_adopted(struct store *s, const char *name);
/* Destination: undoes vm_migrate_adopt (the entry goes, the folder stays). */
int vm_migrate_unadopt(struct store *s, json_t *facts);

/* Source: the VM's entry leaves the store's list (renamed aside) while the
 * destination takes it; reattach puts it back; finish drops it for good
 * and records where the VM went ({"host", "store", "when", "id"}). */
int vm_migrate_detach(struct store *s, const char *name);
int vm_migrate_reattach(struct store *s, const char *name);
int vm_migrate_finish(struct store *s, const char *name, json_t *record);

/* Finishes what an hvm killed during a migration left (store_recover):
 * the destination's entry of a VM it never ran goes, the source's entry
 * of a VM that runs nowhere comes back. */
void vm_migrate_recover(struct store *s);

/* The "moved" record of name (a new reference), or NULL. */
json_t *store_moved_get(struct store *s, const char *name);
/* Every record: {name: record} (a new reference; empty when none). */
json_t *store_moved_all(struct store *s);

#endif
