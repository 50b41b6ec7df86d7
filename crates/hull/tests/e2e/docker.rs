//! docker 20.10 (dockerd with the containerd it starts itself, the runc v2 shim) drives hull.
//! Every test starts a private dockerd under its own Scratch dir — `--data-root`,
//! `--exec-root` (and so the managed containerd's root, state and sockets), `--pidfile`, the
//! API socket, TMPDIR (the shim's console sockets and process.json files), DOCKER_CONFIG for
//! the client — with no bridge, no iptables, the cgroupfs driver and `--cgroup-parent` set to
//! the Scratch cgroup parent (or, for the `systemd_` tests, dockerd's default driver: systemd
//! on a systemd host with cgroup v2), imports the busybox rootfs as `localhost/busybox:e2e`,
//! and runs every container with `--network none`.
//!
//! hull is registered the two ways users do: `dockerd --add-runtime hull=<wrapper>` with
//! `docker run --runtime hull`, and a `runtimes` entry plus `default-runtime` in daemon.json.
//! The wrapper logs every call, so the tests check that the shim really ran hull.
//!
//! Two things dockerd puts outside the Scratch dir, whatever its flags: the 1.6 shim's ttrpc
//! socket `/run/containerd/s/<sha256>` (removed by the shim when it exits; teardown removes
//! those left), and the empty directory `/run/docker/plugins` (a fixed path, shared by every
//! dockerd; left alone). Its trust key goes where daemon.json's `deprecated-key-path` says
//! (default /etc/docker/key.json). `--ip-forward=false` keeps it from setting the host's
//! `net.ipv4.ip_forward`.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{assert_scope_gone, assert_scope_runs, assert_systemd_host, assert_unit_props};
use crate::common::{assert_shim_ran_hull, hull_wrapper, kill_processes_under, shim_logs};
use crate::common::{bundle_cgroups_path, journal, stop_units, Cgroups, Scope};
use crate::common::{run, run_timeout, shim_socket, CallLog, Daemon, Output, Scratch};
use crate::pty::shell_session;
use crate::util;

/// Debian's docker.io client (not the newer client some hosts have in /usr/local/bin).
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";
const IMAGE: &str = "localhost/busybox:e2e";
/// The containerd namespace dockerd uses.
const NS: &str = "moby";

/// How dockerd is told about hull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// `dockerd --add-runtime hull=<wrapper>`; every `docker run` passes `--runtime hull`.
    Flag,
    /// daemon.json: `"runtimes": {"hull": {"path": <wrapper>}}, "default-runtime": "hull"`;
    /// `docker run` names no runtime.
    Config,
}

/// One test's private dockerd.
struct Docker {
    /// Declared before `s`: stopped before the Scratch teardown.
    daemon: Daemon,
    s: Scratch,
    reg: Registration,
    cgroups: Cgroups,
    /// `unix://<scratch>/docker.sock`
    host: String,
    /// dockerd's `--cgroup-parent` (cgroupfs): every container's cgroup is `<parent>/<id>`.
    parent: String,
    /// The wrapper's call log.
    calls: CallLog,
    /// The managed containerd's gRPC socket (the shims' `-address`).
    containerd_sock: PathBuf,
    /// Container ids this test saw (for the shim sockets teardown removes).
    ids: RefCell<Vec<String>>,
}

impl Docker {
    /// A private dockerd on the cgroupfs driver, running, with the busybox image imported.
    fn new(name: &str, reg: Registration) -> Docker {
        Docker::with(name, reg, Cgroups::Cgroupfs)
    }

