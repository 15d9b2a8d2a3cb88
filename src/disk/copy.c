/* Copying a whole chain into another disk: convert, and the standalone
 * flattening used by rebase and export. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int disk_convert(const char *src_path, const char *dst_path, enum disk_format format,
                 uint32_t block_size, const struct disk_progress *pr)
{
    struct disk *src, *dst = NULL;
    char *tmp = NULL;
    int r;

    if (access(dst_path, F_OK) == 0)
        return hvm_error(EEXIST, "%s: already exists", dst_path);
    if ((r = disk_open(src_path, DISK_OPEN_READ_ONLY, &src)) < 0)
        return r;
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
