/* hvm vm set NAME ...: change the configuration of now. */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "disk/disk.h"
#include "disk/foreign.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vm/autostart.h"
#include "vm/firmware.h"
#include "vm/modes.h"
#include "vm/switch.h"
#include "vm/validate.h"
#include "vm/vm.h"

struct set_args {
    int cpus;
    uint64_t memory, new_disk;
    const char *add_disk, *add_nic, *remove_nic;
    const char *set_nic, *nic_switch, *nic_mac, *nic_model; /* --set-nic, --switch, --mac, --model */
    int vlan; /* -1: unchanged; 0: untagged */
    int guards[3]; /* --mac-spoofing, --dhcp-guard, --router-guard: -1 unchanged, 0 off, 1 on */
    int max_bandwidth; /* --max-bandwidth Mbit/s: -1 unchanged, 0 none */
    const char *kernel, *initrd, *cmdline; /* direct kernel boot; "" clears */
    const char *disk_io;
    int slot, remove_slot;
    int autostart, autostart_delay; /* -1: unchanged; autostart 0 off, 1 on */
    const char *autostop;
    const char *const *dvds, *const *dvd_slots, *const *ejects; /* --dvd, --dvd-slot, --eject */
    int n_dvds, n_dvd_slots, n_ejects;
    const char *boot; /* --boot dvd,disk,net; "" clears */
    const char *firmware; /* bios|uefi */
    int secure_boot;      /* -1: unchanged */
};

/* Only the automatic actions, which do not touch what runs: allowed in any state. */
static bool only_automatic(const struct set_args *a)
{
    return !a->cpus && !a->memory && !a->new_disk && !a->add_disk && !a->add_nic &&
           !a->remove_nic && !a->set_nic && !a->kernel && !a->initrd && !a->cmdline && !a->disk_io &&
           a->remove_slot < 0 && !a->n_dvds && !a->n_ejects && !a->boot && !a->firmware &&
           a->secure_boot < 0;
}

static json_t *find_slot(json_t *drives, int slot, size_t *index);

/* A VLAN needs a bridge switch; a user switch (or one this host does not
 * know the type of) cannot carry it. */
static int nic_vlan_check(struct vm *vm, const char *sw, int vlan)
{
    if (vlan <= 0)
        return 0;
    int r;
    json_t *e = store_switch_get(vm->store, sw, &r);
    const char *type = json_string_value(json_object_get(e, "type"));
    if (e && type && strcmp(type, "private") != 0 && strcmp(type, "internal") != 0 &&
        strcmp(type, "external") != 0)
        r = hvm_error(EINVAL, "--vlan: switch '%s' is of type %s: VLANs need a bridge switch "
                      "(private, internal)", sw, type);
    json_decref(e);
    return r;
}

/* The adapter's security guards in vm.json: each key is there only when
 * not the default (MAC spoofing, DHCP guard and router guard all off). */
static const char *const nic_guard_options[3] = {"mac-spoofing", "dhcp-guard", "router-guard"};
static const char *const nic_guard_keys[3] = {"mac_spoofing", "dhcp_guard", "router_guard"};

static void apply_nic_guards(json_t *nic, const struct set_args *a)
{
    for (int g = 0; g < 3; g++) {
        if (a->guards[g] == 1)
            json_object_set_new(nic, nic_guard_keys[g], json_true());
        else if (a->guards[g] == 0)
            json_object_del(nic, nic_guard_keys[g]);
    }
    if (a->max_bandwidth > 0)
        json_object_set_new(nic, "max_bandwidth", json_integer(a->max_bandwidth));
    else if (a->max_bandwidth == 0)
        json_object_del(nic, "max_bandwidth");
}

/* --add-nic SWITCH [--vlan N] [--mac M] [--model X], and --set-nic MAC
 * with --vlan N (0: untagged), --switch S, --model X. */
