//! `hull spec`: runc's default config.json, field for field and key for key, so bundles built
//! from it for runc work unchanged with hull (only `hostname` says "hull").

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::CONFIG_FILE;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("File {} exists. Remove it first", CONFIG_FILE)]
    Exists,
    #[error("open bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The host facts runc's default depends on.
#[derive(Debug, Clone, Copy)]
struct Host {
    /// /sys/fs/cgroup is cgroup2: runc then adds a cgroup namespace.
    cgroup2_unified: bool,
    euid: u32,
    egid: u32,
}

impl Host {
    fn detect() -> Host {
        let cgroup2_unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
        Host {
            cgroup2_unified,
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        }
    }
}

/// The config `runc spec` writes (`rootless` = `runc spec --rootless`, mapping the caller's
/// euid and egid to root in a new user namespace).
pub fn runc_default(rootless: bool) -> Value {
    build(Host::detect(), rootless)
}

/// Serializes a config as runc does: tab-indented, no trailing newline.
pub fn to_config_json(config: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    serde::Serialize::serialize(config, &mut ser).expect("a JSON value serializes");
    out
}

/// Writes the default config into `bundle/config.json` (mode 0666 less the umask), refusing
/// to overwrite one that exists. Returns the path written.
pub fn write(bundle: &Path, rootless: bool) -> Result<PathBuf, WriteError> {
    match std::fs::metadata(bundle) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(WriteError::Bundle {
                path: bundle.to_path_buf(),
                source: io::Error::from_raw_os_error(libc::ENOTDIR),
            })
        }
        Err(source) => {
            return Err(WriteError::Bundle {
                path: bundle.to_path_buf(),
                source,
            })
        }
    }
    let path = bundle.join(CONFIG_FILE);
    let data = to_config_json(&runc_default(rootless));
    // O_EXCL makes the "exists" check and the create one step.
    let mut file = match std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(WriteError::Exists),
        Err(source) => return Err(WriteError::Write { path, source }),
    };
    file.write_all(&data).map_err(|source| WriteError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

fn build(host: Host, rootless: bool) -> Value {
    // Key order follows the runtime-spec Go structs, as runc's encoder writes them; fields
    // runc leaves empty are omitted, as `omitempty` does.
    let devpts_options: &[&str] = if rootless {
        // runc's rootless conversion drops uid= and gid= options.
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    } else {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    };
    let sys_mount = if rootless {
        // Without its own network namespace (and as non-root) sysfs cannot be mounted: bind
        // the host's.
        json!({
            "destination": "/sys",
            "type": "none",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
        })
    } else {
        json!({
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"]
        })
    };
    let mounts = json!([
        { "destination": "/proc", "type": "proc", "source": "proc" },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": devpts_options
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"]
        },
        sys_mount,
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
        }
    ]);

    let mut namespaces = vec!["pid"];
    if !rootless {
        namespaces.push("network");
    }
    namespaces.extend(["ipc", "uts", "mount"]);
    if host.cgroup2_unified {
        namespaces.push("cgroup");
    }
    if rootless {
        namespaces.push("user");
    }
    let namespaces: Vec<Value> = namespaces.iter().map(|t| json!({ "type": t })).collect();

    let mut linux = serde_json::Map::new();
    if rootless {
        linux.insert(
            "uidMappings".into(),
            json!([{ "containerID": 0, "hostID": host.euid, "size": 1 }]),
        );
        linux.insert(
            "gidMappings".into(),
            json!([{ "containerID": 0, "hostID": host.egid, "size": 1 }]),
        );
    } else {
        linux.insert(
            "resources".into(),
            json!({ "devices": [{ "allow": false, "access": "rwm" }] }),
        );
    }
    linux.insert("namespaces".into(), Value::Array(namespaces));
    linux.insert(
        "maskedPaths".into(),
        json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ]),
    );
    linux.insert(
        "readonlyPaths".into(),
        json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]),
    );

    json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": CAPS,
                "effective": CAPS,
                "permitted": CAPS
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "hull",
        "mounts": mounts,
        "linux": Value::Object(linux)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_HOST: Host = Host {
        cgroup2_unified: false,
        euid: 1000,
        egid: 1001,
    };

    /// runc 1.1.5's `runc spec` (the one on this machine) differs from 1.3's only in
    /// ociVersion, hostname and the ambient set, which runc 1.2 stopped adding.
    fn runc_115_config(rootless: bool) -> Option<Value> {
        let runc = Path::new("/usr/sbin/runc");
        if !runc.exists() {
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("hull-spec-runc-{}-{rootless}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = std::process::Command::new(runc);
        cmd.arg("spec").arg("--bundle").arg(&dir);
        if rootless {
            cmd.arg("--rootless");
        }
        let status = cmd.status().unwrap();
        let data = std::fs::read(dir.join(CONFIG_FILE));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(status.success());
        let mut v: Value = serde_json::from_slice(&data.unwrap()).unwrap();
        v["ociVersion"] = json!(crate::spec::OCI_VERSION);
        v["hostname"] = json!("hull");
        v["process"]["capabilities"]
            .as_object_mut()
            .unwrap()
            .remove("ambient");
        Some(v)
    }

    #[test]
    fn matches_runc_spec_key_for_key() {
        let host = Host::detect();
        for rootless in [false, true] {
            let Some(runc) = runc_115_config(rootless) else {
                hull_testing::skip("runc", "compares with /usr/sbin/runc's spec");
                return;
            };
            let ours = build(host, rootless);
            assert_eq!(ours, runc, "rootless={rootless}");
            // Same serialization too, key order and tabs included.
            assert_eq!(
                String::from_utf8(to_config_json(&ours)).unwrap(),
                String::from_utf8(to_config_json(&runc)).unwrap()
            );
        }
    }

    #[test]
    fn serializes_with_tabs_in_runc_key_order() {
        let text = String::from_utf8(to_config_json(&build(V1_HOST, false))).unwrap();
        assert!(text.starts_with(
            "{\n\t\"ociVersion\": \"1.2.1\",\n\t\"process\": {\n\t\t\"terminal\": true,"
        ));
        assert!(text.ends_with("\n}"));
        let order = [
            "\"process\"",
            "\"root\"",
            "\"hostname\"",
            "\"mounts\"",
            "\"linux\"",
        ];
        let pos: Vec<_> = order.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
    }

    #[test]
    fn rootless_maps_the_caller_and_drops_network_and_resources() {
        let v = build(V1_HOST, true);
        let linux = &v["linux"];
        assert_eq!(
            linux["uidMappings"],
            json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        );
        assert_eq!(
            linux["gidMappings"],
            json!([{"containerID": 0, "hostID": 1001, "size": 1}])
        );
        assert!(linux.get("resources").is_none());
        let ns: Vec<_> = linux["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "user"]);
        let keys: Vec<_> = linux.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "uidMappings",
                "gidMappings",
                "namespaces",
                "maskedPaths",
                "readonlyPaths"
            ]
        );
    }

    #[test]
    fn cgroup2_host_gets_a_cgroup_namespace() {
        let host = Host {
            cgroup2_unified: true,
            ..V1_HOST
        };
        let v = build(host, false);
        let last = v["linux"]["namespaces"].as_array().unwrap().last().unwrap();
        assert_eq!(last["type"], "cgroup");
    }

    #[test]
    fn parses_and_validates_as_a_spec() {
        for rootless in [false, true] {
            let data = to_config_json(&runc_default(rootless));
            let spec: oci_spec::runtime::Spec = serde_json::from_slice(&data).unwrap();
            crate::spec::validate(&spec).unwrap();
        }
    }

    #[test]
    fn write_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("hull-spec-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = write(&dir, false);
        let second = write(&dir, false);
        let written = std::fs::read(dir.join(CONFIG_FILE));
        let missing = write(&dir.join("nope"), false);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(first.unwrap(), dir.join(CONFIG_FILE));
        assert_eq!(
            second.unwrap_err().to_string(),
            "File config.json exists. Remove it first"
        );
        assert_eq!(written.unwrap(), to_config_json(&runc_default(false)));
        assert!(matches!(missing, Err(WriteError::Bundle { .. })));
    }
}
