//! Seccomp: `linux.seccomp` checked and compiled to a classic BPF program in the runtime
//! (libseccomp, plus a cache of compiled programs), loaded by the container init with the raw
//! seccomp(2) syscall, and the notify listener handed to `listenerPath`.
//!
//! The init never calls libseccomp: it allocates heavily and keeps global state, which does not
//! belong between clone and exec. [`compile`] runs before anything is created and produces a
//! [`Filter`], a plain program the init loads with one syscall ([`Filter::load`]).
//!
//! Semantics follow runc where clients depend on them: syscall names libseccomp does not know
//! are skipped, a rule whose action equals the default action is dropped, several conditions
//! on the same argument of one syscall become one rule each (any may match) rather than one
//! rule needing all, and syscalls newer than every syscall the profile names return ENOSYS
//! instead of the default action, so that programs fall back from syscalls the profile's
//! author never heard of (a stub prepended to libseccomp's program).
//!
//! Submodules by job: `profile` (checking the profile into a plan, the kernel's flags),
//! `enosys` (the stub), `cache` (compiled programs on disk), `agent` (the notify listener's
//! hand-over); loading is [`Filter::load`] here.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use nix::errno::Errno;
use nix::sys::socket::{send, MsgFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde::Serialize;

use hull_sys::seccomp::{Insn, INSN_SIZE};

mod agent;
mod cache;
mod enosys;
mod profile;
#[cfg(test)]
mod tests;

pub use agent::send_listener;
pub use profile::supported_flags;
use profile::Plan;

/// Set to `0` (or `false`, `off`, `no`) to compile every profile afresh (for benchmarks).
pub const CACHE_ENV: &str = "HULL_SECCOMP_CACHE";

/// The name the runtime-spec gives the listener in the container process state's `fds`.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// Actions, operators and flags hull understands, as `features` lists them.
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];
pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// Syscalls `SCMP_ACT_NOTIFY` may not catch: the init makes them to hand the listener to the
/// runtime, before any agent holds it (runc refuses `write` for the same reason).
const NOTIFY_REFUSED: &[&str] = &["write", "sendmsg", "sendto"];

const FLAG_TSYNC: u32 = 1 << 0;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// The kernel's limit on one filter's length (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{field}: {step}: {source}")]
    Libseccomp {
        field: String,
        step: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("linux.seccomp: export the compiled filter: {0}")]
    Export(#[source] std::io::Error),
    #[error(
        "linux.seccomp: the compiled filter has {0} instructions, more than the kernel's limit of {MAX_INSNS}"
    )]
    TooLong(usize),
    #[error("load seccomp filter (flags {flags}): {source}{}", load_hint(.source))]
    Load {
        flags: FilterFlags,
        #[source]
        source: Errno,
    },
    /// runc's words, which its suite checks.
    #[error(
        "failed to connect with seccomp agent specified in the seccomp profile: {path}: {source}"
    )]
    AgentConnect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("send the seccomp listener to {path}: {step}: {source}")]
    Listener {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl SeccompError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SeccompError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

fn load_hint(errno: &Errno) -> &'static str {
    match errno {
        Errno::EACCES => " (loading a filter needs no_new_privs or CAP_SYS_ADMIN)",
        Errno::EINVAL => " (the kernel refused a flag or the program)",
        _ => "",
    }
}

/// seccomp(2) filter flags, printed as `SECCOMP_FILTER_FLAG_A|SECCOMP_FILTER_FLAG_B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilterFlags(pub u32);

