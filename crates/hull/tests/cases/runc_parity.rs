//! Behaviours found by running peers' test suites (issue #17, part 2), each checked by hand
//! against runc: what a runc user sees, hull must show too.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::util::*;

/// runc enters `process.cwd` before switching to the process's user: a directory root may
/// enter but the user may not is the process's cwd all the same.
#[test]
fn a_cwd_only_root_may_enter_is_entered_before_the_user_switch() {
    let mut t = Test::new("parity_cwd");
    fs::set_permissions(t.rootfs.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    t.config["process"]["user"] = serde_json::json!({ "uid": 42, "gid": 42 });
    t.config["process"]["cwd"] = "/root".into();
    t.sh("pwd; id -u; ls . >/dev/null 2>&1 || echo cannot-list");
    let out = t.output();
    assert_eq!(out, "/root\n42\ncannot-list\n");
}

/// The pid, process group and session of the process reading /proc/self/stat (fields 1, 5
/// and 6), as the line `PID PGRP SID`.
const PGRP_SID: &str = "cut -d' ' -f1,5,6 /proc/self/stat";

/// As runc (nsexec calls setsid for every process it starts): the init and each exec'd
/// process lead a session and a process group of their own, without a terminal too.
#[test]
fn the_init_and_exec_processes_are_session_leaders() {
    let mut t = Test::new("parity_setsid");
    t.sh(&format!("exec {PGRP_SID}"));
    let out = t.output();
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f, ["1", "1", "1"], "init: {out}");

    t.args(&["sleep", "600"]);
    let (out, _) = t.create(&t.id);
    out.ok();
    t.hull(&["start", &t.id]).ok();
    let out = t.hull(&["exec", &t.id, "sh", "-c", &format!("exec {PGRP_SID}")]);
    let f: Vec<String> = out
        .ok()
        .stdout
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(f.len(), 3, "{out:?}");
    assert_eq!((&f[1], &f[2]), (&f[0], &f[0]), "exec: {out:?}");
}

/// runc 1.2+ prepares the environment: each name once with its last value, and an empty
/// HOME replaced by the user's home from the container's passwd; for `exec` as well.
#[test]
fn env_names_are_set_once_and_an_empty_home_is_filled_in() {
    if skip_on_runc("runc 1.1.5 passes duplicates and an empty HOME on") {
        return;
    }
    let mut t = Test::new("parity_env");
    t.config["process"]["env"] = serde_json::json!([
        "PATH=/bin",
        "ONE=two",
        "HOME=/override",
        "ONE=three",
        "HOME="
    ]);
    t.args(&["env"]);
    let mut want = vec!["PATH=/bin", "ONE=three", "HOME=/root"];
    want.sort();
    let mut got: Vec<String> = t.output().lines().map(String::from).collect();
    got.sort();
    assert_eq!(got, want);

    t.args(&["sleep", "600"]);
    t.create_and_start(&t.id);
    let out = t.hull(&["exec", "--env", "TWO=a", "--env", "TWO=b", &t.id, "env"]);
    let mut got: Vec<String> = out.ok().stdout.lines().map(String::from).collect();
    got.sort();
    let mut want = vec!["PATH=/bin", "ONE=three", "HOME=/root", "TWO=b"];
    want.sort();
    assert_eq!(got, want);
}

