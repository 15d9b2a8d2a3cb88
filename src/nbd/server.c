/* The NBD server: listening socket, one thread per client, the disk lock,
 * stopping and disk replacement. The protocol itself is in connection.c.
 *
 * Why our own server rather than an nbdkit plugin (see also docs/nbd.md):
 * - The runtime must switch a drive's leaf disk during an online checkpoint
 *   (pause, flush, save memory, new leaf, resume) inside the process that
 *   owns the disk layers. With our server that is one locked pointer swap
 *   between two requests (nbd_server_replace_disk); through nbdkit it would
 *   need a second daemon per drive, a plugin ABI boundary and an out-of-band
 *   channel to ask the plugin to reopen, with its own failure modes.
 * - hvm must not depend on another daemon being installed and supervised.
 * - The subset of the protocol that QEMU, qemu-img and libnbd clients use
 *   (fixed newstyle, GO/INFO, structured replies, base:allocation) is small
 *   and stable: about a thousand lines, all of it testable from the shell.
 * The cost is that robustness against hostile clients is ours to get
 * right: every length is bounded, and the connection is dropped on any
 * framing error. */
#include "nbd/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "disk/disk.h"
#include "nbd/internal.h"
#include "util/error.h"

int nbd_server_new(struct disk *disk, const struct nbd_server_options *opts,
                   struct nbd_server **out)
{
    bool read_only = opts && opts->read_only;
    if (!disk)
        return hvm_error(EINVAL, "nbd: no disk to serve");
    if (!read_only && disk->read_only)
        return hvm_error(EROFS, "%s: opened read-only, cannot serve it read-write", disk->path);
    struct nbd_server *s = calloc(1, sizeof *s);
    if (!s)
        return hvm_error(ENOMEM, "out of memory");
    if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        free(s);
        return hvm_error(e, "nbd: pipe: %s", strerror(e));
    }
    pthread_mutex_init(&s->disk_lock, NULL);
    s->disk = disk;
    s->read_only = read_only;
    s->poll_requests = opts && opts->poll_requests;
    s->handshake_timeout_ms = opts && opts->handshake_timeout_ms
                                  ? opts->handshake_timeout_ms
                                  : NBD_SERVER_HANDSHAKE_TIMEOUT_MS;
    s->idle_timeout_ms = opts ? opts->idle_timeout_ms : 0;
    s->max_clients = opts && opts->max_clients && opts->max_clients < NBD_SERVER_MAX_CLIENTS
                         ? opts->max_clients
                         : NBD_SERVER_MAX_CLIENTS;
    s->log = opts ? opts->log : NULL;
    s->listen_fd = -1;
    atomic_init(&s->stopping, false);
    *out = s;
    return 0;
}

/* Is there a server answering on the socket at path? */
static bool socket_alive(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool alive = connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0;
    close(fd);
    return alive;
}

int nbd_server_listen_path(struct nbd_server *s, const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, e;

    if (s->listen_fd >= 0)
        return hvm_error(EBUSY, "nbd: already listening");
    if (!path[0] || strlen(path) >= sizeof addr.sun_path)
        return hvm_error(ENAMETOOLONG, "%s: socket path is empty or longer than %zu bytes",
                         path, sizeof addr.sun_path - 1);
    memcpy(addr.sun_path, path, strlen(path));

    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return hvm_error(EEXIST, "%s: exists and is not a socket", path);
        if (socket_alive(&addr))
            return hvm_error(EADDRINUSE, "%s: another server is listening on this socket",
                             path);
        if (unlink(path) < 0 && errno != ENOENT)
            return hvm_error(errno, "%s: cannot remove stale socket: %s", path,
                             strerror(errno));
    }

    /* Bind a temporary name, chmod, listen, then link it into place: a
     * client that sees the path can connect at once (no ECONNREFUSED
     * window); nobody can connect before the mode is 0600 (permissions are
     * checked at connect(), and connect() needs listen()); and link(), unlike
     * rename(), fails if another server took the path since our check. */
    struct sockaddr_un tmp = addr;
    int n = snprintf(tmp.sun_path, sizeof tmp.sun_path, "%s.%ld.tmp", path, (long)getpid());
    bool linked = n > 0 && (size_t)n < sizeof tmp.sun_path;
    if (!linked)
        tmp = addr; /* no room for a temporary name: bind the path itself */
    else
        unlink(tmp.sun_path); /* left by a crashed run with our pid */

    /* Non-blocking: a client that goes away between poll() and accept()
     * must not block the accept loop. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return hvm_error(errno, "nbd: socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&tmp, sizeof tmp) < 0) {
        e = errno;
        close(fd);
        return hvm_error(e, "%s: cannot create socket: %s", path, strerror(e));
    }
    if (chmod(tmp.sun_path, 0600) < 0 || listen(fd, 16) < 0 ||
        (linked && link(tmp.sun_path, path) < 0) || stat(path, &st) < 0) {
        e = errno;
        close(fd);
        unlink(tmp.sun_path);
        if (e == EEXIST)
            return hvm_error(EADDRINUSE, "%s: another server took this socket path", path);
        return hvm_error(e, "%s: cannot listen: %s", path, strerror(e));
    }
    if (linked)
        unlink(tmp.sun_path);
    s->socket_path = strdup(path);
    if (!s->socket_path) {
        close(fd);
        unlink(path);
        return hvm_error(ENOMEM, "out of memory");
    }
    s->socket_dev = st.st_dev;
    s->socket_ino = st.st_ino;
    s->listen_fd = fd;
    return 0;
}

int nbd_server_listen_fd(struct nbd_server *s, int fd)
{
    if (s->listen_fd >= 0)
        return hvm_error(EBUSY, "nbd: already listening");
    if (fd < 0)
        return hvm_error(EBADF, "nbd: bad listening socket");
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return hvm_error(errno, "nbd: listening socket: %s", strerror(errno));
    s->listen_fd = fd;
    return 0;
}

void nbd_server_stop(struct nbd_server *s)
{
    int saved = errno; /* may run in a signal handler */
    atomic_store(&s->stopping, true);
    /* A full pipe is fine: it is already readable. */
    ssize_t n = write(s->stop_pipe[1], "x", 1);
    (void)n;
    errno = saved;
}

