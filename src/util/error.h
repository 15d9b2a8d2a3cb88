/* One place for error messages: lower layers record a message with the file
 * and the cause, return a negative errno, and only cli/ prints it. */
#ifndef HVM_UTIL_ERROR_H
#define HVM_UTIL_ERROR_H

#include <stdarg.h>

/* Records "fmt..." as the current error and returns -err (err > 0), so that
 * callers can write: return hvm_error(EINVAL, "%s: bad cookie", path); */
int hvm_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last recorded message ("" when none). Thread-local. */
const char *hvm_error_message(void);

/* Forget the current message. */
void hvm_error_clear(void);

#endif
