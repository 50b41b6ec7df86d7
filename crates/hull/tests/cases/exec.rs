//! `exec`: a process run in a running container joins its namespaces and cgroups, gets the
//! requested user, env, cwd and capabilities, and hands back its exit code; detached it
//! leaves only itself behind (pid file, console socket); refusals word their errors as runc.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use serde_json::{json, Value};

use super::namespaces::new_user_namespace;
use crate::util::{
    cap_mask, cgroup_dir, cgroup_hierarchies, cgroup_procs, console_accept, is_gone, ns_link,
    pids_in_ns, pty_read_until, pty_write, raw, recv_fds, runtime_name, runtime_processes_naming,
    skip_on_runc, status_field, wait_until, write, Call, CgHierarchy, Out, Test, STOP_TIMEOUT,
};

/// The namespace kinds an exec'd process must share with the container's init.
const NS_KINDS: [&str; 7] = ["pid", "mnt", "net", "ipc", "uts", "cgroup", "user"];

/// Starts the test's main container running `sleep 100`; the init's host pid, as `state`
/// reports it.
#[track_caller]
fn start_sleeper(t: &mut Test) -> i32 {
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    let from_file = t.create_and_start(&id).1;
    let state: Value = t.state(&id).expect("state");
    assert_eq!(state["pid"], from_file, "{state}");
    from_file
}

/// `exec FLAGS… ID CMD…` into the test's main container.
fn exec(t: &Test, flags: &[&str], cmd: &[&str]) -> Out {
    exec_with(t, &Call::default(), flags, cmd)
}

fn exec_with(t: &Test, c: &Call, flags: &[&str], cmd: &[&str]) -> Out {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(&t.id);
    args.extend_from_slice(cmd);
    t.call(&args, c)
}

/// `exec -d --pid-file P FLAGS… ID CMD…`: the exec'd process's host pid, from the pid file
/// (which must hold nothing but the decimal pid), recorded for the guard to kill.
#[track_caller]
fn exec_detached(t: &Test, flags: &[&str], cmd: &[&str]) -> i32 {
    let n = t.dir.read_dir().map(|d| d.count()).unwrap_or(0);
    let pid_file = t.path(&format!("exec-{n}.pid"));
    let pid_file = pid_file.to_string_lossy().into_owned();
    let mut all = vec!["-d", "--pid-file", pid_file.as_str()];
    all.extend_from_slice(flags);
    exec(t, &all, cmd).ok();
    let text = fs::read_to_string(&pid_file).expect("exec pid file");
    let pid: i32 = text
        .parse()
        .unwrap_or_else(|e| panic!("pid file holds {text:?}, not a bare pid: {e}"));
    t.track_pid(pid);
    pid
}

/// The namespace links of `pid`, one per kind of `NS_KINDS`.
fn ns_links(pid: i32) -> Vec<String> {
    NS_KINDS.iter().map(|k| ns_link(pid, k)).collect()
}

/// A script that prints the exec'd process's own namespace links, one a line.
fn ns_script() -> String {
    NS_KINDS
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect()
}

/// `/proc/PID/status` of a host pid.
fn host_status(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"))
}

/// A capability field (`CapEff`, …) of a status dump as a mask.
#[track_caller]
fn caps_field(status: &str, key: &str) -> u64 {
    let v = status_field(status, key).unwrap_or_else(|| panic!("no {key} in:\n{status}"));
    u64::from_str_radix(v, 16).unwrap_or_else(|e| panic!("{key}: {v:?}: {e}"))
}

/// runc logs its last error through logrus (`msg="…\"x\"…"`) when stderr is its log: the
/// message with Go's quoting undone, so the same text can be looked for in either runtime.
fn unquoted(stderr: &str) -> String {
    stderr.replace("\\\"", "\"")
}

/// Asserts the call failed as a refused exec does: status 255 and a single line of stderr
/// holding `needle`.
#[track_caller]
fn assert_exec_refused(out: &Out, needle: &str) {
    assert_eq!(out.code, 255, "expected exit status 255:\n{out}");
    let text = unquoted(&out.stderr);
    assert!(
        text.contains(needle),
        "expected {needle:?} in stderr:\n{out}"
    );
    assert_eq!(
        out.stderr.trim_end().lines().count(),
        1,
        "expected one line of stderr:\n{out}"
    );
}

