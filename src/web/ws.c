/* The serial console in the browser: an RFC 6455 WebSocket on the upgraded
 * HTTP connection, bridged to the worker's run/console.sock (QEMU's serial
 * chardev). libmicrohttpd hands over the connection after "101 Switching
 * Protocols" and leaves the framing to us: it is small (a 2-14 byte header,
 * client frames masked, ours not), and the console needs nothing else than
 * bytes both ways, so no second library is needed for it. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/error.h"
#include "web/web.h"

#define WS_MAX_FRAME (1u << 20) /* a console sends keys: a larger frame is refused */

static _Atomic int bridges; /* running now (web_ws_bridges) */

int web_ws_bridges(void)
{
    return bridges;
}

int web_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[128];
    size_t n = strlen(key);
    if (n == 0 || n > 64)
        return hvm_error(EINVAL, "Sec-WebSocket-Key: bad length");
    memcpy(buf, key, n);
    memcpy(buf + n, guid, sizeof guid - 1);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)buf, n + sizeof guid - 1, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH); /* 28 characters + NUL */
    return 0;
}

struct bridge {
    int sock, console;
    struct MHD_UpgradeResponseHandle *urh;
    char *backlog;
    size_t backlog_len;
    unsigned char in[WS_MAX_FRAME + 14]; /* what the browser sent, not yet a whole frame */
    size_t in_len;
};

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};
            poll(&pf, 1, 1000);
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends one unmasked frame. */
static int send_frame(int sock, int opcode, const void *data, size_t len)
{
    unsigned char h[10];
    size_t hl = 2;
    h[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8), h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    if (write_all(sock, h, hl) < 0)
        return -1;
    return len ? write_all(sock, data, len) : 0;
}

/* Takes the whole frames out of b->in; -1 ends the session (close, a bad
 * frame, the console gone). */
static int take_frames(struct bridge *b)
{
    for (;;) {
        if (b->in_len < 2)
            return 0;
        unsigned char *f = b->in;
        int opcode = f[0] & 0x0f;
        bool masked = f[1] & 0x80;
        uint64_t len = f[1] & 0x7f;
        size_t hl = 2;
        if (!masked)
            return -1; /* RFC 6455 5.1: a server closes on an unmasked client frame */
        if (len == 126) {
            if (b->in_len < 4)
                return 0;
            len = (uint64_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (len == 127) {
            if (b->in_len < 10)
                return 0;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | f[2 + i];
            hl = 10;
        }
        if (len > WS_MAX_FRAME)
            return -1;
        if (b->in_len < hl + 4 + len)
            return 0;
        unsigned char *mask = f + hl, *data = f + hl + 4;
        for (uint64_t i = 0; i < len; i++)
            data[i] ^= mask[i & 3];
        switch (opcode) {
        case 0x0: /* continuation */
        case 0x1: /* text: keys typed */
        case 0x2: /* binary */
            if (len && write_all(b->console, data, (size_t)len) < 0)
                return -1;
            break;
        case 0x8: /* close: answered, then the end */
            send_frame(b->sock, 0x8, data, len >= 2 ? 2 : 0);
            return -1;
        case 0x9: /* ping */
            if (send_frame(b->sock, 0xA, data, (size_t)len) < 0)
                return -1;
            break;
        case 0xA:
            break;
        default:
            return -1;
        }
        size_t used = hl + 4 + (size_t)len;
        memmove(b->in, b->in + used, b->in_len - used);
        b->in_len -= used;
    }
}

static void *bridge_run(void *arg)
{
    struct bridge *b = arg;
    int fl = fcntl(b->sock, F_GETFL);
    if (fl >= 0)
        fcntl(b->sock, F_SETFL, fl & ~O_NONBLOCK);
    bool ok = b->backlog_len == 0 || send_frame(b->sock, 0x2, b->backlog, b->backlog_len) == 0;
    ok = ok && take_frames(b) == 0;
    char buf[16384];
    while (ok) {
        struct pollfd p[2] = {{b->sock, POLLIN, 0}, {b->console, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            ssize_t n = read(b->console, buf, sizeof buf);
            if (n <= 0 || send_frame(b->sock, 0x2, buf, (size_t)n) < 0) {
                send_frame(b->sock, 0x8, "\x03\xe8", 2); /* the VM stopped: normal closure */
                break;
            }
        }
        if (p[0].revents) {
            ssize_t n = recv(b->sock, b->in + b->in_len, sizeof b->in - b->in_len, 0);
            if (n <= 0)
                break;
            b->in_len += (size_t)n;
            if (take_frames(b) < 0)
                break;
        }
    }
    close(b->console);
    MHD_upgrade_action(b->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(b->backlog);
    free(b);
    bridges--;
    return NULL;
}

int web_ws_bridge_start(int sock, struct MHD_UpgradeResponseHandle *urh, const char *path,
                        char *backlog, size_t backlog_len, const char *extra, size_t extra_len)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct bridge *b = NULL;
    int fd = -1, r;
    if (strlen(path) >= sizeof addr.sun_path) {
        r = hvm_error(ENAMETOOLONG, "%s: path too long for a socket", path);
        goto fail;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        r = hvm_error(errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    b = calloc(1, sizeof *b);
    if (!b || extra_len > sizeof b->in) {
        r = hvm_error(ENOMEM, "out of memory");
        goto fail;
    }
    b->sock = sock, b->console = fd, b->urh = urh;
    b->backlog = backlog, b->backlog_len = backlog_len;
    memcpy(b->in, extra, extra_len);
    b->in_len = extra_len;
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    bridges++;
    r = pthread_create(&t, &at, bridge_run, b);
    pthread_attr_destroy(&at);
    if (r == 0)
        return 0;
    bridges--;
    r = hvm_error(r, "thread: %s", strerror(r));
fail:
    if (fd >= 0)
        close(fd);
    free(b);
    free(backlog);
    send_frame(sock, 0x8, "\x03\xf3", 2); /* 1011: the server could not */
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    return r;
}
