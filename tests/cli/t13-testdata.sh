#!/bin/sh
# The compatibility corpus in $SHARED/testdata/vhd (images written by
# Windows, VirtualBox, blktap and qemu): each opens, checks clean and reads
# as its writer meant (libvhdi and qemu-img as oracles); the broken ones are
# rejected with clear errors, and recovered where a good footer copy exists.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"
src="$SHARED/testdata/vhd"
[ -d "$src/go-vhd" ] || skip "no test corpus at $src"
cp -r "$src/go-vhd" "$src/dfvfs" .
chmod -R u+w go-vhd dfvfs
$PY -c 'import pyvhdi' 2>/dev/null && have_vhdi=1 || have_vhdi=
have qemu-img && have_qemu=1 || have_qemu=

hvm_read() { rm -f "$2"; "$HVM" vhd convert "$1" "$2" --type raw; }
vsize() { "$HVM" vhd info --json "$1" >"$T/.vs"; jget "$T/.vs" virtual_size; }

# 1. The sound images: open, info, check clean, read like the oracles.
for f in go-vhd/win8.vhd go-vhd/win8.1-1GB.vhd go-vhd/vbox.vhd go-vhd/qemu.vhd \
         go-vhd/xapi.vhd dfvfs/ext2.vhd; do
    "$HVM" vhd info "$f" >/dev/null
    "$HVM" vhd info --json "$f" >i.json
    [ "$(jget i.json type)" = dynamic ] || fail "$f: type $(jget i.json type)"
    check_clean "$f"
    hvm_read "$f" hvm.raw
    size=$(jget i.json virtual_size)
    [ "$(stat -c %s hvm.raw)" = "$size" ] || fail "$f: read size"
    # Never resized, so libvhdi's media size (the original size) is right.
    # (The 1 GiB one is left to qemu-img, whose compare skips holes.)
    if [ -n "$have_vhdi" ] && [ "$size" -le $((64 << 20)) ]; then
        rm -f vhdi.raw
        vhdi_read "$f" vhdi.raw
        cmp hvm.raw vhdi.raw || fail "$f: hvm and libvhdi read differently"
    fi
    if [ -n "$have_qemu" ]; then
        qemu-img compare -q --image-opts "$(qvpc "$f")" "$(qraw hvm.raw)" \
            || fail "$f: hvm and qemu-img read differently"
    fi
done
# Sizes as their writers meant: current size, CHS size only as information.
[ "$(vsize go-vhd/win8.vhd)" = 41943040 ] || fail "win8 size"
[ "$(vsize go-vhd/vbox.vhd)" = 41943040 ] || fail "vbox size"
[ "$(vsize go-vhd/xapi.vhd)" = 41943040 ] || fail "xapi size"
[ "$(vsize go-vhd/qemu.vhd)" = 41953280 ] || fail "qemu size"
[ "$(vsize go-vhd/win8.1-1GB.vhd)" = 1073741824 ] || fail "win8.1 size"
"$HVM" vhd info --json go-vhd/win8.vhd >i.json
[ "$(jget i.json creator application)" = "win " ] || fail "win8 creator"
[ "$(jget i.json unique_id)" = adb71975-4b5b-0b40-b025-d06dab31b26f ] || fail "win8 id"
"$HVM" vhd info --json go-vhd/xapi.vhd >i.json
[ "$(jget i.json creator application)" = "tap " ] || fail "xapi creator"
# The empty disks read as zeros.
hvm_read go-vhd/win8.vhd w.raw
cmp w.raw /dev/zero 2>&1 | grep -q EOF || fail "win8.vhd is not all zeros"
rm -f w.raw hvm.raw vhdi.raw
# ext2.vhd holds an ext2 file system (magic 0xEF53 at 1024+56), exactly as
# qemu-img -f vpc reads it (qemu trusts CHS for its own images: same size).
hvm_read dfvfs/ext2.vhd e.raw
[ "$(od -An -tx1 -j 1080 -N 2 e.raw | tr -d ' ')" = 53ef ] || fail "no ext2 superblock"
if [ -n "$have_qemu" ]; then
    rm -f q.raw
    qemu-img convert -f vpc -O raw dfvfs/ext2.vhd q.raw
    cmp e.raw q.raw || fail "ext2.vhd: hvm and qemu-img -f vpc read differently"
