/* The JSON API of hvm web. Each call is one run of the hvm binary itself
 * (/proc/self/exe, an argv array, never a shell) with --json where the verb
 * has it: the browser gets the document the CLI's --json prints, actions
 * their one line of output, failures the CLI's one-line error. So the web
 * console has no operation of its own to keep in step with the CLI, and a
 * command's locks, journal and checks are exactly those of the shell. The
 * cost is one process per call (a few ms; bench/web.sh measures it). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util/error.h"
#include "util/proc.h"
#include "web/web.h"

int web_check_name(const char *what, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0)
        return hvm_error(EINVAL, "%s: empty", what);
    if (n > 255)
        return hvm_error(EINVAL, "%s: longer than 255 characters", what);
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strchr(s, '/') || strchr(s, '\\'))
        return hvm_error(EINVAL, "%s '%s': a path, not a name", what, s);
    if (s[0] == '-')
        return hvm_error(EINVAL, "%s '%s': may not begin with '-'", what, s);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return hvm_error(EINVAL, "%s: control character 0x%02x", what, *p);
    return 0;
}

int web_run_hvm(const struct web_config *c, const char *const *args, int *status, char **out,
                char **err)
{
    const char *argv[40];
    int n = 0;
    argv[n++] = "hvm";
    while (*args && n < 36)
        argv[n++] = *args++;
    if (c->store) {
        argv[n++] = "--store";
        argv[n++] = c->store;
    }
    argv[n] = NULL;
    /* The server ignores SIGPIPE and blocks its signals (sigwait): the
     * command gets neither. A VM's worker the command leaves running does
     * not hold the request open. */
    return proc_capture(c->exe, argv, status, out, err);
}

/* The command's error, as the CLI printed it: its last line without "hvm: ". */
static char *error_line(char *err)
{
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == '\r'))
        err[--n] = 0;
    char *line = strrchr(err, '\n');
    line = line ? line + 1 : err;
    if (strncmp(line, "hvm: ", 5) == 0)
        line += 5;
    return line;
}

static json_t *error_doc(const char *fmt, const char *text)
{
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, text);
    return json_pack("{s:s}", "error", buf);
}

/* Runs the command; *reply is its --json document (json) or {"message":
 * its output} (actions), or {"error": ..., "exit": N}. Returns the HTTP
 * status: 200, 404 for what does not exist, 409 for a busy VM, 400 for
 * every other refusal, 500 when it could not run. */
static int run(const struct web_config *c, const char *const *args, bool json, json_t **reply)
{
    int st;
    char *out, *err;
    if (web_run_hvm(c, args, &st, &out, &err) < 0) {
        *reply = error_doc("%s", hvm_error_message());
        return 500;
    }
    int code = 200;
    if (st != 0) {
        const char *line = error_line(err);
        *reply = json_pack("{s:s, s:i}", "error", *line ? line : "the command failed", "exit", st);
        code = strstr(line, "no VM named") || strstr(line, "no checkpoint") ||
                       strstr(line, "no switch") || strstr(line, "not found")
                   ? 404
               : strstr(line, "busy") ? 409
                                      : 400;
    } else if (json) {
        json_error_t je;
        *reply = json_loads(out, 0, &je);
        if (!*reply) {
            *reply = error_doc("the command printed no JSON: %s", je.text);
            code = 500;
        }
    } else {
        size_t n = strlen(out);
        while (n && out[n - 1] == '\n')
            out[--n] = 0;
        *reply = json_pack("{s:s}", "message", out);
    }
    free(out), free(err);
    return code;
}

static json_t *body_object(const char *body, size_t len, int *code, json_t **reply)
{
    if (!body || len == 0)
        return json_object();
    json_error_t je;
    json_t *o = json_loadb(body, len, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        *reply = error_doc("request body: expected a JSON object (%s)", o ? "not an object" : je.text);
        *code = 400;
        return NULL;
    }
    return o;
}

/* A text field of the body: NULL when absent; *bad when not a string. */
static const char *body_text(json_t *b, const char *key, bool *bad)
{
    json_t *v = json_object_get(b, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v))
        *bad = true;
    return json_string_value(v);
}

/* The server's own requests on one VM go one at a time (the page's polling
 * would otherwise make its own actions fail with "busy": every hvm command
 * locks the VM it works on). Striped by a hash of the name. */
static pthread_mutex_t vm_locks[32] = {
#define M PTHREAD_MUTEX_INITIALIZER
    M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
#undef M
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}

static pthread_mutex_t *vm_lock(const char *name)
{
    return &vm_locks[fnv(0xcbf29ce484222325ull, name, strlen(name)) % 32];
}

