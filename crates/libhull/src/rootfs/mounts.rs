//! The `mounts[]` entries of the config, performed in order inside the rootfs: bind mounts
//! (built detached with open_tree, their flags set before they become visible), new
//! filesystems (mount(2) onto the destination's fd), cgroup v1 emulation and cgroup2,
//! `tmpcopyup` tmpfs. Destinations resolve inside the rootfs; symlinks never lead out of it.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::statfs;

use super::inroot::{self, InRoot};
use super::options::{propagation_attr, readonly_attr, MountOptions};
use super::plan::{IdmapIds, MountKind, MountStep, Plan};
use super::{fd_path, io_err, mountinfo, sys, RootfsContext, RootfsError};
use hull_sys::mount::{
    self as sysmount, MountAttr, AT_EMPTY_PATH, AT_RECURSIVE, MOUNT_ATTR_IDMAP, OPEN_TREE_CLOEXEC,
    OPEN_TREE_CLONE,
};

/// Files below /proc that may be bind-mounted over (what lxcfs emulates).
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Where the host keeps its cgroup2 hierarchy when it is fully unified.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The bind mount sources of the plan, each opened (as a detached copy, recursive for
/// `rbind`) by the runtime, by `mounts[]` index; `None` where a mount is no bind or the open
/// failed (the init then tries the path itself and reports). For a container with a new user
/// namespace, whose root may not reach a source the caller can (a directory under a 0700
/// parent): runc opens sources in the runtime too.
pub fn open_bind_sources(plan: &Plan) -> Vec<Option<OwnedFd>> {
    plan.mounts
        .iter()
        .map(|m| match &m.kind {
            MountKind::Bind { source } if !m.opts.flags.contains(MsFlags::MS_REMOUNT) => {
                open_source_tree(source, &m.opts).ok()
            }
            _ => None,
        })
        .collect()
}

/// For a restore, where CRIU mounts onto what is already there: the mount point of each
/// bind of the plan, made in the rootfs where missing (a directory, or a file for a file's
/// bind), as the init makes them for a create. Binds below a tmpfs of the plan are skipped:
/// CRIU brings back the tmpfs with what was in it.
pub fn make_restore_mount_points(plan: &Plan) -> Result<(), RootfsError> {
    let root = InRoot::open(&plan.rootfs).map_err(sys("open rootfs", plan.rootfs.display()))?;
    let tmpfs: Vec<&Path> = plan
        .mounts
        .iter()
        .filter(|m| matches!(&m.kind, MountKind::Filesystem { typ, .. } if typ == "tmpfs"))
        .map(|m| m.dest.as_path())
        .collect();
    // A bind with another inside it is bound for the while, so that the inner mount point
    // is made in its source, where CRIU will look for it (runc does the same).
    let mut bound = TemporaryBinds(Vec::new());
    for (i, m) in plan.mounts.iter().enumerate() {
        let MountKind::Bind { source } = &m.kind else {
            continue;
        };
        if tmpfs.iter().any(|t| m.dest.starts_with(t) && m.dest != *t) {
            continue;
        }
        let file = std::fs::metadata(source).is_ok_and(|md| !md.is_dir());
        let point = open_or_create(&root, &m.dest, file)?;
        let nests = plan.mounts[i + 1..]
            .iter()
            .any(|inner| inner.dest.starts_with(&m.dest) && inner.dest != m.dest);
        if nests && !file {
            let at = plan.rootfs.join(
                in_root_path(&root, &m.dest)?
                    .strip_prefix("/")
                    .unwrap_or(&m.dest),
            );
            nix::mount::mount(
                Some(source.as_path()),
                &super::fd_path(&point),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(sys("bind for its inner mount points", m.dest.display()))?;
            bound.0.push(at);
        }
    }
    Ok(())
}

/// Binds made only to create mount points inside them: undone, innermost first.
struct TemporaryBinds(Vec<PathBuf>);

impl Drop for TemporaryBinds {
    fn drop(&mut self) {
        for at in self.0.iter().rev() {
            let _ = nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Where container path `dest` is in the rootfs once symlinks on the way are followed inside
/// it (`/conf` → `/real/conf`): the mount point a mount at `dest` really has, which is how
/// CRIU names it. `dest` itself when the rootfs cannot be opened.
pub fn resolved_destination(rootfs: &Path, dest: &Path) -> PathBuf {
    InRoot::open(rootfs)
        .ok()
        .and_then(|root| in_root_path(&root, dest).ok())
        .unwrap_or_else(|| dest.to_path_buf())
}

/// The user namespace each idmapped bind mount of the plan is idmapped with, by `mounts[]`
/// index (`None` for the others): made by the runtime before anything else, one per set of
/// maps, or the one the container joins (`joined`, as the runtime opened it for the join, so
/// that both are the same namespace).
pub fn idmap_namespaces(
    plan: &Plan,
    joined: Option<BorrowedFd<'_>>,
) -> Result<Vec<Option<OwnedFd>>, RootfsError> {
    let mut made: Vec<(&IdmapIds, OwnedFd)> = Vec::new();
    let mut out = Vec::with_capacity(plan.mounts.len());
    for (i, m) in plan.mounts.iter().enumerate() {
        let Some(idmap) = &m.idmap else {
            out.push(None);
            continue;
        };
        // As runc: the kernel wants the caller to own the source's filesystem, which a
        // rootless caller does not for any host filesystem.
        if !nix::unistd::geteuid().is_root() {
            return Err(RootfsError::refused(
                "idmap",
                idmap_what(i, m),
                "idmapped mounts are not supported for rootless containers",
            ));
        }
        let fd = match made.iter().find(|(ids, _)| *ids == &idmap.ids) {
            Some((_, fd)) => fd.try_clone(),
            None => {
                let fd = match &idmap.ids {
                    IdmapIds::Maps { uid, gid } => crate::namespaces::mount_userns(uid, gid)
                        .map_err(|e| {
                            RootfsError::refused("idmap", idmap_what(i, m), e.to_string())
                        })?,
                    IdmapIds::UserNs(path) => match joined {
                        Some(fd) => fd.try_clone_to_owned(),
                        None => std::fs::File::open(path).map(OwnedFd::from),
                    }
                    .map_err(io_err("open user namespace", path.display()))?,
                };
                let copy = fd.try_clone();
                made.push((&idmap.ids, fd));
                copy
            }
        }
        .map_err(io_err("duplicate user namespace fd of", idmap_what(i, m)))?;
        out.push(Some(fd));
    }
    Ok(out)
}

/// How an idmapped mount is named in errors: its index, source and destination.
fn idmap_what(i: usize, m: &MountStep) -> String {
    let source = match &m.kind {
        MountKind::Bind { source } => source.display().to_string(),
        _ => String::new(),
    };
    format!("mounts[{i}] ({source} onto {})", m.dest.display())
}

/// In the runtime, for the init ([`super::Idmapper`]): sets `mounts[index]`'s idmapping
/// (`MOUNT_ATTR_IDMAP` with its namespace from [`idmap_namespaces`]) on `tree`, a detached
/// copy of its source.
pub fn set_idmap(
    plan: &Plan,
    namespaces: &[Option<OwnedFd>],
    index: usize,
    tree: BorrowedFd<'_>,
) -> Result<(), RootfsError> {
    let (Some(m), Some(Some(ns))) = (plan.mounts.get(index), namespaces.get(index)) else {
        return Err(RootfsError::refused(
            "idmap",
            format!("mounts[{index}]"),
            "no idmapped mount of the plan",
        ));
    };
    let recursive = m.idmap.as_ref().is_some_and(|i| i.recursive);
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: ns.as_raw_fd() as u64,
        ..super::options::empty_attr()
    };
    setattr(tree, &attr, recursive).map_err(|e| {
        let why = match e {
            Errno::EINVAL => format!("its filesystem cannot be idmapped ({e})"),
            Errno::EPERM => format!(
                "already idmapped, on a filesystem hull does not own, or mapped by the host's \
                 own user namespace ({e})"
            ),
            _ => e.to_string(),
        };
        RootfsError::refused("idmap", idmap_what(index, m), why)
    })
}

/// A detached copy of the mount tree at `source` (of all of it for `rbind`).
fn open_source_tree(source: &Path, opts: &MountOptions) -> Result<OwnedFd, Errno> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if opts.is_recursive_bind() {
        flags |= AT_RECURSIVE as u32;
    }
    sysmount::open_tree(None, source, flags)
}

/// Performs mounts inside one rootfs.
pub(super) struct Mounter<'a> {
    ctx: &'a RootfsContext<'a>,
    root: &'a InRoot,
    /// The rootfs as the kernel names it (the prefix of every resolved fd's path).
    root_path: PathBuf,
    cgroup_ns: bool,
}

impl<'a> Mounter<'a> {
    pub fn new(ctx: &'a RootfsContext<'a>, root: &'a InRoot) -> Result<Self, RootfsError> {
        let root_path = nix::fcntl::readlink(&fd_path(root))
            .map(PathBuf::from)
            .map_err(sys("read rootfs path", ctx.rootfs().display()))?;
        Ok(Mounter {
            ctx,
            root,
            root_path,
            cgroup_ns: ctx.plan.cgroup_ns,
        })
    }

    /// Performs `mounts[index]`; `opened`: its bind source as the runtime opened it.
    pub fn mount(
        &self,
        index: usize,
        m: &MountStep,
        opened: Option<&OwnedFd>,
    ) -> Result<(), RootfsError> {
        let (dest, opts) = (m.dest.as_path(), &m.opts);
        tracing::debug!(dest = %dest.display(), kind = ?m.kind, "mount");
        match &m.kind {
            MountKind::Bind { source } => {
                let idmap = m.idmap.is_some().then_some(index);
                self.bind(source, dest, opts, opened, idmap)
            }
            MountKind::Cgroup if host_is_unified() => self.cgroup2(dest, opts),
            MountKind::Cgroup => self.cgroup_v1(dest, opts),
            MountKind::Cgroup2 => self.cgroup2(dest, opts),
            MountKind::Filesystem { typ, source } => self.filesystem(source, dest, typ, opts),
        }
    }

    /// A bind mount of the host path `source` (already joined to the bundle), or of the tree
    /// the runtime `opened` from it.
    fn bind(
        &self,
        source: &Path,
        dest: &Path,
        opts: &MountOptions,
        opened: Option<&OwnedFd>,
        idmap: Option<usize>,
    ) -> Result<(), RootfsError> {
        if opts.flags.contains(MsFlags::MS_REMOUNT) {
            // "bind,remount,…": change the flags of what is mounted at dest already.
            let target = self
                .root
                .resolve(dest)
                .map_err(sys("resolve mount destination", dest.display()))?;
            return self.set_attrs(target.as_fd(), dest, opts, true);
        }
        // As runc: the runtime's copy only where the init cannot reach the source itself
        // (a new user namespace's root); by path, a source in the rootfs is the tree the
        // mounts before this one made there, which the runtime's copy never shows.
        let opened = opened.filter(|_| std::fs::metadata(source).is_err());
        let is_dir = match opened {
            Some(tree) => nix::sys::stat::fstat(tree.as_raw_fd())
                .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                .map_err(sys("stat bind source", source.display()))?,
            None => std::fs::metadata(source)
                .map_err(io_err("stat bind source", source.display()))?
                .is_dir(),
        };
        let target = self.mountpoint(dest, !is_dir)?;
        let at = self.in_root(&target, dest)?;
        check_proc_destination(&at, false, Some(source))?;
        self.attach_bind(source, &target, dest, opts, opened, idmap)
    }

    /// Clones `source` (recursively for rbind), sets its flags while it is still detached,
    /// attaches it onto `target`, then sets its propagation.
    fn attach_bind(
        &self,
        source: &Path,
        target: &OwnedFd,
        dest: &Path,
        opts: &MountOptions,
        opened: Option<&OwnedFd>,
        idmap: Option<usize>,
    ) -> Result<(), RootfsError> {
        let cloned;
        let tree = match opened {
            Some(tree) => tree,
            None => {
                cloned = open_source_tree(source, opts)
                    .map_err(sys("clone bind source", source.display()))?;
                &cloned
            }
        };
        if let Some(index) = idmap {
            let Some(idmapper) = self.ctx.idmapper else {
                return Err(RootfsError::refused(
                    "idmap",
                    dest.display(),
                    "nobody to set the idmapping",
                ));
            };
            idmapper
                .idmap(index, tree.as_fd())
                .map_err(|why| RootfsError::refused("idmap", dest.display(), why))?;
        }
        if let Some(attr) = opts.fresh_bind_attr() {
            match setattr(tree.as_fd(), &attr, false) {
                // A user namespace locked some of the source's flags: keep those the options
                // only left out, as runc does; clearing one explicitly cannot be done.
                Err(Errno::EPERM) => {
                    let locked = lockable_flags(tree.as_fd())
                        .map_err(sys("statvfs bind source", source.display()))?;
                    let retry = opts.locked_retry(&attr, locked).map_err(|why| {
                        RootfsError::refused(
                            "set bind mount flags for",
                            dest.display(),
                            format!("{why}: operation not permitted"),
                        )
                    })?;
                    setattr(tree.as_fd(), &retry, false).map_err(sys(
                        "set bind mount flags (locked ones kept) for",
                        dest.display(),
                    ))?;
                }
                r => r.map_err(sys("set bind mount flags for", dest.display()))?,
            }
        }
        if let Some(attr) = opts.rec_attr() {
            setattr(tree.as_fd(), &attr, true)
                .map_err(sys("set recursive mount attributes for", dest.display()))?;
        }
        // move_mount says EINVAL where mount(2) said ENOTDIR; docker's hint ("Are you trying
        // to mount a directory onto a file?") keys on runc's "not a directory".
        let is_dir = |fd: &OwnedFd| {
            nix::sys::stat::fstat(fd.as_raw_fd())
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        };
        if is_dir(tree) != is_dir(target) {
            return Err(RootfsError::refused(
                "bind mount",
                format!("{} onto {}", source.display(), dest.display()),
                "not a directory",
            ));
        }
        sysmount::move_mount(tree.as_fd(), target.as_fd())
            .map_err(sys("bind mount onto", dest.display()))?;
        self.set_propagation(tree.as_fd(), dest, opts)
    }

    /// A new filesystem (`proc`, `sysfs`, `tmpfs`, `devpts`, `mqueue`, `overlay`, …).
    fn filesystem(
        &self,
        source: &str,
        dest: &Path,
        typ: &str,
        opts: &MountOptions,
    ) -> Result<(), RootfsError> {
        let special = matches!(typ, "proc" | "sysfs");
        if special {
            self.refuse_non_directory(dest, typ)?;
        }
        // A tmpfs over an existing directory takes that directory's mode, as with runc (a
        // `mode=` in the options still wins: it comes later).
        let with_mode;
        let opts = match self.root.resolve(dest).ok().filter(|_| typ == "tmpfs") {
            Some(existing) => {
                let st = nix::sys::stat::fstat(existing.as_raw_fd())
                    .map_err(sys("stat", dest.display()))?;
                let mut o = opts.clone();
                o.data
                    .insert(0, format!("mode={:04o}", st.st_mode & 0o7777));
                with_mode = o;
                &with_mode
            }
            None => opts,
        };
        let target = self.mountpoint(dest, false)?;
        let at = self.in_root(&target, dest)?;
        check_proc_destination(&at, typ == "proc", None)?;

        if opts.flags.contains(MsFlags::MS_REMOUNT) {
            nix::mount::mount(
                Some(source),
                &fd_path(&target),
                Some(typ),
                opts.flags,
                Some(opts.data().as_str()),
            )
            .map_err(sys("remount", dest.display()))?;
            return self.set_attrs(target.as_fd(), dest, opts, false);
        }
        if typ == "tmpfs" && opts.tmpcopyup {
            return self.tmpfs_copyup(source, &target, dest, opts);
        }
        let mut flags = opts.fs_flags();
        if typ == "tmpfs" {
            // Made read-only in finalize, once everything below it exists.
            flags.remove(MsFlags::MS_RDONLY);
        }
        // proc, sysfs and mqueue take no context= option (runc labels none of them).
        let data = if matches!(typ, "proc" | "sysfs" | "mqueue") {
            opts.data()
        } else {
            crate::lsm::mount_data_with_label(&opts.data(), self.ctx.mount_label())
        };
        let mount_with = |data: &str| {
            nix::mount::mount(
                Some(source),
                &fd_path(&target),
                Some(typ),
                flags,
                Some(data),
            )
        };
        let mut mounted = mount_with(&data);
        if mounted == Err(Errno::EINVAL) && self.ctx.user_ns && typ == "devpts" {
            // gid=5 (tty) is often not mapped in a user namespace; the group is cosmetic.
            let unmapped: Vec<&str> = opts
                .data
                .iter()
                .map(String::as_str)
                .filter(|o| !o.starts_with("gid="))
                .collect();
            if unmapped.len() != opts.data.len() {
                mounted = mount_with(&unmapped.join(","));
            }
        }
        match mounted {
            Ok(()) => {}
            // In a user namespace that does not own the network (IPC) namespace the kernel
            // refuses a new sysfs (mqueue); the host's, bound read-only, is what runc offers.
            Err(Errno::EPERM) if self.ctx.user_ns && matches!(typ, "sysfs" | "mqueue") => {
                let host = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                tracing::debug!(dest = %dest.display(), "cannot mount {typ} here: binding {host}");
                let mut bind = opts.clone();
                bind.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
                return self.attach_bind(Path::new(host), &target, dest, &bind, None, None);
            }
            Err(e) => return Err(sys("mount", format!("{typ} at {}", dest.display()))(e)),
        }
        let mounted = self
            .root
            .resolve(dest)
            .map_err(sys("reopen mount", dest.display()))?;
        if special {
            let want = if typ == "proc" {
                statfs::PROC_SUPER_MAGIC
            } else {
                statfs::SYSFS_MAGIC
            };
            let got = statfs::fstatfs(&mounted).map_err(sys("statfs", dest.display()))?;
            if got.filesystem_type() != want {
                return Err(RootfsError::refused(
                    "mount",
                    dest.display(),
                    format!("{typ} was mounted but another filesystem is there"),
                ));
            }
        }
        self.set_attrs(mounted.as_fd(), dest, opts, false)
    }

    /// A tmpfs filled with what `target` held: built detached, filled, then attached.
    fn tmpfs_copyup(
        &self,
        source: &str,
        target: &OwnedFd,
        dest: &Path,
        opts: &MountOptions,
    ) -> Result<(), RootfsError> {
        let fs = sysmount::fsopen("tmpfs").map_err(sys("fsopen tmpfs for", dest.display()))?;
        sysmount::fsconfig_set(fs.as_fd(), "source", Some(source)).map_err(sys(
            "tmpfs source",
            format!("{source} for {}", dest.display()),
        ))?;
        for d in &opts.data {
            let (key, value) = match d.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (d.as_str(), None),
            };
            sysmount::fsconfig_set(fs.as_fd(), key, value)
                .map_err(sys("tmpfs option", format!("{d} for {}", dest.display())))?;
        }
        if let Some(label) = crate::lsm::fsconfig_context(&opts.data, self.ctx.mount_label()) {
            sysmount::fsconfig_set(fs.as_fd(), "context", Some(label)).map_err(sys(
                "tmpfs SELinux context",
                format!("{label} for {}", dest.display()),
            ))?;
        }
        for (flag, name) in [
            (MsFlags::MS_SYNCHRONOUS, "sync"),
            (MsFlags::MS_DIRSYNC, "dirsync"),
            (MsFlags::MS_LAZYTIME, "lazytime"),
        ] {
            if opts.flags.contains(flag) {
                sysmount::fsconfig_set(fs.as_fd(), name, None).map_err(sys(
                    "tmpfs option",
                    format!("{name} for {}", dest.display()),
                ))?;
            }
        }
        sysmount::fsconfig_create(fs.as_fd()).map_err(sys("create tmpfs for", dest.display()))?;
        let mut per_mount = opts.clone();
        per_mount.flags.remove(MsFlags::MS_RDONLY);
        let attrs = per_mount.bind_attr().map_or(0, |a| a.attr_set);
        let mnt = sysmount::fsmount(fs.as_fd(), attrs)
            .map_err(sys("fsmount tmpfs for", dest.display()))?;
        let reopen = |fd: BorrowedFd<'_>| -> Result<OwnedFd, Errno> {
            hull_sys::fd::openat(
                fd,
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        };
        let from = reopen(target.as_fd()).map_err(sys("open for tmpcopyup", dest.display()))?;
        let to = reopen(mnt.as_fd()).map_err(sys("open new tmpfs for", dest.display()))?;
        copy_tree(from.as_fd(), to.as_fd(), dest)?;
        sysmount::move_mount(mnt.as_fd(), target.as_fd())
            .map_err(sys("mount tmpfs onto", dest.display()))?;
        self.set_attrs(mnt.as_fd(), dest, opts, false)
    }

    /// `cgroup` on a v1 or hybrid host, as runc does it: a tmpfs with one directory per
    /// hierarchy, each the container's own cgroup bound from the host (or, in a new cgroup
    /// namespace, a fresh cgroup mount), and symlinks for co-mounted controllers.
    fn cgroup_v1(&self, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
        let readonly = self.cgroup_readonly(opts);
        let target = self.mountpoint(dest, false)?;
        let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        nix::mount::mount(
            Some("tmpfs"),
            &fd_path(&target),
            Some("tmpfs"),
            base,
            Some("mode=755"),
        )
        .map_err(sys("mount", format!("tmpfs at {}", dest.display())))?;
        // Holding the new tmpfs, each hierarchy's directory and symlinks are made right in
        // it: nothing else can have put anything there.
        let tmpfs = self
            .root
            .resolve(dest)
            .map_err(sys("reopen mount", dest.display()))?;

        let table =
            mountinfo::read_self().map_err(io_err("read mount table", "/proc/self/mountinfo"))?;
        let own = hull_sys::proc::own_cgroups().map_err(io_err("read", "/proc/self/cgroup"))?;
        let mut sub_opts = MountOptions {
            flags: base | MsFlags::MS_BIND | MsFlags::MS_REC,
            ..Default::default()
        };
        if readonly {
            sub_opts.flags |= MsFlags::MS_RDONLY;
        }
        for h in table.iter().filter(|m| m.fs_type == "cgroup") {
            if mountinfo::is_at_or_below(&h.mount_point, &self.root_path) {
                continue;
            }
            let Some(name) = h.mount_point.file_name() else {
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            let controllers = cgroup_controllers(&h.super_options);
            let sub = dest.join(&name);
            let dir = subdir(tmpfs.as_fd(), OsStr::new(&name))
                .map_err(sys("create cgroup directory", sub.display()))?;
            if self.cgroup_ns {
                nix::mount::mount(
                    Some("cgroup"),
                    &fd_path(&dir),
                    Some("cgroup"),
                    sub_opts.fs_flags(),
                    Some(controllers.join(",").as_str()),
                )
                .map_err(sys("mount", format!("cgroup at {}", sub.display())))?;
            } else {
                let path = own_cgroup(&own, &controllers).unwrap_or("/");
                let rel = Path::new(path)
                    .strip_prefix(&h.root)
                    .unwrap_or(Path::new(path));
                let rel = rel.strip_prefix("/").unwrap_or(rel);
                let source = h.mount_point.join(rel);
                self.attach_bind(&source, &dir, &sub, &sub_opts, None, None)?;
            }
            if name.contains(',') {
                for c in name.split(',') {
                    match nix::unistd::symlinkat(name.as_str(), Some(tmpfs.as_raw_fd()), c) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(sys("create symlink", dest.join(c).display())(e)),
                    }
                }
            }
        }
        if readonly {
            let ro = readonly_attr();
            setattr(tmpfs.as_fd(), &ro, false).map_err(sys("make read-only", dest.display()))?;
        }
        self.set_propagation(tmpfs.as_fd(), dest, opts)
    }

    /// `cgroup2` (or `cgroup` on a unified host); where the kernel refuses a new one (a user
    /// namespace without its own cgroup namespace), the host's hierarchy bound instead.
    fn cgroup2(&self, dest: &Path, opts: &MountOptions) -> Result<(), RootfsError> {
        let mut opts = opts.clone();
        if self.cgroup_readonly(&opts) {
            opts.flags |= MsFlags::MS_RDONLY;
        }
        let target = self.mountpoint(dest, false)?;
        let data = opts.data();
        match nix::mount::mount(
            Some("cgroup2"),
            &fd_path(&target),
            Some("cgroup2"),
            opts.fs_flags(),
            Some(data.as_str()),
        ) {
            Ok(()) => {}
            Err(e @ (Errno::EPERM | Errno::EBUSY)) => {
                let host = mountinfo::read_self()
                    .map_err(io_err("read mount table", "/proc/self/mountinfo"))?
                    .into_iter()
                    .find(|m| {
                        m.fs_type == "cgroup2"
                            && !mountinfo::is_at_or_below(&m.mount_point, &self.root_path)
                    })
                    .map_or_else(|| PathBuf::from(CGROUP_ROOT), |m| m.mount_point);
                // EBUSY: the host's hierarchy is at the mount point already (a /sys bound
                // from the host), and the kernel will not stack the same superblock there.
                // With a cgroup namespace, its root is the init's own cgroup: bind that.
                let host = match self.ctx.cgroup2_path.filter(|_| self.cgroup_ns) {
                    Some(own) => host.join(own.strip_prefix("/").unwrap_or(own)),
                    None => host,
                };
                tracing::debug!(dest = %dest.display(), "cannot mount cgroup2 here ({e}): binding {}", host.display());
                let mut bind = opts.clone();
                bind.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
                return self.attach_bind(&host, &target, dest, &bind, None, None);
            }
            Err(e) => return Err(sys("mount", format!("cgroup2 at {}", dest.display()))(e)),
        }
        let mounted = self
            .root
            .resolve(dest)
            .map_err(sys("reopen mount", dest.display()))?;
        self.set_attrs(mounted.as_fd(), dest, &opts, false)
    }

    /// Without its own cgroup namespace a container gets cgroupfs read-only unless the
    /// options say `rw` (CVE-2023-25809); with one, as the options say.
    fn cgroup_readonly(&self, opts: &MountOptions) -> bool {
        opts.readonly() || (!self.cgroup_ns && !opts.cleared.contains(MsFlags::MS_RDONLY))
    }

    /// The per-mount flags (binds only), recursive attributes and propagation of the mount
    /// `fd` refers to.
    fn set_attrs(
        &self,
        fd: BorrowedFd<'_>,
        dest: &Path,
        opts: &MountOptions,
        bind: bool,
    ) -> Result<(), RootfsError> {
        if bind {
            if let Some(attr) = opts.bind_attr() {
                setattr(fd, &attr, false)
                    .map_err(sys("set bind mount flags for", dest.display()))?;
            }
        }
        if let Some(attr) = opts.rec_attr() {
            setattr(fd, &attr, true)
                .map_err(sys("set recursive mount attributes for", dest.display()))?;
        }
        self.set_propagation(fd, dest, opts)
    }

    fn set_propagation(
        &self,
        fd: BorrowedFd<'_>,
        dest: &Path,
        opts: &MountOptions,
    ) -> Result<(), RootfsError> {
        for &p in &opts.propagation {
            setattr(fd, &propagation_attr(p), p.contains(MsFlags::MS_REC))
                .map_err(sys("set propagation of", dest.display()))?;
        }
        Ok(())
    }

    /// Opens the mount point `dest` inside the rootfs, creating it if missing: a directory,
    /// or an empty file when `file` (to bind a file onto).
    fn mountpoint(&self, dest: &Path, file: bool) -> Result<OwnedFd, RootfsError> {
        open_or_create(self.root, dest, file)
    }

    /// The path of an open fd inside the rootfs; a fd outside it is refused.
    fn in_root(&self, h: &OwnedFd, dest: &Path) -> Result<PathBuf, RootfsError> {
        let real =
            nix::fcntl::readlink(&fd_path(h)).map_err(sys("read path of", dest.display()))?;
        match Path::new(&real).strip_prefix(&self.root_path) {
            Ok(rel) => Ok(Path::new("/").join(rel)),
            Err(_) => Err(RootfsError::refused(
                "mount",
                dest.display(),
                format!(
                    "destination resolved outside the rootfs ({})",
                    Path::new(&real).display()
                ),
            )),
        }
    }

    /// procfs and sysfs go onto an ordinary directory only: never through a symlink or over
    /// a file at the destination itself.
    fn refuse_non_directory(&self, dest: &Path, typ: &str) -> Result<(), RootfsError> {
        match self.root.resolve_nofollow(dest) {
            Ok(h) => {
                let st = nix::sys::stat::fstat(h.as_fd().as_raw_fd())
                    .map_err(sys("stat", dest.display()))?;
                if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) != SFlag::S_IFDIR {
                    return Err(RootfsError::refused(
                        "mount",
                        dest.display(),
                        format!("filesystem {typ:?} must be mounted on ordinary directory"),
                    ));
                }
                Ok(())
            }
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(sys("resolve mount destination", dest.display())(e)),
        }
    }
}

