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
use crate::process::scheduling::Scheduling;
use crate::process::{self, gate, InitArgs, SpawnEvent, SpawnOptions, StepError, Work};
use crate::spec::Bundle;
use hull_cgroups::{self as cgroups, CgroupError, Cgroups};
use state::{ContainerState, OciState, StateError, Status, Store};

mod cgroup;
mod checkpoint;
mod create;
mod delete;
mod error;
mod exec;
mod kill;
mod query;
mod restore;
mod run;
mod start;
pub mod state;
mod teardown;

use create::{check_preserved_fds, connect_pidfd_socket, send_pidfd, send_seccomp_listener};
use run::{
    console_for, forwarding_signalfd, relay_output_is_captured, wait_foreground, wait_forwarding,
    wait_tty,
};
use teardown::{container_pids, kill_everything, release_resources};

pub use checkpoint::{CheckpointError, CheckpointOptions};
pub use error::{
    ControlError, CreateError, DeleteError, Error, ExecError, KillError, OptionsError, StartError,
};
pub use restore::{RestoreError, RestoreOptions};

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
    /// `--rootless`: whether a cgroup the caller may not make is no error, for a container
    /// that names no cgroup and asks for no limit (runc's rootless cgroup manager); `None`
    /// decides by who the caller is ([`hull_cgroups::rootless`]).
    pub rootless_cgroups: Option<bool>,
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
}

/// `list`'s answer: the containers, and the ids whose state could not be read, with why.
pub type Listing = (Vec<OciState>, Vec<(String, StateError)>);

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
