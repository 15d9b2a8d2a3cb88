/* libFuzzer target: a VHD given as bytes is opened (disk_open, without
 * parents), its parent candidates are worked out from the locators, it is
 * read (capped: a 2 TiB virtual disk must not take forever), its block
 * status walked, and it is checked (vhd_check). Nothing may crash, leak,
 * overflow or allocate without bound.
 *
 * The input lives in a memfd, opened by its /proc/self/fd path, so that no
 * file is left behind and every run starts clean. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "disk/disk.h"
#include "util/error.h"
#include "vhd/check.h"
#include "vhd/image.h"

#define READ_CHUNK (64u * 1024)
#define READ_CHUNKS 64           /* at most 4 MiB read per input */
#define STATUS_STEPS 4096

static uint8_t buf[READ_CHUNK];

static void exercise_disk(struct disk *d)
{
    /* Reads spread over the whole virtual size: the start, the end and
     * evenly in between, each a little unaligned as well. */
    for (unsigned i = 0; i < READ_CHUNKS && d->size; i++) {
        uint64_t len = d->size < READ_CHUNK ? d->size : READ_CHUNK;
        uint64_t off = i == 0 ? 0 : (d->size - len) / (READ_CHUNKS - 1) * i;
        if (i % 3 == 1 && off + len < d->size)
            off += 1;
        if (off + len > d->size)
            off = d->size - len;
        if (disk_pread(d, buf, len, off) < 0)
            break;
    }
    uint64_t off = 0;
    for (unsigned i = 0; i < STATUS_STEPS && off < d->size; i++) {
        uint64_t run;
        enum disk_extent st;
        if (disk_block_status(d, off, d->size - off, &run, &st) < 0 || run == 0)
            break;
        off += run;
    }
    struct vhd *v = disk_vhd_image(d);
    if (v) {
        char **cands = vhd_parent_candidates(v);
        vhd_paths_free(cands);
        char *name = vhd_parent_name(v);
        free(name);
        for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
            free(vhd_locator_read(v, i));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vhd_check_report rep;
    char path[64];
    int fd = memfd_create("fuzz.vhd", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    struct disk *d;
    if (disk_open(path, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &d) == 0) {
        exercise_disk(d);
        disk_close(d);
    }
    vhd_check(path, &rep);
    /* The lenient open used by check and repair, read as well. */
    struct vhd *v;
    if (vhd_open(path, VHD_OPEN_READ_ONLY | VHD_OPEN_LENIENT, &v) == 0) {
        uint64_t len = v->size < READ_CHUNK ? v->size : READ_CHUNK;
        uint64_t run;
        enum vhd_run st;
        if (len && vhd_status(v, 0, len, &run, &st) == 0)
            vhd_read_own(v, buf, run, 0);
        vhd_close(v);
    }
    hvm_error_clear();
    close(fd);
    return 0;
}
