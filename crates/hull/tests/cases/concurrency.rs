//! Several processes and several runtime calls at once: `kill --all`, racing `start`s, and
//! many containers created and deleted in parallel under one `--root`.

use std::fs;
use std::time::{Duration, Instant};

use crate::util::{host_ns, ns_link, pids_in_ns, wait_until, Test};

/// Polls until the mount namespace `mnt` (a container's) holds at least `n` live processes;
/// the processes at the end.
fn wait_members(mnt: &str, n: usize) -> Vec<i32> {
    let mut found = Vec::new();
    wait_until(Duration::from_secs(5), || {
        found = pids_in_ns("mnt", mnt);
        found.len() >= n
    });
    found
}

/// Polls until the mount namespace `mnt` holds at most `n` live processes; those left.
fn wait_at_most(mnt: &str, n: usize, timeout: Duration) -> Vec<i32> {
    let mut found = Vec::new();
    wait_until(timeout, || {
        found = pids_in_ns("mnt", mnt);
        found.len() <= n
    });
    found
}

/// Creates and starts the test's container; its init pid and mount namespace, once it has
/// `n` processes (all recorded for the guard to kill).
fn start_with_processes(t: &Test, n: usize) -> (i32, String) {
    let id = t.id.clone();
    let (out, pid) = t.create(&id);
    out.ok();
    let pid = pid.expect("pid file");
    let mnt = ns_link(pid, "mnt");
    assert_ne!(mnt, host_ns("mnt"));
    t.hull(&["start", &id]).ok();
    let found = wait_members(&mnt, n);
    for p in &found {
        t.track_pid(*p);
    }
    assert!(found.len() >= n, "expected {n} processes, found {found:?}");
    (pid, mnt)
}

#[test]
fn kill_all_kills_every_process_of_a_container_in_the_hosts_pid_namespace() {
    let mut t = Test::new("conc_kill_all_host_pidns");
    // In the host's pid namespace, killing the init alone would leave the sleeps running:
    // only the container's cgroup tells the runtime which processes are its.
    t.remove_namespace("pid");
    t.sh("sleep 100 & sleep 100 & sleep 100 & wait");
    let (_, mnt) = start_with_processes(&t, 4);
    let id = t.id.clone();

    t.hull(&["kill", "--all", &id, "KILL"]).ok();
    assert_eq!(
        t.wait_status(&id, "stopped", Duration::from_secs(5)),
        "stopped"
    );
    let left = wait_at_most(&mnt, 0, Duration::from_secs(3));
    assert!(left.is_empty(), "processes survived kill --all: {left:?}");
    t.hull(&["delete", &id]).ok();
}

#[test]
fn kill_of_a_container_in_the_hosts_pid_namespace_kills_every_process() {
    // runc 1.2+: a plain `kill ID KILL` of a container without its own pid namespace goes to
    // all its processes (the kernel would leave them running), even once the init is gone.
    if crate::util::skip_on_runc("runc 1.1.5 kills only the init") {
        return;
    }
    for init_gone in [false, true] {
        let mut t = Test::new("conc_kill_host_pidns");
        t.remove_namespace("pid");
        t.sh("sleep 100 & sleep 100 & sleep 100 & wait");
        let (pid, mnt) = start_with_processes(&t, 4);
        let id = t.id.clone();
        if init_gone {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
                .unwrap();
            assert_eq!(
                t.wait_status(&id, "stopped", Duration::from_secs(5)),
                "stopped"
            );
            assert_eq!(wait_at_most(&mnt, 3, Duration::from_secs(3)).len(), 3);
        }
        t.hull(&["kill", &id, "KILL"]).ok();
        let left = wait_at_most(&mnt, 0, Duration::from_secs(3));
        assert!(
            left.is_empty(),
            "init gone {init_gone}: survived kill KILL: {left:?}"
        );
        assert_eq!(
            t.wait_status(&id, "stopped", Duration::from_secs(5)),
            "stopped"
        );
        t.hull(&["delete", &id]).ok();
    }
}

#[test]
fn kill_all_signals_the_processes_besides_an_init_that_ignores_the_signal() {
    let mut t = Test::new("conc_kill_all_pidns");
    // The init of a pid namespace gets no signal it has no handler for, so TERM leaves the
    // init (a sleep) alone and kills only its children, if they are signalled at all.
    t.sh("sleep 100 & sleep 100 & exec sleep 1000");
    let (pid, mnt) = start_with_processes(&t, 3);
    let id = t.id.clone();

    t.hull(&["kill", "--all", &id, "TERM"]).ok();
    let left = wait_at_most(&mnt, 1, Duration::from_secs(3));
    assert_eq!(left, [pid], "kill --all did not reach the children");
    assert_eq!(t.status(&id), "running");
    t.hull(&["delete", "--force", &id]).ok();
    let left = wait_at_most(&mnt, 0, Duration::from_secs(3));
    assert!(
        left.is_empty(),
        "processes survived delete --force: {left:?}"
    );
}

