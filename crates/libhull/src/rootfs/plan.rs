//! The rootfs part of the checked plan: what `mounts[]`, `linux.devices`, the masked and
//! read-only paths, `linux.rootfsPropagation` and `root.readonly` ask for, resolved and
//! checked by the runtime before the clone. Pure (no syscall): every refusal of a config is
//! one line naming its field, before anything exists; the init only carries the plan out and
//! refuses nothing but what it finds in the rootfs.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::clean_path;
use super::options::{Idmap, MountOptions};
use crate::spec::{check_id_maps, propagation_flags, SpecError};

/// The devices every container gets (runtime-spec "Default Devices").
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Everything the init does to the rootfs, in the order it does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Absolute host path of the rootfs.
    pub rootfs: PathBuf,
    /// `linux.rootfsPropagation`.
    pub propagation: Option<MsFlags>,
    /// `mounts[]`, in order.
    pub mounts: Vec<MountStep>,
    /// The nodes to make in /dev; `None` when the config binds /dev from elsewhere.
    pub devices: Option<Vec<Device>>,
    /// `process.terminal`: /dev/console is made for the pty.
    pub console: bool,
    pub readonly_paths: Vec<PathBuf>,
    pub masked_paths: Vec<PathBuf>,
    /// `root.readonly`.
    pub readonly_root: bool,
    /// `linux.mountLabel`.
    pub mount_label: Option<String>,
    /// The container has a new cgroup namespace (its cgroup mounts show its own cgroup).
    pub cgroup_ns: bool,
}

/// One `mounts[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// Inside the rootfs: absolute, without `.` or `..`, a host path into the rootfs made
    /// relative to it.
    pub dest: PathBuf,
    pub kind: MountKind,
    pub opts: MountOptions,
    /// An idmapped bind mount: the runtime makes it (see [`super::open_bind_sources`]).
    pub idmap: Option<Idmapping>,
}

/// How the owners of files on a bind mount are mapped (`mounts[].uidMappings` and
/// `gidMappings`, the `idmap` and `ridmap` options): `MOUNT_ATTR_IDMAP` with a user
/// namespace of these maps, so that a file owned by id `containerID + n` on the source's
/// filesystem shows as owned by `hostID + n` through the mount, and the reverse for writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idmapping {
    /// `ridmap`: every mount of the bound tree; otherwise only its top.
    pub recursive: bool,
    pub ids: IdmapIds,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdmapIds {
    /// The mount's own maps, or the new user namespace's when only `idmap` was given.
    Maps {
        uid: Vec<LinuxIdMapping>,
        gid: Vec<LinuxIdMapping>,
    },
    /// `idmap` alone in a container that joins this user namespace: its maps are the mount's.
    UserNs(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (relative ones joined to the bundle); with `remount`, a
    /// change of the flags of what is at the destination already.
    Bind {
        source: PathBuf,
    },
    /// `cgroup`: v1 hierarchies, or cgroup2 on a unified host (decided in the init, which
    /// sees the host's mounts).
    Cgroup,
    Cgroup2,
    /// A new filesystem of `typ` from `source` (the type's name when the config has none).
    Filesystem {
        typ: String,
        source: String,
    },
}

impl MountStep {
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, MountKind::Bind { .. })
    }

    /// A new tmpfs asked read-only: mounted writable so that what goes below it can be made,
    /// made read-only after.
    pub fn is_readonly_tmpfs(&self) -> bool {
        matches!(&self.kind, MountKind::Filesystem { typ, .. } if typ == "tmpfs")
            && self.opts.readonly()
            && !self.opts.flags.contains(MsFlags::MS_REMOUNT)
    }
}

/// One node to make in /dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Device {
    pub fn rdev(&self) -> u64 {
        nix::sys::stat::makedev(self.major, self.minor)
    }
}

