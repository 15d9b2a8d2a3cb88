#!/bin/sh
# Guest to guest on a private switch: two guests on switch lab ping each
# other through the bridge and their taps; a third, on the private switch
# other with an address of the same subnet, reaches neither of them (nor
# they it). Everything in a network namespace of the test's own (netlib.sh).
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup

"$HVM" switch create lab --type private >/dev/null
"$HVM" switch create other --type private >/dev/null
for v in a b c; do
    sw=lab; [ $v = c ] && sw=other
    guest_vm $v shell --nic $sw
    "$HVM" vm start $v --accel "$ACCEL"
done
for v in a b c; do wait_console $v "HVM-GUEST READY" 120; done
guest_ip a 10.40.0.1/24
guest_ip b 10.40.0.2/24
guest_ip c 10.40.0.3/24
[ "$(ip -j link show master hvm-lab | json_get /dev/stdin "len(d)")" = 2 ] || fail "lab: two taps expected: $(ip -br link)"
[ "$(ip -j link show master hvm-other | json_get /dev/stdin "len(d)")" = 1 ] || fail "other: one tap expected"
guest_do a PING 90 "ping -c 3 -W 5 10.40.0.2 >/dev/null" || fail "a cannot ping b on the private switch lab"
guest_do b PING 90 "ping -c 3 -W 5 10.40.0.1 >/dev/null" || fail "b cannot ping a"
! guest_do c PING 90 "ping -c 2 -W 3 10.40.0.1 >/dev/null" || fail "c (switch other) reaches a (switch lab)"
! guest_do a PING 90 "ping -c 2 -W 3 10.40.0.3 >/dev/null" || fail "a (switch lab) reaches c (switch other)"
# The host has no address on a private switch: it cannot reach the guests either.
! ping -c 1 -W 2 10.40.0.1 >/dev/null 2>&1 || fail "the host reaches a guest of a private switch"
for v in a b c; do "$HVM" vm turn-off $v; done
echo "t86-run-private: ok"
