//! cgroups: limits from `linux.resources` land in the container's cgroup files and act on
//! the processes inside (OOM kill, fork bomb, devices), and the commands that work on a
//! container's cgroup (`update`, `pause`/`resume`, `ps`, `events`, `kill --all`, `delete`).
//!
//! Every container gets a relative `cgroupsPath` of its own (`hulltest/<id>`), which nests
//! under this test process's cgroup in each hierarchy; a `CgroupGuard` removes what is left
//! even when a test fails. Nothing is written to a cgroup the tests did not make.

use std::fs;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{
    assert_cgroups_exist, assert_cgroups_gone, cgroup_dir, cgroup_hierarchies, cgroup_procs,
    cgroup_read, event_types, is_gone, keyed, proc_state, skip_on_runc, split_table, status_field,
    still_alive, wait_until, Out, Test, MIB, STOP_TIMEOUT, TICK_LOOP, TRY_DEVICES,
};

/// The cgroup path /proc/PID/cgroup shows (from the host's cgroup namespace) for
/// `cgroupsPath` `path` in a hierarchy where this process is at `own`.
fn shown_path(own: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else if own == "/" {
        format!("/{path}")
    } else {
        format!("{own}/{path}")
    }
}

/// `/proc/PID/cgroup` as (hierarchy name, path) pairs.
fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, name, path) = (f.next()?, f.next()?, f.next()?);
            Some((name.to_string(), path.to_string()))
        })
        .collect()
}

/// Asserts that `/proc/PID/cgroup` text puts the process in `cgroupsPath` `path` in every
/// hierarchy this test process is in.
#[track_caller]
fn assert_in_cgroup(text: &str, path: &str) {
    let lines = cgroup_lines(text);
    for h in cgroup_hierarchies() {
        let want = shown_path(h.base(), path);
        let got = lines
            .iter()
            .find(|(name, _)| *name == h.name())
            .map(|(_, p)| p.as_str());
        assert_eq!(
            got,
            Some(want.as_str()),
            "hierarchy {:?} in /proc/PID/cgroup:\n{text}",
            h.name()
        );
    }
}

fn read_u64(controller: &str, path: &str, file: &str) -> u64 {
    let v = cgroup_read(controller, path, file);
    v.parse()
        .unwrap_or_else(|e| panic!("{file} holds {v:?}, not a number: {e}"))
}

#[test]
fn limits_land_in_the_cgroup_files_and_the_process_sees_its_cgroup() {
    let mut t = Test::new("cg_limits");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["memory"] = json!({
        "limit": 64 * MIB, "reservation": 32 * MIB, "swap": 96 * MIB
    });
    t.config["linux"]["resources"]["cpu"] = json!({
        "shares": 512, "quota": 50000, "period": 100000, "cpus": "0"
    });
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 42 });
    t.sh(
        "cat /proc/self/cgroup; grep Cpus_allowed_list /proc/self/status; \
         echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
         echo pids=$(cat /sys/fs/cgroup/pids/pids.max); echo end; exec sleep 100",
    );
    let (out, pid) = t.create(&id);
    out.ok();
    let pid = pid.expect("pid file");

    // The limits are in place before the process starts.
    assert_cgroups_exist(&path);
    assert_eq!(read_u64("memory", &path, "memory.limit_in_bytes"), 64 * MIB);
    assert_eq!(
        read_u64("memory", &path, "memory.soft_limit_in_bytes"),
        32 * MIB
    );
    if cgroup_dir("memory", &path)
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            read_u64("memory", &path, "memory.memsw.limit_in_bytes"),
            96 * MIB
        );
    }
    assert_eq!(cgroup_read("cpu", &path, "cpu.shares"), "512");
    assert_eq!(cgroup_read("cpu", &path, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_read("cpu", &path, "cpu.cfs_period_us"), "100000");
    assert_eq!(cgroup_read("cpuset", &path, "cpuset.cpus"), "0");
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "42");
    for h in cgroup_hierarchies() {
        assert!(
            cgroup_procs(&h.dir_for(&path)).contains(&pid),
            "init {pid} not in {}",
            h.dir_for(&path).display()
        );
    }
    let host_view = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_in_cgroup(&host_view, &path);

    t.hull(&["start", &id]).ok();
    let seen = out.wait_stdout("end\n", STOP_TIMEOUT);
    // Without a cgroup namespace the process sees the host's paths.
    assert_in_cgroup(&seen, &path);
    assert_eq!(
        status_field(&seen, "Cpus_allowed_list"),
        Some("0"),
        "{seen}"
    );
    // The cgroup mounts inside show the container's own cgroups.
    assert!(
        seen.contains(&format!("mem={}\n", 64 * MIB)),
        "memory limit inside:\n{seen}"
    );
    assert!(seen.contains("pids=42\n"), "pids limit inside:\n{seen}");
}

