/* The automatic start and stop actions of a configuration (autostart.h). */
#include "vm/autostart.h"

#include <string.h>

void vm_autostart_get(json_t *config, struct vm_autostart *out)
{
    json_t *v = json_object_get(config, "autostart");
    out->enabled = json_is_true(v) || json_is_true(json_object_get(v, "enabled"));
    out->delay = (int)json_integer_value(json_object_get(v, "delay"));
}

json_t *vm_autostart_json(const struct vm_autostart *a)
{
    return json_pack("{s:b, s:i}", "enabled", a->enabled, "delay", a->delay);
}

const char *vm_autostop_get(json_t *config)
{
    const char *s = json_string_value(json_object_get(config, "autostop"));
    return s ? s : "save";
}

bool vm_autostop_valid(const char *action)
{
    return action && (strcmp(action, "save") == 0 || strcmp(action, "shutdown") == 0 ||
                      strcmp(action, "turn-off") == 0);
}
