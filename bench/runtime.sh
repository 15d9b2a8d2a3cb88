#!/bin/sh
# Benchmarks of running VMs (issue "Running VMs"): hvm's runtime (QEMU with
# every disk served by hvm's worker) against plain QEMU with the
# same command line on local files. TCG here. Prints each figure as it goes
# and a table at the end.
#
#   HVM=build-release/hvm sh bench/runtime.sh
#
#   1. guest disk throughput, measured inside the test guest (shell mode,
#      commands typed on the serial console) on /dev/vda: busybox dd for
#      sequential 1 MiB reads of the whole 1 GiB disk, twice (iflag=direct),
#      and 8192 4 KiB O_DIRECT reads from one dd (queue depth 1: the
#      per-request cost); the guest's randio (scripts/guest/randio.c) for
#      BENCH_RAND_IOS (2000) random 4 KiB O_DIRECT reads, and as many
#      writes + one fdatasync, at queue depth 1 over the whole disk (one
#      process: a dd per request would measure starting dd under TCG);
#      dd for 64 MiB of sequential 1 MiB writes + fsync into space nobody
#      wrote before (in the second half of the disk: new blocks of hvm's
#      layer and of the qcow2 top layer; a hole punched into the raw files
#      just before: every peer allocates), and the same 64 MiB again (every
#      peer overwrites). Guest time from the "now" of /proc/timer_list (ns).
#      hvm: a 2-layer VHD chain (a checkpoint, then a quarter of the first
#      half of the disk rewritten), served by hvm's worker (disk_io
#      vhost-user, the default; BENCH_DISK_IO=nbd for the other way); peers
#      with the same data and the same QEMU command line: one raw file, a
#      2-deep qcow2 chain, and the raw file through qemu-nbd (the cost of
#      NBD itself). Host page cache warm. The four guests run at once; each
#      figure is taken in BENCH_RT_ROUNDS (5) rounds, every guest once per
#      round in alternating order, and hvm's ratio to each peer is the
#      median of the per-round ratios (the machine's speed drifts within
#      minutes); each round writes to a region of its own.
#   2. online checkpoint: hvm checkpoint take 5 times on a running 256 MiB
#      guest in counter mode; the pause hvm prints (median, max).
#   3. hvm vm start -> HVM-GUEST READY in console.log vs plain QEMU (same
#      kernel, initrd, memory, raw disk, same chardev) -> READY; median of 5,
#      alternating which of the two goes first.
#
# Environment: GUEST_DIR (default build-guest/ beside bench/), BENCH_DIR
# (/var/tmp), BENCH_KEEP=1, BENCH_RAND_IOS, BENCH_DISK_MIB (1024).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?set HVM to the hvm binary, e.g. HVM=build-release/hvm sh bench/runtime.sh}"
HVM=$(cd "$(dirname "$HVM")" && pwd)/$(basename "$HVM")
PY=/usr/bin/python3
GUEST_DIR=${GUEST_DIR:-$here/../build-guest}
GUEST_DIR=$(cd "$GUEST_DIR" 2>/dev/null && pwd) || { echo "bench/runtime.sh: no guest; make guest" >&2; exit 2; }
for f in vmlinuz initrd.img; do
    [ -f "$GUEST_DIR/$f" ] || { echo "bench/runtime.sh: $GUEST_DIR/$f is missing (make guest)" >&2; exit 2; }
done
for tool in qemu-img qemu-io qemu-system-x86_64 "$PY" "$HVM"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench/runtime.sh: $tool is missing" >&2; exit 2; }
done
base=${BENCH_DIR:-/var/tmp}
if [ "$(stat -f -c %T "$base")" = tmpfs ]; then
    echo "bench/runtime.sh: $base is tmpfs; set BENCH_DIR to a folder on a real disk" >&2
    exit 2
fi
avail_kib=$(df -Pk "$base" | awk 'NR == 2 { print $4 }')
if [ "$avail_kib" -lt $((6 * 1024 * 1024)) ]; then
    echo "bench/runtime.sh: need 6 GiB free in $base" >&2
    exit 2
fi
S=$(mktemp -d "$base/hvm-rtbench.XXXXXX")
cleanup() {
    # hvm workers stop with their VMs; anything the benchmark itself started
    # (hvm vm serve, plain QEMU) is listed by pid
    for st in "$S"/r1 "$S"/r2 "$S"/r3; do
        for vm in "$st"/vms/*; do
            [ -d "$vm/run" ] && HVM_STORE=$st "$HVM" vm turn-off "$(basename "$vm")" >/dev/null 2>&1 || true
        done
    done
    if [ -f "$S/pids" ]; then
        while read -r p; do kill "$p" 2>/dev/null || true; done <"$S/pids"
    fi
    if [ "${BENCH_KEEP:-}" = 1 ]; then
        echo "bench/runtime.sh: scratch kept in $S"
    else
        chmod -R u+w "$S" 2>/dev/null || true
        rm -rf "$S"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export HVM S GUEST_DIR
"$PY" "$here/vmbench.py" runtime
