/* The vm.json schema and its checker (see validate.h).
 *
 * Each object of the document has a table of the keys it may have: the key,
 * whether it must be there, and the function that checks its value. Keys
 * not in the table are refused: a document hvm did not write is not read
 * half-understood. To add a key: add a row (and, for a new kind of value, a
 * check_* function). The document:
 *
 *   top        format, generation, id, name, created, state, saved_memory,
 *              config, checkpoints, now, base, runtime
 *   config     cpus, memory, drives, nics, disk_io, boot, autostart, autostop,
 *              dvds, boot_order, firmware
 *   drive      slot, file
 *   dvd        slot (0-3), file (an absolute host path: an ISO is referenced)
 *   boot_order "dvd", "disk", "net", each at most once
 *   firmware   type ("bios" or "uefi"), vars (uefi: the VM's copy of OVMF's
 *              variable store, a file of the folder), secure_boot (uefi)
 *   nic        switch, mac, vlan (1-4094), model (virtio, e1000e), mac_spoofing,
 *              dhcp_guard, router_guard (booleans), max_bandwidth (Mbit/s)
 *   boot       kernel, initrd, cmdline
 *   autostart  enabled, delay           (or a plain true/false)
 *   autostop   "save", "shutdown" or "turn-off"
 *   checkpoint id, name, created, parent, hidden, config, memory
 *   now        parent
 *   runtime    accel, started, resume_pending
 *
 * and across fields: checkpoint ids unique, every parent (and now's) an id
 * of the list, no loop through parents, slots and MACs unique per config. */
#include "vm/validate.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"
#include "util/fileio.h"
#include "vm/autostart.h"
#include "vm/store.h"
#include "vm/vm.h"

struct ctx {
    json_t *problems;
    const char *file;
    unsigned flags;
    size_t n; /* problems found (listed up to VM_MAX_PROBLEMS) */
};

typedef void check_fn(struct ctx *c, const char *path, json_t *v);

struct field {
    const char *key;
    bool required;
    check_fn *check;
};

/* ---- shapes ---- */

bool vm_text_valid(const char *s, size_t max)
{
    if (!s || !s[0])
        return false;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x20 || *p == 0x7f || n >= max)
            return false;
    return true;
}

bool vm_uuid_valid(const char *id)
{
    if (!id || strlen(id) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? id[i] != '-' : !isxdigit((unsigned char)id[i]))
            return false;
    }
    return true;
}

bool vm_mac_valid(const char *mac)
{
    if (!mac || strlen(mac) != 17)
        return false;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? mac[i] != ':' : !isxdigit((unsigned char)mac[i]))
            return false;
    /* The group bit of the first octet: a multicast address is no adapter's. */
    int first = (int)strtol((char[3]){mac[0], mac[1], 0}, NULL, 16);
    return (first & 1) == 0;
}

bool vm_switch_name_valid(const char *name)
{
    if (!name || !isalnum((unsigned char)name[0]) || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return false;
    return true;
}

/* A file of the VM folder (a disk layer, a memory state): relative, no
 * "..", inside a subfolder (never vm.json, journal or lock themselves), not
 * in run/ (the worker's sockets). */
static bool folder_file_valid(const char *rel)
{
    return vm_text_valid(rel, 1024) && path_is_safe_relative(rel) && strchr(rel, '/') &&
           strncmp(rel, "run/", 4) != 0;
}

/* A path of this host (a base, a kernel): absolute and plain. */
static bool host_path_valid(const char *path)
{
    return vm_text_valid(path, PATH_MAX - 1) && path[0] == '/' && path_is_safe_relative(path + 1);
}

/* ---- problems ---- */

/* A value from the document, fit for a message: printable, short. */
static const char *shown(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s && s[i] && i + 4 < len; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (s && s[i])
        buf[i++] = '.', buf[i++] = '.', buf[i++] = '.';
    buf[i] = 0;
    return buf;
}

static void problem(struct ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct ctx *c, const char *path, const char *fmt, ...)
{
    if (c->n++ >= VM_MAX_PROBLEMS)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vm_problem(c->problems, "%s: %s%s%s", c->file, path, path[0] ? ": " : "", msg);
}

static const char *type_name(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "true/false";
    default: return "null";
    }
}

static bool want(struct ctx *c, const char *path, json_t *v, json_type type, const char *what)
{
    bool ok = json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v));
    if (!ok)
        problem(c, path, "expected %s, not %s", what, type_name(v));
    return ok;
}

