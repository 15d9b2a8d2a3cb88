/* hvm vm export | import | move */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/vm_common.h"
#include "runtime/runtime.h"
#include "util/error.h"
#include "vm/bundle.h"
#include "vm/checkpoint.h"

static const char export_usage[] =
    "usage: hvm vm export VM DEST [--checkpoint X] [--flatten] [--store DIR]\n"
    "\n"
    "Writes one self-contained folder DEST: the configuration, the whole\n"
    "checkpoint tree, memory states, every disk of every chain (shared bases\n"
    "included, in bases/) and manifest.json (SHA-256 of each file, the chain\n"
    "graph, the format version). Free space is checked first; DEST appears\n"
    "only when complete.\n"
    "  --checkpoint X  export that one moment as a standalone VM (disks flattened)\n"
    "  --flatten       export the current state only, each chain as one disk\n";

static const char import_usage[] =
    "usage: hvm vm import DIR [--mode register|restore|copy] [--name NEW] [--dry-run]\n"
    "                         [--store DIR]\n"
    "\n"
    "Validates the whole bundle first (manifest hashes and sizes, chains,\n"
    "configuration, name or id clash) and lists every problem at once; the\n"
    "store changes only if the import can succeed. Paths that leave the bundle,\n"
    "symlinks and parent locators pointing outside are never followed. Only\n"
    "what a bundle may contain is imported (the configuration, the disks of the\n"
    "chain graph, memory states, kernel and initrd under boot/); other files\n"
    "are left out with a note, host paths of a kernel or initrd are dropped,\n"
    "and a journal, lock or run/ folder in DIR refuses the import.\n"
    "  --mode register  use DIR where it is\n"
    "  --mode restore   copy into the store, keeping the VM's id (default)\n"
    "  --mode copy      copy into the store with a new id and new MAC addresses\n"
    "  --dry-run        only validate and report\n";

static const char move_usage[] =
    "usage: hvm vm move VM DEST [--with-base] [--store DIR]\n"
    "\n"
    "Relocates the VM's folder to DEST (for example on shared storage): copy,\n"
    "verify every file, switch the store to the new place, remove the old.\n"
    "  --with-base  also copy the base image the VM is made from into DEST/bases/\n"
    "               and point the VM's disks at that copy (the original base stays\n"
    "               for other VMs)\n";

struct args {
    const char *store, *checkpoint, *mode, *name;
    bool flatten, dry_run, with_base;
};

static int parse(int argc, char **argv, const char *usage, struct args *a)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 'S'},
        {"checkpoint", required_argument, NULL, 'c'},
        {"flatten", no_argument, NULL, 'f'},
        {"mode", required_argument, NULL, 'm'},
        {"name", required_argument, NULL, 'n'},
        {"dry-run", no_argument, NULL, 'd'},
        {"with-base", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'S': a->store = optarg; break;
        case 'c': a->checkpoint = optarg; break;
        case 'f': a->flatten = true; break;
        case 'm': a->mode = optarg; break;
        case 'n': a->name = optarg; break;
        case 'd': a->dry_run = true; break;
        case 'b': a->with_base = true; break;
        case 'h': cli_help(usage); return -1;
        default: cli_usage_error(usage, "bad option"); return -2;
        }
    }
    return argc - optind;
}

int cmd_vm_export(int argc, char **argv)
{
    struct args a = {0};
    int n = parse(argc, argv, export_usage, &a);
    if (n < 0)
        return n == -1 ? EXIT_OK : EXIT_ERROR;
    if (n != 2)
        return cli_usage_error(export_usage, "export takes VM and DEST");
    struct store s;
    struct vm *vm;
    if (vm_cli_open(a.store, argv[optind], &s, &vm))
        return EXIT_ERROR;
    int r = 0;
    struct progress p;
    progress_init(&p, "export");
    struct bundle_progress bp = {progress_update, &p};
    struct export_params ep = {argv[optind + 1], a.checkpoint, a.flatten, &bp, NULL};
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
    printf("exported '%s' to %s\n", argv[optind], argv[optind + 1]);
    return EXIT_OK;
}

int cmd_vm_import(int argc, char **argv)
{
    struct args a = {0};
    int n = parse(argc, argv, import_usage, &a);
    if (n < 0)
        return n == -1 ? EXIT_OK : EXIT_ERROR;
    if (n != 1)
        return cli_usage_error(import_usage, "import takes one DIR");
    enum import_mode mode = IMPORT_RESTORE;
    if (a.mode && strcmp(a.mode, "register") == 0)
        mode = IMPORT_REGISTER;
    else if (a.mode && strcmp(a.mode, "copy") == 0)
        mode = IMPORT_COPY;
    else if (a.mode && strcmp(a.mode, "restore") != 0)
        return cli_usage_error(import_usage, "--mode must be register, restore or copy");
    struct store s;
    /* An import may make the store's first VM; a dry run makes nothing. */
    if (vm_cli_open_store_how(a.store, a.dry_run ? STORE_MAY_BE_MISSING : STORE_CREATE, &s))
        return EXIT_ERROR;
    struct progress p;
    progress_init(&p, "import");
    struct bundle_progress bp = {progress_update, &p};
    json_t *notes = json_array();
    struct import_params ip = {argv[optind], mode, a.name, a.dry_run, &bp, notes};
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
        fprintf(stderr, "hvm: %s cannot be imported: %zu problem%s\n", argv[optind], np,
                np == 1 ? "" : "s");
        json_array_foreach(problems, i, x)
            fprintf(stderr, "  - %s\n", json_string_value(x));
        json_decref(problems);
        return EXIT_ERROR;
    }
    json_decref(problems);
    if (r < 0)
        return cli_fail();
    printf(a.dry_run ? "%s can be imported\n" : "imported %s\n", argv[optind]);
    return EXIT_OK;
}

int cmd_vm_move(int argc, char **argv)
{
    struct args a = {0};
    int n = parse(argc, argv, move_usage, &a);
    if (n < 0)
        return n == -1 ? EXIT_OK : EXIT_ERROR;
    if (n != 2)
        return cli_usage_error(move_usage, "move takes VM and DEST");
    struct store s;
    if (vm_cli_open_store(a.store, &s))
        return EXIT_ERROR;
    int r = vm_move(&s, argv[optind], argv[optind + 1], a.with_base, NULL);
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}
