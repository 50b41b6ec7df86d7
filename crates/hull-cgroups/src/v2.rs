//! cgroup v2 limits: `linux.resources` written to the unified hierarchy, on a unified host
//! (every controller, as runc 1.1.5's fs2 driver writes them, plus cpu burst and idle) or
//! beside v1 on a hybrid host (hugepage limits and `unified` files the hierarchy has). Also
//! the cgroup2 primitives the lead's code uses: delegating controllers, freezing, killing.
//!
//! Every value is converted and every target file checked before the first write, so a bad
//! config fails with the field named and nothing changed.
//!
//! Not libcgroups' v2 `Manager`: it knows nothing of a hybrid host's cgroup2 side, gets
//! device rules only with its `cgroupsv2_devices` feature (see [`crate::devices_bpf`] for why
//! that is not used), and delegates controllers itself, where hull must decide which cgroups
//! it may write to.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use crate::devices_bpf;
use crate::error::CgroupError;

/// Writes `res` into the cgroup2 directory `dir`. `unified_only`: the host is fully unified,
/// so everything goes here; else only what the v1 hierarchies cannot hold. `update`: a live
/// container's limits change, and fields absent from `res` stay as they are (on create the
/// device program is attached even without rules: runc's default allow list).
pub fn apply(
    dir: &Path,
    res: &LinuxResources,
    unified_only: bool,
    update: bool,
) -> Result<(), CgroupError> {
    let plan = if unified_only {
        plan_unified(dir, res, update)?
    } else {
        plan_hybrid(dir, res)?
    };
    plan.check(dir)?;
    plan.execute(dir, update)
}

/// The files and values [`apply`] would write on a unified host for `res`, each value
/// checked but no file looked for: the systemd driver makes unit properties of them before
/// the unit's cgroup exists. `dir` answers what the plan reads (enabled controllers, the
/// limits in force on update).
pub fn planned_files(
    dir: &Path,
    res: &LinuxResources,
    update: bool,
) -> Result<Vec<(String, String)>, CgroupError> {
    let plan = plan_unified(dir, res, update)?;
    if let Some(rules) = &plan.devices {
        devices_bpf::Program::from_spec(rules)?;
    }
    Ok(plan.writes.into_iter().map(|w| (w.file, w.value)).collect())
}

/// One file write, with the config field it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Write {
    field: String,
    file: String,
    value: String,
    /// Tried again after the other writes when refused (cpu.max.burst must not exceed the
    /// quota, so it goes first when lowered and last when raised).
    retry_later: bool,
}

#[derive(Debug, Default)]
struct Plan {
    writes: Vec<Write>,
    /// The device rules to turn into the cgroup's device program.
    devices: Option<Vec<oci_spec::runtime::LinuxDeviceCgroup>>,
}

impl Plan {
    fn write(&mut self, field: impl Into<String>, file: impl Into<String>, value: impl ToString) {
        self.writes.push(Write {
            field: field.into(),
            file: file.into(),
            value: value.to_string(),
            retry_later: false,
        });
    }

    /// Every file to write exists: a missing one means its controller is not enabled.
    fn check(&self, dir: &Path) -> Result<(), CgroupError> {
        for w in &self.writes {
            if !dir.join(&w.file).exists() {
                return Err(missing_file(dir, &w.field, &w.file));
            }
        }
        if let Some(rules) = &self.devices {
            devices_bpf::Program::from_spec(rules)?;
        }
        Ok(())
    }

    fn execute(&self, dir: &Path, update: bool) -> Result<(), CgroupError> {
        let mut later = Vec::new();
        for w in &self.writes {
            match write_file(dir, &w.file, &w.value, &w.field) {
                Err(e) if w.retry_later => later.push((w, e)),
                other => other?,
            }
        }
        for (w, first) in later {
            write_file(dir, &w.file, &w.value, &w.field).map_err(|_| first)?;
        }
        if let Some(rules) = &self.devices {
            devices_bpf::apply_devices(dir, rules, update)?;
        }
        Ok(())
    }
}

