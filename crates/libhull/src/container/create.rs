//! `create`: check the bundle and the options, make the state entry and the cgroups, clone
//! the init and drive its setup until it waits for `start`; undo everything on failure.

use super::*;

impl Runtime {
    /// Creates the container; returns once its init has done all setup and waits for `start`.
    pub fn create(&self, opts: &CreateOptions) -> Result<(), CreateError> {
        self.create_container(opts, false).map(drop)
    }

    /// `own_tty`: a foreground `run` whose process wants a terminal and has no console
    /// socket: hull takes the pty master itself, over the returned socket. Returns the
    /// container's entry still locked.
    pub(super) fn create_container(
        &self,
        opts: &CreateOptions,
        own_tty: bool,
    ) -> Result<(state::Entry, ContainerState, Option<UnixStream>), CreateError> {
        let mut checked = self.check(opts, own_tty)?;
        let tty_end = checked.tty_end.take();
        let made = Made {
            entry: Some(self.store.create(&opts.id)?),
            st: first_state(opts, &checked.bundle),
            pid_file: None,
        };
        crate::timing::mark("state entry made");
        made.carry_out(opts, checked, tty_end.is_some())
            .map(|(entry, st)| (entry, st, tty_end))
    }

    /// Everything a create can check or open before it makes anything: a failure here
    /// leaves nothing behind.
    fn check(&self, opts: &CreateOptions, own_tty: bool) -> Result<Checked, CreateError> {
        state::validate_id(&opts.id)?;
        check_preserved_fds(opts.listen_fds, opts.preserve_fds)?;
        let mut bundle = Bundle::load(&opts.bundle)?;
        crate::timing::mark("config loaded");
        if opts.notify_socket.is_some() {
            crate::notify::setup_spec(&mut bundle.spec, &self.store.dir(&opts.id))?;
        }
        let spec = &bundle.spec;
        let linux = crate::spec::linux(spec);
        // The config's own checks first, before any socket is connected.
        let rootfs = crate::rootfs::plan(spec, &bundle.rootfs, &bundle.dir)?;
        let sysctls = crate::process::attrs::plan_sysctls(linux.sysctl().as_ref())?;
        let scheduling = match spec.process() {
            Some(p) => Scheduling::plan(p, linux)?,
            None => Scheduling::default(),
        };
        // As runc: a mount label without SELinux is ignored, a process label is an error.
        if let Some(p) = spec.process() {
            crate::lsm::check(
                p.apparmor_profile().as_deref(),
                p.selinux_label().as_deref(),
                None,
            )?;
        }
        let terminal = spec
            .process()
            .as_ref()
            .is_some_and(|p| p.terminal() == Some(true));
        if terminal && opts.console_socket.is_none() && !own_tty {
            return Err(OptionsError::NoConsoleSocket.into());
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(OptionsError::ConsoleSocketWithoutTerminal.into());
        }
        let pid_file = opts
            .pid_file
            .as_deref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
        let (console, tty_end) = console_for(&opts.console_socket, terminal)?;
        let pidfd_socket = connect_pidfd_socket(&opts.pidfd_socket)?;
        let filter = self.seccomp_filter(linux)?;
        let plan = Plan::open(linux)?;
        if plan.new_user() {
            crate::namespaces::check_delegated(linux)?;
        }
        // Opened here, with the runtime's rights: the root of a new user namespace may not
        // reach a source the caller can (runc does the same). The clone inherits them.
        let bind_sources = if plan.new_user() {
            crate::rootfs::open_bind_sources(&rootfs)
        } else {
            Vec::new()
        };
        let joined_user = plan
            .join
            .iter()
            .find(|j| j.typ == oci_spec::runtime::LinuxNamespaceType::User)
            .map(|j| j.fd.as_fd());
        let idmap_namespaces = crate::rootfs::idmap_namespaces(&rootfs, joined_user)?;
        let mut cgroups = Cgroups::resolve(
            linux.cgroups_path().as_deref(),
            &opts.id,
            opts.systemd_cgroup,
            rootless_cgroups(opts),
        )?;
        cgroups.set_unit_annotations(spec.annotations().as_ref())?;
        crate::timing::mark("config checked and planned");
        Ok(Checked {
            bundle,
            pid_file,
            console,
            tty_end,
            pidfd_socket,
            filter,
            plan,
            rootfs,
            scheduling,
            sysctls,
            bind_sources,
            idmap_namespaces,
            cgroups,
        })
    }
}