static const char *want_string(struct ctx *c, const char *path, json_t *v)
{
    return want(c, path, v, JSON_STRING, "a string") ? json_string_value(v) : NULL;
}

static void check_int(struct ctx *c, const char *path, json_t *v, json_int_t lo, json_int_t hi,
                      const char *unit)
{
    if (!want(c, path, v, JSON_INTEGER, "an integer"))
        return;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        problem(c, path, "%lld is out of range (%lld to %lld%s)", (long long)x, (long long)lo,
                (long long)hi, unit);
}

static void sub_path(char *out, size_t len, const char *path, const char *key)
{
    char k[48];
    snprintf(out, len, "%s%s%s", path, path[0] ? "." : "", shown(key, k, sizeof k));
}

static void check_object(struct ctx *c, const char *path, json_t *obj, const struct field *fields)
{
    if (!want(c, path, obj, JSON_OBJECT, "an object"))
        return;
    char sub[320];
    for (const struct field *f = fields; f->key; f++) {
        json_t *v = json_object_get(obj, f->key);
        sub_path(sub, sizeof sub, path, f->key);
        if (v)
            f->check(c, sub, v);
        else if (f->required)
            problem(c, sub, "missing");
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        const struct field *f = fields;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (!f->key) {
            sub_path(sub, sizeof sub, path, key);
            problem(c, sub, "unknown key");
        }
    }
}

/* ---- values ---- */

static void check_format(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, VM_FORMAT, VM_FORMAT, "");
}

static void check_generation(struct ctx *c, const char *path, json_t *v)
{
    /* Commits add one: far below the overflow. */
    check_int(c, path, v, 0, (json_int_t)1 << 62, "");
}

static void check_uuid(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    const char *s = want_string(c, path, v);
    if (s && !vm_uuid_valid(s))
        problem(c, path, "'%s' is not an id (8-4-4-4-12 hex digits)", shown(s, b, sizeof b));
}

static void check_parent(struct ctx *c, const char *path, json_t *v)
{
    if (!json_is_null(v))
        check_uuid(c, path, v);
}

static void check_vm_name(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    const char *s = want_string(c, path, v);
    /* A comma would add options where QEMU takes the name (-name, paths). */
    if (s && (!store_name_valid(s) || strchr(s, ',')))
        problem(c, path, "'%s' is not a valid VM name", shown(s, b, sizeof b));
}

static void check_time(struct ctx *c, const char *path, json_t *v)
{
    const char *s = want_string(c, path, v);
    if (s && !vm_text_valid(s, 64))
        problem(c, path, "not a date (1-64 printable characters)");
}

static void check_cp_name(struct ctx *c, const char *path, json_t *v)
{
    const char *s = want_string(c, path, v);
    if (s && !vm_text_valid(s, 1024))
        problem(c, path, "not a checkpoint name (1-1024 characters, no control characters)");
}

/* v is a string and one of words (NULL-terminated); the problem names them
 * all: "'x' is not a, b or c". */
static void check_word(struct ctx *c, const char *path, json_t *v, const char *const *words)
{
    char b[64], list[256] = "";
    const char *s = want_string(c, path, v);
    if (!s)
        return;
    size_t n = 0;
    for (; words[n]; n++)
        if (strcmp(s, words[n]) == 0)
            return;
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 i == 0 ? "" : i + 1 == n ? " or " : ", ", words[i]);
    problem(c, path, "'%s' is not %s", shown(s, b, sizeof b), list);
}

static void check_state(struct ctx *c, const char *path, json_t *v)
{
    check_word(c, path, v, (const char *const[]){"Off", "Saved", "Running", "Paused", NULL});
}

static void check_file(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    const char *s = want_string(c, path, v);
    if (s && !folder_file_valid(s))
        problem(c, path, "'%s' is not a file inside the VM folder (a relative path in a "
                "subfolder, no '..')", shown(s, b, sizeof b));
}

static void check_memory_file(struct ctx *c, const char *path, json_t *v)
{
    if (!json_is_null(v))
        check_file(c, path, v);
}

static void check_host_path(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    const char *s = want_string(c, path, v);
    if (s && !host_path_valid(s))
        problem(c, path, "'%s' is not an absolute path (without '.' or '..')", shown(s, b, sizeof b));
}

/* A kernel or initrd: a host path set with vm set, or a file under boot/
 * that travelled inside a bundle (import keeps only those). */
static void check_boot_path(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    const char *s = want_string(c, path, v);
    if (s && !host_path_valid(s) && !(strncmp(s, "boot/", 5) == 0 && folder_file_valid(s)))
        problem(c, path, "'%s' is neither an absolute path nor a file under boot/ (without '.' "
                "or '..')", shown(s, b, sizeof b));
}

