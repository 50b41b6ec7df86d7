//! systemd: the systemd cgroup driver (`--systemd-cgroup`). A `cgroupsPath` of the form
//! `slice:prefix:name` names a transient unit — the scope `<prefix>-<name>.scope` in `slice`,
//! or the slice `name` when it ends in `.slice` — that systemd makes around the container's
//! init, asked over D-Bus with `Delegate=yes` and the limits as unit properties; the files
//! systemd has no property for are then written by [`super::v2`] as on any cgroup2 host.
//! `update` sets the properties again, `delete` stops the unit and resets a failed one.
//!
//! The properties are derived from the very cgroup2 writes [`super::v2`] plans, so both
//! drivers convert a config the same way (runc's conversions); systemd only rounds the CPU
//! quota up to whole percent, and the file then holds the exact value. The D-Bus wire
//! protocol is zbus's; what is here is systemd's API and runc's rules.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use zbus::zvariant::{OwnedObjectPath, Value};

use crate::devices::{self, DeviceKind};
use crate::error::CgroupError;

/// How long systemd gets to start or stop a unit (runc's limit too).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// A unit property as systemd's D-Bus API takes it.
pub type Property = (String, Value<'static>);

/// The container's unit, as kept in its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `docker-<id>.scope`, or a slice's name.
    pub name: String,
    /// The slice the scope goes in (the parent a slice wants).
    pub slice: String,
    /// Managed by the caller's user instance (rootless), not by PID 1.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
    /// systemd said it started the unit: only from then is it the container's to stop.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub started: bool,
}

impl Unit {
    /// The unit of `linux.cgroupsPath` `path` (`slice:prefix:name`; empty: hull's default
    /// `<default slice>:hull:<id>`, as runc makes `system.slice:runc:<id>`).
    pub fn parse(path: &str, id: &str, user: bool) -> Result<Unit, CgroupError> {
        let bad = |reason: String| CgroupError::Path {
            path: path.to_string(),
            reason,
        };
        let default_slice = if user { "user.slice" } else { "system.slice" };
        let (slice, prefix, name) = if path.is_empty() {
            ("", "hull", id)
        } else {
            match path.split(':').collect::<Vec<_>>()[..] {
                [slice, prefix, name] => (slice, prefix, name),
                _ => {
                    return Err(bad(
                        "expected the form \"slice:prefix:name\" for systemd cgroups".into(),
                    ))
                }
            }
        };
        let slice = if slice.is_empty() {
            default_slice
        } else {
            slice
        };
        expand_slice(slice).map_err(|reason| bad(format!("slice {slice:?}: {reason}")))?;
        if name.is_empty() {
            return Err(bad("the name (after the second ':') is empty".into()));
        }
        let unit = if name.ends_with(".slice") {
            expand_slice(name).map_err(|reason| bad(format!("slice {name:?}: {reason}")))?;
            name.to_string()
        } else {
            // runc's name even for an empty prefix: `-<name>.scope`.
            format!("{prefix}-{name}.scope")
        };
        check_unit_name(&unit).map_err(|reason| bad(format!("unit {unit:?}: {reason}")))?;
        Ok(Unit {
            name: unit,
            slice: slice.to_string(),
            user,
            started: false,
        })
    }

    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }

    /// The unit's cgroup, relative to the root of systemd's hierarchy, as systemd places it:
    /// a scope in its slice's directory, a slice where its own name puts it.
    pub fn cgroup(&self) -> PathBuf {
        let rel = |s: &str| expand_slice(s).unwrap_or_default();
        if self.is_slice() {
            rel(&self.name)
        } else {
            rel(&self.slice).join(&self.name)
        }
    }
}

/// Where systemd puts slice `slice` (`a-b-c.slice`: `a.slice/a-b.slice/a-b-c.slice`,
/// `-.slice`: the root), or why it is not a slice name.
pub fn expand_slice(slice: &str) -> Result<PathBuf, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err("a slice name ends in \".slice\"".into());
    };
    check_unit_name(slice)?;
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err("empty part between dashes".into());
        }
        path.push(format!("{prefix}{part}.slice"));
        prefix = format!("{prefix}{part}-");
    }
    Ok(path)
}

