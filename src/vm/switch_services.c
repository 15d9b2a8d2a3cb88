/* DHCP, NAT and port forwards of the store's switches (switch_services.h):
 * the switches.json keys, the servers' folder, and the addresses forwards
 * reserve. The processes and rules themselves are src/net's (services.h). */
#include "vm/switch_services.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net/net.h"
#include "net/services.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vm/switch.h"
#include "vm/switch_internal.h"

#define FILE_NAME "switches.json"

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool is_true(json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

/* <store>/switches/<name>, malloc'd. */
static char *service_dir(struct store *s, const char *name)
{
    char *top = path_join(s->root, "switches");
    char *dir = top ? path_join(top, name) : NULL;
    free(top);
    return dir;
}

/* The DHCP range of sw (checked entry with dhcp): from dhcp_range, else the
 * default of its address. */
static int dhcp_range(json_t *sw, char start[NET_IPV4_TEXT], char end[NET_IPV4_TEXT])
{
    struct net_ipv4_net net;
    int r = net_ipv4_cidr_parse(str(sw, "address"), &net);
    if (r < 0)
        return r;
    const char *given = str(sw, "dhcp_range");
    if (given) {
        const char *comma = strchr(given, ',');
        if (!comma || (size_t)(comma - given) >= NET_IPV4_TEXT || strlen(comma + 1) >= NET_IPV4_TEXT)
            return hvm_error(EINVAL, "dhcp_range '%s': expected START,END", given);
        memcpy(start, given, (size_t)(comma - given));
        start[comma - given] = 0;
        strcpy(end, comma + 1);
        return 0;
    }
    uint32_t a, b;
    if ((r = net_ipv4_default_range(&net, &a, &b)) < 0)
        return r;
    net_ipv4_format(a, start);
    net_ipv4_format(b, end);
    return 0;
}

static int check_range(const char *address, const char *range)
{
    struct net_ipv4_net net;
    int r = net_ipv4_cidr_parse(address, &net);
    if (r < 0)
        return r;
    const char *comma = strchr(range, ',');
    char start[NET_IPV4_TEXT];
    uint32_t a, b;
    if (!comma || (size_t)(comma - range) >= sizeof start)
        return hvm_error(EINVAL, "dhcp range '%s': expected START,END (two IPv4 addresses)",
                         range);
    memcpy(start, range, (size_t)(comma - range));
    start[comma - range] = 0;
    if (net_ipv4_parse(start, &a) < 0 || net_ipv4_parse(comma + 1, &b) < 0)
        return hvm_error(EINVAL, "dhcp range '%s': expected START,END (two IPv4 addresses)",
                         range);
    if (!net_ipv4_in(&net, a) || !net_ipv4_in(&net, b) || a > b)
        return hvm_error(EINVAL, "dhcp range '%s': not host addresses of %s, first to last",
                         range, address);
    if (net.host >= a && net.host <= b)
        return hvm_error(EINVAL, "dhcp range '%s' holds the switch's own address %s", range,
                         address);
    return 0;
}

int switch_services_check(const char *root, size_t i, json_t *e)
{
    const char *type = str(e, "type"), *address = str(e, "address");
    bool internal = type && strcmp(type, "internal") == 0, user = type && strcmp(type, "user") == 0;
    struct net_ipv4_net net;
    bool ipv4 = address && strchr(address, '.') && net_ipv4_cidr_parse(address, &net) == 0;
    hvm_error_clear();
    static const char *const flags[] = {"dhcp", "nat"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(e, flags[k]);
        if (v && !json_is_boolean(v))
            return hvm_error(EINVAL, "%s/%s: switches[%zu].%s: expected true or false", root,
                             FILE_NAME, i, flags[k]);
        if (json_is_true(v) && (!internal || !ipv4))
            return hvm_error(EINVAL, "%s/%s: switches[%zu].%s: only an internal switch with an "
                             "IPv4 --address has %s", root, FILE_NAME, i, flags[k],
                             k ? "NAT" : "DHCP");
    }
    json_t *range = json_object_get(e, "dhcp_range");
    if (range && (!json_is_string(range) || !is_true(e, "dhcp")))
        return hvm_error(EINVAL, "%s/%s: switches[%zu].dhcp_range: only a switch with dhcp has "
                         "one, as a string", root, FILE_NAME, i);
    if (range && check_range(address, json_string_value(range)) < 0)
        return hvm_error(EINVAL, "%s/%s: switches[%zu].dhcp_range: %s", root, FILE_NAME, i,
                         hvm_error_message());
    if (is_true(e, "dhcp")) {
        uint32_t a, b;
        if (!range && net_ipv4_default_range(&net, &a, &b) < 0)
            return hvm_error(EINVAL, "%s/%s: switches[%zu].address: %s", root, FILE_NAME, i,
                             hvm_error_message());
    }
    json_t *fw = json_object_get(e, "forwards");
    if (!fw)
        return 0;
    if (!json_is_array(fw) || !(user || is_true(e, "nat")))
        return hvm_error(EINVAL, "%s/%s: switches[%zu].forwards: only a user switch or an "
                         "internal one with nat has forwards, as an array", root, FILE_NAME, i);
    size_t k;
    json_t *f;
    json_array_foreach(fw, k, f) {
        const char *proto = str(f, "protocol"), *vm = str(f, "vm"), *to = str(f, "address");
        json_t *hp = json_object_get(f, "host_port"), *port = json_object_get(f, "port");
        uint32_t a;
        const char *bad = !json_is_object(f) ? ""
            : !proto || (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) ? ".protocol"
            : !json_is_integer(hp) || json_integer_value(hp) < 1 || json_integer_value(hp) > 65535
                ? ".host_port"
            : !json_is_integer(port) || json_integer_value(port) < 1 ||
                json_integer_value(port) > 65535 ? ".port"
            : !vm || !store_name_valid(vm) ? ".vm"
            : (json_object_get(f, "address") && (!to || net_ipv4_parse(to, &a) < 0)) ||
                (!user && !to) ? ".address"
            : NULL;
        if (bad)
            return hvm_error(EINVAL, "%s/%s: switches[%zu].forwards[%zu]%s: %s", root, FILE_NAME,
                             i, k, bad, *bad ? "not valid" : "expected an object");
        for (size_t j = 0; j < k; j++) {
            json_t *o = json_array_get(fw, j);
            if (strcmp(str(o, "protocol"), proto) == 0 &&
                json_integer_value(json_object_get(o, "host_port")) == json_integer_value(hp))
                return hvm_error(EINVAL, "%s/%s: switches[%zu].forwards[%zu]: host port %s/%lld "
                                 "is forwarded twice", root, FILE_NAME, i, k, proto,
                                 (long long)json_integer_value(hp));
        }
    }
    hvm_error_clear();
    return 0;
}

/* The hosts file of dnsmasq: a fixed address for each MAC a forward
 * reserved one for. */
static int write_hosts(const char *dir, json_t *sw)
{
    size_t i;
    json_t *f;
    size_t cap = 64 * (json_array_size(json_object_get(sw, "forwards")) + 1), len = 0;
    char *text = calloc(1, cap);
    if (!text)
        return hvm_error(ENOMEM, "out of memory");
    json_t *seen = json_object();
    json_array_foreach(json_object_get(sw, "forwards"), i, f) {
        const char *mac = str(f, "mac"), *addr = str(f, "address");
        if (!mac || !addr || json_object_get(seen, mac) || !is_true(f, "reserved"))
            continue;
        json_object_set_new(seen, mac, json_true());
        len += (size_t)snprintf(text + len, cap - len, "%s,%s\n", mac, addr);
    }
    json_decref(seen);
    char *path = path_join(dir, "hosts");
    int r = path ? file_replace(path, text, len) : hvm_error(ENOMEM, "out of memory");
    free(path);
    free(text);
    return r;
}

/* The forwards as net_nat_apply takes them. */
static json_t *nat_forwards(json_t *sw)
{
    json_t *out = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(sw, "forwards"), i, f)
        json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:O}", "protocol",
                                             json_object_get(f, "protocol"), "host_port",
                                             json_object_get(f, "host_port"), "address",
                                             json_object_get(f, "address"), "port",
                                             json_object_get(f, "port")));
    return out;
}

