/* The uplink of an external switch (uplink.h): Wi-Fi detection over
 * nl80211, the route to an address, and an interface's IP configuration
 * read, added and removed over rtnetlink (libnl-route-3). */
#include "net/uplink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/nl80211.h>
#include <linux/rtnetlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include "net/internal.h"
#include "net/net.h"
#include "util/error.h"

/* --- Wi-Fi --------------------------------------------------------------- */

static int count_reply(struct nl_msg *msg, void *arg)
{
    (void)msg;
    ++*(int *)arg;
    return NL_OK;
}

/* Does nl80211 know the interface? A kernel without cfg80211 has no such
 * family: then no interface is Wi-Fi. */
static bool nl80211_knows(int ifindex)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return false;
    int replies = 0, family = -1;
    struct nl_msg *msg = NULL;
    if (genl_connect(sk) == 0 && (family = genl_ctrl_resolve(sk, NL80211_GENL_NAME)) >= 0 &&
        (msg = nlmsg_alloc()) &&
        genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, NL80211_CMD_GET_INTERFACE, 0) &&
        nla_put_u32(msg, NL80211_ATTR_IFINDEX, (uint32_t)ifindex) == 0 &&
        nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, count_reply, &replies) == 0 &&
        nl_send_auto(sk, msg) >= 0)
        nl_recvmsgs_default(sk); /* an error answer (ENODEV): not Wi-Fi */
    nlmsg_free(msg);
    nl_socket_free(sk);
    return replies > 0;
}

/* sysfs shows the namespace it was mounted in, which may not be the
 * caller's: it counts only when its ifindex is the interface's. */
static bool sysfs_wireless(const char *ifname, int ifindex)
{
    char path[96], buf[32] = "";
    snprintf(path, sizeof path, "/sys/class/net/%s/ifindex", ifname);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || atoi(buf) != ifindex)
        return false;
    struct stat st;
    snprintf(path, sizeof path, "/sys/class/net/%s/wireless", ifname);
    if (stat(path, &st) == 0)
        return true;
    snprintf(path, sizeof path, "/sys/class/net/%s/phy80211", ifname);
    return stat(path, &st) == 0;
}

int net_link_wireless(const char *ifname, bool *wireless)
{
    *wireless = false;
    struct net_link link;
    int r = net_link_get(ifname, &link);
    if (r == -ENODEV)
        return hvm_error(ENODEV, "%s: no such interface", ifname);
    if (r < 0)
        return r;
    *wireless = nl80211_knows(link.ifindex) || sysfs_wireless(ifname, link.ifindex);
    return 0;
}

/* --- the route to an address ---------------------------------------------- */

static int route_oif(struct nl_msg *msg, void *arg)
{
    struct nlattr *tb[RTA_MAX + 1];
    if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct rtmsg), tb, RTA_MAX, NULL) == 0 && tb[RTA_OIF])
        *(int *)arg = (int)nla_get_u32(tb[RTA_OIF]);
    return NL_OK;
}

int net_route_dev(const char *address, char dev[16])
{
    dev[0] = 0;
    unsigned char bin[16];
    struct rtmsg rtm = {0};
    int len;
    if (inet_pton(AF_INET, address, bin) == 1) {
        rtm.rtm_family = AF_INET;
        len = 4;
    } else if (inet_pton(AF_INET6, address, bin) == 1) {
        rtm.rtm_family = AF_INET6;
        len = 16;
    } else {
        return hvm_error(EINVAL, "'%s': not an IPv4 or IPv6 address", address);
    }
    rtm.rtm_dst_len = (unsigned char)(len * 8);
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    int oif = 0;
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETROUTE, 0);
    int r = msg ? nlmsg_append(msg, &rtm, sizeof rtm, NLMSG_ALIGNTO) : -NLE_NOMEM;
    if (r == 0)
        r = nla_put(msg, RTA_DST, len, bin);
    if (r == 0)
        r = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, route_oif, &oif);
    if (r == 0 && (r = nl_send_auto(sk, msg)) >= 0)
        r = nl_recvmsgs_default(sk);
    nlmsg_free(msg);
    net_socket_close(sk);
    if (r < 0)
        return 0; /* no route (unreachable): no interface carries it */
    if (oif > 0 && !if_indextoname((unsigned)oif, dev))
        dev[0] = 0;
    return 0;
}

