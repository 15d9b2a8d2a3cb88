#!/bin/sh
# Images of other formats: qcow2, VMDK, VDI and QED are recognised by their
# magic and refused (one line naming the format and --from-format) instead
# of being read as raw bytes; `vhd convert --from-format` converts them
# through qemu-img (into a VHD streamed through hvm's NBD server, into raw
# directly), exactly (qemu-img compare) and sparse, leaving no temporary on
# any path; VHDX is read by hvm itself. info, check, serve, vm create/set name them.
. "$TESTS/cli/lib.sh"
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || skip "qemu-img/qemu-io not installed"
export HVM_STORE="$T/store"
# Streaming into a VHD serves it on a socket in a private folder under TMPDIR.
mkdir "$T/tmp"
export TMPDIR="$T/tmp"

one_line() { # CONTEXT TEXT: the last expect_fail printed one line with TEXT
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err"; fail "$1: not one line"; }
    last_error | grep -qF -- "$2" || fail "$1: does not say '$2': $(last_error)"
}
no_temporaries() {
    left=$(ls -a "$T" | grep -e '\.converting\.' || true)
    [ -z "$left" ] || fail "$1: temporaries left: $left"
    [ -z "$(ls -A "$T/tmp")" ] || fail "$1: left in TMPDIR: $(ls -A "$T/tmp")"
}
# same FMT IMAGE RESULT.vhd: qemu-img reads both as the same disk
same_vhd() {
    qemu-img compare --image-opts "driver=$1,file.filename=$T/$2" \
        "driver=vpc,force_size_calc=current_size,file.filename=$T/$3" >/dev/null ||
        fail "$3 does not read as $2"
}
json_get() { # JSON-FILE PYTHON-EXPR (d is the document)
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}
allocated() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }
title() { case $1 in qcow2) echo qcow2 ;; *) echo "$1" | tr a-z A-Z ;; esac; }

"$HVM" vhd convert --help >h.txt
grep -q -- "--from-format auto|qcow2" h.txt || fail "convert --help does not document --from-format"

for f in qcow2 vmdk vdi qed; do
    qemu-img create -q -f $f in.$f 64M
    qemu-io -f $f -c 'write -P 0x5a 1M 64k' -c 'write -P 0xa5 40M 512' in.$f >/dev/null

    # Without --from-format: refused, naming the format and the option.
    expect_fail 2 "$HVM" vhd convert in.$f out.vhd
    one_line "convert $f" "in.$f: a $(title $f) image, not VHD or raw; 'hvm vhd convert --from-format $f' converts it"
    [ ! -e out.vhd ] || fail "a refused convert of $f created out.vhd"

    # info names the format (text and JSON), not "type raw".
    "$HVM" vhd info in.$f >info.txt
    grep -qxF "format             $f (not VHD; hvm vhd convert --from-format $f converts it)" info.txt ||
        { cat info.txt; fail "info $f does not name the format"; }
    ! grep -q "^type" info.txt || fail "info $f still shows a type"
    "$HVM" vhd info --json in.$f >info.json
    [ "$(json_get info.json "d['format']")" = $f ] || fail "info --json $f: format"
    [ "$(json_get info.json "d['virtual_size']")" = $((64 << 20)) ] || fail "info --json $f: size"
    [ "$(json_get info.json "'type' in d")" = False ] || fail "info --json $f: type"
    "$HVM" vhd info --json --chain in.$f >info.json
    [ "$(json_get info.json "d['chain'][0]['format']")" = $f ] || fail "info --chain $f"

    # Its own name: a dynamic VHD with only the written blocks.
    "$HVM" vhd convert --from-format $f in.$f $f.vhd
    same_vhd $f in.$f $f.vhd
    "$HVM" vhd info $f.vhd --json >info.json
    [ "$(json_get info.json "d['virtual_size']")" = $((64 << 20)) ] || fail "$f.vhd: size"
    [ "$(json_get info.json "d['blocks_allocated']")" = 2 ] || fail "$f.vhd: not sparse"

    # auto, into raw: exact and sparse (qemu-img's output is the result).
    "$HVM" vhd convert --from-format auto --type raw in.$f $f.raw
    qemu-img compare -f $f -F raw in.$f $f.raw >/dev/null || fail "$f.raw differs"
    [ "$(stat -c %s $f.raw)" = $((64 << 20)) ] || fail "$f.raw: size"
    [ "$(allocated $f.raw)" -lt $((4 << 20)) ] || fail "$f.raw: not sparse ($(allocated $f.raw))"

    # A fixed VHD too.
    "$HVM" vhd convert --from-format auto --type fixed in.$f $f-fixed.vhd
    same_vhd $f in.$f $f-fixed.vhd
    no_temporaries "convert $f"
done

# raw forces the bytes as they are.
"$HVM" vhd convert --from-format raw --type raw in.qcow2 bytes.raw
cmp bytes.raw in.qcow2 || fail "--from-format raw changed the bytes"

