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
 * reads the same before and after, and recovery only rolls forward.
 *
 * The journal is replayed by whoever runs hvm next on the VM, root
 * included, and the folder may have been written by another host (shared
 * storage) or come in a bundle: it is untrusted input. Every path it names
 * must be a plain relative path inside the VM folder with no symlink on the
 * way, checked when it is written and again before it is replayed; a
 * journal that fails is never acted on (journal_check). Deletions go
 * through a descriptor of the folder opened that way. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

json_t *vm_step_rebase(const char *child, const char *below)
{
    return json_pack("{s:s, s:s, s:s}", "do", "rebase", "child", child, "below", below);
}

json_t *vm_step_merge_up(const char *leaf, const char *parent)
{
    return json_pack("{s:s, s:s, s:s}", "do", "merge-up", "child", leaf, "parent", parent);
}

json_t *vm_step_copy(const char *from, const char *to)
{
    return json_pack("{s:s, s:s, s:s}", "do", "copy", "from", from, "to", to);
}

/* ---- paths inside the VM folder ---- */

/* Opens rel below the folder root: never above it, no symlink followed
 * (the last component included), no /proc magic link. openat2 does it in
 * one call; without it (a kernel before 5.6, or a seccomp filter that
 * refuses it) the same walk is made one component at a time. rel has
 * passed path_is_safe_relative (or is "."). */