/* --- links ------------------------------------------------------------------ */

int net_link_mac(const char *ifname, char mac[18])
{
    mac[0] = 0;
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct rtnl_link *l = NULL;
    int r = rtnl_link_get_kernel(sk, 0, ifname, &l);
    if (r < 0) {
        r = net_fail(r, "reading link", ifname);
    } else {
        struct nl_addr *a = rtnl_link_get_addr(l);
        if (!a || nl_addr_get_len(a) != 6)
            r = hvm_error(EINVAL, "%s: not an Ethernet interface (no MAC address)", ifname);
        else
            nl_addr2str(a, mac, 18);
        rtnl_link_put(l);
    }
    net_socket_close(sk);
    return r;
}

int net_link_set_mac_mtu(const char *ifname, const char *mac, int mtu)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct rtnl_link *l = NULL, *change = rtnl_link_alloc();
    struct nl_addr *a = NULL;
    int r = rtnl_link_get_kernel(sk, 0, ifname, &l);
    if (r == 0 && (r = nl_addr_parse(mac, AF_LLC, &a)) == 0 && change) {
        rtnl_link_set_addr(change, a);
        if (mtu > 0)
            rtnl_link_set_mtu(change, (unsigned)mtu);
        r = rtnl_link_change(sk, l, change, 0);
    }
    if (r < 0)
        r = net_fail(r, "setting the MAC address and MTU of", ifname);
    else if (!change)
        r = hvm_error(ENOMEM, "out of memory");
    nl_addr_put(a);
    rtnl_link_put(change);
    if (l)
        rtnl_link_put(l);
    net_socket_close(sk);
    return r;
}

int net_link_release(const char *port)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    int r = net_ifindex(sk, port);
    if (r == -ENODEV)
        r = hvm_error(ENODEV, "%s: no such interface", port);
    else if (r > 0 && (r = rtnl_link_release_ifindex(sk, r)) < 0)
        r = net_fail(r, "taking out of its bridge", port);
    net_socket_close(sk);
    return r < 0 ? r : 0;
}

/* --- IP configuration ------------------------------------------------------- */

/* "addr/len" (with_len) or "addr" of a libnl address. */
static void addr_text(struct nl_addr *a, bool with_len, char *out, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "";
    int family = nl_addr_get_family(a);
    if (nl_addr_get_len(a) == 0) /* the kernel's zero-length "any" */
        snprintf(ip, sizeof ip, "%s", family == AF_INET6 ? "::" : "0.0.0.0");
    else
        inet_ntop(family, nl_addr_get_binary_addr(a), ip, sizeof ip);
    if (with_len)
        snprintf(out, size, "%s/%u", ip, nl_addr_get_prefixlen(a));
    else
        snprintf(out, size, "%s", ip);
}

struct collect {
    int ifindex;
    json_t *list;
};

static void collect_addr(struct nl_object *obj, void *arg)
{
    struct collect *c = arg;
    struct rtnl_addr *a = (struct rtnl_addr *)obj;
    int family = rtnl_addr_get_family(a);
    if (rtnl_addr_get_ifindex(a) != c->ifindex || (family != AF_INET && family != AF_INET6))
        return;
    if (family == AF_INET6 && rtnl_addr_get_scope(a) == RT_SCOPE_LINK)
        return; /* fe80::/64: the interface's own, the bridge makes its own */
    char local[64], cidr[72], brd[64];
    addr_text(rtnl_addr_get_local(a), false, local, sizeof local);
    snprintf(cidr, sizeof cidr, "%s/%d", local, rtnl_addr_get_prefixlen(a));
    json_t *e = json_pack("{s:s}", "local", cidr);
    if (rtnl_addr_get_flags(a) & IFA_F_NODAD)
        json_object_set_new(e, "nodad", json_true());
    if (family == AF_INET && rtnl_addr_get_broadcast(a)) {
        addr_text(rtnl_addr_get_broadcast(a), false, brd, sizeof brd);
        json_object_set_new(e, "broadcast", json_string(brd));
    }
    json_array_append_new(c->list, e);
}

