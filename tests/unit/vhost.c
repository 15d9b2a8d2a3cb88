/* Unit tests of the vhost-user-blk back-end (src/vhost/). The test plays
 * the front-end's part, as QEMU would: it talks the vhost-user protocol on
 * one end of a socketpair while vhost_blk_run serves the other end in a
 * thread, shares "guest memory" (a memfd) and drives one split virtqueue in
 * it the way a guest's virtio-blk driver does. Data read through the device
 * is compared with an in-memory model of the disk, over a raw file and over
 * a VHD chain (dynamic parent, differencing child), and the files are
 * checked again through the disk layer once the device is gone.
 *
 * Guest-physical addresses are offsets in the memfd; the front-end's own
 * virtual address of guest-physical 0 is pretended to be GUEST_UADDR, so
 * ring addresses (given as front-end addresses) must go through the
 * back-end's region table to be found. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "disk/disk.h"
#include "disk/ops.h"
#include "util/error.h"
#include "vhd/check.h"
#include "vhd/image.h"
#include "vhost/blk.h"
#include "vhost/protocol.h"

#define BIT(n) (1ull << (n))

#define GUEST_SIZE (4u << 20)
#define GUEST_UADDR 0x7f0000000000ull /* the front-end's address of guest-physical 0 */
#define QSIZE 64u
/* The rings, each on a page of its own so that the dirty log test can tell
 * them apart; requests' headers, tables, data and status bytes follow. */
#define DESC_GPA 0x0000u
#define AVAIL_GPA 0x1000u
#define USED_GPA 0x2000u
#define HEAP_GPA 0x4000u
#define POISON 0xEE      /* unused guest memory, to catch stray writes */
#define TIMEOUT_MS 5000  /* for anything the back-end must do */
#define SERIAL "hvm-unit-serial"

#define MAX_CHAIN 24
#define MAX_PIECES 16

#include "scratch.h"

static void fill_random(uint8_t *p, size_t len, uint64_t *x)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(rnd(x) >> 24);
}

/* ---- one virtio-blk request as the guest lays it out ---------------------- */

struct req {
    struct virtq_desc chain[MAX_CHAIN]; /* in order; submit links them */
    int n;
    bool indirect;
    uint64_t piece[MAX_PIECES]; /* the data: guest-physical address and length */
    uint32_t piece_len[MAX_PIECES];
    int n_pieces;
    uint32_t len;    /* data bytes */
    uint64_t status; /* guest-physical address of the status byte */
    uint16_t head;
    bool done;
    uint32_t used_len; /* as the device returned it */
};

enum layout {
    SPLIT_HEADER = 1,     /* the 16-byte header in two descriptors (5 + 11 bytes) */
    HEADER_WITH_DATA = 2, /* header and first data piece in one descriptor (OUT) */
    STATUS_WITH_DATA = 4, /* last data piece and status byte in one descriptor (IN) */
    INDIRECT = 8,         /* the chain in an indirect table */
};

/* ---- the two sides ------------------------------------------------------ */

struct env {
    /* the back-end: a disk behind a lock, the device, its thread */
    struct disk *disk;
    pthread_mutex_t lock;
    struct vhost_blk *blk;
    pthread_t thread;
    int be_fd;
    int result; /* vhost_blk_run's */

    /* the front-end: socket, guest memory, one queue */
    int sock;
    int memfd;
    uint8_t *mem;
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    int kick, call;
    uint64_t features;  /* acked */
    uint16_t avail_idx; /* requests made available (published by run) */
    uint16_t used_seen; /* completions consumed */
    uint16_t built;     /* requests built (blk_req), submitted or not */
    unsigned next_desc; /* descriptors taken since the ring was last idle */
    uint64_t heap, heap_high;
    uint64_t place; /* when set: where blk_req puts its next data piece */
    struct req *inflight[QSIZE]; /* by head descriptor */
    uint64_t rng;
};

static struct disk *acquire(void *opaque)
{
    struct env *e = opaque;
    pthread_mutex_lock(&e->lock);
    return e->disk;
}

static void release(void *opaque)
{
    struct env *e = opaque;
    pthread_mutex_unlock(&e->lock);
}

static void *serve(void *arg)
{
    struct env *e = arg;
    e->result = vhost_blk_run(e->blk, e->be_fd);
    return NULL;
}

/* Opens file for the device, starts vhost_blk_run on one end of a socket
 * pair and sets up guest memory and the queue's eventfds. */
static void start(struct env *e, const char *file, const struct vhost_blk_options *opts)
{
    memset(e, 0, sizeof *e);
    e->rng = 0x9E3779B97F4A7C15ull;
    OK(disk_open(file, 0, &e->disk));
    pthread_mutex_init(&e->lock, NULL);
    struct vhost_blk_disk_access access = {acquire, release, e};
    OK(vhost_blk_new(&access, e->disk->size, opts, &e->blk));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    e->be_fd = sv[0];
    e->sock = sv[1];
    assert_int_equal(pthread_create(&e->thread, NULL, serve, e), 0);

    e->memfd = memfd_create("hvm-unit-guest", MFD_CLOEXEC);
    assert_true(e->memfd >= 0);
    assert_int_equal(ftruncate(e->memfd, GUEST_SIZE), 0);
    e->mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, e->memfd, 0);
    assert_true(e->mem != MAP_FAILED);
    e->desc = (void *)(e->mem + DESC_GPA);
    e->avail = (void *)(e->mem + AVAIL_GPA);
    e->used = (void *)(e->mem + USED_GPA);
    memset(e->mem + HEAP_GPA, POISON, GUEST_SIZE - HEAP_GPA);
    e->heap = e->heap_high = HEAP_GPA;
    e->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    e->call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(e->kick >= 0 && e->call >= 0);
}

/* Ends the session: hang_up closes the socket as an exiting QEMU would,
 * otherwise vhost_blk_stop; either way vhost_blk_run must return 0. */
