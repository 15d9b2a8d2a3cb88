/* The vhost-user protocol, back-end side: the messages with which QEMU
 * (the front-end) hands us the guest's memory, sets up and stops the
 * virtqueues, and asks for the device's features and configuration.
 *
 * Reference: docs/interop/vhost-user.rst in QEMU's sources. Messages come
 * one at a time on one socket; file descriptors travel with them as
 * SCM_RIGHTS. A message that changes what the queue threads use (the
 * memory table, the dirty log, the acked features) stops the running
 * queues first and restarts them after: a queue thread never sees a
 * half-changed device. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/error.h"
#include "vhost/internal.h"

#define MAX_FDS VHOST_USER_MAX_REGIONS

struct message {
    struct vhost_user_header h;
    union vhost_user_payload p;
    int fds[MAX_FDS];
    int n_fds;
};

static void close_fds(struct message *m)
{
    for (int i = 0; i < m->n_fds; i++)
        if (m->fds[i] >= 0)
            close(m->fds[i]);
    m->n_fds = 0;
}

/* Reads len bytes, collecting any descriptors that come with them. */
static int recv_full(int fd, void *buf, size_t len, struct message *m)
{
    size_t got = 0;
    while (got < len) {
        char control[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct iovec iov = {(char *)buf + got, len - got};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                            .msg_controllen = sizeof control};
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EPIPE;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int *fds = (int *)(void *)CMSG_DATA(c);
            for (int i = 0; i < k; i++) {
                if (m->n_fds < MAX_FDS)
                    m->fds[m->n_fds++] = fds[i];
                else
                    close(fds[i]);
            }
        }
        got += (size_t)n;
    }
    return 0;
}

static int recv_message(int fd, struct message *m)
{
    m->n_fds = 0;
    int r = recv_full(fd, &m->h, sizeof m->h, m);
    if (r == 0 && m->h.size > sizeof m->p)
        r = -EPROTO;
    if (r == 0 && m->h.size)
        r = recv_full(fd, &m->p, m->h.size, m);
    if (r < 0)
        close_fds(m);
    return r;
}

static int send_reply(struct vhost_dev *d, struct message *m, const void *payload,
                      uint32_t size)
{
    struct vhost_user_header h = {.request = m->h.request,
                                  .flags = VHOST_USER_VERSION | VHOST_USER_REPLY, .size = size};
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)payload, size}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    size_t want = sizeof h + size;
    ssize_t n;
    do
        n = sendmsg(d->fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)want ? 0 : -EPIPE;
}

static int reply_u64(struct vhost_dev *d, struct message *m, uint64_t v)
{
    return send_reply(d, m, &v, sizeof v);
}

uint8_t *vhost_gpa_to_host(struct vhost_dev *d, uint64_t gpa, uint64_t *len)
{
    for (int i = 0; i < d->n_regions; i++) {
        struct vhost_region *r = &d->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size) {
            uint64_t left = r->size - (gpa - r->gpa);
            if (*len > left)
                *len = left;
            return r->host + (gpa - r->gpa);
        }
    }
    return NULL;
}

uint8_t *vhost_uaddr_to_host(struct vhost_dev *d, uint64_t uaddr, uint64_t len)
{
    for (int i = 0; i < d->n_regions; i++) {
        struct vhost_region *r = &d->regions[i];
        if (uaddr >= r->uaddr && uaddr - r->uaddr < r->size && len <= r->size - (uaddr - r->uaddr))
            return r->host + (uaddr - r->uaddr);
    }
    return NULL;
}

void vhost_report(struct vhost_dev *d, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->report)
        d->report(d->report_opaque, msg);
}

