/* One NBD client: the fixed newstyle handshake, then the transmission phase.
 * Protocol reference: doc/proto.md of github.com/NetworkBlockDevice/nbd
 * (sections "Fixed newstyle negotiation", "Transmission", "Metadata
 * querying", "Values").
 *
 * Reads are sent without copying where the disk can say which file holds
 * the bytes (disk_locate): the reply header goes out, then the data is
 * spliced from the layer files' page cache into the socket through a pipe,
 * so the client's receive is the only copy, as when QEMU reads a file
 * itself. The pread-and-send path remains for the rest.
 *
 * Requests on one connection are processed in order, one at a time. The
 * socket is non-blocking and every wait is a poll() that also watches the
 * server's stop pipe, so that no client (however slow or hostile) can keep
 * the server from stopping. Any framing error (bad magic, oversized option
 * or write payload, unknown client flags) drops the connection; a request
 * that is well framed but invalid gets an error reply and the connection
 * goes on. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "disk/disk.h"
#include "nbd/internal.h"
#include "nbd/protocol.h"
#include "util/endian.h"
#include "util/error.h"
#include "util/fileio.h"

/* Option payloads larger than this end the connection: the longest legal
 * one (SET_META_CONTEXT with a few 4 KiB strings) is far smaller. */
#define OPTION_MAX 65536
/* Extents in one BLOCK_STATUS reply; the client asks again for the rest. */
#define EXTENTS_MAX 4096
#define META_CONTEXT_ID 1
static const char base_allocation[] = "base:allocation";

struct conn {
    struct nbd_server *s;
    int fd;
    bool structured;     /* NBD_OPT_STRUCTURED_REPLY negotiated */
    bool base_alloc;     /* base:allocation selected */
    uint64_t size;       /* as advertised */
    uint16_t tflags;     /* transmission flags */
    uint8_t *buf;        /* READ/WRITE payloads and option data */
    size_t buf_size;
    int pipe[2];         /* for splicing reads; -1 until the first one */
    bool no_splice;      /* no pipe for splicing: pread and send */
    uint64_t spin_ns;    /* how long to poll for the next request; 0: sleep at once */
    bool last_small;     /* the last request moved less than SPLICE_MIN */
    bool wrote;          /* a write, trim or zeroing was accepted: flush at the end */
    uint64_t deadline_ns; /* during the handshake: when it must be done; then 0 */
};

/* Runs of one spliced read; a read with more falls back to pread. */
#define SPLICE_RUNS 64
/* Smaller reads are copied: pread and send are two system calls, a splice
 * takes about six, which costs more than copying a few pages. */
#define SPLICE_MIN (64u << 10)
/* The pipe between the layer files and the socket: room for a whole large
 * read at once (less where refused). */
#define SPLICE_PIPE (1u << 20)

/* ---- Socket I/O ---------------------------------------------------------- */

/* How long the next wait may last (poll's timeout): what is left of the
 * handshake's deadline, or the idle timeout after it; -1: no limit; 0: the
 * deadline has passed. */
static int conn_timeout(const struct conn *c)
{
    uint64_t ms;
    if (c->deadline_ns) {
        uint64_t now = nbd_now_ns();
        if (now >= c->deadline_ns)
            return 0;
        ms = (c->deadline_ns - now + 999999) / 1000000;
    } else if (c->s->idle_timeout_ms) {
        ms = c->s->idle_timeout_ms;
    } else {
        return -1;
    }
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Waits until fd is ready for events; -ESHUTDOWN when the server stops,
 * -ETIMEDOUT when the handshake's deadline passes or, after it, the client
 * makes no progress for the idle timeout. */
static int conn_wait(struct conn *c, short events)
{
    for (;;) {
        struct pollfd p[2] = {
            {.fd = c->fd, .events = events},
            {.fd = c->s->stop_pipe[0], .events = POLLIN},
        };
        int timeout = conn_timeout(c);
        if (timeout == 0)
            return -ETIMEDOUT;
        int n = poll(p, 2, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0) {
            if (c->deadline_ns)
                continue; /* conn_timeout says whether it has passed */
            return -ETIMEDOUT;
        }
        if (p[1].revents)
            return -ESHUTDOWN;
        if (p[0].revents)
            return 0; /* ready, or an error the next call will report */
    }
}

static int conn_recv(struct conn *c, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0) {
            return -ECONNRESET;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = conn_wait(c, POLLIN);
            if (w < 0)
                return w;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

/* Waiting for the next request by polling the socket for a while before
 * sleeping in poll(2). Waking a sleeping thread costs tens of microseconds
 * on a virtual machine's CPU, as much as serving a 4 KiB read; a client that
 * sends its next small request soon after our reply (a guest reading at
 * queue depth 1) finds us awake. Only after small requests: a client moving
 * large ones needs the CPU for copying them, and gains little. The window
 * adapts the way QEMU's own event loop polling does: it doubles (from
 * SPIN_MIN) while waits end within SPIN_MAX, and drops to 0 after a longer
 * wait, so an idle client costs no CPU. Never on a single CPU, where the
 * spinning would hold back the very client. Only when the server was asked
 * to (nbd_server_options.poll_requests). */
#define SPIN_MIN 4000u
#define SPIN_MAX 512000u

static uint64_t now_ns(void)
{
    return nbd_now_ns();
}

static bool several_cpus;

static void count_cpus(void)
{
    cpu_set_t set;
    several_cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) > 1
                                                               : sysconf(_SC_NPROCESSORS_ONLN) > 1;
}

/* More than one CPU to run on (the process's own set, not the machine's). */
static bool spin_allowed(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, count_cpus);
    return several_cpus;
}

