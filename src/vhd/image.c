/* Opening a VHD, and the block-level read/write/allocate rules.
 *
 * Crash safety (kill -9 at any moment, and power loss for flushed data):
 *  - A new block is laid out past the old end: the new footer is written
 *    first at the new end (so the file always ends in a valid footer), then
 *    the block's bitmap and data over the old footer's place.
 *  - The BAT entry that makes the block visible, and bitmap bits of
 *    differencing blocks, are kept in memory and written only by
 *    vhd_flush(), after fdatasync() of the data. A crash before the flush
 *    leaves the writes since the previous flush invisible (the old data
 *    reads) and the new blocks unreferenced: leaked space that check reports
 *    and repair reclaims, never wrong data.
 *  - A dirty bitmap that has to leave the cache forces a flush first. */
#include "vhd/image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/endian.h"
#include "util/crashpoint.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/filelock.h"
#include "util/iov.h"
#include "util/uuid.h"

#define VHD_CACHE_SLOTS 1024u
#define VHD_MAX_BLOCK_SIZE (256u << 20)
#define VHD_ALIGN 4096u

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static int read_footer(struct vhd *v)
{
    uint8_t buf[VHD_FOOTER_SIZE];
    uint8_t copy[VHD_FOOTER_SIZE];
    int r;

    if (v->file_size < VHD_FOOTER_SIZE)
        return hvm_error(EINVAL, "%s: not a VHD file (only %llu bytes long)", v->path,
                         (unsigned long long)v->file_size);
    r = file_pread(v->fd, v->path, buf, VHD_FOOTER_SIZE, v->file_size - VHD_FOOTER_SIZE);
    if (r < 0)
        return r;
    if (vhd_footer_valid(buf)) {
        vhd_footer_decode(buf, &v->footer);
        v->end = v->file_size - VHD_FOOTER_SIZE;
        return 0;
    }
    /* Very old writers left a 511-byte footer. */
    if (v->file_size % VHD_SECTOR == 511) {
        uint8_t old[VHD_FOOTER_SIZE] = {0};
        r = file_pread(v->fd, v->path, old, 511, v->file_size - 511);
        if (r < 0)
            return r;
        if (vhd_footer_valid(old)) {
            vhd_footer_decode(old, &v->footer);
            v->end = v->file_size - 511;
            return 0;
        }
    }
    r = file_pread(v->fd, v->path, copy, VHD_FOOTER_SIZE, 0);
    if (r < 0)
        return r;
    if (vhd_footer_valid(copy)) {
        struct vhd_footer f;
        vhd_footer_decode(copy, &f);
        if (f.type == VHD_TYPE_DYNAMIC || f.type == VHD_TYPE_DIFF) {
            v->footer = f;
            v->footer_from_copy = true;
            /* The end is fixed up once the BAT is known (see find_end). */
            v->end = v->file_size >= 2 * VHD_FOOTER_SIZE ? v->file_size - VHD_FOOTER_SIZE : 0;
            return 0;
        }
    }
    if (memcmp(buf, "conectix", 8) != 0)
        return hvm_error(EINVAL, "%s: not a VHD file (no 'conectix' footer at the end "
                         "and no valid copy at the start)", v->path);
    return hvm_error(EINVAL, "%s: footer checksum mismatch (stored 0x%08x, computed "
                     "0x%08x) and no valid footer copy at offset 0", v->path,
                     be32_get(buf + 64), vhd_checksum(buf, VHD_FOOTER_SIZE, 64));
}

static int check_footer(struct vhd *v)
{
    const struct vhd_footer *f = &v->footer;
    if (f->type != VHD_TYPE_FIXED && f->type != VHD_TYPE_DYNAMIC && f->type != VHD_TYPE_DIFF)
        return hvm_error(EINVAL, "%s: unsupported disk type %u in footer", v->path, f->type);
    if (f->current_size % VHD_SECTOR)
        return hvm_error(EINVAL, "%s: virtual size %llu is not a multiple of 512", v->path,
                         (unsigned long long)f->current_size);
    if (f->current_size > (2048ull << 30))
        return hvm_error(EINVAL, "%s: virtual size %llu is beyond the VHD limit of 2 TiB",
                         v->path, (unsigned long long)f->current_size);
    v->size = f->current_size;
    if (f->type == VHD_TYPE_FIXED && v->size > v->end)
        return hvm_error(EINVAL, "%s: truncated: a fixed disk of %llu bytes needs a file of "
                         "%llu bytes, this one has %llu", v->path,
                         (unsigned long long)v->size,
                         (unsigned long long)(v->size + VHD_FOOTER_SIZE),
                         (unsigned long long)v->file_size);
    return 0;
}

