//! After pivot_root (and sysctls): `linux.readonlyPaths`, `linux.maskedPaths`, read-only
//! tmpfs mounts, then `root.readonly`. Every path is resolved inside the new root, every
//! mount is built detached and attached onto the resolved fd, and flags are changed with
//! mount_setattr, which keeps the flags the kernel locked in a user namespace.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::stat::SFlag;

use super::inroot::InRoot;
use super::mounts::setattr;
use super::options::readonly_attr;
use super::{sys, RootfsContext, RootfsError};
use hull_sys::mount::{
    self as sysmount, AT_EMPTY_PATH, AT_RECURSIVE, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE,
};

pub(super) fn finalize(ctx: &RootfsContext) -> Result<(), RootfsError> {
    reopen_dev_null();
    let root = InRoot::open(Path::new("/")).map_err(sys("open", "/"))?;
    for p in &ctx.plan.readonly_paths {
        readonly_path(&root, p)?;
    }
    let mut masks = Masks::default();
    for p in &ctx.plan.masked_paths {
        mask_path(&root, p, &mut masks, ctx.mount_label())?;
    }
    readonly_tmpfs(ctx, &root)?;
    if ctx.plan.readonly_root {
        let ro = readonly_attr();
        sysmount::mount_setattr(None, Path::new("/"), 0, &ro)
            .map_err(sys("make read-only", "/"))?;
    }
    Ok(())
}

/// Makes stdin, stdout or stderr that is the host's /dev/null the container's own, as runc
/// does: a descriptor of a file on a mount the container does not have is one CRIU cannot
/// checkpoint (podman hands a container /dev/null for stdin). Best effort: without a
/// /dev/null of its own the container keeps the host's.
fn reopen_dev_null() {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDWR | OFlag::O_CLOEXEC;
    let Ok(null) = hull_sys::fd::open("/dev/null", flags, nix::sys::stat::Mode::empty()) else {
        return;
    };
    let is_null = |st: &nix::sys::stat::FileStat| {
        st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == nix::sys::stat::makedev(1, 3)
    };
    let ours = nix::sys::stat::fstat(null.as_raw_fd()).ok();
    for fd in 0..3 {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        // The host's: a /dev/null device on another filesystem than the container's.
        if is_null(&st) && ours.is_some_and(|o| o.st_dev != st.st_dev) {
            let _ = nix::unistd::dup3(null.as_raw_fd(), fd, OFlag::empty());
        }
    }
}

/// Resolves `path` in the container; `None` when it does not exist.
fn existing(
    root: &InRoot,
    path: &Path,
    step: &'static str,
) -> Result<Option<OwnedFd>, RootfsError> {
    root.lookup(path).map_err(sys(step, path.display()))
}

/// Binds `path` onto itself and makes the bind (and what is mounted below it) read-only.
fn readonly_path(root: &InRoot, path: &Path) -> Result<(), RootfsError> {
    let Some(target) = existing(root, path, "resolve read-only path")? else {
        return Ok(());
    };
    let tree = sysmount::open_tree(
        Some(target.as_fd()),
        Path::new(""),
        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE | AT_EMPTY_PATH) as u32,
    )
    .map_err(sys("bind read-only path", path.display()))?;
    let ro = readonly_attr();
    setattr(tree.as_fd(), &ro, true).map_err(sys("make read-only", path.display()))?;
    sysmount::move_mount(tree.as_fd(), target.as_fd())
        .map_err(sys("mount read-only path", path.display()))
}

/// Hides `path`: a directory under an empty read-only tmpfs, anything else under /dev/null.
/// What masking makes once and shares: the container's /dev/null (opened and checked at the
/// first masked file) and one read-only tmpfs that every masked directory gets a bind of,
/// as runc does (one superblock, not one per directory).
#[derive(Default)]
struct Masks {
    null: Option<OwnedFd>,
    tmpfs: Option<OwnedFd>,
}

