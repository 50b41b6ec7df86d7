//! Lifecycle hooks: running each hook with the container state on stdin, its env and timeout.
//!
//! As runc does, a hook's stdout and stderr are captured, dropped when it succeeds and quoted
//! in the error when it fails; they never reach our own stdout/stderr (conmon would show them
//! as our error). Everything runs on the calling thread with `poll`, so this works inside the
//! single-threaded container init as well as in the runtime process.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::{Hook, State};

/// How much of each of a hook's stdout and stderr is kept for the error message.
const OUTPUT_LIMIT: usize = 16 * 1024;
/// Without a pidfd, how often to check whether the hook has exited.
const EXIT_POLL_INTERVAL_MS: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("error running {kind} hook #{index}: {path}: {reason}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        reason: HookFailure,
    },
    #[error("serialize the container state for {kind} hooks: {source}")]
    State {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Why one hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    #[error("path is not absolute")]
    RelativePath,
    #[error("timeout must be greater than zero, got {0}")]
    InvalidTimeout(i64),
    #[error("start: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: Errno,
    },
    #[error("timeout after {0}s")]
    Timeout(i64),
    #[error("{status}{output}")]
    Exit { status: String, output: String },
}

/// The runtime-spec state a hook reads on stdin; a `pid` of 0 (no process) is left out.
pub fn state(
    id: &str,
    pid: i32,
    bundle: &Path,
    annotations: Option<std::collections::HashMap<String, String>>,
    status: oci_spec::runtime::ContainerState,
) -> State {
    let mut st = State::default();
    st.set_version(crate::spec::OCI_VERSION.to_string());
    st.set_id(id.to_string());
    st.set_status(status);
    st.set_pid((pid > 0).then_some(pid));
    st.set_bundle(bundle.to_path_buf());
    st.set_annotations(annotations);
    st
}

/// Runs `hooks` in order, each with `state` as JSON on stdin; stops at the first failure.
/// `kind` is the config name of the list ("prestart", "createRuntime", ...). A hook without
/// `env` gets an empty environment; hooks run in the caller's working directory.
#[cfg(test)]
pub fn run(kind: &'static str, hooks: &[Hook], state: &State) -> Result<(), HookError> {
    run_with(kind, hooks, state, &RunOptions::default())
}

/// What runc does beyond the runtime-spec, for the caller to opt into.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunOptions<'a> {
    /// `KEY=value` entries for hooks without `env`. runc gives such hooks its own environment,
    /// and startContainer hooks the container process's.
    pub default_env: &'a [String],
    /// Working directory of the hooks; `None` keeps the caller's. runc runs the hooks it runs
    /// itself in the bundle directory.
    pub cwd: Option<&'a Path>,
}

/// [`run`] with [`RunOptions`].
pub fn run_with(
    kind: &'static str,
    hooks: &[Hook],
    state: &State,
    opts: &RunOptions<'_>,
) -> Result<(), HookError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|source| HookError::State { kind, source })?;
    for (index, hook) in hooks.iter().enumerate() {
        tracing::debug!(kind, index, path = %hook.path().display(), "running hook");
        run_one(hook, &json, opts).map_err(|reason| HookError::Failed {
            kind,
            index,
            path: hook.path().display().to_string(),
            reason,
        })?;
    }
    Ok(())
}

/// Runs every hook even when some fail, as the runtime-spec asks for poststart and poststop
/// hooks: each failure is logged as a warning and the rest still run.
pub fn run_all_warn(kind: &'static str, hooks: &[Hook], state: &State, opts: &RunOptions<'_>) {
    if hooks.is_empty() {
        return;
    }
    let json = match serde_json::to_vec(state) {
        Ok(j) => j,
        Err(source) => {
            tracing::warn!("{}", HookError::State { kind, source });
            return;
        }
    };
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(reason) = run_one(hook, &json, opts) {
            let e = HookError::Failed {
                kind,
                index,
                path: hook.path().display().to_string(),
                reason,
            };
            tracing::warn!("{e}");
        }
    }
}