void vhost_log_write(struct vhost_dev *d, uint64_t gpa, uint64_t len)
{
    if (!d->log || !len || !vhost_has_feature(d, VHOST_F_LOG_ALL))
        return;
    uint64_t first = gpa / VHOST_LOG_PAGE, last = (gpa + len - 1) / VHOST_LOG_PAGE;
    for (uint64_t page = first; page <= last && page / 8 < d->log_len; page++)
        __atomic_fetch_or(&d->log[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELAXED);
}

/* Stops every running queue, for a change to what they use. */
static void quiesce(struct vhost_dev *d)
{
    for (int i = 0; i < d->n_queues; i++)
        vhost_queue_stop(&d->queues[i]);
}

/* Starts every queue that is ready (kicked, enabled, rings known) and not
 * running: those quiesce stopped, and any that became ready just now. */
static int resume(struct vhost_dev *d)
{
    int r = 0;
    for (int i = 0; i < d->n_queues && r == 0; i++)
        r = vhost_queue_start(&d->queues[i]);
    return r;
}

static void unmap_regions(struct vhost_dev *d)
{
    for (int i = 0; i < d->n_regions; i++)
        munmap(d->regions[i].map, d->regions[i].map_len);
    d->n_regions = 0;
}

static void unmap_log(struct vhost_dev *d)
{
    if (d->log_map)
        munmap(d->log_map, d->log_map_len);
    d->log_map = NULL;
    d->log = NULL;
    d->log_len = 0;
}

/* The rings of q as our pointers, from the addresses the front-end gave. */
static int translate_rings(struct vhost_dev *d, struct vhost_queue *q)
{
    const struct vhost_user_vring_addr *a = &q->addr;
    unsigned num = q->num;
    struct virtq_desc *desc = (void *)vhost_uaddr_to_host(d, a->desc_user_addr, 16ull * num);
    struct virtq_avail *avail = (void *)vhost_uaddr_to_host(d, a->avail_user_addr, 6 + 2ull * num);
    struct virtq_used *used = (void *)vhost_uaddr_to_host(d, a->used_user_addr, 6 + 8ull * num);
    if (!desc || !avail || !used)
        return hvm_error(EFAULT, "vhost-user: queue %d's rings are outside guest memory",
                         q->index);
    q->desc = desc;
    q->avail = avail;
    q->used = used;
    return 0;
}

struct populate_job {
    int fd;
    uint64_t offset, len;
};

static void *populate_thread(void *arg)
{
    struct populate_job *j = arg;
    /* Best effort: without it only the first save's pause is longer. */
    int ignored = fallocate(j->fd, 0, (off_t)j->offset, (off_t)j->len);
    (void)ignored;
    close(j->fd);
    free(j);
    return NULL;
}

/* Starts allocating a region's pages (see vhost_dev's populate). The
 * thread has its own descriptor and touches nothing else of ours. */
static void populate_region(int fd, const struct vhost_user_region *r)
{
    struct populate_job *j = malloc(sizeof *j);
    pthread_attr_t attr;
    pthread_t t;
    if (!j)
        return;
    *j = (struct populate_job){fcntl(fd, F_DUPFD_CLOEXEC, 0), r->mmap_offset, r->memory_size};
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (j->fd < 0 || pthread_create(&t, &attr, populate_thread, j) != 0) {
        if (j->fd >= 0)
            close(j->fd);
        free(j);
    }
    pthread_attr_destroy(&attr);
}

static int set_mem_table(struct vhost_dev *d, struct message *m)
{
    const struct vhost_user_memory *mem = &m->p.memory;
    if (mem->nregions > VHOST_USER_MAX_REGIONS || (int)mem->nregions != m->n_fds)
        return hvm_error(EPROTO, "vhost-user: memory table with %u regions and %d descriptors",
                         mem->nregions, m->n_fds);
    struct vhost_region fresh[VHOST_USER_MAX_REGIONS];
    for (uint32_t i = 0; i < mem->nregions; i++) {
        const struct vhost_user_region *src = &mem->regions[i];
        size_t len = src->memory_size + src->mmap_offset;
        void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[i], 0);
        if (map == MAP_FAILED) {
            int e = errno;
            for (uint32_t k = 0; k < i; k++)
                munmap(fresh[k].map, fresh[k].map_len);
            return hvm_error(e, "vhost-user: cannot map guest memory: %s", strerror(e));
        }
        madvise(map, len, MADV_DONTDUMP);
        fresh[i] = (struct vhost_region){.gpa = src->guest_phys_addr, .size = src->memory_size,
                                         .uaddr = src->userspace_addr,
                                         .host = (uint8_t *)map + src->mmap_offset,
                                         .map = map, .map_len = len};
    }
    if (d->populate && !d->populated) {
        for (uint32_t i = 0; i < mem->nregions; i++)
            populate_region(m->fds[i], &mem->regions[i]);
        d->populated = true;
    }
    quiesce(d);
    unmap_regions(d);
    memcpy(d->regions, fresh, sizeof fresh[0] * mem->nregions);
    d->n_regions = (int)mem->nregions;
    /* The rings were found through the old table. */
    int r = 0;
    for (int i = 0; i < d->n_queues; i++) {
        struct vhost_queue *q = &d->queues[i];
        if (q->has_addr && translate_rings(d, q) < 0) {
            q->has_addr = false;
            r = -EFAULT;
        }
    }
    int s = resume(d);
    return r < 0 ? r : s;
}

