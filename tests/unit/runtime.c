/* Unit tests of what reaches QEMU's command line (src/runtime/qemu.c): the
 * argument vector grows without bound (a fixed array once overflowed with
 * 51 adapters), commas in option values are escaped, MACs are six hex
 * pairs, and a plan carrying anything else is refused with the field named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/qemu.h"
#include "runtime/ramsize.h"
#include "util/error.h"
#include "vm/store.h"

static void test_args_grow(void **state)
{
    (void)state;
    struct qemu_args a;
    qemu_args_init(&a);
    for (int i = 0; i < 20000; i++)
        qemu_args_add(&a, "-nic%d", i);
    assert_int_equal(qemu_args_finish(&a), 0);
    assert_int_equal(a.n, 20000);
    assert_string_equal(a.argv[0], "-nic0");
    assert_string_equal(a.argv[19999], "-nic19999");
    assert_null(a.argv[20000]);
    qemu_args_free(&a);
    assert_null(a.argv);
}

static void test_escape(void **state)
{
    (void)state;
    char *e = qemu_opt_escape("a,b,,c,");
    assert_string_equal(e, "a,,b,,,,c,,");
    free(e);
    e = qemu_opt_escape("");
    assert_string_equal(e, "");
    free(e);
}

static void test_mac(void **state)
{
    (void)state;
    assert_true(qemu_mac_valid("52:54:00:12:34:56"));
    assert_true(qemu_mac_valid("aA:bB:cC:dD:eE:fF"));
    const char *bad[] = {"", "52:54:00:12:34", "52:54:00:12:34:5", "52:54:00:12:34:567",
                         "52-54-00-12-34-56", "52:54:00:12:34:5g", "52:54:00:12:34:56,hostfwd=tcp::1-:22",
                         "52:54:00:12:34:56\n", " 2:54:00:12:34:56", "525400123456"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(qemu_mac_valid(bad[i]));
    assert_false(qemu_mac_valid(NULL));
}

static json_t *good_plan(void)
{
    return json_pack("{s:s, s:s, s:i, s:I, s:s, s:[{s:i, s:s}], s:[{s:s, s:s}], s:s, s:s, s:s}",
                     "name", "web", "accel", "tcg", "cpus", 2, "memory", (json_int_t)256 << 20,
                     "disk_io", "vhost-user", "drives", "slot", 0, "path", "/s/vms/web/disk.vhd",
                     "nics", "switch", "lan", "mac", "52:54:00:12:34:56", "kernel", "/boot/vmlinuz",
                     "initrd", "/boot/initrd.img", "cmdline", "console=ttyS0");
}

/* Expects plan refused with a message that contains want; frees plan. */
static void expect_refused(json_t *plan, const char *want)
{
    hvm_error_clear();
    assert_int_equal(qemu_plan_check(plan), -22);
    if (!strstr(hvm_error_message(), want))
        fail_msg("'%s' does not name '%s'", hvm_error_message(), want);
    json_decref(plan);
}

