/* Operations that change how layers of a chain relate: diff (a new child),
 * merge (a child into its parent), rebase (a child onto an ancestor, or
 * standalone) and set-parent (re-point at a moved parent). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/ops.h"
#include "util/crashpoint.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/sha256.h"
#include "util/uuid.h"
#include "vhd/image.h"


static uint32_t vhd_time_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0 || st.st_mtime < VHD_EPOCH_OFFSET)
        return 0;
    return (uint32_t)(st.st_mtime - VHD_EPOCH_OFFSET);
}

static int need_vhd(struct disk *d, struct vhd **v)
{
    *v = disk_vhd_image(d);
    if (!*v)
        return hvm_error(EINVAL, "%s: not a VHD", d->path);
    return 0;
}

static int need_diff(struct disk *d, struct vhd **v)
{
    int r = need_vhd(d, v);
    if (r == 0 && (*v)->footer.type != VHD_TYPE_DIFF)
        return hvm_error(EINVAL, "%s: not a differencing disk", d->path);
    return r;
}

int disk_diff_create(const char *parent_path, const char *child_path, bool no_protect)
{
    struct disk *p;
    struct vhd *pv;
    /* The whole chain's identity is checked, but no BAT is read: taking a
     * checkpoint costs the same for a 1 GiB and a 2 TiB disk. Locked shared:
     * a layer that another process still writes must not become a parent. */
    int r = disk_open(parent_path,
                      DISK_OPEN_READ_ONLY | DISK_OPEN_HEADER_ONLY | DISK_OPEN_LOCK_SHARED, &p);
    if (r < 0)
        return r;
    if ((r = need_vhd(p, &pv)) < 0) {
        disk_close(p);
        return hvm_error(EINVAL, "%s: a parent must be a VHD (convert it first)", parent_path);
    }
    struct vhd_parent_link link = {.path = parent_path, .timestamp = vhd_time_of(parent_path)};
    memcpy(link.id, pv->footer.unique_id, 16);
    struct vhd_create_params cp = {
        .type = VHD_TYPE_DIFF,
        .size = p->size,
        .block_size = vhd_is_sparse(pv) ? pv->block_size : 0,
        .parent = &link,
    };
    r = vhd_create(child_path, &cp);
    disk_close(p);
    if (r == 0 && !no_protect) {
        struct stat st;
        if (stat(parent_path, &st) == 0 && chmod(parent_path, st.st_mode & ~0222) < 0)
            r = hvm_error(errno, "%s: could not mark read-only: %s", parent_path, strerror(errno));
    }
    return r;
}

/* Copies the runs that `pick` selects from src's view into dst, chunk by chunk. */
typedef int (*run_picker)(struct disk *child, uint64_t off, uint64_t count, uint64_t *run,
                          bool *copy, void *opaque);

struct picker_ctx {
    run_picker pick;
    struct disk *child;
    void *opaque;
};

static int pick_adapter(void *opaque, uint64_t off, uint64_t count, uint64_t *run, bool *copy)
{
    struct picker_ctx *c = opaque;
    return c->pick(c->child, off, count, run, copy, c->opaque);
}

static int copy_runs(struct disk *child, struct disk *dst, struct disk *src, run_picker pick,
                     void *opaque, const struct disk_progress *pr)
{
    struct picker_ctx ctx = {pick, child, opaque};
    struct disk_copy_plan plan = {
        .src = src, .dst = dst, .size = child->size, .pick = pick_adapter, .opaque = &ctx,
        .progress = pr,
    };
    return disk_copy_runs(&plan);
}

static int pick_own(struct disk *child, uint64_t off, uint64_t count, uint64_t *run,
                    bool *copy, void *opaque)
{
    (void)opaque;
    enum disk_extent st;
    int r = disk_block_status(child, off, count, run, &st);
    *copy = st == DISK_EXTENT_DATA;
    return r;
}

