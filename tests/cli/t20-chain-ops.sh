#!/bin/sh
# Chain operations: diff, info --chain, merge, rebase, set-parent, compact,
# resize. Contents are verified against raw references, structure with
# hvm vhd check.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"
DISKIO=${BUILD:-}/tests/diskio
[ -x "$DISKIO" ] || skip "diskio helper not built (set BUILD)"

uid() { "$HVM" vhd info --json "$1" >"$T/.u"; jget "$T/.u" unique_id; }
pid() { "$HVM" vhd info --json "$1" >"$T/.u"; jget "$T/.u" parent_id; }
writable() { [ -w "$1" ] && [ "$(stat -c %a "$1" | cut -c1)" -ge 6 ]; }
mode_ro() { [ "$(( 0$(stat -c %a "$1") & 0222 ))" = 0 ]; }

# --- diff, protection, a 3-deep chain -----------------------------------
mkraw base.raw 16 31
"$HVM" vhd convert base.raw base.vhd
b_id=$(uid base.vhd)
"$HVM" vhd diff base.vhd mid.vhd
mode_ro base.vhd || fail "diff did not protect the parent"
[ "$(pid mid.vhd)" = "$b_id" ] || fail "mid's parent id"
same_content mid.vhd base.raw
check_clean mid.vhd
# Writing a protected parent is refused, by name.
expect_fail 2 "$DISKIO" fill base.vhd 0 512 1
grep -q "base.vhd: protected read-only" .err || fail "write to parent: $(last_error)"
expect_fail 2 "$HVM" vhd resize base.vhd --size 32M
grep -q "protected" .err || fail "resize of parent: $(last_error)"
same_content base.vhd base.raw
# --no-protect leaves the parent writable.
"$HVM" vhd convert base.raw free.vhd
"$HVM" vhd diff free.vhd free-child.vhd --no-protect
mode_ro free.vhd && fail "--no-protect protected the parent"
"$DISKIO" fill free.vhd 0 512 1
# The child already exists: refused, the existing file untouched.
expect_fail 2 "$HVM" vhd diff base.vhd mid.vhd
grep -q "mid.vhd: already exists" .err || fail "existing child: $(last_error)"
# A parent that is not a VHD is refused.
expect_fail 2 "$HVM" vhd diff base.raw x.vhd
grep -q "base.raw" .err || fail "raw parent: $(last_error)"

cp base.raw mid.raw
"$DISKIO" random mid.vhd mid.raw 1 80 200000
"$HVM" vhd diff mid.vhd top.vhd
cp mid.raw top.raw
"$DISKIO" random top.vhd top.raw 2 200 30000
same_content top.vhd top.raw
same_content mid.vhd mid.raw
same_content base.vhd base.raw
for f in base mid top; do check_clean $f.vhd; done
"$HVM" vhd info --chain --json top.vhd >chain.json
[ "$(jget chain.json chain 0 file)" = top.vhd ] || fail "chain 0"
[ "$(jget chain.json chain 1 file)" = mid.vhd ] || fail "chain 1"
[ "$(jget chain.json chain 2 file)" = base.vhd ] || fail "chain 2"
$PY -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["chain"]) == 3' chain.json \
    || fail "chain length"
"$HVM" vhd info --chain top.vhd >chain.txt
grep -q "^layer 2: base.vhd" chain.txt || fail "chain text"

