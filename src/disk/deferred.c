/* A disk that stands in for a layer chain it has not opened yet: the
 * destination of a live migration serves its drives to QEMU from the start
 * (QEMU's vhost-user device asks their size when it is created), while the
 * source still writes the same files. Until disk_deferred_activate every
 * read and write fails and nothing of the files is read or cached (no BAT,
 * no bitmap, no page of data): the source may change all of it until it
 * has flushed and let go. Activation opens the chain as a normal writable
 * open does (locks included), and from then on every call goes to it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk.h"
#include "util/error.h"

struct deferred {
    struct disk *inner; /* NULL until activated; read with acquire */
};

static struct disk *inner_of(struct disk *d)
{
    struct deferred *p = d->priv;
    return __atomic_load_n(&p->inner, __ATOMIC_ACQUIRE);
}

static int not_yet(struct disk *d)
{
    return hvm_error(EAGAIN, "%s: not active yet (a migration has not reached its switchover)",
                     d->path);
}

static int d_pread(struct disk *d, void *buf, uint64_t count, uint64_t offset)
{
    struct disk *in = inner_of(d);
    return in ? disk_pread(in, buf, count, offset) : not_yet(d);
}

static int d_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct disk *in = inner_of(d);
    return in ? disk_pwritev(in, iov, iovcnt, offset) : not_yet(d);
}

static int d_flush(struct disk *d)
{
    struct disk *in = inner_of(d);
    return in ? disk_flush(in) : 0; /* nothing was written */
}

static int d_discard(struct disk *d, uint64_t count, uint64_t offset)
{
    struct disk *in = inner_of(d);
    return in ? disk_discard(in, count, offset) : not_yet(d);
}

/* The whole chain answers: this layer has no parent of its own. */
static int d_block_status(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                          enum disk_extent *state)
{
    struct disk *in = inner_of(d);
    if (!in)
        return not_yet(d);
    bool data;
    int r = disk_chain_status(in, offset, count, run, &data);
    if (r == 0)
        *state = data ? DISK_EXTENT_DATA : DISK_EXTENT_ZERO;
    return r;
}

static void d_close(struct disk *d)
{
    struct deferred *p = d->priv;
    disk_close(p->inner);
    free(p);
    free(d->path);
    free(d);
}

static const struct disk_ops deferred_ops = {
    .kind = "deferred",
    .pread = d_pread,
    .pwritev = d_pwritev,
    .flush = d_flush,
    .discard = d_discard,
    .block_status = d_block_status,
    .close = d_close,
};

int disk_deferred_new(const char *path, uint64_t size, struct disk **out)
{
    struct disk *d = calloc(1, sizeof *d);
    struct deferred *p = calloc(1, sizeof *p);
    char *copy = strdup(path);
    if (!d || !p || !copy) {
        free(d);
        free(p);
        free(copy);
        return hvm_error(ENOMEM, "out of memory");
    }
    d->ops = &deferred_ops;
    d->path = copy;
    d->size = size;
    d->priv = p;
    *out = d;
    return 0;
}

int disk_deferred_activate(struct disk *d, unsigned flags)
{
    if (d->ops != &deferred_ops)
        return 0;
    struct deferred *p = d->priv;
    if (p->inner)
        return 0;
    struct disk *in;
    int r = disk_open(d->path, flags, &in);
    if (r < 0)
        return r;
    if (in->size != d->size) {
        r = hvm_error(EINVAL, "%s: %llu bytes now, %llu when the migration began", d->path,
                      (unsigned long long)in->size, (unsigned long long)d->size);
        disk_close(in);
        return r;
    }
    __atomic_store_n(&p->inner, in, __ATOMIC_RELEASE);
    return 0;
}
