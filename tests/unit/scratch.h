/* What the unit tests that work on disk files share: a scratch folder for
 * the group (setup/teardown for cmocka_run_group_tests), paths in it, a
 * small deterministic random generator, and checks of a disk against an
 * in-memory model. Include after <cmocka.h>; every function is static (one
 * test program per file). */
#ifndef HVM_TESTS_UNIT_SCRATCH_H
#define HVM_TESTS_UNIT_SCRATCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "disk/disk.h"
#include "util/error.h"
#include "vhd/check.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/hvm-unit-XXXXXX", tmp);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* dir/name, in one of four rotating buffers (enough for one call's args). */
static char *path(const char *name)
{
    static char buf[4][320];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

/* xorshift64: the same sequence for the same seed, on every machine. */
static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Fails the test with the hvm error message when expr is negative. */
#define OK(expr)                                                                      \
    do {                                                                              \
        int r_ = (expr);                                                              \
        if (r_ < 0)                                                                   \
            fail_msg("%s: %d (%s)", #expr, r_, hvm_error_message());                   \
    } while (0)

/* The disk at file reads exactly as model, size bytes, in one read. */
static void expect_disk(const char *file, const uint8_t *model, uint64_t size)
{
    struct disk *d;
    OK(disk_open(file, DISK_OPEN_READ_ONLY, &d));
    assert_int_equal(d->size, size);
    uint8_t *buf = malloc(size);
    OK(disk_pread(d, buf, size, 0));
    for (uint64_t i = 0; i < size; i++)
        if (buf[i] != model[i])
            fail_msg("%s: byte %llu is %02x, expected %02x", file, (unsigned long long)i,
                     buf[i], model[i]);
    free(buf);
    disk_close(d);
}

/* vhd_check finds no problem in file. */
static void expect_clean(const char *file)
{
    static struct vhd_check_report rep;
    OK(vhd_check(file, &rep));
    if (rep.n_problems)
        fail_msg("%s: %s", file, rep.problems[0]);
}

#endif
