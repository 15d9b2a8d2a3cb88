/* What hvm runs for a switch besides its bridge (vm/switch.h): DHCP and
 * NAT on internal switches, and the port forwards that publish VM services
 * (DNAT on an internal switch with NAT, QEMU's hostfwd on a user switch).
 * In switches.json, beside the entry's name, type and address:
 *
 *   "dhcp": true, "dhcp_range": "10.20.0.100,10.20.0.199",  (internal, IPv4)
 *   "nat": true,                                             (internal, IPv4)
 *   "forwards": [{"protocol": "tcp", "host_port": 8080, "vm": "web",
 *                 "port": 80, "address": "10.20.0.128"}]     (nat or user)
 *
 * A forward's address is the VM's: given (--to), or reserved for the MAC of
 * the VM's adapter on the switch in the DHCP range (the lease it holds, else
 * a free address), which dnsmasq then always leases to that MAC. The
 * server's files are in <store>/switches/<name>/. */
#ifndef HVM_VM_SWITCH_SERVICES_H
#define HVM_VM_SWITCH_SERVICES_H

#include <jansson.h>

#include "vm/store.h"

/* Checks the service keys of entry e (switches[i]) of root's switches.json:
 * 0, or -EINVAL with one message naming the field. */
int switch_services_check(const char *root, size_t i, json_t *e);
/* Starts dnsmasq (dhcp) and applies the NAT table (nat) of the switch sw,
 * whose bridge is up; again: the same result, a dnsmasq that died is
 * started again. */
int switch_services_up(struct store *s, json_t *sw, const char *bridge);
/* Stops them; nothing running is fine. */
int switch_services_down(struct store *s, json_t *sw, const char *bridge);
/* Adds to out (a describe copy of sw) "dhcp": {"state", "pid", "range",
 * "leases"} and "nat": {"state", "table"}. */
void switch_services_describe(struct store *s, json_t *sw, const char *bridge, json_t *out);
/* Removes the switch's folder of server files (after its delete). */
void switch_services_forget(struct store *s, const char *name);

/* Adds a forward: host_port (protocol tcp or udp) to port of VM vm, at the
 * address to (NULL: the VM's reserved address, see above). Applied at once
 * when the switch is up; a user switch's forwards reach QEMU when the VM
 * starts. On success *address gets the address (static buffer). */
int store_switch_forward_add(struct store *s, const char *name, const char *protocol,
                             int host_port, const char *vm, int port, const char *to,
                             const char **address);
/* Removes the forward of host_port (protocol); -ENOENT if there is none. */
int store_switch_forward_remove(struct store *s, const char *name, const char *protocol,
                                int host_port);

#endif
