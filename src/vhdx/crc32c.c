/* Table-driven CRC-32C: one 256-entry table built on first use. */
#include "vhdx/crc32c.h"

#include <pthread.h>

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&table_once, table_build);
    const uint8_t *p = buf;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

uint32_t crc32c_with_hole(const void *buf, size_t len, size_t field_offset)
{
    static const uint8_t zero[4];
    const uint8_t *p = buf;
    uint32_t crc = crc32c_update(0, p, field_offset);
    crc = crc32c_update(crc, zero, 4);
    return crc32c_update(crc, p + field_offset + 4, len - field_offset - 4);
}
