/* hvm web's HTTP server, on libmicrohttpd (Debian's libmicrohttpd-dev).
 * Why that library: its thread-per-connection mode lets each API request
 * simply wait for the hvm command it runs (a start or a save takes seconds)
 * while other requests and the consoles go on, with no event loop to feed;
 * it does TLS itself (GnuTLS) and hands over the connection for a WebSocket
 * after the HTTP upgrade. libwebsockets would frame WebSockets for us but
 * puts every connection into one event loop, where each long command would
 * need a child-process watcher of its own.
 *
 * Routes: /api/... (the token is required: "Authorization: Bearer TOKEN",
 * or ?token= on the console's WebSocket, which browsers open without
 * headers), /api/vms/NAME/console and /vnc (WebSockets), everything else a file of
 * the web root. Path segments are taken raw and decoded one by one, so an
 * encoded "/" stays inside its segment and "." or ".." is refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/error.h"
#include "web/web.h"

#define MAX_BODY 65536
#define MAX_SEGMENTS 8

struct web_server {
    struct MHD_Daemon *d;
    struct web_config c;
    int fd;
    char *unix_path;
};

struct request {
    char *body;
    size_t len;
    bool too_big;
};

static bool token_ok(const struct web_config *c, const char *given)
{
    if (!given)
        return false;
    size_t a = strlen(c->token), b = strlen(given);
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < a; i++)
        diff |= (unsigned char)(c->token[i] ^ given[i < b ? i : 0]);
    return diff == 0;
}

static enum MHD_Result send_body(struct MHD_Connection *conn, int code, const char *type,
                                 char *text, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    if (strncmp(type, "application/json", 16) == 0)
        MHD_add_response_header(r, "Cache-Control", "no-store");
    else
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; frame-ancestors 'none'");
    if (code == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"hvm\"");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, int code, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return MHD_NO;
    return send_body(conn, code, "application/json", text, strlen(text));
}

static enum MHD_Result send_error(struct MHD_Connection *conn, int code, const char *msg)
{
    return send_json(conn, code, json_pack("{s:s}", "error", msg));
}

static int hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Splits the raw path after prefix into decoded segments (in place).
 * Returns the count, or -1 with msg set. */
static int split(char *path, char **seg, const char **msg)
{
    int n = 0;
    char *p = path;
    while (*p) {
        if (*p == '/') {
            p++;
            continue;
        }
        if (n == MAX_SEGMENTS) {
            *msg = "too many path segments";
            return -1;
        }
        char *start = p, *w = p;
        for (; *p && *p != '/'; p++) {
            if (*p == '%') {
                int h = hex(p[1]), l = h < 0 ? -1 : hex(p[2]);
                if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                    *msg = "bad percent escape in the path";
                    return -1;
                }
                *w++ = (char)(h << 4 | l);
                p += 2;
            } else {
                *w++ = *p;
            }
        }
        bool end = *p == 0;
        *w = 0;
        if (!end)
            p++;
        if (strcmp(start, ".") == 0 || strcmp(start, "..") == 0 || strchr(start, '/')) {
            *msg = "path traversal refused";
            return -1;
        }
        seg[n++] = start;
        if (end)
            break;
    }
    return n;
}

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"}, {".png", "image/png"}, {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"}, {".ico", "image/x-icon"}};
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (strcmp(dot, types[i][0]) == 0)
            return types[i][1];
    return "application/octet-stream";
}

static enum MHD_Result serve_file(struct web_server *w, struct MHD_Connection *conn,
                                  char **seg, int n)
{
    char rel[1024] = "index.html";
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        for (const char *p = seg[i]; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '.' || *p == '-' || *p == '_'))
                return send_error(conn, 404, "no such file");
        if (seg[i][0] == '.')
            return send_error(conn, 404, "no such file");
        int k = snprintf(rel + len, sizeof rel - len, "%s%s", i ? "/" : "", seg[i]);
        if (k < 0 || (size_t)k >= sizeof rel - len)
            return send_error(conn, 404, "no such file");
        len += (size_t)k;
    }
    int dir = open(w->c.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = dir < 0 ? -1 : openat(dir, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (dir >= 0)
        close(dir);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return send_error(conn, 404, "no such file");
    }
    struct MHD_Response *r = MHD_create_response_from_fd((size_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", content_type(rel));
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
                            "img-src 'self' data:; frame-ancestors 'none'");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

struct upgrade {
    char *path;
    char *backlog;
    size_t backlog_len;
};

static void upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                     size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn, (void)con_cls;
    struct upgrade *u = cls;
    web_ws_bridge_start(sock, urh, u->path, u->backlog, u->backlog_len, extra, extra_len);
    free(u->path);
    free(u);
}

/* The last bytes of the console log, so that the page opens on what the
 * guest printed last rather than on an empty screen. */
static void log_tail(const char *folder, char **buf, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/run/console.log", folder);
    *buf = NULL, *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        off_t want = st.st_size < 16384 ? st.st_size : 16384;
        *buf = malloc((size_t)want + 1);
        ssize_t n = *buf ? pread(fd, *buf, (size_t)want, st.st_size - want) : -1;
        *len = n > 0 ? (size_t)n : 0;
    }
    close(fd);
}

