//! cgroup v1 limits: every `linux.resources` field written to the per-controller
//! hierarchies of a legacy or hybrid host, the device rules of [`super::devices`] among them
//! (as the devices.allow and devices.deny writes that take `devices.list` to their state).
//!
//! [`apply`] works in two passes. The first checks every value and reads what the order of
//! the writes depends on (current limits, `devices.list`) into a list of steps; only then are
//! the steps run, so a config with a bad value leaves no half-written limits.
//!
//! Written here rather than through libcgroups 0.7: its v1 controllers are private, and its
//! public v1 `Manager` puts every controller at one path (hull nests a relative path under
//! the caller's cgroup of each hierarchy, which differ: memory is elsewhere on this project's
//! hosts), reads an empty path as the caller's own cgroup, writes kernel memory whether or not
//! the file works, and has no `checkBeforeUpdate`, kernelTCP order or wildcard checks of device
//! rules. libcgroups still provides the stats parsers [`super::stats`] uses.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxRdma, LinuxResources,
};

use super::devices::{self, access_string, DeviceKind, Node, Rule};
use super::{CgroupError, Cgroups};

/// What the kernel prints for "no limit" in a v1 `*limit_in_bytes` file on 4 KiB pages.
const MEMORY_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// Writes `res` into the container's v1 cgroups. `update`: a live container's limits change
/// (`hull update`), so fields absent from `res` are left as they are.
///
/// On create (`update == false`) absent fields are left at the kernel's defaults too, with
/// two exceptions that follow runc: the device list is always written (an absent
/// `devices` means "only the default devices", see [`devices::effective_rules`]), and a
/// cpuset left empty is filled from its parent, since a v1 cpuset child starts empty and
/// takes no task. Call it on create even when the config has no `linux.resources`.
pub fn apply(cg: &Cgroups, res: &LinuxResources, update: bool) -> Result<(), CgroupError> {
    let mut plan = Plan {
        cg,
        update,
        steps: Vec::new(),
    };
    if let Some(memory) = res.memory() {
        plan.memory(memory)?;
    }
    if let Some(cpu) = res.cpu() {
        plan.cpu(cpu)?;
    }
    plan.cpuset(res.cpu().as_ref())?;
    if let Some(pids) = res.pids() {
        plan.pids(pids.limit())?;
    }
    if let Some(block_io) = res.block_io() {
        plan.block_io(block_io)?;
    }
    if let Some(limits) = res.hugepage_limits() {
        plan.hugetlb(limits)?;
    }
    if let Some(network) = res.network() {
        plan.network(network)?;
    }
    if let Some(rdma) = res.rdma() {
        plan.rdma(rdma)?;
    }
    plan.devices(res.devices().as_deref())?;
    for step in plan.steps {
        step.run()?;
    }
    Ok(())
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::Unsupported {
        field: field.into(),
        reason: reason.into(),
    }
}

fn field(name: &str) -> String {
    format!("linux.resources.{name}")
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Io {
        step: "read",
        path: path.to_owned(),
        source,
    })
}

fn read_number<T: std::str::FromStr>(path: &Path) -> Result<T, CgroupError> {
    let text = read(path)?;
    text.trim().parse().map_err(|_| CgroupError::Io {
        step: "parse",
        path: path.to_owned(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a number: {:?}", text.trim()),
        ),
    })
}

/// One write of one value to one cgroup file, in a single write(2) as cgroupfs wants.
#[derive(Debug)]
struct Write {
    field: String,
    path: PathBuf,
    value: String,
}

impl Write {
    fn attempt(&self) -> io::Result<()> {
        fs::OpenOptions::new()
            .write(true)
            .open(&self.path)?
            .write_all(self.value.as_bytes())
    }

    fn error(&self, source: io::Error) -> CgroupError {
        CgroupError::Write {
            field: self.field.clone(),
            path: self.path.clone(),
            value: self.value.clone(),
            source,
        }
    }

    fn run(&self) -> Result<(), CgroupError> {
        self.attempt().map_err(|e| self.error(e))
    }
}

#[derive(Debug)]
enum Step {
    Write(Write),
    /// A knob the kernel has deprecated and may refuse: a refusal is a warning, as in runc.
    WriteOrWarn(Write),
    /// memory.limit_in_bytes: EBUSY means the kernel could not reclaim down to the limit.
    MemoryLimit(Write),
    /// Two values the kernel checks against each other (cfs period and quota, rt period
    /// and runtime): the first, then the second; if the kernel refuses the first with
    /// EINVAL, the second first.
    EitherOrder(Write, Write),
    /// Copies the parent's `cpuset.cpus` or `cpuset.mems` into `dir` if it is still empty,
    /// and first into every empty ancestor, from the top down (runc's rule: an existing
    /// intermediate cgroup left empty, a pod's, refuses every process with ENOSPC).
    FillFromParent {
        dir: PathBuf,
        file: &'static str,
    },
    /// Reads `devices.list` back and checks the kernel holds the state that was asked for.
    CheckDevices {
        dir: PathBuf,
        want: DeviceState,
    },
}

/// Fills `file` (`cpuset.cpus` or `cpuset.mems`) of `dir` and of each ancestor that has it
/// empty, from the first non-empty one down, with its parent's value.
pub(super) fn fill_cpuset_down(dir: &Path, file: &'static str) -> Result<(), CgroupError> {
    let mut empty = Vec::new();
    for level in dir.ancestors() {
        let path = level.join(file);
        if !path.exists() || !read(&path)?.trim().is_empty() {
            break;
        }
        empty.push(level);
    }
    let name = if file == "cpuset.cpus" {
        "cpus"
    } else {
        "mems"
    };
    for level in empty.into_iter().rev() {
        let parent = level.parent().unwrap_or(Path::new("/")).join(file);
        Write {
            field: field(&format!("cpu.{name} (copied from the parent cgroup)")),
            path: level.join(file),
            value: read(&parent)?.trim().to_owned(),
        }
        .run()?;
    }
    Ok(())
}

impl Step {
    fn run(self) -> Result<(), CgroupError> {
        match self {
            Step::Write(w) => w.run(),
            Step::WriteOrWarn(w) => {
                if let Err(e) = w.attempt() {
                    tracing::warn!("{}: ignored: {}", w.field, w.error(e));
                }
                Ok(())
            }
            Step::MemoryLimit(w) => match w.attempt() {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    let dir = w.path.parent().unwrap_or(Path::new("/"));
                    let usage: u64 = read_number(&dir.join("memory.usage_in_bytes"))?;
                    let peak: u64 = read_number(&dir.join("memory.max_usage_in_bytes"))?;
                    Err(invalid(
                        w.field,
                        format!(
                            "cannot set the limit to {}: the kernel could not reclaim enough \
                             (current usage {usage}, peak usage {peak})",
                            w.value
                        ),
                    ))
                }
                res => res.map_err(|e| w.error(e)),
            },
            Step::EitherOrder(first, second) => match first.attempt() {
                Ok(()) => second.run(),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    second.run()?;
                    first.run()
                }
                Err(e) => Err(first.error(e)),
            },
            Step::FillFromParent { dir, file } => fill_cpuset_down(&dir, file),
            Step::CheckDevices { dir, want } => {
                let path = dir.join("devices.list");
                let got =
                    DeviceState::from_list(&read(&path)?).map_err(|reason| CgroupError::Io {
                        step: "parse",
                        path: path.clone(),
                        source: io::Error::new(io::ErrorKind::InvalidData, reason),
                    })?;
                if got.same_as(&want) {
                    return Ok(());
                }
                Err(CgroupError::Io {
                    step: "check the device rules in",
                    path,
                    source: io::Error::other(format!(
                        "the kernel holds [{}], the config asks for [{}]",
                        got.describe(),
                        want.describe()
                    )),
                })
            }
        }
    }
}

/// The checked writes for one `apply`, in the order they must happen.
struct Plan<'a> {
    cg: &'a Cgroups,
    update: bool,
    steps: Vec<Step>,
}

