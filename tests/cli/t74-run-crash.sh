#!/bin/sh
# kill -9 of QEMU, and of the worker, while the guest writes: the VM is
# reported Off, hvm vm check passes, the chain reads consistently.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

"$HVM" vhd create base.vhd --size 64M
GUEST_ARGS="hvm.every=1 hvm.period=0.05" guest_vm c counter --from base.vhd
pid_of() { "$HVM" vm show c --json | json_get /dev/stdin "d['$1']"; }
count_ok() {
    v=$(disk_text c 2097152)
    case "$v" in '' | *[!0-9]*) fail "the counter on disk is not a number: '$v'" ;; esac
    echo "counter on disk: $v"
}

# 1. QEMU dies: the worker notices, flushes, records Off.
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 20$" 90
kill -9 "$(pid_of qemu_pid)"
wait_state c Off 20
"$HVM" vm check c
count_ok

# 2. The worker dies (QEMU goes with it): the next command says so.
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT" 60
"$HVM" checkpoint take c during
wait_console c "HVM-GUEST COUNT" 10
w=$(pid_of worker_pid)
q=$(pid_of qemu_pid)
kill -9 "$w"
i=0; while kill -0 "$q" 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ] || fail "QEMU outlived its worker"; sleep 0.1; done
"$HVM" vm list 2>err.txt | grep -E "^c +Off" || fail "not reported Off"
"$HVM" vm check c
count_ok
disk_text c 2097152 --checkpoint during >/dev/null
"$HVM" vm start c --accel "$ACCEL"
"$HVM" vm turn-off c
"$HVM" vm check c
echo ok