/// systemd's rule for unit names: at most 255 bytes of ASCII letters, digits and `:-_.\@`.
fn check_unit_name(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err("longer than 255 bytes".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !":-_.\\@".contains(*c))
    {
        return Err(format!("{c:?} is not allowed in a unit name"));
    }
    if name.starts_with('.') || name.split('.').next().is_none_or(str::is_empty) {
        return Err("no name before the suffix".into());
    }
    Ok(())
}

// ---- properties -------------------------------------------------------------------------

/// What systemd can hold of the cgroup2 writes `files` ((file, value) as [`super::v2`] plans
/// them): the unit properties that set the same files, in their order. `version`: systemd's,
/// asked only when a property needs a newer one.
pub fn properties_of_files(
    files: &[(String, String)],
    version: &dyn Fn() -> u32,
) -> Result<Vec<Property>, CgroupError> {
    let mut out: Vec<Property> = Vec::new();
    let mut io: BTreeMap<&'static str, Vec<(String, u64)>> = BTreeMap::new();
    let num = |file: &str, v: &str| -> Result<u64, CgroupError> {
        if v == "max" {
            return Ok(u64::MAX);
        }
        v.parse().map_err(|_| CgroupError::Invalid {
            field: file.to_string(),
            reason: format!("{v:?} is not a number or \"max\""),
        })
    };
    for (file, value) in files {
        let value = value.trim();
        let prop = |name: &str, v: u64| (name.to_string(), Value::from(v));
        match file.as_str() {
            "memory.max" => out.push(prop("MemoryMax", num(file, value)?)),
            "memory.low" => out.push(prop("MemoryLow", num(file, value)?)),
            "memory.high" => out.push(prop("MemoryHigh", num(file, value)?)),
            "memory.min" => out.push(prop("MemoryMin", num(file, value)?)),
            "memory.swap.max" => out.push(prop("MemorySwapMax", num(file, value)?)),
            "pids.max" => out.push(prop("TasksMax", num(file, value)?)),
            "cpu.weight" => out.push(prop("CPUWeight", num(file, value)?)),
            // systemd 252 reads a weight of 0 as "idle" (runc's mapping).
            "cpu.idle" if value == "1" && version() >= 252 => out.push(prop("CPUWeight", 0)),
            "cpu.max" => {
                let mut parts = value.split_whitespace();
                let quota = parts.next().unwrap_or("max");
                let period = parts.next().map(|p| num(file, p)).transpose()?;
                if let Some(p) = period {
                    if version() >= 242 {
                        out.push(prop("CPUQuotaPeriodUSec", p));
                    }
                }
                let per_sec = match quota {
                    "max" => u64::MAX,
                    q => quota_per_sec(num(file, q)?, period.unwrap_or(100_000)),
                };
                out.push(prop("CPUQuotaPerSecUSec", per_sec));
            }
            "cpuset.cpus" | "cpuset.mems" if version() >= 244 => {
                let name = if file == "cpuset.cpus" {
                    "AllowedCPUs"
                } else {
                    "AllowedMemoryNodes"
                };
                let bits = cpu_bits(value).map_err(|reason| CgroupError::Invalid {
                    field: file.clone(),
                    reason,
                })?;
                out.push((name.to_string(), Value::from(bits)));
            }
            "io.weight" => {
                let words: Vec<&str> = value.split_whitespace().collect();
                match words[..] {
                    [w] | ["default", w] => out.push(prop("IOWeight", num(file, w)?)),
                    [dev, w] if dev.contains(':') => io
                        .entry("IODeviceWeight")
                        .or_default()
                        .push((format!("/dev/block/{dev}"), num(file, w)?)),
                    _ => {}
                }
            }
            "io.max" => {
                let mut words = value.split_whitespace();
                let dev = words.next().unwrap_or_default();
                for kv in words {
                    let Some((key, rate)) = kv.split_once('=') else {
                        continue;
                    };
                    let name = match key {
                        "rbps" => "IOReadBandwidthMax",
                        "wbps" => "IOWriteBandwidthMax",
                        "riops" => "IOReadIOPSMax",
                        "wiops" => "IOWriteIOPSMax",
                        _ => continue,
                    };
                    io.entry(name)
                        .or_default()
                        .push((format!("/dev/block/{dev}"), num(file, rate)?));
                }
            }
            // Written as files only: hugetlb, rdma, cpu.idle and burst, other unified keys.
            _ => {}
        }
    }
    for (name, list) in io {
        out.push((name.to_string(), Value::from(list)));
    }
    Ok(out)
}

