/* External switches (switch_external.h): the uplink NIC becomes a port of
 * the switch's bridge and the host's addresses and routes on it move to the
 * bridge, as Hyper-V's "allow management OS to share this adapter" does.
 *
 * Crash safety: before anything changes, the uplink's configuration is
 * written to <store>/switches/NAME/uplink.json (atomically). Every step
 * after it is idempotent (an address or route already there, or already
 * gone, is fine), so a second 'switch up' finishes an interrupted one and
 * 'switch down' puts back exactly what the file recorded from wherever
 * the steps stopped; the file goes only when the uplink has it all back. */
#include "vm/switch_external.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/uplink.h"
#include "util/error.h"
#include "util/fileio.h"

#define SAVED_FILE "uplink.json"

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static char *switch_dir(struct store *s, const char *name)
{
    char *top = path_join(s->root, "switches");
    char *dir = top ? path_join(top, name) : NULL;
    free(top);
    return dir;
}

const char *switch_login_address(char *buf, size_t size)
{
    /* "CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT" */
    const char *ssh = getenv("SSH_CONNECTION");
    if (!ssh || !*ssh)
        return NULL;
    size_t n = strcspn(ssh, " ");
    if (n == 0 || n >= size)
        return NULL;
    memcpy(buf, ssh, n);
    buf[n] = 0;
    return buf;
}

int switch_uplink_check(const char *name, const char *uplink, const char *bridge, bool force)
{
    if (!uplink || !net_ifname_valid(uplink))
        return hvm_error(EINVAL, "switch '%s': --uplink '%s': not an interface name", name,
                         uplink ? uplink : "");
    struct net_link link, br;
    int r = net_link_get(uplink, &link);
    if (r == -ENODEV)
        return hvm_error(ENODEV, "switch '%s': uplink %s: no such interface on this host", name,
                         uplink);
    if (r < 0)
        return r;
    bool ours = net_link_get(bridge, &br) == 0 && br.is_bridge && link.master == br.ifindex;
    hvm_error_clear();
    if (ours)
        return 0; /* up already: its addresses are on the bridge */
    if (link.is_bridge)
        return hvm_error(EINVAL, "switch '%s': uplink %s is a bridge: give the NIC (or bond) "
                         "it bridges", name, uplink);
    char kind[16];
    int mode;
    if ((r = net_link_kind(uplink, kind, &mode)) < 0)
        return r;
    if (strcmp(kind, "tun") == 0)
        return hvm_error(EINVAL, "switch '%s': uplink %s is a tap device, not a NIC", name,
                         uplink);
    if (link.master) {
        char m[IF_NAMESIZE] = "?";
        if_indextoname((unsigned)link.master, m);
        return hvm_error(EBUSY, "switch '%s': uplink %s is a port of %s already: give %s as "
                         "the uplink (a bond or team is one), or take %s out of it", name,
                         uplink, m, m, uplink);
    }
    bool wifi;
    if ((r = net_link_wireless(uplink, &wifi)) < 0)
        return r;
    if (wifi)
        return hvm_error(EOPNOTSUPP, "switch '%s': uplink %s is a Wi-Fi interface: it cannot "
                         "be bridged (an access point takes frames only from the host's own "
                         "MAC address); use an internal switch with --nat instead", name, uplink);
    char buf[64], dev[16];
    const char *login = switch_login_address(buf, sizeof buf);
    if (login && !force) {
        if ((r = net_route_dev(login, dev)) < 0)
            return r;
        if (strcmp(dev, uplink) == 0)
            return hvm_error(EBUSY, "switch '%s': the route to %s, where you are logged in "
                             "from (SSH_CONNECTION), goes through uplink %s: moving its "
                             "addresses to the bridge may cut your session; give --force to "
                             "do it anyway", name, login, uplink);
    }
    return 0;
}

/* The saved document, or NULL (*err 0: none; < 0 unreadable). */
static json_t *saved_load(const char *dir, int *err)
{
    *err = 0;
    char *path = path_join(dir, SAVED_FILE);
    if (!path) {
        *err = hvm_error(ENOMEM, "out of memory");
        return NULL;
    }
    json_t *doc = NULL;
    if (access(path, F_OK) == 0) {
        json_error_t jerr;
        doc = json_load_file(path, 0, &jerr);
        if (!doc || !json_is_object(json_object_get(doc, "config")) || !str(doc, "uplink") ||
            !str(doc, "mac")) {
            *err = hvm_error(EINVAL, "%s: line %d: not the saved configuration of an uplink "
                             "(%s)", path, jerr.line, doc ? "fields missing" : jerr.text);
            json_decref(doc);
            doc = NULL;
        }
    }
    free(path);
    return doc;
}

