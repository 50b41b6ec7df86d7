#!/bin/sh
# Runs in the guest as /mnt/hull/run (hull-guest.service starts it): the stages the host asked
# for (`STAGE[,STAGE...] [FILTER...]` in the file args, or as arguments; none: every
# stage), each under a deadline, then a summary. Fails when a stage fails.
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
stage_arg=${1:-all}
[ $# -gt 0 ] && shift
filters="$*"
export HULL_TEST_RUNTIME="$hull_path"
export RUST_BACKTRACE=1

# The OCI validation suite (the `validation` stage runs this under its deadline): hull
# against the guest's expected results (a regression fails the stage), then the guest's runc
# for comparison only.
if [ "$stage_arg" = __validation ]; then
    mkdir -p /mnt/suite
    if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,ro suite /mnt/suite 2>/dev/null; then
        echo "no validation suite passed in (tests/vm/guest-tests.sh passes \$RUNTIME_TOOLS_DIR when built)"
        exit 0
    fi
    # The tests read runtimetest and the rootfs tarball from their working directory.
    rm -rf /opt/runtime-tools && cp -a /mnt/suite /opt/runtime-tools && umount /mnt/suite
    mkdir -p "$share/validation"
    echo "--- validation suite against hull"
    # shellcheck disable=SC2086
    python3 validation/run.py --suite /opt/runtime-tools --runtime "$hull_path" \
        --expected validation/expected-guest.tsv --out "$share/validation/hull" --retry 1 \
        ${filters:+--only $filters}
    rc=$?
    echo "--- validation suite against the guest's runc $(runc --version | sed -n 's/^runc version //p') (for comparison)"
    # shellcheck disable=SC2086
    python3 validation/run.py --suite /opt/runtime-tools --runtime /usr/sbin/runc \
        --expected /dev/null --out "$share/validation/runc" ${filters:+--only $filters} \
        >"$share/validation/runc.log" 2>&1
    grep -E '^(PASS|FAIL|# files)' "$share/validation/runc.log"
    exit $rc
fi

# The test binaries expect hull where cargo built it on the host.
mkdir -p "$(dirname "$hull_path")" /opt/hull
cp bin/* /opt/hull/
cp bin/hull "$hull_path"

echo "guest: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) cpus"
echo "guest: /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "guest: systemd $(systemctl is-system-running), AppArmor: $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo absent)"
echo "guest: this run's cgroup: $(sed -n 's/^0:://p' /proc/self/cgroup)"

failed=""
passed=""
# stage NAME SECONDS COMMAND...: one stage under a deadline (a hang ends with what it printed).
stage() {
    name=$1 limit=$2
    shift 2
    case ",$stage_arg," in ,all, | *",$name,"*) ;; *) return 0 ;; esac
    echo
    echo "=== stage $name (deadline ${limit} s)"
    t0=$(date +%s)
    timeout -k 10 "$limit" "$@"
    rc=$?
    [ $rc -eq 124 ] && echo "=== stage $name: TIMED OUT"
    echo "=== stage $name: exit $rc in $(($(date +%s) - t0)) s"
    if [ $rc -eq 0 ]; then passed="$passed $name"; else failed="$failed $name"; fi
}

# libhull's tests of cgroup2 code on a real unified hierarchy (the v1 ones run on the host).
# shellcheck disable=SC2086
stage unit 300 /opt/hull/libhull-unit --test-threads=2 ${filters:-cgroups::v2:: cgroups::devices_bpf:: cgroups::tests::}

# The guest's own tests (crates/hull/tests/guest): cgroup v2 and AppArmor.
# shellcheck disable=SC2086
stage guest 1200 /opt/hull/guest --test-threads=2 $filters

# The host's client tests whose subject differs on cgroup v2 (limits, stats, update, pause,
# OOM, exec), the clients on the cgroupfs driver.
clients="docker::run_resources_stats_update docker::top_pause_stop_restart docker::oom_kill_reported
docker::exec_output_code_user_env_tty podman::run_resources podman::top_pause_stats_stop
podman::exec_plain_and_it containerd::detached_task_lifecycle docker::apparmor_docker_default"
# shellcheck disable=SC2086
stage clients 1200 /opt/hull/e2e --test-threads=1 --exact ${filters:-$clients}

# shellcheck disable=SC2086
stage validation 1800 sh "$0" __validation $filters

echo
echo "=== guest stages passed:${passed:- none}; failed:${failed:- none}"
[ -z "$failed" ]