impl<'a> Plan<'a> {
    /// The container's directory in the hierarchy of `controller`; `name` is the field
    /// that needs it.
    fn dir(&self, controller: &str, name: &str) -> Result<&'a Path, CgroupError> {
        self.cg.v1_dir(controller).ok_or_else(|| {
            unsupported(
                field(name),
                format!("the v1 {controller} controller is not mounted on this host"),
            )
        })
    }

    fn write(&self, name: &str, dir: &Path, file: &str, value: impl ToString) -> Write {
        Write {
            field: field(name),
            path: dir.join(file),
            value: value.to_string(),
        }
    }

    /// Fails with Unsupported naming `name` when the kernel lacks `file` in `dir`.
    fn need(&self, name: &str, dir: &Path, file: &str, why: &str) -> Result<(), CgroupError> {
        if dir.join(file).exists() {
            Ok(())
        } else {
            Err(unsupported(
                field(name),
                format!("{file} does not exist: {why}"),
            ))
        }
    }

    fn memory(&mut self, m: &LinuxMemory) -> Result<(), CgroupError> {
        let limit = memory_bytes("memory.limit", m.limit())?;
        let reservation = memory_bytes("memory.reservation", m.reservation())?;
        let mut swap = memory_bytes("memory.swap", m.swap())?;
        let kernel = memory_bytes("memory.kernel", m.kernel())?;
        let kernel_tcp = memory_bytes("memory.kernelTCP", m.kernel_tcp())?;
        // runc reads -1 (which a u64 field holds as u64::MAX) as "unset".
        let swappiness = match m.swappiness() {
            Some(u64::MAX) | None => None,
            Some(v) if v <= 100 => Some(v),
            Some(v) => {
                return Err(invalid(
                    field("memory.swappiness"),
                    format!("{v} is out of range 0..=100"),
                ))
            }
        };
        if let (Some(l), Some(s)) = (limit, swap) {
            if s != -1 && (l == -1 || s < l) {
                return Err(invalid(
                    field("memory.swap"),
                    format!(
                        "{s} is below memory.limit {l}: swap is the memory+swap total, \
                         so it must be at least the limit (or -1)"
                    ),
                ));
            }
        }
        let anything = limit.is_some()
            || reservation.is_some()
            || swap.is_some()
            || kernel.is_some()
            || kernel_tcp.is_some()
            || swappiness.is_some()
            || m.disable_oom_killer().is_some()
            || m.use_hierarchy().is_some();
        if !anything {
            return Ok(());
        }
        let dir = self.dir("memory", "memory")?;
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        let limit_file = dir.join("memory.limit_in_bytes");

        // Before anything is charged: the kernel only changes it while the cgroup is empty.
        if let Some(wanted) = m.use_hierarchy() {
            let current = read(&dir.join("memory.use_hierarchy"))?.trim() == "1";
            if wanted != current {
                let w = self.write(
                    "memory.useHierarchy",
                    dir,
                    "memory.use_hierarchy",
                    u8::from(wanted),
                );
                // Kernels since 5.16 always account hierarchically and refuse 0; runc
                // ignores the field altogether, so a refusal is only a warning.
                self.steps.push(if wanted {
                    Step::Write(w)
                } else {
                    Step::WriteOrWarn(w)
                });
            }
        }

        if swap.is_none() && limit == Some(-1) && memsw.exists() {
            // runc: an unlimited memory limit lifts the memory+swap limit too, which must
            // never be below it.
            swap = Some(-1);
        }
        if swap.is_some() && !memsw.exists() {
            return Err(unsupported(
                field("memory.swap"),
                "memory.memsw.limit_in_bytes does not exist: swap accounting is off on this \
                 host (boot with swapaccount=1)",
            ));
        }
        if self.update && m.check_before_update() == Some(true) {
            if let Some(l) = limit.filter(|l| *l > 0) {
                let usage: u64 = read_number(&dir.join("memory.usage_in_bytes"))?;
                if (l as u64) < usage {
                    return Err(invalid(
                        field("memory.limit"),
                        format!(
                            "{l} is below the current usage {usage} (checkBeforeUpdate is set)"
                        ),
                    ));
                }
            }
        }
        let as_u64 = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
        match (limit, swap) {
            (Some(l), Some(s)) => {
                // The kernel keeps memory+swap >= memory at every moment: raise memsw
                // first when the new total is at least the current limit, else lower the
                // limit first.
                let current: u64 = read_number(&limit_file)?;
                let swap_write = self.write("memory.swap", dir, "memory.memsw.limit_in_bytes", s);
                let limit_write = self.write("memory.limit", dir, "memory.limit_in_bytes", l);
                if as_u64(s) >= current {
                    self.steps.push(Step::Write(swap_write));
                    self.steps.push(Step::MemoryLimit(limit_write));
                } else {
                    self.steps.push(Step::MemoryLimit(limit_write));
                    self.steps.push(Step::Write(swap_write));
                }
            }
            (Some(l), None) => {
                if memsw.exists() {
                    let total: u64 = read_number(&memsw)?;
                    if as_u64(l) > total && total < MEMORY_UNLIMITED {
                        return Err(invalid(
                            field("memory.limit"),
                            format!(
                                "{l} is above the current memory+swap limit {total}; \
                                 set linux.resources.memory.swap as well"
                            ),
                        ));
                    }
                }
                let w = self.write("memory.limit", dir, "memory.limit_in_bytes", l);
                self.steps.push(Step::MemoryLimit(w));
            }
            (None, Some(s)) => {
                let current: u64 = read_number(&limit_file)?;
                if as_u64(s) < current {
                    return Err(invalid(
                        field("memory.swap"),
                        format!(
                            "{s} is below the current memory limit {current}: swap is the \
                             memory+swap total; set linux.resources.memory.limit as well"
                        ),
                    ));
                }
                let w = self.write("memory.swap", dir, "memory.memsw.limit_in_bytes", s);
                self.steps.push(Step::Write(w));
            }
            (None, None) => {}
        }

        if let Some(r) = reservation {
            let w = self.write("memory.reservation", dir, "memory.soft_limit_in_bytes", r);
            self.steps.push(Step::Write(w));
        }
        if let Some(k) = kernel {
            if dir.join("memory.kmem.limit_in_bytes").exists() {
                let w = self.write("memory.kernel", dir, "memory.kmem.limit_in_bytes", k);
                self.steps.push(Step::WriteOrWarn(w));
            } else {
                tracing::warn!(
                    "{}: ignored: this kernel has no memory.kmem.limit_in_bytes",
                    field("memory.kernel")
                );
            }
        }
        if let Some(k) = kernel_tcp {
            if dir.join("memory.kmem.tcp.limit_in_bytes").exists() {
                let w = self.write("memory.kernelTCP", dir, "memory.kmem.tcp.limit_in_bytes", k);
                self.steps.push(Step::Write(w));
            } else {
                tracing::warn!(
                    "{}: ignored: this kernel has no memory.kmem.tcp.limit_in_bytes",
                    field("memory.kernelTCP")
                );
            }
        }
        if let Some(s) = swappiness {
            self.need(
                "memory.swappiness",
                dir,
                "memory.swappiness",
                "no per-cgroup swappiness",
            )?;
            let w = self.write("memory.swappiness", dir, "memory.swappiness", s);
            self.steps.push(Step::Write(w));
        }
        if let Some(disable) = m.disable_oom_killer() {
            let control = read(&dir.join("memory.oom_control"))?;
            let current = control
                .lines()
                .any(|l| l.split_whitespace().eq(["oom_kill_disable", "1"]));
            if disable != current {
                let w = self.write(
                    "memory.disableOOMKiller",
                    dir,
                    "memory.oom_control",
                    u8::from(disable),
                );
                self.steps.push(Step::Write(w));
            }
        }
        Ok(())
    }

    fn cpu(&mut self, c: &LinuxCpu) -> Result<(), CgroupError> {
        // As in runc, 0 means "unset" for shares, quota, period and the realtime values.
        let shares = match c.shares() {
            None | Some(0) => None,
            Some(s) if (2..=262_144).contains(&s) => Some(s),
            Some(s) => {
                return Err(invalid(
                    field("cpu.shares"),
                    format!("{s} is out of range 2..=262144"),
                ))
            }
        };
        let quota = match c.quota() {
            None | Some(0) => None,
            Some(q) if q == -1 || q >= 1000 => Some(q),
            Some(q) => {
                return Err(invalid(
                    field("cpu.quota"),
                    format!("{q} is neither -1 (no limit) nor at least 1000 µs"),
                ))
            }
        };
        let period = match c.period() {
            None | Some(0) => None,
            Some(p) if (1000..=1_000_000).contains(&p) => Some(p),
            Some(p) => {
                return Err(invalid(
                    field("cpu.period"),
                    format!("{p} is out of range 1000..=1000000 µs"),
                ))
            }
        };
        let burst = c.burst();
        if let (Some(b), Some(q)) = (burst, quota) {
            if q > 0 && b > q as u64 {
                return Err(invalid(
                    field("cpu.burst"),
                    format!("{b} is above cpu.quota {q}"),
                ));
            }
        }
        let rt_runtime = match c.realtime_runtime() {
            None | Some(0) => None,
            Some(r) if r >= -1 => Some(r),
            Some(r) => {
                return Err(invalid(
                    field("cpu.realtimeRuntime"),
                    format!("{r} is neither -1 (no limit) nor a positive number of µs"),
                ))
            }
        };
        let rt_period = c.realtime_period().filter(|p| *p != 0);
        if let (Some(r), Some(p)) = (rt_runtime, rt_period) {
            if r > 0 && r as u64 > p {
                return Err(invalid(
                    field("cpu.realtimeRuntime"),
                    format!("{r} is above cpu.realtimePeriod {p}"),
                ));
            }
        }
        let idle = match c.idle() {
            None => None,
            Some(i @ (0 | 1)) => Some(i),
            Some(i) => {
                return Err(invalid(
                    field("cpu.idle"),
                    format!("{i} is neither 0 nor 1"),
                ))
            }
        };
        for (name, list) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
            if let Some(list) = list {
                let ok = |ch: char| ch.is_ascii_digit() || ",-:/".contains(ch);
                if !list.trim().chars().all(ok) {
                    return Err(invalid(
                        field(name),
                        format!("{list:?} is not a list like \"0-3,6\""),
                    ));
                }
            }
        }

        let anything = shares.is_some()
            || quota.is_some()
            || period.is_some()
            || burst.is_some()
            || rt_runtime.is_some()
            || rt_period.is_some()
            || idle.is_some();
        if !anything {
            return Ok(());
        }
        let dir = self.dir("cpu", "cpu")?;
        let no_cfs = "the kernel has no CFS bandwidth control";
        let no_rt = "the kernel has no realtime group scheduling (CONFIG_RT_GROUP_SCHED)";
        if shares.is_some() {
            self.need("cpu.shares", dir, "cpu.shares", "no CFS group scheduling")?;
        }
        if quota.is_some() {
            self.need("cpu.quota", dir, "cpu.cfs_quota_us", no_cfs)?;
        }
        if period.is_some() {
            self.need("cpu.period", dir, "cpu.cfs_period_us", no_cfs)?;
        }
        if burst.is_some() {
            self.need(
                "cpu.burst",
                dir,
                "cpu.cfs_burst_us",
                "the kernel has no CFS burst (5.14+)",
            )?;
        }
        if rt_runtime.is_some() {
            self.need("cpu.realtimeRuntime", dir, "cpu.rt_runtime_us", no_rt)?;
        }
        if rt_period.is_some() {
            self.need("cpu.realtimePeriod", dir, "cpu.rt_period_us", no_rt)?;
        }
        if idle.is_some() {
            self.need(
                "cpu.idle",
                dir,
                "cpu.idle",
                "the kernel has no SCHED_IDLE groups (5.15+)",
            )?;
        }

        // The kernel refuses cpu.shares while the group is idle: leave idle first, and
        // enter it last.
        if let Some(0) = idle {
            self.steps
                .push(Step::Write(self.write("cpu.idle", dir, "cpu.idle", 0)));
        }
        if let Some(s) = shares {
            self.steps
                .push(Step::Write(self.write("cpu.shares", dir, "cpu.shares", s)));
        }
        // burst <= quota always: lower the burst before the quota, raise it after. When
        // only one of them changes, the other is the current value.
        let burst_file = dir.join("cpu.cfs_burst_us");
        match (quota, burst) {
            (Some(q), None) if q > 0 && burst_file.exists() => {
                let current: u64 = read_number(&burst_file)?;
                if current > q as u64 {
                    return Err(invalid(
                        field("cpu.quota"),
                        format!(
                            "{q} is below the current burst {current}; set \
                             linux.resources.cpu.burst as well"
                        ),
                    ));
                }
            }
            (None, Some(b)) if b > 0 => {
                let current: i64 = read_number(&dir.join("cpu.cfs_quota_us"))?;
                if current > 0 && b > current as u64 {
                    return Err(invalid(
                        field("cpu.burst"),
                        format!(
                            "{b} is above the current quota {current}; set \
                             linux.resources.cpu.quota as well"
                        ),
                    ));
                }
            }
            _ => {}
        }
        let mut burst_after = None;
        if let Some(b) = burst {
            let w = self.write("cpu.burst", dir, "cpu.cfs_burst_us", b);
            let current: u64 = read_number(&dir.join("cpu.cfs_burst_us"))?;
            if b <= current {
                self.steps.push(Step::Write(w));
            } else {
                burst_after = Some(w);
            }
        }
        let period_write = period.map(|p| self.write("cpu.period", dir, "cpu.cfs_period_us", p));
        let quota_write = quota.map(|q| self.write("cpu.quota", dir, "cpu.cfs_quota_us", q));
        self.push_pair(period_write, quota_write);
        if let Some(w) = burst_after {
            self.steps.push(Step::Write(w));
        }
        let rt_period_write =
            rt_period.map(|p| self.write("cpu.realtimePeriod", dir, "cpu.rt_period_us", p));
        let rt_runtime_write =
            rt_runtime.map(|r| self.write("cpu.realtimeRuntime", dir, "cpu.rt_runtime_us", r));
        self.push_pair(rt_period_write, rt_runtime_write);
        if let Some(1) = idle {
            self.steps
                .push(Step::Write(self.write("cpu.idle", dir, "cpu.idle", 1)));
        }
        Ok(())
    }

    fn push_pair(&mut self, first: Option<Write>, second: Option<Write>) {
        match (first, second) {
            (Some(a), Some(b)) => self.steps.push(Step::EitherOrder(a, b)),
            (Some(w), None) | (None, Some(w)) => self.steps.push(Step::Write(w)),
            (None, None) => {}
        }
    }

    fn cpuset(&mut self, c: Option<&LinuxCpu>) -> Result<(), CgroupError> {
        let cpus = c
            .and_then(|c| c.cpus().clone())
            .filter(|s| !s.trim().is_empty());
        let mems = c
            .and_then(|c| c.mems().clone())
            .filter(|s| !s.trim().is_empty());
        let dir = match self.cg.v1_dir("cpuset") {
            Some(dir) => dir,
            None if cpus.is_none() && mems.is_none() => return Ok(()),
            None => {
                let name = if cpus.is_some() {
                    "cpu.cpus"
                } else {
                    "cpu.mems"
                };
                return Err(self.dir("cpuset", name).unwrap_err());
            }
        };
        for (name, file, value) in [
            ("cpu.cpus", "cpuset.cpus", &cpus),
            ("cpu.mems", "cpuset.mems", &mems),
        ] {
            if let Some(value) = value {
                check_within_parent(name, dir, file, value)?;
            }
        }
        let files = ["cpuset.cpus", "cpuset.mems"];
        if !self.update {
            // Every level above the container's, parents first: each must have cpus and
            // mems before its child can.
            if let Some(parent) = dir.parent() {
                for file in files {
                    let dir = parent.to_owned();
                    self.steps.push(Step::FillFromParent { dir, file });
                }
            }
        }
        if let Some(cpus) = cpus {
            let w = self.write("cpu.cpus", dir, "cpuset.cpus", cpus.trim());
            self.steps.push(Step::Write(w));
        }
        if let Some(mems) = mems {
            let w = self.write("cpu.mems", dir, "cpuset.mems", mems.trim());
            self.steps.push(Step::Write(w));
        }
        if !self.update {
            for file in files {
                let dir = dir.to_owned();
                self.steps.push(Step::FillFromParent { dir, file });
            }
        }
        Ok(())
    }

    fn pids(&mut self, limit: i64) -> Result<(), CgroupError> {
        // 0 is "not set", as in runc (and as on cgroup2): an update with 0 leaves the
        // current limit; a negative value lifts it.
        if limit == 0 || (limit < 0 && self.cg.v1_dir("pids").is_none()) {
            return Ok(());
        }
        let dir = self.dir("pids", "pids.limit")?;
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".to_owned()
        };
        self.steps.push(Step::Write(self.write(
            "pids.limit",
            dir,
            "pids.max",
            value,
        )));
        Ok(())
    }

    fn block_io(&mut self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        let none = Vec::new();
        let weight_devices = b.weight_device().as_ref().unwrap_or(&none);
        let throttles = [
            ("readBps", "read_bps", b.throttle_read_bps_device()),
            ("writeBps", "write_bps", b.throttle_write_bps_device()),
            ("readIOPS", "read_iops", b.throttle_read_iops_device()),
            ("writeIOPS", "write_iops", b.throttle_write_iops_device()),
        ];
        // As in runc, a weight of 0 means "unset".
        let weight = b.weight().filter(|w| *w != 0);
        let leaf_weight = b.leaf_weight().filter(|w| *w != 0);
        let anything = weight.is_some()
            || leaf_weight.is_some()
            || !weight_devices.is_empty()
            || throttles
                .iter()
                .any(|(_, _, l)| l.as_ref().is_some_and(|l| !l.is_empty()));
        if !anything {
            return Ok(());
        }
        let dir = self.dir("blkio", "blockIO")?;
        // CFQ (removed in 5.0) had blkio.weight and leaf weights; BFQ has blkio.bfq.weight
        // and no leaf weights; other schedulers have neither.
        let (weight_file, device_file, min) = if dir.join("blkio.weight").exists() {
            (Some("blkio.weight"), Some("blkio.weight_device"), 10)
        } else if dir.join("blkio.bfq.weight").exists() {
            (Some("blkio.bfq.weight"), Some("blkio.bfq.weight_device"), 1)
        } else {
            (None, None, 10)
        };
        let leaf = dir.join("blkio.leaf_weight").exists();
        let no_weight = "no I/O scheduler with weights on this host (neither blkio.weight of CFQ \
                         nor blkio.bfq.weight of BFQ exists)";
        let no_leaf = "no I/O scheduler with leaf weights on this host (blkio.leaf_weight \
                       exists only with CFQ)";
        let range = |name: &str, w: u16| {
            if (min..=1000).contains(&w) {
                Ok(())
            } else {
                Err(invalid(
                    field(name),
                    format!("{w} is out of range {min}..=1000"),
                ))
            }
        };
        let mut writes = Vec::new();
        if let Some(w) = weight {
            let file =
                weight_file.ok_or_else(|| unsupported(field("blockIO.weight"), no_weight))?;
            range("blockIO.weight", w)?;
            writes.push(self.write("blockIO.weight", dir, file, w));
        }
        if let Some(w) = leaf_weight {
            if !leaf {
                return Err(unsupported(field("blockIO.leafWeight"), no_leaf));
            }
            range("blockIO.leafWeight", w)?;
            writes.push(self.write("blockIO.leafWeight", dir, "blkio.leaf_weight", w));
        }
        for (i, d) in weight_devices.iter().enumerate() {
            let at = format!("blockIO.weightDevice[{i}]");
            let node = block_device(&at, d.major(), d.minor())?;
            if let Some(w) = d.weight().filter(|w| *w != 0) {
                let name = format!("{at}.weight");
                let file = device_file.ok_or_else(|| unsupported(field(&name), no_weight))?;
                range(&name, w)?;
                writes.push(self.write(&name, dir, file, format!("{node} {w}")));
            }
            if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
                let name = format!("{at}.leafWeight");
                if !leaf {
                    return Err(unsupported(field(&name), no_leaf));
                }
                range(&name, w)?;
                let file = "blkio.leaf_weight_device";
                writes.push(self.write(&name, dir, file, format!("{node} {w}")));
            }
        }
        for (name, file, list) in throttles {
            let file = format!("blkio.throttle.{file}_device");
            for (i, d) in list.iter().flatten().enumerate() {
                let at = format!("blockIO.throttle{}Device[{i}]", capitalise(name));
                let node = block_device(&at, d.major(), d.minor())?;
                let why = "the kernel has no I/O throttling (CONFIG_BLK_DEV_THROTTLING)";
                self.need(&at, dir, &file, why)?;
                writes.push(self.write(&at, dir, &file, format!("{node} {}", d.rate())));
            }
        }
        self.steps.extend(writes.into_iter().map(Step::Write));
        Ok(())
    }

    fn hugetlb(&mut self, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
        if limits.is_empty() {
            return Ok(());
        }
        let Some(dir) = self.cg.v1_dir("hugetlb") else {
            if self.cg.unified.is_some() {
                // A hybrid host with hugetlb on the unified side: v2.rs writes these.
                return Ok(());
            }
            return Err(unsupported(
                field("hugepageLimits"),
                "the hugetlb controller is not mounted on this host",
            ));
        };
        for (i, h) in limits.iter().enumerate() {
            let at = format!("hugepageLimits[{i}]");
            let size = h.page_size();
            let well_formed = size
                .strip_suffix('B')
                .and_then(|s| s.strip_suffix(['K', 'M', 'G']))
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            let file = format!("hugetlb.{size}.limit_in_bytes");
            if !well_formed || !dir.join(&file).exists() {
                let reason = format!(
                    "page size {size:?} is not one this host has ({})",
                    hugetlb_sizes(dir).join(", ")
                );
                return Err(invalid(field(&format!("{at}.pageSize")), reason));
            }
            if h.limit() < -1 {
                return Err(invalid(
                    field(&format!("{at}.limit")),
                    format!("{} is neither -1 (no limit) nor a byte count", h.limit()),
                ));
            }
            let w = self.write(&format!("{at}.limit"), dir, &file, h.limit());
            self.steps.push(Step::Write(w));
        }
        Ok(())
    }

    fn network(&mut self, n: &LinuxNetwork) -> Result<(), CgroupError> {
        // As in runc, class ID 0 means "unset".
        if let Some(id) = n.class_id().filter(|id| *id != 0) {
            let dir = self.dir("net_cls", "network.classID")?;
            let w = self.write("network.classID", dir, "net_cls.classid", id);
            self.steps.push(Step::Write(w));
        }
        let priorities = n.priorities().as_deref().unwrap_or_default();
        if priorities.is_empty() {
            return Ok(());
        }
        let dir = self.dir("net_prio", "network.priorities")?;
        for (i, p) in priorities.iter().enumerate() {
            let at = format!("network.priorities[{i}]");
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(invalid(
                    field(&format!("{at}.name")),
                    format!("{:?} is not an interface name", p.name()),
                ));
            }
            let value = format!("{} {}", p.name(), p.priority());
            self.steps.push(Step::Write(self.write(
                &at,
                dir,
                "net_prio.ifpriomap",
                value,
            )));
        }
        Ok(())
    }

    fn rdma(
        &mut self,
        rdma: &std::collections::HashMap<String, LinuxRdma>,
    ) -> Result<(), CgroupError> {
        if rdma.is_empty() {
            return Ok(());
        }
        let dir = self.dir("rdma", "rdma")?;
        let mut devices: Vec<_> = rdma.iter().collect();
        devices.sort_by(|a, b| a.0.cmp(b.0));
        for (device, limits) in devices {
            let at = format!("rdma.{device}");
            if device.is_empty() || device.contains(char::is_whitespace) {
                return Err(invalid(field(&at), "not an RDMA device name"));
            }
            let mut value = device.clone();
            if let Some(h) = limits.hca_handles() {
                value.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = limits.hca_objects() {
                value.push_str(&format!(" hca_object={o}"));
            }
            if value.len() == device.len() {
                return Err(invalid(
                    field(&at),
                    "neither hcaHandles nor hcaObjects is set",
                ));
            }
            self.steps
                .push(Step::Write(self.write(&at, dir, "rdma.max", value)));
        }
        Ok(())
    }

    fn devices(&mut self, rules: Option<&[LinuxDeviceCgroup]>) -> Result<(), CgroupError> {
        if self.update && rules.is_none() {
            return Ok(());
        }
        let rules = rules.unwrap_or_default();
        let want = DeviceState::target(rules)?;
        if hull_sys::proc::in_user_namespace() {
            // The kernel refuses device cgroup writes from a user namespace; runc skips them.
            tracing::debug!("in a user namespace: the device rules are left to the parent cgroup");
            return Ok(());
        }
        let Some(dir) = self.cg.v1_dir("devices") else {
            if rules.is_empty() {
                tracing::warn!(
                    "no v1 devices hierarchy: the container's device access is not limited"
                );
                return Ok(());
            }
            return Err(self.dir("devices", "devices").unwrap_err());
        };
        let list = dir.join("devices.list");
        let current = DeviceState::from_list(&read(&list)?).map_err(|reason| CgroupError::Io {
            step: "parse",
            path: list.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, reason),
        })?;
        // A fresh cgroup has no children, so a reset is fine and gives devices.list the
        // config's order. A live one may have children (the kernel then refuses "a") and
        // must not lose access in between: change only what differs, as runc does.
        for (file, line) in current.transition(&want, !self.update) {
            let w = self.write("devices", dir, file, line);
            self.steps.push(Step::Write(w));
        }
        self.steps.push(Step::CheckDevices {
            dir: dir.to_owned(),
            want,
        });
        Ok(())
    }
}

