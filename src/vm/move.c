/* Moving a VM's folder onto other storage (a shared volume, another disk):
 * copy to DEST under a temporary name, verify every file by SHA-256, rename
 * into place, then switch the store's entry (vms/<name>) to a link to DEST
 * and remove the old folder. A crash before the switch leaves the VM where
 * it was (and a temporary copy that the next store_recover removes); after
 * it, store_recover finishes removing the old folder. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/ops.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/hashpool.h"
#include "vhd/image.h"
#include "vm/bundle.h"
#include "vm/migrate.h"
#include "vm/modes.h"

static int copy_tree(const char *from, const char *to, json_t *files, const char *rel)
{
    char *src = rel[0] ? path_join(from, rel) : strdup(from);
    DIR *d = src ? opendir(src) : NULL;
    int r = 0;
    if (!d) {
        r = hvm_error(errno ? errno : ENOMEM, "%s: %s", src ? src : from, strerror(errno));
        free(src);
        return r;
    }
    char *dst = rel[0] ? path_join(to, rel) : strdup(to);
    if ((r = path_mkdirs(dst)) < 0)
        goto out;
    struct dirent *e;
    while (r == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "lock") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        char *abs = path_join(from, sub);
        struct stat st;
        if (abs && lstat(abs, &st) == 0 && S_ISDIR(st.st_mode)) {
            r = copy_tree(from, to, files, sub);
        } else if (abs && S_ISREG(st.st_mode)) {
            char *out = path_join(to, sub);
            r = file_copy(abs, out);
            json_array_append_new(files, json_string(sub));
            free(out);
        }
        free(abs);
    }
out:
    closedir(d);
    free(src);
    free(dst);
    return r;
}

static void append_hash(void *opaque, const char *key, const char *hex)
{
    (void)key;
    json_array_append_new(opaque, json_string(hex));
}

/* Every file of the copy hashes the same as the original; both sides are
 * hashed on two threads at once. */
static int verify_copy(const char *from, const char *to, json_t *files)
{
    size_t i;
    json_t *f;
    struct hash_pool *hashing = hash_pool_start(2);
    if (!hashing)
        return hvm_error(ENOMEM, "out of memory");
    int r = 0;
    json_array_foreach(files, i, f) {
        const char *rel = json_string_value(f);
        char *a = path_join(from, rel), *b = path_join(to, rel);
        if (r == 0 && (!a || !b))
            r = hvm_error(ENOMEM, "out of memory");
        if (r == 0 && (r = hash_pool_add(hashing, a, rel)) == 0)
            r = hash_pool_add(hashing, b, rel);
        free(a);
        free(b);
    }
    /* In queue order: original, copy, original, copy... (all of them
     * when nothing failed). */
    json_t *hashes = json_array();
    int h = hash_pool_finish(hashing, append_hash, hashes);
    if (r == 0)
        r = h;
    json_array_foreach(files, i, f)
        if (r == 0 && !json_equal(json_array_get(hashes, 2 * i), json_array_get(hashes, 2 * i + 1))) {
            char *b = path_join(to, json_string_value(f));
            r = hvm_error(EIO, "%s: the copy differs from the original", b ? b : json_string_value(f));
            free(b);
        }
    json_decref(hashes);
    return r;
}

/* --with-base: the base is copied into the moved folder (bases/), the
 * layers built on it are pointed at the copy, and vm.json names it. All of
 * it happens in the copy before the switch, so a crash leaves the VM as it
 * was. *new_base gets the copy's final path. */
