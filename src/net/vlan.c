/* VLANs on a Linux bridge: whether the kernel has bridge VLAN filtering
 * (CONFIG_BRIDGE_VLAN_FILTERING), turning it on, and giving a port its
 * PVID. Raw rtnetlink messages over libnl's socket: libnl-route-3 does not
 * model these attributes. */
#include <errno.h>
#include <net/if.h>
#include <string.h>

#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "net/internal.h"
#include "net/net.h"
#include "util/error.h"

struct vlan_probe {
    bool seen, capable;
};

static int probe_cb(struct nl_msg *msg, void *arg)
{
    struct vlan_probe *p = arg;
    struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1], *br[IFLA_BR_MAX + 1];
    if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0 ||
        !tb[IFLA_LINKINFO])
        return NL_SKIP;
    p->seen = true;
    if (nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) < 0 ||
        !info[IFLA_INFO_DATA] ||
        nla_parse_nested(br, IFLA_BR_MAX, info[IFLA_INFO_DATA], NULL) < 0)
        return NL_SKIP;
    /* A kernel without VLAN filtering still reports IFLA_BR_VLAN_FILTERING
     * (always 0) but none of the attributes that only exist with it. */
    p->capable = br[IFLA_BR_VLAN_DEFAULT_PVID] != NULL || br[IFLA_BR_VLAN_PROTOCOL] != NULL;
    return NL_OK;
}

int net_bridge_vlan_capable(const char *bridge, bool *capable)
{
    *capable = false;
    struct vlan_probe p = {false, false};
    int r = net_link_query(bridge, "reading bridge", probe_cb, &p);
    if (r < 0)
        return r;
    if (!p.seen)
        return hvm_error(ENODEV, "%s: not a bridge", bridge);
    *capable = p.capable;
    return 0;
}

/* Sends msg (freed) and waits for the kernel's answer. */
static int send_sync(struct nl_msg *msg, const char *what, const char *ifname)
{
    struct nl_sock *sk = net_socket_open();
    if (!sk) {
        nlmsg_free(msg);
        return -EIO;
    }
    int r = nl_send_sync(sk, msg);
    net_socket_close(sk);
    return r < 0 ? net_fail(r, what, ifname) : 0;
}

int net_bridge_vlan_filtering_on(const char *bridge)
{
    int index = (int)if_nametoindex(bridge);
    if (index <= 0)
        return hvm_error(ENODEV, "%s: no such interface", bridge);
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_ACK);
    if (!msg)
        return hvm_error(ENOMEM, "out of memory");
    struct nlattr *li, *data;
    if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
        !(li = nla_nest_start(msg, IFLA_LINKINFO)) ||
        nla_put_string(msg, IFLA_INFO_KIND, "bridge") < 0 ||
        !(data = nla_nest_start(msg, IFLA_INFO_DATA)) ||
        nla_put_u8(msg, IFLA_BR_VLAN_FILTERING, 1) < 0) {
        nlmsg_free(msg);
        return hvm_error(ENOMEM, "out of memory");
    }
    nla_nest_end(msg, data);
    nla_nest_end(msg, li);
    return send_sync(msg, "turning VLAN filtering on for", bridge);
}

/* RTM_SETLINK (add) or RTM_DELLINK (remove) of one VLAN on a bridge port. */
static int port_vlan(const char *port, int type, uint16_t vid, uint16_t flags)
{
    int index = (int)if_nametoindex(port);
    if (index <= 0)
        return hvm_error(ENODEV, "%s: no such interface", port);
    struct ifinfomsg ifi = {.ifi_family = AF_BRIDGE, .ifi_index = index};
    struct bridge_vlan_info info = {.flags = flags, .vid = vid};
    struct nl_msg *msg = nlmsg_alloc_simple(type, NLM_F_ACK);
    if (!msg)
        return hvm_error(ENOMEM, "out of memory");
    struct nlattr *spec;
    if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
        !(spec = nla_nest_start(msg, IFLA_AF_SPEC)) ||
        nla_put(msg, IFLA_BRIDGE_VLAN_INFO, sizeof info, &info) < 0) {
        nlmsg_free(msg);
        return hvm_error(ENOMEM, "out of memory");
    }
    nla_nest_end(msg, spec);
    return send_sync(msg, type == RTM_SETLINK ? "adding a VLAN to port" :
                     "removing a VLAN from port", port);
}

int net_port_pvid(const char *port, int vid)
{
    if (vid < 1 || vid > 4094)
        return hvm_error(EINVAL, "%s: VLAN %d: expected 1-4094", port, vid);
    int r = port_vlan(port, RTM_SETLINK, (uint16_t)vid,
                      BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED);
    /* The bridge's default VLAN 1 goes, so the port hears only its own. */
    if (r == 0 && vid != 1 && (r = port_vlan(port, RTM_DELLINK, 1, 0)) == -ENOENT) {
        hvm_error_clear();
        r = 0;
    }
    return r;
}
