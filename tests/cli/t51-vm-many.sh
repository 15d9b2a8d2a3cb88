#!/bin/sh
# Many VMs from one base image: each reads the base, writes its own data and
# never sees another's; the base's bytes never change; `hvm base list` shows
# the children; the base cannot be attached directly nor removed while used
# (one-line refusals, exit 2, saying why and what to do); after the VMs go,
# `hvm base remove` works and the base is writable again.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

"$HVM" vhd create base.vhd --size 32M
sock="$T/b.sock"
"$HVM" vhd serve base.vhd --socket "$sock" & p=$!
while [ ! -S "$sock" ]; do sleep 0.05; done
qemu-io -f raw -c "write -P 0xba 0 32M" -c "write -z 20M 1M" "nbd+unix:///?socket=$sock" >/dev/null
kill -TERM $p; wait $p
base_sum=$(sha base.vhd)
base_abs=$(cd "$T" && pwd -P)/base.vhd

N=6
i=1
while [ $i -le $N ]; do
    "$HVM" vm create "vm$i" --from base.vhd >/dev/null
    i=$((i + 1))
done
[ "$(sha base.vhd)" = "$base_sum" ] || fail "creating the VMs changed the base"
stat -c %A base.vhd | grep -q '^-r--r--r--' || fail "the base is not protected read-only: $(stat -c %A base.vhd)"

# Each VM writes its own pattern in its own area and at a shared offset.
i=1
while [ $i -le $N ]; do
    vm_io "vm$i" -- "write -P $((0x10 + i)) $((i))M 256k" "write -P $((0x20 + i)) 30M 64k" >/dev/null
    i=$((i + 1))
done
i=1
while [ $i -le $N ]; do
    out=$(vm_io "vm$i" -- "read -P $((0x10 + i)) $((i))M 256k" "read -P $((0x20 + i)) 30M 64k" \
        "read -P 0xba 0 1M" "read -P 0 20M 1M" "read -P 0xba 31M 1M")
    echo "$out" | grep -q "Pattern verification failed" && fail "vm$i does not read its data or the base: $out"
    j=1
    while [ $j -le $N ]; do
        [ $j = $i ] || vm_expect "vm$i" -- 0xba "$((j))M" 256k   # no other VM's data
        j=$((j + 1))
    done
    i=$((i + 1))
done
[ "$(sha base.vhd)" = "$base_sum" ] || fail "the VMs' writes changed the base"
"$HVM" vhd check base.vhd >/dev/null

# The registry lists the base with all its children, by id.
"$HVM" base list | tee list.txt
grep -q "$base_abs" list.txt || fail "base list does not show the base"
grep -q "($N VMs" list.txt || fail "base list does not count $N children"
"$HVM" base list --json >bases.json
[ "$(json_get bases.json "len(d['bases'])")" = 1 ] || fail "not one base"
[ "$(json_get bases.json "d['bases'][0]['file']")" = "$base_abs" ] || fail "wrong base file"
i=1
while [ $i -le $N ]; do
    "$HVM" vm show "vm$i" --json >show.json
    vid=$(json_get show.json "d['id']")
    json_get bases.json "d['bases'][0]['children']" | grep -q "$vid" || fail "vm$i ($vid) not a child"
    json_get show.json "d['drives'][0]['parents']" | grep -q "$base_abs" || fail "vm$i's drive is not on the base"
    grep -q "vm$i" list.txt || fail "base list does not name vm$i"
    i=$((i + 1))
done

one_line() { # the last expect_fail printed one line saying what to do
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err"; fail "$1: not one line"; }
    last_error | grep -q "$2" || fail "$1: does not say '$2': $(last_error)"
}
# The base cannot be attached directly ...
expect_fail 2 "$HVM" vm create direct --disk base.vhd
one_line "create --disk base" "use --from"
expect_fail 2 "$HVM" vm create direct --disk "$base_abs"
expect_fail 2 "$HVM" vm set vm1 --add-disk base.vhd
one_line "set --add-disk base" "base"
last_error | grep -q -- "--from" || fail "set --add-disk: does not say what to do: $(last_error)"
[ ! -e "$HVM_STORE/vms/direct" ] || fail "a VM was created"
"$HVM" vm show vm1 --json >show.json
[ "$(json_get show.json "len(d['drives'])")" = 1 ] || fail "a drive was added"
# ... nor removed while it has children.
expect_fail 2 "$HVM" base remove base.vhd
one_line "base remove" "delete those VMs"
last_error | grep -q "$N VMs" || fail "base remove: does not say how many VMs: $(last_error)"
[ "$(sha base.vhd)" = "$base_sum" ] || fail "the base changed"

# Deleting VMs one by one updates the registry; the others keep working.
i=1
while [ $i -le $N ]; do
    "$HVM" vm delete "vm$i"
    [ ! -e "$HVM_STORE/vms/vm$i" ] || fail "vm$i's folder is still there"
    left=$((N - i))
    "$HVM" base list --json >bases.json
    [ "$(json_get bases.json "len(d['bases'][0]['children'])")" = $left ] || fail "registry after deleting vm$i"
    if [ $left -gt 0 ]; then
        expect_fail 2 "$HVM" base remove base.vhd
        vm_expect "vm$N" -- $((0x10 + N)) "$((N))M" 256k
    fi
    i=$((i + 1))
done
"$HVM" base remove base.vhd
"$HVM" base list --json >bases.json
[ "$(json_get bases.json "len(d['bases'])")" = 0 ] || fail "the base is still registered"
stat -c %A base.vhd | grep -q '^-rw' || fail "the base is not writable again: $(stat -c %A base.vhd)"
[ "$(sha base.vhd)" = "$base_sum" ] || fail "the base changed"
expect_fail 2 "$HVM" base remove base.vhd
one_line "base remove again" "not a registered base"
# Now an ordinary disk: it can be attached (a copy).
"$HVM" vm create direct --disk base.vhd >/dev/null
vm_expect direct -- 0xba 0 1M
[ "$(sha base.vhd)" = "$base_sum" ] || fail "the base changed"
vm_check direct
echo ok
