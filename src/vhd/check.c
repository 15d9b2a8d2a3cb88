/* hvm vhd check/repair at the file level: both footers, checksums, the
 * header, every BAT entry (inside the file, clear of the metadata and of
 * each other), locators, and space leaked by an interrupted allocation. */
#include "vhd/check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"
#include "vhd/image.h"

static void add(char (*list)[256], unsigned *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add(char (*list)[256], unsigned *n, const char *fmt, ...)
{
    if (*n >= VHD_CHECK_MAX_ITEMS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(list[*n], 256, fmt, ap);
    va_end(ap);
    (*n)++;
}

#define PROBLEM(rep, ...) add((rep)->problems, &(rep)->n_problems, __VA_ARGS__)
#define NOTE(rep, ...) add((rep)->notes, &(rep)->n_notes, __VA_ARGS__)

static void check_footer_copy(struct vhd *v, struct vhd_check_report *rep)
{
    uint8_t end[VHD_FOOTER_SIZE], copy[VHD_FOOTER_SIZE];
    if (v->footer_from_copy) {
        PROBLEM(rep, "footer at the end is damaged (bad cookie or checksum); the copy at "
                "offset 0 is good: repair rewrites the end");
        return;
    }
    if (!vhd_is_sparse(v))
        return;
    vhd_footer_encode(&v->footer, end);
    if (file_pread(v->fd, v->path, copy, VHD_FOOTER_SIZE, 0) < 0)
        return;
    if (!vhd_footer_valid(copy)) {
        PROBLEM(rep, "footer copy at offset 0 is damaged: repair rewrites it");
        rep->footer_copy_mismatch = true;
    } else if (memcmp(copy, end, VHD_FOOTER_SIZE) != 0) {
        /* Writers update the two copies one after the other; the end wins. */
        NOTE(rep, "footer copy at offset 0 differs from the footer at the end: repair "
             "rewrites it");
        rep->footer_copy_mismatch = true;
    }
}

/* Does [start, end) overlap an allocated block? */
static bool overlaps_block(struct vhd *v, uint64_t start, uint64_t end)
{
    for (uint32_t b = 0; b < v->bat_entries; b++) {
        if (v->bat[b] == VHD_BAT_UNUSED)
            continue;
        uint64_t s = vhd_block_offset(v, b);
        if (start < s + vhd_block_span(v) && s < end)
            return true;
    }
    return false;
}

static void check_locators(struct vhd *v, struct vhd_check_report *rep)
{
    uint64_t bat_end = v->header.table_offset + (uint64_t)v->bat_entries * 4;
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        const struct vhd_locator *l = &v->header.loc[i];
        char code[5];
        if (l->code == VHD_PLAT_NONE)
            continue;
        vhd_code_string(l->code, code);
        /* The data a locator describes must be its own: set-parent and
         * compact keep clear of it, and a write there would change it. */
        uint64_t len = l->data_length, end = l->data_offset + len;
        if (l->data_offset > v->file_size || v->file_size - l->data_offset < l->data_length)
            PROBLEM(rep, "parent locator %d (%s) points past the end of the file", i, code);
        else if (l->data_length > vhd_locator_space_bytes(l))
            PROBLEM(rep, "parent locator %d (%s) is longer (%u) than its space (%llu)", i,
                    code, l->data_length, (unsigned long long)vhd_locator_space_bytes(l));
        else if (len && ((l->data_offset < v->footer.data_offset + VHD_HEADER_SIZE &&
                          end > VHD_FOOTER_SIZE) ||
                         (l->data_offset < bat_end && end > v->header.table_offset)))
            PROBLEM(rep, "parent locator %d (%s) overlaps the header or the BAT", i, code);
        else if (len && overlaps_block(v, l->data_offset, end))
            PROBLEM(rep, "parent locator %d (%s) overlaps a data block", i, code);
        else if (v->footer.type == VHD_TYPE_DIFF && l->code != VHD_PLAT_MAC) {
            char *text = vhd_locator_read(v, i);
            if (!text)
                PROBLEM(rep, "parent locator %d (%s) is not readable text", i, code);
            free(text);
        }
    }
}

/* Bytes of locator data inside [lo, hi): set-parent may append locators
 * after the blocks, and that space is in use, not leaked. */
static uint64_t locator_bytes(const struct vhd *v, uint64_t lo, uint64_t hi)
{
    uint64_t sum = 0;
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        const struct vhd_locator *l = &v->header.loc[i];
        if (l->code == VHD_PLAT_NONE || !l->data_offset)
            continue;
        uint64_t s = l->data_offset > lo ? l->data_offset : lo;
        uint64_t e = l->data_offset + vhd_locator_space_bytes(l);
        if (e > hi)
            e = hi;
        if (s < e)
            sum += e - s;
    }
    return sum;
}

/* Space in [lo, hi) that holds neither blocks nor locators, counted as
 * leaked when it could hold a whole block (alignment padding is smaller). */
static uint64_t leaked_in(const struct vhd *v, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return 0;
    uint64_t gap = hi - lo, loc = locator_bytes(v, lo, hi);
    uint64_t free_bytes = gap > loc ? gap - loc : 0;
    return free_bytes >= vhd_block_span(v) ? free_bytes : 0;
}

