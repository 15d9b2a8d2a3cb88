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
/* The ifindex of name: > 0, -ENODEV (no message) when there is none. */
int net_ifindex(struct nl_sock *sk, const char *name);

#endif