static void check_base(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    if (json_is_null(v))
        return;
    const char *s = want_string(c, path, v);
    /* The real path of the base, or its copy inside the folder (bases/ of
     * an imported bundle); a bundle's own is always the latter. */
    bool inside = s && vm_text_valid(s, 1024) && path_is_safe_relative(s);
    bool ok = inside || (s && !(c->flags & VM_VALIDATE_BUNDLE) && host_path_valid(s));
    if (s && !ok)
        problem(c, path, "'%s' is not %s", shown(s, b, sizeof b),
                c->flags & VM_VALIDATE_BUNDLE ? "a file of the bundle"
                                              : "a file of the folder or an absolute path");
}

static void check_cpus(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 1, VM_MAX_CPUS, "");
}

static void check_memory(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, (json_int_t)VM_MIN_MEMORY, (json_int_t)VM_MAX_MEMORY, " bytes");
}

static void check_slot(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 0, VM_MAX_SLOT, "");
}

static void check_mac(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    const char *s = want_string(c, path, v);
    if (s && !vm_mac_valid(s))
        problem(c, path, "'%s' is not a MAC address (six hex pairs with colons, unicast)",
                shown(s, b, sizeof b));
}

static void check_switch(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    const char *s = want_string(c, path, v);
    if (s && !vm_switch_name_valid(s))
        problem(c, path, "'%s' is not a switch name (letters, digits, '_', '.', '-'; at most 64)",
                shown(s, b, sizeof b));
}

static void check_vlan(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 1, 4094, ", an 802.1Q VLAN ID");
}

static void check_max_bandwidth(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 1, 10000, " Mbit/s");
}

static void check_nic_model(struct ctx *c, const char *path, json_t *v)
{
    check_word(c, path, v, (const char *const[]){"virtio", "e1000e", NULL});
}

static void check_disk_io(struct ctx *c, const char *path, json_t *v)
{
    check_word(c, path, v, (const char *const[]){"vhost-user", "nbd", NULL});
}

/* How an online checkpoint's memory was saved (runtime_checkpoint_take_mode). */
static void check_memory_mode(struct ctx *c, const char *path, json_t *v)
{
    check_word(c, path, v, (const char *const[]){"precopy", "stop", NULL});
}

static void check_pause(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 0, 86400000, " ms");
}

static void check_autostop(struct ctx *c, const char *path, json_t *v)
{
    char b[64];
    const char *s = want_string(c, path, v);
    if (s && !vm_autostop_valid(s))
        problem(c, path, "'%s' is not save, shutdown or turn-off", shown(s, b, sizeof b));
}

static void check_cmdline(struct ctx *c, const char *path, json_t *v)
{
    const char *s = want_string(c, path, v);
    if (s && !vm_text_valid(s, 4096))
        problem(c, path, "not a kernel command line (1-4096 characters, no control characters)");
}

static void check_bool(struct ctx *c, const char *path, json_t *v)
{
    want(c, path, v, JSON_TRUE, "true or false");
}

static void check_delay(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 0, INT_MAX, " seconds");
}

static void check_accel(struct ctx *c, const char *path, json_t *v)
{
    check_word(c, path, v, (const char *const[]){"kvm", "tcg", NULL});
}

static void check_started(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 0, (json_int_t)1 << 62, "");
}

static const struct field drive_fields[] = {
    {"slot", true, check_slot},
    {"file", true, check_file},
    {NULL, false, NULL},
};

static void check_dvd_slot(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 0, VM_MAX_DVDS - 1, "");
}

static const struct field dvd_fields[] = {
    {"slot", true, check_dvd_slot},
    {"file", true, check_host_path},
    {NULL, false, NULL},
};

static const struct field nic_fields[] = {
    {"switch", true, check_switch},
    {"mac", true, check_mac},
    {"vlan", false, check_vlan},
    {"model", false, check_nic_model},
    {"mac_spoofing", false, check_bool},
    {"dhcp_guard", false, check_bool},
    {"router_guard", false, check_bool},
    {"max_bandwidth", false, check_max_bandwidth},
    {NULL, false, NULL},
};

static const struct field boot_fields[] = {
    {"kernel", false, check_boot_path},
    {"initrd", false, check_boot_path},
    {"cmdline", false, check_cmdline},
    {NULL, false, NULL},
};

