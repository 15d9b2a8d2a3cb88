#!/bin/sh
# The store's own safety. Reading commands never make a store: a mistyped
# --store (or $HVM_STORE) is refused with one line and leaves nothing behind,
# and listing the default store of a host that has none lists nothing (exit
# 0) without making it; the commands that make a VM (create, import) make
# the store and say so once.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

# refused_nothing_made WHAT CMD...: exit 2, one line naming WHAT as no store.
no_store() {
    what=$1; shift
    expect_fail 2 "$@"
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err" >&2; fail "$*: more than one line"; }
    grep -qF "$what: no hvm store here (hvm vm create makes one)" "$T/.err" ||
        { cat "$T/.err" >&2; fail "$*: not the no-store message"; }
}

# --- 1. a mistyped store is refused by every reading or changing command
typo="$T/stroe"
for cmd in "vm list" "vm show a" "vm check a" "vm delete a" "vm rename a b" "vm set a --cpus 2" \
           "base list" "base remove x.vhd" "checkpoint list a" "checkpoint take a" \
           "vm export a $T/ex" "vm move a $T/mv"; do
    # shellcheck disable=SC2086
    no_store "$typo" "$HVM" $cmd --store "$typo"
    [ ! -e "$typo" ] || fail "$cmd --store made $typo"
    # shellcheck disable=SC2086
    HVM_STORE="$typo" no_store "$typo" "$HVM" $cmd
    [ ! -e "$typo" ] || fail "$cmd with HVM_STORE made $typo"
done
[ ! -e "$T/ex" ] && [ ! -e "$T/mv" ] || fail "a refused command made its destination"
# A folder that exists but holds no store is no store either.
mkdir "$T/plain"
no_store "$T/plain" "$HVM" vm list --store "$T/plain"
no_store "$T/plain" "$HVM" base list --store "$T/plain"
[ "$(ls -A "$T/plain")" = "" ] || fail "vm list wrote into a folder that is no store"

# --- 2. the default store of a host without one: an empty listing, nothing made
# (as an ordinary user, whose default is ~/.local/share/hvm)
if setpriv --reuid=65534 --regid=65534 --clear-groups -- "$HVM" --version >/dev/null 2>&1; then
    mkdir "$T/home"; chown 65534:65534 "$T/home"; chmod 755 "$T"
    printf '#!/bin/sh\nexec env -u HVM_STORE HOME="%s" setpriv --reuid=65534 --regid=65534 --clear-groups -- "%s" "$@"\n' \
        "$T/home" "$HVM" >"$T/hvm-home"
    chmod 755 "$T/hvm-home"
    for cmd in "vm list" "vm list --json" "base list"; do
        # shellcheck disable=SC2086
        "$T/hvm-home" $cmd >"$T/list.out" 2>"$T/list.err" ||
            { cat "$T/list.err" >&2; fail "$cmd on a host without a store failed"; }
        [ ! -s "$T/list.err" ] || { cat "$T/list.err" >&2; fail "$cmd: printed to stderr"; }
        [ ! -e "$T/home/.local" ] || fail "$cmd made the default store"
    done
    "$T/hvm-home" vm list --json >"$T/list.out"
    [ "$(tr -d ' \n' <"$T/list.out")" = "[]" ] || fail "vm list --json of no store: $(cat "$T/list.out")"
    no_store "$T/home/.local/share/hvm" "$T/hvm-home" vm show a
    [ ! -e "$T/home/.local" ] || fail "vm show made the default store"
fi

# --- 3. create and import make the store, and say so once
"$HVM" vm create a --new-disk 16M --store "$T/new" >"$T/c.out" 2>"$T/c.err"
[ "$(cat "$T/c.err")" = "hvm: created store $T/new" ] || fail "first create: stderr '$(cat "$T/c.err")'"
"$HVM" vm create b --new-disk 16M --store "$T/new" >"$T/c.out" 2>"$T/c.err"
[ ! -s "$T/c.err" ] || fail "second create: stderr '$(cat "$T/c.err")'"
"$HVM" vm list --store "$T/new" | grep -q "^a " || fail "the new store does not list a"
# A clone needs a VM of the store: a missing store stays missing.
no_store "$T/nothere" "$HVM" vm create c --clone a --store "$T/nothere"
[ ! -e "$T/nothere" ] || fail "a refused clone made the store"
"$HVM" vm export a "$T/bundle" --store "$T/new" >/dev/null
# A dry run looks at the store, never makes it.
"$HVM" vm import "$T/bundle" --dry-run --store "$T/imp" >/dev/null 2>"$T/i.err" ||
    { cat "$T/i.err" >&2; fail "import --dry-run into no store"; }
[ ! -e "$T/imp" ] || fail "import --dry-run made the store"
"$HVM" vm import "$T/bundle" --store "$T/imp" >/dev/null 2>"$T/i.err"
[ "$(cat "$T/i.err")" = "hvm: created store $T/imp" ] || fail "first import: stderr '$(cat "$T/i.err")'"
"$HVM" vm check a --store "$T/imp" >/dev/null

