//! The systemd cgroup driver against a real systemd: `--systemd-cgroup` with a
//! `slice:prefix:name` path makes a transient scope (`<prefix>-<name>.scope`) in that slice,
//! with `Delegate=yes` and the limits as unit properties; the cgroup files hold them too and
//! the process inside sees them; `update`, `pause`/`resume`, `exec`, `ps`, `kill --all` and
//! `delete` work on the unit's cgroup; no failure, no SIGKILL of hull and no number of
//! lifecycles leaves a unit behind.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::util::{cgroup_procs, is_gone, send_ready, wait_until, Out, Test, HOST_ROOT, MIB};
use crate::{unified, SLOW};

/// `systemctl show -p A,B unit` as a map; a list property (one line per entry) joined
/// with "; ".
pub(crate) fn show(unit: &str, props: &[&str]) -> BTreeMap<String, String> {
    show_with(Command::new("systemctl"), unit, props)
}

/// `show` through `systemctl` as `systemctl` names it (`runuser … systemctl --user`).
pub(crate) fn show_with(
    mut systemctl: Command,
    unit: &str,
    props: &[&str],
) -> BTreeMap<String, String> {
    let out = systemctl
        .args(["show", "-p", &props.join(","), unit])
        .output()
        .expect("systemctl");
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
    {
        map.entry(k.to_string())
            .and_modify(|old| *old = format!("{old}; {v}"))
            .or_insert_with(|| v.to_string());
    }
    map
}

/// Every unit systemd knows (loaded, in any state) whose name holds `needle`.
fn units_with(needle: &str) -> Vec<String> {
    units_in(Command::new("systemctl"), needle)
}

/// `units_with` of the systemd instance `systemctl` talks to.
pub(crate) fn units_in(mut systemctl: Command, needle: &str) -> Vec<String> {
    let out = systemctl
        .args(["list-units", "--all", "--no-legend", "--plain", "--full"])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|u| u.contains(needle))
        .map(str::to_string)
        .collect()
}

#[track_caller]
fn assert_no_unit(needle: &str, out: &dyn std::fmt::Display) {
    // A stopping unit may take a moment to go.
    let gone = wait_until(SLOW, || units_with(needle).is_empty());
    assert!(gone, "units left: {:?}\n{out}", units_with(needle));
}

/// Stops and resets the units a test names, whatever happened to the test.
struct UnitGuard(Vec<String>);

