//! Regressions from the first review of the init path: each test pins a bug that was found by
//! attacking the runtime, named after what the container or client must see.

use std::fs;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::json;

use super::namespaces::new_user_namespace;
use crate::util::{status_field, Test};

#[test]
fn process_starts_with_no_signal_ignored() {
    // Rust ignores SIGPIPE before main, and execve keeps ignored signals ignored.
    let mut t = Test::new("rev_sigign");
    // grep itself, not through sh: busybox sh ignores SIGQUIT of its own accord.
    t.args(&["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    let out = t.output();
    assert_eq!(
        status_field(&out, "SigIgn"),
        Some("0000000000000000"),
        "{out}"
    );
    assert_eq!(
        status_field(&out, "SigBlk"),
        Some("0000000000000000"),
        "{out}"
    );
}

/// Creates a first container with a user namespace of its own, then points `t`'s config at
/// that namespace (by path, without id maps) for a second one; returns the namespace's link.
fn join_the_user_namespace_of_a_first_container(t: &mut Test) -> std::path::PathBuf {
    new_user_namespace(t);
    t.args(&["sleep", "100"]);
    let first = t.id.clone();
    let (out, pid) = t.create(&first);
    out.ok();
    let user_ns = format!("/proc/{}/ns/user", pid.unwrap());
    let link = fs::read_link(&user_ns).unwrap();
    t.add_namespace("user", Some(&user_ns));
    t.config["linux"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "uidMappings" && k != "gidMappings");
    link
}

#[test]
fn joining_a_user_namespace_by_path_makes_the_init_its_root() {
    let mut t = Test::new("rev_join_user");
    let want = join_the_user_namespace_of_a_first_container(&mut t);
    t.sh("readlink /proc/self/ns/user; id -u; id -g");
    let second = t.new_id();
    let out = t.run_with(&second, &[]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, [want.to_string_lossy().as_ref(), "0", "0"], "{out}");
}

/// runc joins the namespaces other than the user namespace first, with the runtime's own
/// privileges, then the user namespace, then what was refused: a joined user namespace does
/// not stop a container from also joining a network namespace the host owns.
#[test]
fn a_joined_user_namespace_does_not_stop_joining_a_namespace_the_host_owns() {
    let mut t = Test::new("rev_join_user_hostnet");
    let want_user = join_the_user_namespace_of_a_first_container(&mut t);
    let host_net = format!("/proc/{}/ns/net", std::process::id());
    let want_net = fs::read_link(&host_net).unwrap();
    t.add_namespace("network", Some(&host_net));
    // sysfs belongs to the host's network namespace, which the user namespace does not own.
    for m in t.config["mounts"].as_array_mut().unwrap() {
        if m["type"] == "sysfs" {
            *m = json!({ "destination": "/sys", "type": "bind", "source": "/sys",
                         "options": ["rbind", "ro"] });
        }
    }
    t.sh("readlink /proc/self/ns/user; readlink /proc/self/ns/net");
    let second = t.new_id();
    let out = t.run_with(&second, &[]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            want_user.to_string_lossy().as_ref(),
            want_net.to_string_lossy().as_ref()
        ],
        "{out}"
    );
}

#[test]
fn a_hook_can_ask_hull_for_the_state_while_create_runs() {
    let mut t = Test::new("rev_hook_state");
    let seen = t.path("seen.json");
    let script = format!(
        "{} --root {} state {} > {}",
        crate::util::runtime().display(),
        t.root_str(),
        t.id,
        seen.display()
    );
    t.config["hooks"] = json!({
        "createRuntime": [{
            "path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 5
        }]
    });
    t.args(&["true"]);
    let id = t.id.clone();
    let (out, pid) = t.create(&id);
    out.ok();
    let st: serde_json::Value = serde_json::from_str(&fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(st["status"], "creating", "{st}");
    assert_eq!(st["pid"].as_i64(), pid.map(i64::from), "{st}");
}

#[test]
fn create_killed_during_setup_is_removed_by_delete_force() {
    let mut t = Test::new("rev_killed_create");
    // The createRuntime hook holds create while the test kills it.
    t.config["hooks"] = json!({
        "createRuntime": [{ "path": "/bin/sleep", "args": ["sleep", "30"] }]
    });
    t.args(&["sleep", "100"]);
    t.write_config();
    let id = t.id.clone();
    let pending = t.spawn_call(&["create", "--bundle", &t.bundle_str(), &id]);
    assert_eq!(
        t.wait_status(&id, "creating", Duration::from_secs(5)),
        "creating"
    );
    let init = t.state(&id).unwrap()["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) of the create process this test started.
    unsafe { libc::kill(pending.pid(), libc::SIGKILL) };
    let _ = pending.wait();
    t.hull(&["delete", "--force", &id]).ok();
    assert!(
        !std::path::Path::new(&format!("/proc/{init}")).exists()
            || fs::read_to_string(format!("/proc/{init}/stat")).is_ok_and(|s| s.contains(") Z")),
        "the init outlived delete --force"
    );
    t.assert_nothing_left(&id);
}

#[test]
fn missing_cwd_is_created_under_a_read_only_root() {
    let mut t = Test::new("rev_ro_cwd");
    t.config["root"]["readonly"] = json!(true);
    t.config["process"]["cwd"] = json!("/work/dir");
    t.args(&["pwd"]);
    assert_eq!(t.output(), "/work/dir\n");
}

#[test]
fn kill_term_ends_a_created_container_with_its_own_pid_namespace() {
    let mut t = Test::new("rev_kill_created");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    t.hull(&["kill", &id, "TERM"]).ok();
    assert_eq!(
        t.wait_status(&id, "stopped", Duration::from_secs(5)),
        "stopped"
    );
}

#[test]
fn a_connection_to_the_start_socket_without_start_does_not_kill_the_container() {
    let mut t = Test::new("rev_gate_probe");
    t.args(&["echo", "started"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    let gate = std::path::Path::new(&t.root_str())
        .join(&id)
        .join("start.sock");
    drop(UnixStream::connect(&gate).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(t.status(&id), "created");
    t.hull(&["start", &id]).ok();
    assert_eq!(
        t.wait_status(&id, "stopped", Duration::from_secs(5)),
        "stopped"
    );
}

#[test]
fn a_container_released_by_a_start_that_died_reads_as_running() {
    let mut t = Test::new("rev_start_died");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    // Do what `start` does up to the exec, then "die" before recording it.
    let gate = std::path::Path::new(&t.root_str())
        .join(&id)
        .join("start.sock");
    let mut conn = UnixStream::connect(&gate).unwrap();
    std::io::Write::write_all(&mut conn, b"s").unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut rest).unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert_eq!(t.status(&id), "running");
    t.hull(&["start", &id]).fails();
}

/// The config without its /proc mount.
fn without_proc(t: &mut Test) {
    t.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/proc");
    t.config["linux"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "maskedPaths" && k != "readonlyPaths");
}

#[test]
fn a_container_without_proc_runs() {
    let mut t = Test::new("rev_no_proc");
    without_proc(&mut t);
    t.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [10] });
    t.args(&["id"]);
    assert_eq!(
        t.output(),
        "uid=1000(user) gid=1000(user) groups=10(wheel)\n"
    );
}

#[test]
fn oom_score_adj_without_proc_fails_with_one_clean_error() {
    let mut t = Test::new("rev_no_proc_oom");
    without_proc(&mut t);
    t.config["process"]["oomScoreAdj"] = json!(100);
    t.args(&["true"]);
    let id = t.id.clone();
    let out = t.run_with(&id, &[]);
    out.fails();
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    t.assert_nothing_left(&id);
}
