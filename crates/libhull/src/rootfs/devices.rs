//! /dev inside the rootfs: the default device nodes, `linux.devices`, the standard symlinks,
//! /dev/ptmx and /dev/console. Nodes are made with mknod where the kernel lets us; in a user
//! namespace (or wherever mknod is refused) the host's node is bind-mounted onto an empty file.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Mount};

use super::inroot::InRoot;
use super::mounts::open_or_create;
use super::options::MountOptions;
use super::{clean_path, sys, RootfsContext, RootfsError};
use hull_sys::mount::{self as sysmount, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE};

/// The devices every container gets (runtime-spec "Default Devices").
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// One node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Device {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Device {
    fn rdev(&self) -> u64 {
        nix::sys::stat::makedev(self.major, self.minor)
    }
}

/// /dev is ours to populate unless the config binds it from somewhere.
pub(super) fn needs_setup(mounts: &[Mount]) -> bool {
    !mounts.iter().any(|m| {
        let bind = m.typ().as_deref() == Some("bind")
            || MountOptions::parse(m.options().as_deref().unwrap_or_default()).is_bind();
        bind && clean_path(m.destination()) == Path::new("/dev")
    })
}

/// Creates the default devices and `linux.devices`, then the symlinks and /dev/ptmx.
pub(super) fn setup(ctx: &RootfsContext, root: &InRoot) -> Result<(), RootfsError> {
    let devices = wanted(ctx)?;
    // Modes exactly as configured.
    let old = nix::sys::stat::umask(Mode::empty());
    let made = create_all(ctx, root, &devices);
    nix::sys::stat::umask(old);
    made?;
    symlinks(root)
}

fn create_all(ctx: &RootfsContext, root: &InRoot, devices: &[Device]) -> Result<(), RootfsError> {
    // Most nodes share /dev: its directory is resolved (or made) once, and each node is
    // made in it with one mknodat.
    let mut parent: Option<(&Path, OwnedFd)> = None;
    for d in devices {
        let (Some(dir), Some(name)) = (d.path.parent(), d.path.file_name()) else {
            return Err(RootfsError::refused(
                "create device",
                d.path.display(),
                "not a file path",
            ));
        };
        if parent.as_ref().is_none_or(|(p, _)| *p != dir) {
            let fd = root
                .mkdir_all(dir, Mode::from_bits_truncate(0o755))
                .map_err(sys("create directory", dir.display()))?;
            parent = Some((dir, fd));
        }
        let (_, dir) = parent.as_ref().expect("set above");
        create(ctx, root, dir.as_fd(), name, d)?;
    }
    Ok(())
}

