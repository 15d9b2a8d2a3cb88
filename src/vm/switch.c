/* The store's virtual switches (see switch.h): the switches.json model and
 * bringing each switch's bridge up and down through src/net. */
#include "vm/switch.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"
#include "vm/switch_external.h"
#include "vm/switch_internal.h"
#include "vm/switch_services.h"

#define SWITCHES_FILE "switches.json"

void store_switch_bridge_name(const char *name, char *out)
{
    size_t n = strlen(name);
    bool plain = n > 0 && n <= NET_IFNAME_MAX - 4;
    for (const char *p = name; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-';
    if (plain) {
        snprintf(out, NET_IFNAME_MAX + 1, "hvm-%s", name);
        return;
    }
    /* FNV-1a, 64 bits: stable across hosts and versions, which is what a
     * derived name needs; 44 of its bits make the name, and create refuses
     * the rare collision with another switch of the store. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    snprintf(out, NET_IFNAME_MAX + 1, "hvm_%011llx", (unsigned long long)(h >> 20));
}

static bool is_bridge_type(const char *type)
{
    return strcmp(type, "private") == 0 || strcmp(type, "internal") == 0 ||
           strcmp(type, "external") == 0;
}

/* The document of root/switches.json: {"format", "switches": [objects]},
 * every entry checked; NULL with the error recorded. */
json_t *switches_load(struct store *s)
{
    char *path = path_join(s->root, SWITCHES_FILE);
    if (!path) {
        hvm_error(ENOMEM, "out of memory");
        return NULL;
    }
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        free(path);
        return json_pack("{s:i, s:[]}", "format", 1, "switches");
    }
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    free(path);
    if (!doc) {
        hvm_error(EINVAL, "%s/%s: line %d: %s", s->root, SWITCHES_FILE, jerr.line, jerr.text);
        return NULL;
    }
    json_t *list = json_object_get(doc, "switches");
    if (!json_is_object(doc) || !json_is_array(list)) {
        hvm_error(EINVAL, "%s/%s: switches: expected an array", s->root, SWITCHES_FILE);
        json_decref(doc);
        return NULL;
    }
    json_t *seen = json_object();
    size_t i;
    json_t *e;
    int r = 0;
    json_array_foreach(list, i, e) {
        if (json_is_string(e)) {
            json_array_set_new(list, i, json_pack("{s:s, s:s}", "name", json_string_value(e),
                                                  "type", "user"));
            e = json_array_get(list, i);
        }
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *type = json_string_value(json_object_get(e, "type"));
        json_t *addr = json_object_get(e, "address");
        json_t *uplink = json_object_get(e, "uplink"), *force = json_object_get(e, "force");
        bool external = type && strcmp(type, "external") == 0;
        if (!json_is_object(e))
            r = hvm_error(EINVAL, "%s/%s: switches[%zu]: expected an object or a name",
                          s->root, SWITCHES_FILE, i);
        else if (!name || !store_name_valid(name))
            r = hvm_error(EINVAL, "%s/%s: switches[%zu].name: expected a name (no '/' or ',')",
                          s->root, SWITCHES_FILE, i);
        else if (json_object_get(seen, name))
            r = hvm_error(EINVAL, "%s/%s: switches[%zu].name: '%s' is there twice", s->root,
                          SWITCHES_FILE, i, name);
        else if (!type || (!is_bridge_type(type) && strcmp(type, "user") != 0))
            r = hvm_error(EINVAL, "%s/%s: switches[%zu].type: expected private, internal, "
                          "external or user", s->root, SWITCHES_FILE, i);
        else if (external != (uplink != NULL) ||
                 (uplink && !net_ifname_valid(json_string_value(uplink))))
            r = hvm_error(EINVAL, "%s/%s: switches[%zu].uplink: an external switch has one, "
                          "an interface name; no other switch has one", s->root, SWITCHES_FILE, i);
        else if (force && (!external || !json_is_boolean(force)))
            r = hvm_error(EINVAL, "%s/%s: switches[%zu].force: only an external switch has it, "
                          "true or false", s->root, SWITCHES_FILE, i);
        else if (addr && (!json_is_string(addr) || strcmp(type, "internal") != 0))
            r = hvm_error(EINVAL, "%s/%s: switches[%zu].address: only an internal switch has "
                          "one, as a string", s->root, SWITCHES_FILE, i);
        else if (addr && net_cidr_check(json_string_value(addr)) < 0)
            r = hvm_error(EINVAL, "%s/%s: switches[%zu].address: %s", s->root, SWITCHES_FILE, i,
                          hvm_error_message());
        if (r == 0)
            r = switch_services_check(s->root, i, e);
        if (r < 0)
            break;
        json_object_set_new(seen, name, json_true());
    }
    json_decref(seen);
    if (r < 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int switches_save(struct store *s, json_t *doc)
{
    return store_json_replace(s->root, SWITCHES_FILE, doc);
}

json_t *find_switch(json_t *doc, const char *name, size_t *index)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "switches"), i, e)
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0) {
            if (index)
                *index = i;
            return e;
        }
    return NULL;
}

