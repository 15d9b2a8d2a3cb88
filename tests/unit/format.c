/* Unit tests of the VHD on-disk structures (src/vhd/format.c) and of size
 * parsing (src/util/size.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/endian.h"
#include "util/size.h"
#include "vhd/format.h"

/* The first 85 bytes of the footer of go-vhd/win8.vhd (Windows 8, 40 MiB
 * dynamic); the other 427 bytes are zero. Stored checksum 0xFFFFF00A. */
static const uint8_t win8_footer_head[85] = {
    0x63, 0x6f, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x78, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x1c, 0x6c, 0x0c, 0x56, 0x77, 0x69,
    0x6e, 0x20, 0x00, 0x06, 0x00, 0x03, 0x57, 0x69, 0x32, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0x00, 0x03, 0xc3, 0x05, 0x11,
    0x00, 0x00, 0x00, 0x03, 0xff, 0xff, 0xf0, 0x0a, 0xad, 0xb7, 0x19, 0x75, 0x4b, 0x5b, 0x0b,
    0x40, 0xb0, 0x25, 0xd0, 0x6d, 0xab, 0x31, 0xb2, 0x6f, 0x00,
};

/* The first 64 bytes of win8.vhd's dynamic header (at 512); the rest is
 * zero (no parent). Stored checksum 0xFFFFF463. */
static const uint8_t win8_header_head[64] = {
    0x63, 0x78, 0x73, 0x70, 0x61, 0x72, 0x73, 0x65, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x14, 0x00, 0x20, 0x00, 0x00, 0xff, 0xff, 0xf4, 0x63,
};

static void win8_footer(uint8_t out[VHD_FOOTER_SIZE])
{
    memset(out, 0, VHD_FOOTER_SIZE);
    memcpy(out, win8_footer_head, sizeof win8_footer_head);
}

static void win8_header(uint8_t out[VHD_HEADER_SIZE])
{
    memset(out, 0, VHD_HEADER_SIZE);
    memcpy(out, win8_header_head, sizeof win8_header_head);
}

static void test_checksum_known_footer(void **state)
{
    (void)state;
    uint8_t buf[VHD_FOOTER_SIZE];
    win8_footer(buf);
    assert_int_equal(vhd_checksum(buf, VHD_FOOTER_SIZE, 64), 0xFFFFF00Au);
    assert_int_equal(be32_get(buf + 64), vhd_checksum(buf, VHD_FOOTER_SIZE, 64));
    assert_true(vhd_footer_valid(buf));
    /* The checksum field itself does not count. */
    buf[64] ^= 0x55;
    assert_int_equal(vhd_checksum(buf, VHD_FOOTER_SIZE, 64), 0xFFFFF00Au);
    assert_false(vhd_footer_valid(buf));
    buf[64] ^= 0x55;
    /* Any other byte does. */
    buf[300] = 1;
    assert_false(vhd_footer_valid(buf));
    buf[300] = 0;
    memcpy(buf, "conectiX", 8);
    assert_false(vhd_footer_valid(buf));
}

static void test_checksum_known_header(void **state)
{
    (void)state;
    uint8_t buf[VHD_HEADER_SIZE];
    win8_header(buf);
    assert_int_equal(vhd_checksum(buf, VHD_HEADER_SIZE, 36), 0xFFFFF463u);
    assert_true(vhd_header_valid(buf));
    buf[1000] = 7;
    assert_false(vhd_header_valid(buf));
}

