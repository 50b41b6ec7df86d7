//! One function per subcommand: its flags become library options, one library call is made,
//! and what runc prints on stdout is printed. Errors are returned worded as runc words them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use libhull::state::OciState;
use libhull::{CreateOptions, RunOptions, Runtime};

use hull::cli::{Command, CreateArgs, EventsArgs, KillArgs, ListArgs, PsArgs, RunArgs, SpecArgs};

/// The global flags that choose how cgroups are handled.
#[derive(Debug, Clone, Copy, Default)]
pub struct CgroupFlags {
    /// `--systemd-cgroup`.
    pub systemd: bool,
    /// `--rootless`: `None` for auto.
    pub rootless: Option<bool>,
}

/// Runs `command` against the containers under `root`; returns the exit code.
pub fn dispatch(command: Command, root: &Path, cgroups: CgroupFlags) -> Result<i32> {
    let rt = Runtime::new(root);
    match command {
        Command::Create(args) => {
            let opts = create_options(args, cgroups)?;
            rt.create(&opts)
                .map_err(|e| anyhow!("hull create failed: {e}"))?;
            Ok(0)
        }
        Command::Run(args) => run(&rt, args, cgroups),
        Command::Pause(a) => {
            rt.pause(&a.id)?;
            Ok(0)
        }
        Command::Resume(a) => {
            rt.resume(&a.id)?;
            Ok(0)
        }
        Command::Ps(args) => ps(&rt, args),
        Command::Events(args) => events(&rt, args),
        Command::Update(args) => {
            // runc looks the container up before it reads the new values.
            rt.state(&args.id)?;
            let res = crate::update::resources(&args)?;
            rt.update(&args.id, &res)?;
            Ok(0)
        }
        Command::Start(a) => {
            rt.start(&a.id)?;
            Ok(0)
        }
        Command::State(a) => {
            let state = rt.state(&a.id)?;
            // runc: json.MarshalIndent with two spaces, no trailing newline.
            let text = serde_json::to_string_pretty(&state)?;
            print_out(text.as_bytes())?;
            Ok(0)
        }
        Command::Kill(args) => kill(&rt, args),
        Command::Delete(a) => {
            rt.delete(&a.id, a.force)?;
            Ok(0)
        }
        Command::List(args) => list(&rt, args),
        Command::Spec(args) => spec(args),
        Command::Features => {
            print_out(&libhull::features::to_pretty_json(
                &libhull::features::features(),
            ))?;
            Ok(0)
        }
        Command::Exec(args) => exec(&rt, args),
        Command::Checkpoint(args) => {
            let opts = checkpoint_options(&args)?;
            rt.checkpoint(&args.id, &opts)?;
            Ok(0)
        }
        Command::Restore(args) => {
            let opts = restore_options(args, cgroups)?;
            rt.restore(&opts)
                .map_err(|e| anyhow!("hull restore failed: {e}"))
        }
    }
}

