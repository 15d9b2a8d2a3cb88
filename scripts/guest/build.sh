#!/bin/sh
# Builds hvm's test guest from Debian packages into GUEST_DIR (default build-guest):
#   vmlinuz         the newest linux-image-*-cloud-amd64 kernel apt offers (apt-get download, dpkg -x)
#   initrd.img      busybox-static, the virtio/power-button modules of that kernel, /init, /dev/console,
#                   /bin/randio (randio.c, built static: random I/O for bench/runtime.sh)
#   kernel-version  the kernel release, e.g. 6.1.0-56-cloud-amd64
# Idempotent: does nothing when the kernel package, /init and this script are unchanged.
# Prints one line on success. GUEST_KERNEL_PKG=linux-image-... picks another kernel package.
# The guest's protocol (kernel command line, console lines, disk layout): scripts/guest/README.md.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
GUEST_DIR=${1:-${GUEST_DIR:-build-guest}}
# virtio (this order: each needs the ones before it), networking, ACPI power button + evdev
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
failover net_failover virtio_net button evdev"

die() { echo "guest: $*" >&2; exit 1; }

for t in apt-get apt-cache dpkg dpkg-deb cpio gzip md5sum cc; do
    command -v "$t" >/dev/null 2>&1 || die "missing tool $t (run: make deps)"
done
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" ||
    die "busybox-static is not installed (run: make deps)"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing"

mkdir -p "$GUEST_DIR"
GUEST_DIR=$(cd "$GUEST_DIR" && pwd)

# --- which kernel: what the linux-image-cloud-amd64 meta-package points at, else the newest ---
# (one apt-cache call when possible: without a package cache, each one parses all the lists)
find_kernel() {
    PKG='' VER=''
    if [ -n "${GUEST_KERNEL_PKG:-}" ]; then
        PKG=$GUEST_KERNEL_PKG
    else
        set -- $(apt-cache show --no-all-versions linux-image-cloud-amd64 2>/dev/null |
            sed -n 's/^Depends: \(linux-image-[0-9][^ ,]*-cloud-amd64\) (= \([^)]*\)).*/\1 \2/p')
        if [ $# -eq 2 ]; then
            PKG=$1 VER=$2
            return
        fi
        PKG=$(apt-cache pkgnames linux-image- 2>/dev/null |
            grep -E '^linux-image-[0-9.]+-[0-9]+-cloud-amd64$' | sort -V | tail -n 1)
    fi
    [ -z "$PKG" ] ||
        VER=$(apt-cache policy "$PKG" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)' || true)
}
find_kernel
if [ -z "$VER" ] && [ ! -f "$GUEST_DIR/stamp" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    find_kernel
fi
if [ -z "$VER" ]; then
    # apt knows no kernel (no package lists, offline): keep a previous build if there is one
    [ -f "$GUEST_DIR/stamp" ] && [ -f "$GUEST_DIR/vmlinuz" ] && [ -f "$GUEST_DIR/initrd.img" ] ||
        die "apt offers no linux-image-*-cloud-amd64 package (run apt-get update)"
    echo "guest: $GUEST_DIR kept (apt offers no kernel package; linux $(cat "$GUEST_DIR/kernel-version"))"
    exit 0
fi

STAMP="$PKG $VER busybox=$(dpkg-query -W -f='${Version}' busybox-static)
modules=$(echo $MODULES)
$(cat "$HERE/init" "$HERE/build.sh" "$HERE/randio.c" | md5sum)"
if [ -f "$GUEST_DIR/stamp" ] && [ "$(cat "$GUEST_DIR/stamp")" = "$STAMP" ] &&
    [ -f "$GUEST_DIR/vmlinuz" ] && [ -f "$GUEST_DIR/initrd.img" ]; then
    echo "guest: $GUEST_DIR up to date (linux $(cat "$GUEST_DIR/kernel-version"))"
    exit 0
fi

# --- fetch (cached per version) and unpack the kernel package ---------------------------------
CACHE="$GUEST_DIR/cache/$PKG-$VER"
if ! ls "$CACHE"/*.deb >/dev/null 2>&1; then
    rm -rf "$GUEST_DIR/cache"
    mkdir -p "$CACHE"
    (cd "$CACHE" && apt-get download -q "$PKG=$VER") >"$GUEST_DIR/download.log" 2>&1 || {
        cat "$GUEST_DIR/download.log" >&2
        die "apt-get download $PKG=$VER failed"
    }
    rm -f "$GUEST_DIR/download.log"
fi
DEB=$(ls "$CACHE"/*.deb | head -n 1)

WORK="$GUEST_DIR/work"
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
dpkg -x "$DEB" "$WORK/pkg"
set -- "$WORK"/pkg/boot/vmlinuz-*
[ -f "$1" ] || die "no boot/vmlinuz-* in $DEB"
KVER=${1##*/vmlinuz-}
MODDIR="$WORK/pkg/lib/modules/$KVER/kernel"

# --- the initramfs tree --------------------------------------------------------------------------
R="$WORK/root"
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/etc" "$R/proc" "$R/sys" "$R/dev" \
    "$R/tmp" "$R/run" "$R/root" "$R/lib/modules"
cp "$BUSYBOX" "$R/bin/busybox"
cp "$HERE/init" "$R/init"
chmod 755 "$R/init" "$R/bin/busybox"
cc -static -O2 -Wall -Wextra -Werror -o "$R/bin/randio" "$HERE/randio.c" ||
    die "cannot build randio.c static (libc6-dev provides libc.a)"
: >"$R/etc/modules"
for m in $MODULES; do
    f=$(find "$MODDIR" -name "$m.ko" | head -n 1)
    [ -n "$f" ] || die "module $m.ko not in $PKG"
    cp "$f" "$R/lib/modules/$m.ko"
    echo "$m" >>"$R/etc/modules"
done
echo "$KVER" >"$R/etc/hvm-guest-kernel"
cat >"$R/etc/profile" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=vt100
PS1='hvm-guest# '
EOF
echo "root:x:0:0:root:/root:/bin/sh" >"$R/etc/passwd"
echo "root:x:0:" >"$R/etc/group"
find "$R" -exec touch -h -d @0 {} +

# newc entries for /dev and /dev/console (char 5:1), written by hand so that no mknod (root) is
# needed; the kernel unpacks concatenated archives in order.
newc() { # name mode rdevmajor rdevminor
    n=$(($(printf %s "$1" | wc -c) + 1))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
        "$5" "$2" 0 0 1 0 0 0 0 "$3" "$4" "$n" 0 "$1"
    pad=$(((4 - (110 + n) % 4) % 4))
    [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero
}
{
    newc dev $((0040755)) 0 0 1
    newc dev/console $((0020600)) 5 1 2
    newc TRAILER!!! 0 0 0 0
    (cd "$R" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --reproducible --quiet)
} | gzip -9n >"$WORK/initrd.img"

cp "$1" "$WORK/vmlinuz"
echo "$KVER" >"$WORK/kernel-version"
for f in vmlinuz initrd.img kernel-version; do mv -f "$WORK/$f" "$GUEST_DIR/$f"; done
printf '%s\n' "$STAMP" >"$GUEST_DIR/stamp"
echo "guest: built $GUEST_DIR/{vmlinuz,initrd.img} (linux $KVER from $PKG $VER, initrd $(($(wc -c <"$GUEST_DIR/initrd.img") / 1024)) KiB)"
