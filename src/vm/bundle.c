/* Export and import (see bundle.h).
 *
 * Export builds the bundle under a temporary name beside DEST and renames
 * it into place when complete, so DEST is never half-written. Import
 * validates everything before touching the store, copies into a hidden
 * temporary folder of the store and renames it into place; it never follows
 * a path that leaves the bundle: configuration paths must be plain relative
 * paths inside it, symlinks are refused, and parents are found through the
 * manifest's chain graph (checked against the disks' own ids), never
 * through the parent locators, which are rewritten to point inside. */
#include "vm/bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "disk/ops.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/hashpool.h"
#include "util/sha256.h"
#include "util/uuid.h"
#include "vhd/image.h"
#include "vm/checkpoint.h"
#include "vm/firmware.h"
#include "vm/modes.h"
#include "vm/validate.h"

/* ---- progress over many files ---- */

struct copy_progress {
    const struct bundle_progress *p;
    uint64_t base, total;
    struct hash_job *hash; /* the copy's hash, following it */
};

static void file_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct copy_progress *cp = opaque;
    (void)total;
    if (cp->p && cp->p->fn)
        cp->p->fn(cp->p->opaque, cp->base + done, cp->total);
}

static void file_written(void *opaque, const char *path, uint64_t upto)
{
    struct copy_progress *cp = opaque;
    hash_follow_advance(cp->hash, path, upto);
}

/* Copies into a bundle being built: no sync per file (publish_tree syncs the
 * whole folder once before it is renamed into place) and, when a hash pool is
 * given, the copy hashed (the manifest's SHA-256, or the check of an import
 * against it): the copy is what the bundle or the store holds. A pool
 * thread hashes what the copy has written as it goes, from the page cache,
 * so that on a cold cache hashing hides behind the reads instead of
 * following them. */
static int bundle_copy(const char *from, const char *to, struct copy_progress *cp,
                       struct hash_pool *hashing, const char *rel)
{
    struct file_copy_options o = {.progress = file_progress, .opaque = cp, .no_sync = true};
    if (hashing) {
        if (!(cp->hash = hash_pool_follow(hashing, rel)))
            return -ENOMEM;
        o.written = file_written;
    }
    int r = file_copy_with(from, to, &o);
    if (hashing) {
        struct stat st;
        if (r == 0 && stat(to, &st) < 0)
            r = hvm_error(errno, "%s: %s", to, strerror(errno));
        hash_follow_end(cp->hash, r == 0 ? (uint64_t)st.st_size : 0, r);
        cp->hash = NULL;
    }
    return r;
}

/* Two hashing threads: with the copy in the kernel, two cores are busy. */
enum { HASH_THREADS = 2 };

static void hash_into(void *opaque, const char *rel, const char *hex)
{
    json_object_set_new(opaque, rel, json_string(hex));
}

/* Waits for the queued hashes and records them in hashes (rel -> hex). */
static int hashes_collect(struct hash_pool *hashing, json_t *hashes, int r)
{
    int h = hash_pool_finish(hashing, hash_into, hashes);
    return r < 0 ? r : h;
}

/* Finishes a folder built under a temporary name: one syncfs for all that
 * was written in it, the rename into place (the commit point) and the
 * parent folder made durable. When r (the result of building it) or any
 * of this fails, the temporary folder goes and the first error is the one
 * reported. */
static int publish_tree(const char *tmp, const char *dest, int r)
{
    if (r == 0)
        vm_mode_tree(tmp); /* an export or import has the store's modes */
    if (r == 0) {
        int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) < 0)
            r = hvm_error(errno, "%s: sync: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (r == 0)
        r = path_rename_durable(tmp, dest);
    if (r < 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hvm_error_message());
        path_remove_tree(tmp);
        r = hvm_error(-r, "%s", msg);
    }
    return r;
}

static uint64_t allocated_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static int check_space(const char *dest, uint64_t need)
{
    char *dir = path_dirname(dest);
    struct statvfs sv;
    int r = 0;
    if (dir && statvfs(dir, &sv) == 0) {
        uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        if (avail < need + (64u << 20))
            r = hvm_error(ENOSPC, "%s: not enough free space (%llu MiB needed, %llu MiB free)",
                          dir, (unsigned long long)(need >> 20), (unsigned long long)(avail >> 20));
    }
    free(dir);
    return r;
}

/* The configurations of a document: now's, then each checkpoint's (a new
 * array holding them). */
static json_t *doc_configs(json_t *doc)
{
    json_t *v = json_array();
    size_t i;
    json_t *c;
    if (json_is_object(json_object_get(doc, "config")))
        json_array_append(v, json_object_get(doc, "config"));
    json_array_foreach(json_object_get(doc, "checkpoints"), i, c)
        if (json_is_object(json_object_get(c, "config")))
            json_array_append(v, json_object_get(c, "config"));
    return v;
}

static const char *const boot_files[] = {"kernel", "initrd"};

/* ---- export ---- */

/* A free bundle name boot/NAME for a boot file (taken: the names given). */
static char *boot_name(json_t *taken, const char *real)
{
    for (int i = 0;; i++) {
        char *name;
        if ((i == 0 ? asprintf(&name, "boot/%s", path_basename(real))
                    : asprintf(&name, "boot/%d-%s", i, path_basename(real))) < 0)
            return NULL;
        const char *k;
        json_t *v;
        bool used = false;
        json_object_foreach(taken, k, v)
            used |= strcmp(json_string_value(v), name) == 0;
        if (!used)
            return name;
        free(name);
    }
}

/* The kernel and initrd of direct kernel boot travel in the bundle under
 * boot/, as an importer never takes a host path from a bundle; configurations
 * that share a file share its copy. A file that is gone is left out. */
static int export_boot_files(struct vm *vm, const char *tmp, json_t *doc, json_t *files)
{
    json_t *configs = doc_configs(doc), *given = json_object(), *c;
    size_t i;
    int r = 0;
    json_array_foreach(configs, i, c) {
        json_t *boot = json_object_get(c, "boot");
        for (size_t b = 0; b < 2 && r == 0; b++) {
            const char *f = json_string_value(json_object_get(boot, boot_files[b]));
            char *abs = f ? vm_path(vm, f) : NULL;
            char *real = abs ? realpath(abs, NULL) : NULL;
            free(abs);
            if (!real) {
                json_object_del(boot, boot_files[b]);
                continue;
            }
            if (!json_object_get(given, real)) {
                char *name = boot_name(given, real);
                char *to = name ? path_join(tmp, name) : NULL;
                char *dir = to ? path_dirname(to) : NULL;
                struct copy_progress cp = {NULL, 0, 0, NULL};
                r = dir ? path_mkdirs(dir) : hvm_error(ENOMEM, "out of memory");
                if (r == 0)
                    r = bundle_copy(real, to, &cp, NULL, name);
                if (r == 0) {
                    json_object_set_new(given, real, json_string(name));
                    json_array_append_new(files, json_string(name));
                }
                free(name);
                free(to);
                free(dir);
            }
            if (r == 0)
                json_object_set(boot, boot_files[b], json_object_get(given, real));
            free(real);
        }
    }
    json_decref(configs);
    json_decref(given);
    return r;
}