/// What [`Runtime::check`] found and opened.
struct Checked {
    bundle: Bundle,
    /// `--pid-file`, made absolute.
    pid_file: Option<PathBuf>,
    /// What the init gets as its console: the console socket, or the runtime's own pty
    /// socket for a foreground `run`.
    console: Option<OwnedFd>,
    /// The runtime's end of that own pty socket.
    tty_end: Option<UnixStream>,
    pidfd_socket: Option<UnixStream>,
    filter: Option<crate::seccomp::Filter>,
    plan: Plan,
    rootfs: crate::rootfs::Plan,
    scheduling: Scheduling,
    sysctls: Vec<crate::process::attrs::Sysctl>,
    /// `mounts[]`'s bind sources the runtime opened ([`crate::rootfs::open_bind_sources`]).
    bind_sources: Vec<Option<OwnedFd>>,
    /// The user namespace of each idmapped mount ([`crate::rootfs::idmap_namespaces`]).
    idmap_namespaces: Vec<Option<OwnedFd>>,
    cgroups: Cgroups,
}

/// Who puts a new container's init into its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Nobody: a rootless container without cgroups of its own.
    None,
    /// The runtime (or systemd, asked by it).
    Runtime,
    /// The init moves itself into the v1 cgroups (`Cgroups::self_join_files`), the runtime
    /// does the cgroup2 one if it was not born there.
    InitJoinsV1,
}

/// The state of a container whose init does not exist yet.
/// `--rootless`, resolved: what the caller said, else whether it is not the host's root.
pub(super) fn rootless_cgroups(opts: &CreateOptions) -> bool {
    opts.rootless_cgroups.unwrap_or_else(cgroups::rootless)
}

pub(super) fn first_state(opts: &CreateOptions, bundle: &Bundle) -> ContainerState {
    ContainerState {
        id: opts.id.clone(),
        rootless_cgroups: Some(rootless_cgroups(opts)),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        creating: true,
        runtime_exe: state::exe_id("/proc/self/exe"),
        notify_socket: opts.notify_socket.clone(),
        config: bundle.spec.clone(),
        ..ContainerState::default()
    }
}

/// What a create has made so far: the locked state entry, the state it records (the
/// cgroups, the init), the pid file. Dropped before [`Made::finish`], it undoes all of it,
/// last made first: the pid file, the container's processes, its cgroups and host mounts,
/// the entry.
pub(super) struct Made {
    /// `None` once finished (the lock goes with it).
    pub(super) entry: Option<state::Entry>,
    pub(super) st: ContainerState,
    /// Written by this create.
    pub(super) pid_file: Option<PathBuf>,
}

impl Made {
    pub(super) fn entry(&self) -> &state::Entry {
        self.entry.as_ref().expect("taken only by finish")
    }

    pub(super) fn save(&self) -> Result<(), StateError> {
        self.entry().save(&self.st)
    }

    /// Writes the init's pid to `path` (`--pid-file`), to be removed again if this create
    /// (or restore) is undone.
    pub(super) fn write_pid_file(&mut self, path: &Path) -> Result<(), OptionsError> {
        state::write_atomic(path, self.st.pid.to_string().as_bytes(), 0o644).map_err(|source| {
            OptionsError::PidFile {
                path: path.to_path_buf(),
                source,
            }
        })?;
        self.pid_file = Some(path.to_path_buf());
        Ok(())
    }

    /// Makes the container: the start gate, the cgroups, the init, the pid file. On an
    /// error, undoes what was made and returns the error (as runc words it when the OOM
    /// killer is the likely cause).
    fn carry_out(
        mut self,
        opts: &CreateOptions,
        checked: Checked,
        own_tty: bool,
    ) -> Result<(state::Entry, ContainerState), CreateError> {
        match self.steps(opts, checked, own_tty) {
            Ok(()) => Ok(self.finish()),
            Err(e) => {
                // Read before the undo, which removes the cgroups.
                let oom =
                    own_cgroups(&self.st).is_some_and(|c| cgroups::events::oom_kill_count(c) > 0);
                drop(self);
                if oom {
                    tracing::debug!("create failed: {e}");
                    return Err(CreateError::InitOomKilled);
                }
                Err(e)
            }
        }
    }