static void reap(struct nbd_server *s, bool all)
{
    for (int i = 0; i < NBD_SERVER_MAX_CLIENTS; i++) {
        struct nbd_client *c = &s->clients[i];
        if (c->used && (all || atomic_load(&c->done))) {
            pthread_join(c->thread, NULL);
            c->used = false;
        }
    }
}

uint64_t nbd_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void nbd_server_log(const struct nbd_server *s, const char *fmt, ...)
{
    if (!s->log)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->log(line);
}

/* Says that a client was refused, at most once a second (with how many
 * were refused in between), so that a flood of connections costs little. */
static void log_refusal(struct nbd_server *s, bool no_thread)
{
    uint64_t now = nbd_now_ns();
    s->refused_unsaid++;
    if (s->refuse_logged_ns && now - s->refuse_logged_ns < 1000000000u)
        return;
    if (no_thread)
        nbd_server_log(s, "nbd: refused a client: cannot start a thread for it");
    else
        nbd_server_log(s, "nbd: refused %u client%s: the limit of %u connected clients is reached",
                       s->refused_unsaid, s->refused_unsaid == 1 ? "" : "s", s->max_clients);
    s->refuse_logged_ns = now;
    s->refused_unsaid = 0;
}

static bool start_client(struct nbd_server *s, int fd, bool accepted)
{
    reap(s, false);
    unsigned busy = 0;
    for (int i = 0; i < NBD_SERVER_MAX_CLIENTS; i++)
        busy += s->clients[i].used;
    for (int i = 0; i < NBD_SERVER_MAX_CLIENTS && busy < s->max_clients; i++) {
        struct nbd_client *c = &s->clients[i];
        if (c->used)
            continue;
        c->server = s;
        c->fd = fd;
        c->accepted = accepted;
        atomic_store(&c->done, false);
        if (pthread_create(&c->thread, NULL, nbd_client_thread, c) != 0) {
            log_refusal(s, true);
            close(fd);
            return false;
        }
        c->used = true;
        return true;
    }
    /* Too many clients: refuse this one; those connected go on. */
    log_refusal(s, false);
    close(fd);
    return false;
}

void nbd_socket_buffers(int fd)
{
    int size = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

int nbd_server_add_client(struct nbd_server *s, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return hvm_error(e, "nbd: client socket: %s", strerror(e));
    }
    return start_client(s, fd, false) ? 0 : hvm_error(EAGAIN, "nbd: cannot serve one more client");
}

int nbd_server_run(struct nbd_server *s)
{
    if (s->listen_fd < 0)
        return hvm_error(EINVAL, "nbd: not listening");
    while (!atomic_load(&s->stopping)) {
        struct pollfd p[2] = {
            {.fd = s->listen_fd, .events = POLLIN},
            {.fd = s->stop_pipe[0], .events = POLLIN},
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            nbd_server_stop(s);
            reap(s, true);
            return hvm_error(e, "nbd: poll: %s", strerror(e));
        }
        if (p[1].revents)
            break;
        if (!p[0].revents)
            continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            /* Out of descriptors: wait a little instead of spinning. */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                poll(NULL, 0, 100);
            continue;
        }
        start_client(s, fd, true);
    }
    /* Wake every client thread (they poll the stop pipe) and wait for them. */
    nbd_server_stop(s);
    reap(s, true);
    return 0;
}

int nbd_server_replace_disk(struct nbd_server *s, struct disk *new_disk, struct disk **old)
{
    if (!new_disk)
        return hvm_error(EINVAL, "nbd: no disk to serve");
    pthread_mutex_lock(&s->disk_lock);
    struct disk *cur = s->disk;
    int r = 0;
    if (new_disk->size != cur->size)
        r = hvm_error(EINVAL, "%s: size %llu differs from the served disk's %llu",
                      new_disk->path, (unsigned long long)new_disk->size,
                      (unsigned long long)cur->size);
    else if (!s->read_only && new_disk->read_only)
        r = hvm_error(EROFS, "%s: opened read-only, cannot serve it read-write",
                      new_disk->path);
    else
        s->disk = new_disk;
    pthread_mutex_unlock(&s->disk_lock);
    if (r == 0 && old)
        *old = cur;
    return r;
}

struct disk *nbd_server_lock_disk(struct nbd_server *s)
{
    pthread_mutex_lock(&s->disk_lock);
    return s->disk;
}

void nbd_server_unlock_disk(struct nbd_server *s)
{
    pthread_mutex_unlock(&s->disk_lock);
}

void nbd_server_free(struct nbd_server *s)
{
    if (!s)
        return;
    nbd_server_stop(s);
    reap(s, true);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->socket_path) {
        /* Only remove the file if it is still ours (not replaced by another
         * server since). */
        struct stat st;
        if (lstat(s->socket_path, &st) == 0 && st.st_dev == s->socket_dev &&
            st.st_ino == s->socket_ino)
            unlink(s->socket_path);
        free(s->socket_path);
    }
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->disk_lock);
    free(s);
}
