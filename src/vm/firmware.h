/* A VM's firmware: SeaBIOS (QEMU's default, nothing in the VM folder) or
 * UEFI from Debian's ovmf package, whose code is shared and read-only and
 * whose variable store (boot entries, Secure Boot keys) is the VM's own
 * file, nvram/<8 hex>.fd. The configuration holds
 * {"firmware": {"type": "uefi", "vars": "nvram/....fd", "secure_boot": b}};
 * no "firmware" means BIOS (every VM made before UEFI existed). */
#ifndef HVM_VM_FIRMWARE_H
#define HVM_VM_FIRMWARE_H

#include <jansson.h>
#include <stdbool.h>

/* Debian 12's OVMF builds with a 4 MiB flash (the 2 MiB ones are legacy).
 * The Secure Boot code needs QEMU's q35 machine with SMM; its variable
 * store template has Microsoft's keys enrolled and Secure Boot on. */
#define VM_OVMF_DIR "/usr/share/OVMF"
#define VM_OVMF_CODE VM_OVMF_DIR "/OVMF_CODE_4M.fd"
#define VM_OVMF_VARS VM_OVMF_DIR "/OVMF_VARS_4M.fd"
#define VM_OVMF_CODE_SECURE VM_OVMF_DIR "/OVMF_CODE_4M.secboot.fd"
#define VM_OVMF_VARS_SECURE VM_OVMF_DIR "/OVMF_VARS_4M.ms.fd"

bool vm_firmware_uefi(const json_t *config);
bool vm_firmware_secure_boot(const json_t *config);
/* The configuration's variable store (relative to the folder), or NULL. */
const char *vm_firmware_vars(const json_t *config);
const char *vm_firmware_code_path(bool secure_boot);

/* A fresh name nvram/<8 hex>.fd. NULL when out of memory. */
char *vm_firmware_new_vars_name(void);
/* Makes dir/rel: a copy of from (an absolute path), or of OVMF's template
 * when from is NULL; nvram/ is made as needed. A missing ovmf package is
 * one error that says which package to install. */
int vm_firmware_vars_create(const char *dir, const char *rel, const char *from, bool secure_boot);
/* The firmware object of a configuration: {"type": "bios"} or a UEFI one
 * naming vars. */
json_t *vm_firmware_object(bool uefi, const char *vars, bool secure_boot);

#endif
