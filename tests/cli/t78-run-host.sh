#!/bin/sh
# hvm host start | stop, Hyper-V's automatic actions, on real guests: of
# three VMs two have autostart (delays 3 and 0 s) and one not, a fourth with
# autostart cannot start (its disk is gone). host start starts exactly the
# two, in delay order and not before their delays, reports the broken one and
# exits 2. host stop applies each running VM's autostop (in parallel): save
# leaves a Saved VM that vm start resumes (the guest's counter continues),
# turn-off and shutdown (ACPI) leave it Off. Plus --json, --help, and
# data/systemd/hvm.service checked by systemd-analyze verify when it exists.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

# The unit file first (needs no guest).
unit="$TESTS/../data/systemd/hvm.service"
[ -f "$unit" ] || fail "no $unit"
grep -qx "Type=oneshot" "$unit" && grep -qx "RemainAfterExit=yes" "$unit" || fail "hvm.service: not a oneshot that remains"
grep -q "^ExecStart=-hvm host start$" "$unit" && grep -q "^ExecStop=.*hvm host stop$" "$unit" || fail "hvm.service: Exec lines"
if command -v systemd-analyze >/dev/null; then
    # verify wants the ExecStart binary to exist: a copy naming ours.
    mkdir -p "$T/unit"
    sed "s|^\(Exec[A-Za-z]*=-*\)hvm |\1$HVM |" "$unit" >"$T/unit/hvm.service"
    SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$T/unit/hvm.service" >"$T/verify.txt" 2>&1 ||
        { cat "$T/verify.txt"; fail "systemd-analyze verify hvm.service"; }
    grep -i "hvm.service" "$T/verify.txt" && fail "systemd-analyze verify complains about hvm.service"
else
    echo "systemd-analyze is not installed: hvm.service not verified"
fi

. "$TESTS/cli/rtlib.sh"
for v in start stop; do
    "$HVM" host "$v" --help | grep -q "usage: hvm host $v" || fail "host $v --help"
done
GUEST_ARGS="hvm.every=1"
guest_vm late counter --new-disk 16M
guest_vm early counter --new-disk 16M
guest_vm manual counter --new-disk 16M
guest_vm broken counter --new-disk 16M
"$HVM" vm set late --autostart on --autostart-delay 3 --autostop save
"$HVM" vm set early --autostart on --autostop turn-off
"$HVM" vm set broken --autostart on --autostart-delay 1
rm "$HVM_STORE"/vms/broken/disks/*.vhd

set +e
"$HVM" host start --accel "$ACCEL" --json >start.json 2>start.err
rc=$?
set -e
cat start.json start.err
[ $rc = 2 ] || fail "host start exited $rc with a VM that cannot start"
[ "$(wc -l <start.err)" = 1 ] && grep -q "^hvm: VM 'broken' did not start: .*\.vhd" start.err || fail "the failure is not one line naming broken's disk"
[ "$(json_get start.json "[v['name'] for v in d['vms']]")" = "['early', 'broken', 'late']" ] || fail "start order"
[ "$(json_get start.json "[v['result'] for v in d['vms']]")" = "['started', 'failed', 'started']" ] || fail "results"
[ "$(json_get start.json "d['started'], d['failed']")" = "2 1" ] || fail "counts"
json_get start.json "d['vms'][0]['at_ms'] < 3000 <= d['vms'][2]['at_ms']" | grep -qx True || fail "late did not wait for its delay"
for v in early late; do wait_state $v Running 5; done
for v in manual broken; do wait_state $v Off 5; done
"$HVM" vm check broken >/dev/null 2>&1 && fail "broken checks clean without its disk"

# Running VMs: host start again starts nothing more (the broken one fails again).
set +e
"$HVM" host start --accel "$ACCEL" >again.txt 2>again.err
set -e
grep -q "^VM 'early' is running already" again.txt && grep -q "^VM 'late' is running already" again.txt || { cat again.txt; fail "second start"; }
grep -q "^host start: 0 started, 1 failed" again.txt || fail "second start's summary"

# The automatic actions change on a running VM too; one more by hand, shut down by ACPI.
"$HVM" vm set manual --autostop shutdown
"$HVM" vm start manual --accel "$ACCEL"
"$HVM" vm set late --autostop save
console_mark late
console_mark manual
wait_console late "HVM-GUEST COUNT [0-9]+$" 90
wait_console early "HVM-GUEST COUNT [0-9]+$" 90
wait_console manual "HVM-GUEST COUNT 3$" 90

"$HVM" host stop --timeout 60 >stop.txt
n=$(last_count late)
cat stop.txt
grep -q "^VM 'late' saved in .* (Saved)$" stop.txt || fail "late not saved"
grep -q "^VM 'early' turned off in .* (Off)$" stop.txt || fail "early not turned off"
grep -q "^VM 'manual' shut down in .* (Off)$" stop.txt || fail "manual not shut down"
grep -q "^host stop: 3 stopped, 0 failed$" stop.txt || fail "stop summary"
console_since manual | grep -aq "HVM-GUEST POWEROFF acpi" || fail "manual was not shut down through ACPI"
wait_state late Saved 5
wait_state early Off 5
wait_state manual Off 5
"$HVM" host stop --json >stop.json
[ "$(json_get stop.json "d['vms'], d['stopped'], d['failed']")" = "[] 0 0" ] || fail "a second stop did something"

# The saved VM resumes where it was saved.
console_mark late
"$HVM" vm start late --accel "$ACCEL"
wait_first_count late 30
first=$(first_count late)
echo "saved at $n, resumed at $first"
console_since late | grep -aq "HVM-GUEST START\|HVM-GUEST READY" && fail "late booted again instead of resuming"
[ "$first" -gt "$n" ] && [ "$first" -le $((n + 3)) ] || fail "counter resumed at $first, saved at $n"
"$HVM" host stop --json >stop2.json
[ "$(json_get stop2.json "[(v['name'], v['action'], v['state'], v['ok']) for v in d['vms']]")" = "[('late', 'save', 'Saved', True)]" ] || { cat stop2.json; fail "stop --json"; }
"$HVM" vm turn-off late 2>/dev/null || true
for v in early late manual; do "$HVM" vm check $v >/dev/null; done
echo ok
