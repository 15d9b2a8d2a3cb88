/* What reaches QEMU's command line: an argument vector that grows as
 * needed, and the checks that keep every value from a VM's configuration
 * to its type, so that none can add options (vm.json may come from a
 * bundle or from shared storage: it is validated on load too, and here
 * again where it would act). */
#ifndef HVM_RUNTIME_QEMU_H
#define HVM_RUNTIME_QEMU_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* QEMU's i440fx machine has 32 PCI slots on its bus; the host bridge and
 * the PIIX3 take two. Every drive and network adapter is one device. */
#define QEMU_PCI_SLOTS 28 /* and the VGA adapter, and the DVDs' virtio-scsi controller */
#define QEMU_MAX_DRIVES 16
/* vm.json's limit (vm/validate.c). */
#define QEMU_MAX_NICS 8
/* DVD drives: see qemu_dvd_bus. */
#define QEMU_MAX_DVDS 4

struct qemu_args {
    char **argv; /* NULL-terminated once qemu_args_finish succeeded */
    size_t n, cap;
    bool failed; /* an allocation failed: qemu_args_finish reports it */
};

void qemu_args_init(struct qemu_args *a);
/* Appends one argument (printf-style). A value from a configuration goes
 * through an option string only escaped (qemu_opt_escape) or validated. */
void qemu_args_add(struct qemu_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NULL-terminates; 0 or -ENOMEM. */
int qemu_args_finish(struct qemu_args *a);
void qemu_args_free(struct qemu_args *a);

/* VALUE made safe inside a QEMU option string (key=VALUE,...): every ','
 * doubled, which QEMU's option parser reads as one literal comma. NULL
 * when out of memory. */
char *qemu_opt_escape(const char *value);

/* Six hex pairs separated by ':' (52:54:00:12:34:56), nothing else. */
bool qemu_mac_valid(const char *mac);

/* The bootindex of the index-th device of a kind ("dvd", "disk", "net")
 * under the plan's boot_order, or -1 when the order does not name the
 * kind (or there is no order: QEMU's default). */
int qemu_boot_index(const json_t *plan, const char *kind, int index);

/* How the plan's DVDs reach the guest:
 *   "ide"   BIOS: IDE CD-ROMs on the PIIX3's two channels (slot N is bus
 *           ide.N/2, unit N%2), what every old guest knows;
 *   "scsi"  UEFI on the i440fx machine: CD-ROMs on a virtio-scsi
 *           controller (target N). OVMF leaves the PIIX3's IDE decode
 *           bits (config 0x40/0x42 bit 15) clear, which SeaBIOS sets, and
 *           Linux's ata_piix then takes both channels for disabled: no
 *           /dev/sr0. OVMF boots from virtio-scsi, Linux has virtio_scsi;
 *   "ahci"  Secure Boot (q35): ICH9's AHCI ports ide.0-ide.5, which
 *           Windows drives without extra drivers. */
const char *qemu_dvd_bus(const json_t *plan);

/* The -add-fd/-drive/-device arguments of the plan's DVDs, their ISOs
 * being the read-only descriptors fd[slot] (-1: no DVD in that slot),
 * each with its bootindex under the boot order. */
void qemu_args_dvds(struct qemu_args *a, const json_t *plan, const int fd[QEMU_MAX_DVDS]);

/* Checks every field of a worker's plan (see build_plan in runtime.c) that
 * reaches QEMU: the name (the store's rule), accelerator, CPUs, memory,
 * drives (slots, absolute paths), network adapters (MACs, how many fit),
 * kernel/initrd (absolute paths), the kernel command line, the disk I/O
 * mode, DVDs (slots, absolute paths), the boot order and the incoming
 * memory state. 0 or -EINVAL with one clear line
 * naming the VM and the field. */
int qemu_plan_check(const json_t *plan);

#endif
