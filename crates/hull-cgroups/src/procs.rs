//! A container's processes through its cgroups: joining, listing, freezing, signalling,
//! and removing the cgroups once they are empty; finding a container's cgroups by its id.

use std::path::{Path, PathBuf};

use std::io;

use crate::error::CgroupError;
use crate::model::Cgroups;
use crate::mounts::host_mounts;
use crate::{systemd, v2};

impl Cgroups {
    /// [`Cgroups::join`] for a process the caller may not move itself (a rootless caller
    /// outside the subtree delegated to it): the container's unit has systemd move it.
    pub fn join_or_attach(&self, pid: i32) -> Result<(), CgroupError> {
        match (self.join(pid), &self.systemd) {
            (Err(e), Some(unit)) if e.is_permission() => {
                tracing::debug!("{e}: asking systemd to attach pid {pid} to {}", unit.name);
                systemd::bus(unit.user)?.attach(unit, pid as u32)
            }
            (r, _) => r,
        }
    }

    /// Moves `pid` (and so everything it will fork) into every one of the container's cgroups.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        self.join_dirs(pid, self.dirs())
    }

    /// The files through which a single-threaded process moves itself into the container's
    /// v1 cgroups, by writing "0": `tasks`. For the calling thread the kernel skips its global
    /// migration lock there, which `cgroup.procs` takes and whose first taker after a quiet
    /// spell waits for an RCU grace period (7-8 ms on this project's idle machine, against
    /// 0.04 ms). None with systemd (it places the process) or on a unified host (the process
    /// is born in its cgroup). [`Cgroups::join_rest`] does the rest.
    pub fn self_join_files(&self) -> Vec<PathBuf> {
        if self.by_systemd() || self.unified_only {
            return Vec::new();
        }
        self.v1.iter().map(|h| h.dir.join("tasks")).collect()
    }

    /// [`Cgroups::join`] of a process that moved itself into the v1 cgroups
    /// ([`Cgroups::self_join_files`]): the cgroup2 directory only.
    pub fn join_rest(&self, pid: i32) -> Result<(), CgroupError> {
        self.join_dirs(pid, self.unified.as_deref().into_iter())
    }

    fn join_dirs<'a>(
        &self,
        pid: i32,
        dirs: impl Iterator<Item = &'a Path>,
    ) -> Result<(), CgroupError> {
        let text = pid.to_string();
        for dir in dirs {
            // Born there (clone3 with CLONE_INTO_CGROUP): writing it again would move it
            // nowhere but still take the kernel's global migration lock, whose first taker
            // after a quiet spell waits for an RCU grace period (docs/performance.md).
            if self.unified.as_deref() == Some(dir) && lists(dir, pid) {
                continue;
            }
            let path = dir.join("cgroup.procs");
            std::fs::write(&path, &text).map_err(|source| CgroupError::Io {
                step: "join cgroup",
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// The directory whose tree lists the container's processes.
    fn procs_dir(&self) -> Option<&Path> {
        if self.unified_only {
            return self.unified.as_deref();
        }
        ["pids", "freezer", "devices", "memory", "cpu"]
            .iter()
            .find_map(|c| self.v1_dir(c))
            .or_else(|| self.v1.first().map(|h| h.dir.as_path()))
    }

    /// Whether hull made the directory whose processes [`Cgroups::procs`] lists, so that
    /// all of them are the container's.
    pub fn owns_procs(&self) -> bool {
        self.procs_dir().is_some_and(|d| self.made(d))
    }

    /// Every process in the container's cgroup and the cgroups below it.
    pub fn procs(&self) -> Vec<i32> {
        let mut out = Vec::new();
        if let Some(dir) = self.procs_dir() {
            collect_procs(dir, &mut out);
        }
        out
    }

    /// Whether no process is left in the container's cgroups: those [`Cgroups::procs`] lists,
    /// and on a hybrid host the cgroup2 side too, where a process may be alone.
    pub fn is_empty(&self) -> bool {
        if !self.procs().is_empty() {
            return false;
        }
        match self.unified.as_deref() {
            Some(dir) if !self.unified_only => !v2::populated(dir),
            _ => true,
        }
    }

    /// The directory whose freezer stops the container: its v1 freezer cgroup, or its cgroup2 one.
    pub fn freezer_dir(&self) -> Option<&Path> {
        if self.unified_only {
            self.unified.as_deref()
        } else {
            self.v1_dir("freezer")
        }
    }

    /// Freezes (or thaws) every process of the container; returns once the kernel says so.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let Some(dir) = self.freezer_dir() else {
            return Err(CgroupError::Unsupported {
                field: "pause".into(),
                reason: "the freezer controller is not mounted on this host".into(),
            });
        };
        if self.unified_only {
            return v2::freeze(dir, frozen);
        }
        v1_freeze(dir, frozen)
    }

    /// Thaws the container's cgroups and every cgroup below them (the container may make
    /// and freeze its own): a child frozen by itself stays frozen when its parent thaws, and
    /// in a v1 freezer its processes do not act on SIGKILL. Best effort, no waiting.
    pub fn thaw_all(&self) {
        let mut todo: Vec<(PathBuf, &str, &str)> = Vec::new();
        if let Some(dir) = self.v1_dir("freezer").filter(|_| !self.unified_only) {
            todo.push((dir.to_path_buf(), "freezer.state", "THAWED"));
        }
        if let Some(dir) = &self.unified {
            todo.push((dir.clone(), "cgroup.freeze", "0"));
        }
        // Bounded: the container decides how many cgroups it makes.
        let mut budget = 10_000;
        while let Some((dir, file, value)) = todo.pop() {
            budget -= 1;
            if budget == 0 {
                break;
            }
            let _ = std::fs::write(dir.join(file), value);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    todo.push((e.path(), file, value));
                }
            }
        }
    }

    /// Whether the container's processes are frozen (or being frozen).
    pub fn is_frozen(&self) -> bool {
        match self.freezer_dir() {
            Some(dir) if self.unified_only => v2::is_frozen(dir),
            Some(dir) => std::fs::read_to_string(dir.join("freezer.state"))
                .is_ok_and(|s| s.trim() != "THAWED"),
            None => false,
        }
    }

    /// Sends `signal` to every process of the container, as runc does: SIGKILL through
    /// cgroup.kill where the cgroup2 directory is hull's (a hybrid host's too); else frozen
    /// meanwhile, so no process forks a child that the signal misses, and thawed after,
    /// so that the signal is acted on (a paused container resumes, as with runc).
    pub fn signal_all(&self, signal: i32) -> Result<(), CgroupError> {
        if signal == libc::SIGKILL {
            if let Some(u) = self.unified.as_deref().filter(|u| self.made(u)) {
                match v2::kill(u) {
                    Err(CgroupError::Unsupported { .. }) => {}
                    Err(e) => return Err(e),
                    Ok(()) => {
                        // A task frozen by the v1 freezer (hybrid) acts on SIGKILL only
                        // once thawed.
                        if self.is_frozen() {
                            self.freeze(false)?;
                        }
                        return Ok(());
                    }
                }
            }
        }
        if self.procs().is_empty() {
            return Ok(());
        }
        // Frozen meanwhile, so that no process forks past the signal; left as it was found:
        // a paused container stays paused (its processes get the signal when resumed).
        let paused = self.is_frozen();
        // A SIGINT or SIGTERM to hull between the freeze and the thaw would leave the
        // container frozen though nobody paused it: they wait until the thaw.
        hull_sys::process::with_signals_blocked(|| {
            if !paused {
                if let Err(e) = self.freeze(true) {
                    tracing::warn!("{e}");
                }
            }
            for pid in self.procs() {
                let _ = hull_sys::process::kill(pid, signal);
            }
            if !paused {
                if let Err(e) = self.freeze(false) {
                    tracing::warn!("{e}");
                }
            }
        });
        Ok(())
    }

    /// Removes the directories hull made, deepest first, with any the container made
    /// inside its own; the processes must be gone. A directory still busy after a short
    /// wait, or one another container still uses, is left.
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in self.planned.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        let mut first_error = None;
        // A unit not known to be started is not stopped: it may be another's of that name,
        // and a scope of this container's goes by itself once its processes are gone.
        if let Some(unit) = self.systemd.as_ref().filter(|u| u.started) {
            // As runc: a unit that would not stop is reported, not a reason to keep the state.
            if let Err(e) = systemd::bus(unit.user).and_then(|bus| bus.stop(unit)) {
                tracing::warn!("{e}");
            }
        }
        for dir in self.created.iter().rev() {
            if self.dirs().any(|d| d == dir) {
                if let Err(e) = remove_tree(dir) {
                    first_error.get_or_insert(e);
                }
            } else {
                // A parent hull made may hold other containers by now: one try, and busy or
                // not empty means still in use.
                let _ = std::fs::remove_dir(dir);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Refuses, as runc 1.2+ does, a cgroup that already holds processes (in it or below):
    /// they would be the container's for `ps`, `kill --all`, `pause` and `delete`.
    pub fn check_empty(&self) -> Result<(), CgroupError> {
        if let Some(dir) = self.procs_dir().filter(|d| !self.made(d)) {
            let mut pids = Vec::new();
            collect_procs(dir, &mut pids);
            if !pids.is_empty() {
                return Err(CgroupError::NotEmpty {
                    dir: dir.to_path_buf(),
                    count: pids.len(),
                });
            }
        }
        Ok(())
    }

    /// Refuses cgroups that are frozen (pre-existing ones, or new ones below a frozen
    /// parent, which are born frozen): the init would freeze on joining and `create` would
    /// never hear from it again. Checked once the directories exist.
    pub fn check_not_frozen(&self) -> Result<(), CgroupError> {
        let frozen_dir = self
            .v1_dir("freezer")
            .filter(|d| {
                std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
            })
            .or_else(|| {
                self.unified.as_deref().filter(|u| {
                    std::fs::read_to_string(u.join("cgroup.events"))
                        .is_ok_and(|e| e.lines().any(|l| l.trim() == "frozen 1"))
                })
            });
        match frozen_dir {
            Some(dir) => Err(CgroupError::Path {
                path: dir.display().to_string(),
                reason: "container's cgroup unexpectedly frozen".into(),
            }),
            None => Ok(()),
        }
    }
}

/// For a container whose state is lost (`delete -f` of a corrupt state.json): the cgroups
/// named after `id` as hull, runc and the clients name them (`…/<id>`, `…/<prefix>-<id>.scope`)
/// in every hierarchy, their processes killed and the cgroups removed. Returns the cgroups
/// found. Bounded: a search of at most 50,000 directories, 8 levels deep.
pub fn reap_by_id(id: &str) -> Vec<PathBuf> {
    let Ok(mounts) = host_mounts() else {
        return Vec::new();
    };
    let roots = mounts
        .v1
        .iter()
        .map(|h| h.1.clone())
        .chain(mounts.unified.iter().map(|u| u.0.clone()));
    let scope = format!("-{id}.scope");
    let mut found = Vec::new();
    let mut budget = 50_000u32;
    for root in roots {
        let mut todo = vec![(root, 0u32)];
        while let Some((dir, depth)) = todo.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if budget == 0 || !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                budget -= 1;
                let name = e.file_name();
                let name = name.to_string_lossy();
                // Never a slice (an id like "user.slice" must not reach the host's).
                if (name == id || name.ends_with(&scope)) && !name.ends_with(".slice") {
                    found.push(e.path());
                } else if depth < 8 {
                    todo.push((e.path(), depth + 1));
                }
            }
        }
    }
    // Nor a cgroup holding PID 1 or this very process: not a container's.
    let me = std::process::id() as i32;
    found.retain(|dir| {
        let mut pids = Vec::new();
        collect_procs(dir, &mut pids);
        !pids.iter().any(|p| *p == 1 || *p == me)
    });
    for dir in &found {
        for (file, value) in [("freezer.state", "THAWED"), ("cgroup.freeze", "0")] {
            let _ = std::fs::write(dir.join(file), value);
        }
        if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
            let mut pids = Vec::new();
            collect_procs(dir, &mut pids);
            for pid in pids {
                let _ = hull_sys::process::kill(pid, libc::SIGKILL);
            }
        }
    }
    for dir in &found {
        if let Err(e) = remove_tree(dir) {
            tracing::warn!("{e}");
        }
    }
    found
}

