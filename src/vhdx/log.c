/* The VHDX log (spec 2.3.3 and 3.1): finding the active sequence and
 * replaying it, in memory only, as overlays over the file's bytes. A
 * read-only open must never write, so the replay is never made durable
 * here; a later writer replays it for real. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "vhdx/crc32c.h"
#include "vhdx/image.h"
#include "vhdx/le.h"

#define SECTOR 4096u
#define MAX_LOG (256u * 1024 * 1024) /* larger logs are refused, not read */

struct entry {
    uint32_t offset, length, tail;
    uint64_t sequence, flushed_file_offset, last_file_offset;
    uint32_t descriptors;
};

/* Copies len bytes of the circular log starting at off. */
static void log_copy(const uint8_t *log, uint32_t size, uint32_t off, uint8_t *dst, uint32_t len)
{
    uint32_t first = size - off < len ? size - off : len;
    memcpy(dst, log + off, first);
    memcpy(dst + first, log, len - first);
}

/* Is there a valid entry at off (spec 2.3.3.1-2.3.3.4)? buf holds a copy of
 * it on success (size bytes available). */
static bool entry_parse(const struct vhdx *v, const uint8_t *log, uint32_t size, uint32_t off,
                        uint8_t *buf, struct entry *e)
{
    const uint8_t *h = log + off;
    if (memcmp(h, "loge", 4) != 0)
        return false;
    e->offset = off;
    e->length = le32_get(h + 8);
    e->tail = le32_get(h + 12);
    e->sequence = le64_get(h + 16);
    e->descriptors = le32_get(h + 24);
    e->flushed_file_offset = le64_get(h + 48);
    e->last_file_offset = le64_get(h + 56);
    if (e->length == 0 || e->length % SECTOR || e->length > size || e->tail % SECTOR ||
        e->tail >= size || e->sequence == 0 || memcmp(h + 32, v->log_guid, 16) != 0)
        return false;
    uint64_t header_sectors = (64 + (uint64_t)e->descriptors * 32 + SECTOR - 1) / SECTOR;
    if (header_sectors > e->length / SECTOR)
        return false;
    log_copy(log, size, off, buf, e->length);
    if (le32_get(buf + 4) != crc32c_with_hole(buf, e->length, 4))
        return false;
    uint64_t data = 0;
    for (uint32_t i = 0; i < e->descriptors; i++) {
        const uint8_t *d = buf + 64 + 32 * i;
        if (memcmp(d, "zero", 4) == 0) {
            if (le64_get(d + 8) % SECTOR || le64_get(d + 16) % SECTOR)
                return false;
        } else if (memcmp(d, "desc", 4) == 0) {
            if (le64_get(d + 16) % SECTOR)
                return false;
            uint64_t s = header_sectors + data++;
            if (s >= e->length / SECTOR)
                return false;
            const uint8_t *ds = buf + s * SECTOR;
            if (memcmp(ds, "data", 4) != 0 ||
                ((uint64_t)le32_get(ds + 4) << 32 | le32_get(ds + 4092)) != e->sequence)
                return false;
        } else {
            return false;
        }
        if (le64_get(d + 24) != e->sequence)
            return false;
    }
    return header_sectors + data == e->length / SECTOR;
}

static int overlay_add(struct vhdx *v, uint64_t offset, uint64_t length, const uint8_t *lead,
                       const uint8_t *sector, const uint8_t *trail)
{
    struct vhdx_overlay *o = realloc(v->overlay, (v->overlays + 1) * sizeof *o);
    if (!o)
        return hvm_error(ENOMEM, "out of memory");
    v->overlay = o;
    o = &v->overlay[v->overlays];
    o->offset = offset;
    o->length = length;
    o->data = NULL;
    if (sector) {
        if (!(o->data = malloc(SECTOR)))
            return hvm_error(ENOMEM, "out of memory");
        memcpy(o->data, lead, 8);
        memcpy(o->data + 8, sector + 8, SECTOR - 12);
        memcpy(o->data + SECTOR - 4, trail, 4);
    }
    v->overlays++;
    return 0;
}

