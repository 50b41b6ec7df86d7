//! The state store: `<root>/<id>/state.json`, its per-container lock, and the status of a
//! container as derived from its live init process.
//!
//! A container's directory is created with `mkdir`, which is what makes "already exists"
//! atomic; every command that reads or changes a container holds an exclusive `flock` on the
//! directory, so concurrent commands on one id run one after the other.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "state.json";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container with given ID already exists")]
    Exists,
    #[error("container does not exist")]
    NotExist,
    #[error("invalid container id {0:?}: must match [A-Za-z0-9_+.-]+ and not be . or ..")]
    InvalidId(String),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read {path}: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// runc's id rule.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// The lifecycle status, as the runtime-spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What hull keeps about a container between commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of the container's init (0 before it exists).
    pub pid: i32,
    /// Start time of the init in clock ticks since boot (field 22 of /proc/pid/stat), so that a
    /// recycled pid is never mistaken for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    pub owner: String,
    /// Set by `start` once the user process has been exec'ed.
    pub started: bool,
    /// Set while `create` is still setting the container up.
    #[serde(default)]
    pub creating: bool,
    /// Device and inode of the runtime binary the init was cloned from: once the init's
    /// executable is another file, it has exec'ed, even if the `start` that released it died
    /// before it could record so.
    #[serde(default)]
    pub runtime_exe: Option<(u64, u64)>,
    /// The namespace that tells the container's processes apart from the host's, as
    /// `/proc/PID/ns/<kind>` reads (`pid:[4026532…]`): the container's own pid namespace, else
    /// its own mount namespace. Kept so that processes the init left behind are still found
    /// after it is gone.
    #[serde(default)]
    pub process_ns: Option<String>,
    /// The container's cgroups, and which of their directories hull made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<hull_cgroups::Cgroups>,
    /// `--rootless` as create resolved it: an `exec` whose process may not join the
    /// container's cgroups runs it outside them (runc keeps it in the container's config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootless_cgroups: Option<bool>,
    /// The caller's `NOTIFY_SOCKET` at create: `start` tells it when the container is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_socket: Option<PathBuf>,
    /// `creating`, but the `create` that holds the lock throughout is gone (found by whoever
    /// got the lock): the container never became one.
    #[serde(skip)]
    pub creator_gone: bool,
    /// The config the container was created from; hooks and later commands use this, not the
    /// bundle, which may have changed or gone.
    pub config: Spec,
}

/// The runtime-spec state object, with runc's extra fields, as `state` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty", default)]
    pub annotations: std::collections::HashMap<String, String>,
    pub owner: String,
}

impl ContainerState {
    /// Derives the status from the init process: gone, a zombie or a recycled pid means stopped.
    pub fn status(&self) -> Status {
        if self.creating {
            // No init yet (pid 0: recorded before the clone) or one still being set up; a
            // create that died leaves a container that never was.
            return if self.creator_gone {
                Status::Stopped
            } else {
                Status::Creating
            };
        }
        if !self.has_init() {
            return Status::Stopped;
        }
        if frozen(self) {
            // Paused wins over created, as in runc: resume brings back `created`.
            Status::Paused
        } else if !self.started && !self.init_execed() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// Whether the init exists and lives: not a state recorded before the clone (pid 0), not
    /// gone, a zombie or a recycled pid.
    pub fn has_init(&self) -> bool {
        self.pid > 0
            && proc_stat(self.pid).is_some_and(|(state, start)| {
                start == self.pid_start_time && state != 'Z' && state != 'X'
            })
    }

    fn init_execed(&self) -> bool {
        let Some(runtime) = self.runtime_exe else {
            return false;
        };
        // Before exec the init is not dumpable, so only a privileged caller can look; one that
        // cannot sees `created`, as without this check.
        exe_id(&format!("/proc/{}/exe", self.pid)).is_some_and(|now| now != runtime)
    }

    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: crate::spec::OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.config.annotations().clone().unwrap_or_default(),
            owner: self.owner.clone(),
        }
    }
}

/// A container is paused while its freezer cgroup is frozen.
fn frozen(state: &ContainerState) -> bool {
    state.cgroups.as_ref().is_some_and(|c| c.is_frozen())
}

/// Device and inode of the file at `path` (following links).
pub fn exe_id(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The state (field 3) and start time (field 22) of a process, from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    hull_sys::proc::stat(pid)
}

/// The directory holding every container's state.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the container's directory and locks it. Fails with "already exists" if any
    /// other command made it first.
    pub fn create(&self, id: &str) -> Result<Entry, StateError> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(io("create state root", &self.root))?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists)
            }
            Err(e) => return Err(io("create state dir", &dir)(e)),
        }
        Entry::lock(dir)
    }

    /// Opens and locks an existing container.
    pub fn open(&self, id: &str) -> Result<Entry, StateError> {
        validate_id(id)?;
        let dir = self.dir(id);
        let entry = match Entry::lock(dir) {
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotExist)
            }
            other => other?,
        };
        // A directory without a state file is a create that has not finished, or one that
        // died before it wrote anything: neither is a container to act on.
        if !entry.dir.join(STATE_FILE).exists() {
            return Err(StateError::NotExist);
        }
        Ok(entry)
    }

    /// Reads a container's state without taking its lock: state.json is only ever replaced
    /// by a rename, so it is always whole. `state` and `list` use this, so that a hook calling
    /// `hull state` while `create` or `start` holds the lock gets an answer.
    pub fn read(&self, id: &str) -> Result<ContainerState, StateError> {
        validate_id(id)?;
        let dir = self.dir(id);
        let mut st = read_state(dir.join(STATE_FILE))?;
        if st.creating {
            st.creator_gone = lock_is_free(&dir);
        }
        Ok(st)
    }

    /// Opens and locks a container directory whether or not its state was written: what a
    /// create killed halfway leaves behind.
    pub fn open_partial(&self, id: &str) -> Result<Entry, StateError> {
        validate_id(id)?;
        Entry::lock(self.dir(id))
    }

    /// The ids of every container in the store, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read state root", &self.root)(e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// A locked container directory. The lock is released when this is dropped.
