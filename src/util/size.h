/* Human sizes: decimal digits and an optional binary unit K, M, G or T
 * (any case, optionally followed by B or iB: 20G = 20GB = 20GiB), or plain
 * bytes ("4096", "512B"). A fraction is allowed before a unit when it comes
 * to whole bytes ("1.5G"). Nothing else: no "1e6", "0x100000", spaces or
 * signs. -EINVAL for what is not a size, -ERANGE above INT64_MAX. */
#ifndef HVM_UTIL_SIZE_H
#define HVM_UTIL_SIZE_H

#include <stddef.h>
#include <stdint.h>

int size_parse(const char *text, uint64_t *out);
/* "1.5 GiB" style, into buf. */
const char *size_format(uint64_t bytes, char *buf, size_t len);

#endif
