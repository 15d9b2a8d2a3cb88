/* QEMU's command line (see qemu.h). */
#include "runtime/qemu.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "util/error.h"
#include "vm/store.h"

void qemu_args_init(struct qemu_args *a)
{
    memset(a, 0, sizeof *a);
}

/* Room for one more pointer and the final NULL. */
static bool reserve(struct qemu_args *a)
{
    if (a->n + 2 <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap * 2 : 64;
    char **grown = realloc(a->argv, cap * sizeof *grown);
    if (!grown)
        return false;
    a->argv = grown;
    a->cap = cap;
    return true;
}

void qemu_args_add(struct qemu_args *a, const char *fmt, ...)
{
    if (a->failed || !reserve(a)) {
        a->failed = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *arg;
    if (vasprintf(&arg, fmt, ap) < 0)
        a->failed = true;
    else
        a->argv[a->n++] = arg;
    va_end(ap);
}

int qemu_args_finish(struct qemu_args *a)
{
    if (a->failed || !reserve(a))
        return hvm_error(ENOMEM, "out of memory building QEMU's command line");
    a->argv[a->n] = NULL;
    return 0;
}

void qemu_args_free(struct qemu_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->argv[i]);
    free(a->argv);
    memset(a, 0, sizeof *a);
}

char *qemu_opt_escape(const char *value)
{
    size_t len = strlen(value), commas = 0;
    for (const char *p = value; *p; p++)
        commas += *p == ',';
    char *out = malloc(len + commas + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = value; *p; p++) {
        *o++ = *p;
        if (*p == ',')
            *o++ = ',';
    }
    *o = 0;
    return out;
}

bool qemu_mac_valid(const char *mac)
{
    if (!mac || strlen(mac) != 17)
        return false;
    for (int i = 0; i < 17; i++) {
        bool colon = i % 3 == 2;
        if (colon ? mac[i] != ':' : !isxdigit((unsigned char)mac[i]))
            return false;
    }
    return true;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 32 || *s == 127)
            return true;
    return false;
}

/* An absolute path the worker opens itself: no control characters (they
 * would garble every message that names it), no "." or ".." component. */
static int check_path(const char *vm, const char *field, const json_t *v, bool required)
{
    if (!v && !required)
        return 0;
    const char *s = json_string_value(v);
    if (!s)
        return hvm_error(EINVAL, "VM '%s': %s: expected a path", vm, field);
    if (s[0] != '/' || strlen(s) >= PATH_MAX || has_control(s))
        return hvm_error(EINVAL, "VM '%s': %s: not an absolute path", vm, field);
    for (const char *p = s; (p = strchr(p, '/')); p++)
        if ((p[1] == '.' && (p[2] == '/' || !p[2])) ||
            (p[1] == '.' && p[2] == '.' && (p[3] == '/' || !p[3])))
            return hvm_error(EINVAL, "VM '%s': %s: '.' or '..' in the path", vm, field);
    return 0;
}

static int check_int(const char *vm, const char *field, const json_t *v, json_int_t lo, json_int_t hi)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return hvm_error(EINVAL, "VM '%s': %s: expected an integer from %lld to %lld", vm, field,
                         (long long)lo, (long long)hi);
    return 0;
}

static int check_drives(const char *vm, const json_t *drives)
{
    if (!json_is_array(drives))
        return hvm_error(EINVAL, "VM '%s': config.drives: expected an array", vm);
    if (json_array_size(drives) > QEMU_MAX_DRIVES)
        return hvm_error(EINVAL, "VM '%s': %zu drives: at most %d", vm, json_array_size(drives),
                         QEMU_MAX_DRIVES);
    size_t i;
    json_t *d;
    json_array_foreach(drives, i, d) {
        char field[64];
        snprintf(field, sizeof field, "config.drives[%zu].slot", i);
        int r = check_int(vm, field, json_object_get(d, "slot"), 0, 255);
        snprintf(field, sizeof field, "config.drives[%zu].file", i);
        if (r == 0)
            r = check_path(vm, field, json_object_get(d, "path"), true);
        for (size_t k = 0; r == 0 && k < i; k++)
            if (json_integer_value(json_object_get(json_array_get(drives, k), "slot")) ==
                json_integer_value(json_object_get(d, "slot")))
                r = hvm_error(EINVAL, "VM '%s': config.drives[%zu].slot: slot %lld is taken twice",
                              vm, i, (long long)json_integer_value(json_object_get(d, "slot")));
        if (r < 0)
            return r;
    }
    return 0;
}