static void finish(struct env *e, bool hang_up)
{
    if (hang_up)
        close(e->sock);
    else
        vhost_blk_stop(e->blk);
    pthread_join(e->thread, NULL);
    assert_int_equal(e->result, 0);
    vhost_blk_free(e->blk);
    if (!hang_up)
        close(e->sock);
    close(e->kick);
    close(e->call);
    close(e->memfd);
    munmap(e->mem, GUEST_SIZE);
    disk_close(e->disk);
    pthread_mutex_destroy(&e->lock);
}

/* ---- vhost-user messages -------------------------------------------------- */

static void send_msg(struct env *e, uint32_t request, uint32_t flags, const void *payload,
                     uint32_t size, const int *fds, int n_fds)
{
    struct vhost_user_header h = {request, VHOST_USER_VERSION | flags, size};
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)payload, size}};
    union {
        char buf[CMSG_SPACE(VHOST_USER_MAX_REGIONS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = size ? 2 : 1};
    if (n_fds > 0) {
        /* The descriptors travel with the header, as QEMU sends them. */
        memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)n_fds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)n_fds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)n_fds * sizeof(int));
    }
    ssize_t n = sendmsg(e->sock, &mh, MSG_NOSIGNAL);
    assert_int_equal(n, sizeof h + size);
}

/* Reads len bytes, failing the test rather than hanging if the back-end
 * does not answer. */
static void read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, TIMEOUT_MS) <= 0)
            fail_msg("the back-end did not answer");
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0)
            fail_msg("the back-end hung up: %s", n < 0 ? strerror(errno) : "EOF");
        got += (size_t)n;
    }
}

/* One reply to request; returns its payload size. */
static uint32_t recv_reply(struct env *e, uint32_t request, void *payload, uint32_t max)
{
    struct vhost_user_header h;
    read_full(e->sock, &h, sizeof h);
    assert_int_equal(h.request, request);
    assert_int_equal(h.flags, VHOST_USER_VERSION | VHOST_USER_REPLY);
    if (h.size > max)
        fail_msg("reply to %u: %u bytes, expected at most %u", request, h.size, max);
    read_full(e->sock, payload, h.size);
    return h.size;
}

static uint64_t get_u64(struct env *e, uint32_t request)
{
    uint64_t v;
    send_msg(e, request, 0, NULL, 0, NULL, 0);
    assert_int_equal(recv_reply(e, request, &v, sizeof v), sizeof v);
    return v;
}

/* Sends a message that asks for an ack (REPLY_ACK) and returns it, 0 for
 * success. Once it has arrived the back-end has acted on the message, so
 * every setting the test makes is synchronous. */
static uint64_t send_ack(struct env *e, uint32_t request, const void *payload, uint32_t size,
                         const int *fds, int n_fds)
{
    uint64_t v;
    send_msg(e, request, VHOST_USER_NEED_REPLY, payload, size, fds, n_fds);
    assert_int_equal(recv_reply(e, request, &v, sizeof v), sizeof v);
    return v;
}

#define SET_OK(e, request, payload, size, fds, n_fds)                                     \
    assert_int_equal(send_ack(e, request, payload, size, fds, n_fds), 0)

static void set_u64(struct env *e, uint32_t request, uint64_t v)
{
    SET_OK(e, request, &v, sizeof v, NULL, 0);
}

static void set_state(struct env *e, uint32_t request, uint32_t index, uint32_t num)
{
    struct vhost_user_vring_state s = {index, num};
    SET_OK(e, request, &s, sizeof s, NULL, 0);
}

static void set_vring_fd(struct env *e, uint32_t request, int fd)
{
    uint64_t v = 0; /* queue 0, with a descriptor */
    SET_OK(e, request, &v, sizeof v, &fd, 1);
}

static void set_vring_addr(struct env *e, uint32_t flags)
{
    struct vhost_user_vring_addr a = {
        .index = 0,
        .flags = flags,
        .desc_user_addr = GUEST_UADDR + DESC_GPA,
        .used_user_addr = GUEST_UADDR + USED_GPA,
        .avail_user_addr = GUEST_UADDR + AVAIL_GPA,
        .log_guest_addr = USED_GPA,
    };
    SET_OK(e, VHOST_USER_SET_VRING_ADDR, &a, sizeof a, NULL, 0);
}

/* What QEMU sends to start a queue. */
static void start_ring(struct env *e, uint16_t base)
{
    set_state(e, VHOST_USER_SET_VRING_NUM, 0, QSIZE);
    set_state(e, VHOST_USER_SET_VRING_BASE, 0, base);
    set_vring_addr(e, 0);
    set_vring_fd(e, VHOST_USER_SET_VRING_KICK, e->kick);
    set_vring_fd(e, VHOST_USER_SET_VRING_CALL, e->call);
}

/* The handshake in QEMU's order, then the memory table and the queue.
 * want: the virtio features to ack besides VERSION_1. */
