#include "util/error.h"

#include <stdio.h>

static _Thread_local char message[1024];

int hvm_error(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return err > 0 ? -err : err;
}

const char *hvm_error_message(void)
{
    return message;
}

void hvm_error_clear(void)
{
    message[0] = '\0';
}