#[test]
fn exec_joins_every_namespace_of_the_init() {
    let mut t = Test::new("exec_ns");
    t.add_namespace("cgroup", None);
    let init = start_sleeper(&mut t);
    let want = ns_links(init);

    let out = exec(&t, &[], &["sh", "-c", &ns_script()]);
    out.ok();
    let seen: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(seen, want, "exec'd process vs init {init}:\n{out}");

    // Joined by a fork into the pid namespace: a process of it, but not its init.
    let out = exec(&t, &[], &["sh", "-c", "echo $$; hostname"]);
    out.ok();
    let mut lines = out.stdout.lines();
    let pid: i32 = lines.next().unwrap_or_default().parse().unwrap_or(0);
    assert!(
        pid > 1,
        "exec'd shell is pid {pid} in the container:\n{out}"
    );
    assert_eq!(lines.next(), Some("hull-test"), "{out}");

    // The host sees the same: a detached process's links are the init's.
    let pid = exec_detached(&t, &[], &["sleep", "100"]);
    assert_eq!(ns_links(pid), want, "detached exec'd process {pid}");
}

#[test]
fn exec_joins_the_user_namespace_first() {
    let mut t = Test::new("exec_userns");
    new_user_namespace(&mut t);
    let init = start_sleeper(&mut t);
    let want = ns_links(init);
    assert_ne!(want[6], ns_link(std::process::id() as i32, "user"));

    let out = exec(&t, &[], &["sh", "-c", &format!("{}id -u", ns_script())]);
    out.ok();
    let seen: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(seen[..NS_KINDS.len()], want, "{out}");
    assert_eq!(seen[NS_KINDS.len()..], ["0"], "{out}");

    // Container root is host uid 100000 through the container's mapping.
    let pid = exec_detached(&t, &[], &["sleep", "100"]);
    assert_eq!(ns_links(pid), want);
    let status = host_status(pid);
    let uid = status_field(&status, "Uid").unwrap_or_default();
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        ["100000"; 4],
        "{status}"
    );
}

/// The exec'd process is in the init's cgroups, as the process itself and the host see it,
/// and in the container's `cgroup.procs`.
fn exec_is_in_the_containers_cgroups(name: &str, cgroupns: bool) {
    let mut t = Test::new(name);
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    if cgroupns {
        t.add_namespace("cgroup", None);
    }
    let init = start_sleeper(&mut t);

    // Inside: its own view matches the init's, both read in the same cgroup namespace.
    let out = exec(
        &t,
        &[],
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup",
        ],
    );
    out.ok();
    let (own, of_init) = out.stdout.split_once("--\n").expect("separator");
    assert_eq!(own, of_init, "{out}");
    if cgroupns {
        for l in own.lines() {
            assert!(l.ends_with(":/"), "not at its cgroup namespace's root: {l}");
        }
    } else {
        let host = fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
        assert_eq!(own, host, "{out}");
    }

    // On the host: same cgroup lines, and listed in the container's cgroups.
    let pid = exec_detached(&t, &[], &["sleep", "100"]);
    let of = |p: i32| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(of(pid), of(init));
    let v1: Vec<_> = cgroup_hierarchies()
        .into_iter()
        .filter(|h| !h.is_v2())
        .collect();
    assert_listed(&v1, &path, pid, init);
}

/// The cgroup at `path` of each of `hierarchies` lists the exec'd process and the init.
fn assert_listed(hierarchies: &[CgHierarchy], path: &str, pid: i32, init: i32) {
    for h in hierarchies {
        let dir = h.dir_for(path);
        let procs = cgroup_procs(&dir);
        assert!(
            procs.contains(&pid) && procs.contains(&init),
            "{} holds {procs:?}, not exec'd {pid} and init {init}",
            dir.display()
        );
    }
}

#[test]
fn exec_is_in_the_containers_cgroups_without_a_cgroup_namespace() {
    exec_is_in_the_containers_cgroups("exec_cgroup", false);
}

#[test]
fn exec_is_in_the_containers_cgroups_with_a_cgroup_namespace() {
    exec_is_in_the_containers_cgroups("exec_cgroupns", true);
}

/// A container that shares every namespace of the runtime: its exec'd process has none to
/// join (one clone, no setns), and is put into the cgroups all the same.
#[test]
fn exec_into_a_container_sharing_our_namespaces_is_in_its_cgroups() {
    let mut t = Test::new("exec_cgroup_nons");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    t.config["linux"]["namespaces"] = json!([]);
    // No mount namespace: nothing mounted into the rootfs on the host's side either.
    t.config["mounts"] = json!([]);
    t.config.as_object_mut().unwrap().remove("hostname");
    let init = start_sleeper(&mut t);
    let pid = exec_detached(&t, &[], &["sleep", "100"]);
    assert_listed(&cgroup_hierarchies(), &path, pid, init);
}