    /// Nothing left to undo: the state entry (still locked, for a `run` to start it without
    /// reading back what it just wrote) and the state.
    pub(super) fn finish(mut self) -> (state::Entry, ContainerState) {
        let entry = self.entry.take().expect("finished once");
        (entry, std::mem::take(&mut self.st))
    }

    /// Makes the container's cgroups, recorded in the state before and after; false when a
    /// rootless caller runs without cgroups of its own.
    pub(super) fn make_cgroups(
        &mut self,
        cg: &mut Cgroups,
        linux: &oci_spec::runtime::Linux,
        res: &oci_spec::runtime::LinuxResources,
        rootless: bool,
    ) -> Result<bool, CreateError> {
        // The cgroups hull is about to make go into state.json before the first mkdir (the
        // init does not exist yet: pid 0), so `delete --force` after a runtime killed from
        // here on finds and removes them.
        cg.plan()?;
        self.st.cgroups = Some(cg.clone());
        self.save()?;
        cg.check_ownership(true)?;
        cg.check_empty()?;
        let made = cg.make(res);
        // What was really made (nothing that appeared meanwhile is hull's): a `delete --force`
        // after a runtime killed from here on removes those, and only those, with the retries
        // a cgroup whose last process is still exiting needs.
        self.st.cgroups = Some(cg.clone());
        self.save()?;
        // A rootless caller, not allowed to make cgroups, runs a container that names no
        // cgroup and asks for no limit in its own cgroups, as runc does.
        Ok(match made {
            Err(e)
                if e.is_permission()
                    && rootless
                    && linux
                        .cgroups_path()
                        .as_ref()
                        .is_none_or(|p| p.as_os_str().is_empty())
                    && !cgroups::has_limits(res) =>
            {
                tracing::warn!("running without cgroups of its own: {e}");
                if let Err(e) = cg.remove() {
                    tracing::warn!("{e}");
                }
                self.st.cgroups = None;
                self.save()?;
                false
            }
            other => other.map(|()| true)?,
        })
    }

    /// What the runtime does as the init's setup reaches each point (see [`SpawnEvent`]):
    /// record the init, put it in its cgroups (or systemd's unit), run the createRuntime
    /// hooks, pass a seccomp listener on. `pidfd` is filled when a pidfd socket wants one.
    fn on_spawn_event(
        &mut self,
        ev: SpawnEvent,
        cg: &mut Cgroups,
        res: &oci_spec::runtime::LinuxResources,
        placement: Placement,
        pidfd: Option<&mut Option<OwnedFd>>,
        filter: Option<&crate::seccomp::Filter>,
    ) -> Result<(), StepError> {
        match ev {
            SpawnEvent::Cloned(pid) | SpawnEvent::InitPid(pid) => {
                self.st.pid = pid.as_raw();
                self.st.pid_start_time = state::proc_stat(self.st.pid).map(|(_, t)| t).unwrap_or(0);
                if let Some(pidfd) = pidfd {
                    *pidfd = hull_sys::process::pidfd_open(pid).ok();
                }
                self.save().map_err(StepError::from)?;
                if matches!(ev, SpawnEvent::InitPid(_)) || placement == Placement::None {
                    return Ok(());
                }
                // Born in the cgroup2 one already (CLONE_INTO_CGROUP); writing it again
                // is harmless and covers a kernel that refused that.
                if cg.by_systemd() {
                    // Saved as soon as systemd has the unit, before hull makes any
                    // cgroup of it: a runtime killed from here on leaves it findable.
                    let started = cg.start_unit(pid.as_raw(), res);
                    self.st.cgroups = Some(cg.clone());
                    self.save().map_err(StepError::from)?;
                    started.map_err(StepError::from)?;
                    return cg.finish_unit(pid.as_raw(), res).map_err(StepError::from);
                }
                let joined = if placement == Placement::InitJoinsV1 {
                    cg.join_rest(pid.as_raw())
                } else {
                    cg.join(pid.as_raw())
                };
                crate::timing::mark("init joined its cgroups");
                joined.map_err(StepError::from)
            }
            SpawnEvent::JoinCgroups(pid) => cg.join(pid.as_raw()).map_err(StepError::from),
            SpawnEvent::RuntimeHooks(_) => {
                let list = self
                    .st
                    .config
                    .hooks()
                    .as_ref()
                    .and_then(|h| h.create_runtime().as_deref());
                run_hooks("createRuntime", list, &self.st, HookStatus::Creating)
                    .map_err(StepError::from)
            }
            SpawnEvent::SeccompListener(pid, fd) => {
                send_seccomp_listener(filter, &self.st, pid, fd).map_err(StepError::from)
            }
            // Answered by `steps`, which holds the namespaces.
            SpawnEvent::IdmapMount(index, _) => {
                Err(format!("mounts[{index}]: idmapping asked for out of turn").into())
            }
        }
    }

