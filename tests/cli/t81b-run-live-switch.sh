#!/bin/sh
# A running VM's adapter changes switch and VLAN: vm set --set-nic MAC
# --switch / --vlan moves its tap to the other bridge (the guest keeps its
# adapter). The host has 10.71.0.1 on internal switch one and 10.72.0.1 on
# two and answers ARP only on the bridge that has the address
# (arp_ignore=1), so what the guest reaches shows which bridge its tap is
# on. Everything in a network namespace of the test's own (netlib.sh).
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup
sysctl -qw net.ipv4.conf.all.arp_ignore=1

"$HVM" switch create one --type internal --address 10.71.0.1/24 >/dev/null
"$HVM" switch create two --type internal --address 10.72.0.1/24 >/dev/null
"$HVM" switch up two >/dev/null
guest_vm g shell --nic one
mac=$("$HVM" vm show g --json | json_get /dev/stdin "d['nics'][0]['mac']")
"$HVM" vm start g --accel "$ACCEL"
wait_console g "HVM-GUEST READY" 120
guest_ip g 10.71.0.2/24
guest_do g ADDR2 30 "ip addr add 10.72.0.2/24 dev eth0" || fail "second address"
reach() { # TAG ADDRESS: the guest pings ADDRESS (its ARP cache emptied first)
    guest_do g "$1" 60 "ip neigh flush dev eth0; ping -c 2 -W 3 $2 >/dev/null"
}
master() { ip -j link show master "$1" | json_get /dev/stdin "len(d)"; }
reach P1 10.71.0.1 || fail "the guest cannot reach the host on switch one"
! reach P2 10.72.0.1 || fail "the guest reaches switch two's address from switch one"

expect_fail 2 "$HVM" vm set g --set-nic "$mac" --model e1000e
last_error | grep -q "Running" || fail "a model change of a running VM: $(last_error)"
"$HVM" vm set g --set-nic "$mac" --switch two >/dev/null
[ "$(master hvm-two)" = 1 ] && [ "$(master hvm-one)" = 0 ] || fail "the tap is not on hvm-two: $(ip -br link)"
[ "$("$HVM" vm show g --json | json_get /dev/stdin "d['nics'][0]['switch']")" = two ] || fail "vm.json does not say switch two"
reach P3 10.72.0.1 || fail "after the move the guest cannot reach switch two's address"
! reach P4 10.71.0.1 || fail "after the move the guest still reaches switch one"

# A VLAN of the running adapter: its own bridge (this kernel has no VLAN filtering), and back.
"$HVM" vm set g --set-nic "$mac" --vlan 5 >/dev/null
[ "$(master hvv-two.5)" = 1 ] && [ "$(master hvm-two)" = 0 ] || fail "VLAN 5: the tap is not on hvv-two.5: $(ip -br link)"
! reach P5 10.72.0.1 || fail "on VLAN 5 the guest reaches the untagged host address"
"$HVM" vm set g --set-nic "$mac" --vlan 0 >/dev/null
[ "$(master hvm-two)" = 1 ] || fail "VLAN 0: the tap is not back on hvm-two"
reach P6 10.72.0.1 || fail "back untagged, the guest cannot reach switch two's address"
"$HVM" vm turn-off g
echo "t81b-run-live-switch: ok"