fn run_one(hook: &Hook, stdin_data: &[u8], opts: &RunOptions<'_>) -> Result<(), HookFailure> {
    let path = hook.path();
    if !path.is_absolute() {
        return Err(HookFailure::RelativePath);
    }
    let timeout = match hook.timeout() {
        Some(t) if t <= 0 => return Err(HookFailure::InvalidTimeout(t)),
        Some(t) => Some(t),
        None => None,
    };
    let mut cmd = command(
        path,
        hook.args().as_deref(),
        hook.env().as_deref(),
        opts.default_env,
    );
    if let Some(dir) = opts.cwd {
        cmd.current_dir(dir);
    }
    let _sigpipe = hull_sys::signal::SigpipeIgnored::new();
    let child = cmd.spawn().map_err(HookFailure::Spawn)?;
    let mut running = Running::new(child);
    // `None` when the timeout is too large to represent: as good as no timeout.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    match running.wait(stdin_data, deadline)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(HookFailure::Exit {
            status: describe(status),
            output: running.output(),
        }),
        None => {
            running.kill();
            Err(HookFailure::Timeout(timeout.unwrap_or_default()))
        }
    }
}

fn command(
    path: &Path,
    args: Option<&[String]>,
    env: Option<&[String]>,
    default_env: &[String],
) -> Command {
    let mut cmd = Command::new(path);
    // Without args, argv[0] is the path (Command's default), as with Go's exec.Cmd in runc.
    if let Some([argv0, rest @ ..]) = args {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for entry in env.unwrap_or(default_env) {
        match entry.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                cmd.env(key, value);
            }
            // Command cannot pass an entry without a name; execve's callee could not look
            // it up by name either.
            _ => tracing::debug!(entry = %entry, "skipping hook env entry without a name"),
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills whatever the hook started too.
        .process_group(0);
    // A runtime killed while a hook runs takes the hook with it.
    hull_sys::signal::kill_with_parent(&mut cmd);
    cmd
}

/// A spawned hook and its pipes. Dropping it before the hook was reaped kills the hook's
/// process group and reaps it, so no error path leaves a process behind.
struct Running {
    child: Child,
    reaped: bool,
    pidfd: Option<OwnedFd>,
    stdin: Option<File>,
    stdout: Capture,
    stderr: Capture,
}

impl Running {
    fn new(mut child: Child) -> Self {
        let pid = Pid::from_raw(child.id() as i32);
        // Without a pidfd (kernels before 5.3) the exit is found by polling try_wait.
        let pidfd = hull_sys::process::pidfd_open(pid).ok();
        let stdin = child.stdin.take().map(|p| File::from(OwnedFd::from(p)));
        let stdout = Capture::new(child.stdout.take().map(OwnedFd::from));
        let stderr = Capture::new(child.stderr.take().map(OwnedFd::from));
        Running {
            child,
            reaped: false,
            pidfd,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Feeds `input` to the hook's stdin and collects its output until it exits (its status)
    /// or `deadline` passes (`None`).
    fn wait(
        &mut self,
        input: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, HookFailure> {
        let io = |step: &'static str| move |source: Errno| HookFailure::Io { step, source };
        for fd in [
            self.stdin.as_ref().map(|f| f.as_fd()),
            self.stdout.fd(),
            self.stderr.fd(),
        ]
        .into_iter()
        .flatten()
        {
            set_nonblocking(fd).map_err(io("make the hook's pipes non-blocking"))?;
        }
        let mut written = 0;
        loop {
            if let Some(status) = self.try_wait()? {
                // Take what is already buffered, but do not wait for EOF: something the hook
                // left running may hold the pipes open.
                self.stdout.drain();
                self.stderr.drain();
                return Ok(Some(status));
            }
            let timeout = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    None | Some(Duration::ZERO) => return Ok(None),
                    Some(left) => Some(left.as_millis().min(i32::MAX as u128) as i32),
                },
            };
            let timeout = match (&self.pidfd, timeout) {
                (Some(_), t) => t,
                (None, t) => {
                    Some(t.map_or(EXIT_POLL_INTERVAL_MS, |t| t.min(EXIT_POLL_INTERVAL_MS)))
                }
            };
            let ready = {
                let sources = [
                    (self.stdin.as_ref().map(|f| f.as_fd()), PollFlags::POLLOUT),
                    (self.stdout.fd(), PollFlags::POLLIN),
                    (self.stderr.fd(), PollFlags::POLLIN),
                    (self.pidfd.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
                ];
                let mut fds = Vec::with_capacity(sources.len());
                let mut slots = [None; 4];
                for (slot, (fd, events)) in slots.iter_mut().zip(sources) {
                    if let Some(fd) = fd {
                        *slot = Some(fds.len());
                        fds.push(PollFd::new(fd, events));
                    }
                }
                let timeout = timeout.map_or(PollTimeout::NONE, |ms| {
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                });
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(io("wait for the hook")(e)),
                }
                slots.map(|slot| {
                    slot.and_then(|i| fds[i].revents())
                        .is_some_and(|r| !r.is_empty())
                })
            };
            let [stdin_ready, out_ready, err_ready, _] = ready;
            if stdin_ready {
                written = self.feed(input, written)?;
            }
            if out_ready {
                self.stdout.drain();
            }
            if err_ready {
                self.stderr.drain();
            }
        }
    }

    /// Writes what is left of `input` from `written` on; closes stdin once done, or when the
    /// hook closed its end (a hook need not read its stdin).
    fn feed(&mut self, input: &[u8], mut written: usize) -> Result<usize, HookFailure> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Ok(written);
        };
        while written < input.len() {
            match stdin.write(&input[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(written),
                Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
                Err(e) => {
                    return Err(HookFailure::Io {
                        step: "write the state to the hook's stdin",
                        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                    })
                }
            }
        }
        self.stdin = None;
        Ok(written)
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, HookFailure> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.reaped = true;
                Ok(Some(status))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(HookFailure::Io {
                step: "wait for the hook",
                source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::ECHILD)),
            }),
        }
    }

    /// SIGKILLs the hook's process group (what it started too) and reaps the hook.
    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        let pgid = Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::killpg(pgid, Signal::SIGKILL).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// The captured stdout and stderr, in runc's `, stdout: ..., stderr: ...` form; empty
    /// streams are left out.
    fn output(&self) -> String {
        let mut out = String::new();
        for (name, capture) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = capture.text();
            if !text.is_empty() {
                out.push_str(&format!(", {name}: {text}"));
            }
        }
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One output pipe of a hook and the first [`OUTPUT_LIMIT`] bytes read from it.
struct Capture {
    pipe: Option<File>,
    data: Vec<u8>,
    truncated: bool,
}

