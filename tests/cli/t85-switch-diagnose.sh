#!/bin/sh
# hvm switch diagnose / set --offload on veths made bridge ports (veth
# offloads can be toggled): features read over ethtool netlink, an MTU
# mismatch and a GRO mismatch reported with their fixes (exit 1), set
# --offload changes the ports' features, is kept in switches.json and is
# applied again by 'switch up' to a port added since. A balance-alb bond
# under the bridge is reported where the kernel has bonding (skipped with a
# message otherwise). No LRO case: veths have no LRO.
#
# Runs in a network namespace of its own (netlib.sh).
set -eu
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
net_setup
diag() { "$HVM" switch diagnose lan --json >"$T/diag.json" || [ $? = 1 ]; }
feat() { json_get "$T/diag.json" "[p['offload']['$2'] for p in d['ports'] if p['name'] == '$1'][0]"; }
problems() { json_get "$T/diag.json" "' | '.join(p['interface'] + ': ' + p['problem'] + ' FIX ' + p['fix'] for p in d['problems'])"; }

"$HVM" switch create lan --type private >/dev/null
"$HVM" switch up lan >/dev/null
ip link add v0 type veth peer name v1
ip link add v2 type veth peer name v3
ip link set v0 master hvm-lan
ip link set v2 master hvm-lan

# Clean: exit 0, features of both ports read.
"$HVM" switch diagnose lan >"$T/out" || fail "diagnose of a clean switch exited $?: $(cat "$T/out")"
grep -q "No known problem found" "$T/out" || fail "diagnose: $(cat "$T/out")"
diag
[ "$(feat v0 tso)" = True ] && [ "$(feat v2 sg)" = True ] || fail "features not read: $(cat "$T/diag.json")"
[ "$(json_get "$T/diag.json" "d['br_netfilter']")" = "$([ -e /sys/module/br_netfilter ] && echo True || echo False)" ] ||
    fail "br_netfilter state"

# MTU mismatch (a bridge takes its smallest port's MTU; a larger port drops).
ip link set v2 mtu 9000
rc=0; "$HVM" switch diagnose lan >"$T/.out" || rc=$?
[ $rc = 1 ] || fail "diagnose with a problem exited $rc, expected 1"
grep -q "PROBLEM v2: MTU 9000, its bridge hvm-lan has 1500" "$T/.out" || fail "no MTU problem: $(cat "$T/.out")"
grep -q "fix: ip link set v2 mtu 1500" "$T/.out" || fail "no MTU fix: $(cat "$T/.out")"
ip link set v2 mtu 1500

# set --offload changes every port's features and is kept.
"$HVM" switch set lan --offload tso=off,gro=on >/dev/null
diag
[ "$(feat v0 tso)$(feat v2 tso)$(feat v0 gro)$(feat v2 gro)" = FalseFalseTrueTrue ] ||
    fail "set --offload did not change the ports: $(cat "$T/diag.json")"
[ "$(json_get "$HVM_STORE/switches.json" "d['switches'][0]['offload']")" = "{'tso': False, 'gro': True}" ] ||
    fail "offload not kept: $(cat "$HVM_STORE/switches.json")"

# A port added since has other features: a GRO and a TSO mismatch.
ip link add v4 type veth peer name v5
ip link set v4 master hvm-lan
diag
[ "$(feat v4 gro)$(feat v4 tso)" = FalseTrue ] || skip "a new veth's defaults are not gro off, tso on here"
problems | grep -q "gro mismatch: on for v0, off for v4.*FIX hvm switch set lan --offload gro=off" ||
    fail "no GRO mismatch: $(problems)"
problems | grep -q "tso mismatch: on for v4, off for v0" || fail "no TSO mismatch: $(problems)"
# switch up applies the kept settings again: the new port follows.
"$HVM" switch up lan >/dev/null
diag
[ "$(feat v4 gro)$(feat v4 tso)" = TrueFalse ] || fail "switch up did not apply the offloads to v4: $(cat "$T/diag.json")"
[ -z "$(problems)" ] || fail "problems left: $(problems)"

# A bond in balance-alb under the bridge, where the kernel has bonding.
if ip link add hb0 type bond mode balance-alb 2>/dev/null; then
    ip link set hb0 master hvm-lan
    diag
    problems | grep -q "hb0: bond in balance-alb mode under a bridge.*FIX use mode active-backup" ||
        fail "no bond problem: $(problems)"
    ip link del hb0
else
    echo "t85: bond part skipped: this kernel has no bonding (ip link add type bond failed)"
fi

# Bad input: one line, nothing changed.
expect_fail 2 "$HVM" switch set lan --offload tso=maybe
last_error | grep -q "'tso=maybe': expected NAME=on|off" || fail "bad --offload: $(last_error)"
expect_fail 2 "$HVM" switch set lan
expect_fail 2 "$HVM" switch diagnose nosuch
last_error | grep -q "no switch 'nosuch'" || fail "diagnose of a missing switch: $(last_error)"
$PY - "$HVM_STORE/switches.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["switches"][0]["offload"] = {"tso": "no"}
d["switches"].append("wan")
json.dump(d, open(sys.argv[1], "w"))
PYEOF
expect_fail 2 "$HVM" switch up lan
last_error | grep -q "switch 'lan': offload.tso: expected one of" || fail "bad offload in switches.json: $(last_error)"
expect_fail 2 "$HVM" switch diagnose wan
last_error | grep -q "type user" || fail "diagnose of a user switch: $(last_error)"
echo "t85-switch-diagnose: ok"
