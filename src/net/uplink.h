/* What an external switch needs of the host NIC it bridges (uplink.c): is
 * it Wi-Fi, which interface carries the route to an address, and the
 * interface's IP configuration (addresses and the routes through it) as a
 * JSON document that can be moved to the bridge and back exactly:
 *
 *   {"addresses": [{"local": "192.168.1.5/24", "broadcast": "192.168.1.255"}],
 *    "routes": [{"family": 4, "dst": "0.0.0.0/0", "gateway": "192.168.1.1",
 *                "table": 254, "protocol": 3, "scope": 0, "type": 1,
 *                "priority": 100, "prefsrc": "..."}]}
 *
 * Link-local IPv6 addresses (each interface has its own) and the routes the
 * kernel makes by itself (proto kernel, the local table) are left out: they
 * come and go with the addresses. 0 / -errno with the message recorded. */
#ifndef HVM_NET_UPLINK_H
#define HVM_NET_UPLINK_H

#include <jansson.h>
#include <stdbool.h>

/* Is ifname a wireless interface (nl80211 knows it, or sysfs has its
 * wireless or phy80211 entry)? A Wi-Fi station cannot be bridged: the
 * access point takes frames only from the station's own MAC. */
int net_link_wireless(const char *ifname, bool *wireless);
/* The interface the kernel would send to address (an IPv4 or IPv6 address,
 * RTM_GETROUTE) through: its name into dev (16 bytes). */
int net_route_dev(const char *address, char dev[16]);
/* The MAC address of ifname ("aa:bb:..", 18 bytes) and its MTU. */
int net_link_mac(const char *ifname, char mac[18]);
/* Gives the (down) bridge the MAC and MTU of its uplink, so that the
 * neighbours' ARP entries for the host's addresses stay right. */
int net_link_set_mac_mtu(const char *ifname, const char *mac, int mtu);
/* Takes the port out of its bridge (or bond): no master. */
int net_link_release(const char *port);

/* ifname's addresses and routes (new reference), NULL with the error. */
json_t *net_ip_config_get(const char *ifname);
/* Adds the document's addresses, then its routes, to ifname; those there
 * already are fine (so a second run finishes an interrupted one). moving:
 * the addresses are in use elsewhere until now (a NIC's, moving to its
 * bridge): IPv6 ones skip duplicate address detection. */
int net_ip_config_add(const char *ifname, json_t *config, bool moving);
/* Removes the document's routes, then its addresses, from ifname; those
 * gone already are fine. */
int net_ip_config_remove(const char *ifname, json_t *config);

#endif
