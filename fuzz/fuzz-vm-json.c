/* libFuzzer target: vm.json given as bytes is validated (vm_doc_problems,
 * for a VM folder and for a bundle). A document found valid must stay valid
 * through a dump and reload, and the accessors the rest of hvm uses on it
 * (checkpoint lookup by name and id prefix, the tree walk, the referenced
 * files, drive slots) must not crash on it: they trust the validator.
 * Nothing may crash, leak, overflow or allocate without bound. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "vm/checkpoint.h"
#include "vm/validate.h"
#include "vm/vm.h"

static void exercise(json_t *doc)
{
    struct vm vm = {.dir = "/nonexistent/vm", .name = "fuzz", .doc = doc, .lock_fd = -1};
    int err;
    size_t i;
    json_t *c;
    json_array_foreach(vm_checkpoints(&vm), i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *name = json_string_value(json_object_get(c, "name"));
        char prefix[8];
        snprintf(prefix, sizeof prefix, "%s", id);
        vm_checkpoint_find(&vm, name, &err);
        vm_checkpoint_find(&vm, prefix, &err);
        vm_checkpoint_visible_parent(doc, id);
        if (i >= 16)
            break;
    }
    vm_checkpoint_find(&vm, "zzzz", &err);
    vm_checkpoint_visible_parent(doc, json_string_value(json_object_get(json_object_get(doc, "now"), "parent")));
    json_decref(vm_referenced_files(doc));
    for (int slot = 0; slot < 4; slot++)
        vm_config_drive(vm_config(&vm), slot);
    vm_disk_io(vm_config(&vm));
    vm_state(&vm);
    hvm_error_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    json_t *list = json_array();
    size_t bundle = vm_doc_problems(doc, "vm.json", VM_VALIDATE_BUNDLE, list);
    json_array_clear(list);
    size_t n = vm_doc_problems(doc, "vm.json", 0, list);
    if (n != json_array_size(list) && json_array_size(list) != VM_MAX_PROBLEMS + 1)
        abort(); /* every problem listed, up to the cap and its note */
    if (vm_doc_validate(doc, "vm.json") != (n ? -22 : 0))
        abort();
    if (bundle == 0 && n != 0)
        abort(); /* a bundle's rules are the stricter */
    if (n == 0) {
        /* Valid: dumped and read back, still valid. */
        char *text = json_dumps(doc, JSON_PRESERVE_ORDER);
        json_t *again = text ? json_loads(text, 0, NULL) : NULL;
        json_t *l2 = json_array();
        if (text && (!again || vm_doc_problems(again, "vm.json", 0, l2)))
            abort();
        json_decref(l2);
        json_decref(again);
        free(text);
        exercise(doc);
    }
    json_decref(list);
    json_decref(doc);
    hvm_error_clear();
    return 0;
}
