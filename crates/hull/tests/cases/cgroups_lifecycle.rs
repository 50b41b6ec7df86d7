//! cgroups across a container's life beyond the limits themselves: `--systemd-cgroup` where
//! systemd does not run, a `create` SIGKILLed half-way, `update`/`events` refusals, the
//! cgroup mount inside the container, `kill --all` and `delete --force` of paused
//! containers, a container joined into a cgroup it did not make, and `ps` arguments.
//!
//! As in `cgroups.rs`, every container nests under `hulltest/` in each hierarchy and a
//! `CgroupGuard` removes what a failing test leaves; nothing is written to a cgroup the
//! test did not make.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{
    assert_cgroups_exist, assert_cgroups_gone, cgroup_dir, cgroup_hierarchies, cgroup_procs,
    cgroup_read, existing_cgroups, is_gone, is_runc, pids_with_env, skip_on_runc, split_table,
    still_alive, wait_until, CgroupGuard, Out, Pending, Test, MIB, STOP_TIMEOUT,
};

/// The runtime's own state file of `id`, parsed (hull's or runc's shape), if there is one.
fn state_file(t: &Test, id: &str) -> Option<Value> {
    let text = fs::read_to_string(t.root.join(id).join("state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The init pid a state file records (`pid` in hull's, `init_process_pid` in runc's).
fn recorded_init(state: &Value) -> Option<i32> {
    state
        .get("pid")
        .or_else(|| state.get("init_process_pid"))
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0)
}

/// The pids limit a state file keeps in its saved config.
fn saved_pids_limit(state: &Value) -> Option<i64> {
    if is_runc() {
        state["config"]["cgroups"]["pids_limit"].as_i64()
    } else {
        state["config"]["linux"]["resources"]["pids"]["limit"].as_i64()
    }
}

/// The cpu shares a state file keeps in its saved config.
fn saved_cpu_shares(state: &Value) -> Option<u64> {
    if is_runc() {
        state["config"]["cgroups"]["cpu_shares"].as_u64()
    } else {
        state["config"]["linux"]["resources"]["cpu"]["shares"].as_u64()
    }
}

/// Starts `create --bundle B ID` in the background (the config must be written).
fn spawn_create(t: &Test, id: &str) -> Pending {
    t.spawn_call(&["create", "--bundle", &t.bundle_str(), id])
}

/// Kills, on drop, the host processes (hooks) that carry an env entry of this test.
struct HookReaper(String);

impl Drop for HookReaper {
    fn drop(&mut self) {
        for pid in pids_with_env(&self.0) {
            // SAFETY: kill(2) of a hook process of this test (found by its unique env entry).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// A runtime call in the background that is SIGKILLed by `kill`, or on drop.
struct KillOnDrop(Option<Pending>);

impl KillOnDrop {
    fn kill(&mut self) -> Out {
        self.0.take().expect("killed once").kill()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.kill();
        }
    }
}

// --- --systemd-cgroup where systemd does not run ---------------------------------------

/// Whether systemd runs here (then the `--systemd-cgroup` tests do not apply).
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").exists()
}

/// `--systemd-cgroup create` of a new container with the `cgroupsPath` `path` makes of its
/// id (or none): must fail with one line and leave neither state nor any cgroup (the
/// literal path, the id, or a systemd scope). The call and the path.
#[track_caller]
fn systemd_create_fails(
    t: &mut Test,
    g: &CgroupGuard,
    path: Option<&dyn Fn(&str) -> String>,
) -> (Out, Option<String>) {
    let id = t.new_id();
    let path = path.map(|f| f(&id));
    // Where a runtime that got it wrong could have put the container.
    let mut candidates = vec![
        id.clone(),
        format!("/system.slice/hull-{id}.scope"),
        format!("/system.slice/runc-{id}.scope"),
    ];
    candidates.extend(path.clone());
    for c in &candidates {
        g.add(&id, c);
    }
    match &path {
        Some(p) => t.config["linux"]["cgroupsPath"] = json!(p),
        None => {
            t.config["linux"]
                .as_object_mut()
                .unwrap()
                .remove("cgroupsPath");
        }
    }
    t.write_config();
    let out = t.hull(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        &t.bundle_str(),
        &id,
    ]);
    out.fails();
    assert_eq!(
        out.stderr.trim_end().lines().count(),
        1,
        "one line of error:\n{out}"
    );
    t.assert_nothing_left(&id);
    for c in &candidates {
        let left = existing_cgroups(c);
        assert!(left.is_empty(), "{left:?} made by a failed create:\n{out}");
    }
    (out, path)
}

#[test]
fn systemd_cgroup_without_systemd_fails_and_leaves_nothing() {
    hull_testing::skip_unless!(
        !systemd_running(),
        "no-systemd",
        "checks the refusal on a host without systemd (the guest tests the driver)"
    );
    let mut t = Test::new("cgl_systemd");
    let g = t.cgroup_guard();
    t.args(&["sleep", "100"]);
    let (out, path) = systemd_create_fails(
        &mut t,
        &g,
        Some(&|id: &str| format!("system.slice:hull:{id}")),
    );
    out.stderr_has("systemd").stderr_has("not running");
    if !skip_on_runc("runc 1.1.5 does not name linux.cgroupsPath") {
        out.stderr_has("linux.cgroupsPath")
            .stderr_has(&path.unwrap());
    }
}

#[test]
fn systemd_cgroup_path_not_of_the_slice_form_is_refused() {
    let mut t = Test::new("cgl_systemd_form");
    let g = t.cgroup_guard();
    t.args(&["sleep", "100"]);
    let forms: [&dyn Fn(&str) -> String; 3] = [
        &|id| format!("/hulltest-sd-{id}"),
        &|id| format!("hulltest-sd-{id}:x"),
        &|id| format!("a:b:{id}:d"),
    ];
    for form in forms {
        let (out, path) = systemd_create_fails(&mut t, &g, Some(form));
        let path = path.unwrap();
        // Both runtimes say which form they want and what they got.
        out.stderr_has("slice:prefix:name").stderr_has(&path);
        if !skip_on_runc("runc 1.1.5 does not name linux.cgroupsPath") {
            out.stderr_has("linux.cgroupsPath");
        }
    }
}

#[test]
fn systemd_cgroup_without_a_cgroups_path_takes_the_default_slice() {
    // runc reads a missing cgroupsPath as "system.slice:runc:ID": the only error left here
    // is that systemd does not run, not the form of a path the config never gave.
    hull_testing::skip_unless!(
        !systemd_running(),
        "no-systemd",
        "checks the refusal on a host without systemd (the guest tests the driver)"
    );
    let mut t = Test::new("cgl_systemd_default");
    let g = t.cgroup_guard();
    t.args(&["sleep", "100"]);
    let (out, _) = systemd_create_fails(&mut t, &g, None);
    out.stderr_has("systemd").stderr_has("not running");
    assert!(
        !out.stderr.contains("slice:prefix:name"),
        "a missing cgroupsPath is not of a wrong form:\n{out}"
    );
}

// --- a create SIGKILLed half-way --------------------------------------------------------

/// A hook that sleeps 5 s, marked with `mark` in its environment. `/usr/bin/busybox` is
/// the same on the host and in the rootfs, so it works on either side of pivot_root.
fn sleeping_hook(mark: &str) -> Value {
    json!({
        "path": "/usr/bin/busybox",
        "args": ["busybox", "sleep", "5"],
        "env": [mark]
    })
}

/// Creates the test's container with a sleeping hook of `kind`, SIGKILLs the create while
/// the hook runs, then checks that `delete --force` removes state, cgroups and every
/// process (the init the state recorded, and the hook when it ran inside the container).
fn killed_during_hook(name: &str, kind: &str, hook_inside: bool) {
    if skip_on_runc("runc 1.1.5 writes state.json only at the end of create") {
        return;
    }
    let mut t = Test::new(name);
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    let mark = format!("HULL_TEST_HOOK={id}");
    let _reaper = HookReaper(mark.clone());
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 20 });
    let mut hooks = json!({});
    hooks[kind] = json!([sleeping_hook(&mark)]);
    t.config["hooks"] = hooks;
    t.args(&["sleep", "100"]);
    t.write_config();

    // Killed on drop too, so that a failed assertion below does not leave it creating.
    let mut create = KillOnDrop(Some(spawn_create(&t, &id)));
    let mut hooks = Vec::new();
    if !wait_until(STOP_TIMEOUT, || {
        hooks = pids_with_env(&mark);
        !hooks.is_empty()
    }) {
        panic!("the {kind} hook never ran:\n{}", create.kill());
    }
    // By now the cgroups are made and the init is in them.
    assert_cgroups_exist(&path);
    let state = state_file(&t, &id).expect("state.json while the hook runs");
    let init = recorded_init(&state).expect("init pid in state.json while the hook runs");
    t.track_pid(init);
    let pids_dir = cgroup_dir("pids", &path);
    assert!(
        cgroup_procs(&pids_dir).contains(&init),
        "init {init} not in {}",
        pids_dir.display()
    );
    if hook_inside {
        for h in &hooks {
            assert!(
                cgroup_procs(&pids_dir).contains(h),
                "{kind} hook {h} is not in the container's cgroup"
            );
        }
    }

    let killed = create.kill();
    assert_eq!(killed.code, 128 + libc::SIGKILL, "{killed}");

    // A create that died leaves a container that never was: `stopped`, which a plain
    // delete removes (clients do not always force).
    assert_eq!(t.status(&id), "stopped");
    let delete: &[&str] = if hook_inside {
        &["delete", "--force", &id]
    } else {
        &["delete", &id]
    };
    t.hull(delete).ok();
    assert!(!t.root.join(&id).exists(), "state dir left after delete");
    assert_cgroups_gone(&path);
    let left = still_alive(&[init], STOP_TIMEOUT);
    assert!(left.is_empty(), "init {init} still alive after delete -f");
    if hook_inside {
        let left = still_alive(&hooks, STOP_TIMEOUT);
        assert!(left.is_empty(), "{kind} hook still alive: {left:?}");
    }
    t.assert_no_processes(&id, STOP_TIMEOUT);
    t.assert_nothing_left(&id);
}

