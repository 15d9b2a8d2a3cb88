#!/bin/sh
# Size arguments: digits and one binary unit (K M G T, optionally B or iB,
# any case) or plain bytes. What strtod would take ("1e6", "0x100000") is
# an error naming the option, not a size, wherever a size is read.
. "$TESTS/cli/lib.sh"
export HVM_STORE="$T/store"

one_line() { # CONTEXT TEXT: the last expect_fail printed one line with TEXT
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err"; fail "$1: not one line"; }
    last_error | grep -qF -- "$2" || fail "$1: does not say '$2': $(last_error)"
}
vsize() { "$HVM" vhd info "$1" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["virtual_size"])'; }

# Accepted spellings, all binary.
for s in 10M 10MB 10MiB 10m 10mb 10mib 10485760; do
    rm -f a.vhd
    "$HVM" vhd create a.vhd --size "$s"
    [ "$(vsize a.vhd)" = 10485760 ] || fail "--size $s: $(vsize a.vhd) bytes"
done

rm -f a.vhd; "$HVM" vhd create a.vhd --size 10M

# Refused, one line naming the option and the argument, nothing created.
for s in 1e6 0x100000 10XB " 10M" 10M+ -10M 1.3K 0.625M 1.5G 10P inf; do
    rm -f b.vhd
    expect_fail 2 "$HVM" vhd create b.vhd --size "$s"
    one_line "create --size '$s'" "--size: '$s' is not a size (digits and K, M, G or T)"
    [ ! -e b.vhd ] || fail "create --size '$s' left a file"
done
expect_fail 2 "$HVM" vhd create b.vhd --size 99999999999T
one_line "create --size 99999999999T" "--size: '99999999999T' is too large a size"
expect_fail 2 "$HVM" vhd create b.vhd --size 1M --block-size 0x200000
one_line "--block-size hex" "--block-size: '0x200000' is not a size"

# resize
expect_fail 2 "$HVM" vhd resize a.vhd --size 2e7
one_line "resize 2e7" "--size: '2e7' is not a size"
[ "$(vsize a.vhd)" = 10485760 ] || fail "a refused resize changed the disk"
"$HVM" vhd resize a.vhd --size 20MiB
[ "$(vsize a.vhd)" = 20971520 ] || fail "resize --size 20MiB"

# vm create / vm set: memory and new disks
expect_fail 2 "$HVM" vm create v --memory 1e9
one_line "vm create --memory 1e9" "--memory: '1e9' is not a size"
expect_fail 2 "$HVM" vm create v --new-disk 0x4000000
one_line "vm create --new-disk hex" "--new-disk: '0x4000000' is not a size"
[ ! -e "$HVM_STORE/vms/v" ] || fail "a refused vm create left a VM"
"$HVM" vm create v --memory 256MiB --new-disk 64mb >/dev/null
"$HVM" vm show v --json >show.json
$PY - show.json <<'PYEOF' || fail "vm create sizes"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["memory"] == 256 << 20, d["memory"]
assert d["drives"][0]["size"] == 64 << 20, d["drives"]
PYEOF
expect_fail 2 "$HVM" vm set v --memory 5e8
one_line "vm set --memory 5e8" "--memory: '5e8' is not a size"
expect_fail 2 "$HVM" vm set v --new-disk 1.5
one_line "vm set --new-disk 1.5" "--new-disk: '1.5' is not a size"
"$HVM" vm set v --memory 1GB >/dev/null
"$HVM" vm show v --json >show.json
$PY -c 'import json,sys; d=json.load(open("show.json")); assert d["memory"]==1<<30, d["memory"]' ||
    fail "vm set --memory 1GB"

# bench
expect_fail 2 "$HVM" vhd bench a.vhd --size 4e3
one_line "bench --size 4e3" "--size: '4e3' is not a size"
echo ok
