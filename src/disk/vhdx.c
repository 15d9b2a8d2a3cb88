/* VHDX images as struct disk kinds: fixed, dynamic and differencing, read
 * only for now (a writable open is refused, naming convert as the way).
 *
 * A differencing VHDX opens its parent chain read-only; every parent must be
 * a VHDX (Hyper-V refuses mixed chains) whose DataWriteGuid is the child's
 * parent_linkage (VHDX spec 2.6.2.6: any write to a parent changes that
 * GUID, so a modified parent is detected, not read). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vhdx/image.h"

static int vx_read_own(struct disk *d, void *buf, uint64_t count, uint64_t offset)
{
    struct vhdx *v = d->priv;
    uint8_t *p = buf;
    while (count > 0) {
        uint64_t run, at;
        enum vhdx_run st;
        int r = vhdx_map(v, offset, count, &run, &st, &at);
        if (r < 0)
            return r;
        if (st == VHDX_RUN_DATA)
            r = vhdx_file_read(v, p, run, at);
        else
            memset(p, 0, run);
        if (r < 0)
            return r;
        p += run;
        offset += run;
        count -= run;
    }
    return 0;
}

static int vx_block_status(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                           enum disk_extent *state)
{
    uint64_t at;
    enum vhdx_run st;
    int r = vhdx_map(d->priv, offset, count, run, &st, &at);
    if (r < 0)
        return r;
    *state = st == VHDX_RUN_DATA     ? DISK_EXTENT_DATA
             : st == VHDX_RUN_PARENT ? DISK_EXTENT_PARENT
                                     : DISK_EXTENT_ZERO;
    return 0;
}

static int vx_pread(struct disk *d, void *buf, uint64_t count, uint64_t offset)
{
    return disk_read_layered(d, buf, count, offset, vx_read_own);
}

static int vx_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    (void)iov;
    (void)iovcnt;
    (void)offset;
    return hvm_error(EROFS, "%s: hvm does not write VHDX yet", d->path);
}

static int vx_flush(struct disk *d)
{
    (void)d;
    return 0;
}

/* A replayed log may cover payload bytes with its own: those reads must go
 * through the overlays, so no file offset is handed out then. */
static int vx_locate(struct disk *d, uint64_t offset, uint64_t count, uint64_t *run,
                     enum disk_extent *state, int *fd, uint64_t *file_offset)
{
    struct vhdx *v = d->priv;
    if (v->overlays)
        return -ENOTSUP;
    enum vhdx_run st;
    int r = vhdx_map(v, offset, count, run, &st, file_offset);
    if (r < 0)
        return r;
    *state = st == VHDX_RUN_DATA     ? DISK_EXTENT_DATA
             : st == VHDX_RUN_PARENT ? DISK_EXTENT_PARENT
                                     : DISK_EXTENT_ZERO;
    *fd = v->fd;
    return 0;
}

static void vx_close(struct disk *d)
{
    disk_close(d->parent);
    vhdx_close(d->priv);
    free(d->path);
    free(d);
}

#define VHDX_OPS(name, kind_name)                                                         \
    static const struct disk_ops name = {                                                 \
        .kind = kind_name, .pread = vx_pread, .pwritev = vx_pwritev, .flush = vx_flush,     \
        .block_status = vx_block_status, .locate = vx_locate, .close = vx_close,           \
    }
VHDX_OPS(vx_fixed_ops, "fixed");
VHDX_OPS(vx_dynamic_ops, "dynamic");
VHDX_OPS(vx_diff_ops, "differencing");

struct vhdx *disk_vhdx_image(struct disk *d)
{
    if (d->ops == &vx_fixed_ops || d->ops == &vx_dynamic_ops || d->ops == &vx_diff_ops)
        return d->priv;
    return NULL;
}

bool disk_is_vhdx(const char *path)
{
    return vhdx_probe(path);
}

/* Spec 2.6.2.1: LeaveBlockAllocated marks a fixed disk (its blocks may
 * still be in the ZERO state: qemu-img writes them so). */
static bool vhdx_is_fixed(const struct vhdx *v)
{
    return v->leave_allocated && !v->has_parent;
}

/* Windows paths to Linux ones: backslashes become slashes, a leading ".\"
 * goes. malloc'd. */
static char *path_from_windows(const char *w)
{
    char *s = strdup(w);
    if (!s)
        return NULL;
    for (char *p = s; *p; p++)
        if (*p == '\\')
            *p = '/';
    if (s[0] == '.' && s[1] == '/')
        memmove(s, s + 2, strlen(s + 2) + 1);
    return s;
}

/* Where to look for the parent, in order (spec 2.6.2.6.1): relative_path
 * against the child's folder, then the file names of volume_path and
 * absolute_win32_path beside the child (a drive letter or volume GUID path
 * means nothing on Linux). NULL-terminated, malloc'd. */