#[test]
fn create_killed_during_create_runtime_hook_is_cleaned_up_by_delete_force() {
    killed_during_hook("cgl_kill_cr_hook", "createRuntime", false);
}

#[test]
fn create_killed_during_create_container_hook_is_cleaned_up_by_delete_force() {
    killed_during_hook("cgl_kill_cc_hook", "createContainer", true);
}

#[test]
fn create_killed_at_any_moment_is_cleaned_up_and_the_id_reusable() {
    if skip_on_runc("runc 1.1.5 writes state.json only at the end of create") {
        return;
    }
    let mut t = Test::new("cgl_kill_create");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 20 });
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
    t.args(&["sleep", "100"]);
    t.write_config();

    // How long one create takes here, to spread the kills over it.
    let started = Instant::now();
    spawn_create(&t, &id).wait().ok();
    let full = started.elapsed();
    t.hull(&["delete", "--force", &id]).ok();
    assert_cgroups_gone(&path);

    let mut delays: Vec<Duration> = [0u32, 5, 10, 15, 20]
        .iter()
        .map(|ms| Duration::from_millis(u64::from(*ms)))
        .collect();
    delays.extend([10u32, 25, 50, 75, 90].iter().map(|pct| full * *pct / 100));
    for delay in delays {
        let create = spawn_create(&t, &id);
        std::thread::sleep(delay);
        let killed = create.kill();
        let state = state_file(&t, &id);
        let init = state.as_ref().and_then(recorded_init);
        if let Some(p) = init {
            t.track_pid(p);
        }
        println!(
            "create killed at {delay:?} (exit {}): state.json {}, init {init:?}, {} cgroups",
            killed.code,
            if state.is_some() { "written" } else { "absent" },
            existing_cgroups(&path).len()
        );
        let del = t.hull(&["delete", "--force", &id]);
        assert!(
            del.success(),
            "delete -f after a create killed at {delay:?}:\n{del}\n{killed}"
        );
        assert!(
            !t.root.join(&id).exists(),
            "state dir left (create killed at {delay:?})"
        );
        let left = existing_cgroups(&path);
        assert!(
            left.is_empty(),
            "cgroups left (create killed at {delay:?}): {left:?}"
        );
        if let Some(p) = init {
            assert!(
                still_alive(&[p], STOP_TIMEOUT).is_empty(),
                "init {p} alive (create killed at {delay:?})"
            );
        }
        t.assert_no_processes(&id, STOP_TIMEOUT);
        let mounts = t.mounts_left();
        assert!(
            mounts.is_empty(),
            "mounts left (create killed at {delay:?}): {mounts:?}"
        );

        // The same id works again from scratch.
        let again = spawn_create(&t, &id).wait();
        assert!(
            again.success(),
            "create again after a create killed at {delay:?}:\n{again}"
        );
        assert_eq!(cgroup_read("pids", &path, "pids.max"), "20");
        t.hull(&["delete", "--force", &id]).ok();
        assert_cgroups_gone(&path);
    }
}

