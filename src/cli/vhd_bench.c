#include "cli/cli.h"
int cmd_vhd_bench(int argc, char **argv) { (void)argc; (void)argv; return cli_failf("bench: not built yet"); }
