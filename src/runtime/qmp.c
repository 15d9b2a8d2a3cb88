#include "runtime/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Reads one JSON line; timeout_ms < 0 waits forever. */
static int read_message(struct qmp *q, json_t **msg, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(q->buf, '\n', q->len);
        if (nl) {
            size_t n = (size_t)(nl - q->buf) + 1;
            json_error_t err;
            *msg = json_loadb(q->buf, n, 0, &err);
            memmove(q->buf, q->buf + n, q->len - n);
            q->len -= n;
            if (!*msg)
                return hvm_error(EPROTO, "QMP: bad JSON from QEMU: %s", err.text);
            return 0;
        }
        if (q->len == sizeof q->buf)
            return hvm_error(EPROTO, "QMP: message too long");
        int wait = deadline < 0 ? -1 : (int)(deadline - now_ms());
        if (deadline >= 0 && wait <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {q->fd, POLLIN, 0};
        int r = poll(&p, 1, wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t got = read(q->fd, q->buf + q->len, sizeof q->buf - q->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -EPIPE;
        q->len += (size_t)got;
    }
}

int qmp_attach(struct qmp *q, int fd, int timeout_ms)
{
    memset(q, 0, sizeof *q);
    q->fd = fd;
    q->events = json_array();
    json_t *greeting;
    int r = read_message(q, &greeting, timeout_ms);
    if (r < 0)
        return hvm_error(-r, "no QMP greeting from QEMU");
    json_decref(greeting);
    return qmp_execute(q, "qmp_capabilities", NULL, NULL);
}

void qmp_close(struct qmp *q)
{
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
    json_decref(q->events);
    q->events = NULL;
}

/* Sends text; with fd >= 0 the descriptor travels with it (SCM_RIGHTS). */
static ssize_t send_text(int sock, const char *text, size_t len, int fd)
{
    struct iovec iov = {(void *)text, len};
    char control[CMSG_SPACE(sizeof(int))] = {0};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        mh.msg_control = control;
        mh.msg_controllen = sizeof control;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t w;
    do
        w = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w;
}

int qmp_execute(struct qmp *q, const char *command, json_t *args, json_t **reply)
{
    return qmp_execute_fd(q, command, args, -1, reply);
}

int qmp_execute_fd(struct qmp *q, const char *command, json_t *args, int fd, json_t **reply)
{
    json_t *cmd = json_pack("{s:s}", "execute", command);
    if (args)
        json_object_set_new(cmd, "arguments", args);
    char *text = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    if (!text)
        return hvm_error(ENOMEM, "out of memory");
    size_t len = strlen(text);
    text[len] = '\n';
    ssize_t w = send_text(q->fd, text, len + 1, fd);
    free(text);
    if (w != (ssize_t)len + 1)
        return hvm_error(EPIPE, "QMP: QEMU is gone (%s)", command);
    for (;;) {
        json_t *msg;
        int r = read_message(q, &msg, 60000);
        if (r < 0)
            return hvm_error(-r, "QMP: no answer to %s", command);
        if (json_object_get(msg, "event")) {
            json_array_append_new(q->events, msg);
            continue;
        }
        json_t *err = json_object_get(msg, "error");
        if (err) {
            r = hvm_error(EIO, "QEMU refused %s: %s", command,
                          json_string_value(json_object_get(err, "desc")));
            json_decref(msg);
            return r;
        }
        if (reply)
            *reply = json_incref(json_object_get(msg, "return"));
        json_decref(msg);
        return 0;
    }
}

int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms)
{
    size_t i;
    json_t *e;
    json_array_foreach(q->events, i, e)
        if (!name || strcmp(json_string_value(json_object_get(e, "event")), name) == 0) {
            json_array_remove(q->events, i);
            return 0;
        }
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        json_t *msg;
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return -ETIMEDOUT;
        int r = read_message(q, &msg, left);
        if (r < 0)
            return r;
        const char *ev = json_string_value(json_object_get(msg, "event"));
        bool match = ev && (!name || strcmp(ev, name) == 0);
        json_decref(msg);
        if (match)
            return 0;
    }
}

int qmp_poll_events(struct qmp *q)
{
    if (q->fd < 0)
        return -EPIPE;
    ssize_t got = read(q->fd, q->buf + q->len, sizeof q->buf - q->len);
    if (got == 0)
        return -EPIPE;
    if (got < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -EPIPE;
    q->len += (size_t)got;
    json_t *msg;
    while (memchr(q->buf, '\n', q->len) && read_message(q, &msg, 0) == 0) {
        if (json_array_size(q->events) > 64)
            json_array_remove(q->events, 0);
        json_array_append_new(q->events, msg);
    }
    return 0;
}
