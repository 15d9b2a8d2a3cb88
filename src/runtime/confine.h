/* Confinement of a running VM's processes. QEMU runs the guest and parses
 * what the guest sends: it runs, when hvm runs as root, as the system user
 * hvm-qemu (made by scripts/install-deps.sh), with QEMU's seccomp sandbox,
 * no new privileges and only the descriptors it is given. The worker,
 * which maps guest memory, keeps only the capabilities it still uses once
 * QEMU runs. */
#ifndef HVM_RUNTIME_CONFINE_H
#define HVM_RUNTIME_CONFINE_H

#include <stdbool.h>
#include <sys/types.h>

#define CONFINE_QEMU_USER "hvm-qemu"
#define CONFINE_MAX_GROUPS 32

/* Who QEMU runs as. */
struct confine_user {
    bool switch_user; /* hvm runs as root: QEMU becomes the user below */
    uid_t uid;
    gid_t gid;
    gid_t groups[CONFINE_MAX_GROUPS];
    int n_groups;
};

/* The user QEMU runs as: $HVM_QEMU_USER, else hvm-qemu. */
const char *confine_user_name(void);

/* Looks up the user QEMU runs as (nothing to look up unless root). A
 * missing user, or one that is root, is a clear error. With kvm, checks
 * that the user can open /dev/kvm. */
int confine_user_lookup(bool kvm, struct confine_user *u);

/* In the forked child, just before exec: closes every descriptor but 0-2
 * and keep[0..n) (which stay open across exec), becomes the user, sets no
 * new privileges and the death signal. Async-signal-safe: the worker has
 * threads. Returns -errno for the child to report. */
int confine_child(const struct confine_user *u, const int *keep, int n);

/* A sealed memfd with a copy of the regular file at path, for QEMU to read
 * as /proc/self/fd/N whatever the file's owner and mode. As root, a file
 * that only root may read is copied only from inside vm_dir. */
int confine_file_copy(const char *path, const char *name, const char *vm_dir);

/* The worker, once QEMU runs: no new privileges, and of the capabilities
 * only those it still uses (CAP_KILL for QEMU, which runs as another user;
 * file access overrides when the VM folder is not its own), in every set
 * including the bounding set. */
int confine_worker(const char *vm_dir);

#endif
