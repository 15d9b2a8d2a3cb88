/* hvm vm start | stop | turn-off | pause | resume | save | console */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/vm_common.h"
#include "runtime/runtime.h"
#include "util/error.h"
#include "vm/checkpoint.h"
#include "vm/vm.h"

struct run_args {
    const char *store, *accel;
    int timeout;
    bool force;
};

static int parse(int argc, char **argv, const char *usage, struct run_args *a)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 'S'},
        {"accel", required_argument, NULL, 'a'},
        {"timeout", required_argument, NULL, 't'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'S': a->store = optarg; break;
        case 'a': a->accel = optarg; break;
        case 't': a->timeout = atoi(optarg); break;
        case 'f': a->force = true; break;
        case 'h': cli_help(usage); return -1;
        default: cli_usage_error(usage, "bad option"); return -2;
        }
    }
    if (argc - optind != 1) {
        cli_usage_error(usage, "expected one VM");
        return -2;
    }
    return 0;
}

/* Opens store and VM; prints a notice about a dead worker. */
static int open_vm(const struct run_args *a, const char *name, struct store *s, struct vm **vm)
{
    return vm_cli_open(a->store, name, s, vm);
}

#define BEGIN(usage)                                                                       \
    struct run_args a = {.timeout = 120};                                                  \
    int p_ = parse(argc, argv, usage, &a);                                                 \
    if (p_ < 0)                                                                            \
        return p_ == -1 ? EXIT_OK : EXIT_ERROR;                                            \
    struct store s;                                                                        \
    struct vm *vm;                                                                         \
    if (open_vm(&a, argv[optind], &s, &vm))                                                \
        return EXIT_ERROR;

static int end(struct store *s, struct vm *vm, int r)
{
    vm_close(vm);
    store_close(s);
    return r < 0 ? cli_fail() : EXIT_OK;
}

static int need_running(struct vm *vm)
{
    if (!runtime_alive(vm))
        return hvm_error(EINVAL, "VM '%s' is %s, not running", vm->name, vm_state(vm));
    return 0;
}

static const char start_usage[] =
    "usage: hvm vm start VM [--accel kvm|tcg|auto] [--store DIR]\n"
    "\n"
    "Starts the VM in its own worker process: boots it (Off) or resumes its\n"
    "memory state (Saved). auto (the default) uses KVM only where a probe proved\n"
    "that it runs a guest (cached per host), else software emulation (TCG).\n";

int cmd_vm_start(int argc, char **argv)
{
    BEGIN(start_usage);
    int r = runtime_start(vm, a.accel ? a.accel : "auto");
    if (r == 0)
        printf("started VM '%s' (%s)\n", vm->name,
               json_string_value(json_object_get(json_object_get(vm->doc, "runtime"), "accel")));
    return end(&s, vm, r);
}

/* Sends op, then lets go of the VM lock so that the worker can record the
 * final state, and waits for the worker to end. Then the layers of
 * checkpoints deleted while the VM ran are folded (journalled like any
 * deletion; a failure here leaves them to the next deletion or `vm check`). */
static int request_and_wait(struct store *s, struct vm *vm, const char *op, json_t *extra,
                            int timeout_ms, const char **final)
{
    json_t *req = extra ? extra : json_object();
    json_object_set_new(req, "op", json_string(op));
    int r = runtime_request(vm, req, NULL);
    char name[256];
    snprintf(name, sizeof name, "%s", vm->name);
    vm_close(vm);
    if (r < 0)
        return r;
    struct vm *again;
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        if (vm_open(s, name, &again) == 0) {
            bool gone = !runtime_alive(again);
            static char state[32];
            snprintf(state, sizeof state, "%s", vm_state(again));
            if (gone && strcmp(state, "Running") != 0 && vm_checkpoint_fold(again) < 0)
                fprintf(stderr, "hvm: warning: VM '%s': folding the checkpoints deleted while it "
                        "ran: %s\n", name, hvm_error_message());
            vm_close(again);
            if (gone && strcmp(state, "Running") != 0) {
                *final = state;
                return 0;
            }
        }
        usleep(100000);
    }
    return -ETIMEDOUT;
}

static const char stop_usage[] =
    "usage: hvm vm stop VM [--timeout SECONDS] [--force] [--store DIR]\n"
    "\n"
    "Asks the guest to shut down (ACPI power button) and waits up to --timeout\n"
    "seconds (default 120). If it has not powered off by then: an error, or with\n"
    "--force the VM is powered off like turn-off.\n";