#[test]
fn exec_user_and_additional_groups() {
    let mut t = Test::new("exec_user");
    start_sleeper(&mut t);
    let out = exec(
        &t,
        &["-u", "1000:1000", "-g", "10"],
        &["cat", "/proc/self/status"],
    );
    out.ok();
    let ids = |k: &str| -> Vec<String> {
        status_field(&out.stdout, k)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(ids("Uid"), ["1000"; 4], "{out}");
    assert_eq!(ids("Gid"), ["1000"; 4], "{out}");
    assert_eq!(ids("Groups"), ["10"], "{out}");

    // Without -u the container's user (root) stays.
    let out = exec(&t, &[], &["id", "-u"]);
    out.ok();
    assert_eq!(out.stdout, "0\n");

    // A uid alone keeps the container's gid.
    let out = exec(&t, &["-u", "1000"], &["sh", "-c", "id -u; id -g"]);
    out.ok();
    assert_eq!(out.stdout, "1000\n0\n");
}

#[test]
fn exec_env_adds_to_the_containers_env() {
    let mut t = Test::new("exec_env");
    t.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("FROM_CONFIG=kept"));
    start_sleeper(&mut t);
    let out = exec(&t, &["-e", "FOO=bar", "-e", "TERM=dumb"], &["env"]);
    out.ok();
    let env: Vec<&str> = out.stdout.lines().collect();
    for want in [
        "FOO=bar",
        "FROM_CONFIG=kept",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(env.contains(&want), "{want} missing:\n{out}");
    }
    // An -e of a variable the container sets replaces it: one TERM, the new one.
    let terms: Vec<&&str> = env.iter().filter(|e| e.starts_with("TERM=")).collect();
    assert_eq!(terms, [&"TERM=dumb"], "{out}");
}

#[test]
fn exec_cwd_sets_the_working_directory() {
    let mut t = Test::new("exec_cwd");
    fs::create_dir_all(t.rootfs.join("tmp")).unwrap();
    start_sleeper(&mut t);
    let out = exec(&t, &["--cwd", "/tmp"], &["pwd"]);
    out.ok();
    assert_eq!(out.stdout, "/tmp\n");
    // Without --cwd, the container's.
    let out = exec(&t, &[], &["pwd"]);
    out.ok();
    assert_eq!(out.stdout, "/\n");
}

#[test]
fn exec_cap_adds_to_bounding_effective_permitted_but_never_inheritable() {
    let mut t = Test::new("exec_caps");
    let base = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let caps = &mut t.config["process"]["capabilities"];
    caps["inheritable"] = json!(["CAP_KILL"]);
    caps.as_object_mut().unwrap().remove("ambient");
    start_sleeper(&mut t);

    let out = exec(&t, &[], &["cat", "/proc/self/status"]);
    out.ok();
    for key in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            caps_field(&out.stdout, key),
            cap_mask(&base),
            "{key} without --cap"
        );
    }
    assert_eq!(caps_field(&out.stdout, "CapInh"), cap_mask(&["CAP_KILL"]));

    let out = exec(&t, &["-c", "CAP_NET_ADMIN"], &["cat", "/proc/self/status"]);
    out.ok();
    let mut more = base.to_vec();
    more.push("CAP_NET_ADMIN");
    for key in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            caps_field(&out.stdout, key),
            cap_mask(&more),
            "{key} with --cap CAP_NET_ADMIN"
        );
    }
    // CVE-2022-29162: --cap must not reach the inheritable set.
    assert_eq!(
        caps_field(&out.stdout, "CapInh"),
        cap_mask(&["CAP_KILL"]),
        "CapInh with --cap CAP_NET_ADMIN"
    );

    // The capability is real: the process may bring an interface up.
    let out = exec(
        &t,
        &["--cap", "CAP_NET_ADMIN"],
        &["ip", "link", "set", "lo", "up"],
    );
    out.ok();
}

#[test]
fn exec_unknown_cap_is_refused() {
    if skip_on_runc("runc only warns about an unknown capability") {
        return;
    }
    let mut t = Test::new("exec_bad_cap");
    start_sleeper(&mut t);
    let marker = t.rootfs.join("tmp/ran");
    let out = exec(&t, &["-c", "CAP_BOGUS"], &["touch", "/tmp/ran"]);
    assert_exec_refused(&out, "CAP_BOGUS");
    assert!(!marker.exists(), "the process ran despite the bad --cap");
}

