#!/bin/sh
# The guest sees exactly the disk the host sees, through either way a VM can
# reach its disks (--disk-io vhost-user, the default, and nbd): a base of
# mixed data, a VM on it; in the guest, writes into new blocks, rewrites of
# blocks the layer owns, odd sectors, a write across a block boundary and a
# discard, of data the host knows; the guest then reads back exactly what
# the host expects, and so do libvhdi (an independent reader of the VM's
# chain) and hvm after turn-off. The base does not change.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
have vhdiinfo || $PY -c "import pyvhdi" 2>/dev/null || skip "libvhdi is not installed"
CTL="$TESTS/../scripts/guest/guestctl.py"

mkraw base.raw 32 76
"$HVM" vhd convert base.raw base.vhd --type dynamic
base_sum=$(sha base.vhd)

# What the guest's commands below leave on its disk, from the base's bytes.
$PY - <<'PYEOF'
MiB = 1 << 20
disk = bytearray(open("base.raw", "rb").read())
a = bytes(disk[2 * MiB:5 * MiB])
def put(at, data):
    disk[at:at + len(data)] = data
put(20 * MiB, a)
put(16 * MiB, a)
put(400 * 4096, a[:300 * 4096])
put(12345 * 512, a[3 * 512:10 * 512])
put(410 * 4096, a[100 * 4096:120 * 4096])
disk[16 * MiB:19 * MiB] = bytes(3 * MiB)  # discarded: what the layer held reads as zeros
open("expect.raw", "wb").write(disk)
PYEOF

# type VM COMMAND: one line on the guest's shell.
type_cmd() { $PY "$CTL" type "$HVM_STORE/vms/$1/run/console.sock" "$2" >/dev/null; }

for io in vhost-user nbd; do
    vm=g-$io
    guest_vm "$vm" shell --from base.vhd
    "$HVM" vm set "$vm" --disk-io "$io"
    "$HVM" vm show "$vm" | grep -q "^Disk I/O: *$io$" || fail "vm show does not say $io"
    "$HVM" vm start "$vm" --accel "$ACCEL"
    console_mark "$vm"
    wait_console "$vm" "HVM-GUEST READY" 60
    console_mark "$vm"
    # Data the host knows: 3 MiB of the base, copied into RAM first. Then
    # writes into new blocks, across the 2 MiB block boundary, odd sectors,
    # a rewrite of sectors the layer owns by then, and a discard of two
    # blocks written up to 1 MiB before their end (hvm punches the data out
    # of the layer, which keeps owning what it held: that reads as zeros,
    # the rest still from the parent).
    w="of=/dev/vda oflag=direct conv=notrunc 2>/dev/null"
    type_cmd "$vm" "dd if=/dev/vda of=/tmp/a bs=1M skip=2 count=3 iflag=direct 2>/dev/null; dd if=/tmp/a bs=1M seek=20 $w; dd if=/tmp/a bs=1M seek=16 $w; dd if=/tmp/a bs=4k count=300 seek=400 $w; dd if=/tmp/a bs=512 skip=3 seek=12345 count=7 $w; dd if=/tmp/a bs=4k skip=100 seek=410 count=20 $w; blkdiscard -o 16777216 -l 4194304 /dev/vda; sync; echo DONE-WRITES"
    wait_console "$vm" "^DONE-WRITES" 120
    type_cmd "$vm" 'echo SUM=$(dd if=/dev/vda bs=1M iflag=direct 2>/dev/null | md5sum)'
    wait_console "$vm" "^SUM=[0-9a-f]{32}" 120
    guest_sum=$(console_since "$vm" | sed -n 's/^SUM=\([0-9a-f]*\).*/\1/p' | tail -1)
    "$HVM" vm turn-off "$vm"
    wait_state "$vm" Off 10
    "$HVM" vm check "$vm"
    leaf="$HVM_STORE/vms/$vm/$(json_get "$HVM_STORE/vms/$vm/vm.json" "d['config']['drives'][0]['file']")"
    [ "$(md5sum < expect.raw | cut -d' ' -f1)" = "$guest_sum" ] ||
        fail "$io: the guest read $guest_sum, expected $(md5sum < expect.raw)"
    vhdi_read "$leaf" vhdi.raw base.vhd
    vm_flat "$vm" flat.raw
    cmp flat.raw vhdi.raw || fail "$io: hvm and libvhdi read the chain differently"
    cmp vhdi.raw expect.raw || fail "$io: the chain does not hold what the guest wrote"
    rm -f vhdi.raw flat.raw
done
[ "$(sha base.vhd)" = "$base_sum" ] || fail "the base changed"
echo ok
