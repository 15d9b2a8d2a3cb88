#!/bin/sh
# kill -9 at random moments during convert, merge, rebase, compact and resize; then
# check passes (leaked space allowed) and every disk reads as before or as
# after, never anything else.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"
DISKIO=${BUILD:-}/tests/diskio
[ -x "$DISKIO" ] || skip "diskio helper not built (set BUILD)"
ITER=${CRASH_ITERATIONS:-8}   # per operation (resize: half as many)

# kill_at_random MAX_MS CMD...: runs CMD in the background and kills it
# with SIGKILL after a random delay of 0..MAX_MS milliseconds (it may have
# finished by then). Prints "killed" or "finished". MAX_MS comes from
# timing one uninterrupted run of the same operation (timed), so that the
# kills spread over the whole operation whatever the machine's load.
seed=$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')
seed=${CRASH_SEED:-$seed}
echo "random seed $seed (CRASH_SEED=$seed to repeat)"
rand() { seed=$(( (seed * 1103515245 + 12345) % 2147483648 )); echo $(( (seed >> 12) % $1 )); }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
timed() { # CMD...: prints how long CMD took, in ms, plus a little slack
    t0=$(now_ms)
    "$@" >/dev/null 2>&1
    echo $(( $(now_ms) - t0 + 10 ))
}
kill_at_random() {
    max=$1; shift
    "$@" >/dev/null 2>&1 &
    p=$!
    ms=$(rand "$max")
    sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
    # A process that already exited is a zombie until waited for, and kill
    # succeeds on it: look at its state first.
    if grep -q '^[^)]*) [^Z]' /proc/$p/stat 2>/dev/null && kill -9 $p 2>/dev/null; then
        echo killed
    else
        echo finished
    fi
    wait $p 2>/dev/null || true
}
check_ok() { # check passes (notes such as leaked space are fine)
    set +e
    "$HVM" vhd check "$1" >"$T/.chk" 2>&1
    rc=$?
    set -e
    [ $rc = 0 ] || { cat "$T/.chk" >&2; fail "$2: check $1 exited $rc after the crash"; }
}
reads_as() { # DISK RAW [RAW2]: the disk reads as RAW (or RAW2)
    rm -f "$T/.flat"
    "$HVM" vhd convert "$1" "$T/.flat" --type raw 2>"$T/.cerr" || { cat "$T/.cerr" >&2; return 1; }
    cmp -s "$T/.flat" "$2" && return 0
    [ -n "${3:-}" ] && cmp -s "$T/.flat" "$3" && return 0
    return 1
}
killed=0

# Templates, made once.
mkdir tmpl
mkraw tmpl/base.raw 8 51
"$HVM" vhd convert tmpl/base.raw tmpl/base.vhd --block-size 512K
"$HVM" vhd diff tmpl/base.vhd tmpl/mid.vhd --no-protect
cp tmpl/base.raw tmpl/mid.raw
"$DISKIO" random tmpl/mid.vhd tmpl/mid.raw 1 80 200000
"$HVM" vhd diff tmpl/mid.vhd tmpl/top.vhd --no-protect
cp tmpl/mid.raw tmpl/top.raw
"$DISKIO" random tmpl/top.vhd tmpl/top.raw 2 150 30000
# For compact: a dynamic disk with many zero blocks among data.
"$HVM" vhd convert tmpl/base.raw tmpl/cmp.vhd --block-size 64K
cp tmpl/base.raw tmpl/cmp.raw
i=0
while [ $i -lt 30 ]; do
    off=$(( $(rand 128) * 65536 ))
    "$DISKIO" fill tmpl/cmp.vhd $off 65536 0
    dd if=/dev/zero of=tmpl/cmp.raw bs=64k seek=$((off / 65536)) count=1 conv=notrunc 2>/dev/null
    i=$((i + 1))
done
same_content tmpl/cmp.vhd tmpl/cmp.raw

