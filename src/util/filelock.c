/* OFD locks combined per process: the kernel sees one lock per file and
 * process, held by a descriptor of our own (a dup, so that it lives as long
 * as any holder, whatever the holders close). Two descriptors of one
 * process would conflict with each other, which is why a process's holders
 * of one file share a single record here. */
#include "util/filelock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

struct lock_file {
    struct lock_file *next;
    dev_t dev;
    ino_t ino;
    int fd;          /* ours; holds the kernel lock, -1 on a file system without locks */
    bool writable;   /* fd may hold a write lock */
    unsigned shared, exclusive; /* holders in each mode */
};

struct file_lock {
    struct lock_file *file;
    enum file_lock_mode mode;
};

static pthread_mutex_t files_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct lock_file *files;
static _Thread_local char refused[PATH_MAX];
static _Thread_local bool refused_writer;

static int set_lock(int fd, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = FILE_LOCK_BYTE,
                       .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Does another process hold the byte for writing (or only for reading)? */
static bool holder_writes(int fd, short wanted)
{
    struct flock fl = {.l_type = wanted, .l_whence = SEEK_SET, .l_start = FILE_LOCK_BYTE,
                       .l_len = 1};
    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_WRLCK;
}

static int refuse(const char *path, bool by_writer)
{
    snprintf(refused, sizeof refused, "%s", path);
    refused_writer = by_writer;
    return hvm_error(EBUSY, "%s: in use by another process (%s)", path,
                     by_writer ? "locked for writing"
                               : "read as the parent of a disk in use, locked against writes");
}

/* Takes the kernel lock in mode on lf->fd. Errors other than a conflict
 * mean the file system has no such locks: the file is then used unlocked. */
static int lock_mode(struct lock_file *lf, const char *path, enum file_lock_mode mode)
{
    short type = mode == FILE_LOCK_EXCLUSIVE ? F_WRLCK : F_RDLCK;
    int r = lf->fd < 0 ? 0 : set_lock(lf->fd, type);
    if (r == -EAGAIN || r == -EACCES)
        return refuse(path, holder_writes(lf->fd, type));
    return 0;
}

static int dup_fd(int fd, const char *path, struct lock_file *lf)
{
    int flags = fcntl(fd, F_GETFL);
    int ours = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (ours < 0 || flags < 0) {
        int e = errno;
        if (ours >= 0)
            close(ours);
        return hvm_error(e, "%s: %s", path, strerror(e));
    }
    lf->fd = ours;
    lf->writable = (flags & O_ACCMODE) != O_RDONLY;
    return 0;
}

/* A write lock needs a descriptor open for writing: when ours is read-only,
 * move the shared lock to a writable one first (read lock on the new one,
 * then unlock the old: the file is never unlocked in between). */
static int make_writable(struct lock_file *lf, int fd, const char *path)
{
    if (lf->writable || lf->fd < 0)
        return 0;
    struct lock_file next = *lf;
    int r = dup_fd(fd, path, &next);
    if (r < 0)
        return r;
    if (!next.writable) {
        close(next.fd);
        return hvm_error(EBADF, "%s: opened read-only, cannot be locked for writing", path);
    }
    if ((r = set_lock(next.fd, F_RDLCK)) < 0 && r != -EAGAIN && r != -EACCES) {
        close(next.fd);
        return 0; /* no locks here after all */
    }
    if (r < 0) {
        close(next.fd);
        return refuse(path, true);
    }
    /* Unlocked explicitly: the holder's descriptor shares its lock too. */
    set_lock(lf->fd, F_UNLCK);
    close(lf->fd);
    lf->fd = next.fd;
    lf->writable = true;
    return 0;
}

static struct lock_file *find(dev_t dev, ino_t ino)
{
    for (struct lock_file *lf = files; lf; lf = lf->next)
        if (lf->dev == dev && lf->ino == ino)
            return lf;
    return NULL;
}

static int take_locked(int fd, const char *path, enum file_lock_mode mode,
                       struct lock_file **out)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return hvm_error(errno, "%s: %s", path, strerror(errno));
    struct lock_file *lf = find(st.st_dev, st.st_ino);
    int r;
    if (!lf) {
        if (!(lf = calloc(1, sizeof *lf)))
            return hvm_error(ENOMEM, "out of memory");
        lf->dev = st.st_dev;
        lf->ino = st.st_ino;
        if ((r = dup_fd(fd, path, lf)) < 0 || (r = lock_mode(lf, path, mode)) < 0) {
            if (lf->fd >= 0)
                close(lf->fd);
            free(lf);
            return r;
        }
        lf->next = files;
        files = lf;
    } else if (mode == FILE_LOCK_EXCLUSIVE && !lf->exclusive) {
        if ((r = make_writable(lf, fd, path)) < 0 || (r = lock_mode(lf, path, mode)) < 0)
            return r;
    }
    *out = lf;
    return 0;
}

int file_lock_take(int fd, const char *path, enum file_lock_mode mode, struct file_lock **out)
{
    struct file_lock *l = calloc(1, sizeof *l);
    if (!l)
        return hvm_error(ENOMEM, "out of memory");
    pthread_mutex_lock(&files_mutex);
    int r = take_locked(fd, path, mode, &l->file);
    if (r == 0) {
        l->mode = mode;
        if (mode == FILE_LOCK_EXCLUSIVE)
            l->file->exclusive++;
        else
            l->file->shared++;
    }
    pthread_mutex_unlock(&files_mutex);
    if (r < 0) {
        free(l);
        return r;
    }
    *out = l;
    return 0;
}

static void forget(struct lock_file *lf)
{
    for (struct lock_file **p = &files; *p; p = &(*p)->next)
        if (*p == lf) {
            *p = lf->next;
            break;
        }
    if (lf->fd >= 0) {
        /* Explicitly: the holders' descriptors (and a fork's copies of
         * ours) share the lock of our descriptor. */
        set_lock(lf->fd, F_UNLCK);
        close(lf->fd);
    }
    free(lf);
}

void file_lock_release(struct file_lock *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&files_mutex);
    struct lock_file *lf = l->file;
    if (l->mode == FILE_LOCK_EXCLUSIVE)
        lf->exclusive--;
    else
        lf->shared--;
    if (!lf->exclusive && !lf->shared)
        forget(lf);
    else if (l->mode == FILE_LOCK_EXCLUSIVE && !lf->exclusive && lf->fd >= 0)
        set_lock(lf->fd, F_RDLCK); /* a downgrade never conflicts */
    pthread_mutex_unlock(&files_mutex);
    free(l);
}

const char *file_lock_refused(bool *by_writer)
{
    if (by_writer)
        *by_writer = refused_writer;
    return refused[0] ? refused : NULL;
}

bool path_flock_held(const char *path)
{
    int fd = path ? open(path, O_RDWR | O_CLOEXEC) : -1;
    if (fd < 0)
        return false;
    bool held = flock(fd, LOCK_SH | LOCK_NB) < 0;
    close(fd);
    return held;
}
