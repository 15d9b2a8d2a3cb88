/* Unit tests of the image and disk layers (src/vhd/image.c, src/disk/):
 * random writes of any alignment into fixed, dynamic and differencing
 * disks, compared with an in-memory model, across close and reopen; the
 * structural check stays clean; chains read through their parents. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "disk/disk.h"
#include "disk/ops.h"
#include "util/error.h"
#include "vhd/check.h"
#include "vhd/image.h"

#include "scratch.h"

/* The disk reads as model, whole and in odd-sized reads at odd offsets. */
static void expect_content(const char *file, const uint8_t *model, uint64_t size)
{
    expect_disk(file, model, size);
    struct disk *d;
    OK(disk_open(file, DISK_OPEN_READ_ONLY, &d));
    uint8_t *buf = malloc(size);
    uint64_t x = 12345;
    for (int k = 0; k < 200; k++) {
        uint64_t len = 1 + rnd(&x) % 70000;
        if (len > size)
            len = size;
        uint64_t off = rnd(&x) % (size - len + 1);
        memset(buf, 0xEE, len);
        OK(disk_pread(d, buf, len, off));
        assert_memory_equal(buf, model + off, len);
    }
    free(buf);
    disk_close(d);
}

static void random_writes(const char *file, uint8_t *model, uint64_t size, uint64_t seed,
                          int count, uint64_t maxlen)
{
    struct disk *d;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    uint8_t *buf = malloc(maxlen + 512);
    OK(disk_open(file, 0, &d));
    for (int i = 0; i < count; i++) {
        uint64_t len = 1 + rnd(&x) % maxlen;
        uint64_t off = rnd(&x) % (size - len + 1);
        if (i % 3 == 0) {
            off &= ~511ull;
            len = (len + 511) & ~511ull;
            if (off + len > size)
                len = size - off;
        }
        if (i % 7 == 0)
            memset(buf, 0, len);
        else
            for (uint64_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rnd(&x);
        OK(disk_pwrite(d, buf, len, off));
        memcpy(model + off, buf, len);
        if (i % 10 == 0)
            OK(disk_flush(d));
    }
    disk_close(d);
    free(buf);
}

static void create(const char *file, uint32_t type, uint64_t size, uint32_t bs)
{
    struct vhd_create_params p = {.type = type, .size = size, .block_size = bs};
    OK(vhd_create(file, &p));
}

static void test_fixed_and_dynamic(void **state)
{
    (void)state;
    const uint64_t size = 5 * 1024 * 1024 + 3 * 512; /* not a block multiple */
    const uint32_t sizes[] = {4096, 65536, 2u << 20};
    uint8_t *model = calloc(1, size);
    create(path("fixed.vhd"), VHD_TYPE_FIXED, size, 0);
    random_writes(path("fixed.vhd"), model, size, 1, 300, 100000);
    expect_content(path("fixed.vhd"), model, size);
    expect_clean(path("fixed.vhd"));
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "dyn%d.vhd", i);
        memset(model, 0, size);
        create(path(name), VHD_TYPE_DYNAMIC, size, sizes[i]);
        random_writes(path(name), model, size, 2 + (uint64_t)i, 300, 100000);
        expect_content(path(name), model, size);
        /* More writes after a reopen, into allocated and new blocks. */
        random_writes(path(name), model, size, 20 + (uint64_t)i, 100, 9000);
        expect_content(path(name), model, size);
        expect_clean(path(name));
    }
    free(model);
}

