# Sourced by the bench scripts: what more than one of them does.

# enter_v1_view SCRIPT ARGS...: with V1VIEW=1, runs SCRIPT again in a private mount namespace
# where /sys/fs/cgroup/unified is unmounted, a v1-only view of this hybrid host in which crun 1.8
# runs; what is unmounted there is unmounted for that run only (bench/README.md).
enter_v1_view() {
    if [ "${V1VIEW:-}" = 1 ] && [ -z "${_HULL_BENCH_V1VIEW:-}" ]; then
        exec unshare --mount --propagation private -- env _HULL_BENCH_V1VIEW=1 bash -c '
            if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified || exit 1; fi
            exec "$0" "$@"' "$@"
    fi
}
