#include "cli/cli.h"
int cmd_vhd_serve(int argc, char **argv) { (void)argc; (void)argv; return cli_failf("serve: not built yet"); }