fn create_options(args: CreateArgs, cgroups: CgroupFlags) -> Result<CreateOptions> {
    // The pid file is relative to where we were started, whatever the library chdirs to.
    let pid_file = args.pid_file.map(|p| absolute(&p)).transpose()?;
    Ok(CreateOptions {
        id: args.id,
        bundle: args.bundle,
        console_socket: args.console_socket,
        pid_file,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
        listen_fds: listen_fds(),
        systemd_cgroup: cgroups.systemd,
        rootless_cgroups: cgroups.rootless,
        pidfd_socket: args.pidfd_socket.map(|p| absolute(&p)).transpose()?,
        notify_socket: std::env::var_os("NOTIFY_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    })
}

fn run(rt: &Runtime, args: RunArgs, cgroups: CgroupFlags) -> Result<i32> {
    let run = RunOptions {
        detach: args.detach,
        keep: args.keep,
        no_subreaper: args.no_subreaper,
    };
    let opts = create_options(args.create, cgroups)?;
    rt.run(&opts, &run)
        .map_err(|e| anyhow!("hull run failed: {e}"))
}

/// `checkpoint`'s flags as runc reads them: the images in `./checkpoint` by default, paths
/// made absolute against where hull was started.
fn checkpoint_options(a: &hull::cli::CheckpointArgs) -> Result<libhull::CheckpointOptions> {
    let page_server = match &a.page_server {
        None => None,
        Some(s) => {
            let (address, port) = s
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("Use --page-server ADDRESS:PORT to specify page server"))?;
            let port: i32 = port.parse().map_err(|_| anyhow!("Invalid port number"))?;
            Some((address.to_string(), port))
        }
    };
    let image_path = match &a.image_path {
        Some(p) => absolute(p)?,
        None => absolute(Path::new("checkpoint"))?,
    };
    Ok(libhull::CheckpointOptions {
        image_path,
        work_path: a.work_path.as_deref().map(absolute).transpose()?,
        parent_path: a.parent_path.clone(),
        leave_running: a.leave_running,
        tcp_established: a.tcp_established,
        tcp_skip_in_flight: a.tcp_skip_in_flight,
        link_remap: a.link_remap,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        lazy_pages: a.lazy_pages,
        status_fd: (a.status_fd >= 0).then_some(a.status_fd),
        page_server,
        file_locks: a.file_locks,
        pre_dump: a.pre_dump,
        manage_cgroups_mode: a.manage_cgroups_mode.clone(),
        empty_ns: a.empty_ns.clone(),
        auto_dedup: a.auto_dedup,
    })
}

/// `restore`'s flags: the create half as `create` reads them, the images in
/// `./checkpoint` by default.
fn restore_options(
    a: hull::cli::RestoreArgs,
    cgroups: CgroupFlags,
) -> Result<libhull::RestoreOptions> {
    let image_path = match &a.image_path {
        Some(p) => absolute(p)?,
        None => absolute(Path::new("checkpoint"))?,
    };
    let create = CreateOptions {
        id: a.id,
        bundle: a.bundle,
        console_socket: a.console_socket,
        pid_file: a.pid_file.map(|p| absolute(&p)).transpose()?,
        no_pivot: a.no_pivot,
        systemd_cgroup: cgroups.systemd,
        rootless_cgroups: cgroups.rootless,
        ..Default::default()
    };
    Ok(libhull::RestoreOptions {
        create,
        image_path,
        work_path: a.work_path.as_deref().map(absolute).transpose()?,
        detach: a.detach,
        no_subreaper: a.no_subreaper,
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        manage_cgroups_mode: a.manage_cgroups_mode,
        empty_ns: a.empty_ns,
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
        lsm_profile: a.lsm_profile,
        lsm_mount_context: a.lsm_mount_context,
    })
}

/// An error that ends the command with this exit code instead of 1.
#[derive(Debug)]
pub struct ExitWith(pub i32, pub String);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitWith {}

/// `exec`: the flags as runc reads them; the process's exit code unless detached. A failure
/// exits 255 with "exec failed: …", as runc.
fn exec(rt: &Runtime, args: hull::cli::ExecArgs) -> Result<i32> {
    exec_inner(rt, args).map_err(|e| ExitWith(255, format!("exec failed: {e}")).into())
}

fn exec_inner(rt: &Runtime, args: hull::cli::ExecArgs) -> Result<i32> {
    let mut rest = args.args.into_iter();
    let id = rest.next().unwrap_or_default();
    let process = match &args.process {
        Some(path) => {
            let text = std::fs::File::open(path)
                .and_then(libhull::spec::read_input)
                .map_err(|e| {
                    let why = libhull::logging::go_error_text(&e.to_string());
                    anyhow!("open {}: {why}", path.display())
                })?;
            let bad = |e: serde_json::Error| anyhow!("process {}: {e}", path.display());
            let mut value: serde_json::Value = serde_json::from_slice(&text).map_err(bad)?;
            // runc's process has a zero-valued user when the file has none: uid and gid 0.
            if let Some(p) = value.as_object_mut() {
                p.entry("user")
                    .or_insert_with(|| serde_json::json!({ "uid": 0, "gid": 0 }));
            }
            libhull::spec::spec_scheduler_flags(&mut value);
            Some(serde_json::from_value(value).map_err(bad)?)
        }
        None => None,
    };
    let user = match args.user.as_deref() {
        None | Some("") => None,
        Some(u) => {
            let parse = |s: &str| {
                s.parse::<u32>()
                    .map_err(|_| anyhow!("parsing {u} as int: invalid syntax"))
            };
            Some(match u.split_once(':') {
                Some((uid, gid)) => (parse(uid)?, Some(parse(gid)?)),
                None => (parse(u)?, None),
            })
        }
    };
    let additional_gids = args
        .additional_gids
        .iter()
        .map(|g| u32::try_from(*g).map_err(|_| anyhow!("invalid additional-gids value {g}")))
        .collect::<Result<Vec<_>>>()?;
    let opts = libhull::ExecOptions {
        id,
        process,
        args: rest.collect(),
        env: args.env,
        cwd: args.cwd.map(PathBuf::from),
        tty: args.tty,
        user,
        additional_gids,
        caps: args.cap,
        no_new_privs: args.no_new_privs.then_some(true),
        apparmor: args.apparmor,
        process_label: args.process_label,
        console_socket: args.console_socket,
        pid_file: args.pid_file.map(|p| absolute(&p)).transpose()?,
        detach: args.detach,
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        cgroups: args
            .cgroup
            .iter()
            .map(|c| sub_cgroup(c))
            .collect::<Result<_>>()?,
        pidfd_socket: args.pidfd_socket,
    };
    Ok(rt.exec(&opts)?)
}

/// One `exec --cgroup` value: `path` or `controller[,controller]:path`, as runc reads it.
fn sub_cgroup(value: &str) -> Result<(Option<String>, PathBuf)> {
    match value.split_once(':') {
        Some((ctrl, path)) if !ctrl.is_empty() && !path.is_empty() => {
            Ok((Some(ctrl.to_string()), PathBuf::from(path)))
        }
        Some(_) => bail!("invalid --cgroup argument: {value}"),
        None if value.is_empty() => bail!("invalid --cgroup argument: {value}"),
        None => Ok((None, PathBuf::from(value))),
    }
}

/// `ps`: the container's pids as JSON, or ps(1)'s output cut to the container's lines.
fn ps(rt: &Runtime, args: PsArgs) -> Result<i32> {
    let pids = rt.pids(&args.id)?;
    match args.format.as_str() {
        "table" => {}
        "json" => {
            let mut text = serde_json::to_vec(&pids)?;
            text.push(b'\n');
            print_out(&text)?;
            return Ok(0);
        }
        _ => bail!("invalid format option"),
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| anyhow!("exec: \"ps\": {e}"))?;
    if !out.status.success() {
        let mut all = out.stdout;
        all.extend_from_slice(&out.stderr);
        bail!(
            "{}: {}",
            exit_text(out.status),
            String::from_utf8_lossy(&all)
        );
    }
    // Only stdout is ps's table: a warning on stderr is passed on, not parsed as a line.
    std::io::stderr().write_all(&out.stderr)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or_default();
    let pid_index = header
        .split_whitespace()
        .position(|t| t == "PID")
        .ok_or_else(|| anyhow!("couldn't find PID field in ps output"))?;
    let mut shown = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(pid_index).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .map_err(|e| anyhow!("unable to parse pid: strconv.Atoi: parsing {field:?}: {e}"))?;
        if pids.contains(&pid) {
            shown.push_str(line);
            shown.push('\n');
        }
    }
    print_out(shown.as_bytes())?;
    Ok(0)
}

/// How Go's exec package words a failed command.
fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {sig}"),
        _ => "failed".into(),
    }
}