fi

# 2. win8-child.vhd (Windows 10) opens through its parent by the relative
#    locator .\win8.vhd, and reads like libvhdi reads the pair.
"$HVM" vhd info --chain --json go-vhd/win8-child.vhd >c.json
[ "$(jget c.json chain 0 type)" = differencing ] || fail "child type"
[ "$(jget c.json chain 0 parent_file)" = go-vhd/win8.vhd ] || fail "parent found at $(jget c.json chain 0 parent_file)"
[ "$(jget c.json chain 0 parent_timestamp)" = 0 ] || fail "parent timestamp"
[ "$(jget c.json chain 1 file)" = go-vhd/win8.vhd ] || fail "chain layer 1"
$PY - c.json <<'EOF' || fail "win8-child locators"
import json, sys
locs = {l["code"]: l for l in json.load(open(sys.argv[1]))["chain"][0]["locators"]}
assert locs["W2ku"]["path"] == r"C:\Users\sergi\Downloads\win8.vhd", locs
assert locs["W2ru"]["path"] == r".\win8.vhd", locs
# Windows writes the data space in bytes.
assert locs["W2ku"]["space"] == 4096 and locs["W2ru"]["space"] == 65536, locs
EOF
check_clean go-vhd/win8-child.vhd
hvm_read go-vhd/win8-child.vhd child.raw
[ "$(stat -c %s child.raw)" = 41943040 ] || fail "child size"
if [ -n "$have_vhdi" ]; then
    rm -f vhdi.raw
    vhdi_read go-vhd/win8-child.vhd vhdi.raw go-vhd/win8.vhd
    cmp child.raw vhdi.raw || fail "win8-child: hvm and libvhdi read differently"
fi
# Resolution order: without the relative locator the absolute one's file
# name beside the child is used; without both, the parent name's.
drop_locator() { # FILE CODE: blank that locator entry, fix the header checksum
    $PY - "$1" "$2" <<'EOF'
import struct, sys
path, code = sys.argv[1], sys.argv[2].encode()
with open(path, "r+b") as f:
    f.seek(512); h = bytearray(f.read(1024))
    for i in range(8):
        e = 576 + 24 * i
        if h[e:e + 4] == code:
            h[e:e + 24] = bytes(24)
    h[36:40] = bytes(4)
    h[36:40] = struct.pack(">I", ~sum(h) & 0xFFFFFFFF)
    f.seek(512); f.write(h)
EOF
}
cp go-vhd/win8-child.vhd go-vhd/c2.vhd
drop_locator go-vhd/c2.vhd W2ru
"$HVM" vhd info --chain --json go-vhd/c2.vhd >c.json
[ "$(jget c.json chain 0 parent_file)" = go-vhd/win8.vhd ] || fail "W2ku fallback"
drop_locator go-vhd/c2.vhd W2ku
"$HVM" vhd info --chain --json go-vhd/c2.vhd >c.json
[ "$(jget c.json chain 0 parent_file)" = go-vhd/win8.vhd ] || fail "parent name fallback"
check_clean go-vhd/c2.vhd
# Moved beside another folder: not found, and the message lists the paths.
mkdir elsewhere
cp go-vhd/win8-child.vhd elsewhere/
expect_fail 2 "$HVM" vhd info --chain elsewhere/win8-child.vhd
grep -q "elsewhere/win8.vhd" .err || fail "paths tried not named: $(last_error)"

# 3. fat-differential.vhd: its parent is not here. Opening it fails (exit 2)
#    naming the file, the parent and the paths tried; check says the same.
for cmd in "info --chain" "convert"; do
    if [ "$cmd" = convert ]; then
        expect_fail 2 "$HVM" vhd convert dfvfs/fat-differential.vhd out.raw --type raw
    else
        expect_fail 2 "$HVM" vhd $cmd dfvfs/fat-differential.vhd
    fi
    [ "$(wc -l <.err)" = 1 ] || fail "$cmd: not one line: $(last_error)"
    grep -q "dfvfs/fat-differential.vhd" .err || fail "$cmd: file not named"
    grep -q "fat-parent.vhd' not found" .err || fail "$cmd: parent not named"
    grep -q "tried: dfvfs/fat-parent.vhd" .err || fail "$cmd: paths tried not named"
