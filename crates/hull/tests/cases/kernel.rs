//! Kernel settings private to the container: the time namespace with its clock offsets, and
//! sysctls written in the container's own network and IPC namespaces.

use std::fs;

use serde_json::json;

use crate::util::{host_ns, skip_on_runc, Test};

/// The first number of /proc/uptime (seconds since boot, boottime clock).
fn uptime(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad /proc/uptime {text:?}"))
}

fn host_uptime() -> f64 {
    uptime(&fs::read_to_string("/proc/uptime").unwrap())
}

/// `(clock, secs, nanosecs)` rows of /proc/PID/timens_offsets.
fn offsets(text: &str) -> Vec<(String, i64, i64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect()
}

const MONOTONIC_SECS: i64 = 7 * 86400;
const BOOTTIME_SECS: i64 = 3 * 86400;

#[test]
fn time_offsets_shift_the_containers_clocks() {
    // Known to fail on runc 1.1.5: time namespaces came in runc 1.2.
    if skip_on_runc("runc 1.1.5 has no time namespace") {
        return;
    }
    let mut t = Test::new("kernel_timens");
    t.add_namespace("time", None);
    t.config["linux"]["timeOffsets"] = json!({
        "monotonic": { "secs": MONOTONIC_SECS, "nanosecs": 0 },
        "boottime": { "secs": BOOTTIME_SECS, "nanosecs": 500 }
    });
    t.sh("cat /proc/self/timens_offsets; echo ---; cat /proc/uptime; readlink /proc/self/ns/time");
    let before = host_uptime();
    let out = t.output();
    let after = host_uptime();
    let (offs, rest) = out.split_once("---\n").unwrap();
    let mut offs = offsets(offs);
    offs.sort();
    assert_eq!(
        offs,
        [
            ("boottime".to_string(), BOOTTIME_SECS, 500),
            ("monotonic".to_string(), MONOTONIC_SECS, 0)
        ],
        "{out}"
    );
    let mut lines = rest.lines();
    let inside = uptime(lines.next().unwrap_or_default());
    let shifted = inside - BOOTTIME_SECS as f64;
    assert!(
        shifted >= before - 0.5 && shifted <= after + 0.5,
        "uptime inside {inside} is not the host's ({before}..{after}) plus {BOOTTIME_SECS}"
    );
    assert_ne!(lines.next(), Some(host_ns("time").as_str()), "{out}");
}

#[test]
fn time_offsets_under_a_new_user_namespace_are_written_by_the_runtime() {
    // The time namespace is then owned by the new user namespace, whose root may not write
    // the offsets file: runc writes it from the runtime, so does hull.
    if skip_on_runc("runc 1.1.5 has no time namespace") {
        return;
    }
    let mut t = Test::new("kernel_timens_userns");
    super::namespaces::new_user_namespace(&mut t);
    t.add_namespace("time", None);
    t.config["linux"]["timeOffsets"] = json!({
        "boottime": { "secs": BOOTTIME_SECS, "nanosecs": 7 }
    });
    t.sh("grep boottime /proc/self/timens_offsets; id -u");
    let out = t.output();
    let mut lines = out.lines();
    let offs = offsets(lines.next().unwrap_or_default());
    assert_eq!(offs, [("boottime".to_string(), BOOTTIME_SECS, 7)], "{out}");
    assert_eq!(lines.next(), Some("0"), "{out}");
}

#[test]
fn time_namespace_without_offsets_has_zero_offsets() {
    if skip_on_runc("runc 1.1.5 has no time namespace") {
        return;
    }
    let mut t = Test::new("kernel_timens_zero");
    t.add_namespace("time", None);
    t.sh("cat /proc/self/timens_offsets; readlink /proc/self/ns/time");
    let out = t.output();
    let mut offs = offsets(&out);
    offs.sort();
    assert_eq!(
        offs,
        [
            ("boottime".to_string(), 0, 0),
            ("monotonic".to_string(), 0, 0)
        ],
        "{out}"
    );
    let ns = out.lines().last().unwrap_or_default();
    assert!(ns.starts_with("time:["), "{out}");
    assert_ne!(ns, host_ns("time"), "time namespace is the host's");
}

#[test]
fn without_a_time_namespace_the_clocks_are_the_hosts() {
    let mut t = Test::new("kernel_no_timens");
    t.sh("cat /proc/uptime; readlink /proc/self/ns/time");
    let before = host_uptime();
    let out = t.output();
    let after = host_uptime();
    let mut lines = out.lines();
    let inside = uptime(lines.next().unwrap_or_default());
    assert!(
        inside >= before - 0.5 && inside <= after + 0.5,
        "uptime inside {inside}, host {before}..{after}"
    );
    assert_eq!(lines.next(), Some(host_ns("time").as_str()), "{out}");
}

/// Reads a sysctl of the host (this test process's namespaces).
fn host_sysctl(path: &str) -> String {
    fs::read_to_string(format!("/proc/sys/{path}")).unwrap()
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces_only() {
    let mut t = Test::new("kernel_sysctl");
    let host_forward = host_sysctl("net/ipv4/ip_forward");
    let host_shmmax = host_sysctl("kernel/shmmax");
    // Values that differ from the host's, so that seeing them proves they were written.
    let forward = if host_forward.trim() == "1" { "0" } else { "1" };
    let shmmax = if host_shmmax.trim() == "68719476736" {
        "68719476737"
    } else {
        "68719476736"
    };
    t.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": forward,
        "kernel.shmmax": shmmax
    });
    t.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    assert_eq!(t.output(), format!("{forward}\n{shmmax}\n"));
    assert_eq!(host_sysctl("net/ipv4/ip_forward"), host_forward);
    assert_eq!(host_sysctl("kernel/shmmax"), host_shmmax);
}

#[test]
fn sysctl_of_a_namespace_the_container_shares_with_the_host_is_refused() {
    let mut t = Test::new("kernel_sysctl_host_net");
    let host_forward = host_sysctl("net/ipv4/ip_forward");
    t.remove_namespace("network");
    t.config["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
    t.args(&["true"]);
    t.create_fails().0.stderr_has("net.ipv4.ip_forward");
    assert_eq!(host_sysctl("net/ipv4/ip_forward"), host_forward);
}

#[test]
fn non_namespaced_sysctl_is_refused() {
    let mut t = Test::new("kernel_sysctl_global");
    t.config["linux"]["sysctl"] = json!({ "vm.swappiness": "10" });
    t.args(&["true"]);
    t.create_fails().0.stderr_has("vm.swappiness");
}
