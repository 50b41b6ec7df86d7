//! Signal dispositions: the waiting init's exit-on-signal handlers, the reset to defaults
//! before the user process runs, SIGPIPE ignored around writes to a pipe, and the parent
//! death signal of a command about to run.

use std::os::unix::process::CommandExt;

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

extern "C" fn exit_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe and takes a status by value.
    unsafe { libc::_exit(128 + sig) }
}

/// Makes each of `signals` end this process at once with status 128 + the signal number.
pub fn exit_on(signals: &[Signal]) -> Result<(), Errno> {
    let action = SigAction::new(
        SigHandler::Handler(exit_on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for &sig in signals {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// Puts every signal's disposition back to its default, the real-time ones (and the two
/// glibc keeps for itself, which `sigaction` refuses) included.
pub fn reset_all() -> Result<(), Errno> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: the default disposition installs no handler code.
        unsafe { sigaction(sig, &default) }?;
    }
    // The kernel's struct sigaction (8-byte mask), for the raw syscall.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 32..=64 {
        // SAFETY: rt_sigaction reads the struct we pass (kernel layout, 8-byte mask) and
        // installs no handler code.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
        Errno::result(ret)?;
    }
    Ok(())
}

/// SIGPIPE ignored while this lives (a write to a closed pipe then fails with EPIPE instead
/// of killing the process); the previous disposition comes back on drop.
#[derive(Debug)]
pub struct SigpipeIgnored(Option<SigAction>);

impl SigpipeIgnored {
    pub fn new() -> Self {
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: SIG_IGN installs no handler code.
        SigpipeIgnored(unsafe { sigaction(Signal::SIGPIPE, &ignore) }.ok())
    }
}

impl Default for SigpipeIgnored {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SigpipeIgnored {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            // SAFETY: puts back the exact disposition sigaction returned earlier.
            let _ = unsafe { sigaction(Signal::SIGPIPE, &old) };
        }
    }
}

/// Sets (`Some`) or clears (`None`) the signal this process gets when its parent dies.
pub fn parent_death_signal(sig: Option<Signal>) -> Result<(), Errno> {
    nix::sys::prctl::set_pdeathsig(sig)
}

/// Makes the process `cmd` starts get SIGKILL when this one dies (set between its fork and
/// exec).
pub fn kill_with_parent(cmd: &mut std::process::Command) {
    let set = || {
        // SAFETY: one prctl call with integer arguments, async-signal-safe after fork.
        let ret = unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure only calls prctl, which is safe between fork and exec.
    unsafe { cmd.pre_exec(set) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_to_a_closed_pipe_fails_with_epipe_while_sigpipe_is_ignored() {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let guard = SigpipeIgnored::new();
        assert_eq!(nix::unistd::write(&w, b"x"), Err(Errno::EPIPE));
        drop(guard);
    }
}