/* Polls for a request for at most c->spin_ns; true when one is there. */
static bool spin_for_request(struct conn *c)
{
    uint64_t until = now_ns() + c->spin_ns;
    do {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 0) != 0 || atomic_load(&c->s->stopping))
            return true; /* ready, or something conn_recv will report */
    } while (now_ns() < until);
    return false;
}

static int conn_wait_request(struct conn *c)
{
    if (!c->s->poll_requests || !c->last_small || !spin_allowed())
        return 0;
    uint64_t start = now_ns();
    if (c->spin_ns && spin_for_request(c))
        return 0;
    int r = conn_wait(c, POLLIN);
    uint64_t waited = now_ns() - start;
    if (waited > SPIN_MAX)
        c->spin_ns = 0;
    else
        c->spin_ns = c->spin_ns ? (c->spin_ns * 2 < SPIN_MAX ? c->spin_ns * 2 : SPIN_MAX) : SPIN_MIN;
    return r;
}

/* Reads and drops n bytes (the payload of a request we refuse). */
static int conn_skip(struct conn *c, size_t n)
{
    uint8_t tmp[4096];
    while (n > 0) {
        size_t k = n < sizeof tmp ? n : sizeof tmp;
        int r = conn_recv(c, tmp, k);
        if (r < 0)
            return r;
        n -= k;
    }
    return 0;
}

/* Sends all of iov; flags may add MSG_MORE (more follows at once). */
static int conn_sendv_flags(struct conn *c, struct iovec *iov, int cnt, int flags)
{
    while (cnt > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL | flags);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            int w = conn_wait(c, POLLOUT);
            if (w < 0)
                return w;
            continue;
        }
        size_t done = (size_t)r;
        while (cnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

static int conn_sendv(struct conn *c, struct iovec *iov, int cnt)
{
    return conn_sendv_flags(c, iov, cnt, 0);
}

static int conn_send(struct conn *c, const void *buf, size_t n)
{
    struct iovec iov = {(void *)buf, n};
    return conn_sendv(c, &iov, 1);
}

/* Makes c->buf at least n bytes (n <= NBD_SERVER_MAX_PAYLOAD). */
static int conn_reserve(struct conn *c, size_t n)
{
    if (n <= c->buf_size)
        return 0;
    size_t want = n < 65536 ? 65536 : n;
    uint8_t *p = realloc(c->buf, want);
    if (!p)
        return -ENOMEM;
    c->buf = p;
    c->buf_size = want;
    return 0;
}

/* ---- Handshake ----------------------------------------------------------- */

static int option_reply(struct conn *c, uint32_t option, uint32_t type, const void *data,
                        uint32_t len)
{
    uint8_t h[20];
    be64_put(h, NBD_REP_MAGIC);
    be32_put(h + 8, option);
    be32_put(h + 12, type);
    be32_put(h + 16, len);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)data, len}};
    return conn_sendv(c, iov, len ? 2 : 1);
}

static int option_error(struct conn *c, uint32_t option, uint32_t type, const char *msg)
{
    return option_reply(c, option, type, msg, (uint32_t)strlen(msg));
}

static uint16_t transmission_flags(const struct nbd_server *s)
{
    /* CAN_MULTI_CONN is safe: all connections share one struct disk under
     * one lock and nothing is cached per connection, so a FLUSH on any of
     * them covers writes completed on all of them. */
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_CAN_MULTI_CONN;
    if (s->read_only)
        f |= NBD_FLAG_READ_ONLY;
    else
        f |= NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
    return f;
}