json_t *store_switches(struct store *s)
{
    json_t *doc = switches_load(s);
    if (!doc)
        return NULL;
    json_t *list = json_incref(json_object_get(doc, "switches"));
    json_decref(doc);
    return list;
}

json_t *store_switch_get(struct store *s, const char *name, int *err)
{
    json_t *doc = switches_load(s);
    if (!doc) {
        *err = -EINVAL;
        return NULL;
    }
    json_t *e = json_incref(find_switch(doc, name, NULL));
    json_decref(doc);
    *err = e ? 0 : hvm_error(ENOENT, "no switch '%s' in %s/%s (see 'hvm switch list')", name,
                             s->root, SWITCHES_FILE);
    return e;
}

int store_switch_create(struct store *s, const char *name, const char *type,
                        const char *address)
{
    return store_switch_create_with(s, name, type, address, NULL);
}

int store_switch_create_with(struct store *s, const char *name, const char *type,
                             const char *address, json_t *more)
{
    if (!store_name_valid(name))
        return hvm_error(EINVAL, "'%s': not a switch name (no '/', ',' or leading '-' or '.')",
                         name);
    if (!is_bridge_type(type) && strcmp(type, "user") != 0)
        return hvm_error(EINVAL, "switch type '%s': expected private, internal, external or user",
                         type);
    const char *uplink = json_string_value(json_object_get(more, "uplink"));
    if ((strcmp(type, "external") == 0) != (uplink != NULL))
        return hvm_error(EINVAL, uplink ? "--uplink: only an external switch has an uplink"
                                        : "an external switch needs --uplink IFACE");
    if (address && strcmp(type, "internal") != 0)
        return hvm_error(EINVAL, "--address: only an internal switch has a host address");
    if (address && net_cidr_check(address) < 0)
        return -EINVAL;
    char bridge[NET_IFNAME_MAX + 1];
    store_switch_bridge_name(name, bridge);
    if (uplink) {
        int r = switch_uplink_check(name, uplink, bridge,
                                    json_is_true(json_object_get(more, "force")));
        if (r < 0)
            return r;
    }
    int lock = store_lock(s);
    if (lock < 0)
        return lock;
    int r = 0;
    json_t *doc = switches_load(s);
    if (!doc) {
        r = -EINVAL;
        goto out;
    }
    if (find_switch(doc, name, NULL)) {
        r = hvm_error(EEXIST, "switch '%s' exists already", name);
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "switches"), i, e) {
        char other[NET_IFNAME_MAX + 1];
        store_switch_bridge_name(json_string_value(json_object_get(e, "name")), other);
        if (is_bridge_type(json_string_value(json_object_get(e, "type"))) &&
            strcmp(other, bridge) == 0) {
            r = hvm_error(EEXIST, "switch '%s' would share the bridge name %s with switch '%s': "
                          "choose another name", name, bridge,
                          json_string_value(json_object_get(e, "name")));
            goto out;
        }
        const char *other_uplink = json_string_value(json_object_get(e, "uplink"));
        if (uplink && other_uplink && strcmp(uplink, other_uplink) == 0) {
            r = hvm_error(EBUSY, "uplink %s is the uplink of switch '%s' already", uplink,
                          json_string_value(json_object_get(e, "name")));
            goto out;
        }
    }
    e = json_pack("{s:s, s:s}", "name", name, "type", type);
    if (address)
        json_object_set_new(e, "address", json_string(address));
    if (more)
        json_object_update(e, more);
    json_array_append_new(json_object_get(doc, "switches"), e);
    r = switch_services_check(s->root, json_array_size(json_object_get(doc, "switches")) - 1, e);
    if (r == 0)
        r = switches_save(s, doc);
out:
    json_decref(doc);
    store_unlock(lock);
    return r;
}

