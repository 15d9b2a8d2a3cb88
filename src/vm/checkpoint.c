#include "vm/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "disk/disk.h"
#include "util/error.h"
#include "util/uuid.h"
#include "vm/firmware.h"

static json_t *doc_now(json_t *doc)
{
    return json_object_get(doc, "now");
}

static const char *now_parent(json_t *doc)
{
    return json_string_value(json_object_get(doc_now(doc), "parent"));
}

static bool is_hidden(json_t *cp)
{
    return json_is_true(json_object_get(cp, "hidden"));
}

const char *vm_checkpoint_visible_parent(json_t *doc, const char *id)
{
    while (id) {
        json_t *cp = vm_checkpoint_by_id(doc, id);
        if (!cp || !is_hidden(cp))
            return id;
        id = json_string_value(json_object_get(cp, "parent"));
    }
    return NULL;
}

unsigned long long vm_checkpoint_space(const struct vm *vm, json_t *cp)
{
    unsigned long long sum = 0;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(json_object_get(cp, "config"), "drives"), i, d) {
        char *p = vm_path(vm, json_string_value(json_object_get(d, "file")));
        struct stat st;
        if (p && stat(p, &st) == 0)
            sum += (unsigned long long)st.st_blocks * 512;
        free(p);
    }
    const char *mem = json_string_value(json_object_get(cp, "memory"));
    char *p = mem ? vm_path(vm, mem) : NULL;
    struct stat st;
    if (p && stat(p, &st) == 0)
        sum += (unsigned long long)st.st_blocks * 512;
    free(p);
    return sum;
}

static int refuse_running(struct vm *vm)
{
    const char *s = vm_state(vm);
    if (strcmp(s, "Running") == 0 || strcmp(s, "Paused") == 0)
        return hvm_error(EBUSY, "VM '%s' is %s: online checkpoints need the VM runtime; "
                         "turn it off first", vm->name, s);
    return 0;
}

/* Replaces each drive's file in config by a fresh differencing child of it. */
static int fresh_leaves(json_t *config, json_t *steps)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d) {
        const char *frozen = json_string_value(json_object_get(d, "file"));
        char *leaf = vm_new_disk_name((int)json_integer_value(json_object_get(d, "slot")));
        if (!leaf)
            return hvm_error(ENOMEM, "out of memory");
        json_array_append_new(steps, vm_step_diff(frozen, leaf));
        json_object_set_new(d, "file", json_string(leaf));
        free(leaf);
    }
    return 0;
}

static void add_drive_files(json_t *list, json_t *config)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d)
        json_array_append(list, json_object_get(d, "file"));
}

/* The UEFI variable store of config (firmware.vars) becomes a fresh copy of
 * from: a checkpoint freezes the boot entries as they are, and applying it
 * gives now its own copy of the checkpoint's, which stays as it was. */
static int fresh_vars(json_t *config, const char *from, json_t *steps)
{
    if (!from)
        return 0;
    char *vars = vm_firmware_new_vars_name();
    if (!vars)
        return hvm_error(ENOMEM, "out of memory");
    json_array_append_new(steps, vm_step_copy(from, vars));
    json_object_set_new(json_object_get(config, "firmware"), "vars", json_string(vars));
    free(vars);
    return 0;
}

json_t *vm_checkpoint_next(struct vm *vm, const char *name, json_t *steps, char id[37])
{
    uint8_t raw[16];
    char when[32], defname[300];
    uuid_generate_bytes(raw);
    uuid_format(raw, id);
    vm_now_string(when, sizeof when);
    if (!name) {
        snprintf(defname, sizeof defname, "%s - (%s)", vm->name, when);
        name = defname;
    }
    json_t *next = json_deep_copy(vm->doc);
    json_t *config = json_object_get(next, "config");
    json_t *cp = json_pack("{s:s, s:s, s:s, s:O, s:b, s:o, s:n}", "id", id, "name", name,
                           "created", when, "parent", json_object_get(doc_now(next), "parent"),
                           "hidden", 0, "config", json_deep_copy(config), "memory");
    json_array_append_new(json_object_get(next, "checkpoints"), cp);
    /* (now keeps its store: a running QEMU writes it) */
    if (fresh_leaves(config, steps) < 0 ||
        fresh_vars(json_object_get(cp, "config"), vm_firmware_vars(config), steps) < 0) {
        json_decref(next);
        return NULL;
    }
    json_object_set_new(doc_now(next), "parent", json_string(id));
    return next;
}