// --- update and events refusals ---------------------------------------------------------

#[test]
fn update_and_events_stats_of_a_stopped_container_fail() {
    let mut t = Test::new("cgl_stopped");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 20 });
    t.args(&["true"]);
    t.create_and_start(&id);
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    let before = fs::read_to_string(t.root.join(&id).join("state.json")).unwrap();

    t.hull(&["update", "--pids-limit", "30", &id])
        .fails()
        .stderr_has("container not running");
    t.call_stdin(&["update", "-r", "-", &id], r#"{"pids":{"limit":30}}"#)
        .fails()
        .stderr_has("container not running");
    t.hull(&["events", "--stats", &id])
        .fails()
        .stderr_has(&format!("container with id {id} is not running"));
    let after = fs::read_to_string(t.root.join(&id).join("state.json")).unwrap();
    assert_eq!(before, after, "a refused update changed the state");
    assert_eq!(t.status(&id), "stopped");
}

/// A running container with known memory, cpu and pids limits; its cgroupsPath.
fn limited(t: &mut Test, g: &CgroupGuard) -> String {
    let id = t.id.clone();
    let path = t.in_cgroup(g, &id);
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
    t.config["linux"]["resources"]["cpu"] =
        json!({ "quota": 20000, "period": 100000, "shares": 512 });
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 50 });
    t.args(&["sleep", "100"]);
    t.create_and_start(&id);
    path
}

