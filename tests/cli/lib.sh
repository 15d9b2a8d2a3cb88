# Shared helpers for the black-box CLI tests. Source it first:
#   . "$TESTS/cli/lib.sh"
# Gives: $HVM, a scratch folder $T (removed on exit), and helpers.
set -eu
: "${HVM:?}"
# Run alone (sh tests/cli/tNN-x.sh) as well as from run-all.sh: TESTS is the
# tests folder, SHARED the shared/ folder beside the repository (CI: a clean
# clone with shared/ next to it; here /work/shared).
TESTS=${TESTS:-$(cd "$(dirname "$0")/.." && pwd)}
if [ -z "${SHARED:-}" ]; then
    SHARED=$(cd "$TESTS/../.." && pwd)/shared
    [ -d "$SHARED" ] || SHARED=/work/shared
fi
export TESTS SHARED
T=$(mktemp -d "${TMPDIR:-/tmp}/hvm-test.XXXXXX")
SERVE_PID=
cleanup() {
    rc=$?
    # A failing test must not leave a server behind.
    [ -z "$SERVE_PID" ] || kill -9 $SERVE_PID 2>/dev/null
    # Test libraries may add clean-up (rtlib.sh turns running VMs off).
    ${EXTRA_CLEANUP:-true}
    chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"; exit $rc
}
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
# mkraw FILE MIB [SEED]: a raw disk image with a mix of random data, zero
# areas (holes), short runs and single odd sectors, deterministic per seed.
mkraw() {
    $PY - "$1" "$2" "${3:-1}" <<'PYEOF'
import random, sys
path, mib, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
size = mib << 20
with open(path, "wb") as f:
    f.truncate(size)
    pos = 0
    while pos < size:
        kind = rng.random()
        n = rng.choice([512, 4096, 65536, 1 << 20, 3 << 19, 2 << 20]) * rng.randint(1, 2)
        n = min(n, size - pos)
        if kind < 0.45:
            f.seek(pos); f.write(rng.randbytes(n))
        elif kind < 0.55:
            # a run that ends in zeros inside a block
            f.seek(pos); f.write(rng.randbytes(n // 2))
        pos += n
    # some single sectors and odd bytes
    for _ in range(16):
        at = rng.randrange(0, size // 512) * 512
        f.seek(at); f.write(rng.randbytes(512))
        f.seek(rng.randrange(0, size - 8)); f.write(b"\x01\x02\x03")
PYEOF
}
# jget FILE KEY...: a value from a JSON document (jq is not installed).
jget() {
    f=$1; shift
    $PY -c 'import json,sys
v=json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v=v[int(k)] if isinstance(v,list) else v[k]
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$f" "$@"
}
# check_clean FILE: hvm vhd check exits 0 and prints no sanitizer report.
check_clean() {
    set +e
    "$HVM" vhd check "$1" >"$T/.chk" 2>&1
    rc=$?
    set -e
    [ $rc = 0 ] || { cat "$T/.chk" >&2; fail "check $1 exited $rc"; }
    grep -q "AddressSanitizer\|runtime error" "$T/.chk" && { cat "$T/.chk" >&2; fail "check $1: sanitizer report"; }
    return 0
}
# vhdi_read VHD OUT [PARENT...]: libvhdi's view of a VHD (the whole media),
# parents attached innermost first, into the raw file OUT.
vhdi_read() {
    $PY - "$@" <<'PYEOF'
import sys, pyvhdi
path, out, parents = sys.argv[1], sys.argv[2], sys.argv[3:]
files = [pyvhdi.file() for _ in range(len(parents) + 1)]
files[0].open(path)
for i, p in enumerate(parents):
    files[i + 1].open(p)
for i in range(len(parents) - 1, -1, -1):
    files[i].set_parent(files[i + 1])
f = files[0]
size = f.get_media_size()
with open(out, "wb") as o:
    pos = 0
    while pos < size:
        n = min(1 << 20, size - pos)
        f.seek(pos)
        o.write(f.read(n))
        pos += n
PYEOF
}
have() { command -v "$1" >/dev/null 2>&1; }

# serve_start FILE SOCKET [OPTION...]: hvm vhd serve in the background; the
# socket appears only once the server accepts (it is linked into place).
# Sets SERVE_PID, SOCK and URI.
serve_start() {
    f=$1 SOCK=$2; shift 2
    "$HVM" vhd serve "$f" --socket "$SOCK" "$@" 2>"$T/serve.err" &
    SERVE_PID=$!
    i=0
    while [ ! -S "$SOCK" ]; do
        kill -0 $SERVE_PID 2>/dev/null || { cat "$T/serve.err" >&2; fail "serve $f exited early"; }
        i=$((i + 1))
        [ $i -lt 400 ] || fail "serve $f: no socket after 20 s"
        sleep 0.05
    done
    URI="nbd+unix:///?socket=$SOCK"
}
# serve_stop: SIGTERM, stopped within 10 s, exit 0, no sanitizer report,
# socket file removed.
serve_stop() {
    kill -TERM $SERVE_PID
    i=0
    while kill -0 $SERVE_PID 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "serve still running 10 s after SIGTERM"
        sleep 0.05
    done
    set +e
    wait $SERVE_PID
    rc=$?
    set -e
    SERVE_PID=
    grep -q "Sanitizer\|runtime error" "$T/serve.err" && { cat "$T/serve.err" >&2; fail "serve: sanitizer report"; }
    [ $rc = 0 ] || { cat "$T/serve.err" >&2; fail "serve exited $rc after SIGTERM"; }
    [ ! -e "$SOCK" ] || fail "socket $SOCK left behind"
}
