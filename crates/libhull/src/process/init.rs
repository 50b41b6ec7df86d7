//! The container init: the fixed order of setup steps between clone and exec.
//!
//! This runs in a child of a single-threaded runtime, so allocating is safe; it starts no
//! thread, and every step's failure goes back to the runtime over the sync channel instead
//! of being printed.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hull_sys::process::{exit_now, fork, Forked, SingleThreaded};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::{chdir, execve};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec, State};

use super::sync::{Channel, FromInit, InitError, InitStep, ToInit};
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, RootfsContext};
use crate::spec::Bundle;
use crate::{capabilities, console, hooks, seccomp};

use super::attrs;
use super::scheduling::Scheduling;

/// Everything the init needs, prepared by the runtime before the clone.
#[derive(Debug)]
pub struct InitArgs<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub plan: &'a Plan,
    /// Listening socket `start` connects to.
    pub gate: Option<&'a OwnedFd>,
    pub console: Option<OwnedFd>,
    /// The pty's master goes to hull's own foreground relay, whose output is captured (not a
    /// terminal): ONLCR is cleared before the process can write, so `\n` stays `\n`.
    pub console_relayed: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub listen_fds: u32,
    pub work: Work<'a>,
    /// The process's scheduling attributes, planned by the runtime.
    pub scheduling: &'a Scheduling,
    /// The container's seccomp filter, compiled by the runtime.
    pub seccomp: Option<&'a seccomp::Filter>,
    /// The v1 cgroups' `tasks` files through which the clone child moves itself into its
    /// cgroups (`Cgroups::self_join_files`) before it joins or makes any namespace but
    /// those of the clone itself; empty when the runtime places it.
    pub cgroup_tasks: &'a [PathBuf],
}

/// What the init is for.
#[derive(Debug, Clone, Copy)]
pub enum Work<'a> {
    /// Set up a new container: its rootfs as planned, with the bind sources the runtime
    /// opened (see [`rootfs::open_bind_sources`]).
    Create {
        rootfs: &'a rootfs::Plan,
        bind_sources: &'a [Option<OwnedFd>],
        sysctls: &'a [attrs::Sysctl],
    },
    /// `exec`: run this process in the running container (whose namespaces `plan` joins).
    Exec(&'a Process),
}

impl Work<'_> {
    pub fn is_exec(&self) -> bool {
        matches!(self, Work::Exec(_))
    }
}

/// Entry point of the clone child. Never returns: it execs the user process or exits.
pub(super) fn child_main(
    args: InitArgs,
    chan: Channel,
    single_clone: bool,
    proof: SingleThreaded,
) -> ! {
    // A panic must never unwind out of here: above us is the runtime's code (cleanup that
    // removes state, for one), which this copy of the process must not run.
    // The failure is reported over the channel; the default hook would print it on the
    // container's stderr as well.
    std::panic::set_hook(Box::new(|_| {}));
    if args.work.is_exec() {
        // Before any namespace of the running container is joined: nothing in it may ptrace
        // this copy of hull or open its /proc files (CVE-2016-9962, CVE-2019-5736). A
        // failure is reported by exec_process, which sets it again.
        let _ = non_dumpable();
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let entered = if single_clone {
            None
        } else {
            Some(enter_namespaces(&args, &chan, proof)?)
        };
        let child_of_runtime = entered.as_ref().is_none_or(|e| !e.forked);
        match args.work {
            Work::Create {
                rootfs,
                bind_sources,
                sysctls,
            } => {
                let ctx = Created {
                    rootfs,
                    bind_sources,
                    sysctls,
                    cgroup2: entered.map(|e| e.cgroup2),
                };
                setup(args, ctx, &chan, child_of_runtime)
            }
            Work::Exec(process) => {
                exec_process(args, process, &chan, child_of_runtime, single_clone)
            }
        }
    }));
    let e = match result {
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            InitError::new(InitStep::ContainerInitPanicked, what)
        }
    };
    let _ = chan.send(&FromInit::Failed(e));
    // Not the parent's atexit handlers or destructors: they belong to the runtime process.
    exit_now(1)
}

fn step<E: std::fmt::Display>(name: InitStep) -> impl FnOnce(E) -> InitError {
    move |e| InitError::new(name, e)
}

/// What the slow path leaves for the rest of the setup.
struct Entered {
    /// This process is a fork of the clone child (in a new pid or time namespace).
    forked: bool,
    /// See [`cgroup2_before`].
    cgroup2: Option<PathBuf>,
}

