//! `checkpoint`: a running container's processes dumped into image files by CRIU
//! ([`crate::criu`]), as runc asks for it: the rootfs as CRIU's root, the mounts CRIU cannot
//! dump (binds of host files, the v1 cgroup binds, device nodes, masked files) named as
//! external, the init's stdio recorded in `descriptors.json` for a restore to reconnect, the
//! freezer cgroup to stop it with. Afterwards the container is deleted, unless it was asked
//! to keep running (`--leave-running`, `--pre-dump`).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::*;
use crate::criu::{self, rpc, CriuError};

/// `checkpoint`'s flags (and the ones `restore` shares).
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// Where the images go (made 0700 if missing).
    pub image_path: PathBuf,
    /// Where CRIU's log and work files go; the image directory by default.
    pub work_path: Option<PathBuf>,
    /// A previous (pre-)dump, relative to `image_path`: only what changed since is dumped.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub lazy_pages: bool,
    /// `--status-fd`: CRIU's `\0` once lazy pages can be served.
    pub status_fd: Option<std::os::fd::RawFd>,
    /// `--page-server ADDRESS:PORT`.
    pub page_server: Option<(String, i32)>,
    pub file_locks: bool,
    pub pre_dump: bool,
    /// `--manage-cgroups-mode`: soft, full, strict or ignore.
    pub manage_cgroups_mode: Option<String>,
    /// `--empty-ns`: only `network`.
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("Container cannot be checkpointed in {0} state")]
    Status(Status),
    #[error("{0}")]
    Options(String),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Criu(#[from] CriuError),
    #[error(transparent)]
    Delete(#[from] DeleteError),
}

impl Runtime {
    /// Dumps container `id` into `opts.image_path`; deletes it afterwards unless it is to
    /// keep running.
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<(), CheckpointError> {
        let entry = self.store.open(id)?;
        let st = entry.load()?;
        match st.status() {
            Status::Running | Status::Paused => {}
            other => return Err(CheckpointError::Status(other)),
        }
        // The flags first: a refused one makes nothing.
        let mut req = rpc::Criu_opts::new();
        shared_options(&mut req, &CriuShared::of(opts))?;
        if opts.parent_path.as_deref().is_some_and(Path::is_absolute) {
            return Err(CheckpointError::Options(
                "--parent-path must be relative".into(),
            ));
        }
        if let Some(fd) = opts.status_fd {
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| {
                CheckpointError::Options(format!("invalid --status-fd argument {fd}: {e}"))
            })?;
            if flags & libc::O_ACCMODE == libc::O_RDONLY {
                return Err(CheckpointError::Options(format!(
                    "invalid --status-fd argument {fd}: not writable"
                )));
            }
        }
        criu::check_version()?;
        let images = open_dir(&opts.image_path, "images")?;
        req.set_images_dir_fd(images.as_raw_fd());
        let work = match &opts.work_path {
            Some(p) => Some(open_dir(p, "work")?),
            None => None,
        };
        if let Some(w) = &work {
            req.set_work_dir_fd(w.as_raw_fd());
        }
        let log_dir = opts.work_path.as_deref().unwrap_or(&opts.image_path);
        req.set_log_level(4);
        req.set_log_file("dump.log".into());
        req.set_root(st.rootfs.display().to_string());
        req.set_pid(st.pid);
        set_config_file(&mut req, &st.config);
        req.set_leave_running(opts.leave_running);
        req.set_tcp_skip_in_flight(opts.tcp_skip_in_flight);
        req.set_link_remap(opts.link_remap);
        if let Some((address, port)) = &opts.page_server {
            let mut ps = rpc::Criu_page_server_info::new();
            ps.set_address(address.clone());
            ps.set_port(*port);
            req.ps = protobuf::MessageField::some(ps);
        }
        if let Some(parent) = &opts.parent_path {
            let full = opts.image_path.join(parent);
            if !full.is_dir() {
                return Err(CheckpointError::Options(format!(
                    "invalid --parent-path: {} is not a directory",
                    full.display()
                )));
            }
            req.set_parent_img(parent.display().to_string());
            req.set_track_mem(true);
        }
        if opts.pre_dump {
            req.set_track_mem(true);
        }
        for (kind, key) in [
            (LinuxNamespaceType::Network, "extRootNetNS"),
            (LinuxNamespaceType::Pid, "extRootPidNS"),
        ] {
            if let Some(path) = joined_namespace(&st.config, kind) {
                let meta = std::fs::metadata(&path).map_err(|source| CheckpointError::Io {
                    step: "stat namespace",
                    path: path.clone(),
                    source,
                })?;
                let name = crate::namespaces::kind(kind);
                let name = if name == "network" { "net" } else { name };
                req.external.push(format!(
                    "{name}[{}]:{key}",
                    std::os::unix::fs::MetadataExt::ino(&meta)
                ));
            }
        }
        if let Some(dir) = st.cgroups.as_ref().and_then(|c| c.freezer_dir()) {
            req.set_freeze_cgroup(dir.display().to_string());
        }
        if !opts.pre_dump {
            for mount in external_mounts(&st) {
                let mut m = rpc::Ext_mount_map::new();
                m.set_key(mount.clone());
                m.set_val(mount);
                req.ext_mnt.push(m);
            }
            for masked in masked_files(&st) {
                let mut m = rpc::Ext_mount_map::new();
                m.set_key(masked);
                m.set_val("/dev/null".into());
                req.ext_mnt.push(m);
            }
            write_descriptors(&opts.image_path, st.pid)?;
        }
        let kind = if opts.pre_dump {
            rpc::Criu_req_type::PRE_DUMP
        } else {
            rpc::Criu_req_type::DUMP
        };
        let mut status_fd = opts.status_fd;
        let mut notify = |script: &str, _: &rpc::Criu_notify, _| -> Result<(), String> {
            if script == "status-ready" {
                if let Some(fd) = status_fd.take() {
                    // The caller handed the fd over for this one byte; closed after it.
                    if let Err(e) = hull_sys::fd::write_inherited(fd, b"\0") {
                        tracing::warn!("write to --status-fd {fd}: {e}");
                    }
                }
            }
            Ok(())
        };
        let swrk = criu::Swrk {
            log: Some(log_dir.join("dump.log")),
            ..Default::default()
        };
        criu::call(kind, Some(req), swrk, &mut |_| Ok(()), &mut notify)?;
        drop(entry);
        if !opts.leave_running && !opts.pre_dump {
            // The images are made: a container that will not go is worth a warning, as runc.
            if let Err(e) = self.delete(id, true) {
                tracing::warn!("delete the checkpointed container: {e}");
            }
        }
        Ok(())
    }
}

