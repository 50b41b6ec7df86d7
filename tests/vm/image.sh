#!/usr/bin/env bash
# Builds the Debian 12 guest image of the VM test layer from the apt mirror alone, or finds it
# in the cache; prints the image's directory (vmlinuz, initrd.img, disk.img) on stdout.
#
# The cache key covers the package list, this script, the files it puts into the image and
# the mirrors, so an image is rebuilt exactly when one of them changes (point releases of
# bookworm reach a cached image only through a new key: pin HULL_VM_MIRROR to a
# snapshot.debian.org URL for a fixed package set). Needs root, debootstrap and mkfs.ext4
# (e2fsprogs). debootstrap and the package installation run in a private mount and pid
# namespace: nothing they mount stays mounted, and no process they start outlives them.
#
#   HULL_VM_CACHE            where images are kept (default /var/cache/hull-vm)
#   HULL_VM_MIRROR           the Debian mirror (default http://deb.debian.org/debian)
#   HULL_VM_SECURITY_MIRROR  its security mirror (default http://deb.debian.org/debian-security)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${HULL_VM_CACHE:-/var/cache/hull-vm}
mirror=${HULL_VM_MIRROR:-http://deb.debian.org/debian}
security=${HULL_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
log() { printf 'image: %s\n' "$*" >&2; }

key=$({
    cat "$here/image.sh" "$here/packages" "$here/hull-guest" "$here/hull-guest.service"
    echo "$mirror $security"
} | sha256sum | cut -c1-16)
out=$cache/bookworm-$key

[ "$(id -u)" -eq 0 ] || { log "must run as root (debootstrap, chroot)"; exit 1; }
mkdir -p "$cache"
# One build at a time, and no image removed while another run is being handed it.
exec 9>"$cache/.lock"
flock 9

if [ -f "$out/ready" ]; then
    log "cached: $out"
    echo "$out"
    exit 0
fi

for tool in debootstrap mkfs.ext4 unshare chroot; do
    command -v "$tool" >/dev/null || { log "$tool not found (apt-get install debootstrap e2fsprogs util-linux)"; exit 1; }
done

# Builds killed before they finished, and images of other inputs: never used again.
rm -rf --one-file-system "$cache"/.build-* "$cache"/bookworm-*
work=$(mktemp -d "$cache/.build-$key.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/root
start=$SECONDS
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages")

log "debootstrap bookworm from $mirror, then ${#pkgs[*]} packages"
unshare --mount --pid --fork --propagation private bash -euc '
    root=$1 mirror=$2 security=$3 work=$4
    shift 4
    export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log"; echo "debootstrap failed"; exit 1; }
    cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SRC
    # No daemon may start inside the chroot.
    printf "#!/bin/sh\nexit 101\n" >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mountpoint -q "$root/sys" || mount -t sysfs sys "$root/sys"
    mount --rbind /dev "$root/dev"
    { chroot "$root" apt-get update -q &&
        chroot "$root" apt-get install -y -q --no-install-recommends "$@" &&
        chroot "$root" apt-get clean; } >"$work/apt.log" 2>&1 ||
        { tail -30 "$work/apt.log"; echo "package installation failed"; exit 1; }
    rm -f "$root/usr/sbin/policy-rc.d"
' _ "$root" "$mirror" "$security" "$work" "${pkgs[@]}" >&2

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
# What was installed, for a failure that only one image shows.
chroot "$root" dpkg-query -W >"$work/packages.lock"
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*

log "making the disk"
mkfs.ext4 -q -L hullroot -d "$root" "$work/disk.img" 6G >&2
rm -rf --one-file-system "$root"
echo "$key" >"$work/ready"
mv "$work" "$out"
trap - EXIT
log "built $out in $((SECONDS - start)) s"
echo "$out"
