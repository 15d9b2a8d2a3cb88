/* Copying a whole chain into another disk: convert, and the standalone
 * flattening used by rebase and export. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/foreign.h"
#include "disk/ops.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vhd/image.h"

/* A run holds data somewhere in src's chain: copy it. Asking about the
 * rest of the disk lets unallocated areas pass in one step. */
static int pick_chain_data(void *opaque, uint64_t off, uint64_t count, uint64_t *run, bool *copy)
{
    return disk_chain_status(opaque, off, count, run, copy);
}

int disk_copy(struct disk *src, struct disk *dst, const struct disk_progress *pr)
{
    if (dst->size < src->size)
        return hvm_error(EINVAL, "%s: smaller than %s", dst->path, src->path);
    struct disk_copy_plan plan = {
        .src = src, .dst = dst, .size = src->size, .pick = pick_chain_data, .opaque = src,
        .skip_zero = true, .progress = pr,
    };
    int r = disk_copy_runs(&plan);
    if (r == 0)
        r = disk_flush(dst);
    return r;
}

static int create_raw(const char *path, uint64_t size)
{
    FILE *f = fopen(path, "wx");
    if (!f)
        return hvm_error(errno, "%s: %s", path, errno == EEXIST ? "already exists" : strerror(errno));
    int r = ftruncate(fileno(f), (off_t)size) < 0 ? hvm_error(errno, "%s: %s", path, strerror(errno)) : 0;
    fclose(f);
    return r;
}