void disk_merge_identity(const struct vhd *child, uint8_t out[16])
{
    /* A name-based id (RFC 9562 version 8): SHA-256 of a tag, the id the
     * child expects and the child's own id. Merging another child, or this
     * one again once re-linked, gives another id. */
    uint8_t in[9 + 32], digest[32];
    memcpy(in, "hvm-merge", 9);
    memcpy(in + 9, child->header.parent_id, 16);
    memcpy(in + 25, child->footer.unique_id, 16);
    sha256_bytes(in, sizeof in, digest);
    memcpy(out, digest, 16);
    out[6] = (uint8_t)((out[6] & 0x0F) | 0x80);
    out[8] = (uint8_t)((out[8] & 0x3F) | 0x80);
}

bool disk_merge_interrupted(const struct vhd *child, const struct vhd *parent)
{
    uint8_t id[16];
    if (child->footer.type != VHD_TYPE_DIFF)
        return false;
    disk_merge_identity(child, id);
    return memcmp(parent->footer.unique_id, id, 16) == 0;
}

int disk_merge(const char *child_path, bool force, const struct disk_progress *pr)
{
    struct disk *child, *parent = NULL;
    struct vhd *cv, *pv;
    /* Writable (its header is re-linked below), even if protected: its own
     * content does not change. */
    int r = disk_open(child_path, DISK_OPEN_FORCE, &child);
    if (r < 0)
        return r;
    if ((r = need_diff(child, &cv)) < 0)
        goto out;
    const char *ppath = child->parent->path;
    if (disk_file_protected(ppath) && !force) {
        r = hvm_error(EPERM, "%s: parent %s is protected read-only, so other differencing "
                      "disks may depend on it and merging would break them; use --force "
                      "if %s is its only child", child_path, ppath, child_path);
        goto out;
    }
    if ((r = disk_open(ppath, DISK_OPEN_FORCE, &parent)) < 0 || (r = need_vhd(parent, &pv)) < 0)
        goto out;
    /* 1. The parent's content is about to change: a new identity first, so
     *    that any other child of it fails the identity check instead of
     *    reading a half-merged or merged parent, whenever a crash comes;
     *    then the child re-linked to that identity (one header write).
     *    The new id is derived from (old parent id, child id), and the
     *    parent's write is durable before the child's, so every crash
     *    leaves one of: both as before; the parent with the derived id and
     *    the child expecting the old one, which the chain open accepts for
     *    this child only (disk_merge_interrupted) and a re-run of the merge
     *    recognises, deriving the same id; both re-linked. Never the child
     *    ahead of its parent. */
    uint8_t id[16];
    disk_merge_identity(cv, id);
    memcpy(pv->footer.unique_id, id, 16);
    if ((r = vhd_footer_write(pv)) < 0)
        goto out;
    hvm_crash_point("merge-parent-id");
    if ((r = file_sync(pv->fd, pv->path)) < 0)
        goto out;
    hvm_crash_point("merge-parent-synced");
    memcpy(cv->header.parent_id, id, 16);
    if ((r = vhd_header_write(cv)) < 0)
        goto out;
    hvm_crash_point("merge-child-linked");
    if ((r = file_sync(cv->fd, cv->path)) < 0)
        goto out;
    hvm_crash_point("merge-identity-done");
    /* 2. Copy the child's own sectors into the parent. The child still owns
     *    them, so it reads the same throughout; a crash here leaves the
     *    child intact and the merge can simply be run again. */
    if ((r = copy_runs(child, parent, child, pick_own, NULL, pr)) < 0 ||
        (r = disk_flush(parent)) < 0)
        goto out;
    hvm_crash_point("merge-copied");
    /* 3. Retire the child: from here on the parent holds the merged data.
     *    Closed first, so that the detached close is the last one. */
    disk_close(child);
    child = NULL;
    if ((r = unlink_detached(AT_FDCWD, child_path)) < 0)
        goto out;
    r = path_sync_dir(child_path);
out:
    disk_close(parent);
    disk_close(child);
    return r;
}

/* Merge-up: the parent absorbs the child's own sectors and then becomes
 * the child: its identity (unique id and time stamp), its mode and, by one
 * rename, its name. Whatever refers to the child (differencing disks above
 * it, by locator and id) finds the same name, identity and content before
 * and after. The only reader of the parent must be the child. */
