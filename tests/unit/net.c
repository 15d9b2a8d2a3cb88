/* Unit tests of src/net: bridges, addresses, ports and taps, in a network
 * namespace of their own (unshare(CLONE_NEWNET) before any test), so that
 * nothing here can touch the host's interfaces. Skipped (77) where a
 * namespace cannot be made (not root). */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/net.h"
#include "net/services.h"
#include "util/error.h"

static char host_ns[64];

/* Every test checks first that it is not in the host's namespace. */
static void assert_own_namespace(void)
{
    char here[64] = "";
    ssize_t n = readlink("/proc/self/ns/net", here, sizeof here - 1);
    assert_true(n > 0);
    assert_string_not_equal(here, host_ns);
}

static void test_ifname(void **state)
{
    (void)state;
    assert_true(net_ifname_valid("hvm-lab"));
    assert_true(net_ifname_valid("123456789012345"));
    assert_false(net_ifname_valid("1234567890123456"));
    assert_false(net_ifname_valid(""));
    assert_false(net_ifname_valid("a/b"));
    assert_false(net_ifname_valid("a:b"));
    assert_false(net_ifname_valid("a b"));
    assert_false(net_ifname_valid(".."));
}

static void test_cidr(void **state)
{
    (void)state;
    assert_int_equal(net_cidr_check("10.0.0.1/24"), 0);
    assert_int_equal(net_cidr_check("fd00::1/64"), 0);
    assert_int_equal(net_cidr_check("10.0.0.1"), -EINVAL);
    assert_int_equal(net_cidr_check("10.0.0.1/33"), -EINVAL);
    assert_int_equal(net_cidr_check("10.0.0.1/0"), -EINVAL);
    assert_int_equal(net_cidr_check("10.0.0.1/2x"), -EINVAL);
    assert_int_equal(net_cidr_check("lan/24"), -EINVAL);
    assert_int_equal(net_cidr_check(""), -EINVAL);
}

static void test_bridge(void **state)
{
    (void)state;
    assert_own_namespace();
    struct net_link l;
    assert_int_equal(net_link_get("ut-br0", &l), -ENODEV);
    assert_int_equal(net_bridge_create("ut-br0"), 0);
    assert_int_equal(net_bridge_create("ut-br0"), 0); /* idempotent */
    assert_int_equal(net_link_get("ut-br0", &l), 0);
    assert_true(l.is_bridge);
    assert_false(l.up);
    assert_int_equal(net_link_no_link_local("ut-br0"), 0);
    assert_int_equal(net_link_set_up("ut-br0"), 0);
    assert_int_equal(net_link_set_up("ut-br0"), 0);
    assert_int_equal(net_link_get("ut-br0", &l), 0);
    assert_true(l.up);

    bool has = true;
    assert_int_equal(net_addr_has("ut-br0", "10.99.0.1/24", &has), 0);
    assert_false(has);
    assert_int_equal(net_addr_add("ut-br0", "10.99.0.1/24"), 0);
    assert_int_equal(net_addr_add("ut-br0", "10.99.0.1/24"), 0); /* idempotent */
    assert_int_equal(net_addr_add("ut-br0", "fd99::1/64"), 0);
    assert_int_equal(net_addr_has("ut-br0", "10.99.0.1/24", &has), 0);
    assert_true(has);
    assert_int_equal(net_addr_has("ut-br0", "10.99.0.1/16", &has), 0);
    assert_false(has);
    assert_int_equal(net_addr_has("ut-br0", "fd99::1/64", &has), 0);
    assert_true(has);
    assert_int_equal(net_addr_remove("ut-br0", "10.99.0.1/24"), 0);
    assert_int_equal(net_addr_remove("ut-br0", "10.99.0.1/24"), 0);
    assert_int_equal(net_addr_has("ut-br0", "10.99.0.1/24", &has), 0);
    assert_false(has);
    assert_int_equal(net_addr_add("nonexistent0", "10.99.0.1/24"), -ENODEV);
    assert_non_null(strstr(hvm_error_message(), "nonexistent0"));

    assert_int_equal(net_bridge_delete("ut-br0"), 0);
    assert_int_equal(net_link_get("ut-br0", &l), -ENODEV);
    assert_int_equal(net_bridge_delete("ut-br0"), 0); /* gone is fine */
}

/* A tap is not a bridge: neither made into one nor deleted as one. */
static void test_not_a_bridge(void **state)
{
    (void)state;
    assert_own_namespace();
    char got[NET_IFNAME_MAX + 1];
    int fd = net_tap_create("ut-tap9", got);
    assert_true(fd >= 0);
    assert_string_equal(got, "ut-tap9");
    assert_int_equal(net_bridge_create("ut-tap9"), -EEXIST);
    assert_int_equal(net_bridge_delete("ut-tap9"), -EEXIST);
    struct net_link l;
    assert_int_equal(net_link_get("ut-tap9", &l), 0);
    assert_false(l.is_bridge);
    close(fd);
}

