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

use hull_sys::seccomp::{Insn, INSN_SIZE};

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
    listener: bool,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &format_args!("{}", self.flags))
            .field("listener", &self.listener)
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
        if self.listener {
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
        self.listener
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
                    listener: plan.listener,
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
        listener: plan.listener,
    };
    Ok((filter, used))
}

/// A profile checked and translated into libseccomp terms, ready to build.
struct Plan<'a> {
    default: ScmpAction,
    arches: Vec<(usize, Arch, ScmpArch)>,
    rules: Vec<Rule<'a>>,
    flags: FilterFlags,
    listener: bool,
    enosys_stub: bool,
}

struct Rule<'a> {
    /// Index in `linux.seccomp.syscalls`.
    index: usize,
    action: ScmpAction,
    names: &'a [String],
    conditions: Vec<ScmpArgCompare>,
    /// Several conditions on one argument: one rule per condition (runc's OR semantics).
    split: bool,
}

impl<'a> Plan<'a> {
    fn check(seccomp: &'a LinuxSeccomp) -> Result<Plan<'a>, SeccompError> {
        let default_action = seccomp.default_action();
        if default_action == LinuxSeccompAction::ScmpActNotify {
            return Err(SeccompError::invalid(
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY cannot be the default action (it would catch the runtime's own syscalls)",
            ));
        }
        let default = action(
            default_action,
            seccomp.default_errno_ret(),
            "linux.seccomp.defaultErrnoRet",
        )?;

        let mut arches = Vec::new();
        for (i, arch) in seccomp.architectures().iter().flatten().enumerate() {
            arches.push((i, *arch, scmp_arch(*arch)));
        }

        let mut rules = Vec::new();
        let mut notify_rule = None;
        for (i, call) in seccomp.syscalls().iter().flatten().enumerate() {
            let field = format!("linux.seccomp.syscalls[{i}]");
            if call.names().is_empty() {
                return Err(SeccompError::invalid(
                    format!("{field}.names"),
                    "must name at least one syscall",
                ));
            }
            for (j, name) in call.names().iter().enumerate() {
                if name.is_empty() {
                    return Err(SeccompError::invalid(
                        format!("{field}.names[{j}]"),
                        "empty syscall name",
                    ));
                }
                if call.action() == LinuxSeccompAction::ScmpActNotify
                    && NOTIFY_REFUSED.contains(&name.as_str())
                {
                    return Err(SeccompError::invalid(
                        format!("{field}.names[{j}]"),
                        format!(
                            "SCMP_ACT_NOTIFY cannot be used for the {name} syscall (the runtime needs it to hand the listener to the agent)"
                        ),
                    ));
                }
            }
            let act = action(
                call.action(),
                call.errno_ret(),
                &format!("{field}.errnoRet"),
            )?;
            if act == ScmpAction::Notify {
                notify_rule.get_or_insert(i);
            }
            let mut conditions = Vec::new();
            let mut per_index = [0usize; 6];
            for (j, arg) in call.args().iter().flatten().enumerate() {
                let index = arg.index();
                if index > 5 {
                    return Err(SeccompError::invalid(
                        format!("{field}.args[{j}].index"),
                        format!("{index} is out of range: syscalls have arguments 0 to 5"),
                    ));
                }
                per_index[index] += 1;
                let op = match arg.op() {
                    LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                    LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                    LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                    LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                    LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                    LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                    // `value` is the mask, `valueTwo` what the masked argument must equal.
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        ScmpCompareOp::MaskedEqual(arg.value())
                    }
                };
                let datum = match op {
                    ScmpCompareOp::MaskedEqual(_) => arg.value_two().unwrap_or(0),
                    _ => arg.value(),
                };
                conditions.push(ScmpArgCompare::new(index as u32, op, datum));
            }
            let split = per_index.iter().any(|&n| n > 1);
            rules.push(Rule {
                index: i,
                action: act,
                names: call.names(),
                conditions,
                split,
            });
        }

        let listener_path = seccomp
            .listener_path()
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        let listener = notify_rule.is_some();
        if let Some(i) = notify_rule {
            if listener_path.is_none() {
                return Err(SeccompError::invalid(
                    "linux.seccomp.listenerPath",
                    format!("required for SCMP_ACT_NOTIFY (linux.seccomp.syscalls[{i}])"),
                ));
            }
        } else if listener_path.is_some() {
            tracing::debug!("seccomp: listenerPath ignored: no SCMP_ACT_NOTIFY rule");
        }
        if seccomp.listener_metadata().is_some() && listener_path.is_none() {
            return Err(SeccompError::invalid(
                "linux.seccomp.listenerMetadata",
                "set without linux.seccomp.listenerPath",
            ));
        }

        let flags = check_flags(seccomp.flags().as_deref(), listener)?;
        let enosys_stub = !matches!(
            default,
            ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
        ) && default != ScmpAction::Errno(libc::ENOSYS);

        Ok(Plan {
            default,
            arches,
            rules,
            flags,
            listener,
            enosys_stub,
        })
    }

    /// Runs libseccomp and returns the program, with the ENOSYS stub in front.
    fn build(&self) -> Result<Vec<Insn>, SeccompError> {
        let lib = |field: &str, step: String| {
            let field = field.to_string();
            move |source| SeccompError::Libseccomp {
                field,
                step,
                source,
            }
        };
        let mut ctx = ScmpFilterContext::new(self.default)
            .map_err(lib("linux.seccomp", "create the filter".into()))?;
        // no_new_privs is the init's business; libseccomp never loads this filter anyway.
        ctx.set_ctl_nnp(false).map_err(lib(
            "linux.seccomp",
            "clear the no_new_privs attribute".into(),
        ))?;
        for &(i, oci, arch) in &self.arches {
            let field = format!("linux.seccomp.architectures[{i}]");
            let unsupported = || {
                let version = libseccomp_version().unwrap_or_else(|| "?".into());
                format!("{oci} is not supported by libseccomp {version}")
            };
            let present = ctx
                .is_arch_present(arch)
                .map_err(lib(&field, unsupported()))?;
            if !present {
                ctx.add_arch(arch).map_err(lib(&field, unsupported()))?;
            }
        }
        if self.rules.len() > 32 {
            // A binary tree of syscall numbers instead of a linear list; libseccomp 2.5
            // misbehaves with it on an empty rule set, hence the threshold (as runc).
            if let Err(e) = ctx.set_ctl_optimize(2) {
                tracing::debug!("seccomp: binary tree optimization unavailable: {e}");
            }
        }
        for rule in &self.rules {
            let field = format!("linux.seccomp.syscalls[{}]", rule.index);
            if rule.action == self.default {
                // libseccomp refuses rules that repeat the default action.
                tracing::debug!("seccomp: {field}: same action as the default, skipped");
                continue;
            }
            for name in rule.names {
                let Ok(nr) = ScmpSyscall::from_name(name) else {
                    tracing::debug!("seccomp: {field}: unknown syscall {name:?} skipped");
                    continue;
                };
                let add = |ctx: &mut ScmpFilterContext, conds: &[ScmpArgCompare]| {
                    ctx.add_rule_conditional(rule.action, nr, conds)
                        .map(|_| ())
                        .map_err(lib(&field, format!("add a rule for {name}")))
                };
                if rule.split {
                    for cond in &rule.conditions {
                        add(&mut ctx, std::slice::from_ref(cond))?;
                    }
                } else {
                    add(&mut ctx, &rule.conditions)?;
                }
            }
        }
        let mut program = export(&ctx)?;
        if self.enosys_stub {
            let mut stub = enosys::stub(&self.enosys_targets())?;
            stub.append(&mut program);
            program = stub;
        }
        if program.len() > MAX_INSNS {
            return Err(SeccompError::TooLong(program.len()));
        }
        Ok(program)
    }

    /// For each architecture in the filter, the largest syscall number the profile names.
    fn enosys_targets(&self) -> Vec<(ScmpArch, u32)> {
        let mut arches = vec![ScmpArch::native()];
        for &(_, _, arch) in &self.arches {
            let arch = if arch == ScmpArch::Native {
                ScmpArch::native()
            } else {
                arch
            };
            if !arches.contains(&arch) {
                arches.push(arch);
            }
        }
        let mut targets = Vec::new();
        for arch in arches {
            let largest = self
                .rules
                .iter()
                .flat_map(|r| r.names.iter())
                .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch).ok())
                .map(|nr| nr.as_raw_syscall())
                .filter(|&nr| nr >= 0)
                .max();
            match largest {
                Some(nr) => targets.push((arch, nr as u32)),
                None => tracing::debug!("seccomp: no syscall of the profile exists on {arch:?}"),
            }
        }
        targets
    }
}