/// Refuses a cpuset list the kernel would refuse because the nearest ancestor with a
/// non-empty list (the parent, once filled) does not have all of it.
fn check_within_parent(name: &str, dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let Some(wanted) = parse_id_list(value) else {
        return Ok(()); // strides ("0-7:2/4"): left to the kernel
    };
    let parent = dir
        .ancestors()
        .skip(1)
        .map_while(|d| fs::read_to_string(d.join(file)).ok())
        .find(|v| !v.trim().is_empty());
    let Some(parent) = parent else {
        return Ok(());
    };
    let Some(have) = parse_id_list(&parent) else {
        return Ok(());
    };
    if wanted.iter().all(|id| have.contains(id)) {
        return Ok(());
    }
    Err(invalid(
        field(name),
        format!(
            "{:?} is not within the parent cgroup's {:?}",
            value.trim(),
            parent.trim()
        ),
    ))
}

/// The ids of a kernel list like "0-3,6"; None for forms this does not read (strides) or
/// absurdly large ranges.
fn parse_id_list(list: &str) -> Option<std::collections::BTreeSet<u32>> {
    let mut ids = std::collections::BTreeSet::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        if b < a || b - a > 1 << 16 {
            return None;
        }
        ids.extend(a..=b);
    }
    Some(ids)
}