static char **parent_candidates(const struct vhdx *v)
{
    char **c = calloc(4, sizeof *c);
    char *dir = path_dirname(v->path);
    if (!c || !dir) {
        free(c);
        free(dir);
        return NULL;
    }
    int n = 0;
    const char *paths[] = {v->locator.relative_path, v->locator.volume_path,
                           v->locator.absolute_win32_path};
    for (int i = 0; i < 3; i++) {
        if (!paths[i] || !paths[i][0])
            continue;
        char *p = path_from_windows(paths[i]);
        if (!p)
            continue;
        const char *name = i == 0 ? p : path_basename(p);
        char *full = name[0] == '/' && i == 0 ? strdup(name) : path_join(dir, name);
        free(p);
        if (!full)
            continue;
        bool dup = false;
        for (int k = 0; k < n; k++)
            dup |= strcmp(c[k], full) == 0;
        if (dup)
            free(full);
        else
            c[n++] = full;
    }
    free(dir);
    return c;
}

static void candidates_free(char **c)
{
    for (size_t i = 0; c && c[i]; i++)
        free(c[i]);
    free(c);
}

static int open_layer(const char *path, unsigned flags, unsigned depth,
                      struct disk_chain_seen *seen, struct disk **out);

static bool linkage_matches(const char *text, const uint8_t guid[16])
{
    uint8_t g[16];
    return text && vhdx_guid_parse(text, g) == 0 && memcmp(g, guid, 16) == 0;
}

static int open_parent(struct disk *d, struct vhdx *v, unsigned flags, unsigned depth,
                       struct disk_chain_seen *seen)
{
    char **cands = parent_candidates(v);
    char tried[2048] = "";
    int r = 0;
    if (!cands)
        return hvm_error(ENOMEM, "out of memory");
    for (size_t i = 0; cands[i]; i++) {
        if (access(cands[i], F_OK) != 0) {
            size_t len = strlen(tried);
            snprintf(tried + len, sizeof tried - len, "%s%s", len ? ", " : "", cands[i]);
            continue;
        }
        if (!vhdx_probe(cands[i])) {
            r = hvm_error(EMEDIUMTYPE, "%s: parent %s is not a VHDX (%s); a VHDX child needs "
                          "a VHDX parent", d->path, cands[i],
                          disk_is_vhd(cands[i]) ? "a VHD" : "another format");
            break;
        }
        struct disk *p = NULL;
        if ((r = open_layer(cands[i], flags, depth + 1, seen, &p)) < 0)
            break;
        struct vhdx *pv = p->priv;
        if (!linkage_matches(v->locator.parent_linkage, pv->data_write_guid) &&
            !linkage_matches(v->locator.parent_linkage2, pv->data_write_guid)) {
            char got[37];
            vhdx_guid_format(pv->data_write_guid, got);
            r = hvm_error(ESTALE, "%s: parent %s has DataWriteGuid {%s} but the child expects "
                          "%s (the parent was replaced or modified)", d->path, cands[i], got,
                          v->locator.parent_linkage);
            disk_close(p);
            break;
        }
        if (p->size != d->size || pv->logical_sector != v->logical_sector) {
            r = hvm_error(ESTALE, "%s: parent %s is %llu bytes of %u-byte sectors but the "
                          "child is %llu bytes of %u-byte sectors", d->path, cands[i],
                          (unsigned long long)p->size, pv->logical_sector,
                          (unsigned long long)d->size, v->logical_sector);
            disk_close(p);
            break;
        }
        d->parent = p;
        break;
    }
    if (r == 0 && !d->parent) {
        const char *name = v->locator.relative_path     ? v->locator.relative_path
                           : v->locator.volume_path     ? v->locator.volume_path
                                                        : v->locator.absolute_win32_path;
        r = hvm_error(ENOENT, "%s: parent '%s' not found (tried: %s)", d->path,
                      name ? name : "?", tried[0] ? tried : "no usable locator");
    }
    candidates_free(cands);
    return r;
}

static int open_layer(const char *path, unsigned flags, unsigned depth,
                      struct disk_chain_seen *seen, struct disk **out)
{
    struct stat st;
    struct vhdx *v;
    int r;
    if ((r = disk_chain_enter(path, depth, seen, &st)) < 0)
        return r;
    if (!(flags & DISK_OPEN_READ_ONLY))
        return hvm_error(EROFS, "%s: a VHDX image; hvm reads VHDX but does not write it yet "
                         "(convert it with 'hvm vhd convert %s NEW.vhd')", path, path);
    if ((r = vhdx_open(path, flags & DISK_OPEN_HEADER_ONLY, &v)) < 0)
        return r;
    struct disk *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        vhdx_close(v);
        return hvm_error(ENOMEM, "out of memory");
    }
    d->priv = v;
    d->size = v->size;
    d->read_only = true;
    d->depth = depth;
    d->ops = v->has_parent ? &vx_diff_ops : vhdx_is_fixed(v) ? &vx_fixed_ops : &vx_dynamic_ops;
    if (v->has_parent && !(flags & DISK_OPEN_NO_PARENT) &&
        (r = open_parent(d, v, flags, depth, seen)) < 0) {
        vx_close(d);
        return r;
    }
    *out = d;
    return 0;
}

int disk_vhdx_open(const char *path, unsigned flags, struct disk **out)
{
    struct disk_chain_seen seen[DISK_MAX_DEPTH];
    return open_layer(path, flags, 0, seen, out);
}
