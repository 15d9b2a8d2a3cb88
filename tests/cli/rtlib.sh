# Helpers for the runtime tests (running guests): source after lib.sh and vmlib.sh.
GUEST=${GUEST_DIR:-$TESTS/../build-guest}
[ -f "$GUEST/vmlinuz" ] && [ -f "$GUEST/initrd.img" ] || skip "no test guest in $GUEST (run 'make guest')"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
ACCEL=${HVM_TEST_ACCEL:-auto}

# A failing test must not leave guests running: they would slow every test
# after it. Workers (holding run/lock) and their QEMUs (holding the console
# log; their command lines name no path of the store) are killed outright.
kill_running_vms() {
    for held in "$HVM_STORE"/vms/*/run/lock "$HVM_STORE"/vms/*/run/console.log; do
        [ -e "$held" ] || continue
        for pid in $(fuser "$held" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    done
    true
}
EXTRA_CLEANUP=kill_running_vms

# guest_vm NAME MODE [vm create options...]: a VM booting the test guest.
guest_vm() {
    name=$1 mode=$2; shift 2
    # (BIOS: SeaBIOS starts the test guest in half the time OVMF takes under TCG)
    "$HVM" vm create "$name" --memory 256M --firmware bios "$@" >/dev/null
    "$HVM" vm set "$name" --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
        --cmdline "console=ttyS0 hvm.mode=$mode ${GUEST_ARGS:-}"
}
console_log() { echo "$HVM_STORE/vms/$1/run/console.log"; }
# console_mark NAME: remember how much the console printed so far.
console_mark() { eval "mark_$(echo "$1" | tr -c 'a-zA-Z0-9_\n' _)=$(stat -c %s "$(console_log "$1")" 2>/dev/null || echo 0)"; }
console_since() { # NAME: what the console printed since console_mark
    m=$(eval echo "\${mark_$(echo "$1" | tr -c 'a-zA-Z0-9_\n' _):-0}")
    tail -c +$((m + 1)) "$(console_log "$1")" 2>/dev/null | tr -d '\r'
}
# wait_console NAME REGEX SECONDS: until the console (since the mark) shows REGEX.
wait_console() {
    i=0
    while ! console_since "$1" | grep -aEq "$2"; do
        i=$((i + 1))
        [ $i -lt $(($3 * 10)) ] || { console_since "$1" | tail -20 >&2; fail "$1: no '$2' on the console within $3 s"; }
        sleep 0.1
    done
}
# last_count NAME: the last counter value the guest printed since the mark.
last_count() { console_since "$1" | grep -a "^HVM-GUEST COUNT" | tail -1 | awk '{print $3}'; }
# first_count NAME: the first counter value of the newest run (after the
# worker's "[hvm] starting/resuming" line) since the mark.
first_count() {
    console_since "$1" | awk '/^\[hvm\] /{n=""} /^HVM-GUEST COUNT/{if(n=="")n=$3} END{print n}'
}
# wait_first_count NAME SECONDS: until the newest run has printed a count
# (a count of the run before, printed after the mark, does not end the wait).
wait_first_count() {
    i=0
    while [ -z "$(first_count "$1")" ]; do
        i=$((i + 1))
        [ $i -lt $(($2 * 10)) ] || { console_since "$1" | tail -20 >&2; fail "$1: no count from the new run within $2 s"; }
        sleep 0.1
    done
}
# wait_state NAME STATE SECONDS
wait_state() {
    i=0
    while [ "$("$HVM" vm show "$1" --json | json_get /dev/stdin "d['state']")" != "$2" ]; do
        i=$((i + 1)); [ $i -lt $(($3 * 10)) ] || fail "$1 did not become $2"
        sleep 0.1
    done
}
# disk_text NAME OFFSET [vm serve options]: the text line stored at OFFSET of drive 0.
disk_text() {
    n=$1 off=$2; shift 2
    rm -f "$T/.disk"
    vm_flat "$n" "$T/.disk" "$@"
    dd if="$T/.disk" bs=512 skip=$((off / 512)) count=1 2>/dev/null | tr -d '\000' | head -1
    rm -f "$T/.disk"
}