/// The limits `limited` set, as the cgroup files hold them now, and the state file.
#[derive(PartialEq)]
struct Snapshot {
    files: Vec<(&'static str, String)>,
    state: String,
}

fn snapshot(t: &Test, path: &str) -> Snapshot {
    let files = [
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("cpu", "cpu.shares"),
        ("cpuset", "cpuset.cpus"),
        ("pids", "pids.max"),
    ]
    .iter()
    .map(|(c, f)| (*f, cgroup_read(c, path, f)))
    .collect();
    let state = fs::read_to_string(t.root.join(&t.id).join("state.json")).unwrap();
    Snapshot { files, state }
}

/// Asserts that neither a limit nor the state file changed since `before`.
#[track_caller]
fn assert_unchanged(t: &Test, path: &str, before: &Snapshot, after_what: &str) {
    let now = snapshot(t, path);
    assert_eq!(now.files, before.files, "limits after {after_what}");
    assert!(
        now.state == before.state,
        "state.json changed after {after_what}"
    );
}

#[test]
fn update_with_a_bad_value_fails_as_runc_does_and_changes_nothing() {
    let mut t = Test::new("cgl_update_bad");
    let g = t.cgroup_guard();
    let path = limited(&mut t, &g);
    let id = t.id.clone();
    let before = snapshot(&t, &path);

    let cases: [(&[&str], &str); 6] = [
        (
            &["--memory", "abc"],
            "invalid value for memory: invalid size: 'abc'",
        ),
        (
            &["--memory", "64Q"],
            "invalid value for memory: invalid size: '64Q'",
        ),
        (
            &["--memory-swap", "zz"],
            "invalid value for memory-swap: invalid size: 'zz'",
        ),
        (
            &["--cpu-quota", "x"],
            r#"invalid value for cpu-quota: strconv.ParseInt: parsing \"x\": invalid syntax"#,
        ),
        (
            &["--cpu-share", "1.5"],
            r#"invalid value for cpu-share: strconv.ParseUint: parsing \"1.5\": invalid syntax"#,
        ),
        // A good value beside a bad one is not applied either.
        (
            &["--pids-limit", "20", "--memory", "12x"],
            "invalid value for memory: invalid size: '12x'",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["update"];
        args.extend_from_slice(flags);
        args.push(&id);
        t.hull(&args).fails().stderr_has(message);
        assert_unchanged(&t, &path, &before, &format!("update {flags:?}"));
    }
    // A negative period: refused (runc: "invalid value for cpu-period: strconv.ParseUint…";
    // hull's argument parser refuses `-5` before that).
    t.hull(&["update", "--cpu-period", "-5", &id]).fails();
    assert_unchanged(&t, &path, &before, "update --cpu-period -5");
    assert_eq!(t.status(&id), "running");
}

#[test]
fn update_the_kernel_refuses_leaves_every_limit_as_it_was() {
    // runc 1.1.5 keeps what it wrote before the failing file (its rollback fails too).
    if skip_on_runc("runc 1.1.5 leaves the limits written before the one that failed") {
        return;
    }
    let mut t = Test::new("cgl_update_refused");
    let g = t.cgroup_guard();
    let path = limited(&mut t, &g);
    let id = t.id.clone();
    let before = snapshot(&t, &path);
    // A period below 1 ms, a CPU that is not there, a limit below the current usage.
    for flags in [
        &["--memory", "100M", "--cpu-period", "500"][..],
        &[
            "--memory",
            "100M",
            "--pids-limit",
            "20",
            "--cpuset-cpus",
            "999",
        ],
        &["--pids-limit", "20", "--cpu-share", "300", "--memory", "1k"],
    ] {
        let mut args = vec!["update"];
        args.extend_from_slice(flags);
        args.push(&id);
        t.hull(&args).fails();
        assert_unchanged(&t, &path, &before, &format!("update {flags:?}"));
    }
    assert_eq!(t.status(&id), "running");
}

#[test]
fn update_r_with_malformed_json_fails_naming_the_input() {
    let mut t = Test::new("cgl_update_json");
    let g = t.cgroup_guard();
    let path = limited(&mut t, &g);
    let id = t.id.clone();
    let before = snapshot(&t, &path);

    let file = t.path("resources.json");
    fs::write(&file, r#"{"pids": {"limit": "#).unwrap();
    let file_s = file.to_string_lossy().into_owned();
    let from_file = t.hull(&["update", "-r", &file_s, &id]);
    from_file.fails();
    let from_stdin = t.call_stdin(&["update", "-r", "-", &id], "{pids: 3}");
    from_stdin.fails();
    assert_unchanged(&t, &path, &before, "a malformed -r");

    // runc prints only the JSON decoder's message.
    if !skip_on_runc("runc 1.1.5 does not say where the JSON came from") {
        from_file.stderr_has(&file_s);
        from_stdin.stderr_has("standard input");
    }

    // A file that is not there: its name and why.
    let missing = t.path("no-such-resources.json");
    let missing_s = missing.to_string_lossy().into_owned();
    let out = t.hull(&["update", "-r", &missing_s, &id]);
    out.fails().stderr_has(&missing_s);
    assert!(
        out.stderr
            .to_lowercase()
            .contains("no such file or directory"),
        "the reason is missing:\n{out}"
    );
    assert_unchanged(&t, &path, &before, "-r of a missing file");
}

#[test]
fn update_pids_limit_is_saved_and_kept_by_a_later_update() {
    let mut t = Test::new("cgl_update_saved");
    let g = t.cgroup_guard();
    let path = limited(&mut t, &g);
    let id = t.id.clone();

    t.hull(&["update", "--pids-limit", "33", &id]).ok();
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "33");
    let state = state_file(&t, &id).expect("state.json");
    assert_eq!(saved_pids_limit(&state), Some(33), "saved config");

    // Only cpu: pids.max (and the saved pids limit) stay as the first update left them.
    t.call_stdin(&["update", "-r", "-", &id], r#"{"cpu":{"shares":300}}"#)
        .ok();
    assert_eq!(cgroup_read("cpu", &path, "cpu.shares"), "300");
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "33");
    t.hull(&["update", "--memory", "80M", &id]).ok();
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "33");
    assert_eq!(cgroup_read("cpu", &path, "cpu.shares"), "300");
    assert_eq!(
        cgroup_read("memory", &path, "memory.limit_in_bytes"),
        (80 * MIB).to_string()
    );
    // runc 1.1.5 saves a pids limit of 0 on any update that does not give one (the file
    // keeps 33 only because it skips writing 0).
    if !skip_on_runc("runc 1.1.5 forgets the saved pids limit on a later update") {
        let state = state_file(&t, &id).expect("state.json");
        assert_eq!(saved_pids_limit(&state), Some(33), "saved config");
        assert_eq!(saved_cpu_shares(&state), Some(300), "saved config");
    }
}

// --- the cgroup mount inside the container ----------------------------------------------

/// What a container saw of its cgroup mount, and the host's view of its pids.max then.
struct Seen {
    stdout: String,
    stderr: String,
    host: String,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stdout {:?}\nstderr {:?}\nhost pids.max {:?}",
            self.stdout, self.stderr, self.host
        )
    }
}

