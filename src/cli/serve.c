/* Serving an open disk over NBD until SIGTERM/SIGINT: shared by
 * hvm vhd serve and hvm vm serve. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "disk/disk.h"
#include "nbd/server.h"

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

void cli_serve_signals(void)
{
    /* The handler only sets a flag and writes the server's stop pipe
     * (async-signal-safe), so it does not matter which thread takes it. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A hang-up of the terminal stops the server the same way: flushed. */
    sigaction(SIGHUP, &sa, NULL);
    /* A client closing mid-reply must never kill the server: every send has
     * MSG_NOSIGNAL and the client threads block SIGPIPE (splice has no
     * flag); ignoring it here covers any other write to a closed socket. */
    signal(SIGPIPE, SIG_IGN);
}

int cli_serve_disk(struct disk *d, const char *socket_path, bool read_only, const char *label)
{
    struct nbd_server *s = NULL;
    struct nbd_server_options o = {.read_only = read_only, .poll_requests = true};
    if (nbd_server_new(d, &o, &s) < 0 || nbd_server_listen_path(s, socket_path) < 0) {
        int rc = cli_fail();
        nbd_server_free(s);
        return rc;
    }
    cli_serve_signals();
    running = s;
    if (stop_requested)
        nbd_server_stop(s);
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "hvm: serving %s%s on %s; Ctrl-C to stop\n", label,
                read_only ? " read-only" : "", socket_path);
    int r = nbd_server_run(s);
    /* Every client thread has ended: only this thread can take a signal
     * now, so clearing the pointer cannot race with the handler. */
    running = NULL;
    int rc = r < 0 ? cli_fail() : EXIT_OK;
    nbd_server_free(s);
    if (disk_flush(d) < 0 && rc == EXIT_OK)
        rc = cli_fail();
    return rc;
}
