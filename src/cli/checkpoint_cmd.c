/* hvm checkpoint take | list | revert | apply | rename | show | delete */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/vm_common.h"
#include "util/error.h"
#include "util/size.h"
#include "runtime/runtime.h"
#include "vm/checkpoint.h"
#include "vm/vm.h"

static int ck_take(int argc, char **argv);
static int ck_list(int argc, char **argv);
static int ck_revert(int argc, char **argv);
static int ck_apply(int argc, char **argv);
static int ck_rename(int argc, char **argv);
static int ck_show(int argc, char **argv);
static int ck_delete(int argc, char **argv);

static const struct command verbs[] = {
    {"take", ck_take, "take a checkpoint of the VM now"},
    {"list", ck_list, "the checkpoint tree, with Now under its parent"},
    {"revert", ck_revert, "go back to the checkpoint now is based on"},
    {"apply", ck_apply, "go to any checkpoint (--take-first keeps now)"},
    {"rename", ck_rename, "rename a checkpoint"},
    {"show", ck_show, "a checkpoint's configuration and files"},
    {"delete", ck_delete, "delete a checkpoint (its data folds into its child)"},
    {NULL, NULL, NULL},
};

int cmd_checkpoint(int argc, char **argv)
{
    return cli_dispatch("checkpoint", verbs, argc, argv);
}

struct ck_args {
    const char *store;
    bool json, take_first, subtree;
};

/* Parses options; returns the number of positionals, -1 for help shown,
 * -2 for an error shown. */
static int ck_parse(int argc, char **argv, const char *usage, struct ck_args *a)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"take-first", no_argument, NULL, 't'},
        {"subtree", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'S': a->store = optarg; break;
        case 'j': a->json = true; break;
        case 't': a->take_first = true; break;
        case 's': a->subtree = true; break;
        case 'h': cli_help(usage); return -1;
        default: cli_usage_error(usage, "bad option"); return -2;
        }
    }
    return argc - optind;
}

/* Opens store and VM named argv[optind]; on failure prints and returns non-zero. */
static int ck_open(const struct ck_args *a, const char *name, struct store *s, struct vm **vm)
{
    return vm_cli_open(a->store, name, s, vm);
}

static int ck_done(struct store *s, struct vm *vm, int r)
{
    if (vm)
        vm_close(vm);
    store_close(s);
    return r < 0 ? cli_fail() : EXIT_OK;
}

#define CK_BEGIN(usage, lo, hi)                                                            \
    struct ck_args a = {0};                                                                \
    int n_ = ck_parse(argc, argv, usage, &a);                                              \
    if (n_ == -1)                                                                          \
        return EXIT_OK;                                                                    \
    if (n_ == -2)                                                                          \
        return EXIT_ERROR;                                                                 \
    if (n_ < (lo) || n_ > (hi))                                                            \
        return cli_usage_error(usage, "wrong number of arguments");                        \
    struct store s;                                                                        \
    struct vm *vm;                                                                         \
    if (ck_open(&a, argv[optind], &s, &vm))                                                \
        return EXIT_ERROR;

static json_t *find_or_fail(struct vm *vm, const char *key)
{
    int err;
    return vm_checkpoint_find(vm, key, &err);
}

static const char take_usage[] =
    "usage: hvm checkpoint take VM [NAME] [--store DIR]\n"
    "\n"
    "Freezes each drive's current layer as the checkpoint's disk state, puts a\n"
    "fresh differencing layer in its place and copies the configuration (and a\n"
    "Saved VM's memory). Instant whatever the disk size.\n"
    "Default name: \"VM - (YYYY-MM-DD HH:MM:SS)\".\n";

static int ck_take(int argc, char **argv)
{
    CK_BEGIN(take_usage, 1, 2);
    char *id = NULL;
    const char *name = n_ == 2 ? argv[optind + 1] : NULL;
    double pause_ms = -1;
    /* A running VM: the worker pauses it, saves memory, switches leaves. */
    int r = runtime_alive(vm) ? runtime_checkpoint_take(vm, name, &pause_ms, &id)
                              : vm_checkpoint_take(vm, name, &id);
    if (r == 0) {
        json_t *cp = vm_checkpoint_by_id(vm->doc, id);
        printf("checkpoint '%s' (%.8s) taken", json_string_value(json_object_get(cp, "name")), id);
        if (pause_ms >= 0)
            printf(" with memory; the VM was paused for %.0f ms", pause_ms);
        printf("\n");
    }
    free(id);
    return ck_done(&s, vm, r);
}

static const char list_usage[] =
    "usage: hvm checkpoint list VM [--json] [--store DIR]\n"
    "\n"
    "The checkpoint tree: name, time, [memory] when it holds a running state,\n"
    "its own space on disk, and \"Now\" under the checkpoint the VM is based on.\n";

static json_t *node_json(struct vm *vm, json_t *cp)
{
    return json_pack("{s:O, s:O, s:O, s:b, s:I, s:[]}", "id", json_object_get(cp, "id"), "name",
                     json_object_get(cp, "name"), "created", json_object_get(cp, "created"),
                     "memory", json_is_string(json_object_get(cp, "memory")), "space",
                     (json_int_t)vm_checkpoint_space(vm, cp), "children");
}

