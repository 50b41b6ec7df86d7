//! Namespaces: which the container gets new and which it joins by path, the order of joining,
//! user-namespace id maps, and time-namespace offsets.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("open {kind} namespace {path}: {source}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("join {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("unshare namespaces {flags:?}: {source}")]
    Unshare {
        flags: CloneFlags,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("write {file} of pid {pid}: {reason}")]
    IdMap {
        file: &'static str,
        pid: Pid,
        reason: String,
    },
    #[error("make the user namespace of an idmapped mount: {reason}")]
    MountUserns { reason: String },
    #[error("write time namespace offsets: {source}")]
    TimeOffsets {
        #[source]
        source: std::io::Error,
    },
}

/// The config name of a namespace type.
pub fn kind(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // nix 0.29 has no CLONE_NEWTIME.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join, opened in the runtime's own mount namespace before the clone.
#[derive(Debug)]
pub struct JoinNs {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// What the container gets: the namespaces it creates and those it joins.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces created new for the container.
    pub new: CloneFlags,
    /// Namespaces joined by path, in the order [`Plan::join_all`] gives them.
    pub join: Vec<JoinNs>,
}

impl Plan {
    /// Opens every namespace path now, so that joins do not depend on the mount namespace the
    /// init is in when it makes them.
    pub fn open(linux: &Linux) -> Result<Plan, NsError> {
        let mut new = CloneFlags::empty();
        let mut join = Vec::new();
        for ns in linux.namespaces().iter().flatten() {
            match ns.path() {
                None => new |= clone_flag(ns.typ()),
                Some(path) => {
                    let fd = File::open(path).map_err(|source| NsError::Open {
                        kind: kind(ns.typ()),
                        path: path.clone(),
                        source,
                    })?;
                    join.push(JoinNs {
                        typ: ns.typ(),
                        path: path.clone(),
                        fd: fd.into(),
                    });
                }
            }
        }
        Ok(Plan { new, join })
    }

    /// What a process joining the running container `pid` (`exec`) enters: the namespace of
    /// every kind the config names, as that process has it now; kinds it shares with the
    /// runtime are left as they are (joining one's own user namespace is an error).
    pub fn of_running(pid: i32, linux: &Linux) -> Result<Plan, NsError> {
        use std::os::unix::fs::MetadataExt;
        let mut join = Vec::new();
        for ns in linux.namespaces().iter().flatten() {
            let name = kind(ns.typ());
            let file_name = match ns.typ() {
                LinuxNamespaceType::Network => "net",
                LinuxNamespaceType::Mount => "mnt",
                _ => name,
            };
            let path = PathBuf::from(format!("/proc/{pid}/ns/{file_name}"));
            let file = File::open(&path).map_err(|source| NsError::Open {
                kind: name,
                path: path.clone(),
                source,
            })?;
            let theirs = file.metadata().map(|m| (m.dev(), m.ino()));
            let ours =
                std::fs::metadata(format!("/proc/self/ns/{file_name}")).map(|m| (m.dev(), m.ino()));
            if let (Ok(a), Ok(b)) = (&theirs, &ours) {
                if a == b {
                    continue;
                }
            }
            join.push(JoinNs {
                typ: ns.typ(),
                path,
                fd: file.into(),
            });
        }
        Ok(Plan {
            new: CloneFlags::empty(),
            join,
        })
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(clone_flag(t)) || self.join.iter().any(|j| j.typ == t)
    }

    pub fn new_user(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// Whether everything can be made by one clone: nothing is joined (joins must precede
    /// the creation of a user namespace) and there is no time namespace (its offsets must be
    /// written before a process enters it).
    pub fn single_clone(&self) -> bool {
        self.join.is_empty() && !self.new.contains(clone_flag(LinuxNamespaceType::Time))
    }

    /// The namespaces the single clone creates. With a new user namespace only it (and the
    /// pid namespace, which must exist before the init does) come from the clone; the rest are
    /// unshared by the init once it is root in the user namespace, so that they are made with
    /// its credentials (the mqueue root of a new ipc namespace is owned by its creator).
    /// The cgroup namespace is never made by the clone: it is rooted at the cgroup its
    /// creator is in, and the init joins the container's cgroups only after the clone.
    pub fn clone_flags(&self) -> CloneFlags {
        if self.new_user() {
            self.new & (CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID)
        } else {
            self.new - CloneFlags::CLONE_NEWCGROUP
        }
    }

    /// Whether the process that joins/unshares must fork once more for its child to be in
    /// the container's pid (or time) namespace.
    pub fn needs_fork(&self) -> bool {
        self.has(LinuxNamespaceType::Pid) || self.has(LinuxNamespaceType::Time)
    }

    /// setns into every namespace given by path, in runc's three passes: the others first
    /// (one owned by another user namespace than the one joined, e.g. a host network
    /// namespace, may only be joined with our own privileges), then the user namespace, then
    /// those the first pass was refused (EPERM), with the privileges it gives.
    pub fn join_all(&self) -> Result<(), NsError> {
        let join = |j: &JoinNs| {
            setns(j.fd.as_fd(), clone_flag(j.typ)).map_err(|source| NsError::Join {
                kind: kind(j.typ),
                path: j.path.clone(),
                source,
            })
        };
        let user = self.join.iter().find(|j| j.typ == LinuxNamespaceType::User);
        let mut refused = Vec::new();
        for j in self
            .join
            .iter()
            .filter(|j| j.typ != LinuxNamespaceType::User)
        {
            match join(j) {
                Err(NsError::Join {
                    source: nix::errno::Errno::EPERM,
                    ..
                }) if user.is_some() => refused.push(j),
                r => r?,
            }
        }
        if let Some(u) = user {
            join(u)?;
        }
        refused.into_iter().try_for_each(join)
    }
}

/// unshare(2) with the given flags.
pub fn unshare_new(flags: CloneFlags) -> Result<(), NsError> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(|source| NsError::Unshare { flags, source })
}

/// Writes the offsets of the time namespace `pid` (None: this process) unshared for its
/// children, before any process is in it. Under a new user namespace the runtime writes them:
/// the file is the host root's (the process's memory dates from before its user namespace,
/// and a credential change made it non-dumpable), which its user namespace's root may not
/// write.
pub fn write_time_offsets(pid: Option<Pid>, linux: &Linux) -> Result<(), NsError> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/timens_offsets"),
        None => "/proc/self/timens_offsets".to_string(),
    };
    std::fs::write(path, text).map_err(|source| NsError::TimeOffsets { source })
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the uid and gid maps of `pid`'s user namespace: directly when we may (root in the
/// initial user namespace), through newuidmap/newgidmap otherwise.
pub fn write_id_maps(pid: Pid, linux: &Linux) -> Result<(), NsError> {
    let uids = linux.uid_mappings().as_deref().unwrap_or_default();
    let gids = linux.gid_mappings().as_deref().unwrap_or_default();
    write_maps(pid, uids, gids)
}

