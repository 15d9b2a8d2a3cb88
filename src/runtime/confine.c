/* Confinement of QEMU and the worker (see confine.h). No libcap: the few
 * system calls are made directly. */
#include "runtime/confine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/error.h"

#define MAX_COPY_SIZE ((off_t)1 << 30)

const char *confine_user_name(void)
{
    const char *env = getenv("HVM_QEMU_USER");
    return env && env[0] ? env : CONFINE_QEMU_USER;
}

static bool in_groups(const struct confine_user *u, gid_t g)
{
    for (int i = 0; i < u->n_groups; i++)
        if (u->groups[i] == g)
            return true;
    return false;
}

/* QEMU opens /dev/kvm itself (7.2 takes no descriptor for it). */
static int check_kvm(const struct confine_user *u, const char *name)
{
    struct stat st;
    if (stat("/dev/kvm", &st) < 0)
        return hvm_error(errno, "/dev/kvm: %s", strerror(errno));
    bool ok = (st.st_mode & 006) == 006 || (st.st_uid == u->uid && (st.st_mode & 0600) == 0600) ||
              (in_groups(u, st.st_gid) && (st.st_mode & 060) == 060);
    if (!ok)
        return hvm_error(EACCES, "QEMU runs as '%s', which cannot open /dev/kvm (mode %03o, "
                         "group %u): add the user to the device's group (scripts/install-deps.sh "
                         "does for group kvm)", name, (unsigned)(st.st_mode & 0777),
                         (unsigned)st.st_gid);
    return 0;
}

int confine_user_lookup(bool kvm, struct confine_user *u)
{
    memset(u, 0, sizeof *u);
    if (geteuid() != 0)
        return 0;
    const char *name = confine_user_name();
    struct passwd pw, *found = NULL;
    char buf[4096];
    getpwnam_r(name, &pw, buf, sizeof buf, &found);
    if (!found)
        return hvm_error(ENOENT, "user '%s' does not exist: run as root, hvm runs QEMU as that "
                         "user; create it with scripts/install-deps.sh (or useradd --system "
                         "--no-create-home --shell /usr/sbin/nologin %s)", name, name);
    if (pw.pw_uid == 0 || pw.pw_gid == 0)
        return hvm_error(EINVAL, "user '%s' is root (uid or gid 0): QEMU must run unprivileged",
                         name);
    u->switch_user = true;
    u->uid = pw.pw_uid;
    u->gid = pw.pw_gid;
    u->n_groups = CONFINE_MAX_GROUPS;
    if (getgrouplist(pw.pw_name, pw.pw_gid, u->groups, &u->n_groups) < 0)
        return hvm_error(E2BIG, "user '%s' is in more than %d groups", name, CONFINE_MAX_GROUPS);
    for (int i = 0; i < u->n_groups; i++)
        if (u->groups[i] == 0)
            return hvm_error(EINVAL, "user '%s' is in group root: QEMU must run unprivileged", name);
    return kvm ? check_kvm(u, name) : 0;
}

/* Raw system calls: they change only the calling thread, which in the
 * forked child is the only one (glibc's wrappers would signal the
 * parent's other threads, which do not exist here). */
static int become(const struct confine_user *u)
{
    if (syscall(SYS_setgroups, (size_t)u->n_groups, u->groups) < 0 ||
        syscall(SYS_setresgid, u->gid, u->gid, u->gid) < 0 ||
        syscall(SYS_setresuid, u->uid, u->uid, u->uid) < 0)
        return -errno;
    /* Nothing may be left to regain. */
    if (syscall(SYS_setresuid, 0, 0, 0) == 0)
        return -EPERM;
    return 0;
}

