#!/bin/sh
# Guests are hostile: QEMU runs as the unprivileged user hvm-qemu with its
# seccomp sandbox, no new privileges, no capabilities and only the
# descriptors it is given; the worker keeps only CAP_KILL, survives a
# client that hangs up mid-answer and writes no file outside the VM's
# folder whatever a request names. Online checkpoint take and apply still
# work confined. A vm.json written by hand with a MAC that smuggles QEMU
# options, or 60 adapters, is refused at start with a clear message and
# no QEMU; so is a root-only initrd from outside the VM's folder; a comma
# in a name reaches QEMU escaped; a missing user is named.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"

[ "$(id -u)" = 0 ] || skip "QEMU changes user only when hvm runs as root"
qemu_uid=$(id -u hvm-qemu 2>/dev/null) || fail "no user hvm-qemu (scripts/install-deps.sh creates it)"
field() { awk -v k="$2:" '$1 == k {print $2 $3 $4 $5}' "/proc/$1/status"; }
pid_of() { "$HVM" vm show "$1" --json | json_get /dev/stdin "d['$2']"; }

# confined_qemu VM: QEMU's identity, sandbox and descriptors.
confined_qemu() {
    q=$(pid_of "$1" qemu_pid)
    [ "$(field "$q" Uid)" = "$qemu_uid$qemu_uid$qemu_uid$qemu_uid" ] || fail "QEMU runs as uids $(field "$q" Uid)"
    [ "$(field "$q" Gid)" = "$(id -g hvm-qemu)$(id -g hvm-qemu)$(id -g hvm-qemu)$(id -g hvm-qemu)" ] || fail "QEMU's gids: $(field "$q" Gid)"
    [ "$(field "$q" Seccomp)" = 2 ] || fail "QEMU has no seccomp filter (Seccomp: $(field "$q" Seccomp))"
    [ "$(field "$q" NoNewPrivs)" = 1 ] || fail "QEMU may gain privileges"
    [ "$(field "$q" CapEff)" = 0000000000000000 ] || fail "QEMU has capabilities $(field "$q" CapEff)"
    [ "$(field "$q" CapPrm)" = 0000000000000000 ] || fail "QEMU may regain capabilities $(field "$q" CapPrm)"
    [ "$(field "$q" CapBnd)" = 0000000000000000 ] || fail "QEMU's bounding set is $(field "$q" CapBnd)"
    # Its descriptors: the null device, the worker's log, the console and firmware logs,
    # sockets (monitor, console, drives), memfds (RAM, kernel, initrd) and
    # QEMU's own eventfds, signalfd, epoll and pipes. No disk, no vm.json,
    # no lock, nothing else of the store or the host.
    for fd in /proc/"$q"/fd/*; do readlink "$fd"; done > fds.txt
    [ -s fds.txt ] || fail "cannot read QEMU's descriptors"
    grep -Ev "^(/dev/null|socket:\[[0-9]+\]|anon_inode:.*|pipe:\[[0-9]+\]|/memfd:.*|/dev/kvm|$HVM_STORE/vms/$1/run/(worker|console|firmware)\.log)\$" fds.txt \
        && fail "QEMU holds unexpected descriptors (above)"
    grep -q "^/memfd:hvm-kernel" fds.txt || fail "QEMU did not get the kernel as a memfd: $(cat fds.txt)"
    tr '\0' '\n' < "/proc/$q/cmdline" > cmdline.txt
    grep -qx -- "-sandbox" cmdline.txt && grep -qx -- "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny" cmdline.txt \
        || fail "no -sandbox on QEMU's command line"
    grep -q "$HVM_STORE" cmdline.txt && fail "a store path reached QEMU's command line: $(grep "$HVM_STORE" cmdline.txt)"
    true
}

"$HVM" vhd create base.vhd --size 64M
GUEST_ARGS="hvm.every=1" guest_vm c counter --from base.vhd --nic lan
"$HVM" vm start c --accel "$ACCEL"
console_mark c
wait_console c "HVM-GUEST COUNT 5$" 90
confined_qemu c

# The worker: no new privileges, only CAP_KILL (bit 5) in every set.
w=$(pid_of c worker_pid)
[ "$(field "$w" NoNewPrivs)" = 1 ] || fail "the worker may gain privileges"
for set in CapEff CapPrm CapBnd; do
    [ "$(field "$w" $set)" = 0000000000000020 ] || fail "worker's $set is $(field "$w" $set), not CAP_KILL alone"
done

# Clients of the control socket that hang up before the answer: the
# worker ignores SIGPIPE and keeps serving.
$PY - "$HVM_STORE/vms/c/run/ctl.sock" <<'PYEOF'
import socket, sys
for _ in range(20):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b'{"op":"status"}\n')
    s.close()
PYEOF
# Requests naming files outside the VM's folder (or none): refused, the
# guest keeps running, nothing is written.
$PY - "$HVM_STORE/vms/c/run/ctl.sock" "$T/outside" > replies.txt <<'PYEOF'
import json, socket, sys
for req in ({"op": "save", "memory": sys.argv[2] + "/m.state", "relative": "m.state"},
            {"op": "save"},
            {"op": "checkpoint", "memory": sys.argv[2] + "/c.state", "leaves": []},
            {"op": "checkpoint", "memory": "/../" + sys.argv[2] + "/c.state", "leaves": []}):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(json.dumps(req).encode() + b"\n")
    print(s.makefile().readline().strip())
    s.close()
PYEOF
cat replies.txt
[ "$(grep -c '"ok": *false.*outside the VM' replies.txt)" = 4 ] || fail "a request for a file outside the VM was not refused"
[ ! -e "$T/outside" ] && [ ! -e "/(null).saving" ] || fail "a file outside the VM was written"
sleep 0.5
kill -0 "$w" || fail "the worker died when a client hung up"
[ "$("$HVM" vm show c --json | json_get /dev/stdin "d['state']")" = Running ] || fail "the VM is no longer Running"

# Online checkpoint take and apply with the sandbox on (QEMU writes and
# then reads the memory state through descriptors the worker passes).
"$HVM" checkpoint take c online | grep -q "with memory" || fail "checkpoint take"
n=$(last_count c)
console_mark c
wait_console c "HVM-GUEST COUNT $((n + 5))$" 30
console_mark c
"$HVM" checkpoint apply c online
wait_first_count c 30
first=$(first_count c)
[ "$first" -ge $((n - 2)) ] && [ "$first" -le $((n + 3)) ] || fail "after apply the guest counts from $first, expected about $n"
confined_qemu c
"$HVM" vm turn-off c
wait_state c Off 20
"$HVM" vm check c

# The same smuggling inside a checkpoint's configuration, which becomes
# the VM's on apply: the resume is refused, no QEMU runs.
$PY - "$HVM_STORE/vms/c/vm.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["checkpoints"]:
    c["config"]["nics"][0]["mac"] = "52:54:00:12:34:56,guestfwd=tcp:10.0.2.100:1-cmd:/bin/true"
json.dump(d, open(sys.argv[1], "w"))
PYEOF
expect_fail 2 "$HVM" checkpoint apply c online
echo "refused: $(last_error)"
last_error | grep -qi "mac" || fail "unclear refusal of a checkpoint's MAC: $(last_error)"
pgrep -f "qemu-system-x86_64 -name guest=c$" && fail "a QEMU started for c"

# A MAC that carries options, written straight into vm.json of an Off VM:
# refused at start, nothing runs, nothing listens.
guest_vm inj shell --new-disk 16M --nic lan
vmj="$HVM_STORE/vms/inj/vm.json"
$PY - "$vmj" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["config"]["nics"][0]["mac"] = "52:54:00:12:34:56,hostfwd=tcp:127.0.0.1:45678-:22,tftp=/"
json.dump(d, open(sys.argv[1], "w"))
PYEOF
expect_fail 2 "$HVM" vm start inj --accel "$ACCEL"
echo "refused: $(last_error)"
last_error | grep -qi "mac" || fail "unclear refusal of the MAC: $(last_error)"
[ "$(wc -l < "$T/.err")" = 1 ] || fail "not one line: $(last_error)"
pgrep -f "qemu-system-x86_64 -name guest=inj" && fail "a QEMU started for inj"
[ "$(json_get "$vmj" "d['state']")" = Off ] || fail "inj is not Off after the refusal"

# 60 adapters (a fixed argv of 128 once overflowed at 51): a clear refusal.
$PY - "$vmj" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["config"]["nics"] = [{"switch": "lan", "mac": "52:54:00:00:00:%02x" % i} for i in range(60)]
json.dump(d, open(sys.argv[1], "w"))
PYEOF
expect_fail 2 "$HVM" vm start inj --accel "$ACCEL"
echo "refused: $(last_error)"
last_error | grep -Eqi "adapters|nics" || fail "unclear refusal of 60 adapters: $(last_error)"
pgrep -f "qemu-system-x86_64 -name guest=inj" && fail "a QEMU started for inj"

# No user to run QEMU as: a clear error naming it, nothing started.
$PY - "$vmj" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["config"]["nics"] = []
json.dump(d, open(sys.argv[1], "w"))
PYEOF
HVM_QEMU_USER=hvm-no-such-user expect_fail 2 "$HVM" vm start inj --accel "$ACCEL"
echo "refused: $(last_error)"
last_error | grep -q "user 'hvm-no-such-user' does not exist" || fail "unclear missing-user error: $(last_error)"
pgrep -f "qemu-system-x86_64 -name guest=inj" && fail "a QEMU started for inj"

# A kernel or initrd only root may read: refused from outside the VM's
# folder (a configuration must not carry /etc/shadow into guest memory),
# taken from inside it; QEMU itself could read neither.
cp "$GUEST/initrd.img" root-only.img
chmod 600 root-only.img
"$HVM" vm set inj --initrd "$T/root-only.img"
expect_fail 2 "$HVM" vm start inj --accel "$ACCEL"
echo "refused: $(last_error)"
last_error | grep -q "root-only.img: only root may read it" || fail "unclear refusal of a root-only initrd: $(last_error)"
pgrep -f "qemu-system-x86_64 -name guest=inj" && fail "a QEMU started for inj"
[ "$(json_get "$vmj" "d['state']")" = Off ] || fail "inj is not Off after the refusal"
cp root-only.img "$HVM_STORE/vms/inj/initrd.img"
"$HVM" vm set inj --initrd "$HVM_STORE/vms/inj/initrd.img"
console_mark inj
"$HVM" vm start inj --accel "$ACCEL"
wait_console inj "HVM-GUEST READY" 60
"$HVM" vm turn-off inj

# A comma in a VM name (the store allows it) reaches QEMU doubled: one
# value, not an option.
if "$HVM" vm create "x,debug-threads=on" --memory 64M >/dev/null 2>&1; then
    "$HVM" vm set "x,debug-threads=on" --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img"
    "$HVM" vm start "x,debug-threads=on" --accel "$ACCEL"
    q=$(pid_of "x,debug-threads=on" qemu_pid)
    tr '\0' '\n' < "/proc/$q/cmdline" | grep -qx "guest=x,,debug-threads=on" || fail "the name is not escaped: $(tr '\0' ' ' < "/proc/$q/cmdline")"
    "$HVM" vm turn-off "x,debug-threads=on"
fi
echo ok
