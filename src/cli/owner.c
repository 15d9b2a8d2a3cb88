/* Who holds a disk file: the lower layers only say that a file's lock was
 * refused (util/filelock.h); here the VM folder around it (vm.json) or the
 * base registry of a store (bases.json) turns that into a message that
 * names the VM, its drive and its state, or the base and its VMs. Stores
 * are only read, never created or recovered: this runs for any `hvm vhd`
 * verb, on files that may belong to no store at all. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/filelock.h"
#include "vm/store.h"

/* A path as the user gave it, unless it came from a parent locator that
 * climbs up ("disks/../../base.vhd"): its real path reads better then. */
static const char *shown(const char *path, const char *abs)
{
    return strstr(path, "../") ? abs : path;
}

/* The VM folder that holds abs (a real path): the nearest folder above it
 * with a vm.json, or NULL. */
static char *vm_dir_of(const char *abs)
{
    char *dir = path_dirname(abs);
    while (dir) {
        char *cfg = path_join(dir, "vm.json");
        bool found = cfg && access(cfg, F_OK) == 0;
        free(cfg);
        if (found)
            return dir;
        if (strcmp(dir, "/") == 0 || strcmp(dir, ".") == 0)
            break;
        char *up = path_dirname(dir);
        free(dir);
        dir = up;
    }
    free(dir);
    return NULL;
}

static json_t *vm_doc_load(const char *dir)
{
    char *cfg = path_join(dir, "vm.json");
    json_t *doc = cfg ? json_load_file(cfg, 0, NULL) : NULL;
    free(cfg);
    return doc;
}

/* Does /proc/locks show a flock on the file st held by another process
 * than this one? -1 when it cannot tell. */
static int flock_holder_other(const struct stat *st)
{
    FILE *f = fopen("/proc/locks", "r");
    if (!f)
        return -1;
    char line[256], type[16];
    int other = 0, pid;
    unsigned maj, min;
    unsigned long ino;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", type, &pid, &maj, &min, &ino) == 5 &&
            strcmp(type, "FLOCK") == 0 && ino == st->st_ino && maj == major(st->st_dev) &&
            min == minor(st->st_dev) && pid != getpid())
            other = 1;
    fclose(f);
    return other;
}

/* Is the flock of dir/name held by someone else (a VM command, `hvm vm
 * serve`, a running VM's worker)? Not by this process: `hvm vm serve`
 * holds its VM's lock while it explains why the drive cannot be opened. */
static bool flock_held(const char *dir, const char *name)
{
    char *path = path_join(dir, name);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    free(path);
    if (fd < 0)
        return false;
    struct stat st;
    int other = fstat(fd, &st) == 0 ? flock_holder_other(&st) : -1;
    /* Without /proc: probed with a shared lock, dropped at once. */
    bool held = other >= 0 ? other : flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

/* Does config hold abs as a drive's file? Its slot then. */
static bool config_drive(json_t *config, const char *vm_dir, const char *abs, int *slot)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d) {
        const char *file = json_string_value(json_object_get(d, "file"));
        char *p = file ? (file[0] == '/' ? strdup(file) : path_join(vm_dir, file)) : NULL;
        char real[PATH_MAX];
        bool same = p && realpath(p, real) && strcmp(real, abs) == 0;
        free(p);
        if (same) {
            *slot = (int)json_integer_value(json_object_get(d, "slot"));
            return true;
        }
    }
    return false;
}

/* "drive 0 of VM 'r1'", "the disk of checkpoint 'c1' (drive 0) of VM 'r1'"
 * or "a file of VM 'r1'". */
