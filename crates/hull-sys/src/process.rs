//! Process creation and fd-table syscalls: `clone3` with fork semantics, `close_range`,
//! `pidfd_open`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// What `clone` returned on this side of it.
#[derive(Debug, Clone, Copy)]
pub enum Forked {
    Parent(Pid),
    Child,
}

const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3(2)` with fork semantics (no new stack, no shared memory): the new process starts
/// as a copy of this one, inside the namespaces `flags` asks for and, with `cgroup` (a
/// cgroup2 directory), born in that cgroup (`CLONE_INTO_CGROUP`). Falls back to `clone(2)`
/// where clone3 is missing, and to a clone outside `cgroup` where the kernel refuses it:
/// the caller moves the child in then. `CLONE_CLEAR_SIGHAND` is added so the child starts
/// with default signal handlers.
///
/// # Safety
/// As for `fork(2)`: the caller must be single-threaded, and the child must only do what is
/// safe after fork before it execs or exits.
pub unsafe fn clone_fork(flags: libc::c_int, cgroup: Option<BorrowedFd>) -> Result<Forked, Errno> {
    let mut args = CloneArgs {
        flags: (flags as u64) | CLONE_CLEAR_SIGHAND,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    let clone3 = |args: &mut CloneArgs| {
        // SAFETY: args is a valid clone_args of the size we pass; with no stack and no
        // CLONE_VM the kernel duplicates the address space as fork does, so returning twice
        // is sound for a single-threaded caller (the caller's contract).
        unsafe {
            libc::syscall(
                libc::SYS_clone3,
                args as *mut CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        }
    };
    let mut ret = clone3(&mut args);
    // Refused for the cgroup (a domain it cannot join, an old kernel's EINVAL): clone
    // outside it. Not for EAGAIN: a full pids.max must not be bypassed.
    if ret < 0
        && cgroup.is_some()
        && matches!(
            Errno::last(),
            Errno::EOPNOTSUPP | Errno::EBUSY | Errno::EINVAL | Errno::EACCES | Errno::EPERM
        )
    {
        args.flags &= !CLONE_INTO_CGROUP;
        args.cgroup = 0;
        ret = clone3(&mut args);
    }
    if ret < 0 && matches!(Errno::last(), Errno::ENOSYS | Errno::EINVAL) {
        // SAFETY: clone(2) with a NULL stack and no CLONE_VM is fork(2) with namespace flags.
        ret = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
    }
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Closes every fd from `first` up, except those in `keep`, which stay open (and are marked
/// close-on-exec).
pub fn close_from_except(first: u32, keep: &[i32]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first;
    for &fd in &keep {
        if fd > lo {
            close_range(lo, fd - 1, 0)?;
        }
        close_range(fd, fd, libc::CLOSE_RANGE_CLOEXEC)?;
        lo = fd + 1;
    }
    close_range(lo, u32::MAX, 0)
}

fn close_range(first: u32, last: u32, flags: libc::c_uint) -> Result<(), Errno> {
    // SAFETY: close_range only closes or flags entries of this process's fd table; the caller
    // keeps what it still uses out of the range.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    Errno::result(ret).map(drop)
}

/// `kill(2)` with a raw signal number (nix's `Signal` has no real-time signals).
pub fn kill(pid: i32, signal: libc::c_int) -> Result<(), Errno> {
    // SAFETY: kill takes a pid and a signal number by value and touches no memory of ours.
    Errno::result(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Runs `f` with every signal blocked in this thread, then restores the mask: signals that
/// come meanwhile stay pending until then (and threads `f` starts inherit the full mask).
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    let mut old = SigSet::empty();
    let blocked = pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    );
    let out = f();
    if blocked.is_ok() {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    out
}
