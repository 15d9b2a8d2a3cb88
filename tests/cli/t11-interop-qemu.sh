#!/bin/sh
# Interoperability with qemu-img/qemu-io (vpc driver), byte for byte, both
# directions: qemu reads what hvm wrote, hvm reads what qemu wrote.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"
have qemu-img || skip "qemu-img not installed"
have qemu-io || skip "qemu-io not installed"

# qemu-img check on a vpc file: qemu's vpc driver has no check routine, so
# "does not support checks" (exit 63) is accepted; anything else must be 0.
qcheck() {
    set +e
    qemu-img check -f vpc "$1" >"$T/.qc" 2>&1
    rc=$?
    set -e
    [ $rc = 0 ] && return 0
    [ $rc = 63 ] && grep -q "does not support checks" "$T/.qc" && return 0
    cat "$T/.qc" >&2
    fail "qemu-img check $1 exited $rc"
}
qcompare() { # VHD RAW
    qemu-img compare -q --image-opts "$(qvpc "$1")" "$(qraw "$2")" \
        || fail "qemu-img compare: $1 differs from $2"
}

mkraw ref.raw 24 11

# 1. hvm writes (convert from raw), qemu reads.
"$HVM" vhd convert ref.raw dyn.vhd
"$HVM" vhd convert ref.raw fix.vhd --type fixed
"$HVM" vhd convert ref.raw small.vhd --block-size 64K
"$HVM" vhd convert ref.raw large.vhd --block-size 16M
for f in dyn fix small large; do
    qcompare $f.vhd ref.raw
    qcheck $f.vhd
    check_clean $f.vhd
    same_content $f.vhd ref.raw
done
# qemu-img reports the exact virtual size.
qemu-img info --image-opts "$(qvpc dyn.vhd)" | grep -q "virtual size: 24 MiB (25165824 bytes)" \
    || fail "qemu-img info size"
# Zero areas stayed sparse: fewer blocks than the disk has.
"$HVM" vhd info --json small.vhd >s.json
[ "$(jget s.json blocks_allocated)" -lt "$(jget s.json blocks)" ] || fail "no sparse blocks"

# A raw file whose size is not a multiple of 512: the VHD rounds up with
# zeros, and converting back gives the padded size.
head -c 1000001 ref.raw >odd.raw
"$HVM" vhd convert odd.raw odd.vhd
"$HVM" vhd convert odd.raw oddf.vhd --type fixed
cp odd.raw oddpad.raw
truncate -s 1000448 oddpad.raw
for f in odd oddf; do
    qcompare $f.vhd oddpad.raw
    same_content $f.vhd oddpad.raw
done

# 2. qemu-io writes into a disk hvm created (dynamic and fixed): unaligned,
#    block-crossing, overwrite and zero writes; the same into a raw copy.
"$HVM" vhd create w.vhd --size 24M
"$HVM" vhd create wf.vhd --size 24M --type fixed
"$HVM" vhd create w64.vhd --size 24M --block-size 64K
truncate -s 24M w.raw
ops='-c "write -P 0xa5 0 4096" -c "write -P 0x11 1M 3M" -c "write -P 0x22 2095616 1024"
 -c "write -P 0x33 7340544 1" -c "write -P 0x44 20M 4M" -c "write -z 21M 64k"
 -c "write -P 0x55 12345 6789" -c "write -P 0x66 1M 512"'
for img in w.vhd wf.vhd w64.vhd; do
    eval qemu-io --image-opts "'$(qvpc $img)'" $ops >/dev/null
done
eval qemu-io -f raw w.raw $ops >/dev/null
for img in w.vhd wf.vhd w64.vhd; do
    qcompare $img w.raw
    check_clean $img
    same_content $img w.raw
done
# hvm then writes on top (convert again from what qemu wrote) and qemu reads it.
"$HVM" vhd convert w.vhd w2.vhd
qcompare w2.vhd w.raw

# 3. qemu-img writes, hvm reads: dynamic and fixed, exact size (force_size).
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on ref.raw q-dyn.vhd
qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on ref.raw q-fix.vhd
for f in q-dyn q-fix; do
    check_clean $f.vhd
    same_content $f.vhd ref.raw
    "$HVM" vhd info --json $f.vhd >q.json
    [ "$(jget q.json virtual_size)" = 25165824 ] || fail "$f size"
done
[ "$(jget q.json type)" = fixed ] || fail "q-fix type"
# Without force_size qemu rounds the size up to the CHS geometry: hvm uses
# the current size field, which qemu sets to the CHS size; the first 24 MiB
# are the data, the rest zeros.
qemu-img convert -f raw -O vpc -o subformat=dynamic ref.raw q-chs.vhd
"$HVM" vhd info --json q-chs.vhd >q.json
qsize=$(qemu-img info -f vpc --output=json q-chs.vhd | $PY -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
[ "$(jget q.json virtual_size)" = "$qsize" ] || fail "CHS-rounded size: hvm $(jget q.json virtual_size), qemu $qsize"
cp ref.raw ref-chs.raw
truncate -s "$qsize" ref-chs.raw
same_content q-chs.vhd ref-chs.raw
check_clean q-chs.vhd
# qemu-img's own data written in place with qemu-io into its own image.
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on q-w.vhd 24M
eval qemu-io -f vpc q-w.vhd $ops >/dev/null
same_content q-w.vhd w.raw
check_clean q-w.vhd

# 4. hvm writes into a qemu-made dynamic disk (convert's destination is
#    always hvm's; so make the change with a chain flatten): a differencing
#    child of qemu's disk, flattened, reads as qemu's data.
chmod u+w q-dyn.vhd
"$HVM" vhd diff q-dyn.vhd q-child.vhd --no-protect
same_content q-child.vhd ref.raw
"$HVM" vhd rebase q-child.vhd --standalone
qcompare q-child.vhd ref.raw
echo ok
