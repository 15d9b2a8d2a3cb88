#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/size.h"

int cli_fail(void)
{
    const char *m = hvm_error_message();
    char *owner = cli_owner_explain(m);
    fprintf(stderr, "hvm: %s\n", owner ? owner : m[0] ? m : "failed");
    free(owner);
    return EXIT_ERROR;
}

int cli_failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hvm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_ERROR;
}

int cli_size(const char *option, const char *text, uint64_t *out)
{
    int r = size_parse(text, out);
    if (r == -ERANGE)
        return cli_failf("%s: '%s' is too large a size", option, text);
    if (r < 0)
        return cli_failf("%s: '%s' is not a size (digits and K, M, G or T)", option, text);
    return EXIT_OK;
}

int cli_print_json(json_t *value)
{
    if (!value)
        return cli_failf("out of memory");
    json_dumpf(value, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(value);
    return EXIT_OK;
}
