#!/bin/sh
# UEFI: a VM made with --firmware uefi boots the test guest through OVMF
# (direct kernel boot: the kernel's EFI stub), its screen (vm screenshot) is
# not blank, OVMF's code reaches QEMU read-only and the VM's own variable
# store read-write, both as descriptors. A UEFI variable the guest writes
# (through efivarfs) is read back by the guest after a restart, after a
# checkpoint apply (the checkpoint froze it; a later value is gone), after
# an export/import and in a linked clone; the host sees it in the store's
# bytes too. vm set --firmware bios drops the store, uefi makes a fresh one.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] && [ -r /usr/share/OVMF/OVMF_VARS_4M.fd ] ||
    skip "Debian's ovmf package is not installed"
deb=$(ls "$GUEST"/cache/*/*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || skip "no cached kernel package in $GUEST/cache (for efivarfs.ko)"

# efivarfs is a module in Debian's cloud kernel: a second initramfs archive
# (the kernel unpacks concatenated ones) brings it.
dpkg -x "$deb" pkg
mkdir -p ov/lib/modules
f=$(find pkg/lib/modules -name efivarfs.ko | head -n 1)
[ -n "$f" ] || skip "no efivarfs.ko in $deb"
cp "$f" ov/lib/modules/
(cd ov && find . | cpio -o -H newc 2>/dev/null | gzip) > extra.img
cat "$GUEST/initrd.img" extra.img > initrd-efi.img

# The variable: vendor GUID of the test's own, attributes non-volatile +
# boot service + runtime access (7), little-endian before the data.
GUID=8b3c1a52-84e4-4c1d-9a6b-0c3e5d7f2a10
EFIVARS=/sys/firmware/efi/efivars
# guest_sh VM COMMANDS SECONDS: types COMMANDS into the guest's shell, waits,
# detaches; the console's output is in console.txt.
guest_sh() {
    (sleep 1; printf '%s\r' "$2"; sleep "$3"; printf '\035') | "$HVM" vm console "$1" > console.txt
}
setup_efivars="insmod /lib/modules/efivarfs.ko; mount -t efivarfs none $EFIVARS"
# (efivarfs makes a variable's file immutable: each value is a new variable)
write_var() { # VM NAME VALUE
    guest_sh "$1" "$setup_efivars; printf '\\007\\000\\000\\000$3' > $EFIVARS/$2-$GUID; sync; echo \"GOT=\$(tail -c +5 $EFIVARS/$2-$GUID)\"" 4
    grep -aq "GOT=$3" console.txt || { cat console.txt; fail "$1: the guest could not write the variable $2"; }
}
expect_var() { # VM NAME VALUE|none
    guest_sh "$1" "$setup_efivars; echo \"GOT=\$(tail -c +5 $EFIVARS/$2-$GUID 2>/dev/null || echo none)\"" 4
    grep -aq "GOT=$3" console.txt || { cat console.txt; fail "$1: the guest reads the variable $2 as $(grep -a 'GOT=' console.txt | tail -1), not $3"; }
}
boot() { # VM
    "$HVM" vm start "$1" --accel "$ACCEL"
    console_mark "$1"
    wait_console "$1" "HVM-GUEST READY" 120
}
off() { # VM
    "$HVM" vm turn-off "$1"
    wait_state "$1" Off 20
}
vars_of() { # VM [CHECKPOINT-ID]: the absolute path of the variable store
    "$HVM" vm show "$1" --json | json_get /dev/stdin "d['firmware']['vars']" | sed "s|^|$HVM_STORE/vms/$1/|"
}

"$HVM" vm create u --memory 256M --new-disk 16M --firmware uefi > /dev/null
"$HVM" vm set u --kernel "$GUEST/vmlinuz" --initrd "$T/initrd-efi.img" \
    --cmdline "console=tty0 console=ttyS0 hvm.mode=shell"
"$HVM" vm show u | grep -q "^Firmware: *uefi$" || fail "vm show does not say uefi"
"$HVM" vm show u --json | json_get /dev/stdin "d['firmware']['type'] == 'uefi' and d['firmware']['secure_boot'] is False or exit(1)"
vars=$(vars_of u)
case "$vars" in "$HVM_STORE"/vms/u/nvram/*.fd) ;; *) fail "the variable store is not in nvram/: $vars" ;; esac
cmp -s "$vars" /usr/share/OVMF/OVMF_VARS_4M.fd || fail "a new VM's store is not OVMF's template"

boot u
qpid=$("$HVM" vm show u --json | json_get /dev/stdin "d.get('qemu_pid') or ''")
[ -n "$qpid" ] || fail "vm show gives no QEMU pid"
tr '\0' '\n' < /proc/$qpid/cmdline > cmdline.txt
grep -q "^if=pflash,unit=0,readonly=on,.*file.filename=/dev/fdset/20" cmdline.txt || { cat cmdline.txt; fail "OVMF's code is not read-only flash from an fd set"; }
grep -q "^if=pflash,unit=1,.*file.filename=/dev/fdset/21" cmdline.txt || fail "no variable store flash"
grep -q "OVMF\|nvram" cmdline.txt && fail "QEMU's command line names a firmware file"
# The screen: a PNG whose pixels are not all the same (the kernel's text
# on the EFI frame buffer).
"$HVM" vm screenshot u shot.png > /dev/null
$PY - shot.png <<'PY' || fail "the UEFI VM's screen is blank or not a PNG"
import struct, sys, zlib
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'signature'
pos, idat = 8, b''
while pos < len(b):
    n, = struct.unpack('>I', b[pos:pos + 4]); kind = b[pos + 4:pos + 8]; data = b[pos + 8:pos + 8 + n]
    if kind == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', data[:10])
    if kind == b'IDAT': idat += data
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
assert w >= 640 and h >= 400, (w, h)
raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        c = prev[i - bpp] if i >= bpp else 0
        p = a + prev[i] - c
        pred = [0, a, prev[i], (a + prev[i]) // 2,
                a if abs(p - a) <= abs(p - prev[i]) and abs(p - a) <= abs(p - c) else prev[i] if abs(p - prev[i]) <= abs(p - c) else c][f]
        line[i] = (line[i] + pred) & 255
    rows.append(bytes(line)); prev = line
colours = {r[i:i + 3] for r in rows for i in range(0, stride, bpp)}
print('%dx%d, %d colours' % (w, h, len(colours)))
assert len(colours) > 1, 'one colour'
PY

# A variable written by the guest lives in the VM's store.
write_var u HvmA hvm-84-A
off u
grep -aq "hvm-84-A" "$vars" || fail "the variable is not in the VM's store file"
boot u
expect_var u HvmA hvm-84-A
off u

# A checkpoint freezes the store: a later value is gone after apply.
"$HVM" checkpoint take u A > /dev/null
cpvars=$("$HVM" checkpoint show u A --json | json_get /dev/stdin "d['config']['firmware']['vars']")
[ "$cpvars" != "$(vars_of u | sed "s|^$HVM_STORE/vms/u/||")" ] || fail "the checkpoint shares now's store"
cmp -s "$HVM_STORE/vms/u/$cpvars" "$vars" || fail "the checkpoint's store is not a copy of now's"
boot u
write_var u HvmB hvm-84-B
off u
grep -aq "hvm-84-A" "$HVM_STORE/vms/u/$cpvars" || fail "the checkpoint's store changed"
grep -aq "hvm-84-B" "$HVM_STORE/vms/u/$cpvars" && fail "the checkpoint's store has the later value"
"$HVM" checkpoint apply u A > /dev/null
[ -e "$vars" ] && fail "apply left now's old store behind"
cmp -s "$(vars_of u)" "$HVM_STORE/vms/u/$cpvars" || fail "apply did not restore the checkpoint's store"
boot u
expect_var u HvmA hvm-84-A
expect_var u HvmB none
off u
vm_check u

# Export/import carries the stores; a linked clone gets a copy.
"$HVM" vm export u u.hvmx > /dev/null
ls u.hvmx/nvram/*.fd > /dev/null 2>&1 || fail "the bundle has no nvram/"
"$HVM" vm import u.hvmx --mode copy --name u2 > import.txt 2>&1 || { cat import.txt; fail "import failed"; }
cmp -s "$(vars_of u2)" "$(vars_of u)" || fail "the imported store differs"
"$HVM" vm show u2 --json | json_get /dev/stdin "d['firmware']['type'] == 'uefi' or exit(1)"
boot u2
expect_var u2 HvmA hvm-84-A
off u2
vm_check u2
"$HVM" vm create c --clone u --checkpoint A > /dev/null
cmp -s "$(vars_of c)" "$HVM_STORE/vms/u/$cpvars" || fail "the clone's store is not the checkpoint's"
[ "$(vars_of c)" != "$HVM_STORE/vms/u/$cpvars" ] || fail "the clone shares the store"
"$HVM" vm export u flat.hvmx --flatten > /dev/null
ls flat.hvmx/nvram/*.fd > /dev/null 2>&1 || fail "a flattened bundle has no nvram/"

# --firmware bios drops now's store (the checkpoint keeps its own) and boots
# SeaBIOS; back to uefi: a fresh store.
old=$(vars_of u)
"$HVM" vm set u --firmware bios
[ -e "$old" ] && fail "--firmware bios left the store"
[ -e "$HVM_STORE/vms/u/$cpvars" ] || fail "--firmware bios removed the checkpoint's store"
"$HVM" vm show u | grep -q "^Firmware: *bios$" || fail "vm show does not say bios"
boot u
qpid=$("$HVM" vm show u --json | json_get /dev/stdin "d.get('qemu_pid') or ''")
tr '\0' '\n' < /proc/$qpid/cmdline | grep -q pflash && fail "a BIOS VM has flash"
off u
"$HVM" vm set u --firmware uefi
cmp -s "$(vars_of u)" /usr/share/OVMF/OVMF_VARS_4M.fd || fail "--firmware uefi: not a fresh store"
vm_check u
expect_fail 2 "$HVM" vm set u --firmware efi
expect_fail 2 "$HVM" vm create z --firmware bios --secure-boot
last_error | grep -q "secure-boot" || fail "unclear --secure-boot error: $(last_error)"

# vm.json by hand: UEFI without a store, a store outside the folder.
cp "$HVM_STORE/vms/u2/vm.json" good.json
$PY - "$HVM_STORE/vms/u2/vm.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
del d["config"]["firmware"]["vars"]
json.dump(d, open(sys.argv[1], "w"))
PY
expect_fail 2 "$HVM" vm show u2
last_error | grep -q "config.firmware.vars" || fail "UEFI without a store is not refused: $(last_error)"
$PY - "$HVM_STORE/vms/u2/vm.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["config"]["firmware"] = {"type": "uefi", "vars": "../../etc/passwd"}
json.dump(d, open(sys.argv[1], "w"))
PY
expect_fail 2 "$HVM" vm show u2
last_error | grep -q "config.firmware.vars" || fail "a store outside the folder is not refused: $(last_error)"
cp good.json "$HVM_STORE/vms/u2/vm.json"
"$HVM" vm show u2 > /dev/null

# Secure Boot: OVMF's secboot build on q35 with SMM, Microsoft's keys; the
# Debian kernel (signed) boots and reports Secure Boot on.
"$HVM" vm create sb --memory 256M --new-disk 16M --secure-boot > /dev/null
"$HVM" vm set sb --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" --cmdline "console=ttyS0 hvm.mode=shell"
"$HVM" vm show sb | grep -q "^Firmware: *uefi, Secure Boot$" || fail "vm show does not say Secure Boot"
cmp -s "$(vars_of sb)" /usr/share/OVMF/OVMF_VARS_4M.ms.fd || fail "the store is not the secboot template"
boot sb
qpid=$("$HVM" vm show sb --json | json_get /dev/stdin "d.get('qemu_pid') or ''")
[ -n "$qpid" ] || fail "vm show gives no QEMU pid"
tr '\0' '\n' < /proc/$qpid/cmdline | grep -q "^q35,smm=on$" || fail "Secure Boot without q35 and SMM"
off sb
grep -aq "Secure boot enabled" "$(console_log sb)" || fail "the guest does not see Secure Boot on"
