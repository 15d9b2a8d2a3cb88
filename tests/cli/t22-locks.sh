#!/bin/sh
# The per-file write lock (docs/locks.md): a writer of a layer holds an OFD
# lock on one byte of it, exclusive, and shared on the parents its chain
# reads. Every writing verb is refused on a file in use, with a message
# naming its owner (a VM and its drive, a base and its VMs, or "another
# process"); inspection and read-only serving keep working; a registered
# base that other VMs use is not merged into even with --force.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
command -v qemu-io >/dev/null 2>&1 || skip "qemu-io not installed"

# refused WHAT CMD...: exit 2, and the one line of stderr contains WHAT.
refused() {
    what=$1; shift
    expect_fail 2 "$@"
    grep -qF "$what" "$T/.err" || { cat "$T/.err" >&2; fail "$*: message lacks '$what'"; }
}
SERVE2_PID=
second_serve() { # FILE SOCKET [OPTION...]: a second server, pid in SERVE2_PID
    "$HVM" vhd serve "$1" --socket "$2" ${3:-} 2>"$T/serve2.err" &
    SERVE2_PID=$!
    i=0
    while [ ! -S "$2" ]; do
        kill -0 $SERVE2_PID 2>/dev/null || { cat "$T/serve2.err" >&2; fail "second serve of $1 exited"; }
        i=$((i + 1)); [ $i -lt 400 ] || fail "second serve: no socket"
        sleep 0.05
    done
}
stop_second() {
    kill -TERM $SERVE2_PID
    wait $SERVE2_PID || fail "second serve exited with an error"
    SERVE2_PID=
}
VMS_PID=
kill_second() {
    for p in $SERVE2_PID $VMS_PID ${ro:-} ${py:-}; do kill -9 $p 2>/dev/null || true; done
}
EXTRA_CLEANUP=kill_second

# --- plain files: a chain b.vhd <- c.vhd, and a lone dynamic d.vhd
"$HVM" vhd create b.vhd --size 16M
"$HVM" vhd diff b.vhd c.vhd
"$HVM" vhd create d.vhd --size 16M
busy="in use by another process (locked for writing)"

serve_start c.vhd "$T/c.sock"
qemu-io -f raw -c "write -P 0x5c 0 64k" "$URI" >/dev/null
# The lock is one byte far above QEMU's (100-300), an OFD lock.
ino=$(stat -c %i c.vhd)
grep -q "OFDLCK *ADVISORY *WRITE.*:$ino 20361087035637760 20361087035637760" /proc/locks \
    || { cat /proc/locks >&2; fail "no OFD write lock on byte 0x48564d00000000 of c.vhd"; }
ino=$(stat -c %i b.vhd)
grep -q "OFDLCK *ADVISORY *READ.*:$ino 20361087035637760 20361087035637760" /proc/locks \
    || fail "no OFD read lock on the parent b.vhd"

# A second read-write server of the same file: refused.
refused "c.vhd is $busy" timeout 10 "$HVM" vhd serve c.vhd --socket "$T/c2.sock"
[ ! -e "$T/c2.sock" ] || fail "the refused server left a socket"
# Every verb that writes c.vhd.
refused "c.vhd is $busy" "$HVM" vhd merge c.vhd --force
refused "c.vhd is $busy" "$HVM" vhd rebase c.vhd --standalone
refused "c.vhd is $busy" "$HVM" vhd set-parent c.vhd b.vhd
refused "c.vhd is $busy" "$HVM" vhd compact c.vhd
refused "c.vhd is $busy" "$HVM" vhd repair c.vhd
# Nor may a layer still being written become a parent (it would be frozen).
refused "c.vhd is $busy" "$HVM" vhd diff c.vhd c2.vhd
[ ! -e c2.vhd ] || fail "a child of the served disk was created"
[ -w c.vhd ] || fail "the served disk was protected as a parent"
# The parent is read by the served chain: nobody may write it.
refused "b.vhd is in use by another process (read as the parent of a disk in use)" \
    "$HVM" vhd resize b.vhd --size 32M --force
