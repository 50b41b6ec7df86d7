//! `linux.seccomp`: the filter is on in the container's process and in exec'd ones, denied
//! syscalls fail as the profile says, notify rules reach an agent at `listenerPath`, and a bad
//! profile fails create with one line naming the field and leaves nothing behind.

use std::os::unix::net::UnixListener;
use std::path::Path;

use serde_json::{json, Value};

use crate::util::{recv_fds, skip_on_runc, Test};

/// A profile that allows everything but `names`, which fail with EPERM.
fn deny(names: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    })
}

fn docker_default() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seccomp-docker-default.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Execs a shell into the running container `id` of `t` (its profile denies mkdir): the
/// exec'd process has a filter (mode 2) and its mkdir fails.
#[track_caller]
fn assert_exec_denies_mkdir(t: &Test, id: &str) {
    let out = t.hull(&[
        "exec",
        id,
        "sh",
        "-c",
        "grep '^Seccomp:' /proc/self/status; mkdir /tmp/e 2>&1; echo rc=$?",
    ]);
    out.ok();
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    assert!(out.stdout.contains("rc=1"), "mkdir allowed in exec:\n{out}");
}

#[test]
fn denied_syscalls_fail_with_the_profiles_errno_and_the_rest_work() {
    let mut t = Test::new("sc_errno");
    t.config["linux"]["seccomp"] = deny(&["mkdir", "mkdirat"]);
    t.sh("grep -E '^Seccomp:' /proc/self/status; mkdir /tmp/d 2>&1; echo rc=$?; touch /tmp/f && echo touched");
    let out = t.output();
    assert!(out.contains("Seccomp:\t2"), "no filter in mode 2:\n{out}");
    assert!(
        out.contains("Operation not permitted"),
        "mkdir not denied:\n{out}"
    );
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("touched"), "an allowed syscall failed:\n{out}");
}

#[test]
fn a_profile_denying_getcwd_still_starts_without_no_new_privileges() {
    // The validation suite's linux_seccomp: the runtime's own cwd check must come before the
    // filter, and without no_new_privs or CAP_SYS_ADMIN the filter still goes on.
    if skip_on_runc("runc 1.1.5 calls getcwd after loading the filter") {
        return;
    }
    for nnp in [false, true] {
        let mut t = Test::new("sc_getcwd");
        t.config["process"]["noNewPrivileges"] = json!(nnp);
        t.config["linux"]["seccomp"] = deny(&["getcwd"]);
        t.sh("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; pwd 2>&1 || echo pwd-failed");
        let out = t.output();
        assert!(out.contains("Seccomp:\t2"), "nnp={nnp}:\n{out}");
        assert!(
            out.contains(&format!("NoNewPrivs:\t{}", u8::from(nnp))),
            "nnp={nnp}:\n{out}"
        );
        assert!(
            out.contains("pwd-failed") || !out.contains("/\n"),
            "getcwd allowed (nnp={nnp}):\n{out}"
        );
    }
}

#[test]
fn kill_process_ends_the_container_with_sigsys() {
    let mut t = Test::new("sc_kill");
    t.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_KILL_PROCESS" }]
    });
    t.args(&["mkdir", "/tmp/x"]);
    let out = t.run();
    assert_eq!(out.code, 128 + libc::SIGSYS, "{out}");
}

#[test]
fn argument_rules_match_only_their_values() {
    // kill(2) denied only for signal 0 (the existence probe): `kill -0` fails, SIGCONT works.
    let mut t = Test::new("sc_args");
    t.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
              "args": [{ "index": 1, "value": 0, "op": "SCMP_CMP_EQ" }] }
        ]
    });
    t.sh("kill -0 $$ 2>&1; echo probe=$?; kill -CONT $$ && echo cont-ok");
    let out = t.output();
    assert!(out.contains("probe=1"), "kill(pid, 0) not denied:\n{out}");
    assert!(out.contains("ermission denied"), "not EACCES:\n{out}");
    assert!(out.contains("cont-ok"), "kill(pid, SIGCONT) denied:\n{out}");
}

