#!/bin/sh
# Export of a running VM goes through a checkpoint taken online: the bundle
# holds that moment (Saved, with memory); imported and started, the guest
# resumes there. The running VM itself goes on, its tree unchanged.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

"$HVM" vhd create base.vhd --size 64M
GUEST_ARGS="hvm.every=1" guest_vm c counter --from base.vhd
"$HVM" checkpoint take c first
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 5$" 90
n0=$(last_count c)
"$HVM" vm export c "$T/exp"
n=$(last_count c)
[ "$("$HVM" vm show c --json | json_get /dev/stdin "d['state']")" = Running ] || fail "the VM stopped"
"$HVM" checkpoint list c --json | json_get /dev/stdin "[x['name'] for x in d['tree']]" | grep -q "first" || fail "tree changed"
"$HVM" checkpoint list c | grep -q Export && fail "the export checkpoint is visible"
"$HVM" vm import "$T/exp" --mode copy --name c2
[ "$("$HVM" vm show c2 --json | json_get /dev/stdin "d['state']")" = Saved ] || fail "the copy is not Saved"
"$HVM" checkpoint list c2 | grep -q first || fail "the copy lacks the tree"
console_mark c2
"$HVM" vm start c2 --accel "$ACCEL"
wait_first_count c2 30
first=$(first_count c2)
echo "exported near $n, the copy resumed at $first"
# The export's moment lies within the command (with pre-copy: where the
# memory copy switched over, not at its start).
[ "$first" -le $((n + 1)) ] && [ "$first" -ge "$n0" ] || fail "the copy resumed at $first, exported between $n0 and $n"
"$HVM" vm turn-off c2
"$HVM" vm turn-off c
"$HVM" vm check c
"$HVM" vm check c2
echo ok
