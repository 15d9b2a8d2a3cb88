/* SHA-256 of a file, through OpenSSL's libcrypto. */
#ifndef HVM_UTIL_SHA256_H
#define HVM_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Hex digest (65 bytes with the terminator) of the file's bytes; progress
 * is optional and receives bytes hashed so far. */
int sha256_file(const char *path, char hex[65], void (*progress)(void *, uint64_t), void *opaque);

/* SHA-256 of a buffer. */
void sha256_bytes(const void *data, size_t len, uint8_t out[32]);

#endif