/// Starts a container with a `cgroup` mount at /sys/fs/cgroup with `options` (and a cgroup
/// namespace if `cgroupns`) and a pids limit of 42: it prints its pids.max, tries to write
/// 7 into it and prints it again; then the host's pids.max is read while it still lives.
fn write_pids_max_inside(name: &str, options: &[&str], cgroupns: bool) -> Seen {
    let mut t = Test::new(name);
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys/fs/cgroup");
    t.mount(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": options
    }));
    if cgroupns {
        t.add_namespace("cgroup", None);
    }
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 42 });
    t.sh("echo before=$(cat /sys/fs/cgroup/pids/pids.max); \
         echo 7 > /sys/fs/cgroup/pids/pids.max && echo written; \
         echo after=$(cat /sys/fs/cgroup/pids/pids.max); echo end; exec sleep 100");
    let (out, _) = t.create(&id);
    out.ok();
    t.hull(&["start", &id]).ok();
    let done = wait_until(STOP_TIMEOUT, || out.stdout_now().contains("end\n"));
    let seen = Seen {
        stdout: out.stdout_now(),
        stderr: fs::read_to_string(&out.stderr_path).unwrap_or_default(),
        host: cgroup_read("pids", &path, "pids.max"),
    };
    assert!(done, "the container did not finish its script:\n{seen}");
    assert!(seen.stdout.starts_with("before=42\n"), "{seen}");
    seen
}

#[track_caller]
fn assert_read_only(seen: &Seen) {
    assert!(!seen.stdout.contains("written"), "{seen}");
    assert!(seen.stderr.contains("Read-only file system"), "{seen}");
    assert!(seen.stdout.contains("after=42\n"), "{seen}");
    assert_eq!(seen.host, "42", "the host's pids.max changed:\n{seen}");
}

#[track_caller]
fn assert_writable(seen: &Seen) {
    assert!(seen.stdout.contains("written\nafter=7\n"), "{seen}");
    // The container's own cgroup, as the host sees it.
    assert_eq!(
        seen.host, "7",
        "the write did not reach the container's cgroup"
    );
}

#[test]
fn cgroup_mount_with_ro_is_read_only_with_or_without_a_cgroup_namespace() {
    let opts = ["nosuid", "noexec", "nodev", "relatime", "ro"];
    assert_read_only(&write_pids_max_inside("cgl_mount_ro", &opts, false));
    assert_read_only(&write_pids_max_inside("cgl_mount_ro_ns", &opts, true));
}

#[test]
fn cgroup_mount_without_ro_or_a_cgroup_namespace_is_read_only() {
    // CVE-2023-25809: without its own cgroup namespace a container gets cgroupfs read-only
    // unless the config says `rw`. runc 1.1.5 applies that in user namespaces only.
    if skip_on_runc("runc 1.1.5 mounts it read-write outside a user namespace") {
        return;
    }
    let opts = ["nosuid", "noexec", "nodev", "relatime"];
    assert_read_only(&write_pids_max_inside("cgl_mount_default", &opts, false));
}

#[test]
fn cgroup_mount_with_rw_lets_the_container_write_its_own_cgroup() {
    let opts = ["nosuid", "noexec", "nodev", "relatime", "rw"];
    assert_writable(&write_pids_max_inside("cgl_mount_rw_ns", &opts, true));
    assert_writable(&write_pids_max_inside("cgl_mount_rw", &opts, false));
}

// --- kill and delete of paused containers -----------------------------------------------

