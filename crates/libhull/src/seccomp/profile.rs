//! Checking a `linux.seccomp` profile into a plan of rules, and the filter flags the running
//! kernel takes.

use super::*;

/// A profile checked and translated into libseccomp terms, ready to build.
pub(super) struct Plan<'a> {
    default: ScmpAction,
    arches: Vec<(usize, Arch, ScmpArch)>,
    rules: Vec<Rule<'a>>,
    pub(super) flags: FilterFlags,
    /// Where the notify listener goes, when the profile has notify rules.
    pub(super) agent: Option<Agent>,
    pub(super) enosys_stub: bool,
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

impl<'a> Rule<'a> {
    /// `linux.seccomp.syscalls[i]`: names, action and argument conditions.
    fn check(
        i: usize,
        call: &'a oci_spec::runtime::LinuxSyscall,
    ) -> Result<Rule<'a>, SeccompError> {
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
                LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(arg.value()),
            };
            let datum = match op {
                ScmpCompareOp::MaskedEqual(_) => arg.value_two().unwrap_or(0),
                _ => arg.value(),
            };
            conditions.push(ScmpArgCompare::new(index as u32, op, datum));
        }
        let split = per_index.iter().any(|&n| n > 1);
        Ok(Rule {
            index: i,
            action: act,
            names: call.names(),
            conditions,
            split,
        })
    }
}

impl<'a> Plan<'a> {
    pub(super) fn check(seccomp: &'a LinuxSeccomp) -> Result<Plan<'a>, SeccompError> {
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
            let rule = Rule::check(i, call)?;
            if rule.action == ScmpAction::Notify {
                notify_rule.get_or_insert(i);
            }
            rules.push(rule);
        }

        let listener_path = seccomp
            .listener_path()
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        let listener = notify_rule.is_some();
        let mut agent = None;
        if let Some(i) = notify_rule {
            let Some(path) = listener_path else {
                return Err(SeccompError::invalid(
                    "linux.seccomp.listenerPath",
                    format!("required for SCMP_ACT_NOTIFY (linux.seccomp.syscalls[{i}])"),
                ));
            };
            agent = Some(Agent {
                path: path.clone(),
                metadata: seccomp.listener_metadata().clone(),
            });
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
            agent,
            enosys_stub,
        })
    }

    /// Runs libseccomp and returns the program, with the ENOSYS stub in front.
    pub(super) fn build(&self) -> Result<Vec<Insn>, SeccompError> {
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
    pub(super) fn enosys_targets(&self) -> Vec<(ScmpArch, u32)> {
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

/// libseccomp 2.5 exports only to a file descriptor: a memfd, read back.
pub(super) fn export(ctx: &ScmpFilterContext) -> Result<Vec<Insn>, SeccompError> {
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
