#!/bin/sh
# Crash safety: kill -9 at random moments during checkpoint take, revert,
# apply --take-first, delete (of a middle checkpoint holding a few MiB, so
# the fold takes a moment; and of the parent of Now, merged up), export,
# linked clone, import and move. Afterwards `hvm vm
# check` (the next command) completes or rolls back the operation: it exits
# 0, no file is orphaned, and now and every checkpoint read as before or as
# after the operation; an interrupted export leaves no DEST or a complete
# one; an interrupted import leaves no VM or a complete one; an interrupted
# move leaves the VM in one place only; an interrupted create or delete from
# a base leaves the base registry matching the VMs.
# Each kill lands at a random moment within the operation's measured
# duration (an uninterrupted run of it first). CRASH_ROUNDS scales the
# number of iterations (default 5 per checkpoint operation, 4 for export,
# import, move and create/delete from a base: about 40 kills in all).
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

ROUNDS=${CRASH_ROUNDS:-5}
SMALL=$(( (ROUNDS * 2 + 2) / 3 ))
killed=0 finished=0

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rnd() { # N: a random number in 1..N
    echo $(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % $1 + 1 ))
}
timed() { # CMD...: runs it (must succeed); sets $took (ms, at least 5)
    _t0=$(now_ms)
    "$@" >/dev/null
    took=$(( $(now_ms) - _t0 ))
    [ $took -ge 5 ] || took=5
    echo "$2 $3: $took ms uninterrupted"
}
crash() { # MAX_MS CMD...: runs CMD, kills it with SIGKILL after 1..MAX_MS ms
    _max=$1; shift
    "$@" >"$T/crash.out" 2>&1 &
    _pid=$!
    sleep "$(awk "BEGIN { print $(rnd "$_max") / 1000 }")"
    kill -9 $_pid 2>/dev/null || true
    set +e
    wait $_pid 2>/dev/null
    _rc=$?
    set -e
    if [ $_rc = 137 ]; then
        killed=$((killed + 1))
    elif [ $_rc = 0 ]; then
        finished=$((finished + 1))
    else
        cat "$T/crash.out" >&2; fail "$* exited $_rc"
    fi
    grep -q "AddressSanitizer\|runtime error" "$T/crash.out" && { cat "$T/crash.out" >&2; fail "$*: sanitizer report"; }
    return 0
}
msha() { # VM [--checkpoint X]: SHA-256 of that moment's drive 0
    _mv=$1; shift
    rm -f "$T/m.raw"
    vm_flat "$_mv" "$T/m.raw" "$@"
    sha "$T/m.raw"
}
no_hidden_left() { # VM: every hidden node still has two children (folds done)
    $PY - "$HVM_STORE/vms/$1/vm.json" <<'PYEOF' || fail "$1: a hidden checkpoint was not folded"
import json, sys
d = json.load(open(sys.argv[1]))
cps = d["checkpoints"]
for h in cps:
    if h.get("hidden"):
        n = sum(1 for c in cps if c.get("parent") == h["id"])
        n += d["now"].get("parent") == h["id"]
        if n < 2:
            sys.exit(1)
PYEOF
}
new_ids() { # BEFORE-FILE AFTER-FILE: ids in after, not in before
    comm -13 "$1" "$2"
}
gone_ids() { comm -23 "$1" "$2"; }

pat=16
next_pat() { pat=$((pat + 1)); [ $pat -lt 250 ] || pat=17; }

# ---- take ----
"$HVM" vm create tk --new-disk 8M >/dev/null
vm_write tk 0x01 0 2M
timed "$HVM" checkpoint take tk first
max=$took
i=0
while [ $i -lt $ROUNDS ]; do
    i=$((i + 1)); next_pat
    vm_write tk $pat "$((i % 7))M" 256k
    n0=$(msha tk)
    cp_visible tk >before.ids
    crash $max "$HVM" checkpoint take tk "t$i"
    vm_check tk
    cp_visible tk >after.ids
    [ -z "$(gone_ids before.ids after.ids)" ] || fail "take $i: a checkpoint went"
    new=$(new_ids before.ids after.ids)
    [ "$(echo "$new" | grep -c .)" -le 1 ] || fail "take $i: more than one new checkpoint"
    [ "$(msha tk)" = "$n0" ] || fail "take $i: now changed"
    [ -z "$new" ] || [ "$(msha tk --checkpoint "$new")" = "$n0" ] || fail "take $i: the new checkpoint is not now"
