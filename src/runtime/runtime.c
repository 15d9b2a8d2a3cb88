/* The CLI's side of the runtime: starting a worker, talking to it, and the
 * online checkpoint, which is a journalled VM change whose disk step the
 * worker performs. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/confine.h"
#include "runtime/qemu.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/filelock.h"
#include "vm/checkpoint.h"
#include "vm/firmware.h"
#include "vm/switch.h"

static int connect_ctl(struct vm *vm, const char *run_dir)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char rel[64];
    snprintf(rel, sizeof rel, "%s/ctl.sock", run_dir);
    char *path = vm_path(vm, rel);
    if (!path || strlen(path) >= sizeof a.sun_path) {
        free(path);
        return hvm_error(ENAMETOOLONG, "VM folder path too long for a socket");
    }
    strcpy(a.sun_path, path);
    free(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return hvm_error(e, "VM '%s' is not running (no worker answers)", vm->name);
    }
    return fd;
}

int runtime_request(struct vm *vm, json_t *request, json_t **reply)
{
    return runtime_request_fd(vm, request, reply, NULL);
}

int runtime_request_fd(struct vm *vm, json_t *request, json_t **reply, int *fd_out)
{
    return runtime_request_run(vm, "run", request, reply, fd_out);
}

int runtime_request_run(struct vm *vm, const char *run_dir, json_t *request, json_t **reply,
                        int *fd_out)
{
    if (fd_out)
        *fd_out = -1;
    int fd = connect_ctl(vm, run_dir);
    if (fd < 0) {
        json_decref(request);
        return fd;
    }
    char *text = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    int r = 0;
    if (!text || write(fd, text, strlen(text)) < 0 || write(fd, "\n", 1) < 0)
        r = hvm_error(EPIPE, "VM '%s': the worker did not take the request", vm->name);
    free(text);
    char buf[8192];
    size_t len = 0;
    while (r == 0 && len < sizeof buf) {
        /* recvmsg: the worker may send a descriptor with the reply. */
        char ctl[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {buf + len, sizeof buf - len};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
        ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
        if (n <= 0)
            break;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                int got;
                memcpy(&got, CMSG_DATA(cm), sizeof got);
                if (fd_out && *fd_out < 0)
                    *fd_out = got;
                else
                    close(got);
            }
        len += (size_t)n;
    }
    close(fd);
    if (r < 0)
        return r;
    json_t *rep = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, NULL);
    if (!rep && fd_out && *fd_out >= 0)
        close(*fd_out), *fd_out = -1;
    if (!rep)
        return hvm_error(EPROTO, "VM '%s': no answer from the worker", vm->name);
    if (!json_is_true(json_object_get(rep, "ok"))) {
        r = hvm_error(EIO, "VM '%s': %s", vm->name, json_string_value(json_object_get(rep, "error")));
        json_decref(rep);
        if (fd_out && *fd_out >= 0)
            close(*fd_out), *fd_out = -1;
        return r;
    }
    if (reply)
        *reply = rep;
    else
        json_decref(rep);
    return 0;
}

bool runtime_alive(struct vm *vm)
{
    char *lock = vm_path(vm, "run/lock");
    bool alive = path_flock_held(lock);
    free(lock);
    return alive;
}

int runtime_wait_exit(struct vm *vm, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (!runtime_alive(vm))
            return 0;
        usleep(50000);
    }
    return -ETIMEDOUT;
}

/* The VM's adapters for the worker: each one on a bridge switch (private,
 * internal) names its bridge, which the worker puts a tap on; the others
 * (a user switch, or a store that does not list its switches) keep QEMU's
 * user-mode networking. NULL with the error recorded. */
