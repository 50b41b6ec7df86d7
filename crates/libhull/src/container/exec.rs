//! `exec`: a new process in a running container's namespaces, cgroups and LSM context.

use super::*;

impl Runtime {
    /// Runs a process in a running container: in all its namespaces and cgroups, with its
    /// process attributes unless overridden. Detached it returns once the process has exec'd
    /// (0); else it waits and returns the exit code (128+N for a death by signal N).
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32, ExecError> {
        check_preserved_fds(0, opts.preserve_fds)?;
        let st = self.store.read(&opts.id)?;
        match st.status() {
            Status::Stopped | Status::Creating => return Err(ExecError::Stopped),
            Status::Paused if !opts.ignore_paused => return Err(ExecError::Paused),
            _ => {}
        }
        let process = exec_process(&st.config, opts)?;
        let terminal = process.terminal() == Some(true);
        if terminal && opts.console_socket.is_none() && opts.detach {
            return Err(OptionsError::NoConsoleSocket.into());
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(OptionsError::ConsoleSocketWithoutTerminal.into());
        }
        let linux = crate::spec::linux(&st.config);
        // The process comes from `-p` or the flags, not config.json: its field is named alone.
        let scheduling = Scheduling::plan(&process, linux).map_err(|e| match e {
            crate::spec::SpecError::Invalid { field, reason } => {
                ExecError::Invalid(format!("{field}: {reason}"))
            }
            e => e.into(),
        })?;
        let filter = self.seccomp_filter(linux)?;
        let plan = Plan::of_running(st.pid, linux)?;
        // The namespaces are open now: if the init is still the one recorded (pid and start
        // time), they are the container's and not those of a process that reused its pid.
        if !st.has_init() {
            return Err(ExecError::Stopped);
        }
        let bundle = Bundle {
            dir: st.bundle.clone(),
            rootfs: st.rootfs.clone(),
            spec: st.config.clone(),
        };
        let (console, tty_end) = console_for(&opts.console_socket, terminal)?;
        let cg = exec_cgroups(&st, opts)?;
        let cgroup_fd = match &cg {
            Some(c) => c.open_unified().ok().flatten(),
            None => None,
        };
        if !opts.detach {
            // The process may be a grandchild (the pid namespace is entered by a fork).
            let _ = nix::sys::prctl::set_child_subreaper(true);
        }
        let sfd = if opts.detach {
            None
        } else {
            Some(forwarding_signalfd()?)
        };
        let pidfd_socket = connect_pidfd_socket(&opts.pidfd_socket)?;
        // The clone child moves itself into the v1 cgroups (see `Cgroups::self_join_files`);
        // the runtime does the rest, or all of it when the child could not.
        let cgroup_tasks = match &cg {
            Some(c) if process::moves_itself(&plan) => c.self_join_files(),
            _ => Vec::new(),
        };
        let process_joins_v1 = !cgroup_tasks.is_empty();
        // As runc: what create decided, whatever `--rootless` says now.
        let rootless = st.rootless_cgroups.unwrap_or_else(hull_cgroups::rootless);
        let place = |p: Pid, all: bool| -> Result<(), StepError> {
            let Some(c) = cg.as_ref() else {
                return Ok(());
            };
            let placed = if all {
                c.join_or_attach(p.as_raw())
            } else {
                c.join_rest(p.as_raw())
            };
            match placed {
                // A rootless caller outside the subtree delegated to it (a login session
                // beside the user's systemd instance) may not move a process in: runc
                // runs the process where the caller is, and so do we, but say so.
                Err(e) if e.is_permission() && rootless => {
                    tracing::warn!("the process runs outside the container's cgroup: {e}");
                    Ok(())
                }
                r => r.map_err(StepError::from),
            }
        };
        let mut pid = None;
        let mut pidfd = None;
        let want_pidfd = pidfd_socket.is_some();
        // The pidfd is opened while the process waits for its first message: it cannot be
        // gone (and its pid reused) yet.
        let mut events = |ev: SpawnEvent| match ev {
            SpawnEvent::Cloned(p) => {
                pid = Some(p);
                if want_pidfd {
                    pidfd = hull_sys::process::pidfd_open(p).ok();
                }
                place(p, !process_joins_v1)
            }
            SpawnEvent::JoinCgroups(p) => place(p, true),
            SpawnEvent::InitPid(p) => {
                pid = Some(p);
                if want_pidfd {
                    pidfd = hull_sys::process::pidfd_open(p).ok();
                }
                Ok(())
            }
            SpawnEvent::RuntimeHooks(_) => Ok(()),
            SpawnEvent::SeccompListener(p, fd) => {
                send_seccomp_listener(filter.as_ref(), &st, p, fd).map_err(StepError::from)
            }
            SpawnEvent::IdmapMount(index, _) => {
                Err(format!("mounts[{index}]: an exec makes no mounts").into())
            }
        };
        process::spawn(
            SpawnOptions {
                init: InitArgs {
                    id: &opts.id,
                    bundle: &bundle,
                    plan: &plan,
                    gate: None,
                    console,
                    console_relayed: tty_end.is_some() && relay_output_is_captured(),
                    no_pivot: false,
                    no_new_keyring: true,
                    preserve_fds: opts.preserve_fds,
                    listen_fds: 0,
                    work: Work::Exec(&process),
                    scheduling: &scheduling,
                    seccomp: filter.as_ref(),
                    cgroup_tasks: &cgroup_tasks,
                },
                lock: -1,
                cgroup: cgroup_fd.as_ref().map(|fd| fd.as_fd()),
            },
            &mut events,
        )?;
        let pid = pid.expect("spawn reports the process");
        let result = after_exec(opts, pid, pidfd_socket, pidfd.as_ref(), sfd, tty_end);
        if result.is_err() {
            // The caller is told the exec failed: the process must not run on unseen.
            let _ = kill(pid, Signal::SIGKILL);
        }
        result
    }

