/* Whole-disk operations on chains: convert, merge, rebase, set-parent,
 * compact, resize. Each is crash-safe in the sense described beside it. */
#ifndef HVM_DISK_OPS_H
#define HVM_DISK_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "disk/disk.h"
#include "disk/foreign.h"

typedef void (*disk_progress_fn)(void *opaque, uint64_t done, uint64_t total);

struct disk_progress {
    disk_progress_fn fn;
    void *opaque;
};

static inline void disk_progress_report(const struct disk_progress *p, uint64_t done,
                                        uint64_t total)
{
    if (p && p->fn)
        p->fn(p->opaque, done, total);
}

enum disk_format {
    DISK_FORMAT_RAW,
    DISK_FORMAT_FIXED,
    DISK_FORMAT_DYNAMIC,
};

/* A copy of selected runs from src to dst at the same offsets (pipeline.c).
 * pick says, for the run at off (at most count bytes), how long it is and
 * whether to copy it; it is called from the reading side only. */
struct disk_copy_plan {
    struct disk *src, *dst;
    uint64_t size;
    int (*pick)(void *opaque, uint64_t off, uint64_t count, uint64_t *run, bool *copy);
    void *opaque;
    bool skip_zero; /* dst reads as zeros: all-zero 4 KiB pieces are not written */
    const struct disk_progress *progress;
};
int disk_copy_runs(const struct disk_copy_plan *plan);

/* Copies every byte of src (a whole chain, flattened) into dst, writing only
 * runs that hold data somewhere in the chain. dst must read as zeros. */
int disk_copy(struct disk *src, struct disk *dst, const struct disk_progress *pr);

/* Creates dst in the given format from src (raw or any VHD chain). The
 * result is written under a temporary name and renamed into place. */
int disk_convert(const char *src, const char *dst, enum disk_format format,
                 uint32_t block_size, const struct disk_progress *pr);

/* What convert reads its source as (hvm vhd convert --from-format). */
struct disk_source_format {
    enum {
        DISK_FROM_PROBE,   /* a VHD or raw; a foreign image is refused, naming the option */
        DISK_FROM_AUTO,    /* a VHD, raw, or the foreign format its magic names */
        DISK_FROM_RAW,     /* its bytes, whatever they look like */
        DISK_FROM_FOREIGN, /* an image of format foreign, refused if it is not one */
    } how;
    enum disk_foreign foreign;
};

/* What convert does with src read as from says (NULL: DISK_FROM_PROBE):
 * *foreign is the format to convert through qemu-img, or NONE to open src
 * as a disk (raw with DISK_FROM_RAW). Refusals (a foreign image not asked
 * for, VHDX, a format that is not src's) are errors naming the file. */
int disk_source_resolve(const char *src, const struct disk_source_format *from,
                        enum disk_foreign *foreign);

/* disk_convert with the source read as from says (NULL: DISK_FROM_PROBE).
 * A foreign image is written into a sparse raw temporary beside dst by
 * qemu-img first (disk/foreign.h); VHDX is refused. */
int disk_convert_from(const char *src, const struct disk_source_format *from, const char *dst,
                      enum disk_format format, uint32_t block_size,
                      const struct disk_progress *pr);

/* Creates a differencing child of parent and, unless no_protect, marks the
 * parent read-only on disk. */
int disk_diff_create(const char *parent, const char *child, bool no_protect);

/* Gives the parent a new unique id (its content is about to change, so any
 * other child of it fails the identity check instead of reading wrong data,
 * even after a crash) and re-links the child to it, merges the child's own
 * sectors into the parent, then removes the child.
 * A parent protected read-only may have other children: refused unless
 * force. The child reads the same throughout the copy. */
int disk_merge(const char *child, bool force, const struct disk_progress *pr);
/* The unique id a merge of child into its parent gives the parent: derived
 * from the id the child expects and the child's own id, so that a merge
 * interrupted after the parent took it and before the child was re-linked
 * can be told from a foreign parent (disk_merge_interrupted) and finished
 * by running the merge again. */
struct vhd;
void disk_merge_identity(const struct vhd *child, uint8_t out[16]);
/* Does parent carry the id that merging child into it gives? The child then
 * still reads right: the merge only ever writes sectors the child owns. */
bool disk_merge_interrupted(const struct vhd *child, const struct vhd *parent);

/* Merges a child into its parent, then the parent becomes the child: it
 * takes the child's unique id, time stamp, mode and (by one rename) name, so
 * the file at child reads as the child did, its parent is the old parent's
 * parent, and disks built on the child still find it. The cheap way to drop
 * a big layer under a small child: only the child's own sectors are copied.
 * The caller vouches that the child is the parent's only reader. Safe to run
 * again after a crash at any point, and a no-op once done (parent gone,
 * child there). */
int disk_merge_up(const char *child, const char *parent, const struct disk_progress *pr);

/* Copies into child the sectors it reads from the layers between it and
 * onto (a path in its chain), or from the whole chain when onto is NULL
 * (standalone), then re-points it with one header write. */
int disk_rebase(const char *child, const char *onto, const struct disk_progress *pr);

/* Points child at parent (a moved or renamed parent). Refuses a parent of
 * another identity or size unless ignore_id (size must always match). */
int disk_set_parent(const char *child, const char *parent, bool ignore_id);

/* Releases blocks that read as zeros (in a differencing disk only where the
 * parent reads zeros too), moves tail blocks into the holes and truncates.
 * *freed receives the bytes released. */
int disk_compact(const char *path, uint64_t *freed, const struct disk_progress *pr);

/* Grows a fixed or dynamic disk. A disk protected as a parent is refused
 * unless force. */
int disk_resize(const char *path, uint64_t size, bool force);

#endif
