//! `restore`: a container made again from `checkpoint`'s images by CRIU, as runc does it: a
//! state entry and cgroups as for a create (CRIU is put into the cgroups before it restores,
//! so the processes come back inside them), the rootfs bound at a mount point of its own
//! for CRIU's root, the external mounts mapped to their sources in this bundle's config, the
//! pipes the init had handed over as CRIU's own stdio; at CRIU's `setup-namespaces` the
//! prestart and createRuntime hooks run, at `post-restore` the state records the restored
//! init. Then, like `run`, hull either leaves it running (`--detach`) or waits for it and
//! deletes it.

use super::checkpoint::{set_config_file, shared_options, CheckpointError, CriuShared};
use super::create::{first_state, rootless_cgroups, Made};
use super::*;
use crate::criu::{self, rpc};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

/// `restore`'s flags.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The container to make, its bundle, `--pid-file`, `--systemd-cgroup`, `--rootless`.
    pub create: CreateOptions,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub detach: bool,
    pub no_subreaper: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    /// `--lsm-profile TYPE:NAME`.
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Criu(#[from] criu::CriuError),
    #[error(transparent)]
    Delete(#[from] DeleteError),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Runtime {
    /// Restores container `opts.create.id` from `opts.image_path`; with `detach` returns 0
    /// once it runs, else waits for it and returns its exit code, as `run` does.
    pub fn restore(&self, opts: &RestoreOptions) -> Result<i32, RestoreError> {
        let co = &opts.create;
        state::validate_id(&co.id)?;
        let bundle = Bundle::load(&co.bundle)?;
        let spec = &bundle.spec;
        let linux = crate::spec::linux(spec);
        let rootfs = crate::rootfs::plan(spec, &bundle.rootfs, &bundle.dir)?;
        let descriptors = read_descriptors(&opts.image_path)?;
        // A terminal comes back as a new pty pair CRIU makes: its master goes where a create
        // sends one (the console socket, or this restore's own relay in the foreground).
        let terminal = spec
            .process()
            .as_ref()
            .is_some_and(|p| p.terminal() == Some(true));
        if terminal && co.console_socket.is_none() && opts.detach {
            return Err(OptionsError::NoConsoleSocket.into());
        }
        if !terminal && co.console_socket.is_some() {
            return Err(OptionsError::ConsoleSocketWithoutTerminal.into());
        }
        criu::check_version()?;
        let images = open_dir(&opts.image_path)?;
        let work = match &opts.work_path {
            Some(p) => {
                // A container restored again and again keeps its work directory.
                match std::fs::DirBuilder::new().mode(0o700).create(p) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(RestoreError::Io {
                            step: "make the work directory",
                            path: p.clone(),
                            source: e,
                        })
                    }
                    _ => {}
                }
                Some(open_dir(p)?)
            }
            None => None,
        };
        let (console, tty_end) = console_for(&co.console_socket, terminal)?;
        let mut cg = Cgroups::resolve(
            linux.cgroups_path().as_deref(),
            &co.id,
            co.systemd_cgroup,
            rootless_cgroups(co),
        )?;
        let pid_file = co
            .pid_file
            .as_deref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
        let mut made = Made {
            entry: Some(self.store.create(&co.id)?),
            st: first_state(co, &bundle),
            pid_file: None,
        };
        made.st.runtime_exe = None;
        let none = oci_spec::runtime::LinuxResources::default();
        let res = linux.resources().as_ref().unwrap_or(&none);
        let active = made.make_cgroups(&mut cg, linux, res, rootless_cgroups(co))?;
        if active && !cg.by_systemd() {
            cg.apply(res, false)?;
        }
        crate::rootfs::make_restore_mount_points(&rootfs).map_err(CreateError::from)?;
        // CRIU's root must be a mount point whose parent is not mounted over.
        let root = made.entry().dir().join("criu-root");
        let root_bind = RootBind::new(&bundle.rootfs, &root)?;

        let mut req = rpc::Criu_opts::new();
        req.set_images_dir_fd(images.as_raw_fd());
        if let Some(w) = &work {
            req.set_work_dir_fd(w.as_raw_fd());
        }
        req.set_evasive_devices(true);
        req.set_log_level(4);
        req.set_log_file("restore.log".into());
        req.set_rst_sibling(true);
        req.set_root(root.display().to_string());
        set_config_file(&mut req, spec);
        shared_options(
            &mut req,
            &CriuShared {
                tcp_established: opts.tcp_established,
                ext_unix_sk: opts.ext_unix_sk,
                shell_job: opts.shell_job,
                file_locks: opts.file_locks,
                lazy_pages: opts.lazy_pages,
                auto_dedup: opts.auto_dedup,
                manage_cgroups_mode: opts.manage_cgroups_mode.as_deref(),
                empty_ns: &opts.empty_ns,
            },
        )?;
        if let Some(p) = &opts.lsm_profile {
            req.set_lsm_profile(p.clone());
        }
        if let Some(c) = &opts.lsm_mount_context {
            req.set_lsm_mount_context(c.clone());
        }
        for (key, val) in external_mounts(&rootfs, linux, &cg) {
            let mut m = rpc::Ext_mount_map::new();
            m.set_key(key);
            m.set_val(val);
            req.ext_mnt.push(m);
        }
        for (n, target) in descriptors.iter().enumerate() {
            if target.contains("pipe:") {
                let mut fd = rpc::Inherit_fd::new();
                fd.set_key(target.clone());
                fd.set_fd(n as i32);
                req.inherit_fd.push(fd);
            }
        }
        // Namespaces the container joins: network and pid handed to CRIU as inherited fds
        // (their keys are what checkpoint named them), the others joined by path.
        let mut ns_files: Vec<OwnedFd> = Vec::new();
        for ns in linux.namespaces().iter().flatten() {
            let Some(path) = ns.path() else { continue };
            let key = match ns.typ() {
                LinuxNamespaceType::Network => Some("extRootNetNS"),
                LinuxNamespaceType::Pid => Some("extRootPidNS"),
                LinuxNamespaceType::Cgroup => {
                    return Err(RestoreError::Io {
                        step: "restore into the joined cgroup namespace",
                        path: path.clone(),
                        source: std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
                    })
                }
                _ => None,
            };
            match key {
                Some(key) => {
                    let file = std::fs::File::open(path).map_err(|source| RestoreError::Io {
                        step: "open namespace",
                        path: path.clone(),
                        source,
                    })?;
                    let mut fd = rpc::Inherit_fd::new();
                    fd.set_key(key.into());
                    fd.set_fd(4 + ns_files.len() as i32);
                    req.inherit_fd.push(fd);
                    ns_files.push(file.into());
                }
                None => {
                    let mut join = rpc::Join_namespace::new();
                    let name = match ns.typ() {
                        LinuxNamespaceType::Mount => "mnt",
                        other => crate::namespaces::kind(other),
                    };
                    join.set_ns(name.into());
                    join.set_ns_file(path.display().to_string());
                    req.join_ns.push(join);
                }
            }
        }
        let sfd = if opts.detach {
            None
        } else {
            if !opts.no_subreaper {
                let _ = nix::sys::prctl::set_child_subreaper(true);
            }
            Some(forwarding_signalfd()?)
        };
        let log = opts
            .work_path
            .as_deref()
            .unwrap_or(&opts.image_path)
            .join("restore.log");
        let swrk = criu::Swrk {
            extra_fds: ns_files.iter().map(|f| f.as_fd()).collect(),
            stdio: Some([
                std::process::Stdio::inherit(),
                std::process::Stdio::inherit(),
                std::process::Stdio::inherit(),
            ]),
            log: Some(log),
        };
        // Whatever CRIU is, it is put where the restored processes belong.
        let mut place = |pid: Pid| -> Result<(), String> {
            if !active {
                return Ok(());
            }
            if cg.by_systemd() {
                // systemd makes the unit's cgroup with CRIU in it, and the limits.
                cg.start_unit(pid.as_raw(), res)
                    .map_err(|e| e.to_string())?;
                return cg.finish_unit(pid.as_raw(), res).map_err(|e| e.to_string());
            }
            cg.join(pid.as_raw()).map_err(|e| e.to_string())
        };
        let mut restored = None;
        let mut sent_master = false;
        let mut notify = |script: &str,
                          n: &rpc::Criu_notify,
                          fd: Option<OwnedFd>|
         -> Result<(), String> {
            match script {
                "setup-namespaces" => {
                    let mut st = made.st.clone();
                    st.pid = n.pid();
                    let hooks = st.config.hooks().clone();
                    #[allow(deprecated)]
                    let prestart = hooks.as_ref().and_then(|h| h.prestart().clone());
                    let create_runtime = hooks.as_ref().and_then(|h| h.create_runtime().clone());
                    run_hooks("prestart", prestart.as_deref(), &st, HookStatus::Created)
                        .and_then(|()| {
                            run_hooks(
                                "createRuntime",
                                create_runtime.as_deref(),
                                &st,
                                HookStatus::Created,
                            )
                        })
                        .map_err(|e| e.to_string())
                }
                "post-restore" => {
                    let pid = n.pid();
                    made.st.pid = pid;
                    made.st.pid_start_time = state::proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
                    made.st.created =
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                    made.st.creating = false;
                    made.st.started = true;
                    restored = Some(Pid::from_raw(pid));
                    made.save().map_err(|e| e.to_string())
                }
                "orphan-pts-master" => {
                    let Some(console) = console.as_ref() else {
                        return Err("the checkpoint has a terminal, the config does not \
                                    (process.terminal is false)"
                            .into());
                    };
                    let Some(master) = fd else {
                        return Err("CRIU sent no pty master with orphan-pts-master".into());
                    };
                    crate::console::send_fd(console.as_fd(), "orphan-pts-master", master.as_fd())
                        .map_err(|e| e.to_string())?;
                    sent_master = true;
                    Ok(())
                }
                _ => Ok(()),
            }
        };
        let restored_by = criu::call(
            rpc::Criu_req_type::RESTORE,
            Some(req),
            swrk,
            &mut |pid| place(pid),
            &mut notify,
        );
        // CRIU is done with its root: unbound before anything could remove the state
        // directory it lies in (and walk into the rootfs through it).
        drop(root_bind);
        drop(ns_files);
        // The relay below reads the master from the other end: EOF if none came.
        drop(console);
        restored_by?;
        if terminal && !sent_master {
            // The receiver would wait for a master that never comes.
            return Err(RestoreError::Criu(criu::CriuError::Rpc(
                "the checkpoint has no terminal, the config does (process.terminal is true)".into(),
            )));
        }
        made.st.cgroups = Some(cg.clone());
        let Some(init) = restored else {
            return Err(RestoreError::Criu(criu::CriuError::Rpc(
                "CRIU restored no process (no post-restore notification)".into(),
            )));
        };
        made.st.process_ns = std::fs::read_link(format!("/proc/{init}/ns/pid"))
            .ok()
            .map(|p| p.display().to_string());
        joins_criu_time_namespace(&mut made.st.config, init);
        made.save()?;
        if let Some(path) = &pid_file {
            made.write_pid_file(path)?;
        }
        let _ = made.finish();
        let Some(sfd) = sfd else {
            return Ok(0);
        };
        let code = match wait_foreground(init, &sfd, tty_end) {
            Ok(code) => code,
            Err(e) => {
                let _ = self.delete(&co.id, true);
                return Err(e.into());
            }
        };
        self.delete(&co.id, true)?;
        Ok(code)
    }
}