int vm_checkpoint_take(struct vm *vm, const char *name, char **id_out)
{
    int r = refuse_running(vm);
    if (r < 0)
        return r;
    char id[37];
    json_t *steps = json_array();
    json_t *next = vm_checkpoint_next(vm, name, steps, id);
    if (!next) {
        json_decref(steps);
        return -ENOMEM;
    }
    /* A Saved VM's memory goes with the checkpoint, like Hyper-V's. */
    const char *saved = json_string_value(json_object_get(next, "saved_memory"));
    char *mem = NULL;
    if (saved && asprintf(&mem, "checkpoints/%s.state", id) > 0) {
        json_array_append_new(steps, vm_step_copy(saved, mem));
        json_object_set_new(vm_checkpoint_by_id(next, id), "memory", json_string(mem));
        free(mem);
    }
    r = vm_commit(vm, "take", next, steps, NULL);
    if (r == 0 && id_out)
        *id_out = strdup(id);
    return r;
}

/* Does the layer at child_rel have the layer at parent_rel as its direct
 * parent? Then deleting the parent's checkpoint must fold into it. */
static bool layer_is_child_of(struct vm *vm, const char *child_rel, const char *parent_rel,
                              char **parent_of_parent)
{
    char *child = vm_path(vm, child_rel), *parent = vm_path(vm, parent_rel);
    struct disk *d = NULL;
    bool yes = false;
    *parent_of_parent = NULL;
    if (child && parent && disk_open(child, DISK_OPEN_READ_ONLY, &d) == 0 && d->parent) {
        struct stat a, b;
        if (stat(d->parent->path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            yes = true;
            if (d->parent->parent) {
                /* Keep it relative when it lives inside the VM folder. */
                const char *pp = d->parent->parent->path;
                size_t n = strlen(vm->dir);
                if (strncmp(pp, vm->dir, n) == 0 && pp[n] == '/')
                    pp += n + 1;
                *parent_of_parent = strdup(pp);
            }
        }
    }
    disk_close(d);
    hvm_error_clear();
    free(child);
    free(parent);
    return yes;
}

static void collect_subtree(json_t *doc, const char *id, json_t *out);

/* Linked clones of other VMs build on a layer of this node: it must stay. */
static bool node_cloned(struct vm *vm, json_t *cp)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(json_object_get(cp, "config"), "drives"), i, d)
        if (vm_layer_cloned(vm, json_string_value(json_object_get(d, "file"))))
            return true;
    return false;
}

/* Do linked clones of other VMs build on this node or on anything above it?
 * Their chains pass through its layers. */
static bool subtree_cloned(struct vm *vm, json_t *cp)
{
    if (node_cloned(vm, cp))
        return true;
    json_t *ids = json_array();
    collect_subtree(vm->doc, json_string_value(json_object_get(cp, "id")), ids);
    size_t i;
    json_t *x;
    bool yes = false;
    json_array_foreach(ids, i, x)
        yes = yes || node_cloned(vm, vm_checkpoint_by_id(vm->doc, json_string_value(x)));
    json_decref(ids);
    return yes;
}

/* Folding a hidden layer into its only child: rebasing the child copies
 * what the layer owns, merging the child up into the layer (which then
 * becomes the child, identity included) copies what the child owns. The
 * usual case after a checkpoint of a big disk is a big layer under a small
 * child: merge up then, as Hyper-V does. Only layers of this VM's own folder
 * qualify, and not a child that linked clones of other VMs build on,
 * directly or through checkpoints above it: merge-up switches the child's
 * file and identity, and they must never see that mid-change. */
static bool merge_up_cheaper(struct vm *vm, const char *leaf_rel, const char *layer_rel)
{
    if (!leaf_rel || !layer_rel || leaf_rel[0] == '/' || layer_rel[0] == '/')
        return false;
    char *leaf = vm_path(vm, leaf_rel), *layer = vm_path(vm, layer_rel);
    struct stat a, b;
    bool yes = leaf && layer && stat(leaf, &a) == 0 && stat(layer, &b) == 0 && a.st_blocks < b.st_blocks;
    free(leaf);
    free(layer);
    return yes;
}

