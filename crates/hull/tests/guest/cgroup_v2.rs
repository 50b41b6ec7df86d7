//! cgroup v2 on a unified host: every `linux.resources` field hull writes lands in the
//! container's cgroup2 files and acts on the processes inside; the commands that work on a
//! container's cgroup (`update`, `pause`/`resume`, `kill --all`, `events`, `exec --cgroup`,
//! `delete`) use the cgroup2 interfaces (`cgroup.freeze`, `cgroup.kill`, `memory.events`, the
//! eBPF device program).
//!
//! Containers get a relative `cgroupsPath` (`hulltest/<id>`): on cgroup2 it nests under the
//! parent of the caller's cgroup, the delegated unit `hull-guest.service` here.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{
    assert_cgroups_gone, cgroup_procs, event_types, is_gone, keyed, still_alive, wait_until, Test,
    MIB, TICK_LOOP, TRY_DEVICES,
};
use crate::{unified, v2_dir, v2_read, SLOW};

/// `KEY=value` lines a container printed, as a lookup.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn limits_land_in_the_cgroup2_files_and_the_process_sees_them() {
    unified();
    let mut t = Test::new("v2_limits");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.add_namespace("cgroup", None);
    let res = &mut t.config["linux"]["resources"];
    res["memory"] = json!({ "limit": 64 * MIB, "reservation": 32 * MIB, "swap": 96 * MIB });
    res["cpu"] =
        json!({ "shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0" });
    res["pids"] = json!({ "limit": 42 });
    res["unified"] = json!({ "memory.high": (48 * MIB).to_string() });
    t.sh("echo cg=$(cat /proc/self/cgroup); \
          for f in memory.max memory.low memory.high memory.swap.max cpu.weight cpu.max \
                   cpuset.cpus pids.max; do echo $f=$(cat /sys/fs/cgroup/$f); done; \
          echo cpus=$(grep Cpus_allowed_list /proc/self/status | cut -f2)");
    let out = t.run();
    out.ok();
    let seen = &out.stdout;
    // From inside, with a cgroup namespace: its own cgroup is the root, and its limits.
    assert_eq!(field(seen, "cg"), Some("0::/"), "{out}");
    let want = [
        ("memory.max", (64 * MIB).to_string()),
        ("memory.low", (32 * MIB).to_string()),
        ("memory.high", (48 * MIB).to_string()),
        // The spec's swap is memory+swap; memory.swap.max is the swap alone.
        ("memory.swap.max", (32 * MIB).to_string()),
        // runc's map from shares [2, 262144] to weight [1, 10000].
        ("cpu.weight", "20".to_string()),
        ("cpu.max", "50000 100000".to_string()),
        ("cpuset.cpus", "0".to_string()),
        ("pids.max", "42".to_string()),
    ];
    for (file, value) in &want {
        assert_eq!(field(seen, file), Some(value.as_str()), "{file}:\n{out}");
    }
    assert_eq!(field(seen, "cpus"), Some("0"), "{out}");
    // `run` deleted the container, and its cgroup with it.
    assert_cgroups_gone(&path);
}

#[test]
fn cpu_idle_and_burst_are_written() {
    unified();
    let mut t = Test::new("v2_cpu_idle_burst");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["cpu"] =
        json!({ "quota": 20000, "period": 100000, "burst": 10000, "idle": 1 });
    t.args(&["sleep", "100"]);
    t.create(&id).0.ok();
    assert_eq!(v2_read(&path, "cpu.idle"), "1");
    assert_eq!(v2_read(&path, "cpu.max"), "20000 100000");
    assert_eq!(v2_read(&path, "cpu.max.burst"), "10000");
}

/// Major:minor of the block device holding `/` (the guest's virtio disk).
fn root_disk() -> (u64, u64) {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("/ in mountinfo");
    let (maj, min) = line.split(' ').nth(2).unwrap().split_once(':').unwrap();
    let (maj, min): (u64, u64) = (maj.parse().unwrap(), min.parse().unwrap());
    // A partition's limits go to its whole disk: the guest's root is a whole disk.
    (maj, min)
}

