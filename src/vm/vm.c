/* Opening, creating, renaming and deleting VMs. */
#include "vm/vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk/ops.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/uuid.h"
#include "vhd/image.h"
#include "vm/firmware.h"
#include "vm/lock.h"
#include "vm/modes.h"
#include "vm/validate.h"

char *vm_path(const struct vm *vm, const char *rel)
{
    return rel ? path_join(vm->dir, rel) : NULL;
}

json_t *vm_config(const struct vm *vm)
{
    return json_object_get(vm->doc, "config");
}

json_t *vm_checkpoints(const struct vm *vm)
{
    return json_object_get(vm->doc, "checkpoints");
}

const char *vm_state(const struct vm *vm)
{
    const char *s = json_string_value(json_object_get(vm->doc, "state"));
    return s ? s : "Off";
}

const char *vm_disk_io(json_t *config)
{
    const char *io = json_string_value(json_object_get(config, "disk_io"));
    return io && strcmp(io, "vhost-user") == 0 ? "vhost-user" : "nbd";
}

json_t *vm_config_drive(json_t *config, json_int_t slot)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d)
        if (json_integer_value(json_object_get(d, "slot")) == slot)
            return d;
    return NULL;
}

void vm_problem(json_t *list, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(list, json_string(buf));
}

json_t *vm_checkpoint_by_id(json_t *doc, const char *id)
{
    size_t i;
    json_t *c;
    if (!id)
        return NULL;
    json_array_foreach(json_object_get(doc, "checkpoints"), i, c)
        if (strcmp(json_string_value(json_object_get(c, "id")) ?: "", id) == 0)
            return c;
    return NULL;
}

json_t *vm_checkpoint_find(const struct vm *vm, const char *key, int *err)
{
    size_t i, n = 0;
    json_t *c, *found = NULL;
    *err = 0;
    /* An exact name wins; else a unique id prefix. Hidden nodes (deleted
     * checkpoints kept for their children) are never found. */
    json_array_foreach(vm_checkpoints(vm), i, c) {
        if (json_is_true(json_object_get(c, "hidden")))
            continue;
        if (strcmp(json_string_value(json_object_get(c, "name")) ?: "", key) == 0) {
            if (found && n == 0) {
                *err = hvm_error(EINVAL, "%s: more than one checkpoint is named '%s'; use its id",
                                 vm->name, key);
                return NULL;
            }
            found = c;
        }
    }
    if (found)
        return found;
    json_array_foreach(vm_checkpoints(vm), i, c) {
        if (json_is_true(json_object_get(c, "hidden")))
            continue;
        const char *id = json_string_value(json_object_get(c, "id"));
        if (id && strlen(key) >= 4 && strncmp(id, key, strlen(key)) == 0) {
            found = c;
            n++;
        }
    }
    if (n == 1)
        return found;
    if (n)
        *err = hvm_error(EINVAL, "%s: '%s' matches %zu checkpoints; give more of the id",
                         vm->name, key, n);
    else
        *err = hvm_error(ENOENT, "%s: no checkpoint '%s' (see 'hvm checkpoint list %s')",
                         vm->name, key, vm->name);
    return NULL;
}

bool vm_list_has(json_t *list, const char *s)
{
    size_t i;
    json_t *x;
    if (!s)
        return false;
    json_array_foreach(list, i, x)
        if (json_is_string(x) && strcmp(json_string_value(x), s) == 0)
            return true;
    return false;
}

void vm_remove_unused(struct vm *vm, json_t *refs, const char *rel)
{
    char *path = rel && !vm_list_has(refs, rel) ? vm_path(vm, rel) : NULL;
    if (path)
        unlink(path);
    free(path);
}

static void add_file(json_t *list, const char *f)
{
    if (f && !vm_list_has(list, f))
        json_array_append_new(list, json_string(f));
}

static void add_config_files(json_t *list, json_t *config)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d)
        add_file(list, json_string_value(json_object_get(d, "file")));
    add_file(list, vm_firmware_vars(config));
}

json_t *vm_referenced_files(json_t *doc)
{
    json_t *list = json_array();
    size_t i;
    json_t *c;
    add_config_files(list, json_object_get(doc, "config"));
    add_file(list, json_string_value(json_object_get(doc, "saved_memory")));
    json_array_foreach(json_object_get(doc, "checkpoints"), i, c) {
        add_config_files(list, json_object_get(c, "config"));
        add_file(list, json_string_value(json_object_get(c, "memory")));
    }
    return list;
}

