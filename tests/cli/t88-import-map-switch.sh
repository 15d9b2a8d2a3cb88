#!/bin/sh
# vm import --map-switch OLD=NEW: a bundle whose adapters are on a switch
# this host lacks is refused naming it; mapped, the adapters (now's and the
# checkpoints') are on NEW with their VLAN and MAC kept. A bad map is a
# problem of the import's list, the store untouched. No bridge is made.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
export HVM_STORE="$T/store"
S2="$T/store2"

"$HVM" switch create lab --type private >/dev/null
"$HVM" vm create nv --new-disk 16M >/dev/null
"$HVM" vm set nv --add-nic lab --vlan 10 --mac 52:54:00:aa:00:01 >/dev/null
"$HVM" checkpoint take nv X >/dev/null
"$HVM" vm set nv --add-nic lab --mac 52:54:00:aa:00:02 >/dev/null
"$HVM" vm export nv "$T/b" >/dev/null

"$HVM" switch create lan2 --type private --store "$S2" >/dev/null
expect_fail 2 "$HVM" vm import "$T/b" --store "$S2"
last_error | grep -q "switch 'lab', which this host does not have" || fail "no unknown-switch problem: $(last_error)"
expect_fail 2 "$HVM" vm import "$T/b" --store "$S2" --map-switch lab=nosuch
grep -q "this host has no switch 'nosuch'" "$T/.err" || fail "unknown NEW: $(cat "$T/.err")"
expect_fail 2 "$HVM" vm import "$T/b" --store "$S2" --map-switch dmz=lan2
grep -q "no network adapter of the bundle is on switch 'dmz'" "$T/.err" || fail "unused OLD: $(cat "$T/.err")"
expect_fail 2 "$HVM" vm import "$T/b" --store "$S2" --map-switch lab
grep -q "'lab': expected OLD=NEW" "$T/.err" || fail "malformed map: $(cat "$T/.err")"
[ ! -d "$S2/vms/nv" ] || fail "a refused import left the VM"

"$HVM" vm import "$T/b" --store "$S2" --map-switch lab=lan2 >/dev/null
cfg="$S2/vms/nv/vm.json"
[ "$(json_get "$cfg" "[(n['switch'], n.get('vlan'), n['mac']) for n in d['config']['nics']]")" = \
  "[('lan2', 10, '52:54:00:aa:00:01'), ('lan2', None, '52:54:00:aa:00:02')]" ] ||
    fail "now's adapters: $(cat "$cfg")"
[ "$(json_get "$cfg" "[(n['switch'], n.get('vlan')) for c in d['checkpoints'] for n in c['config']['nics']]")" = \
  "[('lan2', 10)]" ] || fail "the checkpoint's adapters: $(cat "$cfg")"
"$HVM" checkpoint apply nv X --store "$S2" >/dev/null
[ "$(json_get "$cfg" "[(n['switch'], n.get('vlan')) for n in d['config']['nics']]")" = "[('lan2', 10)]" ] ||
    fail "applied checkpoint: $(cat "$cfg")"
echo "t88-import-map-switch: ok"