done

# ---- revert ----
"$HVM" vm create rv --new-disk 8M >/dev/null
vm_write rv 0x02 0 4M
"$HVM" checkpoint take rv P >/dev/null
p=$(msha rv --checkpoint P)
vm_write rv 0x03 1M 1M
timed "$HVM" checkpoint revert rv
max=$took
i=0
while [ $i -lt $ROUNDS ]; do
    i=$((i + 1)); next_pat
    vm_write rv $pat "$((i % 6))M" 512k
    n0=$(msha rv)
    cp_visible rv >before.ids
    crash $max "$HVM" checkpoint revert rv
    vm_check rv
    cp_visible rv >after.ids
    cmp -s before.ids after.ids || fail "revert $i: the checkpoints changed"
    n1=$(msha rv)
    [ "$n1" = "$n0" ] || [ "$n1" = "$p" ] || fail "revert $i: now is neither before nor P"
    [ "$(msha rv --checkpoint P)" = "$p" ] || fail "revert $i: P changed"
done

# ---- apply --take-first ----
"$HVM" vm create ap --new-disk 8M >/dev/null
vm_write ap 0x04 0 2M
"$HVM" checkpoint take ap P1 >/dev/null
vm_write ap 0x05 1M 2M
"$HVM" checkpoint take ap P2 >/dev/null
p1=$(msha ap --checkpoint P1); p2=$(msha ap --checkpoint P2)
timed "$HVM" checkpoint apply ap P1 --take-first
max=$took
id1=$(cp_id ap P1); id2=$(cp_id ap P2)
cp_visible ap | grep -v "$id1" | grep -v "$id2" >extra.ids
"$HVM" checkpoint delete ap "$(cat extra.ids)"      # the checkpoint that run took
i=0
while [ $i -lt $ROUNDS ]; do
    i=$((i + 1)); next_pat
    if [ $((i % 2)) = 0 ]; then target=P1 tsha=$p1; else target=P2 tsha=$p2; fi
    vm_write ap $pat "$((i % 6))M" 512k
    n0=$(msha ap)
    cp_visible ap >before.ids
    crash $max "$HVM" checkpoint apply ap $target --take-first
    vm_check ap
    cp_visible ap >after.ids
    [ -z "$(gone_ids before.ids after.ids)" ] || fail "apply $i: a checkpoint went"
    new=$(new_ids before.ids after.ids)
    [ "$(echo "$new" | grep -c .)" -le 1 ] || fail "apply $i: more than one new checkpoint"
    [ -z "$new" ] || [ "$(msha ap --checkpoint "$new")" = "$n0" ] || fail "apply $i: the new checkpoint is not the old now"
    n1=$(msha ap)
    if [ "$n1" = "$tsha" ] && [ "$n1" != "$n0" ]; then
        [ -n "$new" ] || fail "apply $i: now went to $target but the old now was not kept"
    else
        [ "$n1" = "$n0" ] || fail "apply $i: now is neither before nor $target"
    fi
    [ "$(msha ap --checkpoint P1)" = "$p1" ] || fail "apply $i: P1 changed"
    [ "$(msha ap --checkpoint P2)" = "$p2" ] || fail "apply $i: P2 changed"
    [ -z "$new" ] || "$HVM" checkpoint delete ap "$new"
done
vm_check ap

