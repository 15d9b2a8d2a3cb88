/* Shared by the files of src/net: the rtnetlink socket and libnl's errors. */
#ifndef HVM_NET_INTERNAL_H
#define HVM_NET_INTERNAL_H

#include <netlink/netlink.h>

/* A connected NETLINK_ROUTE socket, or NULL with the error recorded. */
struct nl_sock *net_socket_open(void);
void net_socket_close(struct nl_sock *sk);
/* libnl's negative NLE_* code as a positive errno. */
int net_errno(int nlerr);
/* Records "<what>: <libnl's message>" and returns -errno of nlerr. */
int net_fail(int nlerr, const char *what, const char *ifname);
/* Asks the kernel for the link ifname (RTM_GETLINK) and hands each answer
 * to cb(msg, arg), for the attributes libnl-route's rtnl_link does not
 * parse: 0, or -errno with the message "WHAT IFNAME: cause" recorded. */
int net_link_query(const char *ifname, const char *what, nl_recvmsg_msg_cb_t cb, void *arg);
/* The ifindex of name: > 0, -ENODEV (no message) when there is none. */
int net_ifindex(struct nl_sock *sk, const char *name);

/* Runs nft commands through libnftables as one transaction (nat.c): 0, or
 * -EIO with "WHAT: nftables refused the rules: <nft's message>". */
int net_nft_run(const char *cmds, const char *what);

#endif
