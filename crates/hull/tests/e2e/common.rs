//! What every client test needs: a private directory, a busybox image in the forms the
//! clients import (a rootfs tarball, an OCI archive), daemons that stop on drop, commands run
//! under a deadline with their output, and a teardown that leaves no process, mount or cgroup.

#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util;

/// The hull binary under test.
pub fn hull() -> PathBuf {
    // HULL_TEST_RUNTIME: the guest's package stage points the clients at /usr/bin/hull.
    crate::util::runtime()
}

/// How long one client command may take.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One client test's world: a fresh directory named after the test. On drop, everything
/// that mentions the directory is torn down: processes (shims, containers, daemons' children)
/// killed by pid, mounts under it unmounted, cgroups registered with [`Scratch::cgroup`]
/// removed, and the directory deleted.
#[derive(Debug)]
pub struct Scratch {
    pub name: String,
    pub dir: PathBuf,
    cgroups: std::cell::RefCell<Vec<String>>,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("{name}-{}-{n}", std::process::id());
        // Short: daemons put unix sockets under it (108-byte limit).
        let dir = PathBuf::from("/tmp/hull-e2e").join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).unwrap();
        Scratch {
            name,
            dir,
            cgroups: Default::default(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// A cgroup path (absolute, as clients pass it) unique to this test; removed from every
    /// v1 hierarchy and cgroup2 on drop, deepest first.
    pub fn cgroup(&self, leaf: &str) -> String {
        let path = format!("/hull-e2e-{}/{leaf}", self.name);
        self.cgroups.borrow_mut().push(path.clone());
        path
    }

    /// The cgroup parent every cgroup of [`Scratch::cgroup`] lies under.
    pub fn cgroup_parent(&self) -> String {
        let path = format!("/hull-e2e-{}", self.name);
        self.cgroups.borrow_mut().push(path.clone());
        path
    }

    /// A busybox rootfs directory at `rel`.
    pub fn rootfs(&self, rel: &str) -> PathBuf {
        let dir = self.path(rel);
        util::make_rootfs(&dir);
        dir
    }

    /// The busybox rootfs as a plain tarball (`docker import`, `podman import`).
    pub fn rootfs_tar(&self) -> PathBuf {
        let rootfs = self.rootfs("image-rootfs");
        let tar = self.path("busybox-rootfs.tar");
        run_ok(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("--numeric-owner")
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        tar
    }

    /// The busybox rootfs as an OCI image archive named `reference`
    /// (`ctr image import --index-name`): oci-layout, index.json and the blobs, one
    /// uncompressed layer.
    pub fn oci_archive(&self, reference: &str, cmd: &[&str]) -> PathBuf {
        let layer = self.rootfs_tar();
        let layout = self.path("oci-layout");
        let blobs = layout.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let (layer_digest, layer_size) = add_blob_file(&blobs, &layer);
        let config = json!({
            "architecture": oci_arch(),
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": cmd,
                "WorkingDir": "/"
            },
            "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_digest}")] },
            "history": [{ "created_by": "hull e2e test" }]
        });
        let (config_digest, config_size) = add_blob(&blobs, config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": format!("sha256:{config_digest}"),
                "size": config_size
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": format!("sha256:{layer_digest}"),
                "size": layer_size
            }]
        });
        let (manifest_digest, manifest_size) = add_blob(&blobs, manifest.to_string().as_bytes());
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{manifest_digest}"),
                "size": manifest_size,
                "annotations": { "org.opencontainers.image.ref.name": reference }
            }]
        });
        fs::write(layout.join("index.json"), index.to_string()).unwrap();
        fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let tar = self.path("busybox-oci.tar");
        run_ok(
            Command::new("tar")
                .arg("-C")
                .arg(&layout)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        tar
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        kill_processes_under(&self.dir);
        util::unmount_all_under(&self.dir);
        for path in self.cgroups.borrow().iter().rev() {
            remove_cgroup_tree(path);
        }
        if std::env::var_os("HULL_E2E_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn sha256_of(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path));
    out.stdout
        .split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_owned()
}

fn add_blob_file(blobs: &Path, file: &Path) -> (String, u64) {
    let digest = sha256_of(file);
    fs::copy(file, blobs.join(&digest)).unwrap();
    (digest, fs::metadata(file).unwrap().len())
}

fn add_blob(blobs: &Path, data: &[u8]) -> (String, u64) {
    let tmp = blobs.join("tmp");
    fs::write(&tmp, data).unwrap();
    let digest = sha256_of(&tmp);
    fs::rename(&tmp, blobs.join(&digest)).unwrap();
    (digest, data.len() as u64)
}

/// Kills (SIGKILL, by pid) every process whose command line, cwd or root mentions `dir`,
/// and waits for them to go. Shims and containers are not children of the test, so they
/// are found by what they point at.
pub fn kill_processes_under(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    for _ in 0..50 {
        let mut found = Vec::new();
        let Ok(entries) = fs::read_dir("/proc") else {
            return;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me || util::is_gone(pid) {
                continue;
            }
            let p = e.path();
            let cmdline = fs::read(p.join("cmdline")).unwrap_or_default();
            let on_cmdline = String::from_utf8_lossy(&cmdline).contains(&needle);
            let under = |link: &str| {
                fs::read_link(p.join(link))
                    .map(|l| l.starts_with(dir))
                    .unwrap_or(false)
            };
            if on_cmdline || under("cwd") || under("root") {
                found.push(pid);
            }
        }
        if found.is_empty() {
            return;
        }
        for pid in found {
            // SAFETY: kill(2) on a pid we just found pointing into our own directory.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes `path` and everything below it from every cgroup hierarchy, deepest first; a
/// frozen cgroup is thawed first so its processes can die.
pub fn remove_cgroup_tree(path: &str) {
    for h in util::cgroup_hierarchies() {
        let top = h.dir_for(path);
        if !top.exists() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            for pid in util::cgroup_procs(&d) {
                // SAFETY: kill(2) on a process left in a cgroup this test's client made.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            let _ = fs::write(d.join("freezer.state"), "THAWED");
            let _ = fs::write(d.join("cgroup.freeze"), "0");
            util::wait_until(Duration::from_secs(5), || fs::remove_dir(&d).is_ok());
        }
    }
    // podman's cgroupfs manager also makes the path under /sys/fs/cgroup/<name> for
    // controllers this host does not mount (hugetlb, net_cls, …): plain directories on the
    // tmpfs there (with a `tasks` file conmon writes), which are no hierarchy's.
    let mounted: Vec<PathBuf> = util::cgroup_hierarchies()
        .into_iter()
        .map(|h| h.mount)
        .collect();
    let Ok(entries) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for e in entries.flatten() {
        let base = e.path();
        if mounted.iter().any(|m| m == &base) || !base.is_dir() {
            continue;
        }
        let top = base.join(path.trim_start_matches('/'));
        let on_tmpfs = nix::sys::statfs::statfs(&top)
            .is_ok_and(|f| f.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
        if top != base && top.is_dir() && on_tmpfs {
            let _ = fs::remove_dir_all(&top);
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmd: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.cmd)?;
        writeln!(
            f,
            "  status: {}{}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" }
        )?;
        writeln!(f, "  stdout: {}", self.stdout.trim_end())?;
        write!(f, "  stderr: {}", self.stderr.trim_end())
    }
}

/// Runs `cmd` to completion under `timeout` (killing its process group at the deadline),
/// stdin from /dev/null unless the command set one.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out_file = tempfile("stdout");
    let err_file = tempfile("stderr");
    cmd.process_group(0)
        .stdout(out_file.0.try_clone().unwrap())
        .stderr(err_file.0.try_clone().unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            timed_out = true;
            // SAFETY: kill(2) on the process group of the child we spawned.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        cmd: shown,
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: fs::read_to_string(&out_file.1).unwrap_or_default(),
        stderr: fs::read_to_string(&err_file.1).unwrap_or_default(),
        timed_out,
    }
}

/// Runs `cmd` under [`CMD_TIMEOUT`].
pub fn run(cmd: &mut Command) -> Output {
    if cmd.get_program() != "sh" {
        cmd.stdin(Stdio::null());
    }
    run_timeout(cmd, CMD_TIMEOUT)
}

/// Runs `cmd` and panics with its output unless it succeeded.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.success(), "{out}");
    out
}

/// An unlinked-on-drop temp file for a command's output.
struct TempOut(fs::File, PathBuf);

fn tempfile(what: &str) -> TempOut {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("hull-e2e-{}-{n}.{what}", std::process::id()));
    let f = fs::File::create(&path).unwrap();
    TempOut(f, path)
}

impl Drop for TempOut {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.1);
    }
}