/* Builds the visible tree: children of hidden nodes hang under the nearest
 * visible ancestor. Returns {"children": [...]} for the root level. */
static json_t *build_tree(struct vm *vm)
{
    json_t *root = json_pack("{s:[]}", "children");
    json_t *nodes = json_object();
    size_t i;
    json_t *cp;
    json_array_foreach(vm_checkpoints(vm), i, cp)
        if (!json_is_true(json_object_get(cp, "hidden")))
            json_object_set_new(nodes, json_string_value(json_object_get(cp, "id")), node_json(vm, cp));
    json_array_foreach(vm_checkpoints(vm), i, cp) {
        if (json_is_true(json_object_get(cp, "hidden")))
            continue;
        const char *parent = vm_checkpoint_visible_parent(
            vm->doc, json_string_value(json_object_get(cp, "parent")));
        json_t *holder = parent ? json_object_get(nodes, parent) : root;
        json_array_append(json_object_get(holder, "children"),
                          json_object_get(nodes, json_string_value(json_object_get(cp, "id"))));
    }
    const char *now = vm_checkpoint_visible_parent(
        vm->doc, json_string_value(json_object_get(json_object_get(vm->doc, "now"), "parent")));
    json_t *holder = now ? json_object_get(nodes, now) : root;
    json_array_append_new(json_object_get(holder, "children"),
                          json_pack("{s:s, s:b}", "name", "Now", "now", 1));
    json_decref(nodes);
    return root;
}

static void print_tree(json_t *children, const char *prefix)
{
    size_t i, n = json_array_size(children);
    json_t *c;
    json_array_foreach(children, i, c) {
        bool last = i + 1 == n;
        printf("%s%s ", prefix, last ? "└──" : "├──");
        if (json_is_true(json_object_get(c, "now"))) {
            printf("Now\n");
            continue;
        }
        char sz[32];
        printf("%s  (%s, %.8s)%s  %s\n", json_string_value(json_object_get(c, "name")),
               json_string_value(json_object_get(c, "created")),
               json_string_value(json_object_get(c, "id")),
               json_is_true(json_object_get(c, "memory")) ? " [memory]" : "",
               size_format((uint64_t)json_integer_value(json_object_get(c, "space")), sz, sizeof sz));
        char sub[1024];
        snprintf(sub, sizeof sub, "%s%s", prefix, last ? "    " : "│   ");
        print_tree(json_object_get(c, "children"), sub);
    }
}

static int ck_list(int argc, char **argv)
{
    CK_BEGIN(list_usage, 1, 1);
    json_t *tree = build_tree(vm);
    if (a.json) {
        json_t *out = json_pack("{s:s, s:O}", "vm", vm->name, "tree", json_object_get(tree, "children"));
        json_decref(tree);
        ck_done(&s, vm, 0);
        return cli_print_json(out);
    }
    printf("%s\n", vm->name);
    print_tree(json_object_get(tree, "children"), "");
    json_decref(tree);
    return ck_done(&s, vm, 0);
}

static const char revert_usage[] =
    "usage: hvm checkpoint revert VM [--store DIR]\n"
    "\n"
    "Discards the current state and goes back to the checkpoint it is based on:\n"
    "its disks (fresh layers on them), its configuration, its memory state (the\n"
    "VM is then Saved and resumes there when started).\n";

/* A running VM is turned off first (its current state is being thrown
 * away); afterwards a checkpoint with memory is resumed, running exactly
 * where it was. The VM lock is let go while the worker records Off. */
static int stop_if_running(struct store *s, struct vm **vm)
{
    if (!runtime_alive(*vm))
        return 0;
    char name[256];
    snprintf(name, sizeof name, "%s", (*vm)->name);
    int r = runtime_request(*vm, json_pack("{s:s}", "op", "quit"), NULL);
    vm_close(*vm);
    *vm = NULL;
    for (int i = 0; r == 0 && i < 300; i++) {
        if (vm_open(s, name, vm) == 0) {
            if (!runtime_alive(*vm) && strcmp(vm_state(*vm), "Running") != 0)
                return 0;
            vm_close(*vm);
            *vm = NULL;
        }
        usleep(100000);
    }
    return r < 0 ? r : hvm_error(ETIMEDOUT, "VM '%s' did not stop", name);
}

static int resume_if_saved(struct vm *vm, int r)
{
    if (r == 0 && strcmp(vm_state(vm), "Saved") == 0) {
        r = runtime_start(vm, "auto");
        if (r == 0)
            printf("VM '%s' resumed at the checkpoint\n", vm->name);
    }
    return r;
}

static int ck_revert(int argc, char **argv)
{
    CK_BEGIN(revert_usage, 1, 1);
    int r = stop_if_running(&s, &vm);
    if (r == 0)
        r = resume_if_saved(vm, vm_checkpoint_revert(vm));
    return ck_done(&s, vm, r);
}

