#!/usr/bin/env bash
# Boots the guest image once, runs SHARE/run in it as root (through hull-guest.service, in a
# delegated cgroup of a systemd unit), and brings back SHARE/output.log, SHARE/console.log and
# the script's exit code, which becomes this script's. 124: the run timed out; 125: the guest
# did not come up or did not finish (the console's last lines are printed).
#
#   run.sh [--image DIR] [--share TAG=DIR]... SHARE
#
# SHARE is mounted at /mnt/hull in the guest (9p, read-write); each extra --share at
# /mnt/TAG is mounted by the run script itself (`mount -t 9p -o trans=virtio TAG /mnt/TAG`).
# The disk is opened with snapshot=on: the image is never changed, every run starts clean.
#
#   HULL_VM_TIMEOUT       seconds for the whole run, boot included (default 1500)
#   HULL_VM_BOOT_TIMEOUT  seconds until the guest must report it is up (default 300)
#   HULL_VM_ACCEL         kvm or tcg (default: kvm where /dev/kvm is usable, else tcg)
#   HULL_VM_MEMORY, HULL_VM_CPUS  guest size (default 4096 MiB, the host's cpu count)
#   HULL_VM_QUIET=1       do not copy the console to stdout while it runs
#   HULL_VM_APPEND        more kernel command line (systemd.unified_cgroup_hierarchy=0 boots
#                         the guest with hybrid cgroups, as older systemd hosts run)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=""
shares=()
while [ $# -gt 1 ]; do
    case $1 in
    --image) image=$2; shift 2 ;;
    --share) shares+=("$2"); shift 2 ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: run.sh [--image DIR] [--share TAG=DIR]... SHARE" >&2; exit 2; }
share=$(cd "$1" && pwd)
[ -f "$share/run" ] || { echo "run.sh: $share/run: no such file (the script to run in the guest)" >&2; exit 2; }
[ -n "$image" ] || image=$("$here/image.sh")
for f in vmlinuz initrd.img disk.img; do
    [ -f "$image/$f" ] || { echo "run.sh: $image/$f: no such file (build the image with image.sh)" >&2; exit 2; }
done
# image.sh removes images of old inputs under an exclusive lock: hold a shared one while this
# image is in use.
if [ -e "$image/../.lock" ]; then
    exec 9<"$image/../.lock"
    flock -s 9
fi
command -v qemu-system-x86_64 >/dev/null ||
    { echo "run.sh: qemu-system-x86_64 not found (apt-get install -t bookworm-backports qemu-system-x86)" >&2; exit 2; }

timeout=${HULL_VM_TIMEOUT:-1500}
boot_timeout=${HULL_VM_BOOT_TIMEOUT:-300}
accel=${HULL_VM_ACCEL:-}
if [ -z "$accel" ]; then
    # A /dev/kvm without vmx/svm (a paravirtual one such as PVM) cannot boot a distribution
    # kernel: only real hardware virtualization counts.
    if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; else accel=tcg; fi
fi
case $accel in
kvm) accel_args=(-accel kvm -cpu host) ;;
tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
*) echo "run.sh: HULL_VM_ACCEL=$accel: must be kvm or tcg" >&2; exit 2 ;;
esac

share_args=(-virtfs "local,path=$share,mount_tag=hull,security_model=none,id=hull")
for s in "${shares[@]}"; do
    tag=${s%%=*} dir=${s#*=}
    [ -d "$dir" ] || { echo "run.sh: --share $s: $dir is not a directory" >&2; exit 2; }
    share_args+=(-virtfs "local,path=$dir,mount_tag=$tag,security_model=none,id=$tag")
done

rm -f "$share/exit-code" "$share/.rc" "$share/output.log"
console=$share/console.log
: >"$console"
qemu_pid=""
tail_pid=""
cleanup() {
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill -KILL "$qemu_pid" 2>/dev/null
    fi
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
echo "run.sh: booting $image ($accel, ${HULL_VM_CPUS:-$(nproc)} cpus, ${HULL_VM_MEMORY:-4096} MiB)"
# qemu dies with this script even when no trap can run (SIGKILL): its parent-death signal.
setpriv --pdeathsig KILL qemu-system-x86_64 "${accel_args[@]}" \
    -smp "${HULL_VM_CPUS:-$(nproc)}" -m "${HULL_VM_MEMORY:-4096}" \
    -display none -monitor none -serial "file:$console" -no-reboot -nic none \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=false panic=-1 ${HULL_VM_APPEND:-}" \
    -drive "file=$image/disk.img,format=raw,if=virtio,snapshot=on" \
    "${share_args[@]}" </dev/null >"$share/qemu.log" 2>&1 &
qemu_pid=$!
if [ "${HULL_VM_QUIET:-0}" != 1 ]; then
    tail -n +1 -f --pid="$qemu_pid" "$console" &
    tail_pid=$!
fi

up=false
failure=""
while kill -0 "$qemu_pid" 2>/dev/null; do
    elapsed=$((SECONDS - start))
    if ! $up && grep -q '^hull-guest: up' "$console"; then
        up=true
    fi
    if ! $up && [ "$elapsed" -ge "$boot_timeout" ]; then
        failure="the guest did not come up within ${boot_timeout} s"
        break
    fi
    if [ "$elapsed" -ge "$timeout" ]; then
        failure="the guest run did not finish within ${timeout} s"
        break
    fi
    sleep 1
done
if [ -n "$failure" ]; then
    kill -KILL "$qemu_pid" 2>/dev/null || true
fi
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""
[ -n "$tail_pid" ] && { wait "$tail_pid" 2>/dev/null || true; tail_pid=""; }

# A guest that wrote its exit code finished, even if the deadline struck before it powered off.
if [ -f "$share/exit-code" ]; then
    rc=$(cat "$share/exit-code")
    echo "run.sh: guest finished in $((SECONDS - start)) s with exit code $rc"
    exit "$rc"
fi
[ -n "$failure" ] || failure="the guest stopped without an exit code"
echo "run.sh: $failure; qemu: $(tail -n 3 "$share/qemu.log" | tr '\n' ' ')" >&2
echo "run.sh: the console's last lines:" >&2
tail -n 40 "$console" | sed 's/^/  | /' >&2
case $failure in *"did not finish"*) exit 124 ;; esac
exit 125
