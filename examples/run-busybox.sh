#!/usr/bin/env bash
# Builds hull and runs one busybox container with it: the container prints its hostname, its pid
# (1, in its own pid namespace) and its mount table, then exits and is deleted.
#
# Usage: ./examples/run-busybox.sh          (from the repository root; uses sudo when not root)
#        HULL=/path/to/binary ./examples/run-busybox.sh   (skip the build, use that binary)
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi

# System packages: busybox-static for the container's rootfs, libseccomp-dev and pkg-config to build.
missing=()
for pkg in busybox-static libseccomp-dev pkg-config; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

if [ -z "${HULL:-}" ]; then
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo not found: install Rust first (https://rustup.rs)" >&2
        exit 1
    fi
    echo "==> cargo build --release"
    cargo build --release
    HULL=$(pwd)/target/$(uname -m)-unknown-linux-gnu/release/hull
fi

tmp=$(mktemp -d /tmp/hull-demo.XXXXXX)
chmod 0755 "$tmp"
bundle=$tmp/bundle
state=$tmp/state
id=demo-$$
cleanup() {
    $SUDO "$HULL" --root "$state" delete --force "$id" >/dev/null 2>&1 || true
    $SUDO rm -rf "$tmp"
}
trap cleanup EXIT

# rootfs: a static busybox and one hard link per applet.
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" \
    "$bundle/rootfs/tmp" "$bundle/rootfs/etc"
cp /usr/bin/busybox "$bundle/rootfs/bin/busybox"
"$bundle/rootfs/bin/busybox" --install "$bundle/rootfs/bin"

# config.json: the default from `hull spec`, without a terminal, running our command.
(cd "$bundle" && "$HULL" spec)
sed -i \
    -e 's/"terminal": true/"terminal": false/' \
    -e '/"args": \[/,/^[[:space:]]*\]/{
          /"args": \[/{ s|"args": \[.*|"args": ["sh", "-c", "echo hostname: $(hostname); echo pid: $$; cat /proc/self/mountinfo"|; b; }
          /^[[:space:]]*\]/b
          d
        }' \
    "$bundle/config.json"
if ! grep -q '"terminal": false' "$bundle/config.json" || ! grep -q 'echo pid' "$bundle/config.json"; then
    echo "could not edit $bundle/config.json; its process section is:" >&2
    grep -A12 '"process"' "$bundle/config.json" >&2
    exit 1
fi

echo "==> ${SUDO:+$SUDO }$HULL --root $state run --bundle $bundle $id"
$SUDO "$HULL" --root "$state" run --bundle "$bundle" "$id"