/// The libseccomp action for an OCI action and its optional errno value.
fn action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    errno_field: &str,
) -> Result<ScmpAction, SeccompError> {
    let value = |errno_ret: Option<u32>| -> Result<u16, SeccompError> {
        let v = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(v).map_err(|_| {
            SeccompError::invalid(errno_field, format!("{v} is out of range (0 to 65535)"))
        })
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(value(errno_ret)?.into()),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(value(errno_ret)?),
        other if errno_ret.is_some() => {
            return Err(SeccompError::invalid(
                errno_field,
                format!("{other} takes no errno value"),
            ))
        }
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The seccomp(2) flags for `linux.seccomp.flags`, each checked against the running kernel.
/// Unset `flags` means SPEC_ALLOW where the kernel has it, as runc and crun do: the
/// speculative-store-bypass mitigation seccomp would otherwise force costs every process.
fn check_flags(
    flags: Option<&[LinuxSeccompFilterFlag]>,
    listener: bool,
) -> Result<FilterFlags, SeccompError> {
    let Some(flags) = flags else {
        let ok = probe_flags(FLAG_SPEC_ALLOW) != Some(Errno::EINVAL);
        return Ok(FilterFlags(if ok { FLAG_SPEC_ALLOW } else { 0 }));
    };
    let mut bits = 0;
    for (i, flag) in flags.iter().enumerate() {
        let (bit, name) = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                (FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => (FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG"),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                (FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                if !listener {
                    // It only changes how a notified syscall waits: nothing to do without
                    // notify rules (the kernel would refuse it without a listener).
                    tracing::debug!(
                        "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no SCMP_ACT_NOTIFY rule"
                    );
                    continue;
                }
                (
                    FLAG_WAIT_KILLABLE_RECV,
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
                )
            }
        };
        let probe = if bit == FLAG_WAIT_KILLABLE_RECV {
            bit | FLAG_NEW_LISTENER
        } else {
            bit
        };
        if probe_flags(probe) == Some(Errno::EINVAL) {
            return Err(SeccompError::invalid(
                format!("linux.seccomp.flags[{i}]"),
                format!("{name} is not supported by this kernel"),
            ));
        }
        bits |= bit;
    }
    Ok(FilterFlags(bits))
}

/// Asks the kernel whether it takes `flags`, without loading anything: it checks the flags
/// before it reads the program, so a NULL program gives EFAULT for good flags and EINVAL for
/// unknown ones. None when the answer says nothing (seccomp itself filtered, say).
fn probe_flags(flags: u32) -> Option<Errno> {
    let Err(errno) = hull_sys::seccomp::probe_filter_flags(flags) else {
        // Impossible with a NULL program; say nothing rather than guess.
        return None;
    };
    match errno {
        Errno::EINVAL => Some(Errno::EINVAL),
        Errno::EFAULT => Some(Errno::EFAULT),
        other => {
            tracing::debug!("seccomp: probing flags {}: {other}", FilterFlags(flags));
            None
        }
    }
}

/// The flags of [`FLAGS`] the running kernel accepts, for `features`.
pub fn supported_flags() -> Vec<&'static str> {
    let bits = [
        FLAG_TSYNC,
        FLAG_LOG,
        FLAG_SPEC_ALLOW,
        FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER,
    ];
    FLAGS
        .iter()
        .zip(bits)
        .filter(|(_, bits)| probe_flags(*bits) != Some(Errno::EINVAL))
        .map(|(name, _)| *name)
        .collect()
}

/// The libseccomp version hull is running with, e.g. `2.5.4`.
pub fn libseccomp_version() -> Option<String> {
    ScmpVersion::current()
        .ok()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
}

/// libseccomp 2.5 exports only to a file descriptor: a memfd, read back.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<Insn>, SeccompError> {
    let fd = nix::sys::memfd::memfd_create(
        c"hull-seccomp-bpf",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|e| SeccompError::Export(e.into()))?;
    ctx.export_bpf(fd.as_fd())
        .map_err(|e| SeccompError::Export(std::io::Error::other(e)))?;
    let mut file = File::from(fd);
    file.seek(SeekFrom::Start(0))
        .map_err(SeccompError::Export)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(SeccompError::Export)?;
    if bytes.is_empty() || bytes.len() % INSN_SIZE != 0 {
        return Err(SeccompError::Export(std::io::Error::other(format!(
            "{} bytes is not a whole number of instructions",
            bytes.len()
        ))));
    }
    Ok(program_from_bytes(&bytes))
}

/// The ENOSYS stub: syscall numbers above the largest one the profile names, per
/// architecture, return ENOSYS; everything else falls through to libseccomp's program.
mod enosys {
    use super::{Insn, ScmpArch, SeccompError};

    const LD_W_ABS: u16 = 0x20;
    const JA: u16 = 0x05;
    const JEQ_K: u16 = 0x15;
    const JGT_K: u16 = 0x25;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    const OFF_NR: u32 = 0;
    const OFF_ARCH: u32 = 4;
    const RET_ERRNO: u32 = 0x0005_0000;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;

