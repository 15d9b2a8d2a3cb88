/* What the vhost-user protocol (device.c), the virtqueues (queue.c) and the
 * block device (blk.c) share. Not for use outside src/vhost. */
#ifndef HVM_VHOST_INTERNAL_H
#define HVM_VHOST_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost/protocol.h"

#define VHOST_MAX_QUEUES 8
/* Segments of one request we accept (data segments plus header and
 * status); the device advertises fewer (seg_max). */
#define VHOST_MAX_SEGMENTS 1024

struct vhost_dev;
struct vhost_queue;

/* One guest buffer of a request, mapped into our address space. */
struct vhost_segment {
    uint8_t *host;
    uint64_t gpa; /* for the dirty log */
    uint32_t len;
    bool writable; /* device-writable (the guest reads it) */
};

/* A request popped from a virtqueue: its descriptor chain as segments. */
struct vhost_request {
    uint16_t head;
    int n;
    struct vhost_segment seg[VHOST_MAX_SEGMENTS];
};

/* Between the protocol and a device kind (only virtio-blk here). */
struct vhost_device_ops {
    uint64_t features;     /* virtio feature bits the device offers */
    /* Copies the device's configuration space from offset into buf. */
    void (*get_config)(void *opaque, uint32_t offset, uint8_t *buf, uint32_t len);
    /* Serves one request; returns how many bytes it wrote into the
     * request's device-writable segments (the used length). */
    uint32_t (*handle)(void *opaque, struct vhost_queue *q, struct vhost_request *req);
};

struct vhost_region {
    uint64_t gpa, size; /* guest-physical */
    uint64_t uaddr;     /* the front-end's virtual address of it */
    uint8_t *host;      /* where we see it */
    void *map;          /* the mapping (host - mmap_offset) */
    size_t map_len;
};

struct vhost_queue {
    struct vhost_dev *dev;
    int index;
    unsigned num; /* ring size */
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    struct vhost_user_vring_addr addr; /* as given, kept to re-translate */
    bool has_addr;
    uint64_t used_gpa; /* for the dirty log, when log_used */
    bool log_used;
    uint16_t last_avail; /* next entry of the avail ring to take */
    uint16_t used_idx;   /* our copy of used->idx */
    uint16_t signalled_used;
    bool signalled_valid;

    int kick_fd, err_fd;
    int call_fd; /* replaced at any time by the front-end: under call_lock */
    pthread_mutex_t call_lock;
    bool enabled; /* SET_VRING_ENABLE (or no protocol features) */
    bool kicked;  /* has a kick descriptor: the ring is started */
    bool running; /* its thread is up */
    bool broken;  /* the guest broke the ring's rules: not served until restarted */
    pthread_t thread;
    int stop_fd; /* eventfd: wakes the thread to stop */
    atomic_bool stopping;
};

struct vhost_dev {
    int fd; /* the vhost-user socket */
    const struct vhost_device_ops *ops;
    void *opaque;
    /* Where problems go that nobody asked about (see vhost_blk_options). */
    void (*report)(void *opaque, const char *message);
    void *report_opaque;
    /* Allocate the guest memory's pages, once, in a background thread:
     * a page of a shared memfd that nobody touched is allocated when it
     * is first read, and QEMU reads every page when it saves memory, with
     * the guest paused (checkpoints, save): that cost belongs elsewhere. */
    bool populate, populated;
    int n_queues;
    uint64_t features; /* acked by the front-end */
    uint64_t protocol_features;

    struct vhost_region regions[VHOST_USER_MAX_REGIONS];
    int n_regions;

    uint8_t *log; /* dirty bitmap, when logging (VHOST_F_LOG_ALL) */
    void *log_map;
    size_t log_len, log_map_len;

    struct vhost_queue queues[VHOST_MAX_QUEUES];
};

static inline bool vhost_has_feature(const struct vhost_dev *d, unsigned bit)
{
    return (d->features >> bit) & 1;
}

/* Guest-physical address to our pointer; *len is cut to what is
 * contiguous there. NULL when no region holds gpa. */
uint8_t *vhost_gpa_to_host(struct vhost_dev *d, uint64_t gpa, uint64_t *len);
/* Front-end virtual address (ring addresses) to our pointer, or NULL. */
uint8_t *vhost_uaddr_to_host(struct vhost_dev *d, uint64_t uaddr, uint64_t len);
/* Reports a problem through d->report (formatted). */
void vhost_report(struct vhost_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Marks guest-physical pages written, when the front-end logs. */
void vhost_log_write(struct vhost_dev *d, uint64_t gpa, uint64_t len);

/* device.c: the protocol on the socket fd, for a device with n_queues. */
int vhost_dev_init(struct vhost_dev *d, int fd, int n_queues, const struct vhost_device_ops *ops,
                   void *opaque);
/* Answers messages until the front-end goes away (0) or stop_fd becomes
 * readable (0), or the protocol fails (<0). */
int vhost_dev_serve(struct vhost_dev *d, int stop_fd);
/* Stops the queues, closes their descriptors, unmaps guest memory. */
void vhost_dev_release(struct vhost_dev *d);

/* queue.c: the queue's thread runs while the ring is kicked and enabled. */
int vhost_queue_start(struct vhost_queue *q);
/* Stops the thread after the request it is serving, if running. */
void vhost_queue_stop(struct vhost_queue *q);
#endif
