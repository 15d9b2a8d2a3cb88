/* hvm vm export | import | move */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "runtime/runtime.h"
#include "util/error.h"
#include "vm/bundle.h"
#include "vm/checkpoint.h"

int cmd_vm_export(const struct cli_args *args)
{
    const char *vm_name = cli_pos(args, 0), *dest = cli_pos(args, 1);
    struct {
        const char *store, *checkpoint;
        bool flatten;
    } a = {cli_text(args, "store"), cli_text(args, "checkpoint"), cli_flag(args, "flatten")};
    struct store s;
    struct vm *vm;
    if (vm_cli_open(a.store, vm_name, &s, &vm))
        return EXIT_ERROR;
    int r = 0;
    struct progress p;
    progress_init(&p, "export");
    struct bundle_progress bp = {progress_update, &p};
    struct export_params ep = {dest, a.checkpoint, a.flatten, &bp, NULL};
    /* A running VM is exported through a checkpoint taken online (like
     * Export-VM of a running VM): the bundle resumes at that moment. */
    char *live = NULL;
    if (runtime_alive(vm) && !a.checkpoint && access(ep.dest, F_OK) != 0) {
        char when[32], name[64];
        double pause;
        vm_now_string(when, sizeof when);
        snprintf(name, sizeof name, "Export (%s)", when);
        r = runtime_checkpoint_take(vm, name, &pause, &live);
        ep.live_checkpoint = live;
        if (a.flatten)
            ep.checkpoint = live;
    }
    if (r == 0)
        r = vm_export(vm, &ep);
    if (live) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hvm_error_message());
        int h = vm_checkpoint_hide(vm, live);
        if (r == 0)
            r = h;
        else
            hvm_error(-r, "%s", msg);
        free(live);
    }
    progress_done(&p);
    vm_close(vm);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("exported '%s' to %s\n", vm_name, dest);
    return EXIT_OK;
}

int cmd_vm_import(const struct cli_args *args)
{
    const char *dir = cli_pos(args, 0), *mode_text = cli_text(args, "mode");
    struct {
        const char *store, *name;
        bool dry_run;
    } a = {cli_text(args, "store"), cli_text(args, "name"), cli_flag(args, "dry-run")};
    enum import_mode mode = IMPORT_RESTORE;
    if (mode_text && strcmp(mode_text, "register") == 0)
        mode = IMPORT_REGISTER;
    else if (mode_text && strcmp(mode_text, "copy") == 0)
        mode = IMPORT_COPY;
    struct store s;
    /* An import may make the store's first VM; a dry run makes nothing. */
    if (vm_cli_open_store_how(a.store, a.dry_run ? STORE_MAY_BE_MISSING : STORE_CREATE, &s))
        return EXIT_ERROR;
    struct progress p;
    progress_init(&p, "import");
    struct bundle_progress bp = {progress_update, &p};
    json_t *notes = json_array();
    struct import_params ip = {dir, mode, a.name, a.dry_run, &bp, notes,
                               cli_text(args, "map-switch")};
    json_t *problems = NULL;
    int r = vm_import(&s, &ip, &problems);
    progress_done(&p);
    store_close(&s);
    size_t i;
    json_t *x;
    json_array_foreach(notes, i, x)
        fprintf(stderr, "hvm: note: %s\n", json_string_value(x));
    json_decref(notes);
    size_t np = json_array_size(problems);
    if (np) {
        fprintf(stderr, "hvm: %s cannot be imported: %zu problem%s\n", dir, np,
                np == 1 ? "" : "s");
        json_array_foreach(problems, i, x)
            fprintf(stderr, "  - %s\n", json_string_value(x));
        json_decref(problems);
        return EXIT_ERROR;
    }
    json_decref(problems);
    if (r < 0)
        return cli_fail();
    printf(a.dry_run ? "%s can be imported\n" : "imported %s\n", dir);
    return EXIT_OK;
}

int cmd_vm_move(const struct cli_args *a)
{
    struct store s;
    if (vm_cli_open_store(cli_text(a, "store"), &s))
        return EXIT_ERROR;
    int r = vm_move(&s, cli_pos(a, 0), cli_pos(a, 1), cli_flag(a, "with-base"), NULL);
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}
