/* hvm switch diagnose | set: a switch's offload features and the known
 * bad combinations (vm/switch.h, src/net/ethtool.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "util/error.h"
#include "vm/switch.h"

int cmd_switch_diagnose(const struct cli_args *a)
{
    struct store s;
    if (vm_cli_open_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    json_t *out = store_switch_diagnose(&s, cli_pos(a, 0));
    store_close(&s);
    if (!out)
        return cli_fail();
    json_t *problems = json_object_get(out, "problems");
    int rc = json_array_size(problems) ? EXIT_PROBLEMS : EXIT_OK;
    if (cli_flag(a, "json")) {
        int r = cli_print_json(out);
        return r != EXIT_OK ? r : rc;
    }
    size_t i;
    json_t *p;
    printf("Switch %s (%s), VLANs: %s\n", json_string_value(json_object_get(out, "name")),
           json_string_value(json_object_get(out, "type")),
           json_string_value(json_object_get(out, "vlan_mode")));
    json_array_foreach(json_object_get(out, "bridges"), i, p)
        printf("  bridge %-15s mtu %lld\n", json_string_value(json_object_get(p, "name")),
               (long long)json_integer_value(json_object_get(p, "mtu")));
    json_array_foreach(json_object_get(out, "ports"), i, p) {
        printf("  port   %-15s on %s, %s, mtu %lld:", json_string_value(json_object_get(p, "name")),
               json_string_value(json_object_get(p, "bridge")),
               json_string_value(json_object_get(p, "kind")) ?
                   json_string_value(json_object_get(p, "kind")) : "?",
               (long long)json_integer_value(json_object_get(p, "mtu")));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(p, "offload"), k, v)
            printf(" %s=%s", k, json_is_true(v) ? "on" : "off");
        printf("\n");
    }
    if (!json_array_size(problems))
        printf("No known problem found.\n");
    json_array_foreach(problems, i, p)
        printf("PROBLEM %s: %s\n  fix: %s\n", json_string_value(json_object_get(p, "interface")),
               json_string_value(json_object_get(p, "problem")),
               json_string_value(json_object_get(p, "fix")));
    json_decref(out);
    return rc;
}

int cmd_switch_set(const struct cli_args *a)
{
    const char *spec = cli_text(a, "offload");
    if (!spec)
        return cli_verb_error(a, "nothing to change: give --offload NAME=on|off[,...]");
    int want[NET_OFFLOADS];
    if (store_switch_offload_parse(spec, want) < 0)
        return cli_verb_error(a, "%s", hvm_error_message());
    struct store s;
    if (vm_cli_open_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    int r = store_switch_set_offload(&s, cli_pos(a, 0), spec);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("switch '%s': offload %s (kept; applied to its ports now and at 'hvm switch up')\n",
           cli_pos(a, 0), spec);
    return EXIT_OK;
}
