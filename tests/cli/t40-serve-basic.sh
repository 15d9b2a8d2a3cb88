#!/bin/sh
# hvm vhd serve: NBD clients (qemu-io, qemu-img, nbdinfo, nbdcopy) read and
# write a dynamic VHD through a Unix socket; holes show in the map; a
# read-only server refuses writes; SIGTERM stops cleanly and the disk then
# checks clean and converts to the expected bytes.
. "$TESTS/cli/lib.sh"
for tool in qemu-io qemu-img nbdinfo nbdcopy; do
    command -v $tool >/dev/null 2>&1 || skip "$tool not installed"
done

# qio CMD...: qemu-io over the current URI; fails on any error message.
qio() {
    args=""
    for c in "$@"; do args="$args -c '$c'"; done
    eval qemu-io ${QIO_FLAGS:-} -f raw $args "'$URI'" >"$T/qio.out" 2>&1 || { cat "$T/qio.out" >&2; fail "qemu-io $*"; }
    if grep -qi "fail\|error\|denied\|not permitted" "$T/qio.out"; then
        cat "$T/qio.out" >&2
        fail "qemu-io $*"
    fi
}

MiB=1048576
"$HVM" vhd create d.vhd --size 64M
"$HVM" vhd serve --help | grep -q "usage: hvm vhd serve" || fail "serve --help"

serve_start d.vhd "$T/d.sock"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "socket mode is $(stat -c %a "$SOCK"), not 600"
[ "$(nbdinfo --size "$URI")" = $((64 * MiB)) ] || fail "nbdinfo --size"
nbdinfo "$URI" >info.txt
grep -q "can_flush: true" info.txt || fail "no flush"
grep -q "can_trim: true" info.txt || fail "no trim"
grep -q "can_zero: true" info.txt || fail "no write zeroes"
grep -q "can_fua: true" info.txt || fail "no FUA"
grep -q "is_read_only: false" info.txt || fail "read-only?"
grep -q "base:allocation" info.txt || fail "no base:allocation context"

# Aligned, unaligned, FUA, across a block boundary, and the last bytes.
qio "write -P 0x5a 1M 128k" \
    "write -P 0x11 3000 5000" \
    "write -f -P 0x22 2093000 12345" \
    "write -P 0x33 $((64 * MiB - 700)) 700" \
    "write -z 1200k 8k" \
    "flush" \
    "read -P 0x5a 1M 100k" \
    "read -P 0 1200k 8k" \
    "read -P 0x11 3000 5000" \
    "read -P 0x22 2093000 12345" \
    "read -P 0x33 $((64 * MiB - 700)) 700" \
    "read -P 0 0 3000" \
    "read -P 0 40M 1M"

# What should be there, built independently of hvm.
$PY - <<'EOF'
M = 1 << 20
b = bytearray(64 * M)
def put(off, n, v): b[off:off + n] = bytes([v]) * n
put(M, 128 << 10, 0x5a); put(3000, 5000, 0x11); put(2093000, 12345, 0x22)
put(64 * M - 700, 700, 0x33); put(1200 << 10, 8 << 10, 0)
open("expect.raw", "wb").write(b)
EOF
qemu-img compare -f raw -F raw "$URI" expect.raw >/dev/null || fail "served content differs"

# Block status: the blocks written are data; the rest (2M..62M) is a hole.
qemu-img map -f raw --output=json "$URI" >map.json
$PY - map.json <<'EOF' || fail "qemu-img map over NBD: wrong holes"
import json, sys
M = 1 << 20
m = json.load(open(sys.argv[1]))
def at(off):
    return next(e for e in m if e["start"] <= off < e["start"] + e["length"])
assert at(0)["data"] and at(M)["data"] and at(3 * M)["data"], m  # written blocks
for off in (4 * M, 10 * M, 40 * M, 61 * M):
    e = at(off)
    assert e["zero"] and not e["data"], (off, e)
assert at(63 * M)["data"], m
assert sum(e["length"] for e in m) == 64 * M
EOF
nbdinfo --map "$URI" >map.txt
grep -q "hole,zero" map.txt || { cat map.txt >&2; fail "nbdinfo --map shows no hole"; }

# Several connections at once (nbdcopy uses multi-conn): the same bytes.
nbdcopy "$URI" copy.raw
cmp copy.raw expect.raw || fail "nbdcopy read differs"
serve_stop

check_clean_vhd() {
    "$HVM" vhd check "$1" >"$T/chk" 2>&1 || { cat "$T/chk" >&2; fail "check $1"; }
}
check_clean_vhd d.vhd
same_content d.vhd expect.raw

# Served again: the data persisted; writes through nbdcopy (4 connections).
$PY - <<'EOF'
import random
r = random.Random(40)
b = bytearray(open("expect.raw", "rb").read())
for _ in range(40):
    off = r.randrange(0, len(b) - 300000); n = r.randrange(1, 300000)
    b[off:off + n] = r.randbytes(n)
open("expect2.raw", "wb").write(b)
EOF
serve_start d.vhd "$T/d.sock"
qemu-img compare -f raw -F raw "$URI" expect.raw >/dev/null || fail "data did not persist"
nbdcopy expect2.raw "$URI"
qemu-img compare -f raw -F raw "$URI" expect2.raw >/dev/null || fail "nbdcopy write differs"
serve_stop
check_clean_vhd d.vhd
same_content d.vhd expect2.raw

# Read-only: reads work, every write is refused, the file does not change.
before=$(sha d.vhd)
serve_start d.vhd "$T/ro.sock" --read-only
nbdinfo "$URI" | grep -q "is_read_only: true" || fail "not advertised read-only"
QIO_FLAGS=-r qio "read -P 0x11 3000 5000"
# Clients see READ_ONLY and refuse to open for writing; the server's own
# EPERM on a write request is tested with a raw client in t40-serve-errors.
set +e
qemu-io -f raw -c "write -P 1 0 4k" "$URI" >qio-ro.out 2>&1
set -e
grep -qi "permi\|read-only\|read only" qio-ro.out || { cat qio-ro.out >&2; fail "read-only write not refused"; }
if nbdcopy expect.raw "$URI" 2>/dev/null; then fail "nbdcopy wrote to a read-only export"; fi
qemu-img compare -f raw -F raw "$URI" expect2.raw >/dev/null || fail "read-only content"
serve_stop
[ "$(sha d.vhd)" = "$before" ] || fail "read-only serve changed the file"

# A raw file (--raw), served read-write.
cp expect.raw plain.img
serve_start plain.img "$T/raw.sock" --raw
qio "write -P 0x44 5M 1M" "read -P 0x44 5M 1M" "read -P 0x11 3000 5000"
serve_stop
$PY - <<'EOF'
b = bytearray(open("expect.raw", "rb").read())
b[5 << 20:6 << 20] = b"\x44" * (1 << 20)
assert open("plain.img", "rb").read() == bytes(b), "raw file content"
EOF

echo "ok"