/// A daemon this test started, output to `log`. Dropping it sends SIGTERM, waits up to
/// 20 s, then SIGKILLs its process group.
#[derive(Debug)]
pub struct Daemon {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Starts `cmd` in a process group of its own with output to `<dir>/<name>.log`, then
    /// waits until `ready` holds (panicking with the log if it does not within 60 s).
    pub fn start(name: &str, dir: &Path, cmd: &mut Command, ready: impl FnMut() -> bool) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let f = fs::File::create(&log).unwrap();
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut d = Daemon {
            name: name.to_owned(),
            log,
            child: Some(child),
        };
        if !util::wait_until(Duration::from_secs(60), ready) {
            let exited = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            panic!(
                "{name} did not become ready (exit: {exited:?}):\n{}",
                d.log_text()
            );
        }
        d
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The last `n` lines of the log under a `--- <log> (last n lines):` heading.
    pub fn log_section(&self, n: usize) -> String {
        format!(
            "--- {} (last {n} lines):\n{}\n",
            self.log.display(),
            self.log_tail(n)
        )
    }

    /// Stops the daemon (SIGTERM, then SIGKILL to its group after 20 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as i32;
        // SAFETY: kill(2) on the daemon we spawned.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: kill(2) on the process group of the daemon we spawned.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A hull wrapper at `path` that logs every call (arguments, one line each) to `calls`
/// and then execs hull: tests check which runtime a client really ran.
pub fn hull_wrapper(path: &Path, calls: &Path) {
    write_script(
        path,
        &format!(
            "echo \"$*\" >> {}\nexec {} \"$@\"",
            calls.display(),
            hull().display()
        ),
    );
}

/// The log of a [`hull_wrapper`]: one line per runtime call, its arguments as logged.
#[derive(Debug)]
pub struct CallLog(PathBuf);

impl CallLog {
    pub fn new(path: PathBuf) -> CallLog {
        CallLog(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Every call logged so far.
    pub fn text(&self) -> String {
        fs::read_to_string(&self.0).unwrap_or_default()
    }

    /// The calls of `subcommand` for container `id`.
    pub fn of(&self, subcommand: &str, id: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.contains(&subcommand) && words.contains(&id)
            })
            .map(str::to_owned)
            .collect()
    }

