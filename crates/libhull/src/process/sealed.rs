//! The runtime's own binary, sealed (CVE-2019-5736).
//!
//! Until the init execs the user's program it is a copy of this process, so its
//! `/proc/self/exe` is whatever file the runtime runs from. A container that makes the init
//! exec `/proc/self/exe` (as its program, a `#!` interpreter or an ELF interpreter) gets a
//! process inside the container running that file, and through `/proc/<pid>/exe` a handle it
//! can reopen for writing once the runtime has exited. So every command that runs code in a
//! container first re-executes itself from a sealed in-memory copy: the file such a process
//! reaches is private to this invocation and refuses every write.

use std::ffi::{CStr, CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;

/// The seals of the copy: no write, no resize, and no way to lift them.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

#[derive(Debug, thiserror::Error)]
#[error("protect the runtime binary (CVE-2019-5736): {step}: {errno}")]
pub struct SealError {
    step: &'static str,
    errno: Errno,
}

fn fail(step: &'static str) -> impl FnOnce(Errno) -> SealError {
    move |errno| SealError { step, errno }
}

/// Returns when this process runs from a sealed copy of its binary; otherwise makes one and
/// re-executes itself from it with the same arguments, environment and open descriptors
/// (then it does not return).
pub fn ensure() -> Result<(), SealError> {
    let exe = File::open("/proc/self/exe").map_err(|e| SealError {
        step: "open /proc/self/exe",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    if is_sealed(&exe) || is_read_only_overlay(&exe) {
        name_after_argv0();
        return Ok(());
    }
    let view = match read_only_view() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("no read-only overlay of the binary ({e}): using a sealed copy");
            sealed_copy(&exe)?
        }
    };
    drop(exe);
    reexec(&view)
}

const OVERLAYFS_SUPER_MAGIC: libc::c_long = 0x794c_7630;

/// Whether `file` lies on a read-only overlayfs, as [`read_only_view`] makes: writes through
/// any handle on it fail with EROFS.
fn is_read_only_overlay(file: &File) -> bool {
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs fills the struct we pass for an fd we own.
    if unsafe { libc::fstatfs(file.as_raw_fd(), fs.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstatfs succeeded, so the struct is initialised.
    let fs = unsafe { fs.assume_init() };
    if fs.f_type as libc::c_long != OVERLAYFS_SUPER_MAGIC {
        return false;
    }
    nix::sys::statvfs::fstatvfs(file)
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// The binary as seen through a read-only overlayfs mount that is attached nowhere: no copy,
/// and a process that gets a handle on it can neither write through it nor remount the
/// mount (it is in no mount namespace). Needs CAP_SYS_ADMIN; rootless callers copy instead.
fn read_only_view() -> Result<OwnedFd, Errno> {
    use crate::sys::mount::{fsconfig_create, fsconfig_set, fsmount, fsopen};
    use std::os::fd::AsFd;
    let path = std::fs::read_link("/proc/self/exe").map_err(|_| Errno::ENOENT)?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Errno::ENOENT);
    };
    let dir = dir.to_str().ok_or(Errno::EINVAL)?;
    if path.to_string_lossy().ends_with(" (deleted)") {
        return Err(Errno::ENOENT);
    }
    // overlayfs wants two layers when it has no upper one, and refuses a layer twice: the
    // second is an empty tmpfs, itself attached nowhere.
    let empty = fsopen("tmpfs")?;
    fsconfig_create(empty.as_fd())?;
    let empty = fsmount(empty.as_fd(), libc::MOUNT_ATTR_RDONLY)?;
    let escaped = dir.replace('\\', "\\\\").replace(':', "\\:");
    let fs = fsopen("overlay")?;
    let layers = format!("{escaped}:/proc/self/fd/{}", empty.as_raw_fd());
    fsconfig_set(fs.as_fd(), "lowerdir", Some(&layers))?;
    // Inode numbers as the lower layer has them; nothing to gain from xino here.
    let _ = fsconfig_set(fs.as_fd(), "xino", Some("off"));
    fsconfig_create(fs.as_fd())?;
    let mnt = fsmount(
        fs.as_fd(),
        libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID,
    )?;
    nix::fcntl::openat(
        Some(mnt.as_raw_fd()),
        name,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    // SAFETY: openat returned a fresh descriptor that nothing else owns.
    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An exec through an fd names the process after the memfd ("memfd:hull"); `ps`, `pidof`
/// and `pgrep -x` users expect the command's name.
fn name_after_argv0() {
    let Some(arg0) = std::env::args_os().next() else {
        return;
    };
    let base = arg0.into_vec();
    let base = base.rsplit(|b| *b == b'/').next().unwrap_or_default();
    // The kernel keeps 15 bytes and a NUL.
    let mut name = [0u8; 16];
    let n = base.len().min(15);
    name[..n].copy_from_slice(&base[..n]);
    if n > 0 && !name[..n].contains(&0) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
}

/// Whether `file` is a memfd carrying our seals (a plain file has none: F_GET_SEALS fails).
fn is_sealed(file: &File) -> bool {
    // SAFETY: F_GET_SEALS only reads the seals of an fd we own.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

fn sealed_copy(exe: &File) -> Result<OwnedFd, SealError> {
    let name = c"hull";
    // MFD_EXEC (Linux 6.3+) keeps the copy executable where vm.memfd_noexec asks for noexec
    // by default; older kernels refuse the flag and make executable memfds anyway.
    let memfd = memfd_create(
        name,
        libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | libc::MFD_EXEC,
    )
    .or_else(|e| match e {
        Errno::EINVAL => memfd_create(name, libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING),
        e => Err(e),
    })
    .map_err(fail("memfd_create"))?;
    let size = exe
        .metadata()
        .map_err(|e| SealError {
            step: "stat /proc/self/exe",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?
        .len();
    copy_all(exe, &memfd, size)?;
    // SAFETY: F_ADD_SEALS changes only the seals of the memfd we own.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(SealError {
            step: "seal the copy",
            errno: Errno::last(),
        });
    }
    Ok(memfd)
}

fn memfd_create(name: &CStr, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
    // SAFETY: name is NUL-terminated; memfd_create returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Copies `size` bytes of `from` into `to` in the kernel.
fn copy_all(from: &File, to: &OwnedFd, size: u64) -> Result<(), SealError> {
    let mut left = size;
    while left > 0 {
        // SAFETY: both fds are open; a null offset uses and advances from's file position.
        let n = unsafe {
            libc::sendfile(
                to.as_raw_fd(),
                from.as_raw_fd(),
                std::ptr::null_mut(),
                left.min(1 << 30) as usize,
            )
        };
        match n {
            n if n > 0 => left -= n as u64,
            0 => {
                return Err(SealError {
                    step: "copy the binary",
                    errno: Errno::EIO,
                })
            }
            _ if Errno::last() == Errno::EINTR => {}
            _ => {
                return Err(SealError {
                    step: "copy the binary",
                    errno: Errno::last(),
                })
            }
        }
    }
    Ok(())
}

/// execveat(copy, "", argv, environ, AT_EMPTY_PATH); returns only on failure.
fn reexec(copy: &OwnedFd) -> Result<(), SealError> {
    let to_c = |s: OsString| CString::new(s.into_vec()).map_err(|_| fail("argv")(Errno::EINVAL));
    let argv: Vec<CString> = std::env::args_os().map(to_c).collect::<Result<_, _>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect::<Result<_, _>>()?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_p.push(std::ptr::null());
    // SAFETY: the argument and environment arrays are NULL-terminated arrays of pointers to
    // NUL-terminated strings that live until the call returns (it returns only on failure).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            copy.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            env_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Err(SealError {
        step: "re-execute from the sealed copy",
        errno: Errno::last(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_sealed_copy_refuses_writes_and_resizes() {
        let exe = File::open("/proc/self/exe").unwrap();
        assert!(!is_sealed(&exe), "the test binary is a plain file");
        let copy = sealed_copy(&exe).unwrap();
        let mut copy = File::from(copy);
        assert!(is_sealed(&copy));
        let want = std::fs::read("/proc/self/exe").unwrap();
        let mut got = Vec::new();
        copy.seek(std::io::SeekFrom::Start(0)).unwrap();
        copy.read_to_end(&mut got).unwrap();
        assert!(got == want, "the copy differs from the binary");
        let err = copy.write_all(b"pwned").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert_eq!(
            copy.set_len(1).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
        // Reopening through /proc, as an attacker holding the fd would, cannot write either.
        let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
        if let Ok(mut reopened) = std::fs::OpenOptions::new().write(true).open(&path) {
            let err = reopened.write_all(b"pwned").unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{path}");
        }
        // SAFETY: F_ADD_SEALS on our own fd; it must fail because F_SEAL_SEAL is set.
        let r = unsafe {
            libc::fcntl(
                copy.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_FUTURE_WRITE,
            )
        };
        assert_eq!(r, -1);
    }

    #[test]
    fn the_overlay_view_is_the_binary_and_read_only() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let view = read_only_view().unwrap();
        let path = format!("/proc/self/fd/{}", view.as_raw_fd());
        let file = File::open(&path).unwrap();
        assert!(is_read_only_overlay(&file));
        assert!(!is_read_only_overlay(
            &File::open("/proc/self/exe").unwrap()
        ));
        assert!(std::fs::read(&path).unwrap() == std::fs::read("/proc/self/exe").unwrap());
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{path}");
    }
}