static json_t *plan_nics(struct vm *vm)
{
    json_t *nics = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(vm_config(vm), "nics"), i, n) {
        json_t *nic = json_deep_copy(n);
        json_array_append_new(nics, nic);
        const char *name = json_string_value(json_object_get(n, "switch"));
        int r = 0;
        json_t *sw = vm->store && name ? store_switch_get(vm->store, name, &r) : NULL;
        if (r == -ENOENT) {
            hvm_error_clear();
            continue;
        }
        if (r < 0) {
            json_decref(nics);
            return NULL;
        }
        const char *type = json_string_value(json_object_get(sw, "type"));
        if (type && (strcmp(type, "private") == 0 || strcmp(type, "internal") == 0 ||
                     strcmp(type, "external") == 0)) {
            char bridge[NET_IFNAME_MAX + 1];
            store_switch_bridge_name(name, bridge);
            json_object_set_new(nic, "bridge", json_string(bridge));
            /* The switch's offload settings, for the worker to give the tap. */
            if (json_is_object(json_object_get(sw, "offload")))
                json_object_set(nic, "offload", json_object_get(sw, "offload"));
        } else if (type && strcmp(type, "user") == 0) {
            /* The switch's forwards to this VM: QEMU's hostfwd on the adapter. */
            json_t *fw = json_array();
            size_t k;
            json_t *f;
            json_array_foreach(json_object_get(sw, "forwards"), k, f) {
                const char *who = json_string_value(json_object_get(f, "vm"));
                if (who && strcmp(who, vm->name) == 0)
                    json_array_append(fw, f);
            }
            if (json_array_size(fw))
                json_object_set(nic, "hostfwd", fw);
            json_decref(fw);
        }
        json_decref(sw);
    }
    return nics;
}

/* Brings up the bridge of every switch the plan's adapters use (the same
 * switch once): a VM can start without a 'hvm switch up' first. */
static int plan_switches_up(struct vm *vm, json_t *plan)
{
    json_t *done = json_object();
    size_t i;
    json_t *n;
    int r = 0;
    json_array_foreach(json_object_get(plan, "nics"), i, n) {
        const char *name = json_string_value(json_object_get(n, "switch"));
        if (!json_object_get(n, "bridge") || json_object_get(done, name))
            continue;
        if ((r = store_switch_up(vm->store, name)) < 0)
            break;
        json_object_set_new(done, name, json_true());
    }
    /* Adapters on a VLAN: the VLAN's bridge, or the switch's with a PVID. */
    json_array_foreach(json_object_get(plan, "nics"), i, n) {
        json_t *vlan = json_object_get(n, "vlan");
        if (r < 0 || !json_object_get(n, "bridge") || !json_is_integer(vlan))
            continue;
        char bridge[NET_IFNAME_MAX + 1];
        int pvid;
        r = store_switch_vlan_attach(vm->store, json_string_value(json_object_get(n, "switch")),
                                     (int)json_integer_value(vlan), bridge, &pvid);
        if (r < 0)
            break;
        json_object_set_new(n, "bridge", json_string(bridge));
        if (pvid)
            json_object_set_new(n, "pvid", json_integer(pvid));
    }
    json_decref(done);
    return r;
}

static bool state_has_vga(const char *file)
{
    static const char needle[] = "vga.vram";
    char buf[65536];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf, 0) : -1;
    if (fd >= 0)
        close(fd);
    if (n < 0)
        return true; /* unreadable: the worker reports it */
    return memmem(buf, (size_t)n, needle, sizeof needle - 1) != NULL;
}