/* Writes dst_path from src (closed here) through a temporary next to it. */
static int convert_open_disk(struct disk *src, const char *dst_path, enum disk_format format,
                             uint32_t block_size, const struct disk_progress *pr)
{
    struct disk *dst = NULL;
    char *tmp = NULL;
    int r;

    path_remove_stale(dst_path, ".converting.");
    if (asprintf(&tmp, "%s.converting.%d", dst_path, (int)getpid()) < 0) {
        disk_close(src);
        return hvm_error(ENOMEM, "out of memory");
    }
    uint64_t size = src->size;
    if (format != DISK_FORMAT_RAW && size % VHD_SECTOR)
        size = (size + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
    if (format == DISK_FORMAT_RAW) {
        r = create_raw(tmp, size);
    } else {
        struct vhd_create_params p = {
            .type = format == DISK_FORMAT_FIXED ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC,
            .size = size,
            .block_size = block_size,
        };
        /* Refuse an impossible size or block size under DST's name, not the
         * temporary one. */
        if ((r = vhd_create_check(dst_path, &p)) == 0)
            r = vhd_create(tmp, &p);
    }
    if (r == 0 && (r = disk_open(tmp, format == DISK_FORMAT_RAW ? DISK_OPEN_RAW : 0, &dst)) == 0) {
        r = disk_copy(src, dst, pr);
        disk_close(dst);
    }
    disk_close(src);
    /* Rename only a complete copy into place; link() will not replace a file
     * that appeared meanwhile. */
    if (r == 0 && link(tmp, dst_path) < 0)
        r = hvm_error(errno, "%s: %s", dst_path, errno == EEXIST ? "already exists" : strerror(errno));
    unlink(tmp);
    if (r == 0)
        r = path_sync_dir(dst_path);
    free(tmp);
    return r;
}

/* One of parts consecutive steps of a whole, as one progress from 0 to 1000. */
struct progress_part {
    const struct disk_progress *whole;
    unsigned part, parts;
};

static void progress_part_report(void *opaque, uint64_t done, uint64_t total)
{
    struct progress_part *p = opaque;
    if (total == 0)
        return;
    double step = (double)done / (double)total;
    disk_progress_report(p->whole, (uint64_t)((p->part + step) * 1000 / p->parts), 1000);
}

/* src is an image of a foreign format: qemu-img writes its disk into a
 * sparse raw temporary beside dst_path, which is the result itself when
 * raw is asked for and the source of an ordinary convert otherwise. The
 * temporary goes on every path; a crash leaves it under a name with our
 * pid, which the next convert to dst_path removes (path_remove_stale). */
static int convert_foreign(const char *src_path, enum disk_foreign foreign, const char *dst_path,
                           enum disk_format format, uint32_t block_size,
                           const struct disk_progress *pr)
{
    char *raw = NULL;
    struct disk *src;
    int r;
    path_remove_stale(dst_path, ".converting.");
    if (asprintf(&raw, "%s.converting.%d.raw", dst_path, (int)getpid()) < 0)
        return hvm_error(ENOMEM, "out of memory");
    /* qemu-img's pass, then (unless raw was asked for) hvm's copy. */
    struct progress_part first = {pr, 0, format == DISK_FORMAT_RAW ? 1 : 2};
    struct progress_part second = {pr, 1, 2};
    struct disk_progress first_pr = {progress_part_report, &first};
    struct disk_progress second_pr = {progress_part_report, &second};
    if ((r = disk_foreign_to_raw(src_path, foreign, raw, &first_pr)) < 0)
        goto out;
    if (format == DISK_FORMAT_RAW) {
        int fd = open(raw, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
            r = hvm_error(errno, "%s: %s", raw, strerror(errno));
        if (fd >= 0)
            close(fd);
        if (r == 0 && link(raw, dst_path) < 0)
            r = hvm_error(errno, "%s: %s", dst_path,
                          errno == EEXIST ? "already exists" : strerror(errno));
        if (r == 0)
            r = path_sync_dir(dst_path);
    } else if ((r = disk_open(raw, DISK_OPEN_RAW | DISK_OPEN_READ_ONLY, &src)) == 0) {
        r = convert_open_disk(src, dst_path, format, block_size, &second_pr);
    }
out:
    unlink(raw);
    free(raw);
    return r;
}

int disk_source_resolve(const char *src_path, const struct disk_source_format *from,
                        enum disk_foreign *foreign)
{
    static const struct disk_source_format probe = {DISK_FROM_PROBE, DISK_FOREIGN_NONE};
    enum disk_foreign found = DISK_FOREIGN_NONE;
    int r;
    *foreign = DISK_FOREIGN_NONE;
    if (!from)
        from = &probe;
    if (from->how == DISK_FROM_RAW)
        return 0;
    bool vhd = disk_is_vhd(src_path);
    if (!vhd && (r = disk_foreign_probe(src_path, &found, NULL)) < 0)
        return r;
    if (from->how == DISK_FROM_FOREIGN && found != from->foreign) {
        const char *want = disk_foreign_title(from->foreign);
        if (vhd)
            return hvm_error(EMEDIUMTYPE, "%s: not a %s image but a VHD (convert it without "
                             "--from-format)", src_path, want);
        if (found != DISK_FOREIGN_NONE)
            return hvm_error(EMEDIUMTYPE, "%s: not a %s image but a %s one (--from-format %s)",
                             src_path, want, disk_foreign_title(found), disk_foreign_name(found));
        return hvm_error(EMEDIUMTYPE, "%s: not a %s image (no %s header at its start)",
                         src_path, want, want);
    }
    if (found == DISK_FOREIGN_VHDX)
        return 0; /* hvm reads VHDX itself (disk/vhdx.c) */
    if (found != DISK_FOREIGN_NONE &&
        (from->how == DISK_FROM_PROBE || !disk_foreign_convertible(found)))
        return disk_foreign_refuse(src_path, found);
    *foreign = found;
    return 0;
}

int disk_convert_from(const char *src_path, const struct disk_source_format *from,
                      const char *dst_path, enum disk_format format, uint32_t block_size,
                      const struct disk_progress *pr)
{
    struct disk *src;
    enum disk_foreign foreign;
    int r;

    if (access(dst_path, F_OK) == 0)
        return hvm_error(EEXIST, "%s: already exists", dst_path);
    if ((r = disk_source_resolve(src_path, from, &foreign)) < 0)
        return r;
    if (foreign != DISK_FOREIGN_NONE)
        return convert_foreign(src_path, foreign, dst_path, format, block_size, pr);
    unsigned raw = from && from->how == DISK_FROM_RAW ? DISK_OPEN_RAW : 0;
    if ((r = disk_open(src_path, DISK_OPEN_READ_ONLY | raw, &src)) < 0)
        return r;
    return convert_open_disk(src, dst_path, format, block_size, pr);
}

int disk_convert(const char *src_path, const char *dst_path, enum disk_format format,
                 uint32_t block_size, const struct disk_progress *pr)
{
    return disk_convert_from(src_path, NULL, dst_path, format, block_size, pr);
}
