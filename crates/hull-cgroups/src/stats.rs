//! Usage statistics of a container's cgroups, shaped as runc's `events --stats` prints them
//! (containerd and docker read this shape): the types serialize field for field like runc
//! 1.1.5's `types.Stats`, including Go's `omitempty` rules (a zero number or empty list is
//! left out where runc leaves it out; nested objects are always there). Values and units
//! follow runc: CPU times in nanoseconds (v1 `cpuacct.stat` ticks and v2 microseconds
//! converted), memory in bytes, cgroup2's swap reported as memory+swap like v1's memsw, and
//! "no pids limit" as 0.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CgroupError, Cgroups};

// USER_HZ, the unit of cpuacct.stat: 100 on every Linux architecture.
const CLOCK_TICKS: u64 = 100;
const NANOS_PER_SEC: u64 = 1_000_000_000;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// runc's `types.Stats`: the `data` of a `stats` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// Keyed by page size as runc names it (`2MB`, `1GB`); always printed, `{}` when empty.
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// runc only fills this for interfaces it created itself, which an OCI config never
    /// asks for: `null`.
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// The v1 cpuset files; all zero on cgroup2, where runc reads none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

/// One memory counter set, in bytes; `limit` is the kernel's "unlimited" value
/// (9223372036854771712 on v1, u64::MAX for cgroup2's `max`) when there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory plus swap, on cgroup2 too.
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// Every line of `memory.stat`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// runc's JSON name lacks the `d`.
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT (resctrl) figures; hull does not manage resctrl groups, so this stays `{}` as
/// runc prints it for a container without `linux.intelRdt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IntelRdt {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l3_cache_info: Option<L3CacheInfo>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub l3_cache_schema_root: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub l3_cache_schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_bw_info: Option<MemBwInfo>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mem_bw_schema_root: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mem_bw_schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mbm_stats: Option<Vec<MbmNumaNodeStats>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmt_stats: Option<Vec<CmtNumaNodeStats>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct L3CacheInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cbm_mask: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub min_cbm_bits: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub num_closids: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemBwInfo {
    #[serde(skip_serializing_if = "is_zero")]
    pub bandwidth_gran: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub delay_linear: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub min_bandwidth: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub num_closids: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MbmNumaNodeStats {
    pub mbm_total_bytes: u64,
    pub mbm_local_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CmtNumaNodeStats {
    pub llc_occupancy: u64,
}

/// Counters of one network interface; runc prints Go's field names as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Reads the container's usage from its cgroups: the v1 hierarchies of a legacy or hybrid
/// host (with hugetlb from the cgroup2 side hierarchy when v1 has none), or the one cgroup2
/// directory of a unified host. A controller the host lacks leaves its part at zero.
pub fn collect(cg: &Cgroups) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    if cg.unified_only {
        if let Some(dir) = &cg.unified {
            v2_stats(dir, &mut stats)?;
        }
        return Ok(stats);
    }
    if let Some(dir) = cg.v1_dir("cpu") {
        v1_cpu(dir, &mut stats.cpu.throttling)?;
    }
    if let Some(dir) = cg.v1_dir("cpuacct") {
        v1_cpuacct(dir, &mut stats.cpu.usage)?;
    }
    if let Some(dir) = cg.v1_dir("cpuset") {
        v1_cpuset(dir, &mut stats.cpuset)?;
    }
    if let Some(dir) = cg.v1_dir("memory") {
        v1_memory(dir, &mut stats.memory)?;
    }
    if let Some(dir) = cg.v1_dir("pids") {
        pids(dir, &mut stats.pids)?;
    }
    if let Some(dir) = cg.v1_dir("blkio") {
        v1_blkio(dir, &mut stats.blkio)?;
    }
    if let Some(dir) = cg.v1_dir("hugetlb") {
        v1_hugetlb(dir, &mut stats.hugetlb)?;
    } else if let Some(dir) = &cg.unified {
        // hull puts hugetlb limits on the cgroup2 side of a hybrid host; report them there.
        v2_hugetlb(dir, &mut stats.hugetlb)?;
    }
    Ok(stats)
}

// ---- reading cgroup files ----

fn read_error(path: PathBuf, source: io::Error) -> CgroupError {
    CgroupError::Io {
        step: "read",
        path,
        source,
    }
}

fn parse_error(path: &Path, what: impl std::fmt::Display) -> CgroupError {
    CgroupError::Io {
        step: "parse",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, what.to_string()),
    }
}

/// The file's text, or None when the kernel does not have it.
fn read(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_error(path, e)),
    }
}

/// An unsigned counter as runc reads it: `max` is u64::MAX, and a negative value (kernel
/// accounting glitches in some memory stats) reads as 0.
fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return Some(u64::MAX);
    }
    match text.parse::<u64>() {
        Ok(v) => Some(v),
        Err(_) if text.starts_with('-') && text[1..].bytes().all(|b| b.is_ascii_digit()) => Some(0),
        Err(_) => None,
    }
}

/// A one-number file; None when missing.
fn single(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    let Some(text) = read(dir, file)? else {
        return Ok(None);
    };
    parse_u64(&text).map(Some).ok_or_else(|| {
        parse_error(
            &dir.join(file),
            format_args!("not a number: {:?}", text.trim()),
        )
    })
}

/// A one-number file that must be there once its controller is.
fn required(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    single(dir, file)?
        .ok_or_else(|| read_error(dir.join(file), io::Error::from_raw_os_error(libc::ENOENT)))
}

