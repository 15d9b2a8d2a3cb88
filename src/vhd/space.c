/* Moving blocks and giving space back: shared by compact, repair and resize.
 *
 * The order of the writes is what makes a crash harmless at any point:
 *   1. copy the block (bitmap and data) to its new slot, fsync: the new
 *      copy is durable before anything points at it;
 *   2. switch the BAT entry, fsync: readers follow the entry, so before
 *      this they read the old place, after it the new one (both hold the
 *      same bytes); the old place is then merely leaked space;
 *   3. only when every move is durable, write the footer at the new end,
 *      fsync, and truncate: the file always ends in a valid footer, and
 *      nothing cut off by the truncation is still referenced.
 * A destination is never a place some BAT entry still points at (it is
 * free space below the block being packed), so step 1 destroys nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/endian.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vhd/image.h"

#define ALIGN 4096u

static int cmp_span(const void *a, const void *b)
{
    const struct vhd_block_span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int vhd_blocks_sorted(struct vhd *v, struct vhd_block_span **out, uint32_t *n)
{
    struct vhd_block_span *s = malloc(((size_t)v->bat_entries + 1) * sizeof *s);
    uint32_t k = 0;
    if (!s)
        return hvm_error(ENOMEM, "out of memory");
    for (uint32_t b = 0; b < v->bat_entries; b++)
        if (v->bat[b] != VHD_BAT_UNUSED)
            s[k++] = (struct vhd_block_span){b, vhd_block_offset(v, b)};
    qsort(s, k, sizeof *s, cmp_span);
    *out = s;
    *n = k;
    return 0;
}

uint64_t vhd_metadata_end(const struct vhd *v)
{
    uint64_t end = v->footer.data_offset + VHD_HEADER_SIZE;
    uint64_t bat_end = v->header.table_offset +
                       ((uint64_t)v->bat_entries * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
    if (bat_end > end)
        end = bat_end;
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        const struct vhd_locator *l = &v->header.loc[i];
        if (l->code == VHD_PLAT_NONE || !l->data_offset)
            continue;
        uint64_t e = l->data_offset + vhd_locator_space_bytes(l);
        /* Locator data past the blocks (appended by set-parent) does not
         * push the start of the block area. */
        if (e > end && l->data_offset < v->end) {
            bool after_block = false;
            for (uint32_t b = 0; b < v->bat_entries && !after_block; b++)
                after_block = v->bat[b] != VHD_BAT_UNUSED && vhd_block_offset(v, b) < l->data_offset;
            if (!after_block)
                end = e;
        }
    }
    return end;
}

int vhd_block_relocate(struct vhd *v, uint32_t block, uint64_t dest)
{
    uint64_t span = vhd_block_span(v);
    uint64_t src = vhd_block_offset(v, block);
    uint8_t *buf = malloc(span);
    int r;
    if (!buf)
        return hvm_error(ENOMEM, "out of memory");
    if (dest + span > v->end) {
        /* Appending: footer at the new end first. */
        uint64_t old_end = v->end;
        v->end = dest + span;
        if ((r = vhd_footer_write(v)) < 0) {
            v->end = old_end;
            goto out;
        }
        v->file_size = v->end + VHD_FOOTER_SIZE;
    }
    if ((r = file_pread(v->fd, v->path, buf, span, src)) < 0 ||
        (r = file_pwrite(v->fd, v->path, buf, span, dest)) < 0 ||
        (r = file_sync(v->fd, v->path)) < 0)
        goto out;
    /* The bitmap cache is keyed by block number, so it stays valid. */
    vhd_bat_set(v, block, (uint32_t)(dest / VHD_SECTOR));
    r = vhd_flush(v);
out:
    free(buf);
    return r;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* The first place a block may start at or after pos: data 4 KiB aligned. */
static uint64_t slot_at(const struct vhd *v, uint64_t pos)
{
    return align_up(pos + v->bitmap_bytes, ALIGN) - v->bitmap_bytes;
}

int vhd_space_reclaim(struct vhd *v, uint64_t data_start, uint64_t *freed)
{
    struct vhd_block_span *s;
    uint32_t n;
    uint64_t span = vhd_block_span(v);
    uint64_t old_size = v->file_size;
    int r;

    if ((r = vhd_flush(v)) < 0 || (r = vhd_blocks_sorted(v, &s, &n)) < 0)
        return r;
    /* Pack: walk the blocks in file order with a cursor at the first place
     * a block could go. A block with no room for another before it stays;
     * otherwise the last block moves down into the hole at the cursor. */
    uint64_t floor = vhd_metadata_end(v);
    /* Locator data appended after blocks (set-parent on a file with no room
     * before them) must stay where it is: nothing moves below it. */
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        const struct vhd_locator *l = &v->header.loc[i];
        if (l->code != VHD_PLAT_NONE && l->data_offset &&
            l->data_offset + vhd_locator_space_bytes(l) > floor)
            floor = l->data_offset + vhd_locator_space_bytes(l);
    }
    /* A differencing disk may keep spare locator room before its blocks
     * (hvm reserves some, for set-parent): nothing moves below where the
     * block area starts. The caller may know where that was before it
     * released blocks (compact); otherwise it is the first block now. A
     * dynamic disk has no locators: its blocks pack down to the BAT. */
    if (v->footer.type == VHD_TYPE_DIFF) {
        uint64_t start = data_start ? data_start : n ? s[0].start : floor;
        if (n && s[0].start < start)
            start = s[0].start;
        if (start > floor)
            floor = start;
    }
    uint64_t cursor = slot_at(v, floor);
    uint64_t new_end = floor;
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t placed;
        if (s[lo].start < cursor + span) {
            placed = s[lo].start;
            lo++;
        } else {
            hi--;
            if ((r = vhd_block_relocate(v, s[hi].block, cursor)) < 0)
                goto out;
            placed = cursor;
        }
        if (placed + span > new_end)
            new_end = placed + span;
        if (slot_at(v, placed + span) > cursor)
            cursor = slot_at(v, placed + span);
    }
    new_end = align_up(new_end, VHD_SECTOR);
    if (new_end < v->end) {
        v->end = new_end;
        if ((r = vhd_footer_write(v)) < 0 || (r = file_sync(v->fd, v->path)) < 0)
            goto out;
        if (ftruncate(v->fd, (off_t)(new_end + VHD_FOOTER_SIZE)) < 0) {
            r = hvm_error(errno, "%s: truncate: %s", v->path, strerror(errno));
            goto out;
        }
        v->file_size = new_end + VHD_FOOTER_SIZE;
        r = file_sync(v->fd, v->path);
    }
out:
    if (freed)
        *freed = old_size > v->file_size ? old_size - v->file_size : 0;
    free(s);
    return r;
}
