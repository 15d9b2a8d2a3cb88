#!/bin/sh
# Faults during a quick migration (migratelib.sh's two hosts): the
# destination's hvm killed while it takes the VM (after linking it into
# its store, before resuming it), and the migration network down. Each
# time the VM keeps running on the source from where it was, vm check
# passes, and host B is left with no VM, marker or worker.
set -eu
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup
. "$TESTS/cli/migratelib.sh"

guest_vm c counter --new-disk 16M
"$HVM" vm move c "$SHARED_DIR/c" >/dev/null
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 3$" 90

# The destination dies half-way through taking the VM.
cat >"$T/crashing-hvm" <<WRAP
#!/bin/sh
HVM_CRASH_AT=migrate-adopt exec "$HVM_BIN" "\$@"
WRAP
chmod +x "$T/crashing-hvm"
n=$(last_count c)
console_mark c
expect_fail 2 env HVM_REMOTE_HVM="$T/crashing-hvm" "$HVM" vm migrate c --to "$B_URL"
last_error | grep -q "failed, it runs here again: host 10.95.0.2: the connection ended" ||
    fail "destination killed: $(last_error)"
"$HVM" vm list | grep -Eq "^c +Running" || { "$HVM" vm list; fail "c does not run on host A"; }
w=$("$HVM" vm show c --json | json_get /dev/stdin "d['worker_pid']")
[ "$(readlink /proc/"$w"/ns/net)" = "$(readlink /proc/$$/ns/net)" ] || fail "the worker is not on host A"
wait_first_count c 60
first=$(first_count c)
console_since c | grep -aq "HVM-GUEST START" && fail "the guest booted again on host A"
[ "$first" -gt "$n" ] || fail "the counter restarted: $first after $n"
"$HVM" vm check c >/dev/null || fail "vm check on host A"
[ "$(hvmb vm list --json)" = "[]" ] || { hvmb vm list; fail "host B kept the VM"; }
[ -z "$(ls -A "$B_STORE/vms")" ] || fail "host B kept a marker: $(ls -A "$B_STORE/vms")"

# The migration network is down: refused before anything moves.
inb ip link set mig1 down
n=$(last_count c)
expect_fail 2 "$HVM" vm migrate c --to "$B_URL"
last_error | grep -q "host 10.95.0.2: the connection ended" || fail "network down: $(last_error)"
"$HVM" vm list | grep -Eq "^c +Running" || fail "c stopped when the network was down"
console_mark c
wait_console c "HVM-GUEST COUNT" 20
[ "$(last_count c)" -gt "$n" ] || fail "the counter did not go on"
"$HVM" vm turn-off c >/dev/null
"$HVM" vm check c >/dev/null
[ "$(hvmb vm list --json)" = "[]" ] || fail "host B has a VM"
echo ok
