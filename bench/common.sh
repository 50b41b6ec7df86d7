# Sourced by the bench scripts: what more than one of them does.

# enter_bench_namespace SCRIPT ARGS...: runs SCRIPT again in a private mount namespace, so that
# what the bench mounts or unmounts is gone with it: the tmpfs of the state roots
# (state_tmpfs), and with V1VIEW=1 /sys/fs/cgroup/unified, a v1-only view of this hybrid host in
# which crun 1.8 runs (bench/README.md). The host's own mounts are not touched.
enter_bench_namespace() {
    if [ -z "${_HULL_BENCH_NS:-}" ]; then
        exec unshare --mount --propagation private -- env _HULL_BENCH_NS=1 bash -c '
            if [ "${V1VIEW:-}" = 1 ] && mountpoint -q /sys/fs/cgroup/unified; then
                umount /sys/fs/cgroup/unified || exit 1
            fi
            exec bash "$0" "$@"' "$@"
    fi
}

# make_scratch NAME: sets `scratch` to a new directory /tmp/hull-NAME.XXXXXX with a tmpfs at
# $scratch/state for the runtimes' state roots, as /run is on a host with systemd (on this
# machine kind /run is on ext4, where replacing a state file by a rename costs every runtime
# about 0.3 ms a write). Called inside enter_bench_namespace's namespace.
make_scratch() {
    scratch=$(mktemp -d "/tmp/hull-$1.XXXXXX")
    chmod 0755 "$scratch"
    mkdir "$scratch/state"
    mount -t tmpfs -o mode=0711,size=256m hull-bench-state "$scratch/state" ||
        die "cannot mount a tmpfs at $scratch/state"
}

# drop_scratch: removes what make_scratch made.
drop_scratch() {
    umount "$scratch/state" 2>/dev/null || true
    rm -rf "$scratch"
}

# runtimes_from_env: the runtimes to compare, from HULL, RUNC (default /usr/sbin/runc; empty for
# none) and REFS ("label=path ..."), as the arrays `labels` and `bins` (hull first) and their
# count `n`. Uses the caller's `die`.
runtimes_from_env() {
    local ref label bin
    [ -x "$HULL" ] || die "no hull binary at $HULL (build it with: cargo build --release, or set HULL=path)"
    labels=(hull)
    bins=("$(readlink -f "$HULL")")
    if [ -n "$RUNC" ]; then
        [ -x "$RUNC" ] || die "no runc binary at $RUNC (set RUNC=path, or RUNC= for none)"
        labels+=(runc)
        bins+=("$(readlink -f "$RUNC")")
    fi
    for ref in ${REFS:-}; do
        label=${ref%%=*}
        bin=${ref#*=}
        [[ $label =~ ^[A-Za-z0-9_.-]+$ ]] || die "REFS: '$label' is not a label of letters, digits, '_', '.', '-'"
        [ -x "$bin" ] || die "REFS: no binary at $bin (for $label)"
        labels+=("$label")
        bins+=("$(readlink -f "$bin")")
    done
    n=${#labels[@]}
}

# make_bundle DIR HULL: a bundle at DIR that every runtime here runs: a static busybox (one hard
# link per applet) as its rootfs, and HULL's default spec (runc's template) with no terminal,
# running /bin/true, with ociVersion 1.0.2 (crun 1.8 refuses 1.2). BUSYBOX overrides
# /usr/bin/busybox. Uses the caller's `die`.
make_bundle() {
    local dir=$1 hull=$2 busybox=${BUSYBOX:-/usr/bin/busybox}
    [ -x "$busybox" ] || die "no busybox at $busybox (apt-get install busybox-static, or set BUSYBOX=path)"
    ! ldd "$busybox" >/dev/null 2>&1 || die "$busybox is dynamically linked: the rootfs needs busybox-static"
    command -v python3 >/dev/null || die "python3 is needed to write the bundle's config.json"
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp" "$dir/rootfs/etc"
    cp "$busybox" "$dir/rootfs/bin/busybox"
    "$dir/rootfs/bin/busybox" --install "$dir/rootfs/bin"
    (cd "$dir" && "$hull" spec) || die "$hull spec failed"
    python3 - "$dir/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["ociVersion"] = "1.0.2"
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=2)
PY
}