# VMDK variants: stream-optimized and a text descriptor with a flat extent.
qemu-img create -q -f vmdk -o subformat=streamOptimized so.vmdk 16M
qemu-io -f vmdk -c 'write -P 0x5a 1M 64k' so.vmdk >/dev/null
qemu-img create -q -f vmdk -o subformat=monolithicFlat desc.vmdk 16M
qemu-io -f vmdk -c 'write -P 0x5a 1M 64k' desc.vmdk >/dev/null
head -c 21 desc.vmdk | grep -q "# Disk DescriptorFile" || fail "qemu-img made no descriptor"
for v in so desc; do
    expect_fail 2 "$HVM" vhd convert $v.vmdk $v.vhd
    one_line "convert $v.vmdk" "a VMDK image"
    "$HVM" vhd convert --from-format auto $v.vmdk $v.vhd
    same_vhd vmdk $v.vmdk $v.vhd
done

# A qcow2 overlay: its backing chain is flattened, like a VHD chain.
qemu-img create -q -f qcow2 base.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2
qemu-io -f qcow2 -c 'write -P 0x22 1M 64k' overlay.qcow2 >/dev/null
"$HVM" vhd convert --from-format auto overlay.qcow2 overlay.vhd
same_vhd qcow2 overlay.qcow2 overlay.vhd
qemu-io -f vpc -c 'read -P 0x11 0 64k' overlay.vhd | grep -q "^read 65536" || fail "backing data lost"

# A hostile image naming a file outside its folder (a backing file, a VMDK
# extent): qemu-img would read it with hvm's rights into the new disk.
mkdir -p inbox elsewhere
printf 'secret' > elsewhere/secret; truncate -s 1M elsewhere/secret
qemu-img create -q -f qcow2 elsewhere/b.qcow2 16M
qemu-img create -q -f qcow2 -b "$T/elsewhere/b.qcow2" -F qcow2 inbox/evil.qcow2
for to in dynamic raw; do
    expect_fail 2 "$HVM" vhd convert --from-format auto --type $to inbox/evil.qcow2 evil.$to
    one_line "backing outside ($to)" "outside its folder"
    [ ! -e evil.$to ] || fail "a refused convert left evil.$to"
done
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "../elsewhere/secret" 0\nddb.virtualHWVersion = "4"\n' > inbox/evil.vmdk
expect_fail 2 "$HVM" vhd convert --from-format vmdk inbox/evil.vmdk evil2.vhd
one_line "vmdk extent outside" "outside its folder"
[ ! -e evil2.vhd ] || fail "a refused convert left evil2.vhd"

# A name qemu would take for a protocol ("nbd:...") is still a file.
cp in.qcow2 nbd:x.qcow2
"$HVM" vhd convert --from-format qcow2 nbd:x.qcow2 colon.vhd
same_vhd qcow2 in.qcow2 colon.vhd

# VHDX: hvm reads it itself (t17, t18), asked or not.
qemu-img create -q -f vhdx in.vhdx 16M
for opt in "" "--from-format auto" "--from-format vhdx"; do
    "$HVM" vhd convert $opt in.vhdx x.vhd
    rm x.vhd
done
expect_fail 2 "$HVM" vhd convert --from-format qcow2 in.vhdx x.vhd
one_line "convert vhdx as qcow2" "in.vhdx: not a qcow2 image but a VHDX one (--from-format vhdx)"

"$HVM" vhd info in.vhdx >info.txt
grep -qx "format  *vhdx" info.txt || { cat info.txt; fail "info of a VHDX"; }
"$HVM" vhd info desc.vmdk | grep -q "^format  *vmdk (not VHD" || fail "info of a VMDK descriptor"
# A raw file and a VHD are what they were.
"$HVM" vhd info qcow2.raw | grep -q "^type  *raw" || fail "info of a raw file"
"$HVM" vhd info qcow2.vhd | grep -q "^type  *dynamic" || fail "info of a converted VHD"

# check names it too (exit 2: not a disk it can check).
expect_fail 2 "$HVM" vhd check in.qcow2
one_line "check qcow2" "in.qcow2: a qcow2 image, not a VHD; convert it first with"
"$HVM" vhd check --json in.vhdx >check.json
[ "$(json_get check.json "d['result']")" = clean ] || fail "check --json of a VHDX: $(cat check.json)"

# Under a .vhd name too, wherever a disk is opened (bench here).
cp in.qcow2 disguised.vhd
expect_fail 2 "$HVM" vhd bench disguised.vhd
one_line "bench of a qcow2 named .vhd" "disguised.vhd: a qcow2 image, not VHD or raw"
expect_fail 2 "$HVM" vhd convert disguised.vhd x.vhd
one_line "convert of a qcow2 named .vhd" "disguised.vhd: a qcow2 image, not VHD or raw"

# serve names it (and --raw still serves its bytes).
expect_fail 2 "$HVM" vhd serve in.vmdk --socket s.sock
one_line "serve vmdk" "in.vmdk: a VMDK image, not a VHD; convert it first with 'hvm vhd convert --from-format vmdk in.vmdk NEW.vhd' (--raw serves its bytes as they are)"
[ ! -e s.sock ] || fail "a refused serve left its socket"

