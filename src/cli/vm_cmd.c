/* hvm vm create | list | show | set | rename | delete | check */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "disk/disk.h"
#include "util/error.h"
#include "util/size.h"
#include "disk/foreign.h"
#include "vhd/check.h"
#include "vm/firmware.h"
#include "vm/checkpoint.h"
#include "runtime/runtime.h"
#include "vm/autostart.h"
#include "vm/migrate.h"
#include "vm/vm.h"

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

/* The "moved" record of a VM that is not in the store (any more). */
static json_t *moved_record(struct store *s, const char *name)
{
    char *entry = store_vm_dir(s, name);
    bool gone = entry && access(entry, F_OK) != 0;
    free(entry);
    return gone ? store_moved_get(s, name) : NULL;
}

int vm_cli_open(const char *store_dir, const char *name, struct store *s, struct vm **vm)
{
    if (vm_cli_open_store(store_dir, s))
        return EXIT_ERROR;
    if (vm_open(s, name, vm) < 0) {
        json_t *moved = moved_record(s, name);
        if (moved)
            hvm_error(ENOENT, "VM '%s' moved to host %s (%s); it is managed there now", name,
                      json_string_value(json_object_get(moved, "host")),
                      json_string_value(json_object_get(moved, "to")));
        json_decref(moved);
        store_close(s);
        return cli_fail();
    }
    /* Something the user should hear about, such as a dead worker. */
    if ((*vm)->notice[0])
        fprintf(stderr, "hvm: note: %s\n", (*vm)->notice);
    return EXIT_OK;
}

int cmd_vm_create(const struct cli_args *a)
{
    struct vm_create_params p = {0};
    const char *store_dir = cli_text(a, "store");
    const char *const *nics;
    int sources = 0;
    if (cli_flag(a, "cpus")) {
        long long cpus = cli_int_or(a, "cpus", 0);
        if (cpus < 1 || cpus > 256)
            return cli_failf("--cpus: '%s' is not a CPU count (1-256)", cli_text(a, "cpus"));
        p.cpus = (int)cpus;
    }
    if (cli_flag(a, "memory")) {
        p.memory = cli_size_or(a, "memory", 0);
        if (p.memory < (16u << 20))
            return cli_failf("--memory: at least 16M");
    }
    sources += (p.from = cli_text(a, "from")) != NULL;
    sources += (p.disk = cli_text(a, "disk")) != NULL;
    p.new_disk = cli_size_or(a, "new-disk", 0);
    sources += cli_flag(a, "new-disk");
    sources += (p.clone = cli_text(a, "clone")) != NULL;
    p.clone_checkpoint = cli_text(a, "checkpoint");
    p.n_nics = cli_all(a, "nic", &nics);
    if (sources > 1)
        return cli_verb_error(a, "give at most one of --from, --disk, --new-disk, --clone");
    if (p.clone_checkpoint && !p.clone)
        return cli_verb_error(a, "--checkpoint goes with --clone");
    p.name = cli_pos(a, 0);
    p.nics = (const char **)nics;
    p.firmware = cli_text(a, "firmware");
    p.secure_boot = cli_flag(a, "secure-boot");
    if (p.clone && (p.firmware || p.secure_boot))
        return cli_verb_error(a, "a clone takes its checkpoint's firmware: --firmware and "
                              "--secure-boot do not go with --clone");
    if (p.secure_boot && p.firmware && strcmp(p.firmware, "uefi") != 0)
        return cli_verb_error(a, "--secure-boot needs --firmware uefi");
    /* The source is judged before the first VM makes the store: a refused
     * create leaves nothing behind. */
    const char *source = p.disk ? p.disk : p.from;
    if (source && !(p.disk && disk_is_vhdx(p.disk)) && disk_foreign_require_vhd(source) < 0)
        return cli_fail();
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
        char boot[128];
        json_object_set_new(o, "boot", runtime_boot_status(vm, boot, sizeof boot) == 0
                                           ? json_string(boot) : json_null());
    }
    if (rt) {
        json_object_set(o, "accel", json_object_get(rt, "accel"));
        json_object_set_new(o, "uptime", json_integer((json_int_t)(time(NULL) -
                                          json_integer_value(json_object_get(rt, "started")))));
    }
    json_decref(live);
    return o;
}

