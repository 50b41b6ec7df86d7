//! The container process: spawning the init (clone, sync channel, id maps, runtime hooks)
//! and, in [`init`], the ordered setup it runs before exec.
//!
//! The init is a clone of the `create` process itself, which is single-threaded at that
//! point, so the child can use ordinary Rust until it execs; that process runs from the
//! sealed copy of the binary [`sealed`] makes.

pub(crate) mod attrs;
pub(crate) mod gate;
pub(crate) mod init;
pub(crate) mod scheduling;
pub mod sealed;
pub(crate) mod sync;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::namespaces::{self, Plan};
use crate::spec::Bundle;
use hull_sys::process::{clone_fork, Forked, SingleThreaded};
pub use init::{moves_itself, InitArgs, Work};
use sync::{FromInit, ToInit};
pub use sync::{InitError, InitStep};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("clone container init: {0}")]
    Clone(#[source] nix::errno::Errno),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error(transparent)]
    Namespaces(#[from] namespaces::NsError),
    #[error("{0}")]
    Init(InitError),
    /// A step of the runtime's own during setup failed (recording state, joining cgroups, a
    /// createRuntime hook), with its own error.
    #[error("{0}")]
    Runtime(StepError),
}

/// The error of a runtime step `spawn`'s caller runs at a [`SpawnEvent`], kept whole.
pub type StepError = Box<dyn std::error::Error + Send + Sync>;

/// How to spawn one container init: what the init gets, and what it must not keep.
#[derive(Debug)]
pub struct SpawnOptions<'a> {
    pub init: InitArgs<'a>,
    /// The state entry's locked fd: the child must not keep the lock alive by holding a copy.
    pub lock: std::os::fd::RawFd,
    /// The container's cgroup2 directory: the init is born in it (`CLONE_INTO_CGROUP`).
    pub cgroup: Option<std::os::fd::BorrowedFd<'a>>,
}

/// What the runtime is told while the init sets up.
#[derive(Debug)]
pub enum SpawnEvent {
    /// The clone child exists (the init itself, or the process that joins
    /// the namespaces and forks the init) and waits: record it, and put it into the
    /// container's cgroups, before it runs anything.
    Cloned(Pid),
    /// The init, forked by the clone child, exists with this host pid: record it, so that a
    /// runtime killed from here on leaves a container `delete` can find.
    InitPid(Pid),
    /// The init (this pid) could not move itself into the v1 cgroups it was given
    /// ([`InitArgs::cgroup_tasks`]): put it into all of its cgroups.
    JoinCgroups(Pid),
    /// Run the createRuntime hooks now.
    RuntimeHooks(Pid),
    /// The init (this pid) loaded a seccomp filter with notify rules: send its listener to
    /// the agent.
    SeccompListener(Pid, std::os::fd::OwnedFd),
    /// Set the idmapping of `mounts[N]` on this detached copy of its source.
    IdmapMount(usize, std::os::fd::OwnedFd),
}

/// Clones the container init and drives its setup until it waits for `start`, telling
/// `events` what happens; an error from `events` fails the spawn. On failure the init (and
/// any intermediate process) is killed and reaped.
pub fn spawn(
    opts: SpawnOptions,
    events: &mut dyn FnMut(SpawnEvent) -> Result<(), StepError>,
) -> Result<Pid, SpawnError> {
    let proof = SingleThreaded::check().map_err(|threads| {
        SpawnError::Runtime(
            format!(
                "the runtime has {threads} threads: it must be single-threaded to clone the container init"
            )
            .into(),
        )
    })?;
    let plan = opts.init.plan;
    let single = plan.single_clone();
    let (parent, child) = sync::pair()?;
    let flags = if single { plan.clone_flags().bits() } else { 0 };
    crate::timing::mark("clone");
    let forked = clone_fork(proof, flags, opts.cgroup).map_err(SpawnError::Clone)?;
    let clone_pid = match forked {
        Forked::Child(proof) => {
            drop(parent);
            // The lock fd and the cgroup directory fd are this child's copies, never used and
            // never dropped here (the child execs or _exits): close them, so that a host
            // cgroupfs directory does not stay open in the container.
            let _ = nix::unistd::close(opts.lock);
            if let Some(fd) = opts.cgroup {
                use std::os::fd::AsRawFd;
                let _ = nix::unistd::close(fd.as_raw_fd());
            }
            init::child_main(opts.init, child, single, proof)
        }
        Forked::Parent(pid) => {
            crate::timing::mark("cloned");
            pid
        }
    };
    drop(child);
    drop(opts.init.console);
    let mut init_pid = if single { Some(clone_pid) } else { None };
    let result = drive(
        &parent,
        opts.init.bundle,
        plan,
        clone_pid,
        &mut init_pid,
        opts.init.work.is_exec(),
        events,
    );
    if let Err(e) = result {
        for pid in [Some(clone_pid), init_pid].into_iter().flatten() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        reap(clone_pid);
        return Err(e);
    }
    if init_pid != Some(clone_pid) {
        // The intermediate process exits once it has forked the init. (Without a pid or time
        // namespace to enter, the clone child is the process itself: not waited for here.)
        reap(clone_pid);
    }
    Ok(init_pid.expect("set by drive"))
}

