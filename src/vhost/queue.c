/* Split virtqueues (VIRTIO 1.1, 2.6): one thread per started queue takes
 * requests from the avail ring, has the device serve them, returns them on
 * the used ring and interrupts the guest when it asks to be.
 *
 * Ordering: the guest publishes avail->idx after the ring entry and the
 * descriptors (we load it with acquire); we publish used->idx after the
 * used entry (store with release). With VIRTIO_RING_F_EVENT_IDX the guest
 * says in used_event up to where it has seen completions and we say in
 * avail_event up to where we have taken requests, so that neither side
 * wakes the other for nothing; a full fence between writing avail_event
 * and reading avail->idx again closes the race with a guest that adds a
 * request just then (it would not kick). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/error.h"
#include "vhost/internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "virtio 1.0 rings are little-endian and read in place");

static uint16_t *used_event(struct vhost_queue *q)
{
    return &q->avail->ring[q->num];
}

static uint16_t *avail_event(struct vhost_queue *q)
{
    return (uint16_t *)(void *)&q->used->ring[q->num];
}

static uint16_t avail_idx(struct vhost_queue *q)
{
    return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
}

/* Appends one guest buffer (which may span memory regions) to req. */
static int add_buffer(struct vhost_dev *d, struct vhost_request *req, uint64_t gpa,
                      uint32_t len, bool writable)
{
    while (len > 0) {
        uint64_t n = len;
        uint8_t *host = vhost_gpa_to_host(d, gpa, &n);
        if (!host || req->n == VHOST_MAX_SEGMENTS)
            return -EFAULT;
        req->seg[req->n++] = (struct vhost_segment){host, gpa, (uint32_t)n, writable};
        gpa += n;
        len -= (uint32_t)n;
    }
    return 0;
}