static const struct field autostart_fields[] = {
    {"enabled", true, check_bool},
    {"delay", false, check_delay},
    {NULL, false, NULL},
};

static void check_firmware_type(struct ctx *c, const char *path, json_t *v)
{
    check_word(c, path, v, (const char *const[]){"bios", "uefi", NULL});
}

static const struct field firmware_fields[] = {
    {"type", true, check_firmware_type},
    {"vars", false, check_file},
    {"secure_boot", false, check_bool},
    {NULL, false, NULL},
};

/* UEFI needs its variable store (boot entries live there); BIOS has none. */
static void check_firmware(struct ctx *c, const char *path, json_t *v)
{
    size_t before = c->n;
    check_object(c, path, v, firmware_fields);
    if (c->n != before)
        return;
    bool uefi = strcmp(json_string_value(json_object_get(v, "type")), "uefi") == 0;
    char sub[320];
    if (uefi && !json_object_get(v, "vars")) {
        sub_path(sub, sizeof sub, path, "vars");
        problem(c, sub, "missing: UEFI needs the VM's variable store");
    }
    if (!uefi && (json_object_get(v, "vars") || json_is_true(json_object_get(v, "secure_boot")))) {
        sub_path(sub, sizeof sub, path, json_object_get(v, "vars") ? "vars" : "secure_boot");
        problem(c, sub, "only UEFI firmware has it");
    }
}

static void check_boot(struct ctx *c, const char *path, json_t *v)
{
    check_object(c, path, v, boot_fields);
}

static void check_autostart(struct ctx *c, const char *path, json_t *v)
{
    if (!json_is_boolean(v))
        check_object(c, path, v, autostart_fields);
}

static bool check_array(struct ctx *c, const char *path, json_t *v, size_t max, const char *what)
{
    if (!want(c, path, v, JSON_ARRAY, "an array"))
        return false;
    if (json_array_size(v) > max) {
        problem(c, path, "%zu %s, at most %zu", json_array_size(v), what, max);
        return false;
    }
    return true;
}

static void check_drives(struct ctx *c, const char *path, json_t *v)
{
    if (!check_array(c, path, v, VM_MAX_DRIVES, "drives"))
        return;
    size_t i;
    json_t *d;
    int owner[VM_MAX_SLOT + 1];
    for (int k = 0; k <= VM_MAX_SLOT; k++)
        owner[k] = -1;
    json_array_foreach(v, i, d) {
        char sub[340];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        size_t before = c->n;
        check_object(c, sub, d, drive_fields);
        if (c->n != before)
            continue;
        int slot = (int)json_integer_value(json_object_get(d, "slot"));
        if (owner[slot] >= 0)
            problem(c, sub, "slot %d is taken by %s[%d] already", slot, path, owner[slot]);
        else
            owner[slot] = (int)i;
    }
}

static void check_dvds(struct ctx *c, const char *path, json_t *v)
{
    if (!check_array(c, path, v, VM_MAX_DVDS, "DVD drives"))
        return;
    size_t i, k;
    json_t *d;
    json_array_foreach(v, i, d) {
        char sub[340];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        size_t before = c->n;
        check_object(c, sub, d, dvd_fields);
        if (c->n != before)
            continue;
        for (k = 0; k < i; k++)
            if (json_equal(json_object_get(json_array_get(v, k), "slot"), json_object_get(d, "slot"))) {
                problem(c, sub, "slot %lld is taken by %s[%zu] already",
                        (long long)json_integer_value(json_object_get(d, "slot")), path, k);
                break;
            }
    }
}

static void check_boot_order(struct ctx *c, const char *path, json_t *v)
{
    static const char *const kinds[] = {"dvd", "disk", "net"};
    if (!check_array(c, path, v, 3, "boot devices"))
        return;
    if (json_array_size(v) == 0)
        problem(c, path, "empty (name at least one of dvd, disk, net)");
    for (size_t i = 0; i < json_array_size(v); i++) {
        char sub[340], b[64];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        const char *s = want_string(c, sub, json_array_get(v, i));
        bool known = false;
        for (size_t k = 0; s && k < 3; k++)
            known |= strcmp(s, kinds[k]) == 0;
        if (s && !known)
            problem(c, sub, "'%s' is not dvd, disk or net", shown(s, b, sizeof b));
        for (size_t k = 0; s && known && k < i; k++)
            if (json_equal(json_array_get(v, k), json_array_get(v, i)))
                problem(c, sub, "'%s' is named twice", s);
    }
}