int vm_cli_shutdown(struct store *s, struct vm *vm, int timeout_s, bool force, const char **final)
{
    char name[256];
    snprintf(name, sizeof name, "%s", vm->name);
    *final = "Off";
    int r = request_and_wait(s, vm, "powerdown", NULL, timeout_s * 1000, final);
    if (r == -ETIMEDOUT && force) {
        if ((r = vm_open(s, name, &vm)) == 0)
            r = request_and_wait(s, vm, "quit", NULL, 30000, final);
        return r < 0 ? r : 1;
    }
    if (r == -ETIMEDOUT)
        r = hvm_error(ETIMEDOUT, "VM '%s' did not shut down within %d s (the guest did not act on "
                      "the ACPI power button); use --force or 'hvm vm turn-off'", name, timeout_s);
    return r;
}

int cmd_vm_stop(int argc, char **argv)
{
    BEGIN(stop_usage);
    int r = need_running(vm);
    if (r < 0)
        return end(&s, vm, r);
    const char *final;
    r = vm_cli_shutdown(&s, vm, a.timeout, a.force, &final);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("VM '%s' is %s\n", argv[optind], final);
    return EXIT_OK;
}

static const char turn_off_usage[] =
    "usage: hvm vm turn-off VM [--store DIR]\n"
    "\nPowers the VM off at once, like pulling the plug (the disks stay consistent).\n";

int vm_cli_turn_off(struct store *s, struct vm *vm, const char **final)
{
    *final = "Off";
    return request_and_wait(s, vm, "quit", NULL, 30000, final);
}

int cmd_vm_turn_off(int argc, char **argv)
{
    BEGIN(turn_off_usage);
    int r = need_running(vm);
    if (r < 0)
        return end(&s, vm, r);
    const char *final;
    r = vm_cli_turn_off(&s, vm, &final);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("VM '%s' is %s\n", argv[optind], final);
    return EXIT_OK;
}

static const char pause_usage[] = "usage: hvm vm pause VM [--store DIR]\n";
static const char resume_usage[] = "usage: hvm vm resume VM [--store DIR]\n";

static int simple_op(int argc, char **argv, const char *usage, const char *op)
{
    BEGIN(usage);
    int r = need_running(vm);
    if (r == 0)
        r = runtime_request(vm, json_pack("{s:s}", "op", op), NULL);
    return end(&s, vm, r);
}

int cmd_vm_pause(int argc, char **argv)
{
    return simple_op(argc, argv, pause_usage, "pause");
}

int cmd_vm_resume(int argc, char **argv)
{
    return simple_op(argc, argv, resume_usage, "resume");
}

static const char save_usage[] =
    "usage: hvm vm save VM [--store DIR]\n"
    "\n"
    "Saves the running VM's memory into its folder and stops QEMU: the VM is\n"
    "Saved, and 'hvm vm start' resumes it exactly there.\n";

int vm_cli_save(struct store *s, struct vm *vm, const char **final)
{
    char rel[64], *abs;
    snprintf(rel, sizeof rel, "checkpoints/saved-%lld.state", (long long)time(NULL));
    abs = vm_path(vm, rel);
    *final = "Saved";
    int r = request_and_wait(s, vm, "save", json_pack("{s:s, s:s}", "memory", abs, "relative", rel),
                             120000, final);
    free(abs);
    return r;
}

int cmd_vm_save(int argc, char **argv)
{
    BEGIN(save_usage);
    int r = need_running(vm);
    if (r < 0)
        return end(&s, vm, r);
    const char *final;
    r = vm_cli_save(&s, vm, &final);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("VM '%s' is %s\n", argv[optind], final);
    return EXIT_OK;
}

static const char console_usage[] =
    "usage: hvm vm console VM [--store DIR]\n"
    "\n"
    "Attaches the terminal to the VM's serial console. Ctrl-] detaches (the VM\n"
    "keeps running). Everything the console printed is also kept in the VM\n"
    "folder's run/console.log.\n";

int cmd_vm_console(int argc, char **argv)
{
    BEGIN(console_usage);
    int r = need_running(vm);
    char *path = vm_path(vm, "run/console.sock");
    vm_close(vm); /* do not hold the VM busy while attached */
    store_close(&s);
    if (r < 0) {
        free(path);
        return cli_fail();
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    free(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        return cli_failf("VM '%s': cannot attach to the console: %s", argv[optind], strerror(errno));
    struct termios saved, raw;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        fprintf(stderr, "[attached to %s's console; Ctrl-] detaches]\r\n", argv[optind]);
    }
    char buf[4096];
    for (;;) {
        struct pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0)
            break;
        if (p[1].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0 || write(STDOUT_FILENO, buf, (size_t)n) < 0)
                break;
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0)
                break;
            char *detach = memchr(buf, 0x1d, (size_t)n);
            if (detach)
                n = detach - buf;
            if (n > 0 && write(fd, buf, (size_t)n) < 0)
                break;
            if (detach)
                break;
        }
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        fprintf(stderr, "\n[detached]\n");
    }
    close(fd);
    return EXIT_OK;
}