/// Resolves and checks the rootfs part of `spec` for a rootfs at `rootfs` in the bundle
/// `bundle` (both absolute host paths).
pub fn plan(spec: &Spec, rootfs: &Path, bundle: &Path) -> Result<Plan, SpecError> {
    let linux = spec.linux().as_ref();
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => None,
        Some(p) => Some(propagation_flags(p).ok_or_else(|| {
            SpecError::invalid(
                "linux.rootfsPropagation",
                format!("unknown propagation {p:?}"),
            )
        })?),
    };
    let mounts = spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| mount_step(i, m, rootfs, bundle, linux))
        .collect::<Result<Vec<_>, _>>()?;
    // Checked even where /dev is bound and none is made.
    let devices = devices(spec)?;
    let dev_bound = mounts
        .iter()
        .any(|m| m.is_bind() && m.dest == Path::new("/dev"));
    let devices = (!dev_bound).then_some(devices);
    let paths = |field: &str, list: Option<&Vec<String>>| {
        list.into_iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| {
                if p.starts_with('/') {
                    Ok(PathBuf::from(p))
                } else {
                    Err(SpecError::invalid(
                        format!("{field}[{i}]"),
                        format!("{p:?} is not an absolute path"),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Plan {
        rootfs: rootfs.to_path_buf(),
        propagation,
        mounts,
        devices,
        console: spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false),
        readonly_paths: paths(
            "linux.readonlyPaths",
            linux.and_then(|l| l.readonly_paths().as_ref()),
        )?,
        masked_paths: paths(
            "linux.maskedPaths",
            linux.and_then(|l| l.masked_paths().as_ref()),
        )?,
        readonly_root: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        mount_label: linux.and_then(|l| l.mount_label().clone()),
        cgroup_ns: linux
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup)),
    })
}

fn mount_step(
    i: usize,
    m: &Mount,
    rootfs: &Path,
    bundle: &Path,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<MountStep, SpecError> {
    if !m.destination().is_absolute() {
        return Err(SpecError::invalid(
            format!("mounts[{i}].destination"),
            format!("{:?} is not an absolute path", m.destination()),
        ));
    }
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    // As runc: a destination written as a host path inside the rootfs names the same place
    // (configs made by older tools spell mount points that way).
    let dest = clean_path(m.destination());
    let root = clean_path(rootfs);
    let dest = match dest.strip_prefix(&root) {
        Ok(rest) if root != Path::new("/") => Path::new("/").join(rest),
        _ => dest,
    };
    let typ = m.typ().as_deref().unwrap_or("");
    let source = m.source().as_deref().filter(|s| !s.as_os_str().is_empty());
    let kind = if opts.is_bind() || typ == "bind" {
        let Some(source) = source else {
            return Err(SpecError::invalid(
                format!("mounts[{i}].source"),
                "a bind mount needs a source",
            ));
        };
        MountKind::Bind {
            source: bundle.join(source),
        }
    } else {
        match typ {
            "" => {
                return Err(SpecError::invalid(
                    format!("mounts[{i}].type"),
                    format!("{}: no type and no bind option", dest.display()),
                ))
            }
            "cgroup" => MountKind::Cgroup,
            "cgroup2" => MountKind::Cgroup2,
            // An empty source stays empty (mount(2) gets ""); only a missing one is the type.
            _ => MountKind::Filesystem {
                typ: typ.to_string(),
                source: m
                    .source()
                    .as_deref()
                    .map_or_else(|| typ.into(), |s| s.display().to_string()),
            },
        }
    };
    let is_bind = matches!(kind, MountKind::Bind { .. });
    let idmap = idmapping(i, m, &opts, is_bind, linux)?;
    Ok(MountStep {
        dest,
        kind,
        opts,
        idmap,
    })
}

/// The idmapping `mounts[i]` asks for, checked as runc checks it: bind mounts only, uid and
/// gid maps together, maps the kernel takes; `idmap`/`ridmap` alone take the container's
/// user namespace's maps.
fn idmapping(
    i: usize,
    m: &Mount,
    opts: &MountOptions,
    is_bind: bool,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<Option<Idmapping>, SpecError> {
    let some = |v: &Option<Vec<LinuxIdMapping>>| v.clone().filter(|v| !v.is_empty());
    let (uid, gid) = (some(m.uid_mappings()), some(m.gid_mappings()));
    if opts.idmap.is_none() && uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    let field = |f: &str| format!("mounts[{i}].{f}");
    let dest = m.destination().display();
    if !is_bind || opts.flags.contains(MsFlags::MS_REMOUNT) {
        let f = if opts.idmap.is_some() {
            "options"
        } else {
            "uidMappings"
        };
        return Err(SpecError::invalid(
            field(f),
            format!("{dest}: idmapped mounts are only supported for bind mounts"),
        ));
    }
    let recursive = opts.idmap == Some(Idmap::Recursive);
    let ids = match (uid, gid) {
        (Some(uid), Some(gid)) => {
            check_id_maps(&field("uidMappings"), &uid)?;
            check_id_maps(&field("gidMappings"), &gid)?;
            IdmapIds::Maps { uid, gid }
        }
        (Some(_), None) => {
            return Err(SpecError::invalid(
                field("gidMappings"),
                format!("{dest}: an idmapped mount needs gid mappings with its uid mappings"),
            ))
        }
        (None, Some(_)) => {
            return Err(SpecError::invalid(
                field("uidMappings"),
                format!("{dest}: an idmapped mount needs uid mappings with its gid mappings"),
            ))
        }
        (None, None) => {
            let user = linux
                .and_then(|l| l.namespaces().as_ref())
                .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::User));
            match user {
                Some(ns) => match ns.path() {
                    Some(path) => IdmapIds::UserNs(path.clone()),
                    None => IdmapIds::Maps {
                        uid: linux
                            .and_then(|l| l.uid_mappings().clone())
                            .unwrap_or_default(),
                        gid: linux
                            .and_then(|l| l.gid_mappings().clone())
                            .unwrap_or_default(),
                    },
                },
                None => {
                    return Err(SpecError::invalid(
                        field("options"),
                        format!(
                            "{dest}: idmapped without uidMappings and gidMappings, and no user \
                             namespace to take them from"
                        ),
                    ))
                }
            }
        }
    };
    Ok(Some(Idmapping { recursive, ids }))
}

