/* What the unit tests that work on files share: a scratch folder for the
 * group (setup/teardown for cmocka_run_group_tests), paths in it, and a
 * small deterministic random generator. Include after <cmocka.h>'s
 * prerequisites; every function is static (one test program per file). */
#ifndef HVM_TESTS_UNIT_SCRATCH_H
#define HVM_TESTS_UNIT_SCRATCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
