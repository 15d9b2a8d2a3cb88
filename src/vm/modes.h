/* Who may read the store: its owner, and the members of the group `hvm`
 * (scripts/install-deps.sh creates it; $HVM_GROUP names another), which
 * read configurations, disks and memory states (0640) and enter the folders
 * (0750). Without that group every file is the owner's alone (0600). Lock
 * files stay 0600 (lock.c), and a VM's run/ (sockets, logs) is the
 * runtime's (0700, sockets 0600). Modes are set explicitly wherever hvm
 * makes a folder or a file, whatever the umask; a read-only file (a frozen
 * layer, a base) stays read-only (0440 or 0400). */
#ifndef HVM_VM_MODES_H
#define HVM_VM_MODES_H

/* The mode of one folder (0750, group hvm where it exists). */
void vm_mode_dir(const char *path);
/* The mode of one file (0640 with group hvm, else 0600; the owner's write
 * bit as it was). */
void vm_mode_file(const char *path);
/* A VM folder (or a bundle) and what hvm keeps in it: vm.json, journal,
 * manifest.json and disks/, checkpoints/, bases/, boot/ (not run/, not lock
 * files, not a file the user put there); only their owner changes anything,
 * and links are never followed. */
void vm_mode_tree(const char *dir);

#endif