#[test]
fn io_max_and_weight_are_written_for_the_root_disk() {
    unified();
    let (maj, min) = root_disk();
    let mut t = Test::new("v2_io");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["blockIO"] = json!({
        "weight": 500,
        "throttleReadBpsDevice": [{ "major": maj, "minor": min, "rate": 1048576 }],
        "throttleWriteIOPSDevice": [{ "major": maj, "minor": min, "rate": 100 }]
    });
    t.args(&["sleep", "100"]);
    t.create(&id).0.ok();
    let max = v2_read(&path, "io.max");
    assert_eq!(
        max,
        format!("{maj}:{min} rbps=1048576 wbps=max riops=max wiops=100"),
        "io.max"
    );
    // Without BFQ, io.weight (blk-iocost's) with runc's map from [10, 1000] to [1, 10000].
    let dir = v2_dir(&path);
    if dir.join("io.bfq.weight").exists() {
        assert_eq!(v2_read(&path, "io.bfq.weight"), "default 500");
    } else {
        assert_eq!(v2_read(&path, "io.weight"), "default 4950");
    }
}

#[test]
fn hugepage_limits_land_in_hugetlb_files() {
    unified();
    let mut t = Test::new("v2_hugetlb");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.add_namespace("cgroup", None);
    t.config["linux"]["resources"]["hugepageLimits"] = json!([
        { "pageSize": "2MB", "limit": 4 * MIB },
        { "pageSize": "1GB", "limit": 0 }
    ]);
    t.sh("cat /sys/fs/cgroup/hugetlb.2MB.max; exec sleep 100");
    let (out, _) = t.create_and_start(&id);
    assert_eq!(v2_read(&path, "hugetlb.2MB.max"), (4 * MIB).to_string());
    assert_eq!(v2_read(&path, "hugetlb.1GB.max"), "0");
    assert_eq!(out.wait_stdout("\n", SLOW), format!("{}\n", 4 * MIB));
}

#[test]
fn unified_keys_are_written_and_bad_ones_refused_naming_the_key() {
    unified();
    let mut t = Test::new("v2_unified");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["unified"] = json!({
        "pids.max": "17", "memory.high": "max", "cpu.weight": "77", "memory.oom.group": "1"
    });
    t.args(&["sleep", "100"]);
    t.create(&id).0.ok();
    assert_eq!(v2_read(&path, "pids.max"), "17");
    assert_eq!(v2_read(&path, "cpu.weight"), "77");
    assert_eq!(v2_read(&path, "memory.oom.group"), "1");
    t.hull(&["delete", "--force", &id]).ok();
    assert_cgroups_gone(&path);

    // The log line is logfmt: the field's quotes are escaped in it.
    for (key, needle) in [
        ("../pids.max", r#"linux.resources.unified[\"../pids.max\"]"#),
        ("nosuch.max", r#"linux.resources.unified[\"nosuch.max\"]"#),
        (
            "pids.nosuchfile",
            r#"linux.resources.unified[\"pids.nosuchfile\"]"#,
        ),
    ] {
        let id2 = t.new_id();
        let path2 = t.in_cgroup(&g, &id2);
        t.config["linux"]["resources"]["unified"] = json!({ key: "1" });
        let (out, _) = t.create(&id2);
        out.fails();
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line:\n{out}");
        out.stderr_has(needle);
        t.assert_nothing_left(&id2);
        assert_cgroups_gone(&path2);
    }
}

#[test]
fn rdma_limit_for_a_device_the_host_lacks_fails_naming_the_field() {
    unified();
    let mut t = Test::new("v2_rdma");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["rdma"] =
        json!({ "mlx9_9": { "hcaHandles": 2, "hcaObjects": 100 } });
    let (out, _) = t.create(&id);
    out.fails();
    // The log line is logfmt: the field's quotes are escaped in it.
    out.stderr_has(r#"linux.resources.rdma[\"mlx9_9\"]"#);
    out.stderr_has("no such device");
    t.assert_nothing_left(&id);
    assert_cgroups_gone(&path);
}

#[test]
fn memory_hog_is_oom_killed_and_events_reports_it_from_memory_events() {
    unified();
    let mut t = Test::new("v2_oom");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 32 * MIB, "swap": 32 * MIB });
    t.sh(
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; tail /dev/zero; echo rc=$?; \
          exec sleep 100",
    );
    let (out, _) = t.create_and_start(&id);
    assert_eq!(v2_read(&path, "memory.swap.max"), "0");

    let events = t.spawn_call(&["events", "--interval", "1s", &id]);
    let listening = wait_until(SLOW, || events.stdout_now().contains("\"type\":\"stats\""));
    if !listening {
        panic!("events printed no stats line:\n{}", events.kill());
    }
    fs::write(t.rootfs.join("tmp/go"), "").unwrap();
    let saw_oom = wait_until(SLOW, || events.stdout_now().contains("\"type\":\"oom\""));
    let ev = events.kill();
    assert!(
        saw_oom,
        "no oom event: types {:?}\n{ev}",
        event_types(&ev.stdout)
    );
    let oom: Value = ev
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "oom")
        .unwrap();
    assert_eq!(oom["id"], id.as_str(), "{oom}");
    let text = out.wait_stdout("rc=", SLOW);
    assert!(text.contains("rc=137"), "tail was not SIGKILLed:\n{text}");
    let mev = v2_read(&path, "memory.events");
    assert!(
        keyed(&mev, "oom_kill").is_some_and(|n| n >= 1),
        "memory.events:\n{mev}"
    );
    assert_eq!(t.status(&id), "running");
}

