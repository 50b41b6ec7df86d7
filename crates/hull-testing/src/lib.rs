//! Test support shared by the tests of every hull crate: a test that cannot run on this host
//! says so by name and with its reason instead of passing silently, and fails instead when
//! the run declares that the host has what the test needs.
//!
//! `HULL_TEST_REQUIRE` lists the prerequisites the host is known to have, comma-separated
//! (`.ci/run` sets it for CI's machine kind; `all` means every one): a test skipped for a
//! listed one fails. Each skip is written to the terminal past the test harness's capture,
//! and appended to the file `HULL_TEST_SKIP_LOG` names, when set, for a summary.
//!
//! The prerequisites, by name:
//! - `root`: the tests run as uid 0 of the initial user namespace.
//! - `cgroup-v1`: writable cgroup v1 hierarchies (the controllers a test names).
//! - `hybrid`: a cgroup2 mount beside v1 hierarchies holding hugetlb (this machine kind).
//! - `runc`: a runc binary for the differential tests.
//! - `tools`: setpriv(1) and unshare(1) from util-linux.
//! - `two-cpus`: at least two CPUs.
//! - `no-systemd`, `no-lsm`: no systemd as PID 1, no AppArmor or SELinux.
//! - `memfd-noexec`: the vm.memfd_noexec sysctl (Linux 6.3+).
//! - `disk-tmp`: the test binaries live on a disk filesystem, not tmpfs.
//! - `rt-group-sched`: cgroup v1 cpu.rt_runtime_us (CONFIG_RT_GROUP_SCHED).
//! - `no-blkio-weight`: a block scheduler without a blkio weight (none, mq-deadline).
//! - `block-disk`: a whole disk (not a partition or loop device) to throttle.

#![forbid(unsafe_code)]

use std::io::Write;

/// Every prerequisite name `HULL_TEST_REQUIRE` may list.
pub const NEEDS: &[&str] = &[
    "root",
    "cgroup-v1",
    "hybrid",
    "runc",
    "tools",
    "two-cpus",
    "no-systemd",
    "no-lsm",
    "memfd-noexec",
    "disk-tmp",
    "rt-group-sched",
    "no-blkio-weight",
    "block-disk",
];

/// Whether the run declared that this host has `need`.
pub fn required(need: &str) -> bool {
    listed(std::env::var("HULL_TEST_REQUIRE").ok().as_deref(), need)
}

/// Whether the comma-separated `list` names `need` (or says `all`). A name that is not a
/// prerequisite fails: a misspelt one in CI's list would otherwise require nothing.
fn listed(list: Option<&str>, need: &str) -> bool {
    assert!(NEEDS.contains(&need), "unknown test prerequisite {need:?}");
    let names: Vec<&str> = list
        .into_iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    for n in &names {
        assert!(
            *n == "all" || NEEDS.contains(n),
            "HULL_TEST_REQUIRE names {n:?}, which is not a test prerequisite"
        );
    }
    names.iter().any(|n| *n == need || *n == "all")
}

/// Reports the running test as skipped for lack of `need`, or fails it (panics) when the run
/// declared the host has `need`. The caller returns right after.
#[track_caller]
pub fn skip(need: &str, reason: &str) {
    skip_under(
        std::env::var("HULL_TEST_REQUIRE").ok().as_deref(),
        need,
        reason,
    )
}

#[track_caller]
fn skip_under(list: Option<&str>, need: &str, reason: &str) {
    let test = test_name();
    if listed(list, need) {
        panic!("{test}: needs {need} ({reason}), which HULL_TEST_REQUIRE says this host has");
    }
    report(&test, &format!("needs {need}: {reason}"));
}

/// Writes `SKIPPED <test>: <why>` to the terminal (and the skip log) without any check: for
/// skips that are a choice of the run (the suite run against another runtime), not a fact
/// of the host.
pub fn report(test: &str, why: &str) {
    let line = format!("SKIPPED {test}: {why}\n");
    // Straight to fd 2: the harness captures only print! and eprint!.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os("HULL_TEST_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// `skip_unless!(cond, need, "reason {}", x)`: when `cond` is false, reports the test as
/// skipped for lack of `need` (see [`skip`]) and returns from it.
#[macro_export]
macro_rules! skip_unless {
    ($cond:expr, $need:expr, $($reason:tt)+) => {
        if !$cond {
            $crate::skip($need, &format!($($reason)+));
            return;
        }
    };
}

/// `skip_unless_root!()`: the test needs uid 0.
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        $crate::skip_unless!($crate::is_root(), "root", "runs as uid 0")
    };
}

/// The running test's name (the harness names each test's thread after it).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

/// Whether this process runs as uid 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "needs root (runs as uid 0), which HULL_TEST_REQUIRE says")]
    fn a_skip_for_a_required_prerequisite_fails_the_test() {
        skip_under(Some("runc, root"), "root", "runs as uid 0");
    }

    #[test]
    #[should_panic(expected = "which HULL_TEST_REQUIRE says")]
    fn all_requires_every_prerequisite() {
        skip_under(Some("all"), "two-cpus", "pins to the second CPU");
    }

    #[test]
    fn a_prerequisite_not_listed_is_not_required() {
        assert!(!listed(Some("root,runc"), "no-lsm"));
        assert!(!listed(None, "root"));
        assert!(listed(Some(" runc , root "), "root"));
    }

    #[test]
    #[should_panic(expected = "HULL_TEST_REQUIRE names \"rootx\"")]
    fn a_misspelt_prerequisite_in_the_list_fails() {
        listed(Some("root,rootx"), "root");
    }

    #[test]
    fn every_documented_need_is_known() {
        let doc = include_str!("lib.rs");
        for need in NEEDS {
            assert!(
                doc.contains(&format!("//! - `{need}`")) || doc.contains(&format!(", `{need}`")),
                "{need}"
            );
        }
    }
}
