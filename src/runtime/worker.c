/* The per-VM worker process (see runtime.h).
 *
 * It is forked by `hvm vm start` and lives as long as QEMU does. Threads:
 * the main loop (control socket, QMP events, QEMU's exit), one NBD server
 * thread per drive (other clients on run/driveN.sock; QEMU too when the
 * VM's disk_io is "nbd") and, with disk_io "vhost-user" (the default), one
 * vhost-user-blk device per drive through which QEMU's guest reaches the
 * disk: a thread for the protocol and one per queue. Both servers of a
 * drive share the NBD server's disk lock. The disks are touched by those
 * threads only, except while the guest is stopped (checkpoint), when QEMU
 * sends no requests; nbd_server_replace_disk switches a leaf between
 * requests, for both. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "disk/ops.h"
#include "nbd/server.h"
#include "net/guard.h"
#include "net/net.h"
#include "runtime/confine.h"
#include "runtime/qemu.h"
#include "runtime/qmp.h"
#include "runtime/ramsize.h"
#include "runtime/runtime.h"
#include "util/error.h"
#include "vm/store.h"
#include "vm/validate.h"
#include "util/fileio.h"
#include "vhost/blk.h"

#define MAX_DRIVES QEMU_MAX_DRIVES

struct drive {
    int slot;
    char *path;
    struct disk *disk;
    struct nbd_server *server;
    pthread_t thread;
    bool running;
    struct vhost_blk *vhost; /* disk_io "vhost-user" */
    pthread_t vhost_thread;
    bool vhost_running;
    int vhost_fd; /* our end of the vhost-user socket, until the thread has it */
    int qemu_fd;  /* QEMU's end of its connection, until QEMU has it */
};

struct worker {
    char *dir;
    json_t *plan;
    bool vhost; /* disk_io "vhost-user" */
    struct drive drives[MAX_DRIVES];
    int n_drives;
    /* The tap of each adapter on a bridge switch (-1: user-mode), until
     * QEMU has it: only QEMU then holds it, so the tap goes when QEMU goes,
     * and QEMU goes with the worker. */
    int tap_fd[QEMU_MAX_NICS];
    pid_t qemu;
    struct qmp qmp;
    int ctl_fd;
    int vnc_fd; /* run/vnc.sock: each client is handed to QEMU's VNC server */
    int vnc_clients; /* names the descriptors given to QEMU */
    int reply_fd; /* a descriptor to send with the control reply (screendump) */
    int lock_fd;
    bool paused;
    uint64_t ram_bytes;  /* QEMU's guest RAM block */
    bool precopy_exact;  /* can a pre-copy of it lose no write (ramsize.h)? */
    time_t started;
    char *saved_memory; /* set when QEMU exits because of a save */
    bool quitting;
    /* Live migration (see worker_migrate.c): the folder of the sockets and
     * the lock ("run", or "run.incoming" while a destination waits for the
     * switchover), whether this worker records the VM's state in vm.json
     * when QEMU exits (not while incoming, nor after the VM left), and the
     * hvm that waits for the switchover. */
    const char *run;
    bool owner;
    bool incoming_live;
    pid_t controller;
};

static void wlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void wlog(const char *fmt, ...)
{
    char when[32];
    time_t t = time(NULL);
    strftime(when, sizeof when, "%H:%M:%S", localtime(&t));
    fprintf(stderr, "%s worker[%d]: ", when, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static char *run_path(struct worker *w, const char *name)
{
    char *p;
    /* The console and firmware logs are one file for the VM's whole run, on
     * both hosts of a live migration. */
    const char *sub = strcmp(name, "console.log") == 0 || strcmp(name, "firmware.log") == 0
                          ? "run"
                          : w->run;
    return asprintf(&p, "%s/%s/%s", w->dir, sub, name) < 0 ? NULL : p;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *serve_thread(void *arg)
{
    struct drive *d = arg;
    nbd_server_run(d->server);
    return NULL;
}

/* run/drives.json: the leaves the worker serves, replaced atomically after
 * every switch; journal recovery reads it (see vm_journal_begin). */
static void record_drives(struct worker *w)
{
    json_t *list = json_array();
    for (int i = 0; i < w->n_drives; i++)
        json_array_append_new(list, json_string(w->drives[i].path));
    json_t *rec = json_pack("{s:o}", "drives", list);
    char *text = json_dumps(rec, JSON_COMPACT);
    char *path = run_path(w, "drives.json");
    if (text && path)
        file_replace(path, text, strlen(text));
    free(text);
    free(path);
    json_decref(rec);
}

static void *vhost_thread(void *arg)
{
    struct drive *d = arg;
    int fd = d->vhost_fd;
    d->vhost_fd = -1;
    if (vhost_blk_run(d->vhost, fd) < 0)
        wlog("drive %d: vhost-user: %s", d->slot, hvm_error_message());
    return NULL;
}

static void vhost_log(void *opaque, const char *message)
{
    wlog("drive %d: vhost-user: %s", ((struct drive *)opaque)->slot, message);
}

static struct disk *vhost_acquire(void *opaque)
{
    return nbd_server_lock_disk(((struct drive *)opaque)->server);
}

static void vhost_release(void *opaque)
{
    nbd_server_unlock_disk(((struct drive *)opaque)->server);
}

/* QEMU's connection to a drive is one end of a socketpair that it
 * inherits, rather than a connect to a socket file. For NBD that also
 * gives both ends a send buffer that holds a whole 1 MiB request (QEMU
 * would keep the system default, about 200 KiB, and a large write would
 * cross in five or six rounds of wake-ups). The NBD socket file stays for
 * other clients. */
static int connect_qemu(struct worker *w, struct drive *dr)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return hvm_error(errno, "socketpair: %s", strerror(errno));
    dr->qemu_fd = sv[1];
    if (!w->vhost) {
        nbd_socket_buffers(sv[1]); /* (the server does its own end) */
        return nbd_server_add_client(dr->server, sv[0]);
    }
    char serial[32];
    snprintf(serial, sizeof serial, "hvm-drive%d", dr->slot);
    struct vhost_blk_disk_access access = {vhost_acquire, vhost_release, dr};
    /* Guest RAM is a shared memfd: its untouched pages would be allocated
     * while QEMU saves memory with the guest paused (the first online
     * checkpoint or save paid about 100-150 ms more for 256 MiB); the
     * first drive allocates them in the background after start. The host
     * then holds the VM's whole memory, as Hyper-V does for static memory. */
    struct vhost_blk_options opts = {.queues = 1, .serial = serial, .log = vhost_log,
                                     .log_opaque = dr, .populate_memory = dr == &w->drives[0]};
    dr->vhost_fd = sv[0];
    return vhost_blk_new(&access, dr->disk->size, &opts, &dr->vhost);
}

/* A live migration's destination: the source writes the chain until the
 * switchover, so only its size is read now (headers, no lock, nothing
 * kept); the drive is opened for real when activated. */
static int open_deferred(struct drive *dr)
{
    struct disk *probe;
    int r = disk_open(dr->path, DISK_OPEN_READ_ONLY | DISK_OPEN_HEADER_ONLY, &probe);
    if (r < 0)
        return r;
    uint64_t size = probe->size;
    disk_close(probe);
    return disk_deferred_new(dr->path, size, &dr->disk);
}

static int open_drives(struct worker *w)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(w->plan, "drives"), i, d) {
        if (w->n_drives == MAX_DRIVES)
            return hvm_error(E2BIG, "at most %d drives", MAX_DRIVES);
        struct drive *dr = &w->drives[w->n_drives];
        dr->slot = (int)json_integer_value(json_object_get(d, "slot"));
        dr->path = strdup(json_string_value(json_object_get(d, "path")));
        char name[32];
        snprintf(name, sizeof name, "drive%d.sock", dr->slot);
        char *sock = run_path(w, name);
        dr->qemu_fd = dr->vhost_fd = -1;
        int r = w->incoming_live ? open_deferred(dr) : disk_open(dr->path, 0, &dr->disk);
        if (r == 0)
            r = nbd_server_new(dr->disk, NULL, &dr->server);
        if (r == 0)
            r = nbd_server_listen_path(dr->server, sock);
        if (r == 0)
            r = connect_qemu(w, dr);
        free(sock);
        w->n_drives++;
        if (r < 0)
            return r;
        if (pthread_create(&dr->thread, NULL, serve_thread, dr) != 0)
            return hvm_error(EAGAIN, "cannot start a thread");
        dr->running = true;
        if (dr->vhost) {
            if (pthread_create(&dr->vhost_thread, NULL, vhost_thread, dr) != 0)
                return hvm_error(EAGAIN, "cannot start a thread");
            dr->vhost_running = true;
        }
    }
    record_drives(w);
    return 0;
}

