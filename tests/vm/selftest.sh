#!/usr/bin/env bash
# Checks run.sh's failure paths without a full guest run: bad arguments fail with one line
# naming what is wrong; a guest that does not come up in time ends the run with exit 125 and
# the console's last lines, and no qemu process or share file of the run is left behind; a
# run.sh killed with SIGKILL takes its qemu with it. (TCG: no guest boots in 3 s there.)
# guest-tests.sh runs it before every guest run (a few seconds).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=${1:?usage: selftest.sh IMAGE_DIR}
scratch=$(mktemp -d /tmp/hull-vm-selftest.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "selftest: FAIL: $*" >&2; exit 1; }
qemus() { pgrep -f "qemu-system-x86_64 .*$scratch" || true; }

# expect CODE NEEDLE COMMAND...: the command exits CODE and its stderr holds NEEDLE.
expect() {
    local code=$1 needle=$2 rc=0
    shift 2
    "$@" >"$scratch/out" 2>"$scratch/err" || rc=$?
    [ "$rc" -eq "$code" ] || fail "$* exited $rc, not $code: $(cat "$scratch/err")"
    grep -qF -- "$needle" "$scratch/err" || fail "$*: no '$needle' in: $(cat "$scratch/err")"
}

mkdir -p "$scratch/empty" "$scratch/share"
expect 2 "run: no such file" "$here/run.sh" --image "$image" "$scratch/empty"
echo 'echo never' >"$scratch/share/run"
expect 2 "$scratch/nothing/vmlinuz: no such file" "$here/run.sh" --image "$scratch/nothing" "$scratch/share"
expect 2 "HULL_VM_ACCEL=xen: must be kvm or tcg" env HULL_VM_ACCEL=xen "$here/run.sh" --image "$image" "$scratch/share"
expect 2 "is not a directory" "$here/run.sh" --image "$image" --share "x=$scratch/nope" "$scratch/share"

# No guest boots in 3 s under emulation: the boot deadline must end it.
expect 125 "did not come up within 3 s" env HULL_VM_ACCEL=tcg HULL_VM_BOOT_TIMEOUT=3 HULL_VM_QUIET=1 \
    "$here/run.sh" --image "$image" "$scratch/share"
grep -qF "the console's last lines" "$scratch/err" || fail "no console lines after a boot timeout"
[ -z "$(qemus)" ] || fail "qemu left running: $(qemus)"
[ ! -e "$scratch/share/exit-code" ] || fail "an exit code from a guest that never ran"
# run.sh killed outright (no trap runs): qemu must die with it.
env HULL_VM_ACCEL=tcg HULL_VM_QUIET=1 "$here/run.sh" --image "$image" "$scratch/share" \
    >"$scratch/out" 2>&1 &
runner=$!
for _ in $(seq 50); do
    [ -n "$(qemus)" ] && break
    sleep 0.1
done
[ -n "$(qemus)" ] || fail "qemu did not start: $(cat "$scratch/out")"
# (The shell's "Killed" notice goes with wait's stderr.)
{ kill -KILL "$runner" && wait "$runner"; } 2>/dev/null || true
for _ in $(seq 50); do
    [ -z "$(qemus)" ] && break
    sleep 0.1
done
[ -z "$(qemus)" ] || fail "qemu outlived a killed run.sh: $(qemus)"
echo "selftest: run.sh refuses bad input, ends a guest that does not come up, and its qemu dies with it"
