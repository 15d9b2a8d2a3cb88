#!/bin/sh
# The boot state: vm show and vm list say what the firmware says about
# booting (SeaBIOS on its debug port, run/firmware.log; OVMF's boot manager
# on the serial console): a VM whose only disk is blank has no bootable
# device under BIOS and under UEFI (where OVMF falls back to its shell); a
# direct kernel boot is SeaBIOS's "ROM". An Off VM shows no boot state.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || skip "Debian's ovmf package is not installed"

boot_of() { "$HVM" vm show "$1" --json | json_get /dev/stdin "d.get('boot') or ''"; }
wait_boot() { # VM TEXT SECONDS
    end=$(($(date +%s) + $3))
    while [ "$(boot_of "$1")" != "$2" ]; do
        [ "$(date +%s)" -lt $end ] || fail "$1: boot state '$(boot_of "$1")', not '$2', after $3 s"
        sleep 0.5
    done
}

"$HVM" vm create nb --memory 128M --firmware bios --new-disk 16M > /dev/null
"$HVM" vm create nu --memory 128M --firmware uefi --new-disk 16M > /dev/null
guest_vm k shell
[ -z "$(boot_of nb)" ] || fail "an Off VM has a boot state"
"$HVM" vm show nb | grep -q "^Boot:" && fail "vm show gives an Off VM a boot state"
for vm in nb nu k; do "$HVM" vm start $vm --accel "$ACCEL" > /dev/null; done
wait_boot nb "no bootable device" 60
wait_boot nu "no bootable device (OVMF started its shell)" 120
wait_boot k "ROM" 60
"$HVM" vm show nb | grep -q "^Boot: *no bootable device$" || { "$HVM" vm show nb; fail "vm show: no boot line"; }
"$HVM" vm list > list.txt
grep -q "^NAME .* BOOT$" list.txt || { cat list.txt; fail "vm list has no BOOT column"; }
grep -Eq "^nb +Running .* no bootable device$" list.txt || { cat list.txt; fail "vm list: nb's boot state"; }
grep -Eq "^nu +Running .* no bootable device \(OVMF started its shell\)$" list.txt || { cat list.txt; fail "vm list: nu's boot state"; }
"$HVM" vm list --json | json_get /dev/stdin "[v.get('boot') for v in d] == ['ROM', 'no bootable device', 'no bootable device (OVMF started its shell)'] or exit(1)" ||
    fail "vm list --json: $("$HVM" vm list --json)"
grep -q "No bootable device" "$HVM_STORE/vms/nb/run/firmware.log" || fail "no SeaBIOS message in run/firmware.log"
for vm in nb nu k; do "$HVM" vm turn-off $vm; done
for vm in nb nu k; do wait_state $vm Off 20; done