static void check_nics(struct ctx *c, const char *path, json_t *v)
{
    if (!check_array(c, path, v, VM_MAX_NICS, "network adapters"))
        return;
    size_t i, k;
    json_t *n;
    json_array_foreach(v, i, n) {
        char sub[340];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        size_t before = c->n;
        check_object(c, sub, n, nic_fields);
        if (c->n != before)
            continue;
        const char *mac = json_string_value(json_object_get(n, "mac"));
        for (k = 0; k < i; k++) {
            const char *other = json_string_value(json_object_get(json_array_get(v, k), "mac"));
            if (other && strcasecmp(other, mac) == 0) {
                problem(c, sub, "MAC %s is %s[%zu]'s already", mac, path, k);
                break;
            }
        }
    }
}

static const struct field config_fields[] = {
    {"cpus", true, check_cpus},
    {"memory", true, check_memory},
    {"drives", true, check_drives},
    {"nics", true, check_nics},
    {"disk_io", false, check_disk_io},
    {"boot", false, check_boot},
    {"autostart", false, check_autostart},
    {"autostop", false, check_autostop},
    {"dvds", false, check_dvds},
    {"boot_order", false, check_boot_order},
    {"firmware", false, check_firmware},
    {NULL, false, NULL},
};

static void check_config(struct ctx *c, const char *path, json_t *v)
{
    check_object(c, path, v, config_fields);
}

static const struct field checkpoint_fields[] = {
    {"id", true, check_uuid},
    {"name", true, check_cp_name},
    {"created", false, check_time},
    {"parent", false, check_parent},
    {"hidden", false, check_bool},
    {"config", true, check_config},
    {"memory", false, check_memory_file},
    {"memory_mode", false, check_memory_mode},
    {"pause_ms", false, check_pause},
    {NULL, false, NULL},
};

static void check_checkpoints(struct ctx *c, const char *path, json_t *v)
{
    if (!check_array(c, path, v, VM_MAX_CHECKPOINTS, "checkpoints"))
        return;
    size_t i;
    json_t *cp;
    json_array_foreach(v, i, cp) {
        char sub[340];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        check_object(c, sub, cp, checkpoint_fields);
    }
}

static const struct field now_fields[] = {
    {"parent", false, check_parent},
    {NULL, false, NULL},
};

static void check_now(struct ctx *c, const char *path, json_t *v)
{
    check_object(c, path, v, now_fields);
}

static const struct field runtime_fields[] = {
    {"accel", false, check_accel},
    {"started", false, check_started},
    {"resume_pending", false, check_bool},
    {NULL, false, NULL},
};

static void check_runtime(struct ctx *c, const char *path, json_t *v)
{
    check_object(c, path, v, runtime_fields);
}

static const struct field top_fields[] = {
    {"format", true, check_format},
    {"generation", true, check_generation},
    {"id", true, check_uuid},
    {"name", true, check_vm_name},
    {"created", false, check_time},
    {"state", false, check_state},
    {"saved_memory", false, check_memory_file},
    {"config", true, check_config},
    {"checkpoints", true, check_checkpoints},
    {"now", true, check_now},
    {"base", false, check_base},
    {"runtime", false, check_runtime},
    {NULL, false, NULL},
};

/* ---- the checkpoint tree ---- */

/* Index of the checkpoint with this id in ids ({id: index}), or -1. */
static json_int_t index_of(json_t *ids, json_t *id)
{
    json_t *x = json_is_string(id) ? json_object_get(ids, json_string_value(id)) : NULL;
    return x ? json_integer_value(x) : -1;
}

static void check_parent_known(struct ctx *c, const char *path, json_t *ids, json_t *parent)
{
    char b[64];
    if (json_is_string(parent) && index_of(ids, parent) < 0)
        problem(c, path, "no checkpoint has the id %s", shown(json_string_value(parent), b, sizeof b));
}

/* Following parents from any node must end at a root: no loops. Each node
 * is walked once (marked when its way to a root is known). */
static void check_loops(struct ctx *c, const char *root, json_t *list, json_t *ids)
{
    size_t n = json_array_size(list);
    unsigned char *mark = calloc(n ? n : 1, 1); /* 0 new, 1 on this walk, 2 done */
    size_t *walk = calloc(n ? n : 1, sizeof *walk);
    if (!mark || !walk) {
        problem(c, root, "out of memory");
        free(mark);
        free(walk);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        json_int_t j = (json_int_t)i;
        while (j >= 0 && mark[j] == 0) {
            mark[j] = 1;
            walk[len++] = (size_t)j;
            j = index_of(ids, json_object_get(json_array_get(list, (size_t)j), "parent"));
        }
        if (j >= 0 && mark[j] == 1) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s%scheckpoints[%lld].parent", root, root[0] ? "." : "",
                     (long long)j);
            problem(c, sub, "its parents lead back to it (a loop, not a tree)");
        }
        while (len)
            mark[walk[--len]] = 2;
    }
    free(mark);
    free(walk);
}