# ---- delete a middle checkpoint (a fold of a few MiB) ----
"$HVM" vm create dl --new-disk 16M >/dev/null
vm_write dl 0x06 0 1M
"$HVM" checkpoint take dl root >/dev/null
prev=root
setup_middle() { # a new M (4 MiB of data) and B under it, Now under B
    next_pat
    vm_io dl -- "write -P $pat 0 4M" "write -P $pat 8M 2M" >/dev/null
    "$HVM" checkpoint take dl "M$1" >/dev/null
    vm_io dl -- "write -P $((pat + 1)) 1M 64k" >/dev/null
    "$HVM" checkpoint take dl "B$1" >/dev/null
    vm_io dl -- "write -P $((pat + 2)) 2M 64k" >/dev/null
}
setup_middle 0
timed "$HVM" checkpoint delete dl M0
max=$took
prev=B0
i=0
while [ $i -lt $ROUNDS ]; do
    i=$((i + 1))
    setup_middle $i
    m=$(cp_id dl "M$i")
    m0=$(msha dl --checkpoint "M$i"); b0=$(msha dl --checkpoint "B$i")
    q0=$(msha dl --checkpoint "$prev"); n0=$(msha dl)
    crash $max "$HVM" checkpoint delete dl "M$i"
    vm_check dl
    no_hidden_left dl
    if cp_visible dl | grep -q "$m"; then
        [ "$(msha dl --checkpoint "$m")" = "$m0" ] || fail "delete $i: M changed"
        "$HVM" checkpoint delete dl "$m"      # finish it for the next round
    fi
    [ "$(msha dl --checkpoint "B$i")" = "$b0" ] || fail "delete $i: B (the child) changed"
    [ "$(msha dl --checkpoint "$prev")" = "$q0" ] || fail "delete $i: the parent changed"
    [ "$(msha dl)" = "$n0" ] || fail "delete $i: now changed"
    grep -q "$m" "$HVM_STORE/vms/dl/vm.json" && fail "delete $i: M is still in vm.json"
    prev="B$i"
done
vm_check dl

# ---- delete a checkpoint over a small child: the fold merges the child
# up into the checkpoint's layer, which then becomes the child (its name and
# identity: what builds on the child still finds it) ----
"$HVM" vm create up --new-disk 16M >/dev/null
vm_write up 0x07 0 1M
"$HVM" checkpoint take up root >/dev/null
layer_file() { # VM CHECKPOINT|now: path of that moment's drive 0 layer
    $PY - "$HVM_STORE/vms/$1/vm.json" "$2" <<'PYEOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
cfg = d["config"] if sys.argv[2] == "now" else \
    [c for c in d["checkpoints"] if c["name"] == sys.argv[2]][0]["config"]
print(os.path.join(os.path.dirname(sys.argv[1]), cfg["drives"][0]["file"]))
PYEOF
}
layer_id() { # VM CHECKPOINT|now: unique id of that moment's drive 0 layer
    "$HVM" vhd info --json "$(layer_file "$1" "$2")" >"$T/layer.json"
    jget "$T/layer.json" unique_id
}
layer_ino() { stat -c %i "$(layer_file "$1" "$2")"; }
# P$1 owning 8 MiB, then ABOVE (now, or checkpoint Q$1 under an empty Now)
# owning 68 KiB over it
setup_up() { # N ABOVE
    next_pat
    vm_io up -- "write -P $pat 0 8M" >/dev/null
    "$HVM" checkpoint take up "P$1" >/dev/null
    vm_io up -- "write -P $((pat + 1)) 4M 64k" "write -P $((pat + 2)) 12M 4k" >/dev/null
    [ "$2" = now ] || "$HVM" checkpoint take up "Q$1" >/dev/null
}
for above in now Q; do
    setup_up 0 $above
    [ $above = now ] && child=now || child=Q0
    ino=$(layer_ino up P0); cid=$(layer_id up $child)
    timed "$HVM" checkpoint delete up P0
    max=$took
    [ "$(layer_ino up $child)" = "$ino" ] || fail "delete of P0 under $above did not merge the small child up"
    [ "$(layer_id up $child)" = "$cid" ] || fail "the merged child did not keep its identity"
    [ $above = now ] || "$HVM" checkpoint delete up Q0
    i=0
    while [ $i -lt $ROUNDS ]; do
        i=$((i + 1))
        setup_up $i $above
        p=$(cp_id up "P$i")
        p0=$(msha up --checkpoint "P$i"); r0=$(msha up --checkpoint root); n0=$(msha up)
        [ $above = now ] || q0=$(msha up --checkpoint "Q$i")
        crash $max "$HVM" checkpoint delete up "P$i"
        vm_check up
        no_hidden_left up
        if cp_visible up | grep -q "$p"; then
            [ "$(msha up --checkpoint "$p")" = "$p0" ] || fail "delete-up $above $i: P changed"
            "$HVM" checkpoint delete up "$p"
        fi
        [ "$(msha up --checkpoint root)" = "$r0" ] || fail "delete-up $above $i: root changed"
        [ "$(msha up)" = "$n0" ] || fail "delete-up $above $i: now changed"
        grep -q "$p" "$HVM_STORE/vms/up/vm.json" && fail "delete-up $above $i: P is still in vm.json"
        if [ $above = Q ]; then
            [ "$(msha up --checkpoint "Q$i")" = "$q0" ] || fail "delete-up $above $i: Q changed"
            "$HVM" checkpoint delete up "Q$i"
        fi
        [ "$(ls "$HVM_STORE/vms/up/disks" | wc -l)" = 2 ] ||
            fail "delete-up $above $i: files left: $(ls "$HVM_STORE/vms/up/disks")"
    done
    vm_check up
