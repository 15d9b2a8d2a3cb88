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
    char own[64] = "";
    if (!g->allow_mac_spoofing)
        snprintf(own, sizeof own, "    ether saddr != %s drop\n", g->mac);
    char cmds[2048];
    /* Made first so that the delete finds it: one transaction. */
    int n = snprintf(cmds, sizeof cmds, "table netdev hvmg-%s {}\ndelete table netdev hvmg-%s\n",
                     tap, tap);
    if (own[0] || g->dhcp_guard || g->router_guard)
        snprintf(cmds + n, sizeof cmds - (size_t)n,
                 "table netdev hvmg-%s {\n  chain guest {\n"
                 "    type filter hook ingress device \"%s\" priority -500; policy accept;\n"
                 "%s%s%s  }\n}\n", tap, tap,
                 g->dhcp_guard ? "    udp sport 67 udp dport 68 drop\n"
                                 "    udp sport 547 drop\n" : "",
                 g->router_guard ? "    icmpv6 type { nd-router-advert, nd-redirect } drop\n"
                                   "    icmp type redirect drop\n" : "",
                 own);
    char what[64];
    snprintf(what, sizeof what, "the security guards of %s", tap);
    return net_nft_run(cmds, what);
}
