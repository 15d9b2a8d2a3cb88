#!/bin/sh
# make demo: hvm's main job end to end on a scratch store.
#  1. disks: a base VHD, differencing children, data written through
#     `hvm vhd serve`, info --chain, check, merge, convert;
#  2. VMs: three VMs from one base, a checkpoint tree with a branch, an
#     export and an import;
#  3. a live guest: one VM started, a checkpoint of the running VM, changes,
#     apply, and the guest's counter resuming where it was.
set -eu
HVM=${HVM:-hvm}
GUEST=${GUEST_DIR:-$(pwd)/build-guest}
dir=$(mktemp -d /var/tmp/hvm-demo.XXXXXX)
export HVM_STORE="$dir/store"
cleanup() {
    for v in $("$HVM" vm list --json 2>/dev/null | sed -n 's/.*"name": "\(.*\)".*/\1/p'); do
        "$HVM" vm turn-off "$v" >/dev/null 2>&1 || true
    done
    chmod -R u+w "$dir" 2>/dev/null; rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
serve_io() { # DISK QEMU-IO-COMMAND: through the NBD server
    sock="$dir/nbd.sock"
    "$HVM" vhd serve "$1" --socket "$sock" &
    pid=$!
    i=0; while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    printf '$ qemu-io -f raw -c "%s" nbd+unix:///?socket=nbd.sock   # (hvm vhd serve %s)\n' "$2" "$1"
    qemu-io -f raw -c "$2" "nbd+unix:///?socket=$sock" | sed -n 1p
    kill -TERM $pid; wait $pid || true
}
vm_io() { # VM QEMU-IO-COMMAND: through hvm vm serve
    sock="$dir/vm.sock"
    "$HVM" vm serve "$1" --socket "$sock" &
    pid=$!
    i=0; while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    printf '$ qemu-io -f raw -c "%s" ...   # (hvm vm serve %s)\n' "$2" "$1"
    qemu-io -f raw -c "$2" "nbd+unix:///?socket=$sock" | grep -E "^(read|wrote)|Pattern" || true
    kill -TERM $pid; wait $pid || true
}

step "1. Disks: a 1 GiB dynamic base disk with data"
run "$HVM" vhd create base.vhd --size 1G
serve_io base.vhd "write -P 0xba 0 64M"

step "Three differencing children (the base becomes read-only), each with its own data"
for d in web db cache; do run "$HVM" vhd diff base.vhd "$d.vhd"; done
serve_io web.vhd "write -P 0x11 0 8M"
serve_io db.vhd "write -P 0x22 4M 8M"
run "$HVM" vhd diff web.vhd web-2.vhd
serve_io web-2.vhd "write -P 0x44 16M 4M"
run "$HVM" vhd info --chain web-2.vhd
run "$HVM" vhd check web-2.vhd
step "Writing a protected parent is refused"
run "$HVM" vhd serve base.vhd --socket "$dir/x.sock" || true
step "merge web-2 into web, flatten db's chain with convert"
run "$HVM" vhd merge web-2.vhd --force
run "$HVM" vhd convert db.vhd db-flat.vhd
run "$HVM" vhd convert db.vhd db.raw --type raw
printf '$ qemu-img compare db.raw db-flat.vhd\n'
qemu-img compare --image-opts "driver=raw,file.filename=db.raw" \
    "driver=vpc,force_size_calc=current_size,file.filename=db-flat.vhd"
rm -f db.raw

step "2. VMs: three VMs from one base image"
run "$HVM" vhd create golden.vhd --size 256M
serve_io golden.vhd "write -P 0x60 0 16M"
for v in alpha beta gamma; do run "$HVM" vm create "$v" --from golden.vhd --cpus 1 --memory 256M --nic lan; done
run "$HVM" vm list
run "$HVM" base list
step "A checkpoint tree with a branch"
run "$HVM" checkpoint take alpha "clean install"
vm_io alpha "write -P 0x01 0 1M"
run "$HVM" checkpoint take alpha "app v1"
vm_io alpha "write -P 0x02 0 1M"
run "$HVM" checkpoint apply alpha "clean install" --take-first
vm_io alpha "read -P 0x60 0 1M"
vm_io alpha "write -P 0x03 0 1M"
run "$HVM" checkpoint take alpha "experiment"
run "$HVM" checkpoint list alpha
step "Delete a middle checkpoint: its data folds into its child"
run "$HVM" checkpoint delete alpha "app v1"
run "$HVM" checkpoint list alpha
run "$HVM" vm check alpha
step "Export alpha with its whole tree, import it as a copy"
run "$HVM" vm export alpha "$dir/alpha-export"
ls "$dir/alpha-export" "$dir/alpha-export/disks"
run "$HVM" vm import "$dir/alpha-export" --mode copy --name alpha-copy
run "$HVM" checkpoint list alpha-copy
run "$HVM" vm check alpha-copy

step "3. A live guest"
if [ ! -f "$GUEST/vmlinuz" ] || ! command -v qemu-system-x86_64 >/dev/null; then
    echo "(skipped: no test guest; run 'make guest')"
    exit 0
fi
run "$HVM" vm set beta --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
    --cmdline "console=ttyS0 hvm.mode=counter hvm.every=1"
run "$HVM" vm start beta
log="$HVM_STORE/vms/beta/run/console.log"
waitfor() { i=0; while ! tr -d '\r' <"$log" | grep -aEq "$1"; do i=$((i+1)); [ $i -lt 900 ] || { echo "timeout waiting for $1"; exit 1; }; sleep 0.1; done; }
count() { tr -d '\r' <"$log" | grep -a "^HVM-GUEST COUNT" | tail -1 | awk '{print $3}'; }
waitfor "HVM-GUEST COUNT 10$"
run "$HVM" vm list
echo "guest counter: $(count)"
at=$(count)
run "$HVM" checkpoint take beta "running at $at"
sleep 3
echo "guest counter kept going: $(count)"
run "$HVM" checkpoint list beta
run "$HVM" checkpoint apply beta "running at $at"
sleep 2
echo "after apply the guest resumed from about $at: the last run printed"
tr -d '\r' <"$log" | awk '/^\[hvm\] /{n=0} /^HVM-GUEST COUNT/{if(n<3)print "   " $0; n++}' | tail -3
run "$HVM" vm stop beta
run "$HVM" vm list
echo
echo "Demo done: the scratch folder $dir is removed."
