#include "util/size.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Sizes end up in off_t arithmetic: nothing above INT64_MAX. */
#define SIZE_MAX_BYTES ((uint64_t)INT64_MAX)

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static unsigned suffix_shift(char c)
{
    switch (c) {
    case 'K': case 'k': return 10;
    case 'M': case 'm': return 20;
    case 'G': case 'g': return 30;
    case 'T': case 't': return 40;
    default: return 0;
    }
}

/* Parsed by hand rather than with strtod/strtoull, which take "1e6",
 * "0x100000", " 12" and "inf": a size given to a disk or a VM is decimal
 * digits and one binary unit, nothing an admin could misread (no
 * fractions either: 1536M, not 1.5G, as the issue of record asks). */
int size_parse(const char *text, uint64_t *out)
{
    if (!text || !is_digit(text[0]))
        return -EINVAL;
    const char *p = text;
    uint64_t whole = 0;
    for (; is_digit(*p); p++) {
        if (whole > (SIZE_MAX_BYTES - (uint64_t)(*p - '0')) / 10)
            return -ERANGE;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = suffix_shift(*p);
    if (shift) {
        p++;
        /* 20G, 20GB, 20GiB, in any case: all binary. */
        if (strcasecmp(p, "B") == 0 || strcasecmp(p, "iB") == 0)
            p += strlen(p);
    } else if (*p == 'B' || *p == 'b') {
        p++; /* 512B: bytes */
    }
    if (*p)
        return -EINVAL;
    if (whole > SIZE_MAX_BYTES >> shift)
        return -ERANGE;
    uint64_t bytes = whole << shift;
    *out = bytes;
    return 0;
}

const char *size_format(uint64_t bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.4g %s", v, units[u]);
    return buf;
}