/// The error for a file that is not in `dir`, saying why when its controller is missing.
fn missing_file(dir: &Path, field: &str, file: &str) -> CgroupError {
    let controller = file.split('.').next().unwrap_or(file);
    let enabled = read(dir, "cgroup.controllers").unwrap_or_default();
    let reason = if controller != "cgroup" && !enabled.split_whitespace().any(|c| c == controller) {
        format!(
            "the {controller} controller is not enabled in {} (cgroup.controllers: {:?})",
            dir.display(),
            enabled.trim()
        )
    } else {
        format!("{} does not exist", dir.join(file).display())
    };
    CgroupError::Unsupported {
        field: field.into(),
        reason,
    }
}

// ---- conversions (runc's, so limits read the same as under runc) ----

/// cpu.weight from v1 cpu.shares: runc 1.1.5's linear map of [2, 262144] onto [1, 10000].
/// Shares outside the v1 range are clamped to it first, as the v1 kernel does.
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// io.weight from a v1 blkio weight: runc's linear map of [10, 1000] onto [1, 10000].
pub fn io_weight_from_blkio(weight: u16) -> Result<u64, String> {
    if !(10..=1000).contains(&weight) {
        return Err(format!(
            "{weight} is outside the blkio weight range 10-1000"
        ));
    }
    Ok(1 + (u64::from(weight) - 10) * 9999 / 990)
}

/// memory.swap.max from the spec's memory+swap total (`swap`) and the memory limit, as
/// runc converts them (0 = not set, -1 = unlimited). `None`: leave the file alone.
pub fn swap_max(swap: i64, limit: i64) -> Result<Option<String>, String> {
    // Unlimited memory with swap not given: both unlimited, as on v1.
    if limit == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some("max".into())),
        s if s < -1 => return Err(format!("{s} is neither a size nor -1 (unlimited)")),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        return Err("a swap limit needs a memory limit".into());
    }
    if limit < 0 {
        return Err(format!("invalid memory limit {limit}"));
    }
    if swap < limit {
        return Err(format!(
            "memory+swap limit {swap} is below the memory limit {limit}"
        ));
    }
    Ok(Some((swap - limit).to_string()))
}

/// A `.max`/`.low` value: -1 is "max"; `None` for 0 (runc's "not set").
fn limit_value(v: i64, field: &str) -> Result<Option<String>, CgroupError> {
    match v {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        v if v < 0 => Err(CgroupError::Invalid {
            field: field.into(),
            reason: format!("{v} is neither a size nor -1 (unlimited)"),
        }),
        v => Ok(Some(v.to_string())),
    }
}

/// The cgroup file name of a huge page size in kB, as the kernel spells it (2MB, 1GB, 64KB).
pub fn page_size_name(kb: u64) -> String {
    if kb >= 1 << 20 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

/// The huge page sizes of this host (from /sys/kernel/mm/hugepages), smallest first.
pub fn host_page_sizes() -> Vec<String> {
    let mut kbs: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    kbs.sort_unstable();
    kbs.into_iter().map(page_size_name).collect()
}

/// `unified` keys that are not limits: they move, kill or freeze processes, or reshape the
/// tree hull manages. runc writes any file; hull refuses these.
const UNIFIED_REFUSED: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.type",
];

/// A `unified` key must name one file of the cgroup directory, `controller.parameter`.
pub fn check_unified_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.contains('/') || key == "." || key == ".." || key.contains('\0') {
        return Err("must be a file name in the cgroup directory".into());
    }
    if UNIFIED_REFUSED.contains(&key) {
        return Err(format!(
            "{key} is not a resource limit (hull manages it; use pause/resume/kill)"
        ));
    }
    match key.split_once('.') {
        Some((c, p)) if !c.is_empty() && !p.is_empty() => Ok(()),
        _ => Err("must be in the form CONTROLLER.PARAMETER".into()),
    }
}

fn unified_field(key: &str) -> String {
    format!("linux.resources.unified[{key:?}]")
}