#[test]
fn with_a_cgroup_namespace_the_process_sees_root_paths() {
    let mut t = Test::new("cg_cgroupns");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.add_namespace("cgroup", None);
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 42 });
    t.sh("cat /proc/self/cgroup; echo pids=$(cat /sys/fs/cgroup/pids/pids.max); echo end");
    let (out, pid) = t.create(&id);
    out.ok();
    let pid = pid.expect("pid file");
    // The host still sees the full path.
    let host_view = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_in_cgroup(&host_view, &path);

    t.hull(&["start", &id]).ok();
    let seen = out.wait_stdout("end\n", STOP_TIMEOUT);
    let lines = cgroup_lines(&seen);
    assert_eq!(
        lines.len(),
        cgroup_hierarchies().len(),
        "one line per hierarchy:\n{seen}"
    );
    for (name, p) in &lines {
        assert_eq!(
            p, "/",
            "hierarchy {name:?} inside a cgroup namespace:\n{seen}"
        );
    }
    assert!(seen.contains("pids=42\n"), "pids limit inside:\n{seen}");
}

#[test]
fn memory_hog_is_oom_killed_and_events_reports_it() {
    let mut t = Test::new("cg_oom");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    // memory+swap = memory: no swap to escape into.
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 32 * MIB, "swap": 32 * MIB });
    // `tail` keeps the whole of a line that never ends: it grows until it is killed. It
    // waits for /tmp/go, so that `events` listens before the OOM happens.
    t.sh(
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; tail /dev/zero; echo rc=$?; \
         exec sleep 100",
    );
    let (out, _) = t.create_and_start(&id);

    let events = t.spawn_call(&["events", "--interval", "1s", &id]);
    // The first stats line shows `events` is up and listening.
    let listening = wait_until(Duration::from_secs(10), || {
        events.stdout_now().contains("\"type\":\"stats\"")
    });
    if !listening {
        let ev = events.kill();
        panic!("events printed no stats line:\n{ev}");
    }
    fs::write(t.rootfs.join("tmp/go"), "").unwrap();

    let saw_oom = wait_until(Duration::from_secs(20), || {
        events.stdout_now().contains("\"type\":\"oom\"")
    });
    let ev = events.kill();
    assert!(
        saw_oom,
        "no oom event; `{}` printed types {:?}, stderr {:?}",
        ev.args.join(" "),
        event_types(&ev.stdout),
        ev.stderr
    );
    let oom: Value = ev
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "oom")
        .unwrap_or_else(|| panic!("oom line is not JSON:\n{ev}"));
    assert_eq!(oom["id"], id.as_str(), "{oom}");

    let text = out.wait_stdout("rc=", Duration::from_secs(10));
    assert!(text.contains("rc=137"), "tail was not SIGKILLed:\n{text}");
    let oom_control = cgroup_read("memory", &path, "memory.oom_control");
    assert!(
        keyed(&oom_control, "oom_kill").is_some_and(|n| n >= 1),
        "memory.oom_control:\n{oom_control}"
    );
    // The container itself lives on.
    assert_eq!(t.status(&id), "running");
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let mut t = Test::new("cg_forkbomb");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 10 });
    // The inner shell gives up at its first failed fork; the init lives on (exec: no fork).
    t.sh(
        "sh -c 'for i in $(seq 50); do sleep 60 & done' 2>&1; echo done; \
         exec sleep 100",
    );
    let (out, _) = t.create_and_start(&id);
    let text = out.wait_stdout("done\n", STOP_TIMEOUT);
    assert!(
        text.contains("can't fork") || text.contains("Resource temporarily unavailable"),
        "no fork failed:\n{text}"
    );
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "10");
    let current = read_u64("pids", &path, "pids.current");
    assert!(
        (2..=10).contains(&current),
        "pids.current {current} with a limit of 10"
    );
    let procs = cgroup_procs(&cgroup_dir("pids", &path));
    assert!(
        procs.len() <= 10 && procs.len() > 1,
        "{} processes in the cgroup: {procs:?}",
        procs.len()
    );
}

