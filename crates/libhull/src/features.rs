//! `hull features`: the runtime-spec features document (features.md), stating truthfully what
//! hull supports. containerd reads it to decide, for example, whether it may ask for
//! recursive read-only mounts or idmapped mounts, so nothing is claimed that hull lacks.

use oci_spec::runtime::LinuxNamespaceType;
use serde_json::{json, Value};

/// Hook lists hull runs, in the order the runtime-spec defines them.
pub const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Mount options the rootfs code acts on, sorted, as runc lists them: flags, propagation,
/// recursive attributes and `tmpcopyup`. `idmap`/`ridmap` belong to `mountExtensions`.
pub fn mount_options() -> Vec<&'static str> {
    let mut all: Vec<&str> = crate::rootfs::options::known_options()
        .filter(|o| !matches!(*o, "idmap" | "ridmap"))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

const NAMESPACES: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Uts,
];

/// Every capability name hull knows, in kernel order (as runc lists them).
fn capabilities() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// The architectures libseccomp 2.5 knows (2.6 adds loongarch64, m68k and sh).
const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

// apparmor and selinux: hull can apply both (as runc, this says what the runtime supports, not
// whether this host runs them).

/// What `linux.seccomp` accepts here; the flags the running kernel takes are probed.
fn seccomp() -> Value {
    json!({
        "enabled": true,
        "actions": crate::seccomp::ACTIONS,
        "operators": crate::seccomp::OPERATORS,
        "archs": SECCOMP_ARCHS,
        "knownFlags": crate::seccomp::FLAGS,
        "supportedFlags": crate::seccomp::supported_flags(),
    })
}

/// The features document as JSON, keys in the order of the runtime-spec's Go structs.
pub fn features() -> Value {
    let mut namespaces: Vec<&str> = NAMESPACES
        .iter()
        .map(|t| crate::namespaces::kind(*t))
        .collect();
    namespaces.sort_unstable();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": HOOKS,
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": namespaces,
            "capabilities": capabilities(),
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": true,
                "systemdUser": true,
                "rdma": true
            },
            "seccomp": seccomp(),
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            // Idmapped bind mounts need mount_setattr (5.12), as every bind mount of hull's
            // rootfs code does (open_tree, move_mount): where hull runs at all, they work.
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": annotations(),
        // Annotations that make hull act on the host beyond the container (runc lists these
        // too): unit properties systemd applies, and CRIU's configuration file, whose action
        // scripts CRIU runs as root.
        "potentiallyUnsafeConfigAnnotations": ["org.systemd.property.", "org.criu.config"],
    })
}

/// The libseccomp hull runs with (`2.5.4`), for `--version` and the features document.
pub fn libseccomp_version() -> Option<String> {
    crate::seccomp::libseccomp_version()
}

/// Whether `checkpoint` and `restore` can work here; else CRIU's complaint.
pub fn checkpoint_support() -> Result<(), String> {
    crate::criu::usable().map(|_| ()).map_err(|e| e.to_string())
}

/// runc's annotations of the document: the libseccomp in use, and whether `checkpoint` and
/// `restore` work (only where CRIU is present and passes `criu check`).
fn annotations() -> Value {
    let mut out = serde_json::Map::new();
    if let Some(v) = crate::seccomp::libseccomp_version() {
        out.insert("io.github.seccomp.libseccomp.version".into(), v.into());
    }
    if checkpoint_support().is_ok() {
        out.insert(
            "org.opencontainers.runc.checkpoint.enabled".into(),
            "true".into(),
        );
    }
    Value::Object(out)
}

/// The document as `hull features` prints it: four-space indents and a newline, as runc.
pub fn to_pretty_json(features: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    serde::Serialize::serialize(features, &mut ser).expect("a JSON value serializes");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_has_the_spec_fields_in_order() {
        let f = features();
        let keys: Vec<_> = f.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "ociVersionMin",
                "ociVersionMax",
                "hooks",
                "mountOptions",
                "linux",
                "annotations",
                "potentiallyUnsafeConfigAnnotations"
            ]
        );
        assert_eq!(f["ociVersionMax"], crate::spec::OCI_VERSION);
        assert_eq!(
            f["linux"]["namespaces"],
            json!(["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"])
        );
        let caps = f["linux"]["capabilities"].as_array().unwrap();
        assert_eq!(caps[0], "CAP_CHOWN");
        assert!(caps.contains(&json!("CAP_CHECKPOINT_RESTORE")));
        let sc = &f["linux"]["seccomp"];
        assert_eq!(sc["enabled"], true);
        assert!(sc["actions"]
            .as_array()
            .unwrap()
            .contains(&json!("SCMP_ACT_NOTIFY")));
        assert!(sc["supportedFlags"]
            .as_array()
            .unwrap()
            .contains(&json!("SECCOMP_FILTER_FLAG_TSYNC")));
        // Both cgroup versions by hull's own writers, and systemd's driver (not yet a user
        // instance's: rootless is untested).
        let cg = &f["linux"]["cgroup"];
        assert_eq!(
            (&cg["v1"], &cg["v2"], &cg["systemd"]),
            (&json!(true), &json!(true), &json!(true))
        );
    }

    #[test]
    fn mount_options_cover_runcs_defaults_and_propagation() {
        let opts = mount_options();
        let default = crate::spec::default::runc_default(false);
        for m in default["mounts"].as_array().unwrap() {
            for o in m["options"].as_array().into_iter().flatten() {
                let o = o.as_str().unwrap();
                // Filesystem data (mode=, size=, gid=, newinstance) is not a mount option.
                if !o.contains('=') && o != "newinstance" {
                    assert!(opts.contains(&o), "{o}");
                }
            }
        }
        for p in ["rprivate", "rshared", "rslave", "runbindable", "private"] {
            assert!(opts.contains(&p), "{p}");
            assert!(crate::spec::propagation_flags(p).is_some(), "{p}");
        }
        assert!(!opts.contains(&"idmap"));
        assert_eq!(
            features()["linux"]["mountExtensions"]["idmap"]["enabled"],
            true
        );
    }

    #[test]
    fn pretty_json_is_indented_with_four_spaces() {
        let text = String::from_utf8(to_pretty_json(&features())).unwrap();
        assert!(text.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n"));
        assert!(text.ends_with("}\n"));
    }
}
