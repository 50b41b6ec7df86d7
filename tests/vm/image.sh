#!/usr/bin/env bash
# Builds the Debian 12 guest image of the VM test layer from the apt mirror alone, or finds it
# in the cache; prints the image's directory (vmlinuz, initrd.img, disk.img) on stdout.
#
# The cache key covers the package list, this script and the files it puts into the image,
# so an image is rebuilt exactly when one of them changes. Needs root, debootstrap and
# mkfs.ext4 (e2fsprogs); everything it mounts lives in a private mount namespace, so
# nothing stays mounted on the host even when it fails.
#
#   HULL_VM_CACHE   where images are kept (default /var/cache/hull-vm)
#   HULL_VM_MIRROR  the Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${HULL_VM_CACHE:-/var/cache/hull-vm}
mirror=${HULL_VM_MIRROR:-http://deb.debian.org/debian}
log() { printf 'image: %s\n' "$*" >&2; }

key=$(cat "$here/image.sh" "$here/packages" "$here/hull-guest" "$here/hull-guest.service" |
    sha256sum | cut -c1-16)
out=$cache/bookworm-$key
if [ -f "$out/ready" ]; then
    log "cached: $out"
    echo "$out"
    exit 0
fi

for tool in debootstrap mkfs.ext4 unshare; do
    command -v "$tool" >/dev/null || { log "$tool not found (apt-get install debootstrap e2fsprogs util-linux)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { log "must run as root (debootstrap, chroot)"; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-$key.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
start=$SECONDS

log "debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }

cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SRC
# No daemon may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages")

log "installing ${#pkgs[*]} packages"
# A private mount and pid namespace: the chroot's /proc, /sys and /dev go away with it, and so
# does any process a package script leaves behind.
unshare --mount --pid --fork --propagation private bash -euc '
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    mount --rbind /dev "$root/dev"
    export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
    chroot "$root" apt-get update -q
    chroot "$root" apt-get install -y -q --no-install-recommends "$@"
    chroot "$root" apt-get clean
' _ "$root" "${pkgs[@]}" >"$work/apt.log" 2>&1 ||
    { tail -30 "$work/apt.log" >&2; log "package installation failed"; exit 1; }
rm -f "$root/usr/sbin/policy-rc.d"

log "configuring the guest"
echo hull-guest >"$root/etc/hostname"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
install -m 755 "$here/hull-guest" "$root/usr/local/sbin/hull-guest"
install -m 644 "$here/hull-guest.service" "$root/etc/systemd/system/hull-guest.service"
ln -sf /etc/systemd/system/hull-guest.service "$root/etc/systemd/system/multi-user.target.wants/hull-guest.service"
# The tests start the clients' daemons themselves; anything else at boot only costs time under
# emulation. (`systemctl mask` works offline: it only makes links.)
chroot "$root" systemctl mask --quiet \
    docker.service docker.socket containerd.service podman.service podman.socket \
    podman-restart.service podman-auto-update.timer apt-daily.timer apt-daily-upgrade.timer \
    man-db.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    systemd-timesyncd.service getty@tty1.service serial-getty@ttyS0.service 2>/dev/null || true
chroot "$root" systemctl set-default multi-user.target >/dev/null 2>&1

cp "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/initrd.img"
chmod 644 "$work/vmlinuz" "$work/initrd.img"
chroot "$root" dpkg-query -W >"$work/packages.lock"
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*

log "making the disk"
mkfs.ext4 -q -L hullroot -d "$root" "$work/disk.img" 6G >&2
rm -rf "$root"
echo "$key" >"$work/ready"
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
log "built $out in $((SECONDS - start)) s"
# Images of older inputs are never used again.
for old in "$cache"/bookworm-*; do
    [ "$old" = "$out" ] || rm -rf "$old"
done
echo "$out"
