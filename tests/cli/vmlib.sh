# Helpers for the VM tests: source after lib.sh. Their variables start with
# an underscore so that they never clobber a caller's loop variables.
export HVM_STORE="$T/store"

# vm_io VM [--checkpoint X] -- QEMU-IO-COMMANDS...: runs qemu-io commands on
# a VM's drive 0 through `hvm vm serve`; prints qemu-io's output.
vm_io() {
    _vm=$1; shift
    _extra=""
    while [ "$1" != "--" ]; do _extra="$_extra $1"; shift; done
    shift
    _sock="$T/vm-$$.sock"
    rm -f "$_sock"
    "$HVM" vm serve "$_vm" $_extra --socket "$_sock" &
    _spid=$!
    _w=0
    while [ ! -S "$_sock" ]; do
        _w=$((_w + 1)); [ $_w -lt 1000 ] || fail "vm serve $_vm did not start"
        kill -0 $_spid 2>/dev/null || { wait $_spid; fail "vm serve $_vm exited"; }
        sleep 0.02
    done
    _args=""
    for _c in "$@"; do _args="$_args -c \"$_c\""; done
    _ro=""; [ -n "$_extra" ] && _ro="-r"
    eval qemu-io $_ro -f raw $_args "nbd+unix:///?socket=$_sock" >"$T/.io" 2>&1 || { cat "$T/.io"; kill $_spid; fail "qemu-io failed"; }
    kill -TERM $_spid
    wait $_spid || fail "vm serve $_vm exited with an error"
    cat "$T/.io"
}
# vm_expect VM [opts] -- PATTERN OFFSET LENGTH: the range reads as PATTERN.
vm_expect() {
    _evm=$1; shift
    _opts=""
    while [ "$1" != "--" ]; do _opts="$_opts $1"; shift; done
    shift
    _out=$(vm_io "$_evm" $_opts -- "read -P $1 $2 $3") || fail "$_evm$_opts: $2+$3 is not $1"
    echo "$_out" | grep -q "Pattern verification failed" && fail "$_evm$_opts: $2+$3 is not $1"
    echo "$_out" | grep -q "^read [0-9]*/[0-9]* bytes at offset" || fail "$_evm$_opts: read failed: $_out"
    return 0
}
vm_write() { # VM PATTERN OFFSET LENGTH
    vm_io "$1" -- "write -P $2 $3 $4" >/dev/null
}
# A VM's drive 0 flattened to raw FILE.
vm_flat() { # VM FILE [--checkpoint X]
    _vm=$1 _fout=$2; shift 2
    _sock="$T/flat-$$.sock"; rm -f "$_sock"
    "$HVM" vm serve "$_vm" --read-only "$@" --socket "$_sock" &
    _spid=$!
    while [ ! -S "$_sock" ]; do kill -0 $_spid 2>/dev/null || fail "serve died"; sleep 0.02; done
    qemu-img convert -f raw -O raw "nbd+unix:///?socket=$_sock" "$_fout"
    kill -TERM $_spid; wait $_spid
}
json_get() { # JSON-FILE PYTHON-EXPR (d is the document)
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}
# cp_id VM KEY: the full id of a checkpoint (a name or an id prefix).
cp_id() {
    "$HVM" checkpoint show "$1" "$2" --json >"$T/.cp.json" || fail "no checkpoint $2 in $1"
    json_get "$T/.cp.json" "d['id']"
}
# vm_check VM: `hvm vm check` exits 0, reports clean, no sanitizer report.
vm_check() {
    set +e
    "$HVM" vm check "$1" >"$T/.vmchk" 2>&1
    _rc=$?
    set -e
    [ $_rc = 0 ] || { cat "$T/.vmchk" >&2; fail "vm check $1 exited $_rc"; }
    grep -q "AddressSanitizer\|runtime error" "$T/.vmchk" && { cat "$T/.vmchk" >&2; fail "vm check $1: sanitizer report"; }
    grep -q ": clean$" "$T/.vmchk" || { cat "$T/.vmchk" >&2; fail "vm check $1 not clean"; }
    return 0
}
# cp_visible VM: the ids of the visible checkpoints, one a line, sorted.
cp_visible() {
    "$HVM" checkpoint list "$1" --json >"$T/.tree.json"
    $PY - "$T/.tree.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
out = []
def walk(ns):
    for n in ns:
        if not n.get("now"):
            out.append(n["id"])
        walk(n.get("children", []))
walk(d["tree"])
sys.stdout.write("".join(i + "\n" for i in sorted(out)))
PYEOF
}
# now_parent VM: the id of the visible checkpoint Now hangs under ("" at the root).
now_parent() {
    "$HVM" checkpoint list "$1" --json >"$T/.tree.json"
    $PY - "$T/.tree.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
def walk(ns, parent):
    for n in ns:
        if n.get("now"):
            return parent
        r = walk(n.get("children", []), n.get("id"))
        if r is not None:
            return r
    return None
print(walk(d["tree"], "") or "")
PYEOF
}
