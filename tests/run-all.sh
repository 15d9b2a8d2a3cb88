#!/bin/sh
# Runs every test: the C unit tests (through meson test) and the black-box
# CLI scripts in tests/cli/ (each one a test: exit 0 pass, 77 skip, else
# fail). Prints one line "N passed, N failed" at the end.
# Needs HVM (the binary) and BUILD (the meson build folder).
#
# The CLI tests run in two lanes side by side (JOBS=2, the default; JOBS=1
# runs them one after the other): the guest lane holds every test that runs
# QEMU guests or host services (the ones sourcing rtlib.sh, netlib.sh,
# migratelib.sh, clusterlib.sh or weblib.sh), one at a time, and the store
# lane the disk, VM-store and bundle tests. Each test has its own scratch
# folder and network namespaces, and the two lanes share no global name; the
# guest lane waits on TCG much of the time, so on two cores the lanes
# overlap instead of queueing. Usage: run-all.sh [FILTER]
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?set HVM to the hvm binary}"
: "${BUILD:?set BUILD to the meson build folder}"
export HVM TESTS="$here" SHARED="${SHARED:-$here/../../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
JOBS=${JOBS:-2}
logdir="$BUILD/test-logs"
mkdir -p "$logdir"
rm -f "$logdir"/*.result

# record NAME RC: one line per test in $logdir/NAME.result, tallied at the end.
record() { echo "$2" >"$logdir/$1.result"; }

# Unit tests: one meson test per C file in tests/unit.
for t in $(meson test -C "$BUILD" --list --no-rebuild 2>/dev/null | grep -v "^ninja"); do
    name=$(echo "$t" | sed 's/.* \/ //')
    if meson test -C "$BUILD" --no-rebuild "$name" >"$logdir/unit-$name.log" 2>&1; then
        record "unit-$name" 0; echo "PASS unit/$name"
    else
        record "unit-$name" 1; echo "FAIL unit/$name"
    fi
done

# run_test FILE: runs one CLI test, prints its line (one write, so that the
# two lanes' lines never mix) and records its result.
run_test() {
    name=$(basename "$1" .sh)
    start=$(date +%s)
    sh "$1" >"$logdir/$name.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    record "$name" $rc
    if [ $rc = 0 ]; then
        echo "PASS $name (${secs}s)"
    elif [ $rc = 77 ]; then
        echo "SKIP $name: $(tail -1 "$logdir/$name.log")"
    else
        printf '%s\n%s\n' "FAIL $name (${secs}s), last lines of $logdir/$name.log:" \
            "$(tail -15 "$logdir/$name.log" | sed 's/^/    /')"
    fi
}

lane() { # FILE...: the tests, one after the other
    for t in "$@"; do run_test "$t"; done
}

filter="${1:-}"
guest="" store=""
for t in "$here"/cli/t*.sh; do
    name=$(basename "$t" .sh)
    case "$name" in *"$filter"*) ;; *) continue ;; esac
    if [ "$JOBS" -gt 1 ] && ! grep -q 'rtlib.sh\|netlib.sh\|migratelib.sh\|clusterlib.sh\|weblib.sh' "$t"; then
        store="$store $t"
    else
        guest="$guest $t"
    fi
done
# shellcheck disable=SC2086 # the lists are words of paths without spaces
lane $store &
store_pid=$!
# shellcheck disable=SC2086
lane $guest
wait $store_pid

passed=0 failed=0 skipped=0 failures=""
for r in "$logdir"/*.result; do
    [ -e "$r" ] || continue
    case $(cat "$r") in
    0) passed=$((passed + 1)) ;;
    77) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); failures="$failures $(basename "$r" .result)" ;;
    esac
done
[ -n "$failures" ] && echo "failed:$failures"
if [ $skipped -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ $failed = 0 ]