# --- 4. a base whose file is gone: listed as missing, a problem of the store
# check, and 'base remove' drops its entry when no VM uses it
S="$T/bs"
"$HVM" vhd create base.vhd --size 16M
"$HVM" vhd create base2.vhd --size 16M
"$HVM" vm create u --from base.vhd --store "$S" 2>/dev/null >/dev/null
"$HVM" vm create w --from base2.vhd --store "$S" >/dev/null
"$HVM" vm delete u --store "$S"
"$HVM" vm check --store "$S" >"$T/chk.out" || { cat "$T/chk.out" >&2; fail "store check of a clean store"; }
rm -f base.vhd base2.vhd
"$HVM" base list --store "$S" >"$T/bl.out"
grep -F "$T/base.vhd" "$T/bl.out" | grep -q "MISSING" || { cat "$T/bl.out" >&2; fail "base list: base.vhd not marked missing"; }
grep -F "$T/base2.vhd" "$T/bl.out" | grep -q "MISSING" || { cat "$T/bl.out" >&2; fail "base list: base2.vhd not marked missing"; }
"$HVM" base list --json --store "$S" >"$T/bl.json"
[ "$(json_get "$T/bl.json" "[b['missing'] for b in d['bases']]")" = "[True, True]" ] || fail "base list --json: missing"
set +e; "$HVM" vm check --store "$S" >"$T/chk.out" 2>"$T/chk.err"; rc=$?; set -e
[ $rc = 1 ] || { cat "$T/chk.out" "$T/chk.err" >&2; fail "store check with a missing base exited $rc"; }
grep -F "store: problem: base $T/base.vhd is registered but its file is gone" "$T/chk.out" >/dev/null ||
    { cat "$T/chk.out" >&2; fail "store check does not name the missing base"; }
grep -F "store: problem: base $T/base2.vhd of 1 VM is missing" "$T/chk.out" >/dev/null ||
    { cat "$T/chk.out" >&2; fail "store check does not name the missing base of w"; }
grep -q "^w: problem:" "$T/chk.out" || fail "store check does not check w"
"$HVM" base remove base.vhd --store "$S" || fail "base remove of a gone base"
expect_fail 2 "$HVM" base remove base2.vhd --store "$S"
grep -q "base of 1 VM" "$T/.err" || fail "base remove of a used gone base: $(last_error)"
"$HVM" base list --json --store "$S" >"$T/bl.json"
[ "$(json_get "$T/bl.json" "[b['file'] for b in d['bases']]")" = "['$T/base2.vhd']" ] ||
    fail "base remove left $(cat "$T/bl.json")"
expect_fail 2 "$HVM" base remove base.vhd --store "$S"
grep -q "no base of that name is registered" "$T/.err" || fail "second base remove: $(last_error)"
"$HVM" vm delete w --store "$S"
"$HVM" base remove base2.vhd --store "$S"
"$HVM" vm check --store "$S" >/dev/null || fail "store check after the removals"

