#!/bin/sh
# Virtual switches, the foundation of issue 12: hvm switch create (private,
# internal with an address; what comes later is refused in one line), list,
# show, up (bridges and addresses over netlink, idempotent), down, delete
# (refused while a VM's adapter names the switch, naming the VMs, or while
# its bridge has ports), switches.json kept compatible with the plain names
# of older stores, written atomically under the store lock; and a tap on a
# switch's bridge that goes away with the process holding it (kill -9).
#
# Everything runs in a network namespace this test makes (unshare -n): the
# outer part below only records the host's namespace and its hvm bridges,
# runs the test inside the new namespace and checks afterwards that the
# host's namespace has the same hvm bridges. Inside, every hvm command goes
# through hvm(), which refuses to run in the host's namespace.
set -eu
if [ "${T80_INNER:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "skipped: needs root (network namespaces)"; exit 77; }
    for c in unshare ip; do
        command -v $c >/dev/null || { echo "skipped: no $c"; exit 77; }
    done
    host_ns=$(readlink /proc/self/ns/net)
    host_bridges() { ip -br link | awk '{print $1}' | grep '^hvm[-_]' | sort || true; }
    before=$(host_bridges)
    rc=0
    T80_INNER=1 T80_HOST_NS=$host_ns unshare -n sh "$0" || rc=$?
    after=$(host_bridges)
    if [ "$before" != "$after" ]; then
        echo "FAIL: the host's network namespace changed: hvm interfaces '$before' -> '$after'" >&2
        exit 1
    fi
    exit $rc
fi

. "$TESTS/cli/lib.sh"
TAPHOLD=${BUILD:-}/tests/taphold
[ -x "$TAPHOLD" ] || skip "taphold helper not built (set BUILD)"
export HVM_STORE="$T/store"
SW="$HVM_STORE/switches.json"

ns_here() { readlink /proc/$$/ns/net; }
[ "$(ns_here)" != "$T80_HOST_NS" ] || fail "the test is in the host's network namespace"
# Every hvm command of this test: never in the host's namespace.
hvm() {
    [ "$(ns_here)" != "$T80_HOST_NS" ] || fail "hvm $* would run in the host's network namespace"
    "$HVM" "$@"
}
# link_get IFACE EXPR: a Python expression over l, the 'ip -j -d link' entry of IFACE.
link_get() {
    ip -j -d link show dev "$1" >"$T/link.json" || fail "no interface $1"
    $PY -c 'import json,sys; l=json.load(open(sys.argv[1]))[0]; print(eval(sys.argv[2]))' "$T/link.json" "$2"
}
# addrs IFACE: its addresses as local/prefixlen, one a line, sorted.
addrs() {
    ip -j addr show dev "$1" >"$T/addr.json"
    $PY -c 'import json,sys
for a in sorted(a["local"] + "/" + str(a["prefixlen"]) for a in json.load(open(sys.argv[1]))[0].get("addr_info", [])): print(a)' "$T/addr.json"
}
no_link() { ! ip link show dev "$1" >/dev/null 2>&1 || fail "$2: interface $1 exists"; }
# sw_json NAME EXPR: a Python expression over d, 'hvm switch show NAME --json'.
sw_json() { hvm switch show "$1" --json >"$T/show.json"; json_get "$T/show.json" "$2"; }
json_get() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# A store named by $HVM_STORE that does not exist is refused; an empty
# store (made by its first VM, then emptied) has no switches.
if hvm switch list >/dev/null 2>&1; then fail "switch list of a missing store succeeded"; fi
hvm vm create tmp --new-disk 1M >/dev/null 2>&1; hvm vm delete tmp >/dev/null
hvm switch list --json >list.json
[ "$(json_get list.json "d")" = "[]" ] || fail "a new store lists switches"
[ "$(hvm switch list | wc -l)" = 1 ] || fail "switch list of an empty store: not just a header"

# create: private, internal with an address, and a name too long for a bridge name.
hvm switch create lab --type private >out.txt
grep -q "bridge hvm-lab" out.txt || fail "create does not name the bridge: $(cat out.txt)"
hvm switch create mgmt --type internal --address 10.20.0.1/24 >/dev/null
long=a-switch-name-longer-than-any-interface-name
hvm switch create $long -t private >/dev/null
lbr=$(sw_json $long "d['bridge']")
case "$lbr" in hvm_???????????) ;; *) fail "bridge of a long name: '$lbr', want hvm_ + 11 hex digits" ;; esac
[ "$(sw_json mgmt "d['bridge'], d['type'], d['address'], d['state']")" = "('hvm-mgmt', 'internal', '10.20.0.1/24', 'absent')" ] ||
    fail "show mgmt before up: $(cat show.json)"
