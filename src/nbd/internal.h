/* What server.c (listening, threads, the disk lock) and connection.c (one
 * client's handshake and requests) share. Not for use outside src/nbd. */
#ifndef HVM_NBD_INTERNAL_H
#define HVM_NBD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "nbd/server.h"

struct nbd_client {
    struct nbd_server *server;
    pthread_t thread;
    int fd;
    bool used;         /* slot taken: only the accept loop changes it */
    atomic_bool done;  /* set by the client's thread when it has finished */
};

struct nbd_server {
    /* Every call into the disk layer holds disk_lock: the layer keeps
     * per-disk caches and file offsets that are not thread-safe. */
    pthread_mutex_t disk_lock;
    struct disk *disk;
    bool read_only;
    bool poll_requests;

    int listen_fd;
    char *socket_path; /* set when we created the socket file */
    dev_t socket_dev;
    ino_t socket_ino;

    /* Stopping: the flag is checked between requests; the pipe (never
     * drained once written) wakes every poll() so that blocked threads see
     * it. Both are async-signal-safe to set. */
    atomic_bool stopping;
    int stop_pipe[2];

    struct nbd_client clients[NBD_SERVER_MAX_CLIENTS];
};

/* Thread body for one client: the handshake, then requests until the
 * client disconnects, misbehaves or the server stops. Closes c->fd. */
void *nbd_client_thread(void *c);

#endif