#[test]
fn update_changes_the_limits_of_a_running_container() {
    let mut t = Test::new("cg_update");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 48 * MIB });
    t.config["linux"]["resources"]["cpu"] = json!({ "quota": 10000, "period": 100000 });
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 10 });
    t.args(&["sleep", "100"]);
    let (_, pid) = t.create_and_start(&id);

    t.hull(&["update", "--memory", "64M", &id]).ok();
    assert_eq!(read_u64("memory", &path, "memory.limit_in_bytes"), 64 * MIB);
    t.hull(&["update", "--pids-limit", "20", &id]).ok();
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "20");
    t.hull(&[
        "update",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "60000",
        &id,
    ])
    .ok();
    assert_eq!(cgroup_read("cpu", &path, "cpu.cfs_quota_us"), "30000");
    assert_eq!(cgroup_read("cpu", &path, "cpu.cfs_period_us"), "60000");

    // -r FILE: a LinuxResources object.
    let file = t.path("resources.json");
    fs::write(
        &file,
        json!({
            "memory": { "limit": 80 * MIB },
            "pids": { "limit": 30 },
            "cpu": { "shares": 256 }
        })
        .to_string(),
    )
    .unwrap();
    t.hull(&["update", "-r", &file.to_string_lossy(), &id]).ok();
    assert_eq!(read_u64("memory", &path, "memory.limit_in_bytes"), 80 * MIB);
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "30");
    assert_eq!(cgroup_read("cpu", &path, "cpu.shares"), "256");

    // -r -: the same on stdin, as containerd sends it; absent fields stay as they are.
    let input = json!({ "pids": { "limit": 40 }, "cpu": { "cpus": "0" } }).to_string();
    t.call_stdin(&["update", "-r", "-", &id], &input).ok();
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "40");
    assert_eq!(cgroup_read("cpuset", &path, "cpuset.cpus"), "0");
    assert_eq!(read_u64("memory", &path, "memory.limit_in_bytes"), 80 * MIB);
    assert_eq!(cgroup_read("cpu", &path, "cpu.shares"), "256");

    assert_eq!(t.status(&id), "running");
    assert!(!is_gone(pid), "the process died during update");
}