static const char apply_usage[] =
    "usage: hvm checkpoint apply VM CHECKPOINT [--take-first] [--store DIR]\n"
    "\n"
    "Goes to CHECKPOINT (a name or an id prefix). The current state is discarded\n"
    "unless --take-first, which first takes a checkpoint of it.\n";

static int ck_apply(int argc, char **argv)
{
    CK_BEGIN(apply_usage, 2, 2);
    json_t *cp = find_or_fail(vm, argv[optind + 1]);
    if (!cp)
        return ck_done(&s, vm, -1);
    char *id = strdup(json_string_value(json_object_get(cp, "id")));
    int r = 0;
    /* --take-first on a running VM keeps its memory too. */
    if (a.take_first && runtime_alive(vm)) {
        double pause;
        r = runtime_checkpoint_take(vm, NULL, &pause, NULL);
        a.take_first = false;
    }
    if (r == 0)
        r = stop_if_running(&s, &vm);
    if (r == 0) {
        cp = vm_checkpoint_by_id(vm->doc, id);
        r = cp ? resume_if_saved(vm, vm_checkpoint_apply(vm, cp, a.take_first))
               : hvm_error(ENOENT, "checkpoint %s is gone", id);
    }
    free(id);
    return ck_done(&s, vm, r);
}

static const char rename_usage[] = "usage: hvm checkpoint rename VM CHECKPOINT NEWNAME [--store DIR]\n";

static int ck_rename(int argc, char **argv)
{
    CK_BEGIN(rename_usage, 3, 3);
    json_t *cp = find_or_fail(vm, argv[optind + 1]);
    return ck_done(&s, vm, cp ? vm_checkpoint_rename(vm, cp, argv[optind + 2]) : -1);
}

static const char show_usage[] = "usage: hvm checkpoint show VM CHECKPOINT [--json] [--store DIR]\n";

static int ck_show(int argc, char **argv)
{
    CK_BEGIN(show_usage, 2, 2);
    json_t *cp = find_or_fail(vm, argv[optind + 1]);
    if (!cp)
        return ck_done(&s, vm, -1);
    json_t *out = json_deep_copy(cp);
    json_object_del(out, "hidden");
    json_object_set_new(out, "space", json_integer((json_int_t)vm_checkpoint_space(vm, cp)));
    ck_done(&s, vm, 0);
    if (a.json)
        return cli_print_json(out);
    json_t *cfg = json_object_get(out, "config");
    char sz[32];
    printf("Name:     %s\nId:       %s\nCreated:  %s\nParent:   %s\nMemory:   %s\n",
           json_string_value(json_object_get(out, "name")), json_string_value(json_object_get(out, "id")),
           json_string_value(json_object_get(out, "created")),
           json_string_value(json_object_get(out, "parent")) ? json_string_value(json_object_get(out, "parent")) : "(root)",
           json_string_value(json_object_get(out, "memory")) ? json_string_value(json_object_get(out, "memory")) : "(none)");
    printf("CPUs:     %lld\nRAM:      %s\nSpace:    %s\n", (long long)json_integer_value(json_object_get(cfg, "cpus")),
           size_format((uint64_t)json_integer_value(json_object_get(cfg, "memory")), sz, sizeof sz),
           size_format((uint64_t)json_integer_value(json_object_get(out, "space")), sz, sizeof sz));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(cfg, "drives"), i, d)
        printf("Drive %lld:  %s\n", (long long)json_integer_value(json_object_get(d, "slot")),
               json_string_value(json_object_get(d, "file")));
    json_decref(out);
    return EXIT_OK;
}

static const char delete_usage[] =
    "usage: hvm checkpoint delete VM CHECKPOINT [--subtree] [--store DIR]\n"
    "\n"
    "Deletes a checkpoint: its disk layer is folded into its child layer (which\n"
    "reads the same at every moment, so an interruption loses nothing) and its\n"
    "memory state goes. A layer that two checkpoints still build on stays, hidden,\n"
    "until one of them goes. --subtree deletes its descendants too. On a running\n"
    "VM the checkpoints go at once and their layers are folded when it is off.\n";

static int ck_delete(int argc, char **argv)
{
    CK_BEGIN(delete_usage, 2, 2);
    json_t *cp = find_or_fail(vm, argv[optind + 1]);
    char state[32]; /* (vm_state points into the document the deletion replaces) */
    snprintf(state, sizeof state, "%s", vm_state(vm));
    bool running = strcmp(state, "Running") == 0 || strcmp(state, "Paused") == 0;
    char *name = cp ? strdup(json_string_value(json_object_get(cp, "name"))) : NULL;
    int r = cp ? vm_checkpoint_delete(vm, cp, a.subtree) : -1;
    if (r == 0 && running)
        printf("checkpoint '%s' deleted; VM '%s' is %s: its disk layer is merged when the "
               "VM is off\n", name ? name : "?", vm->name, state);
    free(name);
    return ck_done(&s, vm, r);
}
