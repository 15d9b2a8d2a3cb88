#!/bin/sh
# Broken chains: a missing parent, a replaced parent (id mismatch), a parent
# of another size, a loop, a chain deeper than 64 layers. Each is its own
# one-line error, exit 2, naming the files; nothing is read wrongly.
. "${TESTS:-$(dirname "$0")/..}/cli/lib.sh"

# one_error PATTERN CMD...: exit 2, exactly one line, matching PATTERN.
one_error() {
    pat=$1; shift
    expect_fail 2 "$@"
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err" >&2; fail "$*: not one line"; }
    grep -q -- "$pat" "$T/.err" || fail "$*: message does not match '$pat': $(last_error)"
}
# Every way of opening the chain reports the same error.
all_fail() {
    pat=$1 f=$2
    one_error "$pat" "$HVM" vhd info --chain "$f"
    one_error "$pat" "$HVM" vhd convert "$f" "$T/out.raw" --type raw
    [ ! -e "$T/out.raw" ] || fail "convert of a broken chain left its output"
    one_error "$pat" "$HVM" vhd merge "$f"
    [ -e "$f" ] || fail "merge of a broken chain removed $f"
    one_error "$pat" "$HVM" vhd rebase "$f" --standalone
    set +e; "$HVM" vhd check "$f" >"$T/.chk" 2>&1; rc=$?; set -e
    [ $rc = 1 ] || [ $rc = 2 ] || fail "check $f exited $rc"
    grep -q -- "$pat" "$T/.chk" || fail "check $f does not report '$pat': $(cat "$T/.chk")"
    grep -q "AddressSanitizer\|runtime error" "$T/.chk" && fail "check $f: sanitizer report"
    return 0
}

"$HVM" vhd create base.vhd --size 8M
"$HVM" vhd diff base.vhd child.vhd --no-protect
"$HVM" vhd info --json base.vhd >b.json
base_id=$(jget b.json unique_id)

# 1. Missing parent: the message names the child, the parent's name and
#    every path tried.
mv base.vhd base.away
all_fail "child.vhd: parent '$T/base.vhd' not found (tried: base.vhd" child.vhd
grep -q "tried: base.vhd" .err || fail "paths tried: $(last_error)"
mv base.away base.vhd
# The child moved away from the parent: the relative locator's path and the
# absolute one are both tried and listed.
mkdir sub
cp child.vhd sub/child.vhd
mv base.vhd base2.vhd
one_error "not found" "$HVM" vhd info --chain sub/child.vhd
grep -q "sub/base.vhd" .err && grep -q "$T/base.vhd" .err || fail "paths tried: $(last_error)"
mv base2.vhd base.vhd

# A FIFO (or a folder) where the parent should be: refused at once, no hang.
mv base.vhd base.away
mkfifo base.vhd
one_error "base.vhd: not a regular file" timeout 20 "$HVM" vhd info --chain child.vhd
rm base.vhd
mkdir base.vhd
one_error "not found\|not a regular file\|base.vhd" timeout 20 "$HVM" vhd info --chain child.vhd
rmdir base.vhd
mv base.away base.vhd

# 2. Replaced parent: a different disk under the parent's name.
mv base.vhd base.orig
"$HVM" vhd create base.vhd --size 8M
"$HVM" vhd info --json base.vhd >n.json
all_fail "child.vhd: parent base.vhd has unique id $(jget n.json unique_id) but the child expects $base_id" child.vhd
rm base.vhd
mv base.orig base.vhd

# 3. Parent of another size with the identity the child expects (forged).
"$HVM" vhd create big.vhd --size 16M
$PY - big.vhd "$base_id" <<'EOF'
import os, struct, sys, uuid
path, want = sys.argv[1], uuid.UUID(sys.argv[2]).bytes
size = os.path.getsize(path)
with open(path, "r+b") as f:
    for off in (0, size - 512):
        f.seek(off); b = bytearray(f.read(512))
        b[68:84] = want
        b[64:68] = bytes(4)
        b[64:68] = struct.pack(">I", ~sum(b) & 0xFFFFFFFF)
        f.seek(off); f.write(b)
EOF
mv base.vhd base.orig
cp big.vhd base.vhd
all_fail "child.vhd: parent base.vhd is 16777216 bytes but the child is 8388608 bytes" child.vhd
rm base.vhd
mv base.orig base.vhd
"$HVM" vhd info --chain child.vhd >/dev/null

# 4. A loop: x -> y -> x (made with set-parent --ignore-id-mismatch), and a
#    disk that is its own parent.
"$HVM" vhd diff base.vhd x.vhd --no-protect
"$HVM" vhd diff x.vhd y.vhd --no-protect
"$HVM" vhd set-parent x.vhd y.vhd --ignore-id-mismatch
all_fail "parent chain loops back to" y.vhd
grep -q "y.vhd" .err || fail "loop: file not named"
"$HVM" vhd diff base.vhd self.vhd --no-protect
"$HVM" vhd set-parent self.vhd self.vhd --ignore-id-mismatch
all_fail "self.vhd: parent chain loops back to self.vhd" self.vhd
# A loop through a hard link (same file, another name) is still a loop.
"$HVM" vhd diff base.vhd h.vhd --no-protect
ln h.vhd h-link.vhd
"$HVM" vhd set-parent h.vhd h-link.vhd --ignore-id-mismatch
one_error "loops back to" "$HVM" vhd info --chain h.vhd

# 5. Depth: 64 layers open, 65 do not. Every layer is a child of base made
#    directly, then re-pointed from the top down so that no command ever
#    opens a chain deeper than two.
i=1
while [ $i -le 64 ]; do
    "$HVM" vhd diff base.vhd "d$i.vhd" --no-protect
    i=$((i + 1))
done
i=64
while [ $i -ge 2 ]; do
    "$HVM" vhd set-parent "d$i.vhd" "d$((i - 1)).vhd" --ignore-id-mismatch
    i=$((i - 1))
done
# d63 -> ... -> d1 -> base: 64 layers.
"$HVM" vhd info --chain --json d63.vhd >deep.json
$PY -c 'import json,sys; n=len(json.load(open(sys.argv[1]))["chain"]); assert n == 64, n' deep.json \
    || fail "64-layer chain"
"$HVM" vhd convert d63.vhd deep.raw --type raw
cmp -n 8388608 deep.raw /dev/zero 2>/dev/null || true
# d64 -> d63 -> ... -> base: 65 layers.
all_fail "d64.vhd: parent chain deeper than 64 layers" d64.vhd

# The errors are distinct from one another (checked by their patterns
# above): missing "not found", mismatch "unique id", size "bytes but the
# child is", loop "loops back", depth "deeper than".
echo ok