# --- merge ------------------------------------------------------------------
# A sibling of the merged child: it must be refused afterwards.
"$HVM" vhd diff mid.vhd sib.vhd
"$HVM" vhd diff top.vhd leaf.vhd
cp top.raw leaf.raw
"$DISKIO" random leaf.vhd leaf.raw 3 50 9000
# top is protected (leaf is its child): merging leaf into it needs --force.
expect_fail 2 "$HVM" vhd merge leaf.vhd
grep -q "protected read-only" .err || fail "merge into protected: $(last_error)"
grep -q -- "--force" .err || fail "merge message does not mention --force"
[ -e leaf.vhd ] || fail "refused merge removed the child"
t_id=$(uid top.vhd)
"$HVM" vhd merge leaf.vhd --force
[ ! -e leaf.vhd ] || fail "merged child still there"
same_content top.vhd leaf.raw
[ "$(uid top.vhd)" != "$t_id" ] || fail "merged parent kept its unique id"
check_clean top.vhd
# mid now has two children (top, sib); merging top into mid (forced) gives
# mid a new identity, and sib then fails the identity check.
m_id=$(uid mid.vhd)
"$HVM" vhd merge top.vhd --force
same_content mid.vhd leaf.raw
[ "$(uid mid.vhd)" != "$m_id" ] || fail "mid kept its unique id"
check_clean mid.vhd
expect_fail 2 "$HVM" vhd convert sib.vhd sib.raw --type raw
grep -q "sib.vhd: parent mid.vhd has unique id" .err || fail "sibling not refused: $(last_error)"
set +e; "$HVM" vhd check sib.vhd >chk.out 2>&1; rc=$?; set -e
[ $rc = 1 ] && grep -q "unique id" chk.out || fail "check of the orphaned sibling: $rc $(cat chk.out)"
# Merging a disk that is not differencing is refused.
expect_fail 2 "$HVM" vhd merge base.raw
expect_fail 2 "$HVM" vhd merge free.vhd
grep -q "not a differencing disk" .err || fail "merge of a dynamic disk: $(last_error)"
# An unprotected parent with one child merges without --force.
cp free.vhd fr.vhd
"$HVM" vhd diff fr.vhd fr-c.vhd --no-protect
"$HVM" vhd convert fr.vhd fr.raw --type raw
"$DISKIO" random fr-c.vhd fr.raw 4 30 100000
"$HVM" vhd merge fr-c.vhd
same_content fr.vhd fr.raw
# A merge into a fixed parent.
"$HVM" vhd convert base.raw fx.vhd --type fixed
"$HVM" vhd diff fx.vhd fx-c.vhd --no-protect
cp base.raw fx.raw
"$DISKIO" random fx-c.vhd fx.raw 5 40 100000
"$HVM" vhd merge fx-c.vhd
same_content fx.vhd fx.raw
check_clean fx.vhd

# --- rebase -------------------------------------------------------------------
rm -f sib.vhd
chmod u+w mid.vhd
"$HVM" vhd convert base.raw b2.vhd
"$HVM" vhd diff b2.vhd l1.vhd
cp base.raw l1.raw
"$DISKIO" random l1.vhd l1.raw 6 60 300000
"$HVM" vhd diff l1.vhd l2.vhd
cp l1.raw l2.raw
"$DISKIO" random l2.vhd l2.raw 7 60 100000
"$HVM" vhd diff l2.vhd l3.vhd
cp l2.raw l3.raw
"$DISKIO" random l3.vhd l3.raw 8 100 20000
"$HVM" vhd rebase l3.vhd --onto l1.vhd
same_content l3.vhd l3.raw
[ "$(pid l3.vhd)" = "$(uid l1.vhd)" ] || fail "rebase: parent id"
"$HVM" vhd info --chain --json l3.vhd >chain.json
[ "$(jget chain.json chain 0 parent_file)" = l1.vhd ] || fail "rebase: parent file"
$PY -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["chain"]) == 3' chain.json \
    || fail "rebase: chain not shortened"
