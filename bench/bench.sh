#!/usr/bin/env bash
# Times hull beside reference runtimes (runc, and any others named in REFS) on the same busybox
# bundle, in one run, and prints one table. See bench/README.md for what each row measures.
#
# Usage (as root, from anywhere):  bench/bench.sh
# Environment:
#   HULL=path   the hull binary      (default: target/<host>/release/hull of this repository)
#   RUNC=path   the first reference runtime (default: /usr/sbin/runc); RUNC= (empty) for none
#   REFS="label=path ..."  more reference runtimes, each a column (e.g. "runc-1.3.6=/opt/runc crun=/usr/bin/crun")
#   V1VIEW=1    run everything with a /sys/fs/cgroup that has no cgroup2
#               mount (a v1-only view: crun 1.8 refuses this host's hybrid layout); the host's
#               own mounts are not touched
#   RUNS=N      timed runs per row   (default: 30; peak RSS uses min(RUNS, 10))
#   WARMUP=N    untimed warm-up runs (default: 3)
#   BUSYBOX=path a static busybox   (default: /usr/bin/busybox)
#   TIMER=loop  time the floor with a date +%s%N loop even when hyperfine is installed (the
#               rows always take turns through one python3 loop)
#   ONLY=run    time the run-true row only (bench/guest.sh uses it in the VM guest)
#   SYSTEMD=1   with ONLY=run, also time `--systemd-cgroup run true` (needs systemd and cgroup v2)
# Results: bench/out/<timestamp>/ (table.md, one CSV per timed row, env.txt) and bench/out/latest.md.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "bench.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (it creates containers)"

# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"
enter_bench_namespace "$0" "$@"

HULL=${HULL:-$repo/target/$(uname -m)-unknown-linux-gnu/release/hull}
RUNC=${RUNC-/usr/sbin/runc}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}

runtimes_from_env


