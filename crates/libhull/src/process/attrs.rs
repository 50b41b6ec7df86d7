//! Process attributes the init sets before exec: rlimits, oom_score_adj, session keyring,
//! sysctls, hostname and domainname, no_new_privs and the user/group switch (scheduling
//! attributes are in `scheduling`).
//!
//! Each function does one step and returns an error naming the step and the value. Most act
//! on the calling process; the `_of(pid, …)` variants are for the steps runc takes from the
//! parent, which keeps privileges the init loses once it is in a user namespace: rlimits
//! (prlimit after the init reports ready) and oom_score_adj (written before the user
//! namespace exists).
//!
//! Writes under /proc go through a private, verified procfs handle (libpathrs), so a container
//! that mounts over /proc cannot redirect them (CVE-2019-16884, CVE-2025-52881).

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{Read, Write};

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Pid, Uid};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType, User};
use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle, ProcfsHandleBuilder};

use crate::capabilities::{self, CapsError};
use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    #[error("hold capabilities across the user switch: {0}")]
    KeepCaps(#[source] CapsError),
    #[error("read /proc/self/setgroups: {source}")]
    ReadSetgroups {
        #[source]
        source: std::io::Error,
    },
    #[error("set additional gids {gids:?}: setgroups is denied in this user namespace (/proc/self/setgroups is \"deny\")")]
    SetgroupsDenied { gids: Vec<u32> },
    #[error("set additional gids {gids:?}: {source}")]
    Setgroups {
        gids: Vec<u32>,
        #[source]
        source: Errno,
    },
    #[error("set gid {gid}: {source}{}", unmapped_hint(*.source))]
    Setgid {
        gid: u32,
        #[source]
        source: Errno,
    },
    #[error("set uid {uid}: {source}{}", unmapped_hint(*.source))]
    Setuid {
        uid: u32,
        #[source]
        source: Errno,
    },
    #[error("chown stdio fd {fd} to uid {uid}: {source}")]
    ChownStdio {
        fd: i32,
        uid: u32,
        #[source]
        source: Errno,
    },
    #[error("set {typ} to soft {soft}, hard {hard}: the hard limit is above the current {current_hard}; raising it needs CAP_SYS_RESOURCE ({source})")]
    RlimitRaise {
        typ: PosixRlimitType,
        soft: u64,
        hard: u64,
        current_hard: u64,
        #[source]
        source: Errno,
    },
    #[error("set {typ} to soft {soft}, hard {hard}: {source}")]
    Rlimit {
        typ: PosixRlimitType,
        soft: u64,
        hard: u64,
        #[source]
        source: Errno,
    },
    #[error("{what}: /proc is not a procfs mount in the container")]
    NoProcfs { what: String },
    #[error("get a safe procfs handle for {what}: {source}")]
    Procfs {
        what: String,
        #[source]
        source: pathrs::error::Error,
    },
    #[error("open {path} through the procfs handle: {source}")]
    ProcOpen {
        path: String,
        #[source]
        source: pathrs::error::Error,
    },
    #[error("write {value:?} to {path}: {source}")]
    ProcWrite {
        path: String,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("write oom_score_adj {value} to {path}: {source} (a value below the inherited minimum needs CAP_SYS_RESOURCE)")]
    OomScoreAdjDenied {
        path: String,
        value: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("join session keyring {name:?}: {source}")]
    JoinKeyring {
        name: String,
        #[source]
        source: Errno,
    },
    #[error("set the permissions of session keyring {name:?}: {reason}")]
    KeyringPerm { name: String, reason: String },
    #[error("set no_new_privs: {source}")]
    NoNewPrivs {
        #[source]
        source: Errno,
    },
    #[error("set hostname {name:?}: {source}")]
    Hostname {
        name: String,
        #[source]
        source: Errno,
    },
    #[error("set domainname {name:?}: {source}")]
    Domainname {
        name: String,
        #[source]
        source: Errno,
    },
}

fn unmapped_hint(errno: Errno) -> &'static str {
    if errno == Errno::EINVAL {
        " (the id is not mapped in the container's user namespace)"
    } else {
        ""
    }
}