/// The flags of the mount `fd` is on that a user namespace may lock, as `MOUNT_ATTR_*` bits.
fn lockable_flags(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    use nix::sys::statvfs::FsFlags;
    let f = nix::sys::statvfs::fstatvfs(fd)?.flags();
    let mut bits = 0;
    for (flag, bit) in [
        (FsFlags::ST_RDONLY, sysmount::MOUNT_ATTR_RDONLY),
        (FsFlags::ST_NOSUID, sysmount::MOUNT_ATTR_NOSUID),
        (FsFlags::ST_NODEV, sysmount::MOUNT_ATTR_NODEV),
        (FsFlags::ST_NOEXEC, sysmount::MOUNT_ATTR_NOEXEC),
        (FsFlags::ST_NODIRATIME, sysmount::MOUNT_ATTR_NODIRATIME),
    ] {
        if f.contains(flag) {
            bits |= bit;
        }
    }
    bits |= if f.contains(FsFlags::ST_NOATIME) {
        sysmount::MOUNT_ATTR_NOATIME
    } else if f.contains(FsFlags::ST_RELATIME) {
        sysmount::MOUNT_ATTR_RELATIME
    } else {
        sysmount::MOUNT_ATTR_STRICTATIME
    };
    Ok(bits)
}

/// Resolves `path` as if the rootfs were `/`: every symlink on the way, dangling ones too,
/// is followed inside the rootfs and `..` never climbs above it. What comes back has no
/// symlink in its existing part, so creating the rest cannot leave the rootfs.
fn in_root_path(root: &InRoot, path: &Path) -> Result<PathBuf, RootfsError> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;

    let mut resolved = PathBuf::from("/");
    let mut pending: VecDeque<OsString> = VecDeque::new();
    let push_front = |pending: &mut VecDeque<OsString>, p: &Path| {
        let parts: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect();
        for part in parts.into_iter().rev() {
            pending.push_front(part);
        }
    };
    push_front(&mut pending, path);
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let handle = match root.resolve_nofollow(&candidate) {
            Ok(h) => h,
            Err(Errno::ENOENT) => {
                resolved = candidate;
                continue;
            }
            Err(e) => return Err(sys("resolve", candidate.display())(e)),
        };
        let st =
            nix::sys::stat::fstat(handle.as_raw_fd()).map_err(sys("stat", candidate.display()))?;
        if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) != SFlag::S_IFLNK {
            resolved = candidate;
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(sys("resolve", path.display())(Errno::ELOOP));
        }
        let target = nix::fcntl::readlinkat(Some(handle.as_raw_fd()), Path::new(""))
            .map_err(sys("readlink", candidate.display()))?;
        let target = PathBuf::from(target);
        if target.is_absolute() {
            resolved = PathBuf::from("/");
        }
        push_front(&mut pending, &target);
    }
    Ok(resolved)
}

