//! cgroups: where a container's cgroups are (v1, hybrid or unified host), making and
//! removing them, joining the init before it runs container code, freezing, and finding and
//! signalling the container's processes. Limits are written by [`v1`] and [`v2`]; [`stats`]
//! reads usage back in the shape of runc's `events --stats`; `procs` joins, freezes, signals
//! and removes.
//!
//! Paths are computed here, per hierarchy, not by libcgroups: its v1 manager uses one path
//! for every controller and reads an empty path as the caller's own cgroup, while runc nests
//! a relative or empty `cgroupsPath` under the caller's cgroup of each hierarchy.

#![cfg_attr(not(test), forbid(unsafe_code))]

pub mod devices;
pub mod devices_bpf;
mod error;
pub mod events;
mod model;
mod mounts;
mod procs;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

pub use error::CgroupError;
pub use model::{Cgroups, Hierarchy};
use mounts::host_mounts;
pub use procs::reap_by_id;

use hull_sys::proc::CgroupLine;
use std::io;
use std::path::{Path, PathBuf};

/// Whether hull runs without the rights of the host's root: not uid 0, or uid 0 of a user
/// namespace (whose uid map is not the whole range).
pub fn rootless() -> bool {
    hull_sys::proc::rootless()
}

/// Whether `res` asks for any limit beyond device rules (which every config carries): a
/// field that is there with a value other than 0, false or empty.
pub fn has_limits(res: &oci_spec::runtime::LinuxResources) -> bool {
    fn set(v: &serde_json::Value) -> bool {
        use serde_json::Value::*;
        match v {
            Null | Bool(false) => false,
            Number(n) => n.as_f64() != Some(0.0),
            String(s) => !s.is_empty(),
            Array(a) => a.iter().any(set),
            Object(o) => o.values().any(set),
            Bool(true) => true,
        }
    }
    let mut rest = res.clone();
    rest.set_devices(None);
    serde_json::to_value(&rest).is_ok_and(|v| set(&v))
}

/// The caller's own cgroups (/proc/self/cgroup), read once per process (hull never moves
/// itself).
fn own_cgroups() -> Result<&'static [CgroupLine], CgroupError> {
    static OWN: std::sync::OnceLock<Vec<CgroupLine>> = std::sync::OnceLock::new();
    if let Some(o) = OWN.get() {
        return Ok(o);
    }
    let o = hull_sys::proc::own_cgroups().map_err(|source| CgroupError::Io {
        step: "read",
        path: "/proc/self/cgroup".into(),
        source,
    })?;
    Ok(OWN.get_or_init(|| o))
}

/// The caller's own cgroup path in the v1 hierarchy of `controllers`, or with `None` in
/// cgroup2.
fn own_in<'a>(own: &'a [CgroupLine], controllers: Option<&[String]>) -> Option<&'a str> {
    own.iter()
        .find(|l| match controllers {
            Some(c) => same_controllers(&l.controllers, c),
            None => l.controllers.is_empty(),
        })
        .map(|l| l.path.as_str())
}

/// Lexically cleans a cgroup path: `.` and empty parts go, `..` never climbs above the start.
fn clean(path: &str) -> PathBuf {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.iter().collect()
}

/// `dir` under `mount`, for a cgroup path as the host sees it, given the cgroup at the
/// mount's root (not `/` where hull itself runs inside a cgroup namespace's view).
fn under_mount(mount: &Path, mount_root: &str, cgroup: &Path) -> PathBuf {
    let root = clean(mount_root);
    let rel = cgroup.strip_prefix(&root).unwrap_or(cgroup);
    mount.join(rel)
}

/// Whether `a` is `b` or one of its ancestors.
fn is_at_or_above(a: &Path, b: &Path) -> bool {
    b.starts_with(a)
}

