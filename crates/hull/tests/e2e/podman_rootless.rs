//! Rootless podman 4.3 with `--runtime hull`: an unprivileged user (no account on the host:
//! a private mount namespace lays an overlay over /etc that names it and gives it host ids
//! 200000..265535 in /etc/subuid and /etc/subgid) runs, execs, stops and removes containers,
//! with a volume and with `--userns=keep-id`. Podman runs hull inside its own user namespace
//! (uid 0 there, the user on the host), which is how rootless podman calls every runtime;
//! hull keeps its state under `$XDG_RUNTIME_DIR/hull`, runc's rule. This host has cgroup v1,
//! where a rootless container has no cgroups of its own (as with runc); the guest runs the
//! same scenario on cgroup v2 with the user's systemd.

use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;

use crate::common::{hull, kill_processes_under, run, write_script, CallLog, Output, Scratch};

const PODMAN: &str = "/usr/bin/podman";
const IMAGE: &str = "localhost/busybox:rootless";
/// The unprivileged user: no account on the host, only in the test's private /etc.
const UID: u32 = 64_140;

struct RootlessPodman {
    s: Scratch,
    /// Runs its arguments as the user, in the private mount namespace.
    as_user: PathBuf,
    /// The user's XDG_RUNTIME_DIR: podman's runtime files, hull's state (`hull/`).
    xdg: PathBuf,
    calls: CallLog,
}

impl RootlessPodman {
    fn new(name: &str) -> RootlessPodman {
        let s = Scratch::new(name);
        let d = s.dir.clone();
        for sub in ["etc/up", "etc/work"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        let user_dirs = ["home", "run", "storage", "tmp", "xdg", "vol", "bin", "log"];
        for sub in user_dirs {
            fs::create_dir_all(d.join(sub)).unwrap();
            chown(d.join(sub), Some(UID), Some(UID)).unwrap();
        }
        fs::set_permissions(d.join("xdg"), fs::Permissions::from_mode(0o700)).unwrap();
        let up = d.join("etc/up");
        let line = |file: &str, add: String| {
            let mut text = fs::read_to_string(format!("/etc/{file}")).unwrap_or_default();
            text.push_str(&add);
            fs::write(up.join(file), text).unwrap();
        };
        line(
            "passwd",
            format!(
                "hullrl:x:{UID}:{UID}::{}:/bin/sh\n",
                d.join("home").display()
            ),
        );
        line("group", format!("hullrl:x:{UID}:\n"));
        for f in ["subuid", "subgid"] {
            fs::write(up.join(f), "hullrl:200000:65536\n").unwrap();
        }
        // The build directory may be under a home the user cannot enter: a copy, named
        // `hull` (podman looks a `--runtime` up by its file name), behind a logging wrapper.
        let bin = d.join("bin/hull-bin");
        fs::copy(hull(), &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        let calls = d.join("log/calls.log");
        write_script(
            &d.join("bin/hull"),
            &format!(
                "echo \"$*\" >> {}\nexec {} \"$@\"",
                calls.display(),
                bin.display()
            ),
        );
        // Private first: on a host whose / is shared (systemd's), a namespace that kept it
        // shared would pass the overlay on to the host's /etc. Shared again after, inside
        // the namespace only, for podman.
        let as_user = d.join("as-user");
        write_script(
            &as_user,
            &format!(
                "exec unshare --mount --propagation private /bin/sh -c 'mount -t overlay overlay \
                 -o lowerdir=/etc,upperdir={d}/etc/up,workdir={d}/etc/work /etc && mount \
                 --make-rshared / && exec setpriv \
                 --reuid={UID} --regid={UID} --init-groups env HOME={d}/home \
                 XDG_RUNTIME_DIR={d}/xdg USER=hullrl \"$@\"' sh \"$@\"",
                d = d.display()
            ),
        );
        let pm = RootlessPodman {
            xdg: d.join("xdg"),
            calls: CallLog::new(calls),
            as_user,
            s,
        };
        let rootfs = pm.s.rootfs_tar();
        fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o644)).unwrap();
        pm.ok(&["import", "-q", &rootfs.to_string_lossy(), IMAGE]);
        pm
    }

