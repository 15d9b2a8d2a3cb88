#include "vm/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"

int vm_lock_timeout(void)
{
    const char *env = getenv("HVM_LOCK_TIMEOUT");
    char *end;
    long v = env && env[0] ? strtol(env, &end, 10) : -1;
    if (!env || !env[0] || *end || v < 0 || v > 86400)
        return 10;
    return (int)v;
}

/* "hvm vm import /b": this process's command line, its program by name. */
static void own_command(char *buf, size_t len)
{
    buf[0] = 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char raw[512];
    ssize_t n = read(fd, raw, sizeof raw - 1);
    close(fd);
    if (n <= 0)
        return;
    raw[n] = 0;
    size_t prog = strlen(raw); /* argv[0], which may hold spaces itself */
    for (ssize_t i = 0; i < n - 1; i++)
        if (raw[i] == 0 || raw[i] == '\n')
            raw[i] = ' ';
    bool args = (ssize_t)prog < n - 1;
    raw[prog] = 0;
    int w = snprintf(buf, len, "%s%s%s", path_basename(raw), args ? " " : "",
                     args ? raw + prog + 1 : "");
    bool cut = n == (ssize_t)sizeof raw - 1 || (w > 0 && (size_t)w >= len);
    if (cut && strlen(buf) >= 3)
        memcpy(buf + strlen(buf) - 3, "...", 3);
}

static void write_record(int fd)
{
    char cmd[256], rec[320];
    own_command(cmd, sizeof cmd);
    int n = snprintf(rec, sizeof rec, "%d %lld %s\n", (int)getpid(), (long long)time(NULL), cmd);
    /* Only a courtesy to whoever waits: a failure here changes nothing. */
    if (ftruncate(fd, 0) == 0) {
        ssize_t w = pwrite(fd, rec, (size_t)n, 0);
        (void)w;
    }
}

/* Who holds the lock, from its record: a record whose process is gone (or
 * none yet: it is being written) says "another process". */
static void describe_holder(int fd, char *buf, size_t len)
{
    char rec[512];
    ssize_t n = pread(fd, rec, sizeof rec - 1, 0);
    int pid = 0, at = 0;
    long long since = 0;
    rec[n > 0 ? n : 0] = 0;
    char *nl = strchr(rec, '\n');
    if (nl)
        *nl = 0;
    if (n > 0 && sscanf(rec, "%d %lld %n", &pid, &since, &at) == 2 && pid > 0 &&
        (kill(pid, 0) == 0 || errno == EPERM)) {
        long long held = (long long)time(NULL) - since;
        snprintf(buf, len, "PID %d (%s) for %lld s", pid, rec + at, held < 0 ? 0 : held);
    } else {
        snprintf(buf, len, "another process");
    }
}

int vm_lock_take(const char *path, enum vm_lock_wait wait, char *holder, size_t len)
{
    char who[400];
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return hvm_error(errno, "%s: %s", path,
                         errno == ELOOP ? "a link, not a lock file (refused)" : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 07777) != 0600)
        fchmod(fd, 0600);
    int limit_ms = wait == VM_LOCK_TIMED ? vm_lock_timeout() * 1000 : 0;
    for (int waited = 0;; waited += 50) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            write_record(fd);
            return fd;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return hvm_error(e, "%s: %s", path, strerror(e));
        }
        if (wait == VM_LOCK_FOREVER && flock(fd, LOCK_EX) == 0) {
            write_record(fd);
            return fd;
        }
        if (wait == VM_LOCK_TRY || waited >= limit_ms)
            break;
        usleep(50000);
    }
    describe_holder(fd, who, sizeof who);
    close(fd);
    if (holder)
        snprintf(holder, len, "%s", who);
    if (wait == VM_LOCK_TRY)
        return -EWOULDBLOCK;
    return hvm_error(ETIMEDOUT, "%s: held by %s; gave up after %d s", path, who, limit_ms / 1000);
}

void vm_lock_drop(int fd)
{
    if (fd < 0)
        return;
    /* Emptied while still held: a record in the file is its holder's. */
    int r = ftruncate(fd, 0);
    (void)r;
    close(fd);
}