/// For an unprivileged caller: every range of the new user namespace's maps is its own id
/// (which the kernel lets it map alone) or lies in what `/etc/subuid` (`/etc/subgid`)
/// delegates to it, which `newuidmap`/`newgidmap` will write. Checked before anything is
/// made, so that a map it may not write is one line naming its entry, not the helper's
/// complaint from the middle of a create. Left to the helper where the file is missing (ids
/// served another way) or the caller may write any map itself (CAP_SETUID, CAP_SETGID).
pub fn check_delegated(linux: &Linux) -> Result<(), crate::spec::SpecError> {
    use caps::{CapSet, Capability};
    let euid = nix::unistd::geteuid().as_raw();
    if euid == 0 {
        return Ok(());
    }
    // newuidmap looks the caller up by its real uid.
    let ruid = nix::unistd::getuid().as_raw();
    let name = user_name(ruid);
    let egid = nix::unistd::getegid().as_raw();
    for (field, maps, own, file, cap) in [
        (
            "linux.uidMappings",
            linux.uid_mappings(),
            euid,
            "/etc/subuid",
            Capability::CAP_SETUID,
        ),
        (
            "linux.gidMappings",
            linux.gid_mappings(),
            egid,
            "/etc/subgid",
            Capability::CAP_SETGID,
        ),
    ] {
        let maps = maps.as_deref().unwrap_or_default();
        let own_id = |m: &LinuxIdMapping| m.size() == 1 && m.host_id() == own;
        if maps.iter().all(own_id) || caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let delegated = delegated_ranges(&text, ruid, name.as_deref());
        for (j, m) in maps.iter().enumerate() {
            let (start, end) = (
                u64::from(m.host_id()),
                u64::from(m.host_id()) + u64::from(m.size()),
            );
            if !own_id(m) && !delegated.iter().any(|&(s, e)| s <= start && end <= e) {
                return Err(crate::spec::SpecError::invalid(
                    format!("{field}[{j}]"),
                    format!(
                        "host ids {start}-{} are neither the caller's ({own}) nor delegated to \
                         it in {file}",
                        end - 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The login name of `uid` from /etc/passwd, as `newuidmap` matches /etc/subuid by it.
fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid.to_string()).then(|| name.to_string())
    })
}

/// The `[start, end)` ranges a subuid/subgid file gives `uid` (by number or `name`), sorted,
/// with touching and overlapping entries joined (newuidmap takes a map across two entries).
fn delegated_ranges(text: &str, uid: u32, name: Option<&str>) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let who = f.next()?;
            let start: u64 = f.next()?.trim().parse().ok()?;
            let count: u64 = f.next()?.trim().parse().ok()?;
            (who == uid.to_string() || Some(who) == name).then_some((start, start + count))
        })
        .collect();
    ranges.sort_unstable();
    let mut joined: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match joined.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => joined.push((s, e)),
        }
    }
    joined
}