static void check_tree(struct ctx *c, const char *root, json_t *doc)
{
    const char *dot = root[0] ? "." : "";
    json_t *list = json_object_get(doc, "checkpoints");
    if (!json_is_array(list) || json_array_size(list) > VM_MAX_CHECKPOINTS)
        return;
    json_t *ids = json_object();
    size_t i;
    json_t *cp;
    json_array_foreach(list, i, cp) {
        json_t *id = json_object_get(cp, "id");
        if (!json_is_string(id))
            continue;
        char sub[96];
        snprintf(sub, sizeof sub, "%s%scheckpoints[%zu].id", root, dot, i);
        json_int_t other = index_of(ids, id);
        if (other >= 0)
            problem(c, sub, "the id of checkpoints[%lld] too: ids are unique", (long long)other);
        else
            json_object_set_new(ids, json_string_value(id), json_integer((json_int_t)i));
    }
    json_array_foreach(list, i, cp) {
        char sub[96];
        snprintf(sub, sizeof sub, "%s%scheckpoints[%zu].parent", root, dot, i);
        check_parent_known(c, sub, ids, json_object_get(cp, "parent"));
    }
    char sub[96];
    snprintf(sub, sizeof sub, "%s%snow.parent", root, dot);
    check_parent_known(c, sub, ids, json_object_get(json_object_get(doc, "now"), "parent"));
    check_loops(c, root, list, ids);
    json_decref(ids);
}

/* A whole document at root ("" for vm.json, "next" inside a journal). */
static void check_doc(struct ctx *c, const char *root, json_t *doc)
{
    if (!json_is_object(doc)) {
        problem(c, root, "not a JSON object (not an hvm VM configuration)");
        return;
    }
    check_object(c, root, doc, top_fields);
    check_tree(c, root, doc);
}

static void check_doc_value(struct ctx *c, const char *path, json_t *v)
{
    check_doc(c, path, v);
}

/* ---- manifest.json ----
 * format and each file's path safety, size and hash against the bundle are
 * bundle.c's checks; here the shape, so that nothing reads a wrong type. */

static void check_any(struct ctx *c, const char *path, json_t *v)
{
    (void)c, (void)path, (void)v;
}

static void check_text(struct ctx *c, const char *path, json_t *v)
{
    const char *s = want_string(c, path, v);
    if (s && !vm_text_valid(s, 1024))
        problem(c, path, "not 1-1024 printable characters");
}

static void check_size(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 0, (json_int_t)1 << 50, " bytes");
}

static void check_sha256(struct ctx *c, const char *path, json_t *v)
{
    const char *s = want_string(c, path, v);
    bool ok = s && strlen(s) == 64;
    for (int i = 0; ok && i < 64; i++)
        ok = isxdigit((unsigned char)s[i]);
    if (s && !ok)
        problem(c, path, "not a SHA-256 (64 hex digits)");
}

static void check_bundle_path(struct ctx *c, const char *path, json_t *v)
{
    want_string(c, path, v);
}

static void check_bundle_parent(struct ctx *c, const char *path, json_t *v)
{
    if (!json_is_null(v))
        want_string(c, path, v);
}

static const struct field manifest_vm_fields[] = {
    {"id", false, check_uuid},
    {"name", false, check_text},
    {NULL, false, NULL},
};

static void check_manifest_vm(struct ctx *c, const char *path, json_t *v)
{
    check_object(c, path, v, manifest_vm_fields);
}

static const struct field file_fields[] = {
    {"path", true, check_bundle_path},
    {"size", true, check_size},
    {"sha256", true, check_sha256},
    {NULL, false, NULL},
};

static const struct field chain_fields[] = {
    {"file", true, check_bundle_path},
    {"parent", false, check_bundle_parent},
    {NULL, false, NULL},
};

/* An array of objects of one kind; unique marks a key each must differ in. */
static void check_list(struct ctx *c, const char *path, json_t *v, size_t max, const char *what,
                       const struct field *fields, const char *unique)
{
    if (!check_array(c, path, v, max, what))
        return;
    json_t *seen = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        char sub[340];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        check_object(c, sub, e, fields);
        const char *key = json_string_value(json_object_get(e, unique));
        if (!key)
            continue;
        char b[64];
        if (json_object_get(seen, key))
            problem(c, sub, "'%s' is listed twice", shown(key, b, sizeof b));
        else
            json_object_set_new(seen, key, json_true());
    }
    json_decref(seen);
}

