#!/bin/sh
# Two VMs from one base running at once, each writing its own data.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

"$HVM" vhd create base.vhd --size 64M
base_sum=$(sha base.vhd)
for v in a b; do
    guest_vm $v shell --from base.vhd
    "$HVM" vm set $v --cmdline "console=ttyS0 hvm.mode=marker hvm.marker=mark-$v hvm.wait=10"
done
"$HVM" vm start a --accel "$ACCEL"
"$HVM" vm start b --accel "$ACCEL"
"$HVM" vm list
wait_state a Off 120
wait_state b Off 120
[ "$(disk_text a 1048576)" = mark-a ] || fail "a lacks its marker"
[ "$(disk_text b 1048576)" = mark-b ] || fail "b lacks its marker"
[ "$(sha base.vhd)" = "$base_sum" ] || fail "the base changed"
"$HVM" vm check a
"$HVM" vm check b
echo ok
