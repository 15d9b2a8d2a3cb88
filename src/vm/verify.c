/* hvm vm check: the invariants of a VM folder. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vhd/check.h"
#include "vm/checkpoint.h"
#include "vm/firmware.h"
#include "vm/vm.h"

static bool same_file(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* A drive that is not on its parent node's layer is wrong only if it was
 * meant to be: its chain holds that layer further down, or it sits on
 * another layer of the VM. A disk that replaced the slot's disk ('vm set
 * --remove-disk' then '--new-disk'/'--add-disk') shares nothing with it. */
static bool links_into_vm(struct vm *vm, struct disk *disk, const char *ppath)
{
    for (struct disk *l = disk->parent; l; l = l->parent)
        if (same_file(l->path, ppath))
            return true;
    if (!disk->parent)
        return false;
    char *real = realpath(disk->parent->path, NULL), *dir = realpath(vm->dir, NULL);
    size_t n = dir ? strlen(dir) : 0;
    bool inside = real && dir && strncmp(real, dir, n) == 0 && real[n] == '/';
    free(real);
    free(dir);
    return inside;
}

/* Every drive of config opens as a whole chain, is structurally clean and,
 * where the parent node has a layer in the same slot, sits right on it. */
static void check_config(struct vm *vm, json_t *config, json_t *parent_config, const char *what,
                         json_t *out)
{
    const char *vars = vm_firmware_vars(config);
    char *vpath = vars ? vm_path(vm, vars) : NULL;
    struct stat vst;
    if (vars && (!vpath || stat(vpath, &vst) != 0))
        vm_problem(out, "%s: the UEFI variable store %s is missing", what, vars);
    else if (vars && !S_ISREG(vst.st_mode))
        vm_problem(out, "%s: the UEFI variable store %s is not a regular file", what, vars);
    free(vpath);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d) {
        const char *rel = json_string_value(json_object_get(d, "file"));
        json_int_t slot = json_integer_value(json_object_get(d, "slot"));
        char *path = vm_path(vm, rel);
        struct disk *disk;
        static struct vhd_check_report rep;
        if (!path || access(path, F_OK) != 0) {
            vm_problem(out, "%s: drive %lld: %s is missing", what, (long long)slot, rel ? rel : "?");
            free(path);
            continue;
        }
        vhd_check(path, &rep);
        if (rep.unreadable)
            vm_problem(out, "%s: drive %lld: %s", what, (long long)slot, rep.message);
        for (unsigned k = 0; k < rep.n_problems; k++)
            vm_problem(out, "%s: drive %lld: %s: %s", what, (long long)slot, rel, rep.problems[k]);
        if (disk_open(path, DISK_OPEN_READ_ONLY, &disk) < 0) {
            vm_problem(out, "%s: drive %lld: %s", what, (long long)slot, hvm_error_message());
        } else {
            json_t *pf = parent_config ? json_object_get(vm_config_drive(parent_config, slot), "file") : NULL;
            char *ppath = pf ? vm_path(vm, json_string_value(pf)) : NULL;
            if (ppath && strcmp(json_string_value(pf), rel) != 0 &&
                (!disk->parent || !same_file(disk->parent->path, ppath)) &&
                links_into_vm(vm, disk, ppath))
                vm_problem(out, "%s: drive %lld: %s is not a differencing child of %s", what,
                        (long long)slot, rel, json_string_value(pf));
            free(ppath);
            disk_close(disk);
        }
        free(path);
    }
}

