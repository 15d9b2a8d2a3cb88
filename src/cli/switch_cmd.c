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
#include "net/services.h"
#include "vm/switch.h"
#include "vm/switch_services.h"

int cmd_switch_create(const struct cli_args *a)
{
    const char *type = cli_text(a, "type");
    if ((strcmp(type, "external") == 0) != (cli_text(a, "uplink") != NULL))
        return cli_verb_error(a, cli_text(a, "uplink") ? "--uplink: only an external switch "
                              "has an uplink" : "an external switch needs --uplink IFACE");
    if (cli_flag(a, "force") && !cli_text(a, "uplink"))
        return cli_verb_error(a, "--force: only with --uplink");
    if (cli_text(a, "vlan"))
        return cli_verb_error(a, "--vlan is not supported yet");
    if (cli_text(a, "dhcp-range") && !cli_flag(a, "dhcp"))
        return cli_verb_error(a, "--dhcp-range: only with --dhcp");
    if ((cli_flag(a, "dhcp") || cli_flag(a, "nat")) &&
        (strcmp(type, "internal") != 0 || !cli_text(a, "address") ||
         !strchr(cli_text(a, "address"), '.')))
        return cli_verb_error(a, "%s: only an internal switch with an IPv4 --address",
                              cli_flag(a, "dhcp") ? "--dhcp" : "--nat");
    if (cli_text(a, "address") && strcmp(type, "internal") != 0)
        return cli_verb_error(a, "--address: only an internal switch has a host address");
    if (cli_text(a, "address") && net_cidr_check(cli_text(a, "address")) < 0)
        return cli_verb_error(a, "--address %s", hvm_error_message());
    struct store s;
    /* A switch may be the first thing a host's store holds. */
    if (vm_cli_open_store_how(cli_text(a, "store"), STORE_CREATE, &s))
        return EXIT_ERROR;
    json_t *more = json_object();
    if (cli_flag(a, "dhcp"))
        json_object_set_new(more, "dhcp", json_true());
    if (cli_text(a, "dhcp-range"))
        json_object_set_new(more, "dhcp_range", json_string(cli_text(a, "dhcp-range")));
    if (cli_flag(a, "nat"))
        json_object_set_new(more, "nat", json_true());
    if (cli_text(a, "uplink"))
        json_object_set_new(more, "uplink", json_string(cli_text(a, "uplink")));
    if (cli_flag(a, "force"))
        json_object_set_new(more, "force", json_true());
    int r = store_switch_create_with(&s, cli_pos(a, 0), type, cli_text(a, "address"), more);
    json_decref(more);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    if (strcmp(type, "user") == 0) {
        printf("created user switch '%s' (QEMU's user-mode networking: no bridge, no "
               "privileges needed)\n", cli_pos(a, 0));
        return EXIT_OK;
    }
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

static void print_forwards(json_t *fw)
{
    size_t i;
    json_t *f;
    json_array_foreach(fw, i, f)
        printf("  %s/%lld -> VM %s port %lld%s%s\n", text_or(f, "protocol", "?"),
               (long long)json_integer_value(json_object_get(f, "host_port")),
               text_or(f, "vm", "?"), (long long)json_integer_value(json_object_get(f, "port")),
               json_object_get(f, "address") ? " at " : "", text_or(f, "address", ""));
}

/* DHCP, NAT and forwards of switch show (vm/switch_services.h). */
static void switch_show_services(json_t *out)
{
    json_t *d = json_object_get(out, "dhcp"), *n = json_object_get(out, "nat");
    if (d) {
        json_t *pid = json_object_get(d, "pid");
        printf("DHCP:     %s%s%lld%s, range %s\n", text_or(d, "state", "?"),
               pid ? " (dnsmasq, pid " : "", pid ? (long long)json_integer_value(pid) : 0LL,
               pid ? ")" : "", text_or(d, "range", "?"));
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(d, "leases"), i, l)
            printf("  lease %s %s%s%s\n", text_or(l, "address", "?"), text_or(l, "mac", "?"),
                   json_object_get(l, "vm") ? " VM " : "", text_or(l, "vm", ""));
    }
    if (n)
        printf("NAT:      %s (nftables table inet %s)\n", text_or(n, "state", "?"),
               text_or(n, "table", "?"));
    if (json_array_size(json_object_get(out, "forwards"))) {
        printf("Forwards:\n");
        print_forwards(json_object_get(out, "forwards"));
    }
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
    if (json_object_get(out, "uplink")) {
        char moved[512];
        printf("Uplink:   %s", text_or(out, "uplink", "?"));
        if (json_object_get(out, "uplink_addresses"))
            printf(" (its addresses %s and %lld routes moved to the bridge)",
                   list_text(json_object_get(out, "uplink_addresses"), moved, sizeof moved),
                   (long long)json_integer_value(json_object_get(out, "uplink_routes")));
        printf("\n");
    }
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
    switch_show_services(out);
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

/* What an external switch's up or down did with its uplink. */
static void switch_print_uplink(struct store *s, json_t *sw, bool up)
{
    const char *uplink = json_string_value(json_object_get(sw, "uplink"));
    if (!up) {
        printf("  uplink %s has its addresses and routes back\n", uplink);
        return;
    }
    json_t *d = store_switch_describe(s, sw);
    char addrs[512];
    printf("  uplink %s is a port of the bridge; its addresses (%s) and %lld routes are on the "
           "bridge\n", uplink, list_text(json_object_get(d, "uplink_addresses"), addrs,
                                          sizeof addrs),
           (long long)json_integer_value(json_object_get(d, "uplink_routes")));
    if (json_is_true(json_object_get(d, "uplink_lro_turned_off")))
        printf("  LRO turned off on %s (a bridge port must not merge the frames it "
               "forwards)\n", uplink);
    json_decref(d);
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
        if (strcmp(type, "external") == 0)
            switch_print_uplink(&s, sw, up);
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

/* "HOSTPORT:VM:PORT": VM is everything between the first and the last ':'. */
static int parse_port_spec(const char *spec, int *host_port, char *vm, size_t size, int *port)
{
    const char *first = strchr(spec, ':'), *last = strrchr(spec, ':');
    char *end;
    if (!first || first == last || (size_t)(last - first - 1) >= size || last == first + 1)
        return -1;
    long hp = strtol(spec, &end, 10);
    if (end != first || hp < 1 || hp > 65535)
        return -1;
    long p = strtol(last + 1, &end, 10);
    if (*end || end == last + 1 || p < 1 || p > 65535)
        return -1;
    memcpy(vm, first + 1, (size_t)(last - first - 1));
    vm[last - first - 1] = 0;
    *host_port = (int)hp;
    *port = (int)p;
    return 0;
}

int cmd_switch_forward(const struct cli_args *a)
{
    const char *name = cli_pos(a, 0), *spec = cli_text(a, "port"), *remove = cli_text(a, "remove");
    const char *proto = cli_text(a, "protocol") ? cli_text(a, "protocol") : "tcp";
    if (spec && remove)
        return cli_verb_error(a, "give --port or --remove, not both");
    if (cli_text(a, "to") && !spec)
        return cli_verb_error(a, "--to: only with --port");
    int host_port = 0, port = 0;
    char vm[256];
    if (spec && parse_port_spec(spec, &host_port, vm, sizeof vm, &port) < 0)
        return cli_verb_error(a, "--port '%s': expected HOSTPORT:VM:PORT (ports 1-65535)", spec);
    if (remove) {
        char *end;
        long hp = strtol(remove, &end, 10);
        if (*end || end == remove || hp < 1 || hp > 65535)
            return cli_verb_error(a, "--remove '%s': expected a host port (1-65535)", remove);
        host_port = (int)hp;
    }
    if (cli_text(a, "to")) {
        uint32_t x;
        if (net_ipv4_parse(cli_text(a, "to"), &x) < 0)
            return cli_verb_error(a, "--to %s", hvm_error_message());
    }
    struct store s;
    if (vm_cli_open_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    int r = 0;
    const char *address = NULL;
    json_t *sw = NULL;
    if (spec)
        r = store_switch_forward_add(&s, name, proto, host_port, vm, port, cli_text(a, "to"),
                                     &address);
    else if (remove)
        r = store_switch_forward_remove(&s, name, proto, host_port);
    else
        sw = store_switch_get(&s, name, &r);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    if (spec) {
        printf("switch '%s': %s port %d -> VM %s port %d%s%s\n", name, proto, host_port, vm,
               port, address && *address ? " at " : "", address ? address : "");
        return EXIT_OK;
    }
    if (remove) {
        printf("switch '%s': %s port %d no longer forwarded\n", name, proto, host_port);
        return EXIT_OK;
    }
    json_t *fw = json_incref(json_object_get(sw, "forwards"));
    json_decref(sw);
    if (!fw)
        fw = json_array();
    if (cli_flag(a, "json"))
        return cli_print_json(fw);
    print_forwards(fw);
    json_decref(fw);
    return EXIT_OK;
}