json_t *store_vm_nics(struct store *s)
{
    json_t *all = json_object();
    char **names;
    if (store_list(s, &names) < 0)
        return all;
    for (size_t i = 0; names[i]; i++) {
        char *dir = store_vm_dir(s, names[i]);
        char *cfg = dir ? path_join(dir, "vm.json") : NULL;
        json_t *doc = cfg ? json_load_file(cfg, 0, NULL) : NULL;
        json_t *nics = json_object_get(json_object_get(doc, "config"), "nics");
        if (json_is_array(nics))
            json_object_set(all, names[i], nics);
        json_decref(doc);
        free(cfg);
        free(dir);
    }
    store_names_free(names);
    return all;
}

json_t *store_switch_users(struct store *s, const char *name)
{
    json_t *users = json_array(), *all = store_vm_nics(s), *nics, *nic;
    const char *vm;
    size_t k;
    json_object_foreach(all, vm, nics) {
        bool uses = false;
        json_array_foreach(nics, k, nic) {
            const char *sw = json_string_value(json_object_get(nic, "switch"));
            uses |= sw && strcmp(sw, name) == 0;
        }
        if (uses)
            json_array_append_new(users, json_string(vm));
    }
    json_decref(all);
    return users;
}

/* "a, b, c" of an array of strings, malloc'd. */
static char *join_names(json_t *list)
{
    size_t len = 1, i;
    json_t *x;
    json_array_foreach(list, i, x)
        len += strlen(json_string_value(x)) + 2;
    char *out = calloc(1, len);
    json_array_foreach(list, i, x) {
        if (!out)
            break;
        if (i)
            strcat(out, ", ");
        strcat(out, json_string_value(x));
    }
    return out;
}

static int vlan_bridges_down(const char *name);

/* Bridge down, the store lock held, sw a checked entry. */
static int switch_down_locked(struct store *s, json_t *sw)
{
    const char *name = json_string_value(json_object_get(sw, "name"));
    if (!is_bridge_type(json_string_value(json_object_get(sw, "type"))))
        return 0;
    char bridge[NET_IFNAME_MAX + 1];
    store_switch_bridge_name(name, bridge);
    if (json_object_get(sw, "uplink"))
        return switch_external_down(s, sw, bridge);
    struct net_link link;
    int r = net_link_get(bridge, &link);
    if (r == -ENODEV) { /* its VLANs' bridges may outlive it (deleted by hand) */
        r = vlan_bridges_down(name);
        return r < 0 ? r : switch_services_down(s, sw, bridge);
    }
    if (r < 0)
        return r;
    if (!link.is_bridge)
        return hvm_error(EEXIST, "%s: not a bridge (an interface of switch '%s''s bridge name "
                         "that hvm did not make), not deleted", bridge, name);
    char **ports;
    if ((r = net_bridge_ports(bridge, &ports)) < 0)
        return r;
    if (ports[0]) {
        json_t *list = json_array();
        for (size_t i = 0; ports[i]; i++)
            json_array_append_new(list, json_string(ports[i]));
        char *text = join_names(list);
        r = hvm_error(EBUSY, "switch '%s': its bridge %s has ports (%s): stop the VMs "
                      "connected to it first", name, bridge, text ? text : "?");
        free(text);
        json_decref(list);
    }
    net_names_free(ports);
    if (r == 0)
        r = vlan_bridges_down(name);
    if (r == 0)
        r = switch_services_down(s, sw, bridge);
    return r < 0 ? r : net_bridge_delete(bridge);
}

int store_switch_delete(struct store *s, const char *name)
{
    int lock = store_lock(s);
    if (lock < 0)
        return lock;
    int r;
    size_t index;
    json_t *users = NULL, *doc = switches_load(s);
    json_t *sw = doc ? find_switch(doc, name, &index) : NULL;
    if (!doc) {
        r = -EINVAL;
    } else if (!sw) {
        r = hvm_error(ENOENT, "no switch '%s' in %s/%s", name, s->root, SWITCHES_FILE);
    } else if (json_array_size(users = store_switch_users(s, name)) > 0) {
        char *text = join_names(users);
        size_t n = json_array_size(users);
        r = hvm_error(EBUSY, "switch '%s' is used by the network adapters of %s %s: remove "
                      "them first (hvm vm set VM --remove-nic MAC)", name,
                      n == 1 ? "VM" : "VMs", text ? text : "?");
        free(text);
    } else if ((r = switch_down_locked(s, sw)) == 0) {
        json_array_remove(json_object_get(doc, "switches"), index);
        if ((r = switches_save(s, doc)) == 0)
            switch_services_forget(s, name);
    }
    json_decref(users);
    json_decref(doc);
    store_unlock(lock);
    return r;
}