    fn podman(&self, args: &[&str]) -> Output {
        let d = &self.s.dir;
        let mut c = Command::new(&self.as_user);
        c.arg(PODMAN)
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--runtime")
            .arg(d.join("bin/hull"))
            .args(["--events-backend", "file", "--cgroup-manager", "cgroupfs"])
            .args(["--storage-driver", "vfs"])
            .args(args)
            // The user may not enter the test's own working directory.
            .current_dir("/");
        run(&mut c)
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.podman(args);
        assert!(out.success(), "{out}\nhull calls:\n{}", self.calls.text());
        out
    }

    /// The container ids hull keeps state for under the user's XDG_RUNTIME_DIR (not its
    /// `~seccomp-cache`).
    fn hull_state(&self) -> Vec<String> {
        let mut ids = crate::common::dir_names(&self.xdg.join("hull"));
        ids.retain(|n| !n.starts_with('~'));
        ids
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-f", "-a", "-t", "0"]);
        // Rootless podman leaves a pause process holding its user namespace: ours, by pid.
        let pid_file = self.xdg.join("libpod/tmp/pause.pid");
        if let Some(pid) = fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) of the pause process this test's podman started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        kill_processes_under(&self.s.dir);
    }
}

#[test]
fn rootless_podman_runs_execs_stops_and_removes_with_hull() {
    let pm = RootlessPodman::new("podman-rootless");
    // Root inside is the user; ids 1.. are its subordinate ones.
    let out = pm.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    let uid = UID.to_string();
    assert_eq!(
        words,
        ["0", "0", &uid, "1", "1", "200000", "65536"],
        "{out}"
    );

    let vol = pm.s.path("vol");
    fs::write(vol.join("in"), "from the host\n").unwrap();
    chown(vol.join("in"), Some(UID), Some(UID)).unwrap();
    let volume = format!("{}:/vol", vol.display());
    let id = pm
        .ok(&[
            "run",
            "-d",
            "--name",
            "box",
            "--network",
            "none",
            "-v",
            &volume,
            IMAGE,
            "sleep",
            "300",
        ])
        .stdout
        .trim()
        .to_string();
    assert!(
        pm.hull_state().contains(&id),
        "hull's state for {id} is not under $XDG_RUNTIME_DIR/hull: {:?}",
        pm.hull_state()
    );
    let out = pm.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "id -u; cat /vol/in; echo out > /vol/out; tr '\\0' ' ' </proc/1/cmdline",
    ]);
    assert_eq!(out.stdout, "0\nfrom the host\nsleep 300 ", "{out}");
    let written = fs::metadata(vol.join("out")).unwrap();
    assert_eq!(written.uid(), UID, "root inside writes as the user");
    pm.ok(&["stop", "-t", "1", "box"]);
    let state = pm.ok(&["inspect", "--format", "{{.State.Status}}", "box"]);
    assert_eq!(state.stdout.trim(), "exited", "{state}");
    pm.ok(&["rm", "box"]);
    assert!(pm.hull_state().is_empty(), "{:?}", pm.hull_state());
    for sub in ["create", "start", "exec", "delete"] {
        assert!(
            !pm.calls.of(sub, &id).is_empty(),
            "no hull {sub} for {id}:\n{}",
            pm.calls.text()
        );
    }

    // keep-id: the user is itself inside, in a user namespace podman asks hull to make.
    let out = pm.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=keep-id",
        IMAGE,
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(out.stdout, format!("{UID}\n{UID}\n"), "{out}");
}

/// A user of the guest with its own systemd instance (lingering) and the subordinate ids
/// `useradd` gives it.
const SD_USER: &str = "hullpodman";
const SD_UID: u32 = 1510;

/// Makes [`SD_USER`] once per boot and waits for its session bus.
fn lingering_podman_user() -> PathBuf {
    let runtime_dir = PathBuf::from(format!("/run/user/{SD_UID}"));
    if run(Command::new("id").arg(SD_USER)).code != 0 {
        let uid = SD_UID.to_string();
        crate::common::run_ok(
            Command::new("useradd").args(["-m", "-u", &uid, "-s", "/bin/sh", SD_USER]),
        );
    }
    crate::common::run_ok(Command::new("loginctl").args(["enable-linger", SD_USER]));
    let bus = runtime_dir.join("bus");
    assert!(
        crate::util::wait_until(std::time::Duration::from_secs(60), || bus.exists()),
        "user@{SD_UID}.service made no {}",
        bus.display()
    );
    runtime_dir
}

