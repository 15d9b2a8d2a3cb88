/* Running VMs. One worker process per running VM (like Hyper-V's vmwp):
 * it owns the VM's disk layers, serves each drive to QEMU over NBD on a
 * Unix socket in <vm>/run/, starts QEMU and drives it over QMP, and answers
 * the CLI on <vm>/run/ctl.sock (one JSON request per connection). QEMU
 * dies with its worker (PR_SET_PDEATHSIG); the worker holds <vm>/run/lock
 * while alive, so a dead worker is noticed by the next command (vm.c).
 * QEMU runs confined (confine.h) and is handed descriptors, never a path
 * in the store; what reaches its command line is checked (qemu.h). */
#ifndef HVM_RUNTIME_RUNTIME_H
#define HVM_RUNTIME_RUNTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "vm/vm.h"

/* Starts the VM (Off: boot; Saved: resume its memory state). accel is
 * "kvm", "tcg" or "auto" (KVM only where a probe proved it runs a guest).
 * Returns once QEMU runs; the VM lock must be held by the caller. */
int runtime_start(struct vm *vm, const char *accel);

/* One request to the worker: {"op": "..."} -> reply object. */
int runtime_request(struct vm *vm, json_t *request, json_t **reply);
/* The same; a descriptor the worker sends with its reply (screendump: the
 * image) is returned in *fd (-1 when none; the caller closes it). */
int runtime_request_fd(struct vm *vm, json_t *request, json_t **reply, int *fd);
/* What the firmware of the VM's current run says about booting, in out:
 * "no bootable device" (SeaBIOS), "no bootable device (OVMF started its
 * shell)", or where it boots from ("Hard Disk", "DVD/CD", "ROM" for a
 * direct kernel boot, OVMF's name of the boot option). 0, or -ENOENT with
 * out empty when the firmware said nothing (yet). boot_status.c. */
int runtime_boot_status(const struct vm *vm, char *out, size_t size);
/* The same to a worker whose sockets are in run_dir ("run", or
 * "run.incoming": a live migration's destination before its switchover). */
int runtime_request_run(struct vm *vm, const char *run_dir, json_t *request, json_t **reply,
                        int *fd);
/* A live migration's destination: a worker for the VM (the source still
 * runs it: vm.json is not changed) with QEMU -S -incoming defer and its
 * drives deferred, its sockets in run.incoming/; it dies with controller
 * until activated (see worker_migrate.c). */
int runtime_start_incoming(struct vm *vm, const char *accel, pid_t controller);
/* Is the VM's worker alive? */
bool runtime_alive(struct vm *vm);
/* Waits for the worker to exit (after stop/turn-off/save) up to timeout_ms. */
int runtime_wait_exit(struct vm *vm, int timeout_ms);

/* An online checkpoint: pause, flush, save memory into the checkpoint,
 * switch every drive's leaf inside the worker, resume. *pause_ms gets the
 * pause the guest saw. */
int runtime_checkpoint_take(struct vm *vm, const char *name, double *pause_ms, char **id_out);
/* The same with the way memory is saved: "precopy" (copied while the
 * guest runs, paused only for the last pages), "stop" (paused while all of
 * it is written), NULL: pre-copy where it is exact (see ramsize.h). */
int runtime_checkpoint_take_mode(struct vm *vm, const char *name, const char *memory_mode,
                                 double *pause_ms, char **id_out);

/* Decides the accelerator: "kvm" or "tcg" from kvm|tcg|auto. The auto probe
 * (QEMU with KVM running a tiny guest under a timeout) is cached per host
 * in <store>/accel-probe.json. */
int runtime_accel_choose(const char *store_root, const char *wanted, char out[8]);

/* The worker's entry point (in the forked child): never returns. */
void runtime_worker_main(const char *vm_dir, json_t *plan, int ready_fd) __attribute__((noreturn));

#endif