    /// A private dockerd on the driver `cgroups` says, running, with the busybox image
    /// imported.
    fn with(name: &str, reg: Registration, cgroups: Cgroups) -> Docker {
        let s = Scratch::new(name);
        let parent = match cgroups {
            Cgroups::Cgroupfs => s.cgroup_parent(),
            Cgroups::ClientDefault => String::new(),
        };
        let d = s.dir.clone();
        for sub in ["data", "exec", "tmp", "client", "bin"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        let calls = d.join("calls.log");
        let wrapper = d.join("bin/hull");
        hull_wrapper(&wrapper, &calls);
        fs::write(
            d.join("daemon.json"),
            daemon_json(&d, &wrapper, reg).to_string(),
        )
        .unwrap();
        let sock = d.join("docker.sock");
        let host = format!("unix://{}", sock.display());
        let mut cmd = Command::new(DOCKERD);
        cmd.env("TMPDIR", d.join("tmp"))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(&host)
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                // Else the bridge driver sets net.ipv4.ip_forward=1 on the host.
                "--ip-forward=false",
                "--shutdown-timeout",
                "2",
            ]);
        if cgroups == Cgroups::Cgroupfs {
            cmd.args([
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--cgroup-parent",
            ])
            .arg(&parent);
        }
        if reg == Registration::Flag {
            cmd.arg("--add-runtime")
                .arg(format!("hull={}", wrapper.display()));
        }
        let probe_host = host.clone();
        let client_cfg = d.join("client");
        let daemon = Daemon::start("dockerd", &d, &mut cmd, move || {
            sock.exists()
                && run(client(&probe_host, &client_cfg).args([
                    "version",
                    "--format",
                    "{{.Server.Version}}",
                ]))
                .success()
        });
        let dk = Docker {
            daemon,
            reg,
            cgroups,
            host,
            parent,
            calls: CallLog::new(calls),
            containerd_sock: d.join("exec/containerd/containerd.sock"),
            ids: RefCell::new(Vec::new()),
            s,
        };
        let tar = dk.s.rootfs_tar();
        dk.ok(&[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            &tar.to_string_lossy(),
            IMAGE,
        ]);
        dk
    }

    /// `docker ARGS…` against this test's daemon.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = client(&self.host, &self.s.path("client"));
        c.args(args);
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    /// Runs docker and panics with the diagnostics unless it succeeded.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.docker(args);
        assert!(out.success(), "{}", self.diag(&out));
        out
    }

    /// The flags every container of this test gets: no network, hull (Flag registration).
    fn ctr_flags(&self) -> Vec<&'static str> {
        let mut f = vec!["--network", "none"];
        if self.reg == Registration::Flag {
            f.extend_from_slice(&["--runtime", "hull"]);
        }
        f
    }

    /// `docker run <ctr_flags> ARGS…` (ARGS hold the run options, the image and the command).
    fn run_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(&["run"]);
        c.args(self.ctr_flags()).args(args);
        c
    }

    fn run_ctr(&self, args: &[&str]) -> Output {
        run(&mut self.run_cmd(args))
    }

    /// `docker run -d --name NAME <ctr_flags> ARGS…`; returns the full container id.
    #[track_caller]
    fn start_detached(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["-d", "--name", name];
        all.extend_from_slice(args);
        let out = run(&mut self.run_cmd(&all));
        assert!(out.success(), "{}", self.diag(&out));
        let id = out.stdout.trim().to_owned();
        assert_eq!(id.len(), 64, "container id from docker run -d:\n{out}");
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// `docker inspect -f FORMAT NAME`, trimmed.
    #[track_caller]
    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name])
            .stdout
            .trim()
            .to_owned()
    }

    /// Waits until docker reports `status` for the container.
    #[track_caller]
    fn wait_status(&self, name: &str, status: &str) {
        let mut last = String::new();
        let ok = util::wait_until(Duration::from_secs(20), || {
            let out = self.docker(&["inspect", "-f", "{{.State.Status}}", name]);
            last = format!("{}{}", out.stdout.trim(), out.stderr.trim());
            last == status
        });
        assert!(ok, "{name} is {last:?}, not {status:?}\n{}", self.logs());
    }

    /// The cgroup of container `id` (cgroupfs driver, `--cgroup-parent` of the daemon).
    fn ctr_cgroup(&self, id: &str) -> String {
        assert_eq!(self.cgroups, Cgroups::Cgroupfs, "no cgroup parent of ours");
        format!("{}/{id}", self.parent)
    }

    /// The systemd scope of container `id` (the default driver on a systemd host): asserts
    /// the shim's bundle asks for `system.slice:docker:<id>`, dockerd's default parent.
    #[track_caller]
    fn scope(&self, id: &str) -> Scope {
        let path = bundle_cgroups_path(&self.bundle(id));
        assert_eq!(
            path,
            format!("system.slice:docker:{id}"),
            "cgroupsPath\n{}",
            self.logs()
        );
        Scope::of(&path).unwrap()
    }

    /// The shim's task dir: a bundle per container.
    fn tasks(&self) -> PathBuf {
        self.s
            .path("exec/containerd/daemon/io.containerd.runtime.v2.task")
            .join(NS)
    }

    /// The bundle the shim made for `id` (hull's `--log` is `<bundle>/log.json`).
    fn bundle(&self, id: &str) -> PathBuf {
        self.tasks().join(id)
    }

    /// The id of the last container the wrapper saw created (works after `--rm` too).
    fn last_created(&self) -> String {
        let id = self
            .calls
            .text()
            .lines()
            .filter(|l| l.contains(" create --bundle "))
            .filter_map(|l| l.split_whitespace().next_back())
            .next_back()
            .unwrap_or_default()
            .to_owned();
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Asserts hull (through the wrapper) created and started `id` with the flags the shim
    /// passes: a --root in dockerd's exec root, its log in the bundle as JSON.
    #[track_caller]
    fn assert_hull_ran(&self, id: &str) {
        assert_eq!(id.len(), 64, "not a container id: {id:?}\n{}", self.logs());
        let root = format!("{}/runtime-*", self.s.path("exec").display());
        let systemd = self.cgroups == Cgroups::ClientDefault;
        let bundle = self.bundle(id);
        assert_shim_ran_hull(&self.calls, id, &root, &bundle, systemd, || self.logs());
    }

    fn diag(&self, out: &Output) -> String {
        format!("{out}\n{}", self.logs())
    }

    /// The runtime calls, hull's logs (`<bundle>/log.json` of every live bundle), and the
    /// daemon's log tail.
    fn logs(&self) -> String {
        shim_logs(&self.calls, &self.tasks(), None, &self.daemon, 40)
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Through docker first (hull's kill and delete), then the daemon (it stops its
        // containerd), then whatever is left is the Scratch's; then the shim sockets outside.
        let listed = self.docker(&["ps", "-a", "-q", "--no-trunc"]);
        let ids: Vec<String> = listed
            .stdout
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let mut rm = self.cmd(&["rm", "-f", "-v"]);
            rm.args(&ids);
            let _ = run_timeout(&mut rm, Duration::from_secs(30));
        }
        self.ids.borrow_mut().extend(ids);
        self.daemon.stop();
        kill_processes_under(&self.s.dir);
        for id in self.ids.borrow().iter().filter(|id| id.len() == 64) {
            let _ = fs::remove_file(shim_socket(&self.containerd_sock, NS, id));
        }
        if self.cgroups == Cgroups::ClientDefault {
            let units: Vec<String> = self
                .ids
                .borrow()
                .iter()
                .filter(|id| id.len() == 64)
                .map(|id| format!("docker-{id}.scope"))
                .collect();
            stop_units(&units);
        }
    }
}