struct layer {
    char *abs;    /* where it is */
    char *rel;    /* where it goes in the bundle */
    char *parent; /* bundle path of its parent, or NULL */
};

struct layers {
    struct layer *v;
    size_t n;
};

static struct layer *layers_find(struct layers *ls, const char *abs)
{
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->v[i].abs, abs) == 0)
            return &ls->v[i];
    return NULL;
}

static void layers_free(struct layers *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        free(ls->v[i].abs);
        free(ls->v[i].rel);
        free(ls->v[i].parent);
    }
    free(ls->v);
}

/* A bundle name for a layer: its VM-relative path when inside the VM
 * folder, else bases/<file name> (made unique). */
static char *bundle_name(struct vm *vm, struct layers *ls, const char *abs)
{
    size_t n = strlen(vm->dir);
    if (strncmp(abs, vm->dir, n) == 0 && abs[n] == '/')
        return strdup(abs + n + 1);
    char *name;
    for (int i = 0;; i++) {
        if (i == 0 ? asprintf(&name, "bases/%s", path_basename(abs)) < 0
                   : asprintf(&name, "bases/%d-%s", i, path_basename(abs)) < 0)
            return NULL;
        bool taken = false;
        for (size_t k = 0; k < ls->n; k++)
            taken |= strcmp(ls->v[k].rel, name) == 0;
        if (!taken)
            return name;
        free(name);
    }
}

/* Adds a layer file and its whole chain below it. A layer already known
 * came with its chain, opened and checked then: Now's leaf goes first and
 * brings the layers of every checkpoint on its branch, so each chain is
 * opened once, not once per checkpoint. */
static int collect_chain(struct vm *vm, struct layers *ls, const char *path)
{
    char *known = realpath(path, NULL);
    bool skip = known && layers_find(ls, known);
    free(known);
    if (skip)
        return 0;
    struct disk *d;
    int r = disk_open(path, DISK_OPEN_READ_ONLY, &d);
    if (r < 0)
        return r;
    for (struct disk *l = d; l; l = l->parent) {
        char *abs = realpath(l->path, NULL);
        if (!abs) {
            r = hvm_error(errno, "%s: %s", l->path, strerror(errno));
            break;
        }
        if (layers_find(ls, abs)) {
            free(abs);
            break; /* the rest of this chain is known already */
        }
        struct layer *grown = realloc(ls->v, (ls->n + 1) * sizeof *grown);
        if (!grown) {
            free(abs);
            r = hvm_error(ENOMEM, "out of memory");
            break;
        }
        ls->v = grown;
        struct layer *L = &ls->v[ls->n];
        L->abs = abs;
        L->rel = bundle_name(vm, ls, abs);
        L->parent = NULL;
        ls->n++;
        if (l->parent) {
            char *pabs = realpath(l->parent->path, NULL);
            /* Parent's bundle name is decided when it is added (next loop
             * turn); remember its absolute path for now. */
            L->parent = pabs;
        }
    }
    disk_close(d);
    return r;
}

static json_t *manifest_entry(const char *root, const char *rel, json_t *hashes, int *err)
{
    char *path = path_join(root, rel);
    char hex[65];
    struct stat st;
    json_t *e = NULL;
    const char *known = json_string_value(json_object_get(hashes, rel));
    if (known)
        snprintf(hex, sizeof hex, "%s", known);
    if (!path || stat(path, &st) < 0 || (!known && (*err = sha256_file(path, hex, NULL, NULL)) < 0)) {
        if (!*err)
            *err = hvm_error(errno ? errno : ENOMEM, "%s: %s", rel, strerror(errno));
    } else {
        e = json_pack("{s:s, s:I, s:s}", "path", rel, "size", (json_int_t)st.st_size, "sha256", hex);
    }
    free(path);
    return e;
}

static void rewrite_config_files(json_t *config, struct layers *ls, struct vm *vm)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d) {
        char *abs = vm_path(vm, json_string_value(json_object_get(d, "file")));
        char *real = abs ? realpath(abs, NULL) : NULL;
        struct layer *L = real ? layers_find(ls, real) : NULL;
        if (L)
            json_object_set_new(d, "file", json_string(L->rel));
        free(abs);
        free(real);
    }
}

/* Files copied as they are (memory states, UEFI variable stores), not
 * followed as disk chains. */
static bool plain_file(const char *rel)
{
    return strncmp(rel, "checkpoints/", 12) == 0 || strncmp(rel, "nvram/", 6) == 0;
}