int store_switch_up(struct store *s, const char *name)
{
    /* Under the store lock, so that a delete running at the same time
     * cannot leave the bridge of a switch that no longer exists. */
    int lock = store_lock(s);
    if (lock < 0)
        return lock;
    int r;
    json_t *sw = store_switch_get(s, name, &r);
    const char *type = sw ? json_string_value(json_object_get(sw, "type")) : NULL;
    if (sw && is_bridge_type(type)) {
        char bridge[NET_IFNAME_MAX + 1];
        const char *address = json_string_value(json_object_get(sw, "address"));
        store_switch_bridge_name(name, bridge);
        bool private = strcmp(type, "private") == 0;
        if (strcmp(type, "external") == 0)
            r = switch_external_up(s, sw, bridge);
        else if ((r = net_bridge_create(bridge)) == 0 && private)
            r = net_link_no_link_local(bridge);
        if (r == 0 && address)
            r = net_addr_add(bridge, address);
        if (r == 0)
            r = net_link_set_up(bridge);
        if (r == 0)
            r = store_switch_offload_reapply(sw);
        if (r == 0)
            r = switch_services_up(s, sw, bridge);
    }
    json_decref(sw);
    store_unlock(lock);
    return r;
}

int store_switch_down(struct store *s, const char *name)
{
    int lock = store_lock(s);
    if (lock < 0)
        return lock;
    int r;
    json_t *sw = store_switch_get(s, name, &r);
    if (sw)
        r = switch_down_locked(s, sw);
    json_decref(sw);
    store_unlock(lock);
    return r;
}

json_t *store_switch_describe(struct store *s, json_t *sw)
{
    json_t *out = json_deep_copy(sw);
    const char *name = json_string_value(json_object_get(sw, "name"));
    json_t *ports = json_array();
    const char *state = "none";
    if (is_bridge_type(json_string_value(json_object_get(sw, "type")))) {
        char bridge[NET_IFNAME_MAX + 1];
        struct net_link link;
        store_switch_bridge_name(name, bridge);
        json_object_set_new(out, "bridge", json_string(bridge));
        int r = net_link_get(bridge, &link);
        state = r == -ENODEV ? "absent" : r < 0 ? "unknown" : !link.is_bridge ? "not-a-bridge"
              : link.up ? "up" : "down";
        char **names;
        if (r == 0 && link.is_bridge && net_bridge_ports(bridge, &names) == 0) {
            for (size_t i = 0; names[i]; i++)
                json_array_append_new(ports, json_string(names[i]));
            net_names_free(names);
        }
        switch_services_describe(s, sw, bridge, out);
        if (json_object_get(sw, "uplink"))
            switch_external_describe(s, sw, out);
        hvm_error_clear();
    }
    json_object_set_new(out, "state", json_string(state));
    json_object_set_new(out, "vlan_mode", json_string(store_switch_vlan_mode(sw)));
    json_object_set_new(out, "ports", ports);
    json_object_set_new(out, "vms", store_switch_users(s, name));
    return out;
}

/* VLANs. Where the kernel has bridge VLAN filtering, the switch's bridge
 * filters and each tap gets its VLAN as PVID. Where it does not (no
 * CONFIG_BRIDGE_VLAN_FILTERING, and so no 802.1Q either on the kernels
 * met so far), a VLAN of a private or internal switch is a bridge of its
 * own, which isolates it just as well: VMs on one VLAN share a bridge and
 * nothing else. An internal switch's host address stays on the untagged
 * bridge. */