static void conn_choose_export(struct conn *c)
{
    pthread_mutex_lock(&c->s->disk_lock);
    c->size = c->s->disk->size;
    pthread_mutex_unlock(&c->s->disk_lock);
    c->tflags = transmission_flags(c->s);
}

/* NBD_OPT_INFO / NBD_OPT_GO. Data: name length 4, name, request count 2,
 * requests 2 each. Returns 1 when GO succeeded (enter transmission). */
static int option_info(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
    if (len < 6)
        return option_error(c, opt, NBD_REP_ERR_INVALID, "truncated option");
    uint32_t nlen = be32_get(d);
    if (nlen > len - 6)
        return option_error(c, opt, NBD_REP_ERR_INVALID, "bad export name length");
    const uint8_t *name = d + 4;
    uint16_t nreq = be16_get(d + 4 + nlen);
    if ((uint64_t)4 + nlen + 2 + 2 * (uint64_t)nreq != len)
        return option_error(c, opt, NBD_REP_ERR_INVALID, "bad information request count");
    bool want_name = false;
    for (uint16_t i = 0; i < nreq; i++)
        if (be16_get(d + 4 + nlen + 2 + 2 * i) == NBD_INFO_NAME)
            want_name = true;

    conn_choose_export(c);
    uint8_t info[14];
    int r;
    be16_put(info, NBD_INFO_EXPORT);
    be64_put(info + 2, c->size);
    be16_put(info + 10, c->tflags);
    if ((r = option_reply(c, opt, NBD_REP_INFO, info, 12)) < 0)
        return r;
    /* Any alignment works (the disk layer is byte-granular); 4 KiB is what
     * avoids read-modify-write in VHD bitmaps and host pages. */
    be16_put(info, NBD_INFO_BLOCK_SIZE);
    be32_put(info + 2, 1);
    be32_put(info + 6, 4096);
    be32_put(info + 10, NBD_SERVER_MAX_PAYLOAD);
    if ((r = option_reply(c, opt, NBD_REP_INFO, info, 14)) < 0)
        return r;
    if (want_name) {
        uint8_t reply[2 + 4096];
        uint32_t n = nlen < 4096 ? nlen : 4096;
        be16_put(reply, NBD_INFO_NAME);
        memcpy(reply + 2, name, n);
        if ((r = option_reply(c, opt, NBD_REP_INFO, reply, 2 + n)) < 0)
            return r;
    }
    if ((r = option_reply(c, opt, NBD_REP_ACK, NULL, 0)) < 0)
        return r;
    return opt == NBD_OPT_GO ? 1 : 0;
}

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT. Data: export name
 * length 4, name, query count 4, then queries (length 4, string). */
