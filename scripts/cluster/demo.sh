#!/bin/bash
# make cluster-demo / make cluster-check: the failover clustering story on a
# real 3-node lab cluster (lab.sh), each step checked (exit 1 at the first
# that fails). Always tears the lab down.
#   1. two HA counter guests: web (preferred owners node1,node2, failback
#      immediate) and db (offline action shutdown)
#   2. cluster move --quick: db saved on its node, resumed on another, the counter goes on
#   3. drain node1: web migrates to node2; resume node1: web fails back (immediate)
#   4. the owner record: the agent's start forced on another node is refused
#   5. hard kill of db's node: db runs again elsewhere, the counter continues from its disk
#   6. --restart never: batch's QEMU killed, it stays stopped and the status says why
#   7. quorum loss: one node fenced (cluster fence-test), one killed: the last one stops its VMs
# Environment: HVM (the hvm binary), GUEST_DIR (the test guest), HVM_LAB.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?set HVM to the hvm binary}"
GUEST=${GUEST_DIR:?set GUEST_DIR to the test guest}
export HVM_LAB=${HVM_LAB:-/tmp/hvm-cluster-demo} HVM
LAB="bash $here/lab.sh"
S=$HVM_LAB/shared
H=$HVM_LAB/bin/hvm
trap '$LAB down >/dev/null 2>&1' EXIT
trap 'exit 1' INT TERM

step() { echo; echo "== $*"; }
die() {
    echo "cluster-demo: FAILED: $*" >&2
    for i in 1 2 3; do $LAB nx $i "$H" cluster status 2>/dev/null && break; done
    exit 1
}
nx() { $LAB nx "$@"; }
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }
alive_node() { for i in 1 2 3; do $LAB pid1 $i >/dev/null && { echo $i; return; }; done; }
status_of() { # VM FIELD: from cluster status --json on a live node
    nx "$(alive_node)" "$H" cluster status --json 2>/dev/null |
        python3 -c "import json,sys; d=json.load(sys.stdin); print(([str(v.get('$2')) for v in d['vms'] if v['name']=='$1'] or [''])[0])"
}
wait_running() { # VM SECONDS [NOT]: the node it runs on (cluster status and owner record agree)
    for _ in $(seq 1 $(($2 * 2))); do
        at=$(status_of "$1" owner) st=$(status_of "$1" state)
        if [ "$st" = Running ] && [ "$at" != "${3:-}" ] && grep -qx "node=$at" "$S/vms/$1/cluster-owner" 2>/dev/null; then
            echo "$at"; return 0
        fi
        sleep 0.5
    done
    die "$1 does not run${3:+ on a node other than $3} after $2 s"
}
log() { echo "$S/vms/$1/run/console.log"; }
counts() { tr -d '\r' <"$(log "$1")" | grep -a '^HVM-GUEST COUNT' | tail -1 | awk '{print $3}'; }
mark() { stat -c %s "$(log "$1")" 2>/dev/null || echo 0; }
since_mark() { tail -c +$(($2 + 1)) "$(log "$1")" 2>/dev/null | tr -d '\r'; }
wait_text() { # VM MARK REGEX SECONDS
    for _ in $(seq 1 $(($4 * 10))); do since_mark "$1" "$2" | grep -aEq "$3" && return 0; sleep 0.1; done
    die "$1: no '$3' on the console within $4 s"
}
guest() {
    nx 1 "$H" vm create "$1" --memory 256M --firmware bios --new-disk 64M >/dev/null &&
        nx 1 "$H" vm set "$1" --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
            --cmdline "console=ttyS0 hvm.mode=counter hvm.every=1 hvm.period=0.2" >/dev/null ||
        die "could not create $1"
}

step "a 3-node cluster of namespace nodes (Corosync token ${TOKEN:-1000} ms, poison-pill fencing)"
t=$(now)
$LAB up || die "lab up"
echo "cluster formed in $(since "$t") s"
guest web; guest db; guest batch

step "1. web and db become highly available"
nx 1 "$H" cluster add web --preferred-owners node1,node2 --failback immediate --verbose || die "add web"
nx 1 "$H" cluster add db --offline-action shutdown --shutdown-timeout 20 || die "add db"
w=$(wait_running web 120); d=$(wait_running db 120)
[ "$w" = node1 ] || die "web runs on $w, not its preferred owner node1"
m=$(mark web); wait_text web "$m" "HVM-GUEST COUNT" 90
nx 1 "$H" cluster status