static void collect_route(struct nl_object *obj, void *arg)
{
    struct collect *c = arg;
    struct rtnl_route *r = (struct rtnl_route *)obj;
    int family = rtnl_route_get_family(r);
    if ((family != AF_INET && family != AF_INET6) || rtnl_route_get_nnexthops(r) != 1 ||
        rtnl_route_get_table(r) == RT_TABLE_LOCAL || rtnl_route_get_protocol(r) == RTPROT_KERNEL ||
        rtnl_route_get_type(r) != RTN_UNICAST)
        return;
    struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);
    if (!nh || rtnl_route_nh_get_ifindex(nh) != c->ifindex)
        return;
    char dst[72];
    addr_text(rtnl_route_get_dst(r), true, dst, sizeof dst);
    json_t *e = json_pack("{s:i, s:s, s:I, s:i, s:i, s:i, s:I}", "family",
                          family == AF_INET ? 4 : 6, "dst", dst, "table",
                          (json_int_t)rtnl_route_get_table(r), "protocol",
                          rtnl_route_get_protocol(r), "scope", rtnl_route_get_scope(r), "type",
                          rtnl_route_get_type(r), "priority",
                          (json_int_t)rtnl_route_get_priority(r));
    char text[64];
    if (rtnl_route_nh_get_gateway(nh)) {
        addr_text(rtnl_route_nh_get_gateway(nh), false, text, sizeof text);
        json_object_set_new(e, "gateway", json_string(text));
    }
    if (rtnl_route_get_pref_src(r)) {
        addr_text(rtnl_route_get_pref_src(r), false, text, sizeof text);
        json_object_set_new(e, "prefsrc", json_string(text));
    }
    json_array_append_new(c->list, e);
}

json_t *net_ip_config_get(const char *ifname)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return NULL;
    json_t *out = NULL;
    struct nl_cache *addrs = NULL, *routes = NULL;
    int r = net_ifindex(sk, ifname);
    if (r == -ENODEV)
        r = hvm_error(ENODEV, "%s: no such interface", ifname);
    struct collect ca = {r, json_array()}, cr = {r, json_array()};
    if (r > 0 && (r = rtnl_addr_alloc_cache(sk, &addrs)) < 0)
        r = net_fail(r, "listing the addresses of", ifname);
    if (r >= 0 && (r = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes)) < 0)
        r = net_fail(r, "listing the routes through", ifname);
    if (r >= 0) {
        nl_cache_foreach(addrs, collect_addr, &ca);
        nl_cache_foreach(routes, collect_route, &cr);
        out = json_pack("{s:O, s:O}", "addresses", ca.list, "routes", cr.list);
    }
    json_decref(ca.list);
    json_decref(cr.list);
    if (addrs)
        nl_cache_free(addrs);
    if (routes)
        nl_cache_free(routes);
    net_socket_close(sk);
    return out;
}

static const char *text_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int address_change(struct nl_sock *sk, int ifindex, const char *ifname, json_t *e,
                          bool add, bool moving)
{
    const char *cidr = text_of(e, "local"), *brd = text_of(e, "broadcast");
    struct nl_addr *local = NULL, *b = NULL;
    struct rtnl_addr *a = rtnl_addr_alloc();
    int r = !a ? -NLE_NOMEM : !cidr ? -NLE_INVAL : nl_addr_parse(cidr, AF_UNSPEC, &local);
    if (r == 0 && brd && add)
        r = nl_addr_parse(brd, AF_INET, &b);
    if (r == 0) {
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_family(a, nl_addr_get_family(local));
        rtnl_addr_set_prefixlen(a, (int)nl_addr_get_prefixlen(local));
        rtnl_addr_set_local(a, local);
        if (b)
            rtnl_addr_set_broadcast(a, b);
        /* The same address moving from the NIC to its bridge: no duplicate
         * address detection, which would leave it tentative for a while.
         * Back on the NIC it gets the flags it had. */
        if (add && nl_addr_get_family(local) == AF_INET6 &&
            (moving || json_is_true(json_object_get(e, "nodad"))))
            rtnl_addr_set_flags(a, IFA_F_NODAD);
        r = add ? rtnl_addr_add(sk, a, NLM_F_CREATE | NLM_F_EXCL) : rtnl_addr_delete(sk, a, 0);
        if (r == -NLE_EXIST || (!add && (r == -NLE_NOADDR || r == -NLE_OBJ_NOTFOUND)))
            r = 0;
    }
    if (r < 0) {
        char what[128];
        snprintf(what, sizeof what, "%s address %s %s", add ? "adding" : "removing",
                 cidr ? cidr : "?", add ? "to" : "from");
        r = net_fail(r, what, ifname);
    }
    nl_addr_put(local);
    nl_addr_put(b);
    if (a)
        rtnl_addr_put(a);
    return r;
}

