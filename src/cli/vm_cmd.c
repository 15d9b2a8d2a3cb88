/* hvm vm create | list | show | set | rename | delete | check */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/vm_common.h"
#include "disk/disk.h"
#include "util/error.h"
#include "util/size.h"
#include "vhd/check.h"
#include "vm/checkpoint.h"
#include "runtime/runtime.h"
#include "vm/autostart.h"
#include "vm/vm.h"

static const struct command verbs[] = {
    {"create", cmd_vm_create, "create a VM (from a base image, a disk, or a new disk)"},
    {"list", cmd_vm_list, "list the VMs of the store"},
    {"show", cmd_vm_show, "show a VM's configuration, state and disks"},
    {"set", cmd_vm_set, "change CPUs, memory, disks, network adapters"},
    {"rename", cmd_vm_rename, "rename a VM"},
    {"delete", cmd_vm_delete, "delete a VM and its files"},
    {"check", cmd_vm_check, "verify a VM, finishing an interrupted operation"},
    {"serve", cmd_vm_serve, "serve a VM's disk or a checkpoint's over NBD"},
    {"export", cmd_vm_export, "export a VM with its checkpoints into one folder"},
    {"import", cmd_vm_import, "import an exported VM folder"},
    {"move", cmd_vm_move, "move a VM's folder to other storage"},
    {"start", cmd_vm_start, "start (boot, or resume a saved state)"},
    {"stop", cmd_vm_stop, "shut down through ACPI (--force: power off after --timeout)"},
    {"turn-off", cmd_vm_turn_off, "power off at once"},
    {"pause", cmd_vm_pause, "pause the running VM"},
    {"resume", cmd_vm_resume, "resume a paused VM"},
    {"save", cmd_vm_save, "save memory to the VM folder and stop (state Saved)"},
    {"console", cmd_vm_console, "attach to the serial console (Ctrl-] detaches)"},
    {NULL, NULL, NULL},
};

int cmd_vm(int argc, char **argv)
{
    return cli_dispatch("vm", verbs, argc, argv);
}

int vm_cli_open_store_how(const char *dir, enum store_missing how, struct store *s)
{
    if (store_open_how(dir, how, s) < 0)
        return cli_fail();
    if (s->created)
        fprintf(stderr, "hvm: created store %s\n", s->root);
    return EXIT_OK;
}

int vm_cli_open_store(const char *dir, struct store *s)
{
    return vm_cli_open_store_how(dir, STORE_MUST_EXIST, s);
}

/* A listing of the default store on a host that has none lists nothing:
 * no VM was ever made here, which is no error. A store named by --store or
 * $HVM_STORE that is not there is most likely mistyped, and says so. */
int vm_cli_open_listed_store(const char *dir, struct store *s)
{
    const char *env = getenv("HVM_STORE");
    bool named = (dir && dir[0]) || (env && env[0]);
    return vm_cli_open_store_how(dir, named ? STORE_MUST_EXIST : STORE_MAY_BE_MISSING, s);
}

int vm_cli_open(const char *store_dir, const char *name, struct store *s, struct vm **vm)
{
    if (vm_cli_open_store(store_dir, s))
        return EXIT_ERROR;
    if (vm_open(s, name, vm) < 0) {
        store_close(s);
        return cli_fail();
    }
    /* Something the user should hear about, such as a dead worker. */
    if ((*vm)->notice[0])
        fprintf(stderr, "hvm: note: %s\n", (*vm)->notice);
    return EXIT_OK;
}

static const char create_usage[] =
    "usage: hvm vm create NAME [--cpus N] [--memory SIZE]\n"
    "                      [--from BASE.vhd | --disk FILE.vhd | --new-disk SIZE]\n"
    "                      [--nic SWITCH]... [--store DIR]\n"
    "       hvm vm create NAME --clone OTHER [--checkpoint X]\n"
    "\n"
    "  --from BASE     the VM's disk is a differencing child of BASE, which is\n"
    "                  registered as a base image and protected read-only\n"
    "  --disk FILE     copy FILE into the VM folder as its disk\n"
    "  --new-disk SIZE a new empty dynamic disk\n"
    "  --nic SWITCH    a network adapter on SWITCH with a new stable MAC address\n"
    "  --clone OTHER   an instant linked clone of OTHER at its checkpoint X\n"
    "                  (default: the checkpoint OTHER's current state is based on)\n"
    "Defaults: 1 CPU, 1G memory. The store: --store, $HVM_STORE, /var/lib/hvm.\n";