int disk_merge_up(const char *child_path, const char *parent_path, const struct disk_progress *pr)
{
    struct stat cst;
    if (access(parent_path, F_OK) < 0 && errno == ENOENT && stat(child_path, &cst) == 0)
        return 0; /* done before: the merged parent already took the child's place */
    struct disk *child = NULL, *parent = NULL;
    struct vhd *cv, *pv;
    /* The child alone: its own sectors are all that is copied, and a run of
     * this step after a crash must not depend on its chain opening. */
    int r = disk_open(child_path, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &child);
    if (r < 0)
        return r;
    if ((r = need_diff(child, &cv)) < 0 || (r = disk_open(parent_path, DISK_OPEN_FORCE, &parent)) < 0 ||
        (r = need_vhd(parent, &pv)) < 0)
        goto out;
    /* Already carrying the child's identity: a run that was killed between
     * taking it and the rename; the copy is complete. */
    bool copied = memcmp(cv->footer.unique_id, pv->footer.unique_id, 16) == 0;
    if ((!copied && memcmp(cv->header.parent_id, pv->footer.unique_id, 16) != 0) ||
        child->size != parent->size) {
        r = hvm_error(ESTALE, "%s: %s is not its parent (identity or size differ)", child_path,
                      parent_path);
        goto out;
    }
    /* The child still owns every sector copied, so it reads the same
     * throughout; a crash leaves it intact and this can run again. */
    if (!copied && ((r = copy_runs(child, parent, child, pick_own, NULL, pr)) < 0 ||
                    (r = disk_flush(parent)) < 0))
        goto out;
    /* From here until the rename the child fails its parent's identity
     * check (a clear error, never wrong data); the journal rolls forward. */
    memcpy(pv->footer.unique_id, cv->footer.unique_id, 16);
    pv->footer.timestamp = cv->footer.timestamp;
    if ((r = vhd_footer_write(pv)) < 0 || (r = file_sync(pv->fd, pv->path)) < 0)
        goto out;
    if (fstat(cv->fd, &cst) < 0) {
        r = hvm_error(errno, "%s: %s", child_path, strerror(errno));
        goto out;
    }
    disk_close(parent);
    disk_close(child);
    parent = child = NULL;
    if (chmod(parent_path, cst.st_mode & 0777) < 0 || rename(parent_path, child_path) < 0) {
        r = hvm_error(errno, "%s: %s", parent_path, strerror(errno));
        goto out;
    }
    r = path_sync_dir(child_path);
out:
    disk_close(parent);
    disk_close(child);
    return r;
}

/* Rebase: which layer (strictly between the child and `onto`) provides a
 * run the child does not own? Copy it if there is one. */
struct rebase_ctx {
    struct disk *onto;     /* NULL: standalone */
};

static int pick_between(struct disk *child, uint64_t off, uint64_t count, uint64_t *run,
                        bool *copy, void *opaque)
{
    struct rebase_ctx *ctx = opaque;
    enum disk_extent st;
    uint64_t len = count;
    int r = disk_block_status(child, off, len, &len, &st);
    *copy = false;
    if (r < 0 || st != DISK_EXTENT_PARENT) {
        *run = len;
        return r;
    }
    struct vhd *cv = disk_vhd_image(child);
    bool block_allocated = cv && cv->bat[off / cv->block_size] != VHD_BAT_UNUSED;
    for (struct disk *l = child->parent; l && l != ctx->onto; l = l->parent) {
        if ((r = disk_block_status(l, off, len, &len, &st)) < 0)
            return r;
        if (st == DISK_EXTENT_DATA) {
            *copy = true;
            break;
        }
        if (st == DISK_EXTENT_ZERO)
            break;
    }
    /* Standalone: unowned sectors inside an allocated block must hold what
     * the chain reads, zeros included, before the block becomes dynamic. */
    if (!ctx->onto && block_allocated)
        *copy = true;
    *run = len;
    return 0;
}

static int make_standalone(struct vhd *v)
{
    int r;
    /* The footer at the end is the one readers trust: once it says
     * "dynamic", the parent fields are ignored. */
    v->footer.type = VHD_TYPE_DYNAMIC;
    if ((r = vhd_footer_write(v)) < 0 || (r = file_sync(v->fd, v->path)) < 0)
        return r;
    memset(v->header.parent_id, 0, 16);
    v->header.parent_timestamp = 0;
    memset(v->header.parent_name, 0, sizeof v->header.parent_name);
    memset(v->header.loc, 0, sizeof v->header.loc);
    if ((r = vhd_header_write(v)) < 0)
        return r;
    return file_sync(v->fd, v->path);
}

