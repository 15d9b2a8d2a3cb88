/* The command table of hvm (see table.h): every noun, verb, argument and
 * option, with the help the user reads in --help, hvm(1), hvm-NOUN(1) and
 * the bash completion. */
#include <stddef.h>

#include "cli/cli.h"
#include "cli/cluster_cmd.h"
#include "cli/table.h"
#include "cli/vm_common.h"

#define ARGS(...) ((const struct cli_positional[]){__VA_ARGS__, {NULL, 0, false}})
#define OPTS(...) ((const struct cli_option[]){__VA_ARGS__, {NULL, 0, 0, NULL, NULL, 0}})

/* Options many verbs share. */
#define OPT_STORE                                                                          \
    {"store", 0, CLI_DIR, "DIR",                                                           \
     "the store (default: $HVM_STORE, else /var/lib/hvm as root, ~/.local/share/hvm)", 0}
#define OPT_JSON {"json", 0, CLI_FLAG, NULL, "machine-readable output", 0}
#define OPT_NBD_ENV                                                                        \
    "\n\nLimits (environment, see docs/nbd.md): HVM_NBD_HANDSHAKE_TIMEOUT (seconds, "      \
    "default 10), HVM_NBD_IDLE_TIMEOUT (seconds, default 0: none), HVM_NBD_MAX_CLIENTS "   \
    "(default and most 16)."

const char cli_general_text[] =
    "Every verb takes --help; inspection verbs take --json. Exit status: 0 success, 1 "
    "check found problems, 2 error (one line naming the file and the problem). Sizes take "
    "binary suffixes: 512M, 20G, 2T. The store of the VM nouns is --store DIR, else "
    "$HVM_STORE, else /var/lib/hvm (root) or ~/.local/share/hvm.";

