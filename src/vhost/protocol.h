/* Wire formats of the vhost-user protocol and of the virtio structures a
 * vhost-user-blk backend touches: the split virtqueue and virtio-blk's
 * requests and configuration space.
 *
 * References: docs/interop/vhost-user.rst of QEMU (the protocol), the
 * VIRTIO 1.1 specification, sections 2.6 (split virtqueues) and 5.2 (block
 * device). Virtio 1.0 structures are little-endian; hvm runs on x86-64, so
 * they are read in place (see the static assertion in queue.c). */
#ifndef HVM_VHOST_PROTOCOL_H
#define HVM_VHOST_PROTOCOL_H

#include <stdint.h>

/* vhost-user requests (front-end to back-end) */
enum vhost_user_request {
    VHOST_USER_GET_FEATURES = 1,
    VHOST_USER_SET_FEATURES = 2,
    VHOST_USER_SET_OWNER = 3,
    VHOST_USER_RESET_OWNER = 4,
    VHOST_USER_SET_MEM_TABLE = 5,
    VHOST_USER_SET_LOG_BASE = 6,
    VHOST_USER_SET_LOG_FD = 7,
    VHOST_USER_SET_VRING_NUM = 8,
    VHOST_USER_SET_VRING_ADDR = 9,
    VHOST_USER_SET_VRING_BASE = 10,
    VHOST_USER_GET_VRING_BASE = 11,
    VHOST_USER_SET_VRING_KICK = 12,
    VHOST_USER_SET_VRING_CALL = 13,
    VHOST_USER_SET_VRING_ERR = 14,
    VHOST_USER_GET_PROTOCOL_FEATURES = 15,
    VHOST_USER_SET_PROTOCOL_FEATURES = 16,
    VHOST_USER_GET_QUEUE_NUM = 17,
    VHOST_USER_SET_VRING_ENABLE = 18,
    VHOST_USER_GET_CONFIG = 24,
    VHOST_USER_SET_CONFIG = 25,
};

#define VHOST_USER_VERSION 0x1u
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_REPLY 0x4u      /* flags: this is a reply */
#define VHOST_USER_NEED_REPLY 0x8u /* flags: ack wanted (REPLY_ACK) */

/* Device feature bits the protocol itself defines */
#define VHOST_F_LOG_ALL 26                 /* back-end logs its writes to guest memory */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits */
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD 1
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_CONFIG 9

/* SET_VRING_KICK/CALL/ERR payload: queue index, and this bit when no
 * descriptor comes with it (polling mode, which hvm does not offer) */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD 0x100u

/* SET_VRING_ADDR flags: log writes to the used ring */
#define VHOST_VRING_F_LOG 0x1u

/* The dirty log: one bit per page of guest-physical memory */
#define VHOST_LOG_PAGE 4096u

#define VHOST_USER_MAX_REGIONS 8
#define VHOST_USER_CONFIG_MAX 256

struct vhost_user_header {
    uint32_t request;
    uint32_t flags;
    uint32_t size; /* of the payload that follows */
};

struct vhost_user_vring_state {
    uint32_t index;
    uint32_t num;
};

struct vhost_user_vring_addr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc_user_addr; /* the three rings, as front-end virtual addresses */
    uint64_t used_user_addr;
    uint64_t avail_user_addr;
    uint64_t log_guest_addr; /* the used ring, as a guest-physical address */
};

struct vhost_user_region {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
};

struct vhost_user_memory {
    uint32_t nregions;
    uint32_t padding;
    struct vhost_user_region regions[VHOST_USER_MAX_REGIONS];
};

struct vhost_user_log {
    uint64_t mmap_size;
    uint64_t mmap_offset;
};

struct vhost_user_config {
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
    uint8_t region[VHOST_USER_CONFIG_MAX];
};

union vhost_user_payload {
    uint64_t u64;
    struct vhost_user_vring_state state;
    struct vhost_user_vring_addr addr;
    struct vhost_user_memory memory;
    struct vhost_user_log log;
    struct vhost_user_config config;
};

/* Virtio feature bits (device-independent) */
#define VIRTIO_F_NOTIFY_ON_EMPTY 24
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Split virtqueue (VIRTIO 1.1, 2.6) */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_USED_F_NO_NOTIFY 1
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_MAX_SIZE 32768

struct virtq_desc {
    uint64_t addr; /* guest-physical */
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* [num], then used_event */
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[]; /* [num], then avail_event */
};

/* Block device (VIRTIO 1.1, 5.2) */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20

struct virtio_blk_outhdr {
    uint32_t type;
    uint32_t ioprio;
    uint64_t sector;
};

struct virtio_blk_discard_write_zeroes {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

struct virtio_blk_config {
    uint64_t capacity; /* in 512-byte sectors */
    uint32_t size_max;
    uint32_t seg_max;
    struct {
        uint16_t cylinders;
        uint8_t heads;
        uint8_t sectors;
    } geometry;
    uint32_t blk_size;
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback;
    uint8_t unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
} __attribute__((packed));

#endif