static void test_plan(void **state)
{
    (void)state;
    json_t *p = good_plan();
    assert_int_equal(qemu_plan_check(p), 0);
    json_decref(p);

    p = good_plan();
    json_object_set_new(json_array_get(json_object_get(p, "nics"), 0), "mac",
                        json_string("52:54:00:12:34:56,hostfwd=tcp:127.0.0.1:45678-:22,tftp=/"));
    expect_refused(p, "config.nics[0].mac");
    p = good_plan();
    json_object_set_new(json_array_get(json_object_get(p, "nics"), 0), "mac", json_integer(5));
    expect_refused(p, "config.nics[0].mac");

    p = good_plan();
    for (int i = 0; i < 59; i++)
        json_array_append_new(json_object_get(p, "nics"),
                              json_pack("{s:s, s:s}", "switch", "lan", "mac", "52:54:00:12:34:57"));
    expect_refused(p, "60 network adapters");

    p = good_plan();
    json_object_set_new(p, "name", json_string("a/b"));
    expect_refused(p, "name");
    p = good_plan();
    json_object_set_new(p, "accel", json_string("tcg,thread=multi"));
    expect_refused(p, "accelerator");
    p = good_plan();
    json_object_set_new(p, "cpus", json_string("2"));
    expect_refused(p, "config.cpus");
    p = good_plan();
    json_object_set_new(p, "memory", json_integer(-1));
    expect_refused(p, "config.memory");
    p = good_plan();
    json_object_set_new(p, "kernel", json_string("vmlinuz"));
    expect_refused(p, "config.boot.kernel");
    p = good_plan();
    json_object_set_new(p, "initrd", json_string("/boot/../etc/shadow"));
    expect_refused(p, "config.boot.initrd");
    p = good_plan();
    json_object_set_new(p, "cmdline", json_string("console=ttyS0\n-device x"));
    expect_refused(p, "config.boot.cmdline");
    p = good_plan();
    json_object_set_new(json_array_get(json_object_get(p, "drives"), 0), "slot", json_string("0"));
    expect_refused(p, "config.drives[0].slot");
    p = good_plan();
    json_array_append_new(json_object_get(p, "drives"), json_pack("{s:i, s:s}", "slot", 0, "path", "/x"));
    expect_refused(p, "config.drives[1].slot");
    p = good_plan();
    json_object_set_new(p, "disk_io", json_string("vhost-user,x=y"));
    expect_refused(p, "config.disk_io");
    /* A comma in a name is the store's rule to allow (QEMU then gets it
     * escaped) or to refuse: the check follows that rule. */
    p = good_plan();
    json_object_set_new(p, "name", json_string("a,b"));
    assert_int_equal(qemu_plan_check(p), store_name_valid("a,b") ? 0 : -22);
    json_decref(p);
}

/* DVDs and the boot order: slots, absolute paths, known kinds once each;
 * bootindex follows the order. */
static void test_plan_dvd_boot(void **state)
{
    (void)state;
    json_t *p = good_plan();
    json_object_set_new(p, "dvds", json_pack("[{s:i, s:s}, {s:i, s:s}]", "slot", 0, "path", "/iso/a.iso",
                                             "slot", 3, "path", "/iso/b,c.iso"));
    json_object_set_new(p, "boot_order", json_pack("[s, s]", "dvd", "disk"));
    assert_int_equal(qemu_plan_check(p), 0);
    assert_int_equal(qemu_boot_index(p, "dvd", 0), 1);
    assert_int_equal(qemu_boot_index(p, "dvd", 1), 2);
    assert_int_equal(qemu_boot_index(p, "disk", 0), 101);
    assert_int_equal(qemu_boot_index(p, "net", 0), -1);
    json_decref(p);
    p = good_plan();
    assert_int_equal(qemu_boot_index(p, "disk", 0), -1); /* no order: QEMU's default */
    json_decref(p);

    p = good_plan();
    json_object_set_new(p, "dvds", json_pack("[{s:i, s:s}]", "slot", 4, "path", "/a.iso"));
    expect_refused(p, "config.dvds[0].slot");
    p = good_plan();
    json_object_set_new(p, "dvds", json_pack("[{s:i, s:s}]", "slot", 0, "path", "a.iso"));
    expect_refused(p, "config.dvds[0].file");
    p = good_plan();
    json_object_set_new(p, "dvds", json_pack("[{s:i, s:s}]", "slot", 0, "path", "/x/../etc/shadow"));
    expect_refused(p, "config.dvds[0].file");
    p = good_plan();
    json_object_set_new(p, "dvds", json_pack("[{s:i, s:s}, {s:i, s:s}]", "slot", 1, "path", "/a",
                                             "slot", 1, "path", "/b"));
    expect_refused(p, "config.dvds[1].slot");
    p = good_plan();
    json_object_set_new(p, "dvds", json_string("/a.iso"));
    expect_refused(p, "config.dvds");
    p = good_plan();
    json_object_set_new(p, "boot_order", json_pack("[s]", "floppy"));
    expect_refused(p, "config.boot_order");
    p = good_plan();
    json_object_set_new(p, "boot_order", json_pack("[s, s]", "disk", "disk"));
    expect_refused(p, "config.boot_order");
    p = good_plan();
    json_object_set_new(p, "boot_order", json_array());
    expect_refused(p, "config.boot_order");
    p = good_plan();
    json_object_set_new(p, "boot_order", json_pack("[s]", "disk,bootindex=0"));
    expect_refused(p, "config.boot_order");
}

