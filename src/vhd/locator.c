/* Parent locators and parent names of differencing disks (spec: "Parent
 * Locator Entry"). Windows writes W2ku (absolute) and W2ru (relative) with
 * the data space in bytes; hvm writes those two and a MacX file:// URL. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "util/fileio.h"
#include "vhd/image.h"

#define LOCATOR_MAX_BYTES 65536u

char *vhd_parent_name(const struct vhd *v)
{
    return vhd_utf16_to_utf8(v->header.parent_name, VHD_PARENT_NAME_BYTES, true);
}

char *vhd_locator_read(struct vhd *v, int index)
{
    const struct vhd_locator *l = &v->header.loc[index];
    if (l->code == VHD_PLAT_NONE || l->data_length == 0 || l->data_length > LOCATOR_MAX_BYTES ||
        l->data_offset > v->file_size || v->file_size - l->data_offset < l->data_length)
        return NULL;
    uint8_t *raw = malloc(l->data_length + 1);
    if (!raw)
        return NULL;
    char *out = NULL;
    if (file_pread(v->fd, v->path, raw, l->data_length, l->data_offset) == 0) {
        if (l->code == VHD_PLAT_W2KU || l->code == VHD_PLAT_W2RU) {
            out = vhd_utf16_to_utf8(raw, l->data_length, false);
        } else if (l->code == VHD_PLAT_MACX || l->code == VHD_PLAT_WI2K ||
                   l->code == VHD_PLAT_WI2R) {
            raw[l->data_length] = 0;
            out = strndup((char *)raw, l->data_length);
        }
    }
    free(raw);
    hvm_error_clear();
    return out;
}

/* Windows paths use backslashes; ".\base.vhd" means beside the child. */
static char *windows_to_posix(const char *in)
{
    char *out = strdup(in);
    if (!out)
        return NULL;
    for (char *p = out; *p; p++)
        if (*p == '\\')
            *p = '/';
    return out;
}

static const char *last_component(const char *path)
{
    const char *a = strrchr(path, '/');
    const char *b = strrchr(path, '\\');
    const char *p = a > b ? a : b;
    return p ? p + 1 : path;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *url_to_path(const char *url)
{
    if (strncmp(url, "file://", 7) != 0)
        return NULL;
    const char *s = url + 7;
    if (strncmp(s, "localhost/", 10) == 0)
        s += 9;
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    return out;
}

static int add_candidate(char ***list, size_t *n, char *path)
{
    if (!path)
        return 0;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i], path) == 0) {
            free(path);
            return 0;
        }
    char **grown = realloc(*list, (*n + 2) * sizeof **list);
    if (!grown) {
        free(path);
        return -1;
    }
    *list = grown;
    (*list)[(*n)++] = path;
    (*list)[*n] = NULL;
    return 0;
}

static char *beside(const char *dir, const char *name)
{
    return name && name[0] ? path_join(dir, name) : NULL;
}

char **vhd_parent_candidates(struct vhd *v)
{
    char **list = calloc(1, sizeof *list);
    size_t n = 0;
    char *dir = path_dirname(v->path);
    if (!list || !dir) {
        free(list);
        free(dir);
        return NULL;
    }
    /* 1: relative locators, against the child's folder. */
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        uint32_t code = v->header.loc[i].code;
        if (code != VHD_PLAT_W2RU && code != VHD_PLAT_WI2R)
            continue;
        char *raw = vhd_locator_read(v, i);
        char *rel = raw ? windows_to_posix(raw) : NULL;
        if (rel && rel[0] && rel[0] != '/') {
            const char *r = strncmp(rel, "./", 2) == 0 ? rel + 2 : rel;
            add_candidate(&list, &n, path_join(dir, r));
        }
        free(rel);
        free(raw);
    }
    /* 2: absolute locators: a POSIX path as is; a Windows path's file name
     * beside the child (a drive letter means nothing here). */
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        uint32_t code = v->header.loc[i].code;
        char *raw = NULL, *path = NULL;
        if (code == VHD_PLAT_W2KU || code == VHD_PLAT_WI2K)
            raw = vhd_locator_read(v, i);
        else if (code == VHD_PLAT_MACX) {
            char *url = vhd_locator_read(v, i);
            raw = url ? url_to_path(url) : NULL;
            free(url);
        }
        if (!raw)
            continue;
        if (raw[0] == '/')
            path = strdup(raw);
        else
            path = beside(dir, last_component(raw));
        add_candidate(&list, &n, path);
        free(raw);
    }
    /* 3: the parent name's last component beside the child. */
    char *name = vhd_parent_name(v);
    if (name) {
        add_candidate(&list, &n, beside(dir, last_component(name)));
        free(name);
    }
    free(dir);
    return list;
}