/// The processes in the cgroup `dir` itself (not below it); none when it cannot be read.
fn pids_in(dir: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    // cgroup2 lists 0 for a process outside the reader's pid namespace: never a pid to
    // signal (kill(0) is our own process group).
    text.lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
        .collect()
}

/// Whether `pid` is in the cgroup `dir` itself.
fn lists(dir: &Path, pid: i32) -> bool {
    pids_in(dir).contains(&pid)
}

fn collect_procs(dir: &Path, out: &mut Vec<i32>) {
    out.extend(pids_in(dir));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_procs(&e.path(), out);
            }
        }
    }
}

/// rmdir of `dir` and the cgroups below it, retrying while the kernel still counts exiting
/// tasks (EBUSY for a moment after they die).
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    // Most have no cgroup below them: one rmdir, no directory listing.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = remove_tree(&e.path());
            }
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    step: "remove cgroup",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// v1 freezer: writes the state and waits until it holds. FREEZING can stall on a task
/// stuck in the kernel: the write is repeated, and after a while the cgroup is thawed
/// again and pause fails rather than leave it half frozen.
fn v1_freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let path = dir.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let write = |value: &str| {
        std::fs::write(&path, value).map_err(|source| CgroupError::Write {
            field: if frozen { "pause" } else { "resume" }.into(),
            path: path.clone(),
            value: value.into(),
            source,
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut delay = std::time::Duration::from_micros(100);
    if !frozen
        && std::fs::read_to_string(dir.join("freezer.parent_freezing"))
            .is_ok_and(|s| s.trim() == "1")
    {
        // Frozen from above: nothing written here can thaw it.
        return Err(CgroupError::Io {
            step: "thaw",
            path: dir.to_path_buf(),
            source: io::Error::other("a parent cgroup is frozen"),
        });
    }
    loop {
        write(want)?;
        let now = std::fs::read_to_string(&path).unwrap_or_default();
        if now.trim() == want {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            if frozen {
                let _ = write("THAWED");
            }
            return Err(CgroupError::Io {
                step: if frozen { "freeze" } else { "thaw" },
                path: path.clone(),
                source: io::Error::from_raw_os_error(libc::ETIMEDOUT),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain directory standing in for a cgroup: `cgroup.procs` is an ordinary file, so a
    /// write shows as changed content.
    struct Dir(PathBuf);
    impl Dir {
        fn with_procs(name: &str, procs: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("hull-procs-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cgroup.procs"), procs).unwrap();
            Dir(dir)
        }
        fn procs(&self) -> String {
            std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap()
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn join_leaves_the_cgroup2_directory_a_process_was_born_in() {
        let born = Dir::with_procs("born", "77\n4242\n");
        let cg = Cgroups {
            unified: Some(born.0.clone()),
            unified_only: true,
            ..Default::default()
        };
        cg.join(4242).unwrap();
        assert_eq!(
            born.procs(),
            "77\n4242\n",
            "written although the pid was there"
        );

        let elsewhere = Dir::with_procs("elsewhere", "77\n");
        let cg = Cgroups {
            unified: Some(elsewhere.0.clone()),
            unified_only: true,
            ..Default::default()
        };
        cg.join(4242).unwrap();
        assert_eq!(elsewhere.procs(), "4242");
    }

    #[test]
    fn a_process_moves_itself_into_the_v1_cgroups_and_join_rest_does_the_cgroup2_one() {
        let v1 = Dir::with_procs("v1", "");
        let unified = Dir::with_procs("unified", "");
        let cg = Cgroups {
            v1: vec![crate::model::Hierarchy {
                controllers: vec!["pids".into()],
                dir: v1.0.clone(),
            }],
            unified: Some(unified.0.clone()),
            ..Default::default()
        };
        assert_eq!(cg.self_join_files(), [v1.0.join("tasks")]);
        cg.join_rest(4242).unwrap();
        assert_eq!(unified.procs(), "4242");
        assert_eq!(v1.procs(), "", "join_rest wrote to a v1 cgroup");
        // A unified host: the process is born in its cgroup, nothing to move itself into.
        let cg = Cgroups {
            unified: Some(unified.0.clone()),
            unified_only: true,
            ..Default::default()
        };
        assert!(cg.self_join_files().is_empty());
    }

    #[test]
    fn a_process_alone_in_the_cgroup2_side_of_a_hybrid_host_is_not_missed() {
        let v1 = Dir::with_procs("empty-v1", "");
        let unified = Dir::with_procs("busy-unified", "");
        std::fs::write(unified.0.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let mut cg = Cgroups {
            v1: vec![crate::model::Hierarchy {
                controllers: vec!["pids".into()],
                dir: v1.0.clone(),
            }],
            unified: Some(unified.0.clone()),
            ..Default::default()
        };
        assert!(!cg.is_empty());
        std::fs::write(unified.0.join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
        assert!(cg.is_empty());
        // Gone: nothing there.
        cg.unified = Some(unified.0.join("gone"));
        assert!(cg.is_empty());
    }
}