impl Capture {
    fn new(pipe: Option<OwnedFd>) -> Self {
        Capture {
            pipe: pipe.map(File::from),
            data: Vec::new(),
            truncated: false,
        }
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(|p| p.as_fd())
    }

    /// Reads what is available now; closes the pipe at EOF or on error.
    fn drain(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT - self.data.len();
                    self.data.extend_from_slice(&buf[..n.min(room)]);
                    self.truncated |= n > room;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        self.pipe = None;
    }

    fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.data).trim_end().to_owned();
        if self.truncated {
            text.push_str(" [truncated]");
        }
        text
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map(drop)
}

/// Go's names of the signals (its syscall package's table), which runc's messages carry.
const GO_SIGNAL_NAMES: [&str; 31] = [
    "hangup",
    "interrupt",
    "quit",
    "illegal instruction",
    "trace/breakpoint trap",
    "aborted",
    "bus error",
    "floating point exception",
    "killed",
    "user defined signal 1",
    "segmentation fault",
    "user defined signal 2",
    "broken pipe",
    "alarm clock",
    "terminated",
    "stack fault",
    "child exited",
    "continued",
    "stopped (signal)",
    "stopped",
    "stopped (tty input)",
    "stopped (tty output)",
    "urgent I/O condition",
    "CPU time limit exceeded",
    "file size limit exceeded",
    "virtual timer expired",
    "profiling timer expired",
    "window changed",
    "I/O possible",
    "power failure",
    "bad system call",
];