void store_switch_vlan_bridge_name(const char *name, int vlan, char *out)
{
    char plain[NET_IFNAME_MAX + 2];
    int n = snprintf(plain, sizeof plain, "hvv-%s.%d", name, vlan);
    bool ok = n > 0 && n <= NET_IFNAME_MAX;
    for (const char *p = name; *p && ok; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
             (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-';
    if (ok) {
        memcpy(out, plain, (size_t)n + 1);
        return;
    }
    /* FNV-1a of the name, a NUL and the VLAN: stable, and apart from the
     * switches' own bridges by the "hvv" prefix. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h *= 0x100000001b3ull;
    char v[8];
    snprintf(v, sizeof v, "%d", vlan);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    snprintf(out, NET_IFNAME_MAX + 1, "hvv_%011llx", (unsigned long long)(h >> 20));
}

const char *store_switch_vlan_mode(json_t *sw)
{
    const char *type = json_string_value(json_object_get(sw, "type"));
    if (!type || !is_bridge_type(type))
        return "none";
    char bridge[NET_IFNAME_MAX + 1];
    store_switch_bridge_name(json_string_value(json_object_get(sw, "name")), bridge);
    bool capable;
    int r = net_bridge_vlan_capable(bridge, &capable);
    hvm_error_clear();
    return r < 0 ? "unknown" : capable ? "filtering" : "bridge-per-vlan";
}

int store_switch_vlan_attach(struct store *s, const char *name, int vlan, char *bridge,
                             int *pvid)
{
    *pvid = 0;
    if (vlan < 1 || vlan > 4094)
        return hvm_error(EINVAL, "switch '%s': VLAN %d: expected 1-4094", name, vlan);
    int lock = store_lock(s);
    if (lock < 0)
        return lock;
    int r;
    json_t *sw = store_switch_get(s, name, &r);
    const char *type = sw ? json_string_value(json_object_get(sw, "type")) : NULL;
    if (sw && !is_bridge_type(type)) {
        r = hvm_error(EINVAL, "switch '%s' (%s): VLANs need a bridge switch (private or "
                      "internal)", name, type);
    } else if (sw) {
        char base[NET_IFNAME_MAX + 1];
        bool capable = false;
        store_switch_bridge_name(name, base);
        r = net_bridge_vlan_capable(base, &capable);
        if (r == 0 && capable) {
            /* Untested here: this machine's kernel has no VLAN filtering. */
            r = net_bridge_vlan_filtering_on(base);
            memcpy(bridge, base, sizeof base);
            *pvid = vlan;
        } else if (r == 0 && strcmp(type, "external") == 0) {
            r = hvm_error(EOPNOTSUPP, "switch '%s': VLAN %d: this kernel has no bridge VLAN "
                          "filtering, and an external switch's VLANs need it (the uplink "
                          "carries them tagged)", name, vlan);
        } else if (r == 0) {
            store_switch_vlan_bridge_name(name, vlan, bridge);
            if ((r = net_bridge_create(bridge)) == 0)
                r = net_link_no_link_local(bridge);
            if (r == 0)
                r = net_link_set_up(bridge);
        }
    }
    json_decref(sw);
    store_unlock(lock);
    return r;
}

/* The per-VLAN bridges of switch name that exist: down (deleted) when
 * none has ports, else -EBUSY naming the ports. */
static int vlan_bridges_down(const char *name)
{
    for (int v = 1; v <= 4094; v++) {
        char bridge[NET_IFNAME_MAX + 1];
        store_switch_vlan_bridge_name(name, v, bridge);
        struct net_link link;
        int r = net_link_get(bridge, &link);
        if (r == -ENODEV)
            continue;
        if (r < 0)
            return r;
        if (!link.is_bridge)
            continue;
        char **ports;
        if ((r = net_bridge_ports(bridge, &ports)) < 0)
            return r;
        bool busy = ports[0] != NULL;
        if (busy)
            r = hvm_error(EBUSY, "switch '%s': the bridge %s of its VLAN %d has ports (%s...): "
                          "stop the VMs connected to it first", name, bridge, v, ports[0]);
        net_names_free(ports);
        if (r < 0)
            return r;
        if ((r = net_bridge_delete(bridge)) < 0)
            return r;
    }
    return 0;
}

int store_switch_set_field(struct store *s, const char *name, const char *key, json_t *value)
{
    int lock = store_lock(s);
    if (lock < 0) {
        json_decref(value);
        return lock;
    }
    int r;
    json_t *doc = switches_load(s);
    json_t *sw = doc ? find_switch(doc, name, NULL) : NULL;
    if (!doc)
        r = -EINVAL;
    else if (!sw)
        r = hvm_error(ENOENT, "no switch '%s' in %s/%s", name, s->root, SWITCHES_FILE);
    else
        r = json_object_set(sw, key, value) < 0 ? hvm_error(ENOMEM, "out of memory")
                                                 : switches_save(s, doc);
    json_decref(value);
    json_decref(doc);
    store_unlock(lock);
    return r;
}
