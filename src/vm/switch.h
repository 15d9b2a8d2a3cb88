/* The virtual switches of a store, in switches.json:
 *
 *   {"format": 1, "switches": [
 *     {"name": "lab", "type": "private"},
 *     {"name": "mgmt", "type": "internal", "address": "10.20.0.1/24"}]}
 *
 * private: a Linux bridge with no host address (VMs only); internal: a
 * bridge with the host's address on it (host and VMs). A plain string
 * entry ("lan"), as stores listed their switches before hvm managed them,
 * reads as {"name": "lan", "type": "user"}: user-mode networking, no
 * bridge, which is what a VM on it gets today. Each bridge switch's bridge
 * name is derived from its name (store_switch_bridge_name), never read from
 * the file, so a hand-edited file cannot make hvm delete a host bridge that
 * is not its own. Writes replace the file atomically under the store lock. */
#ifndef HVM_VM_SWITCH_H
#define HVM_VM_SWITCH_H

#include <jansson.h>
#include <stdbool.h>

#include "net/net.h"
#include "vm/store.h"

/* "hvm-" + the name when it is at most 11 characters of [A-Za-z0-9_.-];
 * otherwise "hvm_" + 11 hex digits of a hash of the name (the '_' keeps the
 * two forms apart). out: NET_IFNAME_MAX + 1 bytes. */
void store_switch_bridge_name(const char *name, char *out);

/* Every switch, normalized (array of objects, new reference), or NULL with
 * the error recorded (a switches.json that does not parse or breaks the
 * schema: one message naming the field). No file: an empty array. */
json_t *store_switches(struct store *s);
/* The switch called name (new reference), or NULL: -ENOENT with a message
 * in *err, or another error. */
json_t *store_switch_get(struct store *s, const char *name, int *err);

/* Records a new switch. type: "private" or "internal"; address (CIDR, only
 * for internal, may be NULL). Touches no network. */
int store_switch_create(struct store *s, const char *name, const char *type,
                        const char *address);
/* The same with more keys in the entry (an object: "dhcp", "dhcp_range",
 * "nat", see vm/switch_services.h), checked before anything is written;
 * type may also be "user". */
int store_switch_create_with(struct store *s, const char *name, const char *type,
                             const char *address, json_t *more);
/* Names of the VMs whose current configuration has an adapter on the
 * switch (array of strings, new reference). */
json_t *store_switch_users(struct store *s, const char *name);
/* Removes the switch: refused (-EBUSY, naming them) while a VM's adapter
 * names it; takes its bridge down first (store_switch_down). */
int store_switch_delete(struct store *s, const char *name);

/* Creates the switch's bridge if missing, gives it the switch's address
 * (internal) and sets it up; doing it again changes nothing. A "user"
 * switch has no bridge: 0, nothing done. */
int store_switch_up(struct store *s, const char *name);
/* Deletes the switch's bridge; refused (-EBUSY, naming them) while it has
 * ports (taps of running VMs). A missing bridge is fine. */
int store_switch_down(struct store *s, const char *name);

/* A copy of entry sw with what the host has: "bridge" (name), "state"
 * ("up", "down", "absent"; "none" for user), "ports" (array), "vms"
 * (store_switch_users). New reference. */
json_t *store_switch_describe(struct store *s, json_t *sw);

/* VLANs of a bridge switch. The bridge of VLAN vlan (1-4094) of switch
 * name where each VLAN has a bridge of its own: "hvv-NAME.VLAN" when that
 * fits in an interface name, else "hvv_" + 11 hex digits of a hash of
 * both. out: NET_IFNAME_MAX + 1 bytes. */
void store_switch_vlan_bridge_name(const char *name, int vlan, char *out);
/* How the switch's VLANs work on this host, asked of its (up) bridge:
 * "filtering" (bridge VLAN filtering, a PVID per port), "bridge-per-vlan"
 * (the kernel lacks filtering), "unknown" (no bridge yet), "none" (user). */
const char *store_switch_vlan_mode(json_t *sw);
/* After store_switch_up(name): prepares VLAN vlan and tells the bridge an
 * adapter on it joins (bridge: NET_IFNAME_MAX + 1 bytes) and the PVID its
 * port needs (*pvid, 0 for none). Without VLAN filtering: creates the
 * VLAN's own bridge (private or internal switches only; an external one
 * is refused). */
int store_switch_vlan_attach(struct store *s, const char *name, int vlan, char *bridge,
                             int *pvid);

/* Sets key of the switch's entry to value (reference taken) and saves. */
int store_switch_set_field(struct store *s, const char *name, const char *key, json_t *value);

/* Offloads (switch_diag.c). want (NET_OFFLOADS entries: 1 on, 0 off, -1
 * unchanged) of the entry's "offload" object ({"tso": false, ...}). */
int store_switch_offload_want(json_t *sw, int *want);
/* want of "tso=off,gro=on,...". */
int store_switch_offload_parse(const char *spec, int *want);
/* Keeps spec in the switch's "offload" (merged with what is there) and
 * applies it to the ports of its bridges. */
int store_switch_set_offload(struct store *s, const char *name, const char *spec);
/* Applies the kept "offload" to the ports of the switch's bridges. */
int store_switch_offload_reapply(json_t *sw);
/* The diagnosis: {"name", "type", "vlan_mode", "bridges": [{name, mtu}],
 * "ports": [{name, bridge, kind, mtu, offload: {tso: bool...},
 * changeable}], "br_netfilter", "problems": [{interface, problem, fix}]}
 * (new reference), or NULL with the error recorded. */
json_t *store_switch_diagnose(struct store *s, const char *name);

#endif
