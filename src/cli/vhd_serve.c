/* hvm vhd serve: a disk (a whole chain) over NBD on a Unix socket. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "disk/disk.h"
#include "nbd/server.h"
#include "util/error.h"

static const char serve_usage[] =
    "usage: hvm vhd serve FILE --socket PATH [--read-only] [--raw]\n"
    "\n"
    "Serves FILE over NBD on the Unix socket PATH (created with mode 0600; a\n"
    "stale socket file is replaced) until SIGTERM or SIGINT, then flushes and\n"
    "closes the disk. A differencing disk is served with its whole parent\n"
    "chain; writes go to FILE only. Clients: qemu, qemu-img, qemu-io, nbdinfo,\n"
    "nbdcopy, e.g. nbd+unix:///?socket=PATH.\n"
    "  --socket PATH  where to listen (required)\n"
    "  --read-only    open FILE read-only and refuse writes\n"
    "  --raw          serve FILE as raw bytes (needed for a file that is not a VHD)\n";

/* A signal that arrives before the server runs is remembered in
 * stop_requested and acted on once running is set, whatever the order. */
static volatile sig_atomic_t stop_requested;
static struct nbd_server *volatile running;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (running)
        nbd_server_stop(running);
}

int cmd_vhd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"read-only", no_argument, NULL, 'r'},
        {"raw", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *socket_path = NULL;
    bool read_only = false, raw = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': socket_path = optarg; break;
        case 'r': read_only = true; break;
        case 'R': raw = true; break;
        case 'h': return cli_help(serve_usage);
        default: return cli_usage_error(serve_usage, "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(serve_usage, "serve takes one FILE");
    if (!socket_path)
        return cli_usage_error(serve_usage, "--socket is required");
    const char *path = argv[optind];

    /* A VHD whose footers are both damaged would otherwise open as raw
     * bytes, and a client's writes would destroy it: raw must be asked for. */
    if (!raw) {
        if (access(path, F_OK) < 0)
            return cli_failf("%s: %s", path, strerror(errno));
        if (!disk_is_vhd(path))
            return cli_failf("%s: not a VHD file (no 'conectix' footer); use --raw to serve "
                             "it as raw bytes", path);
    }

    /* The handler only sets a flag and writes the server's stop pipe
     * (async-signal-safe), so it does not matter which thread takes it. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct disk *d;
    unsigned flags = (read_only ? DISK_OPEN_READ_ONLY : 0) | (raw ? DISK_OPEN_RAW : 0);
    if (disk_open(path, flags, &d) < 0)
        return cli_fail();

    struct nbd_server *s = NULL;
    struct nbd_server_options o = {.read_only = read_only};
    if (nbd_server_new(d, &o, &s) < 0 || nbd_server_listen_path(s, socket_path) < 0) {
        int rc = cli_fail();
        nbd_server_free(s);
        disk_close(d);
        return rc;
    }

    running = s;
    if (stop_requested)
        nbd_server_stop(s);

    if (isatty(STDERR_FILENO))
        fprintf(stderr, "hvm: serving %s%s on %s; Ctrl-C to stop\n", path,
                read_only ? " read-only" : "", socket_path);

    int r = nbd_server_run(s);
    /* Every client thread has ended: only this thread can take a signal
     * now, so clearing the pointer cannot race with the handler. */
    running = NULL;
    int rc = EXIT_OK;
    if (r < 0)
        rc = cli_fail();
    nbd_server_free(s);
    if (disk_flush(d) < 0 && rc == EXIT_OK)
        rc = cli_fail();
    disk_close(d);
    return rc;
}