#[test]
fn docker_default_profile_runs_a_shell_and_blocks_what_docker_blocks() {
    let mut t = Test::new("sc_docker");
    t.config["linux"]["seccomp"] = docker_default();
    // unshare(CLONE_NEWUSER) needs CAP_SYS_ADMIN in docker's profile; the container has not.
    t.sh("echo hello; unshare -U true 2>&1; echo unshare=$?");
    let out = t.output();
    assert!(out.contains("hello"), "{out}");
    assert!(out.contains("unshare=1"), "unshare allowed:\n{out}");
    // Again, now from the cache.
    let id = t.new_id();
    let again = t.run_with(&id, &[]);
    again.ok();
    assert_eq!(again.stdout, out, "a cached filter behaves differently");
}

#[test]
fn exec_gets_the_containers_filter() {
    let mut t = Test::new("sc_exec");
    t.config["linux"]["seccomp"] = deny(&["mkdir", "mkdirat"]);
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create_and_start(&id);
    assert_exec_denies_mkdir(&t, &id);
}

#[test]
fn bad_profiles_fail_create_naming_the_field_and_leave_nothing() {
    let cases = [
        (
            json!({ "defaultAction": "SCMP_ACT_BOGUS" }),
            "defaultAction",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_NOPE" }] }),
            "action",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"] }),
            "architectures",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"] }),
            "flags",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] }),
            "listenerPath",
        ),
    ];
    for (profile, field) in cases {
        let mut t = Test::new("sc_bad");
        t.config["linux"]["seccomp"] = profile.clone();
        t.args(&["true"]);
        let id = t.id.clone();
        let (out, _) = t.create(&id);
        assert_ne!(out.code, 0, "{profile} accepted:\n{out}");
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "not one line:\n{out}");
        if !crate::util::is_runc() {
            assert!(
                lines[0].contains(field),
                "{field} not named for {profile}:\n{out}"
            );
        }
        t.assert_nothing_left(&id);
    }
}

#[test]
fn notify_rules_reach_the_agent_with_the_state_and_its_answers_count() {
    use std::os::fd::AsRawFd;
    let mut t = Test::new("sc_notify");
    let sock = t.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    t.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "from-the-test",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
    });
    // The agent answers "success" without making the directory.
    t.sh("mkdir /tmp/notified && echo made; test -d /tmp/notified && echo exists || echo absent");
    let id = t.id.clone();
    let agent = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let (json, mut fds) = recv_fds(&stream);
        assert_eq!(fds.len(), 1, "one listener fd");
        let fd = fds.remove(0);
        let state: Value = serde_json::from_str(&json).unwrap();
        let mut answered = 0;
        while answered < 1 {
            let req = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
            libseccomp::ScmpNotifResp::new_val(req.id, 0, libseccomp::ScmpNotifRespFlags::empty())
                .respond(fd.as_raw_fd())
                .unwrap();
            answered += 1;
        }
        state
    });
    let out = t.run();
    let state = agent.join().expect("agent");
    out.ok();
    assert!(
        out.stdout.contains("made") && out.stdout.contains("absent"),
        "{out}"
    );
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "from-the-test", "{state}");
    assert_eq!(state["state"]["id"], id.as_str(), "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    assert!(state["ociVersion"].is_string(), "{state}");
}

