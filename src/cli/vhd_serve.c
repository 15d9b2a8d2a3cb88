/* hvm vhd serve: a disk (a whole chain) over NBD on a Unix socket. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "disk/disk.h"
#include "disk/foreign.h"
#include "util/error.h"

static const char serve_usage[] =
    "usage: hvm vhd serve FILE --socket PATH [--read-only] [--raw]\n"
    "\n"
    "Serves FILE over NBD on the Unix socket PATH (created with mode 0600; a\n"
    "stale socket file is replaced) until SIGTERM or SIGINT, then flushes and\n"
    "closes the disk. A differencing disk is served with its whole parent\n"
    "chain; writes go to FILE only. Clients: qemu, qemu-img, qemu-io, nbdinfo,\n"
    "nbdcopy, e.g. nbd+unix:///?socket=PATH.\n"
    "  --socket PATH  where to listen (required)\n"
    "  --read-only    open FILE read-only and refuse writes\n"
    "  --raw          serve FILE as raw bytes (needed for a file that is not a VHD)\n"
    "Limits (environment, see docs/nbd.md): HVM_NBD_HANDSHAKE_TIMEOUT (seconds,\n"
    "default 10), HVM_NBD_IDLE_TIMEOUT (seconds, default 0: none),\n"
    "HVM_NBD_MAX_CLIENTS (default and most 16).\n";

int cmd_vhd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"read-only", no_argument, NULL, 'r'},
        {"raw", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *socket_path = NULL;
    bool read_only = false, raw = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': socket_path = optarg; break;
        case 'r': read_only = true; break;
        case 'R': raw = true; break;
        case 'h': return cli_help(serve_usage);
        default: return cli_usage_error(serve_usage, "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(serve_usage, "serve takes one FILE");
    if (!socket_path)
        return cli_usage_error(serve_usage, "--socket is required");
    const char *path = argv[optind];

    /* A VHD whose footers are both damaged would otherwise open as raw
     * bytes, and a client's writes would destroy it: raw must be asked for. */
    if (!raw) {
        if (access(path, F_OK) < 0)
            return cli_failf("%s: %s", path, strerror(errno));
        enum disk_foreign foreign = DISK_FOREIGN_NONE;
        if (!disk_is_vhd(path) && disk_foreign_probe(path, &foreign, NULL) == 0 &&
            foreign != DISK_FOREIGN_NONE && disk_foreign_require_vhd(path) < 0)
            return cli_failf("%s (--raw serves its bytes as they are)", hvm_error_message());
        if (!disk_is_vhd(path))
            return cli_failf("%s: not a VHD file (no 'conectix' footer); use --raw to serve "
                             "it as raw bytes", path);
    }

    cli_serve_signals();

    struct disk *d;
    unsigned flags = (read_only ? DISK_OPEN_READ_ONLY : 0) | (raw ? DISK_OPEN_RAW : 0);
    if (disk_open(path, flags, &d) < 0)
        return cli_fail();

    int rc = cli_serve_disk(d, socket_path, read_only, path);
    disk_close(d);
    return rc;
}
