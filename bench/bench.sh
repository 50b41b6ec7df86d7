#!/usr/bin/env bash
# Times hull and runc side by side on the same busybox bundle and prints one table.
# See bench/README.md for what each row measures and how to read it.
#
# Usage (as root, from anywhere):  bench/bench.sh
# Environment:
#   HULL=path   the hull binary      (default: target/release/hull of this repository)
#   RUNC=path   the runc binary      (default: /usr/sbin/runc)
#   RUNS=N      timed runs per row   (default: 30; peak RSS uses min(RUNS, 10))
#   WARMUP=N    untimed warm-up runs (default: 3)
#   BUSYBOX=path a static busybox   (default: /usr/bin/busybox)
#   TIMER=loop  time with a date +%s%N loop even when hyperfine is installed
#   ONLY=run    time the run-true row only (bench/guest.sh uses it in the VM guest)
#   SYSTEMD=1   with ONLY=run, also time `--systemd-cgroup run true` (needs systemd and cgroup v2)
# Results: bench/out/<timestamp>/ (table.md, one CSV per timed row, env.txt) and bench/out/latest.md.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
HULL=${HULL:-$repo/target/release/hull}
RUNC=${RUNC:-/usr/sbin/runc}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}

die() { echo "bench.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it creates containers)"
[ -x "$HULL" ] || die "no hull binary at $HULL (build it with: cargo build --release, or set HULL=path)"
[ -x "$RUNC" ] || die "no runc binary at $RUNC (set RUNC=path)"
HULL=$(readlink -f "$HULL")
RUNC=$(readlink -f "$RUNC")
busybox=${BUSYBOX:-/usr/bin/busybox}
[ -x "$busybox" ] || die "no busybox at $busybox (apt-get install busybox-static, or set BUSYBOX=path)"
! ldd "$busybox" >/dev/null 2>&1 || die "$busybox is dynamically linked: the rootfs needs busybox-static"

if [ ! -x /usr/bin/time ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y time >/dev/null || true
fi

have_hyperfine=false
if [ "${TIMER:-hyperfine}" = hyperfine ] && command -v hyperfine >/dev/null 2>&1; then have_hyperfine=true; fi

scratch=$(mktemp -d /tmp/hull-bench.XXXXXX)
chmod 0755 "$scratch"
bundle=$scratch/bundle
rootfs=$bundle/rootfs
root_hull=$scratch/root-hull
root_runc=$scratch/root-runc
mkdir -p "$root_hull" "$root_runc"

cleanup() {
    local bin root id
    for pair in "$HULL:$root_hull" "$RUNC:$root_runc"; do
        bin=${pair%%:*}
        root=${pair#*:}
        for id in $("$bin" --root "$root" list --quiet 2>/dev/null); do
            "$bin" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$scratch"
}
trap cleanup EXIT

# The bundle: static busybox with one hard link per applet; config.json is runc's default spec
# without a terminal, running /bin/true. Both runtimes read the very same files.
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/etc"
cp "$busybox" "$rootfs/bin/busybox"
"$rootfs/bin/busybox" --install "$rootfs/bin"
(cd "$bundle" && "$RUNC" spec)
sed -i \
    -e 's/"terminal": true/"terminal": false/' \
    -e '/"args": \[/,/^[[:space:]]*\]/{
          /"args": \[/{ s|"args": \[.*|"args": ["/bin/true"|; b; }
          /^[[:space:]]*\]/b
          d
        }' \
    "$bundle/config.json"
grep -q '"args": \["/bin/true"' "$bundle/config.json" || die "could not set args in $bundle/config.json"

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

# peak_rss BIN ROOT: median over a few `run`s of the largest resident set (KiB) of any process in
# the run's tree (GNU time's %M is ru_maxrss of the reaped children).
peak_rss() {
    local bin=$1 root=$2 n=$((RUNS < 10 ? RUNS : 10)) i
    [ -x /usr/bin/time ] || { echo "n/a"; return; }
    for ((i = 0; i < n; i++)); do
        /usr/bin/time -f %M -o "$scratch/rss" "$bin" --root "$root" run --bundle "$bundle" "rss-$$-$i" \
            </dev/null >/dev/null 2>&1 || die "peak RSS: $bin run failed"
        cat "$scratch/rss"
    done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

# Commands of each row, for one runtime binary and its state root.
cmd_run() { echo "'$1' --root '$2' ${3:-} run --bundle '$bundle' run-\$\$ </dev/null"; }
cmd_csd() {
    echo "'$1' --root '$2' create --bundle '$bundle' csd-\$\$ </dev/null >/dev/null 2>&1 &&" \
        "'$1' --root '$2' start csd-\$\$ && '$1' --root '$2' delete --force csd-\$\$"
}

{
    echo "date:     $(date -Is)"
    echo "kernel:   $(uname -r)"
    echo "cpus:     $(nproc)"
    echo "hull:     $HULL ($("$HULL" --version 2>/dev/null | head -n1 || echo '?'))"
    echo "runc:     $RUNC ($("$RUNC" --version 2>/dev/null | head -n1 || echo '?'))"
    echo "timing:   $($have_hyperfine && hyperfine --version || echo 'date +%s%N loop'), runs=$RUNS warmup=$WARMUP, median"
} | tee "$out/env.txt"

# One checked run each first: a runtime that fails or hangs stops the bench here, not inside hyperfine.
for bin in "$HULL" "$RUNC"; do
    root=$root_runc
    [ "$bin" = "$HULL" ] && root=$root_hull
    if ! timeout 60 "$bin" --root "$root" run --bundle "$bundle" "check-$$" </dev/null >"$scratch/check.log" 2>&1; then
        cat "$scratch/check.log" >&2
        die "$bin run --bundle $bundle failed or took over 60 s"
    fi
done

echo "timing run true ..." >&2
run_hull=$(timed run-true-hull "$(cmd_run "$HULL" "$root_hull")")
run_runc=$(timed run-true-runc "$(cmd_run "$RUNC" "$root_runc")")
floor=$(timed floor "unshare --fork --pid --mount --uts --ipc --net chroot '$rootfs' /bin/true")
if [ "${ONLY:-}" = run ]; then
    if [ "${SYSTEMD:-}" = 1 ]; then
        echo "timing run true with --systemd-cgroup ..." >&2
        sd_hull=$(timed run-true-systemd-hull "$(cmd_run "$HULL" "$root_hull" --systemd-cgroup)")
        sd_runc=$(timed run-true-systemd-runc "$(cmd_run "$RUNC" "$root_runc" --systemd-cgroup)")
    fi
    {
        echo
        echo "| measure | hull | runc | hull/runc | floor |"
        echo "|---|---:|---:|---:|---:|"
        echo "| run true (ms) | $run_hull | $run_runc | $(ratio "$run_hull" "$run_runc") | $floor |"
        if [ "${SYSTEMD:-}" = 1 ]; then
            echo "| run true, --systemd-cgroup (ms) | $sd_hull | $sd_runc | $(ratio "$sd_hull" "$sd_runc") | |"
        fi
    } | tee "$out/table.md"
    cat "$out/env.txt" "$out/table.md" >"$repo/bench/out/latest.md"
    exit 0
fi

echo "timing create+start+delete ..." >&2
csd_hull=$(timed csd-hull "$(cmd_csd "$HULL" "$root_hull")")
csd_runc=$(timed csd-runc "$(cmd_csd "$RUNC" "$root_runc")")

# state and list look at one container in the `created` state (its init waits for `start`).
# The reference runtime's containers have ids of their own: with a relative cgroupsPath the id
# names the cgroup, and two runtimes must not share one (nor its limits).
echo "timing state and list ..." >&2
"$HULL" --root "$root_hull" create --bundle "$bundle" state-probe </dev/null >/dev/null 2>&1 ||
    die "$HULL create failed"
"$RUNC" --root "$root_runc" create --bundle "$bundle" state-probe-ref </dev/null >/dev/null 2>&1 ||
    die "$RUNC create failed"
state_hull=$(timed state-hull "'$HULL' --root '$root_hull' state state-probe >/dev/null")
state_runc=$(timed state-runc "'$RUNC' --root '$root_runc' state state-probe-ref >/dev/null")
list_hull=$(timed list-hull "'$HULL' --root '$root_hull' list >/dev/null")
list_runc=$(timed list-runc "'$RUNC' --root '$root_runc' list >/dev/null")
# cgroup commands on the same created container: its cgroups exist and its init waits.
echo "timing update, events --stats, pause+resume ..." >&2
upd="update --pids-limit 100 --memory 256M --cpu-share 512"
update_hull=$(timed update-hull "'$HULL' --root '$root_hull' $upd state-probe")
update_runc=$(timed update-runc "'$RUNC' --root '$root_runc' $upd state-probe-ref")
events_hull=$(timed events-hull "'$HULL' --root '$root_hull' events --stats state-probe >/dev/null")
events_runc=$(timed events-runc "'$RUNC' --root '$root_runc' events --stats state-probe-ref >/dev/null")
pr() { echo "'$1' --root '$2' pause $3 && '$1' --root '$2' resume $3"; }
pause_hull=$(timed pause-hull "$(pr "$HULL" "$root_hull" state-probe)")
pause_runc=$(timed pause-runc "$(pr "$RUNC" "$root_runc" state-probe-ref)")
"$HULL" --root "$root_hull" delete --force state-probe >/dev/null 2>&1 || true

# exec into a running container: a second bundle on the same rootfs whose process sleeps.
echo "timing exec true ..." >&2
sleeper=$scratch/sleeper
mkdir -p "$sleeper"
sed -e 's|"args": \["/bin/true"|"args": ["/bin/sleep", "1000"|' -e "s|\"path\": \"rootfs\"|\"path\": \"$rootfs\"|" \
    "$bundle/config.json" >"$sleeper/config.json"
grep -q '"/bin/sleep", "1000"' "$sleeper/config.json" || die "could not make the sleeper bundle"
"$HULL" --root "$root_hull" run -d --bundle "$sleeper" exec-probe </dev/null >/dev/null 2>&1 || die "$HULL run -d failed"
"$RUNC" --root "$root_runc" run -d --bundle "$sleeper" exec-probe-ref </dev/null >/dev/null 2>&1 || die "$RUNC run -d failed"
exec_hull=$(timed exec-hull "'$HULL' --root '$root_hull' exec exec-probe /bin/true </dev/null")
exec_runc=$(timed exec-runc "'$RUNC' --root '$root_runc' exec exec-probe-ref /bin/true </dev/null")
"$RUNC" --root "$root_runc" delete --force state-probe-ref >/dev/null 2>&1 || true

# run true with docker's default seccomp profile: hull with its filter cache (warm after the
# warm-up runs) and without it (HULL_SECCOMP_CACHE=0), runc compiling every time.
echo "timing run true with a seccomp profile ..." >&2
command -v python3 >/dev/null || die "python3 is needed to add the seccomp profile to the bundle"
seccomp_bundle=$scratch/seccomp
mkdir -p "$seccomp_bundle"
python3 - "$bundle/config.json" "$repo/crates/hull/tests/fixtures/seccomp-docker-default.json" \
    "$rootfs" "$seccomp_bundle/config.json" <<'PY'
import json, sys
config, profile, rootfs, out = sys.argv[1:]
c = json.load(open(config))
c["linux"]["seccomp"] = json.load(open(profile))
c["root"]["path"] = rootfs
json.dump(c, open(out, "w"), indent=2)
PY
cmd_sc() { echo "'$1' --root '$2' run --bundle '$seccomp_bundle' sc-\$\$ </dev/null"; }
sc_hull=$(timed run-seccomp-hull "$(cmd_sc "$HULL" "$root_hull")")
sc_nocache=$(timed run-seccomp-hull-nocache "HULL_SECCOMP_CACHE=0 $(cmd_sc "$HULL" "$root_hull")")
sc_runc=$(timed run-seccomp-runc "$(cmd_sc "$RUNC" "$root_runc")")

echo "measuring peak RSS ..." >&2
rss_hull=$(peak_rss "$HULL" "$root_hull")
rss_runc=$(peak_rss "$RUNC" "$root_runc")

size_hull=$(stat -c %s "$HULL")
size_runc=$(stat -c %s "$RUNC")

{
    echo
    echo "| measure | hull | runc | hull/runc | floor |"
    echo "|---|---:|---:|---:|---:|"
    echo "| run true (ms) | $run_hull | $run_runc | $(ratio "$run_hull" "$run_runc") | $floor |"
    echo "| create+start+delete (ms) | $csd_hull | $csd_runc | $(ratio "$csd_hull" "$csd_runc") | |"
    echo "| state (ms) | $state_hull | $state_runc | $(ratio "$state_hull" "$state_runc") | |"
    echo "| list (ms) | $list_hull | $list_runc | $(ratio "$list_hull" "$list_runc") | |"
    echo "| update (ms) | $update_hull | $update_runc | $(ratio "$update_hull" "$update_runc") | |"
    echo "| events --stats (ms) | $events_hull | $events_runc | $(ratio "$events_hull" "$events_runc") | |"
    echo "| pause+resume (ms) | $pause_hull | $pause_runc | $(ratio "$pause_hull" "$pause_runc") | |"
    echo "| exec true (ms) | $exec_hull | $exec_runc | $(ratio "$exec_hull" "$exec_runc") | |"
    echo "| run true, docker seccomp profile (ms) | $sc_hull | $sc_runc | $(ratio "$sc_hull" "$sc_runc") | |"
    echo "| the same, hull without its filter cache (ms) | $sc_nocache | $sc_runc | $(ratio "$sc_nocache" "$sc_runc") | |"
    echo "| peak RSS of run true (KiB) | $rss_hull | $rss_runc | $(ratio "$rss_hull" "$rss_runc") | |"
    echo "| binary size (bytes) | $size_hull | $size_runc | $(ratio "$size_hull" "$size_runc") | |"
} | tee "$out/table.md"

cat "$out/env.txt" "$out/table.md" >"$repo/bench/out/latest.md"
echo >&2
echo "results: $out (also bench/out/latest.md)" >&2
