#!/bin/sh
# Installing from an ISO, under BIOS and under UEFI: a bootable ISO made in
# the test (grub-mkrescue: GRUB for BIOS and for UEFI, the test guest's kernel
# and initramfs, a marker file) boots a VM with a blank disk by the boot
# order dvd,disk; the guest, up from the DVD, reads the marker from it and
# "installs" (copies the hybrid ISO onto the disk, which makes the disk
# bootable); Ctrl-Alt-Del (vm send-keys) powers it off; with the DVD ejected
# and --boot disk, the next start boots from the disk, and no DVD is there
# (under UEFI only with HVM_TEST_LONG=1: make check's time). Under UEFI the
# DVD is a SCSI CD-ROM on virtio-scsi.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
have grub-mkrescue || skip "grub-mkrescue is not installed (grub-common)"
have xorriso || skip "xorriso is not installed"
have mformat || skip "mformat is not installed (mtools)"
[ -d /usr/lib/grub/i386-pc ] || skip "grub-pc-bin is not installed"
[ -d /usr/lib/grub/x86_64-efi ] || skip "grub-efi-amd64-bin is not installed"
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || skip "Debian's ovmf package is not installed"
deb=$(ls "$GUEST"/cache/*/*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || skip "no cached kernel package in $GUEST/cache (for the CD-ROM modules)"
zcat "$GUEST/initrd.img" | grep -aq "hvm.modules=" || skip "the test guest in $GUEST predates hvm.modules (run 'make guest')"

# The ISO's initramfs: the test guest's, and a second archive with the
# CD-ROM stack (IDE for BIOS, virtio-scsi for UEFI), loaded by hvm.modules.
dpkg -x "$deb" pkg
mkdir -p ov/lib/modules iso/boot/grub
MODS="scsi_common scsi_mod cdrom sr_mod libata ata_piix virtio_scsi isofs"
for m in $MODS; do
    f=$(find pkg/lib/modules -name "$m.ko" | head -n 1)
    [ -n "$f" ] || skip "no $m.ko in $deb"
    cp "$f" ov/lib/modules/
done
(cd ov && find . | cpio -o -H newc 2>/dev/null | gzip) > extra.img
cp "$GUEST/vmlinuz" iso/vmlinuz
cat "$GUEST/initrd.img" extra.img > iso/initrd.img
echo "ISO-MARKER-93" > iso/marker.txt
cat > iso/boot/grub/grub.cfg <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry "hvm test guest" {
    echo "HVM-ISO GRUB boots the guest"
    linux /vmlinuz console=ttyS0 hvm.mode=shell hvm.modules=$(echo $MODS | tr ' ' ,)
    initrd /initrd.img
}
EOF
grub-mkrescue -o "$T/install.iso" iso > mkrescue.log 2>&1 || { cat mkrescue.log; fail "grub-mkrescue failed"; }

# type VM COMMANDS: types a line into the guest's shell (serial console);
# what it prints is then in the console log (wait_console).
type_line() {
    (sleep 1; printf '%s\r' "$2"; sleep 1; printf '\035') | "$HVM" vm console "$1" > /dev/null
}

for fw in bios uefi; do
    vm=i$fw
    "$HVM" vm create $vm --memory 256M --firmware $fw --new-disk 64M > /dev/null
    "$HVM" vm set $vm --dvd install.iso --boot dvd,disk
    # From the DVD: GRUB (BIOS or EFI) starts the kernel of the ISO.
    "$HVM" vm start $vm --accel "$ACCEL" > /dev/null
    console_mark $vm
    wait_console $vm "HVM-GUEST READY" 180
    console_since $vm | grep -aq "HVM-ISO GRUB boots the guest" || fail "$fw: the guest did not come from the ISO's GRUB"
    if [ $fw = uefi ]; then
        # (OVMF leaves the PIIX3's IDE channels off: the DVD is on virtio-scsi)
        qpid=$("$HVM" vm show $vm --json | json_get /dev/stdin "d.get('qemu_pid') or ''")
        tr '\0' '\n' < /proc/$qpid/cmdline > cmdline.txt
        grep -q "^virtio-scsi-pci,id=scsi0$" cmdline.txt || { cat cmdline.txt; fail "UEFI: no virtio-scsi controller"; }
        grep -q "^scsi-cd,bus=scsi0.0,channel=0,scsi-id=0,lun=0,drive=dvd0,bootindex=1$" cmdline.txt ||
            fail "UEFI: the DVD is not a SCSI CD-ROM first in the boot order"
        grep -q "^ide-cd" cmdline.txt && fail "UEFI: an IDE DVD"
    fi
    # The installer reads the DVD and writes the disk.
    type_line $vm "mkdir -p /mnt; mount -t iso9660 -o ro /dev/sr0 /mnt && echo \"CD=\$(cat /mnt/marker.txt)\"; umount /mnt; dd if=/dev/sr0 of=/dev/vda bs=1M conv=fsync 2>/dev/null && echo INSTALL-\$((1+1))-DONE"
    wait_console $vm "CD=ISO-MARKER-93" 60
    wait_console $vm "INSTALL-2-DONE" 60
    # Ctrl-Alt-Del on the keyboard: the test guest's init powers off.
    "$HVM" vm send-keys $vm ctrl-alt-delete > /dev/null
    wait_console $vm "HVM-GUEST POWEROFF ctrl-alt-delete" 30
    wait_state $vm Off 30
    # (a UEFI boot from the disk takes as long again: HVM_TEST_LONG=1)
    [ $fw = bios ] || [ -n "${HVM_TEST_LONG:-}" ] || continue

    # From the disk, the DVD ejected.
    "$HVM" vm set $vm --eject all --boot disk
    "$HVM" vm start $vm --accel "$ACCEL" > /dev/null
    console_mark $vm
    wait_console $vm "HVM-GUEST READY" 180
    console_since $vm | grep -aq "HVM-ISO GRUB boots the guest" || fail "$fw: the disk's GRUB did not boot the guest"
    type_line $vm "echo \"BLOCK=\$(ls /sys/block | tr '\\n' ' ')\""
    wait_console $vm "BLOCK=" 30
    console_since $vm | grep -aq "^BLOCK=vda $" || fail "$fw: the guest from the disk sees $(console_since $vm | grep -a '^BLOCK=' | tail -1)"
    "$HVM" vm turn-off $vm
    wait_state $vm Off 20
done