/// `linux.devices`, then each default device the config does not list itself.
fn devices(spec: &Spec) -> Result<Vec<Device>, SpecError> {
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(configured.len() + DEFAULT_DEVICES.len());
    for (i, d) in configured.iter().enumerate() {
        if !d.path().is_absolute() {
            return Err(SpecError::invalid(
                format!("linux.devices[{i}].path"),
                format!("{:?} is not an absolute path", d.path()),
            ));
        }
        let path = clean_path(d.path());
        if path.file_name().is_none() {
            return Err(SpecError::invalid(
                format!("linux.devices[{i}].path"),
                format!("{:?} is not a file path", d.path()),
            ));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(SpecError::invalid(
                    format!("linux.devices[{i}].type"),
                    "\"a\" is not a device node type",
                ))
            }
        };
        let (Ok(major), Ok(minor)) = (u64::try_from(d.major()), u64::try_from(d.minor())) else {
            return Err(SpecError::invalid(
                format!("linux.devices[{i}]"),
                format!("{}: negative major or minor number", d.path().display()),
            ));
        };
        out.push(Device {
            path,
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for &(path, major, minor) in &DEFAULT_DEVICES {
        if out.iter().any(|d| d.path == Path::new(path)) {
            continue;
        }
        out.push(Device {
            path: PathBuf::from(path),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The plan of `hull spec`'s config changed by `edit`, for a rootfs at /b/rootfs.
    fn plan_of(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Plan, String> {
        let mut v = crate::spec::default::runc_default(false);
        edit(&mut v);
        let spec: Spec = serde_json::from_value(v).unwrap();
        plan(&spec, Path::new("/b/rootfs"), Path::new("/b")).map_err(|e| e.to_string())
    }

    fn add_mount(m: serde_json::Value) -> impl FnOnce(&mut serde_json::Value) {
        move |v| v["mounts"].as_array_mut().unwrap().push(m)
    }

    #[test]
    fn the_default_config_plans_its_mounts_devices_and_paths() {
        let p = plan_of(|_| {}).unwrap();
        let dests: Vec<_> = p.mounts.iter().map(|m| m.dest.to_str().unwrap()).collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        assert_eq!(p.mounts[6].kind, MountKind::Cgroup);
        let devices = p.devices.unwrap();
        assert_eq!(devices.len(), 6, "the default devices");
        assert_eq!((devices[5].major, devices[5].minor), (5, 0));
        assert!(p.masked_paths.contains(&PathBuf::from("/proc/kcore")));
        assert!(p.readonly_paths.contains(&PathBuf::from("/proc/sys")));
        assert!(p.readonly_root);
        assert_eq!(p.propagation, None);
    }

    #[test]
    fn bind_sources_join_the_bundle_and_host_style_destinations_are_made_relative() {
        let p = plan_of(add_mount(json!({
            "destination": "/b/rootfs/data/../vol", "type": "none",
            "source": "data", "options": ["rbind", "ro"]
        })))
        .unwrap();
        let m = p.mounts.last().unwrap();
        assert_eq!(m.dest, Path::new("/vol"));
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: PathBuf::from("/b/data")
            }
        );
        assert!(m.opts.is_recursive_bind() && m.opts.readonly());
    }

    #[test]
    fn a_filesystem_without_source_is_named_by_its_type_and_an_empty_one_stays_empty() {
        let p = plan_of(|v| {
            let m = v["mounts"].as_array_mut().unwrap();
            m.push(json!({ "destination": "/a", "type": "tmpfs" }));
            m.push(json!({ "destination": "/b", "type": "tmpfs", "source": "" }));
        })
        .unwrap();
        let sources: Vec<_> = p.mounts[7..]
            .iter()
            .map(|m| match &m.kind {
                MountKind::Filesystem { source, .. } => source.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sources, ["tmpfs", ""]);
    }

    #[test]
    fn a_bound_dev_means_no_device_nodes_are_made() {
        let p = plan_of(|v| {
            v["mounts"][1] = json!({
                "destination": "/dev/", "source": "/dev", "options": ["rbind"]
            })
        })
        .unwrap();
        assert_eq!(p.devices, None);
        // Its devices are still checked.
        let bad = plan_of(|v| {
            v["mounts"][1] = json!({ "destination": "/dev", "type": "bind", "source": "/dev" });
            v["linux"]["devices"] = json!([{ "path": "/dev/x", "type": "a" }]);
        });
        assert!(bad.unwrap_err().contains("linux.devices[0].type"));
        // A tmpfs there is ours to populate, and a bind below /dev is no bind of /dev.
        let p = plan_of(add_mount(json!({
            "destination": "/dev/shm", "source": "/x", "options": ["bind"]
        })))
        .unwrap();
        assert!(p.devices.is_some());
    }

    #[test]
    fn configured_devices_replace_defaults_of_the_same_path() {
        let p = plan_of(|v| {
            v["linux"]["devices"] = json!([
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
                {"path": "/dev/./fuse", "type": "c", "major": 10, "minor": 229, "uid": 5},
                {"path": "/dev/fifo", "type": "p", "fileMode": 0o20640}
            ])
        })
        .unwrap();
        let devices = p.devices.unwrap();
        assert_eq!(devices.len(), 3 + 5);
        assert_eq!(devices[0].mode, 0o600);
        assert_eq!(devices[1].path, Path::new("/dev/fuse"));
        assert_eq!(devices[1].uid, 5);
        assert_eq!((devices[2].kind, devices[2].mode), (SFlag::S_IFIFO, 0o640));
        let nulls = devices.iter().filter(|d| d.path == Path::new("/dev/null"));
        assert_eq!(nulls.count(), 1);
    }

    #[test]
    fn readonly_tmpfs_mounts_are_known_before_the_init() {
        let p = plan_of(add_mount(json!({
            "destination": "/ro", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]
        })))
        .unwrap();
        assert!(p.mounts.last().unwrap().is_readonly_tmpfs());
        assert!(!p.mounts[3].is_readonly_tmpfs(), "/dev/shm is writable");
    }

    #[test]
    fn idmapped_binds_take_their_maps_or_the_user_namespace_s() {
        let own = json!([{"containerID": 0, "hostID": 5000, "size": 10}]);
        let p = plan_of(add_mount(json!({
            "destination": "/data", "source": "/d", "options": ["rbind", "ridmap"],
            "uidMappings": own, "gidMappings": own
        })))
        .unwrap();
        let m = p.mounts.last().unwrap();
        let want: Vec<LinuxIdMapping> = serde_json::from_value(own).unwrap();
        assert_eq!(
            m.idmap,
            Some(Idmapping {
                recursive: true,
                ids: IdmapIds::Maps {
                    uid: want.clone(),
                    gid: want
                }
            })
        );
        // `idmap` alone: the new user namespace's maps, or the joined one.
        let container = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        let c2 = container.clone();
        let p = plan_of(move |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] = c2.clone();
            v["linux"]["gidMappings"] = c2;
            add_mount(json!({"destination": "/d", "source": "/d", "options": ["bind", "idmap"]}))(v)
        })
        .unwrap();
        let want: Vec<LinuxIdMapping> = serde_json::from_value(container).unwrap();
        let m = p.mounts.last().unwrap();
        assert_eq!(
            m.idmap,
            Some(Idmapping {
                recursive: false,
                ids: IdmapIds::Maps {
                    uid: want.clone(),
                    gid: want
                }
            })
        );
        let p = plan_of(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user", "path": "/proc/1/ns/user"}));
            add_mount(json!({"destination": "/d", "source": "/d", "options": ["bind", "idmap"]}))(v)
        })
        .unwrap();
        assert_eq!(
            p.mounts.last().unwrap().idmap.as_ref().unwrap().ids,
            IdmapIds::UserNs("/proc/1/ns/user".into())
        );
        assert!(p.mounts.iter().rev().skip(1).all(|m| m.idmap.is_none()));
    }

    /// Each refusal names the field, as runc's validation does, and comes before the clone.
    #[test]
    fn what_the_init_cannot_carry_out_is_refused_naming_the_field() {
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| v["linux"]["devices"] = json!([{"path": "/dev/x", "type": "a"}])),
                "invalid config.json: linux.devices[0].type: \"a\" is not a device node type",
            ),
            (
                Box::new(|v| {
                    v["linux"]["devices"] =
                        json!([{"path": "/dev/x", "type": "c", "major": -1, "minor": 0}])
                }),
                "invalid config.json: linux.devices[0]: /dev/x: negative major or minor number",
            ),
            (
                Box::new(|v| v["linux"]["devices"] = json!([{"path": "/", "type": "p"}])),
                "invalid config.json: linux.devices[0].path: \"/\" is not a file path",
            ),
            (
                Box::new(|v| v["linux"]["devices"] = json!([{"path": "dev/x", "type": "p"}])),
                "invalid config.json: linux.devices[0].path: \"dev/x\" is not an absolute path",
            ),
            (
                Box::new(add_mount(json!({"destination": "/x", "options": ["bind"]}))),
                "invalid config.json: mounts[7].source: a bind mount needs a source",
            ),
            (
                Box::new(add_mount(json!({"destination": "/x", "source": "tmpfs"}))),
                "invalid config.json: mounts[7].type: /x: no type and no bind option",
            ),
            (
                Box::new(add_mount(json!({"destination": "x", "type": "tmpfs"}))),
                "invalid config.json: mounts[7].destination: \"x\" is not an absolute path",
            ),
            (
                Box::new(add_mount(json!({
                    "destination": "/data", "type": "bind", "source": "/d",
                    "options": ["rbind", "idmap"]
                }))),
                "invalid config.json: mounts[7].options: /data: idmapped without uidMappings and \
                 gidMappings, and no user namespace to take them from",
            ),
            (
                Box::new(add_mount(json!({
                    "destination": "/data", "type": "bind", "source": "/d",
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
                }))),
                "invalid config.json: mounts[7].gidMappings: /data: an idmapped mount needs gid \
                 mappings with its uid mappings",
            ),
            (
                Box::new(add_mount(json!({
                    "destination": "/data", "type": "tmpfs", "source": "tmpfs",
                    "options": ["ridmap"]
                }))),
                "invalid config.json: mounts[7].options: /data: idmapped mounts are only \
                 supported for bind mounts",
            ),
            (
                Box::new(add_mount(json!({
                    "destination": "/data", "type": "tmpfs", "source": "tmpfs",
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
                }))),
                "invalid config.json: mounts[7].uidMappings: /data: idmapped mounts are only \
                 supported for bind mounts",
            ),
            (
                Box::new(add_mount(json!({
                    "destination": "/data", "source": "/d", "options": ["bind", "idmap"],
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                                    {"containerID": 10, "hostID": 1005, "size": 10}]
                }))),
                "invalid config.json: mounts[7].gidMappings[1]: its hostID range overlaps that \
                 of mounts[7].gidMappings[0]",
            ),
            (
                Box::new(|v| v["linux"]["rootfsPropagation"] = json!("sideways")),
                "invalid config.json: linux.rootfsPropagation: unknown propagation \"sideways\"",
            ),
            (
                Box::new(|v| v["linux"]["maskedPaths"] = json!(["/ok", "proc/kcore"])),
                "invalid config.json: linux.maskedPaths[1]: \"proc/kcore\" is not an absolute path",
            ),
            (
                Box::new(|v| v["linux"]["readonlyPaths"] = json!(["sys"])),
                "invalid config.json: linux.readonlyPaths[0]: \"sys\" is not an absolute path",
            ),
        ];
        for (edit, want) in cases {
            assert_eq!(plan_of(edit).unwrap_err(), want);
        }
    }
}
