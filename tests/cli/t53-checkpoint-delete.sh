#!/bin/sh
# Checkpoint deletion of every kind keeps every other moment's content:
# a tree with distinct data per checkpoint (and overwrites of earlier
# offsets), then delete a leaf, a subtree, a middle checkpoint, one with two
# children (stays hidden until a sibling goes), the parent of Now and the
# root; after each, every remaining checkpoint and Now read as before and
# `hvm vm check` is clean (no orphaned layer). Also rename, show, lookups by
# id prefix and the ambiguity errors.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

"$HVM" vhd create base.vhd --size 16M
sock="$T/b.sock"
"$HVM" vhd serve base.vhd --socket "$sock" & p=$!
while [ ! -S "$sock" ]; do sleep 0.05; done
qemu-io -f raw -c "write -P 0xb0 0 16M" "nbd+unix:///?socket=$sock" >/dev/null
kill -TERM $p; wait $p
base_sum=$(sha base.vhd)
"$HVM" vm create t --from base.vhd

take() { # NAME: take a checkpoint named NAME, print its id
    "$HVM" checkpoint take t "$1" >/dev/null
    cp_id t "$1"
}
# A -> B -> { C -> D -> Now, E -> F },  A -> G -> H
vm_io t -- "write -P 0x01 0 512k" "write -P 0x01 8M 4k" >/dev/null
A=$(take A)
vm_io t -- "write -P 0x02 1M 512k" "write -P 0x12 0 64k" >/dev/null
B=$(take B)
vm_io t -- "write -P 0x03 2M 512k" "write -P 0x13 1M 64k" >/dev/null
C=$(take C)
vm_io t -- "write -P 0x04 3M 1M" "write -P 0x14 64k 64k" "write -P 0x24 2M 4k" >/dev/null
D=$(take D)
"$HVM" checkpoint apply t B
vm_io t -- "write -P 0x05 4M 512k" "write -P 0x15 0 4k" >/dev/null
E=$(take E)
vm_io t -- "write -P 0x06 5M 512k" "write -P 0x16 1M 4k" >/dev/null
F=$(take F)
"$HVM" checkpoint apply t A
vm_io t -- "write -P 0x08 6M 512k" >/dev/null
G=$(take G)
vm_io t -- "write -P 0x09 7M 512k" "write -P 0x19 6M 4k" >/dev/null
H=$(take H)
"$HVM" checkpoint apply t D
vm_io t -- "write -P 0x07 6M 512k" "write -P 0x17 3M 4k" "write -P 0x27 0 512" >/dev/null
"$HVM" checkpoint list t
[ "$(now_parent t)" = "$D" ] || fail "Now is not under D"
vm_check t

# Every moment's content, and they are all distinct.
mkdir snap
for x in A B C D E F G H; do
    eval id=\$$x
    vm_flat t "snap/$x" --checkpoint "$id"
