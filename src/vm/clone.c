/* Linked clones: a new VM whose drives are differencing children of
 * another VM's checkpoint layers. Those layers are registered in the base
 * registry with the clone as their child, so the other VM keeps them (as
 * hidden nodes) even when the checkpoint is deleted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "vm/checkpoint.h"
#include "vm/firmware.h"
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
    /* One vm_create, built in a temporary folder and renamed into place:
     * a crash leaves either no clone or a complete one. */
    struct vm_create_params full = *p;
    full.clone = NULL;
    full.from = full.disk = NULL;
    full.new_disk = 0;
    json_t *cfg = json_object_get(cp, "config");
    if (!full.cpus)
        full.cpus = (int)json_integer_value(json_object_get(cfg, "cpus"));
    if (!full.memory)
        full.memory = (uint64_t)json_integer_value(json_object_get(cfg, "memory"));
    /* The checkpoint's adapters, with new MAC addresses (unless --nic). */
    json_t *nics = json_array(), *drives = json_array();
    size_t i;
    json_t *d;
    if (p->n_nics == 0)
        json_array_foreach(json_object_get(cfg, "nics"), i, d) {
            char mac[18];
            vm_random_mac(mac);
            json_t *nic = json_deep_copy(d);
            json_object_set_new(nic, "mac", json_string(mac));
            json_array_append_new(nics, nic);
        }
    json_array_foreach(json_object_get(cfg, "drives"), i, d) {
        char *layer = vm_path(src, json_string_value(json_object_get(d, "file")));
        char *abs = layer ? realpath(layer, NULL) : NULL;
        if (!abs && r == 0)
            r = hvm_error(errno ? errno : ENOMEM, "%s: %s", layer ? layer : "?", strerror(errno));
        if (abs)
            json_array_append_new(drives, json_pack("{s:I, s:s}", "slot",
                                                    json_integer_value(json_object_get(d, "slot")),
                                                    "layer", abs));
        free(layer);
        free(abs);
    }
    /* The checkpoint's firmware, with a copy of its variable store (its
     * boot entries). */
    char *vars = vm_firmware_vars(cfg) ? vm_path(src, vm_firmware_vars(cfg)) : NULL;
    full.firmware = vm_firmware_uefi(cfg) ? "uefi" : "bios";
    full.secure_boot = vm_firmware_secure_boot(cfg);
    full.clone_vars = vars;
    full.clone_drives = drives;
    full.clone_nics = nics;
    if (r == 0)
        r = vm_create(s, &full);
    free(vars);
    json_decref(drives);
    json_decref(nics);
    vm_close(src);
    return r;
}