static int check_nics(const char *vm, const json_t *nics, size_t drives)
{
    if (!json_is_array(nics))
        return hvm_error(EINVAL, "VM '%s': config.nics: expected an array", vm);
    if (drives + json_array_size(nics) > QEMU_PCI_SLOTS)
        return hvm_error(EINVAL, "VM '%s': %zu network adapter%s and %zu drive%s: at most %d "
                         "devices fit on the machine's PCI bus", vm, json_array_size(nics),
                         json_array_size(nics) == 1 ? "" : "s", drives, drives == 1 ? "" : "s",
                         QEMU_PCI_SLOTS);
    size_t i;
    json_t *n;
    if (json_array_size(nics) > QEMU_MAX_NICS)
        return hvm_error(EINVAL, "VM '%s': config.nics: at most %d network adapters", vm,
                         QEMU_MAX_NICS);
    json_array_foreach(nics, i, n) {
        if (!qemu_mac_valid(json_string_value(json_object_get(n, "mac"))))
            return hvm_error(EINVAL, "VM '%s': config.nics[%zu].mac: not a MAC address (six hex "
                             "pairs such as 52:54:00:12:34:56)", vm, i);
        /* The bridge is derived from the switch's name (runtime.c), never
         * a free text; checked all the same where it would act. */
        json_t *bridge = json_object_get(n, "bridge");
        if (bridge && !net_ifname_valid(json_string_value(bridge)))
            return hvm_error(EINVAL, "VM '%s': network adapter %zu: bridge: not an interface "
                             "name", vm, i);
    }
    return 0;
}

static int check_boot(const char *vm, const json_t *plan)
{
    const json_t *kernel = json_object_get(plan, "kernel"), *cmdline = json_object_get(plan, "cmdline");
    int r = check_path(vm, "config.boot.kernel", kernel, false);
    if (r == 0)
        r = check_path(vm, "config.boot.initrd", json_object_get(plan, "initrd"), false);
    if (r == 0 && !kernel && json_object_get(plan, "initrd"))
        r = hvm_error(EINVAL, "VM '%s': config.boot.initrd: an initrd without a kernel", vm);
    if (r == 0 && cmdline && (!json_is_string(cmdline) || json_string_length(cmdline) > 2048 ||
                              has_control(json_string_value(cmdline))))
        r = hvm_error(EINVAL, "VM '%s': config.boot.cmdline: expected a line of text of at most "
                      "2048 characters", vm);
    return r;
}

static int check_dvds(const char *vm, const json_t *dvds)
{
    if (!dvds)
        return 0;
    if (!json_is_array(dvds) || json_array_size(dvds) > QEMU_MAX_DVDS)
        return hvm_error(EINVAL, "VM '%s': config.dvds: expected an array of at most %d", vm,
                         QEMU_MAX_DVDS);
    size_t i;
    json_t *d;
    json_array_foreach(dvds, i, d) {
        char field[64];
        snprintf(field, sizeof field, "config.dvds[%zu].slot", i);
        int r = check_int(vm, field, json_object_get(d, "slot"), 0, QEMU_MAX_DVDS - 1);
        snprintf(field, sizeof field, "config.dvds[%zu].file", i);
        if (r == 0)
            r = check_path(vm, field, json_object_get(d, "path"), true);
        for (size_t k = 0; r == 0 && k < i; k++)
            if (json_integer_value(json_object_get(json_array_get(dvds, k), "slot")) ==
                json_integer_value(json_object_get(d, "slot")))
                r = hvm_error(EINVAL, "VM '%s': config.dvds[%zu].slot: taken twice", vm, i);
        if (r < 0)
            return r;
    }
    return 0;
}

static const char *const boot_kinds[] = {"dvd", "disk", "net"};

static int check_boot_order(const char *vm, const json_t *order)
{
    if (!order)
        return 0;
    bool ok = json_is_array(order) && json_array_size(order) >= 1 && json_array_size(order) <= 3;
    for (size_t i = 0; ok && i < json_array_size(order); i++) {
        const char *s = json_string_value(json_array_get(order, i));
        bool known = false;
        for (size_t k = 0; s && k < 3; k++)
            known |= strcmp(s, boot_kinds[k]) == 0;
        for (size_t k = 0; known && k < i; k++)
            known = strcmp(s, json_string_value(json_array_get(order, k))) != 0;
        ok = known;
    }
    return ok ? 0 : hvm_error(EINVAL, "VM '%s': config.boot_order: expected dvd, disk and net, "
                              "each at most once", vm);
}

int qemu_boot_index(const json_t *plan, const char *kind, int index)
{
    const json_t *order = json_object_get(plan, "boot_order");
    for (size_t i = 0; i < json_array_size(order); i++)
        if (strcmp(json_string_value(json_array_get(order, i)) ?: "", kind) == 0)
            return (int)i * 100 + index + 1;
    return -1;
}