static int open_beneath(int root, const char *rel, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
        return (int)fd;
    char *copy = strdup(rel), *save = NULL;
    int cur = copy ? dup(root) : -1;
    for (char *c = copy ? strtok_r(copy, "/", &save) : NULL; c && cur >= 0;) {
        char *next = strtok_r(NULL, "/", &save);
        int f = openat(cur, c, (next ? O_RDONLY | O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(cur);
        cur = f;
        errno = e;
        c = next;
    }
    free(copy);
    /* (with O_PATH, O_NOFOLLOW opens a symlink itself instead of failing) */
    struct stat st;
    if (cur >= 0 && fstat(cur, &st) == 0 && S_ISLNK(st.st_mode)) {
        close(cur);
        errno = ELOOP;
        return -1;
    }
    return cur;
}

/* The VM folder, for *at calls (quiet: clean-up paths must not replace the
 * message of the error they follow). */
static int open_root(struct vm *vm)
{
    int fd = open(vm->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int open_root_loud(struct vm *vm)
{
    int fd = open_root(vm);
    return fd < 0 ? hvm_error(-fd, "%s: %s", vm->dir, strerror(-fd)) : fd;
}

/* Opens the folder that holds rel (inside root) for *at calls on its
 * last component, *base. */
static int open_parent_beneath(int root, const char *rel, const char **base)
{
    char *dir = path_dirname(rel);
    int fd = dir ? open_beneath(root, dir, O_RDONLY | O_DIRECTORY) : -1;
    free(dir);
    *base = path_basename(rel);
    return fd;
}

/* Is rel a file the journal may name: relative, no "." or "..", and every
 * component that exists (the file included) a real folder or file inside
 * the VM folder, not a symlink? Missing components are fine (a step's
 * output, or a file already deleted). Returns NULL or the reason. */
static const char *path_refusal(int root, const char *rel)
{
    if (!rel)
        return "is missing or not a string";
    if (!path_is_safe_relative(rel))
        return "is not a relative path inside the VM folder";
    int fd = open_beneath(root, rel, O_PATH);
    if (fd >= 0) {
        close(fd);
        return NULL;
    }
    if (errno == ENOENT)
        return NULL;
    return errno == ELOOP ? "goes through a symbolic link" :
           errno == EXDEV ? "leads out of the VM folder" : strerror(errno);
}

/* Deletes the VM file rel unless refs still names it, through the folder's
 * descriptor: a swapped-in symlink cannot redirect it. */
static void remove_unused(int root, json_t *refs, const char *rel)
{
    const char *base;
    if (!rel || vm_list_has(refs, rel) || !path_is_safe_relative(rel))
        return;
    int dir = open_parent_beneath(root, rel, &base);
    if (dir >= 0) {
        unlink_detached(dir, base);
        hvm_error_clear();
        close(dir);
    }
}

/* The fields of each kind of step that name files (NULL-terminated). */
struct step_kind {
    const char *name;
    const char *paths[3];
};
static const struct step_kind step_kinds[] = {
    {"diff", {"parent", "child", NULL}},
    {"rebase", {"child", "below", NULL}},
    {"merge-up", {"child", "parent", NULL}},
    {"copy", {"from", "to", NULL}},
    {"create", {"file", NULL, NULL}},
};

static const struct step_kind *step_kind_find(const char *name)
{
    for (size_t k = 0; name && k < sizeof step_kinds / sizeof *step_kinds; k++)
        if (strcmp(step_kinds[k].name, name) == 0)
            return &step_kinds[k];
    return NULL;
}

/* Writes into why (for a message) what is wrong with the files a journal
 * names, or leaves it empty: every path of its steps, its remove list and
 * the memory states of the next document's checkpoints (which abandoning
 * deletes) must lead to no symlink and not out of the folder. Its shape
 * (which fields, which types, what a path may look like) has been checked
 * by vm_journal_decide (vm/validate.c) first; this is the part that needs
 * the files. */
static void journal_check(int root, json_t *j, char *why, size_t len)
{
    size_t i;
    json_t *st, *f;
    const char *bad;
    why[0] = 0;
    json_array_foreach(json_object_get(j, "steps"), i, st) {
        const char *what = json_string_value(json_object_get(st, "do"));
        const struct step_kind *k = step_kind_find(what);
        if (!k) {
            snprintf(why, len, "step %zu: unknown step '%s'", i + 1, what ? what : "(none)");
            return;
        }
        for (int p = 0; k->paths[p]; p++) {
            const char *rel = json_string_value(json_object_get(st, k->paths[p]));
            if ((bad = path_refusal(root, rel))) {
                snprintf(why, len, "step %zu (%s): %s '%s' %s", i + 1, what, k->paths[p],
                         rel ? rel : "", bad);
                return;
            }
        }
    }
    json_array_foreach(json_object_get(j, "remove"), i, f)
        if ((bad = path_refusal(root, json_string_value(f)))) {
            snprintf(why, len, "remove[%zu]: '%s' %s", i, json_string_value(f) ?: "", bad);
            return;
        }
    json_array_foreach(json_object_get(json_object_get(j, "next"), "checkpoints"), i, st) {
        json_t *mem = json_object_get(st, "memory");
        if (json_is_string(mem) && (bad = path_refusal(root, json_string_value(mem)))) {
            snprintf(why, len, "next: checkpoints[%zu].memory '%s' %s", i, json_string_value(mem), bad);
            return;
        }
    }
}

/* What recovery does with journal (read from file) in this VM folder: the
 * decision of vm_journal_decide against vm.json's generation, which checks
 * its shape and its next document as vm.json is, then the files it names
 * (journal_check). Problems are appended to problems; a refusal has at
 * least one. */
static enum vm_journal_action journal_judge(struct vm *vm, json_t *journal, const char *file,
                                            json_t *problems)
{
    json_int_t have = json_integer_value(json_object_get(vm->doc, "generation"));
    enum vm_journal_action a = vm_journal_decide(journal, have, file, problems);
    if (a == VM_JOURNAL_REFUSE)
        return a;
    char why[1024];
    int root = open_root(vm);
    if (root < 0) {
        vm_problem(problems, "%s: %s", vm->dir, strerror(-root));
        return VM_JOURNAL_REFUSE;
    }
    journal_check(root, journal, why, sizeof why);
    close(root);
    if (why[0]) {
        vm_problem(problems, "%s: %s", file, why);
        return VM_JOURNAL_REFUSE;
    }
    return a;
}

static int save_doc(struct vm *vm, json_t *doc, const char *file)
{
    return store_json_replace(vm->dir, file, doc);
}

/* A step killed half-way leaves its output under a temporary name beside it
 * (FILE.creating.PID, FILE.copying.PID, FILE.tmp): remove those before the
 * step runs again, or they would stay as orphans. */
static void remove_partials(struct vm *vm, const char *rel)
{
    int root = rel && path_is_safe_relative(rel) ? open_root(vm) : -1;
    const char *base = NULL;
    int dir = root >= 0 ? open_parent_beneath(root, rel, &base) : -1;
    int listing = dir >= 0 ? dup(dir) : -1;
    DIR *d = listing >= 0 ? fdopendir(listing) : NULL;
    struct dirent *e;
    size_t n = base ? strlen(base) : 0;
    if (listing >= 0 && !d)
        close(listing);
    while (d && (e = readdir(d))) {
        const char *rest = e->d_name + n;
        if (strncmp(e->d_name, base, n) != 0 ||
            (strncmp(rest, ".creating.", 10) != 0 && strncmp(rest, ".copying.", 9) != 0 &&
             strcmp(rest, ".tmp") != 0))
            continue;
        unlinkat(dir, e->d_name, 0);
    }
    if (d)
        closedir(d);
    if (dir >= 0)
        close(dir);
    if (root >= 0)
        close(root);
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

/* Rebases child onto the parent of below (standalone when below has none):
 * the layer that is going away names where to go, so the journal never
 * names a base outside the VM folder. below stays until the commit. */
static int step_rebase(struct vm *vm, json_t *st)
{
    char *child = vm_path(vm, json_string_value(json_object_get(st, "child")));
    char *below = vm_path(vm, json_string_value(json_object_get(st, "below")));
    char *onto = NULL;
    struct disk *d;
    int r = (child && below) ? 0 : hvm_error(ENOMEM, "out of memory");
    if (r == 0 && (r = disk_open(below, DISK_OPEN_READ_ONLY, &d)) == 0) {
        if (d->parent && !(onto = strdup(d->parent->path)))
            r = hvm_error(ENOMEM, "out of memory");
        disk_close(d);
    }
    /* Already standalone (a finished --standalone rebase)? */
    if (r == 0 && (r = disk_open(child, DISK_OPEN_READ_ONLY | DISK_OPEN_NO_PARENT, &d)) == 0) {
        bool diff = strcmp(d->ops->kind, "differencing") == 0;
        disk_close(d);
        r = (!diff && !onto) ? 0 : disk_rebase(child, onto, NULL);
    }
    free(child);
    free(below);
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
    int root = open_root(vm);
    /* Never delete what the committed document still uses. */
    json_t *still = vm_referenced_files(vm->doc);
    json_array_foreach(remove, i, f)
        if (root >= 0)
            remove_unused(root, still, json_string_value(f));
    json_decref(still);
    if (root >= 0)
        close(root);
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
    /* next was checked like vm.json when the journal was written and again
     * before recovery replays it (vm_journal_decide). */
    int r = run_steps(vm, json_object_get(journal, "steps"));
    if (r < 0)
        return r;
    if ((r = save_doc(vm, next, "vm.json")) < 0)
        return r;
    json_decref(vm->doc);
    vm->doc = json_incref(next);
    return finish(vm, journal);
}

/* A copy from outside the VM folder (a disk attached with vm set
 * --add-disk) is made now, before the journal is written: a journal names
 * only files inside the folder. Its destination is a fresh name; should the
 * command die before the commit, it is an unused file that vm check reports
 * as orphaned. Made copies are listed in made (to remove on failure). */
static int bring_in(struct vm *vm, json_t *steps, json_t *made)
{
    for (size_t i = 0; i < json_array_size(steps);) {
        json_t *st = json_array_get(steps, i);
        const char *from = json_string_value(json_object_get(st, "from"));
        const char *to = json_string_value(json_object_get(st, "to"));
        if (strcmp(json_string_value(json_object_get(st, "do")) ?: "", "copy") != 0 || !from ||
            from[0] != '/') {
            i++;
            continue;
        }
        if (!path_is_safe_relative(to))
            return hvm_error(EINVAL, "%s: copy of %s: '%s' is not a path inside the VM folder",
                             vm->dir, from, to ? to : "");
        char *abs = vm_path(vm, to);
        int r = abs ? 0 : hvm_error(ENOMEM, "out of memory");
        if (r == 0 && access(abs, F_OK) != 0 && (r = file_copy(from, abs)) == 0)
            json_array_append_new(made, json_string(to));
        free(abs);
        if (r < 0)
            return r;
        json_array_remove(steps, i);
    }
    return 0;
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
    json_t *made = json_array();
    int root = r < 0 ? r : open_root_loud(vm);
    if (r == 0)
        r = root < 0 ? root : bring_in(vm, json_object_get(journal, "steps"), made);
    /* Never a journal that recovery would refuse, nor over one that was
     * refused and kept (vm check reports it): it is for a person to look at. */
    char *jpath = vm_path(vm, "journal");
    json_t *problems = json_array();
    struct stat jst;
    if (r == 0 && (!jpath || !problems))
        r = hvm_error(ENOMEM, "out of memory");
    if (r == 0 && lstat(jpath, &jst) == 0)
        r = hvm_error(EEXIST, "%s: %s: a journal that was not replayed is in the way "
                      "(see 'hvm vm check')", jpath, op);
    if (r == 0 && journal_judge(vm, journal, jpath, problems) == VM_JOURNAL_REFUSE)
        r = hvm_error(EINVAL, "%s: refusing to write a journal that recovery would refuse: %s",
                      op, json_string_value(json_array_get(problems, 0)) ?: "?");
    json_decref(problems);
    free(jpath);
    if (r == 0)
        r = save_doc(vm, journal, "journal");
    if (r < 0) {
        size_t i;
        json_t *f;
        json_array_foreach(made, i, f)
            remove_unused(root, NULL, json_string_value(f));
        json_decref(journal);
    } else {
        *journal_out = journal;
    }
    json_decref(made);
    if (root >= 0)
        close(root);
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
    int root = open_root(vm);
    json_t *refs = vm_referenced_files(vm->doc);
    json_array_foreach(json_object_get(journal, "steps"), i, st) {
        const char *made = json_string_value(json_object_get(st, "child"));
        if (root >= 0 && made && strcmp(json_string_value(json_object_get(st, "do")) ?: "", "diff") == 0)
            remove_unused(root, refs, made);
    }
    /* Memory states the abandoned change would have brought in. */
    json_array_foreach(json_object_get(json_object_get(journal, "next"), "checkpoints"), i, st) {
        if (root >= 0)
            remove_unused(root, refs, json_string_value(json_object_get(st, "memory")));
    }
    json_decref(refs);
    if (root >= 0)
        close(root);
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

/* Set by vm check: a refused journal is left for vm_verify to list
 * (vm_journal_problems) instead of failing the open. */
static bool refusal_reported;

void vm_journal_refusal_report(bool on)
{
    refusal_reported = on;
}

/* A journal that is not replayed, as the error of the open (none when
 * vm check reports it). */
static int refused(json_t *problems)
{
    size_t n = json_array_size(problems);
    if (refusal_reported)
        return 0;
    return hvm_error(EINVAL, "%s%s: the journal was not replayed (it was not written by hvm; "
                     "look at it, then remove it to use the VM)",
                     json_string_value(json_array_get(problems, 0)) ?: "journal",
                     n > 1 ? " (and more problems)" : "");
}

/* Reads the journal at path: 0 when there is none, 1 with *journal, 2 when
 * it is unreadable (it is written atomically: such a one was never
 * complete, so nothing was started under it), -EINVAL with the problem
 * appended when it is not a regular file. */
static int journal_read(const char *path, json_t **journal, json_t *problems)
{
    struct stat st;
    *journal = NULL;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISREG(st.st_mode)) {
        vm_problem(problems, "%s: not a regular file", path);
        return -EINVAL;
    }
    *journal = json_load_file(path, 0, NULL);
    return *journal ? 1 : 2;
}

int vm_journal_recover(struct vm *vm)
{
    char *path = vm_path(vm, "journal");
    json_t *problems = json_array(), *journal = NULL;
    int r;
    if (!path || !problems) {
        free(path);
        json_decref(problems);
        return hvm_error(ENOMEM, "out of memory");
    }
    switch (journal_read(path, &journal, problems)) {
    case 0:
        r = 0;
        break;
    case 2:
        unlink(path);
        r = 0;
        break;
    case 1:
        /* Decided before anything is acted on: a journal naming a file
         * outside the folder was not written by hvm (a bundle, another
         * host). */
        switch (journal_judge(vm, journal, path, problems)) {
        case VM_JOURNAL_FINISH: /* committed: only the clean-up was left */
            r = finish(vm, journal);
            break;
        case VM_JOURNAL_GUARDED: /* the online part decides */
            r = guard_holds(vm, json_object_get(journal, "guard"))
                    ? execute(vm, journal)  /* it happened: commit */
                    : abandon(vm, journal); /* it never happened: roll back */
            break;
        case VM_JOURNAL_EXECUTE: /* not committed: redo the steps, commit */
            r = execute(vm, journal);
            break;
        default:
            r = refused(problems);
        }
        break;
    default:
        r = refused(problems);
    }
    json_decref(journal);
    json_decref(problems);
    free(path);
    return r;
}

size_t vm_journal_problems(struct vm *vm, json_t *problems)
{
    char *path = vm_path(vm, "journal");
    json_t *journal = NULL, *list = json_array(), *p;
    size_t i;
    if (path && list && journal_read(path, &journal, list) == 1)
        journal_judge(vm, journal, path, list);
    json_array_foreach(list, i, p)
        vm_problem(problems, "%s (the journal was not replayed: look at it, then remove it)",
                   json_string_value(p));
    i = json_array_size(list);
    json_decref(journal);
    json_decref(list);
    free(path);
    return i;
}
