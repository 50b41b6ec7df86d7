//! Linux security modules: the AppArmor profile (`process.apparmorProfile`) and the SELinux
//! labels (`process.selinuxLabel`, `linux.mountLabel`), as runc applies them.
//!
//! Two halves:
//! - In the runtime, before anything exists: [`check`] refuses what cannot work (an AppArmor
//!   profile that is not loaded, an SELinux label on a host without SELinux, a malformed
//!   label), and [`mount_data_with_label`] adds the mount label to mount data.
//! - In the init, just before exec: [`apply_exec_labels`] asks the kernel to switch to the
//!   profile and label on exec. Those writes go through a private, verified procfs handle
//!   (libpathrs), so a container that mounts over /proc cannot redirect them (CVE-2019-16884,
//!   CVE-2019-19921).
//!
//! Host detection looks under a filesystem root (`/` for the real host), so that tests can
//! build fake trees for hosts with and without each module.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};

/// What went wrong, with the config field or /proc path involved.
#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("process.apparmorProfile {profile:?}: {reason}")]
    InvalidApparmorProfile {
        profile: String,
        reason: &'static str,
    },
    #[error(
        "process.apparmorProfile {profile:?}: AppArmor is enabled but this profile is not loaded (not in {})",
        .profiles.display()
    )]
    ApparmorProfileNotLoaded { profile: String, profiles: PathBuf },
    #[error(
        "{field} {label:?}: not an SELinux context of the form user:role:type[:level] ({reason})"
    )]
    InvalidSelinuxLabel {
        field: &'static str,
        label: String,
        reason: &'static str,
    },
    /// runc's wording, which clients may match; the field follows it.
    #[error("selinux label is specified in config, but selinux is disabled or not supported ({field} {label:?})")]
    SelinuxDisabled { field: &'static str, label: String },
    #[error("{what}: /proc is not a procfs mount")]
    NoProcfs { what: &'static str },
    #[error("get a safe procfs handle for {what}: {source}")]
    Procfs {
        what: &'static str,
        #[source]
        source: pathrs::error::Error,
    },
    #[error("open {path} through the procfs handle: {source}")]
    ProcOpen {
        path: String,
        #[source]
        source: pathrs::error::Error,
    },
    #[error("read {path}: {source}")]
    ProcRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// runc: "apparmor failed to apply profile: write …".
    #[error("apparmor failed to apply profile {profile:?}: write {path}: {source}")]
    ApplyApparmor {
        profile: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// runc: "can't set process label: write …".
    #[error("can't set process label {label:?}: write {path}: {source}")]
    ApplySelinux {
        label: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Whether AppArmor is enabled on this host (cached: the answer cannot change under us).
pub fn apparmor_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| apparmor_enabled_at(Path::new("/")))
}

/// Whether SELinux is enabled on this host (cached). Call it in the runtime: the init, once
/// it has pivoted, sees the container's /sys, not the host's.
pub fn selinux_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| selinux_enabled_at(Path::new("/")))
}

/// AppArmor as runc sees it under filesystem root `root`: securityfs has an `apparmor`
/// directory and the module parameter `enabled` says `Y`.
pub fn apparmor_enabled_at(root: &Path) -> bool {
    if !root.join("sys/kernel/security/apparmor").is_dir() {
        return false;
    }
    std::fs::read(root.join("sys/module/apparmor/parameters/enabled"))
        .is_ok_and(|v| v.first() == Some(&b'Y'))
}

/// SELinux as go-selinux sees it under filesystem root `root`: a writable selinuxfs at
/// /sys/fs/selinux or wherever mountinfo puts one, and a policy loaded (before that, the
/// kernel labels every task `kernel`).
pub fn selinux_enabled_at(root: &Path) -> bool {
    if selinuxfs_at(root).is_none() {
        return false;
    }
    let current = std::fs::read(root.join("proc/thread-self/attr/current")).unwrap_or_default();
    let current = current.trim_ascii_end();
    current.strip_suffix(b"\0").unwrap_or(current) != b"kernel"
}

