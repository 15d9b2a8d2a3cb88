/* The lock files of the store (<store>/lock, around each change of the base
 * registry) and of each VM folder (<vm>/lock, for the length of a command on
 * the VM): an flock, gone when its holder dies. The file is its owner's
 * alone (0600; an older one is set so when its owner opens it) and never
 * followed as a link. Whoever takes it writes a record into it (PID, since
 * when, command line) and empties it when done, so that a command refused or
 * waiting can say who holds it. */
#ifndef HVM_VM_LOCK_H
#define HVM_VM_LOCK_H

#include <stddef.h>

enum vm_lock_wait {
    VM_LOCK_TRY,     /* -EWOULDBLOCK at once when held (nothing reported) */
    VM_LOCK_TIMED,   /* waits vm_lock_timeout() seconds, then -ETIMEDOUT reported */
    VM_LOCK_FOREVER, /* waits as long as it takes */
};

/* Opens (creating) and takes the lock file path; returns its descriptor.
 * When it is held, holder (if not NULL) gets who holds it, e.g.
 * "PID 1234 (hvm vm import /b) for 12 s". A timed wait that gives up
 * reports "<path>: held by <holder>; gave up after N s". */
int vm_lock_take(const char *path, enum vm_lock_wait wait, char *holder, size_t len);
/* Empties the record and releases the lock (fd < 0: nothing). */
void vm_lock_drop(int fd);
/* How long VM_LOCK_TIMED waits: $HVM_LOCK_TIMEOUT seconds, default 10. */
int vm_lock_timeout(void);

#endif
