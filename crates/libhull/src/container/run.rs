//! `run`: create and start in one call; in the foreground, pass signals on, relay the
//! terminal, and wait for the process to exit.

use super::*;

impl Runtime {
    /// create + start; in the foreground, waits and returns the container's exit code
    /// (128+N when killed by signal N) and deletes it unless `keep`.
    pub fn run(&self, opts: &CreateOptions, run: &RunOptions) -> Result<i32, Error> {
        if !run.detach && !run.no_subreaper {
            // The init may be a grandchild (pid namespace joined by path): adopt it.
            let _ = nix::sys::prctl::set_child_subreaper(true);
        }
        let (entry, st, tty) = self.create_container(opts, !run.detach)?;
        let pid = Pid::from_raw(st.pid);
        // Block the signals we forward before the init can exit, so no SIGCHLD is lost.
        let sfd = if run.detach {
            None
        } else {
            Some(forwarding_signalfd()?)
        };
        // In the foreground hull stays the service's main process.
        let main_pid = (!run.detach).then(|| std::process::id() as i32);
        let notifier = match start::release(entry, st, main_pid) {
            Ok(n) => n,
            Err(e) => {
                let _ = self.delete(&opts.id, true);
                return Err(e.into());
            }
        };
        let Some(sfd) = sfd else {
            return Ok(0);
        };
        let code = match wait_foreground(pid, &sfd, tty) {
            Ok(code) => code,
            Err(e) => {
                let _ = self.delete(&opts.id, true);
                return Err(e.into());
            }
        };
        crate::timing::mark("run: process exited");
        // A READY the container sent just before it exited is still passed on.
        if let Some(n) = notifier {
            let _ = n.join();
        }
        if !run.keep {
            self.delete(&opts.id, true)?;
            crate::timing::mark("run: deleted");
        }
        Ok(code)
    }
}

/// Blocks the signals a foreground process gets passed on (before it can exit, so no
/// SIGCHLD is lost) and returns a signalfd that reads them.
pub(super) fn forwarding_signalfd() -> Result<SignalFd, OptionsError> {
    let signals = forwarded_signals();
    signals
        .thread_block()
        .map_err(|source| OptionsError::Foreground {
            step: "block signals",
            source,
        })?;
    SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC).map_err(|source| {
        OptionsError::Foreground {
            step: "signalfd",
            source,
        }
    })
}

/// The signals a foreground `run` passes on to the container, plus SIGCHLD.
pub(super) fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGPIPE,
        Signal::SIGALRM,
    ] {
        set.add(s);
    }
    set
}

/// Waits for a foreground container's init (`run`, `restore`): relays the terminal when hull
/// holds its master's socket, else forwards signals; the exit code.
pub(super) fn wait_foreground(
    init: Pid,
    sfd: &SignalFd,
    tty: Option<UnixStream>,
) -> Result<i32, OptionsError> {
    match tty {
        Some(sock) => wait_tty(init, sfd, &sock),
        None => Ok(wait_forwarding(init, sfd)),
    }
}

/// Forwards signals to the init until it exits, reaping any orphan this subreaper adopts;
/// returns the exit code, 128+N for a death by signal N.
pub(super) fn wait_forwarding(init: Pid, sfd: &SignalFd) -> i32 {
    loop {
        // Reap first: the init may have exited before the signalfd existed.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == init => return code,
                Ok(WaitStatus::Signaled(p, sig, _)) if p == init => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let signo = info.ssi_signo as i32;
                if signo != libc::SIGCHLD {
                    if let Ok(sig) = Signal::try_from(signo) {
                        let _ = kill(init, sig);
                    }
                }
            }
            Ok(None) | Err(Errno::EINTR) => {}
            Err(_) => return 255,
        }
        if init_is_foreign(init) {
            return 0;
        }
    }
}

/// The console a new process gets: the caller's `--console-socket`, or with a terminal and
/// none, a pty pair the runtime relays itself (its end second).
pub(super) fn console_for(
    socket: &Option<PathBuf>,
    terminal: bool,
) -> Result<(Option<OwnedFd>, Option<UnixStream>), OptionsError> {
    match (socket, terminal) {
        (Some(path), true) => {
            let sock = UnixStream::connect(path).map_err(|source| OptionsError::ConsoleSocket {
                path: path.clone(),
                source,
            })?;
            Ok((Some(OwnedFd::from(sock)), None))
        }
        (None, true) => {
            let (ours, theirs) = own_tty_pair()?;
            Ok((Some(theirs), Some(ours)))
        }
        _ => Ok((None, None)),
    }
}

