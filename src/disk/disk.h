/* One interface over every image kind (raw file, VHD fixed, dynamic,
 * differencing). Each kind is one file that fills in a struct disk_ops; the
 * code above this layer never asks which kind it holds. */
#ifndef HVM_DISK_DISK_H
#define HVM_DISK_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Where a run of bytes of one layer comes from. */
enum disk_extent {
    DISK_EXTENT_DATA,   /* stored in this layer */
    DISK_EXTENT_PARENT, /* not stored here: read from the parent layer */
    DISK_EXTENT_ZERO,   /* not stored anywhere below here: reads as zeros */
};

struct disk;
struct iovec;

struct disk_ops {
    const char *kind; /* "raw", "fixed", "dynamic", "differencing" */
    /* Offsets and counts are byte-granular; each kind handles alignment. */
    int (*pread)(struct disk *d, void *buf, uint64_t count, uint64_t offset);
    /* At most IOV_MAX pieces; the bytes to write are their total. */
    int (*pwritev)(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t offset);
    int (*flush)(struct disk *d);
    /* Forget data in a range (may do nothing): whole blocks of it then read
     * as zeros (VHD layers keep owning them, so no parent shows through),
     * the rest as before. */
    int (*discard)(struct disk *d, uint64_t count, uint64_t offset);
    /* This layer only: the state of the run starting at offset, and its
     * length (1..count bytes). Runs are 512-byte granular except at the end. */
    int (*block_status)(struct disk *d, uint64_t offset, uint64_t count,
                        uint64_t *run, enum disk_extent *state);
    /* Optional, for serving without copying: like block_status, and for a
     * DATA run also the file and byte offset that hold it (the run ends
     * where the bytes stop being contiguous in that file). */
    int (*locate)(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                  enum disk_extent *state, int *fd, uint64_t *file_offset);
    /* Optional: the range will be read soon; start reading what this layer
     * needs to answer for it (a VHD's sector bitmaps) without waiting. */
    void (*advise)(struct disk *d, uint64_t offset, uint64_t count);
    void (*close)(struct disk *d);
};

struct disk {
    const struct disk_ops *ops;
    char *path;
    uint64_t size;
    bool read_only;
    struct disk *parent; /* owned; differencing layers only */
    unsigned depth;      /* 0 for the layer opened, parent is depth+1 */
    void *priv;          /* the kind's own state */
};

enum disk_open_flags {
    DISK_OPEN_READ_ONLY = 1 << 0,
    DISK_OPEN_NO_PARENT = 1 << 1, /* do not open a differencing disk's parent */
    DISK_OPEN_RAW = 1 << 2,       /* treat any file as raw bytes */
    DISK_OPEN_FORCE = 1 << 3,     /* write even a disk protected as a parent */
    DISK_OPEN_LENIENT = 1 << 4,   /* open damaged images for check/repair */
    /* Identity only, the whole chain: footers and headers are read and every
     * link checked, no BAT. The disk must not be read or written. */
    DISK_OPEN_HEADER_ONLY = 1 << 5,
    /* Read-only, holding a shared lock so that nobody writes the file while
     * it is open (see docs/locks.md). A writable open holds the exclusive
     * lock and its parents shared ones; other read-only opens lock nothing,
     * so that inspecting a disk in use works. A conflict is -EBUSY. */
    DISK_OPEN_LOCK_SHARED = 1 << 6,
};

#define DISK_MAX_DEPTH 64

/* Opens path, probing its kind; a differencing disk opens its parent chain
 * read-only, checking identity at each link (see chain.c). */
int disk_open(const char *path, unsigned flags, struct disk **out);
void disk_close(struct disk *d);

int disk_pread(struct disk *d, void *buf, uint64_t count, uint64_t offset);
int disk_pwrite(struct disk *d, const void *buf, uint64_t count, uint64_t offset);
/* The same from a list of at most IOV_MAX pieces, without copying them. */
int disk_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t offset);
int disk_flush(struct disk *d);
int disk_discard(struct disk *d, uint64_t count, uint64_t offset);
int disk_block_status(struct disk *d, uint64_t offset, uint64_t count,
                      uint64_t *run, enum disk_extent *state);

/* Through the whole chain: is the run at offset data somewhere (true) or
 * zeros everywhere (false)? *run is its length. */
int disk_chain_status(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                      bool *data);

/* Through the whole chain: where the run at offset is stored, as a file
 * descriptor and byte offset (*fd < 0: it reads as zeros). -ENOTSUP when a
 * layer cannot say; readers then use disk_pread. The descriptor belongs to
 * the layer and is valid while the chain is open. */
int disk_locate(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run, int *fd,
                uint64_t *file_offset);

/* Hints that [offset, offset+count) of the whole chain will be read soon:
 * each layer that can starts reading what it needs to find the bytes
 * (posix_fadvise WILLNEED), so that a copy on a cold cache does not wait
 * for one small metadata read after another. Never fails. */
void disk_advise(struct disk *d, uint64_t offset, uint64_t count);

/* Writes zeros over [offset, offset+count). A run that already reads as
 * zeros through the whole chain is left alone: that keeps dynamic and
 * differencing disks sparse. (Discarding instead would be wrong for a
 * differencing layer, where discarded sectors show the parent.) */
int disk_write_zeroes(struct disk *d, uint64_t offset, uint64_t count);

/* Reads count bytes at offset of d's own data where it has it and of the
 * parent otherwise. Used by the kinds themselves: resolves runs per layer so
 * that a large read becomes few large preads. */
int disk_read_layered(struct disk *d, void *buf, uint64_t count, uint64_t offset,
                      int (*read_own)(struct disk *, void *, uint64_t, uint64_t));

/* The layers met so far while a kind opens a chain, one per depth. */
struct disk_chain_seen {
    dev_t dev;
    ino_t ino;
    const char *path;
};
/* Enters path as the layer at depth of the chain being opened (seen holds
 * DISK_MAX_DEPTH entries): an error if the chain would be deeper than that
 * or loops back to a layer met before; st gets the file's status. */
int disk_chain_enter(const char *path, unsigned depth, struct disk_chain_seen *seen,
                     struct stat *st);

/* Kinds, for disk_open's probe and for tests. */
int disk_raw_open(const char *path, unsigned flags, struct disk **out);
int disk_vhd_open(const char *path, unsigned flags, struct disk **out);
/* Is the file a VHD (footer cookie at the end or at offset 0)? */
bool disk_is_vhd(const char *path);
/* The VHD image behind a disk of a VHD kind, NULL for other kinds. */
struct vhd *disk_vhd_image(struct disk *d);
/* VHDX (disk/vhdx.c): read-only for now; a writable open is -EROFS. */
int disk_vhdx_open(const char *path, unsigned flags, struct disk **out);
bool disk_is_vhdx(const char *path);
/* The VHDX image behind a disk of a VHDX kind, NULL for other kinds. */
struct vhdx *disk_vhdx_image(struct disk *d);
/* A stand-in for the chain at path (size bytes) that opens nothing until
 * disk_deferred_activate opens it with flags; before that, reads and writes
 * fail with -EAGAIN (deferred.c: a live migration's destination). Activating
 * another kind of disk does nothing. */
int disk_deferred_new(const char *path, uint64_t size, struct disk **out);
int disk_deferred_activate(struct disk *d, unsigned flags);
/* Is the file protected as a parent (no write permission bits)? */
bool disk_file_protected(const char *path);

#endif