/* A dynamic disk skips all-zero writes into unallocated blocks. */
static void test_zero_write_stays_sparse(void **state)
{
    (void)state;
    struct disk *d;
    struct vhd *v;
    create(path("sparse.vhd"), VHD_TYPE_DYNAMIC, 8u << 20, 0);
    uint8_t *zero = calloc(1, 4u << 20);
    OK(disk_open(path("sparse.vhd"), 0, &d));
    OK(disk_pwrite(d, zero, 4u << 20, 1u << 20));
    v = disk_vhd_image(d);
    for (uint32_t b = 0; b < v->bat_entries; b++)
        assert_int_equal(v->bat[b], VHD_BAT_UNUSED);
    zero[0] = 1;
    OK(disk_pwrite(d, zero, 1, 3u << 20));
    assert_int_equal(v->bat[0], VHD_BAT_UNUSED);
    assert_true(v->bat[1] != VHD_BAT_UNUSED);
    /* Block data 4 KiB aligned, as Windows lays it out. */
    assert_int_equal((vhd_block_offset(v, 1) + v->bitmap_bytes) % 4096, 0);
    disk_close(d);
    free(zero);
    expect_clean(path("sparse.vhd"));
}

static void test_chain(void **state)
{
    (void)state;
    const uint64_t size = 6u << 20;
    uint8_t *m0 = calloc(1, size), *m1, *m2;
    create(path("base.vhd"), VHD_TYPE_DYNAMIC, size, 1u << 20);
    random_writes(path("base.vhd"), m0, size, 100, 150, 300000);
    OK(disk_diff_create(path("base.vhd"), path("mid.vhd"), false));
    /* The parent is now protected: opening it for writing is refused. */
    struct disk *d;
    assert_true(disk_open(path("base.vhd"), 0, &d) < 0);
    assert_non_null(strstr(hvm_error_message(), "protected"));
    m1 = malloc(size);
    memcpy(m1, m0, size);
    expect_content(path("mid.vhd"), m1, size);
    random_writes(path("mid.vhd"), m1, size, 101, 150, 20000);
    expect_content(path("mid.vhd"), m1, size);
    OK(disk_diff_create(path("mid.vhd"), path("top.vhd"), false));
    m2 = malloc(size);
    memcpy(m2, m1, size);
    random_writes(path("top.vhd"), m2, size, 102, 150, 5000);
    expect_content(path("top.vhd"), m2, size);
    expect_content(path("mid.vhd"), m1, size);
    expect_content(path("base.vhd"), m0, size);
    expect_clean(path("top.vhd"));
    expect_clean(path("mid.vhd"));

    /* Block status through the chain: a run never claims more than it is. */
    OK(disk_open(path("top.vhd"), DISK_OPEN_READ_ONLY, &d));
    assert_int_equal(d->depth, 0);
    assert_non_null(d->parent);
    assert_int_equal(d->parent->depth, 1);
    assert_non_null(d->parent->parent);
    assert_null(d->parent->parent->parent);
    uint64_t off = 0;
    while (off < size) {
        uint64_t run;
        bool data;
        OK(disk_chain_status(d, off, size - off, &run, &data));
        assert_true(run > 0 && run <= size - off);
        if (!data)
            for (uint64_t i = 0; i < run; i++)
                if (m2[off + i])
                    fail_msg("byte %llu reported zero but is %02x", (unsigned long long)(off + i),
                             m2[off + i]);
        off += run;
    }
    disk_close(d);

    /* Rebase the top onto the base: same content, one link shorter. */
    OK(disk_rebase(path("top.vhd"), path("base.vhd"), NULL));
    expect_content(path("top.vhd"), m2, size);
    OK(disk_open(path("top.vhd"), DISK_OPEN_READ_ONLY, &d));
    assert_null(d->parent->parent);
    disk_close(d);
    expect_clean(path("top.vhd"));

    /* Merge mid into base (forced: base is protected and has another child). */
    OK(disk_merge(path("mid.vhd"), true, NULL));
    expect_content(path("base.vhd"), m1, size);
    assert_int_equal(access(path("mid.vhd"), F_OK), -1);
    /* top's parent changed identity: opening top now fails. */
    assert_true(disk_open(path("top.vhd"), DISK_OPEN_READ_ONLY, &d) < 0);
    assert_non_null(strstr(hvm_error_message(), "unique id"));
    free(m0);
    free(m1);
    free(m2);
}