static const struct cli_verb vhd_verbs[] = {
    {"create", cmd_vhd_create, "create a fixed or dynamic disk",
     ARGS({"FILE", CLI_FILE, false}),
     OPTS({"size", 's', CLI_SIZE, "SIZE", "virtual size (K, M, G, T suffixes: 512M, 20G, 2T)",
           CLI_REQUIRED},
          {"type", 't', CLI_ENUM, "dynamic|fixed",
           "dynamic grows as data is written (default); fixed reserves all space, the footer "
           "follows the data", 0},
          {"block-size", 0, CLI_SIZE, "SIZE",
           "block size of a dynamic disk (default 2M, a power of two)", 0}),
     "Creates a new VHD file FILE."},
    {"diff", cmd_vhd_diff, "create a differencing child of a disk",
     ARGS({"PARENT", CLI_FILE, false}, {"CHILD", CLI_FILE, false}),
     OPTS({"no-protect", 0, CLI_FLAG, NULL, "do not mark PARENT read-only", 0}),
     "Creates CHILD, a differencing disk that reads what it does not hold from PARENT. "
     "PARENT is then marked read-only on disk (chmod a-w), because any write to it would "
     "silently corrupt its children; --no-protect skips that."},
    {"info", cmd_vhd_info, "show a disk's format, size, identity and chain",
     ARGS({"FILE", CLI_FILE, false}),
     OPTS({"chain", 'c', CLI_FLAG, NULL,
           "every layer down to the base (the parents must be found)", 0},
          OPT_JSON),
     "Shows the disk's type, virtual size, bytes allocated, block size, unique id, "
     "creator, and for a differencing disk its parent id, name and locators. A VHDX also shows its sector sizes, GUIDs, parent locator and "
     "log state. An image of another format (qcow2, VMDK, VDI, QED) is "
     "named, with the size its header claims and how to convert it."},
    {"check", cmd_vhd_check, "verify a disk's structure and its chain",
     ARGS({"FILE", CLI_FILE, false}), OPTS(OPT_JSON),
     "Verifies both footers, checksums, the header, every BAT entry (inside the file, no "
     "two blocks overlapping), the parent locators and, for a differencing disk, every "
     "link of its chain (parent found, same unique id and size); for a VHDX its headers, "
     "region table, metadata, BAT layout and log. Leaked space from an "
     "interrupted write is reported, not an error.\n\n"
     "Exit status: 0 clean, 1 problems found, 2 unreadable."},
    {"repair", cmd_vhd_repair, "fix what check found that can be fixed safely",
     ARGS({"FILE", CLI_FILE, false}), NULL,
     "Fixes what check found that can be fixed without choosing which data to lose: a "
     "damaged footer from its copy (or the copy from the footer), and leaked space (blocks "
     "are moved into holes and the file is truncated)."},
    {"convert", cmd_vhd_convert, "copy a disk or chain into a new raw/fixed/dynamic disk",
     ARGS({"SRC", CLI_FILE, false}, {"DST", CLI_FILE, false}),
     OPTS({"type", 't', CLI_ENUM, "raw|fixed|dynamic", "the format of DST (default: dynamic)",
           0},
          {"block-size", 0, CLI_SIZE, "SIZE", "block size of a dynamic DST (default 2M)", 0},
          {"from-format", 0, CLI_ENUM, "auto|qcow2|qcow|vmdk|vdi|qed|raw|vhdx",
           "read SRC as this format (auto: the one its magic names; raw: its bytes as they "
           "are)", 0}),
     "Writes DST from SRC (a raw file or any VHD, a differencing chain flattened). Blocks "
     "that read as zeros stay unallocated in a dynamic result and holes in a raw one. DST "
     "is created complete or not at all.\n\n"
     "An image of another format (qcow2, qcow, VMDK, VDI, QED, recognised by its magic) is "
     "refused unless --from-format says how to read it. With auto or its format, qemu-img "
     "(qemu-utils) reads it and writes only its data: into the new VHD through hvm's NBD "
     "server on a socket under $TMPDIR, or straight into a raw DST. A qcow2 backing chain "
     "is flattened; a backing file, data file or VMDK extent outside the image's folder "
     "is refused (qemu-img would read it with hvm's rights). A VHDX (fixed, dynamic or "
     "differencing) is read by hvm itself, its log replayed in memory."},
    {"merge", cmd_vhd_merge, "merge a differencing disk into its parent",
     ARGS({"CHILD", CLI_FILE, false}),
     OPTS({"force", 'f', CLI_FLAG, NULL, "merge into a parent protected read-only", 0}),
     "Merges a differencing disk's data into its parent (like Merge-VHD) and removes "
     "CHILD. The parent's content changes, so it gets a new unique id: any other child of "
     "it is then reported as broken instead of reading wrong data. A parent protected "
     "read-only (by 'hvm vhd diff') may have other children, so it is refused unless "
     "--force. A registered base that other VMs use is refused even with --force."},
    {"rebase", cmd_vhd_rebase, "re-point a child onto an ancestor, or make it standalone",
     ARGS({"CHILD", CLI_FILE, false}),
     OPTS({"onto", 0, CLI_FILE, "ANCESTOR", "the disk further down CHILD's chain to point at",
           0},
          {"standalone", 0, CLI_FLAG, NULL, "copy everything: CHILD becomes a dynamic disk",
           0}),
     "Copies into CHILD the sectors it reads from the layers between it and ANCESTOR (a "
     "disk further down its chain), then points it at ANCESTOR; with --standalone copies "
     "everything and makes it a dynamic disk. Give exactly one of --onto and --standalone. "
     "CHILD reads the same at every moment, so an interruption loses nothing."},
    {"set-parent", cmd_vhd_set_parent, "reconnect a child to a moved parent",
     ARGS({"CHILD", CLI_FILE, false}, {"PARENT", CLI_FILE, false}),
     OPTS({"ignore-id-mismatch", 0, CLI_FLAG, NULL,
           "accept a parent with another unique id (a copy known to hold the same data)", 0}),
     "Reconnects CHILD to PARENT after the parent was moved or renamed (like Set-VHD "
     "-ParentPath). PARENT must have the unique id and size CHILD expects; "
     "--ignore-id-mismatch accepts another id. The size must always match."},
    {"compact", cmd_vhd_compact, "release blocks that read as zeros",
     ARGS({"FILE", CLI_FILE, false}), NULL,
     "Releases the blocks of a dynamic or differencing disk that read as zeros (in a "
     "differencing disk only where the parent reads zeros too), moves the last blocks into "
     "the holes and shrinks the file."},
    {"resize", cmd_vhd_resize, "grow a fixed or dynamic disk",
     ARGS({"FILE", CLI_FILE, false}),
     OPTS({"size", 's', CLI_SIZE, "SIZE", "the new virtual size", CLI_REQUIRED},
          {"force", 'f', CLI_FLAG, NULL, "resize a disk protected as a parent", 0}),
     "Grows a fixed or dynamic disk to SIZE (shrinking is refused). The disk gets a new "
     "unique id. A disk protected as the parent of differencing disks is refused unless "
     "--force (its children would no longer match it)."},
    {"serve", cmd_vhd_serve, "serve a disk (a whole chain) over NBD on a Unix socket",
     ARGS({"FILE", CLI_FILE, false}),
     OPTS({"socket", 0, CLI_FILE, "PATH", "where to listen", CLI_REQUIRED},
          {"read-only", 'r', CLI_FLAG, NULL, "open FILE read-only and refuse writes", 0},
          {"raw", 0, CLI_FLAG, NULL,
           "serve FILE as raw bytes (needed for a file that is not a VHD)", 0}),
     "Serves FILE over NBD on the Unix socket PATH (created with mode 0600; a stale socket "
     "file is replaced) until SIGTERM or SIGINT, then flushes and closes the disk. A "
     "differencing disk is served with its whole parent chain; writes go to FILE only. "
     "Clients: qemu, qemu-img, qemu-io, nbdinfo, nbdcopy, e.g. nbd+unix:///?socket=PATH."
     OPT_NBD_ENV},
    {"bench", cmd_vhd_bench, "measure in-process read/write speed",
     ARGS({"FILE", CLI_FILE, false}),
     OPTS({"write", 0, CLI_FLAG, NULL, "write instead of read: FILE is modified", 0},
          {"pattern", 0, CLI_ENUM, "rand|seq",
           "rand: offsets drawn at random, aligned to SIZE (default); seq: OFF, OFF+STEP, ... "
           "wrapping at the end of the disk", 0},
          {"size", 0, CLI_SIZE, "SIZE", "bytes per request (default 4K)", 0},
          {"count", 0, CLI_TEXT, "N", "number of requests (default 75000, as qemu-img bench)",
           0},
          {"seconds", 0, CLI_TEXT, "S", "run for S seconds instead of a fixed count", 0},
          {"offset", 0, CLI_SIZE, "OFF",
           "first offset (seq) or start of the range (rand); default 0", 0},
          {"step", 0, CLI_SIZE, "SIZE",
           "seq: distance between requests (default SIZE); the same offsets as 'qemu-img "
           "bench -S SIZE' (implies seq)", 0},
          {"seed", 0, CLI_TEXT, "N", "random seed (default 1): the same seed, the same offsets",
           0},
          {"fill", 0, CLI_TEXT, "BYTE",
           "byte value written (default 0xa5; zeros would let a dynamic disk skip the "
           "allocation)", 0},
          {"depth-info", 0, CLI_FLAG, NULL,
           "show the chain, and for reads which layer served the bytes (counted after the "
           "timed run)", 0},
          OPT_JSON),
     "Reads (or with --write, writes) SIZE-byte requests through hvm's disk layer, one at "
     "a time, on FILE and its whole parent chain, then flushes, and prints ops, seconds "
     "(flush included), ops/s and MiB/s. Like 'qemu-img bench -d 1'."},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct cli_verb vm_verbs[] = {
    {"create", cmd_vm_create, "create a VM (from a base image, a disk, or a new disk)",
     ARGS({"NAME", CLI_NAME, false}),
     OPTS({"cpus", 0, CLI_INT, "N", "virtual CPUs, 1-256 (default 1)", 0},
          {"memory", 0, CLI_SIZE, "SIZE", "memory, at least 16M (default 1G)", 0},
          {"from", 0, CLI_FILE, "BASE",
           "the VM's disk is a differencing child of BASE, which is registered as a base "
           "image and protected read-only", 0},
          {"disk", 0, CLI_FILE, "FILE", "copy FILE into the VM folder as its disk", 0},
          {"new-disk", 0, CLI_SIZE, "SIZE", "a new empty dynamic disk", 0},
          {"nic", 0, CLI_TEXT, "SWITCH",
           "a network adapter on SWITCH with a new stable MAC address (repeatable)",
           CLI_REPEAT},
          {"clone", 0, CLI_VM, "OTHER", "an instant linked clone of the VM OTHER", 0},
          {"checkpoint", 0, CLI_NAME, "X",
           "with --clone: OTHER's checkpoint to clone (default: the one OTHER's current "
           "state is based on)", 0},
          {"firmware", 0, CLI_ENUM, "bios|uefi", "the firmware (default uefi, as Hyper-V's "
           "generation 2)", 0},
          {"secure-boot", 0, CLI_FLAG, NULL, "with uefi: OVMF's Secure Boot build (q35, SMM; "
           "Microsoft's keys enrolled)", 0},
          OPT_STORE),
     "Creates the VM NAME in the store: its folder vms/NAME/ with vm.json and its disks. "
     "Give at most one of --from, --disk, --new-disk and --clone.\n\n"
     "--firmware uefi (the default) boots the VM with OVMF (Debian's ovmf package): its "
     "code is shared and read-only, and the VM gets its own copy of the UEFI variable "
     "store (boot entries, Secure Boot keys) in nvram/ of its folder, which checkpoints "
     "freeze, apply restores, and export, import and clones carry. --firmware bios is "
     "SeaBIOS, with nothing in the folder (and a faster start under TCG). A clone takes "
     "its checkpoint's firmware and a copy of its variable store."},
    {"list", cmd_vm_list, "list the VMs of the store", NULL, OPTS(OPT_JSON, OPT_STORE),
     "Lists the VMs of the store: name, state, CPUs, memory, drives, checkpoints, and for "
     "a running VM its accelerator, uptime and boot state (BOOT: what the firmware says, "
     "e.g. 'no bootable device', or the device it boots from)."},
    {"show", cmd_vm_show, "show a VM's configuration, state and disks",
     ARGS({"VM", CLI_VM, false}), OPTS(OPT_JSON, OPT_STORE),
     "Shows the VM's state, folder, every setting 'hvm vm set' changes (CPUs, memory, "
     "disk I/O, kernel, initrd, kernel command line, autostart), its drives with their "
     "chains, its network adapters and the checkpoint it is based on; for a running VM "
     "also its boot state (Boot:), as vm list."},
    {"set", cmd_vm_set, "change CPUs, memory, disks, network adapters, boot",
     ARGS({"VM", CLI_VM, false}),
     OPTS({"cpus", 0, CLI_INT, "N", "virtual CPUs, 1-256", 0},
          {"memory", 0, CLI_SIZE, "SIZE", "memory, at least 16M", 0},
          {"add-disk", 0, CLI_FILE, "FILE", "copy FILE into the VM folder as a new drive", 0},
          {"new-disk", 0, CLI_SIZE, "SIZE", "a new empty dynamic disk as a new drive", 0},
          {"slot", 0, CLI_INT, "N", "the slot of the new drive (default: the first free)", 0},
          {"remove-disk", 0, CLI_INT, "SLOT", "remove the drive in SLOT", 0},
          {"add-nic", 0, CLI_TEXT, "SWITCH", "a new network adapter on SWITCH", 0},
          {"remove-nic", 0, CLI_TEXT, "MAC", "remove the network adapter MAC", 0},
          {"set-nic", 0, CLI_TEXT, "MAC", "change the network adapter MAC (--vlan, --switch, "
           "--model, the guards below)", 0},
          {"vlan", 0, CLI_INT, "N", "the adapter's VLAN, 1-4094 (0: none; with --add-nic or "
           "--set-nic)", 0},
          {"mac", 0, CLI_TEXT, "MAC", "the new adapter's MAC (default: random 52:54:00:...)", 0},
          {"model", 0, CLI_ENUM, "virtio|e1000e", "the adapter's model (default virtio)", 0},
          {"switch", 0, CLI_TEXT, "SWITCH", "with --set-nic: move the adapter to SWITCH (also "
           "while the VM runs, as --vlan)", 0},
          {"mac-spoofing", 0, CLI_ENUM, "on|off",
           "the guest may send with other MACs than the adapter's (default off)", 0},
          {"dhcp-guard", 0, CLI_ENUM, "on|off", "drop DHCP server messages the guest sends "
           "(default off)", 0},
          {"router-guard", 0, CLI_ENUM, "on|off", "drop router advertisements and redirects "
           "the guest sends (default off)", 0},
          {"max-bandwidth", 0, CLI_INT, "MBIT", "the adapter's bandwidth each way, in Mbit/s "
           "(0: no limit, the default)", 0},
          {"kernel", 0, CLI_FILE, "FILE", "direct kernel boot: the kernel (\"\" clears)", 0},
          {"initrd", 0, CLI_FILE, "FILE", "direct kernel boot: the initrd (\"\" clears)", 0},
          {"cmdline", 0, CLI_TEXT, "TEXT", "the kernel command line (\"\" clears)", 0},
          {"disk-io", 0, CLI_ENUM, "vhost-user|nbd", "how the running guest reaches its disks",
           0},
          {"autostart", 0, CLI_ENUM, "on|off", "start the VM with the host (hvm host start)", 0},
          {"autostart-delay", 0, CLI_INT, "SECONDS",
           "wait this long after the host start began (default 0)", 0},
          {"autostop", 0, CLI_ENUM, "save|shutdown|turn-off",
           "what hvm host stop does to it if it runs (default save)", 0},
          {"dvd", 0, CLI_FILE, "FILE.iso", "insert an ISO into a DVD drive (read-only; repeatable)",
           CLI_REPEAT},
          {"dvd-slot", 0, CLI_TEXT, "N", "the DVD slot (0-3) of the matching --dvd (default: the "
           "first free)", CLI_REPEAT},
          {"eject", 0, CLI_TEXT, "N|all", "remove the DVD drive in slot N, or all (repeatable)",
           CLI_REPEAT},
          {"boot", 0, CLI_TEXT, "LIST", "startup order, e.g. dvd,disk,net (\"\" clears: QEMU's "
           "default)", 0},
          {"firmware", 0, CLI_ENUM, "bios|uefi", "the firmware; to uefi: a fresh variable store", 0},
          {"secure-boot", 0, CLI_ENUM, "on|off", "UEFI Secure Boot (a fresh variable store with "
           "its keys)", 0},
          OPT_STORE),
     "Changes the VM's current configuration (checkpoints keep theirs). The VM must be "
     "off. --add-disk copies FILE into the VM folder; a removed disk's current layer is "
     "deleted unless a checkpoint still uses it. --kernel, --initrd and --cmdline set up "
     "direct kernel boot (an empty value clears).\n\n"
     "--dvd attaches an ISO image read-only as an IDE CD-ROM (slots 0-3). The ISO is "
     "referenced by its absolute path, never copied into the VM folder (nor exported): "
     "'hvm vm start' refuses to start when it is gone. --eject N removes slot N's drive. "
     "--boot sets the startup order of the firmware (BIOS) like Hyper-V's: the kinds dvd, "
     "disk and net in the order tried (each device of a kind in slot order; a network "
     "adapter boots only where QEMU's NIC supports a boot index). Direct kernel boot "
     "(--kernel) comes before any order.\n\n"
     "--firmware bios|uefi switches the firmware (see 'hvm vm create'): to uefi the VM "
     "gets a fresh copy of OVMF's variable store, to bios its store is dropped (the "
     "checkpoints keep theirs). --secure-boot on|off changes the UEFI build, with a "
     "fresh store of that build (boot entries the guest wrote are lost).\n\n"
     "--disk-io says how the running guest reaches its disks: vhost-user (new VMs' "
     "default: the VM's worker serves virtio-blk requests straight from guest memory) or "
     "nbd (QEMU's own virtio-blk, reading the worker's NBD server; VMs made before the "
     "choice existed).\n\n"
     "The automatic actions, which 'hvm host start' and 'hvm host stop' carry out when the "
     "host boots and shuts down (hvm.service), may change in any state: --autostart on "
     "starts the VM --autostart-delay seconds after the host start began; --autostop says "
     "what becomes of it when it still runs at host stop: save (the default: memory saved, "
     "resumed at the next start), shutdown (ACPI, turned off if the guest does not power "
     "off in time) or turn-off.\n\n"
     "A network adapter's guards, as Hyper-V's: --mac-spoofing off (the default) drops "
     "every frame the guest sends with another source MAC than the adapter's; --dhcp-guard "
     "drops the DHCP server messages it sends, --router-guard its router advertisements "
     "and redirects; --max-bandwidth limits each way (nftables on the tap, tbf towards the "
     "guest). While the VM runs, --set-nic MAC --switch S or --vlan N moves the adapter's "
     "tap to the other bridge switch at once (the guest keeps its adapter)."},
    {"rename", cmd_vm_rename, "rename a VM",
     ARGS({"VM", CLI_VM, false}, {"NEWNAME", CLI_NAME, false}), OPTS(OPT_STORE),
     "Renames the VM VM to NEWNAME."},
    {"delete", cmd_vm_delete, "delete a VM and its files", ARGS({"VM", CLI_VM, false}),
     OPTS(OPT_STORE),
     "Deletes the VM's folder: configuration, checkpoints and disks. A base image it was "
     "made from stays (see 'hvm base')."},
    {"check", cmd_vm_check, "verify a VM or the whole store, finishing interrupted work",
     ARGS({"VM", CLI_VM, true}), OPTS(OPT_JSON, OPT_STORE),
     "Finishes an interrupted operation from the VM's journal, then verifies the "
     "configuration, the checkpoint tree, every disk chain (structure, identity of every "
     "link) and that no file in the folder is orphaned. Without VM: the whole store, its "
     "base registry (bases whose file is gone) and every VM.\n\n"
     "Exit status: 0 clean, 1 problems found, 2 error."},
    {"serve", cmd_vm_serve, "serve a VM's disk or a checkpoint's over NBD",
     ARGS({"VM", CLI_VM, false}),
     OPTS({"drive", 0, CLI_INT, "N", "the drive's slot (default 0)", 0},
          {"checkpoint", 0, CLI_NAME, "X", "serve the disk of checkpoint X, read-only", 0},
          {"socket", 0, CLI_FILE, "PATH", "where to listen", CLI_REQUIRED},
          {"read-only", 0, CLI_FLAG, NULL, "refuse writes (possible while the VM runs)", 0},
          OPT_STORE),
     "Serves one of the VM's drives over NBD on the Unix socket PATH until SIGTERM or "
     "SIGINT: the current disk read-write (the VM must be Off), or with --checkpoint the "
     "disk of that checkpoint, read-only. The VM stays locked (busy for other hvm "
     "commands) while served." OPT_NBD_ENV},
    {"export", cmd_vm_export, "export a VM with its checkpoints into one folder",
     ARGS({"VM", CLI_VM, false}, {"DEST", CLI_DIR, false}),
     OPTS({"checkpoint", 0, CLI_NAME, "X",
           "export that one moment as a standalone VM (disks flattened)", 0},
          {"flatten", 0, CLI_FLAG, NULL, "export the current state only, each chain as one disk",
           0},
          OPT_STORE),
     "Writes one self-contained folder DEST: the configuration, the whole checkpoint tree, "
     "memory states, every disk of every chain (shared bases included, in bases/) and "
     "manifest.json (SHA-256 of each file, the chain graph, the format version). Free "
     "space is checked first; DEST appears only when complete. A running VM is exported "
     "through a checkpoint taken online."},
    {"import", cmd_vm_import, "import an exported VM folder",
     ARGS({"DIR", CLI_DIR, false}),
     OPTS({"mode", 0, CLI_ENUM, "register|restore|copy",
           "register: use DIR where it is; restore (default): copy into the store keeping "
           "the VM's id; copy: a new id and new MAC addresses", 0},
          {"name", 0, CLI_NAME, "NEW", "the imported VM's name", 0},
          {"dry-run", 0, CLI_FLAG, NULL, "only validate and report", 0},
          {"map-switch", 0, CLI_TEXT, "OLD=NEW[,...]",
           "put the adapters on switch OLD (now and in every checkpoint) on this host's NEW", 0},
          OPT_STORE),
     "Validates the whole bundle first (manifest hashes and sizes, chains, configuration, "
     "name or id clash) and lists every problem at once; the store changes only if the "
     "import can succeed. Paths that leave the bundle, symlinks and parent locators "
     "pointing outside are never followed. Only what a bundle may contain is imported (the "
     "configuration, the disks of the chain graph, memory states, kernel and initrd under "
     "boot/); other files are left out with a note, host paths of a kernel or initrd are "
     "dropped, and a journal, lock or run/ folder in DIR refuses the import."},
    {"move", cmd_vm_move, "move a VM's folder to other storage",
     ARGS({"VM", CLI_VM, false}, {"DEST", CLI_DIR, false}),
     OPTS({"with-base", 0, CLI_FLAG, NULL,
           "also copy the VM's base image into DEST/bases/ and point its disks at the copy",
           0},
          OPT_STORE),
     "Relocates the VM's folder to DEST (for example on shared storage): copy, verify "
     "every file, switch the store to the new place, remove the old. With --with-base the "
     "original base stays for other VMs."},
    {"migrate", cmd_vm_migrate, "move a VM to another host (live or quick, on shared storage)",
     ARGS({"VM", CLI_VM, false}),
     OPTS({"to", 0, CLI_TEXT, "ssh://[USER@]HOST[:PORT][/STORE]",
           "the destination: its hvm runs through ssh (STORE: its store, default its default)",
           CLI_REQUIRED},
          {"mode", 0, CLI_ENUM, "live|quick",
           "live (the default for a running VM): memory copied while it runs; quick: save, "
           "hand over, resume there", 0},
          {"dry-run", 0, CLI_FLAG, NULL, "only the compatibility report; nothing moves", 0},
          {"downtime-limit", 0, CLI_INT, "MS", "live: the longest pause QEMU aims at (default 50)", 0},
          {"max-bandwidth", 0, CLI_INT, "MIB/S", "live: the memory copy's rate limit (default 1024)", 0},
          {"migration-address", 0, CLI_TEXT, "ADDR",
           "live: the destination's address for QEMU's stream (default: HOST)", 0},
          OPT_JSON, OPT_STORE),
     "Moves the VM to another host running the same hvm version, reached through OpenSSH "
     "(one session runs 'hvm migrate-receive' there; $HVM_SSH names another ssh program, "
     "$HVM_REMOTE_HVM the hvm to run there). The VM's folder must be on storage both hosts "
     "see at the same path ('hvm vm move VM DIR' puts it there).\n\n"
     "The versions are compared first, then the destination reports what the VM needs: "
     "its switches (those of every checkpoint too), files outside the folder (bases, "
     "kernel, initrd, firmware), the folder itself, a free name, free space, the "
     "accelerator and CPU. Any problem refuses the migration before anything moves; "
     "--dry-run prints the report (--json: as JSON) and exits 2 when it found a problem.\n\n"
     "live: the destination starts a worker with QEMU waiting for the memory (-incoming, "
     "paused) on a port of its store's settings.json \"migration_ports\" (default "
     "49152-49215) and the VM's drives served but not opened; the memory is copied over TCP "
     "while the guest runs, with --downtime-limit and --max-bandwidth set; at the switchover "
     "the source's QEMU is stopped and its worker flushes and closes every layer before the "
     "destination opens them and lets the guest run (never two writers). Progress is shown "
     "on a terminal. A failure or Ctrl-C before the switchover (destination killed, network "
     "cut) leaves the VM running here and nothing on the destination.\n\n"
     "quick: a running VM is saved into its folder and its worker ends (every layer "
     "released), the destination links the folder into its store and resumes it; a VM "
     "that is off or saved is handed over as it is. A failure or Ctrl-C before the "
     "destination resumed it resumes it here. The last line gives the total time and the "
     "downtime. This store keeps a record 'moved to HOST' that 'vm list' and 'vm show' "
     "print."},
    {"start", cmd_vm_start, "start (boot, or resume a saved state)",
     ARGS({"VM", CLI_VM, false}),
     OPTS({"accel", 0, CLI_ENUM, "kvm|tcg|auto", "the accelerator (default auto)", 0},
          OPT_STORE),
     "Starts the VM in its own worker process: boots it (Off) or resumes its memory state "
     "(Saved). auto (the default) uses KVM only where a probe proved that it runs a guest "
     "(cached per host), else software emulation (TCG)."},
    {"stop", cmd_vm_stop, "shut down through ACPI (--force: power off after --timeout)",
     ARGS({"VM", CLI_VM, false}),
     OPTS({"timeout", 0, CLI_INT, "SECONDS", "how long to wait (default 120)", 0},
          {"force", 'f', CLI_FLAG, NULL, "power off when the guest has not shut down by then",
           0},
          OPT_STORE),
     "Asks the guest to shut down (ACPI power button) and waits up to --timeout seconds "
     "(default 120). If it has not powered off by then: an error, or with --force the VM "
     "is powered off like turn-off."},
    {"turn-off", cmd_vm_turn_off, "power off at once", ARGS({"VM", CLI_VM, false}),
     OPTS(OPT_STORE),
     "Powers the VM off at once, like pulling the plug (the disks stay consistent)."},
    {"pause", cmd_vm_pause, "pause the running VM", ARGS({"VM", CLI_VM, false}),
     OPTS(OPT_STORE), "Pauses the running VM's CPUs; its worker keeps serving the disks."},
    {"resume", cmd_vm_resume, "resume a paused VM", ARGS({"VM", CLI_VM, false}),
     OPTS(OPT_STORE), "Lets a paused VM run again."},
    {"save", cmd_vm_save, "save memory to the VM folder and stop (state Saved)",
     ARGS({"VM", CLI_VM, false}), OPTS(OPT_STORE),
     "Saves the running VM's memory into its folder and stops QEMU: the VM is Saved, and "
     "'hvm vm start' resumes it exactly there."},
    {"console", cmd_vm_console, "attach to the serial console (Ctrl-] detaches), or reach the VNC one",
     ARGS({"VM", CLI_VM, false}),
     OPTS({"vnc", 0, CLI_FLAG, NULL, "the graphical console: print how to reach its VNC server", 0},
          {"listen", 0, CLI_TEXT, "127.0.0.1:PORT",
           "with --vnc: forward TCP on the loopback to it while the command runs", 0},
          OPT_STORE),
     "Attaches the terminal to the VM's serial console. Ctrl-] detaches (the VM keeps "
     "running). Everything the console printed is also kept in the VM folder's "
     "run/console.log.\n\n"
     "--vnc: every running VM has a VGA display and a VNC server, reached through the "
     "Unix socket run/vnc.sock of its folder (mode 0600, no password; QEMU itself opens "
     "no socket: the worker hands it each connection). --vnc prints how to reach it; "
     "--listen 127.0.0.1:PORT forwards TCP connections on a loopback address to it until "
     "the command ends (Ctrl-C) or the VM stops."},
    {"screenshot", cmd_vm_screenshot, "save the VM's screen as a PNG",
     ARGS({"VM", CLI_VM, false}, {"OUT.png", CLI_FILE, false}), OPTS(OPT_STORE),
     "Writes the running VM's screen (its VGA display, QMP screendump) to OUT.png, "
     "atomically (a reader sees the old file or the whole new image)."},
    {"send-keys", cmd_vm_send_keys, "press keys on the VM's keyboard",
     ARGS({"VM", CLI_VM, false}, {"KEY...", CLI_TEXT, true}),
     OPTS({"text", 0, CLI_TEXT, "STRING", "type STRING (US layout; \\n is Enter), after the KEYs",
           0},
          OPT_STORE),
     "Presses each KEY on the running VM's PS/2 keyboard, one after the other, for unattended "
     "installs (QMP send-key). A KEY is a QEMU key code or several joined by '-', pressed "
     "together and released in reverse: ret, esc, tab, spc, f2, a, shift-a, ctrl-alt-delete, "
     "alt-f4, kp_enter, up, down. --text types a string with the US layout (A-Z with shift; "
     "at most 256 characters)."},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct cli_verb checkpoint_verbs[] = {
    {"take", cmd_checkpoint_take, "take a checkpoint of the VM now",
     ARGS({"VM", CLI_VM, false}, {"NAME", CLI_NAME, true}),
     OPTS({"memory-mode", 0, CLI_ENUM, "precopy|stop",
           "a running VM's memory: copied while it runs (default) or with it paused", 0},
          OPT_STORE),
     "Freezes each drive's current layer as the checkpoint's disk state, puts a fresh "
     "differencing layer in its place and copies the configuration (and a Saved VM's "
     "memory). Instant whatever the disk size. On a running VM the memory is saved too: "
     "by default copied while the guest runs, which is paused only for the last pages and "
     "the switch of every drive's leaf (tens of ms); --memory-mode stop pauses it while all "
     "of its memory is written. Default name: \"VM - (YYYY-MM-DD HH:MM:SS)\"."},
    {"list", cmd_checkpoint_list, "the checkpoint tree, with Now under its parent",
     ARGS({"VM", CLI_VM, false}), OPTS(OPT_JSON, OPT_STORE),
     "The checkpoint tree: name, time, [memory] and the size of the memory state file when it "
     "holds a running state (memory_size in --json) with, for one taken online, how the "
     "memory was saved and the guest's pause (memory_mode, pause_ms), its own "
     "space on disk, and \"Now\" under the checkpoint the VM is based on."},
    {"revert", cmd_checkpoint_revert, "go back to the checkpoint now is based on",
     ARGS({"VM", CLI_VM, false}), OPTS(OPT_STORE),
     "Discards the current state and goes back to the checkpoint it is based on: its "
     "disks (fresh layers on them), its configuration, its memory state (the VM then runs "
     "again exactly there)."},
    {"apply", cmd_checkpoint_apply, "go to any checkpoint (--take-first keeps now)",
     ARGS({"VM", CLI_VM, false}, {"CHECKPOINT", CLI_NAME, false}),
     OPTS({"take-first", 0, CLI_FLAG, NULL, "first take a checkpoint of the current state", 0},
          OPT_STORE),
     "Goes to CHECKPOINT (a name or an id prefix). The current state is discarded unless "
     "--take-first, which first takes a checkpoint of it."},
    {"rename", cmd_checkpoint_rename, "rename a checkpoint",
     ARGS({"VM", CLI_VM, false}, {"CHECKPOINT", CLI_NAME, false},
          {"NEWNAME", CLI_NAME, false}),
     OPTS(OPT_STORE), "Renames CHECKPOINT (a name or an id prefix) to NEWNAME."},
    {"show", cmd_checkpoint_show, "a checkpoint's configuration and files",
     ARGS({"VM", CLI_VM, false}, {"CHECKPOINT", CLI_NAME, false}), OPTS(OPT_JSON, OPT_STORE),
     "Shows CHECKPOINT (a name or an id prefix): its id, time, parent, memory state, "
     "configuration, drives and its own space on disk."},
    {"delete", cmd_checkpoint_delete, "delete a checkpoint (its data folds into its child)",
     ARGS({"VM", CLI_VM, false}, {"CHECKPOINT", CLI_NAME, false}),
     OPTS({"subtree", 0, CLI_FLAG, NULL, "delete its descendants too", 0}, OPT_STORE),
     "Deletes a checkpoint: its disk layer is folded into its child layer (which reads the "
     "same at every moment, so an interruption loses nothing) and its memory state goes. "
     "A layer that two checkpoints still build on stays, hidden, until one of them goes. "
     "On a running VM the checkpoints go at once and their layers are folded when it is "
     "off."},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct cli_verb base_verbs[] = {
    {"list", cmd_base_list, "base images and the VMs made from them", NULL,
     OPTS(OPT_JSON, OPT_STORE), "Base images the store's VMs are made from, and their VMs."},
    {"remove", cmd_base_remove, "unregister a base no VM uses", ARGS({"FILE", CLI_FILE, false}),
     OPTS(OPT_STORE),
     "Unregisters a base that no VM uses any more and lifts its read-only protection (the "
     "file itself stays). A base whose file is gone is unregistered as well."},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct cli_verb host_verbs[] = {
    {"start", cmd_host_start, "start the VMs whose automatic start is on (host boot)", NULL,
     OPTS({"accel", 0, CLI_ENUM, "kvm|tcg|auto", "hvm vm start's accelerator (default auto)", 0},
          OPT_JSON, OPT_STORE),
     "Starts every VM of the store whose automatic start is on ('hvm vm set VM --autostart "
     "on') and that is not running: it boots, or resumes its memory state when it is Saved "
     "(as 'hvm host stop' leaves it by default). As in Hyper-V each VM starts its "
     "--autostart-delay seconds after this command began: in the order of the delays, then "
     "of the names. A VM that fails to start is reported and the others still start; the "
     "exit status is then 2. data/systemd/hvm.service runs it at boot."},
    {"stop", cmd_host_stop, "save, shut down or turn off every running VM (host shutdown)", NULL,
     OPTS({"timeout", 0, CLI_INT, "SECONDS",
           "how long a guest may take to shut down before it is turned off (default 60)", 0},
          OPT_JSON, OPT_STORE),
     "Applies every running VM's automatic stop action ('hvm vm set VM --autostop'): save "
     "(the default: memory saved into the VM folder, state Saved; the next 'hvm host start' "
     "or 'hvm vm start' resumes it there), shutdown (the ACPI power button, as 'hvm vm "
     "stop'; a guest that has not powered off within --timeout seconds is turned off) or "
     "turn-off (powered off at once).\n\n"
     "All VMs are stopped at the same time: each save or guest shutdown takes its own while, "
     "and one after another the waits would add up past what a host's shutdown allows. "
     "Reports each VM; the exit status is 2 if any action failed (a VM whose save failed is "
     "turned off, so that its disks are closed cleanly)."},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

#define SWITCH_BRIDGE_NAMES                                                                \
    "\n\nEach private, internal or external switch is a Linux bridge named \"hvm-\" + NAME when " \
    "NAME is at most 11 characters of letters, digits, '_', '.' and '-', else \"hvm_\" + "   \
    "11 hex digits of a hash of NAME (interface names have at most 15 characters)."

static const struct cli_verb switch_verbs[] = {
    {"create", cmd_switch_create, "record a new private, internal, external or user switch",
     ARGS({"NAME", CLI_NAME, false}),
     OPTS({"type", 't', CLI_ENUM, "private|internal|user|external",
           "private: VMs only; internal: VMs and the host; external: bridged to a host NIC; "
           "user: QEMU's user-mode networking",
           CLI_REQUIRED},
          {"address", 0, CLI_TEXT, "CIDR",
           "internal: the host's address on the switch, e.g. 10.20.0.1/24 or fd00::1/64", 0},
          {"uplink", 0, CLI_TEXT, "IFACE", "external: the host NIC, bond or team it bridges", 0},
          {"force", 0, CLI_FLAG, NULL,
           "external: even when the uplink carries the route to where you log in from", 0},
          {"dhcp", 0, CLI_FLAG, NULL, "internal, IPv4: serve DHCP to the VMs with dnsmasq", 0},
          {"dhcp-range", 0, CLI_TEXT, "START,END",
           "the addresses DHCP hands out (default: the half of the subnet without the host's "
           "address)", 0},
          {"nat", 0, CLI_FLAG, NULL,
           "internal, IPv4: masquerade the VMs' traffic to other networks (nftables)", 0},
          {"vlan", 0, CLI_INT, "N", "VLANs (not supported yet)", 0},
          OPT_STORE),
     "Records the switch NAME in the store's switches.json; 'hvm switch up' creates its "
     "bridge. A private switch connects VMs only; an internal one also the host, which has "
     "the --address on it. A user switch is QEMU's user-mode networking (slirp): no bridge, "
     "no privileges needed, each VM alone behind its own NAT; 'hvm switch forward' publishes "
     "its services.\n\n"
     "--dhcp runs one dnsmasq for the switch, DHCP only (no DNS), bound to its bridge alone, "
     "started at 'switch up' (and 'vm start') and stopped at 'switch down' and 'delete'; its "
     "pid file, leases and log are in <store>/switches/NAME/. --nat masquerades what the VMs "
     "send to other networks behind the host's address there (the nftables table inet "
     "BRIDGE, made at 'switch up', deleted at 'down'), turns IPv4 forwarding on and makes "
     "DHCP offer the host as the gateway.\n\n"
     "An external switch bridges the host NIC --uplink (a NIC, bond or team; not Wi-Fi, "
     "which cannot be bridged) and shares it with the host, as Hyper-V's \"allow management "
     "OS to share this adapter\": at 'switch up' the NIC becomes a port of the bridge, the "
     "bridge takes its MAC and MTU, LRO is turned off on it, and the host's addresses and "
     "the routes through it (the default route too) move to the bridge; 'switch down' and "
     "'delete' put them back as they were (saved in <store>/switches/NAME/uplink.json). "
     "Refused when the route to the address you are logged in from (SSH_CONNECTION) goes "
     "through the uplink, unless --force."
     SWITCH_BRIDGE_NAMES},
    {"list", cmd_switch_list, "list the store's switches and their bridges", NULL,
     OPTS(OPT_JSON, OPT_STORE),
     "Lists the switches: name, type, bridge, the bridge's state on this host (up, down, "
     "absent), address and the VMs with an adapter on it. A switch named in switches.json "
     "as a plain name (before hvm managed switches) is of type user: user-mode "
     "networking, no bridge."},
    {"show", cmd_switch_show, "show one switch", ARGS({"NAME", CLI_NAME, false}),
     OPTS(OPT_JSON, OPT_STORE),
     "Shows the switch's type, bridge, state, address, the bridge's ports and the VMs with "
     "an adapter on it; with --dhcp, whether its dnsmasq runs and the leases (with the VM "
     "each MAC belongs to); with --nat, whether its table is there; its forwards."},
    {"delete", cmd_switch_delete, "delete a switch no VM uses", ARGS({"NAME", CLI_NAME, false}),
     OPTS(OPT_STORE),
     "Removes the switch and its bridge. Refused while a VM's network adapter names it (the "
     "VMs are named: 'hvm vm set VM --remove-nic MAC' first) or while its bridge has ports."},
    {"up", cmd_switch_up, "create the bridge of a switch, or of every switch",
     ARGS({"NAME", CLI_NAME, true}),
     OPTS({"all", 'a', CLI_FLAG, NULL, "every switch of the store", 0}, OPT_STORE),
     "Creates the switch's bridge where it is missing, gives an internal switch its "
     "address and sets the bridge up, starts its DHCP server (a dnsmasq that exited is "
     "started again) and applies its NAT table; running it again changes nothing. Give NAME or "
     "--all. Needs CAP_NET_ADMIN." SWITCH_BRIDGE_NAMES},
    {"forward", cmd_switch_forward, "publish a VM's port on the host, or list or remove forwards",
     ARGS({"NAME", CLI_NAME, false}),
     OPTS({"port", 'p', CLI_TEXT, "HOSTPORT:VM:PORT", "forward the host's HOSTPORT to VM's PORT", 0},
          {"protocol", 0, CLI_ENUM, "tcp|udp", "the protocol (default tcp)", 0},
          {"to", 0, CLI_TEXT, "ADDRESS", "the VM's IPv4 address (default: reserved by DHCP)", 0},
          {"remove", 0, CLI_TEXT, "HOSTPORT", "stop forwarding HOSTPORT (of --protocol)", 0},
          OPT_JSON, OPT_STORE),
     "Without --port or --remove, lists the switch's forwards.\n\n"
     "On an internal switch with --nat, a forward is a DNAT rule of the switch's nftables "
     "table: connections to HOSTPORT of any of the host's addresses (from other networks or "
     "from the host itself, not from 127.0.0.1) go to PORT of the VM. The VM's address is "
     "--to, or one reserved for the MAC of its adapter on the switch: the address it has a "
     "lease for, else a free one of the DHCP range, which dnsmasq then always gives that "
     "adapter. Changes apply at once when the switch is up.\n\n"
     "On a user switch, a forward is QEMU's hostfwd on the VM's adapter (HOSTPORT on all "
     "the host's addresses); it takes effect when the VM starts."},
    {"down", cmd_switch_down, "remove the bridge of a switch, or of every switch",
     ARGS({"NAME", CLI_NAME, true}),
     OPTS({"all", 'a', CLI_FLAG, NULL, "every switch of the store", 0}, OPT_STORE),
     "Stops the switch's DHCP server, deletes its NAT table and its bridge (the switch stays "
     "in the store); refused while the bridge has ports. Give NAME or --all. Needs CAP_NET_ADMIN."},
    {"diagnose", cmd_switch_diagnose, "report offload, MTU and bond problems of a switch",
     ARGS({"NAME", CLI_NAME, false}), OPTS(OPT_JSON, OPT_STORE),
     "Reads the offload features (ethtool netlink), MTU and kind of every port of the "
     "switch's bridges (its own and its VLANs') and reports the known bad combinations, "
     "each with its fix: LRO on a bridge port, tx checksum offload on a tap, GRO or TSO on "
     "for some ports and off for others, a port MTU other than its bridge's, a bond in "
     "balance-alb or balance-tlb mode under the bridge, br_netfilter loaded. Exits 1 when it "
     "found a problem, 0 when none."},
    {"set", cmd_switch_set, "change a switch's offload settings", ARGS({"NAME", CLI_NAME, false}),
     OPTS({"offload", 0, CLI_TEXT, "NAME=on|off,...",
           "offloads of its ports: tso, gso, gro, lro, tx, rx, sg", 0}, OPT_STORE),
     "Keeps the offload settings in switches.json (merged with those set before), applies "
     "them to the ports of the switch's bridges now, again at 'hvm switch up', and to the "
     "tap of every VM started on it. Needs CAP_NET_ADMIN."},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

static const struct cli_verb web_verbs[] = {
    {"serve", cmd_web_serve, "serve the web console (JSON API, pages, serial console)", NULL,
     OPTS({"listen", 'l', CLI_TEXT, "unix:PATH|ADDRESS:PORT",
           "where to listen (default 127.0.0.1:8480; port 0: any free one)", 0},
          {"token-file", 0, CLI_FILE, "FILE",
           "the access token: read from FILE, or a new one written there (0600)", 0},
          {"tls-cert", 0, CLI_FILE, "FILE", "serve HTTPS with this PEM certificate", 0},
          {"tls-key", 0, CLI_FILE, "FILE", "the certificate's PEM private key", 0},
          {"root", 0, CLI_DIR, "DIR", "the front end's files (default: the installed ones)", 0},
          OPT_STORE),
     "Serves the web console of the store: a JSON API (/api/host, /api/vms, "
     "/api/vms/VM/checkpoints, /api/switches...), the pages that use it and the serial "
     "and graphical consoles of running VMs over WebSockets. Every API call runs this hvm binary with "
     "the same verb and --json, so the API says what the command line says and does what "
     "it does.\n\n"
     "Every API request needs the access token (Authorization: Bearer TOKEN): a random "
     "one printed at start, or the one in --token-file. Only loopback addresses and Unix "
     "sockets (mode 0600) are served without TLS; any other address needs --tls-cert and "
     "--tls-key. Runs until SIGINT or SIGTERM (data/systemd/hvm-web.service)."},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

#define OPT_VERBOSE {"verbose", 'v', CLI_FLAG, NULL, "show the Pacemaker commands run", 0}
#define OPT_WAIT                                                                           \
    {"timeout", 0, CLI_INT, "SECONDS", "how long to wait for the cluster (default 120)", 0}, \
    {"no-wait", 0, CLI_FLAG, NULL, "return without waiting for the cluster", 0}
static const struct cli_verb cluster_verbs[] = {
    {"status", cmd_cluster_status, "nodes, quorum and every clustered VM", NULL,
     OPTS(OPT_JSON, OPT_VERBOSE),
     "Shows the cluster's nodes (up, down, drained), whether it has quorum, and every VM in "
     "it: its state (Running, Offline, Stopped, Failed, Migrating), owner node, policies and "
     "recorded failures with their reasons. From crm_mon and cibadmin on this node."},
    {"add", cmd_cluster_add, "make a VM highly available", ARGS({"VM", CLI_VM, false}),
     OPTS({"preferred-owners", 0, CLI_TEXT, "N1,N2", "nodes to run it on, first preferred", 0},
          {"failback", 0, CLI_ENUM, "immediate|never",
           "move back to a preferred owner when it returns (default never)", 0},
          {"restart", 0, CLI_ENUM, "always|never",
           "after a failure: restart (default) or leave it stopped", 0},
          {"max-failures", 0, CLI_INT, "N", "failures on a node before it moves away", 0},
          {"period", 0, CLI_INT, "SECONDS", "how long a failure counts (with --max-failures)", 0},
          {"offline-action", 0, CLI_ENUM, "save|shutdown|turn-off",
           "what the cluster does to take it offline (default save)", 0},
          {"migration", 0, CLI_ENUM, "live|quick", "how the cluster moves it (default live)", 0},
          {"shutdown-timeout", 0, CLI_INT, "SECONDS",
           "how long a save or guest shutdown may take before turn-off (default 60)", 0},
          OPT_VERBOSE, OPT_STORE),
     "Adds the VM as the Pacemaker resource vm-VM of ocf:hvm:VirtualMachine, after the "
     "agent's validate-all accepted it on this node (the VM exists, the store is shared, the "
     "parameters are valid). --store must be the shared store as every node mounts it. The "
     "cluster then starts it (on the first preferred owner, if given) and restarts it on "
     "another node when its node dies.\n\n"
     "Preferred owners are location constraints (the first scored highest); --failback "
     "immediate sets resource-stickiness 0, never 1000; --restart never puts on-fail=stop "
     "on the monitor; --max-failures and --period are migration-threshold and "
     "failure-timeout."},
    {"remove", cmd_cluster_remove, "take a VM out of the cluster's care",
     ARGS({"VM", CLI_VM, false}), OPTS(OPT_VERBOSE),
     "Deletes the VM's resource and constraints; the VM stays as it is, running or not."},
    {"move", cmd_cluster_move, "move a VM to another node", ARGS({"VM", CLI_VM, false}, {"NODE", CLI_TEXT, false}),
     OPTS({"quick", 0, CLI_FLAG, NULL, "quick migration: saved here, resumed there", 0},
          {"timeout", 0, CLI_INT, "SECONDS", "how long to wait for the cluster (default 120)", 0},
          OPT_VERBOSE),
     "Moves the running VM to NODE (crm_resource --move, then --clear once it runs there): "
     "by live migration where hvm has it, else, and with --quick, by quick migration "
     "through the shared folder."},
    {"offline", cmd_cluster_offline, "take a VM offline (its offline action)", ARGS({"VM", CLI_VM, false}),
     OPTS(OPT_WAIT, OPT_VERBOSE), "target-role Stopped: the cluster applies the offline action."},
    {"online", cmd_cluster_online, "bring a VM online", ARGS({"VM", CLI_VM, false}),
     OPTS(OPT_WAIT, OPT_VERBOSE), "target-role Started."},
    {"maintenance", cmd_cluster_maintenance, "leave a VM alone while it is worked on",
     ARGS({"VM", CLI_VM, false}, {"on|off", CLI_TEXT, false}), OPTS(OPT_WAIT, OPT_VERBOSE),
     "on: is-managed false, the cluster neither starts, stops nor watches it (hvm vm "
     "commands may touch it); off: managed again."},
    {"drain", cmd_cluster_drain, "move every VM off a node", ARGS({"NODE", CLI_TEXT, false}),
     OPTS(OPT_WAIT, OPT_VERBOSE),
     "Puts NODE in standby: its VMs move to other nodes (migration), and none comes back "
     "until 'hvm cluster resume NODE'."},
    {"resume", cmd_cluster_resume, "let a drained node run VMs again", ARGS({"NODE", CLI_TEXT, false}),
     OPTS(OPT_WAIT, OPT_VERBOSE), "Ends NODE's standby; VMs with --failback immediate return."},
    {"fence-test", cmd_cluster_fence_test, "fence a node through the cluster's fence devices",
     ARGS({"NODE", CLI_TEXT, false}),
     OPTS({"yes", 0, CLI_FLAG, NULL, "yes, power it off or reboot it", CLI_REQUIRED},
          {"timeout", 0, CLI_INT, "SECONDS", "how long fencing may take (default 120)", 0},
          OPT_VERBOSE),
     "Fences NODE as the cluster would on losing it (stonith_admin --reboot): proves that "
     "the fence devices reach it. Every VM it ran fails over."},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const struct cli_noun cli_nouns[] = {
    {"vhd", "virtual hard disks",
     "Microsoft VHD disks (fixed, dynamic, differencing) that Hyper-V, qemu-img and libvhdi "
     "read byte for byte. A differencing disk never reads wrong data: each link is checked "
     "(the parent's unique id and size must be what the child expects).",
     vhd_verbs},
    {"vm", "virtual machines",
     "Each VM is one self-contained folder vms/NAME/ of the store with vm.json "
     "(configuration, checkpoint tree, now), disks/ and checkpoints/. Running VMs have one "
     "worker process each that owns and serves their disks.",
     vm_verbs},
    {"checkpoint", "checkpoints of a VM",
     "Checkpoint trees holding configuration, disk state and running memory. CHECKPOINT is "
     "a name or an id prefix.",
     checkpoint_verbs},
    {"base", "base images VMs are made from",
     "A base is protected read-only, cannot be attached directly and cannot be removed "
     "while a VM uses it.",
     base_verbs},
    {"host", "the host's automatic start and stop of VMs",
     "What hvm.service does when the host boots (hvm host start) and shuts down (hvm host "
     "stop), with each VM's automatic actions (hvm vm set --autostart, --autostop).",
     host_verbs},
    {"cluster", "highly available VMs on a Pacemaker cluster",
     "Failover clustering: each clustered VM is a Pacemaker resource of ocf:hvm:VirtualMachine "
     "on a store every node shares; these verbs speak Hyper-V's terms and run Pacemaker's "
     "tools (--verbose shows them).",
     cluster_verbs},
    {"switch", "virtual switches VMs' network adapters connect to",
     "The store's switches (switches.json) and their Linux bridges on this host: private "
     "(VMs only) and internal (VMs and the host, with DHCP and NAT if asked), and user "
     "switches (QEMU's user-mode networking).",
     switch_verbs},
    {"web", "the web console",
     "A web console for the store in the browser: the host, the VMs, their checkpoint "
     "trees, switches and serial consoles.",
     web_verbs},
    {NULL, NULL, NULL, NULL},
};