/// The unit properties of `res` on a v1 (legacy or hybrid) host, where systemd manages the
/// memory, cpu, blkio, pids and devices controllers under their v1 names, as runc's legacy
/// driver sets them (the limits only; device rules come from [`device_properties`]).
pub fn v1_properties(
    res: &oci_spec::runtime::LinuxResources,
    version: &dyn Fn() -> u32,
) -> Result<Vec<Property>, CgroupError> {
    let mut out: Vec<Property> = Vec::new();
    let size = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if let Some(l) = res
        .memory()
        .as_ref()
        .and_then(|m| m.limit())
        .filter(|l| *l != 0)
    {
        out.push(("MemoryLimit".into(), Value::from(size(l))));
    }
    if let Some(c) = res.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            out.push(("CPUShares".into(), Value::from(shares)));
        }
        let quota = c.quota().filter(|q| *q != 0);
        let period = c.period().filter(|p| *p != 0);
        if quota.is_some() || period.is_some() {
            let q = match quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            let value = match period {
                Some(p) => format!("{q} {p}"),
                None => q,
            };
            out.extend(properties_of_files(&[("cpu.max".into(), value)], version)?);
        }
    }
    if let Some(w) = res
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        out.push(("BlockIOWeight".into(), Value::from(u64::from(w))));
    }
    if let Some(p) = res.pids() {
        if p.limit() > 0 || p.limit() == -1 {
            out.push(("TasksMax".into(), Value::from(size(p.limit()))));
        }
    }
    Ok(out)
}

/// CPUQuotaPerSecUSec for a quota per period, rounded up to the 10 ms (1 %) steps systemd
/// keeps (runc's rounding, so a child may still set the quota it was given).
pub fn quota_per_sec(quota: u64, period: u64) -> u64 {
    let per_sec = quota.saturating_mul(1_000_000) / period.max(1);
    per_sec.div_ceil(10_000) * 10_000
}

/// A cpuset list (`0-2,4`) as systemd's bitmask: bit n of byte n/8 for cpu n.
pub fn cpu_bits(list: &str) -> Result<Vec<u8>, String> {
    let mut bits: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n < 1 << 16)
                .ok_or_else(|| format!("{part:?} is not a cpu or node range"))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(part)?, parse(part)?),
        };
        if lo > hi {
            return Err(format!("{part:?} is not a cpu or node range"));
        }
        for n in lo..=hi {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(bits)
}

/// DevicePolicy and DeviceAllow for the container's device rules.
///
/// On cgroup v2 (`exact` false) systemd's list is made a superset of what the rules allow
/// (every allow rule after the last reset, deny rules dropped): both device programs must
/// agree to an access, and hull's own, attached beside systemd's, enforces the rules
/// exactly; where systemd cannot name a rule's devices (a wildcard major with a fixed minor)
/// or the rules allow by default, systemd restricts nothing.
///
/// On v1 (`exact`) there is one list, which systemd rewrites from its properties (on
/// daemon-reload): it gets the rules as they act, never more. Denies are taken out of the
/// allows they overlap (all of an allow's overlapping access goes where systemd cannot say
/// less), a rule systemd cannot name is left out, and a deny list becomes deny-all (runc's
/// choice: systemd has no deny list).
pub fn device_properties(
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
    exact: bool,
) -> Result<Vec<Property>, CgroupError> {
    let effective = devices::effective_rules(rules)?;
    let policy = |p: &str, list: Vec<(String, String)>| {
        vec![
            ("DevicePolicy".to_string(), Value::from(p.to_string())),
            ("DeviceAllow".to_string(), Value::from(list)),
        ]
    };
    let start = effective
        .iter()
        .rposition(|(_, r)| r.is_reset())
        .map_or(0, |i| i + 1);
    let after = &effective[start..];
    if start > 0 && effective[start - 1].1.allow {
        if after.is_empty() || !exact {
            return Ok(policy("auto", Vec::new()));
        }
        tracing::warn!("systemd has no device deny list: the unit's device policy is deny-all");
        return Ok(policy("strict", Vec::new()));
    }
    // (node, access) allowed, in order.
    let mut allowed: Vec<(devices::Node, u8)> = Vec::new();
    for (_, rule) in after {
        if rule.allow {
            allowed.extend(rule.nodes().into_iter().map(|n| (n, rule.access)));
        } else if exact {
            for deny in rule.nodes() {
                for (node, access) in &mut allowed {
                    let meets =
                        |a: Option<u32>, b: Option<u32>| a.is_none() || b.is_none() || a == b;
                    if node.kind == deny.kind
                        && meets(node.major, deny.major)
                        && meets(node.minor, deny.minor)
                    {
                        *access &= !rule.access;
                    }
                }
            }
        }
    }
    let mut list: Vec<(String, String)> = Vec::new();
    for (node, access) in allowed.into_iter().filter(|(_, a)| *a != 0) {
        let group = match node.kind {
            DeviceKind::Char => "char",
            DeviceKind::Block => "block",
        };
        let path = match (node.major, node.minor) {
            (None, None) => format!("{group}-*"),
            (None, Some(_)) if exact => continue,
            (None, Some(_)) => return Ok(policy("auto", Vec::new())),
            (Some(major), None) => format!("{group}-{major}"),
            (Some(major), Some(minor)) => format!("/dev/{group}/{major}:{minor}"),
        };
        list.push((path, devices::access_string(access)));
    }
    Ok(policy("strict", list))
}