static void connect_device(struct env *e, uint64_t want)
{
    uint64_t f = get_u64(e, VHOST_USER_GET_FEATURES);
    uint64_t must = BIT(VIRTIO_F_VERSION_1) | BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
                    BIT(VHOST_F_LOG_ALL) | BIT(VIRTIO_BLK_F_FLUSH) | want;
    assert_int_equal(f & must, must);

    uint64_t pf = get_u64(e, VHOST_USER_GET_PROTOCOL_FEATURES);
    uint64_t pwant = BIT(VHOST_USER_PROTOCOL_F_MQ) | BIT(VHOST_USER_PROTOCOL_F_LOG_SHMFD) |
                     BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | BIT(VHOST_USER_PROTOCOL_F_CONFIG);
    assert_int_equal(pf & pwant, pwant);
    /* No ack possible yet: REPLY_ACK is what this negotiates. The reply to
     * the next GET tells that it has been applied. */
    send_msg(e, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &pwant, sizeof pwant, NULL, 0);
    assert_int_equal(get_u64(e, VHOST_USER_GET_QUEUE_NUM), 1);
    SET_OK(e, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);

    e->features = BIT(VIRTIO_F_VERSION_1) | BIT(VHOST_USER_F_PROTOCOL_FEATURES) | want;
    set_u64(e, VHOST_USER_SET_FEATURES, e->features);

    struct vhost_user_memory m = {.nregions = 1};
    m.regions[0] = (struct vhost_user_region){.guest_phys_addr = 0, .memory_size = GUEST_SIZE,
                                              .userspace_addr = GUEST_UADDR, .mmap_offset = 0};
    SET_OK(e, VHOST_USER_SET_MEM_TABLE, &m, sizeof m, &e->memfd, 1);

    /* A ring size that is not a power of two is refused, and said so. */
    struct vhost_user_vring_state bad = {0, 48};
    assert_int_not_equal(send_ack(e, VHOST_USER_SET_VRING_NUM, &bad, sizeof bad, NULL, 0), 0);

    start_ring(e, 0);
    /* With protocol features a ring starts disabled. */
    set_state(e, VHOST_USER_SET_VRING_ENABLE, 0, 1);
}