static int option_meta(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
    bool list = opt == NBD_OPT_LIST_META_CONTEXT;
    if (!c->structured)
        return option_error(c, opt, NBD_REP_ERR_INVALID, "structured replies not negotiated");
    if (len < 8)
        return option_error(c, opt, NBD_REP_ERR_INVALID, "truncated option");
    uint32_t nlen = be32_get(d);
    if (nlen > len - 8)
        return option_error(c, opt, NBD_REP_ERR_INVALID, "bad export name length");
    uint32_t nq = be32_get(d + 4 + nlen);
    uint32_t pos = 8 + nlen;
    bool found = list && nq == 0; /* an empty list query lists everything */
    for (uint32_t i = 0; i < nq; i++) {
        if (len - pos < 4)
            return option_error(c, opt, NBD_REP_ERR_INVALID, "truncated query");
        uint32_t qlen = be32_get(d + pos);
        pos += 4;
        if (qlen > len - pos)
            return option_error(c, opt, NBD_REP_ERR_INVALID, "bad query length");
        const char *q = (const char *)d + pos;
        pos += qlen;
        if (qlen == strlen(base_allocation) && memcmp(q, base_allocation, qlen) == 0)
            found = true;
        /* In a list query, a bare namespace means all of its contexts. */
        else if (list && qlen == 5 && memcmp(q, "base:", 5) == 0)
            found = true;
    }
    if (pos != len)
        return option_error(c, opt, NBD_REP_ERR_INVALID, "trailing data");
    if (!list)
        c->base_alloc = found;
    int r;
    if (found) {
        uint8_t reply[4 + sizeof base_allocation];
        be32_put(reply, list ? 0 : META_CONTEXT_ID);
        memcpy(reply + 4, base_allocation, strlen(base_allocation));
        r = option_reply(c, opt, NBD_REP_META_CONTEXT, reply,
                         (uint32_t)(4 + strlen(base_allocation)));
        if (r < 0)
            return r;
    }
    return option_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* Returns 0 to enter transmission, negative to drop the connection. */
static int conn_handshake(struct conn *c)
{
    uint8_t h[18];
    int r;
    be64_put(h, NBD_MAGIC);
    be64_put(h + 8, NBD_OPTS_MAGIC);
    be16_put(h + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    if ((r = conn_send(c, h, sizeof h)) < 0)
        return r;
    uint8_t cf[4];
    if ((r = conn_recv(c, cf, 4)) < 0)
        return r;
    uint32_t cflags = be32_get(cf);
    if (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
        return -EPROTO; /* the spec says: drop a client with unknown flags */
    bool no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

    for (;;) {
        uint8_t oh[16];
        if (atomic_load(&c->s->stopping))
            return -ESHUTDOWN;
        if ((r = conn_recv(c, oh, sizeof oh)) < 0)
            return r;
        if (be64_get(oh) != NBD_OPTS_MAGIC)
            return -EPROTO;
        uint32_t opt = be32_get(oh + 8), len = be32_get(oh + 12);
        if (len > OPTION_MAX)
            return -EPROTO;
        if ((r = conn_reserve(c, len)) < 0 || (r = conn_recv(c, c->buf, len)) < 0)
            return r;
        const uint8_t *d = c->buf;

        switch (opt) {
        case NBD_OPT_EXPORT_NAME: {
            /* No way to report an error here; any name is our one export. */
            uint8_t reply[10 + 124] = {0};
            conn_choose_export(c);
            be64_put(reply, c->size);
            be16_put(reply + 8, c->tflags);
            return conn_send(c, reply, no_zeroes ? 10 : sizeof reply);
        }
        case NBD_OPT_ABORT:
            option_reply(c, opt, NBD_REP_ACK, NULL, 0);
            return -ECONNRESET;
        case NBD_OPT_LIST: {
            if (len != 0) {
                r = option_error(c, opt, NBD_REP_ERR_INVALID, "LIST takes no data");
                break;
            }
            uint8_t server[4] = {0}; /* one export, the default (empty) name */
            if ((r = option_reply(c, opt, NBD_REP_SERVER, server, 4)) < 0)
                return r;
            r = option_reply(c, opt, NBD_REP_ACK, NULL, 0);
            break;
        }
        case NBD_OPT_INFO:
        case NBD_OPT_GO:
            r = option_info(c, opt, d, len);
            if (r == 1)
                return 0;
            break;
        case NBD_OPT_STRUCTURED_REPLY:
            if (len != 0) {
                r = option_error(c, opt, NBD_REP_ERR_INVALID, "takes no data");
                break;
            }
            c->structured = true;
            r = option_reply(c, opt, NBD_REP_ACK, NULL, 0);
            break;
        case NBD_OPT_LIST_META_CONTEXT:
        case NBD_OPT_SET_META_CONTEXT:
            r = option_meta(c, opt, d, len);
            break;
        default: /* STARTTLS included: this server has no TLS (local sockets) */
            r = option_error(c, opt, NBD_REP_ERR_UNSUP, "option not supported");
            break;
        }
        if (r < 0)
            return r;
    }
}

/* ---- Transmission -------------------------------------------------------- */

struct request {
    uint16_t flags, type;
    uint64_t handle, offset;
    uint32_t length;
};

static uint32_t nbd_errno(int err)
{
    switch (err < 0 ? -err : err) {
    case 0: return 0;
    case EPERM: case EROFS: case EACCES: return NBD_EPERM;
    case ENOMEM: return NBD_ENOMEM;
    case EINVAL: return NBD_EINVAL;
    case ENOSPC: case EFBIG: case EDQUOT: return NBD_ENOSPC;
    case EOVERFLOW: return NBD_EOVERFLOW;
    case ENOTSUP: return NBD_ENOTSUP;
    case ESHUTDOWN: return NBD_ESHUTDOWN;
    default: return NBD_EIO;
    }
}

static void simple_header(uint8_t *h, const struct request *q, int err)
{
    be32_put(h, NBD_SIMPLE_REPLY_MAGIC);
    be32_put(h + 4, nbd_errno(err));
    be64_put(h + 8, q->handle);
}

static int reply_simple(struct conn *c, const struct request *q, int err, const void *data,
                        size_t len)
{
    uint8_t h[NBD_SIMPLE_REPLY_SIZE];
    simple_header(h, q, err);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)data, len}};
    return conn_sendv(c, iov, len ? 2 : 1);
}

