//! The host's cgroup filesystems as mounted where hull runs: the v1 hierarchies and the
//! cgroup2 mount, each with the cgroup its root is.

use std::path::PathBuf;

use crate::error::CgroupError;

/// The cgroup filesystems of the host, as mounted where hull runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostMounts {
    /// v1 hierarchies: controllers, mount point, and the cgroup the mount's root is.
    pub(crate) v1: Vec<(Vec<String>, PathBuf, String)>,
    /// The cgroup2 mount, with the cgroup its root is.
    pub(crate) unified: Option<(PathBuf, String)>,
}

/// The host's cgroup mounts, read once per process: one command asks several times, and
/// they do not change under it.
pub(crate) fn host_mounts() -> Result<HostMounts, CgroupError> {
    static MOUNTS: std::sync::OnceLock<HostMounts> = std::sync::OnceLock::new();
    if let Some(m) = MOUNTS.get() {
        return Ok(m.clone());
    }
    let m = read_host_mounts()?;
    Ok(MOUNTS.get_or_init(|| m).clone())
}

fn read_host_mounts() -> Result<HostMounts, CgroupError> {
    let table = hull_sys::mountinfo::read_self().map_err(|source| CgroupError::Io {
        step: "read",
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    let mut out = HostMounts::default();
    for m in table {
        match m.fs_type.as_str() {
            "cgroup" => {
                let controllers: Vec<String> = m
                    .super_options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("release_agent"))
                    .filter(|o| !matches!(*o, "clone_children" | "noprefix" | "xattr"))
                    .filter(|o| !o.starts_with("cpuset_v2_mode"))
                    .map(str::to_string)
                    .collect();
                // A hierarchy mounted twice (bound somewhere else too) counts once.
                if !controllers.is_empty() && !out.v1.iter().any(|h| h.0 == controllers) {
                    out.v1.push((controllers, m.mount_point, m.root));
                }
            }
            "cgroup2" if out.unified.is_none() => out.unified = Some((m.mount_point, m.root)),
            _ => {}
        }
    }
    Ok(out)
}