/// The selinuxfs mount under `root`, if there is one SELinux could be driven through.
fn selinuxfs_at(root: &Path) -> Option<PathBuf> {
    let default = root.join("sys/fs/selinux");
    if is_selinuxfs(root, &default) {
        return Some(default);
    }
    let info = hull_sys::proc::read_file(&root.join("proc/self/mountinfo")).ok()?;
    hull_sys::mountinfo::parse(&info)
        .into_iter()
        .filter(|m| m.fs_type == "selinuxfs")
        .map(|m| root.join(m.mount_point.strip_prefix("/").unwrap_or(&m.mount_point)))
        .find(|dir| is_selinuxfs(root, dir))
}

/// A directory that looks like selinuxfs (it has `enforce`). On the real host it must also
/// be selinuxfs by its magic number and be writable: a read-only selinuxfs is how a
/// container is told SELinux is off for it. Fake trees in tests cannot carry a magic number.
fn is_selinuxfs(root: &Path, dir: &Path) -> bool {
    if !dir.join("enforce").is_file() {
        return false;
    }
    if root != Path::new("/") {
        return true;
    }
    nix::sys::statfs::statfs(dir).is_ok_and(|fs| {
        fs.filesystem_type() == nix::sys::statfs::SELINUX_MAGIC
            && !fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
    })
}

/// The list of loaded AppArmor profiles under `root`, one `name (mode)` a line.
fn apparmor_profiles_file(root: &Path) -> PathBuf {
    root.join("sys/kernel/security/apparmor/profiles")
}

/// Whether `profile` is loaded according to securityfs under `root`; `None` when that cannot
/// be told (the list is unreadable, or the name is a policy namespace the list may not show).
pub fn apparmor_profile_loaded_at(root: &Path, profile: &str) -> Option<bool> {
    // "unconfined" is no profile; ":ns:name" lives in a namespace of its own.
    if profile == "unconfined" {
        return Some(true);
    }
    if profile.starts_with(':') {
        return None;
    }
    let list = std::fs::read_to_string(apparmor_profiles_file(root)).ok()?;
    let loaded: Vec<&str> = list
        .lines()
        .map(|l| l.rsplit_once(" (").map_or(l, |(name, _)| name))
        .collect();
    // A stack "a//&b" needs every member loaded; a hat "a//b" is listed under its full name.
    Some(
        profile
            .split("//&")
            .all(|member| member == "unconfined" || loaded.contains(&member)),
    )
}

/// The runtime's checks, before anything is created (create, and exec with a profile or
/// label of its own). An AppArmor profile on a host without AppArmor is ignored, as by the
/// clients that set one; an SELinux label without SELinux is an error, as in runc.
pub fn check(
    process_apparmor: Option<&str>,
    selinux_label: Option<&str>,
    mount_label: Option<&str>,
) -> Result<(), LsmError> {
    check_with(&Probe::Host, process_apparmor, selinux_label, mount_label)
}

/// [`check`] against the host tree under `root` instead of `/` (for tests).
#[cfg(test)]
pub fn check_at(
    root: &Path,
    process_apparmor: Option<&str>,
    selinux_label: Option<&str>,
    mount_label: Option<&str>,
) -> Result<(), LsmError> {
    check_with(
        &Probe::At(root),
        process_apparmor,
        selinux_label,
        mount_label,
    )
}

/// Where detection looks: the real host (answers cached) or a tree under a root.
enum Probe<'a> {
    Host,
    /// Only tests look at a tree of their own.
    #[cfg_attr(not(test), allow(dead_code))]
    At(&'a Path),
}

impl Probe<'_> {
    fn root(&self) -> &Path {
        match self {
            Probe::Host => Path::new("/"),
            Probe::At(root) => root,
        }
    }

    fn apparmor_enabled(&self) -> bool {
        match self {
            Probe::Host => apparmor_enabled(),
            Probe::At(root) => apparmor_enabled_at(root),
        }
    }

    fn selinux_enabled(&self) -> bool {
        match self {
            Probe::Host => selinux_enabled(),
            Probe::At(root) => selinux_enabled_at(root),
        }
    }
}