refused "b.vhd is in use by another process" "$HVM" vhd compact b.vhd
# Inspection works while it is served, and so does a read-only server.
"$HVM" vhd info c.vhd >/dev/null
check_clean c.vhd
check_clean b.vhd
"$HVM" vhd serve b.vhd --socket "$T/b.sock" --read-only 2>"$T/ro.err" &
ro=$!
second_serve c.vhd "$T/c3.sock" --read-only
[ "$(qemu-io -r -f raw -c "read -P 0x5c 0 64k" "nbd+unix:///?socket=$T/c3.sock" | grep -c "verification failed")" = 0 ] \
    || fail "read-only serve beside the writer reads wrong data"
stop_second
kill -TERM $ro; wait $ro || fail "read-only serve of b.vhd failed"
ro=
# qemu-img's own locking on the file is not disturbed by ours.
qemu-img info --image-opts "$(qvpc c.vhd)" >/dev/null || fail "qemu-img info of a served file"
serve_stop
# Released with the server: the verbs work again.
"$HVM" vhd compact c.vhd >/dev/null
"$HVM" vhd resize d.vhd --size 32M
check_clean c.vhd

# Two read-only servers share the file; a writer beside them is allowed too
# (readers take no lock: a running VM's disk stays inspectable).
serve_start d.vhd "$T/d1.sock" --read-only
second_serve d.vhd "$T/d2.sock" --read-only
"$HVM" vhd resize d.vhd --size 48M
stop_second
serve_stop

# A lock held by any process, not only hvm: an OFD write lock on the byte.
$PY - d.vhd <<'EOF' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0x48564d << 32, 1, 0))
open(sys.argv[1] + ".held", "w").close()
time.sleep(30)
EOF
py=$!
while [ ! -e d.vhd.held ]; do kill -0 $py || fail "locking helper died"; sleep 0.05; done
refused "d.vhd is $busy" "$HVM" vhd resize d.vhd --size 64M
kill $py; wait $py 2>/dev/null || true
py=

# --- a VM's disk while `hvm vm serve` serves it read-write
"$HVM" vhd create gb.vhd --size 16M
"$HVM" vm create a1 --from gb.vhd >/dev/null
"$HVM" vm create a2 --from gb.vhd >/dev/null
leaf1=$(ls "$HVM_STORE"/vms/a1/disks/*.vhd)
leaf2=$(ls "$HVM_STORE"/vms/a2/disks/*.vhd)
"$HVM" vm serve a1 --socket "$T/a1.sock" 2>"$T/vmserve.err" &
vms=$! VMS_PID=$!
while [ ! -S "$T/a1.sock" ]; do kill -0 $vms || fail "vm serve a1 exited"; sleep 0.05; done
owner="is drive 0 of VM 'a1', which another hvm command (such as 'hvm vm serve') is using"
refused "$owner" "$HVM" vhd resize "$leaf1" --size 32M
refused "$owner" timeout 10 "$HVM" vhd serve "$leaf1" --socket "$T/x.sock"
(cd "$HVM_STORE/vms/a1" && expect_fail 2 "$HVM" vhd compact disks/"$(basename "$leaf1")")
grep -qF "hvm: disks/$(basename "$leaf1") $owner" "$T/.err" || { cat "$T/.err" >&2; fail "compact: message"; }
# The base is read by a1's served chain: named with its VMs.
refused "gb.vhd is the base image of VMs 'a1', 'a2', and a running VM or a server reads it" \
    "$HVM" vhd compact gb.vhd
"$HVM" vhd info "$leaf1" >/dev/null
check_clean "$leaf1"
second_serve "$leaf1" "$T/a1r.sock" --read-only
stop_second
kill -TERM $vms; wait $vms || fail "vm serve a1 failed"
VMS_PID=

# The other way round: `hvm vhd serve` writes a1's disk; the VM commands
# that would write it or freeze it as a checkpoint's layer refuse.
serve_start "$leaf1" "$T/l1.sock"
other="is drive 0 of VM 'a1', and another process uses it (locked for writing)"
refused "$other" timeout 10 "$HVM" vm serve a1 --socket "$T/a1b.sock"
refused "$other" "$HVM" checkpoint take a1 c1
[ "$(jget "$HVM_STORE/vms/a1/vm.json" checkpoints)" = "[]" ] || fail "a checkpoint was taken"
[ -w "$leaf1" ] || fail "the refused checkpoint froze the disk"
serve_stop
"$HVM" vm check a1 >/dev/null || fail "a1 is broken after the refused checkpoint"

# --- a registered base with two VMs: merging a1's disk into it is refused
# even with --force, naming the other VM; nothing changed.
before=$(sha gb.vhd)
refused "is the base image of the other VM 'a2': merging $leaf1 into it would break it (even with --force)" \
    "$HVM" vhd merge "$leaf1" --force
refused "gb.vhd is the base image of the VMs 'a1', 'a2': resizing it would break them" \
    "$HVM" vhd resize gb.vhd --size 32M --force
[ "$(sha gb.vhd)" = "$before" ] || fail "the base changed"
[ -e "$leaf1" ] || fail "a1's disk was removed"
"$HVM" vm check a1 >/dev/null || fail "a1 is broken"
"$HVM" vm check a2 >/dev/null || fail "a2 is broken"
# No store (a mistyped HVM_STORE): the check is skipped, nothing is created.
HVM_STORE="$T/nostore" "$HVM" vhd merge c.vhd --force
[ ! -e "$T/nostore" ] || fail "vhd merge created a store"
echo "t22 ok"
