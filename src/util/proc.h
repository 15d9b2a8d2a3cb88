/* Running another program and collecting what it writes. */
#ifndef HVM_UTIL_PROC_H
#define HVM_UTIL_PROC_H

/* Runs argv (argv[0] looked up in PATH unless exe names the file), with
 * standard input from /dev/null, SIGPIPE at its default and no signal
 * blocked, whatever the caller ignores or blocks. *out and *err get what it
 * wrote on standard output and error (malloc'd, NUL-terminated), *status
 * its exit status (128 + the signal when killed, 127 when it could not be
 * run). Reading ends when both pipes end, or when the program has exited
 * and nothing is left to read: a process it leaves behind holding them
 * does not hold the caller. 0, or -errno when it could not be started. */
int proc_capture(const char *exe, const char *const *argv, int *status, char **out, char **err);

#endif
