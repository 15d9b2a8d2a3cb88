/* An open VHD file: footer, dynamic header, BAT and a bitmap cache, with the
 * block-level read, write and allocation rules of the format. This layer
 * knows nothing of parents' contents: a differencing image only reports
 * which sectors it owns; disk/ stitches the chain together. */
#ifndef HVM_VHD_IMAGE_H
#define HVM_VHD_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "vhd/format.h"

enum vhd_run {
    VHD_RUN_DATA,   /* the sectors are in this file */
    VHD_RUN_ABSENT, /* not in this file: zeros (dynamic) or the parent's (differencing) */
};

struct vhd_bitmap_slot {
    uint32_t block;
    bool valid;
    bool dirty;
    uint8_t *bits;
};

struct file_lock;

struct vhd {
    int fd;
    char *path;
    bool read_only;
    struct vhd_footer footer;
    struct vhd_header header; /* dynamic and differencing only */
    uint64_t size;            /* virtual size (footer current size) */
    uint64_t end;             /* where the trailing footer lives: next allocation */
    uint64_t file_size;
    uint32_t *bat;            /* host order; VHD_BAT_UNUSED when absent */
    uint32_t bat_entries;
    uint32_t block_size;
    uint32_t block_sectors;
    uint32_t bitmap_bytes;    /* padded to whole sectors */
    uint64_t bat_dirty_lo, bat_dirty_hi; /* dirty BAT entry range [lo, hi) */
    struct vhd_bitmap_slot *cache;
    unsigned cache_slots;
    unsigned dirty_bitmaps;
    bool footer_from_copy;    /* the trailing footer was bad: the copy at 0 was used */
    bool lenient;             /* opened for check: record problems, do not refuse */
    struct file_lock *lock;   /* exclusive when writable (see util/filelock.h) */
};

enum vhd_open_flags {
    VHD_OPEN_READ_ONLY = 1 << 0,
    VHD_OPEN_LENIENT = 1 << 1, /* for check/repair: open what can be opened */
    /* Footer and header only, no BAT: for identity checks and re-pointing a
     * fresh child, in time that does not grow with the disk. No data I/O. */
    VHD_OPEN_HEADER_ONLY = 1 << 2,
    /* Read-only, holding a shared lock: read as the parent of a disk being
     * written, so nobody may write it meanwhile. (Writable opens always
     * hold the exclusive lock; other read-only opens hold none.) */
    VHD_OPEN_LOCK_SHARED = 1 << 3,
};

int vhd_open(const char *path, unsigned flags, struct vhd **out);
/* Flushes pending metadata (when writable) and frees. Returns the flush result. */
int vhd_close(struct vhd *v);

static inline bool vhd_is_sparse(const struct vhd *v)
{
    return v->footer.type != VHD_TYPE_FIXED;
}

/* The state of this file's sectors from offset: *run bytes (1..count). */
int vhd_status(struct vhd *v, uint64_t offset, uint64_t count, uint64_t *run,
               enum vhd_run *state);
/* Reads bytes that vhd_status reported as DATA (or zeros where absent). */
int vhd_read_own(struct vhd *v, void *buf, uint64_t count, uint64_t offset);
/* Writes whole sectors into this file, allocating blocks and marking bitmap
 * bits. For a dynamic disk, an all-zero write to an absent block is skipped. */
int vhd_write_own(struct vhd *v, const void *buf, uint64_t count, uint64_t offset);
/* The same from a list of at most IOV_MAX pieces (guest buffers, say). */
struct iovec;
int vhd_writev_own(struct vhd *v, const struct iovec *iov, int cnt, uint64_t offset);
/* Writes pending bitmaps and BAT entries after a barrier, then syncs. */
int vhd_flush(struct vhd *v);
/* Punches out whole allocated blocks' data in the range so that it reads
 * as zeros and frees host space; the blocks stay allocated. */
int vhd_discard(struct vhd *v, uint64_t count, uint64_t offset);

