/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX uses for
 * its headers, region tables and log entries. */
#ifndef HVM_VHDX_CRC32C_H
#define HVM_VHDX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over len bytes. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* The checksum of a VHDX structure whose 4-byte checksum field at
 * field_offset counts as zero (VHDX spec 2.2.2, 2.3.1, 2.3.2). */
uint32_t crc32c_with_hole(const void *buf, size_t len, size_t field_offset);

#endif