static int export_tree(struct vm *vm, const char *tmp, json_t *doc, json_t *files,
                       json_t *hashes, const struct export_params *p)
{
    struct layers ls = {0};
    json_t *refs = vm_referenced_files(doc);
    size_t i;
    json_t *f;
    int r = 0;
    /* Every layer of every chain, then memory states. */
    json_array_foreach(refs, i, f) {
        const char *rel = json_string_value(f);
        if (plain_file(rel))
            continue;
        char *abs = vm_path(vm, rel);
        r = collect_chain(vm, &ls, abs);
        free(abs);
        if (r < 0)
            goto out;
    }
    for (size_t k = 0; k < ls.n; k++)
        if (ls.v[k].parent) {
            struct layer *P = layers_find(&ls, ls.v[k].parent);
            free(ls.v[k].parent);
            ls.v[k].parent = P ? strdup(P->rel) : NULL;
        }
    uint64_t total = 0;
    for (size_t k = 0; k < ls.n; k++)
        total += allocated_bytes(ls.v[k].abs);
    json_array_foreach(refs, i, f)
        if (plain_file(json_string_value(f))) {
            char *abs = vm_path(vm, json_string_value(f));
            total += allocated_bytes(abs);
            free(abs);
        }
    if ((r = check_space(p->dest, total)) < 0)
        goto out;
    struct copy_progress cp = {p->progress, 0, total, NULL};
    struct hash_pool *hashing = hash_pool_start(HASH_THREADS);
    if (!hashing) {
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < ls.n && r == 0; k++) {
        char *to = path_join(tmp, ls.v[k].rel);
        char *dir = to ? path_dirname(to) : NULL;
        if (!to || !dir || (r = path_mkdirs(dir)) < 0 ||
            (r = bundle_copy(ls.v[k].abs, to, &cp, hashing, ls.v[k].rel)) < 0) {
            free(to);
            free(dir);
            break;
        }
        cp.base += allocated_bytes(ls.v[k].abs);
        free(to);
        free(dir);
    }
    json_array_foreach(refs, i, f) {
        const char *rel = json_string_value(f);
        if (r < 0 || !plain_file(rel))
            continue;
        char *from = vm_path(vm, rel), *to = path_join(tmp, rel);
        char *dir = to ? path_dirname(to) : NULL; /* (nvram/) */
        r = from && dir ? path_mkdirs(dir) : hvm_error(ENOMEM, "out of memory");
        if (r == 0)
            r = bundle_copy(from, to, &cp, hashing, rel);
        free(from);
        free(to);
        free(dir);
        if (r == 0)
            json_array_append_new(files, json_string(rel));
    }
    if ((r = hashes_collect(hashing, hashes, r)) < 0)
        goto out;
    /* Layers whose parent lived outside the VM folder now point at the
     * copy in bases/ (the relative locator is what an importer follows). */
    for (size_t k = 0; k < ls.n && r == 0; k++) {
        json_array_append_new(files, json_string(ls.v[k].rel));
        if (!ls.v[k].parent || strncmp(ls.v[k].parent, "bases/", 6) != 0)
            continue;
        char *child = path_join(tmp, ls.v[k].rel), *parent = path_join(tmp, ls.v[k].parent);
        json_object_del(hashes, ls.v[k].rel); /* changed: hashed again for the manifest */
        r = disk_set_parent(child, parent, false);
        free(child);
        free(parent);
    }
    /* The configuration, with paths into the bundle. */
    rewrite_config_files(json_object_get(doc, "config"), &ls, vm);
    json_array_foreach(json_object_get(doc, "checkpoints"), i, f)
        rewrite_config_files(json_object_get(f, "config"), &ls, vm);
    if (json_is_string(json_object_get(doc, "base"))) {
        char *real = realpath(json_string_value(json_object_get(doc, "base")), NULL);
        struct layer *L = real ? layers_find(&ls, real) : NULL;
        json_object_set_new(doc, "base", L ? json_string(L->rel) : json_null());
        free(real);
    }
    json_t *graph = json_array();
    for (size_t k = 0; k < ls.n; k++)
        json_array_append_new(graph, json_pack("{s:s, s:s?}", "file", ls.v[k].rel, "parent",
                                               ls.v[k].parent));
    /* A running VM's export: now is the moment of the live checkpoint, on
     * fresh leaves made inside the bundle. */
    if (p->live_checkpoint) {
        json_array_foreach(json_object_get(json_object_get(doc, "config"), "drives"), i, f) {
            const char *frozen = json_string_value(json_object_get(f, "file"));
            char *leaf = vm_new_disk_name((int)json_integer_value(json_object_get(f, "slot")));
            char *pabs = path_join(tmp, frozen), *cabs = leaf ? path_join(tmp, leaf) : NULL;
            if (r == 0)
                r = (pabs && cabs) ? disk_diff_create(pabs, cabs, false) : hvm_error(ENOMEM, "out of memory");
            if (r == 0) {
                json_array_append_new(graph, json_pack("{s:s, s:s}", "file", leaf, "parent", frozen));
                json_array_append_new(files, json_string(leaf));
                json_object_set_new(f, "file", json_string(leaf));
            }
            free(leaf);
            free(pabs);
            free(cabs);
        }
    }
    json_object_set_new(doc, "__chains", graph);
out:
    json_decref(refs);
    layers_free(&ls);
    return r;
}

/* Export one moment (a checkpoint, or now) with each chain flattened. */
static int export_flat(struct vm *vm, const char *tmp, json_t *doc, json_t *files,
                       const struct export_params *p)
{
    json_t *config = json_object_get(doc, "config");
    const char *memory = json_string_value(json_object_get(doc, "saved_memory"));
    int r = 0;
    if (p->checkpoint) {
        json_t *cp = vm_checkpoint_find(vm, p->checkpoint, &r);
        if (!cp)
            return r;
        json_object_set_new(doc, "config", json_deep_copy(json_object_get(cp, "config")));
        config = json_object_get(doc, "config");
        memory = json_string_value(json_object_get(cp, "memory"));
    }
    uint64_t total = 0;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d) {
        char *abs = vm_path(vm, json_string_value(json_object_get(d, "file")));
        struct disk *disk;
        if (abs && disk_open(abs, DISK_OPEN_READ_ONLY, &disk) == 0) {
            for (struct disk *l = disk; l; l = l->parent)
                total += allocated_bytes(l->path);
            disk_close(disk);
        }
        free(abs);
    }
    if ((r = check_space(p->dest, total)) < 0)
        return r;
    json_t *graph = json_array();
    json_array_foreach(json_object_get(config, "drives"), i, d) {
        char *from = vm_path(vm, json_string_value(json_object_get(d, "file")));
        char *rel = vm_new_disk_name((int)json_integer_value(json_object_get(d, "slot")));
        char *to = rel ? path_join(tmp, rel) : NULL;
        struct disk_progress dp = {p->progress ? p->progress->fn : NULL,
                                   p->progress ? p->progress->opaque : NULL};
        r = (from && to) ? disk_convert(from, to, DISK_FORMAT_DYNAMIC, 0, &dp)
                         : hvm_error(ENOMEM, "out of memory");
        if (r == 0) {
            json_object_set_new(d, "file", json_string(rel));
            json_array_append_new(files, json_string(rel));
            json_array_append_new(graph, json_pack("{s:s, s:n}", "file", rel, "parent"));
        }
        free(from);
        free(rel);
        free(to);
        if (r < 0) {
            json_decref(graph);
            return r;
        }
    }
    /* The moment's UEFI variable store, under its own name. */
    const char *vars = vm_firmware_vars(config);
    if (vars) {
        char *from = vm_path(vm, vars), *to = path_join(tmp, vars);
        char *dir = to ? path_dirname(to) : NULL;
        r = from && to && dir ? path_mkdirs(dir) : hvm_error(ENOMEM, "out of memory");
        if (r == 0)
            r = file_copy(from, to);
        if (r == 0)
            json_array_append_new(files, json_string(vars));
        free(from);
        free(to);
        free(dir);
        if (r < 0) {
            json_decref(graph);
            return r;
        }
    }
    json_object_set_new(doc, "__chains", graph);
    json_object_set_new(doc, "checkpoints", json_array());
    json_object_set_new(json_object_get(doc, "now"), "parent", json_null());
    json_object_del(doc, "base");
    json_object_set_new(doc, "saved_memory", json_null());
    json_object_set_new(doc, "state", json_string("Off"));
    if (memory) {
        char *from = vm_path(vm, memory), *to = path_join(tmp, "checkpoints/saved.state");
        r = file_copy(from, to);
        free(from);
        free(to);
        if (r == 0) {
            json_object_set_new(doc, "saved_memory", json_string("checkpoints/saved.state"));
            json_object_set_new(doc, "state", json_string("Saved"));
            json_array_append_new(files, json_string("checkpoints/saved.state"));
        }
    }
    return r;
}