/* Every open checks the whole document (validate.c) before anything reads
 * it: a VM folder on shared storage is written by other hosts. */
static int validate_doc(struct vm *vm)
{
    char *path = vm_path(vm, "vm.json");
    int r = path ? vm_doc_validate(vm->doc, path) : hvm_error(ENOMEM, "out of memory");
    free(path);
    return r;
}

/* An interrupted change's next document becomes vm.json when recovery
 * finishes it: it is checked first, so that a journal cannot bring in what
 * vm.json could not. (An unreadable journal is recovery's: it was never
 * complete.) */
static int load_doc(struct vm *vm)
{
    char *path = vm_path(vm, "vm.json");
    json_error_t err;
    json_decref(vm->doc);
    vm->doc = path ? json_load_file(path, 0, &err) : NULL;
    int r = 0;
    if (!vm->doc)
        r = hvm_error(EINVAL, "%s: %s (line %d)", path ? path : vm->dir, err.text, err.line);
    free(path);
    return r < 0 ? r : validate_doc(vm);
}

/* Memory states a dead worker was writing (*.saving) or had finished for a
 * save it never recorded (saved-*.state): nothing refers to them. */
static void remove_dead_memory_files(struct vm *vm)
{
    json_t *refs = vm_referenced_files(vm->doc);
    char *dir = vm_path(vm, "checkpoints");
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        bool partial = len > 7 && strcmp(e->d_name + len - 7, ".saving") == 0;
        bool saved = strncmp(e->d_name, "saved-", 6) == 0;
        if (!partial && !saved)
            continue;
        char rel[512];
        snprintf(rel, sizeof rel, "checkpoints/%s", e->d_name);
        vm_remove_unused(vm, refs, rel);
    }
    if (d)
        closedir(d);
    free(dir);
    json_decref(refs);
}

/* A VM marked Running whose worker no longer holds <vm>/run/lock died
 * (killed, or its QEMU crashed and took it down): it is Off now. Its disks
 * are consistent: unflushed writes are simply not there (see vhd/image.c). */
static int detect_dead_worker(struct vm *vm)
{
    const char *state = vm_state(vm);
    if (strcmp(state, "Running") != 0 && strcmp(state, "Paused") != 0)
        return 0;
    char *lock = vm_path(vm, "run/lock");
    int fd = lock ? open(lock, O_RDWR | O_CLOEXEC) : -1;
    free(lock);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return 0; /* alive */
    }
    if (fd >= 0)
        close(fd);
    json_t *next = json_deep_copy(vm->doc);
    bool saved = json_is_string(json_object_get(next, "saved_memory")) &&
                 json_is_true(json_object_get(json_object_get(next, "runtime"), "resume_pending"));
    json_object_set_new(next, "state", json_string(saved ? "Saved" : "Off"));
    json_object_del(next, "runtime");
    json_t *remove = json_array();
    if (!saved && json_is_string(json_object_get(next, "saved_memory"))) {
        json_array_append(remove, json_object_get(next, "saved_memory"));
        json_object_set_new(next, "saved_memory", json_null());
    }
    snprintf(vm->notice, sizeof vm->notice,
             "VM '%s' was %s but its worker process is gone (killed or crashed): it is %s now",
             vm->name, state, saved ? "Saved" : "Off");
    /* Its sockets are dead; its log (run/worker.log) stays for a post-mortem. */
    static const char *const sockets[] = {"run/ctl.sock", "run/qmp.sock", "run/console.sock"};
    for (size_t i = 0; i < sizeof sockets / sizeof *sockets; i++) {
        char *p = vm_path(vm, sockets[i]);
        if (p)
            unlink(p);
        free(p);
    }
    int r = vm_commit(vm, "worker-died", next, NULL, remove);
    if (r == 0)
        remove_dead_memory_files(vm);
    return r;
}

