/* The security guards of a VM's adapter, as Hyper-V has them: what the
 * guest sends is filtered where its tap receives it (the tap's ingress),
 * by an nftables table of the netdev family per tap, "netdev hvmg-TAP",
 * through libnftables:
 *
 *   DHCP guard:   UDP from port 67 to 68 (a DHCPv4 server's answers) and
 *                 from port 547 (DHCPv6 server): drop.
 *   router guard: ICMPv6 router advertisements and redirects, ICMP
 *                 redirects: drop.
 *   MAC spoofing off: a frame whose source MAC is not the adapter's: drop.
 *   maximum bandwidth: what exceeds the rate (a token bucket of a tenth
 *                 of a second, at least 256 KiB: one segmentation-offload
 *                 frame is up to 64 KiB): drop. Towards the guest, a tbf
 *                 qdisc on the tap queues instead (net_tap_rate_limit).
 *
 * Why nftables and not tc: this machine's (and CI's) kernel has tc qdiscs
 * but no classifiers or actions. Why one table per tap: it is replaced
 * whole in one transaction when a tap of that name is made, so rules left
 * by a VM whose worker died (the worker has no CAP_NET_ADMIN left to remove
 * them, and the kernel keeps a netdev table when its device goes) never
 * apply to the next VM that gets the name; tap names are reused (hvmt%d,
 * the lowest free), so at most one stale table per tap name remains. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include "net/guard.h"
#include "net/internal.h"
#include "net/net.h"
#include "util/error.h"

static bool mac_valid(const char *mac)
{
    if (!mac || strlen(mac) != 17)
        return false;
    for (int i = 0; i < 17; i++) {
        char c = mac[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (i % 3 == 2 ? c != ':' : !hex)
            return false;
    }
    return true;
}

int net_guard_apply(const char *tap, const struct net_guard *g)
{
    if (!net_ifname_valid(tap) || strchr(tap, '"'))
        return hvm_error(EINVAL, "'%s': not an interface name", tap ? tap : "");
    if (!g->allow_mac_spoofing && !mac_valid(g->mac))
        return hvm_error(EINVAL, "%s: '%s' is not a MAC address", tap, g->mac ? g->mac : "");
    if (g->max_mbit < 0 || g->max_mbit > NET_MAX_MBIT)
        return hvm_error(EINVAL, "%s: maximum bandwidth %d Mbit/s: expected 1-%d", tap,
                         g->max_mbit, NET_MAX_MBIT);
    char own[64] = "", limit[128] = "";
    if (g->max_mbit) {
        long kbytes = (long)g->max_mbit * 125, burst = kbytes / 10 < 256 ? 256 : kbytes / 10;
        snprintf(limit, sizeof limit, "    limit rate over %ld kbytes/second burst %ld kbytes "
                 "drop\n", kbytes, burst);
    }
    if (!g->allow_mac_spoofing)
        snprintf(own, sizeof own, "    ether saddr != %s drop\n", g->mac);
    char cmds[2048];
    /* Made first so that the delete finds it: one transaction. */
    int n = snprintf(cmds, sizeof cmds, "table netdev hvmg-%s {}\ndelete table netdev hvmg-%s\n",
                     tap, tap);
    if (own[0] || limit[0] || g->dhcp_guard || g->router_guard)
        snprintf(cmds + n, sizeof cmds - (size_t)n,
                 "table netdev hvmg-%s {\n  chain guest {\n"
                 "    type filter hook ingress device \"%s\" priority -500; policy accept;\n"
                 "%s%s%s%s  }\n}\n", tap, tap,
                 g->dhcp_guard ? "    udp sport 67 udp dport 68 drop\n"
                                 "    udp sport 547 drop\n" : "",
                 g->router_guard ? "    icmpv6 type { nd-router-advert, nd-redirect } drop\n"
                                   "    icmp type redirect drop\n" : "",
                 own, limit);
    char what[64];
    snprintf(what, sizeof what, "the security guards of %s", tap);
    return net_nft_run(cmds, what);
}

int net_tap_rate_limit(const char *tap, int mbit)
{
    if (mbit < 1 || mbit > NET_MAX_MBIT)
        return hvm_error(EINVAL, "%s: maximum bandwidth %d Mbit/s: expected 1-%d", tap, mbit,
                         NET_MAX_MBIT);
    struct nl_sock *sk = net_socket_open();
    if (!sk)
        return -EIO;
    int ifindex = net_ifindex(sk, tap), r = 0;
    if (ifindex == -ENODEV)
        r = hvm_error(ENODEV, "%s: no such interface", tap);
    else if (ifindex < 0)
        r = ifindex;
    struct rtnl_qdisc *q = r == 0 ? rtnl_qdisc_alloc() : NULL;
    if (r == 0 && !q)
        r = hvm_error(ENOMEM, "out of memory");
    if (q) {
        int rate = mbit * 125000; /* bytes/s */
        int bucket = rate / 10 < 256 * 1024 ? 256 * 1024 : rate / 10;
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        int e = rtnl_tc_set_kind(TC_CAST(q), "tbf");
        if (e == 0) {
            rtnl_qdisc_tbf_set_rate(q, rate, bucket, 0);
            /* A queue of 50 ms at the rate (at least two buckets). */
            rtnl_qdisc_tbf_set_limit(q, rate / 20 < 2 * bucket ? 2 * bucket : rate / 20);
            e = rtnl_qdisc_add(sk, q, NLM_F_CREATE | NLM_F_REPLACE);
        }
        if (e < 0)
            r = net_fail(e, "limiting the bandwidth (tbf qdisc) of", tap);
        rtnl_qdisc_put(q);
    }
    net_socket_close(sk);
    return r;
}