static void vm_role(json_t *doc, const char *vm_dir, const char *abs, char *buf, size_t len)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    int slot;
    if (!name)
        name = path_basename(vm_dir);
    if (config_drive(json_object_get(doc, "config"), vm_dir, abs, &slot)) {
        snprintf(buf, len, "drive %d of VM '%s'", slot, name);
        return;
    }
    size_t i;
    json_t *cp;
    json_array_foreach(json_object_get(doc, "checkpoints"), i, cp) {
        if (config_drive(json_object_get(cp, "config"), vm_dir, abs, &slot)) {
            snprintf(buf, len, "the disk of checkpoint '%s' (drive %d) of VM '%s'",
                     json_string_value(json_object_get(cp, "name")), slot, name);
            return;
        }
    }
    snprintf(buf, len, "a file of VM '%s'", name);
}

static void explain_vm(const char *path, const char *vm_dir, const char *abs, char *buf,
                       size_t len)
{
    json_t *doc = vm_doc_load(vm_dir);
    char role[512];
    vm_role(doc, vm_dir, abs, role, sizeof role);
    const char *state = json_string_value(json_object_get(doc, "state"));
    if (!state)
        state = "Off";
    bool running = strcmp(state, "Running") == 0 || strcmp(state, "Paused") == 0;
    if (running && flock_held(vm_dir, "run/lock"))
        snprintf(buf, len, "%s is %s, which is %s; stop it or use 'hvm vm serve'", path, role,
                 state);
    else if (flock_held(vm_dir, "lock"))
        snprintf(buf, len, "%s is %s, which another hvm command (such as 'hvm vm serve') is "
                 "using; wait for it to finish", path, role);
    else
        snprintf(buf, len, "%s is %s, and another process uses it (locked for writing)", path,
                 role);
    json_decref(doc);
}

/* Real paths of the stores to consult, existing ones only: the one holding
 * vm_dir (<store>/vms/<name>), --store or $HVM_STORE, and the default. */
static size_t store_roots(const char *vm_dir, const char *store_dir, char roots[][PATH_MAX],
                          size_t max)
{
    char cand[3][PATH_MAX];
    size_t nc = 0, n = 0;
    if (vm_dir) {
        char *vms = path_dirname(vm_dir);
        char *root = vms && strcmp(path_basename(vms), "vms") == 0 ? path_dirname(vms) : NULL;
        if (root)
            snprintf(cand[nc++], PATH_MAX, "%s", root);
        free(root);
        free(vms);
    }
    const char *env = store_dir && store_dir[0] ? store_dir : getenv("HVM_STORE");
    const char *home = getenv("HOME");
    if (env && env[0])
        snprintf(cand[nc++], PATH_MAX, "%s", env);
    else if (geteuid() == 0)
        snprintf(cand[nc++], PATH_MAX, "/var/lib/hvm");
    else if (home)
        snprintf(cand[nc++], PATH_MAX, "%s/.local/share/hvm", home);
    for (size_t i = 0; i < nc && n < max; i++) {
        char real[PATH_MAX], reg[PATH_MAX + 16];
        if (!realpath(cand[i], real))
            continue;
        snprintf(reg, sizeof reg, "%s/bases.json", real);
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup |= strcmp(roots[k], real) == 0;
        if (!dup && access(reg, F_OK) == 0)
            snprintf(roots[n++], PATH_MAX, "%s", real);
    }
    return n;
}

/* The registry entry of abs in the store at root (new reference) or NULL.
 * The store is only read: no store_open, which would create or recover. */
static json_t *base_entry(const char *root, const char *abs)
{
    struct store s = {.root = strdup(root), .vms = path_join(root, "vms")};
    json_t *e = s.root && s.vms ? store_base_find(&s, abs) : NULL;
    free(s.root);
    free(s.vms);
    return e;
}

/* The names of the children of a registry entry, "'a1', 'a2'", leaving out
 * the VM with id skip; *count gets how many. */
