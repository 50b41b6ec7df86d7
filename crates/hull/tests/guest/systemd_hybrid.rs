//! The systemd driver on a v1/hybrid host (the guest booted with
//! `systemd.unified_cgroup_hierarchy=0`, as older systemd hosts run): the scope has the same
//! path in every hierarchy — systemd's (name=systemd, memory, cpu, blkio, pids, devices and its
//! cgroup2 side) and hull's (cpuset, freezer and the rest) — the limits are unit properties
//! under their v1 names and v1 files, and the unit goes with the container. Run by the
//! `hybrid` stage of the guest suite, in a boot of its own.

use std::fs;
use std::path::Path;

use serde_json::json;

use crate::systemd::{read, sd_create, show};
use crate::util::{cgroup_hierarchies, is_gone, wait_until, Test, MIB};
use crate::SLOW;

/// Checks that this is the hybrid boot: v1 hierarchies, systemd's cgroup2 at
/// /sys/fs/cgroup/unified, systemd running.
#[track_caller]
fn hybrid() {
    let tmpfs = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        .unwrap_or(false);
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup/unified")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    assert!(
        tmpfs && unified && Path::new("/run/systemd/system").exists(),
        "not a hybrid host under systemd: the `hybrid` stage boots the guest with \
         systemd.unified_cgroup_hierarchy=0 (tests/vm/guest-tests.sh hybrid)"
    );
}

#[test]
fn a_scope_spans_every_hierarchy_with_its_limits_through_its_life() {
    hybrid();
    let mut t = Test::new("sdh_life");
    let id = t.id.clone();
    let unit = format!("hulltest-{id}.scope");
    let rel = format!("/system.slice/{unit}");
    t.config["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}"));
    let res = &mut t.config["linux"]["resources"];
    res["memory"] = json!({ "limit": 64 * MIB });
    res["cpu"] = json!({ "shares": 512, "quota": 50000, "period": 100000 });
    res["pids"] = json!({ "limit": 42 });
    t.args(&["sleep", "1000"]);
    let (out, pid) = sd_create(&t, &id);
    out.ok();
    let pid = pid.expect("pid file");

    // In every hierarchy, systemd's or not, at the scope's path.
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cgroups.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or_default();
        assert_eq!(path, rel, "{line} in\n{cgroups}");
    }
    let p = show(
        &unit,
        &[
            "ActiveState",
            "MemoryLimit",
            "TasksMax",
            "CPUShares",
            "CPUQuotaPerSecUSec",
        ],
    );
    let get = |k: &str| p.get(k).map(String::as_str);
    assert_eq!(get("ActiveState"), Some("active"), "{p:?}");
    assert_eq!(get("MemoryLimit"), Some("67108864"), "{p:?}");
    assert_eq!(get("TasksMax"), Some("42"), "{p:?}");
    assert_eq!(get("CPUShares"), Some("512"), "{p:?}");
    assert_eq!(get("CPUQuotaPerSecUSec"), Some("500ms"), "{p:?}");
    let dir = |c: &str| {
        cgroup_hierarchies()
            .into_iter()
            .find(|h| h.controllers.iter().any(|x| x == c))
            .unwrap_or_else(|| panic!("no {c} hierarchy"))
            .mount
            .join(rel.trim_start_matches('/'))
    };
    assert_eq!(read(&dir("memory"), "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&dir("pids"), "pids.max"), "42");
    assert_eq!(read(&dir("cpu"), "cpu.shares"), "512");
    assert_eq!(read(&dir("cpu"), "cpu.cfs_quota_us"), "50000");
    assert!(!read(&dir("cpuset"), "cpuset.cpus").is_empty());
    t.hull(&["start", &id]).ok();

    // exec joins the scope in every hierarchy too.
    let seen = t
        .hull(&["exec", &id, "cat", "/proc/self/cgroup"])
        .ok()
        .stdout
        .clone();
    for line in seen.lines() {
        assert!(line.ends_with(&rel), "exec: {line} in\n{seen}");
    }

    t.hull(&["update", "--memory", &(128 * MIB).to_string(), &id])
        .ok();
    assert_eq!(
        show(&unit, &["MemoryLimit"])["MemoryLimit"],
        (128 * MIB).to_string()
    );
    assert_eq!(
        read(&dir("memory"), "memory.limit_in_bytes"),
        (128 * MIB).to_string()
    );

    t.hull(&["pause", &id]).ok();
    assert_eq!(read(&dir("freezer"), "freezer.state"), "FROZEN");
    t.hull(&["resume", &id]).ok();
    assert_eq!(read(&dir("freezer"), "freezer.state"), "THAWED");

    t.hull(&["kill", "--all", &id, "KILL"]).ok();
    assert!(wait_until(SLOW, || is_gone(pid)), "init still alive");
    t.wait_status(&id, "stopped", SLOW);
    t.hull(&["delete", &id]).ok();
    assert!(
        wait_until(SLOW, || show(&unit, &["LoadState"])["LoadState"]
            == "not-found"),
        "unit left: {:?}",
        show(&unit, &["LoadState", "ActiveState"])
    );
    for h in cgroup_hierarchies() {
        let d = h.mount.join(rel.trim_start_matches('/'));
        assert!(!d.exists(), "{} left", d.display());
    }
}