/// `events`: one stats event with `--stats`, else a stream of stats and OOM events until
/// the container stops.
fn events(rt: &Runtime, args: EventsArgs) -> Result<i32> {
    let interval = crate::update::parse_duration(&args.interval).ok_or_else(|| {
        anyhow!(
            "invalid value \"{}\" for flag -interval: parse error",
            args.interval
        )
    })?;
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let mut out = std::io::stdout().lock();
    rt.events(&args.id, interval, args.stats, &mut |event| {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        out.write_all(&line)?;
        out.flush()
    })?;
    Ok(0)
}

fn kill(rt: &Runtime, args: KillArgs) -> Result<i32> {
    let raw = args.signal.as_deref().unwrap_or("SIGTERM");
    let signal = parse_signal(raw)?;
    match rt.kill(&args.id, signal, args.all) {
        // runc: with --all, a container that is no longer running is not an error.
        Err(libhull::container::KillError::NotRunning) if args.all => Ok(0),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(0),
    }
}

/// Signal names as runc knows them (golang.org/x/sys/unix), numbered as on Linux.
const SIGNALS: [(&str, i32); 31] = [
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

/// runc's `kill` argument: a decimal number, or a name in any case with or without "SIG".
pub fn parse_signal(raw: &str) -> Result<i32> {
    if let Ok(n) = raw.parse::<i32>() {
        return Ok(n);
    }
    let upper = raw.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, num)| *num)
        .ok_or_else(|| anyhow!("unknown signal {raw:?}"))
}

