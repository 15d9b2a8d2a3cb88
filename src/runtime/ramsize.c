/* Guest RAM size and QEMU 7.2's lost writes under TCG.
 *
 * A pre-copy (migration while the guest runs) relies on QEMU's dirty
 * bitmap. Under TCG a store marks its page dirty only while the vCPU's
 * softmmu TLB entry for the page is flagged "not dirty"; when the
 * migration clears a page's dirty bit it must also re-flag the TLB entries
 * of that page. QEMU before 9.0 (upstream commit "physmem: Fix migration
 * dirty bitmap coherency with TCG memory access", Feb 2024; Debian 12's
 * 7.2 has not got it) skips that in the fast path of
 * cpu_physical_memory_sync_dirty_bitmap(), taken for a RAM block whose
 * length is a multiple of 64 pages (256 KiB): every store through a TLB
 * entry cached before a bitmap sync is then lost to the migration, and a
 * guest resumed from such a state finds stale page tables, slab freelists,
 * stacks (it panicked in about one run of three). Pages written by hvm's
 * vhost-user back-end are not concerned: they are logged and were all
 * found in the state.
 *
 * The slow path (page by page) resets the TLB entries as it should, so a
 * guest booted under TCG gets RAMSIZE_TCG_PAD more RAM than configured: its
 * RAM block is no multiple of 256 KiB. A state loads only into a block of
 * the length it was saved from, so a restore uses the length in the file
 * (states of before this change have the configured size). The VGA frame
 * buffer (16 MiB, fast path) may still lose pixels; nothing else of the
 * guest lives there. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "runtime/ramsize.h"

/* 64 pages: one word of QEMU's dirty bitmap. */
#define FAST_PATH_UNIT (64u * 4096u)
/* migration/ram.c: the flag in the setup section's total RAM size */
#define RAM_SAVE_FLAG_MEM_SIZE 0x04
/* migration/savevm.c */
#define STATE_MAGIC 0x5145564du /* "QEVM" */
#define STATE_VERSION 3
#define VM_SECTION_START 0x01
#define VM_CONFIGURATION 0x07

uint64_t ramsize_for_boot(uint64_t memory, bool tcg)
{
    return memory + (tcg ? RAMSIZE_TCG_PAD : 0);
}

bool ramsize_precopy_exact(uint64_t ram_bytes, bool tcg)
{
    return !tcg || ram_bytes % FAST_PATH_UNIT != 0;
}

struct cursor {
    const uint8_t *p;
    size_t len, at;
    bool bad;
};

static uint64_t take(struct cursor *c, int bytes)
{
    uint64_t v = 0;
    if (c->at + (size_t)bytes > c->len) {
        c->bad = true;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v = v << 8 | c->p[c->at++];
    return v;
}

/* A length-prefixed identifier into out (NUL-terminated). */
static void take_id(struct cursor *c, char out[256])
{
    size_t n = (size_t)take(c, 1);
    if (c->bad || c->at + n > c->len) {
        c->bad = true;
        out[0] = 0;
        return;
    }
    memcpy(out, c->p + c->at, n);
    out[n] = 0;
    c->at += n;
}

/* The stream begins (QEMU 7.2, savevm.c and ram.c): magic, version, the
 * machine type's configuration section, then the "ram" setup section:
 * its header, the total size of every RAM block with a flag, and each
 * block as (name, length). */
int ramsize_of_state_header(const uint8_t *buf, size_t len, uint64_t *bytes)
{
    struct cursor c = {buf, len, 0, false};
    char id[256];
    if (take(&c, 4) != STATE_MAGIC || take(&c, 4) != STATE_VERSION)
        return -EINVAL;
    if (c.at < len && buf[c.at] == VM_CONFIGURATION) {
        c.at++;
        c.at += (size_t)take(&c, 4); /* the machine type's name */
    }
    if (take(&c, 1) != VM_SECTION_START)
        return -EINVAL;
    take(&c, 4); /* section id */
    take_id(&c, id);
    if (c.bad || strcmp(id, "ram") != 0)
        return -EINVAL;
    take(&c, 4); /* instance */
    take(&c, 4); /* version */
    uint64_t total = take(&c, 8);
    if (c.bad || !(total & RAM_SAVE_FLAG_MEM_SIZE))
        return -EINVAL;
    total &= ~(uint64_t)0xfff;
    for (uint64_t sum = 0; sum < total && !c.bad;) {
        take_id(&c, id);
        uint64_t n = take(&c, 8);
        if (c.bad)
            break;
        /* The memory backend (vhost-user) or the board's own RAM. */
        if (strcmp(id, "ram") == 0 || strcmp(id, "pc.ram") == 0) {
            *bytes = n;
            return 0;
        }
        sum += n;
    }
    return -EINVAL;
}

int ramsize_of_state(const char *path, uint64_t *bytes)
{
    uint8_t buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    close(fd);
    return n > 0 ? ramsize_of_state_header(buf, (size_t)n, bytes) : -EINVAL;
}
