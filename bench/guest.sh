#!/usr/bin/env bash
# The guest row: hull's `run true` beside the guest's runc (1.1.5) in the Debian 12 VM of the
# VM test layer (systemd, cgroup v2, AppArmor; tests/vm/). Under TCG emulation absolute times
# mean little: read the ratio. Runs bench.sh there with ONLY=run.
#
# Also `run true` with the systemd cgroup driver (--systemd-cgroup) beside runc's.
#
# Usage (as root):  bench/guest.sh        RUNS=N (default 15), WARMUP=N (default 3)
# Result: bench/out/guest-<timestamp>.md
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cargo build --release -p hull
image=$(tests/vm/image.sh)
share=$(mktemp -d /tmp/hull-bench-vm.XXXXXX)
trap 'rm -rf "$share"' EXIT
mkdir -p "$share/bench"
cp "target/$(uname -m)-unknown-linux-gnu/release/hull" "$share/hull"
cp bench/bench.sh bench/common.sh "$share/bench/"
cat >"$share/run" <<RUN
cd /mnt/hull
# From the guest's disk, as runc is, not from the 9p share.
cp hull /usr/local/bin/hull
# Let the rest of the boot finish first (only this run's own job left), then settle: under
# emulation the first row would otherwise pay for it.
while [ "\$(systemctl list-jobs --no-legend | wc -l)" -gt 1 ]; do sleep 1; done
sleep 15
TIMER=loop ONLY=run SYSTEMD=1 RUNS=${RUNS:-15} WARMUP=${WARMUP:-3} HULL=/usr/local/bin/hull RUNC=/usr/sbin/runc \\
    bash bench/bench.sh
RUN
HULL_VM_QUIET=1 tests/vm/run.sh --image "$image" "$share"
out=bench/out/guest-$(date +%Y%m%d-%H%M%S).md
mkdir -p bench/out
{ echo "guest: Debian 12 VM (tests/vm), $(grep -m1 '^kernel' "$share/output.log" || true)"; cat "$share/bench/out/latest.md"; } >"$out"
cat "$out"
