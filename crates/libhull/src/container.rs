//! The container lifecycle: create, start, run, state, kill, delete, list.
//!
//! Each command locks the container's state entry, derives the status from the live init,
//! acts, and writes the state back. A create that fails removes everything it made.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{ContainerState as HookStatus, LinuxNamespaceType, State};

use crate::hooks;
use crate::namespaces::Plan;
use crate::process::{self, gate, InitArgs, SpawnError, SpawnEvent, SpawnOptions};
use crate::spec::Bundle;
use crate::state::{self, ContainerState, OciState, StateError, Status, Store};
use hull_cgroups::{self as cgroups, CgroupError, Cgroups};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Namespaces(#[from] crate::namespaces::NsError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Gate(#[from] gate::GateError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("container not paused")]
    NotPaused,
    #[error("cannot exec in a stopped container")]
    ExecStopped,
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    ExecPaused,
    #[error("exec args cannot be empty")]
    ExecNoArgs,
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error("{0}")]
    ExecInvalid(String),
    #[error("container with id {0} is not running")]
    EventsNotRunning(String),
    #[error("container {0} has no cgroups")]
    NoCgroups(String),
    #[error("container not running")]
    NotRunning,
    #[error("container init was OOM-killed (memory limit too low?)")]
    InitOomKilled,
    #[error("unable to stat preserved-fd {index} (of {count}): {source}")]
    PreservedFd {
        index: u32,
        count: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("container is still being created")]
    StillCreating,
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already {0} container")]
    StartStarted(Status),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: Status },
    #[error("cannot allocate tty if hull will detach without setting console socket")]
    NoConsoleSocket,
    #[error("cannot use console socket if hull will not detach or allocate tty")]
    ConsoleSocketWithoutTerminal,
    #[error("pidfd socket {path}: {source}")]
    PidfdSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("console socket {path}: {source}")]
    ConsoleSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pid file {path}: {source}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: StateError,
    },
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: Errno,
    },
}

/// Flags of `create` (and the create half of `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Socket-activation fds handed to us (systemd's LISTEN_FDS): passed on from fd 3, before
    /// the `--preserve-fds` ones, with LISTEN_FDS/LISTEN_PID set for the process.
    pub listen_fds: u32,
    /// `--systemd-cgroup`: `linux.cgroupsPath` is `slice:prefix:name` for systemd's driver.
    pub systemd_cgroup: bool,
    /// `--pidfd-socket`: a unix socket that gets a pidfd of the init.
    pub pidfd_socket: Option<PathBuf>,
    /// The caller's `NOTIFY_SOCKET`: the container gets a socket of its own, and its
    /// `READY=` is passed on by the command that starts it ([`crate::notify`]).
    pub notify_socket: Option<PathBuf>,
}

/// The extra flags of `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub detach: bool,
    pub keep: bool,
    pub no_subreaper: bool,
}