static int apply_nics(struct vm *vm, json_t *cfg, const struct set_args *a)
{
    json_t *nics = json_object_get(cfg, "nics");
    const char *sw = a->add_nic ? a->add_nic : a->nic_switch;
    if (sw && !store_switch_known(vm->store, sw))
        return hvm_error(ENOENT, "no switch '%s' on this host (switches.json of the store)", sw);
    if (a->vlan > 4094)
        return hvm_error(EINVAL, "--vlan: %d is not a VLAN ID (1-4094, 0: none)", a->vlan);
    if (a->nic_model && strcmp(a->nic_model, "virtio") != 0 && strcmp(a->nic_model, "e1000e") != 0)
        return hvm_error(EINVAL, "--model: '%s' is not virtio or e1000e", a->nic_model);
    if (a->add_nic) {
        char mac[18];
        if (a->nic_mac && !vm_mac_valid(a->nic_mac))
            return hvm_error(EINVAL, "--mac: '%s' is not a unicast MAC address (six hex pairs "
                             "with colons)", a->nic_mac);
        if (a->nic_mac)
            snprintf(mac, sizeof mac, "%s", a->nic_mac);
        else
            vm_random_mac(mac);
        size_t i;
        json_t *n;
        json_array_foreach(nics, i, n)
            if (strcasecmp(json_string_value(json_object_get(n, "mac")), mac) == 0)
                return hvm_error(EEXIST, "VM '%s' has a network adapter %s already", vm->name,
                                 mac);
        int r = nic_vlan_check(vm, sw, a->vlan);
        if (r < 0)
            return r;
        json_t *nic = json_pack("{s:s, s:s}", "switch", a->add_nic, "mac", mac);
        if (a->vlan > 0)
            json_object_set_new(nic, "vlan", json_integer(a->vlan));
        if (a->nic_model)
            json_object_set_new(nic, "model", json_string(a->nic_model));
        apply_nic_guards(nic, a);
        json_array_append_new(nics, nic);
        return 0;
    }
    if (!a->set_nic)
        return 0;
    size_t i;
    json_t *n, *nic = NULL;
    json_array_foreach(nics, i, n)
        if (strcasecmp(json_string_value(json_object_get(n, "mac")), a->set_nic) == 0)
            nic = n;
    if (!nic)
        return hvm_error(ENOENT, "VM '%s' has no network adapter %s", vm->name, a->set_nic);
    if (a->nic_switch)
        json_object_set_new(nic, "switch", json_string(a->nic_switch));
    if (a->nic_model)
        json_object_set_new(nic, "model", json_string(a->nic_model));
    apply_nic_guards(nic, a);
    if (a->vlan == 0)
        json_object_del(nic, "vlan");
    else if (a->vlan > 0)
        json_object_set_new(nic, "vlan", json_integer(a->vlan));
    json_t *v = json_object_get(nic, "vlan");
    return nic_vlan_check(vm, json_string_value(json_object_get(nic, "switch")),
                          v ? (int)json_integer_value(v) : 0);
}

/* --eject N|all, then --dvd FILE [--dvd-slot N] (the i-th --dvd-slot is
 * the i-th --dvd's; without one, the first free slot). An ISO is kept by
 * its absolute path, never copied: it is checked again at start. A DVD
 * given a taken slot replaces the ISO there, as changing the media. */
