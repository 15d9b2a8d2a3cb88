/* Dispatch through a disk's ops table, and the chain-wide helpers. */
#include "disk/disk.h"
#include "disk/foreign.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/iov.h"

/* Named like a VHD? Such a file that does not probe as one is a damaged VHD
 * (an empty file, a fixed disk cut short), not a raw disk to read as is. */
static bool vhd_named(const char *path)
{
    size_t n = strlen(path);
    return (n >= 4 && strcasecmp(path + n - 4, ".vhd") == 0) ||
           (n >= 5 && strcasecmp(path + n - 5, ".avhd") == 0);
}

int disk_open(const char *path, unsigned flags, struct disk **out)
{
    if (!(flags & DISK_OPEN_RAW) && disk_is_vhd(path))
        return disk_vhd_open(path, flags, out);
    if (!(flags & DISK_OPEN_RAW) && disk_is_vhdx(path))
        return disk_vhdx_open(path, flags, out);
    /* A qcow2 or VMDK read as raw bytes would be its metadata, not its
     * guest's disk: such an image is named instead (even under a .vhd
     * name), and read as raw only when asked for (DISK_OPEN_RAW). */
    enum disk_foreign foreign = DISK_FOREIGN_NONE;
    if (!(flags & DISK_OPEN_RAW) && disk_foreign_probe(path, &foreign, NULL) == 0 &&
        foreign != DISK_FOREIGN_NONE)
        return disk_foreign_refuse(path, foreign);
    if (!(flags & DISK_OPEN_RAW) && vhd_named(path)) {
        struct stat st;
        if (stat(path, &st) < 0)
            return hvm_error(errno, "%s: %s", path, strerror(errno));
        if (S_ISREG(st.st_mode))
            return hvm_error(EINVAL, "%s: not a VHD file (%llu bytes, no 'conectix' footer "
                             "at the end and no copy at the start)", path,
                             (unsigned long long)st.st_size);
    }
    return disk_raw_open(path, flags, out);
}

void disk_close(struct disk *d)
{
    if (d)
        d->ops->close(d);
}

static int check_range(struct disk *d, uint64_t count, uint64_t offset)
{
    if (offset > d->size || d->size - offset < count)
        return hvm_error(EINVAL, "%s: range %llu+%llu is past the end of the disk (%llu bytes)",
                         d->path, (unsigned long long)offset, (unsigned long long)count,
                         (unsigned long long)d->size);
    return 0;
}

int disk_pread(struct disk *d, void *buf, uint64_t count, uint64_t offset)
{
    int r = check_range(d, count, offset);
    return r < 0 ? r : d->ops->pread(d, buf, count, offset);
}

int disk_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    int r = check_range(d, iov_total(iov, iovcnt), offset);
    if (r < 0)
        return r;
    if (d->read_only)
        return hvm_error(EROFS, "%s: opened read-only", d->path);
    if (iovcnt > IOV_MAX)
        return hvm_error(EINVAL, "%s: write in more than %d pieces", d->path, IOV_MAX);
    return d->ops->pwritev(d, iov, iovcnt, offset);
}

int disk_pwrite(struct disk *d, const void *buf, uint64_t count, uint64_t offset)
{
    struct iovec one = {(void *)buf, count};
    return disk_pwritev(d, &one, 1, offset);
}

int disk_flush(struct disk *d)
{
    return d->read_only ? 0 : d->ops->flush(d);
}

int disk_discard(struct disk *d, uint64_t count, uint64_t offset)
{
    int r = check_range(d, count, offset);
    if (r < 0)
        return r;
    if (d->read_only)
        return hvm_error(EROFS, "%s: opened read-only", d->path);
    return d->ops->discard ? d->ops->discard(d, count, offset) : 0;
}

int disk_block_status(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                      enum disk_extent *state)
{
    int r = check_range(d, count, offset);
    if (r < 0)
        return r;
    if (count == 0) {
        *run = 0;
        *state = DISK_EXTENT_ZERO;
        return 0;
    }
    return d->ops->block_status(d, offset, count, run, state);
}