static int set_log_base(struct vhost_dev *d, struct message *m)
{
    if (m->n_fds != 1)
        return hvm_error(EPROTO, "vhost-user: dirty log without a descriptor");
    size_t len = m->p.log.mmap_size + m->p.log.mmap_offset;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[0], 0);
    if (map == MAP_FAILED)
        return hvm_error(errno, "vhost-user: cannot map the dirty log: %s", strerror(errno));
    quiesce(d);
    unmap_log(d);
    d->log_map = map;
    d->log_map_len = len;
    d->log = (uint8_t *)map + m->p.log.mmap_offset;
    d->log_len = m->p.log.mmap_size;
    return resume(d);
}

static struct vhost_queue *queue_of(struct vhost_dev *d, uint32_t index)
{
    if (index >= (uint32_t)d->n_queues) {
        hvm_error(EINVAL, "vhost-user: no queue %u", index);
        return NULL;
    }
    return &d->queues[index];
}

static int set_vring_addr(struct vhost_dev *d, struct message *m)
{
    struct vhost_queue *q = queue_of(d, m->p.addr.index);
    if (!q)
        return -EINVAL;
    quiesce(d);
    q->addr = m->p.addr;
    int r = translate_rings(d, q);
    q->has_addr = r == 0;
    if (r == 0) {
        q->log_used = q->addr.flags & VHOST_VRING_F_LOG;
        q->used_gpa = q->addr.log_guest_addr;
        /* Requests completed before a stop are in the used ring; where it
         * stands is ours to continue from. */
        q->used_idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
        q->signalled_valid = false;
    }
    int s = resume(d);
    return r < 0 ? r : s;
}

static int set_vring_fd(struct vhost_dev *d, struct message *m)
{
    uint32_t index = (uint32_t)(m->p.u64 & VHOST_USER_VRING_IDX_MASK);
    bool nofd = m->p.u64 & VHOST_USER_VRING_NOFD;
    struct vhost_queue *q = queue_of(d, index);
    if (!q)
        return -EINVAL;
    int fd = -1;
    if (!nofd) {
        if (m->n_fds != 1)
            return hvm_error(EPROTO, "vhost-user: queue descriptor missing");
        fd = m->fds[0];
        m->fds[0] = -1;
    }
    switch (m->h.request) {
    case VHOST_USER_SET_VRING_KICK:
        vhost_queue_stop(q);
        if (q->kick_fd >= 0)
            close(q->kick_fd);
        q->kick_fd = fd;
        q->kicked = fd >= 0;
        q->broken = false; /* a new start (after a reset of the guest's driver, say) */
        /* Without protocol features a ring runs as soon as it is kicked. */
        if (!vhost_has_feature(d, VHOST_USER_F_PROTOCOL_FEATURES))
            q->enabled = true;
        if (nofd)
            return hvm_error(ENOTSUP, "vhost-user: polling mode is not supported");
        return q->enabled ? vhost_queue_start(q) : 0;
    case VHOST_USER_SET_VRING_CALL:
        pthread_mutex_lock(&q->call_lock);
        if (q->call_fd >= 0)
            close(q->call_fd);
        q->call_fd = fd;
        /* A restarted ring may have completed requests and signalled the
         * descriptor of before the stop, which nobody watches any more:
         * one interrupt too many is harmless, one too few hangs the guest. */
        if (fd >= 0 && q->running) {
            uint64_t one = 1;
            ssize_t ignored = write(fd, &one, sizeof one);
            (void)ignored;
        }
        pthread_mutex_unlock(&q->call_lock);
        return 0;
    default: /* SET_VRING_ERR: we report no errors through it */
        if (q->err_fd >= 0)
            close(q->err_fd);
        q->err_fd = fd;
        return 0;
    }
}

