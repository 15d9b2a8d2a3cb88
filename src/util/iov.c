/* Scatter-gather lists (see iov.h). */
#include "util/iov.h"

#include <stdint.h>
#include <string.h>

int iov_cursor_take(struct iov_cursor *c, size_t len, struct iovec *out, int max)
{
    int k = 0;
    while (len > 0) {
        if (c->i >= c->n || k == max)
            return -1;
        size_t avail = c->iov[c->i].iov_len - c->skip;
        size_t n = avail < len ? avail : len;
        out[k++] = (struct iovec){(char *)c->iov[c->i].iov_base + c->skip, n};
        len -= n;
        c->skip += n;
        if (c->skip == c->iov[c->i].iov_len) {
            c->i++;
            c->skip = 0;
        }
    }
    return k;
}

size_t iov_total(const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    /* Word-wise; the unaligned head and the tail byte-wise. */
    while (n && ((uintptr_t)p & 7)) {
        if (*p++)
            return false;
        n--;
    }
    for (; n >= 8; p += 8, n -= 8)
        if (*(const uint64_t *)(const void *)p)
            return false;
    while (n--)
        if (*p++)
            return false;
    return true;
}

bool iov_is_zero(const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++)
        if (!all_zero(iov[i].iov_base, iov[i].iov_len))
            return false;
    return true;
}

void iov_gather(const struct iovec *iov, int n, void *buf)
{
    uint8_t *p = buf;
    for (int i = 0; i < n; p += iov[i].iov_len, i++)
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
}

void iov_scatter(const struct iovec *iov, int n, const void *buf)
{
    const uint8_t *p = buf;
    for (int i = 0; i < n; p += iov[i].iov_len, i++)
        memcpy(iov[i].iov_base, p, iov[i].iov_len);
}
