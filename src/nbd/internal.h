/* What server.c (listening, threads, the disk lock) and connection.c (one
 * client's handshake and requests) share. Not for use outside src/nbd. */
#ifndef HVM_NBD_INTERNAL_H
#define HVM_NBD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nbd/server.h"

struct nbd_client {
    struct nbd_server *server;
    pthread_t thread;
    int fd;
    /* Accepted from the listening socket (a stranger): the handshake timeout
     * applies. A socket handed over by nbd_server_add_client is the
     * caller's own peer (QEMU, which may take long to start): none. */
    bool accepted;
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
    unsigned handshake_timeout_ms;
    unsigned idle_timeout_ms; /* 0: none */
    unsigned max_clients;
    void (*log)(const char *line);
    /* Refusals are said at most once a second (a flood must not flood the
     * log): the accept loop's own counters. */
    uint64_t refuse_logged_ns;
    unsigned refused_unsaid;

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

/* Passes a formatted line to the server's log callback, if it has one. */
void nbd_server_log(const struct nbd_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t nbd_now_ns(void);

#endif