static json_t *build_plan(struct vm *vm, const char *accel)
{
    json_t *nics = plan_nics(vm);
    if (!nics)
        return NULL;
    json_t *cfg = vm_config(vm);
    json_t *drives = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(cfg, "drives"), i, d) {
        char *p = vm_path(vm, json_string_value(json_object_get(d, "file")));
        char *abs = p ? realpath(p, NULL) : NULL;
        json_array_append_new(drives, json_pack("{s:O, s:s}", "slot", json_object_get(d, "slot"),
                                                "path", abs ? abs : (p ? p : "")));
        free(p);
        free(abs);
    }
    json_t *plan = json_pack("{s:s, s:O, s:O, s:s, s:o, s:O}", "name", vm->name, "cpus",
                             json_object_get(cfg, "cpus"), "memory", json_object_get(cfg, "memory"),
                             "accel", accel, "drives", drives, "nics", nics);
    json_decref(nics);
    json_object_set_new(plan, "disk_io", json_string(vm_disk_io(cfg)));
    const char *keys[] = {"kernel", "initrd", "cmdline"};
    for (int k = 0; k < 3; k++) {
        json_t *v = json_object_get(json_object_get(cfg, "boot"), keys[k]);
        if (json_is_string(v)) {
            /* (relative: a file inside the VM folder, from a bundle's boot/) */
            char *in = k < 2 ? vm_path(vm, json_string_value(v)) : NULL;
            char *abs = in ? realpath(in, NULL) : NULL;
            free(in);
            json_object_set_new(plan, keys[k], json_string(abs ? abs : json_string_value(v)));
            free(abs);
        }
    }
    json_t *dvds = json_array();
    json_array_foreach(json_object_get(cfg, "dvds"), i, d)
        json_array_append_new(dvds, json_pack("{s:O, s:O}", "slot", json_object_get(d, "slot"),
                                              "path", json_object_get(d, "file")));
    json_object_set_new(plan, "dvds", dvds);
    if (json_object_get(cfg, "boot_order"))
        json_object_set(plan, "boot_order", json_object_get(cfg, "boot_order"));
    /* UEFI: OVMF's code (shared, read-only) and the VM's variable store. */
    const char *vars = vm_firmware_vars(cfg);
    if (vars) {
        char *p = vm_path(vm, vars);
        char *abs = p ? realpath(p, NULL) : NULL;
        bool secure = vm_firmware_secure_boot(cfg);
        json_object_set_new(plan, "firmware", json_pack("{s:s, s:s, s:b}", "code",
                                                        vm_firmware_code_path(secure), "vars",
                                                        abs ? abs : (p ? p : ""), "secure_boot", secure));
        free(p);
        free(abs);
    }
    const char *mem = json_string_value(json_object_get(vm->doc, "saved_memory"));
    if (strcmp(vm_state(vm), "Saved") == 0 && mem) {
        char *p = vm_path(vm, mem);
        json_object_set_new(plan, "incoming", json_string(p));
        /* A memory state saved before VMs had a VGA adapter restores only
         * into the same devices: no VGA (its video RAM, "vga.vram", is
         * named in the RAM block list at the start of the stream). */
        if (p && !state_has_vga(p))
            json_object_set_new(plan, "vga", json_false());
        free(p);
    }
    return plan;
}

/* Forks the worker (detached twice) with plan and waits for its word that
 * QEMU runs. */
static int spawn_worker(struct vm *vm, json_t *plan)
{
    int r = 0;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return hvm_error(errno, "pipe: %s", strerror(errno));
    char *log = vm_path(vm, "run/worker.log");
    pid_t child = fork();
    if (child == 0) {
        /* Detach twice so the worker is nobody's zombie; drop the CLI's VM
         * lock (the worker takes <vm>/run/lock instead). */
        close(pipefd[0]);
        close(vm->lock_fd);
        setsid();
        if (fork() != 0)
            _exit(0);
        int devnull = open("/dev/null", O_RDWR);
        int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        dup2(devnull, 0);
        dup2(logfd >= 0 ? logfd : devnull, 1);
        dup2(logfd >= 0 ? logfd : devnull, 2);
        if (chdir("/") < 0)
            _exit(1);
        runtime_worker_main(vm->dir, plan, pipefd[1]);
    }
    free(log);
    close(pipefd[1]);
    if (child < 0) {
        close(pipefd[0]);
        r = hvm_error(errno, "fork: %s", strerror(errno));
    } else {
        waitpid(child, NULL, 0);
        char msg[1024];
        ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
        close(pipefd[0]);
        msg[n > 0 ? n : 0] = 0;
        if (n != 2 || strncmp(msg, "OK", 2) != 0)
            r = hvm_error(EIO, "VM '%s' did not start: %s", vm->name,
                          n > 0 ? msg : "the worker died (see run/worker.log)");
    }
    return r;
}

