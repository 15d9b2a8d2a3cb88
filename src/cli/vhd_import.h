/* hvm vhd convert of a foreign image into a fixed or dynamic VHD, streamed
 * by qemu-img through hvm's own NBD server (vhd_import.c). */
#ifndef HVM_CLI_VHD_IMPORT_H
#define HVM_CLI_VHD_IMPORT_H

#include <stdint.h>

#include "disk/foreign.h"
#include "disk/ops.h"

/* Writes dst (which must not exist; complete or not at all) from src, an
 * image of format foreign. 0 or -errno, the message recorded. */
int cli_convert_foreign(const char *src, enum disk_foreign foreign, const char *dst,
                        enum disk_format format, uint32_t block_size,
                        const struct disk_progress *pr);

#endif