static int set_vring_enable(struct vhost_dev *d, struct message *m)
{
    struct vhost_queue *q = queue_of(d, m->p.state.index);
    if (!q)
        return -EINVAL;
    q->enabled = m->p.state.num != 0;
    if (!q->enabled) {
        vhost_queue_stop(q);
        return 0;
    }
    return q->kicked && !q->running ? vhost_queue_start(q) : 0;
}

/* Stops the ring (after the request in progress) and says where the next
 * request would have been taken: the front-end saves it with the VM. */
static int get_vring_base(struct vhost_dev *d, struct message *m)
{
    struct vhost_queue *q = queue_of(d, m->p.state.index);
    if (!q)
        return -EINVAL;
    vhost_queue_stop(q);
    q->kicked = false;
    if (q->kick_fd >= 0)
        close(q->kick_fd);
    q->kick_fd = -1;
    struct vhost_user_vring_state st = {.index = m->p.state.index, .num = q->last_avail};
    return send_reply(d, m, &st, sizeof st);
}

static int get_config(struct vhost_dev *d, struct message *m)
{
    struct vhost_user_config c = m->p.config;
    if (c.size > VHOST_USER_CONFIG_MAX || m->h.size < offsetof(struct vhost_user_config, region) + c.size)
        return hvm_error(EPROTO, "vhost-user: bad configuration request");
    memset(c.region, 0, c.size);
    d->ops->get_config(d->opaque, c.offset, c.region, c.size);
    return send_reply(d, m, &c, (uint32_t)offsetof(struct vhost_user_config, region) + c.size);
}

static uint64_t protocol_features(void)
{
    return (1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD) |
           (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) | (1ull << VHOST_USER_PROTOCOL_F_CONFIG);
}

/* One message. 1: it was answered already (no ack needed); 0: done;
 * <0: failed (acked as failed if the front-end asked, else fatal). */