/// `Cpus_allowed_list` of the process reading /proc/self/status (a test's thread: its own).
fn cpus_allowed(status: &str) -> String {
    status_field(status, "Cpus_allowed_list")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// runc 1.2+ widens the container's processes to every CPU of their cpuset: a runtime run
/// under `taskset -c 0` (or by a pinned service) does not pin the container to CPU 0.
#[test]
fn the_runtimes_cpu_affinity_is_not_inherited() {
    if skip_on_runc("runc 1.1.5 passes its own CPU affinity on") {
        return;
    }
    let wide = cpus_allowed(&fs::read_to_string("/proc/thread-self/status").unwrap());
    assert!(
        wide.contains('-') || wide.contains(','),
        "this test needs at least 2 CPUs (the CI machine has 2); allowed here: {wide}"
    );
    // Runtime calls are forked from this thread, so they start with its affinity.
    let mut cpu0 = nix::sched::CpuSet::new();
    cpu0.set(0).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &cpu0).unwrap();

    let mut t = Test::new("parity_affinity");
    t.sh("grep Cpus_allowed_list /proc/self/status");
    assert_eq!(cpus_allowed(&t.output()), wide, "run");

    t.args(&["sleep", "600"]);
    t.create_and_start(&t.id);
    let out = t.hull(&[
        "exec",
        &t.id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert_eq!(cpus_allowed(&out.ok().stdout), wide, "exec");
    // A configured affinity still wins.
    let process = t.path("process.json");
    let p = serde_json::json!({
        "args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/",
        "env": ["PATH=/bin"], "execCPUAffinity": { "initial": "1", "final": "1" }
    });
    fs::write(&process, p.to_string()).unwrap();
    let out = t.hull(&["exec", "-p", &process.to_string_lossy(), &t.id]);
    assert_eq!(cpus_allowed(&out.ok().stdout), "1", "exec -p");
}

/// An execve that fails after the lookup (here a script whose interpreter is missing) is
/// reported in runc 1.3's words, `exec PATH: reason`, by `run` and by `exec`.
#[test]
fn an_execve_failure_is_worded_as_runc_words_it() {
    let mut t = Test::new("parity_execve");
    let script = t.rootfs.join("run.sh");
    fs::write(&script, "#!/mmnnttbb foo bar\nsh\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    t.args(&["/run.sh"]);
    let out = t.run();
    // runc 1.3 starts the container, whose process prints this and exits 255; hull's
    // `start` (and so `run`) fails with it (see docs/compat.md).
    assert_ne!(out.code, 0, "{out}");
    out.stderr_has("exec /run.sh: no such file or directory");

    t.args(&["sleep", "600"]);
    t.create_and_start(&t.id);
    let out = t.hull(&["exec", &t.id, "/run.sh"]);
    assert_ne!(out.code, 0, "{out}");
    out.stderr_has("exec /run.sh: no such file or directory");
}

/// runc's "mount order" case: mounts whose sources are paths inside the rootfs (written as
/// host paths, as are their destinations) see the tree the mounts before them made, with a
/// new user namespace too (whose root cannot reach the other sources, which the runtime
/// opens for it).
#[test]
fn bind_sources_inside_the_rootfs_see_the_earlier_mounts() {
    for userns in [false, true] {
        let mut t = Test::new("parity_mount_order");
        let src = t.mkdir("bind-src");
        for sub in ["a/x", "b/y", "c/z"] {
            fs::create_dir_all(src.join(sub)).unwrap();
            fs::write(src.join(sub).join("file"), format!("{sub}\n")).unwrap();
            let top = sub.split('/').next().unwrap();
            std::os::unix::fs::symlink(top, src.join(format!("sym-{top}"))).unwrap();
        }
        fs::create_dir_all(t.rootfs.join("mnt")).unwrap();
        fs::create_dir_all(t.rootfs.join("final")).unwrap();
        if userns {
            super::namespaces::new_user_namespace(&mut t);
            fs::set_permissions(&src, fs::Permissions::from_mode(0o750)).unwrap();
        }
        let r = t.rootfs.display().to_string();
        let s = src.display().to_string();
        for (from, to) in [
            (format!("{s}/a"), "/mnt".to_string()),
            (format!("{s}/sym-b"), "/mnt/x".into()),
            (format!("{s}/c"), "/mnt/x/y".into()),
            (format!("{s}/sym-a"), "/mnt/x/y/z".into()),
            (format!("{r}/mnt/x"), format!("{r}/mnt/x/y/z/x")),
            (format!("{r}/mnt/x/y"), format!("{r}/mnt/x/y/z")),
            (format!("{r}/mnt"), format!("{r}/final")),
        ] {
            t.mount(serde_json::json!({
                "source": from, "destination": to, "type": "bind", "options": ["rbind"]
            }));
        }
        t.args(&["cat", "/final/x/y/z/z/x/y/z/x/file"]);
        assert_eq!(t.output(), "a/x\n", "userns {userns}");
        assert!(!t
            .rootfs
            .join("tmp")
            .join(r.trim_start_matches('/'))
            .exists());
    }
}

/// A new network namespace comes with its loopback interface up, as runc sets it.
#[test]
fn a_new_network_namespace_has_loopback_up() {
    let mut t = Test::new("parity_lo");
    // An empty path is a new namespace, as with runc (jq-edited configs leave one behind).
    for ns in t.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = "".into();
        }
    }
    t.sh("ip -o addr show lo; ip link show lo; readlink /proc/self/ns/net");
    let out = t.output();
    assert!(
        !out.contains(&host_ns("net")),
        "the host's network namespace: {out}"
    );
    assert!(out.contains("inet 127.0.0.1/8"), "{out}");
    assert!(out.contains("<LOOPBACK,UP,LOWER_UP>"), "{out}");
}

/// createContainer hooks run with the container's rootfs as their cwd, as runc runs them
/// (the runtime's own hooks run in the bundle).
#[test]
fn create_container_hooks_run_in_the_rootfs() {
    let mut t = Test::new("parity_hook_cwd");
    let seen = t.path("cwd");
    let hook = |file: &std::path::Path| {
        serde_json::json!({
            "path": "/usr/bin/busybox",
            "args": ["busybox", "sh", "-c", format!("pwd > {}", file.display())],
        })
    };
    let runtime_seen = t.path("runtime-cwd");
    t.config["hooks"] = serde_json::json!({
        "createContainer": [hook(&seen)],
        "createRuntime": [hook(&runtime_seen)],
    });
    t.args(&["true"]);
    t.output();
    let rootfs = fs::canonicalize(&t.rootfs).unwrap();
    assert_eq!(
        fs::read_to_string(&seen).unwrap().trim(),
        rootfs.to_str().unwrap()
    );
    let bundle = fs::canonicalize(&t.bundle).unwrap();
    assert_eq!(
        fs::read_to_string(&runtime_seen).unwrap().trim(),
        bundle.to_str().unwrap()
    );
}

/// `exec -p` with a process file that has no `user`: runc runs it as uid 0.
#[test]
fn exec_process_file_without_user_runs_as_root() {
    let mut t = Test::new("parity_exec_nouser");
    t.args(&["sleep", "600"]);
    let (out, _) = t.create(&t.id);
    out.ok();
    t.hull(&["start", &t.id]).ok();
    let file = t.path("process.json");
    fs::write(
        &file,
        r#"{"args": ["sh", "-c", "id -u; id -g"], "cwd": "/", "env": ["PATH=/bin"]}"#,
    )
    .unwrap();
    let out = t.hull(&["exec", "-p", file.to_str().unwrap(), &t.id]);
    assert_eq!(out.ok().stdout, "0\n0\n", "{out:?}");
}

/// A tmpfs over an existing directory takes the directory's mode (runc's rule), unless its
/// options say `mode=`; over a new directory it keeps tmpfs's own (1777).
#[test]
fn a_tmpfs_over_a_directory_takes_its_mode() {
    let mut t = Test::new("parity_tmpfs_mode");
    for (dir, mode) in [("kept", 0o750), ("given", 0o750)] {
        fs::create_dir(t.rootfs.join(dir)).unwrap();
        fs::set_permissions(t.rootfs.join(dir), fs::Permissions::from_mode(mode)).unwrap();
    }
    t.mount(serde_json::json!({ "destination": "/kept", "type": "tmpfs", "source": "tmpfs" }));
    t.mount(serde_json::json!({
        "destination": "/given", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]
    }));
    t.mount(serde_json::json!({ "destination": "/new", "type": "tmpfs", "source": "tmpfs" }));
    t.sh("stat -c '%n %a' /kept /new /given");
    let out = t.output();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["/kept 750", "/new 1777"], "{out}");
    // runc 1.3 puts the directory's mode before the options; 1.1.5 chmods after the mount.
    if !is_runc() {
        assert_eq!(lines[2], "/given 700", "{out}");
    }
}

