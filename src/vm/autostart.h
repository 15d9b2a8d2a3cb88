/* Hyper-V's automatic start and stop actions of a VM, part of its
 * configuration (config.autostart, config.autostop in vm.json) and carried
 * out by `hvm host start` and `hvm host stop` when the host boots and shuts
 * down (data/systemd/hvm.service). */
#ifndef HVM_VM_AUTOSTART_H
#define HVM_VM_AUTOSTART_H

#include <jansson.h>
#include <stdbool.h>

/* config.autostart: read in either form the validator accepts (true/false,
 * or {"enabled", "delay"}); absent means off, no delay. */
struct vm_autostart {
    bool enabled;
    int delay; /* seconds after `hvm host start` began, as in Hyper-V */
};
void vm_autostart_get(json_t *config, struct vm_autostart *out);
/* The one form hvm writes: {"enabled": bool, "delay": seconds}. */
json_t *vm_autostart_json(const struct vm_autostart *a);

/* config.autostop: "save" (Hyper-V's default, also when absent),
 * "shutdown" (ACPI, turned off after a timeout) or "turn-off". */
const char *vm_autostop_get(json_t *config);
bool vm_autostop_valid(const char *action);

#endif