/* The serial console (run/console.sock, with the log's tail first) or,
 * with vnc, the graphical one (run/vnc.sock: the worker hands each client
 * to QEMU's VNC server; noVNC speaks RFB over the WebSocket). */
static enum MHD_Result console(struct web_server *w, struct MHD_Connection *conn,
                               const char *vm, bool vnc)
{
    const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    const char *ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    if (!up || strcasecmp(up, "websocket") != 0 || !key)
        return send_error(conn, 400, "the console is a WebSocket (Upgrade: websocket)");
    if (!ver || strcmp(ver, "13") != 0)
        return send_error(conn, 400, "Sec-WebSocket-Version: 13 only");
    char accept[29];
    if (web_ws_accept_key(key, accept) < 0)
        return send_error(conn, 400, hvm_error_message());
    /* Where the VM's folder is and whether it runs: hvm vm show says. */
    char *show[] = {"vms", (char *)vm};
    json_t *doc;
    int code = web_api(&w->c, "GET", show, 2, NULL, 0, &doc);
    if (code != 200)
        return send_json(conn, code, doc);
    const char *state = json_string_value(json_object_get(doc, "state"));
    const char *folder = json_string_value(json_object_get(doc, "folder"));
    if (!state || !folder || (strcmp(state, "Running") != 0 && strcmp(state, "Paused") != 0)) {
        char msg[300];
        snprintf(msg, sizeof msg, "VM '%s' is %s, not running", vm, state ? state : "unknown");
        json_decref(doc);
        return send_error(conn, 409, msg);
    }
    struct upgrade *u = calloc(1, sizeof *u);
    if (!u || asprintf(&u->path, "%s/run/%s", folder, vnc ? "vnc.sock" : "console.sock") < 0) {
        free(u);
        json_decref(doc);
        return MHD_NO;
    }
    if (!vnc)
        log_tail(folder, &u->backlog, &u->backlog_len);
    json_decref(doc);
    struct MHD_Response *r = MHD_create_response_for_upgrade(upgraded, u);
    if (!r) {
        free(u->path), free(u->backlog), free(u);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
    /* noVNC may offer the subprotocol "binary": what it gets anyway. */
    const char *proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Protocol");
    if (proto && strstr(proto, "binary"))
        MHD_add_response_header(r, "Sec-WebSocket-Protocol", "binary");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    struct web_server *w = cls;
    struct request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->len + *upload_size > MAX_BODY) {
            rq->too_big = true;
        } else {
            char *b = realloc(rq->body, rq->len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + rq->len, upload, *upload_size);
            rq->len += *upload_size;
            b[rq->len] = 0;
            rq->body = b;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    char *path = strdup(url);
    if (!path)
        return MHD_NO;
    char *seg[MAX_SEGMENTS];
    const char *msg = NULL;
    int n = split(path, seg, &msg);
    enum MHD_Result ret;
    if (n < 0) {
        ret = send_error(conn, 400, msg);
    } else if (n == 0 || strcmp(seg[0], "api") != 0) {
        ret = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0
                  ? serve_file(w, conn, seg, n)
                  : send_error(conn, 405, "method not allowed here");
    } else {
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        const char *given = auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
        bool is_vnc = n == 4 && strcmp(seg[1], "vms") == 0 && strcmp(seg[3], "vnc") == 0;
        bool is_console = is_vnc || (n == 4 && strcmp(seg[1], "vms") == 0 && strcmp(seg[3], "console") == 0);
        if (!given && is_console)
            given = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
        if (!token_ok(&w->c, given)) {
            ret = send_error(conn, 401, given ? "wrong access token"
                                              : "an access token is needed (Authorization: Bearer TOKEN)");
        } else if (rq->too_big) {
            ret = send_error(conn, 413, "request body larger than 64 KiB");
        } else if (is_console) {
            ret = web_check_name("VM name", seg[2]) < 0 ? send_error(conn, 400, hvm_error_message())
                  : strcmp(method, "GET") != 0          ? send_error(conn, 405, "the console is a GET")
                                                        : console(w, conn, seg[2], is_vnc);
        } else {
            json_t *reply;
            int code = web_api(&w->c, method, seg + 1, n - 1, rq->body, rq->len, &reply);
            ret = send_json(conn, code, reply);
        }
    }
    free(path);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct request *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

/* The raw path: segments are decoded one by one (split). */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return strlen(s);
}

static int listen_on(const char *spec, bool tls, int *fd_out, char **unix_path, char **url)
{
    int fd;
    if (strncmp(spec, "unix:", 5) == 0) {
        const char *path = spec + 5;
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (!*path || strlen(path) >= sizeof a.sun_path)
            return hvm_error(EINVAL, "--listen %s: bad socket path", spec);
        strcpy(a.sun_path, path);
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode))
                return hvm_error(EEXIST, "%s: exists and is not a socket", path);
            unlink(path); /* a socket left by an earlier server */
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        mode_t old = umask(0177);
        int r = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&a, sizeof a);
        umask(old);
        if (r < 0 || listen(fd, 64) < 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return hvm_error(e, "%s: %s", path, strerror(e));
        }
        *unix_path = strdup(path);
        if (asprintf(url, "unix:%s", path) < 0)
            *url = NULL;
        *fd_out = fd;
        return 0;
    }
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host)
        return hvm_error(EINVAL, "--listen %s: expected unix:PATH or ADDRESS:PORT", spec);
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = 0;
        h++;
    }
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return hvm_error(EINVAL, "--listen %s: bad port", spec);
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM},
                    *ai;
    if (getaddrinfo(h, colon + 1, &hints, &ai) != 0)
        return hvm_error(EINVAL, "--listen %s: '%s' is not an IP address", spec, h);
    bool loopback = false;
    if (ai->ai_family == AF_INET)
        loopback = (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    else if (ai->ai_family == AF_INET6)
        loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
    if (!loopback && !tls) {
        freeaddrinfo(ai);
        return hvm_error(EPERM, "--listen %s: beyond localhost only with TLS (--tls-cert and "
                                "--tls-key)", spec);
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return hvm_error(e, "--listen %s: %s", spec, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    int actual = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    bool v6 = ss.ss_family == AF_INET6;
    if (asprintf(url, "%s://%s%s%s:%d", tls ? "https" : "http", v6 ? "[" : "", h, v6 ? "]" : "",
                 actual) < 0)
        *url = NULL;
    *fd_out = fd;
    return 0;
}

int web_start(const struct web_config *c, struct web_server **out, char **url)
{
    struct web_server *w = calloc(1, sizeof *w);
    if (!w)
        return hvm_error(ENOMEM, "out of memory");
    w->c = *c;
    w->fd = -1;
    bool tls = c->tls_cert && c->tls_key;
    int r = listen_on(c->listen, tls, &w->fd, &w->unix_path, url);
    if (r < 0) {
        free(w);
        return r;
    }
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_ALLOW_UPGRADE | MHD_USE_POLL | (tls ? MHD_USE_TLS : 0);
    if (tls)
        w->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, w, MHD_OPTION_LISTEN_SOCKET, w->fd,
                                MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                MHD_OPTION_CONNECTION_LIMIT, 128, MHD_OPTION_CONNECTION_TIMEOUT, 300,
                                MHD_OPTION_HTTPS_MEM_CERT, c->tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
                                c->tls_key, MHD_OPTION_END);
    else
        w->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, w, MHD_OPTION_LISTEN_SOCKET, w->fd,
                                MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                MHD_OPTION_CONNECTION_LIMIT, 128, MHD_OPTION_CONNECTION_TIMEOUT, 300,
                                MHD_OPTION_END);
    if (!w->d) {
        close(w->fd);
        if (w->unix_path)
            unlink(w->unix_path);
        free(w->unix_path);
        free(*url);
        *url = NULL;
        free(w);
        return hvm_error(EIO, "--listen %s: the HTTP server did not start%s", c->listen,
                         tls ? " (is the certificate and key PEM?)" : "");
    }
    *out = w;
    return 0;
}

void web_stop(struct web_server *w)
{
    if (!w)
        return;
    /* libmicrohttpd's stop waits for every connection, and an upgraded one
     * (a console left open in a browser) only ends when its bridge does:
     * with bridges running, the process's exit ends them instead. */
    if (web_ws_bridges() == 0)
        MHD_stop_daemon(w->d);
    close(w->fd);
    if (w->unix_path)
        unlink(w->unix_path);
    free(w->unix_path);
    free(w);
}
