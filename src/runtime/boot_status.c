/* What the firmware says about booting (see runtime.h). Two sources, both
 * written by QEMU into the VM's run/ folder:
 *   firmware.log  SeaBIOS's messages on its debug port (0x402, QEMU's
 *                 isa-debugcon): "Booting from Hard Disk...", "Boot failed:
 *                 not a bootable disk", "No bootable device."; SeaBIOS
 *                 retries every minute, so the last such line is the state;
 *   console.log   OVMF's boot manager on the serial port: 'BdsDxe: starting
 *                 Boot0001 "UEFI QEMU DVD-ROM ..."'; when it starts its
 *                 built-in "EFI Internal Shell", no boot option booted.
 * Only the current run counts: firmware.log is emptied when QEMU boots (not
 * when it resumes a memory state), and the console log is read from the
 * worker's last "[hvm] starting" line on. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/runtime.h"

#define TAIL_MAX (256 * 1024)

/* The last TAIL_MAX bytes of run/NAME, NUL-terminated; NULL when absent. */
static char *read_tail(const struct vm *vm, const char *name, size_t *len)
{
    char rel[64];
    snprintf(rel, sizeof rel, "run/%s", name);
    char *path = vm_path(vm, rel);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    free(path);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    off_t from = st.st_size > TAIL_MAX ? st.st_size - TAIL_MAX : 0;
    char *buf = malloc(TAIL_MAX + 1);
    ssize_t n = buf ? pread(fd, buf, TAIL_MAX, from) : -1;
    close(fd);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++) /* (binary noise must not end the text) */
        if (!buf[i])
            buf[i] = ' ';
    *len = (size_t)n;
    return buf;
}

/* The last occurrence of needle in text, or NULL. */
static const char *last_of(const char *text, const char *needle)
{
    const char *last = NULL;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        last = p;
    return last;
}

/* The text from p up to the end of its line, at most size-1 bytes, without
 * trailing dots or control characters. */
static void copy_line(const char *p, char *out, size_t size)
{
    size_t n = strcspn(p, "\r\n");
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    while (n && (out[n - 1] == '.' || out[n - 1] == ' '))
        n--;
    out[n] = 0;
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 32 || *c == 127)
            *c = ' ';
}

/* The last "Booting from X" naming a device: after "Booting from ROM"
 * SeaBIOS also says where it jumps ("Booting from ca00:0054"). */
static const char *last_booting(const char *log)
{
    static const char needle[] = "Booting from ";
    const char *last = NULL;
    for (const char *p = log; (p = strstr(p, needle)); p++) {
        const char *w = p + strlen(needle);
        bool address = strlen(w) >= 9 && w[4] == ':';
        for (int i = 0; address && i < 9; i++)
            address = i == 4 || isxdigit((unsigned char)w[i]);
        if (!address)
            last = p;
    }
    return last;
}

static void from_seabios(const char *log, char *out, size_t size)
{
    const char *none = last_of(log, "No bootable device");
    const char *booting = last_booting(log);
    if (none && (!booting || none > booting)) {
        snprintf(out, size, "no bootable device");
    } else if (booting) {
        char what[96];
        copy_line(booting + strlen("Booting from "), what, sizeof what);
        const char *failed = last_of(booting, "Boot failed");
        if (failed)
            snprintf(out, size, "trying the next device (%s failed)", what);
        else
            snprintf(out, size, "%s", what);
    }
}

static void from_ovmf(const char *log, char *out, size_t size)
{
    static const char marker[] = "BdsDxe: starting Boot";
    const char *start = last_of(log, marker);
    if (!start)
        return;
    const char *q = strchr(start, '"'), *e = q ? strchr(q + 1, '"') : NULL;
    const char *eol = start + strcspn(start, "\r\n");
    if (!q || !e || e > eol)
        return;
    char what[96];
    size_t n = (size_t)(e - q - 1) < sizeof what - 1 ? (size_t)(e - q - 1) : sizeof what - 1;
    memcpy(what, q + 1, n);
    what[n] = 0;
    for (char *c = what; *c; c++)
        if ((unsigned char)*c < 32 || *c == 127)
            *c = ' ';
    if (strcmp(what, "EFI Internal Shell") == 0)
        snprintf(out, size, "no bootable device (OVMF started its shell)");
    else
        snprintf(out, size, "%s", what);
}

int runtime_boot_status(const struct vm *vm, char *out, size_t size)
{
    out[0] = 0;
    size_t len;
    char *fw = read_tail(vm, "firmware.log", &len);
    if (fw) {
        from_seabios(fw, out, size);
        free(fw);
    }
    char *log = out[0] ? NULL : read_tail(vm, "console.log", &len);
    if (log) {
        const char *run = last_of(log, "[hvm] starting ");
        from_ovmf(run ? run : log, out, size);
        free(log);
    }
    return out[0] ? 0 : -ENOENT;
}