/// The docker client for the daemon at `host`, with its config dir at `cfg` and nothing
/// from the caller's environment that would point it elsewhere.
fn client(host: &str, cfg: &Path) -> Command {
    let mut c = Command::new(DOCKER);
    c.env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", cfg)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .arg("-H")
        .arg(host);
    c
}

/// daemon.json of a private dockerd under `d`.
fn daemon_json(d: &Path, wrapper: &Path, reg: Registration) -> serde_json::Value {
    // Without it dockerd writes /etc/docker/key.json.
    let mut conf = json!({ "deprecated-key-path": d.join("key.json") });
    if reg == Registration::Config {
        conf["runtimes"] = json!({ "hull": { "path": wrapper } });
        conf["default-runtime"] = json!("hull");
    }
    conf
}

/// Capability sets and NoNewPrivs of `/proc/self/status` text.
fn caps_of(status: &str) -> (u64, u64, String) {
    let field = |k| util::status_field(status, k).unwrap_or_default();
    (
        u64::from_str_radix(field("CapEff"), 16).unwrap_or(u64::MAX),
        u64::from_str_radix(field("CapBnd"), 16).unwrap_or(u64::MAX),
        field("NoNewPrivs").to_owned(),
    )
}

#[test]
fn run_env_workdir_user_exit_codes() {
    let dk = Docker::new("dk-run", Registration::Flag);
    let out = dk.run_ctr(&[
        "--name",
        "envctr",
        "-e",
        "GREETING=hello from docker",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        IMAGE,
        "sh",
        "-c",
        "echo \"$GREETING\"; pwd; id -u; id -g",
    ]);
    assert!(out.success(), "{}", dk.diag(&out));
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["hello from docker", "/tmp", "1000", "1000"],
        "{}",
        dk.diag(&out)
    );
    let id = dk.inspect("envctr", "{{.Id}}");
    dk.assert_hull_ran(&id);
    assert_eq!(dk.inspect("envctr", "{{.State.ExitCode}}"), "0");
    // The shim deleted the container from hull once it exited.
    assert!(
        !dk.calls.of("delete", &id).is_empty(),
        "no hull delete of {id}:\n{}",
        dk.logs()
    );

    for code in [0, 3] {
        let script = format!("exit {code}");
        let out = dk.run_ctr(&["--rm", IMAGE, "sh", "-c", &script]);
        assert_eq!(out.code, code, "{}", dk.diag(&out));
        let id = dk.last_created();
        dk.assert_hull_ran(&id);
    }
    // The image's CMD.
    let out = dk.run_ctr(&["--rm", "-i", IMAGE]);
    assert!(out.success(), "{}", dk.diag(&out));
}

