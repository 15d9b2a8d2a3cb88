/* Migration's store steps (see migrate.h). On shared storage nothing is
 * copied: the VM folder is where both hosts see it, and what moves is the
 * stores' entries. The hand-over is ordered so that at every moment at most
 * one store lists the VM: the source renames its entry aside first, the
 * destination links it, and only then the source drops its entry and
 * writes the record (a failure before that puts the entry back). */
#include "vm/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/filelock.h"
#include "vm/firmware.h"
#include "vm/validate.h"

static bool inside(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

static void add_unique(json_t *list, const char *s)
{
    if (s && !vm_list_has(list, s))
        json_array_append_new(list, json_string(s));
}

/* The switches and outside files of one configuration. */
static void config_facts(struct vm *vm, const char *real_dir, json_t *cfg, json_t *switches,
                         json_t *files)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(cfg, "nics"), i, n)
        add_unique(switches, json_string_value(json_object_get(n, "switch")));
    static const char *const boot[] = {"kernel", "initrd"};
    for (int k = 0; k < 2; k++) {
        const char *f = json_string_value(json_object_get(json_object_get(cfg, "boot"), boot[k]));
        char *abs = f ? vm_path(vm, f) : NULL;
        char *real = abs ? realpath(abs, NULL) : NULL;
        if (real && !inside(real_dir, real))
            add_unique(files, real);
        else if (!real && abs && f[0] == '/')
            add_unique(files, abs);
        free(real);
        free(abs);
    }
    if (vm_firmware_uefi(cfg))
        add_unique(files, vm_firmware_code_path(vm_firmware_secure_boot(cfg)));
}

json_t *vm_migrate_facts(struct vm *vm)
{
    char *real_dir = realpath(vm->dir, NULL);
    if (!real_dir) {
        hvm_error(errno, "%s: %s", vm->dir, strerror(errno));
        return NULL;
    }
    json_t *switches = json_array(), *files = json_array();
    config_facts(vm, real_dir, vm_config(vm), switches, files);
    size_t i;
    json_t *c;
    json_array_foreach(vm_checkpoints(vm), i, c)
        config_facts(vm, real_dir, json_object_get(c, "config"), switches, files);
    /* Layers outside the folder (a base, a clone's parent layers). */
    json_t *refs = vm_referenced_files(vm->doc);
    json_array_foreach(refs, i, c) {
        char *abs = vm_path(vm, json_string_value(c));
        char *real = abs ? realpath(abs, NULL) : NULL;
        if (real && !inside(real_dir, real))
            add_unique(files, real);
        free(real);
        free(abs);
    }
    json_decref(refs);
    const char *base = json_string_value(json_object_get(vm->doc, "base"));
    if (base)
        add_unique(files, base);
    struct stat st;
    char *entry = store_vm_dir(vm->store, vm->name);
    bool link = entry && lstat(entry, &st) == 0 && S_ISLNK(st.st_mode);
    free(entry);
    json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:b, s:O}", "name", vm->name, "id",
                          json_string_value(json_object_get(vm->doc, "id")), "state",
                          vm_state(vm), "folder", real_dir, "switches", switches, "files", files,
                          "entry_is_link", link, "memory",
                          json_object_get(vm_config(vm), "memory"));
    free(real_dir);
    if (base)
        json_object_set_new(f, "base", json_string(base));
    json_t *rt = json_object_get(vm->doc, "runtime");
    if (json_object_get(rt, "accel"))
        json_object_set(f, "accel", json_object_get(rt, "accel"));
    return f;
}

/* Migration is strict about switches: a store without switches.json
 * accepts any name elsewhere, but a VM must not arrive on a host that
 * never made its switch. */
static bool switch_present(struct store *s, const char *name)
{
    char *path = path_join(s->root, "switches.json");
    bool has_file = path && access(path, F_OK) == 0;
    free(path);
    return has_file && store_switch_known(s, name);
}

static char *cpu_model(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    char *model = NULL;
    while (f && !model && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            char *v = strchr(line, ':') + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            v[strcspn(v, "\n")] = 0;
            model = strdup(v);
        }
    if (f)
        fclose(f);
    return model ? model : strdup("unknown");
}