static void chunk_header(uint8_t *h, const struct request *q, uint16_t type, uint32_t len)
{
    be32_put(h, NBD_STRUCTURED_REPLY_MAGIC);
    be16_put(h + 4, NBD_REPLY_FLAG_DONE);
    be16_put(h + 6, type);
    be64_put(h + 8, q->handle);
    be32_put(h + 16, len);
}

/* An error reply; with structured replies it carries msg for the user. */
static int reply_error(struct conn *c, const struct request *q, int err, const char *msg)
{
    if (!c->structured)
        return reply_simple(c, q, err, NULL, 0);
    uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 6];
    size_t n = msg ? strnlen(msg, 4096) : 0;
    chunk_header(h, q, NBD_REPLY_TYPE_ERROR, (uint32_t)(6 + n));
    be32_put(h + 20, nbd_errno(err));
    be16_put(h + 24, (uint16_t)n);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)msg, n}};
    return conn_sendv(c, iov, n ? 2 : 1);
}

/* Replies to a request that reached the disk: success or its error. */
static int reply_status(struct conn *c, const struct request *q, int err)
{
    if (err < 0)
        return reply_error(c, q, err, hvm_error_message());
    return reply_simple(c, q, 0, NULL, 0);
}

static bool in_range(const struct conn *c, const struct request *q)
{
    return q->offset <= c->size && q->length <= c->size - q->offset;
}

#define READ_AHEAD_MIN (128u << 10)

struct read_run {
    int src;         /* the layer's descriptor (to merge contiguous runs) */
    int fd;          /* a duplicate of it; -1: zeros */
    uint64_t offset; /* in that file */
    uint64_t len;
};

static void close_runs(struct read_run *runs, int n)
{
    for (int i = 0; i < n; i++)
        if (runs[i].fd >= 0)
            close(runs[i].fd);
}

/* Where each byte of the request lives, under the disk lock; the
 * descriptors are duplicated so that a layer switch (an online checkpoint)
 * may close the originals while the data is on its way. Returns the number
 * of runs, 0 when the disk cannot say (or an error, which the pread path
 * then meets and reports) or there are too many runs. */
static int read_plan(struct conn *c, const struct request *q, struct read_run *runs)
{
    struct nbd_server *s = c->s;
    int n = 0;
    bool ok = true;
    uint64_t off = q->offset, left = q->length;
    pthread_mutex_lock(&s->disk_lock);
    while (left > 0 && ok) {
        uint64_t run, foff;
        int fd;
        if (disk_locate(s->disk, off, left, &run, &fd, &foff) < 0) {
            ok = false;
            break;
        }
        struct read_run *last = n ? &runs[n - 1] : NULL;
        if (last && last->src == fd && (fd < 0 || last->offset + last->len == foff)) {
            last->len += run;
        } else if (n == SPLICE_RUNS) {
            ok = false;
        } else {
            runs[n] = (struct read_run){.src = fd, .fd = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0),
                                        .offset = foff, .len = run};
            ok = fd < 0 || runs[n].fd >= 0;
            n++;
        }
        off += run;
        left -= run;
    }
    /* A large read is likely one of a sequential stream (a copy, a backup):
     * the layers start fetching the metadata of the next stretch now. */
    if (ok && q->length >= READ_AHEAD_MIN)
        disk_advise(s->disk, q->offset + q->length, q->length);
    pthread_mutex_unlock(&s->disk_lock);
    hvm_error_clear();
    if (!ok) {
        close_runs(runs, n);
        return 0;
    }
    /* Every piece queued at once, across the layer files, rather than one
     * splice waiting for its read after another. */
    if (q->length >= READ_AHEAD_MIN)
        for (int i = 0; i < n; i++)
            if (runs[i].fd >= 0)
                (void)posix_fadvise(runs[i].fd, (off_t)runs[i].offset, (off_t)runs[i].len,
                                    POSIX_FADV_WILLNEED);
    return n;
}

static int pipe_ready(struct conn *c)
{
    if (c->pipe[0] >= 0)
        return 0;
    if (pipe2(c->pipe, O_CLOEXEC) < 0)
        return -errno;
    fcntl(c->pipe[1], F_SETPIPE_SZ, SPLICE_PIPE); /* best effort */
    return 0;
}