/// An init that ends on SIGTERM (as pid 1 of its namespace it ignores it otherwise) and
/// two children.
const TRAPPING_INIT: &str = "trap 'exit 0' TERM; sleep 100 & sleep 101 & wait";

/// Starts `id` with `TRAPPING_INIT` and waits until its three processes are in its cgroup.
#[track_caller]
fn start_three(t: &mut Test, g: &CgroupGuard, id: &str) -> (String, Vec<i32>) {
    let path = t.in_cgroup(g, id);
    t.sh(TRAPPING_INIT);
    let (_, init) = t.create_and_start(id);
    let procs = t.wait_cgroup_procs(&path, init, 3);
    (path, procs)
}

#[test]
fn kill_all_term_ends_every_process_of_a_pid_namespace() {
    let mut t = Test::new("cgl_kill_all_pidns");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let (path, procs) = start_three(&mut t, &g, &id);
    t.hull(&["kill", "--all", &id, "TERM"]).ok();
    let left = still_alive(&procs, STOP_TIMEOUT);
    assert!(left.is_empty(), "alive after kill --all TERM: {left:?}");
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    t.hull(&["delete", &id]).ok();
    assert_cgroups_gone(&path);
}

#[test]
fn kill_all_term_leaves_a_paused_container_paused_until_resumed() {
    // runc freezes, signals and thaws, which resumes a container somebody paused; hull
    // leaves the freezer as it found it (issue #17): the signal is acted on at resume.
    if skip_on_runc("runc 1.1.5 thaws a paused container on kill --all") {
        return;
    }
    let mut t = Test::new("cgl_kill_all_paused");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let (path, procs) = start_three(&mut t, &g, &id);
    t.hull(&["pause", &id]).ok();
    assert_eq!(t.status(&id), "paused");
    t.hull(&["kill", "--all", &id, "TERM"]).ok();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(t.status(&id), "paused");
    assert_eq!(cgroup_read("freezer", &path, "freezer.state"), "FROZEN");
    t.hull(&["resume", &id]).ok();
    let left = still_alive(&procs, Duration::from_secs(2));
    let freezer = cgroup_read("freezer", &path, "freezer.state");
    assert!(
        left.is_empty(),
        "alive after kill --all TERM of a paused container: {left:?} (freezer.state {freezer})"
    );
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    t.hull(&["delete", &id]).ok();
    assert_cgroups_gone(&path);
}

#[test]
fn kill_sigkill_ends_a_paused_container() {
    let mut t = Test::new("cgl_kill_paused");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let (path, procs) = start_three(&mut t, &g, &id);
    t.hull(&["pause", &id]).ok();
    t.hull(&["kill", &id, "KILL"]).ok();
    // Frozen processes die once thawed; the init's death ends the rest of its namespace.
    let left = still_alive(&procs, STOP_TIMEOUT);
    assert!(left.is_empty(), "alive after kill KILL: {left:?}");
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    assert_eq!(cgroup_read("freezer", &path, "freezer.state"), "THAWED");
    t.hull(&["delete", &id]).ok();
    assert_cgroups_gone(&path);
}

#[test]
fn delete_force_of_a_paused_container_removes_it_and_its_cgroups() {
    let mut t = Test::new("cgl_delete_paused");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let (path, procs) = start_three(&mut t, &g, &id);
    t.hull(&["pause", &id]).ok();
    assert_eq!(t.status(&id), "paused");
    t.hull(&["delete", "--force", &id]).ok();
    let left = still_alive(&procs, STOP_TIMEOUT);
    assert!(left.is_empty(), "alive after delete -f: {left:?}");
    assert!(!t.root.join(&id).exists(), "state dir left after delete -f");
    assert_cgroups_gone(&path);
    t.assert_no_processes(&id, STOP_TIMEOUT);
}

// --- a cgroup the test made, joined by absolute path ------------------------------------

/// A host `sleep` this test started: SIGKILLed and reaped on drop.
struct Bystander(Child);

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes cgroup `path` (absolute) in every hierarchy, as a caller would before handing it
/// to a runtime; a new cpuset gets its parent's cpus and mems so that it can hold tasks.
fn make_cgroup(path: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for h in cgroup_hierarchies() {
        let d = h.dir_for(path);
        fs::create_dir(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if d.join(f).exists() {
                let above = fs::read_to_string(d.parent().unwrap().join(f)).unwrap();
                fs::write(d.join(f), above.trim())
                    .unwrap_or_else(|e| panic!("write {f} of {}: {e}", d.display()));
            }
        }
        dirs.push(d);
    }
    dirs
}