/// `kernel.hostname` as a sysctl is refused as runc refuses it (the `hostname` field says
/// it); `kernel.domainname`, which has no field, is set.
#[test]
fn the_hostname_sysctl_is_refused_and_domainname_set() {
    let mut t = Test::new("parity_sysctl_hostname");
    t.add_namespace("uts", None);
    t.config["linux"]["sysctl"] = serde_json::json!({ "kernel.hostname": "other" });
    let out = t.run();
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains("kernel.hostname") && out.stderr.contains("conflicts"),
        "{out:?}"
    );
    t.assert_nothing_left(&t.id);

    t.config["linux"]["sysctl"] = serde_json::json!({ "kernel.domainname": "example.org" });
    t.args(&["cat", "/proc/sys/kernel/domainname"]);
    assert_eq!(t.output(), "example.org\n");
}

/// runc counts only r, w and m in a device rule's access and skips other letters: "rwa"
/// allows reading and writing.
#[test]
fn device_access_letters_other_than_rwm_are_skipped() {
    let mut t = Test::new("parity_dev_access");
    t.config["linux"]["cgroupsPath"] = t.id.clone().into();
    t.config["linux"]["resources"]["devices"] = serde_json::json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwa" },
    ]);
    t.sh("echo x > /dev/null && head -c 1 /dev/null; echo ok");
    assert_eq!(t.output(), "ok\n");
}

/// A cgroup the test makes in the v1 hierarchy of `controller` (this host's), thawed and
/// removed at the end with what the runtime made below it or under its name elsewhere.
struct OwnCgroup {
    path: String,
    dir: std::path::PathBuf,
}