#[test]
fn run_read_only_tmpfs_volume() {
    let dk = Docker::new("dk-fs", Registration::Flag);
    let vol = dk.s.path("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("from-host"), "host data\n").unwrap();
    let vol_arg = format!("{}:/vol", vol.display());
    let out = dk.run_ctr(&[
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m,mode=1777",
        "-v",
        &vol_arg,
        IMAGE,
        "sh",
        "-c",
        "touch /rootfile 2>/dev/null && echo root-writable || echo root-ro; \
         grep ' /scratch ' /proc/mounts; \
         echo tmp > /scratch/f && cat /scratch/f; \
         cat /vol/from-host; echo ctr data > /vol/from-ctr",
    ]);
    assert!(out.success(), "{}", dk.diag(&out));
    let text = &out.stdout;
    assert!(text.contains("root-ro"), "{}", dk.diag(&out));
    let tmpfs = text
        .lines()
        .find(|l| l.contains(" /scratch "))
        .unwrap_or_else(|| panic!("no /scratch mount:\n{}", dk.diag(&out)));
    assert!(
        tmpfs.starts_with("tmpfs /scratch tmpfs") && tmpfs.contains("size=1024k"),
        "{tmpfs}\n{}",
        dk.diag(&out)
    );
    assert!(text.contains("tmp\n"), "{}", dk.diag(&out));
    assert!(text.contains("host data"), "{}", dk.diag(&out));
    assert_eq!(
        fs::read_to_string(vol.join("from-ctr")).unwrap_or_default(),
        "ctr data\n",
        "{}",
        dk.diag(&out)
    );
    let id = dk.last_created();
    dk.assert_hull_ran(&id);
    // A read-only volume stays read-only.
    let ro_arg = format!("{}:/vol:ro", vol.display());
    let out = dk.run_ctr(&[
        "--rm",
        "-v",
        &ro_arg,
        IMAGE,
        "sh",
        "-c",
        "echo x > /vol/nope 2>/dev/null && echo writable || echo ro",
    ]);
    assert!(out.success(), "{}", dk.diag(&out));
    assert_eq!(out.stdout.trim(), "ro", "{}", dk.diag(&out));
    assert!(!vol.join("nope").exists());
}

#[test]
fn run_resources_stats_update() {
    let dk = Docker::new("dk-res", Registration::Flag);
    let id = dk.start_detached(
        "limited",
        &[
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--cpus",
            "0.5",
            IMAGE,
            "sleep",
            "300",
        ],
    );
    dk.assert_hull_ran(&id);
    let cg = util::CgView::of(&dk.ctr_cgroup(&id));
    assert_eq!(cg.memory_limit(), "67108864");
    assert_eq!(cg.pids_max(), "50");
    assert_eq!(cg.cpu_quota_period(), ("50000".into(), "100000".into()));
    let pid: i32 = dk.inspect("limited", "{{.State.Pid}}").parse().unwrap();
    let procs = cg.procs();
    assert!(procs.contains(&pid), "init {pid} not in {cg:?}: {procs:?}");
    // What the container sees of its own limits.
    let [mem, pids, _, quota] = cg.inside_files();
    let script = format!("cat {mem} {pids}; cut -d' ' -f1 {quota}");
    let out = dk.ok(&["exec", "limited", "sh", "-c", &script]);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["67108864", "50", "50000"],
        "{}",
        dk.diag(&out)
    );

    // stats: dockerd asks containerd, which reads the cgroup hull made.
    let out = dk.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "limited",
    ]);
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(
        fields.len() == 5 && fields[0] == "limited" && fields[1] == "1" && fields[4] == "64MiB",
        "{}",
        dk.diag(&out)
    );

    // update: the shim runs `hull update --resources -` with the new limits.
    dk.ok(&[
        "update",
        "--memory",
        "32m",
        "--memory-swap",
        "64m",
        "--pids-limit",
        "40",
        "limited",
    ]);
    assert_eq!(cg.memory_limit(), "33554432");
    // dockerd 20.10 on cgroup v2 looks for memory.swap.max in the root cgroup, finds none,
    // and drops every swap limit ("Memory limited without swap"), whatever the runtime.
    let info = dk.ok(&["info", "--format", "{{.SwapLimit}}"]);
    if info.stdout.trim() == "true" {
        assert_eq!(cg.memory_swap_limit(), "67108864");
    } else if cg.is_v2() {
        assert_eq!(cg.memory_swap_limit(), "max");
    }
    assert_eq!(cg.pids_max(), "40");
    assert!(
        dk.calls
            .of("update", &id)
            .iter()
            .any(|c| c.contains("update --resources -")),
        "no hull update of {id}:\n{}",
        dk.logs()
    );
    assert_eq!(dk.inspect("limited", "{{.HostConfig.Memory}}"), "33554432");
}

#[test]
fn run_caps_and_no_new_privileges() {
    let dk = Docker::new("dk-caps", Registration::Flag);
    let status = |extra: &[&str]| {
        let mut args = vec!["--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "cat", "/proc/self/status"]);
        let out = dk.run_ctr(&args);
        assert!(out.success(), "{}", dk.diag(&out));
        caps_of(&out.stdout)
    };
    let chown = util::cap_mask(&["CAP_CHOWN"]);
    let net_bind = util::cap_mask(&["CAP_NET_BIND_SERVICE"]);
    let (eff, bnd, nnp) = status(&[]);
    assert_ne!(eff & chown, 0, "default set lacks CAP_CHOWN: {eff:x}");
    assert_ne!(
        eff & net_bind,
        0,
        "default set lacks NET_BIND_SERVICE: {eff:x}"
    );
    assert_eq!(eff, bnd);
    assert_eq!(nnp, "0");

    let (eff, bnd, _) = status(&["--cap-drop", "NET_BIND_SERVICE"]);
    assert_eq!(eff & net_bind, 0, "{eff:x}");
    assert_eq!(bnd & net_bind, 0, "{bnd:x}");
    assert_ne!(eff & chown, 0, "{eff:x}");

    let (eff, bnd, nnp) = status(&[
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--security-opt",
        "no-new-privileges",
    ]);
    assert_eq!((eff, bnd), (chown, chown));
    assert_eq!(nnp, "1");
    let id = dk.last_created();
    dk.assert_hull_ran(&id);
    // The capability really is gone: chown needs CAP_CHOWN.
    let out = dk.run_ctr(&[
        "--rm",
        "--cap-drop",
        "CHOWN",
        IMAGE,
        "sh",
        "-c",
        "touch /f; chown 1000 /f",
    ]);
    assert_eq!(out.code, 1, "{}", dk.diag(&out));
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        dk.diag(&out)
    );
}

/// Whether this host runs AppArmor as dockerd sees it (the guest of tests/vm does; this CI
/// machine does not): enabled, with securityfs to load profiles through.
fn apparmor_host() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
        && Path::new("/sys/kernel/security/apparmor").is_dir()
}