/* Writes dir/name. Inside a folder being built (synced_later: publish_tree
 * syncs it once before its rename) the file is written plainly, as each
 * fsync would cost a journal commit; elsewhere it is replaced durably. */
static int write_json(const char *dir, const char *name, json_t *doc, bool synced_later)
{
    if (!synced_later)
        return store_json_replace(dir, name, doc);
    char *path = path_join(dir, name);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int r = 0;
    if (!path || !text) {
        r = hvm_error(ENOMEM, "out of memory");
    } else {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        r = fd < 0 ? hvm_error(errno, "%s: %s", path, strerror(errno))
                   : file_pwrite(fd, path, text, strlen(text), 0);
        if (fd >= 0)
            close(fd);
    }
    free(path);
    free(text);
    return r;
}

int vm_export(struct vm *vm, const struct export_params *p)
{
    char *tmp = NULL;
    int r;
    if (access(p->dest, F_OK) == 0)
        return hvm_error(EEXIST, "%s: already exists", p->dest);
    if (!p->live_checkpoint &&
        (strcmp(vm_state(vm), "Running") == 0 || strcmp(vm_state(vm), "Paused") == 0))
        return hvm_error(EBUSY, "VM '%s' is running: its leaves are being written", vm->name);
    path_remove_stale(p->dest, ".exporting-");
    if (asprintf(&tmp, "%s.exporting-%d", p->dest, (int)getpid()) < 0)
        return hvm_error(ENOMEM, "out of memory");
    char *disks = path_join(tmp, "disks"), *cps = path_join(tmp, "checkpoints");
    r = path_mkdirs(disks);
    if (r == 0)
        r = path_mkdirs(cps);
    free(disks);
    free(cps);
    json_t *doc = json_deep_copy(vm->doc), *files = json_array(), *hashes = json_object();
    if (r == 0 && p->live_checkpoint) {
        /* Now := the live checkpoint, Saved with its memory; the node itself
         * is kept hidden (its layers are the leaves' parents). */
        json_t *cp = vm_checkpoint_by_id(doc, p->live_checkpoint);
        if (!cp) {
            r = hvm_error(ENOENT, "%s: no checkpoint %s", vm->name, p->live_checkpoint);
        } else {
            json_object_set_new(doc, "config", json_deep_copy(json_object_get(cp, "config")));
            json_object_set(doc, "saved_memory", json_object_get(cp, "memory"));
            json_object_set_new(doc, "state", json_string("Saved"));
            json_object_del(doc, "runtime");
            json_object_set_new(cp, "hidden", json_true());
            json_object_set_new(cp, "memory", json_null());
            json_object_set_new(json_object_get(doc, "now"), "parent", json_string(p->live_checkpoint));
        }
    }
    if (r == 0)
        r = (p->flatten || p->checkpoint) ? export_flat(vm, tmp, doc, files, p)
                                          : export_tree(vm, tmp, doc, files, hashes, p);
    json_t *chains = json_incref(json_object_get(doc, "__chains"));
    json_object_del(doc, "__chains");
    if (r == 0)
        r = export_boot_files(vm, tmp, doc, files);
    if (r == 0)
        r = write_json(tmp, "vm.json", doc, true);
    if (r == 0) {
        json_array_append_new(files, json_string("vm.json"));
        json_t *entries = json_array();
        size_t i;
        json_t *f;
        json_array_foreach(files, i, f) {
            json_t *e = manifest_entry(tmp, json_string_value(f), hashes, &r);
            if (!e)
                break;
            json_array_append_new(entries, e);
        }
        char when[32];
        vm_now_string(when, sizeof when);
        json_t *manifest = json_pack("{s:i, s:s, s:{s:O, s:O}, s:s, s:o, s:O}", "format",
                                     BUNDLE_FORMAT, "kind", "hvm-vm-export", "vm", "id",
                                     json_object_get(doc, "id"), "name", json_object_get(doc, "name"),
                                     "exported", when, "files", entries, "chains",
                                     chains ? chains : json_null());
        if (r == 0)
            r = write_json(tmp, "manifest.json", manifest, true);
        json_decref(manifest);
    }
    json_decref(chains);
    json_decref(doc);
    json_decref(files);
    json_decref(hashes);
    r = publish_tree(tmp, p->dest, r);
    free(tmp);
    return r;
}

/* ---- import ---- */

/* What a VM folder holds that acts on the host when hvm next opens it: a
 * journal is replayed, a lock taken, run/ read as a running VM's state.
 * A bundle never holds one; one in a bundle is refused outright. */
static bool reserved_name(const char *rel)
{
    static const char *const names[] = {"journal", "lock", "run"};
    size_t n = strcspn(rel, "/");
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && strncmp(rel, names[i], n) == 0)
            return true;
    return false;
}

static void problem_reserved(json_t *out, const char *rel)
{
    char msg[600];
    snprintf(msg, sizeof msg, "%.*s: a bundle never holds a VM's journal, lock or run/ folder "
             "(hvm would act on them on this host): refused", (int)strcspn(rel, "/"), rel);
    if (!vm_list_has(out, msg))
        vm_problem(out, "%s", msg);
}

/* A bundle is vm.json, manifest.json and disks/, bases/, checkpoints/,
 * boot/ one level deep: deeper folders are not a bundle, and a limit keeps
 * the walk (and the paths it builds) bounded. */
enum { SCAN_DEPTH_MAX = 16, SCAN_FILES_MAX = 100000 };

/* Lists one folder of the bundle (rel, "" for the top) into seen, queueing
 * its sub-folders on todo. */
