/* resize: grow a fixed or dynamic disk.
 *
 * Growing keeps every existing byte and adds zeros. The disk gets a new
 * unique id because children made from it no longer match it (their size
 * differs). Order for a dynamic disk: make room for the larger BAT (moving
 * blocks in the way to the end, each move crash-safe), write the new BAT
 * entries as unused, then the header, then the footer with the new size:
 * until that last write the disk reads as before. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/ops.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/uuid.h"
#include "vhd/image.h"

static int grow_fixed(struct vhd *v, uint64_t size)
{
    uint64_t old = v->end;
    uint8_t zero[VHD_FOOTER_SIZE] = {0};
    int r;
    /* The new space reserved first, past the end, the file unchanged: a
     * full filesystem refuses the resize with the disk as it was. */
    int later = vhd_fixed_reserve(v->fd, v->path, v->file_size,
                                  size + VHD_FOOTER_SIZE - v->file_size);
    if (later < 0)
        return later;
    v->footer.current_size = size;
    v->footer.geometry = vhd_geometry_for_size(size);
    uuid_generate_bytes(v->footer.unique_id);
    /* The new footer first (it extends the file), then the old footer's
     * place becomes zeros of the new data area. */
    v->end = size;
    if ((r = vhd_footer_write(v)) < 0 || (r = file_sync(v->fd, v->path)) < 0)
        return r;
    v->file_size = size + VHD_FOOTER_SIZE;
    if (later && (r = vhd_fixed_reserve_inside(v->fd, v->path, old, size - old)) < 0)
        return r;
    if ((r = file_pwrite(v->fd, v->path, zero, sizeof zero, old)) < 0)
        return r;
    return file_sync(v->fd, v->path);
}

static int grow_bat(struct vhd *v, uint32_t entries)
{
    uint64_t bat_end = v->header.table_offset +
                       ((uint64_t)entries * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
    int r;
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        const struct vhd_locator *l = &v->header.loc[i];
        if (l->code != VHD_PLAT_NONE && l->data_offset && l->data_offset < bat_end &&
            l->data_offset >= v->header.table_offset)
            return hvm_error(ENOSPC, "%s: parent locators sit where the larger BAT must go",
                             v->path);
    }
    /* Move the blocks that sit where the BAT will grow. */
    for (uint32_t b = 0; b < v->bat_entries; b++) {
        if (v->bat[b] == VHD_BAT_UNUSED || vhd_block_offset(v, b) >= bat_end)
            continue;
        uint64_t dest = ((v->end + v->bitmap_bytes + 4095) / 4096 * 4096) - v->bitmap_bytes;
        if (dest < bat_end)
            dest = bat_end;
        if ((r = vhd_block_relocate(v, b, dest)) < 0)
            return r;
    }
    /* The footer must not sit inside the new BAT either. */
    if (v->end < bat_end) {
        v->end = bat_end;
        if ((r = vhd_footer_write(v)) < 0 || (r = file_sync(v->fd, v->path)) < 0)
            return r;
    }
    uint64_t old_bytes = (uint64_t)v->bat_entries * 4;
    uint64_t new_bytes = bat_end - v->header.table_offset;
    uint8_t *fill = malloc(new_bytes - old_bytes);
    if (!fill)
        return hvm_error(ENOMEM, "out of memory");
    memset(fill, 0xFF, new_bytes - old_bytes);
    r = file_pwrite(v->fd, v->path, fill, new_bytes - old_bytes,
                    v->header.table_offset + old_bytes);
    free(fill);
    if (r < 0 || (r = file_sync(v->fd, v->path)) < 0)
        return r;
    uint32_t *bat = realloc(v->bat, (size_t)entries * sizeof *bat);
    if (!bat)
        return hvm_error(ENOMEM, "out of memory");
    for (uint32_t i = v->bat_entries; i < entries; i++)
        bat[i] = VHD_BAT_UNUSED;
    v->bat = bat;
    v->bat_entries = entries;
    v->header.max_table_entries = entries;
    if ((r = vhd_header_write(v)) < 0)
        return r;
    return file_sync(v->fd, v->path);
}

int disk_resize(const char *path, uint64_t size, bool force)
{
    struct disk *d;
    struct vhd *v;
    int r = disk_open(path, DISK_OPEN_NO_PARENT | (force ? DISK_OPEN_FORCE : 0), &d);
    if (r < 0)
        return r;
    v = disk_vhd_image(d);
    if (!v || v->footer.type == VHD_TYPE_DIFF) {
        r = hvm_error(EINVAL, "%s: resize works on fixed and dynamic VHDs", path);
        goto out;
    }
    if (size % VHD_SECTOR || size > VHD_MAX_SIZE) {
        r = hvm_error(EINVAL, "%s: the new size must be a multiple of 512 bytes, at most "
                      "2040 GiB", path);
        goto out;
    }
    if (size < d->size) {
        r = hvm_error(EINVAL, "%s: shrinking (from %llu to %llu bytes) would lose data and is "
                      "not supported", path, (unsigned long long)d->size,
                      (unsigned long long)size);
        goto out;
    }
    if (size == d->size)
        goto out;
    if (!vhd_is_sparse(v)) {
        r = grow_fixed(v, size);
        goto out;
    }
    uint32_t entries = (uint32_t)((size + v->block_size - 1) / v->block_size);
    if (entries > v->bat_entries && (r = grow_bat(v, entries)) < 0)
        goto out;
    v->footer.current_size = size;
    v->footer.geometry = vhd_geometry_for_size(size);
    uuid_generate_bytes(v->footer.unique_id);
    if ((r = vhd_footer_write(v)) == 0)
        r = file_sync(v->fd, v->path);
out:
    disk_close(d);
    return r;
}