#[test]
fn exec_cap_also_adds_to_ambient_when_the_process_has_an_inheritable_set() {
    // runc's rule: with an inheritable set in the config, --cap goes to ambient too (the
    // kernel raises it only if it is inheritable, else runc's warning).
    if skip_on_runc("runc 1.1.5 leaves the ambient set alone") {
        return;
    }
    let mut t = Test::new("exec_cap_ambient");
    let caps = &mut t.config["process"]["capabilities"];
    caps["inheritable"] = json!(["CAP_KILL", "CAP_SYSLOG"]);
    caps["bounding"] = json!(["CAP_KILL", "CAP_SYSLOG", "CAP_NET_ADMIN"]);
    caps["ambient"] = json!(["CAP_KILL"]);
    start_sleeper(&mut t);
    let out = exec(&t, &["--cap", "CAP_SYSLOG"], &["cat", "/proc/self/status"]);
    out.ok();
    assert_eq!(
        caps_field(&out.stdout, "CapAmb"),
        cap_mask(&["CAP_KILL", "CAP_SYSLOG"])
    );
    let out = exec(
        &t,
        &["--cap", "CAP_NET_ADMIN"],
        &["cat", "/proc/self/status"],
    );
    out.ok()
        .stderr_has("can't raise ambient capability CAP_NET_ADMIN");
    assert_eq!(caps_field(&out.stdout, "CapAmb"), cap_mask(&["CAP_KILL"]));
}