/* The descriptors of an indirect table (VIRTIO 1.1, 2.6.5.3). */
static int add_indirect(struct vhost_dev *d, struct vhost_request *req,
                        const struct virtq_desc *table_desc)
{
    uint64_t len = table_desc->len;
    if (len % sizeof(struct virtq_desc) || len == 0)
        return -EINVAL;
    const struct virtq_desc *table = (void *)vhost_gpa_to_host(d, table_desc->addr, &len);
    if (!table || len != table_desc->len)
        return -EFAULT; /* (a table split across regions: not from QEMU) */
    unsigned count = table_desc->len / sizeof(struct virtq_desc);
    unsigned i = 0;
    for (unsigned steps = 0; steps < count; steps++) {
        struct virtq_desc x = table[i];
        if (x.flags & VIRTQ_DESC_F_INDIRECT)
            return -EINVAL;
        if (add_buffer(d, req, x.addr, x.len, x.flags & VIRTQ_DESC_F_WRITE) < 0)
            return -EFAULT;
        if (!(x.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        if ((i = x.next) >= count)
            return -EINVAL;
    }
    return -ELOOP;
}

/* Reads the chain starting at head into req. */
static int pop_chain(struct vhost_queue *q, uint16_t head, struct vhost_request *req)
{
    struct vhost_dev *d = q->dev;
    req->head = head;
    req->n = 0;
    unsigned i = head;
    for (unsigned steps = 0; steps < q->num; steps++) {
        if (i >= q->num)
            return -EINVAL;
        struct virtq_desc x = q->desc[i];
        int r = x.flags & VIRTQ_DESC_F_INDIRECT
                    ? add_indirect(d, req, &x)
                    : add_buffer(d, req, x.addr, x.len, x.flags & VIRTQ_DESC_F_WRITE);
        if (r < 0)
            return r;
        if (!(x.flags & VIRTQ_DESC_F_NEXT) || (x.flags & VIRTQ_DESC_F_INDIRECT))
            return 0;
        i = x.next;
    }
    return -ELOOP;
}

static void push_used(struct vhost_queue *q, uint16_t head, uint32_t len)
{
    struct vhost_dev *d = q->dev;
    unsigned slot = q->used_idx % q->num;
    q->used->ring[slot].id = head;
    q->used->ring[slot].len = len;
    q->used_idx++;
    __atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
    if (q->log_used) {
        vhost_log_write(d, q->used_gpa + offsetof(struct virtq_used, ring) +
                               slot * sizeof(struct virtq_used_elem),
                        sizeof(struct virtq_used_elem));
        vhost_log_write(d, q->used_gpa + offsetof(struct virtq_used, idx), sizeof(uint16_t));
    }
}

/* Does the guest want an interrupt for what we completed since the last? */
static bool should_notify(struct vhost_queue *q)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* used->idx before the guest's flags */
    if (!vhost_has_feature(q->dev, VIRTIO_RING_F_EVENT_IDX))
        return !(__atomic_load_n(&q->avail->flags, __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    uint16_t old = q->signalled_used, now = q->used_idx;
    bool valid = q->signalled_valid;
    q->signalled_used = now;
    q->signalled_valid = true;
    if (!valid)
        return true;
    uint16_t event = __atomic_load_n(used_event(q), __ATOMIC_RELAXED);
    /* vring_need_event: event lies in (old, now] */
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

static void notify(struct vhost_queue *q)
{
    if (!should_notify(q))
        return;
    pthread_mutex_lock(&q->call_lock);
    if (q->call_fd >= 0) {
        uint64_t one = 1;
        ssize_t ignored = write(q->call_fd, &one, sizeof one);
        (void)ignored;
    }
    pthread_mutex_unlock(&q->call_lock);
}

/* The guest broke the ring's rules: like QEMU (virtio_error), serve the
 * queue no more until the driver restarts it; completing the request
 * without a status would let it read garbage as success. */
static void ring_broken(struct vhost_queue *q, const char *why)
{
    q->broken = true;
    vhost_report(q->dev, "queue %d: %s; the queue is stopped until the guest resets it",
                 q->index, why);
}

/* Serves every available request; returns when the ring is empty and the
 * guest has been told to kick for the next one. */
static void drain(struct vhost_queue *q, struct vhost_request *req)
{
    struct vhost_dev *d = q->dev;
    bool event_idx = vhost_has_feature(d, VIRTIO_RING_F_EVENT_IDX);
    for (;;) {
        uint16_t avail;
        while (q->last_avail != (avail = avail_idx(q))) {
            if (atomic_load(&q->stopping))
                return;
            if ((uint16_t)(avail - q->last_avail) > q->num) {
                ring_broken(q, "the guest moved the avail index past the ring");
                return;
            }
            uint16_t head = q->avail->ring[q->last_avail % q->num];
            if (head >= q->num || pop_chain(q, head, req) < 0) {
                ring_broken(q, "a malformed descriptor chain");
                return;
            }
            q->last_avail++;
            uint32_t len = d->ops->handle(d->opaque, q, req);
            for (int i = 0; i < req->n; i++)
                if (req->seg[i].writable)
                    vhost_log_write(d, req->seg[i].gpa, req->seg[i].len);
            push_used(q, head, len);
            notify(q);
        }
        if (event_idx) {
            *avail_event(q) = q->last_avail;
            if (q->log_used)
                vhost_log_write(d, q->used_gpa + offsetof(struct virtq_used, ring) +
                                       q->num * sizeof(struct virtq_used_elem),
                                sizeof(uint16_t));
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (q->last_avail == avail_idx(q))
            return;
    }
}

static void *queue_thread(void *arg)
{
    struct vhost_queue *q = arg;
    struct vhost_request *req = malloc(sizeof *req);
    if (!req)
        return NULL;
    while (!atomic_load(&q->stopping)) {
        drain(q, req);
        if (q->broken)
            break;
        struct pollfd p[2] = {{q->kick_fd, POLLIN, 0}, {q->stop_fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            uint64_t kicks;
            ssize_t ignored = read(q->kick_fd, &kicks, sizeof kicks);
            (void)ignored;
        } else if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
            break;
        }
    }
    free(req);
    return NULL;
}

int vhost_queue_start(struct vhost_queue *q)
{
    if (q->running || q->broken || !q->kicked || !q->enabled || !q->has_addr || q->kick_fd < 0)
        return 0;
    if (q->stop_fd < 0 && (q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return hvm_error(errno, "eventfd: %s", strerror(errno));
    atomic_store(&q->stopping, false);
    if (pthread_create(&q->thread, NULL, queue_thread, q) != 0)
        return hvm_error(EAGAIN, "vhost-user: cannot start a queue thread");
    q->running = true;
    return 0;
}

void vhost_queue_stop(struct vhost_queue *q)
{
    if (!q->running)
        return;
    atomic_store(&q->stopping, true);
    uint64_t one = 1;
    ssize_t ignored = write(q->stop_fd, &one, sizeof one);
    (void)ignored;
    pthread_join(q->thread, NULL);
    uint64_t drained;
    ignored = read(q->stop_fd, &drained, sizeof drained);
    q->running = false;
}
