//! A foreground `run` and `exec -t` with `terminal: true` and no console socket, driven
//! through a real pty: the runtime runs in a session of its own with the pty's slave as its
//! controlling terminal and stdio, as under a terminal emulator, while the test types into
//! the master and reads what comes back. Every read and wait has a deadline; a runtime that
//! is still running when a test ends is killed, and the `Test` guard deletes its container.
//! The last tests relay the pty into a pipe instead, as a script that captures output does.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{tcgetattr, LocalFlags};
use serde_json::json;

use crate::util::{runtime, runtime_name, skip_on_runc, wait_until, Test};

/// The shell's prompt (set through `PS1` in the process's env): seeing it means the shell
/// waits for a line, and hence that the runtime has already put our terminal in raw mode.
const PROMPT: &str = "READY> ";

/// How long the runtime gets to start the container and show the first prompt.
const START_TIMEOUT: Duration = Duration::from_secs(4);

/// How long one typed command gets to answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Makes the test's process an interactive `sh` on a terminal, with our prompt.
fn interactive_sh(t: &mut Test) {
    t.config["process"]["terminal"] = json!(true);
    t.args(&["sh"]);
    with_prompt(t);
}

/// Our prompt in the container's environment, so a shell `exec`'d into it shows it too.
fn with_prompt(t: &mut Test) {
    t.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("PS1={PROMPT}")));
}

/// Sets the window size of a pty (either end names the same terminal).
fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a pointer that lives across the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
}

/// The local-mode flags of a terminal.
fn local_flags(fd: BorrowedFd<'_>) -> LocalFlags {
    tcgetattr(fd).expect("tcgetattr").local_flags
}

/// The pids of the children of `pid` whose command name is `comm`.
fn children_named(pid: i32, comm: &str) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse::<i32>().ok())
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|n| n.trim() == comm)
        })
        .collect()
}

