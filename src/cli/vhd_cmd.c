/* hvm vhd create and diff. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "disk/ops.h"
#include "vhd/image.h"

int cmd_vhd_create(const struct cli_args *a)
{
    struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC};
    p.size = cli_size_or(a, "size", 0);
    const char *type = cli_text(a, "type");
    if (type && strcmp(type, "fixed") == 0)
        p.type = VHD_TYPE_FIXED;
    uint64_t bs = cli_size_or(a, "block-size", 0);
    if (bs > UINT32_MAX)
        return cli_failf("--block-size: too large");
    p.block_size = (uint32_t)bs;
    if (vhd_create(cli_pos(a, 0), &p) < 0)
        return cli_fail();
    return EXIT_OK;
}

int cmd_vhd_diff(const struct cli_args *a)
{
    if (disk_diff_create(cli_pos(a, 0), cli_pos(a, 1), cli_flag(a, "no-protect")) < 0)
        return cli_fail();
    return EXIT_OK;
}