#[test]
fn fork_bomb_stops_at_pids_max() {
    unified();
    let mut t = Test::new("v2_pids");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 10 });
    // An inner shell forks until the kernel refuses (busybox's sh then gives up).
    t.sh("sh -c 'for i in $(seq 50); do sleep 100 & done' 2>&1; echo done; exec sleep 100");
    let (out, _) = t.create_and_start(&id);
    let text = out.wait_stdout("done\n", SLOW);
    assert!(
        text.contains("can't fork") || text.contains("Resource temporarily unavailable"),
        "no fork failed:\n{text}"
    );
    let procs = cgroup_procs(&v2_dir(&path));
    for p in &procs {
        t.track_pid(*p);
    }
    assert!(
        procs.len() > 1 && procs.len() <= 10,
        "cgroup.procs: {procs:?}"
    );
    assert_eq!(v2_read(&path, "pids.max"), "10");
    let events = v2_read(&path, "pids.events");
    assert!(
        keyed(&events, "max").is_some_and(|n| n >= 1),
        "pids.events:\n{events}"
    );
}

#[test]
fn device_program_denies_open_and_a_new_node_and_allows_the_defaults() {
    unified();
    let mut t = Test::new("v2_devices");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.deny_dev_zero();
    t.sh(TRY_DEVICES);
    t.run().assert_only_dev_null_reached();
}

