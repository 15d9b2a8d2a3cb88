/* The write lock of a layer file: one open file description lock
 * (F_OFD_SETLK) on one byte far past any data, held exclusive by whoever
 * writes the file and shared by whoever reads it as a parent of a disk being
 * written. It works between any processes (hvm or not) and is gone when the
 * holder dies. See docs/locks.md. */
#ifndef HVM_UTIL_FILELOCK_H
#define HVM_UTIL_FILELOCK_H

#include <stdbool.h>
#include <sys/types.h>

/* The byte locked: far above QEMU's image-locking bytes (100-300) and any
 * data, so that qemu-img's own locks on the same file never meet ours. */
#define FILE_LOCK_BYTE ((off_t)0x48564d << 32) /* "HVM" */

enum file_lock_mode {
    FILE_LOCK_SHARED = 1,    /* read as a parent: nobody may write it */
    FILE_LOCK_EXCLUSIVE = 2, /* written: nobody else may write it or read it as a parent */
};

struct file_lock;

/* Locks the file open on fd (path names it in messages), without waiting.
 * A file held by another process in a conflicting mode is -EBUSY with
 * "<path>: in use by another process (...)". Locks of one process on one
 * file combine (the strongest is held, by one descriptor of the process's
 * own), so that a process never conflicts with itself: a chain written
 * here may read a layer another disk of this process writes, and a layer
 * this process reads as a parent may be written by it. A file system
 * without such locks is used unlocked. */
int file_lock_take(int fd, const char *path, enum file_lock_mode mode, struct file_lock **out);

/* Gives the lock up (NULL: nothing). Call it after the last write through
 * the file's descriptor; the lock outlives that descriptor's close. When
 * the process still holds the file in a weaker mode, it is downgraded in
 * one step, never unlocked in between. */
void file_lock_release(struct file_lock *lock);

/* The file of this thread's last refused lock, and whether its holder
 * writes it (false: reads it as a parent); NULL when none was refused.
 * For callers that name the owner. */
const char *file_lock_refused(bool *by_writer);

/* Does some process hold a flock(2) on the file at path (a VM worker's
 * run/lock)? false when the file is missing. */
bool path_flock_held(const char *path);

#endif
