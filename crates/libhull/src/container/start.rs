//! `start`: release a created container's init to exec the user process, with the hooks
//! around it.

use super::*;

impl Runtime {
    /// Releases a created container's init to exec the user process; returns once it has
    /// (and with a notify socket, once the container said it is ready, or died).
    pub fn start(&self, id: &str) -> Result<(), StartError> {
        let entry = self.store.open(id)?;
        let st = entry.load()?;
        crate::timing::mark("start: state loaded");
        release(entry, st, None).map(drop)
    }
}

/// `start` of the container whose locked entry and state are given (a `run` has them from
/// its create); `main_pid`: the process the caller's notify socket is told is the
/// service's main one (default: the init), told from a thread that is returned.
pub(super) fn release(
    entry: state::Entry,
    mut st: ContainerState,
    main_pid: Option<i32>,
) -> Result<Option<std::thread::JoinHandle<()>>, StartError> {
    match st.status() {
        Status::Created => {}
        Status::Stopped => return Err(StartError::Stopped),
        Status::Creating => return Err(StartError::StillCreating),
        s => return Err(StartError::Started(s)),
    }
    // prestart hooks run when `start` is called, before the user process (runtime-spec
    // 1.0's rule, which the validation suite checks), in the runtime's namespaces.
    #[allow(deprecated)]
    let prestart = st
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.prestart().as_deref());
    if let Err(e) = run_hooks("prestart", prestart, &st, HookStatus::Created) {
        kill_everything(&st);
        if let Err(e) = release_resources(&st) {
            tracing::warn!("{e}");
        }
        entry.remove()?;
        return Err(e.into());
    }
    let listener = match &st.notify_socket {
        Some(_) => Some(crate::notify::Listener::bind(entry.dir())?),
        None => None,
    };
    // Recorded before the release: a state that cannot be written (a full filesystem)
    // fails `start` with the container still created, not released behind its back.
    st.started = true;
    entry.save(&st)?;
    let released = gate::release(entry.dir_fd());
    let _ = std::fs::remove_file(entry.dir().join(gate::GATE));
    // Poststart hooks may call back into hull for this container.
    drop(entry);
    released?;
    crate::timing::mark("start: init released");
    let list = st
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().as_deref());
    if list.is_some_and(|l| !l.is_empty()) {
        let_the_process_run(st.pid, st.pid_start_time);
    }
    warn_hooks("poststart", list, &st, HookStatus::Running);
    if let (Some(l), Some(host)) = (listener, st.notify_socket.clone()) {
        let (pid, start_time) = (st.pid, st.pid_start_time);
        let alive = move || state::proc_stat(pid).is_some_and(|(s, t)| s != 'Z' && t == start_time);
        match main_pid {
            None => l.forward_ready(&host, pid, &alive)?,
            // A foreground `run` goes on to copy the terminal and wait meanwhile: a
            // container that fills its pty before it is ready must not stall. (Its
            // signals are blocked already: the thread never takes one.)
            Some(me) => {
                return Ok(Some(std::thread::spawn(move || {
                    if let Err(e) = l.forward_ready(&host, me, &alive) {
                        tracing::warn!("{e}");
                    }
                })));
            }
        }
    }
    Ok(None)
}

/// Waits (at most 100 ms) until the just-exec'ed process has run far enough to sleep or exit:
/// poststart hooks are "called after the user-specified process is executed", and hooks and
/// callers (the validation suite among them) expect its first steps to be done by then, not
/// racing a hook that starts on the other core.
pub(super) fn let_the_process_run(pid: i32, start_time: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    // 'D' too: the end of execve (and the first page-ins) is uninterruptible.
    while state::proc_stat(pid).is_some_and(|(s, t)| matches!(s, 'R' | 'D') && t == start_time)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}