const char *qemu_dvd_bus(const json_t *plan)
{
    const json_t *fw = json_object_get(plan, "firmware");
    if (!fw)
        return "ide";
    return json_is_true(json_object_get(fw, "secure_boot")) ? "ahci" : "scsi";
}

void qemu_args_dvds(struct qemu_args *a, const json_t *plan, const int fd[QEMU_MAX_DVDS])
{
    const char *bus = qemu_dvd_bus(plan);
    int dvds = 0;
    for (int slot = 0; slot < QEMU_MAX_DVDS; slot++) {
        if (fd[slot] < 0)
            continue;
        char boot[32] = "";
        int index = qemu_boot_index(plan, "dvd", dvds++);
        if (index >= 0)
            snprintf(boot, sizeof boot, ",bootindex=%d", index);
        /* QEMU opens /dev/fdset/10+slot, a dup of the worker's descriptor. */
        qemu_args_add(a, "-add-fd");
        qemu_args_add(a, "fd=%d,set=%d,opaque=dvd%d", fd[slot], 10 + slot, slot);
        qemu_args_add(a, "-drive");
        qemu_args_add(a, "if=none,id=dvd%d,media=cdrom,readonly=on,driver=raw,file.driver=file,"
                         "file.filename=/dev/fdset/%d,file.locking=off", slot, 10 + slot);
        if (strcmp(bus, "scsi") == 0 && dvds == 1) {
            qemu_args_add(a, "-device");
            qemu_args_add(a, "virtio-scsi-pci,id=scsi0");
        }
        qemu_args_add(a, "-device");
        if (strcmp(bus, "scsi") == 0)
            qemu_args_add(a, "scsi-cd,bus=scsi0.0,channel=0,scsi-id=%d,lun=0,drive=dvd%d%s", slot,
                          slot, boot);
        else if (strcmp(bus, "ahci") == 0)
            qemu_args_add(a, "ide-cd,bus=ide.%d,drive=dvd%d%s", slot, slot, boot);
        else
            qemu_args_add(a, "ide-cd,bus=ide.%d,unit=%d,drive=dvd%d%s", slot / 2, slot % 2, slot,
                          boot);
    }
}

static int check_firmware(const char *vm, const json_t *fw)
{
    if (!fw)
        return 0;
    if (!json_is_object(fw) || !json_is_boolean(json_object_get(fw, "secure_boot")))
        return hvm_error(EINVAL, "VM '%s': config.firmware: expected code, vars and secure_boot", vm);
    int r = check_path(vm, "config.firmware (OVMF's code)", json_object_get(fw, "code"), true);
    if (r == 0)
        r = check_path(vm, "config.firmware.vars", json_object_get(fw, "vars"), true);
    return r;
}

int qemu_plan_check(const json_t *plan)
{
    const char *name = json_string_value(json_object_get(plan, "name"));
    if (!store_name_valid(name))
        return hvm_error(EINVAL, "the VM's name is not a valid VM name");
    const char *accel = json_string_value(json_object_get(plan, "accel"));
    if (!accel || (strcmp(accel, "tcg") != 0 && strcmp(accel, "kvm") != 0))
        return hvm_error(EINVAL, "VM '%s': the accelerator must be kvm or tcg", name);
    const char *io = json_string_value(json_object_get(plan, "disk_io"));
    if (json_object_get(plan, "disk_io") && (!io || (strcmp(io, "nbd") != 0 && strcmp(io, "vhost-user") != 0)))
        return hvm_error(EINVAL, "VM '%s': config.disk_io: expected vhost-user or nbd", name);
    int r = check_int(name, "config.cpus", json_object_get(plan, "cpus"), 1, 256);
    if (r == 0)
        r = check_int(name, "config.memory", json_object_get(plan, "memory"), 1 << 20,
                      (json_int_t)1 << 44);
    if (r == 0)
        r = check_drives(name, json_object_get(plan, "drives"));
    if (r == 0)
        r = check_nics(name, json_object_get(plan, "nics"),
                       json_array_size(json_object_get(plan, "drives")));
    if (r == 0)
        r = check_boot(name, plan);
    if (r == 0)
        r = check_dvds(name, json_object_get(plan, "dvds"));
    if (r == 0)
        r = check_boot_order(name, json_object_get(plan, "boot_order"));
    if (r == 0)
        r = check_firmware(name, json_object_get(plan, "firmware"));
    if (r == 0)
        r = check_path(name, "saved_memory", json_object_get(plan, "incoming"), false);
    return r;
}
