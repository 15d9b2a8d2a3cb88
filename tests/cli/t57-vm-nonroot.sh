#!/bin/sh
# A store owned by an ordinary user (here "nobody", through setpriv): the
# frozen checkpoint layers are read-only files (mode 0444) that the owner
# cannot open for writing as they are, yet deleting a checkpoint must merge
# into or rebase exactly those. Every checkpoint operation, export, import
# and check works for the owner, every moment keeps its content, and the
# frozen layers are read-only again afterwards.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

REAL_HVM=$HVM
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups --"
# The helpers create sockets in $T as the user: let it in.
chmod 1777 "$T"
mkdir "$T/nr"
chown 65534:65534 "$T/nr"
$NOBODY "$REAL_HVM" --version >/dev/null 2>&1 || skip "nobody cannot run $REAL_HVM (a parent folder is closed)"
cat >"$T/hvm-nobody" <<EOF
#!/bin/sh
exec $NOBODY "$REAL_HVM" "\$@"
EOF
chmod 755 "$T/hvm-nobody"
HVM="$T/hvm-nobody"
export HVM_STORE="$T/nr/store"

"$HVM" vm create a --new-disk 16M >/dev/null
[ "$(stat -c %u "$HVM_STORE/vms/a/vm.json")" = 65534 ] || fail "the store is not the user's"
vm_write a 0x11 0 8M;    "$HVM" checkpoint take a A >/dev/null
vm_write a 0x12 1M 64k;  "$HVM" checkpoint take a B >/dev/null
vm_write a 0x13 2M 64k;  "$HVM" checkpoint take a C >/dev/null
vm_write a 0x14 3M 1M
for x in A B C; do vm_flat a "a.$x" --checkpoint "$x"; done
vm_flat a a.now

frozen_read_only() { # every checkpoint layer of VM has no write bit
    for _f in $(json_get "$HVM_STORE/vms/$1/vm.json" "' '.join(dr['file'] for c in d['checkpoints'] for dr in c['config']['drives'])"); do
        [ -z "$(find "$HVM_STORE/vms/$1/$_f" -perm /222)" ] || fail "$1: $_f is writable: $(ls -l "$HVM_STORE/vms/$1/$_f")"
    done
}
same() { # VM NAME...: those checkpoints (and now) read as saved
    _v=$1; shift
    for _x in "$@"; do rm -f cur; vm_flat "$_v" cur --checkpoint "$_x"; cmp -s cur "a.$_x" || fail "$_v: $_x changed"; done
    rm -f cur; vm_flat "$_v" cur; cmp -s cur a.now || fail "$_v: now changed"
}
frozen_read_only a

# B's only child C owns less: C is merged up into B's read-only layer.
"$HVM" checkpoint delete a B
same a A C
frozen_read_only a
"$HVM" vm check a >/dev/null
# A, the root, folds into C's read-only layer.
"$HVM" checkpoint delete a A
same a C
frozen_read_only a
"$HVM" vm check a >/dev/null

# apply, revert, export, import as the user
"$HVM" checkpoint apply a C --take-first >/dev/null
rm -f cur; vm_flat a cur; cmp -s cur a.C || fail "apply C"
"$HVM" checkpoint revert a
rm -f cur; vm_flat a cur; cmp -s cur a.C || fail "revert to C"
"$HVM" vm export a "$T/nr/ex" >/dev/null
"$HVM" vm import "$T/nr/ex" --mode copy --name b >/dev/null
rm -f cur; vm_flat b cur --checkpoint C; cmp -s cur a.C || fail "import: C"
frozen_read_only b
"$HVM" vm check a >/dev/null
"$HVM" vm check b >/dev/null
"$HVM" vm delete b >/dev/null
"$HVM" vm delete a >/dev/null
echo ok
