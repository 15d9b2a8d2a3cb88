/* hvm vm set NAME ...: change the configuration of now. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vm_common.h"
#include "disk/disk.h"
#include "disk/foreign.h"
#include "util/error.h"
#include "vm/autostart.h"
#include "vm/vm.h"

static const char set_usage[] =
    "usage: hvm vm set NAME [--cpus N] [--memory SIZE]\n"
    "                   [--add-disk FILE [--slot N] | --new-disk SIZE [--slot N]]\n"
    "                   [--remove-disk SLOT] [--add-nic SWITCH] [--remove-nic MAC]\n"
    "                   [--kernel FILE] [--initrd FILE] [--cmdline TEXT]\n"
    "                   [--disk-io vhost-user|nbd]\n"
    "                   [--autostart on|off] [--autostart-delay SECONDS]\n"
    "                   [--autostop save|shutdown|turn-off] [--store DIR]\n"
    "\n"
    "Changes the VM's current configuration (checkpoints keep theirs). The VM\n"
    "must be off. --add-disk copies FILE into the VM folder; a removed disk's\n"
    "current layer is deleted unless a checkpoint still uses it. --kernel,\n"
    "--initrd and --cmdline set up direct kernel boot (an empty value clears).\n"
    "--disk-io says how the running guest reaches its disks: vhost-user (new\n"
    "VMs' default: the VM's worker serves virtio-blk requests straight from\n"
    "guest memory) or nbd (QEMU's own virtio-blk, reading the worker's NBD\n"
    "server; VMs made before the choice existed).\n"
    "\n"
    "The automatic actions, which 'hvm host start' and 'hvm host stop' carry out\n"
    "when the host boots and shuts down (hvm.service), may change in any state:\n"
    "--autostart on starts the VM --autostart-delay seconds (default 0) after\n"
    "the host start began; --autostop says what becomes of it when it is still\n"
    "running at host stop: save (the default: memory saved, resumed at the next\n"
    "start), shutdown (ACPI, turned off if the guest does not power off in\n"
    "time) or turn-off.\n";

struct set_args {
    int cpus;
    uint64_t memory, new_disk;
    const char *add_disk, *add_nic, *remove_nic;
    const char *kernel, *initrd, *cmdline; /* direct kernel boot; "" clears */
    const char *disk_io;
    int slot, remove_slot;
    int autostart, autostart_delay; /* -1: unchanged; autostart 0 off, 1 on */
    const char *autostop;
};

/* Only the automatic actions, which do not touch what runs: allowed in any state. */
static bool only_automatic(const struct set_args *a)
{
    return !a->cpus && !a->memory && !a->new_disk && !a->add_disk && !a->add_nic &&
           !a->remove_nic && !a->kernel && !a->initrd && !a->cmdline && !a->disk_io &&
           a->remove_slot < 0;
}

static json_t *find_slot(json_t *drives, int slot, size_t *index)
{
    size_t i;
    json_t *d;
    json_array_foreach(drives, i, d)
        if (json_integer_value(json_object_get(d, "slot")) == slot) {
            if (index)
                *index = i;
            return d;
        }
    return NULL;
}

