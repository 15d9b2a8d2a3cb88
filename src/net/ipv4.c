/* IPv4 address arithmetic for DHCP ranges and NAT rules: subnets, the
 * default range a switch's DHCP server hands out, address checks. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/services.h"
#include "util/error.h"

int net_ipv4_parse(const char *text, uint32_t *addr)
{
    struct in_addr a;
    if (!text || inet_pton(AF_INET, text, &a) != 1)
        return hvm_error(EINVAL, "'%s': not an IPv4 address", text ? text : "");
    *addr = ntohl(a.s_addr);
    return 0;
}

void net_ipv4_format(uint32_t addr, char out[NET_IPV4_TEXT])
{
    struct in_addr a = {.s_addr = htonl(addr)};
    inet_ntop(AF_INET, &a, out, NET_IPV4_TEXT);
}

int net_ipv4_cidr_parse(const char *text, struct net_ipv4_net *out)
{
    const char *slash = text ? strchr(text, '/') : NULL;
    char host[NET_IPV4_TEXT];
    char *end;
    if (!slash || (size_t)(slash - text) >= sizeof host)
        return hvm_error(EINVAL, "'%s': not an IPv4 address with a prefix length (10.0.0.1/24)",
                         text ? text : "");
    memcpy(host, text, (size_t)(slash - text));
    host[slash - text] = 0;
    long prefix = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || prefix < 1 || prefix > 32 || net_ipv4_parse(host, &out->host) < 0)
        return hvm_error(EINVAL, "'%s': not an IPv4 address with a prefix length (10.0.0.1/24)",
                         text);
    out->prefix = (int)prefix;
    out->mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
    out->network = out->host & out->mask;
    out->broadcast = out->network | ~out->mask;
    return 0;
}

bool net_ipv4_in(const struct net_ipv4_net *n, uint32_t addr)
{
    return (addr & n->mask) == n->network && addr != n->network && addr != n->broadcast;
}

int net_ipv4_default_range(const struct net_ipv4_net *n, uint32_t *start, uint32_t *end)
{
    if (n->prefix > 30)
        return hvm_error(EINVAL, "a /%d subnet has no room for a DHCP range (at most /30)",
                         n->prefix);
    uint32_t first = n->network + 1, last = n->broadcast - 1;
    uint32_t half = n->network + (uint32_t)((n->broadcast - n->network + 1) / 2);
    /* The half of the subnet without the host's address: the other half is
     * left for addresses given by hand. */
    if (n->host < half) {
        *start = half;
        *end = last;
    } else {
        *start = first;
        *end = half - 1;
    }
    if (*start == n->host)
        (*start)++;
    if (*end == n->host)
        (*end)--;
    return *start <= *end ? 0 : hvm_error(EINVAL, "no room for a DHCP range");
}
