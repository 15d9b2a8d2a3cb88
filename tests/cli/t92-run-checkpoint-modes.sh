#!/bin/sh
# Online checkpoints taken both ways (pre-copy, the default, and
# --memory-mode stop, the old way) of a guest whose memory and disk
# change: after apply, the counter in memory continues from the counter on
# the checkpoint's disk, the guest keeps counting and reports no corruption,
# for three pre-copied checkpoints in a row. Then kill -9 of the worker
# while a pre-copy is being written: the VM is Off, the checkpoint is
# complete or absent, vm check passes, no half-written state is left.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

"$HVM" vhd create base.vhd --size 8M
GUEST_ARGS="hvm.every=1 hvm.period=0.05" guest_vm c counter --from base.vhd
pid_of() { "$HVM" vm show c --json | json_get /dev/stdin "d['$1']"; }
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 10$" 90

# Rounds of a pre-copied checkpoint (the default) applied at once: each is
# the first pre-copy of a QEMU run, the one most exposed to QEMU 7.2's lost
# TCG writes (src/runtime/ramsize.c: a guest resumed from such a state
# panicked in about one run of two). Then one taken the old way.
# apply_and_check CHECKPOINT: the memory continues from the disk's counter
# (one or two past it: the guest counts, prints, then writes), keeps
# counting, and the kernel reports nothing wrong.
apply_and_check() {
    ck=$(disk_text c 2097152 --checkpoint "$1")
    console_mark c
    "$HVM" checkpoint apply c "$1"
    wait_first_count c 30
    first=$(first_count c)
    echo "$1: disk $ck, memory continues at $first"
    [ "$first" -ge $((ck + 1)) ] && [ "$first" -le $((ck + 2)) ] ||
        fail "$1: the memory (count $first) and the disk (count $ck) are not of one moment"
    wait_console c "HVM-GUEST COUNT $((first + 3))$" 30
    if console_since c | grep -aE "BUG|Oops|panic|general protection|corruption"; then
        fail "$1: the resumed guest reports memory corruption"
    fi
}
for round in 1 2 3; do
    "$HVM" checkpoint take c "ck-pre$round" >take.txt
    grep -q "with memory; the VM was paused for [0-9]* ms" take.txt || fail "precopy: $(cat take.txt)"
    cat take.txt
    apply_and_check "ck-pre$round"
done
"$HVM" checkpoint take c ck-stop --memory-mode stop >take.txt
grep -q "with memory; the VM was paused for [0-9]* ms" take.txt || fail "stop: $(cat take.txt)"
cat take.txt
apply_and_check ck-stop
# --memory-mode takes only its two words.
expect_fail 2 "$HVM" checkpoint take c bad --memory-mode fast

# kill -9 of the worker during a pre-copy checkpoint.
"$HVM" checkpoint take c killed --memory-mode precopy >take.txt 2>&1 &
take=$!
i=0
while ! ls "$HVM_STORE"/vms/c/*.saving "$HVM_STORE"/vms/c/*/*.saving >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 600 ] || break; sleep 0.01
done
w=$(pid_of worker_pid)
kill -9 "$w"
wait $take || true
cat take.txt
# (Off, or Saved when the worker's recovery finds the state it resumed from.)
i=0; while ! "$HVM" vm list | grep -qE "^c +(Off|Saved)"; do i=$((i+1)); [ $i -lt 100 ] || fail "not reported Off"; sleep 0.1; done
"$HVM" vm check c
if "$HVM" checkpoint list c | grep -q " killed "; then
    "$HVM" checkpoint list c | grep " killed " | grep -q "\[memory\]" || fail "the killed checkpoint has no memory"
    echo "the checkpoint completed before the kill"
else
    echo "the checkpoint is absent"
fi
left=$(find "$HVM_STORE/vms/c" -name "*.saving" -o -name "*.tmp")
[ -z "$left" ] || fail "left behind: $left"
"$HVM" vm start c --accel "$ACCEL"
wait_state c Running 30
"$HVM" vm turn-off c
"$HVM" vm check c
echo ok
