#include "util/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"

int sha256_file(const char *path, char hex[65], void (*progress)(void *, uint64_t), void *opaque)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hvm_error(errno, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int r = 0;
    uint64_t done = 0;
    if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = hvm_error(errno, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        done += (uint64_t)n;
        if (progress)
            progress(opaque, done);
    }
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return r;
}

struct sha256 {
    EVP_MD_CTX *ctx;
};

struct sha256 *sha256_begin(void)
{
    struct sha256 *h = calloc(1, sizeof *h);
    if (h && (!(h->ctx = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        h = NULL;
    }
    return h;
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->ctx, data, len);
}

void sha256_end(struct sha256 *h, char hex[65])
{
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(h->ctx, md, &len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(h->ctx);
    free(h);
}