    /// The calls under a `--- runtime calls (<log>):` heading, for failure messages.
    pub fn section(&self) -> String {
        format!("--- runtime calls ({}):\n{}", self.0.display(), self.text())
    }
}

/// Asserts a containerd runc v2 shim ran hull (through the wrapper logging to `calls`) for
/// container `id` with its bundle at `bundle`: a create and a start, each starting with
/// `--root <root> --log <bundle>/log.json --log-format json`, then `--systemd-cgroup` if
/// `systemd` (the shim's `SystemdCgroup` option) and not otherwise, the create with
/// `--bundle <bundle> --pid-file <bundle>/init.pid`. A `root` ending in `*` matches every
/// root that starts with the rest. `logs` gives the diagnostics.
#[track_caller]
pub fn assert_shim_ran_hull(
    calls: &CallLog,
    id: &str,
    root: &str,
    bundle: &Path,
    systemd: bool,
    logs: impl Fn() -> String,
) {
    let log = format!(
        "--log {} --log-format json {}",
        bundle.join("log.json").display(),
        if systemd { "--systemd-cgroup " } else { "" }
    );
    let has_flags = |line: &str| {
        let Some((line_root, rest)) = line.strip_prefix("--root ").and_then(|l| l.split_once(' '))
        else {
            return false;
        };
        let root_ok = match root.strip_suffix('*') {
            Some(prefix) => line_root.starts_with(prefix),
            None => line_root == root,
        };
        root_ok && rest.starts_with(&log) && systemd == rest.contains(" --systemd-cgroup ")
    };
    let create = format!(
        "create --bundle {b} --pid-file {b}/init.pid ",
        b = bundle.display()
    );
    let text = calls.text();
    assert!(
        text.lines()
            .any(|l| has_flags(l) && l.contains(&create) && l.ends_with(&format!(" {id}"))),
        "no hull create of {id} with `--root {root} {log}`:\n{}",
        logs()
    );
    assert!(
        text.lines()
            .any(|l| has_flags(l) && l.ends_with(&format!("start {id}"))),
        "no hull start of {id}:\n{}",
        logs()
    );
}

/// Where a containerd 1.6 shim puts its ttrpc socket, whatever containerd's state dir.
pub const SHIM_SOCKETS: &str = "/run/containerd/s";

/// The socket of the 1.6 shim of container (or pod sandbox) `id` in namespace `ns` of the
/// containerd at `containerd_sock`: sha256 of `<address>/<ns>/<id>` in [`SHIM_SOCKETS`].
pub fn shim_socket(containerd_sock: &Path, ns: &str, id: &str) -> PathBuf {
    let key = format!("{}/{ns}/{id}", containerd_sock.display());
    let out = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg("printf %s \"$1\" | sha256sum")
            .arg("sh")
            .arg(&key),
    );
    let digest = out.stdout.split_whitespace().next().unwrap_or_default();
    Path::new(SHIM_SOCKETS).join(digest)
}