static void close_drives(struct worker *w)
{
    for (int i = 0; i < w->n_drives; i++) {
        struct drive *d = &w->drives[i];
        if (d->vhost_running) {
            vhost_blk_stop(d->vhost);
            pthread_join(d->vhost_thread, NULL);
        }
        vhost_blk_free(d->vhost);
        if (d->vhost_fd >= 0)
            close(d->vhost_fd);
        if (d->running) {
            nbd_server_stop(d->server);
            pthread_join(d->thread, NULL);
        }
        nbd_server_free(d->server);
        if (d->disk && disk_flush(d->disk) < 0)
            wlog("flush of %s failed: %s", d->path, hvm_error_message());
        disk_close(d->disk);
        free(d->path);
        if (d->qemu_fd >= 0)
            close(d->qemu_fd);
    }
    w->n_drives = 0;
}

/* What QEMU is given instead of paths: its monitor (a socketpair), the
 * serial console's listening socket and log, and copies of the kernel and
 * initrd. QEMU runs as another user: run/ (0700) is closed to it, and the
 * configured kernel may be a file only root can read. */
struct qemu_fds {
    int qmp, console, log, kernel, initrd;
    /* UEFI: OVMF's code read-only; the variable store both ways (QEMU's
     * file driver picks the descriptor of the access mode it opens with) */
    int fw_code, fw_vars, fw_vars_ro;
    int dvd[QEMU_MAX_DVDS]; /* by slot; read-only, for -add-fd */
    int fwlog; /* run/firmware.log: SeaBIOS's debug port (boot_status.c) */
};

static void qemu_fds_init(struct qemu_fds *f)
{
    *f = (struct qemu_fds){-1, -1, -1, -1, -1, -1, -1, -1, {-1, -1, -1, -1}, -1};
}

static void qemu_fds_close(struct qemu_fds *f)
{
    int *all[] = {&f->qmp, &f->console, &f->log, &f->kernel, &f->initrd, &f->fw_code, &f->fw_vars,
                  &f->fw_vars_ro, &f->fwlog};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        if (*all[i] >= 0)
            close(*all[i]);
        *all[i] = -1;
    }
    for (int i = 0; i < QEMU_MAX_DVDS; i++) {
        if (f->dvd[i] >= 0)
            close(f->dvd[i]);
        f->dvd[i] = -1;
    }
}

/* Each DVD's ISO, opened read-only by the worker (QEMU could not open it:
 * it may lie anywhere on the host, readable by root only). */
static int open_dvds(const json_t *plan, struct qemu_fds *f)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(plan, "dvds"), i, d) {
        int slot = (int)json_integer_value(json_object_get(d, "slot"));
        const char *path = json_string_value(json_object_get(d, "path"));
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
            return hvm_error(errno, "DVD %d: %s: %s", slot, path, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return hvm_error(EINVAL, "DVD %d: %s: not a regular file", slot, path);
        }
        f->dvd[slot] = fd;
    }
    return 0;
}

static int open_regular(const char *what, const char *path, int flags, int *fd)
{
    struct stat st;
    *fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
    if (*fd < 0)
        return hvm_error(errno, "%s: %s: %s", what, path, strerror(errno));
    if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode))
        return hvm_error(EINVAL, "%s: %s: not a regular file", what, path);
    return 0;
}

static int open_firmware(const json_t *fw, struct qemu_fds *f)
{
    if (!fw)
        return 0;
    const char *code = json_string_value(json_object_get(fw, "code"));
    const char *vars = json_string_value(json_object_get(fw, "vars"));
    int r = open_regular("UEFI firmware", code, O_RDONLY, &f->fw_code);
    if (r == 0)
        r = open_regular("UEFI variable store", vars, O_RDWR, &f->fw_vars);
    if (r == 0)
        r = open_regular("UEFI variable store", vars, O_RDONLY, &f->fw_vars_ro);
    return r;
}

static int listen_socket(struct worker *w, const char *name, int *fd)
{
    char *path = run_path(w, name);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int r = 0;
    if (!path || strlen(path) >= sizeof a.sun_path) {
        free(path);
        return hvm_error(ENAMETOOLONG, "VM folder path too long for a socket");
    }
    strcpy(a.sun_path, path);
    unlink(path);
    *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0077);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(*fd, 8) < 0)
        r = hvm_error(errno, "%s: %s", path, strerror(errno));
    umask(old);
    free(path);
    return r;
}