static uint64_t stat_hash(uint64_t h, const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return fnv(h, "-", 1);
    int64_t v[4] = {(int64_t)st.st_ino, (int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                    (int64_t)st.st_mtim.tv_nsec};
    return fnv(h, v, sizeof v);
}

int web_changes(const struct web_config *c, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    if (c->store) {
        char path[4096];
        snprintf(path, sizeof path, "%s/vms", c->store);
        h = stat_hash(h, path);
        snprintf(path, sizeof path, "%s/switches.json", c->store);
        h = stat_hash(h, path);
        snprintf(path, sizeof path, "%s/vms", c->store);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            h = fnv(h, e->d_name, strlen(e->d_name) + 1);
            static const char *const parts[] = {"vm.json", "run", "run/ctl.sock", "run/qmp.sock"};
            for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
                snprintf(path, sizeof path, "%s/vms/%s/%s", c->store, e->d_name, parts[i]);
                h = stat_hash(h, path);
            }
        }
        if (d)
            closedir(d);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}

static int bad(json_t **reply, const char *msg)
{
    *reply = error_doc("%s", msg);
    return 400;
}

/* The host page: every VM, every switch (the two commands at once), and
 * the store's file system. */
struct side_run {
    const struct web_config *c;
    json_t *reply;
    int code;
};

static void *switches_run(void *arg)
{
    struct side_run *sr = arg;
    sr->code = run(sr->c, (const char *[]){"switch", "list", "--json", NULL}, true, &sr->reply);
    return NULL;
}

