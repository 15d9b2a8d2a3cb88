/* libFuzzer target: a bundle's manifest.json given as bytes, checked the
 * way import checks it. At start-up a real bundle is exported (a VM with a
 * dynamic disk and a checkpoint, so its chain graph has a differencing
 * layer) into a scratch folder; each input becomes that bundle's
 * manifest.json and goes through vm_import --dry-run (every check of
 * bundle.c: the files against the manifest, sizes, hashes, the chain graph
 * against the disks' own ids) and through the shape check
 * vm_manifest_problems. A dry run writes nothing; the scratch folder is
 * removed at exit. Nothing may crash, leak, overflow or allocate without
 * bound. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "util/fileio.h"
#include "vm/bundle.h"
#include "vm/checkpoint.h"
#include "vm/validate.h"
#include "vm/vm.h"

static char scratch[] = "/tmp/hvm-fuzz-manifest.XXXXXX";
static struct store store;
static char *bundle, *manifest;

static void die(const char *what)
{
    fprintf(stderr, "fuzz-manifest: %s: %s\n", what, hvm_error_message());
    exit(1);
}

static void cleanup(void)
{
    store_close(&store);
    path_remove_tree(scratch);
}

static void make_bundle(void)
{
    char *root = path_join(scratch, "store");
    bundle = path_join(scratch, "bundle");
    manifest = path_join(bundle, "manifest.json");
    if (store_open(root, &store) < 0)
        die("store");
    struct vm_create_params p = {.name = "src", .cpus = 1, .memory = 64u << 20, .new_disk = 1u << 20};
    if (vm_create(&store, &p) < 0)
        die("create");
    struct vm *vm;
    if (vm_open(&store, "src", &vm) < 0 || vm_checkpoint_take(vm, "c1", NULL) < 0)
        die("checkpoint");
    struct export_params ep = {.dest = bundle};
    if (vm_export(vm, &ep) < 0)
        die("export");
    vm_close(vm);
    free(root);
}

/* The bundle's own manifest (random disk names: made at start-up) is the
 * seed that gets past the hashes: it goes into the corpus folder, the
 * first argument that is not an option, before libFuzzer reads it. */
static void seed_corpus(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (argv[i][0] == '-' || stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        char *to = path_join(argv[i], "exported-manifest.json");
        if (!to || file_copy(manifest, to) < 0)
            die("seed");
        free(to);
        return;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (!mkdtemp(scratch))
        return 1;
    atexit(cleanup);
    make_bundle();
    seed_corpus(*argc, *argv);
    hvm_error_clear();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Written plainly: a durable replace would sync every run. */
    FILE *f = fopen(manifest, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        die("manifest");
    struct import_params ip = {.dir = bundle, .mode = IMPORT_COPY, .name = "dst", .dry_run = true};
    json_t *problems = NULL;
    vm_import(&store, &ip, &problems);
    json_decref(problems);
    json_t *m = json_loadb((const char *)data, size, 0, NULL);
    json_t *list = json_array();
    vm_manifest_problems(m, list);
    json_decref(list);
    json_decref(m);
    hvm_error_clear();
    return 0;
}
