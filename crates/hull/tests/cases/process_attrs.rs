//! Process attributes the init sets just before exec: personality, scheduler, I/O priority,
//! CPU affinity, the session keyring, and socket-activation fds (`LISTEN_FDS`).

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::util::{runtime, skip_on_runc, status_field, write, Call, Test};

#[test]
fn linux32_personality_makes_uname_report_i686() {
    // Known to fail on runc 1.1.5: linux.personality came in runc 1.2.
    if skip_on_runc("runc 1.1.5 ignores linux.personality") {
        return;
    }
    let mut t = Test::new("attrs_personality");
    t.config["linux"]["personality"] = json!({ "domain": "LINUX32" });
    t.args(&["uname", "-m"]);
    assert_eq!(t.output(), "i686\n");
    // An exec'd process gets it too, as runc's do.
    t.args(&["sleep", "100"]);
    t.create_and_start(&t.id);
    let out = t.hull(&["exec", &t.id, "uname", "-m"]);
    assert_eq!(out.ok().stdout, "i686\n");
}

#[test]
fn sched_deadline_in_a_restricted_cpuset_is_refused_in_runcs_words() {
    // The kernel refuses SCHED_DEADLINE where the cpuset does not span the root domain.
    if skip_on_runc("runc 1.1.5 ignores process.scheduler") {
        return;
    }
    let mut t = Test::new("attrs_sched_dl_cpus");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    t.config["linux"]["resources"]["cpu"] = json!({ "cpus": "0" });
    t.config["process"]["scheduler"] = json!({
        "policy": "SCHED_DEADLINE", "nice": 19, "runtime": 42000,
        "deadline": 1000000, "period": 1000000
    });
    t.args(&["true"]);
    let (out, _) = t.create_fails();
    out.stderr_has("process scheduler can't be used together with AllowedCPUs")
        .one_line();
}

#[test]
fn default_personality_keeps_the_hosts_machine() {
    let mut t = Test::new("attrs_no_personality");
    t.args(&["uname", "-m"]);
    assert_eq!(t.output(), format!("{}\n", std::env::consts::ARCH));
}

/// `key : value` lines of /proc/PID/sched.
fn sched_field(sched: &str, key: &str) -> Option<i64> {
    sched.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().parse().ok())?
    })
}

#[test]
fn scheduler_policy_and_nice_come_from_the_config() {
    // Known to fail on runc 1.1.5: process.scheduler came in runc 1.2.
    if skip_on_runc("runc 1.1.5 ignores process.scheduler") {
        return;
    }
    let mut t = Test::new("attrs_sched_batch");
    t.config["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 5 });
    t.args(&["cat", "/proc/self/sched"]);
    let sched = t.output();
    // SCHED_BATCH is policy 3; nice 5 is static priority 125.
    assert_eq!(sched_field(&sched, "policy"), Some(3), "{sched}");
    assert_eq!(sched_field(&sched, "prio"), Some(125), "{sched}");
}

#[test]
fn sched_idle_policy_comes_from_the_config() {
    if skip_on_runc("runc 1.1.5 ignores process.scheduler") {
        return;
    }
    let mut t = Test::new("attrs_sched_idle");
    t.config["process"]["scheduler"] = json!({ "policy": "SCHED_IDLE" });
    t.args(&["cat", "/proc/self/sched"]);
    let sched = t.output();
    assert_eq!(sched_field(&sched, "policy"), Some(5), "{sched}");
}

#[test]
fn without_a_scheduler_the_policy_is_sched_other() {
    let mut t = Test::new("attrs_sched_default");
    t.args(&["cat", "/proc/self/sched"]);
    let sched = t.output();
    assert_eq!(sched_field(&sched, "policy"), Some(0), "{sched}");
    assert_eq!(sched_field(&sched, "prio"), Some(120), "{sched}");
}

#[test]
fn io_priority_comes_from_the_config() {
    // Known to fail on runc 1.1.5: process.ioPriority came in runc 1.2.
    if skip_on_runc("runc 1.1.5 ignores process.ioPriority") {
        return;
    }
    let mut t = Test::new("attrs_ioprio");
    t.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 5 });
    // busybox's ionice prints `CLASS: prio N`.
    t.sh("ionice -p $$");
    assert_eq!(t.output(), "best-effort: prio 5\n");
}

#[test]
fn exec_cpu_affinity_final_is_the_processs_cpu_set() {
    // Known to fail on runc 1.1.5: process.execCPUAffinity came in runc 1.2.
    if skip_on_runc("runc 1.1.5 ignores process.execCPUAffinity") {
        return;
    }
    hull_testing::skip_unless!(
        std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2,
        "two-cpus",
        "pins the process to the second CPU"
    );
    let mut t = Test::new("attrs_affinity");
    t.config["process"]["execCPUAffinity"] = json!({ "initial": "0", "final": "1" });
    t.args(&["cat", "/proc/self/status"]);
    let status = t.output();
    assert_eq!(
        status_field(&status, "Cpus_allowed_list"),
        Some("1"),
        "{status}"
    );

    // `final` alone is applied too.
    t.config["process"]["execCPUAffinity"] = json!({ "final": "0" });
    let out = t.run_with(&t.new_id(), &[]);
    out.ok();
    assert_eq!(
        status_field(&out.stdout, "Cpus_allowed_list"),
        Some("0"),
        "{out}"
    );
}

