/* Shared by switch.c and switch_services.c: the switches.json document. */
#ifndef HVM_VM_SWITCH_INTERNAL_H
#define HVM_VM_SWITCH_INTERNAL_H

#include <jansson.h>

#include "vm/store.h"

/* The document, every entry checked; NULL with the error recorded. Call
 * with the store lock held when it is to be saved again. */
json_t *switches_load(struct store *s);
int switches_save(struct store *s, json_t *doc);
/* The entry called name (borrowed), or NULL. */
json_t *find_switch(json_t *doc, const char *name, size_t *index);
/* Every VM's current adapters: {"vm name": nics array of its vm.json}
 * (a VM whose vm.json does not load is left out). New reference. */
json_t *store_vm_nics(struct store *s);

#endif