static int apply_dvds(struct vm *vm, json_t *cfg, const struct set_args *a)
{
    json_t *dvds = json_object_get(cfg, "dvds");
    if (!dvds) {
        dvds = json_array();
        json_object_set_new(cfg, "dvds", dvds);
    }
    for (int e = 0; e < a->n_ejects; e++) {
        if (strcmp(a->ejects[e], "all") == 0) {
            json_array_clear(dvds);
            continue;
        }
        char *end;
        long slot = strtol(a->ejects[e], &end, 10);
        size_t idx;
        if (!*a->ejects[e] || *end || slot < 0 || slot >= VM_MAX_DVDS)
            return hvm_error(EINVAL, "--eject: '%s' is not a DVD slot (0-%d) or all", a->ejects[e],
                             VM_MAX_DVDS - 1);
        if (!find_slot(dvds, (int)slot, &idx))
            return hvm_error(ENOENT, "VM '%s' has no DVD in slot %ld", vm->name, slot);
        json_array_remove(dvds, idx);
    }
    if (a->n_dvd_slots > a->n_dvds)
        return hvm_error(EINVAL, "--dvd-slot: %d given for %d --dvd", a->n_dvd_slots, a->n_dvds);
    for (int i = 0; i < a->n_dvds; i++) {
        int slot = -1;
        if (i < a->n_dvd_slots) {
            char *end;
            long v = strtol(a->dvd_slots[i], &end, 10);
            if (!*a->dvd_slots[i] || *end || v < 0 || v >= VM_MAX_DVDS)
                return hvm_error(EINVAL, "--dvd-slot: '%s' is not a DVD slot (0-%d)", a->dvd_slots[i],
                                 VM_MAX_DVDS - 1);
            slot = (int)v;
        } else {
            for (slot = 0; slot < VM_MAX_DVDS && find_slot(dvds, slot, NULL); slot++)
                ;
            if (slot == VM_MAX_DVDS)
                return hvm_error(ENOSPC, "VM '%s' has %d DVD drives already (slots 0-%d): eject one "
                                 "first (--eject N)", vm->name, VM_MAX_DVDS, VM_MAX_DVDS - 1);
        }
        char abs[PATH_MAX];
        struct stat st;
        if (!realpath(a->dvds[i], abs) || stat(abs, &st) < 0)
            return hvm_error(errno, "%s: %s", a->dvds[i], strerror(errno));
        if (!S_ISREG(st.st_mode))
            return hvm_error(EINVAL, "%s: not a regular file (an ISO image)", a->dvds[i]);
        size_t idx;
        if (find_slot(dvds, slot, &idx))
            json_array_remove(dvds, idx);
        json_array_append_new(dvds, json_pack("{s:i, s:s}", "slot", slot, "file", abs));
    }
    if (json_array_size(dvds) == 0)
        json_object_del(cfg, "dvds");
    return 0;
}

/* --boot: a comma-separated list of dvd, disk and net, each at most once. */
static int apply_boot(json_t *cfg, const char *list)
{
    if (!*list) {
        json_object_del(cfg, "boot_order");
        return 0;
    }
    json_t *order = json_array();
    char *copy = strdup(list), *save = NULL;
    int r = copy ? 0 : hvm_error(ENOMEM, "out of memory");
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; r == 0 && t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "dvd") != 0 && strcmp(t, "disk") != 0 && strcmp(t, "net") != 0)
            r = hvm_error(EINVAL, "--boot: '%s' is not dvd, disk or net", t);
        else if (vm_list_has(order, t))
            r = hvm_error(EINVAL, "--boot: '%s' is named twice", t);
        else
            json_array_append_new(order, json_string(t));
    }
    if (r == 0 && (json_array_size(order) == 0 || list[strlen(list) - 1] == ',' || list[0] == ','))
        r = hvm_error(EINVAL, "--boot: '%s' is not a list such as dvd,disk,net", list);
    free(copy);
    if (r == 0)
        json_object_set_new(cfg, "boot_order", order);
    else
        json_decref(order);
    return r;
}

/* --firmware and --secure-boot: a change of UEFI build, or to UEFI, gives
 * the VM a fresh copy of that build's variable store (each build's store
 * fits its code only); to BIOS, the store goes (checkpoints keep theirs).
 * The copy comes in with the journal's steps. */