/// "exit status N" or "signal: killed", as Go's os/exec words them for runc.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit status {code}")
    } else if let Some(sig) = status.signal() {
        let name = usize::try_from(sig)
            .ok()
            .and_then(|n| GO_SIGNAL_NAMES.get(n.wrapping_sub(1)))
            .map_or_else(|| format!("signal {sig}"), |n| n.to_string());
        let core = if status.core_dumped() {
            " (core dumped)"
        } else {
            ""
        };
        format!("signal: {name}{core}")
    } else {
        status.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use oci_spec::runtime::{ContainerState, HookBuilder, StateBuilder};

    use super::*;

    const BUSYBOX: &str = "/usr/bin/busybox";

    /// A fresh directory for one test, removed when dropped.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(name: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("hull-hooks-{name}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TestDir(dir)
        }

        fn file(&self, name: &str) -> String {
            self.0.join(name).to_str().unwrap().to_owned()
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn state(annotation: &str) -> State {
        StateBuilder::default()
            .version("1.2.1")
            .id("hook-test")
            .status(ContainerState::Created)
            .pid(4242)
            .bundle("/run/bundle")
            .annotations(HashMap::from([("a".to_owned(), annotation.to_owned())]))
            .build()
            .unwrap()
    }

    fn sh(script: &str) -> Hook {
        HookBuilder::default()
            .path(BUSYBOX)
            .args(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()])
            .build()
            .unwrap()
    }

    fn with_env(mut hook: Hook, env: &[&str]) -> Hook {
        hook.set_env(Some(env.iter().map(|s| s.to_string()).collect()));
        hook
    }

    /// The NUL-separated environment a hook copied from /proc/$$/environ.
    fn environ_of(file: &str) -> Vec<String> {
        let raw = std::fs::read(file).unwrap();
        raw.split(|b| *b == 0)
            .filter(|e| !e.is_empty())
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect()
    }

    #[test]
    fn hook_reads_the_state_json_on_stdin_with_args_as_argv() {
        let dir = TestDir::new("stdin");
        let (out, argv) = (dir.file("state.json"), dir.file("argv"));
        let hook = sh(&format!("cat > {out}; cat /proc/$$/cmdline > {argv}; true"));
        run("createRuntime", &[hook], &state("x")).unwrap();

        let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(
            got,
            serde_json::json!({
                "ociVersion": "1.2.1",
                "id": "hook-test",
                "status": "created",
                "pid": 4242,
                "bundle": "/run/bundle",
                "annotations": {"a": "x"},
            })
        );
        assert!(
            std::fs::read(&argv).unwrap().starts_with(b"sh\0-c\0"),
            "args[0] must be argv[0]"
        );
    }

    #[test]
    fn hook_gets_exactly_its_env_and_nothing_inherited() {
        let dir = TestDir::new("env");
        let file = dir.file("environ");
        let hook = with_env(
            sh(&format!("cat /proc/$$/environ > {file}; true")),
            &["FOO=bar", "EQ=a=b", "EMPTY="],
        );
        run("prestart", &[hook], &state("x")).unwrap();
        let mut got = environ_of(&file);
        got.sort();
        assert_eq!(got, ["EMPTY=", "EQ=a=b", "FOO=bar"]);

        let hook = sh(&format!("cat /proc/$$/environ > {file}; true"));
        run("prestart", std::slice::from_ref(&hook), &state("x")).unwrap();
        assert!(
            environ_of(&file).is_empty(),
            "no env given: empty environment"
        );

        let default_env = ["D=1".to_owned()];
        let opts = RunOptions {
            default_env: &default_env,
            cwd: Some(&dir.0),
        };
        let with_pwd = sh(&format!(
            "cat /proc/$$/environ > {file}; pwd -P > {file}.cwd"
        ));
        run_with("prestart", &[with_pwd], &state("x"), &opts).unwrap();
        assert_eq!(environ_of(&file), ["D=1"]);
        let cwd = std::fs::read_to_string(format!("{file}.cwd")).unwrap();
        assert_eq!(Path::new(cwd.trim()), dir.0.canonicalize().unwrap());
    }

    #[test]
    fn failing_hook_stops_the_list_and_names_kind_index_path_and_output() {
        let dir = TestDir::new("fail");
        let (first, third) = (dir.file("first"), dir.file("third"));
        let hooks = [
            sh(&format!("touch {first}")),
            sh("echo some output; echo oops >&2; exit 3"),
            sh(&format!("touch {third}")),
        ];
        let err = run("createRuntime", &hooks, &state("x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "error running createRuntime hook #1: /usr/bin/busybox: exit status 3, \
             stdout: some output, stderr: oops"
        );
        assert!(Path::new(&first).exists());
        assert!(
            !Path::new(&third).exists(),
            "hooks after a failure must not run"
        );

        let err = run("poststop", &[sh("kill -9 $$")], &state("x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "error running poststop hook #0: /usr/bin/busybox: signal: killed"
        );

        let missing = HookBuilder::default()
            .path("/nonexistent/hook")
            .build()
            .unwrap();
        let err = run("poststart", &[missing], &state("x")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("error running poststart hook #0: /nonexistent/hook: start: "),
            "{err}"
        );

        let relative = HookBuilder::default().path("bin/true").build().unwrap();
        let err = run("poststart", &[relative], &state("x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "error running poststart hook #0: bin/true: path is not absolute"
        );
    }

    fn is_gone(pid: i32) -> bool {
        // A zombie waiting for its new parent to reap it is dead too.
        hull_sys::proc::stat(pid).is_none_or(|(state, _)| state == 'Z')
    }

    #[test]
    fn timeout_kills_the_hook_and_what_it_started() {
        let dir = TestDir::new("timeout");
        let pids = dir.file("pids");
        let mut hook = sh(&format!(
            "echo $$ > {pids}; sleep 100 & echo $! >> {pids}; wait"
        ));
        hook.set_timeout(Some(1));
        let started = Instant::now();
        let err = run("createContainer", &[hook], &state("x")).unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            err.to_string(),
            "error running createContainer hook #0: /usr/bin/busybox: timeout after 1s"
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{took:?}"
        );

        let pids: Vec<i32> = std::fs::read_to_string(&pids)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !pids.iter().all(|&p| is_gone(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in pids {
            assert!(is_gone(pid), "pid {pid} survived the timeout");
        }

        let mut zero = sh("true");
        zero.set_timeout(Some(0));
        let err = run("createContainer", &[zero], &state("x")).unwrap_err();
        assert!(err
            .to_string()
            .ends_with("timeout must be greater than zero, got 0"));
    }

    #[test]
    fn large_state_is_written_whole_or_dropped_when_the_hook_does_not_read() {
        let dir = TestDir::new("large");
        let count = dir.file("count");
        let big = state(&"y".repeat(1 << 20));
        let len = serde_json::to_vec(&big).unwrap().len();
        run("prestart", &[sh(&format!("wc -c > {count}"))], &big).unwrap();
        assert_eq!(
            std::fs::read_to_string(&count).unwrap().trim(),
            len.to_string()
        );

        // Exits without reading: EPIPE on its stdin is not an error.
        run("prestart", &[sh("exit 0")], &big).unwrap();
    }

    #[test]
    fn output_beyond_the_pipe_buffer_does_not_block_and_is_truncated() {
        let hook = sh("head -c 300000 /dev/zero | tr '\\0' x; exit 1");
        let err = run("poststart", &[hook], &state("x")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("exit status 1, stdout: xxx"),
            "{}",
            &msg[..200]
        );
        assert!(msg.ends_with(" [truncated]"));
        assert!(msg.len() < OUTPUT_LIMIT + 200);
    }

    #[test]
    fn hook_leaving_a_process_holding_its_output_returns_at_exit() {
        let dir = TestDir::new("daemon");
        let pid_file = dir.file("pid");
        let started = Instant::now();
        let result = run(
            "poststart",
            &[sh(&format!("sleep 30 & echo $! > {pid_file}"))],
            &state("x"),
        );
        let took = started.elapsed();
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let pid = Pid::from_raw(pid.trim().parse().unwrap());
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        }
        result.unwrap();
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