static void scan_folder(const char *root, const char *rel, int depth, json_t *out, json_t *seen,
                        json_t *todo)
{
    char *dir = rel[0] ? path_join(root, rel) : strdup(root);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *sub = NULL, *abs = NULL;
        struct stat st;
        if (asprintf(&sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) < 0)
            break;
        if (depth == 0 && reserved_name(sub))
            problem_reserved(out, sub);
        else if (json_array_size(seen) >= SCAN_FILES_MAX)
            ; /* reported once by scan_tree */
        else if ((abs = path_join(root, sub)) && lstat(abs, &st) == 0) {
            if (S_ISLNK(st.st_mode))
                vm_problem(out, "%s is a symbolic link: links are never followed out of a bundle", sub);
            else if (S_ISDIR(st.st_mode) && depth + 1 >= SCAN_DEPTH_MAX)
                vm_problem(out, "%s: folders nested more than %d deep: not a bundle", sub, SCAN_DEPTH_MAX);
            else if (S_ISDIR(st.st_mode))
                json_array_append_new(todo, json_pack("{s:s, s:i}", "rel", sub, "depth", depth + 1));
            else if (S_ISREG(st.st_mode))
                json_array_append_new(seen, json_string(sub));
            else
                vm_problem(out, "%s is not a regular file", sub);
        }
        free(abs);
        free(sub);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* Every regular file of the bundle into seen; symlinks, other kinds of
 * file, reserved names and folders past the depth limit are problems. A
 * work list, not recursion: a hostile bundle decides how deep it goes. */
static void scan_tree(const char *root, json_t *out, json_t *seen)
{
    json_t *todo = json_array();
    json_array_append_new(todo, json_pack("{s:s, s:i}", "rel", "", "depth", 0));
    while (json_array_size(todo)) {
        size_t last = json_array_size(todo) - 1;
        json_t *f = json_incref(json_array_get(todo, last));
        json_array_remove(todo, last);
        scan_folder(root, json_string_value(json_object_get(f, "rel")),
                    (int)json_integer_value(json_object_get(f, "depth")), out, seen, todo);
        json_decref(f);
    }
    json_decref(todo);
    if (json_array_size(seen) >= SCAN_FILES_MAX)
        vm_problem(out, "more than %d files: not a bundle", SCAN_FILES_MAX);
}

static void check_config_paths(json_t *config, const char *what, json_t *listed, json_t *out)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d) {
        const char *f = json_string_value(json_object_get(d, "file"));
        if (!path_is_safe_relative(f))
            vm_problem(out, "%s: drive path '%s' leaves the bundle", what, f ? f : "(none)");
        else if (!vm_list_has(listed, f))
            vm_problem(out, "%s: drive %s is not a disk of the bundle (manifest and chain graph)", what, f);
    }
    const char *vars = vm_firmware_vars(config);
    if (vars && (!path_is_safe_relative(vars) || !vm_list_has(listed, vars)))
        vm_problem(out, "%s: UEFI variable store '%s' is not a file of the bundle", what, vars);
}

/* The chain graph: each differencing layer's parent is the bundle file the
 * manifest names, proven by unique id and size; nothing else is consulted. */
static void check_chains(const char *root, json_t *chains, json_t *listed, json_t *out)
{
    size_t i;
    json_t *c;
    json_array_foreach(chains, i, c) {
        const char *f = json_string_value(json_object_get(c, "file"));
        const char *parent = json_string_value(json_object_get(c, "parent"));
        if (!path_is_safe_relative(f) || !vm_list_has(listed, f)) {
            vm_problem(out, "chain entry '%s' is not a file of the bundle", f ? f : "?");
            continue;
        }
        char *abs = path_join(root, f);
        struct disk *d;
        if (disk_open(abs, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &d) < 0) {
            vm_problem(out, "%s", hvm_error_message());
            free(abs);
            continue;
        }
        struct vhd *v = disk_vhd_image(d);
        bool diff = v && v->footer.type == VHD_TYPE_DIFF;
        if (diff && !parent) {
            char *name = vhd_parent_name(v);
            vm_problem(out, "%s is a differencing disk whose parent (%s) is not in the bundle", f,
                    name ? name : "?");
            free(name);
        } else if (!diff && parent) {
            vm_problem(out, "%s: the manifest gives it a parent but it is not a differencing disk", f);
        } else if (diff) {
            if (!path_is_safe_relative(parent) || !vm_list_has(listed, parent)) {
                vm_problem(out, "%s: its parent '%s' is not a file of the bundle", f, parent);
            } else {
                char *pabs = path_join(root, parent);
                struct disk *pd;
                if (disk_open(pabs, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &pd) < 0) {
                    vm_problem(out, "%s", hvm_error_message());
                } else {
                    struct vhd *pv = disk_vhd_image(pd);
                    if (!pv || memcmp(pv->footer.unique_id, v->header.parent_id, 16) != 0)
                        vm_problem(out, "%s: %s is not its parent (unique id differs)", f, parent);
                    else if (pd->size != d->size)
                        vm_problem(out, "%s: its parent %s has another size", f, parent);
                    disk_close(pd);
                }
                free(pabs);
            }
        }
        disk_close(d);
        free(abs);
    }
}

/* Every drive and every parent named in the chains has its own chain entry:
 * a layer without one would be opened through its own parent locators,
 * which may lead out of the bundle. */
static bool in_chains(json_t *chains, const char *f)
{
    size_t i;
    json_t *c;
    json_array_foreach(chains, i, c)
        if (f && strcmp(json_string_value(json_object_get(c, "file")) ?: "", f) == 0)
            return true;
    return false;
}

static void check_chain_coverage(json_t *doc, json_t *chains, json_t *out)
{
    json_t *need = json_array();
    size_t i, k;
    json_t *c, *d;
    json_array_foreach(json_object_get(json_object_get(doc, "config"), "drives"), k, d)
        json_array_append(need, json_object_get(d, "file"));
    json_array_foreach(json_object_get(doc, "checkpoints"), i, c)
        json_array_foreach(json_object_get(json_object_get(c, "config"), "drives"), k, d)
            json_array_append(need, json_object_get(d, "file"));
    json_array_foreach(chains, i, c)
        if (json_is_string(json_object_get(c, "parent")))
            json_array_append(need, json_object_get(c, "parent"));
    json_t *told = json_array();
    json_array_foreach(need, i, c) {
        const char *f = json_string_value(c);
        if (f && !in_chains(chains, f) && !vm_list_has(told, f)) {
            vm_problem(out, "%s has no entry in the manifest's chain graph (its parents are unknown)", f);
            json_array_append_new(told, json_string(f));
        }
    }
    json_decref(told);
    json_decref(need);
}

static json_t *load_json(const char *root, const char *name, json_t *out)
{
    char *path = path_join(root, name);
    struct stat st;
    json_error_t err;
    json_t *doc = NULL;
    if (!path || lstat(path, &st) < 0)
        vm_problem(out, "%s: missing", name);
    else if (!S_ISREG(st.st_mode)) /* (scan_tree says what it is) */
        vm_problem(out, "%s: not a regular file", name);
    else if (!(doc = json_load_file(path, 0, &err)))
        vm_problem(out, "%s: %s", name, err.text);
    free(path);
    return doc;
}

/* A boot file that travels in the bundle: a plain path under boot/. */
static bool bundle_boot_file(const char *rel)
{
    return rel && strncmp(rel, "boot/", 5) == 0 && path_is_safe_relative(rel);
}