/// Checks the page size of each hugepage limit against the host and plans the writes.
fn plan_hugetlb(plan: &mut Plan, res: &LinuxResources) -> Result<(), CgroupError> {
    let Some(limits) = res.hugepage_limits() else {
        return Ok(());
    };
    let sizes = host_page_sizes();
    for (i, l) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        if !sizes.iter().any(|s| s == l.page_size()) {
            return Err(CgroupError::Invalid {
                field: format!("{field}.pageSize"),
                reason: format!(
                    "unknown page size {} (this host has {})",
                    l.page_size(),
                    if sizes.is_empty() {
                        "none".into()
                    } else {
                        sizes.join(", ")
                    }
                ),
            });
        }
        let value = match l.limit() {
            -1 => "max".to_string(),
            v if v < 0 => {
                return Err(CgroupError::Invalid {
                    field: format!("{field}.limit"),
                    reason: format!("{v} is neither a size nor -1 (unlimited)"),
                })
            }
            v => v.to_string(),
        };
        plan.write(field, format!("hugetlb.{}.max", l.page_size()), value);
    }
    Ok(())
}

/// Where the kernel has the hugetlb controller: `Some(true)` on a v1 hierarchy,
/// `Some(false)` on cgroup2, `None` not at all (from /proc/cgroups).
fn hugetlb_on_v1() -> Option<bool> {
    let text = std::fs::read_to_string("/proc/cgroups").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["hugetlb", hierarchy, _, enabled] if *enabled == "1" => Some(*hierarchy != "0"),
            _ => None,
        }
    })
}

/// Hybrid host: hugepage limits when hugetlb lives on cgroup2, and `unified` files that
/// exist in `dir`; the rest is the v1 writer's.
fn plan_hybrid(dir: &Path, res: &LinuxResources) -> Result<Plan, CgroupError> {
    let mut plan = Plan::default();
    if res
        .hugepage_limits()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        match hugetlb_on_v1() {
            Some(true) => {}
            Some(false) => plan_hugetlb(&mut plan, res)?,
            None => {
                return Err(CgroupError::Unsupported {
                    field: "linux.resources.hugepageLimits".into(),
                    reason: "this host has no hugetlb controller".into(),
                })
            }
        }
    }
    for (key, value) in sorted(res.unified()) {
        check_unified_key(key).map_err(|reason| CgroupError::Invalid {
            field: unified_field(key),
            reason,
        })?;
        if !dir.join(key).exists() {
            return Err(CgroupError::Unsupported {
                field: unified_field(key),
                // runc's words (it refuses every unified key on a hybrid host; hull takes
                // those the host's cgroup2 hierarchy has).
                reason: format!(
                    "invalid configuration: cannot use unified on cgroup v1 ({} has no {key})",
                    dir.display()
                ),
            });
        }
        plan.write(unified_field(key), key, value);
    }
    Ok(plan)
}

fn sorted<V>(map: &Option<std::collections::HashMap<String, V>>) -> BTreeMap<&String, &V> {
    map.iter().flatten().collect()
}