int cmd_vm_list(const struct cli_args *a)
{
    const char *store_dir = cli_text(a, "store");
    bool as_json = cli_flag(a, "json");
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
    /* VMs that migrated to another host: where they went. */
    json_t *moved = store_moved_all(&s);
    const char *mname;
    json_t *rec;
    json_object_foreach(moved, mname, rec) {
        char *entry = store_vm_dir(&s, mname);
        if (entry && access(entry, F_OK) != 0)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:O, s:O, s:O}", "name", mname,
                                                 "state", "Moved", "host",
                                                 json_object_get(rec, "host"), "to",
                                                 json_object_get(rec, "to"), "id",
                                                 json_object_get(rec, "id")));
        free(entry);
    }
    json_decref(moved);
    store_close(&s);
    if (as_json)
        return cli_print_json(arr);
    printf("%-20s %-8s %4s %10s %6s %11s %5s %8s  %s\n", "NAME", "STATE", "CPUS", "MEMORY", "DRIVES",
           "CHECKPOINTS", "ACCEL", "UPTIME", "BOOT");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "state")), "Moved") == 0) {
            printf("%-20s %-8s moved to host %s\n", json_string_value(json_object_get(v, "name")),
                   "Moved", json_string_value(json_object_get(v, "host")));
            continue;
        }
        char mem[32] = "-";
        if (json_object_get(v, "memory"))
            size_format((uint64_t)json_integer_value(json_object_get(v, "memory")), mem, sizeof mem);
        char up[32] = "-";
        if (json_object_get(v, "uptime")) {
            long long t = json_integer_value(json_object_get(v, "uptime"));
            snprintf(up, sizeof up, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
        }
        printf("%-20s %-8s %4lld %10s %6lld %11lld %5s %8s  %s\n", json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "state")),
               (long long)json_integer_value(json_object_get(v, "cpus")), mem,
               (long long)json_integer_value(json_object_get(v, "drives")),
               (long long)json_integer_value(json_object_get(v, "checkpoints")),
               json_string_value(json_object_get(v, "accel")) ? json_string_value(json_object_get(v, "accel")) : "-",
               up, json_string_value(json_object_get(v, "boot")) ?: "-");
    }
    json_decref(arr);
    return EXIT_OK;
}

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

/* The configuration keys that vm show presents in its own way. */
static bool is_shown_key(const char *key)
{
    static const char *const shown[] = {"cpus",    "memory", "drives",   "nics",
                                        "disk_io", "boot",   "autostart", "autostop",
                                        "dvds",    "boot_order", "firmware", NULL};
    for (int i = 0; shown[i]; i++)
        if (strcmp(key, shown[i]) == 0)
            return true;
    return false;
}

/* "Autostart:   yes": a setting vm show has no line of its own for. */
static void print_setting(const char *key, json_t *val)
{
    char label[64];
    snprintf(label, sizeof label, "%s:", key);
    label[0] = (char)(label[0] >= 'a' && label[0] <= 'z' ? label[0] - 'a' + 'A' : label[0]);
    for (char *p = label; *p; p++)
        if (*p == '_')
            *p = ' ';
    printf("%-12s ", label);
    if (json_is_string(val)) {
        printf("%s\n", json_string_value(val));
    } else if (json_is_boolean(val)) {
        printf("%s\n", json_is_true(val) ? "yes" : "no");
    } else {
        char *text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "?");
        free(text);
    }
}

