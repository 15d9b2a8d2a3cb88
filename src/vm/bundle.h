/* Export and import of whole VMs as self-contained folders ("bundles"):
 * vm.json, disks/, checkpoints/, bases/ (parents that lived outside the VM
 * folder), boot/ (the kernel and initrd of direct kernel boot), and
 * manifest.json (SHA-256 and size of every file, the chain
 * graph, the format version). */
#ifndef HVM_VM_BUNDLE_H
#define HVM_VM_BUNDLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/vm.h"

#define BUNDLE_FORMAT 1

struct bundle_progress {
    void (*fn)(void *opaque, uint64_t done, uint64_t total);
    void *opaque;
};

struct export_params {
    const char *dest;
    const char *checkpoint; /* NULL: the whole tree */
    bool flatten;
    const struct bundle_progress *progress;
    /* A running VM: the id of a checkpoint just taken online. The bundle's
     * current state is that moment (Saved, with its memory), the leaves the
     * running VM writes are left out. */
    const char *live_checkpoint;
};
int vm_export(struct vm *vm, const struct export_params *p);

enum import_mode { IMPORT_REGISTER, IMPORT_RESTORE, IMPORT_COPY };

struct import_params {
    const char *dir;
    enum import_mode mode;
    const char *name; /* NULL: the bundle's */
    bool dry_run;
    const struct bundle_progress *progress;
    /* What was left out (files a bundle may not contain, kernel or initrd
     * paths of the exporting host): strings appended to this array, which
     * the caller owns; NULL: not reported. */
    json_t *notes;
    /* "OLD=NEW[,OLD2=NEW2]": adapters on switch OLD, now and in every
     * checkpoint, move to NEW (a switch this host has); NULL: none. */
    const char *map_switch;
};
/* Validates the whole bundle first; every problem goes into *problems (an
 * array of strings, caller frees) and nothing in the store changes unless
 * there are none. Only what a bundle may contain is copied: vm.json, the
 * layers the manifest's chain graph names, the memory states the document
 * names, kernel and initrd under boot/. A journal, lock or run/ in the
 * bundle is a problem; any other file listed in the manifest is left out
 * with a note (a problem in register mode, which cannot leave it out).
 * Returns 0, or -EINVAL when problems were found. */
int vm_import(struct store *s, const struct import_params *p, json_t **problems);

/* Relocates a VM's folder (copy, verify, switch, remove the old). */
int vm_move(struct store *s, const char *name, const char *dest, bool with_base,
            const struct bundle_progress *progress);
/* Finishes or undoes moves and imports interrupted by a crash. */
void store_recover(struct store *s);

#endif
