#!/bin/sh
# Export and import. A VM made from a base with a checkpoint tree is
# exported whole, as one checkpoint (standalone) and flattened, then
# imported in each mode (copy: new id and MACs; restore: same id, into
# another store or after the original is gone; register: in place); now and
# every checkpoint read as the original did. --dry-run changes nothing. Bad
# bundles are refused with the list of problems (exit 2), the store untouched.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

jshow() { # VM EXPR [--store DIR]
    _n=$1 _e=$2; shift 2
    "$HVM" vm show "$_n" --json "$@" >"$T/show.json"; json_get "$T/show.json" "$_e"
}

"$HVM" vhd create base.vhd --size 16M
sock="$T/b.sock"
"$HVM" vhd serve base.vhd --socket "$sock" & p=$!
while [ ! -S "$sock" ]; do sleep 0.05; done
qemu-io -f raw -c "write -P 0xb1 0 16M" "nbd+unix:///?socket=$sock" >/dev/null
kill -TERM $p; wait $p
"$HVM" vm create o --from base.vhd --cpus 2 --memory 256M --nic lan --nic wan >/dev/null
# X -> {Y -> Now, Z}
vm_io o -- "write -P 0x11 0 2M" "write -P 0x12 12M 64k" >/dev/null
"$HVM" checkpoint take o X >/dev/null
vm_io o -- "write -P 0x21 1M 2M" >/dev/null
"$HVM" checkpoint take o Y >/dev/null
"$HVM" checkpoint apply o X
vm_io o -- "write -P 0x31 4M 1M" >/dev/null
"$HVM" checkpoint take o Z >/dev/null
"$HVM" checkpoint apply o Y
vm_io o -- "write -P 0x41 6M 1M" "write -P 0x42 0 4k" >/dev/null
mkdir ref
for c in X Y Z; do vm_flat o "ref/$c" --checkpoint "$c"; done
vm_flat o ref/now
o_id=$(jshow o "d['id']")
o_macs=$(jshow o "' '.join(n['mac'] for n in d['nics'])")

MAIN_STORE=$HVM_STORE
same_as_o() { # VM [STORE]: now and X, Y, Z read as o's did
    _v=$1
    HVM_STORE=${2:-$MAIN_STORE}
    for c in X Y Z; do
        rm -f "$T/cur"
        vm_flat "$_v" "$T/cur" --checkpoint "$c"
        cmp -s "$T/cur" "ref/$c" || fail "$_v: checkpoint $c differs"
    done
    rm -f "$T/cur"
    vm_flat "$_v" "$T/cur"
    cmp -s "$T/cur" ref/now || fail "$_v: now differs"
    vm_check "$_v"
    "$HVM" checkpoint list "$_v" --json >"$T/tree.json"
    HVM_STORE=$MAIN_STORE
    json_get "$T/tree.json" "[(c['name'], sorted(x['name'] for x in c['children'])) for c in d['tree']]" |
        grep -q "\[('X', \['Y', 'Z'\])\]" || fail "$_v: the tree differs: $(cat "$T/tree.json")"
}
listing() { # a listing of the store: names, sizes, hashes of regular files
    find "$HVM_STORE" -name lock -prune -o -print | sort | while read -r f; do
        if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$f $(sha "$f")"; else echo "$f"; fi
    done
}