static struct virtio_blk_config get_config(struct env *e)
{
    struct vhost_user_config c = {.offset = 0, .size = sizeof(struct virtio_blk_config)};
    uint32_t size = (uint32_t)offsetof(struct vhost_user_config, region) + c.size;
    send_msg(e, VHOST_USER_GET_CONFIG, 0, &c, size, NULL, 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(recv_reply(e, VHOST_USER_GET_CONFIG, &c, sizeof c), size);
    assert_int_equal(c.size, sizeof(struct virtio_blk_config));
    struct virtio_blk_config cfg;
    memcpy(&cfg, c.region, sizeof cfg);
    return cfg;
}

/* ---- the guest's side of the queue ------------------------------------- */

static uint64_t guest_alloc(struct env *e, uint64_t len, uint64_t align)
{
    uint64_t gpa = (e->heap + align - 1) / align * align;
    /* A poisoned gap after each buffer shows overruns. */
    if (gpa + len + 8 > GUEST_SIZE)
        fail_msg("test bug: guest memory exhausted");
    e->heap = gpa + len + 8;
    if (e->heap > e->heap_high)
        e->heap_high = e->heap;
    return gpa;
}

static void chain_add(struct req *r, uint64_t gpa, uint32_t len, bool writable)
{
    assert_true(r->n < MAX_CHAIN);
    r->chain[r->n++] = (struct virtq_desc){gpa, len, writable ? VIRTQ_DESC_F_WRITE : 0, 0};
}

/* Builds a virtio-blk request: header, len bytes of data cut into `pieces`
 * descriptors of uneven lengths at scattered addresses, status byte. OUT
 * data comes from src; IN buffers stay poisoned. Submit each request
 * built: the guest memory of the previous ones is recycled once all have
 * completed, so check their results before building the next. */
static void blk_req(struct env *e, struct req *r, uint32_t type, uint64_t sector, uint32_t len,
                    int pieces, unsigned layout, const uint8_t *src)
{
    if (e->built == e->avail_idx && e->used_seen == e->avail_idx) { /* all done */
        memset(e->mem + HEAP_GPA, POISON, e->heap_high - HEAP_GPA);
        e->heap = e->heap_high = HEAP_GPA;
        e->next_desc = 0;
    }
    e->built++;
    bool writable = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    assert_false((layout & HEADER_WITH_DATA) && writable);
    assert_false((layout & STATUS_WITH_DATA) && !writable);
    memset(r, 0, sizeof *r);
    r->len = len;
    r->indirect = layout & INDIRECT;
    if ((uint32_t)pieces > len)
        pieces = (int)len;
    assert_true(pieces <= MAX_PIECES);

    uint32_t cut[MAX_PIECES], left = len;
    for (int i = 0; i < pieces; i++) {
        uint32_t n = left, others = (uint32_t)(pieces - 1 - i);
        if (others) { /* between half and one and a half of a fair share */
            uint32_t fair = left / (others + 1);
            n = fair / 2 + (uint32_t)(rnd(&e->rng) % (fair + 1));
            n = n == 0 ? 1 : n > left - others ? left - others : n;
        }
        cut[i] = n;
        left -= n;
    }

    struct virtio_blk_outhdr h = {type, 0, sector};
    uint32_t first = (layout & HEADER_WITH_DATA) && pieces ? cut[0] : 0;
    uint64_t hdr = guest_alloc(e, sizeof h + first, 8);
    memcpy(e->mem + hdr, &h, sizeof h);
    if (layout & SPLIT_HEADER) {
        chain_add(r, hdr, 5, false);
        chain_add(r, hdr + 5, (uint32_t)sizeof h - 5 + first, false);
    } else {
        chain_add(r, hdr, (uint32_t)sizeof h + first, false);
    }
    for (int i = 0; i < pieces; i++) {
        uint64_t gpa;
        if (i == 0 && first) {
            gpa = hdr + sizeof h;
        } else {
            bool with_status = i == pieces - 1 && (layout & STATUS_WITH_DATA);
            e->heap += rnd(&e->rng) % 64; /* scattered, at odd addresses */
            gpa = guest_alloc(e, cut[i] + with_status, 1);
            if (e->place) { /* away from the heap: the test wants it there */
                gpa = e->place;
                e->place = 0;
                if (gpa + cut[i] + 8 > e->heap_high)
                    e->heap_high = gpa + cut[i] + 8;
            }
            chain_add(r, gpa, cut[i] + with_status, writable);
            if (with_status)
                r->status = gpa + cut[i];
        }
        r->piece[r->n_pieces] = gpa;
        r->piece_len[r->n_pieces++] = cut[i];
    }
    if (!r->status) {
        r->status = guest_alloc(e, 1, 1);
        chain_add(r, r->status, 1, true);
    }
    e->mem[r->status] = 0xFF; /* no status yet */
    for (int i = 0; src && i < r->n_pieces; src += r->piece_len[i], i++)
        memcpy(e->mem + r->piece[i], src, r->piece_len[i]);
}

static uint16_t take_desc(struct env *e)
{
    if (e->next_desc >= QSIZE)
        fail_msg("test bug: more descriptors than the ring holds");
    return (uint16_t)e->next_desc++;
}

/* Puts the request in the avail ring (not yet published). Direct chains
 * take their descriptors in descending order, so that only the next links
 * tell the device where a chain goes on. */
static void submit(struct env *e, struct req *r)
{
    uint16_t head;
    if (r->indirect) {
        uint64_t table = guest_alloc(e, (uint64_t)r->n * sizeof(struct virtq_desc), 16);
        struct virtq_desc *t = (void *)(e->mem + table);
        for (int i = 0; i < r->n; i++) {
            t[i] = r->chain[i];
            if (i + 1 < r->n) {
                t[i].flags |= VIRTQ_DESC_F_NEXT;
                t[i].next = (uint16_t)(i + 1);
            }
        }
        head = take_desc(e);
        e->desc[head] = (struct virtq_desc){table, (uint32_t)(r->n * sizeof *t),
                                            VIRTQ_DESC_F_INDIRECT, 0};
    } else {
        uint16_t idx[MAX_CHAIN];
        for (int i = r->n - 1; i >= 0; i--)
            idx[i] = take_desc(e);
        for (int i = 0; i < r->n; i++) {
            e->desc[idx[i]] = r->chain[i];
            if (i + 1 < r->n) {
                e->desc[idx[i]].flags |= VIRTQ_DESC_F_NEXT;
                e->desc[idx[i]].next = idx[i + 1];
            }
        }
        head = idx[0];
    }
    r->head = head;
    assert_null(e->inflight[head]);
    e->inflight[head] = r;
    e->avail->ring[e->avail_idx % QSIZE] = head;
    e->avail_idx++;
}

static void publish_and_kick(struct env *e)
{
    /* The ring entries before the index that makes them visible. */
    __atomic_store_n(&e->avail->idx, e->avail_idx, __ATOMIC_RELEASE);
    uint64_t one = 1;
    assert_int_equal(write(e->kick, &one, sizeof one), sizeof one);
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Takes the completions in the used ring. */
static void consume_used(struct env *e)
{
    uint16_t idx = __atomic_load_n(&e->used->idx, __ATOMIC_ACQUIRE);
    while (e->used_seen != idx) {
        struct virtq_used_elem u = e->used->ring[e->used_seen % QSIZE];
        if (u.id >= QSIZE || !e->inflight[u.id])
            fail_msg("used ring: id %u is not a request in flight", u.id);
        struct req *r = e->inflight[u.id];
        e->inflight[u.id] = NULL;
        r->done = true;
        r->used_len = u.len;
        e->used_seen++;
    }
}

/* Publishes what was submitted, kicks, and waits for every request the way
 * a driver does: it sleeps on the interrupt (the call eventfd) and, with
 * EVENT_IDX, says in used_event up to where it has seen completions, then
 * looks again before sleeping so as not to miss one. The device must
 * interrupt for the test to go on. */
static void run(struct env *e)
{
    publish_and_kick(e);
    bool event_idx = e->features & BIT(VIRTIO_RING_F_EVENT_IDX);
    uint16_t *used_event = &e->avail->ring[QSIZE];
    long long deadline = now_ms() + TIMEOUT_MS;
    for (;;) {
        consume_used(e);
        if (e->used_seen == e->avail_idx)
            return;
        if (event_idx)
            __atomic_store_n(used_event, e->used_seen, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&e->used->idx, __ATOMIC_ACQUIRE) != e->used_seen)
            continue;
        struct pollfd p = {e->call, POLLIN, 0};
        long long left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            fail_msg("no interrupt: %u of %u requests completed",
                     (unsigned)(uint16_t)(e->used_seen), (unsigned)e->avail_idx);
        uint64_t count;
        assert_int_equal(read(e->call, &count, sizeof count), sizeof count);
    }
}

static uint8_t status_of(struct env *e, const struct req *r)
{
    return e->mem[r->status];
}

/* The request completed with status OK and the used length virtio-blk
 * gives: data written into the guest plus the status byte. */
static void expect_ok(struct env *e, const struct req *r, uint32_t written)
{
    assert_true(r->done);
    assert_int_equal(status_of(e, r), VIRTIO_BLK_S_OK);
    assert_int_equal(r->used_len, written + 1);
}

/* An IN request returned exactly want, and nothing past its buffers. */
static void expect_read(struct env *e, const struct req *r, const uint8_t *want)
{
    expect_ok(e, r, r->len);
    for (int i = 0; i < r->n_pieces; want += r->piece_len[i], i++) {
        if (memcmp(e->mem + r->piece[i], want, r->piece_len[i]) != 0)
            fail_msg("piece %d of %d (%u bytes) differs", i, r->n_pieces, r->piece_len[i]);
        uint64_t after = r->piece[i] + r->piece_len[i];
        if (after != r->status && e->mem[after] != POISON)
            fail_msg("piece %d: written past its end", i);
    }
}

/* ---- disks ------------------------------------------------------------ */

/* A raw file of random content; returns its model. */
static uint8_t *make_raw(const char *file, uint64_t size, uint64_t seed)
{
    uint8_t *model = malloc(size);
    uint64_t x = seed;
    fill_random(model, size, &x);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(model, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
    return model;
}

static void disk_fill(struct disk *d, uint8_t *model, uint64_t off, uint64_t len, uint64_t *x)
{
    fill_random(model + off, len, x);
    OK(disk_pwrite(d, model + off, len, off));
}

/* ---- requests against a model ----------------------------------------- */

struct op {
    struct req r;
    bool write;
    uint64_t off;
    uint32_t len;
};

#define BATCH 4

struct batch {
    struct op op[BATCH];
    int n;
};

static void batch_run(struct env *e, struct batch *b, const uint8_t *model)
{
    if (!b->n)
        return;
    run(e);
    for (int i = 0; i < b->n; i++) {
        if (b->op[i].write)
            expect_ok(e, &b->op[i].r, 0);
        else
            expect_read(e, &b->op[i].r, model + b->op[i].off);
    }
    b->n = 0;
}

/* Queues one read or write; the batch goes when it is full, when the new
 * request overlaps one in it (a driver does not have two in flight on the
 * same sectors) or when guest memory runs short. Writes update the model
 * at once: the reads of the batch do not overlap them. */
static void batch_add(struct env *e, struct batch *b, uint8_t *model, bool write, uint64_t off,
                      uint32_t len, int pieces, unsigned layout)
{
    bool clash = b->n == BATCH || e->heap + len + 4096 > GUEST_SIZE || e->next_desc + 24 > QSIZE;
    for (int i = 0; i < b->n; i++)
        if (off < b->op[i].off + b->op[i].len && b->op[i].off < off + len)
            clash = true;
    if (clash)
        batch_run(e, b, model);
    struct op *o = &b->op[b->n++];
    o->write = write;
    o->off = off;
    o->len = len;
    if (write) {
        layout &= ~(unsigned)STATUS_WITH_DATA;
        /* Zeros now and then: a differencing layer must still store them. */
        if (rnd(&e->rng) % 8 == 0)
            memset(model + off, 0, len);
        else
            fill_random(model + off, len, &e->rng);
        blk_req(e, &o->r, VIRTIO_BLK_T_OUT, off / 512, len, pieces, layout, model + off);
    } else {
        layout &= ~(unsigned)HEADER_WITH_DATA;
        blk_req(e, &o->r, VIRTIO_BLK_T_IN, off / 512, len, pieces, layout, NULL);
    }
    submit(e, &o->r);
}

/* Reads the whole disk through the device, 1 MiB per request. */
static void read_all(struct env *e, const uint8_t *model, uint64_t size)
{
    struct batch b = {.n = 0};
    for (uint64_t off = 0; off < size; off += 1u << 20)
        batch_add(e, &b, (uint8_t *)model, false, off, 1u << 20, 8, (unsigned)(off >> 20) & 15);
    batch_run(e, &b, model);
}

/* ---- tests ------------------------------------------------------------ */

/* A raw file: configuration, reads in every layout, errors, GET_ID, writes
 * and flush, all read back through the device and then from the file. */
static void test_raw(void **state)
{
    (void)state;
    const uint64_t size = 8u << 20, sectors = size / 512;
    uint8_t *model = make_raw(path("raw.img"), size, 1);
    struct vhost_blk_options opts = {.queues = 1, .serial = SERIAL};
    struct env *e = malloc(sizeof *e);
    start(e, path("raw.img"), &opts);
    connect_device(e, BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC));

    struct virtio_blk_config cfg = get_config(e);
    assert_int_equal(cfg.capacity, sectors);
    assert_int_equal(cfg.blk_size, 512);
    assert_true(cfg.seg_max >= MAX_CHAIN);
    assert_int_equal(cfg.num_queues, 1);

    /* Reads, one request per kick, then all of them in one. */
    static const struct {
        uint64_t sector;
        uint32_t len;
        int pieces;
        unsigned layout;
    } reads[] = {
        {0, 4096, 4, 0},
        {7, 3 * 512, 3, SPLIT_HEADER},
        {100, 8192, 5, STATUS_WITH_DATA},
        {2047, 65536, 7, INDIRECT},
        {12345, 512, 1, SPLIT_HEADER | STATUS_WITH_DATA | INDIRECT},
        {(8u << 20) / 512 - 8, 4096, 2, 0}, /* the last sectors */
        {3000, 300 * 1024, 16, SPLIT_HEADER},
    };
    enum { N_READS = sizeof reads / sizeof reads[0] };
    struct req r[N_READS + 4];
    for (int i = 0; i < N_READS; i++) {
        blk_req(e, &r[i], VIRTIO_BLK_T_IN, reads[i].sector, reads[i].len, reads[i].pieces,
                reads[i].layout, NULL);
        submit(e, &r[i]);
        run(e);
        expect_read(e, &r[i], model + reads[i].sector * 512);
    }
    for (int i = 0; i < N_READS; i++) {
        blk_req(e, &r[i], VIRTIO_BLK_T_IN, reads[i].sector, reads[i].len, reads[i].pieces,
                reads[i].layout ^ INDIRECT, NULL);
        submit(e, &r[i]);
    }
    run(e);
    for (int i = 0; i < N_READS; i++)
        expect_read(e, &r[i], model + reads[i].sector * 512);

    /* Errors: each request fails alone, with status byte and used length 1
     * (expect_disk at the end shows the write past the end did nothing). */
    uint8_t junk[1024] = {0};
    blk_req(e, &r[0], VIRTIO_BLK_T_IN, sectors, 512, 1, 0, NULL);         /* past the end */
    blk_req(e, &r[1], VIRTIO_BLK_T_IN, sectors - 1, 1024, 2, 0, NULL);    /* across it */
    blk_req(e, &r[2], VIRTIO_BLK_T_OUT, sectors, 512, 1, 0, junk);        /* write past it */
    blk_req(e, &r[3], VIRTIO_BLK_T_IN, UINT64_MAX / 256, 512, 1, 0, NULL); /* offset overflows */
    blk_req(e, &r[4], VIRTIO_BLK_T_IN, 0, 100, 1, 0, NULL);                /* not whole sectors */
    blk_req(e, &r[5], 99, 0, 0, 0, 0, NULL);                               /* unknown type */
    blk_req(e, &r[6], VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, 3, STATUS_WITH_DATA, NULL);
    for (int i = 0; i <= 6; i++)
        submit(e, &r[i]);
    run(e);
    for (int i = 0; i <= 4; i++) {
        assert_int_equal(status_of(e, &r[i]), VIRTIO_BLK_S_IOERR);
        assert_int_equal(r[i].used_len, 1);
    }
    assert_int_equal(status_of(e, &r[5]), VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(r[5].used_len, 1);
    uint8_t id[VIRTIO_BLK_ID_BYTES] = SERIAL; /* zero-padded */
    expect_read(e, &r[6], id);

    /* Writes in every layout, then a flush, then read back. */
    uint64_t x = 7;
    uint8_t *data = malloc(1u << 20);
    fill_random(data, 1u << 20, &x);
    blk_req(e, &r[0], VIRTIO_BLK_T_OUT, 5000, 20480, 5, HEADER_WITH_DATA | SPLIT_HEADER, data);
    blk_req(e, &r[1], VIRTIO_BLK_T_OUT, 9000, 4096, 3, INDIRECT | HEADER_WITH_DATA, data + 20480);
    blk_req(e, &r[2], VIRTIO_BLK_T_OUT, sectors - 2048, 1u << 20, 16, 0, data); /* to the end */
    for (int i = 0; i < 3; i++)
        submit(e, &r[i]);
    run(e);
    for (int i = 0; i < 3; i++)
        expect_ok(e, &r[i], 0);
    memcpy(model + 5000 * 512, data, 20480);
    memcpy(model + 9000 * 512, data + 20480, 4096);
    memcpy(model + size - (1u << 20), data, 1u << 20);
    blk_req(e, &r[0], VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, NULL);
    submit(e, &r[0]);
    run(e);
    expect_ok(e, &r[0], 0);
    blk_req(e, &r[0], VIRTIO_BLK_T_IN, 4990, 32768, 6, STATUS_WITH_DATA, NULL);
    blk_req(e, &r[1], VIRTIO_BLK_T_IN, 8999, 8192, 2, INDIRECT, NULL);
    blk_req(e, &r[2], VIRTIO_BLK_T_IN, sectors - 2050, (1u << 20) + 1024, 9, 0, NULL);
    for (int i = 0; i < 3; i++)
        submit(e, &r[i]);
    run(e);
    expect_read(e, &r[0], model + 4990 * 512);
    expect_read(e, &r[1], model + 8999 * 512);
    expect_read(e, &r[2], model + size - (1u << 20) - 1024);

    finish(e, false);
    expect_disk(path("raw.img"), model, size);
    free(data);
    free(model);
    free(e);
}

/* A VHD chain: the dynamic parent holds [0, 2 MiB) and [5, 5.5 MiB); the
 * differencing child owns some sectors of the block at 1 MiB and all of
 * [1.5, 3 MiB). Reads cross the layers and the holes; writes go to sectors
 * the child owns (in place), to blocks only the parent has, to blocks
 * nobody has and to a block the child owns in part; then random reads and
 * writes against the model. */
static void test_vhd_chain(void **state)
{
    (void)state;
    const uint64_t size = 8u << 20;
    const uint32_t block = 64u << 10;
    uint8_t *model = calloc(1, size);
    uint64_t x = 42;
    struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC, .size = size, .block_size = block};
    OK(vhd_create(path("base.vhd"), &p));
    struct disk *d;
    OK(disk_open(path("base.vhd"), 0, &d));
    disk_fill(d, model, 0, 2u << 20, &x);
    disk_fill(d, model, 5u << 20, 512u << 10, &x);
    disk_close(d);
    OK(disk_diff_create(path("base.vhd"), path("child.vhd"), false));
    OK(disk_open(path("child.vhd"), 0, &d));
    disk_fill(d, model, (1u << 20) + 3 * 512, 40u << 10, &x);
    disk_fill(d, model, 3u << 19, 3u << 19, &x);
    disk_close(d);

    struct env *e = malloc(sizeof *e);
    start(e, path("child.vhd"), &(struct vhost_blk_options){.queues = 1});
    /* No EVENT_IDX here: the device interrupts unless the guest says not to. */
    connect_device(e, BIT(VIRTIO_RING_F_INDIRECT_DESC));
    read_all(e, model, size);

    struct batch b = {.n = 0};
    batch_add(e, &b, model, true, (3u << 19) + 4096, 8192, 3, SPLIT_HEADER); /* child's */
    batch_add(e, &b, model, true, 256u << 10, 12288, 4, INDIRECT);          /* parent's */
    batch_add(e, &b, model, true, 7u << 19, 20480, 2, HEADER_WITH_DATA);    /* nobody's */
    batch_add(e, &b, model, true, 1u << 20, block, 6, 0);                   /* child's in part */
    /* Child-owned, then unallocated: more than the device's bounce buffer. */
    batch_add(e, &b, model, true, 11u << 18, 3u << 19, 12, INDIRECT);
    batch_run(e, &b, model);
    read_all(e, model, size);

    for (int i = 0; i < 80; i++) {
        uint32_t len = (uint32_t)(1 + rnd(&x) % 256) * 512;
        uint64_t off = rnd(&x) % ((size - len) / 512 + 1) * 512;
        int pieces = 1 + (int)(rnd(&x) % 8);
        bool write = rnd(&x) & 1;
        unsigned layout = (unsigned)rnd(&x) & 15;
        batch_add(e, &b, model, write, off, len, pieces, layout);
    }
    batch_run(e, &b, model);
    read_all(e, model, size);

    finish(e, true); /* QEMU goes away: vhost_blk_run returns 0 */
    expect_disk(path("child.vhd"), model, size);
    expect_clean(path("child.vhd"));
    free(model);
    free(e);
}

/* The log shows exactly the pages the device wrote for r: its writable
 * buffers and the used ring. */
static void expect_log(const uint8_t *log, size_t log_len, const struct req *r)
{
    uint8_t want[GUEST_SIZE / VHOST_LOG_PAGE / 8] = {0};
    for (uint64_t a = USED_GPA; a < USED_GPA + 6 + 8 * QSIZE + 2; a += 2)
        want[a / VHOST_LOG_PAGE / 8] |= (uint8_t)(1u << (a / VHOST_LOG_PAGE % 8));
    for (int i = 0; i < r->n; i++)
        if (r->chain[i].flags & VIRTQ_DESC_F_WRITE)
            for (uint64_t a = r->chain[i].addr; a < r->chain[i].addr + r->chain[i].len; a++)
                want[a / VHOST_LOG_PAGE / 8] |= (uint8_t)(1u << (a / VHOST_LOG_PAGE % 8));
    for (size_t i = 0; i < log_len; i++) {
        uint8_t w = i < sizeof want ? want[i] : 0;
        if (log[i] != w)
            fail_msg("dirty log byte %zu (pages %zu-%zu): %02x, expected %02x", i, i * 8,
                     i * 8 + 7, log[i], w);
    }
}

/* Migration: with VHOST_F_LOG_ALL and a log, every page the device writes
 * into guest memory is marked, and nothing else. */
static void test_dirty_log(void **state)
{
    (void)state;
    const uint64_t size = 4u << 20;
    uint8_t *model = make_raw(path("log.img"), size, 3);
    struct env *e = malloc(sizeof *e);
    start(e, path("log.img"), &(struct vhost_blk_options){.queues = 1});
    connect_device(e, BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_RING_F_INDIRECT_DESC));
    struct req r;
    blk_req(e, &r, VIRTIO_BLK_T_IN, 8, 4096, 2, 0, NULL);
    submit(e, &r);
    run(e);
    expect_read(e, &r, model + 8 * 512);