/// CRIU (3.14 and later) restores the processes into a time namespace of its own, which
/// keeps their clocks going on from the dump: the state's config gets one, so that `exec`
/// joins it too, as runc does (a process exec'd outside it could not be dumped with them:
/// CRIU cannot restore a task in another time namespace than its parent's).
fn joins_criu_time_namespace(config: &mut oci_spec::runtime::Spec, init: Pid) {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/time")).ok();
    let theirs = ns(&init.to_string());
    if theirs.is_none() || theirs == ns("self") {
        return;
    }
    let Some(linux) = config.linux_mut() else {
        return;
    };
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    if namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Time)
    {
        return;
    }
    let mut time = oci_spec::runtime::LinuxNamespace::default();
    time.set_typ(LinuxNamespaceType::Time);
    namespaces.push(time);
    linux.set_namespaces(Some(namespaces));
}

/// The rootfs bound (recursively) at `at` for as long as CRIU needs it as its root.
struct RootBind {
    at: PathBuf,
}

impl RootBind {
    fn new(rootfs: &Path, at: &Path) -> Result<RootBind, RestoreError> {
        let io = |step: &'static str| {
            move |source: std::io::Error| RestoreError::Io {
                step,
                path: at.to_path_buf(),
                source,
            }
        };
        std::fs::create_dir(at).map_err(io("make CRIU's root"))?;
        let bind = RootBind {
            at: at.to_path_buf(),
        };
        nix::mount::mount(
            Some(rootfs),
            at,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| io("bind the rootfs at")(e.into()))?;
        Ok(bind)
    }
}

