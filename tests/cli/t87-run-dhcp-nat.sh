#!/bin/sh
# An internal switch with --dhcp and --nat: hvm's dnsmasq gives the guest an
# address (udhcpc), the guest pings the host's address on the switch and,
# through NAT, fetches a page from a server in a second namespace that plays
# "the internet" (which has no route to the switch's subnet); a published
# port (switch forward) reaches a service in the guest from there. switch
# show reports dnsmasq and the lease; a dnsmasq that died is reported and
# started again by switch up; down and delete leave no dnsmasq, no table.
# Everything in a network namespace of the test's own (netlib.sh).
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
command -v nft >/dev/null || skip "no nft (Debian's nftables) to look at the rules"
net_setup
INET_PID= HTTPD_PID=
stop_all() {
    kill_running_vms
    # Everything in "the internet" namespace is this test's (httpd, nc).
    if [ -n "$INET_PID" ] && [ -e /proc/$INET_PID/ns/net ]; then
        ns=$(readlink /proc/$INET_PID/ns/net)
        for d in /proc/[0-9]*; do
            [ "$(readlink $d/ns/net 2>/dev/null)" = "$ns" ] && kill -9 ${d#/proc/} 2>/dev/null
        done
    fi
    [ -z "$HTTPD_PID" ] || kill -9 $HTTPD_PID 2>/dev/null || true
    # dnsmasq would keep the namespace alive.
    for p in "$HVM_STORE"/switches/*/dnsmasq.pid; do
        [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null || true
    done
    true
}
EXTRA_CLEANUP=stop_all
sw_json() { "$HVM" switch show "$1" --json >"$T/show.json"; json_get "$T/show.json" "$2"; }
dnsmasq_pid() { cat "$HVM_STORE/switches/net/dnsmasq.pid" 2>/dev/null || echo none; }

"$HVM" switch create net --type internal --address 10.60.0.1/24 --dhcp --nat >/dev/null
expect_fail 2 "$HVM" switch create p --type private --dhcp
last_error | grep -q "only an internal switch with an IPv4 --address" || fail "--dhcp on a private switch: $(last_error)"
expect_fail 2 "$HVM" switch create q --type internal --address fd00::1/64 --nat
"$HVM" switch up net >/dev/null
[ "$(sw_json net "d['dhcp']['state'], d['dhcp']['range'], d['nat']['state']")" = "running 10.60.0.128,10.60.0.254 active" ] ||
    fail "switch show after up: $(cat "$T/show.json")"
pid=$(dnsmasq_pid)
tr '\0' ' ' </proc/$pid/cmdline | grep -q -- "--port=0 --bind-interfaces --interface=hvm-net" || fail "dnsmasq's options: $(tr '\0' ' ' </proc/$pid/cmdline)"
nft list table inet hvm-net | grep -q "masquerade" || fail "no masquerade rule: $(nft list ruleset)"
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || fail "ip_forward is off"
# Again: nothing changes, the same dnsmasq.
"$HVM" switch up net >/dev/null
[ "$(dnsmasq_pid)" = "$pid" ] || fail "switch up again started another dnsmasq"

# A dnsmasq that dies is reported, and started again by switch up.
kill -9 "$pid"
i=0; while kill -0 "$pid" 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ] || fail "dnsmasq did not die"; sleep 0.05; done
[ "$(sw_json net "d['dhcp']['state']")" = stopped ] || fail "a dead dnsmasq is reported $(cat "$T/show.json")"
"$HVM" switch up net >/dev/null
[ "$(sw_json net "d['dhcp']['state']")" = running ] || fail "switch up did not start dnsmasq again"

# "The internet": a namespace joined by a veth, with a web server; no route to 10.60.0.0/24.
unshare -n sleep 100000 &
INET_PID=$!
inet() { nsenter -t $INET_PID -n "$@"; }
sleep 0.2
ip link add veth-h type veth peer name veth-i netns $INET_PID
ip addr add 192.168.77.1/24 dev veth-h
ip link set veth-h up
inet ip addr add 192.168.77.2/24 dev veth-i
inet ip link set veth-i up
inet ip link set lo up
mkdir -p "$T/www"
echo "PAGE-FROM-THE-INTERNET" >"$T/www/page.txt"
nsenter -t $INET_PID -n busybox httpd -f -p 192.168.77.2:80 -h "$T/www" &
HTTPD_PID=$!

guest_vm g shell --nic net
"$HVM" vm start g --accel "$ACCEL"
wait_console g "HVM-GUEST READY" 120
# busybox udhcpc only asks; this script sets what it got.
cat >"$T/dhcp-cmd" <<'GUEST'
printf '#!/bin/sh\ncase "$1" in bound|renew) ip addr add $ip/$mask dev $interface; [ -z "$router" ] || ip route add default via $router ;; esac\n' >/tmp/dhcp.sh; chmod +x /tmp/dhcp.sh; ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -T 3 -s /tmp/dhcp.sh >/dev/null 2>&1 && ip -4 -o addr show dev eth0
GUEST
guest_do g DHCP 120 "$(cat "$T/dhcp-cmd")" || { cat "$HVM_STORE/switches/net/dnsmasq.log" >&2; fail "the guest got no address by DHCP"; }
addr=$(console_since g | sed -n 's/.*inet \(10\.60\.0\.[0-9]*\)\/24.*/\1/p' | head -1)
[ -n "$addr" ] || fail "no 10.60.0.x/24 address in the guest: $(console_since g | tail -5)"
n=${addr##*.}
[ "$n" -ge 128 ] && [ "$n" -le 254 ] || fail "$addr is not in the DHCP range"
guest_do g PING 60 "ping -c 3 -W 5 10.60.0.1 >/dev/null" || fail "the guest cannot ping the host's address"
[ "$(sw_json net "[(l['address'], l.get('vm')) for l in d['dhcp']['leases']]")" = "[('$addr', 'g')]" ] ||
    fail "switch show: the lease: $(cat "$T/show.json")"
"$HVM" switch show net | grep -q "lease $addr .* VM g" || fail "switch show (text): no lease line"

# Through NAT to "the internet".
# (busybox-static's wget crashes in the guest: nc speaks HTTP/1.0 instead.)
guest_do g HTTP 60 "printf 'GET /page.txt HTTP/1.0\\r\\n\\r\\n' | nc -w 10 192.168.77.2 80 | grep PAGE-FROM" ||
    fail "the guest cannot reach the internet namespace through NAT"
console_since g | grep -q "PAGE-FROM-THE-INTERNET" || fail "the page did not arrive"

# A published port: host port 8080 of the host's addresses to the guest's 7777.
"$HVM" switch forward net --port 8080:g:7777 >"$T/fw.out"
grep -q "tcp port 8080 -> VM g port 7777 at $addr" "$T/fw.out" || fail "switch forward: $(cat "$T/fw.out")"
nft list table inet hvm-net | grep -q "tcp dport 8080 dnat ip to $addr:7777" || fail "no DNAT rule: $(nft list table inet hvm-net)"
grep -qi "$addr" "$HVM_STORE/switches/net/hosts" || fail "the address is not reserved for the adapter"
[ "$("$HVM" switch forward net --json | json_get /dev/stdin "[(f['host_port'], f['vm'], f['port'], f['address']) for f in d]")" = "[(8080, 'g', 7777, '$addr')]" ] ||
    fail "switch forward --json"
expect_fail 2 "$HVM" switch forward net --port 8080:g:22
last_error | grep -q "forwarded twice" || fail "a second forward of 8080: $(last_error)"
expect_fail 2 "$HVM" switch forward net --port 8081:nosuchvm:22
type_cmd g "echo GUEST-SERVICE | nc -l -p 7777 &"
sleep 1
out=$(inet busybox nc -w 10 192.168.77.1 8080 </dev/null || true)
[ "$out" = "GUEST-SERVICE" ] || fail "the published port did not reach the guest's service: '$out'"
"$HVM" switch forward net --remove 8080 >/dev/null
! nft list table inet hvm-net | grep -q "dport 8080" || fail "the DNAT rule outlived --remove"

expect_fail 2 "$HVM" switch down net
"$HVM" vm turn-off g
wait_state g Off 20
for i in $(seq 100); do [ "$(ip -j link show master hvm-net | json_get /dev/stdin "len(d)")" = 0 ] && break; sleep 0.05; done
pid=$(dnsmasq_pid)
"$HVM" switch down net >/dev/null
! kill -0 "$pid" 2>/dev/null || fail "dnsmasq outlived switch down"
! nft list table inet hvm-net >/dev/null 2>&1 || fail "the NAT table outlived switch down"
"$HVM" vm delete g >/dev/null
"$HVM" switch delete net >/dev/null
[ ! -e "$HVM_STORE/switches/net" ] || fail "switch delete left its folder"
echo "t87-run-dhcp-nat: ok"
