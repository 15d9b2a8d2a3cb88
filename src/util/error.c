#include "util/error.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char message[1024];

int hvm_error(int err, const char *fmt, ...)
{
    /* Formatted aside first: callers wrap the previous message
     * (hvm_error(e, "%s: %s", name, hvm_error_message())). */
    char text[sizeof message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(message, text, sizeof message);
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