done

# ---- export ----
timed "$HVM" vm export tk "$T/ex-first"
max=$took
t_now=$(msha tk)
i=0
while [ $i -lt $SMALL ]; do
    i=$((i + 1))
    crash $max "$HVM" vm export tk "$T/ex$i"
    [ "$(msha tk)" = "$t_now" ] || fail "export $i: the VM changed"
    if [ -e "$T/ex$i" ]; then
        "$HVM" vm import "$T/ex$i" --dry-run --mode copy --name probe >/dev/null ||
            fail "export $i: DEST exists but is not a complete bundle"
    fi
    vm_check tk
    # exporting again works, and clears what the killed one left
    rm -rf "$T/ex$i"
    "$HVM" vm export tk "$T/ex$i" >/dev/null
    ls -a "$T" | grep -q "^ex$i\.exporting" && fail "export $i: a temporary folder is left"
    true
done

# ---- import ----
cp -a "$T/ex-first" pristine
timed "$HVM" vm import "$T/ex-first" --mode copy --name im0
max=$took
i=0
while [ $i -lt $SMALL ]; do
    i=$((i + 1))
    crash $max "$HVM" vm import "$T/ex-first" --mode copy --name "im$i"
    "$HVM" vm list >/dev/null   # the next store command cleans up
    ls -a "$HVM_STORE/vms" | grep -q '^\.importing' && fail "import $i: a temporary folder is left"
    if [ -e "$HVM_STORE/vms/im$i" ]; then
        vm_check "im$i"
        [ "$(msha "im$i")" = "$t_now" ] || fail "import $i: the imported VM is not complete"
    fi
    diff -r "$T/ex-first" pristine >/dev/null || fail "import $i: the bundle changed"
done

# ---- move ----
"$HVM" vm create mv --new-disk 8M >/dev/null
vm_write mv 0x07 0 3M
"$HVM" checkpoint take mv K >/dev/null
vm_write mv 0x08 1M 3M
k0=$(msha mv --checkpoint K); n0=$(msha mv)
timed "$HVM" vm move mv "$T/mv-first"
max=$took
i=0
where="$T/mv-first"
while [ $i -lt $SMALL ]; do
    i=$((i + 1))
    crash $max "$HVM" vm move mv "$T/mv$i"
    "$HVM" vm list | grep -q "^mv " || fail "move $i: mv is not listed"
    vm_check mv
    [ "$(msha mv)" = "$n0" ] && [ "$(msha mv --checkpoint K)" = "$k0" ] || fail "move $i: content changed"
    now_at=$(cd "$HVM_STORE/vms/mv" && pwd -P)
    if [ "$now_at" = "$(cd "$T" && pwd -P)/mv$i" ]; then
        [ ! -e "$where" ] || fail "move $i: moved, but the old folder $where is still there"
        where="$T/mv$i"
    else
        [ "$now_at" = "$(cd "$where" && pwd -P)" ] || fail "move $i: the VM is at $now_at"
        [ ! -e "$T/mv$i" ] || fail "move $i: not moved, but DEST $T/mv$i was left behind"
    fi
    ls -a "$T" | grep -q "\.moving-" && fail "move $i: a temporary copy is left: $(ls -a "$T" | grep moving)"
    ls -a "$HVM_STORE/vms" | grep -q "^\.mov" && fail "move $i: a temporary entry is left"
    true
