/* A vhost-user-blk back-end over one struct disk.
 *
 * QEMU (the front-end) connects with `-device vhost-user-blk-pci` and
 * shares the guest's memory with us (its RAM must be a shared memfd); the
 * guest's virtio-blk requests are then served straight between the disk's
 * files and guest memory, one thread per queue, with no copy through
 * QEMU and no block layer in between. What the worker gains over NBD is
 * that hop; see README "Running VMs".
 *
 * The device offers VHOST_F_LOG_ALL and logs every write into guest memory
 * to the dirty log the front-end gives it, so that QEMU can save the VM's
 * memory (it refuses to migrate a vhost device that cannot log). */
#ifndef HVM_VHOST_BLK_H
#define HVM_VHOST_BLK_H

#include <stdbool.h>
#include <stdint.h>

struct disk;
struct vhost_blk;

/* How the device reaches its disk: acquire returns it locked for one
 * request, release unlocks. Lets the disk be shared with another server
 * and switched (an online checkpoint) between requests. */
struct vhost_blk_disk_access {
    struct disk *(*acquire)(void *opaque);
    void (*release)(void *opaque);
    void *opaque;
};

struct vhost_blk_options {
    bool read_only; /* advertise VIRTIO_BLK_F_RO; writes fail */
    int queues;     /* 1 to 8 request queues, one thread each */
    const char *serial; /* GET_ID, up to 20 bytes */
    /* Problems nobody asked about (a guest that breaks a ring's rules, a
     * message refused without a reply): one line each, from any thread.
     * Optional. */
    void (*log)(void *opaque, const char *message);
    void *log_opaque;
    /* Allocate all of the guest's memory in the background once it is
     * shared with us (fallocate on the memfds). See vhost_dev's populate. */
    bool populate_memory;
};

/* Creates a device for a disk of size bytes (a multiple of 512). */
int vhost_blk_new(const struct vhost_blk_disk_access *access, uint64_t size,
                  const struct vhost_blk_options *opts, struct vhost_blk **out);

/* Serves the front-end connected on fd (which the device then owns) until
 * it disconnects or vhost_blk_stop: 0, or <0 if the protocol failed. Call
 * once. The queues are stopped when it returns. */
int vhost_blk_run(struct vhost_blk *b, int fd);

/* Asks vhost_blk_run to return. Async-signal-safe, any number of times. */
void vhost_blk_stop(struct vhost_blk *b);

/* Call after vhost_blk_run has returned (or if it never ran). NULL is
 * allowed. Does not touch the disk. */
void vhost_blk_free(struct vhost_blk *b);

#endif
