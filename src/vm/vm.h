/* A VM: one folder with vm.json (configuration, checkpoint tree, "now"),
 * disks/ and checkpoints/ (memory states). The document is kept as JSON
 * (jansson) in memory; every change is a whole new document committed by
 * one atomic replace of vm.json, driven by a journal (see journal.c). */
#ifndef HVM_VM_VM_H
#define HVM_VM_VM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/store.h"

#define VM_FORMAT 1

struct vm {
    struct store *store;
    char *dir;   /* absolute folder */
    char *name;
    json_t *doc; /* vm.json */
    int lock_fd;
    char notice[512]; /* something the user should hear (a dead worker) */
};

/* Opens a VM by name: takes its lock (a second hvm on the same VM fails
 * with "busy"), finishes an interrupted operation from its journal, loads
 * and validates vm.json. */
int vm_open(struct store *s, const char *name, struct vm **out);
void vm_close(struct vm *vm);
/* Opens a VM by folder (the worker, which has no store); wait: block on the
 * lock instead of failing with "busy". */
int vm_open_dir(const char *dir, bool wait, struct vm **out);

/* Absolute path of a path stored in vm.json (relative to the VM folder). */
char *vm_path(const struct vm *vm, const char *rel);

/* Accessors on the document. */
json_t *vm_config(const struct vm *vm);          /* now's configuration */
json_t *vm_checkpoints(const struct vm *vm);     /* array */
json_t *vm_checkpoint_find(const struct vm *vm, const char *key, int *err); /* name or id prefix */
json_t *vm_checkpoint_by_id(json_t *doc, const char *id);
const char *vm_state(const struct vm *vm);

/* A multi-step change: the next document, disk steps to run before it is
 * committed, files to delete after. See journal.c. Steals next, steps and
 * remove. */
int vm_commit(struct vm *vm, const char *op, json_t *next, json_t *steps, json_t *remove);
/* The same in two halves, for a change with a part done elsewhere (the
 * running VM's worker switching leaves): the journal is written first; if
 * the command dies before vm_journal_commit, recovery commits only when
 * guard ({"leaves": [absolute paths]}) is met by the worker's record
 * run/drives.json, and otherwise rolls back. Steals next, steps, remove,
 * guard. */
int vm_journal_begin(struct vm *vm, const char *op, json_t *next, json_t *steps, json_t *remove,
                     json_t *guard, json_t **journal);
int vm_journal_commit(struct vm *vm, json_t *journal);
void vm_journal_abandon(struct vm *vm, json_t *journal);

/* Journal steps. Every path is relative to the VM folder and inside it
 * (checked when the journal is written and before it is replayed); a copy
 * from an absolute path is made before the journal is written. */
json_t *vm_step_diff(const char *parent, const char *child);
/* Rebases child onto the parent of below (standalone if it has none). */
json_t *vm_step_rebase(const char *child, const char *below);
/* Merges the leaf into parent and renames parent over it (disk_merge_up). */
json_t *vm_step_merge_up(const char *leaf, const char *parent);
json_t *vm_step_merge_up(const char *leaf, const char *parent);
json_t *vm_step_copy(const char *from, const char *to);
json_t *vm_step_create(const char *file, uint64_t size);
/* Runs the journal left by an interrupted command, if any, as
 * vm_journal_decide (vm/validate.h) decides; a journal it refuses (or that
 * names files through a symlink or outside the folder) is left in place
 * and fails the open, or, after vm_journal_refusal_report(true) (vm check),
 * is left for vm_journal_problems to list. */
int vm_journal_recover(struct vm *vm);
void vm_journal_refusal_report(bool on);
/* Appends why the VM's journal, if one is left, is not replayed; returns
 * how many problems. */
size_t vm_journal_problems(struct vm *vm, json_t *problems);

struct vm_create_params {
    const char *name;
    int cpus;
    uint64_t memory;
    const char *from;     /* base image: the drive is a differencing child */
    const char *disk;     /* existing disk copied into the VM */
    uint64_t new_disk;    /* size of a new dynamic disk */
    const char **nics;    /* switch names */
    int n_nics;
    const char *clone;    /* another VM to link-clone */
    const char *clone_checkpoint;
    /* Set by vm_clone for vm_create: [{"slot", "layer": absolute path}],
     * each drive a differencing child of that layer (registered like a
     * base), and the adapters to give the VM ([{"switch", "mac"}]). */
    json_t *clone_drives;
    json_t *clone_nics;
    /* "bios" or "uefi"; NULL: VM_FIRMWARE_DEFAULT. */
    const char *firmware;
    bool secure_boot;
    /* Set by vm_clone: the variable store (absolute) the clone's copy is made from. */
    const char *clone_vars;
};
/* New VMs are UEFI machines, as Hyper-V's generation 2. */
#define VM_FIRMWARE_DEFAULT "uefi"
int vm_create(struct store *s, const struct vm_create_params *p);
/* A linked clone: differencing children of another VM's checkpoint layers,
 * which are registered like bases so that they are kept while used. */
int vm_clone(struct store *s, const struct vm_create_params *p);
/* Checks a VM (after its journal was recovered): tree invariants, chains,
 * files. Returns an array of problem strings (empty when clean). */
json_t *vm_verify(struct vm *vm);
int vm_delete(struct store *s, const char *name);
int vm_rename(struct store *s, const char *name, const char *new_name);

/* New unique names inside the VM folder. */
char *vm_new_disk_name(int slot);   /* "disks/<slot>-<8 hex>.vhd" */
void vm_random_mac(char out[18]);
void vm_now_string(char *buf, size_t len); /* local "YYYY-MM-DD HH:MM:SS" */

/* How a configuration's running guest reaches its disks: "vhost-user" or
 * "nbd" (see `hvm vm set --disk-io`). Part of the configuration, so that a
 * checkpoint's memory state is restored into the device model it was saved
 * from; configurations from before the choice existed say nothing and mean
 * "nbd", new VMs get "vhost-user". */
const char *vm_disk_io(json_t *config);
/* The drive in slot of a configuration ({"drives": [{"slot", "file"}]}), or NULL. */
json_t *vm_config_drive(json_t *config, json_int_t slot);
/* Does a JSON array of strings hold s (NULL: no)? */
bool vm_list_has(json_t *list, const char *s);
/* Deletes the VM file rel unless refs (vm_referenced_files) still names it. */
void vm_remove_unused(struct vm *vm, json_t *refs, const char *rel);
/* Appends a formatted problem to a list of strings (check, import). */
void vm_problem(json_t *list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Every layer file the VM references (now and checkpoints), relative. */
json_t *vm_referenced_files(json_t *doc);

/* Does a linked clone (another VM) build on this layer of the VM (relative
 * path)? Such layers are in the base registry with the clone as a child. */
bool vm_layer_cloned(struct vm *vm, const char *rel);
/* Refuses (EBUSY) to 'what' a VM that linked clones build on. */
int vm_refuse_if_cloned(struct vm *vm, const char *what);
/* Drops the registry entries (without children) of these layers (relative
 * paths), which are going away. */
void vm_forget_layers(struct vm *vm, json_t *files);

#endif