/// On a host with AppArmor docker asks for its docker-default profile (it loads it at start)
/// and hull applies it to the container's process and to what `exec` adds: the profile's
/// `deny mount` holds even with CAP_SYS_ADMIN; `apparmor=unconfined` lifts it. On a host
/// without AppArmor docker asks for no profile and the same mount works.
#[test]
fn apparmor_docker_default() {
    let dk = Docker::new("dk-aa", Registration::Flag);
    let probe = "cat /proc/self/attr/current 2>/dev/null || echo no-label; \
                 mount -t tmpfs t /mnt 2>&1 && echo mounted; true";
    let id = dk.start_detached("aa", &["--cap-add", "SYS_ADMIN", IMAGE, "sleep", "300"]);
    dk.assert_hull_ran(&id);
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dk.bundle(&id).join("config.json")).unwrap())
            .unwrap();
    let profile = &config["process"]["apparmorProfile"];
    let exec = dk.ok(&["exec", "aa", "sh", "-c", probe]);
    let unconfined = dk.run_ctr(&[
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "apparmor=unconfined",
        IMAGE,
        "sh",
        "-c",
        probe,
    ]);
    assert!(unconfined.success(), "{}", dk.diag(&unconfined));
    if apparmor_host() {
        assert_eq!(profile, "docker-default", "{config}");
        let init = fs::read_to_string(format!(
            "/proc/{}/attr/current",
            dk.inspect("aa", "{{.State.Pid}}")
        ))
        .unwrap();
        assert_eq!(init.trim(), "docker-default (enforce)");
        assert!(
            exec.stdout.starts_with("docker-default (enforce)\n")
                && exec.stdout.contains("Permission denied")
                && !exec.stdout.contains("mounted"),
            "{}",
            dk.diag(&exec)
        );
        assert!(
            unconfined.stdout.starts_with("unconfined\n") && unconfined.stdout.contains("mounted"),
            "{}",
            dk.diag(&unconfined)
        );
    } else {
        assert!(
            profile.is_null(),
            "a profile on a host without AppArmor: {config}"
        );
        for out in [&exec, &unconfined] {
            assert_eq!(out.stdout, "no-label\nmounted\n", "{}", dk.diag(out));
        }
    }
}

#[test]
fn run_it_pty() {
    let dk = Docker::new("dk-it", Registration::Flag);
    let mut cmd = dk.cmd(&["run", "-it", "--rm", "--name", "tty"]);
    cmd.args(dk.ctr_flags()).args([IMAGE, "sh"]);
    let (text, code) = shell_session(
        cmd,
        "echo $((6*7)); tty; stty size; exit 5\n",
        "24 80",
        || dk.logs(),
    );
    assert!(
        text.contains("42") && text.contains("/dev/pts/0") && text.contains("24 80"),
        "{text:?}\n{}",
        dk.logs()
    );
    assert_eq!(code, Some(5), "{text:?}\n{}", dk.logs());
    let id = dk.last_created();
    dk.assert_hull_ran(&id);
    assert!(
        dk.calls
            .of("create", &id)
            .iter()
            .any(|c| c.contains("--console-socket")),
        "no create with --console-socket:\n{}",
        dk.logs()
    );
}

#[test]
fn exec_output_code_user_env_tty() {
    let dk = Docker::new("dk-exec", Registration::Flag);
    let id = dk.start_detached("box", &[IMAGE, "sleep", "300"]);
    let out = dk.ok(&[
        "exec",
        "-e",
        "X=1 2",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "box",
        "sh",
        "-c",
        "echo \"$X\"; pwd; id -u; id -g",
    ]);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["1 2", "/tmp", "1000", "1000"],
        "{}",
        dk.diag(&out)
    );
    let out = dk.docker(&["exec", "box", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{}", dk.diag(&out));
    // Each exec went through hull with a process.json in the shim's TMPDIR (ours).
    let tmp = dk.s.path("tmp");
    let execs = dk.calls.of("exec", &id);
    assert!(
        execs.len() >= 2
            && execs
                .iter()
                .all(|c| c.contains("--detach")
                    && c.contains(&format!("--process {}/", tmp.display()))),
        "{}",
        dk.logs()
    );
    // hull's error (its JSON log) reaches the user; docker 20.10 prints it on stdout, and
    // exits 126 (runc: the same).
    let out = dk.docker(&["exec", "box", "/nonexistent"]);
    assert_eq!(out.code, 126, "{}", dk.diag(&out));
    assert_eq!(
        out.stdout.trim(),
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \
         \"/nonexistent\": stat /nonexistent: no such file or directory: unknown",
        "{}",
        dk.diag(&out)
    );

    let cmd = dk.cmd(&["exec", "-it", "box", "sh"]);
    let (text, code) = shell_session(cmd, "echo $((6*7)); tty; exit 4\n", "/dev/pts/", || {
        dk.logs()
    });
    assert!(
        text.contains("42") && text.contains("/dev/pts/"),
        "{text:?}\n{}",
        dk.logs()
    );
    assert_eq!(code, Some(4), "{text:?}\n{}", dk.logs());
    // The shim says `terminal: true` in process.json (no --tty) and makes the console
    // socket in its TMPDIR.
    let console = format!("--console-socket {}/", tmp.display());
    assert!(
        dk.calls
            .of("exec", &id)
            .iter()
            .any(|c| c.contains(&console)),
        "{}",
        dk.logs()
    );
    assert_eq!(dk.inspect("box", "{{.State.Status}}"), "running");
}

#[test]
fn top_pause_stop_restart() {
    let dk = Docker::new("dk-ctl", Registration::Flag);
    let id = dk.start_detached("ctl", &[IMAGE, "sleep", "300"]);
    let cg = util::CgView::of(&dk.ctr_cgroup(&id));
    let pid = dk.inspect("ctl", "{{.State.Pid}}");

    // top: containerd asks the runtime for the pids (`hull ps --format json`).
    let out = dk.ok(&["top", "ctl", "-o", "pid,args"]);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [pid.as_str(), "sleep", "300"]),
        "{}",
        dk.diag(&out)
    );
    assert!(
        dk.calls
            .of("ps", &id)
            .iter()
            .any(|c| c.contains("ps --format json")),
        "{}",
        dk.logs()
    );

    dk.ok(&["pause", "ctl"]);
    assert_eq!(dk.inspect("ctl", "{{.State.Status}}"), "paused");
    assert!(cg.frozen(), "{cg:?} is not frozen");
    assert_eq!(dk.calls.of("pause", &id).len(), 1, "{}", dk.logs());
    dk.ok(&["unpause", "ctl"]);
    assert_eq!(dk.inspect("ctl", "{{.State.Status}}"), "running");
    assert!(cg.thawed(), "{cg:?} is not thawed");
    assert_eq!(dk.calls.of("resume", &id).len(), 1, "{}", dk.logs());
    dk.ok(&["exec", "ctl", "true"]);

    // stop: sleep as pid 1 ignores SIGTERM, so SIGKILL after the timeout: 137.
    let t0 = Instant::now();
    dk.ok(&["stop", "-t", "1", "ctl"]);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_eq!(dk.inspect("ctl", "{{.State.Status}}"), "exited");
    assert_eq!(dk.inspect("ctl", "{{.State.ExitCode}}"), "137");
    let kills = dk.calls.of("kill", &id);
    assert!(
        kills.iter().any(|c| c.ends_with(&format!("kill {id} 15")))
            && kills.iter().any(|c| c.ends_with(&format!("kill {id} 9"))),
        "expected kill 15 then kill 9:\n{}",
        dk.logs()
    );

    // restart: a new hull container under the same id, with a new init.
    dk.ok(&["restart", "-t", "1", "ctl"]);
    dk.wait_status("ctl", "running");
    let pid2 = dk.inspect("ctl", "{{.State.Pid}}");
    assert_ne!(pid, pid2);
    assert!(dk.calls.of("create", &id).len() >= 2, "{}", dk.logs());
    assert!(dk.calls.of("start", &id).len() >= 2, "{}", dk.logs());
    let procs = cg.procs();
    assert!(
        procs.contains(&pid2.parse().unwrap()),
        "init {pid2} not in {cg:?}: {procs:?}"
    );
    let out = dk.ok(&["exec", "ctl", "echo", "back"]);
    assert_eq!(out.stdout.trim(), "back");

    // A process that handles SIGTERM stops at once with its own status.
    dk.start_detached(
        "polite",
        &[
            IMAGE,
            "sh",
            "-c",
            "trap 'exit 9' TERM; while :; do sleep 0.1; done",
        ],
    );
    let t0 = Instant::now();
    dk.ok(&["stop", "-t", "20", "polite"]);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(dk.inspect("polite", "{{.State.ExitCode}}"), "9");
}