static void test_footer_decode_known(void **state)
{
    (void)state;
    uint8_t buf[VHD_FOOTER_SIZE], again[VHD_FOOTER_SIZE];
    struct vhd_footer f;
    win8_footer(buf);
    vhd_footer_decode(buf, &f);
    assert_memory_equal(f.cookie, "conectix", 8);
    assert_int_equal(f.features, 2);
    assert_int_equal(f.version, 0x00010000);
    assert_int_equal(f.data_offset, 512);
    assert_int_equal(f.timestamp, 0x1c6c0c56);
    assert_memory_equal(f.creator_app, "win ", 4);
    assert_int_equal(f.creator_version, 0x00060003);
    assert_int_equal(f.creator_os, 0x5769326B);
    assert_int_equal(f.original_size, 40ull << 20);
    assert_int_equal(f.current_size, 40ull << 20);
    assert_int_equal(f.geometry.cylinders, 963);
    assert_int_equal(f.geometry.heads, 5);
    assert_int_equal(f.geometry.sectors, 17);
    assert_int_equal(f.type, VHD_TYPE_DYNAMIC);
    assert_int_equal(f.checksum, 0xFFFFF00Au);
    assert_int_equal(f.unique_id[0], 0xad);
    assert_int_equal(f.unique_id[15], 0x6f);
    assert_int_equal(f.saved_state, 0);
    /* Encoding the decoded footer gives back the same bytes. */
    vhd_footer_encode(&f, again);
    assert_memory_equal(buf, again, VHD_FOOTER_SIZE);
}

static void test_footer_round_trip(void **state)
{
    (void)state;
    struct vhd_footer f = {0}, g;
    uint8_t buf[VHD_FOOTER_SIZE], buf2[VHD_FOOTER_SIZE];
    memcpy(f.cookie, "conectix", 8);
    f.features = 3;
    f.version = 0x00010000;
    f.data_offset = UINT64_MAX;
    f.timestamp = 0x12345678;
    memcpy(f.creator_app, "hvm ", 4);
    f.creator_version = 0x00010002;
    f.creator_os = 0x4D616320;
    f.original_size = 0x123456789A00ull;
    f.current_size = 0x0000FEDCBA987600ull;
    f.geometry = (struct vhd_geometry){65535, 16, 255};
    f.type = VHD_TYPE_FIXED;
    for (int i = 0; i < 16; i++)
        f.unique_id[i] = (uint8_t)(0xF0 + i);
    f.saved_state = 1;
    vhd_footer_encode(&f, buf);
    assert_true(vhd_footer_valid(buf));
    /* Big-endian on disk. */
    assert_int_equal(buf[40], 0x00);
    assert_int_equal(buf[41], 0x00);
    assert_int_equal(buf[42], 0x12);
    assert_int_equal(buf[47], 0x00);
    assert_int_equal(buf[46], 0x9A);
    assert_int_equal(buf[56], 0xFF);
    assert_int_equal(buf[58], 16);
    assert_int_equal(buf[59], 255);
    for (int i = 85; i < 512; i++)
        assert_int_equal(buf[i], 0);
    vhd_footer_decode(buf, &g);
    assert_memory_equal(g.cookie, f.cookie, 8);
    assert_int_equal(g.features, f.features);
    assert_int_equal(g.version, f.version);
    assert_true(g.data_offset == UINT64_MAX);
    assert_int_equal(g.timestamp, f.timestamp);
    assert_memory_equal(g.creator_app, f.creator_app, 4);
    assert_int_equal(g.creator_version, f.creator_version);
    assert_int_equal(g.creator_os, f.creator_os);
    assert_int_equal(g.original_size, f.original_size);
    assert_int_equal(g.current_size, f.current_size);
    assert_int_equal(g.geometry.cylinders, 65535);
    assert_int_equal(g.geometry.heads, 16);
    assert_int_equal(g.geometry.sectors, 255);
    assert_int_equal(g.type, f.type);
    assert_int_equal(g.checksum, be32_get(buf + 64));
    assert_memory_equal(g.unique_id, f.unique_id, 16);
    assert_int_equal(g.saved_state, 1);
    vhd_footer_encode(&g, buf2);
    assert_memory_equal(buf, buf2, VHD_FOOTER_SIZE);
}

