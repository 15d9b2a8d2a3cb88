/* Copying runs of one disk into another with reading and writing
 * overlapped, and several reads in flight so that a cold disk's queue stays
 * full (one read after another, hopping between layer files, leaves the
 * device idle between requests).
 *
 * A few reader threads share a ring of slots. Planning a slot (the picker,
 * then disk_locate: which layer file and byte offset hold each piece) is
 * done under the lock, in offset order, because the disk layer is not
 * thread-safe; the reads themselves are plain preads on the layers'
 * descriptors, outside the lock. The caller's thread writes the slots in
 * the order they were planned, starts writeback of each (sync_file_range)
 * so that writes overlap the reads, and the caller flushes once at the end.
 * Memory: PIPE_SLOTS buffers of PIPE_CHUNK bytes, whatever the disk size.
 *
 * The readers touch only src (and the picker, which looks at src's chain)
 * and the writer only dst; when they are the same disk (rebase copies into
 * the child from its own chain) the copy runs on one thread. A layer that
 * cannot say where its bytes are (-ENOTSUP) is read with disk_pread under
 * the lock, one slot at a time. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/ops.h"
#include "util/crashpoint.h"
#include "util/error.h"
#include "util/fileio.h"

#define PIPE_CHUNK (1u << 20)
#define PIPE_SLOTS 8
#define PIPE_READERS 4
#define PIPE_PIECES 64 /* layer pieces in one slot; a slot ends early past that */
#define PIPE_LAYERS DISK_MAX_DEPTH
/* How far past the planned slots the layers' metadata is asked for. */
#define PIPE_AHEAD (32u << 20)
#define ZERO_PIECE 4096u

struct piece {
    int fd;              /* -1: zeros */
    const char *path;    /* of the layer file, for messages */
    uint64_t foff, len;
};

struct slot {
    uint8_t *buf;
    uint64_t off, len;
    struct piece pieces[PIPE_PIECES];
    int npieces;         /* -1: read already (disk_pread under the lock) */
    bool filled;
    int err;
    char msg[512];
};

struct layer_fd {
    int fd;
    char path[PATH_MAX];
};

struct pipe {
    const struct disk_copy_plan *plan;
    struct slot slots[PIPE_SLOTS];
    uint64_t planned;          /* slots planned so far (slot = seq % PIPE_SLOTS) */
    uint64_t written;          /* slots written so far */
    uint64_t cursor;           /* the offset planning goes on from */
    uint64_t advised;          /* disk_advise was called below this offset */
    bool end;                  /* planning reached the end (or failed: err) */
    bool stop;                 /* the writer failed: readers stop */
    int err;
    char msg[1024];
    struct layer_fd layers[PIPE_LAYERS];
    int nlayers;
    pthread_mutex_t lock;
    pthread_cond_t changed;
};

static bool is_zero(const uint8_t *p, uint64_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Writes buf at off; when dst reads as zeros already, only the 4 KiB
 * pieces that are not all zero (keeps raw outputs sparse, spares dynamic
 * VHDs blocks of zeros). */
static int write_out(const struct disk_copy_plan *p, const uint8_t *buf, uint64_t len, uint64_t off)
{
    if (!p->skip_zero)
        return disk_pwrite(p->dst, buf, len, off);
    uint64_t i = 0;
    while (i < len) {
        uint64_t n = len - i < ZERO_PIECE ? len - i : ZERO_PIECE;
        if (is_zero(buf + i, n)) {
            i += n;
            continue;
        }
        uint64_t j = i + n;
        while (j < len) {
            uint64_t m = len - j < ZERO_PIECE ? len - j : ZERO_PIECE;
            if (is_zero(buf + j, m))
                break;
            j += m;
        }
        int r = disk_pwrite(p->dst, buf + i, j - i, off + i);
        if (r < 0)
            return r;
        i = j;
    }
    return 0;
}

/* The next run to copy at or after *off (its data read into buf), or
 * *len = 0 at the end. */
static int next_run(const struct disk_copy_plan *p, uint64_t *off, uint8_t *buf, uint64_t *len)
{
    while (*off < p->size) {
        uint64_t run;
        bool copy;
        int r = p->pick(p->opaque, *off, p->size - *off, &run, &copy);
        if (r < 0)
            return r;
        if (run == 0)
            return hvm_error(EIO, "%s: no progress at offset %llu", p->src->path,
                             (unsigned long long)*off);
        if (copy) {
            *len = run < PIPE_CHUNK ? run : PIPE_CHUNK;
            return disk_pread(p->src, buf, *len, *off);
        }
        *off += run;
    }
    *len = 0;
    return 0;
}

static int copy_inline(const struct disk_copy_plan *p)
{
    uint8_t *buf = malloc(PIPE_CHUNK);
    uint64_t off = 0, len = 0;
    int r = 0;
    if (!buf)
        return hvm_error(ENOMEM, "out of memory");
    while ((r = next_run(p, &off, buf, &len)) == 0 && len) {
        if ((r = write_out(p, buf, len, off)) < 0)
            break;
        off += len;
        disk_progress_report(p->progress, off, p->size);
    }
    free(buf);
    return r;
}

/* The name of a layer's descriptor for messages, and a hint to the kernel
 * the first time it is met: this layer is read front to back. */
static const char *layer_seen(struct pipe *pp, int fd)
{
    for (int i = 0; i < pp->nlayers; i++)
        if (pp->layers[i].fd == fd)
            return pp->layers[i].path;
    if (pp->nlayers == PIPE_LAYERS)
        return pp->plan->src->path;
    struct layer_fd *l = &pp->layers[pp->nlayers++];
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, l->path, sizeof l->path - 1);
    if (n <= 0)
        snprintf(l->path, sizeof l->path, "%s", pp->plan->src->path);
    else
        l->path[n] = 0;
    l->fd = fd;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return l->path;
}

