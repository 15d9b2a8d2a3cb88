/* Host networking: Linux bridges, their addresses and tap devices, over
 * rtnetlink (libnl-route-3) and /dev/net/tun. This layer knows nothing of
 * VMs or stores; it works on interface names in the caller's network
 * namespace. Everything returns 0 / -errno and records a message naming the
 * interface (util/error.h). Creating and changing links needs CAP_NET_ADMIN;
 * reading them does not. */
#ifndef HVM_NET_NET_H
#define HVM_NET_NET_H

#include <stdbool.h>

/* Longest interface name (IFNAMSIZ - 1). */
#define NET_IFNAME_MAX 15

/* Is text a name the kernel accepts for an interface (1-15 bytes, no '/',
 * ':' or white space, not "." or "..")? */
bool net_ifname_valid(const char *text);

struct net_link {
    int ifindex;
    bool is_bridge;  /* IFLA_INFO_KIND "bridge" */
    bool up;         /* IFF_UP is set */
    int master;      /* ifindex of the bridge it is a port of, 0: none */
};
/* The link called name: 0 and *out filled, -ENODEV (no message) when there
 * is none, another -errno on failure. */
int net_link_get(const char *name, struct net_link *out);
/* Sets IFF_UP on name. */
int net_link_set_up(const char *name);
/* Stops the kernel from giving name an IPv6 link-local address when it
 * goes up (addr_gen_mode none), so that a bridge meant for VMs only gives
 * the host no address on it at all. Call it while the link is down. */
int net_link_no_link_local(const char *name);
/* Makes port a port of the bridge (IFLA_MASTER); idempotent. */
int net_link_set_master(const char *port, const char *bridge);

/* Creates the bridge name and leaves it down. An existing bridge of that
 * name is fine (0); an existing interface that is not a bridge is -EEXIST. */
int net_bridge_create(const char *name);
/* Deletes the bridge (its ports are released by the kernel, not deleted).
 * A bridge that does not exist is fine (0); an interface of that name that
 * is not a bridge is refused (-EEXIST), it is not hvm's to delete. */
int net_bridge_delete(const char *name);
/* Names of the bridge's ports (malloc'd, NULL-terminated; free with
 * net_names_free). */
int net_bridge_ports(const char *bridge, char ***names);
void net_names_free(char **names);

/* Checks an IPv4 or IPv6 address with prefix length ("10.0.0.1/24",
 * "fd00::1/64"): 0, or -EINVAL with a message naming text. */
int net_cidr_check(const char *text);
/* Adds the address cidr to the interface; one already there is fine. */
int net_addr_add(const char *ifname, const char *cidr);
/* Removes it; one not there is fine. */
int net_addr_remove(const char *ifname, const char *cidr);
/* Does the interface have the address cidr (address and prefix length)? */
int net_addr_has(const char *ifname, const char *cidr, bool *has);

/* Creates a tap device (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) and returns
 * its descriptor (close-on-exec), or -errno. It is not persistent: it goes
 * away when the last descriptor closes, so a process that dies (even by
 * SIGKILL) leaves no tap behind. name: the wanted name or a template with
 * "%d" ("hvmt%d"), NULL for the kernel's "tap%d"; the name it got is
 * copied to got (NET_IFNAME_MAX + 1 bytes). */
int net_tap_create(const char *name, char *got);

/* VLANs (vlan.c). Does the kernel have bridge VLAN filtering? Asked of an
 * existing bridge, read-only: the bridge reports its VLAN attributes only
 * where CONFIG_BRIDGE_VLAN_FILTERING is there. */
int net_bridge_vlan_capable(const char *bridge, bool *capable);
/* Turns VLAN filtering on for the bridge (idempotent). */
int net_bridge_vlan_filtering_on(const char *bridge);
/* Makes vid (1-4094) the port's PVID, untagged, and takes VLAN 1 off it. */
int net_port_pvid(const char *port, int vid);

/* Offload features (ethtool.c, over ethtool netlink), by the ethtool
 * tool's short names: tso, gso, gro, lro, tx (checksumming), rx, sg. */
#define NET_OFFLOADS 7
/* The i-th short name (NULL past the last), and the index of a name (-1). */
const char *net_offload_name(int i);
int net_offload_index(const char *name);
struct net_offloads {
    bool on[NET_OFFLOADS];         /* active */
    bool changeable[NET_OFFLOADS]; /* the driver lets it change */
};
int net_offloads_get(const char *ifname, struct net_offloads *out);
/* want[i]: 1 on, 0 off, -1 unchanged (NET_OFFLOADS entries). Features the
 * driver does not let change are left as they are; one that does not end
 * as wanted is -EOPNOTSUPP with a message. */
int net_offloads_set(const char *ifname, const int *want);
int net_link_mtu(const char *ifname, int *mtu);
/* The link's IFLA_INFO_KIND ("bridge", "veth", "tun", "bond"; "" for a
 * plain device) and, for a bond, its mode (IFLA_BOND_MODE; else -1). */
int net_link_kind(const char *ifname, char kind[16], int *bond_mode);

#endif