/* The files a bundle may contain, and so the only ones import copies:
 * vm.json, manifest.json, the layers the chain graph names, the memory
 * states the document names and boot files under boot/. */
static json_t *bundle_allowed(json_t *doc, json_t *manifest)
{
    json_t *ok = json_pack("[s, s]", "vm.json", "manifest.json");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(manifest, "chains"), i, c) {
        json_t *f = json_object_get(c, "file"), *parent = json_object_get(c, "parent");
        if (json_is_string(f))
            json_array_append(ok, f);
        if (json_is_string(parent))
            json_array_append(ok, parent);
    }
    json_array_foreach(json_object_get(doc, "checkpoints"), i, c)
        if (json_is_string(json_object_get(c, "memory")))
            json_array_append(ok, json_object_get(c, "memory"));
    if (json_is_string(json_object_get(doc, "saved_memory")))
        json_array_append(ok, json_object_get(doc, "saved_memory"));
    json_t *configs = doc_configs(doc);
    json_array_foreach(configs, i, c) {
        const char *vars = vm_firmware_vars(c);
        if (vars && path_is_safe_relative(vars))
            json_array_append_new(ok, json_string(vars));
    }
    json_array_foreach(configs, i, c)
        for (size_t b = 0; b < 2; b++) {
            json_t *v = json_object_get(json_object_get(c, "boot"), boot_files[b]);
            if (bundle_boot_file(json_string_value(v)))
                json_array_append(ok, v);
        }
    json_decref(configs);
    return ok;
}

/* A kernel or initrd is never taken from a host path a bundle names (it
 * would be read as root and land in guest memory): only one that travels
 * in the bundle (boot/, in the manifest) is kept; others are dropped from
 * the document, each with a note. */
static void drop_host_boot_files(json_t *doc, json_t *listed, json_t *notes)
{
    size_t i;
    json_t *c;
    json_t *boot = json_object_get(json_object_get(doc, "config"), "boot");
    for (size_t b = 0; b < 2; b++) {
        const char *f = json_string_value(json_object_get(boot, boot_files[b]));
        if (json_object_get(boot, boot_files[b]) && !(bundle_boot_file(f) && vm_list_has(listed, f))) {
            vm_problem(notes, "vm.json: config.boot.%s '%s' is not a file of the bundle: not imported "
                       "(hvm vm set --%s sets one)", boot_files[b], f ? f : "?", boot_files[b]);
            json_object_del(boot, boot_files[b]);
        }
    }
    /* DVDs are host paths too, and media never travel in a bundle. */
    json_t *dvds = json_object_get(json_object_get(doc, "config"), "dvds");
    if (json_array_size(dvds)) {
        vm_problem(notes, "vm.json: config.dvds: %zu DVD%s not imported (host paths; hvm vm set "
                   "--dvd attaches an ISO)", json_array_size(dvds), json_array_size(dvds) == 1 ? "" : "s");
    }
    if (dvds)
        json_object_del(json_object_get(doc, "config"), "dvds");
    json_array_foreach(json_object_get(doc, "checkpoints"), i, c) {
        if (json_object_get(json_object_get(c, "config"), "dvds")) {
            vm_problem(notes, "vm.json: checkpoints[%zu].config.dvds: not imported (host paths)", i);
            json_object_del(json_object_get(c, "config"), "dvds");
        }
        boot = json_object_get(json_object_get(c, "config"), "boot");
        for (size_t b = 0; b < 2; b++) {
            const char *f = json_string_value(json_object_get(boot, boot_files[b]));
            if (json_object_get(boot, boot_files[b]) && !(bundle_boot_file(f) && vm_list_has(listed, f))) {
                vm_problem(notes, "vm.json: checkpoints[%zu].config.boot.%s '%s' is not a file of the "
                           "bundle: not imported", i, boot_files[b], f ? f : "?");
                json_object_del(boot, boot_files[b]);
            }
        }
    }
}

static bool id_in_store(struct store *s, const char *id)
{
    char **names;
    bool found = false;
    if (store_list(s, &names) < 0)
        return false;
    for (size_t i = 0; names[i] && !found; i++) {
        char *dir = store_vm_dir(s, names[i]);
        char *cfg = dir ? path_join(dir, "vm.json") : NULL;
        json_t *doc = cfg ? json_load_file(cfg, 0, NULL) : NULL;
        found = doc && strcmp(json_string_value(json_object_get(doc, "id")) ?: "", id) == 0;
        json_decref(doc);
        free(cfg);
        free(dir);
    }
    store_names_free(names);
    return found;
}

/* Network adapters must name a switch this host has (store_switch_known). */
static void check_switches(struct store *s, json_t *doc, json_t *out)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(json_object_get(doc, "config"), "nics"), i, n) {
        const char *sw = json_string_value(json_object_get(n, "switch"));
        if (sw && !store_switch_known(s, sw))
            vm_problem(out, "network adapter %s is on switch '%s', which this host does not have "
                    "(switches.json of the store)", json_string_value(json_object_get(n, "mac")) ?: "?", sw);
    }
}

/* --map-switch OLD=NEW,...: every adapter on OLD, in now's configuration
 * and in every checkpoint's, moves to NEW; a malformed pair, an OLD no
 * adapter names or a NEW this host lacks is a problem. */
static void map_switches(struct store *s, json_t *doc, const char *spec, json_t *out)
{
    char *copy = spec ? strdup(spec) : NULL, *save = NULL;
    json_t *configs = copy ? doc_configs(doc) : NULL;
    for (char *pair = copy ? strtok_r(copy, ",", &save) : NULL; pair;
         pair = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(pair, '=');
        if (!eq || eq == pair || !eq[1]) {
            vm_problem(out, "--map-switch: '%s': expected OLD=NEW", pair);
            continue;
        }
        *eq = 0;
        const char *to = eq + 1;
        if (!store_switch_known(s, to)) {
            vm_problem(out, "--map-switch %s=%s: this host has no switch '%s' (switches.json of "
                       "the store)", pair, to, to);
            continue;
        }
        size_t i, k, moved = 0;
        json_t *c, *n;
        json_array_foreach(configs, i, c)
            json_array_foreach(json_object_get(c, "nics"), k, n) {
                const char *sw = json_string_value(json_object_get(n, "switch"));
                if (sw && strcmp(sw, pair) == 0) {
                    json_object_set_new(n, "switch", json_string(to));
                    moved++;
                }
            }
        if (!moved)
            vm_problem(out, "--map-switch %s=%s: no network adapter of the bundle is on switch "
                       "'%s'", pair, to, pair);
    }
    json_decref(configs);
    free(copy);
}

/* SHA-256 of every file against the manifest. An import that copies the
 * bundle checks its copies instead (what it installs is what it checked);
 * this pass is for --dry-run, register mode, and a bundle already refused,
 * so that its report lists every problem at once. */
