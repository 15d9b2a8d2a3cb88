#!/bin/sh
# The copy engine (src/disk/pipeline.c: several reads in flight across the
# layer files, in-order writes) under flatten, merge and rebase: results
# equal a raw reference model of random writes into a 4-deep chain, with
# holes between runs, a source whose size ends mid-sector, and a read that
# fails midway (HVM_FAIL_AT=copy-read:N), which must fail the command with
# one error and leave nothing half-written.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"
DISKIO=${BUILD:-}/tests/diskio
[ -x "$DISKIO" ] || skip "diskio helper not built (set BUILD)"

# --- a 4-deep chain and its model ---------------------------------------
# 48 MiB: 48 slots of reads, several hundred pieces over four files.
"$HVM" vhd create base.vhd --size 48M --block-size 512K
truncate -s 48M ref.raw
"$DISKIO" random base.vhd ref.raw 1 200 300000
prev=base
for l in 1 2 3; do
    "$HVM" vhd diff $prev.vhd l$l.vhd
    "$DISKIO" random l$l.vhd ref.raw $((l + 1)) 150 200000
    prev=l$l
done
# A lone run far from the others: a wide hole on each side.
"$DISKIO" fill l3.vhd $((40 << 20)) 4096 7
printf '\007%.0s' $(seq 4096) | dd of=ref.raw bs=4096 seek=$((40 * 256)) conv=notrunc status=none
cp ref.raw want.raw

# --- flatten: raw and dynamic --------------------------------------------
"$HVM" vhd convert l3.vhd flat.raw --type raw
cmp flat.raw want.raw || fail "flattened chain differs from the model"
"$HVM" vhd convert l3.vhd flat.vhd
same_content flat.vhd want.raw
check_clean flat.vhd

# --- a source that ends mid-sector (short reads at its end) --------------
head -c 5000001 /dev/urandom >odd.raw
"$HVM" vhd convert --from-format raw odd.raw odd.vhd
"$HVM" vhd convert odd.vhd odd-back.raw --type raw
cmp -n 5000001 odd-back.raw odd.raw || fail "odd-sized source differs"

# --- a read failing midway -----------------------------------------------
HVM_FAIL_AT=copy-read:20 expect_fail 2 "$HVM" vhd convert l3.vhd bad.raw --type raw
grep -q "\.vhd: read at byte" .err || fail "read error message: $(last_error)"
[ "$(wc -l <.err)" = 1 ] || fail "more than one error line: $(last_error)"
[ ! -e bad.raw ] || fail "a failed flatten left its result"
ls | grep -q converting && fail "a failed flatten left its temporary"
HVM_FAIL_AT=copy-read:3 expect_fail 2 "$HVM" vhd convert l3.vhd bad.vhd
[ ! -e bad.vhd ] || fail "a failed flatten left its result"

# --- merge: each layer into its parent, model unchanged ------------------
mkdir m && cp base.vhd l1.vhd l2.vhd l3.vhd m/ && chmod u+w m/*
# A merge whose read fails: the child still reads right and the merge can
# be run again.
HVM_FAIL_AT=copy-read:4 expect_fail 2 "$HVM" vhd merge m/l3.vhd --force
same_content m/l3.vhd want.raw
"$HVM" vhd merge m/l3.vhd --force
same_content m/l2.vhd want.raw
check_clean m/l2.vhd
"$HVM" vhd merge m/l2.vhd --force
"$HVM" vhd merge m/l1.vhd --force
same_content m/base.vhd want.raw
check_clean m/base.vhd

# --- rebase --standalone and onto the base -------------------------------
mkdir r && cp base.vhd l1.vhd l2.vhd l3.vhd r/ && chmod u+w r/*
"$HVM" vhd rebase r/l3.vhd --onto r/base.vhd
same_content r/l3.vhd want.raw
"$HVM" vhd rebase r/l3.vhd --standalone
same_content r/l3.vhd want.raw
check_clean r/l3.vhd
echo ok