# 1. convert: DST is absent or complete.
max=$(timed "$HVM" vhd convert tmpl/top.vhd tmpl/timing.vhd)
rm -f tmpl/timing.vhd
i=0
while [ $i -lt "$ITER" ]; do
    d=conv$i; mkdir $d
    r=$(kill_at_random $max "$HVM" vhd convert tmpl/top.vhd $d/out.vhd)
    [ "$r" = killed ] && killed=$((killed + 1))
    if [ -e $d/out.vhd ]; then
        check_ok $d/out.vhd "convert #$i ($r)"
        reads_as $d/out.vhd tmpl/top.raw || fail "convert #$i ($r): incomplete output"
    fi
    # A temporary file may be left behind; it never has DST's name, and
    # the next convert to DST (here, after removing a complete one) clears it.
    rm -f $d/out.vhd
    "$HVM" vhd convert tmpl/top.vhd $d/out.vhd
    [ "$(ls $d)" = out.vhd ] || fail "convert #$i ($r): left behind: $(ls $d)"
    rm -rf $d
    i=$((i + 1))
done

# 2. merge (top into mid): the child, while it exists, reads as before; the
#    parent then reads as the merged result once the merge is run again.
mkdir timing; cp tmpl/base.vhd tmpl/mid.vhd tmpl/top.vhd timing/
max=$(timed "$HVM" vhd merge timing/top.vhd); rm -rf timing
i=0
while [ $i -lt "$ITER" ]; do
    d=merge$i; mkdir $d
    cp tmpl/base.vhd tmpl/mid.vhd tmpl/top.vhd $d/
    r=$(kill_at_random $max "$HVM" vhd merge $d/top.vhd)
    [ "$r" = killed ] && killed=$((killed + 1))
    check_ok $d/mid.vhd "merge #$i ($r)"
    if [ -e $d/top.vhd ]; then
        check_ok $d/top.vhd "merge #$i ($r)"
        reads_as $d/top.vhd tmpl/top.raw || fail "merge #$i ($r): the child reads differently"
        "$HVM" vhd merge $d/top.vhd
    fi
    reads_as $d/mid.vhd tmpl/top.raw || fail "merge #$i ($r): the parent is not the merged result"
    check_ok $d/mid.vhd "merge #$i ($r), completed"
    rm -rf $d
    i=$((i + 1))
done

# 2b. merge killed at each point of its identity step (HVM_CRASH_AT, see
#     src/util/crashpoint.h), and after the copy: the chain passes check
#     and reads as before, a sibling of the parent is refused, and running
#     the merge again finishes it.
"$HVM" vhd diff tmpl/mid.vhd tmpl/sib.vhd --no-protect
for pt in footer-copy merge-parent-id merge-parent-synced merge-child-linked \
          merge-identity-done merge-copied; do
    d=point-$pt; mkdir $d
    cp tmpl/base.vhd tmpl/mid.vhd tmpl/top.vhd tmpl/sib.vhd $d/
    set +e; HVM_CRASH_AT=$pt "$HVM" vhd merge $d/top.vhd >/dev/null 2>&1; rc=$?; set -e
    [ $rc = 137 ] || fail "merge with HVM_CRASH_AT=$pt exited $rc, not killed"
    check_ok $d/mid.vhd "merge killed at $pt"
    check_ok $d/top.vhd "merge killed at $pt"
    # Between the parent's new identity and the child's re-link, check
    # says the merge is unfinished (the chain reads right either way).
    case $pt in merge-parent-id | merge-parent-synced)
        "$HVM" vhd check $d/top.vhd | grep -q "note: its merge into .*mid.vhd was interrupted; run 'hvm vhd merge $d/top.vhd' again" ||
            fail "merge killed at $pt: check does not say the merge is unfinished" ;;
    esac
    reads_as $d/top.vhd tmpl/top.raw || fail "merge killed at $pt: the child reads differently"
    set +e; "$HVM" vhd info --chain $d/sib.vhd >/dev/null 2>$d/err; rc=$?; set -e
    [ $rc != 0 ] && grep -q "unique id" $d/err || fail "merge killed at $pt: the sibling still opens"
    "$HVM" vhd merge $d/top.vhd
    [ ! -e $d/top.vhd ] || fail "merge killed at $pt: the re-run left the child"
    reads_as $d/mid.vhd tmpl/top.raw || fail "merge killed at $pt: the re-run's result differs"
    check_ok $d/mid.vhd "merge killed at $pt, run again"
    rm -rf $d
