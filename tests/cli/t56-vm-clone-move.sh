#!/bin/sh
# Linked clones and storage moves. `vm create --clone OTHER [--checkpoint X]`
# is instant, has a new id and new MACs and reads the checkpoint's data;
# deleting that checkpoint in OTHER keeps the clone readable (the layer stays
# hidden) and OTHER cannot be deleted, renamed or moved under its clones.
# `vm move VM DEST`: same content, still listed, old folder gone, clean.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

show() { "$HVM" vm show "$1" --json >"$T/show.json"; json_get "$T/show.json" "$2"; }
one_line() {
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err"; fail "$1: not one line"; }
    last_error | grep -q -- "$2" || fail "$1: does not say '$2': $(last_error)"
}

"$HVM" vm create src --new-disk 64M --cpus 2 --memory 256M --nic lan --nic wan >/dev/null
vm_io src -- "write -P 0x11 0 8M" "write -P 0x12 40M 1M" >/dev/null
"$HVM" checkpoint take src X >/dev/null
vm_io src -- "write -P 0x21 0 1M" "write -P 0x22 10M 1M" >/dev/null
"$HVM" checkpoint take src Y >/dev/null
vm_io src -- "write -P 0x31 0 512k" >/dev/null
vm_flat src src.X --checkpoint X
vm_flat src src.Y --checkpoint Y
vm_flat src src.now
X=$(cp_id src X)

# A clone at X: instant (no copy of the 64M), new identity, X's data.
start=$(date +%s)
"$HVM" vm create cx --clone src --checkpoint X >/dev/null
[ $(( $(date +%s) - start )) -le 5 ] || fail "the clone was not instant"
du_k=$(du -sk "$HVM_STORE/vms/cx" | cut -f1)
[ "$du_k" -lt 2048 ] || fail "the clone copied data: ${du_k}k"
[ "$(show cx "d['id']")" != "$(show src "d['id']")" ] || fail "the clone has the same id"
[ "$(show cx "d['cpus']")" = 2 ] && [ "$(show cx "d['memory']")" = $((256 << 20)) ] || fail "clone: hardware"
[ "$(show cx "[n['switch'] for n in d['nics']]")" = "['lan', 'wan']" ] || fail "clone: adapters $(cat "$T/show.json")"
src_macs=$(show src "' '.join(n['mac'] for n in d['nics'])")
for m in $(show cx "' '.join(n['mac'] for n in d['nics'])"); do
    echo "$src_macs" | grep -q "$m" && fail "the clone shares MAC $m"
    true
done
"$HVM" checkpoint list cx --json >tree.json
[ "$(json_get tree.json "len(d['tree'])")" = 1 ] || fail "the clone has checkpoints"
vm_flat cx cx.0
cmp -s cx.0 src.X || fail "the clone does not read X"
# Default: the checkpoint OTHER's now is based on (Y).
"$HVM" vm create cy --clone src >/dev/null
vm_flat cy cy.0
cmp -s cy.0 src.Y || fail "the default clone does not read Y"
# The clones write their own data; src and each other unchanged.
vm_write cx 0x44 2M 1M
vm_write cy 0x55 2M 1M
vm_expect cx -- 0x44 2M 1M
vm_expect cy -- 0x55 2M 1M
vm_flat src cur; cmp -s cur src.now || fail "a clone's write reached src"
vm_flat src cur --checkpoint X; cmp -s cur src.X || fail "a clone's write reached X"
vm_check src; vm_check cx; vm_check cy
"$HVM" base list | grep -q "cx" || fail "base list does not show the clone"

# Delete X in src: the clone keeps reading it; X is hidden, not folded.
"$HVM" checkpoint delete src X
"$HVM" checkpoint list src | grep -q " X  " && fail "X is still listed"
vm_flat cx cur
vm_expect cx -- 0x44 2M 1M
$PY - cur cx.0 <<'PYEOF' || fail "the clone changed after X was deleted"
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
# only the clone's own write (2M..3M) differs
sys.exit(0 if a[:2 << 20] == b[:2 << 20] and a[3 << 20:] == b[3 << 20:] else 1)
PYEOF
vm_flat src cur --checkpoint Y; cmp -s cur src.Y || fail "Y changed"
vm_flat src cur; cmp -s cur src.now || fail "now changed"
vm_check src; vm_check cx
# ... and Y too (X's only child): X still stays for the clone.
"$HVM" checkpoint delete src Y
vm_flat src cur; cmp -s cur src.now || fail "now changed after Y"
vm_flat cy cur; vm_expect cy -- 0x55 2M 1M
cmp -s cur cy.0 && fail "cy lost its write"
vm_check src; vm_check cx; vm_check cy
# src cannot go away or move while the clones use its layers.
expect_fail 2 "$HVM" vm delete src
one_line "delete src" "clone"
expect_fail 2 "$HVM" vm rename src src2
one_line "rename src" "clone"
expect_fail 2 "$HVM" vm move src "$T/elsewhere"
one_line "move src" "clone"
[ ! -e "$T/elsewhere" ] || fail "a refused move left DEST"
vm_expect cx -- 0x11 4M 1M
# Without clones, src folds its hidden layers and can be deleted.
"$HVM" vm delete cx
"$HVM" vm delete cy
"$HVM" checkpoint take src Z >/dev/null
"$HVM" checkpoint delete src Z
[ "$(json_get "$HVM_STORE/vms/src/vm.json" "len(d['checkpoints'])")" = 0 ] || fail "hidden layers were not folded"
vm_flat src cur; cmp -s cur src.now || fail "now changed after the folds"
vm_check src
"$HVM" base list --json >bases.json
[ "$(json_get bases.json "len(d['bases'])")" = 0 ] || fail "stale registry entries: $(cat bases.json)"