static void child_names(const char *root, json_t *entry, const char *skip, char *buf,
                        size_t len, size_t *count)
{
    size_t i, n = 0, used = 0;
    json_t *c;
    buf[0] = '\0';
    json_array_foreach(json_object_get(entry, "children"), i, c) {
        const char *id = json_string_value(c);
        if (!id || (skip && strcmp(id, skip) == 0))
            continue;
        const char *name = id; /* an id no VM has any more stays an id */
        char **names = NULL;
        struct store s = {.vms = path_join(root, "vms")};
        json_t *doc = NULL;
        if (s.vms && store_list(&s, &names) == 0) {
            for (size_t k = 0; names[k] && name == id; k++) {
                char *dir = path_join(s.vms, names[k]);
                json_decref(doc);
                doc = dir ? vm_doc_load(dir) : NULL;
                free(dir);
                const char *vid = json_string_value(json_object_get(doc, "id"));
                if (vid && strcmp(vid, id) == 0)
                    name = json_string_value(json_object_get(doc, "name"));
            }
        }
        if (!name)
            name = id;
        used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s'%s'",
                                 n ? ", " : "", name);
        if (used >= len)
            used = len;
        n++;
        json_decref(doc);
        store_names_free(names);
        free(s.vms);
    }
    *count = n;
}

static bool explain_base(const char *path, const char *abs, bool by_writer, char *buf,
                         size_t len)
{
    char roots[3][PATH_MAX];
    size_t n = store_roots(NULL, NULL, roots, 3);
    for (size_t i = 0; i < n; i++) {
        json_t *e = base_entry(roots[i], abs);
        if (!e)
            continue;
        char names[512];
        size_t count;
        child_names(roots[i], e, NULL, names, sizeof names, &count);
        json_decref(e);
        snprintf(buf, len, "%s is the base image of %s%s%s, %s", path,
                 count == 1 ? "VM " : count ? "VMs " : "no VM", names,
                 count ? "" : " any more",
                 by_writer ? "and another process writes it (locked for writing)"
                           : "and a running VM or a server reads it (locked against "
                             "writes); stop them first");
        return true;
    }
    return false;
}

char *cli_owner_explain(const char *message)
{
    bool by_writer;
    const char *path = file_lock_refused(&by_writer);
    static const char tail[] = ": in use by another process";
    size_t n = path ? strlen(path) : 0;
    if (!path || strncmp(message, path, n) != 0 || strncmp(message + n, tail, sizeof tail - 1))
        return NULL;
    char abs[PATH_MAX], buf[2 * PATH_MAX + 2048];
    if (!realpath(path, abs))
        return NULL;
    char *vm_dir = vm_dir_of(abs);
    path = shown(path, abs);
    if (vm_dir)
        explain_vm(path, vm_dir, abs, buf, sizeof buf);
    else if (!explain_base(path, abs, by_writer, buf, sizeof buf))
        snprintf(buf, sizeof buf, "%s is in use by another process (%s)", path,
                 by_writer ? "locked for writing" : "read as the parent of a disk in use");
    free(vm_dir);
    return strdup(buf);
}

int cli_base_guard(const char *file, const char *user, const char *store_dir, const char *what)
{
    char abs[PATH_MAX], user_abs[PATH_MAX];
    if (!realpath(file, abs))
        return 0; /* the operation itself will say what is wrong with it */
    char *vm_dir = user && realpath(user, user_abs) ? vm_dir_of(user_abs) : NULL;
    json_t *doc = vm_dir ? vm_doc_load(vm_dir) : NULL;
    const char *own_id = json_string_value(json_object_get(doc, "id"));
    char roots[3][PATH_MAX];
    size_t n = store_roots(vm_dir, store_dir, roots, 3);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        json_t *e = base_entry(roots[i], abs);
        char names[512];
        size_t count = 0;
        if (e)
            child_names(roots[i], e, own_id, names, sizeof names, &count);
        if (count)
            r = hvm_error(EBUSY, "%s is the base image of %s %s %s: %s would break %s (even "
                          "with --force); see 'hvm base list'", shown(file, abs),
                          own_id ? "the other" : "the", count == 1 ? "VM" : "VMs", names, what,
                          count == 1 ? "it" : "them");
        json_decref(e);
    }
    json_decref(doc);
    free(vm_dir);
    return r;
}