/// The device programs attached to cgroup `dir` itself, as bpftool lists them.
fn device_programs(dir: &Path) -> Vec<String> {
    let out = std::process::Command::new("bpftool")
        .args(["cgroup", "show"])
        .arg(dir)
        .output()
        .expect("bpftool (package bpftool)");
    assert!(
        out.status.success(),
        "bpftool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("cgroup_device") || l.contains(" device "))
        .map(str::to_string)
        .collect()
}

#[test]
fn update_keeps_the_device_rules_and_one_program() {
    unified();
    let mut t = Test::new("v2_devices_update");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.deny_dev_zero();
    t.args(&["sleep", "100"]);
    t.create_and_start(&id);
    let dir = v2_dir(&path);
    let probe = |t: &Test| {
        t.hull(&["exec", &id, "sh", "-c", TRY_DEVICES])
            .assert_only_dev_null_reached()
    };
    probe(&t);
    let progs = device_programs(&dir);
    assert_eq!(progs.len(), 1, "one device program: {progs:?}");

    // An update of other limits leaves the device rules as they were (runc's v2 once reset
    // them to allow-all), with still one program attached.
    t.hull(&["update", "--pids-limit", "50", "--memory", "100M", &id])
        .ok();
    probe(&t);
    assert_eq!(
        device_programs(&dir).len(),
        1,
        "{:?}",
        device_programs(&dir)
    );

    // Device rules in `update -r` are ignored, as by runc: set at create only.
    let allow = json!({ "devices": [{ "allow": true, "access": "rwm" }], "pids": { "limit": 60 } });
    t.call_stdin(&["update", "-r", "-", &id], &allow.to_string())
        .ok();
    assert_eq!(v2_read(&path, "pids.max"), "60");
    probe(&t);
    assert_eq!(
        device_programs(&dir).len(),
        1,
        "{:?}",
        device_programs(&dir)
    );
}

#[test]
fn pause_and_resume_use_cgroup_freeze() {
    unified();
    let mut t = Test::new("v2_pause");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.sh(TICK_LOOP);
    t.create_and_start(&id);
    assert!(wait_until(SLOW, || t.tick() > 2), "the counter never ran");

    t.hull(&["pause", &id]).ok();
    assert_eq!(t.status(&id), "paused");
    assert_eq!(v2_read(&path, "cgroup.freeze"), "1");
    assert_eq!(keyed(&v2_read(&path, "cgroup.events"), "frozen"), Some(1));
    let frozen_at = t.tick();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(t.tick(), frozen_at, "the counter moved while paused");

    t.hull(&["resume", &id]).ok();
    assert_eq!(t.status(&id), "running");
    assert_eq!(keyed(&v2_read(&path, "cgroup.events"), "frozen"), Some(0));
    assert!(
        wait_until(SLOW, || t.tick() > frozen_at),
        "the counter did not resume"
    );
}

#[test]
fn create_under_a_frozen_parent_fails_and_leaves_nothing() {
    let h = unified();
    let mut t = Test::new("v2_frozen_parent");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    // A parent the test makes and freezes; the container's cgroup is born frozen below it.
    // The guard thaws and removes both, the child first.
    let parent = format!("hulltest/frozen-{id}");
    let parent_dir = h.dir_for(&parent);
    fs::create_dir_all(&parent_dir).unwrap();
    let path = format!("{parent}/{id}");
    g.add(&id, &path);
    g.add(&id, &parent);
    fs::write(parent_dir.join("cgroup.freeze"), "1").unwrap();
    t.config["linux"]["cgroupsPath"] = json!(path);
    t.args(&["true"]);
    let (out, took) = t.create_fails();
    assert!(took < SLOW, "create took {took:?}");
    out.stderr_has("frozen");
    assert!(!h.dir_for(&path).exists(), "the container's cgroup is left");
}

#[test]
fn kill_all_uses_the_cgroup_and_reaches_every_process() {
    unified();
    let mut t = Test::new("v2_kill_all");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.remove_namespace("pid");
    t.sh("sleep 100 & sleep 100 & sleep 100; exit 0");
    let (_, pid) = t.create_and_start(&id);
    let dir = v2_dir(&path);
    let mut procs = Vec::new();
    assert!(
        wait_until(SLOW, || {
            procs = cgroup_procs(&dir);
            procs.len() == 4
        }),
        "cgroup.procs: {procs:?}"
    );
    assert!(procs.contains(&pid));
    for p in &procs {
        t.track_pid(*p);
    }
    t.hull(&["kill", "--all", &id, "KILL"]).ok();
    let left = still_alive(&procs, SLOW);
    assert!(left.is_empty(), "still alive after kill --all: {left:?}");
    assert!(wait_until(SLOW, || cgroup_procs(&dir).is_empty()));
    assert_eq!(t.wait_status(&id, "stopped", SLOW), "stopped");
    t.hull(&["delete", &id]).ok();
    assert!(!dir.exists(), "cgroup left after delete");
}

#[test]
fn nested_and_absolute_paths_land_where_runc_puts_them() {
    let h = unified();
    let mut t = Test::new("v2_paths");
    let g = t.cgroup_guard();
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 7 });
    t.args(&["sleep", "100"]);

    let id = t.id.clone();
    let nested = format!("hulltest/{id}/a/b");
    t.config["linux"]["cgroupsPath"] = json!(nested);
    g.add(&id, &nested);
    g.add(&id, &format!("hulltest/{id}/a"));
    g.add(&id, &format!("hulltest/{id}"));
    let (_, pid) = t.create_and_start(&id);
    let dir = h.dir_for(&nested);
    assert!(dir.starts_with(h.mount.join(h.base().trim_start_matches('/'))));
    assert_eq!(v2_read(&nested, "pids.max"), "7");
    assert_eq!(cgroup_procs(&dir), vec![pid]);
    let shown = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(shown.trim(), format!("0::{}/{nested}", h.base()));

    let id2 = t.new_id();
    let absolute = format!("/hulltest-abs-{id2}/c");
    t.config["linux"]["cgroupsPath"] = json!(absolute);
    g.add(&id2, &absolute);
    g.add(&id2, &format!("/hulltest-abs-{id2}"));
    let (_, pid2) = t.create_and_start(&id2);
    let dir2 = h.mount.join(absolute.trim_start_matches('/'));
    assert_eq!(cgroup_procs(&dir2), vec![pid2]);
    assert_eq!(v2_read(&absolute, "pids.max"), "7");

    // delete removes the directories hull made, parents included.
    for (i, top) in [
        (&id, h.dir_for(&format!("hulltest/{id}"))),
        (&id2, dir2.parent().unwrap().to_path_buf()),
    ] {
        t.hull(&["delete", "--force", i]).ok();
        assert!(!top.exists(), "{} left after delete", top.display());
    }
}