json_t *vm_migrate_check(struct store *s, json_t *facts, const char *version, json_t *problems)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *name = json_string_value(json_object_get(facts, "name"));
    const char *folder = json_string_value(json_object_get(facts, "folder"));
    const char *id = json_string_value(json_object_get(facts, "id"));
    char *cpu = cpu_model();
    json_t *rep = json_pack("{s:s, s:s, s:s, s:{}, s:{}}", "version", version, "host", host,
                            "cpu", cpu, "switches", "files");
    free(cpu);
    if (!name || !folder || !id || !store_name_valid(name)) {
        vm_problem(problems, "the source sent no valid VM name, id and folder");
        return rep;
    }
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(facts, "switches"), i, x) {
        bool ok = switch_present(s, json_string_value(x));
        json_object_set_new(json_object_get(rep, "switches"), json_string_value(x), json_boolean(ok));
        if (!ok)
            vm_problem(problems, "switch '%s' does not exist on host %s ('hvm switch create %s' "
                       "there first)", json_string_value(x), host, json_string_value(x));
    }
    json_array_foreach(json_object_get(facts, "files"), i, x) {
        bool ok = access(json_string_value(x), R_OK) == 0;
        json_object_set_new(json_object_get(rep, "files"), json_string_value(x), json_boolean(ok));
        if (!ok)
            vm_problem(problems, "%s is missing on host %s", json_string_value(x), host);
    }
    /* Shared storage: the same folder, the same VM. */
    char *cfg = path_join(folder, "vm.json");
    json_t *doc = cfg ? json_load_file(cfg, 0, NULL) : NULL;
    bool same = doc && json_is_string(json_object_get(doc, "id")) &&
                strcmp(json_string_value(json_object_get(doc, "id")), id) == 0;
    json_object_set_new(rep, "folder_visible", json_boolean(same));
    if (!same)
        vm_problem(problems, "%s: host %s does not see this VM's folder there (shared storage: "
                   "'hvm vm move %s DIR' to a folder both hosts see)", cfg ? cfg : folder, host, name);
    json_decref(doc);
    free(cfg);
    char *entry = store_vm_dir(s, name);
    struct stat st;
    bool taken = entry && lstat(entry, &st) == 0;
    json_object_set_new(rep, "name_free", json_boolean(!taken));
    if (taken)
        vm_problem(problems, "host %s already has a VM named '%s' (%s)", host, name, entry);
    free(entry);
    struct statvfs vfs;
    if (statvfs(s->root, &vfs) == 0)
        json_object_set_new(rep, "free_bytes", json_integer((json_int_t)(vfs.f_bavail * vfs.f_frsize)));
    return rep;
}

static char *aside_name(struct store *s, const char *prefix, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/.%s-%d-%s", s->vms, prefix, (int)getpid(), name) < 0)
        return NULL;
    return p;
}

int vm_migrate_adopt(struct store *s, json_t *facts)
{
    const char *name = json_string_value(json_object_get(facts, "name"));
    const char *folder = json_string_value(json_object_get(facts, "folder"));
    if (!name || !folder || !store_name_valid(name) || folder[0] != '/')
        return hvm_error(EINVAL, "migration: no valid VM name and folder");
    int r = path_mkdirs(s->vms);
    if (r < 0)
        return r;
    char *entry = store_vm_dir(s, name), *mark = aside_name(s, "adopting", name);
    if (!entry || !mark) {
        free(entry);
        free(mark);
        return hvm_error(ENOMEM, "out of memory");
    }
    /* The marker first: if this hvm dies before vm_migrate_adopted, the
     * next store_recover removes the entry of a VM that never ran here. */
    if (symlink(folder, mark) < 0 || symlink(folder, entry) < 0) {
        r = hvm_error(errno, "%s: %s", entry, strerror(errno));
        unlink(mark);
        free(entry);
        free(mark);
        return r;
    }
    path_sync_dir(entry);
    free(entry);
    free(mark);
    const char *base = json_string_value(json_object_get(facts, "base"));
    if (base && (r = store_base_add_child(s, base, json_string_value(json_object_get(facts, "id")))) < 0) {
        vm_migrate_unadopt(s, facts);
        return r;
    }
    /* The VM is back here: no record says it is elsewhere. */
    int fd = store_lock(s);
    if (fd >= 0) {
        json_t *all = store_moved_all(s);
        if (json_object_get(all, name)) {
            json_object_del(all, name);
            store_json_replace(s->root, "moved.json", all);
        }
        json_decref(all);
        store_unlock(fd);
    }
    return 0;
}

void vm_migrate_adopted(struct store *s, const char *name)
{
    char *mark = aside_name(s, "adopting", name);
    if (mark && unlink(mark) == 0)
        path_sync_dir(mark);
    free(mark);
}

int vm_migrate_unadopt(struct store *s, json_t *facts)
{
    const char *name = json_string_value(json_object_get(facts, "name"));
    char *entry = name && store_name_valid(name) ? store_vm_dir(s, name) : NULL;
    struct stat st;
    int r = 0;
    if (entry && lstat(entry, &st) == 0 && S_ISLNK(st.st_mode) && unlink(entry) < 0)
        r = hvm_error(errno, "%s: %s", entry, strerror(errno));
    if (entry)
        path_sync_dir(entry);
    free(entry);
    if (json_object_get(facts, "base"))
        store_base_remove_child(s, json_string_value(json_object_get(facts, "id")));
    if (name && store_name_valid(name))
        vm_migrate_adopted(s, name);
    return r;
}