#[test]
fn pause_freezes_the_processes_and_resume_thaws_them() {
    let mut t = Test::new("cg_pause");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.sh(TICK_LOOP);
    let (_, pid) = t.create_and_start(&id);
    assert!(
        wait_until(STOP_TIMEOUT, || t.tick() > 0),
        "the loop never ticked"
    );

    t.hull(&["pause", &id]).ok();
    assert_eq!(t.status(&id), "paused");
    assert_eq!(cgroup_read("freezer", &path, "freezer.state"), "FROZEN");
    let st = proc_state(pid);
    assert!(st == 'D' || st == 'T', "paused init is in state {st}");
    let frozen_at = t.tick();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.tick(), frozen_at, "the loop ran while paused");
    t.hull(&["pause", &id])
        .fails()
        .stderr_has("container not running");

    t.hull(&["resume", &id]).ok();
    assert_eq!(t.status(&id), "running");
    assert_eq!(cgroup_read("freezer", &path, "freezer.state"), "THAWED");
    assert!(
        wait_until(STOP_TIMEOUT, || t.tick() > frozen_at),
        "the loop did not run again after resume"
    );
    let st = proc_state(pid);
    assert!(st != 'D' && st != 'T', "resumed init is in state {st}");
    t.hull(&["resume", &id])
        .fails()
        .stderr_has("container not paused");
}

#[test]
fn pause_and_resume_of_created_and_stopped_containers_behave_as_runc() {
    let mut t = Test::new("cg_pause_states");
    let g = t.cgroup_guard();
    t.args(&["sleep", "100"]);

    // runc freezes a created container too, and resume gives it back as created.
    let created = t.id.clone();
    let path = t.in_cgroup(&g, &created);
    t.create(&created).0.ok();
    t.hull(&["pause", &created]).ok();
    assert_eq!(t.status(&created), "paused");
    assert_eq!(cgroup_read("freezer", &path, "freezer.state"), "FROZEN");
    t.hull(&["resume", &created]).ok();
    assert_eq!(t.status(&created), "created");
    assert_eq!(cgroup_read("freezer", &path, "freezer.state"), "THAWED");

    // A stopped container can be neither paused nor resumed.
    let stopped = t.new_id();
    t.in_cgroup(&g, &stopped);
    t.args(&["true"]);
    t.create_and_start(&stopped);
    assert_eq!(t.wait_status(&stopped, "stopped", STOP_TIMEOUT), "stopped");
    t.hull(&["pause", &stopped])
        .fails()
        .stderr_has("container not running");
    t.hull(&["resume", &stopped])
        .fails()
        .stderr_has("container not paused");
    assert_eq!(t.status(&stopped), "stopped");
}

/// `ps --format json ID` parsed.
fn ps_json(t: &Test, id: &str) -> Vec<i64> {
    let out = t.hull(&["ps", "--format", "json", id]);
    out.ok();
    let v: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps json: {e}\n{out}"));
    v.as_array()
        .unwrap_or_else(|| panic!("ps json is not an array:\n{out}"))
        .iter()
        .map(|p| {
            p.as_i64()
                .unwrap_or_else(|| panic!("not a pid: {p}\n{out}"))
        })
        .collect()
}

/// The values of the `PID` column of a ps table.
fn pid_column(out: &Out) -> Vec<i64> {
    let (header, lines) = split_table(&out.stdout);
    let col = header
        .iter()
        .position(|h| *h == "PID")
        .unwrap_or_else(|| panic!("no PID column:\n{out}"));
    lines
        .filter_map(|l| l.split_whitespace().nth(col)?.parse().ok())
        .collect()
}

#[test]
fn ps_lists_the_processes_of_the_container() {
    let mut t = Test::new("cg_ps");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.sh("sleep 100 & exec sleep 101");
    let (_, pid) = t.create_and_start(&id);

    let mut pids = Vec::new();
    assert!(
        wait_until(STOP_TIMEOUT, || {
            pids = ps_json(&t, &id);
            pids.len() == 2
        }),
        "ps --format json: {pids:?}"
    );
    assert!(pids.contains(&i64::from(pid)), "{pids:?} lacks init {pid}");
    for p in &pids {
        let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        assert!(
            cmd.starts_with(b"sleep\0"),
            "host pid {p} is {:?}",
            String::from_utf8_lossy(&cmd)
        );
    }

    let table = t.hull(&["ps", &id]);
    table.ok();
    let mut rows = pid_column(&table);
    rows.sort();
    pids.sort();
    assert_eq!(rows, pids, "{table}");

    // Arguments after the id go to ps(1).
    let custom = t.hull(&["ps", &id, "-o", "pid,comm"]);
    custom.ok();
    let mut rows = pid_column(&custom);
    rows.sort();
    assert_eq!(rows, pids, "{custom}");
    assert!(
        custom.stdout.lines().skip(1).all(|l| l.ends_with("sleep")),
        "{custom}"
    );
}

