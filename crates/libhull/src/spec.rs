//! The bundle: loading `config.json`, checking it as runc does, and resolving the rootfs.
//!
//! Everything the rest of the runtime reads from the config is validated here once, so the
//! init never meets a config it cannot act on halfway through setup.

pub mod default;

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, LinuxResources, Spec};

/// The name of the config file inside a bundle.
/// The runtime-spec version hull implements.
pub const OCI_VERSION: &str = "1.2.1";

pub const CONFIG_FILE: &str = "config.json";

/// The config's `linux` section. [`validate`] requires one, so a loaded bundle always has it;
/// a config that was never validated reads as an empty section rather than panicking.
pub fn linux(spec: &Spec) -> &oci_spec::runtime::Linux {
    static EMPTY: std::sync::OnceLock<oci_spec::runtime::Linux> = std::sync::OnceLock::new();
    spec.linux()
        .as_ref()
        .unwrap_or_else(|| EMPTY.get_or_init(oci_spec::runtime::Linux::default))
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("open bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {path}: field `{field}`: {message}")]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("invalid config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl SpecError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A loaded and validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Loads `<dir>/config.json`, validates it and resolves `root.path` against the bundle.
    pub fn load(dir: &Path) -> Result<Bundle, SpecError> {
        let dir = std::path::absolute(dir).map_err(|source| SpecError::Bundle {
            path: dir.to_path_buf(),
            source,
        })?;
        let meta = std::fs::metadata(&dir).map_err(|source| SpecError::Bundle {
            path: dir.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(SpecError::Bundle {
                path: dir,
                source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        let config = dir.join(CONFIG_FILE);
        let mut spec = load_spec(&config)?;
        // As runc: an empty namespace path means a new namespace (tools that rewrite configs
        // with jq leave `"path": ""` behind).
        if let Some(nss) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.namespaces_mut().as_mut())
        {
            for ns in nss.iter_mut() {
                if ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                    ns.set_path(None);
                }
            }
        }
        validate(&spec)?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| SpecError::invalid("root", "is required"))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        match std::fs::metadata(&rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(SpecError::invalid(
                    "root.path",
                    format!("{} is not a directory", rootfs.display()),
                ))
            }
            Err(e) => {
                return Err(SpecError::invalid(
                    "root.path",
                    format!("stat {}: {e}", rootfs.display()),
                ))
            }
        }
        Ok(Bundle { dir, rootfs, spec })
    }
}

/// The most hull reads of a file a caller names (config.json, `exec --process`, `update
/// -r`): far beyond any real one, small enough that a /dev/zero cannot bloat hull.
pub const INPUT_LIMIT: u64 = 16 << 20;

/// Reads a caller's input up to [`INPUT_LIMIT`] bytes; more is an error.
pub fn read_input(r: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    read_bounded(r, INPUT_LIMIT)
}

/// Reads `r` to its end if that is at most `limit` bytes; more is an error ("larger than …").
pub fn read_bounded(r: impl std::io::Read, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    r.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(data)
}

/// The runtime-spec's names of two scheduler flags, and how the pinned oci-spec spells them.
const SCHED_FLAG_NAMES: [(&str, &str); 2] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// Renames the runtime-spec's scheduler flags in a `process` object to the names oci-spec
/// 0.10 parses (runc takes the spec's names).
pub fn spec_scheduler_flags(process: &mut serde_json::Value) {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(|f| f.as_array_mut())
    else {
        return;
    };
    for flag in flags {
        let ours = SCHED_FLAG_NAMES
            .iter()
            .find(|(spec, _)| flag.as_str() == Some(spec));
        if let Some((_, ours)) = ours {
            *flag = (*ours).into();
        }
    }
}