int vm_migrate_detach(struct store *s, const char *name)
{
    char *entry = store_vm_dir(s, name), *aside = aside_name(s, "migrating", name);
    int r = 0;
    if (!entry || !aside)
        r = hvm_error(ENOMEM, "out of memory");
    else if (rename(entry, aside) < 0)
        r = hvm_error(errno, "%s: %s", entry, strerror(errno));
    else
        path_sync_dir(entry);
    free(entry);
    free(aside);
    return r;
}

int vm_migrate_reattach(struct store *s, const char *name)
{
    char *entry = store_vm_dir(s, name), *aside = aside_name(s, "migrating", name);
    int r = 0;
    if (!entry || !aside)
        r = hvm_error(ENOMEM, "out of memory");
    else if (rename(aside, entry) < 0)
        r = hvm_error(errno, "%s: %s (the VM's entry; rename it back by hand)", aside, strerror(errno));
    else
        path_sync_dir(entry);
    free(entry);
    free(aside);
    return r;
}

int vm_migrate_finish(struct store *s, const char *name, json_t *record)
{
    char *aside = aside_name(s, "migrating", name);
    int r = aside ? 0 : hvm_error(ENOMEM, "out of memory");
    /* The record first: a crash after it leaves a link aside that lists
     * nowhere, never a VM without a word about where it went. */
    int fd = r == 0 ? store_lock(s) : -1;
    if (r == 0 && fd < 0)
        r = fd;
    if (r == 0) {
        json_t *all = store_moved_all(s);
        json_object_set(all, name, record);
        r = store_json_replace(s->root, "moved.json", all);
        json_decref(all);
        store_unlock(fd);
    }
    if (r == 0 && unlink(aside) < 0)
        r = hvm_error(errno, "%s: %s", aside, strerror(errno));
    if (r == 0)
        path_sync_dir(aside);
    const char *id = json_string_value(json_object_get(record, "id"));
    if (r == 0 && id)
        store_base_remove_child(s, id);
    free(aside);
    return r;
}

json_t *store_moved_all(struct store *s)
{
    char *path = path_join(s->root, "moved.json");
    json_t *all = path ? json_load_file(path, 0, NULL) : NULL;
    free(path);
    if (!json_is_object(all)) {
        json_decref(all);
        all = json_object();
    }
    return all;
}

json_t *store_moved_get(struct store *s, const char *name)
{
    json_t *all = store_moved_all(s);
    json_t *rec = json_object_get(all, name);
    if (rec)
        json_incref(rec);
    json_decref(all);
    return rec;
}

/* Is the VM in folder running (its worker holds run/lock), here or on the
 * other host? */
static bool folder_running(const char *folder)
{
    char *lock = path_join(folder, "run/lock");
    bool held = path_flock_held(lock);
    free(lock);
    return held;
}

void vm_migrate_recover(struct store *s)
{
    DIR *d = opendir(s->vms);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        bool adopting = strncmp(e->d_name, ".adopting-", 10) == 0;
        bool migrating = strncmp(e->d_name, ".migrating-", 11) == 0;
        const char *rest = adopting ? e->d_name + 10 : migrating ? e->d_name + 11 : NULL;
        const char *dash = rest ? strchr(rest, '-') : NULL;
        int pid = rest ? atoi(rest) : 0;
        if (!dash || pid <= 0 || kill(pid, 0) == 0 || errno == EPERM)
            continue;
        char *abs = path_join(s->vms, e->d_name), *entry = store_vm_dir(s, dash + 1);
        char *real = abs ? realpath(abs, NULL) : NULL;
        bool running = real && folder_running(real);
        struct stat st;
        if (adopting) {
            /* The receiving hvm died before it had resumed the VM (it
             * drops the marker right after): the source keeps it, so the
             * entry goes (the folder stays). Whether the folder's worker
             * runs says nothing here: it is the source's again. */
            if (entry && lstat(entry, &st) == 0 && S_ISLNK(st.st_mode))
                unlink(entry);
            unlink(abs);
        } else if (!running && entry && lstat(entry, &st) != 0) {
            /* The sending hvm died before the destination resumed it. */
            rename(abs, entry);
        }
        if (abs)
            path_sync_dir(abs);
        free(real);
        free(abs);
        free(entry);
    }
    if (d)
        closedir(d);
}
