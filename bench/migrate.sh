#!/bin/sh
# Live migration between two hosts (the test's two namespaces with sshd,
# tests/cli/migratelib.sh) of idle test guests (shell mode) of 256 MiB and
# 1 GiB: hvm vm migrate --mode live (shared storage, --downtime-limit 50,
# --max-bandwidth 1024) against plain QEMU migrating the same kernel and
# initrd with a raw disk by hand over TCP between the same addresses, with
# the same downtime limit and bandwidth (QMP migrate, polled every 20 ms).
# Prints, for each: total time and downtime (hvm's final line: its total
# includes the ssh session and the destination worker's start; its
# downtime is QEMU's plus the hand-over of the layers; plain QEMU:
# query-migrate's total-time and downtime).
#
#   HVM=build/hvm BUILD=build GUEST_DIR=build-guest sh bench/migrate.sh
set -eu
TESTS=$(cd "$(dirname "$0")/../tests" && pwd)
export TESTS
. "$TESTS/cli/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup
. "$TESTS/cli/migratelib.sh"
ACCEL=tcg
bench_cleanup() {
    for f in "$T"/a.pid "$T"/b.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; true
    migrate_cleanup
}
EXTRA_CLEANUP=bench_cleanup

qmp() { # SOCKET: runs the commands of stdin (one JSON a line), prints the replies
    $PY -c '
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
json.loads(f.readline()); f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n"); f.flush()
def call(cmd):
    f.write(json.dumps(cmd) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "event" not in r: return r
for line in sys.stdin:
    line = line.strip()
    if not line: continue
    if line == "WAIT":
        while True:
            r = call({"execute": "query-migrate"})["return"]
            if r.get("status") in ("completed", "failed", "cancelled"):
                print(json.dumps(r)); break
            time.sleep(0.02)
    else:
        print(json.dumps(call(json.loads(line))))
' "$1"
}

plain() { # MEM: plain QEMU, A to B
    mem=$1
    truncate -s 16M "$T/plain-$mem.raw"
    rm -f "$T/a.qmp" "$T/b.qmp" "$T/a.serial"
    common="-accel tcg -m $mem -smp 1 -display none -nodefaults -kernel $GUEST/vmlinuz -initrd $GUEST/initrd.img
        -drive file=$T/plain-$mem.raw,format=raw,if=virtio"
    # shellcheck disable=SC2086
    inb qemu-system-x86_64 $common -append "console=ttyS0 hvm.mode=shell" -serial null \
        -qmp unix:"$T/b.qmp",server=on,wait=off -pidfile "$T/b.pid" -incoming tcp:10.95.0.2:4444 &
    qb=$!
    # shellcheck disable=SC2086
    qemu-system-x86_64 $common -append "console=ttyS0 hvm.mode=shell" -serial file:"$T/a.serial" \
        -qmp unix:"$T/a.qmp",server=on,wait=off -pidfile "$T/a.pid" &
    qa=$!
    i=0
    until grep -q "HVM-GUEST READY" "$T/a.serial" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 1200 ] || fail "plain QEMU: no READY"; sleep 0.1
    done
    sleep 2
    out=$(printf '%s\n' '{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 50, "max-bandwidth": 1073741824}}' \
        '{"execute": "migrate", "arguments": {"uri": "tcp:10.95.0.2:4444"}}' WAIT | qmp "$T/a.qmp" | tail -1)
    for f in "$T/a.pid" "$T/b.pid"; do kill "$(cat "$f")" 2>/dev/null || true; done
    wait $qa $qb 2>/dev/null || true
    rm -f "$T/a.pid" "$T/b.pid"
    echo "$out" | $PY -c 'import json,sys; r=json.load(sys.stdin); print("plain QEMU %s: %s, total %.2f s, downtime %d ms" % (sys.argv[1], r["status"], r["total-time"]/1000, r.get("downtime", -1)))' "$mem"
}

hvm_live() { # MEM
    mem=$1 name=g$1
    guest_vm "$name" shell --new-disk 16M
    "$HVM" vm set "$name" --memory "$mem" >/dev/null
    "$HVM" vm move "$name" "$SHARED_DIR/$name" >/dev/null
    "$HVM" vm start "$name" --accel tcg >/dev/null
    console_mark "$name"
    wait_console "$name" "HVM-GUEST READY" 120
    sleep 2
    line=$(HVM_MIGRATE_TIMES=1 "$HVM" vm migrate "$name" --to "$B_URL" --mode live --downtime-limit 50 --max-bandwidth 1024)
    echo "hvm $mem: $line"
    hvmb vm turn-off "$name" >/dev/null
}

for mem in ${BENCH_MIGRATE_SIZES:-256M 1G}; do
    hvm_live $mem
    plain $mem
done