/// With a new cgroup namespace in `new`: this process's cgroup2 path ("0::" of
/// /proc/self/cgroup), read before that namespace hides it. Where the kernel refuses a new
/// cgroup2 mount (the host's is already at the mount point), the rootfs binds this one.
fn cgroup2_before(new: CloneFlags) -> Option<PathBuf> {
    if !new.contains(CloneFlags::CLONE_NEWCGROUP) {
        return None;
    }
    hull_sys::proc::own_cgroup2().ok()?.map(PathBuf::from)
}

/// The slow path: join namespaces by path, unshare the new ones, and fork once more when
/// the init must be inside a new pid or time namespace. Returns in the process that goes on
/// to be the container's init.
fn enter_namespaces(
    args: &InitArgs,
    chan: &Channel,
    proof: SingleThreaded,
) -> Result<Entered, InitError> {
    let linux = crate::spec::linux(&args.bundle.spec);
    // First into the container's cgroups (we move ourselves into the v1 ones while the
    // runtime records us, and it does the rest): a cgroup namespace made below is rooted at
    // the cgroup we are in.
    let joined = move_into_own_cgroups(args.cgroup_tasks);
    expect_continue(chan)?;
    finish_own_cgroups(joined, chan)?;
    args.plan
        .join_all()
        .map_err(step(InitStep::JoinNamespaces))?;
    if args
        .plan
        .join
        .iter()
        .any(|j| j.typ == LinuxNamespaceType::User)
    {
        // Our host ids mean nothing in a joined user namespace: be its root.
        let _ = nix::unistd::setgroups(&[]);
        become_root()?;
    }
    let mut rest = args.plan.new;
    if args.plan.new_user() {
        // The user namespace first and alone: the others are then made by its root.
        namespaces::unshare_new(CloneFlags::CLONE_NEWUSER)
            .map_err(step(InitStep::CreateUserNamespace))?;
        chan.send(&FromInit::WantIdMaps)
            .map_err(step(InitStep::Sync))?;
        expect_continue(chan)?;
        become_root()?;
        rest.remove(CloneFlags::CLONE_NEWUSER);
    }
    let cgroup2 = cgroup2_before(rest);
    namespaces::unshare_new(rest).map_err(step(InitStep::CreateNamespaces))?;
    if args
        .plan
        .new
        .contains(namespaces::clone_flag(LinuxNamespaceType::Time))
    {
        if args.plan.new_user() {
            chan.send(&FromInit::WantTimeOffsets)
                .map_err(step(InitStep::Sync))?;
            expect_continue(chan)?;
        } else {
            namespaces::write_time_offsets(None, linux).map_err(step(InitStep::TimeNamespace))?;
        }
    }
    if !args.plan.needs_fork() {
        chan.send(&FromInit::InitPid(std::process::id() as i32))
            .map_err(step(InitStep::Sync))?;
        return Ok(Entered {
            forked: false,
            cgroup2,
        });
    }
    // The fork is born inside the pid namespace, where other containers (a pod's) may see
    // it: non-dumpable from birth, not from its first step (CVE-2016-9962). Not earlier: a
    // rootless runtime writes our id maps, which needs us dumpable.
    non_dumpable()?;
    match fork(proof).map_err(step(InitStep::ForkIntoPidNamespace))? {
        Forked::Child(_) => Ok(Entered {
            forked: true,
            cgroup2,
        }),
        Forked::Parent(child) => {
            let _ = chan.send(&FromInit::InitPid(child.as_raw()));
            // See child_main; this intermediate process's work is done.
            exit_now(0)
        }
    }
}

/// The runtime sets an idmapped mount's idmapping: the tree goes to it, and its `Continue`
/// says it is done (on failure it reports the error and ends the init).
impl rootfs::Idmapper for Channel {
    fn idmap(&self, index: usize, tree: std::os::fd::BorrowedFd<'_>) -> Result<(), String> {
        self.send(&FromInit::IdmapMount(index))
            .and_then(|()| self.send_fd_no_alloc("idmap", tree))
            .map_err(|e| e.to_string())?;
        expect_continue(self).map_err(|e| e.message)
    }
}

fn expect_continue(chan: &Channel) -> Result<(), InitError> {
    match chan.recv::<ToInit>().map_err(step(InitStep::Sync))? {
        ToInit::Continue => Ok(()),
        ToInit::Go { .. } => Err(InitError::new(InitStep::Sync, "unexpected message")),
    }
}

/// The state a hook the init runs reads on stdin.
fn hook_state(
    id: &str,
    pid: i32,
    bundle: &Bundle,
    status: oci_spec::runtime::ContainerState,
) -> State {
    hooks::state(
        id,
        pid,
        &bundle.dir,
        bundle.spec.annotations().clone(),
        status,
    )
}