#[test]
fn container_in_an_existing_cgroup_spares_it_and_its_other_processes() {
    // runc 1.1.5 signals every process of the cgroup (kill --all, delete -f) and removes it.
    if skip_on_runc("runc 1.1.5 treats a cgroup it joined as its own") {
        return;
    }
    let mut t = Test::new("cgl_existing");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = format!("/hulltest-pre-{id}");
    // The guard runs last: after the containers, it kills what is left in it and removes it.
    g.add(&id, &path);
    let dirs = make_cgroup(&path);
    let bystander = Bystander(
        Command::new("/bin/sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep"),
    );
    let foreign = bystander.0.id() as i32;
    // A second test-made cgroup to park the bystander in between the two containers.
    let aside = format!("/hulltest-aside-{id}");
    g.add(&format!("{id}-aside"), &aside);
    let aside_dirs = make_cgroup(&aside);
    let move_to = |dirs: &[PathBuf]| {
        for d in dirs {
            fs::write(d.join("cgroup.procs"), foreign.to_string())
                .unwrap_or_else(|e| panic!("move {foreign} into {}: {e}", d.display()));
        }
    };
    t.config["linux"]["cgroupsPath"] = json!(path);
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 30 });
    t.sh("sleep 100 & exec sleep 101");

    // A cgroup that holds others' processes at create is refused (runc 1.2+); one that
    // gets them later keeps them apart from the container's.
    let (_, init) = t.create_and_start(&id);
    move_to(&dirs);
    for d in &dirs {
        let procs = cgroup_procs(d);
        assert!(procs.contains(&init), "init {init} not in {}", d.display());
        assert!(procs.contains(&foreign), "{} lost {foreign}", d.display());
    }
    // ps lists the container's two processes, not the bystander.
    let mut pids: Vec<i64> = Vec::new();
    let listed = wait_until(STOP_TIMEOUT, || {
        let out = t.hull(&["ps", "--format", "json", &id]);
        pids = serde_json::from_str(&out.stdout).unwrap_or_default();
        pids.len() == 2
    });
    assert!(listed, "ps --format json: {pids:?}");
    assert!(pids.contains(&i64::from(init)), "{pids:?}");
    assert!(!pids.contains(&i64::from(foreign)), "ps lists {foreign}");
    let container: Vec<i32> = pids.iter().map(|p| *p as i32).collect();
    for p in &container {
        t.track_pid(*p);
    }

    t.hull(&["kill", "--all", &id, "KILL"]).ok();
    let left = still_alive(&container, STOP_TIMEOUT);
    assert!(left.is_empty(), "alive after kill --all: {left:?}");
    assert!(
        !is_gone(foreign),
        "kill --all killed the bystander {foreign}"
    );
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    t.hull(&["delete", &id]).ok();
    for d in &dirs {
        assert!(
            d.is_dir(),
            "delete removed {}, which it did not make",
            d.display()
        );
    }

    // A running one, `delete --force`.
    move_to(&aside_dirs);
    let id2 = t.new_id();
    let (_, init2) = t.create_and_start(&id2);
    move_to(&dirs);
    t.hull(&["delete", "--force", &id2]).ok();
    assert!(still_alive(&[init2], STOP_TIMEOUT).is_empty(), "init alive");
    assert!(
        !is_gone(foreign),
        "delete -f killed the bystander {foreign}"
    );
    for d in &dirs {
        assert!(d.is_dir(), "delete -f removed {}", d.display());
        assert_eq!(cgroup_procs(d), vec![foreign], "{}", d.display());
    }
    drop(bystander);
}

// --- ps arguments -----------------------------------------------------------------------

#[test]
fn ps_passes_a_custom_format_on_and_reports_ps_errors() {
    let mut t = Test::new("cgl_ps_args");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.sh("sleep 100 & exec sleep 101");
    t.create_and_start(&id);
    let mut pids: Vec<i64> = Vec::new();
    assert!(
        wait_until(STOP_TIMEOUT, || {
            let out = t.hull(&["ps", "--format", "json", &id]);
            pids = serde_json::from_str(&out.stdout).unwrap_or_default();
            pids.len() == 2
        }),
        "ps --format json: {pids:?}"
    );
    pids.sort();

    let out = t.hull(&["ps", &id, "-o", "pid,args"]);
    out.ok();
    let (header, lines) = split_table(&out.stdout);
    assert_eq!(header, ["PID", "COMMAND"], "{out}");
    let mut rows: Vec<(i64, String)> = lines
        .map(|l| {
            let (pid, args) = l.trim_start().split_once(' ').unwrap_or((l, ""));
            (
                pid.parse().unwrap_or_else(|_| panic!("row {l:?}:\n{out}")),
                args.trim().to_string(),
            )
        })
        .collect();
    rows.sort();
    let listed: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(listed, pids, "{out}");
    let mut args: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    args.sort();
    assert_eq!(args, ["sleep 100", "sleep 101"], "{out}");

    // ps(1) refuses the argument: its message and a failure.
    let bad = t.hull(&["ps", &id, "--bogus"]);
    bad.fails().stderr_has("unknown gnu long option");
    assert!(bad.stdout.is_empty(), "{bad}");
    t.hull(&["ps", "--format", "xml", &id])
        .fails()
        .stderr_has("invalid format option");
}

/// Runs the runtime as `nobody`, root only in a user namespace of its own (`unshare -Ur`): a
/// rootless caller that may not make cgroups.
fn rootless(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "-Ur",
        ])
        .arg(crate::util::runtime())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv")
}

