/* The checkpoint tree of a VM: take, revert, apply, rename, delete.
 *
 * Each checkpoint holds a copy of the configuration whose drives name the
 * frozen disk layers of that moment, and optionally a memory state. "Now"
 * is the VM's configuration with a writable differencing leaf per drive,
 * child of its parent checkpoint's layers. A deleted checkpoint whose layer
 * still has two or more children stays as a hidden node; with one child
 * left its layer is folded into that child by rebase; with none it goes. */
#ifndef HVM_VM_CHECKPOINT_H
#define HVM_VM_CHECKPOINT_H

#include <stdbool.h>

#include "vm/vm.h"

/* The next document after a checkpoint of now, for the offline take and
 * the runtime's online one: a new node (id written to id; name NULL gives
 * "VM - (YYYY-MM-DD HH:MM:SS)") holding now's configuration, no memory
 * yet, and now moved onto fresh differencing leaves whose creation is
 * appended to steps. NULL when out of memory. */
json_t *vm_checkpoint_next(struct vm *vm, const char *name, json_t *steps, char id[37]);
/* Takes a checkpoint of a VM that is not running (a Saved VM's memory
 * state goes with it). *id_out (may be NULL) receives the new id
 * (malloc'd). */
int vm_checkpoint_take(struct vm *vm, const char *name, char **id_out);
/* Back to now's parent checkpoint: fresh leaves, its configuration. */
int vm_checkpoint_revert(struct vm *vm);
/* To any checkpoint; take_first takes a checkpoint of now before. */
int vm_checkpoint_apply(struct vm *vm, json_t *cp, bool take_first);
int vm_checkpoint_rename(struct vm *vm, json_t *cp, const char *name);
int vm_checkpoint_delete(struct vm *vm, json_t *cp, bool subtree);
/* Deletes a checkpoint without folding its layer yet (allowed on a running
 * VM, whose leaf may be the layer's only child): it becomes a hidden node
 * and its memory state goes. */
int vm_checkpoint_hide(struct vm *vm, const char *id);

/* Folds hidden nodes that no longer need to stay (a deletion interrupted
 * between its commits); for a VM that is not running. */
int vm_checkpoint_fold(struct vm *vm);

/* The visible parent of a node: its parent, skipping hidden nodes. */
const char *vm_checkpoint_visible_parent(json_t *doc, const char *id);
/* Bytes the checkpoint's own layers take on disk. */
unsigned long long vm_checkpoint_space(const struct vm *vm, json_t *cp);

#endif