/// The socket pair over which the init (or exec'd process) hands hull its pty master in a
/// foreground run with a terminal: (hull's end, the process's end).
pub(super) fn own_tty_pair() -> Result<(UnixStream, OwnedFd), OptionsError> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| OptionsError::Foreground {
        step: "console socket pair",
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    Ok((ours, OwnedFd::from(theirs)))
}

/// Whether the foreground relay's output goes to a pipe or file rather than a terminal: then
/// the container's pty gets ONLCR cleared, so what a script captures has `\n` line ends (runc
/// clears it on the pty it relays, meaning the same, but racing the process: on a terminal
/// the user still sees `\r\n`, which a raw terminal needs, and so do hull's users there).
pub(super) fn relay_output_is_captured() -> bool {
    !nix::unistd::isatty(1).unwrap_or(false)
}

/// Reaps every child that has exited (hull may have inherited some as a subreaper); the
/// init's exit code (128+N for a death by signal N) once it is among them.
fn reap_exited(init: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p == init => code = Some(c),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == init => code = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => continue,
        }
    }
}

/// One signal from the forwarding signalfd: a window size change goes to the pty, SIGCHLD
/// is only a wake-up, anything else is sent to the init.
fn pass_signal_on(
    sfd: &SignalFd,
    init: Pid,
    host: Option<&crate::console::HostTerminal>,
    master: std::os::fd::BorrowedFd<'_>,
) {
    let Ok(Some(info)) = sfd.read_signal() else {
        return;
    };
    match info.ssi_signo as i32 {
        libc::SIGCHLD => {}
        libc::SIGWINCH => {
            if let Some(t) = host {
                t.copy_size_to(master);
            }
        }
        signo => {
            if let Ok(sig) = Signal::try_from(signo) {
                let _ = kill(init, sig);
            }
        }
    }
}

/// A foreground process with a terminal: relays the caller's stdin to the pty master and the
/// master to stdout (the caller's terminal raw meanwhile), resizes the pty with the caller's
/// window, forwards the other signals, and returns the exit code like [`wait_forwarding`].
pub(super) fn wait_tty(init: Pid, sfd: &SignalFd, sock: &UnixStream) -> Result<i32, OptionsError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let (_, master) = crate::console::recv_fd(sock.as_fd()).map_err(|e| {
        tracing::debug!("{e}");
        OptionsError::Foreground {
            step: "receive the console from the container",
            source: Errno::EIO,
        }
    })?;
    let _ = nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let host = crate::console::HostTerminal::raw();
    if let Some(t) = &host {
        t.copy_size_to(master.as_fd());
    }
    let stdin = std::io::stdin();
    let stdin = stdin.as_fd();
    let stdout = std::io::stdout();
    let stdout = stdout.as_fd();
    let mut stdin_open = true;
    let mut master_open = true;
    let mut code = None;
    let mut buf = [0u8; 8192];
    // Input read but not yet taken by the pty: while it waits, stdin is not read, and
    // nothing here blocks on the master (the process may be blocked writing to us).
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if let Some(c) = reap_exited(init) {
            code = Some(c);
        }
        if code.is_none() && init_is_foreign(init) {
            code = Some(0);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if master_open {
            let mut events = PollFlags::POLLIN;
            if !pending.is_empty() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(master.as_fd(), events));
        }
        let read_stdin = stdin_open && code.is_none() && pending.is_empty();
        if read_stdin {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        // Once the process is gone, only what the pty still holds is read.
        let timeout = if code.is_some() {
            PollTimeout::ZERO
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(code.unwrap_or(0)),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return Ok(code.unwrap_or(255)),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, master_ready, stdin_ready) = (
            ready(0),
            master_open && ready(1),
            read_stdin && ready(if master_open { 2 } else { 1 }),
        );
        drop(fds);
        if sig_ready {
            pass_signal_on(sfd, init, host.as_ref(), master.as_fd());
        }
        if master_ready {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => master_open = false,
                Ok(n) => write_all(stdout, &buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => master_open = false,
            }
        } else if let Some(code) = code {
            return Ok(code);
        }
        if stdin_ready {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => stdin_open = false,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => stdin_open = false,
            }
        }
        if master_open && !pending.is_empty() {
            match nix::unistd::write(master.as_fd(), &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => pending.clear(),
            }
        }
        if let (false, Some(code)) = (master_open, code) {
            return Ok(code);
        }
    }
}

/// Writes all of `data`, waiting out a full non-blocking fd; gives up on an error.
pub(super) fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EAGAIN | Errno::EINTR) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => return,
        }
    }
}

/// Whether `init` is not ours to wait for (another process reaped it): we can only see that
/// it is gone.
pub(super) fn init_is_foreign(init: Pid) -> bool {
    !Path::new(&format!("/proc/{init}")).exists()
}