no_link hvm-lab "before switch up"
[ "$(ip -br link | wc -l)" = 1 ] || fail "create touched the network: $(ip -br link)"

# Refusals: one line, exit 2, switches.json unchanged.
refused() { # TEXT CMD...
    text=$1; shift
    sum=$(sha "$SW")
    expect_fail 2 "$@"
    grep -q -- "$text" "$T/.err" || fail "$*: does not say '$text': $(last_error)"
    [ "$(wc -l <"$T/.err")" = 1 ] || fail "$*: not one line: $(last_error)"
    [ "$(sha "$SW")" = "$sum" ] || fail "$*: switches.json changed"
}
refused "exists already" hvm switch create lab --type internal
refused "an external switch needs \-\-uplink IFACE" hvm switch create ext --type external
refused "\-\-uplink: only an external switch" hvm switch create ext --type private --uplink eth0
refused "\-\-force: only with \-\-uplink" hvm switch create ext --type private --force
refused "\-\-dhcp: only an internal switch with an IPv4 \-\-address" hvm switch create d --type internal --dhcp
refused "\-\-nat: only an internal switch with an IPv4 \-\-address" hvm switch create d --type private --nat
refused "\-\-vlan is not supported yet" hvm switch create d --type private --vlan 10
refused "only an internal switch" hvm switch create d --type private --address 10.1.0.1/24
refused "prefix length" hvm switch create d --type internal --address 10.1.0.1
refused "prefix length" hvm switch create d --type internal --address 10.1.0.1/40
refused "not" hvm switch create d --type bogus
refused "not a switch name" hvm switch create a,b --type private
refused "type" hvm switch create d
refused "NAME or --all" hvm switch up
refused "NAME or --all" hvm switch up lab --all
refused "no switch 'nosuch'" hvm switch up nosuch
refused "no switch 'nosuch'" hvm switch show nosuch
refused "no switch 'nosuch'" hvm switch delete nosuch

# up: the bridges, up, the internal switch's address; a private bridge has
# no address at all (no IPv6 link-local either: the host is not on it).
hvm switch up --all >up.txt
[ "$(wc -l <up.txt)" = 3 ] || fail "switch up --all: $(cat up.txt)"
for br in hvm-lab hvm-mgmt "$lbr"; do
    [ "$(link_get "$br" "l['linkinfo']['info_kind']")" = bridge ] || fail "$br is not a bridge"
    [ "$(link_get "$br" "'UP' in l['flags']")" = True ] || fail "$br is not up"
done
[ "$(addrs hvm-mgmt | grep -v '^fe80:')" = "10.20.0.1/24" ] || fail "hvm-mgmt addresses: $(addrs hvm-mgmt)"
[ -z "$(addrs hvm-lab)" ] || fail "private hvm-lab has addresses: $(addrs hvm-lab)"
[ "$(sw_json mgmt "d['state']")" = up ] || fail "show mgmt after up: $(cat show.json)"
# idempotent: again, all or one, changes nothing
ip -j -d link >links1.json; addrs hvm-mgmt >addr1.txt
hvm switch up --all >/dev/null
hvm switch up mgmt >/dev/null
hvm switch up lab >/dev/null
ip -j -d link >links2.json; addrs hvm-mgmt >addr2.txt
cmp -s addr1.txt addr2.txt || fail "a second up changed hvm-mgmt's addresses: $(cat addr2.txt)"
[ "$(json_get links1.json "sorted((l['ifname'], l['ifindex']) for l in d)")" = \
  "$(json_get links2.json "sorted((l['ifname'], l['ifindex']) for l in d)")" ] ||
    fail "a second up changed the links"
