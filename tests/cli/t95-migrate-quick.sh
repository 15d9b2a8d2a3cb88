#!/bin/sh
# Quick migration to another host (a namespace with its own store and sshd,
# migratelib.sh) of a running VM with checkpoints on shared storage: the
# counter continues there, the checkpoint tree arrives intact and one is
# applied there; the source keeps a "moved" record and nothing running.
# Refusals before anything moves: another hvm version, a switch the
# destination lacks (--dry-run and migrate), a VM not on shared storage.
set -eu
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup
. "$TESTS/cli/migratelib.sh"

guest_vm c counter --new-disk 16M
"$HVM" checkpoint take c cold >/dev/null
"$HVM" vm move c "$SHARED_DIR/c" >/dev/null

# Not on shared storage, and another version: refused, nothing changes.
"$HVM" vm create local --memory 64M >/dev/null
expect_fail 2 "$HVM" vm migrate local --to "$B_URL"
last_error | grep -q "not on shared storage" || fail "a VM inside the store: $(last_error)"
expect_fail 2 env HVM_MIGRATE_VERSION=9.9 "$HVM" vm migrate c --to "$B_URL" --dry-run
last_error | grep -q "runs hvm 0.1.0, this host hvm 9.9: both hosts must run the same hvm version" ||
    fail "version refusal: $(last_error)"

"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 3$" 90
"$HVM" checkpoint take c warm >/dev/null
tree=$("$HVM" checkpoint list c --json)
"$HVM" vm migrate c --to "$B_URL" --dry-run >"$T/report"
grep -q "no problems: the VM can migrate" "$T/report" || { cat "$T/report"; fail "dry run"; }
grep -q "hvm version: *0.1.0 here, 0.1.0 there" "$T/report" || { cat "$T/report"; fail "dry run: versions"; }
"$HVM" vm migrate c --to "$B_URL" --dry-run --json | json_get /dev/stdin "d['ok'], d['destination']['host']" | grep -q "True.*hostb" ||
    fail "dry run --json"
[ ! -e "$B_STORE" ] || fail "the dry run made a store on host B"

n=$(last_count c)
console_mark c
"$HVM" vm migrate c --to "$B_URL" --mode quick >"$T/out"
cat "$T/out"
grep -Eq "^migrated VM 'c' to 10.95.0.2 \(quick\): total [0-9.]+ s, downtime [0-9.]+ s$" "$T/out" || fail "final line"
# Host B runs it, from where it was.
hvmb vm list | grep -Eq "^c +Running" || { hvmb vm list; fail "not running on host B"; }
wait_first_count c 60
first=$(first_count c)
console_since c | grep -aq "HVM-GUEST START" && fail "the guest booted again on host B"
[ "$first" -gt "$n" ] || fail "the counter restarted on host B: $first after $n"
# Host A: a record, no entry, no worker.
"$HVM" vm list | grep -Eq "^c +Moved +moved to host 10.95.0.2" || { "$HVM" vm list; fail "vm list on A"; }
shown=$("$HVM" vm show c --json | json_get /dev/stdin "d['state'], d['host']")
[ "$shown" = "Moved 10.95.0.2" ] || fail "vm show on A: $shown"
expect_fail 2 "$HVM" vm start c
last_error | grep -q "moved to host 10.95.0.2" || fail "vm start on A: $(last_error)"
[ ! -e "$HVM_STORE/vms/c" ] && ! ls -A "$HVM_STORE/vms" | grep -q "^\.migrating" || fail "host A kept an entry"
w=$(hvmb vm show c --json | json_get /dev/stdin "d['worker_pid']")
[ "$(readlink /proc/"$w"/ns/net)" = "$(readlink /proc/$B_PID/ns/net)" ] || fail "the worker is not on host B"
# The tree arrived intact; a checkpoint applies there.
tree_b=$(hvmb checkpoint list c --json)
[ "$tree" = "$tree_b" ] || fail "the checkpoint tree changed: $tree -> $tree_b"
hvmb vm turn-off c >/dev/null
hvmb checkpoint apply c cold >/dev/null
hvmb vm check c >/dev/null || fail "vm check on host B"
"$HVM" vm check local >/dev/null

# A switch host B lacks: refused by the dry run and by migrate.
"$HVM" switch create lan --type private >/dev/null
guest_vm n counter --nic lan
"$HVM" vm move n "$SHARED_DIR/n" >/dev/null
expect_fail 2 "$HVM" vm migrate n --to "$B_URL" --dry-run
grep -q "switch: *lan: MISSING" "$T/.out" || { cat "$T/.out"; fail "dry run: the switch"; }
last_error | grep -q "switch 'lan' does not exist on host hostb" || fail "dry run: $(last_error)"
expect_fail 2 "$HVM" vm migrate n --to "$B_URL"
last_error | grep -q "switch 'lan' does not exist" || fail "migrate: $(last_error)"
"$HVM" vm show n --json >/dev/null
hvmb vm list --json | json_get /dev/stdin "[v['name'] for v in d]" | grep -q "'n'" && fail "n reached host B"
echo ok
