# Shared helpers for the black-box CLI tests. Source it first:
#   . "$TESTS/cli/lib.sh"
# Gives: $HVM, a scratch folder $T (removed on exit), and helpers.
set -eu
: "${HVM:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/hvm-test.XXXXXX")
cleanup() { rc=$?; chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"; exit $rc; }
trap cleanup EXIT INT TERM
cd "$T"
PY=/usr/bin/python3   # Debian's interpreter: python3-libvhdi lives there

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }
# expect_fail CODE CMD...: the command must exit with CODE and print one line to stderr.
expect_fail() {
    want=$1; shift
    set +e
    "$@" >"$T/.out" 2>"$T/.err"
    got=$?
    set -e
    [ "$got" = "$want" ] || { cat "$T/.err" >&2; fail "$* exited $got, expected $want"; }
    lines=$(wc -l <"$T/.err")
    [ "$lines" -ge 1 ] || fail "$*: no error message"
    grep -q "AddressSanitizer\|runtime error" "$T/.err" && { cat "$T/.err" >&2; fail "$*: sanitizer report"; }
    return 0
}
# The error text of the last expect_fail.
last_error() { cat "$T/.err"; }
# qemu-img reads hvm's VHDs by their current size (hvm is not a creator
# qemu knows, so by default it would trust the CHS geometry).
qvpc() { echo "driver=vpc,force_size_calc=current_size,file.filename=$1"; }
qraw() { echo "driver=raw,file.filename=$1"; }
same_content() { # VHD_OR_CHAIN RAW: hvm's view (flattened) equals the raw file
    rm -f "$T/.flat"
    "$HVM" vhd convert "$1" "$T/.flat" --type raw
    cmp "$T/.flat" "$2" || fail "$1 does not read as $2"
    rm -f "$T/.flat"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
