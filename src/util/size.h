/* Human sizes: "512M", "20G", "2T", "4096", "1.5G" (binary units). */
#ifndef HVM_UTIL_SIZE_H
#define HVM_UTIL_SIZE_H

#include <stddef.h>
#include <stdint.h>

int size_parse(const char *text, uint64_t *out);
/* "1.5 GiB" style, into buf. */
const char *size_format(uint64_t bytes, char *buf, size_t len);

#endif