    fn steps(
        &mut self,
        opts: &CreateOptions,
        checked: Checked,
        own_tty: bool,
    ) -> Result<(), CreateError> {
        let Checked {
            bundle,
            pid_file,
            console,
            tty_end: _,
            pidfd_socket,
            filter,
            plan,
            rootfs,
            scheduling,
            sysctls,
            bind_sources,
            idmap_namespaces,
            cgroups: mut cg,
        } = checked;
        let spec = &bundle.spec;
        let linux = crate::spec::linux(spec);
        let gate_fd = gate::bind_gate(self.entry().dir_fd())?;
        if opts.notify_socket.is_some() {
            crate::notify::make_dir(self.entry().dir())?;
        }
        // Even without `linux.resources` the device rules apply: deny all but hull's
        // defaults.
        let none = oci_spec::runtime::LinuxResources::default();
        let res = linux.resources().as_ref().unwrap_or(&none);
        let active = self.make_cgroups(&mut cg, linux, res, rootless_cgroups(opts))?;
        crate::timing::mark("cgroups made");
        // With systemd the cgroup comes with the unit, once the init exists.
        let cgroup_fd = if active && !cg.by_systemd() {
            cg.check_not_frozen()?;
            cg.apply(res, false)?;
            cg.open_unified()?
        } else {
            None
        };
        // The clone child moves itself into its v1 cgroups (see `Cgroups::self_join_files`).
        let cgroup_tasks = if active && process::moves_itself(&plan) {
            cg.self_join_files()
        } else {
            Vec::new()
        };
        let placement = match (active, cgroup_tasks.is_empty()) {
            (false, _) => Placement::None,
            (true, true) => Placement::Runtime,
            (true, false) => Placement::InitJoinsV1,
        };
        crate::timing::mark("limits written");
        let mut pidfd = None;
        let want_pidfd = pidfd_socket.is_some();
        let lock = self.entry().dir_fd().as_raw_fd();
        let mut idmapped = std::collections::HashSet::new();
        let mut events = |ev: SpawnEvent| {
            let pidfd = want_pidfd.then_some(&mut pidfd);
            if let SpawnEvent::IdmapMount(index, tree) = &ev {
                // Each idmapped mount once: the init gets no second idmapping from the host's
                // root for a tree of its choosing.
                if !idmapped.insert(*index) {
                    return Err(format!("mounts[{index}]: idmapping asked for twice").into());
                }
                return crate::rootfs::set_idmap(&rootfs, &idmap_namespaces, *index, tree.as_fd())
                    .map_err(StepError::from);
            }
            self.on_spawn_event(ev, &mut cg, res, placement, pidfd, filter.as_ref())
        };
        let pid = process::spawn(
            SpawnOptions {
                init: InitArgs {
                    id: &opts.id,
                    bundle: &bundle,
                    plan: &plan,
                    gate: Some(&gate_fd),
                    console,
                    console_relayed: own_tty && relay_output_is_captured(),
                    no_pivot: opts.no_pivot,
                    no_new_keyring: opts.no_new_keyring,
                    preserve_fds: opts.preserve_fds,
                    listen_fds: opts.listen_fds,
                    work: Work::Create {
                        rootfs: &rootfs,
                        bind_sources: &bind_sources,
                        sysctls: &sysctls,
                    },
                    scheduling: &scheduling,
                    seccomp: filter.as_ref(),
                    cgroup_tasks: &cgroup_tasks,
                },
                lock,
                cgroup: cgroup_fd.as_ref().map(|fd| fd.as_fd()),
            },
            &mut events,
        )?;
        self.st.creating = false;
        self.st.process_ns = process_ns(&plan, pid);
        self.save()?;
        crate::timing::mark("created");
        if let Some(path) = &pid_file {
            self.write_pid_file(path)?;
        }
        send_pidfd(pidfd_socket, &opts.pidfd_socket, pidfd.as_ref(), "standard")?;
        Ok(())
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        // A pid file must not name an init that is about to be gone.
        if let Some(path) = &self.pid_file {
            let _ = std::fs::remove_file(path);
        }
        // No init yet (refused before the clone): nothing to kill, and no cgroup to thaw
        // that hull did not freeze (an existing one someone froze stays so).
        if self.st.pid > 0 {
            kill_everything(&self.st);
        }
        if let Err(e) = release_resources(&self.st) {
            tracing::warn!("{e}");
        }
        let _ = entry.remove();
    }
}