#[test]
fn exec_no_new_privs_sets_the_flag() {
    let mut t = Test::new("exec_nnp");
    t.config["process"]["noNewPrivileges"] = json!(false);
    start_sleeper(&mut t);
    let nnp = |flags: &[&str]| {
        let out = exec(&t, flags, &["cat", "/proc/self/status"]);
        out.ok();
        status_field(&out.stdout, "NoNewPrivs")
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(nnp(&[]), "0");
    assert_eq!(nnp(&["--no-new-privs"]), "1");
}

#[test]
fn exec_exit_codes_come_back() {
    let mut t = Test::new("exec_codes");
    start_sleeper(&mut t);
    assert_eq!(exec(&t, &[], &["true"]).code, 0);
    let out = exec(&t, &[], &["sh", "-c", "exit 3"]);
    assert_eq!(out.code, 3, "{out}");
    // Not the pid namespace's init, so the shell can SIGKILL itself.
    let out = exec(&t, &[], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code, 137, "{out}");
    let out = exec(&t, &[], &["sh", "-c", "echo out; echo err >&2"]);
    out.ok();
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
}

#[test]
fn exec_of_a_missing_executable_fails_with_runcs_text() {
    let mut t = Test::new("exec_nosuch");
    let init = start_sleeper(&mut t);
    let out = exec(&t, &[], &["nosuch"]);
    assert_exec_refused(
        &out,
        "exec failed: unable to start container process: exec: \"nosuch\": \
         executable file not found in $PATH",
    );
    assert!(!is_gone(init), "the container died with the failed exec");
    assert_eq!(t.status(&t.id), "running");
}

#[test]
fn exec_without_a_command_fails() {
    let mut t = Test::new("exec_no_args");
    start_sleeper(&mut t);
    let out = exec(&t, &[], &[]);
    assert!(!out.success(), "{out}");
    assert!(!out.stderr.trim().is_empty(), "{out}");
}

#[test]
fn exec_into_a_missing_container_fails() {
    let t = Test::new("exec_missing");
    let out = exec(&t, &[], &["true"]);
    assert_exec_refused(&out, "container does not exist");
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let mut t = Test::new("exec_stopped");
    t.args(&["true"]);
    let id = t.id.clone();
    t.create_and_start(&id);
    assert_eq!(t.wait_status(&id, "stopped", STOP_TIMEOUT), "stopped");
    let out = exec(&t, &[], &["true"]);
    assert_exec_refused(&out, "exec failed: cannot exec in a stopped container");
}

#[test]
fn exec_into_a_paused_container_needs_ignore_paused() {
    let mut t = Test::new("exec_paused");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    t.in_cgroup(&g, &id);
    let init = start_sleeper(&mut t);
    t.hull(&["pause", &id]).ok();
    let out = exec(&t, &[], &["true"]);
    assert_exec_refused(
        &out,
        "cannot exec in a paused container (use --ignore-paused to override)",
    );

    // With --ignore-paused the exec goes ahead: its process joins the frozen cgroup, so it
    // can only get to exec once the container is resumed (runc's call waits for that too).
    let pid_file = t.path("exec.pid").to_string_lossy().into_owned();
    let call = t.spawn_call(&[
        "exec",
        "--ignore-paused",
        "-d",
        "--pid-file",
        &pid_file,
        &id,
        "sleep",
        "100",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    t.hull(&["resume", &id]).ok();
    call.wait().ok();
    let pid: i32 = fs::read_to_string(&pid_file)
        .expect("pid file")
        .parse()
        .expect("pid");
    t.track_pid(pid);
    assert_eq!(t.status(&id), "running");
    assert!(!is_gone(pid), "the exec'd process is gone");
    assert_eq!(ns_link(pid, "pid"), ns_link(init, "pid"));
}

#[test]
fn exec_detached_writes_the_pid_file_and_leaves_no_runtime_process() {
    let mut t = Test::new("exec_detach");
    let init = start_sleeper(&mut t);
    let pid_file = t.path("exec.pid");
    let out = exec(
        &t,
        &["-d", "--pid-file", &pid_file.to_string_lossy()],
        &["sleep", "100"],
    );
    out.ok();
    let text = fs::read_to_string(&pid_file).expect("pid file");
    assert!(
        !text.ends_with('\n'),
        "pid file ends in a newline: {text:?}"
    );
    let pid: i32 = text.parse().expect("pid file holds a pid");
    t.track_pid(pid);

    assert!(!is_gone(pid), "exec'd process {pid} is gone");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, b"sleep\x00100\x00",
        "the pid file names another process"
    );
    let pid_ns = ns_link(init, "pid");
    assert_eq!(ns_link(pid, "pid"), pid_ns);
    assert_eq!(ns_link(pid, "mnt"), ns_link(init, "mnt"));

    // Nothing of the runtime is left: no process of this test's runtime calls, and in
    // the container's pid namespace only the init and the exec'd process.
    let left = runtime_processes_naming(&t.root_str());
    assert!(left.is_empty(), "runtime processes left: {left:?}");
    assert_eq!(pids_in_ns("pid", &pid_ns), {
        let mut v = vec![init, pid];
        v.sort();
        v
    });

    let out = t.hull(&["ps", "--format", "json", &t.id]);
    out.ok();
    let pids: Vec<i32> = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(
        pids.contains(&pid) && pids.contains(&init),
        "ps lacks {pid} or {init}:\n{out}"
    );
}

/// The fds open in the exec'd process, as `ls /proc/self/fd` lists them (ls's own directory
/// fd included).
fn fds_listed(out: &Out) -> BTreeSet<u32> {
    out.stdout
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(|f| f.parse().unwrap_or_else(|e| panic!("fd {f:?}: {e}\n{out}")))
        .collect()
}

#[test]
fn exec_preserve_fds_passes_fd_3_and_leaks_nothing_else() {
    let mut t = Test::new("exec_preserve");
    start_sleeper(&mut t);
    let src = t.path("preserved");
    write(&src, "preserved\n");
    let f = fs::File::open(&src).unwrap();
    let c = Call {
        fds: vec![(raw(&f), 3)],
        ..Call::default()
    };
    let script = "cat <&3; readlink /proc/self/fd/3; ls /proc/self/fd | tr '\\n' ' '";

    let out = exec_with(&t, &c, &["--preserve-fds", "1"], &["sh", "-c", script]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"preserved"), "{out}");
    assert!(
        lines.get(1).is_some_and(|l| l.ends_with("/preserved")),
        "fd 3 is not the file:\n{out}"
    );
    // 0-3, and the directory ls opens (the lowest free number, 4, if nothing leaked).
    assert_eq!(fds_listed(&out), BTreeSet::from([0, 1, 2, 3, 4]), "{out}");

    // Without --preserve-fds the same fd 3 does not reach the process: ls's directory takes 3.
    let out = exec_with(
        &t,
        &c,
        &[],
        &["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"],
    );
    out.ok();
    assert_eq!(fds_listed(&out), BTreeSet::from([0, 1, 2, 3]), "{out}");
}

#[test]
fn exec_process_json_runs_that_process() {
    let mut t = Test::new("exec_process_json");
    start_sleeper(&mut t);
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000, "additionalGids": [20] },
        "args": ["sh", "-c", "echo $FOO; pwd; id -u; id -g; echo TERM=$TERM; cat /proc/self/status"],
        "env": ["PATH=/bin", "FOO=from-json"],
        "cwd": "/tmp",
        "capabilities": {
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"]
        },
        "noNewPrivileges": true
    });
    let file = t.path("process.json");
    write(&file, &process.to_string());
    let out = exec(&t, &["-p", &file.to_string_lossy()], &[]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..5],
        ["from-json", "/tmp", "1000", "1000", "TERM="],
        "{out}"
    );
    let status = out.stdout.as_str();
    assert_eq!(status_field(status, "Groups"), Some("20"), "{out}");
    // A non-root process keeps no effective capabilities across execve; the bounding set
    // shows the file's.
    assert_eq!(caps_field(status, "CapBnd"), cap_mask(&["CAP_KILL"]));
    assert_eq!(status_field(status, "NoNewPrivs"), Some("1"), "{out}");
}

