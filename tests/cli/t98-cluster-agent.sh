#!/bin/sh
# ocf:hvm:VirtualMachine on its own (no cluster): meta-data, validate-all's
# refusals with their reasons, ocf-tester, and the owner record: start
# refuses while another node's record is live, takes over an expired one,
# stop leaves another node's VM alone and clears its own record.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
command -v ocf-tester >/dev/null || skip "ocf-tester is not installed (resource-agents)"
command -v xmllint >/dev/null || skip "xmllint is not installed (libxml2-utils)"
AGENT=$TESTS/../data/ocf/VirtualMachine
export OCF_ROOT=/usr/lib/ocf OCF_RESKEY_hvm_binary="$HVM" OCF_RESKEY_store="$HVM_STORE" OCF_RESKEY_vm=c
# ra ACTION [NAME=VALUE...]: the agent's exit code; its stderr in ra.err
ra() {
    act=$1; shift
    set +e
    env "$@" sh "$AGENT" "$act" >ra.out 2>ra.err
    code=$?
    set -e
    echo $code
}
expect_ra() { # CODE REASON ACTION [NAME=VALUE...]
    want=$1 why=$2; shift 2
    got=$(ra "$@")
    [ "$got" = "$want" ] || { cat ra.err >&2; fail "$*: exit $got, expected $want"; }
    [ -z "$why" ] || grep -q "^ocf-exit-reason:.*$why" ra.err || { cat ra.err >&2; fail "$*: no reason '$why'"; }
}

# no guest to boot: QEMU runs SeaBIOS, which is all start, monitor, save and stop need
"$HVM" vm create c --memory 64M --firmware bios --new-disk 16M >/dev/null
sh "$AGENT" meta-data >meta.xml
xmllint --noout --dtdvalid /usr/share/resource-agents/ra-api-1.dtd meta.xml 2>xmllint.err ||
    { cat xmllint.err >&2; fail "meta-data does not validate against ra-api-1.dtd"; }
# resource-agents' RELAX NG schema of agent meta-data
if [ -f /usr/share/resource-agents/metadata.rng ]; then
    xmllint --noout --relaxng /usr/share/resource-agents/metadata.rng meta.xml 2>xmllint.err ||
        { cat xmllint.err >&2; fail "meta-data does not validate against metadata.rng"; }
fi
grep -q '<version>1.1</version>' meta.xml || fail "meta-data does not say OCF 1.1"
for p in vm store offline_action migration shutdown_timeout; do
    grep -q "<parameter name=\"$p\"" meta.xml || fail "meta-data has no parameter $p"
done

# validate-all: each refusal with its reason
expect_ra 6 "is not shared" validate-all
touch "$HVM_STORE/cluster-shared"
expect_ra 0 "" validate-all
expect_ra 6 "VM 'nope' not found in store" validate-all OCF_RESKEY_vm=nope
expect_ra 6 "not a VM name" validate-all OCF_RESKEY_vm=../c
expect_ra 6 "offline_action 'hibernate'" validate-all OCF_RESKEY_offline_action=hibernate
expect_ra 6 "migration 'teleport'" validate-all OCF_RESKEY_migration=teleport
expect_ra 6 "shutdown_timeout 'soon'" validate-all OCF_RESKEY_shutdown_timeout=soon
expect_ra 6 "parameter vm is not set" validate-all OCF_RESKEY_vm=
expect_ra 5 "does not exist" validate-all OCF_RESKEY_store="$T/elsewhere"
expect_ra 5 "not found" validate-all OCF_RESKEY_hvm_binary=/nonexistent/hvm
# stop succeeds for what is gone or was never there
expect_ra 0 "" stop OCF_RESKEY_vm=nope
expect_ra 7 "" monitor

ocf-tester -n t98 -o vm=c -o store="$HVM_STORE" -o hvm_binary="$HVM" "$AGENT" >tester.log 2>&1 ||
    { tail -20 tester.log >&2; fail "ocf-tester failed"; }
grep -q "passed all tests" tester.log || fail "ocf-tester did not pass"
expect_ra 0 "" stop
[ ! -e "$HVM_STORE/vms/c/cluster-owner" ] || fail "stop left the owner record"

# another node's live record: start refuses, stop leaves it alone
rec=$HVM_STORE/vms/c/cluster-owner
printf 'node=othernode\ngeneration=7\ntime=%s\nlease=60\n' "$(date +%s)" >"$rec"
expect_ra 1 "owned by othernode (record generation 7" start
[ "$("$HVM" vm show c --json | json_get /dev/stdin "d['state']")" != Running ] || fail "ha: started despite another owner"
expect_ra 0 "" stop
grep -q '^node=othernode$' "$rec" || fail "stop touched another node's record"
expect_ra 7 "" monitor
# its lease is over: start takes over with the next generation
printf 'node=othernode\ngeneration=7\ntime=%s\nlease=60\n' "$(($(date +%s) - 120))" >"$rec"
expect_ra 0 "" start
grep -q "^node=$(uname -n)\$" "$rec" || fail "start did not take the expired record"
grep -q '^generation=8$' "$rec" || fail "the generation did not grow to 8"
expect_ra 0 "" monitor
expect_ra 0 "" stop OCF_RESKEY_offline_action=turn-off
[ "$("$HVM" vm show c --json | json_get /dev/stdin "d['state']")" = Off ] || fail "turn-off: not Off"
[ ! -e "$rec" ] || fail "stop did not clear its own record"
"$HVM" vm check c

# A resumed VM whose node dies must boot again, never resume its old memory
# over disks that moved on: the state is spent once the guest runs.
"$HVM" vm start c --accel "$ACCEL" >/dev/null
"$HVM" vm save c >/dev/null
"$HVM" vm start c --accel "$ACCEL" >/dev/null
[ "$(json_get "$HVM_STORE/vms/c/vm.json" "d.get('saved_memory')")" = None ] || fail "the resumed VM keeps its memory state"
kill -9 "$("$HVM" vm show c --json | json_get /dev/stdin "d['worker_pid']")"
sleep 1
[ "$("$HVM" vm show c --json 2>/dev/null | json_get /dev/stdin "d['state']")" = Off ] || fail "a resumed VM whose worker died is not Off"