/// Handlers that end the waiting init on the signals `kill` sends by default or by habit.
fn catch_stop_signals() -> Result<(), InitError> {
    use nix::sys::signal::Signal;
    hull_sys::signal::exit_on(&[
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ])
    .map_err(step(InitStep::InstallSignalHandler))
}

/// The user process starts with every signal at its default and none blocked: the runtime
/// ignores SIGPIPE (Rust does so before main) and execve keeps ignored signals ignored.
fn reset_signals() -> Result<(), InitError> {
    hull_sys::signal::reset_all().map_err(step(InitStep::ResetSignalHandlers))?;
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(step(InitStep::ResetSignalMask))
}

/// Becomes uid/gid 0 in a new user namespace, as its id maps (written by now) allow.
fn become_root() -> Result<(), InitError> {
    nix::unistd::setresgid(0.into(), 0.into(), 0.into())
        .map_err(step(InitStep::RootGidInUserNamespace))?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into())
        .map_err(step(InitStep::RootUidInUserNamespace))
}

/// Until exec, nothing may ptrace us or open our /proc files (CVE-2016-9962).
fn non_dumpable() -> Result<(), InitError> {
    nix::sys::prctl::set_dumpable(false).map_err(step(InitStep::SetNonDumpable))
}

/// Sets (or with `None` clears) the signal this process gets when its parent dies.
fn parent_death_signal(sig: Option<Signal>) -> Result<(), InitError> {
    hull_sys::signal::parent_death_signal(sig).map_err(step(InitStep::SetParentDeathSignal))
}

/// `child_of_runtime`: our parent is the runtime (not an intermediate process that exits).
/// `single_clone`: the namespaces were made by one clone (some are still to be unshared).
/// What a new container's setup works from besides [`InitArgs`].
struct Created<'a> {
    rootfs: &'a rootfs::Plan,
    bind_sources: &'a [Option<OwnedFd>],
    sysctls: &'a [attrs::Sysctl],
    /// What the slow path found (see [`cgroup2_before`]); none for the single clone.
    cgroup2: Option<Option<PathBuf>>,
}

fn setup(
    mut args: InitArgs,
    created: Created,
    chan: &Channel,
    child_of_runtime: bool,
) -> Result<Infallible, InitError> {
    let single_clone = created.cgroup2.is_none();
    let host_pid = receive_go(&args, chan, child_of_runtime, single_clone)?;
    crate::timing::mark("init: go received");
    // Before the cgroup namespace is unshared: its root is the cgroup we are in.
    if single_clone {
        let joined = move_into_own_cgroups(args.cgroup_tasks);
        finish_own_cgroups(joined, chan)?;
        crate::timing::mark("init: joined its cgroups");
    }
    let spec: &Spec = &args.bundle.spec;
    let plan = args.plan;
    let deferred = plan.new.difference(plan.clone_flags());
    let cgroup2 = match created.cgroup2 {
        Some(path) => path,
        None => cgroup2_before(deferred),
    };
    let ctx = RootfsContext {
        plan: created.rootfs,
        no_pivot: args.no_pivot,
        mount_ns: plan.has(LinuxNamespaceType::Mount),
        user_ns: plan.has(LinuxNamespaceType::User),
        cgroup2_path: cgroup2.as_deref(),
        bind_sources: created.bind_sources,
        idmapper: Some(chan),
    };

    if single_clone {
        if plan.new_user() {
            become_root()?;
            // A credential change clears the parent-death signal.
            parent_death_signal(Some(Signal::SIGKILL))?;
        }
        namespaces::unshare_new(deferred).map_err(step(InitStep::CreateNamespaces))?;
    }
    if plan.new.contains(CloneFlags::CLONE_NEWNET) {
        hull_sys::net::loopback_up().map_err(step(InitStep::LoopbackUp))?;
    }

    // Early, as runc does, while /proc is still the runtime's (the keyring code reads it).
    if !args.no_new_keyring {
        // The new keyring carries the process label, as runc sets it (SELinux only).
        let label = spec
            .process()
            .as_ref()
            .and_then(|p| p.selinux_label().as_deref());
        crate::lsm::apply_keycreate_label(label).map_err(step(InitStep::SessionKeyringLabel))?;
        attrs::join_session_keyring(&format!("_ses.{}", args.id))
            .map_err(step(InitStep::SessionKeyring))?;
    }
    crate::timing::mark("init: namespaces, loopback, keyring");
    rootfs::prepare(&ctx).map_err(step(InitStep::PrepareRootfs))?;
    crate::timing::mark("init: mounts made");

    creation_hooks(&args, chan, host_pid)?;

    rootfs::enter(&ctx).map_err(step(InitStep::EnterRootfs))?;
    crate::timing::mark("init: pivot_root");
    // Before finalize may make the root read-only.
    if let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()) {
        if std::fs::symlink_metadata(cwd).is_err() {
            std::fs::create_dir_all(cwd).map_err(|e| {
                InitError::new(InitStep::CreateCwd, format!("{}: {e}", cwd.display()))
            })?;
        }
    }

    if let Some(sock) = args.console.take() {
        let size = spec.process().as_ref().and_then(|p| p.console_size());
        console::setup_with_size(sock, size.as_ref(), args.console_relayed)
            .map_err(step(InitStep::Console))?;
    }
    attrs::set_sysctls(created.sysctls).map_err(step(InitStep::Sysctl))?;
    rootfs::finalize(&ctx).map_err(step(InitStep::FinalizeRootfs))?;
    crate::timing::mark("init: masked and read-only paths");
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        attrs::set_hostname(h).map_err(step(InitStep::Hostname))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        attrs::set_domainname(d).map_err(step(InitStep::Domainname))?;
    }
    // From here the container outlives `create`: cleared before the filter, which may deny
    // prctl. A runtime that dies now is noticed at the next message over the channel.
    if child_of_runtime {
        parent_death_signal(None)?;
    }
    let exec = match spec.process() {
        Some(process) => Some(prepare_process(
            process,
            args.scheduling,
            args.preserve_fds,
            args.listen_fds,
            args.seccomp,
            chan,
            &[
                chan.as_fd().as_raw_fd(),
                args.gate.map_or(-1, |g| g.as_raw_fd()),
            ],
        )?),
        None => None,
    };

    wait_for_start(&args, chan, host_pid, exec)
}