static void check_tree(struct vm *vm, json_t *out)
{
    json_t *doc = vm->doc;
    size_t i, n = json_array_size(vm_checkpoints(vm));
    json_t *cp;
    json_array_foreach(vm_checkpoints(vm), i, cp) {
        const char *id = json_string_value(json_object_get(cp, "id"));
        const char *parent = json_string_value(json_object_get(cp, "parent"));
        char what[128];
        snprintf(what, sizeof what, "checkpoint '%s'", json_string_value(json_object_get(cp, "name")));
        if (!id) {
            vm_problem(out, "a checkpoint without an id");
            continue;
        }
        /* Walking up must end within n steps: otherwise the tree loops. */
        const char *p = parent;
        size_t steps = 0;
        while (p && steps <= n) {
            json_t *pc = vm_checkpoint_by_id(doc, p);
            if (!pc) {
                vm_problem(out, "%s: parent %s does not exist", what, p);
                break;
            }
            p = json_string_value(json_object_get(pc, "parent"));
            steps++;
        }
        if (steps > n)
            vm_problem(out, "%s: the checkpoint tree loops", what);
        json_t *pc = vm_checkpoint_by_id(doc, parent);
        check_config(vm, json_object_get(cp, "config"), pc ? json_object_get(pc, "config") : NULL,
                     what, out);
        const char *mem = json_string_value(json_object_get(cp, "memory"));
        char *mp = mem ? vm_path(vm, mem) : NULL;
        if (mp && access(mp, F_OK) != 0)
            vm_problem(out, "%s: memory state %s is missing", what, mem);
        free(mp);
    }
    const char *now = json_string_value(json_object_get(json_object_get(doc, "now"), "parent"));
    json_t *nc = vm_checkpoint_by_id(doc, now);
    if (now && !nc)
        vm_problem(out, "now: parent checkpoint %s does not exist", now);
    check_config(vm, vm_config(vm), nc ? json_object_get(nc, "config") : NULL, "now", out);
    const char *saved = json_string_value(json_object_get(doc, "saved_memory"));
    if (strcmp(vm_state(vm), "Saved") == 0 && !saved)
        vm_problem(out, "state is Saved but there is no memory state");
    char *sp = saved ? vm_path(vm, saved) : NULL;
    if (sp && access(sp, F_OK) != 0)
        vm_problem(out, "saved memory state %s is missing", saved);
    free(sp);
}

static void check_orphans(struct vm *vm, const char *sub, json_t *out)
{
    json_t *refs = vm_referenced_files(vm->doc);
    char *dir = vm_path(vm, sub);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s", sub, e->d_name);
        if (!vm_list_has(refs, rel))
            vm_problem(out, "orphaned file %s (not used by the configuration or any checkpoint)", rel);
    }
    if (d)
        closedir(d);
    free(dir);
    json_decref(refs);
}

json_t *vm_verify(struct vm *vm)
{
    json_t *out = json_array();
    /* A journal recovery refused stays for a person to look at: nothing is
     * committed over it. */
    bool refused = vm_journal_problems(vm, out) > 0;
    /* A checkpoint deletion killed between its commits leaves hidden nodes
     * to fold: finish it (not under a running VM). */
    const char *state = vm_state(vm);
    if (!refused && strcmp(state, "Running") != 0 && strcmp(state, "Paused") != 0 &&
        vm_checkpoint_fold(vm) < 0)
        vm_problem(out, "finishing a checkpoint deletion: %s", hvm_error_message());
    check_tree(vm, out);
    check_orphans(vm, "disks", out);
    check_orphans(vm, "checkpoints", out);
    check_orphans(vm, "nvram", out);
    /* A VM made from a base must be registered as its child, or the base
     * could be released under it; a crash during create can miss this. */
    const char *base = json_string_value(json_object_get(vm->doc, "base"));
    if (base && base[0] == '/') { /* (a relative one came inside an imported bundle) */
        json_t *entry = store_base_find(vm->store, base);
        bool listed = false;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(entry, "children"), i, c)
            listed |= strcmp(json_string_value(c), json_string_value(json_object_get(vm->doc, "id"))) == 0;
        json_decref(entry);
        if (!listed && access(base, F_OK) == 0)
            store_base_add_child(vm->store, base, json_string_value(json_object_get(vm->doc, "id")));
    }
    hvm_error_clear();
    return out;
}
