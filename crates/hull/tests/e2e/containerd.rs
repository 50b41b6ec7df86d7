//! containerd 1.6 (`ctr` and the runc v2 shim, `io.containerd.runc.v2`) drives hull. Every
//! test starts a private containerd under its own Scratch dir — root, state, gRPC and ttrpc
//! sockets, TMPDIR (the shim's console sockets and process.json files) and, through
//! `ctr --fifo-dir`, the IO fifos — with the CRI plugin disabled, imports the busybox image,
//! and puts every container's cgroup under the Scratch cgroup parent (`ctr run --cgroup`).
//!
//! containerd 1.6 gives the runc shim its options (`BinaryName`, `Root`, `SystemdCgroup`)
//! only from the container record: `ctr run --runc-binary/--runc-root` writes them there,
//! and the CRI plugin writes them from its `runtimes.<handler>.options` in config.toml. The
//! plain `ctr` tests use the first; `path_registration` puts a `runc` in containerd's PATH,
//! which the shim runs when no `BinaryName` is set. Either way hull gets the shim's
//! `--root <Root>/<namespace>` with `Root` inside the Scratch dir.
//!
//! The one thing a 1.6 shim puts outside: its ttrpc socket, `/run/containerd/s/<sha256>`
//! (a fixed path). The shim removes it when it exits; teardown removes those it left.

use std::fs;
use std::ops::Deref;
use std::process::Command;
use std::time::Duration;

use crate::common::{hull, run, run_timeout, Background, Output, Scratch};
use crate::containerd_daemon::{containerd_config, ContainerdDaemon, IMAGE};
use crate::pty::shell_session;
use crate::util;

const RUNC: &str = "/usr/sbin/runc";
/// The containerd namespace every test works in.
const NS: &str = "hull-e2e";

/// How the runc shim is told to run hull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// `ctr run --runc-binary <wrapper> --runc-root <root>`: the shim's `options.BinaryName`
    /// and `options.Root`, stored with the container.
    RuncBinary,
    /// A wrapper named `runc` first in containerd's PATH; `ctr run --runc-root <root>` only.
    Path,
}

/// One test's private containerd, with hull registered as `reg` says.
struct Containerd {
    d: ContainerdDaemon,
    reg: Registration,
    /// The cgroup every container goes under.
    parent: String,
}

impl Deref for Containerd {
    type Target = ContainerdDaemon;
    fn deref(&self) -> &ContainerdDaemon {
        &self.d
    }
}

impl Containerd {
    /// A private containerd, running, with the busybox image imported.
    fn new(name: &str, reg: Registration) -> Containerd {
        let s = Scratch::new(name);
        let parent = s.cgroup_parent();
        fs::create_dir_all(s.path("fifo")).unwrap();
        let (wrapper, in_path) = match reg {
            Registration::RuncBinary => ("hull", false),
            Registration::Path => ("runc", true),
        };
        let d = ContainerdDaemon::start(
            s,
            NS,
            wrapper,
            in_path,
            |dir, _, _| containerd_config(dir, false),
            &["sh"],
        );
        Containerd { d, reg, parent }
    }

    /// The cgroup of container `id`.
    fn cgroup(&self, id: &str) -> String {
        format!("{}/{id}", self.parent)
    }

    /// The `ctr run` flags that make container `id` a hull container of this test: the
    /// runtime options, its cgroup, the fifo dir.
    fn run_flags(&self, id: &str) -> Vec<String> {
        self.shims.borrow_mut().push(id.to_owned());
        let mut f = Vec::new();
        if self.reg == Registration::RuncBinary {
            f.push("--runc-binary".to_owned());
            f.push(self.wrapper.to_string_lossy().into_owned());
        }
        f.push("--runc-root".to_owned());
        f.push(self.root.to_string_lossy().into_owned());
        f.push("--cgroup".to_owned());
        f.push(self.cgroup(id));
        f.push("--fifo-dir".to_owned());
        f.push(self.s.path("fifo").to_string_lossy().into_owned());
        f
    }

