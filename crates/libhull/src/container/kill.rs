//! `kill`: signals to the init, or to every process of the container.

use super::*;

impl Runtime {
    /// Sends `signal` to the init (or with `all`, to every process of the container).
    /// `signal` is a raw number: real-time signals (SIGRTMIN+3 is a common stop signal) have
    /// no `Signal` variant.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), KillError> {
        let entry = self.store.open(id)?;
        let st = entry.load()?;
        // As runc 1.2+: SIGKILL to an init without a pid namespace of its own would leave the
        // other processes running (the kernel kills a namespace's members only with its init),
        // so it goes to every process of the container, even after the init is gone.
        let all = all
            || (signal == libc::SIGKILL
                && !config_namespace(&st, LinuxNamespaceType::Pid)
                    .is_some_and(|n| n.path().is_none())
                && own_cgroups(&st).is_some());
        // --all still reaches what a dead init left behind.
        if !st.has_init() && !all {
            return Err(KillError::NotRunning);
        }
        if all {
            if let Some(cg) = own_cgroups(&st) {
                cg.signal_all(signal)?;
                return Ok(());
            }
        }
        let pids = if all {
            container_pids(&st)
        } else {
            vec![Pid::from_raw(st.pid)]
        };
        for pid in pids {
            match hull_sys::process::kill(pid.as_raw(), signal) {
                Ok(()) | Err(Errno::ESRCH) if pid.as_raw() != st.pid => {}
                Ok(()) => {}
                Err(Errno::ESRCH) => return Err(KillError::NotRunning),
                Err(source) => return Err(KillError::Signal(source)),
            }
        }
        // A frozen process dies of SIGKILL only once thawed.
        if signal == libc::SIGKILL {
            if let Some(cg) = st.cgroups.as_ref().filter(|c| c.is_frozen()) {
                let _ = cg.freeze(false);
            }
        }
        Ok(())
    }
}
