#!/bin/bash
# make cluster-bench: failover time of an HA counter guest when the node that
# runs it is hard-killed (SIGKILL of its PID 1), RUNS times (default 3) on one
# lab cluster (Corosync token TOKEN ms, default 1000), with where the time
# goes, from the nodes' Pacemaker logs and the console:
#   detect   kill -> the survivors' Pacemaker sees the node lost (token + consensus)
#   fence    -> the fence agent confirmed the node dead
#   start    -> the agent's start ended (owner record taken, hvm vm start)
#   guest    -> the guest's counter printed again (boot and counter read from disk)
# Environment: HVM, GUEST_DIR, HVM_LAB, RUNS, TOKEN.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?set HVM to the hvm binary}"
GUEST=${GUEST_DIR:?set GUEST_DIR to the test guest}
export HVM_LAB=${HVM_LAB:-/tmp/hvm-cluster-bench} HVM
RUNS=${RUNS:-3}
LAB="bash $here/lab.sh"
S=$HVM_LAB/shared H=$HVM_LAB/bin/hvm
trap '$LAB down >/dev/null 2>&1' EXIT
trap 'exit 1' INT TERM
die() { echo "cluster-bench: $*" >&2; exit 1; }
nx() { $LAB nx "$@"; }
ms() { date +%s%3N; }
# pacemaker log time (HH:MM:SS.mmm of today) -> epoch ms
log_ms() { [ -n "$1" ] && date -d "$(date +%F) $1" +%s%3N; }
alive_node() { for i in 1 2 3; do $LAB pid1 $i >/dev/null && { echo $i; return; }; done; }
owner() { sed -n 's/^node=//p' "$S/vms/bench/cluster-owner" 2>/dev/null; }
C=$S/vms/bench/run/console.log

$LAB up || die "lab up failed"
nx 1 "$H" vm create bench --memory 256M --firmware bios --new-disk 64M >/dev/null || die "vm create"
nx 1 "$H" vm set bench --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
    --cmdline "console=ttyS0 hvm.mode=counter hvm.every=1 hvm.period=0.1" >/dev/null
nx 1 "$H" cluster add bench >/dev/null || die "cluster add"
printf '%-4s %-7s %-7s %8s %8s %8s %8s %8s\n' run from to detect fence start guest total
for r in $(seq 1 "$RUNS"); do
    for _ in $(seq 1 600); do
        o=$(owner); [ -n "$o" ] && grep -aq '^HVM-GUEST COUNT' "$C" 2>/dev/null && break; sleep 0.2
    done
    [ -n "$o" ] || die "bench runs nowhere"
    # the counter prints: the guest runs
    sz=$(stat -c %s "$C"); for _ in $(seq 1 300); do [ "$(stat -c %s "$C")" -gt "$sz" ] && break; sleep 0.1; done
    sz=$(stat -c %s "$C")
    t0=$(ms)
    $LAB kill "${o#node}"
    while ! tail -c +$((sz + 1)) "$C" | awk '/^\[hvm\] /{n=1} n && /^HVM-GUEST COUNT/{f=1} END{exit !f}'; do
        [ $(($(ms) - t0)) -lt 180000 ] || die "no failover within 180 s"
        sleep 0.05
    done
    t4=$(ms)
    to=$(owner)
    L=$HVM_LAB/nodes/n${to#node}/var-log-pacemaker/pacemaker.log
    t1=$(log_ms "$(grep -a "Node $o state is now lost" "$L" | tail -1 | awk '{print $3}')")
    t2=$(log_ms "$(grep -ah "Operation 'reboot' targeting $o .*OK" "$HVM_LAB"/nodes/n*/var-log-pacemaker/pacemaker.log | tail -1 | awk '{print $3}')")
    t3=$(log_ms "$(grep -a "Result of start operation for vm-bench on $to: ok" "$L" | tail -1 | awk '{print $3}')")
    f() { [ -n "$2" ] && [ -n "$1" ] && awk "BEGIN{printf \"%.1f\", ($2 - $1) / 1000}" || echo "?"; }
    printf '%-4s %-7s %-7s %8s %8s %8s %8s %8s\n' "$r" "$o" "$to" "$(f "$t0" "$t1")" "$(f "$t1" "$t2")" \
        "$(f "$t2" "$t3")" "$(f "$t3" "$t4")" "$(f "$t0" "$t4")"
    $LAB start "${o#node}"
    $LAB wait-online "$(alive_node)" 1 2 3 || die "$o did not rejoin"
    $LAB wait-idle 120
done
echo "(seconds; token ${TOKEN:-1000} ms; load: $(cut -d' ' -f1-3 /proc/loadavg))"
