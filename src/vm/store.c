#include "vm/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/disk.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/uuid.h"
#include "vhd/image.h"
#include "vm/bundle.h"
#include "vm/lock.h"
#include "vm/modes.h"
#include "vm/vm.h"

/* A folder is a store once it has vms/: only the commands that make a VM
 * (create, import) make one. Every other command is refused on a folder
 * without it, so a mistyped --store or a host without /var/lib/hvm shows up
 * as such instead of leaving an empty store behind. */
int store_open_how(const char *dir, enum store_missing how, struct store *s)
{
    char *root = NULL;
    memset(s, 0, sizeof *s);
    if (!dir || !dir[0])
        dir = getenv("HVM_STORE");
    if (dir && dir[0]) {
        root = strdup(dir);
    } else if (geteuid() == 0) {
        root = strdup("/var/lib/hvm");
    } else {
        const char *home = getenv("HOME");
        if (!home)
            return hvm_error(EINVAL, "no store: set --store, $HVM_STORE or $HOME");
        if (asprintf(&root, "%s/.local/share/hvm", home) < 0)
            root = NULL;
    }
    if (!root)
        return hvm_error(ENOMEM, "out of memory");
    char *vms = path_join(root, "vms");
    struct stat st;
    bool exists = vms && stat(vms, &st) == 0 && S_ISDIR(st.st_mode);
    free(vms);
    int r = 0;
    if (!exists && how == STORE_MUST_EXIST) {
        r = hvm_error(ENOENT, "%s: no hvm store here (hvm vm create makes one)", root);
    } else if (!exists && how == STORE_MAY_BE_MISSING) {
        /* Looked at, never made: the paths as given. */
        s->root = root;
        s->vms = path_join(root, "vms");
        return s->vms ? 0 : hvm_error(ENOMEM, "out of memory");
    } else if (!exists) {
        r = path_mkdirs(root);
        s->created = r == 0;
    }
    if (r == 0) {
        s->root = realpath(root, NULL);
        if (!s->root)
            r = hvm_error(errno, "%s: %s", root, strerror(errno));
    }
    free(root);
    if (r < 0)
        return r;
    s->exists = true;
    s->vms = path_join(s->root, "vms");
    if (!s->vms)
        return hvm_error(ENOMEM, "out of memory");
    if ((r = path_mkdirs(s->vms)) == 0) {
        vm_mode_dir(s->root);
        vm_mode_dir(s->vms);
        store_recover(s);
    }
    return r;
}

int store_open(const char *dir, struct store *s)
{
    return store_open_how(dir, STORE_CREATE, s);
}

void store_close(struct store *s)
{
    free(s->root);
    free(s->vms);
    memset(s, 0, sizeof *s);
}

bool store_name_valid(const char *name)
{
    if (!name || !name[0] || strlen(name) > 200 || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0 || name[0] == '-' || name[0] == '.')
        return false;
    /* A comma would add options where QEMU takes the name (-name, paths). */
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == ',' || (unsigned char)*p < 32)
            return false;
    return true;
}

