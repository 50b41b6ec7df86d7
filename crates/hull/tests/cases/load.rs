//! Load: 200 containers through create, start and delete, 8 at a time, under one `--root`.
//! Half run `true` and are deleted once stopped, half run `sleep` and are deleted with
//! `--force` while running. All must succeed, and afterwards nothing may be left: state
//! dirs, mounts, cgroups, processes, or descriptors of this process pointing into the test's
//! directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::malformed::cgroups_named;
use crate::util::{is_gone, mounts_under, runtime, runtime_processes_naming, Test, CALL_TIMEOUT};

const CONTAINERS: usize = 200;
const PARALLEL: usize = 8;

/// One runtime call from a worker thread (the `Test` helpers are single-threaded): stdio to
/// files under `dir`, so that a container inheriting them cannot hold the call open; killed
/// at the deadline. Returns the exit code (-1 on a timeout or signal) and what it printed.
fn call(root: &Path, dir: &Path, tag: &str, args: &[&str]) -> (i32, String, String) {
    let out = dir.join(format!("{tag}.stdout"));
    let err = dir.join(format!("{tag}.stderr"));
    let mut child = Command::new(runtime())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn the runtime");
    let deadline = Instant::now() + CALL_TIMEOUT;
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    (
        code,
        fs::read_to_string(&out).unwrap_or_default(),
        fs::read_to_string(&err).unwrap_or_default(),
    )
}

/// The descriptors of this process that point at or under `dir`.
fn fds_into(dir: &Path) -> Vec<(String, PathBuf)> {
    fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let target = fs::read_link(e.path()).ok()?;
                    target
                        .starts_with(dir)
                        .then(|| (e.file_name().to_string_lossy().into_owned(), target))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// create → start → (wait until stopped → delete) or (delete --force while running); checks
/// each step and that the init is gone at the end. The error says which step failed.
fn lifecycle(
    root: &Path,
    calls: &Path,
    bundle: &Path,
    id: &str,
    runs_sleep: bool,
) -> Result<(), String> {
    let step = |what: &str, args: &[&str]| -> Result<String, String> {
        let (code, out, err) = call(root, calls, &format!("{id}.{what}"), args);
        if code == 0 {
            Ok(out)
        } else {
            Err(format!("{id}: {what} exited {code}: {}", err.trim_end()))
        }
    };
    let pid_file = calls.join(format!("{id}.pid"));
    step(
        "create",
        &[
            "create",
            "--bundle",
            &bundle.to_string_lossy(),
            "--pid-file",
            &pid_file.to_string_lossy(),
            id,
        ],
    )?;
    let pid: i32 = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{id}: no pid in {}", pid_file.display()))?;
    step("start", &["start", id])?;
    let status = |out: &str| -> String {
        serde_json::from_str::<serde_json::Value>(out)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    if runs_sleep {
        let st = status(&step("state", &["state", id])?);
        if st != "running" {
            return Err(format!("{id}: {st:?} after start, want running"));
        }
        // Proves the leftover check below looks where the cgroups are.
        if cgroups_named(id).is_empty() {
            return Err(format!("{id}: no cgroup named after the running container"));
        }
        step("delete", &["delete", "--force", id])?;
    } else {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = status(&step("state", &["state", id])?);
            if st == "stopped" {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{id}: still {st:?} 10 s after start"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        step("delete", &["delete", id])?;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid) {
        if Instant::now() > deadline {
            return Err(format!("{id}: init {pid} alive after delete"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if root.join(id).exists() {
        return Err(format!("{id}: state dir left after delete"));
    }
    Ok(())
}

#[test]
fn two_hundred_containers_eight_at_a_time_all_work_and_leave_nothing() {
    let mut t = Test::new("load_200");
    t.args(&["true"]);
    t.write_config();
    // A second bundle over the same rootfs, running sleep.
    let sleep_bundle = t.mkdir("bundle-sleep");
    let mut c = t.config.clone();
    c["process"]["args"] = json!(["sleep", "1000"]);
    c["root"]["path"] = json!(t.rootfs);
    fs::write(
        sleep_bundle.join("config.json"),
        serde_json::to_vec_pretty(&c).unwrap(),
    )
    .unwrap();
    let calls = t.mkdir("load-calls");
    let ids: Vec<String> = (0..CONTAINERS).map(|_| t.new_id()).collect();
    // All ids share this prefix: one scan finds the processes of any of them.
    let prefix = ids[0].rsplit_once('-').unwrap().0.to_string() + "-";

    let fds_before = fd_count();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= CONTAINERS {
                    return;
                }
                let runs_sleep = i % 2 == 1;
                let bundle = if runs_sleep { &sleep_bundle } else { &t.bundle };
                if let Err(e) = lifecycle(&t.root, &calls, bundle, &ids[i], runs_sleep) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let took = started.elapsed();
    println!(
        "{CONTAINERS} containers, {PARALLEL} at a time: {took:?}; fds of this process {fds_before} before, {} after",
        fd_count()
    );
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {CONTAINERS} lifecycles failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let left: Vec<_> = fs::read_dir(&t.root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in --root: {left:?}");
    let list = t.hull(&["list", "-q"]);
    list.ok();
    assert_eq!(list.stdout.trim(), "", "list after deleting everything");
    let mounts = mounts_under(&t.dir);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let cgroups: Vec<PathBuf> = ids.iter().flat_map(|id| cgroups_named(id)).collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    let procs = t.wait_no_processes(&prefix, Duration::from_secs(5));
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let runtimes = runtime_processes_naming(&t.root_str());
    assert!(
        runtimes.is_empty(),
        "runtime calls still alive: {runtimes:?}"
    );
    let fds = fds_into(&t.dir);
    assert!(
        fds.is_empty(),
        "descriptors into the test dir left open: {fds:?}"
    );
}