/// The umask runc gives a process whose config sets none.
pub const DEFAULT_UMASK: u32 = 0o022;

/// Switches to `user`: additional gids, gid, uid, then the umask (0022 when unset).
///
/// PR_SET_KEEPCAPS is held across the uid change so the permitted set survives it for
/// [`capabilities::apply`]; the effective set is empty afterwards for a non-zero uid.
/// Supplementary groups are always replaced (an empty list clears ours), except in a user
/// namespace where setgroups is denied and the config asks for none.
pub fn switch_user(user: &User) -> Result<(), AttrError> {
    let gids = user.additional_gids().clone().unwrap_or_default();
    let groups: Vec<Gid> = gids.iter().map(|&g| Gid::from_raw(g)).collect();
    // Try first: only an EPERM needs /proc (which the container may not even mount) to tell
    // a user namespace that denies setgroups from a real failure.
    match nix::unistd::setgroups(&groups) {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM) if !setgroups_allowed()? => {
            if !gids.is_empty() {
                return Err(AttrError::SetgroupsDenied { gids });
            }
        }
        Err(source) => return Err(AttrError::Setgroups { gids, source }),
    }

    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(|source| AttrError::Setgid {
        gid: user.gid(),
        source,
    })?;

    capabilities::set_keep_caps(true).map_err(AttrError::KeepCaps)?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(|source| AttrError::Setuid {
        uid: user.uid(),
        source,
    })?;
    capabilities::set_keep_caps(false).map_err(AttrError::KeepCaps)?;

    let umask = user.umask().unwrap_or(DEFAULT_UMASK) & 0o777;
    nix::sys::stat::umask(Mode::from_bits_truncate(umask as libc::mode_t));
    Ok(())
}

/// pathrs panics (0.2.6) rather than failing when no procfs is mounted on /proc, as in a
/// container whose config mounts none: check first, and fail with an error instead.
fn require_procfs(what: &str) -> Result<(), AttrError> {
    match nix::sys::statfs::statfs("/proc") {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC => Ok(()),
        _ => Err(AttrError::NoProcfs { what: what.into() }),
    }
}

/// Whether setgroups(2) may be called: false only in a user namespace whose
/// /proc/self/setgroups says "deny" (the file is missing before Linux 3.19).
fn setgroups_allowed() -> Result<bool, AttrError> {
    require_procfs("/proc/self/setgroups")?;
    let proc = ProcfsHandle::new().map_err(|source| AttrError::Procfs {
        what: "/proc/self/setgroups".into(),
        source,
    })?;
    let mut file = match proc.open(ProcfsBase::ProcSelf, "setgroups", OpenFlags::O_RDONLY) {
        Ok(file) => file,
        Err(err) if err.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOENT)) => {
            return Ok(true)
        }
        Err(source) => {
            return Err(AttrError::ProcOpen {
                path: "/proc/self/setgroups".into(),
                source,
            })
        }
    };
    let mut content = String::new();
    file.read_to_string(&mut content)
        .map_err(|source| AttrError::ReadSetgroups { source })?;
    Ok(content.trim() != "deny")
}

/// Gives the container's uid ownership of stdin, stdout and stderr (a pty or pipes created
/// outside), so a non-root process can use its console. Leaves /dev/null alone, and skips an
/// fd it may not chown (its owner is unmapped here, or it is on a read-only /dev) as runc does.
pub fn chown_stdio(uid: u32) -> Result<(), AttrError> {
    for fd in 0..=2 {
        // A closed stdio fd has nothing to hand over.
        let Ok(stat) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        let is_dev_null = SFlag::from_bits_truncate(stat.st_mode & libc::S_IFMT) == SFlag::S_IFCHR
            && stat.st_rdev == libc::makedev(1, 3);
        if stat.st_uid == uid || is_dev_null {
            continue;
        }
        match nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), None) {
            Ok(()) | Err(Errno::EPERM) | Err(Errno::EROFS) => {}
            Err(source) => return Err(AttrError::ChownStdio { fd, uid, source }),
        }
    }
    Ok(())
}