# Export the whole tree.
"$HVM" vm export o b
[ -f b/manifest.json ] && [ -f b/vm.json ] || fail "the bundle lacks manifest.json or vm.json"
ls b/bases/*.vhd >/dev/null 2>&1 || fail "the base is not in the bundle"
ls -a . | grep -q exporting && fail "a temporary export folder is left"
expect_fail 2 "$HVM" vm export o b
last_error | grep -q exists || fail "export onto an existing DEST: $(last_error)"
grep -q "$T" b/vm.json && fail "vm.json names host paths"
# every file is in the manifest with its hash
(cd b && find . -type f ! -name manifest.json | sed 's|^\./||' | sort) >files.txt
json_get b/manifest.json "'\n'.join(sorted(f['path'] for f in d['files']))" >listed.txt
cmp -s files.txt listed.txt || fail "manifest and files differ"
cp -a b pristine

# --dry-run changes nothing
before=$(listing)
"$HVM" vm import b --mode copy --name dry --dry-run | grep -q "can be imported" || fail "dry-run output"
[ "$(listing)" = "$before" ] || fail "--dry-run changed the store"
diff -r b pristine >/dev/null || fail "--dry-run changed the bundle"

# copy: new id, new MACs, same content
"$HVM" vm import b --mode copy --name oc
diff -r b pristine >/dev/null || fail "import --mode copy changed the bundle"
[ "$(jshow oc "d['id']")" != "$o_id" ] || fail "copy kept the id"
for m in $(jshow oc "' '.join(n['mac'] for n in d['nics'])"); do
    echo "$o_macs" | grep -q "$m" && fail "copy kept MAC $m"
    true
done
[ "$(jshow oc "[n['switch'] for n in d['nics']]")" = "['lan', 'wan']" ] || fail "copy: adapters"
[ "$(jshow oc "d['cpus']")" = 2 ] || fail "copy: cpus"
same_as_o oc
# the copy is independent of the bundle and of o
rm -rf b; cp -a pristine b
vm_write oc 0x99 0 1M
vm_flat o cur; cmp -s cur ref/now || fail "writing the copy changed o"
"$HVM" vm delete oc

# restore into another store: same id and MACs
"$HVM" vm import b --store "$T/store2"
[ "$(jshow o "d['id']" --store "$T/store2")" = "$o_id" ] || fail "restore changed the id"
[ "$(jshow o "' '.join(n['mac'] for n in d['nics'])" --store "$T/store2")" = "$o_macs" ] || fail "restore changed MACs"
same_as_o o "$T/store2"
# register in place (a third store): the bundle folder becomes the VM's
cp -a pristine reg
"$HVM" vm import reg --mode register --store "$T/store3"
same_as_o o "$T/store3"
HVM_STORE="$T/store3"
vm_write o 0x77 9M 1M
vm_expect o -- 0x77 9M 1M
[ "$(cd "$HVM_STORE/vms/o" && pwd -P)" = "$(cd reg && pwd -P)" ] || fail "register did not use the folder in place"
HVM_STORE=$MAIN_STORE
vm_flat o cur; cmp -s cur ref/now || fail "the registered VM's write reached the original"
# restore into the same store once the original is gone
"$HVM" vm delete o
"$HVM" vm import b
[ "$(jshow o "d['id']")" = "$o_id" ] || fail "restore changed the id"
same_as_o o
"$HVM" base list --json >bases.json

# --checkpoint X: a standalone VM at X
"$HVM" vm export o bx --checkpoint X
ls bx/bases >/dev/null 2>&1 && fail "a standalone export has bases/"
"$HVM" vm import bx --mode copy --name ox
vm_flat ox cur; cmp -s cur ref/X || fail "--checkpoint X: now is not X"
[ "$(jshow ox "d['drives'][0]['parents']")" = "[]" ] || fail "--checkpoint X: not standalone"
"$HVM" checkpoint list ox --json >tree.json
[ "$(json_get tree.json "len(d['tree'])")" = 1 ] || fail "--checkpoint X: has checkpoints"
vm_check ox
# --flatten: now only, standalone
"$HVM" vm export o bf --flatten
"$HVM" vm import bf --mode copy --name of
vm_flat of cur; cmp -s cur ref/now || fail "--flatten: now differs"
[ "$(jshow of "d['drives'][0]['parents']")" = "[]" ] || fail "--flatten: not standalone"
vm_check of
expect_fail 2 "$HVM" vm export o bz --checkpoint nope
[ ! -e bz ] || fail "a failed export left DEST"

# Bad bundles: each refused with its problems listed, the store untouched.
disk_of() { json_get "$1/vm.json" "d['config']['drives'][0]['file']"; }
fix_manifest() { # BUNDLE: recompute sizes and hashes of the listed files
    $PY - "$1" <<'PYEOF'
import hashlib, json, os, sys
root = sys.argv[1]
m = json.load(open(os.path.join(root, "manifest.json")))
for f in m["files"]:
    p = os.path.join(root, f["path"])
    f["size"] = os.path.getsize(p)
    f["sha256"] = hashlib.sha256(open(p, "rb").read()).hexdigest()
json.dump(m, open(os.path.join(root, "manifest.json"), "w"), indent=2)
PYEOF
}
refused() { # BUNDLE TEXT [import options]: refused, TEXT among the problems
    _b=$1 _txt=$2; shift 2
    _before=$(listing)
    expect_fail 2 "$HVM" vm import "$_b" "$@"
    head -1 "$T/.err" | grep -q "cannot be imported: [0-9]* problem" || fail "$_b: no problem count: $(last_error)"
    grep -q "^  - .*$_txt" "$T/.err" || fail "$_b: '$_txt' not among the problems: $(last_error)"
    [ "$(listing)" = "$_before" ] || fail "$_b: the store changed"
    ls -a "$HVM_STORE/vms" | grep -q '^\.importing' && fail "$_b: a temporary folder is left"
    return 0
}
bad() { rm -rf "$1"; cp -a pristine "$1"; }

bad t1; d=$(disk_of t1); truncate -s -512 "t1/$d"
refused t1 "truncated" --mode copy --name n1
bad t2; d=$(disk_of t2)
$PY - "t2/$d" <<'PYEOF'
import sys
f = open(sys.argv[1], "r+b"); f.seek(1536 + 7); b = f.read(1); f.seek(1536 + 7); f.write(bytes([b[0] ^ 0xff]))
PYEOF
refused t2 "SHA-256" --mode copy --name n2
bad t3; echo "this is { not json" >t3/vm.json
refused t3 "vm.json" --mode copy --name n3
bad t4; echo "garbage" >t4/manifest.json
refused t4 "manifest.json" --mode copy --name n4
bad t5
$PY - t5/vm.json <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["config"]["drives"][0]["file"] = "../../../../etc/passwd"
json.dump(d, open(sys.argv[1], "w"), indent=2)
PYEOF
fix_manifest t5
refused t5 "leaves the bundle" --mode copy --name n5
bad t6; ln -s /etc/passwd t6/disks/evil.vhd
refused t6 "symbolic link" --mode copy --name n6
bad t6b; d=$(disk_of t6b); rm "t6b/$d"; ln -s "$T/pristine/$d" "t6b/$d"
refused t6b "symbolic link" --mode copy --name n6b
# A differencing disk whose parent is not in the bundle: its locator points
# at the host's base.vhd, which exists, and must not be followed.
bad t7
rm -rf t7/bases
$PY - t7 <<'PYEOF'
import json, os, sys
root = sys.argv[1]
m = json.load(open(os.path.join(root, "manifest.json")))
m["files"] = [f for f in m["files"] if not f["path"].startswith("bases/")]
m["chains"] = [c for c in m["chains"] if not c["file"].startswith("bases/")]
for c in m["chains"]:
    if c.get("parent", "") and c["parent"].startswith("bases/"):
        c["parent"] = None
json.dump(m, open(os.path.join(root, "manifest.json"), "w"), indent=2)
d = json.load(open(os.path.join(root, "vm.json")))
d["base"] = None
json.dump(d, open(os.path.join(root, "vm.json"), "w"), indent=2)
PYEOF
fix_manifest t7
refused t7 "not in the bundle" --mode copy --name n7
# ... and the same with the layer's chain entry dropped instead.
bad t7b
rm -rf t7b/bases
$PY - t7b <<'PYEOF'
import json, os, sys
root = sys.argv[1]
m = json.load(open(os.path.join(root, "manifest.json")))
m["files"] = [f for f in m["files"] if not f["path"].startswith("bases/")]
m["chains"] = [c for c in m["chains"]
               if not c["file"].startswith("bases/") and not (c.get("parent") or "").startswith("bases/")]
json.dump(m, open(os.path.join(root, "manifest.json"), "w"), indent=2)
d = json.load(open(os.path.join(root, "vm.json")))
d["base"] = None
json.dump(d, open(os.path.join(root, "vm.json"), "w"), indent=2)
PYEOF
fix_manifest t7b
refused t7b "chain" --mode copy --name n7b
# clashes
"$HVM" vm create taken --new-disk 1M >/dev/null
refused pristine "already exists" --mode copy --name taken
refused pristine "id $o_id already exists" --name fresh
refused pristine "id $o_id already exists" --mode register --name fresh2
refused pristine "not a valid VM name" --mode copy --name ../up
# several problems at once are all listed
bad t8; d=$(disk_of t8); truncate -s -512 "t8/$d"; echo junk >t8/extra.txt
refused t8 "truncated" --name taken
grep -q "extra.txt" "$T/.err" || fail "t8: the unlisted file is not reported"
grep -q "already exists" "$T/.err" || fail "t8: the clashes are not reported"
[ "$(grep -c '^  - ' "$T/.err")" -ge 4 ] || fail "t8: not every problem listed: $(last_error)"
expect_fail 2 "$HVM" vm import "$T/nothing-here" --name z
expect_fail 2 "$HVM" vm import b --mode bogus
# the refusals did nothing to the bundles' neighbours either
[ -z "$(ls -a | grep importing)" ] || fail "temporary folders left"
"$HVM" vm list --json >list.json
[ "$(json_get list.json "sorted(v['name'] for v in d)")" = "['o', 'of', 'ox', 'taken']" ] || fail "VMs: $(cat list.json)"

# Unknown switch: a store that lists its switches refuses an adapter elsewhere.
"$HVM" vm create nicvm --new-disk 16M --nic lan --nic dmz >/dev/null
"$HVM" vm export nicvm "$T/nicexp" >/dev/null
echo '{"switches": ["lan"]}' > "$HVM_STORE/switches.json"
expect_fail 2 "$HVM" vm import "$T/nicexp" --mode copy --name nic2
last_error | grep -q "switch 'dmz', which this host does not have" || fail "no unknown-switch problem"
expect_fail 2 "$HVM" vm create nic3 --nic dmz
"$HVM" vm create nic3 --nic lan >/dev/null
expect_fail 2 "$HVM" vm set nic3 --add-nic dmz
echo '{"switches": ["lan", "dmz"]}' > "$HVM_STORE/switches.json"
"$HVM" vm import "$T/nicexp" --mode copy --name nic2
rm "$HVM_STORE/switches.json"
echo ok