/// Unified host: every field, as runc's fs2 driver (plus cpu burst and idle).
fn plan_unified(dir: &Path, res: &LinuxResources, update: bool) -> Result<Plan, CgroupError> {
    let mut plan = Plan::default();
    plan_memory(&mut plan, dir, res, update)?;
    if let Some(p) = res.pids() {
        // runc: 0 leaves pids.max alone; any negative is unlimited.
        match p.limit() {
            0 => {}
            l if l < 0 => plan.write("linux.resources.pids.limit", "pids.max", "max"),
            l => plan.write("linux.resources.pids.limit", "pids.max", l),
        }
    }
    plan_cpu(&mut plan, dir, res, update)?;
    plan_io(&mut plan, dir, res)?;
    plan_hugetlb(&mut plan, res)?;
    for (device, limits) in sorted(res.rdma()) {
        let field = format!("linux.resources.rdma[{device:?}]");
        if device.is_empty() || device.contains(char::is_whitespace) {
            return Err(CgroupError::Invalid {
                field,
                reason: "not an RDMA device name".into(),
            });
        }
        let mut value = device.clone();
        if let Some(h) = limits.hca_handles() {
            value += &format!(" hca_handle={h}");
        }
        if let Some(o) = limits.hca_objects() {
            value += &format!(" hca_object={o}");
        }
        if value != *device {
            plan.write(field, "rdma.max", value);
        }
    }
    if res.network().is_some() {
        tracing::warn!("linux.resources.network is ignored on cgroup v2 (no net_cls/net_prio)");
    }
    // Rootless, as with runc: no device program (attaching one takes CAP_SYS_ADMIN, and a
    // user namespace gives no access to devices its user could not open anyway).
    if (!update || res.devices().is_some()) && !hull_sys::proc::rootless() {
        plan.devices = Some(res.devices().clone().unwrap_or_default());
    }
    let enabled = read(dir, "cgroup.controllers").unwrap_or_default();
    for (key, value) in sorted(res.unified()) {
        let field = unified_field(key);
        check_unified_key(key).map_err(|reason| CgroupError::Invalid {
            field: field.clone(),
            reason,
        })?;
        let controller = key.split('.').next().unwrap_or_default();
        if controller != "cgroup" && !enabled.split_whitespace().any(|c| c == controller) {
            return Err(CgroupError::Unsupported {
                field,
                reason: format!("controller {controller:?} is not available"),
            });
        }
        plan.write(field, key, value);
    }
    Ok(plan)
}

fn plan_memory(
    plan: &mut Plan,
    dir: &Path,
    res: &LinuxResources,
    update: bool,
) -> Result<(), CgroupError> {
    let Some(m) = res.memory() else {
        return Ok(());
    };
    const F: &str = "linux.resources.memory";
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!("{F}.kernel and {F}.kernelTCP are ignored on cgroup v2 (as by runc)");
    }
    if m.swappiness().is_some() {
        tracing::warn!("{F}.swappiness is ignored on cgroup v2 (no memory.swappiness)");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!("{F}.disableOOMKiller is ignored on cgroup v2 (no oom_control)");
    }
    if m.use_hierarchy() == Some(false) {
        tracing::warn!("{F}.useHierarchy false is ignored: cgroup v2 is always hierarchical");
    }
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    // On update the swap total is relative to the limit in force when no new one is given.
    let swap_base = if limit == 0 && swap != 0 && update {
        match read(dir, "memory.max").as_deref().map(str::trim) {
            Some("max") => -1,
            Some(n) => n.parse().unwrap_or(0),
            None => 0,
        }
    } else {
        limit
    };
    let swap_value = swap_max(swap, swap_base).map_err(|reason| CgroupError::Invalid {
        field: format!("{F}.swap"),
        reason,
    })?;
    let max = limit_value(limit, &format!("{F}.limit"))?;
    let low = limit_value(m.reservation().unwrap_or(0), &format!("{F}.reservation"))?;
    if update && m.check_before_update() == Some(true) && limit > 0 {
        let usage: i64 = read(dir, "memory.current")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if limit <= usage {
            return Err(CgroupError::Invalid {
                field: format!("{F}.limit"),
                reason: format!(
                    "{limit} is not above the current usage {usage} (checkBeforeUpdate)"
                ),
            });
        }
    }
    if let Some(v) = swap_value {
        plan.write(format!("{F}.swap"), "memory.swap.max", v);
    }
    if let Some(v) = max {
        plan.write(format!("{F}.limit"), "memory.max", v);
    }
    if let Some(v) = low {
        plan.write(format!("{F}.reservation"), "memory.low", v);
    }
    Ok(())
}