/* Moves len bytes of fd at offset into the socket through the pipe. */
static int splice_run(struct conn *c, int fd, uint64_t offset, uint64_t len, bool more)
{
    loff_t at = (loff_t)offset;
    while (len > 0) {
        ssize_t in = splice(fd, &at, c->pipe[1], NULL, len, SPLICE_F_MOVE);
        if (in < 0 && errno == EINTR)
            continue;
        if (in <= 0)
            return in < 0 ? -errno : -EIO; /* the file ended early */
        len -= (uint64_t)in;
        unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more || len ? SPLICE_F_MORE : 0);
        while (in > 0) {
            ssize_t out = splice(c->pipe[0], NULL, c->fd, NULL, (size_t)in, flags);
            if (out > 0) {
                in -= out;
            } else if (out < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                int w = conn_wait(c, POLLOUT);
                if (w < 0)
                    return w;
            } else if (out < 0 && errno != EINTR) {
                return -errno;
            } else if (out == 0) {
                return -EPIPE;
            }
        }
    }
    return 0;
}

/* Sends len zero bytes. */
static int send_zeros(struct conn *c, uint64_t len)
{
    while (len > 0) {
        size_t n = len < ZERO_BUFFER_SIZE ? (size_t)len : ZERO_BUFFER_SIZE;
        int r = conn_send(c, zero_buffer, n);
        if (r < 0)
            return r;
        len -= n;
    }
    return 0;
}

/* The header of a successful read's reply: a simple reply, or one
 * OFFSET_DATA chunk marked final. Returns its length. */
static size_t read_header(const struct conn *c, const struct request *q,
                          uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 8])
{
    if (!c->structured) {
        simple_header(h, q, 0);
        return NBD_SIMPLE_REPLY_SIZE;
    }
    chunk_header(h, q, NBD_REPLY_TYPE_OFFSET_DATA, 8 + q->length);
    be64_put(h + 20, q->offset);
    return NBD_STRUCTURED_REPLY_SIZE + 8;
}

/* A read whose data is spliced from the files. 1 when sent, 0 when it
 * cannot be (the caller reads and sends), <0 when the connection must end
 * (once the header is out, a failure cannot be reported in this reply). */
static int read_spliced(struct conn *c, const struct request *q)
{
    struct read_run runs[SPLICE_RUNS];
    if (q->length < SPLICE_MIN || c->no_splice)
        return 0;
    if (pipe_ready(c) < 0) {
        c->no_splice = true;
        return 0;
    }
    int n = read_plan(c, q, runs);
    if (n == 0)
        return 0;
    uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 8];
    struct iovec iov = {h, read_header(c, q, h)};
    /* The header held back (MSG_MORE) to go out with the data. */
    int r = conn_sendv_flags(c, &iov, 1, MSG_MORE);
    for (int i = 0; i < n && r == 0; i++)
        r = runs[i].fd < 0 ? send_zeros(c, runs[i].len)
                           : splice_run(c, runs[i].fd, runs[i].offset, runs[i].len, i + 1 < n);
    close_runs(runs, n);
    return r < 0 ? r : 1;
}

static int do_read(struct conn *c, const struct request *q)
{
    if (q->length == 0 || q->length > NBD_SERVER_MAX_PAYLOAD)
        return reply_error(c, q, EINVAL, "read length is 0 or above the maximum block size");
    if (!in_range(c, q))
        return reply_error(c, q, EINVAL, "read past the end of the disk");
    int r = read_spliced(c, q);
    if (r != 0)
        return r < 0 ? r : 0;
    if (conn_reserve(c, q->length) < 0)
        return reply_error(c, q, ENOMEM, "out of memory");

    struct nbd_server *s = c->s;
    pthread_mutex_lock(&s->disk_lock);
    r = disk_pread(s->disk, c->buf, q->length, q->offset);
    pthread_mutex_unlock(&s->disk_lock);
    if (r < 0)
        return reply_error(c, q, r, hvm_error_message());

    /* Header and data in one sendmsg. */
    uint8_t h[NBD_STRUCTURED_REPLY_SIZE + 8];
    struct iovec iov[2] = {{h, read_header(c, q, h)}, {c->buf, q->length}};
    return conn_sendv(c, iov, 2);
}

/* Checks common to the commands that change the disk; 1 when they pass.
 * The spec asks for ENOSPC on a write past the end; a TRIM there is just
 * an invalid request. */
static int check_write(struct conn *c, const struct request *q)
{
    if (c->s->read_only)
        return reply_error(c, q, EPERM, "the export is read-only");
    if (!in_range(c, q))
        return reply_error(c, q, q->type == NBD_CMD_TRIM ? EINVAL : ENOSPC,
                           "request past the end of the disk");
    c->wrote = true;
    return 1;
}