/* One fold of a hidden node, or 0 when none can be folded. */
static int fold_one(struct vm *vm, bool *changed)
{
    json_t *doc = vm->doc;
    size_t i;
    json_t *h;
    *changed = false;
    json_array_foreach(vm_checkpoints(vm), i, h) {
        if (!is_hidden(h))
            continue;
        const char *hid = json_string_value(json_object_get(h, "id"));
        size_t j, n_children = 0;
        json_t *c, *only = NULL;
        json_array_foreach(vm_checkpoints(vm), j, c)
            if (json_string_value(json_object_get(c, "parent")) &&
                strcmp(json_string_value(json_object_get(c, "parent")), hid) == 0) {
                n_children++;
                only = c;
            }
        bool now_child = now_parent(doc) && strcmp(now_parent(doc), hid) == 0;
        n_children += now_child;
        if (n_children >= 2 || node_cloned(vm, h))
            continue;

        json_t *next = json_deep_copy(doc);
        json_t *steps = json_array(), *remove = json_array();
        json_t *nh = vm_checkpoint_by_id(next, hid);
        json_t *hparent = json_object_get(nh, "parent");
        add_drive_files(remove, json_object_get(nh, "config"));
        if (vm_firmware_vars(json_object_get(nh, "config")))
            json_array_append_new(remove, json_string(vm_firmware_vars(json_object_get(nh, "config"))));
        if (json_string_value(json_object_get(nh, "memory")))
            json_array_append(remove, json_object_get(nh, "memory"));
        if (n_children == 1) {
            json_t *child_cfg = now_child ? json_object_get(next, "config")
                                          : json_object_get(vm_checkpoint_by_id(
                                                next, json_string_value(json_object_get(only, "id"))),
                                                "config");
            size_t k;
            json_t *hd;
            json_array_foreach(json_object_get(json_object_get(nh, "config"), "drives"), k, hd) {
                json_t *cd = vm_config_drive(child_cfg, json_integer_value(json_object_get(hd, "slot")));
                char *onto = NULL;
                const char *cf = json_string_value(json_object_get(cd, "file"));
                const char *hf = json_string_value(json_object_get(hd, "file"));
                if (cd && layer_is_child_of(vm, cf, hf, &onto))
                    json_array_append_new(steps, (now_child || !subtree_cloned(vm, only)) &&
                                                         merge_up_cheaper(vm, cf, hf)
                                                     ? vm_step_merge_up(cf, hf)
                                                     : vm_step_rebase(cf, hf));
                free(onto);
            }
            if (now_child)
                json_object_set(json_object_get(next, "now"), "parent", hparent);
            else
                json_object_set(vm_checkpoint_by_id(next, json_string_value(json_object_get(only, "id"))),
                                "parent", hparent);
        }
        /* Drop the node from the list. */
        json_t *list = json_object_get(next, "checkpoints");
        for (size_t x = 0; x < json_array_size(list); x++)
            if (strcmp(json_string_value(json_object_get(json_array_get(list, x), "id")), hid) == 0) {
                json_array_remove(list, x);
                break;
            }
        *changed = true;
        json_t *layers = json_array();
        add_drive_files(layers, json_object_get(h, "config"));
        int r = vm_commit(vm, "fold", next, steps, remove);
        if (r == 0)
            vm_forget_layers(vm, layers);
        json_decref(layers);
        return r;
    }
    return 0;
}

static int fold_hidden(struct vm *vm)
{
    bool changed = true;
    int r = 0;
    while (changed && r == 0)
        r = fold_one(vm, &changed);
    return r;
}

int vm_checkpoint_fold(struct vm *vm)
{
    int r = refuse_running(vm);
    return r < 0 ? r : fold_hidden(vm);
}

static int apply_to(struct vm *vm, const char *target_id)
{
    json_t *next = json_deep_copy(vm->doc);
    json_t *steps = json_array(), *remove = json_array();
    json_t *target = vm_checkpoint_by_id(next, target_id);
    add_drive_files(remove, json_object_get(next, "config"));
    if (vm_firmware_vars(json_object_get(next, "config")))
        json_array_append_new(remove, json_string(vm_firmware_vars(json_object_get(next, "config"))));
    if (json_string_value(json_object_get(next, "saved_memory")))
        json_array_append(remove, json_object_get(next, "saved_memory"));
    json_t *config = json_deep_copy(json_object_get(target, "config"));
    int r = fresh_leaves(config, steps);
    if (r == 0)
        r = fresh_vars(config, vm_firmware_vars(json_object_get(target, "config")), steps);
    if (r < 0) {
        json_decref(config);
        json_decref(next);
        json_decref(steps);
        json_decref(remove);
        return r;
    }
    json_object_set_new(next, "config", config);
    json_object_set_new(doc_now(next), "parent", json_string(target_id));
    json_t *mem = json_object_get(target, "memory");
    if (json_is_string(mem)) {
        /* The runtime resumes from this state; it stays the checkpoint's. */
        json_object_set_new(next, "state", json_string("Saved"));
        json_object_set(next, "saved_memory", mem);
    } else {
        json_object_set_new(next, "state", json_string("Off"));
        json_object_set_new(next, "saved_memory", json_null());
    }
    if ((r = vm_commit(vm, "apply", next, steps, remove)) < 0)
        return r;
    return fold_hidden(vm);
}

