#!/bin/sh
# The seed scenario end to end, verified by reading disk content through
# `hvm vm serve`: checkpoint, write, revert, write, apply --take-first,
# the branch in the tree, apply the new checkpoint and the data is back.
. "$TESTS/cli/lib.sh"
. "$TESTS/cli/vmlib.sh"

"$HVM" vhd create base.vhd --size 64M
sock="$T/b.sock"
"$HVM" vhd serve base.vhd --socket "$sock" & p=$!
while [ ! -S "$sock" ]; do sleep 0.05; done
qemu-io -f raw -c "write -P 0xba 0 4M" "nbd+unix:///?socket=$sock" >/dev/null
kill -TERM $p; wait $p
base_sum=$(sha base.vhd)

"$HVM" vm create web --from base.vhd --cpus 2 --memory 256M --nic lan
vm_expect web -- 0xba 0 4M

"$HVM" checkpoint take web first
vm_write web 0x11 1M 64k
vm_expect web -- 0x11 1M 64k
"$HVM" checkpoint revert web
vm_expect web -- 0xba 1M 64k            # the write is gone

vm_write web 0x22 2M 64k                # other data
"$HVM" checkpoint apply web first --take-first
vm_expect web -- 0xba 2M 64k            # back at first
"$HVM" checkpoint list web > tree.txt
cat tree.txt
grep -q "first" tree.txt || fail "tree lacks first"
# Now sits under first, beside the new checkpoint: a branch.
"$HVM" checkpoint list web --json > tree.json
json_get tree.json "len(d['tree'][0]['children'])" | grep -qx 2 || fail "no branch under first"
json_get tree.json "[c['name'] for c in d['tree'][0]['children']].count('Now')" | grep -qx 1 || fail "Now not under first"
newcp=$(json_get tree.json "[c['id'] for c in d['tree'][0]['children'] if c['name']!='Now'][0]")
vm_expect web --checkpoint "$newcp" -- 0x22 2M 64k   # the new checkpoint holds that data
"$HVM" checkpoint apply web "$newcp"
vm_expect web -- 0x22 2M 64k            # and the data is back
"$HVM" vm check web
[ "$(sha base.vhd)" = "$base_sum" ] || fail "the base changed"
echo ok
