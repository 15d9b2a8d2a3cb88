/* Structural check and safe repair of one VHD file. */
#ifndef HVM_VHD_CHECK_H
#define HVM_VHD_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#define VHD_CHECK_MAX_ITEMS 64

struct vhd_check_report {
    bool unreadable;          /* could not be opened at all: message holds why */
    char message[512];
    unsigned n_problems;
    char problems[VHD_CHECK_MAX_ITEMS][256];
    unsigned n_notes;         /* harmless findings (leaked space, recovered footer) */
    char notes[VHD_CHECK_MAX_ITEMS][256];
    uint64_t leaked_bytes;
    uint32_t blocks_allocated;
    bool footer_copy_mismatch;
};

/* Checks both footers, checksums, the header, every BAT entry (inside the
 * file, no overlaps), bitmaps' place, locators. Chain identity is checked by
 * disk/ (opening the parent) and added by the caller. */
int vhd_check(const char *path, struct vhd_check_report *rep);

/* Fixes what can be fixed safely: footer from its copy (or the copy from the
 * footer), leaked space (blocks packed, file truncated). A header with a bad
 * checksum is not rewritten: it has no copy, so a damaged field cannot be
 * told from a good one. Reports what it did in rep->notes. */
int vhd_repair(const char *path, struct vhd_check_report *rep);

#endif
