//! Test harness for the integration tests: a fresh directory, container id, `--root` and
//! busybox bundle per test, a runner that drives the runtime binary under a deadline, and a
//! guard that tears everything down (containers, processes, mounts, files) even when the
//! test fails.
//!
//! The runtime under test is the built `hull`, or whatever `HULL_TEST_RUNTIME` names (e.g.
//! `/usr/sbin/runc`, to check the tests themselves against the reference runtime).

#![allow(dead_code)]

use std::cell::RefCell;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The reference runtime used by the differential tests.
pub const RUNC: &str = "/usr/sbin/runc";
/// The static busybox copied into every rootfs.
pub const BUSYBOX: &str = "/usr/bin/busybox";

/// How long one runtime call may take before it is killed and the test fails.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a container's processes get to exit, or its state to change, before a test fails.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// One mebibyte, for memory limits.
pub const MIB: u64 = 1024 * 1024;

/// The runtime binary under test.
pub fn runtime() -> PathBuf {
    match std::env::var_os("HULL_TEST_RUNTIME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_hull")),
    }
}

/// The short name the runtime uses for itself (`hull`, `runc`).
pub fn runtime_name() -> String {
    runtime()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn is_runc() -> bool {
    runtime_name().contains("runc")
}

/// Tests of behaviour where hull deliberately follows the runtime-spec (or the validation
/// suite) and runc 1.1.5 does not. They are skipped under runc unless `HULL_TEST_STRICT=1`,
/// which lets one watch them fail on runc (proving they can fail at all).
pub fn skip_on_runc(why: &str) -> bool {
    if is_runc() && std::env::var_os("HULL_TEST_STRICT").is_none() {
        hull_testing::report(
            &hull_testing::test_name(),
            &format!("under runc (known to differ: {why}); set HULL_TEST_STRICT=1 to run"),
        );
        true
    } else {
        false
    }
}

/// Rendered once: `busybox --list`, the applets symlinked into each rootfs.
fn busybox_applets() -> &'static [String] {
    static APPLETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .expect("run busybox --list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|a| !a.is_empty() && a != "busybox")
            .collect()
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    // The trailing separator keeps one id from being a prefix of another (…-1 vs …-10).
    format!("{name}-{}-{n:03}x", std::process::id())
}

/// What one runtime call did.
#[derive(Debug, Clone)]
pub struct Out {
    pub args: Vec<String>,
    /// Exit code, or `128 + signal` when killed by a signal (the shell convention).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Where stdout went: a detached container keeps writing here after the call returns.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub timed_out: bool,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }

    /// Panics with the whole call unless it exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Out {
        assert!(self.success(), "expected success:\n{self}");
        self
    }

    /// Panics unless the call failed (exited 1, as runc does for every error).
    #[track_caller]
    pub fn fails(&self) -> &Out {
        assert!(
            !self.timed_out && self.code == 1,
            "expected exit status 1:\n{self}"
        );
        self
    }

    /// Panics unless stderr mentions `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Out {
        assert!(
            self.stderr.contains(needle),
            "expected stderr to contain {needle:?}:\n{self}"
        );
        self
    }

    /// Panics unless stderr is one line (a refusal names its cause in one line).
    #[track_caller]
    pub fn one_line(&self) -> &Out {
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "expected one line:\n{self}"
        );
        self
    }

    /// The stdout file read again now (for containers that write after the call returned).
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  command: {}", self.args.join(" "))?;
        writeln!(
            f,
            "  status:  {}{}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" }
        )?;
        writeln!(f, "  stdout:  {:?}", self.stdout)?;
        write!(f, "  stderr:  {:?}", self.stderr)
    }
}

/// Knobs for one runtime call beyond its arguments.
#[derive(Debug, Default, Clone)]
pub struct Call {
    /// Binary to run instead of the runtime under test.
    pub bin: Option<PathBuf>,
    /// `--root` to pass; `None` uses the test's own root. `Some("")` passes none.
    pub root: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub cwd: Option<PathBuf>,
    /// `(open fd in this process, fd number in the child)`: handed to the runtime without
    /// close-on-exec.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Set in the runtime's environment.
    pub env: Vec<(String, String)>,
    /// Run the runtime as this uid (and the same gid, no additional groups).
    pub uid: Option<u32>,
}

/// One test's world. Dropping it deletes its containers, kills the processes it recorded,
/// unmounts whatever is left under its directory and removes the directory.
#[derive(Debug)]
pub struct Test {
    pub name: String,
    /// The test's private directory (mode 0755, under /tmp).
    pub dir: PathBuf,
    /// The runtime's `--root` for this test.
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The main container id; `new_id` hands out more.
    pub id: String,
    /// The config written to `bundle/config.json` by `write_config` (and by `run`/`create`).
    pub config: Value,
    containers: RefCell<Vec<(PathBuf, PathBuf, String)>>,
    pids: RefCell<Vec<i32>>,
    calls: RefCell<u32>,
}

impl Test {
    /// A fresh directory, id, root and busybox bundle with the base config.
    pub fn new(name: &str) -> Test {
        let uname = unique(name);
        let dir = PathBuf::from(format!("/tmp/hull-it.{uname}"));
        mkdir(&dir, 0o755);
        let root = dir.join("state");
        let bundle = dir.join("bundle");
        let rootfs = bundle.join("rootfs");
        mkdir(&bundle, 0o755);
        make_rootfs(&rootfs);
        let t = Test {
            name: name.to_string(),
            id: uname.clone(),
            config: base_config(),
            dir,
            root,
            bundle,
            rootfs,
            containers: RefCell::new(Vec::new()),
            pids: RefCell::new(Vec::new()),
            calls: RefCell::new(0),
        };
        t.track(&runtime(), &t.root, &t.id);
        t
    }

    /// Another unique container id, cleaned up by the guard like the main one.
    pub fn new_id(&self) -> String {
        let id = unique(&self.name);
        self.track(&runtime(), &self.root, &id);
        id
    }

    /// Registers a container (runtime, root, id) for `delete --force` on drop.
    pub fn track(&self, bin: &Path, root: &Path, id: &str) {
        self.containers
            .borrow_mut()
            .push((bin.to_path_buf(), root.to_path_buf(), id.to_string()));
    }

