//! Ending a container's processes and releasing what it holds outside its namespaces:
//! shared by `kill`, `delete` and a failed `create`.

use super::*;

/// What a container holds outside its own namespaces, released on delete and failed create.
/// Everything is tried; the first cgroup that could not be removed is returned (delete then
/// keeps the state, so that it can be tried again).
pub(super) fn release_resources(st: &ContainerState) -> Result<(), CgroupError> {
    let cgroups = st.cgroups.as_ref().map_or(Ok(()), Cgroups::remove);
    if config_namespace(st, LinuxNamespaceType::Mount).is_none() {
        if let Err(e) = crate::rootfs::cleanup_host_mounts(&st.rootfs) {
            tracing::warn!("{e}");
        }
    }
    cgroups
}

/// The init (while it lives) and every other process of the container: those in its
/// cgroups, else those in its namespace.
pub(super) fn container_pids(st: &ContainerState) -> Vec<Pid> {
    let mut pids = Vec::new();
    let init_alive = st.has_init();
    if init_alive {
        pids.push(Pid::from_raw(st.pid));
    }
    if let Some(cg) = own_cgroups(st) {
        pids.extend(
            cg.procs()
                .into_iter()
                .filter(|p| *p != st.pid)
                .map(Pid::from_raw),
        );
        return pids;
    }
    let Some(ns) = &st.process_ns else {
        return pids;
    };
    let kind = if ns.starts_with("pid:") { "pid" } else { "mnt" };
    if kind == "pid" && !init_alive {
        // The kernel ends every process of a pid namespace whose init has died.
        return pids;
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid != st.pid
                && std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
                    .is_ok_and(|p| p.as_os_str() == ns.as_str())
            {
                pids.push(Pid::from_raw(pid));
            }
        }
    }
    pids
}

/// SIGKILLs every process of the container and waits until they are gone.
/// The caller holds the container's lock, so no `exec` adds a process meanwhile.
pub(super) fn kill_everything(st: &ContainerState) {
    // The usual end of a `run`: the init gone, its cgroups empty. Nothing to freeze or
    // signal, and no process can enter them while the lock is held.
    if !st.has_init() && own_cgroups(st).is_some_and(Cgroups::is_empty) {
        return;
    }
    // Thawed around the kill: a cgroup the container froze itself, below its own, would
    // keep its processes (v1) and make the cgroups impossible to remove.
    if let Some(cg) = own_cgroups(st) {
        cg.thaw_all();
        let _ = cg.signal_all(libc::SIGKILL);
        cg.thaw_all();
    }
    for pid in container_pids(st) {
        let _ = kill(pid, Signal::SIGKILL);
    }
    wait_gone(st, Duration::from_secs(10));
    if let Some(cg) = own_cgroups(st) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rounds = 0u32;
        while !cg.procs().is_empty() && Instant::now() < deadline {
            rounds += 1;
            if rounds % 20 == 0 {
                // A process that was frozen when the signal came gets it once thawed.
                cg.thaw_all();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Polls until the container's init is gone (or a zombie), up to `limit`.
pub(super) fn wait_gone(st: &ContainerState, limit: Duration) {
    let deadline = Instant::now() + limit;
    while st.has_init() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
