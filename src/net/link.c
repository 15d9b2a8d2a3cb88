/* Links and bridges over rtnetlink (libnl-route-3). Each call opens its own
 * socket: these are rare administrative operations, and a socket per call
 * keeps them safe to use from any thread. */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/inet6.h>
#include <linux/if_link.h>

#include "net/internal.h"
#include "net/net.h"
#include "util/error.h"

bool net_ifname_valid(const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 0 || n > NET_IFNAME_MAX || strcmp(text, ".") == 0 || strcmp(text, "..") == 0)
        return false;
    /* The kernel's dev_valid_name(): '/', ':' and white space are refused. */
    for (const char *p = text; *p; p++)
        if (*p == '/' || *p == ':' || (unsigned char)*p <= ' ' || (unsigned char)*p >= 127)
            return false;
    return true;
}

int net_errno(int nlerr)
{
    switch (nlerr < 0 ? -nlerr : nlerr) {
    case NLE_EXIST: return EEXIST;
    case NLE_OBJ_NOTFOUND: return ENODEV;
    case NLE_NODEV: return ENODEV;
    case NLE_PERM: return EPERM;
    case NLE_NOACCESS: return EACCES;
    case NLE_BUSY: return EBUSY;
    case NLE_INVAL: return EINVAL;
    case NLE_NOMEM: return ENOMEM;
    case NLE_NOADDR: return EADDRNOTAVAIL;
    case NLE_OPNOTSUPP: return EOPNOTSUPP;
    case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
    case NLE_RANGE: return ERANGE;
    default: return EIO;
    }
}

int net_fail(int nlerr, const char *what, const char *ifname)
{
    int e = net_errno(nlerr);
    if (e == EPERM || e == EACCES)
        return hvm_error(e, "%s %s: %s (needs CAP_NET_ADMIN)", what, ifname, nl_geterror(nlerr));
    return hvm_error(e, "%s %s: %s", what, ifname, nl_geterror(nlerr));
}

struct nl_sock *net_socket_open(void)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk) {
        hvm_error(ENOMEM, "netlink: out of memory");
        return NULL;
    }
    int r = nl_connect(sk, NETLINK_ROUTE);
    if (r < 0) {
        hvm_error(net_errno(r), "netlink: %s", nl_geterror(r));
        nl_socket_free(sk);
        return NULL;
    }
    return sk;
}

void net_socket_close(struct nl_sock *sk)
{
    if (sk)
        nl_socket_free(sk);
}

int net_link_query(const char *ifname, const char *what, nl_recvmsg_msg_cb_t cb, void *arg)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETLINK, 0);
    int r = msg ? 0 : -NLE_NOMEM;
    if (r == 0)
        r = nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO);
    if (r == 0)
        r = nla_put_string(msg, IFLA_IFNAME, ifname);
    if (r == 0)
        r = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, cb, arg);
    if (r == 0 && (r = nl_send_auto(sk, msg)) >= 0)
        r = nl_recvmsgs_default(sk);
    nlmsg_free(msg);
    net_socket_close(sk);
    return r < 0 ? net_fail(r, what, ifname) : 0;
}

/* The kernel's view of name: a new link object, NULL when there is none. */
static int link_fetch(struct nl_sock *sk, const char *name, struct rtnl_link **out)
{
    *out = NULL;
    int r = rtnl_link_get_kernel(sk, 0, name, out);
    if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
        return -ENODEV;
    return r < 0 ? net_fail(r, "reading link", name) : 0;
}

static void link_describe(struct rtnl_link *l, struct net_link *out)
{
    const char *kind = rtnl_link_get_type(l);
    out->ifindex = rtnl_link_get_ifindex(l);
    out->is_bridge = kind && strcmp(kind, "bridge") == 0;
    out->up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
    out->master = rtnl_link_get_master(l);
}

int net_ifindex(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *l;
    int r = link_fetch(sk, name, &l);
    if (r < 0)
        return r;
    r = rtnl_link_get_ifindex(l);
    rtnl_link_put(l);
    return r;
}

int net_link_get(const char *name, struct net_link *out)
{
    memset(out, 0, sizeof *out);
    if (!net_ifname_valid(name))
        return hvm_error(EINVAL, "'%s': not an interface name (1-%d characters, no '/', ':' "
                         "or spaces)", name ? name : "", NET_IFNAME_MAX);
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct rtnl_link *l;
    int r = link_fetch(sk, name, &l);
    if (r == 0) {
        link_describe(l, out);
        rtnl_link_put(l);
    }
    net_socket_close(sk);
    return r;
}

int net_link_set_up(const char *name)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct rtnl_link *l, *change = NULL;
    int r = link_fetch(sk, name, &l);
    if (r == -ENODEV)
        r = hvm_error(ENODEV, "%s: no such interface", name);
    if (r == 0 && !(rtnl_link_get_flags(l) & IFF_UP)) {
        change = rtnl_link_alloc();
        if (!change) {
            r = hvm_error(ENOMEM, "out of memory");
        } else {
            rtnl_link_set_flags(change, IFF_UP);
            int e = rtnl_link_change(sk, l, change, 0);
            if (e < 0)
                r = net_fail(e, "setting up", name);
            rtnl_link_put(change);
        }
    }
    if (l)
        rtnl_link_put(l);
    net_socket_close(sk);
    return r;
}

