/* UUIDs through libuuid, in the byte order VHD stores them (as given). */
#ifndef HVM_UTIL_UUID_H
#define HVM_UTIL_UUID_H

#include <stdbool.h>
#include <stdint.h>

void uuid_generate_bytes(uint8_t out[16]);
/* "xxxxxxxx-xxxx-..." into a 37-byte buffer. */
void uuid_format(const uint8_t id[16], char out[37]);
int uuid_parse_text(const char *text, uint8_t out[16]);
bool uuid_is_null_bytes(const uint8_t id[16]);

#endif