int switch_services_up(struct store *s, json_t *sw, const char *bridge)
{
    const char *name = str(sw, "name");
    int r = 0;
    if (is_true(sw, "dhcp")) {
        char *dir = service_dir(s, name);
        char start[NET_IPV4_TEXT], end[NET_IPV4_TEXT], router[NET_IPV4_TEXT];
        struct net_ipv4_net net;
        if (!dir)
            return hvm_error(ENOMEM, "out of memory");
        if ((r = path_mkdirs(dir)) == 0 && (r = dhcp_range(sw, start, end)) == 0 &&
            (r = net_ipv4_cidr_parse(str(sw, "address"), &net)) == 0 &&
            (r = write_hosts(dir, sw)) == 0) {
            net_ipv4_format(net.host, router);
            struct net_dhcp_config c = {.bridge = bridge, .dir = dir, .range_start = start,
                                        .range_end = end,
                                        .router = is_true(sw, "nat") ? router : NULL};
            if ((r = net_dhcp_start(&c)) == 0)
                r = net_dhcp_reload(dir);
        }
        free(dir);
        if (r < 0)
            return hvm_error(-r, "switch '%s': %s", name, hvm_error_message());
    }
    if (is_true(sw, "nat")) {
        json_t *fw = nat_forwards(sw);
        if ((r = net_ipv4_forwarding_on()) == 0)
            r = net_nat_apply(bridge, bridge, str(sw, "address"), fw);
        json_decref(fw);
        if (r < 0)
            return hvm_error(-r, "switch '%s': %s", name, hvm_error_message());
    }
    return 0;
}

