#!/bin/sh
# Benchmarks of the VM layer (issue "VMs from a base image, checkpoint
# trees..."): hvm against qemu-img and cp on the same machine, same data, one
# run. Prints each figure as it goes and a table at the end.
#
#   HVM=build-release/hvm sh bench/vm.sh
#
#   1. checkpoint take / revert / apply (offline) on a VM with 1 GiB of data
#      (a 1 GiB disk, every byte written) vs a 100 GiB disk with every one of
#      its 51,200 2 MiB blocks allocated (64 KiB written into each): median of
#      BENCH_VM_RUNS (10) of each, ratio 100 GiB / 1 GiB. Warm cache.
#   2. 100 VMs created from one base (hvm vm create vmNN --from base.vhd):
#      total, per VM (median), disk use per VM folder (du).
#   3. hvm checkpoint delete of a middle checkpoint holding 1 GiB of changes
#      vs qemu-img rebase (safe mode) of the qcow2 chain holding the same
#      data followed by rm of the middle file (the same job: the layer is
#      gone afterwards); cold cache (sync + drop_caches before each run) and
#      warm, median of 3. Twice: (a) the checkpoint is the parent of Now's
#      small leaf, (b) a small checkpoint sits above it. Both times hvm
#      merges the small layer above up into the deleted one, which then
#      takes its place (it rebases instead when the layer above is bigger).
#   4. hvm vm export / import of a VM with 10 checkpoints (320 MiB in all)
#      vs cp -r of the VM folder / of the export folder (each followed by
#      sync; hvm makes its output durable itself). Median of 5, warm cache,
#      dirty pages written back before each run.
#
# Environment: BENCH_DIR (default /var/tmp; not tmpfs; about 5 GiB used at
# most), BENCH_VM_RUNS (10), BENCH_KEEP=1 keeps the scratch folder.
# Writes go through hvm itself (hvm vm serve + qemu-io over NBD).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?set HVM to the hvm binary, e.g. HVM=build-release/hvm sh bench/vm.sh}"
HVM=$(cd "$(dirname "$HVM")" && pwd)/$(basename "$HVM")
PY=/usr/bin/python3
for tool in qemu-img qemu-io "$PY" "$HVM"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench/vm.sh: $tool is missing" >&2; exit 2; }
done
base=${BENCH_DIR:-/var/tmp}
if [ "$(stat -f -c %T "$base")" = tmpfs ]; then
    echo "bench/vm.sh: $base is tmpfs; set BENCH_DIR to a folder on a real disk" >&2
    exit 2
fi
avail_kib=$(df -Pk "$base" | awk 'NR == 2 { print $4 }')
if [ "$avail_kib" -lt $((7 * 1024 * 1024)) ]; then
    echo "bench/vm.sh: need 7 GiB free in $base (have $((avail_kib / 1024 / 1024)) GiB)" >&2
    exit 2
fi
S=$(mktemp -d "$base/hvm-vmbench.XXXXXX")
cleanup() {
    # hvm vm serve processes started by the benchmark (their pids are listed)
    if [ -f "$S/pids" ]; then
        while read -r p; do kill "$p" 2>/dev/null || true; done <"$S/pids"
    fi
    if [ "${BENCH_KEEP:-}" = 1 ]; then
        echo "bench/vm.sh: scratch kept in $S"
    else
        chmod -R u+w "$S" 2>/dev/null || true
        rm -rf "$S"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export HVM S
"$PY" "$here/vmbench.py" vm
