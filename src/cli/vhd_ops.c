/* hvm vhd convert | merge | rebase | set-parent | compact | resize */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vhd_import.h"
#include "disk/ops.h"
#include "util/size.h"

/* Parses flags common to these verbs; returns positional count or -1 (help
 * printed) or -2 (error printed). */
struct flags {
    bool force, standalone, ignore_id;
    const char *onto, *type, *from_format;
    uint64_t size, block_size;
    bool have_size;
};

static int parse(int argc, char **argv, const char *usage, const struct option *opts,
                 struct flags *f)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': f->force = true; break;
        case 'S': f->standalone = true; break;
        case 'i': f->ignore_id = true; break;
        case 'o': f->onto = optarg; break;
        case 't': f->type = optarg; break;
        case 'F': f->from_format = optarg; break;
        case 's':
            if (cli_size("--size", optarg, &f->size))
                return -2;
            f->have_size = true;
            break;
        case 'b':
            if (cli_size("--block-size", optarg, &f->block_size))
                return -2;
            break;
        case 'h': cli_help(usage); return -1;
        default: cli_usage_error(usage, "bad option"); return -2;
        }
    }
    return argc - optind;
}

#define OPT_HELP {"help", no_argument, NULL, 'h'}
#define OPT_END {NULL, 0, NULL, 0}
#define PARSE_OR_RETURN(n, want, usage, opts, f)                                            \
    do {                                                                                    \
        n = parse(argc, argv, usage, opts, f);                                              \
        if (n == -1)                                                                        \
            return EXIT_OK;                                                                 \
        if (n == -2)                                                                        \
            return EXIT_ERROR;                                                              \
        if (n != (want))                                                                    \
            return cli_usage_error(usage, "expected %d argument%s", want, want > 1 ? "s" : ""); \
    } while (0)

static int finish(int r, struct progress *p)
{
    progress_done(p);
    return r < 0 ? cli_fail() : EXIT_OK;
}

static const char convert_usage[] =
    "usage: hvm vhd convert SRC DST [--type raw|fixed|dynamic] [--block-size SIZE]\n"
    "                               [--from-format auto|qcow2|qcow|vmdk|vdi|qed|raw]\n"
    "\n"
    "Writes DST from SRC (a raw file or any VHD, a differencing chain flattened).\n"
    "Blocks that read as zeros stay unallocated in a dynamic result and holes in\n"
    "a raw one. Default type: dynamic. DST is created complete or not at all.\n"
    "\n"
    "An image of another format (qcow2, VMDK, VDI, QED, recognised by its magic)\n"
    "is refused unless --from-format says how to read it:\n"
    "  --from-format auto    the format SRC's magic names (VHD and raw as usual)\n"
    "  --from-format qcow2   (or qcow, vmdk, vdi, qed) SRC must be one; qemu-img\n"
    "                        (qemu-utils) reads it and writes only its data:\n"
    "                        into the new VHD through hvm's NBD server on a\n"
    "                        socket under $TMPDIR, or straight into a raw DST;\n"
    "                        a qcow2 backing chain is flattened (qemu-img reads\n"
    "                        every file the image names)\n"
    "  --from-format raw     SRC's bytes as they are, whatever they look like\n"
    "VHDX images are refused: hvm does not read VHDX yet.\n";

/* --from-format's argument; -1 (error printed) if it names nothing. */
static int from_format(const char *text, struct disk_source_format *out)
{
    *out = (struct disk_source_format){DISK_FROM_PROBE, DISK_FOREIGN_NONE};
    if (!text)
        return 0;
    if (strcmp(text, "auto") == 0)
        out->how = DISK_FROM_AUTO;
    else if (strcmp(text, "raw") == 0)
        out->how = DISK_FROM_RAW;
    else if (disk_foreign_from_name(text, &out->foreign))
        out->how = DISK_FROM_FOREIGN;
    else {
        cli_usage_error(convert_usage, "--from-format: '%s' is not auto, qcow2, qcow, vmdk, "
                        "vdi, qed or raw", text);
        return -1;
    }
    return 0;
}

int cmd_vhd_convert(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"block-size", required_argument, NULL, 'b'},
        {"from-format", required_argument, NULL, 'F'}, OPT_HELP, OPT_END};
    struct flags f = {0};
    int n;
    PARSE_OR_RETURN(n, 2, convert_usage, opts, &f);
    enum disk_format fmt = DISK_FORMAT_DYNAMIC;
    if (f.type && strcmp(f.type, "raw") == 0)
        fmt = DISK_FORMAT_RAW;
    else if (f.type && strcmp(f.type, "fixed") == 0)
        fmt = DISK_FORMAT_FIXED;
    else if (f.type && strcmp(f.type, "dynamic") != 0)
        return cli_usage_error(convert_usage, "--type must be raw, fixed or dynamic");
    struct disk_source_format from;
    if (from_format(f.from_format, &from) < 0)
        return EXIT_ERROR;
    /* A foreign image into a VHD is streamed through hvm's NBD server;
     * into raw, qemu-img writes the result itself (disk_convert_from). */
    enum disk_foreign foreign;
    if (disk_source_resolve(argv[optind], &from, &foreign) < 0)
        return cli_fail();
    struct progress p;
    progress_init(&p, "convert");
    struct disk_progress pr = {progress_update, &p};
    const char *src = argv[optind], *dst = argv[optind + 1];
    if (foreign != DISK_FOREIGN_NONE && fmt != DISK_FORMAT_RAW)
        return finish(cli_convert_foreign(src, foreign, dst, fmt, (uint32_t)f.block_size, &pr),
                      &p);
    return finish(disk_convert_from(src, &from, dst, fmt, (uint32_t)f.block_size, &pr), &p);
}

