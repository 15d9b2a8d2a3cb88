/* Offload control and diagnosis of a switch's bridges (see switch.h):
 * the "offload" object of its switches.json entry ({"tso": false, ...}),
 * applied to the bridges' ports, and the known bad combinations of
 * features, MTUs, bond modes and br_netfilter, each with its fix. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"
#include "vm/switch.h"

int store_switch_offload_want(json_t *sw, int *want)
{
    for (int i = 0; i < NET_OFFLOADS; i++)
        want[i] = -1;
    json_t *off = json_object_get(sw, "offload");
    if (!off)
        return 0;
    const char *name = json_string_value(json_object_get(sw, "name"));
    if (!json_is_object(off))
        return hvm_error(EINVAL, "switches.json: switch '%s': offload: expected an object",
                         name ? name : "?");
    const char *k;
    json_t *v;
    json_object_foreach(off, k, v) {
        int i = net_offload_index(k);
        if (i < 0 || !json_is_boolean(v))
            return hvm_error(EINVAL, "switches.json: switch '%s': offload.%s: expected one of "
                             "tso, gso, gro, lro, tx, rx, sg, as true or false",
                             name ? name : "?", k);
        want[i] = json_is_true(v);
    }
    return 0;
}

int store_switch_offload_parse(const char *spec, int *want)
{
    for (int i = 0; i < NET_OFFLOADS; i++)
        want[i] = -1;
    char *copy = strdup(spec), *save = NULL;
    if (!copy)
        return hvm_error(ENOMEM, "out of memory");
    int r = 0, n = 0;
    for (char *item = strtok_r(copy, ",", &save); item && r == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        int i = -1;
        if (eq) {
            *eq = 0;
            i = net_offload_index(item);
        }
        if (i < 0 || (strcmp(eq + 1, "on") != 0 && strcmp(eq + 1, "off") != 0))
            r = hvm_error(EINVAL, "--offload: '%s%s%s': expected NAME=on|off, NAME one of "
                          "tso, gso, gro, lro, tx, rx, sg", item, eq ? "=" : "",
                          eq ? eq + 1 : "");
        else
            want[i] = strcmp(eq + 1, "on") == 0, n++;
    }
    free(copy);
    if (r == 0 && n == 0)
        r = hvm_error(EINVAL, "--offload: expected NAME=on|off[,...]");
    return r;
}

/* The bridges of a bridge switch that exist: its own and its VLANs'. */
static json_t *switch_bridges(json_t *sw)
{
    json_t *out = json_array();
    const char *name = json_string_value(json_object_get(sw, "name"));
    char bridge[NET_IFNAME_MAX + 1];
    struct net_link link;
    store_switch_bridge_name(name, bridge);
    if (net_link_get(bridge, &link) == 0 && link.is_bridge)
        json_array_append_new(out, json_string(bridge));
    for (int v = 1; v <= 4094; v++) {
        store_switch_vlan_bridge_name(name, v, bridge);
        if (net_link_get(bridge, &link) == 0 && link.is_bridge)
            json_array_append_new(out, json_string(bridge));
    }
    hvm_error_clear();
    return out;
}

/* Applies the switch's kept offload settings to every port of its bridges. */
int store_switch_offload_reapply(json_t *sw)
{
    int want[NET_OFFLOADS];
    int r = store_switch_offload_want(sw, want);
    if (r < 0 || !json_object_get(sw, "offload"))
        return r;
    json_t *bridges = switch_bridges(sw);
    size_t i;
    json_t *b;
    json_array_foreach(bridges, i, b) {
        char **ports;
        if (r == 0 && (r = net_bridge_ports(json_string_value(b), &ports)) == 0) {
            for (size_t k = 0; ports[k] && r == 0; k++)
                r = net_offloads_set(ports[k], want);
            net_names_free(ports);
        }
    }
    json_decref(bridges);
    return r;
}

int store_switch_set_offload(struct store *s, const char *name, const char *spec)
{
    int want[NET_OFFLOADS];
    int r = store_switch_offload_parse(spec, want);
    if (r < 0)
        return r;
    json_t *sw = store_switch_get(s, name, &r);
    if (!sw)
        return r;
    const char *type = json_string_value(json_object_get(sw, "type"));
    json_t *off = json_object_get(sw, "offload");
    if (strcmp(type, "user") == 0)
        r = hvm_error(EINVAL, "switch '%s' is of type user (no bridge): it has no offloads to "
                      "set", name);
    else if (off && !json_is_object(off))
        r = store_switch_offload_want(sw, want);
    if (r < 0) {
        json_decref(sw);
        return r;
    }
    json_t *merged = off ? json_deep_copy(off) : json_object();
    for (int i = 0; i < NET_OFFLOADS; i++)
        if (want[i] >= 0)
            json_object_set_new(merged, net_offload_name(i), json_boolean(want[i]));
    json_decref(sw);
    /* Kept first, then applied: a port that refuses is reported, and the
     * setting still reaches the taps made later. */
    if ((r = store_switch_set_field(s, name, "offload", merged)) < 0)
        return r;
    sw = store_switch_get(s, name, &r);
    if (sw)
        r = store_switch_offload_reapply(sw);
    json_decref(sw);
    return r;
}

static void problem(json_t *list, const char *iface, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(json_t *list, const char *iface, const char *fix, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "interface", iface, "problem", text,
                                          "fix", fix));
}

/* Ports whose feature i is on, and those whose is off, among the ports
 * whose driver lets it change: both non-empty is a mismatch. */
