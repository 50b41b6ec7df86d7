//! The container's root filesystem: propagation, the rootfs bind, every configured mount,
//! /dev (default devices, symlinks, `linux.devices`), pivot_root, masked and read-only paths.
//!
//! Paths inside the rootfs are resolved without following symlinks out of it, and mounts are
//! made onto file descriptors, never onto a path that could be swapped underneath us.
//!
//! Submodules: `plan` (the config resolved and checked before the clone: what the rest
//! carries out), `options` (parsing mount options), `mounts` (the `mounts[]` entries),
//! `devices` (/dev), `pivot` (propagation and entering the rootfs), `paths` (what happens
//! after pivot), `inroot` (resolving and creating paths inside the rootfs). The mount table
//! is read through `hull_sys::mountinfo`.

mod devices;
mod inroot;
mod mounts;

pub use mounts::{
    idmap_namespaces, make_restore_mount_points, open_bind_sources, resolved_destination, set_idmap,
};
pub mod options;
mod paths;
mod pivot;
pub mod plan;

pub use plan::{plan, Plan};

use std::fmt::Display;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use hull_sys::mountinfo;
use inroot::InRoot;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{step} {path}: {source}")]
    Sys {
        step: &'static str,
        path: String,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The config asks for something hull refuses or does not support.
    #[error("{step} {path}: {reason}")]
    Refused {
        step: &'static str,
        path: String,
        reason: String,
    },
}

