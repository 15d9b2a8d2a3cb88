# Helpers for the tests of VM networking (t81, t84-t89). Source it first, before
# lib.sh: the script then runs again inside a network namespace of its own
# (unshare -n), and the host's namespace is checked to have the same hvm
# interfaces afterwards. Inside, "$HVM" is a wrapper that refuses to run in
# the host's namespace; source lib.sh, vmlib.sh, rtlib.sh and then call
# net_setup.
TESTS=${TESTS:-$(cd "$(dirname "$0")/.." && pwd)}
if [ "${HVM_NETNS_INNER:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "skipped: needs root (network namespaces, taps)"; exit 77; }
    for c in unshare ip nsenter; do
        command -v $c >/dev/null || { echo "skipped: no $c"; exit 77; }
    done
    # hvm's bridges and taps (hvm-, hvm_, hvmt, hvv- of VLANs) and the
    # tests' own veths (v0, veth...) must never appear there.
    _host_ifs() { ip -br link | awk '{print $1}' | grep -E '^(hv|veth|v[0-9])' | sort || true; }
    _before=$(_host_ifs)
    _rc=0
    HVM_NETNS_INNER=1 HVM_HOST_NS=$(readlink /proc/self/ns/net) unshare -n sh "$0" || _rc=$?
    _after=$(_host_ifs)
    if [ "$_before" != "$_after" ]; then
        echo "FAIL: the host's network namespace changed: hvm interfaces '$_before' -> '$_after'" >&2
        exit 1
    fi
    exit $_rc
fi

# net_setup: after lib.sh, vmlib.sh and rtlib.sh.
net_setup() {
    [ "$(readlink /proc/$$/ns/net)" != "$HVM_HOST_NS" ] || fail "the test is in the host's network namespace"
    cat >"$T/hvm" <<WRAP
#!/bin/sh
[ "\$(readlink /proc/\$\$/ns/net)" != "$HVM_HOST_NS" ] || { echo "FAIL: hvm in the host's network namespace" >&2; exit 99; }
exec "$HVM" "\$@"
WRAP
    chmod +x "$T/hvm"
    HVM="$T/hvm"
    ip link set lo up
    CTL="$TESTS/../scripts/guest/guestctl.py"
}
type_cmd() { $PY "$CTL" type "$HVM_STORE/vms/$1/run/console.sock" "$2" >/dev/null; }
# guest_do VM TAG SECONDS COMMAND: types COMMAND followed by "&& echo TAG-OK ||
# echo TAG-FAILED" and waits for either; returns 0 on OK. (The echo of the
# typed line, wrapped at 80 columns, must not match: the tag is typed split.)
guest_do() {
    console_mark "$1"
    type_cmd "$1" "$4 && echo $2-\"\"OK || echo $2-\"\"FAILED"
    wait_console "$1" "^$2-(OK|FAILED)" "$3"
    console_since "$1" | grep -q "^$2-OK"
}
# guest_ip VM CIDR: the guest's first ethernet adapter up with CIDR.
guest_ip() {
    guest_do "$1" IPSET 30 "n=\$(ls /sys/class/net | grep -v lo | head -1); ip link set \$n up && ip addr add $2 dev \$n" ||
        fail "$1: cannot set its address $2"
}
