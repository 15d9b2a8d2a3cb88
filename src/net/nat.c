/* NAT for a bridge with nftables, through libnftables (Debian's
 * libnftables1): the ruleset is text in nft's own language, handed to the
 * library in-process as one transaction, so a table is replaced whole or
 * not at all, and nft's error message comes back as text to report. (No
 * nft binary to find or fork, no ruleset file left behind; the kernel's
 * netlink API under it is libnftnl's, far more code for the same rules.)
 *
 * Each bridge has its own table, "inet <table>", so that hvm never edits a
 * table that is not its own and removing a switch's NAT is one delete. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/internal.h"
#include "net/net.h"
#include "net/services.h"
#include "util/error.h"

/* Runs nft commands; the error message of nft on failure. */
int net_nft_run(const char *cmds, const char *what)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft)
        return hvm_error(ENOMEM, "%s: cannot make an nftables context", what);
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    int rc = nft_run_cmd_from_buffer(nft, cmds);
    int r = 0;
    if (rc != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", nft_ctx_get_error_buffer(nft));
        char *nl = strchr(msg, '\n');
        if (nl)
            *nl = 0;
        r = hvm_error(EIO, "%s: nftables refused the rules: %s", what,
                      msg[0] ? msg : "no message (does the kernel have nf_tables?)");
    }
    nft_ctx_free(nft);
    return r;
}

static bool table_name_valid(const char *t)
{
    /* An interface name is a valid nft identifier when it starts with a
     * letter and has only letters, digits, '_', '-' and '.'. */
    if (!net_ifname_valid(t) || !((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z')))
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* Appends to a growing buffer. */
struct text {
    char *buf;
    size_t len, cap;
    bool oom;
};
__attribute__((format(printf, 2, 3))) static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || t->oom)
        return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->oom = true;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

int net_nat_apply(const char *table, const char *bridge, const char *subnet_cidr,
                  json_t *forwards)
{
    struct net_ipv4_net net;
    char network[NET_IPV4_TEXT];
    if (!table_name_valid(table) || !net_ifname_valid(bridge))
        return hvm_error(EINVAL, "'%s': not a table name hvm makes", table);
    if (net_ipv4_cidr_parse(subnet_cidr, &net) < 0)
        return -EINVAL;
    net_ipv4_format(net.network, network);
    struct text t = {0};
    /* Made first so that the delete finds it: the whole is one transaction. */
    text_add(&t, "table inet %s {}\ndelete table inet %s\ntable inet %s {\n", table, table, table);
    text_add(&t, "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n");
    size_t i;
    json_t *f;
    for (int pass = 0; pass < 2; pass++) {
        json_array_foreach(forwards, i, f) {
            const char *proto = json_string_value(json_object_get(f, "protocol"));
            const char *addr = json_string_value(json_object_get(f, "address"));
            json_int_t hp = json_integer_value(json_object_get(f, "host_port"));
            json_int_t port = json_integer_value(json_object_get(f, "port"));
            uint32_t a;
            if (!proto || (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) ||
                net_ipv4_parse(addr, &a) < 0 || hp < 1 || hp > 65535 || port < 1 || port > 65535) {
                free(t.buf);
                return hvm_error(EINVAL, "forward %zu of %s: not a protocol, port and address", i,
                                 bridge);
            }
            /* Connections to any of the host's own addresses, from outside
             * (prerouting) or from the host itself (output; not loopback,
             * whose packets cannot be routed out to a VM). */
            text_add(&t, "    fib daddr type local %s%s dport %lld dnat ip to %s:%lld\n",
                     pass ? "ip daddr != 127.0.0.0/8 " : "", proto, (long long)hp, addr,
                     (long long)port);
        }
        if (pass == 0)
            text_add(&t, "  }\n  chain output {\n    type nat hook output priority -100; "
                         "policy accept;\n");
    }
    text_add(&t, "  }\n  chain postrouting {\n    type nat hook postrouting priority srcnat; "
                 "policy accept;\n");
    /* What leaves the subnet by another interface than the bridge takes the
     * host's address there. */
    text_add(&t, "    ip saddr %s/%d ip daddr != %s/%d oifname != \"%s\" masquerade\n  }\n}\n",
             network, net.prefix, network, net.prefix, bridge);
    int r = t.oom ? hvm_error(ENOMEM, "out of memory") : net_nft_run(t.buf, bridge);
    free(t.buf);
    return r;
}

int net_nat_remove(const char *table)
{
    if (!table_name_valid(table))
        return hvm_error(EINVAL, "'%s': not a table name hvm makes", table);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "table inet %s {}\ndelete table inet %s\n", table, table);
    return net_nft_run(cmd, table);
}

int net_nat_present(const char *table, bool *present)
{
    if (!table_name_valid(table))
        return hvm_error(EINVAL, "'%s': not a table name hvm makes", table);
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft)
        return hvm_error(ENOMEM, "cannot make an nftables context");
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "list table inet %s", table);
    *present = nft_run_cmd_from_buffer(nft, cmd) == 0;
    nft_ctx_free(nft);
    return 0;
}

int net_ipv4_forwarding_on(void)
{
    /* /proc/sys/net is the caller's network namespace's. */
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "1\n", 2) != 2) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return hvm_error(e, "/proc/sys/net/ipv4/ip_forward: %s", strerror(e));
    }
    close(fd);
    return 0;
}
