/* Serving an open disk over NBD until SIGTERM/SIGINT: shared by
 * hvm vhd serve and hvm vm serve. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "disk/disk.h"
#include "nbd/server.h"

static struct nbd_server *volatile running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        nbd_server_stop(running);
}

int cli_serve_disk(struct disk *d, const char *socket_path, bool read_only, const char *label)
{
    struct nbd_server *s = NULL;
    struct nbd_server_options o = {.read_only = read_only};
    if (nbd_server_new(d, &o, &s) < 0 || nbd_server_listen_path(s, socket_path) < 0) {
        int rc = cli_fail();
        nbd_server_free(s);
        return rc;
    }
    /* The handler only writes the server's stop pipe (async-signal-safe),
     * so it does not matter which thread takes the signal. */
    running = s;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
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