fn list(rt: &Runtime, args: ListArgs) -> Result<i32> {
    let (states, broken) = rt.list()?;
    // As runc prints them, whatever the log settings.
    for (id, e) in broken {
        let _ = writeln!(std::io::stderr(), "load container {id}: {e}");
    }
    let mut out = Vec::new();
    if args.quiet {
        for s in &states {
            writeln!(out, "{}", s.id)?;
        }
    } else {
        match args.format.as_str() {
            "table" => out = list_table(&states).into_bytes(),
            "json" => {
                // runc encodes a nil slice: an empty list is `null`.
                if states.is_empty() {
                    out.extend_from_slice(b"null");
                } else {
                    serde_json::to_writer(&mut out, &states)?;
                }
                out.push(b'\n');
            }
            _ => bail!("invalid format option"),
        }
    }
    print_out(&out)?;
    Ok(0)
}

/// `list`'s table, aligned as Go's tabwriter (minwidth 12, padding 3) aligns runc's.
fn list_table(states: &[OciState]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    tabwriter(&rows, 12, 3)
}

/// Go tabwriter's layout for rows of equal length: every cell but the last of a row is padded
/// to its column's width, max(minwidth, widest cell + padding).
fn tabwriter<const N: usize>(rows: &[[String; N]], minwidth: usize, padding: usize) -> String {
    let width = |c: usize| {
        rows.iter()
            .map(|r| r[c].chars().count() + padding)
            .max()
            .unwrap_or(0)
            .max(minwidth)
    };
    let widths: Vec<usize> = (0..N.saturating_sub(1)).map(width).collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(c) {
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

fn spec(args: SpecArgs) -> Result<i32> {
    libhull::spec::default::write(&args.bundle, args.rootless)?;
    Ok(0)
}

/// Writes to stdout; a closed stdout is an error like any other.
fn print_out(data: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(data)?;
    stdout.flush()?;
    Ok(())
}

/// `path` made absolute against the current directory, with `.` and `..` removed lexically
/// (Go's filepath.Abs).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let abs =
        std::path::absolute(path).map_err(|e| anyhow!("make {} absolute: {e}", path.display()))?;
    let mut clean = PathBuf::from("/");
    for part in abs.components() {
        match part {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::Normal(p) => clean.push(p),
            _ => {}
        }
    }
    Ok(clean)
}

/// The number of socket-activation fds systemd passed to this very process, as runc reads
/// them (LISTEN_PID must be our pid).
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID").is_ok_and(|p| p == std::process::id().to_string());
    match std::env::var("LISTEN_FDS") {
        Ok(n) if ours => n.parse().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libhull::state::Status;

    #[test]
    fn signals_parse_as_runc_parses_them() {
        for (raw, n) in [
            ("9", 9),
            ("15", 15),
            ("KILL", 9),
            ("kill", 9),
            ("SIGKILL", 9),
            ("sigterm", 15),
            ("SigHup", 1),
            ("USR1", 10),
            ("WINCH", 28),
            ("SIGPWR", 30),
            ("+2", 2),
        ] {
            assert_eq!(parse_signal(raw).unwrap(), n, "{raw}");
        }
        for bad in ["", "SIG", "FOO", "SIGRTMIN", "9x", "-KILL"] {
            let err = parse_signal(bad).unwrap_err().to_string();
            assert_eq!(err, format!("unknown signal {bad:?}"));
        }
    }

    #[test]
    fn empty_list_table_is_runcs_header() {
        assert_eq!(
            list_table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }

    #[test]
    fn list_table_aligns_to_the_widest_cell() {
        let st = OciState {
            oci_version: "1.2.1".into(),
            id: "a-rather-long-id".into(),
            pid: 4242,
            status: Status::Running,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2024-01-01T00:00:00.123456789Z".into(),
            annotations: Default::default(),
            owner: "root".into(),
        };
        let text = list_table(&[st]);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID                 PID         STATUS      BUNDLE      CREATED                          OWNER"
        );
        assert_eq!(
            lines[1],
            "a-rather-long-id   4242        running     /b          2024-01-01T00:00:00.123456789Z   root"
        );
    }

    #[test]
    fn absolute_cleans_like_go() {
        assert_eq!(
            absolute(Path::new("/a/../b/./c")).unwrap(),
            Path::new("/b/c")
        );
        assert_eq!(absolute(Path::new("/..")).unwrap(), Path::new("/"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute(Path::new("x")).unwrap(), cwd.join("x"));
    }
}
