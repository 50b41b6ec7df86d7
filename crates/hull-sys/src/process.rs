//! Process creation and fd-table syscalls: `clone3` with fork semantics, `close_range`,
//! `pidfd_open`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// What `clone` or `fork` returned on this side of it.
#[derive(Debug)]
pub enum Forked {
    Parent(Pid),
    /// The new process, single-threaded by birth: the proof lets it fork once more.
    Child(SingleThreaded),
}

/// Proof that this process has one thread, which is what makes a fork sound (the child of a
/// multi-threaded process may find a lock held forever, by a thread that is not there).
/// Made by [`SingleThreaded::check`], or handed to the child of a fork; not `Send`. Whoever
/// holds one must not start threads before using it.
#[derive(Debug)]
pub struct SingleThreaded {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl SingleThreaded {
    /// Counts this process's threads (`Threads:` of /proc/self/status); `Err` has the
    /// count when it is more than one. Where /proc cannot be read, the process counts as
    /// single-threaded: hull starts no thread before it forks.
    pub fn check() -> Result<Self, u32> {
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse::<u32>().ok())
            })
            .unwrap_or(1);
        if threads > 1 {
            return Err(threads);
        }
        Ok(Self::born())
    }

    fn born() -> Self {
        SingleThreaded {
            _not_send: std::marker::PhantomData,
        }
    }
}

/// `fork(2)` of a process that proved it is single-threaded.
pub fn fork(_proof: SingleThreaded) -> Result<Forked, Errno> {
    // SAFETY: the proof says this process has one thread, so the child's copy of the address
    // space has no lock some other thread held.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child(SingleThreaded::born())),
    }
}

/// Ends this process at once with `code` (`_exit(2)`): no destructors, no atexit handlers,
/// no flushing of the parent's buffers, which a forked child must not run.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes a status by value and does not return.
    unsafe { libc::_exit(code) }
}

/// Makes the process `cmd` starts get each `(fd, number)` of `fds` as that fd number, without
/// close-on-exec (a helper's `swrk 3`, its inherited descriptors). The fds are first moved
/// above every target, so that one target cannot overwrite another's source.
pub fn hand_over_fds(cmd: &mut std::process::Command, fds: Vec<(RawFd, RawFd)>) {
    let floor = fds.iter().map(|&(_, to)| to).max().unwrap_or(0) + 1;
    let mut moved = vec![-1; fds.len()];
    let hand_over = move || {
        for (i, &(from, _)) in fds.iter().enumerate() {
            // SAFETY: fcntl with integer arguments, async-signal-safe after fork.
            let fd = unsafe { libc::fcntl(from, libc::F_DUPFD_CLOEXEC, floor) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            moved[i] = fd;
        }
        // Whatever else the caller left open without close-on-exec (a `--status-fd`, an
        // fd its own caller leaked) stays out of the program; the dup2s below clear the
        // flag again on the targets only.
        // SAFETY: close_range with integer arguments, async-signal-safe after fork.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        for (i, &(_, to)) in fds.iter().enumerate() {
            // SAFETY: dup2 with integer arguments, async-signal-safe after fork; the copy
            // it makes has no close-on-exec.
            if unsafe { libc::dup2(moved[i], to) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure calls only fcntl, dup2 and close_range and writes into a buffer
    // allocated before the fork: nothing that is unsafe between fork and exec.
    unsafe { std::os::unix::process::CommandExt::pre_exec(cmd, hand_over) };
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
/// The proof makes it as sound as `fork(2)` of a single-threaded process.
pub fn clone_fork(
    _proof: SingleThreaded,
    flags: libc::c_int,
    cgroup: Option<BorrowedFd>,
) -> Result<Forked, Errno> {
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
        // is sound for a single-threaded caller (the proof).
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
        0 => Ok(Forked::Child(SingleThreaded::born())),
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

/// Sets the soft and hard limit of `resource` for process `pid` (0: the caller), prlimit(2).
pub fn set_rlimit(
    pid: Pid,
    resource: libc::__rlimit_resource_t,
    soft: u64,
    hard: u64,
) -> Result<(), Errno> {
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `new` is a valid rlimit that outlives the call; no old value is requested.
    Errno::result(unsafe { libc::prlimit(pid.as_raw(), resource, &new, std::ptr::null_mut()) })
        .map(drop)
}

/// The (soft, hard) limit of `resource` for process `pid` (0: the caller), prlimit(2).
pub fn rlimit(pid: Pid, resource: libc::__rlimit_resource_t) -> Result<(u64, u64), Errno> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: the kernel writes one rlimit into `old`, which outlives the call.
    Errno::result(unsafe { libc::prlimit(pid.as_raw(), resource, std::ptr::null(), &mut old) })?;
    Ok((old.rlim_cur, old.rlim_max))
}

/// Sets the execution domain (personality(2)) with the raw value, flags included.
pub fn set_personality(persona: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: personality takes an integer and touches no memory of ours.
    Errno::result(unsafe { libc::personality(persona) }).map(drop)
}
