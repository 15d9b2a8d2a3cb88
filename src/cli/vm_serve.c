/* hvm vm serve VM [--drive N] [--checkpoint X] --socket PATH */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_common.h"
#include "disk/disk.h"
#include "util/error.h"
#include "vm/vm.h"

int cmd_vm_serve(const struct cli_args *a)
{
    const char *checkpoint = cli_text(a, "checkpoint"), *socket_path = cli_text(a, "socket");
    const char *store_dir = cli_text(a, "store");
    int slot = (int)cli_int_or(a, "drive", 0);
    bool read_only = cli_flag(a, "read-only");
    cli_serve_signals();
    struct store s;
    struct vm *vm;
    if (vm_cli_open(store_dir, cli_pos(a, 0), &s, &vm))
        return EXIT_ERROR;
    int r = 0, rc = EXIT_ERROR;
    json_t *config = vm_config(vm);
    if (checkpoint) {
        json_t *cp = vm_checkpoint_find(vm, checkpoint, &r);
        config = cp ? json_object_get(cp, "config") : NULL;
        read_only = true;
    } else if (!read_only && strcmp(vm_state(vm), "Off") != 0) {
        r = hvm_error(EBUSY, "VM '%s' is %s: its disk can be served read-write only when it "
                      "is Off (use --read-only)", vm->name, vm_state(vm));
        config = NULL;
    }
    json_t *drive = config ? vm_config_drive(config, slot) : NULL;
    if (config && !drive)
        r = hvm_error(ENOENT, "VM '%s' has no drive %d%s%s", vm->name, slot,
                      checkpoint ? " in checkpoint " : "", checkpoint ? checkpoint : "");
    if (drive) {
        char *path = vm_path(vm, json_string_value(json_object_get(drive, "file")));
        struct disk *d;
        /* A checkpoint's layer is protected; read-only needs no force. */
        if (path && disk_open(path, read_only ? DISK_OPEN_READ_ONLY : 0, &d) == 0) {
            char label[512];
            snprintf(label, sizeof label, "VM '%s' drive %d%s%s", vm->name, slot,
                     checkpoint ? " at checkpoint " : "", checkpoint ? checkpoint : "");
            rc = cli_serve_disk(d, socket_path, read_only, label);
            disk_close(d);
        } else {
            rc = cli_fail();
        }
        free(path);
    } else {
        rc = cli_fail();
    }
    vm_close(vm);
    store_close(&s);
    return rc;
}