/* Under the lock: the next chunk to copy from pp->cursor, as pieces of
 * layer files (or read already when src cannot locate). len 0: the end. */
static int plan_slot(struct pipe *pp, struct slot *s)
{
    const struct disk_copy_plan *p = pp->plan;
    uint64_t off = pp->cursor, run = 0;
    while (off < p->size) {
        bool copy;
        int r = p->pick(p->opaque, off, p->size - off, &run, &copy);
        if (r < 0)
            return r;
        if (run == 0)
            return hvm_error(EIO, "%s: no progress at offset %llu", p->src->path,
                             (unsigned long long)off);
        if (copy)
            break;
        off += run;
    }
    if (pp->advised < off + PIPE_AHEAD / 2 && pp->advised < p->size) {
        uint64_t from = pp->advised > off ? pp->advised : off;
        disk_advise(p->src, from, off + PIPE_AHEAD - from);
        pp->advised = off + PIPE_AHEAD;
    }
    s->off = off;
    s->len = 0;
    s->npieces = 0;
    if (off >= p->size) {
        pp->cursor = p->size;
        return 0;
    }
    uint64_t want = run < PIPE_CHUNK ? run : PIPE_CHUNK;
    while (s->len < want) {
        uint64_t n, foff;
        int fd;
        int r = disk_locate(p->src, off + s->len, want - s->len, &n, &fd, &foff);
        if (r == -ENOTSUP) {
            hvm_error_clear();
            s->len = want;
            s->npieces = -1;
            if ((r = disk_pread(p->src, s->buf, want, off)) < 0)
                return r;
            break;
        }
        if (r < 0)
            return r;
        if (n == 0 || n > want - s->len)
            n = want - s->len;
        struct piece *last = s->npieces ? &s->pieces[s->npieces - 1] : NULL;
        if (last && last->fd == fd && (fd < 0 || last->foff + last->len == foff)) {
            last->len += n;
        } else if (s->npieces == PIPE_PIECES) {
            break;
        } else {
            s->pieces[s->npieces++] = (struct piece){
                .fd = fd, .path = fd < 0 ? NULL : layer_seen(pp, fd), .foff = foff, .len = n};
        }
        s->len += n;
    }
    pp->cursor = off + s->len;
    /* Queued now, several slots ahead of the preads that wait for them. */
    for (int i = 0; i < s->npieces; i++)
        if (s->pieces[i].fd >= 0)
            (void)posix_fadvise(s->pieces[i].fd, (off_t)s->pieces[i].foff,
                                (off_t)s->pieces[i].len, POSIX_FADV_WILLNEED);
    return 0;
}

/* Outside the lock: the slot's pieces into its buffer. */
static int fill_slot(struct slot *s)
{
    if (s->npieces < 0)
        return 0;
    uint8_t *at = s->buf;
    for (int i = 0; i < s->npieces; i++) {
        const struct piece *pc = &s->pieces[i];
        if (pc->fd < 0) {
            memset(at, 0, pc->len);
        } else if (hvm_fault_point("copy-read")) {
            return hvm_error(EIO, "%s: read at byte %llu: %s", pc->path,
                             (unsigned long long)pc->foff, strerror(EIO));
        } else {
            int r = file_pread(pc->fd, pc->path, at, pc->len, pc->foff);
            if (r < 0)
                return r;
        }
        at += pc->len;
    }
    return 0;
}