/// A byte count where 0 means "unset" (as in runc) and -1 "no limit".
fn memory_bytes(name: &str, value: Option<i64>) -> Result<Option<i64>, CgroupError> {
    match value {
        None | Some(0) => Ok(None),
        Some(v) if v >= -1 => Ok(Some(v)),
        Some(v) => Err(invalid(
            field(name),
            format!("{v} is neither -1 (no limit) nor a byte count"),
        )),
    }
}

fn block_device(at: &str, major: i64, minor: i64) -> Result<String, CgroupError> {
    if major < 0 || minor < 0 || major > i64::from(u32::MAX) || minor > i64::from(u32::MAX) {
        return Err(invalid(
            field(at),
            format!("{major}:{minor} is not a block device number"),
        ));
    }
    Ok(format!("{major}:{minor}"))
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The page sizes whose hugetlb limit files `dir` has, as the files name them.
fn hugetlb_sizes(dir: &Path) -> Vec<String> {
    let mut sizes: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name
                .strip_prefix("hugetlb.")?
                .strip_suffix(".limit_in_bytes")?;
            Some(size.to_owned())
        })
        .collect();
    sizes.sort();
    sizes
}

// ---- devices ----------------------------------------------------------------------------

/// One exception in a device cgroup: allowed in a deny-by-default cgroup, denied in an
/// allow-by-default one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exception {
    node: Node,
    access: u8,
    /// The part of `access` that the config's own rules gave (the rest is from defaults).
    from_config: u8,
    /// The index of the first config rule that added to it: the position in the config.
    first_rule: Option<usize>,
}