/// Flags of `exec`: `process` (`-p FILE`) is the whole process; without it the container's
/// own process is taken with the other fields laid over it, as runc does.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub id: String,
    pub process: Option<oci_spec::runtime::Process>,
    pub args: Vec<String>,
    /// Added to the container's environment.
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub tty: bool,
    /// `-u uid[:gid]`.
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    /// Added to the bounding, effective and permitted sets, never to the inheritable set
    /// (CVE-2022-29162).
    pub caps: Vec<String>,
    pub no_new_privs: Option<bool>,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup [controller:]path`: existing sub-cgroups of the container's to run in.
    pub cgroups: Vec<(Option<String>, PathBuf)>,
    /// `--pidfd-socket`: a unix socket that gets a pidfd of the process.
    pub pidfd_socket: Option<PathBuf>,
}

/// The containers under one `--root`.
#[derive(Debug, Clone)]
pub struct Runtime {
    store: Store,
}

/// The spec state a hook gets on stdin.
fn hook_state(st: &ContainerState, status: HookStatus) -> State {
    hooks::state(
        &st.id,
        st.pid,
        &st.bundle,
        st.config.annotations().clone(),
        status,
    )
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            store: Store::new(root),
        }
    }

    /// Creates the container; returns once its init has done all setup and waits for `start`.
    pub fn create(&self, opts: &CreateOptions) -> Result<(), Error> {
        self.create_container(opts, false).map(drop)
    }

    /// `own_tty`: a foreground `run` whose process wants a terminal and has no console
    /// socket: hull takes the pty master itself, over the returned socket.
    fn create_container(
        &self,
        opts: &CreateOptions,
        own_tty: bool,
    ) -> Result<(ContainerState, Option<UnixStream>), Error> {
        state::validate_id(&opts.id)?;
        check_preserved_fds(opts.listen_fds, opts.preserve_fds)?;
        let mut bundle = Bundle::load(&opts.bundle)?;
        if opts.notify_socket.is_some() {
            crate::notify::setup_spec(&mut bundle.spec, &self.store.dir(&opts.id))?;
        }
        let bundle = bundle;
        let spec = &bundle.spec;
        let linux = spec.linux().as_ref().expect("validated");
        // As runc: a mount label without SELinux is ignored, a process label is an error.
        if let Some(p) = spec.process() {
            crate::lsm::check(
                p.apparmor_profile().as_deref(),
                p.selinux_label().as_deref(),
                None,
            )?;
        }
        let terminal = spec
            .process()
            .as_ref()
            .is_some_and(|p| p.terminal() == Some(true));
        if terminal && opts.console_socket.is_none() && !own_tty {
            return Err(Error::NoConsoleSocket);
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(Error::ConsoleSocketWithoutTerminal);
        }
        let pid_file = opts
            .pid_file
            .as_deref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
        let mut tty_end = None;
        let console = match (&opts.console_socket, terminal) {
            (Some(path), true) => Some(OwnedFd::from(UnixStream::connect(path).map_err(
                |source| Error::ConsoleSocket {
                    path: path.clone(),
                    source,
                },
            )?)),
            (None, true) => {
                let (ours, theirs) = own_tty_pair()?;
                tty_end = Some(ours);
                Some(theirs)
            }
            _ => None,
        };
        let pidfd_socket = connect_pidfd_socket(&opts.pidfd_socket)?;
        let want_pidfd = pidfd_socket.is_some();
        let mut pidfd = None;
        let filter = self.seccomp_filter(linux)?;
        let plan = Plan::open(linux)?;
        let mut cgroup_dirs = Cgroups::resolve(
            linux.cgroups_path().as_deref(),
            &opts.id,
            opts.systemd_cgroup,
        )?;
        cgroup_dirs.set_unit_annotations(spec.annotations().as_ref())?;
        let entry = self.store.create(&opts.id)?;
        let mut st = ContainerState {
            id: opts.id.clone(),
            pid: 0,
            pid_start_time: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            owner: String::new(),
            started: false,
            creating: true,
            runtime_exe: state::exe_id("/proc/self/exe"),
            process_ns: None,
            cgroups: None,
            creator_gone: false,
            notify_socket: opts.notify_socket.clone(),
            config: spec.clone(),
        };
        let mut wrote_pid_file = false;
        let result = (|| {
            let gate_fd = gate::bind_gate(entry.dir_fd())?;
            if opts.notify_socket.is_some() {
                crate::notify::make_dir(entry.dir())?;
            }
            // The cgroups hull is about to make go into state.json before the first mkdir
            // (the init does not exist yet: pid 0), so `delete --force` after a runtime killed
            // from here on finds and removes them.
            let mut cg = cgroup_dirs;
            cg.plan()?;
            st.cgroups = Some(cg.clone());
            entry.save(&st)?;
            // Even without `linux.resources` the device rules apply: deny all but hull's
            // defaults.
            let none = oci_spec::runtime::LinuxResources::default();
            let res = linux.resources().as_ref().unwrap_or(&none);
            cg.check_ownership(true)?;
            cg.check_empty()?;
            let made = cg.make(res);
            // What was really made (nothing that appeared meanwhile is hull's).
            st.cgroups = Some(cg.clone());
            entry.save(&st)?;
            // A rootless caller, not allowed to make cgroups, runs a container that names no
            // cgroup and asks for no limit in its own cgroups, as runc does.
            let active = match made {
                Err(e)
                    if e.is_permission()
                        && cgroups::rootless()
                        && linux
                            .cgroups_path()
                            .as_ref()
                            .is_none_or(|p| p.as_os_str().is_empty())
                        && !cgroups::has_limits(res) =>
                {
                    tracing::warn!("running without cgroups of its own: {e}");
                    if let Err(e) = cg.remove() {
                        tracing::warn!("{e}");
                    }
                    st.cgroups = None;
                    entry.save(&st)?;
                    false
                }
                other => other.map(|()| true)?,
            };
            // Opened here, with the runtime's rights: the root of a new user namespace may
            // not reach a source the caller can (runc does the same). The clone inherits them.
            let bind_sources = if plan.new_user() {
                crate::rootfs::open_bind_sources(spec, &bundle.dir)
            } else {
                Vec::new()
            };
            // With systemd the cgroup comes with the unit, once the init exists.
            let cgroup_fd = if active && !cg.by_systemd() {
                cg.check_not_frozen()?;
                cg.apply(res, false)?;
                cg.open_unified()?
            } else {
                None
            };
            let mut events = |ev: SpawnEvent| match ev {
                SpawnEvent::Cloned(pid) => {
                    st.pid = pid.as_raw();
                    st.pid_start_time = state::proc_stat(st.pid).map(|(_, t)| t).unwrap_or(0);
                    if want_pidfd {
                        pidfd = hull_sys::process::pidfd_open(pid).ok();
                    }
                    entry.save(&st).map_err(|e| e.to_string())?;
                    // Born in the cgroup2 one already (CLONE_INTO_CGROUP); writing it again
                    // is harmless and covers a kernel that refused that.
                    if !active {
                        return Ok(());
                    }
                    if cg.by_systemd() {
                        // Saved as soon as systemd has the unit, before hull makes any
                        // cgroup of it: a runtime killed from here on leaves it findable.
                        let started = cg.start_unit(pid.as_raw(), res);
                        st.cgroups = Some(cg.clone());
                        entry.save(&st).map_err(|e| e.to_string())?;
                        started.map_err(|e| e.to_string())?;
                        return cg.finish_unit(pid.as_raw(), res).map_err(|e| e.to_string());
                    }
                    cg.join(pid.as_raw()).map_err(|e| e.to_string())
                }
                SpawnEvent::InitPid(pid) => {
                    st.pid = pid.as_raw();
                    st.pid_start_time = state::proc_stat(st.pid).map(|(_, t)| t).unwrap_or(0);
                    if want_pidfd {
                        pidfd = hull_sys::process::pidfd_open(pid).ok();
                    }
                    entry.save(&st).map_err(|e| e.to_string())
                }
                SpawnEvent::RuntimeHooks(_) => {
                    let list = spec
                        .hooks()
                        .as_ref()
                        .and_then(|h| h.create_runtime().as_deref());
                    run_hooks("createRuntime", list, &st, HookStatus::Creating)
                        .map_err(|e| e.to_string())
                }
                SpawnEvent::SeccompListener(pid, fd) => {
                    send_seccomp_listener(linux, &st, pid, fd).map_err(|e| e.to_string())
                }
            };
            let pid = process::spawn(
                SpawnOptions {
                    init: InitArgs {
                        id: &opts.id,
                        bundle: &bundle,
                        plan: &plan,
                        gate: Some(&gate_fd),
                        console,
                        console_relayed: tty_end.is_some() && relay_output_is_captured(),
                        no_pivot: opts.no_pivot,
                        no_new_keyring: opts.no_new_keyring,
                        preserve_fds: opts.preserve_fds,
                        listen_fds: opts.listen_fds,
                        exec: None,
                        seccomp: filter.as_ref(),
                        bind_sources: &bind_sources,
                    },
                    lock: entry.dir_fd().as_raw_fd(),
                    cgroup: cgroup_fd.as_ref().map(|fd| fd.as_fd()),
                },
                &mut events,
            )?;
            st.creating = false;
            st.process_ns = process_ns(&plan, pid);
            entry.save(&st)?;
            if let Some(path) = &pid_file {
                state::write_atomic(path, st.pid.to_string().as_bytes(), 0o644).map_err(
                    |source| Error::PidFile {
                        path: path.clone(),
                        source,
                    },
                )?;
                wrote_pid_file = true;
            }
            send_pidfd(pidfd_socket, &opts.pidfd_socket, pidfd.as_ref(), "standard")?;
            Ok(())
        })();
        match result {
            Ok(()) => Ok((st, tty_end)),
            Err(e) => {
                // Whatever the init failed with, the OOM killer is the likely cause, as runc
                // reports it (read before the kill, which removes the cgroups).
                let oom = own_cgroups(&st).is_some_and(|c| cgroups::events::oom_kill_count(c) > 0);
                let e = if oom {
                    tracing::debug!("create failed: {e}");
                    Error::InitOomKilled
                } else {
                    e
                };
                // A pid file must not name an init that is about to be gone.
                if let (true, Some(path)) = (wrote_pid_file, &pid_file) {
                    let _ = std::fs::remove_file(path);
                }
                // No init yet (refused before the clone): nothing to kill, and no cgroup to
                // thaw that hull did not freeze (an existing one someone froze stays so).
                if st.pid > 0 {
                    kill_everything(&st);
                }
                if let Err(e) = release_resources(&st) {
                    tracing::warn!("{e}");
                }
                let _ = entry.remove();
                Err(e)
            }
        }
    }

    /// Releases a created container's init to exec the user process; returns once it has
    /// (and with a notify socket, once the container said it is ready, or died).
    pub fn start(&self, id: &str) -> Result<(), Error> {
        self.start_as(id, None).map(drop)
    }

    /// `start`; `main_pid`: the process the caller's notify socket is told is the service's
    /// main one (default: the init), told from a thread that is returned.
    fn start_as(
        &self,
        id: &str,
        main_pid: Option<i32>,
    ) -> Result<Option<std::thread::JoinHandle<()>>, Error> {
        let entry = self.store.open(id)?;
        let mut st = entry.load()?;
        match st.status() {
            Status::Created => {}
            Status::Stopped => return Err(Error::StartStopped),
            Status::Creating => return Err(Error::StillCreating),
            s => return Err(Error::StartStarted(s)),
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
            let alive =
                move || state::proc_stat(pid).is_some_and(|(s, t)| s != 'Z' && t == start_time);
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

    /// create + start; in the foreground, waits and returns the container's exit code
    /// (128+N when killed by signal N) and deletes it unless `keep`.
    pub fn run(&self, opts: &CreateOptions, run: &RunOptions) -> Result<i32, Error> {
        if !run.detach && !run.no_subreaper {
            // The init may be a grandchild (pid namespace joined by path): adopt it.
            let _ = nix::sys::prctl::set_child_subreaper(true);
        }
        let (st, tty) = self.create_container(opts, !run.detach)?;
        let pid = Pid::from_raw(st.pid);
        // Block the signals we forward before the init can exit, so no SIGCHLD is lost.
        let sfd = if run.detach {
            None
        } else {
            Some(forwarding_signalfd()?)
        };
        // In the foreground hull stays the service's main process.
        let main_pid = (!run.detach).then(|| std::process::id() as i32);
        let notifier = match self.start_as(&opts.id, main_pid) {
            Ok(n) => n,
            Err(e) => {
                let _ = self.delete(&opts.id, true);
                return Err(e);
            }
        };
        let Some(sfd) = sfd else {
            return Ok(0);
        };
        let code = match tty {
            Some(sock) => match wait_tty(pid, &sfd, &sock) {
                Ok(code) => code,
                Err(e) => {
                    let _ = self.delete(&opts.id, true);
                    return Err(e);
                }
            },
            None => wait_forwarding(pid, &sfd),
        };
        // A READY the container sent just before it exited is still passed on.
        if let Some(n) = notifier {
            let _ = n.join();
        }
        if !run.keep {
            self.delete(&opts.id, true)?;
        }
        Ok(code)
    }

    pub fn state(&self, id: &str) -> Result<OciState, Error> {
        let st = self.store.read(id)?;
        Ok(st.oci(st.status()))
    }

    /// Sends `signal` to the init (or with `all`, to every process of the container).
    /// `signal` is a raw number: real-time signals (SIGRTMIN+3 is a common stop signal) have
    /// no `Signal` variant.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), Error> {
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
            return Err(Error::NotRunning);
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
                Err(Errno::ESRCH) => return Err(Error::NotRunning),
                Err(source) => {
                    return Err(Error::Sys {
                        step: "kill",
                        source,
                    })
                }
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

    /// Deletes a stopped container (`force`: kills it first); `force` on a missing id succeeds.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        let entry = match self.store.open(id) {
            Ok(e) => e,
            Err(StateError::NotExist) if force => {
                // A create killed before it wrote state leaves only its directory.
                if let Ok(e) = self.store.open_partial(id) {
                    let _ = e.remove();
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let st = match entry.load() {
            Ok(st) => st,
            Err(e @ StateError::Corrupt { .. }) if force => {
                // Nothing says where the container's processes and cgroups are but its id.
                let found = cgroups::reap_by_id(id);
                tracing::warn!(
                    "{e}; removed the container by its id (cgroups: {})",
                    if found.is_empty() {
                        "none found".to_string()
                    } else {
                        found
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
                entry.remove()?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let status = st.status();
        // As runc: a created container goes without --force too. containerd's shim deletes a
        // task that never started that way (runtime-spec says it must be refused; runc and
        // youki do not, and the validation suite's `delete` file checks it).
        if !matches!(status, Status::Stopped | Status::Created) && !force {
            return Err(Error::NotStopped {
                id: id.to_string(),
                status,
            });
        }
        // With the init gone its children may live on (no pid namespace of its own): they are
        // the container's too.
        kill_everything(&st);
        release_resources(&st)?;
        entry.remove()?;
        if st.creating {
            // Its create died: it never was a container, so no poststop.
            return Ok(());
        }
        let list = st
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_deref());
        warn_hooks("poststop", list, &st, HookStatus::Stopped);
        Ok(())
    }

    /// Runs a process in a running container: in all its namespaces and cgroups, with its
    /// process attributes unless overridden. Detached it returns once the process has exec'd
    /// (0); else it waits and returns the exit code (128+N for a death by signal N).
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32, Error> {
        check_preserved_fds(0, opts.preserve_fds)?;
        let st = self.store.read(&opts.id)?;
        match st.status() {
            Status::Stopped | Status::Creating => return Err(Error::ExecStopped),
            Status::Paused if !opts.ignore_paused => return Err(Error::ExecPaused),
            _ => {}
        }
        let process = exec_process(&st.config, opts)?;
        let terminal = process.terminal() == Some(true);
        if terminal && opts.console_socket.is_none() && opts.detach {
            return Err(Error::NoConsoleSocket);
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(Error::ConsoleSocketWithoutTerminal);
        }
        let linux = st.config.linux().as_ref().expect("validated");
        let filter = self.seccomp_filter(linux)?;
        let plan = Plan::of_running(st.pid, linux)?;
        // The namespaces are open now: if the init is still the one recorded (pid and start
        // time), they are the container's and not those of a process that reused its pid.
        if !st.has_init() {
            return Err(Error::ExecStopped);
        }
        let bundle = Bundle {
            dir: st.bundle.clone(),
            rootfs: st.rootfs.clone(),
            spec: st.config.clone(),
        };
        let mut tty_end = None;
        let console = match &opts.console_socket {
            Some(path) => Some(OwnedFd::from(UnixStream::connect(path).map_err(
                |source| Error::ConsoleSocket {
                    path: path.clone(),
                    source,
                },
            )?)),
            None if terminal => {
                let (ours, theirs) = own_tty_pair()?;
                tty_end = Some(ours);
                Some(theirs)
            }
            None => None,
        };
        // The container's cgroups, as far as they exist (none for a rootless container).
        let cg = st
            .cgroups
            .clone()
            .filter(|c| c.dirs().next().is_some_and(Path::exists));
        let cg = match (cg, opts.cgroups.is_empty()) {
            (cg, true) => cg,
            (Some(c), false) => Some(c.sub(&opts.cgroups)?),
            (None, false) => return Err(Error::NoCgroups(opts.id.clone())),
        };
        let cgroup_fd = match &cg {
            Some(c) => c.open_unified().ok().flatten(),
            None => None,
        };
        if !opts.detach {
            // The process may be a grandchild (the pid namespace is entered by a fork).
            let _ = nix::sys::prctl::set_child_subreaper(true);
        }
        let sfd = if opts.detach {
            None
        } else {
            Some(forwarding_signalfd()?)
        };
        let pidfd_socket = connect_pidfd_socket(&opts.pidfd_socket)?;
        let mut pid = None;
        let mut pidfd = None;
        let want_pidfd = pidfd_socket.is_some();
        // The pidfd is opened while the process waits for its first message: it cannot be
        // gone (and its pid reused) yet.
        let mut events = |ev: SpawnEvent| match ev {
            SpawnEvent::Cloned(p) => {
                pid = Some(p);
                if want_pidfd {
                    pidfd = hull_sys::process::pidfd_open(p).ok();
                }
                match cg.as_ref().map_or(Ok(()), |c| c.join_or_attach(p.as_raw())) {
                    // A rootless caller outside the subtree delegated to it (a login session
                    // beside the user's systemd instance) may not move a process in: runc
                    // runs the process where the caller is, and so do we, but say so.
                    Err(e) if e.is_permission() && hull_cgroups::rootless() => {
                        tracing::warn!("the process runs outside the container's cgroup: {e}");
                        Ok(())
                    }
                    r => r.map_err(|e| e.to_string()),
                }
            }
            SpawnEvent::InitPid(p) => {
                pid = Some(p);
                if want_pidfd {
                    pidfd = hull_sys::process::pidfd_open(p).ok();
                }
                Ok(())
            }
            SpawnEvent::RuntimeHooks(_) => Ok(()),
            SpawnEvent::SeccompListener(p, fd) => {
                send_seccomp_listener(linux, &st, p, fd).map_err(|e| e.to_string())
            }
        };
        process::spawn(
            SpawnOptions {
                init: InitArgs {
                    id: &opts.id,
                    bundle: &bundle,
                    plan: &plan,
                    gate: None,
                    console,
                    console_relayed: tty_end.is_some() && relay_output_is_captured(),
                    no_pivot: false,
                    no_new_keyring: true,
                    preserve_fds: opts.preserve_fds,
                    listen_fds: 0,
                    exec: Some(&process),
                    seccomp: filter.as_ref(),
                    bind_sources: &[],
                },
                lock: -1,
                cgroup: cgroup_fd.as_ref().map(|fd| fd.as_fd()),
            },
            &mut events,
        )?;
        let pid = pid.expect("spawn reports the process");
        let result = (|| {
            send_pidfd(pidfd_socket, &opts.pidfd_socket, pidfd.as_ref(), "setns")?;
            if let Some(path) = &opts.pid_file {
                state::write_atomic(path, pid.to_string().as_bytes(), 0o644).map_err(|source| {
                    Error::PidFile {
                        path: path.clone(),
                        source,
                    }
                })?;
            }
            let Some(sfd) = sfd else {
                return Ok(0);
            };
            match tty_end {
                Some(sock) => wait_tty(pid, &sfd, &sock),
                None => Ok(wait_forwarding(pid, &sfd)),
            }
        })();
        if result.is_err() {
            // The caller is told the exec failed: the process must not run on unseen.
            let _ = kill(pid, Signal::SIGKILL);
        }
        result
    }

    /// The container's seccomp filter, compiled (or taken from the cache under the root).
    fn seccomp_filter(
        &self,
        linux: &oci_spec::runtime::Linux,
    ) -> Result<Option<crate::seccomp::Filter>, Error> {
        let Some(profile) = linux.seccomp() else {
            return Ok(None);
        };
        // Not a valid container id, so never mistaken for a container.
        let cache = self.store.root().join("~seccomp-cache");
        Ok(Some(crate::seccomp::compile(profile, Some(&cache))?))
    }

    /// Freezes every process of a running (or created) container.
    pub fn pause(&self, id: &str) -> Result<(), Error> {
        let entry = self.store.open(id)?;
        let st = entry.load()?;
        match st.status() {
            Status::Running | Status::Created => {}
            _ => return Err(Error::NotRunning),
        }
        self.cgroups_of(&st)?.freeze(true)?;
        Ok(())
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<(), Error> {
        let entry = self.store.open(id)?;
        let st = entry.load()?;
        if st.status() != Status::Paused {
            return Err(Error::NotPaused);
        }
        self.cgroups_of(&st)?.freeze(false)?;
        Ok(())
    }

    /// The host pids of the container's processes (`ps`).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, Error> {
        let st = self.store.read(id)?;
        let mut pids: Vec<i32> = container_pids(&st).into_iter().map(Pid::as_raw).collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Usage statistics of the container's cgroups, as `events --stats` prints them.
    pub fn stats(&self, id: &str) -> Result<cgroups::stats::Stats, Error> {
        let st = self.store.read(id)?;
        if st.status() == Status::Stopped {
            return Err(Error::EventsNotRunning(id.to_string()));
        }
        Ok(cgroups::stats::collect(self.cgroups_of(&st)?)?)
    }

    /// `events`: with `stats_only` one stats event; else stats every `interval` and OOM
    /// events as they happen, until the container stops.
    pub fn events(
        &self,
        id: &str,
        interval: Duration,
        stats_only: bool,
        emit: &mut dyn FnMut(&cgroups::events::Event) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        let st = self.store.read(id)?;
        if st.status() == Status::Stopped {
            return Err(Error::EventsNotRunning(id.to_string()));
        }
        let cg = self.cgroups_of(&st)?;
        let alive = || {
            self.store
                .read(id)
                .is_ok_and(|now| now.status() != Status::Stopped)
        };
        cgroups::events::run(id, cg, interval, stats_only, &alive, emit)?;
        Ok(())
    }

    /// Changes the limits of a live container: `res` holds only the fields to change.
    pub fn update(&self, id: &str, res: &oci_spec::runtime::LinuxResources) -> Result<(), Error> {
        let entry = self.store.open(id)?;
        let mut st = entry.load()?;
        if st.status() == Status::Stopped {
            return Err(Error::NotRunning);
        }
        let cg = self.cgroups_of(&st)?.clone();
        cg.check_ownership(true)?;
        let mut res = res.clone();
        if res.devices().is_some() {
            // As runc: device rules are set at create only.
            tracing::warn!("update: linux.resources.devices is ignored");
            res.set_devices(None);
        }
        cg.apply(&res, true)?;
        let linux = st.config.linux_mut().get_or_insert_with(Default::default);
        let mut merged = linux.resources().clone().unwrap_or_default();
        crate::spec::merge_resources(&mut merged, &res);
        linux.set_resources(Some(merged));
        entry.save(&st)?;
        Ok(())
    }

    fn cgroups_of<'a>(&self, st: &'a ContainerState) -> Result<&'a Cgroups, Error> {
        st.cgroups
            .as_ref()
            .ok_or_else(|| Error::NoCgroups(st.id.clone()))
    }

    /// The state of every container, sorted by id.
    /// Every container under the root, and apart the ones whose state cannot be read (one
    /// broken container does not hide the others: runc's rule).
    pub fn list(&self) -> Result<Listing, Error> {
        let mut out = Vec::new();
        let mut broken = Vec::new();
        for id in self.store.ids()? {
            match self.state(&id) {
                Ok(s) => out.push(s),
                Err(Error::State(StateError::NotExist)) => {}
                Err(e) => broken.push((id, e)),
            }
        }
        Ok((out, broken))
    }
}

/// `list`'s answer: the containers, and the ids whose state could not be read, with why.
pub type Listing = (Vec<OciState>, Vec<(String, Error)>);

/// Runs hooks the runtime itself runs, as runc does: in the bundle directory, with the
/// runtime's environment for a hook that has none. Stops at the first failure.
fn run_hooks(
    kind: &'static str,
    list: Option<&[oci_spec::runtime::Hook]>,
    st: &ContainerState,
    status: HookStatus,
) -> Result<(), hooks::HookError> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let env = runtime_env();
    hooks::run_with(
        kind,
        list,
        &hook_state(st, status),
        &runtime_hook_options(st, &env),
    )
}

/// Waits (at most 100 ms) until the just-exec'ed process has run far enough to sleep or exit:
/// poststart hooks are "called after the user-specified process is executed", and hooks and
/// callers (the validation suite among them) expect its first steps to be done by then, not
/// racing a hook that starts on the other core.
fn let_the_process_run(pid: i32, start_time: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    // 'D' too: the end of execve (and the first page-ins) is uninterruptible.
    while state::proc_stat(pid).is_some_and(|(s, t)| matches!(s, 'R' | 'D') && t == start_time)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// As [`run_hooks`], but every hook runs and failures are only warnings (poststart and
/// poststop, by the runtime-spec).
fn warn_hooks(
    kind: &'static str,
    list: Option<&[oci_spec::runtime::Hook]>,
    st: &ContainerState,
    status: HookStatus,
) {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return;
    };
    let env = runtime_env();
    hooks::run_all_warn(
        kind,
        list,
        &hook_state(st, status),
        &runtime_hook_options(st, &env),
    );
}

/// hull's own environment, which runc gives a hook that has no `env`.
fn runtime_env() -> Vec<String> {
    std::env::vars().map(|(k, v)| format!("{k}={v}")).collect()
}

/// How the runtime runs its hooks, as runc does: in the bundle, with its own environment as
/// the default.
fn runtime_hook_options<'a>(st: &'a ContainerState, env: &'a [String]) -> hooks::RunOptions<'a> {
    hooks::RunOptions {
        default_env: env,
        cwd: Some(&st.bundle),
    }
}

/// Connects to a `--pidfd-socket` before anything is made, so a wrong path fails early.
fn connect_pidfd_socket(path: &Option<PathBuf>) -> Result<Option<UnixStream>, Error> {
    path.as_ref()
        .map(|p| {
            UnixStream::connect(p).map_err(|source| Error::PidfdSocket {
                path: p.clone(),
                source,
            })
        })
        .transpose()
}

/// Sends a pidfd of `pid` over the `--pidfd-socket`, named as runc names it (`standard` for a
/// container's init, `setns` for an exec'd process).
fn send_pidfd(
    socket: Option<UnixStream>,
    path: &Option<PathBuf>,
    pidfd: Option<&OwnedFd>,
    name: &str,
) -> Result<(), Error> {
    let (Some(socket), Some(path)) = (socket, path) else {
        return Ok(());
    };
    let err = |source: std::io::Error| Error::PidfdSocket {
        path: path.clone(),
        source,
    };
    let pidfd = pidfd.ok_or_else(|| err(std::io::Error::from_raw_os_error(libc::ESRCH)))?;
    crate::console::send_fd(socket.as_fd(), name, pidfd.as_fd())
        .map_err(|e| err(std::io::Error::other(e.to_string())))
}

/// `--preserve-fds N`: the N descriptors after stdio and the `LISTEN_FDS` ones must be
/// open, as runc checks (a count near u32::MAX must not wrap into the container's stdio).
fn check_preserved_fds(listen_fds: u32, count: u32) -> Result<(), Error> {
    for index in 0..count {
        let fd = 3u64 + u64::from(listen_fds) + u64::from(index);
        let open = i32::try_from(fd)
            .is_ok_and(|fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok());
        if !open {
            return Err(Error::PreservedFd {
                index,
                count,
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
    }
    Ok(())
}

/// The process `exec` runs: `-p`'s, or the container's with the flags laid over it.
fn exec_process(
    config: &oci_spec::runtime::Spec,
    opts: &ExecOptions,
) -> Result<oci_spec::runtime::Process, Error> {
    let p = exec_process_unchecked(config, opts)?;
    crate::lsm::check(
        p.apparmor_profile().as_deref(),
        p.selinux_label().as_deref(),
        None,
    )?;
    Ok(p)
}

fn exec_process_unchecked(
    config: &oci_spec::runtime::Spec,
    opts: &ExecOptions,
) -> Result<oci_spec::runtime::Process, Error> {
    if let Some(p) = &opts.process {
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::ExecInvalid("args must not be empty".into()));
        }
        if !p.cwd().is_absolute() {
            return Err(Error::ExecInvalid("Cwd must be an absolute path".into()));
        }
        let mut p = p.clone();
        // As runc: a process file without capabilities gets the container's, never the
        // runtime's full set.
        if p.capabilities().is_none() {
            p.set_capabilities(
                config
                    .process()
                    .as_ref()
                    .and_then(|c| c.capabilities().clone()),
            );
        }
        return Ok(p);
    }
    if opts.args.is_empty() {
        return Err(Error::ExecNoArgs);
    }
    let mut p = config.process().clone().unwrap_or_default();
    p.set_args(Some(opts.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    for var in &opts.env {
        // The last value of a name wins, as in runc.
        let name = var.split_once('=').map_or(var.as_str(), |(n, _)| n);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != name);
        env.push(var.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.clone());
    }
    p.set_terminal(Some(opts.tty));
    if let Some(a) = &opts.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &opts.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(nnp) = opts.no_new_privs {
        p.set_no_new_privileges(Some(nnp));
    }
    let mut user = p.user().clone();
    if let Some((uid, gid)) = opts.user {
        user.set_uid(uid);
        if let Some(gid) = gid {
            user.set_gid(gid);
        }
    }
    if !opts.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&opts.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    if !opts.caps.is_empty() {
        // runc adds to the ambient set too when the process has an inheritable set at all.
        let had_inheritable = p
            .capabilities()
            .as_ref()
            .is_some_and(|c| c.inheritable().is_some());
        // No capabilities field: as runc, the sets are only what --cap adds; never oci-spec's
        // default, which fills inheritable and ambient (CVE-2022-29162).
        let mut caps = p.capabilities().clone().unwrap_or_else(|| {
            let none = oci_spec::runtime::Capabilities::new();
            let mut c = oci_spec::runtime::LinuxCapabilities::default();
            c.set_bounding(Some(none.clone()));
            c.set_effective(Some(none.clone()));
            c.set_permitted(Some(none.clone()));
            c.set_inheritable(Some(none.clone()));
            c.set_ambient(Some(none));
            c
        });
        let mut bounding = caps.bounding().clone().unwrap_or_default();
        let mut effective = caps.effective().clone().unwrap_or_default();
        let mut permitted = caps.permitted().clone().unwrap_or_default();
        let mut ambient = caps.ambient().clone().unwrap_or_default();
        for name in &opts.caps {
            // `CAP_NET_ADMIN` as in a config, or `NET_ADMIN`.
            let bare = name.strip_prefix("CAP_").unwrap_or(name);
            let cap: oci_spec::runtime::Capability = bare
                .parse()
                .map_err(|_| Error::UnknownCapability(name.clone()))?;
            bounding.insert(cap);
            effective.insert(cap);
            permitted.insert(cap);
            if had_inheritable {
                ambient.insert(cap);
            }
        }
        if had_inheritable {
            caps.set_ambient(Some(ambient));
        }
        caps.set_bounding(Some(bounding));
        caps.set_effective(Some(effective));
        caps.set_permitted(Some(permitted));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// The container's namespace of kind `typ` in its config (made, or joined by path).
fn config_namespace(
    st: &ContainerState,
    typ: LinuxNamespaceType,
) -> Option<&oci_spec::runtime::LinuxNamespace> {
    st.config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| ns.iter().find(|n| n.typ() == typ))
}

/// The container's cgroups when hull made them, so that every process in them is the
/// container's: a cgroup given by path that already existed may hold others.
fn own_cgroups(st: &ContainerState) -> Option<&Cgroups> {
    st.cgroups.as_ref().filter(|c| c.owns_procs())
}

/// What a container holds outside its own namespaces, released on delete and failed create.
/// Everything is tried; the first cgroup that could not be removed is returned (delete then
/// keeps the state, so that it can be tried again).
fn release_resources(st: &ContainerState) -> Result<(), CgroupError> {
    let cgroups = st.cgroups.as_ref().map_or(Ok(()), Cgroups::remove);
    if config_namespace(st, LinuxNamespaceType::Mount).is_none() {
        if let Err(e) = crate::rootfs::cleanup_host_mounts(&st.rootfs) {
            tracing::warn!("{e}");
        }
    }
    cgroups
}

/// The namespace kind whose members are the container's processes, and its id: the own pid
/// namespace, else the own mount namespace (until cgroups track them). None: only the init.
fn process_ns(plan: &Plan, init: Pid) -> Option<String> {
    let kind = if plan.new.contains(nix::sched::CloneFlags::CLONE_NEWPID) {
        "pid"
    } else if plan.new.contains(nix::sched::CloneFlags::CLONE_NEWNS) {
        "mnt"
    } else {
        return None;
    };
    std::fs::read_link(format!("/proc/{init}/ns/{kind}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The init (while it lives) and every other process of the container: those in its
/// cgroups, else those in its namespace.
fn container_pids(st: &ContainerState) -> Vec<Pid> {
    let mut pids = Vec::new();
    let init_alive = st.has_init();
    if init_alive {
        pids.push(Pid::from_raw(st.pid));
    }
    if let Some(cg) = own_cgroups(st) {
        pids.extend(
            cg.procs()
                .into_iter()
                .filter(|p| *p != st.pid)
                .map(Pid::from_raw),
        );
        return pids;
    }
    let Some(ns) = &st.process_ns else {
        return pids;
    };
    let kind = if ns.starts_with("pid:") { "pid" } else { "mnt" };
    if kind == "pid" && !init_alive {
        // The kernel ends every process of a pid namespace whose init has died.
        return pids;
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid != st.pid
                && std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
                    .is_ok_and(|p| p.as_os_str() == ns.as_str())
            {
                pids.push(Pid::from_raw(pid));
            }
        }
    }
    pids
}

/// SIGKILLs every process of the container and waits until they are gone.
fn kill_everything(st: &ContainerState) {
    // Thawed around the kill: a cgroup the container froze itself, below its own, would
    // keep its processes (v1) and make the cgroups impossible to remove.
    if let Some(cg) = own_cgroups(st) {
        cg.thaw_all();
        let _ = cg.signal_all(libc::SIGKILL);
        cg.thaw_all();
    }
    for pid in container_pids(st) {
        let _ = kill(pid, Signal::SIGKILL);
    }
    wait_gone(st, Duration::from_secs(10));
    if let Some(cg) = own_cgroups(st) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rounds = 0u32;
        while !cg.procs().is_empty() && Instant::now() < deadline {
            rounds += 1;
            if rounds % 20 == 0 {
                // A process that was frozen when the signal came gets it once thawed.
                cg.thaw_all();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Polls until the container's init is gone (or a zombie), up to `limit`.
fn wait_gone(st: &ContainerState, limit: Duration) {
    let deadline = Instant::now() + limit;
    while st.has_init() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Blocks the signals a foreground process gets passed on (before it can exit, so no
/// SIGCHLD is lost) and returns a signalfd that reads them.
fn forwarding_signalfd() -> Result<SignalFd, Error> {
    let signals = forwarded_signals();
    signals.thread_block().map_err(|source| Error::Sys {
        step: "block signals",
        source,
    })?;
    SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC).map_err(|source| Error::Sys {
        step: "signalfd",
        source,
    })
}

/// The signals a foreground `run` passes on to the container, plus SIGCHLD.
fn forwarded_signals() -> SigSet {
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

/// Forwards signals to the init until it exits, reaping any orphan this subreaper adopts;
/// returns the exit code, 128+N for a death by signal N.
fn wait_forwarding(init: Pid, sfd: &SignalFd) -> i32 {
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

/// The socket pair over which the init (or exec'd process) hands hull its pty master in a
/// foreground run with a terminal: (hull's end, the process's end).
fn own_tty_pair() -> Result<(UnixStream, OwnedFd), Error> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| Error::Sys {
        step: "console socket pair",
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    Ok((ours, OwnedFd::from(theirs)))
}

/// Whether the foreground relay's output goes to a pipe or file rather than a terminal: then
/// the container's pty gets ONLCR cleared, so what a script captures has `\n` line ends (runc
/// clears it on the pty it relays, meaning the same, but racing the process: on a terminal
/// the user still sees `\r\n`, which a raw terminal needs, and so do hull's users there).
fn relay_output_is_captured() -> bool {
    !nix::unistd::isatty(1).unwrap_or(false)
}

/// A foreground process with a terminal: relays the caller's stdin to the pty master and the
/// master to stdout (the caller's terminal raw meanwhile), resizes the pty with the caller's
/// window, forwards the other signals, and returns the exit code like [`wait_forwarding`].
fn wait_tty(init: Pid, sfd: &SignalFd, sock: &UnixStream) -> Result<i32, Error> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let (_, master) = crate::console::recv_fd(sock.as_fd()).map_err(|e| {
        tracing::debug!("{e}");
        Error::Sys {
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
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p == init => code = Some(c),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == init => code = Some(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
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
            if let Ok(Some(info)) = sfd.read_signal() {
                match info.ssi_signo as i32 {
                    libc::SIGCHLD => {}
                    libc::SIGWINCH => {
                        if let Some(t) = &host {
                            t.copy_size_to(master.as_fd());
                        }
                    }
                    signo => {
                        if let Ok(sig) = Signal::try_from(signo) {
                            let _ = kill(init, sig);
                        }
                    }
                }
            }
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
fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) {
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
fn init_is_foreign(init: Pid) -> bool {
    !Path::new(&format!("/proc/{init}")).exists()
}

/// Hands a seccomp notify listener to the agent at `linux.seccomp.listenerPath`, with the
/// container's state as the runtime-spec describes.
fn send_seccomp_listener(
    linux: &oci_spec::runtime::Linux,
    st: &ContainerState,
    pid: Pid,
    fd: OwnedFd,
) -> Result<(), Error> {
    let profile = linux
        .seccomp()
        .as_ref()
        .expect("a listener comes from a filter");
    let path = profile
        .listener_path()
        .as_deref()
        .expect("checked by seccomp::compile");
    let mut state = st.oci(st.status());
    state.pid = pid.as_raw();
    crate::seccomp::send_listener(
        path,
        fd.as_fd(),
        pid.as_raw(),
        profile.listener_metadata().as_deref(),
        &state,
    )?;
    Ok(())
}
