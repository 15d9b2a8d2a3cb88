/* hvm vhd convert | merge | rebase | set-parent | compact | resize */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vhd_import.h"
#include "disk/ops.h"
#include "util/size.h"

static int finish(int r, struct progress *p)
{
    progress_done(p);
    return r < 0 ? cli_fail() : EXIT_OK;
}

/* --from-format's value (the parser checked it against the table's list). */
static void from_format(const char *text, struct disk_source_format *out)
{
    *out = (struct disk_source_format){DISK_FROM_PROBE, DISK_FOREIGN_NONE};
    if (!text)
        return;
    if (strcmp(text, "auto") == 0)
        out->how = DISK_FROM_AUTO;
    else if (strcmp(text, "raw") == 0)
        out->how = DISK_FROM_RAW;
    else if (disk_foreign_from_name(text, &out->foreign))
        out->how = DISK_FROM_FOREIGN;
}

int cmd_vhd_convert(const struct cli_args *a)
{
    const char *type = cli_text(a, "type");
    enum disk_format fmt = DISK_FORMAT_DYNAMIC;
    if (type && strcmp(type, "raw") == 0)
        fmt = DISK_FORMAT_RAW;
    else if (type && strcmp(type, "fixed") == 0)
        fmt = DISK_FORMAT_FIXED;
    struct disk_source_format from;
    from_format(cli_text(a, "from-format"), &from);
    /* A foreign image into a VHD is streamed through hvm's NBD server;
     * into raw, qemu-img writes the result itself (disk_convert_from). */
    const char *src = cli_pos(a, 0), *dst = cli_pos(a, 1);
    uint32_t block_size = (uint32_t)cli_size_or(a, "block-size", 0);
    enum disk_foreign foreign;
    if (disk_source_resolve(src, &from, &foreign) < 0)
        return cli_fail();
    struct progress p;
    progress_init(&p, "convert");
    struct disk_progress pr = {progress_update, &p};
    if (foreign != DISK_FOREIGN_NONE && fmt != DISK_FORMAT_RAW)
        return finish(cli_convert_foreign(src, foreign, dst, fmt, block_size, &pr), &p);
    return finish(disk_convert_from(src, &from, dst, fmt, block_size, &pr), &p);
}

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

int cmd_vhd_merge(const struct cli_args *a)
{
    if (merge_guard(cli_pos(a, 0)) < 0)
        return cli_fail();
    struct progress p;
    progress_init(&p, "merge");
    struct disk_progress pr = {progress_update, &p};
    return finish(disk_merge(cli_pos(a, 0), cli_flag(a, "force"), &pr), &p);
}

int cmd_vhd_rebase(const struct cli_args *a)
{
    const char *onto = cli_text(a, "onto");
    if (!onto == !cli_flag(a, "standalone"))
        return cli_verb_error(a, "give exactly one of --onto and --standalone");
    struct progress p;
    progress_init(&p, "rebase");
    struct disk_progress pr = {progress_update, &p};
    return finish(disk_rebase(cli_pos(a, 0), onto, &pr), &p);
}

int cmd_vhd_set_parent(const struct cli_args *a)
{
    if (disk_set_parent(cli_pos(a, 0), cli_pos(a, 1), cli_flag(a, "ignore-id-mismatch")) < 0)
        return cli_fail();
    return EXIT_OK;
}

int cmd_vhd_compact(const struct cli_args *a)
{
    const char *path = cli_pos(a, 0);
    struct progress p;
    progress_init(&p, "compact");
    struct disk_progress pr = {progress_update, &p};
    uint64_t freed = 0;
    int r = disk_compact(path, &freed, &pr);
    progress_done(&p);
    if (r < 0)
        return cli_fail();
    char sz[32];
    printf("%s: %s released\n", path, size_format(freed, sz, sizeof sz));
    return EXIT_OK;
}

int cmd_vhd_resize(const struct cli_args *a)
{
    const char *path = cli_pos(a, 0);
    if (cli_base_guard(path, NULL, NULL, "resizing it") < 0 ||
        disk_resize(path, cli_size_or(a, "size", 0), cli_flag(a, "force")) < 0)
        return cli_fail();
    return EXIT_OK;
}