impl Drop for RootBind {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.at, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.at);
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd, RestoreError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| RestoreError::Io {
            step: "open",
            path: path.to_path_buf(),
            source,
        })
}

/// What the checkpointed init's stdin, stdout and stderr were (`descriptors.json`).
fn read_descriptors(images: &Path) -> Result<Vec<String>, RestoreError> {
    let path = images.join("descriptors.json");
    let text = std::fs::read(&path).map_err(|source| RestoreError::Io {
        step: "read the checkpoint's",
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| RestoreError::Io {
        step: "parse the checkpoint's",
        path,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// The external mounts CRIU asks for by the container path a checkpoint named them with,
/// and what they are now: this config's bind sources, /dev/null for masked files, the host's
/// device nodes for the container's.
fn external_mounts(
    rootfs: &crate::rootfs::Plan,
    linux: &oci_spec::runtime::Linux,
    cg: &Cgroups,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // cgroup2 without a cgroup namespace: the container's own cgroup directory, bound.
    if let Some(dir) = cg.unified.as_deref().filter(|_| cg.unified_only) {
        for m in &rootfs.mounts {
            if matches!(
                m.kind,
                crate::rootfs::plan::MountKind::Cgroup | crate::rootfs::plan::MountKind::Cgroup2
            ) {
                out.push((m.dest.display().to_string(), dir.display().to_string()));
            }
        }
    }
    for m in &rootfs.mounts {
        if let crate::rootfs::plan::MountKind::Bind { source } = &m.kind {
            // Named as the checkpoint named it: where symlinks in the rootfs take it.
            let dest = crate::rootfs::resolved_destination(&rootfs.rootfs, &m.dest);
            // Without its `.` components (`<bundle>/.`, `<bundle>/./vol`): CRIU cannot
            // take a path that ends in one.
            let source: PathBuf = source.components().collect();
            out.push((dest.display().to_string(), source.display().to_string()));
        }
    }
    for p in linux.masked_paths().iter().flatten() {
        out.push((p.clone(), "/dev/null".into()));
    }
    // The host's /dev/null a checkpoint named for the masked files (as runc does).
    if linux.masked_paths().as_ref().is_some_and(|m| !m.is_empty()) {
        out.push(("/dev/null".into(), "/dev/null".into()));
    }
    for d in rootfs.devices.iter().flatten() {
        let path = d.path.display().to_string();
        out.push((path.clone(), path));
    }
    out
}