#[derive(Debug)]
pub struct Entry {
    dir: PathBuf,
    lock: File,
}

impl Entry {
    fn lock(dir: PathBuf) -> Result<Entry, StateError> {
        let lock = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
            .map_err(io("open state dir", &dir))?;
        hull_sys::fs::flock_exclusive(lock.as_fd(), true)
            .map_err(|e| io("lock state dir", &dir)(e.into()))?;
        // The holder we waited for may have deleted the container (and another create made a
        // new one at the same path): the lock is only good on the directory that is there.
        use std::os::unix::fs::MetadataExt;
        let held = lock.metadata().map_err(io("stat state dir", &dir))?;
        match fs::metadata(&dir) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {}
            _ => {
                return Err(io("lock state dir", &dir)(
                    std::io::Error::from_raw_os_error(libc::ENOENT),
                ))
            }
        }
        Ok(Entry { dir, lock })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn dir_fd(&self) -> &File {
        &self.lock
    }

    /// Reads the state. Holding the lock, which `create` keeps until it is done, a state
    /// still marked `creating` is one whose create died.
    pub fn load(&self) -> Result<ContainerState, StateError> {
        let mut st = read_state(self.dir.join(STATE_FILE))?;
        st.creator_gone = st.creating;
        Ok(st)
    }

    /// Writes state.json atomically: a temp file in the same directory, then rename.
    pub fn save(&self, state: &ContainerState) -> Result<(), StateError> {
        let data = serde_json::to_vec(state).expect("state serializes");
        write_atomic(&self.dir.join(STATE_FILE), &data, 0o600)
    }

    /// Removes the directory and everything in it. A restore's bind of the rootfs left in it
    /// (`criu-root`, by a restore killed while CRIU ran) is detached first: removing the
    /// directory must never walk into the rootfs.
    pub fn remove(self) -> Result<(), StateError> {
        let root = self.dir.join("criu-root");
        if root.exists() {
            let _ = nix::mount::umount2(&root, nix::mount::MntFlags::MNT_DETACH);
        }
        fs::remove_dir_all(&self.dir).map_err(io("remove state dir", &self.dir))
    }
}

/// Whether nobody holds the lock of `dir` (probed without waiting, and let go at once).
fn lock_is_free(dir: &Path) -> bool {
    let Ok(f) = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
    else {
        return false;
    };
    // The lock goes with `f`.
    hull_sys::fs::flock_exclusive(f.as_fd(), false).is_ok()
}

fn read_state(path: PathBuf) -> Result<ContainerState, StateError> {
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotExist),
        Err(e) => return Err(io("read", &path)(e)),
    };
    serde_json::from_slice(&data).map_err(|source| StateError::Corrupt { path, source })
}

/// Writes `data` to `path` through a temp file and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // The directory may be writable by others (a pid file's): the temporary file is always
    // a new one (O_EXCL), never an entry someone planted, symlink or not, under a name
    // that cannot be guessed ahead.
    let mut tries = 0;
    let (tmp, mut f) = loop {
        let tmp = dir.join(format!(
            ".{name}.{}.{:08x}",
            std::process::id(),
            random_u32()
        ));
        match File::options()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            Err(e) => return Err(io("create", &tmp)(e)),
        }
    };
    // No fsync: state lives on tmpfs (/run) and must survive a crash of hull, not of the
    // machine; the rename alone keeps readers from seeing half a file.
    let written = f.write_all(data);
    drop(f);
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", path)(e));
    }
    Ok(())
}

/// 32 random bits from the kernel; the clock's nanoseconds where getrandom fails.
fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    if hull_sys::fs::random_bytes(&mut buf).is_ok() {
        return u32::from_ne_bytes(buf);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for ok in ["a", "A-b_c+d.e", "123", "..."] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", "a\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    fn live_state(pid: i32, start_time: u64) -> ContainerState {
        ContainerState {
            id: "c".into(),
            pid,
            pid_start_time: start_time,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: String::new(),
            started: true,
            creating: false,
            runtime_exe: None,
            process_ns: None,
            cgroups: None,
            rootless_cgroups: None,
            creator_gone: false,
            notify_socket: None,
            config: Spec::default(),
        }
    }

    #[test]
    fn a_recycled_pid_is_not_the_container() {
        let me = std::process::id() as i32;
        let (_, start) = proc_stat(me).unwrap();
        assert_eq!(live_state(me, start).status(), Status::Running);
        // Same pid, another start time: a different process that got the pid again.
        assert_eq!(live_state(me, start + 1).status(), Status::Stopped);
        assert_eq!(live_state(0, start).status(), Status::Stopped);
    }

    #[test]
    fn proc_stat_reads_own_process() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!("RS".contains(state), "{state}");
        assert!(start > 0);
        assert!(proc_stat(i32::MAX).is_none());
    }
}