/// Whether the clone child of `plan` moves itself into its v1 cgroups (`InitArgs::cgroup_tasks`):
/// always, but when the clone made a new user namespace, where it has none of our rights.
pub fn moves_itself(plan: &Plan) -> bool {
    !(plan.single_clone() && plan.new_user())
}

/// Moves this single-threaded process into its v1 cgroups by writing "0" to each `tasks`
/// file the runtime listed, which spares the kernel's global migration lock (see
/// `Cgroups::self_join_files`); false if one refused.
fn move_into_own_cgroups(tasks: &[PathBuf]) -> bool {
    // Short paths: std opens them without allocating.
    tasks.iter().all(|path| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(b"0"))
            .is_ok()
    })
}

/// After [`move_into_own_cgroups`]: if it failed, the runtime joins us the usual way, so that
/// a failure reads as it always did.
fn finish_own_cgroups(joined: bool, chan: &Channel) -> Result<(), InitError> {
    if !joined {
        chan.send(&FromInit::JoinCgroups)
            .map_err(step(InitStep::Sync))?;
        match chan.recv::<ToInit>().map_err(step(InitStep::Sync))? {
            ToInit::Continue => {}
            ToInit::Go { .. } => return Err(InitError::new(InitStep::Sync, "unexpected message")),
        }
    }
    Ok(())
}

/// Waits for the runtime's Go (after it wrote our id maps, if it had to); returns our pid as
/// the runtime sees it. Non-dumpable from here on, and killed with a runtime that dies.
fn receive_go(
    args: &InitArgs,
    chan: &Channel,
    child_of_runtime: bool,
    single_clone: bool,
) -> Result<i32, InitError> {
    // A runtime killed during setup takes the half-made container with it. An init whose
    // parent is the intermediate process cannot use this (that parent exits right away); it
    // notices a dead runtime by its sync channel closing.
    if child_of_runtime {
        parent_death_signal(Some(Signal::SIGKILL))?;
    }
    // An unprivileged runtime may write the id maps of a new user namespace, which it does
    // between the clone and Go, only while we are dumpable. Until Go nothing but us is in
    // our new namespaces (the single clone joins none), so non-dumpable from Go on is as
    // safe (CVE-2016-9962).
    let maps_pending = single_clone && args.plan.new_user();
    if !maps_pending {
        non_dumpable()?;
    }
    let host_pid = match chan.recv::<ToInit>().map_err(step(InitStep::Sync))? {
        ToInit::Go { host_pid } => host_pid,
        ToInit::Continue => return Err(InitError::new(InitStep::Sync, "unexpected message")),
    };
    if maps_pending {
        non_dumpable()?;
    }
    Ok(host_pid)
}

