/* hvm host start | stop: Hyper-V's automatic start and stop actions for the
 * whole store, which data/systemd/hvm.service runs when the host boots and
 * when it shuts down. The actions themselves are part of each VM's
 * configuration (hvm vm set --autostart, --autostop; vm/autostart.h); the
 * starting, saving and stopping are the same code paths as hvm vm start,
 * save, stop and turn-off. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "runtime/runtime.h"
#include "util/error.h"
#include "vm/autostart.h"
#include "vm/vm.h"

struct host_args {
    const char *store, *accel;
    int timeout;
    bool json;
};

static struct host_args host_args_get(const struct cli_args *a, bool starting)
{
    struct host_args h = {.store = cli_text(a, "store"), .json = cli_flag(a, "json")};
    if (starting)
        h.accel = cli_text(a, "accel");
    else
        h.timeout = (int)cli_int_or(a, "timeout", 60);
    return h;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) < 0 && errno == EINTR)
        ;
}

/* Another hvm command on the VM (a `vm list` at boot, a `vm show`) holds its
 * lock only for a moment: wait for it rather than report the VM. */
static int open_vm(struct store *s, const char *name, struct vm **vm)
{
    int r;
    for (int i = 0; (r = vm_open(s, name, vm)) == -EBUSY && i < 100; i++)
        usleep(100000);
    if (r == 0 && (*vm)->notice[0])
        fprintf(stderr, "hvm: note: %s\n", (*vm)->notice);
    return r;
}

/* A failure line on stderr: the message, naming the VM once. */
static void report_failure(const char *name, const char *msg)
{
    char prefix[300];
    snprintf(prefix, sizeof prefix, "VM '%s'", name);
    if (strncmp(msg, prefix, strlen(prefix)) == 0)
        fprintf(stderr, "hvm: %s\n", msg);
    else
        fprintf(stderr, "hvm: %s: %s\n", prefix, msg);
}

/* ---- start ---- */

struct pending {
    char *name;
    int delay;
};

static int by_delay_then_name(const void *x, const void *y)
{
    const struct pending *a = x, *b = y;
    if (a->delay != b->delay)
        return a->delay < b->delay ? -1 : 1;
    return strcmp(a->name, b->name);
}

static json_t *start_one(struct store *s, const struct pending *p, const char *accel, double t0)
{
    json_t *o = json_pack("{s:s, s:i}", "name", p->name, "delay", p->delay);
    struct vm *vm;
    int r = open_vm(s, p->name, &vm);
    if (r == 0 && runtime_alive(vm)) {
        /* Started by someone else while we waited for its delay. */
        json_object_set_new(o, "result", json_string("running"));
        vm_close(vm);
        return o;
    }
    bool saved = r == 0 && strcmp(vm_state(vm), "Saved") == 0;
    if (r == 0)
        r = runtime_start(vm, accel);
    json_object_set_new(o, "at_ms", json_integer((json_int_t)((now_s() - t0) * 1000)));
    if (r < 0) {
        json_object_set_new(o, "result", json_string("failed"));
        json_object_set_new(o, "error", json_string(hvm_error_message()));
    } else {
        json_object_set_new(o, "result", json_string(saved ? "resumed" : "started"));
        json_object_set(o, "accel", json_object_get(json_object_get(vm->doc, "runtime"), "accel"));
    }
    vm_close(vm);
    return o;
}

static void start_print(json_t *o, bool as_json)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *result = json_string_value(json_object_get(o, "result"));
    if (strcmp(result, "failed") == 0)
        report_failure(name, json_string_value(json_object_get(o, "error")));
    else if (as_json)
        return;
    else if (strcmp(result, "running") == 0)
        printf("VM '%s' is running already\n", name);
    else
        printf("VM '%s' %s at +%.1f s (delay %lld s, %s)\n", name,
               strcmp(result, "resumed") == 0 ? "resumed its saved state" : "started",
               (double)json_integer_value(json_object_get(o, "at_ms")) / 1000,
               (long long)json_integer_value(json_object_get(o, "delay")),
               json_string_value(json_object_get(o, "accel")));
    fflush(stdout);
}

/* The store and the names of its VMs (n of them); EXIT_ERROR printed. */
static int open_store_vms(const char *dir, struct store *s, char ***names, size_t *n)
{
    if (vm_cli_open_store(dir, s))
        return EXIT_ERROR;
    if (store_list(s, names) < 0) {
        store_close(s);
        return cli_fail();
    }
    for (*n = 0; (*names)[*n]; (*n)++)
        ;
    return EXIT_OK;
}