int runtime_start(struct vm *vm, const char *accel_wanted)
{
    const char *state = vm_state(vm);
    if (strcmp(state, "Off") != 0 && strcmp(state, "Saved") != 0)
        return hvm_error(EBUSY, "VM '%s' is already %s", vm->name, state);
    if (json_array_size(json_object_get(vm_config(vm), "drives")) == 0 &&
        !json_object_get(json_object_get(vm_config(vm), "boot"), "kernel"))
        return hvm_error(EINVAL, "VM '%s' has nothing to boot: give it a disk or a kernel "
                         "('hvm vm set %s --kernel F')", vm->name, vm->name);
    char accel[8];
    int r = runtime_accel_choose(vm->store ? vm->store->root : vm->dir, accel_wanted, accel);
    if (r < 0)
        return r;
    char *run = vm_path(vm, "run");
    r = run ? path_mkdirs(run) : hvm_error(ENOMEM, "out of memory");
    if (r == 0)
        chmod(run, 0700);
    free(run);
    if (r < 0)
        return r;
    /* An ISO is referenced, not copied: it may be gone since vm set. */
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(vm_config(vm), "dvds"), i, d) {
        const char *iso = json_string_value(json_object_get(d, "file"));
        struct stat st;
        if (!iso || stat(iso, &st) < 0 || !S_ISREG(st.st_mode))
            return hvm_error(ENOENT, "VM '%s': the ISO of DVD %lld, %s: %s", vm->name,
                             (long long)json_integer_value(json_object_get(d, "slot")), iso ? iso : "?",
                             iso && stat(iso, &st) < 0 ? strerror(errno) : "not a regular file");
    }
    json_t *plan = build_plan(vm, accel);
    if (!plan)
        return -EINVAL;
    /* Refused before anything changes: what would reach QEMU's command
     * line, and the user QEMU runs as (the worker checks both again). */
    struct confine_user user;
    if ((r = qemu_plan_check(plan)) < 0 ||
        (r = confine_user_lookup(strcmp(accel, "kvm") == 0, &user)) < 0 ||
        (r = plan_switches_up(vm, plan)) < 0) {
        json_decref(plan);
        return r;
    }
    bool resuming = json_is_string(json_object_get(plan, "incoming"));
    /* Running from now on; the worker records Off or Saved when QEMU exits. */
    json_t *next = json_deep_copy(vm->doc);
    json_object_set_new(next, "state", json_string("Running"));
    json_object_set_new(next, "runtime", json_pack("{s:s, s:I, s:b}", "accel", accel, "started",
                                                   (json_int_t)time(NULL), "resume_pending",
                                                   resuming));
    if ((r = vm_commit(vm, "start", next, NULL, NULL)) < 0) {
        json_decref(plan);
        return r;
    }
    r = spawn_worker(vm, plan);
    json_decref(plan);
    if (r < 0) {
        char keep[1100];
        snprintf(keep, sizeof keep, "%s", hvm_error_message());
        json_t *back = json_deep_copy(vm->doc);
        json_object_set_new(back, "state", json_string(resuming ? "Saved" : "Off"));
        json_object_del(back, "runtime");
        vm_commit(vm, "start-failed", back, NULL, NULL);
        r = hvm_error(EIO, "%s", keep);
    } else if (resuming) {
        /* The guest runs on from its memory state, and its disks move on:
         * the state is spent. Were it kept (resume_pending), a worker that
         * dies later would leave the VM Saved, and the next start would
         * resume old memory over newer disks (a failover after a node's
         * death does exactly that). */
        json_t *next = json_deep_copy(vm->doc), *remove = json_array();
        json_t *mem = json_object_get(next, "saved_memory");
        if (json_is_string(mem))
            json_array_append(remove, mem);
        json_object_set_new(next, "saved_memory", json_null());
        json_object_set_new(json_object_get(next, "runtime"), "resume_pending", json_false());
        if (vm_commit(vm, "resumed", next, NULL, remove) < 0)
            r = hvm_error(EIO, "VM '%s' runs, but its spent memory state could not be dropped: %s",
                          vm->name, hvm_error_message());
    }
    return r;
}

int runtime_start_incoming(struct vm *vm, const char *accel, pid_t controller)
{
    if (strcmp(vm_disk_io(vm_config(vm)), "vhost-user") != 0)
        return hvm_error(ENOTSUP, "VM '%s': live migration needs disk I/O vhost-user ('hvm vm set "
                         "%s --disk-io vhost-user' while it is off)", vm->name, vm->name);
    char *run = vm_path(vm, "run.incoming");
    int r = run ? path_mkdirs(run) : hvm_error(ENOMEM, "out of memory");
    if (r == 0)
        chmod(run, 0700);
    free(run);
    json_t *plan = r == 0 ? build_plan(vm, accel) : NULL;
    if (!plan)
        return r < 0 ? r : -EINVAL;
    json_object_del(plan, "incoming");
    json_object_set_new(plan, "live_incoming", json_true());
    json_object_set_new(plan, "controller", json_integer(controller));
    struct confine_user user;
    if ((r = qemu_plan_check(plan)) < 0 ||
        (r = confine_user_lookup(strcmp(accel, "kvm") == 0, &user)) < 0 ||
        (r = plan_switches_up(vm, plan)) < 0) {
        json_decref(plan);
        return r;
    }
    r = spawn_worker(vm, plan);
    json_decref(plan);
    return r;
}