static int route_change(struct nl_sock *sk, int ifindex, const char *ifname, json_t *e, bool add)
{
    int family = json_integer_value(json_object_get(e, "family")) == 6 ? AF_INET6 : AF_INET;
    const char *dst = text_of(e, "dst"), *gw = text_of(e, "gateway"), *src = text_of(e, "prefsrc");
    struct nl_addr *d = NULL, *g = NULL, *s = NULL;
    struct rtnl_route *route = rtnl_route_alloc();
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    int r = !route || !nh ? -NLE_NOMEM : !dst ? -NLE_INVAL : nl_addr_parse(dst, family, &d);
    if (r == 0 && gw)
        r = nl_addr_parse(gw, family, &g);
    if (r == 0 && src)
        r = nl_addr_parse(src, family, &s);
    if (r == 0) {
        rtnl_route_set_family(route, (uint8_t)family);
        rtnl_route_set_dst(route, d);
        rtnl_route_set_table(route, (uint32_t)json_integer_value(json_object_get(e, "table")));
        rtnl_route_set_protocol(route, (uint8_t)json_integer_value(json_object_get(e, "protocol")));
        rtnl_route_set_scope(route, (uint8_t)json_integer_value(json_object_get(e, "scope")));
        rtnl_route_set_type(route, (uint8_t)json_integer_value(json_object_get(e, "type")));
        rtnl_route_set_priority(route, (uint32_t)json_integer_value(json_object_get(e, "priority")));
        if (s)
            rtnl_route_set_pref_src(route, s);
        rtnl_route_nh_set_ifindex(nh, ifindex);
        if (g)
            rtnl_route_nh_set_gateway(nh, g);
        rtnl_route_add_nexthop(route, nh);
        nh = NULL; /* the route's now */
        r = add ? rtnl_route_add(sk, route, NLM_F_CREATE | NLM_F_EXCL)
                : rtnl_route_delete(sk, route, 0);
        if (r == -NLE_EXIST || (!add && r == -NLE_OBJ_NOTFOUND))
            r = 0;
    }
    if (r < 0) {
        char what[160];
        snprintf(what, sizeof what, "%s the route to %s%s%s %s", add ? "adding" : "removing",
                 dst ? dst : "?", gw ? " via " : "", gw ? gw : "", add ? "to" : "from");
        r = net_fail(r, what, ifname);
    }
    nl_addr_put(d);
    nl_addr_put(g);
    nl_addr_put(s);
    if (nh)
        rtnl_route_nh_free(nh);
    if (route)
        rtnl_route_put(route);
    return r;
}

static int config_change(const char *ifname, json_t *config, bool add, bool moving)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    int ifindex = net_ifindex(sk, ifname), r = 0;
    if (ifindex == -ENODEV)
        r = hvm_error(ENODEV, "%s: no such interface", ifname);
    else if (ifindex < 0)
        r = ifindex;
    json_t *addrs = json_object_get(config, "addresses"), *routes = json_object_get(config, "routes");
    size_t i;
    json_t *e;
    /* Adding: addresses first (a gateway must be reachable); removing:
     * routes first, so that none is left half-way. */
    if (r == 0 && add)
        json_array_foreach(addrs, i, e)
            if ((r = address_change(sk, ifindex, ifname, e, true, moving)) < 0)
                break;
    if (r == 0)
        json_array_foreach(routes, i, e)
            if ((r = route_change(sk, ifindex, ifname, e, add)) < 0)
                break;
    if (r == 0 && !add)
        json_array_foreach(addrs, i, e)
            if ((r = address_change(sk, ifindex, ifname, e, false, moving)) < 0)
                break;
    net_socket_close(sk);
    return r;
}

int net_ip_config_add(const char *ifname, json_t *config, bool moving)
{
    return config_change(ifname, config, true, moving);
}

int net_ip_config_remove(const char *ifname, json_t *config)
{
    return config_change(ifname, config, false, false);
}