static const char merge_usage[] =
    "usage: hvm vhd merge CHILD [--force]\n"
    "\n"
    "Merges a differencing disk's data into its parent (like Merge-VHD) and\n"
    "removes CHILD. The parent's content changes, so it gets a new unique id:\n"
    "any other child of it is then reported as broken instead of reading wrong\n"
    "data. A parent protected read-only (by 'hvm vhd diff') may have other\n"
    "children, so it is refused unless --force.\n";

/* A registered base changes only through commands that account for all
 * of its VMs: merging a VM's disk into it is refused while other VMs use
 * it, --force or not (the lock refuses it only while they run). */
static int merge_guard(const char *child)
{
    struct disk *d;
    if (disk_open(child, DISK_OPEN_READ_ONLY | DISK_OPEN_HEADER_ONLY, &d) < 0)
        return 0; /* disk_merge says what is wrong */
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "merging %s into it", child);
    int r = d->parent ? cli_base_guard(d->parent->path, child, NULL, what) : 0;
    disk_close(d);
    return r;
}

int cmd_vhd_merge(int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, OPT_HELP, OPT_END};
    struct flags f = {0};
    int n;
    PARSE_OR_RETURN(n, 1, merge_usage, opts, &f);
    if (merge_guard(argv[optind]) < 0)
        return cli_fail();
    struct progress p;
    progress_init(&p, "merge");
    struct disk_progress pr = {progress_update, &p};
    return finish(disk_merge(argv[optind], f.force, &pr), &p);
}

static const char rebase_usage[] =
    "usage: hvm vhd rebase CHILD --onto ANCESTOR | --standalone\n"
    "\n"
    "Copies into CHILD the sectors it reads from the layers between it and\n"
    "ANCESTOR (a disk further down its chain), then points it at ANCESTOR; with\n"
    "--standalone copies everything and makes it a dynamic disk. CHILD reads\n"
    "the same at every moment, so an interruption loses nothing.\n";

int cmd_vhd_rebase(int argc, char **argv)
{
    static const struct option opts[] = {
        {"onto", required_argument, NULL, 'o'},
        {"standalone", no_argument, NULL, 'S'}, OPT_HELP, OPT_END};
    struct flags f = {0};
    int n;
    PARSE_OR_RETURN(n, 1, rebase_usage, opts, &f);
    if (!f.onto == !f.standalone)
        return cli_usage_error(rebase_usage, "give exactly one of --onto and --standalone");
    struct progress p;
    progress_init(&p, "rebase");
    struct disk_progress pr = {progress_update, &p};
    return finish(disk_rebase(argv[optind], f.onto, &pr), &p);
}

static const char set_parent_usage[] =
    "usage: hvm vhd set-parent CHILD PARENT [--ignore-id-mismatch]\n"
    "\n"
    "Reconnects CHILD to PARENT after the parent was moved or renamed (like\n"
    "Set-VHD -ParentPath). PARENT must have the unique id and size CHILD\n"
    "expects; --ignore-id-mismatch accepts another id (for a copy known to hold\n"
    "the same data). The size must always match.\n";

int cmd_vhd_set_parent(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ignore-id-mismatch", no_argument, NULL, 'i'}, OPT_HELP, OPT_END};
    struct flags f = {0};
    int n;
    PARSE_OR_RETURN(n, 2, set_parent_usage, opts, &f);
    if (disk_set_parent(argv[optind], argv[optind + 1], f.ignore_id) < 0)
        return cli_fail();
    return EXIT_OK;
}

static const char compact_usage[] =
    "usage: hvm vhd compact FILE\n"
    "\n"
    "Releases the blocks of a dynamic or differencing disk that read as zeros\n"
    "(in a differencing disk only where the parent reads zeros too), moves the\n"
    "last blocks into the holes and shrinks the file.\n";

int cmd_vhd_compact(int argc, char **argv)
{
    static const struct option opts[] = {OPT_HELP, OPT_END};
    struct flags f = {0};
    int n;
    PARSE_OR_RETURN(n, 1, compact_usage, opts, &f);
    struct progress p;
    progress_init(&p, "compact");
    struct disk_progress pr = {progress_update, &p};
    uint64_t freed = 0;
    int r = disk_compact(argv[optind], &freed, &pr);
    progress_done(&p);
    if (r < 0)
        return cli_fail();
    char sz[32];
    printf("%s: %s released\n", argv[optind], size_format(freed, sz, sizeof sz));
    return EXIT_OK;
}

static const char resize_usage[] =
    "usage: hvm vhd resize FILE --size SIZE [--force]\n"
    "\n"
    "Grows a fixed or dynamic disk to SIZE (shrinking is refused). The disk gets\n"
    "a new unique id. A disk protected as the parent of differencing disks is\n"
    "refused unless --force (its children would no longer match it).\n";

int cmd_vhd_resize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"size", required_argument, NULL, 's'},
        {"force", no_argument, NULL, 'f'}, OPT_HELP, OPT_END};
    struct flags f = {0};
    int n;
    PARSE_OR_RETURN(n, 1, resize_usage, opts, &f);
    if (!f.have_size)
        return cli_usage_error(resize_usage, "--size is required");
    if (cli_base_guard(argv[optind], NULL, NULL, "resizing it") < 0 ||
        disk_resize(argv[optind], f.size, f.force) < 0)
        return cli_fail();
    return EXIT_OK;
}
