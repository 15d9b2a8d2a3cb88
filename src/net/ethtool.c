/* Offload features of an interface over ethtool netlink (generic netlink
 * family "ethtool", libnl-genl-3): ETHTOOL_MSG_FEATURES_GET reads them by
 * name, ETHTOOL_MSG_FEATURES_SET changes them. Names are the kernel's
 * ("tx-tcp-segmentation"); net.h's short names (tso, gro, ...) group them
 * as the ethtool tool does. Also the MTU and a bond's mode, which the
 * switch diagnosis needs. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/ethtool_netlink.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "net/internal.h"
#include "net/net.h"
#include "util/error.h"

static const struct {
    const char *name;
    const char *bits[6];
} groups[] = {
    {"tso", {"tx-tcp-segmentation", "tx-tcp6-segmentation", "tx-tcp-ecn-segmentation",
             "tx-tcp-mangleid-segmentation", NULL}},
    {"gso", {"tx-generic-segmentation", NULL}},
    {"gro", {"rx-gro", NULL}},
    {"lro", {"rx-lro", NULL}},
    {"tx", {"tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6",
            "tx-checksum-sctp", NULL}},
    {"rx", {"rx-checksum", NULL}},
    {"sg", {"tx-scatter-gather", NULL}},
};
#define N_GROUPS (sizeof groups / sizeof groups[0])

const char *net_offload_name(int i)
{
    return i >= 0 && (size_t)i < N_GROUPS ? groups[i].name : NULL;
}

int net_offload_index(const char *name)
{
    for (size_t i = 0; i < N_GROUPS; i++)
        if (strcmp(groups[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int group_of(const char *bit)
{
    for (size_t i = 0; i < N_GROUPS; i++)
        for (int k = 0; groups[i].bits[k]; k++)
            if (strcmp(groups[i].bits[k], bit) == 0)
                return (int)i;
    return -1;
}

struct genl {
    struct nl_sock *sk;
    int family;
};

static int genl_open(struct genl *g, const char *ifname)
{
    g->sk = nl_socket_alloc();
    if (!g->sk)
        return hvm_error(ENOMEM, "out of memory");
    int r = genl_connect(g->sk);
    if (r == 0)
        r = g->family = genl_ctrl_resolve(g->sk, ETHTOOL_GENL_NAME);
    if (r < 0) {
        nl_socket_free(g->sk);
        g->sk = NULL;
        return hvm_error(EOPNOTSUPP, "%s: ethtool netlink: %s (a kernel without "
                         "CONFIG_ETHTOOL_NETLINK?)", ifname, nl_geterror(r));
    }
    return 0;
}

/* A message of cmd for ifname, its header nested in attribute hdr. */
static struct nl_msg *ethtool_msg(struct genl *g, int cmd, int hdr, const char *ifname,
                                  int flags)
{
    struct nl_msg *msg = nlmsg_alloc();
    struct nlattr *h;
    if (!msg || !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, g->family, 0, flags, (uint8_t)cmd,
                             ETHTOOL_GENL_VERSION) ||
        !(h = nla_nest_start(msg, hdr)) ||
        nla_put_string(msg, ETHTOOL_A_HEADER_DEV_NAME, ifname) < 0) {
        nlmsg_free(msg);
        return NULL;
    }
    nla_nest_end(msg, h);
    return msg;
}

/* Which groups a verbose bitset has on (bits listed with VALUE, or every
 * listed bit of a NOMASK list). */
static void bitset_groups(struct nlattr *set, bool *on)
{
    struct nlattr *tb[ETHTOOL_A_BITSET_MAX + 1], *bit;
    if (!set || nla_parse_nested(tb, ETHTOOL_A_BITSET_MAX, set, NULL) < 0 ||
        !tb[ETHTOOL_A_BITSET_BITS])
        return;
    bool nomask = tb[ETHTOOL_A_BITSET_NOMASK] != NULL;
    int rem;
    nla_for_each_nested(bit, tb[ETHTOOL_A_BITSET_BITS], rem) {
        struct nlattr *b[ETHTOOL_A_BITSET_BIT_MAX + 1];
        if (nla_parse_nested(b, ETHTOOL_A_BITSET_BIT_MAX, bit, NULL) < 0 ||
            !b[ETHTOOL_A_BITSET_BIT_NAME])
            continue;
        int gi = group_of(nla_get_string(b[ETHTOOL_A_BITSET_BIT_NAME]));
        if (gi >= 0 && (nomask || b[ETHTOOL_A_BITSET_BIT_VALUE]))
            on[gi] = true;
    }
}

struct feat_reply {
    bool seen;
    struct net_offloads *out;
};

static int features_cb(struct nl_msg *msg, void *arg)
{
    struct feat_reply *fr = arg;
    struct nlattr *tb[ETHTOOL_A_FEATURES_MAX + 1];
    if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, ETHTOOL_A_FEATURES_MAX, NULL) < 0)
        return NL_SKIP;
    fr->seen = true;
    bool nochange[NET_OFFLOADS] = {false};
    bitset_groups(tb[ETHTOOL_A_FEATURES_ACTIVE], fr->out->on);
    bitset_groups(tb[ETHTOOL_A_FEATURES_HW], fr->out->changeable);
    bitset_groups(tb[ETHTOOL_A_FEATURES_NOCHANGE], nochange);
    for (size_t i = 0; i < N_GROUPS; i++)
        fr->out->changeable[i] &= !nochange[i];
    return NL_OK;
}

