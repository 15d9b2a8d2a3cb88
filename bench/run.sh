#!/bin/sh
# hvm benchmarks against qemu-img, qemu-nbd and cat, on one machine with the
# same data for every tool. Prints each figure with its ratio
# (hvm time / peer time: below 1 means hvm is faster) and a summary table.
#
#   HVM=build-release/hvm sh bench/run.sh        (make bench does this)
#
# Environment:
#   BENCH_CACHE=both|warm|cold  both (default): the flatten, NBD sequential
#                          read, merge and export rows run cold (sync and
#                          drop_caches before each run: needs root; without
#                          it the bench says so and runs them warm only) and
#                          warm (inputs read into the page cache first);
#                          other rows run warm. Dirty pages are always
#                          written back before a timed run, and every tool
#                          makes its output durable (hvm always fsyncs;
#                          qemu-img gets -t writeback; cat and cp are
#                          followed by sync).
#   BENCH_RUNS=5           rounds per figure: hvm and its peers alternate
#                          in each round, and the ratio reported is the
#                          median of the per-round ratios
#   BENCH_DIR=/var/tmp     where the scratch folder goes (not tmpfs)
#   BENCH_KEEP=1           keep the scratch folder
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?set HVM to the hvm binary (make bench does)}"
HVM=$(cd "$(dirname "$HVM")" && pwd)/$(basename "$HVM")
PY=/usr/bin/python3
RUNS=${BENCH_RUNS:-5}
CACHE=${BENCH_CACHE:-both}
W="$PY $here/vhdwrite.py"

for tool in qemu-img qemu-io qemu-nbd "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is missing (make deps)" >&2; exit 2; }
done
case "$CACHE" in
both) CACHES="cold warm" ;;
warm | cold) CACHES=$CACHE ;;
*) echo "bench: BENCH_CACHE must be both, warm or cold" >&2; exit 2 ;;
esac
cache_note=""
if [ "$CACHES" != warm ] && ! [ -w /proc/sys/vm/drop_caches ]; then
    [ "$CACHE" = cold ] && { echo "bench: BENCH_CACHE=cold needs root (to drop caches)" >&2; exit 2; }
    CACHES=warm
    cache_note="cold rows skipped: cannot drop caches (not root); warm only"
fi
# Rows without a cache loop run warm.
export BENCH_CACHE=warm

base=${BENCH_DIR:-/var/tmp}
if [ "$(stat -f -c %T "$base")" = tmpfs ]; then
    echo "bench: $base is tmpfs; set BENCH_DIR to a folder on a real disk" >&2
    exit 2
fi
avail_kib=$(df -Pk "$base" | awk 'NR == 2 { print $4 }')
if [ "$avail_kib" -lt $((14 * 1024 * 1024)) ]; then
    echo "bench: need 14 GiB free in $base (have $((avail_kib / 1024 / 1024)) GiB)" >&2
    exit 2
