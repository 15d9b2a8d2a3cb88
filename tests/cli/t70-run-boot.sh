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
echo ok