static int do_write(struct conn *c, const struct request *q)
{
    int r;
    /* The payload follows the request whatever we think of it. */
    if (q->length > NBD_SERVER_MAX_PAYLOAD)
        return -EPROTO;
    if (conn_reserve(c, q->length) < 0) {
        if ((r = conn_skip(c, q->length)) < 0)
            return r;
        return reply_error(c, q, ENOMEM, "out of memory");
    }
    if ((r = conn_recv(c, c->buf, q->length)) < 0)
        return r;
    if ((r = check_write(c, q)) <= 0)
        return r;
    if (q->length == 0)
        return reply_simple(c, q, 0, NULL, 0);

    struct nbd_server *s = c->s;
    pthread_mutex_lock(&s->disk_lock);
    r = disk_pwrite(s->disk, c->buf, q->length, q->offset);
    if (r == 0 && (q->flags & NBD_CMD_FLAG_FUA))
        r = disk_flush(s->disk);
    pthread_mutex_unlock(&s->disk_lock);
    return reply_status(c, q, r);
}

static int do_flush(struct conn *c, const struct request *q)
{
    struct nbd_server *s = c->s;
    pthread_mutex_lock(&s->disk_lock);
    int r = disk_flush(s->disk);
    pthread_mutex_unlock(&s->disk_lock);
    return reply_status(c, q, r);
}

static int do_trim(struct conn *c, const struct request *q)
{
    int r;
    if ((r = check_write(c, q)) <= 0)
        return r;
    struct nbd_server *s = c->s;
    pthread_mutex_lock(&s->disk_lock);
    r = q->length ? disk_discard(s->disk, q->length, q->offset) : 0;
    if (r == 0 && (q->flags & NBD_CMD_FLAG_FUA))
        r = disk_flush(s->disk);
    pthread_mutex_unlock(&s->disk_lock);
    return reply_status(c, q, r);
}

static int do_write_zeroes(struct conn *c, const struct request *q)
{
    int r;
    if ((r = check_write(c, q)) <= 0)
        return r;
    struct nbd_server *s = c->s;
    pthread_mutex_lock(&s->disk_lock);
    r = disk_write_zeroes(s->disk, q->offset, q->length);
    if (r == 0 && (q->flags & NBD_CMD_FLAG_FUA))
        r = disk_flush(s->disk);
    pthread_mutex_unlock(&s->disk_lock);
    return reply_status(c, q, r);
}

/* base:allocation through the chain: data in any layer is "allocated" (0);
 * a run no layer holds reads as zeros and is reported HOLE|ZERO. */