int cmd_host_start(const struct cli_args *args)
{
    struct host_args a = host_args_get(args, true);
    double t0 = now_s();
    struct store s;
    char **names;
    size_t n = 0, k = 0;
    if (open_store_vms(a.store, &s, &names, &n))
        return EXIT_ERROR;
    struct pending *todo = calloc(n + 1, sizeof *todo);
    json_t *report = json_array();
    int failed = 0, started = 0;
    for (size_t i = 0; i < n; i++) {
        struct vm *vm;
        if (open_vm(&s, names[i], &vm) < 0) {
            /* Whether it should start cannot be told: the admin hears of it. */
            json_t *o = json_pack("{s:s, s:s, s:s}", "name", names[i], "result", "failed", "error",
                                  hvm_error_message());
            start_print(o, a.json);
            json_array_append_new(report, o);
            failed++;
            continue;
        }
        struct vm_autostart as;
        vm_autostart_get(vm_config(vm), &as);
        if (as.enabled && runtime_alive(vm)) {
            json_t *o = json_pack("{s:s, s:i, s:s}", "name", names[i], "delay", as.delay, "result",
                                  "running");
            start_print(o, a.json);
            json_array_append_new(report, o);
        } else if (as.enabled) {
            todo[k].name = names[i];
            todo[k++].delay = as.delay;
        }
        vm_close(vm);
    }
    qsort(todo, k, sizeof *todo, by_delay_then_name);
    for (size_t i = 0; i < k; i++) {
        sleep_s(t0 + todo[i].delay - now_s());
        json_t *o = start_one(&s, &todo[i], a.accel ? a.accel : "auto", t0);
        const char *result = json_string_value(json_object_get(o, "result"));
        failed += strcmp(result, "failed") == 0;
        started += strcmp(result, "started") == 0 || strcmp(result, "resumed") == 0;
        start_print(o, a.json);
        json_array_append_new(report, o);
    }
    free(todo);
    store_names_free(names);
    store_close(&s);
    if (a.json)
        cli_print_json(json_pack("{s:o, s:i, s:i}", "vms", report, "started", started, "failed", failed));
    else {
        json_decref(report);
        printf("host start: %d started, %d failed\n", started, failed);
    }
    return failed ? EXIT_ERROR : EXIT_OK;
}

/* ---- stop ---- */

/* One VM's stop action, in a child process of its own (see cmd_host_stop). */
static json_t *stop_one(struct store *s, const char *name, const char *action, int timeout)
{
    double t0 = now_s();
    json_t *o = json_pack("{s:s, s:s}", "name", name, "action", action);
    const char *final = NULL, *done = NULL;
    char error[1200] = "";
    struct vm *vm;
    int r = open_vm(s, name, &vm);
    if (r == 0 && !runtime_alive(vm)) {
        done = "was stopped already";
        json_object_set_new(o, "state", json_string(vm_state(vm)));
        vm_close(vm);
    } else if (r == 0 && strcmp(action, "save") == 0) {
        done = "saved";
        if ((r = vm_cli_save(s, vm, &final)) < 0) {
            /* The guest runs on (the worker resumed it): turned off, its disks
             * are closed cleanly instead of going down with the host. */
            snprintf(error, sizeof error, "%s", hvm_error_message());
            if (open_vm(s, name, &vm) == 0 && vm_cli_turn_off(s, vm, &final) == 0)
                snprintf(error + strlen(error), sizeof error - strlen(error), "; turned off instead");
        }
    } else if (r == 0 && strcmp(action, "shutdown") == 0) {
        done = "shut down";
        /* A paused guest cannot act on the power button. */
        if (strcmp(vm_state(vm), "Paused") == 0)
            runtime_request(vm, json_pack("{s:s}", "op", "resume"), NULL);
        r = vm_cli_shutdown(s, vm, timeout, true, &final);
        if (r == 1) {
            done = "turned off";
            json_object_set_new(o, "note", json_sprintf("the guest did not shut down within %d s", timeout));
        }
    } else if (r == 0) {
        done = "turned off";
        r = vm_cli_turn_off(s, vm, &final);
    }
    if (r < 0 && !error[0])
        snprintf(error, sizeof error, "%s", hvm_error_message());
    json_object_set_new(o, "ok", json_boolean(r >= 0));
    json_object_set_new(o, "result", json_string(r >= 0 ? done : "failed"));
    if (final)
        json_object_set_new(o, "state", json_string(final));
    if (error[0])
        json_object_set_new(o, "error", json_string(error));
    json_object_set_new(o, "ms", json_integer((json_int_t)((now_s() - t0) * 1000)));
    return o;
}

struct job {
    char name[256];
    pid_t pid;
    int fd;
    char *out;
    size_t len;
};

static void stop_print(json_t *o, bool as_json)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!json_is_true(json_object_get(o, "ok"))) {
        report_failure(name, json_string_value(json_object_get(o, "error")));
        return;
    }
    if (as_json)
        return;
    const char *note = json_string_value(json_object_get(o, "note"));
    printf("VM '%s' %s in %.1f s%s%s (%s)\n", name, json_string_value(json_object_get(o, "result")),
           (double)json_integer_value(json_object_get(o, "ms")) / 1000, note ? ": " : "", note ? note : "",
           json_string_value(json_object_get(o, "state")));
    fflush(stdout);
}

