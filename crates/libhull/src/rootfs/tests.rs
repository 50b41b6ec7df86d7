//! Tests of the rootfs module: pure helpers first; then whole setups, which need root, each
//! run in a forked child with mount namespaces of its own (so nothing reaches the host's
//! mount table) against a temporary bundle that is removed afterwards.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;
use serde_json::json;

use oci_spec::runtime::Spec;

use super::*;
use crate::spec::propagation_flags;

#[test]
fn clean_path_never_climbs_above_root() {
    assert_eq!(clean_path(Path::new("/a/./b/../c")), Path::new("/a/c"));
    assert_eq!(clean_path(Path::new("/../../etc")), Path::new("/etc"));
    assert_eq!(clean_path(Path::new("dev//shm/")), Path::new("/dev/shm"));
}

#[test]
fn a_destination_is_resolved_through_symlinks_inside_the_rootfs() {
    let dir = std::env::temp_dir().join(format!("hull-resolve-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("real/conf")).unwrap();
    std::os::unix::fs::symlink("/real/conf", dir.join("conf")).unwrap();
    // Absolute and climbing links stay inside the rootfs; a missing tail is kept.
    std::os::unix::fs::symlink("../../../real", dir.join("up")).unwrap();
    let got = |p: &str| resolved_destination(&dir, Path::new(p));
    assert_eq!(got("/conf"), Path::new("/real/conf"));
    assert_eq!(got("/up/conf/x"), Path::new("/real/conf/x"));
    assert_eq!(got("/plain/dir"), Path::new("/plain/dir"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cleanup_keeps_a_filesystem_mounted_at_the_rootfs_before_us() {
    let table = mountinfo::parse(
        "\
1 0 8:1 / / rw - ext4 /dev/sda1 rw
50 1 0:40 / /b/rootfs rw - overlay overlay rw
51 50 0:40 / /b/rootfs rw - overlay overlay rw
52 51 0:41 / /b/rootfs/proc rw - proc proc rw
60 1 8:1 /c/rootfs /c/rootfs rw - ext4 /dev/sda1 rw
61 60 0:42 / /c/rootfs/dev rw - tmpfs tmpfs rw
62 1 0:43 / /b/rootfs2 rw - tmpfs tmpfs rw
",
    );
    let ids = |rootfs: &str| {
        ours_below(&table, Path::new(rootfs))
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("/b/rootfs"), vec![51, 52]);
    assert_eq!(ids("/c/rootfs"), vec![60, 61]);
}

#[test]
fn propagation_names_cover_plain_and_recursive_forms() {
    assert_eq!(
        propagation_flags("rslave"),
        Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
    );
    assert_eq!(
        propagation_flags("unbindable"),
        Some(MsFlags::MS_UNBINDABLE)
    );
    assert_eq!(propagation_flags("bogus"), None);
}

// ---- whole setups (root only) ----

/// A scratch directory removed on drop (after the child that mounted in it has exited, so
/// nothing is mounted there any more).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("hull-rootfs-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("bundle/rootfs")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(dir)
    }
    fn bundle(&self) -> PathBuf {
        self.0.join("bundle")
    }
    fn rootfs(&self) -> PathBuf {
        self.0.join("bundle/rootfs")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` in a forked child and returns its verdict: the child reports an error through a
/// pipe and exits non-zero. The child never returns into the test harness.
fn in_child(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only runs `f` (setup code written for a single-threaded child:
    // syscalls and allocation, which glibc keeps usable after fork) and then _exits.
    match unsafe { nix::unistd::fork() }.unwrap() {
        ForkResult::Child => {
            drop(r);
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err("panicked".into()));
            let code = match verdict {
                Ok(()) => 0,
                Err(msg) => {
                    let _ = std::fs::File::from(w).write_all(msg.as_bytes());
                    1
                }
            };
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            std::fs::File::from(r).read_to_string(&mut msg).unwrap();
            match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, 0) if msg.is_empty() => Ok(()),
                status => Err(format!("{status:?}: {msg}")),
            }
        }
    }
}

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn spec(value: serde_json::Value) -> Spec {
    let mut base = json!({
        "ociVersion": "1.2.1",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "terminal": false, "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "mount"}]},
        "mounts": [],
    });
    merge(&mut base, value);
    serde_json::from_value(base).unwrap()
}

fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// A context for the plan of `spec` (leaked: a test's setup runs once, in a child).
fn ctx(spec: &Spec, rootfs: &Path, bundle: &Path) -> RootfsContext<'static> {
    let plan = plan(spec, rootfs, bundle).expect("a test config plans");
    RootfsContext {
        plan: Box::leak(Box::new(plan)),
        no_pivot: false,
        mount_ns: true,
        user_ns: false,
        cgroup2_path: None,
        bind_sources: &[],
        idmapper: None,
    }
}

fn run_all(ctx: &RootfsContext) -> Result<(), String> {
    prepare(ctx).map_err(|e| format!("prepare: {e}"))?;
    enter(ctx).map_err(|e| format!("enter: {e}"))?;
    finalize(ctx).map_err(|e| format!("finalize: {e}"))
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn mountinfo_line(mount_point: &str) -> Option<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(mount_point))
        .map(str::to_string)
}

fn fs_magic(path: &str) -> Option<nix::sys::statfs::FsType> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| s.filesystem_type())
}

/// The usual config (runc spec's mounts plus a few more), run in a new mount namespace:
/// checks what the container would see after pivot_root.
#[test]
fn full_setup_gives_the_container_what_the_config_asks() {
    hull_testing::skip_unless_root!();
    let s = Scratch::new("full");
    let rootfs = s.rootfs();
    let outside = s.0.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // A symlink to a host path: inside the rootfs it must resolve to rootfs/<that path>.
    std::os::unix::fs::symlink(&outside, rootfs.join("escape")).unwrap();
    std::fs::create_dir_all(rootfs.join(outside.strip_prefix("/").unwrap())).unwrap();
    std::fs::create_dir_all(rootfs.join("etc/copied/sub")).unwrap();
    std::fs::write(rootfs.join("etc/copied/sub/a"), "copied").unwrap();
    std::os::unix::fs::symlink("sub/a", rootfs.join("etc/copied/link")).unwrap();
    std::fs::write(rootfs.join("etc/secret"), "secret").unwrap();
    std::fs::create_dir_all(rootfs.join("etc/secretdir")).unwrap();
    std::fs::write(rootfs.join("etc/secretdir/f"), "x").unwrap();
    std::fs::create_dir_all(rootfs.join("etc/rodir")).unwrap();
    std::fs::write(s.bundle().join("hostfile"), "from the host").unwrap();
    std::fs::create_dir_all(s.0.join("hostdir/inner")).unwrap();

    let spec = spec(json!({
        "process": {"terminal": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/etc/hostfile", "source": "hostfile", "options": ["bind", "ro"]},
            {"destination": "/mnt/hostdir", "source": s.0.join("hostdir"),
             "options": ["rbind", "rro", "nosuid"]},
            {"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/ro-tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]},
            {"destination": "/etc/copied", "type": "tmpfs", "source": "tmpfs",
             "options": ["tmpcopyup", "mode=0750"]},
        ],
        "linux": {
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                         "fileMode": 0o600, "uid": 1, "gid": 2}],
            "maskedPaths": ["/etc/secret", "/etc/secretdir", "/proc/kcore", "/nonexistent"],
            "readonlyPaths": ["/proc/sys", "/etc/rodir", "/nonexistent"],
        },
    }));
    let (bundle, rootfs_c) = (s.bundle(), s.rootfs());
    let result = in_child(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        run_all(&ctx(&spec, &rootfs_c, &bundle))?;

        check!(
            std::env::current_dir().ok() == Some(PathBuf::from("/")),
            "cwd is not /"
        );
        check!(
            fs_magic("/proc") == Some(nix::sys::statfs::PROC_SUPER_MAGIC),
            "no procfs at /proc"
        );
        check!(
            fs_magic("/sys") == Some(nix::sys::statfs::SYSFS_MAGIC),
            "no sysfs at /sys"
        );
        let sys = mountinfo_line("/sys").ok_or("no /sys in mountinfo")?;
        check!(sys.contains(" ro,"), "sysfs not read-only: {sys}");

        let null = std::fs::metadata("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
        check!(
            null.file_type().is_char_device(),
            "/dev/null not a char device"
        );
        check!(
            null.rdev() == nix::sys::stat::makedev(1, 3),
            "/dev/null not 1:3"
        );
        check!(
            null.mode() & 0o777 == 0o666,
            "/dev/null mode {:o}",
            null.mode()
        );
        let fuse = std::fs::metadata("/dev/fuse").map_err(|e| format!("/dev/fuse: {e}"))?;
        check!(
            fuse.rdev() == nix::sys::stat::makedev(10, 229),
            "/dev/fuse not 10:229"
        );
        check!(
            fuse.mode() & 0o777 == 0o600,
            "/dev/fuse mode {:o}",
            fuse.mode()
        );
        check!(
            (fuse.uid(), fuse.gid()) == (1, 2),
            "/dev/fuse owner {}:{}",
            fuse.uid(),
            fuse.gid()
        );
        let link = |p: &str| std::fs::read_link(p).ok();
        check!(
            link("/dev/ptmx") == Some("pts/ptmx".into()),
            "/dev/ptmx link"
        );
        check!(
            link("/dev/fd") == Some("/proc/self/fd".into()),
            "/dev/fd link"
        );
        check!(
            link("/dev/stderr") == Some("/proc/self/fd/2".into()),
            "/dev/stderr link"
        );
        check!(Path::new("/dev/console").exists(), "no /dev/console");
        check!(Path::new("/dev/pts/ptmx").exists(), "no devpts at /dev/pts");
        check!(
            fs_magic("/dev/mqueue") == Some(nix::sys::statfs::FsType(0x1980_0202)),
            "no mqueue"
        );

        check!(
            std::fs::read_to_string("/etc/hostfile").ok().as_deref() == Some("from the host"),
            "hostfile content"
        );
        check!(
            errno_of(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/etc/hostfile")
            ) == Some(libc::EROFS),
            "hostfile writable"
        );
        check!(Path::new("/mnt/hostdir/inner").is_dir(), "rbind content");
        check!(
            errno_of(std::fs::create_dir("/mnt/hostdir/new")) == Some(libc::EROFS),
            "rro bind writable"
        );
        let hostdir = mountinfo_line("/mnt/hostdir").ok_or("no /mnt/hostdir")?;
        check!(
            hostdir.contains("nosuid"),
            "bind flags not applied: {hostdir}"
        );

        check!(
            fs_magic(&format!("{}/x", outside.display())) == Some(nix::sys::statfs::TMPFS_MAGIC),
            "symlinked destination did not land inside the rootfs"
        );
        check!(
            errno_of(std::fs::create_dir("/ro-tmp/d")) == Some(libc::EROFS),
            "ro tmpfs writable"
        );
        check!(
            std::fs::read_to_string("/etc/copied/sub/a").ok().as_deref() == Some("copied"),
            "tmpcopyup content"
        );
        check!(
            link("/etc/copied/link") == Some("sub/a".into()),
            "tmpcopyup symlink"
        );
        check!(
            fs_magic("/etc/copied") == Some(nix::sys::statfs::TMPFS_MAGIC),
            "tmpcopyup not a tmpfs"
        );
        let copied = std::fs::metadata("/etc/copied").map_err(|e| e.to_string())?;
        check!(
            copied.mode() & 0o7777 == 0o755,
            "tmpcopyup root mode {:o}",
            copied.mode()
        );

        check!(
            std::fs::read("/etc/secret").ok() == Some(Vec::new()),
            "masked file readable"
        );
        check!(
            std::fs::read_dir("/etc/secretdir").map(|d| d.count()).ok() == Some(0),
            "masked dir not empty"
        );
        check!(
            errno_of(std::fs::write("/etc/secretdir/n", "")) == Some(libc::EROFS),
            "masked dir writable"
        );
        check!(
            errno_of(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/proc/sys/kernel/domainname")
            ) == Some(libc::EROFS),
            "/proc/sys writable"
        );
        check!(
            errno_of(std::fs::write("/etc/rodir/n", "")) == Some(libc::EROFS),
            "readonly dir writable"
        );
        check!(
            std::fs::write("/etc/writable", "").is_ok(),
            "root became read-only"
        );

        if Path::new("/sys/fs/cgroup/memory").exists()
            || fs_magic("/sys/fs/cgroup") == Some(nix::sys::statfs::TMPFS_MAGIC)
        {
            check!(
                Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists(),
                "no memory hierarchy"
            );
            check!(
                errno_of(std::fs::create_dir("/sys/fs/cgroup/memory/x")) == Some(libc::EROFS),
                "cgroup writable"
            );
        }
        Ok(())
    });
    assert!(!outside.join("x").exists(), "a mount escaped the rootfs");
    result.unwrap();
}

/// Each `linux.rootfsPropagation` as runtime-tools checks it, with a read-only root.
#[test]
fn rootfs_propagation_and_readonly_root() {
    hull_testing::skip_unless_root!();
    for prop in [
        "shared",
        "rshared",
        "slave",
        "rslave",
        "private",
        "rprivate",
        "unbindable",
        "runbindable",
    ] {
        let s = Scratch::new(prop);
        let spec = spec(json!({
            "root": {"readonly": true},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"rootfsPropagation": prop},
        }));
        let (bundle, rootfs) = (s.bundle(), s.rootfs());
        let result = in_child(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            run_all(&ctx(&spec, &rootfs, &bundle))?;
            let line = mountinfo_line("/").ok_or("no / in mountinfo")?;
            let shared = line.contains(" shared:");
            let unbindable = line.contains(" unbindable");
            check!(shared == prop.ends_with("shared"), "{prop}: {line}");
            check!(unbindable == prop.ends_with("unbindable"), "{prop}: {line}");
            check!(
                errno_of(std::fs::create_dir("/x")) == Some(libc::EROFS),
                "{prop}: root not read-only"
            );
            let bind = nix::mount::mount(
                Some("/"),
                "/proc",
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            );
            check!(
                (bind == Err(Errno::EINVAL)) == prop.ends_with("unbindable"),
                "{prop}: bind of / gave {bind:?}"
            );
            Ok(())
        });
        result.unwrap();
    }
}

/// `--no-pivot`: the rootfs is moved onto / and chrooted into.
#[test]
fn no_pivot_moves_the_rootfs_onto_root() {
    hull_testing::skip_unless_root!();
    let s = Scratch::new("nopivot");
    std::fs::write(s.rootfs().join("marker"), "here").unwrap();
    let spec =
        spec(json!({"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}));
    let (bundle, rootfs) = (s.bundle(), s.rootfs());
    in_child(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        let mut c = ctx(&spec, &rootfs, &bundle);
        c.no_pivot = true;
        run_all(&c)?;
        check!(
            std::fs::read_to_string("/marker").ok().as_deref() == Some("here"),
            "not in the rootfs"
        );
        check!(
            fs_magic("/proc") == Some(nix::sys::statfs::PROC_SUPER_MAGIC),
            "no procfs"
        );
        Ok(())
    })
    .unwrap();
}

/// Without a mount namespace the mounts land in the caller's namespace (a private one here,
/// standing in for the host's) and `cleanup_host_mounts` removes all of them.
#[test]
fn without_mount_namespace_cleanup_removes_every_mount() {
    hull_testing::skip_unless_root!();
    let s = Scratch::new("nomntns");
    let spec = spec(json!({
        "root": {"readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"},
        ],
        "linux": {"namespaces": [], "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
    }));
    let (bundle, rootfs) = (s.bundle(), s.rootfs());
    in_child(|| {
        // The "host" namespace of this test.
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| e.to_string())?;
        in_child(|| {
            let mut c = ctx(&spec, &rootfs, &bundle);
            c.mount_ns = false;
            run_all(&c)?;
            check!(Path::new("/dev/null").exists(), "no /dev/null");
            Ok(())
        })?;
        let below = |t: &str| {
            t.lines()
                .filter(|l| l.contains(&*rootfs.to_string_lossy()))
                .count()
        };
        let before = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        check!(
            below(&before) >= 4,
            "mounts did not land in the caller's namespace"
        );
        cleanup_host_mounts(&rootfs).map_err(|e| e.to_string())?;
        let after = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        check!(below(&after) == 0, "left behind:\n{after}");
        Ok(())
    })
    .unwrap();
}

/// A /proc that is a symlink, and a /dev/null that is not the null device, are refused.
#[test]
fn symlinked_proc_and_fake_dev_null_are_refused() {
    hull_testing::skip_unless_root!();
    let s = Scratch::new("refuse");
    std::os::unix::fs::symlink("/tmp", s.rootfs().join("proc")).unwrap();
    let spec1 =
        spec(json!({"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}));
    let (bundle, rootfs) = (s.bundle(), s.rootfs());
    let err = in_child(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        prepare(&ctx(&spec1, &rootfs, &bundle)).map_err(|e| e.to_string())
    })
    .unwrap_err();
    assert!(err.contains("ordinary directory"), "{err}");

    std::fs::remove_file(s.rootfs().join("proc")).unwrap();
    std::fs::create_dir_all(s.rootfs().join("dev")).unwrap();
    std::fs::write(s.rootfs().join("dev/null"), "not a device").unwrap();
    std::fs::write(s.rootfs().join("masked"), "data").unwrap();
    let spec2 = spec(json!({"linux": {"maskedPaths": ["/masked"]}}));
    let err = in_child(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        run_all(&ctx(&spec2, &rootfs, &bundle))
    })
    .unwrap_err();
    assert!(err.contains("1:3"), "{err}");
}

/// In a new user namespace: device nodes are bound from the host, a bind of a mount whose
/// flags the kernel locked still gets `ro`, and masking works with the bound /dev/null.
#[test]
fn user_namespace_binds_devices_and_keeps_locked_flags() {
    hull_testing::skip_unless_root!();
    let s = Scratch::new("userns");
    let locked = s.0.join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::write(s.rootfs().join("masked"), "data").unwrap();
    std::fs::create_dir_all(s.rootfs().join("maskeddir/sub")).unwrap();
    let spec = spec(json!({
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/mnt", "source": locked, "options": ["bind", "ro"]},
        ],
        "linux": {"maskedPaths": ["/masked", "/maskeddir"], "readonlyPaths": ["/proc/sys"]},
    }));
    let (bundle, rootfs) = (s.bundle(), s.rootfs());
    in_child(|| {
        // A mount with nosuid,nodev,noexec made before the user namespace: locked inside it.
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| e.to_string())?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        nix::mount::mount(Some("tmpfs"), &locked, Some("tmpfs"), flags, None::<&str>)
            .map_err(|e| e.to_string())?;
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| e.to_string())?;
        std::fs::write("/proc/self/setgroups", "deny").map_err(|e| e.to_string())?;
        std::fs::write("/proc/self/uid_map", "0 0 1").map_err(|e| e.to_string())?;
        std::fs::write("/proc/self/gid_map", "0 0 1").map_err(|e| e.to_string())?;
        let ns = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET;
        nix::sched::unshare(ns).map_err(|e| e.to_string())?;
        // The new PID namespace applies to children: do the work in one.
        in_child(|| {
            let mut c = ctx(&spec, &rootfs, &bundle);
            c.user_ns = true;
            run_all(&c)?;
            let null = std::fs::metadata("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
            check!(
                null.rdev() == nix::sys::stat::makedev(1, 3),
                "/dev/null not 1:3"
            );
            let mnt = mountinfo_line("/mnt").ok_or("no /mnt")?;
            check!(
                mnt.contains(" ro,") && mnt.contains("nosuid") && mnt.contains("nodev"),
                "locked bind: {mnt}"
            );
            check!(
                std::fs::read("/masked").ok() == Some(Vec::new()),
                "masked file readable"
            );
            check!(
                fs_magic("/sys") == Some(nix::sys::statfs::SYSFS_MAGIC),
                "no sysfs"
            );
            check!(
                std::fs::read_dir("/maskeddir").map(|d| d.count()).ok() == Some(0),
                "masked dir not empty"
            );
            let domainname = std::fs::OpenOptions::new()
                .write(true)
                .open("/proc/sys/kernel/domainname");
            check!(
                errno_of(domainname) == Some(libc::EROFS),
                "/proc/sys writable"
            );
            check!(Path::new("/dev/pts/ptmx").exists(), "no devpts");
            Ok(())
        })
    })
    .unwrap();
}

/// On a host whose mounts are shared (systemd makes / rshared), pivot_root still works for
/// every rootfsPropagation, and none of the container's mounts leaks into the host.
#[test]
fn shared_host_root_neither_blocks_pivot_nor_receives_container_mounts() {
    hull_testing::skip_unless_root!();
    for prop in [
        None,
        Some("shared"),
        Some("rshared"),
        Some("private"),
        Some("rslave"),
        Some("unbindable"),
    ] {
        let s = Scratch::new("sharedhost");
        let mut patch = json!({
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            ],
        });
        if let Some(p) = prop {
            patch["linux"] = json!({"rootfsPropagation": p});
        }
        let spec = spec(patch);
        let (bundle, rootfs) = (s.bundle(), s.rootfs());
        in_child(|| {
            // The "host": everything shared.
            nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            let rshared = MsFlags::MS_SHARED | MsFlags::MS_REC;
            nix::mount::mount(None::<&str>, "/", None::<&str>, rshared, None::<&str>)
                .map_err(|e| e.to_string())?;
            in_child(|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
                run_all(&ctx(&spec, &rootfs, &bundle))?;
                check!(
                    fs_magic("/proc") == Some(nix::sys::statfs::PROC_SUPER_MAGIC),
                    "{prop:?}: no procfs"
                );
                Ok(())
            })?;
            let table =
                std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
            let leaked = table
                .lines()
                .filter(|l| l.contains(&*rootfs.to_string_lossy()))
                .count();
            check!(
                leaked == 0,
                "{prop:?}: {leaked} mounts leaked to the host:\n{table}"
            );
            Ok(())
        })
        .unwrap();
    }
}