    #[derive(Clone, Copy)]
    enum To {
        Next,
        Enosys,
        Filter,
        Section(usize),
        /// Skip this many instructions.
        Skip(u8),
    }

    struct Op {
        code: u16,
        k: u32,
        jt: To,
        jf: To,
    }

    fn op(code: u16, k: u32) -> Op {
        Op {
            code,
            k,
            jt: To::Next,
            jf: To::Next,
        }
    }

    fn jump(code: u16, k: u32, jt: To, jf: To) -> Op {
        Op { code, k, jt, jf }
    }

    /// The kernel's AUDIT_ARCH value for a libseccomp architecture (what `seccomp_data.arch`
    /// holds). libseccomp's tokens are the audit values, except x32 which shares x86_64's.
    fn audit_arch(arch: ScmpArch) -> Option<u32> {
        Some(match arch {
            ScmpArch::X86 => 0x4000_0003,
            ScmpArch::X8664 | ScmpArch::X32 => AUDIT_ARCH_X86_64,
            ScmpArch::Arm => 0x4000_0028,
            ScmpArch::Aarch64 => 0xc000_00b7,
            ScmpArch::Mips => 0x0000_0008,
            ScmpArch::Mips64 => 0x8000_0008,
            ScmpArch::Mips64N32 => 0xa000_0008,
            ScmpArch::Mipsel => 0x4000_0008,
            ScmpArch::Mipsel64 => 0xc000_0008,
            ScmpArch::Mipsel64N32 => 0xe000_0008,
            ScmpArch::Ppc => 0x0000_0014,
            ScmpArch::Ppc64 => 0x8000_0015,
            ScmpArch::Ppc64Le => 0xc000_0015,
            ScmpArch::S390 => 0x0000_0016,
            ScmpArch::S390X => 0x8000_0016,
            ScmpArch::Parisc => 0x0000_000f,
            ScmpArch::Parisc64 => 0x8000_000f,
            ScmpArch::Riscv64 => 0xc000_00f3,
            ScmpArch::Loongarch64 => 0xc000_0102,
            ScmpArch::M68k => 0x0000_0004,
            ScmpArch::Sh => 0x4000_002a,
            ScmpArch::Sheb => 0x0000_002a,
            _ => return None,
        })
    }

    /// The stub for `(architecture, largest syscall number)` pairs.
    pub(super) fn stub(targets: &[(ScmpArch, u32)]) -> Result<Vec<Insn>, SeccompError> {
        // x86_64 and x32 share an audit arch and differ by a bit in the syscall number.
        let mut x86_64 = None;
        let mut x32 = None;
        let mut sections: Vec<(u32, Vec<Op>)> = Vec::new();
        for &(arch, largest) in targets {
            match arch {
                ScmpArch::X8664 => x86_64 = Some(largest),
                ScmpArch::X32 => x32 = Some(largest),
                _ => {
                    let Some(audit) = audit_arch(arch) else {
                        tracing::debug!("seccomp: no ENOSYS stub for {arch:?}");
                        continue;
                    };
                    let mut ops = vec![op(LD_W_ABS, OFF_NR)];
                    if matches!(arch, ScmpArch::S390 | ScmpArch::S390X) {
                        // Syscall numbers the kernel does not know arrive as 0 (the old
                        // setup(2) slot, used to multiplex large numbers there).
                        ops.push(jump(JEQ_K, 0, To::Enosys, To::Next));
                    }
                    ops.push(jump(JGT_K, largest, To::Enosys, To::Filter));
                    sections.push((audit, ops));
                }
            }
        }
        if x86_64.is_some() || x32.is_some() {
            let part = |largest: Option<u32>| match largest {
                Some(n) => jump(JGT_K, n, To::Enosys, To::Filter),
                None => op(JA, 0),
            };
            let mut x64_part = part(x86_64);
            let mut x32_part = part(x32);
            // A part without a largest number hands every such call to the filter.
            for p in [&mut x64_part, &mut x32_part] {
                if p.code == JA {
                    p.jt = To::Filter;
                }
            }
            sections.push((
                AUDIT_ARCH_X86_64,
                vec![
                    op(LD_W_ABS, OFF_NR),
                    jump(JSET_K, X32_SYSCALL_BIT, To::Skip(1), To::Next),
                    x64_part,
                    x32_part,
                ],
            ));
        }

        let mut ops = vec![op(LD_W_ABS, OFF_ARCH)];
        for (i, (audit, _)) in sections.iter().enumerate() {
            ops.push(jump(JEQ_K, *audit, To::Section(i), To::Next));
        }
        ops.push(jump(JA, 0, To::Filter, To::Next));
        let mut starts = Vec::new();
        for (_, section) in sections {
            starts.push(ops.len());
            ops.extend(section);
        }
        let enosys = ops.len();
        ops.push(op(RET_K, RET_ERRNO | libc::ENOSYS as u32));
        let filter = ops.len();

        let mut out = Vec::with_capacity(ops.len());
        for (pc, o) in ops.iter().enumerate() {
            let target = |to: To| match to {
                To::Next => pc + 1,
                To::Enosys => enosys,
                To::Filter => filter,
                To::Section(i) => starts[i],
                To::Skip(n) => pc + 1 + n as usize,
            };
            let rel = |to: To| -> Result<u8, SeccompError> {
                u8::try_from(target(to) - pc - 1).map_err(|_| {
                    SeccompError::invalid("linux.seccomp", "ENOSYS stub jump out of range")
                })
            };
            out.push(if o.code == JA {
                Insn {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: (target(o.jt) - pc - 1) as u32,
                }
            } else if o.code & 0x07 == 0x05 {
                Insn {
                    code: o.code,
                    jt: rel(o.jt)?,
                    jf: rel(o.jf)?,
                    k: o.k,
                }
            } else {
                Insn {
                    code: o.code,
                    jt: 0,
                    jf: 0,
                    k: o.k,
                }
            });
        }
        Ok(out)
    }
}

/// The compiled-filter cache: one file per profile, `<dir>/<hash of the key>`, holding the key
/// itself (compared byte for byte, so neither a hash collision nor a swapped file can load
/// another profile's program), the program, and a checksum over both. Files must be regular,
/// owned by us and writable by nobody else; anything odd is ignored and overwritten. The cache
/// keeps other users and accidents out, not a root that can write the directory.
mod cache {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    const MAGIC: &[u8; 8] = b"HULLBPF1";
    const HEADER: usize = 32;
    /// Bump when the same profile would compile to a different program.
    const FORMAT: &str = "hull seccomp cache 1";
    const MAX_KEY: usize = 4 << 20;