fi
S=$(mktemp -d "$base/hvm-bench.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    if [ "${BENCH_KEEP:-}" = 1 ]; then
        echo "bench: scratch kept in $S"
    else
        chmod -R u+w "$S" 2>/dev/null || true
        rm -rf "$S"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
R=$S/results.tsv
N=$S/notes.tsv
: >"$R"
: >"$N"
started=$(date +%s)

# measure ITEM NAME [measure.py options] -- CMD...
measure() {
    item=$1 name=$2
    shift 2
    "$PY" "$here/measure.py" --out "$R" --item "$item" --name "$name" "$@"
}
note() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$N"; }
say() { printf '%s\n' "$*"; }
kib_allocated() { du -k "$1" | cut -f1; }

G=$((1 << 30))
# Offsets for the 4 KiB request benchmarks: qemu-img bench has no random
# pattern, only a fixed step that wraps at the end of the disk. An odd
# multiple of 4 KiB (104729 is prime) visits distinct, scattered 4 KiB slots;
# hvm vhd bench --step gives exactly the same offsets.
STEP=$((104729 * 4096))

say "hvm benchmarks: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r)"
say "hvm: $HVM ($("$HVM" --version)); $(qemu-img --version | head -1)"
say "scratch: $S ($(stat -f -c %T "$S")); storage rows: $CACHES cache; rounds per figure: $RUNS (median of per-round ratios)"
[ -z "$cache_note" ] || say "NOTE: $cache_note"
load=$(cut -d' ' -f1 /proc/loadavg)
say "load average: $load"
if [ "$(echo "$load $(nproc)" | awk '{ print ($1 > $2 / 2) }')" = 1 ]; then
    say "WARNING: the machine is busy (load $load on $(nproc) CPUs): figures will be noisy and slow"
fi
say ""

# ---------------------------------------------------------------------------
say "== preparing data: a 4-deep chain of a 1 GiB disk, each layer 25% random 64 KiB writes"
cd "$S"
for l in 0 1 2 3; do
    $W plan 1 $l $G 65536 0.25 >"plan$l"
done
"$HVM" vhd create l0.vhd --size 1G
$W vhd l0.vhd plan0
for l in 1 2 3; do
    "$HVM" vhd diff "l$((l - 1)).vhd" "l$l.vhd"
    $W vhd "l$l.vhd" "plan$l"
done
qemu-img create -q -f qcow2 l0.qcow2 1G
$W qemu-io l0.qcow2 qcow2 plan0
for l in 1 2 3; do
    qemu-img create -q -f qcow2 -b "l$((l - 1)).qcow2" -F qcow2 "l$l.qcow2"
    $W qemu-io "l$l.qcow2" qcow2 "plan$l"
done
truncate -s 1G ref3.raw
for l in 0 1 2; do $W raw ref3.raw "plan$l"; done
cp --sparse=always ref3.raw ref4.raw
$W raw ref4.raw plan3
# qemu's vpc driver cannot read differencing disks: for reads its peer is a
# single dynamic VHD holding what the 3-deep chain reads.
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on ref3.raw flat3.vpc
"$HVM" vhd check l3.vhd >/dev/null
say "  VHD chain: $(du -ck l?.vhd | tail -1 | cut -f1) KiB; qcow2 chain: $(du -ck l?.qcow2 | tail -1 | cut -f1) KiB; raw: $(kib_allocated ref4.raw) KiB allocated"
say ""

# ---------------------------------------------------------------------------
say "== 1. flatten the 4-deep chain to raw (output made durable by every tool)"
# Interleaved rounds (hvm, qemu-img, cat, hvm, ...): load that drifts during
# the run hits every tool alike. The median of the rounds is reported.
for c in $CACHES; do
round=0
while [ $round -lt "$RUNS" ]; do
    round=$((round + 1))
    measure 1@$c "hvm vhd convert --type raw" --runs 1 --cache $c --prepare "rm -f $S/out.raw" \
        --warm l0.vhd --warm l1.vhd --warm l2.vhd --warm l3.vhd -- \
        "$HVM" vhd convert --type raw l3.vhd out.raw
    cmp -s out.raw ref4.raw || { echo "bench: hvm convert output differs from the reference" >&2; exit 1; }
    note 1 hvm_out_kib "$(kib_allocated out.raw)"
    measure 1@$c "qemu-img convert -O raw -t writeback" --runs 1 --cache $c --prepare "rm -f $S/out.raw" \
        --warm l0.qcow2 --warm l1.qcow2 --warm l2.qcow2 --warm l3.qcow2 -- \
        qemu-img convert -t writeback -f qcow2 -O raw l3.qcow2 out.raw
    cmp -s out.raw ref4.raw || { echo "bench: qemu-img output differs from the reference" >&2; exit 1; }
    note 1 qemu_out_kib "$(kib_allocated out.raw)"
    measure 1@$c "cat raw > out; sync out" --runs 1 --cache $c --prepare "rm -f $S/out.raw" \
        --warm ref4.raw -- sh -c "cat ref4.raw > out.raw && sync out.raw"
done
done
rm -f out.raw
say ""

# ---------------------------------------------------------------------------
say "== 2a. 4 KiB writes into a fresh 4 GiB dynamic disk (20000 requests, one at a time, then flush)"
say "   offsets: step $STEP wrapping (qemu-img bench -S); qemu-img bench -d 1 -t writeback --pattern=0xa5"
C=20000
measure 2w "hvm vhd bench --write (VHD dynamic)" --runs "$RUNS" --stdout bench.out \
    --prepare "rm -f $S/w.vhd && $HVM vhd create $S/w.vhd --size 4G" -- \
    "$HVM" vhd bench w.vhd --write --count $C --step $STEP --size 4K
# qemu's vpc driver takes ~0.5 ms per write here: one run is plenty.
measure 2w "qemu-img bench -w (vpc dynamic, 1 run)" --runs 1 \
    --prepare "rm -f $S/w.vpc && qemu-img create -q -f vpc -o subformat=dynamic,force_size=on $S/w.vpc 4G" -- \
    qemu-img bench -q -f vpc -w -t writeback -d 1 -c $C -s 4K -S $STEP --pattern=165 w.vpc
measure 2w "qemu-img bench -w (qcow2)" --runs "$RUNS" \
    --prepare "rm -f $S/w.qcow2 && qemu-img create -q -f qcow2 $S/w.qcow2 4G" -- \
    qemu-img bench -q -f qcow2 -w -t writeback -d 1 -c $C -s 4K -S $STEP --pattern=165 w.qcow2
measure 2w "(info) hvm vhd bench --write --pattern rand" --runs "$RUNS" \
    --prepare "rm -f $S/w.vhd && $HVM vhd create $S/w.vhd --size 4G" -- \
    "$HVM" vhd bench w.vhd --write --count $C --pattern rand --size 4K
rm -f w.vhd w.vpc w.qcow2
say ""

say "== 2b. 4 KiB reads from a 3-deep chain (100000 requests, one at a time)"
C=100000
measure 2r "hvm vhd bench (VHD 3-deep chain)" --runs "$RUNS" \
    --warm l0.vhd --warm l1.vhd --warm l2.vhd -- \
    "$HVM" vhd bench l2.vhd --count $C --step $STEP --size 4K
measure 2r "qemu-img bench (vpc, 1 layer: no chains)" --runs "$RUNS" --warm flat3.vpc -- \
    qemu-img bench -q -f vpc -t writeback -d 1 -c $C -s 4K -S $STEP flat3.vpc
measure 2r "qemu-img bench (qcow2 3-deep chain)" --runs "$RUNS" \
    --warm l0.qcow2 --warm l1.qcow2 --warm l2.qcow2 -- \
    qemu-img bench -q -f qcow2 -t writeback -d 1 -c $C -s 4K -S $STEP l2.qcow2
measure 2r "(info) hvm vhd bench --pattern rand" --runs "$RUNS" \
    --warm l0.vhd --warm l1.vhd --warm l2.vhd -- \
    "$HVM" vhd bench l2.vhd --count $C --pattern rand --size 4K
"$HVM" vhd bench l2.vhd --count $C --step $STEP --size 4K --depth-info | sed -n 's/^/   /; /layer\|zeros/p'
say ""

# ---------------------------------------------------------------------------
say "== 3. reads over NBD: hvm vhd serve vs qemu-nbd, both serving the 3-deep chain"
serve_help=$("$HVM" vhd serve --help 2>&1) && serve_rc=0 || serve_rc=$?
sock_h=$S/hvm.sock sock_q=$S/qemu.sock
wait_socket() {
    i=0
    while ! [ -S "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    [ -S "$1" ]
}
if [ $serve_rc != 0 ] || printf '%s' "$serve_help" | grep -qi "not built"; then
    say "   skipped (serve not available)"
    note 3 skipped "serve not available"
elif ! command -v nbdcopy >/dev/null 2>&1; then
    say "   skipped (nbdcopy missing: install libnbd-bin)"
    note 3 skipped "nbdcopy missing"
else
    "$HVM" vhd serve l2.vhd --socket "$sock_h" --read-only >serve.log 2>&1 &
    hpid=$!
    pids="$pids $hpid"
    qemu-nbd -r -t -e 8 -f qcow2 --cache=writeback --aio=threads -k "$sock_q" l2.qcow2 &
    qpid=$!
    pids="$pids $qpid"
    if ! wait_socket "$sock_h"; then
        say "   skipped (hvm vhd serve l2.vhd --socket SOCK --read-only did not start: $(head -c 300 serve.log))"
        note 3 skipped "serve did not start"
    elif ! wait_socket "$sock_q"; then
        say "   skipped (qemu-nbd did not start)"
        note 3 skipped "qemu-nbd did not start"
    else
        uh="nbd+unix:///?socket=$sock_h" uq="nbd+unix:///?socket=$sock_q"
        for c in $CACHES; do
            round=0
            while [ $round -lt "$RUNS" ]; do
                round=$((round + 1))
                measure 3s@$c "hvm serve: nbdcopy whole disk to null:" --runs 1 --cache $c \
                    --warm l0.vhd --warm l1.vhd --warm l2.vhd -- \
                    nbdcopy --no-extents -C 1 "$uh" null:
                measure 3s@$c "qemu-nbd: nbdcopy whole disk to null:" --runs 1 --cache $c \
                    --warm l0.qcow2 --warm l1.qcow2 --warm l2.qcow2 -- \
                    nbdcopy --no-extents -C 1 "$uq" null:
            done
        done
        C=30000
        measure 3r "hvm serve: qemu-img bench 4K x $C" --runs "$RUNS" \
            --warm l0.vhd --warm l1.vhd --warm l2.vhd -- \
            qemu-img bench -q -f raw -d 1 -c $C -s 4K -S $STEP "$uh"
        measure 3r "qemu-nbd: qemu-img bench 4K x $C" --runs "$RUNS" \
            --warm l0.qcow2 --warm l1.qcow2 --warm l2.qcow2 -- \
            qemu-img bench -q -f raw -d 1 -c $C -s 4K -S $STEP "$uq"
    fi
    kill $hpid $qpid 2>/dev/null || true
    wait $hpid $qpid 2>/dev/null || true
    pids=""
fi
say ""

# ---------------------------------------------------------------------------
say "== 4. merge a child with 1 GiB allocated into its parent (the 25% base layer)"
$W plan 2 9 $G $((2 << 20)) 1.0 >planfull
mkdir -p m
prep_vhd="rm -rf $S/m/* && cp --sparse=always $S/l0.vhd $S/m/base.vhd && chmod u+w $S/m/base.vhd && $HVM vhd diff $S/m/base.vhd $S/m/child.vhd --no-protect && $W vhd $S/m/child.vhd $S/planfull"
prep_qcow="rm -rf $S/m/* && cp --sparse=always $S/l0.qcow2 $S/m/base.qcow2 && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 $S/m/child.qcow2 && $W qemu-io $S/m/child.qcow2 qcow2 $S/planfull"
for c in $CACHES; do
round=0
while [ $round -lt "$RUNS" ]; do
    round=$((round + 1))
    measure 4@$c "hvm vhd merge" --runs 1 --cache $c --prepare "$prep_vhd" \
        --warm m/base.vhd --warm m/child.vhd -- "$HVM" vhd merge m/child.vhd
    if [ $round = 1 ] && [ $c = "${CACHES%% *}" ]; then
        "$HVM" vhd convert --type raw m/base.vhd m/check.raw
        $W raw m/expect.raw planfull
        cmp -s m/check.raw m/expect.raw || { echo "bench: merged disk reads wrong data" >&2; exit 1; }
    fi
    measure 4@$c "qemu-img commit -t writeback" --runs 1 --cache $c --prepare "$prep_qcow" \
        --warm m/base.qcow2 --warm m/child.qcow2 -- qemu-img commit -q -t writeback m/child.qcow2
done
done
rm -rf m
say ""

# ---------------------------------------------------------------------------
say "== 5. a 2040 GiB dynamic disk: create, and flatten a 2 TiB sparse chain to raw"
measure 5c "hvm vhd create --size 2040G" --runs 31 --prepare "rm -f $S/big.vhd" -- \
    "$HVM" vhd create big.vhd --size 2040G
note 5c hvm_file_bytes "$(stat -c %s big.vhd)"
measure 5c "qemu-img create -f vpc 2040G" --runs 31 --prepare "rm -f $S/big.vpc" -- \
    qemu-img create -q -f vpc -o subformat=dynamic,force_size=on big.vpc 2040G
note 5c qemu_file_bytes "$(stat -c %s big.vpc)"
rm -f big.vpc
# A few 64 KiB writes at far offsets in the base and in the child.
T=$((2040 * G))
printf '%s 65536 17\n' 0 $((1024 * G)) $((T - 65536)) >planbig0
printf '%s 65536 34\n' $((512 * G)) $((1536 * G)) $((T - 2 * 65536)) >planbig1
$W vhd big.vhd planbig0
"$HVM" vhd diff big.vhd bigc.vhd
$W vhd bigc.vhd planbig1
qemu-img create -q -f qcow2 big.qcow2 2040G
$W qemu-io big.qcow2 qcow2 planbig0
qemu-img create -q -f qcow2 -b big.qcow2 -F qcow2 bigc.qcow2
$W qemu-io bigc.qcow2 qcow2 planbig1
measure 5f "hvm vhd convert 2 TiB chain to raw" --runs "$RUNS" --prepare "rm -f $S/big.raw" \
    --warm big.vhd --warm bigc.vhd -- "$HVM" vhd convert --type raw bigc.vhd big.raw
note 5f hvm_out_kib "$(kib_allocated big.raw)"
measure 5f "qemu-img convert 2 TiB chain to raw" --runs "$RUNS" --prepare "rm -f $S/big.raw" \
    --warm big.qcow2 --warm bigc.qcow2 -- qemu-img convert -t writeback -f qcow2 -O raw bigc.qcow2 big.raw
note 5f qemu_out_kib "$(kib_allocated big.raw)"
rm -f big.raw big*.vhd big*.qcow2
say ""

# ---------------------------------------------------------------------------
say "== 6. export a VM whose 1 GiB disk has 25% random data, vs cp -r + sync"
"$HVM" vm create ex --store "$S/st" --new-disk 1G >/dev/null 2>&1
exdisk=$(ls "$S"/st/vms/ex/disks/*.vhd)
$W vhd "$exdisk" plan0
for c in $CACHES; do
round=0
while [ $round -lt "$RUNS" ]; do
    round=$((round + 1))
    measure 6@$c "hvm vm export" --runs 1 --cache $c --prepare "rm -rf $S/exp" \
        --warm "$exdisk" -- "$HVM" vm export ex "$S/exp" --store "$S/st"
    measure 6@$c "cp -r; sync" --runs 1 --cache $c --prepare "rm -rf $S/exp" \
        --warm "$exdisk" -- sh -c "cp -r $S/st/vms/ex $S/exp && sync -f $S/exp/vm.json"
done
done
rm -rf "$S/exp" "$S/st"
say ""

note 0 seconds "$(($(date +%s) - started))"
note 0 load_end "$(cut -d' ' -f1 /proc/loadavg)"
note 0 load_start "$load"
"$PY" "$here/report.py" "$R" "$N"