/// The createRuntime hooks (the runtime runs them: asked over the channel) and the
/// createContainer hooks (run here, in the container's namespaces).
fn creation_hooks(args: &InitArgs, chan: &Channel, host_pid: i32) -> Result<(), InitError> {
    use oci_spec::runtime::ContainerState as S;
    let hooks = args.bundle.spec.hooks().as_ref();
    let runtime_hooks =
        hooks.is_some_and(|h| h.create_runtime().as_ref().is_some_and(|v| !v.is_empty()));
    if runtime_hooks {
        chan.send(&FromInit::RunRuntimeHooks)
            .map_err(step(InitStep::Sync))?;
        expect_continue(chan)?;
    }
    if let Some(list) = hooks.and_then(|h| h.create_container().as_deref()) {
        let st = hook_state(args.id, host_pid, args.bundle, S::Creating);
        // In the rootfs, as runc runs them (its init has changed into it by now).
        let opts = hooks::RunOptions {
            default_env: &[],
            cwd: Some(&args.bundle.rootfs),
        };
        hooks::run_with("createContainer", list, &st, &opts)
            .map_err(step(InitStep::CreateContainerHook))?;
    }

    Ok(())
}

/// Ready: tells the runtime, waits for `start` at the gate, then execs the process (or, with
/// none, ends). Never returns: an exec failure is written back to `start` and the init exits.
fn wait_for_start(
    args: &InitArgs,
    chan: &Channel,
    host_pid: i32,
    exec: Option<Exec>,
) -> Result<Infallible, InitError> {
    // As pid 1 of its pid namespace, the init ignores signals it has no handler for: give the
    // usual stop signals one, so `kill` of a created container ends it. execve resets them.
    catch_stop_signals()?;
    spare_fd(chan)?;
    chan.send(&FromInit::Ready).map_err(step(InitStep::Sync))?;
    let gate = args
        .gate
        .ok_or_else(|| InitError::new(InitStep::WaitForStart, "no start gate"))?;
    let mut conn = super::gate::wait(gate).map_err(step(InitStep::WaitForStart))?;
    let Some(exec) = exec else {
        // No process to run (the validation suite's `start` test expects start to succeed
        // and the container to stop): the init just ends.
        exit_now(0)
    };
    let result = start(args, host_pid, exec);
    let Err(e) = result;
    let _ = write!(conn, "{}", e.message);
    exit_now(1)
}

/// Fails unless the init can still open a descriptor, which waiting for `start` takes: with
/// `process.rlimits` RLIMIT_NOFILE at or below the descriptors it holds, it would die after
/// `create` had said the container was ready.
fn spare_fd(chan: &Channel) -> Result<(), InitError> {
    match nix::fcntl::fcntl(chan.as_fd().as_raw_fd(), nix::fcntl::F_DUPFD_CLOEXEC(0)) {
        Ok(fd) => {
            let _ = nix::unistd::close(fd);
            Ok(())
        }
        Err(e) => {
            let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or(0, |(soft, _)| soft);
            Err(InitError::new(
                InitStep::Rlimits,
                format!(
                    "RLIMIT_NOFILE {soft} leaves the container's init no file descriptor to wait \
                     for start with: {e}"
                ),
            ))
        }
    }
}

/// `exec`: in the container's namespaces (joined by now), becomes `process` and
/// execs it. Ready goes to the runtime just before execve; an execve that
/// fails still reports over the channel, which closes on a successful exec.
fn exec_process(
    mut args: InitArgs,
    process: &Process,
    chan: &Channel,
    child_of_runtime: bool,
    single_clone: bool,
) -> Result<Infallible, InitError> {
    if child_of_runtime {
        parent_death_signal(Some(Signal::SIGKILL))?;
    }
    non_dumpable()?;
    match chan.recv::<ToInit>().map_err(step(InitStep::Sync))? {
        ToInit::Go { .. } => {}
        ToInit::Continue => return Err(InitError::new(InitStep::Sync, "unexpected message")),
    }
    // With namespaces to join the clone child moved itself already (`enter_namespaces`).
    if single_clone {
        finish_own_cgroups(move_into_own_cgroups(args.cgroup_tasks), chan)?;
    }
    if !args.plan.has(LinuxNamespaceType::Mount) {
        // No mount namespace to join (the container shares the runtime's): its root is the
        // chroot the init made, which setns did not give us.
        nix::unistd::chroot(&args.bundle.rootfs)
            .and_then(|()| chdir("/"))
            .map_err(|e| {
                InitError::new(
                    InitStep::Chroot,
                    format!("{}: {e}", args.bundle.rootfs.display()),
                )
            })?;
    }
    if let Some(sock) = args.console.take() {
        console::setup_exec(sock, process.console_size().as_ref(), args.console_relayed)
            .map_err(step(InitStep::Console))?;
    }
    // Cleared before the filter, which may deny prctl: only our last setup steps lose it.
    if child_of_runtime {
        parent_death_signal(None)?;
    }
    let exec = prepare_process(
        process,
        args.scheduling,
        args.preserve_fds,
        0,
        args.seccomp,
        chan,
        &[chan.as_fd().as_raw_fd()],
    )?;
    reset_signals()?;
    chan.send(&FromInit::Ready).map_err(step(InitStep::Sync))?;
    Err(execve_failed(&exec))
}

