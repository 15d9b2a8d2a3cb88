/* SHA-256 of a file, through OpenSSL's libcrypto. */
#ifndef HVM_UTIL_SHA256_H
#define HVM_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Hex digest (65 bytes with the terminator) of the file's bytes; progress
 * is optional and receives bytes hashed so far. */
int sha256_file(const char *path, char hex[65], void (*progress)(void *, uint64_t), void *opaque);

/* SHA-256 built piece by piece over ranges of a file, for a hasher that
 * follows a writer (util/hashpool.c): sha256_begin, then ranges in order,
 * then sha256_end (which also frees). NULL when out of memory. */
struct sha256_ctx;
struct sha256_ctx *sha256_begin(void);
/* Adds bytes [at, end) of fd: its data regions read, its holes as zeros. */
int sha256_add_range(struct sha256_ctx *c, int fd, const char *path, uint64_t at, uint64_t end);
void sha256_end(struct sha256_ctx *c, char hex[65]);
void sha256_abandon(struct sha256_ctx *c);

/* SHA-256 of a buffer. */
void sha256_bytes(const void *data, size_t len, uint8_t out[32]);

#endif