#[test]
fn exec_process_json_without_capabilities_gets_the_containers() {
    // A process.json without `capabilities` (as many clients write it) must not run with
    // the runtime's full set: runc gives it the container's.
    let mut t = Test::new("exec_process_json_caps");
    t.config["process"]["noNewPrivileges"] = json!(false);
    start_sleeper(&mut t);
    let process = json!({
        "user": { "uid": 0, "gid": 0 },
        "args": ["cat", "/proc/self/status"],
        "env": ["PATH=/bin"],
        "cwd": "/"
    });
    let file = t.path("process.json");
    write(&file, &process.to_string());
    let out = exec(&t, &["--process", &file.to_string_lossy()], &[]);
    out.ok();
    let base = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    for key in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            caps_field(&out.stdout, key),
            cap_mask(&base),
            "{key}:\n{out}"
        );
    }
}

#[test]
fn exec_tty_through_a_console_socket() {
    let mut t = Test::new("exec_tty");
    start_sleeper(&mut t);
    let socket = t.path("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let socket = socket.to_string_lossy().into_owned();
    let pid_file = t.path("exec.pid").to_string_lossy().into_owned();
    let id = t.id.clone();
    let call = t.spawn_call(&[
        "exec",
        "-t",
        "--console-socket",
        &socket,
        "-d",
        "--pid-file",
        &pid_file,
        &id,
        "sh",
    ]);
    let (stream, call) = console_accept(&listener, call);
    let (name, mut fds) = recv_fds(&stream);
    call.wait().ok();
    let pid: i32 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    t.track_pid(pid);
    assert_eq!(fds.len(), 1, "expected exactly one fd, got {}", fds.len());
    assert!(!name.is_empty(), "the fd came without a name");
    let master = fds.pop().unwrap();

    pty_write(
        &master,
        b"[ -t 0 ] && echo stdin-tty-$((2*3)); tty; echo hi-$((1+1))\n",
    );
    // The arithmetic proves that the shell ran the line, not just that the tty echoed it.
    let text = pty_read_until(&master, "hi-2", Duration::from_secs(5));
    assert!(text.contains("hi-2"), "{text:?}");
    assert!(text.contains("stdin-tty-6"), "stdin is not a tty: {text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");

    pty_write(&master, b"exit 0\n");
    assert!(
        wait_until(STOP_TIMEOUT, || is_gone(pid)),
        "the shell did not exit"
    );
    // The container itself runs on.
    assert_eq!(t.status(&id), "running");
}

#[test]
fn exec_tty_detached_without_a_console_socket_is_refused() {
    let mut t = Test::new("exec_tty_no_socket");
    start_sleeper(&mut t);
    let out = exec(&t, &["-t", "-d"], &["true"]);
    assert_exec_refused(
        &out,
        &format!(
            "cannot allocate tty if {} will detach without setting console socket",
            runtime_name()
        ),
    );
}

#[test]
fn exec_tty_in_the_foreground_without_a_socket_relays_the_pty() {
    // runc 1.1.5 needs a terminal of the caller's (stdio or /dev/tty) to put in raw mode;
    // hull relays the pty to whatever stdio it has.
    if skip_on_runc("runc 1.1.5 needs the caller's terminal for a foreground -t") {
        return;
    }
    let mut t = Test::new("exec_tty_fg");
    let init = start_sleeper(&mut t);
    let out = exec(
        &t,
        &["-t"],
        &["sh", "-c", "[ -t 0 ] && echo tty-$((1+1)); tty; exit 3"],
    );
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains("tty-2"), "stdin is not a tty:\n{out}");
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(!is_gone(init));
}

#[test]
fn exec_cgroup_runs_in_an_existing_sub_cgroup() {
    let mut t = Test::new("exec_subcgroup");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    let init = start_sleeper(&mut t);
    let sub = SubCgroup::make("pids", &path, "sub");

    let pid = exec_detached(&t, &["--cgroup", "pids:sub"], &["sleep", "100"]);
    assert_eq!(cgroup_procs(&sub.0), [pid]);
    // Only the named controller is the sub-cgroup; every other is the container's.
    for h in cgroup_hierarchies().iter().filter(|h| !h.is_v2()) {
        if h.controllers.iter().any(|c| c == "pids") {
            continue;
        }
        let procs = cgroup_procs(&h.dir_for(&path));
        assert!(procs.contains(&pid), "{:?}: {procs:?}", h.controllers);
    }
    assert_eq!(ns_link(pid, "pid"), ns_link(init, "pid"));

    // A sub-cgroup that does not exist is an error, and nothing runs; so are a path out of
    // the container's cgroup and a controller nobody mounted (runc's words).
    let out = exec(&t, &["--cgroup", "pids:nosuch"], &["true"]);
    assert_eq!(out.code, 255, "{out}");
    out.stderr_has(" adding pid ");
    out.stderr_has("/nosuch/cgroup.procs: no such file ");
    let out = exec(&t, &["--cgroup", ".."], &["true"]);
    assert_eq!(out.code, 255, "{out}");
    out.stderr_has(" .. is not a sub cgroup path");
    // `/` is the container's own cgroup.
    exec(&t, &["--cgroup", "/"], &["true"]).ok();
    let out = exec(&t, &["--cgroup", "whaaat:/"], &["true"]);
    assert_eq!(out.code, 255, "{out}");
    out.stderr_has("unknown controller ");
}