static int host_summary(const struct web_config *c, json_t **reply)
{
    json_t *vms;
    struct side_run sr = {c, NULL, 0};
    pthread_t t;
    bool threaded = pthread_create(&t, NULL, switches_run, &sr) == 0;
    int r = run(c, (const char *[]){"vm", "list", "--json", NULL}, true, &vms);
    if (threaded)
        pthread_join(t, NULL);
    else
        switches_run(&sr);
    json_t *sw = sr.reply;
    if (r != 200 || sr.code != 200) {
        *reply = r != 200 ? vms : sw;
        json_decref(r != 200 ? sw : vms);
        return r != 200 ? r : sr.code;
    }
    json_t *o = json_pack("{s:o, s:o}", "vms", vms, "switches", sw);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_object_set_new(o, "hostname", json_string(host));
    json_object_set_new(o, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
    json_object_set_new(o, "memory", json_integer((json_int_t)sysconf(_SC_PHYS_PAGES) *
                                                   sysconf(_SC_PAGESIZE)));
    /* Where the store is: the command that says so is the store's own
     * error when it is missing, so the path is the one hvm resolves. */
    const char *dir = c->store ? c->store : getenv("HVM_STORE");
    struct statvfs fs;
    if (dir && statvfs(dir, &fs) == 0)
        json_object_set_new(o, "store", json_pack("{s:s, s:I, s:I}", "path", dir, "size",
                                                  (json_int_t)(fs.f_blocks * fs.f_frsize), "free",
                                                  (json_int_t)(fs.f_bavail * fs.f_frsize)));
    else
        json_object_set_new(o, "store", json_pack("{s:s?}", "path", dir));
    *reply = o;
    return 200;
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static int api_call(const struct web_config *c, const char *method, char **seg, int nseg,
                    const char *body, size_t body_len, json_t **reply)
{
    bool get = is(method, "GET"), post = is(method, "POST"), del = is(method, "DELETE");
    *reply = NULL;
    if (nseg == 0)
        return bad(reply, "no API call named (see /api/host, /api/vms, /api/switches)");
    for (int i = 1; i < nseg; i++)
        if (web_check_name(i == 1 ? "name" : "parameter", seg[i]) < 0)
            return bad(reply, hvm_error_message());
    int code = 200;
    if (is(seg[0], "host") && nseg == 1) {
        if (!get)
            goto method;
        return host_summary(c, reply);
    }
    if (is(seg[0], "switches")) {
        if (!get)
            goto method;
        if (nseg == 1)
            return run(c, (const char *[]){"switch", "list", "--json", NULL}, true, reply);
        if (nseg == 2)
            return run(c, (const char *[]){"switch", "show", seg[1], "--json", NULL}, true, reply);
        goto unknown;
    }
    if (!is(seg[0], "vms"))
        goto unknown;
    if (nseg == 1) {
        if (!get)
            goto method;
        return run(c, (const char *[]){"vm", "list", "--json", NULL}, true, reply);
    }
    const char *vm = seg[1];
    if (nseg == 2) {
        if (!get)
            goto method;
        return run(c, (const char *[]){"vm", "show", vm, "--json", NULL}, true, reply);
    }
    json_t *b = NULL;
    if (post || del) {
        b = body_object(body, body_len, &code, reply);
        if (!b)
            return code;
    }
    bool badtype = false;
    const char *verb = seg[2];
    static const char *const power[] = {"start", "stop", "turn-off", "save", "pause", "resume"};
    for (size_t i = 0; i < sizeof power / sizeof *power; i++) {
        if (nseg != 3 || !is(verb, power[i]))
            continue;
        if (!post)
            goto method;
        const char *args[12] = {"vm", verb, vm};
        int n = 3;
        char timeout[24];
        if (is(verb, "start") && body_text(b, "accel", &badtype))
            args[n++] = "--accel", args[n++] = body_text(b, "accel", &badtype);
        if (is(verb, "stop")) {
            json_t *t = json_object_get(b, "timeout"), *f = json_object_get(b, "force");
            if ((t && !json_is_integer(t)) || (f && !json_is_boolean(f)))
                badtype = true;
            if (json_is_integer(t)) {
                snprintf(timeout, sizeof timeout, "%lld", (long long)json_integer_value(t));
                args[n++] = "--timeout", args[n++] = timeout;
            }
            if (json_is_true(f))
                args[n++] = "--force";
        }
        if (badtype) {
            json_decref(b);
            return bad(reply, "request body: a field of the wrong type");
        }
        code = run(c, args, false, reply);
        json_decref(b);
        return code;
    }
    if (nseg == 3 && is(verb, "revert")) {
        json_decref(b);
        if (!post)
            goto method;
        return run(c, (const char *[]){"checkpoint", "revert", vm, NULL}, false, reply);
    }
    if (!is(verb, "checkpoints"))
        goto unknown_b;
    if (nseg == 3) {
        if (get)
            return run(c, (const char *[]){"checkpoint", "list", vm, "--json", NULL}, true, reply);
        if (!post)
            goto method_b;
        const char *name = body_text(b, "name", &badtype);
        if (badtype || (name && web_check_name("checkpoint name", name) < 0)) {
            json_decref(b);
            return bad(reply, badtype ? "name: expected a string" : hvm_error_message());
        }
        code = run(c, (const char *[]){"checkpoint", "take", vm, name, NULL}, false, reply);
        json_decref(b);
        return code;
    }
    const char *cp = seg[3];
    if (nseg == 4) {
        if (get) {
            code = run(c, (const char *[]){"checkpoint", "show", vm, cp, "--json", NULL}, true,
                       reply);
            return code;
        }
        if (!del)
            goto method_b;
    }
    if (nseg == 4 || (nseg == 5 && is(seg[4], "delete"))) {
        if (!del && !post)
            goto method_b;
        json_t *st = json_object_get(b, "subtree");
        if (st && !json_is_boolean(st)) {
            json_decref(b);
            return bad(reply, "subtree: expected true or false");
        }
        code = run(c, (const char *[]){"checkpoint", "delete", vm, cp, json_is_true(st) ? "--subtree" : NULL, NULL},
                   false, reply);
        json_decref(b);
        return code;
    }
    if (nseg == 5 && is(seg[4], "apply")) {
        if (!post)
            goto method_b;
        json_t *tf = json_object_get(b, "take_first");
        if (tf && !json_is_boolean(tf)) {
            json_decref(b);
            return bad(reply, "take_first: expected true or false");
        }
        code = run(c, (const char *[]){"checkpoint", "apply", vm, cp, json_is_true(tf) ? "--take-first" : NULL, NULL},
                   false, reply);
        json_decref(b);
        return code;
    }
    if (nseg == 5 && is(seg[4], "rename")) {
        if (!post)
            goto method_b;
        const char *name = body_text(b, "name", &badtype);
        if (badtype || !name) {
            json_decref(b);
            return bad(reply, "name: the new name, a string, is needed");
        }
        if (web_check_name("checkpoint name", name) < 0) {
            json_decref(b);
            return bad(reply, hvm_error_message());
        }
        code = run(c, (const char *[]){"checkpoint", "rename", vm, cp, name, NULL}, false, reply);
        json_decref(b);
        return code;
    }
unknown_b:
    json_decref(b);
unknown:
    *reply = error_doc("no API call %s", "at this path (see /api/host, /api/vms, /api/switches)");
    return 404;
method_b:
    json_decref(b);
method:
    *reply = error_doc("method %s not allowed here", method);
    return 405;
}

int web_api(const struct web_config *c, const char *method, char **seg, int nseg,
            const char *body, size_t body_len, json_t **reply)
{
    pthread_mutex_t *m = nseg >= 2 && is(seg[0], "vms") ? vm_lock(seg[1]) : NULL;
    if (nseg == 1 && is(seg[0], "changes")) {
        char gen[17];
        web_changes(c, gen);
        *reply = json_pack("{s:s}", "generation", gen);
        return is(method, "GET") ? 200 : 405;
    }
    /* A read that meets a VM busy with a shell's command waits for it a
     * little (the CLI's own reads fail at once). */
    for (int tries = 0;; tries++) {
        if (m)
            pthread_mutex_lock(m);
        int code = api_call(c, method, seg, nseg, body, body_len, reply);
        if (m)
            pthread_mutex_unlock(m);
        const char *e = json_string_value(json_object_get(*reply, "error"));
        if (code != 409 || !is(method, "GET") || tries == 30 || !e || !strstr(e, "busy"))
            return code;
        json_decref(*reply);
        usleep(100000);
    }
}
