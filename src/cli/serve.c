/* Serving an open disk over NBD until SIGTERM/SIGINT: shared by
 * hvm vhd serve and hvm vm serve. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

static void log_line(const char *line)
{
    fprintf(stderr, "hvm: %s\n", line);
}

/* *out = the environment variable name as a count from 0 to max (seconds
 * or clients); unset leaves *out. -1 (error said) if malformed. */
static int env_count(const char *name, unsigned max, unsigned *out)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || errno || n > max) {
        cli_failf("%s=%s: expected a whole number from 0 to %u", name, v, max);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

/* The server's limits, from the environment (documented in docs/nbd.md and
 * each serve verb's help). Times in seconds. */
static int serve_limits(struct nbd_server_options *o)
{
    unsigned hs = NBD_SERVER_HANDSHAKE_TIMEOUT_MS / 1000, idle = 0,
             clients = NBD_SERVER_MAX_CLIENTS;
    if (env_count("HVM_NBD_HANDSHAKE_TIMEOUT", 86400, &hs) < 0 ||
        env_count("HVM_NBD_IDLE_TIMEOUT", 86400 * 30, &idle) < 0 ||
        env_count("HVM_NBD_MAX_CLIENTS", NBD_SERVER_MAX_CLIENTS, &clients) < 0)
        return -1;
    if (hs == 0 || clients == 0) {
        cli_failf("HVM_NBD_HANDSHAKE_TIMEOUT and HVM_NBD_MAX_CLIENTS must be at least 1");
        return -1;
    }
    o->handshake_timeout_ms = hs * 1000;
    o->idle_timeout_ms = idle * 1000;
    o->max_clients = clients;
    return 0;
}

int cli_serve_disk(struct disk *d, const char *socket_path, bool read_only, const char *label)
{
    struct nbd_server *s = NULL;
    struct nbd_server_options o = {
        .read_only = read_only, .poll_requests = true, .log = log_line};
    if (serve_limits(&o) < 0)
        return EXIT_ERROR;
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
