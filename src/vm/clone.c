/* Linked clones: a new VM whose drives are differencing children of
 * another VM's checkpoint layers. Those layers are registered in the base
 * registry with the clone as their child, so the other VM keeps them (as
 * hidden nodes) even when the checkpoint is deleted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/uuid.h"
#include "vm/checkpoint.h"
#include "vm/vm.h"

int vm_clone(struct store *s, const struct vm_create_params *p)
{
    struct vm *src;
    int r = vm_open(s, p->clone, &src);
    if (r < 0)
        return r;
    json_t *cp;
    if (p->clone_checkpoint) {
        cp = vm_checkpoint_find(src, p->clone_checkpoint, &r);
    } else {
        const char *id = vm_checkpoint_visible_parent(
            src->doc, json_string_value(json_object_get(json_object_get(src->doc, "now"), "parent")));
        cp = vm_checkpoint_by_id(src->doc, id);
        if (!cp)
            r = hvm_error(ENOENT, "VM '%s' has no checkpoint to clone from; take one or give "
                          "--checkpoint", p->clone);
    }
    if (!cp) {
        vm_close(src);
        return r;
    }
    /* Create an empty VM, then give it the drives through the journal. */
    struct vm_create_params empty = *p;
    empty.clone = NULL;
    empty.from = empty.disk = NULL;
    empty.new_disk = 0;
    json_t *cfg = json_object_get(cp, "config");
    if (!empty.cpus)
        empty.cpus = (int)json_integer_value(json_object_get(cfg, "cpus"));
    if (!empty.memory)
        empty.memory = (uint64_t)json_integer_value(json_object_get(cfg, "memory"));
    if ((r = vm_create(s, &empty)) < 0) {
        vm_close(src);
        return r;
    }
    struct vm *vm;
    if ((r = vm_open(s, p->name, &vm)) < 0) {
        vm_close(src);
        return r;
    }
    const char *id = json_string_value(json_object_get(vm->doc, "id"));
    json_t *next = json_deep_copy(vm->doc);
    json_t *drives = json_object_get(json_object_get(next, "config"), "drives");
    /* The checkpoint's adapters, with new MAC addresses (unless --nic). */
    size_t i;
    json_t *d;
    if (p->n_nics == 0)
        json_array_foreach(json_object_get(cfg, "nics"), i, d) {
            char mac[18];
            vm_random_mac(mac);
            json_t *nic = json_deep_copy(d);
            json_object_set_new(nic, "mac", json_string(mac));
            json_array_append_new(json_object_get(json_object_get(next, "config"), "nics"), nic);
        }
    json_t *steps = json_array();
    json_array_foreach(json_object_get(cfg, "drives"), i, d) {
        char *layer = vm_path(src, json_string_value(json_object_get(d, "file")));
        int slot = (int)json_integer_value(json_object_get(d, "slot"));
        char *leaf = vm_new_disk_name(slot);
        if (r == 0)
            r = store_base_add_child(s, layer, id);
        json_array_append_new(steps, vm_step_diff(layer, leaf));
        json_array_append_new(drives, json_pack("{s:i, s:s}", "slot", slot, "file", leaf));
        free(layer);
        free(leaf);
    }
    vm_close(src);
    if (r == 0)
        r = vm_commit(vm, "clone", next, steps, NULL);
    else {
        json_decref(next);
        json_decref(steps);
    }
    vm_close(vm);
    if (r < 0) {
        int keep = r;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hvm_error_message());
        vm_delete(s, p->name);
        return hvm_error(-keep, "%s", msg);
    }
    return 0;
}
