/* The NBD server: see server.h. */
typedef int hvm_placeholder;
