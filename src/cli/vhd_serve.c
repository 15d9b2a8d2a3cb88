/* hvm vhd serve: a disk (a whole chain) over NBD on a Unix socket. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "disk/disk.h"
#include "disk/foreign.h"
#include "util/error.h"

int cmd_vhd_serve(const struct cli_args *a)
{
    const char *socket_path = cli_text(a, "socket");
    bool read_only = cli_flag(a, "read-only"), raw = cli_flag(a, "raw");
    const char *path = cli_pos(a, 0);

    /* A VHD whose footers are both damaged would otherwise open as raw
     * bytes, and a client's writes would destroy it: raw must be asked for. */
    if (!raw && disk_is_vhdx(path) && !read_only)
        return cli_failf("%s: a VHDX image; hvm serves VHDX with --read-only only, for now",
                         path);
    if (!raw && !disk_is_vhdx(path)) {
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
