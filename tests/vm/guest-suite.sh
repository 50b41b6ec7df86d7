#!/bin/sh
# Runs in the guest as /mnt/hull/run (hull-guest.service starts it): the stages the host asked
# for (`STAGE[,STAGE...] [FILTER...]` in the file args, or as arguments; none: the default
# stages), each under a deadline, then a summary. Fails when a stage fails, when a test stage
# ran fewer tests than it names, or when no stage matched.
#
# The share holds bin/ (hull and the test binaries the host built), hull-path (where the test
# binaries look for hull: the CARGO_BIN_EXE_hull they were built with), validation/ (run.py
# and the guest's expected results) and, under the 9p tag `suite`, an optional built OCI
# validation suite.
set -u
share=/mnt/hull
cd "$share" || exit 99
hull_path=$(cat hull-path)
# shellcheck disable=SC2046
[ $# -eq 0 ] && [ -s args ] && set -- $(cat args)
stages=${1:-all}
[ $# -gt 0 ] && shift
filters="$*"
export HULL_TEST_RUNTIME="$hull_path"
export RUST_BACKTRACE=1

# The OCI validation suite against one runtime (the validation stages run this under their
# deadlines): hull against the guest's expected results (a regression fails), runc for
# comparison.
if [ "$stages" = __validation ]; then
    rt=$1
    shift
    if [ "$rt" = hull ]; then
        bin=$hull_path expected=validation/expected-guest.tsv
    else
        bin=/usr/sbin/runc expected=/dev/null
    fi
    # Files that use cgroups run alone whatever --jobs says.
    # shellcheck disable=SC2086
    exec python3 validation/run.py --suite /opt/runtime-tools --runtime "$bin" --jobs 2 \
        --expected "$expected" --out "$share/validation/$rt" --retry 1 ${1:+--only "$@"}
fi

# The test binaries expect hull where cargo built it on the host.
mkdir -p "$(dirname "$hull_path")" /opt/hull
cp bin/* /opt/hull/
cp bin/hull "$hull_path"

echo "guest: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) cpus"
echo "guest: /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || ls /sys/fs/cgroup | tr '\n' ' ')"
echo "guest: systemd $(systemctl is-system-running), AppArmor: $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo absent)"
echo "guest: $(runc --version | head -n1), $(docker --version), $(podman --version), $(containerd --version | cut -d' ' -f1,3)"
echo "guest: this run's cgroup: $(sed -n 's/^0:://p' /proc/self/cgroup)"

ran=""
failed=""
# stage NAME SECONDS MIN COMMAND...: one stage under a deadline (a hang ends with what it
# printed); a libtest stage must report at least MIN passed tests (0: not a libtest run).
stage() {
    name=$1 limit=$2 min=$3
    shift 3
    case ",$stages," in
    *",$name,"*) ;;
    ,all,) case $name in validation-runc | hybrid) return 0 ;; esac ;;
    *) return 0 ;;
    esac
    ran="$ran $name"
    echo
    echo "=== stage $name (deadline ${limit} s)"
    t0=$(date +%s)
    { timeout -k 10 "$limit" "$@"; echo $? >/tmp/stage.rc; } 2>&1 | tee /tmp/stage.log
    rc=$(cat /tmp/stage.rc)
    [ "$rc" -eq 124 ] && echo "=== stage $name: TIMED OUT"
    passed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed;.*/\1/p' /tmp/stage.log |
        awk '{ n += $1 } END { print n + 0 }')
    if [ "$rc" -eq 0 ] && [ "$passed" -lt "$min" ]; then
        echo "=== stage $name: $passed tests passed, it names $min"
        rc=1
    fi
    echo "=== stage $name: exit $rc in $(($(date +%s) - t0)) s"
    [ "$rc" -eq 0 ] || failed="$failed $name"
}

# With filters, a stage must run at least one test; without, all it names.
some() { if [ -n "$filters" ]; then echo 1; else echo "$1"; fi; }

