/* hvm __gendoc: the manual pages and the bash completion, generated at
 * build time from the command table (not yet). */
#include "cli/cli.h"
#include "cli/table.h"

int cli_gendoc(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("__gendoc: not yet");
}