static void check_files(struct ctx *c, const char *path, json_t *v)
{
    check_list(c, path, v, 100000, "files", file_fields, "path");
}

static void check_chains(struct ctx *c, const char *path, json_t *v)
{
    if (!json_is_null(v))
        check_list(c, path, v, 100000, "layers", chain_fields, "file");
}

static const struct field manifest_fields[] = {
    {"format", true, check_any}, /* bundle.c: "format N is not 1" */
    {"kind", false, check_text},
    {"vm", false, check_manifest_vm},
    {"exported", false, check_time},
    {"files", true, check_files},
    {"chains", false, check_chains},
    {NULL, false, NULL},
};

/* ---- the journal ----
 * Every path of its steps and its remove list is a file of the VM folder:
 * a rebase names the layer going away (whose parent, maybe a base outside
 * the folder, the child goes onto), and a copy from a host file (vm set
 * --add-disk) is made before the journal is written (journal.c,
 * bring_in). (Whether a path leads out of the folder through a link is
 * for the replay to find, on the files.) */

static void check_step_kind(struct ctx *c, const char *path, json_t *v)
{
    want_string(c, path, v);
}

static void check_disk_size(struct ctx *c, const char *path, json_t *v)
{
    check_int(c, path, v, 1, (json_int_t)1 << 50, " bytes");
}

static const struct field diff_fields[] = {
    {"do", true, check_step_kind},
    {"parent", true, check_file},
    {"child", true, check_file},
    {NULL, false, NULL},
};

static const struct field rebase_fields[] = {
    {"do", true, check_step_kind},
    {"child", true, check_file},
    {"below", true, check_file}, /* the layer going away: child goes onto its parent */
    {NULL, false, NULL},
};

static const struct field merge_up_fields[] = {
    {"do", true, check_step_kind},
    {"child", true, check_file},
    {"parent", true, check_file},
    {NULL, false, NULL},
};

static const struct field copy_fields[] = {
    {"do", true, check_step_kind},
    {"from", true, check_file},
    {"to", true, check_file},
    {NULL, false, NULL},
};

static const struct field create_fields[] = {
    {"do", true, check_step_kind},
    {"file", true, check_file},
    {"size", true, check_disk_size},
    {NULL, false, NULL},
};

static const struct {
    const char *name;
    const struct field *fields;
} step_kinds[] = {
    {"diff", diff_fields},       {"rebase", rebase_fields}, {"merge-up", merge_up_fields},
    {"copy", copy_fields},       {"create", create_fields},
};

static void check_steps(struct ctx *c, const char *path, json_t *v)
{
    if (!check_array(c, path, v, 4 * VM_MAX_DRIVES * (VM_MAX_CHECKPOINTS + 1), "steps"))
        return;
    size_t i;
    json_t *st;
    json_array_foreach(v, i, st) {
        char sub[340], b[64];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        const char *kind = json_string_value(json_object_get(st, "do"));
        size_t k = 0;
        while (kind && k < sizeof step_kinds / sizeof *step_kinds && strcmp(step_kinds[k].name, kind))
            k++;
        if (!json_is_object(st))
            problem(c, sub, "expected an object, not %s", type_name(st));
        else if (!kind)
            problem(c, sub, "no step kind ('do': a string)");
        else if (k == sizeof step_kinds / sizeof *step_kinds)
            problem(c, sub, "unknown step '%s'", shown(kind, b, sizeof b));
        else
            check_object(c, sub, st, step_kinds[k].fields);
    }
}

static void check_remove(struct ctx *c, const char *path, json_t *v)
{
    if (!check_array(c, path, v, 4 * VM_MAX_DRIVES * (VM_MAX_CHECKPOINTS + 1), "files"))
        return;
    size_t i;
    json_t *f;
    json_array_foreach(v, i, f) {
        char sub[340];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        check_file(c, sub, f);
    }
}

static void check_leaves(struct ctx *c, const char *path, json_t *v)
{
    if (!check_array(c, path, v, VM_MAX_DRIVES, "leaves"))
        return;
    size_t i;
    json_t *f;
    json_array_foreach(v, i, f) {
        char sub[340];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        check_host_path(c, sub, f);
    }
}

static const struct field guard_fields[] = {
    {"leaves", true, check_leaves},
    {NULL, false, NULL},
};

