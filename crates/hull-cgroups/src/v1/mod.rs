//! cgroup v1 limits: every `linux.resources` field written to the per-controller
//! hierarchies of a legacy or hybrid host, the device rules of [`crate::devices`] among them
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
//! rules. libcgroups still provides the parsers the stats module uses.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxRdma, LinuxResources,
};

use crate::error::CgroupError;
use crate::model::Cgroups;
use device_list::DeviceState;

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

/// The devices controller: the exception list moved from what the kernel has to what the
/// rules want with the fewest writes, never passing through a state that allows more.
impl Plan<'_> {
    pub(super) fn devices(
        &mut self,
        rules: Option<&[LinuxDeviceCgroup]>,
    ) -> Result<(), CgroupError> {
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

mod cpu;
mod device_list;
mod memory;

#[cfg(test)]
mod tests;