/// Opens `path` inside `root`, creating it if missing: a directory (with parents), or an
/// empty file when `file`. An existing path is used as it is.
pub(super) fn open_or_create(
    root: &InRoot,
    path: &Path,
    file: bool,
) -> Result<OwnedFd, RootfsError> {
    // Usually there: symlinks on the way are followed inside the rootfs by the kernel.
    if let Some(fd) = root.lookup(path).map_err(sys("resolve", path.display()))? {
        return Ok(fd);
    }
    let path = &in_root_path(root, path)?;
    if let Some(fd) = root.lookup(path).map_err(sys("resolve", path.display()))? {
        return Ok(fd);
    }
    let dir_mode = Mode::from_bits_truncate(0o755);
    if !file {
        return root
            .mkdir_all(path, dir_mode)
            .map_err(sys("create directory", path.display()));
    }
    if let Some(parent) = path.parent() {
        root.mkdir_all(parent, dir_mode)
            .map_err(sys("create directory", parent.display()))?;
    }
    // O_EXCL|O_NOFOLLOW: never create (or open) through a symlink someone put there.
    match root.create_file(path, Mode::from_bits_truncate(0o644)) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(sys("create file", path.display())(e)),
    }
    root.resolve(path).map_err(sys("resolve", path.display()))
}