    /* QEMU's order: the log, then the features, then the rings. */
    const size_t log_len = 4096; /* covers 128 MiB of guest memory */
    int log_fd = memfd_create("hvm-unit-log", MFD_CLOEXEC);
    assert_true(log_fd >= 0);
    assert_int_equal(ftruncate(log_fd, (off_t)log_len), 0);
    uint8_t *log = mmap(NULL, log_len, PROT_READ | PROT_WRITE, MAP_SHARED, log_fd, 0);
    assert_true(log != MAP_FAILED);
    struct vhost_user_log lb = {.mmap_size = log_len, .mmap_offset = 0};
    send_msg(e, VHOST_USER_SET_LOG_BASE, 0, &lb, sizeof lb, &log_fd, 1);
    uint64_t ignored;
    recv_reply(e, VHOST_USER_SET_LOG_BASE, &ignored, sizeof ignored);
    e->features |= BIT(VHOST_F_LOG_ALL);
    set_u64(e, VHOST_USER_SET_FEATURES, e->features);
    set_vring_addr(e, VHOST_VRING_F_LOG);
    /* The ring restarts: it may have written avail_event (EVENT_IDX), in
     * the used ring's page; nothing else yet. */
    assert_int_equal(log[0] & ~(1u << (USED_GPA / VHOST_LOG_PAGE)), 0);
    for (size_t i = 1; i < log_len; i++)
        assert_int_equal(log[i], 0);