static struct disk *find_in_chain(struct disk *d, const char *path)
{
    struct stat want, st;
    if (stat(path, &want) < 0)
        return NULL;
    for (struct disk *l = d->parent; l; l = l->parent)
        if (stat(l->path, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
            return l;
    return NULL;
}

int disk_rebase(const char *child_path, const char *onto_path, const struct disk_progress *pr)
{
    struct disk *child, *reader = NULL;
    struct vhd *cv;
    /* The child's content does not change, so its own children stay valid:
     * a protected child may be rebased. */
    int r = disk_open(child_path, DISK_OPEN_FORCE, &child);
    if (r < 0)
        return r;
    if ((r = need_diff(child, &cv)) < 0)
        goto out;
    /* A second, read-only instance of the chain feeds the copy, so that
     * reading (this one) and writing (child) overlap on two threads. It
     * keeps the child's BAT and bitmaps as they were before the copy, which
     * is exactly the view the copy must follow; it never reads the child's
     * own sectors, only what the layers below provide. */
    if ((r = disk_open(child_path, DISK_OPEN_READ_ONLY, &reader)) < 0)
        goto out;
    struct rebase_ctx ctx = {NULL};
    if (onto_path) {
        ctx.onto = find_in_chain(reader, onto_path);
        if (!ctx.onto) {
            r = hvm_error(EINVAL, "%s: %s is not an ancestor in its chain", child_path, onto_path);
            goto out;
        }
        if (ctx.onto == reader->parent)
            goto out; /* already there */
        if (!disk_vhd_image(ctx.onto)) {
            r = hvm_error(EINVAL, "%s: a parent must be a VHD", onto_path);
            goto out;
        }
    }
    /* Copy what the layers in between provide: the child reads the same at
     * every moment, since each copied sector holds what it read before. */
    if ((r = copy_runs(reader, child, reader, pick_between, &ctx, pr)) < 0 ||
        (r = disk_flush(child)) < 0)
        goto out;
    if (onto_path) {
        struct vhd *ov = disk_vhd_image(ctx.onto);
        struct vhd_parent_link link = {.path = ctx.onto->path,
                                       .timestamp = vhd_time_of(ctx.onto->path)};
        memcpy(link.id, ov->footer.unique_id, 16);
        r = vhd_parent_set(cv, &link);
    } else {
        r = make_standalone(cv);
    }
out:
    disk_close(reader);
    disk_close(child);
    return r;
}

int disk_set_parent(const char *child_path, const char *parent_path, bool ignore_id)
{
    struct disk *child, *parent = NULL;
    struct vhd *cv, *pv;
    char want[37], got[37];
    int r = disk_open(child_path, DISK_OPEN_NO_PARENT | DISK_OPEN_FORCE, &child);
    if (r < 0)
        return r;
    if ((r = need_diff(child, &cv)) < 0)
        goto out;
    if ((r = disk_open(parent_path, DISK_OPEN_READ_ONLY, &parent)) < 0)
        goto out;
    if ((r = need_vhd(parent, &pv)) < 0)
        goto out;
    if (parent->size != child->size) {
        r = hvm_error(EINVAL, "%s: parent %s is %llu bytes but the child is %llu bytes",
                      child_path, parent_path, (unsigned long long)parent->size,
                      (unsigned long long)child->size);
        goto out;
    }
    if (memcmp(pv->footer.unique_id, cv->header.parent_id, 16) != 0 && !ignore_id) {
        uuid_format(pv->footer.unique_id, got);
        uuid_format(cv->header.parent_id, want);
        r = hvm_error(ESTALE, "%s: %s has unique id %s but the child expects %s; if it holds "
                      "exactly the original parent's data, use --ignore-id-mismatch",
                      child_path, parent_path, got, want);
        goto out;
    }
    struct vhd_parent_link link = {.path = parent_path, .timestamp = vhd_time_of(parent_path)};
    memcpy(link.id, pv->footer.unique_id, 16);
    r = vhd_parent_set(cv, &link);
out:
    disk_close(parent);
    disk_close(child);
    return r;
}
