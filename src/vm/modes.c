#include "vm/modes.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The group that may read the store, or -1 when there is none. */
static gid_t reader_group(void)
{
    static bool looked;
    static gid_t gid = (gid_t)-1;
    if (!looked) {
        const char *name = getenv("HVM_GROUP");
        struct group *g = getgrnam(name && name[0] ? name : "hvm");
        gid = g ? g->gr_gid : (gid_t)-1;
        looked = true;
    }
    return gid;
}

/* Gives the group (where it exists and the owner may) and the mode: group
 * bits only with the group, else the owner's alone. */
static void set_at(int dirfd, const char *name, const struct stat *st, bool is_dir)
{
    if (st->st_uid != geteuid()) /* root never regroups a user's files */
        return;
    gid_t gid = reader_group();
    bool grouped = gid != (gid_t)-1 &&
                   (st->st_gid == gid ||
                    fchownat(dirfd, name, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) == 0);
    mode_t mode;
    if (is_dir)
        mode = 0750;
    else
        mode = (st->st_mode & 0200 ? 0600 : 0400) | (grouped ? 0040 : 0);
    if ((st->st_mode & 07777) != mode)
        fchmodat(dirfd, name, mode, 0);
}

static void set_path(const char *path, bool is_dir)
{
    struct stat st;
    if (lstat(path, &st) == 0 && (is_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)))
        set_at(AT_FDCWD, path, &st, is_dir);
}

void vm_mode_dir(const char *path)
{
    set_path(path, true);
}

void vm_mode_file(const char *path)
{
    set_path(path, false);
}

/* What hvm keeps at the top of a VM folder or a bundle; anything else
 * there (a file the user put in, run/) keeps the mode it has. */
static bool hvm_entry(const char *name, bool is_dir)
{
    static const char *const files[] = {"vm.json", "journal", "manifest.json"};
    static const char *const dirs[] = {"disks", "checkpoints", "bases", "boot", "nvram"};
    const char *const *list = is_dir ? dirs : files;
    size_t n = is_dir ? sizeof dirs / sizeof *dirs : sizeof files / sizeof *files;
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

static void tree_at(int dirfd, int depth)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "lock") == 0 ||
            fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            (depth == 0 && !hvm_entry(e->d_name, S_ISDIR(st.st_mode))))
            continue;
        if (S_ISREG(st.st_mode)) {
            set_at(dirfd, e->d_name, &st, false);
        } else if (S_ISDIR(st.st_mode) && depth < 8) {
            set_at(dirfd, e->d_name, &st, true);
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                tree_at(sub, depth + 1);
        }
    }
    closedir(d);
}

void vm_mode_tree(const char *dir)
{
    char *real = realpath(dir, NULL); /* a moved VM's entry is a link to it */
    if (!real)
        return;
    vm_mode_dir(real);
    int fd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        tree_at(fd, 0);
    free(real);
}
