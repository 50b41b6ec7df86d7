//! How a process runs on the CPUs: its personality, scheduler, I/O priority and exec CPU
//! affinities. [`Scheduling::plan`] converts and checks the config's fields before the
//! clone (a bad flag, level or CPU list is one line naming the field, before anything
//! exists); the init only sets what was planned, and refuses nothing but what the kernel does.

use nix::errno::Errno;
use nix::unistd::Pid;
use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Process, Scheduler,
};

use crate::spec::SpecError;
use hull_sys::sched;

#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error("set personality {domain} with flags {flags:?}: {source}")]
    Personality {
        domain: LinuxPersonalityDomain,
        flags: Vec<String>,
        #[source]
        source: Errno,
    },
    /// runc's words for the kernel's refusal of SCHED_DEADLINE in a restricted cpuset.
    #[error("process scheduler can't be used together with AllowedCPUs")]
    SchedulerWithAllowedCpus,
    #[error("set scheduler policy {policy} (nice {nice}, priority {priority}, flags {flags:?}): {source}")]
    Scheduler {
        policy: LinuxSchedulerPolicy,
        nice: i32,
        priority: i32,
        flags: Vec<LinuxSchedulerFlag>,
        #[source]
        source: Errno,
    },
    #[error("set I/O priority {class} {priority}: {source}")]
    IoPriority {
        class: IOPriorityClass,
        priority: i64,
        #[source]
        source: Errno,
    },
    #[error("set CPU affinity to {list:?}: {source}")]
    CpuAffinity {
        list: String,
        #[source]
        source: Errno,
    },
}

/// The scheduling attributes of one process, ready to set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scheduling {
    /// `linux.personality`: the container's, for exec'd processes too (as runc).
    pub personality: Option<Persona>,
    pub scheduler: Option<Sched>,
    pub io_priority: Option<IoPrio>,
    /// `execCPUAffinity.initial`; without it every CPU of the process's cpuset (runc 1.2+).
    pub affinity_initial: Option<CpuSet>,
    /// `execCPUAffinity.final`, set just before exec.
    pub affinity_final: Option<CpuSet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    bits: libc::c_ulong,
    domain: LinuxPersonalityDomain,
    flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sched {
    attr: sched::SchedAttr,
    scheduler: Scheduler,
    /// `linux.resources.cpu.cpus` restricts the cpuset (for the wording of a refusal).
    restricted_cpus: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoPrio {
    value: u16,
    class: IOPriorityClass,
    priority: i64,
}

/// A CPU list ("0-3,7") and its affinity mask (bit N of word N/64 = CPU N).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSet {
    list: String,
    mask: Vec<u64>,
}

impl Scheduling {
    /// The scheduling of `process` in a container configured with `linux`.
    pub fn plan(process: &Process, linux: &Linux) -> Result<Scheduling, SpecError> {
        let restricted_cpus = linux
            .resources()
            .as_ref()
            .and_then(|r| r.cpu().as_ref())
            .and_then(|c| c.cpus().as_deref())
            .is_some_and(|c| !c.is_empty());
        let affinity = process.exec_cpu_affinity().as_ref();
        let cpus = |list: Option<&String>, field: &str| {
            list.map(|l| CpuSet::parse(l).map_err(|why| SpecError::invalid(field, why)))
                .transpose()
        };
        Ok(Scheduling {
            personality: linux
                .personality()
                .as_ref()
                .map(Persona::plan)
                .transpose()?,
            scheduler: process
                .scheduler()
                .as_ref()
                .map(|s| Sched::plan(s, restricted_cpus))
                .transpose()?,
            io_priority: process
                .io_priority()
                .as_ref()
                .map(|p| IoPrio::plan(p.class(), p.priority()))
                .transpose()?,
            affinity_initial: cpus(
                affinity.and_then(|a| a.initial().as_ref()),
                "process.execCPUAffinity.initial",
            )?,
            affinity_final: cpus(
                affinity.and_then(|a| a.cpu_affinity_final().as_ref()),
                "process.execCPUAffinity.final",
            )?,
        })
    }
}

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

