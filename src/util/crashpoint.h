/* Crash points for the crash tests: HVM_CRASH_AT=NAME kills the process
 * with SIGKILL the first time it reaches hvm_crash_point(NAME); NAME:N the
 * Nth time. That is what a kill -9 at that moment does: what was written
 * stays (in the page cache), nothing after it runs. Unset, a point costs
 * one getenv. Names are "<operation>-<step>" (merge-parent-id, ...). */
#ifndef HVM_UTIL_CRASHPOINT_H
#define HVM_UTIL_CRASHPOINT_H

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline void hvm_crash_point(const char *name)
{
    /* One counter per translation unit: each point lives in one file. */
    static unsigned hits;
    const char *want = getenv("HVM_CRASH_AT");
    size_t n = strlen(name);
    if (!want || strncmp(want, name, n) != 0 || (want[n] != 0 && want[n] != ':'))
        return;
    unsigned nth = want[n] == ':' ? (unsigned)strtoul(want + n + 1, NULL, 10) : 1;
    if (++hits >= nth)
        raise(SIGKILL);
}

/* Fault points for the error tests: HVM_FAIL_AT=NAME[:N] makes the Nth
 * (default first) pass through hvm_fault_point(NAME) and every later one
 * report true, where the caller fails as an I/O error would (an error
 * midway through a copy, without a failing device). Thread-safe enough for
 * a test: the counter is atomic. */
static inline bool hvm_fault_point(const char *name)
{
    static unsigned hits;
    const char *want = getenv("HVM_FAIL_AT");
    size_t n = strlen(name);
    if (!want || strncmp(want, name, n) != 0 || (want[n] != 0 && want[n] != ':'))
        return false;
    unsigned nth = want[n] == ':' ? (unsigned)strtoul(want + n + 1, NULL, 10) : 1;
    return __atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED) >= nth;
}

#endif