/// Connects to a `--pidfd-socket` before anything is made, so a wrong path fails early.
pub(super) fn connect_pidfd_socket(
    path: &Option<PathBuf>,
) -> Result<Option<UnixStream>, OptionsError> {
    path.as_ref()
        .map(|p| {
            UnixStream::connect(p).map_err(|source| OptionsError::PidfdSocket {
                path: p.clone(),
                source,
            })
        })
        .transpose()
}

/// Sends a pidfd of `pid` over the `--pidfd-socket`, named as runc names it (`standard` for a
/// container's init, `setns` for an exec'd process).
pub(super) fn send_pidfd(
    socket: Option<UnixStream>,
    path: &Option<PathBuf>,
    pidfd: Option<&OwnedFd>,
    name: &str,
) -> Result<(), OptionsError> {
    let (Some(socket), Some(path)) = (socket, path) else {
        return Ok(());
    };
    let err = |source: std::io::Error| OptionsError::PidfdSocket {
        path: path.clone(),
        source,
    };
    let pidfd = pidfd.ok_or_else(|| err(std::io::Error::from_raw_os_error(libc::ESRCH)))?;
    crate::console::send_fd(socket.as_fd(), name, pidfd.as_fd())
        .map_err(|e| err(std::io::Error::other(e.to_string())))
}

/// `--preserve-fds N`: the N descriptors after stdio and the `LISTEN_FDS` ones must be
/// open, as runc checks (a count near u32::MAX must not wrap into the container's stdio).
pub(super) fn check_preserved_fds(listen_fds: u32, count: u32) -> Result<(), OptionsError> {
    for index in 0..count {
        let fd = 3u64 + u64::from(listen_fds) + u64::from(index);
        let open = i32::try_from(fd)
            .is_ok_and(|fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok());
        if !open {
            return Err(OptionsError::PreservedFd {
                index,
                count,
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
    }
    Ok(())
}

/// The namespace kind whose members are the container's processes, and its id: the own pid
/// namespace, else the own mount namespace (until cgroups track them). None: only the init.
pub(super) fn process_ns(plan: &Plan, init: Pid) -> Option<String> {
    let kind = if plan.new.contains(nix::sched::CloneFlags::CLONE_NEWPID) {
        "pid"
    } else if plan.new.contains(nix::sched::CloneFlags::CLONE_NEWNS) {
        "mnt"
    } else {
        return None;
    };
    std::fs::read_link(format!("/proc/{init}/ns/{kind}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Hands a seccomp notify listener to the agent at `linux.seccomp.listenerPath`, with the
/// container's state as the runtime-spec describes. A filter without notify rules never
/// makes a listener; should one come, it is closed.
pub(super) fn send_seccomp_listener(
    filter: Option<&crate::seccomp::Filter>,
    st: &ContainerState,
    pid: Pid,
    fd: OwnedFd,
) -> Result<(), crate::seccomp::SeccompError> {
    let Some(agent) = filter.and_then(|f| f.agent()) else {
        return Ok(());
    };
    let mut state = st.oci(st.status());
    state.pid = pid.as_raw();
    crate::seccomp::send_listener(
        &agent.path,
        fd.as_fd(),
        pid.as_raw(),
        agent.metadata.as_deref(),
        &state,
    )
}
