# Sourced by the bench scripts: what more than one of them does.

# enter_v1_view SCRIPT ARGS...: with V1VIEW=1, runs SCRIPT again in a private mount namespace
# where /sys/fs/cgroup/unified is unmounted, a v1-only view of this hybrid host in which crun 1.8
# runs; what is unmounted there is unmounted for that run only (bench/README.md).
enter_v1_view() {
    if [ "${V1VIEW:-}" = 1 ] && [ -z "${_HULL_BENCH_V1VIEW:-}" ]; then
        exec unshare --mount --propagation private -- env _HULL_BENCH_V1VIEW=1 bash -c '
            if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified || exit 1; fi
            exec bash "$0" "$@"' "$@"
    fi
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
