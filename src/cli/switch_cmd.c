/* hvm switch create | list | show | delete | up | down: the store's virtual
 * switches (vm/switch.h) and their Linux bridges. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "util/error.h"
#include "vm/switch.h"

int cmd_switch_create(const struct cli_args *a)
{
    const char *type = cli_text(a, "type");
    /* The rest of issue 12, asked for by name so that the answer is clear. */
    if (strcmp(type, "external") == 0 || cli_text(a, "uplink"))
        return cli_verb_error(a, "external switches (bridged to a host NIC) are not supported "
                              "yet: private and internal are");
    if (cli_flag(a, "dhcp") || cli_flag(a, "nat") || cli_text(a, "vlan"))
        return cli_verb_error(a, "%s is not supported yet: a switch is private or internal, "
                              "without DHCP, NAT or VLANs for now",
                              cli_flag(a, "dhcp") ? "--dhcp" : cli_flag(a, "nat") ? "--nat"
                                                                                  : "--vlan");
    if (cli_text(a, "address") && strcmp(type, "internal") != 0)
        return cli_verb_error(a, "--address: only an internal switch has a host address");
    if (cli_text(a, "address") && net_cidr_check(cli_text(a, "address")) < 0)
        return cli_verb_error(a, "--address %s", hvm_error_message());
    struct store s;
    /* A switch may be the first thing a host's store holds. */
    if (vm_cli_open_store_how(cli_text(a, "store"), STORE_CREATE, &s))
        return EXIT_ERROR;
    int r = store_switch_create(&s, cli_pos(a, 0), type, cli_text(a, "address"));
    store_close(&s);
    if (r < 0)
        return cli_fail();
    char bridge[NET_IFNAME_MAX + 1];
    store_switch_bridge_name(cli_pos(a, 0), bridge);
    printf("created %s switch '%s' (bridge %s; 'hvm switch up %s' creates it)\n", type,
           cli_pos(a, 0), bridge, cli_pos(a, 0));
    return EXIT_OK;
}

static const char *text_or(json_t *o, const char *key, const char *fallback)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : fallback;
}

/* "a,b" of an array of strings, or "-"; into buf. */
static const char *list_text(json_t *list, char *buf, size_t size)
{
    size_t i, used = 0;
    json_t *x;
    buf[0] = 0;
    json_array_foreach(list, i, x) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? "," : "", json_string_value(x));
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    return buf[0] ? buf : "-";
}

int cmd_switch_list(const struct cli_args *a)
{
    struct store s;
    if (vm_cli_open_listed_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    json_t *list = store_switches(&s);
    if (!list) {
        store_close(&s);
        return cli_fail();
    }
    json_t *out = json_array();
    size_t i;
    json_t *sw;
    json_array_foreach(list, i, sw)
        json_array_append_new(out, store_switch_describe(&s, sw));
    json_decref(list);
    store_close(&s);
    if (cli_flag(a, "json"))
        return cli_print_json(out);
    printf("%-20s %-9s %-16s %-7s %-20s %s\n", "NAME", "TYPE", "BRIDGE", "STATE", "ADDRESS", "VMS");
    json_array_foreach(out, i, sw) {
        char vms[512];
        printf("%-20s %-9s %-16s %-7s %-20s %s\n", text_or(sw, "name", "?"),
               text_or(sw, "type", "?"), text_or(sw, "bridge", "-"), text_or(sw, "state", "?"),
               text_or(sw, "address", "-"), list_text(json_object_get(sw, "vms"), vms, sizeof vms));
    }
    json_decref(out);
    return EXIT_OK;
}

int cmd_switch_show(const struct cli_args *a)
{
    struct store s;
    if (vm_cli_open_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    int r;
    json_t *sw = store_switch_get(&s, cli_pos(a, 0), &r);
    json_t *out = sw ? store_switch_describe(&s, sw) : NULL;
    json_decref(sw);
    store_close(&s);
    if (!out)
        return cli_fail();
    if (cli_flag(a, "json"))
        return cli_print_json(out);
    char ports[512], vms[512];
    const char *type = text_or(out, "type", "?");
    printf("Name:     %s\nType:     %s%s\n", text_or(out, "name", "?"), type,
           strcmp(type, "user") == 0 ? " (user-mode networking, no bridge)" : "");
    printf("Bridge:   %s\nState:    %s\nAddress:  %s\nPorts:    %s\nVMs:      %s\n",
           text_or(out, "bridge", "-"), text_or(out, "state", "?"),
           text_or(out, "address", "-"), list_text(json_object_get(out, "ports"), ports, sizeof ports),
           list_text(json_object_get(out, "vms"), vms, sizeof vms));
    const char *mode = text_or(out, "vlan_mode", "none");
    if (strcmp(mode, "none") != 0)
        printf("VLANs:    %s\n", strcmp(mode, "filtering") == 0 ?
               "bridge VLAN filtering, a PVID per adapter" :
               strcmp(mode, "bridge-per-vlan") == 0 ?
               "a bridge per VLAN (this kernel has no bridge VLAN filtering)" :
               "decided at 'hvm switch up' (no bridge yet)");
    json_decref(out);
    return EXIT_OK;
}

int cmd_switch_delete(const struct cli_args *a)
{
    struct store s;
    if (vm_cli_open_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    int r = store_switch_delete(&s, cli_pos(a, 0));
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("deleted switch '%s'\n", cli_pos(a, 0));
    return EXIT_OK;
}

/* up and down: one switch by name, or every switch with --all. */
static int switch_each(const struct cli_args *a, bool up)
{
    const char *name = cli_pos(a, 0);
    bool all = cli_flag(a, "all");
    if (!!name == all)
        return cli_verb_error(a, "give a switch NAME or --all");
    struct store s;
    if (vm_cli_open_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    json_t *list = store_switches(&s);
    int r = list ? 0 : -EINVAL;
    size_t i;
    json_t *sw;
    if (list && name) {
        json_decref(list);
        sw = store_switch_get(&s, name, &r);
        list = sw ? json_pack("[o]", sw) : NULL;
    }
    json_array_foreach(list, i, sw) {
        const char *n = json_string_value(json_object_get(sw, "name"));
        const char *type = json_string_value(json_object_get(sw, "type"));
        if (strcmp(type, "user") == 0) {
            if (name)
                fprintf(stderr, "hvm: note: switch '%s' is user-mode networking: it has no "
                        "bridge to bring %s\n", n, up ? "up" : "down");
            continue;
        }
        if ((r = up ? store_switch_up(&s, n) : store_switch_down(&s, n)) < 0)
            break;
        char bridge[NET_IFNAME_MAX + 1];
        store_switch_bridge_name(n, bridge);
        printf("switch '%s': bridge %s %s\n", n, bridge, up ? "up" : "removed");
    }
    json_decref(list);
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}

int cmd_switch_up(const struct cli_args *a)
{
    return switch_each(a, true);
}

int cmd_switch_down(const struct cli_args *a)
{
    return switch_each(a, false);
}
