//! The errors of the lifecycle: one type per command, each naming what that command can fail
//! at, and [`Error`], any of them (what `run`, which creates, starts, waits and deletes,
//! returns, and what a caller that does not care which command failed can hold).
//!
//! The messages are the ones clients read (docs/runc-contract in `../shared`): a type wraps a
//! lower layer's error without adding words, so the text stays the same whichever command
//! reports it.

use std::path::PathBuf;

use nix::errno::Errno;

use super::state::{StateError, Status};
use crate::process::{gate::GateError, SpawnError};

/// What the caller handed a command that makes a process (`create`, `run`, `exec`): the
/// console and pidfd sockets, the pid file, the preserved fds, the terminal rules.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
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
    #[error("unable to stat preserved-fd {index} (of {count}): {source}")]
    PreservedFd {
        index: u32,
        count: u32,
        #[source]
        source: std::io::Error,
    },
    /// The runtime's own end of a foreground process's terminal or signals.
    #[error("{step}: {source}")]
    Foreground {
        step: &'static str,
        #[source]
        source: Errno,
    },
}

/// `create` (and the create half of `run`).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Namespaces(#[from] crate::namespaces::NsError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    /// A bind source the runtime prepares (an idmapped mount).
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Cgroup(#[from] hull_cgroups::CgroupError),
    #[error(transparent)]
    Gate(#[from] GateError),
    /// The init failed a setup step, or one of the runtime's own steps while it waited.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("container init was OOM-killed (memory limit too low?)")]
    InitOomKilled,
}

/// `start`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container is still being created")]
    StillCreating,
    #[error("cannot start a container that has stopped")]
    Stopped,
    #[error("cannot start an already {0} container")]
    Started(Status),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    /// Releasing the init through the start gate.
    #[error(transparent)]
    Gate(#[from] GateError),
}

/// `exec`.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot exec in a stopped container")]
    Stopped,
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    Paused,
    #[error("exec args cannot be empty")]
    NoArgs,
    /// The process (`--process` or the flags) is not one hull can run.
    #[error("{0}")]
    Invalid(String),
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Namespaces(#[from] crate::namespaces::NsError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Cgroup(#[from] hull_cgroups::CgroupError),
    /// `--cgroup` names sub-cgroups of a container hull made no cgroups for.
    #[error("container {0} has no cgroups")]
    NoCgroups(String),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// `kill`.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container not running")]
    NotRunning,
    #[error("kill: {0}")]
    Signal(#[source] Errno),
    #[error(transparent)]
    Cgroup(#[from] hull_cgroups::CgroupError),
}

/// `delete`.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: Status },
    #[error(transparent)]
    Cgroup(#[from] hull_cgroups::CgroupError),
}

/// The commands that act on a running container's cgroups: `pause`, `resume`, `ps`,
/// `events`, `update`.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container not running")]
    NotRunning,
    #[error("container not paused")]
    NotPaused,
    #[error("container with id {0} is not running")]
    EventsNotRunning(String),
    #[error("container {0} has no cgroups")]
    NoCgroups(String),
    #[error(transparent)]
    Cgroup(#[from] hull_cgroups::CgroupError),
}

/// Any command's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Kill(#[from] KillError),
    #[error(transparent)]
    Delete(#[from] DeleteError),
    #[error(transparent)]
    Control(#[from] ControlError),
    /// `state` and `list`.
    #[error(transparent)]
    State(#[from] StateError),
    /// A foreground `run`'s own end of the terminal or the signals.
    #[error(transparent)]
    Foreground(#[from] OptionsError),
}