void vhd_paths_free(char **paths)
{
    for (size_t i = 0; paths && paths[i]; i++)
        free(paths[i]);
    free(paths);
}

/* The relative path from the child's folder to the parent, Windows style:
 * ".\base.vhd", "..\bases\base.vhd". */
static char *relative_windows_path(const char *child_dir_abs, const char *parent_abs)
{
    size_t common = 0, i = 0;
    /* Longest common prefix ending at a path separator. */
    while (child_dir_abs[i] && parent_abs[i] && child_dir_abs[i] == parent_abs[i]) {
        if (parent_abs[i] == '/')
            common = i + 1;
        i++;
    }
    if (!child_dir_abs[i] && parent_abs[i] == '/')
        common = i + 1;
    const char *rest_child = child_dir_abs + common;
    const char *rest_parent = parent_abs + common;
    size_t ups = 0;
    if (strlen(child_dir_abs) + 1 > common && *rest_child) {
        ups = 1;
        for (const char *p = rest_child; *p; p++)
            if (*p == '/' && p[1])
                ups++;
    }
    size_t len = 2 + ups * 3 + strlen(rest_parent) + 1;
    char *out = malloc(len), *o = out;
    if (!out)
        return NULL;
    if (ups == 0) {
        *o++ = '.';
        *o++ = '\\';
    }
    for (size_t u = 0; u < ups; u++) {
        memcpy(o, "..\\", 3);
        o += 3;
    }
    for (const char *p = rest_parent; *p; p++)
        *o++ = *p == '/' ? '\\' : *p;
    *o = 0;
    return out;
}

static char *file_url(const char *abs)
{
    size_t len = strlen(abs);
    char *out = malloc(7 + len * 3 + 1), *o = out;
    if (!out)
        return NULL;
    memcpy(o, "file://", 7);
    o += 7;
    for (const unsigned char *p = (const unsigned char *)abs; *p; p++) {
        if (*p <= ' ' || *p == '%' || *p >= 0x7F) {
            sprintf(o, "%%%02X", *p);
            o += 3;
        } else {
            *o++ = (char)*p;
        }
    }
    *o = 0;
    return out;
}

struct payload {
    uint32_t code;
    uint8_t *data;
    unsigned len;
    unsigned space; /* whole sectors */
    uint64_t offset;
};

static int build_payloads(const char *child_path, const char *parent_path,
                          struct payload pl[3], uint8_t name[VHD_PARENT_NAME_BYTES])
{
    char parent_abs[PATH_MAX], child_abs[PATH_MAX];
    char *child_dir = path_dirname(child_path);
    int r = 0;
    if (!child_dir)
        return hvm_error(ENOMEM, "out of memory");
    if (!realpath(parent_path, parent_abs)) {
        r = hvm_error(errno, "%s: %s", parent_path, strerror(errno));
        free(child_dir);
        return r;
    }
    if (!realpath(child_dir, child_abs)) {
        r = hvm_error(errno, "%s: %s", child_dir, strerror(errno));
        free(child_dir);
        return r;
    }
    free(child_dir);