static int apply(struct vm *vm, const struct set_args *a)
{
    const char *state = vm_state(vm);
    if (strcmp(state, "Off") != 0 && !only_automatic(a))
        return hvm_error(EBUSY, "VM '%s' is %s: its configuration can change only when it is Off",
                         vm->name, state);
    json_t *next = json_deep_copy(vm->doc);
    json_t *cfg = json_object_get(next, "config");
    json_t *drives = json_object_get(cfg, "drives");
    json_t *steps = json_array(), *remove = json_array();
    int r = 0;
    if (a->cpus)
        json_object_set_new(cfg, "cpus", json_integer(a->cpus));
    if (a->memory)
        json_object_set_new(cfg, "memory", json_integer((json_int_t)a->memory));
    if (a->disk_io)
        json_object_set_new(cfg, "disk_io", json_string(a->disk_io));
    if (a->autostart >= 0 || a->autostart_delay >= 0) {
        struct vm_autostart as;
        vm_autostart_get(cfg, &as);
        if (a->autostart >= 0)
            as.enabled = a->autostart;
        if (a->autostart_delay >= 0)
            as.delay = a->autostart_delay;
        json_object_set_new(cfg, "autostart", vm_autostart_json(&as));
    }
    if (a->autostop)
        json_object_set_new(cfg, "autostop", json_string(a->autostop));
    if (a->remove_slot >= 0) {
        size_t idx;
        json_t *d = find_slot(drives, a->remove_slot, &idx);
        if (!d) {
            r = hvm_error(ENOENT, "VM '%s' has no disk in slot %d", vm->name, a->remove_slot);
            goto out;
        }
        json_array_append(remove, json_object_get(d, "file"));
        json_array_remove(drives, idx);
    }
    if (a->add_disk || a->new_disk) {
        int slot = a->slot;
        if (slot < 0)
            for (slot = 0; find_slot(drives, slot, NULL); slot++)
                ;
        if (find_slot(drives, slot, NULL)) {
            r = hvm_error(EEXIST, "VM '%s' already has a disk in slot %d", vm->name, slot);
            goto out;
        }
        char *rel = vm_new_disk_name(slot);
        if (a->add_disk) {
            if ((r = disk_foreign_require_vhd(a->add_disk)) < 0) {
                free(rel);
                goto out;
            }
            json_t *base = store_base_find(vm->store, a->add_disk);
            json_decref(base);
            if (disk_file_protected(a->add_disk) || base) {
                free(rel);
                r = hvm_error(EPERM, "%s is a base or a protected parent: it cannot be attached "
                              "directly; create a VM --from it instead", a->add_disk);
                goto out;
            }
            char abs[4096];
            if (!realpath(a->add_disk, abs)) {
                free(rel);
                r = hvm_error(errno, "%s: %s", a->add_disk, strerror(errno));
                goto out;
            }
            json_array_append_new(steps, vm_step_copy(abs, rel));
        } else {
            json_array_append_new(steps, vm_step_create(rel, a->new_disk));
        }
        json_array_append_new(drives, json_pack("{s:i, s:s}", "slot", slot, "file", rel));
        free(rel);
    }
    if (a->kernel || a->initrd || a->cmdline) {
        json_t *boot = json_object_get(cfg, "boot");
        if (!boot) {
            boot = json_object();
            json_object_set_new(cfg, "boot", boot);
        }
        const char *keys[3] = {"kernel", "initrd", "cmdline"};
        const char *vals[3] = {a->kernel, a->initrd, a->cmdline};
        for (int k = 0; k < 3; k++) {
            if (!vals[k])
                continue;
            if (!vals[k][0]) {
                json_object_del(boot, keys[k]);
                continue;
            }
            char *abs = k < 2 ? realpath(vals[k], NULL) : NULL;
            if (k < 2 && !abs) {
                r = hvm_error(errno, "%s: %s", vals[k], strerror(errno));
                goto out;
            }
            json_object_set_new(boot, keys[k], json_string(abs ? abs : vals[k]));
            free(abs);
        }
    }
    if (a->add_nic && !store_switch_known(vm->store, a->add_nic)) {
        r = hvm_error(ENOENT, "no switch '%s' on this host (switches.json of the store)", a->add_nic);
        goto out;
    }
    if (a->add_nic) {
        char mac[18];
        vm_random_mac(mac);
        json_array_append_new(json_object_get(cfg, "nics"),
                              json_pack("{s:s, s:s}", "switch", a->add_nic, "mac", mac));
    }
    if (a->remove_nic) {
        json_t *nics = json_object_get(cfg, "nics");
        size_t i;
        json_t *n;
        bool found = false;
        json_array_foreach(nics, i, n)
            if (strcasecmp(json_string_value(json_object_get(n, "mac")), a->remove_nic) == 0) {
                json_array_remove(nics, i);
                found = true;
                break;
            }
        if (!found) {
            r = hvm_error(ENOENT, "VM '%s' has no network adapter %s", vm->name, a->remove_nic);
            goto out;
        }
    }
    return vm_commit(vm, "set", next, steps, remove);
out:
    json_decref(next);
    json_decref(steps);
    json_decref(remove);
    return r;
}