# --- 5. memory states a killed save or online checkpoint left half-written
"$HVM" vm create m --new-disk 16M --store "$S" >/dev/null
"$HVM" checkpoint take m one --store "$S" >/dev/null
id=$("$HVM" checkpoint show m one --json --store "$S" | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo partial >"$S/vms/m/checkpoints/$id.state.saving"
echo unrecorded >"$S/vms/m/checkpoints/saved-1700000000.state"
"$HVM" vm check m --store "$S" >"$T/chk.out" || { cat "$T/chk.out" >&2; fail "vm check with a left-over .saving"; }
[ ! -e "$S/vms/m/checkpoints/$id.state.saving" ] || fail "the .saving file is still there"
[ ! -e "$S/vms/m/checkpoints/saved-1700000000.state" ] || fail "the unrecorded saved state is still there"

# --- 6. move: an imported VM's relative base moves with it (from any
# folder), and no destination lies inside a VM folder
"$HVM" vhd create base3.vhd --size 16M
"$HVM" vm create o --from base3.vhd --store "$S" >/dev/null
"$HVM" vm export o "$T/ob" --store "$S" >/dev/null
"$HVM" vm import "$T/ob" --name imp --mode copy --store "$S" >/dev/null
[ "$(json_get "$S/vms/imp/vm.json" "d['base']")" = bases/base3.vhd ] || fail "the import's base is not relative"
mkdir "$T/elsewhere"
(cd "$T/elsewhere" && "$HVM" vm move imp "$T/moved" --with-base --store "$S") || fail "move --with-base of an imported VM"
[ -f "$T/moved/bases/base3.vhd" ] || fail "the base did not move with the VM"
"$HVM" vm check imp --store "$S" >/dev/null || fail "the moved VM is not clean"
refused_move() { # WHAT VM DEST
    expect_fail 2 "$HVM" vm move "$2" "$3" --store "$S"
    grep -qF "$1" "$T/.err" || fail "move $2 $3: $(last_error)"
    [ ! -e "$3" ] || fail "move $2 $3 made it"
}
refused_move "inside the folder of VM 'imp'" o "$T/moved/sub/o"
[ ! -e "$T/moved/sub" ] || fail "a refused move made a folder in another VM"
refused_move "inside the folder of VM 'o' itself" o "$S/vms/o/disks/o"
refused_move "inside the folder of VM 'o' itself" o "$S/vms/o/deeper/o"
[ ! -e "$S/vms/o/deeper" ] || fail "a refused move made a folder in its own VM"
refused_move "inside the store's folder of VMs" o "$S/vms/o2"
# and into a VM folder reached through a link
ln -s "$T/moved" "$T/link"
refused_move "inside the folder of VM 'imp'" o "$T/link/o"
"$HVM" vm check --store "$S" >/dev/null || fail "the store is not clean after the refused moves"

# --- 7. lock files: 0600 (an older one is set so), emptied when released
"$HVM" vhd create base4.vhd --size 16M
"$HVM" vm create l --new-disk 16M --store "$S" >/dev/null
"$HVM" vm check l --store "$S" >/dev/null
[ "$(stat -c %a "$S/vms/l/lock")" = 600 ] || fail "VM lock mode $(stat -c %a "$S/vms/l/lock")"
[ "$(stat -c %a "$S/lock")" = 600 ] || fail "store lock mode $(stat -c %a "$S/lock")"
chmod 644 "$S/vms/l/lock" "$S/lock"
"$HVM" vm check l --store "$S" >/dev/null
"$HVM" vm create l2 --from base4.vhd --store "$S" >/dev/null
[ "$(stat -c %a "$S/vms/l/lock")" = 600 ] || fail "the VM lock was not set to 0600"
[ "$(stat -c %a "$S/lock")" = 600 ] || fail "the store lock was not set to 0600"
[ ! -s "$S/lock" ] && [ ! -s "$S/vms/l/lock" ] || fail "a released lock still names a holder"
# A lock file that is a link is never followed.
mv "$S/vms/l/lock" "$T/l.lock"; ln -s "$T/l.lock" "$S/vms/l/lock"
expect_fail 2 "$HVM" vm check l --store "$S"
grep -q "lock: a link, not a lock file" "$T/.err" || fail "a linked lock: $(last_error)"
rm "$S/vms/l/lock"

# A busy VM names the command that has it.
"$HVM" vm serve l --socket "$T/l.sock" --store "$S" 2>/dev/null & SERVE_PID=$!
while [ ! -S "$T/l.sock" ]; do kill -0 $SERVE_PID || fail "vm serve died"; sleep 0.05; done
expect_fail 2 "$HVM" vm show l --store "$S"
grep -q "VM 'l' is busy: another hvm command is working on it (PID $SERVE_PID ($(basename "$HVM") vm serve l --socket $T/l.sock --store $S) for [0-9]* s)" "$T/.err" ||
    fail "busy: $(last_error)"
kill -TERM $SERVE_PID; wait $SERVE_PID; SERVE_PID=

# The store lock is waited for $HVM_LOCK_TIMEOUT seconds (default 10), then
# the waiter gives up naming the holder. The holder here is a create stuck
# reading the registry (a FIFO) while it holds the store lock.
mv "$S/bases.json" "$T/bases.save"; mkfifo "$S/bases.json"
"$HVM" vm create h1 --from base4.vhd --store "$S" >/dev/null 2>&1 & HOLDER=$!
i=0; until [ -s "$S/lock" ]; do i=$((i + 1)); [ $i -lt 400 ] || fail "the holder never took the lock"; sleep 0.05; done
waiter() { # TIMEOUT-ENV: runs a second create, sets took (seconds)
    t0=$(date +%s)
    env $1 timeout 60 "$HVM" vm create h2 --from base4.vhd --store "$S" >"$T/.out" 2>"$T/.err" && fail "the waiter did not give up"
    took=$(( $(date +%s) - t0 ))
}
waiter HVM_LOCK_TIMEOUT=1
grep -q "^hvm: $S/lock: held by PID $HOLDER ($(basename "$HVM") vm create h1 --from base4.vhd --store $S) for [0-9]* s; gave up after 1 s$" "$T/.err" ||
    { cat "$T/.err" >&2; fail "timed-out waiter: wrong message"; }
[ "$took" -lt 9 ] || fail "HVM_LOCK_TIMEOUT=1 waited $took s"
waiter HVM_LOCK_TIMEOUT=
grep -q "gave up after 10 s$" "$T/.err" || { cat "$T/.err" >&2; fail "default timeout"; }
[ "$took" -ge 10 ] || fail "the default wait was $took s"
cat "$T/bases.save" >"$S/bases.json"
wait $HOLDER || fail "the holder failed"
[ ! -e "$S/vms/h2" ] || fail "a waiter that gave up made its VM"
"$HVM" vm check --store "$S" >/dev/null || fail "the store is not clean after the lock waits"
echo ok