// ---- org.systemd.property.<Name> annotations ---------------------------------------------

const ANNOTATION_PREFIX: &str = "org.systemd.property.";

/// The unit properties the annotations `org.systemd.property.<Name>` ask for, as runc reads
/// them: the value in GVariant text form (`uint64 10`, `'text'`, `true`, `['a', 'b']`), a
/// `<Name>` ending in `Sec` converted to `<Name minus Sec>USec` in microseconds.
pub fn annotation_properties<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Property>, CgroupError> {
    let mut out = Vec::new();
    let mut sorted: Vec<_> = annotations.into_iter().collect();
    sorted.sort();
    for (key, value) in sorted {
        let Some(name) = key.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        let bad = |reason: String| CgroupError::Invalid {
            field: format!("annotations[{key:?}]"),
            reason,
        };
        if name.len() < 3 || !name.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(bad(format!(
                "{name:?} is not a property name (three or more ASCII letters)"
            )));
        }
        let literal = Literal::parse(value).map_err(|e| bad(format!("value {value:?}: {e}")))?;
        let sec_name = name
            .strip_suffix("Sec")
            .filter(|stem| stem.ends_with(|c: char| c.is_ascii_lowercase()));
        match sec_name {
            Some(stem) => {
                let usec = literal
                    .microseconds()
                    .map_err(|e| bad(format!("value {value:?}: {e}")))?;
                out.push((format!("{stem}USec"), Value::from(usec)));
            }
            None => out.push((name.to_string(), literal.into_value())),
        }
    }
    Ok(out)
}

/// A value in the part of GVariant's text format runc's annotations use.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Bool(bool),
    Byte(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    /// Elements of one type, with that type's signature (for an empty array).
    Array(String, Vec<Literal>),
}

impl Literal {
    fn parse(text: &str) -> Result<Literal, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            annotated: false,
        };
        let v = p.value(None)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected text at byte {}", p.i));
        }
        Ok(v)
    }

    fn signature(&self) -> String {
        match self {
            Literal::Bool(_) => "b".into(),
            Literal::Byte(_) => "y".into(),
            Literal::I16(_) => "n".into(),
            Literal::U16(_) => "q".into(),
            Literal::I32(_) => "i".into(),
            Literal::U32(_) => "u".into(),
            Literal::I64(_) => "x".into(),
            Literal::U64(_) => "t".into(),
            Literal::F64(_) => "d".into(),
            Literal::Str(_) => "s".into(),
            Literal::Array(sig, _) => format!("a{sig}"),
        }
    }

    fn microseconds(&self) -> Result<u64, String> {
        const M: u64 = 1_000_000;
        let negative = || "a negative time".to_string();
        Ok(match *self {
            Literal::Byte(v) => u64::from(v) * M,
            Literal::U16(v) => u64::from(v) * M,
            Literal::U32(v) => u64::from(v) * M,
            Literal::U64(v) => v.saturating_mul(M),
            Literal::I16(v) => u64::try_from(v).map_err(|_| negative())? * M,
            Literal::I32(v) => u64::try_from(v).map_err(|_| negative())? * M,
            Literal::I64(v) => u64::try_from(v).map_err(|_| negative())?.saturating_mul(M),
            Literal::F64(v) if v >= 0.0 => (v * M as f64) as u64,
            Literal::F64(_) => return Err(negative()),
            _ => return Err("a time in seconds must be a number".into()),
        })
    }

    fn into_value(self) -> Value<'static> {
        fn all<T>(items: Vec<Literal>, f: impl Fn(Literal) -> Option<T>) -> Vec<T> {
            items.into_iter().filter_map(f).collect()
        }
        match self {
            Literal::Bool(v) => Value::from(v),
            Literal::Byte(v) => Value::from(v),
            Literal::I16(v) => Value::from(v),
            Literal::U16(v) => Value::from(v),
            Literal::I32(v) => Value::from(v),
            Literal::U32(v) => Value::from(v),
            Literal::I64(v) => Value::from(v),
            Literal::U64(v) => Value::from(v),
            Literal::F64(v) => Value::from(v),
            Literal::Str(v) => Value::from(v),
            Literal::Array(sig, items) => {
                // The elements of one variant, as a typed vector (zvariant's array type).
                macro_rules! of {
                    ($variant:ident) => {
                        Value::from(all(items, |l| match l {
                            Literal::$variant(v) => Some(v),
                            _ => None,
                        }))
                    };
                }
                match sig.as_str() {
                    "b" => of!(Bool),
                    "y" => of!(Byte),
                    "n" => of!(I16),
                    "q" => of!(U16),
                    "i" => of!(I32),
                    "u" => of!(U32),
                    "x" => of!(I64),
                    "t" => of!(U64),
                    "d" => of!(F64),
                    _ => of!(Str),
                }
            }
        }
    }
}