static int open_dir(struct store *s, const char *dir, const char *name, bool wait,
                    struct vm **out)
{
    struct vm *vm = calloc(1, sizeof *vm);
    int r;
    if (!vm)
        return hvm_error(ENOMEM, "out of memory");
    vm->store = s;
    vm->lock_fd = -1;
    vm->name = strdup(name);
    vm->dir = strdup(dir);
    char *cfg = vm->dir ? path_join(vm->dir, "vm.json") : NULL;
    if (!cfg || access(cfg, F_OK) != 0) {
        free(cfg);
        r = hvm_error(ENOENT, "no VM named '%s'%s%s (see 'hvm vm list')", name,
                      s ? " in " : "", s ? s->root : "");
        goto fail;
    }
    free(cfg);
    /* Commands never wait for a VM (they say "busy"); the worker, which
     * must record how its VM ended, waits for the command holding it. */
    char *lock = path_join(vm->dir, "lock"), holder[400];
    vm->lock_fd = lock ? vm_lock_take(lock, wait ? VM_LOCK_FOREVER : VM_LOCK_TRY, holder,
                                      sizeof holder)
                       : hvm_error(ENOMEM, "out of memory");
    free(lock);
    if (vm->lock_fd == -EWOULDBLOCK) {
        r = hvm_error(EBUSY, "VM '%s' is busy: another hvm command is working on it (%s)", name,
                      holder);
        vm->lock_fd = -1;
        goto fail;
    }
    if (vm->lock_fd < 0) {
        r = vm->lock_fd;
        vm->lock_fd = -1;
        goto fail;
    }
    /* (vm.json is checked again after recovery: a finished journal's
     * clean-up may have changed it, see detect_dead_worker.) */
    if ((r = load_doc(vm)) < 0 || (r = vm_journal_recover(vm)) < 0 || (r = validate_doc(vm)) < 0 ||
        (r = detect_dead_worker(vm)) < 0)
        goto fail;
    /* A VM that is not running has nobody writing a memory state: whatever
     * a killed save or online checkpoint left half-written goes now (a
     * running VM's worker may be writing one; its death is handled above). */
    const char *state = vm_state(vm);
    if (strcmp(state, "Running") != 0 && strcmp(state, "Paused") != 0)
        remove_dead_memory_files(vm);
    *out = vm;
    return 0;
fail:
    vm_close(vm);
    return r;
}

int vm_open(struct store *s, const char *name, struct vm **out)
{
    if (!store_name_valid(name))
        return hvm_error(ENOENT, "no VM named '%s' in %s (see 'hvm vm list')", name, s->root);
    char *dir = store_vm_dir(s, name);
    if (!dir)
        return hvm_error(ENOMEM, "out of memory");
    int r = open_dir(s, dir, name, false, out);
    free(dir);
    return r;
}

int vm_open_dir(const char *dir, bool wait, struct vm **out)
{
    return open_dir(NULL, dir, path_basename(dir), wait, out);
}

void vm_close(struct vm *vm)
{
    if (!vm)
        return;
    /* Whatever this command made in the folder (layers, memory states,
     * vm.json) gets the store's modes, while the VM is still ours. */
    if (vm->lock_fd >= 0)
        vm_mode_tree(vm->dir);
    vm_lock_drop(vm->lock_fd);
    json_decref(vm->doc);
    free(vm->dir);
    free(vm->name);
    free(vm);
}

char *vm_new_disk_name(int slot)
{
    uint8_t id[16];
    char *out;
    uuid_generate_bytes(id);
    if (asprintf(&out, "disks/%d-%02x%02x%02x%02x.vhd", slot, id[0], id[1], id[2], id[3]) < 0)
        return NULL;
    return out;
}

void vm_random_mac(char out[18])
{
    uint8_t id[16];
    uuid_generate_bytes(id);
    /* 52:54:00 is the locally administered prefix QEMU/KVM guests use. */
    snprintf(out, 18, "52:54:00:%02x:%02x:%02x", id[0], id[1], id[2]);
}

