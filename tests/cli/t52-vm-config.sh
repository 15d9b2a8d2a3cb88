#!/bin/sh
# VM configuration: create variants (--new-disk, --disk copies the file,
# --nic gives stable MACs), list/show in text and JSON, set (cpus, memory,
# disks by slot, NICs), rename, delete, and the clear errors (exit 2) for
# invalid names, duplicates, unknown VMs, and a VM busy with another hvm.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

one_line() { # CONTEXT TEXT: the last expect_fail printed one line with TEXT
    [ "$(wc -l <"$T/.err")" = 1 ] || { cat "$T/.err"; fail "$1: not one line"; }
    last_error | grep -q -- "$2" || fail "$1: does not say '$2': $(last_error)"
}
show() { "$HVM" vm show "$1" --json >"$T/show.json"; json_get "$T/show.json" "$2"; }

# Every verb's --help exits 0 and prints a usage.
for v in create list show set rename delete check serve export import move; do
    "$HVM" vm "$v" --help >h.txt || fail "vm $v --help exited $?"
    grep -q "usage: hvm vm $v" h.txt || fail "vm $v --help: no usage"
done
for v in take list revert apply rename show delete; do
    "$HVM" checkpoint "$v" --help >h.txt || fail "checkpoint $v --help exited $?"
    grep -q "usage: hvm checkpoint $v" h.txt || fail "checkpoint $v --help: no usage"
done
for v in list remove; do
    "$HVM" base "$v" --help >h.txt || fail "base $v --help exited $?"
done
"$HVM" vm --help >/dev/null && "$HVM" checkpoint --help >/dev/null && "$HVM" base --help >/dev/null

# A store named by $HVM_STORE that is not there is refused (t61); one whose
# VMs are all gone lists nothing.
expect_fail 2 "$HVM" vm list
one_line "vm list of no store" "no hvm store here"
"$HVM" vm create gone --new-disk 1M >/dev/null 2>&1
"$HVM" vm delete gone
"$HVM" vm list --json >list.json
[ "$(json_get list.json "len(d)")" = 0 ] || fail "an emptied store is not empty"

# --new-disk, defaults
"$HVM" vm create nd --new-disk 64M >/dev/null
[ "$(show nd "d['cpus']")" = 1 ] || fail "default cpus"
[ "$(show nd "d['memory']")" = $((1 << 30)) ] || fail "default memory"
[ "$(show nd "d['drives'][0]['size']")" = $((64 << 20)) ] || fail "--new-disk size"
[ "$(show nd "d['drives'][0]['parents']")" = "[]" ] || fail "--new-disk has a parent"
[ "$(show nd "d['state']")" = Off ] || fail "state"
vm_expect nd -- 0 0 64M

