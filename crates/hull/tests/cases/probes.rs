//! Defects that adversarial probes found (issue #17, part 3): what a container, a caller or
//! a damaged state directory can make hull do. Each test aims at a harmless target of its
//! own and checks that the attack is refused, or the damage contained.

use std::fs;
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use crate::util::*;

/// Replacing /etc/passwd with something that never ends or blocks, the container must not
/// hang or bloat an `exec` (docker exec, kubelet probes), which reads it to find HOME.
#[test]
fn exec_refuses_a_passwd_that_is_a_fifo_or_endless() {
    if skip_on_runc("runc 1.1.5 reads the container's /etc/passwd unbounded") {
        return;
    }
    let mut t = Test::new("probe_passwd");
    t.args(&["sleep", "600"]);
    let (out, _) = t.create(&t.id);
    out.ok();
    t.hull(&["start", &t.id]).ok();
    for (what, make) in [
        ("fifo", "rm /etc/passwd && mkfifo /etc/passwd"),
        ("endless", "rm /etc/passwd && ln -s /dev/zero /etc/passwd"),
    ] {
        // HOME set: this exec itself does not read the file.
        let c = Call::default();
        t.call(&["exec", "--env", "HOME=/", &t.id, "sh", "-c", make], &c)
            .ok();
        let began = Instant::now();
        let out = t.call(
            &["exec", &t.id, "true"],
            &Call {
                timeout: Some(Duration::from_secs(10)),
                ..Default::default()
            },
        );
        assert!(!out.timed_out, "{what}: exec hung: {out:?}");
        assert!(began.elapsed() < Duration::from_secs(5), "{what}: {out:?}");
        assert!(!out.success(), "{what}: {out:?}");
        assert!(
            out.stderr.contains("/etc/passwd") && out.stderr.contains("not a regular file"),
            "{what}: {out:?}"
        );
        out.one_line();
        // With HOME given, the file is not needed and the exec works.
        t.call(&["exec", "--env", "HOME=/", &t.id, "true"], &c).ok();
    }
}

