#!/bin/sh
# make demo: hvm's main job end to end on a scratch store, told as a story.
#  0. preparing: missing Debian packages, the build, the test guest (quiet:
#     each writes a log that is shown only when it fails);
#  1. disks: a base VHD, differencing children, data written through
#     `hvm vhd serve`, info --chain, check, merge, convert;
#  2. VMs: three VMs from one base, a checkpoint tree with a branch, an
#     export and an import;
#  3. a live guest: started by `hvm host start` (its automatic start), a
#     checkpoint of the running VM, apply, saved by `hvm host stop` and
#     resumed, the guest's counter going on where it was each time.
# Every command is shown as it can be pasted (run in the scratch folder with
# hvm in PATH and HVM_STORE set, as the end of the demo says); the scratch
# store is kept for exploring.
# Run by `make demo` (BUILD, GUEST_DIR); with HVM=/path/to/hvm it uses that
# binary and builds nothing.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
BUILD=$(abs "${BUILD:-build}")
GUEST=$(abs "${GUEST_DIR:-build-guest}")

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "== $*"; }
say() { printf '   %s\n' "$*"; }
# q ARG: ARG as it has to be typed into a shell.
q() {
    case $1 in
    '') printf "''" ;;
    *[!A-Za-z0-9_./:=@%+,-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
    esac
}
show() { printf '$'; for a in "$@"; do printf ' '; q "$a"; done; printf '\n'; }
run() { show "$@"; "$@"; }
# prep WHAT LOG CMD...: a preparation step, quiet unless it fails.
prep() {
    what=$1 log=$2; shift 2
    printf '%s ... ' "$what"
    if "$@" >"$log" 2>&1; then
        echo "done"
    else
        echo "FAILED; the last lines of $log:"
        tail -20 "$log" | sed 's/^/   /'
        return 1
    fi
}

if [ -z "${HVM:-}" ]; then
    bold "== 0. Preparing"
    mkdir -p "$BUILD"
    prep "Installing the Debian packages hvm needs (those missing)" "$BUILD/demo-deps.log" \
        sh "$ROOT/scripts/install-deps.sh"
    build() {
        [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT"
        ninja -C "$BUILD" hvm
    }
    prep "Building hvm into $BUILD (meson, ninja)" "$BUILD/demo-build.log" build
    prep "Building the test guest into $GUEST (a Debian cloud kernel, busybox)" \
        "$BUILD/demo-guest.log" env GUEST_DIR="$GUEST" sh "$ROOT/scripts/guest/build.sh" ||
        say "(without the guest, part 3 is skipped)"
    HVM=$BUILD/hvm
fi
# The commands below say `hvm`: this one.
case $HVM in
*/*) HVM=$(cd "$(dirname "$HVM")" && pwd)/$(basename "$HVM")
     [ "$(basename "$HVM")" = hvm ] || { echo "demo: HVM must be a file named hvm" >&2; exit 2; }
     PATH=$(dirname "$HVM"):$PATH ;;
esac
command -v hvm >/dev/null || { echo "demo: no hvm binary (HVM=$HVM)" >&2; exit 2; }

dir=$(mktemp -d /var/tmp/hvm-demo.XXXXXX)
export HVM_STORE="$dir/store" PATH
finish() {
    rc=$?
    # Nothing is left running; the files stay.
    for v in $(hvm vm list --json 2>/dev/null | sed -n 's/.*"name": "\(.*\)".*/\1/p'); do
        hvm vm turn-off "$v" >/dev/null 2>&1 || true
    done
    [ $rc = 0 ] || echo "The demo stopped at an error (above). Its scratch folder is kept: $dir"
    exit $rc
}
trap finish EXIT
cd "$dir"
echo
say "Scratch folder: $dir (the commands run there)"
say "hvm is $HVM"
say "The store of VMs: HVM_STORE=$HVM_STORE"