static void *reader(void *arg)
{
    struct pipe *pp = arg;
    pthread_mutex_lock(&pp->lock);
    for (;;) {
        while (!pp->stop && !pp->end && pp->planned - pp->written >= PIPE_SLOTS)
            pthread_cond_wait(&pp->changed, &pp->lock);
        if (pp->stop || pp->end)
            break;
        struct slot *s = &pp->slots[pp->planned % PIPE_SLOTS];
        int r = plan_slot(pp, s);
        if (r < 0 || s->len == 0) {
            if (r < 0) {
                pp->err = r;
                snprintf(pp->msg, sizeof pp->msg, "%s", hvm_error_message());
            }
            pp->end = true;
            pthread_cond_broadcast(&pp->changed);
            break;
        }
        s->filled = false;
        pp->planned++;
        pthread_mutex_unlock(&pp->lock);
        r = fill_slot(s);
        pthread_mutex_lock(&pp->lock);
        s->err = r;
        if (r < 0)
            snprintf(s->msg, sizeof s->msg, "%s", hvm_error_message());
        s->filled = true;
        pthread_cond_broadcast(&pp->changed);
    }
    pthread_mutex_unlock(&pp->lock);
    return NULL;
}

/* Starts writeback of what was just written, so that the device writes
 * while the next slots are read; the caller's flush at the end waits. */
static void write_behind(struct disk *dst, uint64_t off, uint64_t len)
{
    while (len > 0) {
        uint64_t n, foff;
        int fd;
        if (disk_locate(dst, off, len, &n, &fd, &foff) < 0 || n == 0) {
            hvm_error_clear();
            return;
        }
        if (n > len)
            n = len;
        if (fd >= 0)
            (void)sync_file_range(fd, (off_t)foff, (off_t)n, SYNC_FILE_RANGE_WRITE);
        off += n;
        len -= n;
    }
}

int disk_copy_runs(const struct disk_copy_plan *p)
{
    if (p->src == p->dst)
        return copy_inline(p);
    struct pipe *pp = calloc(1, sizeof *pp);
    if (!pp)
        return hvm_error(ENOMEM, "out of memory");
    pp->plan = p;
    int r = 0;
    for (unsigned i = 0; i < PIPE_SLOTS; i++)
        if (!(pp->slots[i].buf = malloc(PIPE_CHUNK)))
            r = hvm_error(ENOMEM, "out of memory");
    pthread_t th[PIPE_READERS];
    unsigned started = 0;
    pthread_mutex_init(&pp->lock, NULL);
    pthread_cond_init(&pp->changed, NULL);
    for (; r == 0 && started < PIPE_READERS; started++)
        if (pthread_create(&th[started], NULL, reader, pp) != 0)
            break;
    if (r == 0 && started == 0)
        r = hvm_error(EAGAIN, "cannot start the copy threads");
    while (r == 0) {
        pthread_mutex_lock(&pp->lock);
        struct slot *s = &pp->slots[pp->written % PIPE_SLOTS];
        while (!(pp->written < pp->planned && s->filled) &&
               !(pp->end && pp->written == pp->planned))
            pthread_cond_wait(&pp->changed, &pp->lock);
        if (pp->written == pp->planned) {
            pthread_mutex_unlock(&pp->lock);
            break;
        }
        pthread_mutex_unlock(&pp->lock);
        /* A read that failed fails the copy before anything after it is
         * written. */
        if (s->err < 0)
            r = hvm_error(-s->err, "%s", s->msg);
        else if ((r = write_out(p, s->buf, s->len, s->off)) == 0)
            write_behind(p->dst, s->off, s->len);
        if (r == 0)
            disk_progress_report(p->progress, s->off + s->len, p->size);
        pthread_mutex_lock(&pp->lock);
        s->filled = false;
        pp->written++;
        if (r < 0)
            pp->stop = true;
        pthread_cond_broadcast(&pp->changed);
        pthread_mutex_unlock(&pp->lock);
    }
    if (r < 0) {
        pthread_mutex_lock(&pp->lock);
        pp->stop = true;
        pthread_cond_broadcast(&pp->changed);
        pthread_mutex_unlock(&pp->lock);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (r == 0 && pp->err < 0)
        r = hvm_error(-pp->err, "%s", pp->msg);
    if (r == 0)
        disk_progress_report(p->progress, p->size, p->size);
    for (unsigned i = 0; i < PIPE_SLOTS; i++)
        free(pp->slots[i].buf);
    pthread_mutex_destroy(&pp->lock);
    pthread_cond_destroy(&pp->changed);
    free(pp);
    return r;
}
