#!/usr/bin/env bash
# The guest stage of CI, and the way to run guest tests by hand: builds hull and the test
# binaries on this host, builds (or reuses) the Debian 12 guest image, boots it and runs
# guest-suite.sh there; exits with the guest's verdict.
#
#   tests/vm/guest-tests.sh                      every stage
#   tests/vm/guest-tests.sh STAGE[,STAGE] [FILTER...]   stages: unit, guest, clients,
#                                                       validation, validation-runc
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
for f in "$hull" "$guest" "$e2e" "$unit"; do
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
echo "$hull" >"$share/hull-path"
cp tests/vm/guest-suite.sh "$share/run"
cp runtime-tools-tests/run.py runtime-tools-tests/expected-guest.tsv "$share/validation/"
printf '%s\n' "$@" >"$share/args"
extra=()
tools_dir=${RUNTIME_TOOLS_DIR:-/work/runtime-tools}
if [ -x "$tools_dir/runtimetest" ] && compgen -G "$tools_dir/validation/*/*.t" >/dev/null; then
    extra+=(--share "suite=$tools_dir")
else
    log "no built validation suite at $tools_dir: the guest's validation stage has nothing to run"
fi

log "running the guest suite"
# Boot, then every stage to its deadline in guest-suite.sh (unit 120 s, guest 600, clients 900,
# validation 900, validation-runc 900), then a margin: the stages' own deadlines end a hang
# first, with their output.
rc=0
HULL_VM_TIMEOUT=${HULL_VM_TIMEOUT:-4000} tests/vm/run.sh --image "$image" "${extra[@]}" "$share" || rc=$?

mkdir -p target/vm
rm -rf target/vm/last
cp -r "$share" target/vm/last
rm -rf target/vm/last/bin
log "guest stage: exit $rc after $((SECONDS - start)) s (output in target/vm/last/)"
exit "$rc"
