#!/bin/sh
# Save and resume: the guest's counter continues from where it was saved,
# not from zero. Pause stops it; resume continues it.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

guest_vm c counter --new-disk 16M
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 8$" 90
"$HVM" vm pause c
sleep 1
console_mark c
sleep 1
[ -z "$(last_count c)" ] || fail "the counter ran while paused"
"$HVM" vm resume c
wait_console c "HVM-GUEST COUNT" 10
console_mark c
wait_console c "HVM-GUEST COUNT" 10
"$HVM" vm save c
n=$(last_count c)
echo "saved at $n"
[ "$("$HVM" vm show c --json | json_get /dev/stdin "d['state']")" = Saved ] || fail "not Saved"
"$HVM" vm list | grep -E "^c +Saved" || fail "list does not show Saved"
console_mark c
"$HVM" vm start c
wait_first_count c 30
first=$(first_count c)
echo "resumed at $first"
console_since c | grep -aq "HVM-GUEST START\|HVM-GUEST READY" && fail "the guest booted again instead of resuming"
[ "$first" -gt "$n" ] && [ "$first" -le $((n + 3)) ] || fail "counter resumed at $first, saved at $n"
"$HVM" vm turn-off c
wait_state c Off 10
"$HVM" vm check c
ls "$HVM_STORE/vms/c/checkpoints" | grep -q . && fail "a saved state was left behind"
echo ok
