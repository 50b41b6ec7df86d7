//! Propagation of the container's mount tree and the switch into the rootfs: pivot_root
//! without a put_old directory, MS_MOVE + chroot for `--no-pivot`, plain chroot without a
//! mount namespace.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::{io_err, mountinfo, sys, RootfsContext, RootfsError};

/// Before the rootfs bind: gives "/" the requested propagation (rslave by default), then
/// makes the mount the rootfs lives on private (slave for the slave forms), so the rootfs
/// bind neither leaks to the host nor stops pivot_root.
///
/// The unbindable forms are applied to the container's / after pivot_root only: made
/// unbindable here, "/" could no longer be bound, and the rootfs bind (like runc's) would
/// fail with EINVAL.
pub(super) fn prepare_propagation(
    rootfs: &Path,
    requested: Option<MsFlags>,
) -> Result<(), RootfsError> {
    let flags = match requested {
        Some(f) if !f.contains(MsFlags::MS_UNBINDABLE) => f,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    remount_propagation(Path::new("/"), flags).map_err(sys("set propagation of", "/"))?;
    let parent = if flags.contains(MsFlags::MS_SLAVE) {
        MsFlags::MS_SLAVE
    } else {
        MsFlags::MS_PRIVATE
    };
    // EINVAL means "not a mount point": walk up to the mount the rootfs lives on.
    let mut path = rootfs;
    loop {
        match remount_propagation(path, parent) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) => match path.parent() {
                Some(p) => path = p,
                None => {
                    return Err(sys("set propagation of parent mount of", rootfs.display())(
                        Errno::EINVAL,
                    ))
                }
            },
            Err(e) => return Err(sys("set propagation of", path.display())(e)),
        }
    }
}

fn remount_propagation(path: &Path, flags: MsFlags) -> Result<(), Errno> {
    nix::mount::mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
}

fn open_dir(path: &Path) -> Result<OwnedFd, RootfsError> {
    hull_sys::fd::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", path.display()))
}

/// Makes the rootfs the process's /, then applies the shared and unbindable forms of
/// `linux.rootfsPropagation` to it (private and slave it has already from the bind).
pub(super) fn enter(ctx: &RootfsContext, requested: Option<MsFlags>) -> Result<(), RootfsError> {
    let newroot = open_dir(ctx.rootfs())?;
    nix::unistd::fchdir(newroot.as_raw_fd()).map_err(sys("chdir", ctx.rootfs().display()))?;
    if !ctx.mount_ns {
        return chroot_here(ctx.rootfs());
    }
    if requested.is_some_and(|f| f.contains(MsFlags::MS_SHARED)) {
        // pivot_root and MS_MOVE refuse a shared current root; this one is left behind anyway.
        remount_propagation(Path::new("/"), MsFlags::MS_PRIVATE)
            .map_err(sys("set propagation of", "/"))?;
    }
    if ctx.no_pivot {
        move_root(ctx.rootfs())?;
    } else {
        pivot(ctx.rootfs())?;
    }
    if let Some(f) = requested.filter(|f| f.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE))
    {
        remount_propagation(Path::new("/"), f).map_err(sys("set rootfs propagation of", "/"))?;
    }
    Ok(())
}

/// pivot_root(".", ".") from inside the new root: the old root ends up mounted on top of it,
/// is made rslave (so its unmount cannot reach the host) and lazily unmounted.
fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    let oldroot = open_dir(Path::new("/"))?;
    nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root into", rootfs.display()))?;
    nix::unistd::fchdir(oldroot.as_raw_fd()).map_err(sys("chdir", "old root"))?;
    remount_propagation(Path::new("."), MsFlags::MS_SLAVE | MsFlags::MS_REC)
        .map_err(sys("set propagation of", "old root"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(sys("unmount", "old root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir", "/"))
}

/// `--no-pivot`: hides the host's full procfs and sysfs mounts (the kernel lets a new one be
/// mounted only where such a mount is visible; chroot alone would leave them reachable),
/// then moves the rootfs onto / and chroots into it.
fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let table =
        mountinfo::read_self().map_err(io_err("read mount table", "/proc/self/mountinfo"))?;
    for m in table.iter().rev() {
        let full = m.root == "/" && matches!(m.fs_type.as_str(), "proc" | "sysfs");
        if !full || mountinfo::is_at_or_below(&m.mount_point, rootfs) {
            continue;
        }
        let p = &m.mount_point;
        match remount_propagation(p, MsFlags::MS_SLAVE | MsFlags::MS_REC) {
            Ok(()) => {}
            // A parent of it was unmounted already.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(sys("set propagation of", p.display())(e)),
        }
        match nix::mount::umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                nix::mount::mount(
                    Some("tmpfs"),
                    p,
                    Some("tmpfs"),
                    MsFlags::empty(),
                    None::<&str>,
                )
                .map_err(sys("cover", p.display()))?;
            }
            Err(e) => return Err(sys("unmount", p.display())(e)),
        }
    }
    nix::mount::mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(sys("move rootfs onto /", rootfs.display()))?;
    chroot_here(rootfs)
}

/// chroot into the current directory (the rootfs) and chdir to the new /.
fn chroot_here(rootfs: &Path) -> Result<(), RootfsError> {
    nix::unistd::chroot(".").map_err(sys("chroot", rootfs.display()))?;
    nix::unistd::chdir("/").map_err(sys("chdir", "/"))
}