fn drive(
    chan: &sync::Channel,
    bundle: &Bundle,
    plan: &Plan,
    clone_pid: Pid,
    init_pid: &mut Option<Pid>,
    exec: bool,
    events: &mut dyn FnMut(SpawnEvent) -> Result<(), StepError>,
) -> Result<(), SpawnError> {
    let linux = crate::spec::linux(&bundle.spec);
    events(SpawnEvent::Cloned(clone_pid)).map_err(SpawnError::Runtime)?;
    if init_pid.is_none() {
        chan.send(&ToInit::Continue)?;
    }
    if let Some(pid) = *init_pid {
        if plan.new_user() {
            namespaces::write_id_maps(pid, linux)?;
        }
        chan.send(&ToInit::Go {
            host_pid: pid.as_raw(),
        })?;
    }
    loop {
        match chan.recv::<FromInit>()? {
            FromInit::WantIdMaps => {
                namespaces::write_id_maps(clone_pid, linux)?;
                chan.send(&ToInit::Continue)?;
            }
            FromInit::WantTimeOffsets => {
                namespaces::write_time_offsets(Some(clone_pid), linux)?;
                chan.send(&ToInit::Continue)?;
            }
            FromInit::InitPid(pid) => {
                let pid = Pid::from_raw(pid);
                *init_pid = Some(pid);
                events(SpawnEvent::InitPid(pid)).map_err(SpawnError::Runtime)?;
                chan.send(&ToInit::Go {
                    host_pid: pid.as_raw(),
                })?;
            }
            FromInit::JoinCgroups => {
                let pid = init_pid.unwrap_or(clone_pid);
                events(SpawnEvent::JoinCgroups(pid)).map_err(SpawnError::Runtime)?;
                chan.send(&ToInit::Continue)?;
            }
            FromInit::RunRuntimeHooks => {
                let pid = init_pid.expect("init pid known before hooks");
                events(SpawnEvent::RuntimeHooks(pid)).map_err(SpawnError::Runtime)?;
                chan.send(&ToInit::Continue)?;
            }
            FromInit::SeccompListener => {
                let (_, fd) =
                    crate::console::recv_fd(std::os::fd::AsFd::as_fd(chan)).map_err(|e| {
                        SpawnError::Runtime(format!("receive seccomp listener: {e}").into())
                    })?;
                let pid = init_pid.unwrap_or(clone_pid);
                events(SpawnEvent::SeccompListener(pid, fd)).map_err(SpawnError::Runtime)?;
                chan.send(&ToInit::Continue)?;
            }
            FromInit::IdmapMount(index) => {
                let (_, fd) =
                    crate::console::recv_fd(std::os::fd::AsFd::as_fd(chan)).map_err(|e| {
                        SpawnError::Runtime(format!("receive mounts[{index}]'s tree: {e}").into())
                    })?;
                events(SpawnEvent::IdmapMount(index, fd)).map_err(SpawnError::Runtime)?;
                chan.send(&ToInit::Continue)?;
            }
            FromInit::Ready if exec => {
                // An exec'd process: the channel closes on its execve, or the error comes.
                return match chan.recv::<FromInit>() {
                    Err(sync::SyncError::Closed) => Ok(()),
                    Ok(FromInit::Failed(e)) => Err(SpawnError::Init(e)),
                    Ok(_) => Err(SpawnError::Runtime("sync: unexpected message".into())),
                    Err(e) => Err(e.into()),
                };
            }
            FromInit::Ready => {
                crate::timing::mark("init ready");
                return Ok(());
            }
            FromInit::Failed(e) => return Err(SpawnError::Init(e)),
        }
    }
}

/// Waits for `pid` to exit, ignoring EINTR; the status does not matter here.
fn reap(pid: Pid) {
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(WaitStatus::StillAlive) => continue,
            _ => return,
        }
    }
}