#[test]
fn without_a_cgroup_namespace_the_process_sees_its_full_path() {
    let h = unified();
    let mut t = Test::new("v2_no_cgroupns");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.sh("cat /proc/self/cgroup; ls /sys/fs/cgroup/ | grep -c '^memory.max$'; true");
    let out = t.run();
    out.ok();
    assert_eq!(
        out.stdout,
        format!("0::{}/{path}\n0\n", h.base()),
        "the host's /sys/fs/cgroup root (no memory.max there) is what /sys shows:\n{out}"
    );
}

/// Keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[test]
fn events_stats_has_runc_shape_on_cgroup2() {
    unified();
    let mut t = Test::new("v2_stats");
    let g = t.cgroup_guard();
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 42 });
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.create_and_start(&id);
    let out = t.hull(&["events", "--stats", &id]);
    out.ok();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(v["type"], "stats", "{v}");
    let data = &v["data"];
    assert_eq!(data["pids"]["limit"], 42, "{v}");
    assert!(
        data["pids"]["current"].as_u64().is_some_and(|n| n >= 1),
        "{v}"
    );
    assert_eq!(data["memory"]["usage"]["limit"], 64 * MIB, "{v}");
    assert!(
        data["memory"]["usage"]["usage"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{v}"
    );
    // memory.stat's keys, as runc's fs2 reports them.
    for k in ["anon", "file", "pgfault"] {
        assert!(data["memory"]["raw"][k].is_u64(), "memory.raw.{k}: {v}");
    }
    assert!(data["cpu"]["usage"]["total"].is_u64(), "{v}");

    // The guest's runc on the same bundle: the same sections and keys.
    let runc = crate::util::RUNC;
    let rid = format!("{id}-runc");
    let rpath = t.in_cgroup(&g, &rid);
    let call = crate::util::Call {
        bin: Some(runc.into()),
        ..Default::default()
    };
    t.track(Path::new(runc), &t.root, &rid);
    t.write_config();
    t.call(&["create", "--bundle", &t.bundle_str(), &rid], &call)
        .ok();
    t.call(&["start", &rid], &call).ok();
    let r = t.call(&["events", "--stats", &rid], &call);
    r.ok();
    let rv: Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}\n{r}"));
    t.call(&["delete", "--force", &rid], &call).ok();
    assert_cgroups_gone(&rpath);
    assert_eq!(keys(data), keys(&rv["data"]), "sections of data");
    for section in ["cpu", "memory", "pids"] {
        // `cache` (memory.stat's file) is left out when 0, by runc too.
        let without_cache = |v: &Value| {
            let mut k = keys(v);
            k.retain(|k| k != "cache");
            k
        };
        assert_eq!(
            without_cache(&data[section]),
            without_cache(&rv["data"][section]),
            "data.{section}"
        );
    }
    assert_eq!(
        keys(&data["memory"]["usage"]),
        keys(&rv["data"]["memory"]["usage"])
    );
    let (mut ours, mut theirs) = (
        keys(&data["memory"]["raw"]),
        keys(&rv["data"]["memory"]["raw"]),
    );
    ours.retain(|k| theirs.contains(k));
    theirs.retain(|k| ours.contains(k));
    assert!(
        ours.len() >= 20,
        "memory.raw shares few keys with runc's: {ours:?}"
    );
}

