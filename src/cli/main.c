/* hvm <noun> <verb> ...: the entry point. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/vm_common.h"

static const char usage[] =
    "usage: hvm <noun> <verb> [options]\n"
    "\n"
    "  hvm vhd ...         virtual hard disks: create, diff, info, check, convert,\n"
    "                      merge, rebase, compact, resize, serve (hvm vhd --help)\n"
    "  hvm vm ...          virtual machines: create, list, show, set, rename, delete,\n"
    "                      check, serve, export, import, move (hvm vm --help)\n"
    "  hvm checkpoint ...  checkpoint trees: take, list, revert, apply, rename, show,\n"
    "                      delete (hvm checkpoint --help)\n"
    "  hvm base ...        base images VMs are made from: list, remove\n"
    "  hvm host ...        the host's automatic actions: start, stop (hvm.service)\n"
    "\n"
    "Every verb takes --help. Exit status: 0 success, 1 check found problems,\n"
    "2 error (the message says which file and why).\n";

static const struct command nouns[] = {
    {"vhd", cmd_vhd, "virtual hard disks"},
    {"vm", cmd_vm, "virtual machines"},
    {"checkpoint", cmd_checkpoint, "checkpoints of a VM"},
    {"base", cmd_base, "base images"},
    {"host", cmd_host, "automatic start and stop of the store's VMs"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(usage, "missing command");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0)
        return cli_help(usage);
    if (strcmp(argv[1], "--version") == 0) {
        printf("hvm 0.1.0\n");
        return EXIT_OK;
    }
    for (const struct command *c = nouns; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    return cli_usage_error(usage, "unknown command '%s'", argv[1]);
}