/// Each file of `files` that is not empty, under a `--- <path>:` heading.
pub fn file_sections(files: impl IntoIterator<Item = PathBuf>) -> String {
    let mut text = String::new();
    for f in files {
        let body = fs::read_to_string(&f).unwrap_or_default();
        if !body.trim().is_empty() {
            text += &format!("--- {}:\n{}\n", f.display(), body.trim_end());
        }
    }
    text
}

/// Diagnostics of a client whose containerd runs hull through the runc v2 shim: the runtime
/// calls, hull's logs (`<bundle>/log.json`) of every live bundle in the shim's task dir
/// `tasks` (`<state>/io.containerd.runtime.v2.task/<ns>`), what hull has in `hull_root` (when
/// the test knows it), and the last `tail` lines of the daemon's log.
pub fn shim_logs(
    calls: &CallLog,
    tasks: &Path,
    hull_root: Option<&Path>,
    daemon: &Daemon,
    tail: usize,
) -> String {
    let bundles = fs::read_dir(tasks).into_iter().flatten().flatten();
    let mut text = calls.section() + &file_sections(bundles.map(|d| d.path().join("log.json")));
    if let Some(root) = hull_root {
        let held = dir_names(root);
        text += &format!("--- in hull's root {}: {held:?}\n", root.display());
    }
    text + &daemon.log_section(tail)
}

/// The names in `dir` (none if it cannot be read).
pub fn dir_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to `timeout` for `child` to exit; its exit code (128+N for signal N).
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// SIGKILLs the process group of a child we spawned in a group (or session) of its own, if
/// it still runs, and reaps it.
pub fn kill_child_group(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        // SAFETY: kill(2) on the process group of the child we spawned.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

/// A client command running in the background of the test (a foreground `ctr run` or
/// `podman run`, to be signalled), in a process group of its own with its output to a file;
/// its group is killed on drop.
pub struct Background {
    child: Child,
    out: PathBuf,
}

impl Background {
    pub fn spawn(mut cmd: Command, out: PathBuf) -> Background {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let f = fs::File::create(&out).unwrap();
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        Background { child, out }
    }

    /// Its exit code, or None if it is still running after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        wait_child(&mut self.child, timeout)
    }

    /// What it wrote so far (stdout and stderr).
    pub fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        kill_child_group(&mut self.child);
    }
}

/// Which cgroup driver a client test's daemon runs its containers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cgroups {
    /// Forced to cgroupfs, every container under the Scratch cgroup parent (dockerd
    /// `native.cgroupdriver=cgroupfs` and `--cgroup-parent`, podman `--cgroup-manager cgroupfs`
    /// and `--cgroup-parent`, the CRI's `SystemdCgroup = false`): the same on every host.
    Cgroupfs,
    /// Nothing overridden: only the runtime is registered, and the client picks its driver
    /// as it does for any user. On a systemd host with cgroup v2 docker 20.10 and podman 4.3
    /// then use systemd (`system.slice:docker:<id>`, `machine.slice:libpod:<id>`); for the
    /// CRI, the kubelet's systemd shape: `SystemdCgroup = true` for the handler and pods whose
    /// cgroup parent is a `kubepods-…-pod<uid>.slice`.
    ClientDefault,
}