/* Compact keeps the content and releases zero blocks. */
static void test_compact(void **state)
{
    (void)state;
    const uint64_t size = 8u << 20;
    uint8_t *m = calloc(1, size);
    create(path("c.vhd"), VHD_TYPE_DYNAMIC, size, 65536);
    random_writes(path("c.vhd"), m, size, 7, 200, 50000);
    /* Zero a few whole blocks through the disk. */
    struct disk *d;
    uint8_t *zero = calloc(1, 1u << 20);
    OK(disk_open(path("c.vhd"), 0, &d));
    OK(disk_pwrite(d, zero, 1u << 20, 2u << 20));
    memset(m + (2u << 20), 0, 1u << 20);
    disk_close(d);
    struct stat before, after;
    stat(path("c.vhd"), &before);
    uint64_t freed = 0;
    OK(disk_compact(path("c.vhd"), &freed, NULL));
    stat(path("c.vhd"), &after);
    assert_true(freed >= (1u << 20));
    assert_int_equal((uint64_t)before.st_size - (uint64_t)after.st_size, freed);
    expect_content(path("c.vhd"), m, size);
    expect_clean(path("c.vhd"));
    free(zero);
    free(m);
}

static void test_resize(void **state)
{
    (void)state;
    const uint64_t size = 3u << 20;
    uint8_t *m = calloc(1, 64u << 20);
    create(path("r.vhd"), VHD_TYPE_DYNAMIC, size, 4096);
    random_writes(path("r.vhd"), m, size, 9, 100, 40000);
    /* 3 MiB of 4 KiB blocks: 768 entries (6 BAT sectors); growing to 64 MiB
     * needs 16384 entries, so blocks in the way of the larger BAT move. */
    OK(disk_resize(path("r.vhd"), 64u << 20, false));
    expect_content(path("r.vhd"), m, 64u << 20);
    expect_clean(path("r.vhd"));
    random_writes(path("r.vhd"), m, 64u << 20, 10, 100, 40000);
    expect_content(path("r.vhd"), m, 64u << 20);
    expect_clean(path("r.vhd"));
    create(path("rf.vhd"), VHD_TYPE_FIXED, size, 0);
    memset(m, 0, 64u << 20);
    random_writes(path("rf.vhd"), m, size, 11, 100, 40000);
    OK(disk_resize(path("rf.vhd"), 5u << 20, false));
    expect_content(path("rf.vhd"), m, 5u << 20);
    expect_clean(path("rf.vhd"));
    free(m);
}

/* A deferred disk (a live migration's destination) reads and writes
 * nothing until activated, then is the chain it stands for. */
static void test_deferred(void **state)
{
    (void)state;
    const char *file = path("deferred.vhd");
    create(file, VHD_TYPE_DYNAMIC, 4 << 20, 2 << 20);
    struct disk *d;
    OK(disk_deferred_new(file, 4 << 20, &d));
    assert_int_equal(d->size, 4 << 20);
    char buf[512] = "migrated";
    assert_int_equal(disk_pwrite(d, buf, sizeof buf, 4096), -EAGAIN);
    assert_int_equal(disk_pread(d, buf, sizeof buf, 0), -EAGAIN);
    OK(disk_flush(d));
    OK(disk_deferred_activate(d, 0));
    memcpy(buf, "migrated", 9);
    OK(disk_pwrite(d, buf, sizeof buf, 4096));
    OK(disk_flush(d));
    disk_close(d);
    OK(disk_open(file, DISK_OPEN_READ_ONLY, &d));
    char back[512];
    OK(disk_pread(d, back, sizeof back, 4096));
    assert_string_equal(back, "migrated");
    disk_close(d);
    /* A size that changed since the migration began is refused. */
    OK(disk_deferred_new(file, 8 << 20, &d));
    assert_int_equal(disk_deferred_activate(d, 0), -EINVAL);
    disk_close(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_and_dynamic),
        cmocka_unit_test(test_zero_write_stays_sparse),
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_deferred),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