/// `key value` lines (memory.stat, cpu.stat); None when the file is missing.
fn keyed(dir: &Path, file: &str) -> Result<Option<Vec<(String, u64)>>, CgroupError> {
    let Some(text) = read(dir, file)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let parsed = line
            .split_once(' ')
            .filter(|(_, v)| !v.contains(' '))
            .and_then(|(k, v)| Some((k.to_string(), parse_u64(v)?)));
        match parsed {
            Some(kv) => out.push(kv),
            None => {
                return Err(parse_error(
                    &dir.join(file),
                    format_args!("line {line:?} is not `key value`"),
                ))
            }
        }
    }
    Ok(Some(out))
}

/// The value of `key` in a `key value` file whose lines may be anything else too.
fn value_of(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| parse_u64(v)).flatten()
    })
}

/// Hugepage sizes as runc names them (`2MB`, `1GB`); none when the kernel has no hugetlbfs.
fn page_sizes() -> Vec<String> {
    match libcgroups::stats::supported_page_sizes() {
        Ok(mut sizes) => {
            sizes.sort();
            sizes
        }
        Err(e) => {
            tracing::debug!("hugepage sizes from /sys/kernel/mm/hugepages: {e}");
            Vec::new()
        }
    }
}

// ---- cgroup v1 ----

fn v1_cpu(dir: &Path, out: &mut Throttling) -> Result<(), CgroupError> {
    for (key, value) in keyed(dir, "cpu.stat")?.unwrap_or_default() {
        match key.as_str() {
            "nr_periods" => out.periods = value,
            "nr_throttled" => out.throttled_periods = value,
            "throttled_time" => out.throttled_time = value,
            _ => {}
        }
    }
    Ok(())
}

fn v1_cpuacct(dir: &Path, out: &mut CpuUsage) -> Result<(), CgroupError> {
    if !dir.exists() {
        return Ok(());
    }
    // "user <ticks>\nsystem <ticks>"
    let stat_path = dir.join("cpuacct.stat");
    let stat = read(dir, "cpuacct.stat")?.ok_or_else(|| {
        read_error(
            stat_path.clone(),
            io::Error::from_raw_os_error(libc::ENOENT),
        )
    })?;
    let ticks = |key| {
        value_of(&stat, key).ok_or_else(|| parse_error(&stat_path, format_args!("no {key:?} line")))
    };
    out.user = ticks("user")? * NANOS_PER_SEC / CLOCK_TICKS;
    out.kernel = ticks("system")? * NANOS_PER_SEC / CLOCK_TICKS;
    out.total = required(dir, "cpuacct.usage")?;

    let percpu_path = dir.join("cpuacct.usage_percpu");
    let percpu = read(dir, "cpuacct.usage_percpu")?.ok_or_else(|| {
        read_error(
            percpu_path.clone(),
            io::Error::from_raw_os_error(libc::ENOENT),
        )
    })?;
    out.percpu = percpu
        .split_whitespace()
        .map(|v| v.parse().map_err(|e| parse_error(&percpu_path, e)))
        .collect::<Result<_, _>>()?;

    // "cpu user system" then one "N <user ns> <system ns>" line per CPU; older kernels lack it.
    if let Some(all) = read(dir, "cpuacct.usage_all")? {
        let all_path = dir.join("cpuacct.usage_all");
        for line in all.lines().skip(1) {
            let cols: Vec<&str> = line.split(' ').collect();
            if cols.len() != 3 {
                continue;
            }
            let num = |s: &str| s.parse::<u64>().map_err(|e| parse_error(&all_path, e));
            out.percpu_kernel.push(num(cols[2])?);
            out.percpu_user.push(num(cols[1])?);
        }
    }
    Ok(())
}

/// A cpuset list (`0-3,8`) as the numbers it names.
fn cpu_list(path: &Path, text: &str) -> Result<Vec<u16>, CgroupError> {
    let mut out = Vec::new();
    let text = text.trim();
    if text.is_empty() {
        return Ok(out);
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .map_err(|e| parse_error(path, format_args!("{s:?}: {e}")))
    };
    for part in text.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(parse_error(
                        path,
                        format_args!("range {part:?} runs backwards"),
                    ));
                }
                out.extend(lo..=hi);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

fn v1_cpuset(dir: &Path, out: &mut CpuSet) -> Result<(), CgroupError> {
    if let Some(text) = read(dir, "cpuset.cpus")? {
        out.cpus = cpu_list(&dir.join("cpuset.cpus"), &text)?;
    }
    if let Some(text) = read(dir, "cpuset.mems")? {
        out.mems = cpu_list(&dir.join("cpuset.mems"), &text)?;
    }
    let flags: [(&str, &mut u64); 8] = [
        ("cpuset.cpu_exclusive", &mut out.cpu_exclusive),
        ("cpuset.mem_hardwall", &mut out.mem_hardwall),
        ("cpuset.mem_exclusive", &mut out.mem_exclusive),
        ("cpuset.memory_migrate", &mut out.memory_migrate),
        ("cpuset.memory_spread_page", &mut out.memory_spread_page),
        ("cpuset.memory_spread_slab", &mut out.memory_spread_slab),
        ("cpuset.memory_pressure", &mut out.memory_pressure),
        ("cpuset.sched_load_balance", &mut out.sched_load_balance),
    ];
    for (file, slot) in flags {
        if let Some(v) = single(dir, file)? {
            *slot = v;
        }
    }
    // Signed: -1 is "the system default".
    if let Some(text) = read(dir, "cpuset.sched_relax_domain_level")? {
        out.sched_relax_domain_level = text
            .trim()
            .parse()
            .map_err(|e| parse_error(&dir.join("cpuset.sched_relax_domain_level"), e))?;
    }
    Ok(())
}

