/* The journal: how a multi-step change to a VM is made crash-safe.
 *
 * Every operation is expressed as (1) the complete next vm.json, (2) disk
 * steps that must happen before it can be committed (create a differencing
 * leaf, rebase a layer, copy a file), (3) files to delete once it is
 * committed. vm_commit writes all of that to <vm>/journal first, then runs
 * the steps, replaces vm.json atomically (the commit point) and deletes the
 * old files, and finally the journal.
 *
 * Each step is idempotent, so recovery after a kill -9 at any point is
 * simply: if vm.json already has the next generation, finish the deletions;
 * otherwise run the steps again and commit. A reader never sees a vm.json
 * that refers to a file that does not exist yet, and no file is deleted
 * while the committed vm.json refers to it, with one exception: merge-up
 * renames a deleted (hidden) checkpoint's layer over the leaf above it
 * before the commit; nothing reads a hidden layer but that leaf, which
 * reads the same before and after, and recovery only rolls forward. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/ops.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vhd/image.h"
#include "vm/validate.h"
#include "vm/vm.h"

json_t *vm_step_diff(const char *parent, const char *child)
{
    return json_pack("{s:s, s:s, s:s}", "do", "diff", "parent", parent, "child", child);
}

json_t *vm_step_rebase(const char *child, const char *onto)
{
    return json_pack("{s:s, s:s, s:s?}", "do", "rebase", "child", child, "onto", onto);
}

json_t *vm_step_merge_up(const char *leaf, const char *parent)
{
    return json_pack("{s:s, s:s, s:s}", "do", "merge-up", "child", leaf, "parent", parent);
}

json_t *vm_step_copy(const char *from, const char *to)
{
    return json_pack("{s:s, s:s, s:s}", "do", "copy", "from", from, "to", to);
}

static int save_doc(struct vm *vm, json_t *doc, const char *file)
{
    char *path = vm_path(vm, file);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int r = (path && text) ? file_replace(path, text, strlen(text))
                           : hvm_error(ENOMEM, "out of memory");
    free(path);
    free(text);
    return r;
}

/* A step killed half-way leaves its output under a temporary name beside it
 * (FILE.creating.PID, FILE.copying.PID, FILE.tmp): remove those before the
 * step runs again, or they would stay as orphans. */
static void remove_partials(struct vm *vm, const char *rel)
{
    char *path = rel ? vm_path(vm, rel) : NULL;
    char *dir = path ? path_dirname(path) : NULL;
    const char *base = path ? path_basename(path) : NULL;
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    size_t n = base ? strlen(base) : 0;
    while (d && (e = readdir(d))) {
        const char *rest = e->d_name + n;
        if (strncmp(e->d_name, base, n) != 0 ||
            (strncmp(rest, ".creating.", 10) != 0 && strncmp(rest, ".copying.", 9) != 0 &&
             strcmp(rest, ".tmp") != 0))
            continue;
        char *abs = path_join(dir, e->d_name);
        if (abs)
            unlink(abs);
        free(abs);
    }
    if (d)
        closedir(d);
    free(dir);
    free(path);
}

static int step_diff(struct vm *vm, json_t *st)
{
    char *parent = vm_path(vm, json_string_value(json_object_get(st, "parent")));
    char *child = vm_path(vm, json_string_value(json_object_get(st, "child")));
    int r = 0;
    remove_partials(vm, json_string_value(json_object_get(st, "child")));
    if (!parent || !child)
        r = hvm_error(ENOMEM, "out of memory");
    else if (access(child, F_OK) == 0) {
        /* Created before a crash: vhd_create links the file in complete,
         * so it is a finished empty child. Make sure the parent is marked. */
        struct stat s;
        if (stat(parent, &s) == 0)
            chmod(parent, s.st_mode & ~0222);
    } else {
        r = disk_diff_create(parent, child, false);
    }
    free(parent);
    free(child);
    return r;
}