/// Panics unless this host is one the systemd driver tests apply to: systemd as PID 1 and a
/// unified cgroup v2 hierarchy (the guest of tests/vm), naming what is missing.
#[track_caller]
pub fn assert_systemd_host() {
    let pid1 = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    assert!(
        Path::new("/run/systemd/system").is_dir() && pid1.trim() == "systemd",
        "this test needs systemd as PID 1 (PID 1 is {:?}): run it in the VM guest \
         (tests/vm/guest-tests.sh clients <name>)",
        pid1.trim()
    );
    let all = util::cgroup_hierarchies();
    assert!(
        !all.is_empty() && all.iter().all(util::CgHierarchy::is_v2),
        "this test needs a unified cgroup v2 hierarchy, not {:?}: run it in the VM guest",
        all.iter().map(util::CgHierarchy::name).collect::<Vec<_>>()
    );
}

/// Where a systemd driver `linux.cgroupsPath` (`slice:prefix:name`) lands: the transient
/// scope `<prefix>-<name>.scope` in `slice`, whose cgroup is the slice's path (each `-` of a
/// slice name a level: `a-b.slice` is `/a.slice/a-b.slice`) plus the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub slice: String,
    pub unit: String,
    /// The scope's cgroup, absolute (`/system.slice/docker-<id>.scope`).
    pub cgroup: String,
}