d=$(wait_running db 60); to=$([ "$d" = node3 ] && echo node2 || echo node3)
step "2. cluster move db $to --quick (saved on $d, resumed on $to)"
m=$(mark db); before=$(counts db); t=$(now)
nx 1 "$H" cluster move db "$to" --quick --verbose || die "move"
d=$(wait_running db 60)
[ "$d" = "$to" ] || die "db runs on $d after the move"
wait_text db "$m" "^\[hvm\] resuming" 30
m2=$(mark db); wait_text db "$m2" "HVM-GUEST COUNT" 30
since_mark db "$m" | grep -aq "HVM-GUEST START" && die "db booted again instead of resuming"
echo "db moved in $(since "$t") s; its counter went on from $before to $(counts db)"

step "3. cluster drain node1: web migrates to node2; resume node1: web fails back"
nx 2 "$H" cluster drain node1 || die "drain"
w=$(wait_running web 60 node1)
[ "$w" = node2 ] || die "web went to $w, not its second preferred owner node2"
nx 2 "$H" cluster status | grep -q '^node1 *drained' || die "node1 is not shown drained"
[ "$(status_of db owner)" != node1 ] || die "db still on node1"
nx 2 "$H" cluster resume node1 || die "resume"
for _ in $(seq 1 120); do [ "$(status_of web owner)" = node1 ] && break; sleep 0.5; done
[ "$(wait_running web 30)" = node1 ] || die "web did not fail back to node1"
echo "web is back on node1"

step "4. the owner record: a start forced on another node while web runs is refused"
w=$(wait_running web 60); o=$([ "$w" = node2 ] && echo 3 || echo 2)
if nx $o env OCF_ROOT=/usr/lib/ocf OCF_RESKEY_vm=web OCF_RESKEY_store=/mnt/shared \
    /usr/lib/ocf/resource.d/hvm/VirtualMachine start 2>forced.err; then
    die "node$o started web while $w runs it"
fi
grep 'ocf-exit-reason' forced.err; rm -f forced.err

step "5. hard kill of db's node: db runs again on another node from the shared folder"
d=$(wait_running db 60); m=$(mark db); t=$(now)
$LAB kill "${d#node}"
last=$(counts db)
wait_text db "$m" '^\[hvm\] (starting|resuming)' 120
m2=$(mark db); wait_text db "$m2" "HVM-GUEST COUNT" 60
echo "failover: $(since "$t") s from the kill of $d to db's counter printing again"
start=$(since_mark db "$m" | grep -a '^HVM-GUEST START' | tail -1 | awk '{print $3}')
[ -n "$start" ] && [ "$start" -ge $((last - 1)) ] || die "db's counter did not continue (last $last, start '$start')"
echo "db printed $last on $d and started again at $start on $(wait_running db 30 "$d")"
$LAB start "${d#node}"; $LAB wait-online "$(alive_node)" 1 2 3 || die "$d did not come back"

step "6. --restart never: batch's QEMU is killed; it stays stopped"
nx 1 "$H" cluster add batch --restart never || die "add batch"
b=$(wait_running batch 120)
q=$(nx "${b#node}" "$H" vm show batch --json | python3 -c "import json,sys; print(json.load(sys.stdin)['qemu_pid'])")
nx "${b#node}" kill -9 "$q"
for _ in $(seq 1 60); do [ "$(status_of batch state)" = Failed ] && break; sleep 1; done
[ "$(status_of batch state)" = Failed ] || die "batch is $(status_of batch state), not Failed"
sleep 5
[ "$(status_of batch state)" = Failed ] || die "batch was restarted"
nx "$(alive_node)" "$H" cluster status | grep -A2 '^batch'

step "7. quorum loss: one node fenced by hvm cluster fence-test, one killed; the last stops its VMs"
w=$(wait_running web 60)
keep=${w#node}
# the first through the cluster's own fencing (hvm cluster fence-test), the second a hard kill
first=
for i in 1 2 3; do
    [ $i = "$keep" ] && continue
    if [ -z "$first" ]; then
        first=$i
        nx "$keep" "$H" cluster fence-test node$i --yes --verbose || die "fence-test node$i"
        ! $LAB pid1 $i >/dev/null || die "node$i survived its fencing"
    else
        $LAB kill $i
    fi
done
for _ in $(seq 1 120); do
    st=$(nx "$keep" "$H" vm show web --json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])" 2>/dev/null)
    case "$st" in Saved | Off) break ;; esac
    sleep 0.5
done
case "$st" in Saved | Off) ;; *) die "web is still '$st' on node$keep without quorum" ;; esac
echo "node$keep lost quorum and stopped web (now $st)"
nx "$keep" "$H" cluster status | head -1
echo; echo "cluster-demo: every step passed"