static int copy_base_along(struct vm *vm, const char *tmp, const char *target, const char *base,
                           char **new_base)
{
    char *dir = path_join(tmp, "bases"), *copy = NULL;
    struct disk *bd = NULL;
    uint8_t id[16];
    int r = dir ? path_mkdirs(dir) : hvm_error(ENOMEM, "out of memory");
    if (r == 0 && (copy = path_join(dir, path_basename(base))) == NULL)
        r = hvm_error(ENOMEM, "out of memory");
    if (r == 0)
        r = file_copy(base, copy);
    if (r == 0 && (r = disk_open(copy, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &bd)) == 0) {
        struct vhd *bv = disk_vhd_image(bd);
        if (!bv)
            r = hvm_error(EINVAL, "%s: not a VHD", base);
        else
            memcpy(id, bv->footer.unique_id, 16);
        disk_close(bd);
    }
    json_t *refs = vm_referenced_files(vm->doc);
    size_t i;
    json_t *f;
    json_array_foreach(refs, i, f) {
        const char *rel = json_string_value(f);
        if (r < 0 || strncmp(rel, "checkpoints/", 12) == 0)
            continue;
        char *layer = path_join(tmp, rel);
        struct disk *d;
        if (layer && disk_open(layer, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &d) == 0) {
            struct vhd *v = disk_vhd_image(d);
            bool on_base = v && v->footer.type == VHD_TYPE_DIFF &&
                           memcmp(v->header.parent_id, id, 16) == 0;
            disk_close(d);
            if (on_base)
                r = disk_set_parent(layer, copy, false);
        }
        free(layer);
    }
    json_decref(refs);
    if (r == 0) {
        char rel[512];
        snprintf(rel, sizeof rel, "bases/%s", path_basename(base));
        *new_base = path_join(target, rel);
        json_t *doc = json_deep_copy(vm->doc);
        json_object_set_new(doc, "base", json_string(*new_base));
        r = store_json_replace(tmp, "vm.json", doc);
        json_decref(doc);
    }
    free(dir);
    free(copy);
    return r;
}

/* The absolute real path dest would have, without making anything: the
 * real path of its nearest existing folder, then the names that do not
 * exist yet (none of them a link, so no other resolution is possible). */
static char *resolve_new(const char *dest)
{
    char *real = realpath(dest, NULL);
    if (real || errno != ENOENT)
        return real;
    const char *base = path_basename(dest);
    if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        errno = EINVAL;
        return NULL;
    }
    char *dir = path_dirname(dest);
    char *up = dir ? resolve_new(dir) : NULL;
    char *out = up ? path_join(up, base) : NULL;
    free(dir);
    free(up);
    return out;
}

static bool path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return dir[0] && strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0 || strcmp(dir, "/") == 0);
}

/* A VM folder holds only that VM's files (check finds anything else
 * orphaned, delete removes it), so a move never lands in one: not in
 * another VM's, not in its own (it would copy itself into itself), nor
 * among the store's entries. */
static int check_destination(struct store *s, struct vm *vm, const char *dest, const char *target)
{
    char *own = realpath(vm->dir, NULL);
    int r = 0;
    if (own && path_within(target, own))
        r = hvm_error(EINVAL, "%s: inside the folder of VM '%s' itself (%s); move it to a folder "
                      "outside it", dest, vm->name, own);
    free(own);
    if (r == 0 && path_within(target, s->vms))
        r = hvm_error(EINVAL, "%s: inside the store's folder of VMs (%s), where every entry is a "
                      "VM; move it to a folder outside it", dest, s->vms);
    char **names;
    if (r < 0 || store_list(s, &names) < 0)
        return r;
    for (size_t i = 0; names[i] && r == 0; i++) {
        char *entry = store_vm_dir(s, names[i]);
        char *real = entry ? realpath(entry, NULL) : NULL;
        if (real && path_within(target, real))
            r = hvm_error(EINVAL, "%s: inside the folder of VM '%s' (%s), which holds only that "
                          "VM's files; move it to a folder outside every VM", dest, names[i], real);
        free(real);
        free(entry);
    }
    store_names_free(names);
    return r;
}