static void hash_problems(const char *dir, json_t *manifest, json_t *allowed, json_t *out)
{
    size_t i;
    json_t *e;
    struct hash_pool *hashing = hash_pool_start(HASH_THREADS);
    json_t *hashes = json_object(), *queued = json_object();
    json_array_foreach(json_object_get(manifest, "files"), i, e) {
        const char *rel = json_string_value(json_object_get(e, "path"));
        struct stat st;
        if (!hashing || !path_is_safe_relative(rel) || !vm_list_has(allowed, rel))
            continue;
        char *abs = path_join(dir, rel);
        if (abs && lstat(abs, &st) == 0 && S_ISREG(st.st_mode) &&
            (json_int_t)st.st_size == json_integer_value(json_object_get(e, "size")) &&
            hash_pool_add(hashing, abs, rel) == 0)
            json_object_set_new(queued, rel, json_true());
        free(abs);
    }
    if (hashing)
        hash_pool_finish(hashing, hash_into, hashes);
    json_array_foreach(json_object_get(manifest, "files"), i, e) {
        const char *rel = json_string_value(json_object_get(e, "path"));
        const char *got = rel ? json_string_value(json_object_get(hashes, rel)) : NULL;
        if (rel && json_object_get(queued, rel) &&
            (!got || strcmp(got, json_string_value(json_object_get(e, "sha256")) ?: "") != 0))
            vm_problem(out, "%s: SHA-256 does not match the manifest (damaged, changed or unreadable)", rel);
    }
    json_decref(hashes);
    json_decref(queued);
}

static json_t *validate(struct store *s, const struct import_params *p, json_t **doc_out,
                        json_t **manifest_out)
{
    json_t *out = json_array();
    struct stat st;
    *doc_out = *manifest_out = NULL;
    if (lstat(p->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        vm_problem(out, "%s is not a folder", p->dir);
        return out;
    }
    json_t *manifest = load_json(p->dir, "manifest.json", out);
    json_t *doc = load_json(p->dir, "vm.json", out);
    json_t *seen = json_array();
    scan_tree(p->dir, out, seen);
    json_t *listed = json_array();
    json_t *allowed = bundle_allowed(doc, manifest);
    if (manifest) {
        if (json_integer_value(json_object_get(manifest, "format")) != BUNDLE_FORMAT)
            vm_problem(out, "manifest.json: format %lld is not %d", (long long)json_integer_value(json_object_get(manifest, "format")), BUNDLE_FORMAT);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(manifest, "files"), i, e) {
            const char *rel = json_string_value(json_object_get(e, "path"));
            if (!path_is_safe_relative(rel)) {
                vm_problem(out, "manifest.json: path '%s' leaves the bundle", rel ? rel : "?");
                continue;
            }
            if (reserved_name(rel)) {
                problem_reserved(out, rel);
                continue;
            }
            /* (an unreadable vm.json names no variable store: refused anyway) */
            if (!vm_list_has(allowed, rel) && !(!doc && strncmp(rel, "nvram/", 6) == 0)) {
                /* In place (register), it cannot be left out. */
                if (p->mode == IMPORT_REGISTER)
                    vm_problem(out, "%s is not a disk of the chain graph, a memory state or a boot "
                               "file: a bundle registered in place may not hold it", rel);
                else if (p->notes)
                    vm_problem(p->notes, "%s is not a disk of the chain graph, a memory state or "
                               "a boot file: not imported", rel);
                continue;
            }
            json_array_append_new(listed, json_string(rel));
            char *abs = path_join(p->dir, rel);
            if (lstat(abs, &st) < 0) {
                vm_problem(out, "%s is missing", rel);
            } else if (!S_ISREG(st.st_mode)) {
                /* reported by scan_tree */
            } else if ((json_int_t)st.st_size != json_integer_value(json_object_get(e, "size"))) {
                vm_problem(out, "%s is %lld bytes, the manifest says %lld (truncated or changed)", rel,
                        (long long)st.st_size, (long long)json_integer_value(json_object_get(e, "size")));
            }
            free(abs);
        }
        size_t k;
        json_t *f;
        json_t *in_manifest = json_array();
        json_array_foreach(json_object_get(manifest, "files"), k, f)
            if (json_is_string(json_object_get(f, "path")))
                json_array_append(in_manifest, json_object_get(f, "path"));
        json_array_foreach(seen, k, f)
            if (!vm_list_has(in_manifest, json_string_value(f)) && strcmp(json_string_value(f), "manifest.json") != 0)
                vm_problem(out, "%s is not in the manifest", json_string_value(f));
        json_decref(in_manifest);
    }
    /* Host paths of a kernel or initrd are dropped (with a note) before the
     * document is judged: they are never taken from a bundle. */
    if (doc)
        drop_host_boot_files(doc, listed, p->notes);
    vm_bundle_problems(doc, manifest, out); /* every field's type and range (validate.c) */
    if (doc) {
        check_config_paths(json_object_get(doc, "config"), "vm.json", listed, out);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(doc, "checkpoints"), i, c) {
            char what[300];
            snprintf(what, sizeof what, "checkpoint '%s'", json_string_value(json_object_get(c, "name")) ?: "?");
            check_config_paths(json_object_get(c, "config"), what, listed, out);
            const char *mem = json_string_value(json_object_get(c, "memory"));
            if (mem && (!path_is_safe_relative(mem) || !vm_list_has(listed, mem)))
                vm_problem(out, "%s: memory state '%s' is not a file of the bundle", what, mem);
        }
        const char *mem = json_string_value(json_object_get(doc, "saved_memory"));
        if (mem && (!path_is_safe_relative(mem) || !vm_list_has(listed, mem)))
            vm_problem(out, "vm.json: saved memory '%s' is not a file of the bundle", mem);
        const char *base = json_string_value(json_object_get(doc, "base"));
        if (base && (!path_is_safe_relative(base) || !vm_list_has(listed, base)))
            vm_problem(out, "vm.json: base '%s' is not a file of the bundle", base);
        const char *name = p->name ? p->name : json_string_value(json_object_get(doc, "name"));
        if (!store_name_valid(name)) {
            vm_problem(out, "'%s' is not a valid VM name", name ? name : "");
        } else {
            char *dir = store_vm_dir(s, name);
            if (dir && access(dir, F_OK) == 0)
                vm_problem(out, "a VM named '%s' already exists in the store (import with --name)", name);
            free(dir);
        }
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (p->mode != IMPORT_COPY && id && id_in_store(s, id))
            vm_problem(out, "a VM with id %s already exists in the store (import with --mode copy)", id);
        map_switches(s, doc, p->map_switch, out);
        check_switches(s, doc, out);
    }
    if (manifest && doc && json_array_size(out) == 0)
        check_chain_coverage(doc, json_object_get(manifest, "chains"), out);
    if (manifest && json_array_size(out) == 0)
        check_chains(p->dir, json_object_get(manifest, "chains"), listed, out);
    json_decref(seen);
    json_decref(listed);
    json_decref(allowed);
    *doc_out = doc;
    *manifest_out = manifest;
    return out;
}