done
vm_flat t snap/now
n=$(sha256sum snap/* | cut -d' ' -f1 | sort -u | wc -l)
[ "$n" = 9 ] || fail "the moments are not all distinct ($n different of 9)"
vm_expect t --checkpoint "$A" -- 0x01 0 512k
vm_expect t --checkpoint "$D" -- 0x04 3M 1M
vm_expect t -- 0x27 0 512

remaining="A B C D E F G H"
verify() { # after a deletion: remaining checkpoints and now unchanged
    for x in $remaining; do eval "echo \$$x"; done | sort >"$T/want.ids"
    cp_visible t >"$T/have.ids"
    cmp -s "$T/want.ids" "$T/have.ids" || { cat "$T/want.ids" "$T/have.ids"; fail "$1: visible checkpoints differ"; }
    for x in $remaining; do
        eval id=\$$x
        rm -f cur; vm_flat t cur --checkpoint "$id"
        cmp -s cur "snap/$x" || fail "$1: checkpoint $x changed"
    done
    rm -f cur; vm_flat t cur
    cmp -s cur snap/now || fail "$1: now changed"
    vm_check t
    [ "$(sha base.vhd)" = "$base_sum" ] || fail "$1: the base changed"
}
drop() { # remove names from $remaining
    for x in "$@"; do remaining=$(echo " $remaining " | sed "s/ $x / /; s/^ //; s/ \$//"); done
}
layer_of() { # ID: the drive-0 layer of a checkpoint, from vm.json
    json_get "$HVM_STORE/vms/t/vm.json" "[c for c in d['checkpoints'] if c['id']=='$1'][0]['config']['drives'][0]['file']"
}
nfiles() { ls "$HVM_STORE/vms/t/disks" | wc -l; }

# rename, show, lookups
"$HVM" checkpoint rename t E E2
"$HVM" checkpoint show t E2 | grep -q "^Id: *$E" || fail "show E2 is not E"
expect_fail 2 "$HVM" checkpoint show t E
last_error | grep -q "no checkpoint 'E'" || fail "unclear: $(last_error)"
"$HVM" checkpoint rename t "$(echo "$E" | cut -c1-6)" E
"$HVM" checkpoint show t E --json >e.json
[ "$(json_get e.json "d['id']")" = "$E" ] || fail "rename by id prefix"
[ "$(json_get e.json "d['parent']")" = "$B" ] || fail "E's parent is not B"
[ "$(cp_id t "$(echo "$F" | cut -c1-8)")" = "$F" ] || fail "lookup by id prefix"
expect_fail 2 "$HVM" checkpoint show t "$(echo "$F" | cut -c1-3)"   # too short
expect_fail 2 "$HVM" checkpoint rename t E ""
[ "$(wc -l <"$T/.err")" -le 3 ] || fail "too long: $(last_error)"
# Two checkpoints with one name: the name is ambiguous, ids still work.
"$HVM" checkpoint rename t G same
"$HVM" checkpoint rename t H same
expect_fail 2 "$HVM" checkpoint show t same
last_error | grep -q "more than one" || fail "ambiguous name not explained: $(last_error)"
"$HVM" checkpoint rename t "$G" G
"$HVM" checkpoint rename t "$H" H
expect_fail 2 "$HVM" checkpoint show t same   # no longer a name
# An ambiguous id prefix (ids made to share a prefix in vm.json).
$PY - "$HVM_STORE/vms/t/vm.json" "$G" "$H" <<'PYEOF'
import sys
path, g, h = sys.argv[1:]
t = open(path).read()
t = t.replace(g, "abcd0" + g[5:]).replace(h, "abcd1" + h[5:])
open(path, "w").write(t)
PYEOF
G="abcd0$(echo "$G" | cut -c6-)"; H="abcd1$(echo "$H" | cut -c6-)"
expect_fail 2 "$HVM" checkpoint show t abcd
last_error | grep -q "matches 2 checkpoints" || fail "ambiguous prefix not explained: $(last_error)"
[ "$(cp_id t abcd1)" = "$H" ] || fail "abcd1 is not H"
verify "renames"

# 1. a leaf
fl=$(layer_of "$F")
"$HVM" checkpoint delete t F
drop F; verify "delete leaf F"
[ ! -e "$HVM_STORE/vms/t/$fl" ] || fail "F's layer is still there"

# 2. a subtree
gl=$(layer_of "$G"); hl=$(layer_of "$H")
"$HVM" checkpoint delete t G --subtree
drop G H; verify "delete subtree G"
[ ! -e "$HVM_STORE/vms/t/$gl" ] && [ ! -e "$HVM_STORE/vms/t/$hl" ] || fail "G's or H's layer is still there"

# 3. a middle checkpoint (one child): folded into D
cl=$(layer_of "$C")
"$HVM" checkpoint delete t C
drop C; verify "delete middle C"
[ ! -e "$HVM_STORE/vms/t/$cl" ] || fail "C's layer is still there"

# 4. a checkpoint with two children (D and E): hidden, its layer stays
bl=$(layer_of "$B")
before=$(nfiles)
"$HVM" checkpoint delete t B
drop B; verify "delete B (two children)"
[ -e "$HVM_STORE/vms/t/$bl" ] || fail "B's layer went although two children use it"
[ "$(nfiles)" = "$before" ] || fail "files changed when hiding B"
"$HVM" checkpoint list t | grep -q " B  " && fail "hidden B is listed"
expect_fail 2 "$HVM" checkpoint show t B
expect_fail 2 "$HVM" checkpoint show t "$B"
# D and E now hang under A in the visible tree
"$HVM" checkpoint list t --json >tree.json
json_get tree.json "sorted(c['name'] for c in d['tree'][0]['children'])" | grep -q "'D', 'E'" ||
    fail "D and E are not under A: $(cat tree.json)"
# a sibling goes: B's layer is folded into D's and removed
"$HVM" checkpoint delete t E
drop E; verify "delete E (B folds)"
[ ! -e "$HVM_STORE/vms/t/$bl" ] || fail "B's layer is still there after E went"
grep -q "$B" "$HVM_STORE/vms/t/vm.json" && fail "B is still in vm.json"

# 5. the parent of Now
dl=$(layer_of "$D")
"$HVM" checkpoint delete t D
drop D; verify "delete D (parent of Now)"
[ "$(now_parent t)" = "$A" ] || fail "Now is not under A"
[ ! -e "$HVM_STORE/vms/t/$dl" ] || fail "D's layer is still there"

# 6. the root (with Now and a new child under it)
"$HVM" checkpoint apply t A --take-first
I=$(cp_id t "$(now_parent t)")
[ "$I" = "$A" ] || fail "apply A"
id_new=$("$HVM" checkpoint list t --json >tree.json; json_get tree.json "[c['id'] for c in d['tree'][0]['children'] if c.get('name')!='Now'][0]")
vm_flat t "snap/N" --checkpoint "$id_new"
cmp -s snap/N snap/now || fail "take-first did not keep now"
N=$id_new; remaining="$remaining N"
vm_io t -- "write -P 0x31 9M 64k" >/dev/null
vm_flat t snap/now
"$HVM" checkpoint delete t A          # two children (N, Now): hidden
drop A; verify "delete root A (two children)"
[ "$(now_parent t)" = "" ] || fail "Now is not at the root"
"$HVM" checkpoint delete t "$N"       # A folds into Now
drop N; verify "delete N (root folds into Now)"
[ "$(json_get "$HVM_STORE/vms/t/vm.json" "len(d['checkpoints'])")" = 0 ] || fail "nodes left in vm.json"
[ "$(nfiles)" = 1 ] || fail "more than now's layer left: $(ls "$HVM_STORE/vms/t/disks")"
expect_fail 2 "$HVM" checkpoint revert t
last_error | grep -q "no checkpoint" || fail "revert without checkpoints: $(last_error)"

# The root of a VM made with --new-disk (not a differencing disk): the
# child becomes standalone.
"$HVM" vm create s --new-disk 8M
vm_io s -- "write -P 0x41 0 1M" >/dev/null
"$HVM" checkpoint take s R
vm_io s -- "write -P 0x42 512k 1M" >/dev/null
vm_flat s s.before
"$HVM" checkpoint delete s R
vm_flat s s.after
cmp -s s.before s.after || fail "deleting the root of s changed now"
vm_check s

# A hidden node under a deleted root: u: A -> B -> {C, Now}; B hidden, then
# A folds into B's (shared, frozen) layer, then C goes and B folds into Now.
"$HVM" vm create u --new-disk 8M
vm_io u -- "write -P 0x51 0 1M" >/dev/null
"$HVM" checkpoint take u A
vm_io u -- "write -P 0x52 512k 1M" >/dev/null
"$HVM" checkpoint take u B
vm_io u -- "write -P 0x53 1M 1M" >/dev/null
"$HVM" checkpoint take u C
"$HVM" checkpoint apply u B
vm_io u -- "write -P 0x54 2M 1M" >/dev/null
vm_flat u u.c0 --checkpoint C; vm_flat u u.n0
"$HVM" checkpoint delete u B
"$HVM" checkpoint delete u A
[ "$(json_get "$HVM_STORE/vms/u/vm.json" "len(d['checkpoints'])")" = 2 ] || fail "u: A was not folded"
vm_flat u u.c1 --checkpoint C; vm_flat u u.n1
cmp -s u.c0 u.c1 || fail "u: C changed when A folded into hidden B"
cmp -s u.n0 u.n1 || fail "u: now changed when A folded into hidden B"
vm_check u
"$HVM" checkpoint delete u C
vm_flat u u.n2
cmp -s u.n0 u.n2 || fail "u: now changed when B folded into it"
vm_check u
[ "$(ls "$HVM_STORE/vms/u/disks" | wc -l)" = 1 ] || fail "u: layers left: $(ls "$HVM_STORE/vms/u/disks")"

# A subtree that holds Now's ancestors: Now keeps its content and moves up.
"$HVM" vm create w --new-disk 8M
vm_write w 0x61 0 1M; "$HVM" checkpoint take w A >/dev/null
vm_write w 0x62 1M 1M; "$HVM" checkpoint take w B >/dev/null
vm_write w 0x63 2M 1M; "$HVM" checkpoint take w C >/dev/null
vm_write w 0x64 3M 1M
vm_flat w w.n0; vm_flat w w.a0 --checkpoint A
wa=$(cp_id w A)
"$HVM" checkpoint delete w B --subtree
[ "$(cp_visible w)" = "$wa" ] || fail "w: B's subtree is still listed"
[ "$(now_parent w)" = "$wa" ] || fail "w: Now is not under A"
vm_flat w w.n1; vm_flat w w.a1 --checkpoint A
cmp -s w.n0 w.n1 || fail "w: now changed"
cmp -s w.a0 w.a1 || fail "w: A changed"
[ "$(json_get "$HVM_STORE/vms/w/vm.json" "len(d['checkpoints'])")" = 1 ] || fail "w: hidden nodes left"
vm_check w
[ "$(ls "$HVM_STORE/vms/w/disks" | wc -l)" = 2 ] || fail "w: layers left: $(ls "$HVM_STORE/vms/w/disks")"
# Both ways of folding, chosen by size, under checkpoints that others build
# on: R -> P (4 MiB) -> Q (64 KiB) -> S (64 KiB) -> Now. Deleting P merges the
# small Q up into P's layer, which becomes Q (its file, its identity): S and
# Now still open. Deleting S then rebases Now's bigger leaf onto Q.
"$HVM" vm create m --new-disk 8M
vm_write m 0x71 0 1M; "$HVM" checkpoint take m R >/dev/null
vm_write m 0x72 1M 4M; "$HVM" checkpoint take m P >/dev/null
vm_write m 0x73 2M 64k; "$HVM" checkpoint take m Q >/dev/null
vm_write m 0x74 3M 64k; "$HVM" checkpoint take m S >/dev/null
vm_write m 0x75 0 6M
for x in R P Q S; do vm_flat m "m.$x" --checkpoint "$x"; done
vm_flat m m.now
layer_m() { # CHECKPOINT: its drive-0 layer file
    echo "$HVM_STORE/vms/m/$(json_get "$HVM_STORE/vms/m/vm.json" "[c for c in d['checkpoints'] if c['name']=='$1'][0]['config']['drives'][0]['file']")"
}
p_ino=$(stat -c %i "$(layer_m P)")
q_id=$("$HVM" vhd info --json "$(layer_m Q)" | $PY -c 'import json,sys; print(json.load(sys.stdin)["unique_id"])')
"$HVM" checkpoint delete m P
[ "$(stat -c %i "$(layer_m Q)")" = "$p_ino" ] || fail "m: Q was not merged up into P's layer"
[ "$("$HVM" vhd info --json "$(layer_m Q)" | $PY -c 'import json,sys; print(json.load(sys.stdin)["unique_id"])')" = "$q_id" ] ||
    fail "m: the merged layer did not take Q's identity"
for x in R Q S; do rm -f cur; vm_flat m cur --checkpoint "$x"; cmp -s cur "m.$x" || fail "m: $x changed when P went"; done
rm -f cur; vm_flat m cur; cmp -s cur m.now || fail "m: now changed when P went"
vm_check m
s_ino=$(stat -c %i "$(layer_m S)")
"$HVM" checkpoint delete m S
for x in R Q; do rm -f cur; vm_flat m cur --checkpoint "$x"; cmp -s cur "m.$x" || fail "m: $x changed when S went"; done
rm -f cur; vm_flat m cur; cmp -s cur m.now || fail "m: now changed when S went (rebase)"
ls -i "$HVM_STORE/vms/m/disks" | grep -q "^ *$s_ino " && fail "m: S's layer is still there"
vm_check m
[ "$(ls "$HVM_STORE/vms/m/disks" | wc -l)" = 3 ] || fail "m: layers left: $(ls "$HVM_STORE/vms/m/disks")"
echo ok