/// What a v1 device cgroup holds, as the kernel keeps it: a default and an ordered list of
/// exceptions, merged per node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DeviceState {
    allow_all: bool,
    exceptions: Vec<Exception>,
}

impl DeviceState {
    /// The state the config's rules plus the defaults ask for, starting from "deny all" as
    /// runc does.
    fn target(rules: &[LinuxDeviceCgroup]) -> Result<DeviceState, CgroupError> {
        let mut state = DeviceState::default();
        for (index, rule) in devices::effective_rules(rules)? {
            state.apply(&rule, index)?;
        }
        Ok(state)
    }

    /// Applies one rule as the kernel would: `index` is the config rule it comes from,
    /// `None` for a default.
    fn apply(&mut self, rule: &Rule, index: Option<usize>) -> Result<(), CgroupError> {
        if rule.is_reset() {
            self.allow_all = rule.allow;
            self.exceptions.clear();
            return Ok(());
        }
        rule.nodes()
            .into_iter()
            .try_for_each(|node| self.apply_node(rule, node, index))
    }

    /// Applies `rule` to one of its nodes.
    fn apply_node(
        &mut self,
        rule: &Rule,
        node: Node,
        index: Option<usize>,
    ) -> Result<(), CgroupError> {
        let from_config = if index.is_some() { rule.access } else { 0 };
        if rule.allow != self.allow_all {
            match self.exceptions.iter_mut().find(|e| e.node == node) {
                Some(e) => {
                    e.access |= rule.access;
                    e.from_config |= from_config;
                    e.first_rule = e.first_rule.or(index);
                }
                None => self.exceptions.push(Exception {
                    node,
                    access: rule.access,
                    from_config,
                    first_rule: index,
                }),
            }
            return Ok(());
        }
        // The kernel removes only an exception for exactly this node: a wildcard exception
        // that also covers it stays, and the rule would not take full effect.
        let wildcards = [
            Node {
                major: None,
                ..node
            },
            Node {
                minor: None,
                ..node
            },
            Node {
                major: None,
                minor: None,
                ..node
            },
        ];
        for w in wildcards.iter().filter(|w| **w != node) {
            let Some(e) = self.exceptions.iter().find(|e| e.node == *w) else {
                continue;
            };
            let overlap = e.access & rule.access;
            if overlap == 0 {
                continue;
            }
            // A default "c *:* m" still allowing mknod of a node the config denies is
            // harmless: the node cannot be opened. Anything else is refused, as in runc.
            if self.allow_all || e.from_config & overlap != 0 || overlap != devices::MKNOD {
                let verb = if rule.allow { "allow" } else { "deny" };
                return Err(invalid(
                    index.map_or(field("devices"), |i| devices::field(i, "")),
                    format!(
                        "cannot {verb} {node} {}: the rule {} {} covers it, and a v1 device \
                         cgroup cannot make an exception inside a wildcard rule",
                        access_string(rule.access),
                        e.node,
                        access_string(e.access)
                    ),
                ));
            }
            tracing::debug!("{node}: mknod stays allowed by the default rule {}", e.node);
        }
        if let Some(pos) = self.exceptions.iter().position(|e| e.node == node) {
            let e = &mut self.exceptions[pos];
            e.access &= !rule.access;
            e.from_config &= !rule.access;
            if e.access == 0 {
                self.exceptions.remove(pos);
            }
        }
        Ok(())
    }

    /// The exceptions in the order to write them: those the config names, in the config's
    /// order, then the defaults. The kernel lists exceptions in the order they were
    /// written, and the OCI validation suite compares devices.list with the config's
    /// rules position by position.
    fn ordered(&self) -> Vec<&Exception> {
        let mut out: Vec<&Exception> = self.exceptions.iter().collect();
        out.sort_by_key(|e| e.first_rule.unwrap_or(usize::MAX));
        out
    }

    fn access_of(&self, node: Node) -> u8 {
        self.exceptions
            .iter()
            .find(|e| e.node == node)
            .map_or(0, |e| e.access)
    }

    /// Parses devices.list. An allow-by-default cgroup prints only `a *:* rwm` (its deny
    /// exceptions are not shown).
    fn from_list(list: &str) -> Result<DeviceState, String> {
        let mut state = DeviceState::default();
        for line in list.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || format!("unexpected line {line:?}");
            let mut parts = line.split_whitespace();
            let (Some(kind), Some(numbers), Some(access), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            if kind == "a" {
                return Ok(DeviceState {
                    allow_all: true,
                    exceptions: Vec::new(),
                });
            }
            let kind = match kind {
                "b" => DeviceKind::Block,
                "c" => DeviceKind::Char,
                _ => return Err(bad()),
            };
            let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
            let number = |n: &str| match n {
                "*" => Ok(None),
                n => n.parse().map(Some).map_err(|_| bad()),
            };
            let node = Node {
                kind,
                major: number(major)?,
                minor: number(minor)?,
            };
            let access = devices::parse_access(access).map_err(|_| bad())?;
            state.exceptions.push(Exception {
                node,
                access,
                from_config: 0,
                first_rule: None,
            });
        }
        Ok(state)
    }

    /// The (file, line) writes that take a cgroup in state `self` to `want`. `reset`: start
    /// from "a", the only way when the default changes or is allow (whose exceptions
    /// devices.list does not show).
    fn transition(&self, want: &DeviceState, reset: bool) -> Vec<(&'static str, String)> {
        let (add_file, drop_file) = if want.allow_all {
            ("devices.deny", "devices.allow")
        } else {
            ("devices.allow", "devices.deny")
        };
        let mut out = Vec::new();
        let reset = reset || self.allow_all || want.allow_all;
        if reset {
            out.push((drop_file, "a".to_owned()));
        } else {
            for e in &self.exceptions {
                let dropped = e.access & !want.access_of(e.node);
                if dropped != 0 {
                    out.push((drop_file, format!("{} {}", e.node, access_string(dropped))));
                }
            }
        }
        for e in want.ordered() {
            let gained = if reset {
                e.access
            } else {
                e.access & !self.access_of(e.node)
            };
            if gained != 0 {
                out.push((add_file, format!("{} {}", e.node, access_string(gained))));
            }
        }
        out
    }

    /// Whether the kernel's state (read back from devices.list) is `want`. For an
    /// allow-by-default cgroup only the default can be seen.
    fn same_as(&self, want: &DeviceState) -> bool {
        if self.allow_all || want.allow_all {
            return self.allow_all == want.allow_all;
        }
        let mut got: Vec<(Node, u8)> = self.exceptions.iter().map(|e| (e.node, e.access)).collect();
        let mut wanted: Vec<(Node, u8)> =
            want.exceptions.iter().map(|e| (e.node, e.access)).collect();
        got.sort();
        wanted.sort();
        got == wanted
    }