done

# 3. rebase (onto the base, or standalone): the child always reads the same.
mkdir timing; cp tmpl/base.vhd tmpl/mid.vhd tmpl/top.vhd timing/
max=$(timed "$HVM" vhd rebase timing/top.vhd --standalone); rm -rf timing
i=0
while [ $i -lt "$ITER" ]; do
    d=rebase$i; mkdir $d
    cp tmpl/base.vhd tmpl/mid.vhd tmpl/top.vhd $d/
    if [ $((i % 2)) = 0 ]; then
        r=$(kill_at_random $max "$HVM" vhd rebase $d/top.vhd --onto $d/base.vhd)
    else
        r=$(kill_at_random $max "$HVM" vhd rebase $d/top.vhd --standalone)
    fi
    [ "$r" = killed ] && killed=$((killed + 1))
    check_ok $d/top.vhd "rebase #$i ($r)"
    reads_as $d/top.vhd tmpl/top.raw || fail "rebase #$i ($r): the child reads differently"
    # Without the middle layer, it still reads right if the rebase finished.
    if [ "$r" = finished ]; then
        mv $d/mid.vhd $d/mid.away
        reads_as $d/top.vhd tmpl/top.raw || fail "rebase #$i: still needs the middle layer"
    fi
    rm -rf $d
    i=$((i + 1))
done

# 4. compact: the content never changes; space leaked by the crash is
#    reclaimed by repair.
cp tmpl/cmp.vhd tmpl/timing.vhd
max=$(timed "$HVM" vhd compact tmpl/timing.vhd); rm -f tmpl/timing.vhd
i=0
while [ $i -lt "$ITER" ]; do
    d=compact$i; mkdir $d
    cp tmpl/cmp.vhd $d/
    r=$(kill_at_random $max "$HVM" vhd compact $d/cmp.vhd)
    [ "$r" = killed ] && killed=$((killed + 1))
    check_ok $d/cmp.vhd "compact #$i ($r)"
    reads_as $d/cmp.vhd tmpl/cmp.raw || fail "compact #$i ($r): content changed"
    "$HVM" vhd repair $d/cmp.vhd >/dev/null
    check_ok $d/cmp.vhd "compact #$i ($r), repaired"
    reads_as $d/cmp.vhd tmpl/cmp.raw || fail "compact #$i ($r): content changed by repair"
    rm -rf $d
    i=$((i + 1))
done
# 5. resize (grow a dynamic disk of 4 KiB blocks 32-fold: the larger BAT
#    displaces blocks): the disk reads as the old size or the new, with
#    zeros past the old end.
"$HVM" vhd convert tmpl/base.raw tmpl/rs.vhd --block-size 4K
cp tmpl/base.raw tmpl/rs.raw
truncate -s 256M tmpl/rs.raw
cp tmpl/rs.vhd tmpl/timing.vhd
max=$(timed "$HVM" vhd resize tmpl/timing.vhd --size 256M); rm -f tmpl/timing.vhd
i=0
while [ $i -lt $((ITER / 2)) ]; do
    d=resize$i; mkdir $d
    cp tmpl/rs.vhd $d/
    r=$(kill_at_random $max "$HVM" vhd resize $d/rs.vhd --size 256M)
    [ "$r" = killed ] && killed=$((killed + 1))
    check_ok $d/rs.vhd "resize #$i ($r)"
    reads_as $d/rs.vhd tmpl/base.raw tmpl/rs.raw || fail "resize #$i ($r): content changed"
    rm -rf $d
    i=$((i + 1))
done
echo "$killed of $((4 * ITER + ITER / 2)) operations were killed before they finished"
echo ok