int cmd_vm_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cpus", required_argument, NULL, 'c'},
        {"memory", required_argument, NULL, 'm'},
        {"from", required_argument, NULL, 'f'},
        {"disk", required_argument, NULL, 'd'},
        {"new-disk", required_argument, NULL, 'n'},
        {"nic", required_argument, NULL, 'N'},
        {"clone", required_argument, NULL, 'C'},
        {"checkpoint", required_argument, NULL, 'k'},
        {"store", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct vm_create_params p = {0};
    const char *store_dir = NULL;
    const char *nics[32];
    int c, sources = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            p.cpus = atoi(optarg);
            if (p.cpus < 1 || p.cpus > 256)
                return cli_failf("--cpus: '%s' is not a CPU count (1-256)", optarg);
            break;
        case 'm':
            if (cli_size("--memory", optarg, &p.memory))
                return EXIT_ERROR;
            if (p.memory < (16u << 20))
                return cli_failf("--memory: at least 16M");
            break;
        case 'f': p.from = optarg; sources++; break;
        case 'd': p.disk = optarg; sources++; break;
        case 'n':
            if (cli_size("--new-disk", optarg, &p.new_disk))
                return EXIT_ERROR;
            sources++;
            break;
        case 'N':
            if (p.n_nics == 32)
                return cli_failf("--nic: at most 32 adapters");
            nics[p.n_nics++] = optarg;
            break;
        case 'C': p.clone = optarg; sources++; break;
        case 'k': p.clone_checkpoint = optarg; break;
        case 'S': store_dir = optarg; break;
        case 'h': return cli_help(create_usage);
        default: return cli_usage_error(create_usage, "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(create_usage, "create takes one NAME");
    if (sources > 1)
        return cli_usage_error(create_usage, "give at most one of --from, --disk, --new-disk, --clone");
    if (p.clone_checkpoint && !p.clone)
        return cli_usage_error(create_usage, "--checkpoint goes with --clone");
    p.name = argv[optind];
    p.nics = nics;
    struct store s;
    /* The first VM makes the store (a clone needs a VM of the store). */
    if (vm_cli_open_store_how(store_dir, p.clone ? STORE_MUST_EXIST : STORE_CREATE, &s))
        return EXIT_ERROR;
    int r = p.clone ? vm_clone(&s, &p) : vm_create(&s, &p);
    store_close(&s);
    if (r < 0)
        return cli_fail();
    printf("created VM '%s'\n", p.name);
    return EXIT_OK;
}

int vm_cli_parse(int argc, char **argv, const char *usage, int want, const char **store_dir,
                 bool *as_json)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'S')
            *store_dir = optarg;
        else if (c == 'j' && as_json)
            *as_json = true;
        else if (c == 'h') {
            cli_help(usage);
            return -1;
        } else {
            cli_usage_error(usage, "bad option");
            return -2;
        }
    }
    if (want >= 0 && argc - optind != want) {
        cli_usage_error(usage, "expected %d argument%s", want, want == 1 ? "" : "s");
        return -2;
    }
    return 0;
}

#define SIMPLE(usage, want, store_dir, as_json)                                            \
    do {                                                                                   \
        int pr_ = vm_cli_parse(argc, argv, usage, want, store_dir, as_json);               \
        if (pr_ == -1)                                                                     \
            return EXIT_OK;                                                                \
        if (pr_ < 0)                                                                       \
            return EXIT_ERROR;                                                             \
    } while (0)

static json_t *vm_summary(struct vm *vm)
{
    json_t *cfg = vm_config(vm);
    size_t visible = 0, i;
    json_t *c;
    json_array_foreach(vm_checkpoints(vm), i, c)
        visible += !json_is_true(json_object_get(c, "hidden"));
    /* A running VM's live state (Running or Paused) comes from its worker. */
    const char *state = vm_state(vm);
    json_t *live = NULL;
    if (runtime_alive(vm) && runtime_request(vm, json_pack("{s:s}", "op", "status"), &live) == 0)
        state = json_string_value(json_object_get(live, "state"));
    json_t *rt = json_object_get(vm->doc, "runtime");
    json_t *o = json_pack("{s:s, s:s, s:s, s:O, s:O, s:i, s:i, s:i}", "name", vm->name, "id",
                     json_string_value(json_object_get(vm->doc, "id")), "state", state,
                     "cpus", json_object_get(cfg, "cpus"), "memory", json_object_get(cfg, "memory"),
                     "drives", (int)json_array_size(json_object_get(cfg, "drives")), "nics",
                     (int)json_array_size(json_object_get(cfg, "nics")), "checkpoints",
                     (int)visible);
    if (live) {
        json_object_set(o, "worker_pid", json_object_get(live, "worker"));
        json_object_set(o, "qemu_pid", json_object_get(live, "qemu"));
    }
    if (rt) {
        json_object_set(o, "accel", json_object_get(rt, "accel"));
        json_object_set_new(o, "uptime", json_integer((json_int_t)(time(NULL) -
                                          json_integer_value(json_object_get(rt, "started")))));
    }
    json_decref(live);
    return o;
}

