/* Recognising other formats by their magic, and converting them to raw
 * through qemu-img (Debian's qemu-utils, which hvm depends on anyway):
 * qemu's readers of these formats are the reference ones, and a second
 * implementation of each in hvm would only be a new place for bugs. */
#include "disk/foreign.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk/disk.h"
#include "disk/ops.h"
#include "util/endian.h"
#include "util/error.h"

extern char **environ;

static const char *const names[] = {
    [DISK_FOREIGN_NONE] = "",      [DISK_FOREIGN_QCOW2] = "qcow2", [DISK_FOREIGN_QCOW] = "qcow",
    [DISK_FOREIGN_VMDK] = "vmdk",  [DISK_FOREIGN_VHDX] = "vhdx",   [DISK_FOREIGN_VDI] = "vdi",
    [DISK_FOREIGN_QED] = "qed",
};

/* As people write them, for messages. */
static const char *const titles[] = {
    [DISK_FOREIGN_NONE] = "",      [DISK_FOREIGN_QCOW2] = "qcow2", [DISK_FOREIGN_QCOW] = "qcow",
    [DISK_FOREIGN_VMDK] = "VMDK",  [DISK_FOREIGN_VHDX] = "VHDX",   [DISK_FOREIGN_VDI] = "VDI",
    [DISK_FOREIGN_QED] = "QED",
};

const char *disk_foreign_title(enum disk_foreign format)
{
    return (unsigned)format < sizeof titles / sizeof titles[0] ? titles[format] : "";
}

const char *disk_foreign_name(enum disk_foreign format)
{
    return (unsigned)format < sizeof names / sizeof names[0] ? names[format] : "";
}

bool disk_foreign_from_name(const char *name, enum disk_foreign *format)
{
    for (unsigned i = DISK_FOREIGN_NONE + 1; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) {
            *format = (enum disk_foreign)i;
            return true;
        }
    return false;
}

bool disk_foreign_convertible(enum disk_foreign format)
{
    return format != DISK_FOREIGN_NONE && format != DISK_FOREIGN_VHDX;
}

