/* hvm vm start | stop | turn-off | pause | resume | save | console */
#include <errno.h>
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
#include "cli/table.h"
#include "cli/vm_common.h"
#include "runtime/runtime.h"
#include "util/error.h"
#include "vm/checkpoint.h"
#include "vm/vm.h"

/* Opens the store and the VM named by the first argument. */
#define BEGIN()                                                                            \
    const char *name = cli_pos(args, 0);                                                   \
    struct store s;                                                                        \
    struct vm *vm;                                                                         \
    if (vm_cli_open(cli_text(args, "store"), name, &s, &vm))                               \
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

int cmd_vm_start(const struct cli_args *args)
{
    BEGIN();
    int r = runtime_start(vm, cli_text(args, "accel") ? cli_text(args, "accel") : "auto");
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

int cmd_vm_stop(const struct cli_args *args)
{
    BEGIN();
    int timeout = (int)cli_int_or(args, "timeout", 120);
    int r = need_running(vm);
    if (r < 0)
        return end(&s, vm, r);
    const char *final;
    r = vm_cli_shutdown(&s, vm, timeout, cli_flag(args, "force"), &final);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("VM '%s' is %s\n", name, final);
    return EXIT_OK;
}

int vm_cli_turn_off(struct store *s, struct vm *vm, const char **final)
{
    *final = "Off";
    return request_and_wait(s, vm, "quit", NULL, 30000, final);
}

int cmd_vm_turn_off(const struct cli_args *args)
{
    BEGIN();
    int r = need_running(vm);
    if (r < 0)
        return end(&s, vm, r);
    const char *final;
    r = vm_cli_turn_off(&s, vm, &final);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("VM '%s' is %s\n", name, final);
    return EXIT_OK;
}

static int simple_op(const struct cli_args *args, const char *op)
{
    BEGIN();
    int r = need_running(vm);
    if (r == 0)
        r = runtime_request(vm, json_pack("{s:s}", "op", op), NULL);
    return end(&s, vm, r);
}

int cmd_vm_pause(const struct cli_args *args)
{
    return simple_op(args, "pause");
}

int cmd_vm_resume(const struct cli_args *args)
{
    return simple_op(args, "resume");
}

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

int cmd_vm_save(const struct cli_args *args)
{
    BEGIN();
    int r = need_running(vm);
    if (r < 0)
        return end(&s, vm, r);
    const char *final;
    r = vm_cli_save(&s, vm, &final);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("VM '%s' is %s\n", name, final);
    return EXIT_OK;
}

int cmd_vm_console(const struct cli_args *args)
{
    if (cli_flag(args, "vnc"))
        return vm_console_vnc(args);
    if (cli_flag(args, "listen"))
        return cli_failf("--listen: only with --vnc");
    BEGIN();
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
        return cli_failf("VM '%s': cannot attach to the console: %s", name, strerror(errno));
    struct termios saved, raw;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        fprintf(stderr, "[attached to %s's console; Ctrl-] detaches]\r\n", name);
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