done
[ ! -e out.raw ] || fail "a failed convert left its output"
# Without --chain, info shows the child itself.
"$HVM" vhd info dfvfs/fat-differential.vhd | grep -q '^type  *differencing' || fail "fat info"
set +e; "$HVM" vhd check dfvfs/fat-differential.vhd >chk.out 2>&1; rc=$?; set -e
[ $rc = 1 ] || [ $rc = 2 ] || fail "fat-differential check exited $rc"
grep -q "fat-parent.vhd' not found" chk.out || fail "check does not name the missing parent"

# 4. image.vhd and image-differential.vhd: both footer copies carry a bad
#    checksum (edited by hand). Detected, named, exit 2; nothing to recover.
for f in dfvfs/image.vhd dfvfs/image-differential.vhd; do
    for verb in check info repair; do
        expect_fail 2 "$HVM" vhd $verb "$f"
        grep -q "$f" .err || fail "$verb $f: file not named"
        grep -q "checksum" .err || fail "$verb $f: checksum not named: $(last_error)"
    done
    expect_fail 2 "$HVM" vhd convert "$f" x.raw --type raw
done
cmp dfvfs/image.vhd "$src/dfvfs/image.vhd" || fail "repair changed an unrepairable file"

# Recovery: with a valid copy at offset 0, the copy is used, check reports
# the damaged end (exit 1), repair rewrites it and then check is clean.
fix_footer() { # FILE WHICH(start|end|both)
    $PY - "$1" "$2" <<'EOF'
import os, struct, sys
path, which = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
with open(path, "r+b") as f:
    for off, name in ((0, "start"), (size - 512, "end")):
        if which not in (name, "both"):
            continue
        f.seek(off); b = bytearray(f.read(512))
        b[64:68] = bytes(4)
        b[64:68] = struct.pack(">I", ~sum(b) & 0xFFFFFFFF)
        f.seek(off); f.write(b)
EOF
}
cp dfvfs/image.vhd good.vhd
fix_footer good.vhd both
check_clean good.vhd
hvm_read good.vhd good.raw
cp dfvfs/image.vhd rec.vhd
fix_footer rec.vhd start
set +e; "$HVM" vhd check rec.vhd >chk.out 2>&1; rc=$?; set -e
[ $rc = 1 ] || { cat chk.out; fail "check of a damaged end exited $rc"; }
grep -q "footer at the end is damaged" chk.out || fail "damage not reported"
"$HVM" vhd info --json rec.vhd >i.json
jget i.json warning | grep -q "copy at offset 0" || fail "info: no warning"
hvm_read rec.vhd rec.raw
cmp rec.raw good.raw || fail "the copy at 0 does not read like the repaired file"
"$HVM" vhd repair rec.vhd >rep.out
grep -q "rewrote the footer" rep.out || fail "repair did not say what it did"
check_clean rec.vhd
hvm_read rec.vhd rec2.raw
cmp rec2.raw good.raw || fail "content changed by repair"
if [ -n "$have_qemu" ]; then
    rm -f q.raw
    qemu-img convert --image-opts "$(qvpc rec.vhd)" -O raw q.raw
    cmp rec2.raw q.raw || fail "repaired image.vhd: qemu-img reads differently"
fi
# The other way round: the end is good, the copy at 0 is damaged.
cp dfvfs/image.vhd rec0.vhd
fix_footer rec0.vhd end
set +e; "$HVM" vhd check rec0.vhd >chk.out 2>&1; rc=$?; set -e
[ $rc = 1 ] || { cat chk.out; fail "check of a damaged copy exited $rc"; }
grep -q "copy at offset 0 is damaged" chk.out || fail "damaged copy not reported"
"$HVM" vhd repair rec0.vhd >/dev/null
check_clean rec0.vhd
cmp -n 512 rec0.vhd good.vhd || fail "repair did not restore the copy at 0"
# image-differential.vhd: its header checksum is bad too. With the footer
# copy fixed the header is the problem, named as such; not repairable.
cp dfvfs/image-differential.vhd recd.vhd
fix_footer recd.vhd start
expect_fail 2 "$HVM" vhd check recd.vhd
grep -q "dynamic header checksum mismatch" .err || fail "header checksum: $(last_error)"
expect_fail 2 "$HVM" vhd repair recd.vhd
echo ok