/// Rootless podman on its default cgroup manager, systemd (the user's own instance), as on
/// a stock distribution: hull, run by podman inside podman's user namespace, asks the
/// user's systemd over the session bus for the container's scope, with the limits the
/// user's delegation allows.
#[test]
#[ignore = "needs systemd as PID 1 and cgroup v2: runs in the VM guest (tests/vm/guest-tests.sh clients)"]
fn systemd_rootless_podman_runs_in_a_scope_of_the_users_systemd() {
    crate::common::assert_systemd_host();
    let runtime_dir = lingering_podman_user();
    let s = Scratch::new("podman-rootless-sd");
    let d = s.dir.clone();
    for sub in ["run", "storage", "tmp", "bin", "log"] {
        fs::create_dir_all(d.join(sub)).unwrap();
        chown(d.join(sub), Some(SD_UID), Some(SD_UID)).unwrap();
    }
    let bin = d.join("bin/hull-bin");
    fs::copy(hull(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let calls = CallLog::new(d.join("log/calls.log"));
    write_script(
        &d.join("bin/hull"),
        &format!(
            "echo \"$*\" >> {}\nexec {} \"$@\"",
            calls.path().display(),
            bin.display()
        ),
    );
    let podman = |args: &[&str]| {
        let mut c = Command::new("runuser");
        c.args(["-u", SD_USER, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR={}", runtime_dir.display()))
            .arg(format!(
                "DBUS_SESSION_BUS_ADDRESS=unix:path={}/bus",
                runtime_dir.display()
            ))
            .arg(format!("HOME=/home/{SD_USER}"))
            .arg(PODMAN)
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--runtime")
            .arg(d.join("bin/hull"))
            .args(["--cgroup-manager", "systemd", "--events-backend", "file"])
            .args(["--storage-driver", "vfs"])
            .args(args)
            .current_dir("/");
        let out = run(&mut c);
        assert!(out.success(), "{out}\nhull calls:\n{}", calls.text());
        out
    };
    // Whatever happens, nothing of the user's is left running.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = run(Command::new("loginctl").args(["terminate-user", SD_USER]));
            kill_processes_under(&self.0);
        }
    }
    let _cleanup = Cleanup(d.clone());
    let tar = s.rootfs_tar();
    fs::set_permissions(&tar, fs::Permissions::from_mode(0o644)).unwrap();
    podman(&["import", "-q", &tar.to_string_lossy(), IMAGE]);
    let id = podman(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cgroupns",
        "host",
        IMAGE,
        "sleep",
        "300",
    ])
    .stdout
    .trim()
    .to_string();
    assert!(!calls.of("create", &id).is_empty(), "{}", calls.text());
    assert!(
        calls.text().lines().any(|l| l.contains("--systemd-cgroup")),
        "podman did not ask for the systemd driver:\n{}",
        calls.text()
    );
    let out = podman(&["exec", "box", "cat", "/proc/self/cgroup"]);
    let path = out
        .stdout
        .trim()
        .strip_prefix("0::")
        .unwrap_or("")
        .to_string();
    assert!(
        path.contains(&format!("/user@{SD_UID}.service/")) && path.ends_with(".scope"),
        "not in a scope of the user's systemd: {out}"
    );
    let cg = PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |f: &str| {
        fs::read_to_string(cg.join(f))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), "67108864", "{}", cg.display());
    assert_eq!(read("pids.max"), "50", "{}", cg.display());
    podman(&["stop", "-t", "1", "box"]);
    podman(&["rm", "box"]);
    assert!(
        crate::util::wait_until(std::time::Duration::from_secs(10), || !cg.exists()),
        "{} is left after rm",
        cg.display()
    );
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=keep-id",
        IMAGE,
        "id",
        "-u",
    ]);
    assert_eq!(out.stdout.trim(), SD_UID.to_string(), "{out}");
}