static int entry_apply(struct vhdx *v, const uint8_t *buf, const struct entry *e)
{
    uint64_t header_sectors = (64 + (uint64_t)e->descriptors * 32 + SECTOR - 1) / SECTOR;
    uint64_t data = 0;
    for (uint32_t i = 0; i < e->descriptors; i++) {
        const uint8_t *d = buf + 64 + 32 * i;
        uint64_t off = le64_get(d + 16);
        int r;
        if (memcmp(d, "zero", 4) == 0) {
            uint64_t len = le64_get(d + 8);
            if (off > VHDX_MAX_SIZE * 2 || len > VHDX_MAX_SIZE * 2)
                return hvm_error(EINVAL, "%s: VHDX log entry %llu: zero descriptor %u at %llu, "
                                 "%llu bytes, is past any possible file", v->path,
                                 (unsigned long long)e->sequence, i, (unsigned long long)off,
                                 (unsigned long long)len);
            r = overlay_add(v, off, len, NULL, NULL, NULL);
        } else {
            if (off < VHDX_MiB || off > VHDX_MAX_SIZE * 2)
                return hvm_error(EINVAL, "%s: VHDX log entry %llu: descriptor %u writes the "
                                 "header area or past any possible file (at %llu)", v->path,
                                 (unsigned long long)e->sequence, i, (unsigned long long)off);
            r = overlay_add(v, off, SECTOR, d + 8, buf + (header_sectors + data++) * SECTOR,
                            d + 4);
        }
        if (r < 0)
            return r;
        if (off + (memcmp(d, "zero", 4) == 0 ? le64_get(d + 8) : SECTOR) > v->end)
            v->end = off + (memcmp(d, "zero", 4) == 0 ? le64_get(d + 8) : SECTOR);
    }
    return 0;
}

int vhdx_log_replay(struct vhdx *v)
{
    uint32_t size = v->log_length;
    if (size > MAX_LOG)
        return hvm_error(EINVAL, "%s: VHDX log of %u bytes needs replay; hvm replays logs of "
                         "at most %u MiB", v->path, size, MAX_LOG / VHDX_MiB);
    uint8_t *log = malloc(size), *buf = malloc(size);
    int r = 0;
    if (!log || !buf) {
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    if ((r = vhdx_file_read(v, log, size, v->log_offset)) < 0)
        goto out;
    /* Spec 2.3.3: the active sequence is the run of valid entries with
     * consecutive sequence numbers whose last (head) entry's tail points at
     * its first; of several, the one with the largest head sequence number. */
    /* Each place is parsed once (its CRC is the costly part), so the walks
     * from every starting place cost no more than the parses. */
    uint32_t places = size / SECTOR;
    struct entry *ents = calloc(places, sizeof *ents);
    uint8_t *known = calloc(places, 1); /* 0 not parsed, 1 valid, 2 not an entry */
    if (!ents || !known) {
        free(ents);
        free(known);
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
#define PARSED(at) (known[(at) / SECTOR] ? known[(at) / SECTOR] == 1                          \
                    : (known[(at) / SECTOR] = entry_parse(v, log, size, (at), buf,           \
                                                          &ents[(at) / SECTOR]) ? 1 : 2) == 1)
    struct entry best_head = {0};
    uint32_t best_start = 0;
    bool found = false;
    for (uint32_t s = 0; s < size; s += SECTOR) {
        struct entry e, head;
        if (!PARSED(s))
            continue;
        e = ents[s / SECTOR];
        head = e;
        uint64_t covered = e.length;
        for (;;) {
            uint32_t next = (uint32_t)((head.offset + (uint64_t)head.length) % size);
            struct entry n;
            if (covered >= size || !PARSED(next))
                break;
            n = ents[next / SECTOR];
            if (n.sequence != head.sequence + 1 || covered + n.length > size)
                break;
            covered += n.length;
            head = n;
        }
        if (head.tail == s && (!found || head.sequence > best_head.sequence)) {
            best_head = head;
            best_start = s;
            found = true;
        }
    }
#undef PARSED
    free(ents);
    free(known);
    if (!found) {
        v->log_state = VHDX_LOG_EMPTY;
        goto out;
    }
    if (best_head.flushed_file_offset > v->file_size) {
        r = hvm_error(EINVAL, "%s: VHDX log: the file is %llu bytes, shorter than the %llu "
                      "the log recorded as flushed (truncated)", v->path,
                      (unsigned long long)v->file_size,
                      (unsigned long long)best_head.flushed_file_offset);
        goto out;
    }
    if (best_head.last_file_offset > v->end) {
        if (best_head.last_file_offset > VHDX_MAX_SIZE * 2) {
            r = hvm_error(EINVAL, "%s: VHDX log: last file offset %llu is past any possible "
                          "file", v->path, (unsigned long long)best_head.last_file_offset);
            goto out;
        }
        v->end = best_head.last_file_offset;
    }
    uint32_t at = best_start;
    for (;;) {
        struct entry e;
        entry_parse(v, log, size, at, buf, &e);
        if ((r = entry_apply(v, buf, &e)) < 0)
            goto out;
        v->log_entries++;
        if (e.sequence == best_head.sequence)
            break;
        at = (uint32_t)((at + (uint64_t)e.length) % size);
    }
    v->log_state = VHDX_LOG_REPLAYED;
    v->log_head_sequence = best_head.sequence;
out:
    free(log);
    free(buf);
    return r;
}
