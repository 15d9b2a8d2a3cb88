/* hvm vm export | import | move | serve */
#include "cli/cli.h"
#include "cli/vm_common.h"

int cmd_vm_export(int argc, char **argv) { (void)argc; (void)argv; return cli_failf("export: not built yet"); }
int cmd_vm_import(int argc, char **argv) { (void)argc; (void)argv; return cli_failf("import: not built yet"); }
int cmd_vm_move(int argc, char **argv) { (void)argc; (void)argv; return cli_failf("move: not built yet"); }
int cmd_vm_serve(int argc, char **argv) { (void)argc; (void)argv; return cli_failf("vm serve: not built yet"); }
