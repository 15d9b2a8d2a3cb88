#!/bin/sh
# A real 3-node cluster (namespace nodes, scripts/cluster/lab.sh): the node
# running an HA counter guest is hard-killed (SIGKILL of its PID 1, every
# process of it gone at once). The cluster fences it and the VM runs again on
# another node from the shared folder; the counter goes on from what the guest
# last wrote to its disk, the owner record names the new node, and once the
# cluster took it offline (saved) vm check passes. Prints the failover time.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
. "$TESTS/cli/clusterlib.sh"

lab up
ha_guest ha1
nx 1 "$NHVM" cluster add ha1 --preferred-owners node2,node3 --verbose 2>add.err
grep -q '^+ cibadmin --create --scope resources' add.err || fail "--verbose did not show the cibadmin command"
src=$(wait_located ha1 60)
[ "$src" = node2 ] || fail "ha1 started on $src, not its preferred owner node2"
wait_console ha1 "HVM-GUEST COUNT 3$" 90
grep -q '^node=node2$' "$HVM_STORE/vms/ha1/cluster-owner" || fail "the owner record does not name node2"
nx 1 "$NHVM" cluster status --json >st.json
[ "$(json_get st.json "[v['state'] for v in d['vms'] if v['name']=='ha1'][0]")" = Running ] || fail "status: ha1 is not Running"
[ "$(json_get st.json "[v['owner'] for v in d['vms'] if v['name']=='ha1'][0]")" = node2 ] || fail "status: ha1's owner is not node2"
gen=$(sed -n 's/^generation=//p' "$HVM_STORE/vms/ha1/cluster-owner")

console_mark ha1
t0=$(date +%s.%N)
lab kill 2
! lab pid1 2 >/dev/null || fail "node2 still runs after lab kill"
last=$(tr -d '\r' <"$(console_log ha1)" | grep -a '^HVM-GUEST COUNT' | tail -1 | awk '{print $3}')
wait_console ha1 '^\[hvm\] (starting|resuming)' 120
wait_first_count ha1 60
t1=$(date +%s.%N)
echo "failover: $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s from the kill of node2 to the first count on the new node"
start=$(console_since ha1 | grep -a '^HVM-GUEST START' | tail -1 | awk '{print $3}')
echo "last count printed on node2: $last; the guest started again at $start"
[ -n "$start" ] && [ "$start" -le "$last" ] && [ "$start" -ge $((last - 1)) ] ||
    fail "the counter did not continue from its disk (last $last, started at '$start')"
dst=$(wait_located ha1 30 node2 3)
grep -q "^node=$dst\$" "$HVM_STORE/vms/ha1/cluster-owner" || fail "the owner record does not name $dst"
[ "$(sed -n 's/^generation=//p' "$HVM_STORE/vms/ha1/cluster-owner")" -gt "$gen" ] || fail "the owner generation did not grow"
grep -q 'action=reboot port=node2' "$HVM_LAB/fence/agent.log" || fail "node2 was not fenced"

nx 3 "$NHVM" cluster offline ha1 >/dev/null
[ "$(nx 3 "$NHVM" vm show ha1 --json | json_get /dev/stdin "d['state']")" = Saved ] || fail "offline did not save ha1"
[ ! -e "$HVM_STORE/vms/ha1/cluster-owner" ] || fail "the owner record outlived the stop"
nx "${dst#node}" "$NHVM" vm check ha1
echo "t97: ha1 failed over from node2 to $dst"
