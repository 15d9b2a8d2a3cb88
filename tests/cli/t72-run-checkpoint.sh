#!/bin/sh
# Online checkpoint: counter at N, take (the VM keeps running; the pause is
# printed); more counting; apply: the counter is back near N and the disk
# holds the checkpoint's data, not what was written after it.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

"$HVM" vhd create base.vhd --size 64M
GUEST_ARGS="hvm.every=1" guest_vm c counter --from base.vhd
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 10$" 90
"$HVM" checkpoint take c online > take.txt
cat take.txt
grep -q "with memory; the VM was paused for [0-9]* ms" take.txt || fail "no pause reported"
n=$(last_count c)
console_mark c
wait_console c "HVM-GUEST COUNT $((n + 15))$" 30
"$HVM" checkpoint list c | grep -q "online .*\[memory\]" || fail "the checkpoint holds no memory"
# The checkpoint's disk holds a count from before it was taken.
ck=$(disk_text c 2097152 --checkpoint online)
echo "checkpoint disk count: $ck (console at take: $n)"
[ "$ck" -le "$n" ] && [ "$ck" -ge $((n - 3)) ] || fail "checkpoint disk holds $ck, expected about $n"

# Checkpoints deleted while the VM runs leave the tree at once; their
# layers are folded when it is off (checked after the turn-off below).
"$HVM" checkpoint take c extra >/dev/null
"$HVM" checkpoint take c extra2 >/dev/null
"$HVM" checkpoint delete c extra >del.txt
grep -q "merged when the VM is off" del.txt || fail "delete on a running VM: $(cat del.txt)"
"$HVM" checkpoint list c | grep -q " extra " && fail "a deleted checkpoint is still listed"
ck2=$(disk_text c 2097152 --checkpoint extra2)
[ "$ck2" -ge "$n" ] || fail "extra2 reads $ck2 after extra went"

console_mark c
"$HVM" checkpoint apply c online
wait_first_count c 30
first=$(first_count c)
echo "after apply: $first"
[ "$first" -ge $((n - 3)) ] && [ "$first" -le $((n + 3)) ] || fail "after apply the counter is at $first, expected about $n"
"$HVM" checkpoint delete c extra2 >/dev/null
"$HVM" vm turn-off c
wait_state c Off 10
[ "$(json_get "$HVM_STORE/vms/c/vm.json" "len(d['checkpoints'])")" = 1 ] ||
    fail "the layers deleted while running were not folded at turn-off: $(cat "$HVM_STORE/vms/c/vm.json")"
after=$(disk_text c 2097152)
[ "$after" -lt $((n + 15)) ] || fail "the disk kept data written after the checkpoint ($after)"
"$HVM" vm check c
# Revert with memory brings it back running too.
console_mark c
"$HVM" checkpoint revert c
wait_state c Running 10
wait_first_count c 30
[ "$(first_count c)" -le $((n + 3)) ] || fail "revert did not resume at the checkpoint"
"$HVM" vm turn-off c
"$HVM" vm check c
echo ok