#[test]
fn events_stats_prints_one_json_line_of_usage_and_limits() {
    let mut t = Test::new("cg_stats");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 42 });
    t.args(&["sleep", "100"]);
    t.create_and_start(&id);

    let out = t.hull(&["events", "--stats", &id]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let v: Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("stats JSON: {e}\n{out}"));
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], id.as_str(), "{v}");
    let data = &v["data"];
    assert!(
        data["pids"]["current"].as_u64().is_some_and(|n| n >= 1),
        "{v}"
    );
    assert_eq!(data["pids"]["limit"], 42, "{v}");
    assert_eq!(data["memory"]["usage"]["limit"], 64 * MIB, "{v}");
    assert!(
        data["memory"]["usage"]["usage"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{v}"
    );
    assert!(data["cpu"]["usage"]["total"].is_u64(), "{v}");
}

#[test]
fn denied_device_cannot_be_opened_even_through_a_new_node() {
    let mut t = Test::new("cg_devices_deny");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.deny_dev_zero();
    t.sh(TRY_DEVICES);
    t.run().assert_only_dev_null_reached();
}

#[test]
fn default_devices_work_under_a_deny_all_config() {
    let mut t = Test::new("cg_devices_default");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    // The base config denies everything and allows nothing.
    t.sh(
        "echo x >/dev/null && head -c1 /dev/zero | wc -c && head -c1 /dev/urandom | wc -c \
         && echo x >/dev/full; echo end",
    );
    let (out, _) = t.create(&id);
    out.ok();
    let list = cgroup_read("devices", &path, "devices.list");
    assert!(
        !list.lines().any(|l| l == "a *:* rwm"),
        "everything allowed:\n{list}"
    );
    for rule in ["c 1:3 rwm", "c 1:5 rwm", "c 1:9 rwm"] {
        assert!(list.lines().any(|l| l == rule), "no {rule}:\n{list}");
    }
    t.hull(&["start", &id]).ok();
    let text = out.wait_stdout("end\n", STOP_TIMEOUT);
    assert_eq!(text, "1\n1\nend\n");
    // /dev/full refuses writes with ENOSPC, not EPERM: the device itself was reached.
    assert!(
        wait_until(STOP_TIMEOUT, || fs::read_to_string(&out.stderr_path)
            .unwrap_or_default()
            .contains("No space left on device")),
        "/dev/full:\n{}",
        fs::read_to_string(&out.stderr_path).unwrap_or_default()
    );
}

#[test]
fn devices_list_follows_the_config_order() {
    // runc 1.1.5 puts its default rules (`b *:* m` first) before the config's.
    if skip_on_runc("runc 1.1.5 writes its default device rules first") {
        return;
    }
    let mut t = Test::new("cg_devices_order");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["devices"] = json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm" },
        { "allow": true, "type": "b", "major": 8, "minor": 20, "access": "rw" },
        { "allow": true, "type": "b", "major": 10, "minor": 200, "access": "r" }
    ]);
    t.args(&["sleep", "100"]);
    t.create(&id).0.ok();
    let list = cgroup_read("devices", &path, "devices.list");
    let first: Vec<&str> = list.lines().take(3).collect();
    assert_eq!(
        first,
        ["c 10:229 rwm", "b 8:20 rw", "b 10:200 r"],
        "devices.list:\n{list}"
    );
}

