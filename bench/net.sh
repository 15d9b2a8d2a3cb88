#!/bin/sh
# Network throughput of a VM's adapter (issue 12): TCP between a guest and
# the host's address on an internal switch, in a network namespace of its
# own (the host's network is never touched). Three guests, each the test
# guest in shell mode with 256 MiB under TCG, one at a time:
#   hvm        hvm's tap (the worker's, handed to QEMU as -netdev tap,fd=N)
#   hvm-limit  the same VM with --max-bandwidth $BENCH_LIMIT (default 50) Mbit/s
#   plain      plain QEMU, same kernel, initrd and memory, with a tap made by
#              hand (ip tuntap, vnet_hdr) on the same bridge
# For each: guest -> host (busybox dd | nc in the guest, a Python receiver
# timing first byte to EOF) and host -> guest (a Python sender timing
# from connect to the guest's close after EOF), BENCH_MIB (32) MiB each,
# BENCH_ROUNDS (3) rounds in alternating order; medians in Mbit/s and the
# ratios hvm/plain and hvm-limit/limit. BENCH_ORDER="limit" runs only those.
#
#   HVM=build/hvm sh bench/net.sh        (as root)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?set HVM to the hvm binary, e.g. HVM=build/hvm sh bench/net.sh}"
HVM=$(cd "$(dirname "$HVM")" && pwd)/$(basename "$HVM")
GUEST_DIR=$(cd "${GUEST_DIR:-$here/../build-guest}" && pwd)
[ "$(id -u)" = 0 ] || { echo "bench/net.sh: needs root (namespaces, taps)" >&2; exit 2; }
if [ "${BENCH_NETNS_INNER:-}" != 1 ]; then
    BENCH_NETNS_INNER=1 exec unshare -n sh "$0" "$@"
fi
MIB=${BENCH_MIB:-32} ROUNDS=${BENCH_ROUNDS:-3} LIMIT=${BENCH_LIMIT:-50}
PY=/usr/bin/python3
CTL="$here/../scripts/guest/guestctl.py"
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/hvm-netbench.XXXXXX")
export HVM_STORE="$W/store"
PLAIN_PID=
cleanup() {
    "$HVM" vm turn-off bh >/dev/null 2>&1 || true
    [ -z "$PLAIN_PID" ] || kill -9 $PLAIN_PID 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM
ip link set lo up

# wait_for LOG REGEX: until the console log shows REGEX (at most 180 s).
wait_for() {
    i=0
    while ! { [ -f "$1" ] && tr -d '\r' <"$1" | grep -aEq "$2"; }; do
        i=$((i + 1)); [ $i -lt 1800 ] || { tail -5 "$1" >&2; echo "bench/net.sh: no '$2' in $1" >&2; exit 1; }
        sleep 0.1
    done
}
# type SOCK TEXT: a command line on the guest's serial console.
type_in() { $PY "$CTL" type "$1" "$2" >/dev/null; }

# recv PORT: accepts one connection, prints Mbit/s from first byte to EOF.
recv_rate() {
    $PY - "$1" <<'PY'
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.80.0.1", int(sys.argv[1]))); s.listen(1); s.settimeout(300)
c, _ = s.accept(); n = 0; t0 = None
while True:
    b = c.recv(1 << 20)
    if not b: break
    if t0 is None: t0 = time.monotonic()
    n += len(b)
print("%.1f" % (n * 8 / (time.monotonic() - t0) / 1e6))
PY
}
# send ADDRESS PORT MIB: connects (retrying while the guest's nc starts),
# sends, shuts down, waits for the guest's close: prints Mbit/s.
send_rate() {
    $PY - "$1" "$2" "$3" <<'PY'
import socket, sys, time
buf = b"\0" * (1 << 20)
for _ in range(300):
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=300); break
    except OSError:
        time.sleep(0.1)
t0 = time.monotonic()
for _ in range(int(sys.argv[3])): s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(65536): pass
print("%.1f" % (int(sys.argv[3]) * 8 * (1 << 20) / (time.monotonic() - t0) / 1e6))
PY
}
# measure SOCK LOG ADDRESS: "UP DOWN" Mbit/s of the guest at ADDRESS.
measure() {
    recv_rate 5000 >"$W/up" &
    rp=$!
    sleep 0.3
    type_in "$1" "dd if=/dev/zero bs=64k count=$((MIB * 16)) 2>/dev/null | nc 10.80.0.1 5000"
    wait $rp
    type_in "$1" "sleep 10000 | nc -l -p 5001 >/dev/null &"
    down=$(send_rate "$3" 5001 "$MIB")
    echo "$(cat "$W/up") $down"
}