/// The options `checkpoint` and `restore` both send.
#[derive(Debug)]
pub(super) struct CriuShared<'a> {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub lazy_pages: bool,
    pub auto_dedup: bool,
    pub manage_cgroups_mode: Option<&'a str>,
    pub empty_ns: &'a [String],
}

impl<'a> CriuShared<'a> {
    fn of(o: &'a CheckpointOptions) -> Self {
        CriuShared {
            tcp_established: o.tcp_established,
            ext_unix_sk: o.ext_unix_sk,
            shell_job: o.shell_job,
            file_locks: o.file_locks,
            lazy_pages: o.lazy_pages,
            auto_dedup: o.auto_dedup,
            manage_cgroups_mode: o.manage_cgroups_mode.as_deref(),
            empty_ns: &o.empty_ns,
        }
    }
}

/// CRIU's configuration file for this container, as runc picks it: the `org.criu.config`
/// annotation (empty: none), else `/etc/criu/runc.conf` (so settings made for runc apply;
/// CRIU ignores a file that is not there, and its settings override the request's).
pub(super) fn set_config_file(req: &mut rpc::Criu_opts, spec: &oci_spec::runtime::Spec) {
    match spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config"))
    {
        Some(file) if file.is_empty() => {}
        Some(file) => req.set_config_file(file.clone()),
        None => req.set_config_file("/etc/criu/runc.conf".into()),
    }
}