    fn describe(&self) -> String {
        if self.allow_all {
            return "a *:* rwm".to_owned();
        }
        self.exceptions
            .iter()
            .map(|e| format!("{} {}", e.node, access_string(e.access)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hierarchy;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// Cgroups made for one test in one v1 hierarchy, under this process's own cgroup there
    /// (never written to itself); removed, children first, when dropped.
    struct Scratch {
        controller: &'static str,
        dirs: Vec<PathBuf>,
    }

    impl Scratch {
        /// None when the host has no such v1 hierarchy or we may not make cgroups in it.
        fn new(controller: &'static str) -> Option<Scratch> {
            let own = fs::read_to_string("/proc/self/cgroup").ok()?;
            let path = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                ctrls
                    .split(',')
                    .any(|c| c == controller)
                    .then(|| path.to_owned())
            })?;
            let base = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'));
            let mut s = Scratch {
                controller,
                dirs: Vec::new(),
            };
            s.child(&base).ok()?;
            Some(s)
        }

        fn child(&mut self, parent: &Path) -> io::Result<PathBuf> {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = parent.join(format!("hulltest-{}-{n}", std::process::id()));
            fs::create_dir(&dir)?;
            self.dirs.push(dir.clone());
            Ok(dir)
        }

        fn dir(&self) -> &Path {
            &self.dirs[0]
        }

        fn hierarchy(&self, dir: &Path) -> Hierarchy {
            Hierarchy {
                controllers: vec![self.controller.to_owned()],
                dir: dir.to_owned(),
            }
        }

        fn cgroups(&self) -> Cgroups {
            Cgroups {
                v1: vec![self.hierarchy(self.dir())],
                created: vec![self.dir().to_owned()],
                ..Default::default()
            }
        }

        fn read(&self, file: &str) -> String {
            fs::read_to_string(self.dir().join(file))
                .unwrap()
                .trim()
                .to_owned()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            for dir in self.dirs.iter().rev() {
                for _ in 0..50 {
                    match fs::remove_dir(dir) {
                        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                            std::thread::sleep(std::time::Duration::from_millis(20))
                        }
                        _ => break,
                    }
                }
            }
        }
    }

