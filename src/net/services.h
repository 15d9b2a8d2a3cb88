/* Network services hvm runs for a bridge: a DHCP server (dnsmasq, one
 * process per bridge) and NAT (an nftables table per bridge, through
 * libnftables), plus the IPv4 arithmetic they need. Like the rest of
 * src/net, this knows interface names, addresses and folders, not VMs or
 * stores. 0 / -errno with the message recorded (util/error.h). */
#ifndef HVM_NET_SERVICES_H
#define HVM_NET_SERVICES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define NET_IPV4_TEXT 16

struct net_ipv4_net {
    uint32_t host, network, broadcast, mask; /* host byte order */
    int prefix;
};
int net_ipv4_parse(const char *text, uint32_t *addr);
void net_ipv4_format(uint32_t addr, char out[NET_IPV4_TEXT]);
/* "10.0.0.1/24" into its parts; -EINVAL with a message otherwise. */
int net_ipv4_cidr_parse(const char *text, struct net_ipv4_net *out);
/* Is addr a host address of the subnet (not its network or broadcast)? */
bool net_ipv4_in(const struct net_ipv4_net *n, uint32_t addr);
/* The range a DHCP server hands out by default: the half of the subnet
 * that does not hold the host's address, without it. */
int net_ipv4_default_range(const struct net_ipv4_net *n, uint32_t *start, uint32_t *end);

/* --- DHCP: dnsmasq -------------------------------------------------------
 * The server's files are in dir: dnsmasq.pid, leases, hosts (fixed
 * addresses, "MAC,ADDRESS" lines, reread on net_dhcp_reload), dnsmasq.log. */
struct net_dhcp_config {
    const char *bridge;     /* the only interface it binds */
    const char *dir;
    const char *range_start, *range_end;
    const char *router;     /* offered as the default gateway; NULL: none */
};
/* Starts dnsmasq for the bridge unless it runs already (0 either way); a
 * dnsmasq that fails to start is an error carrying its own message. */
int net_dhcp_start(const struct net_dhcp_config *c);
/* Stops it (SIGTERM, then SIGKILL after 5 s); none running is fine. */
int net_dhcp_stop(const char *dir);
/* The pid of the dnsmasq serving from dir, 0 when none runs (a pid file
 * whose process is gone or is not that dnsmasq counts as none). */
int net_dhcp_pid(const char *dir);
/* Makes a running dnsmasq reread the hosts file (SIGHUP); none: 0. */
int net_dhcp_reload(const char *dir);
/* The leases (array of {"mac", "address", "hostname", "expires"}), new
 * reference; an empty array when there is no lease file. */
json_t *net_dhcp_leases(const char *dir);

/* --- NAT: nftables -------------------------------------------------------
 * One table "inet <table>" per bridge, replaced as a whole in one
 * transaction. forwards: array of {"protocol": "tcp"|"udp", "host_port",
 * "address", "port"}: DNAT of the host's own addresses' host_port to
 * address:port. */
int net_nat_apply(const char *table, const char *bridge, const char *subnet_cidr,
                  json_t *forwards);
/* Deletes the table; one that is not there is fine. */
int net_nat_remove(const char *table);
/* Is the table there? */
int net_nat_present(const char *table, bool *present);
/* Sets net.ipv4.ip_forward to 1 in the caller's network namespace. */
int net_ipv4_forwarding_on(void);

#endif