/// memory.{usage,max_usage,failcnt,limit} for `prefix` (`memory`, `memory.memsw`, ...);
/// None when the kernel lacks that counter set (no swap accounting, no kmem).
fn v1_memory_entry(dir: &Path, prefix: &str) -> Result<Option<MemoryEntry>, CgroupError> {
    let Some(usage) = single(dir, &format!("{prefix}.usage_in_bytes"))? else {
        return Ok(None);
    };
    Ok(Some(MemoryEntry {
        usage,
        max: required(dir, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: required(dir, &format!("{prefix}.failcnt"))?,
        limit: required(dir, &format!("{prefix}.limit_in_bytes"))?,
    }))
}

fn v1_memory(dir: &Path, out: &mut Memory) -> Result<(), CgroupError> {
    let Some(raw) = keyed(dir, "memory.stat")? else {
        return Ok(());
    };
    out.raw = raw.into_iter().collect();
    out.cache = out.raw.get("cache").copied().unwrap_or(0);
    out.usage = v1_memory_entry(dir, "memory")?.ok_or_else(|| {
        read_error(
            dir.join("memory.usage_in_bytes"),
            io::Error::from_raw_os_error(libc::ENOENT),
        )
    })?;
    out.swap = v1_memory_entry(dir, "memory.memsw")?.unwrap_or_default();
    out.kernel = v1_memory_entry(dir, "memory.kmem")?.unwrap_or_default();
    out.kernel_tcp = v1_memory_entry(dir, "memory.kmem.tcp")?.unwrap_or_default();
    Ok(())
}

/// pids.current and pids.max (same files on v1 and v2); on cgroup2 without the pids
/// controller, the number of processes listed.
fn pids(dir: &Path, out: &mut Pids) -> Result<(), CgroupError> {
    if dir.join("pids.current").exists() {
        let got = libcgroups::stats::pid_stats(dir).map_err(|e| CgroupError::Io {
            step: "read pids stats of",
            path: dir.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        out.current = got.current;
        out.limit = got.limit;
    } else if let Some(procs) = read(dir, "cgroup.procs")? {
        out.current = procs.lines().count() as u64;
    }
    Ok(())
}

/// One blkio table: `MAJ:MIN [Op] value` lines and a `Total N` line that is skipped.
/// None when the file is missing or has nothing in it.
fn blkio_table(dir: &Path, file: &str) -> Result<Option<Vec<BlkioEntry>>, CgroupError> {
    let Some(text) = read(dir, file)? else {
        return Ok(None);
    };
    let path = dir.join(file);
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split([' ', ':']).filter(|f| !f.is_empty()).collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() == 2 && fields[0] == "Total" {
            continue;
        }
        if fields.len() < 3 {
            return Err(parse_error(&path, format_args!("malformed line {line:?}")));
        }
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|e| parse_error(&path, format_args!("{line:?}: {e}")))
        };
        let (op, value) = if fields.len() == 4 {
            (fields[2].to_string(), num(fields[3])?)
        } else {
            (String::new(), num(fields[2])?)
        };
        out.push(BlkioEntry {
            major: num(fields[0])?,
            minor: num(fields[1])?,
            op,
            value,
        });
    }
    Ok((!out.is_empty()).then_some(out))
}

