/* hvm web: the web console's server (libmicrohttpd). The JSON API runs the
 * hvm binary itself (/proc/self/exe, an argv array, never a shell) with
 * --json for every operation, so the browser sees exactly what the CLI's
 * --json says and no operation has a second implementation (api.c); the
 * serial console is a WebSocket bridged to the VM worker's console socket
 * (ws.c); everything else is the static front end of the web root. */
#ifndef HVM_WEB_WEB_H
#define HVM_WEB_WEB_H

#include <stdbool.h>
#include <stddef.h>

struct web_config {
    const char *listen;    /* "unix:PATH", "HOST:PORT" (IPv4 or [IPv6]); PORT 0: any free */
    const char *token;     /* the access token every /api request must carry */
    const char *tls_cert;  /* PEM text (not a path), NULL: plain HTTP */
    const char *tls_key;
    const char *store;     /* --store given to hvm web, passed on to each command; NULL: none */
    const char *root;      /* the folder of the static front end */
    const char *exe;       /* the hvm binary the API runs */
};

struct web_server;

/* Binds and starts serving in background threads. Beyond the loopback
 * addresses TLS is required. *url receives where it listens
 * ("http://127.0.0.1:PORT", "unix:PATH"; the caller frees it). */
int web_start(const struct web_config *c, struct web_server **out, char **url);
void web_stop(struct web_server *w);

/* api.c: one request of the JSON API. method and the decoded path segments
 * after "/api" (each already checked to hold no '/', NUL, "." or ".."),
 * the request body (may be NULL). Returns the HTTP status and the JSON
 * document to send (always an object; the caller frees it). */
struct json_t;
int web_api(const struct web_config *c, const char *method, char **seg, int nseg,
            const char *body, size_t body_len, struct json_t **reply);

/* api.c: runs "hvm ARGS... [--store DIR]" and collects its exit status,
 * stdout and stderr (each NUL-terminated, the caller frees them). */
int web_run_hvm(const struct web_config *c, const char *const *args, int *status, char **out,
                char **err);

/* api.c: a short hash of what the store's folders say (vm.json, run/,
 * switches.json: inode, size, time), which changes with every change of a
 * VM; the page polls it and fetches again only when it changed, so that
 * the console's polling takes no VM's lock while nothing happens. */
int web_changes(const struct web_config *c, char out[17]);

/* api.c: a VM name, checkpoint name or id, or switch name as the API takes
 * it; 0 or -EINVAL with the reason recorded. */
int web_check_name(const char *what, const char *s);

/* ws.c: the RFC 6455 handshake value for a Sec-WebSocket-Key. */
int web_ws_accept_key(const char *key, char out[29]);
/* ws.c: bridges an upgraded connection (sock) to the Unix socket at path:
 * bytes from the socket go out as binary frames, text and binary frames in
 * go to the socket. First sends backlog (the console log's tail). Runs in
 * a thread of its own; closes sock through done(urh) at the end. */
struct MHD_UpgradeResponseHandle;
int web_ws_bridge_start(int sock, struct MHD_UpgradeResponseHandle *urh, const char *path,
                        char *backlog, size_t backlog_len, const char *extra, size_t extra_len);

/* ws.c: how many WebSocket bridges run now. */
int web_ws_bridges(void);

#endif
