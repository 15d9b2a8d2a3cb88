/* libFuzzer target: a VHDX built from the input, opened (disk_open, without
 * parents), read, its block status walked, and checked (vhdx_check).
 *
 * A VHDX is at least a few MiB with its structures at fixed places, and its
 * headers and region tables carry CRCs that random bytes never match. So the
 * input is cut into 4 KiB pieces placed where the structures live (the
 * identifier, both headers, both region tables, the log, the metadata table
 * and items, the BAT, a data block), in a sparse 8 MiB memfd; the first byte
 * says which CRCs to fix up (bit 0 headers, bit 1 region tables, bit 2 the
 * log entry at the log's start), so the fuzzer gets past them and reaches
 * the fields behind them. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/disk.h"
#include "util/error.h"
#include "vhdx/crc32c.h"
#include "vhdx/image.h"

#define PIECE 4096u
#define FILE_SIZE (8u << 20)
#define READ_CHUNK (64u * 1024)

static const uint32_t places[] = {
    0, 64 << 10, 128 << 10, 192 << 10, 256 << 10, /* identifier, headers, regions */
    1 << 20, (1 << 20) + PIECE,                   /* log */
    2 << 20, (2 << 20) + (64 << 10),              /* metadata table, items */
    3 << 20, 4 << 20, 5 << 20,                    /* BAT, a bitmap or data block */
};
#define PLACES (sizeof places / sizeof places[0])

static uint8_t image[FILE_SIZE];
static uint8_t buf[READ_CHUNK];

static void fix_crc(uint8_t *p, size_t len)
{
    uint32_t c = crc32c_with_hole(p, len, 4);
    p[4] = (uint8_t)c;
    p[5] = (uint8_t)(c >> 8);
    p[6] = (uint8_t)(c >> 16);
    p[7] = (uint8_t)(c >> 24);
}

static void ignore(void *opaque, const char *problem)
{
    (void)opaque;
    (void)problem;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned fix = data[0];
    data++;
    size--;
    memset(image, 0, sizeof image);
    for (size_t i = 0; i < PLACES && i * PIECE < size; i++) {
        size_t n = size - i * PIECE < PIECE ? size - i * PIECE : PIECE;
        memcpy(image + places[i], data + i * PIECE, n);
    }
    if (fix & 1) {
        fix_crc(image + (64 << 10), 4096);
        fix_crc(image + (128 << 10), 4096);
    }
    if (fix & 2) {
        fix_crc(image + (192 << 10), 64 << 10);
        fix_crc(image + (256 << 10), 64 << 10);
    }
    if (fix & 4) {
        uint32_t len = image[(1 << 20) + 8] | image[(1 << 20) + 9] << 8;
        len = len % 2 * PIECE + PIECE; /* one or two sectors */
        fix_crc(image + (1 << 20), len);
    }
    int fd = memfd_create("fuzz.vhdx", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    /* Only the pieces are written: the rest stays a hole. */
    for (size_t i = 0; i < PLACES; i++)
        if (pwrite(fd, image + places[i], PIECE, places[i]) != PIECE)
            goto out;
    if (ftruncate(fd, FILE_SIZE) < 0)
        goto out;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct disk *d;
    if (disk_open(path, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &d) == 0) {
        for (unsigned i = 0; i < 16 && d->size; i++) {
            uint64_t len = d->size < READ_CHUNK ? d->size : READ_CHUNK;
            uint64_t off = (d->size - len) / 15 * i;
            if (disk_pread(d, buf, len, off) < 0)
                break;
        }
        uint64_t off = 0;
        for (unsigned i = 0; i < 4096 && off < d->size; i++) {
            uint64_t run;
            enum disk_extent st;
            if (disk_block_status(d, off, d->size - off, &run, &st) < 0 || run == 0)
                break;
            off += run;
        }
        struct vhdx *v = disk_vhdx_image(d);
        if (v)
            vhdx_check(v, ignore, NULL);
        disk_close(d);
    }
out:
    hvm_error_clear();
    close(fd);
    return 0;
}