/// runc's order: the first family of files (BFQ debug, BFQ, CFQ, throttle recursive,
/// throttle) whose first file has entries is the one reported.
fn v1_blkio(dir: &Path, out: &mut Blkio) -> Result<(), CgroupError> {
    type Slot = fn(&mut Blkio) -> &mut Vec<BlkioEntry>;
    let sectors: Slot = |b| &mut b.sectors_recursive;
    let service_time: Slot = |b| &mut b.io_service_time_recursive;
    let wait_time: Slot = |b| &mut b.io_wait_time_recursive;
    let merged: Slot = |b| &mut b.io_merged_recursive;
    let queued: Slot = |b| &mut b.io_queued_recursive;
    let time: Slot = |b| &mut b.io_time_recursive;
    let serviced: Slot = |b| &mut b.io_serviced_recursive;
    let bytes: Slot = |b| &mut b.io_service_bytes_recursive;
    let families: [&[(&str, Slot)]; 5] = [
        &[
            ("blkio.bfq.sectors_recursive", sectors),
            ("blkio.bfq.io_service_time_recursive", service_time),
            ("blkio.bfq.io_wait_time_recursive", wait_time),
            ("blkio.bfq.io_merged_recursive", merged),
            ("blkio.bfq.io_queued_recursive", queued),
            ("blkio.bfq.time_recursive", time),
            ("blkio.bfq.io_serviced_recursive", serviced),
            ("blkio.bfq.io_service_bytes_recursive", bytes),
        ],
        &[
            ("blkio.bfq.io_serviced_recursive", serviced),
            ("blkio.bfq.io_service_bytes_recursive", bytes),
        ],
        &[
            ("blkio.sectors_recursive", sectors),
            ("blkio.io_service_time_recursive", service_time),
            ("blkio.io_wait_time_recursive", wait_time),
            ("blkio.io_merged_recursive", merged),
            ("blkio.io_queued_recursive", queued),
            ("blkio.time_recursive", time),
            ("blkio.io_serviced_recursive", serviced),
            ("blkio.io_service_bytes_recursive", bytes),
        ],
        &[
            ("blkio.throttle.io_serviced_recursive", serviced),
            ("blkio.throttle.io_service_bytes_recursive", bytes),
        ],
        &[
            ("blkio.throttle.io_serviced", serviced),
            ("blkio.throttle.io_service_bytes", bytes),
        ],
    ];
    for family in families {
        for (i, (file, slot)) in family.iter().enumerate() {
            match blkio_table(dir, file)? {
                Some(entries) => *slot(out) = entries,
                // A family whose first table is empty is not the one; a later empty table
                // ends the search with what was found, as runc does.
                None if i == 0 => break,
                None => return Ok(()),
            }
            if i == family.len() - 1 {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn v1_hugetlb(dir: &Path, out: &mut BTreeMap<String, Hugetlb>) -> Result<(), CgroupError> {
    if !dir.exists() {
        return Ok(());
    }
    for size in page_sizes() {
        let file = |what: &str| format!("hugetlb.{size}.{what}");
        let entry = Hugetlb {
            usage: required(dir, &file("usage_in_bytes"))?,
            max: required(dir, &file("max_usage_in_bytes"))?,
            failcnt: required(dir, &file("failcnt"))?,
        };
        out.insert(size, entry);
    }
    Ok(())
}

// ---- cgroup v2 ----

fn v2_stats(dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    pids(dir, &mut stats.pids)?;
    v2_memory(dir, &mut stats.memory)?;
    v2_io(dir, &mut stats.blkio)?;
    v2_cpu(dir, &mut stats.cpu)?;
    v2_hugetlb(dir, &mut stats.hugetlb)?;
    Ok(())
}

fn v2_cpu(dir: &Path, out: &mut Cpu) -> Result<(), CgroupError> {
    // Microseconds on cgroup2; runc reports nanoseconds as v1 does.
    for (key, value) in keyed(dir, "cpu.stat")?.unwrap_or_default() {
        match key.as_str() {
            "usage_usec" => out.usage.total = value.saturating_mul(1000),
            "user_usec" => out.usage.user = value.saturating_mul(1000),
            "system_usec" => out.usage.kernel = value.saturating_mul(1000),
            "nr_periods" => out.throttling.periods = value,
            "nr_throttled" => out.throttling.throttled_periods = value,
            "throttled_usec" => out.throttling.throttled_time = value.saturating_mul(1000),
            _ => {}
        }
    }
    Ok(())
}

fn v2_memory(dir: &Path, out: &mut Memory) -> Result<(), CgroupError> {
    let Some(raw) = keyed(dir, "memory.stat")? else {
        return Ok(());
    };
    out.raw = raw.into_iter().collect();
    out.cache = out.raw.get("file").copied().unwrap_or(0);
    let Some(usage) = single(dir, "memory.current")? else {
        return Ok(());
    };
    out.usage = MemoryEntry {
        usage,
        limit: required(dir, "memory.max")?,
        ..MemoryEntry::default()
    };
    // cgroup2 counts swap alone; runc adds memory to it to match v1's memsw.
    if let Some(swap) = single(dir, "memory.swap.current")? {
        let limit = required(dir, "memory.swap.max")?;
        out.swap = MemoryEntry {
            usage: swap.saturating_add(usage),
            limit: if limit == u64::MAX {
                limit
            } else {
                limit.saturating_add(out.usage.limit)
            },
            ..MemoryEntry::default()
        };
    }
    Ok(())
}

/// io.stat's bytes and operations, in v1's tables and names (`Read`, `Write`).
fn v2_io(dir: &Path, out: &mut Blkio) -> Result<(), CgroupError> {
    let Some(text) = read(dir, "io.stat")? else {
        return Ok(());
    };
    let path = dir.join("io.stat");
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|e| parse_error(&path, format_args!("{line:?}: {e}")))
        };
        let (major, minor) = (num(major)?, num(minor)?);
        for item in fields {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let (op, table) = match key {
                "rbytes" => ("Read", &mut out.io_service_bytes_recursive),
                "wbytes" => ("Write", &mut out.io_service_bytes_recursive),
                "rios" => ("Read", &mut out.io_serviced_recursive),
                "wios" => ("Write", &mut out.io_serviced_recursive),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: num(value)?,
            });
        }
    }
    Ok(())
}

/// hugetlb.<size>.current and the `max` count of hugetlb.<size>.events (allocations refused
/// at the limit); cgroup2 keeps no peak. Nothing when the controller is not enabled there.
fn v2_hugetlb(dir: &Path, out: &mut BTreeMap<String, Hugetlb>) -> Result<(), CgroupError> {
    for size in page_sizes() {
        let Some(usage) = single(dir, &format!("hugetlb.{size}.current"))? else {
            return Ok(());
        };
        let failcnt = read(dir, &format!("hugetlb.{size}.events"))?
            .and_then(|t| value_of(&t, "max"))
            .unwrap_or(0);
        out.insert(
            size,
            Hugetlb {
                usage,
                max: 0,
                failcnt,
            },
        );
    }
    Ok(())
}

/// Scratch cgroups and forked children for the tests of this module and of `events`.
#[cfg(test)]
pub(crate) mod testing {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{ForkResult, Pid};