/// A sub-cgroup a test made under a container's cgroup: on drop its processes are killed
/// and it is removed (before the cgroup guard removes the container's cgroup).
struct SubCgroup(std::path::PathBuf);

impl SubCgroup {
    fn make(controller: &str, container_path: &str, name: &str) -> SubCgroup {
        let d = cgroup_dir(controller, container_path).join(name);
        fs::create_dir(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        SubCgroup(d)
    }
}

impl Drop for SubCgroup {
    fn drop(&mut self) {
        wait_until(STOP_TIMEOUT, || {
            for pid in cgroup_procs(&self.0) {
                // SAFETY: kill(2) of a process in a cgroup this test made.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            fs::remove_dir(&self.0).is_ok() || !self.0.exists()
        });
    }
}

#[test]
fn exec_pidfd_socket_receives_a_pidfd_of_the_process() {
    if skip_on_runc("runc 1.1.5 has no --pidfd-socket") {
        return;
    }
    let mut t = Test::new("exec_pidfd");
    start_sleeper(&mut t);
    let socket = t.path("pidfd.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let socket = socket.to_string_lossy().into_owned();
    let pid_file = t.path("exec.pid").to_string_lossy().into_owned();
    let id = t.id.clone();
    let call = t.spawn_call(&[
        "exec",
        "--pidfd-socket",
        &socket,
        "-d",
        "--pid-file",
        &pid_file,
        &id,
        "sleep",
        "100",
    ]);
    let (stream, call) = console_accept(&listener, call);
    let (_, fds) = recv_fds(&stream);
    call.wait().ok();
    let pid: i32 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    t.track_pid(pid);
    assert_eq!(fds.len(), 1, "expected exactly one fd, got {}", fds.len());
    let fdinfo = fs::read_to_string(format!(
        "/proc/self/fdinfo/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fds[0])
    ))
    .unwrap();
    assert_eq!(
        status_field(&fdinfo, "Pid"),
        Some(pid.to_string().as_str()),
        "{fdinfo}"
    );
}

#[test]
fn exec_lsm_labels_follow_the_host() {
    // No AppArmor or SELinux here. A profile is ignored where AppArmor is absent (the clients
    // that set one do so by default); an SELinux label cannot be, and the process must not run
    // unlabelled as if it had been (runc's error).
    if skip_on_runc("runc 1.1.5 fails an AppArmor profile on a host without AppArmor") {
        return;
    }
    let mut t = Test::new("exec_lsm");
    start_sleeper(&mut t);
    exec(
        &t,
        &["--apparmor", "someprofile"],
        &["touch", "/tmp/apparmor"],
    )
    .ok();
    assert!(
        t.rootfs.join("tmp/apparmor").exists(),
        "the process did not run"
    );

    let marker = t.rootfs.join("tmp/ran");
    let out = exec(
        &t,
        &["--process-label", "system_u:system_r:container_t:s0"],
        &["touch", "/tmp/ran"],
    );
    assert_eq!(out.code, 255, "expected exit status 255:\n{out}");
    assert!(
        out.stderr.contains(
            "selinux label is specified in config, but selinux is disabled or not supported"
        ),
        "not runc's text:\n{out}"
    );
    assert!(
        !marker.exists(),
        "the process ran without its SELinux label"
    );

    // The same from a -p file.
    let mut p = t.config["process"].clone();
    p["args"] = serde_json::json!(["touch", "/tmp/ran"]);
    p["selinuxLabel"] = serde_json::json!("system_u:system_r:container_t:s0");
    let file = t.dir.join("p.json");
    write(&file, &p.to_string());
    let out = exec(&t, &["-p", file.to_str().unwrap()], &[]);
    assert_eq!(out.code, 255, "{out}");
    assert!(
        !marker.exists(),
        "the -p process ran without its SELinux label"
    );
}

#[test]
fn exec_in_the_foreground_forwards_signals_to_the_process() {
    let mut t = Test::new("exec_signal");
    start_sleeper(&mut t);
    let ready = t.rootfs.join("tmp/ready");
    let id = t.id.clone();
    let call = t.spawn_call(&[
        "exec",
        &id,
        "sh",
        "-c",
        "trap 'exit 7' TERM; touch /tmp/ready; while :; do sleep 0.1; done",
    ]);
    assert!(
        wait_until(STOP_TIMEOUT, || ready.exists()),
        "the process never got ready"
    );
    // SAFETY: kill(2) of the runtime call this test started and has not reaped.
    unsafe {
        libc::kill(call.pid(), libc::SIGTERM);
    }
    let out = call.wait();
    assert_eq!(
        out.code, 7,
        "SIGTERM did not reach the process's trap:\n{out}"
    );
}

#[test]
fn exec_cap_into_a_container_without_capabilities_adds_nothing_inheritable() {
    if skip_on_runc("runc 1.1.5 fills the sets from its defaults when the config has none") {
        return;
    }
    // CVE-2022-29162: with no `capabilities` field in the config, `--cap` must not bring in
    // oci-spec's default sets, which put capabilities into inheritable and ambient.
    let mut t = Test::new("exec_cap_nocaps");
    t.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    t.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    start_sleeper(&mut t);
    let out = exec(&t, &["-c", "CAP_NET_RAW"], &["cat", "/proc/self/status"]);
    out.ok();
    assert_eq!(caps_field(&out.stdout, "CapInh"), 0, "{out}");
    assert_eq!(caps_field(&out.stdout, "CapAmb"), 0, "{out}");
}

#[test]
fn exec_process_file_without_args_or_with_a_relative_cwd_is_refused() {
    let mut t = Test::new("exec_process_bad");
    start_sleeper(&mut t);
    for (process, needle) in [
        (
            json!({ "user": { "uid": 0, "gid": 0 }, "args": [], "cwd": "/" }),
            "args must not be empty",
        ),
        (
            json!({ "user": { "uid": 0, "gid": 0 }, "args": ["true"], "cwd": "tmp" }),
            "Cwd must be an absolute path",
        ),
    ] {
        let file = t.path("process.json");
        write(&file, &process.to_string());
        let out = exec(&t, &["--process", &file.to_string_lossy()], &[]);
        assert_exec_refused(&out, needle);
    }
}

/// A process file's scheduling fields are checked before anything runs, naming the field of
/// the process (not config.json, which the file is not).
#[test]
fn exec_process_file_with_a_bad_io_priority_is_refused_naming_the_field() {
    if skip_on_runc("runc 1.1.5 ignores process.ioPriority") {
        return;
    }
    let mut t = Test::new("exec_process_ioprio");
    start_sleeper(&mut t);
    let process = json!({
        "user": { "uid": 0, "gid": 0 }, "args": ["true"], "cwd": "/",
        "ioPriority": { "class": "IOPRIO_CLASS_BE", "priority": 9 }
    });
    let file = t.path("process.json");
    write(&file, &process.to_string());
    let out = exec(&t, &["--process", &file.to_string_lossy()], &[]);
    assert_exec_refused(
        &out,
        "process.ioPriority.priority: 9: priority must be 0 to 7",
    );
    assert!(!out.stderr.contains("config.json"), "{out}");
}

#[test]
fn exec_that_fails_after_the_process_started_leaves_it_not_running() {
    // The pid file cannot be written: the caller is told exec failed, so the process that
    // was already running must be gone too, as with runc.
    let mut t = Test::new("exec_fail_late");
    let init = start_sleeper(&mut t);
    let out = exec(
        &t,
        &["-d", "--pid-file", "/nonexistent-hull-dir/exec.pid"],
        &["sleep", "77"],
    );
    assert_eq!(out.code, 255, "{out}");
    let gone = wait_until(STOP_TIMEOUT, || {
        let ours = fs::read_link(format!("/proc/{init}/ns/pid")).ok();
        !fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().unwrap_or(0);
            pid > 0
                && pid != init
                && !is_gone(pid)
                && fs::read_link(format!("/proc/{pid}/ns/pid")).ok() == ours
        })
    });
    assert!(
        gone,
        "a process of the failed exec still runs in the container"
    );
}

#[test]
fn detached_exec_without_a_pid_namespace_returns_at_once() {
    // The clone child is the process itself then: `exec -d` must not wait for it.
    let mut t = Test::new("exec_d_nopidns");
    t.remove_namespace("pid");
    start_sleeper(&mut t);
    let started = std::time::Instant::now();
    exec(&t, &["-d"], &["sleep", "5"]).ok();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "exec -d took {took:?}");
}