fn mask_path(
    root: &InRoot,
    path: &Path,
    masks: &mut Masks,
    mount_label: Option<&str>,
) -> Result<(), RootfsError> {
    let Some(target) = existing(root, path, "resolve masked path")? else {
        return Ok(());
    };
    let st = nix::sys::stat::fstat(target.as_fd().as_raw_fd())
        .map_err(sys("stat masked path", path.display()))?;
    let is_dir = st.st_mode & libc::S_IFMT == SFlag::S_IFDIR.bits();
    let mnt = if let (true, Some(shared)) = (is_dir, &masks.tmpfs) {
        sysmount::open_tree(
            Some(shared.as_fd()),
            Path::new(""),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH as u32,
        )
        .map_err(sys("bind the masking tmpfs", path.display()))?
    } else if is_dir {
        let fs = sysmount::fsopen("tmpfs").map_err(sys("fsopen tmpfs to mask", path.display()))?;
        // A read-only superblock with source "tmpfs", as mount(2) would have made it.
        sysmount::fsconfig_set(fs.as_fd(), "source", Some("tmpfs"))
            .and_then(|()| sysmount::fsconfig_set(fs.as_fd(), "ro", None))
            .map_err(sys("configure tmpfs to mask", path.display()))?;
        if let Some(label) = crate::lsm::fsconfig_context(&[], mount_label) {
            sysmount::fsconfig_set(fs.as_fd(), "context", Some(label))
                .map_err(sys("label tmpfs to mask", path.display()))?;
        }
        sysmount::fsconfig_create(fs.as_fd())
            .map_err(sys("create tmpfs to mask", path.display()))?;
        sysmount::fsmount(fs.as_fd(), sysmount::MOUNT_ATTR_RDONLY)
            .map_err(sys("fsmount tmpfs to mask", path.display()))?
    } else {
        if masks.null.is_none() {
            masks.null = Some(verified_dev_null(root)?);
        }
        let null = masks.null.as_ref().expect("set above");
        sysmount::open_tree(
            Some(null.as_fd()),
            Path::new(""),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH as u32,
        )
        .map_err(sys("clone /dev/null to mask", path.display()))?
    };
    sysmount::move_mount(mnt.as_fd(), target.as_fd()).map_err(sys("mask", path.display()))?;
    // Attached now, so later directories can clone it (a detached mount cannot be).
    if is_dir && masks.tmpfs.is_none() {
        masks.tmpfs = Some(mnt);
    }
    Ok(())
}

/// The container's /dev/null, opened without following a symlink and checked to be the 1:3
/// character device, so masking never binds something the container planted (CVE-2025-31133).
fn verified_dev_null(root: &InRoot) -> Result<OwnedFd, RootfsError> {
    let h = root
        .resolve_nofollow(Path::new("/dev/null"))
        .map_err(sys("open", "/dev/null"))?;
    let st = nix::sys::stat::fstat(h.as_fd().as_raw_fd()).map_err(sys("stat", "/dev/null"))?;
    let is_chr = st.st_mode & libc::S_IFMT == SFlag::S_IFCHR.bits();
    let rdev = (
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    );
    if !is_chr || rdev != (1, 3) {
        return Err(RootfsError::refused(
            "mask paths with",
            "/dev/null",
            "it is not the 1:3 character device",
        ));
    }
    Ok(h)
}

/// tmpfs mounts asked read-only were mounted writable so that what lies below them (mount
/// points, devices in /dev) could be created; they become read-only now.
fn readonly_tmpfs(ctx: &RootfsContext, root: &InRoot) -> Result<(), RootfsError> {
    for m in ctx.plan.mounts.iter().filter(|m| m.is_readonly_tmpfs()) {
        let Some(h) = existing(root, &m.dest, "resolve mount")? else {
            continue;
        };
        let ro = readonly_attr();
        setattr(h.as_fd(), &ro, false).map_err(sys("make read-only", m.dest.display()))?;
    }
    Ok(())
}