int confine_child(const struct confine_user *u, const int *keep, int n)
{
    int sorted[64];
    if (n > 64)
        return -E2BIG;
    for (int i = 0; i < n; i++) { /* insertion sort: async-signal-safe */
        int v = keep[i], k = i;
        for (; k > 0 && sorted[k - 1] > v; k--)
            sorted[k] = sorted[k - 1];
        sorted[k] = v;
    }
    unsigned next = 3;
    for (int i = 0; i < n; i++) {
        if (sorted[i] < (int)next)
            continue; /* 0-2 or a duplicate */
        if ((unsigned)sorted[i] > next && close_range(next, (unsigned)sorted[i] - 1, 0) < 0)
            return -errno;
        if (fcntl(sorted[i], F_SETFD, 0) < 0)
            return -errno;
        next = (unsigned)sorted[i] + 1;
    }
    if (close_range(next, ~0U, 0) < 0)
        return -errno;
    /* An empty bounding set: nothing QEMU runs could gain a capability. */
    for (int c = 0; u->switch_user && c < 64; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL)
            break;
    int r = u->switch_user ? become(u) : 0;
    if (r < 0)
        return r;
    /* After the change of user, which clears the death signal. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        return -errno;
    return 0;
}

/* Root reads any file: a kernel or initrd that only root may read is
 * taken from inside the VM's folder only (a path in a configuration that
 * came from elsewhere must not carry /etc/shadow into guest memory). */
static int check_readable(const char *path, const struct stat *st, const char *vm_dir)
{
    if (geteuid() != 0 || (st->st_mode & S_IROTH))
        return 0;
    char *real = realpath(path, NULL), *dir = realpath(vm_dir, NULL);
    size_t n = dir ? strlen(dir) : 0;
    bool inside = real && dir && strncmp(real, dir, n) == 0 && real[n] == '/';
    free(real);
    free(dir);
    if (!inside)
        return hvm_error(EACCES, "%s: only root may read it: a kernel or initrd is a file any "
                         "user may read, or one inside the VM's folder", path);
    return 0;
}

int confine_file_copy(const char *path, const char *name, const char *vm_dir)
{
    /* O_NONBLOCK: a FIFO in the path must not hang the start. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return hvm_error(errno, "%s: %s", path, strerror(errno));
    struct stat st;
    int mfd = -1, r = 0;
    if (fstat(fd, &st) < 0) {
        r = hvm_error(errno, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        r = hvm_error(EINVAL, "%s: not a regular file", path);
    } else if (st.st_size > MAX_COPY_SIZE) {
        r = hvm_error(EFBIG, "%s: larger than 1 GiB", path);
    } else if ((r = check_readable(path, &st, vm_dir)) == 0 &&
               (mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0) {
        r = hvm_error(errno, "memfd_create: %s", strerror(errno));
    }
    for (off_t done = 0; r == 0 && done < st.st_size;) {
        ssize_t n = sendfile(mfd, fd, &done, (size_t)(st.st_size - done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            r = hvm_error(n < 0 ? errno : EIO, "%s: %s", path, n < 0 ? strerror(errno) : "shrank while read");
    }
    if (r == 0 && fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        r = hvm_error(errno, "sealing the copy of %s: %s", path, strerror(errno));
    close(fd);
    if (r < 0) {
        if (mfd >= 0)
            close(mfd);
        return r;
    }
    return mfd;
}

int confine_worker(const char *vm_dir)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return hvm_error(errno, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
    if (geteuid() != 0)
        return 0;
    /* QEMU runs as another user: signalling it takes CAP_KILL. Root
     * working in a VM folder that another user owns (a store of theirs)
     * needs to override file permissions; otherwise it owns what it
     * touches. */
    uint64_t keep = 1ull << CAP_KILL;
    struct stat st;
    if (stat(vm_dir, &st) < 0 || st.st_uid != geteuid())
        keep |= 1ull << CAP_DAC_OVERRIDE | 1ull << CAP_DAC_READ_SEARCH | 1ull << CAP_FOWNER;
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int c = 0; c < 64; c++) {
        if (keep & (1ull << c))
            continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break; /* past the kernel's last capability */
            return hvm_error(errno, "prctl(PR_CAPBSET_DROP): %s", strerror(errno));
        }
    }
    struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {
        {(uint32_t)keep, (uint32_t)keep, 0},
        {(uint32_t)(keep >> 32), (uint32_t)(keep >> 32), 0},
    };
    if (syscall(SYS_capset, &head, data) < 0)
        return hvm_error(errno, "capset: %s", strerror(errno));
    return 0;
}