/// Sets every rlimit on the calling process.
pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<(), AttrError> {
    set_rlimits_of(Pid::from_raw(0), rlimits)
}

/// Sets every rlimit on process `pid` (prlimit(2); 0 is the caller). Lowering is always
/// allowed; raising a hard limit needs CAP_SYS_RESOURCE in the initial user namespace, which
/// the parent keeps and an init in a user namespace does not.
pub fn set_rlimits_of(pid: Pid, rlimits: &[PosixRlimit]) -> Result<(), AttrError> {
    for rlimit in rlimits {
        let resource = rlimit_resource(rlimit.typ());
        if let Err(source) =
            hull_sys::process::set_rlimit(pid, resource, rlimit.soft(), rlimit.hard())
        {
            let current_hard = current_hard_limit(pid, resource);
            return Err(match current_hard {
                Some(current_hard) if source == Errno::EPERM && rlimit.hard() > current_hard => {
                    AttrError::RlimitRaise {
                        typ: rlimit.typ(),
                        soft: rlimit.soft(),
                        hard: rlimit.hard(),
                        current_hard,
                        source,
                    }
                }
                _ => AttrError::Rlimit {
                    typ: rlimit.typ(),
                    soft: rlimit.soft(),
                    hard: rlimit.hard(),
                    source,
                },
            });
        }
    }
    Ok(())
}

fn current_hard_limit(pid: Pid, resource: libc::__rlimit_resource_t) -> Option<u64> {
    hull_sys::process::rlimit(pid, resource)
        .ok()
        .map(|(_, hard)| hard)
}