# hull-cgroups' tests of cgroup2 code on a real unified hierarchy (the v1 ones run on the
# host), and libhull's of the sealed binary's ways on a distribution kernel.
# The sealed tests one at a time: two at once, a_running_copy_cannot_be_opened_for_writing
# has seen its overlay unrecognised on this kernel (not yet understood; see its message).
if [ -n "$filters" ]; then
    # shellcheck disable=SC2086
    stage unit 120 1 sh -c "/opt/hull/hull-cgroups-unit --test-threads=2 $filters && \
        /opt/hull/libhull-unit --test-threads=2 $filters"
else
    # All of hull-cgroups but its v1 modules (stats and events test on v1 hierarchies).
    stage unit 120 47 sh -c '/opt/hull/hull-cgroups-unit --test-threads=2 --skip v1:: \
        --skip stats:: --skip events:: && /opt/hull/libhull-unit --test-threads=1 process::sealed::'
fi

# The guest's own tests (crates/hull/tests/guest): cgroup v2, systemd's cgroup driver and
# AppArmor (systemd_hybrid:: needs the hybrid boot: the `hybrid` stage).
# shellcheck disable=SC2086
stage guest 600 1 /opt/hull/guest --test-threads=2 --skip systemd_hybrid:: $filters

# The systemd driver on a hybrid host: only in a guest booted with
# systemd.unified_cgroup_hierarchy=0 (guest-tests.sh boots one for this stage alone).
# Only its own tests there (libtest's filters add up, they cannot narrow each other).
hybrid_filters=$(for f in $filters; do case $f in systemd_hybrid*) echo "$f" ;; esac; done)
# shellcheck disable=SC2086
stage hybrid 300 1 /opt/hull/guest --test-threads=2 ${hybrid_filters:-systemd_hybrid::}

# The host's client tests whose subject differs on such a host (limits, stats, update, pause,
# OOM, exec on cgroup v2; AppArmor's docker-default), the clients on the cgroupfs driver; and
# the `systemd_` tests, the clients on their default driver, systemd (ignored in
# `cargo test`: they need systemd as PID 1). --include-ignored runs those; --exact with names
# runs no other test, ignored or not.
clients="docker::run_resources_stats_update docker::top_pause_stop_restart docker::oom_kill_reported
docker::exec_output_code_user_env_tty docker::apparmor_docker_default podman::run_resources
podman::top_pause_stats_stop podman::exec_plain_and_it containerd::detached_task_lifecycle
docker::systemd_run_limits_update_exec_pause_stop docker::systemd_oom_kill_reported
podman::systemd_run_limits_update_exec_pause_stop cri::systemd_pod_in_kubepods_slice
podman_rootless::rootless_podman_runs_execs_stops_and_removes_with_hull
podman_rootless::systemd_rootless_podman_runs_in_a_scope_of_the_users_systemd
podman::systemd_checkpoint_restore_and_migrate"
# shellcheck disable=SC2086
stage clients 900 "$(some "$(echo $clients | wc -w)")" /opt/hull/e2e --test-threads=1 \
    --include-ignored --exact ${filters:-$clients}

# The Debian package, when the host built one (.ci/run does, docs/install.md): installed, its
# man pages and completions checked, one docker and one podman container through
# /usr/bin/hull, purged, nothing left. Named by itself it must be there.
if [ -f pkg/hull.deb ]; then
    # It runs its two client tests whatever the filters say.
    stage package 600 2 sh package-check pkg/hull.deb /opt/hull/e2e "$hull_path"
else
    case ",$stages," in
    *,package,*)
        echo "=== stage package: no package passed in (guest-tests.sh passes \$HULL_DEB)"
        ran="$ran package" failed="$failed package"
        ;;
    ,all,) echo "=== stage package skipped: no package passed in (.ci/run builds one)" ;;
    esac
fi

