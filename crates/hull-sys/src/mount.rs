//! New mount API syscalls nix lacks: `open_tree`, `move_mount`, `mount_setattr`, and the
//! `fsopen`/`fsconfig`/`fsmount` trio. They let the rootfs code build a mount detached, set
//! its flags, and attach it onto a file descriptor, never onto a path that could be swapped.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

pub use libc::mount_attr as MountAttr;
pub use libc::{
    AT_EMPTY_PATH, AT_RECURSIVE, AT_SYMLINK_NOFOLLOW, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NOATIME,
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
    MOUNT_ATTR__ATIME, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE,
};

/// An empty C string, for the `""` path of the `*_EMPTY_PATH` forms.
const EMPTY: &CStr = c"";

fn cpath(path: &Path) -> Result<CString, Errno> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn raw_dirfd(dirfd: Option<BorrowedFd<'_>>) -> RawFd {
    dirfd.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd())
}

/// Wraps a syscall result that is a new fd.
fn new_fd(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = Errno::result(ret)?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// [`open_tree(2)`](https://man7.org/linux/man-pages/man2/open_tree.2.html): with
/// `OPEN_TREE_CLONE`, a detached copy of the mount at `path` (relative to `dirfd`, the cwd
/// when `None`; `""` with `AT_EMPTY_PATH` for `dirfd` itself), recursively with
/// `AT_RECURSIVE`.
pub fn open_tree(dirfd: Option<BorrowedFd<'_>>, path: &Path, flags: u32) -> Result<OwnedFd, Errno> {
    let path = cpath(path)?;
    // SAFETY: path is a valid NUL-terminated string that outlives the call.
    new_fd(unsafe { libc::syscall(libc::SYS_open_tree, raw_dirfd(dirfd), path.as_ptr(), flags) })
}

/// [`move_mount(2)`](https://man7.org/linux/man-pages/man2/move_mount.2.html) from the
/// mount `from` (typically a detached one from [`open_tree`] or [`fsmount`]) onto the file
/// or directory `to` refers to.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both fds are open for the call and both paths are the static empty string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            EMPTY.as_ptr(),
            to.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
        )
    };
    Errno::result(ret).map(drop)
}

/// [`mount_setattr(2)`](https://man7.org/linux/man-pages/man2/mount_setattr.2.html): change
/// the per-mount attributes and propagation of the mount at `path` (relative to `dirfd`;
/// `""` with `AT_EMPTY_PATH` for `dirfd` itself), of its whole subtree with `AT_RECURSIVE`.
pub fn mount_setattr(
    dirfd: Option<BorrowedFd<'_>>,
    path: &Path,
    flags: libc::c_int,
    attr: &MountAttr,
) -> Result<(), Errno> {
    let path = cpath(path)?;
    // SAFETY: path is a valid C string and attr a valid mount_attr of the size we pass; the
    // kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            raw_dirfd(dirfd),
            path.as_ptr(),
            flags as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// [`fsopen(2)`](https://man7.org/linux/man-pages/man2/fsopen.2.html): a filesystem context
/// for a new superblock of type `fstype`, close-on-exec.
pub fn fsopen(fstype: &str) -> Result<OwnedFd, Errno> {
    let fstype = CString::new(fstype).map_err(|_| Errno::EINVAL)?;
    // SAFETY: fstype is a valid C string that outlives the call.
    new_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })
}

/// [`fsconfig(2)`](https://man7.org/linux/man-pages/man2/fsconfig.2.html) with
/// `FSCONFIG_SET_FLAG` (no value) or `FSCONFIG_SET_STRING` (`key=value`).
pub fn fsconfig_set(fs: BorrowedFd<'_>, key: &str, value: Option<&str>) -> Result<(), Errno> {
    let key = CString::new(key).map_err(|_| Errno::EINVAL)?;
    let value = value
        .map(|v| CString::new(v).map_err(|_| Errno::EINVAL))
        .transpose()?;
    let (cmd, value_ptr) = match &value {
        Some(v) => (libc::FSCONFIG_SET_STRING, v.as_ptr()),
        None => (libc::FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: key (and value when given) are valid C strings that outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            key.as_ptr(),
            value_ptr,
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// [`fsconfig(2)`](https://man7.org/linux/man-pages/man2/fsconfig.2.html) with
/// `FSCONFIG_CMD_CREATE`: create the superblock from the configured context.
pub fn fsconfig_create(fs: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// [`fsmount(2)`](https://man7.org/linux/man-pages/man2/fsmount.2.html): a detached mount of
/// the superblock created in `fs`, with the `MOUNT_ATTR_*` flags `attrs`, close-on-exec.
pub fn fsmount(fs: BorrowedFd<'_>, attrs: u64) -> Result<OwnedFd, Errno> {
    // SAFETY: fsmount takes an fd and two integer flag words.
    new_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs as libc::c_uint,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn detached_tmpfs_is_usable_before_it_is_attached() {
        hull_testing::skip_unless_root!();
        let fs = fsopen("tmpfs").unwrap();
        fsconfig_set(fs.as_fd(), "mode", Some("0700")).unwrap();
        fsconfig_create(fs.as_fd()).unwrap();
        let mnt = fsmount(fs.as_fd(), MOUNT_ATTR_NOEXEC).unwrap();
        let st = nix::sys::stat::fstat(mnt.as_raw_fd()).unwrap();
        assert_eq!(st.st_mode & 0o7777, 0o700);
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        mount_setattr(Some(mnt.as_fd()), Path::new(""), AT_EMPTY_PATH, &attr).unwrap();
        let vfs = nix::sys::statvfs::fstatvfs(&mnt).unwrap();
        assert!(vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        assert!(vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC));
    }

    #[test]
    fn bad_fstype_is_an_error() {
        hull_testing::skip_unless_root!();
        assert_eq!(fsopen("no-such-fs").unwrap_err(), Errno::ENODEV);
    }
}
