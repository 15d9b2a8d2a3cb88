/* An open VHDX file (Microsoft "VHDX Format Specification" v1.0): the file
 * type identifier, the current header, the region table, the metadata items,
 * the BAT, and the log replayed in memory. Read-only for now. This layer
 * knows nothing of parents' contents or of VHD: a differencing image only
 * reports which sectors it holds; disk/ stitches the chain together. */
#ifndef HVM_VHDX_IMAGE_H
#define HVM_VHDX_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHDX_MiB (1024u * 1024u)
#define VHDX_MAX_SIZE (64ull << 40) /* spec 3.5: 64 TiB */

/* Payload BAT entry states (spec 2.5.1.1). */
enum vhdx_block_state {
    VHDX_BLOCK_NOT_PRESENT = 0,
    VHDX_BLOCK_UNDEFINED = 1,
    VHDX_BLOCK_ZERO = 2,
    VHDX_BLOCK_UNMAPPED = 3,
    VHDX_BLOCK_FULLY_PRESENT = 6,
    VHDX_BLOCK_PARTIALLY_PRESENT = 7,
};
/* Sector bitmap BAT entry states (spec 2.5.1.2). */
#define VHDX_BITMAP_NOT_PRESENT 0
#define VHDX_BITMAP_PRESENT 6

enum vhdx_log_state {
    VHDX_LOG_CLEAN,    /* log GUID is zero: nothing to replay */
    VHDX_LOG_EMPTY,    /* log GUID set but no valid sequence: nothing to replay */
    VHDX_LOG_REPLAYED, /* a sequence was replayed in memory; the file is unchanged */
};

/* A write the log describes, applied over the file's bytes on every read. */
struct vhdx_overlay {
    uint64_t offset, length;
    uint8_t *data; /* length bytes; NULL: zeros */
};

struct vhdx_locator {
    char *parent_linkage, *parent_linkage2; /* "{GUID}" text as stored */
    char *relative_path, *volume_path, *absolute_win32_path;
};

enum vhdx_run {
    VHDX_RUN_DATA,   /* in this file at *file_offset */
    VHDX_RUN_ZERO,   /* reads as zeros, whatever the parent holds */
    VHDX_RUN_PARENT, /* not in this file: the parent's (differencing only) */
};

struct vhdx {
    int fd;
    char *path;
    uint64_t file_size;
    uint64_t end;         /* file_size, or larger where the log extends it */
    char *creator;        /* file type identifier's creator, UTF-8 */
    int header_index;     /* 0 or 1: the current header */
    uint64_t sequence;
    uint8_t file_write_guid[16], data_write_guid[16], log_guid[16];
    uint32_t log_length;
    uint64_t log_offset;
    uint64_t bat_offset, meta_offset;
    uint32_t bat_length, meta_length;
    uint32_t block_size;
    bool leave_allocated, has_parent;
    uint64_t size;        /* virtual disk size */
    uint32_t logical_sector, physical_sector;
    uint8_t page83[16];
    bool has_page83;
    struct vhdx_locator locator;
    uint8_t locator_type[16];
    uint64_t chunk_ratio, data_blocks, bitmap_blocks, bat_entries;
    uint64_t *bat;
    enum vhdx_log_state log_state;
    unsigned log_entries;     /* entries replayed */
    uint64_t log_head_sequence;
    struct vhdx_overlay *overlay;
    size_t overlays;
    uint64_t bitmap_chunk;    /* chunk of the cached sector bitmap, or UINT64_MAX */
    uint8_t *bitmap;          /* 1 MiB */
};

/* Is the file a VHDX ("vhdxfile" at offset 0)? */
bool vhdx_probe(const char *path);

/* Opens path read-only, validating everything the reader relies on; any
 * malformed field is an error naming the file and the field. With
 * header_only the BAT is not read (identity checks). */
int vhdx_open(const char *path, bool header_only, struct vhdx **out);
void vhdx_close(struct vhdx *v);

/* The file's bytes as the log leaves them (zeros past the end of the file
 * up to where the log extends it). */
int vhdx_file_read(struct vhdx *v, void *buf, size_t len, uint64_t offset);

/* Where the run at offset (at most count bytes, inside the disk) is. */
int vhdx_map(struct vhdx *v, uint64_t offset, uint64_t count, uint64_t *run,
             enum vhdx_run *state, uint64_t *file_offset);

/* The payload BAT entry of a block. */
static inline uint64_t vhdx_payload_entry(const struct vhdx *v, uint64_t block)
{
    return v->bat[block + block / v->chunk_ratio];
}

/* Windows GUID text ("xxxxxxxx-xxxx-..."; the first three fields are stored
 * little-endian) into a 37-byte buffer. */
void vhdx_guid_format(const uint8_t g[16], char out[37]);
/* Parses a GUID with or without braces; -EINVAL when it is not one. */
int vhdx_guid_parse(const char *text, uint8_t out[16]);

/* Log replay (log.c): scans the log for the active sequence and records its
 * writes as overlays. The file is never written. */
int vhdx_log_replay(struct vhdx *v);

/* Consistency check of an open image (check.c): every problem found is
 * passed to report; the count is returned (or -errno). A log awaiting
 * replay is no problem: it is how VHDX survives a crash. */
int vhdx_check(struct vhdx *v, void (*report)(void *opaque, const char *problem),
               void *opaque);

#endif