impl RootfsError {
    fn refused(step: &'static str, path: impl Display, reason: impl Into<String>) -> Self {
        RootfsError::Refused {
            step,
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

/// `map_err` helper: a failed syscall at `step` on `path`.
fn sys(step: &'static str, path: impl Display) -> impl FnOnce(Errno) -> RootfsError {
    move |source| RootfsError::Sys {
        step,
        path: path.to_string(),
        source,
    }
}

/// `map_err` helper: a failed std I/O call at `step` on `path`.
fn io_err(step: &'static str, path: impl Display) -> impl FnOnce(std::io::Error) -> RootfsError {
    move |source| RootfsError::Io {
        step,
        path: path.to_string(),
        source,
    }
}

/// What the init knows when it sets up the rootfs: the plan, and what only the runtime's
/// process could find out.
#[derive(Debug, Clone, Copy)]
pub struct RootfsContext<'a> {
    pub plan: &'a Plan,
    /// `--no-pivot`: MS_MOVE the rootfs onto / and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has its own mount namespace (without one, runc mounts into the host's
    /// namespace and chroots).
    pub mount_ns: bool,
    /// The container has a new user namespace: device nodes are bind-mounted from the host
    /// instead of created with mknod.
    pub user_ns: bool,
    /// With a new cgroup namespace: the init's cgroup2 path as it was before that namespace
    /// (relative to the hierarchy's root), bound at a cgroup2 mount the kernel refuses.
    pub cgroup2_path: Option<&'a Path>,
    /// Bind mount sources the runtime opened as detached trees, by `mounts[]` index.
    pub bind_sources: &'a [Option<std::os::fd::OwnedFd>],
    /// Who sets the idmapping of an idmapped bind mount's tree (the runtime); `None` where
    /// the plan has none.
    pub idmapper: Option<&'a dyn Idmapper>,
}

/// Sets the idmapping `mounts[index]` asks for on `tree`, a detached copy of its source
/// the init made (or took from the runtime). The init cannot do it itself: the kernel wants
/// the caller to own the source's filesystem, which the root of a new user namespace does
/// not. The runtime can, once it has the tree ([`set_idmap`]), as runc's does.
pub trait Idmapper: std::fmt::Debug {
    fn idmap(&self, index: usize, tree: std::os::fd::BorrowedFd<'_>) -> Result<(), String>;
}

impl RootfsContext<'_> {
    fn rootfs(&self) -> &Path {
        &self.plan.rootfs
    }

    /// `linux.mountLabel`, the SELinux context of the filesystems hull mounts.
    fn mount_label(&self) -> Option<&str> {
        self.plan.mount_label.as_deref()
    }
}

/// In the init, in the container's mount namespace, before the createContainer hooks:
/// propagation, the rootfs bind, every mount of the config, /dev.
pub fn prepare(ctx: &RootfsContext) -> Result<(), RootfsError> {
    let rootfs = ctx.rootfs();
    if ctx.mount_ns {
        pivot::prepare_propagation(rootfs, ctx.plan.propagation)?;
    }
    // A mount point of its own: pivot_root needs one, and a read-only root must not remount
    // the filesystem the rootfs directory lives on.
    nix::mount::mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind rootfs onto itself", rootfs.display()))?;
    // Opened after the bind, so every path resolves inside the new mount.
    let root = InRoot::open(rootfs).map_err(sys("open rootfs", rootfs.display()))?;

    let mounter = mounts::Mounter::new(ctx, &root)?;
    for (i, m) in ctx.plan.mounts.iter().enumerate() {
        mounter.mount(i, m, ctx.bind_sources.get(i).and_then(Option::as_ref))?;
    }
    if let Some(devices) = &ctx.plan.devices {
        devices::setup(ctx, &root, devices)?;
    }
    if ctx.plan.console {
        devices::create_console(&root)?;
    }
    Ok(())
}

/// pivot_root into the rootfs (or MS_MOVE + chroot with `--no-pivot`, chroot without a mount
/// namespace) and chdir to the new /.
pub fn enter(ctx: &RootfsContext) -> Result<(), RootfsError> {
    pivot::enter(ctx, ctx.plan.propagation)
}

/// After pivot_root and sysctls: read-only paths, masked paths, then `root.readonly`.
pub fn finalize(ctx: &RootfsContext) -> Result<(), RootfsError> {
    paths::finalize(ctx)
}

/// Unmounts (lazily) what a container without its own mount namespace left mounted at or
/// below `rootfs` in the current mount namespace: the rootfs bind and everything mounted on
/// it, deepest first. A filesystem that was mounted at the rootfs before the container (say,
/// an overlay a container manager mounted there) is left alone, with what lies below it.
pub fn cleanup_host_mounts(rootfs: &Path) -> Result<(), RootfsError> {
    let rootfs = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    let table =
        mountinfo::read_self().map_err(io_err("read mount table", "/proc/self/mountinfo"))?;
    for m in ours_below(&table, &rootfs).into_iter().rev() {
        // NOFOLLOW: a mount point the container turned into a symlink must not lead the
        // host's umount elsewhere.
        match nix::mount::umount2(
            &m.mount_point,
            MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
        ) {
            Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
            Err(e) => return Err(sys("unmount", m.mount_point.display())(e)),
        }
    }
    Ok(())
}

/// The mounts at or below `rootfs` that a container set up, in mount table order. A mount
/// at `rootfs` is foreign when it is the lowest one there and mounts a whole filesystem
/// (root "/"): our rootfs bind is either a bind of a subdirectory or stacked on top of it.
fn ours_below<'a>(
    table: &'a [mountinfo::MountEntry],
    rootfs: &Path,
) -> Vec<&'a mountinfo::MountEntry> {
    let by_id = |id: u32| table.iter().find(|m| m.id == id);
    let at_rootfs = |m: &mountinfo::MountEntry| m.mount_point == rootfs;
    let foreign = |m: &mountinfo::MountEntry| {
        at_rootfs(m) && m.root == "/" && by_id(m.parent).is_none_or(|p| !at_rootfs(p))
    };
    table
        .iter()
        .filter(|m| mountinfo::is_at_or_below(&m.mount_point, rootfs))
        .filter(|m| {
            // Walk up to the mount at the rootfs this one hangs from.
            let mut cur = *m;
            let mut hops = 0;
            while !at_rootfs(cur) && hops < table.len() {
                match by_id(cur.parent) {
                    Some(p) => cur = p,
                    None => break,
                }
                hops += 1;
            }
            at_rootfs(cur) && !foreign(cur)
        })
        .collect()
}

/// The magic-link path of an open fd, for syscalls that take only paths. Valid while /proc is
/// the host's procfs (before pivot_root) or the container's verified one.
fn fd_path(fd: &impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Lexically cleans a container path: absolute, no `.` or `..` (which cannot climb above /).
pub(crate) fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
