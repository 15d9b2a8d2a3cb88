/* hvm checkpoint take | list | revert | apply | rename | show | delete */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "util/error.h"
#include "util/size.h"
#include "runtime/runtime.h"
#include "vm/checkpoint.h"
#include "vm/vm.h"

/* Opens the store and the VM named by the first argument. */
#define CK_BEGIN()                                                                         \
    struct store s;                                                                        \
    struct vm *vm;                                                                         \
    if (vm_cli_open(cli_text(args, "store"), cli_pos(args, 0), &s, &vm))                   \
        return EXIT_ERROR;

static int ck_done(struct store *s, struct vm *vm, int r)
{
    if (vm)
        vm_close(vm);
    store_close(s);
    return r < 0 ? cli_fail() : EXIT_OK;
}

static json_t *find_or_fail(struct vm *vm, const char *key)
{
    int err;
    return vm_checkpoint_find(vm, key, &err);
}

int cmd_checkpoint_take(const struct cli_args *args)
{
    CK_BEGIN();
    char *id = NULL;
    const char *name = cli_pos(args, 1);
    double pause_ms = -1;
    /* A running VM: the worker pauses it, saves memory, switches leaves. */
    const char *mode = cli_text(args, "memory-mode");
    int r = runtime_alive(vm) ? runtime_checkpoint_take_mode(vm, name, mode, &pause_ms, &id)
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

/* The bytes the memory state file takes on disk (0: none). */
static json_int_t memory_size(struct vm *vm, json_t *cp)
{
    const char *mem = json_string_value(json_object_get(cp, "memory"));
    char *p = mem ? vm_path(vm, mem) : NULL;
    struct stat st;
    json_int_t n = p && stat(p, &st) == 0 ? (json_int_t)st.st_blocks * 512 : 0;
    free(p);
    return n;
}

static json_t *node_json(struct vm *vm, json_t *cp)
{
    return json_pack("{s:O, s:O, s:O, s:b, s:I, s:I, s:[]}", "id", json_object_get(cp, "id"), "name",
                     json_object_get(cp, "name"), "created", json_object_get(cp, "created"),
                     "memory", json_is_string(json_object_get(cp, "memory")), "memory_size",
                     memory_size(vm, cp), "space", (json_int_t)vm_checkpoint_space(vm, cp), "children");
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
        char sz[32], msz[32], mem[48] = "";
        if (json_is_true(json_object_get(c, "memory")))
            snprintf(mem, sizeof mem, " [memory] (state %s)",
                     size_format((uint64_t)json_integer_value(json_object_get(c, "memory_size")), msz, sizeof msz));
        printf("%s  (%s, %.8s)%s  %s\n", json_string_value(json_object_get(c, "name")),
               json_string_value(json_object_get(c, "created")),
               json_string_value(json_object_get(c, "id")), mem,
               size_format((uint64_t)json_integer_value(json_object_get(c, "space")), sz, sizeof sz));
        char sub[1024];
        snprintf(sub, sizeof sub, "%s%s", prefix, last ? "    " : "│   ");
        print_tree(json_object_get(c, "children"), sub);
    }
}

int cmd_checkpoint_list(const struct cli_args *args)
{
    CK_BEGIN();
    json_t *tree = build_tree(vm);
    if (cli_flag(args, "json")) {
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

int cmd_checkpoint_revert(const struct cli_args *args)
{
    CK_BEGIN();
    int r = stop_if_running(&s, &vm);
    if (r == 0)
        r = resume_if_saved(vm, vm_checkpoint_revert(vm));
    return ck_done(&s, vm, r);
}

int cmd_checkpoint_apply(const struct cli_args *args)
{
    CK_BEGIN();
    bool take_first = cli_flag(args, "take-first");
    json_t *cp = find_or_fail(vm, cli_pos(args, 1));
    if (!cp)
        return ck_done(&s, vm, -1);
    char *id = strdup(json_string_value(json_object_get(cp, "id")));
    int r = 0;
    /* --take-first on a running VM keeps its memory too. */
    if (take_first && runtime_alive(vm)) {
        double pause;
        r = runtime_checkpoint_take(vm, NULL, &pause, NULL);
        take_first = false;
    }
    if (r == 0)
        r = stop_if_running(&s, &vm);
    if (r == 0) {
        cp = vm_checkpoint_by_id(vm->doc, id);
        r = cp ? resume_if_saved(vm, vm_checkpoint_apply(vm, cp, take_first))
               : hvm_error(ENOENT, "checkpoint %s is gone", id);
    }
    free(id);
    return ck_done(&s, vm, r);
}

int cmd_checkpoint_rename(const struct cli_args *args)
{
    CK_BEGIN();
    json_t *cp = find_or_fail(vm, cli_pos(args, 1));
    return ck_done(&s, vm, cp ? vm_checkpoint_rename(vm, cp, cli_pos(args, 2)) : -1);
}

int cmd_checkpoint_show(const struct cli_args *args)
{
    CK_BEGIN();
    json_t *cp = find_or_fail(vm, cli_pos(args, 1));
    if (!cp)
        return ck_done(&s, vm, -1);
    json_t *out = json_deep_copy(cp);
    json_object_del(out, "hidden");
    json_object_set_new(out, "space", json_integer((json_int_t)vm_checkpoint_space(vm, cp)));
    ck_done(&s, vm, 0);
    if (cli_flag(args, "json"))
        return cli_print_json(out);
    json_t *cfg = json_object_get(out, "config");
    char ram[32], space[32]; /* one buffer each: both are printed by one printf */
    printf("Name:     %s\nId:       %s\nCreated:  %s\nParent:   %s\nMemory:   %s\n",
           json_string_value(json_object_get(out, "name")), json_string_value(json_object_get(out, "id")),
           json_string_value(json_object_get(out, "created")),
           json_string_value(json_object_get(out, "parent")) ? json_string_value(json_object_get(out, "parent")) : "(root)",
           json_string_value(json_object_get(out, "memory")) ? json_string_value(json_object_get(out, "memory")) : "(none)");
    printf("CPUs:     %lld\nRAM:      %s\nSpace:    %s\n", (long long)json_integer_value(json_object_get(cfg, "cpus")),
           size_format((uint64_t)json_integer_value(json_object_get(cfg, "memory")), ram, sizeof ram),
           size_format((uint64_t)json_integer_value(json_object_get(out, "space")), space,
                       sizeof space));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(cfg, "drives"), i, d)
        printf("Drive %lld:  %s\n", (long long)json_integer_value(json_object_get(d, "slot")),
               json_string_value(json_object_get(d, "file")));
    json_decref(out);
    return EXIT_OK;
}

int cmd_checkpoint_delete(const struct cli_args *args)
{
    CK_BEGIN();
    json_t *cp = find_or_fail(vm, cli_pos(args, 1));
    char state[32]; /* (vm_state points into the document the deletion replaces) */
    snprintf(state, sizeof state, "%s", vm_state(vm));
    bool running = strcmp(state, "Running") == 0 || strcmp(state, "Paused") == 0;
    char *name = cp ? strdup(json_string_value(json_object_get(cp, "name"))) : NULL;
    int r = cp ? vm_checkpoint_delete(vm, cp, cli_flag(args, "subtree")) : -1;
    if (r == 0 && running)
        printf("checkpoint '%s' deleted; VM '%s' is %s: its disk layer is merged when the "
               "VM is off\n", name ? name : "?", vm->name, state);
    free(name);
    return ck_done(&s, vm, r);
}