#[test]
fn kill_all_reaches_every_process_without_a_pid_namespace() {
    let mut t = Test::new("cg_kill_all");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.remove_namespace("pid");
    // The trailing command keeps sh from exec-ing the second sleep.
    t.sh("sleep 100 & sleep 100; exit 0");
    let (_, pid) = t.create_and_start(&id);
    let procs = t.wait_cgroup_procs(&path, pid, 3);
    let dir = cgroup_dir("pids", &path);

    t.hull(&["kill", "--all", &id, "KILL"]).ok();
    let left = still_alive(&procs, STOP_TIMEOUT);
    assert!(left.is_empty(), "still alive after kill --all: {left:?}");
    assert!(
        wait_until(STOP_TIMEOUT, || cgroup_procs(&dir).is_empty()),
        "cgroup.procs: {:?}",
        cgroup_procs(&dir)
    );
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
}

#[test]
fn delete_removes_the_cgroups_of_the_container() {
    let mut t = Test::new("cg_delete");
    let g = t.cgroup_guard();
    t.args(&["sleep", "100"]);

    // A container that stopped, then `delete`.
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.create_and_start(&id);
    assert_cgroups_exist(&path);
    t.hull(&["kill", &id, "KILL"]).ok();
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    t.hull(&["delete", &id]).ok();
    assert_cgroups_gone(&path);
    assert!(!t.root.join(&id).exists(), "state dir left after delete");

    // A running one, `delete --force`.
    let id2 = t.new_id();
    let path2 = t.in_cgroup(&g, &id2);
    t.create_and_start(&id2);
    assert_cgroups_exist(&path2);
    t.hull(&["delete", "--force", &id2]).ok();
    assert_cgroups_gone(&path2);

    // A created one, never started.
    let id3 = t.new_id();
    let path3 = t.in_cgroup(&g, &id3);
    t.create(&id3).0.ok();
    assert_cgroups_exist(&path3);
    t.hull(&["delete", "--force", &id3]).ok();
    assert_cgroups_gone(&path3);
}

#[test]
fn invalid_swappiness_fails_create_and_leaves_no_cgroup() {
    let mut t = Test::new("cg_bad_swappiness");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["memory"] = json!({ "swappiness": 200 });
    let (out, _) = t.create_fails();
    out.stderr_has("swappiness").stderr_has("200");
    assert_cgroups_gone(&path);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{out}");
}

#[test]
fn invalid_cpus_fails_create_and_leaves_no_cgroup() {
    let mut t = Test::new("cg_bad_cpus");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["cpu"] = json!({ "cpus": "abc" });
    let (out, _) = t.create_fails();
    out.stderr_has("cpus").stderr_has("abc");
    assert_cgroups_gone(&path);
    // runc 1.1.5 also warns that it could not read the OOM count of the removed cgroup.
    if !skip_on_runc("runc 1.1.5 prints a warning line too") {
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{out}");
    }
}

#[test]
fn absolute_cgroups_path_is_taken_from_each_hierarchys_root() {
    let mut t = Test::new("cg_abs");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = format!("/hulltest-abs-{id}");
    t.config["linux"]["cgroupsPath"] = json!(path);
    g.add(&id, &path);
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 7 });
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
    t.args(&["sleep", "100"]);
    let (out, pid) = t.create(&id);
    out.ok();
    let pid = pid.expect("pid file");

    for h in cgroup_hierarchies() {
        let d = h.mount.join(format!("hulltest-abs-{id}"));
        assert!(d.is_dir(), "no {}", d.display());
    }
    assert_eq!(cgroup_read("pids", &path, "pids.max"), "7");
    assert_eq!(read_u64("memory", &path, "memory.limit_in_bytes"), 64 * MIB);
    let host_view = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for (name, p) in cgroup_lines(&host_view) {
        assert_eq!(p, path, "hierarchy {name:?}:\n{host_view}");
    }

    t.hull(&["delete", "--force", &id]).ok();
    assert_cgroups_gone(&path);
}