    char *rel = relative_windows_path(child_abs, parent_abs);
    char *url = file_url(parent_abs);
    const char *texts[3] = {parent_abs, rel, url};
    const uint32_t codes[3] = {VHD_PLAT_W2KU, VHD_PLAT_W2RU, VHD_PLAT_MACX};
    for (int i = 0; i < 3 && r == 0; i++) {
        if (!texts[i]) {
            r = hvm_error(ENOMEM, "out of memory");
            break;
        }
        unsigned cap = (unsigned)strlen(texts[i]) * 2 + 2;
        pl[i].code = codes[i];
        pl[i].data = calloc(1, cap + VHD_SECTOR);
        if (!pl[i].data) {
            r = hvm_error(ENOMEM, "out of memory");
            break;
        }
        if (codes[i] == VHD_PLAT_MACX) {
            pl[i].len = (unsigned)strlen(texts[i]);
            memcpy(pl[i].data, texts[i], pl[i].len);
        } else if (vhd_utf8_to_utf16(texts[i], false, pl[i].data, cap, &pl[i].len) < 0) {
            r = hvm_error(EINVAL, "%s: parent path is not valid UTF-8", parent_path);
        }
        pl[i].space = (pl[i].len + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
        if (pl[i].space == 0)
            pl[i].space = VHD_SECTOR;
    }
    /* The parent name: the full path as Windows does, or the file name alone
     * when the path does not fit in 512 bytes of UTF-16. */
    unsigned nlen;
    memset(name, 0, VHD_PARENT_NAME_BYTES);
    if (r == 0 && vhd_utf8_to_utf16(parent_abs, true, name, VHD_PARENT_NAME_BYTES, &nlen) < 0 &&
        vhd_utf8_to_utf16(path_basename(parent_abs), true, name, VHD_PARENT_NAME_BYTES,
                          &nlen) < 0)
        r = hvm_error(ENAMETOOLONG, "%s: parent file name too long", parent_path);
    free(rel);
    free(url);
    return r;
}

struct range {
    uint64_t start, end;
};

static bool overlaps(const struct range *used, int n, uint64_t s, uint64_t e)
{
    for (int i = 0; i < n; i++)
        if (s < used[i].end && used[i].start < e)
            return true;
    return false;
}

/* Free space for locator data: the gap between the BAT and the first block
 * that no current locator uses. Data being replaced is never overwritten, so
 * that a crash before the header write leaves the old link intact. */
static uint64_t find_gap(struct vhd *v, struct range *used, int n_used, uint64_t size)
{
    uint64_t lo = v->header.table_offset + (uint64_t)v->header.max_table_entries * 4;
    uint64_t hi = v->end;
    lo = (lo + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
    for (uint32_t b = 0; b < v->bat_entries; b++)
        if (v->bat[b] != VHD_BAT_UNUSED && vhd_block_offset(v, b) < hi)
            hi = vhd_block_offset(v, b);
    for (uint64_t s = lo; s + size <= hi; s += VHD_SECTOR)
        if (!overlaps(used, n_used, s, s + size))
            return s;
    return 0;
}

int vhd_parent_set(struct vhd *v, const struct vhd_parent_link *link)
{
    struct payload pl[3] = {{0}};
    uint8_t name[VHD_PARENT_NAME_BYTES];
    struct range used[VHD_LOCATOR_COUNT + 3];
    int n_used = 0;
    int r;

    if (v->footer.type != VHD_TYPE_DIFF)
        return hvm_error(EINVAL, "%s: not a differencing disk", v->path);
    if (v->read_only)
        return hvm_error(EROFS, "%s: opened read-only", v->path);
    if ((r = build_payloads(v->path, link->path, pl, name)) < 0)
        goto out;
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        const struct vhd_locator *l = &v->header.loc[i];
        if (l->code != VHD_PLAT_NONE && l->data_offset)
            used[n_used++] = (struct range){l->data_offset,
                                            l->data_offset + vhd_locator_space_bytes(l)};
    }
    for (int i = 0; i < 3; i++) {
        uint64_t at = find_gap(v, used, n_used, pl[i].space);
        if (at == 0) {
            /* No room before the blocks: append past the end, footer first. */
            at = v->end;
            v->end += pl[i].space;
            if ((r = vhd_footer_write(v)) < 0)
                goto out;
        }
        pl[i].offset = at;
        used[n_used++] = (struct range){at, at + pl[i].space};
        if ((r = file_pwrite(v->fd, v->path, pl[i].data, pl[i].space, at)) < 0)
            goto out;
    }
    if ((r = file_sync(v->fd, v->path)) < 0)
        goto out;
    /* The commit: one header write switches identity, name and locators. */
    memcpy(v->header.parent_id, link->id, 16);
    v->header.parent_timestamp = link->timestamp;
    memcpy(v->header.parent_name, name, sizeof name);
    memset(v->header.loc, 0, sizeof v->header.loc);
    for (int i = 0; i < 3; i++)
        v->header.loc[i] = (struct vhd_locator){
            .code = pl[i].code, .data_space = pl[i].space,
            .data_length = pl[i].len, .data_offset = pl[i].offset};
    if ((r = vhd_header_write(v)) == 0)
        r = file_sync(v->fd, v->path);
out:
    for (int i = 0; i < 3; i++)
        free(pl[i].data);
    return r;
}