    /// `ctr run <OPTS…> <run_flags> IMAGE ID CMD…`
    fn run_cmd(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Command {
        let flags = self.run_flags(id);
        let mut c = self.cmd(&["run"]);
        c.args(opts).args(&flags).arg(IMAGE).arg(id).args(cmd);
        c
    }

    fn run_ctr(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Output {
        run(&mut self.run_cmd(opts, id, cmd))
    }

    /// `ctr run -d` of `cmd` as container `id`; its init's host pid.
    #[track_caller]
    fn start_detached(&self, opts: &[&str], id: &str, cmd: &[&str]) -> i32 {
        let mut all = vec!["-d"];
        all.extend_from_slice(opts);
        let out = self.run_ctr(&all, id, cmd);
        assert!(out.success(), "{}", self.diag(&out));
        let (pid, status) = self.task(id).unwrap_or_default();
        assert_eq!(status, "RUNNING", "{}", self.logs());
        pid
    }

    /// `ctr task exec` flags for one exec of this test.
    fn exec_cmd(&self, opts: &[&str], id: &str, exec_id: &str, cmd: &[&str]) -> Command {
        let fifo = self.s.path("fifo");
        let mut c = self.cmd(&["task", "exec", "--exec-id", exec_id, "--fifo-dir"]);
        c.arg(&fifo).args(opts).arg(id).args(cmd);
        c
    }

    fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> Output {
        run(&mut self.exec_cmd(&[], id, exec_id, cmd))
    }

    /// `ctr task ls` of `id`: its pid and status.
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let out = self.ok(&["task", "ls"]);
        out.stdout.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == id).then(|| (f[1].parse().unwrap_or(0), f[2].to_owned()))
        })
    }

    /// Waits until `ctr task ls` shows `status` for `id`.
    #[track_caller]
    fn wait_status(&self, id: &str, status: &str) {
        let mut last = None;
        let ok = util::wait_until(Duration::from_secs(20), || {
            last = self.task(id);
            last.as_ref().map(|t| t.1.as_str()) == Some(status)
        });
        assert!(ok, "{id} is {last:?}, not {status}\n{}", self.logs());
    }

    /// Asserts nothing of container `id` is left: no hull state, no cgroup, no shim.
    #[track_caller]
    fn assert_gone(&self, id: &str) {
        let state = self.hull_root().join(id);
        let shim = self.shim_socket(id);
        let cg = self.cgroup(id);
        let ok = util::wait_until(Duration::from_secs(10), || {
            !state.exists()
                && util::existing_cgroups(&cg).is_empty()
                && !shim.exists()
                && self.shim_pids(id).is_empty()
        });
        assert!(
            ok,
            "{id} left: state {} {}, cgroups {:?}, shim socket {} {}, shim pids {:?}\n{}",
            state.display(),
            state.exists(),
            util::existing_cgroups(&cg),
            shim.display(),
            shim.exists(),
            self.shim_pids(id),
            self.logs()
        );
    }

    /// Live shim processes of container `id` (`containerd-shim-runc-v2 … -id <id> -address
    /// <our sock>`).
    fn shim_pids(&self, id: &str) -> Vec<i32> {
        let sock = self.sock.to_string_lossy().into_owned();
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| !util::is_gone(pid))
            .filter(|pid| {
                let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let argv: Vec<String> = raw
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                argv.first().is_some_and(|a| a.contains("containerd-shim"))
                    && argv.windows(2).any(|w| w[0] == "-id" && w[1] == id)
                    && argv.iter().any(|a| a == &sock)
            })
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Through containerd (hull's kill and delete); ContainerdDaemon's drop does the rest.
        let listed = self.ctr(&["container", "ls", "-q"]);
        for id in listed.stdout.split_whitespace() {
            let _ = run_timeout(
                &mut self.cmd(&["task", "kill", "-s", "SIGKILL", id]),
                Duration::from_secs(10),
            );
            let _ = run_timeout(
                &mut self.cmd(&["task", "delete", "--force", id]),
                Duration::from_secs(20),
            );
            let _ = run_timeout(
                &mut self.cmd(&["container", "delete", id]),
                Duration::from_secs(10),
            );
            self.shims.borrow_mut().push(id.to_owned());
        }
    }
}

/// `ctr task metrics` table as (name, value) pairs.
fn metrics(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_owned(), f.next()?.to_owned()))
        })
        .collect()
}

