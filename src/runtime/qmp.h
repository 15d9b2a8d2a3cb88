/* A QMP client: QEMU's JSON machine protocol over a Unix socket. */
#ifndef HVM_RUNTIME_QMP_H
#define HVM_RUNTIME_QMP_H

#include <jansson.h>

struct qmp {
    int fd;
    char buf[65536];
    size_t len;
    json_t *events; /* events received while waiting for replies */
};

/* Takes fd, connected to QEMU's monitor (one end of a socketpair that
 * QEMU inherits: no socket file for anyone else to reach), reads the
 * greeting (waiting up to timeout_ms while QEMU starts) and negotiates
 * capabilities. qmp_close closes fd, even when this fails. */
int qmp_attach(struct qmp *q, int fd, int timeout_ms);
void qmp_close(struct qmp *q);
/* Runs a command; *reply gets the "return" value (new reference) when
 * reply is not NULL. An "error" answer becomes an hvm error. */
int qmp_execute(struct qmp *q, const char *command, json_t *args, json_t **reply);
/* The same, passing the descriptor fd along (for getfd, add-fd). */
int qmp_execute_fd(struct qmp *q, const char *command, json_t *args, int fd, json_t **reply);
/* Waits up to timeout_ms for an event named name (or any event when NULL).
 * Returns 0 when seen, -ETIMEDOUT, or -EPIPE when QEMU closed the socket. */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms);

/* Reads what QEMU sent (the fd polled readable) into the event list.
 * Returns -EPIPE when QEMU closed the socket. */
int qmp_poll_events(struct qmp *q);

#endif
