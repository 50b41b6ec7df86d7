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