fn plan_cpu(
    plan: &mut Plan,
    dir: &Path,
    res: &LinuxResources,
    update: bool,
) -> Result<(), CgroupError> {
    let Some(c) = res.cpu() else {
        return Ok(());
    };
    const F: &str = "linux.resources.cpu";
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        tracing::warn!("{F}.realtimeRuntime/realtimePeriod are ignored on cgroup v2");
    }
    if let Some(idle) = c.idle() {
        if idle != 0 && idle != 1 {
            return Err(CgroupError::Invalid {
                field: format!("{F}.idle"),
                reason: format!("{idle} is neither 0 nor 1"),
            });
        }
        plan.write(format!("{F}.idle"), "cpu.idle", idle);
    }
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        if c.idle() == Some(1) {
            // An idle group has no weight: the kernel refuses one.
            tracing::debug!("{F}.shares skipped: {F}.idle is 1");
        } else {
            plan.write(
                format!("{F}.shares"),
                "cpu.weight",
                cpu_weight_from_shares(shares),
            );
        }
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if let Some(burst) = c.burst() {
        plan.writes.push(Write {
            field: format!("{F}.burst"),
            file: "cpu.max.burst".into(),
            value: burst.to_string(),
            retry_later: true,
        });
    }
    if quota.is_some() || period.is_some() {
        let quota = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".into(),
            // A period alone keeps the quota in force (runc's update merges it the same way).
            None if update => read(dir, "cpu.max")
                .and_then(|s| s.split_whitespace().next().map(str::to_string))
                .unwrap_or_else(|| "max".into()),
            None => "max".into(),
        };
        let value = match period {
            Some(p) => format!("{quota} {p}"),
            // The kernel keeps the period when only the quota is written.
            None => quota,
        };
        let field = if c.quota().is_some() {
            format!("{F}.quota")
        } else {
            format!("{F}.period")
        };
        plan.write(field, "cpu.max", value);
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        plan.write(format!("{F}.cpus"), "cpuset.cpus", cpus);
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        plan.write(format!("{F}.mems"), "cpuset.mems", mems);
    }
    Ok(())
}

