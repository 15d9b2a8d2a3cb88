/* hvm vhd <verb>: the verb table, create and diff. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "disk/ops.h"
#include "vhd/image.h"

static const struct command verbs[] = {
    {"create", cmd_vhd_create, "create a fixed or dynamic disk"},
    {"diff", cmd_vhd_diff, "create a differencing child of a disk"},
    {"info", cmd_vhd_info, "show a disk's format, size, identity and chain"},
    {"check", cmd_vhd_check, "verify a disk's structure and its chain"},
    {"repair", cmd_vhd_repair, "fix what check found that can be fixed safely"},
    {"convert", cmd_vhd_convert, "copy a disk or chain into a new raw/fixed/dynamic disk"},
    {"merge", cmd_vhd_merge, "merge a differencing disk into its parent"},
    {"rebase", cmd_vhd_rebase, "re-point a child onto an ancestor, or make it standalone"},
    {"set-parent", cmd_vhd_set_parent, "reconnect a child to a moved parent"},
    {"compact", cmd_vhd_compact, "release blocks that read as zeros"},
    {"resize", cmd_vhd_resize, "grow a fixed or dynamic disk"},
    {"serve", cmd_vhd_serve, "serve a disk (a whole chain) over NBD on a Unix socket"},
    {"bench", cmd_vhd_bench, "measure in-process read/write speed"},
    {NULL, NULL, NULL},
};

int cmd_vhd(int argc, char **argv)
{
    return cli_dispatch("vhd", verbs, argc, argv);
}

static const char create_usage[] =
    "usage: hvm vhd create FILE --size SIZE [--type dynamic|fixed] [--block-size SIZE]\n"
    "\n"
    "Creates a new VHD. SIZE takes K, M, G, T suffixes (binary): 512M, 20G, 2T.\n"
    "  --type dynamic    grows as data is written (default)\n"
    "  --type fixed      all space reserved; the footer follows the data\n"
    "  --block-size SIZE block size of a dynamic disk (default 2M, a power of two)\n";

int cmd_vhd_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"size", required_argument, NULL, 's'},
        {"type", required_argument, NULL, 't'},
        {"block-size", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC};
    uint64_t bs = 0;
    bool have_size = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (cli_size("--size", optarg, &p.size))
                return EXIT_ERROR;
            have_size = true;
            break;
        case 't':
            if (strcmp(optarg, "dynamic") == 0)
                p.type = VHD_TYPE_DYNAMIC;
            else if (strcmp(optarg, "fixed") == 0)
                p.type = VHD_TYPE_FIXED;
            else
                return cli_usage_error(create_usage, "--type must be dynamic or fixed");
            break;
        case 'b':
            if (cli_size("--block-size", optarg, &bs))
                return EXIT_ERROR;
            if (bs > UINT32_MAX)
                return cli_failf("--block-size: too large");
            p.block_size = (uint32_t)bs;
            break;
        case 'h':
            return cli_help(create_usage);
        default:
            return cli_usage_error(create_usage, "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(create_usage, "create takes one FILE");
    if (!have_size)
        return cli_usage_error(create_usage, "--size is required");
    if (vhd_create(argv[optind], &p) < 0)
        return cli_fail();
    return EXIT_OK;
}

static const char diff_usage[] =
    "usage: hvm vhd diff PARENT CHILD [--no-protect]\n"
    "\n"
    "Creates CHILD, a differencing disk that reads what it does not hold from\n"
    "PARENT. PARENT is then marked read-only on disk (chmod a-w), because any\n"
    "write to it would silently corrupt its children; --no-protect skips that.\n";

int cmd_vhd_diff(int argc, char **argv)
{
    static const struct option opts[] = {
        {"no-protect", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool no_protect = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n')
            no_protect = true;
        else if (c == 'h')
            return cli_help(diff_usage);
        else
            return cli_usage_error(diff_usage, "bad option");
    }
    if (optind + 2 != argc)
        return cli_usage_error(diff_usage, "diff takes PARENT and CHILD");
    if (disk_diff_create(argv[optind], argv[optind + 1], no_protect) < 0)
        return cli_fail();
    return EXIT_OK;
}
