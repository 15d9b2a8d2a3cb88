/* External switches (switch_external.c), for switch.c: the uplink NIC as a
 * port of the switch's bridge, the host's addresses and routes moved from
 * it to the bridge and back. Called with the store lock held. */
#ifndef HVM_VM_SWITCH_EXTERNAL_H
#define HVM_VM_SWITCH_EXTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "net/net.h"
#include "vm/store.h"

/* The address the user is logged in from (SSH_CONNECTION's first field)
 * into buf, or NULL when not logged in over SSH. */
const char *switch_login_address(char *buf, size_t size);
/* Can uplink be the uplink of switch name (bridge: its bridge)? It must
 * exist, be no bridge, tap or Wi-Fi interface, no port of another master,
 * and (unless force) not carry the route to the login address. An uplink
 * that is a port of bridge already passes. */
int switch_uplink_check(const char *name, const char *uplink, const char *bridge, bool force);
/* Saves the uplink's configuration (once), makes the bridge with the
 * uplink's MAC and MTU, turns LRO off on the uplink, makes it a port and
 * moves its addresses and routes to the bridge. Idempotent. */
int switch_external_up(struct store *s, json_t *sw, const char *bridge);
/* Refused (-EBUSY) while the bridge has ports other than the uplink; else
 * releases the uplink, deletes the bridge and gives the uplink back what
 * was saved. */
int switch_external_down(struct store *s, json_t *sw, const char *bridge);
/* Adds "uplink_addresses", "uplink_routes" (count) and
 * "uplink_lro_turned_off" to out while the configuration is moved. */
void switch_external_describe(struct store *s, json_t *sw, json_t *out);

#endif