int cmd_vm_show(const struct cli_args *a)
{
    const char *store_dir = cli_text(a, "store");
    bool as_json = cli_flag(a, "json");
    struct store s;
    struct vm *vm;
    /* A VM that migrated: the record of where it went. */
    if (store_open_how(store_dir, STORE_MAY_BE_MISSING, &s) == 0) {
        json_t *moved = moved_record(&s, cli_pos(a, 0));
        store_close(&s);
        if (moved) {
            json_object_set_new(moved, "name", json_string(cli_pos(a, 0)));
            json_object_set_new(moved, "state", json_string("Moved"));
            if (as_json)
                return cli_print_json(moved);
            printf("Name:        %s\nState:       Moved\nMoved to:    host %s (%s)\nId:          %s\n",
                   cli_pos(a, 0), json_string_value(json_object_get(moved, "host")),
                   json_string_value(json_object_get(moved, "to")),
                   json_string_value(json_object_get(moved, "id")));
            json_decref(moved);
            return EXIT_OK;
        }
    }
    if (vm_cli_open(store_dir, cli_pos(a, 0), &s, &vm))
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
    /* Direct kernel boot, null when not set up. */
    json_t *boot = json_object_get(cfg, "boot");
    static const char *const boot_keys[] = {"kernel", "initrd", "cmdline"};
    for (int k = 0; k < 3; k++) {
        json_t *v = json_object_get(boot, boot_keys[k]);
        json_object_set_new(o, boot_keys[k], v ? json_incref(v) : json_null());
    }
    json_t *dvds = json_object_get(cfg, "dvds");
    json_object_set_new(o, "dvds", dvds ? json_incref(dvds) : json_array());
    json_t *order = json_object_get(cfg, "boot_order");
    json_object_set_new(o, "boot_order", order ? json_incref(order) : json_null());
    json_object_set_new(o, "firmware", json_pack("{s:s, s:b, s:s?}", "type",
                                                 vm_firmware_uefi(cfg) ? "uefi" : "bios",
                                                 "secure_boot", vm_firmware_secure_boot(cfg),
                                                 "vars", vm_firmware_vars(cfg)));
    /* Every other setting of the configuration (autostart...), as it is. */
    const char *key;
    json_t *val;
    json_object_foreach(cfg, key, val)
        if (!is_shown_key(key))
            json_object_set(o, key, val);
    json_t *cfg_copy = json_incref(cfg); /* outlives the VM's document, for the text */
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
    if (as_json) {
        json_decref(cfg_copy);
        return cli_print_json(o);
    }
    char mem[32];
    printf("Name:        %s\nId:          %s\nState:       %s\nFolder:      %s\nCreated:     %s\n",
           json_string_value(json_object_get(o, "name")), json_string_value(json_object_get(o, "id")),
           json_string_value(json_object_get(o, "state")), json_string_value(json_object_get(o, "folder")),
           json_string_value(json_object_get(o, "created")));
    if (json_object_get(o, "accel"))
        printf("Accelerator: %s\nUptime:      %lld s\n", json_string_value(json_object_get(o, "accel")),
               (long long)json_integer_value(json_object_get(o, "uptime")));
    if (json_object_get(o, "worker_pid")) /* (the firmware's word on booting, run/firmware.log) */
        printf("Boot:        %s\n", json_string_value(json_object_get(o, "boot")) ?: "(nothing from the firmware yet)");
    printf("CPUs:        %lld\nMemory:      %s\n", (long long)json_integer_value(json_object_get(o, "cpus")),
           size_format((uint64_t)json_integer_value(json_object_get(o, "memory")), mem, sizeof mem));
    printf("Disk I/O:    %s\n", json_string_value(json_object_get(o, "disk_io")));
    if (as.enabled)
        printf("Autostart:   on, %d s after host start\n", as.delay);
    else
        printf("Autostart:   off\n");
    printf("Autostop:    %s\n", json_string_value(json_object_get(o, "autostop")));
    printf("Kernel:      %s\n", json_string_value(json_object_get(o, "kernel")) ?: "(none)");
    printf("Initrd:      %s\n", json_string_value(json_object_get(o, "initrd")) ?: "(none)");
    printf("Cmdline:     %s\n", json_string_value(json_object_get(o, "cmdline")) ?: "(none)");
    json_t *fw = json_object_get(o, "firmware");
    printf("Firmware:    %s%s\n", json_string_value(json_object_get(fw, "type")),
           json_is_true(json_object_get(fw, "secure_boot")) ? ", Secure Boot" : "");
    printf("Boot order:  ");
    json_t *bo = json_object_get(o, "boot_order");
    for (size_t k = 0; k < json_array_size(bo); k++)
        printf("%s%s", k ? "," : "", json_string_value(json_array_get(bo, k)));
    printf("%s\n", json_is_array(bo) ? "" : "(default)");
    for (size_t k = 0; k < json_array_size(json_object_get(o, "dvds")); k++) {
        json_t *d = json_array_get(json_object_get(o, "dvds"), k);
        printf("DVD %lld:       %s (read-only)\n", (long long)json_integer_value(json_object_get(d, "slot")),
               json_string_value(json_object_get(d, "file")));
    }
    json_object_foreach(cfg_copy, key, val)
        if (!is_shown_key(key))
            print_setting(key, val);
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
    json_array_foreach(json_object_get(o, "nics"), i, d) {
        printf("NIC %zu:       %s on switch %s", i, json_string_value(json_object_get(d, "mac")),
               json_string_value(json_object_get(d, "switch")));
        if (json_object_get(d, "vlan"))
            printf(", VLAN %lld", (long long)json_integer_value(json_object_get(d, "vlan")));
        if (json_object_get(d, "model"))
            printf(", %s", json_string_value(json_object_get(d, "model")));
        printf("\n");
    }
    json_decref(cfg_copy);
    json_decref(o);
    return EXIT_OK;
}

int cmd_vm_rename(const struct cli_args *a)
{
    const char *store_dir = cli_text(a, "store");
    struct store s;
    if (vm_cli_open_store(store_dir, &s))
        return EXIT_ERROR;
    int r = vm_rename(&s, cli_pos(a, 0), cli_pos(a, 1));
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}

int cmd_vm_delete(const struct cli_args *a)
{
    const char *store_dir = cli_text(a, "store");
    struct store s;
    if (vm_cli_open_store(store_dir, &s))
        return EXIT_ERROR;
    int r = vm_delete(&s, cli_pos(a, 0));
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}

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
    vm_journal_refusal_report(true); /* as for one VM: its problems are listed */
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

int cmd_vm_check(const struct cli_args *a)
{
    const char *store_dir = cli_text(a, "store"), *name = cli_pos(a, 0);
    bool as_json = cli_flag(a, "json");
    if (!name)
        return check_store(store_dir, as_json);
    struct store s;
    struct vm *vm;
    vm_journal_refusal_report(true); /* a refused journal is one of the problems */
    if (vm_cli_open(store_dir, name, &s, &vm))
        return EXIT_ERROR;
    json_t *problems = vm_verify(vm);
    vm_close(vm);
    store_close(&s);
    size_t n = json_array_size(problems);
    if (as_json)
        cli_print_json(json_pack("{s:s, s:s, s:O}", "vm", name, "result",
                                 n ? "problems" : "clean", "problems", problems));
    else
        print_problems(name, problems);
    json_decref(problems);
    return n ? EXIT_PROBLEMS : EXIT_OK;
}
