/* hvm vm migrate VM --to ssh://[user@]HOST[:PORT][/STORE] and its other
 * end, the hidden 'hvm migrate-receive [--store DIR]' that the source runs
 * on the destination through one OpenSSH session. The control channel is
 * JSON, one object a line, over ssh's stdin and stdout: the destination
 * greets with its version first (different versions are refused before
 * anything else), then answers "check" (the compatibility report) and
 * "adopt" (take the VM folder and resume it).
 *
 * Quick migration on shared storage: the source saves the VM into its
 * folder (which both hosts see), its worker ends and lets go of every
 * layer, the source's entry moves aside, the destination links the folder
 * into its store and resumes the saved state. Ownership passes once: the
 * destination opens the VM only after the source's worker has exited, and
 * a failure before the destination resumed puts the entry back and resumes
 * the VM on the source. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "runtime/runtime.h"
#include "util/crashpoint.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/filelock.h"
#include "util/size.h"
#include "vm/migrate.h"
#include "vm/vm.h"

#ifndef HVM_VERSION
#define HVM_VERSION "0.1.0"
#endif

/* The version this hvm announces: HVM_MIGRATE_VERSION replaces it, for the
 * test of the refusal only. */
static const char *my_version(void)
{
    const char *v = getenv("HVM_MIGRATE_VERSION");
    return v && v[0] ? v : HVM_VERSION;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the channel: one JSON object a line ---- */

struct chan {
    int in, out; /* in: we read; out: we write */
    pid_t pid;   /* ssh, on the source; 0 on the destination */
    char buf[1 << 16];
    size_t len;
};

static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int chan_send(struct chan *c, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text)
        return hvm_error(ENOMEM, "out of memory");
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the terminator: written with its length */
    int r = 0;
    for (size_t done = 0; done < n + 1 && r == 0;) {
        ssize_t w = write(c->out, text + done, n + 1 - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            r = hvm_error(EPIPE, "the migration's control connection is closed");
        else
            done += (size_t)w;
    }
    free(text);
    return r;
}

/* The next line as JSON; NULL on EOF, timeout or Ctrl-C, with the error
 * recorded. */
static json_t *chan_recv(struct chan *c, int timeout_ms, const char *peer)
{
    double until = now_s() + timeout_ms / 1000.0;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            json_t *m = json_loadb(c->buf, (size_t)(nl - c->buf), 0, NULL);
            c->len -= (size_t)(nl + 1 - c->buf);
            memmove(c->buf, nl + 1, c->len);
            if (!m)
                hvm_error(EPROTO, "%s: not a migration message (is hvm installed there?)", peer);
            return m;
        }
        if (c->len == sizeof c->buf) {
            hvm_error(EPROTO, "%s: a control message too long", peer);
            return NULL;
        }
        if (interrupted && c->pid) {
            hvm_error(EINTR, "interrupted");
            return NULL;
        }
        int left = (int)((until - now_s()) * 1000);
        if (left <= 0) {
            hvm_error(ETIMEDOUT, "%s: no answer within %d s", peer, timeout_ms / 1000);
            return NULL;
        }
        struct pollfd p = {c->in, POLLIN, 0};
        int n = poll(&p, 1, left < 200 ? left : 200);
        if (n <= 0)
            continue;
        ssize_t got = read(c->in, c->buf + c->len, sizeof c->buf - c->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            hvm_error(ECONNRESET, "%s: the connection ended (the destination's hvm or ssh exited)",
                      peer);
            return NULL;
        }
        c->len += (size_t)got;
    }
}

/* A request and its reply; a reply with "ok": false becomes the error. */
static json_t *chan_call(struct chan *c, json_t *req, int timeout_ms, const char *peer)
{
    if (chan_send(c, req) < 0)
        return NULL;
    json_t *rep = chan_recv(c, timeout_ms, peer);
    if (rep && !json_is_true(json_object_get(rep, "ok"))) {
        hvm_error(EIO, "%s: %s", peer, json_string_value(json_object_get(rep, "error")) ?: "refused");
        json_decref(rep);
        return NULL;
    }
    return rep;
}

/* ---- the source ---- */

struct target {
    char user[512], host[512], store[1024];
    int port;
};