    macro_rules! scratch {
        ($controller:expr) => {
            match Scratch::new($controller) {
                Some(s) => s,
                None => {
                    hull_testing::skip(
                        "cgroup-v1",
                        &format!("no v1 {} hierarchy we may write to", $controller),
                    );
                    return;
                }
            }
        };
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn field_of(e: &CgroupError) -> &str {
        match e {
            CgroupError::Invalid { field, .. }
            | CgroupError::Unsupported { field, .. }
            | CgroupError::Write { field, .. } => field,
            _ => "",
        }
    }

    const MB: u64 = 1 << 20;

    #[test]
    fn memory_limit_and_swap_raise_lower_and_lift() {
        let s = scratch!("memory");
        let cg = s.cgroups();
        let mem = |limit: i64, swap: i64| {
            res(&format!(
                r#"{{"memory":{{"limit":{limit},"swap":{swap}}}}}"#
            ))
        };

        apply(&cg, &mem(64 << 20, 128 << 20), false).unwrap();
        assert_eq!(s.read("memory.limit_in_bytes"), (64 * MB).to_string());
        assert_eq!(
            s.read("memory.memsw.limit_in_bytes"),
            (128 * MB).to_string()
        );

        // Raising the limit above the old memory+swap total needs memsw written first.
        apply(&cg, &mem(256 << 20, 512 << 20), true).unwrap();
        assert_eq!(s.read("memory.limit_in_bytes"), (256 * MB).to_string());
        assert_eq!(
            s.read("memory.memsw.limit_in_bytes"),
            (512 * MB).to_string()
        );

        // Lowering memsw below the old limit needs the limit written first.
        apply(&cg, &mem(32 << 20, 48 << 20), true).unwrap();
        assert_eq!(s.read("memory.limit_in_bytes"), (32 * MB).to_string());
        assert_eq!(s.read("memory.memsw.limit_in_bytes"), (48 * MB).to_string());

        // An unlimited limit without swap lifts memsw too (runc), in the order that works.
        apply(&cg, &res(r#"{"memory":{"limit":-1}}"#), true).unwrap();
        assert_eq!(
            s.read("memory.limit_in_bytes"),
            MEMORY_UNLIMITED.to_string()
        );
        assert_eq!(
            s.read("memory.memsw.limit_in_bytes"),
            MEMORY_UNLIMITED.to_string()
        );
    }

    #[test]
    fn memory_kernel_tcp_reservation_swappiness_and_oom() {
        let s = scratch!("memory");
        let cg = s.cgroups();
        let r = res(
            r#"{"memory":{"kernel":33554432,"kernelTCP":16777216,"reservation":33554432,
            "swappiness":10,"disableOOMKiller":true,"useHierarchy":true}}"#,
        );
        apply(&cg, &r, false).unwrap();
        assert_eq!(
            s.read("memory.kmem.tcp.limit_in_bytes"),
            (16 * MB).to_string()
        );
        assert_eq!(s.read("memory.soft_limit_in_bytes"), (32 * MB).to_string());
        assert_eq!(s.read("memory.swappiness"), "10");
        assert!(s.read("memory.oom_control").contains("oom_kill_disable 1"));
        assert_eq!(s.read("memory.use_hierarchy"), "1");

        apply(&cg, &res(r#"{"memory":{"disableOOMKiller":false}}"#), true).unwrap();
        assert!(s.read("memory.oom_control").contains("oom_kill_disable 0"));
        // Fields absent from an update stay as they are.
        assert_eq!(
            s.read("memory.kmem.tcp.limit_in_bytes"),
            (16 * MB).to_string()
        );
        assert_eq!(s.read("memory.swappiness"), "10");

        // This kernel always accounts hierarchically: false is a warning, as runc ignores it.
        apply(&cg, &res(r#"{"memory":{"useHierarchy":false}}"#), true).unwrap();
        assert_eq!(s.read("memory.use_hierarchy"), "1");
    }

    #[test]
    fn invalid_memory_values_are_refused_before_any_write() {
        let s = scratch!("memory");
        let cg = s.cgroups();
        let unlimited = MEMORY_UNLIMITED.to_string();
        let cases = [
            (
                r#"{"memory":{"limit":67108864,"swappiness":200}}"#,
                "linux.resources.memory.swappiness",
            ),
            (
                r#"{"memory":{"limit":67108864,"swap":33554432}}"#,
                "linux.resources.memory.swap",
            ),
            (r#"{"memory":{"limit":-5}}"#, "linux.resources.memory.limit"),
            (
                r#"{"memory":{"limit":67108864,"kernelTCP":-7}}"#,
                "linux.resources.memory.kernelTCP",
            ),
        ];
        for (json, want) in cases {
            let err = apply(&cg, &res(json), false).unwrap_err();
            assert!(matches!(err, CgroupError::Invalid { .. }), "{json}: {err}");
            assert_eq!(field_of(&err), want, "{json}: {err}");
            assert_eq!(s.read("memory.limit_in_bytes"), unlimited, "{json}");
        }
        let err = apply(&cg, &res(r#"{"memory":{"swappiness":200}}"#), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.resources.memory.swappiness: 200 is out of range 0..=100"
        );
        // u64::MAX is -1, "unset", as in runc.
        apply(
            &cg,
            &res(r#"{"memory":{"swappiness":18446744073709551615}}"#),
            false,
        )
        .unwrap();
    }

    #[test]
    fn a_bad_value_in_one_controller_leaves_the_others_unwritten() {
        let m = scratch!("memory");
        let c = scratch!("cpu");
        let cg = Cgroups {
            v1: vec![m.hierarchy(m.dir()), c.hierarchy(c.dir())],
            ..Default::default()
        };
        let before = c.read("cpu.shares");
        let r = res(r#"{"memory":{"limit":67108864},"cpu":{"shares":1}}"#);
        let err = apply(&cg, &r, true).unwrap_err();
        assert_eq!(field_of(&err), "linux.resources.cpu.shares", "{err}");
        assert_eq!(
            m.read("memory.limit_in_bytes"),
            MEMORY_UNLIMITED.to_string()
        );
        assert_eq!(c.read("cpu.shares"), before);
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        // A plain directory standing in for the cgroup: the check reads usage and writes
        // nothing.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hull-v1-{}-{n}", std::process::id()));
        fs::create_dir(&dir).unwrap();
        struct Rm(PathBuf);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let _rm = Rm(dir.clone());
        fs::write(dir.join("memory.limit_in_bytes"), "1073741824").unwrap();
        fs::write(dir.join("memory.usage_in_bytes"), "50000000").unwrap();
        fs::write(dir.join("memory.use_hierarchy"), "1").unwrap();
        let cg = Cgroups {
            v1: vec![Hierarchy {
                controllers: vec!["memory".into()],
                dir: dir.clone(),
            }],
            ..Default::default()
        };
        let r = res(r#"{"memory":{"limit":10000000,"checkBeforeUpdate":true}}"#);
        let err = apply(&cg, &r, true).unwrap_err();
        assert!(matches!(err, CgroupError::Invalid { .. }), "{err}");
        assert_eq!(field_of(&err), "linux.resources.memory.limit");
        assert!(err.to_string().contains("50000000"), "{err}");
        let limit = fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap();
        assert_eq!(limit, "1073741824");
        // Above usage, or without the flag, the limit is written.
        let r = res(r#"{"memory":{"limit":60000000,"checkBeforeUpdate":true}}"#);
        apply(&cg, &r, true).unwrap();
        let limit = fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap();
        assert!(limit.starts_with("60000000"), "{limit}");
    }

    #[test]
    fn pids_limit_and_max() {
        let s = scratch!("pids");
        let cg = s.cgroups();
        apply(&cg, &res(r#"{"pids":{"limit":10}}"#), false).unwrap();
        assert_eq!(s.read("pids.max"), "10");
        // 0 is "not set": the limit stays.
        apply(&cg, &res(r#"{"pids":{"limit":0}}"#), true).unwrap();
        assert_eq!(s.read("pids.max"), "10");
        apply(&cg, &res(r#"{"pids":{"limit":7}}"#), true).unwrap();
        assert_eq!(s.read("pids.max"), "7");
        apply(&cg, &res(r#"{"pids":{"limit":-1}}"#), true).unwrap();
        assert_eq!(s.read("pids.max"), "max");
    }

    #[test]
    fn cpu_shares_quota_period_burst_and_idle() {
        let s = scratch!("cpu");
        let cg = s.cgroups();
        let r = res(r#"{"cpu":{"shares":512,"period":50000,"quota":25000,"burst":10000}}"#);
        apply(&cg, &r, false).unwrap();
        assert_eq!(s.read("cpu.shares"), "512");
        assert_eq!(s.read("cpu.cfs_period_us"), "50000");
        assert_eq!(s.read("cpu.cfs_quota_us"), "25000");
        assert_eq!(s.read("cpu.cfs_burst_us"), "10000");

        // Shares and idle together: shares first, as the kernel refuses shares while idle
        // (an idle group then reads its shares as 3).
        apply(&cg, &res(r#"{"cpu":{"shares":256,"idle":1}}"#), true).unwrap();
        assert_eq!(s.read("cpu.idle"), "1");

        // shares is refused while idle: idle must be left first.
        apply(&cg, &res(r#"{"cpu":{"shares":1024,"idle":0}}"#), true).unwrap();
        assert_eq!(s.read("cpu.shares"), "1024");
        assert_eq!(s.read("cpu.idle"), "0");

        // A quota below the current burst: the burst must be lowered first.
        apply(&cg, &res(r#"{"cpu":{"quota":5000,"burst":0}}"#), true).unwrap();
        assert_eq!(s.read("cpu.cfs_quota_us"), "5000");
        assert_eq!(s.read("cpu.cfs_burst_us"), "0");
        // And a burst above the current quota comes after the new quota.
        apply(&cg, &res(r#"{"cpu":{"quota":40000,"burst":30000}}"#), true).unwrap();
        assert_eq!(s.read("cpu.cfs_quota_us"), "40000");
        assert_eq!(s.read("cpu.cfs_burst_us"), "30000");

        // One of them alone must fit the other's current value.
        let err = apply(&cg, &res(r#"{"cpu":{"quota":20000}}"#), true).unwrap_err();
        assert_eq!(field_of(&err), "linux.resources.cpu.quota", "{err}");
        let err = apply(&cg, &res(r#"{"cpu":{"burst":50000}}"#), true).unwrap_err();
        assert_eq!(field_of(&err), "linux.resources.cpu.burst", "{err}");
        assert_eq!(s.read("cpu.cfs_quota_us"), "40000");

        apply(&cg, &res(r#"{"cpu":{"quota":-1}}"#), true).unwrap();
        assert_eq!(s.read("cpu.cfs_quota_us"), "-1");

        for (json, want) in [
            (r#"{"cpu":{"quota":10}}"#, "linux.resources.cpu.quota"),
            (r#"{"cpu":{"period":10}}"#, "linux.resources.cpu.period"),
            (
                r#"{"cpu":{"quota":5000,"burst":6000}}"#,
                "linux.resources.cpu.burst",
            ),
            (r#"{"cpu":{"idle":2}}"#, "linux.resources.cpu.idle"),
            (r#"{"cpu":{"shares":300000}}"#, "linux.resources.cpu.shares"),
        ] {
            let err = apply(&cg, &res(json), true).unwrap_err();
            assert_eq!(field_of(&err), want, "{json}: {err}");
        }
        assert_eq!(s.read("cpu.cfs_quota_us"), "-1");
        assert_eq!(s.read("cpu.shares"), "1024");
    }

    #[test]
    fn cpu_period_and_quota_in_the_order_a_limited_parent_accepts() {
        let mut s = scratch!("cpu");
        let parent = s.dir().to_owned();
        fs::write(parent.join("cpu.cfs_quota_us"), "50000").unwrap();
        let child = s.child(&parent).unwrap();
        let cg = Cgroups {
            v1: vec![s.hierarchy(&child)],
            ..Default::default()
        };
        apply(
            &cg,
            &res(r#"{"cpu":{"period":100000,"quota":50000}}"#),
            false,
        )
        .unwrap();
        // Period first would make the child's ratio 1.0, above the parent's 0.5: the
        // kernel refuses it, so the quota goes first.
        apply(&cg, &res(r#"{"cpu":{"period":50000,"quota":25000}}"#), true).unwrap();
        let read = |f: &str| fs::read_to_string(child.join(f)).unwrap().trim().to_owned();
        assert_eq!(read("cpu.cfs_period_us"), "50000");
        assert_eq!(read("cpu.cfs_quota_us"), "25000");
    }

    #[test]
    fn cpu_realtime() {
        let s = scratch!("cpu");
        hull_testing::skip_unless!(
            s.dir().join("cpu.rt_runtime_us").exists(),
            "rt-group-sched",
            "the kernel has no cpu.rt_runtime_us (CONFIG_RT_GROUP_SCHED)"
        );
        let cg = s.cgroups();
        let r = res(r#"{"cpu":{"realtimePeriod":500000,"realtimeRuntime":10000}}"#);
        apply(&cg, &r, false).unwrap();
        assert_eq!(s.read("cpu.rt_period_us"), "500000");
        assert_eq!(s.read("cpu.rt_runtime_us"), "10000");
        let r = res(r#"{"cpu":{"realtimePeriod":5000,"realtimeRuntime":10000}}"#);
        let err = apply(&cg, &r, true).unwrap_err();
        assert_eq!(
            field_of(&err),
            "linux.resources.cpu.realtimeRuntime",
            "{err}"
        );
    }

    #[test]
    fn cpuset_written_and_filled_from_parents() {
        let mut s = scratch!("cpuset");
        let top = s.dir().to_owned();
        let leaf = s.child(&top).unwrap();
        let cg = Cgroups {
            v1: vec![s.hierarchy(&leaf)],
            created: vec![top.clone(), leaf.clone()],
            ..Default::default()
        };
        let root_cpus = fs::read_to_string(top.parent().unwrap().join("cpuset.cpus")).unwrap();
        let read = |d: &Path, f: &str| fs::read_to_string(d.join(f)).unwrap().trim().to_owned();
        assert_eq!(
            read(&top, "cpuset.cpus"),
            "",
            "a new v1 cpuset starts empty"
        );

        apply(&cg, &res(r#"{"cpu":{"cpus":"0"}}"#), false).unwrap();
        assert_eq!(read(&top, "cpuset.cpus"), root_cpus.trim());
        assert_eq!(read(&leaf, "cpuset.cpus"), "0");
        assert_eq!(read(&leaf, "cpuset.mems"), read(&top, "cpuset.mems"));
        assert!(!read(&leaf, "cpuset.mems").is_empty());

        apply(&cg, &res(r#"{"cpu":{"mems":"0"}}"#), true).unwrap();
        assert_eq!(read(&leaf, "cpuset.mems"), "0");
        assert_eq!(read(&leaf, "cpuset.cpus"), "0");

        let err = apply(&cg, &res(r#"{"cpu":{"cpus":"0,4096"}}"#), true).unwrap_err();
        assert_eq!(field_of(&err), "linux.resources.cpu.cpus", "{err}");
        assert!(err.to_string().contains("not within"), "{err}");
        assert_eq!(read(&leaf, "cpuset.cpus"), "0");
        let err = apply(&cg, &res(r#"{"cpu":{"cpus":"zero"}}"#), true).unwrap_err();
        assert_eq!(field_of(&err), "linux.resources.cpu.cpus", "{err}");
    }

    fn devices_list(s: &Scratch) -> Vec<String> {
        s.read("devices.list").lines().map(str::to_owned).collect()
    }

    const DEFAULT_LIST: [&str; 11] = [
        "c *:* m",
        "b *:* m",
        "c 1:3 rwm",
        "c 1:8 rwm",
        "c 1:7 rwm",
        "c 5:0 rwm",
        "c 1:5 rwm",
        "c 1:9 rwm",
        "c 136:* rwm",
        "c 5:2 rwm",
        "c 10:200 rwm",
    ];

    #[test]
    fn devices_list_has_the_config_rules_in_order_then_the_defaults() {
        let s = scratch!("devices");
        let cg = s.cgroups();
        // The rules of the validation suite's linux_cgroups_devices.
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"},
            {"allow":true,"type":"b","major":8,"minor":20,"access":"rw"},
            {"allow":true,"type":"b","major":10,"minor":200,"access":"r"}]}"#);
        apply(&cg, &r, false).unwrap();
        let mut want = vec!["c 10:229 rwm", "b 8:20 rw", "b 10:200 r"];
        want.extend(DEFAULT_LIST);
        assert_eq!(devices_list(&s), want);

        // An update changes only what differs: no reset, no moment without /dev/null.
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":10,"minor":229,"access":"r"},
            {"allow":true,"type":"c","major":4,"minor":1,"access":"rw"}]}"#);
        apply(&cg, &r, true).unwrap();
        let mut want = vec!["c 10:229 r"];
        want.extend(DEFAULT_LIST);
        want.push("c 4:1 rw");
        assert_eq!(devices_list(&s), want);

        // Absent from an update: untouched.
        apply(&cg, &res(r#"{"pids":null}"#), true).unwrap();
        assert_eq!(devices_list(&s), want);
    }

    #[test]
    fn devices_default_only_and_a_deny_of_a_default_wins() {
        let s = scratch!("devices");
        let cg = s.cgroups();
        apply(&cg, &res("{}"), false).unwrap();
        assert_eq!(devices_list(&s), DEFAULT_LIST);

        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":false,"type":"c","major":136,"access":"rwm"}]}"#);
        apply(&cg, &r, false).unwrap();
        let list = devices_list(&s);
        assert!(!list.iter().any(|l| l.starts_with("c 1:3 ")), "{list:?}");
        assert!(!list.iter().any(|l| l.starts_with("c 136:")), "{list:?}");
        assert!(list.contains(&"c 1:5 rwm".to_owned()), "{list:?}");

        // An allow-all config: the default is allow, with the config's denies.
        let r = res(r#"{"devices":[{"allow":true,"access":"rwm"},
            {"allow":false,"type":"b","major":8,"minor":0,"access":"w"}]}"#);
        apply(&cg, &r, true).unwrap();
        assert_eq!(devices_list(&s), ["a *:* rwm"]);
    }

    #[test]
    fn devices_bad_rules_are_refused_before_any_write() {
        let s = scratch!("devices");
        let cg = s.cgroups();
        let cases = [
            // A hole in the default c 136:* rwm.
            (
                r#"[{"allow":false,"access":"rwm"},{"allow":false,"type":"c","major":136,"minor":5,"access":"rw"}]"#,
                "linux.resources.devices[1]",
            ),
            // A hole in the config's own wildcard.
            (
                r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","access":"rwm"},{"allow":false,"type":"b","major":8,"minor":0,"access":"m"}]"#,
                "linux.resources.devices[2]",
            ),
            // A rule the shared parser refuses (devices.rs tests each field).
            (
                r#"[{"allow":true,"type":"p","access":"rwm"}]"#,
                "linux.resources.devices[0].type",
            ),
        ];
        for (rules, want) in cases {
            let err = apply(&cg, &res(&format!(r#"{{"devices":{rules}}}"#)), false).unwrap_err();
            assert!(matches!(err, CgroupError::Invalid { .. }), "{rules}: {err}");
            assert_eq!(field_of(&err), want, "{rules}: {err}");
            assert_eq!(devices_list(&s), ["a *:* rwm"], "{rules}");
        }
        // A denied mknod of a default device inside the default "c *:* m" is fine: the
        // node could not be opened anyway.
        let r = r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"m"}]}"#;
        apply(&cg, &res(r), false).unwrap();
        assert!(devices_list(&s).contains(&"c 1:3 rw".to_owned()));
    }

    #[test]
    fn unmounted_controllers_are_unsupported_naming_the_field() {
        let cg = Cgroups::default();
        for (json, want) in [
            (
                r#"{"network":{"classID":1048577}}"#,
                "linux.resources.network.classID",
            ),
            (
                r#"{"network":{"priorities":[{"name":"eth0","priority":5}]}}"#,
                "linux.resources.network.priorities",
            ),
            (
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#,
                "linux.resources.hugepageLimits",
            ),
            (
                r#"{"rdma":{"mlx5_0":{"hcaHandles":3}}}"#,
                "linux.resources.rdma",
            ),
            (r#"{"pids":{"limit":5}}"#, "linux.resources.pids.limit"),
        ] {
            let err = apply(&cg, &res(json), true).unwrap_err();
            assert!(
                matches!(err, CgroupError::Unsupported { .. }),
                "{json}: {err}"
            );
            assert_eq!(field_of(&err), want, "{json}: {err}");
        }
        // Hugepages on a hybrid host go to the unified hierarchy (v2.rs).
        let hybrid = Cgroups {
            unified: Some("/sys/fs/cgroup/unified/x".into()),
            ..Default::default()
        };
        let r = res(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#);
        apply(&hybrid, &r, true).unwrap();
    }

    #[test]
    fn blkio_weight_without_a_weight_scheduler_is_unsupported() {
        let s = scratch!("blkio");
        hull_testing::skip_unless!(
            !s.dir().join("blkio.weight").exists() && !s.dir().join("blkio.bfq.weight").exists(),
            "no-blkio-weight",
            "the host's block scheduler has a blkio weight, so the refusal cannot be seen"
        );
        let cg = s.cgroups();
        for (json, want) in [
            (
                r#"{"blockIO":{"weight":500}}"#,
                "linux.resources.blockIO.weight",
            ),
            (
                r#"{"blockIO":{"leafWeight":500}}"#,
                "linux.resources.blockIO.leafWeight",
            ),
            (
                r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":100}]}}"#,
                "linux.resources.blockIO.weightDevice[0].weight",
            ),
        ] {
            let err = apply(&cg, &res(json), false).unwrap_err();
            assert!(
                matches!(err, CgroupError::Unsupported { .. }),
                "{json}: {err}"
            );
            assert_eq!(field_of(&err), want, "{json}: {err}");
        }
    }

    #[test]
    fn blkio_throttle() {
        let s = scratch!("blkio");
        // A whole disk (throttling refuses partitions).
        let Some(disk) = fs::read_dir("/sys/dev/block").ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| {
                    !Path::new("/sys/dev/block")
                        .join(n)
                        .join("partition")
                        .exists()
                        && !n.starts_with("7:")
                })
        }) else {
            hull_testing::skip("block-disk", "no whole disk to throttle");
            return;
        };
        let cg = s.cgroups();
        let (major, minor) = disk.split_once(':').unwrap();
        let r = res(&format!(
            r#"{{"blockIO":{{"throttleReadBpsDevice":[{{"major":{major},"minor":{minor},"rate":1048576}}],
                "throttleWriteIOPSDevice":[{{"major":{major},"minor":{minor},"rate":100}}]}}}}"#
        ));
        apply(&cg, &r, false).unwrap();
        assert_eq!(
            s.read("blkio.throttle.read_bps_device"),
            format!("{disk} 1048576")
        );
        assert_eq!(
            s.read("blkio.throttle.write_iops_device"),
            format!("{disk} 100")
        );
        let r = res(r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-1,"minor":0,"rate":1}]}}"#);
        let err = apply(&cg, &r, true).unwrap_err();
        assert_eq!(
            field_of(&err),
            "linux.resources.blockIO.throttleReadBpsDevice[0]",
            "{err}"
        );
    }
}
