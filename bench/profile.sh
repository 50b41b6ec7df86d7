#!/usr/bin/env bash
# Where the time of one `hull run` goes: runs it RUNS times with HULL_TIMING=1 (hull marks each
# step on stderr, see crates/libhull/src/timing.rs) and prints, per step, the median time from
# the mark before it. The first row is from the caller's fork+exec to hull's first line of
# main (exec and dynamic linking); rows of the container init are marked `init:`.
#
# Usage (as root):  bench/profile.sh          HULL=path RUNS=N (default 50) CONFIG=<a config.json>
#                   V1VIEW=1 as in bench.sh
# Result: printed, and bench/out/profile-<timestamp>.md
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "profile.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (it creates containers)"
# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"
enter_bench_namespace "$0" "$@"
HULL=$(readlink -f "${HULL:-$repo/target/$(uname -m)-unknown-linux-gnu/release/hull}")
RUNS=${RUNS:-50}
[ -x "$HULL" ] || die "no hull binary at $HULL"
command -v python3 >/dev/null || die "needs python3"

make_scratch profile
trap drop_scratch EXIT
make_bundle "$scratch/bundle" "$HULL"
if [ -n "${CONFIG:-}" ]; then cp "$CONFIG" "$scratch/bundle/config.json"; fi
out=$repo/bench/out/profile-$(date +%Y%m%d-%H%M%S).md
mkdir -p "$repo/bench/out"
python3 - "$HULL" "$scratch" "$RUNS" "$out" <<'PY'
import os, statistics, subprocess, sys, time
hull, scratch, runs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
env = dict(os.environ, HULL_TIMING="1")
steps = {}   # label -> list of ms since the previous mark
order = []
totals = []
for i in range(runs + 3):
    t0 = time.monotonic_ns()
    p = subprocess.run([hull, "--root", scratch + "/state/root", "run", "--bundle", scratch + "/bundle", "p%d" % i],
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t1 = time.monotonic_ns()
    if p.returncode != 0:
        sys.exit("profile.sh: hull run failed: " + p.stderr.decode(errors="replace")[-500:])
    if i < 3:
        continue  # warm-up
    marks = [("caller: fork+exec", t0)]
    for line in p.stderr.decode().splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[0] == "hull-timing":
            marks.append((parts[3], int(parts[2])))
    marks.sort(key=lambda m: m[1])
    marks.append(("caller: reaped hull", t1))
    seen = {}
    for (prev, tp), (label, t) in zip(marks, marks[1:]):
        n = seen.get(label, 0)
        seen[label] = n + 1
        key = label if n == 0 else "%s (#%d)" % (label, n + 1)
        if key not in steps:
            steps[key] = []
            order.append(key)
        steps[key].append((t - tp) / 1e6)
    totals.append((t1 - t0) / 1e6)
lines = ["hull: %s; %d runs after 3 warm-up runs; medians (ms); each row: time since the row above" % (hull, runs), "",
         "| step done | ms | share |", "|---|---:|---:|"]
total = statistics.median(totals)
for k in order:
    m = statistics.median(steps[k] + [0.0] * (runs - len(steps[k])))
    lines.append("| %s | %.2f | %.0f%% |" % (k, m, 100 * m / total))
lines.append("| **total, caller's view** | **%.2f** | |" % total)
text = "\n".join(lines)
print(text)
open(out, "w").write(text + "\n")
PY
echo "result: $out" >&2
