//! The container lifecycle through the CLI: create, start, state, kill, delete, run, list.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::util::{is_gone, split_table, wait_until, Test, STOP_TIMEOUT};

#[test]
fn create_start_kill_delete_walk_through_the_states() {
    let mut t = Test::new("lifecycle_states");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();

    let (out, pid) = t.create(&id);
    out.ok();
    let pid_text = fs::read_to_string(t.dir.join(format!("{id}.pid"))).unwrap();
    assert!(
        !pid_text.ends_with('\n'),
        "pid file must not end in a newline: {pid_text:?}"
    );
    let pid = pid.expect("pid file holds a pid");

    let state = t.state(&id).expect("state after create");
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["pid"], pid, "{state}");
    assert_eq!(state["id"], id.as_str(), "{state}");
    assert_eq!(state["bundle"], t.bundle_str().as_str(), "{state}");
    assert!(state["ociVersion"].is_string(), "{state}");

    t.hull(&["start", &id]).ok();
    assert_eq!(t.status(&id), "running");

    t.hull(&["kill", &id, "KILL"]).ok();
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");

    t.hull(&["delete", &id]).ok();
    t.hull(&["state", &id])
        .fails()
        .stderr_has("container does not exist");
    assert!(!t.root.join(&id).exists(), "state dir left after delete");
}

#[test]
fn run_exits_with_the_process_status() {
    let mut t = Test::new("run_status");
    t.args(&["true"]);
    assert_eq!(t.run().code, 0);

    t.sh("exit 3");
    let out = t.run_with(&t.new_id(), &[]);
    assert_eq!(out.code, 3, "{out}");
}

#[test]
fn run_exits_128_plus_signal_for_a_killed_process() {
    let mut t = Test::new("run_signal");
    // Outside a pid namespace the shell is not init, so SIGKILL to itself is delivered.
    t.remove_namespace("pid").sh("kill -9 $$");
    let out = t.run();
    assert_eq!(out.code, 137, "{out}");
}

#[test]
fn run_prints_the_process_output() {
    let mut t = Test::new("run_output");
    t.sh("echo hello; echo oops >&2");
    let out = t.run();
    out.ok();
    assert_eq!(out.stdout, "hello\n");
    assert_eq!(out.stderr, "oops\n");
}

#[test]
fn run_detached_returns_while_the_container_runs() {
    let mut t = Test::new("run_detach");
    t.args(&["sleep", "100"]);
    let out = t.run_with(&t.id, &["-d"]);
    out.ok();
    let state = t.state(&t.id).expect("state of detached container");
    assert_eq!(state["status"], "running", "{state}");
    t.track_pid(state["pid"].as_i64().unwrap() as i32);
    t.hull(&["delete", "--force", &t.id]).ok();
}