static void check_blocks(struct vhd *v, struct vhd_check_report *rep)
{
    struct vhd_block_span *s;
    uint32_t n, k = 0;
    uint64_t span = vhd_block_span(v);
    uint64_t meta = v->header.table_offset + (uint64_t)v->bat_entries * 4;
    if (vhd_blocks_sorted(v, &s, &n) < 0) {
        PROBLEM(rep, "%s", hvm_error_message());
        return;
    }
    rep->blocks_allocated = n;
    /* Blocks that lie outside the data area are reported and then left out
     * of the rest: their "offsets" are not places in this file, so they
     * neither overlap anything nor bound any leaked space. s[0..k) keeps
     * the blocks inside. */
    for (uint32_t i = 0; i < n; i++) {
        if (s[i].start >= v->file_size) {
            PROBLEM(rep, "BAT entry %u points at sector 0x%08x (offset %llu), beyond the end of "
                    "the file (%llu bytes)", s[i].block, v->bat[s[i].block],
                    (unsigned long long)s[i].start, (unsigned long long)v->file_size);
            continue;
        }
        if (s[i].start + span > v->end) {
            PROBLEM(rep, "BAT entry %u points at offset %llu, past the end of the data (%llu)",
                    s[i].block, (unsigned long long)s[i].start, (unsigned long long)v->end);
            continue;
        }
        if (s[i].start < meta && s[i].start + span > v->footer.data_offset)
            PROBLEM(rep, "BAT entry %u (offset %llu) overlaps the header or the BAT",
                    s[i].block, (unsigned long long)s[i].start);
        s[k++] = s[i];
    }
    uint64_t leaked = 0;
    for (uint32_t i = 1; i < k; i++) {
        if (s[i].start < s[i - 1].start + span)
            PROBLEM(rep, "blocks %u and %u overlap (offsets %llu and %llu)", s[i - 1].block,
                    s[i].block, (unsigned long long)s[i - 1].start,
                    (unsigned long long)s[i].start);
        leaked += leaked_in(v, s[i - 1].start + span, s[i].start);
    }
    if (k > 0)
        leaked += leaked_in(v, s[k - 1].start + span, v->end);
    /* A dynamic disk keeps nothing before its blocks: a gap there is a
     * released block that was never packed (compact interrupted). A
     * differencing disk may keep locator room there on purpose. */
    if (k > 0 && v->footer.type == VHD_TYPE_DYNAMIC && s[0].start > vhd_metadata_end(v))
        leaked += leaked_in(v, vhd_metadata_end(v), s[0].start);
    if (k == 0)
        leaked += leaked_in(v, vhd_metadata_end(v), v->end);
    free(s);
    rep->leaked_bytes = leaked;
    if (leaked)
        NOTE(rep, "%llu bytes of leaked space (an interrupted allocation): harmless; "
             "repair reclaims it", (unsigned long long)leaked);
}

static int open_for_check(const char *path, unsigned flags, struct vhd_check_report *rep,
                          struct vhd **v)
{
    memset(rep, 0, sizeof *rep);
    int r = vhd_open(path, flags | VHD_OPEN_LENIENT, v);
    if (r < 0) {
        rep->unreadable = true;
        snprintf(rep->message, sizeof rep->message, "%s", hvm_error_message());
    }
    return r;
}

static void check_open_image(struct vhd *v, struct vhd_check_report *rep)
{
    check_footer_copy(v, rep);
    if (!vhd_is_sparse(v))
        return;
    check_blocks(v, rep);
    check_locators(v, rep);
}

int vhd_check(const char *path, struct vhd_check_report *rep)
{
    struct vhd *v;
    int r = open_for_check(path, VHD_OPEN_READ_ONLY, rep, &v);
    if (r < 0)
        return r;
    check_open_image(v, rep);
    vhd_close(v);
    return 0;
}

int vhd_repair(const char *path, struct vhd_check_report *rep)
{
    struct vhd *v;
    int r = open_for_check(path, 0, rep, &v);
    if (r < 0)
        return r;
    check_open_image(v, rep);
    /* Blocks past the end or overlapping cannot be fixed without choosing
     * which data to lose: leave them to the user. */
    for (unsigned i = 0; i < rep->n_problems; i++)
        if (strstr(rep->problems[i], "BAT entry") || strstr(rep->problems[i], "overlap") ||
            strstr(rep->problems[i], "locator")) {
            vhd_close(v);
            return hvm_error(EINVAL, "%s: %s (cannot be repaired safely)", path,
                             rep->problems[i]);
        }
    struct vhd_check_report before = *rep;
    memset(rep->notes, 0, sizeof rep->notes);
    rep->n_notes = 0;
    if (before.footer_copy_mismatch || v->footer_from_copy) {
        if ((r = vhd_footer_write(v)) < 0)
            goto out;
        /* Drop whatever followed a damaged footer. */
        if (v->file_size > v->end + VHD_FOOTER_SIZE &&
            ftruncate(v->fd, (off_t)(v->end + VHD_FOOTER_SIZE)) < 0) {
            r = hvm_error(errno, "%s: truncate: %s", path, strerror(errno));
            goto out;
        }
        v->file_size = v->end + VHD_FOOTER_SIZE;
        if ((r = file_sync(v->fd, v->path)) < 0)
            goto out;
        NOTE(rep, "rewrote the footer%s", vhd_is_sparse(v) ? " and its copy at offset 0" : "");
    }
    if (vhd_is_sparse(v) && before.leaked_bytes) {
        uint64_t freed;
        if ((r = vhd_space_reclaim(v, 0, &freed)) < 0)
            goto out;
        NOTE(rep, "reclaimed %llu bytes of leaked space", (unsigned long long)freed);
    }
    rep->n_problems = 0;
out:
    {
        int c = vhd_close(v);
        return r < 0 ? r : c;
    }
}