/// A hostile image whose /etc/passwd is a FIFO: create fails at once, naming the file, and
/// leaves nothing behind.
#[test]
fn create_refuses_an_image_whose_passwd_is_a_fifo() {
    if skip_on_runc("runc 1.1.5 reads the container's /etc/passwd unbounded") {
        return;
    }
    let t = Test::new("probe_passwd_create");
    fs::remove_file(t.rootfs.join("etc/passwd")).unwrap();
    nix::unistd::mkfifo(
        &t.rootfs.join("etc/passwd"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    t.write_config();
    let out = t.call(
        &["run", "--bundle", &t.bundle_str(), &t.id],
        &Call {
            timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        },
    );
    assert!(!out.timed_out, "run hung: {out:?}");
    out.fails();
    assert!(
        out.stderr.contains("/etc/passwd") && out.stderr.contains("not a regular file"),
        "{out:?}"
    );
    t.assert_nothing_left(&t.id);
}

/// `--pid-file` in a directory others may write: a symlink planted at the name of the
/// temporary file must not make root-run hull write through it.
#[test]
fn pid_file_never_writes_through_a_planted_symlink() {
    let mut t = Test::new("probe_pidfile");
    t.args(&["true"]);
    t.write_config();
    let dir = t.mkdir("shared");
    let victim = t.path("victim");
    fs::write(&victim, "precious\n").unwrap();
    // Every name hull ever used for its temporary file (".<name>.<pid>"), for the pids
    // this call can get: the runtime's pid is the next one or close to it.
    let next: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for pid in next..next + 2000 {
        symlink(&victim, dir.join(format!(".pid.{pid}"))).unwrap();
    }
    let pid_file = dir.join("pid");
    let out = t.hull(&[
        "create",
        "--bundle",
        &t.bundle_str(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &t.id,
    ]);
    out.ok();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        Some(pid),
        t.state(&t.id)
            .and_then(|s| s["pid"].as_i64())
            .map(|p| p as i32)
    );
    assert!(fs::symlink_metadata(&pid_file).unwrap().is_file());
}

/// `start` whose state cannot be written (a full filesystem under `--root`) fails with the
/// container still created and not running; once there is room it starts.
#[test]
fn start_on_a_full_state_filesystem_fails_without_releasing_the_container() {
    if skip_on_runc("runc 1.1.5 releases the container before it writes the state") {
        return;
    }
    let mut t = Test::new("probe_start_full");
    let root = t.path("small-root");
    mount_tmpfs(&root);
    t.track(&runtime(), &root, &t.id);
    t.sh("touch /ran; sleep 600");
    t.write_config();
    let c = Call {
        root: Some(root.clone()),
        ..Default::default()
    };
    t.call(&["create", "--bundle", &t.bundle_str(), &t.id], &c)
        .ok();
    let filler = root.join("filler");
    let _ = fs::write(&filler, vec![0u8; 2 << 20]);
    let out = t.call(&["start", &t.id], &c);
    out.fails().stderr_has("no space left");
    let state = t.call(&["state", &t.id], &c);
    assert!(state.ok().stdout.contains("\"created\""), "{state:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !t.rootfs.join("ran").exists(),
        "the process ran after a failed start"
    );

    fs::remove_file(&filler).unwrap();
    t.call(&["start", &t.id], &c).ok();
    assert!(wait_until(STOP_TIMEOUT, || t.rootfs.join("ran").exists()));
    let state = t.call(&["state", &t.id], &c);
    assert!(state.ok().stdout.contains("\"running\""), "{state:?}");
    t.call(&["delete", "--force", &t.id], &c).ok();
}

/// An RLIMIT_NOFILE at or below the descriptors the init holds: `create` fails naming the
/// limit, instead of reporting a container that dies at `start`.
#[test]
fn create_names_an_rlimit_nofile_too_low_to_start() {
    if skip_on_runc("runc 1.1.5 words the failure differently") {
        return;
    }
    let mut t = Test::new("probe_nofile");
    t.config["process"]["rlimits"] =
        serde_json::json!([{ "type": "RLIMIT_NOFILE", "soft": 3, "hard": 3 }]);
    t.args(&["true"]);
    let (out, _) = t.create_fails();
    out.stderr_has("RLIMIT_NOFILE 3").one_line();
}

/// Files a caller names are read with a bound: /dev/zero as `exec --process`, `update -r`
/// or config.json fails at once in one line, without growing hull.
#[test]
fn endless_input_files_fail_in_one_line() {
    if skip_on_runc("runc 1.1.5 reads input files unbounded") {
        return;
    }
    let mut t = Test::new("probe_endless");
    t.args(&["sleep", "600"]);
    let (out, _) = t.create(&t.id);
    out.ok();
    let quick = Call {
        timeout: Some(Duration::from_secs(20)),
        ..Default::default()
    };
    for args in [
        vec!["exec", "--process", "/dev/zero", &t.id],
        vec!["update", "-r", "/dev/zero", &t.id],
    ] {
        let out = t.call(&args, &quick);
        assert!(!out.timed_out && !out.success(), "{out:?}");
        assert!(out.stderr.contains("larger than"), "{out:?}");
        out.one_line();
    }
    let other = t.new_id();
    fs::remove_file(t.bundle.join("config.json")).unwrap();
    symlink("/dev/zero", t.bundle.join("config.json")).unwrap();
    let out = t.call(&["create", "--bundle", &t.bundle_str(), &other], &quick);
    assert!(!out.timed_out && !out.success(), "{out:?}");
    assert!(out.stderr.contains("larger than"), "{out:?}");
    // (Not assert_nothing_left: the first container's init shares the bundle.)
    assert!(!t.root.join(&other).exists(), "state of {other} left");
}

/// A create that fails after writing its pid file (here: the `--pidfd-socket` peer hung
/// up) removes the file, and its error speaks of that socket, not of a console.
#[test]
fn a_failed_create_leaves_no_pid_file() {
    if skip_on_runc("runc 1.1.5 has no --pidfd-socket") {
        return;
    }
    let mut t = Test::new("probe_pidfile_left");
    t.args(&["sleep", "600"]);
    t.write_config();
    let sock = t.path("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // The peer takes the connection and hangs up at once.
    let peer = std::thread::spawn(move || drop(listener.accept()));
    let pid_file = t.path("init.pid");
    let out = t.hull(&[
        "create",
        "--bundle",
        &t.bundle_str(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--pidfd-socket",
        sock.to_str().unwrap(),
        &t.id,
    ]);
    peer.join().unwrap();
    out.fails().stderr_has("pidfd socket");
    assert!(
        !out.stderr.contains("pty") && !out.stderr.contains("console"),
        "{out:?}"
    );
    assert!(!pid_file.exists(), "pid file left: {out:?}");
    t.assert_nothing_left(&t.id);
}

/// `--preserve-fds` counts more descriptors than the caller passed: refused as runc does,
/// naming the first one missing (a count near u32::MAX once wrapped around and closed the
/// container's stdio without a word).
#[test]
fn preserve_fds_beyond_the_open_ones_is_refused() {
    if skip_on_runc("runc 1.1.5 does not check --preserve-fds (1.3 does)") {
        return;
    }
    let mut t = Test::new("probe_preserve");
    t.args(&["sh", "-c", "ls /proc/self/fd | wc -l"]);
    t.write_config();
    let a = open_fd(std::path::Path::new("/dev/null"));
    let b = open_fd(std::path::Path::new("/dev/null"));
    let c = Call {
        fds: vec![(raw(&a), 3), (raw(&b), 4)],
        ..Default::default()
    };
    let run = |id: &str, n: &str| {
        t.call(
            &["run", "--bundle", &t.bundle_str(), "--preserve-fds", n, id],
            &c,
        )
    };
    for n in ["3", "4294967295"] {
        let id = t.new_id();
        let out = run(&id, n);
        assert!(!out.success(), "{out:?}");
        assert!(
            out.stderr
                .contains(&format!("unable to stat preserved-fd 2 (of {n})")),
            "{out:?}"
        );
        t.assert_nothing_left(&id);
    }
    // The two passed: stdio, 3, 4, and the fd ls reads /proc/self/fd with.
    let out = run(&t.id, "2");
    assert_eq!(out.ok().stdout.trim(), "6", "{out:?}");
}

/// A container that may write its cgroups freezes a child cgroup of its own: `delete -f`
/// still ends it at once, thawing every descendant around the kill.
#[test]
fn delete_force_ends_a_container_that_froze_its_own_child_cgroup() {
    if skip_on_runc("runc 1.1.5 does not thaw cgroups the container froze itself") {
        return;
    }
    let mut t = Test::new("probe_frozen_child");
    let mounts = t.config["mounts"].as_array_mut().unwrap();
    for m in mounts.iter_mut() {
        if m["destination"] == "/sys/fs/cgroup" {
            m["options"] = serde_json::json!(["nosuid", "noexec", "nodev", "rw"]);
        }
    }
    t.config["linux"]["cgroupsPath"] = t.id.clone().into();
    t.config["linux"]["resources"]["pids"] = serde_json::json!({ "limit": 65536 });
    // The freezer's own directory: v1's freezer hierarchy, or the cgroup2 one.
    t.sh(
        "f=/sys/fs/cgroup/freezer; [ -d $f ] || f=/sys/fs/cgroup/unified; \
         [ -e $f/freezer.state ] || [ -e $f/cgroup.freeze ] || f=/sys/fs/cgroup; \
         mkdir $f/child && sh -c 'echo $$ > '$f'/child/cgroup.procs; exec sleep 600' & \
         sleep 0.3; \
         if [ -e $f/child/freezer.state ]; then echo FROZEN > $f/child/freezer.state; \
         else echo 1 > $f/child/cgroup.freeze; fi; \
         echo frozen > /tmp/ready; sleep 600",
    );
    let (out, _) = t.create(&t.id);
    out.ok();
    t.hull(&["start", &t.id]).ok();
    assert!(
        wait_until(STOP_TIMEOUT, || t.rootfs.join("tmp/ready").exists()),
        "the container did not freeze its child cgroup"
    );
    let began = Instant::now();
    let out = t.call(
        &["delete", "--force", &t.id],
        &Call {
            timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    );
    out.ok();
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    t.assert_nothing_left(&t.id);
}

/// A memory limit too small for the container's init: create fails naming the cause as
/// runc does, not "sync channel closed".
#[test]
fn a_memory_limit_too_small_for_the_init_is_named() {
    if skip_on_runc("runc 1.1.5 words it differently") {
        return;
    }
    let mut t = Test::new("probe_tiny_memory");
    t.config["linux"]["cgroupsPath"] = t.id.clone().into();
    t.config["linux"]["resources"]["memory"] = serde_json::json!({ "limit": 65536 });
    t.args(&["true"]);
    let (out, _) = t.create(&t.id);
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains("memory limit too low")
            || out.stderr.contains("unable to set memory limit to"),
        "{out:?}"
    );
    out.one_line();
    t.assert_nothing_left(&t.id);
}

/// One container's state.json emptied: `list` still shows the others (warning about it),
/// and `delete -f` of it ends its processes and removes its cgroups, found by its id.
#[test]
fn a_corrupt_state_hides_nothing_else_and_delete_force_cleans_up() {
    if skip_on_runc("runc 1.1.5 cannot delete a container whose state it cannot read") {
        return;
    }
    let mut t = Test::new("probe_corrupt");
    t.args(&["sleep", "600"]);
    let broken = t.id.clone();
    let other = t.new_id();
    let mut pids = Vec::new();
    for id in [&broken, &other] {
        t.config["linux"]["cgroupsPath"] = id.clone().into();
        t.config["linux"]["resources"]["pids"] = serde_json::json!({ "limit": 50 });
        let (out, pid) = t.create(id);
        out.ok();
        pids.push(pid.unwrap());
    }
    let dirs = cgroup_dirs_of(pids[0]);
    assert!(
        dirs.iter().any(|d| d.ends_with(&broken)),
        "no cgroup named after {broken}: {dirs:?}"
    );
    fs::write(t.root.join(&broken).join("state.json"), "").unwrap();

    let out = t.hull(&["list", "-q"]);
    out.ok();
    assert_eq!(out.stdout.trim(), other, "{out:?}");
    assert!(
        out.stderr
            .starts_with(&format!("load container {broken}: ")),
        "{out:?}"
    );

    let out = t.hull(&["delete", "--force", &broken]);
    out.ok();
    assert!(
        wait_until(STOP_TIMEOUT, || is_gone(pids[0])),
        "init of {broken} alive"
    );
    for d in &dirs {
        assert!(!d.exists(), "{} left", d.display());
    }
    assert!(!t.root.join(&broken).exists());
    assert!(!is_gone(pids[1]), "the other container was touched");
    assert_eq!(t.status(&other), "created");
}

/// The cgroup directories of `pid` in every hierarchy, from /proc/PID/cgroup.
fn cgroup_dirs_of(pid: i32) -> Vec<std::path::PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let mount = if ctrl.is_empty() {
            "unified".to_string()
        } else {
            ctrl.trim_start_matches("name=").to_string()
        };
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(mount)
            .join(path.trim_start_matches('/'));
        if dir.exists() {
            out.push(dir);
        }
    }
    out
}