/// Execs the user process; returns only if execve failed, with runc's wording of the error.
fn execve_failed(exec: &Exec) -> InitError {
    let e = execve(&exec.path, &exec.argv, &exec.env).unwrap_err();
    // runc 1.3's words (Go's PathError for op "exec"), for the resolved path.
    InitError::new(
        InitStep::StartContainerProcess,
        format!(
            "exec {}: {}",
            exec.path.to_string_lossy(),
            e.desc().to_lowercase()
        ),
    )
}

/// The resolved program, argv and env of the user process.
#[derive(Debug)]
struct Exec {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
}

/// Everything of `process` that is set before the init reports ready.
fn prepare_process(
    process: &Process,
    sched: &Scheduling,
    preserve_fds: u32,
    listen_fds: u32,
    filter: Option<&seccomp::Filter>,
    chan: &Channel,
    keep: &[i32],
) -> Result<Exec, InitError> {
    // As runc: every process hull starts leads a session and a process group of its own
    // (a terminal's made it one already: EPERM).
    match nix::unistd::setsid() {
        Ok(_) | Err(nix::errno::Errno::EPERM) => {}
        Err(e) => return Err(InitError::new(InitStep::Setsid, e)),
    }
    // The container's personality, for exec'd processes too (as runc: `uname -m` says i686
    // in both); in its cgroup by now, so no initial affinity means its cpuset's CPUs.
    scheduling(sched)?;

    let cwd = process.cwd();
    // First as root, as runc does: a cwd that root may enter but the user may not (a 0700
    // /root with uid 42) works; a refusal is tried again as the user, who may be the one
    // allowed (a volume owned by the user that root cannot enter).
    let cwd_done = match chdir(cwd) {
        Ok(()) => true,
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => false,
        Err(e) => {
            return Err(InitError::new(
                InitStep::Chdir,
                format!("{}: {e}", cwd.display()),
            ))
        }
    };
    // As runc: a process without HOME gets its user's home from the container's passwd,
    // read as root, before a tight RLIMIT_NOFILE could refuse the open.
    // Each name once, its last value winning, and an empty HOME as good as none (runc 1.2+).
    let (mut env, has_home) = attrs::prepare_env(process.env().as_deref().unwrap_or_default());
    if !has_home {
        env.push(format!("HOME={}", home_of(process.user().uid())?));
    }

    // Late, so a tight limit cannot trip up our own setup; before the user switch, while we
    // may still lower our own hard limits and oom_score_adj is ours to write.
    if let Some(adj) = process.oom_score_adj() {
        attrs::set_oom_score_adj(adj).map_err(step(InitStep::OomScoreAdj))?;
    }
    if let Some(rl) = process.rlimits() {
        attrs::set_rlimits(rl).map_err(step(InitStep::Rlimits))?;
    }
    // A process with no capabilities field keeps the init's (runc 1.2+ does the same).
    let caps = process.capabilities().as_ref();
    if let Some(caps) = caps {
        capabilities::drop_bounding(caps).map_err(step(InitStep::Capabilities))?;
    }
    // Takes effect at execve; written while we still hold every capability, as runc does.
    crate::lsm::apply_exec_labels(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )
    .map_err(step(InitStep::LsmLabels))?;
    attrs::chown_stdio(process.user().uid()).map_err(step(InitStep::ChownStdio))?;
    attrs::switch_user(process.user()).map_err(step(InitStep::User))?;
    // A uid change makes us dumpable again when fs.suid_dumpable is 1.
    non_dumpable()?;

    if !cwd_done {
        chdir(cwd)
            .map_err(|e| InitError::new(InitStep::Chdir, format!("{}: {e}", cwd.display())))?;
    }
    // The cwd must be inside the container: a leaked host fd or a racing mount could leave
    // us outside it (CVE-2024-21626), and getcwd then reports an unreachable path.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        Ok(p) => {
            return Err(InitError::new(
                InitStep::Chdir,
                format!("cwd {} is outside the container", p.display()),
            ))
        }
        Err(e) => return Err(InitError::new(InitStep::Chdir, format!("verify cwd: {e}"))),
    }

    let exec = exec_of(process, env, listen_fds)?;
    // Closed, not just close-on-exec: execve resolves args[0] (and a `#!` interpreter) with
    // the fd table as it is, so a host directory fd the caller leaked would let the program
    // path reach the host through /proc/self/fd/N (CVE-2024-21626). Only our own sockets stay.
    hull_sys::process::close_from_except(
        3u32.saturating_add(listen_fds).saturating_add(preserve_fds),
        keep,
    )
    .map_err(step(InitStep::CloseFds))?;
    // Before the filter: a profile need not allow sched_setaffinity.
    if let Some(cpus) = &sched.affinity_final {
        cpus.set().map_err(step(InitStep::FinalCpuAffinity))?;
    }

    // The last mark before the container's seccomp filter: after it, hull's own write(2)
    // would go through the user's profile.
    crate::timing::mark("init: process prepared");
    lock_down(process, caps, filter, chan)?;
    Ok(exec)
}