int vm_checkpoint_revert(struct vm *vm)
{
    int r = refuse_running(vm);
    if (r < 0)
        return r;
    const char *target = vm_checkpoint_visible_parent(vm->doc, now_parent(vm->doc));
    if (!target)
        return hvm_error(ENOENT, "VM '%s' has no checkpoint to revert to", vm->name);
    char *id = strdup(target);
    r = apply_to(vm, id);
    free(id);
    return r;
}

int vm_checkpoint_apply(struct vm *vm, json_t *cp, bool take_first)
{
    int r = refuse_running(vm);
    if (r < 0)
        return r;
    char *id = strdup(json_string_value(json_object_get(cp, "id")));
    if (take_first)
        r = vm_checkpoint_take(vm, NULL, NULL);
    if (r == 0)
        r = apply_to(vm, id);
    free(id);
    return r;
}

int vm_checkpoint_rename(struct vm *vm, json_t *cp, const char *name)
{
    if (!name || !name[0])
        return hvm_error(EINVAL, "a checkpoint name cannot be empty");
    json_t *next = json_deep_copy(vm->doc);
    json_t *c = vm_checkpoint_by_id(next, json_string_value(json_object_get(cp, "id")));
    json_object_set_new(c, "name", json_string(name));
    return vm_commit(vm, "rename-checkpoint", next, NULL, NULL);
}

static void collect_subtree(json_t *doc, const char *id, json_t *out)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "checkpoints"), i, c) {
        const char *p = json_string_value(json_object_get(c, "parent"));
        if (p && strcmp(p, id) == 0) {
            const char *cid = json_string_value(json_object_get(c, "id"));
            collect_subtree(doc, cid, out);
            json_array_append_new(out, json_string(cid));
        }
    }
}

int vm_checkpoint_delete(struct vm *vm, json_t *cp, bool subtree)
{
    /* A running VM reads its chain through its worker, so its layers cannot
     * be folded now: the checkpoints are hidden (gone from the tree, their
     * memory states freed) and folded when the VM is off: by `hvm vm stop`,
     * `turn-off` and `save` once it is, else by `vm check` or the next
     * deletion. */
    bool running = refuse_running(vm) < 0;
    hvm_error_clear();
    int r;
    json_t *ids = json_array();
    const char *id = json_string_value(json_object_get(cp, "id"));
    if (subtree)
        collect_subtree(vm->doc, id, ids);
    json_array_append_new(ids, json_string(id));
    /* One commit hides them all (and drops their memory states); the folds
     * that follow each run under their own journal entry. */
    json_t *next = json_deep_copy(vm->doc);
    json_t *remove = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x) {
        json_t *c = vm_checkpoint_by_id(next, json_string_value(x));
        json_object_set_new(c, "hidden", json_true());
        if (json_is_string(json_object_get(c, "memory"))) {
            const char *mem = json_string_value(json_object_get(c, "memory"));
            /* Unless now's saved state is that very file. */
            const char *saved = json_string_value(json_object_get(next, "saved_memory"));
            if (!saved || strcmp(saved, mem) != 0)
                json_array_append(remove, json_object_get(c, "memory"));
            if (!saved || strcmp(saved, mem) != 0)
                json_object_set_new(c, "memory", json_null());
        }
    }
    json_decref(ids);
    if ((r = vm_commit(vm, "delete-checkpoint", next, NULL, remove)) < 0)
        return r;
    return running ? 0 : fold_hidden(vm);
}

int vm_checkpoint_hide(struct vm *vm, const char *id)
{
    json_t *next = json_deep_copy(vm->doc);
    json_t *c = vm_checkpoint_by_id(next, id);
    json_t *remove = json_array();
    if (!c) {
        json_decref(next);
        json_decref(remove);
        return hvm_error(ENOENT, "%s: no checkpoint %s", vm->name, id);
    }
    json_object_set_new(c, "hidden", json_true());
    if (json_is_string(json_object_get(c, "memory"))) {
        json_array_append(remove, json_object_get(c, "memory"));
        json_object_set_new(c, "memory", json_null());
    }
    /* No fold here: the VM may be running on the layer's only child; the
     * next checkpoint operation on the VM while it is off folds it. */
    return vm_commit(vm, "hide-checkpoint", next, NULL, remove);
}
