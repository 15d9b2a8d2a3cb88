#!/bin/sh
# Live migration on shared storage between two hosts (migratelib.sh): the
# counter guest keeps counting (no restart) while its memory crosses, the
# disk holds what it wrote on both hosts, the source keeps no worker, QEMU
# or lock. First the faults, each leaving the VM running on the source as
# it was, vm check passing and nothing on the destination: its worker
# killed while the memory is copied (slowed down by --max-bandwidth); a
# quick migration whose receiving hvm dies after linking the VM into its
# store, before resuming it; the migration network down.
set -eu
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup
. "$TESTS/cli/migratelib.sh"

GUEST_ARGS="hvm.every=1" guest_vm c counter --new-disk 16M
"$HVM" vm move c "$SHARED_DIR/c" >/dev/null
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 3$" 90
a_worker=$("$HVM" vm show c --json | json_get /dev/stdin "d['worker_pid']")
a_qemu=$("$HVM" vm show c --json | json_get /dev/stdin "d['qemu_pid']")

# The destination dies during the copy.
"$HVM" vm migrate c --to "$B_URL" --max-bandwidth 4 >"$T/out1" 2>"$T/err1" &
mig=$!
i=0
until grep -q "live migration to tcp:.* started" "$SHARED_DIR/c/run/worker.log" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 600 ] || { cat "$T/err1"; fail "the migration did not start"; }
    sleep 0.1
done
sleep 0.5
for pid in $(fuser "$SHARED_DIR/c/run.incoming/lock" 2>/dev/null); do kill -9 "$pid"; done
rc=0; wait $mig || rc=$?
[ $rc = 2 ] || { cat "$T/out1" "$T/err1"; fail "migrate with its destination killed exited $rc"; }
grep -q "failed, it runs here" "$T/err1" || { cat "$T/err1"; fail "the error: $(cat "$T/err1")"; }
[ "$("$HVM" vm show c --json | json_get /dev/stdin "d['state'], d['worker_pid'], d['qemu_pid']")" = "Running $a_worker $a_qemu" ] ||
    fail "the VM does not run on the source as before"
console_mark c
wait_console c "HVM-GUEST COUNT" 20
"$HVM" vm check c >/dev/null || fail "vm check after the fault"
for i in $(seq 50); do [ ! -e "$SHARED_DIR/c/run.incoming" ] && break; sleep 0.1; done
[ ! -e "$SHARED_DIR/c/run.incoming" ] || fail "host B left run.incoming: $(ls "$SHARED_DIR/c/run.incoming")"
[ -z "$(ls -A "$B_STORE/vms" 2>/dev/null)" ] || fail "host B kept an entry"

# A quick migration whose destination dies half-way through taking the VM.
cat >"$T/crashing-hvm" <<WRAP
#!/bin/sh
HVM_CRASH_AT=migrate-adopt exec "$HVM_BIN" "\$@"
WRAP
chmod +x "$T/crashing-hvm"
n=$(last_count c)
console_mark c
expect_fail 2 env HVM_REMOTE_HVM="$T/crashing-hvm" "$HVM" vm migrate c --to "$B_URL" --mode quick
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
expect_fail 2 "$HVM" vm migrate c --to "$B_URL"
last_error | grep -q "host 10.95.0.2: the connection ended" || fail "network down: $(last_error)"
"$HVM" vm list | grep -Eq "^c +Running" || fail "c stopped when the network was down"
inb ip link set mig1 up
a_worker=$("$HVM" vm show c --json | json_get /dev/stdin "d['worker_pid']")
a_qemu=$("$HVM" vm show c --json | json_get /dev/stdin "d['qemu_pid']")

# The live migration.
n=$(last_count c)
"$HVM" vm migrate c --to "$B_URL" --downtime-limit 50 >"$T/out"
cat "$T/out"
grep -Eq "^migrated VM 'c' to 10.95.0.2 \(live\): total [0-9.]+ s, downtime [0-9]+ ms \(QEMU's figure [0-9]+ ms\)$" "$T/out" ||
    fail "final line"
console_mark c
wait_console c "HVM-GUEST COUNT" 30
console_since c | grep -aq "HVM-GUEST START" && fail "the guest booted again"
m=$(last_count c)
[ "$m" -gt "$n" ] || fail "the counter went from $n to $m"
hvmb vm list | grep -Eq "^c +Running" || { hvmb vm list; fail "not running on host B"; }
w=$(hvmb vm show c --json | json_get /dev/stdin "d['worker_pid']")
[ "$(readlink /proc/"$w"/ns/net)" = "$(readlink /proc/$B_PID/ns/net)" ] || fail "the worker is not on host B"
! kill -0 "$a_worker" 2>/dev/null && ! kill -0 "$a_qemu" 2>/dev/null || fail "the source's worker or QEMU is left"
[ ! -e "$SHARED_DIR/c/run.incoming" ] || fail "run.incoming is left"
"$HVM" vm list | grep -Eq "^c +Moved" || fail "vm list on A"
# The guest's disk writes go on on host B; afterwards the disk holds them.
console_mark c
wait_console c "HVM-GUEST COUNT" 30
hvmb vm turn-off c >/dev/null
last=$(last_count c)
hvmb vm check c >/dev/null || fail "vm check on host B"
# (every count is written: the disk holds one written on host B)
printf '#!/bin/sh\nexec nsenter -t %s -n -m -u env HVM_STORE="%s" "%s" "$@"\n' "$B_PID" "$B_STORE" "$HVM_BIN" >"$T/hvmb"
chmod +x "$T/hvmb"
on_disk=$(HVM="$T/hvmb" disk_text c 2097152)
[ "$on_disk" -gt "$m" ] && [ "$on_disk" -le "$last" ] || fail "the disk holds $on_disk (counts on host B: $m-$last)"
echo ok