struct Parser<'s> {
    s: &'s [u8],
    i: usize,
    /// A type annotation was just read: another one may not follow (no unbounded recursion).
    annotated: bool,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn word(&mut self) -> &str {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"@+-._".contains(c))
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }

    /// One value; `want`: the signature it must have (from a type annotation or an array).
    fn value(&mut self, want: Option<&str>) -> Result<Literal, String> {
        self.ws();
        match self.s.get(self.i) {
            None => Err("a value is missing".into()),
            Some(b'\'' | b'"') => {
                let v = Literal::Str(self.string()?);
                check(v, want)
            }
            Some(b'[') => self.array(want),
            Some(b'@') => {
                self.i += 1;
                let sig = self.word().to_string();
                let simple = |t: &str| "bynqiuxtds".contains(t) && t.len() == 1;
                let ok = simple(&sig) || sig.strip_prefix('a').is_some_and(simple);
                if !ok {
                    return Err(format!("type @{sig} is not supported"));
                }
                self.annotated_value(&sig)
            }
            Some(_) => {
                let start = self.i;
                let word = self.word().to_string();
                let typed = match word.as_str() {
                    "boolean" => Some("b"),
                    "byte" => Some("y"),
                    "int16" => Some("n"),
                    "uint16" => Some("q"),
                    "int32" => Some("i"),
                    "uint32" => Some("u"),
                    "int64" => Some("x"),
                    "uint64" => Some("t"),
                    "double" => Some("d"),
                    "string" => Some("s"),
                    _ => None,
                };
                if let Some(sig) = typed {
                    if want.is_some_and(|w| w != sig) {
                        return Err(format!("{word} where {} was expected", want.unwrap_or("")));
                    }
                    return self.annotated_value(sig);
                }
                match word.as_str() {
                    "true" => check(Literal::Bool(true), want),
                    "false" => check(Literal::Bool(false), want),
                    "" => Err(format!("unexpected {:?}", self.s[start] as char)),
                    n => number(n, want.unwrap_or("")),
                }
            }
        }
    }

    fn annotated_value(&mut self, sig: &str) -> Result<Literal, String> {
        if std::mem::replace(&mut self.annotated, true) {
            return Err("two type annotations in a row".into());
        }
        let v = self.value(Some(sig));
        self.annotated = false;
        v
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err("unterminated string".into()),
                Some(&c) if c == quote => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = *self.s.get(self.i + 1).ok_or("unterminated string")?;
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        c => c,
                    });
                    self.i += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| "a string that is not UTF-8".to_string())
    }

    fn array(&mut self, want: Option<&str>) -> Result<Literal, String> {
        let elem = match want {
            Some(w) => Some(
                w.strip_prefix('a')
                    .ok_or_else(|| format!("an array where {w} was expected"))?
                    .to_string(),
            ),
            None => None,
        };
        self.i += 1;
        let mut items = Vec::new();
        let mut sig = elem;
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&b']') {
                self.i += 1;
                break;
            }
            if !items.is_empty() {
                if self.s.get(self.i) != Some(&b',') {
                    return Err("expected ',' or ']' in an array".into());
                }
                self.i += 1;
            }
            let item = self.value(sig.as_deref())?;
            if matches!(item, Literal::Array(..)) {
                return Err("nested arrays are not supported".into());
            }
            sig.get_or_insert_with(|| item.signature());
            items.push(item);
        }
        let sig = sig.ok_or("an empty array needs a type: @as []")?;
        Ok(Literal::Array(sig, items))
    }
}