    /// What a cached program depends on: the profile (without the listener fields, which do
    /// not change the program), libseccomp's version and the machine.
    /// None when the profile cannot be put in canonical form (then there is no caching).
    pub(super) fn key(seccomp: &LinuxSeccomp) -> Option<Vec<u8>> {
        let mut profile = seccomp.clone();
        profile.set_listener_path(None);
        profile.set_listener_metadata(None);
        let version = ScmpVersion::current().ok()?;
        let mut key = format!(
            "{FORMAT}\nlibseccomp {}.{}.{}\nnative {:?}\n",
            version.major,
            version.minor,
            version.micro,
            ScmpArch::native()
        )
        .into_bytes();
        // Serializing a typed struct is deterministic: a canonical form of the profile.
        key.extend(serde_json::to_vec(&profile).ok()?);
        Some(key)
    }

    pub(super) fn file_name(key: &[u8]) -> String {
        format!("{:032x}", fnv1a_128(key))
    }

    fn fnv1a_128(data: &[u8]) -> u128 {
        let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        for &b in data {
            h ^= b as u128;
            h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
        h
    }

    fn checksum(key: &[u8], program: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key.iter().chain(program) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// Owned by us and writable by nobody else.
    fn trusted(meta: &std::fs::Metadata, what: &str) -> Result<(), String> {
        let euid = nix::unistd::geteuid().as_raw();
        if meta.uid() != euid {
            return Err(format!("{what} is owned by uid {}, not {euid}", meta.uid()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{what} is group or world writable (mode {:o})",
                meta.mode() & 0o7777
            ));
        }
        Ok(())
    }

    fn open_dir(dir: &Path) -> Result<File, String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|e| format!("open {}: {e}", dir.display()))?;
        let meta = file.metadata().map_err(|e| format!("stat: {e}"))?;
        trusted(&meta, "the cache directory")?;
        Ok(file)
    }

    fn openat(
        dir: &File,
        name: &str,
        flags: libc::c_int,
        mode: libc::mode_t,
    ) -> Result<File, Errno> {
        hull_sys::fd::openat(
            dir.as_fd(),
            name,
            nix::fcntl::OFlag::from_bits_retain(flags)
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_retain(mode),
        )
        .map(File::from)
    }

    pub(super) fn read(dir: &Path, key: &[u8]) -> Result<Vec<Insn>, String> {
        let dir = open_dir(dir)?;
        let name = file_name(key);
        // O_NONBLOCK: a FIFO planted under the name must not hang the open.
        let mut file = openat(&dir, &name, libc::O_RDONLY | libc::O_NONBLOCK, 0)
            .map_err(|e| format!("open {name}: {e}"))?;
        let meta = file.metadata().map_err(|e| format!("stat {name}: {e}"))?;
        if !meta.file_type().is_file() {
            return Err(format!("{name} is not a regular file"));
        }
        trusted(&meta, &name)?;
        let size = meta.len() as usize;
        let max = HEADER + MAX_KEY + MAX_INSNS * INSN_SIZE;
        if !(HEADER..=max).contains(&size) {
            return Err(format!("{name} has an implausible size ({size} bytes)"));
        }
        let mut data = Vec::with_capacity(size);
        (&mut file)
            .take(size as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("read {name}: {e}"))?;
        parse(&data, key).map_err(|why| format!("{name}: {why}"))
    }

    pub(super) fn parse(data: &[u8], key: &[u8]) -> Result<Vec<Insn>, &'static str> {
        if data.len() < HEADER || &data[..8] != MAGIC {
            return Err("not a hull seccomp cache file");
        }
        let field = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
        let (key_len, prog_len, sum) = (field(8), field(16), field(24));
        if key_len != key.len() as u64 {
            return Err("stored profile differs");
        }
        if prog_len == 0
            || prog_len % INSN_SIZE as u64 != 0
            || prog_len > (MAX_INSNS * INSN_SIZE) as u64
        {
            return Err("implausible program length");
        }
        if data.len() as u64 != HEADER as u64 + key_len + prog_len {
            return Err("size does not match the header");
        }
        let stored_key = &data[HEADER..HEADER + key.len()];
        let program = &data[HEADER + key.len()..];
        if stored_key != key {
            return Err("stored profile differs");
        }
        if checksum(stored_key, program) != sum {
            return Err("checksum mismatch");
        }
        Ok(program_from_bytes(program))
    }

    pub(super) fn encode(key: &[u8], program: &[Insn]) -> Vec<u8> {
        let program = program_to_bytes(program);
        let mut data = Vec::with_capacity(HEADER + key.len() + program.len());
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(&(key.len() as u64).to_le_bytes());
        data.extend_from_slice(&(program.len() as u64).to_le_bytes());
        data.extend_from_slice(&checksum(key, &program).to_le_bytes());
        data.extend_from_slice(key);
        data.extend_from_slice(&program);
        data
    }

    pub(super) fn write(dir: &Path, key: &[u8], program: &[Insn]) -> Result<(), String> {
        if key.len() > MAX_KEY {
            return Err(format!("profile too large to cache ({} bytes)", key.len()));
        }
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) => return Err(format!("create {}: {e}", dir.display())),
        }
        let dir = open_dir(dir)?;
        let name = file_name(key);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = format!(".{name}.{}.{nanos}.tmp", std::process::id());
        let mut file = openat(
            &dir,
            &tmp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )
        .map_err(|e| format!("create {tmp}: {e}"))?;
        let written = file
            .write_all(&encode(key, program))
            .map_err(|e| format!("write {tmp}: {e}"))
            .and_then(|()| {
                nix::fcntl::renameat(
                    Some(dir.as_raw_fd()),
                    tmp.as_str(),
                    Some(dir.as_raw_fd()),
                    name.as_str(),
                )
                .map_err(|e| format!("rename {tmp} to {name}: {e}"))
            });
        if written.is_err() {
            let _ = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                tmp.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        written
    }
}

/// The container process state the runtime-spec has the runtime send to `listenerPath`.
#[derive(Serialize)]
struct ProcessState<'a, S> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: &'a S,
}