/* Old qemu wrote the fixed disk's data offset as a 32-bit all-ones value. */
static void test_footer_old_qemu_offset(void **state)
{
    (void)state;
    uint8_t buf[VHD_FOOTER_SIZE];
    struct vhd_footer f;
    win8_footer(buf);
    be64_put(buf + 16, 0xFFFFFFFFull);
    vhd_footer_decode(buf, &f);
    assert_true(f.data_offset == UINT64_MAX);
}

static void test_header_round_trip(void **state)
{
    (void)state;
    struct vhd_header h, g;
    uint8_t buf[VHD_HEADER_SIZE], buf2[VHD_HEADER_SIZE];
    win8_header(buf);
    vhd_header_decode(buf, &h);
    assert_memory_equal(h.cookie, "cxsparse", 8);
    assert_true(h.data_offset == UINT64_MAX);
    assert_int_equal(h.table_offset, 1536);
    assert_int_equal(h.version, 0x00010000);
    assert_int_equal(h.max_table_entries, 20);
    assert_int_equal(h.block_size, 2u << 20);
    assert_int_equal(h.checksum, 0xFFFFF463u);
    vhd_header_encode(&h, buf2);
    assert_memory_equal(buf, buf2, VHD_HEADER_SIZE);

    /* A differencing header with a parent name and locators. */
    memset(&h, 0, sizeof h);
    memcpy(h.cookie, "cxsparse", 8);
    h.data_offset = UINT64_MAX;
    h.table_offset = 0x600;
    h.version = 0x00010000;
    h.max_table_entries = 0xABCDEF;
    h.block_size = 1u << 21;
    for (int i = 0; i < 16; i++)
        h.parent_id[i] = (uint8_t)i;
    h.parent_timestamp = 0xDEADBEEF;
    unsigned len;
    assert_int_equal(vhd_utf8_to_utf16("C:\\base.vhd", true, h.parent_name,
                                       VHD_PARENT_NAME_BYTES, &len), 0);
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
        h.loc[i] = (struct vhd_locator){.code = VHD_PLAT_W2KU + (uint32_t)i,
                                        .data_space = 512u * (uint32_t)(i + 1),
                                        .data_length = 100u + (uint32_t)i,
                                        .data_offset = 0x100000000ull + 512u * (uint64_t)i};
    vhd_header_encode(&h, buf);
    assert_true(vhd_header_valid(buf));
    assert_int_equal(be32_get(buf + 576), VHD_PLAT_W2KU);
    assert_int_equal(be32_get(buf + 576 + 24 * 7 + 8), 107);
    assert_int_equal(be64_get(buf + 576 + 24 * 7 + 16), 0x100000000ull + 512 * 7);
    assert_int_equal(buf[64], 0);
    assert_int_equal(buf[65], 'C');
    vhd_header_decode(buf, &g);
    assert_int_equal(g.max_table_entries, 0xABCDEF);
    assert_int_equal(g.parent_timestamp, 0xDEADBEEF);
    assert_memory_equal(g.parent_id, h.parent_id, 16);
    assert_memory_equal(g.parent_name, h.parent_name, VHD_PARENT_NAME_BYTES);
    for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
        assert_int_equal(g.loc[i].code, h.loc[i].code);
        assert_int_equal(g.loc[i].data_space, h.loc[i].data_space);
        assert_int_equal(g.loc[i].data_length, h.loc[i].data_length);
        assert_int_equal(g.loc[i].data_offset, h.loc[i].data_offset);
    }
    vhd_header_encode(&g, buf2);
    assert_memory_equal(buf, buf2, VHD_HEADER_SIZE);
}

