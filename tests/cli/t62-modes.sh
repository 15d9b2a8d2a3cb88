#!/bin/sh
# Who may read a store: its owner, and the group `hvm` where it exists
# ($HVM_GROUP names another): configurations, disks and memory states are
# 0640 with that group (0600 without one; a read-only layer 0440/0400),
# folders 0750, lock files 0600, whatever the umask and whichever command
# made them (create, clone, import, move, checkpoint, set, export). Another
# user can neither read a VM's disk or vm.json nor take its or the store's
# lock, and root's commands keep working.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups --"
$NOBODY true 2>/dev/null || skip "setpriv cannot change user here"

# modes_ok DIR GROUP: every folder 0750, lock 0600, other files 0640/0440
# with GROUP (or 0600/0400 when GROUP is empty), run/ left out.
modes_ok() {
    $PY - "$1" "$2" <<'PYEOF' || fail "modes under $1 (group '$2')"
import grp, os, stat, sys
top, group = sys.argv[1], sys.argv[2]
gid = grp.getgrnam(group).gr_gid if group else None
bad = []
for root, dirs, files in os.walk(top):
    dirs[:] = [d for d in dirs if not (root == top and d == "run")]
    for name in [root] + [os.path.join(root, f) for f in files]:
        st = os.lstat(name)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            want = {0o750}
        elif os.path.basename(name) == "lock":
            want = {0o600}
        else:
            want = {0o640, 0o440} if gid is not None else {0o600, 0o400}
        if mode not in want:
            bad.append("%s is %o" % (name, mode))
        if gid is not None and os.path.basename(name) != "lock" and st.st_gid != gid:
            bad.append("%s has group %d, not %s" % (name, st.st_gid, group))
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
PYEOF
}

# The whole story under one umask and one group setting.
story() { # UMASK GROUP-ENV EXPECTED-GROUP
    export HVM_STORE="$T/s-$1-${3:-none}"
    (
        umask "$1"
        export HVM_GROUP="$2"
        "$HVM" vhd create "$T/base-$1-${3:-none}.vhd" --size 16M
        "$HVM" vm create a --from "$T/base-$1-${3:-none}.vhd" >/dev/null 2>&1
        "$HVM" checkpoint take a one >/dev/null
        "$HVM" vm set a --new-disk 4M --slot 1 >/dev/null
        "$HVM" vm create c --clone a >/dev/null
        "$HVM" vm create d --new-disk 4M >/dev/null
        "$HVM" vm export a "$T/ex-$1-${3:-none}" >/dev/null
        "$HVM" vm import "$T/ex-$1-${3:-none}" --name b --mode copy >/dev/null
        "$HVM" vm move d "$T/moved-$1-${3:-none}/d" >/dev/null
    ) || fail "the story under umask $1"
    modes_ok "$HVM_STORE" "$3"
    modes_ok "$T/ex-$1-${3:-none}" "$3"
    modes_ok "$T/moved-$1-${3:-none}/d" "$3"
}

default_group=$(getent group hvm >/dev/null && echo hvm || true)
story 000 "" "$default_group"
story 077 "" "$default_group"
# A group that exists everywhere stands in for hvm.
story 000 bin bin
story 027 bin bin

# --- another user: nothing to read, no lock to take
S="$T/s-000-${default_group:-none}"
chmod 755 "$T" # (the test's own folder is closed to others)
disk=$(ls "$S/vms/a/disks/"*.vhd | head -1)
for f in "$S/vms/a/vm.json" "$disk" "$S/bases.json"; do
    $NOBODY cat "$f" >/dev/null 2>&1 && fail "another user reads $f"
done
$NOBODY flock -n "$S/vms/a/lock" true 2>/dev/null && fail "another user takes the VM's lock"
$NOBODY flock -n "$S/lock" true 2>/dev/null && fail "another user takes the store's lock"
# Not only the folders: with a way in, the files themselves are closed.
chmod o+x "$S" "$S/vms" "$S/vms/a" "$S/vms/a/disks"
for f in "$S/vms/a/vm.json" "$disk"; do
    $NOBODY cat "$f" >/dev/null 2>&1 && fail "another user reads $f through open folders"
done
$NOBODY $PY -c 'import fcntl, os, sys
for p in sys.argv[1:]:
    try:
        fd = os.open(p, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        continue
    sys.exit("took " + p)' "$S/vms/a/lock" "$S/lock" || fail "another user takes a lock through open folders"
# root's commands work, and set the folders back
HVM_STORE="$S" "$HVM" vm check a || fail "root: vm check"
HVM_STORE="$S" "$HVM" checkpoint take a two >/dev/null || fail "root: checkpoint take"
HVM_STORE="$S" "$HVM" vm list >/dev/null || fail "root: vm list"
[ "$(stat -c %a "$S/vms/a")" = 750 ] && [ "$(stat -c %a "$S")" = 750 ] || fail "the folders' modes were not set back"
echo ok