static int read_header(struct vhd *v)
{
    uint8_t buf[VHD_HEADER_SIZE];
    uint64_t off = v->footer.data_offset;
    int r;

    if (off == UINT64_MAX || off < VHD_FOOTER_SIZE || off > v->file_size ||
        v->file_size - off < VHD_HEADER_SIZE)
        return hvm_error(EINVAL, "%s: dynamic header offset %llu is outside the file",
                         v->path, (unsigned long long)off);
    r = file_pread(v->fd, v->path, buf, VHD_HEADER_SIZE, off);
    if (r < 0)
        return r;
    if (memcmp(buf, "cxsparse", 8) != 0)
        return hvm_error(EINVAL, "%s: no dynamic disk header ('cxsparse') at offset %llu",
                         v->path, (unsigned long long)off);
    if (!vhd_header_valid(buf))
        return hvm_error(EINVAL, "%s: dynamic header checksum mismatch (stored 0x%08x, "
                         "computed 0x%08x)", v->path, be32_get(buf + 36),
                         vhd_checksum(buf, VHD_HEADER_SIZE, 36));
    vhd_header_decode(buf, &v->header);

    uint32_t bs = v->header.block_size;
    if (bs < VHD_SECTOR || bs > VHD_MAX_BLOCK_SIZE || (bs & (bs - 1)))
        return hvm_error(EINVAL, "%s: block size %u is not a power of two between 512 "
                         "bytes and 256 MiB", v->path, bs);
    v->block_size = bs;
    v->block_sectors = bs / VHD_SECTOR;
    v->bitmap_bytes = (uint32_t)align_up((v->block_sectors + 7) / 8, VHD_SECTOR);

    uint64_t needed = (v->size + bs - 1) / bs;
    if (v->header.max_table_entries < needed)
        return hvm_error(EINVAL, "%s: BAT has %u entries, a %llu-byte disk needs %llu",
                         v->path, v->header.max_table_entries,
                         (unsigned long long)v->size, (unsigned long long)needed);
    /* The table may have more entries than the size needs (spec), but never
     * more than a 2 TiB disk of this block size would: a damaged count must
     * not make us read and hold gigabytes of table. */
    uint64_t most = ((2048ull << 30) + bs - 1) / bs;
    if (v->header.max_table_entries > (needed > most ? needed : most))
        return hvm_error(EINVAL, "%s: BAT has %u entries, more than any disk of %u-byte "
                         "blocks can use (%llu)", v->path, v->header.max_table_entries, bs,
                         (unsigned long long)most);
    uint64_t bat_bytes = (uint64_t)v->header.max_table_entries * 4;
    if (v->header.table_offset > v->file_size || v->file_size - v->header.table_offset < bat_bytes)
        return hvm_error(EINVAL, "%s: BAT (%llu bytes at offset %llu) extends past the end "
                         "of the file", v->path, (unsigned long long)bat_bytes,
                         (unsigned long long)v->header.table_offset);
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Every allocated block must lie inside the file, after the metadata, and
 * no two may overlap: a write to one would then corrupt the other. */
static int check_bat(struct vhd *v)
{
    uint32_t n = 0;
    uint64_t span = v->bitmap_bytes + (uint64_t)v->block_size;
    uint64_t meta_end = v->header.table_offset + (uint64_t)v->bat_entries * 4;
    int r = 0;
    /* check.c examines a lenient open itself and lists every problem. */
    if (v->lenient)
        return 0;
    uint32_t *sorted = malloc(((size_t)v->bat_entries + 1) * sizeof *sorted);
    if (!sorted)
        return hvm_error(ENOMEM, "%s: out of memory for the BAT", v->path);
    for (uint32_t i = 0; i < v->bat_entries && r == 0; i++) {
        uint32_t e = v->bat[i];
        if (e == VHD_BAT_UNUSED)
            continue;
        uint64_t start = (uint64_t)e * VHD_SECTOR;
        if (start + span > v->end)
            r = hvm_error(EINVAL, "%s: BAT entry %u points at offset %llu, past the end of "
                          "the data (%llu)", v->path, i, (unsigned long long)start,
                          (unsigned long long)v->end);
        else if (start < meta_end && start + span > v->footer.data_offset)
            r = hvm_error(EINVAL, "%s: BAT entry %u (offset %llu) overlaps the header or "
                          "the BAT", v->path, i, (unsigned long long)start);
        sorted[n++] = e;
    }
    if (r == 0)
        qsort(sorted, n, sizeof *sorted, cmp_u32);
    for (uint32_t i = 1; i < n && r == 0; i++)
        if ((uint64_t)(sorted[i] - sorted[i - 1]) * VHD_SECTOR < span)
            r = hvm_error(EINVAL, "%s: blocks at offsets %llu and %llu overlap", v->path,
                          (unsigned long long)sorted[i - 1] * VHD_SECTOR,
                          (unsigned long long)sorted[i] * VHD_SECTOR);
    free(sorted);
    return r;
}

static int read_bat(struct vhd *v)
{
    enum { CHUNK_ENTRIES = 65536 };
    uint64_t bytes = (uint64_t)v->header.max_table_entries * 4;
    uint8_t *raw = malloc(CHUNK_ENTRIES * 4);
    int r = 0;

    v->bat_entries = v->header.max_table_entries;
    v->bat = malloc((v->bat_entries ? v->bat_entries : 1) * sizeof *v->bat);
    if (!raw || !v->bat) {
        free(raw);
        return hvm_error(ENOMEM, "%s: out of memory for a BAT of %u entries", v->path,
                         v->bat_entries);
    }
    /* In pieces: no second copy of a large table. */
    for (uint64_t i = 0; i < v->bat_entries && r == 0; i += CHUNK_ENTRIES) {
        uint64_t n = v->bat_entries - i < CHUNK_ENTRIES ? v->bat_entries - i : CHUNK_ENTRIES;
        r = file_pread(v->fd, v->path, raw, n * 4, v->header.table_offset + i * 4);
        for (uint64_t k = 0; r == 0 && k < n; k++)
            v->bat[i + k] = be32_get(raw + 4 * k);
    }
    free(raw);
    if (r < 0)
        return r;
    if (v->footer_from_copy) {
        /* The trailing footer was unusable: the end is after the last block. */
        uint64_t last = v->header.table_offset + bytes;
        for (uint32_t i = 0; i < v->bat_entries; i++)
            if (v->bat[i] != VHD_BAT_UNUSED) {
                uint64_t e = (uint64_t)v->bat[i] * VHD_SECTOR + v->bitmap_bytes + v->block_size;
                if (e > last)
                    last = e;
            }
        last = align_up(last, VHD_SECTOR);
        /* Never past the end of the file: a block beyond it means the file
         * was cut short, which check_bat must see and refuse. */
        if (last > v->file_size)
            last = v->file_size;
        if (last > v->end)
            v->end = last;
    }
    return check_bat(v);
}

int vhd_open(const char *path, unsigned flags, struct vhd **out)
{
    struct vhd *v = calloc(1, sizeof *v);
    int r;

    if (!v)
        return hvm_error(ENOMEM, "out of memory");
    v->fd = -1;
    v->path = strdup(path);
    v->read_only = flags & VHD_OPEN_READ_ONLY;
    v->lenient = flags & VHD_OPEN_LENIENT;
    v->bat_dirty_lo = UINT64_MAX;
    if (!v->path) {
        free(v);
        return hvm_error(ENOMEM, "out of memory");
    }
    /* O_NONBLOCK: a FIFO named by a parent locator must not hang the open
     * (it is refused just below); it changes nothing for regular files. */
    v->fd = open(path, (v->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
    if (v->fd < 0) {
        r = hvm_error(errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    /* Locked before anything is read: what a writer still had to write
     * when we read would be lost to us. */
    if ((!v->read_only || (flags & VHD_OPEN_LOCK_SHARED)) &&
        (r = file_lock_take(v->fd, path, v->read_only ? FILE_LOCK_SHARED : FILE_LOCK_EXCLUSIVE,
                            &v->lock)) < 0)
        goto fail;
    struct stat st;
    if (fstat(v->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = hvm_error(EINVAL, "%s: not a regular file", path);
        goto fail;
    }
    v->file_size = (uint64_t)st.st_size;
    if ((r = read_footer(v)) < 0 || (r = check_footer(v)) < 0)
        goto fail;
    if (vhd_is_sparse(v)) {
        if ((r = read_header(v)) < 0)
            goto fail;
        if (flags & VHD_OPEN_HEADER_ONLY) {
            *out = v;
            return 0;
        }
        if ((r = read_bat(v)) < 0)
            goto fail;
        v->cache_slots = VHD_CACHE_SLOTS;
        v->cache = calloc(v->cache_slots, sizeof *v->cache);
        if (!v->cache) {
            r = hvm_error(ENOMEM, "out of memory");
            goto fail;
        }
    }
    *out = v;
    return 0;
fail:
    v->read_only = true;
    vhd_close(v);
    return r;
}

int vhd_close(struct vhd *v)
{
    int r = 0;
    if (!v)
        return 0;
    if (!v->read_only && v->fd >= 0)
        r = vhd_flush(v);
    if (v->fd >= 0)
        close(v->fd);
    file_lock_release(v->lock); /* after the last write */
    for (unsigned i = 0; v->cache && i < v->cache_slots; i++)
        free(v->cache[i].bits);
    free(v->cache);
    free(v->bat);
    free(v->path);
    free(v);
    return r;
}

void vhd_advise(const struct vhd *v, uint64_t offset, uint64_t count)
{
    if (!vhd_is_sparse(v) || count == 0)
        return;
    uint64_t first = offset / v->block_size, last = (offset + count - 1) / v->block_size;
    for (uint64_t b = first; b <= last && b < v->bat_entries; b++)
        if (v->bat[b] != VHD_BAT_UNUSED)
            (void)posix_fadvise(v->fd, (off_t)vhd_block_offset(v, (uint32_t)b),
                                (off_t)v->bitmap_bytes, POSIX_FADV_WILLNEED);
}

uint64_t vhd_block_offset(const struct vhd *v, uint32_t block)
{
    return (uint64_t)v->bat[block] * VHD_SECTOR;
}

static int bitmap_load(struct vhd *v, uint32_t block, struct vhd_bitmap_slot **out)
{
    struct vhd_bitmap_slot *s = &v->cache[block % v->cache_slots];
    int r;
    if (s->valid && s->block == block) {
        *out = s;
        return 0;
    }
    if (s->valid && s->dirty && (r = vhd_flush(v)) < 0)
        return r;
    if (!s->bits && !(s->bits = malloc(v->bitmap_bytes)))
        return hvm_error(ENOMEM, "out of memory");
    s->valid = false;
    r = file_pread(v->fd, v->path, s->bits, v->bitmap_bytes, vhd_block_offset(v, block));
    if (r < 0)
        return r;
    s->valid = true;
    s->dirty = false;
    s->block = block;
    *out = s;
    return 0;
}

int vhd_bitmap_get(struct vhd *v, uint32_t block, const uint8_t **bits)
{
    struct vhd_bitmap_slot *s = NULL;
    int r = bitmap_load(v, block, &s);
    if (r == 0)
        *bits = s->bits;
    return r;
}

static inline bool bit_get(const uint8_t *bits, uint32_t i)
{
    return bits[i / 8] & (0x80 >> (i % 8));
}

static inline void bit_set(uint8_t *bits, uint32_t i)
{
    bits[i / 8] |= (uint8_t)(0x80 >> (i % 8));
}

int vhd_status(struct vhd *v, uint64_t offset, uint64_t count, uint64_t *run,
               enum vhd_run *state)
{
    if (!vhd_is_sparse(v)) {
        *state = VHD_RUN_DATA;
        *run = count;
        return 0;
    }
    uint32_t block = (uint32_t)(offset / v->block_size);
    uint64_t in_block = offset % v->block_size;
    uint64_t len;

    if (v->bat[block] == VHD_BAT_UNUSED) {
        /* Coalesce consecutive absent blocks: sparse areas are often huge. */
        *state = VHD_RUN_ABSENT;
        len = v->block_size - in_block;
        for (uint32_t b = block + 1; len < count && b < v->bat_entries &&
             v->bat[b] == VHD_BAT_UNUSED; b++)
            len += v->block_size;
    } else if (v->footer.type == VHD_TYPE_DYNAMIC) {
        /* A dynamic disk's allocated block is data whatever its bitmap says. */
        *state = VHD_RUN_DATA;
        len = v->block_size - in_block;
        for (uint32_t b = block + 1; len < count && b < v->bat_entries &&
             v->bat[b] != VHD_BAT_UNUSED; b++)
            len += v->block_size;
    } else {
        const uint8_t *bits;
        int r = vhd_bitmap_get(v, block, &bits);
        if (r < 0)
            return r;
        uint32_t s = (uint32_t)(in_block / VHD_SECTOR);
        bool own = bit_get(bits, s);
        uint32_t e = s + 1;
        /* Skip whole bytes of equal bits quickly. */
        while (e < v->block_sectors) {
            if (e % 8 == 0 && e + 8 <= v->block_sectors &&
                bits[e / 8] == (own ? 0xFF : 0x00)) {
                e += 8;
                continue;
            }
            if (bit_get(bits, e) != own)
                break;
            e++;
        }
        *state = own ? VHD_RUN_DATA : VHD_RUN_ABSENT;
        len = (uint64_t)e * VHD_SECTOR - in_block;
    }
    *run = len < count ? len : count;
    return 0;
}

int vhd_read_own(struct vhd *v, void *buf, uint64_t count, uint64_t offset)
{
    uint8_t *p = buf;
    if (!vhd_is_sparse(v))
        return file_pread(v->fd, v->path, buf, count, offset);
    while (count > 0) {
        uint32_t block = (uint32_t)(offset / v->block_size);
        uint64_t in_block = offset % v->block_size;
        uint64_t n = v->block_size - in_block;
        if (n > count)
            n = count;
        if (v->bat[block] == VHD_BAT_UNUSED) {
            memset(p, 0, n);
        } else {
            int r = file_pread(v->fd, v->path, p, n,
                               vhd_block_offset(v, block) + v->bitmap_bytes + in_block);
            if (r < 0)
                return r;
        }
        p += n;
        offset += n;
        count -= n;
    }
    return 0;
}

static void bat_mark_dirty(struct vhd *v, uint32_t block)
{
    if (block < v->bat_dirty_lo)
        v->bat_dirty_lo = block;
    if (block + 1ull > v->bat_dirty_hi || v->bat_dirty_hi == 0)
        v->bat_dirty_hi = block + 1ull;
}

int vhd_bat_set(struct vhd *v, uint32_t block, uint32_t sector)
{
    v->bat[block] = sector;
    bat_mark_dirty(v, block);
    return 0;
}

/* Appends a new block at the end, as described at the top of this file. */
static int block_allocate(struct vhd *v, uint32_t block, const uint8_t *bitmap)
{
    /* Data on a 4 KiB boundary, as Windows lays it out. */
    uint64_t start = align_up(v->end + v->bitmap_bytes, VHD_ALIGN) - v->bitmap_bytes;
    uint64_t new_end = start + v->bitmap_bytes + v->block_size;
    uint8_t foot[VHD_FOOTER_SIZE];
    int r;

    if (start / VHD_SECTOR >= VHD_BAT_UNUSED)
        return hvm_error(EFBIG, "%s: file would exceed the VHD limit of 2 TiB of blocks",
                         v->path);
    vhd_footer_encode(&v->footer, foot);
    if ((r = file_pwrite(v->fd, v->path, foot, VHD_FOOTER_SIZE, new_end)) < 0)
        return r;
    /* Zero the gap and the old footer's sector so that no stale footer
     * lingers inside the data area. */
    if (start > v->end) {
        uint8_t zero[VHD_ALIGN] = {0};
        if ((r = file_pwrite(v->fd, v->path, zero, start - v->end, v->end)) < 0)
            return r;
    }
    if ((r = file_pwrite(v->fd, v->path, bitmap, v->bitmap_bytes, start)) < 0)
        return r;
    if (start + v->bitmap_bytes < v->end + VHD_FOOTER_SIZE) {
        uint8_t zero[VHD_FOOTER_SIZE] = {0};
        uint64_t at = start + v->bitmap_bytes;
        if ((r = file_pwrite(v->fd, v->path, zero, v->end + VHD_FOOTER_SIZE - at, at)) < 0)
            return r;
    }
    v->end = new_end;
    v->file_size = new_end + VHD_FOOTER_SIZE;
    return vhd_bat_set(v, block, (uint32_t)(start / VHD_SECTOR));
}

static int write_chunk(struct vhd *v, uint32_t block, const struct iovec *iov, int cnt,
                       uint64_t n, uint64_t in_block)
{
    uint32_t s0 = (uint32_t)(in_block / VHD_SECTOR);
    uint32_t s1 = (uint32_t)((in_block + n) / VHD_SECTOR);
    bool diff = v->footer.type == VHD_TYPE_DIFF;
    struct vhd_bitmap_slot *slot = NULL;
    int r;

    if (v->bat[block] == VHD_BAT_UNUSED) {
        if (!diff && iov_is_zero(iov, cnt))
            return 0;
        uint8_t *bits = malloc(v->bitmap_bytes);
        if (!bits)
            return hvm_error(ENOMEM, "out of memory");
        /* Dynamic: every sector of the block is data. Differencing: none yet;
         * the bits for this write are set in the cache and written at flush. */
        memset(bits, diff ? 0x00 : 0xFF, v->bitmap_bytes);
        r = block_allocate(v, block, bits);
        free(bits);
        if (r < 0)
            return r;
    }
    r = file_pwritev(v->fd, v->path, iov, cnt, vhd_block_offset(v, block) + v->bitmap_bytes + in_block);
    if (r < 0 || !diff)
        return r;
    if ((r = bitmap_load(v, block, &slot)) < 0)
        return r;
    for (uint32_t s = s0; s < s1; s++) {
        if (!bit_get(slot->bits, s)) {
            bit_set(slot->bits, s);
            if (!slot->dirty) {
                slot->dirty = true;
                v->dirty_bitmaps++;
            }
        }
    }
    return 0;
}

int vhd_writev_own(struct vhd *v, const struct iovec *iov, int cnt, uint64_t offset)
{
    uint64_t count = iov_total(iov, cnt);
    if (v->read_only)
        return hvm_error(EROFS, "%s: opened read-only", v->path);
    if (offset % VHD_SECTOR || count % VHD_SECTOR)
        return hvm_error(EINVAL, "%s: unaligned write", v->path);
    if (cnt > IOV_MAX)
        return hvm_error(EINVAL, "%s: write in more than %d pieces", v->path, IOV_MAX);
    if (!vhd_is_sparse(v))
        return file_pwritev(v->fd, v->path, iov, cnt, offset);
    struct iovec piece[IOV_MAX];
    struct iov_cursor c = iov_cursor(iov, cnt);
    while (count > 0) {
        uint32_t block = (uint32_t)(offset / v->block_size);
        uint64_t in_block = offset % v->block_size;
        uint64_t n = v->block_size - in_block;
        if (n > count)
            n = count;
        int k = iov_cursor_take(&c, n, piece, IOV_MAX);
        int r = k < 0 ? hvm_error(EINVAL, "%s: bad write list", v->path)
                      : write_chunk(v, block, piece, k, n, in_block);
        if (r < 0)
            return r;
        offset += n;
        count -= n;
    }
    return 0;
}

int vhd_write_own(struct vhd *v, const void *buf, uint64_t count, uint64_t offset)
{
    struct iovec one = {(void *)buf, count};
    return vhd_writev_own(v, &one, 1, offset);
}

static int write_dirty_bat(struct vhd *v)
{
    if (v->bat_dirty_lo == UINT64_MAX)
        return 0;
    /* Whole sectors of the BAT, so that the padding stays as it was. */
    uint64_t lo = v->bat_dirty_lo / 128 * 128;
    uint64_t hi = v->bat_dirty_hi;
    if (hi > v->bat_entries)
        hi = v->bat_entries;
    uint64_t bytes = (hi - lo) * 4;
    uint8_t *raw = malloc(bytes);
    if (!raw)
        return hvm_error(ENOMEM, "out of memory");
    for (uint64_t i = lo; i < hi; i++)
        be32_put(raw + 4 * (i - lo), v->bat[i]);
    int r = file_pwrite(v->fd, v->path, raw, bytes, v->header.table_offset + lo * 4);
    free(raw);
    if (r == 0) {
        v->bat_dirty_lo = UINT64_MAX;
        v->bat_dirty_hi = 0;
    }
    return r;
}

int vhd_flush(struct vhd *v)
{
    int r;
    if (v->read_only)
        return 0;
    bool meta = v->dirty_bitmaps || v->bat_dirty_lo != UINT64_MAX;
    /* Barrier: data and new blocks reach the disk before the metadata that
     * points at them. */
    if ((r = file_sync(v->fd, v->path)) < 0 || !meta)
        return r;
    for (unsigned i = 0; v->dirty_bitmaps && i < v->cache_slots; i++) {
        struct vhd_bitmap_slot *s = &v->cache[i];
        if (!s->valid || !s->dirty)
            continue;
        r = file_pwrite(v->fd, v->path, s->bits, v->bitmap_bytes, vhd_block_offset(v, s->block));
        if (r < 0)
            return r;
        s->dirty = false;
        v->dirty_bitmaps--;
    }
    if ((r = write_dirty_bat(v)) < 0)
        return r;
    return file_sync(v->fd, v->path);
}

int vhd_discard(struct vhd *v, uint64_t count, uint64_t offset)
{
    if (v->read_only)
        return hvm_error(EROFS, "%s: opened read-only", v->path);
    if (!vhd_is_sparse(v))
        return 0;
    uint64_t first = (offset + v->block_size - 1) / v->block_size;
    uint64_t last = (offset + count) / v->block_size;
    for (uint64_t b = first; b < last && b < v->bat_entries; b++) {
        if (v->bat[b] == VHD_BAT_UNUSED)
            continue;
        uint64_t at = vhd_block_offset(v, (uint32_t)b) + v->bitmap_bytes;
        if (fallocate(v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)at,
                      (off_t)v->block_size) < 0) {
            /* Without hole punching, write the zeros. */
            for (uint64_t o = 0; o < v->block_size; o += sizeof zero_buffer) {
                uint64_t n = v->block_size - o < sizeof zero_buffer ? v->block_size - o
                                                                    : sizeof zero_buffer;
                int r = file_pwrite(v->fd, v->path, zero_buffer, n, at + o);
                if (r < 0)
                    return r;
            }
        }
    }
    return 0;
}

int vhd_footer_write(struct vhd *v)
{
    uint8_t buf[VHD_FOOTER_SIZE];
    int r;
    vhd_footer_encode(&v->footer, buf);
    vhd_footer_decode(buf, &v->footer);
    if ((r = file_pwrite(v->fd, v->path, buf, VHD_FOOTER_SIZE, v->end)) < 0)
        return r;
    hvm_crash_point("footer-copy");
    if (vhd_is_sparse(v) || v->footer.type == VHD_TYPE_DIFF)
        r = file_pwrite(v->fd, v->path, buf, VHD_FOOTER_SIZE, 0);
    if (r == 0)
        v->footer_from_copy = false;
    return r;
}

int vhd_header_write(struct vhd *v)
{
    uint8_t buf[VHD_HEADER_SIZE];
    vhd_header_encode(&v->header, buf);
    vhd_header_decode(buf, &v->header);
    return file_pwrite(v->fd, v->path, buf, VHD_HEADER_SIZE, v->footer.data_offset);
}

int vhd_new_identity(struct vhd *v)
{
    int r;
    uuid_generate_bytes(v->footer.unique_id);
    if ((r = vhd_footer_write(v)) < 0)
        return r;
    return file_sync(v->fd, v->path);
}