static void check_guard(struct ctx *c, const char *path, json_t *v)
{
    check_object(c, path, v, guard_fields);
}

static void check_op(struct ctx *c, const char *path, json_t *v)
{
    const char *s = want_string(c, path, v);
    if (s && !vm_text_valid(s, 64))
        problem(c, path, "not an operation name");
}

static const struct field journal_fields[] = {
    {"op", true, check_op},
    {"generation", true, check_generation},
    {"next", true, check_doc_value},
    {"steps", true, check_steps},
    {"remove", true, check_remove},
    {"guard", false, check_guard},
    {NULL, false, NULL},
};

/* ---- entry points ---- */

static size_t finish_list(struct ctx *c)
{
    if (c->n > VM_MAX_PROBLEMS)
        vm_problem(c->problems, "%s: %zu more problems not listed", c->file, c->n - VM_MAX_PROBLEMS);
    return c->n;
}

/* The first problem of a list (and how many more) as the error. */
static int list_error(json_t *list, size_t n)
{
    if (n == 1)
        return hvm_error(EINVAL, "%s", json_string_value(json_array_get(list, 0)));
    return hvm_error(EINVAL, "%s (and %zu more problem%s)", json_string_value(json_array_get(list, 0)),
                     n - 1, n == 2 ? "" : "s");
}

size_t vm_doc_problems(json_t *doc, const char *file, unsigned flags, json_t *problems)
{
    struct ctx c = {.problems = problems, .file = file ? file : "vm.json", .flags = flags};
    check_doc(&c, "", doc);
    return finish_list(&c);
}

int vm_doc_validate(json_t *doc, const char *file)
{
    json_t *list = json_array();
    if (!list)
        return hvm_error(ENOMEM, "out of memory");
    size_t n = vm_doc_problems(doc, file, 0, list);
    int r = n ? list_error(list, n) : 0;
    json_decref(list);
    return r;
}

size_t vm_manifest_problems(json_t *manifest, json_t *problems)
{
    struct ctx c = {.problems = problems, .file = "manifest.json", .flags = VM_VALIDATE_BUNDLE};
    if (!json_is_object(manifest))
        problem(&c, "", "not a JSON object (not an hvm bundle manifest)");
    else
        check_object(&c, "", manifest, manifest_fields);
    return finish_list(&c);
}

size_t vm_bundle_problems(json_t *doc, json_t *manifest, json_t *problems)
{
    size_t n = 0;
    if (doc)
        n += vm_doc_problems(doc, "vm.json", VM_VALIDATE_BUNDLE, problems);
    if (manifest)
        n += vm_manifest_problems(manifest, problems);
    return n;
}

enum vm_journal_action vm_journal_decide(json_t *journal, json_int_t have, const char *file,
                                         json_t *problems)
{
    struct ctx c = {.problems = problems, .file = file ? file : "journal"};
    if (!json_is_object(journal)) {
        problem(&c, "", "not a JSON object (not an hvm journal)");
        finish_list(&c);
        return VM_JOURNAL_REFUSE;
    }
    check_object(&c, "", journal, journal_fields);
    json_int_t gen = json_integer_value(json_object_get(journal, "generation"));
    json_t *next_gen = json_object_get(json_object_get(journal, "next"), "generation");
    if (c.n == 0 && json_integer_value(next_gen) != gen)
        problem(&c, "next.generation", "%lld, not the journal's %lld",
                (long long)json_integer_value(next_gen), (long long)gen);
    /* A journal is written for the generation after vm.json's: any other
     * was not written for this vm.json. */
    if (c.n == 0 && gen - 1 > have)
        problem(&c, "generation", "%lld is not the one after vm.json's %lld", (long long)gen,
                (long long)have);
    finish_list(&c);
    if (c.n)
        return VM_JOURNAL_REFUSE;
    if (have >= gen)
        return VM_JOURNAL_FINISH;
    return json_object_get(journal, "guard") ? VM_JOURNAL_GUARDED : VM_JOURNAL_EXECUTE;
}

int vm_journal_validate(json_t *journal, json_int_t have, const char *file,
                        enum vm_journal_action *action)
{
    json_t *list = json_array();
    if (!list)
        return hvm_error(ENOMEM, "out of memory");
    *action = vm_journal_decide(journal, have, file, list);
    size_t n = json_array_size(list);
    int r = *action == VM_JOURNAL_REFUSE ? list_error(list, n ? n : 1) : 0;
    json_decref(list);
    return r;
}