impl Scope {
    /// The scope of `cgroups_path`; None unless it has the `slice:prefix:name` form.
    pub fn of(cgroups_path: &str) -> Option<Scope> {
        let mut parts = cgroups_path.split(':');
        let (Some(slice), Some(prefix), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let slice = if slice.is_empty() { "-.slice" } else { slice };
        let unit = format!("{prefix}-{name}.scope");
        let cgroup = format!("{}/{unit}", expand_slice(slice).trim_end_matches('/'));
        Some(Scope {
            slice: slice.to_owned(),
            unit,
            cgroup,
        })
    }

    /// Its cgroup files.
    pub fn cg(&self) -> util::CgView {
        util::CgView::of(&self.cgroup)
    }

    /// Its cgroup directory.
    pub fn dir(&self) -> PathBuf {
        Path::new("/sys/fs/cgroup").join(self.cgroup.trim_start_matches('/'))
    }

    /// `systemctl show -p <props>` of the unit: each property's value as systemctl prints it.
    pub fn show(&self, props: &[&str]) -> std::collections::BTreeMap<String, String> {
        systemctl_show(&self.unit, props)
    }
}

/// The cgroup path of slice unit `slice`: `-.slice` is the root, `a-b-c.slice` is
/// `/a.slice/a-b.slice/a-b-c.slice` (systemd's rule for slice names).
pub fn expand_slice(slice: &str) -> String {
    let name = slice.strip_suffix(".slice").unwrap_or(slice);
    if name == "-" || name.is_empty() {
        return "/".into();
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path += &format!("/{prefix}.slice");
    }
    path
}

/// `systemctl show -p A,B,… UNIT`: `A=value` lines as a map.
pub fn systemctl_show(unit: &str, props: &[&str]) -> std::collections::BTreeMap<String, String> {
    let out = run(Command::new("systemctl")
        .arg("show")
        .arg("-p")
        .arg(props.join(","))
        .arg("--")
        .arg(unit));
    assert!(out.success(), "{out}");
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The units systemd knows (loaded, whatever their state) whose names match the glob
/// `pattern`: `systemctl list-units --all --no-legend --plain PATTERN`, first column.
pub fn units_matching(pattern: &str) -> Vec<String> {
    let out = run(Command::new("systemctl")
        .args([
            "list-units",
            "--all",
            "--no-legend",
            "--plain",
            "--full",
            "--",
        ])
        .arg(pattern));
    assert!(out.success(), "{out}");
    out.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Whether `unit` is active (`systemctl is-active`).
pub fn unit_active(unit: &str) -> bool {
    run(Command::new("systemctl").args(["is-active", "--quiet", "--", unit])).success()
}

/// Teardown: stops each unit systemd still knows under a name matching one of `patterns`
/// (a scope's processes are killed with it; a slice takes its units along) and clears a
/// failed state, so that nothing a test's client asked systemd for stays loaded. Quiet: a
/// test's own assertions say what was left.
pub fn stop_units(patterns: &[String]) {
    for pattern in patterns {
        let out = run_timeout(
            Command::new("systemctl")
                .args([
                    "list-units",
                    "--all",
                    "--no-legend",
                    "--plain",
                    "--full",
                    "--",
                ])
                .arg(pattern),
            Duration::from_secs(30),
        );
        for unit in out
            .stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next())
        {
            let _ = run_timeout(
                Command::new("systemctl").args(["stop", "--", unit]),
                Duration::from_secs(30),
            );
            let _ = run_timeout(
                Command::new("systemctl").args(["reset-failed", "--", unit]),
                Duration::from_secs(30),
            );
        }
    }
}

/// The journal of `unit` since the test began (last `n` lines), for failure messages: what
/// systemd said about a scope.
pub fn journal(unit: &str, n: usize) -> String {
    let out = run_timeout(
        Command::new("journalctl")
            .args(["--no-pager", "-o", "short-monotonic", "-n"])
            .arg(n.to_string())
            .arg("-u")
            .arg(unit),
        Duration::from_secs(30),
    );
    format!("--- journalctl -u {unit}:\n{}\n", out.stdout.trim_end())
}

/// The `linux.cgroupsPath` of the config.json in `bundle`.
#[track_caller]
pub fn bundle_cgroups_path(bundle: &Path) -> String {
    let path = bundle.join("config.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Asserts the systemd driver made `scope` for a running container whose init is `pid`:
/// the unit is active, in its slice, delegated, its control group the scope's cgroup, and
/// the init is in that cgroup.
#[track_caller]
pub fn assert_scope_runs(scope: &Scope, pid: i32, logs: impl Fn() -> String) {
    let props = scope.show(&["ActiveState", "Slice", "Delegate", "ControlGroup"]);
    let want = |k: &str, v: &str| props.get(k).map(String::as_str) == Some(v);
    assert!(
        want("ActiveState", "active")
            && want("Slice", &scope.slice)
            && want("Delegate", "yes")
            && want("ControlGroup", &scope.cgroup),
        "{scope:?}: systemctl show says {props:?}\n{}{}",
        journal(&scope.unit, 20),
        logs()
    );
    let procs = scope.cg().procs();
    assert!(
        procs.contains(&pid),
        "init {pid} not in {}: {procs:?}\n{}",
        scope.dir().display(),
        logs()
    );
}

/// Asserts `systemctl show` gives `want` (property, value as systemctl prints it) for the
/// unit of `scope`.
#[track_caller]
pub fn assert_unit_props(scope: &Scope, want: &[(&str, &str)], logs: impl Fn() -> String) {
    let names: Vec<&str> = want.iter().map(|(k, _)| *k).collect();
    let got = scope.show(&names);
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k).map(String::as_str) != Some(*v))
        .map(|(k, v)| format!("{k}: want {v:?}, systemd has {:?}", got.get(*k)))
        .collect();
    assert!(
        wrong.is_empty(),
        "properties of {}: {wrong:?}\n{}{}",
        scope.unit,
        journal(&scope.unit, 20),
        logs()
    );
}

/// Asserts that within 20 s no unit matching `pattern` is left and the directory of the
/// scope's cgroup is gone.
#[track_caller]
pub fn assert_scope_gone(scope: &Scope, pattern: &str, logs: impl Fn() -> String) {
    let mut left = Vec::new();
    let gone = util::wait_until(Duration::from_secs(20), || {
        left = units_matching(pattern);
        left.is_empty() && !scope.dir().exists()
    });
    assert!(
        gone,
        "left after rm: units {left:?} ({pattern}), cgroup {} {}\n{}{}",
        scope.dir().display(),
        if scope.dir().exists() {
            "exists"
        } else {
            "gone"
        },
        journal(&scope.unit, 30),
        logs()
    );
}
