//! File locks, inode flags and the kernel's random bytes.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// Takes an exclusive advisory lock on `fd`'s open file (flock(2)); with `wait` false, fails
/// with EWOULDBLOCK instead of waiting. The lock goes with the last fd of that open file.
pub fn flock_exclusive(fd: BorrowedFd<'_>, wait: bool) -> Result<(), Errno> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock takes an fd the caller keeps open and an operation by value; it
        // touches no memory of ours.
        match Errno::result(unsafe { libc::flock(fd.as_raw_fd(), op) }) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// The inode's attribute flags (`FS_IOC_GETFLAGS`, as lsattr(1) shows them).
pub fn inode_flags(fd: BorrowedFd<'_>) -> Result<libc::c_int, Errno> {
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int into `flags`, which outlives the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) })?;
    Ok(flags)
}

/// Sets the inode's attribute flags (`FS_IOC_SETFLAGS`).
pub fn set_inode_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: FS_IOC_SETFLAGS reads one int from `flags`, which outlives the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) }).map(drop)
}

/// The immutable inode flag (`chattr +i`).
pub const FS_IMMUTABLE_FL: libc::c_int = 0x10;

/// Fills `buf` from the kernel's random pool without blocking (getrandom(2) with
/// GRND_NONBLOCK); fails where it would block or returns short.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), Errno> {
    // SAFETY: getrandom writes at most buf.len() bytes into buf, which we borrow mutably.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
    match Errno::result(n)? {
        n if n as usize == buf.len() => Ok(()),
        _ => Err(Errno::EAGAIN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_second_open_file_cannot_take_the_lock_without_waiting() {
        let dir = std::env::temp_dir().join(format!("hull-sys-flock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = std::fs::File::open(&dir).unwrap();
        let b = std::fs::File::open(&dir).unwrap();
        flock_exclusive(a.as_fd(), false).unwrap();
        assert_eq!(flock_exclusive(b.as_fd(), false), Err(Errno::EWOULDBLOCK));
        drop(a);
        flock_exclusive(b.as_fd(), false).unwrap();
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn random_bytes_fill_the_buffer() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
