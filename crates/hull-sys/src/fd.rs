//! The fd-making calls nix 0.29 returns as a raw number (`open`, `openat`, `openat2`,
//! `F_DUPFD_CLOEXEC`, `accept4`), returned here as an owned fd.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow};
use nix::sys::stat::Mode;
use nix::NixPath;

/// Takes ownership of a fd a syscall just returned.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: only called on a fd that a syscall of this module just returned; nothing else
    // owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `open(2)`.
pub fn open<P: ?Sized + NixPath>(path: &P, flags: OFlag, mode: Mode) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(path, flags, mode).map(owned)
}

/// `openat(2)` relative to `dir`.
pub fn openat<P: ?Sized + NixPath>(
    dir: BorrowedFd<'_>,
    path: &P,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    nix::fcntl::openat(Some(dir.as_raw_fd()), path, flags, mode).map(owned)
}

/// `openat2(2)` relative to `dir` (or the working directory with `None`).
pub fn openat2<P: ?Sized + NixPath>(
    dir: Option<BorrowedFd<'_>>,
    path: &P,
    how: OpenHow,
) -> Result<OwnedFd, Errno> {
    let dir = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    nix::fcntl::openat2(dir, path, how).map(owned)
}

/// A close-on-exec duplicate of `fd` numbered `min` or above (`F_DUPFD_CLOEXEC`).
pub fn dup_cloexec_from(fd: BorrowedFd<'_>, min: RawFd) -> Result<OwnedFd, Errno> {
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min)).map(owned)
}

/// One connection from a listening socket, close-on-exec; EINTR is retried.
pub fn accept(listener: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    loop {
        match nix::sys::socket::accept4(
            listener.as_raw_fd(),
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            r => return r.map(owned),
        }
    }
}

/// Takes `fd`, an fd number this process was handed by its caller (`--status-fd`), writes
/// `data` to it and closes it. Fails with EBADF if no such fd is open.
pub fn write_inherited(fd: RawFd, data: &[u8]) -> Result<(), Errno> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)?;
    // SAFETY: the fd is open (checked just above) and was handed to this process for this
    // write: nothing else in it owns or closes it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    nix::unistd::write(&owned, data).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn opened_fds_are_owned_and_closed_on_drop() {
        let dir = open("/", OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        let raw = dir.as_raw_fd();
        let etc = openat(
            dir.as_fd(),
            "etc",
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        assert!(etc.is_ok());
        let high = dup_cloexec_from(dir.as_fd(), 100).unwrap();
        assert!(high.as_raw_fd() >= 100);
        drop(dir);
        assert_eq!(
            nix::fcntl::fcntl(raw, nix::fcntl::FcntlArg::F_GETFD),
            Err(Errno::EBADF)
        );
    }
}
