//! /dev inside the rootfs: the default device nodes, `linux.devices`, the standard symlinks,
//! /dev/ptmx and /dev/console. Nodes are made with mknod where the kernel lets us; in a user
//! namespace (or wherever mknod is refused) the host's node is bind-mounted onto an empty file.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::inroot::InRoot;
use super::mounts::open_or_create;
use super::plan::Device;
use super::{sys, RootfsContext, RootfsError};
use hull_sys::mount::{self as sysmount, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

/// Creates the default devices and `linux.devices`, then the symlinks and /dev/ptmx.
pub(super) fn setup(
    ctx: &RootfsContext,
    root: &InRoot,
    devices: &[Device],
) -> Result<(), RootfsError> {
    // Modes exactly as configured.
    let old = nix::sys::stat::umask(Mode::empty());
    let made = create_all(ctx, root, devices);
    nix::sys::stat::umask(old);
    made?;
    symlinks(root)
}

fn create_all(ctx: &RootfsContext, root: &InRoot, devices: &[Device]) -> Result<(), RootfsError> {
    // Most nodes share /dev: its directory is resolved (or made) once, and each node is
    // made in it with one mknodat.
    let mut parent: Option<(&Path, OwnedFd)> = None;
    for d in devices {
        // The plan has only file paths: `/` has no parent and no name.
        let (Some(dir), Some(name)) = (d.path.parent(), d.path.file_name()) else {
            continue;
        };
        if parent.as_ref().is_none_or(|(p, _)| *p != dir) {
            let fd = root
                .mkdir_all(dir, Mode::from_bits_truncate(0o755))
                .map_err(sys("create directory", dir.display()))?;
            parent = Some((dir, fd));
        }
        let (_, dir) = parent.as_ref().expect("set above");
        create(ctx, root, dir.as_fd(), name, d)?;
    }
    Ok(())
}

/// Makes `d` as `name` in `dir` (its parent directory).
fn create(
    ctx: &RootfsContext,
    root: &InRoot,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    d: &Device,
) -> Result<(), RootfsError> {
    let node_needs_privilege = d.kind != SFlag::S_IFIFO;
    if !(ctx.user_ns && node_needs_privilege) {
        let rdev = if d.kind == SFlag::S_IFIFO {
            0
        } else {
            d.rdev()
        };
        let perm = Mode::from_bits_truncate(d.mode);
        match nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, d.kind, perm, rdev) {
            Ok(()) => return fix_up(dir, name, d),
            // A node the rootfs already has is kept, as runc does.
            Err(Errno::EEXIST) => return Ok(()),
            Err(Errno::EPERM) => {}
            Err(e) => return Err(sys("mknod", d.path.display())(e)),
        }
    }
    bind_host_node(root, d)
}

/// Checks the new node is what was asked for (nothing swapped it) and gives it its owner.
fn fix_up(dir: BorrowedFd<'_>, name: &OsStr, d: &Device) -> Result<(), RootfsError> {
    let shown = d.path.display().to_string();
    let h = hull_sys::fd::openat(
        dir.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open new device", &shown))?;
    let st = nix::sys::stat::fstat(h.as_raw_fd()).map_err(sys("stat new device", &shown))?;
    let kind_ok = st.st_mode & libc::S_IFMT == d.kind.bits();
    let rdev_ok = d.kind == SFlag::S_IFIFO || st.st_rdev == d.rdev();
    if !kind_ok || !rdev_ok {
        return Err(RootfsError::refused(
            "create device",
            &shown,
            "the new node is not the one requested",
        ));
    }
    if (d.uid, d.gid) != (0, 0) || (st.st_uid, st.st_gid) != (0, 0) {
        nix::unistd::fchownat(
            Some(h.as_raw_fd()),
            "",
            Some(nix::unistd::Uid::from_raw(d.uid)),
            Some(nix::unistd::Gid::from_raw(d.gid)),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(sys("chown device", shown))?;
    }
    Ok(())
}

/// Bind-mounts the host's node at the same path onto an empty file in the rootfs.
fn bind_host_node(root: &InRoot, d: &Device) -> Result<(), RootfsError> {
    let target = open_or_create(root, &d.path, true)?;
    let tree = sysmount::open_tree(None, &d.path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
        .map_err(sys("clone host device", d.path.display()))?;
    sysmount::move_mount(tree.as_fd(), target.as_fd())
        .map_err(sys("bind host device onto", d.path.display()))
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core (if the host has /proc/kcore) and /dev/ptmx.
fn symlinks(root: &InRoot) -> Result<(), RootfsError> {
    let dev = root
        .resolve(Path::new("/dev"))
        .map_err(sys("resolve", "/dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, link) in links {
        symlink(dev.as_fd(), target, link)?;
    }
    // /dev/ptmx must be the one of the container's devpts instance.
    match nix::unistd::unlinkat(
        Some(dev.as_raw_fd()),
        "ptmx",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys("remove", "/dev/ptmx")(e)),
    }
    symlink(dev.as_fd(), "pts/ptmx", "ptmx")
}

/// The symlink /dev/`name` to `target`; one that exists already is kept.
fn symlink(dev: BorrowedFd<'_>, target: &str, name: &str) -> Result<(), RootfsError> {
    match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(sys("create symlink", format!("/dev/{name}"))(e)),
    }
}

/// An empty /dev/console for the console code to bind the pty onto after pivot_root.
pub(super) fn create_console(root: &InRoot) -> Result<(), RootfsError> {
    open_or_create(root, Path::new("/dev/console"), true).map(drop)
}
