#!/bin/sh
# Smoke test of hvm's test guest under QEMU TCG (builds it first if needed):
#   1. marker mode on a raw file attached as virtio: the marker lands at 1 MiB of the disk
#   2. the same over NBD from `hvm vhd serve` (skipped when build/hvm or `vhd serve` is missing),
#      then read mode over NBD sees it
#   3. counter mode: ACPI power-off through QMP system_powerdown stores the last count; a second
#      boot continues from it; poweroff typed on the serial console also works
#   4. memory save (QMP migrate to exec:cat) and restore (-incoming): the counter goes on
# Prints one line per check and the boot times; exits non-zero on the first failure.
# Environment: GUEST_DIR (default build-guest), HVM (default build/hvm), QEMU, TIMEOUT (seconds
# per wait, default 60: TCG on a busy machine is slow), KEEP=1 keeps the scratch folder.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
GUEST_DIR=${GUEST_DIR:-build-guest}
HVM=${HVM:-build/hvm}
QEMU=${QEMU:-qemu-system-x86_64}
CTL="python3 $HERE/guestctl.py"
TIMEOUT=${TIMEOUT:-60}

command -v "$QEMU" >/dev/null || { echo "smoke: $QEMU missing (make deps)" >&2; exit 1; }
sh "$HERE/build.sh" "$GUEST_DIR" >/dev/null
T=$(mktemp -d /tmp/hvm-guest-smoke.XXXXXX)
QPID='' SPID=''
cleanup() {
    [ -z "$QPID" ] || kill "$QPID" 2>/dev/null || true
    [ -z "$SPID" ] || kill "$SPID" 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] && echo "smoke: scratch kept in $T" || rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "smoke: FAIL: $*" >&2
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 25 "$f" >&2; }; done
    exit 1
}
now() { date +%s.%N; }

# boot NAME "CMDLINE" DRIVE-OPTION [extra qemu args...]: start QEMU in the background;
# serial output goes to $T/NAME.log, QMP listens on $T/NAME.qmp
boot() {
    name=$1 cmdline=$2 drive=$3
    shift 3
    START=$(now)
    "$QEMU" -accel tcg -m 256 -display none -nic none -no-reboot \
        -kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" \
        -append "console=ttyS0 panic=-1 $cmdline" -drive "$drive" \
        -qmp "unix:$T/$name.qmp,server=on,wait=off" "$@" \
        >"$T/$name.qemu.log" 2>&1 &
    QPID=$!
}
# ready NAME: wait for the ready line, print the boot time
ready() {
    r=$($CTL wait "$T/$1.log" 'HVM-GUEST READY' $TIMEOUT "$START") || fail "$1: no ready line"
    echo "smoke: $1: ready after ${r%% *} s (${r#* })"
}
# expect NAME REGEX: wait for a console line
expect() {
    $CTL wait "$T/$1.log" "$2" $TIMEOUT >/dev/null || fail "$1: no line matching '$2'"
}
# ended NAME: wait for QEMU to exit (the guest powered off), print the time since launch
ended() {
    i=0
    while kill -0 "$QPID" 2>/dev/null; do
        [ "$i" -lt $((TIMEOUT * 10)) ] || fail "$1: QEMU still running after $TIMEOUT s"
        sleep 0.1
        i=$((i + 1))
    done
    wait "$QPID" || fail "$1: QEMU failed"
    QPID=
    echo "smoke: $1: powered off $(echo "$(now) $START" | awk '{printf "%.2f", $1 - $2}') s after launch"
}
sector() { dd if="$1" bs=512 skip="$2" count=1 2>/dev/null | tr -d '\000' | head -n 1; }

# --- 1. marker on a raw file ---------------------------------------------------------------------
truncate -s 64M "$T/disk.raw"
boot raw-marker "hvm.mode=marker hvm.marker=hello-raw" "file=$T/disk.raw,format=raw,if=virtio" \
    -serial "file:$T/raw-marker.log"
ready raw-marker
expect raw-marker 'HVM-GUEST WROTE hello-raw'
ended raw-marker
[ "$(sector "$T/disk.raw" 2048)" = hello-raw ] || fail "raw-marker: marker not at 1 MiB of the disk"
echo "smoke: raw-marker: marker found at 1 MiB of the raw disk"