/// The directory `name` in `dir`, made if missing (mode 0755 less the umask); refused if it
/// is a symlink.
fn subdir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    inroot::child(dir, name, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// mount_setattr on the mount `fd` refers to (its whole tree when `recursive`).
pub(super) fn setattr(fd: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> Result<(), Errno> {
    let mut flags = AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    sysmount::mount_setattr(Some(fd), Path::new(""), flags, attr)
}

/// Refuses mounts into /proc other than procfs on /proc itself, a procfs root bound onto
/// /proc, and the files lxcfs emulates (the CVE-2019-19921 class of escapes).
fn check_proc_destination(
    at: &Path,
    is_proc: bool,
    bind_source: Option<&Path>,
) -> Result<(), RootfsError> {
    let Ok(rel) = at.strip_prefix("/proc") else {
        return Ok(());
    };
    if rel.as_os_str().is_empty() {
        if is_proc {
            return Ok(());
        }
        if let Some(src) = bind_source {
            let is_procfs =
                statfs::statfs(src).is_ok_and(|s| s.filesystem_type() == statfs::PROC_SUPER_MAGIC);
            // Only the root of a procfs has inode 1.
            let is_root = nix::sys::stat::stat(src).is_ok_and(|s| s.st_ino == 1);
            if is_procfs && is_root {
                return Ok(());
            }
        }
        return Err(RootfsError::refused(
            "mount",
            at.display(),
            "only procfs may be mounted on /proc",
        ));
    }
    if PROC_ALLOWED.iter().any(|a| Path::new(a) == at) {
        return Ok(());
    }
    Err(RootfsError::refused(
        "mount",
        at.display(),
        "cannot be mounted because it is inside /proc",
    ))
}

/// The host mounts cgroup2 at /sys/fs/cgroup itself (no v1 hierarchies).
fn host_is_unified() -> bool {
    statfs::statfs(CGROUP_ROOT).is_ok_and(|s| s.filesystem_type() == statfs::CGROUP2_SUPER_MAGIC)
}

/// The controllers (and `name=`) of a v1 hierarchy from its super options, without the
/// generic options (`rw`, `xattr`, `clone_children`, …).
fn cgroup_controllers(super_options: &str) -> Vec<&str> {
    super_options
        .split(',')
        .filter(|o| {
            !matches!(
                *o,
                "" | "rw"
                    | "ro"
                    | "none"
                    | "xattr"
                    | "clone_children"
                    | "noprefix"
                    | "cpuset_v2_mode"
                    | "favordynmods"
                    | "nofavordynmods"
            ) && !o.starts_with("release_agent=")
        })
        .collect()
}

/// This process's cgroup in the hierarchy with exactly `controllers`, from /proc/self/cgroup.
fn own_cgroup<'t>(own: &'t [hull_sys::proc::CgroupLine], controllers: &[&str]) -> Option<&'t str> {
    own.iter().find_map(|line| {
        let mut have: Vec<&str> = line
            .controllers
            .split(',')
            .filter(|s| !s.is_empty())
            .collect();
        let mut want = controllers.to_vec();
        have.sort_unstable();
        want.sort_unstable();
        (!want.is_empty() && have == want).then_some(line.path.as_str())
    })
}

