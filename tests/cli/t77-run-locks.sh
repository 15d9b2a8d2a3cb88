#!/bin/sh
# A running VM's worker holds its leaf's write lock (docs/locks.md): `hvm
# vhd serve` and `hvm vhd merge --force` of the leaf are refused naming the
# VM, its drive and its state; inspection still works; the VM is intact
# afterwards. An online checkpoint moves the exclusive lock to the new leaf
# and keeps the frozen one shared (no longer writable by anyone).
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

guest_vm r1 shell --new-disk 16M
"$HVM" checkpoint take r1 first >/dev/null # the leaf is a differencing disk now
"$HVM" vm start r1 --accel "$ACCEL"
console_mark r1
wait_console r1 "HVM-GUEST READY" 60

leaf() { jget "$HVM_STORE/vms/r1/vm.json" config drives 0 file; }
cd "$HVM_STORE/vms/r1"
l=$(leaf)
running="$l is drive 0 of VM 'r1', which is Running; stop it or use 'hvm vm serve'"
expect_fail 2 timeout 10 "$HVM" vhd serve "$l" --socket "$T/x.sock"
grep -qxF "hvm: $running" "$T/.err" || { cat "$T/.err" >&2; fail "serve: message"; }
[ ! -e "$T/x.sock" ] || fail "the refused server left a socket"
expect_fail 2 "$HVM" vhd merge "$l" --force
grep -qxF "hvm: $running" "$T/.err" || { cat "$T/.err" >&2; fail "merge: message"; }
[ -e "$l" ] || fail "the running VM's leaf was merged away"
"$HVM" vhd info "$l" >/dev/null
check_clean "$l"
"$HVM" vhd serve "$l" --read-only --socket "$T/ro.sock" 2>"$T/ro.err" &
ro=$!
while [ ! -S "$T/ro.sock" ]; do kill -0 $ro || { cat "$T/ro.err" >&2; fail "read-only serve exited"; }; sleep 0.05; done
kill -TERM $ro; wait $ro || fail "read-only serve failed"

# Online checkpoint: the new leaf is locked, the frozen one is read by the chain.
"$HVM" checkpoint take r1 online >/dev/null
old=$l l=$(leaf)
[ "$l" != "$old" ] || fail "no new leaf"
expect_fail 2 "$HVM" vhd compact "$l"
grep -qxF "hvm: $l is drive 0 of VM 'r1', which is Running; stop it or use 'hvm vm serve'" "$T/.err" \
    || { cat "$T/.err" >&2; fail "new leaf: message"; }
expect_fail 2 "$HVM" vhd resize "$old" --size 32M --force
grep -qF "hvm: $old is the disk of checkpoint 'online' (drive 0) of VM 'r1', which is Running" "$T/.err" \
    || { cat "$T/.err" >&2; fail "frozen leaf: message"; }

"$HVM" vm turn-off r1
wait_state r1 Off 10
"$HVM" vm check r1 >/dev/null || fail "vm check after the refusals"
# Off: the locks went with the worker.
"$HVM" vhd compact "$l" >/dev/null
"$HVM" vm check r1 >/dev/null || fail "vm check after compact"
echo ok