fn check_with(
    probe: &Probe<'_>,
    process_apparmor: Option<&str>,
    selinux_label: Option<&str>,
    mount_label: Option<&str>,
) -> Result<(), LsmError> {
    if let Some(profile) = process_apparmor.filter(|p| !p.is_empty()) {
        check_apparmor(probe, profile)?;
    }
    let labels = [
        ("process.selinuxLabel", selinux_label),
        ("linux.mountLabel", mount_label),
    ];
    for (field, label) in labels {
        let Some(label) = label.filter(|l| !l.is_empty()) else {
            continue;
        };
        validate_selinux_label(label).map_err(|reason| LsmError::InvalidSelinuxLabel {
            field,
            label: label.into(),
            reason,
        })?;
        if !probe.selinux_enabled() {
            return Err(LsmError::SelinuxDisabled {
                field,
                label: label.into(),
            });
        }
    }
    Ok(())
}

fn check_apparmor(probe: &Probe<'_>, profile: &str) -> Result<(), LsmError> {
    let invalid = |reason| LsmError::InvalidApparmorProfile {
        profile: profile.into(),
        reason,
    };
    if profile.chars().any(char::is_control) {
        return Err(invalid("contains a control character"));
    }
    if profile.trim() != profile {
        return Err(invalid("starts or ends with white space"));
    }
    if !probe.apparmor_enabled() {
        tracing::debug!(
            profile,
            "AppArmor is not enabled on this host: profile ignored"
        );
        return Ok(());
    }
    match apparmor_profile_loaded_at(probe.root(), profile) {
        Some(true) => Ok(()),
        Some(false) => Err(LsmError::ApparmorProfileNotLoaded {
            profile: profile.into(),
            profiles: apparmor_profiles_file(probe.root()),
        }),
        None => {
            tracing::debug!(
                profile,
                "cannot tell whether the AppArmor profile is loaded"
            );
            Ok(())
        }
    }
}

/// `user:role:type[:level]` as go-selinux splits it (the level may hold more colons, as in
/// `s0-s0:c0.c1023`), with nothing that would break the quoting of a `context="…"` mount
/// option or the single write to /proc.
fn validate_selinux_label(label: &str) -> Result<(), &'static str> {
    if label
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b'"' || b == b'\\')
    {
        return Err("white space, a quote, a backslash or a non-printable character");
    }
    let fields: Vec<&str> = label.splitn(4, ':').collect();
    if fields.len() < 3 {
        return Err("fewer than three ':'-separated fields");
    }
    if fields[..3].iter().any(|f| f.is_empty()) {
        return Err("an empty user, role or type");
    }
    if fields[..3].iter().any(|f| f.contains(',')) {
        return Err("a comma in the user, role or type");
    }
    if fields.get(3).is_some_and(|level| level.is_empty()) {
        return Err("an empty level");
    }
    Ok(())
}

/// Mount data with SELinux's `context="<label>"` added, as runc adds it to the mounts that
/// take it (all but proc, sysfs, mqueue; masked-path tmpfs too). Unchanged when SELinux is
/// off, the label is empty, or the data already sets an SELinux context option itself (a
/// second one would make the mount fail with EINVAL).
pub fn mount_data_with_label(data: &str, mount_label: Option<&str>) -> String {
    match mount_label.filter(|l| !l.is_empty()) {
        Some(label) if selinux_enabled() => with_context(data, label),
        _ => data.to_string(),
    }
}

/// The `context` value for a tmpfs built with fsconfig (no quoting there): the mount label
/// when SELinux is on and `data` does not set a context itself.
pub fn fsconfig_context<'a>(data: &[String], mount_label: Option<&'a str>) -> Option<&'a str> {
    let label = mount_label.filter(|l| !l.is_empty() && selinux_enabled())?;
    context_to_add(data, label)
}

fn context_to_add<'a>(data: &[String], label: &'a str) -> Option<&'a str> {
    let joined = data.join(",");
    (with_context(&joined, label) != joined).then_some(label)
}

fn with_context(data: &str, label: &str) -> String {
    const CONTEXT_OPTIONS: [&str; 4] = ["context=", "fscontext=", "defcontext=", "rootcontext="];
    if split_options(data)
        .iter()
        .any(|o| CONTEXT_OPTIONS.iter().any(|c| o.starts_with(c)))
    {
        return data.to_string();
    }
    if data.is_empty() {
        format!("context=\"{label}\"")
    } else {
        format!("{data},context=\"{label}\"")
    }
}