#[test]
fn invalid_cpu_affinity_fails_create_and_leaves_nothing() {
    if skip_on_runc("runc 1.1.5 ignores process.execCPUAffinity") {
        return;
    }
    let mut t = Test::new("attrs_affinity_bad");
    t.config["process"]["execCPUAffinity"] = json!({ "final": "nonsense" });
    t.args(&["true"]);
    t.create_fails().0.stderr_has("nonsense");
}

/// `/proc/keys` unmasked, so that the process can list its keyrings.
fn keyring_test(name: &str) -> Test {
    let mut t = Test::new(name);
    t.config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p != "/proc/keys");
    t.args(&["cat", "/proc/keys"]);
    t
}

#[test]
fn new_session_keyring_is_named_after_the_container() {
    let t = keyring_test("attrs_keyring");
    let keys = t.output();
    let want = format!("_ses.{}", t.id);
    assert!(
        keys.lines()
            .any(|l| l.contains(" keyring ") && l.contains(&format!(" {want}: "))),
        "no keyring {want} in /proc/keys:\n{keys}"
    );
}

#[test]
fn no_new_keyring_keeps_the_callers_session_keyring() {
    let t = keyring_test("attrs_no_keyring");
    let out = t.run_with(&t.id, &["--no-new-keyring"]);
    out.ok();
    let unwanted = format!("_ses.{}", t.id);
    assert!(
        !out.stdout.contains(&unwanted),
        "{unwanted} created despite --no-new-keyring:\n{}",
        out.stdout
    );
}

#[test]
fn listen_fds_are_passed_with_listen_pid_of_the_process() {
    let mut t = Test::new("attrs_listen_fds");
    let src = t.path("socket-standin");
    write(&src, "activated\n");
    t.sh("env | grep ^LISTEN_ | sort; cat <&3; ls /proc/self/fd | tr '\\n' ' '");
    // LISTEN_PID must name the runtime's own pid, so a shell sets it and execs the runtime.
    let out = run_with_listen_env(&t, "$$", &src);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["LISTEN_FDS=1", "LISTEN_PID=1", "activated", "0 1 2 3 4 "],
        "{out}"
    );
}

#[test]
fn listen_fds_for_another_pid_are_ignored() {
    let mut t = Test::new("attrs_listen_fds_other");
    let src = t.path("socket-standin");
    write(&src, "activated\n");
    t.sh("env | grep ^LISTEN_; ls /proc/self/fd | tr '\\n' ' '");
    // A LISTEN_PID that is not the runtime's: the fds are not for it.
    let out = run_with_listen_env(&t, "1", &src);
    out.ok();
    // `grep` finds nothing, and fd 3 is closed (the 3 listed is ls's own directory fd).
    assert_eq!(out.stdout, "0 1 2 3 ", "{out}");
}

/// `run` of the test's bundle through a shell that sets LISTEN_PID (to `listen_pid`, a shell
/// word) and LISTEN_FDS=1 and passes `fd3` as fd 3, as systemd socket activation does.
fn run_with_listen_env(t: &Test, listen_pid: &str, fd3: &Path) -> crate::util::Out {
    t.write_config();
    let script = format!(
        "export LISTEN_PID={listen_pid} LISTEN_FDS=1; exec {} --root {} run --bundle {} {} 3<{}",
        runtime().display(),
        t.root_str(),
        t.bundle_str(),
        t.id,
        fd3.display()
    );
    let c = Call {
        bin: Some(PathBuf::from("/bin/sh")),
        root: Some(PathBuf::new()),
        ..Call::default()
    };
    t.call(&["-c", &script], &c)
}

/// SCHED_FIFO with a priority and the runtime-spec's flag names (`SCHED_FLAG_RESET_ON_FORK`,
/// which the pinned oci-spec spells otherwise), as runc 1.2+ takes them.
#[test]
fn sched_fifo_with_the_spec_flag_names() {
    if skip_on_runc("runc 1.1.5 ignores process.scheduler") {
        return;
    }
    let mut t = Test::new("attrs_sched_fifo");
    t.config["process"]["scheduler"] = json!({
        "policy": "SCHED_FIFO", "priority": 1, "flags": ["SCHED_FLAG_RESET_ON_FORK"]
    });
    // A v1 cpu cgroup with real-time group scheduling (this host's) gives a new cgroup no
    // real-time runtime: the container must ask for some, as with runc.
    t.config["linux"]["cgroupsPath"] = t.id.clone().into();
    t.config["linux"]["resources"]["cpu"] = json!({ "realtimeRuntime": 10000 });
    t.args(&["cat", "/proc/self/sched"]);
    let sched = t.output();
    // SCHED_FIFO is policy 1; reset-on-fork does not show in the policy number.
    assert_eq!(sched_field(&sched, "policy"), Some(1), "{sched}");
    // The flag: a child of the container's process is back to SCHED_OTHER.
    t.args(&["sh", "-c", "cat /proc/self/sched"]);
    let child = t.output();
    assert_eq!(sched_field(&child, "policy"), Some(1), "sh itself: {child}");
    t.args(&["sh", "-c", "cat /proc/self/sched; true"]);
    let forked = t.output();
    assert_eq!(sched_field(&forked, "policy"), Some(0), "a fork: {forked}");
}