/* The RAM block's length at the start of a memory state (QEMU 7.2's
 * stream: magic, version, configuration, the "ram" setup section with
 * every block), as a restore must give it to QEMU again. */
static size_t state_header(uint8_t *b, const char *machine, uint64_t ram)
{
    size_t n = 0;
    const struct { const char *id; uint64_t len; } blocks[] = {
        {"0000:00:02.0/vga.vram", 16u << 20}, {"ram", ram}, {"pc.bios", 256u << 10}};
    uint64_t total = 0;
#define PUT(v, bytes) for (int i_ = (bytes) - 1; i_ >= 0; i_--) b[n++] = (uint8_t)((uint64_t)(v) >> (8 * i_))
#define PUT_ID(s) do { b[n++] = (uint8_t)strlen(s); memcpy(b + n, s, strlen(s)); n += strlen(s); } while (0)
    PUT(0x5145564d, 4);
    PUT(3, 4);
    b[n++] = 0x07;
    PUT(strlen(machine), 4);
    memcpy(b + n, machine, strlen(machine));
    n += strlen(machine);
    b[n++] = 0x01;
    PUT(2, 4);
    PUT_ID("ram");
    PUT(0, 4);
    PUT(4, 4);
    for (size_t i = 0; i < 3; i++)
        total += blocks[i].len;
    PUT(total | 0x04, 8);
    for (size_t i = 0; i < 3; i++) {
        PUT_ID(blocks[i].id);
        PUT(blocks[i].len, 8);
    }
#undef PUT
#undef PUT_ID
    return n;
}

static void test_ramsize(void **state)
{
    (void)state;
    uint8_t b[512];
    uint64_t got = 0;
    size_t n = state_header(b, "pc-i440fx-7.2", (256u << 20) + RAMSIZE_TCG_PAD);
    assert_int_equal(ramsize_of_state_header(b, n, &got), 0);
    assert_int_equal(got, (256u << 20) + RAMSIZE_TCG_PAD);
    n = state_header(b, "pc-q35-7.2", 1u << 30);
    assert_int_equal(ramsize_of_state_header(b, n, &got), 0);
    assert_int_equal(got, 1u << 30);
    /* Cut short, or not a state: no size. */
    assert_int_equal(ramsize_of_state_header(b, n - 16 - 4, &got), -EINVAL); /* in "ram" */
    b[0] = 'X';
    assert_int_equal(ramsize_of_state_header(b, n, &got), -EINVAL);
    assert_int_equal(ramsize_of_state("/nonexistent/state", &got), -ENOENT);
    /* Under TCG a boot gets a RAM block QEMU 7.2 syncs page by page (its
     * fast path, for multiples of 256 KiB, loses writes). */
    assert_int_equal(ramsize_for_boot(256u << 20, true) % (256u << 10), RAMSIZE_TCG_PAD);
    assert_int_equal(ramsize_for_boot(256u << 20, false), 256u << 20);
    assert_true(ramsize_precopy_exact(ramsize_for_boot(256u << 20, true), true));
    assert_false(ramsize_precopy_exact(256u << 20, true));
    assert_true(ramsize_precopy_exact(256u << 20, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_grow),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_plan_dvd_boot),
        cmocka_unit_test(test_ramsize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