#[test]
fn oom_kill_reported() {
    let dk = Docker::new("dk-oom", Registration::Flag);
    // The hog is a child and the shell outlives it by a second: containerd's shim reports the
    // OOM from memory.events, and an init killed by it races that report against its exit
    // (docker then said OOMKilled false once in the guest; a race of the client's, as in
    // systemd_oom_kill_reported).
    let out = dk.run_ctr(&[
        "--name",
        "hog",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        IMAGE,
        "sh",
        "-c",
        "tail /dev/zero; s=$?; sleep 1; exit $s",
    ]);
    assert_eq!(out.code, 137, "{}", dk.diag(&out));
    assert_eq!(
        dk.inspect("hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137",
        "{}",
        dk.logs()
    );
    let id = dk.inspect("hog", "{{.Id}}");
    dk.assert_hull_ran(&id);
}

/// docker shows the runtime's error (the JSON log hull writes for the shim) as
/// `OCI runtime create failed: <runtime> create failed: <message>: unknown`; with hull the
/// message must be hull's, worded as runc words it.
#[test]
fn failed_create_shows_hull_error() {
    let dk = Docker::new("dk-err", Registration::Flag);
    let out = dk.run_ctr(&["--rm", IMAGE, "/nonexistent"]);
    assert_eq!(out.code, 127, "{}", dk.diag(&out));
    let want = "docker: Error response from daemon: failed to create shim task: OCI runtime \
                create failed: hull create failed: unable to start container process: exec: \
                \"/nonexistent\": stat /nonexistent: no such file or directory: unknown.";
    assert!(out.stderr.lines().any(|l| l == want), "{}", dk.diag(&out));
    let id = dk.last_created();
    assert!(
        !dk.calls.of("create", &id).is_empty(),
        "no hull create:\n{}",
        dk.logs()
    );
    // runc (dockerd's default runtime here) says the same but for its name.
    let mut runc_cmd = dk.cmd(&["run", "--rm", "--network", "none", IMAGE, "/nonexistent"]);
    let runc_out = run(&mut runc_cmd);
    assert_eq!(runc_out.code, 127, "{runc_out}");
    assert!(
        runc_out
            .stderr
            .lines()
            .any(|l| l.replace("runc create failed", "hull create failed") == want),
        "{runc_out}"
    );
    // No state of the failed container is left with hull or containerd.
    assert!(
        util::wait_until(Duration::from_secs(10), || !dk.bundle(&id).exists()),
        "{} left\n{}",
        dk.bundle(&id).display(),
        dk.logs()
    );
    assert!(util::existing_cgroups(&dk.ctr_cgroup(&id)).is_empty());
}

/// daemon.json `runtimes` + `default-runtime`: no `--runtime` on the command line.
#[test]
fn daemon_json_default_runtime() {
    let dk = Docker::new("dk-conf", Registration::Config);
    let info = dk.ok(&["info", "--format", "{{.DefaultRuntime}}"]);
    assert_eq!(info.stdout.trim(), "hull", "{}", dk.diag(&info));
    let out = dk.run_ctr(&["--rm", "-e", "V=conf", IMAGE, "sh", "-c", "echo $V; exit 3"]);
    assert_eq!(out.code, 3, "{}", dk.diag(&out));
    assert_eq!(out.stdout.trim(), "conf", "{}", dk.diag(&out));
    let id = dk.last_created();
    dk.assert_hull_ran(&id);

    let id = dk.start_detached("viaconf", &[IMAGE, "sleep", "300"]);
    dk.assert_hull_ran(&id);
    assert_eq!(dk.inspect("viaconf", "{{.HostConfig.Runtime}}"), "hull");
    let out = dk.ok(&["exec", "viaconf", "echo", "exec via conf"]);
    assert_eq!(out.stdout.trim(), "exec via conf");
    dk.ok(&["stop", "-t", "1", "viaconf"]);
    assert_eq!(dk.inspect("viaconf", "{{.State.ExitCode}}"), "137");
    dk.ok(&["rm", "viaconf"]);
    // The shim deleted it from hull, and its cgroup is gone.
    assert!(!dk.calls.of("delete", &id).is_empty(), "{}", dk.logs());
    assert!(
        util::wait_until(Duration::from_secs(10), || util::existing_cgroups(
            &dk.ctr_cgroup(&id)
        )
        .is_empty()),
        "{:?}",
        util::existing_cgroups(&dk.ctr_cgroup(&id))
    );
}

/// The `systemctl show` values of the unit properties of the `--memory`, `--pids-limit` and
/// `--cpus` limits (CPUQuotaPerSecUSec is quota/period per second, shown as a time span).
fn limit_props<'a>(memory: &'a str, tasks: &'a str, cpu: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("MemoryMax", memory),
        ("TasksMax", tasks),
        ("CPUQuotaPerSecUSec", cpu),
    ]
}