check_clean l3.vhd
# The layer skipped can go: l3 does not need it.
mv l2.vhd l2.away
same_content l3.vhd l3.raw
mv l2.away l2.vhd
# Onto something that is not an ancestor: refused.
expect_fail 2 "$HVM" vhd rebase l3.vhd --onto base.vhd
grep -q "not an ancestor" .err || fail "rebase onto stranger: $(last_error)"
# Standalone: becomes dynamic, same content, opens without any parent.
"$HVM" vhd rebase l3.vhd --standalone
"$HVM" vhd info --json l3.vhd >i.json
[ "$(jget i.json type)" = dynamic ] || fail "standalone type"
mkdir away
mv l1.vhd l2.vhd b2.vhd away/
same_content l3.vhd l3.raw
check_clean l3.vhd
mv away/* .
# Standalone of a child directly over a base.
"$HVM" vhd rebase l1.vhd --standalone
same_content l1.vhd l1.raw
# Rebase of a disk that is not differencing.
expect_fail 2 "$HVM" vhd rebase b2.vhd --standalone

# --- set-parent ---------------------------------------------------------------
"$HVM" vhd convert base.raw p.vhd
"$HVM" vhd diff p.vhd c.vhd
cp base.raw c.raw
"$DISKIO" random c.vhd c.raw 9 50 50000
mkdir -p store/bases
mv p.vhd store/bases/
expect_fail 2 "$HVM" vhd convert c.vhd c2.raw --type raw
grep -q "not found" .err || fail "moved parent: $(last_error)"
"$HVM" vhd set-parent c.vhd store/bases/p.vhd
same_content c.vhd c.raw
"$HVM" vhd info --chain --json c.vhd >chain.json
[ "$(jget chain.json chain 0 parent_file)" = store/bases/p.vhd ] || fail "set-parent: parent file"
check_clean c.vhd
# The child can move too: the relative locator follows the new layout.
mkdir -p store/vms
mv c.vhd store/vms/
"$HVM" vhd set-parent store/vms/c.vhd store/bases/p.vhd
mv store "store moved"
same_content "store moved/vms/c.vhd" c.raw
mv "store moved" store
# A parent of another identity: refused unless --ignore-id-mismatch.
chmod u+w store/bases/p.vhd
"$HVM" vhd convert store/bases/p.vhd copy.vhd
expect_fail 2 "$HVM" vhd set-parent store/vms/c.vhd copy.vhd
grep -q "has unique id" .err && grep -q -- "--ignore-id-mismatch" .err || fail "id mismatch: $(last_error)"
"$HVM" vhd info --chain --json store/vms/c.vhd >chain.json
[ "$(realpath "$(jget chain.json chain 0 parent_file)")" = "$T/store/bases/p.vhd" ] \
    || fail "refused set-parent changed the link: $(jget chain.json chain 0 parent_file)"
"$HVM" vhd set-parent store/vms/c.vhd copy.vhd --ignore-id-mismatch
same_content store/vms/c.vhd c.raw
[ "$(pid store/vms/c.vhd)" = "$(uid copy.vhd)" ] || fail "set-parent: new parent id"
check_clean store/vms/c.vhd
# A parent of another size: always refused.
"$HVM" vhd create other.vhd --size 32M
expect_fail 2 "$HVM" vhd set-parent store/vms/c.vhd other.vhd --ignore-id-mismatch
grep -q "is 33554432 bytes but the child is 16777216 bytes" .err || fail "size mismatch: $(last_error)"
same_content store/vms/c.vhd c.raw
# Many set-parents in a row (locator space is reused safely).
for i in 1 2 3 4 5 6 7 8; do
    "$HVM" vhd set-parent store/vms/c.vhd copy.vhd
done
same_content store/vms/c.vhd c.raw
check_clean store/vms/c.vhd
expect_fail 2 "$HVM" vhd set-parent copy.vhd store/bases/p.vhd
grep -q "not a differencing disk" .err || fail "set-parent on a dynamic disk: $(last_error)"
# A parent path so long that the locators no longer fit twice in the room
# reserved before the blocks: set-parent appends them after the blocks.
# Check counts that as space in use (the old ones as leaked), repair and
# compact keep the current ones, and the chain keeps reading right.
long=$($PY -c "print('/'.join(['d' * 200] * 18))")
mkdir -p "$long"
"$HVM" vhd create "$long/lp.vhd" --size 4M --block-size 4K
"$DISKIO" fill "$long/lp.vhd" 0 4194304 0x33
"$HVM" vhd diff "$long/lp.vhd" lc.vhd --no-protect
$PY -c "open('lc.raw','wb').write(b'\x33' * (4 << 20))"
"$DISKIO" random lc.vhd lc.raw 12 100 30000
for i in 1 2 3; do
    "$HVM" vhd set-parent lc.vhd "$long/lp.vhd"
    check_clean lc.vhd
    same_content lc.vhd lc.raw
    "$HVM" vhd check lc.vhd >chk.out
    # The first time, the current locators alone follow the blocks.
    if [ $i = 1 ]; then
        grep -q "leaked" chk.out && fail "locators in use counted as leaked: $(cat chk.out)"
    fi
done
"$HVM" vhd repair lc.vhd >/dev/null
"$DISKIO" random lc.vhd lc.raw 13 50 30000
"$HVM" vhd set-parent lc.vhd "$long/lp.vhd"
"$HVM" vhd compact lc.vhd >/dev/null
"$HVM" vhd repair lc.vhd >/dev/null
check_clean lc.vhd
same_content lc.vhd lc.raw

# --- compact ------------------------------------------------------------------
# Dynamic: blocks that read as zeros are released and the file shrinks.
"$HVM" vhd convert base.raw cd.vhd --block-size 512K
cp base.raw cd.raw
"$DISKIO" fill cd.vhd 1048576 3145728 0
"$DISKIO" fill cd.vhd 8388608 2097152 0
dd if=/dev/zero of=cd.raw bs=1M seek=1 count=3 conv=notrunc 2>/dev/null
dd if=/dev/zero of=cd.raw bs=1M seek=8 count=2 conv=notrunc 2>/dev/null
before=$(stat -c %s cd.vhd)
"$HVM" vhd compact cd.vhd >out.txt
grep -q "released" out.txt || fail "compact output"
after=$(stat -c %s cd.vhd)
[ "$after" -le $((before - 5 * 1048576)) ] || fail "compact freed too little: $before -> $after"
same_content cd.vhd cd.raw
check_clean cd.vhd
# Compact again: nothing more to do, content the same.
"$HVM" vhd compact cd.vhd >/dev/null
[ "$(stat -c %s cd.vhd)" = "$after" ] || fail "second compact changed the size"
same_content cd.vhd cd.raw
# Zero blocks at the start of the file: the surviving blocks move down into
# the freed slots and the file shrinks to header + BAT + what is left.
"$HVM" vhd create cz.vhd --size 16M
qemu-io -f vpc -c 'write -P 7 0 8M' cz.vhd >/dev/null
qemu-io -f vpc -c 'write -P 0 0 6M' cz.vhd >/dev/null
$PY -c "open('cz.raw','wb').write(bytes(6 << 20) + b'\x07' * (2 << 20) + bytes(8 << 20))"
"$HVM" vhd compact cz.vhd >out.txt
grep -q "6 MiB released" out.txt || fail "compact of leading zero blocks: $(cat out.txt)"
# footer copy + header + BAT (2048), data 4 KiB aligned: one block at 3584
[ "$(stat -c %s cz.vhd)" = $((3584 + 512 + 2097152 + 512)) ] \
    || fail "compact of leading zero blocks: file is $(stat -c %s cz.vhd) bytes"
same_content cz.vhd cz.raw
qemu-img compare -q --image-opts "$(qvpc cz.vhd)" "$(qraw cz.raw)" || fail "qemu-img compare after compact"
check_clean cz.vhd
"$HVM" vhd check cz.vhd | grep -q leaked && fail "compact left leaked space"
# A released first block that was never packed (compact killed between the
# release and the move) is leaked space for check, and repair packs it.
"$HVM" vhd create cy.vhd --size 4M --block-size 1M
"$DISKIO" fill cy.vhd 0 4194304 0x44
$PY - cy.vhd <<'PYEOF'
import struct, sys
f = open(sys.argv[1], 'r+b')
f.seek(1536)
bat = list(struct.unpack('>4I', f.read(16)))
bat[bat.index(min(bat))] = 0xFFFFFFFF
f.seek(1536); f.write(struct.pack('>4I', *bat))
PYEOF
"$HVM" vhd check cy.vhd | grep -q leaked || fail "a hole before the first block is not leaked"
s0=$(stat -c %s cy.vhd)
"$HVM" vhd repair cy.vhd >/dev/null
[ "$(stat -c %s cy.vhd)" -lt "$s0" ] || fail "repair did not reclaim the hole before the blocks"
check_clean cy.vhd
"$HVM" vhd check cy.vhd | grep -q leaked && fail "repair left leaked space"
# Differencing: a zero block over a non-zero parent area stays; a zero
# block over a zero parent area goes.
"$HVM" vhd convert base.raw cp.vhd --block-size 512K
dd if=/dev/zero of=cpz.raw bs=1M count=16 2>/dev/null
"$DISKIO" fill cp.vhd 12582912 1048576 0   # parent zero at 12M..13M
cp base.raw cc.raw
dd if=/dev/zero of=cc.raw bs=1M seek=12 count=1 conv=notrunc 2>/dev/null
"$HVM" vhd compact cp.vhd >/dev/null
"$HVM" vhd diff cp.vhd cc.vhd
"$DISKIO" fill cc.vhd 0 1048576 0          # over parent data: must stay
"$DISKIO" fill cc.vhd 12582912 1048576 0   # over parent zeros: may go
dd if=/dev/zero of=cc.raw bs=1M count=1 conv=notrunc 2>/dev/null
"$HVM" vhd info --json cc.vhd >i.json
n0=$(jget i.json blocks_allocated)
"$HVM" vhd compact cc.vhd >/dev/null
"$HVM" vhd info --json cc.vhd >i.json
n1=$(jget i.json blocks_allocated)
[ "$n1" = 2 ] && [ "$n0" = 4 ] || fail "differencing compact: $n0 -> $n1 blocks (expected 4 -> 2)"
same_content cc.vhd cc.raw
check_clean cc.vhd
# Compact refuses fixed disks and raw files.
expect_fail 2 "$HVM" vhd compact fx.vhd
expect_fail 2 "$HVM" vhd compact base.raw

# --- resize ---------------------------------------------------------------------
"$HVM" vhd convert base.raw rd.vhd --block-size 64K
"$HVM" vhd convert base.raw rf.vhd --type fixed
cp base.raw r.raw
truncate -s 40M r.raw
r_id=$(uid rd.vhd)
"$HVM" vhd resize rd.vhd --size 40M
"$HVM" vhd resize rf.vhd --size 40M
for f in rd rf; do
    "$HVM" vhd info --json $f.vhd >i.json
    [ "$(jget i.json virtual_size)" = 41943040 ] || fail "$f: size after resize"
    same_content $f.vhd r.raw
    check_clean $f.vhd
done
[ "$(uid rd.vhd)" != "$r_id" ] || fail "resize kept the unique id"
# Data written past the old end lands and reads back.
cp r.raw r2.raw
"$DISKIO" random rd.vhd r2.raw 10 50 300000
same_content rd.vhd r2.raw
if have qemu-img; then
    qemu-img compare -q --image-opts "$(qvpc rd.vhd)" "$(qraw r2.raw)" || fail "qemu-img reads the resized disk differently"
    qemu-img compare -q --image-opts "$(qvpc rf.vhd)" "$(qraw r.raw)" || fail "qemu-img reads the resized fixed disk differently"
fi
# Shrinking is refused; the same size does nothing.
expect_fail 2 "$HVM" vhd resize rd.vhd --size 8M
grep -q "shrinking" .err || fail "shrink: $(last_error)"
"$HVM" vhd resize rd.vhd --size 40M
same_content rd.vhd r2.raw
expect_fail 2 "$HVM" vhd resize rd.vhd --size 2041G
expect_fail 2 "$HVM" vhd resize rd.vhd --size 41943041
# A protected parent: refused without --force; with it, its child then
# fails the size/identity check instead of reading wrong data.
"$HVM" vhd diff rd.vhd rd-c.vhd
expect_fail 2 "$HVM" vhd resize rd.vhd --size 48M
grep -q "protected" .err || fail "resize of a parent: $(last_error)"
"$HVM" vhd resize rd.vhd --size 48M --force
expect_fail 2 "$HVM" vhd info --chain rd-c.vhd
grep -q "rd-c.vhd: parent rd.vhd" .err || fail "stale child after resize: $(last_error)"
# Differencing disks are not resized.
expect_fail 2 "$HVM" vhd resize rd-c.vhd --size 64M --force
# Growing across many BAT sectors (blocks in the way of the larger BAT move).
"$HVM" vhd create small.vhd --size 1M --block-size 4K
truncate -s 1M small.raw
"$DISKIO" random small.vhd small.raw 11 100 20000
"$HVM" vhd resize small.vhd --size 64M
truncate -s 64M small.raw
same_content small.vhd small.raw
check_clean small.vhd
echo ok
