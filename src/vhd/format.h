/* The VHD on-disk structures (Microsoft "Virtual Hard Disk Image Format
 * Specification" 1.0): footer, dynamic disk header, parent locator entries.
 * Pure encode/decode; no I/O. All fields are big-endian on disk. */
#ifndef HVM_VHD_FORMAT_H
#define HVM_VHD_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#define VHD_SECTOR 512u
#define VHD_FOOTER_SIZE 512u
#define VHD_HEADER_SIZE 1024u
#define VHD_LOCATOR_COUNT 8
#define VHD_PARENT_NAME_BYTES 512u
#define VHD_BAT_UNUSED 0xFFFFFFFFu
#define VHD_DEFAULT_BLOCK_SIZE (2u * 1024 * 1024)
/* Block offsets are 32-bit sector numbers: the format's practical limit. */
#define VHD_MAX_SIZE (2040ull << 30)
/* Seconds between the Unix epoch and 2000-01-01 00:00:00 UTC. */
#define VHD_EPOCH_OFFSET 946684800u

enum vhd_type {
    VHD_TYPE_NONE = 0,
    VHD_TYPE_FIXED = 2,
    VHD_TYPE_DYNAMIC = 3,
    VHD_TYPE_DIFF = 4,
};

/* Parent locator platform codes (spec: "Parent Locator Entry"). */
#define VHD_PLAT_NONE 0u
#define VHD_PLAT_WI2R 0x57693272u /* "Wi2r" deprecated relative */
#define VHD_PLAT_WI2K 0x5769326Bu /* "Wi2k" deprecated absolute */
#define VHD_PLAT_W2RU 0x57327275u /* "W2ru" relative, UTF-16LE */
#define VHD_PLAT_W2KU 0x57326B75u /* "W2ku" absolute, UTF-16LE */
#define VHD_PLAT_MAC 0x4D616320u  /* "Mac " alias blob */
#define VHD_PLAT_MACX 0x4D616358u /* "MacX" file:// URL, UTF-8 */

struct vhd_geometry {
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
};

struct vhd_footer {
    char cookie[8];
    uint32_t features;
    uint32_t version;
    uint64_t data_offset;
    uint32_t timestamp;
    char creator_app[4];
    uint32_t creator_version;
    uint32_t creator_os;
    uint64_t original_size;
    uint64_t current_size;
    struct vhd_geometry geometry;
    uint32_t type;
    uint32_t checksum;
    uint8_t unique_id[16];
    uint8_t saved_state;
};

struct vhd_locator {
    uint32_t code;
    uint32_t data_space; /* as stored: bytes (Windows) or sectors (spec) */
    uint32_t data_length;
    uint64_t data_offset;
};

struct vhd_header {
    char cookie[8];
    uint64_t data_offset;
    uint64_t table_offset;
    uint32_t version;
    uint32_t max_table_entries;
    uint32_t block_size;
    uint32_t checksum;
    uint8_t parent_id[16];
    uint32_t parent_timestamp;
    uint8_t parent_name[VHD_PARENT_NAME_BYTES]; /* UTF-16BE as stored */
    struct vhd_locator loc[VHD_LOCATOR_COUNT];
};

/* One's complement of the byte sum, with the checksum field taken as zero. */
uint32_t vhd_checksum(const uint8_t *buf, unsigned len, unsigned checksum_offset);

void vhd_footer_encode(const struct vhd_footer *f, uint8_t out[VHD_FOOTER_SIZE]);
void vhd_footer_decode(const uint8_t in[VHD_FOOTER_SIZE], struct vhd_footer *f);
/* Cookie right and checksum matching. */
bool vhd_footer_valid(const uint8_t in[VHD_FOOTER_SIZE]);

void vhd_header_encode(const struct vhd_header *h, uint8_t out[VHD_HEADER_SIZE]);
void vhd_header_decode(const uint8_t in[VHD_HEADER_SIZE], struct vhd_header *h);
bool vhd_header_valid(const uint8_t in[VHD_HEADER_SIZE]);

/* CHS geometry from a size, as in the spec's appendix "CHS calculation". */
struct vhd_geometry vhd_geometry_for_size(uint64_t size);
uint64_t vhd_geometry_size(struct vhd_geometry g);

uint32_t vhd_timestamp_now(void);
const char *vhd_type_name(uint32_t type);
/* Locator data space in bytes: Windows writes bytes, the spec says sectors. */
uint64_t vhd_locator_space_bytes(const struct vhd_locator *l);
/* "W2ku" etc. as a printable string into a 5-byte buffer. */
void vhd_code_string(uint32_t code, char out[5]);

/* Parent name conversions: UTF-16BE (header) <-> UTF-8. */
int vhd_utf8_to_utf16(const char *in, bool big_endian, uint8_t *out, unsigned out_cap,
                      unsigned *out_len);
/* Returns a malloc'd UTF-8 string, or NULL for invalid input. */
char *vhd_utf16_to_utf8(const uint8_t *in, unsigned len, bool big_endian);

#endif