#[test]
fn list_shows_the_container_as_table_and_json() {
    let mut t = Test::new("list");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create(&id).0.ok();

    let table = t.hull(&["list"]);
    table.ok();
    let (header, mut lines) = split_table(&table.stdout);
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let row = lines
        .find(|l| l.split_whitespace().next() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("no row for {id}:\n{table}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[2], "created", "{row}");
    assert_eq!(cols[3], t.bundle_str(), "{row}");

    let json = t.hull(&["list", "--format", "json"]);
    json.ok();
    let v: Value = serde_json::from_str(&json.stdout).expect("list json");
    let entry = v
        .as_array()
        .expect("list json is an array")
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} missing from {v}"));
    assert_eq!(entry["status"], "created");
    assert!(entry["pid"].as_i64().unwrap() > 0);

    let quiet = t.hull(&["list", "-q"]);
    quiet.ok();
    assert_eq!(quiet.stdout.trim(), id);
}

#[test]
fn delete_of_a_running_container_fails() {
    let mut t = Test::new("delete_running");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    t.hull(&["start", &id]).ok();
    t.hull(&["delete", &id]).fails().stderr_has(&format!(
        "cannot delete container {id} that is not stopped: running"
    ));
    assert_eq!(t.status(&id), "running");
}

#[test]
fn plain_delete_of_a_created_container_removes_it() {
    // runc's rule, which containerd's shim relies on: it deletes a task that never started
    // without --force. The init goes with it, and its poststop hooks run.
    let mut t = Test::new("delete_created");
    let marker = t.path("poststop-ran");
    t.config["hooks"] = serde_json::json!({
        "poststop": [{ "path": "/usr/bin/touch", "args": ["touch", marker] }]
    });
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    let (out, pid) = t.create(&id);
    out.ok();
    t.hull(&["delete", &id]).ok();
    assert!(t.state(&id).is_none(), "state left after delete");
    let pid = pid.expect("pid file");
    assert!(
        crate::util::wait_until(std::time::Duration::from_secs(3), || crate::util::is_gone(
            pid
        )),
        "the init outlived delete"
    );
    assert!(marker.exists(), "poststop did not run");
    t.assert_nothing_left(&id);
}

#[test]
fn delete_force_removes_a_running_container() {
    let mut t = Test::new("delete_force");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    let (out, pid) = t.create(&id);
    out.ok();
    let pid = pid.unwrap();
    t.hull(&["start", &id]).ok();
    t.hull(&["delete", "--force", &id]).ok();
    t.hull(&["state", &id])
        .fails()
        .stderr_has("container does not exist");
    assert!(
        wait_until(STOP_TIMEOUT, || is_gone(pid)),
        "process {pid} still alive after delete -f"
    );
}

#[test]
fn delete_force_of_a_missing_container_succeeds() {
    let t = Test::new("delete_force_missing");
    t.hull(&["delete", "--force", "no-such-container"]).ok();
}

#[test]
fn delete_of_a_missing_container_fails() {
    let t = Test::new("delete_missing");
    t.hull(&["delete", "no-such-container"])
        .fails()
        .stderr_has("container does not exist");
}

#[test]
fn create_with_a_duplicate_id_fails() {
    let mut t = Test::new("duplicate_id");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    let (out, _) = t.create(&id);
    out.fails()
        .stderr_has("container with given ID already exists");
    // The first container is untouched.
    assert_eq!(t.status(&id), "created");
}

#[test]
fn create_with_an_invalid_id_fails() {
    let t = Test::new("invalid_id");
    t.write_config();
    for bad in ["a/b", "..", "a b"] {
        let out = t.hull(&["create", "--bundle", &t.bundle_str(), bad]);
        out.fails();
        assert!(!out.stderr.is_empty(), "{out}");
    }
    assert!(!t.root.join("a").exists());
    assert!(fs::read_dir(&t.root).map(|d| d.count()).unwrap_or(0) == 0);
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    let mut t = Test::new("kill_signals");
    t.args(&["sleep", "100"]);
    for sig in ["SIGKILL", "KILL", "9"] {
        let id = t.new_id();
        t.create(&id).0.ok();
        t.hull(&["start", &id]).ok();
        t.hull(&["kill", &id, sig]).ok();
        assert_eq!(
            t.wait_status(&id, "stopped", STOP_TIMEOUT),
            "stopped",
            "kill {sig}"
        );
        t.hull(&["delete", &id]).ok();
    }
}

#[test]
fn kill_defaults_to_sigterm() {
    let mut t = Test::new("kill_default");
    // pid 1 ignores SIGTERM without a handler: install one that exits.
    t.sh("trap 'exit 0' TERM; while true; do sleep 0.1; done");
    let id = t.id.clone();
    t.create(&id).0.ok();
    t.hull(&["start", &id]).ok();
    // Give the shell time to install its trap.
    std::thread::sleep(Duration::from_millis(300));
    t.hull(&["kill", &id]).ok();
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
}

#[test]
fn kill_of_a_stopped_container_fails() {
    let mut t = Test::new("kill_stopped");
    t.args(&["true"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    t.hull(&["start", &id]).ok();
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    t.hull(&["kill", &id, "KILL"])
        .fails()
        .stderr_has("container not running");
}

#[test]
fn start_of_a_running_container_fails() {
    let mut t = Test::new("start_twice");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    t.hull(&["start", &id]).ok();
    let out = t.hull(&["start", &id]);
    out.fails();
    assert_eq!(t.status(&id), "running");
}

#[test]
fn state_of_a_stopped_container_has_pid_zero() {
    let mut t = Test::new("state_stopped");
    t.args(&["true"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    t.hull(&["start", &id]).ok();
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    let state = t.state(&id).unwrap();
    assert_eq!(state["pid"], 0, "{state}");
}

#[test]
fn create_and_start_show_the_output_of_the_process() {
    let mut t = Test::new("create_start_output");
    t.sh("echo started");
    let id = t.id.clone();
    let (create, _) = t.create(&id);
    create.ok();
    assert_eq!(create.stdout, "", "nothing runs before start");
    t.hull(&["start", &id]).ok();
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    assert_eq!(create.stdout_now(), "started\n");
}

#[test]
fn relative_pid_file_is_relative_to_the_callers_cwd() {
    let mut t = Test::new("pid_file_relative");
    t.args(&["sleep", "100"]);
    t.write_config();
    let id = t.id.clone();
    let c = crate::util::Call {
        cwd: Some(t.dir.clone()),
        ..crate::util::Call::default()
    };
    t.call(
        &[
            "create",
            "--bundle",
            &t.bundle_str(),
            "--pid-file",
            "rel.pid",
            &id,
        ],
        &c,
    )
    .ok();
    let pid = fs::read_to_string(t.dir.join("rel.pid")).expect("pid file in the caller's cwd");
    t.track_pid(pid.parse().unwrap());
    assert_eq!(t.state(&id).unwrap()["pid"].to_string(), pid);
}