/* The child's answer, or why there is none. */
static json_t *job_result(struct job *j, int status)
{
    json_t *o = j->out ? json_loadb(j->out, j->len, 0, NULL) : NULL;
    if (o)
        return o;
    char why[128];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "stopping it died of signal %d", WTERMSIG(status));
    else
        snprintf(why, sizeof why, "stopping it ended without a result (status %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return json_pack("{s:s, s:b, s:s, s:s}", "name", j->name, "ok", 0, "result", "failed", "error", why);
}

int cmd_host_stop(const struct cli_args *args)
{
    struct host_args a = host_args_get(args, false);
    if (a.timeout < 1 || a.timeout > 86400)
        return cli_failf("--timeout: '%s' is not a number of seconds (1-86400)",
                         cli_text(args, "timeout"));
    struct store s;
    char **names;
    size_t n = 0, k = 0;
    if (open_store_vms(a.store, &s, &names, &n))
        return EXIT_ERROR;
    struct job *jobs = calloc(n + 1, sizeof *jobs);
    json_t *report = json_array();
    int failed = 0;
    fflush(stdout);
    fflush(stderr);
    for (size_t i = 0; i < n; i++) {
        struct vm *vm;
        if (open_vm(&s, names[i], &vm) < 0) {
            json_t *o = json_pack("{s:s, s:b, s:s, s:s}", "name", names[i], "ok", 0, "result",
                                  "failed", "error", hvm_error_message());
            stop_print(o, a.json);
            json_array_append_new(report, o);
            failed++;
            continue;
        }
        bool running = runtime_alive(vm);
        char action[16];
        snprintf(action, sizeof action, "%s", vm_autostop_get(vm_config(vm)));
        vm_close(vm);
        if (!running)
            continue;
        /* One process per VM: the actions wait on their guests (a save is one
         * long request to the worker), and here they wait side by side. */
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) {
            failed++;
            fprintf(stderr, "hvm: VM '%s': pipe: %s\n", names[i], strerror(errno));
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            json_t *o = stop_one(&s, names[i], action, a.timeout);
            char *text = json_dumps(o, JSON_COMPACT);
            for (size_t off = 0, len = text ? strlen(text) : 0; off < len;) {
                ssize_t w = write(fds[1], text + off, len - off);
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            _exit(0);
        }
        close(fds[1]);
        if (pid < 0) {
            close(fds[0]);
            failed++;
            fprintf(stderr, "hvm: VM '%s': fork: %s\n", names[i], strerror(errno));
            continue;
        }
        snprintf(jobs[k].name, sizeof jobs[k].name, "%s", names[i]);
        jobs[k].pid = pid;
        jobs[k++].fd = fds[0];
    }
    /* Each result as it comes. */
    for (size_t open_jobs = k; open_jobs > 0;) {
        struct pollfd *pf = calloc(k, sizeof *pf);
        for (size_t i = 0; i < k; i++)
            pf[i] = (struct pollfd){jobs[i].fd, POLLIN, 0};
        if (poll(pf, k, -1) < 0 && errno != EINTR) {
            free(pf);
            break;
        }
        for (size_t i = 0; i < k; i++) {
            if (jobs[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(jobs[i].fd, buf, sizeof buf);
            if (got > 0) {
                jobs[i].out = realloc(jobs[i].out, jobs[i].len + (size_t)got);
                memcpy(jobs[i].out + jobs[i].len, buf, (size_t)got);
                jobs[i].len += (size_t)got;
                continue;
            }
            close(jobs[i].fd);
            jobs[i].fd = -1;
            open_jobs--;
            int status = 0;
            waitpid(jobs[i].pid, &status, 0);
            json_t *o = job_result(&jobs[i], status);
            free(jobs[i].out);
            failed += !json_is_true(json_object_get(o, "ok"));
            stop_print(o, a.json);
            json_array_append_new(report, o);
        }
        free(pf);
    }
    free(jobs);
    store_names_free(names);
    store_close(&s);
    size_t stopped = 0, i;
    json_t *o;
    json_array_foreach(report, i, o)
        stopped += json_is_true(json_object_get(o, "ok"));
    if (a.json)
        cli_print_json(json_pack("{s:o, s:i, s:i}", "vms", report, "stopped", (int)stopped, "failed", failed));
    else {
        json_decref(report);
        if (stopped == 0 && failed == 0)
            printf("host stop: no VM was running\n");
        else
            printf("host stop: %zu stopped, %d failed\n", stopped, failed);
    }
    return failed ? EXIT_ERROR : EXIT_OK;
}