/// dockerd's default driver on a systemd host with cgroup v2 is systemd: the shim runs hull
/// with `--systemd-cgroup` and the cgroupsPath `system.slice:docker:<id>`, and hull asks
/// systemd for the delegated scope `docker-<id>.scope`. The limits are checked three ways
/// (the scope's cgroup files, the unit's properties, what the container reads of its own
/// cgroup) at run and after `docker update`; `docker stats`, an exec landing in the scope,
/// pause and unpause through cgroup.freeze, stop; after rm no unit and no cgroup is left.
#[test]
#[ignore = "needs systemd as PID 1 and cgroup v2: runs in the VM guest (tests/vm/guest-tests.sh clients)"]
fn systemd_run_limits_update_exec_pause_stop() {
    assert_systemd_host();
    let dk = Docker::with("dk-sd", Registration::Flag, Cgroups::ClientDefault);
    let info = dk.ok(&["info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}"]);
    assert_eq!(info.stdout.trim(), "systemd 2", "{}", dk.diag(&info));
    let id = dk.start_detached(
        "limited",
        &[
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--cpus",
            "0.5",
            IMAGE,
            "sleep",
            "300",
        ],
    );
    dk.assert_hull_ran(&id);
    let scope = dk.scope(&id);
    assert_eq!(scope.cgroup, format!("/system.slice/docker-{id}.scope"));
    let pid: i32 = dk.inspect("limited", "{{.State.Pid}}").parse().unwrap();
    assert_scope_runs(&scope, pid, || dk.logs());

    // The limits: the scope's files, the unit's properties, what the container sees (its
    // own cgroup namespace, rooted at the scope: docker's default on cgroup v2).
    let cg = scope.cg();
    assert_eq!(cg.memory_limit(), "67108864");
    assert_eq!(cg.pids_max(), "50");
    assert_eq!(cg.cpu_quota_period(), ("50000".into(), "100000".into()));
    assert_unit_props(&scope, &limit_props("67108864", "50", "500ms"), || {
        dk.logs()
    });
    let [mem, pids, _, cpu] = cg.inside_files();
    let script = format!("cat {mem} {pids} {cpu} /proc/self/cgroup");
    let out = dk.ok(&["exec", "limited", "sh", "-c", &script]);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["67108864", "50", "50000", "100000", "0::/"],
        "{}",
        dk.diag(&out)
    );

    // stats: containerd reads the scope's cgroup.
    let out = dk.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "limited",
    ]);
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(
        fields.len() == 5 && fields[0] == "limited" && fields[1] == "1" && fields[4] == "64MiB",
        "{}",
        dk.diag(&out)
    );

    // exec: the new process joins the scope.
    dk.ok(&["exec", "-d", "limited", "sleep", "1234"]);
    let mut procs = Vec::new();
    let joined = util::wait_until(Duration::from_secs(20), || {
        procs = cg.procs();
        procs.iter().any(|p| {
            fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x001234\x00")
        })
    });
    assert!(
        joined && procs.contains(&pid),
        "no exec'd `sleep 1234` beside init {pid} in {}: {procs:?}\n{}",
        scope.dir().display(),
        dk.logs()
    );
    let execs = dk.calls.of("exec", &id);
    assert!(
        execs.len() >= 2 && execs.iter().all(|c| c.contains(" --systemd-cgroup exec ")),
        "{}",
        dk.logs()
    );

    // update: the shim runs `hull --systemd-cgroup update --resources -`; files and
    // properties follow, and a daemon-reload (systemd applying each unit's properties to
    // its cgroup again) leaves the new limits in place.
    dk.ok(&[
        "update",
        "--memory",
        "32m",
        "--memory-swap",
        "64m",
        "--pids-limit",
        "40",
        "--cpus",
        "0.25",
        "limited",
    ]);
    assert!(
        dk.calls
            .of("update", &id)
            .iter()
            .any(|c| c.contains(" --systemd-cgroup update --resources -")),
        "no hull update of {id}:\n{}",
        dk.logs()
    );
    assert_eq!(dk.inspect("limited", "{{.HostConfig.Memory}}"), "33554432");
    // (No swap: dockerd 20.10 with the systemd driver looks for memory.swap.max in the root
    // cgroup, finds none, and drops every swap limit: "Memory limited without swap".)
    let check_updated = |when: &str| {
        let files = (cg.memory_limit(), cg.pids_max(), cg.cpu_quota_period());
        assert_eq!(
            files,
            (
                "33554432".into(),
                "40".into(),
                ("25000".into(), "100000".into())
            ),
            "{} files {when}\n{}{}",
            scope.dir().display(),
            journal(&scope.unit, 20),
            dk.logs()
        );
        assert_unit_props(&scope, &limit_props("33554432", "40", "250ms"), || {
            dk.logs()
        });
    };
    check_updated("after docker update");
    let out = dk.ok(&["exec", "limited", "sh", "-c", &script]);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["33554432", "40", "25000", "100000", "0::/"],
        "{}",
        dk.diag(&out)
    );
    let reload = run(Command::new("systemctl").arg("daemon-reload"));
    assert!(reload.success(), "{reload}");
    check_updated("after systemctl daemon-reload");

    // pause and unpause: cgroup.freeze of the scope.
    dk.ok(&["pause", "limited"]);
    assert_eq!(dk.inspect("limited", "{{.State.Status}}"), "paused");
    assert!(cg.frozen(), "{} is not frozen", scope.dir().display());
    let freeze = fs::read_to_string(scope.dir().join("cgroup.freeze")).unwrap_or_default();
    assert_eq!(freeze.trim(), "1");
    assert!(
        dk.calls
            .of("pause", &id)
            .iter()
            .any(|c| c.contains(" --systemd-cgroup pause ")),
        "{}",
        dk.logs()
    );
    dk.ok(&["unpause", "limited"]);
    assert_eq!(dk.inspect("limited", "{{.State.Status}}"), "running");
    assert!(cg.thawed(), "{} is not thawed", scope.dir().display());
    dk.ok(&["exec", "limited", "true"]);

    // stop (sleep as pid 1 ignores SIGTERM: SIGKILL after 1 s) and rm: hull deleted it, and
    // neither the unit nor its cgroup is left.
    dk.ok(&["stop", "-t", "1", "limited"]);
    assert_eq!(dk.inspect("limited", "{{.State.ExitCode}}"), "137");
    dk.ok(&["rm", "limited"]);
    assert!(!dk.calls.of("delete", &id).is_empty(), "{}", dk.logs());
    assert_scope_gone(&scope, &format!("docker-*{id}*"), || dk.logs());
}

