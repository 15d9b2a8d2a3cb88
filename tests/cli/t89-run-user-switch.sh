#!/bin/sh
# A user switch named explicitly (switch create --type user): QEMU's
# user-mode networking, no bridge; a forward (switch forward) becomes
# QEMU's hostfwd on the VM's adapter when it starts, and reaches a service
# in the guest from the host's side. In a network namespace of the test's
# own (netlib.sh): the forwarded port is that namespace's.
. "$(dirname "$0")/netlib.sh"
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"
. "$TESTS/cli/rtlib.sh"
net_setup

"$HVM" switch create u --type user | grep -q "created user switch 'u'" || fail "switch create --type user"
[ "$("$HVM" switch show u --json | json_get /dev/stdin "d['type']")" = user ] || fail "switch show: not a user switch"
expect_fail 2 "$HVM" switch create u2 --type user --dhcp
guest_vm g shell --nic u
"$HVM" switch forward u --port 8022:g:7777 >"$T/fw.out"
grep -q "tcp port 8022 -> VM g port 7777" "$T/fw.out" || fail "switch forward: $(cat "$T/fw.out")"
expect_fail 2 "$HVM" switch forward u --port 8023:nosuchvm:22
"$HVM" vm start g --accel "$ACCEL"
wait_console g "HVM-GUEST READY" 120
# The worker's QEMU has the forward.
q=$("$HVM" vm show g --json | json_get /dev/stdin "d['qemu_pid']")
tr '\0' ' ' </proc/"$q"/cmdline | grep -q "user,model=virtio-net-pci,mac=[0-9a-f:]*,hostfwd=tcp::8022-:7777" ||
    fail "QEMU has no hostfwd=tcp::8022-:7777: $(tr '\0' ' ' </proc/"$q"/cmdline)"
cat >"$T/dhcp-cmd" <<'GUEST'
printf '#!/bin/sh\ncase "$1" in bound|renew) ip addr add $ip/$mask dev $interface ;; esac\n' >/tmp/dhcp.sh
GUEST
guest_do g SCRIPT 60 "$(cat "$T/dhcp-cmd")" || fail "cannot write the udhcpc script"
guest_do g DHCP 120 "chmod +x /tmp/dhcp.sh; ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -T 3 -s /tmp/dhcp.sh >/dev/null 2>&1" || fail "the guest got no address from QEMU's user networking"
type_cmd g "echo GUEST-SERVICE | nc -l -p 7777 &"
sleep 1
out=$(busybox nc -w 10 127.0.0.1 8022 </dev/null || true)
[ "$out" = "GUEST-SERVICE" ] || fail "the forwarded port did not reach the guest's service: '$out'"
"$HVM" switch forward u --remove 8022 >/dev/null
[ "$("$HVM" switch forward u --json | json_get /dev/stdin "len(d)")" = 0 ] || fail "forward --remove"
"$HVM" vm turn-off g
wait_state g Off 20
echo "t89-run-user-switch: ok"