/// Personality, scheduler, I/O priority and the initial CPU affinity, once the process is
/// in its cgroup: without an initial set, every CPU of its cpuset (runc 1.2+).
fn scheduling(sched: &Scheduling) -> Result<(), InitError> {
    if let Some(p) = &sched.personality {
        p.set().map_err(step(InitStep::Personality))?;
    }
    if let Some(s) = &sched.scheduler {
        s.set().map_err(step(InitStep::Scheduler))?;
    }
    if let Some(p) = &sched.io_priority {
        p.set().map_err(step(InitStep::IoPriority))?;
    }
    match &sched.affinity_initial {
        Some(cpus) => cpus.set().map_err(step(InitStep::InitialCpuAffinity))?,
        None => super::scheduling::reset_cpu_affinity(),
    }
    Ok(())
}

/// What execve gets: the executable found on the container's PATH, argv, the environment
/// (with the socket-activation variables).
fn exec_of(process: &Process, mut env: Vec<String>, listen_fds: u32) -> Result<Exec, InitError> {
    let args = process.args().as_deref().unwrap_or_default();
    if listen_fds > 0 {
        env.push(format!("LISTEN_FDS={listen_fds}"));
        env.push("LISTEN_PID=1".to_string());
    }
    let env = env.as_slice();
    let path = find_executable(&args[0], env)?;
    let cstr = |s: &[u8], what: &str| {
        CString::new(s).map_err(|_| {
            InitError::new(
                InitStep::StartContainerProcess,
                format!("{what} contains a NUL byte"),
            )
        })
    };
    Ok(Exec {
        path: cstr(path.as_os_str().as_bytes(), "process.args[0]")?,
        argv: args
            .iter()
            .map(|a| cstr(a.as_bytes(), "process.args"))
            .collect::<Result<_, _>>()?,
        env: env
            .iter()
            .map(|e| cstr(e.as_bytes(), "process.env"))
            .collect::<Result<_, _>>()?,
    })
}

/// The seccomp filter, the final capabilities and no_new_privs, in the order that lets the
/// filter load (it takes no_new_privs or CAP_SYS_ADMIN) as late as possible.
fn lock_down(
    process: &Process,
    caps: Option<&oci_spec::runtime::LinuxCapabilities>,
    filter: Option<&seccomp::Filter>,
    chan: &Channel,
) -> Result<(), InitError> {
    // The filter goes on as late as it can, so the profile need not allow our own setup
    // (the cwd check above calls getcwd, which some profiles deny). Loading it takes
    // no_new_privs or CAP_SYS_ADMIN: a process left without both gets it before its final
    // capabilities, with CAP_SYS_ADMIN raised for that moment.
    let nnp = process.no_new_privileges() == Some(true);
    // Without a capabilities field the init keeps what it has, but the switch to a non-zero
    // uid above emptied the effective set.
    let keeps_sys_admin = match caps {
        None => process.user().uid() == 0,
        Some(c) => c
            .effective()
            .as_ref()
            .is_some_and(|e| e.contains(&oci_spec::runtime::Capability::SysAdmin)),
    };
    let early = filter.filter(|_| !nnp && !keeps_sys_admin);
    if let Some(filter) = early {
        // Without it in the permitted set the load below fails and says why.
        let _ = caps::raise(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        );
        load_seccomp(filter, chan)?;
    }
    if let Some(caps) = caps {
        capabilities::apply(caps).map_err(step(InitStep::Capabilities))?;
    }
    if nnp {
        attrs::set_no_new_privileges().map_err(step(InitStep::NoNewPrivileges))?;
    }
    if let Some(filter) = filter.filter(|_| early.is_none()) {
        load_seccomp(filter, chan)?;
    }
    Ok(())
}

