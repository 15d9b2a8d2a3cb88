/* hvm vm serve VM [--drive N] [--checkpoint X] --socket PATH */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vm_common.h"
#include "disk/disk.h"
#include "util/error.h"
#include "vm/vm.h"

static const char serve_usage[] =
    "usage: hvm vm serve VM [--drive N] [--checkpoint X] --socket PATH [--read-only]\n"
    "                       [--store DIR]\n"
    "\n"
    "Serves one of the VM's drives (default 0) over NBD on the Unix socket PATH\n"
    "until SIGTERM or SIGINT: the current disk read-write (the VM must be Off),\n"
    "or with --checkpoint the disk of that checkpoint, read-only. The VM stays\n"
    "locked (busy for other hvm commands) while served.\n"
    "Limits (environment, see docs/nbd.md): HVM_NBD_HANDSHAKE_TIMEOUT (seconds,\n"
    "default 10), HVM_NBD_IDLE_TIMEOUT (seconds, default 0: none),\n"
    "HVM_NBD_MAX_CLIENTS (default and most 16).\n";

int cmd_vm_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"drive", required_argument, NULL, 'd'},
        {"checkpoint", required_argument, NULL, 'c'},
        {"socket", required_argument, NULL, 's'},
        {"read-only", no_argument, NULL, 'r'},
        {"store", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *checkpoint = NULL, *socket_path = NULL, *store_dir = NULL;
    int slot = 0, c;
    bool read_only = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': slot = atoi(optarg); break;
        case 'c': checkpoint = optarg; break;
        case 's': socket_path = optarg; break;
        case 'r': read_only = true; break;
        case 'S': store_dir = optarg; break;
        case 'h': return cli_help(serve_usage);
        default: return cli_usage_error(serve_usage, "bad option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(serve_usage, "serve takes one VM");
    if (!socket_path)
        return cli_usage_error(serve_usage, "--socket is required");
    cli_serve_signals();
    struct store s;
    struct vm *vm;
    if (vm_cli_open(store_dir, argv[optind], &s, &vm))
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