/* Block-level access used by check, compact and resize. */
/* Starts reading (posix_fadvise WILLNEED) the sector bitmaps of the
 * allocated blocks in the range of a dynamic or differencing disk: a cold copy then
 * finds them in the page cache. */
void vhd_advise(const struct vhd *v, uint64_t offset, uint64_t count);
uint64_t vhd_block_offset(const struct vhd *v, uint32_t block); /* bitmap's byte offset */
int vhd_bitmap_get(struct vhd *v, uint32_t block, const uint8_t **bits);
int vhd_bat_set(struct vhd *v, uint32_t block, uint32_t sector);

/* Rewrites the footer at the end and its copy at 0 (sparse disks), after
 * computing the checksum. The trailing one is written first: it is the one
 * readers trust. */
int vhd_footer_write(struct vhd *v);
int vhd_header_write(struct vhd *v);
/* Gives the image a new unique id (its content changed in place). */
int vhd_new_identity(struct vhd *v);

/* Parent description of a differencing disk. */
char *vhd_parent_name(const struct vhd *v);                 /* UTF-8, malloc'd */
char *vhd_locator_read(struct vhd *v, int index);           /* UTF-8, malloc'd or NULL */
/* Candidate parent paths in resolution order (relative locator, absolute
 * ones, the parent name's file name beside the child). NULL-terminated,
 * malloc'd strings; free with vhd_paths_free. */
char **vhd_parent_candidates(struct vhd *v);
void vhd_paths_free(char **paths);

struct vhd_parent_link {
    const char *path;   /* the parent as the child should find it */
    uint8_t id[16];
    uint32_t timestamp;
};
/* Points a differencing disk at a new parent: writes W2ku, W2ru and MacX
 * locators into free space, then the header in one write (the commit). */
int vhd_parent_set(struct vhd *v, const struct vhd_parent_link *link);

struct vhd_create_params {
    uint32_t type;
    uint64_t size;
    uint32_t block_size;                /* 0: 2 MiB */
    const struct vhd_parent_link *parent; /* differencing only */
};
int vhd_create(const char *path, const struct vhd_create_params *p);
/* The checks vhd_create makes first, with messages naming path. */
int vhd_create_check(const char *path, const struct vhd_create_params *p);
/* Reserve a fixed disk's data area [offset, offset+len) (create.c), with a
 * one-line error naming path when the filesystem is full (ENOSPC).
 * vhd_fixed_reserve works past the end of the file and keeps its size; it
 * returns 1 when the filesystem cannot do that: then reserve with
 * vhd_fixed_reserve_inside once the file has grown over the range. */
int vhd_fixed_reserve(int fd, const char *path, uint64_t offset, uint64_t len);
int vhd_fixed_reserve_inside(int fd, const char *path, uint64_t offset, uint64_t len);


/* Space management (space.c). */
struct vhd_block_span {
    uint32_t block;
    uint64_t start; /* bitmap's offset */
};
/* Allocated blocks sorted by file offset; *n receives the count. malloc'd. */
int vhd_blocks_sorted(struct vhd *v, struct vhd_block_span **out, uint32_t *n);
/* Copies a block (bitmap and data) to dest, syncs, then points the BAT at it
 * and syncs again: a crash leaves either the old or the new place in use. */
int vhd_block_relocate(struct vhd *v, uint32_t block, uint64_t dest);
/* Moves the last blocks into holes left below them, puts the footer right
 * after the last block and truncates the file. *freed gets the bytes saved.
 * data_start: where a differencing disk's block area began (blocks never
 * move below it, keeping reserved locator room); 0: at its first block. A
 * dynamic disk's blocks pack down to the end of its BAT. */
int vhd_space_reclaim(struct vhd *v, uint64_t data_start, uint64_t *freed);
/* Where block data may start: after the header, BAT and locators. */
uint64_t vhd_metadata_end(const struct vhd *v);
/* Bytes one block occupies: bitmap + data. */
static inline uint64_t vhd_block_span(const struct vhd *v)
{
    return v->bitmap_bytes + (uint64_t)v->block_size;
}

#endif