"$HVM" switch create bn --type internal --address 10.80.0.1/24 >/dev/null
"$HVM" switch up bn >/dev/null
"$HVM" vm create bh --memory 256M --firmware bios --nic bn >/dev/null
mac=$("$HVM" vm show bh --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["nics"][0]["mac"])')
"$HVM" vm set bh --kernel "$GUEST_DIR/vmlinuz" --initrd "$GUEST_DIR/initrd.img" \
    --cmdline "console=ttyS0 hvm.mode=shell" >/dev/null

hvm_run() { # LIMIT (0: none): starts bh, measures, turns it off
    "$HVM" vm set bh --set-nic "$mac" --max-bandwidth "$1" >/dev/null
    "$HVM" vm start bh --accel tcg >/dev/null
    log="$HVM_STORE/vms/bh/run/console.log" sock="$HVM_STORE/vms/bh/run/console.sock"
    wait_for "$log" "HVM-GUEST READY"
    type_in "$sock" "ip link set eth0 up; ip addr add 10.80.0.2/24 dev eth0"
    sleep 1
    measure "$sock" "$log" 10.80.0.2
    "$HVM" vm turn-off bh >/dev/null
    while "$HVM" vm show bh --json | grep -q '"state": "Running"'; do sleep 0.2; done
}
plain_run() {
    ip tuntap add dev bnt0 mode tap vnet_hdr
    ip link set bnt0 master hvm-bn
    ip link set bnt0 up
    rm -f "$W/plain.log" "$W/plain.sock"
    qemu-system-x86_64 -nodefaults -no-user-config -accel tcg -m 256M -smp 1 -display none \
        -chardev socket,id=s0,path="$W/plain.sock",server=on,wait=off,logfile="$W/plain.log" \
        -serial chardev:s0 -netdev tap,id=n0,ifname=bnt0,script=no,downscript=no \
        -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:99 \
        -kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" \
        -append "console=ttyS0 hvm.mode=shell" >/dev/null 2>&1 &
    PLAIN_PID=$!
    wait_for "$W/plain.log" "HVM-GUEST READY"
    type_in "$W/plain.sock" "ip link set eth0 up; ip addr add 10.80.0.3/24 dev eth0"
    sleep 1
    measure "$W/plain.sock" "$W/plain.log" 10.80.0.3
    kill $PLAIN_PID; wait $PLAIN_PID 2>/dev/null || true
    PLAIN_PID=
    ip link del bnt0
}

: >"$W/results"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="hvm plain limit"; else order="plain hvm limit"; fi
    order=${BENCH_ORDER:-$order}
    for who in $order; do
        case $who in
            hvm) got=$(hvm_run 0) ;;
            limit) got=$(hvm_run "$LIMIT") ;;
            plain) got=$(plain_run) ;;
        esac
        echo "round $r $who: guest->host, host->guest (Mbit/s): $got"
        echo "$who $got" >>"$W/results"
    done
done
$PY - "$W/results" "$LIMIT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, up, down = line.split()
    rows.setdefault(who, []).append((float(up), float(down)))
med = {w: (statistics.median(u for u, _ in v), statistics.median(d for _, d in v)) for w, v in rows.items()}
limit = float(sys.argv[2])
print("\n| adapter | guest->host Mbit/s | host->guest Mbit/s |")
print("|---|---:|---:|")
for w in [w for w in ("hvm", "plain", "limit") if w in med]:
    print("| %s | %.0f | %.0f |" % ({"limit": "hvm --max-bandwidth %g" % limit}.get(w, w), *med[w]))
if "hvm" in med and "plain" in med: print("\nhvm/plain: guest->host %.2f, host->guest %.2f" % (med["hvm"][0] / med["plain"][0], med["hvm"][1] / med["plain"][1]))
if "limit" in med: print("hvm --max-bandwidth %g / limit: guest->host %.2f, host->guest %.2f" % (limit, med["limit"][0] / limit, med["limit"][1] / limit))
PY
