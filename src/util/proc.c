#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/error.h"

extern char **environ;

/* Appends what fd has to *buf (*len bytes so far); 0 at end of file. */
static ssize_t drain(int fd, char **buf, size_t *len)
{
    char chunk[8192];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
        return 1;
    if (n <= 0)
        return n;
    char *b = realloc(*buf, *len + (size_t)n + 1);
    if (!b)
        return -1;
    memcpy(b + *len, chunk, (size_t)n);
    *len += (size_t)n;
    b[*len] = 0;
    *buf = b;
    return n;
}

static int spawn(const char *exe, const char *const *argv, int out_fd, int err_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t def, none;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    int r = exe ? posix_spawn(pid, exe, &fa, &at, (char *const *)argv, environ)
                : posix_spawnp(pid, argv[0], &fa, &at, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return r;
}

int proc_capture(const char *exe, const char *const *argv, int *status, char **out, char **err)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return hvm_error(errno, "pipe: %s", strerror(errno));
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]), close(po[1]);
        return hvm_error(errno, "pipe: %s", strerror(errno));
    }
    pid_t pid;
    int r = spawn(exe, argv, po[1], pe[1], &pid);
    close(po[1]), close(pe[1]);
    if (r != 0) {
        close(po[0]), close(pe[0]);
        if (r == ENOENT && !exe) {
            /* posix_spawnp reports a missing program itself: as a shell would. */
            *status = 127;
            *out = calloc(1, 1), *err = calloc(1, 1);
            return *out && *err ? 0 : hvm_error(ENOMEM, "out of memory");
        }
        return hvm_error(r, "%s: %s", exe ? exe : argv[0], strerror(r));
    }
    char *ob = calloc(1, 1), *eb = calloc(1, 1);
    size_t ol = 0, el = 0;
    bool open_o = true, open_e = true, exited = false;
    int wst = 0;
    while ((open_o || open_e) && ob && eb) {
        struct pollfd p[2] = {{open_o ? po[0] : -1, POLLIN, 0}, {open_e ? pe[0] : -1, POLLIN, 0}};
        int k = poll(p, 2, exited ? 0 : 200);
        if (k < 0 && errno != EINTR)
            break;
        if (k == 0) {
            if (exited)
                break;
            if (waitpid(pid, &wst, WNOHANG) == pid)
                exited = true;
            continue;
        }
        if (k < 0)
            continue;
        if (open_o && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) && drain(po[0], &ob, &ol) <= 0)
            open_o = false;
        if (open_e && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && drain(pe[0], &eb, &el) <= 0)
            open_e = false;
    }
    close(po[0]), close(pe[0]);
    if (!exited)
        while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
            ;
    if (!ob || !eb) {
        free(ob), free(eb);
        return hvm_error(ENOMEM, "out of memory");
    }
    *status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + (WIFSIGNALED(wst) ? WTERMSIG(wst) : 0);
    *out = ob;
    *err = eb;
    return 0;
}