fn metric(table: &[(String, String)], name: &str) -> Option<u64> {
    table
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn run_output_exit_env_cwd() {
    let c = Containerd::new("ctr-run", Registration::RuncBinary);
    let out = c.run_ctr(
        &["--rm", "--env", "GREETING=hello from ctr", "--cwd", "/tmp"],
        "plain",
        &["sh", "-c", "echo \"$GREETING\"; pwd; id -u; exit 3"],
    );
    assert_eq!(out.code, 3, "{}", c.diag(&out));
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["hello from ctr", "/tmp", "0"],
        "{}",
        c.diag(&out)
    );
    c.assert_hull_ran("plain");
    // --rm: the shim deleted it through hull.
    assert!(
        !c.calls.of("delete", "plain").is_empty(),
        "no hull delete:\n{}",
        c.logs()
    );
    c.assert_gone("plain");

    // Output on stdout and stderr, exit 0; the image's default command and env.
    let out = c.run_ctr(
        &["--rm"],
        "second",
        &["sh", "-c", "echo out; echo err >&2; echo $PATH"],
    );
    assert!(out.success(), "{}", c.diag(&out));
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "out",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ],
        "{}",
        c.diag(&out)
    );
    assert_eq!(out.stderr.trim(), "err", "{}", c.diag(&out));
    c.assert_hull_ran("second");
}

#[test]
fn run_tty() {
    let c = Containerd::new("ctr-tty", Registration::RuncBinary);
    let cmd = c.run_cmd(&["--rm", "-t"], "tty", &["sh"]);
    // The needles are spelt differently in the echoed input.
    let (text, code) = shell_session(
        cmd,
        "echo $((6*7)); tty; stty size; test -t 0 && echo in-t''ty; exit 5\n",
        "in-tty",
        || c.logs(),
    );
    assert!(
        text.contains("42")
            && text.contains("/dev/pts/0")
            && text.contains("24 80")
            && text.contains("in-tty"),
        "{text:?}\n{}",
        c.logs()
    );
    assert_eq!(code, Some(5), "{text:?}\n{}", c.logs());
    c.assert_hull_ran("tty");
    assert!(
        c.calls
            .of("create", "tty")
            .iter()
            .any(|l| l.contains("--console-socket")),
        "no create with --console-socket:\n{}",
        c.logs()
    );
    c.assert_gone("tty");
}

