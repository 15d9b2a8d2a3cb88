#!/bin/sh
# VLANs on a private switch. This kernel (like CI's) has no bridge VLAN
# filtering, which hvm detects over netlink: each VLAN of the switch is a
# bridge of its own (hvv-lan.10, hvv-lan.20). Two guests on VLAN 10 ping
# each other; a guest on VLAN 20 cannot reach them, and can once
# 'vm set --set-nic MAC --vlan 10' moves it. A checkpoint keeps the
# adapter's VLAN. On a kernel with VLAN filtering the test skips the
# per-bridge checks (that path is not testable here).
#
# Runs in a network namespace of its own (netlib.sh).
set -eu
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup
nports() { ip -j link show master "$1" | json_get /dev/stdin "len(d)"; }
nic() { "$HVM" vm show "$1" --json | json_get /dev/stdin "d['nics'][0]$2"; }

"$HVM" switch create lan --type private >/dev/null
# The adapters: VLAN, MAC and model are kept in vm.json.
guest_vm a shell --new-disk 16M
guest_vm b shell --new-disk 16M
guest_vm c shell --new-disk 16M
"$HVM" vm set a --add-nic lan --vlan 10 --mac 52:54:00:00:10:0a
"$HVM" vm set b --add-nic lan --vlan 10 --mac 52:54:00:00:10:0b --model virtio
"$HVM" vm set c --add-nic lan --vlan 20 --mac 52:54:00:00:20:0c
[ "$(nic a "['vlan']")" = 10 ] && [ "$(nic a "['mac']")" = 52:54:00:00:10:0a ] || fail "vm set --add-nic --vlan --mac"
[ "$(nic b "['model']")" = virtio ] || fail "vm set --model"
"$HVM" vm show a | grep -q "on switch lan, VLAN 10" || fail "vm show: no VLAN"

# Bad input: one line each, nothing changed.
expect_fail 2 "$HVM" vm set a --add-nic lan --vlan 4095
expect_fail 2 "$HVM" vm set a --set-nic 52:54:00:00:10:0a --model rtl8139
expect_fail 2 "$HVM" vm set a --set-nic 52:54:00:99:99:99 --vlan 3
last_error | grep -q "no network adapter 52:54:00:99:99:99" || fail "set-nic unknown MAC: $(last_error)"
expect_fail 2 "$HVM" vm set a --add-nic lan --mac 52:54:00:00:10:0a
last_error | grep -q "has a network adapter 52:54:00:00:10:0a already" || fail "duplicate MAC: $(last_error)"
expect_fail 2 "$HVM" vm set a --vlan 3
$PY - "$HVM_STORE/switches.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["switches"].append("wan")
json.dump(d, open(sys.argv[1], "w"))
PYEOF
expect_fail 2 "$HVM" vm set a --add-nic wan --vlan 5
last_error | grep -q "switch 'wan' is of type user: VLANs need a bridge switch" || fail "VLAN on a user switch: $(last_error)"
cfg="$HVM_STORE/vms/a/vm.json"
cp "$cfg" "$T/vm.json.good"
$PY - "$cfg" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["config"]["nics"][0]["vlan"] = 5000
json.dump(d, open(sys.argv[1], "w"))
PYEOF
expect_fail 2 "$HVM" vm show a
last_error | grep -q "nics\[0\].vlan: 5000 is out of range" || fail "vm.json vlan 5000: $(last_error)"
cp "$T/vm.json.good" "$cfg"

# A checkpoint keeps the VLAN: applying one taken on VLAN 20 restores 20.
"$HVM" checkpoint take c on20 >/dev/null
"$HVM" vm set c --set-nic 52:54:00:00:20:0c --vlan 30
[ "$(nic c "['vlan']")" = 30 ] || fail "vm set --set-nic --vlan"
"$HVM" checkpoint apply c on20 >/dev/null
[ "$(nic c "['vlan']")" = 20 ] || fail "checkpoint apply did not restore VLAN 20: $(nic c "")"

