/* Copying runs of one disk into another with reading and writing
 * overlapped: a reader thread fills a few buffers while the caller's thread
 * writes them out. Flatten and merge spend nearly all their time in the
 * kernel's read and write copies, so on two CPUs this is most of the gain.
 *
 * The disk layer is not thread-safe, so the reader thread touches only src
 * (and the picker, which looks at src's chain) and the writer only dst; when
 * they are the same disk (rebase copies into the child from its own chain)
 * the copy runs on one thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/ops.h"
#include "util/error.h"

#define PIPE_CHUNK (2u << 20)
#define PIPE_SLOTS 4
#define ZERO_PIECE 4096u

struct slot {
    uint8_t *buf;
    uint64_t off, len;
};

struct pipe {
    const struct disk_copy_plan *plan;
    struct slot slots[PIPE_SLOTS];
    unsigned head, count;      /* filled slots: a ring from head */
    bool done;                 /* the reader has finished (or failed) */
    bool stop;                 /* the writer failed: the reader should stop */
    int err;
    char msg[1024];
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
    uint64_t off = 0, len;
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

static void *reader(void *arg)
{
    struct pipe *pp = arg;
    uint64_t off = 0;
    unsigned tail = 0;
    for (;;) {
        pthread_mutex_lock(&pp->lock);
        while (pp->count == PIPE_SLOTS && !pp->stop)
            pthread_cond_wait(&pp->changed, &pp->lock);
        bool stop = pp->stop;
        pthread_mutex_unlock(&pp->lock);
        if (stop)
            break;
        struct slot *s = &pp->slots[tail];
        uint64_t len;
        int r = next_run(pp->plan, &off, s->buf, &len);
        pthread_mutex_lock(&pp->lock);
        if (r < 0) {
            pp->err = r;
            snprintf(pp->msg, sizeof pp->msg, "%s", hvm_error_message());
        } else if (len) {
            s->off = off;
            s->len = len;
            pp->count++;
            tail = (tail + 1) % PIPE_SLOTS;
            off += len;
        }
        bool end = r < 0 || len == 0;
        if (end)
            pp->done = true;
        pthread_cond_broadcast(&pp->changed);
        pthread_mutex_unlock(&pp->lock);
        if (end)
            return NULL;
    }
    pthread_mutex_lock(&pp->lock);
    pp->done = true;
    pthread_cond_broadcast(&pp->changed);
    pthread_mutex_unlock(&pp->lock);
    return NULL;
}

int disk_copy_runs(const struct disk_copy_plan *p)
{
    if (p->src == p->dst)
        return copy_inline(p);
    struct pipe pp = {.plan = p};
    int r = 0;
    for (unsigned i = 0; i < PIPE_SLOTS; i++)
        if (!(pp.slots[i].buf = malloc(PIPE_CHUNK)))
            r = hvm_error(ENOMEM, "out of memory");
    pthread_t th;
    pthread_mutex_init(&pp.lock, NULL);
    pthread_cond_init(&pp.changed, NULL);
    if (r == 0 && pthread_create(&th, NULL, reader, &pp) != 0)
        r = hvm_error(EAGAIN, "cannot start the copy thread");
    if (r < 0) {
        for (unsigned i = 0; i < PIPE_SLOTS; i++)
            free(pp.slots[i].buf);
        return r;
    }
    for (;;) {
        pthread_mutex_lock(&pp.lock);
        while (pp.count == 0 && !pp.done)
            pthread_cond_wait(&pp.changed, &pp.lock);
        if (pp.count == 0) {
            pthread_mutex_unlock(&pp.lock);
            break;
        }
        struct slot *s = &pp.slots[pp.head];
        pthread_mutex_unlock(&pp.lock);
        r = write_out(p, s->buf, s->len, s->off);
        disk_progress_report(p->progress, s->off + s->len, p->size);
        pthread_mutex_lock(&pp.lock);
        pp.head = (pp.head + 1) % PIPE_SLOTS;
        pp.count--;
        if (r < 0)
            pp.stop = true;
        pthread_cond_broadcast(&pp.changed);
        pthread_mutex_unlock(&pp.lock);
        if (r < 0)
            break;
    }
    pthread_join(th, NULL);
    if (r == 0 && pp.err < 0)
        r = hvm_error(-pp.err, "%s", pp.msg);
    if (r == 0)
        disk_progress_report(p->progress, p->size, p->size);
    for (unsigned i = 0; i < PIPE_SLOTS; i++)
        free(pp.slots[i].buf);
    pthread_mutex_destroy(&pp.lock);
    pthread_cond_destroy(&pp.changed);
    return r;
}