/// Sets what runc sets for both commands.
pub(super) fn shared_options(
    req: &mut rpc::Criu_opts,
    o: &CriuShared<'_>,
) -> Result<(), CheckpointError> {
    req.set_manage_cgroups(true);
    let mode = match o.manage_cgroups_mode.unwrap_or("") {
        "" => rpc::Criu_cg_mode::DEFAULT,
        "soft" => rpc::Criu_cg_mode::SOFT,
        "full" => rpc::Criu_cg_mode::FULL,
        "strict" => rpc::Criu_cg_mode::STRICT,
        "ignore" => rpc::Criu_cg_mode::IGNORE,
        other => {
            return Err(CheckpointError::Options(format!(
                "invalid manage-cgroups-mode value {other} (want soft, full, strict or ignore)"
            )))
        }
    };
    req.set_manage_cgroups_mode(mode);
    req.set_notify_scripts(true);
    req.set_shell_job(o.shell_job);
    req.set_tcp_established(o.tcp_established);
    req.set_ext_unix_sk(o.ext_unix_sk);
    req.set_file_locks(o.file_locks);
    req.set_orphan_pts_master(true);
    req.set_auto_dedup(o.auto_dedup);
    req.set_lazy_pages(o.lazy_pages);
    for ns in o.empty_ns {
        if ns != "network" {
            return Err(CheckpointError::Options(format!(
                "namespace {ns} is not supported (only network)"
            )));
        }
    }
    // As runc: the network namespace comes back empty whatever was asked (its interfaces
    // are the caller's to make).
    req.set_empty_ns(libc::CLONE_NEWNET as u32);
    Ok(())
}

fn open_dir(path: &Path, what: &'static str) -> Result<OwnedFd, CheckpointError> {
    let step = if what == "images" {
        "make the images directory"
    } else {
        "make the work directory"
    };
    let err = |step: &'static str| {
        move |source| CheckpointError::Io {
            step,
            path: path.to_path_buf(),
            source,
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(err(step))?;
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(err("open"))
}

/// The path of the namespace of `kind` the container joined, if it joined one.
fn joined_namespace(spec: &oci_spec::runtime::Spec, kind: LinuxNamespaceType) -> Option<PathBuf> {
    crate::spec::linux(spec)
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == kind)
        .and_then(|n| n.path().clone())
}

/// The container's mounts CRIU cannot make again from their images, by their path inside
/// the container: those of a filesystem the container has no whole mount of (a bind of a
/// host directory or file, the host's /dev/null over a masked file, a cgroup directory
/// bound from the host). A bind of part of a filesystem mounted whole in the container (the
/// read-only /proc/sys over /proc) CRIU makes again itself.
fn external_mounts(st: &ContainerState) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{}/mountinfo", st.pid)).unwrap_or_default();
    let mounts = hull_sys::mountinfo::parse(&text);
    // The rootfs counts as whole: a bind of part of it made inside the container is CRIU's.
    let whole: Vec<&str> = mounts
        .iter()
        .filter(|m| m.root == "/" || m.mount_point == Path::new("/"))
        .map(|m| m.device.as_str())
        .collect();
    // Every bind of the config, as runc names them: a bind of a whole host filesystem has
    // `/` for its root and would pass for one the container made.
    let mut out = config_binds(&st.config, &st.rootfs);
    for m in &mounts {
        let point = m.mount_point.display().to_string();
        if point == "/" || whole.contains(&m.device.as_str()) {
            continue;
        }
        if !out.contains(&point) {
            out.push(point);
        }
    }
    out
}

/// The destinations of the config's bind mounts, cleaned as the plan cleans them, and where
/// symlinks inside the rootfs took them (runc resolves them too: CRIU knows a mount by the
/// path it really has).
fn config_binds(spec: &oci_spec::runtime::Spec, rootfs: &Path) -> Vec<String> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| {
            m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind")
        })
        .map(|m| {
            let dest = crate::rootfs::clean_path(m.destination());
            crate::rootfs::resolved_destination(rootfs, &dest)
                .display()
                .to_string()
        })
        .collect()
}

/// The masked paths that are files: they are /dev/null bound over them.
fn masked_files(st: &ContainerState) -> Vec<String> {
    crate::spec::linux(&st.config)
        .masked_paths()
        .iter()
        .flatten()
        .filter(|p| {
            std::fs::metadata(format!("/proc/{}/root{p}", st.pid)).is_ok_and(|m| !m.is_dir())
        })
        .cloned()
        .collect()
}

/// `descriptors.json`: what the init's stdin, stdout and stderr are, as /proc shows them
/// (`pipe:[…]`, `/dev/null`, a pty): a restore hands its own pipes to CRIU in their place.
fn write_descriptors(images: &Path, pid: i32) -> Result<(), CheckpointError> {
    let fds: Vec<String> = (0..3)
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/fd/{n}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    let path = images.join("descriptors.json");
    let text = serde_json::to_vec(&fds).expect("strings serialize");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &text))
        .map_err(|source| CheckpointError::Io {
            step: "write",
            path,
            source,
        })
}