static int wait_gone(const char *name)
{
    struct net_link l;
    for (int i = 0; i < 200; i++) {
        if (net_link_get(name, &l) == -ENODEV)
            return 0;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return -1;
}

/* A process makes a tap and puts it on a bridge; SIGKILL to it removes the
 * tap (and so the port) with nothing left to clean up. */
static void test_tap_dies_with_process(void **state)
{
    (void)state;
    assert_own_namespace();
    assert_int_equal(net_bridge_create("ut-br1"), 0);
    assert_int_equal(net_link_set_up("ut-br1"), 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char got[NET_IFNAME_MAX + 1] = "";
        int fd = net_tap_create("ut-t%d", got);
        int ok = fd >= 0 && net_link_set_master(got, "ut-br1") == 0 && net_link_set_up(got) == 0;
        if (!ok)
            snprintf(got, sizeof got, "!");
        if (write(pipefd[1], got, sizeof got) != (ssize_t)sizeof got)
            _exit(1);
        for (;;)
            pause();
    }
    close(pipefd[1]);
    char name[NET_IFNAME_MAX + 1] = "";
    assert_int_equal(read(pipefd[0], name, sizeof name), (ssize_t)sizeof name);
    close(pipefd[0]);
    assert_string_not_equal(name, "!");
    assert_int_equal(strncmp(name, "ut-t", 4), 0);

    struct net_link br, tap;
    assert_int_equal(net_link_get("ut-br1", &br), 0);
    assert_int_equal(net_link_get(name, &tap), 0);
    assert_int_equal(tap.master, br.ifindex);
    char **ports;
    assert_int_equal(net_bridge_ports("ut-br1", &ports), 0);
    assert_non_null(ports[0]);
    assert_string_equal(ports[0], name);
    assert_null(ports[1]);
    net_names_free(ports);
    assert_int_equal(net_link_set_master(name, "ut-br1"), 0); /* idempotent */

    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(wait_gone(name), 0);
    assert_int_equal(net_bridge_ports("ut-br1", &ports), 0);
    assert_null(ports[0]);
    net_names_free(ports);
    assert_int_equal(net_bridge_delete("ut-br1"), 0);
}

/* The IPv4 arithmetic of DHCP ranges (net/services.h). */
static void test_ipv4_range(void **state)
{
    (void)state;
    struct net_ipv4_net n;
    uint32_t a, b;
    char x[NET_IPV4_TEXT], y[NET_IPV4_TEXT];
    assert_int_equal(net_ipv4_cidr_parse("10.60.0.1/24", &n), 0);
    assert_int_equal(n.prefix, 24);
    assert_int_equal(net_ipv4_default_range(&n, &a, &b), 0);
    net_ipv4_format(a, x);
    net_ipv4_format(b, y);
    assert_string_equal(x, "10.60.0.128");
    assert_string_equal(y, "10.60.0.254");
    /* The host in the upper half: the lower half, without the network. */
    assert_int_equal(net_ipv4_cidr_parse("192.168.5.200/24", &n), 0);
    assert_int_equal(net_ipv4_default_range(&n, &a, &b), 0);
    net_ipv4_format(a, x);
    net_ipv4_format(b, y);
    assert_string_equal(x, "192.168.5.1");
    assert_string_equal(y, "192.168.5.127");
    assert_true(net_ipv4_in(&n, a) && !net_ipv4_in(&n, n.network) && !net_ipv4_in(&n, n.broadcast));
    assert_int_equal(net_ipv4_cidr_parse("10.0.0.1/31", &n) < 0 ||
                     net_ipv4_default_range(&n, &a, &b) < 0, 1);
    assert_true(net_ipv4_cidr_parse("10.0.0.300/24", &n) < 0);
    assert_true(net_ipv4_parse("1.2.3", &a) < 0);
    hvm_error_clear();
}

int main(void)
{
    ssize_t n = readlink("/proc/self/ns/net", host_ns, sizeof host_ns - 1);
    if (n <= 0 || unshare(CLONE_NEWNET) < 0) {
        printf("skipped: cannot make a network namespace (%s)\n", strerror(errno));
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ifname),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_ipv4_range),
        cmocka_unit_test(test_bridge),
        cmocka_unit_test(test_not_a_bridge),
        cmocka_unit_test(test_tap_dies_with_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
