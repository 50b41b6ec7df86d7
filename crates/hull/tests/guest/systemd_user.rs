//! The systemd driver for an unprivileged caller: `--systemd-cgroup` run by a lingering
//! user puts the container in a scope of that user's own systemd instance (reached over
//! the session bus at `$XDG_RUNTIME_DIR/bus`), inside the subtree systemd delegates to
//! `user@UID.service`, with the limits that delegation allows (cpu, memory, pids).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use crate::systemd::{field, read, show_with, units_in};
use crate::util::{cgroup_procs, is_gone, rootless_test, wait_until, MIB};
use crate::{unified, SLOW};

const USER: &str = "hullrootless";
const UID: u32 = 1500;

fn runtime_dir() -> PathBuf {
    PathBuf::from(format!("/run/user/{UID}"))
}

/// A user whose systemd instance runs without a login (lingering), made once per boot.
#[track_caller]
fn lingering_user() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let run = |args: &[&str]| {
            let out = Command::new(args[0]).args(&args[1..]).output();
            match out {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(format!(
                    "{args:?}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Err(format!("{args:?}: {e}")),
            }
        };
        let uid = UID.to_string();
        run(&["useradd", "-m", "-u", &uid, "-s", "/bin/sh", USER])?;
        run(&["loginctl", "enable-linger", USER])?;
        let bus = runtime_dir().join("bus");
        if !wait_until(SLOW, || bus.exists()) {
            return Err(format!("user@{UID}.service made no {}", bus.display()));
        }
        Ok(())
    });
    if let Err(e) = ready {
        panic!("no lingering user with a systemd instance: {e}");
    }
}

/// `systemctl --user` of the test user.
fn user_systemctl() -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", USER, "--", "env"])
        .arg(format!("XDG_RUNTIME_DIR={}", runtime_dir().display()))
        .args(["systemctl", "--user"]);
    c
}

/// The cgroup of the user instance's `user.slice`, where rootless scopes go by default.
fn user_slice() -> PathBuf {
    unified().mount.join(format!(
        "user.slice/user-{UID}.slice/user@{UID}.service/user.slice"
    ))
}