/// Copies the directory tree `from` into `to` (tmpcopyup): directories, files, symlinks and
/// special files, with modes and owners. Nothing is followed through a symlink.
fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>, dest: &Path) -> Result<(), RootfsError> {
    use nix::fcntl::AtFlags;
    use nix::sys::stat::{fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags};

    let st = nix::sys::stat::fstat(from.as_raw_fd()).map_err(sys("stat", dest.display()))?;
    copy_owner_mode(to, None, &st, dest)?;
    let dir = nix::dir::Dir::openat(
        Some(from.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("read directory", dest.display()))?;
    for entry in dir {
        let entry = entry.map_err(sys("read directory", dest.display()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let shown = dest
            .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()));
        let st = fstatat(Some(from.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(sys("stat", shown.display()))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        let open = |fd: BorrowedFd<'_>, flags: OFlag, mode: Mode| -> Result<OwnedFd, RootfsError> {
            hull_sys::fd::openat(fd, name, flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, mode)
                .map_err(sys("open", shown.display()))
        };
        match kind {
            SFlag::S_IFDIR => {
                mkdirat(Some(to.as_raw_fd()), name, Mode::from_bits_truncate(0o700))
                    .map_err(sys("mkdir", shown.display()))?;
                let src = open(from, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
                let dst = open(to, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
                copy_tree(src.as_fd(), dst.as_fd(), &shown)?;
                continue;
            }
            SFlag::S_IFREG => {
                let src = open(from, OFlag::O_RDONLY, Mode::empty())?;
                let dst = open(
                    to,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                    Mode::from_bits_truncate(0o600),
                )?;
                std::io::copy(&mut std::fs::File::from(src), &mut std::fs::File::from(dst))
                    .map_err(io_err("copy", shown.display()))?;
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(from.as_raw_fd()), name)
                    .map_err(sys("readlink", shown.display()))?;
                nix::unistd::symlinkat(target.as_os_str(), Some(to.as_raw_fd()), name)
                    .map_err(sys("symlink", shown.display()))?;
                copy_owner_mode(to, Some(name), &st, &shown)?;
                continue;
            }
            _ => {
                mknodat(Some(to.as_raw_fd()), name, kind, perm, st.st_rdev)
                    .map_err(sys("mknod", shown.display()))?;
            }
        }
        copy_owner_mode(to, Some(name), &st, &shown)?;
        fchmodat(
            Some(to.as_raw_fd()),
            name,
            perm,
            FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| {
            if e == Errno::EOPNOTSUPP {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(sys("chmod", shown.display()))?;
    }
    Ok(())
}

/// Gives `name` in `dir` (or `dir` itself) the owner of `st`, and for `dir` itself its mode.
/// Owners a user namespace cannot map are left as they are.
fn copy_owner_mode(
    dir: BorrowedFd<'_>,
    name: Option<&std::ffi::CStr>,
    st: &libc::stat,
    shown: &Path,
) -> Result<(), RootfsError> {
    use nix::fcntl::AtFlags;
    let uid = Some(nix::unistd::Uid::from_raw(st.st_uid));
    let gid = Some(nix::unistd::Gid::from_raw(st.st_gid));
    let (path, flags) = match name {
        Some(n) => (n, AtFlags::AT_SYMLINK_NOFOLLOW),
        None => (c"", AtFlags::AT_EMPTY_PATH),
    };
    match nix::unistd::fchownat(Some(dir.as_raw_fd()), path, uid, gid, flags) {
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(e) => return Err(sys("chown", shown.display())(e)),
    }
    if name.is_none() {
        nix::sys::stat::fchmod(
            dir.as_raw_fd(),
            Mode::from_bits_truncate(st.st_mode & 0o7777),
        )
        .map_err(sys("chmod", shown.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_controllers_drop_generic_options() {
        assert_eq!(cgroup_controllers("rw,cpu,cpuacct"), vec!["cpu", "cpuacct"]);
        assert_eq!(
            cgroup_controllers("rw,xattr,name=systemd"),
            vec!["name=systemd"]
        );
        assert_eq!(
            cgroup_controllers("ro,cpuset,clone_children,release_agent=/x"),
            vec!["cpuset"]
        );
    }

    #[test]
    fn own_cgroup_matches_the_controller_set() {
        let own = hull_sys::proc::parse_cgroups(
            "9:name=systemd:/\n4:memory:/a/b\n2:cpuacct,cpu:/c\n0::/u\n",
        );
        let text = &own[..];
        assert_eq!(own_cgroup(text, &["memory"]), Some("/a/b"));
        assert_eq!(own_cgroup(text, &["cpu", "cpuacct"]), Some("/c"));
        assert_eq!(own_cgroup(text, &["name=systemd"]), Some("/"));
        assert_eq!(own_cgroup(text, &["pids"]), None);
    }

    #[test]
    fn proc_destinations_are_limited() {
        assert!(check_proc_destination(Path::new("/proc"), true, None).is_ok());
        assert!(check_proc_destination(Path::new("/proc"), false, None).is_err());
        assert!(
            check_proc_destination(Path::new("/proc/cpuinfo"), false, Some(Path::new("/x")))
                .is_ok()
        );
        assert!(
            check_proc_destination(Path::new("/proc/sys/kernel/core_pattern"), false, None)
                .is_err()
        );
        assert!(check_proc_destination(Path::new("/procfoo"), false, None).is_ok());
        assert!(
            check_proc_destination(Path::new("/proc"), false, Some(Path::new("/proc"))).is_ok()
        );
    }
}
