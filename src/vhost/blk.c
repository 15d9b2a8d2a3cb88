/* virtio-blk (VIRTIO 1.1, 5.2) on the vhost-user device: configuration
 * space and requests.
 *
 * A request is a header (type, sector) in the first device-readable bytes,
 * data, and a status byte in the last device-writable byte. Reads go from
 * the files holding each run of the chain (disk_locate) straight into the
 * guest's buffers with preadv; writes go straight from the guest's buffers
 * through the disk layer (disk_pwritev), which allocates blocks and marks
 * bitmaps as for any write. Every disk access is made holding the disk
 * (struct vhost_blk_disk_access), one request at a time. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "disk/disk.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/iov.h"
#include "vhost/blk.h"
#include "vhost/internal.h"

/* Data segments per request we advertise (seg_max): more than a 1 MiB
 * request of 4 KiB pages needs, so the guest sends it whole. Leaves room
 * in VHOST_MAX_SEGMENTS for the header, the status and buffers split
 * across memory regions. */
#define SEG_MAX 510
/* Discard and write-zeroes: sectors per request, one range each. */
#define MAX_RANGE_SECTORS (1u << 16)
/* The most data one read or write may carry. The guest is told only
 * seg_max, but segments can be large; a bound keeps a stop of the ring
 * (which waits for the request in hand) short. */
#define MAX_REQUEST (64u << 20)

struct vhost_blk {
    struct vhost_dev dev;
    struct vhost_blk_disk_access access;
    struct vhost_blk_options opts; /* for the log */
    uint64_t size;
    bool read_only;
    int queues;
    char serial[VIRTIO_BLK_ID_BYTES];
    int stop_fd;
};

/* Reads through the disk layer piece by piece: for kinds that cannot say
 * where their data is (none of today's). */
static int read_pieces(struct disk *d, struct iov_cursor *c, uint64_t offset, uint64_t len)
{
    while (len > 0) {
        struct iovec piece;
        size_t n = c->iov[c->i].iov_len - c->skip;
        if (n > len)
            n = (size_t)len;
        if (iov_cursor_take(c, n, &piece, 1) != 1)
            return -EINVAL;
        int r = disk_pread(d, piece.iov_base, n, offset);
        if (r < 0)
            return r;
        offset += n;
        len -= n;
    }
    return 0;
}

static int do_read(struct disk *d, struct iov_cursor *c, uint64_t offset, uint64_t len)
{
    struct iovec piece[VHOST_MAX_SEGMENTS];
    while (len > 0) {
        uint64_t run, foff;
        int fd;
        int r = disk_locate(d, offset, len, &run, &fd, &foff);
        if (r == -ENOTSUP) {
            hvm_error_clear();
            return read_pieces(d, c, offset, len);
        }
        if (r < 0)
            return r;
        if (run == 0 || run > len)
            return -EIO;
        int k = iov_cursor_take(c, run, piece, VHOST_MAX_SEGMENTS);
        if (k < 0)
            return -EINVAL;
        if (fd < 0) {
            for (int i = 0; i < k; i++)
                memset(piece[i].iov_base, 0, piece[i].iov_len);
        } else if ((r = file_preadv(fd, d->path, piece, k, foff)) < 0) {
            return r;
        }
        offset += run;
        len -= run;
    }
    return 0;
}

