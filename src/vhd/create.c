/* Creating fixed, dynamic and differencing VHDs.
 *
 * Layout of a sparse disk written by hvm: footer copy (0), dynamic header
 * (512), BAT (1536, padded with 0xFF to a sector), for a differencing disk a
 * reserved locator area, then the footer. Blocks are appended later with
 * their data on 4 KiB boundaries, as Windows lays them out. The file is
 * built under a temporary name and linked into place, so a crash never
 * leaves a half-written image under the requested name. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/uuid.h"
#include "vhd/image.h"

/* Room for three locators twice over, so that set-parent never overwrites
 * the locators it replaces (see locator.c). */
#define LOCATOR_AREA (24u * 1024)
#define HVM_CREATOR "hvm "
#define HVM_CREATOR_VERSION 0x00010000u
#define HOST_OS_WI2K 0x5769326Bu

static void footer_init(struct vhd_footer *f, uint32_t type, uint64_t size)
{
    memset(f, 0, sizeof *f);
    memcpy(f->cookie, "conectix", 8);
    f->features = 2;
    f->version = 0x00010000;
    f->data_offset = type == VHD_TYPE_FIXED ? UINT64_MAX : VHD_FOOTER_SIZE;
    f->timestamp = vhd_timestamp_now();
    memcpy(f->creator_app, HVM_CREATOR, 4);
    f->creator_version = HVM_CREATOR_VERSION;
    /* Windows refuses disks whose host OS it does not know; Wi2k is what
     * Hyper-V writes. */
    f->creator_os = HOST_OS_WI2K;
    f->original_size = size;
    f->current_size = size;
    f->geometry = vhd_geometry_for_size(size);
    f->type = type;
    uuid_generate_bytes(f->unique_id);
}

static int validate(const char *path, const struct vhd_create_params *p, uint32_t *bs)
{
    *bs = p->block_size ? p->block_size : VHD_DEFAULT_BLOCK_SIZE;
    if (p->size == 0 || p->size % VHD_SECTOR)
        return hvm_error(EINVAL, "%s: size must be a positive multiple of 512 bytes", path);
    if (p->size > VHD_MAX_SIZE)
        return hvm_error(EINVAL, "%s: size %llu is above the VHD maximum of 2040 GiB", path,
                         (unsigned long long)p->size);
    if (*bs < 4096 || *bs > (256u << 20) || (*bs & (*bs - 1)))
        return hvm_error(EINVAL, "%s: block size must be a power of two from 4 KiB to 256 MiB",
                         path);
    if (p->type == VHD_TYPE_DIFF && !p->parent)
        return hvm_error(EINVAL, "%s: a differencing disk needs a parent", path);
    return 0;
}

int vhd_create_check(const char *path, const struct vhd_create_params *p)
{
    uint32_t bs;
    return validate(path, p, &bs);
}

static int reserve_error(const char *path, int err, uint64_t len)
{
    if (err == ENOSPC || err == EDQUOT)
        return hvm_error(ENOSPC, "%s: not enough free space for a fixed disk: %llu bytes must "
                         "be reserved", path, (unsigned long long)len);
    return hvm_error(err, "%s: reserving %llu bytes: %s", path, (unsigned long long)len,
                     strerror(err));
}

int vhd_fixed_reserve(int fd, const char *path, uint64_t offset, uint64_t len)
{
    /* Beyond the end of the file, without moving it: the file must keep
     * ending in its footer until the caller writes the new one. */
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len) == 0)
        return 0;
    int err = errno;
    if (err == EOPNOTSUPP)
        return 1; /* the caller reserves inside the file once it has grown */
    /* Drop whatever part was preallocated past the end (truncating to the
     * current size frees it); the file itself is unchanged. */
    struct stat st;
    if (fstat(fd, &st) == 0 && ftruncate(fd, st.st_size) < 0) {
        /* nothing more to undo: the reservation is only space */
    }
    return reserve_error(path, err, len);
}

int vhd_fixed_reserve_inside(int fd, const char *path, uint64_t offset, uint64_t len)
{
    /* posix_fallocate writes zeros where the filesystem cannot allocate
     * (the range is new data area: zeros are its content anyway). */
    int err = posix_fallocate(fd, (off_t)offset, (off_t)len);
    return err ? reserve_error(path, err, len) : 0;
}