if [ ! -x /usr/bin/time ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null || true
fi

have_hyperfine=false
if [ "${TIMER:-hyperfine}" = hyperfine ] && command -v hyperfine >/dev/null 2>&1; then have_hyperfine=true; fi

make_scratch bench
bundle=$scratch/bundle
rootfs=$bundle/rootfs
roots=()
for ((i = 0; i < n; i++)); do
    roots+=("$scratch/state/root-${labels[i]}")
    mkdir -p "${roots[i]}"
done

cleanup() {
    local i id
    for ((i = 0; i < n; i++)); do
        for id in $("${bins[i]}" --root "${roots[i]}" list --quiet 2>/dev/null); do
            "${bins[i]}" --root "${roots[i]}" delete --force "$id" >/dev/null 2>&1 || true
        done
    done
    drop_scratch
}
trap cleanup EXIT

make_bundle "$bundle" "${bins[0]}"

stamp=$(date +%Y%m%d-%H%M%S)
out=$repo/bench/out/$stamp
mkdir -p "$out"

# timed NAME COMMAND: median wall time of COMMAND in milliseconds, run through `sh -c` RUNS times.
# Inside COMMAND `$$` is the pid of that run's shell, so it gives each run a fresh container id.
# The cost of starting the shell itself is subtracted (hyperfine does this on its own).
timed() {
    local name=$1 cmd=$2 csv=$out/$1.csv
    if $have_hyperfine; then
        hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --shell sh \
            --export-csv "$csv" --command-name "$name" "$cmd" >"$out/$name.log" 2>&1 ||
            { cat "$out/$name.log" >&2; die "$name: benchmark failed (log: $out/$name.log)"; }
        # command,mean,stddev,median,user,system,min,max (seconds)
        awk -F, 'NR == 2 { printf "%.2f\n", $4 * 1000 }' "$csv"
    else
        local i t0 t1 base
        for ((i = 0; i < WARMUP; i++)); do sh -c "$cmd" >/dev/null 2>&1 || die "$name: command failed: $cmd"; done
        base=$(for ((i = 0; i < RUNS; i++)); do
            t0=$(date +%s%N); sh -c ':'; t1=$(date +%s%N); echo $((t1 - t0))
        done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
        echo "run_ns" >"$csv"
        for ((i = 0; i < RUNS; i++)); do
            t0=$(date +%s%N)
            sh -c "$cmd" >/dev/null 2>&1 || die "$name: command failed: $cmd"
            t1=$(date +%s%N)
            echo $((t1 - t0 - base)) >>"$csv"
        done
        tail -n +2 "$csv" | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f\n", v[int((NR + 1) / 2)] / 1e6 }'
    fi
}

# ref_failed WHAT: a reference runtime failed a set-up step: its rows that need it show n/a
# (row's own try fails); hull failing one stops the bench.
ref_failed() {
    case $1 in hull:*) die "$1 failed" ;; esac
    echo "bench.sh: $1 failed; its rows show n/a" >&2
}

# row NAME BUILDER: times `BUILDER BIN ROOT LABEL` for every runtime; sets `vals` (one per runtime).
# A reference runtime whose command fails once untimed (crun has no `events`) gets n/a; hull must not fail.
# The runtimes take turns, one run of each per round (interleaved): runs one after another
# drift by ±10% on this machine kind, and taking turns puts that drift on every column alike.
row() {
    local name=$1 builder=$2 i cmd label ms
    local args=()
    local -A median=()
    vals=()
    for ((i = 0; i < n; i++)); do
        cmd=$($builder "${bins[i]}" "${roots[i]}" "${labels[i]}")
        if ! sh -c "$cmd" >"$scratch/try.log" 2>&1; then
            [ "$i" -gt 0 ] || { cat "$scratch/try.log" >&2; die "$name: hull failed: $cmd"; }
            echo "bench.sh: $name: ${labels[i]} failed, shown as n/a: $(head -c 300 "$scratch/try.log")" >&2
            continue
        fi
        args+=("${labels[i]}" "$cmd")
    done
    interleaved "$name" "${args[@]}" >"$scratch/medians" || die "$name: a timed run failed"
    while read -r label ms; do
        median[$label]=$ms
    done <"$scratch/medians"
    for ((i = 0; i < n; i++)); do vals+=("${median[${labels[i]}]:-n/a}"); done
}

# interleaved NAME LABEL CMD [LABEL CMD ...]: WARMUP then RUNS rounds, each running every CMD
# once through `sh -c` (and `sh -c :`, whose median is subtracted: the shell's own start);
# prints "LABEL MEDIAN_MS" lines and writes one CSV of run times per label.
interleaved() {
    python3 - "$out" "$1" "$RUNS" "$WARMUP" "${@:2}" <<'PY'
import statistics, subprocess, sys, time
out, name, runs, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pairs = list(zip(sys.argv[5::2], sys.argv[6::2])) + [("_shell", ":")]
times = {label: [] for label, _ in pairs}
for i in range(warmup + runs):
    for label, cmd in pairs:
        t0 = time.monotonic_ns()
        p = subprocess.run(["sh", "-c", cmd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        t1 = time.monotonic_ns()
        if p.returncode != 0:
            sys.exit("bench.sh: %s: %s failed: %s" % (name, label, p.stderr.decode(errors="replace")[-300:]))
        if i >= warmup:
            times[label].append(t1 - t0)
base = statistics.median(times.pop("_shell"))
for label, ts in times.items():
    with open("%s/%s-%s.csv" % (out, name, label), "w") as f:
        f.write("run_ns\n" + "".join("%d\n" % (t - base) for t in ts))
    print(label, "%.2f" % ((statistics.median(ts) - base) / 1e6))
PY
}

# peak_rss BIN ROOT: median over a few `run`s of the largest resident set (KiB) of any process in
# the run's tree (GNU time's %M is ru_maxrss of the reaped children).
peak_rss() {
    local bin=$1 root=$2 k=$((RUNS < 10 ? RUNS : 10)) i all=""
    [ -x /usr/bin/time ] || { echo "n/a"; return; }
    for ((i = 0; i < k; i++)); do
        if ! /usr/bin/time -f %M -o "$scratch/rss" "$bin" --root "$root" run --bundle "$bundle" "rss-$$-$i" \
            </dev/null >/dev/null 2>&1; then
            [ "$bin" != "${bins[0]}" ] || die "peak RSS: $bin run failed"
            echo "n/a"
            return
        fi
        all+="$(cat "$scratch/rss")"$'\n'
    done
    printf '%s' "$all" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

# Commands of each row, for one runtime binary, its state root and its label. Containers that
# stay have ids of their own per runtime: with a relative cgroupsPath the id names the cgroup,
# and two runtimes must not share one (nor its limits).
cmd_run() { echo "'$1' --root '$2' ${EXTRA_FLAGS:-} run --bundle '$bundle' run-\$\$ </dev/null"; }
cmd_csd() {
    echo "'$1' --root '$2' create --bundle '$bundle' csd-\$\$ </dev/null >/dev/null 2>&1 &&" \
        "'$1' --root '$2' start csd-\$\$ && '$1' --root '$2' delete --force csd-\$\$"
}
cmd_state() { echo "'$1' --root '$2' state state-probe-$3 >/dev/null"; }
cmd_list() { echo "'$1' --root '$2' list >/dev/null"; }
cmd_update() { echo "'$1' --root '$2' update --pids-limit 100 --memory 256M --cpu-share 512 state-probe-$3"; }
cmd_events() { echo "'$1' --root '$2' events --stats state-probe-$3 >/dev/null"; }
cmd_pause() { echo "'$1' --root '$2' pause state-probe-$3 && '$1' --root '$2' resume state-probe-$3"; }
cmd_exec() { echo "'$1' --root '$2' exec exec-probe-$3 /bin/true </dev/null"; }
cmd_sc() { echo "'$1' --root '$2' run --bundle '$scratch/seccomp' sc-\$\$ </dev/null"; }
floor_cmd="unshare --fork --pid --mount --uts --ipc --net chroot '$rootfs' /bin/true"

{
    echo "date:     $(date -Is)"
    echo "kernel:   $(uname -r)"
    echo "cpus:     $(nproc)"
    for ((i = 0; i < n; i++)); do
        echo "${labels[i]}: ${bins[i]} ($("${bins[i]}" --version 2>/dev/null | head -n1 || echo '?'))"
    done
    echo "cgroups:  $(if [ "${V1VIEW:-}" = 1 ]; then echo "v1-only view (private mount namespace without /sys/fs/cgroup/unified)"; else stat -fc %T /sys/fs/cgroup; fi)"
    echo "timing:   rows interleaved (one run of each runtime per round), floor by $($have_hyperfine && hyperfine --version || echo 'a date +%s%N loop'); runs=$RUNS warmup=$WARMUP, median"
} | tee "$out/env.txt"

# One checked run each first: hull failing or hanging stops the bench here, not inside
# hyperfine; a reference runtime that cannot run the bundle on this host is left out.
keep=()
for ((i = 0; i < n; i++)); do
    if ! timeout 60 "${bins[i]}" --root "${roots[i]}" run --bundle "$bundle" "check-${labels[i]}-$$" </dev/null >"$scratch/check.log" 2>&1; then
        cat "$scratch/check.log" >&2
        [ "$i" -gt 0 ] || die "hull: run --bundle $bundle failed or took over 60 s"
        echo "bench.sh: ${labels[i]} cannot run the bundle here: left out" | tee -a "$out/env.txt" >&2
        # Left out of the arrays cleanup() walks: whatever its try left goes now.
        "${bins[i]}" --root "${roots[i]}" delete --force "check-${labels[i]}-$$" >/dev/null 2>&1 || true
        continue
    fi
    keep+=("$i")
done
kl=() kb=() kr=()
for i in "${keep[@]}"; do kl+=("${labels[i]}"); kb+=("${bins[i]}"); kr+=("${roots[i]}"); done
labels=("${kl[@]}") bins=("${kb[@]}") roots=("${kr[@]}")
n=${#labels[@]}

# The table: header, then `line MEASURE` per row from `vals` (ratios of hull to each reference).
header() {
    local h="| measure" s="|---" i
    for ((i = 0; i < n; i++)); do h+=" | ${labels[i]}"; s+="|---:"; done
    for ((i = 1; i < n; i++)); do h+=" | hull/${labels[i]}"; s+="|---:"; done
    echo "$h | floor |"
    echo "$s|---:|"
}
lines=()
line() {
    local l="| $1" i
    for ((i = 0; i < n; i++)); do l+=" | ${vals[i]}"; done
    for ((i = 1; i < n; i++)); do l+=" | $(ratio "${vals[0]}" "${vals[i]}")"; done
    lines+=("$l | ${2:-} |")
}

echo "timing run true ..." >&2
row run-true cmd_run
floor=$(timed floor "$floor_cmd")
line "run true (ms)" "$floor"
if [ "${ONLY:-}" = run ]; then
    if [ "${SYSTEMD:-}" = 1 ]; then
        echo "timing run true with --systemd-cgroup ..." >&2
        EXTRA_FLAGS=--systemd-cgroup row run-true-systemd cmd_run
        line "run true, --systemd-cgroup (ms)"
    fi
    { echo; header; printf '%s\n' "${lines[@]}"; } | tee "$out/table.md"
    cat "$out/env.txt" "$out/table.md" >"$repo/bench/out/latest.md"
    exit 0
fi

echo "timing create+start+delete ..." >&2
row csd cmd_csd
line "create+start+delete (ms)"

# state, list and the cgroup commands look at one container per runtime in the `created` state
# (its init waits for `start`).
echo "timing state, list, update, events --stats, pause+resume ..." >&2
for ((i = 0; i < n; i++)); do
    "${bins[i]}" --root "${roots[i]}" create --bundle "$bundle" "state-probe-${labels[i]}" </dev/null >/dev/null 2>&1 ||
        ref_failed "${labels[i]}: create"
done
row state cmd_state
line "state (ms)"
row list cmd_list
line "list (ms)"
row update cmd_update
line "update (ms)"
row events cmd_events
line "events --stats (ms)"
row pause cmd_pause
line "pause+resume (ms)"
for ((i = 0; i < n; i++)); do
    "${bins[i]}" --root "${roots[i]}" delete --force "state-probe-${labels[i]}" >/dev/null 2>&1 || true
done

# exec into a running container: a second bundle on the same rootfs whose process sleeps.
echo "timing exec true ..." >&2
sleeper=$scratch/sleeper
mkdir -p "$sleeper"
python3 - "$bundle/config.json" "$rootfs" "$sleeper/config.json" <<'PY' || die "could not make the sleeper bundle"
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/sleep", "1000"]
c["root"]["path"] = sys.argv[2]
json.dump(c, open(sys.argv[3], "w"), indent=2)
PY
for ((i = 0; i < n; i++)); do
    "${bins[i]}" --root "${roots[i]}" run -d --bundle "$sleeper" "exec-probe-${labels[i]}" </dev/null >/dev/null 2>&1 ||
        ref_failed "${labels[i]}: run -d"
done
row exec cmd_exec
line "exec true (ms)"
for ((i = 0; i < n; i++)); do
    "${bins[i]}" --root "${roots[i]}" delete --force "exec-probe-${labels[i]}" >/dev/null 2>&1 || true
done

# run true with docker's default seccomp profile: hull with its filter cache (warm after the
# warm-up runs) and without it (HULL_SECCOMP_CACHE=0); the others compile it every time.
echo "timing run true with a seccomp profile ..." >&2
mkdir -p "$scratch/seccomp"
python3 - "$bundle/config.json" "$repo/crates/hull/tests/fixtures/seccomp-docker-default.json" \
    "$rootfs" "$scratch/seccomp/config.json" <<'PY'
import json, sys
config, profile, rootfs, out = sys.argv[1:]
c = json.load(open(config))
c["linux"]["seccomp"] = json.load(open(profile))
c["root"]["path"] = rootfs
json.dump(c, open(out, "w"), indent=2)
PY
row run-seccomp cmd_sc
line "run true, docker seccomp profile (ms)"
sc_cached=("${vals[@]}")
vals=("$(timed run-seccomp-hull-nocache "HULL_SECCOMP_CACHE=0 $(cmd_sc "${bins[0]}" "${roots[0]}" hull)")" "${sc_cached[@]:1}")
line "the same, hull without its filter cache (ms)"

# run true by an unprivileged user (RL_UID, default 64150, needs no account): `spec --rootless`'s
# config (a user namespace mapping the user's own id, no network namespace) over the same
# rootfs, each runtime with a root of the user's; every runtime is started through setpriv.
echo "timing rootless run true ..." >&2
RL_UID=${RL_UID:-64150}
rl_bundle=$scratch/rootless
mkdir -p "$rl_bundle"
chown "$RL_UID:$RL_UID" "$rl_bundle"
# As the user: the template maps the ids of whoever asks for it.
(cd "$rl_bundle" && setpriv --reuid="$RL_UID" --regid="$RL_UID" --clear-groups "${bins[0]}" spec --rootless) ||
    die "hull spec --rootless failed"
python3 - "$rl_bundle/config.json" "$rootfs" <<'PY'
import json, sys
p, rootfs = sys.argv[1:]
c = json.load(open(p))
c["ociVersion"] = "1.0.2"
c["root"]["path"] = rootfs
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=2)
PY
for ((i = 0; i < n; i++)); do
    mkdir -p "$scratch/state/rootless-${labels[i]}"
    chown "$RL_UID:$RL_UID" "$scratch/state/rootless-${labels[i]}"
done
cmd_rl() {
    echo "setpriv --reuid=$RL_UID --regid=$RL_UID --clear-groups '$1' --root '$scratch/state/rootless-$3'" \
        "run --bundle '$rl_bundle' rl-\$\$ </dev/null"
}
row run-rootless cmd_rl
line "rootless run true (ms)"

echo "measuring peak RSS ..." >&2
vals=()
for ((i = 0; i < n; i++)); do vals+=("$(peak_rss "${bins[i]}" "${roots[i]}")"); done
line "peak RSS of run true (KiB)"
vals=()
for ((i = 0; i < n; i++)); do vals+=("$(stat -c %s "${bins[i]}")"); done
line "binary size (bytes)"

{ echo; header; printf '%s\n' "${lines[@]}"; } | tee "$out/table.md"
cat "$out/env.txt" "$out/table.md" >"$repo/bench/out/latest.md"
echo >&2
echo "results: $out (also bench/out/latest.md)" >&2