int runtime_checkpoint_take(struct vm *vm, const char *name, double *pause_ms, char **id_out)
{
    return runtime_checkpoint_take_mode(vm, name, NULL, pause_ms, id_out);
}

int runtime_checkpoint_take_mode(struct vm *vm, const char *name, const char *memory_mode,
                                 double *pause_ms, char **id_out)
{
    char id[37], *mem = NULL;
    json_t *steps = json_array();
    /* If this command dies after the worker switched, recovery finds the
     * leaves made and commits; if before, it makes them (unused by the
     * running guest until the next start) and commits as well. */
    json_t *next = vm_checkpoint_next(vm, name, steps, id);
    if (!next || asprintf(&mem, "checkpoints/%s.state", id) < 0) {
        json_decref(next);
        json_decref(steps);
        return hvm_error(ENOMEM, "out of memory");
    }
    json_object_set_new(vm_checkpoint_by_id(next, id), "memory", json_string(mem));
    /* The new leaves for the worker to switch to, and the same paths as the
     * journal's guard. */
    json_t *leaves = json_array(), *guard = json_pack("{s:[]}", "leaves");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(json_object_get(next, "config"), "drives"), i, d) {
        char *abs = vm_path(vm, json_string_value(json_object_get(d, "file")));
        json_array_append_new(leaves, json_pack("{s:O, s:s}", "slot", json_object_get(d, "slot"),
                                                "file", abs));
        json_array_append_new(json_object_get(guard, "leaves"), json_string(abs));
        free(abs);
    }
    char *mem_abs = vm_path(vm, mem);
    free(mem);
    /* The journal first: whatever happens next, recovery can tell from the
     * worker's record whether the leaves were switched. */
    json_t *journal;
    int r = vm_journal_begin(vm, "take-online", next, steps, NULL, guard, &journal);
    if (r < 0) {
        json_decref(leaves);
        free(mem_abs);
        return r;
    }
    json_t *reply = NULL;
    /* Pre-copy by default (memory copied while the guest runs, a short
     * pause); "stop" pauses the guest while its whole memory is written.
     * HVM_MEMORY_MODE picks one for commands without the option (tests). */
    const char *mode = memory_mode ? memory_mode : getenv("HVM_MEMORY_MODE");
    json_t *req = json_pack("{s:s, s:s, s:o}", "op", "checkpoint", "memory", mem_abs, "leaves", leaves);
    if (mode && (strcmp(mode, "stop") == 0 || strcmp(mode, "precopy") == 0))
        json_object_set_new(req, "memory_mode", json_string(mode));
    r = runtime_request(vm, req, &reply);
    free(mem_abs);
    if (r < 0) {
        vm_journal_abandon(vm, journal);
        return r;
    }
    double pause = json_real_value(json_object_get(reply, "pause_ms"));
    if (pause_ms)
        *pause_ms = pause;
    /* How the memory was saved, and the guest's pause, for checkpoint
     * list/show (the journal holds next: it commits these too). */
    json_t *cp = vm_checkpoint_by_id(next, id);
    const char *done = json_string_value(json_object_get(reply, "memory_mode"));
    if (cp && done) {
        json_object_set_new(cp, "memory_mode", json_string(done));
        json_object_set_new(cp, "pause_ms", json_integer(pause > 0 ? (json_int_t)(pause + 0.5) : 0));
    }
    json_decref(reply);
    r = vm_journal_commit(vm, journal);
    if (r == 0 && id_out)
        *id_out = strdup(id);
    return r;
}

/* ---- accelerator ---- */

/* A 512-byte boot sector that prints "OK" on the first serial port and
 * powers off is not enough to prove KVM runs an ordinary guest (our hosts'
 * paravirtual KVM runs it but fails Linux); QEMU with -cpu host has to come
 * up and run it, which is where those hosts fail. */