# --- 2. marker over NBD from hvm vhd serve -------------------------------------------------------
if [ -x "$HVM" ] && "$HVM" vhd serve --help >/dev/null 2>&1; then
    "$HVM" vhd create "$T/d.vhd" --size 64M >/dev/null
    serve() {
        "$HVM" vhd serve "$T/d.vhd" --socket "$T/nbd.sock" >"$T/serve.log" 2>&1 &
        SPID=$!
        i=0
        while [ ! -S "$T/nbd.sock" ]; do
            [ "$i" -lt 50 ] || fail "hvm vhd serve did not create its socket"
            sleep 0.1
            i=$((i + 1))
        done
    }
    unserve() {
        kill -TERM "$SPID"
        wait "$SPID" || fail "hvm vhd serve exited with an error"
        SPID=
        rm -f "$T/nbd.sock"
    }
    NBD="driver=raw,file.driver=nbd,file.server.type=unix,file.server.path=$T/nbd.sock,if=virtio"
    serve
    boot nbd-marker "hvm.mode=marker hvm.marker=hello-nbd" "$NBD" -serial "file:$T/nbd-marker.log"
    ready nbd-marker
    expect nbd-marker 'HVM-GUEST WROTE hello-nbd'
    ended nbd-marker
    boot nbd-read "hvm.mode=read" "$NBD" -serial "file:$T/nbd-read.log"
    ready nbd-read
    expect nbd-read 'HVM-GUEST READ marker=hello-nbd counter=0$'
    ended nbd-read
    unserve
    qemu-img convert -f vpc -O raw "$T/d.vhd" "$T/d.raw"
    [ "$(sector "$T/d.raw" 2048)" = hello-nbd ] || fail "nbd-marker: marker not at 1 MiB of the VHD"
    echo "smoke: nbd-marker: marker found at 1 MiB of the VHD served by hvm; read mode saw it"
else
    echo "smoke: nbd: skipped ($HVM vhd serve not available)"
fi

# --- 3. counter, ACPI power-off (QMP system_powerdown), continuation, console poweroff ----------
truncate -s 64M "$T/count.raw"
RAW="file=$T/count.raw,format=raw,if=virtio"
boot counter1 "hvm.mode=counter" "$RAW" -serial "file:$T/counter1.log"
ready counter1
expect counter1 'HVM-GUEST START 0$'
expect counter1 'HVM-GUEST COUNT 12$'
$CTL qmp "$T/counter1.qmp" system_powerdown >/dev/null || fail "counter1: QMP system_powerdown"
expect counter1 'HVM-GUEST POWEROFF acpi'
ended counter1
n=$(sed -n 's/.*HVM-GUEST STOPPED \([0-9]*\).*/\1/p' "$T/counter1.log")
[ -n "$n" ] || fail "counter1: no STOPPED line"
[ "$(sector "$T/count.raw" 4096)" = "$n" ] || fail "counter1: disk does not hold the last count $n"
echo "smoke: counter1: system_powerdown stopped the counter at $n and it is on the disk"

boot counter2 "hvm.mode=counter" "$RAW" \
    -chardev "socket,id=ser,path=$T/serial.sock,server=on,wait=off,logfile=$T/counter2.log" \
    -serial chardev:ser
ready counter2
expect counter2 "HVM-GUEST START $n\$"
expect counter2 "HVM-GUEST COUNT $((n + 5))\$"
$CTL type "$T/serial.sock" poweroff || fail "counter2: cannot type on the serial console"
expect counter2 'HVM-GUEST POWEROFF console'
ended counter2
m=$(sed -n 's/.*HVM-GUEST STOPPED \([0-9]*\).*/\1/p' "$T/counter2.log")
[ -n "$m" ] && [ "$m" -gt "$n" ] && [ "$(sector "$T/count.raw" 4096)" = "$m" ] ||
    fail "counter2: expected a stored count above $n"
echo "smoke: counter2: continued from $n, poweroff typed on the console stopped it at $m"

# --- 4. memory save and restore (QMP migrate to a file): the counter goes on, no new boot -----
boot save "hvm.mode=counter" "$RAW" -serial "file:$T/save.log"
ready save
expect save "HVM-GUEST COUNT $((m + 5))\$"
$CTL qmp "$T/save.qmp" stop \
    '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":10000000000}}' \
    "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $T/state.bin\"}}" >/dev/null ||
    fail "save: QMP migrate"
i=0
until $CTL qmp "$T/save.qmp" query-migrate | grep -q '"status": "completed"'; do
    [ "$i" -lt 300 ] || fail "save: migration did not complete"
    sleep 0.1
    i=$((i + 1))
done
$CTL qmp "$T/save.qmp" quit >/dev/null || true
wait "$QPID" || true
QPID=
last=$(sed -n 's/.*HVM-GUEST COUNT \([0-9]*\).*/\1/p' "$T/save.log" | tail -n 1)
boot restore "hvm.mode=counter" "$RAW" -serial "file:$T/restore.log" -incoming "exec:cat $T/state.bin"
# cont only once the incoming state is loaded: a cont during "inmigrate" is overridden by the
# saved run state ("paused", since the guest was stopped before the save)
i=0
until $CTL qmp "$T/restore.qmp" query-status | grep -q '"status": "paused"'; do
    [ "$i" -lt 300 ] || fail "restore: the state did not load"
    sleep 0.1
    i=$((i + 1))
done
$CTL qmp "$T/restore.qmp" cont >/dev/null || fail "restore: QMP cont"
expect restore "HVM-GUEST COUNT $((last + 3))\$"
! grep -q 'HVM-GUEST READY' "$T/restore.log" || fail "restore: the guest booted again"
$CTL qmp "$T/restore.qmp" system_powerdown >/dev/null || fail "restore: QMP system_powerdown"
ended restore
echo "smoke: save/restore: saved at count $last ($(($(wc -c <"$T/state.bin") / 1048576)) MiB state), the restored guest went on counting"
echo "smoke: all passed"
