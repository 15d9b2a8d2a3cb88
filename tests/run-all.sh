#!/bin/sh
# Runs every test: the C unit tests (through meson test) and the black-box
# CLI scripts in tests/cli/ (each one a test: exit 0 pass, 77 skip, else
# fail). Prints one line "N passed, N failed" at the end.
# Needs HVM (the binary) and BUILD (the meson build folder).
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?set HVM to the hvm binary}"
: "${BUILD:?set BUILD to the meson build folder}"
export HVM TESTS="$here" SHARED="${SHARED:-$here/../../shared}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
passed=0 failed=0 skipped=0 failures=""
logdir="$BUILD/test-logs"
mkdir -p "$logdir"

# Unit tests: one meson test per C file in tests/unit.
for t in $(meson test -C "$BUILD" --list --no-rebuild 2>/dev/null | grep -v "^ninja"); do
    name=$(echo "$t" | sed 's/.* \/ //')
    if meson test -C "$BUILD" --no-rebuild "$name" >"$logdir/unit-$name.log" 2>&1; then
        passed=$((passed + 1)); echo "PASS unit/$name"
    else
        failed=$((failed + 1)); failures="$failures unit/$name"; echo "FAIL unit/$name"
    fi
done

filter="${1:-}"
for t in "$here"/cli/t*.sh; do
    name=$(basename "$t" .sh)
    case "$name" in *"$filter"*) ;; *) continue ;; esac
    start=$(date +%s)
    sh "$t" >"$logdir/$name.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $rc = 0 ]; then
        passed=$((passed + 1)); echo "PASS $name (${secs}s)"
    elif [ $rc = 77 ]; then
        skipped=$((skipped + 1)); echo "SKIP $name: $(tail -1 "$logdir/$name.log")"
    else
        failed=$((failed + 1)); failures="$failures $name"
        echo "FAIL $name (${secs}s), last lines of $logdir/$name.log:"
        tail -15 "$logdir/$name.log" | sed 's/^/    /'
    fi
done
[ -n "$failures" ] && echo "failed:$failures"
if [ $skipped -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ $failed = 0 ]