static const char list_usage[] = "usage: hvm vm list [--json] [--store DIR]\n";

int cmd_vm_list(int argc, char **argv)
{
    const char *store_dir = NULL;
    bool as_json = false;
    SIMPLE(list_usage, 0, &store_dir, &as_json);
    struct store s;
    char **names;
    if (vm_cli_open_listed_store(store_dir, &s))
        return EXIT_ERROR;
    if (store_list(&s, &names) < 0) {
        store_close(&s);
        return cli_fail();
    }
    json_t *arr = json_array();
    for (size_t i = 0; names[i]; i++) {
        struct vm *vm;
        if (vm_open(&s, names[i], &vm) < 0) {
            json_array_append_new(arr, json_pack("{s:s, s:s}", "name", names[i], "state",
                                                 strstr(hvm_error_message(), "busy") ? "Busy"
                                                                                    : "Unreadable"));
            continue;
        }
        if (vm->notice[0])
            fprintf(stderr, "hvm: note: %s\n", vm->notice);
        json_array_append_new(arr, vm_summary(vm));
        vm_close(vm);
    }
    store_names_free(names);
    store_close(&s);
    if (as_json)
        return cli_print_json(arr);
    printf("%-20s %-8s %4s %10s %6s %11s %5s %8s\n", "NAME", "STATE", "CPUS", "MEMORY", "DRIVES",
           "CHECKPOINTS", "ACCEL", "UPTIME");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        char mem[32] = "-";
        if (json_object_get(v, "memory"))
            size_format((uint64_t)json_integer_value(json_object_get(v, "memory")), mem, sizeof mem);
        char up[32] = "-";
        if (json_object_get(v, "uptime")) {
            long long t = json_integer_value(json_object_get(v, "uptime"));
            snprintf(up, sizeof up, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
        }
        printf("%-20s %-8s %4lld %10s %6lld %11lld %5s %8s\n", json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "state")),
               (long long)json_integer_value(json_object_get(v, "cpus")), mem,
               (long long)json_integer_value(json_object_get(v, "drives")),
               (long long)json_integer_value(json_object_get(v, "checkpoints")),
               json_string_value(json_object_get(v, "accel")) ? json_string_value(json_object_get(v, "accel")) : "-",
               up);
    }
    json_decref(arr);
    return EXIT_OK;
}

static const char show_usage[] = "usage: hvm vm show NAME [--json] [--store DIR]\n";

static json_t *drives_detail(struct vm *vm, json_t *config)
{
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(config, "drives"), i, d) {
        json_t *o = json_deep_copy(d);
        char *path = vm_path(vm, json_string_value(json_object_get(d, "file")));
        struct disk *disk;
        if (path && disk_open(path, DISK_OPEN_READ_ONLY, &disk) == 0) {
            json_object_set_new(o, "size", json_integer((json_int_t)disk->size));
            json_t *chain = json_array();
            for (struct disk *l = disk->parent; l; l = l->parent) {
                char *abs = realpath(l->path, NULL);
                json_array_append_new(chain, json_string(abs ? abs : l->path));
                free(abs);
            }
            json_object_set_new(o, "parents", chain);
            disk_close(disk);
        } else {
            json_object_set_new(o, "error", json_string(hvm_error_message()));
        }
        free(path);
        json_array_append_new(out, o);
    }
    return out;
}

