/* SHA-256 of a file, through OpenSSL's libcrypto. */
#ifndef HVM_UTIL_SHA256_H
#define HVM_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Hex digest (65 bytes with the terminator) of the file's bytes; progress
 * is optional and receives bytes hashed so far. */
int sha256_file(const char *path, char hex[65], void (*progress)(void *, uint64_t), void *opaque);

/* Incremental hashing. sha256_end writes the hex digest and frees. */
struct sha256;
struct sha256 *sha256_begin(void);
void sha256_update(struct sha256 *h, const void *data, size_t len);
void sha256_end(struct sha256 *h, char hex[65]);

#endif