impl OwnCgroup {
    fn new(controller: &str, path: String) -> OwnCgroup {
        let Some(h) = cgroup_hierarchies()
            .into_iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
        else {
            panic!("no v1 {controller} hierarchy: this test needs the project's hybrid CI host");
        };
        let dir = h.dir_for(&path);
        fs::create_dir(&dir).unwrap();
        OwnCgroup { path, dir }
    }
}

impl Drop for OwnCgroup {
    fn drop(&mut self) {
        for h in cgroup_hierarchies() {
            let dir = h.dir_for(&self.path);
            let _ = fs::write(dir.join("freezer.state"), "THAWED");
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = fs::remove_dir(e.path());
                }
            }
            let _ = fs::remove_dir(&dir);
        }
    }
}

/// `run` into an existing cgroup someone froze is refused, and the cgroup stays frozen:
/// hull thaws nothing it did not freeze.
#[test]
fn a_refused_run_leaves_a_frozen_cgroup_frozen() {
    let mut t = Test::new("parity_frozen_existing");
    let own = OwnCgroup::new("freezer", format!("hulltest-frozen-{}", t.id));
    let (path, dir) = (own.path.clone(), own.dir.clone());
    fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
    t.config["linux"]["cgroupsPath"] = path.into();
    t.args(&["true"]);
    let out = t.run();
    out.fails().stderr_has("frozen");
    assert_eq!(
        fs::read_to_string(dir.join("freezer.state"))
            .unwrap()
            .trim(),
        "FROZEN",
        "{out:?}"
    );
}

/// An existing intermediate cpuset cgroup left empty (a pod's, made by a client): runc fills
/// every level from its parent, so the container can join.
#[test]
fn an_empty_existing_cpuset_parent_is_filled() {
    let mut t = Test::new("parity_cpuset_parent");
    let own = OwnCgroup::new("cpuset", format!("hulltest-pod-{}", t.id));
    let (parent_path, parent) = (own.path.clone(), own.dir.clone());
    assert_eq!(
        fs::read_to_string(parent.join("cpuset.cpus"))
            .unwrap()
            .trim(),
        ""
    );
    t.config["linux"]["cgroupsPath"] = format!("{parent_path}/{}", t.id).into();
    t.config["linux"]["resources"]["pids"] = serde_json::json!({ "limit": 50 });
    t.args(&["true"]);
    t.output();
    let top = fs::read_to_string(parent.parent().unwrap().join("cpuset.cpus")).unwrap();
    assert_eq!(
        fs::read_to_string(parent.join("cpuset.cpus"))
            .unwrap()
            .trim(),
        top.trim()
    );
}

/// A bind mount of a file onto a directory (or the reverse) fails as runc's does, "not a
/// directory" with both paths: docker shows its "Are you trying to mount a directory onto
/// a file" hint on that text only.
#[test]
fn binding_a_file_onto_a_directory_says_not_a_directory() {
    let t = Test::new("parity_bind_kind");
    let file = t.path("a-file");
    fs::write(&file, "x").unwrap();
    let dir = t.mkdir("a-dir");
    fs::create_dir(t.rootfs.join("target-dir")).unwrap();
    fs::write(t.rootfs.join("target-file"), "").unwrap();
    for (source, dest) in [(&file, "/target-dir"), (&dir, "/target-file")] {
        let mut t2 = Test::new("parity_bind_kind_case");
        t2.rootfs = t.rootfs.clone();
        t2.config["root"]["path"] = t.rootfs.to_str().unwrap().into();
        t2.mount(serde_json::json!({
            "destination": dest, "type": "bind", "source": source, "options": ["bind"]
        }));
        t2.args(&["true"]);
        let out = t2.run();
        out.fails().stderr_has("not a directory");
        assert!(out.stderr.contains(source.to_str().unwrap()), "{out:?}");
        t2.assert_nothing_left(&t2.id);
    }
}

/// A bind source the container's user-namespace root cannot reach (below a 0700 directory
/// of the host's root) is mounted all the same: the runtime opens the sources, as runc does,
/// and the container sees what it may see there.
#[test]
fn bind_sources_are_opened_by_the_runtime_not_the_user_namespace_root() {
    let mut t = Test::new("parity_bind_userns");
    super::namespaces::new_user_namespace(&mut t);
    let private = t.path("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let shared = private.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(shared.join("file"), "seen\n").unwrap();
    fs::set_permissions(shared.join("file"), fs::Permissions::from_mode(0o644)).unwrap();
    t.mount(serde_json::json!({
        "destination": "/data", "type": "bind", "source": shared, "options": ["rbind", "ro"]
    }));
    t.sh("cat /data/file; touch /data/x 2>/dev/null || echo read-only");
    assert_eq!(t.output(), "seen\nread-only\n");
}
