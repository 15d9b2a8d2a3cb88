/* A small NBD server over one struct disk, on a Unix socket.
 *
 * It speaks the fixed newstyle handshake (EXPORT_NAME, GO, INFO, LIST, ABORT,
 * STRUCTURED_REPLY, LIST/SET_META_CONTEXT with base:allocation) and the
 * commands READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, BLOCK_STATUS and DISC.
 * There is one export; any export name selects it.
 *
 * Each client connection runs in its own thread; every call into the disk
 * layer (which is not thread-safe) is made under one lock, so a request is
 * never interleaved with another's disk I/O, and the served disk can be
 * swapped between requests (nbd_server_replace_disk).
 *
 * The server never owns or closes the disk: the caller opens it before
 * nbd_server_new and flushes and closes it after nbd_server_free. */
#ifndef HVM_NBD_SERVER_H
#define HVM_NBD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

struct disk;
struct nbd_server;

/* The largest READ or WRITE payload accepted (advertised as the maximum
 * block size). Larger READs get EINVAL; a larger WRITE closes the
 * connection, since its payload cannot be skipped cheaply. */
#define NBD_SERVER_MAX_PAYLOAD (32u << 20)
/* Connections served at once at most; further clients are closed at once
 * (nbd_server_options.max_clients may lower it). With the payload limit
 * this bounds the memory and descriptors clients can make us hold. */
#define NBD_SERVER_MAX_CLIENTS 16
/* A client that has not finished the handshake this long after connecting
 * is dropped, so that connections that never speak cannot hold every slot. */
#define NBD_SERVER_HANDSHAKE_TIMEOUT_MS 10000u

struct nbd_server_options {
    bool read_only; /* refuse writes (EPERM) and advertise READ_ONLY */
    /* After a small request, poll for the next one for a while before
     * sleeping (see connection.c): 4 KiB reads at queue depth 1 from a host
     * client take a third of the time. QEMU running a guest gains nothing
     * measurable from it (its own wake-up dominates), so hvm's VM worker
     * leaves it off and keeps the CPU for the guest. */
    bool poll_requests;
    /* For clients accepted from the listening socket (not those handed
     * over by nbd_server_add_client). 0: NBD_SERVER_HANDSHAKE_TIMEOUT_MS. */
    unsigned handshake_timeout_ms;
    /* After the handshake, a client that makes no progress (sends no
     * request, or stops reading our reply or sending its payload) for this
     * long is dropped. 0: never (QEMU keeps the connection of an idle
     * guest's disk open for hours, and would fail its next request). */
    unsigned idle_timeout_ms;
    /* Clients served at once; 0 or more than NBD_SERVER_MAX_CLIENTS:
     * NBD_SERVER_MAX_CLIENTS. */
    unsigned max_clients;
    /* Called (from any of the server's threads, so it must be thread-safe)
     * with one line saying why a client was refused or dropped: the limit,
     * a timeout. NULL: nothing is said. */
    void (*log)(const char *line);
};

/* Creates a server for disk (which must stay open until nbd_server_free).
 * A read-write server needs a disk opened read-write. */
int nbd_server_new(struct disk *disk, const struct nbd_server_options *opts,
                   struct nbd_server **out);

/* Listens on a new Unix socket at path, mode 0600. A stale socket file (no
 * server answers on it) is replaced; any other existing file is an error.
 * The socket file is removed by nbd_server_free. */
int nbd_server_listen_path(struct nbd_server *s, const char *path);

/* Serves on fd, a Unix stream socket already listening (for instance one
 * passed by a parent process). The server closes it in nbd_server_free. */
int nbd_server_listen_fd(struct nbd_server *s, int fd);

/* Gives a stream socket a send buffer that holds a whole large request or
 * reply (4 MiB; past the system's cap where the caller may, as root),
 * so that it crosses in one go instead of in rounds of wake-ups. The
 * server does this to every client socket; a process that hands a client
 * its end of a socketpair can do it to that end too. */
void nbd_socket_buffers(int fd);

/* Serves fd, a Unix stream socket already connected to a client (one end
 * of a socketpair whose other end a child process inherits, for
 * instance). Call before nbd_server_run, from the thread that will call
 * it. The server closes fd. */
int nbd_server_add_client(struct nbd_server *s, int fd);

/* Accepts and serves clients until nbd_server_stop; then ends every
 * connection (a request being processed completes first) and returns 0.
 * Call once, after a listen function. */
int nbd_server_run(struct nbd_server *s);

/* Asks nbd_server_run to return. Async-signal-safe: may be called from a
 * signal handler or another thread, any number of times. */
void nbd_server_stop(struct nbd_server *s);

/* Serves new_disk instead of the current disk from the next request on;
 * *old receives the disk served until now (the caller closes it). The sizes
 * must match (clients keep the size they were told), and a read-write
 * server needs a read-write disk. In-flight requests finish on the old disk
 * first. The caller should flush the old disk if it wants its writes
 * durable before switching. */
int nbd_server_replace_disk(struct nbd_server *s, struct disk *new_disk, struct disk **old);

/* Takes the disk lock and returns the disk served now, for another server
 * of the same disk (the worker's vhost-user device): its requests then
 * never interleave with ours, and a replace_disk switches both. Give it
 * back with nbd_server_unlock_disk. */
struct disk *nbd_server_lock_disk(struct nbd_server *s);
void nbd_server_unlock_disk(struct nbd_server *s);

/* Closes the listening socket, removes the socket file it created, frees
 * the server. Call it after nbd_server_run has returned (or if it was never
 * called), not concurrently with it. Does not touch the disk. NULL is
 * allowed. */
void nbd_server_free(struct nbd_server *s);

#endif
