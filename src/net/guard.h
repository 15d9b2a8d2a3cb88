/* Security guards and bandwidth limit of a VM's adapter on its tap
 * (guard.c): MAC address spoofing, DHCP guard, router guard, maximum
 * bandwidth, as Hyper-V's adapter settings. */
#ifndef HVM_NET_GUARD_H
#define HVM_NET_GUARD_H

#include <stdbool.h>

struct net_guard {
    const char *mac;          /* the adapter's own MAC ("52:54:00:..") */
    bool allow_mac_spoofing;  /* false: only frames from mac leave the guest */
    bool dhcp_guard;          /* drop DHCP (and DHCPv6) server messages of the guest */
    bool router_guard;        /* drop its router advertisements and redirects */
    int max_mbit;             /* what the guest sends, at most (Mbit/s; 0: no limit) */
};
#define NET_MAX_MBIT 10000

/* Sets the guards of a new tap (its table netdev hvmg-TAP replaced whole;
 * with everything allowed, only a stale one removed): 0 / -errno with the
 * message recorded. */
int net_guard_apply(const char *tap, const struct net_guard *g);

/* Limits what the tap sends to the guest to mbit Mbit/s: a tbf root qdisc
 * (over rtnetlink), which goes with the tap. */
int net_tap_rate_limit(const char *tap, int mbit);

#endif
