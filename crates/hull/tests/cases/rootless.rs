//! The runtime run by an unprivileged user: `spec --rootless`'s config (a user namespace
//! that maps the caller's own ids), the state under a root that user owns, and the
//! lifecycle commands as the same user.

use std::fs;

use serde_json::Value;

use crate::util::*;

/// A uid with no account: the kernel needs none to run a process or map it.
const UID: u32 = 64_123;

#[test]
fn unprivileged_caller_runs_a_container_as_root_of_its_user_namespace() {
    let (t, c) = rootless_test(
        "rootless-run",
        UID,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; \
             touch /tmp/w && stat -c %u /tmp/w",
        ],
    );
    t.write_config();
    let out = t.call(&["run", &t.id], &c);
    out.ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    let uid = UID.to_string();
    assert_eq!(
        words,
        ["0", &uid, "1", "0", &uid, "1", "0", "0", "0"],
        "{out:?}"
    );
    // The rootfs file the container made belongs to the caller on the host.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(t.rootfs.join("tmp/w")).unwrap().uid(), UID);
    t.assert_nothing_left(&t.id);
}

#[test]
fn unprivileged_caller_creates_execs_kills_and_deletes() {
    let (t, c) = rootless_test("rootless-life", UID, &["sleep", "600"]);
    t.write_config();
    let pid_path = t.bundle.join("init.pid");
    t.call(
        &["create", "--pid-file", pid_path.to_str().unwrap(), &t.id],
        &c,
    )
    .ok();
    let pid: i32 = fs::read_to_string(&pid_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        UID,
        "the init runs as the caller on the host"
    );
    let state: Value = serde_json::from_str(&t.call(&["state", &t.id], &c).ok().stdout).unwrap();
    assert_eq!(state["status"], "created");
    t.call(&["start", &t.id], &c).ok();
    let out = t.call(
        &[
            "exec",
            &t.id,
            "sh",
            "-c",
            "id -u; tr '\\0' ' ' </proc/1/cmdline",
        ],
        &c,
    );
    out.ok();
    assert_eq!(out.stdout, "0\nsleep 600 ", "{out:?}");
    t.call(&["kill", &t.id, "KILL"], &c).ok();
    assert_eq!(t.wait_status(&t.id, "stopped", STOP_TIMEOUT), "stopped");
    t.call(&["delete", &t.id], &c).ok();
    let left = t.call(&["list", "-q"], &c);
    assert_eq!(left.ok().stdout, "", "{left:?}");
    t.assert_nothing_left(&t.id);
}

/// `--rootless` as runc reads it: `false` makes a cgroup the caller may not make an error
/// (as for root), `true` and auto (an unprivileged caller) run without cgroups of its own.
#[test]
fn rootless_false_makes_a_cgroup_the_caller_cannot_make_an_error() {
    let (t, c) = rootless_test("rootless-flag", UID, &["true"]);
    t.write_config();
    let out = t.call(&["--rootless=false", "run", &t.id], &c);
    out.fails().one_line();
    if !is_runc() {
        out.stderr_has("ermission denied");
    }
    t.assert_nothing_left(&t.id);
    for flag in ["--rootless=true", "--rootless=auto"] {
        let id = t.new_id();
        t.call(&[flag, "run", &id], &c).ok();
        t.assert_nothing_left(&id);
    }
}
