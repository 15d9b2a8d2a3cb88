#!/bin/sh
# hvm reads VHDX files that qemu-img made (fixed and dynamic, block sizes 1,
# 8 and 256 MiB, qemu-io writes at odd places) byte for byte like
# 'qemu-img convert -O raw'; info names the format and its fields; check is
# clean; convert to VHD keeps the bytes; vm create --disk turns a VHDX into
# the VM's VHD.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"
have qemu-img || skip "qemu-img not installed"
have qemu-io || skip "qemu-io not installed"

qwrite() { # FILE PATTERN OFFSET LENGTH
    qemu-io -f vhdx -c "write -P $2 $3 $4" "$1" >/dev/null
}
n=0
for spec in dynamic:1M dynamic:8M dynamic:256M fixed:1M fixed:32M; do
    sub=${spec%%:*} bs=${spec#*:}
    n=$((n + 1))
    f=$sub-$bs.vhdx
    qemu-img create -q -f vhdx -o subformat=$sub,block_size=$bs,log_size=1M "$f" 72M
    # A sector inside a written page, across block boundaries, the last sector.
    qemu-io -f vhdx -c "write -P 0x5a 0 4096" -c "write -P 0x11 1536 512" \
        -c "write -P 0x22 $((3 << 20)) $((5 << 20))" \
        -c "write -P 0x33 $((72 * 1048576 - 512)) 512" \
        -c "write -P 0x44 $((40 * 1048576 + 7 * 512)) $((64 * 1024 + 512))" "$f" >/dev/null
    qemu-img convert -f vhdx -O raw "$f" ref.raw
    same_content "$f" ref.raw
    "$HVM" vhd info --json "$f" >i.json
    [ "$(jget i.json format)" = vhdx ] || fail "$f: format $(jget i.json format)"
    [ "$(jget i.json type)" = "$sub" ] || fail "$f: type $(jget i.json type)"
    [ "$(jget i.json virtual_size)" = $((72 << 20)) ] || fail "$f: virtual size"
    want_bs=$(( ${bs%M} << 20 ))
    [ "$(jget i.json block_size)" = $want_bs ] || fail "$f: block size $(jget i.json block_size)"
    [ "$(jget i.json logical_sector_size)" = 512 ] || fail "$f: logical sector size"
    [ "$(jget i.json log)" = clean ] || fail "$f: log $(jget i.json log)"
    check_clean "$f"
    # Through the copy engine into a VHD, and back out.
    "$HVM" vhd convert "$f" out.vhd
    same_content out.vhd ref.raw
    rm -f out.vhd ref.raw
done

# Served read-only over NBD (a writable serve is refused): qemu-img reads
# the same bytes.
qemu-img convert -f vhdx -O raw dynamic-8M.vhdx ref.raw
expect_fail 2 "$HVM" vhd serve dynamic-8M.vhdx --socket "$T/w.sock"
last_error | grep -q "dynamic-8M.vhdx: a VHDX image; hvm serves VHDX with --read-only only" ||
    fail "writable serve of a VHDX: $(last_error)"
serve_start dynamic-8M.vhdx "$T/d.sock" --read-only
qemu-img convert -f raw -O raw "$URI" served.raw
serve_stop
cmp served.raw ref.raw || fail "served VHDX differs from qemu-img's view"
rm -f served.raw ref.raw

# Text info names the format and the creator qemu-img wrote.
"$HVM" vhd info dynamic-8M.vhdx >info.txt
grep -q "^format *vhdx$" info.txt || { cat info.txt; fail "info text: format"; }
grep -q "^creator *QEMU" info.txt || { cat info.txt; fail "info text: creator"; }

# VHDX is read-only in hvm for now: a write says so, naming the file.
qemu-img create -q -f vhdx small.vhdx 16M
expect_fail 2 "$HVM" vhd resize small.vhdx --size 32M
last_error | grep -q "small.vhdx: a VHDX image; hvm reads VHDX but does not write it yet" || fail "resize of a VHDX: $(last_error)"

# vm create --disk converts a VHDX into the VM's (dynamic VHD) disk.
qwrite small.vhdx 0x77 $((1 << 20)) 65536
qemu-img convert -f vhdx -O raw small.vhdx small.raw
export HVM_STORE="$T/store"
"$HVM" vm create v --disk small.vhdx >/dev/null
disk=$(find "$HVM_STORE" -name "*.vhd" | head -1)
[ -n "$disk" ] || fail "vm create --disk x.vhdx: no VHD in the store"
same_content "$disk" small.raw
echo ok
