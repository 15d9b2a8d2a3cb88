/* Images of other hypervisors' formats (qcow2, VMDK, VHDX, VDI, QED).
 *
 * hvm does not read them itself: without this probe they would open as raw
 * bytes and a convert would copy their metadata as if it were the guest's
 * disk. They are recognised by their magic, named in errors and in info,
 * and turned into a raw file by qemu-img when the user asks for it. */
#ifndef HVM_DISK_FOREIGN_H
#define HVM_DISK_FOREIGN_H

#include <stdbool.h>
#include <stdint.h>

enum disk_foreign {
    DISK_FOREIGN_NONE, /* a VHD, a raw disk, or anything unrecognised */
    DISK_FOREIGN_QCOW2,
    DISK_FOREIGN_QCOW, /* version 1, the same magic as qcow2 */
    DISK_FOREIGN_VMDK, /* sparse ("KDMV", "COWD") or a text descriptor */
    DISK_FOREIGN_VHDX,
    DISK_FOREIGN_VDI,
    DISK_FOREIGN_QED,
};

/* What the file's first bytes say it is. A file too short for any magic, a
 * folder or a device is DISK_FOREIGN_NONE; -errno (message recorded) only
 * when it cannot be opened or read. *virtual_size is the size its header
 * claims (untrusted, for display), 0 when not known. It does not look for
 * a VHD footer: callers ask disk_is_vhd first (a VHD wins, whatever its
 * guest wrote at its start). */
int disk_foreign_probe(const char *path, enum disk_foreign *format, uint64_t *virtual_size);

/* "qcow2", "vmdk", ...: qemu-img's name of the format ("" for NONE). */
const char *disk_foreign_name(enum disk_foreign format);
/* "qcow2", "VMDK", ...: the name for messages. */
const char *disk_foreign_title(enum disk_foreign format);
/* The reverse of disk_foreign_name; false for a name that is not one of them. */
bool disk_foreign_from_name(const char *name, enum disk_foreign *format);

/* Records and returns the error for opening a foreign image as a disk:
 * "PATH: a qcow2 image, not VHD or raw; ..." naming how to convert it, or
 * for a VHDX where hvm cannot use one yet, how to convert it. */
int disk_foreign_refuse(const char *path, enum disk_foreign format);

/* 0 if path is a VHD; otherwise the error (recorded) for a file that
 * must be one: what it is and how to convert it. */
int disk_foreign_require_vhd(const char *path);

/* Can hvm convert this format (through qemu-img)? Not VHDX, not NONE. */
bool disk_foreign_convertible(enum disk_foreign format);

struct disk_progress;
/* Writes the disk that src (an image of the given format) holds into a new
 * raw file at raw_path with qemu-img, sparse: zeros are not written.
 * raw_path must not exist; it is removed again on failure. qemu-img's
 * progress goes to pr (out of 1000; pr may be NULL). */
int disk_foreign_to_raw(const char *src, enum disk_foreign format, const char *raw_path,
                        const struct disk_progress *pr);

/* The same into an NBD export on the Unix socket socket_path (hvm's own
 * server over a new disk, which must read as zeros and be at least as
 * large as src's disk): only src's data is written, nothing to a file. */
int disk_foreign_write_nbd(const char *src, enum disk_foreign format, const char *socket_path,
                           const struct disk_progress *pr);

/* The size of src's disk, as qemu-img reads it. */
int disk_foreign_virtual_size(const char *src, enum disk_foreign format, uint64_t *size);

#endif