int cmd_vm_show(int argc, char **argv)
{
    const char *store_dir = NULL;
    bool as_json = false;
    SIMPLE(show_usage, 1, &store_dir, &as_json);
    struct store s;
    struct vm *vm;
    if (vm_cli_open(store_dir, argv[optind], &s, &vm))
        return EXIT_ERROR;
    json_t *o = vm_summary(vm);
    json_t *cfg = vm_config(vm);
    /* Where the files really are (a moved or registered VM is a link). */
    char *real = realpath(vm->dir, NULL);
    json_object_set_new(o, "folder", json_string(real ? real : vm->dir));
    free(real);
    json_object_set(o, "created", json_object_get(vm->doc, "created"));
    if (json_object_get(vm->doc, "base"))
        json_object_set(o, "base", json_object_get(vm->doc, "base"));
    json_object_set_new(o, "drives", drives_detail(vm, cfg));
    json_object_set(o, "nics", json_object_get(cfg, "nics"));
    json_object_set_new(o, "disk_io", json_string(vm_disk_io(cfg)));
    struct vm_autostart as;
    vm_autostart_get(cfg, &as);
    json_object_set_new(o, "autostart", vm_autostart_json(&as));
    json_object_set_new(o, "autostop", json_string(vm_autostop_get(cfg)));
    const char *parent = vm_checkpoint_visible_parent(vm->doc, json_string_value(json_object_get(
                                                          json_object_get(vm->doc, "now"), "parent")));
    json_t *pc = vm_checkpoint_by_id(vm->doc, parent);
    json_object_set_new(o, "checkpoint", pc ? json_pack("{s:O, s:O}", "id", json_object_get(pc, "id"),
                                                        "name", json_object_get(pc, "name"))
                                            : json_null());
    if (json_object_get(vm->doc, "saved_memory"))
        json_object_set(o, "saved_memory", json_object_get(vm->doc, "saved_memory"));
    vm_close(vm);
    store_close(&s);
    if (as_json)
        return cli_print_json(o);
    char mem[32];
    printf("Name:        %s\nId:          %s\nState:       %s\nFolder:      %s\nCreated:     %s\n",
           json_string_value(json_object_get(o, "name")), json_string_value(json_object_get(o, "id")),
           json_string_value(json_object_get(o, "state")), json_string_value(json_object_get(o, "folder")),
           json_string_value(json_object_get(o, "created")));
    if (json_object_get(o, "accel"))
        printf("Accelerator: %s\nUptime:      %lld s\n", json_string_value(json_object_get(o, "accel")),
               (long long)json_integer_value(json_object_get(o, "uptime")));
    printf("CPUs:        %lld\nMemory:      %s\n", (long long)json_integer_value(json_object_get(o, "cpus")),
           size_format((uint64_t)json_integer_value(json_object_get(o, "memory")), mem, sizeof mem));
    printf("Disk I/O:    %s\n", json_string_value(json_object_get(o, "disk_io")));
    if (as.enabled)
        printf("Autostart:   on, %d s after host start\n", as.delay);
    else
        printf("Autostart:   off\n");
    printf("Autostop:    %s\n", json_string_value(json_object_get(o, "autostop")));
    if (json_object_get(o, "base"))
        printf("Base:        %s\n", json_string_value(json_object_get(o, "base")));
    printf("Checkpoint:  %s\n", pc ? json_string_value(json_object_get(json_object_get(o, "checkpoint"), "name"))
                                   : "(none)");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(o, "drives"), i, d) {
        char sz[32] = "?";
        if (json_object_get(d, "size"))
            size_format((uint64_t)json_integer_value(json_object_get(d, "size")), sz, sizeof sz);
        printf("Drive %lld:     %s (%s", (long long)json_integer_value(json_object_get(d, "slot")),
               json_string_value(json_object_get(d, "file")), sz);
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(d, "parents"), k, p)
            printf("%s%s", k ? " <- " : ", on ", json_string_value(p));
        if (json_object_get(d, "error"))
            printf(", BROKEN: %s", json_string_value(json_object_get(d, "error")));
        printf(")\n");
    }
    json_array_foreach(json_object_get(o, "nics"), i, d)
        printf("NIC %zu:       %s on switch %s\n", i, json_string_value(json_object_get(d, "mac")),
               json_string_value(json_object_get(d, "switch")));
    json_decref(o);
    return EXIT_OK;
}

static const char rename_usage[] = "usage: hvm vm rename NAME NEWNAME [--store DIR]\n";

int cmd_vm_rename(int argc, char **argv)
{
    const char *store_dir = NULL;
    SIMPLE(rename_usage, 2, &store_dir, NULL);
    struct store s;
    if (vm_cli_open_store(store_dir, &s))
        return EXIT_ERROR;
    int r = vm_rename(&s, argv[optind], argv[optind + 1]);
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}