int switch_services_down(struct store *s, json_t *sw, const char *bridge)
{
    const char *name = str(sw, "name");
    char *dir = service_dir(s, name);
    if (!dir)
        return hvm_error(ENOMEM, "out of memory");
    /* Whatever the entry says now: a dnsmasq may run from before an edit. */
    int r = net_dhcp_stop(dir);
    free(dir);
    bool present = false;
    if (r == 0 && (is_true(sw, "nat") || (net_nat_present(bridge, &present) == 0 && present)))
        r = net_nat_remove(bridge);
    return r < 0 ? hvm_error(-r, "switch '%s': %s", name, hvm_error_message()) : 0;
}

/* The VM (name) whose current configuration has the adapter mac. */
static json_t *mac_owners(struct store *s)
{
    json_t *owners = json_object(), *all = store_vm_nics(s), *nics, *nic;
    const char *vm;
    size_t k;
    json_object_foreach(all, vm, nics)
        json_array_foreach(nics, k, nic)
            if (str(nic, "mac"))
                json_object_set_new(owners, str(nic, "mac"), json_string(vm));
    json_decref(all);
    return owners;
}

void switch_services_describe(struct store *s, json_t *sw, const char *bridge, json_t *out)
{
    const char *name = str(sw, "name");
    if (is_true(sw, "dhcp")) {
        char *dir = service_dir(s, name);
        char start[NET_IPV4_TEXT], end[NET_IPV4_TEXT], range[2 * NET_IPV4_TEXT];
        int pid = dir ? net_dhcp_pid(dir) : 0;
        json_t *leases = dir ? net_dhcp_leases(dir) : json_array();
        json_t *owners = mac_owners(s);
        size_t i;
        json_t *l;
        json_array_foreach(leases, i, l) {
            const char *vm = str(owners, str(l, "mac"));
            if (vm)
                json_object_set_new(l, "vm", json_string(vm));
        }
        json_decref(owners);
        snprintf(range, sizeof range, "%s", "?");
        if (dhcp_range(sw, start, end) == 0)
            snprintf(range, sizeof range, "%s,%s", start, end);
        json_t *d = json_pack("{s:s, s:s, s:o}", "state", pid > 0 ? "running" : "stopped",
                              "range", range, "leases", leases);
        if (pid > 0)
            json_object_set_new(d, "pid", json_integer(pid));
        json_object_set_new(out, "dhcp", d);
        free(dir);
    }
    if (is_true(sw, "nat")) {
        bool present = false;
        net_nat_present(bridge, &present);
        json_object_set_new(out, "nat", json_pack("{s:s, s:s}", "state",
                                                  present ? "active" : "inactive", "table",
                                                  bridge));
    }
    hvm_error_clear();
}