#[test]
fn rootless_runs_without_cgroups_unless_limits_are_asked_for() {
    // runc 1.1.5 fails before cgroups here: "failed to setns to host mntns" as nobody.
    if skip_on_runc("runc 1.1.5 cannot run as nobody under unshare -Ur") {
        return;
    }
    let t = Test::new("cgl_rootless");
    let probe = rootless(&["--version"]);
    hull_testing::skip_unless!(
        probe.status.success(),
        "root",
        "nobody cannot run the runtime here: {}",
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    let bundle = t.dir.join("rootless");
    let state = t.dir.join("rootless-state");
    fs::create_dir_all(&bundle).unwrap();
    fs::create_dir_all(&state).unwrap();
    fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let spec = Command::new(crate::util::runtime())
        .args(["spec", "--rootless", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(spec.status.success(), "spec --rootless: {spec:?}");
    let path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["true"]);
    config["root"]["path"] = json!(t.rootfs);
    fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let bundle_arg = bundle.to_str().unwrap();
    let state_arg = state.to_str().unwrap();

    let id = t.new_id();
    let out = rootless(&["--root", state_arg, "run", "--bundle", bundle_arg, &id]);
    assert!(
        out.status.success(),
        "rootless run without limits: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for h in cgroup_hierarchies() {
        let dir = h.dir_for(&id);
        assert!(!dir.exists(), "{} made by a rootless run", dir.display());
    }

    config["linux"]["resources"] = json!({ "pids": { "limit": 5 } });
    fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = t.new_id();
    let out = rootless(&["--root", state_arg, "run", "--bundle", bundle_arg, &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a rootless pids limit must fail");
    assert!(
        stderr.to_lowercase().contains("permission denied"),
        "stderr: {stderr}"
    );
    assert!(
        !state.join(&id).exists(),
        "state left by a failed rootless run"
    );
    for h in cgroup_hierarchies() {
        let dir = h.dir_for(&id);
        assert!(
            !dir.exists(),
            "{} left by a failed rootless run",
            dir.display()
        );
    }
}

#[test]
fn create_under_a_frozen_parent_fails_instead_of_hanging() {
    // runc 1.1.5 checks only the leaf's own state, joins and waits for the frozen init.
    if skip_on_runc("runc 1.1.5 does not see a frozen parent and hangs") {
        return;
    }
    let mut t = Test::new("cgl_frozen_parent");
    let id = t.id.clone();
    let freezer = cgroup_hierarchies()
        .into_iter()
        .find(|h| h.controllers.iter().any(|c| c == "freezer"));
    let Some(freezer) = freezer else {
        hull_testing::skip(
            "cgroup-v1",
            "no v1 freezer here (on a unified host the guest test \
             cgroup_v2::create_under_a_frozen_parent_fails_and_leaves_nothing covers it)",
        );
        return;
    };
    // A parent the test makes and freezes; the container's cgroup is born frozen below it.
    let parent_path = format!("/hulltest-frozen-{id}");
    let parent = freezer.dir_for(&parent_path);
    fs::create_dir(&parent).unwrap();
    struct Thaw(PathBuf);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = fs::write(self.0.join("freezer.state"), "THAWED");
            let _ = fs::remove_dir(&self.0);
        }
    }
    let _thaw = Thaw(parent.clone());
    fs::write(parent.join("freezer.state"), "FROZEN").unwrap();
    let path = format!("{parent_path}/c");
    t.config["linux"]["cgroupsPath"] = json!(path);
    t.args(&["true"]);
    let (out, took) = t.create_fails();
    assert!(took < STOP_TIMEOUT, "create took {took:?}");
    assert!(out.stderr.contains("frozen"), "{out}");
    assert!(
        !freezer.dir_for(&path).exists(),
        "the container's cgroup is left"
    );
    for h in cgroup_hierarchies() {
        // The parents hull made in the other hierarchies go with the failed create.
        assert!(
            !h.dir_for(&path).exists(),
            "{} left",
            h.dir_for(&path).display()
        );
    }
}

#[test]
fn a_cgroup_that_holds_another_containers_processes_is_refused() {
    // runc 1.2+: "container's cgroup is not empty"; the running one is left alone.
    if skip_on_runc("runc 1.1.5 only warns and shares the cgroup") {
        return;
    }
    let mut t = Test::new("cgl_not_empty");
    let g = t.cgroup_guard();
    let first = t.id.clone();
    let path = t.in_cgroup(&g, &first);
    t.args(&["sleep", "100"]);
    let (_, init) = t.create_and_start(&first);
    let second = t.new_id();
    let bundle = t.bundle_str();
    for cmd in ["create", "run"] {
        let mut args = vec![cmd, "--bundle", &bundle];
        if cmd == "run" {
            args.push("-d");
        }
        args.push(&second);
        let out = t.hull(&args);
        out.fails()
            .stderr_has("container's cgroup is not empty: 1 process(es) found");
        t.assert_nothing_left(&second);
    }
    assert_eq!(t.status(&first), "running");
    assert!(!is_gone(init));
    assert_cgroups_exist(&path);
}