/* Walks down the chain while the run at offset comes from a parent,
 * shrinking it to the smallest run seen so that the answer holds for the
 * whole of it. With locate, each layer also says which file holds its data
 * (-ENOTSUP from a kind that cannot). */
static int chain_walk(struct disk *d, uint64_t offset, uint64_t count, bool locate, uint64_t *run,
                      bool *data, int *fd, uint64_t *file_offset)
{
    uint64_t len = count;
    *data = false;
    for (struct disk *l = d; l; l = l->parent) {
        enum disk_extent st;
        uint64_t n;
        int r;
        if (!locate)
            r = disk_block_status(l, offset, len, &n, &st);
        else if (!l->ops->locate)
            r = -ENOTSUP;
        else
            r = l->ops->locate(l, offset, len, &n, &st, fd, file_offset);
        if (r < 0)
            return r;
        len = n;
        if (st == DISK_EXTENT_DATA) {
            *data = true;
            break;
        }
        if (st == DISK_EXTENT_ZERO)
            break;
    }
    *run = len;
    return 0;
}

int disk_chain_status(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                      bool *data)
{
    return chain_walk(d, offset, count, false, run, data, NULL, NULL);
}

int disk_locate(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run, int *fd,
                uint64_t *file_offset)
{
    bool data;
    int r = chain_walk(d, offset, count, true, run, &data, fd, file_offset);
    if (r == 0 && !data) {
        *fd = -1;
        *file_offset = 0;
    }
    return r;
}

void disk_advise(struct disk *d, uint64_t offset, uint64_t count)
{
    if (offset >= d->size)
        return;
    if (count > d->size - offset)
        count = d->size - offset;
    for (struct disk *l = d; l; l = l->parent)
        if (l->ops->advise)
            l->ops->advise(l, offset, count);
}

int disk_write_zeroes(struct disk *d, uint64_t offset, uint64_t count)
{
    while (count > 0) {
        uint64_t run;
        bool data;
        int r = disk_chain_status(d, offset, count, &run, &data);
        if (r < 0)
            return r;
        if (run == 0 || run > count)
            run = count;
        if (data) {
            uint64_t n = run < ZERO_BUFFER_SIZE ? run : ZERO_BUFFER_SIZE;
            if ((r = disk_pwrite(d, zero_buffer, n, offset)) < 0)
                return r;
            run = n;
        }
        offset += run;
        count -= run;
    }
    return 0;
}

int disk_read_layered(struct disk *d, void *buf, uint64_t count, uint64_t offset,
                      int (*read_own)(struct disk *, void *, uint64_t, uint64_t))
{
    uint8_t *p = buf;
    while (count > 0) {
        enum disk_extent st;
        uint64_t n;
        int r = d->ops->block_status(d, offset, count, &n, &st);
        if (r < 0)
            return r;
        if (st == DISK_EXTENT_DATA)
            r = read_own(d, p, n, offset);
        else if (st == DISK_EXTENT_PARENT && d->parent)
            r = d->parent->ops->pread(d->parent, p, n, offset);
        else
            memset(p, 0, n);
        if (r < 0)
            return r;
        p += n;
        offset += n;
        count -= n;
    }
    return 0;
}

int disk_chain_enter(const char *path, unsigned depth, struct disk_chain_seen *seen,
                     struct stat *st)
{
    if (depth >= DISK_MAX_DEPTH)
        return hvm_error(ELOOP, "%s: parent chain deeper than %d layers", seen[0].path,
                         DISK_MAX_DEPTH);
    if (stat(path, st) < 0)
        return hvm_error(errno, "%s: %s", path, strerror(errno));
    for (unsigned i = 0; i < depth; i++)
        if (seen[i].dev == st->st_dev && seen[i].ino == st->st_ino)
            return hvm_error(ELOOP, "%s: parent chain loops back to %s", seen[depth - 1].path,
                             path);
    seen[depth] = (struct disk_chain_seen){st->st_dev, st->st_ino, path};
    return 0;
}