static int parse_target(const char *url, struct target *t)
{
    memset(t, 0, sizeof *t);
    if (strncmp(url, "ssh://", 6) != 0)
        return hvm_error(EINVAL, "--to %s: not ssh://[USER@]HOST[:PORT][/STORE]", url);
    const char *p = url + 6, *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    char hostpart[512];
    if (hl == 0 || hl >= sizeof hostpart)
        return hvm_error(EINVAL, "--to %s: no host", url);
    memcpy(hostpart, p, hl);
    hostpart[hl] = 0;
    char *at = strrchr(hostpart, '@'), *h = hostpart;
    if (at) {
        *at = 0;
        snprintf(t->user, sizeof t->user, "%s", hostpart);
        h = at + 1;
    }
    char *colon = strrchr(h, ':');
    if (colon && !strchr(colon, ']')) {
        *colon = 0;
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535)
            return hvm_error(EINVAL, "--to %s: bad port '%s'", url, colon + 1);
        t->port = (int)port;
    }
    if (!h[0] || h[0] == '-' || strpbrk(h, " \t'\"\\;"))
        return hvm_error(EINVAL, "--to %s: bad host name '%s'", url, h);
    if (t->user[0] && (t->user[0] == '-' || strpbrk(t->user, " \t'\"\\;")))
        return hvm_error(EINVAL, "--to %s: bad user name '%s'", url, t->user);
    snprintf(t->host, sizeof t->host, "%s", h);
    if (slash && slash[1]) {
        if (strchr(slash, '\'') || strlen(slash) >= sizeof t->store)
            return hvm_error(EINVAL, "--to %s: the store path may not hold a quote", url);
        snprintf(t->store, sizeof t->store, "%s", slash);
    }
    return 0;
}

/* ssh [user@]host 'hvm migrate-receive --store ...'. $HVM_SSH names the
 * ssh program (a wrapper with options, the tests' own config) and
 * $HVM_REMOTE_HVM the hvm to run there (default: hvm on its PATH). ssh
 * gets a process group of its own: Ctrl-C reaches only this hvm, which
 * then ends the session in order. */