/// Parses a config file, naming the JSON path of the first field that does not fit.
pub fn load_spec(path: &Path) -> Result<Spec, SpecError> {
    let open = |source| SpecError::Open {
        path: path.to_path_buf(),
        source,
    };
    let data = File::open(path).and_then(read_input).map_err(open)?;
    let parse = |data: &[u8]| -> Result<Spec, SpecError> {
        let mut de = serde_json::Deserializer::from_slice(data);
        let spec: Spec =
            serde_path_to_error::deserialize(&mut de).map_err(|e| SpecError::Parse {
                path: path.to_path_buf(),
                field: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        de.end().map_err(|e| SpecError::Parse {
            path: path.to_path_buf(),
            field: ".".into(),
            message: e.to_string(),
        })?;
        Ok(spec)
    };
    let lenient = |field: &str| field.starts_with("process.scheduler.flags");
    match parse(&data) {
        // Only a refused scheduler flag pays for a second parse, with the spec's names
        // renamed (every other config parses once, on the hot path of create).
        Err(e) if matches!(&e, SpecError::Parse { field, .. } if lenient(field)) => {
            let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&data) else {
                return Err(e);
            };
            if let Some(process) = value.get_mut("process") {
                spec_scheduler_flags(process);
            }
            parse(&serde_json::to_vec(&value).expect("a parsed value serializes")).map_err(|_| e)
        }
        r => r,
    }
}

/// `process`: args, cwd, env, rlimits, oomScoreAdj and the user's ids.
fn validate_process(process: &oci_spec::runtime::Process) -> Result<(), SpecError> {
    if let Some(args) = process.args() {
        if args.is_empty() {
            return Err(SpecError::invalid("process.args", "is empty"));
        }
    } else {
        return Err(SpecError::invalid("process.args", "is required"));
    }
    if !process.cwd().is_absolute() {
        return Err(SpecError::invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') || e.starts_with('=') {
                return Err(SpecError::invalid(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not of the form KEY=VALUE"),
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        if !seen.insert(format!("{:?}", r.typ())) {
            return Err(SpecError::invalid(
                format!("process.rlimits[{i}]"),
                format!("duplicate rlimit type {:?}", r.typ()),
            ));
        }
        if r.soft() > r.hard() {
            return Err(SpecError::invalid(
                format!("process.rlimits[{i}]"),
                "soft limit is greater than the hard limit",
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::invalid(
                "process.oomScoreAdj",
                format!("{adj} is outside -1000..1000"),
            ));
        }
    }
    let user = process.user();
    let ids = [
        ("process.user.uid".to_string(), user.uid()),
        ("process.user.gid".to_string(), user.gid()),
    ]
    .into_iter()
    .chain(
        user.additional_gids()
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, g)| (format!("process.user.additionalGids[{i}]"), *g)),
    );
    for (field, id) in ids {
        // setresuid(-1) means "unchanged": 4294967295 would leave the process root.
        if id > i32::MAX as u32 {
            return Err(SpecError::invalid(
                field,
                format!("{id} is out of range: uids and gids must be in range 0-2147483647"),
            ));
        }
    }
    Ok(())
}

/// The checks runc makes before it touches anything, plus the runtime-spec's MUSTs, of what
/// is not resolved into a plan (the rootfs's are checked by `rootfs::plan`).
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(SpecError::invalid(
            "ociVersion",
            format!("unsupported version {version:?}, want 1.x.y"),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::invalid("root", "is required"))?;
    if root.path().as_os_str().is_empty() {
        return Err(SpecError::invalid("root.path", "is empty"));
    }
    if let Some(process) = spec.process() {
        validate_process(process)?;
    }
    refuse_nul_bytes(spec)?;
    for (kind, hooks) in hook_lists(spec) {
        for (i, h) in hooks.iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(SpecError::invalid(
                    format!("hooks.{kind}[{i}].path"),
                    format!("{:?} is not an absolute path", h.path()),
                ));
            }
            if let Some(t) = h.timeout() {
                if t <= 0 {
                    return Err(SpecError::invalid(
                        format!("hooks.{kind}[{i}].timeout"),
                        "must be greater than zero",
                    ));
                }
            }
        }
    }
    validate_linux(spec)
}

/// Paths, arguments and values reach the kernel as C strings, which end at a NUL byte: one
/// inside would make the kernel see another value than the config says. Annotations are the
/// runtime's only free-form data and may hold anything.
fn refuse_nul_bytes(spec: &Spec) -> Result<(), SpecError> {
    fn walk(v: &serde_json::Value, path: &mut String) -> Result<(), SpecError> {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => {
                Err(SpecError::invalid(path.clone(), "contains a NUL byte"))
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    if path.is_empty() && k == "annotations" {
                        continue;
                    }
                    let len = path.len();
                    if k.contains('\0') {
                        return Err(SpecError::invalid(
                            format!("{path}{}{k:?}", if path.is_empty() { "" } else { "." }),
                            "key contains a NUL byte",
                        ));
                    }
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    let value =
        serde_json::to_value(spec).map_err(|e| SpecError::invalid("config", e.to_string()))?;
    walk(&value, &mut String::new())
}

/// The most ranges a uid_map or gid_map takes (the kernel's `UID_GID_MAP_MAX_EXTENTS`).
pub const MAX_ID_RANGES: usize = 340;

/// Checks id maps as the kernel will when they are written (to a user namespace's
/// `uid_map`/`gid_map`, or for an idmapped mount), so that a refused map is one line naming
/// its entry rather than an `EINVAL` from the init: at most 340 ranges, none empty, none
/// running past 2^32 - 1, none overlapping another on either side.
pub(crate) fn check_id_maps(field: &str, maps: &[LinuxIdMapping]) -> Result<(), SpecError> {
    if maps.len() > MAX_ID_RANGES {
        return Err(SpecError::invalid(
            field,
            format!(
                "{} ranges, the kernel takes at most {MAX_ID_RANGES}",
                maps.len()
            ),
        ));
    }
    // The kernel takes a map written in one go of less than a page.
    let text: usize = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()).len())
        .sum();
    if text >= 4096 {
        return Err(SpecError::invalid(
            field,
            format!("{text} bytes as a map, the kernel takes less than 4096"),
        ));
    }
    // Half-open [start, end) over u64, so a range ending at 2^32 - 1 is no overflow.
    let span = |start: u32, size: u32| (u64::from(start), u64::from(start) + u64::from(size));
    for (j, m) in maps.iter().enumerate() {
        let entry = || format!("{field}[{j}]");
        if m.size() == 0 {
            return Err(SpecError::invalid(entry(), "size is 0"));
        }
        for (side, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            // The kernel reserves id 2^32 - 1 ("no id"): no range may reach it.
            if span(start, m.size()).1 > u64::from(u32::MAX) {
                return Err(SpecError::invalid(
                    entry(),
                    format!(
                        "{side} {start} + size {} runs past the largest id, {}",
                        m.size(),
                        u32::MAX - 1
                    ),
                ));
            }
        }
        for (k, other) in maps[..j].iter().enumerate() {
            let overlap = |a: (u64, u64), b: (u64, u64)| a.0 < b.1 && b.0 < a.1;
            for (side, a, b) in [
                ("containerID", m.container_id(), other.container_id()),
                ("hostID", m.host_id(), other.host_id()),
            ] {
                if overlap(span(a, m.size()), span(b, other.size())) {
                    return Err(SpecError::invalid(
                        entry(),
                        format!("its {side} range overlaps that of {field}[{k}]"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// All hook lists of a spec with their config names, for validation.
fn hook_lists(spec: &Spec) -> Vec<(&'static str, &[oci_spec::runtime::Hook])> {
    let Some(h) = spec.hooks() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let prestart = h.prestart();
    [
        ("prestart", prestart),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    .collect()
}

fn validate_linux(spec: &Spec) -> Result<(), SpecError> {
    let Some(linux) = spec.linux() else {
        return Err(SpecError::invalid("linux", "is required on Linux"));
    };
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(SpecError::invalid(
                format!("linux.namespaces[{i}]"),
                format!("duplicate namespace {}", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(SpecError::invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{p:?} is not an absolute path"),
                ));
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(SpecError::invalid(
            "hostname",
            "unable to set hostname without a private UTS namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return Err(SpecError::invalid(
            "domainname",
            "unable to set domainname without a private UTS namespace",
        ));
    }
    let user_ns = namespaces
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User);
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    for (field, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        check_id_maps(field, maps.as_deref().unwrap_or_default())?;
    }
    match user_ns {
        Some(ns) if ns.path().is_none() => {
            if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err(SpecError::invalid(
                    "linux.uidMappings",
                    "a new user namespace needs uid mappings",
                ));
            }
            if linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err(SpecError::invalid(
                    "linux.gidMappings",
                    "a new user namespace needs gid mappings",
                ));
            }
        }
        Some(_) => {}
        None if has_maps => {
            return Err(SpecError::invalid(
                "linux.uidMappings",
                "user namespace mappings given but no user namespace is configured",
            ))
        }
        None => {}
    }
    if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
        return Err(SpecError::invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    if let Some(offsets) = linux.time_offsets() {
        for key in offsets.keys() {
            if key != "monotonic" && key != "boottime" {
                return Err(SpecError::invalid(
                    format!("linux.timeOffsets.{key}"),
                    "only monotonic and boottime clocks have offsets",
                ));
            }
        }
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            validate_sysctl(key, &has)?;
        }
    }
    Ok(())
}

/// Maps a propagation name (`linux.rootfsPropagation`, a mount option; plain and recursive
/// forms) to mount flags.
pub fn propagation_flags(name: &str) -> Option<nix::mount::MsFlags> {
    let flags = match name {
        "shared" => nix::mount::MsFlags::MS_SHARED,
        "rshared" => nix::mount::MsFlags::MS_SHARED | nix::mount::MsFlags::MS_REC,
        "slave" => nix::mount::MsFlags::MS_SLAVE,
        "rslave" => nix::mount::MsFlags::MS_SLAVE | nix::mount::MsFlags::MS_REC,
        "private" => nix::mount::MsFlags::MS_PRIVATE,
        "rprivate" => nix::mount::MsFlags::MS_PRIVATE | nix::mount::MsFlags::MS_REC,
        "unbindable" => nix::mount::MsFlags::MS_UNBINDABLE,
        "runbindable" => nix::mount::MsFlags::MS_UNBINDABLE | nix::mount::MsFlags::MS_REC,
        _ => return None,
    };
    Some(flags)
}

/// runc's rule: a sysctl must be namespaced, and its namespace must be private to the container.
fn validate_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), SpecError> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let field = || format!("linux.sysctl.{key}");
    let needs = |t: LinuxNamespaceType, what: &str| {
        if has(t) {
            Ok(())
        } else {
            Err(SpecError::invalid(
                field(),
                format!("sysctl is not allowed as it is in the {what} namespace, which the container does not have"),
            ))
        }
    };
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return needs(LinuxNamespaceType::Ipc, "ipc");
    }
    if key.starts_with("net.") {
        return needs(LinuxNamespaceType::Network, "network");
    }
    if key == "kernel.domainname" {
        return needs(LinuxNamespaceType::Uts, "uts");
    }
    if key == "kernel.hostname" && has(LinuxNamespaceType::Uts) {
        return Err(SpecError::invalid(
            field(),
            "sysctl is not allowed as it conflicts with the OCI \"hostname\" field",
        ));
    }
    Err(SpecError::invalid(
        field(),
        "sysctl is not in a separate kernel namespace",
    ))
}

/// Merges the fields `update` gives into `into` (`hull update`): objects field by field,
/// anything else (numbers, strings, lists) replaced.
pub fn merge_resources(into: &mut LinuxResources, update: &LinuxResources) {
    fn merge(a: &mut serde_json::Value, b: &serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    match a.get_mut(k) {
                        Some(slot) => merge(slot, v),
                        None => {
                            a.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            (a, b) => *a = b.clone(),
        }
    }
    let (Ok(mut a), Ok(b)) = (serde_json::to_value(&*into), serde_json::to_value(update)) else {
        return;
    };
    merge(&mut a, &b);
    if let Ok(merged) = serde_json::from_value(a) {
        *into = merged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `runc spec`'s config with `edit` applied, validated.
    fn check(edit: impl FnOnce(&mut serde_json::Value)) -> Result<(), String> {
        let mut v = default::runc_default(false);
        edit(&mut v);
        let spec: Spec = serde_json::from_value(v).map_err(|e| e.to_string())?;
        validate(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn the_default_config_is_valid() {
        assert_eq!(check(|_| {}), Ok(()));
    }

    fn with_user_maps(maps: serde_json::Value) -> impl FnOnce(&mut serde_json::Value) {
        move |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] = maps.clone();
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        }
    }

    fn range(c: u32, h: u32, n: u32) -> serde_json::Value {
        serde_json::json!({"containerID": c, "hostID": h, "size": n})
    }

    #[test]
    fn id_maps_the_kernel_takes_pass() {
        let ok = [
            vec![range(0, 100_000, 65_536)],
            vec![range(0, 1000, 1), range(1, 100_000, 65_536)],
            // The whole id space but the reserved last id.
            vec![range(0, 0, u32::MAX)],
        ];
        for maps in ok {
            assert_eq!(check(with_user_maps(maps.into())), Ok(()));
        }
    }

    #[test]
    fn id_maps_the_kernel_refuses_name_their_entry() {
        let bad = [
            (
                vec![range(0, 100_000, 10), range(5, 200_000, 10)],
                "linux.uidMappings[1]: its containerID range overlaps that of linux.uidMappings[0]",
            ),
            (
                vec![range(0, 100_000, 10), range(10, 100_009, 1)],
                "linux.uidMappings[1]: its hostID range overlaps that of linux.uidMappings[0]",
            ),
            (vec![range(0, 1000, 0)], "linux.uidMappings[0]: size is 0"),
            (
                vec![range(1, 0, u32::MAX)],
                "linux.uidMappings[0]: containerID 1 + size 4294967295 runs past the largest id, 4294967294",
            ),
            (
                (0..341).map(|i| range(i, 10_000 + i, 1)).collect(),
                "linux.uidMappings: 341 ranges, the kernel takes at most 340",
            ),
            (
                (0..200)
                    .map(|i| range(1_000_000_000 + i, 2_000_000_000 + i, 1))
                    .collect(),
                "linux.uidMappings: 4800 bytes as a map, the kernel takes less than 4096",
            ),
        ];
        for (maps, want) in bad {
            let err = check(with_user_maps(maps.into())).unwrap_err();
            assert_eq!(err, format!("invalid config.json: {want}"));
        }
    }
}