# serve_io DISK QEMU-IO-COMMAND: qemu-io on the disk through `hvm vhd serve`.
serve_io() {
    hvm vhd serve "$1" --socket nbd.sock &
    pid=$!
    i=0; while [ ! -S nbd.sock ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    show hvm vhd serve "$1" --socket nbd.sock | sed 's/$/ \&/'
    show qemu-io -f raw -c "$2" "nbd+unix:///?socket=nbd.sock"
    qemu-io -f raw -c "$2" "nbd+unix:///?socket=nbd.sock" | sed -n 1p
    echo '$ kill $!'
    kill -TERM $pid; wait $pid || true
}
# vm_io VM QEMU-IO-COMMAND: the same on the VM's disk through `hvm vm serve`.
vm_io() {
    hvm vm serve "$1" --socket vm.sock &
    pid=$!
    i=0; while [ ! -S vm.sock ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    show hvm vm serve "$1" --socket vm.sock | sed 's/$/ \&/'
    show qemu-io -f raw -c "$2" "nbd+unix:///?socket=vm.sock"
    qemu-io -f raw -c "$2" "nbd+unix:///?socket=vm.sock" | grep -E "^(read|wrote)|Pattern" || true
    echo '$ kill $!'
    kill -TERM $pid; wait $pid || true
}

step "1. Disks: a 1 GiB dynamic base disk with data"
run hvm vhd create base.vhd --size 1G
say "A dynamic VHD of 1 GiB that holds no data yet ($(du -k base.vhd | cut -f1) KiB on disk)."
say "hvm serves a disk over NBD; QEMU's qemu-io writes 64 MiB through it:"
serve_io base.vhd "write -P 0xba 0 64M"

step "Three differencing children of the base, each with its own data"
for d in web db cache; do run hvm vhd diff base.vhd "$d.vhd"; done
say "Each child holds only what is written to it; the base became read-only."
serve_io web.vhd "write -P 0x11 0 8M"
serve_io db.vhd "write -P 0x22 4M 8M"
run hvm vhd diff web.vhd web-2.vhd
serve_io web-2.vhd "write -P 0x44 16M 4M"
say "The chain web-2 <- web <- base, layer by layer:"
run hvm vhd info --chain web-2.vhd
run hvm vhd check web-2.vhd

step "Writing to a protected parent is refused"
run hvm vhd serve base.vhd --socket x.sock || true
say "The base has children: changing it would corrupt them, so hvm refuses."

step "Merging web-2 into web, flattening db's chain into one disk"
run hvm vhd merge web-2.vhd --force
say "web-2's data is now in web (web gets a new identity: stale children would fail clearly)."
run hvm vhd convert db.vhd db-flat.vhd
run hvm vhd convert db.vhd db.raw --type raw
say "QEMU's own reader agrees, byte for byte, with the raw flattening:"
run qemu-img compare --image-opts "driver=raw,file.filename=db.raw" \
    "driver=vpc,force_size_calc=current_size,file.filename=db-flat.vhd"
rm -f db.raw

step "2. VMs: three VMs from one base image"
run hvm vhd create golden.vhd --size 256M
serve_io golden.vhd "write -P 0x60 0 16M"
for v in alpha beta gamma; do run hvm vm create "$v" --from golden.vhd --cpus 1 --memory 256M --nic lan; done
say "Each VM's disk is a differencing child of golden.vhd, now a registered base:"
run hvm vm list
run hvm base list

step "A checkpoint tree with a branch"
run hvm checkpoint take alpha "clean install"
vm_io alpha "write -P 0x01 0 1M"
run hvm checkpoint take alpha "app v1"
vm_io alpha "write -P 0x02 0 1M"
say "Back to the clean install (saving the current state as a checkpoint first):"
run hvm checkpoint apply alpha "clean install" --take-first
vm_io alpha "read -P 0x60 0 1M"
say "The disk reads as the base again. A new branch from there:"
vm_io alpha "write -P 0x03 0 1M"
run hvm checkpoint take alpha "experiment"
run hvm checkpoint list alpha

step "Deleting a middle checkpoint: its data folds into its child"
run hvm checkpoint delete alpha "app v1"
run hvm checkpoint list alpha
run hvm vm check alpha

step "Exporting alpha with its whole tree, importing it as a copy"
run hvm vm export alpha alpha-export
run ls alpha-export alpha-export/disks
run hvm vm import alpha-export --mode copy --name alpha-copy
say "The copy has its own id and MAC addresses, and the same checkpoints:"
run hvm checkpoint list alpha-copy
run hvm vm check alpha-copy

# Part 3: a live guest (a function, called below).
live() {
    run hvm vm set beta --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
        --cmdline "console=ttyS0 hvm.mode=counter hvm.every=1"
    log="$HVM_STORE/vms/beta/run/console.log"
    waitfor() { i=0; while ! tr -d '\r' <"$log" 2>/dev/null | grep -aEq "$1"; do i=$((i+1)); [ $i -lt 900 ] || { echo "timeout waiting for $1"; exit 1; }; sleep 0.1; done; }
    count() { tr -d '\r' <"$log" | grep -a "^HVM-GUEST COUNT" | tail -1 | awk '{print $3}'; }
    lines_now() { tr -d '\r' <"$log" 2>/dev/null | wc -l; }
    # newest_first N: the first count of the newest run (after the worker's
    # "[hvm] ..." line) printed after line N of the console log.
    newest_first() { tr -d '\r' <"$log" | tail -n +$(($1 + 1)) | awk '/^\[hvm\] /{s=1; n=""} /^HVM-GUEST COUNT/{if(s && n=="")n=$3} END{print n}'; }
    wait_newest() { i=0; while [ -z "$(newest_first "$1")" ]; do i=$((i+1)); [ $i -lt 600 ] || { echo "timeout waiting for the guest"; exit 1; }; sleep 0.1; done; }

    step "Automatic start: what the host does when it boots"
    run hvm vm set beta --autostart on --autostart-delay 2 --autostop save
    say "hvm.service runs 'hvm host start' at boot: every VM with autostart on, after its delay."
    run hvm host start
    waitfor "HVM-GUEST COUNT 10$"
    run hvm vm list
    at=$(count)
    say "The guest is running; its counter is at $at."

    step "A checkpoint of the running VM, memory included"
    run hvm checkpoint take beta "running at $at"
    sleep 3
    say "The guest went on counting: $(count)."
    run hvm checkpoint list beta
    mark=$(lines_now)
    run hvm checkpoint apply beta "running at $at"
    wait_newest "$mark"
    say "After the apply the guest runs from the checkpoint again: it counted on from $(newest_first "$mark") (taken at about $at)."

    step "Automatic stop: what the host does when it shuts down"
    sleep 2
    run hvm host stop
    saved=$(count)
    say "hvm.service runs 'hvm host stop' at shutdown: beta's stop action is save, so its memory"
    say "is in its folder (the counter stopped at $saved) and it is Saved:"
    run hvm vm list
    mark=$(lines_now)
    run hvm host start
    wait_newest "$mark"
    say "At the next boot it resumed, no reboot: the counter went on at $(newest_first "$mark")."
    run hvm vm stop beta
    say "This time the guest shut down through ACPI, as when told by its power button."
    run hvm vm list
}

step "3. A live guest"
if [ ! -f "$GUEST/vmlinuz" ] || ! command -v qemu-system-x86_64 >/dev/null; then
    say "(skipped: no test guest; 'make guest' builds it)"
else
    say "beta boots the test guest's kernel directly; the guest prints a counter on its console."
    live
fi

step "Done"
say "The scratch store is kept. To explore it:"
printf '     cd %s; export PATH=%s:$PATH HVM_STORE=%s\n' "$(q "$dir")" "$(q "$(dirname "$HVM")")" "$(q "$HVM_STORE")"
say "  hvm vm list"
say "  hvm checkpoint list alpha"
say "  hvm vm start beta; hvm vm console beta      # Ctrl-] detaches"
say "or in one line:"
printf '     HVM_STORE=%s %s vm list\n' "$(q "$HVM_STORE")" "$(q "$HVM")"
say "To remove it:"
printf '     rm -rf %s\n' "$(q "$dir")"
