#!/bin/sh
# The security guards of an adapter, nftables on the tap's ingress: guest a has
# the defaults (MAC spoofing off, DHCP and router guard off), guest b has
# MAC spoofing on and both guards on. Both reach the host's address on an
# internal switch; a DHCP server in a (busybox udhcpd) answers the host's
# DHCP client, the same server in b does not (DHCP guard); after each guest
# changes its own MAC (ip link set address), a no longer reaches the host
# (its frames are dropped) and b still does. b's --max-bandwidth is there as
# a rate limit each way (its effect is measured by bench/net.sh). Everything in a network
# namespace of the test's own (netlib.sh).
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
command -v nft >/dev/null || skip "no nft (Debian's nftables) to look at the rules"
net_setup

"$HVM" switch create lan --type internal --address 10.70.0.1/24 >/dev/null
guest_vm a shell --nic lan
guest_vm b shell --nic lan
mac_b=$("$HVM" vm show b --json | json_get /dev/stdin "d['nics'][0]['mac']")
expect_fail 2 "$HVM" vm set b --mac-spoofing on
expect_fail 2 "$HVM" vm set b --set-nic "$mac_b" --max-bandwidth 20000
"$HVM" vm set b --set-nic "$mac_b" --mac-spoofing on --dhcp-guard on --router-guard on \
    --max-bandwidth 20 >/dev/null
[ "$("$HVM" vm show b --json | json_get /dev/stdin "sorted(k for k, v in d['nics'][0].items() if v is True)")" = \
  "['dhcp_guard', 'mac_spoofing', 'router_guard']" ] || fail "vm show: the guards are not kept"
for v in a b; do "$HVM" vm start $v --accel "$ACCEL"; done
for v in a b; do wait_console $v "HVM-GUEST READY" 120; done

# The tables of the two taps: a's drops every other source MAC than its
# own; b's drops DHCP server messages, router advertisements and redirects
# and lets every MAC pass.
mac_a=$("$HVM" vm show a --json | json_get /dev/stdin "d['nics'][0]['mac']")
got=""
for tap in $(ip -j link show master hvm-lan | json_get /dev/stdin "' '.join(x['ifname'] for x in d)"); do
    t=$(nft list table netdev hvmg-$tap)
    echo "$t" | grep -q "hook ingress device \"$tap\"" || fail "$tap: table not bound to it: $t"
    if echo "$t" | grep -q "ether saddr != $mac_a drop"; then
        ! echo "$t" | grep -q "udp sport" || fail "a: a DHCP guard it does not have: $t"
        got="${got}a"
    elif echo "$t" | grep -q "udp sport 67 udp dport 68 drop" && echo "$t" | grep -q "nd-router-advert"; then
        ! echo "$t" | grep -q "ether saddr" || fail "b: a MAC guard though spoofing is on: $t"
        # --max-bandwidth 20: what b sends over 2500 kB/s is dropped, what it
        # receives is queued by a tbf qdisc.
        echo "$t" | grep -q "limit rate over 2500 kbytes/second burst 256 kbytes drop" || fail "b: no limit rule: $t"
        tc qdisc show dev $tap | grep -q "qdisc tbf .* rate 20Mbit" || fail "b: no tbf: $(tc qdisc show dev $tap)"
        got="${got}b"
    fi
done
[ "$(echo "$got" | fold -w1 | sort | tr -d '\n')" = ab ] || fail "the guard tables: $(nft list ruleset)"

guest_ip a 10.70.0.2/24
guest_ip b 10.70.0.3/24
guest_do a PING 60 "ping -c 2 -W 5 10.70.0.1 >/dev/null" || fail "a cannot reach the host"
guest_do b PING 60 "ping -c 2 -W 5 10.70.0.1 >/dev/null" || fail "b cannot reach the host"

# DHCP guard: a's DHCP server answers the host's client, b's does not.
conf="printf 'start 10.70.0.100\\nend 10.70.0.110\\ninterface eth0\\nlease_file /tmp/leases\\noption subnet 255.255.255.0\\n' >/tmp/u.conf; touch /tmp/leases"
dhcp_client() { busybox udhcpc -i hvm-lan -n -q -t 3 -T 2 -s /bin/true >/dev/null 2>&1; }
guest_do a UDHCPD 30 "$conf; udhcpd /tmp/u.conf" || fail "a: udhcpd does not start"
dhcp_client || fail "the DHCP server of a (no DHCP guard) does not answer"
guest_do a KILL 30 "killall udhcpd" || fail "a: udhcpd does not stop"
guest_do b UDHCPD 30 "$conf; udhcpd /tmp/u.conf" || fail "b: udhcpd does not start"
! dhcp_client || fail "the DHCP server of b answered through the DHCP guard"
guest_do b KILL 30 "killall udhcpd" || fail "b: udhcpd does not stop"

# A forged MAC: a's frames are dropped, b's pass.
forge="ip link set eth0 down && ip link set eth0 address 52:54:00:de:ad:0"
guest_do a FORGE 30 "${forge}1 && ip link set eth0 up && ip addr add 10.70.0.2/24 dev eth0 2>/dev/null; true" || fail "a: cannot change its MAC"
guest_do b FORGE 30 "${forge}2 && ip link set eth0 up && ip addr add 10.70.0.3/24 dev eth0 2>/dev/null; true" || fail "b: cannot change its MAC"
ip neigh flush dev hvm-lan
! guest_do a PING2 60 "ping -c 2 -W 3 10.70.0.1 >/dev/null" || fail "a reached the host with a forged MAC (MAC spoofing is off)"
guest_do b PING2 60 "ping -c 2 -W 5 10.70.0.1 >/dev/null" || fail "b (MAC spoofing on) cannot reach the host with its new MAC"
for v in a b; do "$HVM" vm turn-off $v; done
echo "t86b-run-guards: ok"