void switch_services_forget(struct store *s, const char *name)
{
    char *dir = service_dir(s, name);
    if (dir)
        path_remove_tree(dir);
    free(dir);
    hvm_error_clear();
}

/* The MAC of vm's first adapter on the switch name: 0, or an error. */
static int vm_mac_on(struct store *s, const char *vm, const char *name, char mac[32])
{
    char *dir = store_vm_dir(s, vm);
    char *cfg = dir ? path_join(dir, "vm.json") : NULL;
    json_t *doc = cfg ? json_load_file(cfg, 0, NULL) : NULL;
    free(cfg);
    free(dir);
    if (!doc)
        return hvm_error(ENOENT, "no VM '%s' in the store", vm);
    size_t k;
    json_t *nic;
    int r = hvm_error(ENOENT, "VM '%s' has no network adapter on switch '%s' (hvm vm set %s "
                      "--add-nic %s)", vm, name, vm, name);
    json_array_foreach(json_object_get(json_object_get(doc, "config"), "nics"), k, nic) {
        const char *sw = str(nic, "switch"), *m = str(nic, "mac");
        if (sw && m && strcmp(sw, name) == 0 && strlen(m) < 32) {
            strcpy(mac, m);
            hvm_error_clear();
            r = 0;
            break;
        }
    }
    json_decref(doc);
    return r;
}

/* The address for mac: one a forward reserved for it already, its lease,
 * else the first address of the range nobody holds. */
static int reserve_address(struct store *s, json_t *sw, const char *mac, char out[NET_IPV4_TEXT])
{
    size_t i;
    json_t *f, *l;
    json_array_foreach(json_object_get(sw, "forwards"), i, f)
        if (str(f, "mac") && strcasecmp(str(f, "mac"), mac) == 0 && is_true(f, "reserved")) {
            snprintf(out, NET_IPV4_TEXT, "%s", str(f, "address"));
            return 0;
        }
    char *dir = service_dir(s, str(sw, "name"));
    json_t *leases = dir ? net_dhcp_leases(dir) : json_array();
    free(dir);
    int r = -EADDRNOTAVAIL;
    json_array_foreach(leases, i, l)
        if (strcasecmp(str(l, "mac"), mac) == 0) {
            snprintf(out, NET_IPV4_TEXT, "%s", str(l, "address"));
            r = 0;
        }
    char start[NET_IPV4_TEXT], end[NET_IPV4_TEXT];
    uint32_t a, b;
    if (r < 0 && dhcp_range(sw, start, end) == 0 && net_ipv4_parse(start, &a) == 0 &&
        net_ipv4_parse(end, &b) == 0) {
        for (uint32_t x = a; x <= b && r < 0; x++) {
            char text[NET_IPV4_TEXT];
            bool taken = false;
            net_ipv4_format(x, text);
            json_array_foreach(leases, i, l)
                taken |= strcmp(str(l, "address"), text) == 0;
            json_array_foreach(json_object_get(sw, "forwards"), i, f)
                taken |= strcmp(str(f, "address"), text) == 0;
            if (!taken) {
                strcpy(out, text);
                r = 0;
            }
        }
    }
    json_decref(leases);
    return r < 0 ? hvm_error(EADDRNOTAVAIL, "switch '%s': no free address in its DHCP range "
                             "for a forward", str(sw, "name")) : 0;
}