int cmd_vm_set(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cpus", required_argument, NULL, 'c'},
        {"memory", required_argument, NULL, 'm'},
        {"add-disk", required_argument, NULL, 'a'},
        {"new-disk", required_argument, NULL, 'n'},
        {"slot", required_argument, NULL, 's'},
        {"remove-disk", required_argument, NULL, 'r'},
        {"add-nic", required_argument, NULL, 'N'},
        {"remove-nic", required_argument, NULL, 'R'},
        {"kernel", required_argument, NULL, 'K'},
        {"initrd", required_argument, NULL, 'I'},
        {"cmdline", required_argument, NULL, 'L'},
        {"disk-io", required_argument, NULL, 'D'},
        {"autostart", required_argument, NULL, 'A'},
        {"autostart-delay", required_argument, NULL, 'W'},
        {"autostop", required_argument, NULL, 'O'},
        {"store", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct set_args a = {.slot = -1, .remove_slot = -1, .autostart = -1, .autostart_delay = -1};
    const char *store_dir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a.cpus = atoi(optarg);
            if (a.cpus < 1 || a.cpus > 256)
                return cli_failf("--cpus: '%s' is not a CPU count (1-256)", optarg);
            break;
        case 'm':
            if (cli_size("--memory", optarg, &a.memory))
                return EXIT_ERROR;
            if (a.memory < (16u << 20))
                return cli_failf("--memory: at least 16M");
            break;
        case 'a': a.add_disk = optarg; break;
        case 'n':
            if (cli_size("--new-disk", optarg, &a.new_disk))
                return EXIT_ERROR;
            break;
        case 's': a.slot = atoi(optarg); break;
        case 'r': a.remove_slot = atoi(optarg); break;
        case 'N': a.add_nic = optarg; break;
        case 'R': a.remove_nic = optarg; break;
        case 'K': a.kernel = optarg; break;
        case 'I': a.initrd = optarg; break;
        case 'L': a.cmdline = optarg; break;
        case 'D':
            if (strcmp(optarg, "vhost-user") != 0 && strcmp(optarg, "nbd") != 0)
                return cli_failf("--disk-io: '%s' is not vhost-user or nbd", optarg);
            a.disk_io = optarg;
            break;
        case 'A':
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                return cli_failf("--autostart: '%s' is not on or off", optarg);
            a.autostart = strcmp(optarg, "on") == 0;
            break;
        case 'W': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (!optarg[0] || *end || errno || v < 0 || v > INT_MAX)
                return cli_failf("--autostart-delay: '%s' is not a number of seconds", optarg);
            a.autostart_delay = (int)v;
            break;
        }
        case 'O':
            if (!vm_autostop_valid(optarg))
                return cli_failf("--autostop: '%s' is not save, shutdown or turn-off", optarg);
            a.autostop = optarg;
            break;
        case 'S': store_dir = optarg; break;
        case 'h': return cli_help(set_usage);
        default: return cli_usage_error(set_usage, "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(set_usage, "set takes one NAME");
    if (a.add_disk && a.new_disk)
        return cli_usage_error(set_usage, "give one of --add-disk and --new-disk");
    struct store s;
    struct vm *vm;
    if (vm_cli_open(store_dir, argv[optind], &s, &vm))
        return EXIT_ERROR;
    int r = apply(vm, &a);
    vm_close(vm);
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}
