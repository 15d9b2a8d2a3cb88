#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int size_parse(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!text || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    double whole = strtod(text, &end);
    if (errno || end == text)
        return -EINVAL;
    uint64_t mult = 1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'B': mult = 1; end++; break;
    case 'K': mult = 1ull << 10; end++; break;
    case 'M': mult = 1ull << 20; end++; break;
    case 'G': mult = 1ull << 30; end++; break;
    case 'T': mult = 1ull << 40; end++; break;
    default: return -EINVAL;
    }
    /* Accept "20G", "20GB", "20GiB". */
    if (mult > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0 || strcmp(end, "ib") == 0))
        end += strlen(end);
    if (*end)
        return -EINVAL;
    double bytes = whole * (double)mult;
    if (bytes < 0 || bytes > 9.0e18)
        return -ERANGE;
    *out = (uint64_t)bytes;
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
