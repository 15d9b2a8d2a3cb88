#!/bin/sh
# Boot the test guest from a differencing disk of a base: the guest writes a
# marker; after it powers off the marker is in the VM's disk and not in the
# base. Also: state/accelerator/uptime while running, ACPI stop, stop
# --timeout on a guest that cannot react, --force.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

"$HVM" vhd create base.vhd --size 64M
base_sum=$(sha base.vhd)
guest_vm web marker --from base.vhd
"$HVM" vm set web --cmdline "console=ttyS0 hvm.mode=marker hvm.marker=hello-web"
"$HVM" vm start web --accel "$ACCEL"
wait_state web Off 90
grep -aq "HVM-GUEST WROTE hello-web" "$(console_log web)" || fail "guest did not write"
[ "$(disk_text web 1048576)" = "hello-web" ] || fail "marker not in the VM's disk"
[ "$(sha base.vhd)" = "$base_sum" ] || fail "the base changed"
"$HVM" vhd convert base.vhd base.raw --type raw
dd if=base.raw bs=512 skip=2048 count=1 2>/dev/null | grep -aq hello && fail "marker in the base"
"$HVM" vm check web

# A shell guest: running state, accelerator, uptime; ACPI shutdown.
guest_vm sh shell --new-disk 16M
"$HVM" vm start sh --accel "$ACCEL"
console_mark sh
wait_console sh "HVM-GUEST READY" 60
"$HVM" vm list > list.txt
grep -E "^sh +Running .* (tcg|kvm) " list.txt || { cat list.txt; fail "list does not show Running with the accelerator"; }
"$HVM" vm show sh --json > show.json
json_get show.json "d['state'], d['accel'], d['uptime'] >= 0"
[ -f "$HVM_STORE/accel-probe.json" ] || [ "$ACCEL" != auto ] || fail "the auto probe was not cached"
expect_fail 2 "$HVM" vm start sh
# The serial console: type a command, read its answer, detach with Ctrl-].
(sleep 1; printf 'echo CONSOLE-$((6*7))\r'; sleep 3; printf '\035') | "$HVM" vm console sh > console.txt
grep -aq "CONSOLE-42" console.txt || { cat console.txt; fail "no answer through the console"; }
"$HVM" vm show sh --json | json_get /dev/stdin "d['state']" | grep -qx Running || fail "detaching stopped the VM"
"$HVM" vm stop sh --timeout 60
wait_state sh Off 10

# A paused guest cannot act on the power button: stop times out, --force works.
"$HVM" vm start sh --accel "$ACCEL"
console_mark sh
wait_console sh "HVM-GUEST READY" 60
"$HVM" vm pause sh
[ "$("$HVM" vm show sh --json | json_get /dev/stdin "d['state']")" = Paused ] || fail "not Paused"
expect_fail 2 "$HVM" vm stop sh --timeout 2
last_error | grep -q "did not shut down within 2 s" || fail "unclear stop timeout error"
"$HVM" vm stop sh --timeout 1 --force
wait_state sh Off 10
expect_fail 2 "$HVM" vm stop sh
"$HVM" vm check sh

# BIOS boot from a VHD: a boot sector that prints on the serial port.
"$HVM" vm create bios --new-disk 16M --memory 64M --firmware bios >/dev/null
printf '\272\370\003\260B\356\260I\356\260O\356\260S\356\260\n\356\364\353\375' > boot.bin
dd if=/dev/zero bs=1 count=$((510 - $(stat -c %s boot.bin))) 2>/dev/null >> boot.bin
printf '\125\252' >> boot.bin
[ "$(stat -c %s boot.bin)" = 512 ] || fail "boot sector is not 512 bytes"
sock="$T/bios.sock"
"$HVM" vm serve bios --socket "$sock" & sp=$!
while [ ! -S "$sock" ]; do sleep 0.05; done
qemu-io -f raw -c "write -s boot.bin 0 512" "nbd+unix:///?socket=$sock" >/dev/null
kill -TERM $sp; wait $sp
console_mark bios
"$HVM" vm start bios --accel "$ACCEL"
wait_console bios "BIOS" 30
"$HVM" vm turn-off bios
"$HVM" vm check bios
echo ok
