#!/bin/sh
# Installs the Debian packages that hvm's build, tests, demo, benchmarks and test guest need,
# only those that are missing; prints nothing when everything is present.
set -e
PKGS="meson ninja-build pkg-config gcc clang libclang-rt-14-dev libjansson-dev uuid-dev
libcmocka-dev libssl-dev qemu-utils libvhdi-utils python3-libvhdi libnbd-bin python3 psmisc procps
qemu-system-x86 busybox-static cpio man-db groff-base libnl-3-dev libnl-route-3-dev libnl-genl-3-dev dnsmasq
nftables libnftables-dev iproute2 iputils-ping genisoimage ovmf
libmicrohttpd-dev chromium curl jq nodejs openssl
corosync pacemaker pacemaker-cli-utils resource-agents libxml2-dev libxml2-utils"
# t93 builds a bootable ISO (BIOS and UEFI) with grub-mkrescue
PKGS="$PKGS xorriso mtools grub-common grub-pc-bin grub-efi-amd64-bin"
# The web console's npm packages (scripts/web-build.sh): Debian's npm, unless
# another npm is there already (NodeSource's nodejs brings its own).
command -v npm >/dev/null || PKGS="$PKGS npm"
PKGS="$PKGS openssh-server openssh-client"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing Debian packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "install-deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The group that may read the store (vm.json, disks and memory states are
# 0640 with it, folders 0750; without it they are the owner's alone).
if [ "$(id -u)" = 0 ] && ! getent group hvm >/dev/null; then
    groupadd --system hvm
fi
# QEMU runs as this system user when hvm runs as root (no login, no home);
# in group kvm where that group exists, for /dev/kvm.
if [ "$(id -u)" = 0 ] && ! getent passwd hvm-qemu >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --user-group hvm-qemu
fi
if [ "$(id -u)" = 0 ] && getent group kvm >/dev/null && ! id -nG hvm-qemu | grep -qw kvm; then
    usermod -a -G kvm hvm-qemu
fi
