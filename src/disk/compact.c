/* compact: release blocks that read as zeros, then give the space back.
 *
 * A dynamic disk's block may go when all its data is zero. A differencing
 * disk's block may go only when each sector it owns is zero and the parent
 * also reads zeros there: otherwise releasing it would reveal the parent's
 * data. The release is one BAT entry (the sectors read the same zeros before
 * and after); the space is then packed by vhd_space_reclaim. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "disk/ops.h"
#include "util/error.h"
#include "vhd/image.h"

static bool is_zero(const uint8_t *p, uint64_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Do the parent layers read zeros over [off, off+len)? */
static int parent_reads_zero(struct disk *d, uint64_t off, uint64_t len, uint8_t *scratch,
                             bool *zero)
{
    *zero = true;
    if (!d->parent)
        return 0;
    while (len > 0 && *zero) {
        uint64_t run;
        bool data;
        int r = disk_chain_status(d->parent, off, len, &run, &data);
        if (r < 0)
            return r;
        if (data) {
            if ((r = disk_pread(d->parent, scratch, run, off)) < 0)
                return r;
            *zero = is_zero(scratch, run);
        }
        off += run;
        len -= run;
    }
    return 0;
}

static int block_releasable(struct disk *d, struct vhd *v, uint32_t b, uint8_t *buf,
                            uint8_t *scratch, bool *release)
{
    uint64_t start = (uint64_t)b * v->block_size;
    uint64_t len = v->block_size;
    int r;
    if (start + len > d->size)
        len = d->size - start;
    *release = false;
    if ((r = vhd_read_own(v, buf, len, start)) < 0)
        return r;
    if (v->footer.type == VHD_TYPE_DYNAMIC) {
        *release = is_zero(buf, len);
        return 0;
    }
    /* Differencing: only the owned runs matter. */
    uint64_t off = 0;
    while (off < len) {
        uint64_t run;
        enum vhd_run st;
        if ((r = vhd_status(v, start + off, len - off, &run, &st)) < 0)
            return r;
        if (st == VHD_RUN_DATA) {
            bool zero;
            if (!is_zero(buf + off, run))
                return 0;
            if ((r = parent_reads_zero(d, start + off, run, scratch, &zero)) < 0 || !zero)
                return r;
        }
        off += run;
    }
    *release = true;
    return 0;
}

int disk_compact(const char *path, uint64_t *freed, const struct disk_progress *pr)
{
    struct disk *d;
    struct vhd *v;
    /* Content does not change: allowed on a protected parent too. */
    int r = disk_open(path, DISK_OPEN_FORCE, &d);
    if (r < 0)
        return r;
    v = disk_vhd_image(d);
    if (!v || !vhd_is_sparse(v)) {
        disk_close(d);
        return hvm_error(EINVAL, "%s: compact works on dynamic and differencing VHDs", path);
    }
    uint8_t *buf = malloc(v->block_size), *scratch = malloc(v->block_size);
    if (!buf || !scratch) {
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    /* Where the block area starts, before any block is released: packing
     * fills the freed slots down to there (a freed first block included). */
    uint64_t data_start = 0;
    for (uint32_t b = 0; b < v->bat_entries; b++)
        if (v->bat[b] != VHD_BAT_UNUSED &&
            (!data_start || vhd_block_offset(v, b) < data_start))
            data_start = vhd_block_offset(v, b);
    for (uint32_t b = 0; b < v->bat_entries; b++) {
        bool release;
        if (v->bat[b] == VHD_BAT_UNUSED)
            continue;
        if ((r = block_releasable(d, v, b, buf, scratch, &release)) < 0)
            goto out;
        if (release)
            vhd_bat_set(v, b, VHD_BAT_UNUSED);
        disk_progress_report(pr, b + 1ull, v->bat_entries);
    }
    if ((r = vhd_flush(v)) < 0)
        goto out;
    r = vhd_space_reclaim(v, data_start, freed);
out:
    free(buf);
    free(scratch);
    disk_close(d);
    return r;
}