/// Comma-separated options, where a comma inside double quotes (an MCS level such as
/// `s0:c1,c2`) does not separate.
fn split_options(data: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in data.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&data[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&data[start..]);
    out
}

/// In the init, just before exec: asks the kernel to put the process under the AppArmor
/// profile (`exec <profile>` to /proc/thread-self/attr/apparmor/exec, or attr/exec on
/// kernels before 5.1) and the SELinux label (to /proc/thread-self/attr/exec) on its next
/// exec. Nothing happens for an empty value, or for AppArmor when the kernel does not run it
/// (told by procfs itself, which the container cannot fake, not by the container's /sys).
/// Single-threaded, no logging, every failure returned.
pub fn apply_exec_labels(
    process_apparmor: Option<&str>,
    selinux_label: Option<&str>,
) -> Result<(), LsmError> {
    let profile = process_apparmor.filter(|p| !p.is_empty());
    let label = selinux_label.filter(|l| !l.is_empty());
    if profile.is_none() && label.is_none() {
        return Ok(());
    }
    let what = "/proc/thread-self/attr";
    // pathrs 0.2 panics rather than fails when it finds no usable /proc: make sure of it.
    match nix::sys::statfs::statfs("/proc") {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC => {}
        _ => return Err(LsmError::NoProcfs { what }),
    }
    let proc = ProcfsHandle::new().map_err(|source| LsmError::Procfs { what, source })?;
    if let Some(profile) = profile {
        apply_apparmor(&proc, profile)?;
    }
    if let Some(label) = label {
        write_attr(&proc, "attr/exec", label, |path, source| {
            LsmError::ApplySelinux {
                label: label.into(),
                path,
                source,
            }
        })?;
    }
    Ok(())
}

/// In the init, before it creates its session keyring: the SELinux label of keys it creates
/// (`/proc/thread-self/attr/keycreate`). Nothing without SELinux or a label.
pub fn apply_keycreate_label(selinux_label: Option<&str>) -> Result<(), LsmError> {
    let Some(label) = selinux_label.filter(|l| !l.is_empty() && selinux_enabled()) else {
        return Ok(());
    };
    let what = "/proc/thread-self/attr";
    let proc = ProcfsHandle::new().map_err(|source| LsmError::Procfs { what, source })?;
    write_attr(&proc, "attr/keycreate", label, |path, source| {
        LsmError::ApplySelinux {
            label: label.into(),
            path,
            source,
        }
    })
}

/// Where AppArmor takes the exec profile, if the kernel runs AppArmor at all.
fn apply_apparmor(proc: &ProcfsHandle, profile: &str) -> Result<(), LsmError> {
    let attr = match read_attr(proc, "attr/apparmor/current")? {
        AttrRead::Text(_) => "attr/apparmor/exec",
        // Built in but not enabled: no hook answers.
        AttrRead::Invalid => return Ok(()),
        // No attr/apparmor: not built in, or a kernel before 5.1 where the one major LSM
        // owns attr/*. Only AppArmor says "unconfined" or "<profile> (<mode>)" there.
        AttrRead::Missing => match read_attr(proc, "attr/current")? {
            AttrRead::Text(t) if is_apparmor_context(&t) => "attr/exec",
            _ => return Ok(()),
        },
    };
    write_attr(proc, attr, &format!("exec {profile}"), |path, source| {
        LsmError::ApplyApparmor {
            profile: profile.into(),
            path,
            source,
        }
    })
}

fn is_apparmor_context(text: &str) -> bool {
    let t = text.trim_end_matches(['\n', '\0']);
    t == "unconfined" || (t.ends_with(')') && t.contains(" ("))
}

enum AttrRead {
    Text(String),
    /// EINVAL: no security module answers for this attribute.
    Invalid,
    /// ENOENT: the kernel has no such attribute.
    Missing,
}