/* The spec's algorithm, transcribed independently of src/vhd/format.c. */
static struct vhd_geometry spec_chs(uint64_t bytes)
{
    uint64_t total = bytes / 512;
    uint64_t spt, heads, cth;
    if (total > 65535 * 16 * 255)
        total = 65535 * 16 * 255;
    if (total >= 65535 * 16 * 63) {
        spt = 255;
        heads = 16;
        cth = total / spt;
    } else {
        spt = 17;
        cth = total / spt;
        heads = (cth + 1023) / 1024;
        if (heads < 4)
            heads = 4;
        if (cth >= heads * 1024 || heads > 16) {
            spt = 31;
            heads = 16;
            cth = total / spt;
        }
        if (cth >= heads * 1024) {
            spt = 63;
            heads = 16;
            cth = total / spt;
        }
    }
    return (struct vhd_geometry){(uint16_t)(cth / heads), (uint8_t)heads, (uint8_t)spt};
}

static void expect_chs(uint64_t bytes, unsigned c, unsigned h, unsigned s)
{
    struct vhd_geometry g = vhd_geometry_for_size(bytes);
    if (g.cylinders != c || g.heads != h || g.sectors != s)
        fail_msg("size %llu: got %u/%u/%u, expected %u/%u/%u", (unsigned long long)bytes,
                 g.cylinders, g.heads, g.sectors, c, h, s);
}

static void test_geometry_table(void **state)
{
    (void)state;
    /* Values qemu-img 7.2 writes for these sizes (each exactly
     * representable in CHS, so qemu's rounding loop stops at once), and the
     * Windows 8 footer above (40 MiB). */
    expect_chs(40ull << 20, 963, 5, 17);
    expect_chs(963ull * 5 * 17 * 512, 963, 5, 17);
    expect_chs(1000ull * 16 * 31 * 512, 1000, 16, 31);
    expect_chs(4000ull * 16 * 63 * 512, 4000, 16, 63);
    expect_chs(20000ull * 16 * 255 * 512, 20000, 16, 255);
    expect_chs(65535ull * 16 * 255 * 512, 65535, 16, 255);
    expect_chs(1000ull * 12 * 17 * 512, 1000, 12, 17);
    /* Small sizes: at least 4 heads. */
    expect_chs(512, 0, 4, 17);
    expect_chs(1ull << 20, 30, 4, 17);
    /* The caps: 65535*16*63 sectors switches to 255 sectors per track;
     * anything past 65535*16*255 sectors is capped. */
    expect_chs(65535ull * 16 * 63 * 512, 16191, 16, 255);
    expect_chs(65535ull * 16 * 63 * 512 - 512, 65534, 16, 63);
    expect_chs(VHD_MAX_SIZE, 65535, 16, 255);
    expect_chs(2048ull << 30, 65535, 16, 255);
    expect_chs(UINT64_MAX / 2, 65535, 16, 255);
    /* 127 GiB (Windows' classic maximum). */
    expect_chs(127ull << 30, 65278, 16, 255);
}

static void test_geometry_matches_spec(void **state)
{
    (void)state;
    /* Every size boundary in a sweep, plus a pseudo-random walk. */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        uint64_t bytes;
        if (i < 100000) {
            bytes = (uint64_t)i * 7919 * 512;
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes = (x % (VHD_MAX_SIZE / 512 + 1)) * 512;
        }
        struct vhd_geometry a = vhd_geometry_for_size(bytes), b = spec_chs(bytes);
        if (a.cylinders != b.cylinders || a.heads != b.heads || a.sectors != b.sectors)
            fail_msg("size %llu: %u/%u/%u vs spec %u/%u/%u", (unsigned long long)bytes,
                     a.cylinders, a.heads, a.sectors, b.cylinders, b.heads, b.sectors);
        /* CHS never describes more than the size (below the cap). */
        if (bytes <= 65535ull * 16 * 255 * 512)
            assert_true(vhd_geometry_size(a) <= bytes);
    }
    assert_int_equal(vhd_geometry_size((struct vhd_geometry){963, 5, 17}), 41909760);
}