/// `linux.devices`, then each default device the config does not list itself.
fn wanted(ctx: &RootfsContext) -> Result<Vec<Device>, RootfsError> {
    let configured = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(configured.len() + DEFAULT_DEVICES.len());
    for d in configured {
        let path = clean_path(d.path());
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            // Refused by spec::validate before anything is made; kept for an unchecked spec.
            LinuxDeviceType::A => {
                return Err(RootfsError::refused(
                    "create device",
                    path.display(),
                    "type \"a\" is not a device node type",
                ))
            }
        };
        let (Ok(major), Ok(minor)) = (u64::try_from(d.major()), u64::try_from(d.minor())) else {
            return Err(RootfsError::refused(
                "create device",
                path.display(),
                "negative major or minor number",
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

/// Makes `d` as `name` in `dir` (its parent directory).
fn create(
    ctx: &RootfsContext,
    root: &InRoot,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    d: &Device,
) -> Result<(), RootfsError> {
    let node_needs_privilege = d.kind != SFlag::S_IFIFO;
    if !(ctx.user_ns && node_needs_privilege) {
        let rdev = if d.kind == SFlag::S_IFIFO {
            0
        } else {
            d.rdev()
        };
        let perm = Mode::from_bits_truncate(d.mode);
        match nix::sys::stat::mknodat(Some(dir.as_raw_fd()), name, d.kind, perm, rdev) {
            Ok(()) => return fix_up(dir, name, d),
            // A node the rootfs already has is kept, as runc does.
            Err(Errno::EEXIST) => return Ok(()),
            Err(Errno::EPERM) => {}
            Err(e) => return Err(sys("mknod", d.path.display())(e)),
        }
    }
    bind_host_node(root, d)
}

/// Checks the new node is what was asked for (nothing swapped it) and gives it its owner.
fn fix_up(dir: BorrowedFd<'_>, name: &OsStr, d: &Device) -> Result<(), RootfsError> {
    let shown = d.path.display().to_string();
    let h = hull_sys::fd::openat(
        dir.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open new device", &shown))?;
    let st = nix::sys::stat::fstat(h.as_raw_fd()).map_err(sys("stat new device", &shown))?;
    let kind_ok = st.st_mode & libc::S_IFMT == d.kind.bits();
    let rdev_ok = d.kind == SFlag::S_IFIFO || st.st_rdev == d.rdev();
    if !kind_ok || !rdev_ok {
        return Err(RootfsError::refused(
            "create device",
            &shown,
            "the new node is not the one requested",
        ));
    }
    if (d.uid, d.gid) != (0, 0) || (st.st_uid, st.st_gid) != (0, 0) {
        nix::unistd::fchownat(
            Some(h.as_raw_fd()),
            "",
            Some(nix::unistd::Uid::from_raw(d.uid)),
            Some(nix::unistd::Gid::from_raw(d.gid)),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(sys("chown device", shown))?;
    }
    Ok(())
}

/// Bind-mounts the host's node at the same path onto an empty file in the rootfs.
fn bind_host_node(root: &InRoot, d: &Device) -> Result<(), RootfsError> {
    let target = open_or_create(root, &d.path, true)?;
    let tree = sysmount::open_tree(None, &d.path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
        .map_err(sys("clone host device", d.path.display()))?;
    sysmount::move_mount(tree.as_fd(), target.as_fd())
        .map_err(sys("bind host device onto", d.path.display()))
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core (if the host has /proc/kcore) and /dev/ptmx.
fn symlinks(root: &InRoot) -> Result<(), RootfsError> {
    let dev = root
        .resolve(Path::new("/dev"))
        .map_err(sys("resolve", "/dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, link) in links {
        symlink(dev.as_fd(), target, link)?;
    }
    // /dev/ptmx must be the one of the container's devpts instance.
    match nix::unistd::unlinkat(
        Some(dev.as_raw_fd()),
        "ptmx",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys("remove", "/dev/ptmx")(e)),
    }
    symlink(dev.as_fd(), "pts/ptmx", "ptmx")
}

/// The symlink /dev/`name` to `target`; one that exists already is kept.
fn symlink(dev: BorrowedFd<'_>, target: &str, name: &str) -> Result<(), RootfsError> {
    match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(sys("create symlink", format!("/dev/{name}"))(e)),
    }
}

/// An empty /dev/console for the console code to bind the pty onto after pivot_root.
pub(super) fn create_console(root: &InRoot) -> Result<(), RootfsError> {
    open_or_create(root, Path::new("/dev/console"), true).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(json: &str) -> Mount {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn configured_devices_replace_defaults_of_the_same_path() {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.1",
            "root": {"path": "rootfs"},
            "linux": {"devices": [
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "uid": 7},
                {"path": "/dev/fifo", "type": "p", "fileMode": 0o20640},
            ]},
        }))
        .unwrap();
        let ctx = RootfsContext {
            spec: &spec,
            rootfs: Path::new("/r"),
            bundle: Path::new("/b"),
            no_pivot: false,
            mount_ns: true,
            user_ns: false,
            cgroup2_path: None,
            bind_sources: &[],
        };
        let devs = wanted(&ctx).unwrap();
        assert_eq!(devs.len(), 7);
        let null: Vec<_> = devs
            .iter()
            .filter(|d| d.path == Path::new("/dev/null"))
            .collect();
        assert_eq!(null.len(), 1);
        assert_eq!(null[0].uid, 7);
        assert_eq!((devs[1].kind, devs[1].mode), (SFlag::S_IFIFO, 0o640));
    }

    #[test]
    fn dev_setup_is_skipped_only_for_a_bound_dev() {
        let tmpfs = mount(r#"{"destination":"/dev","type":"tmpfs","source":"tmpfs"}"#);
        let bind = mount(r#"{"destination":"/dev/","source":"/dev","options":["rbind"]}"#);
        let other = mount(r#"{"destination":"/dev/shm","source":"/x","options":["bind"]}"#);
        assert!(needs_setup(&[tmpfs.clone(), other]));
        assert!(!needs_setup(&[tmpfs, bind]));
    }
}