static int probe_kvm(bool *ok)
{
    *ok = false;
    /* The probe runs as the guests' QEMU will (see confine.h): KVM that
     * user cannot open is no KVM for hvm. */
    struct confine_user user;
    if (access("/dev/kvm", R_OK | W_OK) != 0 || confine_user_lookup(true, &user) < 0)
        return 0;
    char dir[] = "/tmp/hvm-kvm-probe.XXXXXX";
    if (!mkdtemp(dir))
        return 0;
    char img[PATH_MAX], out[PATH_MAX];
    snprintf(img, sizeof img, "%s/boot.img", dir);
    snprintf(out, sizeof out, "%s/serial.txt", dir);
    static const uint8_t code[] = {
        0xBA, 0xF8, 0x03,       /* mov dx, 0x3f8 */
        0xB0, 'O', 0xEE,        /* mov al, 'O'; out dx, al */
        0xB0, 'K', 0xEE,        /* mov al, 'K'; out dx, al */
        0xB0, '\n', 0xEE,       /* mov al, '\n'; out dx, al */
        0xF4, 0xEB, 0xFD,       /* hlt; jmp $-1 */
    };
    uint8_t sector[512] = {0};
    memcpy(sector, code, sizeof code);
    sector[510] = 0x55;
    sector[511] = 0xAA;
    int fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, sector, sizeof sector);
        (void)w;
        close(fd);
    }
    /* Opened here, handed over: the folder is closed to QEMU's user. The
     * disk's set holds a read-only and a read-write descriptor: QEMU's
     * file driver opens the image both ways. */
    int fds[3] = {open(img, O_RDONLY | O_CLOEXEC), open(img, O_RDWR | O_CLOEXEC),
                  open(out, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)};
    char sets[3][64];
    for (int i = 0; i < 3; i++)
        snprintf(sets[i], sizeof sets[i], "fd=%d,set=%d", fds[i], i < 2 ? 1 : 2);
    pid_t pid = fds[0] < 0 || fds[1] < 0 || fds[2] < 0 ? -1 : fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (confine_child(&user, fds, 3) < 0)
            _exit(126);
        execlp("qemu-system-x86_64", "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host",
               "-m", "64", "-display", "none", "-nodefaults", "-sandbox",
               "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
               "-add-fd", sets[0], "-add-fd", sets[1], "-add-fd", sets[2], "-serial",
               "file:/dev/fdset/2", "-drive", "file=/dev/fdset/1,format=raw", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Never a hang: a few seconds at most, then it is killed. */
    for (int i = 0; i < 100 && pid > 0; i++) {
        char buf[16] = "";
        int f = open(out, O_RDONLY);
        if (f >= 0) {
            ssize_t n = read(f, buf, sizeof buf - 1);
            close(f);
            if (n >= 2 && strncmp(buf, "OK", 2) == 0) {
                *ok = true;
                break;
            }
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid = 0;
            break;
        }
        usleep(50000);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    path_remove_tree(dir);
    return 0;
}

int runtime_accel_choose(const char *store_root, const char *wanted, char out[8])
{
    if (!wanted || strcmp(wanted, "auto") == 0) {
        char *cache = path_join(store_root, "accel-probe.json");
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        json_t *c = cache ? json_load_file(cache, 0, NULL) : NULL;
        bool ok;
        if (c && strcmp(json_string_value(json_object_get(c, "host")) ?: "", host) == 0) {
            ok = json_is_true(json_object_get(c, "kvm"));
        } else {
            probe_kvm(&ok);
            json_t *rec = json_pack("{s:s, s:b, s:I}", "host", host, "kvm", ok, "probed",
                                    (json_int_t)time(NULL));
            char *text = json_dumps(rec, JSON_INDENT(2));
            if (cache && text)
                file_replace(cache, text, strlen(text));
            free(text);
            json_decref(rec);
        }
        json_decref(c);
        free(cache);
        snprintf(out, 8, "%s", ok ? "kvm" : "tcg");
        return 0;
    }
    if (strcmp(wanted, "kvm") != 0 && strcmp(wanted, "tcg") != 0)
        return hvm_error(EINVAL, "--accel must be kvm, tcg or auto");
    snprintf(out, 8, "%s", wanted);
    return 0;
}
