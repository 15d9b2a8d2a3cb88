/* The three VHD kinds as struct disk: fixed, dynamic and differencing.
 *
 * Opening a differencing disk opens its parent chain read-only. At every
 * link the parent's unique id and virtual size must be the ones the child
 * expects; a missing parent, a mismatch, a loop or a chain deeper than
 * DISK_MAX_DEPTH each fail with their own message naming the files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/ops.h"
#include "util/error.h"
#include "util/iov.h"
#include "util/uuid.h"
#include "vhd/image.h"

static int vhd_read_own_cb(struct disk *d, void *buf, uint64_t count, uint64_t offset)
{
    return vhd_read_own(d->priv, buf, count, offset);
}

static int vd_pread(struct disk *d, void *buf, uint64_t count, uint64_t offset)
{
    struct vhd *v = d->priv;
    if (!vhd_is_sparse(v))
        return vhd_read_own(v, buf, count, offset);
    return disk_read_layered(d, buf, count, offset, vhd_read_own_cb);
}

/* Partial sectors are read through the whole chain, patched and written
 * back whole: a differencing layer owns whole sectors only. */
static int write_partial(struct disk *d, const uint8_t *p, uint64_t sector, unsigned at,
                         unsigned len)
{
    uint8_t buf[VHD_SECTOR];
    int r = vd_pread(d, buf, VHD_SECTOR, sector * VHD_SECTOR);
    if (r < 0)
        return r;
    memcpy(buf + at, p, len);
    return vhd_write_own(d->priv, buf, VHD_SECTOR, sector * VHD_SECTOR);
}

static int vd_pwrite(struct disk *d, const void *buf, uint64_t count, uint64_t offset)
{
    const uint8_t *p = buf;
    int r;
    unsigned head = (unsigned)(offset % VHD_SECTOR);
    if (head) {
        unsigned len = VHD_SECTOR - head < count ? VHD_SECTOR - head : (unsigned)count;
        if ((r = write_partial(d, p, offset / VHD_SECTOR, head, len)) < 0)
            return r;
        p += len;
        offset += len;
        count -= len;
    }
    uint64_t whole = count / VHD_SECTOR * VHD_SECTOR;
    if (whole) {
        if ((r = vhd_write_own(d->priv, p, whole, offset)) < 0)
            return r;
        p += whole;
        offset += whole;
        count -= whole;
    }
    if (count)
        return write_partial(d, p, offset / VHD_SECTOR, 0, (unsigned)count);
    return 0;
}

/* Whole sectors go straight from the pieces; a write with partial sectors
 * (only byte-granular NBD clients send those) is gathered first. */
static int vd_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    uint64_t count = iov_total(iov, iovcnt);
    if (offset % VHD_SECTOR == 0 && count % VHD_SECTOR == 0)
        return vhd_writev_own(d->priv, iov, iovcnt, offset);
    if (iovcnt == 1)
        return vd_pwrite(d, iov[0].iov_base, count, offset);
    uint8_t *buf = malloc(count ? count : 1);
    if (!buf)
        return hvm_error(ENOMEM, "out of memory");
    iov_gather(iov, iovcnt, buf);
    int r = vd_pwrite(d, buf, count, offset);
    free(buf);
    return r;
}

static int vd_flush(struct disk *d)
{
    return vhd_flush(d->priv);
}

static int vd_discard(struct disk *d, uint64_t count, uint64_t offset)
{
    return vhd_discard(d->priv, count, offset);
}

static int vd_block_status(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                           enum disk_extent *state)
{
    struct vhd *v = d->priv;
    enum vhd_run st;
    int r = vhd_status(v, offset, count, run, &st);
    if (r < 0)
        return r;
    if (st == VHD_RUN_DATA)
        *state = DISK_EXTENT_DATA;
    else
        *state = d->parent ? DISK_EXTENT_PARENT : DISK_EXTENT_ZERO;
    return 0;
}

static void vd_advise(struct disk *d, uint64_t offset, uint64_t count)
{
    vhd_advise(d->priv, offset, count);
}