int net_offloads_get(const char *ifname, struct net_offloads *out)
{
    memset(out, 0, sizeof *out);
    struct genl g = {0};
    int r = genl_open(&g, ifname);
    if (r < 0)
        return r;
    struct nl_msg *msg = ethtool_msg(&g, ETHTOOL_MSG_FEATURES_GET, ETHTOOL_A_FEATURES_HEADER,
                                     ifname, NLM_F_REQUEST);
    struct feat_reply fr = {false, out};
    r = msg ? nl_socket_modify_cb(g.sk, NL_CB_VALID, NL_CB_CUSTOM, features_cb, &fr) : -NLE_NOMEM;
    if (r == 0 && (r = nl_send_auto(g.sk, msg)) >= 0)
        r = nl_recvmsgs_default(g.sk);
    nlmsg_free(msg);
    nl_socket_free(g.sk);
    if (r < 0)
        return r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND
                   ? hvm_error(ENODEV, "%s: no such interface", ifname)
                   : net_fail(r, "reading the offload features of", ifname);
    return fr.seen ? 0 : hvm_error(EIO, "%s: no answer from ethtool netlink", ifname);
}

int net_offloads_set(const char *ifname, const int *want)
{
    struct net_offloads cur;
    int r = net_offloads_get(ifname, &cur);
    if (r < 0)
        return r;
    struct genl g = {0};
    if ((r = genl_open(&g, ifname)) < 0)
        return r;
    struct nl_msg *msg = ethtool_msg(&g, ETHTOOL_MSG_FEATURES_SET, ETHTOOL_A_FEATURES_HEADER,
                                     ifname, NLM_F_REQUEST | NLM_F_ACK);
    struct nlattr *set = msg ? nla_nest_start(msg, ETHTOOL_A_FEATURES_WANTED) : NULL;
    struct nlattr *bits = set ? nla_nest_start(msg, ETHTOOL_A_BITSET_BITS) : NULL;
    int n = 0;
    for (size_t i = 0; bits && i < N_GROUPS; i++) {
        if (want[i] < 0 || !cur.changeable[i] || cur.on[i] == (want[i] > 0))
            continue;
        for (int k = 0; groups[i].bits[k]; k++) {
            struct nlattr *b = nla_nest_start(msg, ETHTOOL_A_BITSET_BITS_BIT);
            if (!b || nla_put_string(msg, ETHTOOL_A_BITSET_BIT_NAME, groups[i].bits[k]) < 0 ||
                (want[i] > 0 && nla_put_flag(msg, ETHTOOL_A_BITSET_BIT_VALUE) < 0)) {
                bits = NULL;
                break;
            }
            nla_nest_end(msg, b);
        }
        n++;
    }
    if (!bits) {
        nlmsg_free(msg);
        nl_socket_free(g.sk);
        return hvm_error(ENOMEM, "out of memory");
    }
    nla_nest_end(msg, bits);
    nla_nest_end(msg, set);
    r = n ? nl_send_sync(g.sk, msg) : (nlmsg_free(msg), 0);
    nl_socket_free(g.sk);
    if (r < 0)
        return net_fail(r, "changing the offload features of", ifname);
    /* The kernel may keep a feature on that depends on another: say so. */
    struct net_offloads now;
    if ((r = net_offloads_get(ifname, &now)) < 0)
        return r;
    for (size_t i = 0; i < N_GROUPS; i++)
        if (want[i] >= 0 && cur.changeable[i] && now.on[i] != (want[i] > 0))
            return hvm_error(EOPNOTSUPP, "%s: %s stays %s (the driver or another feature keeps "
                             "it)", ifname, groups[i].name, now.on[i] ? "on" : "off");
    return 0;
}

int net_link_mtu(const char *ifname, int *mtu)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ioctl(fd, SIOCGIFMTU, &ifr) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return hvm_error(e, "%s: reading the MTU: %s", ifname, strerror(e));
    }
    close(fd);
    *mtu = ifr.ifr_mtu;
    return 0;
}

struct kind_reply {
    char *kind;
    int mode;
};

static int kind_cb(struct nl_msg *msg, void *arg)
{
    struct kind_reply *k = arg;
    struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1], *bond[IFLA_BOND_MAX + 1];
    if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0 ||
        !tb[IFLA_LINKINFO] || nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) < 0 ||
        !info[IFLA_INFO_KIND])
        return NL_SKIP;
    snprintf(k->kind, 16, "%s", nla_get_string(info[IFLA_INFO_KIND]));
    if (strcmp(k->kind, "bond") == 0 && info[IFLA_INFO_DATA] &&
        nla_parse_nested(bond, IFLA_BOND_MAX, info[IFLA_INFO_DATA], NULL) == 0 &&
        bond[IFLA_BOND_MODE])
        k->mode = nla_get_u8(bond[IFLA_BOND_MODE]);
    return NL_OK;
}

int net_link_kind(const char *ifname, char kind[16], int *bond_mode)
{
    kind[0] = 0;
    *bond_mode = -1;
    struct kind_reply k = {kind, -1};
    int r = net_link_query(ifname, "reading link", kind_cb, &k);
    if (r < 0)
        return r;
    *bond_mode = k.mode;
    return 0;
}
