/* hvm vm screenshot, and the graphical console of hvm vm console --vnc:
 * the VM's VNC server is reached only through its worker's run/vnc.sock
 * (0600), which hands each connection to QEMU; --listen forwards TCP on
 * the loopback to it while the command runs. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "runtime/runtime.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vm/vm.h"

#define PNG_MAX (256u << 20)

int cmd_vm_screenshot(const struct cli_args *args)
{
    const char *name = cli_pos(args, 0), *out = cli_pos(args, 1);
    struct store s;
    struct vm *vm;
    if (vm_cli_open(cli_text(args, "store"), name, &s, &vm))
        return EXIT_ERROR;
    int fd = -1, r = 0;
    json_t *reply = NULL;
    if (!runtime_alive(vm))
        r = hvm_error(EINVAL, "VM '%s' is %s, not running", vm->name, vm_state(vm));
    if (r == 0)
        r = runtime_request_fd(vm, json_pack("{s:s}", "op", "screendump"), &reply, &fd);
    vm_close(vm);
    store_close(&s);
    json_decref(reply);
    if (r == 0 && fd < 0)
        r = hvm_error(EPROTO, "VM '%s': the worker sent no image", name);
    struct stat st;
    char *png = NULL;
    if (r == 0 && (fstat(fd, &st) < 0 || st.st_size < 8 || (uint64_t)st.st_size > PNG_MAX))
        r = hvm_error(EIO, "VM '%s': the screen image is empty or too large", name);
    if (r == 0 && !(png = malloc((size_t)st.st_size)))
        r = hvm_error(ENOMEM, "out of memory");
    if (r == 0 && pread(fd, png, (size_t)st.st_size, 0) != st.st_size)
        r = hvm_error(EIO, "VM '%s': cannot read the screen image", name);
    if (r == 0 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) != 0)
        r = hvm_error(EIO, "VM '%s': QEMU's screen image is not a PNG", name);
    /* Atomic: a reader of OUT sees the old image or the whole new one. */
    if (r == 0)
        r = file_replace(out, png, (size_t)st.st_size);
    if (fd >= 0)
        close(fd);
    free(png);
    if (r < 0)
        return cli_fail();
    printf("%s: screen of VM '%s' (%lld bytes, PNG)\n", out, name, (long long)st.st_size);
    return EXIT_OK;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    return fd;
}

/* Copies both ways until either side closes (in a child per client). */
static void relay(int a, int b)
{
    char buf[65536];
    for (;;) {
        struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        if (poll(p, 2, -1) < 0)
            return;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n <= 0)
                return;
            for (ssize_t done = 0; done < n;) {
                ssize_t w = write(p[1 - i].fd, buf + done, (size_t)(n - done));
                if (w <= 0)
                    return;
                done += w;
            }
        }
    }
}

/* --listen 127.0.0.1:PORT: only the loopback (VNC here has no password). */
static int listen_loopback(const char *spec, int *fd)
{
    const char *colon = strrchr(spec, ':');
    char host[64];
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || (size_t)(colon - spec) >= sizeof host || !colon[1] || *end || port < 1 || port > 65535)
        return hvm_error(EINVAL, "--listen: '%s' is not 127.0.0.1:PORT", spec);
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || (ntohl(a.sin_addr.s_addr) >> 24) != 127)
        return hvm_error(EINVAL, "--listen: '%s' is not a loopback address (127.x.x.x): the VNC "
                         "console has no password", host);
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (*fd >= 0)
        setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(*fd, 8) < 0)
        return hvm_error(errno, "--listen %s: %s", spec, strerror(errno));
    return 0;
}

int vm_console_vnc(const struct cli_args *args)
{
    const char *name = cli_pos(args, 0), *listen_on = cli_text(args, "listen");
    struct store s;
    struct vm *vm;
    if (vm_cli_open(cli_text(args, "store"), name, &s, &vm))
        return EXIT_ERROR;
    int r = 0;
    if (!runtime_alive(vm))
        r = hvm_error(EINVAL, "VM '%s' is %s, not running", vm->name, vm_state(vm));
    char *path = vm_path(vm, "run/vnc.sock");
    vm_close(vm); /* do not hold the VM busy while forwarding */
    store_close(&s);
    if (r < 0 || !path) {
        free(path);
        return r < 0 ? cli_fail() : cli_failf("out of memory");
    }
    if (!listen_on) {
        printf("VM '%s': VNC on the Unix socket %s (root's alone)\n"
               "  gvncviewer / virt-viewer:  vncviewer %s  (a viewer that takes a socket path)\n"
               "  any VNC viewer over TCP:   hvm vm console %s --vnc --listen 127.0.0.1:5900\n"
               "  socat:                     socat TCP-LISTEN:5900,bind=127.0.0.1,fork UNIX-CONNECT:%s\n",
               name, path, path, name, path);
        free(path);
        return EXIT_OK;
    }
    int lfd = -1, probe = connect_unix(path);
    if (probe < 0) {
        r = cli_failf("VM '%s': %s: %s", name, path, strerror(-probe));
        free(path);
        return r;
    }
    close(probe);
    if (listen_loopback(listen_on, &lfd) < 0) {
        free(path);
        return cli_fail();
    }
    printf("VM '%s': VNC on %s (forwarded to %s); Ctrl-C ends\n", name, listen_on, path);
    fflush(stdout);
    signal(SIGCHLD, SIG_IGN); /* the relays are nobody's zombies */
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        int v = connect_unix(path);
        if (v < 0) {
            /* The VM stopped: the forwarding ends with it. */
            close(c);
            fprintf(stderr, "hvm: VM '%s': the VNC console is gone (%s)\n", name, strerror(-v));
            break;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            relay(c, v);
            _exit(0);
        }
        close(c);
        close(v);
    }
    close(lfd);
    free(path);
    return EXIT_OK;
}