fn check(v: Literal, want: Option<&str>) -> Result<Literal, String> {
    match want {
        Some(w) if w != v.signature() => Err(format!("{} where {w} was expected", v.signature())),
        _ => Ok(v),
    }
}

/// A number of signature `sig` (empty: GVariant's default, int32, or double with a point).
fn number(text: &str, sig: &str) -> Result<Literal, String> {
    let bad = || {
        format!(
            "{text:?} is not a number of type {}",
            if sig.is_empty() { "i" } else { sig }
        )
    };
    let float = text.contains(['.', 'e', 'E']) && !text.starts_with("0x");
    Ok(match sig {
        "y" => Literal::Byte(text.parse().map_err(|_| bad())?),
        "n" => Literal::I16(text.parse().map_err(|_| bad())?),
        "q" => Literal::U16(text.parse().map_err(|_| bad())?),
        "i" => Literal::I32(text.parse().map_err(|_| bad())?),
        "u" => Literal::U32(text.parse().map_err(|_| bad())?),
        "x" => Literal::I64(text.parse().map_err(|_| bad())?),
        "t" => Literal::U64(text.parse().map_err(|_| bad())?),
        "d" => Literal::F64(text.parse().map_err(|_| bad())?),
        "" if float => Literal::F64(text.parse().map_err(|_| bad())?),
        "" => Literal::I32(text.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

// ---- the bus ----------------------------------------------------------------------------

/// A connection to the systemd that manages the container's units.
#[derive(Debug)]
pub struct Bus {
    conn: zbus::Connection,
    version: OnceLock<u32>,
}

/// The connection of this process to systemd (PID 1's, or with `user` the caller's own
/// instance over the session bus), made on first use.
pub fn bus(user: bool) -> Result<&'static Bus, CgroupError> {
    static SYSTEM: OnceLock<Result<Bus, String>> = OnceLock::new();
    static USER: OnceLock<Result<Bus, String>> = OnceLock::new();
    let cell = if user { &USER } else { &SYSTEM };
    // Not systemd's private socket (/run/systemd/private), which systemctl uses as root:
    // zbus 5 refuses the sender systemd puts on messages there.
    let name = if user {
        "the session bus"
    } else {
        "the system bus"
    };
    cell.get_or_init(|| Bus::connect(user))
        .as_ref()
        .map_err(|reason| CgroupError::Bus {
            bus: name.into(),
            reason: reason.clone(),
        })
}

/// Runs `fut` to completion with every signal blocked in this thread, so that a thread the
/// D-Bus client starts meanwhile inherits that mask. The runtime takes SIGCHLD and the
/// signals it forwards to the container from a signalfd in its main thread: a thread that
/// did not block them would be handed them instead, and `run` would never see its container
/// exit. Signals that come meanwhile stay pending until the mask is restored.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    hull_sys::process::with_signals_blocked(|| async_io::block_on(fut))
}

fn method_error(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

fn describe(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, Some(detail), _) => format!("{detail} ({name})"),
        e => e.to_string(),
    }
}

impl Bus {
    fn connect(user: bool) -> Result<Bus, String> {
        block_on(async {
            let attempt = |uid: Option<u32>| async move {
                let builder = if user {
                    zbus::connection::Builder::session()
                } else {
                    zbus::connection::Builder::system()
                };
                let mut builder = builder.map_err(|e| e.to_string())?;
                if let Some(uid) = uid {
                    builder = builder.user_id(uid);
                }
                builder
                    .method_timeout(JOB_TIMEOUT)
                    .build()
                    .await
                    .map_err(|e| e.to_string())
            };
            // EXTERNAL auth names a uid, which the bus compares with the one it sees on the
            // socket. A bus in our own user namespace sees our uid there; one outside it (a
            // user's bus, with rootless podman running us in its namespace) sees our uid
            // outside: that one, when the first is refused.
            let conn = match attempt(None).await {
                Ok(conn) => conn,
                Err(first) => match hull_sys::proc::outer_uid() {
                    Some(uid) => attempt(Some(uid)).await.map_err(|_| first)?,
                    None => return Err(first),
                },
            };
            Ok(Bus {
                conn,
                version: OnceLock::new(),
            })
        })
    }

    async fn call<B>(&self, method: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
            .await
    }

    /// systemd's version (252 of "252.36-1~deb12u1"); 0 when it cannot be read.
    pub fn version(&self) -> u32 {
        *self.version.get_or_init(|| {
            block_on(async {
                let reply = self
                    .conn
                    .call_method(
                        Some(DEST),
                        PATH,
                        Some("org.freedesktop.DBus.Properties"),
                        "Get",
                        &(MANAGER, "Version"),
                    )
                    .await
                    .ok()?;
                let v: zbus::zvariant::OwnedValue = reply.body().deserialize().ok()?;
                let s: String = v.try_into().ok()?;
                s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
            })
            .unwrap_or(0)
        })
    }

    /// Runs a job-returning `method` of the manager and waits for the job to end.
    async fn job<B>(&self, method: &str, unit: &str, body: &B) -> Result<(), JobError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        // Listening before the call: the job may end before its path comes back.
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(MANAGER)
            .and_then(|b| b.member("JobRemoved"))
            .and_then(|b| b.path(PATH))
            .map_err(JobError::Call)?
            .build();
        let mut signals = zbus::MessageStream::for_match_rule(rule, &self.conn, None)
            .await
            .map_err(JobError::Call)?;
        let reply = self.call(method, body).await.map_err(JobError::Call)?;
        let job: OwnedObjectPath = reply.body().deserialize().map_err(JobError::Call)?;
        let wait = async {
            while let Some(msg) = signals.next().await {
                let Ok(msg) = msg else { continue };
                let Ok((_, path, _, result)) = msg
                    .body()
                    .deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path == job {
                    return Some(result);
                }
            }
            None
        };
        let timeout = async {
            async_io::Timer::after(JOB_TIMEOUT).await;
            None
        };
        match futures_lite::future::or(wait, timeout).await {
            Some(result) if result == "done" => Ok(()),
            Some(result) => Err(JobError::Failed(format!(
                "job {result} (see `journalctl -u {unit}`)"
            ))),
            None => Err(JobError::Failed(format!(
                "no answer from systemd within {} s",
                JOB_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Starts `unit` with `pid` in it (a scope) or beside it (a slice, which `pid` joins by
    /// its cgroup afterwards) and the properties `props`; returns once systemd has.
    /// `legacy`: a v1 or hybrid host, where the IO accounting is v1's blkio.
    pub fn start(
        &self,
        unit: &Unit,
        pid: u32,
        props: Vec<Property>,
        legacy: bool,
    ) -> Result<(), CgroupError> {
        let fail = |reason: String| CgroupError::Systemd {
            step: "start unit",
            unit: unit.name.clone(),
            reason,
        };
        let mut all: Vec<Property> = vec![(
            "Description".into(),
            Value::from(format!("hull container {}", unit.name)),
        )];
        if unit.is_slice() {
            all.push(("Wants".into(), Value::from(vec![unit.slice.clone()])));
        } else {
            all.push(("Slice".into(), Value::from(unit.slice.clone())));
            all.push(("Delegate".into(), Value::from(true)));
            all.push(("PIDs".into(), Value::from(vec![pid])));
        }
        let io = if legacy {
            "BlockIOAccounting"
        } else {
            "IOAccounting"
        };
        for p in ["MemoryAccounting", "CPUAccounting", io, "TasksAccounting"] {
            all.push((p.into(), Value::from(true)));
        }
        // Stopping a container's unit must not wait for, or pull in, anything else.
        all.push(("DefaultDependencies".into(), Value::from(false)));
        all.extend(props);
        let aux: Vec<(String, Vec<Property>)> = Vec::new();
        let body = (unit.name.as_str(), "replace", all, aux);
        block_on(async {
            match self.job("StartTransientUnit", &unit.name, &body).await {
                Err(JobError::Call(e))
                    if method_error(&e) == Some("org.freedesktop.systemd1.UnitExists") =>
                {
                    // Perhaps a failed unit of a container gone before: reset it, try once more.
                    let _ = self.call("ResetFailedUnit", &(unit.name.as_str(),)).await;
                    self.job("StartTransientUnit", &unit.name, &body)
                        .await
                        .map_err(|e| fail(e.to_string()))
                }
                Err(JobError::Failed(e)) => {
                    // systemd has the unit, failed or not started in time: take it back.
                    self.stop_quietly(unit).await;
                    Err(fail(e))
                }
                other => other.map_err(|e| fail(e.to_string())),
            }
        })
    }

    async fn stop_quietly(&self, unit: &Unit) {
        let name = unit.name.as_str();
        if let Err(e) = self.call("StopUnit", &(name, "replace")).await {
            tracing::debug!("stop {name}: {}", describe(&e));
        }
        if let Err(e) = self.call("ResetFailedUnit", &(name,)).await {
            tracing::debug!("reset-failed {name}: {}", describe(&e));
        }
    }

    /// Sets properties of a running unit (`runtime`: until it stops, as every transient one).
    pub fn set(&self, unit: &Unit, props: Vec<Property>) -> Result<(), CgroupError> {
        if props.is_empty() {
            return Ok(());
        }
        block_on(self.call("SetUnitProperties", &(unit.name.as_str(), true, props)))
            .map(drop)
            .map_err(|e| CgroupError::Systemd {
                step: "set properties of",
                unit: unit.name.clone(),
                reason: describe(&e),
            })
    }

    /// Has systemd move `pid` into `unit`'s cgroup (systemd ≥ 238). A user instance that
    /// may not move it itself (the caller is outside its subtree) asks the system instance,
    /// which does so for a process of the same user.
    pub fn attach(&self, unit: &Unit, pid: u32) -> Result<(), CgroupError> {
        block_on(self.call(
            "AttachProcessesToUnit",
            &(unit.name.as_str(), "", vec![pid]),
        ))
        .map(drop)
        .map_err(|e| CgroupError::Systemd {
            step: "attach a process to",
            unit: unit.name.clone(),
            reason: describe(&e),
        })
    }

    /// Stops `unit` (gone already is fine) and clears a failed state it is left in.
    pub fn stop(&self, unit: &Unit) -> Result<(), CgroupError> {
        block_on(async {
            let stopped = match self
                .job("StopUnit", &unit.name, &(unit.name.as_str(), "replace"))
                .await
            {
                Err(JobError::Call(e))
                    if method_error(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") =>
                {
                    Ok(())
                }
                other => other,
            };
            match self.call("ResetFailedUnit", &(unit.name.as_str(),)).await {
                Err(e) if method_error(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => {}
                Err(e) => tracing::debug!("reset-failed {}: {}", unit.name, describe(&e)),
                Ok(_) => {}
            }
            stopped.map_err(|e| CgroupError::Systemd {
                step: "stop unit",
                unit: unit.name.clone(),
                reason: e.to_string(),
            })
        })
    }

    /// The cgroup systemd gave `unit` (`/system.slice/x.scope`), for a unit not where its
    /// name says (a user instance's units are below the instance's own cgroup).
    pub fn control_group(&self, unit: &Unit) -> Result<String, CgroupError> {
        let fail = |e: zbus::Error| CgroupError::Systemd {
            step: "ask the cgroup of",
            unit: unit.name.clone(),
            reason: describe(&e),
        };
        block_on(async {
            let reply = self
                .call("GetUnit", &(unit.name.as_str(),))
                .await
                .map_err(fail)?;
            let path: OwnedObjectPath = reply.body().deserialize().map_err(fail)?;
            let iface = if unit.is_slice() {
                "org.freedesktop.systemd1.Slice"
            } else {
                "org.freedesktop.systemd1.Scope"
            };
            let reply = self
                .conn
                .call_method(
                    Some(DEST),
                    path.as_str(),
                    Some("org.freedesktop.DBus.Properties"),
                    "Get",
                    &(iface, "ControlGroup"),
                )
                .await
                .map_err(fail)?;
            let v: zbus::zvariant::OwnedValue = reply.body().deserialize().map_err(fail)?;
            String::try_from(v).map_err(|e| fail(e.into()))
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("{}", describe(.0))]
    Call(zbus::Error),
    #[error("{0}")]
    Failed(String),
}

#[cfg(test)]
mod tests;