/// A user namespace with these maps, for `MOUNT_ATTR_IDMAP` (which takes the maps of a
/// namespace, not the maps themselves): a child is cloned into a new one, its maps written,
/// the namespace opened, and the child let go. As runc does; a few hundred microseconds.
pub fn mount_userns(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd, NsError> {
    use hull_sys::process::{clone_fork, exit_now, Forked, SingleThreaded};
    let fail = |reason: String| NsError::MountUserns { reason };
    let proof = SingleThreaded::check().map_err(|n| fail(format!("{n} threads cannot fork")))?;
    let (wait_end, release) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))?;
    match clone_fork(proof, libc::CLONE_NEWUSER, None).map_err(|e| fail(format!("clone: {e}")))? {
        Forked::Child(_) => {
            // Parked until the runtime closes its end (or dies): EOF either way.
            drop(release);
            let _ = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&wait_end), &mut [0u8]);
            exit_now(0)
        }
        Forked::Parent(pid) => {
            drop(wait_end);
            let opened = write_maps(pid, uids, gids).and_then(|()| {
                File::open(format!("/proc/{pid}/ns/user"))
                    .map(OwnedFd::from)
                    .map_err(|e| fail(format!("open /proc/{pid}/ns/user: {e}")))
            });
            drop(release);
            let _ = nix::sys::wait::waitpid(pid, None);
            opened
        }
    }
}

fn write_maps(pid: Pid, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<(), NsError> {
    write_map(pid, "uid_map", "newuidmap", uids)?;
    // Without CAP_SETGID the kernel takes a map of our own gid only once setgroups(2) is
    // denied in the namespace; any other map goes through newgidmap, which keeps it (runc's
    // rule: a container with additional gids needs root or the helper).
    let egid = nix::unistd::getegid().as_raw();
    if !nix::unistd::geteuid().is_root()
        && matches!(gids, [m] if m.size() == 1 && m.host_id() == egid)
    {
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny").map_err(|e| NsError::IdMap {
            file: "setgroups",
            pid,
            reason: e.to_string(),
        })?;
    }
    write_map(pid, "gid_map", "newgidmap", gids)
}

fn write_map(
    pid: Pid,
    file: &'static str,
    helper: &str,
    maps: &[LinuxIdMapping],
) -> Result<(), NsError> {
    if maps.is_empty() {
        return Ok(());
    }
    let err = |reason: String| NsError::IdMap { file, pid, reason };
    match std::fs::write(format!("/proc/{pid}/{file}"), map_text(maps)) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => return Err(err(e.to_string())),
    }
    let mut cmd = Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd
        .output()
        .map_err(|e| err(format!("run {helper}: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "{helper} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_are_matched_by_name_or_number() {
        let text = "alice:100000:65536\n64123:300000:10\nbob:200000:65536\n# x\nbad:1\n";
        assert_eq!(
            delegated_ranges(text, 64123, Some("alice")),
            [(100_000, 165_536), (300_000, 300_010)]
        );
        assert_eq!(delegated_ranges(text, 5, None), []);
        // Touching entries make one range (newuidmap maps across them).
        let split = "u:200000:1000\nu:201000:1000\nu:150000:10\n";
        assert_eq!(
            delegated_ranges(split, 7, Some("u")),
            [(150_000, 150_010), (200_000, 202_000)]
        );
    }
}