static int step_rebase(struct vm *vm, json_t *st)
{
    char *child = vm_path(vm, json_string_value(json_object_get(st, "child")));
    const char *onto_rel = json_string_value(json_object_get(st, "onto"));
    char *onto = onto_rel ? vm_path(vm, onto_rel) : NULL;
    int r;
    if (!child || (onto_rel && !onto)) {
        r = hvm_error(ENOMEM, "out of memory");
    } else {
        struct disk *d;
        /* Already standalone (a finished --standalone rebase)? */
        r = disk_open(child, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &d);
        if (r == 0) {
            bool diff = strcmp(d->ops->kind, "differencing") == 0;
            disk_close(d);
            r = (!diff && !onto) ? 0 : disk_rebase(child, onto, NULL);
        }
    }
    free(child);
    free(onto);
    return r;
}

static int step_merge_up(struct vm *vm, json_t *st)
{
    char *child = vm_path(vm, json_string_value(json_object_get(st, "child")));
    char *parent = vm_path(vm, json_string_value(json_object_get(st, "parent")));
    int r = (child && parent) ? disk_merge_up(child, parent, NULL) : hvm_error(ENOMEM, "out of memory");
    free(child);
    free(parent);
    return r;
}

static int step_copy(struct vm *vm, json_t *st)
{
    char *from = vm_path(vm, json_string_value(json_object_get(st, "from")));
    char *to = vm_path(vm, json_string_value(json_object_get(st, "to")));
    int r = 0;
    remove_partials(vm, json_string_value(json_object_get(st, "to")));
    if (!from || !to)
        r = hvm_error(ENOMEM, "out of memory");
    else if (access(to, F_OK) != 0) /* file_copy renames a complete copy in */
        r = file_copy(from, to);
    free(from);
    free(to);
    return r;
}

static int step_create(struct vm *vm, json_t *st)
{
    char *file = vm_path(vm, json_string_value(json_object_get(st, "file")));
    int r = 0;
    if (!file)
        return hvm_error(ENOMEM, "out of memory");
    remove_partials(vm, json_string_value(json_object_get(st, "file")));
    if (access(file, F_OK) != 0) {
        struct vhd_create_params p = {
            .type = VHD_TYPE_DYNAMIC,
            .size = (uint64_t)json_integer_value(json_object_get(st, "size")),
        };
        r = vhd_create(file, &p);
    }
    free(file);
    return r;
}

json_t *vm_step_create(const char *file, uint64_t size)
{
    return json_pack("{s:s, s:s, s:I}", "do", "create", "file", file, "size", (json_int_t)size);
}

static int run_steps(struct vm *vm, json_t *steps)
{
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st) {
        const char *what = json_string_value(json_object_get(st, "do"));
        int r;
        if (!what)
            return hvm_error(EINVAL, "%s/journal: step without 'do'", vm->dir);
        if (strcmp(what, "diff") == 0)
            r = step_diff(vm, st);
        else if (strcmp(what, "rebase") == 0)
            r = step_rebase(vm, st);
        else if (strcmp(what, "merge-up") == 0)
            r = step_merge_up(vm, st);
        else if (strcmp(what, "copy") == 0)
            r = step_copy(vm, st);
        else if (strcmp(what, "create") == 0)
            r = step_create(vm, st);
        else
            r = hvm_error(EINVAL, "%s/journal: unknown step '%s'", vm->dir, what);
        if (r < 0)
            return r;
    }
    return 0;
}

static void remove_files(struct vm *vm, json_t *remove)
{
    size_t i;
    json_t *f;
    /* Never delete what the committed document still uses. */
    json_t *still = vm_referenced_files(vm->doc);
    json_array_foreach(remove, i, f)
        vm_remove_unused(vm, still, json_string_value(f));
    json_decref(still);
}

static int finish(struct vm *vm, json_t *journal)
{
    remove_files(vm, json_object_get(journal, "remove"));
    char *path = vm_path(vm, "journal");
    int r = 0;
    if (path && unlink(path) < 0 && errno != ENOENT)
        r = hvm_error(errno, "%s: %s", path, strerror(errno));
    if (r == 0 && path)
        r = path_sync_dir(path);
    free(path);
    return r;
}

static int execute(struct vm *vm, json_t *journal)
{
    json_t *next = json_object_get(journal, "next");
    int r = run_steps(vm, json_object_get(journal, "steps"));
    if (r < 0)
        return r;
    if ((r = save_doc(vm, next, "vm.json")) < 0)
        return r;
    json_decref(vm->doc);
    vm->doc = json_incref(next);
    return finish(vm, journal);
}