    /// The container's seccomp filter, compiled (or taken from the cache under the root).
    pub(super) fn seccomp_filter(
        &self,
        linux: &oci_spec::runtime::Linux,
    ) -> Result<Option<crate::seccomp::Filter>, crate::seccomp::SeccompError> {
        let Some(profile) = linux.seccomp() else {
            return Ok(None);
        };
        // Not a valid container id, so never mistaken for a container.
        let cache = self.store.root().join("~seccomp-cache");
        Ok(Some(crate::seccomp::compile(profile, Some(&cache))?))
    }
}

/// The process `exec` runs: `-p`'s, or the container's with the flags laid over it.
pub(super) fn exec_process(
    config: &oci_spec::runtime::Spec,
    opts: &ExecOptions,
) -> Result<oci_spec::runtime::Process, ExecError> {
    let p = exec_process_unchecked(config, opts)?;
    crate::lsm::check(
        p.apparmor_profile().as_deref(),
        p.selinux_label().as_deref(),
        None,
    )?;
    Ok(p)
}

pub(super) fn exec_process_unchecked(
    config: &oci_spec::runtime::Spec,
    opts: &ExecOptions,
) -> Result<oci_spec::runtime::Process, ExecError> {
    if let Some(p) = &opts.process {
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(ExecError::Invalid("args must not be empty".into()));
        }
        if !p.cwd().is_absolute() {
            return Err(ExecError::Invalid("Cwd must be an absolute path".into()));
        }
        let mut p = p.clone();
        // As runc: a process file without capabilities gets the container's, never the
        // runtime's full set.
        if p.capabilities().is_none() {
            p.set_capabilities(
                config
                    .process()
                    .as_ref()
                    .and_then(|c| c.capabilities().clone()),
            );
        }
        return Ok(p);
    }
    if opts.args.is_empty() {
        return Err(ExecError::NoArgs);
    }
    let mut p = config.process().clone().unwrap_or_default();
    p.set_args(Some(opts.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    for var in &opts.env {
        // The last value of a name wins, as in runc.
        let name = var.split_once('=').map_or(var.as_str(), |(n, _)| n);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != name);
        env.push(var.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.clone());
    }
    p.set_terminal(Some(opts.tty));
    if let Some(a) = &opts.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &opts.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(nnp) = opts.no_new_privs {
        p.set_no_new_privileges(Some(nnp));
    }
    let mut user = p.user().clone();
    if let Some((uid, gid)) = opts.user {
        user.set_uid(uid);
        if let Some(gid) = gid {
            user.set_gid(gid);
        }
    }
    if !opts.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&opts.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    if !opts.caps.is_empty() {
        // runc adds to the ambient set too when the process has an inheritable set at all.
        let had_inheritable = p
            .capabilities()
            .as_ref()
            .is_some_and(|c| c.inheritable().is_some());
        // No capabilities field: as runc, the sets are only what --cap adds; never oci-spec's
        // default, which fills inheritable and ambient (CVE-2022-29162).
        let mut caps = p.capabilities().clone().unwrap_or_else(|| {
            let none = oci_spec::runtime::Capabilities::new();
            let mut c = oci_spec::runtime::LinuxCapabilities::default();
            c.set_bounding(Some(none.clone()));
            c.set_effective(Some(none.clone()));
            c.set_permitted(Some(none.clone()));
            c.set_inheritable(Some(none.clone()));
            c.set_ambient(Some(none));
            c
        });
        let mut bounding = caps.bounding().clone().unwrap_or_default();
        let mut effective = caps.effective().clone().unwrap_or_default();
        let mut permitted = caps.permitted().clone().unwrap_or_default();
        let mut ambient = caps.ambient().clone().unwrap_or_default();
        for name in &opts.caps {
            // `CAP_NET_ADMIN` as in a config, or `NET_ADMIN`.
            let bare = name.strip_prefix("CAP_").unwrap_or(name);
            let cap: oci_spec::runtime::Capability = bare
                .parse()
                .map_err(|_| ExecError::UnknownCapability(name.clone()))?;
            bounding.insert(cap);
            effective.insert(cap);
            permitted.insert(cap);
            if had_inheritable {
                ambient.insert(cap);
            }
        }
        if had_inheritable {
            caps.set_ambient(Some(ambient));
        }
        caps.set_bounding(Some(bounding));
        caps.set_effective(Some(effective));
        caps.set_permitted(Some(permitted));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// The cgroups an exec'd process joins: the container's as far as they exist (none for a
/// rootless container), or `--cgroup`'s sub-cgroups of them.
fn exec_cgroups(st: &ContainerState, opts: &ExecOptions) -> Result<Option<Cgroups>, ExecError> {
    let cg = st
        .cgroups
        .clone()
        .filter(|c| c.dirs().next().is_some_and(Path::exists));
    match (cg, opts.cgroups.is_empty()) {
        (cg, true) => Ok(cg),
        (Some(c), false) => Ok(Some(c.sub(&opts.cgroups)?)),
        (None, false) => Err(ExecError::NoCgroups(opts.id.clone())),
    }
}

/// After the process exec'd: the pidfd and the pid file; in the foreground, the wait.
fn after_exec(
    opts: &ExecOptions,
    pid: Pid,
    pidfd_socket: Option<UnixStream>,
    pidfd: Option<&OwnedFd>,
    sfd: Option<SignalFd>,
    tty_end: Option<UnixStream>,
) -> Result<i32, ExecError> {
    send_pidfd(pidfd_socket, &opts.pidfd_socket, pidfd, "setns")?;
    if let Some(path) = &opts.pid_file {
        state::write_atomic(path, pid.to_string().as_bytes(), 0o644).map_err(|source| {
            OptionsError::PidFile {
                path: path.clone(),
                source,
            }
        })?;
    }
    let Some(sfd) = sfd else {
        return Ok(0);
    };
    match tty_end {
        Some(sock) => Ok(wait_tty(pid, &sfd, &sock)?),
        None => Ok(wait_forwarding(pid, &sfd)),
    }
}