fn rlimit_resource(typ: PosixRlimitType) -> libc::__rlimit_resource_t {
    match typ {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Writes `value` to /proc/self/oom_score_adj. Raising it is always allowed; going below the
/// lowest value a privileged process set (0 unless someone did) needs CAP_SYS_RESOURCE in the
/// initial user namespace, so runc writes it before the user namespace is entered.
pub fn set_oom_score_adj(value: i32) -> Result<(), AttrError> {
    let path = "/proc/self/oom_score_adj";
    require_procfs(path)?;
    let proc = ProcfsHandle::new().map_err(|source| AttrError::Procfs {
        what: path.into(),
        source,
    })?;
    match write_proc(
        &proc,
        ProcfsBase::ProcSelf,
        "oom_score_adj",
        path,
        &value.to_string(),
    ) {
        Err(AttrError::ProcWrite { path, source, .. })
            if source.raw_os_error() == Some(libc::EACCES) =>
        {
            Err(AttrError::OomScoreAdjDenied {
                path,
                value,
                source,
            })
        }
        other => other,
    }
}

/// One sysctl to write: its file under /proc and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    subpath: String,
    value: String,
}

/// `linux.sysctl` as files under /proc, sorted by key; a key that cannot name a file under
/// /proc/sys is refused naming it. (Which keys a container may set at all is checked with
/// its namespaces by `spec::validate`.)
pub fn plan_sysctls(sysctls: Option<&HashMap<String, String>>) -> Result<Vec<Sysctl>, SpecError> {
    let mut keys: Vec<(&String, &String)> = sysctls.into_iter().flatten().collect();
    keys.sort();
    keys.into_iter()
        .map(|(key, value)| {
            let subpath = sysctl_path(key).ok_or_else(|| {
                SpecError::invalid(format!("linux.sysctl.{key}"), "not a valid sysctl name")
            })?;
            Ok(Sysctl {
                subpath,
                value: value.clone(),
            })
        })
        .collect()
}

/// Writes each sysctl to /proc/sys/<key with '.' as '/'> through one private procfs handle
/// (a key written with '/' is taken as the path, so dots in it stay literal, as sysctl(8)
/// does). The values land in the namespaces of the calling process. Keys go in sorted order
/// so a failure is reproducible.
pub fn set_sysctls(sysctls: &[Sysctl]) -> Result<(), AttrError> {
    if sysctls.is_empty() {
        return Ok(());
    }
    require_procfs("/proc/sys")?;
    // Sysctls live outside /proc/<pid>, so this handle cannot be the cached subset=pid one.
    let proc = ProcfsHandleBuilder::new()
        .unmasked()
        .build()
        .map_err(|source| AttrError::Procfs {
            what: "/proc/sys".into(),
            source,
        })?;
    for s in sysctls {
        let path = format!("/proc/{}", s.subpath);
        write_proc(&proc, ProcfsBase::ProcRoot, &s.subpath, &path, &s.value)?;
    }
    Ok(())
}

/// "net.ipv4.ip_forward" → "sys/net/ipv4/ip_forward"; none for empty, `.` and `..` parts.
fn sysctl_path(key: &str) -> Option<String> {
    let path = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    let valid = !path.is_empty()
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    valid.then(|| format!("sys/{path}"))
}

/// Opens `subpath` under `base` write-only through `proc` and writes `value` in one call.
fn write_proc(
    proc: &ProcfsHandle,
    base: ProcfsBase,
    subpath: &str,
    display: &str,
    value: &str,
) -> Result<(), AttrError> {
    let mut file = proc
        .open(
            base,
            subpath,
            OpenFlags::O_WRONLY | OpenFlags::O_TRUNC | OpenFlags::O_CLOEXEC,
        )
        .map_err(|source| AttrError::ProcOpen {
            path: display.into(),
            source,
        })?;
    file.write_all(value.as_bytes())
        .map_err(|source| AttrError::ProcWrite {
            path: display.into(),
            value: value.into(),
            source,
        })
}

/// `KEY_USR_SEARCH`: the keyring's owner may find it.
const KEY_USR_SEARCH: u32 = 0x0008_0000;
/// `KEY_OTH_SEARCH`: anyone may find it (the owner differs once ids are mapped).
const KEY_OTH_SEARCH: u32 = 0x0000_0008;

/// Joins a fresh session keyring `name` (runc uses "_ses.<container id>") so the container
/// does not share ours, then adds search permission for its owner (for "other" in a user
/// namespace, where the owner is an id seen from outside) as runc does. A kernel without
/// keyrings (ENOSYS) is tolerated with a warning; any other error fails.
pub fn join_session_keyring(name: &str) -> Result<(), AttrError> {
    let join_err = |source| AttrError::JoinKeyring {
        name: name.into(),
        source,
    };
    let cname = CString::new(name).map_err(|_| join_err(Errno::EINVAL))?;
    let serial = match hull_sys::keyring::join_session(&cname) {
        Ok(serial) => serial,
        Err(Errno::ENOSYS) => {
            tracing::warn!(keyring = %name, "the kernel has no keyrings; keeping the caller's session keyring");
            return Ok(());
        }
        Err(source) => return Err(join_err(source)),
    };
    let perm_err = |reason: String| AttrError::KeyringPerm {
        name: name.into(),
        reason,
    };
    let perm = keyring_perm(serial).map_err(perm_err)?;
    let extra = if in_user_namespace().map_err(perm_err)? {
        KEY_OTH_SEARCH
    } else {
        KEY_USR_SEARCH
    };
    hull_sys::keyring::set_perm(serial, perm | extra)
        .map_err(|e| perm_err(format!("KEYCTL_SETPERM: {e}")))
}

/// Whether the caller is in a user namespace other than the initial one, whose uid_map is
/// the identity over the whole id range.
fn in_user_namespace() -> Result<bool, String> {
    require_procfs("/proc/self/uid_map").map_err(|e| e.to_string())?;
    let proc = ProcfsHandle::new().map_err(|e| format!("open procfs: {e}"))?;
    let mut map = String::new();
    proc.open(ProcfsBase::ProcSelf, "uid_map", OpenFlags::O_RDONLY)
        .map_err(|e| e.to_string())
        .and_then(|mut f| f.read_to_string(&mut map).map_err(|e| e.to_string()))
        .map_err(|e| format!("read /proc/self/uid_map: {e}"))?;
    Ok(!hull_sys::proc::is_initial_uid_map(&map))
}

/// The permission mask of a key, from KEYCTL_DESCRIBE's "type;uid;gid;perm;description".
fn keyring_perm(serial: i32) -> Result<u32, String> {
    let text = describe_key(serial)?;
    text.split(';')
        .nth(3)
        .and_then(|perm| u32::from_str_radix(perm, 16).ok())
        .ok_or_else(|| format!("KEYCTL_DESCRIBE gave an unexpected description {text:?}"))
}

/// KEYCTL_DESCRIBE: "type;uid;gid;perm;description" of a key.
fn describe_key(serial: i32) -> Result<String, String> {
    hull_sys::keyring::describe(serial).map_err(|e| format!("KEYCTL_DESCRIBE: {e}"))
}

/// Sets PR_SET_NO_NEW_PRIVS: execve can no longer grant privileges (setuid bits, file caps).
pub fn set_no_new_privileges() -> Result<(), AttrError> {
    nix::sys::prctl::set_no_new_privs().map_err(|source| AttrError::NoNewPrivs { source })
}

/// Sets the hostname of the calling process's UTS namespace.
pub fn set_hostname(name: &str) -> Result<(), AttrError> {
    nix::unistd::sethostname(name).map_err(|source| AttrError::Hostname {
        name: name.into(),
        source,
    })
}

/// Sets the NIS domain name of the calling process's UTS namespace.
pub fn set_domainname(name: &str) -> Result<(), AttrError> {
    hull_sys::net::set_domainname(name).map_err(|source| AttrError::Domainname {
        name: name.into(),
        source,
    })
}

/// Runs a check in a forked child, so whatever it changes (uid, caps, limits, namespaces)
/// dies with it. Shared with the capabilities tests.
#[cfg(test)]
pub(crate) mod forked {
    use std::fs::File;
    use std::io::Read;
    use std::panic::AssertUnwindSafe;

    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::ForkResult;

    /// Forks, runs `check` in the child and fails the test with the child's message if the
    /// check returns an error or panics.
    pub fn run(check: impl FnOnce() -> Result<(), String>) {
        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        // SAFETY: the child runs only `check`, reports over the pipe and _exits; it never
        // returns into the test harness, whose other threads do not exist in it.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            ForkResult::Child => {
                drop(read_end);
                let (code, msg) = match std::panic::catch_unwind(AssertUnwindSafe(check)) {
                    Ok(Ok(())) => (0, String::new()),
                    Ok(Err(msg)) => (1, msg),
                    Err(_) => (2, "check panicked".to_owned()),
                };
                let _ = nix::unistd::write(&write_end, msg.as_bytes());
                // SAFETY: _exit ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(write_end);
                let mut msg = String::new();
                let _ = File::from(read_end).read_to_string(&mut msg);
                let status = waitpid(child, None).expect("waitpid");
                assert_eq!(status, WaitStatus::Exited(child, 0), "child failed: {msg}");
            }
        }
    }

    /// Turns any error into the child's failure message.
    pub fn check<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, String> {
        r.map_err(|e| format!("{what}: {e}"))
    }

    /// A field of /proc/self/status, e.g. "CapEff".
    pub fn status_field(name: &str) -> Result<String, String> {
        let status = check("read status", std::fs::read_to_string("/proc/self/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| format!("no {name} in /proc/self/status"))
    }

    pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
        if cond {
            Ok(())
        } else {
            Err(msg())
        }
    }
}

/// The environment as runc prepares it: each name once, with its last value, in the order
/// of those last values; an empty `HOME=` dropped (the caller fills in the user's home).
/// Returns it and whether a non-empty HOME is in it.
pub fn prepare_env(env: &[String]) -> (Vec<String>, bool) {
    let mut seen = std::collections::HashSet::with_capacity(env.len());
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    let mut home = false;
    for kv in env.iter().rev() {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        if !seen.insert(key) {
            continue;
        }
        if key == "HOME" {
            if kv.len() == "HOME=".len() {
                continue;
            }
            home = true;
        }
        out.push(kv.clone());
    }
    out.reverse();
    (out, home)
}

#[cfg(test)]
mod tests;