# Running: a bridge per VLAN, the switch's own bridge without ports.
for v in a b c; do "$HVM" vm start $v --accel "$ACCEL"; done
mode=$("$HVM" switch show lan --json | json_get /dev/stdin "d['vlan_mode']")
case "$mode" in
bridge-per-vlan) ;;
filtering) for v in a b c; do "$HVM" vm turn-off $v; done; skip "this kernel has bridge VLAN filtering: the per-VLAN bridge path is not the one it uses" ;;
*) fail "switch show: vlan_mode '$mode'" ;;
esac
"$HVM" switch show lan | grep -q "a bridge per VLAN" || fail "switch show does not say how VLANs work"
[ "$(nports hvv-lan.10)" = 2 ] && [ "$(nports hvv-lan.20)" = 1 ] && [ "$(nports hvm-lan)" = 0 ] ||
    fail "taps on the wrong bridges: $(ip -br link)"

for v in a b c; do console_mark $v; done
for v in a b c; do wait_console $v "HVM-GUEST READY" 120; done
setup() { # VM ADDRESS: address the guest's adapter
    type_cmd "$1" "for n in /sys/class/net/e*; do n=\${n##*/}; ip link set \$n up; ip addr add $2/24 dev \$n; done; echo NET-UP"
}
ping_from() { # VM ADDRESS: OK or FAILED
    console_mark "$1"
    type_cmd "$1" "ping -c 2 -W 3 $2 >/dev/null && echo NET-PING-OK || echo NET-PING-FAILED"
    wait_console "$1" "^NET-PING-(OK|FAILED)" 120
    console_since "$1" | grep -a "^NET-PING-" | head -1 | sed 's/NET-PING-//'
}
setup a 10.40.0.10; setup b 10.40.0.11; setup c 10.40.0.12
for v in a b c; do wait_console $v "^NET-UP" 60; done
[ "$(ping_from a 10.40.0.11)" = OK ] || fail "a cannot ping b on VLAN 10"
[ "$(ping_from c 10.40.0.10)" = FAILED ] || fail "c on VLAN 20 reached a on VLAN 10"
[ "$(ping_from c 10.40.0.11)" = FAILED ] || fail "c on VLAN 20 reached b on VLAN 10"

# switch down is refused while a VLAN bridge has ports.
"$HVM" vm turn-off a; "$HVM" vm turn-off b
wait_state a Off 20; wait_state b Off 20
expect_fail 2 "$HVM" switch down lan
last_error | grep -q "VLAN 20 has ports" || fail "switch down with a VM on VLAN 20: $(last_error)"

# Moved to VLAN 10 (VM Off), c reaches b.
"$HVM" vm turn-off c
wait_state c Off 20
"$HVM" vm set c --set-nic 52:54:00:00:20:0c --vlan 10
"$HVM" vm start b --accel "$ACCEL"; "$HVM" vm start c --accel "$ACCEL"
[ "$(nports hvv-lan.10)" = 2 ] && [ "$(nports hvv-lan.20)" = 0 ] || fail "c's tap not moved: $(ip -br link)"
for v in b c; do console_mark $v; done
for v in b c; do wait_console $v "HVM-GUEST READY" 120; done
setup b 10.40.0.11; setup c 10.40.0.12
for v in b c; do wait_console $v "^NET-UP" 60; done
[ "$(ping_from c 10.40.0.11)" = OK ] || fail "c on VLAN 10 cannot ping b"
"$HVM" vm turn-off b; "$HVM" vm turn-off c
wait_state b Off 20; wait_state c Off 20

# switch down removes the VLAN bridges with the switch's.
for i in $(seq 100); do [ "$(nports hvv-lan.10)" = 0 ] && break; sleep 0.05; done
"$HVM" switch down lan
! ip link show dev hvv-lan.10 >/dev/null 2>&1 && ! ip link show dev hvv-lan.20 >/dev/null 2>&1 ||
    fail "switch down left VLAN bridges: $(ip -br link)"
echo "t84-run-vlan: ok"