static const char delete_usage[] =
    "usage: hvm vm delete NAME [--store DIR]\n"
    "\n"
    "Deletes the VM's folder: configuration, checkpoints and disks. A base image\n"
    "it was made from stays (see 'hvm base').\n";

int cmd_vm_delete(int argc, char **argv)
{
    const char *store_dir = NULL;
    SIMPLE(delete_usage, 1, &store_dir, NULL);
    struct store s;
    if (vm_cli_open_store(store_dir, &s))
        return EXIT_ERROR;
    int r = vm_delete(&s, argv[optind]);
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}

static const char check_usage[] =
    "usage: hvm vm check [NAME] [--json] [--store DIR]\n"
    "\n"
    "Finishes an interrupted operation from the VM's journal, then verifies the\n"
    "configuration, the checkpoint tree, every disk chain (structure, identity\n"
    "of every link) and that no file in the folder is orphaned. Without NAME:\n"
    "the whole store, its base registry (bases whose file is gone) and every VM.\n"
    "Exit status: 0 clean, 1 problems found, 2 error.\n";

static void print_problems(const char *who, json_t *problems)
{
    size_t i;
    json_t *p;
    json_array_foreach(problems, i, p)
        printf("%s: problem: %s\n", who, json_string_value(p));
    if (!json_array_size(problems))
        printf("%s: clean\n", who);
}

/* hvm vm check without a VM: the registry, then each VM as 'vm check' does. */
static int check_store(const char *store_dir, bool as_json)
{
    struct store s;
    char **names;
    if (vm_cli_open_store(store_dir, &s))
        return EXIT_ERROR;
    if (store_list(&s, &names) < 0) {
        store_close(&s);
        return cli_fail();
    }
    json_t *own = store_verify(&s), *vms = json_array();
    size_t n = json_array_size(own);
    for (size_t i = 0; names[i]; i++) {
        struct vm *vm;
        json_t *problems;
        if (vm_open(&s, names[i], &vm) < 0) {
            problems = json_array();
            vm_problem(problems, "%s", hvm_error_message());
        } else {
            if (vm->notice[0])
                fprintf(stderr, "hvm: note: %s\n", vm->notice);
            problems = vm_verify(vm);
            vm_close(vm);
        }
        n += json_array_size(problems);
        json_array_append_new(vms, json_pack("{s:s, s:s, s:o}", "vm", names[i], "result",
                                             json_array_size(problems) ? "problems" : "clean",
                                             "problems", problems));
    }
    store_names_free(names);
    if (as_json) {
        cli_print_json(json_pack("{s:s, s:s, s:o, s:o}", "store", s.root, "result",
                                 n ? "problems" : "clean", "problems", own, "vms", vms));
    } else {
        print_problems("store", own);
        size_t i;
        json_t *v;
        json_array_foreach(vms, i, v)
            print_problems(json_string_value(json_object_get(v, "vm")), json_object_get(v, "problems"));
        json_decref(own);
        json_decref(vms);
    }
    store_close(&s);
    return n ? EXIT_PROBLEMS : EXIT_OK;
}

int cmd_vm_check(int argc, char **argv)
{
    const char *store_dir = NULL;
    bool as_json = false;
    int pr = vm_cli_parse(argc, argv, check_usage, -1, &store_dir, &as_json);
    if (pr == -1)
        return EXIT_OK;
    if (pr < 0)
        return EXIT_ERROR;
    if (argc - optind == 0)
        return check_store(store_dir, as_json);
    if (argc - optind != 1)
        return cli_usage_error(check_usage, "check takes at most one NAME");
    struct store s;
    struct vm *vm;
    vm_journal_refusal_report(true); /* a refused journal is one of the problems */
    if (vm_cli_open(store_dir, argv[optind], &s, &vm))
        return EXIT_ERROR;
    json_t *problems = vm_verify(vm);
    vm_close(vm);
    store_close(&s);
    size_t n = json_array_size(problems);
    if (as_json)
        cli_print_json(json_pack("{s:s, s:s, s:O}", "vm", argv[optind], "result",
                                 n ? "problems" : "clean", "problems", problems));
    else
        print_problems(argv[optind], problems);
    json_decref(problems);
    return n ? EXIT_PROBLEMS : EXIT_OK;
}