int vm_move(struct store *s, const char *name, const char *dest, bool with_base,
            const struct bundle_progress *progress)
{
    struct vm *vm;
    char *tmp = NULL, *old_real = NULL, *tomb = NULL, *mark = NULL, *target = NULL;
    int r;
    (void)progress;
    if (access(dest, F_OK) == 0)
        return hvm_error(EEXIST, "%s: already exists", dest);
    if ((r = vm_open(s, name, &vm)) < 0)
        return r;
    if (strcmp(vm_state(vm), "Running") == 0 || strcmp(vm_state(vm), "Paused") == 0) {
        r = hvm_error(EBUSY, "VM '%s' is running: turn it off first", name);
        goto out;
    }
    /* Linked clones record where its layers are (the base registry). */
    if ((r = vm_refuse_if_cloned(vm, "moved")) < 0)
        goto out;
    const char *base = with_base ? json_string_value(json_object_get(vm->doc, "base")) : NULL;
    if (with_base && !base) {
        r = hvm_error(EINVAL, "--with-base: VM '%s' is not made from a base image", name);
        goto out;
    }
    /* A relative base is a file of the VM folder (an imported bundle's
     * bases/): it moves with the folder like every other file. */
    char *base_abs = base && base[0] != '/' ? vm_path(vm, base) : NULL;
    if (base_abs) {
        char *real = realpath(base_abs, NULL), *dir = realpath(vm->dir, NULL);
        bool inside = real && dir && path_within(real, dir);
        free(real);
        free(dir);
        free(base_abs);
        if (!inside) {
            r = hvm_error(ENOENT, "--with-base: the base %s of VM '%s' is not in its folder",
                          base, name);
            goto out;
        }
        base = NULL;
    }
    old_real = realpath(vm->dir, NULL);
    /* DEST as an absolute path, for the store's record of the move; it is
     * checked before any folder of it is made. */
    target = resolve_new(dest);
    if (!target) {
        r = hvm_error(errno ? errno : ENOMEM, "%s: %s", dest, strerror(errno ? errno : ENOMEM));
        goto out;
    }
    if ((r = check_destination(s, vm, dest, target)) < 0)
        goto out;
    char *parent = path_dirname(target);
    r = parent ? path_mkdirs(parent) : hvm_error(ENOMEM, "out of memory");
    free(parent);
    if (r < 0)
        goto out;
    if (asprintf(&tmp, "%s.moving-%d", target, (int)getpid()) < 0 ||
        asprintf(&tomb, "%s/.moving-%d-%s", s->vms, (int)getpid(), name) < 0 ||
        asprintf(&mark, "%s/.movedest-%d-%s", s->vms, (int)getpid(), name) < 0) {
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    /* The record lets store_recover undo a move killed before its switch:
     * the copy (under its temporary name or already DEST) goes. */
    if (symlink(target, mark) < 0) {
        r = hvm_error(errno, "%s: %s", mark, strerror(errno));
        free(mark);
        mark = NULL;
        goto out;
    }
    path_sync_dir(mark);
    json_t *files = json_array();
    /* 1. copy and verify */
    if ((r = copy_tree(vm->dir, tmp, files, "")) == 0)
        r = verify_copy(vm->dir, tmp, files);
    json_decref(files);
    char *new_base = NULL;
    if (r == 0 && base)
        r = copy_base_along(vm, tmp, target, base, &new_base);
    if (r < 0) {
        free(new_base);
        path_remove_tree(tmp);
        goto out;
    }
    vm_mode_tree(tmp); /* the copies had the originals' modes */
    if (rename(tmp, dest) < 0) {
        r = hvm_error(errno, "%s: %s", dest, strerror(errno));
        path_remove_tree(tmp);
        goto out;
    }
    path_sync_dir(dest);
    char *dest_abs = realpath(dest, NULL);
    /* 2. switch: the entry moves aside, a link to DEST takes its place. */
    char *entry = store_vm_dir(s, name);
    if (!dest_abs || rename(entry, tomb) < 0) {
        r = hvm_error(errno, "%s: %s", entry, strerror(errno));
    } else if (symlink(dest_abs, entry) < 0) {
        r = hvm_error(errno, "%s: %s", entry, strerror(errno));
        rename(tomb, entry);
    }
    if (r == 0)
        path_sync_dir(entry);
    else
        path_remove_tree(dest); /* not switched: the copy goes */
    if (r == 0 && new_base) {
        /* The VM now uses its own copy of the base; the old one stays for
         * the other VMs made from it (or for 'hvm base remove'). */
        const char *id = json_string_value(json_object_get(vm->doc, "id"));
        store_base_remove_child(s, id);
        store_base_add_child(s, new_base, id);
    }
    free(new_base);
    free(entry);
    free(dest_abs);
    /* 3. remove the old folder (the tomb is the folder itself, or a link to
     *    it when the VM had been moved or registered before). */
    if (r == 0) {
        struct stat st;
        if (lstat(tomb, &st) == 0 && S_ISLNK(st.st_mode) && old_real)
            path_remove_tree(old_real);
        path_remove_tree(tomb);
    }
out:
    if (mark) {
        unlink(mark);
        path_sync_dir(mark);
    }
    vm_close(vm);
    free(tmp);
    free(tomb);
    free(mark);
    free(target);
    free(old_real);
    return r;
}

static bool pid_alive(const char *name)
{
    const char *dash = strrchr(name, '-');
    int pid = dash ? atoi(dash + 1) : 0;
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

void store_recover(struct store *s)
{
    vm_migrate_recover(s);
    DIR *d = opendir(s->vms);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] != '.')
            continue;
        char *abs = path_join(s->vms, e->d_name);
        if (!abs)
            continue;
        if ((strncmp(e->d_name, ".creating-", 10) == 0 || strncmp(e->d_name, ".importing-", 11) == 0 ||
             strncmp(e->d_name, ".deleting-", 10) == 0) && !pid_alive(e->d_name)) {
            /* A create or delete killed half-way may have left the VM in the
             * base registry: a child that would block 'hvm base remove'. */
            char *cfg = strncmp(e->d_name, ".importing-", 11) != 0 ? path_join(abs, "vm.json") : NULL;
            json_t *doc = cfg ? json_load_file(cfg, 0, NULL) : NULL;
            const char *id = json_string_value(json_object_get(doc, "id"));
            if (id)
                store_base_remove_child(s, id);
            json_decref(doc);
            free(cfg);
            /* A deleted VM's entry may be a link to its (moved) folder. */
            struct stat st;
            char *real = strncmp(e->d_name, ".deleting-", 10) == 0 && lstat(abs, &st) == 0 &&
                                 S_ISLNK(st.st_mode)
                             ? realpath(abs, NULL)
                             : NULL;
            if (real)
                path_remove_tree(real);
            free(real);
            path_remove_tree(abs);
        } else if (strncmp(e->d_name, ".moving-", 8) == 0 &&
                   kill(atoi(e->d_name + 8), 0) != 0 && strchr(e->d_name + 8, '-')) {
            char *entry = store_vm_dir(s, strchr(e->d_name + 8, '-') + 1);
            struct stat st;
            if (entry && lstat(entry, &st) == 0) {
                /* Switched: finish removing the old folder. */
                if (lstat(abs, &st) == 0 && S_ISLNK(st.st_mode)) {
                    char *real = realpath(abs, NULL);
                    if (real)
                        path_remove_tree(real);
                    free(real);
                }
                path_remove_tree(abs);
            } else if (entry) {
                rename(abs, entry); /* not switched: put it back */
            }
            free(entry);
        }
        free(abs);
    }
    if (d)
        closedir(d);
    /* Then the records of moves (after the entries were put back above): a
     * move whose switch did not happen leaves a copy at DEST (or under its
     * temporary name), which goes. */
    d = opendir(s->vms);
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, ".movedest-", 10) != 0 || !strchr(e->d_name + 10, '-'))
            continue;
        int pid = atoi(e->d_name + 10);
        if (pid <= 0 || kill(pid, 0) == 0 || errno == EPERM)
            continue;
        char *abs = path_join(s->vms, e->d_name);
        char target[PATH_MAX];
        ssize_t n = abs ? readlink(abs, target, sizeof target - 1) : -1;
        if (n > 0) {
            target[n] = 0;
            char *entry = store_vm_dir(s, strchr(e->d_name + 10, '-') + 1);
            char *at = entry ? realpath(entry, NULL) : NULL;
            char *copy = realpath(target, NULL);
            if (!at || !copy || strcmp(at, copy) != 0) {
                char *tmp = NULL;
                if (asprintf(&tmp, "%s.moving-%d", target, pid) > 0)
                    path_remove_tree(tmp);
                free(tmp);
                if (copy && at)
                    path_remove_tree(target);
            }
            free(at);
            free(copy);
            free(entry);
        }
        if (abs)
            unlink(abs);
        free(abs);
    }
    if (d)
        closedir(d);
    hvm_error_clear();
}
