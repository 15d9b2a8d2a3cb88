#include "util/size.h"

#include <errno.h>
#include <stdbool.h>
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
 * digits and one binary unit, nothing an admin could misread. */
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
    /* A decimal fraction, only before a unit and only if it comes to whole
     * bytes: 1.5G is exact, 1.3K (1331.2 bytes) is not a size. */
    uint64_t frac = 0, frac_div = 1;
    bool has_frac = false;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return -EINVAL;
        for (; is_digit(*p); p++) {
            if (frac_div == 1000000) /* more digits than anyone means */
                return -EINVAL;
            frac = frac * 10 + (uint64_t)(*p - '0');
            frac_div *= 10;
        }
        has_frac = true;
    }
    unsigned shift = suffix_shift(*p);
    if (shift) {
        p++;
        /* 20G, 20GB, 20GiB, in any case: all binary. */
        if (strcasecmp(p, "B") == 0 || strcasecmp(p, "iB") == 0)
            p += strlen(p);
    } else if ((*p == 'B' || *p == 'b') && !has_frac) {
        p++; /* 512B: bytes */
    }
    if (*p || (has_frac && !shift))
        return -EINVAL;
    if (whole > SIZE_MAX_BYTES >> shift)
        return -ERANGE;
    uint64_t bytes = whole << shift;
    if (has_frac) {
        /* frac < 10^6 < 2^20 and unit <= 2^40: the product fits. */
        uint64_t scaled = frac << shift;
        if (scaled % frac_div)
            return -EINVAL;
        if (scaled / frac_div > SIZE_MAX_BYTES - bytes)
            return -ERANGE;
        bytes += scaled / frac_div;
    }
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