int switch_external_up(struct store *s, json_t *sw, const char *bridge)
{
    const char *name = str(sw, "name"), *uplink = str(sw, "uplink");
    int r = switch_uplink_check(name, uplink, bridge, json_is_true(json_object_get(sw, "force")));
    if (r < 0)
        return r;
    char *dir = switch_dir(s, name);
    if (!dir)
        return hvm_error(ENOMEM, "out of memory");
    json_t *saved = saved_load(dir, &r);
    if (r == 0 && saved && strcmp(str(saved, "uplink"), uplink) != 0)
        r = hvm_error(EINVAL, "%s/%s: saved for uplink %s, not %s: run 'hvm switch down %s' "
                      "first", dir, SAVED_FILE, str(saved, "uplink"), uplink, name);
    if (r == 0 && !saved) {
        char mac[18];
        int mtu = 0;
        json_t *config = NULL;
        if ((r = net_link_mac(uplink, mac)) == 0 && (r = net_link_mtu(uplink, &mtu)) == 0 &&
            (config = net_ip_config_get(uplink)) == NULL)
            r = -EIO;
        if (r == 0) {
            struct net_offloads off;
            bool lro = net_offloads_get(uplink, &off) == 0 && off.on[net_offload_index("lro")] &&
                       off.changeable[net_offload_index("lro")];
            hvm_error_clear();
            saved = json_pack("{s:s, s:s, s:i, s:o, s:b}", "uplink", uplink, "mac", mac, "mtu",
                              mtu, "config", config, "lro_was_on", lro);
            if ((r = path_mkdirs(dir)) == 0)
                r = store_json_replace(dir, SAVED_FILE, saved);
        }
    }
    if (r == 0)
        r = net_bridge_create(bridge);
    struct net_link br;
    if (r == 0 && (r = net_link_get(bridge, &br)) == 0 && !br.up)
        r = net_link_set_mac_mtu(bridge, str(saved, "mac"),
                                 (int)json_integer_value(json_object_get(saved, "mtu")));
    if (r == 0)
        r = net_link_set_up(bridge);
    if (r == 0 && json_is_true(json_object_get(saved, "lro_was_on"))) {
        /* A bridge port must not merge frames it forwards (the kernel
         * turns LRO off itself for most drivers; not for every one). */
        int want[NET_OFFLOADS];
        for (int i = 0; i < NET_OFFLOADS; i++)
            want[i] = -1;
        want[net_offload_index("lro")] = 0;
        r = net_offloads_set(uplink, want);
    }
    if (r == 0)
        r = net_link_set_master(uplink, bridge);
    if (r == 0)
        r = net_link_set_up(uplink);
    /* Now the NIC's frames go to the bridge: the addresses follow. */
    json_t *config = json_object_get(saved, "config");
    if (r == 0)
        r = net_ip_config_remove(uplink, config);
    if (r == 0)
        r = net_ip_config_add(bridge, config, true);
    json_decref(saved);
    free(dir);
    return r;
}

int switch_external_down(struct store *s, json_t *sw, const char *bridge)
{
    const char *name = str(sw, "name"), *uplink = str(sw, "uplink");
    char *dir = switch_dir(s, name);
    if (!dir)
        return hvm_error(ENOMEM, "out of memory");
    int r;
    json_t *saved = saved_load(dir, &r);
    struct net_link br, up;
    bool have_bridge = false;
    if (r == 0) {
        have_bridge = net_link_get(bridge, &br) == 0 && br.is_bridge;
        hvm_error_clear();
    }
    if (have_bridge) {
        char **ports;
        if ((r = net_bridge_ports(bridge, &ports)) == 0) {
            for (size_t i = 0; ports[i] && r == 0; i++)
                if (strcmp(ports[i], uplink) != 0)
                    r = hvm_error(EBUSY, "switch '%s': its bridge %s has ports of VMs (%s): "
                                  "stop the VMs connected to it first", name, bridge, ports[i]);
            net_names_free(ports);
        }
        if (r == 0 && net_link_get(uplink, &up) == 0 && up.master == br.ifindex)
            r = net_link_release(uplink);
        else if (r == 0)
            hvm_error_clear(); /* an uplink gone from the host: nothing to release */
        if (r == 0)
            r = net_bridge_delete(bridge);
    }
    if (r == 0 && saved) {
        const char *was = str(saved, "uplink");
        if ((r = net_ip_config_add(was, json_object_get(saved, "config"), false)) == 0 &&
            json_is_true(json_object_get(saved, "lro_was_on"))) {
            int want[NET_OFFLOADS];
            for (int i = 0; i < NET_OFFLOADS; i++)
                want[i] = -1;
            want[net_offload_index("lro")] = 1;
            net_offloads_set(was, want); /* best effort: the driver may refuse now */
            hvm_error_clear();
        }
        char *path = path_join(dir, SAVED_FILE);
        if (r == 0 && path && unlink(path) < 0)
            r = hvm_error(errno, "%s: %s", path, strerror(errno));
        free(path);
    }
    json_decref(saved);
    free(dir);
    return r;
}

void switch_external_describe(struct store *s, json_t *sw, json_t *out)
{
    char *dir = switch_dir(s, str(sw, "name"));
    int r;
    json_t *saved = dir ? saved_load(dir, &r) : NULL;
    if (saved) {
        json_t *moved = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(json_object_get(saved, "config"), "addresses"), i, a)
            json_array_append(moved, json_object_get(a, "local"));
        json_object_set_new(out, "uplink_addresses", moved);
        json_object_set_new(out, "uplink_routes",
                            json_integer((json_int_t)json_array_size(json_object_get(
                                json_object_get(saved, "config"), "routes"))));
        json_object_set(out, "uplink_lro_turned_off", json_object_get(saved, "lro_was_on"));
    }
    json_decref(saved);
    free(dir);
    hvm_error_clear();
}
