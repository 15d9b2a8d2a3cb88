/* A helper of the CLI tests (not a test). Makes a tap the way a VM's worker
 * will (src/net), prints its name and holds it until killed: the tap must
 * go with the process.
 *   taphold BRIDGE         a tap hvmtN, a port of BRIDGE, up
 *   taphold --alone NAME   a tap called NAME on no bridge */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "util/error.h"

int main(int argc, char **argv)
{
    bool alone = argc == 3 && strcmp(argv[1], "--alone") == 0;
    if (argc != 2 && !alone) {
        fprintf(stderr, "usage: taphold BRIDGE | taphold --alone NAME\n");
        return 2;
    }
    char name[NET_IFNAME_MAX + 1];
    int fd = net_tap_create(alone ? argv[2] : "hvmt%d", name);
    if (fd < 0 || (!alone && (net_link_set_master(name, argv[1]) < 0 || net_link_set_up(name) < 0))) {
        fprintf(stderr, "taphold: %s\n", hvm_error_message());
        return 2;
    }
    printf("%s\n", name);
    fflush(stdout);
    for (;;)
        pause();
}