# vm move
"$HVM" checkpoint take src M >/dev/null
vm_write src 0x66 20M 1M
vm_flat src mv.now; vm_flat src mv.M --checkpoint M
"$HVM" vm show src --json >before.json
old=$(cd "$HVM_STORE/vms/src" && pwd -P)
mkdir "$T/shared"
"$HVM" vm move src "$T/shared/src"
[ -L "$HVM_STORE/vms/src" ] || [ ! -d "$old" ] || fail "the old folder is still there"
[ "$(cd "$HVM_STORE/vms/src" && pwd -P)" = "$(cd "$T/shared/src" && pwd -P)" ] || fail "the store does not lead to DEST"
[ "$(find "$HVM_STORE" -name vm.json | wc -l)" = 0 ] || fail "a vm.json is left in the store: $(find "$HVM_STORE" -name vm.json)"
[ -f "$T/shared/src/vm.json" ] || fail "DEST has no vm.json"
ls -a "$T/shared" | grep -q moving && fail "a temporary folder is left in DEST's folder"
ls -a "$HVM_STORE/vms" | grep -q '^\.moving' && fail "a temporary entry is left in the store"
"$HVM" vm list | grep -q "^src " || fail "vm list does not show src"
[ "$(show src "d['id']")" = "$(json_get before.json "d['id']")" ] || fail "the id changed"
[ "$(show src "d['nics']")" = "$(json_get before.json "d['nics']")" ] || fail "the adapters changed"
vm_flat src cur; cmp -s cur mv.now || fail "now changed by the move"
vm_flat src cur --checkpoint M; cmp -s cur mv.M || fail "M changed by the move"
vm_check src
# it keeps working there: checkpoints and writes land in DEST
vm_write src 0x77 21M 1M
"$HVM" checkpoint take src M2 >/dev/null
[ "$(ls "$T/shared/src/disks" | wc -l)" = 3 ] || fail "the layers are not in DEST"
vm_check src
expect_fail 2 "$HVM" vm move src "$T/shared/src"
one_line "move onto itself" "exists"
# move again, and a VM made from a base
"$HVM" vm move src "$T/src-again"
[ ! -e "$T/shared/src" ] || fail "the first DEST is still there"
vm_expect src -- 0x77 21M 1M
vm_check src
"$HVM" vhd create base.vhd --size 16M
"$HVM" vm create fb --from base.vhd >/dev/null
vm_write fb 0x88 0 1M
"$HVM" vm move fb "$T/shared/fb"
vm_expect fb -- 0x88 0 1M
vm_expect fb -- 0 1M 1M
vm_check fb
"$HVM" base list | grep -q "fb" || fail "the moved VM is no longer a child of its base"
expect_fail 2 "$HVM" base remove base.vhd
# --with-base: the VM takes its own copy of the base along.
"$HVM" vm move fb "$T/shared2/fb" --with-base
[ -f "$T/shared2/fb/bases/base.vhd" ] || fail "the base did not come along"
vm_expect fb -- 0x88 0 1M
vm_expect fb -- 0 1M 1M
vm_check fb
"$HVM" vm show fb --json | json_get /dev/stdin "d['base']" | grep -q "shared2/fb/bases/base.vhd" || fail "vm.json does not name the copy"
"$HVM" base remove base.vhd   # the original is free now
"$HVM" vm delete fb
[ ! -e "$T/shared2/fb" ] || fail "delete left the moved folder"
# A clone built on a checkpoint above the one deleted: the checkpoint in
# between is rebased, never merged up (which would switch its file and
# identity under the clone's chain).
"$HVM" vm create ch --new-disk 16M >/dev/null
vm_write ch 0x41 0 8M; "$HVM" checkpoint take ch C1 >/dev/null
vm_write ch 0x42 1M 64k; "$HVM" checkpoint take ch C2 >/dev/null
vm_write ch 0x43 2M 64k; "$HVM" checkpoint take ch C3 >/dev/null
"$HVM" vm create chc --clone ch --checkpoint C3 >/dev/null
vm_flat chc chc.0
c2f="$HVM_STORE/vms/ch/$(json_get "$HVM_STORE/vms/ch/vm.json" "[c for c in d['checkpoints'] if c['name']=='C2'][0]['config']['drives'][0]['file']")"
c2i=$(stat -c %i "$c2f")
"$HVM" checkpoint delete ch C1
[ "$(stat -c %i "$c2f")" = "$c2i" ] || fail "C2 was merged up under a clone of C3"
vm_flat chc cur; cmp -s cur chc.0 || fail "the clone changed when C1 went"
vm_check ch
vm_check chc
"$HVM" vm delete chc >/dev/null
"$HVM" vm delete ch >/dev/null
"$HVM" vm delete src
[ ! -e "$T/src-again" ] || fail "delete left the moved folder"
[ "$(ls -A "$HVM_STORE/vms")" = "" ] || fail "entries left: $(ls -A "$HVM_STORE/vms")"
echo ok