    /// Registers a pid to SIGKILL on drop.
    pub fn track_pid(&self, pid: i32) {
        self.pids.borrow_mut().push(pid);
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Test {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Sets `process.args` to `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Test {
        self.args(&["sh", "-c", script])
    }

    /// Appends a mount to the config.
    pub fn mount(&mut self, m: Value) -> &mut Test {
        self.config["mounts"].as_array_mut().unwrap().push(m);
        self
    }

    /// Adds `{"type": ty}` (or with a path) to `linux.namespaces`, unless already there.
    pub fn add_namespace(&mut self, ty: &str, path: Option<&str>) -> &mut Test {
        let nss = self.config["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != ty);
        let mut ns = json!({ "type": ty });
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        nss.push(ns);
        self
    }

    /// Removes a namespace type from `linux.namespaces`.
    pub fn remove_namespace(&mut self, ty: &str) -> &mut Test {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != ty);
        self
    }

    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.bundle.join("config.json"), text).unwrap();
    }

    /// A directory under the test dir (created, mode 0755).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.dir.join(rel);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn bundle_str(&self) -> String {
        self.bundle.to_string_lossy().into_owned()
    }

    pub fn root_str(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    /// Runs the runtime under test as `RUNTIME --root ROOT ARGS…`.
    pub fn hull(&self, args: &[&str]) -> Out {
        self.call(args, &Call::default())
    }

    /// Runs a runtime call with stdio redirected to files (so a container that inherits
    /// them cannot hold the call open), killing it at the deadline.
    pub fn call(&self, args: &[&str], c: &Call) -> Out {
        self.launch(args, c, None).wait()
    }

    /// Starts a runtime call as `call` does (stdin from `input`, or none) without waiting.
    fn launch(&self, args: &[&str], c: &Call, input: Option<&str>) -> Pending {
        let bin = c.bin.clone().unwrap_or_else(runtime);
        let n = {
            let mut calls = self.calls.borrow_mut();
            *calls += 1;
            *calls
        };
        let out_dir = self.dir.join("calls");
        fs::create_dir_all(&out_dir).unwrap();
        let stdout_path = out_dir.join(format!("{n}.stdout"));
        let stderr_path = out_dir.join(format!("{n}.stderr"));

        let mut argv: Vec<String> = Vec::new();
        match &c.root {
            None => {
                argv.push("--root".into());
                argv.push(self.root_str());
            }
            Some(r) if r.as_os_str().is_empty() => {}
            Some(r) => {
                argv.push("--root".into());
                argv.push(r.to_string_lossy().into_owned());
            }
        }
        argv.extend(args.iter().map(|a| a.to_string()));

        let mut cmd = Command::new(&bin);
        // A process group of its own: a runtime bug that signals its group (kill(0, …))
        // then fails that call instead of killing the whole test binary.
        cmd.process_group(0);
        cmd.args(&argv)
            .stdout(fs::File::create(&stdout_path).unwrap())
            .stderr(fs::File::create(&stderr_path).unwrap());
        match input {
            Some(text) => {
                let stdin_path = out_dir.join(format!("{n}.stdin"));
                fs::write(&stdin_path, text).unwrap();
                cmd.stdin(fs::File::open(&stdin_path).unwrap());
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        if let Some(cwd) = &c.cwd {
            cmd.current_dir(cwd);
        }
        cmd.envs(c.env.iter().map(|(k, v)| (k, v)));
        if let Some(uid) = c.uid {
            cmd.uid(uid).gid(uid);
        }
        if !c.fds.is_empty() {
            let fds = c.fds.clone();
            // SAFETY: the closure only calls dup2 and fcntl (async-signal-safe) and allocates
            // nothing, as code between fork and exec must.
            unsafe {
                cmd.pre_exec(move || hand_over_fds(&fds));
            }
        }
        // A copy of the runtime made by a test (rootless_test) may still be open for writing
        // in a child another test thread forked meanwhile, until that child execs: ETXTBSY
        // for a moment, not a failure.
        let mut tries = 0;
        let child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 200 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => break r.unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display())),
            }
        };
        let mut shown = vec![bin.to_string_lossy().into_owned()];
        shown.extend(argv);
        if let Some(text) = input {
            shown.push(format!("< {text:?}"));
        }
        Pending {
            child,
            args: shown,
            stdout_path,
            stderr_path,
            deadline: Instant::now() + c.timeout.unwrap_or(CALL_TIMEOUT),
        }
    }

    /// `run --bundle B ID` in the foreground with the current config: the process's exit
    /// status and output.
    pub fn run(&self) -> Out {
        self.write_config();
        self.hull(&["run", "--bundle", &self.bundle_str(), &self.id])
    }

    /// `run` with another id and extra flags before the id.
    pub fn run_with(&self, id: &str, flags: &[&str]) -> Out {
        self.write_config();
        let b = self.bundle_str();
        let mut args = vec!["run", "--bundle", &b];
        args.extend_from_slice(flags);
        args.push(id);
        self.hull(&args)
    }

    /// Runs the process and returns its stdout, failing the test unless it exited 0.
    #[track_caller]
    pub fn output(&self) -> String {
        let out = self.run();
        out.ok();
        out.stdout
    }

    /// `create --bundle B --pid-file F ID`; returns the call and the pid read from the file.
    pub fn create(&self, id: &str) -> (Out, Option<i32>) {
        self.write_config();
        let pid_file = self.dir.join(format!("{id}.pid"));
        let out = self.hull(&[
            "create",
            "--bundle",
            &self.bundle_str(),
            "--pid-file",
            &pid_file.to_string_lossy(),
            id,
        ]);
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.parse::<i32>().ok());
        if let Some(p) = pid {
            self.track_pid(p);
        }
        (out, pid)
    }

    /// `state ID` parsed, or `None` if the call failed.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.hull(&["state", id]);
        if !out.success() {
            return None;
        }
        Some(serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("state JSON: {e}\n{out}")))
    }

    /// The `status` field of `state ID` (panics if the container does not exist).
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        let s = self
            .state(id)
            .unwrap_or_else(|| panic!("state {id} failed:\n{}", self.hull(&["state", id])));
        s["status"].as_str().unwrap_or_default().to_string()
    }

    /// Polls `state` until the status is `want` or the timeout passes; the last status.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> String {
        let mut st = String::new();
        wait_until(timeout, || {
            st = self
                .state(id)
                .map(|s| s["status"].as_str().unwrap_or_default().to_string())
                .unwrap_or_else(|| "<no state>".to_string());
            st == want
        });
        st
    }

    /// Mount points at or under the test directory, as this process sees them.
    pub fn mounts_left(&self) -> Vec<PathBuf> {
        mounts_under(&self.dir)
    }

    /// Processes that belong to container `id` of this test: in a cgroup named after it,
    /// with the id or the test dir on their command line, or with cwd/root under the test dir.
    pub fn processes_of(&self, id: &str) -> Vec<i32> {
        let me = std::process::id() as i32;
        let dir = self.dir.to_string_lossy().into_owned();
        let mut found = Vec::new();
        let Ok(entries) = fs::read_dir("/proc") else {
            return found;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            if is_gone(pid) {
                continue;
            }
            let p = e.path();
            let cg = fs::read_to_string(p.join("cgroup")).unwrap_or_default();
            let in_cgroup = cg.lines().any(|l| {
                l.splitn(3, ':')
                    .nth(2)
                    .is_some_and(|path| path.split('/').any(|c| c == id || c.contains(id)))
            });
            let cmdline = fs::read(p.join("cmdline")).unwrap_or_default();
            let on_cmdline = cmdline.split(|b| *b == 0).any(|a| {
                let a = String::from_utf8_lossy(a);
                a == id || a.starts_with(&dir)
            });
            let under = |link: &str| {
                fs::read_link(p.join(link))
                    .map(|l| l.starts_with(&self.dir))
                    .unwrap_or(false)
            };
            if in_cgroup || on_cmdline || under("cwd") || under("root") {
                found.push(pid);
            }
        }
        found
    }

    /// Asserts that a failed create of `id` left nothing: no state dir, no mounts under the
    /// test dir, no process.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str) {
        let state_dir = self.root.join(id);
        assert!(
            !state_dir.exists(),
            "state dir {} left behind",
            state_dir.display()
        );
        let mounts = self.mounts_left();
        assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
        // The runtime may take a moment to reap a failed init.
        self.assert_no_processes(id, Duration::from_secs(3));
    }

    /// Waits until no process of container `id` is left (see `processes_of`); panics naming
    /// those left at the timeout.
    #[track_caller]
    pub fn assert_no_processes(&self, id: &str, timeout: Duration) {
        let left = self.wait_no_processes(id, timeout);
        assert!(
            left.is_empty(),
            "processes of {id} left behind: {:?}",
            describe_pids(&left)
        );
    }
}

impl Drop for Test {
    fn drop(&mut self) {
        let containers = std::mem::take(&mut *self.containers.borrow_mut());
        for (bin, root, id) in containers {
            if root.join(&id).exists() {
                let c = Call {
                    bin: Some(bin),
                    root: Some(root),
                    timeout: Some(Duration::from_secs(15)),
                    ..Call::default()
                };
                let _ = self.call(&["delete", "--force", &id], &c);
            }
        }
        for pid in self.pids.borrow().iter() {
            if *pid > 1 {
                // SAFETY: kill(2) with a pid this test recorded for its own container.
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                }
            }
        }
        unmount_all_under(&self.dir);
        if std::env::var_os("HULL_TEST_KEEP").is_none() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                println!("cleanup: remove {}: {e}", self.dir.display());
            }
        }
    }
}

/// In the forked child: puts each `(src, dst)` fd at `dst` without close-on-exec.
fn hand_over_fds(fds: &[(RawFd, RawFd)]) -> std::io::Result<()> {
    for &(src, dst) in fds {
        let rc = if src == dst {
            // SAFETY: fcntl on an fd number; no memory is involved.
            let flags = unsafe { libc::fcntl(dst, libc::F_GETFD) };
            if flags < 0 {
                flags
            } else {
                // SAFETY: as above.
                unsafe { libc::fcntl(dst, libc::F_SETFD, flags & !libc::FD_CLOEXEC) }
            }
        } else {
            // SAFETY: dup2 on fd numbers; the new fd comes without close-on-exec.
            unsafe { libc::dup2(src, dst) }
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn mkdir(p: &Path, mode: u32) {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A busybox rootfs: /bin/busybox plus one symlink per applet, minimal /etc.
pub fn make_rootfs(rootfs: &Path) {
    mkdir(rootfs, 0o755);
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "etc",
        "root",
        "mnt",
        "usr/bin",
        "home/user",
    ] {
        mkdir(&rootfs.join(d), 0o755);
    }
    mkdir(&rootfs.join("tmp"), 0o1777);
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    fs::set_permissions(
        rootfs.join("bin/busybox"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    for applet in busybox_applets() {
        let _ = symlink("busybox", rootfs.join("bin").join(applet));
    }
    // Hooks name the same path before and after pivot_root.
    symlink("/bin/busybox", rootfs.join("usr/bin/busybox")).unwrap();
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         user:x:1000:1000:user:/home/user:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nwheel:x:10:\ndialout:x:20:\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
}

/// The base config: `runc spec`'s shape, with `terminal: false`, a writable root and a
/// hostname of our own. Tests edit it as a `serde_json::Value`.
pub fn base_config() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["true"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "hull-test",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Decodes the octal escapes of /proc/self/mountinfo (`\040` for a space, …).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points in this process's mount namespace at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Lazily unmounts everything at or under `dir`, deepest first, until nothing is left.
pub fn unmount_all_under(dir: &Path) {
    for _ in 0..20 {
        let mut mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in mounts {
            let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: umount2 on a NUL-terminated path this test owns.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}

/// Mounts a tmpfs at `target` in this (the host) mount namespace; the guard unmounts it.
pub fn mount_tmpfs(target: &Path) {
    fs::create_dir_all(target).unwrap();
    let t = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            t.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            c"size=1m".as_ptr().cast(),
        )
    };
    assert_eq!(
        rc,
        0,
        "mount tmpfs at {}: {}",
        target.display(),
        std::io::Error::last_os_error()
    );
}

/// The host's view of a namespace link, e.g. `net:[4026531840]`.
pub fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Capability names in bit order (kernel 6.x: 0..=40).
pub const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The bitmask /proc/PID/status shows for a set of capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names.iter().fold(0, |m, n| {
        let bit = CAPS
            .iter()
            .position(|c| c == n)
            .unwrap_or_else(|| panic!("unknown capability {n}"));
        m | 1 << bit
    })
}

/// `Key:\tvalue` lines of a /proc/PID/status dump, as a lookup.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// Opens a file for handing to a runtime call as an extra fd.
pub fn open_fd(path: &Path) -> fs::File {
    fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

pub fn raw(f: &fs::File) -> RawFd {
    f.as_raw_fd()
}

/// Writes `text` to `path`, creating parents.
pub fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    let mut f = fs::File::create(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Parses one `/proc/self/mountinfo` line into (mount point, per-mount options, fs type,
/// super options).
pub fn parse_mountinfo_line(l: &str) -> Option<(String, String, String, String)> {
    let (left, right) = l.split_once(" - ")?;
    let lf: Vec<&str> = left.split(' ').collect();
    let rf: Vec<&str> = right.split(' ').collect();
    Some((
        unescape_mountinfo(lf.get(4)?),
        lf.get(5)?.to_string(),
        rf.first()?.to_string(),
        rf.get(2).map(|s| s.to_string()).unwrap_or_default(),
    ))
}

/// The mountinfo entry for `mount_point` (the last, i.e. topmost, one).
pub fn mount_entry(mountinfo: &str, mount_point: &str) -> Option<(String, String, String, String)> {
    mountinfo
        .lines()
        .filter_map(parse_mountinfo_line)
        .rfind(|e| e.0 == mount_point)
}

/// A table's header words and the lines below it (`list`, `ps`).
pub fn split_table(text: &str) -> (Vec<&str>, std::str::Lines<'_>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    (header, lines)
}

/// Whether a comma-separated option list contains `opt`.
pub fn has_opt(opts: &str, opt: &str) -> bool {
    opts.split(',').any(|o| o == opt)
}

/// A runtime call started in the background by `Test::spawn_call`; `wait` collects it.
#[derive(Debug)]
pub struct Pending {
    child: std::process::Child,
    args: Vec<String>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    deadline: Instant,
}

impl Pending {
    /// Waits for the call (killing it at its deadline) and returns what it did.
    pub fn wait(mut self) -> Out {
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > self.deadline {
                timed_out = true;
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Out {
            args: self.args,
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            stdout_path: self.stdout_path,
            stderr_path: self.stderr_path,
            timed_out,
        }
    }
}

impl Test {
    /// Starts `RUNTIME --root ROOT ARGS…` without waiting for it, so that several calls can
    /// run at the same time; stdio goes to files as in `call`.
    pub fn spawn_call(&self, args: &[&str]) -> Pending {
        self.launch(args, &Call::default(), None)
    }

    /// `spawn_call` with the options of `c`.
    pub fn spawn_with(&self, args: &[&str], c: &Call) -> Pending {
        self.launch(args, c, None)
    }

    /// Polls until no process of container `id` is left (see `processes_of`); the ones left
    /// at the timeout.
    pub fn wait_no_processes(&self, id: &str, timeout: Duration) -> Vec<i32> {
        let mut procs = Vec::new();
        wait_until(timeout, || {
            procs = self.processes_of(id);
            procs.is_empty()
        });
        procs
    }
}

/// A test whose bundle config (`spec --rootless`'s, running `args`) and state root belong
/// to `uid`, and a call that runs, as `uid`, a copy of the runtime it can reach (the build
/// directory may be under a home that it cannot enter).
pub fn rootless_test(name: &str, uid: u32, args: &[&str]) -> (Test, Call) {
    let mut t = Test::new(name);
    let bin = t.dir.join("runtime");
    fs::copy(runtime(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(&t.root).unwrap();
    for p in [&t.bundle, &t.root] {
        std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
    }
    let c = Call {
        bin: Some(bin),
        uid: Some(uid),
        cwd: Some(t.bundle.clone()),
        ..Default::default()
    };
    t.call(&["spec", "--rootless"], &c).ok();
    let text = fs::read_to_string(t.bundle.join("config.json")).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config["process"]["terminal"] = false.into();
    config["root"]["readonly"] = false.into();
    config["process"]["args"] = serde_json::json!(args);
    t.config = config;
    (t, c)
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The state letter of /proc/PID/stat (`R`, `S`, `D`, `T`, `Z`, …); `?` once it is gone.
pub fn proc_state(pid: i32) -> char {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
        .unwrap_or('?')
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
pub fn is_gone(pid: i32) -> bool {
    matches!(proc_state(pid), '?' | 'Z' | 'X')
}

/// Waits until every pid has exited; the ones still alive at the timeout.
pub fn still_alive(pids: &[i32], timeout: Duration) -> Vec<i32> {
    wait_until(timeout, || pids.iter().all(|p| is_gone(*p)));
    pids.iter().copied().filter(|p| !is_gone(*p)).collect()
}

/// `PID: command line` of each pid, for a failure message.
pub fn describe_pids(pids: &[i32]) -> Vec<String> {
    pids.iter()
        .map(|p| {
            let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            format!("{p}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect()
}

/// Live (not zombie) processes whose environment holds the exact `VAR=value` entry: finds a
/// test's hook processes, which run on the host with no trace of the test on their command
/// line.
pub fn pids_with_env(entry: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| !is_gone(pid))
        .filter(|pid| {
            let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            environ.split(|b| *b == 0).any(|v| v == entry.as_bytes())
        })
        .collect()
}

/// The namespace link of a process, e.g. `mnt:[4026532001]`.
pub fn ns_link(pid: i32, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Live (not zombie) processes in the namespace `link` of type `kind` (as from `ns_link`):
/// finds every process of a container, with or without cgroups, through its private mount
/// namespace.
pub fn pids_in_ns(kind: &str, link: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| !is_gone(pid))
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/ns/{kind}")).is_ok_and(|l| l.as_os_str() == link)
        })
        .collect();
    pids.sort();
    pids
}

impl Pending {
    /// The pid of the runtime call, to signal it.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the call has not ended yet.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Test {
    /// `create` of the test's container that must fail and leave nothing behind; returns
    /// the call and how long the create took.
    #[track_caller]
    pub fn create_fails(&self) -> (Out, Duration) {
        let started = Instant::now();
        let (out, _) = self.create(&self.id);
        let took = started.elapsed();
        out.fails();
        self.assert_nothing_left(&self.id);
        (out, took)
    }
}

impl Test {
    /// Like `call`, with `input` on the runtime's stdin (e.g. `update -r -`).
    pub fn call_stdin(&self, args: &[&str], input: &str) -> Out {
        self.launch(args, &Call::default(), Some(input)).wait()
    }
}

/// One cgroup hierarchy this (the test) process is in, as /proc/self/cgroup and
/// /proc/self/mountinfo show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgHierarchy {
    /// Its controllers as /proc/self/cgroup names them (`memory`, `cpu,cpuacct`,
    /// `name=systemd`); empty for cgroup2.
    pub controllers: Vec<String>,
    /// Where it is mounted on the host (`/sys/fs/cgroup/memory`).
    pub mount: PathBuf,
    /// This process's cgroup in it (`/`, `/process_api/…`).
    pub own: String,
}

impl CgHierarchy {
    /// Where a container with `linux.cgroupsPath` `path` lands in this hierarchy, by runc's
    /// rule: an absolute path from the hierarchy's root, a relative one under the caller's own
    /// cgroup (on cgroup2 under its parent: the caller's own cgroup holds the caller, and a
    /// cgroup with processes cannot hand controllers to children).
    pub fn dir_for(&self, path: &str) -> PathBuf {
        let rel = path.trim_start_matches('/');
        if path.starts_with('/') {
            self.mount.join(rel)
        } else {
            self.mount
                .join(self.base().trim_start_matches('/'))
                .join(rel)
        }
    }

    /// The cgroup a relative `cgroupsPath` is taken from, as /proc/PID/cgroup shows it.
    pub fn base(&self) -> &str {
        if self.is_v2() {
            Path::new(&self.own)
                .parent()
                .and_then(Path::to_str)
                .unwrap_or("/")
        } else {
            &self.own
        }
    }

    /// The name /proc/PID/cgroup gives it (`memory`, `name=systemd`, `` for cgroup2).
    pub fn name(&self) -> String {
        self.controllers.join(",")
    }

    pub fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }
}

/// Every cgroup hierarchy this process is in and that is mounted here.
pub fn cgroup_hierarchies() -> Vec<CgHierarchy> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts: Vec<(String, String, String, String)> = info
        .lines()
        .filter_map(|l| {
            let root = l.split(' ').nth(3)?.to_string();
            let (point, _, fstype, sopts) = parse_mountinfo_line(l)?;
            Some((root, point, fstype, sopts))
        })
        .filter(|(root, _, fstype, _)| root == "/" && (fstype == "cgroup" || fstype == "cgroup2"))
        .collect();
    let mut out = Vec::new();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let controllers: Vec<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let found = mounts.iter().find(|(_, _, fstype, sopts)| {
            if controllers.is_empty() {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup" && controllers.iter().all(|c| has_opt(sopts, c))
            }
        });
        if let Some((_, point, _, _)) = found {
            out.push(CgHierarchy {
                controllers,
                mount: PathBuf::from(point),
                own: path.to_string(),
            });
        }
    }
    out
}

/// The cgroup2 hierarchy, if this process is in one that is mounted.
pub fn unified_hierarchy() -> Option<CgHierarchy> {
    cgroup_hierarchies().into_iter().find(CgHierarchy::is_v2)
}

/// The v1 hierarchy holding `controller` (`memory`, `pids`, …).
#[track_caller]
pub fn cgroup_hierarchy(controller: &str) -> CgHierarchy {
    cgroup_hierarchies()
        .into_iter()
        .find(|h| h.controllers.iter().any(|c| c == controller))
        .unwrap_or_else(|| panic!("no cgroup hierarchy with {controller} here"))
}

/// The directory of `linux.cgroupsPath` `path` in the v1 hierarchy of `controller`.
#[track_caller]
pub fn cgroup_dir(controller: &str, path: &str) -> PathBuf {
    cgroup_hierarchy(controller).dir_for(path)
}

/// A cgroup file of `linux.cgroupsPath` `path`, trimmed (panics if it cannot be read).
#[track_caller]
pub fn cgroup_read(controller: &str, path: &str, file: &str) -> String {
    let p = cgroup_dir(controller, path).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The parent every test container's relative cgroupsPath is under.
pub const CGROUP_PARENT: &str = "hulltest";

/// Live cgroup guards in this process; `hulltest` parents are removed by the last one.
static CGROUP_GUARDS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// Makes sure containers in cgroups leave nothing behind: on drop, `delete --force`s its
/// containers, then removes their leaf cgroups (thawing and killing what is still in them:
/// only cgroups the test made) in every hierarchy. The `hulltest` parents it made are
/// removed when the last guard of the process goes, so that no parallel test's create finds
/// its parent gone between two mkdirs. Declare it after the `Test`, so that it drops first.
#[derive(Debug)]
pub struct CgroupGuard {
    bin: PathBuf,
    root: PathBuf,
    ids: RefCell<Vec<String>>,
    paths: RefCell<Vec<String>>,
}

impl CgroupGuard {
    /// Registers a container and its `linux.cgroupsPath` for cleanup.
    pub fn add(&self, id: &str, path: &str) {
        self.ids.borrow_mut().push(id.to_string());
        self.paths.borrow_mut().push(path.to_string());
    }
}

impl Test {
    /// A guard for this test's cgroups; creates the `hulltest` parent in every hierarchy
    /// (so that no runtime thinks it made it).
    pub fn cgroup_guard(&self) -> CgroupGuard {
        let mut live = CGROUP_GUARDS.lock().unwrap_or_else(|e| e.into_inner());
        *live += 1;
        for h in cgroup_hierarchies() {
            let parent = h.dir_for(CGROUP_PARENT);
            if fs::create_dir(&parent).is_ok() {
                // A new cpuset starts with no cpus and mems: copy its parent's, as runc does.
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let mine = fs::read_to_string(parent.join(f)).unwrap_or_default();
                    if parent.join(f).exists() && mine.trim().is_empty() {
                        let above = parent.parent().map(|p| p.join(f)).unwrap();
                        let v = fs::read_to_string(above).unwrap_or_default();
                        let _ = fs::write(parent.join(f), v.trim());
                    }
                }
            }
        }
        CgroupGuard {
            bin: runtime(),
            root: self.root.clone(),
            ids: RefCell::new(Vec::new()),
            paths: RefCell::new(Vec::new()),
        }
    }

    /// Puts container `id` in its own relative cgroup `hulltest/<id>` (set as
    /// `linux.cgroupsPath` in the config) and registers it with `guard`; returns the path.
    pub fn in_cgroup(&mut self, guard: &CgroupGuard, id: &str) -> String {
        let path = format!("{CGROUP_PARENT}/{id}");
        self.config["linux"]["cgroupsPath"] = json!(path);
        guard.add(id, &path);
        path
    }
}

/// Pids listed in a cgroup's `cgroup.procs` (none if it is gone).
pub fn cgroup_procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The directories of `linux.cgroupsPath` `path` that exist, in every hierarchy.
pub fn existing_cgroups(path: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .iter()
        .map(|h| h.dir_for(path))
        .filter(|d| d.is_dir())
        .collect()
}

/// Asserts `linux.cgroupsPath` `path` has a directory in every hierarchy this process is in.
#[track_caller]
pub fn assert_cgroups_exist(path: &str) {
    for h in cgroup_hierarchies() {
        let d = h.dir_for(path);
        assert!(
            d.is_dir(),
            "no cgroup {} for {path} in hierarchy {:?}",
            d.display(),
            h.name()
        );
    }
}

/// Asserts no hierarchy has a directory for `linux.cgroupsPath` `path`.
#[track_caller]
pub fn assert_cgroups_gone(path: &str) {
    let left = existing_cgroups(path);
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

impl Test {
    /// `create` + `start` of `id` with the current config; the create call (whose stdout
    /// file the container writes to) and the init's host pid.
    #[track_caller]
    pub fn create_and_start(&self, id: &str) -> (Out, i32) {
        let (out, pid) = self.create(id);
        out.ok();
        self.hull(&["start", id]).ok();
        (out, pid.expect("pid file"))
    }

    /// Waits until the pids cgroup of `linux.cgroupsPath` `path` holds `n` processes, `init`
    /// among them; records them all for the guard to kill and returns them.
    #[track_caller]
    pub fn wait_cgroup_procs(&self, path: &str, init: i32, n: usize) -> Vec<i32> {
        let dir = cgroup_dir("pids", path);
        let mut procs = Vec::new();
        assert!(
            wait_until(STOP_TIMEOUT, || {
                procs = cgroup_procs(&dir);
                procs.len() == n
            }),
            "processes in the cgroup: {procs:?}"
        );
        assert!(procs.contains(&init), "{procs:?} lacks init {init}");
        for p in &procs {
            self.track_pid(*p);
        }
        procs
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            if !self.root.join(id).exists() {
                continue;
            }
            let child = Command::new(&self.bin)
                .process_group(0)
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(child) = child {
                let _ = Pending {
                    child,
                    args: Vec::new(),
                    stdout_path: PathBuf::new(),
                    stderr_path: PathBuf::new(),
                    deadline: Instant::now() + Duration::from_secs(15),
                }
                .wait();
            }
        }
        let hierarchies = cgroup_hierarchies();
        for path in self.paths.borrow().iter() {
            for h in &hierarchies {
                remove_test_cgroup(&h.dir_for(path));
            }
        }
        let mut live = CGROUP_GUARDS.lock().unwrap_or_else(|e| e.into_inner());
        *live = live.saturating_sub(1);
        if *live == 0 {
            for h in &hierarchies {
                // Only if empty: another test binary may still be using it.
                let _ = fs::remove_dir(h.dir_for(CGROUP_PARENT));
            }
        }
    }
}

/// Removes a leaf cgroup a test made: thaws it, kills what is still in it, then rmdirs it.
fn remove_test_cgroup(dir: &Path) {
    if !dir.exists() {
        return;
    }
    println!("cleanup: cgroup {} left behind", dir.display());
    let freezer = dir.join("freezer.state");
    if fs::read_to_string(&freezer).is_ok_and(|s| s.trim() != "THAWED") {
        let _ = fs::write(&freezer, "THAWED");
    }
    if dir.join("cgroup.freeze").exists() {
        let _ = fs::write(dir.join("cgroup.freeze"), "0");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for pid in cgroup_procs(dir) {
            // SAFETY: kill(2) of a process in a cgroup this test made for its container.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                if Instant::now() > deadline {
                    println!("cleanup: rmdir {}: {e}", dir.display());
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Pending {
    /// What the call has written to stdout so far (e.g. a streaming `events`).
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// SIGKILLs the call (a runtime call this test started) and collects it.
    pub fn kill(self) -> Out {
        // SAFETY: kill(2) of the child this Pending owns; it has not been reaped yet, so the
        // pid cannot have been reused.
        unsafe {
            libc::kill(self.pid(), libc::SIGKILL);
        }
        self.wait()
    }
}

// --- console sockets and pty masters (shared by exec tests; same protocol as create) -----

/// Waits for the runtime to connect to the console socket `listener`, failing early with
/// the call's output if it finished without connecting.
pub fn console_accept(
    listener: &std::os::unix::net::UnixListener,
    call: Pending,
) -> (std::os::unix::net::UnixStream, Pending) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return (s, call);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept on the console socket: {e}"),
        }
        if Instant::now() > deadline {
            panic!("nobody connected to the console socket:\n{}", call.wait());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Receives one message from a console (or pidfd) socket: the name in its data and every fd
/// passed with SCM_RIGHTS (room for several, so that a runtime sending more is caught).
pub fn recv_fds(stream: &std::os::unix::net::UnixStream) -> (String, Vec<std::os::fd::OwnedFd>) {
    use std::os::fd::{FromRawFd, OwnedFd};
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut name = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    const MAX_FDS: usize = 8;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32) } as usize;
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: msg points at iov and control, which outlive the call and are as large as the
    // header says.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    assert_eq!(
        msg.msg_flags & libc::MSG_CTRUNC,
        0,
        "control data truncated"
    );
    let mut fds = Vec::new();
    // SAFETY: msg was filled in by recvmsg; its control buffer is live.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR only return headers within msg_controllen.
        let hdr = unsafe { cmsg.read_unaligned() };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN only computes a size.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = (hdr.cmsg_len as usize - header) / size_of::<RawFd>();
            // SAFETY: cmsg is a valid header; its payload follows it in the buffer.
            let data = unsafe { libc::CMSG_DATA(cmsg) }.cast::<RawFd>();
            for i in 0..count {
                // SAFETY: i < count, so the offset stays within this payload.
                let at = unsafe { data.add(i) };
                // SAFETY: `at` points at one fd number of the payload (maybe unaligned).
                let fd = unsafe { at.read_unaligned() };
                // SAFETY: the kernel installed this fd in our table for us; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR; cmsg is a header of this message.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    let name = String::from_utf8_lossy(&name[..n as usize])
        .trim_end_matches('\0')
        .to_string();
    (name, fds)
}

/// Writes all of `data` to a pty master.
pub fn pty_write(fd: &std::os::fd::OwnedFd, data: &[u8]) {
    let mut done = 0;
    while done < data.len() {
        // SAFETY: writes from a live slice into an fd we own.
        let n = unsafe {
            libc::write(
                fd.as_raw_fd(),
                data[done..].as_ptr().cast(),
                data.len() - done,
            )
        };
        assert!(
            n > 0,
            "write to the pty master: {}",
            std::io::Error::last_os_error()
        );
        done += n as usize;
    }
}

/// Reads a pty master until what was read contains `needle`, the slave side is gone (EIO)
/// or `timeout` passes; everything read.
pub fn pty_read_until(fd: &std::os::fd::OwnedFd, needle: &str, timeout: Duration) -> String {
    pty_read_while(fd, timeout, |text| !text.contains(needle))
}

/// Reads a pty master while `more` says so of what came so far, until the other side hangs
/// up or `timeout` passes.
pub fn pty_read_while(
    fd: &std::os::fd::OwnedFd,
    timeout: Duration,
    more: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if !more(&String::from_utf8_lossy(&out)) {
            break;
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd that lives across the call.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a live buffer of the given size.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Live (not zombie) processes of the runtime binary under test (argv[0]) whose command
/// line names `needle` (e.g. a test's `--root`): runtime calls, or forks of them, that are
/// still around.
pub fn runtime_processes_naming(needle: &str) -> Vec<i32> {
    let bin = runtime();
    let bin = bin.to_string_lossy();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| !is_gone(pid))
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut argv = cmdline.split(|b| *b == 0);
            argv.next() == Some(bin.as_bytes()) && argv.any(|a| a == needle.as_bytes())
        })
        .collect()
}

/// A container's cgroup read through whichever hierarchies this host has: the v1
/// controllers' files on a v1 or hybrid host, the cgroup2 files on a unified one (the guest
/// of `tests/vm`). The client tests assert limits through it on both.
#[derive(Debug)]
pub struct CgView {
    path: String,
    /// The cgroup2 hierarchy, on a unified host only.
    unified: Option<CgHierarchy>,
}

impl CgView {
    /// The cgroup of `linux.cgroupsPath` `path`.
    pub fn of(path: &str) -> CgView {
        let all = cgroup_hierarchies();
        let unified = if all.iter().any(|h| !h.is_v2()) {
            None
        } else {
            all.into_iter().find(CgHierarchy::is_v2)
        };
        CgView {
            path: path.to_string(),
            unified,
        }
    }

    pub fn is_v2(&self) -> bool {
        self.unified.is_some()
    }

    /// The file of cgroup2 or, on v1, of the hierarchy with `controller`, trimmed.
    #[track_caller]
    fn read(&self, controller: &str, v1: &str, v2: &str) -> String {
        match &self.unified {
            Some(h) => {
                let p = h.dir_for(&self.path).join(v2);
                fs::read_to_string(&p)
                    .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
                    .trim()
                    .to_string()
            }
            None => cgroup_read(controller, &self.path, v1),
        }
    }

    /// The memory limit in bytes (`max` when there is none on cgroup2).
    #[track_caller]
    pub fn memory_limit(&self) -> String {
        self.read("memory", "memory.limit_in_bytes", "memory.max")
    }

    /// The memory+swap limit (v1's memsw; on cgroup2 memory.max plus memory.swap.max).
    #[track_caller]
    pub fn memory_swap_limit(&self) -> String {
        if self.is_v2() {
            let mem = self.read("memory", "", "memory.max");
            let swap = self.read("memory", "", "memory.swap.max");
            match (mem.parse::<u64>(), swap.parse::<u64>()) {
                (Ok(m), Ok(s)) => (m + s).to_string(),
                _ => "max".into(),
            }
        } else {
            self.read("memory", "memory.memsw.limit_in_bytes", "")
        }
    }

    #[track_caller]
    pub fn pids_max(&self) -> String {
        self.read("pids", "pids.max", "pids.max")
    }

    /// CFS quota and period in microseconds (`max` or `-1` for no quota).
    #[track_caller]
    pub fn cpu_quota_period(&self) -> (String, String) {
        if self.is_v2() {
            let max = self.read("cpu", "", "cpu.max");
            let (q, p) = max.split_once(' ').unwrap_or((&max, ""));
            (q.to_string(), p.to_string())
        } else {
            (
                self.read("cpu", "cpu.cfs_quota_us", ""),
                self.read("cpu", "cpu.cfs_period_us", ""),
            )
        }
    }

    /// Whether the cgroup is frozen (v1 freezer.state FROZEN, cgroup2 cgroup.events).
    #[track_caller]
    pub fn frozen(&self) -> bool {
        self.freezer_is("FROZEN", "frozen 1")
    }

    /// Whether the cgroup is thawed (v1 freezer.state THAWED, not FREEZING; cgroup2
    /// cgroup.events).
    #[track_caller]
    pub fn thawed(&self) -> bool {
        self.freezer_is("THAWED", "frozen 0")
    }

    #[track_caller]
    fn freezer_is(&self, v1_state: &str, v2_line: &str) -> bool {
        if self.is_v2() {
            self.read("", "", "cgroup.events")
                .lines()
                .any(|l| l.trim() == v2_line)
        } else {
            self.read("freezer", "freezer.state", "") == v1_state
        }
    }

    /// The processes in it (the memory hierarchy's, on v1).
    pub fn procs(&self) -> Vec<i32> {
        match &self.unified {
            Some(h) => cgroup_procs(&h.dir_for(&self.path)),
            None => cgroup_procs(&cgroup_dir("memory", &self.path)),
        }
    }

    /// Whether the cgroup's directory exists in every hierarchy.
    pub fn exists(&self) -> bool {
        match &self.unified {
            Some(h) => h.dir_for(&self.path).is_dir(),
            None => cgroup_hierarchies()
                .iter()
                .all(|h| h.dir_for(&self.path).is_dir()),
        }
    }

    /// The files a process inside the container reads for its memory limit, pids limit,
    /// pids count and CFS quota (the first word of cgroup2's cpu.max), with a private cgroup
    /// namespace on cgroup2 (the clients' default there).
    pub fn inside_files(&self) -> [&'static str; 4] {
        if self.is_v2() {
            [
                "/sys/fs/cgroup/memory.max",
                "/sys/fs/cgroup/pids.max",
                "/sys/fs/cgroup/pids.current",
                "/sys/fs/cgroup/cpu.max",
            ]
        } else {
            [
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "/sys/fs/cgroup/pids/pids.max",
                "/sys/fs/cgroup/pids/pids.current",
                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            ]
        }
    }
}

/// The value of `key` in a flat-keyed file (`memory.oom_control`, `memory.events`,
/// `cgroup.events`: `key value` lines).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The `type` of each JSON line `events` printed (stats lines are long: not worth showing).
pub fn event_types(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) => v["type"].as_str().unwrap_or("<no type>").to_string(),
            Err(_) => format!("<not JSON: {l:.80}>"),
        })
        .collect()
}

/// A container loop that bumps a counter in /tmp/tick every 50 ms (read with `Test::tick`).
pub const TICK_LOOP: &str = "i=0; while true; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.05; done";

impl Out {
    /// Waits until the output of a detached container this call started (`create`) holds
    /// `needle`; the output then.
    #[track_caller]
    pub fn wait_stdout(&self, needle: &str, timeout: Duration) -> String {
        let mut text = String::new();
        let found = wait_until(timeout, || {
            text = self.stdout_now();
            text.contains(needle)
        });
        assert!(found, "no {needle:?} in the container's output:\n{text}");
        text
    }
}

impl Test {
    /// The counter `TICK_LOOP` keeps in rootfs/tmp/tick (retries a half-written file).
    pub fn tick(&self) -> u64 {
        let mut v = 0;
        wait_until(Duration::from_secs(2), || {
            match fs::read_to_string(self.rootfs.join("tmp/tick"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                Some(n) => {
                    v = n;
                    true
                }
                None => false,
            }
        });
        v
    }

    /// Creates /dev/zero and denies it in the device cgroup (naming it in `linux.devices`
    /// drops runc's default allow rule for it), with `CAP_MKNOD` so that the container can try
    /// a node of its own: `TRY_DEVICES` shows what it reaches.
    pub fn deny_dev_zero(&mut self) -> &mut Test {
        self.with_mknod();
        self.config["linux"]["devices"] = json!([{
            "path": "/dev/zero", "type": "c", "major": 1, "minor": 5,
            "fileMode": 0o666, "uid": 0, "gid": 0
        }]);
        self.config["linux"]["resources"]["devices"] = json!([
            { "allow": false, "access": "rwm" },
            { "allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm" }
        ]);
        self
    }

    /// Adds `CAP_MKNOD` to the bounding, effective and permitted sets.
    pub fn with_mknod(&mut self) -> &mut Test {
        for set in ["bounding", "effective", "permitted"] {
            self.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
        self
    }
}

impl Out {
    /// Asserts that a `TRY_DEVICES` run under `deny_dev_zero` reached /dev/null only: /dev/zero
    /// and the new node for it were both refused by the device cgroup.
    #[track_caller]
    pub fn assert_only_dev_null_reached(&self) {
        self.ok();
        assert!(!self.stdout.contains("zero-opened"), "{self}");
        assert!(!self.stdout.contains("node-opened"), "{self}");
        assert!(self.stdout.contains("null-ok"), "{self}");
        self.stderr_has("/dev/zero: Operation not permitted");
        assert_eq!(
            self.stderr.matches("Operation not permitted").count(),
            2,
            "both /dev/zero and the new node are refused:\n{self}"
        );
    }
}

/// Opens /dev/zero, /dev/null and a new node for 1:5: prints `zero-opened`, `null-ok`,
/// `node-opened` for each that worked (mknod itself may be allowed: runc allows `c *:* m`).
pub const TRY_DEVICES: &str = "head -c1 /dev/zero >/dev/null && echo zero-opened; \
    echo x >/dev/null && echo null-ok; \
    mknod /tmp/z c 1 5 && head -c1 /tmp/z >/dev/null && echo node-opened; rm -f /tmp/z; true";

/// The host's / at /host in a container, read-only: for [`send_ready`].
pub static HOST_ROOT: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
    || serde_json::json!({ "destination": "/host", "type": "bind", "source": "/", "options": ["bind", "ro"] }),
);

/// A shell line that sends `msg` to `$NOTIFY_SOCKET` with the host's python3, which the
/// container sees at /host (the busybox rootfs has nothing that writes a datagram).
pub fn send_ready(msg: &str) -> String {
    format!(
        "PYTHONHOME=/host/usr /host/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 \
         --library-path /host/lib/x86_64-linux-gnu /host/usr/bin/python3 -c \
         'import os, socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\"{msg}\", os.environ[\"NOTIFY_SOCKET\"])'"
    )
}
