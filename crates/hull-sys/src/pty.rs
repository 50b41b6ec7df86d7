//! Pseudo-terminal ioctls nix lacks or only offers on its own `PtyMaster` type: `TIOCGPTPEER`,
//! `TIOCGPTN`, `TIOCSPTLCK`, `TIOCSCTTY`, `TIOCSWINSZ`, `TIOCGWINSZ`. See ioctl_tty(2) and pty(7).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;

/// `ioctl(master, TIOCSPTLCK, &0)`: unlocks the peer of a pty master (unlockpt(3)).
pub fn unlock(master: BorrowedFd<'_>) -> Result<(), Errno> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which outlives the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    Errno::result(ret).map(drop)
}

/// `ioctl(master, TIOCGPTN, &n)`: the index N of the pty, whose peer is `pts/N` on the devpts
/// instance the master came from.
pub fn number(master: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer, which outlives the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    Errno::result(ret).map(|_| n)
}

/// `ioctl(master, TIOCGPTPEER, flags)` (Linux 4.13+): opens the peer of a pty master without
/// going through a path, so a container cannot swap `/dev/pts/N` under us (CVE-2025-52565).
pub fn open_peer(master: BorrowedFd<'_>, flags: OFlag) -> Result<OwnedFd, Errno> {
    // SAFETY: TIOCGPTPEER takes the open flags by value and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags.bits()) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(tty, TIOCSCTTY, 0)`: makes `tty` the controlling terminal of the calling session
/// leader, without stealing it from another session.
pub fn set_controlling(tty: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal) and touches no memory.
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    Errno::result(ret).map(drop)
}

/// `ioctl(tty, TIOCSWINSZ, &ws)`: sets the window size of a terminal.
pub fn set_window_size(tty: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize through the pointer, which outlives the call.
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(ret).map(drop)
}

/// `ioctl(tty, TIOCGWINSZ)`: the window size of a terminal, as (rows, columns).
pub fn window_size(tty: BorrowedFd<'_>) -> Result<(u16, u16), Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize through the pointer, which outlives the call.
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    Errno::result(ret).map(|_| (ws.ws_row, ws.ws_col))
}