/* Points every differencing layer at its manifest parent, inside root. */
static int repoint_chains(const char *root, json_t *chains)
{
    size_t i;
    json_t *c;
    json_array_foreach(chains, i, c) {
        const char *parent = json_string_value(json_object_get(c, "parent"));
        if (!parent)
            continue;
        char *child = path_join(root, json_string_value(json_object_get(c, "file")));
        char *pabs = path_join(root, parent);
        int r = disk_set_parent(child, pabs, false);
        free(child);
        free(pabs);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Copy mode: every adapter gets a new MAC, in now's configuration and in
 * every checkpoint's (applied later, they would bring the old ones back).
 * One adapter keeps one identity: each old MAC maps to one new one. */
static void renew_macs(json_t *config, json_t *given)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(config, "nics"), i, n) {
        const char *old = json_string_value(json_object_get(n, "mac"));
        json_t *mac = old ? json_incref(json_object_get(given, old)) : NULL;
        if (!mac) {
            char fresh[18];
            vm_random_mac(fresh);
            mac = json_string(fresh);
            if (old)
                json_object_set(given, old, mac);
        }
        json_object_set_new(n, "mac", mac);
    }
}

static void new_identity(json_t *doc)
{
    uint8_t raw[16];
    char id[37];
    uuid_generate_bytes(raw);
    uuid_format(raw, id);
    json_object_set_new(doc, "id", json_string(id));
    json_t *given = json_object(), *configs = doc_configs(doc), *c;
    size_t i;
    json_array_foreach(configs, i, c)
        renew_macs(c, given);
    json_decref(configs);
    json_decref(given);
}

int vm_import(struct store *s, const struct import_params *p, json_t **problems)
{
    json_t *doc, *manifest;
    *problems = validate(s, p, &doc, &manifest);
    /* Only what a bundle may contain is checked and copied (see validate). */
    json_t *allowed = bundle_allowed(doc, manifest);
    if (manifest && (p->mode == IMPORT_REGISTER || p->dry_run || json_array_size(*problems)))
        hash_problems(p->dir, manifest, allowed, *problems);
    int r = 0;
    if (json_array_size(*problems)) {
        r = -EINVAL;
        goto out;
    }
    if (p->dry_run)
        goto out;
    const char *name = p->name ? p->name : json_string_value(json_object_get(doc, "name"));
    char *dest = store_vm_dir(s, name);
    if (p->name) /* (else name is the document's own string: keep it alive) */
        json_object_set_new(doc, "name", json_string(name));
    json_object_set_new(doc, "generation", json_integer(1));
    if (strcmp(json_string_value(json_object_get(doc, "state")) ?: "", "Running") == 0)
        json_object_set_new(doc, "state", json_string("Off"));
    if (p->mode == IMPORT_COPY)
        new_identity(doc);
    if (p->mode == IMPORT_REGISTER) {
        char *abs = realpath(p->dir, NULL);
        if ((r = repoint_chains(p->dir, json_object_get(manifest, "chains"))) == 0 &&
            (r = write_json(p->dir, "vm.json", doc, false)) == 0 && symlink(abs, dest) < 0)
            r = hvm_error(errno, "%s: %s", dest, strerror(errno));
        free(abs);
    } else {
        char *tmp = NULL;
        if (asprintf(&tmp, "%s/.importing-%s-%d", s->vms, name, (int)getpid()) < 0) {
            free(dest);
            r = hvm_error(ENOMEM, "out of memory");
            goto out;
        }
        uint64_t total = 0, done = 0;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(manifest, "files"), i, e)
            if (vm_list_has(allowed, json_string_value(json_object_get(e, "path"))))
                total += (uint64_t)json_integer_value(json_object_get(e, "size"));
        r = check_space(tmp, total);
        json_t *hashes = json_object();
        struct hash_pool *hashing = hash_pool_start(HASH_THREADS);
        if (!hashing)
            r = hvm_error(ENOMEM, "out of memory");
        json_array_foreach(json_object_get(manifest, "files"), i, e) {
            const char *rel = json_string_value(json_object_get(e, "path"));
            if (r < 0 || !vm_list_has(allowed, rel) || strcmp(rel, "vm.json") == 0 ||
                strcmp(rel, "manifest.json") == 0)
                continue;
            char *from = path_join(p->dir, rel), *to = path_join(tmp, rel);
            char *dir = to ? path_dirname(to) : NULL;
            struct copy_progress cp = {p->progress, done, total, NULL};
            if ((r = path_mkdirs(dir)) == 0)
                r = bundle_copy(from, to, &cp, hashing, rel);
            done += (uint64_t)json_integer_value(json_object_get(e, "size"));
            free(from);
            free(to);
            free(dir);
        }
        if (hashing)
            r = hashes_collect(hashing, hashes, r);
        /* The copies' hashes against the manifest: a mismatch is listed like
         * any other problem and the copy goes; the store is unchanged. */
        json_array_foreach(json_object_get(manifest, "files"), i, e) {
            const char *rel = json_string_value(json_object_get(e, "path"));
            char own[65];
            if (!vm_list_has(allowed, rel) || strcmp(rel, "manifest.json") == 0)
                continue;
            const char *got = json_string_value(json_object_get(hashes, rel));
            if (!got && strcmp(rel, "vm.json") == 0) { /* not copied: written anew */
                char *path = path_join(p->dir, rel);
                if (path && sha256_file(path, own, NULL, NULL) == 0)
                    got = own;
                free(path);
            }
            if (r == 0 && got && strcmp(got, json_string_value(json_object_get(e, "sha256")) ?: "") != 0)
                vm_problem(*problems, "%s: SHA-256 does not match the manifest (damaged or changed)", rel);
        }
        json_decref(hashes);
        if (r == 0 && json_array_size(*problems))
            r = -EINVAL;
        char *sub = path_join(tmp, "checkpoints");
        if (r == 0)
            r = path_mkdirs(sub);
        free(sub);
        if (r == 0)
            r = repoint_chains(tmp, json_object_get(manifest, "chains"));
        if (r == 0)
            r = write_json(tmp, "vm.json", doc, true);
        r = publish_tree(tmp, dest, r);
        free(tmp);
    }
    free(dest);
out:
    json_decref(allowed);
    json_decref(doc);
    json_decref(manifest);
    return r;
}