#[test]
fn kill_without_all_signals_only_the_init() {
    let mut t = Test::new("conc_kill_init_pidns");
    t.sh("sleep 100 & sleep 100 & exec sleep 1000");
    let (_, mnt) = start_with_processes(&t, 3);
    let id = t.id.clone();

    t.hull(&["kill", &id, "TERM"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pids_in_ns("mnt", &mnt).len(), 3, "a child was signalled");
    assert_eq!(t.status(&id), "running");
    t.hull(&["delete", "--force", &id]).ok();
}

#[test]
fn delete_kills_what_the_init_left_in_the_hosts_pid_namespace() {
    let mut t = Test::new("conc_delete_leftovers");
    t.remove_namespace("pid");
    t.sh("sleep 100 & sleep 100 & wait");
    let (init, mnt) = start_with_processes(&t, 3);
    let id = t.id.clone();

    // The init alone dies (`hull kill ID KILL` would end them all: runc 1.2+'s rule).
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), nix::sys::signal::SIGKILL).unwrap();
    assert_eq!(
        t.wait_status(&id, "stopped", Duration::from_secs(5)),
        "stopped"
    );
    std::thread::sleep(Duration::from_millis(200));
    let left = pids_in_ns("mnt", &mnt);
    assert_eq!(left.len(), 2, "only the init should have died: {left:?}");

    // Without a pid namespace of its own, delete kills what is left in the cgroup.
    t.hull(&["delete", &id]).ok();
    let left = wait_at_most(&mnt, 0, Duration::from_secs(3));
    assert!(left.is_empty(), "processes survived delete: {left:?}");
}

#[test]
fn two_simultaneous_starts_of_one_container_start_it_once() {
    let mut t = Test::new("conc_double_start");
    let shared = t.mkdir("shared");
    let marker = shared.join("started");
    t.sh(&format!(
        "echo once >> {}; sleep 100",
        marker.to_string_lossy()
    ));
    t.mount(serde_json::json!({
        "destination": shared, "type": "bind", "source": shared, "options": ["rbind"]
    }));
    let id = t.id.clone();
    t.create(&id).0.ok();

    let a = t.spawn_call(&["start", &id]);
    let b = t.spawn_call(&["start", &id]);
    let (a, b) = (a.wait(), b.wait());
    let ok = [&a, &b].iter().filter(|o| o.success()).count();
    assert_eq!(ok, 1, "exactly one start must succeed:\n{a}\n{b}");
    let failed = if a.success() { &b } else { &a };
    failed.fails();
    assert!(!failed.stderr.is_empty(), "{failed}");

    assert_eq!(t.status(&id), "running");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fs::read_to_string(&marker).unwrap_or_default(), "once\n");
    t.hull(&["delete", "--force", &id]).ok();
}

#[test]
fn ten_containers_created_and_deleted_at_once_all_work_and_leave_nothing() {
    let mut t = Test::new("conc_ten");
    t.args(&["sleep", "100"]);
    t.write_config();
    let bundle = t.bundle_str();
    let ids: Vec<String> = (0..10).map(|_| t.new_id()).collect();
    let pid_files: Vec<String> = ids
        .iter()
        .map(|id| t.path(&format!("{id}.pid")).to_string_lossy().into_owned())
        .collect();

    let creates: Vec<_> = ids
        .iter()
        .zip(&pid_files)
        .map(|(id, pf)| t.spawn_call(&["create", "--bundle", &bundle, "--pid-file", pf, id]))
        .collect();
    let outs: Vec<_> = creates.into_iter().map(|c| c.wait()).collect();
    for pf in &pid_files {
        if let Some(pid) = fs::read_to_string(pf).ok().and_then(|s| s.parse().ok()) {
            t.track_pid(pid);
        }
    }
    for out in &outs {
        out.ok();
    }
    for id in &ids {
        assert_eq!(t.status(id), "created", "{id}");
    }

    let list = t.hull(&["list", "-q"]);
    list.ok();
    let mut listed: Vec<&str> = list.stdout.lines().collect();
    listed.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(listed, want);

    let deletes: Vec<_> = ids
        .iter()
        .map(|id| t.spawn_call(&["delete", "--force", id]))
        .collect();
    for d in deletes {
        d.wait().ok();
    }
    for id in &ids {
        t.assert_nothing_left(id);
    }
    let left: Vec<_> = fs::read_dir(&t.root)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in --root: {left:?}");
}