static void test_utf16_round_trip(void **state)
{
    (void)state;
    const char *texts[] = {
        "", "base.vhd", "C:\\VMs\\Base Disk\\base.vhd", "..\\bases\\b.vhd",
        "d\xc3\xa9j\xc3\xa0 vu \xe2\x82\xac.vhd",         /* déjà vu €.vhd */
        "\xf0\x9f\x98\x80 smile.vhd",                     /* U+1F600 */
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/\xc3\x9f", /* 日本語/ß */
    };
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        for (int be = 0; be < 2; be++) {
            uint8_t buf[512];
            unsigned len = 12345;
            assert_int_equal(vhd_utf8_to_utf16(texts[t], be, buf, sizeof buf, &len), 0);
            char *back = vhd_utf16_to_utf8(buf, len, be);
            assert_non_null(back);
            assert_string_equal(back, texts[t]);
            free(back);
        }
    }
}

static void test_utf16_encoding(void **state)
{
    (void)state;
    uint8_t buf[16];
    unsigned len;
    /* "A" + U+20AC + U+1F600: 1 + 1 + 2 code units. */
    assert_int_equal(vhd_utf8_to_utf16("A\xe2\x82\xac\xf0\x9f\x98\x80", true, buf, sizeof buf,
                                       &len), 0);
    assert_int_equal(len, 8);
    const uint8_t be[] = {0x00, 0x41, 0x20, 0xAC, 0xD8, 0x3D, 0xDE, 0x00};
    assert_memory_equal(buf, be, 8);
    assert_int_equal(vhd_utf8_to_utf16("A\xe2\x82\xac\xf0\x9f\x98\x80", false, buf, sizeof buf,
                                       &len), 0);
    const uint8_t le[] = {0x41, 0x00, 0xAC, 0x20, 0x3D, 0xD8, 0x00, 0xDE};
    assert_memory_equal(buf, le, 8);
    /* Too small an output buffer, and invalid UTF-8, are refused. */
    assert_int_equal(vhd_utf8_to_utf16("abcdefghi", true, buf, sizeof buf, &len), -1);
    assert_int_equal(vhd_utf8_to_utf16("abcdefgh", true, buf, sizeof buf, &len), 0);
    assert_int_equal(len, 16);
    assert_int_equal(vhd_utf8_to_utf16("\xff", true, buf, sizeof buf, &len), -1);
    assert_int_equal(vhd_utf8_to_utf16("\xc3", true, buf, sizeof buf, &len), -1);
    assert_int_equal(vhd_utf8_to_utf16("\xe2\x82", true, buf, sizeof buf, &len), -1);
    assert_int_equal(vhd_utf8_to_utf16("a\x80", true, buf, sizeof buf, &len), -1);
}

static void test_utf16_decoding(void **state)
{
    (void)state;
    /* Stops at the first NUL code unit (the parent name is zero-padded). */
    uint8_t name[VHD_PARENT_NAME_BYTES] = {0, 'x', 0, '.', 0, 'v', 0, 0, 0, 'z'};
    char *s = vhd_utf16_to_utf8(name, sizeof name, true);
    assert_string_equal(s, "x.v");
    free(s);
    /* An odd length ignores the last byte. */
    const uint8_t odd[] = {'a', 0, 'b', 0, 'c'};
    s = vhd_utf16_to_utf8(odd, sizeof odd, false);
    assert_string_equal(s, "ab");
    free(s);
    /* A full 512-byte name with no terminator. */
    uint8_t full[VHD_PARENT_NAME_BYTES];
    for (unsigned i = 0; i < sizeof full; i += 2) {
        full[i] = 0;
        full[i + 1] = 'q';
    }
    s = vhd_utf16_to_utf8(full, sizeof full, true);
    assert_int_equal(strlen(s), 256);
    free(s);
    /* An unpaired surrogate at the end does not read past the buffer. */
    const uint8_t lone[] = {0xD8, 0x3D};
    s = vhd_utf16_to_utf8(lone, sizeof lone, true);
    assert_non_null(s);
    free(s);
    s = vhd_utf16_to_utf8(lone, 0, true);
    assert_string_equal(s, "");
    free(s);
}

