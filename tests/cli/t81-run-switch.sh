#!/bin/sh
# A running VM's adapter on a bridge switch: the worker makes a tap
# (IFF_VNET_HDR), puts it on the switch's bridge and hands it to QEMU as
# -netdev tap,fd=N; vm start brings the switch up itself. The guest reaches
# the host's address on an internal switch (ping through bridge and tap);
# turn-off and kill -9 of the worker leave no tap. An adapter on a switch
# that is not a bridge switch keeps user-mode networking.
#
# Runs in a network namespace of its own (netlib.sh): every hvm command is
# checked to run outside the host's, whose hvm interfaces are compared
# before and after.
set -eu
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup
ports() { ip -j link show master "$1" | json_get /dev/stdin "[l['ifname'] for l in d]"; }
nports() { ip -j link show master "$1" | json_get /dev/stdin "len(d)"; }
pid_of() { "$HVM" vm show "$1" --json | json_get /dev/stdin "d['$2']"; }

"$HVM" switch create mgmt --type internal --address 10.30.0.1/24 >/dev/null
"$HVM" switch create lan --type private >/dev/null
guest_vm g shell --new-disk 16M --nic mgmt
# No 'switch up': vm start brings the bridge up.
"$HVM" vm start g --accel "$ACCEL"
[ "$(ip -j addr show dev hvm-mgmt | json_get /dev/stdin "[a['local'] for a in d[0]['addr_info'] if a['family'] == 'inet']")" = "['10.30.0.1']" ] ||
    fail "vm start did not bring the switch up: $(ip -br addr)"
tap=$(ip -j link show master hvm-mgmt | json_get /dev/stdin "d[0]['ifname'] if len(d) == 1 else ''")
case "$tap" in hvmt*) ;; *) fail "no tap on hvm-mgmt: $(ip -br link)" ;; esac
[ "$(ip -j -d link show dev "$tap" | json_get /dev/stdin "d[0]['linkinfo']['info_data']['type'], d[0]['linkinfo']['info_data']['vnet_hdr'], d[0]['linkinfo']['info_data']['persist']")" = "tap True False" ] ||
    fail "$tap is not a non-persistent tap with a virtio-net header: $(ip -j -d link show dev "$tap")"
q=$(pid_of g qemu_pid)
tr '\0' ' ' </proc/"$q"/cmdline | grep -q -- "-netdev tap,id=net0,fd=[0-9]" || fail "QEMU has no -netdev tap: $(tr '\0' ' ' </proc/"$q"/cmdline)"
ls -l /proc/"$q"/fd | grep -q "/dev/net/tun" || fail "QEMU does not hold the tap"
[ "$("$HVM" switch show mgmt --json | json_get /dev/stdin "d['ports']")" = "['$tap']" ] || fail "switch show: ports"
expect_fail 2 "$HVM" switch down mgmt
last_error | grep -q "has ports ($tap)" || fail "switch down with a running VM: $(last_error)"

# The guest's traffic goes through the tap and the bridge: it pings the host's address.
console_mark g
wait_console g "HVM-GUEST READY" 90
console_mark g
type_cmd g 'for n in /sys/class/net/e*; do n=${n##*/}; ip link set $n up; ip addr add 10.30.0.2/24 dev $n; done; ping -c 3 -W 5 10.30.0.1 >/dev/null && echo NET-PING-OK || echo NET-PING-FAILED'
wait_console g "^NET-PING-(OK|FAILED)" 120
console_since g | grep -q "^NET-PING-OK" || { console_since g | tail -20 >&2; fail "the guest cannot ping the host on the internal switch"; }

# turn-off: QEMU goes, the tap with it.
"$HVM" vm turn-off g
wait_state g Off 20
for i in $(seq 100); do [ "$(ports hvm-mgmt)" = "[]" ] && break; sleep 0.05; done
[ "$(ports hvm-mgmt)" = "[]" ] || fail "a tap outlived the VM: $(ports hvm-mgmt)"
! ip link show dev "$tap" >/dev/null 2>&1 || fail "$tap outlived the VM"

# kill -9 of the worker: QEMU goes with it, and the tap.
"$HVM" vm set g --add-nic lan
"$HVM" vm start g --accel "$ACCEL"
[ "$(nports hvm-mgmt)" = 1 ] && [ "$(nports hvm-lan)" = 1 ] ||
    fail "two adapters, two taps: $(ip -br link)"
w=$(pid_of g worker_pid)
q=$(pid_of g qemu_pid)
kill -9 "$w"
i=0; while kill -0 "$q" 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ] || fail "QEMU outlived its worker"; sleep 0.1; done
for i in $(seq 100); do [ "$(ports hvm-mgmt)$(ports hvm-lan)" = "[][]" ] && break; sleep 0.05; done
[ "$(ports hvm-mgmt)$(ports hvm-lan)" = "[][]" ] || fail "taps outlived a killed worker: $(ip -br link)"
[ -z "$(ip -br link | grep '^hvmt')" ] || fail "taps left: $(ip -br link)"

# A switch that is not a bridge switch (a plain name, user-mode) keeps -nic user.
$PY - "$HVM_STORE/switches.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["switches"].append("wan")
json.dump(d, open(sys.argv[1], "w"))
PYEOF
guest_vm u shell --new-disk 16M --nic wan
"$HVM" vm start u --accel "$ACCEL"
q=$(pid_of u qemu_pid)
tr '\0' ' ' </proc/"$q"/cmdline | grep -q -- "-nic user,model=virtio-net-pci" || fail "a user switch's adapter is not user-mode"
[ -z "$(ip -br link | grep '^hvmt')" ] || fail "a user switch's adapter got a tap"
"$HVM" vm turn-off u
echo "t81-run-switch: ok"