static int vd_locate(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                     enum disk_extent *state, int *fd, uint64_t *file_offset)
{
    struct vhd *v = d->priv;
    int r = vd_block_status(d, offset, count, run, state);
    if (r < 0 || *state != DISK_EXTENT_DATA)
        return r;
    *fd = v->fd;
    if (!vhd_is_sparse(v)) { /* fixed: the data starts the file */
        *file_offset = offset;
        return 0;
    }
    /* Blocks next to each other on the disk need not be in the file. */
    uint32_t block = (uint32_t)(offset / v->block_size);
    uint64_t in_block = offset % v->block_size;
    if (*run > v->block_size - in_block)
        *run = v->block_size - in_block;
    *file_offset = vhd_block_offset(v, block) + v->bitmap_bytes + in_block;
    return 0;
}

static void vd_close(struct disk *d)
{
    disk_close(d->parent);
    vhd_close(d->priv);
    free(d->path);
    free(d);
}

#define VHD_OPS(name, kind_name)                                                       \
    static const struct disk_ops name = {                                              \
        .kind = kind_name, .pread = vd_pread, .pwritev = vd_pwritev, .flush = vd_flush,  \
        .discard = vd_discard, .block_status = vd_block_status, .locate = vd_locate, .advise = vd_advise,   \
        .close = vd_close,                                                             \
    }
VHD_OPS(fixed_ops, "fixed");
VHD_OPS(dynamic_ops, "dynamic");
VHD_OPS(diff_ops, "differencing");

bool disk_is_vhd(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang */
    if (fd < 0)
        return false;
    char cookie[8];
    struct stat st;
    bool yes = false;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 512) {
        if (pread(fd, cookie, 8, st.st_size - 512) == 8 && memcmp(cookie, "conectix", 8) == 0)
            yes = true;
        else if (st.st_size % 512 == 511 && pread(fd, cookie, 8, st.st_size - 511) == 8 &&
                 memcmp(cookie, "conectix", 8) == 0)
            yes = true;
        else if (pread(fd, cookie, 8, 0) == 8 && memcmp(cookie, "conectix", 8) == 0)
            yes = true;
    }
    close(fd);
    return yes;
}

bool disk_file_protected(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !(st.st_mode & 0222);
}

struct vhd *disk_vhd_image(struct disk *d)
{
    if (d->ops == &fixed_ops || d->ops == &dynamic_ops || d->ops == &diff_ops)
        return d->priv;
    return NULL;
}

static int open_layer(const char *path, unsigned flags, unsigned depth,
                      struct disk_chain_seen *seen, struct disk **out);

/* A layer protected read-only (no write bits) that the caller may write
 * (DISK_OPEN_FORCE: a merge into it, a rebase of a frozen checkpoint layer).
 * Root opens it as it is; its owner may not, so the owner's write bit is
 * lifted for the open only: the descriptor stays writable, the file goes
 * back to read-only at once. */
static int vhd_open_protected(const char *path, unsigned vflags, const struct stat *st,
                              struct vhd **v)
{
    int r = vhd_open(path, vflags, v);
    if (r != -EACCES || (vflags & VHD_OPEN_READ_ONLY) || (st->st_mode & S_IWUSR) ||
        st->st_uid != geteuid())
        return r;
    if (chmod(path, (st->st_mode | S_IWUSR) & 07777) < 0)
        return hvm_error(errno, "%s: %s", path, strerror(errno));
    r = vhd_open(path, vflags, v);
    if (chmod(path, st->st_mode & 07777) < 0 && r == 0) {
        r = hvm_error(errno, "%s: could not protect it again: %s", path, strerror(errno));
        vhd_close(*v);
        *v = NULL;
    }
    return r;
}

static int open_parent(struct disk *d, struct vhd *v, unsigned flags, unsigned depth,
                       struct disk_chain_seen *seen)
{
    char **cands = vhd_parent_candidates(v);
    char tried[2048] = "";
    char want[37], got[37];
    int r = 0;

