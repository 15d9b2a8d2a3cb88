#!/bin/sh
# hvm vhd create and info: dynamic and fixed disks, block sizes, the text
# and JSON output of info, --help of every verb, and bad arguments.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"

# Dynamic, default block size.
"$HVM" vhd create d.vhd --size 100M
"$HVM" vhd info --json d.vhd >d.json
[ "$(jget d.json type)" = dynamic ] || fail "type"
[ "$(jget d.json virtual_size)" = 104857600 ] || fail "virtual size"
[ "$(jget d.json original_size)" = 104857600 ] || fail "original size"
[ "$(jget d.json block_size)" = 2097152 ] || fail "block size"
[ "$(jget d.json blocks)" = 50 ] || fail "blocks"
[ "$(jget d.json blocks_allocated)" = 0 ] || fail "blocks allocated"
[ "$(jget d.json creator application)" = "hvm " ] || fail "creator"
[ "$(jget d.json read_only)" = false ] || fail "read_only"
# 100 MiB: 204800 sectors -> 17 sectors/track, 12 heads, 1003 cylinders.
[ "$(jget d.json geometry cylinders)/$(jget d.json geometry heads)/$(jget d.json geometry sectors_per_track)" = 1003/12/17 ] \
    || fail "geometry $(jget d.json geometry)"
[ "$(jget d.json geometry size)" = $((1003 * 12 * 17 * 512)) ] || fail "CHS size"
$PY -c 'import uuid,sys; uuid.UUID(sys.argv[1])' "$(jget d.json unique_id)" || fail "unique id"
# An empty dynamic disk: footer copy, header, one BAT sector, footer.
[ "$(stat -c %s d.vhd)" = 2560 ] || fail "empty dynamic disk is $(stat -c %s d.vhd) bytes"
"$HVM" vhd info d.vhd >d.txt
grep -q '^type  *dynamic$' d.txt || fail "text: type"
grep -q '^virtual_size  *104857600 (100 MiB)$' d.txt || fail "text: size"
grep -q "^unique_id  *$(jget d.json unique_id)$" d.txt || fail "text: id"
grep -q '^geometry  *1003/12/17' d.txt || fail "text: geometry"
check_clean d.vhd

# Unique ids differ between disks.
"$HVM" vhd create d2.vhd --size 100M
"$HVM" vhd info --json d2.vhd >d2.json
[ "$(jget d.json unique_id)" != "$(jget d2.json unique_id)" ] || fail "same unique id twice"

# Fixed.
"$HVM" vhd create f.vhd --size 10M --type fixed
"$HVM" vhd info --json f.vhd >f.json
[ "$(jget f.json type)" = fixed ] || fail "fixed type"
[ "$(jget f.json virtual_size)" = 10485760 ] || fail "fixed size"
[ "$(stat -c %s f.vhd)" = $((10485760 + 512)) ] || fail "fixed file size"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "block_size" not in d' f.json \
    || fail "fixed disk shows a block size"
# Footer only at the end; the data reads as zeros.
cmp -n 10485760 f.vhd /dev/zero || fail "fixed data area not zero"
[ "$(tail -c 512 f.vhd | head -c 8)" = conectix ] || fail "no footer at the end"
check_clean f.vhd
# "All space reserved": the data area is allocated, not a hole; growing it
# reserves the new space too.
allocated() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }
[ "$(allocated f.vhd)" -ge $((10485760 + 512)) ] || fail "fixed disk is sparse: $(allocated f.vhd) bytes allocated"
cp f.vhd fg.vhd
"$HVM" vhd resize fg.vhd --size 20M
[ "$(allocated fg.vhd)" -ge $((20971520 + 512)) ] || fail "resized fixed disk is sparse: $(allocated fg.vhd) bytes allocated"
check_clean fg.vhd
cmp -n 20971520 fg.vhd /dev/zero || fail "resized fixed data area not zero"
# A full filesystem (a small tmpfs in a mount namespace of our own): a clear
# error naming the file, nothing left behind; a resize that does not fit
# leaves the disk as it was.
if unshare -m true 2>/dev/null; then
    mkdir small
    cat >small.sh <<EOF2
set -u
mount -t tmpfs -o size=8m tmpfs small || exit 77
"$HVM" vhd create small/a.vhd --size 5M --type fixed || exit 1
"$HVM" vhd create small/b.vhd --size 5M --type fixed 2>small.err && exit 2
ls -A small >small.ls
cp small/a.vhd small-a.before
"$HVM" vhd resize small/a.vhd --size 9M 2>small-rs.err && exit 3
cmp small/a.vhd small-a.before || exit 4
"$HVM" vhd check small/a.vhd >/dev/null || exit 5
exit 0
EOF2
    set +e; unshare -m sh small.sh; rc=$?; set -e
    case $rc in
    0)
        [ "$(wc -l <small.err)" = 1 ] && grep -q "small/b.vhd: not enough free space" small.err \
            || fail "fixed create on a full filesystem: $(cat small.err)"
        [ "$(cat small.ls)" = a.vhd ] || fail "fixed create on a full filesystem left: $(cat small.ls)"
        grep -q "small/a.vhd: not enough free space" small-rs.err \
            || fail "fixed resize on a full filesystem: $(cat small-rs.err)"
        ;;
    77) echo "no tmpfs mount: full-filesystem case skipped" ;;
    *) fail "fixed disks on a full filesystem: step $rc failed" ;;
    esac
