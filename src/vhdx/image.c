/* Opening a VHDX: file type identifier, headers, region table, metadata and
 * BAT (spec sections 2.1-2.6), each field checked before it is used. */
#include "vhdx/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"
#include "vhdx/crc32c.h"
#include "vhdx/le.h"

#define GUID_BAT "2DC27766-F623-4200-9D64-115E9BFD4A08"
#define GUID_METADATA "8B7CA206-4790-4B9A-B8FE-575F050F886E"
#define GUID_FILE_PARAMETERS "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"
#define GUID_VIRTUAL_SIZE "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
#define GUID_PAGE83 "BECA12AB-B2E6-4523-93EF-C309E000C746"
#define GUID_LOGICAL_SECTOR "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"
#define GUID_PHYSICAL_SECTOR "CDA348C7-445D-4471-9CC9-E9885251C556"
#define GUID_PARENT_LOCATOR "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
#define GUID_VHDX_LOCATOR_TYPE "B04AEFB7-D19E-4A81-B789-25B8E9445913"

#define HEADER_SIZE 4096
#define REGION_SIZE (64u * 1024)
#define METADATA_TABLE_SIZE (64u * 1024)
#define MAX_ENTRIES 2047

void vhdx_guid_format(const uint8_t g[16], char out[37])
{
    snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", le32_get(g),
             le16_get(g + 4), le16_get(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14],
             g[15]);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int vhdx_guid_parse(const char *text, uint8_t out[16])
{
    size_t n = strlen(text);
    if (n == 38 && text[0] == '{' && text[37] == '}') {
        text++;
        n = 36;
    }
    if (n != 36)
        return -EINVAL;
    uint8_t raw[16];
    int k = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return -EINVAL;
            i++;
            continue;
        }
        int hi = hexval(text[i]), lo = hexval(text[i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        raw[k++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    /* Text is big-endian in every field; storage has the first three
     * little-endian. */
    uint8_t g[16] = {raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]};
    memcpy(g + 8, raw + 8, 8);
    memcpy(out, g, 16);
    return 0;
}

static bool guid_is(const uint8_t g[16], const char *text)
{
    char s[37];
    vhdx_guid_format(g, s);
    return strcasecmp(s, text) == 0;
}

static bool guid_null(const uint8_t g[16])
{
    for (int i = 0; i < 16; i++)
        if (g[i])
            return false;
    return true;
}

/* UTF-16LE of n bytes to malloc'd UTF-8; stops at a NUL. NULL on a bad
 * surrogate or out of memory. */
static char *utf16le_decode(const uint8_t *p, size_t n)
{
    char *s = malloc(n / 2 * 3 + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint32_t c = le16_get(p + i);
        if (c == 0)
            break;
        if (c >= 0xD800 && c < 0xDC00) {
            if (i + 3 >= n)
                goto bad;
            uint32_t lo = le16_get(p + i + 2);
            if (lo < 0xDC00 || lo >= 0xE000)
                goto bad;
            c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
            i += 2;
        } else if (c >= 0xDC00 && c < 0xE000) {
            goto bad;
        }
        if (c < 0x80) {
            s[o++] = (char)c;
        } else if (c < 0x800) {
            s[o++] = (char)(0xC0 | c >> 6);
            s[o++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            s[o++] = (char)(0xE0 | c >> 12);
            s[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            s[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            s[o++] = (char)(0xF0 | c >> 18);
            s[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
            s[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            s[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    s[o] = 0;
    return s;
bad:
    free(s);
    return NULL;
}

bool vhdx_probe(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    char sig[8];
    struct stat st;
    bool yes = fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) &&
               pread(fd, sig, 8, 0) == 8 && memcmp(sig, "vhdxfile", 8) == 0;
    close(fd);
    return yes;
}

int vhdx_file_read(struct vhdx *v, void *buf, size_t len, uint64_t offset)
{
    if (offset > v->end || v->end - offset < len)
        return hvm_error(EINVAL, "%s: read of %zu bytes at %llu is past the end of the file "
                         "(%llu bytes)", v->path, len, (unsigned long long)offset,
                         (unsigned long long)v->end);
    size_t have = 0;
    if (offset < v->file_size)
        have = v->file_size - offset < len ? (size_t)(v->file_size - offset) : len;
    int r = have ? file_pread(v->fd, v->path, buf, have, offset) : 0;
    if (r < 0)
        return r;
    memset((uint8_t *)buf + have, 0, len - have);
    for (size_t i = 0; i < v->overlays; i++) {
        const struct vhdx_overlay *o = &v->overlay[i];
        if (o->offset >= offset + len || o->offset + o->length <= offset)
            continue;
        uint64_t lo = o->offset > offset ? o->offset : offset;
        uint64_t hi = o->offset + o->length < offset + len ? o->offset + o->length : offset + len;
        uint8_t *dst = (uint8_t *)buf + (lo - offset);
        if (o->data)
            memcpy(dst, o->data + (lo - o->offset), hi - lo);
        else
            memset(dst, 0, hi - lo);
    }
    return 0;
}

/* Spec 2.2.2: a header is valid when its signature and CRC are; the current
 * one is the valid one with the larger sequence number. Equal numbers occur
 * in the wild (Disk2VHD): the first is taken then. */
static int headers_read(struct vhdx *v)
{
    uint8_t h[2][HEADER_SIZE];
    bool ok[2];
    const char *why[2];
    for (int i = 0; i < 2; i++) {
        int r = vhdx_file_read(v, h[i], HEADER_SIZE, (uint64_t)(i + 1) * 64 * 1024);
        if (r < 0)
            return r;
        ok[i] = false;
        if (memcmp(h[i], "head", 4) != 0)
            why[i] = "no 'head' signature";
        else if (le32_get(h[i] + 4) != crc32c_with_hole(h[i], HEADER_SIZE, 4))
            why[i] = "bad CRC-32C";
        else
            ok[i] = true, why[i] = NULL;
    }
    if (!ok[0] && !ok[1])
        return hvm_error(EINVAL, "%s: VHDX header 1 (at 64 KiB): %s; header 2 (at 128 KiB): "
                         "%s", v->path, why[0], why[1]);
    int c = ok[0] && ok[1] ? (le64_get(h[1] + 8) > le64_get(h[0] + 8) ? 1 : 0) : (ok[0] ? 0 : 1);
    const uint8_t *p = h[c];
    v->header_index = c;
    v->sequence = le64_get(p + 8);
    memcpy(v->file_write_guid, p + 16, 16);
    memcpy(v->data_write_guid, p + 32, 16);
    memcpy(v->log_guid, p + 48, 16);
    uint16_t log_version = le16_get(p + 64), version = le16_get(p + 66);
    v->log_length = le32_get(p + 68);
    v->log_offset = le64_get(p + 72);
    if (version != 1)
        return hvm_error(EINVAL, "%s: VHDX header %d: version %u (only 1 is defined)", v->path,
                         c + 1, version);
    if (log_version != 0)
        return hvm_error(EINVAL, "%s: VHDX header %d: log version %u (only 0 is defined)",
                         v->path, c + 1, log_version);
    if (v->log_length == 0 || v->log_length % VHDX_MiB || v->log_offset % VHDX_MiB ||
        v->log_offset < VHDX_MiB)
        return hvm_error(EINVAL, "%s: VHDX header %d: log at %llu, %u bytes (must be 1 MiB "
                         "multiples past the first MiB)", v->path, c + 1,
                         (unsigned long long)v->log_offset, v->log_length);
    if (v->log_offset > v->file_size || v->file_size - v->log_offset < v->log_length)
        return hvm_error(EINVAL, "%s: VHDX header %d: log (at %llu, %u bytes) is past the end "
                         "of the file (%llu bytes)", v->path, c + 1,
                         (unsigned long long)v->log_offset, v->log_length,
                         (unsigned long long)v->file_size);
    return 0;
}

struct span {
    uint64_t offset, length;
    const char *name;
};

static int spans_disjoint(struct vhdx *v, const struct span *s, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (s[i].offset < s[j].offset + s[j].length &&
                s[j].offset < s[i].offset + s[i].length)
                return hvm_error(EINVAL, "%s: VHDX %s (at %llu, %llu bytes) overlaps the %s "
                                 "(at %llu, %llu bytes)", v->path, s[i].name,
                                 (unsigned long long)s[i].offset,
                                 (unsigned long long)s[i].length, s[j].name,
                                 (unsigned long long)s[j].offset,
                                 (unsigned long long)s[j].length);
    return 0;
}

/* Spec 2.3: two copies; the first valid one is used. */
static int regions_read(struct vhdx *v)
{
    uint8_t *t = malloc(REGION_SIZE);
    if (!t)
        return hvm_error(ENOMEM, "out of memory");
    const char *why = NULL;
    int copy, r = 0;
    for (copy = 0; copy < 2; copy++) {
        if ((r = vhdx_file_read(v, t, REGION_SIZE, (uint64_t)(copy + 3) * 64 * 1024)) < 0)
            goto out;
        if (memcmp(t, "regi", 4) != 0)
            why = "no 'regi' signature";
        else if (le32_get(t + 4) != crc32c_with_hole(t, REGION_SIZE, 4))
            why = "bad CRC-32C";
        else if (le32_get(t + 8) > MAX_ENTRIES)
            why = "more than 2047 entries";
        else
            break;
    }
    if (copy == 2) {
        r = hvm_error(EINVAL, "%s: VHDX region table: both copies (at 192 and 256 KiB) are "
                      "invalid (%s)", v->path, why);
        goto out;
    }
    uint32_t n = le32_get(t + 8);
    bool bat = false, meta = false;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = t + 16 + 32 * i;
        uint64_t off = le64_get(e + 16);
        uint32_t len = le32_get(e + 24);
        bool required = le32_get(e + 28) & 1;
        char g[37];
        vhdx_guid_format(e, g);
        bool is_bat = guid_is(e, GUID_BAT), is_meta = guid_is(e, GUID_METADATA);
        if (!is_bat && !is_meta) {
            if (required) {
                r = hvm_error(EINVAL, "%s: VHDX region table: unknown required region {%s}",
                              v->path, g);
                goto out;
            }
            continue;
        }
        if ((is_bat && bat) || (is_meta && meta)) {
            r = hvm_error(EINVAL, "%s: VHDX region table: the %s region is listed twice",
                          v->path, is_bat ? "BAT" : "metadata");
            goto out;
        }
        const char *name = is_bat ? "BAT" : "metadata";
        if (off % VHDX_MiB || off < VHDX_MiB || len == 0 || len % VHDX_MiB) {
            r = hvm_error(EINVAL, "%s: VHDX region table: %s region at %llu, %u bytes (must "
                          "be 1 MiB multiples past the first MiB)", v->path, name,
                          (unsigned long long)off, len);
            goto out;
        }
        if (off > v->end || v->end - off < len) {
            r = hvm_error(EINVAL, "%s: VHDX region table: %s region (at %llu, %u bytes) is "
                          "past the end of the file (%llu bytes)", v->path, name,
                          (unsigned long long)off, len, (unsigned long long)v->end);
            goto out;
        }
        if (is_bat)
            v->bat_offset = off, v->bat_length = len, bat = true;
        else
            v->meta_offset = off, v->meta_length = len, meta = true;
    }
    if (!bat || !meta) {
        r = hvm_error(EINVAL, "%s: VHDX region table: no %s region", v->path,
                      bat ? "metadata" : "BAT");
        goto out;
    }
    struct span s[] = {
        {0, VHDX_MiB, "header area"},
        {v->log_offset, v->log_length, "log"},
        {v->bat_offset, v->bat_length, "BAT region"},
        {v->meta_offset, v->meta_length, "metadata region"},
    };
    r = spans_disjoint(v, s, 4);
out:
    free(t);
    return r;
}

static int locator_read(struct vhdx *v, const uint8_t *p, uint32_t len)
{
    if (len < 20)
        return hvm_error(EINVAL, "%s: VHDX parent locator: %u bytes, shorter than its header",
                         v->path, len);
    memcpy(v->locator_type, p, 16);
    if (!guid_is(p, GUID_VHDX_LOCATOR_TYPE)) {
        char g[37];
        vhdx_guid_format(p, g);
        return hvm_error(EINVAL, "%s: VHDX parent locator: unknown locator type {%s}", v->path,
                         g);
    }
    uint16_t n = le16_get(p + 18);
    if (20 + (uint64_t)n * 12 > len)
        return hvm_error(EINVAL, "%s: VHDX parent locator: %u entries do not fit in %u bytes",
                         v->path, n, len);
    for (uint16_t i = 0; i < n; i++) {
        const uint8_t *e = p + 20 + 12 * i;
        uint32_t ko = le32_get(e), vo = le32_get(e + 4);
        uint16_t kl = le16_get(e + 8), vl = le16_get(e + 10);
        if (kl == 0 || vl == 0 || ko > len || len - ko < kl || vo > len || len - vo < vl)
            return hvm_error(EINVAL, "%s: VHDX parent locator: entry %u (key at %u, %u bytes; "
                             "value at %u, %u bytes) is outside the locator (%u bytes)",
                             v->path, i, ko, kl, vo, vl, len);
        char *key = utf16le_decode(p + ko, kl), *val = utf16le_decode(p + vo, vl);
        if (!key || !val) {
            free(key);
            free(val);
            return hvm_error(EINVAL, "%s: VHDX parent locator: entry %u is not valid UTF-16",
                             v->path, i);
        }
        char **slot = NULL;
        if (strcmp(key, "parent_linkage") == 0)
            slot = &v->locator.parent_linkage;
        else if (strcmp(key, "parent_linkage2") == 0)
            slot = &v->locator.parent_linkage2;
        else if (strcmp(key, "relative_path") == 0)
            slot = &v->locator.relative_path;
        else if (strcmp(key, "volume_path") == 0)
            slot = &v->locator.volume_path;
        else if (strcmp(key, "absolute_win32_path") == 0)
            slot = &v->locator.absolute_win32_path;
        if (slot && *slot) {
            int r = hvm_error(EINVAL, "%s: VHDX parent locator: key %s appears twice", v->path,
                              key);
            free(key);
            free(val);
            return r;
        }
        free(key);
        if (slot)
            *slot = val;
        else
            free(val);
    }
    uint8_t g[16];
    if (!v->locator.parent_linkage)
        return hvm_error(EINVAL, "%s: VHDX parent locator: no parent_linkage", v->path);
    if (vhdx_guid_parse(v->locator.parent_linkage, g) < 0)
        return hvm_error(EINVAL, "%s: VHDX parent locator: parent_linkage '%s' is not a GUID",
                         v->path, v->locator.parent_linkage);
    if (!v->locator.relative_path && !v->locator.volume_path &&
        !v->locator.absolute_win32_path)
        return hvm_error(EINVAL, "%s: VHDX parent locator: no relative_path, volume_path or "
                         "absolute_win32_path", v->path);
    return 0;
}

static bool power_of_two(uint64_t x)
{
    return x && !(x & (x - 1));
}

/* Spec 2.6. */
static int metadata_read(struct vhdx *v)
{
    uint8_t *m = malloc(v->meta_length);
    if (!m)
        return hvm_error(ENOMEM, "out of memory");
    int r = vhdx_file_read(v, m, v->meta_length, v->meta_offset);
    if (r < 0)
        goto out;
    if (memcmp(m, "metadata", 8) != 0) {
        r = hvm_error(EINVAL, "%s: VHDX metadata table: no 'metadata' signature", v->path);
        goto out;
    }
    uint16_t n = le16_get(m + 10);
    if (n > MAX_ENTRIES) {
        r = hvm_error(EINVAL, "%s: VHDX metadata table: %u entries (at most 2047)", v->path, n);
        goto out;
    }
    enum { FP, VS, LS, PS, P83, PL, ITEMS };
    static const char *const ids[ITEMS] = {GUID_FILE_PARAMETERS, GUID_VIRTUAL_SIZE,
                                           GUID_LOGICAL_SECTOR, GUID_PHYSICAL_SECTOR,
                                           GUID_PAGE83, GUID_PARENT_LOCATOR};
    static const char *const names[ITEMS] = {"file parameters", "virtual disk size",
                                             "logical sector size", "physical sector size",
                                             "page 83 data", "parent locator"};
    static const uint32_t sizes[ITEMS] = {8, 8, 4, 4, 16, 0};
    const uint8_t *item[ITEMS] = {0};
    uint32_t item_len[ITEMS] = {0};
    for (uint16_t i = 0; i < n; i++) {
        const uint8_t *e = m + 32 + 32 * i;
        uint32_t off = le32_get(e + 16), len = le32_get(e + 20), flags = le32_get(e + 24);
        char g[37];
        vhdx_guid_format(e, g);
        int k;
        for (k = 0; k < ITEMS; k++)
            if (strcasecmp(g, ids[k]) == 0)
                break;
        if (len && (off < METADATA_TABLE_SIZE || off > v->meta_length ||
                    v->meta_length - off < len)) {
            r = hvm_error(EINVAL, "%s: VHDX metadata item {%s} (at %u, %u bytes) is outside "
                          "the metadata region (%u bytes after its 64 KiB table)", v->path, g,
                          off, len, v->meta_length);
            goto out;
        }
        if (k == ITEMS) {
            if (flags & 4) {
                r = hvm_error(EINVAL, "%s: VHDX metadata: unknown required item {%s}",
                              v->path, g);
                goto out;
            }
            continue;
        }
        if (item[k]) {
            r = hvm_error(EINVAL, "%s: VHDX metadata: the %s item is listed twice", v->path,
                          names[k]);
            goto out;
        }
        if (sizes[k] ? len != sizes[k] : len == 0) {
            r = hvm_error(EINVAL, "%s: VHDX metadata: the %s item is %u bytes (expected %u)",
                          v->path, names[k], len, sizes[k]);
            goto out;
        }
        item[k] = m + off;
        item_len[k] = len;
    }
    for (int k = 0; k < P83; k++)
        if (!item[k]) {
            r = hvm_error(EINVAL, "%s: VHDX metadata: no %s item", v->path, names[k]);
            goto out;
        }
    v->block_size = le32_get(item[FP]);
    uint32_t fp_flags = le32_get(item[FP] + 4);
    v->leave_allocated = fp_flags & 1;
    v->has_parent = fp_flags & 2;
    v->size = le64_get(item[VS]);
    v->logical_sector = le32_get(item[LS]);
    v->physical_sector = le32_get(item[PS]);
    if (item[P83]) {
        memcpy(v->page83, item[P83], 16);
        v->has_page83 = true;
    }
    if (!power_of_two(v->block_size) || v->block_size < VHDX_MiB ||
        v->block_size > 256 * VHDX_MiB) {
        r = hvm_error(EINVAL, "%s: VHDX file parameters: block size %u (must be a power of two "
                      "from 1 to 256 MiB)", v->path, v->block_size);
        goto out;
    }
    if (v->logical_sector != 512 && v->logical_sector != 4096) {
        r = hvm_error(EINVAL, "%s: VHDX logical sector size %u (must be 512 or 4096)", v->path,
                      v->logical_sector);
        goto out;
    }
    if (v->physical_sector != 512 && v->physical_sector != 4096) {
        r = hvm_error(EINVAL, "%s: VHDX physical sector size %u (must be 512 or 4096)",
                      v->path, v->physical_sector);
        goto out;
    }
    if (v->size == 0 || v->size > VHDX_MAX_SIZE || v->size % v->logical_sector) {
        r = hvm_error(EINVAL, "%s: VHDX virtual disk size %llu (must be a multiple of the "
                      "%u-byte logical sector, at most 64 TiB)", v->path,
                      (unsigned long long)v->size, v->logical_sector);
        goto out;
    }
    if (v->has_parent && !item[PL]) {
        r = hvm_error(EINVAL, "%s: VHDX file parameters say it has a parent, but there is no "
                      "parent locator", v->path);
        goto out;
    }
    if (v->has_parent && (r = locator_read(v, item[PL], item_len[PL])) < 0)
        goto out;
    r = 0;
out:
    free(m);
    return r;
}

/* Spec 2.5. */
static int bat_read(struct vhdx *v)
{
    v->chunk_ratio = ((uint64_t)1 << 23) * v->logical_sector / v->block_size;
    v->data_blocks = (v->size + v->block_size - 1) / v->block_size;
    v->bitmap_blocks = (v->data_blocks + v->chunk_ratio - 1) / v->chunk_ratio;
    /* Every chunk gets its sector bitmap entry after its payload entries;
     * a non-differencing file may stop after the last payload entry. */
    v->bat_entries = v->has_parent ? v->bitmap_blocks * (v->chunk_ratio + 1)
                                   : v->data_blocks + (v->data_blocks - 1) / v->chunk_ratio;
    if (v->bat_entries * 8 > v->bat_length)
        return hvm_error(EINVAL, "%s: VHDX BAT region is %u bytes; %llu entries (%llu bytes) "
                         "are needed for a %llu-byte disk of %u-byte blocks", v->path,
                         v->bat_length, (unsigned long long)v->bat_entries,
                         (unsigned long long)v->bat_entries * 8, (unsigned long long)v->size,
                         v->block_size);
    size_t bytes = (size_t)v->bat_entries * 8;
    uint8_t *raw = malloc(bytes);
    v->bat = malloc(bytes);
    if (!raw || !v->bat) {
        free(raw);
        return hvm_error(ENOMEM, "%s: out of memory for a %zu-byte BAT", v->path, bytes);
    }
    int r = vhdx_file_read(v, raw, bytes, v->bat_offset);
    for (uint64_t i = 0; r == 0 && i < v->bat_entries; i++) {
        uint64_t e = le64_get(raw + 8 * i);
        v->bat[i] = e;
        unsigned state = e & 7;
        uint64_t off = (e >> 20) << 20;
        bool bitmap = (i + 1) % (v->chunk_ratio + 1) == 0;
        if (bitmap) {
            if (state != VHDX_BITMAP_NOT_PRESENT && state != VHDX_BITMAP_PRESENT)
                r = hvm_error(EINVAL, "%s: VHDX BAT entry %llu (sector bitmap of chunk %llu): "
                              "state %u is not defined", v->path, (unsigned long long)i,
                              (unsigned long long)(i / (v->chunk_ratio + 1)), state);
            else if (state == VHDX_BITMAP_PRESENT && !v->has_parent)
                r = hvm_error(EINVAL, "%s: VHDX BAT entry %llu: a sector bitmap in a disk "
                              "without a parent", v->path, (unsigned long long)i);
            else if (state == VHDX_BITMAP_PRESENT &&
                     (off < VHDX_MiB || off > v->end || v->end - off < VHDX_MiB))
                r = hvm_error(EINVAL, "%s: VHDX BAT entry %llu: sector bitmap at %llu is past "
                              "the end of the file (%llu bytes)", v->path,
                              (unsigned long long)i, (unsigned long long)off,
                              (unsigned long long)v->end);
            continue;
        }
        uint64_t block = i - i / (v->chunk_ratio + 1);
        switch (state) {
        case VHDX_BLOCK_NOT_PRESENT:
        case VHDX_BLOCK_UNDEFINED:
        case VHDX_BLOCK_ZERO:
        case VHDX_BLOCK_UNMAPPED:
            break;
        case VHDX_BLOCK_PARTIALLY_PRESENT:
            if (!v->has_parent) {
                r = hvm_error(EINVAL, "%s: VHDX BAT entry %llu (block %llu): partially "
                              "present in a disk without a parent", v->path,
                              (unsigned long long)i, (unsigned long long)block);
                break;
            }
            uint64_t c = block / v->chunk_ratio;
            uint64_t be = le64_get(raw + 8 * (c * (v->chunk_ratio + 1) + v->chunk_ratio));
            if ((be & 7) != VHDX_BITMAP_PRESENT) {
                r = hvm_error(EINVAL, "%s: VHDX BAT entry %llu (block %llu): partially "
                              "present, but chunk %llu has no sector bitmap", v->path,
                              (unsigned long long)i, (unsigned long long)block,
                              (unsigned long long)c);
                break;
            }
            /* fall through */
        case VHDX_BLOCK_FULLY_PRESENT:
            if (off < VHDX_MiB || off > v->end || v->end - off < v->block_size)
                r = hvm_error(EINVAL, "%s: VHDX BAT entry %llu (block %llu): data at %llu is "
                              "past the end of the file (%llu bytes)", v->path,
                              (unsigned long long)i, (unsigned long long)block,
                              (unsigned long long)off, (unsigned long long)v->end);
            break;
        default:
            r = hvm_error(EINVAL, "%s: VHDX BAT entry %llu (block %llu): state %u is not "
                          "defined", v->path, (unsigned long long)i, (unsigned long long)block,
                          state);
        }
    }
    free(raw);
    return r;
}

static int identifier_read(struct vhdx *v)
{
    uint8_t id[520];
    int r = vhdx_file_read(v, id, sizeof id, 0);
    if (r < 0)
        return r;
    if (memcmp(id, "vhdxfile", 8) != 0)
        return hvm_error(EINVAL, "%s: not a VHDX file (no 'vhdxfile' identifier)", v->path);
    v->creator = utf16le_decode(id + 8, 512);
    if (!v->creator && !(v->creator = strdup("")))
        return hvm_error(ENOMEM, "out of memory");
    return 0;
}

int vhdx_open(const char *path, bool header_only, struct vhdx **out)
{
    struct vhdx *v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(path))) {
        free(v);
        return hvm_error(ENOMEM, "out of memory");
    }
    v->bitmap_chunk = UINT64_MAX;
    v->fd = open(path, O_RDONLY | O_CLOEXEC);
    int r;
    if (v->fd < 0) {
        r = hvm_error(errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if ((r = file_size(v->fd, path, &v->file_size)) < 0)
        goto fail;
    v->end = v->file_size;
    if (v->file_size < VHDX_MiB) {
        r = hvm_error(EINVAL, "%s: VHDX file of %llu bytes (shorter than its 1 MiB header "
                      "area)", path, (unsigned long long)v->file_size);
        goto fail;
    }
    if ((r = identifier_read(v)) < 0 || (r = headers_read(v)) < 0)
        goto fail;
    if (!guid_null(v->log_guid) && (r = vhdx_log_replay(v)) < 0)
        goto fail;
    if ((r = regions_read(v)) < 0 || (r = metadata_read(v)) < 0)
        goto fail;
    if (!header_only && (r = bat_read(v)) < 0)
        goto fail;
    *out = v;
    return 0;
fail:
    vhdx_close(v);
    return r;
}

void vhdx_close(struct vhdx *v)
{
    if (!v)
        return;
    if (v->fd >= 0)
        close(v->fd);
    for (size_t i = 0; i < v->overlays; i++)
        free(v->overlay[i].data);
    free(v->overlay);
    free(v->locator.parent_linkage);
    free(v->locator.parent_linkage2);
    free(v->locator.relative_path);
    free(v->locator.volume_path);
    free(v->locator.absolute_win32_path);
    free(v->creator);
    free(v->bat);
    free(v->bitmap);
    free(v->path);
    free(v);
}

static int bitmap_load(struct vhdx *v, uint64_t chunk)
{
    if (v->bitmap_chunk == chunk)
        return 0;
    if (!v->bitmap && !(v->bitmap = malloc(VHDX_MiB)))
        return hvm_error(ENOMEM, "out of memory");
    uint64_t e = v->bat[chunk * (v->chunk_ratio + 1) + v->chunk_ratio];
    int r = vhdx_file_read(v, v->bitmap, VHDX_MiB, (e >> 20) << 20);
    v->bitmap_chunk = r < 0 ? UINT64_MAX : chunk;
    return r;
}

int vhdx_map(struct vhdx *v, uint64_t offset, uint64_t count, uint64_t *run,
             enum vhdx_run *state, uint64_t *file_offset)
{
    if (!v->bat)
        return hvm_error(EINVAL, "%s: opened for its headers only, not for reading", v->path);
    uint64_t block = offset / v->block_size, in = offset % v->block_size;
    uint64_t len = v->block_size - in < count ? v->block_size - in : count;
    uint64_t e = vhdx_payload_entry(v, block);
    *file_offset = 0;
    switch (e & 7) {
    case VHDX_BLOCK_FULLY_PRESENT:
        *state = VHDX_RUN_DATA;
        *file_offset = ((e >> 20) << 20) + in;
        break;
    case VHDX_BLOCK_PARTIALLY_PRESENT: {
        /* Spec 2.5.1.2: bit i (LSB first) of the chunk's bitmap is its
         * logical sector i. */
        uint64_t chunk = block / v->chunk_ratio;
        int r = bitmap_load(v, chunk);
        if (r < 0)
            return r;
        uint64_t base = chunk * v->chunk_ratio * v->block_size;
        uint64_t s = (offset - base) / v->logical_sector;
        uint64_t end_s = (offset - base + len + v->logical_sector - 1) / v->logical_sector;
        bool bit = v->bitmap[s / 8] >> (s % 8) & 1;
        uint64_t t = s + 1;
        while (t < end_s && (v->bitmap[t / 8] >> (t % 8) & 1) == bit)
            t++;
        uint64_t stop = base + t * v->logical_sector;
        if (stop - offset < len)
            len = stop - offset;
        *state = bit ? VHDX_RUN_DATA : VHDX_RUN_PARENT;
        if (bit)
            *file_offset = ((e >> 20) << 20) + in;
        break;
    }
    case VHDX_BLOCK_ZERO:
        /* Spec 2.5.1.1: the block reads as zeros, in a differencing file
         * too (that is how a child trims); libvhdi 20210425 shows the
         * parent instead. */
        *state = VHDX_RUN_ZERO;
        break;
    default: /* not present, undefined, unmapped: the parent's, if any */
        *state = v->has_parent ? VHDX_RUN_PARENT : VHDX_RUN_ZERO;
    }
    *run = len;
    return 0;
}