# The wrong format named: refused, saying what it is.
expect_fail 2 "$HVM" vhd convert --from-format qcow2 in.vdi x.vhd
one_line "qcow2 for a vdi" "in.vdi: not a qcow2 image but a VDI one (--from-format vdi)"
expect_fail 2 "$HVM" vhd convert --from-format vdi bytes.raw x.vhd
one_line "vdi for raw bytes" "not a VDI image"
expect_fail 2 "$HVM" vhd convert --from-format qcow2 qcow2.vhd x.vhd
one_line "qcow2 for a vhd" "not a qcow2 image but a VHD"
expect_fail 2 "$HVM" vhd convert --from-format qcow3 in.qcow2 x.vhd
last_error | grep -q "from-format: 'qcow3'" || fail "unknown --from-format: $(last_error)"
[ ! -e x.vhd ] || fail "a refused convert created x.vhd"

# qemu-img fails (a damaged header): one line, nothing at DST, no temporary.
cp in.qcow2 bad.qcow2
printf '\377\377\377\377' | dd of=bad.qcow2 bs=1 seek=48 conv=notrunc 2>/dev/null
for t in dynamic raw; do
    expect_fail 2 "$HVM" vhd convert --from-format qcow2 --type $t bad.qcow2 x.vhd
    one_line "damaged qcow2 ($t)" "bad.qcow2: qemu-img could not read it as qcow2"
    [ ! -e x.vhd ] || fail "a failed conversion left x.vhd"
    no_temporaries "damaged qcow2"
done
# A header qemu-img opens but a table it cannot read: the failure comes
# mid-way, with the VHD already being served and written.
cp in.qcow2 l2.qcow2
$PY - l2.qcow2 <<'PYEOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    l1 = struct.unpack(">Q", f.read(48)[40:48])[0]
    f.seek(l1)
    f.write(struct.pack(">Q", (1 << 63) | 0x30200))  # an L2 table off its cluster boundary
PYEOF
qemu-img info l2.qcow2 >/dev/null || fail "qemu-img no longer opens l2.qcow2"
for t in dynamic fixed raw; do
    expect_fail 2 "$HVM" vhd convert --from-format qcow2 --type $t l2.qcow2 x.vhd
    one_line "unreadable L2 ($t)" "l2.qcow2: qemu-img could not read it as qcow2"
    [ ! -e x.vhd ] || fail "a failed conversion left x.vhd"
    no_temporaries "unreadable L2"
done
# No place for the socket (TMPDIR missing, or too long a path for one):
# through a raw temporary beside DST instead, as exact.
for tmpdir in "$T/missing" "$T/tmp/$(printf '%0100d' 0)"; do
    rm -f fallback.vhd
    mkdir -p "$T/tmp/$(printf '%0100d' 0)"
    TMPDIR=$tmpdir "$HVM" vhd convert --from-format qcow2 in.qcow2 fallback.vhd
    same_vhd qcow2 in.qcow2 fallback.vhd
    rmdir "$T/tmp/$(printf '%0100d' 0)"
    no_temporaries "fallback"
done

# DST exists: untouched.
echo keep >kept.vhd
expect_fail 2 "$HVM" vhd convert --from-format qcow2 in.qcow2 kept.vhd
[ "$(cat kept.vhd)" = keep ] || fail "convert overwrote an existing DST"
# A stale temporary of a dead convert goes.
: >x.vhd.converting.999999.raw
"$HVM" vhd convert --from-format qcow2 in.qcow2 x.vhd
no_temporaries "stale temporary"
# No qemu-img: said, nothing left behind.
expect_fail 2 env PATH=/nonexistent "$HVM" vhd convert --from-format qcow2 in.qcow2 y.vhd
one_line "no qemu-img" "qemu-img not found (install qemu-utils"
[ ! -e y.vhd ] || fail "convert without qemu-img created y.vhd"
no_temporaries "no qemu-img"

# vm create --disk / --from, vm set --add-disk: named, with the command.
expect_fail 2 "$HVM" vm create v --disk in.qcow2
one_line "vm create --disk qcow2" "in.qcow2: a qcow2 image, not a VHD; convert it first with 'hvm vhd convert --from-format qcow2 in.qcow2 NEW.vhd'"
expect_fail 2 "$HVM" vm create v --from in.vhdx
one_line "vm create --from vhdx" "in.vhdx: a VHDX image; hvm reads VHDX but cannot use it here yet (convert it with 'hvm vhd convert in.vhdx NEW.vhd')"
expect_fail 2 "$HVM" vm create v --from in.vmdk
one_line "vm create --from vmdk" "in.vmdk: a VMDK image, not a VHD"
[ ! -e "$HVM_STORE/vms/v" ] || fail "a refused vm create left a VM"
"$HVM" vm create v --disk qcow2.vhd >/dev/null
expect_fail 2 "$HVM" vm set v --add-disk in.qed --slot 1
one_line "vm set --add-disk qed" "in.qed: a QED image, not a VHD"
echo ok