/* Discard and write-zeroes: an array of ranges as the request's data. */
static int do_ranges(struct vhost_blk *b, struct disk *d, struct iov_cursor *c, size_t len,
                     bool zeroes)
{
    if (d->read_only)
        return -EROFS;
    if (len % sizeof(struct virtio_blk_discard_write_zeroes))
        return -EINVAL;
    for (size_t i = 0; i < len / sizeof(struct virtio_blk_discard_write_zeroes); i++) {
        struct virtio_blk_discard_write_zeroes range;
        struct iovec piece[VHOST_MAX_SEGMENTS];
        int k = iov_cursor_take(c, sizeof range, piece, VHOST_MAX_SEGMENTS);
        if (k < 0)
            return -EINVAL;
        iov_gather(piece, k, &range);
        uint64_t offset = range.sector * 512, count = (uint64_t)range.num_sectors * 512;
        if (range.sector > b->size / 512 || count > b->size - offset ||
            range.num_sectors > MAX_RANGE_SECTORS)
            return -EINVAL;
        int r = zeroes ? disk_write_zeroes(d, offset, count) : disk_discard(d, count, offset);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Splits the request into header, data (as iovecs) and status byte. */
static int parse(struct vhost_request *req, struct virtio_blk_outhdr *h, struct iovec *data,
                 int *n_data, bool *data_writable, uint8_t **status)
{
    if (req->n == 0)
        return -EINVAL;
    struct vhost_segment *last = &req->seg[req->n - 1];
    if (!last->writable || last->len == 0)
        return -EINVAL;
    *status = last->host + last->len - 1;
    size_t need = sizeof *h, got = 0;
    int i = 0;
    size_t skip = 0;
    while (got < need) {
        if (i >= req->n || req->seg[i].writable)
            return -EINVAL;
        size_t n = req->seg[i].len < need - got ? req->seg[i].len : need - got;
        memcpy((uint8_t *)h + got, req->seg[i].host, n);
        got += n;
        if (n == req->seg[i].len)
            i++;
        else
            skip = n;
    }
    int k = 0;
    bool any = false, writable = false;
    for (; i < req->n; i++, skip = 0) {
        size_t len = req->seg[i].len - skip;
        if (i == req->n - 1)
            len--; /* the status byte */
        if (len == 0)
            continue;
        if (any && req->seg[i].writable != writable)
            return -EINVAL; /* data is all one way */
        writable = req->seg[i].writable;
        any = true;
        data[k++] = (struct iovec){req->seg[i].host + skip, len};
    }
    *n_data = k;
    *data_writable = writable;
    return 0;
}

static uint8_t status_of(int r)
{
    if (r == 0)
        return VIRTIO_BLK_S_OK;
    return r == -ENOTSUP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

static uint32_t blk_handle(void *opaque, struct vhost_queue *q, struct vhost_request *req)
{
    struct vhost_blk *b = opaque;
    (void)q; /* one request at a time, whatever its queue */
    struct virtio_blk_outhdr h;
    struct iovec data[VHOST_MAX_SEGMENTS];
    int n_data;
    bool writable;
    uint8_t *status;
    if (parse(req, &h, data, &n_data, &writable, &status) < 0) {
        /* No place for a status, or no header: the request is malformed. */
        if (req->n && req->seg[req->n - 1].writable && req->seg[req->n - 1].len) {
            req->seg[req->n - 1].host[req->seg[req->n - 1].len - 1] = VIRTIO_BLK_S_IOERR;
            return 1;
        }
        return 0;
    }
    size_t len = 0;
    for (int i = 0; i < n_data; i++)
        len += data[i].iov_len;
    struct iov_cursor c = iov_cursor(data, n_data);
    uint64_t offset = h.sector * 512;
    uint32_t written = 0;
    int r = 0;
    bool io = h.type == VIRTIO_BLK_T_IN || h.type == VIRTIO_BLK_T_OUT;
    if (io && (len % 512 || len > MAX_REQUEST || h.sector > b->size / 512 || len > b->size - offset ||
               (len && writable != (h.type == VIRTIO_BLK_T_IN))))
        r = -EINVAL;
    else if (b->read_only && (h.type == VIRTIO_BLK_T_OUT || h.type == VIRTIO_BLK_T_DISCARD ||
                              h.type == VIRTIO_BLK_T_WRITE_ZEROES))
        r = -EROFS; /* the device says read-only, whatever the disk was opened as */
    else if (h.type == VIRTIO_BLK_T_GET_ID) {
        struct iovec piece[VHOST_MAX_SEGMENTS];
        size_t n = len < VIRTIO_BLK_ID_BYTES ? len : VIRTIO_BLK_ID_BYTES;
        int k = writable ? iov_cursor_take(&c, n, piece, VHOST_MAX_SEGMENTS) : -1;
        if (k < 0)
            r = -EINVAL;
        else
            iov_scatter(piece, k, b->serial), written = (uint32_t)n;
    } else if (h.type != VIRTIO_BLK_T_IN && h.type != VIRTIO_BLK_T_OUT &&
               h.type != VIRTIO_BLK_T_FLUSH && h.type != VIRTIO_BLK_T_DISCARD &&
               h.type != VIRTIO_BLK_T_WRITE_ZEROES) {
        r = -ENOTSUP;
    } else {
        struct disk *d = b->access.acquire(b->access.opaque);
        switch (h.type) {
        case VIRTIO_BLK_T_IN:
            r = do_read(d, &c, offset, len);
            written = r == 0 ? (uint32_t)len : 0;
            break;
        case VIRTIO_BLK_T_OUT:
            /* Straight from the guest's buffers; the disk layer allocates. */
            r = disk_pwritev(d, data, n_data, offset);
            break;
        case VIRTIO_BLK_T_FLUSH:
            r = disk_flush(d);
            break;
        case VIRTIO_BLK_T_DISCARD:
        case VIRTIO_BLK_T_WRITE_ZEROES:
            r = writable ? -EINVAL : do_ranges(b, d, &c, len, h.type == VIRTIO_BLK_T_WRITE_ZEROES);
            break;
        }
        b->access.release(b->access.opaque);
        hvm_error_clear(); /* the guest gets an I/O error, not our message */
    }
    *status = status_of(r);
    return written + 1;
}

static void blk_get_config(void *opaque, uint32_t offset, uint8_t *buf, uint32_t len)
{
    struct vhost_blk *b = opaque;
    struct virtio_blk_config c = {
        .capacity = b->size / 512,
        .seg_max = SEG_MAX,
        .blk_size = 512,
        .num_queues = (uint16_t)b->queues,
        .max_discard_sectors = MAX_RANGE_SECTORS,
        .max_discard_seg = 1,
        .discard_sector_alignment = 8,
        .max_write_zeroes_sectors = MAX_RANGE_SECTORS,
        .max_write_zeroes_seg = 1,
    };
    if (offset >= sizeof c)
        return;
    if (len > sizeof c - offset)
        len = (uint32_t)(sizeof c - offset);
    memcpy(buf, (const uint8_t *)&c + offset, len);
}

#define BIT(n) (1ull << (n))

static const struct vhost_device_ops blk_ops = {
    .features = BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_FLUSH) |
                BIT(VIRTIO_BLK_F_MQ) | BIT(VIRTIO_BLK_F_DISCARD) |
                BIT(VIRTIO_BLK_F_WRITE_ZEROES) | BIT(VIRTIO_F_VERSION_1) |
                BIT(VIRTIO_RING_F_INDIRECT_DESC) | BIT(VIRTIO_RING_F_EVENT_IDX),
    .get_config = blk_get_config,
    .handle = blk_handle,
};
static const struct vhost_device_ops blk_ro_ops = {
    .features = (blk_ops.features | BIT(5)) /* VIRTIO_BLK_F_RO */ &
                ~(BIT(VIRTIO_BLK_F_DISCARD) | BIT(VIRTIO_BLK_F_WRITE_ZEROES)),
    .get_config = blk_get_config,
    .handle = blk_handle,
};

int vhost_blk_new(const struct vhost_blk_disk_access *access, uint64_t size,
                  const struct vhost_blk_options *opts, struct vhost_blk **out)
{
    struct vhost_blk *b = calloc(1, sizeof *b);
    if (!b)
        return hvm_error(ENOMEM, "out of memory");
    b->access = *access;
    if (opts)
        b->opts = *opts;
    b->opts.serial = NULL; /* (copied below; the caller's string may go) */
    b->size = size / 512 * 512;
    b->read_only = opts && opts->read_only;
    b->queues = opts && opts->queues > 0 ? opts->queues : 1;
    if (b->queues > VHOST_MAX_QUEUES)
        b->queues = VHOST_MAX_QUEUES;
    if (opts && opts->serial) /* not NUL-terminated when 20 bytes long */
        memcpy(b->serial, opts->serial, strnlen(opts->serial, sizeof b->serial));
    b->dev.fd = -1;
    if ((b->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        int e = errno;
        free(b);
        return hvm_error(e, "eventfd: %s", strerror(e));
    }
    *out = b;
    return 0;
}

int vhost_blk_run(struct vhost_blk *b, int fd)
{
    vhost_dev_init(&b->dev, fd, b->queues, b->read_only ? &blk_ro_ops : &blk_ops, b);
    b->dev.report = b->opts.log;
    b->dev.report_opaque = b->opts.log_opaque;
    b->dev.populate = b->opts.populate_memory;
    int r = vhost_dev_serve(&b->dev, b->stop_fd);
    vhost_dev_release(&b->dev);
    close(fd);
    b->dev.fd = -1;
    return r;
}

void vhost_blk_stop(struct vhost_blk *b)
{
    uint64_t one = 1;
    ssize_t ignored = write(b->stop_fd, &one, sizeof one);
    (void)ignored;
}

void vhost_blk_free(struct vhost_blk *b)
{
    if (!b)
        return;
    close(b->stop_fd);
    free(b);
}