/// In the forked child: a new session whose controlling terminal is the pty on fd 1 (stdout
/// is always the pty; stdin may be redirected), so that the runtime gets SIGWINCH for it and
/// is its foreground process group, as a shell's job is.
fn take_the_terminal() -> std::io::Result<()> {
    // SAFETY: setsid(2) takes no arguments. It cannot fail here: a freshly forked child is no
    // process group leader (this Command sets no process_group).
    if unsafe { libc::setsid() } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal it from another session); fd 1
    // is the pty's slave, which no session has as its controlling terminal yet.
    if unsafe { libc::ioctl(1, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A runtime call running on a pty of its own.
#[derive(Debug)]
struct Term {
    master: OwnedFd,
    /// The test keeps the slave open too: its modes can be read after the runtime is gone,
    /// and the master never reads EIO in between (reads end at their needle or deadline).
    slave: OwnedFd,
    /// `None` once collected.
    child: Option<Child>,
    command: String,
    /// Everything read from the master so far.
    seen: Vec<u8>,
    /// Where the next `expect` starts looking in `seen`.
    pos: usize,
}

impl Term {
    /// Opens a pty of `rows`×`cols` and starts `RUNTIME --root ROOT ARGS…` on it, in a new
    /// session whose controlling terminal is the pty.
    fn spawn(t: &Test, rows: u16, cols: u16, args: &[&str]) -> Term {
        Term::spawn_with_stdin(t, rows, cols, args, None)
    }

    /// As `spawn`, with stdin from `stdin` instead of the pty if given.
    fn spawn_with_stdin(
        t: &Test,
        rows: u16,
        cols: u16,
        args: &[&str],
        stdin: Option<std::fs::File>,
    ) -> Term {
        // Close-on-exec on both ends: the other tests' runtimes and containers, forked by
        // other threads of this binary, must not inherit (and hold open) this pty.
        let master =
            posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname_r(&master).expect("ptsname_r");
        let slave: OwnedFd = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&name)
            .unwrap_or_else(|e| panic!("open {name}: {e}"))
            .into();
        // SAFETY: into_raw_fd gives up the PtyMaster's ownership of this open fd; the
        // OwnedFd is its only owner from here on.
        let master = unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) };
        set_window_size(master.as_fd(), rows, cols);

        let bin = runtime();
        let root = t.root_str();
        let mut cmd = Command::new(&bin);
        cmd.arg("--root").arg(&root).args(args);
        let dup = |what: &str| {
            slave
                .try_clone()
                .unwrap_or_else(|e| panic!("dup the slave for {what}: {e}"))
        };
        match stdin {
            Some(f) => cmd.stdin(f),
            None => cmd.stdin(dup("stdin")),
        };
        cmd.stdout(dup("stdout")).stderr(dup("stderr"));
        // SAFETY: the hook runs in the forked child before exec, after stdio has been put on
        // fds 0-2; it only makes two async-signal-safe syscalls and allocates nothing.
        unsafe {
            cmd.pre_exec(take_the_terminal);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Term {
            master,
            slave,
            child: Some(child),
            command: format!("{} --root {root} {}", bin.display(), args.join(" ")),
            seen: Vec::new(),
            pos: 0,
        }
    }

    /// Types `text` into the terminal.
    fn type_in(&self, text: &str) {
        crate::util::pty_write(&self.master, text.as_bytes());
    }

    /// Reads what the master has for at most until `deadline`; whether it read anything.
    fn read_some(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(100) as i32;
        // SAFETY: one pollfd that lives across the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r <= 0 || pfd.revents & libc::POLLIN == 0 {
            return false;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a live buffer of the given size; poll said it will not block.
        let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return false;
        }
        self.seen.extend_from_slice(&buf[..n as usize]);
        true
    }

    /// Reads until `needle` shows up after what earlier calls consumed, within `timeout`;
    /// returns the text up to and including it and consumes that. Panics with the transcript
    /// at the deadline.
    #[track_caller]
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = String::from_utf8_lossy(&self.seen[self.pos..]).into_owned();
            if let Some(at) = text.find(needle) {
                let upto = &text[..at + needle.len()];
                self.pos += upto.len();
                return upto.to_string();
            }
            if Instant::now() >= deadline {
                let status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "no {needle:?} within {timeout:?}\n  command: {}\n  runtime: {}\n  \
                     new output: {text:?}\n  whole transcript: {:?}",
                    self.command,
                    match status {
                        Some(st) => format!("exited {}", code_of(st)),
                        None => "still running".to_string(),
                    },
                    String::from_utf8_lossy(&self.seen),
                );
            }
            self.read_some(deadline);
        }
    }

    /// Whether the runtime is still running.
    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Waits for the runtime to exit within `timeout` (draining the master meanwhile, so that
    /// it never blocks on a full pty) and returns its exit code, or `128 + signal`. At the
    /// deadline it is killed and the test fails.
    #[track_caller]
    fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("runtime already collected");
        loop {
            if let Some(st) = child.try_wait().expect("wait for the runtime") {
                return code_of(st);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the runtime did not exit within {timeout:?}\n  command: {}\n  \
                     transcript: {:?}",
                    self.command,
                    String::from_utf8_lossy(&self.seen),
                );
            }
            if !self.read_some(deadline.min(Instant::now() + Duration::from_millis(20))) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Only when a test failed half-way: the runtime we started is killed by its pid,
            // and the Test guard (dropped after us) deletes its container.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn code_of(st: ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// `run --bundle B ID` of an interactive shell on a fresh `rows`×`cols` pty, up to its first
/// prompt.
fn run_in_terminal(t: &mut Test, rows: u16, cols: u16) -> Term {
    interactive_sh(t);
    t.write_config();
    let bundle = t.bundle_str();
    let id = t.id.clone();
    let mut term = Term::spawn(t, rows, cols, &["run", "--bundle", &bundle, &id]);
    term.expect(PROMPT, START_TIMEOUT);
    term
}

#[test]
fn run_in_a_terminal_relays_what_is_typed_and_what_the_shell_prints() {
    let mut t = Test::new("term_run_echo");
    let mut term = run_in_terminal(&mut t, 24, 80);

    // The arithmetic proves that the shell ran the line, not just that a tty echoed it.
    term.type_in("echo hi-$((1+1))\r");
    term.expect("hi-2", REPLY_TIMEOUT);
    term.expect(PROMPT, REPLY_TIMEOUT);

    term.type_in("echo T=$(tty)=T\r");
    term.expect("T=/dev/pts/", REPLY_TIMEOUT);
    let rest = term.expect("=T", REPLY_TIMEOUT);
    let n = rest.trim_end_matches("=T");
    assert!(
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        "tty is not /dev/pts/N: /dev/pts/{n:?}"
    );
    term.expect(PROMPT, REPLY_TIMEOUT);

    term.type_in("[ -t 0 ] && [ -t 1 ] && echo is-tty-$((3*3))\r");
    term.expect("is-tty-9", REPLY_TIMEOUT);
    term.expect(PROMPT, REPLY_TIMEOUT);

    term.type_in("exit\r");
    assert_eq!(term.wait(Duration::from_secs(3)), 0);
}

#[test]
fn run_in_a_terminal_takes_its_window_size_and_follows_resizes() {
    let mut t = Test::new("term_run_resize");
    let mut term = run_in_terminal(&mut t, 33, 101);

    term.type_in("echo size=$(stty size)=\r");
    term.expect("size=33 101=", REPLY_TIMEOUT);
    term.expect(PROMPT, REPLY_TIMEOUT);

    // The kernel sends SIGWINCH to the terminal's foreground group: the runtime's own.
    set_window_size(term.master.as_fd(), 40, 120);
    // The runtime resizes the container's pty when it gets to the signal; ask until it has.
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        // The reply ends in "=8", which the echo of the typed line does not hold.
        term.type_in("echo size=$(stty size)=$((4+4))\r");
        let reply = term.expect("=8", REPLY_TIMEOUT);
        term.expect(PROMPT, REPLY_TIMEOUT);
        if reply.contains("size=40 120=8") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the container's terminal was not resized to 40 120: {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    term.type_in("exit\r");
    assert_eq!(term.wait(Duration::from_secs(3)), 0);
}

#[test]
fn ctrl_c_in_a_terminal_interrupts_the_containers_foreground_job() {
    let mut t = Test::new("term_run_ctrl_c");
    let id = t.id.clone();
    let mut term = run_in_terminal(&mut t, 24, 80);
    let init = t.state(&id).expect("state of the running container")["pid"]
        .as_i64()
        .expect("pid in state") as i32;

    term.type_in("sleep 100\r");
    let mut sleeps = Vec::new();
    assert!(
        wait_until(REPLY_TIMEOUT, || {
            sleeps = children_named(init, "sleep");
            !sleeps.is_empty()
        }),
        "the shell did not start sleep"
    );

    term.type_in("\x03");
    term.expect(PROMPT, Duration::from_secs(2));
    assert!(
        wait_until(Duration::from_secs(1), || children_named(init, "sleep")
            .is_empty()),
        "sleep {sleeps:?} survived Ctrl-C"
    );
    // The interrupt reached the job, not the runtime: it still relays.
    assert!(term.running(), "the runtime died of Ctrl-C");
    term.type_in("echo after-$((2+3))\r");
    term.expect("after-5", REPLY_TIMEOUT);
    term.expect(PROMPT, REPLY_TIMEOUT);

    term.type_in("exit\r");
    assert_eq!(term.wait(Duration::from_secs(3)), 0);
}

#[test]
fn run_in_a_terminal_exits_with_the_process_code_and_restores_the_terminal() {
    let mut t = Test::new("term_run_exit");
    let id = t.id.clone();
    interactive_sh(&mut t);
    t.write_config();
    let bundle = t.bundle_str();
    let mut term = Term::spawn(&t, 24, 80, &["run", "--bundle", &bundle, &id]);
    let cooked = LocalFlags::ICANON | LocalFlags::ECHO;
    assert!(
        local_flags(term.slave.as_fd()).contains(cooked),
        "a fresh pty is not in cooked mode"
    );
    term.expect(PROMPT, START_TIMEOUT);
    // While the shell runs, keys go to it one by one: our side is raw.
    let during = local_flags(term.slave.as_fd());
    assert!(
        !during.intersects(cooked),
        "the runtime's terminal is not raw while the shell runs: {during:?}"
    );

    term.type_in("exit 7\r");
    assert_eq!(term.wait(Duration::from_secs(3)), 7);
    let after = local_flags(term.slave.as_fd());
    assert!(
        after.contains(cooked),
        "the terminal was left without ICANON/ECHO: {after:?}"
    );
    // A foreground run deletes its container when the process is gone.
    assert!(
        t.state(&id).is_none(),
        "the container is still there after run returned"
    );
}

#[test]
fn exec_tty_in_a_terminal_runs_an_interactive_shell_and_returns_its_code() {
    let mut t = Test::new("term_exec");
    let id = t.id.clone();
    t.args(&["sleep", "100"]);
    with_prompt(&mut t);
    let (_, init) = t.create_and_start(&id);

    let mut term = Term::spawn(&t, 33, 101, &["exec", "-t", &id, "sh"]);
    term.expect(PROMPT, START_TIMEOUT);
    term.type_in("echo size=$(stty size)=$((4+4))\r");
    term.expect("size=33 101=8", REPLY_TIMEOUT);
    term.expect(PROMPT, REPLY_TIMEOUT);
    term.type_in("echo hi-$((1+1))\r");
    term.expect("hi-2", REPLY_TIMEOUT);
    term.expect(PROMPT, REPLY_TIMEOUT);
    term.type_in("[ -t 0 ] && echo is-tty-$((3*3))\r");
    term.expect("is-tty-9", REPLY_TIMEOUT);
    term.expect(PROMPT, REPLY_TIMEOUT);

    term.type_in("exit 3\r");
    assert_eq!(term.wait(Duration::from_secs(3)), 3);
    // Only the exec'd shell ended.
    assert_eq!(t.status(&id), "running");
    assert!(!crate::util::is_gone(init), "the container's init is gone");
}

#[test]
fn run_detached_with_a_terminal_and_no_console_socket_is_refused() {
    let mut t = Test::new("term_run_detach");
    let id = t.id.clone();
    interactive_sh(&mut t);
    let out = t.run_with(&id, &["-d"]);
    out.fails().stderr_has(&format!(
        "cannot allocate tty if {} will detach without setting console socket",
        runtime_name()
    ));
    t.assert_nothing_left(&id);
}

#[test]
fn run_with_stdin_redirected_uses_the_terminal_on_stdout() {
    // runc takes the first of stderr, stdout and stdin that is a terminal (else /dev/tty) for
    // raw mode and the window size, and still relays stdin: `run ID < script` in a terminal.
    let mut t = Test::new("term_run_stdin_file");
    let id = t.id.clone();
    interactive_sh(&mut t);
    t.write_config();
    let bundle = t.bundle_str();
    let script = t.path("script");
    std::fs::write(&script, "echo size=$(stty size)=$((4+4))\nexit 5\n").unwrap();
    let stdin = std::fs::File::open(&script).unwrap();
    let mut term =
        Term::spawn_with_stdin(&t, 33, 101, &["run", "--bundle", &bundle, &id], Some(stdin));
    assert_eq!(term.wait(Duration::from_secs(4)), 5);
    term.expect("=8", Duration::from_millis(500));
    let all = String::from_utf8_lossy(&term.seen).into_owned();
    assert!(
        all.contains("size=33 101=8"),
        "the container's terminal did not get stdout's size: {all:?}"
    );
    // Our terminal was raw while the runtime relayed: its own ONLCR would have made the
    // container's \r\n into \r\r\n.
    assert!(
        !all.contains("\r\r\n"),
        "the terminal on stdout was not in raw mode: {all:?}"
    );
    let after = local_flags(term.slave.as_fd());
    assert!(
        after.contains(LocalFlags::ICANON | LocalFlags::ECHO),
        "{after:?}"
    );
}

#[test]
fn exec_tty_killed_by_a_signal_exits_128_plus_it_after_relaying_all_output() {
    let mut t = Test::new("term_exec_killed");
    let id = t.id.clone();
    t.args(&["sleep", "100"]);
    with_prompt(&mut t);
    t.create_and_start(&id);

    let mut term = Term::spawn(&t, 24, 80, &["exec", "-t", &id, "sh"]);
    term.expect(PROMPT, START_TIMEOUT);
    // The shell is no pid 1 here, so SIGKILL from itself ends it.
    term.type_in("seq 1 5000; kill -9 $$\r");
    assert_eq!(term.wait(Duration::from_secs(3)), 128 + libc::SIGKILL);
    // Everything the shell wrote before it died came through before the runtime exited.
    term.expect("\n4999\r\n5000\r\n", Duration::from_millis(500));
    assert_eq!(t.status(&id), "running");
}

#[test]
fn captured_output_of_a_terminal_process_has_plain_newlines() {
    // stdout a pipe, as in a script (or runc's own integration suite): the pty's ONLCR is
    // cleared, as runc clears it, so lines end in \n; on a terminal (above) they end in \r\n.
    if skip_on_runc("runc needs a controlling terminal (/dev/tty) to relay a terminal") {
        return;
    }
    let mut t = Test::new("term_captured");
    let id = t.id.clone();
    t.config["process"]["terminal"] = json!(true);
    t.args(&["printf", "a\\nb\\n"]);
    let out = t.run();
    out.ok();
    assert_eq!(out.stdout, "a\nb\n");

    t.config["process"]["terminal"] = json!(false);
    t.args(&["sleep", "100"]);
    t.create_and_start(&id);
    let out = t.hull(&["exec", "-t", &id, "printf", "c\\nd\\n"]);
    out.ok();
    assert_eq!(out.stdout, "c\nd\n");
}