    if (!cands)
        return hvm_error(ENOMEM, "out of memory");
    for (size_t i = 0; cands[i]; i++) {
        if (access(cands[i], F_OK) != 0) {
            size_t len = strlen(tried);
            snprintf(tried + len, sizeof tried - len, "%s%s", len ? ", " : "", cands[i]);
            continue;
        }
        struct disk *p = NULL;
        /* The parents of a disk being written must not change under it. */
        unsigned pflags = (flags | DISK_OPEN_READ_ONLY) & ~DISK_OPEN_LENIENT;
        if (!(flags & DISK_OPEN_READ_ONLY))
            pflags |= DISK_OPEN_LOCK_SHARED;
        r = open_layer(cands[i], pflags, depth + 1, seen, &p);
        if (r < 0)
            break;
        struct vhd *pv = disk_vhd_image(p);
        uuid_format(v->header.parent_id, want);
        /* A merge of this child interrupted after the parent took its new
         * id: the child still reads right, and the merge runs again. */
        if (pv && memcmp(pv->footer.unique_id, v->header.parent_id, 16) != 0 &&
            !disk_merge_interrupted(v, pv)) {
            uuid_format(pv->footer.unique_id, got);
            r = hvm_error(ESTALE, "%s: parent %s has unique id %s but the child expects %s "
                          "(the parent was replaced or modified; see 'hvm vhd set-parent')",
                          d->path, cands[i], got, want);
            disk_close(p);
            break;
        }
        if (p->size != d->size) {
            r = hvm_error(ESTALE, "%s: parent %s is %llu bytes but the child is %llu bytes",
                          d->path, cands[i], (unsigned long long)p->size,
                          (unsigned long long)d->size);
            disk_close(p);
            break;
        }
        d->parent = p;
        break;
    }
    if (r == 0 && !d->parent) {
        char *name = vhd_parent_name(v);
        r = hvm_error(ENOENT, "%s: parent '%s' not found (tried: %s)", d->path,
                      name ? name : "?", tried[0] ? tried : "no usable locator");
        free(name);
    }
    vhd_paths_free(cands);
    return r;
}

static int open_layer(const char *path, unsigned flags, unsigned depth,
                      struct disk_chain_seen *seen, struct disk **out)
{
    struct stat st;
    struct vhd *v;
    int r;

    if ((r = disk_chain_enter(path, depth, seen, &st)) < 0)
        return r;
    if (!(flags & (DISK_OPEN_READ_ONLY | DISK_OPEN_FORCE)) && !(st.st_mode & 0222))
        return hvm_error(EROFS, "%s: protected read-only as the parent of differencing "
                         "disks; writing it would break them",
                         path);

    unsigned vflags = (flags & DISK_OPEN_READ_ONLY ? VHD_OPEN_READ_ONLY : 0) |
                      (flags & DISK_OPEN_LENIENT ? VHD_OPEN_LENIENT : 0) |
                      (flags & DISK_OPEN_HEADER_ONLY ? VHD_OPEN_HEADER_ONLY : 0) |
                      (flags & DISK_OPEN_LOCK_SHARED ? VHD_OPEN_LOCK_SHARED : 0);
    if ((r = (flags & DISK_OPEN_FORCE) ? vhd_open_protected(path, vflags, &st, &v)
                                       : vhd_open(path, vflags, &v)) < 0)
        return r;
    struct disk *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        vhd_close(v);
        return hvm_error(ENOMEM, "out of memory");
    }
    d->priv = v;
    d->size = v->size;
    d->read_only = v->read_only;
    d->depth = depth;
    d->ops = v->footer.type == VHD_TYPE_FIXED     ? &fixed_ops
             : v->footer.type == VHD_TYPE_DYNAMIC ? &dynamic_ops
                                                  : &diff_ops;
    if (v->footer.type == VHD_TYPE_DIFF && !(flags & DISK_OPEN_NO_PARENT) &&
        (r = open_parent(d, v, flags, depth, seen)) < 0) {
        vd_close(d);
        return r;
    }
    *out = d;
    return 0;
}

int disk_vhd_open(const char *path, unsigned flags, struct disk **out)
{
    struct disk_chain_seen seen[DISK_MAX_DEPTH];
    return open_layer(path, flags, 0, seen, out);
}
