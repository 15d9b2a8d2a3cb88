#!/bin/sh
# DVD drives and the boot order: an ISO (genisoimage) attached read-only is
# a CD-ROM the guest reads (its marker file); QEMU gets it as a descriptor
# and the boot order as bootindex values on its command line; a missing
# ISO is refused at start, naming it; eject; import drops DVDs.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
have genisoimage || skip "genisoimage is not installed"
deb=$(ls "$GUEST"/cache/*/*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || skip "no cached kernel package in $GUEST/cache (for the CD-ROM modules)"

mkdir iso
echo "DVD-MARKER-81" > iso/marker.txt
genisoimage -quiet -o "$T/media.iso" -V HVM81 iso
cp media.iso other.iso

# The test guest loads only virtio modules: a second initramfs archive
# (the kernel unpacks concatenated ones) adds the IDE CD-ROM stack, which
# the test loads from the guest's shell.
dpkg -x "$deb" pkg
mkdir -p ov/lib/modules
CDMODS="scsi_common scsi_mod cdrom sr_mod libata ata_piix isofs"
for m in $CDMODS; do
    f=$(find pkg/lib/modules -name "$m.ko" | head -n 1)
    [ -n "$f" ] || skip "no $m.ko in $deb"
    cp "$f" ov/lib/modules/
done
(cd ov && find . | cpio -o -H newc 2>/dev/null | gzip) > extra.img
cat "$GUEST/initrd.img" extra.img > initrd-cd.img

"$HVM" vm create cd --memory 256M --firmware bios --new-disk 16M >/dev/null
"$HVM" vm set cd --kernel "$GUEST/vmlinuz" --initrd "$T/initrd-cd.img" --cmdline "console=ttyS0 hvm.mode=shell"
"$HVM" vm set cd --dvd media.iso --boot dvd,disk,net
"$HVM" vm set cd --dvd other.iso --dvd-slot 3
"$HVM" vm show cd --json > show.json
json_get show.json "[(x['slot'], x['file']) for x in d['dvds']] == [(0, '$T/media.iso'), (3, '$T/other.iso')] or exit(1)"
json_get show.json "d['boot_order'] == ['dvd', 'disk', 'net'] or exit(1)"
"$HVM" vm show cd | grep -q "^DVD 3: .*other.iso (read-only)" || fail "vm show does not list the DVD"
"$HVM" vm show cd | grep -q "^Boot order: *dvd,disk,net" || fail "vm show does not show the boot order"
[ -z "$(find "$HVM_STORE/vms/cd" -name '*.iso')" ] || fail "the ISO was copied into the VM folder"
# Refused values.
expect_fail 2 "$HVM" vm set cd --boot dvd,floppy
last_error | grep -q "floppy" || fail "unclear --boot error"
expect_fail 2 "$HVM" vm set cd --boot disk,disk
expect_fail 2 "$HVM" vm set cd --dvd missing.iso
last_error | grep -q "missing.iso" || fail "unclear --dvd error"
expect_fail 2 "$HVM" vm set cd --dvd media.iso --dvd-slot 4
expect_fail 2 "$HVM" vm set cd --eject 2

"$HVM" vm start cd --accel "$ACCEL"
console_mark cd
wait_console cd "HVM-GUEST READY" 60
# QEMU's command line: the ISO as a read-only descriptor, bootindex by order.
qpid=$("$HVM" vm show cd --json | json_get /dev/stdin "d.get('qemu_pid') or ''")
[ -n "$qpid" ] || fail "vm show gives no QEMU pid"
tr '\0' '\n' < /proc/$qpid/cmdline > cmdline.txt
grep -q "^ide-cd,bus=ide.0,unit=0,drive=dvd0,bootindex=1$" cmdline.txt || { cat cmdline.txt; fail "no DVD 0 with bootindex 1"; }
grep -q "^ide-cd,bus=ide.1,unit=1,drive=dvd3,bootindex=2$" cmdline.txt || fail "no DVD 3 with bootindex 2"
grep -q "^vhost-user-blk-pci,.*bootindex=101$" cmdline.txt || fail "the disk has no bootindex after the DVDs"
grep -q "readonly=on.*file.filename=/dev/fdset/10" cmdline.txt || fail "DVD not a read-only fd set"
grep -q "iso" cmdline.txt && fail "QEMU's command line names the ISO"
# The guest sees the CD-ROM and reads the marker from it.
(sleep 1; printf 'for m in %s; do insmod /lib/modules/$m.ko; done; sleep 1\r' "$CDMODS"; sleep 3
 printf 'mkdir -p /mnt; mount -t iso9660 -o ro /dev/sr0 /mnt && echo "CD=$(cat /mnt/marker.txt)"; cat /sys/block/sr0/ro\r'; sleep 4; printf '\035') |
    "$HVM" vm console cd > console.txt
grep -aq "CD=DVD-MARKER-81" console.txt || { cat console.txt; fail "the guest did not read the ISO"; }
"$HVM" vm turn-off cd
wait_state cd Off 10

# A missing ISO: start refuses, naming it; nothing changes.
mv other.iso gone.iso
expect_fail 2 "$HVM" vm start cd --accel "$ACCEL"
last_error | grep -q "$T/other.iso" || fail "the start error does not name the ISO"
[ "$("$HVM" vm show cd --json | json_get /dev/stdin "d['state']")" = Off ] || fail "not Off after the refused start"
"$HVM" vm set cd --eject 3
"$HVM" vm show cd --json | json_get /dev/stdin "[x['slot'] for x in d['dvds']] == [0] or exit(1)"
"$HVM" vm set cd --eject all --boot disk
"$HVM" vm show cd --json | json_get /dev/stdin "d['dvds'] == [] and d['boot_order'] == ['disk'] or exit(1)"
"$HVM" vm set cd --dvd media.iso
"$HVM" vm start cd --accel "$ACCEL"
console_mark cd
wait_console cd "HVM-GUEST READY" 60
qpid=$("$HVM" vm show cd --json | json_get /dev/stdin "d.get('qemu_pid') or ''")
[ -n "$qpid" ] || fail "vm show gives no QEMU pid"
tr '\0' '\n' < /proc/$qpid/cmdline > cmdline.txt
grep -q "^ide-cd,bus=ide.0,unit=0,drive=dvd0$" cmdline.txt || fail "a DVD outside the boot order has a bootindex"
grep -q "^vhost-user-blk-pci,.*bootindex=1$" cmdline.txt || fail "the disk is not first"
"$HVM" vm turn-off cd
wait_state cd Off 10
"$HVM" vm check cd

# Export/import: the bundle carries no media; import drops the DVD with a note.
"$HVM" vm export cd cd.hvmx > /dev/null
"$HVM" vm import cd.hvmx --mode copy --name cd2 > import.txt 2>&1 || { cat import.txt; fail "import failed"; }
grep -q "dvds" import.txt || { cat import.txt; fail "import does not note the dropped DVD"; }
"$HVM" vm show cd2 --json | json_get /dev/stdin "d['dvds'] == [] or exit(1)"

# vm.json written by hand: a DVD must be an absolute path, in slots 0-3.
cp "$HVM_STORE/vms/cd2/vm.json" good.json
$PY - "$HVM_STORE/vms/cd2/vm.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["config"]["dvds"] = [{"slot": 0, "file": "relative.iso"}, {"slot": 7, "file": "/x.iso"}]
json.dump(d, open(sys.argv[1], "w"))
PY
expect_fail 2 "$HVM" vm show cd2
last_error | grep -q "config.dvds\[0\].file" || fail "a relative DVD path is not refused: $(last_error)"
cp good.json "$HVM_STORE/vms/cd2/vm.json"
"$HVM" vm show cd2 > /dev/null