static void mismatch(json_t *ports, json_t *problems, const char *sw, const char *feature)
{
    json_t *on = json_array(), *off = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) {
        json_t *v = json_object_get(json_object_get(p, "offload"), feature);
        if (v && json_is_true(json_object_get(json_object_get(p, "changeable"), feature)))
            json_array_append(json_is_true(v) ? on : off, json_object_get(p, "name"));
    }
    if (json_array_size(on) && json_array_size(off)) {
        char fix[200];
        snprintf(fix, sizeof fix, "hvm switch set %s --offload %s=off", sw, feature);
        problem(problems, json_string_value(json_array_get(off, 0)), fix,
                "%s mismatch: on for %s, off for %s (and %zu more port(s)): segments are split "
                "or merged differently on each side of the bridge", feature,
                json_string_value(json_array_get(on, 0)),
                json_string_value(json_array_get(off, 0)),
                json_array_size(on) + json_array_size(off) - 2);
    }
    json_decref(on);
    json_decref(off);
}

json_t *store_switch_diagnose(struct store *s, const char *name)
{
    int r;
    json_t *sw = store_switch_get(s, name, &r);
    if (!sw)
        return NULL;
    const char *type = json_string_value(json_object_get(sw, "type"));
    if (strcmp(type, "user") == 0) {
        hvm_error(EINVAL, "switch '%s' is of type user (QEMU's user-mode networking): no "
                  "bridge to diagnose", name);
        json_decref(sw);
        return NULL;
    }
    json_t *out = json_pack("{s:s, s:s, s:s}", "name", name, "type", type, "vlan_mode",
                            store_switch_vlan_mode(sw));
    json_t *bridges = json_array(), *ports = json_array(), *problems = json_array();
    json_t *names = switch_bridges(sw);
    size_t i;
    json_t *b;
    char fix[200];
    json_array_foreach(names, i, b) {
        const char *br = json_string_value(b);
        int bmtu = 0;
        if (net_link_mtu(br, &bmtu) < 0)
            hvm_error_clear();
        json_array_append_new(bridges, json_pack("{s:s, s:i}", "name", br, "mtu", bmtu));
        char **list;
        if (net_bridge_ports(br, &list) < 0) {
            hvm_error_clear();
            continue;
        }
        for (size_t k = 0; list[k]; k++) {
            const char *port = list[k];
            json_t *p = json_pack("{s:s, s:s}", "name", port, "bridge", br);
            char kind[16];
            int mode, mtu = 0;
            if (net_link_kind(port, kind, &mode) == 0)
                json_object_set_new(p, "kind", json_string(kind[0] ? kind : "device"));
            if (net_link_mtu(port, &mtu) == 0)
                json_object_set_new(p, "mtu", json_integer(mtu));
            struct net_offloads f;
            if (net_offloads_get(port, &f) == 0) {
                json_t *on = json_object(), *ch = json_object();
                for (int x = 0; x < NET_OFFLOADS; x++) {
                    json_object_set_new(on, net_offload_name(x), json_boolean(f.on[x]));
                    json_object_set_new(ch, net_offload_name(x), json_boolean(f.changeable[x]));
                }
                json_object_set_new(p, "offload", on);
                json_object_set_new(p, "changeable", ch);
                int lro = net_offload_index("lro"), tx = net_offload_index("tx");
                if (f.on[lro]) {
                    snprintf(fix, sizeof fix, "hvm switch set %s --offload lro=off", name);
                    problem(problems, port, fix, "LRO is on for a bridge port: merged frames "
                            "cannot be forwarded as they are and guests see stalls or drops");
                }
                if (strcmp(kind, "tun") == 0 && f.on[tx]) {
                    snprintf(fix, sizeof fix, "hvm switch set %s --offload tx=off", name);
                    problem(problems, port, fix, "tx checksum offload is on for a tap: packets "
                            "the host makes (DHCP replies) can reach the guest with a bad UDP "
                            "checksum");
                }
            } else {
                json_object_set_new(p, "error", json_string(hvm_error_message()));
            }
            hvm_error_clear();
            if (mtu && bmtu && mtu != bmtu) {
                snprintf(fix, sizeof fix, "ip link set %s mtu %d (or the bridge's to match)",
                         port, bmtu);
                problem(problems, port, fix, "MTU %d, its bridge %s has %d: larger frames are "
                        "dropped without an error", mtu, br, bmtu);
            }
            if (strcmp(kind, "bond") == 0 && (mode == 5 || mode == 6))
                problem(problems, port, "use mode active-backup or 802.3ad (LACP) for a "
                        "bonded uplink of a bridge", "bond in %s mode under a bridge: it "
                        "rewrites source MAC addresses, guests lose replies",
                        mode == 5 ? "balance-tlb" : "balance-alb");
            json_array_append_new(ports, p);
        }
        net_names_free(list);
    }
    json_decref(names);
    mismatch(ports, problems, name, "gro");
    mismatch(ports, problems, name, "tso");
    bool brnf = access("/sys/module/br_netfilter", F_OK) == 0;
    if (brnf)
        problem(problems, "host", "modprobe -r br_netfilter, or sysctl "
                "net.bridge.bridge-nf-call-iptables=0 and bridge-nf-call-ip6tables=0",
                "br_netfilter is loaded: the host's firewall (iptables, nftables ip tables) "
                "sees bridged guest traffic and may drop it");
    json_object_set_new(out, "br_netfilter", json_boolean(brnf));
    json_object_set_new(out, "bridges", bridges);
    json_object_set_new(out, "ports", ports);
    json_object_set_new(out, "problems", problems);
    if (json_object_get(sw, "offload"))
        json_object_set(out, "offload", json_object_get(sw, "offload"));
    json_decref(sw);
    return out;
}