    /* A read into a buffer at 2 MiB + 2 KiB across three pages and more. */
    e->place = (2u << 20) + 2048;
    blk_req(e, &r, VIRTIO_BLK_T_IN, 100, 3 * 4096, 1, 0, NULL);
    assert_int_equal(r.piece[0], (2u << 20) + 2048);
    submit(e, &r);
    run(e);
    expect_read(e, &r, model + 100 * 512);
    expect_log(log, log_len, &r);
    for (uint64_t page = 512; page <= 515; page++) /* [2 MiB + 2 KiB, +12 KiB) */
        assert_true(log[page / 8] & (1u << (page % 8)));
    assert_true(log[USED_GPA / 4096 / 8] & (1u << (USED_GPA / 4096 % 8)));

    /* The front-end clears what it has synced. A write only reads its data
     * from the guest: the status byte and the used ring are dirty. Through
     * an indirect table, with several buffers. */
    memset(log, 0, log_len);
    uint8_t data[8192];
    memset(data, 0x5A, sizeof data);
    blk_req(e, &r, VIRTIO_BLK_T_OUT, 200, sizeof data, 4, INDIRECT, data);
    submit(e, &r);
    run(e);
    expect_ok(e, &r, 0);
    expect_log(log, log_len, &r);
    memcpy(model + 200 * 512, data, sizeof data);