static int apply_firmware(struct vm *vm, json_t *cfg, const struct set_args *a, json_t *steps,
                          json_t *remove, char **made_dir)
{
    bool was_uefi = vm_firmware_uefi(cfg), was_secure = vm_firmware_secure_boot(cfg);
    bool uefi = a->firmware ? strcmp(a->firmware, "uefi") == 0 : was_uefi;
    bool secure = a->secure_boot >= 0 ? a->secure_boot == 1 : (uefi && was_secure);
    if (secure && !uefi)
        return hvm_error(EINVAL, "VM '%s': --secure-boot on needs UEFI firmware (--firmware uefi)",
                         vm->name);
    if (uefi == was_uefi && secure == was_secure)
        return 0;
    if (was_uefi)
        json_array_append_new(remove, json_string(vm_firmware_vars(cfg)));
    char *vars = NULL;
    if (uefi) {
        const char *tmpl = secure ? VM_OVMF_VARS_SECURE : VM_OVMF_VARS;
        const char *code = vm_firmware_code_path(secure);
        if (access(code, R_OK) != 0 || access(tmpl, R_OK) != 0)
            return hvm_error(ENOENT, "%s: UEFI firmware missing (install Debian's ovmf package)",
                             access(code, R_OK) != 0 ? code : tmpl);
        vars = vm_firmware_new_vars_name();
        *made_dir = vm_path(vm, "nvram");
        if (!vars || !*made_dir) {
            free(vars);
            return hvm_error(ENOMEM, "out of memory");
        }
        int r = path_mkdirs(*made_dir);
        if (r < 0) {
            free(vars);
            return r;
        }
        json_array_append_new(steps, vm_step_copy(tmpl, vars));
    }
    json_object_set_new(cfg, "firmware", vm_firmware_object(uefi, vars, secure));
    free(vars);
    return 0;
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

/* Only --set-nic MAC --switch S and/or --vlan N, which a running VM's tap
 * can follow by moving to another bridge (the guest keeps its adapter). */
static bool nic_move_only(const struct set_args *a)
{
    struct set_args rest = *a;
    rest.set_nic = rest.nic_switch = NULL;
    rest.vlan = -1;
    return a->set_nic && (a->nic_switch || a->vlan >= 0) && only_automatic(&rest) &&
           !a->nic_model && a->guards[0] < 0 && a->guards[1] < 0 && a->guards[2] < 0 &&
           a->max_bandwidth < 0 && a->autostart < 0 && a->autostart_delay < 0 && !a->autostop;
}

/* The tap of adapter mac of the running VM (run/taps.json, the worker's). */
static int running_tap(struct vm *vm, const char *mac, char tap[NET_IFNAME_MAX + 1])
{
    char *path = path_join(vm->dir, "run/taps.json");
    json_t *taps = path ? json_load_file(path, 0, NULL) : NULL;
    const char *name = NULL, *key;
    json_t *v;
    json_object_foreach(taps, key, v)
        if (strcasecmp(key, mac) == 0)
            name = json_string_value(v);
    int r = name && net_ifname_valid(name) ? 0
          : hvm_error(EBUSY, "VM '%s' is Running and its adapter %s has no tap (user-mode "
                      "networking): stop the VM to change it", vm->name, mac);
    if (r == 0)
        snprintf(tap, NET_IFNAME_MAX + 1, "%s", name);
    json_decref(taps);
    free(path);
    return r;
}

/* --set-nic MAC --switch S / --vlan N on a running VM: the new switch's
 * bridge (or its VLAN's) is brought up, the adapter's tap becomes its
 * port, then vm.json records it; a failed record moves the tap back. */
static int apply_nic_move(struct vm *vm, const struct set_args *a)
{
    json_t *next = json_deep_copy(vm->doc), *cfg = json_object_get(next, "config");
    char tap[NET_IFNAME_MAX + 1], bridge[NET_IFNAME_MAX + 1], old[IF_NAMESIZE] = "";
    int r = apply_nics(vm, cfg, a), pvid = 0;
    json_t *nic = NULL, *n, *sw = NULL;
    size_t i;
    json_array_foreach(json_object_get(cfg, "nics"), i, n)
        if (strcasecmp(json_string_value(json_object_get(n, "mac")), a->set_nic) == 0)
            nic = n;
    const char *name = json_string_value(json_object_get(nic, "switch"));
    int vlan = (int)json_integer_value(json_object_get(nic, "vlan"));
    if (r == 0)
        r = running_tap(vm, a->set_nic, tap);
    if (r == 0 && (sw = store_switch_get(vm->store, name, &r)) &&
        strcmp(json_string_value(json_object_get(sw, "type")), "user") == 0)
        r = hvm_error(EINVAL, "VM '%s' is Running: its adapter moves only to a bridge switch "
                      "(private, internal, external), not to user switch '%s'", vm->name, name);
    if (r == 0)
        r = store_switch_up(vm->store, name);
    store_switch_bridge_name(name ? name : "", bridge);
    if (r == 0 && vlan > 0)
        r = store_switch_vlan_attach(vm->store, name, vlan, bridge, &pvid);
    struct net_link link;
    if (r == 0 && (r = net_link_get(tap, &link)) == 0 && link.master)
        if_indextoname((unsigned)link.master, old);
    if (r == 0)
        r = net_link_set_master(tap, bridge);
    if (r == 0 && pvid)
        r = net_port_pvid(tap, pvid);
    if (r == 0)
        r = store_switch_offload_reapply(sw);
    json_decref(sw);
    if (r < 0) {
        json_decref(next);
        return r;
    }
    if ((r = vm_commit(vm, "set", next, json_array(), json_array())) < 0 && old[0]) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", hvm_error_message());
        net_link_set_master(tap, old);
        hvm_error(-r, "%s", keep);
    }
    return r;
}

