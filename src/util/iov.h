/* Scatter-gather lists (struct iovec): walking one in pieces, and the
 * few whole-list operations the disk and vhost layers need. */
#ifndef HVM_UTIL_IOV_H
#define HVM_UTIL_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* A position in an iovec array. */
struct iov_cursor {
    const struct iovec *iov;
    int n, i;
    size_t skip; /* bytes of iov[i] already taken */
};

static inline struct iov_cursor iov_cursor(const struct iovec *iov, int n)
{
    return (struct iov_cursor){iov, n, 0, 0};
}

/* The next len bytes of c as at most max iovecs in out; advances c.
 * Returns how many, or -1 (c unchanged in part) if c holds fewer bytes or
 * they need more than max pieces. */
int iov_cursor_take(struct iov_cursor *c, size_t len, struct iovec *out, int max);

size_t iov_total(const struct iovec *iov, int n);
bool iov_is_zero(const struct iovec *iov, int n);
/* Copies the list's bytes into buf, or buf's bytes into the list. */
void iov_gather(const struct iovec *iov, int n, void *buf);
void iov_scatter(const struct iovec *iov, int n, const void *buf);

#endif
