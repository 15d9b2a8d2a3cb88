/* A VM's firmware (see firmware.h). */
#include "vm/firmware.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/uuid.h"
#include "vm/modes.h"

static const json_t *fw(const json_t *config)
{
    return json_object_get(config, "firmware");
}

bool vm_firmware_uefi(const json_t *config)
{
    const char *t = json_string_value(json_object_get(fw(config), "type"));
    return t && strcmp(t, "uefi") == 0;
}

bool vm_firmware_secure_boot(const json_t *config)
{
    return vm_firmware_uefi(config) && json_is_true(json_object_get(fw(config), "secure_boot"));
}

const char *vm_firmware_vars(const json_t *config)
{
    return vm_firmware_uefi(config) ? json_string_value(json_object_get(fw(config), "vars")) : NULL;
}

const char *vm_firmware_code_path(bool secure_boot)
{
    return secure_boot ? VM_OVMF_CODE_SECURE : VM_OVMF_CODE;
}

char *vm_firmware_new_vars_name(void)
{
    uint8_t id[16];
    char *out;
    uuid_generate_bytes(id);
    if (asprintf(&out, "nvram/%02x%02x%02x%02x.fd", id[0], id[1], id[2], id[3]) < 0)
        return NULL;
    return out;
}

int vm_firmware_vars_create(const char *dir, const char *rel, const char *from, bool secure_boot)
{
    const char *code = vm_firmware_code_path(secure_boot);
    if (!from && (access(code, R_OK) != 0 ||
                  access(secure_boot ? VM_OVMF_VARS_SECURE : VM_OVMF_VARS, R_OK) != 0))
        return hvm_error(ENOENT, "%s: UEFI firmware missing (install Debian's ovmf package, or "
                         "use --firmware bios)", access(code, R_OK) != 0 ? code :
                         secure_boot ? VM_OVMF_VARS_SECURE : VM_OVMF_VARS);
    char *abs = path_join(dir, rel);
    char *sub = path_join(dir, "nvram");
    int r = abs && sub ? path_mkdirs(sub) : hvm_error(ENOMEM, "out of memory");
    if (r == 0)
        r = file_copy(from ? from : secure_boot ? VM_OVMF_VARS_SECURE : VM_OVMF_VARS, abs);
    /* (the template is the package's, 0644: the VM's copy is the VM's) */
    if (r == 0) {
        vm_mode_dir(sub);
        vm_mode_file(abs);
    }
    free(abs);
    free(sub);
    return r;
}

json_t *vm_firmware_object(bool uefi, const char *vars, bool secure_boot)
{
    if (!uefi)
        return json_pack("{s:s}", "type", "bios");
    return json_pack("{s:s, s:s, s:b}", "type", "uefi", "vars", vars, "secure_boot", secure_boot);
}