/// Notify rules on the memory syscalls every allocation may make: the init must hand the
/// listener over without allocating, or it waits forever for an agent that has no listener.
#[test]
fn notify_rules_on_allocation_syscalls_do_not_hold_the_init() {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut t = Test::new("sc_notify_mem");
    let sock = t.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let memory = ["brk", "mmap", "munmap", "mprotect", "mremap", "madvise"];
    t.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [
            { "names": memory, "action": "SCMP_ACT_NOTIFY" },
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }
        ]
    });
    t.sh("mkdir /tmp/notified && echo made; test -d /tmp/notified && echo exists || echo absent");
    let done = Arc::new(AtomicBool::new(false));
    let agent_done = done.clone();
    let agent = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if agent_done.load(Ordering::Relaxed) => return (0, 0),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        };
        stream.set_nonblocking(false).unwrap();
        let (_, mut fds) = recv_fds(&stream);
        let fd = fds.remove(0);
        let (mut memory_calls, mut mkdirs) = (0, 0);
        loop {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut p, 1, 100) };
            if n == 0 {
                if agent_done.load(Ordering::Relaxed) {
                    break;
                }
                continue;
            }
            if p.revents & libc::POLLIN == 0 {
                break;
            }
            let Ok(req) = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()) else {
                continue;
            };
            let name = req.data.syscall.get_name().unwrap_or_default();
            let resp = if name.starts_with("mkdir") {
                mkdirs += 1;
                libseccomp::ScmpNotifResp::new_val(
                    req.id,
                    0,
                    libseccomp::ScmpNotifRespFlags::empty(),
                )
            } else {
                memory_calls += 1;
                libseccomp::ScmpNotifResp::new_continue(
                    req.id,
                    libseccomp::ScmpNotifRespFlags::empty(),
                )
            };
            let _ = resp.respond(fd.as_raw_fd());
        }
        (memory_calls, mkdirs)
    });
    // Every malloc of the runtime's own code then mmaps: an allocation between the load and
    // the handoff would hang the init (the call's deadline would end it).
    let wrapper = t.dir.join("hull-mmap-malloc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nMALLOC_MMAP_THRESHOLD_=0 exec {} \"$@\"\n",
            crate::util::runtime().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    t.write_config();
    let call = crate::util::Call {
        bin: Some(wrapper),
        timeout: Some(std::time::Duration::from_secs(20)),
        ..Default::default()
    };
    let out = t.call(&["run", "--bundle", &t.bundle_str(), &t.id], &call);
    done.store(true, Ordering::Relaxed);
    let (memory_calls, mkdirs) = agent.join().expect("agent");
    out.ok();
    assert!(
        out.stdout.contains("made") && out.stdout.contains("absent"),
        "{out}"
    );
    assert_eq!(mkdirs, 1, "the mkdir went to the agent");
    assert!(memory_calls > 0, "no memory syscall reached the agent");
}

/// A non-root process with no `capabilities` field and without no_new_privs: the switch to
/// its uid empties the effective set, so the filter must go on while CAP_SYS_ADMIN can still be
/// raised (runc loads it before the switch). The same for a process exec'd into it.
#[test]
fn a_non_root_process_without_capabilities_or_no_new_privileges_gets_its_filter() {
    let mut t = Test::new("sc_nocaps");
    t.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    t.config["process"]["noNewPrivileges"] = json!(false);
    t.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    t.config["linux"]["seccomp"] = deny(&["mkdir", "mkdirat"]);
    t.sh(
        "id -u; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/d 2>&1; echo rc=$?",
    );
    let out = t.output();
    assert!(out.starts_with("1000\n"), "{out}");
    assert!(
        out.contains("Seccomp:\t2") && out.contains("NoNewPrivs:\t0"),
        "{out}"
    );
    assert!(out.contains("rc=1"), "mkdir allowed:\n{out}");

    t.args(&["sleep", "100"]);
    let id = t.new_id();
    t.create_and_start(&id);
    assert_exec_denies_mkdir(&t, &id);
}

/// The runtime's own last steps (the final CPU affinity, clearing the parent-death signal of
/// an exec) come before the filter: a profile need not allow them.
#[test]
fn a_profile_denying_sched_setaffinity_and_prctl_still_starts_and_execs() {
    if skip_on_runc("runc 1.1.5 has no execCPUAffinity") {
        return;
    }
    let mut t = Test::new("sc_affinity");
    t.config["process"]["execCPUAffinity"] = json!({ "initial": "0", "final": "0" });
    t.config["linux"]["seccomp"] = deny(&["sched_setaffinity", "prctl"]);
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create_and_start(&id);
    let out = t.hull(&[
        "exec",
        &id,
        "sh",
        "-c",
        "grep -E '^(Seccomp|Cpus_allowed_list):' /proc/self/status",
    ]);
    out.ok();
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    assert!(out.stdout.contains("Cpus_allowed_list:\t0\n"), "{out}");
}