/// Sends the notify listener and the container process state to `linux.seccomp.listenerPath`,
/// as the runtime-spec says: one connection to the AF_UNIX stream socket, the JSON
/// `{ociVersion, fds: ["seccompFd"], pid, metadata, state}` as payload, the listener as the
/// only SCM_RIGHTS fd of the first message; then the connection is closed. `metadata` is
/// `linux.seccomp.listenerMetadata`, `state` the container's state object.
pub fn send_listener<S: Serialize>(
    path: &Path,
    fd: BorrowedFd<'_>,
    pid: i32,
    metadata: Option<&str>,
    state: &S,
) -> Result<(), SeccompError> {
    let fail = |step: &'static str| {
        move |source: std::io::Error| SeccompError::Listener {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let msg = serde_json::to_vec(&ProcessState {
        oci_version: crate::spec::OCI_VERSION,
        fds: [SECCOMP_FD_NAME],
        pid,
        metadata,
        state,
    })
    .map_err(|e| fail("encode the container process state")(e.into()))?;
    let stream = UnixStream::connect(path).map_err(|source| SeccompError::AgentConnect {
        path: path.to_path_buf(),
        source,
    })?;
    let sent = hull_sys::fdpass::send_fd(stream.as_fd(), &msg, fd)
        .map_err(|e| fail("send the listener")(e.into()))?;
    let mut rest = &msg[sent..];
    while !rest.is_empty() {
        match send(stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(fail("send the container process state")(e.into())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::Pid;
    use serde_json::json;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("a LinuxSeccomp")
    }

    fn compile_err(v: serde_json::Value) -> String {
        match compile_with(&profile(v), None) {
            Ok(_) => panic!("compiled"),
            Err(e) => e.to_string(),
        }
    }

    fn docker() -> LinuxSeccomp {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../hull/tests/fixtures/seccomp-docker-default.json"
        );
        serde_json::from_slice(&std::fs::read(path).expect("read the fixture")).expect("parse")
    }

    /// A fresh directory under the temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "hull-seccomp-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A child we forked: killed and reaped on drop unless already reaped.
    struct Child(Option<Pid>);

    impl Child {
        fn wait(&mut self) -> WaitStatus {
            let pid = self.0.take().expect("not reaped yet");
            loop {
                match waitpid(pid, None) {
                    Err(Errno::EINTR) => continue,
                    other => return other.expect("waitpid"),
                }
            }
        }
    }

    impl Drop for Child {
        fn drop(&mut self) {
            if let Some(pid) = self.0.take() {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
            }
        }
    }

    /// Forks; the child runs `body` (raw syscalls only: the harness has other threads) and
    /// exits with its return value.
    fn fork_child(body: impl FnOnce() -> i32) -> Child {
        // SAFETY: the child only makes raw syscalls (no locks, no allocation) and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", Errno::last());
        if pid == 0 {
            let code = body();
            // SAFETY: leaving the forked child without running the harness's destructors.
            unsafe { libc::_exit(code) };
        }
        Child(Some(Pid::from_raw(pid)))
    }

    fn run_child(body: impl FnOnce() -> i32) -> WaitStatus {
        fork_child(body).wait()
    }

    /// A raw syscall; the unused argument registers are zeroed (prctl checks them).
    fn sys(nr: libc::c_long, a: u64, b: u64, c: u64) -> Result<i64, i32> {
        // SAFETY: the tests pass syscalls and arguments that touch no memory of ours, or
        // buffers they own for the duration of the call.
        let ret = unsafe { libc::syscall(nr, a, b, c, 0u64, 0u64, 0u64) };
        if ret < 0 {
            Err(Errno::last_raw())
        } else {
            Ok(ret)
        }
    }

    /// In a child: no core dumps, no_new_privs, then the filter.
    fn child_load(filter: &Filter) -> Result<Option<OwnedFd>, i32> {
        if sys(libc::SYS_prctl, libc::PR_SET_DUMPABLE as u64, 0, 0).is_err()
            || sys(libc::SYS_prctl, libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0).is_err()
        {
            return Err(90);
        }
        filter.load().map_err(|_| 91)
    }

    /// Compiles `v` and runs `checks` in a child after loading it; each check is
    /// (syscall result wanted, nr, args), and the child exits with the 1-based index of the
    /// first check that failed.
    type Check = (Result<(), i32>, libc::c_long, [u64; 3]);

    fn run_checks(filter: &Filter, checks: &[Check]) -> WaitStatus {
        run_child(|| {
            if let Err(code) = child_load(filter) {
                return code;
            }
            for (i, (want, nr, [a, b, c])) in checks.iter().enumerate() {
                let got = sys(*nr, *a, *b, *c).map(|_| ());
                if got != *want {
                    return i as i32 + 1;
                }
            }
            0
        })
    }

    fn assert_exit0(status: WaitStatus) {
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "child: {status:?} (exit n = check n failed; 90/91 = setup/load failed)"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
                "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
                "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno value",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 1}]}),
                "linux.seccomp.syscalls[1].errnoRet: SCMP_ACT_KILL_PROCESS takes no errno value",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
                "linux.seccomp.syscalls[0].errnoRet: 70000 is out of range (0 to 65535)",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": [], "action": "SCMP_ACT_ERRNO"}]}),
                "linux.seccomp.syscalls[0].names: must name at least one syscall",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["getcwd", ""], "action": "SCMP_ACT_ERRNO"}]}),
                "linux.seccomp.syscalls[0].names[1]: empty syscall name",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["close"], "action": "SCMP_ACT_ERRNO", "args": [
                        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                        {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
                "linux.seccomp.syscalls[0].args[1].index: 6 is out of range: syscalls have arguments 0 to 5",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.listenerPath: required for SCMP_ACT_NOTIFY (linux.seccomp.syscalls[0])",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "", "syscalls": [
                    {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.listenerPath: required for SCMP_ACT_NOTIFY",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [
                    {"names": ["getcwd", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
                "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write syscall",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
                "linux.seccomp.listenerMetadata: set without linux.seccomp.listenerPath",
            ),
        ];
        for (v, want) in cases {
            let got = compile_err(v.clone());
            assert!(got.starts_with(want), "{v}\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn architecture_unknown_to_libseccomp_names_the_field() {
        // LoongArch arrived in libseccomp 2.6; on 2.5 adding it fails.
        let v = libseccomp_version().unwrap_or_default();
        let config = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_LOONGARCH64"]});
        if !v.starts_with("2.5.") {
            // A libseccomp that knows it compiles the profile.
            assert!(
                compile_with(&profile(config), None).is_ok(),
                "libseccomp {v}"
            );
            return;
        }
        let got = compile_err(config);
        assert!(
            got.starts_with(&format!(
                "linux.seccomp.architectures[1]: SCMP_ARCH_LOONGARCH64 is not supported by libseccomp {v}: "
            )),
            "{got}"
        );
    }

    #[test]
    fn unknown_names_are_refused_when_config_json_is_parsed() {
        // The OCI types are enums: the spec loader reports these with the field's path.
        let cases = [
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["getcwd"], "action": "SCMP_ACT_FOO"}]}),
                "syscalls[0].action",
                "SCMP_ACT_FOO",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_BAR"}),
                "defaultAction",
                "SCMP_ACT_BAR",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}),
                "flags[0]",
                "SECCOMP_FILTER_FLAG_FOO",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
                "architectures[0]",
                "SCMP_ARCH_VAX",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["close"],
                    "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}),
                "syscalls[0].args[0].op",
                "SCMP_CMP_XX",
            ),
        ];
        for (v, path, name) in cases {
            let text = v.to_string();
            let mut de = serde_json::Deserializer::from_str(&text);
            let err =
                serde_path_to_error::deserialize::<_, LinuxSeccomp>(&mut de).expect_err("parsed");
            assert_eq!(err.path().to_string(), path);
            assert!(err.inner().to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn what_is_accepted_and_how_flags_come_out() {
        // Unknown syscall names are skipped; a rule repeating the default is dropped;
        // listenerPath without notify rules is ignored, as the runtime-spec says.
        let (f, _) = compile_with(
            &profile(
                json!({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/x",
                "syscalls": [
                    {"names": ["no_such_syscall_at_all", "getcwd"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}),
            ),
            None,
        )
        .expect("compile");
        assert!(!f.wants_listener());
        // Unset flags: SPEC_ALLOW, as runc and crun (this kernel has it).
        assert_eq!(f.flags(), FilterFlags(FLAG_SPEC_ALLOW));

        let flags = |flags: serde_json::Value, notify: bool| {
            let mut v = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags});
            if notify {
                v["listenerPath"] = json!("/x");
                v["syscalls"] = json!([{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]);
            }
            compile_with(&profile(v), None).expect("compile").0
        };
        assert_eq!(flags(json!([]), false).flags(), FilterFlags(0));
        assert_eq!(
            flags(
                json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"]),
                false
            )
            .flags(),
            FilterFlags(FLAG_LOG | FLAG_TSYNC)
        );
        // WAIT_KILLABLE_RECV only means something with a listener.
        let f = flags(json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), false);
        assert_eq!(f.flags(), FilterFlags(0));
        let f = flags(json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), true);
        assert_eq!(f.flags(), FilterFlags(FLAG_WAIT_KILLABLE_RECV));
        assert!(f.wants_listener());

        assert_eq!(
            FilterFlags(FLAG_LOG | FLAG_NEW_LISTENER | 0x100).to_string(),
            "SECCOMP_FILTER_FLAG_LOG|SECCOMP_FILTER_FLAG_NEW_LISTENER|0x100"
        );
        let all = supported_flags();
        assert_eq!(all, FLAGS, "kernel 5.19+ takes every flag");
    }

    #[test]
    fn load_error_says_what_the_caller_lacks() {
        let e = SeccompError::Load {
            flags: FilterFlags(FLAG_SPEC_ALLOW),
            source: Errno::EACCES,
        };
        assert_eq!(
            e.to_string(),
            "load seccomp filter (flags SECCOMP_FILTER_FLAG_SPEC_ALLOW): EACCES: Permission denied \
             (loading a filter needs no_new_privs or CAP_SYS_ADMIN)"
        );
    }

    #[test]
    fn load_without_no_new_privs_or_cap_sys_admin_is_eacces() {
        hull_testing::skip_unless_root!();
        let (f, _) = compile_with(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW"})), None)
            .expect("compile");
        let status = run_child(|| {
            // Dropping root clears every capability; no_new_privs stays off.
            if sys(libc::SYS_setresuid, 65534, 65534, 65534).is_err() {
                return 90;
            }
            match f.load() {
                Err(SeccompError::Load {
                    source: Errno::EACCES,
                    ..
                }) => 0,
                _ => 1,
            }
        });
        assert_exit0(status);
    }

    #[test]
    fn errno_trace_and_log_actions() {
        let (f, _) = compile_with(
            &profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV},
                {"names": ["sched_yield"], "action": "SCMP_ACT_TRACE"},
                {"names": ["getppid"], "action": "SCMP_ACT_LOG"}]})),
            None,
        )
        .expect("compile");
        let mut buf = [0u8; 512];
        let p = buf.as_mut_ptr() as u64;
        assert_exit0(run_checks(
            &f,
            &[
                (Err(libc::EPERM), libc::SYS_getcwd, [p, 512, 0]),
                (Err(libc::EXDEV), libc::SYS_uname, [p, 0, 0]),
                // TRACE without a tracer: the call fails with ENOSYS.
                (Err(libc::ENOSYS), libc::SYS_sched_yield, [0, 0, 0]),
                (Ok(()), libc::SYS_getppid, [0, 0, 0]),
                (Ok(()), libc::SYS_getpid, [0, 0, 0]),
            ],
        ));
    }

    #[test]
    fn kill_process_and_trap_end_in_sigsys() {
        for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
            let (f, _) = compile_with(
                &profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["getcwd"], "action": action}]})),
                None,
            )
            .expect("compile");
            let mut buf = [0u8; 64];
            let p = buf.as_mut_ptr() as u64;
            let status = run_checks(&f, &[(Ok(()), libc::SYS_getcwd, [p, 64, 0])]);
            assert!(
                matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
                "{action}: {status:?}"
            );
        }
    }

    #[test]
    fn argument_rules() {
        let cmp =
            |index: u64, op: &str, value: u64| json!({"index": index, "value": value, "op": op});
        let (f, _) = compile_with(
            &profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                // Only the query form of personality is allowed.
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                 "args": [cmp(0, "SCMP_CMP_NE", 0xffff_ffff)]},
                // Two conditions on one argument: either matches (runc's semantics).
                {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
                 "args": [cmp(0, "SCMP_CMP_EQ", 1000), cmp(0, "SCMP_CMP_EQ", 1001)]},
                // Conditions on different arguments: all must match.
                {"names": ["fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
                 "args": [cmp(0, "SCMP_CMP_EQ", 1000), cmp(1, "SCMP_CMP_EQ", libc::F_GETFD as u64)]},
                {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
                 "args": [{"index": 0, "value": 0xff00, "valueTwo": 0x0300, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["fsync"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
                 "args": [cmp(0, "SCMP_CMP_GT", 5000)]},
                {"names": ["fdatasync"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
                 "args": [cmp(0, "SCMP_CMP_GE", 5000)]},
                {"names": ["fchdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
                 "args": [cmp(0, "SCMP_CMP_LT", 3000)]},
                {"names": ["syncfs"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
                 "args": [cmp(0, "SCMP_CMP_LE", 3000)]}]})),
            None,
        )
        .expect("compile");
        let (e2big, ebadf) = (Err(libc::E2BIG), Err(libc::EBADF));
        assert_exit0(run_checks(
            &f,
            &[
                (Ok(()), libc::SYS_personality, [0xffff_ffff, 0, 0]),
                (Err(libc::EACCES), libc::SYS_personality, [0, 0, 0]),
                (e2big, libc::SYS_close, [1000, 0, 0]),
                (e2big, libc::SYS_close, [1001, 0, 0]),
                (ebadf, libc::SYS_close, [1002, 0, 0]),
                (e2big, libc::SYS_fcntl, [1000, libc::F_GETFD as u64, 0]),
                (ebadf, libc::SYS_fcntl, [1000, libc::F_GETFL as u64, 0]),
                (ebadf, libc::SYS_fcntl, [1001, libc::F_GETFD as u64, 0]),
                (e2big, libc::SYS_dup, [0x0312, 0, 0]),
                (ebadf, libc::SYS_dup, [0x0412, 0, 0]),
                (e2big, libc::SYS_fsync, [5001, 0, 0]),
                (ebadf, libc::SYS_fsync, [5000, 0, 0]),
                (e2big, libc::SYS_fdatasync, [5000, 0, 0]),
                (ebadf, libc::SYS_fdatasync, [4999, 0, 0]),
                (e2big, libc::SYS_fchdir, [2999, 0, 0]),
                (ebadf, libc::SYS_fchdir, [3000, 0, 0]),
                (e2big, libc::SYS_syncfs, [3000, 0, 0]),
                (ebadf, libc::SYS_syncfs, [3001, 0, 0]),
            ],
        ));
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys() {
        let p = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["exit_group", "getpid", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"}]}));
        let (f, _) = compile_with(&p, None).expect("compile");
        let largest = ScmpSyscall::from_name("exit_group")
            .expect("exit_group")
            .as_raw_syscall() as libc::c_long;
        assert!(largest > libc::SYS_getppid);
        assert_exit0(run_checks(
            &f,
            &[
                (Ok(()), libc::SYS_getpid, [0, 0, 0]),
                // Known to the profile's era: the default action.
                (Err(libc::EPERM), libc::SYS_getppid, [0, 0, 0]),
                // Newer than anything the profile names: ENOSYS, so callers fall back.
                (Err(libc::ENOSYS), largest + 1, [0, 0, 0]),
                (Err(libc::ENOSYS), 1000, [0, 0, 0]),
            ],
        ));

        // Permissive defaults, and a default that already says ENOSYS, get no stub.
        let stub = |default: &str, errno: Option<u32>| {
            let mut v = json!({"defaultAction": default, "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]});
            if let Some(errno) = errno {
                v["defaultErrnoRet"] = json!(errno);
            }
            Plan::check(&profile(v)).expect("check").enosys_stub
        };
        assert!(!stub("SCMP_ACT_ALLOW", None));
        assert!(!stub("SCMP_ACT_LOG", None));
        assert!(!stub("SCMP_ACT_TRACE", None));
        assert!(!stub("SCMP_ACT_ERRNO", Some(libc::ENOSYS as u32)));
        assert!(stub("SCMP_ACT_ERRNO", None));
        assert!(stub("SCMP_ACT_KILL", None));
        assert!(stub("SCMP_ACT_TRAP", None));
    }

    /// Runs a program of the opcodes the stub uses on (nr, arch): Some(return value), or None
    /// when it falls off its end (into the filter).
    fn run_stub(prog: &[Insn], nr: u32, arch: u32) -> Option<u32> {
        let (mut pc, mut acc) = (0usize, 0u32);
        while pc < prog.len() {
            let i = prog[pc];
            pc += 1;
            let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
            match i.code {
                0x20 => acc = if i.k == 0 { nr } else { arch },
                0x05 => pc += i.k as usize,
                0x15 => pc += jump(acc == i.k),
                0x25 => pc += jump(acc > i.k),
                0x45 => pc += jump(acc & i.k != 0),
                0x06 => return Some(i.k),
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        assert_eq!(pc, prog.len(), "jumped past the stub");
        None
    }

    #[test]
    fn enosys_stub_per_architecture() {
        const X86_64: u32 = 0xc000_003e;
        const I386: u32 = 0x4000_0003;
        const S390X: u32 = 0x8000_0016;
        const ENOSYS: Option<u32> = Some(0x0005_0000 | libc::ENOSYS as u32);
        let x32 = 0x4000_0000;
        let stub = enosys::stub(&[
            (ScmpArch::X8664, 300),
            (ScmpArch::X86, 400),
            (ScmpArch::X32, x32 + 500),
            (ScmpArch::S390X, 200),
        ])
        .expect("stub");
        assert_eq!(run_stub(&stub, 300, X86_64), None);
        assert_eq!(run_stub(&stub, 301, X86_64), ENOSYS);
        assert_eq!(run_stub(&stub, x32 + 500, X86_64), None);
        assert_eq!(run_stub(&stub, x32 + 501, X86_64), ENOSYS);
        assert_eq!(run_stub(&stub, 400, I386), None);
        assert_eq!(run_stub(&stub, 401, I386), ENOSYS);
        assert_eq!(run_stub(&stub, 0, S390X), ENOSYS);
        assert_eq!(run_stub(&stub, 5, S390X), None);
        assert_eq!(
            run_stub(&stub, 9999, 0x4000_0028),
            None,
            "arm: not in the filter"
        );

        // Only x86_64 in the filter: x32 calls are libseccomp's business (bad arch).
        let stub = enosys::stub(&[(ScmpArch::X8664, 300)]).expect("stub");
        assert_eq!(run_stub(&stub, x32 + 9999, X86_64), None);
        assert_eq!(run_stub(&stub, 301, X86_64), ENOSYS);
        assert_eq!(run_stub(&stub, 301, I386), None);
    }

    #[test]
    fn notify_listener_reaches_an_agent_that_answers() {
        let (f, _) = compile_with(
            &profile(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/unused",
                "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
            ),
            None,
        )
        .expect("compile");
        assert!(f.wants_listener());
        let (ours, theirs) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let mut child = fork_child(|| {
            let listener = match child_load(&f) {
                Ok(Some(fd)) => fd,
                Ok(None) => return 92,
                Err(code) => return code,
            };
            if hull_sys::fdpass::send_fd(theirs.as_fd(), b"x", listener.as_fd()) != Ok(1) {
                return 93;
            }
            // Answered by the agent in the parent.
            match sys(libc::SYS_getppid, 0, 0, 0) {
                Ok(4242) => 0,
                _ => 1,
            }
        });
        drop(theirs);
        let listener = recv_fd(&ours).expect("listener from the child");
        assert!(
            poll_in(&listener, Duration::from_secs(10)),
            "no notification"
        );
        let req = libseccomp::ScmpNotifReq::receive(listener.as_raw_fd()).expect("receive");
        assert_eq!(req.data.syscall, ScmpSyscall::from_name("getppid").unwrap());
        libseccomp::ScmpNotifResp::new_val(req.id, 4242, libseccomp::ScmpNotifRespFlags::empty())
            .respond(listener.as_raw_fd())
            .expect("respond");
        assert_exit0(child.wait());
    }

    fn poll_in(fd: &OwnedFd, timeout: Duration) -> bool {
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = nix::poll::PollTimeout::try_from(timeout).expect("timeout");
        matches!(nix::poll::poll(&mut fds, ms), Ok(1))
    }

    fn recv_fd(sock: &OwnedFd) -> Option<OwnedFd> {
        assert!(
            poll_in(sock, Duration::from_secs(10)),
            "nothing from the child"
        );
        let mut byte = [0u8; 1];
        let got = hull_sys::fdpass::recv_fds(sock.as_fd(), &mut byte).ok()?;
        got.fds.into_iter().next()
    }

    #[test]
    fn send_listener_sends_the_fd_and_the_process_state() {
        let dir = TempDir::new("agent");
        let sock = dir.0.join("agent.sock");
        let server = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let agent = std::thread::spawn(move || {
            let (conn, _) = server.accept().expect("accept");
            let conn = OwnedFd::from(conn);
            let fd = recv_fd_and_data(&conn);
            let mut rest = Vec::new();
            File::from(conn).read_to_end(&mut rest).expect("read");
            (fd.0, [fd.1, rest].concat())
        });
        let file = File::create(dir.0.join("payload")).expect("create");
        let state = json!({"ociVersion": "1.2.1", "id": "c1", "status": "creating", "pid": 42,
            "bundle": "/b", "annotations": {"a": "b"}});
        send_listener(&sock, file.as_fd(), 42, Some("meta data"), &state).expect("send");
        let (fd, data) = agent.join().expect("agent");
        let got: serde_json::Value = serde_json::from_slice(&data).expect("one JSON object");
        assert_eq!(
            got,
            json!({"ociVersion": crate::spec::OCI_VERSION, "fds": ["seccompFd"], "pid": 42,
                "metadata": "meta data", "state": state})
        );
        let (a, b) = (
            File::from(fd.expect("an fd")).metadata().unwrap(),
            file.metadata().unwrap(),
        );
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));

        // No metadata: no field.
        let server = std::os::unix::net::UnixListener::bind(dir.0.join("b.sock")).expect("bind");
        let agent = std::thread::spawn(move || {
            let (mut conn, _) = server.accept().expect("accept");
            let mut data = Vec::new();
            conn.read_to_end(&mut data).expect("read");
            data
        });
        send_listener(&dir.0.join("b.sock"), file.as_fd(), 7, None, &state).expect("send");
        let got: serde_json::Value = serde_json::from_slice(&agent.join().unwrap()).unwrap();
        assert!(got.get("metadata").is_none(), "{got}");

        let err = send_listener(&dir.0.join("none.sock"), file.as_fd(), 7, None, &state)
            .expect_err("no agent");
        let text = err.to_string();
        assert!(
            text.starts_with("failed to connect with seccomp agent ")
                && text.contains("none.sock: "),
            "{text}"
        );
    }

    fn recv_fd_and_data(sock: &OwnedFd) -> (Option<OwnedFd>, Vec<u8>) {
        let mut buf = vec![0u8; 65536];
        let got = hull_sys::fdpass::recv_fds(sock.as_fd(), &mut buf).expect("recvmsg");
        assert!(got.fds.len() <= 1, "exactly one fd");
        buf.truncate(got.len);
        (got.fds.into_iter().next(), buf)
    }

    #[test]
    fn cache_env_switch() {
        assert!(cache_enabled(None));
        assert!(cache_enabled(Some(OsStr::new("1"))));
        for off in ["0", "false", "OFF", "no"] {
            assert!(!cache_enabled(Some(OsStr::new(off))), "{off}");
        }
    }

    #[test]
    fn cache_hits_and_refuses_what_it_cannot_trust() {
        let tmp = TempDir::new("cache");
        let dir = tmp.0.join("cache");
        let p = docker();
        let fresh = compile_with(&p, None).expect("compile").0;

        let (f, used) = compile_with(&p, Some(&dir)).expect("compile");
        assert!(
            matches!(used, CacheUse::Miss(ref why) if why.contains("No such file")),
            "{used:?}"
        );
        assert_eq!(f, fresh);
        let dmode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        let file = dir.join(cache::file_name(&cache::key(&p).unwrap()));
        let fmode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(fmode, 0o600);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp files left"
        );

        let hit = |why: &str| {
            let (f, used) = compile_with(&p, Some(&dir)).expect("compile");
            assert_eq!(f, fresh, "{why}");
            used
        };
        assert_eq!(hit("hit"), CacheUse::Hit);
        // The listener fields do not change the program: same entry.
        let mut with_listener = p.clone();
        with_listener.set_listener_path(Some("/agent".into()));
        assert_eq!(cache::key(&with_listener).unwrap(), cache::key(&p).unwrap());

        let miss = |why: &str| {
            let used = hit(why);
            assert!(
                matches!(used, CacheUse::Miss(ref m) if m.contains(why)),
                "{why}: {used:?}"
            );
            // Rewritten on the miss.
            assert_eq!(hit(why), CacheUse::Hit, "{why}");
        };

        std::fs::write(&file, b"garbage").unwrap();
        miss("implausible size");
        std::fs::write(&file, [b"garbage".as_slice(), &[0u8; 64]].concat()).unwrap();
        miss("not a hull seccomp cache file");

        let mut bytes = std::fs::read(&file).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        miss("checksum mismatch");

        let mut bytes = std::fs::read(&file).unwrap();
        bytes.truncate(bytes.len() - 8);
        std::fs::write(&file, &bytes).unwrap();
        miss("size does not match");

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        miss("group or world writable");

        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
            miss("owned by uid 65534");
        }

        // Another profile's entry under this name (a collision, or a swapped file).
        let other = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}));
        compile_with(&other, Some(&dir)).expect("compile");
        let other_file = dir.join(cache::file_name(&cache::key(&other).unwrap()));
        std::fs::copy(&other_file, &file).unwrap();
        miss("stored profile differs");
        // Same length, one byte of the profile changed.
        let key = cache::key(&p).unwrap();
        let mut bytes = cache::encode(&key, &fresh.program);
        bytes[32 + key.len() - 2] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        miss("stored profile differs");

        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&other_file, &file).unwrap();
        miss("ELOOP");

        std::fs::remove_file(&file).unwrap();
        nix::unistd::mkfifo(&file, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let used = hit("fifo");
        assert!(
            matches!(used, CacheUse::Miss(ref m) if m.contains("not a regular file")),
            "{used:?}"
        );
        std::fs::remove_file(&file).unwrap();

        // A directory others can write is not used at all.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let used = hit("open dir");
        assert!(
            matches!(used, CacheUse::Miss(ref m) if m.contains("group or world writable")),
            "{used:?}"
        );
        assert!(
            !file.exists(),
            "nothing written into an untrusted directory"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn docker_profile_compiles_and_behaves() {
        let p = docker();
        let names: usize = p.syscalls().iter().flatten().map(|s| s.names().len()).sum();
        assert!(names > 300, "{names}");
        let (f, _) = compile_with(&p, None).expect("compile");
        assert!(f.len() < MAX_INSNS, "{}", f.len());
        let mut buf = [0u8; 512];
        let b = buf.as_mut_ptr() as u64;
        let eperm = Err(libc::EPERM);
        assert_exit0(run_checks(
            &f,
            &[
                (Ok(()), libc::SYS_getcwd, [b, 512, 0]),
                (Ok(()), libc::SYS_personality, [0xffff_ffff, 0, 0]),
                (Ok(()), libc::SYS_personality, [0, 0, 0]),
                (eperm, libc::SYS_personality, [1, 0, 0]),
                (eperm, libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0]),
                (eperm, libc::SYS_mount, [0, 0, 0]),
                (eperm, libc::SYS_socket, [40, libc::SOCK_STREAM as u64, 0]),
                (Err(libc::ENOSYS), libc::SYS_clone3, [0, 0, 0]),
                (Err(libc::ENOSYS), 1000, [0, 0, 0]),
            ],
        ));
    }
}
