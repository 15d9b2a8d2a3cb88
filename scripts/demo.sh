#!/bin/sh
# make demo: a guided tour of `hvm vhd` on a scratch folder.
# A base disk, three differencing children, data written through
# `hvm vhd serve`, info --chain, check, merge, convert.
set -eu
HVM=${HVM:-hvm}
dir=$(mktemp -d /var/tmp/hvm-demo.XXXXXX)
trap 'chmod -R u+w "$dir"; rm -rf "$dir"' EXIT
cd "$dir"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
serve_write() { # DISK PATTERN OFFSET LENGTH: write through the NBD server
    sock="$dir/nbd.sock"
    "$HVM" vhd serve "$1" --socket "$sock" &
    pid=$!
    i=0; while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    printf '$ qemu-io -f raw -c "write -P %s %s %s" nbd+unix:///?socket=nbd.sock\n' "$2" "$3" "$4"
    qemu-io -f raw -c "write -P $2 $3 $4" "nbd+unix:///?socket=$sock" | sed -n 1p
    kill -TERM $pid; wait $pid || true
}

step "A 1 GiB dynamic base disk"
run "$HVM" vhd create base.vhd --size 1G
serve_write base.vhd 0xba 0 64M

step "Three differencing children of the base (the base becomes read-only)"
for vm in web db cache; do run "$HVM" vhd diff base.vhd "$vm.vhd"; done
ls -l base.vhd web.vhd db.vhd cache.vhd

step "Each child writes its own data through hvm vhd serve"
serve_write web.vhd 0x11 0 8M
serve_write db.vhd 0x22 4M 8M
serve_write cache.vhd 0x33 32M 1M

step "A second layer on top of web, and the whole chain"
run "$HVM" vhd diff web.vhd web-2.vhd
serve_write web-2.vhd 0x44 16M 4M
run "$HVM" vhd info --chain web-2.vhd

step "check verifies structure and every link of the chain"
run "$HVM" vhd check web-2.vhd
run "$HVM" vhd check db.vhd

step "Writing a protected parent is refused"
run "$HVM" vhd serve base.vhd --socket "$dir/x.sock" || true

step "merge web-2 into web (web had only this child, so --force)"
run "$HVM" vhd merge web-2.vhd --force
run "$HVM" vhd info web.vhd

step "convert: flatten db's chain into a standalone dynamic disk, and to raw"
run "$HVM" vhd convert db.vhd db-flat.vhd
run "$HVM" vhd convert db.vhd db.raw --type raw
run "$HVM" vhd info db-flat.vhd
printf '$ qemu-img compare -f raw db.raw (vs db-flat.vhd read by qemu-img)\n'
qemu-img compare --image-opts "driver=raw,file.filename=db.raw" \
    "driver=vpc,force_size_calc=current_size,file.filename=db-flat.vhd"
echo
echo "Demo done: scratch folder $dir is removed."