/* Applies the switch's forwards where it is up: the hosts file and NAT. */
static int forwards_apply(struct store *s, json_t *sw)
{
    char bridge[NET_IFNAME_MAX + 1];
    struct net_link link;
    store_switch_bridge_name(str(sw, "name"), bridge);
    if (strcmp(str(sw, "type"), "internal") != 0 || net_link_get(bridge, &link) < 0 || !link.up) {
        hvm_error_clear();
        return 0;
    }
    return switch_services_up(s, sw, bridge);
}

int store_switch_forward_add(struct store *s, const char *name, const char *protocol,
                             int host_port, const char *vm, int port, const char *to,
                             const char **address)
{
    static char addr[NET_IPV4_TEXT];
    int lock = store_lock(s);
    if (lock < 0)
        return lock;
    int r = 0;
    char mac[32];
    json_t *doc = switches_load(s);
    json_t *sw = doc ? find_switch(doc, name, NULL) : NULL;
    const char *type = sw ? str(sw, "type") : NULL;
    if (!doc) {
        r = -EINVAL;
    } else if (!sw) {
        r = hvm_error(ENOENT, "no switch '%s' in %s/%s", name, s->root, FILE_NAME);
    } else if (strcmp(type, "user") != 0 && !is_true(sw, "nat")) {
        r = hvm_error(EINVAL, "switch '%s' is %s without NAT: forwards need an internal switch "
                      "with --nat, or a user switch", name, type);
    } else if ((r = vm_mac_on(s, vm, name, mac)) == 0) {
        json_t *f = json_pack("{s:s, s:i, s:s, s:i}", "protocol", protocol, "host_port",
                              host_port, "vm", vm, "port", port);
        addr[0] = 0;
        if (to) {
            snprintf(addr, sizeof addr, "%s", to);
            json_object_set_new(f, "address", json_string(to));
        } else if (strcmp(type, "internal") == 0) {
            if (!is_true(sw, "dhcp"))
                r = hvm_error(EINVAL, "switch '%s' has no DHCP server to give VM '%s' a known "
                              "address: give it with --to ADDRESS", name, vm);
            else if ((r = reserve_address(s, sw, mac, addr)) == 0)
                json_object_set_new(f, "address", json_string(addr));
            json_object_set_new(f, "mac", json_string(mac));
            json_object_set_new(f, "reserved", json_true());
        }
        if (!json_object_get(sw, "forwards"))
            json_object_set_new(sw, "forwards", json_array());
        json_array_append_new(json_object_get(sw, "forwards"), f);
        if (r == 0)
            r = switch_services_check(s->root, 0, sw);
        if (r == 0 && (r = switches_save(s, doc)) == 0)
            r = forwards_apply(s, sw);
        *address = addr;
    }
    json_decref(doc);
    store_unlock(lock);
    return r;
}

int store_switch_forward_remove(struct store *s, const char *name, const char *protocol,
                                int host_port)
{
    int lock = store_lock(s);
    if (lock < 0)
        return lock;
    int r;
    json_t *doc = switches_load(s);
    json_t *sw = doc ? find_switch(doc, name, NULL) : NULL;
    if (!doc) {
        r = -EINVAL;
    } else if (!sw) {
        r = hvm_error(ENOENT, "no switch '%s' in %s/%s", name, s->root, FILE_NAME);
    } else {
        r = hvm_error(ENOENT, "switch '%s' forwards no %s port %d", name, protocol, host_port);
        json_t *fw = json_object_get(sw, "forwards");
        for (size_t i = 0; i < json_array_size(fw); i++) {
            json_t *f = json_array_get(fw, i);
            if (strcmp(str(f, "protocol"), protocol) == 0 &&
                json_integer_value(json_object_get(f, "host_port")) == host_port) {
                json_array_remove(fw, i);
                hvm_error_clear();
                r = 0;
                break;
            }
        }
        if (r == 0 && (r = switches_save(s, doc)) == 0)
            r = forwards_apply(s, sw);
    }
    json_decref(doc);
    store_unlock(lock);
    return r;
}