/// A container killed by the OOM killer in its systemd scope: docker reports exit 137 and
/// OOMKilled (the shim watches the scope's memory.events), the scope had the limit as its
/// MemoryMax, and after rm no unit is left (a scope whose process the kernel OOM-killed may
/// end `failed`, which systemd keeps loaded until someone resets it).
#[test]
#[ignore = "needs systemd as PID 1 and cgroup v2: runs in the VM guest (tests/vm/guest-tests.sh clients)"]
fn systemd_oom_kill_reported() {
    assert_systemd_host();
    let dk = Docker::with("dk-sd-oom", Registration::Flag, Cgroups::ClientDefault);
    // It waits for /tmp/go so that the scope can be looked at first. The hog is a child
    // and the shell outlives it by a second: systemd removes an emptied scope's cgroup
    // within milliseconds, and containerd's shim, woken by memory.events, must still find
    // the file to report the OOM (a race of the client's, the same with runc).
    let id = dk.start_detached(
        "hog",
        &[
            "--memory",
            "16m",
            "--memory-swap",
            "16m",
            IMAGE,
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.1; done; tail /dev/zero; s=$?; sleep 1; exit $s",
        ],
    );
    dk.assert_hull_ran(&id);
    let scope = dk.scope(&id);
    let pid: i32 = dk.inspect("hog", "{{.State.Pid}}").parse().unwrap();
    assert_scope_runs(&scope, pid, || dk.logs());
    let cg = scope.cg();
    assert_eq!(cg.memory_limit(), "16777216");
    assert_unit_props(&scope, &[("MemoryMax", "16777216")], || dk.logs());

    dk.ok(&["exec", "hog", "touch", "/tmp/go"]);
    let waited = run_timeout(&mut dk.cmd(&["wait", "hog"]), Duration::from_secs(60));
    assert_eq!(waited.stdout.trim(), "137", "{}", dk.diag(&waited));
    assert_eq!(
        dk.inspect("hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137",
        "{}{}",
        journal(&scope.unit, 20),
        dk.logs()
    );
    dk.ok(&["rm", "hog"]);
    assert!(!dk.calls.of("delete", &id).is_empty(), "{}", dk.logs());
    assert_scope_gone(&scope, &format!("docker-*{id}*"), || dk.logs());
}