#[test]
fn detached_task_lifecycle() {
    let c = Containerd::new("ctr-task", Registration::RuncBinary);
    let id = "box";
    let pid = c.start_detached(&["--memory-limit", "67108864"], id, &["sleep", "300"]);
    c.assert_hull_ran(id);
    let cg = util::CgView::of(&c.cgroup(id));
    assert!(cg.exists(), "{cg:?} missing");
    let procs = cg.procs();
    assert!(procs.contains(&pid), "init {pid} not in {cg:?}: {procs:?}");
    assert_eq!(cg.memory_limit(), "67108864");
    // hull keeps it under the shim's --root and agrees on the pid.
    let st = run(Command::new(hull())
        .arg("--root")
        .arg(c.hull_root())
        .args(["state", id]));
    let state: serde_json::Value = serde_json::from_str(&st.stdout).unwrap_or_default();
    assert!(
        state["status"] == "running" && state["pid"] == pid,
        "{st}\n{}",
        c.logs()
    );

    // exec: output, cwd, exit code.
    let out = c.exec(id, "e1", &["sh", "-c", "echo in $(pwd); exit 5"]);
    assert_eq!(out.code, 5, "{}", c.diag(&out));
    assert_eq!(out.stdout.trim(), "in /", "{}", c.diag(&out));
    let out = run(&mut c.exec_cmd(&["--cwd", "/tmp"], id, "e2", &["pwd"]));
    assert!(out.success(), "{}", c.diag(&out));
    assert_eq!(out.stdout.trim(), "/tmp", "{}", c.diag(&out));
    let execs = c.calls.of("exec", id);
    assert!(
        execs.len() >= 2
            && execs
                .iter()
                .all(|l| l.contains("--process") && l.contains("--detach")),
        "{}",
        c.logs()
    );

    // A detached exec keeps running: ps lists it next to the init (through `hull ps`).
    let out = run(&mut c.exec_cmd(&["-d"], id, "bg", &["sleep", "300"]));
    assert!(out.success(), "{}", c.diag(&out));
    let mut pids = Vec::new();
    let listed = util::wait_until(Duration::from_secs(10), || {
        let out = c.ok(&["task", "ps", id]);
        pids = out
            .stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse::<i32>().ok())
            .collect();
        pids.len() == 2
    });
    assert!(listed && pids.contains(&pid), "{pids:?}\n{}", c.logs());
    assert!(
        c.calls
            .of("ps", id)
            .iter()
            .any(|l| l.ends_with(&format!("ps --format json {id}"))),
        "{}",
        c.logs()
    );

    // pause / resume: the task's status and the freezer.
    c.ok(&["task", "pause", id]);
    c.wait_status(id, "PAUSED");
    assert!(cg.frozen(), "{cg:?} is not frozen");
    assert_eq!(c.calls.of("pause", id).len(), 1, "{}", c.logs());
    // metrics: the shim reads the cgroups of the init (paused or not), under v1's or
    // cgroup2's names.
    let out = c.ok(&["task", "metrics", id]);
    let m = metrics(&out.stdout);
    let (limit, usage) = if cg.is_v2() {
        ("memory.usage_limit", "memory.usage")
    } else {
        ("memory.limit_in_bytes", "memory.usage_in_bytes")
    };
    assert_eq!(metric(&m, limit), Some(67108864), "{}", c.diag(&out));
    assert!(metric(&m, usage).unwrap_or(0) > 0, "{}", c.diag(&out));
    assert_eq!(metric(&m, "pids.current"), Some(2), "{}", c.diag(&out));
    c.ok(&["task", "resume", id]);
    c.wait_status(id, "RUNNING");
    assert!(cg.thawed(), "{cg:?} is not thawed");
    assert_eq!(c.calls.of("resume", id).len(), 1, "{}", c.logs());
    let out = c.exec(id, "e3", &["true"]);
    assert!(out.success(), "{}", c.diag(&out));

    // kill: SIGTERM by default (sleep as pid 1 has no handler: it stays), then SIGKILL.
    c.ok(&["task", "kill", id]);
    assert!(
        c.calls
            .of("kill", id)
            .iter()
            .any(|l| l.ends_with(&format!("kill {id} 15"))),
        "{}",
        c.logs()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.task(id).map(|t| t.1), Some("RUNNING".to_owned()));
    c.ok(&["task", "kill", "-s", "SIGKILL", id]);
    c.wait_status(id, "STOPPED");
    assert!(
        c.calls
            .of("kill", id)
            .iter()
            .any(|l| l.ends_with(&format!("kill {id} 9"))),
        "{}",
        c.logs()
    );
    assert!(util::is_gone(pid), "init {pid} still there");
    // delete reports the exit status.
    let out = c.ok(&["task", "delete", id]);
    assert!(out.stderr.contains("exit code 137"), "{}", c.diag(&out));
    assert!(!c.calls.of("delete", id).is_empty(), "{}", c.logs());
    c.ok(&["container", "delete", id]);
    c.assert_gone(id);
    let out = c.ok(&["container", "ls", "-q"]);
    assert_eq!(out.stdout.trim(), "", "{}", c.diag(&out));
}

/// The status of a process stopped by `ctr task kill` reaches a foreground `ctr run`.
#[test]
fn kill_status_reaches_ctr_run() {
    let c = Containerd::new("ctr-kill", Registration::RuncBinary);
    let cmd = c.run_cmd(
        &["--rm"],
        "polite",
        &[
            "sh",
            "-c",
            "trap 'exit 9' TERM; while :; do sleep 0.1; done",
        ],
    );
    let mut fg = Background::spawn(cmd, c.s.path("polite.out"));
    c.wait_status("polite", "RUNNING");
    c.ok(&["task", "kill", "polite"]);
    let code = fg.wait(Duration::from_secs(20));
    assert_eq!(code, Some(9), "{}\n{}", fg.output(), c.logs());
    c.assert_hull_ran("polite");
    c.assert_gone("polite");

    let cmd = c.run_cmd(&["--rm"], "killed", &["sleep", "300"]);
    let mut fg = Background::spawn(cmd, c.s.path("killed.out"));
    c.wait_status("killed", "RUNNING");
    c.ok(&["task", "kill", "--signal", "SIGKILL", "killed"]);
    let code = fg.wait(Duration::from_secs(20));
    assert_eq!(code, Some(137), "{}\n{}", fg.output(), c.logs());
    c.assert_gone("killed");
}