impl fmt::Display for FilterFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: &[(u32, &str)] = &[
            (FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC"),
            (FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG"),
            (FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
            (FLAG_NEW_LISTENER, "SECCOMP_FILTER_FLAG_NEW_LISTENER"),
            (FLAG_TSYNC_ESRCH, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH"),
            (
                FLAG_WAIT_KILLABLE_RECV,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            ),
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut rest = self.0;
        let mut first = true;
        for &(bit, name) in NAMES {
            if rest & bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !bit;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

fn program_from_bytes(bytes: &[u8]) -> Vec<Insn> {
    bytes
        .chunks_exact(INSN_SIZE)
        .map(Insn::from_ne_bytes)
        .collect()
}

fn program_to_bytes(program: &[Insn]) -> Vec<u8> {
    program.iter().flat_map(|i| i.to_ne_bytes()).collect()
}

/// A compiled filter, ready to load with seccomp(2) in the container's init without libseccomp.
#[derive(Clone, PartialEq, Eq)]
pub struct Filter {
    program: Vec<Insn>,
    flags: FilterFlags,
    agent: Option<Agent>,
}

/// Where a filter's notify listener goes: `linux.seccomp.listenerPath`, with the metadata
/// the agent gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub path: std::path::PathBuf,
    pub metadata: Option<String>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &format_args!("{}", self.flags))
            .field("agent", &self.agent)
            .finish()
    }
}

impl Filter {
    /// Loads the filter into the calling process with `seccomp(SECCOMP_SET_MODE_FILTER)`.
    /// Returns the notify listener when the filter has `SCMP_ACT_NOTIFY` rules.
    ///
    /// Meant for the init between clone and exec: one syscall, no allocation, no libseccomp.
    /// The caller must have set no_new_privs or hold CAP_SYS_ADMIN (EACCES otherwise). When
    /// a listener comes back, the next syscalls the init makes must be the ones that hand it
    /// to the runtime (`compile` refuses notify rules on `write`, `sendmsg` and `sendto`).
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let mut flags = self.flags.0;
        if self.agent.is_some() {
            flags |= FLAG_NEW_LISTENER;
            if flags & FLAG_TSYNC != 0 {
                // TSYNC reports failure with a thread id, which a listener fd would be
                // indistinguishable from: the kernel wants ESRCH-style reporting then.
                flags |= FLAG_TSYNC_ESRCH;
            }
        }
        // compile() and the cache reader keep programs within MAX_INSNS.
        hull_sys::seccomp::load_filter(&self.program, flags).map_err(|source| SeccompError::Load {
            flags: FilterFlags(flags),
            source,
        })
    }

    /// Whether [`Filter::load`] returns a notify listener (the profile has notify rules).
    pub fn wants_listener(&self) -> bool {
        self.agent.is_some()
    }

    /// Where the notify listener goes (none without notify rules).
    pub fn agent(&self) -> Option<&Agent> {
        self.agent.as_ref()
    }

    /// The seccomp(2) flags `load` passes (without the listener flags it adds itself).
    pub fn flags(&self) -> FilterFlags {
        self.flags
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }
}

/// Checks and compiles `linux.seccomp` in the runtime, before anything is created. Errors name
/// the field, e.g. `linux.seccomp.syscalls[3].errnoRet: SCMP_ACT_ALLOW takes no errno value`.
/// `cache`: a directory for compiled programs (None, or `HULL_SECCOMP_CACHE=0`: no cache).
pub fn compile(seccomp: &LinuxSeccomp, cache: Option<&Path>) -> Result<Filter, SeccompError> {
    let cache = cache.filter(|_| cache_enabled(std::env::var_os(CACHE_ENV).as_deref()));
    compile_with(seccomp, cache).map(|(filter, _)| filter)
}

fn cache_enabled(value: Option<&OsStr>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str()) else {
        return true;
    };
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "off" | "no"
    )
}

/// What the cache did for one compile.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CacheUse {
    Off,
    Hit,
    Miss(String),
}

fn compile_with(
    seccomp: &LinuxSeccomp,
    cache: Option<&Path>,
) -> Result<(Filter, CacheUse), SeccompError> {
    let plan = Plan::check(seccomp)?;
    let mut used = CacheUse::Off;
    let key = cache.and_then(|_| cache::key(seccomp));
    if let (Some(dir), Some(key)) = (cache, &key) {
        match cache::read(dir, key) {
            Ok(program) => {
                tracing::debug!(dir = %dir.display(), "seccomp: compiled filter from the cache");
                let filter = Filter {
                    program,
                    flags: plan.flags,
                    agent: plan.agent.clone(),
                };
                return Ok((filter, CacheUse::Hit));
            }
            Err(why) => {
                tracing::debug!(dir = %dir.display(), "seccomp: cache entry not used: {why}");
                used = CacheUse::Miss(why);
            }
        }
    }
    let program = plan.build()?;
    if let (Some(dir), Some(key)) = (cache, &key) {
        if let Err(why) = cache::write(dir, key, &program) {
            tracing::debug!(dir = %dir.display(), "seccomp: cache not written: {why}");
        }
    }
    let filter = Filter {
        program,
        flags: plan.flags,
        agent: plan.agent,
    };
    Ok((filter, used))
}

/// The libseccomp version hull is running with, e.g. `2.5.4`.
pub fn libseccomp_version() -> Option<String> {
    ScmpVersion::current()
        .ok()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
}