done

# ---- create from a base, delete: the base registry follows ----
"$HVM" vhd create base.vhd --size 8M
timed "$HVM" vm create c0 --from base.vhd
max=$took
registry_matches() { # the base's children are exactly the VMs made from it
    "$HVM" base list --json >bases.json
    json_get bases.json "sorted(d['bases'][0]['children'])" >have.txt
    for v in $("$HVM" vm list --json >vms.json; json_get vms.json "' '.join(v['name'] for v in d)"); do
        case $v in c*) json_get "$HVM_STORE/vms/$v/vm.json" "d['id']" ;; esac
    done | $PY -c "import sys; print(sorted(l.strip() for l in sys.stdin if l.strip()))" >want.txt
    cmp -s have.txt want.txt || fail "$1: registry $(cat have.txt), VMs $(cat want.txt)"
}
i=0
while [ $i -lt $SMALL ]; do
    i=$((i + 1))
    crash $max "$HVM" vm create "c$i" --from base.vhd
    "$HVM" vm list >/dev/null
    ls -a "$HVM_STORE/vms" | grep -q '^\.creating' && fail "create $i: a temporary folder is left"
    [ ! -e "$HVM_STORE/vms/c$i" ] || vm_check "c$i"
    registry_matches "create $i"
    [ ! -e "$HVM_STORE/vms/c$((i - 1))" ] || crash $max "$HVM" vm delete "c$((i - 1))"
    "$HVM" vm list >/dev/null
    ls -a "$HVM_STORE/vms" | grep -q '^\.deleting' && fail "delete $i: a temporary folder is left"
    registry_matches "delete $i"
done
for v in $("$HVM" vm list --json >vms.json; json_get vms.json "' '.join(v['name'] for v in d)"); do
    case $v in c*) "$HVM" vm delete "$v" ;; esac
done
"$HVM" base remove base.vhd

# ---- a linked clone: afterwards there is no clone or a complete one, and
# the registry names only VMs that exist ----
registry_ids_exist() {
    "$HVM" base list --json >bases.json
    $PY - bases.json "$HVM_STORE/vms" <<'PYEOF' || fail "$1: the registry names a VM that does not exist"
import json, os, sys
ids = {json.load(open(os.path.join(sys.argv[2], v, "vm.json")))["id"]
       for v in os.listdir(sys.argv[2]) if not v.startswith(".")}
for b in json.load(open(sys.argv[1]))["bases"]:
    for c in b["children"]:
        if c not in ids:
            sys.exit(1)
PYEOF
}
root_sha=$(msha up --checkpoint root)
timed "$HVM" vm create k0 --clone up --checkpoint root
max=$took
i=0
while [ $i -lt $SMALL ]; do
    i=$((i + 1))
    crash $max "$HVM" vm create "k$i" --clone up --checkpoint root
    "$HVM" vm list >/dev/null
    ls -a "$HVM_STORE/vms" | grep -q '^\.creating' && fail "clone $i: a temporary folder is left"
    if [ -e "$HVM_STORE/vms/k$i" ]; then
        vm_check "k$i"
        [ "$(msha "k$i")" = "$root_sha" ] || fail "clone $i: does not read as the checkpoint"
        "$HVM" vm delete "k$i"
    fi
    registry_ids_exist "clone $i"
done
"$HVM" vm delete k0
vm_check up

echo "killed $killed operations mid-way, $finished finished before the kill"
[ $killed -gt 0 ] || fail "no operation was interrupted"
echo ok