static int do_block_status(struct conn *c, const struct request *q)
{
    if (!c->structured || !c->base_alloc)
        return reply_error(c, q, EINVAL, "no metadata context was negotiated");
    if (q->length == 0 || !in_range(c, q))
        return reply_error(c, q, EINVAL, "block status range is empty or past the end");
    if (conn_reserve(c, 4 + 8 * EXTENTS_MAX) < 0)
        return reply_error(c, q, ENOMEM, "out of memory");

    uint8_t *ext = c->buf + 4;
    unsigned n = 0;
    uint32_t last_len = 0, last_flags = 0;
    uint64_t pos = q->offset, end = q->offset + q->length;
    unsigned max = (q->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : EXTENTS_MAX;
    int r = 0;

    struct nbd_server *s = c->s;
    pthread_mutex_lock(&s->disk_lock);
    while (pos < end) {
        uint64_t run;
        bool data;
        if ((r = disk_chain_status(s->disk, pos, end - pos, &run, &data)) < 0)
            break;
        if (run == 0 || run > end - pos)
            run = end - pos; /* never loop forever on a confused layer */
        uint32_t flags = data ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO;
        /* run <= end - pos <= UINT32_MAX: lengths always fit. */
        if (n > 0 && flags == last_flags) {
            last_len += (uint32_t)run;
        } else {
            if (n == max)
                break;
            if (n > 0)
                be32_put(ext + 8 * (n - 1), last_len);
            n++;
            last_len = (uint32_t)run;
            last_flags = flags;
            be32_put(ext + 8 * (n - 1) + 4, flags);
        }
        pos += run;
    }
    pthread_mutex_unlock(&s->disk_lock);
    if (r < 0)
        return reply_error(c, q, r, hvm_error_message());
    be32_put(ext + 8 * (n - 1), last_len);

    uint8_t h[NBD_STRUCTURED_REPLY_SIZE];
    be32_put(c->buf, META_CONTEXT_ID);
    chunk_header(h, q, NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 8 * n);
    struct iovec iov[2] = {{h, sizeof h}, {c->buf, 4 + 8 * (size_t)n}};
    return conn_sendv(c, iov, 2);
}

/* Flags each command may carry (the others are refused with EINVAL). FUA
 * is valid on every command (proto.md, "Command flags"). DF is harmless on
 * READ: a read is always one chunk. */
static uint16_t allowed_flags(uint16_t type)
{
    switch (type) {
    case NBD_CMD_READ: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF;
    case NBD_CMD_WRITE_ZEROES: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
    case NBD_CMD_BLOCK_STATUS: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
    default: return NBD_CMD_FLAG_FUA;
    }
}

static int conn_transmission(struct conn *c)
{
    for (;;) {
        uint8_t h[NBD_REQUEST_SIZE];
        int r;
        if (atomic_load(&c->s->stopping))
            return -ESHUTDOWN;
        if ((r = conn_wait_request(c)) < 0 || (r = conn_recv(c, h, sizeof h)) < 0)
            return r;
        if (be32_get(h) != NBD_REQUEST_MAGIC)
            return -EPROTO;
        struct request q = {
            .flags = be16_get(h + 4),
            .type = be16_get(h + 6),
            .handle = be64_get(h + 8),
            .offset = be64_get(h + 16),
            .length = be32_get(h + 24),
        };
        hvm_error_clear();
        if (q.flags & ~allowed_flags(q.type)) {
            if (q.type == NBD_CMD_WRITE) {
                if (q.length > NBD_SERVER_MAX_PAYLOAD)
                    return -EPROTO;
                if ((r = conn_skip(c, q.length)) < 0)
                    return r;
            }
            r = reply_error(c, &q, EINVAL, "unsupported command flags");
        } else {
            switch (q.type) {
            case NBD_CMD_READ: r = do_read(c, &q); break;
            case NBD_CMD_WRITE: r = do_write(c, &q); break;
            case NBD_CMD_DISC: return 0;
            case NBD_CMD_FLUSH: r = do_flush(c, &q); break;
            case NBD_CMD_TRIM: r = do_trim(c, &q); break;
            case NBD_CMD_WRITE_ZEROES: r = do_write_zeroes(c, &q); break;
            case NBD_CMD_BLOCK_STATUS: r = do_block_status(c, &q); break;
            default: r = reply_error(c, &q, EINVAL, "unknown command"); break;
            }
        }
        c->last_small = (q.type != NBD_CMD_READ && q.type != NBD_CMD_WRITE) || q.length < SPLICE_MIN;
        if (r < 0)
            return r;
    }
}

/* A client that hangs up while its reply is being spliced makes splice(2)
 * raise SIGPIPE, which would kill the whole server (and every other client's
 * unflushed writes with it): splice takes no MSG_NOSIGNAL. SIGPIPE is
 * directed at the thread that wrote, so blocking it here turns it into
 * EPIPE in this thread, whatever the process does with the signal; a
 * pending SIGPIPE dies with the thread. */
static void block_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* A client's acknowledged writes reach the files when it goes, however it
 * goes: NBD only promises them after a FLUSH, but a server killed later
 * (or a disk layer that keeps its block table in memory) must not lose
 * what a client that has already left believes written. */
static void conn_flush_writes(struct conn *c)
{
    if (!c->wrote)
        return;
    pthread_mutex_lock(&c->s->disk_lock);
    (void)disk_flush(c->s->disk); /* on failure the final flush tries again */
    pthread_mutex_unlock(&c->s->disk_lock);
}

void *nbd_client_thread(void *arg)
{
    struct nbd_client *client = arg;
    struct conn c = {.s = client->server, .fd = client->fd, .pipe = {-1, -1}};
    struct nbd_server *s = c.s;
    block_sigpipe();
    nbd_socket_buffers(c.fd);
    if (client->accepted)
        c.deadline_ns = nbd_now_ns() + (uint64_t)s->handshake_timeout_ms * 1000000u;
    int r = conn_handshake(&c);
    bool in_handshake = true;
    if (r == 0) {
        c.deadline_ns = 0;
        in_handshake = false;
        r = conn_transmission(&c);
    }
    if (r == -ETIMEDOUT && in_handshake)
        nbd_server_log(s, "nbd: dropped a client: no handshake within %u.%03u s",
                       s->handshake_timeout_ms / 1000, s->handshake_timeout_ms % 1000);
    else if (r == -ETIMEDOUT)
        nbd_server_log(s, "nbd: dropped a client: no progress for %u.%03u s (idle timeout)",
                       s->idle_timeout_ms / 1000, s->idle_timeout_ms % 1000);
    conn_flush_writes(&c);
    close(c.fd);
    if (c.pipe[0] >= 0) {
        close(c.pipe[0]);
        close(c.pipe[1]);
    }
    free(c.buf);
    atomic_store(&client->done, true);
    return NULL;
}