int net_link_no_link_local(const char *name)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct rtnl_link *l, *change = NULL;
    int r = link_fetch(sk, name, &l);
    if (r == -ENODEV)
        r = hvm_error(ENODEV, "%s: no such interface", name);
    uint8_t mode = 0;
    /* A kernel without IPv6 has no mode to set, and no address either. */
    if (r == 0 && rtnl_link_inet6_get_addr_gen_mode(l, &mode) == 0 &&
        mode != IN6_ADDR_GEN_MODE_NONE) {
        change = rtnl_link_alloc();
        if (!change) {
            r = hvm_error(ENOMEM, "out of memory");
        } else {
            int e = rtnl_link_inet6_set_addr_gen_mode(change, IN6_ADDR_GEN_MODE_NONE);
            if (e >= 0)
                e = rtnl_link_change(sk, l, change, 0);
            if (e < 0)
                r = net_fail(e, "turning IPv6 link-local addresses off on", name);
            rtnl_link_put(change);
        }
    }
    if (l)
        rtnl_link_put(l);
    net_socket_close(sk);
    return r;
}

int net_link_set_master(const char *port, const char *bridge)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    int r, master = net_ifindex(sk, bridge), slave = net_ifindex(sk, port);
    if (master == -ENODEV || slave == -ENODEV)
        r = hvm_error(ENODEV, "%s: no such interface", master == -ENODEV ? bridge : port);
    else if (master < 0 || slave < 0)
        r = master < 0 ? master : slave;
    else if ((r = rtnl_link_enslave_ifindex(sk, master, slave)) < 0)
        r = net_fail(r, "adding a port to", bridge);
    net_socket_close(sk);
    return r;
}

int net_bridge_create(const char *name)
{
    if (!net_ifname_valid(name))
        return hvm_error(EINVAL, "'%s': not an interface name", name ? name : "");
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct rtnl_link *l;
    int r = link_fetch(sk, name, &l);
    if (r == 0) {
        struct net_link have;
        link_describe(l, &have);
        rtnl_link_put(l);
        if (!have.is_bridge)
            r = hvm_error(EEXIST, "%s: an interface of that name exists and is not a bridge", name);
    } else if (r == -ENODEV) {
        struct rtnl_link *b = rtnl_link_bridge_alloc();
        if (!b) {
            r = hvm_error(ENOMEM, "out of memory");
        } else {
            rtnl_link_set_name(b, name);
            r = rtnl_link_add(sk, b, NLM_F_CREATE | NLM_F_EXCL);
            /* Another process made it first: the same outcome. */
            if (r == -NLE_EXIST)
                r = 0;
            if (r < 0)
                r = net_fail(r, "creating bridge", name);
            rtnl_link_put(b);
        }
    }
    net_socket_close(sk);
    return r;
}

int net_bridge_delete(const char *name)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct rtnl_link *l;
    int r = link_fetch(sk, name, &l);
    if (r == -ENODEV) {
        r = 0;
    } else if (r == 0) {
        struct net_link have;
        link_describe(l, &have);
        if (!have.is_bridge) {
            r = hvm_error(EEXIST, "%s: not a bridge, not deleted", name);
        } else if ((r = rtnl_link_delete(sk, l)) < 0) {
            r = (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV) ? 0 : net_fail(r, "deleting bridge", name);
        }
        rtnl_link_put(l);
    }
    net_socket_close(sk);
    return r;
}

struct ports {
    int master;
    char **names;
    size_t n;
    int err;
};

static void collect_port(struct nl_object *obj, void *opaque)
{
    struct ports *p = opaque;
    struct rtnl_link *l = (struct rtnl_link *)obj;
    if (p->err || rtnl_link_get_master(l) != p->master)
        return;
    char **grown = realloc(p->names, (p->n + 2) * sizeof *grown);
    if (!grown) {
        p->err = ENOMEM;
        return;
    }
    p->names = grown;
    p->names[p->n] = strdup(rtnl_link_get_name(l) ?: "?");
    if (!p->names[p->n]) {
        p->err = ENOMEM;
        return;
    }
    p->n++;
    p->names[p->n] = NULL;
}

int net_bridge_ports(const char *bridge, char ***names)
{
    *names = NULL;
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    struct ports p = {0};
    struct nl_cache *cache = NULL;
    int r = net_ifindex(sk, bridge);
    if (r == -ENODEV)
        r = hvm_error(ENODEV, "%s: no such interface", bridge);
    if (r > 0) {
        p.master = r;
        r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
        if (r < 0)
            r = net_fail(r, "listing the ports of", bridge);
    }
    if (r >= 0) {
        p.names = calloc(1, sizeof *p.names);
        if (!p.names)
            p.err = ENOMEM;
        else
            nl_cache_foreach(cache, collect_port, &p);
        r = p.err ? hvm_error(p.err, "out of memory") : 0;
    }
    if (cache)
        nl_cache_free(cache);
    net_socket_close(sk);
    if (r < 0)
        net_names_free(p.names);
    else
        *names = p.names;
    return r;
}

void net_names_free(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}
