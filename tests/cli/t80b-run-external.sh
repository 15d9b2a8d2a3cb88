#!/bin/sh
# An external switch: the test's namespace plays the host, whose NIC is the
# veth v0; its other end v1 is in a second namespace playing the physical
# network (a router with a DHCP server, dnsmasq, and 10.99.0.1 behind it).
# switch up makes v0 a port of the bridge and moves the host's addresses and
# routes (the default route too) to it; a TCP connection of the host's
# stays up through up, down and up; a guest on the switch gets its address
# from the physical network's DHCP and reaches the router and the host;
# down and delete put the addresses and routes back exactly; a bridge
# deleted by hand still lets down give them back. Refused: no uplink, a
# missing or bridge uplink, an uplink carrying the route to SSH_CONNECTION
# (without --force), a port of a bond (when the kernel has bonding).
[ -z "${T80B_X:-}" ] || set -x
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
command -v dnsmasq >/dev/null || skip "no dnsmasq for the physical network's DHCP"
net_setup
# (the caller's own login must not decide the refusals below)
unset SSH_CONNECTION
PEER=
stop_all() {
    kill_running_vms
    if [ -n "$PEER" ] && [ -e /proc/$PEER/ns/net ]; then
        ns=$(readlink /proc/$PEER/ns/net)
        for d in /proc/[0-9]*; do
            [ "$(readlink $d/ns/net 2>/dev/null)" = "$ns" ] && kill -9 ${d#/proc/} 2>/dev/null
        done
        kill -9 $PEER 2>/dev/null || true
    fi
    [ -z "${NC_PID:-}" ] || kill -9 $NC_PID 2>/dev/null || true
    true
}
EXTRA_CLEANUP=stop_all
peer() { nsenter -t $PEER -n "$@"; }

unshare -n sleep 100000 &
PEER=$!
sleep 0.2
ip link add v0 type veth peer name v1 netns $PEER
ip addr add 192.168.90.2/24 dev v0
ip -6 addr add fd90::2/64 dev v0
ip link set v0 up
peer ip link set lo up
peer ip addr add 10.99.0.1/32 dev lo
peer ip addr add 192.168.90.1/24 dev v1
peer ip -6 addr add fd90::1/64 dev v1 nodad
peer ip link set v1 up
ip route add default via 192.168.90.1
ip route add 10.98.0.0/16 via 192.168.90.1 metric 50
ip -6 route add default via fd90::1
peer dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --bind-interfaces \
    --interface=v1 --except-interface=lo --dhcp-range=192.168.90.100,192.168.90.150,1h \
    --dhcp-option=option:router,192.168.90.1 --dhcp-leasefile="$T/peer.leases" \
    --pid-file= --user=root --log-facility="$T/peer-dnsmasq.log" &
# The host's own view of v0, without its link-local address (the NIC keeps
# it; the bridge has its own) once DAD is over.
i=0; while ip addr show dev v0 | grep -q tentative; do i=$((i+1)); [ $i -lt 100 ] || fail "v0: DAD does not end"; sleep 0.1; done
dad_done() { i=0; while ip addr show dev v0 | grep -q tentative; do i=$((i+1)); [ $i -lt 100 ] || fail "v0: DAD does not end"; sleep 0.1; done; }
# (an IPv6 address given back to v0 goes through DAD again, as it first did)
ip_state() { dad_done; ip addr show dev v0 | grep -v "fe80\|valid_lft"; ip route show table all | grep -v fe80; }
ip_state >"$T/before"
mac=$(ip -j link show v0 | json_get /dev/stdin "d[0]['address']")

# Refusals (the store made first, so that each prints its one line).
"$HVM" switch create p --type private >/dev/null 2>&1
"$HVM" switch delete p >/dev/null
expect_fail 2 "$HVM" switch create e --type external
last_error | grep -q "needs --uplink" || fail "no uplink: $(last_error)"
expect_fail 2 "$HVM" switch create e --type private --uplink v0
expect_fail 2 "$HVM" switch create e --type external --uplink nosuch0
last_error | grep -q "uplink nosuch0: no such interface" || fail "missing uplink: $(last_error)"
ip link add brx type bridge
expect_fail 2 "$HVM" switch create e --type external --uplink brx
last_error | grep -q "is a bridge" || fail "bridge uplink: $(last_error)"
ip link del brx
expect_fail 2 env SSH_CONNECTION="10.99.0.7 40000 192.168.90.2 22" "$HVM" switch create e --type external --uplink v0
last_error | grep -q "the route to 10.99.0.7, where you are logged in from (SSH_CONNECTION), goes through uplink v0.*--force" ||
    fail "login route: $(last_error)"
"$HVM" switch list --json | json_get /dev/stdin "len(d)" | grep -qx 0 || fail "a refused create recorded a switch"
# Logged in through another interface (lo): fine. Through v0 with --force: fine.
SSH_CONNECTION="127.0.0.1 40000 127.0.0.1 22" "$HVM" switch create e2 --type external --uplink v0 >/dev/null
"$HVM" switch delete e2 >/dev/null
SSH_CONNECTION="10.99.0.7 40000 192.168.90.2 22" "$HVM" switch create ext --type external --uplink v0 --force >/dev/null
expect_fail 2 "$HVM" switch create ext2 --type external --uplink v0
last_error | grep -q "uplink of switch 'ext' already" || fail "one uplink, two switches: $(last_error)"
ip_state >"$T/after-create"
diff "$T/before" "$T/after-create" >&2 || fail "create changed the host's network"

# A TCP connection of the host's through v0, kept open through every change.
# (busybox nc ends at the end of its input: each side reads a fifo the
# test holds open, read-write so that no write can raise SIGPIPE)
mkfifo "$T/fifo" "$T/fifo-s"
exec 3<>"$T/fifo" 4<>"$T/fifo-s"
peer busybox nc -l -p 5000 <"$T/fifo-s" >"$T/tcp.out" &
sleep 0.3
busybox nc 192.168.90.1 5000 <"$T/fifo" &
NC_PID=$!
tcp_line() {
    echo "$1" >&3
    i=0; while ! grep -qx "$1" "$T/tcp.out"; do i=$((i+1)); [ $i -lt 300 ] || fail "the host's TCP connection lost '$1'"; sleep 0.1; done
}
tcp_line before

SSH_CONNECTION="10.99.0.7 40000 192.168.90.2 22" "$HVM" switch up ext >"$T/up.out"
grep -q "uplink v0 is a port of the bridge; its addresses (192.168.90.2/24,fd90::2/64) and 3 routes" "$T/up.out" ||
    fail "switch up: $(cat "$T/up.out")"
[ "$(ip -j link show v0 | json_get /dev/stdin "d[0].get('master')")" = hvm-ext ] || fail "v0 is no port of hvm-ext"
[ "$(ip -j link show hvm-ext | json_get /dev/stdin "d[0]['address']")" = "$mac" ] || fail "the bridge has not v0's MAC"
! ip addr show dev v0 | grep -q "192.168.90.2\|fd90::2" || fail "v0 kept an address: $(ip addr show dev v0)"
ip addr show dev hvm-ext | grep -q "inet 192.168.90.2/24" || fail "no IPv4 address on the bridge"
ip addr show dev hvm-ext | grep -q "inet6 fd90::2/64" || fail "no IPv6 address on the bridge"
ip route | grep -q "^default via 192.168.90.1 dev hvm-ext" || fail "default route: $(ip route)"
ip route | grep -q "^10.98.0.0/16 via 192.168.90.1 dev hvm-ext metric 50" || fail "route 10.98/16: $(ip route)"
ip -6 route | grep -q "^default via fd90::1 dev hvm-ext" || fail "IPv6 default route: $(ip -6 route)"
tcp_line after-up
ping -c 1 -W 5 10.99.0.1 >/dev/null || fail "the host cannot reach beyond the router"
ping -6 -c 1 -W 5 fd90::1 >/dev/null || fail "the host cannot reach the router over IPv6"
"$HVM" switch show ext --json >"$T/show.json"
[ "$(json_get "$T/show.json" "(d['type'], d['uplink'], d['state'], d['ports'], d['uplink_addresses'])")" = \
  "('external', 'v0', 'up', ['v0'], ['192.168.90.2/24', 'fd90::2/64'])" ] || fail "switch show: $(cat "$T/show.json")"
"$HVM" switch show ext | grep -q "^Uplink:   v0 (its addresses" || fail "switch show (text)"
"$HVM" switch up ext >/dev/null # again: nothing changes
[ "$(ip -o addr show dev hvm-ext | grep -c 192.168.90.2)" = 1 ] || fail "a second up doubled the address"

# A guest on the switch: DHCP from the physical network, then the router and the host.
guest_vm g shell --nic ext
"$HVM" vm start g --accel "$ACCEL"
wait_console g "HVM-GUEST READY" 120
cat >"$T/dhcp-cmd" <<'GUEST'
printf '#!/bin/sh\ncase "$1" in bound|renew) ip addr add $ip/$mask dev $interface; [ -z "$router" ] || ip route add default via $router ;; esac\n' >/tmp/dhcp.sh; chmod +x /tmp/dhcp.sh; ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -T 3 -s /tmp/dhcp.sh >/dev/null 2>&1 && ip -4 -o addr show dev eth0
GUEST
guest_do g DHCP 240 "$(cat "$T/dhcp-cmd")" || { cat "$T/peer-dnsmasq.log" >&2; fail "the guest got no address from the physical network"; }
console_since g | grep -q "inet 192.168.90.1[0-5][0-9]/24" || fail "no 192.168.90.100-150 address: $(console_since g | tail -3)"
guest_do g PING 60 "ping -c 2 -W 5 10.99.0.1 >/dev/null" || fail "the guest cannot reach beyond the router"
guest_do g PINGH 60 "ping -c 2 -W 5 192.168.90.2 >/dev/null" || fail "the guest cannot reach the host's address"
tcp_line with-guest
expect_fail 2 "$HVM" switch down ext
last_error | grep -q "has ports of VMs" || fail "down with a VM: $(last_error)"
expect_fail 2 "$HVM" switch delete ext
"$HVM" vm turn-off g
wait_state g Off 20
for i in $(seq 100); do [ "$(ip -j link show master hvm-ext | json_get /dev/stdin "len(d)")" = 1 ] && break; sleep 0.05; done

# down: everything back, the connection still up.
"$HVM" switch down ext >"$T/down.out"
grep -q "uplink v0 has its addresses and routes back" "$T/down.out" || fail "down: $(cat "$T/down.out")"
ip_state >"$T/after-down"
diff "$T/before" "$T/after-down" >&2 || fail "switch down did not put the host's network back"
! ip link show hvm-ext >/dev/null 2>&1 || fail "the bridge outlived down"
[ ! -e "$HVM_STORE/switches/ext/uplink.json" ] || fail "uplink.json outlived down"
tcp_line after-down

# The bridge deleted by hand (as a crash could leave the host): down still gives the addresses back.
"$HVM" switch up ext >/dev/null
ip link del hvm-ext
! ip addr | grep -q "192.168.90.2/" || fail "the address outlived its bridge"
"$HVM" switch down ext >/dev/null
ip_state >"$T/after-crash"
diff "$T/before" "$T/after-crash" >&2 || fail "down after the bridge vanished did not restore"

# delete of an up switch restores too.
"$HVM" switch up ext >/dev/null
tcp_line again-up
"$HVM" vm delete g >/dev/null
"$HVM" switch delete ext >/dev/null
ip_state >"$T/after-delete"
diff "$T/before" "$T/after-delete" >&2 || fail "switch delete did not put the host's network back"
[ ! -e "$HVM_STORE/switches/ext" ] || fail "switch delete left its folder"
tcp_line after-delete
exec 3>&- 4>&-

# A bond as the uplink, and a bond's port refused (when the kernel has bonding).
if ip link add hb0 type bond mode active-backup 2>/dev/null; then
    ip link add v2 type veth peer name v3 netns $PEER
    ip link set v2 master hb0
    ip link set hb0 up
    ip addr add 192.168.91.2/24 dev hb0
    expect_fail 2 "$HVM" switch create eb --type external --uplink v2
    last_error | grep -q "is a port of hb0" || fail "bond port: $(last_error)"
    "$HVM" switch create eb --type external --uplink hb0 >/dev/null
    "$HVM" switch up eb >/dev/null
    ip addr show dev hvm-eb | grep -q "192.168.91.2/24" || fail "the bond's address did not move"
    "$HVM" switch delete eb >/dev/null
    ip addr show dev hb0 | grep -q "192.168.91.2/24" || fail "the bond's address did not come back"
else
    echo "note: no bonding in this kernel: the bond case is not run"
fi
echo "t80b-run-external: ok"