static int open_qemu_fds(struct worker *w, struct qemu_fds *f)
{
    const json_t *p = w->plan;
    int sv[2];
    qemu_fds_init(f);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return hvm_error(errno, "socketpair: %s", strerror(errno));
    w->qmp.fd = sv[0];
    f->qmp = sv[1];
    int r = listen_socket(w, "console.sock", &f->console);
    char *log = run_path(w, "console.log");
    if (r == 0 && (!log || (f->log = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0))
        r = hvm_error(errno, "%s: %s", log ? log : "console.log", strerror(errno));
    free(log);
    /* (emptied at each boot: only this run's messages tell its boot state) */
    char *fwlog = run_path(w, "firmware.log");
    int trunc = json_is_string(json_object_get(p, "incoming")) ||
                        json_is_true(json_object_get(p, "live_incoming"))
                    ? 0
                    : O_TRUNC;
    if (r == 0 && (!fwlog || (f->fwlog = open(fwlog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | trunc,
                                              0600)) < 0))
        r = hvm_error(errno, "%s: %s", fwlog ? fwlog : "firmware.log", strerror(errno));
    free(fwlog);
    const char *kernel = json_string_value(json_object_get(p, "kernel"));
    const char *initrd = json_string_value(json_object_get(p, "initrd"));
    if (r == 0 && kernel)
        r = f->kernel = confine_file_copy(kernel, "hvm-kernel", w->dir);
    if (r >= 0 && kernel && initrd)
        r = f->initrd = confine_file_copy(initrd, "hvm-initrd", w->dir);
    if (r >= 0)
        r = open_dvds(p, f);
    if (r >= 0)
        r = open_firmware(json_object_get(p, "firmware"), f);
    return r < 0 ? r : 0;
}

/* A tap for every adapter whose plan names a bridge, a port of it, up.
 * Made here, while the worker still has CAP_NET_ADMIN (confine drops it
 * once QEMU runs). */
static int open_taps(struct worker *w)
{
    size_t i;
    json_t *nic, *taps = json_object();
    json_array_foreach(json_object_get(w->plan, "nics"), i, nic) {
        const char *bridge = json_string_value(json_object_get(nic, "bridge"));
        if (!bridge || i >= QEMU_MAX_NICS)
            continue;
        char name[NET_IFNAME_MAX + 1];
        int fd = net_tap_create("hvmt%d", name);
        if (fd < 0)
            return fd;
        w->tap_fd[i] = fd;
        int r = net_link_set_master(name, bridge);
        struct net_guard guard = {json_string_value(json_object_get(nic, "mac")),
                                  json_is_true(json_object_get(nic, "mac_spoofing")),
                                  json_is_true(json_object_get(nic, "dhcp_guard")),
                                  json_is_true(json_object_get(nic, "router_guard")),
                                  (int)json_integer_value(json_object_get(nic, "max_bandwidth"))};
        if (r == 0)
            r = net_guard_apply(name, &guard);
        if (r == 0 && guard.max_mbit > 0)
            r = net_tap_rate_limit(name, guard.max_mbit);
        json_t *pvid = json_object_get(nic, "pvid");
        if (r == 0 && json_is_integer(pvid))
            r = net_port_pvid(name, (int)json_integer_value(pvid));
        json_t *offload = json_object_get(nic, "offload");
        if (r == 0 && json_is_object(offload)) {
            int want[NET_OFFLOADS];
            for (int k = 0; k < NET_OFFLOADS; k++) {
                json_t *v = json_object_get(offload, net_offload_name(k));
                want[k] = json_is_boolean(v) ? json_is_true(v) : -1;
            }
            r = net_offloads_set(name, want);
        }
        if (r == 0)
            r = net_link_set_up(name);
        if (r < 0) {
            json_decref(taps);
            return r;
        }
        wlog("adapter %s: tap %s on bridge %s", json_string_value(json_object_get(nic, "mac")),
             name, bridge);
        json_object_set_new(taps, json_string_value(json_object_get(nic, "mac")),
                            json_string(name));
    }
    /* Which tap is which adapter's, for 'vm set --set-nic --switch' of
     * the running VM (it moves the tap to another bridge). */
    char *rundir = run_path(w, "");
    int r = rundir ? store_json_replace(rundir, "taps.json", taps) : -ENOMEM;
    free(rundir);
    json_decref(taps);
    return r;
}

static void close_taps(struct worker *w)
{
    for (int i = 0; i < QEMU_MAX_NICS; i++) {
        if (w->tap_fd[i] >= 0)
            close(w->tap_fd[i]);
        w->tap_fd[i] = -1;
    }
}

/* Only validated values or fixed text reach an option string; the name,
 * the one free-form text in one, has its commas escaped. */
static void build_args(struct worker *w, const struct qemu_fds *f, struct qemu_args *a)
{
    json_t *p = w->plan;
    const char *accel = json_string_value(json_object_get(p, "accel"));
    char *name = qemu_opt_escape(json_string_value(json_object_get(p, "name")));
    qemu_args_add(a, "qemu-system-x86_64");
    qemu_args_add(a, "-name");
    if (!name)
        a->failed = true;
    qemu_args_add(a, "guest=%s", name ? name : "");
    free(name);
    qemu_args_add(a, "-nodefaults");
    qemu_args_add(a, "-no-user-config");
    /* spawn=deny also covers exec: QEMU never needs to start a program. */
    qemu_args_add(a, "-sandbox");
    qemu_args_add(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    qemu_args_add(a, "-accel");
    qemu_args_add(a, "%s", accel);
    if (strcmp(accel, "kvm") == 0) {
        qemu_args_add(a, "-cpu");
        qemu_args_add(a, "host");
    }
    /* The RAM block's size (see runtime/ramsize.c): a restore's is the
     * saved state's, a boot's the configured memory, padded under TCG. */
    const char *incoming = json_string_value(json_object_get(p, "incoming"));
    bool tcg = strcmp(accel, "tcg") == 0;
    if (!incoming || ramsize_of_state(incoming, &w->ram_bytes) < 0)
        w->ram_bytes = ramsize_for_boot((uint64_t)json_integer_value(json_object_get(p, "memory")), tcg);
    w->precopy_exact = ramsize_precopy_exact(w->ram_bytes, tcg);
    long long kib = (long long)(w->ram_bytes >> 10);
    qemu_args_add(a, "-m");
    qemu_args_add(a, "%lldK", kib);
    /* UEFI (OVMF) in two flash devices: the shared code read-only, the
     * VM's variable store written by the firmware (boot entries). Secure
     * Boot's code only runs on q35 with SMM, its flash writable by SMM
     * code alone. */
    if (f->fw_code >= 0) {
        if (json_is_true(json_object_get(json_object_get(p, "firmware"), "secure_boot"))) {
            qemu_args_add(a, "-machine");
            qemu_args_add(a, "q35,smm=on");
            qemu_args_add(a, "-global");
            qemu_args_add(a, "driver=cfi.pflash01,property=secure,value=on");
        }
        qemu_args_add(a, "-add-fd");
        qemu_args_add(a, "fd=%d,set=20,opaque=uefi-code", f->fw_code);
        qemu_args_add(a, "-add-fd");
        qemu_args_add(a, "fd=%d,set=21,opaque=uefi-vars", f->fw_vars);
        qemu_args_add(a, "-add-fd");
        qemu_args_add(a, "fd=%d,set=21,opaque=uefi-vars-ro", f->fw_vars_ro);
        qemu_args_add(a, "-drive");
        qemu_args_add(a, "if=pflash,unit=0,readonly=on,driver=raw,file.driver=file,"
                         "file.filename=/dev/fdset/20,file.locking=off");
        qemu_args_add(a, "-drive");
        qemu_args_add(a, "if=pflash,unit=1,driver=raw,file.driver=file,"
                         "file.filename=/dev/fdset/21,file.locking=off");
    }
    qemu_args_add(a, "-smp");
    qemu_args_add(a, "%lld", (long long)json_integer_value(json_object_get(p, "cpus")));
    /* A graphical console: VGA, and QEMU's VNC server without a listener
     * of its own; the worker hands it each client of run/vnc.sock
     * (add_client), so QEMU creates no socket file. */
    if (!json_is_false(json_object_get(p, "vga"))) { /* (false: an old memory state) */
        qemu_args_add(a, "-vga");
        qemu_args_add(a, "std");
    }
    qemu_args_add(a, "-display");
    qemu_args_add(a, "none");
    qemu_args_add(a, "-vnc");
    qemu_args_add(a, "none");
    qemu_args_add(a, "-add-fd");
    qemu_args_add(a, "fd=%d,set=1,opaque=console-log", f->log);
    qemu_args_add(a, "-chardev");
    qemu_args_add(a, "socket,id=ser0,fd=%d,server=on,wait=off,logfile=/dev/fdset/1,logappend=on",
                  f->console);
    qemu_args_add(a, "-serial");
    qemu_args_add(a, "chardev:ser0");
    qemu_args_add(a, "-add-fd");
    qemu_args_add(a, "fd=%d,set=2,opaque=firmware-log", f->fwlog);
    qemu_args_add(a, "-chardev");
    qemu_args_add(a, "file,id=fwlog,path=/dev/fdset/2,append=on");
    qemu_args_add(a, "-device");
    qemu_args_add(a, "isa-debugcon,iobase=0x402,chardev=fwlog");
    qemu_args_add(a, "-chardev");
    qemu_args_add(a, "socket,id=qmp,fd=%d", f->qmp);
    qemu_args_add(a, "-mon");
    qemu_args_add(a, "chardev=qmp,mode=control");
    if (w->vhost) {
        /* The device reads and writes guest memory itself: it must be
         * memory the worker can map. */
        qemu_args_add(a, "-object");
        qemu_args_add(a, "memory-backend-memfd,id=ram,size=%lldK,share=on", kib);
        qemu_args_add(a, "-machine");
        qemu_args_add(a, "memory-backend=ram");
    }
    for (int i = 0; i < w->n_drives; i++) {
        struct drive *d = &w->drives[i];
        /* With a boot order, each device says where it stands in it. */
        char boot[32] = "";
        int index = qemu_boot_index(p, "disk", i);
        if (index >= 0)
            snprintf(boot, sizeof boot, ",bootindex=%d", index);
        if (w->vhost) {
            qemu_args_add(a, "-chardev");
            qemu_args_add(a, "socket,id=vu%d,fd=%d", d->slot, d->qemu_fd);
            qemu_args_add(a, "-device");
            qemu_args_add(a, "vhost-user-blk-pci,chardev=vu%d,num-queues=1,queue-size=256%s",
                          d->slot, boot);
            continue;
        }
        if (index >= 0) {
            /* (-drive if=virtio takes no bootindex) */
            qemu_args_add(a, "-drive");
            qemu_args_add(a, "driver=raw,file.driver=nbd,file.server.type=fd,file.server.str=%d,"
                             "if=none,id=disk%d,cache=writeback,discard=unmap", d->qemu_fd, d->slot);
            qemu_args_add(a, "-device");
            qemu_args_add(a, "virtio-blk-pci,drive=disk%d%s", d->slot, boot);
            continue;
        }
        qemu_args_add(a, "-drive");
        qemu_args_add(a, "driver=raw,file.driver=nbd,file.server.type=fd,file.server.str=%d,"
                         "if=virtio,cache=writeback,discard=unmap", d->qemu_fd);
    }
    qemu_args_dvds(a, p, f->dvd);
    size_t i;
    json_t *nic;
    json_array_foreach(json_object_get(p, "nics"), i, nic) {
        const char *mac = json_string_value(json_object_get(nic, "mac"));
        const char *model = json_string_value(json_object_get(nic, "model"));
        const char *device = model && strcmp(model, "e1000e") == 0 ? "e1000e" : "virtio-net-pci";
        if (i < QEMU_MAX_NICS && w->tap_fd[i] >= 0) {
            /* vhost-net comes later, where /dev/vhost-net opens: QEMU 7.2
             * aborts on vhost=on without it. */
            qemu_args_add(a, "-netdev");
            qemu_args_add(a, "tap,id=net%zu,fd=%d", i, w->tap_fd[i]);
            qemu_args_add(a, "-device");
            qemu_args_add(a, "%s,netdev=net%zu,mac=%s", device, i, mac);
            continue;
        }
        /* A user switch's forwards (vm/switch_services.h), checked there. */
        char fwd[1024] = "";
        size_t k, len = 0;
        json_t *f;
        json_array_foreach(json_object_get(nic, "hostfwd"), k, f) {
            const char *proto = json_string_value(json_object_get(f, "protocol"));
            int n = snprintf(fwd + len, sizeof fwd - len, ",hostfwd=%s::%lld-:%lld",
                             proto && strcmp(proto, "udp") == 0 ? "udp" : "tcp",
                             (long long)json_integer_value(json_object_get(f, "host_port")),
                             (long long)json_integer_value(json_object_get(f, "port")));
            if (n < 0 || (size_t)n >= sizeof fwd - len) {
                fwd[len] = 0;
                break;
            }
            len += (size_t)n;
        }
        qemu_args_add(a, "-nic");
        qemu_args_add(a, "user,model=%s,mac=%s%s", device, mac, fwd);
    }
    if (f->kernel >= 0) {
        /* QEMU reads them by name: its own descriptors', which it may open. */
        qemu_args_add(a, "-kernel");
        qemu_args_add(a, "/proc/self/fd/%d", f->kernel);
        if (f->initrd >= 0) {
            qemu_args_add(a, "-initrd");
            qemu_args_add(a, "/proc/self/fd/%d", f->initrd);
        }
        const char *cmdline = json_string_value(json_object_get(p, "cmdline"));
        qemu_args_add(a, "-append");
        qemu_args_add(a, "%s", cmdline ? cmdline : "console=ttyS0");
    }
    if (json_is_string(json_object_get(p, "incoming")) || w->incoming_live) {
        qemu_args_add(a, "-incoming");
        qemu_args_add(a, "defer");
    }
    /* Live: the guest runs here only once the source let go (activate). */
    if (w->incoming_live)
        qemu_args_add(a, "-S");
}

/* In the child: only async-signal-safe calls (the worker has threads). */
static void exec_qemu(struct worker *w, const struct confine_user *user, const struct qemu_fds *f,
                      char **argv, pid_t parent)
{
    int keep[11 + MAX_DRIVES + QEMU_MAX_NICS + QEMU_MAX_DVDS], n = 0;
    keep[n++] = f->qmp;
    keep[n++] = f->console;
    keep[n++] = f->log;
    keep[n++] = f->fwlog;
    if (f->kernel >= 0)
        keep[n++] = f->kernel;
    if (f->initrd >= 0)
        keep[n++] = f->initrd;
    for (int i = 0; i < w->n_drives; i++) /* QEMU keeps its ends of the drives */
        keep[n++] = w->drives[i].qemu_fd;
    for (int i = 0; i < QEMU_MAX_NICS; i++) /* and its taps */
        if (w->tap_fd[i] >= 0)
            keep[n++] = w->tap_fd[i];
    for (int i = 0; i < QEMU_MAX_DVDS; i++)
        if (f->dvd[i] >= 0)
            keep[n++] = f->dvd[i];
    if (f->fw_code >= 0) {
        keep[n++] = f->fw_code;
        keep[n++] = f->fw_vars;
        keep[n++] = f->fw_vars_ro;
    }
    signal(SIGPIPE, SIG_DFL);
    int r = confine_child(user, keep, n);
    if (r < 0) {
        static const char msg[] = "cannot confine QEMU before it starts\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        _exit(126);
    }
    /* QEMU dies with its worker: nothing may run without the process
     * that owns its disks. */
    if (getppid() != parent)
        _exit(127);
    execvp(argv[0], argv);
    static const char msg[] = "cannot run qemu-system-x86_64\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
}

static int spawn_qemu(struct worker *w)
{
    json_t *p = w->plan;
    /* Defence in depth: vm.json was validated when it was opened. */
    int r = qemu_plan_check(p);
    const char *accel = json_string_value(json_object_get(p, "accel"));
    struct confine_user user;
    if (r == 0)
        r = confine_user_lookup(strcmp(accel, "kvm") == 0, &user);
    struct qemu_fds f;
    qemu_fds_init(&f);
    if (r == 0)
        r = open_qemu_fds(w, &f);
    if (r == 0)
        r = open_taps(w);
    struct qemu_args a;
    qemu_args_init(&a);
    if (r == 0) {
        build_args(w, &f, &a);
        r = qemu_args_finish(&a);
    }
    if (r < 0) {
        qemu_fds_close(&f);
        close_taps(w);
        qemu_args_free(&a);
        return r;
    }
    /* A line in the console log between two runs, for humans and tests. */
    char when[32];
    time_t t = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    dprintf(f.log, "\n[hvm] %s %s (%s)\n", json_is_string(json_object_get(p, "incoming")) ?
            "resuming" : "starting", when, accel);
    pid_t parent = getpid();
    w->qemu = fork();
    if (w->qemu == 0)
        exec_qemu(w, &user, &f, a.argv, parent);
    if (w->qemu < 0)
        r = hvm_error(errno, "fork: %s", strerror(errno));
    /* Only QEMU may hold its ends: when it dies, the connections end. */
    for (int i = 0; i < w->n_drives; i++) {
        close(w->drives[i].qemu_fd);
        w->drives[i].qemu_fd = -1;
    }
    close_taps(w);
    qemu_fds_close(&f);
    qemu_args_free(&a);
    return r;
}

/* Polls a migration every period_us, at most polls times, until its status
 * is want ("completed", or "pre-switchover" with that capability on); any
 * other end (failed, cancelled, or completed when waiting for something
 * else) is an error naming what. *last (if given) gets the last
 * query-migrate reply, for its downtime. */
static int wait_migration_until(struct worker *w, const char *want, const char *what,
                                useconds_t period_us, int polls, json_t **last)
{
    for (int i = 0; i < polls; i++) {
        json_t *st;
        int r = qmp_execute(&w->qmp, "query-migrate", NULL, &st);
        if (r < 0)
            return r;
        const char *status = json_string_value(json_object_get(st, "status"));
        bool done = status && strcmp(status, want) == 0;
        bool failed = !status || strcmp(status, "failed") == 0 ||
                      strcmp(status, "cancelled") == 0 ||
                      (!done && strcmp(status, "completed") == 0);
        char err[256] = "";
        if (failed && json_string_value(json_object_get(st, "error-desc")))
            snprintf(err, sizeof err, ": %s", json_string_value(json_object_get(st, "error-desc")));
        if (done && last)
            *last = st;
        else
            json_decref(st);
        if (done)
            return 0;
        if (failed)
            return hvm_error(EIO, "%s failed%s", what, err);
        usleep(period_us);
    }
    return hvm_error(ETIMEDOUT, "%s did not finish", what);
}

/* Waits for a migration (to or from a file) to finish: up to 5 minutes, for
 * a large guest's first save under TCG syncs QEMU's dirty bitmap page by
 * page (runtime/ramsize.c), which took over 30 s for 2 GiB on a loaded host. */
static int wait_migration(struct worker *w, const char *what)
{
    return wait_migration_until(w, "completed", what, 5000, 60000, NULL);
}

/* Makes a memory state written to FILE.saving durable under its name. Not
 * part of the guest's pause: only the commit that names it must wait. */
static int save_memory_commit(const char *file)
{
    char *tmp = NULL;
    int r = 0;
    if (asprintf(&tmp, "%s.saving", file) < 0)
        return hvm_error(ENOMEM, "out of memory");
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        r = hvm_error(errno, "%s: %s", tmp, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (r == 0)
        r = path_rename_durable(tmp, file);
    if (r < 0)
        unlink(tmp);
    free(tmp);
    return r;
}

/* Saves the (stopped) guest's memory to FILE.saving (see save_memory_commit).
 * QEMU writes into the file itself, through a descriptor we pass it: no
 * pipe and no cat in between, which matters while the guest is paused. */
static int save_memory(struct worker *w, const char *file)
{
    char *tmp = NULL;
    int r, fd = -1;
    if (asprintf(&tmp, "%s.saving", file) < 0)
        return hvm_error(ENOMEM, "out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = hvm_error(errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    /* (A pre-copy checkpoint may have left its capability on.) */
    qmp_execute(&w->qmp, "migrate-set-capabilities",
                json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability",
                          "pause-before-switchover", "state", 0), NULL);
    /* The default bandwidth limit throttles even a save to a file. */
    qmp_execute(&w->qmp, "migrate-set-parameters",
                json_pack("{s:I}", "max-bandwidth", (json_int_t)100 << 30), NULL);
    r = qmp_execute_fd(&w->qmp, "getfd", json_pack("{s:s}", "fdname", "hvm-save"), fd, NULL);
    if (r == 0 && (r = qmp_execute(&w->qmp, "migrate", json_pack("{s:s}", "uri", "fd:hvm-save"),
                                   NULL)) < 0)
        qmp_execute(&w->qmp, "closefd", json_pack("{s:s}", "fdname", "hvm-save"), NULL);
    if (r == 0)
        r = wait_migration(w, "saving the memory state");
out:
    if (fd >= 0)
        close(fd);
    if (r < 0)
        unlink(tmp);
    free(tmp);
    return r;
}

static int restore_memory(struct worker *w, const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hvm_error(errno, "%s: %s", file, strerror(errno));
    int r = qmp_execute_fd(&w->qmp, "getfd", json_pack("{s:s}", "fdname", "hvm-restore"), fd, NULL);
    close(fd); /* QEMU has its own copy now */
    if (r == 0)
        r = qmp_execute(&w->qmp, "migrate-incoming", json_pack("{s:s}", "uri", "fd:hvm-restore"),
                        NULL);
    if (r < 0)
        return r;
    if ((r = wait_migration(w, "restoring the memory state")) < 0)
        return r;
    /* A "cont" that arrives while the incoming state is still being
     * applied is overridden by the saved run state (paused): wait until
     * QEMU reports the VM paused, then continue it. */
    for (int i = 0; i < 1000; i++) {
        json_t *st;
        if ((r = qmp_execute(&w->qmp, "query-status", NULL, &st)) < 0)
            return r;
        const char *status = json_string_value(json_object_get(st, "status"));
        bool ready = status && strcmp(status, "inmigrate") != 0;
        json_decref(st);
        if (ready)
            break;
        usleep(5000);
    }
    return qmp_execute(&w->qmp, "cont", NULL, NULL);
}

/* The online checkpoint: the guest is stopped for as short as possible. */
static struct drive *drive_in_slot(struct worker *w, int slot)
{
    for (int k = 0; k < w->n_drives; k++)
        if (w->drives[k].slot == slot)
            return &w->drives[k];
    return NULL;
}

/* A file a request names must lie in the VM's folder: the CLI names only
 * such files, and the worker acts on no other (the control socket is
 * root's alone; this is defence in depth). The file itself may not exist
 * yet: its folder is resolved. */
static bool inside_vm(const struct worker *w, const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (!slash || path[0] != '/' || strcmp(slash, "/.") == 0 || strcmp(slash, "/..") == 0 || !slash[1])
        return false;
    char *parent = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    char *real = parent ? realpath(parent, NULL) : NULL, *dir = realpath(w->dir, NULL);
    size_t n = dir ? strlen(dir) : 0;
    bool inside = real && dir && strncmp(real, dir, n) == 0 && (real[n] == '/' || !real[n]);
    free(parent);
    free(real);
    free(dir);
    return inside;
}

static bool request_files_inside(const struct worker *w, json_t *req)
{
    if (!inside_vm(w, json_string_value(json_object_get(req, "memory"))))
        return false;
    size_t i;
    json_t *leaf;
    json_array_foreach(json_object_get(req, "leaves"), i, leaf)
        if (!inside_vm(w, json_string_value(json_object_get(leaf, "file"))))
            return false;
    return true;
}

/* Opens each leaf the request names and puts it under its drive's server,
 * flushing the one it replaces; the guest is stopped. OLD (n_drives
 * entries, may be NULL) gets the paths replaced, for a switch back. */
static int switch_leaves(struct worker *w, json_t *leaves, char **old_paths)
{
    size_t i;
    json_t *leaf;
    json_array_foreach(leaves, i, leaf) {
        struct drive *d = drive_in_slot(w, (int)json_integer_value(json_object_get(leaf, "slot")));
        const char *file = json_string_value(json_object_get(leaf, "file"));
        struct disk *fresh, *old;
        int r;
        /* Opened after the flush: the child's view of the old leaf is
         * read from the file. */
        if ((r = disk_open(file, 0, &fresh)) < 0)
            return r;
        if ((r = nbd_server_replace_disk(d->server, fresh, &old)) < 0) {
            disk_close(fresh);
            return r;
        }
        disk_flush(old);
        disk_close(old);
        d->disk = fresh;
        if (old_paths && i < (size_t)w->n_drives)
            old_paths[i] = d->path;
        else
            free(d->path);
        d->path = strdup(file);
    }
    return 0;
}

/* The old way: the guest is stopped while QEMU writes all its memory. */
static json_t *checkpoint_stopped(struct worker *w, json_t *req)
{
    int r;
    double t0 = now_ms();
    r = qmp_execute(&w->qmp, "stop", NULL, NULL);
    for (int i = 0; r == 0 && i < w->n_drives; i++)
        r = disk_flush(w->drives[i].disk);
    if (r == 0)
        r = save_memory(w, json_string_value(json_object_get(req, "memory")));
    if (r == 0)
        r = switch_leaves(w, json_object_get(req, "leaves"), NULL);
    record_drives(w);
    int c = w->paused ? 0 : qmp_execute(&w->qmp, "cont", NULL, NULL);
    double pause = now_ms() - t0;
    if (r == 0)
        r = save_memory_commit(json_string_value(json_object_get(req, "memory")));
    if (r < 0 || c < 0)
        return json_pack("{s:b, s:s}", "ok", 0, "error", hvm_error_message());
    return json_pack("{s:b, s:f, s:s}", "ok", 1, "pause_ms", pause, "memory_mode", "stop");
}

/* Pre-copy: QEMU writes the memory while the guest runs, then stops it for
 * the last dirty pages and waits (pause-before-switchover). At that point
 * every drive's leaf is switched, so the disks and the memory state are of
 * the same moment; then QEMU writes the rest and the guest goes on. The
 * guest's pause is QEMU's downtime plus the switch, not the whole memory. */
static json_t *checkpoint_precopy(struct worker *w, json_t *req)
{
    const char *mem = json_string_value(json_object_get(req, "memory"));
    json_t *leaves = json_object_get(req, "leaves");
    char *tmp = NULL, *old_paths[VM_MAX_DRIVES] = {0};
    int r, fd = -1, c = 0;
    bool switched = false, started = false;
    double downtime = 0, t_done = 0, pause = 0;
    json_t *st = NULL;
    if (asprintf(&tmp, "%s.saving", mem) < 0)
        return json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = hvm_error(errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    r = qmp_execute(&w->qmp, "migrate-set-capabilities",
                    json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability",
                              "pause-before-switchover", "state", 1), NULL);
    /* No bandwidth limit (a file); a short downtime target: QEMU goes on
     * copying until what is left fits in it. */
    if (r == 0)
        r = qmp_execute(&w->qmp, "migrate-set-parameters",
                        json_pack("{s:I, s:I}", "max-bandwidth", (json_int_t)100 << 30,
                                  "downtime-limit", (json_int_t)20), NULL);
    if (r == 0)
        r = qmp_execute_fd(&w->qmp, "getfd", json_pack("{s:s}", "fdname", "hvm-save"), fd, NULL);
    if (r == 0 && (r = qmp_execute(&w->qmp, "migrate", json_pack("{s:s}", "uri", "fd:hvm-save"),
                                   NULL)) < 0)
        qmp_execute(&w->qmp, "closefd", json_pack("{s:s}", "fdname", "hvm-save"), NULL);
    started = r == 0;
    /* Up to the switchover: the guest runs. */
    if (r == 0)
        r = wait_migration_until(w, "pre-switchover", "saving the memory state before its switchover",
                                 1000, 120000, NULL);
    /* The guest is stopped: the disks' moment is now. */
    for (int i = 0; r == 0 && i < w->n_drives; i++)
        r = disk_flush(w->drives[i].disk);
    if (r == 0) {
        r = switch_leaves(w, leaves, old_paths);
        switched = true;
    }
    if (r == 0)
        r = qmp_execute(&w->qmp, "migrate-continue", json_pack("{s:s}", "state", "pre-switchover"), NULL);
    if (r == 0 && (r = wait_migration_until(w, "completed", "saving the memory state at its switchover",
                                            1000, 120000, &st)) == 0) {
        t_done = now_ms();
        downtime = json_number_value(json_object_get(st, "downtime"));
        json_decref(st);
    }
    if (r < 0 && started) {
        qmp_execute(&w->qmp, "migrate_cancel", NULL, NULL);
        /* (QEMU may have resumed a failed migration's guest: stop it
         * again before the old leaves come back.) */
        if (switched)
            qmp_execute(&w->qmp, "stop", NULL, NULL);
    }
    if (r < 0 && switched) {
        /* Back to the leaves of before: the checkpoint does not exist. */
        json_t *back = json_array();
        for (int i = 0; i < w->n_drives && i < VM_MAX_DRIVES; i++)
            if (old_paths[i])
                json_array_append_new(back, json_pack("{s:O, s:s}", "slot",
                                      json_object_get(json_array_get(leaves, i), "slot"),
                                      "file", old_paths[i]));
        switch_leaves(w, back, NULL);
        json_decref(back);
    }
    record_drives(w);
    double t_cont = now_ms();
    c = w->paused ? 0 : qmp_execute(&w->qmp, "cont", NULL, NULL);
    pause = downtime + (r == 0 ? now_ms() - t_done : now_ms() - t_cont);
out:
    if (fd >= 0)
        close(fd);
    if (r < 0)
        unlink(tmp);
    free(tmp);
    for (int i = 0; i < VM_MAX_DRIVES; i++)
        free(old_paths[i]);
    if (r == 0)
        r = save_memory_commit(mem);
    if (r < 0 || c < 0)
        return json_pack("{s:b, s:s}", "ok", 0, "error", hvm_error_message());
    return json_pack("{s:b, s:f, s:s}", "ok", 1, "pause_ms", pause, "memory_mode", "precopy");
}

static json_t *do_checkpoint(struct worker *w, json_t *req)
{
    size_t i;
    json_t *leaf;
    int r = 0;
    if (!request_files_inside(w, req))
        return json_pack("{s:b, s:s}", "ok", 0, "error", "the request names a file outside the VM's folder");
    /* The new leaves first, while the guest still runs: a child only needs
     * its parent's identity, which writes do not change. */
    json_array_foreach(json_object_get(req, "leaves"), i, leaf) {
        struct drive *d = drive_in_slot(w, (int)json_integer_value(json_object_get(leaf, "slot")));
        const char *file = json_string_value(json_object_get(leaf, "file"));
        if (!d)
            r = hvm_error(ENOENT, "no drive %lld", (long long)json_integer_value(json_object_get(leaf, "slot")));
        else if (access(file, F_OK) != 0)
            r = disk_diff_create(d->path, file, false);
        if (r < 0)
            return json_pack("{s:b, s:s}", "ok", 0, "error", hvm_error_message());
    }
    /* Pre-copy unless asked to stop the guest, or unless this QEMU run
     * would lose guest writes to it (TCG with a RAM block QEMU 7.2 syncs
     * in its fast path: a guest resumed from a state saved before RAM was
     * padded, see runtime/ramsize.c); then the guest is stopped. */
    const char *mode = json_string_value(json_object_get(req, "memory_mode"));
    if (mode && strcmp(mode, "stop") == 0)
        return checkpoint_stopped(w, req);
    if (!w->precopy_exact) {
        if (mode && strcmp(mode, "precopy") == 0)
            return json_pack("{s:b, s:s}", "ok", 0, "error",
                             "a pre-copy of this VM's memory would lose guest writes (TCG, RAM "
                             "not padded: it resumed from an older state); restart it, or use "
                             "--memory-mode stop");
        return checkpoint_stopped(w, req);
    }
    return checkpoint_precopy(w, req);
}

/* QMP screendump in PNG into a file QEMU never names: run/screendump.tmp,
 * opened twice (QEMU's write-only descriptor through an fd set, ours to
 * read) and unlinked at once. The CLI gets our descriptor with the reply
 * and writes the image where the user asked. */
static json_t *do_screendump(struct worker *w)
{
    char *tmp = run_path(w, "screendump.tmp");
    int rfd = -1, wfd = -1, r = 0;
    if (!tmp)
        return json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory");
    unlink(tmp);
    rfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (rfd >= 0)
        wfd = open(tmp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rfd < 0 || wfd < 0)
        r = hvm_error(errno, "%s: %s", tmp, strerror(errno));
    unlink(tmp);
    free(tmp);
    json_t *added = NULL;
    if (r == 0)
        r = qmp_execute_fd(&w->qmp, "add-fd", json_pack("{s:i, s:s}", "fdset-id", 90, "opaque",
                                                         "screendump"), wfd, &added);
    if (wfd >= 0)
        close(wfd);
    if (r == 0) {
        r = qmp_execute(&w->qmp, "screendump", json_pack("{s:s, s:s}", "filename", "/dev/fdset/90",
                                                         "format", "png"), NULL);
        qmp_execute(&w->qmp, "remove-fd", json_pack("{s:i}", "fdset-id", 90), NULL);
    }
    json_decref(added);
    struct stat st;
    if (r == 0 && (fstat(rfd, &st) < 0 || st.st_size < 8))
        r = hvm_error(EIO, "QEMU wrote no screen image");
    if (r < 0) {
        if (rfd >= 0)
            close(rfd);
        return json_pack("{s:b, s:s}", "ok", 0, "error", hvm_error_message());
    }
    w->reply_fd = rfd;
    return json_pack("{s:b, s:I}", "ok", 1, "size", (json_int_t)st.st_size);
}

/* A client of run/vnc.sock: QEMU gets the connection (getfd) and serves it
 * (add_client); the worker keeps no copy. */
static void serve_vnc(struct worker *w)
{
    int c = accept4(w->vnc_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    char name[32];
    snprintf(name, sizeof name, "vnc%d", w->vnc_clients++);
    int r = qmp_execute_fd(&w->qmp, "getfd", json_pack("{s:s}", "fdname", name), c, NULL);
    close(c);
    if (r == 0 && (r = qmp_execute(&w->qmp, "add_client", json_pack("{s:s, s:s, s:b}", "protocol",
                                   "vnc", "fdname", name, "skipauth", 1), NULL)) < 0)
        qmp_execute(&w->qmp, "closefd", json_pack("{s:s}", "fdname", name), NULL);
    if (r < 0)
        wlog("VNC client: %s", hvm_error_message());
}

/* Key presses: each chord one QMP send-key (QEMU queues the events, with
 * its hold time between press and release, in order). Only key codes of
 * QEMU's shape reach it. */
static int send_keys(struct worker *w, const json_t *chords)
{
    if (!json_is_array(chords) || json_array_size(chords) == 0 || json_array_size(chords) > 1024)
        return hvm_error(EINVAL, "send-keys: expected 1-1024 chords");
    size_t i, k;
    json_t *chord, *key;
    json_array_foreach(chords, i, chord) {
        if (!json_is_array(chord) || json_array_size(chord) == 0 || json_array_size(chord) > 8)
            return hvm_error(EINVAL, "send-keys: a chord is 1-8 keys");
        json_array_foreach(chord, k, key) {
            const char *s = json_string_value(key);
            size_t n = s ? strlen(s) : 0;
            bool ok = n > 0 && n <= 24;
            for (size_t c = 0; ok && c < n; c++)
                ok = (s[c] >= 'a' && s[c] <= 'z') || (s[c] >= '0' && s[c] <= '9') || s[c] == '_';
            if (!ok)
                return hvm_error(EINVAL, "send-keys: not a key code");
        }
    }
    json_array_foreach(chords, i, chord) {
        json_t *keys = json_array();
        json_array_foreach(chord, k, key)
            json_array_append_new(keys, json_pack("{s:s, s:O}", "type", "qcode", "data", key));
        int r = qmp_execute(&w->qmp, "send-key", json_pack("{s:o}", "keys", keys), NULL);
        if (r < 0)
            return r;
    }
    return 0;
}

#include "runtime/worker_migrate.c"

static json_t *handle(struct worker *w, json_t *req)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    int r = 0;
    if (!op)
        return json_pack("{s:b, s:s}", "ok", 0, "error", "no op");
    if (strcmp(op, "status") == 0) {
        return json_pack("{s:b, s:s, s:s, s:I, s:i, s:i}", "ok", 1, "state",
                         w->paused ? "Paused" : "Running", "accel",
                         json_string_value(json_object_get(w->plan, "accel")), "uptime",
                         (json_int_t)(time(NULL) - w->started), "worker", (int)getpid(), "qemu",
                         (int)w->qemu);
    } else if (strcmp(op, "powerdown") == 0) {
        r = qmp_execute(&w->qmp, "system_powerdown", NULL, NULL);
    } else if (strcmp(op, "quit") == 0) {
        w->quitting = true;
        r = qmp_execute(&w->qmp, "quit", NULL, NULL);
        if (r < 0 && w->qemu > 0)
            kill(w->qemu, SIGKILL), r = 0;
    } else if (strcmp(op, "pause") == 0) {
        if ((r = qmp_execute(&w->qmp, "stop", NULL, NULL)) == 0)
            w->paused = true;
    } else if (strcmp(op, "resume") == 0) {
        if ((r = qmp_execute(&w->qmp, "cont", NULL, NULL)) == 0)
            w->paused = false;
    } else if (strcmp(op, "save") == 0) {
        const char *file = json_string_value(json_object_get(req, "memory"));
        if (!request_files_inside(w, req) || !json_is_string(json_object_get(req, "relative")))
            return json_pack("{s:b, s:s}", "ok", 0, "error", "the request names a file outside the VM's folder");
        r = qmp_execute(&w->qmp, "stop", NULL, NULL);
        if (r == 0)
            r = save_memory(w, file);
        if (r == 0)
            r = save_memory_commit(file);
        if (r == 0) {
            w->saved_memory = strdup(json_string_value(json_object_get(req, "relative")));
            w->quitting = true;
            qmp_execute(&w->qmp, "quit", NULL, NULL);
        } else if (!w->paused) {
            qmp_execute(&w->qmp, "cont", NULL, NULL);
        }
    } else if (strcmp(op, "checkpoint") == 0) {
        return do_checkpoint(w, req);
    } else if (strcmp(op, "screendump") == 0) {
        return do_screendump(w);
    } else if (strncmp(op, "migrate-", 8) == 0) {
        return migrate_handle(w, op, req);
    } else if (strcmp(op, "send-keys") == 0) {
        r = send_keys(w, json_object_get(req, "chords"));
    } else {
        return json_pack("{s:b, s:s}", "ok", 0, "error", "unknown op");
    }
    if (r < 0)
        return json_pack("{s:b, s:s}", "ok", 0, "error", hvm_error_message());
    return json_pack("{s:b}", "ok", 1);
}

static void serve_control(struct worker *w)
{
    int c = accept4(w->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    struct timeval tv = {5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[8192];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len))
            break;
    }
    json_t *req = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *reply = req ? handle(w, req) : json_pack("{s:b, s:s}", "ok", 0, "error", "bad request");
    char *text = json_dumps(reply, JSON_COMPACT);
    if (text && w->reply_fd >= 0) {
        /* The reply's first byte carries the descriptor. */
        char ctl[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {text, strlen(text)};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &w->reply_fd, sizeof(int));
        ssize_t ignored = sendmsg(c, &m, MSG_NOSIGNAL);
        ignored = write(c, "\n", 1);
        (void)ignored;
    } else if (text) {
        ssize_t ignored = write(c, text, strlen(text));
        ignored = write(c, "\n", 1);
        (void)ignored;
    }
    if (w->reply_fd >= 0)
        close(w->reply_fd);
    w->reply_fd = -1;
    free(text);
    json_decref(req);
    json_decref(reply);
    close(c);
}

static int listen_control(struct worker *w)
{
    int r = listen_socket(w, "ctl.sock", &w->ctl_fd);
    if (r == 0)
        r = listen_socket(w, "vnc.sock", &w->vnc_fd);
    /* The graphical console is root's (or the store owner's) alone. */
    char *vnc = run_path(w, "vnc.sock");
    if (r == 0 && (!vnc || chmod(vnc, 0600) < 0))
        r = hvm_error(errno, "%s: %s", vnc ? vnc : "vnc.sock", strerror(errno));
    free(vnc);
    return r;
}

/* After QEMU is gone: disks flushed and closed, vm.json says Off or Saved. */
static void finish(struct worker *w, int status)
{
    /* The control socket goes first: a command holding the VM's lock may be
     * asking us something, and we are about to wait for that lock. Closed,
     * the socket answers it with an error instead of silence. */
    char *ctl = run_path(w, "ctl.sock"), *console = run_path(w, "console.sock");
    char *vnc = run_path(w, "vnc.sock");
    if (vnc)
        unlink(vnc);
    free(vnc);
    if (w->vnc_fd >= 0)
        close(w->vnc_fd);
    w->vnc_fd = -1;
    if (ctl)
        unlink(ctl);
    if (console)
        unlink(console);
    free(ctl);
    free(console);
    if (w->ctl_fd >= 0)
        close(w->ctl_fd);
    w->ctl_fd = -1;
    close_drives(w);
    qmp_close(&w->qmp);
    struct vm *vm;
    if (!w->owner) {
        /* The VM lives on with another worker, or never came here. */
        wlog("QEMU exited (status %d); the VM is not this worker's to record", status);
        return;
    }
    if (vm_open_dir(w->dir, true, &vm) == 0) {
        json_t *next = json_deep_copy(vm->doc);
        json_t *remove = json_array();
        const char *old = json_string_value(json_object_get(next, "saved_memory"));
        if (old && (!w->saved_memory || strcmp(old, w->saved_memory) != 0))
            json_array_append_new(remove, json_string(old));
        json_object_set_new(next, "state", json_string(w->saved_memory ? "Saved" : "Off"));
        json_object_set_new(next, "saved_memory",
                            w->saved_memory ? json_string(w->saved_memory) : json_null());
        json_object_del(next, "runtime");
        /* Leaves switched by online checkpoints were committed by the CLI. */
        if (vm_commit(vm, "stopped", next, NULL, remove) < 0)
            wlog("could not record the new state: %s", hvm_error_message());
        vm_close(vm);
    } else {
        wlog("could not open the VM to record its state: %s", hvm_error_message());
    }
    wlog("QEMU exited (status %d); VM is %s", status, w->saved_memory ? "Saved" : "Off");
}

void runtime_worker_main(const char *vm_dir, json_t *plan, int ready_fd)
{
    const char *io = json_string_value(json_object_get(plan, "disk_io"));
    struct worker w = {.dir = strdup(vm_dir), .plan = plan, .ctl_fd = -1, .vnc_fd = -1, .reply_fd = -1, .started = time(NULL),
                       .vhost = !io || strcmp(io, "nbd") != 0, .qmp = {.fd = -1}};
    w.incoming_live = json_is_true(json_object_get(plan, "live_incoming"));
    w.run = w.incoming_live ? "run.incoming" : "run";
    w.owner = !w.incoming_live;
    w.controller = (pid_t)json_integer_value(json_object_get(plan, "controller"));
    int r;
    for (int i = 0; i < QEMU_MAX_NICS; i++)
        w.tap_fd[i] = -1;
    signal(SIGPIPE, SIG_IGN);
    char *lock = run_path(&w, "lock");
    w.lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock);
    if (w.lock_fd < 0 || flock(w.lock_fd, LOCK_EX | LOCK_NB) < 0) {
        r = hvm_error(EBUSY, "the VM already has a worker");
        goto failed;
    }
    if ((r = open_drives(&w)) < 0 || (r = listen_control(&w)) < 0 || (r = spawn_qemu(&w)) < 0)
        goto failed;
    /* From here on the worker needs no privilege it did not use so far. */
    if ((r = confine_worker(w.dir)) < 0 || (r = qmp_attach(&w.qmp, w.qmp.fd, 10000)) < 0)
        goto failed;
    const char *incoming = json_string_value(json_object_get(plan, "incoming"));
    if (incoming && (r = restore_memory(&w, incoming)) < 0)
        goto failed;
    wlog("QEMU %d running (%s)", (int)w.qemu, json_string_value(json_object_get(plan, "accel")));
    ssize_t ignored = write(ready_fd, "OK", 2);
    (void)ignored;
    close(ready_fd);

    int status = 0;
    for (;;) {
        pid_t done = waitpid(w.qemu, &status, WNOHANG);
        if (done == w.qemu)
            break;
        migrate_watch_controller(&w);
        struct pollfd p[3] = {{w.ctl_fd, POLLIN, 0}, {w.qmp.fd, POLLIN, 0}, {w.vnc_fd, POLLIN, 0}};
        int n = poll(p, 3, 200);
        if (n > 0 && (p[0].revents & POLLIN))
            serve_control(&w);
        if (n > 0 && (p[2].revents & POLLIN) && w.qmp.fd >= 0)
            serve_vnc(&w);
        if (n > 0 && (p[1].revents & (POLLIN | POLLHUP))) {
            /* Drain events (SHUTDOWN, STOP, RESUME...); EOF means QEMU is going. */
            if (qmp_poll_events(&w.qmp) == -EPIPE) {
                close(w.qmp.fd);
                w.qmp.fd = -1;
            }
        }
    }
    finish(&w, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    _exit(0);

failed:
    {
        const char *m = hvm_error_message();
        ssize_t ign = write(ready_fd, m, strlen(m));
        (void)ign;
        if (w.qemu > 0) {
            kill(w.qemu, SIGKILL);
            waitpid(w.qemu, NULL, 0);
        }
        close_drives(&w);
        _exit(1);
    }
}