hvm switch list >list.txt
grep -q "^mgmt  *internal  *hvm-mgmt  *up  *10.20.0.1/24" list.txt || fail "switch list: $(cat list.txt)"

# VMs on the switch: delete is refused, naming them; the bridge stays.
hvm vm create web --new-disk 16M >/dev/null
hvm vm set web --add-nic lab
hvm vm create db --new-disk 16M --nic lab >/dev/null
refused "no switch 'nosuch'" hvm vm set web --add-nic nosuch
refused "used by the network adapters of VMs db, web" hvm switch delete lab
link_get hvm-lab "l['ifname']" >/dev/null
[ "$(sw_json lab "d['vms']")" = "['db', 'web']" ] || fail "show lab: VMs $(cat show.json)"
grep -q "^lab .* db,web$" "$(hvm switch list >list.txt; echo list.txt)" || fail "list: VMs of lab: $(cat list.txt)"

# A tap made by a process and put on the bridge is a port of it (down and
# delete refused while it is), and goes away when that process is killed.
"$TAPHOLD" hvm-mgmt >tap.txt &
holder=$!
SERVE_PID=$holder   # lib.sh kills it if the test fails
for i in $(seq 100); do [ -s tap.txt ] && break; sleep 0.05; done
tap=$(cat tap.txt)
[ -n "$tap" ] || fail "taphold printed no tap name"
[ "$(readlink /proc/$holder/ns/net)" = "$(ns_here)" ] || fail "the tap holder is not in the test's namespace"
[ "$(ip -j link show master hvm-mgmt | json_get /dev/stdin "[l['ifname'] for l in d]")" = "['$tap']" ] ||
    fail "$tap is not the port of hvm-mgmt: $(ip -br link)"
[ "$(link_get "$tap" "l['linkinfo']['info_kind']")" = tun ] || fail "$tap is not a tun/tap device"
[ "$(sw_json mgmt "d['ports']")" = "['$tap']" ] || fail "show mgmt: ports $(cat show.json)"
refused "has ports ($tap)" hvm switch down mgmt
kill -9 $holder
wait $holder 2>/dev/null || true
SERVE_PID=
for i in $(seq 100); do ip link show dev "$tap" >/dev/null 2>&1 || break; sleep 0.05; done
no_link "$tap" "after kill -9 of its holder"
[ "$(sw_json mgmt "d['ports']")" = "[]" ] || fail "show mgmt after the kill: ports $(cat show.json)"

# Without users the switch goes, and its bridge with it.
mac=$(hvm vm show web --json | json_get /dev/stdin "d['nics'][0]['mac']")
hvm vm set web --remove-nic "$mac"
refused "used by the network adapters of VM db:" hvm switch delete lab
hvm vm delete db >/dev/null
hvm switch delete lab >/dev/null
no_link hvm-lab "after switch delete"
hvm switch list --json >list.json
[ "$(json_get list.json "[s['name'] for s in d]")" = "['mgmt', '$long']" ] || fail "list after delete: $(cat list.json)"
refused "no switch 'lab'" hvm vm set web --add-nic lab

# down removes the bridge, the switch stays; up brings it back with its address.
hvm switch down mgmt >/dev/null
no_link hvm-mgmt "after switch down"
[ "$(sw_json mgmt "d['state']")" = absent ] || fail "show mgmt after down"
hvm switch down mgmt >/dev/null   # a missing bridge is fine
hvm switch up mgmt >/dev/null
[ "$(addrs hvm-mgmt | grep -v '^fe80:')" = "10.20.0.1/24" ] || fail "hvm-mgmt after down, up: $(addrs hvm-mgmt)"
hvm switch down --all >/dev/null
[ "$(ip -br link | wc -l)" = 1 ] || fail "down --all left: $(ip -br link)"
# An interface of a bridge name that is not a bridge is not hvm's: refused, kept.
"$TAPHOLD" --alone hvm-mgmt >tap.txt &
SERVE_PID=$!
for i in $(seq 100); do [ -s tap.txt ] && break; sleep 0.05; done
[ "$(cat tap.txt)" = hvm-mgmt ] || fail "taphold --alone hvm-mgmt: $(cat tap.txt)"
refused "not a bridge" hvm switch up mgmt
refused "not a bridge" hvm switch down mgmt
refused "not a bridge" hvm switch delete mgmt
[ "$(link_get hvm-mgmt "l['linkinfo']['info_kind']")" = tun ] || fail "the tap hvm-mgmt is gone"
kill -9 $SERVE_PID; wait $SERVE_PID 2>/dev/null || true; SERVE_PID=

