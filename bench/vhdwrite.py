#!/usr/bin/python3
"""Test data for the benchmarks: the same writes applied to a VHD layer, a
qcow2 layer (through qemu-io) and a raw file, so that every tool under
comparison reads exactly the same bytes.

The VHD writer is deliberately independent of hvm: it appends blocks the way
Windows lays them out (data on a 4 KiB boundary, bitmap just before it), sets
the bitmap bits of a differencing disk, and rewrites the BAT and the footer
at the end. It only ever adds to a disk that hvm created (footer, header and
BAT already in place).

usage:
  vhdwrite.py plan SEED LAYER DISK_SIZE CHUNK FRACTION > PLAN
      one write per line: "offset length byte"; FRACTION of the disk's
      CHUNK-sized slots, picked at random, each filled with one byte value
  vhdwrite.py vhd FILE PLAN      apply PLAN to an existing dynamic/diff VHD
  vhdwrite.py raw FILE PLAN      apply PLAN to a raw file (created sparse)
  vhdwrite.py qemu-io FILE FMT PLAN   apply PLAN through qemu-io
"""
import os
import random
import struct
import subprocess
import sys

SECTOR = 512
ALIGN = 4096
UNUSED = 0xFFFFFFFF


def read_plan(path):
    plan = []
    with open(path) as f:
        for line in f:
            off, length, byte = line.split()
            plan.append((int(off), int(length), int(byte)))
    return plan


def cmd_plan(seed, layer, disk_size, chunk, fraction):
    rng = random.Random(seed * 1000 + layer)
    slots = disk_size // chunk
    picked = rng.sample(range(slots), int(slots * fraction))
    out = sys.stdout
    for i, slot in enumerate(picked):
        # Non-zero bytes: a zero write could legitimately be skipped.
        byte = 1 + (layer * 53 + i) % 255
        out.write("%d %d %d\n" % (slot * chunk, chunk, byte))


def apply_raw(path, plan):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        cache = {}
        for off, length, byte in plan:
            buf = cache.get((length, byte))
            if buf is None:
                buf = cache[(length, byte)] = bytes([byte]) * length
            os.pwrite(fd, buf, off)
    finally:
        os.close(fd)


def apply_vhd(path, plan):
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        footer = os.pread(fd, SECTOR, size - SECTOR)
        if footer[:8] != b"conectix":
            sys.exit("%s: no footer at the end" % path)
        dtype = struct.unpack(">I", footer[60:64])[0]
        if dtype not in (3, 4):
            sys.exit("%s: not a dynamic or differencing VHD" % path)
        diff = dtype == 4
        header_at = struct.unpack(">Q", footer[16:24])[0]
        header = os.pread(fd, 1024, header_at)
        table_at = struct.unpack(">Q", header[16:24])[0]
        entries = struct.unpack(">I", header[28:32])[0]
        bs = struct.unpack(">I", header[32:36])[0]
        bitmap_bytes = -(-(bs // SECTOR // 8) // SECTOR) * SECTOR
        bat = list(struct.unpack(">%dI" % entries, os.pread(fd, entries * 4, table_at)))
        end = size - SECTOR
        bitmaps = {}
        cache = {}
        for off, length, byte in plan:
            buf = cache.get((length, byte))
            if buf is None:
                buf = cache[(length, byte)] = bytes([byte]) * length
            pos = 0
            while pos < length:
                block, in_block = divmod(off + pos, bs)
                n = min(bs - in_block, length - pos)
                if bat[block] == UNUSED:
                    start = -(-(end + bitmap_bytes) // ALIGN) * ALIGN - bitmap_bytes
                    if start > end:
                        os.pwrite(fd, bytes(start - end), end)
                    bat[block] = start // SECTOR
                    bits = bytearray(b"\x00" if diff else b"\xff") * bitmap_bytes
                    bitmaps[block] = bits
                    os.pwrite(fd, bits, start)
                    end = start + bitmap_bytes + bs
                elif diff and block not in bitmaps:
                    bitmaps[block] = bytearray(os.pread(fd, bitmap_bytes, bat[block] * SECTOR))
                data_at = bat[block] * SECTOR + bitmap_bytes + in_block
                os.pwrite(fd, buf[pos:pos + n] if n != length else buf, data_at)
                if diff:
                    bits = bitmaps[block]
                    for s in range(in_block // SECTOR, (in_block + n) // SECTOR):
                        bits[s // 8] |= 0x80 >> (s % 8)
                pos += n
        for block, bits in bitmaps.items():
            os.pwrite(fd, bytes(bits), bat[block] * SECTOR)
        os.pwrite(fd, struct.pack(">%dI" % entries, *bat), table_at)
        # The footer moves to the new end; its content does not change.
        os.ftruncate(fd, end)
        os.pwrite(fd, footer, end)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def apply_qemu_io(path, fmt, plan):
    # One qemu-io process per few thousand writes: the image is opened once.
    batch = 4096
    for i in range(0, len(plan), batch):
        args = ["qemu-io", "-f", fmt, "-t", "writeback"]
        for off, length, byte in plan[i:i + batch]:
            args += ["-c", "write -q -P %d %d %d" % (byte, off, length)]
        args.append(path)
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    verb = argv[1]
    if verb == "plan" and len(argv) == 7:
        cmd_plan(int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5]), float(argv[6]))
    elif verb == "vhd" and len(argv) == 4:
        apply_vhd(argv[2], read_plan(argv[3]))
    elif verb == "raw" and len(argv) == 4:
        apply_raw(argv[2], read_plan(argv[3]))
    elif verb == "qemu-io" and len(argv) == 5:
        apply_qemu_io(argv[2], argv[3], read_plan(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