# runc's own integration suite (runc-integration/), asked for by name, when the host passed
# a prepared copy in: the bats files the FILTERs name (checkpoint.bats by default, which
# needs this kernel's CRIU) against hull, and against the guest's runc for comparison.
case ",$stages," in *,runc-bats,*)
    mkdir -p /mnt/runcbats
    if mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,ro runcbats /mnt/runcbats 2>/dev/null; then
        rm -rf /opt/runc-bats
        cp -a /mnt/runcbats /opt/runc-bats || echo "=== runc-bats: copying the suite failed"
        umount /mnt/runcbats
        # get-images.sh asks `go env GOARCH`; the guest has no Go.
        printf '#!/bin/sh\necho amd64\n' >/usr/local/bin/go && chmod 755 /usr/local/bin/go
        # The host's exclusions but those for its CRIU, which works here.
        grep -v 'CRIU does not work on this kernel' runc-integration/excluded.tsv >/tmp/excluded.tsv
        # shellcheck disable=SC2086
        stage runc-bats 1800 0 python3 runc-integration/run.py --suite /opt/runc-bats \
            --runtime "$hull_path" --out "$share/runc-bats/hull" --exclude /tmp/excluded.tsv \
            --timeout-per-file 1500 --only ${filters:-checkpoint}
        # The guest's runc (Debian's 1.1.5) beside it, for comparison only: never a failure.
        echo "=== runc-bats with the guest's runc, for comparison"
        # shellcheck disable=SC2086
        timeout -k 10 1800 python3 runc-integration/run.py --suite /opt/runc-bats \
            --runtime /usr/sbin/runc --out "$share/runc-bats/runc" --exclude /tmp/excluded.tsv \
            --known-failures /dev/null --timeout-per-file 1500 --only ${filters:-checkpoint} || true
    else
        echo "=== stage runc-bats: no prepared runc suite passed in (RUNC_INTEGRATION_DIR)"
        ran="$ran runc-bats" failed="$failed runc-bats"
    fi
    ;;
esac

# The OCI validation suite, when the host passed one in: hull in `validation`, the guest's runc
# beside it in `validation-runc` (asked for by name: it doubles the time).
suite=false
case ",$stages," in *,all,* | *,validation,* | *,validation-runc,*)
    mkdir -p /mnt/suite
    if mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,ro suite /mnt/suite 2>/dev/null; then
        # The tests unpack bundles next to runtimetest: a local, writable copy.
        rm -rf /opt/runtime-tools && cp -a /mnt/suite /opt/runtime-tools && umount /mnt/suite
        mkdir -p "$share/validation"
        suite=true
    else
        echo "no validation suite passed in (guest-tests.sh passes \$RUNTIME_TOOLS_DIR when it holds a built one)"
    fi
    ;;
esac
if $suite; then
    # linux_process_apparmor_profile asks for a profile named acme_secure_profile: with one
    # loaded (allowing what runtimetest does) it checks that the runtime applies it.
    printf '%s\n' 'profile acme_secure_profile flags=(attach_disconnected,mediate_deleted) {' \
        '  file, capability, network, signal, ptrace, unix, mount, umount, pivot_root,' '}' |
        apparmor_parser -r || echo "could not load acme_secure_profile"
    # shellcheck disable=SC2086
    stage validation 900 0 sh "$0" __validation hull $filters
    # shellcheck disable=SC2086
    stage validation-runc 900 0 sh "$0" __validation runc $filters
    if [ -f "$share/validation/hull/results.tsv" ] && [ -f "$share/validation/runc/results.tsv" ]; then
        python3 - "$share/validation/hull/results.tsv" "$share/validation/runc/results.tsv" <<'PY'
import csv, sys
def load(path):
    with open(path) as f:
        return {r["test"]: r for r in csv.DictReader(f, delimiter="\t")}
hull, runc = load(sys.argv[1]), load(sys.argv[2])
cell = lambda r: f"{r['result']} {r['ok']}/{r['total']}" if r else "-"
print(f"\n{'file':40} {'hull':>14} {'runc':>14}")
for name in sorted(set(hull) | set(runc)):
    print(f"{name:40} {cell(hull.get(name)):>14} {cell(runc.get(name)):>14}")
count = lambda d: sum(r["result"] == "PASS" for r in d.values())
print(f"files passed: hull {count(hull)}/{len(hull)}, runc {count(runc)}/{len(runc)}")
PY
    fi
fi

echo
if [ -z "$ran" ]; then
    echo "=== no stage named '$stages' (unit, guest, hybrid, clients, package, runc-bats, validation, validation-runc)"
    exit 2
fi
echo "=== guest stages run:$ran; failed:${failed:- none}"
[ -z "$failed" ]