impl Cgroups {
    /// Where a container's cgroups go. `cgroups_path`: the config's `linux.cgroupsPath`; an
    /// absolute path is taken as is in every hierarchy, a relative or missing one (then the
    /// container id) nests under the caller's own cgroup of each hierarchy, as runc does.
    /// `rootless`: the caller's own systemd instance manages the units (runc's rootless
    /// cgroup manager), not PID 1's.
    pub fn resolve(
        cgroups_path: Option<&Path>,
        id: &str,
        systemd: bool,
        rootless: bool,
    ) -> Result<Cgroups, CgroupError> {
        let given = cgroups_path
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if systemd {
            return Cgroups::resolve_systemd(&given, id, rootless);
        }
        let inner = if given.is_empty() {
            id.to_string()
        } else {
            given.clone()
        };
        let absolute = inner.starts_with('/');
        let inner = clean(&inner);
        let mounts = host_mounts()?;
        let own = own_cgroups()?;
        let mut cg = Cgroups::default();
        let unified_only = mounts.v1.is_empty();
        for (controllers, mount, root) in &mounts.v1 {
            let parent = if absolute {
                PathBuf::new()
            } else {
                own_in(own, Some(controllers))
                    .map(clean)
                    .unwrap_or_default()
            };
            let dir = under_mount(mount, root, &parent.join(&inner));
            cg.v1.push(Hierarchy {
                controllers: controllers.clone(),
                dir,
            });
        }
        if let Some((mount, root)) = &mounts.unified {
            // On cgroup2 the caller's own cgroup holds the caller, so it cannot delegate
            // controllers to a child (no internal processes): nest under its parent, as runc.
            let parent = if absolute {
                PathBuf::new()
            } else {
                own_in(own, None)
                    .map(clean)
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or_default()
            };
            cg.unified = Some(under_mount(mount, root, &parent.join(&inner)));
            cg.unified_only = unified_only;
        }
        if cg.v1.is_empty() && cg.unified.is_none() {
            return Err(CgroupError::Path {
                path: given,
                reason: "no cgroup filesystem is mounted on this host".into(),
            });
        }
        if inner.as_os_str().is_empty() {
            return Err(CgroupError::Path {
                path: given,
                reason: "names the root cgroup; a container needs a cgroup of its own".into(),
            });
        }
        Ok(cg)
    }

    /// `resolve` for the systemd driver: the unit of `given`, and its cgroup where systemd
    /// will put it. systemd is reached only once the init exists: the D-Bus client starts
    /// threads, and the init is cloned from a single-threaded runtime.
    fn resolve_systemd(given: &str, id: &str, user: bool) -> Result<Cgroups, CgroupError> {
        let unit = systemd::Unit::parse(given, id, user)?;
        if !Path::new("/run/systemd/system").exists() {
            return Err(CgroupError::Path {
                path: given.to_string(),
                reason: "--systemd-cgroup needs systemd, which is not running on this host \
                         (/run/systemd/system is missing)"
                    .into(),
            });
        }
        let mounts = host_mounts()?;
        // On a v1 or hybrid host the unit's path is the same in every hierarchy: systemd
        // makes it in the ones it manages (name=systemd, memory, cpu, blkio, pids, devices
        // and its cgroup2 side), hull in the others, as runc's legacy driver does.
        let cg = Cgroups {
            v1: mounts
                .v1
                .iter()
                .map(|(controllers, mount, root)| Hierarchy {
                    controllers: controllers.clone(),
                    dir: under_mount(mount, root, &unit.cgroup()),
                })
                .collect(),
            unified: mounts
                .unified
                .as_ref()
                .map(|(mount, root)| under_mount(mount, root, &unit.cgroup())),
            unified_only: mounts.v1.is_empty(),
            systemd: Some(unit),
            ..Cgroups::default()
        };
        if cg.v1.is_empty() && cg.unified.is_none() {
            return Err(CgroupError::Path {
                path: given.to_string(),
                reason: "no cgroup filesystem is mounted on this host".into(),
            });
        }
        Ok(cg)
    }