#[test]
fn update_changes_cgroup2_limits_of_a_running_container() {
    unified();
    let mut t = Test::new("v2_update");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["memory"] = json!({ "limit": 64 * MIB });
    t.config["linux"]["resources"]["pids"] = json!({ "limit": 10 });
    t.args(&["sleep", "100"]);
    t.create_and_start(&id);
    t.hull(&[
        "update",
        "--memory",
        "128M",
        "--memory-swap",
        "192M",
        "--memory-reservation",
        "16M",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "60000",
        "--cpu-share",
        "1024",
        "--cpuset-cpus",
        "0",
        &id,
    ])
    .ok();
    assert_eq!(v2_read(&path, "memory.max"), (128 * MIB).to_string());
    assert_eq!(v2_read(&path, "memory.swap.max"), (64 * MIB).to_string());
    assert_eq!(v2_read(&path, "memory.low"), (16 * MIB).to_string());
    assert_eq!(v2_read(&path, "pids.max"), "20");
    assert_eq!(v2_read(&path, "cpu.max"), "30000 60000");
    assert_eq!(v2_read(&path, "cpu.weight"), "39");
    assert_eq!(v2_read(&path, "cpuset.cpus"), "0");

    // -r with unified keys; what it does not name stays.
    let r =
        json!({ "unified": { "memory.high": (100 * MIB).to_string() }, "pids": { "limit": 30 } });
    t.call_stdin(&["update", "-r", "-", &id], &r.to_string())
        .ok();
    assert_eq!(v2_read(&path, "memory.high"), (100 * MIB).to_string());
    assert_eq!(v2_read(&path, "pids.max"), "30");
    assert_eq!(v2_read(&path, "memory.max"), (128 * MIB).to_string());

    // A value the kernel refuses (a cpu past the last one) fails the update naming the file
    // and keeps the old limit.
    let possible = fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let last: u32 = possible
        .trim()
        .rsplit(['-', ','])
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = t.hull(&["update", "--cpuset-cpus", &(last + 1).to_string(), &id]);
    out.fails();
    out.stderr_has("cpuset.cpus");
    assert_eq!(v2_read(&path, "cpuset.cpus"), "0");
}

#[test]
fn exec_cgroup_puts_the_process_in_a_sub_cgroup() {
    let h = unified();
    let mut t = Test::new("v2_exec_cgroup");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.args(&["sleep", "100"]);
    t.create_and_start(&id);
    let sub = v2_dir(&path).join("sub");
    fs::create_dir(&sub).unwrap();
    let out = t.hull(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    // The exec'd process may take a moment to leave it; the guard removes only leaves.
    let removed = wait_until(SLOW, || fs::remove_dir(&sub).is_ok() || !sub.exists());
    out.ok();
    assert!(removed, "rmdir {}", sub.display());
    assert_eq!(out.stdout.trim(), format!("0::{}/{path}/sub", h.base()));
    // A sub-cgroup that does not exist: one line naming it, nothing run.
    let out = t.hull(&["exec", "--cgroup", "nosuch", &id, "true"]);
    assert_eq!(out.code, 255, "exec fails as runc's does:\n{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line:\n{out}");
    out.stderr_has("/nosuch/cgroup.procs: no such file or directory");
}

#[test]
fn delete_of_a_stopped_container_removes_its_cgroup() {
    unified();
    let mut t = Test::new("v2_delete");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.args(&["sleep", "100"]);
    let (_, pid) = t.create_and_start(&id);
    assert!(v2_dir(&path).is_dir());
    t.hull(&["kill", &id, "KILL"]).ok();
    assert!(wait_until(SLOW, || is_gone(pid)));
    assert_eq!(t.wait_status(&id, "stopped", SLOW), "stopped");
    t.hull(&["delete", &id]).ok();
    assert_cgroups_gone(&path);
    assert!(!t.root.join(&id).exists(), "state dir left after delete");
}