# Concurrent creates all land (read-modify-write under the store lock).
pids=
for i in 1 2 3 4 5 6 7 8; do hvm switch create "c$i" --type private >/dev/null & pids="$pids $!"; done
for p in $pids; do wait $p || fail "a concurrent create failed"; done
hvm switch list --json >list.json
[ "$(json_get list.json "len(d)")" = 10 ] || fail "concurrent creates: $(json_get list.json "[s['name'] for s in d]")"
[ -z "$(ls "$HVM_STORE" | grep -v '^\(lock\|switches.json\|vms\|bases.json\)$')" ] ||
    fail "files left in the store: $(ls "$HVM_STORE")"

# Without CAP_NET_ADMIN: up is refused in one line that says so; nothing is made.
if command -v setpriv >/dev/null; then
    chmod 755 "$T"; mkdir -m 777 "$T/nr"
    as_nobody() {
        [ "$(ns_here)" != "$T80_HOST_NS" ] || fail "hvm $* would run in the host's network namespace"
        setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
    }
    as_nobody "$HVM" switch create nr --type private --store "$T/nr" >/dev/null
    expect_fail 2 as_nobody "$HVM" switch up nr --store "$T/nr"
    last_error | grep -q "creating bridge hvm-nr: .*(needs CAP_NET_ADMIN)" || fail "up without CAP_NET_ADMIN: $(last_error)"
    no_link hvm-nr "up without CAP_NET_ADMIN"
fi

# Compatibility: a store that lists its switches as plain names (before hvm
# managed them) reads them as user-mode switches without a bridge; creating
# a switch keeps them.
echo '{"switches": ["lan", "dmz"]}' >"$SW"
hvm switch list --json >list.json
[ "$(json_get list.json "[(s['name'], s['type'], s['state']) for s in d]")" = \
  "[('lan', 'user', 'none'), ('dmz', 'user', 'none')]" ] || fail "plain names: $(cat list.json)"
hvm vm set web --add-nic lan
hvm switch up --all >up.txt
[ ! -s up.txt ] && [ "$(ip -br link | wc -l)" = 1 ] || fail "up of user switches made bridges"
hvm switch create lab --type private >/dev/null
[ "$(json_get "$SW" "[s['name'] for s in d['switches']]")" = "['lan', 'dmz', 'lab']" ] || fail "create lost the plain names: $(cat "$SW")"
refused "used by the network adapters of VM web" hvm switch delete lan
hvm switch delete dmz >/dev/null

# A damaged switches.json is an error naming the file and the field; nothing is written.
printf '{"switches": [' >"$SW"
refused "switches.json: line" hvm switch list
refused "switches.json: line" hvm switch create x --type private
echo '{"switches": [{"name": "x", "type": "bridge"}]}' >"$SW"
refused "switches.json: switches\[0\].type" hvm switch up --all
echo '{"switches": [{"name": "x", "type": "external"}]}' >"$SW"
refused "switches.json: switches\[0\].uplink" hvm switch up --all
echo '{"switches": [{"name": "x", "type": "private", "uplink": "eth0"}]}' >"$SW"
refused "switches.json: switches\[0\].uplink" hvm switch list
echo '{"switches": [{"name": "x", "type": "private"}, {"name": "x", "type": "private"}]}' >"$SW"
refused "switches\[1\].name: 'x' is there twice" hvm switch create y --type private
echo '{"switches": [{"name": "x", "type": "internal", "address": "10.0.0.1"}]}' >"$SW"
refused "switches\[0\].address" hvm switch show x
echo "t80-switch: ok"
