# A second host for the migration tests (t95, t96): after netlib.sh, lib.sh,
# vmlib.sh and rtlib.sh and net_setup. Host B is a network, mount and UTS
# namespace of its own (held by a sleeping process) joined to the test's
# namespace by a veth pair (10.95.0.1 here, 10.95.0.2 there), with its own
# hvm store ($T/hostb), an sshd on its veth address (a throwaway key pair
# in $T/ssh) and host A's store hidden under a tmpfs. The shared storage
# is $T/shared, which both see. hvmb runs hvm on host B.
command -v /usr/sbin/sshd >/dev/null || skip "no sshd (Debian's openssh-server)"
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || skip "no ssh (openssh-client)"
HVM_BIN=$(readlink -f "${HVM_REAL:-$BUILD/hvm}")
[ -x "$HVM_BIN" ] || HVM_BIN=$(sed -n 's/^exec "\(.*\)" "\$@"$/\1/p' "$HVM")
B_STORE=$T/hostb/store
SHARED_DIR=$T/shared
B_URL="ssh://root@10.95.0.2$B_STORE"
mkdir -p "$T/hostb" "$SHARED_DIR" "$T/ssh" "$HVM_STORE"
unshare -n -m -u --propagation private sleep 100000 &
B_PID=$!
for i in $(seq 50); do
    [ "$(readlink /proc/$B_PID/ns/net 2>/dev/null)" != "$(readlink /proc/$$/ns/net)" ] && break
    sleep 0.1
done
inb() { nsenter -t "$B_PID" -n -m -u "$@"; }
hvmb() { inb env HVM_STORE="$B_STORE" "$HVM_BIN" "$@"; }
migrate_cleanup() {
    # HVM_TEST_KEEP_LOGS=DIR: the VMs' logs of a failed run are kept there.
    if [ "${rc:-0}" != 0 ] && [ -n "${HVM_TEST_KEEP_LOGS:-}" ]; then
        mkdir -p "$HVM_TEST_KEEP_LOGS"
        for f in "$SHARED_DIR"/*/run/*.log; do [ -e "$f" ] && cp "$f" "$HVM_TEST_KEEP_LOGS/"; done
    fi
    # Guests on either host (their workers hold run/lock in the shared folder).
    for held in "$SHARED_DIR"/*/run/lock "$SHARED_DIR"/*/run/console.log; do
        [ -e "$held" ] || continue
        for pid in $(fuser "$held" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    done
    kill_running_vms
    [ -f "$T/ssh/sshd.pid" ] && kill "$(cat "$T/ssh/sshd.pid")" 2>/dev/null || true
    kill "$B_PID" 2>/dev/null || true
    wait "$B_PID" 2>/dev/null || true
}
EXTRA_CLEANUP=migrate_cleanup
ip link add mig0 type veth peer name mig1 netns "/proc/$B_PID/ns/net"
ip addr add 10.95.0.1/24 dev mig0
ip link set mig0 up
inb ip link set lo up
inb ip addr add 10.95.0.2/24 dev mig1
inb ip link set mig1 up
inb hostname hostb
inb mount -t tmpfs hidden "$HVM_STORE"
mkdir -p /run/sshd
inb mount -t tmpfs -o mode=0755 sshd /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/id"
cp "$T/ssh/id.pub" "$T/ssh/authorized_keys"
cat >"$T/ssh/sshd_config" <<CFG
ListenAddress 10.95.0.2
HostKey $T/ssh/host_key
AuthorizedKeysFile $T/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $T/ssh/sshd.pid
CFG
inb /usr/sbin/sshd -f "$T/ssh/sshd_config" -E "$T/ssh/sshd.log" || { cat "$T/ssh/sshd.log" >&2; fail "host B: sshd does not start"; }
cat >"$T/ssh/ssh" <<WRAP
#!/bin/sh
exec ssh -F none -i "$T/ssh/id" -o IdentitiesOnly=yes -o UserKnownHostsFile="$T/ssh/known_hosts" \
    -o StrictHostKeyChecking=accept-new -o ConnectTimeout=5 -o LogLevel=ERROR "\$@"
WRAP
chmod +x "$T/ssh/ssh"
export HVM_SSH="$T/ssh/ssh" HVM_REMOTE_HVM="$HVM_BIN"
for i in $(seq 50); do
    "$HVM_SSH" -o BatchMode=yes root@10.95.0.2 true 2>/dev/null && break
    [ $i -lt 50 ] || { cat "$T/ssh/sshd.log" >&2; fail "host B's sshd does not answer"; }
    sleep 0.2
done
[ "$(inb hostname)" = hostb ] || fail "host B has no UTS namespace of its own"
# A VM on the shared storage: its console log is there, whichever host runs it.
console_log() {
    if [ -e "$SHARED_DIR/$1" ]; then echo "$SHARED_DIR/$1/run/console.log"; else echo "$HVM_STORE/vms/$1/run/console.log"; fi
}