void vm_now_string(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static int check_new_name(struct store *s, const char *name, char **dir)
{
    if (!store_name_valid(name))
        return hvm_error(EINVAL, "'%s' is not a valid VM name (no '/' or ',', not starting with '.' "
                         "or '-')", name ? name : "");
    *dir = store_vm_dir(s, name);
    if (!*dir)
        return hvm_error(ENOMEM, "out of memory");
    if (access(*dir, F_OK) == 0) {
        free(*dir);
        *dir = NULL;
        return hvm_error(EEXIST, "a VM named '%s' already exists", name);
    }
    return 0;
}

static int refuse_base_or_parent(struct store *s, const char *path)
{
    json_t *b = store_base_find(s, path);
    if (b) {
        json_decref(b);
        return hvm_error(EPERM, "%s is a registered base image: it cannot be attached directly "
                         "(its children would break); use --from %s to give the VM a "
                         "differencing disk on it", path, path);
    }
    if (disk_file_protected(path))
        return hvm_error(EPERM, "%s is read-only, protected as the parent of differencing disks: "
                         "attaching it would let the VM write it; use --from instead", path);
    return 0;
}

static json_t *new_doc(const char *name, const char *id_text, int cpus, uint64_t memory)
{
    char when[32];
    vm_now_string(when, sizeof when);
    /* disk_io: see vm_disk_io */
    return json_pack("{s:i, s:i, s:s, s:s, s:s, s:s, s:n, s:{s:i, s:I, s:[], s:[], s:s}, s:[], "
                     "s:{s:n}}",
                     "format", VM_FORMAT, "generation", 1, "id", id_text, "name", name,
                     "created", when, "state", "Off", "saved_memory", "config", "cpus", cpus,
                     "memory", (json_int_t)memory, "drives", "nics", "disk_io", "vhost-user",
                     "checkpoints", "now", "parent");
}

static int create_disk(const char *dir, const struct vm_create_params *p, json_t *drives)
{
    char *rel = vm_new_disk_name(0);
    char *abs = rel ? path_join(dir, rel) : NULL;
    int r = 0;
    if (!abs) {
        free(rel);
        return hvm_error(ENOMEM, "out of memory");
    }
    if (p->from) {
        r = disk_diff_create(p->from, abs, false);
    } else if (p->disk) {
        /* A VHDX becomes a dynamic VHD: VMs run on VHD for now. */
        if (disk_is_vhdx(p->disk))
            r = disk_convert(p->disk, abs, DISK_FORMAT_DYNAMIC, 0, NULL);
        else if ((r = disk_foreign_require_vhd(p->disk)) == 0)
            r = file_copy(p->disk, abs);
    } else if (p->new_disk) {
        struct vhd_create_params cp = {.type = VHD_TYPE_DYNAMIC, .size = p->new_disk};
        r = vhd_create(abs, &cp);
    } else {
        free(rel);
        free(abs);
        return 0;
    }
    if (r == 0)
        json_array_append_new(drives, json_pack("{s:i, s:s}", "slot", 0, "file", rel));
    free(rel);
    free(abs);
    return r;
}

/* A linked clone's drives: differencing children of the other VM's layers. */
static int create_clone_disks(const char *dir, const struct vm_create_params *p, json_t *drives)
{
    size_t i;
    json_t *d;
    json_array_foreach(p->clone_drives, i, d) {
        int slot = (int)json_integer_value(json_object_get(d, "slot"));
        char *rel = vm_new_disk_name(slot);
        char *abs = rel ? path_join(dir, rel) : NULL;
        int r = abs ? disk_diff_create(json_string_value(json_object_get(d, "layer")), abs, false)
                    : hvm_error(ENOMEM, "out of memory");
        if (r == 0)
            json_array_append_new(drives, json_pack("{s:i, s:s}", "slot", slot, "file", rel));
        free(rel);
        free(abs);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Registers the VM as a child of its base or of the layers it was cloned from. */
static int register_children(struct store *s, const struct vm_create_params *p, const char *id)
{
    int r = p->from ? store_base_add_child(s, p->from, id) : 0;
    size_t i;
    json_t *d;
    json_array_foreach(p->clone_drives, i, d)
        if (r == 0)
            r = store_base_add_child(s, json_string_value(json_object_get(d, "layer")), id);
    return r;
}

int vm_create(struct store *s, const struct vm_create_params *p)
{
    char *dir = NULL, *tmp = NULL;
    uint8_t id[16];
    char id_text[37];
    int r;

    if ((r = check_new_name(s, p->name, &dir)) < 0)
        return r;
    if (p->disk && (r = refuse_base_or_parent(s, p->disk)) < 0)
        goto out;
    const char *src = p->from ? p->from : p->disk;
    if (src && access(src, F_OK) != 0) {
        r = hvm_error(errno, "%s: %s", src, strerror(errno));
        goto out;
    }
    if (p->from && (r = disk_foreign_require_vhd(p->from)) < 0) {
        if (r == -EINVAL)
            r = hvm_error(EINVAL, "%s: a base must be a VHD", p->from);
        goto out;
    }
    uuid_generate_bytes(id);
    uuid_format(id, id_text);
    /* Built under a hidden temporary name and renamed into place: a crash
     * leaves no half-made VM under the real name. */
    if (asprintf(&tmp, "%s/.creating-%s-%d", s->vms, p->name, (int)getpid()) < 0) {
        tmp = NULL;
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    char *disks = path_join(tmp, "disks");
    char *cps = path_join(tmp, "checkpoints");
    if (mkdir(tmp, 0700) < 0 || mkdir(disks, 0750) < 0 || mkdir(cps, 0750) < 0)
        r = hvm_error(errno, "%s: %s", tmp, strerror(errno));
    free(disks);
    free(cps);
    if (r < 0)
        goto out;
    json_t *doc = new_doc(p->name, id_text, p->cpus > 0 ? p->cpus : 1,
                          p->memory ? p->memory : 1ull << 30);
    json_t *config = json_object_get(doc, "config");
    if ((r = create_disk(tmp, p, json_object_get(config, "drives"))) < 0 ||
        (r = create_clone_disks(tmp, p, json_object_get(config, "drives"))) < 0) {
        json_decref(doc);
        goto out;
    }
    const char *firmware = p->firmware ? p->firmware : VM_FIRMWARE_DEFAULT;
    bool uefi = strcmp(firmware, "uefi") == 0;
    if (!uefi && strcmp(firmware, "bios") != 0) {
        json_decref(doc);
        r = hvm_error(EINVAL, "--firmware must be bios or uefi, not '%s'", firmware);
        goto out;
    }
    if (!uefi && p->secure_boot) {
        json_decref(doc);
        r = hvm_error(EINVAL, "--secure-boot needs --firmware uefi");
        goto out;
    }
    char *vars = uefi ? vm_firmware_new_vars_name() : NULL;
    if (uefi && (!vars || (r = vm_firmware_vars_create(tmp, vars, p->clone_vars, p->secure_boot)) < 0)) {
        if (!vars)
            r = hvm_error(ENOMEM, "out of memory");
        free(vars);
        json_decref(doc);
        goto out;
    }
    json_object_set_new(config, "firmware", vm_firmware_object(uefi, vars, p->secure_boot));
    free(vars);
    size_t k;
    json_t *nic;
    json_array_foreach(p->clone_nics, k, nic)
        json_array_append(json_object_get(config, "nics"), nic);
    for (int i = 0; i < p->n_nics; i++)
        if (!store_switch_known(s, p->nics[i])) {
            json_decref(doc);
            r = hvm_error(ENOENT, "no switch '%s' on this host (switches.json of the store)", p->nics[i]);
            goto out;
        }
    for (int i = 0; i < p->n_nics; i++) {
        char mac[18];
        vm_random_mac(mac);
        json_array_append_new(json_object_get(config, "nics"),
                              json_pack("{s:s, s:s}", "switch", p->nics[i], "mac", mac));
    }
    if (p->from) {
        char abs[PATH_MAX];
        if (realpath(p->from, abs))
            json_object_set_new(doc, "base", json_string(abs));
    }
    /* What the user asked for ends up in it (adapters' switch names, the
     * memory size): never a document that the next open would refuse. */
    char *cfg = path_join(dir, "vm.json");
    r = cfg ? vm_doc_validate(doc, cfg) : hvm_error(ENOMEM, "out of memory");
    free(cfg);
    if (r < 0) {
        json_decref(doc);
        goto out;
    }
    r = store_json_replace(tmp, "vm.json", doc);
    json_decref(doc);
    /* (A crash from here to the rename leaves the registry naming a VM
     * that does not exist: store_recover removes it with the folder.) */
    if (r == 0)
        r = register_children(s, p, id_text);
    if (r == 0) {
        vm_mode_tree(tmp);
        r = path_rename_durable(tmp, dir);
    }
    if (r < 0 && (p->from || p->clone_drives))
        store_base_remove_child(s, id_text);
out:
    if (r < 0 && tmp)
        path_remove_tree(tmp);
    free(tmp);
    free(dir);
    return r;
}

bool vm_layer_cloned(struct vm *vm, const char *rel)
{
    char *path = vm->store ? vm_path(vm, rel) : NULL;
    json_t *e = path ? store_base_find(vm->store, path) : NULL;
    bool yes = json_array_size(json_object_get(e, "children")) > 0;
    json_decref(e);
    free(path);
    return yes;
}

int vm_refuse_if_cloned(struct vm *vm, const char *what)
{
    json_t *files = vm_referenced_files(vm->doc);
    size_t i;
    json_t *f;
    int r = 0;
    json_array_foreach(files, i, f)
        if (vm_layer_cloned(vm, json_string_value(f))) {
            r = hvm_error(EBUSY, "VM '%s' cannot be %s: linked clones are built on its layer %s "
                          "(see 'hvm base list'); delete those clones first", vm->name, what,
                          json_string_value(f));
            break;
        }
    json_decref(files);
    return r;
}

void vm_forget_layers(struct vm *vm, json_t *files)
{
    size_t i;
    json_t *f;
    if (!vm->store)
        return;
    json_array_foreach(files, i, f) {
        /* The file may be gone already: its folder's real path then. */
        char *path = vm_path(vm, json_string_value(f));
        char *dir = path ? path_dirname(path) : NULL;
        char *rdir = dir ? realpath(dir, NULL) : NULL;
        char *abs = rdir ? path_join(rdir, path_basename(path)) : NULL;
        if (abs)
            store_base_forget(vm->store, abs);
        free(abs);
        free(rdir);
        free(dir);
        free(path);
    }
    hvm_error_clear();
}

int vm_delete(struct store *s, const char *name)
{
    struct vm *vm;
    int r = vm_open(s, name, &vm);
    if (r < 0)
        return r;
    if (strcmp(vm_state(vm), "Running") == 0 || strcmp(vm_state(vm), "Paused") == 0) {
        vm_close(vm);
        return hvm_error(EBUSY, "VM '%s' is running: turn it off first", name);
    }
    if ((r = vm_refuse_if_cloned(vm, "deleted")) < 0) {
        vm_close(vm);
        return r;
    }
    json_t *files = vm_referenced_files(vm->doc);
    vm_forget_layers(vm, files);
    json_decref(files);
    char *tomb = NULL;
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(vm->doc, "id")));
    if (asprintf(&tomb, "%s/.deleting-%s-%d", s->vms, name, (int)getpid()) < 0) {
        vm_close(vm);
        return hvm_error(ENOMEM, "out of memory");
    }
    /* A moved or registered VM's entry is a link to its folder, which goes
     * too (the link last: store_recover follows a left-over one). */
    struct stat st;
    char *real = lstat(vm->dir, &st) == 0 && S_ISLNK(st.st_mode) ? realpath(vm->dir, NULL) : NULL;
    /* The rename makes the VM disappear at once; the files go after. */
    if (rename(vm->dir, tomb) < 0)
        r = hvm_error(errno, "%s: %s", vm->dir, strerror(errno));
    vm_close(vm);
    if (r == 0) {
        path_sync_dir(tomb);
        store_base_remove_child(s, id);
        chmod(tomb, 0755);
        /* Frozen layers are read-only files; rm works regardless as owner. */
        if (real)
            path_remove_tree(real);
        path_remove_tree(tomb);
    }
    free(real);
    free(tomb);
    return r;
}

int vm_rename(struct store *s, const char *name, const char *new_name)
{
    struct vm *vm;
    char *dir = NULL;
    int r = check_new_name(s, new_name, &dir);
    if (r < 0)
        return r;
    if ((r = vm_open(s, name, &vm)) < 0) {
        free(dir);
        return r;
    }
    /* The folder name is the VM's name; vm.json's copy follows it. Linked
     * clones point at layers inside the folder: it cannot move under them. */
    r = vm_refuse_if_cloned(vm, "renamed");
    if (r == 0 && rename(vm->dir, dir) < 0) {
        r = hvm_error(errno, "%s: %s", dir, strerror(errno));
    } else if (r == 0) {
        free(vm->dir);
        vm->dir = dir;
        dir = NULL;
        json_t *next = json_deep_copy(vm->doc);
        json_object_set_new(next, "name", json_string(new_name));
        r = vm_commit(vm, "rename", next, NULL, NULL);
    }
    free(dir);
    vm_close(vm);
    return r;
}
