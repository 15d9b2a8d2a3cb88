#include "vhd/format.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/endian.h"

uint32_t vhd_checksum(const uint8_t *buf, unsigned len, unsigned checksum_offset)
{
    uint32_t sum = 0;
    for (unsigned i = 0; i < len; i++) {
        if (i >= checksum_offset && i < checksum_offset + 4)
            continue;
        sum += buf[i];
    }
    return ~sum;
}

void vhd_footer_encode(const struct vhd_footer *f, uint8_t out[VHD_FOOTER_SIZE])
{
    memset(out, 0, VHD_FOOTER_SIZE);
    memcpy(out, f->cookie, 8);
    be32_put(out + 8, f->features);
    be32_put(out + 12, f->version);
    be64_put(out + 16, f->data_offset);
    be32_put(out + 24, f->timestamp);
    memcpy(out + 28, f->creator_app, 4);
    be32_put(out + 32, f->creator_version);
    be32_put(out + 36, f->creator_os);
    be64_put(out + 40, f->original_size);
    be64_put(out + 48, f->current_size);
    be16_put(out + 56, f->geometry.cylinders);
    out[58] = f->geometry.heads;
    out[59] = f->geometry.sectors;
    be32_put(out + 60, f->type);
    memcpy(out + 68, f->unique_id, 16);
    out[84] = f->saved_state;
    be32_put(out + 64, vhd_checksum(out, VHD_FOOTER_SIZE, 64));
}

void vhd_footer_decode(const uint8_t in[VHD_FOOTER_SIZE], struct vhd_footer *f)
{
    memcpy(f->cookie, in, 8);
    f->features = be32_get(in + 8);
    f->version = be32_get(in + 12);
    f->data_offset = be64_get(in + 16);
    /* Old qemu wrote a 32-bit all-ones data offset for fixed disks. */
    if (f->data_offset == 0xFFFFFFFFull)
        f->data_offset = UINT64_MAX;
    f->timestamp = be32_get(in + 24);
    memcpy(f->creator_app, in + 28, 4);
    f->creator_version = be32_get(in + 32);
    f->creator_os = be32_get(in + 36);
    f->original_size = be64_get(in + 40);
    f->current_size = be64_get(in + 48);
    f->geometry.cylinders = be16_get(in + 56);
    f->geometry.heads = in[58];
    f->geometry.sectors = in[59];
    f->type = be32_get(in + 60);
    f->checksum = be32_get(in + 64);
    memcpy(f->unique_id, in + 68, 16);
    f->saved_state = in[84];
}

bool vhd_footer_valid(const uint8_t in[VHD_FOOTER_SIZE])
{
    return memcmp(in, "conectix", 8) == 0 &&
           be32_get(in + 64) == vhd_checksum(in, VHD_FOOTER_SIZE, 64);
}

void vhd_header_encode(const struct vhd_header *h, uint8_t out[VHD_HEADER_SIZE])
{
    memset(out, 0, VHD_HEADER_SIZE);
    memcpy(out, h->cookie, 8);
    be64_put(out + 8, h->data_offset);
    be64_put(out + 16, h->table_offset);
    be32_put(out + 24, h->version);
    be32_put(out + 28, h->max_table_entries);
    be32_put(out + 32, h->block_size);
    memcpy(out + 40, h->parent_id, 16);
    be32_put(out + 56, h->parent_timestamp);
    memcpy(out + 64, h->parent_name, VHD_PARENT_NAME_BYTES);
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        uint8_t *e = out + 576 + 24 * i;
        be32_put(e, h->loc[i].code);
        be32_put(e + 4, h->loc[i].data_space);
        be32_put(e + 8, h->loc[i].data_length);
        be64_put(e + 16, h->loc[i].data_offset);
    }
    be32_put(out + 36, vhd_checksum(out, VHD_HEADER_SIZE, 36));
}

void vhd_header_decode(const uint8_t in[VHD_HEADER_SIZE], struct vhd_header *h)
{
    memcpy(h->cookie, in, 8);
    h->data_offset = be64_get(in + 8);
    h->table_offset = be64_get(in + 16);
    h->version = be32_get(in + 24);
    h->max_table_entries = be32_get(in + 28);
    h->block_size = be32_get(in + 32);
    h->checksum = be32_get(in + 36);
    memcpy(h->parent_id, in + 40, 16);
    h->parent_timestamp = be32_get(in + 56);
    memcpy(h->parent_name, in + 64, VHD_PARENT_NAME_BYTES);
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        const uint8_t *e = in + 576 + 24 * i;
        h->loc[i].code = be32_get(e);
        h->loc[i].data_space = be32_get(e + 4);
        h->loc[i].data_length = be32_get(e + 8);
        h->loc[i].data_offset = be64_get(e + 16);
    }
}

bool vhd_header_valid(const uint8_t in[VHD_HEADER_SIZE])
{
    return memcmp(in, "cxsparse", 8) == 0 &&
           be32_get(in + 36) == vhd_checksum(in, VHD_HEADER_SIZE, 36);
}