int vm_journal_begin(struct vm *vm, const char *op, json_t *next, json_t *steps, json_t *remove,
                     json_t *guard, json_t **journal_out)
{
    json_int_t gen = json_integer_value(json_object_get(vm->doc, "generation"));
    json_object_set_new(next, "generation", json_integer(gen + 1));
    json_t *journal = json_pack("{s:s, s:I, s:o, s:o, s:o}", "op", op, "generation",
                                gen + 1, "next", next, "steps", steps ? steps : json_array(),
                                "remove", remove ? remove : json_array());
    if (!journal) {
        json_decref(guard);
        return hvm_error(ENOMEM, "out of memory");
    }
    if (guard)
        json_object_set_new(journal, "guard", guard);
    /* Never a document that the next open would refuse (vm/validate.c). */
    char *file = vm_path(vm, "vm.json");
    int r = file ? vm_doc_validate(next, file) : hvm_error(ENOMEM, "out of memory");
    free(file);
    if (r == 0)
        r = save_doc(vm, journal, "journal");
    if (r < 0)
        json_decref(journal);
    else
        *journal_out = journal;
    return r;
}

int vm_journal_commit(struct vm *vm, json_t *journal)
{
    int r = execute(vm, journal);
    json_decref(journal);
    return r;
}

/* Gives up a journal whose guard failed: files its steps may have made are
 * removed (none is referenced by the committed document). */
static int abandon(struct vm *vm, json_t *journal)
{
    size_t i;
    json_t *st;
    json_t *refs = vm_referenced_files(vm->doc);
    json_array_foreach(json_object_get(journal, "steps"), i, st) {
        const char *made = json_string_value(json_object_get(st, "child"));
        if (made && strcmp(json_string_value(json_object_get(st, "do")), "diff") == 0)
            vm_remove_unused(vm, refs, made);
    }
    /* Memory states the abandoned change would have brought in. */
    json_array_foreach(json_object_get(json_object_get(journal, "next"), "checkpoints"), i, st) {
        vm_remove_unused(vm, refs, json_string_value(json_object_get(st, "memory")));
    }
    json_decref(refs);
    char *path = vm_path(vm, "journal");
    if (path)
        unlink(path);
    free(path);
    return 0;
}

void vm_journal_abandon(struct vm *vm, json_t *journal)
{
    abandon(vm, journal);
    json_decref(journal);
}

/* An online step (a leaf switched inside the running VM's worker) has
 * happened if the worker's record run/drives.json lists every new leaf. */
static bool guard_holds(struct vm *vm, json_t *guard)
{
    char *path = vm_path(vm, "run/drives.json");
    json_t *rec = path ? json_load_file(path, 0, NULL) : NULL;
    free(path);
    bool all = true;
    size_t i;
    json_t *want;
    json_array_foreach(json_object_get(guard, "leaves"), i, want)
        all &= vm_list_has(json_object_get(rec, "drives"), json_string_value(want));
    json_decref(rec);
    return all;
}

int vm_commit(struct vm *vm, const char *op, json_t *next, json_t *steps, json_t *remove)
{
    json_t *journal;
    int r = vm_journal_begin(vm, op, next, steps, remove, NULL, &journal);
    return r < 0 ? r : vm_journal_commit(vm, journal);
}

int vm_journal_recover(struct vm *vm)
{
    char *path = vm_path(vm, "journal");
    if (!path)
        return hvm_error(ENOMEM, "out of memory");
    if (access(path, F_OK) != 0) {
        free(path);
        return 0;
    }
    json_error_t err;
    json_t *journal = json_load_file(path, 0, &err);
    int r;
    if (!journal) {
        /* The journal is written atomically: an unreadable one was never
         * complete, so nothing was started under it. */
        unlink(path);
        free(path);
        return 0;
    }
    json_int_t gen = json_integer_value(json_object_get(journal, "generation"));
    json_int_t have = json_integer_value(json_object_get(vm->doc, "generation"));
    json_t *guard = json_object_get(journal, "guard");
    if (have >= gen)
        r = finish(vm, journal);   /* committed: only the clean-up was left */
    else if (guard && !guard_holds(vm, guard))
        r = abandon(vm, journal);  /* the online part never happened: roll back */
    else
        r = execute(vm, journal);  /* not committed: redo the steps, commit */
    json_decref(journal);
    free(path);
    return r;
}
