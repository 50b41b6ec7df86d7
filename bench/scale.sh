#!/usr/bin/env bash
# How the cost of `state`, `list` and `create` grows with the number of containers under one
# --root (1, 10, 100, 1000 by default), and whether 200 lifecycles run 8 at a time cost the same
# at the end as at the start. hull beside runc (or only hull with RUNC=), in one run.
#
# Usage (as root):  bench/scale.sh
# Environment:
#   HULL=path  RUNC=path (default /usr/sbin/runc; empty for none)  REFS="label=path ..." more
#   COUNTS="1 10 100 1000"   container counts, ascending
#   SAMPLES=N   timed calls per measure and count (default 15)
#   LIFECYCLES=N PARALLEL=P  the lifecycle run (default 200, 8)
#   V1VIEW=1    as in bench.sh
# Result: bench/out/scale-<timestamp>.md
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "scale.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (it creates containers)"
HULL=${HULL:-$repo/target/$(uname -m)-unknown-linux-gnu/release/hull}
RUNC=${RUNC-/usr/sbin/runc}
COUNTS=${COUNTS:-1 10 100 1000}
SAMPLES=${SAMPLES:-15}
LIFECYCLES=${LIFECYCLES:-200}
PARALLEL=${PARALLEL:-8}
# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"
enter_bench_namespace "$0" "$@"
runtimes_from_env

make_scratch scale
bundle=$scratch/bundle
cleanup() {
    local i
    for ((i = 0; i < n; i++)); do
        "${bins[i]}" --root "$scratch/state/root-${labels[i]}" list --quiet 2>/dev/null |
            xargs -r -P 4 -n 1 "${bins[i]}" --root "$scratch/state/root-${labels[i]}" delete --force >/dev/null 2>&1 || true
    done
    drop_scratch
}
trap cleanup EXIT

make_bundle "$bundle" "${bins[0]}"
# A created container's init waits for `start`; nothing runs. No network namespace: 1000 of them
# would measure the kernel's netns teardown, not the runtime.
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "network"]
json.dump(c, open(p, "w"), indent=2)
PY

# median_ms CMD...: median wall time of SAMPLES calls, in ms.
median_ms() {
    local i t0 t1
    for ((i = 0; i < SAMPLES; i++)); do
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1 || die "failed: $*"
        t1=$(date +%s%N)
        echo $((t1 - t0))
    done | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] / 1e6 }'
}

out=$repo/bench/out/scale-$(date +%Y%m%d-%H%M%S).md
mkdir -p "$repo/bench/out"
{
    echo "date: $(date -Is), kernel $(uname -r), $(nproc) cpus, samples=$SAMPLES"
    for ((i = 0; i < n; i++)); do echo "${labels[i]}: ${bins[i]} ($("${bins[i]}" --version | head -n1))"; done
    echo
    echo "| runtime | containers | state (ms) | list (ms) | create+delete of one more (ms) |"
    echo "|---|---:|---:|---:|---:|"
} | tee "$out"
for ((i = 0; i < n; i++)); do
    bin=${bins[i]}
    root=$scratch/state/root-${labels[i]}
    # Ids of their own per runtime: an empty cgroupsPath names the cgroup by the id.
    pre=${labels[i]}-$$
    have=0
    for count in $COUNTS; do
        echo "${labels[i]}: creating up to $count containers ..." >&2
        seq $((have + 1)) "$count" | xargs -P 4 -I{} "$bin" --root "$root" create --bundle "$bundle" "$pre-c{}" \
            >/dev/null 2>&1 || die "${labels[i]}: create failed on the way to $count"
        have=$count
        st=$(median_ms "$bin" --root "$root" state "$pre-c1")
        ls=$(median_ms "$bin" --root "$root" list)
        cd=$(median_ms sh -c "'$bin' --root '$root' create --bundle '$bundle' '$pre-extra' </dev/null && '$bin' --root '$root' delete --force '$pre-extra'")
        echo "| ${labels[i]} | $count | $st | $ls | $cd |" | tee -a "$out"
    done
    "$bin" --root "$root" list --quiet | xargs -r -P 4 -n 1 "$bin" --root "$root" delete --force >/dev/null 2>&1 || true
done

# 200 lifecycles, 8 at a time: each `run` timed on its own; the first and last quarter compared.
{
    echo
    echo "| runtime | lifecycles ($PARALLEL at a time) | median of the first quarter (ms) | of the last quarter (ms) | last/first |"
    echo "|---|---:|---:|---:|---:|"
} | tee -a "$out"
for ((i = 0; i < n; i++)); do
    bin=${bins[i]}
    root=$scratch/state/root-${labels[i]}
    pre=${labels[i]}-$$
    echo "${labels[i]}: $LIFECYCLES lifecycles ..." >&2
    export bin root bundle pre
    seq 1 "$LIFECYCLES" | xargs -P "$PARALLEL" -I{} sh -c '
        t0=$(date +%s%N)
        "$bin" --root "$root" run --bundle "$bundle" "$pre-life{}" </dev/null >/dev/null 2>&1 || exit 255
        t1=$(date +%s%N)
        echo "{} $((t1 - t0))"' >"$scratch/life.txt" || die "${labels[i]}: a lifecycle failed"
    q=$((LIFECYCLES / 4))
    [ "$q" -gt 0 ] || die "LIFECYCLES must be at least 4"
    sort -n "$scratch/life.txt" | awk -v q="$q" -v n="$LIFECYCLES" -v l="${labels[i]}" -v p="$PARALLEL" '
        function med(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } return a[int((k + 1) / 2)] }
        NR <= q { f[NR] = $2 } NR > n - q { s[NR - n + q] = $2 }
        END { a = med(f, q) / 1e6; b = med(s, q) / 1e6; printf "| %s | %d | %.2f | %.2f | %.2f |\n", l, n, a, b, b / a }' | tee -a "$out"
    left=$("$bin" --root "$root" list --quiet | wc -l)
    [ "$left" -eq 0 ] || die "${labels[i]}: $left containers left after the lifecycles"
done
echo "result: $out" >&2