#[test]
fn a_rootless_container_gets_a_scope_of_the_users_own_systemd() {
    lingering_user();
    let (mut t, mut c) = rootless_test("sd_user", UID, &["sleep", "1000"]);
    // As after `su -`: no DBUS_SESSION_BUS_ADDRESS, the bus found at $XDG_RUNTIME_DIR/bus.
    c.env.push((
        "XDG_RUNTIME_DIR".into(),
        runtime_dir().display().to_string(),
    ));
    let id = t.id.clone();
    t.config["linux"]["resources"] = json!({
        "memory": { "limit": 64 * MIB },
        "pids": { "limit": 42 },
        "cpu": { "quota": 50000, "period": 100000 },
    });
    // As podman on a cgroup v2 host: a cgroup namespace of its own.
    t.add_namespace("cgroup", None);
    t.config["annotations"] = json!({ "org.systemd.property.TimeoutStopSec": "uint64 7" });
    t.write_config();
    let pid_file = t.bundle.join("init.pid");
    let pid_arg = pid_file.display().to_string();
    let out = t.call(
        &["--systemd-cgroup", "create", "--pid-file", &pid_arg, &id],
        &c,
    );
    out.ok();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    t.track_pid(pid);

    // An empty cgroupsPath: runc's default for a rootless caller, user.slice:<prefix>:<id>.
    let unit = format!("hull-{id}.scope");
    let dir = user_slice().join(&unit);
    let p = show_with(
        user_systemctl(),
        &unit,
        &[
            "ActiveState",
            "Slice",
            "Delegate",
            "MemoryMax",
            "TasksMax",
            "TimeoutStopUSec",
        ],
    );
    for (k, v) in [
        ("ActiveState", "active".to_string()),
        ("Slice", "user.slice".to_string()),
        ("Delegate", "yes".to_string()),
        ("MemoryMax", (64 * MIB).to_string()),
        ("TasksMax", "42".to_string()),
        ("TimeoutStopUSec", "7s".to_string()),
    ] {
        assert_eq!(p.get(k), Some(&v), "{k}: {p:?}");
    }
    assert_eq!(cgroup_procs(&dir), vec![pid], "{}", dir.display());
    assert_eq!(read(&dir, "memory.max"), (64 * MIB).to_string());
    assert_eq!(read(&dir, "pids.max"), "42");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");

    t.call(&["start", &id], &c).ok();
    // The caller (this test, in a system service) may not move a process into the user's
    // subtree: systemd does it for the exec, as it did for the init.
    let exec_pid = t.bundle.join("exec.pid");
    let exec_pid_arg = exec_pid.display().to_string();
    t.call(
        &[
            "exec",
            "--detach",
            "--pid-file",
            &exec_pid_arg,
            &id,
            "sleep",
            "1000",
        ],
        &c,
    )
    .ok();
    let exec_pid: i32 = std::fs::read_to_string(&exec_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    t.track_pid(exec_pid);
    assert!(
        cgroup_procs(&dir).contains(&exec_pid),
        "exec'd pid {exec_pid} not in {}: {:?}",
        dir.display(),
        cgroup_procs(&dir)
    );
    // What the process inside sees: its cgroup namespace's root, and the limit there.
    let seen = t
        .call(
            &[
                "exec",
                &id,
                "sh",
                "-c",
                "echo cg=$(cat /proc/self/cgroup); \
                 echo memory.max=$(cat /sys/fs/cgroup/memory.max); echo uid=$(id -u)",
            ],
            &c,
        )
        .ok()
        .stdout
        .clone();
    assert_eq!(field(&seen, "cg"), Some("0::/"), "{seen}");
    assert_eq!(field(&seen, "memory.max"), Some("67108864"), "{seen}");
    assert_eq!(field(&seen, "uid"), Some("0"), "{seen}");

    t.call(&["pause", &id], &c).ok();
    assert!(read(&dir, "cgroup.events").contains("frozen 1"));
    t.call(&["resume", &id], &c).ok();
    assert!(read(&dir, "cgroup.events").contains("frozen 0"));

    // update as the same user: the property and the file.
    t.call(&["update", "--memory", &(96 * MIB).to_string(), &id], &c)
        .ok();
    let p = show_with(user_systemctl(), &unit, &["MemoryMax"]);
    assert_eq!(p["MemoryMax"], (96 * MIB).to_string(), "{p:?}");
    assert_eq!(read(&dir, "memory.max"), (96 * MIB).to_string());

    t.call(&["kill", &id, "KILL"], &c).ok();
    assert!(wait_until(SLOW, || is_gone(pid)), "init still alive");
    let out = t.call(&["delete", "--force", &id], &c);
    out.ok();
    let gone = wait_until(SLOW, || units_in(user_systemctl(), &id).is_empty());
    assert!(gone, "units left: {:?}", units_in(user_systemctl(), &id));
    assert!(!dir.exists(), "{} left", dir.display());
    t.assert_nothing_left(&id);
}

#[test]
fn a_rootless_caller_without_its_bus_is_one_line_naming_the_session_bus() {
    lingering_user();
    let (t, mut c) = rootless_test("sd_user_nobus", UID, &["true"]);
    let empty = t.mkdir("no-bus-here");
    std::os::unix::fs::chown(&empty, Some(UID), Some(UID)).unwrap();
    c.env
        .push(("XDG_RUNTIME_DIR".into(), empty.display().to_string()));
    t.write_config();
    let id = t.id.clone();
    let out = t.call(&["--systemd-cgroup", "run", &id], &c);
    out.fails();
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("session bus"), "{out:?}");
    assert!(units_in(user_systemctl(), &id).is_empty());
    assert!(!Path::new(&user_slice().join(format!("hull-{id}.scope"))).exists());
    t.assert_nothing_left(&id);
}