static int dispatch(struct vhost_dev *d, struct message *m)
{
    switch (m->h.request) {
    case VHOST_USER_GET_FEATURES:
        return reply_u64(d, m, d->ops->features | (1ull << VHOST_F_LOG_ALL) |
                                   (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) < 0 ? -EPIPE : 1;
    case VHOST_USER_SET_FEATURES: {
        quiesce(d);
        d->features = m->p.u64;
        return resume(d);
    }
    case VHOST_USER_GET_PROTOCOL_FEATURES:
        return reply_u64(d, m, protocol_features()) < 0 ? -EPIPE : 1;
    case VHOST_USER_SET_PROTOCOL_FEATURES:
        d->protocol_features = m->p.u64 & protocol_features();
        return 0;
    case VHOST_USER_GET_QUEUE_NUM:
        return reply_u64(d, m, (uint64_t)d->n_queues) < 0 ? -EPIPE : 1;
    case VHOST_USER_SET_OWNER:
    case VHOST_USER_RESET_OWNER:
    case VHOST_USER_SET_CONFIG: /* nothing in our configuration is writable */
        return 0;
    case VHOST_USER_SET_MEM_TABLE:
        return set_mem_table(d, m);
    case VHOST_USER_SET_LOG_BASE: {
        int r = set_log_base(d, m);
        /* With LOG_SHMFD the front-end waits for this reply. */
        return r < 0 ? r : send_reply(d, m, NULL, 0) < 0 ? -EPIPE : 1;
    }
    case VHOST_USER_SET_LOG_FD: /* we do not tell the front-end about log writes */
        return 0;
    case VHOST_USER_SET_VRING_NUM: {
        struct vhost_queue *q = queue_of(d, m->p.state.index);
        if (!q)
            return -EINVAL;
        if (m->p.state.num == 0 || m->p.state.num > VIRTQ_MAX_SIZE ||
            (m->p.state.num & (m->p.state.num - 1)))
            return hvm_error(EINVAL, "vhost-user: queue %u: bad ring size %u", m->p.state.index,
                             m->p.state.num);
        /* The rings were checked for the old size: ADDR must follow. */
        vhost_queue_stop(q);
        q->num = m->p.state.num;
        q->has_addr = false;
        return 0;
    }
    case VHOST_USER_SET_VRING_ADDR:
        return set_vring_addr(d, m);
    case VHOST_USER_SET_VRING_BASE: {
        struct vhost_queue *q = queue_of(d, m->p.state.index);
        if (!q)
            return -EINVAL;
        vhost_queue_stop(q);
        q->last_avail = (uint16_t)m->p.state.num;
        return 0;
    }
    case VHOST_USER_GET_VRING_BASE:
        return get_vring_base(d, m) < 0 ? -EPIPE : 1;
    case VHOST_USER_SET_VRING_KICK:
    case VHOST_USER_SET_VRING_CALL:
    case VHOST_USER_SET_VRING_ERR:
        return set_vring_fd(d, m);
    case VHOST_USER_SET_VRING_ENABLE:
        return set_vring_enable(d, m);
    case VHOST_USER_GET_CONFIG:
        return get_config(d, m) < 0 ? -EPIPE : 1;
    default:
        return hvm_error(ENOTSUP, "vhost-user: request %u not supported", m->h.request);
    }
}

int vhost_dev_init(struct vhost_dev *d, int fd, int n_queues, const struct vhost_device_ops *ops,
                   void *opaque)
{
    memset(d, 0, sizeof *d);
    d->fd = fd;
    d->ops = ops;
    d->opaque = opaque;
    d->n_queues = n_queues;
    for (int i = 0; i < n_queues; i++) {
        struct vhost_queue *q = &d->queues[i];
        q->dev = d;
        q->index = i;
        q->kick_fd = q->call_fd = q->err_fd = q->stop_fd = -1;
        pthread_mutex_init(&q->call_lock, NULL);
    }
    return 0;
}

int vhost_dev_serve(struct vhost_dev *d, int stop_fd)
{
    int r = 0;
    for (;;) {
        struct pollfd p[2] = {{d->fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        if (p[1].revents)
            break;
        struct message m;
        if ((r = recv_message(d->fd, &m)) < 0)
            break; /* the front-end is gone (QEMU exited) */
        int res = dispatch(d, &m);
        close_fds(&m);
        if (res == -EPIPE) {
            r = res;
            break;
        }
        bool ack = (m.h.flags & VHOST_USER_NEED_REPLY) &&
                   (d->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
        if (res <= 0 && ack) {
            if (reply_u64(d, &m, res < 0 ? 1 : 0) < 0) {
                r = -EPIPE;
                break;
            }
        } else if (res < 0) {
            /* Nobody to tell, and often the guest's doing (a ring outside
             * its memory, a bad ring size): the queue concerned stays
             * stopped, the others and the connection go on. */
            vhost_report(d, "%s", hvm_error_message());
        }
    }
    if (r == -EPIPE)
        r = 0;
    return r;
}

void vhost_dev_release(struct vhost_dev *d)
{
    for (int i = 0; i < d->n_queues; i++) {
        struct vhost_queue *q = &d->queues[i];
        vhost_queue_stop(q);
        if (q->kick_fd >= 0)
            close(q->kick_fd);
        if (q->call_fd >= 0)
            close(q->call_fd);
        if (q->err_fd >= 0)
            close(q->err_fd);
        if (q->stop_fd >= 0)
            close(q->stop_fd);
        pthread_mutex_destroy(&q->call_lock);
    }
    unmap_regions(d);
    unmap_log(d);
}