static int write_fixed(int fd, const char *path, const char *tmp,
                       const struct vhd_create_params *p)
{
    struct vhd_footer f;
    uint8_t buf[VHD_FOOTER_SIZE];
    int r;
    footer_init(&f, VHD_TYPE_FIXED, p->size);
    vhd_footer_encode(&f, buf);
    /* "Fixed" promises the space: the data area is allocated now, so that
     * a full filesystem shows here and not as a failed guest write later.
     * A failure leaves only the temporary file, which the caller removes. */
    if ((r = vhd_fixed_reserve_inside(fd, path, 0, p->size + VHD_FOOTER_SIZE)) < 0)
        return r;
    return file_pwrite(fd, tmp, buf, VHD_FOOTER_SIZE, p->size);
}

static int write_sparse(int fd, const char *tmp, const struct vhd_create_params *p, uint32_t bs)
{
    struct vhd_footer f;
    struct vhd_header h;
    uint8_t foot[VHD_FOOTER_SIZE], head[VHD_HEADER_SIZE];
    uint32_t entries = (uint32_t)((p->size + bs - 1) / bs);
    uint64_t bat_bytes = ((uint64_t)entries * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
    uint64_t end = 1536 + bat_bytes + (p->type == VHD_TYPE_DIFF ? LOCATOR_AREA : 0);
    int r;

    footer_init(&f, p->type, p->size);
    memset(&h, 0, sizeof h);
    memcpy(h.cookie, "cxsparse", 8);
    h.data_offset = UINT64_MAX;
    h.table_offset = 1536;
    h.version = 0x00010000;
    h.max_table_entries = entries;
    h.block_size = bs;
    vhd_footer_encode(&f, foot);
    vhd_header_encode(&h, head);

    uint8_t *bat = malloc(bat_bytes);
    if (!bat)
        return hvm_error(ENOMEM, "out of memory");
    memset(bat, 0xFF, bat_bytes);
    if ((r = file_pwrite(fd, tmp, foot, VHD_FOOTER_SIZE, 0)) == 0 &&
        (r = file_pwrite(fd, tmp, head, VHD_HEADER_SIZE, VHD_FOOTER_SIZE)) == 0 &&
        (r = file_pwrite(fd, tmp, bat, bat_bytes, 1536)) == 0)
        r = file_pwrite(fd, tmp, foot, VHD_FOOTER_SIZE, end);
    free(bat);
    return r;
}

int vhd_create(const char *path, const struct vhd_create_params *p)
{
    uint32_t bs;
    char *tmp = NULL;
    int fd, r;

    if ((r = validate(path, p, &bs)) < 0)
        return r;
    if (access(path, F_OK) == 0)
        return hvm_error(EEXIST, "%s: already exists", path);
    path_remove_stale(path, ".creating.");
    if (asprintf(&tmp, "%s.creating.%d", path, (int)getpid()) < 0)
        return hvm_error(ENOMEM, "out of memory");
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = hvm_error(errno, "%s: %s", path, strerror(errno));
        free(tmp);
        return r;
    }
    r = p->type == VHD_TYPE_FIXED ? write_fixed(fd, path, tmp, p) : write_sparse(fd, tmp, p, bs);
    /* A differencing disk is synced by vhd_parent_set below. */
    if (r == 0 && p->type != VHD_TYPE_DIFF)
        r = file_sync(fd, tmp);
    close(fd);
    if (r == 0 && p->type == VHD_TYPE_DIFF) {
        /* Locators are relative to the child's final folder: link them in
         * through the normal set-parent path on the temporary file, which
         * lives in that same folder. */
        struct vhd *v;
        if ((r = vhd_open(tmp, VHD_OPEN_HEADER_ONLY, &v)) == 0) {
            r = vhd_parent_set(v, p->parent);
            int c = vhd_close(v);
            if (r == 0)
                r = c;
        }
    }
    /* link() refuses to replace: a concurrent create of the same name loses
     * cleanly instead of clobbering. */
    if (r == 0 && link(tmp, path) < 0)
        r = hvm_error(errno, "%s: %s", path, errno == EEXIST ? "already exists" : strerror(errno));
    unlink(tmp);
    if (r == 0)
        r = path_sync_dir(path);
    free(tmp);
    return r;
}