    /// Keeps the `org.systemd.property.*` annotations for the unit, refusing a bad one now.
    pub fn set_unit_annotations(
        &mut self,
        annotations: Option<&std::collections::HashMap<String, String>>,
    ) -> Result<(), CgroupError> {
        let Some(annotations) = annotations.filter(|_| self.systemd.is_some()) else {
            return Ok(());
        };
        systemd::annotation_properties(annotations)?;
        self.unit_annotations = annotations
            .iter()
            .filter(|(k, _)| k.starts_with("org.systemd.property."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(())
    }

    /// Whether systemd makes the container's cgroup, around its init (`--systemd-cgroup`).
    pub fn by_systemd(&self) -> bool {
        self.systemd.is_some()
    }

    /// The unit properties for `res`: what systemd can hold of the cgroup2 files [`v2`]
    /// would write (planned against `dir`: the slice before the unit exists, the unit's own
    /// cgroup on update), and on create the device rules.
    fn unit_properties(
        &self,
        unit: &systemd::Unit,
        dir: &Path,
        res: &oci_spec::runtime::LinuxResources,
        update: bool,
    ) -> Result<Vec<systemd::Property>, CgroupError> {
        let bus = systemd::bus(unit.user)?;
        let mut props = if self.unified_only {
            let files = v2::planned_files(dir, res, update)?;
            systemd::properties_of_files(&files, &|| bus.version())?
        } else {
            systemd::v1_properties(res, &|| bus.version())?
        };
        // A user instance may not attach a device program (runc's rule).
        if !update && !unit.user {
            let rules = res.devices().clone().unwrap_or_default();
            props.splice(
                0..0,
                systemd::device_properties(&rules, !self.unified_only)?,
            );
        }
        if !update {
            props.extend(systemd::annotation_properties(&self.unit_annotations)?);
        }
        Ok(props)
    }

    /// Has systemd start the container's unit with `pid` (the init, not yet running
    /// container code) in it and the limits of `res` as properties. Marks the unit started
    /// and records its cgroups as hull's to remove, before any is made: the caller saves the
    /// state now, then calls [`Cgroups::finish_unit`].
    pub fn start_unit(
        &mut self,
        pid: i32,
        res: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), CgroupError> {
        let Some(unit) = self.systemd.clone() else {
            return Ok(());
        };
        let bus = systemd::bus(unit.user)?;
        let slice_dir = match (&self.unified, self.unified_only) {
            (Some(dir), true) => dir.parent().unwrap_or(dir).to_path_buf(),
            _ => PathBuf::new(),
        };
        let props = self.unit_properties(&unit, &slice_dir, res, false)?;
        bus.start(&unit, pid as u32, props, !self.unified_only)?;
        if let Some(u) = self.systemd.as_mut() {
            u.started = true;
        }
        if self.unified_only {
            if let Some(dir) = self.unified.clone().filter(|d| !d.is_dir()) {
                // Not where its name says (a user instance's units): ask systemd.
                let cg = bus.control_group(&unit)?;
                let (mount, root) = host_mounts()?.unified.unwrap_or_default();
                tracing::debug!("{} is at {cg}, not {}", unit.name, dir.display());
                self.unified = Some(under_mount(&mount, &root, &clean(&cg)));
            }
        }
        // On v1 the hierarchies systemd does not manage get the unit's path from hull.
        self.created = self.dirs().map(Path::to_path_buf).collect();
        Ok(())
    }

    /// The rest of a unit's start: the cgroups systemd does not make, the controllers it
    /// does not delegate (hugetlb, rdma, misc), the init in them all, and every cgroup file
    /// of `res` (what systemd has no property for, and the exact values).
    pub fn finish_unit(
        &self,
        pid: i32,
        res: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), CgroupError> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        if !self.unified_only {
            for dir in self.dirs() {
                std::fs::create_dir_all(dir).map_err(|source| CgroupError::Io {
                    step: "create cgroup",
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            // The slices hull makes beside systemd's take no task until they have cpus
            // and mems.
            if let Some(cpuset) = self.v1_dir("cpuset") {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    v1::fill_cpuset_down(cpuset, file)?;
                }
            }
            self.join(pid)?;
            return self.apply_files(res, false);
        }
        let Some(dir) = &self.unified else {
            return Ok(());
        };
        // systemd delegates only the controllers it knows: the others a limit needs are
        // enabled from the root down, as runc does.
        let needed: Vec<String> = v2::planned_files(dir, res, false)?
            .iter()
            .filter_map(|(file, _)| file.split('.').next().map(str::to_string))
            .filter(|c| c != "cgroup")
            .collect();
        if !needed.is_empty() {
            let root = host_mounts()?.unified.map(|m| m.0).unwrap_or_default();
            let mut above: Vec<&Path> = dir
                .ancestors()
                .skip(1)
                .take_while(|a| a.starts_with(&root))
                .collect();
            above.reverse();
            let wanted: Vec<&str> = needed.iter().map(String::as_str).collect();
            for a in above {
                if let Err(e) = v2::enable_controllers(a, &wanted) {
                    tracing::debug!("{e}");
                }
            }
        }
        if unit.is_slice() {
            // A slice holds no process by itself: the init joins its cgroup.
            self.join(pid)?;
        }
        v2::apply(dir, res, true, false)
    }

    /// Every directory of the container (v1 hierarchies, then the cgroup2 one).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .iter()
            .map(|h| h.dir.as_path())
            .chain(self.unified.as_deref())
    }

    /// Records in `planned` the directories [`Cgroups::make`] will create (each missing one
    /// from the hierarchy's root down), so the state can hold them before they exist.
    pub fn plan(&mut self) -> Result<(), CgroupError> {
        if self.by_systemd() {
            // systemd makes the unit's cgroup, and its slices.
            return Ok(());
        }
        let mounts = host_mounts()?;
        let mut roots: Vec<PathBuf> = mounts.v1.iter().map(|h| h.1.clone()).collect();
        roots.extend(mounts.unified.map(|u| u.0));
        let mut created = Vec::new();
        for dir in self.dirs() {
            let Some(root) = roots.iter().find(|r| dir.starts_with(r)) else {
                continue;
            };
            let mut missing: Vec<PathBuf> = dir
                .ancestors()
                .take_while(|a| a != root)
                .filter(|a| !a.exists())
                .map(Path::to_path_buf)
                .collect();
            missing.reverse();
            created.extend(missing);
        }
        self.planned = created;
        Ok(())
    }

    /// Whether `dir` is the container's own directory in one of its hierarchies and hull made it.
    fn made(&self, dir: &Path) -> bool {
        self.created.iter().any(|c| c == dir)
    }

    /// Refuses to put limits into a cgroup hull did not make that holds the caller (its own
    /// cgroup or one above): that would limit the runtime and everything beside it.
    pub fn check_ownership(&self, limits: bool) -> Result<(), CgroupError> {
        if !limits {
            return Ok(());
        }
        let own = own_cgroups()?;
        let mounts = host_mounts()?;
        for h in &self.v1 {
            if self.made(&h.dir) {
                continue;
            }
            let Some((_, mount, root)) = mounts.v1.iter().find(|m| m.0 == h.controllers) else {
                continue;
            };
            let mine =
                own_in(own, Some(&h.controllers)).map(|p| under_mount(mount, root, &clean(p)));
            if let Some(mine) = mine {
                if is_at_or_above(&h.dir, &mine) {
                    return Err(own_cgroup_refused(&h.dir));
                }
            }
        }
        if let (Some(u), Some((mount, root))) = (&self.unified, &mounts.unified) {
            let mine = own_in(own, None).map(|p| under_mount(mount, root, &clean(p)));
            if let Some(mine) = mine {
                if !self.made(u) && is_at_or_above(u, &mine) {
                    return Err(own_cgroup_refused(u));
                }
            }
        }
        Ok(())
    }

    /// Creates the directories `plan` recorded, and on cgroup2 delegates the controllers
    /// down to the container's directory. Cgroups above those hull made are asked to
    /// delegate only when the container needs controllers there: always on a unified host (as
    /// runc does), on a hybrid host only for limits that live on the cgroup2 side.
    /// (A new v1 cpuset cgroup starts with no CPUs: [`v1::apply`] fills it.)
    pub fn make(&mut self, res: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
        if self.by_systemd() {
            // The unit, and so the cgroup, comes with the init: [`Cgroups::start_unit`].
            return Ok(());
        }
        // Only what this call really creates is hull's: a directory that appeared since
        // `plan` (another container's, made meanwhile) is not.
        let planned = std::mem::take(&mut self.planned);
        for dir in &planned {
            let mut tries = 0;
            loop {
                match std::fs::create_dir(dir) {
                    Ok(()) => {
                        self.created.push(dir.clone());
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => break,
                    // A parent another container made and has just removed: make it again.
                    Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => {
                        tries += 1;
                        let mut missing: Vec<&Path> = dir
                            .ancestors()
                            .skip(1)
                            .take_while(|a| !a.exists())
                            .collect();
                        missing.reverse();
                        for m in missing {
                            if std::fs::create_dir(m).is_ok() {
                                self.created.push(m.to_path_buf());
                            }
                        }
                    }
                    Err(source) => {
                        return Err(CgroupError::Io {
                            step: "create cgroup",
                            path: dir.clone(),
                            source,
                        })
                    }
                }
            }
        }
        self.created.sort_by_key(|d| d.components().count());
        let Some(u) = self.unified.clone() else {
            return Ok(());
        };
        let needed = self.unified_only
            || res
                .hugepage_limits()
                .as_ref()
                .is_some_and(|h| !h.is_empty())
            || res.unified().as_ref().is_some_and(|m| !m.is_empty());
        let mut parents: Vec<PathBuf> = self
            .created
            .iter()
            .filter(|c| u.starts_with(c) && **c != u)
            .cloned()
            .collect();
        if let Some(first) = self.created.iter().find(|c| u.starts_with(c)) {
            if needed {
                // From the hierarchy's root down: a controller reaches a cgroup only if
                // every ancestor delegates it.
                let root = host_mounts()?.unified.map(|m| m.0).unwrap_or_default();
                let mut above: Vec<PathBuf> = first
                    .ancestors()
                    .skip(1)
                    .take_while(|a| a.starts_with(&root))
                    .map(Path::to_path_buf)
                    .collect();
                above.reverse();
                parents.splice(0..0, above);
            }
        }
        for dir in &parents {
            let have = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            let wanted: Vec<&str> = have.split_whitespace().collect();
            let result = v2::enable_controllers(dir, &wanted);
            if self.made(dir) {
                result?;
            } else if let Err(e) = result {
                // Best effort above what hull made (runc too): a limit that needs a missing
                // controller then fails naming its field.
                tracing::debug!("{e}");
            }
        }
        Ok(())
    }

    /// Writes the limits of `res` (on create, before the init joins; on update, live).
    pub fn apply(
        &self,
        res: &oci_spec::runtime::LinuxResources,
        update: bool,
    ) -> Result<(), CgroupError> {
        if let Some(unit) = &self.systemd {
            // systemd first: it rewrites the files of the properties it holds.
            let dir = self.unified.clone().unwrap_or_default();
            let props = self.unit_properties(unit, &dir, res, update)?;
            systemd::bus(unit.user)?.set(unit, props)?;
        }
        self.apply_files(res, update)
    }

    /// The cgroup files of `res`, in every hierarchy.
    fn apply_files(
        &self,
        res: &oci_spec::runtime::LinuxResources,
        update: bool,
    ) -> Result<(), CgroupError> {
        if !self.v1.is_empty() {
            v1::apply(self, res, update)?;
        }
        if let Some(u) = &self.unified {
            v2::apply(u, res, self.unified_only, update)?;
        }
        Ok(())
    }

    /// `exec --cgroup`: the same cgroups with existing sub-cgroups put in their place, per
    /// controller (`Some("cpu,cpuacct")`) or, with no controller named, in every hierarchy
    /// that has no path of its own. Nothing is made: the sub-cgroups must exist.
    pub fn sub(&self, specs: &[(Option<String>, PathBuf)]) -> Result<Cgroups, CgroupError> {
        let bad = |path: &Path, reason: &str| CgroupError::Invalid {
            field: format!("--cgroup {}", path.display()),
            reason: reason.into(),
        };
        // As runc: a path is below the container's cgroup even when written absolute (`/` is
        // the container's own), and may not climb out of it.
        let specs: Vec<(Option<String>, PathBuf)> = specs
            .iter()
            .map(|(c, p)| (c.clone(), p.strip_prefix("/").unwrap_or(p).to_path_buf()))
            .collect();
        for (_, path) in &specs {
            if path.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            }) {
                // runc's words.
                let why = format!("{} is not a sub cgroup path", path.display());
                return Err(bad(path, &why));
            }
        }
        let plain = specs.iter().find(|(c, _)| c.is_none()).map(|(_, p)| p);
        let mut out = self.clone();
        // Not the unit's own cgroup: systemd cannot be asked to move a process there.
        out.systemd = None;
        for h in &mut out.v1 {
            let own = specs.iter().find_map(|(c, p)| {
                c.as_ref()
                    .filter(|c| c.split(',').any(|c| h.controllers.iter().any(|h| h == c)))
                    .map(|_| p)
            });
            if let Some(p) = own.or(plain).filter(|p| !p.as_os_str().is_empty()) {
                h.dir = h.dir.join(p);
            }
        }
        if let (Some(u), Some(p)) = (&mut out.unified, plain) {
            if !p.as_os_str().is_empty() {
                *u = u.join(p);
            }
        }
        for dir in out.dirs() {
            if !dir.is_dir() {
                // runc's words (it finds out when it writes the pid).
                let why = format!(
                    "adding pid to cgroup: open {}/cgroup.procs: no such file or directory",
                    dir.display()
                );
                return Err(bad(dir, &why));
            }
        }
        for (c, p) in &specs {
            if let Some(c) = c {
                if !c
                    .split(',')
                    .all(|c| self.v1.iter().any(|h| h.controllers.iter().any(|h| h == c)))
                {
                    return Err(bad(p, &format!("unknown controller {c:?}")));
                }
            }
        }
        Ok(out)
    }

    /// The cgroup2 directory, opened for `CLONE_INTO_CGROUP`.
    pub fn open_unified(&self) -> Result<Option<std::os::fd::OwnedFd>, CgroupError> {
        use std::os::unix::fs::OpenOptionsExt;
        let Some(dir) = &self.unified else {
            return Ok(None);
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|source| CgroupError::Io {
                step: "open cgroup",
                path: dir.clone(),
                source,
            })?;
        Ok(Some(file.into()))
    }
}

fn own_cgroup_refused(dir: &Path) -> CgroupError {
    CgroupError::Path {
        path: dir.display().to_string(),
        reason: "is the runtime's own cgroup or one above it: refusing to set limits there".into(),
    }
}

fn same_controllers(field: &str, controllers: &[String]) -> bool {
    let mut a: Vec<&str> = field.split(',').filter(|s| !s.is_empty()).collect();
    let mut b: Vec<&str> = controllers.iter().map(String::as_str).collect();
    a.sort_unstable();
    b.sort_unstable();
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests;
