#!/usr/bin/env bash
# The guest stage of CI, and the way to run guest tests by hand: builds hull and the test
# binaries on this host, builds (or reuses) the Debian 12 guest image, boots it and runs
# guest-suite.sh there; exits with the guest's verdict.
#
#   tests/vm/guest-tests.sh                      every stage but validation-runc
#   tests/vm/guest-tests.sh STAGE[,STAGE] [FILTER...]   stages: unit, guest, hybrid, clients,
#                                                       package, runc-bats, validation,
#                                                       validation-runc
#
# HULL_DEB=<hull_*.deb> passes a built Debian package in for the package stage (.ci/run
# builds one; docs/install.md); RUNC_INTEGRATION_DIR a prepared runc suite for runc-bats.
#
# `hybrid` (the systemd driver on a v1/hybrid host) needs the guest booted with
# systemd.unified_cgroup_hierarchy=0: it runs in a second boot of its own.
#   tests/vm/guest-tests.sh guest cgroup_v2::pause_and_resume_freeze_through_cgroup_freeze
#
# Needs root, cargo, debootstrap, e2fsprogs and qemu-system-x86 (bookworm-backports). The OCI
# validation suite runs when RUNTIME_TOOLS_DIR (default /work/runtime-tools) holds a built one.
# The guest's output and console log are kept in target/vm/ after the run.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
log() { printf '==> %s\n' "$*"; }
start=$SECONDS

log "building hull and the test binaries"
# One cargo call per package: their JSON lines name the executables.
exes=$(
    {
        cargo build -p hull --message-format=json
        cargo test -p hull --test guest --test e2e --no-run --message-format=json
        cargo test -p libhull --lib --no-run --message-format=json
        cargo test -p hull-cgroups --lib --no-run --message-format=json
    } | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        t = m["target"]
        kind = "unit" if t["kind"] == ["lib"] else t["kind"][0]
        print(kind, t["name"], m["executable"])
'
)
exe() { awk -v k="$1" -v n="$2" '$1 == k && $2 == n { print $3 }' <<<"$exes" | tail -n 1; }
hull=$(exe bin hull)
guest=$(exe test guest)
e2e=$(exe test e2e)
unit=$(exe unit libhull)
cgunit=$(exe unit hull_cgroups)
for f in "$hull" "$guest" "$e2e" "$unit" "$cgunit"; do
    [ -x "$f" ] || { echo "guest-tests.sh: a test binary was not built ($exes)" >&2; exit 1; }
done
# `cargo clippy --all-targets` leaves out targets with `test = false`: lint this one here.
cargo clippy -p hull --test guest -- -D warnings

log "guest image"
image=$(tests/vm/image.sh)
tests/vm/selftest.sh "$image"

share=$(mktemp -d /tmp/hull-vm.XXXXXX)
trap 'rm -rf "$share"' EXIT
mkdir -p "$share/bin" "$share/validation"
cp "$hull" "$share/bin/hull"
cp "$guest" "$share/bin/guest"
cp "$e2e" "$share/bin/e2e"
cp "$unit" "$share/bin/libhull-unit"
cp "$cgunit" "$share/bin/hull-cgroups-unit"
echo "$hull" >"$share/hull-path"
cp tests/vm/guest-suite.sh "$share/run"
cp tests/vm/package-check.sh "$share/package-check"
# The Debian package for the package stage, when one was built (.ci/run builds it).
if [ -n "${HULL_DEB:-}" ]; then
    mkdir -p "$share/pkg"
    cp "$HULL_DEB" "$share/pkg/hull.deb"
fi
cp runtime-tools-tests/run.py runtime-tools-tests/expected-guest.tsv "$share/validation/"
extra=()
tools_dir=${RUNTIME_TOOLS_DIR:-/work/runtime-tools}
if [ -x "$tools_dir/runtimetest" ] && compgen -G "$tools_dir/validation/*/*.t" >/dev/null; then
    extra+=(--share "suite=$tools_dir")
else
    log "no built validation suite at $tools_dir: the guest's validation stage has nothing to run"
fi
# runc's integration suite for the runc-bats stage, when a prepared copy is present
# (runc-integration/README.md; never in the repository).
runc_suite=${RUNC_INTEGRATION_DIR:-/work/runc-bats/runc-1.3.6}
if [ -f "$runc_suite/tests/integration/helpers.bash" ] && [ -d "$runc_suite/tests/cmd/_bin" ]; then
    extra+=(--share "runcbats=$runc_suite")
    mkdir -p "$share/runc-integration"
    cp runc-integration/run.py runc-integration/*.tsv "$share/runc-integration/"
fi

# The stages of the main boot, and whether the hybrid boot runs.
stages=${1:-all}
filters=("${@:2}")
hybrid=false
# With filters, "all" means the main boot's stages (the filters name tests of those).
case ",$stages," in *,hybrid,*) hybrid=true ;; ,all,) [ ${#filters[@]} -gt 0 ] || hybrid=true ;; esac
main=$(tr ',' '\n' <<<"$stages" | grep -vx hybrid | paste -sd, - || true)

rc=0
mkdir -p target/vm
if [ -n "$main" ]; then
    log "running the guest suite"
    printf '%s\n' "$main" "${filters[@]}" >"$share/args"
    # Boot, then every stage to its deadline in guest-suite.sh (unit 120 s, guest 600, clients
    # 900, validation 900, validation-runc 900), then a margin: the stages' own deadlines end a
    # hang first, with their output.
    HULL_VM_TIMEOUT=${HULL_VM_TIMEOUT:-4000} tests/vm/run.sh --image "$image" "${extra[@]}" "$share" || rc=$?
    rm -rf target/vm/last
    cp -r "$share" target/vm/last
    rm -rf target/vm/last/bin target/vm/last/pkg
    log "guest suite: exit $rc after $((SECONDS - start)) s (output in target/vm/last/)"
fi
if $hybrid; then
    log "running the hybrid stage (guest booted with systemd.unified_cgroup_hierarchy=0)"
    printf '%s\n' hybrid "${filters[@]}" >"$share/args"
    rm -f "$share/output.log" "$share/console.log" "$share/exit-code"
    hrc=0
    HULL_VM_APPEND=systemd.unified_cgroup_hierarchy=0 HULL_VM_TIMEOUT=900 \
        tests/vm/run.sh --image "$image" "$share" || hrc=$?
    rm -rf target/vm/last-hybrid
    cp -r "$share" target/vm/last-hybrid
    rm -rf target/vm/last-hybrid/bin target/vm/last-hybrid/validation target/vm/last-hybrid/pkg
    log "hybrid stage: exit $hrc (output in target/vm/last-hybrid/)"
    [ "$rc" -ne 0 ] || rc=$hrc
fi
log "guest stage: exit $rc after $((SECONDS - start)) s"
exit "$rc"