fn plan_io(plan: &mut Plan, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
    let Some(b) = res.block_io() else {
        return Ok(());
    };
    const F: &str = "linux.resources.blockIO";
    // BFQ takes v1 weights as they are; without it io.weight gets runc's conversion.
    let bfq = read(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq.is_some() {
            plan.write(format!("{F}.weight"), "io.bfq.weight", w);
        } else {
            let v = io_weight_from_blkio(w).map_err(|reason| CgroupError::Invalid {
                field: format!("{F}.weight"),
                reason,
            })?;
            plan.write(format!("{F}.weight"), "io.weight", v);
        }
    }
    if b.leaf_weight().is_some() {
        tracing::warn!("{F}.leafWeight is ignored on cgroup v2");
    }
    if let Some(devices) = b.weight_device().as_ref().filter(|d| !d.is_empty()) {
        // Per-device BFQ weights (kernel 5.4+) show as lines, not one number.
        let per_device = bfq
            .as_deref()
            .is_some_and(|s| s.trim().parse::<u64>().is_err());
        if per_device {
            for (i, d) in devices.iter().enumerate() {
                if let Some(w) = d.weight() {
                    let value = format!("{}:{} {w}", d.major(), d.minor());
                    plan.write(format!("{F}.weightDevice[{i}]"), "io.bfq.weight", value);
                }
            }
        } else {
            tracing::warn!("{F}.weightDevice is ignored: no per-device io.bfq.weight here");
        }
    }
    let throttles: [(&str, &str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, key, list) in throttles {
        for (i, t) in list.iter().flatten().enumerate() {
            if t.major() < 0 || t.minor() < 0 {
                return Err(CgroupError::Invalid {
                    field: format!("{F}.{name}[{i}]"),
                    reason: format!("{}:{} is not a device number", t.major(), t.minor()),
                });
            }
            // 0 lifts the limit on v1; io.max ignores 0, so say "max".
            let rate = match t.rate() {
                0 => "max".to_string(),
                r => r.to_string(),
            };
            let value = format!("{}:{} {key}={rate}", t.major(), t.minor());
            plan.write(format!("{F}.{name}[{i}]"), "io.max", value);
        }
    }
    Ok(())
}

// ---- cgroup2 primitives ----

/// Lets the children of `parent` use the `wanted` controllers: writes `+name` to its
/// cgroup.subtree_control for each one `parent` has (in cgroup.controllers) and has not
/// delegated yet. Controllers `parent` lacks are skipped: the limits that need them then
/// fail in [`apply`] with the field named. runc delegates every available controller.
pub fn enable_controllers(parent: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    let have = read(parent, "cgroup.controllers").ok_or_else(|| CgroupError::Io {
        step: "read",
        path: parent.join("cgroup.controllers"),
        source: io::Error::from(io::ErrorKind::NotFound),
    })?;
    let on = read(parent, "cgroup.subtree_control").unwrap_or_default();
    for c in wanted {
        if on.split_whitespace().any(|o| o == *c) {
            continue;
        }
        if !have.split_whitespace().any(|h| h == *c) {
            tracing::debug!(parent = %parent.display(), "controller {c} not available");
            continue;
        }
        write_file(
            parent,
            "cgroup.subtree_control",
            &format!("+{c}"),
            "delegate controllers",
        )?;
    }
    Ok(())
}

/// How long [`freeze`] waits for cgroup.events to agree (runc waits 10 s too).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Freezes (or thaws) every process in `dir` and its children through cgroup.freeze, and
/// waits until cgroup.events says the state holds. A freeze that does not complete in
/// time is undone, so the container is left running rather than half frozen.
pub fn freeze(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let step = if frozen { "freeze" } else { "thaw" };
    if !dir.join("cgroup.freeze").exists() {
        if !frozen {
            return Ok(());
        }
        return Err(CgroupError::Unsupported {
            field: "pause".into(),
            reason: format!("{} has no cgroup.freeze (kernel before 5.2)", dir.display()),
        });
    }
    let want = if frozen { "1" } else { "0" };
    write_file(dir, "cgroup.freeze", want, step)?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        let events = read(dir, "cgroup.events").unwrap_or_default();
        if events
            .lines()
            .any(|l| l.split_whitespace().eq(["frozen", want]))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    if frozen {
        let _ = write_file(dir, "cgroup.freeze", "0", "thaw");
    }
    Err(CgroupError::Io {
        step,
        path: dir.join("cgroup.events"),
        source: io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "still not {} after {} s",
                if frozen { "frozen" } else { "thawed" },
                FREEZE_TIMEOUT.as_secs()
            ),
        ),
    })
}

/// Whether `dir` was asked to freeze (cgroup.freeze is 1), as runc reports "paused".
/// Whether any process is in `dir` or below it (`cgroup.events`); true when that cannot be
/// read though the directory is there, so that doubt counts as "in use".
pub fn populated(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join("cgroup.events")) {
        Ok(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("populated "))
            .is_none_or(|v| v.trim() != "0"),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

pub fn is_frozen(dir: &Path) -> bool {
    read(dir, "cgroup.freeze").is_some_and(|s| s.trim() == "1")
}

/// SIGKILLs every process in `dir` and its children at once (cgroup.kill, kernel 5.14+).
/// `Unsupported` where the file is missing: the caller signals the pids instead.
pub fn kill(dir: &Path) -> Result<(), CgroupError> {
    if !dir.join("cgroup.kill").exists() {
        return Err(CgroupError::Unsupported {
            field: "kill --all".into(),
            reason: format!("{} has no cgroup.kill (kernel before 5.14)", dir.display()),
        });
    }
    write_file(dir, "cgroup.kill", "1", "kill --all")
}

// ---- files ----

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// One write(2) of `value` (cgroup files take a value per write); never creates the file.
fn write_file(dir: &Path, file: &str, value: &str, field: &str) -> Result<(), CgroupError> {
    let path: PathBuf = dir.join(file);
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            field: field.into(),
            path,
            value: value.into(),
            source,
        })
}

#[cfg(test)]
pub(super) mod tests;