/// Personality flags by their personality(2) names.
const PERSONALITY_FLAGS: &[(&str, libc::c_ulong)] = &[
    ("UNAME26", 0x0020000),
    ("ADDR_NO_RANDOMIZE", 0x0040000),
    ("FDPIC_FUNCPTRS", 0x0080000),
    ("MMAP_PAGE_ZERO", 0x0100000),
    ("ADDR_COMPAT_LAYOUT", 0x0200000),
    ("READ_IMPLIES_EXEC", 0x0400000),
    ("ADDR_LIMIT_32BIT", 0x0800000),
    ("SHORT_INODE", 0x1000000),
    ("WHOLE_SECONDS", 0x2000000),
    ("STICKY_TIMEOUTS", 0x4000000),
    ("ADDR_LIMIT_3GB", 0x8000000),
];

impl Persona {
    /// The execution domain (LINUX or LINUX32) and flags. The spec defines no flags yet; the
    /// kernel's own flag names are accepted, others refused.
    pub fn plan(personality: &LinuxPersonality) -> Result<Persona, SpecError> {
        let flags = personality.flags().clone().unwrap_or_default();
        let mut bits = match personality.domain() {
            LinuxPersonalityDomain::PerLinux => PER_LINUX,
            LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
        };
        for (i, flag) in flags.iter().enumerate() {
            let (_, flag_bits) = PERSONALITY_FLAGS
                .iter()
                .find(|(name, _)| name == flag)
                .ok_or_else(|| {
                    SpecError::invalid(
                        format!("linux.personality.flags[{i}]"),
                        format!("unknown personality flag {flag:?}"),
                    )
                })?;
            bits |= flag_bits;
        }
        Ok(Persona {
            bits,
            domain: personality.domain(),
            flags,
        })
    }

    /// Replaces the calling process's personality.
    pub fn set(&self) -> Result<(), SchedError> {
        hull_sys::process::set_personality(self.bits).map_err(|source| SchedError::Personality {
            domain: self.domain,
            flags: self.flags.clone(),
            source,
        })
    }
}

impl Sched {
    /// The sched_setattr(2) block of `scheduler`; unset numbers are 0.
    pub fn plan(scheduler: &Scheduler, restricted_cpus: bool) -> Result<Sched, SpecError> {
        let priority = scheduler.priority().unwrap_or(0);
        let priority = u32::try_from(priority).map_err(|_| {
            SpecError::invalid(
                "process.scheduler.priority",
                format!("{priority} is out of range"),
            )
        })?;
        let mut attr = sched::SchedAttr::new();
        attr.sched_policy = match scheduler.policy() {
            LinuxSchedulerPolicy::SchedOther => libc::SCHED_OTHER as u32,
            LinuxSchedulerPolicy::SchedFifo => libc::SCHED_FIFO as u32,
            LinuxSchedulerPolicy::SchedRr => libc::SCHED_RR as u32,
            LinuxSchedulerPolicy::SchedBatch => libc::SCHED_BATCH as u32,
            // Reserved by the kernel and never implemented: sched_setattr answers EINVAL.
            LinuxSchedulerPolicy::SchedIso => 4,
            LinuxSchedulerPolicy::SchedIdle => libc::SCHED_IDLE as u32,
            LinuxSchedulerPolicy::SchedDeadline => 6,
        };
        attr.sched_flags = scheduler
            .flags()
            .iter()
            .flatten()
            .map(|&f| sched_flag(f))
            .fold(0, |a, b| a | b);
        attr.sched_nice = scheduler.nice().unwrap_or(0);
        attr.sched_priority = priority;
        attr.sched_runtime = scheduler.runtime().unwrap_or(0);
        attr.sched_deadline = scheduler.deadline().unwrap_or(0);
        attr.sched_period = scheduler.period().unwrap_or(0);
        Ok(Sched {
            attr,
            scheduler: scheduler.clone(),
            restricted_cpus,
        })
    }

    /// Sets the calling process's policy and parameters.
    pub fn set(&self) -> Result<(), SchedError> {
        sched::sched_setattr(Pid::from_raw(0), &self.attr).map_err(|source| {
            if source == Errno::EPERM && self.restricted_cpus {
                return SchedError::SchedulerWithAllowedCpus;
            }
            let s = &self.scheduler;
            SchedError::Scheduler {
                policy: *s.policy(),
                nice: s.nice().unwrap_or(0),
                priority: s.priority().unwrap_or(0),
                flags: s.flags().clone().unwrap_or_default(),
                source,
            }
        })
    }
}

