#!/bin/sh
# Regenerates the small seed images in this folder (the fuzzer's starting
# corpus, see fuzz/): made by qemu-img/qemu-io and by hvm itself, each a few
# KiB so that libFuzzer can mutate them whole. Needs HVM and DISKIO (the
# tests' helper, $BUILD/tests/diskio).
#   HVM=build/hvm DISKIO=build/tests/diskio sh tests/data/make-seeds.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${HVM:?}" "${DISKIO:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cd "$t"
qemu-img create -q -f vpc -o subformat=fixed,force_size=on qemu-fixed.vhd 16K
qemu-io -f vpc -c "write -P 0x5a 1024 4096" qemu-fixed.vhd >/dev/null
qemu-img create -q -f vpc -o subformat=dynamic qemu-dynamic.vhd 1M
"$HVM" vhd create hvm-dynamic.vhd --size 32K --block-size 4K
"$DISKIO" fill hvm-dynamic.vhd 4096 5000 0xa5
"$DISKIO" fill hvm-dynamic.vhd 20480 512 0x3c
"$HVM" vhd diff hvm-dynamic.vhd hvm-diff.vhd --no-protect
"$DISKIO" fill hvm-diff.vhd 0 1000 0x11
"$DISKIO" fill hvm-diff.vhd 9216 700 0x22
"$HVM" vhd create hvm-fixed.vhd --size 8K --type fixed
"$DISKIO" fill hvm-fixed.vhd 100 200 0x77
for f in qemu-fixed qemu-dynamic hvm-dynamic hvm-diff hvm-fixed; do
    cp "$f.vhd" "$here/seed-$f.vhd"
done
ls -l "$here"/seed-*.vhd