char *store_vm_dir(const struct store *s, const char *name)
{
    return path_join(s->vms, name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_list(const struct store *s, char ***names)
{
    DIR *d = opendir(s->vms);
    size_t n = 0;
    char **list = calloc(1, sizeof *list);
    if (!d && errno == ENOENT && !s->exists && list) { /* STORE_MAY_BE_MISSING */
        *names = list;
        return 0;
    }
    if (!d || !list) {
        free(list);
        if (d)
            closedir(d);
        return hvm_error(errno ? errno : ENOMEM, "%s: %s", s->vms, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *dir = path_join(s->vms, e->d_name);
        char *cfg = dir ? path_join(dir, "vm.json") : NULL;
        bool is_vm = cfg && access(cfg, F_OK) == 0;
        free(cfg);
        free(dir);
        if (!is_vm)
            continue;
        char **grown = realloc(list, (n + 2) * sizeof *list);
        if (!grown)
            break;
        list = grown;
        list[n++] = strdup(e->d_name);
        list[n] = NULL;
    }
    closedir(d);
    qsort(list, n, sizeof *list, cmp_str);
    *names = list;
    return 0;
}

void store_names_free(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

/* The registry: read-modify-write under an exclusive lock on root/lock,
 * waited for at most $HVM_LOCK_TIMEOUT seconds (naming its holder then). */
static int registry_lock(struct store *s)
{
    char *path = path_join(s->root, "lock");
    int fd = path ? vm_lock_take(path, VM_LOCK_TIMED, NULL, 0) : hvm_error(ENOMEM, "out of memory");
    free(path);
    return fd;
}

static void registry_unlock(int fd)
{
    vm_lock_drop(fd);
}

int store_lock(struct store *s)
{
    return registry_lock(s);
}

void store_unlock(int fd)
{
    registry_unlock(fd);
}

static json_t *registry_load(struct store *s)
{
    char *path = path_join(s->root, "bases.json");
    json_t *doc = path ? json_load_file(path, 0, NULL) : NULL;
    free(path);
    if (!json_is_object(doc)) {
        json_decref(doc);
        doc = json_pack("{s:i, s:[]}", "format", 1, "bases");
    }
    return doc;
}

static int registry_save(struct store *s, json_t *doc)
{
    int r = store_json_replace(s->root, "bases.json", doc);
    char *path = r == 0 ? path_join(s->root, "bases.json") : NULL;
    if (path)
        vm_mode_file(path);
    free(path);
    return r;
}

int store_json_replace(const char *dir, const char *name, json_t *doc)
{
    char *path = path_join(dir, name);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int r = (path && text) ? file_replace(path, text, strlen(text))
                           : hvm_error(ENOMEM, "out of memory");
    free(path);
    free(text);
    return r;
}

static json_t *find_entry(json_t *doc, const char *abs)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(doc, "bases"), i, b)
        if (strcmp(json_string_value(json_object_get(b, "file")), abs) == 0)
            return b;
    return NULL;
}

int store_base_add_child(struct store *s, const char *base, const char *vm_id)
{
    char abs[PATH_MAX];
    if (!realpath(base, abs))
        return hvm_error(errno, "%s: %s", base, strerror(errno));
    int lock = registry_lock(s);
    if (lock < 0)
        return lock;
    json_t *doc = registry_load(s);
    json_t *e = find_entry(doc, abs);
    if (!e) {
        struct disk *d;
        char id[37] = "";
        if (disk_open(abs, DISK_OPEN_READ_ONLY, &d) == 0) {
            struct vhd *v = disk_vhd_image(d);
            if (v)
                uuid_format(v->footer.unique_id, id);
            disk_close(d);
        }
        e = json_pack("{s:s, s:s, s:[]}", "file", abs, "unique_id", id, "children");
        json_array_append_new(json_object_get(doc, "bases"), e);
    }
    json_array_append_new(json_object_get(e, "children"), json_string(vm_id));
    int r = registry_save(s, doc);
    json_decref(doc);
    registry_unlock(lock);
    return r;
}

int store_base_remove_child(struct store *s, const char *vm_id)
{
    int lock = registry_lock(s);
    if (lock < 0)
        return lock;
    json_t *doc = registry_load(s);
    size_t i, j;
    json_t *b, *c;
    json_array_foreach(json_object_get(doc, "bases"), i, b) {
        json_t *children = json_object_get(b, "children");
        for (j = json_array_size(children); j-- > 0;) {
            c = json_array_get(children, j);
            if (strcmp(json_string_value(c), vm_id) == 0)
                json_array_remove(children, j);
        }
    }
    int r = registry_save(s, doc);
    json_decref(doc);
    registry_unlock(lock);
    return r;
}

json_t *store_base_find(struct store *s, const char *path)
{
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        return NULL;
    json_t *doc = registry_load(s);
    json_t *e = find_entry(doc, abs);
    json_incref(e);
    json_decref(doc);
    return e;
}

json_t *store_bases(struct store *s)
{
    return registry_load(s);
}

/* The real path of a file that may be gone: its folder's real path and its
 * name (or the path made absolute when the folder is gone too). */
static bool real_or_gone(const char *path, char abs[PATH_MAX])
{
    if (realpath(path, abs))
        return true;
    char *dir = path_dirname(path);
    char rdir[PATH_MAX];
    bool ok = false;
    if (dir && realpath(dir, rdir))
        ok = snprintf(abs, PATH_MAX, "%s/%s", strcmp(rdir, "/") ? rdir : "",
                      path_basename(path)) < PATH_MAX;
    else if (path[0] == '/')
        ok = snprintf(abs, PATH_MAX, "%s", path) < PATH_MAX;
    free(dir);
    return ok;
}

int store_base_remove(struct store *s, const char *path)
{
    char abs[PATH_MAX];
    /* A base whose file is gone can still be unregistered (its entry would
     * otherwise stay for ever). */
    bool gone = access(path, F_OK) != 0;
    if (!real_or_gone(path, abs))
        return hvm_error(errno ? errno : ENOENT, "%s: %s", path, strerror(errno ? errno : ENOENT));
    int lock = registry_lock(s);
    if (lock < 0)
        return lock;
    json_t *doc = registry_load(s);
    json_t *bases = json_object_get(doc, "bases");
    int r = gone ? hvm_error(ENOENT, "%s: %s, and no base of that name is registered", path,
                             strerror(ENOENT))
                 : hvm_error(ENOENT, "%s: not a registered base", path);
    for (size_t i = 0; i < json_array_size(bases); i++) {
        json_t *b = json_array_get(bases, i);
        if (strcmp(json_string_value(json_object_get(b, "file")), abs) != 0)
            continue;
        size_t n = json_array_size(json_object_get(b, "children"));
        if (n) {
            r = hvm_error(EBUSY, "%s: base of %zu VM%s (see 'hvm base list'); delete those VMs "
                          "or make their disks standalone first", path, n, n == 1 ? "" : "s");
            break;
        }
        json_array_remove(bases, i);
        if ((r = registry_save(s, doc)) == 0) {
            struct stat st;
            if (stat(abs, &st) == 0)
                chmod(abs, st.st_mode | 0200);
        }
        break;
    }
    json_decref(doc);
    registry_unlock(lock);
    return r;
}

json_t *store_verify(struct store *s)
{
    json_t *out = json_array();
    json_t *doc = registry_load(s);
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(doc, "bases"), i, b) {
        const char *file = json_string_value(json_object_get(b, "file"));
        size_t n = json_array_size(json_object_get(b, "children"));
        if (!file || access(file, F_OK) == 0)
            continue;
        if (n)
            vm_problem(out, "base %s of %zu VM%s is missing (see 'hvm base list')", file, n,
                       n == 1 ? "" : "s");
        else
            vm_problem(out, "base %s is registered but its file is gone ('hvm base remove %s' "
                       "drops the entry)", file, file);
    }
    json_decref(doc);
    return out;
}

void store_base_forget(struct store *s, const char *abs)
{
    int lock = registry_lock(s);
    if (lock < 0)
        return;
    json_t *doc = registry_load(s);
    json_t *bases = json_object_get(doc, "bases");
    for (size_t i = 0; i < json_array_size(bases); i++) {
        json_t *b = json_array_get(bases, i);
        if (strcmp(json_string_value(json_object_get(b, "file")), abs) == 0 &&
            json_array_size(json_object_get(b, "children")) == 0) {
            json_array_remove(bases, i);
            registry_save(s, doc);
            break;
        }
    }
    json_decref(doc);
    registry_unlock(lock);
}

bool store_switch_known(struct store *s, const char *name)
{
    char *path = path_join(s->root, "switches.json");
    json_t *known = path ? json_load_file(path, 0, NULL) : NULL;
    free(path);
    if (!known)
        return true;
    bool found = false;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(known, "switches"), i, x) {
        const char *have = json_is_object(x) ? json_string_value(json_object_get(x, "name"))
                                             : json_string_value(x);
        found |= have && strcmp(have, name) == 0;
    }
    json_decref(known);
    return found;
}
