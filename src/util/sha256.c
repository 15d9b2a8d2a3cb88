#include "util/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"

/* The file's data regions are read; its holes, which read as zeros, are
 * fed from zero_buffer instead: copying zeros out of the kernel costs as
 * much as hashing them, and the layers of a VHD chain are full of holes. */

static int hash_range(int fd, const char *path, EVP_MD_CTX *ctx, uint8_t *buf, size_t cap,
                      uint64_t at, uint64_t end, bool hole, uint64_t *done,
                      void (*progress)(void *, uint64_t), void *opaque)
{
    const uint8_t *src = hole ? zero_buffer : buf;
    size_t room = hole ? sizeof zero_buffer : cap;
    while (at < end) {
        size_t want = end - at < room ? (size_t)(end - at) : room;
        ssize_t n = hole ? (ssize_t)want : pread(fd, buf, want, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hvm_error(errno, "%s: %s", path, strerror(errno));
        if (n == 0)
            return hvm_error(EIO, "%s: file shrank while being hashed", path);
        EVP_DigestUpdate(ctx, src, (size_t)n);
        at += (uint64_t)n;
        *done += (uint64_t)n;
        if (progress)
            progress(opaque, *done);
    }
    return 0;
}

struct sha256_ctx {
    EVP_MD_CTX *md;
    uint8_t *buf;
    size_t cap;
    uint64_t done;
};

struct sha256_ctx *sha256_begin(void)
{
    struct sha256_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cap = 1 << 20;
    c->buf = malloc(c->cap);
    c->md = EVP_MD_CTX_new();
    if (!c->buf || !c->md || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL)) {
        sha256_abandon(c);
        return NULL;
    }
    return c;
}

/* The data regions of [at, end) read, its holes fed as zeros. */
static int add_ranges(struct sha256_ctx *c, int fd, const char *path, uint64_t at, uint64_t end,
                      void (*progress)(void *, uint64_t), void *opaque)
{
    int r = 0;
    while (at < end && r == 0) {
        uint64_t d, h;
        file_next_data(fd, at, end, &d, &h);
        if (d > at)
            r = hash_range(fd, path, c->md, c->buf, c->cap, at, d, true, &c->done, progress, opaque);
        if (r < 0 || d >= end)
            break;
        r = hash_range(fd, path, c->md, c->buf, c->cap, d, h, false, &c->done, progress, opaque);
        at = h;
    }
    return r;
}

int sha256_add_range(struct sha256_ctx *c, int fd, const char *path, uint64_t at, uint64_t end)
{
    return add_ranges(c, fd, path, at, end, NULL, NULL);
}

void sha256_end(struct sha256_ctx *c, char hex[65])
{
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(c->md, md, &len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    sha256_abandon(c);
}

void sha256_abandon(struct sha256_ctx *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->md);
    free(c->buf);
    free(c);
}

int sha256_file(const char *path, char hex[65], void (*progress)(void *, uint64_t), void *opaque)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hvm_error(errno, "%s: %s", path, strerror(errno));
    struct sha256_ctx *c = sha256_begin();
    struct stat st;
    int r = 0;
    if (!c) {
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        r = hvm_error(errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    r = add_ranges(c, fd, path, 0, (uint64_t)st.st_size, progress, opaque);
    /* A file that changed size meanwhile was not hashed as it is. */
    struct stat after;
    if (r == 0 && (fstat(fd, &after) < 0 || after.st_size != st.st_size))
        r = hvm_error(EIO, "%s: file changed while being hashed", path);
    if (r == 0) {
        sha256_end(c, hex);
        c = NULL;
    }
out:
    sha256_abandon(c);
    close(fd);
    return r;
}

void sha256_bytes(const void *data, size_t len, uint8_t out[32])
{
    unsigned n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}