    use crate::{Cgroups, Hierarchy};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    fn unique(prefix: &str) -> String {
        format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A directory made for one test and removed (with what is below it) when dropped.
    #[derive(Debug)]
    pub(crate) struct Scratch {
        pub dir: PathBuf,
        removed: bool,
    }

    impl Scratch {
        /// A new cgroup in the v1 hierarchy of `controller`, under the test process's own
        /// cgroup there (which, for memory, is not ours to limit: only the child is).
        pub fn cgroup(controller: &str) -> Scratch {
            let own = std::fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
            let path = own
                .lines()
                .find_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let _ = parts.next()?;
                    let names = parts.next()?;
                    names
                        .split(',')
                        .any(|n| n == controller)
                        .then(|| parts.next().map(str::to_string))
                        .flatten()
                })
                .unwrap_or_else(|| panic!("no v1 {controller} hierarchy on this host"));
            let parent = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'));
            let dir = parent.join(unique("hulltest-stats"));
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            let scratch = Scratch {
                dir,
                removed: false,
            };
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let path = scratch.dir.join(file);
                if path.exists() {
                    let value = std::fs::read_to_string(parent.join(file)).unwrap();
                    std::fs::write(&path, value.trim()).unwrap();
                }
            }
            scratch
        }

        /// A plain directory standing in for a cgroup whose files a test writes itself.
        pub fn plain() -> Scratch {
            let dir = std::env::temp_dir().join(unique("hulltest-fakecg"));
            std::fs::create_dir(&dir).unwrap();
            Scratch {
                dir,
                removed: false,
            }
        }

        pub fn write(&self, file: &str, value: &str) {
            let path = self.dir.join(file);
            std::fs::write(&path, value)
                .unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
        }

        pub fn join(&self, pid: Pid) {
            self.write("cgroup.procs", &pid.to_string());
        }

        /// Removes the cgroup now; its processes must be gone.
        pub fn remove(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let res = if self.dir.starts_with("/sys/fs/cgroup") {
                    std::fs::remove_dir(&self.dir)
                } else {
                    std::fs::remove_dir_all(&self.dir)
                };
                match res {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("remove {}: {e}", self.dir.display()),
                }
            }
            self.removed = true;
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if !self.removed && !std::thread::panicking() {
                self.remove();
            } else if !self.removed {
                let _ = std::fs::remove_dir(&self.dir);
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }

    /// A `Cgroups` whose v1 hierarchies are the given scratch cgroups.
    pub(crate) fn v1_cgroups(dirs: &[(&str, &Scratch)]) -> Cgroups {
        Cgroups {
            v1: dirs
                .iter()
                .map(|(c, s)| Hierarchy {
                    controllers: vec![c.to_string()],
                    dir: s.dir.clone(),
                })
                .collect(),
            ..Cgroups::default()
        }
    }

    /// A forked child that waits on a gate before it runs its work, so the test can move it
    /// into cgroups first. Killed and reaped when dropped.
    #[derive(Debug)]
    pub(crate) struct Child {
        pub pid: Pid,
        gate: Option<OwnedFd>,
        reaped: bool,
    }

    /// Forks a child that runs `work` once released; `work` must only make raw syscalls
    /// (the test process has other threads) and never return.
    pub(crate) fn fork_gated(work: fn() -> !) -> Child {
        let (rx, tx) = nix::unistd::pipe().expect("pipe");
        // SAFETY: the child only makes async-signal-safe syscalls (close, read, the work's
        // raw syscalls, _exit) before it exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            ForkResult::Child => {
                // SAFETY: closing the child's copy of the write end, a fd it owns.
                unsafe { libc::close(tx.as_raw_fd()) };
                let mut byte = 0u8;
                // SAFETY: reads one byte into a live local.
                let n = unsafe { libc::read(rx.as_raw_fd(), (&raw mut byte).cast(), 1) };
                if n == 1 {
                    work();
                }
                // SAFETY: _exit ends the child without running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                drop(rx);
                Child {
                    pid: child,
                    gate: Some(tx),
                    reaped: false,
                }
            }
        }
    }

    impl Child {
        /// Lets the child run its work.
        pub fn release(&mut self) {
            if let Some(tx) = self.gate.take() {
                nix::unistd::write(&tx, b"x").expect("release the child");
            }
        }

        pub fn wait(&mut self) -> WaitStatus {
            let status = waitpid(self.pid, None).expect("waitpid");
            self.reaped = true;
            status
        }
    }

    impl Drop for Child {
        fn drop(&mut self) {
            if !self.reaped {
                let _ = kill(self.pid, Signal::SIGKILL);
                let _ = waitpid(self.pid, None);
            }
        }
    }

    /// Work: sleep until killed.
    pub(crate) fn sleep_forever() -> ! {
        loop {
            // SAFETY: pause(2) only waits for a signal.
            unsafe { libc::pause() };
        }
    }

    /// Maps `len` bytes of anonymous memory and writes to every page; None if mmap fails.
    fn touch(len: usize) -> Option<()> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let base = p.cast::<u8>();
        for off in (0..len).step_by(4096) {
            // SAFETY: `off` < `len`: the pointer stays inside the mapping.
            let page = unsafe { base.add(off) };
            // SAFETY: `page` is in the private mapping just made writable.
            unsafe { page.write_volatile(1) };
        }
        Some(())
    }

    /// Work: charge 8 MiB to the memory cgroup, then sleep until killed.
    pub(crate) fn hold_8m() -> ! {
        if touch(8 << 20).is_none() {
            // SAFETY: ends the child.
            unsafe { libc::_exit(2) }
        }
        sleep_forever()
    }

    /// Work: write 64 MiB, more than the test's memory limit.
    pub(crate) fn hog_64m() -> ! {
        let code = if touch(64 << 20).is_some() { 0 } else { 2 };
        // SAFETY: ends the child.
        unsafe { libc::_exit(code) }
    }

    fn now_ns() -> i128 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the live local.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    }

    /// Work: spin on the CPU for 300 ms, then exit.
    pub(crate) fn burn_300ms() -> ! {
        let end = now_ns() + 300_000_000;
        while now_ns() < end {
            std::hint::spin_loop();
        }
        // SAFETY: ends the child.
        unsafe { libc::_exit(0) }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use nix::sys::wait::WaitStatus;

    use super::testing::{burn_300ms, fork_gated, hold_8m, sleep_forever, v1_cgroups, Scratch};
    use super::*;

    /// What runc 1.1.5 prints for a container with no usage at all: nested objects always,
    /// zero numbers only where its Go types have no `omitempty`.
    #[test]
    fn empty_stats_serialize_as_runc() {
        let want = concat!(
            r#"{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},"#,
            r#""cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"#,
            r#""memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"#,
            r#""sched_relax_domain_level":0},"#,
            r#""memory":{"usage":{"limit":0,"failcnt":0},"swap":{"limit":0,"failcnt":0},"#,
            r#""kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}},"#,
            r#""pids":{},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}"#
        );
        assert_eq!(serde_json::to_string(&Stats::default()).unwrap(), want);
    }

    /// Every field set: the names runc's types/events.go gives them, in its order.
    #[test]
    fn full_stats_use_runc_field_names() {
        let entry = BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 5,
        };
        let mut s = Stats::default();
        s.cpu.usage = CpuUsage {
            total: 1,
            percpu: vec![1],
            percpu_kernel: vec![2],
            percpu_user: vec![3],
            kernel: 4,
            user: 5,
        };
        s.cpu.throttling = Throttling {
            periods: 1,
            throttled_periods: 2,
            throttled_time: 3,
        };
        s.cpuset.cpus = vec![0, 1];
        s.cpuset.mems = vec![0];
        s.cpuset.sched_relax_domain_level = -1;
        s.memory.cache = 7;
        s.memory.usage = MemoryEntry {
            limit: 1,
            usage: 2,
            max: 3,
            failcnt: 4,
        };
        s.memory.raw.insert("rss".into(), 9);
        s.pids = Pids {
            current: 2,
            limit: 10,
        };
        s.blkio = Blkio {
            io_service_bytes_recursive: vec![entry.clone()],
            io_serviced_recursive: vec![entry.clone()],
            io_queued_recursive: vec![entry.clone()],
            io_service_time_recursive: vec![entry.clone()],
            io_wait_time_recursive: vec![entry.clone()],
            io_merged_recursive: vec![entry.clone()],
            io_time_recursive: vec![entry.clone()],
            sectors_recursive: vec![entry],
        };
        s.hugetlb.insert(
            "2MB".into(),
            Hugetlb {
                usage: 1,
                max: 2,
                failcnt: 3,
            },
        );
        s.hugetlb.insert("1GB".into(), Hugetlb::default());
        let json = serde_json::to_value(&s).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(
            keys(&json),
            [
                "cpu",
                "cpuset",
                "memory",
                "pids",
                "blkio",
                "hugetlb",
                "intel_rdt",
                "network_interfaces"
            ]
        );
        assert_eq!(
            keys(&json["cpu"]["usage"]),
            [
                "total",
                "percpu",
                "percpu_kernel",
                "percpu_user",
                "kernel",
                "user"
            ]
        );
        assert_eq!(
            keys(&json["cpu"]["throttling"]),
            ["periods", "throttledPeriods", "throttledTime"]
        );
        assert_eq!(
            keys(&json["cpuset"]),
            [
                "cpus",
                "cpu_exclusive",
                "mems",
                "mem_hardwall",
                "mem_exclusive",
                "memory_migrate",
                "memory_spread_page",
                "memory_spread_slab",
                "memory_pressure",
                "sched_load_balance",
                "sched_relax_domain_level"
            ]
        );
        assert_eq!(
            keys(&json["memory"]),
            ["cache", "usage", "swap", "kernel", "kernelTCP", "raw"]
        );
        assert_eq!(
            keys(&json["memory"]["usage"]),
            ["limit", "usage", "max", "failcnt"]
        );
        assert_eq!(keys(&json["pids"]), ["current", "limit"]);
        assert_eq!(
            keys(&json["blkio"]),
            [
                "ioServiceBytesRecursive",
                "ioServicedRecursive",
                "ioQueueRecursive",
                "ioServiceTimeRecursive",
                "ioWaitTimeRecursive",
                "ioMergedRecursive",
                "ioTimeRecursive",
                "sectorsRecursive"
            ]
        );
        // Go leaves out the zero minor number.
        assert_eq!(
            json["blkio"]["ioServicedRecursive"][0].to_string(),
            r#"{"major":8,"op":"Read","value":5}"#
        );
        // Sorted like Go's map keys; a zero usage is left out, failcnt never.
        assert_eq!(
            json["hugetlb"].to_string(),
            r#"{"1GB":{"failcnt":0},"2MB":{"usage":1,"max":2,"failcnt":3}}"#
        );
        let iface = NetworkInterface {
            name: "eth0".into(),
            ..NetworkInterface::default()
        };
        assert_eq!(
            serde_json::to_string(&iface).unwrap(),
            concat!(
                r#"{"Name":"eth0","RxBytes":0,"RxPackets":0,"RxErrors":0,"RxDropped":0,"#,
                r#""TxBytes":0,"TxPackets":0,"TxErrors":0,"TxDropped":0}"#
            )
        );
    }

    /// runc 1.1.5's `events --stats` output on this host (memory.stat trimmed) reads back
    /// and prints byte for byte the same.
    #[test]
    fn runc_output_round_trips() {
        let runc = concat!(
            r#"{"cpu":{"usage":{"total":12293479,"percpu":[3587490,8705989],"percpu_kernel":[0,0],"#,
            r#""percpu_user":[0,4000000],"kernel":0,"user":10000000},"throttling":{}},"#,
            r#""cpuset":{"cpus":[0,1],"cpu_exclusive":0,"mems":[0],"mem_hardwall":0,"mem_exclusive":0,"#,
            r#""memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"#,
            r#""sched_load_balance":1,"sched_relax_domain_level":-1},"#,
            r#""memory":{"cache":16384,"usage":{"limit":9223372036854771712,"usage":741376,"max":2514944,"failcnt":0},"#,
            r#""swap":{"limit":9223372036854771712,"usage":741376,"max":2514944,"failcnt":0},"#,
            r#""kernel":{"limit":9223372036854771712,"usage":483328,"max":602112,"failcnt":0},"#,
            r#""kernelTCP":{"limit":9223372036854771712,"failcnt":0},"#,
            r#""raw":{"active_anon":4096,"cache":16384,"hierarchical_memory_limit":9223372036854771712,"#,
            r#""pgfault":776,"rss":53248,"total_rss":53248}},"#,
            r#""pids":{"current":1,"limit":100},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}"#
        );
        let stats: Stats = serde_json::from_str(runc).unwrap();
        assert_eq!(stats.cpu.usage.percpu_user, [0, 4_000_000]);
        assert_eq!(stats.cpuset.sched_relax_domain_level, -1);
        assert_eq!(serde_json::to_string(&stats).unwrap(), runc);
    }

    #[test]
    fn cpu_lists() {
        let p = Path::new("cpuset.cpus");
        assert_eq!(cpu_list(p, "0-3,8\n").unwrap(), [0, 1, 2, 3, 8]);
        assert_eq!(cpu_list(p, "1").unwrap(), [1]);
        assert!(cpu_list(p, "\n").unwrap().is_empty());
        assert!(cpu_list(p, "3-1").is_err());
        assert!(cpu_list(p, "x").is_err());
    }

    #[test]
    fn counters_parse_as_runc_parses_them() {
        assert_eq!(parse_u64("12\n"), Some(12));
        assert_eq!(parse_u64("max"), Some(u64::MAX));
        assert_eq!(parse_u64("-4096"), Some(0));
        assert_eq!(parse_u64("1.5"), None);
    }

    #[test]
    fn pids_of_a_scratch_cgroup() {
        let pids_cg = Scratch::cgroup("pids");
        pids_cg.write("pids.max", "10");
        let mut child = fork_gated(sleep_forever);
        pids_cg.join(child.pid);
        child.release();
        let stats = collect(&v1_cgroups(&[("pids", &pids_cg)])).unwrap();
        assert_eq!(
            stats.pids,
            Pids {
                current: 1,
                limit: 10
            }
        );

        pids_cg.write("pids.max", "max");
        let stats = collect(&v1_cgroups(&[("pids", &pids_cg)])).unwrap();
        assert_eq!(
            stats.pids,
            Pids {
                current: 1,
                limit: 0
            }
        );
        drop(child);
    }

    #[test]
    fn memory_of_a_scratch_cgroup() {
        let mem = Scratch::cgroup("memory");
        mem.write("memory.limit_in_bytes", &(64u64 << 20).to_string());
        let mut child = fork_gated(hold_8m);
        mem.join(child.pid);
        child.release();
        let cg = v1_cgroups(&[("memory", &mem)]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let stats = loop {
            let stats = collect(&cg).unwrap();
            if stats.memory.usage.usage >= 8 << 20 || Instant::now() > deadline {
                break stats;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let m = &stats.memory;
        assert!(
            m.usage.usage >= 8 << 20,
            "usage {} after 8 MiB written",
            m.usage.usage
        );
        assert!(m.usage.max >= m.usage.usage);
        assert_eq!(m.usage.limit, 64 << 20);
        assert!(
            m.raw.get("rss").is_some_and(|&rss| rss >= 8 << 20),
            "{:?}",
            m.raw
        );
        assert_eq!(m.cache, m.raw["cache"]);
        if mem.dir.join("memory.memsw.usage_in_bytes").exists() {
            assert!(m.swap.usage >= m.usage.usage);
        }
        drop(child);
    }

    #[test]
    fn cpu_usage_after_a_child_burns_cpu() {
        let cpu = Scratch::cgroup("cpu");
        let cpuacct = Scratch::cgroup("cpuacct");
        let cpuset = Scratch::cgroup("cpuset");
        let mut child = fork_gated(burn_300ms);
        for s in [&cpu, &cpuacct, &cpuset] {
            s.join(child.pid);
        }
        child.release();
        assert_eq!(child.wait(), WaitStatus::Exited(child.pid, 0));
        let cg = v1_cgroups(&[("cpu", &cpu), ("cpuacct", &cpuacct), ("cpuset", &cpuset)]);
        let stats = collect(&cg).unwrap();
        let u = &stats.cpu.usage;
        assert!(
            u.total >= 100_000_000,
            "total {} ns after 300 ms spinning",
            u.total
        );
        assert_eq!(u.percpu.iter().sum::<u64>(), u.total);
        assert_eq!(u.percpu_user.len(), u.percpu.len());
        assert!(u.user + u.kernel > 0, "{u:?}");
        let online = std::fs::read_to_string(cpuset.dir.join("cpuset.cpus")).unwrap();
        assert_eq!(
            stats.cpuset.cpus,
            cpu_list(Path::new("x"), &online).unwrap()
        );
        assert!(!stats.cpuset.mems.is_empty());
    }

    #[test]
    fn v1_blkio_takes_the_first_family_with_entries() {
        let d = Scratch::plain();
        // BFQ present but idle: runc moves on to the throttle tables.
        d.write("blkio.bfq.io_serviced_recursive", "Total 0\n");
        d.write("blkio.bfq.io_service_bytes_recursive", "Total 0\n");
        d.write(
            "blkio.throttle.io_serviced_recursive",
            "8:0 Read 3\n8:0 Write 4\n8:0 Sync 7\nTotal 7\n",
        );
        d.write(
            "blkio.throttle.io_service_bytes_recursive",
            "8:16 Read 4096\nTotal 4096\n",
        );
        d.write("blkio.throttle.io_serviced", "9:9 Read 1\n");
        let mut b = Blkio::default();
        v1_blkio(&d.dir, &mut b).unwrap();
        assert_eq!(b.io_serviced_recursive.len(), 3);
        assert_eq!(
            b.io_serviced_recursive[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 4
            }
        );
        assert_eq!(b.io_service_bytes_recursive[0].minor, 16);
        assert!(b.sectors_recursive.is_empty());

        d.write("blkio.throttle.io_serviced_recursive", "8:0 Read\n");
        assert!(v1_blkio(&d.dir, &mut Blkio::default()).is_err());
    }

    /// cgroup2 files, read as runc reads them: microseconds to nanoseconds, swap reported as
    /// memory+swap, io.stat split into v1's tables.
    #[test]
    fn v2_files_read_as_runc_reads_them() {
        let d = Scratch::plain();
        d.write(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\nthrottled_usec 7\n",
        );
        d.write("memory.stat", "anon 4096\nfile 8192\n");
        d.write("memory.current", "12288\n");
        d.write("memory.max", "1048576\n");
        d.write("memory.swap.current", "100\n");
        d.write("memory.swap.max", "max\n");
        d.write("pids.current", "3\n");
        d.write("pids.max", "max\n");
        d.write(
            "io.stat",
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let sizes = page_sizes();
        for size in &sizes {
            d.write(&format!("hugetlb.{size}.current"), "0\n");
            d.write(&format!("hugetlb.{size}.events"), "max 5\n");
        }
        let cg = Cgroups {
            unified: Some(d.dir.clone()),
            unified_only: true,
            ..Cgroups::default()
        };
        let s = collect(&cg).unwrap();
        assert_eq!(
            s.cpu.usage,
            CpuUsage {
                total: 1_500_000,
                user: 1_000_000,
                kernel: 500_000,
                ..CpuUsage::default()
            }
        );
        assert_eq!(
            s.cpu.throttling,
            Throttling {
                periods: 4,
                throttled_periods: 2,
                throttled_time: 7000
            }
        );
        assert_eq!(s.memory.cache, 8192);
        assert_eq!(s.memory.usage.usage, 12288);
        assert_eq!(s.memory.usage.limit, 1 << 20);
        assert_eq!(s.memory.swap.usage, 12388);
        assert_eq!(s.memory.swap.limit, u64::MAX);
        assert_eq!(
            s.pids,
            Pids {
                current: 3,
                limit: 0
            }
        );
        let ops: Vec<(&str, u64)> = s
            .blkio
            .io_service_bytes_recursive
            .iter()
            .map(|e| (e.op.as_str(), e.value))
            .collect();
        assert_eq!(ops, [("Read", 10), ("Write", 20)]);
        assert_eq!(s.blkio.io_serviced_recursive.len(), 2);
        assert_eq!(s.hugetlb.len(), sizes.len());
        assert!(s.hugetlb.values().all(|h| h.failcnt == 5));
        assert_eq!(s.cpuset, CpuSet::default());

        d.write("memory.swap.max", "1000\n");
        assert_eq!(collect(&cg).unwrap().memory.swap.limit, 1000 + (1 << 20));
    }

    /// On a hybrid host the cgroup2 side only adds hugetlb, and only where the controller is.
    #[test]
    fn hybrid_takes_hugetlb_from_the_unified_side() {
        let pids_cg = Scratch::cgroup("pids");
        let unified = Scratch::plain();
        unified.write("cpu.stat", "usage_usec 99\n");
        let mut cg = v1_cgroups(&[("pids", &pids_cg)]);
        cg.unified = Some(unified.dir.clone());
        let s = collect(&cg).unwrap();
        assert!(s.hugetlb.is_empty());
        assert_eq!(s.cpu.usage.total, 0);
        for size in page_sizes() {
            unified.write(&format!("hugetlb.{size}.current"), "2097152\n");
            unified.write(&format!("hugetlb.{size}.events"), "max 0\n");
        }
        let s = collect(&cg).unwrap();
        assert_eq!(s.hugetlb.len(), page_sizes().len());
        assert!(s.hugetlb.values().all(|h| h.usage == 2 << 20));
    }
}