#[test]
fn kernel_tcp_limit_is_written() {
    // runc 1.1.5 ignores linux.resources.memory.kernelTCP.
    if skip_on_runc("runc 1.1.5 ignores kernelTCP") {
        return;
    }
    let mut t = Test::new("cg_kernel_tcp");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB, "kernelTCP": 16 * MIB });
    t.args(&["sleep", "100"]);
    t.create(&id).0.ok();
    assert_eq!(
        read_u64("memory", &path, "memory.kmem.tcp.limit_in_bytes"),
        16 * MIB
    );
}

#[test]
fn a_unified_key_the_hybrid_hosts_cgroup2_lacks_is_refused_in_runcs_words() {
    if skip_on_runc("runc 1.1.5 words it otherwise") {
        return;
    }
    let hierarchies = cgroup_hierarchies();
    assert!(
        hierarchies.len() > 1 && hierarchies.iter().any(|h| h.is_v2()),
        "this test needs a hybrid host (v1 controllers and a cgroup2), the CI machine's kind"
    );
    let mut t = Test::new("cg_unified_on_v1");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["unified"] = json!({ "memory.min": "131072" });
    t.args(&["true"]);
    let (out, _) = t.create_fails();
    out.stderr_has("invalid configuration: cannot use unified on cgroup v1")
        .one_line();
}

#[test]
fn hugepage_limit_lands_on_the_unified_hierarchy_of_a_hybrid_host() {
    // runc 1.1.5 looks for hugetlb in v1 only: "container could not join or create cgroup".
    if skip_on_runc("runc 1.1.5 has no hugetlb on a hybrid host's unified hierarchy") {
        return;
    }
    let hierarchies = cgroup_hierarchies();
    let hybrid_hugetlb = hierarchies.iter().find(|h| {
        h.is_v2()
            && hierarchies.len() > 1
            && fs::read_to_string(h.mount.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == "hugetlb")
    });
    let hugetlb_on_v1 = hierarchies
        .iter()
        .any(|h| h.controllers.iter().any(|c| c == "hugetlb"));
    let Some(unified) = hybrid_hugetlb.cloned().filter(|_| !hugetlb_on_v1) else {
        hull_testing::skip(
            "hybrid",
            "no hybrid host with hugetlb on cgroup2 (on a unified host the guest test \
             cgroup_v2::hugepage_limits_land_in_hugetlb_files covers it)",
        );
        return;
    };
    // An absolute path straight under the root, so that after the container's delete
    // nothing below the root uses hugetlb and the delegation hull made there can be undone.
    struct Restore {
        dirs: Vec<std::path::PathBuf>,
        undelegate: Option<std::path::PathBuf>,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            for d in &self.dirs {
                let _ = fs::remove_dir(d);
            }
            if let Some(root) = &self.undelegate {
                let _ = fs::write(root.join("cgroup.subtree_control"), "-hugetlb");
            }
        }
    }
    let delegated = fs::read_to_string(unified.mount.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "hugetlb");
    let mut t = Test::new("cg_hugetlb_unified");
    let id = t.id.clone();
    let path = format!("/hulltest-hugetlb-{id}");
    let _restore = Restore {
        dirs: hierarchies.iter().map(|h| h.dir_for(&path)).collect(),
        undelegate: (!delegated).then(|| unified.mount.clone()),
    };
    t.config["linux"]["cgroupsPath"] = json!(path);
    t.config["linux"]["resources"]["hugepageLimits"] =
        json!([{ "pageSize": "2MB", "limit": 4 * MIB }]);
    t.args(&["sleep", "100"]);
    t.create(&id).0.ok();
    let file = unified.dir_for(&path).join("hugetlb.2MB.max");
    let v = fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    assert_eq!(v.trim(), (4 * MIB).to_string());
    // The container (and its cgroups) first, then the delegation.
    drop(t);
}