struct vhd_geometry vhd_geometry_for_size(uint64_t size)
{
    /* Spec appendix: CHS calculation. */
    uint64_t total = size / VHD_SECTOR;
    uint32_t spt, heads, cyl_times_heads;
    if (total > 65535ull * 16 * 255)
        total = 65535ull * 16 * 255;
    if (total >= 65535ull * 16 * 63) {
        spt = 255;
        heads = 16;
        cyl_times_heads = (uint32_t)(total / spt);
    } else {
        spt = 17;
        cyl_times_heads = (uint32_t)(total / spt);
        heads = (cyl_times_heads + 1023) / 1024;
        if (heads < 4)
            heads = 4;
        if (cyl_times_heads >= heads * 1024 || heads > 16) {
            spt = 31;
            heads = 16;
            cyl_times_heads = (uint32_t)(total / spt);
        }
        if (cyl_times_heads >= heads * 1024) {
            spt = 63;
            heads = 16;
            cyl_times_heads = (uint32_t)(total / spt);
        }
    }
    struct vhd_geometry g = {
        .cylinders = (uint16_t)(cyl_times_heads / heads),
        .heads = (uint8_t)heads,
        .sectors = (uint8_t)spt,
    };
    return g;
}

uint64_t vhd_geometry_size(struct vhd_geometry g)
{
    return (uint64_t)g.cylinders * g.heads * g.sectors * VHD_SECTOR;
}

uint32_t vhd_timestamp_now(void)
{
    time_t now = time(NULL);
    return now > VHD_EPOCH_OFFSET ? (uint32_t)(now - VHD_EPOCH_OFFSET) : 0;
}

const char *vhd_type_name(uint32_t type)
{
    switch (type) {
    case VHD_TYPE_FIXED: return "fixed";
    case VHD_TYPE_DYNAMIC: return "dynamic";
    case VHD_TYPE_DIFF: return "differencing";
    default: return "unknown";
    }
}

uint64_t vhd_locator_space_bytes(const struct vhd_locator *l)
{
    return l->data_space < 512 ? (uint64_t)l->data_space * VHD_SECTOR : l->data_space;
}

void vhd_code_string(uint32_t code, char out[5])
{
    for (int i = 0; i < 4; i++) {
        char c = (char)(code >> (24 - 8 * i));
        out[i] = (c >= 32 && c < 127) ? c : '?';
    }
    out[4] = '\0';
}

int vhd_utf8_to_utf16(const char *in, bool big_endian, uint8_t *out, unsigned out_cap,
                      unsigned *out_len)
{
    const uint8_t *s = (const uint8_t *)in;
    unsigned n = 0;
    while (*s) {
        uint32_t cp;
        int extra;
        if (*s < 0x80) { cp = *s; extra = 0; }
        else if ((*s & 0xE0) == 0xC0) { cp = *s & 0x1F; extra = 1; }
        else if ((*s & 0xF0) == 0xE0) { cp = *s & 0x0F; extra = 2; }
        else if ((*s & 0xF8) == 0xF0) { cp = *s & 0x07; extra = 3; }
        else return -1;
        s++;
        for (int i = 0; i < extra; i++, s++) {
            if ((*s & 0xC0) != 0x80)
                return -1;
            cp = cp << 6 | (*s & 0x3F);
        }
        uint16_t units[2];
        int count = 1;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            units[0] = (uint16_t)(0xD800 | (cp >> 10));
            units[1] = (uint16_t)(0xDC00 | (cp & 0x3FF));
            count = 2;
        } else {
            units[0] = (uint16_t)cp;
        }
        for (int i = 0; i < count; i++) {
            if (n + 2 > out_cap)
                return -1;
            out[n + (big_endian ? 0 : 1)] = (uint8_t)(units[i] >> 8);
            out[n + (big_endian ? 1 : 0)] = (uint8_t)units[i];
            n += 2;
        }
    }
    *out_len = n;
    return 0;
}

char *vhd_utf16_to_utf8(const uint8_t *in, unsigned len, bool big_endian)
{
    char *out = malloc((size_t)len / 2 * 4 + 1);
    unsigned o = 0;
    if (!out)
        return NULL;
    for (unsigned i = 0; i + 1 < len; i += 2) {
        uint32_t u = big_endian ? (uint32_t)(in[i] << 8 | in[i + 1])
                                : (uint32_t)(in[i + 1] << 8 | in[i]);
        if (u == 0)
            break;
        if (u >= 0xD800 && u < 0xDC00 && i + 3 < len) {
            uint32_t lo = big_endian ? (uint32_t)(in[i + 2] << 8 | in[i + 3])
                                     : (uint32_t)(in[i + 3] << 8 | in[i + 2]);
            if (lo >= 0xDC00 && lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                i += 2;
            }
        }
        if (u < 0x80) {
            out[o++] = (char)u;
        } else if (u < 0x800) {
            out[o++] = (char)(0xC0 | u >> 6);
            out[o++] = (char)(0x80 | (u & 0x3F));
        } else if (u < 0x10000) {
            out[o++] = (char)(0xE0 | u >> 12);
            out[o++] = (char)(0x80 | ((u >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (u & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | u >> 18);
            out[o++] = (char)(0x80 | ((u >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((u >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (u & 0x3F));
        }
    }
    out[o] = '\0';
    return out;
}
