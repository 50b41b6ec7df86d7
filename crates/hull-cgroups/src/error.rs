//! The cgroup managers' error: each names the config field or the file it failed on.

use std::io;
use std::path::PathBuf;

/// A failure to place or limit a container; each names the config field or the file.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A value in the config the kernel would refuse or that makes no sense.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// runc 1.2+'s refusal (its words): the cgroup holds another's processes.
    #[error("container's cgroup is not empty: {count} process(es) found ({dir})")]
    NotEmpty { dir: PathBuf, count: usize },
    /// The host cannot do what a field asks (controller not mounted, file missing).
    #[error("{field}: {reason}")]
    Unsupported { field: String, reason: String },
    /// Writing a limit failed.
    #[error("{field}: write {value:?} to {}: {source}", path.display())]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    /// Any other step on a cgroup file or directory.
    #[error("{step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    Path { path: String, reason: String },
    /// systemd could not be reached (`--systemd-cgroup`).
    #[error("--systemd-cgroup: cannot talk to systemd over D-Bus ({bus}): {reason}")]
    Bus { bus: String, reason: String },
    /// systemd refused or failed a step on the container's unit.
    #[error("systemd: {step} {unit}: {reason}")]
    Systemd {
        step: &'static str,
        unit: String,
        reason: String,
    },
}

impl CgroupError {
    /// Whether the kernel refused for lack of rights (not a bad value).
    pub fn is_permission(&self) -> bool {
        let source = match self {
            CgroupError::Write { source, .. } | CgroupError::Io { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.raw_os_error(),
            Some(libc::EACCES | libc::EPERM | libc::EROFS)
        )
    }
}