fn read_attr(proc: &ProcfsHandle, subpath: &str) -> Result<AttrRead, LsmError> {
    let path = format!("/proc/thread-self/{subpath}");
    let mut file = match proc.open(
        ProcfsBase::ProcThreadSelf,
        subpath,
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    ) {
        Ok(f) => f,
        Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOENT)) => {
            return Ok(AttrRead::Missing)
        }
        Err(source) => return Err(LsmError::ProcOpen { path, source }),
    };
    let mut buf = Vec::with_capacity(256);
    match file.read_to_end(&mut buf) {
        Ok(_) => Ok(AttrRead::Text(String::from_utf8_lossy(&buf).into_owned())),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(AttrRead::Invalid),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(AttrRead::Missing),
        Err(source) => Err(LsmError::ProcRead { path, source }),
    }
}

/// Writes `value` in one write(2), as the kernel wants attributes; `failed` words a failed
/// write (the open fails as [`LsmError::ProcOpen`]).
fn write_attr(
    proc: &ProcfsHandle,
    subpath: &str,
    value: &str,
    failed: impl FnOnce(String, std::io::Error) -> LsmError,
) -> Result<(), LsmError> {
    let path = format!("/proc/thread-self/{subpath}");
    let mut file: File = match proc.open(
        ProcfsBase::ProcThreadSelf,
        subpath,
        OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC,
    ) {
        Ok(f) => f,
        Err(source) => return Err(LsmError::ProcOpen { path, source }),
    };
    match file.write(value.as_bytes()) {
        Ok(n) if n == value.len() => Ok(()),
        Ok(n) => Err(failed(
            path,
            std::io::Error::new(
                ErrorKind::WriteZero,
                format!("short write: {n} of {} bytes", value.len()),
            ),
        )),
        Err(e) => Err(failed(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tmpfs_built_with_fsconfig_gets_the_label_unless_its_data_sets_a_context() {
        let l = "system_u:object_r:container_file_t:s0:c1,c2";
        assert_eq!(context_to_add(&[], l), Some(l));
        assert_eq!(context_to_add(&["size=1m".into()], l), Some(l));
        assert_eq!(
            context_to_add(&["size=1m".into(), "rootcontext=\"a:b:c\"".into()], l),
            None
        );
        assert_eq!(context_to_add(&["context=a:b:c".into()], l), None);
    }
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fake host tree under /tmp, removed on drop.
    struct FakeHost(PathBuf);

    impl FakeHost {
        fn new() -> FakeHost {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "hull-lsm-test.{}.{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            FakeHost(dir)
        }

        fn file(&self, rel: &str, text: &str) -> &FakeHost {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
            self
        }

        fn dir(&self, rel: &str) -> &FakeHost {
            std::fs::create_dir_all(self.0.join(rel)).unwrap();
            self
        }

        /// AppArmor enabled, with these profiles loaded.
        fn apparmor(profiles: &str) -> FakeHost {
            let h = FakeHost::new();
            h.file("sys/module/apparmor/parameters/enabled", "Y\n")
                .file("sys/kernel/security/apparmor/profiles", profiles);
            h
        }

        /// SELinux enabled, selinuxfs at /sys/fs/selinux.
        fn selinux() -> FakeHost {
            let h = FakeHost::new();
            h.file("sys/fs/selinux/enforce", "1").file(
                "proc/thread-self/attr/current",
                "system_u:system_r:unconfined_t:s0\0",
            );
            h
        }

        fn root(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for FakeHost {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const LABEL: &str = "system_u:system_r:container_t:s0:c1,c2";

    #[test]
    fn apparmor_is_enabled_only_with_securityfs_and_the_parameter() {
        let h = FakeHost::apparmor("");
        assert!(apparmor_enabled_at(h.root()));

        let no_securityfs = FakeHost::new();
        no_securityfs.file("sys/module/apparmor/parameters/enabled", "Y\n");
        assert!(!apparmor_enabled_at(no_securityfs.root()));

        let off = FakeHost::new();
        off.file("sys/module/apparmor/parameters/enabled", "N\n")
            .dir("sys/kernel/security/apparmor");
        assert!(!apparmor_enabled_at(off.root()));

        let no_module = FakeHost::new();
        no_module.dir("sys/kernel/security/apparmor");
        assert!(!apparmor_enabled_at(no_module.root()));
    }

    #[test]
    fn selinux_needs_selinuxfs_and_a_loaded_policy() {
        assert!(selinux_enabled_at(FakeHost::selinux().root()));

        // The kernel creates the mount point even when selinuxfs is not mounted.
        let empty_dir = FakeHost::new();
        empty_dir.dir("sys/fs/selinux");
        assert!(!selinux_enabled_at(empty_dir.root()));

        let no_policy = FakeHost::selinux();
        no_policy.file("proc/thread-self/attr/current", "kernel\0");
        assert!(!selinux_enabled_at(no_policy.root()));
    }

    #[test]
    fn selinuxfs_is_found_through_mountinfo() {
        let h = FakeHost::new();
        h.file("selinux/enforce", "0").file(
            "proc/self/mountinfo",
            "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
             30 22 0:28 / /selinux rw,relatime - selinuxfs selinuxfs rw\n",
        );
        assert!(selinux_enabled_at(h.root()));

        let listed_but_absent = FakeHost::new();
        listed_but_absent.file(
            "proc/self/mountinfo",
            "30 22 0:28 / /selinux rw,relatime - selinuxfs selinuxfs rw\n",
        );
        assert!(!selinux_enabled_at(listed_but_absent.root()));
    }

    #[test]
    fn a_loaded_profile_passes_and_a_missing_one_is_refused_naming_the_field() {
        let h = FakeHost::apparmor(
            "docker-default (enforce)\nmy profile (complain)\nparent//hat (enforce)\n",
        );
        for ok in ["docker-default", "my profile", "parent//hat", "unconfined"] {
            check_at(h.root(), Some(ok), None, None).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        check_at(h.root(), Some("docker-default//&parent//hat"), None, None).unwrap();

        let err = check_at(h.root(), Some("nope"), None, None).unwrap_err();
        assert!(matches!(err, LsmError::ApparmorProfileNotLoaded { .. }));
        let text = err.to_string();
        assert!(text.contains("process.apparmorProfile"), "{text}");
        assert!(text.contains("\"nope\""), "{text}");
        assert!(text.contains("apparmor/profiles"), "{text}");

        let half_stack = check_at(h.root(), Some("docker-default//&nope"), None, None);
        assert!(half_stack.is_err());
        // A prefix of a loaded name is not loaded.
        assert!(check_at(h.root(), Some("docker"), None, None).is_err());
    }

    #[test]
    fn an_unreadable_profile_list_does_not_block_the_container() {
        let h = FakeHost::new();
        h.file("sys/module/apparmor/parameters/enabled", "Y\n")
            .dir("sys/kernel/security/apparmor");
        check_at(h.root(), Some("anything"), None, None).unwrap();
    }

    #[test]
    fn apparmor_profile_is_ignored_without_apparmor() {
        let h = FakeHost::new();
        check_at(h.root(), Some("docker-default"), None, None).unwrap();
        let off = FakeHost::new();
        off.file("sys/module/apparmor/parameters/enabled", "N\n")
            .file("sys/kernel/security/apparmor/profiles", "");
        check_at(off.root(), Some("docker-default"), None, None).unwrap();
    }

    #[test]
    fn apparmor_profile_names_with_control_characters_are_refused() {
        let h = FakeHost::new();
        for bad in ["a\nb", "a\0b", " lead", "trail\t"] {
            let err = check_at(h.root(), Some(bad), None, None).unwrap_err();
            assert!(
                err.to_string().starts_with("process.apparmorProfile"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn selinux_labels_need_selinux() {
        let h = FakeHost::new();
        let err = check_at(h.root(), None, Some(LABEL), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "selinux label is specified in config, but selinux is disabled or not supported"
            ),
            "{text}"
        );
        assert!(text.contains("process.selinuxLabel"), "{text}");

        let err = check_at(h.root(), None, None, Some("u:object_r:t:s0")).unwrap_err();
        assert!(err.to_string().contains("linux.mountLabel"), "{err}");

        let on = FakeHost::selinux();
        check_at(
            on.root(),
            None,
            Some(LABEL),
            Some("u:object_r:t:s0-s0:c0.c1023"),
        )
        .unwrap();
    }

    #[test]
    fn empty_values_mean_not_requested() {
        let h = FakeHost::new();
        check_at(h.root(), Some(""), Some(""), Some("")).unwrap();
        check_at(h.root(), None, None, None).unwrap();
    }

    #[test]
    fn malformed_selinux_labels_are_refused_naming_the_field() {
        let on = FakeHost::selinux();
        for bad in [
            "user",
            "user:role",
            "user::type",
            ":role:type",
            "user:role:",
            "user:role:type:",
            "u:r:t:s0 extra",
            "u:r:t:s0\"",
            "u:r,x:t:s0",
            "u:r:t:s0\n",
            "u:r:t:\u{e9}",
        ] {
            for (sel, mnt, field) in [
                (Some(bad), None, "process.selinuxLabel"),
                (None, Some(bad), "linux.mountLabel"),
            ] {
                let err = check_at(on.root(), None, sel, mnt).unwrap_err();
                assert!(
                    matches!(err, LsmError::InvalidSelinuxLabel { .. }),
                    "{bad:?}: {err}"
                );
                assert!(err.to_string().starts_with(field), "{bad:?}: {err}");
            }
        }
        for good in ["u:r:t", "u:r:t:s0", LABEL, "a.b_c-d:r:t:s0-s15:c0.c1023"] {
            validate_selinux_label(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn mount_context_is_added_after_the_data() {
        assert_eq!(
            with_context("mode=755,size=65536k", LABEL),
            format!("mode=755,size=65536k,context=\"{LABEL}\"")
        );
        assert_eq!(with_context("", "u:r:t:s0"), "context=\"u:r:t:s0\"");
        let own = "mode=755,fscontext=\"u:r:t:s0:c1,c2\",size=1m";
        assert_eq!(with_context(own, LABEL), own);
        assert_eq!(
            split_options("a,context=\"u:r:t:s0:c1,c2\",b"),
            ["a", "context=\"u:r:t:s0:c1,c2\"", "b"]
        );
    }

    #[test]
    fn on_this_host_without_lsms() {
        // The test host has neither module; elsewhere these answers differ.
        hull_testing::skip_unless!(
            !apparmor_enabled() && !selinux_enabled(),
            "no-lsm",
            "checks the answers of a host without AppArmor or SELinux"
        );
        check(None, None, None).unwrap();
        check(Some("docker-default"), None, None).unwrap();
        let err = check(None, Some(LABEL), None).unwrap_err();
        assert!(matches!(err, LsmError::SelinuxDisabled { .. }), "{err}");
        assert!(matches!(
            check(None, None, Some(LABEL)).unwrap_err(),
            LsmError::SelinuxDisabled { .. }
        ));
        assert_eq!(mount_data_with_label("mode=755", Some(LABEL)), "mode=755");
        assert_eq!(mount_data_with_label("", None), "");
    }

    #[test]
    fn applying_nothing_touches_nothing() {
        apply_exec_labels(None, None).unwrap();
        apply_exec_labels(Some(""), Some("")).unwrap();
    }

    #[test]
    fn an_apparmor_profile_without_apparmor_in_the_kernel_is_a_no_op() {
        // Through the real procfs: no attr/apparmor, and attr/current answers EINVAL or
        // another module's context. Only run where that holds, so that nothing changes the
        // exec profile of this test thread.
        hull_testing::skip_unless!(
            !apparmor_enabled() && !Path::new("/proc/self/attr/apparmor").exists(),
            "no-lsm",
            "checks a kernel without AppArmor"
        );
        apply_exec_labels(Some("docker-default"), None).unwrap();
    }

    #[test]
    fn an_selinux_label_without_selinux_fails_at_the_write_naming_the_path() {
        hull_testing::skip_unless!(
            !selinux_enabled(),
            "no-lsm",
            "checks a host without SELinux"
        );
        let err = apply_exec_labels(None, Some(LABEL)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LsmError::ApplySelinux { .. }), "{text}");
        assert!(text.contains("/proc/thread-self/attr/exec"), "{text}");
        println!("{text}");
    }

    #[test]
    fn apparmor_contexts_are_told_from_selinux_ones() {
        assert!(is_apparmor_context("unconfined\n"));
        assert!(is_apparmor_context("docker-default (enforce)\n"));
        assert!(!is_apparmor_context("system_u:system_r:kernel_t:s0\0"));
        assert!(!is_apparmor_context(""));
    }
}