#[test]
fn exec_tty() {
    let c = Containerd::new("ctr-exec-tty", Registration::RuncBinary);
    let id = "box";
    c.start_detached(&[], id, &["sleep", "300"]);
    let cmd = c.exec_cmd(&["-t"], id, "tty1", &["sh"]);
    let (text, code) = shell_session(
        cmd,
        "echo $((6*7)); tty; stty size; exit 4\n",
        "24 80",
        || c.logs(),
    );
    assert!(
        text.contains("42") && text.contains("/dev/pts/") && text.contains("24 80"),
        "{text:?}\n{}",
        c.logs()
    );
    assert_eq!(code, Some(4), "{text:?}\n{}", c.logs());
    assert!(
        c.calls
            .of("exec", id)
            .iter()
            .any(|l| l.contains("--console-socket") && l.contains("--detach")),
        "no exec with --console-socket:\n{}",
        c.logs()
    );
    // The container is still running after all that.
    assert_eq!(c.task(id).map(|t| t.1), Some("RUNNING".to_owned()));
}

/// A create that fails in hull: containerd shows hull's one-line message (the last
/// `"level":"error"` entry of `<bundle>/log.json`) worded as runc words it, and nothing is
/// left behind.
#[test]
fn failed_create_shows_hull_error() {
    let c = Containerd::new("ctr-err", Registration::RuncBinary);
    let out = c.run_ctr(&["--rm"], "missing", &["/nonexistent"]);
    assert_eq!(out.code, 1, "{}", c.diag(&out));
    let want = "ctr: failed to create shim task: OCI runtime create failed: hull create failed: \
                unable to start container process: exec: \"/nonexistent\": stat /nonexistent: \
                no such file or directory: unknown";
    assert_eq!(out.stderr.trim(), want, "{}", c.diag(&out));
    assert!(!c.calls.of("create", "missing").is_empty(), "{}", c.logs());
    c.assert_gone("missing");
    assert!(
        !c.bundle("missing").exists(),
        "bundle left: {}",
        c.bundle("missing").display()
    );
    let out = c.ok(&["container", "ls", "-q"]);
    assert_eq!(out.stdout.trim(), "", "{}", c.diag(&out));

    // runc's message, through the same shim, is the same but for the runtime's name.
    let runc_root = c.s.path("runc-root");
    let mut cmd = c.cmd(&["run", "--rm", "--runc-binary", RUNC, "--runc-root"]);
    cmd.arg(&runc_root)
        .arg("--cgroup")
        .arg(c.cgroup("runc-missing"))
        .arg("--fifo-dir")
        .arg(c.s.path("fifo"))
        .args([IMAGE, "runc-missing", "/nonexistent"]);
    c.shims.borrow_mut().push("runc-missing".to_owned());
    let runc_out = run(&mut cmd);
    assert_eq!(
        runc_out.stderr.trim().replace("runc create", "hull create"),
        want,
        "{runc_out}"
    );

    // A failing exec: hull's exec error.
    c.start_detached(&[], "up", &["sleep", "300"]);
    let out = c.exec("up", "bad", &["/nonexistent"]);
    assert_eq!(out.code, 1, "{}", c.diag(&out));
    assert_eq!(
        out.stderr.trim(),
        "ctr: OCI runtime exec failed: exec failed: unable to start container process: exec: \
         \"/nonexistent\": stat /nonexistent: no such file or directory: unknown",
        "{}",
        c.diag(&out)
    );
    let out = c.exec("up", "noexec", &["/etc/passwd"]);
    assert_eq!(out.code, 1, "{}", c.diag(&out));
    assert_eq!(
        out.stderr.trim(),
        "ctr: OCI runtime exec failed: exec failed: unable to start container process: exec: \
         \"/etc/passwd\": permission denied: unknown",
        "{}",
        c.diag(&out)
    );
    assert_eq!(c.task("up").map(|t| t.1), Some("RUNNING".to_owned()));
}

/// The shim runs `runc` from containerd's PATH when the container has no BinaryName: a
/// `runc` there that runs hull makes plain `ctr run` use hull.
#[test]
fn path_registration() {
    let c = Containerd::new("ctr-path", Registration::Path);
    let out = c.run_ctr(
        &["--rm", "--env", "V=path"],
        "viapath",
        &["sh", "-c", "echo $V; exit 2"],
    );
    assert_eq!(out.code, 2, "{}", c.diag(&out));
    assert_eq!(out.stdout.trim(), "path", "{}", c.diag(&out));
    c.assert_hull_ran("viapath");
    c.assert_gone("viapath");
}
