/* hvm <noun> <verb> ...: the entry point; the command table (table.c)
 * says what each verb takes. */
#include "cli/table.h"

int main(int argc, char **argv)
{
    return cli_run(argc, argv);
}