# --disk copies the file: the VM's writes never reach it
"$HVM" vhd create src.vhd --size 16M
sock="$T/s.sock"
"$HVM" vhd serve src.vhd --socket "$sock" & p=$!
while [ ! -S "$sock" ]; do sleep 0.05; done
qemu-io -f raw -c "write -P 0x5c 0 16M" "nbd+unix:///?socket=$sock" >/dev/null
kill -TERM $p; wait $p
src_sum=$(sha src.vhd)
"$HVM" vm create cp --disk src.vhd --cpus 3 --memory 512M --nic lan --nic wan --nic lan >/dev/null
vm_expect cp -- 0x5c 0 16M
vm_write cp 0x77 1M 1M
vm_expect cp -- 0x77 1M 1M
[ "$(sha src.vhd)" = "$src_sum" ] || fail "--disk: the VM wrote the original file"
stat -c %A src.vhd | grep -q '^-rw' || fail "--disk: the original was made read-only"
folder=$(show cp "d['folder']")
case "$(show cp "d['drives'][0]['file']")" in disks/*) ;; *) fail "--disk: not copied into the folder" ;; esac
[ "$folder" = "$HVM_STORE/vms/cp" ] || [ "$(cd "$folder" && pwd -P)" = "$(cd "$HVM_STORE/vms/cp" && pwd -P)" ] ||
    fail "folder is $folder"

# --nic: distinct MACs, stable across show, set, take, revert, rename
[ "$(show cp "d['cpus']")" = 3 ] || fail "--cpus"
[ "$(show cp "d['memory']")" = $((512 << 20)) ] || fail "--memory"
macs=$(show cp "' '.join(n['mac'] for n in d['nics'])")
[ "$(show cp "' '.join(n['switch'] for n in d['nics'])")" = "lan wan lan" ] || fail "switches"
[ "$(echo "$macs" | tr ' ' '\n' | sort -u | wc -l)" = 3 ] || fail "MACs are not distinct: $macs"
for m in $macs; do
    echo "$m" | grep -Eq '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' || fail "bad MAC $m"
    [ $((0x$(echo "$m" | cut -c1-2) & 2)) = 2 ] || fail "$m is not locally administered"
    [ $((0x$(echo "$m" | cut -c1-2) & 1)) = 0 ] || fail "$m is a multicast address"
done
"$HVM" vm show cp | grep -q "NIC 1: *$(echo "$macs" | cut -d' ' -f2) on switch wan" || fail "text show lacks NIC 1"
"$HVM" vm set cp --cpus 2
"$HVM" checkpoint take cp one >/dev/null
"$HVM" checkpoint revert cp
[ "$(show cp "' '.join(n['mac'] for n in d['nics'])")" = "$macs" ] || fail "MACs changed"

# list, text and JSON
"$HVM" vm list >list.txt
grep -q "^NAME" list.txt || fail "list: no header"
grep -Eq "^cp +Off +2 +512 MiB +1 +1( |$)" list.txt || { cat list.txt; fail "list: cp's line"; }
grep -Eq "^nd +Off +1 +1 GiB +1 +0( |$)" list.txt || { cat list.txt; fail "list: nd's line"; }
"$HVM" vm list --json >list.json
[ "$(json_get list.json "[v['name'] for v in d]")" = "['cp', 'nd']" ] || fail "list --json names"
[ "$(json_get list.json "d[0]['nics']")" = 3 ] || fail "list --json nics"
[ "$(json_get list.json "d[0]['checkpoints']")" = 1 ] || fail "list --json checkpoints"
"$HVM" vm show cp >show.txt
for k in Name: Id: State: Folder: CPUs: Memory: Checkpoint: "Drive 0:"; do
    grep -q "^$k" show.txt || fail "show: no '$k'"
done
grep -q "^Checkpoint: *one" show.txt || fail "show: checkpoint"

# set: cpus, memory, disks by slot, NICs
"$HVM" vm set nd --cpus 4 --memory 2G
[ "$(show nd "d['cpus']")" = 4 ] && [ "$(show nd "d['memory']")" = $((2 << 30)) ] || fail "set cpus/memory"
"$HVM" vm set nd --new-disk 8M --slot 2
"$HVM" vm set nd --add-disk src.vhd           # first free slot: 1
[ "$(show nd "sorted(x['slot'] for x in d['drives'])")" = "[0, 1, 2]" ] || fail "slots after adding"
[ "$(show nd "[x['size'] for x in d['drives'] if x['slot']==2][0]")" = $((8 << 20)) ] || fail "slot 2 size"
f1=$(show nd "[x['file'] for x in d['drives'] if x['slot']==1][0]")
f2=$(show nd "[x['file'] for x in d['drives'] if x['slot']==2][0]")
sock="$T/d1.sock"
"$HVM" vm serve nd --drive 1 --socket "$sock" & p=$!
while [ ! -S "$sock" ]; do sleep 0.05; done
qemu-io -f raw -c "read -P 0x5c 0 16M" -c "write -P 0x61 0 64k" "nbd+unix:///?socket=$sock" >io.txt
grep -q "Pattern verification failed" io.txt && fail "slot 1 does not read the added disk"
kill -TERM $p; wait $p
[ "$(sha src.vhd)" = "$src_sum" ] || fail "--add-disk: the VM wrote the original file"
expect_fail 2 "$HVM" vm set nd --new-disk 8M --slot 1
one_line "slot taken" "already has a disk in slot 1"
expect_fail 2 "$HVM" vm set nd --remove-disk 7
one_line "no slot 7" "no disk in slot 7"
expect_fail 2 "$HVM" vm set nd --cpus 0
expect_fail 2 "$HVM" vm set nd --cpus 1000
expect_fail 2 "$HVM" vm set nd --memory 1
expect_fail 2 "$HVM" vm set nd --memory lots
expect_fail 2 "$HVM" vm set nd --add-disk nope.vhd
expect_fail 2 "$HVM" vm set nd --add-disk list.txt
one_line "add a non-VHD" "not a VHD"
# How the guest reaches its disks: vhost-user for new VMs, nbd on request,
# nbd for a configuration from before the choice (no key).
[ "$(show nd "d['disk_io']")" = vhost-user ] || fail "a new VM does not use vhost-user"
expect_fail 2 "$HVM" vm set nd --disk-io fast
one_line "bad --disk-io" "not vhost-user or nbd"
"$HVM" vm set nd --disk-io nbd
[ "$(show nd "d['disk_io']")" = nbd ] || fail "--disk-io nbd not recorded"
"$HVM" vm set nd --disk-io vhost-user
$PY - "$HVM_STORE/vms/nd/vm.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
del d["config"]["disk_io"]
json.dump(d, open(sys.argv[1], "w"))
PYEOF
[ "$(show nd "d['disk_io']")" = nbd ] || fail "a configuration without disk_io is not nbd"
"$HVM" vm set nd --disk-io vhost-user
[ "$(show nd "d['cpus']")" = 4 ] && [ "$(show nd "d['memory']")" = $((2 << 30)) ] || fail "a refused set changed the VM"
"$HVM" vm set nd --remove-disk 2
[ ! -e "$HVM_STORE/vms/nd/$f2" ] || fail "the removed disk's file is still there"
[ "$(show nd "sorted(x['slot'] for x in d['drives'])")" = "[0, 1]" ] || fail "slots after removing"
# a disk a checkpoint still uses stays; a new disk may take the slot
"$HVM" checkpoint take nd withdisk1 >/dev/null
"$HVM" vm set nd --remove-disk 1
[ -e "$HVM_STORE/vms/nd/$f1" ] || fail "removing slot 1 deleted the checkpoint's layer"
vm_check nd
"$HVM" vm set nd --new-disk 4M --slot 1
vm_check nd
"$HVM" checkpoint apply nd withdisk1
[ "$(show nd "sorted(x['slot'] for x in d['drives'])")" = "[0, 1]" ] || fail "apply: drives"
[ "$(show nd "[x['size'] for x in d['drives'] if x['slot']==1][0]")" = $((16 << 20)) ] || fail "apply: slot 1 is not the old disk"
"$HVM" checkpoint delete nd withdisk1
vm_check nd
# NICs
"$HVM" vm set nd --add-nic dmz
mac=$(show nd "d['nics'][0]['mac']")
[ "$(show nd "d['nics'][0]['switch']")" = dmz ] || fail "add-nic"
expect_fail 2 "$HVM" vm set nd --remove-nic 02:00:00:00:00:01
one_line "unknown NIC" "no network adapter"
"$HVM" vm set nd --add-nic lan
"$HVM" vm set nd --remove-nic "$(echo "$mac" | tr a-f A-F)"
[ "$(show nd "[n['switch'] for n in d['nics']]")" = "['lan']" ] || fail "remove-nic"
vm_check nd

# rename: content kept, old name gone
"$HVM" vm show cp --json >before.json
"$HVM" vm rename cp renamed
[ ! -e "$HVM_STORE/vms/cp" ] || fail "the old folder is still there"
expect_fail 2 "$HVM" vm show cp
one_line "old name" "no VM named 'cp'"
vm_expect renamed -- 0x5c 0 1M
vm_expect renamed -- 0x5c 2M 1M
[ "$(show renamed "d['id']")" = "$(json_get before.json "d['id']")" ] || fail "rename changed the id"
[ "$(show renamed "d['name']")" = renamed ] || fail "show after rename"
[ "$(json_get "$HVM_STORE/vms/renamed/vm.json" "d['name']")" = renamed ] || fail "vm.json name"
[ "$(show renamed "' '.join(n['mac'] for n in d['nics'])")" = "$macs" ] || fail "rename changed MACs"
"$HVM" checkpoint list renamed | grep -q one || fail "rename lost the checkpoint"
vm_check renamed

# names: invalid, duplicate, unknown
for bad in "" . .. .hidden -dash a/b "../x" "$(printf 'tab\there')"; do
    expect_fail 2 "$HVM" vm create --new-disk 1M -- "$bad"
    one_line "name '$bad'" "not a valid VM name"
done
expect_fail 2 "$HVM" vm create "$(printf '%0250d' 0)" --new-disk 1M
expect_fail 2 "$HVM" vm rename renamed ../escape
one_line "rename ../escape" "not a valid VM name"
expect_fail 2 "$HVM" vm rename renamed nd
one_line "rename onto nd" "already exists"
expect_fail 2 "$HVM" vm create nd --new-disk 1M
one_line "duplicate" "already exists"
for cmd in "vm show" "vm delete" "vm check" "vm set --cpus 2" "checkpoint list" "checkpoint take" \
           "vm export" "vm move"; do
    case $cmd in
    "vm set --cpus 2") expect_fail 2 "$HVM" vm set ghost --cpus 2 ;;
    "vm export"|"vm move") expect_fail 2 "$HVM" $cmd ghost "$T/dest" ;;
    *) expect_fail 2 "$HVM" $cmd ghost ;;
    esac
    one_line "$cmd ghost" "no VM named 'ghost'"
done
expect_fail 2 "$HVM" vm rename ghost ghost2
one_line "rename ghost" "no VM named 'ghost'"
expect_fail 2 "$HVM" vm show "../vms/nd"
expect_fail 2 "$HVM" vm create x --from nope.vhd
one_line "--from missing" "nope.vhd"
expect_fail 2 "$HVM" vm create x --disk nope.vhd
expect_fail 2 "$HVM" vm create x --from list.txt
one_line "--from a text file" "VHD"
expect_fail 2 "$HVM" vm create x --new-disk 1M --disk src.vhd
expect_fail 2 "$HVM" vm create x --checkpoint one
expect_fail 2 "$HVM" vm create
expect_fail 2 "$HVM" vm create x --bogus
[ ! -e "$HVM_STORE/vms/x" ] || fail "a refused create left a VM"
ls -a "$HVM_STORE/vms" | grep -q '^\.creating' && fail "a refused create left a temporary folder"

# Two hvm processes on one VM: the second is refused while the first holds it.
sock="$T/busy.sock"
"$HVM" vm serve nd --socket "$sock" & p=$!
while [ ! -S "$sock" ]; do sleep 0.05; done
for cmd in "vm set nd --cpus 1" "vm show nd" "checkpoint take nd" "vm delete nd" "vm rename nd nd2" \
           "vm check nd" "checkpoint list nd"; do
    expect_fail 2 "$HVM" $cmd
    one_line "$cmd while served" "busy"
done
"$HVM" vm list | grep -Eq "^nd +Busy" || fail "list does not show nd busy"
kill -TERM $p; wait $p
"$HVM" vm set nd --cpus 1
[ "$(show nd "d['cpus']")" = 1 ] || fail "set after the lock went"

# delete: folder gone, base registry updated
"$HVM" vhd create base.vhd --size 8M
"$HVM" vm create b1 --from base.vhd >/dev/null
"$HVM" vm create b2 --from base.vhd >/dev/null
"$HVM" vm delete b1
[ ! -e "$HVM_STORE/vms/b1" ] || fail "b1's folder is still there"
"$HVM" base list --json >bases.json
[ "$(json_get bases.json "len(d['bases'][0]['children'])")" = 1 ] || fail "registry still lists b1"
"$HVM" vm delete renamed
"$HVM" vm delete nd
"$HVM" vm delete b2
"$HVM" vm list --json >list.json
[ "$(json_get list.json "len(d)")" = 0 ] || fail "VMs left: $(cat list.json)"
[ "$(ls -A "$HVM_STORE/vms")" = "" ] || fail "files left in the store: $(ls -A "$HVM_STORE/vms")"
"$HVM" base list --json >bases.json
[ "$(json_get bases.json "len(d['bases'][0]['children'])")" = 0 ] || fail "registry still lists b2"
echo ok