impl Drop for UnitGuard {
    fn drop(&mut self) {
        for u in &self.0 {
            let _ = Command::new("systemctl")
                .args(["stop", u])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("systemctl")
                .args(["reset-failed", u])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `--systemd-cgroup create` of `id` with the test's config: the call and the init's pid.
pub(crate) fn sd_create(t: &Test, id: &str) -> (Out, Option<i32>) {
    t.write_config();
    let pid_file = t.dir.join(format!("{id}.pid"));
    let out = t.hull(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        &t.bundle_str(),
        "--pid-file",
        &pid_file.to_string_lossy(),
        id,
    ]);
    let pid = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if let Some(p) = pid {
        t.track_pid(p);
    }
    (out, pid)
}

pub(crate) fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// `KEY=value` lines a container printed, as a lookup.
pub(crate) fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn a_scope_holds_the_container_with_its_limits_through_its_life() {
    let cg = unified();
    let mut t = Test::new("sd_life");
    let id = t.id.clone();
    let unit = format!("hulltest-{id}.scope");
    let _g = UnitGuard(vec![unit.clone()]);
    t.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
    t.add_namespace("cgroup", None);
    let res = &mut t.config["linux"]["resources"];
    res["memory"] = json!({ "limit": 64 * MIB, "reservation": 32 * MIB });
    res["cpu"] = json!({ "shares": 512, "quota": 50000, "period": 100000, "cpus": "0" });
    res["pids"] = json!({ "limit": 42 });
    t.args(&["sleep", "1000"]);
    let (out, pid) = sd_create(&t, &id);
    out.ok();
    let pid = pid.expect("pid file");
    let dir = cg.mount.join("system.slice").join(&unit);

    // The unit: a running scope in the slice, delegated, with the limits as properties.
    let p = show(
        &unit,
        &[
            "ActiveState",
            "Slice",
            "Delegate",
            "ControlGroup",
            "MemoryMax",
            "MemoryLow",
            "TasksMax",
            "CPUQuotaPerSecUSec",
            "CPUWeight",
            "AllowedCPUs",
            "DevicePolicy",
            "DeviceAllow",
        ],
    );
    let want = [
        ("ActiveState", "active".to_string()),
        ("Slice", "system.slice".to_string()),
        ("Delegate", "yes".to_string()),
        ("ControlGroup", format!("/system.slice/{unit}")),
        ("MemoryMax", (64 * MIB).to_string()),
        ("MemoryLow", (32 * MIB).to_string()),
        ("TasksMax", "42".to_string()),
        ("CPUQuotaPerSecUSec", "500ms".to_string()),
        // runc's map from shares [2, 262144] to weight [1, 10000].
        ("CPUWeight", "20".to_string()),
        ("AllowedCPUs", "0".to_string()),
        ("DevicePolicy", "strict".to_string()),
    ];
    for (k, v) in &want {
        assert_eq!(
            p.get(*k).map(String::as_str),
            Some(v.as_str()),
            "{k}: {p:?}"
        );
    }
    let allow = &p["DeviceAllow"];
    assert!(
        allow.contains("/dev/char/1:3 rwm") && allow.contains("char-136 rwm"),
        "DeviceAllow: {allow}"
    );
    // The cgroup: the init in it, the same limits in its files.
    assert_eq!(cgroup_procs(&dir), vec![pid], "{}", dir.display());
    for (file, value) in [
        ("memory.max", (64 * MIB).to_string()),
        ("memory.low", (32 * MIB).to_string()),
        ("pids.max", "42".to_string()),
        ("cpu.max", "50000 100000".to_string()),
        ("cpu.weight", "20".to_string()),
        ("cpuset.cpus", "0".to_string()),
    ] {
        assert_eq!(read(&dir, file), value, "{file}");
    }
    t.hull(&["start", &id]).ok();

    // What the processes inside see: their cgroup (the namespace's root) and its limits.
    let seen = t
        .hull(&[
            "exec",
            &id,
            "sh",
            "-c",
            "echo cg=$(cat /proc/self/cgroup); for f in memory.max pids.max cpu.max; \
             do echo $f=$(cat /sys/fs/cgroup/$f); done",
        ])
        .ok()
        .stdout
        .clone();
    assert_eq!(field(&seen, "cg"), Some("0::/"), "{seen}");
    assert_eq!(field(&seen, "memory.max"), Some("67108864"), "{seen}");
    assert_eq!(field(&seen, "pids.max"), Some("42"), "{seen}");
    assert_eq!(field(&seen, "cpu.max"), Some("50000 100000"), "{seen}");

    // update: the properties and the files change together.
    t.hull(&[
        "update",
        "--memory",
        &(128 * MIB).to_string(),
        "--pids-limit",
        "50",
        "--cpu-quota",
        "20000",
        &id,
    ])
    .ok();
    let p = show(&unit, &["MemoryMax", "TasksMax", "CPUQuotaPerSecUSec"]);
    assert_eq!(p["MemoryMax"], (128 * MIB).to_string(), "{p:?}");
    assert_eq!(p["TasksMax"], "50", "{p:?}");
    assert_eq!(p["CPUQuotaPerSecUSec"], "200ms", "{p:?}");
    assert_eq!(read(&dir, "memory.max"), (128 * MIB).to_string());
    assert_eq!(read(&dir, "pids.max"), "50");
    assert_eq!(read(&dir, "cpu.max"), "20000 100000");

    // pause/resume through the unit's cgroup.
    t.hull(&["pause", &id]).ok();
    assert!(read(&dir, "cgroup.events").contains("frozen 1"));
    assert_eq!(t.status(&id), "paused");
    t.hull(&["resume", &id]).ok();
    assert!(read(&dir, "cgroup.events").contains("frozen 0"));

    // ps, events --stats, then kill --all and delete: the unit goes.
    let ps = t.hull(&["ps", "--format", "json", &id]).ok().stdout.clone();
    assert!(ps.contains(&pid.to_string()), "ps: {ps}");
    let stats = t.hull(&["events", "--stats", &id]).ok().stdout.clone();
    let stats: serde_json::Value = serde_json::from_str(stats.trim()).expect("stats json");
    assert_eq!(
        stats["data"]["memory"]["usage"]["limit"],
        json!(128 * MIB),
        "{stats}"
    );
    t.hull(&["kill", "--all", &id, "KILL"]).ok();
    assert!(wait_until(SLOW, || is_gone(pid)), "init still alive");
    t.wait_status(&id, "stopped", SLOW);
    let out = t.hull(&["delete", &id]);
    out.ok();
    assert_no_unit(&id, &out);
    assert!(!dir.exists(), "{} left", dir.display());
}

#[test]
fn default_path_and_nested_slices_are_placed_as_systemd_places_them() {
    let cg = unified();
    let mut t = Test::new("sd_paths");
    let id = t.id.clone();
    let _g = UnitGuard(vec![format!("hull-{id}.scope"), format!("sdt-{id}.scope")]);
    // No cgroupsPath: hull's default, system.slice:hull:<id>.
    t.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    t.sh("cat /proc/self/cgroup");
    t.write_config();
    let out = t.hull(&["--systemd-cgroup", "run", "--bundle", &t.bundle_str(), &id]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        format!("0::/system.slice/hull-{id}.scope"),
        "{out}"
    );
    assert_no_unit(&id, &out);

    // A slice with dashes sits below its parents; an empty prefix names the scope bare.
    let id2 = t.new_id();
    t.config["linux"]["cgroupsPath"] = json!(format!("hulltest-sd.slice:sdt:{id2}"));
    t.write_config();
    let out = t.hull(&["--systemd-cgroup", "run", "--bundle", &t.bundle_str(), &id2]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        format!("0::/hulltest.slice/hulltest-sd.slice/sdt-{id2}.scope"),
        "{out}"
    );
    assert!(cg.mount.join("hulltest.slice/hulltest-sd.slice").is_dir());
    assert_no_unit(&id2, &out);
}

#[test]
fn annotations_become_unit_properties() {
    unified();
    let mut t = Test::new("sd_annot");
    let id = t.id.clone();
    let unit = format!("hulltest-{id}.scope");
    let _g = UnitGuard(vec![unit.clone()]);
    t.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
    t.config["annotations"] = json!({
        "org.systemd.property.TimeoutStopSec": "uint64 7",
        "org.systemd.property.CollectMode": "'inactive-or-failed'",
    });
    t.args(&["sleep", "1000"]);
    sd_create(&t, &id).0.ok();
    let p = show(&unit, &["TimeoutStopUSec", "CollectMode"]);
    assert_eq!(p["TimeoutStopUSec"], "7s", "{p:?}");
    assert_eq!(p["CollectMode"], "inactive-or-failed", "{p:?}");
    let out = t.hull(&["delete", "--force", &id]);
    out.ok();
    assert_no_unit(&id, &out);
}

/// An annotation a config carries: (key, value).
type Annotation = Option<(&'static str, &'static str)>;

#[test]
fn bad_input_fails_in_one_line_and_leaves_no_unit() {
    unified();
    let mut t = Test::new("sd_bad");
    t.args(&["sleep", "1000"]);
    let mut names = Vec::new();
    let cases: [(&str, Annotation, &str); 7] = [
        ("a:b", None, "slice:prefix:name"),
        ("a:b:c:d", None, "slice:prefix:name"),
        ("bad name.slice:hulltest:ID", None, "not allowed"),
        ("system:hulltest:ID", None, "ends in"),
        ("system.slice:hulltest:", None, "empty"),
        (
            "system.slice:hulltest:ID",
            Some(("org.systemd.property.TimeoutStopSec", "'soon'")),
            "org.systemd.property.TimeoutStopSec",
        ),
        // Well formed, refused by systemd itself.
        (
            "system.slice:hulltest:ID",
            Some(("org.systemd.property.NoSuchPropertyHere", "true")),
            "NoSuchPropertyHere",
        ),
    ];
    for (path, annotation, want) in cases {
        let id = t.new_id();
        names.push(format!("hulltest-{id}.scope"));
        let path = path.replace("ID", &id);
        t.config["linux"]["cgroupsPath"] = json!(path);
        t.config["annotations"] = match annotation {
            Some((k, v)) => json!({ k: v }),
            None => json!({}),
        };
        let _g = UnitGuard(vec![format!("hulltest-{id}.scope")]);
        let (out, _) = sd_create(&t, &id);
        out.fails();
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "one line:\n{out}");
        out.stderr_has(want);
        t.assert_nothing_left(&id);
        assert_no_unit(&id, &out);
    }
}

#[test]
fn no_reachable_systemd_is_one_line_naming_the_bus() {
    unified();
    let mut t = Test::new("sd_nobus");
    let id = t.id.clone();
    t.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
    t.args(&["true"]);
    t.write_config();
    // In a mount namespace of its own without the system bus's socket: systemd runs, but
    // hull cannot reach it.
    let script = format!(
        "mount -t tmpfs none /run/dbus && exec {} --root {} --systemd-cgroup create --bundle {} {id}",
        crate::util::runtime().display(),
        t.root_str(),
        t.bundle_str()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("D-Bus") && stderr.contains("system bus"),
        "{stderr}"
    );
    t.assert_nothing_left(&id);
    assert_no_unit(&id, &stderr);
}

/// A createRuntime hook that sleeps, marked so that the test can find it.
fn sleeping_hook() -> serde_json::Value {
    json!({ "path": "/usr/bin/busybox", "args": ["busybox", "sleep", "3"] })
}

#[test]
fn sigkill_of_create_then_delete_force_leaves_no_unit() {
    unified();
    let mut t = Test::new("sd_kill");
    let id = t.id.clone();
    let unit = format!("hulltest-{id}.scope");
    let _g = UnitGuard(vec![unit.clone()]);
    t.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
    t.config["hooks"] = json!({ "createRuntime": [sleeping_hook()] });
    t.args(&["sleep", "1000"]);
    t.write_config();
    let mut create = Command::new(crate::util::runtime())
        .args([
            "--root",
            &t.root_str(),
            "--systemd-cgroup",
            "create",
            "--bundle",
            &t.bundle_str(),
            &id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The hook runs after the unit started: kill hull while it waits for the hook.
    let started = wait_until(SLOW, || {
        show(&unit, &["ActiveState"])["ActiveState"] == "active"
    });
    let _ = create.kill();
    let _ = create.wait();
    assert!(started, "the unit never started");
    let out = t.hull(&["delete", "--force", &id]);
    out.ok();
    assert_no_unit(&id, &out);
    t.assert_nothing_left(&id);
}

#[test]
fn a_hundred_lifecycles_leave_no_unit() {
    unified();
    let mut t = Test::new("sd_many");
    t.args(&["true"]);
    let mut dirs: Vec<PathBuf> = Vec::new();
    for _ in 0..100 {
        let id = t.new_id();
        t.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
        t.write_config();
        t.hull(&["--systemd-cgroup", "run", "--bundle", &t.bundle_str(), &id])
            .ok();
        dirs.push(
            unified()
                .mount
                .join(format!("system.slice/hulltest-{id}.scope")),
        );
    }
    let needle = format!("sd_many-{}-", std::process::id());
    assert_no_unit(&needle, &"after 100 runs");
    let left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

#[test]
fn a_notify_service_running_hull_is_active_once_the_container_is_ready() {
    unified();
    let mut t = Test::new("sd_notify");
    let id = t.id.clone();
    let service = format!("hulltest-{id}.service");
    let _g = UnitGuard(vec![service.clone(), format!("hulltest-{id}.scope")]);
    t.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
    t.mount(HOST_ROOT.clone());
    t.sh(&format!(
        "while [ ! -e /go ]; do sleep 0.1; done; {}; sleep 1000",
        send_ready("READY=1")
    ));
    t.write_config();
    // A Type=notify service whose main process is `hull run -d`, as a unit file would
    // have it (NotifyAccess left at its default, main).
    let status = Command::new("systemd-run")
        .args([
            "--unit",
            &service,
            "-p",
            "Type=notify",
            "-p",
            "KillSignal=SIGKILL",
        ])
        .args(["--no-block", "--"])
        .arg(crate::util::runtime())
        .args([
            "--root",
            &t.root_str(),
            "--systemd-cgroup",
            "run",
            "-d",
            "--bundle",
            &t.bundle_str(),
            &id,
        ])
        .status()
        .expect("systemd-run");
    assert!(status.success());
    t.wait_status(&id, "running", SLOW);
    let state = || show(&service, &["ActiveState", "MainPID"]);
    assert_eq!(
        state()["ActiveState"],
        "activating",
        "ready before the container said so"
    );
    fs::write(t.rootfs.join("go"), "").unwrap();
    assert!(
        wait_until(SLOW, || state()["ActiveState"] == "active"),
        "{:?}",
        state()
    );
    // systemd now watches the container's init, in its own scope.
    let pid = t.state(&id).expect("state")["pid"].as_i64().unwrap();
    assert_eq!(state()["MainPID"], pid.to_string());
    // Stopping the service ends the container (its init is the main process).
    let stopped = Command::new("systemctl").args(["stop", &service]).status();
    assert!(stopped.is_ok_and(|s| s.success()));
    assert!(
        wait_until(SLOW, || is_gone(pid as i32)),
        "init left running"
    );
    let out = t.hull(&["delete", &id]);
    out.ok();
    assert_no_unit(&id, &out);
}

#[test]
fn hugepage_limits_reach_a_scope_though_systemd_does_not_delegate_hugetlb() {
    // The kubelet sends hugepage limits for every container: systemd enables only the
    // controllers it knows below its slices, so hull enables hugetlb above the scope.
    let cg = unified();
    let mut t = Test::new("sd_huge");
    let id = t.id.clone();
    let unit = format!("hulltest-{id}.scope");
    let _g = UnitGuard(vec![unit.clone()]);
    t.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
    t.config["linux"]["resources"]["hugepageLimits"] =
        json!([{ "pageSize": "2MB", "limit": 4 * MIB }]);
    t.args(&["sleep", "1000"]);
    sd_create(&t, &id).0.ok();
    let dir = cg.mount.join("system.slice").join(&unit);
    assert_eq!(read(&dir, "hugetlb.2MB.max"), (4 * MIB).to_string());
    let out = t.hull(&["delete", "--force", &id]);
    out.ok();
    assert_no_unit(&id, &out);
}
