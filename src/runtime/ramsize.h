/* The size of the guest RAM block QEMU is given, and why it is not always
 * the configured memory size (see ramsize.c). */
#ifndef HVM_RUNTIME_RAMSIZE_H
#define HVM_RUNTIME_RAMSIZE_H

#include <stdbool.h>
#include <stdint.h>

/* What a guest booted now gets under TCG on top of its configured memory. */
#define RAMSIZE_TCG_PAD (8u << 10)

/* The RAM block for a fresh boot of a guest with `memory` bytes. */
uint64_t ramsize_for_boot(uint64_t memory, bool tcg);
/* The length of the guest RAM block ("ram" or "pc.ram") recorded at the
 * start of a QEMU memory state file: a state loads only into a RAM block of
 * the size it was saved from. -ENOENT/-EINVAL (no error recorded) when the
 * file cannot be read or is not a state hvm knows. */
int ramsize_of_state(const char *path, uint64_t *bytes);
/* The same from the file's first bytes (for tests). */
int ramsize_of_state_header(const uint8_t *buf, size_t len, uint64_t *bytes);
/* Is a pre-copy of this RAM block (memory copied while the guest runs)
 * exact? Always under KVM; under TCG only for a block QEMU 7.2 syncs
 * page by page (see ramsize.c). */
bool ramsize_precopy_exact(uint64_t ram_bytes, bool tcg);
#endif