/// Loads the filter; a notify listener goes to the runtime, which hands it to the agent at
/// `listenerPath` before we go on (a notified syscall of ours would wait for it).
/// Between the load and the listener's send nothing may allocate: a notify rule on brk or
/// mmap would hold the init for an agent that has no listener yet.
fn load_seccomp(filter: &seccomp::Filter, chan: &Channel) -> Result<(), InitError> {
    let announce = if filter.wants_listener() {
        Channel::encode(&FromInit::SeccompListener).map_err(step(InitStep::Sync))?
    } else {
        Vec::new()
    };
    let Some(listener) = filter.load().map_err(step(InitStep::Seccomp))? else {
        return Ok(());
    };
    chan.send_encoded(&announce).map_err(step(InitStep::Sync))?;
    chan.send_fd_no_alloc("seccomp", std::os::fd::AsFd::as_fd(&listener))
        .map_err(step(InitStep::SendSeccompListener))?;
    drop(listener);
    expect_continue(chan)
}

/// After `start`: the startContainer hooks, then exec.
fn start(args: &InitArgs, host_pid: i32, exec: Exec) -> Result<Infallible, InitError> {
    if let Some(list) = args
        .bundle
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_deref())
    {
        let st = hook_state(
            args.id,
            host_pid,
            args.bundle,
            oci_spec::runtime::ContainerState::Created,
        );
        // As runc 1.2+: a startContainer hook without env gets the process's.
        let env: Vec<String> = exec
            .env
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        let opts = hooks::RunOptions {
            default_env: &env,
            cwd: None,
        };
        hooks::run_with("startContainer", list, &st, &opts)
            .map_err(step(InitStep::StartContainerHook))?;
    }
    reset_signals()?;
    Err(execve_failed(&exec))
}

/// The home directory of `uid` in the container's /etc/passwd, "/" if it has none.
fn home_of(uid: u32) -> Result<String, InitError> {
    let passwd = read_untrusted("/etc/passwd", PASSWD_LIMIT)
        .map_err(|reason| InitError::new(InitStep::ReadPasswd, reason))?
        .unwrap_or_default();
    Ok(passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string()))
}

/// The most of /etc/passwd read for HOME: far beyond any real one.
const PASSWD_LIMIT: u64 = 4 << 20;

/// A file of the container, which the container controls: read only if it is a regular
/// file (not a FIFO that blocks, not /dev/zero that never ends) reached without a magic
/// link, and at most `limit` bytes. `None` when it does not exist.
fn read_untrusted(path: &str, limit: u64) -> Result<Option<String>, String> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match hull_sys::fd::openat2(None, path, how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e.desc().to_lowercase()),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let data = crate::spec::read_bounded(file, limit).map_err(|e| e.to_string())?;
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves args[0] as execvp would, with the container's PATH; errors are worded as runc's
/// (docker and podman map them to exit codes 126/127 by their text).
fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, InitError> {
    let exec_err = |msg: String| InitError::new(InitStep::StartContainerProcess, msg);
    if arg0.contains('/') {
        let meta = std::fs::metadata(arg0)
            .map_err(|e| exec_err(format!("exec: {arg0:?}: stat {arg0}: {}", io_text(&e))))?;
        if meta.is_dir() {
            return Err(exec_err(format!("exec: {arg0:?}: is a directory")));
        }
        // Refused at create, as runc's lookup does, rather than by execve after `start`.
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(exec_err(format!("exec: {arg0:?}: permission denied")));
        }
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(exec_err(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_cannot_move_itself_asks_the_runtime_to_join_it() {
        assert!(move_into_own_cgroups(&[]));
        assert!(!move_into_own_cgroups(&[PathBuf::from(
            "/nonexistent-hull-test/tasks"
        )]));
        let (runtime, init) = super::super::sync::pair().unwrap();
        let answer = std::thread::spawn(move || {
            let asked = runtime.recv::<FromInit>();
            runtime.send(&ToInit::Continue).unwrap();
            // Nothing more: a process that moved itself says nothing.
            (asked, runtime.recv::<FromInit>())
        });
        finish_own_cgroups(false, &init).unwrap();
        finish_own_cgroups(true, &init).unwrap();
        drop(init);
        let (asked, then) = answer.join().unwrap();
        assert!(matches!(asked, Ok(FromInit::JoinCgroups)), "{asked:?}");
        assert!(
            matches!(then, Err(super::super::sync::SyncError::Closed)),
            "{then:?}"
        );
    }
}
