/* A raw image: the file's bytes are the disk's bytes. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/filelock.h"

struct raw {
    int fd;
    struct file_lock *lock;
};

static int raw_pread(struct disk *d, void *buf, uint64_t count, uint64_t offset)
{
    struct raw *r = d->priv;
    return file_pread(r->fd, d->path, buf, count, offset);
}

static int raw_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct raw *r = d->priv;
    return file_pwritev(r->fd, d->path, iov, iovcnt, offset);
}

static int raw_flush(struct disk *d)
{
    struct raw *r = d->priv;
    return file_sync(r->fd, d->path);
}

static int raw_discard(struct disk *d, uint64_t count, uint64_t offset)
{
    struct raw *r = d->priv;
    /* Best effort: a file system without hole punching keeps the data. */
    if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
                  (off_t)count) < 0 && errno != EOPNOTSUPP)
        return hvm_error(errno, "%s: discard: %s", d->path, strerror(errno));
    return 0;
}

static int raw_block_status(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                            enum disk_extent *state)
{
    struct raw *r = d->priv;
    /* Holes in the file read as zeros: report them so that copies stay sparse. */
    off_t data = lseek(r->fd, (off_t)offset, SEEK_DATA);
    if (data < 0 && errno == ENXIO) {
        *state = DISK_EXTENT_ZERO;
        *run = count;
        return 0;
    }
    if (data < 0) {
        *state = DISK_EXTENT_DATA;
        *run = count;
        return 0;
    }
    if ((uint64_t)data > offset) {
        *state = DISK_EXTENT_ZERO;
        *run = (uint64_t)data - offset < count ? (uint64_t)data - offset : count;
        return 0;
    }
    off_t hole = lseek(r->fd, (off_t)offset, SEEK_HOLE);
    uint64_t len = hole > (off_t)offset ? (uint64_t)hole - offset : count;
    *state = DISK_EXTENT_DATA;
    *run = len < count ? len : count;
    return 0;
}

/* The file's bytes are the disk's (holes read as zeros from the file too). */
static int raw_locate(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                      enum disk_extent *state, int *fd, uint64_t *file_offset)
{
    struct raw *r = d->priv;
    *state = DISK_EXTENT_DATA;
    *run = count;
    *fd = r->fd;
    *file_offset = offset;
    return 0;
}

static void raw_close(struct disk *d)
{
    struct raw *r = d->priv;
    if (r->fd >= 0)
        close(r->fd);
    file_lock_release(r->lock);
    free(r);
    free(d->path);
    free(d);
}

static const struct disk_ops raw_ops = {
    .kind = "raw",
    .pread = raw_pread,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .discard = raw_discard,
    .block_status = raw_block_status,
    .locate = raw_locate,
    .close = raw_close,
};

int disk_raw_open(const char *path, unsigned flags, struct disk **out)
{
    bool ro = flags & DISK_OPEN_READ_ONLY;
    /* O_NONBLOCK: a FIFO must not hang the open (it is refused below). */
    int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return hvm_error(errno, "%s: %s", path, strerror(errno));
    struct stat st;
    uint64_t size = 0;
    struct file_lock *lock = NULL;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return hvm_error(e, "%s: %s", path, strerror(e));
    }
    int e = 0;
    if ((!ro || (flags & DISK_OPEN_LOCK_SHARED)) && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        e = file_lock_take(fd, path, ro ? FILE_LOCK_SHARED : FILE_LOCK_EXCLUSIVE, &lock);
    if (e < 0) {
        close(fd);
        return e;
    }
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &size) < 0)
            size = 0;
    } else if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
    } else {
        /* A folder opens read-only and then fails every read; a FIFO or a
         * terminal has no size at all. */
        close(fd);
        return hvm_error(EINVAL, "%s: not a regular file or block device", path);
    }
    struct disk *d = calloc(1, sizeof *d);
    struct raw *r = calloc(1, sizeof *r);
    if (!d || !r || !(d->path = strdup(path))) {
        free(d);
        free(r);
        close(fd);
        file_lock_release(lock);
        return hvm_error(ENOMEM, "out of memory");
    }
    r->fd = fd;
    r->lock = lock;
    d->ops = &raw_ops;
    d->size = size;
    d->read_only = ro;
    d->priv = r;
    *out = d;
    return 0;
}