    /* Logging off again: nothing more is marked. The log is cleared once
     * the ack says so: until then the ring may still write avail_event
     * for the last request, and log it. */
    e->features &= ~BIT(VHOST_F_LOG_ALL);
    set_u64(e, VHOST_USER_SET_FEATURES, e->features);
    memset(log, 0, log_len);
    set_vring_addr(e, 0);
    blk_req(e, &r, VIRTIO_BLK_T_IN, 190, 16384, 3, INDIRECT | STATUS_WITH_DATA, NULL);
    submit(e, &r);
    run(e);
    expect_read(e, &r, model + 190 * 512);
    for (size_t i = 0; i < log_len; i++)
        assert_int_equal(log[i], 0);

    finish(e, true);
    munmap(log, log_len);
    close(log_fd);
    free(model);
    free(e);
}

/* Stopping a ring (GET_VRING_BASE) tells where the next request would be
 * taken and takes no more until the ring is started again, which then
 * serves what was posted meanwhile. */
static void test_vring_base(void **state)
{
    (void)state;
    const uint64_t size = 1u << 20;
    uint8_t *model = make_raw(path("base.img"), size, 5);
    struct env *e = malloc(sizeof *e);
    start(e, path("base.img"), &(struct vhost_blk_options){.queues = 1});
    connect_device(e, BIT(VIRTIO_RING_F_EVENT_IDX));
    struct req r[2];
    for (int i = 0; i < 3; i++) {
        blk_req(e, &r[0], VIRTIO_BLK_T_IN, (uint64_t)i * 16, 4096, 2, 0, NULL);
        submit(e, &r[0]);
        run(e);
        expect_read(e, &r[0], model + i * 16 * 512);
    }
    blk_req(e, &r[0], VIRTIO_BLK_T_IN, 64, 512, 1, 0, NULL);
    blk_req(e, &r[1], VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, NULL);
    submit(e, &r[0]);
    submit(e, &r[1]);
    run(e);
    expect_read(e, &r[0], model + 64 * 512);
    expect_ok(e, &r[1], 0);

    struct vhost_user_vring_state st = {0, 0};
    send_msg(e, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof st, NULL, 0);
    assert_int_equal(recv_reply(e, VHOST_USER_GET_VRING_BASE, &st, sizeof st), sizeof st);
    assert_int_equal(st.index, 0);
    assert_int_equal(st.num, 5);

    /* Posted and kicked while stopped: not served, not even when messages
     * that restart running rings come meanwhile. */
    blk_req(e, &r[0], VIRTIO_BLK_T_IN, 1000, 8192, 3, 0, NULL);
    submit(e, &r[0]);
    publish_and_kick(e);
    set_u64(e, VHOST_USER_SET_FEATURES, e->features);
    set_state(e, VHOST_USER_SET_VRING_ENABLE, 0, 1);
    struct pollfd p = {e->call, POLLIN, 0};
    poll(&p, 1, 200);
    assert_int_equal(__atomic_load_n(&e->used->idx, __ATOMIC_ACQUIRE), 5);
    assert_false(r[0].done);

    /* Started again as QEMU does after a migration: from the saved base. */
    start_ring(e, (uint16_t)st.num);
    run(e);
    expect_read(e, &r[0], model + 1000 * 512);

    finish(e, true);
    free(model);
    free(e);
}

