/* Interface addresses over rtnetlink (libnl-route-3). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <netlink/route/addr.h>

#include "net/internal.h"
#include "net/net.h"
#include "util/error.h"

/* text as a local address with its prefix; a bare address or a network
 * with host bits only is not what a bridge address needs. */
static int cidr_parse(const char *text, struct nl_addr **out)
{
    *out = NULL;
    const char *slash = text ? strchr(text, '/') : NULL;
    if (!slash || !slash[1])
        return hvm_error(EINVAL, "'%s': expected an address with its prefix length "
                         "(10.0.0.1/24, fd00::1/64)", text ? text : "");
    for (const char *p = slash + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return hvm_error(EINVAL, "'%s': the prefix length is not a number", text);
    struct nl_addr *a;
    if (nl_addr_parse(text, AF_UNSPEC, &a) < 0)
        return hvm_error(EINVAL, "'%s': not an IPv4 or IPv6 address with prefix length", text);
    int family = nl_addr_get_family(a);
    unsigned max = family == AF_INET ? 32 : 128;
    unsigned len = (unsigned)strtoul(slash + 1, NULL, 10);
    if ((family != AF_INET && family != AF_INET6) || len == 0 || len > max ||
        nl_addr_get_prefixlen(a) != len) {
        nl_addr_put(a);
        return hvm_error(EINVAL, "'%s': the prefix length must be 1-%u", text, max);
    }
    *out = a;
    return 0;
}

int net_cidr_check(const char *text)
{
    struct nl_addr *a;
    int r = cidr_parse(text, &a);
    if (r == 0)
        nl_addr_put(a);
    return r;
}

/* An address object for (ifname, cidr) with its socket, ready to send. */
static int addr_prepare(const char *ifname, const char *cidr, struct nl_sock **sk_out,
                        struct rtnl_addr **out)
{
    struct nl_addr *local;
    int r = cidr_parse(cidr, &local);
    if (r < 0)
        return r;
    struct nl_sock *sk = net_socket_open();
    if (!sk) {
        nl_addr_put(local);
        return -EIO;
    }
    int ifindex = net_ifindex(sk, ifname);
    if (ifindex < 0) {
        nl_addr_put(local);
        net_socket_close(sk);
        return ifindex == -ENODEV ? hvm_error(ENODEV, "%s: no such interface", ifname) : ifindex;
    }
    struct rtnl_addr *a = rtnl_addr_alloc();
    if (!a) {
        nl_addr_put(local);
        net_socket_close(sk);
        return hvm_error(ENOMEM, "out of memory");
    }
    rtnl_addr_set_ifindex(a, ifindex);
    rtnl_addr_set_family(a, nl_addr_get_family(local));
    rtnl_addr_set_local(a, local);
    rtnl_addr_set_prefixlen(a, (int)nl_addr_get_prefixlen(local));
    nl_addr_put(local);
    *sk_out = sk;
    *out = a;
    return 0;
}

int net_addr_add(const char *ifname, const char *cidr)
{
    struct nl_sock *sk;
    struct rtnl_addr *a;
    int r = addr_prepare(ifname, cidr, &sk, &a);
    if (r < 0)
        return r;
    r = rtnl_addr_add(sk, a, NLM_F_CREATE | NLM_F_EXCL);
    if (r == -NLE_EXIST)
        r = 0;
    if (r < 0) {
        char what[128];
        snprintf(what, sizeof what, "adding address %s to", cidr);
        r = net_fail(r, what, ifname);
    }
    rtnl_addr_put(a);
    net_socket_close(sk);
    return r;
}

int net_addr_remove(const char *ifname, const char *cidr)
{
    struct nl_sock *sk;
    struct rtnl_addr *a;
    int r = addr_prepare(ifname, cidr, &sk, &a);
    if (r < 0)
        return r == -ENODEV ? (hvm_error_clear(), 0) : r;
    r = rtnl_addr_delete(sk, a, 0);
    if (r == -NLE_NOADDR || r == -NLE_OBJ_NOTFOUND)
        r = 0;
    if (r < 0) {
        char what[128];
        snprintf(what, sizeof what, "removing address %s from", cidr);
        r = net_fail(r, what, ifname);
    }
    rtnl_addr_put(a);
    net_socket_close(sk);
    return r;
}

struct addr_match {
    struct rtnl_addr *want;
    bool found;
};

static void match_addr(struct nl_object *obj, void *opaque)
{
    struct addr_match *m = opaque;
    struct rtnl_addr *a = (struct rtnl_addr *)obj;
    if (rtnl_addr_get_ifindex(a) == rtnl_addr_get_ifindex(m->want) &&
        rtnl_addr_get_prefixlen(a) == rtnl_addr_get_prefixlen(m->want) &&
        nl_addr_cmp(rtnl_addr_get_local(a), rtnl_addr_get_local(m->want)) == 0)
        m->found = true;
}

int net_addr_has(const char *ifname, const char *cidr, bool *has)
{
    *has = false;
    struct nl_sock *sk;
    struct rtnl_addr *a;
    int r = addr_prepare(ifname, cidr, &sk, &a);
    if (r < 0)
        return r;
    struct nl_cache *cache;
    r = rtnl_addr_alloc_cache(sk, &cache);
    if (r < 0) {
        r = net_fail(r, "listing the addresses of", ifname);
    } else {
        struct addr_match m = {a, false};
        nl_cache_foreach(cache, match_addr, &m);
        *has = m.found;
        nl_cache_free(cache);
    }
    rtnl_addr_put(a);
    net_socket_close(sk);
    return r;
}
