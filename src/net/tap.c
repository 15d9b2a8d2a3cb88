/* Tap devices from /dev/net/tun. A tap that is not made persistent
 * (TUNSETPERSIST) lives exactly as long as its descriptor: the kernel
 * deletes it when the last copy closes, so a VM's taps cannot outlive the
 * process that holds them, however it dies. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net/net.h"
#include "util/error.h"

int net_tap_create(const char *name, char *got)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (name && !net_ifname_valid(name))
        return hvm_error(EINVAL, "'%s': not an interface name", name);
    if (name)
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    /* IFF_VNET_HDR: QEMU's virtio-net passes offloads (checksum, TSO) in a
     * header instead of the tap computing them. IFF_NO_PI: no packet info
     * prefix, which QEMU does not expect. */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return hvm_error(e, "/dev/net/tun: %s%s", strerror(e),
                         e == EACCES || e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
    }
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return hvm_error(e, "creating tap %s: %s%s", name ? name : "tap%d", strerror(e),
                         e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
    }
    if (got)
        snprintf(got, NET_IFNAME_MAX + 1, "%s", ifr.ifr_name);
    return fd;
}