/* A read-only device says so (VIRTIO_BLK_F_RO) and fails writes even when
 * the disk behind it could take them (blk.h: "writes fail"). */
static int reports;
static void count_report(void *opaque, const char *message)
{
    (void)opaque;
    (void)message;
    __atomic_fetch_add(&reports, 1, __ATOMIC_RELAXED);
}

/* A guest that breaks the ring's rules (a buffer outside its memory) gets
 * no completion, not one that a driver could take for success, and the
 * queue stops (reported); the connection lives on. */
static void test_broken_ring(void **state)
{
    (void)state;
    const uint64_t size = 1u << 20;
    uint8_t *model = make_raw(path("base.img"), size, 6);
    struct env *e = malloc(sizeof *e);
    start(e, path("base.img"),
          &(struct vhost_blk_options){.queues = 1, .log = count_report});
    connect_device(e, BIT(VIRTIO_RING_F_EVENT_IDX));
    struct req r[2];
    blk_req(e, &r[0], VIRTIO_BLK_T_IN, 0, 4096, 2, 0, NULL);
    submit(e, &r[0]);
    run(e);
    expect_read(e, &r[0], model);

    blk_req(e, &r[0], VIRTIO_BLK_T_IN, 8, 4096, 2, 0, NULL);
    r[0].chain[1].addr = GUEST_SIZE + 8192; /* past the end of guest memory */
    blk_req(e, &r[1], VIRTIO_BLK_T_IN, 16, 4096, 1, 0, NULL);
    submit(e, &r[0]);
    submit(e, &r[1]);
    publish_and_kick(e);
    struct pollfd p = {e->call, POLLIN, 0};
    poll(&p, 1, 200);
    assert_int_equal(__atomic_load_n(&e->used->idx, __ATOMIC_ACQUIRE), 1);
    assert_int_equal(__atomic_load_n(&reports, __ATOMIC_RELAXED), 1);

    /* Still talking: the ring stopped at the bad request. */
    struct vhost_user_vring_state st = {0, 0};
    send_msg(e, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof st, NULL, 0);
    assert_int_equal(recv_reply(e, VHOST_USER_GET_VRING_BASE, &st, sizeof st), sizeof st);
    assert_int_equal(st.num, 1);

    finish(e, true);
    free(model);
    free(e);
}

static void test_read_only(void **state)
{
    (void)state;
    const uint64_t size = 1u << 20;
    uint8_t *model = make_raw(path("ro.img"), size, 9);
    struct env *e = malloc(sizeof *e);
    start(e, path("ro.img"), &(struct vhost_blk_options){.queues = 1, .read_only = true});
    uint64_t f = get_u64(e, VHOST_USER_GET_FEATURES);
    assert_true(f & BIT(5)); /* VIRTIO_BLK_F_RO */
    assert_false(f & (BIT(VIRTIO_BLK_F_DISCARD) | BIT(VIRTIO_BLK_F_WRITE_ZEROES)));
    connect_device(e, 0);
    struct req r[2];
    uint8_t data[4096];
    memset(data, 0x33, sizeof data);
    blk_req(e, &r[0], VIRTIO_BLK_T_IN, 0, 4096, 2, 0, NULL);
    submit(e, &r[0]);
    blk_req(e, &r[1], VIRTIO_BLK_T_OUT, 16, sizeof data, 2, 0, data);
    submit(e, &r[1]);
    run(e);
    expect_read(e, &r[0], model);
    uint8_t status = status_of(e, &r[1]);
    finish(e, true);
    free(e);
    /* Cleaned up first: the checks below fail with nothing left behind. */
    FILE *file = fopen(path("ro.img"), "rb");
    assert_non_null(file);
    uint8_t *now = malloc(size);
    assert_int_equal(fread(now, 1, size, file), size);
    fclose(file);
    bool unchanged = memcmp(now, model, size) == 0;
    free(now);
    free(model);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_true(unchanged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_vhd_chain),
        cmocka_unit_test(test_dirty_log),
        cmocka_unit_test(test_vring_base),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_broken_ring),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
