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

use crate::error::CgroupError;
use crate::model::Cgroups;

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
pub(crate) mod testing;

#[cfg(test)]
mod tests;
