#!/usr/bin/env bash
# Interleaved A/B: `run true` of two or more hull builds (or any runc-compatible runtimes), one run
# of each in turn, RUNS rounds; prints median and quartiles per binary. Runs one after another
# drift by ±10% on this machine kind; interleaving puts that drift on every binary alike, so a
# change of a few percent shows.
#
# Usage (as root):  bench/ab.sh LABEL=PATH LABEL=PATH [...]
#                   RUNS=N (default 100), V1VIEW=1 as in bench.sh, ARGS="--systemd-cgroup" extra
#                   global flags
# Result: printed, and bench/out/ab-<timestamp>.md
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "ab.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (it creates containers)"
[ $# -ge 2 ] || die "usage: bench/ab.sh LABEL=PATH LABEL=PATH [...]"
# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"
enter_bench_namespace "$0" "$@"
RUNS=${RUNS:-100}
labels=()
resolved=()
for arg in "$@"; do
    label=${arg%%=*}
    bin=${arg#*=}
    [[ $arg == *=* && $label =~ ^[A-Za-z0-9_.-]+$ ]] || die "'$arg' is not LABEL=PATH (label of letters, digits, '_', '.', '-')"
    [ -x "$bin" ] || die "no binary at $bin (for $label)"
    for seen in "${labels[@]}"; do [ "$seen" != "$label" ] || die "label $label given twice"; done
    labels+=("$label")
    resolved+=("$label=$(readlink -f "$bin")")
done

make_scratch ab
trap drop_scratch EXIT
make_bundle "$scratch/bundle" "${resolved[0]#*=}"
out=$repo/bench/out/ab-$(date +%Y%m%d-%H%M%S).md
mkdir -p "$repo/bench/out"
python3 - "$scratch" "$RUNS" "$out" "${ARGS:-}" "${resolved[@]}" <<'PY'
import os, shlex, statistics, subprocess, sys, time
scratch, runs, out, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3], shlex.split(sys.argv[4])
rts = [tuple(a.split("=", 1)) for a in sys.argv[5:]]
times = {label: [] for label, _ in rts}
for i in range(runs + 3):
    for label, bin in rts:
        root = "%s/state/root-%s" % (scratch, label)
        cid = "ab-%s-%d" % (label, i)
        t0 = time.monotonic_ns()
        p = subprocess.run([bin, "--root", root] + extra + ["run", "--bundle", scratch + "/bundle", cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t1 = time.monotonic_ns()
        if p.returncode != 0:
            subprocess.run([bin, "--root", root, "delete", "--force", cid], capture_output=True)
            sys.exit("ab.sh: %s run failed: %s" % (label, p.stderr.decode(errors="replace")[-500:]))
        if i >= 3:  # warm-up
            times[label].append((t1 - t0) / 1e6)
base = statistics.median(times[rts[0][0]])
lines = ["`run true`, %d interleaved rounds after 3 warm-up rounds (ms)" % runs, "",
         "| runtime | median | q1 | q3 | / %s |" % rts[0][0], "|---|---:|---:|---:|---:|"]
for label, bin in rts:
    q = statistics.quantiles(times[label], n=4)
    m = statistics.median(times[label])
    lines.append("| %s (%s) | %.2f | %.2f | %.2f | %.3f |" % (label, bin, m, q[0], q[2], m / base))
text = "\n".join(lines)
print(text)
open(out, "w").write(text + "\n")
PY
echo "result: $out" >&2