fn sched_flag(flag: LinuxSchedulerFlag) -> u64 {
    match flag {
        LinuxSchedulerFlag::SchedResetOnFork => sched::SCHED_FLAG_RESET_ON_FORK,
        LinuxSchedulerFlag::SchedFlagReclaim => sched::SCHED_FLAG_RECLAIM,
        LinuxSchedulerFlag::SchedFlagDLOverrun => sched::SCHED_FLAG_DL_OVERRUN,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => sched::SCHED_FLAG_KEEP_POLICY,
        LinuxSchedulerFlag::SchedFlagKeepParams => sched::SCHED_FLAG_KEEP_PARAMS,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => sched::SCHED_FLAG_UTIL_CLAMP_MIN,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => sched::SCHED_FLAG_UTIL_CLAMP_MAX,
    }
}

impl IoPrio {
    /// The ioprio_set(2) value of a class and level (0 to 7).
    pub fn plan(class: IOPriorityClass, priority: i64) -> Result<IoPrio, SpecError> {
        let level = u16::try_from(priority)
            .ok()
            .filter(|&l| l < sched::IOPRIO_LEVELS)
            .ok_or_else(|| {
                SpecError::invalid(
                    "process.ioPriority.priority",
                    format!("{priority}: priority must be 0 to 7"),
                )
            })?;
        let class_value = match class {
            IOPriorityClass::IoprioClassRt => sched::IOPRIO_CLASS_RT,
            IOPriorityClass::IoprioClassBe => sched::IOPRIO_CLASS_BE,
            IOPriorityClass::IoprioClassIdle => sched::IOPRIO_CLASS_IDLE,
        };
        Ok(IoPrio {
            value: sched::ioprio_value(class_value, level),
            class,
            priority,
        })
    }

    /// Sets the calling process's I/O class and level (IOPRIO_WHO_PROCESS; runc uses the
    /// process group, which can reach beyond the container).
    pub fn set(&self) -> Result<(), SchedError> {
        sched::ioprio_set(Pid::from_raw(0), self.value).map_err(|source| SchedError::IoPriority {
            class: self.class,
            priority: self.priority,
            source,
        })
    }
}

/// The highest CPU number a list may name, as in runc: a bound on the mask we allocate.
const MAX_CPU: usize = 64 * 1024;

impl CpuSet {
    /// Parses a CPU list such as "0-3,7". Spaces around items and empty items are allowed;
    /// a list naming no CPU is not.
    pub fn parse(list: &str) -> Result<CpuSet, String> {
        let err = |reason: String| format!("CPU list {list:?}: {reason}");
        let number = |s: &str| -> Result<usize, String> {
            let n: usize = s
                .trim()
                .parse()
                .map_err(|_| err(format!("{s:?} is not a CPU number")))?;
            if n > MAX_CPU {
                return Err(err(format!("CPU {n} is above the supported {MAX_CPU}")));
            }
            Ok(n)
        };
        let mut mask: Vec<u64> = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (first, last) = match item.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => (number(item)?, number(item)?),
            };
            if first > last {
                return Err(err(format!("range {item:?} runs backwards")));
            }
            if mask.len() <= last / 64 {
                mask.resize(last / 64 + 1, 0);
            }
            for cpu in first..=last {
                mask[cpu / 64] |= 1 << (cpu % 64);
            }
        }
        if mask.iter().all(|&w| w == 0) {
            return Err(err("no CPU in the list".into()));
        }
        Ok(CpuSet {
            list: list.to_string(),
            mask,
        })
    }

    /// Restricts the calling process to these CPUs.
    pub fn set(&self) -> Result<(), SchedError> {
        sched::sched_setaffinity(Pid::from_raw(0), &self.mask).map_err(|source| {
            SchedError::CpuAffinity {
                list: self.list.clone(),
                source,
            }
        })
    }
}

/// Widens the calling process's CPU affinity to every CPU its cpuset cgroup allows (the kernel
/// clamps an all-ones mask to that), so the process does not inherit the runtime's own
/// narrower affinity (`taskset hull run`, a pinned systemd service): since Linux 6.2 joining
/// a cpuset no longer resets it. As runc 1.2+, a failure is only a warning.
pub fn reset_cpu_affinity() {
    // As many CPUs as hull can name at all: the kernel ignores bits beyond its own count.
    let all = [u64::MAX; (MAX_CPU + 1).div_ceil(64)];
    if let Err(e) = sched::sched_setaffinity(Pid::from_raw(0), &all) {
        tracing::warn!("resetting the CPU affinity failed (the process keeps the runtime's): {e}");
    }
}

#[cfg(test)]
mod tests;