static int apply(struct vm *vm, const struct set_args *a)
{
    const char *state = vm_state(vm);
    if (strcmp(state, "Running") == 0 && nic_move_only(a))
        return apply_nic_move(vm, a);
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
    if ((a->n_dvds || a->n_ejects) && (r = apply_dvds(vm, cfg, a)) < 0)
        goto out;
    if (a->boot && (r = apply_boot(cfg, a->boot)) < 0)
        goto out;
    char *nvram_dir = NULL;
    if ((a->firmware || a->secure_boot >= 0) &&
        (r = apply_firmware(vm, cfg, a, steps, remove, &nvram_dir)) < 0) {
        free(nvram_dir);
        goto out;
    }
    if (nvram_dir) {
        /* (the template is the package's, 0644; the VM's copy is the VM's) */
        const char *vars = vm_firmware_vars(cfg);
        r = vm_commit(vm, "set", next, steps, remove);
        char *abs = r == 0 && vars ? vm_path(vm, vars) : NULL;
        if (r == 0)
            vm_mode_dir(nvram_dir);
        if (abs)
            vm_mode_file(abs);
        free(abs);
        free(nvram_dir);
        return r;
    }
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
    if ((r = apply_nics(vm, cfg, a)) < 0)
        goto out;
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

int cmd_vm_set(const struct cli_args *args)
{
    struct set_args a = {.slot = -1, .remove_slot = -1, .autostart = -1, .autostart_delay = -1,
                         .vlan = -1, .secure_boot = -1, .guards = {-1, -1, -1},
                         .max_bandwidth = -1};
    const char *store_dir = cli_text(args, "store");
    if (cli_flag(args, "cpus")) {
        long long cpus = cli_int_or(args, "cpus", 0);
        if (cpus < 1 || cpus > 256)
            return cli_failf("--cpus: '%s' is not a CPU count (1-256)", cli_text(args, "cpus"));
        a.cpus = (int)cpus;
    }
    if (cli_flag(args, "memory")) {
        a.memory = cli_size_or(args, "memory", 0);
        if (a.memory < (16u << 20))
            return cli_failf("--memory: at least 16M");
    }
    a.add_disk = cli_text(args, "add-disk");
    a.new_disk = cli_size_or(args, "new-disk", 0);
    a.slot = (int)cli_int_or(args, "slot", -1);
    a.remove_slot = (int)cli_int_or(args, "remove-disk", -1);
    a.add_nic = cli_text(args, "add-nic");
    a.remove_nic = cli_text(args, "remove-nic");
    a.set_nic = cli_text(args, "set-nic");
    a.nic_switch = cli_text(args, "switch");
    a.nic_mac = cli_text(args, "mac");
    a.nic_model = cli_text(args, "model");
    if (cli_flag(args, "vlan")) {
        long long vlan = cli_int_or(args, "vlan", -1);
        if (vlan < 0 || vlan > 4094)
            return cli_failf("--vlan: '%s' is not a VLAN ID (1-4094, 0: none)",
                             cli_text(args, "vlan"));
        a.vlan = (int)vlan;
    }
    bool guards = false;
    for (int g = 0; g < 3; g++) {
        const char *v = cli_text(args, nic_guard_options[g]);
        a.guards[g] = v ? strcmp(v, "on") == 0 : -1;
        guards |= v != NULL;
    }
    if (cli_flag(args, "max-bandwidth")) {
        long long mbit = cli_int_or(args, "max-bandwidth", -1);
        if (mbit < 0 || mbit > 10000)
            return cli_failf("--max-bandwidth: '%s' is not 1-10000 Mbit/s (0: no limit)",
                             cli_text(args, "max-bandwidth"));
        a.max_bandwidth = (int)mbit;
        guards = true;
    }
    if (guards && !a.add_nic && !a.set_nic)
        return cli_verb_error(args, "--mac-spoofing, --dhcp-guard, --router-guard and "
                              "--max-bandwidth go with --add-nic or --set-nic");
    if (a.add_nic && a.set_nic)
        return cli_verb_error(args, "give one of --add-nic and --set-nic");
    if ((cli_flag(args, "vlan") || a.nic_model) && !a.add_nic && !a.set_nic)
        return cli_verb_error(args, "--vlan and --model go with --add-nic or --set-nic");
    if (a.nic_mac && !a.add_nic)
        return cli_verb_error(args, "--mac goes with --add-nic");
    if (a.nic_switch && !a.set_nic)
        return cli_verb_error(args, "--switch goes with --set-nic (--add-nic names the switch)");
    if (a.set_nic && !a.nic_switch && !a.nic_model && !cli_flag(args, "vlan") && !guards)
        return cli_verb_error(args, "--set-nic: give --vlan, --switch, --model, --mac-spoofing, "
                              "--dhcp-guard, --router-guard or --max-bandwidth");
    a.kernel = cli_text(args, "kernel");
    a.initrd = cli_text(args, "initrd");
    a.cmdline = cli_text(args, "cmdline");
    a.disk_io = cli_text(args, "disk-io");
    if (cli_text(args, "autostart"))
        a.autostart = strcmp(cli_text(args, "autostart"), "on") == 0;
    long long delay = cli_int_or(args, "autostart-delay", -1);
    if (cli_flag(args, "autostart-delay") && (delay < 0 || delay > 86400 * 365))
        return cli_failf("--autostart-delay: '%s' is not a number of seconds",
                         cli_text(args, "autostart-delay"));
    a.autostart_delay = (int)delay;
    a.autostop = cli_text(args, "autostop");
    a.n_dvds = cli_all(args, "dvd", &a.dvds);
    a.n_dvd_slots = cli_all(args, "dvd-slot", &a.dvd_slots);
    a.n_ejects = cli_all(args, "eject", &a.ejects);
    a.boot = cli_text(args, "boot");
    a.firmware = cli_text(args, "firmware");
    a.secure_boot = cli_text(args, "secure-boot") ? strcmp(cli_text(args, "secure-boot"), "on") == 0 : -1;
    if (a.add_disk && a.new_disk)
        return cli_verb_error(args, "give one of --add-disk and --new-disk");
    struct store s;
    struct vm *vm;
    if (vm_cli_open(store_dir, cli_pos(args, 0), &s, &vm))
        return EXIT_ERROR;
    int r = apply(vm, &a);
    vm_close(vm);
    store_close(&s);
    return r < 0 ? cli_fail() : EXIT_OK;
}
