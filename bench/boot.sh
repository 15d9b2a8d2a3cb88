#!/bin/sh
# Boot time by firmware: `hvm vm start` -> "HVM-GUEST READY" on the serial
# console, for a BIOS (SeaBIOS) and a UEFI (OVMF) VM booting the test guest
# (direct kernel boot, no disk: hvm.wait=0), against plain QEMU with the same
# firmware, kernel, initrd and memory started the same way (-> READY in its
# serial log). BENCH_BOOT_ROUNDS (3) rounds, hvm and QEMU alternating which
# goes first; medians. TCG unless HVM_TEST_ACCEL says otherwise.
#
#   HVM=build-release/hvm GUEST_DIR=build-guest sh bench/boot.sh
set -eu
: "${HVM:?set HVM to the hvm binary}"
HVM=$(cd "$(dirname "$HVM")" && pwd)/$(basename "$HVM")
here=$(cd "$(dirname "$0")" && pwd)
GUEST_DIR=$(cd "${GUEST_DIR:-$here/../build-guest}" && pwd)
ROUNDS=${BENCH_BOOT_ROUNDS:-3}
ACCEL=${HVM_TEST_ACCEL:-tcg}
CODE=/usr/share/OVMF/OVMF_CODE_4M.fd VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
S=$(mktemp -d /var/tmp/hvm-bootbench.XXXXXX)
export HVM_STORE=$S/store
cleanup() {
    for vm in boot-bios boot-uefi; do "$HVM" vm turn-off $vm >/dev/null 2>&1 || true; done
    # (each boot runs in a command substitution: its QEMU's pid is in a file)
    [ ! -f "$S/qemu.pid" ] || kill "$(cat "$S/qemu.pid")" 2>/dev/null || true
    rm -rf "$S"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
# wait_ready LOG FROM-BYTE: until READY appears after FROM-BYTE of LOG (180 s at most)
wait_ready() {
    end=$(($(date +%s) + 180))
    until tail -c +$(($2 + 1)) "$1" 2>/dev/null | grep -aq "HVM-GUEST READY"; do
        [ "$(date +%s)" -lt $end ] || { echo "bench/boot.sh: no READY in $1" >&2; kill $$; exit 2; }
        sleep 0.02
    done
}
CMDLINE="console=ttyS0 hvm.mode=shell hvm.wait=0"
for fw in bios uefi; do
    "$HVM" vm create boot-$fw --memory 256M --firmware $fw >/dev/null 2>&1
    "$HVM" vm set boot-$fw --kernel "$GUEST_DIR/vmlinuz" --initrd "$GUEST_DIR/initrd.img" --cmdline "$CMDLINE"
done
hvm_boot() { # VM: seconds from vm start to READY
    log=$HVM_STORE/vms/$1/run/console.log
    from=$(stat -c %s "$log" 2>/dev/null || echo 0)
    t0=$(now)
    "$HVM" vm start "$1" --accel "$ACCEL" >/dev/null
    wait_ready "$log" "$from"
    t1=$(now)
    "$HVM" vm turn-off "$1" >/dev/null
    awk "BEGIN { print $t1 - $t0 }"
}
qemu_boot() { # bios|uefi
    fwargs=""
    if [ "$1" = uefi ]; then
        cp "$VARS" "$S/vars.fd"
        fwargs="-drive if=pflash,unit=0,readonly=on,format=raw,file=$CODE -drive if=pflash,unit=1,format=raw,file=$S/vars.fd"
    fi
    : > "$S/qemu.log"
    t0=$(now)
    qemu-system-x86_64 -nodefaults -no-user-config -accel "$ACCEL" -m 256M $fwargs -vga std -display none \
        -serial "file:$S/qemu.log" -kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" \
        -append "$CMDLINE" &
    qpid=$!
    echo "$qpid" > "$S/qemu.pid"
    wait_ready "$S/qemu.log" 0
    t1=$(now)
    kill "$qpid"; wait "$qpid" 2>/dev/null || true
    rm -f "$S/qemu.pid"
    awk "BEGIN { print $t1 - $t0 }"
}
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '| Firmware | hvm vm start -> READY | plain QEMU -> READY | hvm/QEMU |\n|---|---:|---:|---:|\n' > "$S/table"
for fw in bios uefi; do
    h="" q=""
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            h="$h $(hvm_boot boot-$fw)"; q="$q $(qemu_boot $fw)"
        else
            q="$q $(qemu_boot $fw)"; h="$h $(hvm_boot boot-$fw)"
        fi
        echo "bench/boot.sh: $fw round $r: hvm$h / qemu$q" >&2
    done
    hm=$(echo "$h" | median) qm=$(echo "$q" | median)
    printf '| %s | %.2f s | %.2f s | %.2f |\n' $fw "$hm" "$qm" "$(awk "BEGIN { print $hm / $qm }")" >> "$S/table"
done
cat "$S/table"