fi

# Block sizes from 4 KiB to 256 MiB; sizes that are not a multiple.
for bs in 4K 512K 1M 2M 8M 256M; do
    "$HVM" vhd create "b$bs.vhd" --size 20M --block-size $bs
    "$HVM" vhd info --json "b$bs.vhd" >b.json
    want=$($PY -c 'import sys; u={"K":1<<10,"M":1<<20}; s=sys.argv[1]; print(int(s[:-1])*u[s[-1]])' $bs)
    [ "$(jget b.json block_size)" = "$want" ] || fail "block size $bs"
    [ "$(jget b.json blocks)" = $(( (20971520 + want - 1) / want )) ] || fail "blocks for $bs"
    check_clean "b$bs.vhd"
done
# A size that is not a multiple of the block size: the last block is partial.
"$HVM" vhd create odd.vhd --size 3000K
"$HVM" vhd info --json odd.vhd >o.json
[ "$(jget o.json virtual_size)" = 3072000 ] || fail "odd size"
[ "$(jget o.json blocks)" = 2 ] || fail "odd blocks"
# The largest size (2040 GiB) and sizes in T.
"$HVM" vhd create big.vhd --size 2040G
"$HVM" vhd info --json big.vhd >big.json
[ "$(jget big.json virtual_size)" = $((2040 << 30)) ] || fail "2040G"
[ "$(jget big.json geometry cylinders)" = 65535 ] || fail "2040G geometry"
check_clean big.vhd
"$HVM" vhd create fx.vhd --size 1536M --type fixed
[ "$(stat -c %s fx.vhd)" = $((3 << 29 | 512)) ] || fail "1536M fixed"

# --help of every verb exits 0 and prints a usage line on stdout.
for verb in create diff info check repair convert merge rebase set-parent compact resize; do
    "$HVM" vhd $verb --help >h.out 2>h.err || fail "$verb --help exited $?"
    grep -q "^usage: hvm vhd $verb" h.out || fail "$verb --help: no usage"
    [ ! -s h.err ] || fail "$verb --help wrote to stderr"
done
"$HVM" --help >/dev/null
"$HVM" vhd --help >h.out
grep -q create h.out || fail "vhd --help"

# Bad arguments: exit 2, one "hvm: " message line naming the problem.
bad() {
    expect_fail 2 "$@"
    n=$(grep -c '^hvm: ' "$T/.err" || true)
    [ "$n" = 1 ] || { cat "$T/.err" >&2; fail "$*: $n 'hvm:' lines"; }
}
bad "$HVM" vhd create x.vhd
grep -q -- '--size is required' .err || fail "missing --size message"
bad "$HVM" vhd create --size 10M
bad "$HVM" vhd create x.vhd y.vhd --size 10M
bad "$HVM" vhd create x.vhd --size 10Q
grep -q "10Q" .err || fail "bad size not named"
bad "$HVM" vhd create x.vhd --size 1000
grep -q "multiple of 512" .err || fail "unaligned size"
bad "$HVM" vhd create x.vhd --size 0
bad "$HVM" vhd create x.vhd --size 2041G
grep -q "2040 GiB" .err || fail "too big"
bad "$HVM" vhd create x.vhd --size 10M --type sparse
bad "$HVM" vhd create x.vhd --size 10M --block-size 3K
grep -q "power of two" .err || fail "bad block size message"
bad "$HVM" vhd create x.vhd --size 10M --block-size 2K
bad "$HVM" vhd create x.vhd --size 10M --block-size 512M
bad "$HVM" vhd create x.vhd --size 10M --block-size 8G
bad "$HVM" vhd create x.vhd --size 10M --bogus
[ ! -e x.vhd ] || fail "a failed create left x.vhd"
ls | grep -q creating && fail "a failed create left a temporary file"
bad "$HVM" vhd create d.vhd --size 10M
grep -q "d.vhd: already exists" .err || fail "existing file"
[ "$(stat -c %s d.vhd)" = 2560 ] || fail "create clobbered an existing file"
bad "$HVM" vhd create nodir/x.vhd --size 10M
grep -q "nodir/x.vhd" .err || fail "missing folder not named"
bad "$HVM" vhd info
bad "$HVM" vhd info a b
bad "$HVM" vhd info --bogus d.vhd
bad "$HVM" vhd info missing.vhd
grep -q "missing.vhd" .err || fail "missing file not named"
bad "$HVM" vhd nosuchverb
bad "$HVM" nosuchnoun
bad "$HVM" vhd convert d.vhd
bad "$HVM" vhd convert d.vhd o.vhd --type qcow2
bad "$HVM" vhd merge
bad "$HVM" vhd rebase d.vhd
bad "$HVM" vhd rebase d.vhd --standalone --onto d2.vhd
bad "$HVM" vhd set-parent d.vhd
bad "$HVM" vhd compact
bad "$HVM" vhd resize d.vhd
bad "$HVM" vhd resize d.vhd --size 1X
bad "$HVM" vhd diff d.vhd
bad "$HVM" vhd check
bad "$HVM" vhd repair
echo ok