static int chan_open_ssh(const struct target *t, struct chan *c)
{
    const char *ssh = getenv("HVM_SSH") ?: "ssh";
    const char *remote = getenv("HVM_REMOTE_HVM") ?: "hvm";
    char cmd[2300], port[16];
    snprintf(cmd, sizeof cmd, "'%s' migrate-receive%s%s%s", remote, t->store[0] ? " --store '" : "",
             t->store, t->store[0] ? "'" : "");
    snprintf(port, sizeof port, "%d", t->port ? t->port : 22);
    int to[2], from[2];
    if (strchr(remote, '\''))
        return hvm_error(EINVAL, "HVM_REMOTE_HVM may not hold a quote");
    if (pipe2(to, O_CLOEXEC) < 0)
        return hvm_error(errno, "pipe: %s", strerror(errno));
    if (pipe2(from, O_CLOEXEC) < 0) {
        close(to[0]);
        close(to[1]);
        return hvm_error(errno, "pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        dup2(to[0], 0);
        dup2(from[1], 1);
        const char *argv[16];
        int n = 0;
        argv[n++] = ssh;
        argv[n++] = "-o";
        argv[n++] = "BatchMode=yes";
        argv[n++] = "-p";
        argv[n++] = port;
        if (t->user[0]) {
            argv[n++] = "-l";
            argv[n++] = t->user;
        }
        argv[n++] = t->host;
        argv[n++] = "--";
        argv[n++] = cmd;
        argv[n] = NULL;
        execvp(ssh, (char **)argv);
        fprintf(stderr, "hvm: %s: %s\n", ssh, strerror(errno));
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    if (pid < 0) {
        close(to[1]);
        close(from[0]);
        return hvm_error(errno, "fork: %s", strerror(errno));
    }
    c->in = from[0];
    c->out = to[1];
    c->pid = pid;
    c->len = 0;
    return 0;
}

static void chan_close(struct chan *c)
{
    if (c->out >= 0)
        close(c->out);
    if (c->in >= 0)
        close(c->in);
    c->in = c->out = -1;
    if (c->pid > 0) {
        /* The destination ends at EOF; ssh with it. */
        for (int i = 0; i < 100; i++) {
            if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
                c->pid = 0;
                return;
            }
            usleep(50000);
        }
        kill(c->pid, SIGTERM);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
    }
}

static bool on_terminal(void)
{
    return isatty(2);
}

/* HVM_MIGRATE_TIMES=1: how long each step of a live migration took, on
 * stderr (for the benchmark). */
static void step_time(const char *what, double since)
{
    const char *e = getenv("HVM_MIGRATE_TIMES");
    if (e && strcmp(e, "1") == 0)
        fprintf(stderr, "hvm: migrate: %-10s %8.1f ms\n", what, (now_s() - since) * 1000.0);
}

static void phase(const char *what)
{
    if (on_terminal())
        fprintf(stderr, "  %s...\n", what);
}

static void print_report(const char *name, const char *to, json_t *facts, json_t *rep,
                         json_t *problems, const char *here_accel, const char *mode)
{
    printf("Migration of VM '%s' to %s (host %s), mode %s\n", name, to,
           json_string_value(json_object_get(rep, "host")) ?: "?", mode);
    printf("  %-14s %s here, %s there\n", "hvm version:", my_version(),
           json_string_value(json_object_get(rep, "version")) ?: "?");
    printf("  %-14s %s here, %s there (%s)\n", "accelerator:", here_accel,
           json_string_value(json_object_get(rep, "accel")) ?: "?",
           json_string_value(json_object_get(rep, "cpu")) ?: "?");
    const char *key;
    json_t *v;
    if (json_object_size(json_object_get(rep, "switches")) == 0)
        printf("  %-14s none needed\n", "switches:");
    json_object_foreach(json_object_get(rep, "switches"), key, v)
        printf("  %-14s %s: %s\n", "switch:", key, json_is_true(v) ? "present" : "MISSING");
    json_object_foreach(json_object_get(rep, "files"), key, v)
        printf("  %-14s %s: %s\n", "file:", key, json_is_true(v) ? "present" : "MISSING");
    printf("  %-14s %s\n", "folder:", json_string_value(json_object_get(facts, "folder")));
    printf("  %-14s %s\n", "shared:", json_is_true(json_object_get(rep, "folder_visible"))
                                         ? "yes, the destination sees it (nothing is copied)"
                                         : "NO");
    char fb[32] = "?";
    if (json_object_get(rep, "free_bytes"))
        size_format((uint64_t)json_integer_value(json_object_get(rep, "free_bytes")), fb, sizeof fb);
    printf("  %-14s %s in the destination's store\n", "free space:", fb);
    size_t i;
    json_array_foreach(problems, i, v)
        printf("  PROBLEM: %s\n", json_string_value(v));
    if (json_array_size(problems) == 0)
        printf("  no problems: the VM can migrate\n");
}

/* The source's own refusals, before the destination is asked. */
static void source_problems(struct vm *vm, json_t *facts, const char *mode, json_t *problems)
{
    if (!json_is_true(json_object_get(facts, "entry_is_link")))
        vm_problem(problems, "VM '%s' is not on shared storage: its folder is inside this "
                   "store ('hvm vm move %s DIR' to a folder both hosts see first)", vm->name,
                   vm->name);
    const char *state = vm_state(vm);
    if (strcmp(mode, "quick") == 0 && strcmp(state, "Running") != 0 && strcmp(state, "Off") != 0 &&
        strcmp(state, "Saved") != 0)
        vm_problem(problems, "VM '%s' is %s", vm->name, state);
    if (strcmp(mode, "live") == 0 && !runtime_alive(vm))
        vm_problem(problems, "VM '%s' is %s: live migration moves a running VM (--mode quick "
                   "moves it as it is)", vm->name, state);
    if (strcmp(mode, "live") == 0 && strcmp(vm_disk_io(vm_config(vm)), "vhost-user") != 0)
        vm_problem(problems, "VM '%s' has disk I/O %s: live migration needs vhost-user",
                   vm->name, vm_disk_io(vm_config(vm)));
}


/* ---- live migration, the source ---- */

struct live_opts {
    long long downtime_ms, bandwidth_mib;
    const char *address; /* the destination's migration address */
};

static int worker_call(struct vm *vm, json_t *req, json_t **reply)
{
    return runtime_request(vm, req, reply);
}

/* Has the destination closed the channel (its hvm or ssh died)? */
static bool chan_dead(struct chan *c)
{
    struct pollfd p = {c->in, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (c->len == sizeof c->buf)
        return false;
    ssize_t got = read(c->in, c->buf + c->len, sizeof c->buf - c->len);
    if (got > 0) {
        c->len += (size_t)got;
        return false;
    }
    return got == 0 || (errno != EINTR && errno != EAGAIN);
}

static void progress_line(json_t *mig, double started)
{
    json_t *ram = json_object_get(mig, "ram");
    double sent = (double)json_integer_value(json_object_get(ram, "transferred")) / 1048576.0;
    double left = (double)json_integer_value(json_object_get(ram, "remaining")) / 1048576.0;
    double total = (double)json_integer_value(json_object_get(ram, "total")) / 1048576.0;
    double rate = json_real_value(json_object_get(ram, "mbps")) / 8.0;
    fprintf(stderr, "\r  memory: %.0f MiB sent, %.0f of %.0f MiB remaining, %.1f MiB/s, %.1f s  ",
            sent, left, total, rate, now_s() - started);
}

/* Returns 0 once the VM runs on the destination; otherwise the VM runs
 * here (unless the destination failed after the source let go: then the
 * error says so). *downtime_ms and *qemu_ms get the guest's pause and
 * QEMU's own figure. */
static int migrate_live(struct vm *vm, struct chan *c, const char *peer, json_t *facts,
                        const char *accel, const struct live_opts *o, double *downtime_ms,
                        double *qemu_ms)
{
    double t = now_s();
    json_t *ans = chan_call(c, json_pack("{s:s, s:O, s:s, s:s}", "op", "prepare-live", "facts",
                                         facts, "accel", accel, "address", o->address),
                            120000, peer);
    if (!ans)
        return hvm_error(EIO, "migration of VM '%s' failed, it runs here: %s", vm->name,
                         hvm_error_message());
    char uri[600];
    snprintf(uri, sizeof uri, "%s", json_string_value(json_object_get(ans, "uri")) ?: "");
    json_decref(ans);
    ans = NULL;
    step_time("prepare", t);
    phase("copying memory while the guest runs");
    int r = worker_call(vm, json_pack("{s:s, s:s, s:I, s:I}", "op", "migrate-start", "uri", uri,
                                      "downtime_ms", (json_int_t)o->downtime_ms, "bandwidth",
                                      (json_int_t)o->bandwidth_mib << 20), NULL);
    double started = now_s(), shown = 0;
    json_t *last = NULL;
    while (r == 0) {
        json_t *st = NULL;
        if ((r = worker_call(vm, json_pack("{s:s}", "op", "migrate-status"), &st)) < 0)
            break;
        json_decref(last);
        last = json_incref(json_object_get(st, "migration"));
        json_decref(st);
        const char *status = json_string_value(json_object_get(last, "status")) ?: "?";
        if (strcmp(status, "completed") == 0)
            break;
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            r = hvm_error(EIO, "QEMU's migration %s%s%s", status,
                          json_object_get(last, "error-desc") ? ": " : "",
                          json_string_value(json_object_get(last, "error-desc")) ?: "");
            break;
        }
        if (interrupted) {
            r = hvm_error(EINTR, "interrupted");
            break;
        }
        if (chan_dead(c)) {
            r = hvm_error(ECONNRESET, "%s: the connection ended (the destination's hvm or ssh "
                          "exited)", peer);
            break;
        }
        if (on_terminal() && now_s() - shown > 0.5) {
            progress_line(last, started);
            shown = now_s();
        }
        usleep(20000);
    }
    if (on_terminal() && shown > 0)
        fputc('\n', stderr);
    double completed = now_s();
    step_time("copy", started);
    *qemu_ms = (double)json_integer_value(json_object_get(last, "downtime"));
    json_decref(last);
    /* The destination has the whole state and its guest is stopped: only
     * then does the source let go of the layers. */
    if (r == 0 && !(ans = chan_call(c, json_pack("{s:s}", "op", "ready"), 60000, peer)))
        r = -EIO;
    json_decref(ans);
    step_time("ready", completed);
    if (r < 0) {
        char keep[1100];
        snprintf(keep, sizeof keep, "%s", hvm_error_message());
        if (worker_call(vm, json_pack("{s:s}", "op", "migrate-cancel"), NULL) < 0)
            fprintf(stderr, "hvm: cancelling the migration: %s\n", hvm_error_message());
        return hvm_error(EIO, "migration of VM '%s' failed, it runs here: %s", vm->name, keep);
    }
    /* Ownership passes once: the source's QEMU quits and every layer is
     * flushed and closed before the destination opens any of them. */
    if ((r = worker_call(vm, json_pack("{s:s}", "op", "migrate-release"), NULL)) < 0) {
        char keep[1100];
        snprintf(keep, sizeof keep, "%s", hvm_error_message());
        worker_call(vm, json_pack("{s:s}", "op", "migrate-cancel"), NULL);
        return hvm_error(EIO, "migration of VM '%s' failed, it runs here: %s", vm->name, keep);
    }
    step_time("release", completed);
    if (!(ans = chan_call(c, json_pack("{s:s}", "op", "activate"), 60000, peer)))
        return hvm_error(EIO, "VM '%s': the source let go but the destination did not resume it "
                         "(%s); its disks are consistent: start it again with 'hvm vm start'",
                         vm->name, hvm_error_message());
    json_decref(ans);
    step_time("activate", completed);
    *downtime_ms = *qemu_ms + (now_s() - completed) * 1000.0;
    return 0;
}

int cmd_vm_migrate(const struct cli_args *a)
{
    const char *name = cli_pos(a, 0), *to = cli_text(a, "to");
    const char *mode = cli_text(a, "mode");
    bool dry = cli_flag(a, "dry-run"), as_json = cli_flag(a, "json");
    if (as_json && !dry)
        return cli_verb_error(a, "--json: only with --dry-run");
    struct target t;
    if (parse_target(to, &t) < 0)
        return cli_fail();
    double t0 = now_s();
    struct store s;
    struct vm *vm;
    if (vm_cli_open(cli_text(a, "store"), name, &s, &vm))
        return EXIT_ERROR;
    json_t *facts = vm_migrate_facts(vm);
    if (!facts) {
        vm_close(vm);
        store_close(&s);
        return cli_fail();
    }
    bool running = runtime_alive(vm);
    if (!mode)
        mode = running ? "live" : "quick";
    char here_accel[8] = "tcg";
    const char *ran = json_string_value(json_object_get(facts, "accel"));
    if (running && ran)
        snprintf(here_accel, sizeof here_accel, "%s", ran);
    else
        runtime_accel_choose(s.root, "auto", here_accel);
    struct sigaction sa = {.sa_handler = on_interrupt}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    signal(SIGPIPE, SIG_IGN);
    struct chan c = {.in = -1, .out = -1};
    char peer[600];
    snprintf(peer, sizeof peer, "host %s", t.host);
    int r = chan_open_ssh(&t, &c);
    json_t *hello = r == 0 ? chan_recv(&c, 60000, peer) : NULL;
    json_t *rep = NULL, *problems = json_array();
    if (r == 0 && !hello)
        r = -EIO;
    /* The versions first: nothing else is asked of a different hvm. */
    const char *their = json_string_value(json_object_get(hello, "version"));
    if (r == 0 && (!their || strcmp(their, my_version()) != 0 ||
                   json_integer_value(json_object_get(hello, "protocol")) != VM_MIGRATE_PROTOCOL))
        r = hvm_error(EPROTO, "host %s runs hvm %s, this host hvm %s: both hosts must run the "
                      "same hvm version to migrate", t.host, their ?: "(unknown)", my_version());
    if (r == 0) {
        json_t *req = json_pack("{s:s, s:O}", "op", "check", "facts", facts);
        json_t *ans = chan_call(&c, req, 120000, peer);
        if (!ans)
            r = -EIO;
        else {
            rep = json_incref(json_object_get(ans, "report"));
            json_array_extend(problems, json_object_get(ans, "problems"));
            json_decref(ans);
        }
    }
    step_time("connect", t0);
    if (r == 0) {
        json_t *mine = json_array();
        source_problems(vm, facts, mode, mine);
        json_array_extend(mine, problems);
        json_decref(problems);
        problems = mine;
        const char *their_accel = json_string_value(json_object_get(rep, "accel"));
        if ((running || strcmp(vm_state(vm), "Saved") == 0) && their_accel &&
            strcmp(their_accel, here_accel) != 0)
            vm_problem(problems, "the VM's memory state comes from %s here, host %s runs %s: it "
                       "cannot resume there", here_accel, t.host, their_accel);
    }
    if (r == 0 && dry) {
        if (as_json) {
            json_t *out = json_pack("{s:s, s:s, s:s, s:O, s:O, s:O, s:b}", "vm", name, "to", to,
                                    "mode", mode, "source", facts, "destination", rep, "problems",
                                    problems, "ok", json_array_size(problems) == 0);
            cli_print_json(out);
        } else {
            print_report(name, to, facts, rep, problems, here_accel, mode);
        }
        if (json_array_size(problems))
            r = hvm_error(EINVAL, "VM '%s' cannot migrate to %s: %s", name, t.host,
                          json_string_value(json_array_get(problems, 0)));
    } else if (r == 0 && json_array_size(problems)) {
        r = hvm_error(EINVAL, "VM '%s' cannot migrate to %s: %s%s", name, t.host,
                      json_string_value(json_array_get(problems, 0)),
                      json_array_size(problems) > 1 ? " (and more: see --dry-run)" : "");
    }
    if (r < 0 || dry) {
        chan_close(&c);
        goto out;
    }
    if (interrupted) {
        r = hvm_error(EINTR, "migration of VM '%s' cancelled: it stays here", name);
        chan_close(&c);
        goto out;
    }
    if (strcmp(mode, "live") == 0) {
        struct live_opts o = {cli_int_or(a, "downtime-limit", 50), cli_int_or(a, "max-bandwidth", 1024),
                              cli_text(a, "migration-address") ?: t.host};
        double down = 0, qemu_ms = 0;
        if (o.downtime_ms < 1 || o.downtime_ms > 60000 || o.bandwidth_mib < 1 ||
            o.bandwidth_mib > 1 << 20) {
            r = hvm_error(EINVAL, "--downtime-limit is 1-60000 ms, --max-bandwidth 1-1048576 MiB/s");
            chan_close(&c);
            goto out;
        }
        if (strpbrk(o.address, " ,'\"")) {
            r = hvm_error(EINVAL, "--migration-address %s: not an address", o.address);
            chan_close(&c);
            goto out;
        }
        r = migrate_live(vm, &c, peer, facts, here_accel, &o, &down, &qemu_ms);
        if (r < 0) {
            chan_close(&c);
            goto out;
        }
        /* The source's worker ends (its run/ files go) before the
         * destination's take their places. */
        double ending = now_s();
        if (runtime_wait_exit(vm, 30000) < 0)
            fprintf(stderr, "hvm: warning: the source's worker of VM '%s' did not end\n", name);
        step_time("exit", ending);
        r = vm_migrate_detach(&s, name);
        json_t *ans = r == 0 ? chan_call(&c, json_pack("{s:s, s:O}", "op", "commit", "facts", facts),
                                         60000, peer)
                             : NULL;
        if (r == 0 && !ans) {
            r = -EIO;
            vm_migrate_reattach(&s, name);
        }
        json_decref(ans);
        if (r == 0) {
            json_t *record = json_pack("{s:s, s:s, s:s, s:s, s:I, s:O}", "host", t.host, "hostname",
                                       json_string_value(json_object_get(rep, "host")) ?: t.host,
                                       "store", t.store[0] ? t.store : "(default)", "to", to,
                                       "when", (json_int_t)time(NULL), "id",
                                       json_object_get(facts, "id"));
            r = vm_migrate_finish(&s, name, record);
            json_decref(record);
        }
        step_time("commit", ending);
        chan_send(&c, json_pack("{s:s}", "op", "bye"));
        chan_close(&c);
        step_time("close", ending);
        if (r == 0)
            printf("migrated VM '%s' to %s (live): total %.2f s, downtime %.0f ms (QEMU's figure "
                   "%.0f ms)\n", name, t.host, now_s() - t0, down, qemu_ms);
        goto out;
    }
    /* 1. The guest stops here: its memory into the shared folder, the
     *    worker exits and lets go of every layer (vm_cli_save waits for
     *    it). The VM lock is given up with it: vm_cli_save closes vm. */
    double pause_start = now_s();
    if (running) {
        phase("saving the VM's memory into its folder");
        const char *final;
        r = vm_cli_save(&s, vm, &final);
        vm = NULL;
        if (r == 0 && strcmp(final, "Saved") != 0)
            r = hvm_error(EIO, "VM '%s' ended %s instead of Saved", name, final);
    } else {
        vm_close(vm);
        vm = NULL;
    }
    if (r < 0) {
        chan_close(&c);
        goto out;
    }
    /* 2. The entry moves aside: no command here opens the VM while the
     *    destination takes it. */
    if ((r = vm_migrate_detach(&s, name)) < 0) {
        chan_close(&c);
        goto resume_here;
    }
    phase(running ? "resuming the VM on the destination" : "registering the VM on the destination");
    json_t *req = json_pack("{s:s, s:O, s:b, s:s}", "op", "adopt", "facts", facts, "start", running,
                            "accel", here_accel);
    json_t *ans = chan_call(&c, req, 300000, peer);
    if (!ans) {
        r = -EIO;
        char keep[1100];
        snprintf(keep, sizeof keep, "%s", hvm_error_message());
        chan_close(&c);
        vm_migrate_reattach(&s, name);
        hvm_error(EIO, "%s", keep);
        goto resume_here;
    }
    double pause_end = now_s();
    json_decref(ans);
    json_t *record = json_pack("{s:s, s:s, s:s, s:s, s:I, s:O}", "host", t.host, "hostname",
                               json_string_value(json_object_get(rep, "host")) ?: t.host, "store",
                               t.store[0] ? t.store : "(default)", "to", to, "when",
                               (json_int_t)time(NULL), "id", json_object_get(facts, "id"));
    r = vm_migrate_finish(&s, name, record);
    json_decref(record);
    chan_send(&c, json_pack("{s:s}", "op", "bye"));
    chan_close(&c);
    if (r < 0)
        goto out;
    printf("migrated VM '%s' to %s (quick): total %.2f s, downtime %.2f s\n", name, t.host,
           now_s() - t0, running ? pause_end - pause_start : 0.0);
    goto out;
resume_here:
    /* The destination did not take the VM: it resumes here. */
    if (running) {
        char keep[1100];
        snprintf(keep, sizeof keep, "%s", hvm_error_message());
        struct vm *again;
        if (vm_open(&s, name, &again) == 0) {
            if (runtime_start(again, here_accel) < 0)
                fprintf(stderr, "hvm: VM '%s' could not be resumed here either: %s\n", name,
                        hvm_error_message());
            vm_close(again);
        }
        hvm_error(EIO, "migration of VM '%s' failed, it runs here again: %s", name, keep);
    }
out:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (vm)
        vm_close(vm);
    store_close(&s);
    json_decref(facts);
    json_decref(hello);
    json_decref(rep);
    json_decref(problems);
    return r < 0 ? cli_fail() : EXIT_OK;
}

/* ---- the destination ---- */

static json_t *reply_error(const char *msg)
{
    return json_pack("{s:b, s:s}", "ok", false, "error", msg);
}

static json_t *receive_check(struct store *s, json_t *facts)
{
    json_t *problems = json_array();
    json_t *rep = vm_migrate_check(s, facts, my_version(), problems);
    /* Any host runs TCG: only a VM that runs with KVM needs the probe. */
    const char *theirs = json_string_value(json_object_get(facts, "accel"));
    char accel[8] = "?";
    if (runtime_accel_choose(s->root, theirs && strcmp(theirs, "tcg") == 0 ? "tcg" : "auto", accel) < 0)
        hvm_error_clear();
    json_object_set_new(rep, "accel", json_string(accel));
    return json_pack("{s:b, s:o, s:o}", "ok", true, "report", rep, "problems", problems);
}

/* Before the destination takes a VM: its store exists (made now if need
 * be) and the VM's facts pass the checks again. NULL, or the reply that
 * refuses. */
static json_t *receive_prepare(struct store *s, const char *store_dir, json_t *facts)
{
    if (!s->exists) {
        store_close(s);
        if (store_open_how(store_dir, STORE_CREATE, s) < 0)
            return reply_error(hvm_error_message());
    }
    json_t *problems = json_array();
    json_decref(vm_migrate_check(s, facts, my_version(), problems));
    json_t *rep = json_array_size(problems)
                      ? reply_error(json_string_value(json_array_get(problems, 0)))
                      : NULL;
    json_decref(problems);
    return rep;
}

static json_t *receive_adopt(struct store *s, const char *store_dir, json_t *msg)
{
    json_t *facts = json_object_get(msg, "facts");
    json_t *refused = receive_prepare(s, store_dir, facts);
    if (refused)
        return refused;
    if (vm_migrate_adopt(s, facts) < 0)
        return reply_error(hvm_error_message());
    const char *name = json_string_value(json_object_get(facts, "name"));
    hvm_crash_point("migrate-adopt");
    struct vm *vm = NULL;
    int r = vm_open(s, name, &vm);
    if (r < 0)
        vm = NULL;
    if (r == 0 && json_is_true(json_object_get(msg, "start"))) {
        const char *accel = json_string_value(json_object_get(msg, "accel"));
        r = runtime_start(vm, accel ? accel : "auto");
    }
    json_t *rep = r < 0 ? reply_error(hvm_error_message())
                        : json_pack("{s:b, s:s}", "ok", true, "state", vm_state(vm));
    if (vm)
        vm_close(vm);
    if (r < 0)
        vm_migrate_unadopt(s, facts);
    else
        vm_migrate_adopted(s, name);
    return rep;
}


/* The destination of a live migration: the VM as read from the shared
 * folder (not opened: the source holds its lock until the VM runs here),
 * and how far it got. */
struct incoming {
    struct vm vm;
    bool started, activated, committed;
};

static bool lock_held(const char *dir, const char *rel)
{
    char *lock = path_join(dir, rel);
    bool held = path_flock_held(lock);
    free(lock);
    return held;
}

/* The migration's ports on this host: settings.json's "migration_ports"
 * ("MIN-MAX"), else 49152-49215. */
static void migration_ports(struct store *s, int *lo, int *hi)
{
    *lo = 49152;
    *hi = 49215;
    char *path = path_join(s->root, "settings.json");
    json_t *doc = path ? json_load_file(path, 0, NULL) : NULL;
    free(path);
    const char *range = json_string_value(json_object_get(doc, "migration_ports"));
    int a, b;
    if (range && sscanf(range, "%d-%d", &a, &b) == 2 && a > 0 && a <= b && b < 65536)
        *lo = a, *hi = b;
    json_decref(doc);
}

static json_t *receive_prepare_live(struct store *s, const char *store_dir, json_t *msg,
                                    struct incoming *in)
{
    json_t *facts = json_object_get(msg, "facts");
    if (in->started)
        return reply_error("a migration is already being received");
    json_t *refused = receive_prepare(s, store_dir, facts);
    if (refused)
        return refused;
    const char *folder = json_string_value(json_object_get(facts, "folder"));
    char *cfg = path_join(folder, "vm.json");
    in->vm.store = s;
    in->vm.dir = strdup(folder);
    in->vm.name = strdup(json_string_value(json_object_get(facts, "name")));
    in->vm.doc = cfg ? json_load_file(cfg, 0, NULL) : NULL;
    in->vm.lock_fd = -1;
    free(cfg);
    if (!in->vm.doc || !in->vm.dir || !in->vm.name)
        return reply_error("cannot read the VM's vm.json");
    const char *accel = json_string_value(json_object_get(msg, "accel")) ?: "tcg";
    if (runtime_start_incoming(&in->vm, accel, getpid()) < 0)
        return reply_error(hvm_error_message());
    in->started = true;
    const char *addr = json_string_value(json_object_get(msg, "address")) ?: "";
    int lo, hi;
    migration_ports(s, &lo, &hi);
    char uri[600];
    int r = -EADDRINUSE;
    for (int port = lo; port <= hi && r < 0; port++) {
        snprintf(uri, sizeof uri, strchr(addr, ':') ? "tcp:[%s]:%d" : "tcp:%s:%d", addr, port);
        r = runtime_request_run(&in->vm, "run.incoming",
                                json_pack("{s:s, s:s}", "op", "migrate-incoming", "uri", uri), NULL,
                                NULL);
    }
    if (r < 0)
        return reply_error(hvm_error_message());
    return json_pack("{s:b, s:s}", "ok", true, "uri", uri);
}

/* The source has sent everything: this QEMU may still be loading the
 * last of it (devices), which it must have done without error before the
 * source lets go. */
static json_t *receive_ready(struct incoming *in)
{
    json_t *st = NULL;
    const char *status = NULL;
    for (int i = 0; i < 3000; i++) {
        json_decref(st);
        st = NULL;
        if (!in->started ||
            runtime_request_run(&in->vm, "run.incoming", json_pack("{s:s}", "op", "migrate-status"),
                                &st, NULL) < 0)
            return reply_error(in->started ? hvm_error_message() : "no migration is being received");
        status = json_string_value(json_object_get(json_object_get(st, "migration"), "status"));
        if (!status || (strcmp(status, "active") != 0 && strcmp(status, "setup") != 0))
            break;
        usleep(2000);
    }
    bool ok = status && strcmp(status, "completed") == 0 && !json_is_true(json_object_get(st, "running"));
    char msg[128];
    snprintf(msg, sizeof msg, "the incoming migration is %s", status ? status : "unknown");
    json_decref(st);
    return ok ? json_pack("{s:b}", "ok", true) : reply_error(msg);
}

static json_t *receive_activate(struct incoming *in)
{
    if (!in->started)
        return reply_error("no migration is being received");
    if (runtime_request_run(&in->vm, "run.incoming", json_pack("{s:s}", "op", "migrate-activate"),
                            NULL, NULL) < 0)
        return reply_error(hvm_error_message());
    in->activated = true;
    return json_pack("{s:b}", "ok", true);
}

static json_t *receive_commit(struct store *s, struct incoming *in, json_t *facts)
{
    if (!in->activated)
        return reply_error("the VM does not run here");
    if (vm_migrate_adopt(s, facts) < 0)
        return reply_error(hvm_error_message());
    vm_migrate_adopted(s, in->vm.name);
    in->committed = true;
    /* The source's worker is gone (its lock free): our sockets move in. */
    for (int i = 0; i < 300 && lock_held(in->vm.dir, "run/lock"); i++)
        usleep(100000);
    if (runtime_request_run(&in->vm, "run.incoming", json_pack("{s:s}", "op", "migrate-settle"),
                            NULL, NULL) < 0)
        return reply_error(hvm_error_message());
    return json_pack("{s:b}", "ok", true);
}

/* The source went before the VM ran here: our worker and its files go. */
static void receive_abandon(struct incoming *in)
{
    if (in->started && !in->activated) {
        runtime_request_run(&in->vm, "run.incoming", json_pack("{s:s}", "op", "quit"), NULL, NULL);
        for (int i = 0; i < 100 && lock_held(in->vm.dir, "run.incoming/lock"); i++)
            usleep(50000);
        char *dir = path_join(in->vm.dir, "run.incoming");
        if (dir && !lock_held(in->vm.dir, "run.incoming/lock"))
            path_remove_tree(dir);
        free(dir);
    }
    json_decref(in->vm.doc);
    free(in->vm.dir);
    free(in->vm.name);
    memset(in, 0, sizeof *in);
}

int cli_migrate_receive(int argc, char **argv)
{
    const char *store_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            store_dir = argv[++i];
        else
            return cli_failf("migrate-receive: unknown argument '%s' (run by 'hvm vm migrate')",
                             argv[i]);
    }
    struct store s;
    if (store_open_how(store_dir, STORE_MAY_BE_MISSING, &s) < 0)
        return cli_fail();
    /* Nothing but the channel on stdout. */
    /* (close-on-exec: a worker started here must not hold the session open) */
    struct chan c = {.in = 0, .out = fcntl(1, F_DUPFD_CLOEXEC, 3)};
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, 1);
        close(devnull);
    }
    signal(SIGPIPE, SIG_IGN);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    int r = chan_send(&c, json_pack("{s:s, s:s, s:i, s:s}", "hello", "hvm-migrate", "version",
                                    my_version(), "protocol", VM_MIGRATE_PROTOCOL, "host", host));
    struct incoming in = {0};
    while (r == 0) {
        json_t *msg = chan_recv(&c, 24 * 3600 * 1000, "the source");
        if (!msg)
            break; /* the source went: nothing of ours is half done */
        const char *op = json_string_value(json_object_get(msg, "op")) ?: "";
        json_t *rep;
        if (strcmp(op, "bye") == 0) {
            json_decref(msg);
            break;
        }
        if (strcmp(op, "check") == 0)
            rep = receive_check(&s, json_object_get(msg, "facts"));
        else if (strcmp(op, "adopt") == 0)
            rep = receive_adopt(&s, store_dir, msg);
        else if (strcmp(op, "prepare-live") == 0)
            rep = receive_prepare_live(&s, store_dir, msg, &in);
        else if (strcmp(op, "ready") == 0)
            rep = receive_ready(&in);
        else if (strcmp(op, "activate") == 0)
            rep = receive_activate(&in);
        else if (strcmp(op, "commit") == 0)
            rep = receive_commit(&s, &in, json_object_get(msg, "facts"));
        else
            rep = reply_error("unknown request");
        json_decref(msg);
        r = chan_send(&c, rep);
    }
    receive_abandon(&in);
    store_close(&s);
    return EXIT_OK;
}