static void test_locator_space(void **state)
{
    (void)state;
    /* Below 512 the field counts sectors (spec); from 512 up, bytes (Windows). */
    struct vhd_locator l = {.data_space = 1};
    assert_int_equal(vhd_locator_space_bytes(&l), 512);
    l.data_space = 511;
    assert_int_equal(vhd_locator_space_bytes(&l), 511 * 512);
    l.data_space = 512;
    assert_int_equal(vhd_locator_space_bytes(&l), 512);
    l.data_space = 4096;
    assert_int_equal(vhd_locator_space_bytes(&l), 4096);
    char code[5];
    vhd_code_string(VHD_PLAT_W2RU, code);
    assert_string_equal(code, "W2ru");
    vhd_code_string(0x01020304, code);
    assert_string_equal(code, "????");
    assert_string_equal(vhd_type_name(VHD_TYPE_DIFF), "differencing");
    assert_string_equal(vhd_type_name(99), "unknown");
}

static void expect_size(const char *text, uint64_t want)
{
    uint64_t got = 0;
    int r = size_parse(text, &got);
    if (r != 0 || got != want)
        fail_msg("size_parse(\"%s\"): r=%d got %llu, expected %llu", text, r,
                 (unsigned long long)got, (unsigned long long)want);
}

static void expect_bad_size(const char *text)
{
    uint64_t got = 42;
    int r = size_parse(text, &got);
    if (r == 0)
        fail_msg("size_parse(\"%s\") accepted (%llu)", text ? text : "(null)", (unsigned long long)got);
    assert_int_equal(got, 42);
}

static void test_size_parse(void **state)
{
    (void)state;
    expect_size("0", 0);
    expect_size("4096", 4096);
    expect_size("512B", 512);
    expect_size("1K", 1024);
    expect_size("1k", 1024);
    expect_size("512M", 512ull << 20);
    expect_size("20G", 20ull << 30);
    expect_size("20GB", 20ull << 30);
    expect_size("20GiB", 20ull << 30);
    expect_size("2T", 2ull << 40);
    expect_size("2040G", 2040ull << 30);
    expect_size("1536M", 3ull << 29);
    expect_size("137438953472", 137438953472ull);
    expect_bad_size(NULL);
    expect_bad_size("");
    expect_bad_size("1.5G");
    expect_bad_size("G");
    expect_bad_size("-1");
    expect_bad_size("-1G");
    expect_bad_size(" 1G");
    expect_bad_size("1X");
    expect_bad_size("1G extra");
    expect_bad_size("1GG");
    expect_bad_size("1E");
    expect_bad_size("1e30");
    expect_bad_size("99999999999T");
}

static void test_size_format(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(size_format(0, buf, sizeof buf), "0 B");
    assert_string_equal(size_format(1023, buf, sizeof buf), "1023 B");
    assert_string_equal(size_format(1024, buf, sizeof buf), "1 KiB");
    assert_string_equal(size_format(3ull << 29, buf, sizeof buf), "1.5 GiB");
    assert_string_equal(size_format(2040ull << 30, buf, sizeof buf), "1.992 TiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_known_footer),
        cmocka_unit_test(test_checksum_known_header),
        cmocka_unit_test(test_footer_decode_known),
        cmocka_unit_test(test_footer_round_trip),
        cmocka_unit_test(test_footer_old_qemu_offset),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_geometry_table),
        cmocka_unit_test(test_geometry_matches_spec),
        cmocka_unit_test(test_utf16_round_trip),
        cmocka_unit_test(test_utf16_encoding),
        cmocka_unit_test(test_utf16_decoding),
        cmocka_unit_test(test_locator_space),
        cmocka_unit_test(test_size_parse),
        cmocka_unit_test(test_size_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