static uint32_t le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64_get(const uint8_t *p)
{
    return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

/* The magics and size fields, as qemu's block drivers read them
 * (block/qcow2.h, vmdk.c, vhdx.h, vdi.c, qed.h). */
static enum disk_foreign classify(const uint8_t *h, size_t n, uint64_t *size)
{
    static const char descriptor[] = "# Disk DescriptorFile";
    *size = 0;
    if (n >= 32 && memcmp(h, "QFI\xfb", 4) == 0) {
        *size = be64_get(h + 24); /* same place in versions 1, 2 and 3 */
        return be32_get(h + 4) == 1 ? DISK_FOREIGN_QCOW : DISK_FOREIGN_QCOW2;
    }
    if (n >= 20 && (memcmp(h, "KDMV", 4) == 0 || memcmp(h, "COWD", 4) == 0)) {
        if (memcmp(h, "KDMV", 4) == 0 && le64_get(h + 12) < (UINT64_MAX >> 9))
            *size = le64_get(h + 12) << 9; /* capacity in sectors */
        return DISK_FOREIGN_VMDK;
    }
    if (n >= sizeof descriptor - 1 && memcmp(h, descriptor, sizeof descriptor - 1) == 0)
        return DISK_FOREIGN_VMDK;
    if (n >= 8 && memcmp(h, "vhdxfile", 8) == 0)
        return DISK_FOREIGN_VHDX;
    if (n >= 0x48 && le32_get(h + 0x40) == 0xbeda107f) {
        if (n >= 0x178 && le32_get(h + 0x44) >> 16 == 1) /* header version 1.x */
            *size = le64_get(h + 0x170);
        return DISK_FOREIGN_VDI;
    }
    if (n >= 56 && memcmp(h, "QED\0", 4) == 0) {
        *size = le64_get(h + 48);
        return DISK_FOREIGN_QED;
    }
    return DISK_FOREIGN_NONE;
}

int disk_foreign_probe(const char *path, enum disk_foreign *format, uint64_t *virtual_size)
{
    uint64_t size_unused;
    if (!virtual_size)
        virtual_size = &size_unused;
    *format = DISK_FOREIGN_NONE;
    *virtual_size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang */
    if (fd < 0)
        return hvm_error(errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        /* A block device's first sector is its guest's business. */
        close(fd);
        return 0;
    }
    uint8_t h[512];
    ssize_t n = pread(fd, h, sizeof h, 0);
    int e = errno;
    close(fd);
    if (n < 0)
        return hvm_error(e, "%s: %s", path, strerror(e));
    *format = classify(h, (size_t)n, virtual_size);
    return 0;
}

int disk_foreign_refuse(const char *path, enum disk_foreign format)
{
    if (format == DISK_FOREIGN_VHDX)
        return hvm_error(EMEDIUMTYPE, "%s: a VHDX image; hvm reads VHDX but cannot use it "
                         "here yet (convert it with 'hvm vhd convert %s NEW.vhd')", path, path);
    return hvm_error(EMEDIUMTYPE, "%s: a %s image, not VHD or raw; 'hvm vhd convert "
                     "--from-format %s' converts it", path, disk_foreign_title(format),
                     disk_foreign_name(format));
}

int disk_foreign_require_vhd(const char *path)
{
    if (disk_is_vhd(path))
        return 0;
    enum disk_foreign format;
    int r = disk_foreign_probe(path, &format, NULL);
    if (r < 0)
        return r;
    if (format == DISK_FOREIGN_VHDX)
        return disk_foreign_refuse(path, format);
    if (format != DISK_FOREIGN_NONE)
        return hvm_error(EMEDIUMTYPE, "%s: a %s image, not a VHD; convert it first with "
                         "'hvm vhd convert --from-format %s %s NEW.vhd'", path,
                         disk_foreign_title(format), disk_foreign_name(format), path);
    return hvm_error(EINVAL, "%s: not a VHD (convert it with 'hvm vhd convert')", path);
}

/* qemu takes "proto:..." and "json:{...}" as protocol names, not files; a
 * path that starts with / or ./ is always a file. malloc'd. */
static char *qemu_file_name(const char *path)
{
    char *s;
    if (asprintf(&s, "%s%s", path[0] == '/' ? "" : "./", path) < 0)
        return NULL;
    return s;
}

/* qemu-img's output, stdout and stderr in one pipe: "    (12.50/100%)\r"
 * progress lines, and its messages, of which the last is kept (without
 * "qemu-img: ") for the error: warnings come before the error that ends a
 * run. With keep, everything it printed is kept too (for info's JSON). */
struct qemu_output {
    char line[512];
    size_t len;
    char message[512];
    const struct disk_progress *pr;
    bool keep;
    char *all;
    size_t all_len;
};

static void output_line(struct qemu_output *o)
{
    o->line[o->len] = '\0';
    o->len = 0;
    char *t = o->line;
    while (*t == ' ')
        t++;
    double percent;
    char close;
    if (sscanf(t, "(%lf/100%%%c", &percent, &close) == 2 && close == ')') {
        if (percent >= 0 && percent <= 100)
            disk_progress_report(o->pr, (uint64_t)(percent * 10), 1000);
        return;
    }
    if (!*t)
        return;
    if (strncmp(t, "qemu-img: ", 10) == 0)
        t += 10;
    snprintf(o->message, sizeof o->message, "%s", t);
}

/* -ENOMEM when what is kept grows past 1 MiB (no info is that long). */
static int output_feed(struct qemu_output *o, const char *data, size_t n)
{
    if (o->keep) {
        char *more = o->all_len + n < (1u << 20) ? realloc(o->all, o->all_len + n + 1) : NULL;
        if (!more)
            return -ENOMEM;
        o->all = more;
        memcpy(o->all + o->all_len, data, n);
        o->all_len += n;
        o->all[o->all_len] = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\r' || data[i] == '\n')
            output_line(o);
        else if (o->len < sizeof o->line - 1)
            o->line[o->len++] = data[i];
    }
    return 0;
}

/* Runs qemu-img with args (after "qemu-img"; src_arg is where src goes)
 * on src, an image of format; its output goes to o. The error names src
 * and what qemu-img said. */
static int run_qemu_img(const char *src, enum disk_foreign format, char **args, int src_arg,
                        struct qemu_output *o)
{
    char *in_name = qemu_file_name(src);
    int out[2] = {-1, -1};
    int r = 0;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    bool have_fa = false;
    char *argv[24] = {"qemu-img"};
    int argc = 1;
    for (int i = 0; args[i] && argc < 23; i++)
        argv[argc++] = i == src_arg ? in_name : args[i];
    argv[argc] = NULL;
    if (!in_name) {
        r = hvm_error(ENOMEM, "out of memory");
        goto out;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        r = hvm_error(errno, "pipe: %s", strerror(errno));
        goto out;
    }
    if ((r = -posix_spawn_file_actions_init(&fa)) < 0) {
        r = hvm_error(-r, "posix_spawn: %s", strerror(-r));
        goto out;
    }
    have_fa = true;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    int e = posix_spawnp(&pid, "qemu-img", &fa, NULL, argv, environ);
    close(out[1]);
    out[1] = -1;
    if (e) {
        r = e == ENOENT ? hvm_error(e, "%s: qemu-img not found (install qemu-utils to convert "
                                       "%s images)", src, disk_foreign_title(format))
                        : hvm_error(e, "qemu-img: %s", strerror(e));
        goto out;
    }
    char buf[4096];
    ssize_t n;
    int kept = 0;
    /* Read to the end so that qemu-img never blocks on a full pipe. */
    while ((n = read(out[0], buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (kept == 0)
            kept = output_feed(o, buf, (size_t)n);
    }
    output_line(o);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            status = -1;
            break;
        }
    if (status != 0) {
        /* Say the file as the user named it, without the "./" we added. */
        char *named = src[0] != '/' ? strstr(o->message, in_name) : NULL;
        if (named)
            memmove(named, named + 2, strlen(named + 2) + 1);
        if (WIFSIGNALED(status))
            r = hvm_error(EIO, "%s: qemu-img was killed by signal %d", src, WTERMSIG(status));
        else
            r = hvm_error(EIO, "%s: qemu-img could not read it as %s: %s", src,
                          disk_foreign_title(format), o->message[0] ? o->message : "no reason given");
    } else if (kept < 0) {
        r = hvm_error(ENOMEM, "%s: qemu-img said too much", src);
    }
out:
    if (have_fa)
        posix_spawn_file_actions_destroy(&fa);
    if (out[0] >= 0)
        close(out[0]);
    if (out[1] >= 0)
        close(out[1]);
    free(in_name);
    return r;
}

/* Is name (a file an image refers to, as qemu-img reports it) inside the
 * folder dir (a real path)? Anything that is not a plain file there (a
 * protocol, "json:{...}", a path through a link out of it) is not. */
static bool inside_folder(const char *dir, const char *name)
{
    char *real = realpath(name, NULL);
    size_t n = strlen(dir);
    bool in = real && strncmp(real, dir, n) == 0 && real[n] == '/';
    free(real);
    return in;
}

/* The first file an image of the qemu-img info document names (backing
 * file, data file, VMDK extent) outside dir, or NULL. */
static const char *outside_reference(const char *dir, json_t *image)
{
    const char *s = json_string_value(json_object_get(image, "filename"));
    if (s && !inside_folder(dir, s))
        return s;
    json_t *data = json_object_get(json_object_get(image, "format-specific"), "data");
    s = json_string_value(json_object_get(data, "data-file"));
    if (s && !inside_folder(dir, s))
        return s;
    size_t i;
    json_t *extent;
    json_array_foreach(json_object_get(data, "extents"), i, extent) {
        s = json_string_value(json_object_get(extent, "filename"));
        if (s && !inside_folder(dir, s))
            return s;
    }
    return NULL;
}

/* An image may name other files: a qcow2 backing file or data file, a
 * VMDK's extents. qemu-img follows them with hvm's rights (root), so a
 * hostile image could pull /etc/shadow into the VHD a guest then reads.
 * Only files inside the image's own folder are followed. */
static int check_references(const char *src, enum disk_foreign format)
{
    char *real = realpath(src, NULL);
    if (!real)
        return hvm_error(errno, "%s: %s", src, strerror(errno));
    char *slash = strrchr(real, '/');
    if (slash == real)
        slash[1] = '\0';
    else
        *slash = '\0';
    char *args[] = {"info", "--backing-chain", "--output=json", "-f",
                    (char *)disk_foreign_name(format), "SRC", NULL};
    struct qemu_output o = {.keep = true};
    int r = run_qemu_img(src, format, args, 5, &o);
    const char *doc = r == 0 && o.all ? strchr(o.all, '[') : NULL;
    json_t *chain = doc ? json_loads(doc, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    if (r == 0 && !json_is_array(chain))
        r = hvm_error(EIO, "%s: qemu-img info gave no image chain", src);
    size_t i;
    json_t *image;
    json_array_foreach(chain, i, image) {
        const char *bad = r == 0 ? outside_reference(real, image) : NULL;
        if (bad)
            r = hvm_error(EPERM, "%s: names '%s' (a backing file, data file or extent) outside "
                          "its folder; hvm follows only files beside the image: copy it there",
                          src, bad);
    }
    json_decref(chain);
    free(o.all);
    free(real);
    return r;
}

/* What every conversion asks first: a format qemu-img converts, and an
 * image that names nothing outside its folder. */
static int may_convert(const char *src, enum disk_foreign format)
{
    return disk_foreign_convertible(format) ? check_references(src, format)
                                            : disk_foreign_refuse(src, format);
}

int disk_foreign_to_raw(const char *src, enum disk_foreign format, const char *raw_path,
                        const struct disk_progress *pr)
{
    int r = may_convert(src, format);
    if (r < 0)
        return r;
    /* Created here, exclusively, so that nothing already at raw_path is
     * overwritten; qemu-img then recreates it at the disk's size. */
    int fd = open(raw_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return hvm_error(errno, "%s: %s", raw_path, strerror(errno));
    close(fd);
    char *out_name = qemu_file_name(raw_path);
    if (!out_name) {
        unlink(raw_path);
        return hvm_error(ENOMEM, "out of memory");
    }
    /* -S 4k (qemu-img's default, said for clarity): runs of zeros become
     * holes in the raw file; -p: progress, which we read. */
    char *args[] = {"convert", "-p", "-f", (char *)disk_foreign_name(format), "-O", "raw",
                    "-S", "4k", "SRC", out_name, NULL};
    struct qemu_output o = {.pr = pr};
    r = run_qemu_img(src, format, args, 8, &o);
    if (r < 0)
        unlink(raw_path);
    free(out_name);
    return r;
}

int disk_foreign_write_nbd(const char *src, enum disk_foreign format, const char *socket_path,
                           const struct disk_progress *pr)
{
    int r = may_convert(src, format);
    if (r < 0)
        return r;
    /* Image options rather than an nbd+unix:// URI: a path needs no
     * escaping there but its commas doubled. */
    size_t n = strlen(socket_path);
    char *target = malloc(2 * n + 80), *p = target;
    if (!target)
        return hvm_error(ENOMEM, "out of memory");
    p += sprintf(p, "driver=raw,file.driver=nbd,file.server.type=unix,file.server.path=");
    for (size_t i = 0; i < n; i++) {
        if (socket_path[i] == ',')
            *p++ = ',';
        *p++ = socket_path[i];
    }
    *p = '\0';
    /* -n: the target exists (it is the served disk); --target-is-zero: it
     * reads as zeros, so qemu-img writes only data, not zeros. */
    char *args[] = {"convert", "-p", "-n", "--target-is-zero", "-f",
                    (char *)disk_foreign_name(format), "--target-image-opts", "SRC", target, NULL};
    struct qemu_output o = {.pr = pr};
    r = run_qemu_img(src, format, args, 7, &o);
    free(target);
    return r;
}

int disk_foreign_virtual_size(const char *src, enum disk_foreign format, uint64_t *size)
{
    if (!disk_foreign_convertible(format))
        return disk_foreign_refuse(src, format);
    char *args[] = {"info", "--output=json", "-f", (char *)disk_foreign_name(format), "SRC",
                    NULL};
    struct qemu_output o = {.keep = true};
    int r = run_qemu_img(src, format, args, 4, &o);
    /* The document starts at the first brace (a warning may come first). */
    const char *doc = r == 0 && o.all ? strchr(o.all, '{') : NULL;
    json_t *info = doc ? json_loads(doc, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    json_t *v = json_object_get(info, "virtual-size");
    if (r == 0 && (!json_is_integer(v) || json_integer_value(v) < 0))
        r = hvm_error(EIO, "%s: qemu-img info gave no virtual size", src);
    else if (r == 0)
        *size = (uint64_t)json_integer_value(v);
    json_decref(info);
    free(o.all);
    return r;
}
