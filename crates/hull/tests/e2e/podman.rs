//! podman 4.3 (rootful, no daemon: conmon calls the runtime) drives hull. Every test gets a
//! private podman world under its own Scratch dir — storage, runroot, tmpdir, network config,
//! events log, file locks, containers.conf / storage.conf / registries.conf / policy.json —
//! imports the busybox rootfs as `localhost/busybox:e2e`, and puts its containers' cgroups
//! (and conmon's) under the Scratch cgroup parent with the cgroupfs manager — or, for the
//! `systemd_` tests, leaves podman its default manager (systemd, on a systemd host) and
//! parent (`machine.slice`).
//!
//! hull is registered the two ways users do: in containers.conf (`runtime = "hull"`,
//! `[engine.runtimes] hull = [...]`, `runtime_supports_json`), pointing at a wrapper that logs
//! every call, and with `--runtime <path of the built hull>` on the command line.
//!
//! podman passes no `--root` to the runtime, so hull keeps its state in its default root
//! (`/run/hull`). The wrapper adds `--root <scratch>/hull-state` so that its tests keep
//! everything under the Scratch dir; the `--runtime` test uses the default root and removes
//! what it made there.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{assert_scope_gone, assert_scope_runs, assert_systemd_host, assert_unit_props};
use crate::common::{dir_names, file_sections, hull, run, run_timeout, write_script};
use crate::common::{journal, stop_units, Background, CallLog, Cgroups, Output, Scope, Scratch};
use crate::pty::shell_session;
use crate::util;

const PODMAN: &str = "/usr/bin/podman";
const RUNC: &str = "/usr/sbin/runc";
const IMAGE: &str = "localhost/busybox:e2e";

/// How podman is told about hull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// containers.conf: `runtime = "hull"` and `[engine.runtimes] hull = [<wrapper>]`; the
    /// wrapper logs each call and adds `--root <scratch>/hull-state`.
    Conf,
    /// `podman --runtime <built hull>` on every command, no wrapper; hull uses its default
    /// root.
    Flag,
}

/// One test's private podman.
struct Podman {
    s: Scratch,
    reg: Registration,
    cgroups: Cgroups,
    /// `--cgroup-parent` for every container (cgroupfs).
    parent: String,
    /// The wrapper's call log (Conf only).
    calls: CallLog,
    /// Where hull keeps its state for these containers.
    hull_root: PathBuf,
    /// Full ids of containers made under hull's default root, removed from there on drop.
    default_root_ids: RefCell<Vec<String>>,
    /// Full ids of every container the test saw (their systemd units are stopped on drop).
    ids: RefCell<Vec<String>>,
}

impl Podman {
    /// A private podman on the cgroupfs manager with its configuration written and the
    /// busybox image imported.
    fn new(name: &str, reg: Registration) -> Podman {
        Podman::with(name, reg, Cgroups::Cgroupfs)
    }

    /// A private podman on the cgroup manager `cgroups` says, with its configuration written
    /// and the busybox image imported.
    fn with(name: &str, reg: Registration, cgroups: Cgroups) -> Podman {
        let s = Scratch::new(name);
        let parent = match cgroups {
            Cgroups::Cgroupfs => s.cgroup_parent(),
            Cgroups::ClientDefault => String::new(),
        };
        let d = s.dir.clone();
        for sub in [
            "storage",
            "run",
            "tmp",
            "networks",
            "home/.config/containers",
            "bin",
        ] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        let calls = d.join("calls.log");
        let hull_root = match reg {
            Registration::Conf => d.join("hull-state"),
            Registration::Flag => PathBuf::from("/run/hull"),
        };
        if reg == Registration::Conf {
            // Named `hull`: podman looks the runtime's name up in runtime_supports_json (for
            // `--runtime PATH`, by the file name of PATH).
            write_script(
                &d.join("bin/hull"),
                &format!(
                    "echo \"$*\" >> {}\nexec {} --root {} \"$@\"",
                    calls.display(),
                    hull().display(),
                    hull_root.display()
                ),
            );
        }
        fs::write(d.join("containers.conf"), containers_conf(&d, reg, cgroups)).unwrap();
        fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                d.join("run").display(),
                d.join("storage").display()
            ),
        )
        .unwrap();
        fs::write(
            d.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
        // c/image reads $HOME/.config/containers/policy.json before /etc/containers.
        fs::write(
            d.join("home/.config/containers/policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        let pm = Podman {
            reg,
            cgroups,
            parent,
            calls: CallLog::new(calls),
            hull_root,
            default_root_ids: RefCell::new(Vec::new()),
            ids: RefCell::new(Vec::new()),
            s,
        };
        let tar = pm.s.rootfs_tar();
        pm.ok(&["import", "-q", &tar.to_string_lossy(), IMAGE]);
        pm
    }

    /// `podman` with this test's global flags and environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let d = &self.s.dir;
        let mut c = Command::new(PODMAN);
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("HOME", d.join("home"))
            .env("TMPDIR", d.join("tmp"))
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"));
        if self.cgroups == Cgroups::Cgroupfs {
            c.args(["--cgroup-manager", "cgroupfs"]);
        }
        c.args(["--events-backend", "file", "--storage-driver", "overlay"]);
        if self.reg == Registration::Flag {
            c.arg("--runtime").arg(hull());
        }
        c.args(args);
        c
    }

    fn podman(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    /// Runs podman and panics with the diagnostics unless it succeeded.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.podman(args);
        assert!(out.success(), "{}", self.diag(&out));
        out
    }

    /// The flags every container of this test gets: its cgroup under the Scratch parent
    /// (cgroupfs), no network.
    fn ctr_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.cgroups == Cgroups::Cgroupfs {
            flags.extend(["--cgroup-parent".into(), self.parent.clone()]);
        }
        flags.extend(["--network".into(), "none".into()]);
        flags
    }

    /// `podman run <ctr_flags> ARGS…` (ARGS hold the run options, the image and the command).
    fn run_ctr(&self, args: &[&str]) -> Output {
        let flags = self.ctr_flags();
        let mut all = vec!["run"];
        all.extend(flags.iter().map(String::as_str));
        all.extend_from_slice(args);
        self.podman(&all)
    }

    /// `podman run -d --name NAME <ctr_flags> ARGS…`; returns the full container id.
    #[track_caller]
    fn start_detached(&self, name: &str, args: &[&str]) -> String {
        let flags = self.ctr_flags();
        let mut all = vec!["run", "-d", "--name", name];
        all.extend(flags.iter().map(String::as_str));
        all.extend_from_slice(args);
        let out = self.ok(&all);
        let id = out.stdout.trim().to_owned();
        assert_eq!(id.len(), 64, "container id from podman run -d:\n{out}");
        self.note_id(&id);
        id
    }

    /// Records a container for cleanup: its systemd units, its state if hull keeps it under
    /// its default root.
    fn note_id(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_owned());
        if self.reg == Registration::Flag {
            self.default_root_ids.borrow_mut().push(id.to_owned());
        }
    }

    /// `podman container inspect -f FORMAT NAME`, trimmed. (Plain `podman inspect` of an
    /// unknown name also tries it as an image and so writes the short-name alias cache in
    /// /var/cache/containers.)
    #[track_caller]
    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["container", "inspect", "-f", format, name])
            .stdout
            .trim()
            .to_owned()
    }

    /// Waits until podman reports `status` for the container.
    #[track_caller]
    fn wait_status(&self, name: &str, status: &str) {
        let mut last = String::new();
        let ok = util::wait_until(Duration::from_secs(20), || {
            let out = self.podman(&["container", "inspect", "-f", "{{.State.Status}}", name]);
            last = format!("{}{}", out.stdout.trim(), out.stderr.trim());
            last == status
        });
        assert!(ok, "{name} is {last:?}, not {status:?}\n{}", self.logs());
    }

    /// The cgroup path of a podman container with the cgroupfs manager.
    fn ctr_cgroup(&self, id: &str) -> String {
        assert_eq!(self.cgroups, Cgroups::Cgroupfs, "no cgroup parent of ours");
        format!("{}/libpod-{id}", self.parent)
    }

    /// The systemd scope of container `name` (podman's default manager on a systemd host):
    /// asserts its OCI config asks for `machine.slice:libpod:<id>`, podman's default parent.
    #[track_caller]
    fn scope(&self, name: &str, id: &str) -> Scope {
        let config = PathBuf::from(self.inspect(name, "{{.OCIConfigPath}}"));
        let bundle = config.parent().unwrap_or(Path::new("/")).to_path_buf();
        let path = crate::common::bundle_cgroups_path(&bundle);
        assert_eq!(
            path,
            format!("machine.slice:libpod:{id}"),
            "cgroupsPath\n{}",
            self.logs()
        );
        Scope::of(&path).unwrap()
    }

    /// Everything useful when a step fails: the command, the runtime calls, hull's logs
    /// (podman's `--log` file per container and exec session) and what hull has in its root.
    fn diag(&self, out: &Output) -> String {
        format!("{out}\n{}", self.logs())
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        if self.reg == Registration::Conf {
            text += &self.calls.section();
        }
        let mut logs = Vec::new();
        find_files(&self.s.dir, "oci-log", &mut logs);
        text += &file_sections(logs);
        if self.reg == Registration::Conf {
            let held = dir_names(&self.hull_root);
            text += &format!(
                "--- in hull's root {}: {held:?}\n",
                self.hull_root.display()
            );
        }
        let events = fs::read_to_string(self.s.path("events.log")).unwrap_or_default();
        let tail: Vec<&str> = events.lines().rev().take(15).collect();
        text += &format!("--- events (last 15, newest first):\n{}\n", tail.join("\n"));
        text
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Through podman first (hull's kill and delete), then whatever is left is the
        // Scratch's: processes pointing into the dir, mounts, cgroups.
        let ids = self.podman(&["ps", "-a", "-q", "--no-trunc"]);
        for id in ids.stdout.split_whitespace() {
            self.note_id(id);
        }
        let _ = run_timeout(
            &mut self.cmd(&["rm", "-a", "-f", "-t", "0"]),
            Duration::from_secs(30),
        );
        for id in self.default_root_ids.borrow().iter() {
            let state = self.hull_root.join(id);
            if state.exists() {
                let _ = run(Command::new(hull()).args(["delete", "--force", id]));
                let _ = fs::remove_dir_all(&state);
            }
        }
        if self.cgroups == Cgroups::ClientDefault {
            // conmon's scope too, when podman made one (not under a systemd service, which
            // it tells by $INVOCATION_ID).
            let units: Vec<String> = self
                .ids
                .borrow()
                .iter()
                .flat_map(|id| {
                    [
                        format!("libpod-{id}.scope"),
                        format!("libpod-conmon-{id}.scope"),
                    ]
                })
                .collect();
            stop_units(&units);
        }
    }
}

/// containers.conf for a private podman under `d`.
fn containers_conf(d: &Path, reg: Registration, cgroups: Cgroups) -> String {
    let runtime = match reg {
        Registration::Conf => format!(
            "runtime = \"hull\"\n\n[engine.runtimes]\nhull = [\"{}\"]\nrunc = [\"{RUNC}\"]\n",
            d.join("bin/hull").display()
        ),
        Registration::Flag => format!("\n[engine.runtimes]\nrunc = [\"{RUNC}\"]\n"),
    };
    let (nofile, nproc) = ulimits();
    let manager = match cgroups {
        Cgroups::Cgroupfs => "cgroup_manager = \"cgroupfs\"\n",
        Cgroups::ClientDefault => "",
    };
    format!(
        r#"[containers]
netns = "none"
# podman's rootful default is 1048576 for both; a runtime cannot raise a hard limit without
# CAP_SYS_RESOURCE, which this host's bounding set lacks (runc fails the same way).
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[network]
# Rootful netavark always creates /run/containers/networks (a fixed path); CNI keeps
# everything in network_config_dir. With --network none neither sets anything up.
network_backend = "cni"
network_config_dir = "{d}/networks"

[engine]
{manager}events_logger = "file"
events_logfile_path = "{d}/events.log"
lock_type = "file"
tmp_dir = "{d}/tmp"
# conmon makes its console sockets in $TMPDIR (default /tmp).
conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR={d}/tmp"]
image_copy_tmp_dir = "{d}/tmp"
static_dir = "{d}/storage/libpod"
volume_path = "{d}/storage/volumes"
# No OCI hooks from the host's /usr/share/containers/oci/hooks.d.
hooks_dir = ["{d}/hooks.d"]
runtime_supports_json = ["hull", "crun", "runc"]
{runtime}"#,
        d = d.display()
    )
}

/// Container rlimits this host lets a runtime set: at most our own hard limits.
fn ulimits() -> (u64, u64) {
    let hard = |res| {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills in the struct we pass.
        let rc = unsafe { libc::getrlimit(res, &mut r) };
        assert_eq!(rc, 0, "getrlimit");
        r.rlim_max
    };
    (
        hard(libc::RLIMIT_NOFILE).min(65536),
        hard(libc::RLIMIT_NPROC).min(16384),
    )
}

fn find_files(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            // Container rootfs trees are big and never hold podman's logs.
            let n = e.file_name();
            if n != "overlay" && n != "merged" && n != "image-rootfs" {
                find_files(&e.path(), name, out);
            }
        } else if e.file_name() == name {
            out.push(e.path());
        }
    }
}

/// Asserts the wrapper saw hull's create and start for container `id`, with the
/// flags conmon passes (`--log-format=json` proves `runtime_supports_json` took effect;
/// `--systemd-cgroup` before `create` with the systemd manager, and only then).
#[track_caller]
fn assert_hull_ran(pm: &Podman, id: &str) {
    let creates = pm.calls.of("create", id);
    let systemd = pm.cgroups == Cgroups::ClientDefault;
    assert!(
        creates.iter().any(|c| c.contains("--log-format=json")
            && c.contains("--bundle")
            && c.contains("--pid-file")
            && global_flag(c, "create", "--systemd-cgroup") == systemd),
        "no hull create with --log-format=json{} for {id}:\n{}",
        if systemd { " --systemd-cgroup" } else { "" },
        pm.logs()
    );
    assert!(
        !pm.calls.of("start", id).is_empty(),
        "no hull start for {id}:\n{}",
        pm.logs()
    );
}

/// Whether the runtime call logged as `call` has global flag `flag` (before `subcommand`).
fn global_flag(call: &str, subcommand: &str, flag: &str) -> bool {
    call.split_whitespace()
        .take_while(|w| *w != subcommand)
        .any(|w| w == flag)
}

/// The id of the last container the wrapper saw created with `marker` on the create line
/// (works after `--rm` too).
fn id_from_calls(pm: &Podman, marker: &str) -> String {
    pm.calls
        .text()
        .lines()
        .filter(|l| l.contains(" create ") && l.contains(marker))
        .filter_map(|l| l.split_whitespace().next_back())
        .next_back()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn run_env_workdir_user() {
    let pm = Podman::new("pm-env", Registration::Conf);
    let out = pm.run_ctr(&[
        "--name",
        "envctr",
        "-e",
        "GREETING=hello from podman",
        "-w",
        "/tmp",
        "--user",
        "1000:1000",
        IMAGE,
        "sh",
        "-c",
        "echo \"$GREETING\"; pwd; id -u; id -g; echo $HOME",
    ]);
    assert!(out.success(), "{}", pm.diag(&out));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["hello from podman", "/tmp", "1000", "1000", "/home/user"],
        "{}",
        pm.diag(&out)
    );
    let id = pm.inspect("envctr", "{{.Id}}");
    assert_hull_ran(&pm, &id);
    // The user by name, as the image's /etc/passwd defines it.
    let out = pm.run_ctr(&["--rm", "--user", "user", IMAGE, "id", "-un"]);
    assert!(out.success(), "{}", pm.diag(&out));
    assert_eq!(out.stdout.trim(), "user", "{}", pm.diag(&out));
}

#[test]
fn run_read_only_tmpfs_volume() {
    let pm = Podman::new("pm-fs", Registration::Conf);
    let vol = pm.s.path("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("from-host"), "host data\n").unwrap();
    let vol_arg = format!("{}:/vol", vol.display());
    let out = pm.run_ctr(&[
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
    assert!(out.success(), "{}", pm.diag(&out));
    let text = &out.stdout;
    assert!(text.contains("root-ro"), "{}", pm.diag(&out));
    let tmpfs = text
        .lines()
        .find(|l| l.contains(" /scratch "))
        .unwrap_or_else(|| panic!("no /scratch mount:\n{}", pm.diag(&out)));
    assert!(
        tmpfs.starts_with("tmpfs /scratch tmpfs") && tmpfs.contains("size=1024k"),
        "{tmpfs}\n{}",
        pm.diag(&out)
    );
    assert!(text.contains("tmp\n"), "{}", pm.diag(&out));
    assert!(text.contains("host data"), "{}", pm.diag(&out));
    assert_eq!(
        fs::read_to_string(vol.join("from-ctr")).unwrap_or_default(),
        "ctr data\n",
        "{}",
        pm.diag(&out)
    );
    // A read-only volume stays read-only.
    let ro_arg = format!("{}:/vol:ro", vol.display());
    let out = pm.run_ctr(&[
        "--rm",
        "-v",
        &ro_arg,
        IMAGE,
        "sh",
        "-c",
        "echo x > /vol/nope 2>/dev/null && echo writable || echo ro",
    ]);
    assert!(out.success(), "{}", pm.diag(&out));
    assert_eq!(out.stdout.trim(), "ro", "{}", pm.diag(&out));
    assert!(!vol.join("nope").exists());
    let id = id_from_calls(&pm, "create");
    assert_hull_ran(&pm, &id);
}

#[test]
fn run_resources() {
    let pm = Podman::new("pm-res", Registration::Conf);
    let id = pm.start_detached(
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
    assert_hull_ran(&pm, &id);
    // hull keeps the container where the wrapper's --root points.
    let state = pm.hull_root.join(&id).join("state.json");
    assert!(state.exists(), "{} missing\n{}", state.display(), pm.logs());
    let cg = util::CgView::of(&pm.ctr_cgroup(&id));
    assert_eq!(cg.memory_limit(), "67108864");
    assert_eq!(cg.pids_max(), "50");
    assert_eq!(cg.cpu_quota_period(), ("50000".into(), "100000".into()));
    let pid: i32 = pm.inspect("limited", "{{.State.Pid}}").parse().unwrap();
    let procs = cg.procs();
    assert!(procs.contains(&pid), "init {pid} not in {cg:?}: {procs:?}");
    // What the container sees of its own limits.
    let [mem, pids, current, _] = cg.inside_files();
    let out = pm.ok(&["exec", "limited", "cat", mem, pids]);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["67108864", "50"],
        "{}",
        pm.diag(&out)
    );
    // The pids limit holds: a shell that starts 60 sleeps dies of a failed fork (ash exits
    // 2), and the cgroup never holds more than 50. Builtins only after that: nothing more
    // can fork.
    let out = pm.podman(&[
        "exec",
        "limited",
        "sh",
        "-c",
        &format!(
            "sh -c 'for i in $(seq 60); do sleep 30 & done' 2>/dev/null; echo $?; \
             read n < {current}; echo $n"
        ),
    ]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let current: u32 = lines.get(1).and_then(|l| l.parse().ok()).unwrap_or(0);
    assert!(
        out.success() && lines.first() == Some(&"2") && (40..=50).contains(&current),
        "{}",
        pm.diag(&out)
    );
}

#[test]
fn run_caps_and_no_new_privileges() {
    let pm = Podman::new("pm-caps", Registration::Conf);
    let status = |extra: &[&str]| {
        let mut args = vec!["--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "cat", "/proc/self/status"]);
        let out = pm.run_ctr(&args);
        assert!(out.success(), "{}", pm.diag(&out));
        let eff = util::status_field(&out.stdout, "CapEff").unwrap_or_default();
        let bnd = util::status_field(&out.stdout, "CapBnd").unwrap_or_default();
        let nnp = util::status_field(&out.stdout, "NoNewPrivs").unwrap_or_default();
        (
            u64::from_str_radix(eff, 16).unwrap(),
            u64::from_str_radix(bnd, 16).unwrap(),
            nnp.to_owned(),
        )
    };
    let (eff, bnd, nnp) = status(&[]);
    let chown = util::cap_mask(&["CAP_CHOWN"]);
    let net_bind = util::cap_mask(&["CAP_NET_BIND_SERVICE"]);
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
        "all",
        "--cap-add",
        "CHOWN",
        "--security-opt",
        "no-new-privileges",
    ]);
    assert_eq!((eff, bnd), (chown, chown));
    assert_eq!(nnp, "1");
    // The capability really is gone: chown needs CAP_CHOWN.
    let out = pm.run_ctr(&[
        "--rm",
        "--cap-drop",
        "CHOWN",
        IMAGE,
        "sh",
        "-c",
        "touch /f; chown 1000 /f",
    ]);
    assert_eq!(out.code, 1, "{}", pm.diag(&out));
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        pm.diag(&out)
    );
    let id = id_from_calls(&pm, "create");
    assert_hull_ran(&pm, &id);
}

#[test]
fn run_exit_codes() {
    let pm = Podman::new("pm-exit", Registration::Conf);
    for code in [0, 3] {
        let script = format!("exit {code}");
        let out = pm.run_ctr(&["--rm", IMAGE, "sh", "-c", &script]);
        assert_eq!(out.code, code, "{}", pm.diag(&out));
    }
    // 137: a foreground `podman run` whose container is SIGKILLed.
    let mut run_cmd = pm.cmd(&["run", "--name", "killed"]);
    run_cmd.args(pm.ctr_flags()).args([IMAGE, "sleep", "300"]);
    let mut fg = Background::spawn(run_cmd, pm.s.path("killed.out"));
    pm.wait_status("killed", "running");
    let id = pm.inspect("killed", "{{.Id}}");
    pm.ok(&["kill", "killed"]);
    let code = fg.wait(Duration::from_secs(30));
    assert_eq!(code, Some(137), "{}\n{}", fg.output(), pm.logs());
    assert_eq!(pm.inspect("killed", "{{.State.ExitCode}}"), "137");
    assert!(
        pm.calls
            .of("kill", &id)
            .iter()
            .any(|c| c.ends_with(&format!("{id} 9")) || c.contains(&format!("kill {id} 9"))),
        "{}",
        pm.logs()
    );
    assert_hull_ran(&pm, &id);
    // `podman wait` reports the same.
    let out = pm.ok(&["wait", "killed"]);
    assert_eq!(out.stdout.trim(), "137", "{}", pm.diag(&out));
}

#[test]
fn run_it_pty() {
    let pm = Podman::new("pm-it", Registration::Conf);
    let mut cmd = pm.cmd(&["run", "-it", "--rm", "--name", "tty"]);
    cmd.args(pm.ctr_flags()).args([IMAGE, "sh"]);
    let (text, code) = shell_session(
        cmd,
        "echo $((6*7)); tty; stty size; exit 5\n",
        "24 80",
        || pm.logs(),
    );
    assert!(
        text.contains("42") && text.contains("/dev/pts/0") && text.contains("24 80"),
        "{text:?}\n{}",
        pm.logs()
    );
    assert_eq!(code, Some(5), "{text:?}\n{}", pm.logs());
    let id = id_from_calls(&pm, "--console-socket");
    assert!(
        !id.is_empty(),
        "no create with --console-socket:\n{}",
        pm.logs()
    );
    assert_hull_ran(&pm, &id);
}

#[test]
fn exec_plain_and_it() {
    let pm = Podman::new("pm-exec", Registration::Conf);
    let id = pm.start_detached("box", &[IMAGE, "sleep", "300"]);
    let out = pm.ok(&[
        "exec",
        "-e",
        "X=1 2",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "box",
        "sh",
        "-c",
        "echo \"$X\"; pwd; id -u",
    ]);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["1 2", "/tmp", "1000"],
        "{}",
        pm.diag(&out)
    );
    let out = pm.podman(&["exec", "box", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{}", pm.diag(&out));
    // Each exec went through hull with its own log file and a process.json.
    let execs = pm.calls.of("exec", &id);
    assert!(
        execs.len() >= 2
            && execs
                .iter()
                .all(|c| c.contains("--process") && c.contains("--detach")),
        "{}",
        pm.logs()
    );

    let cmd = pm.cmd(&["exec", "-it", "box", "sh"]);
    let (text, code) = shell_session(cmd, "echo $((6*7)); tty; exit 4\n", "/dev/pts/", || {
        pm.logs()
    });
    assert!(
        text.contains("42") && text.contains("/dev/pts/"),
        "{text:?}\n{}",
        pm.logs()
    );
    assert_eq!(code, Some(4), "{text:?}\n{}", pm.logs());
    assert!(
        pm.calls
            .of("exec", &id)
            .iter()
            .any(|c| c.contains("--tty") && c.contains("--console-socket")),
        "{}",
        pm.logs()
    );
    // The container is still running after all that.
    assert_eq!(pm.inspect("box", "{{.State.Status}}"), "running");
}

#[test]
fn top_pause_stats_stop() {
    let pm = Podman::new("pm-ctl", Registration::Conf);
    let id = pm.start_detached("ctl", &["--memory", "64m", IMAGE, "sleep", "300"]);
    let cg = util::CgView::of(&pm.ctr_cgroup(&id));

    // top: podman reads /proc itself (psgo); hull is not asked (`hull ps` is never called).
    let out = pm.ok(&["top", "ctl", "pid", "args", "user"]);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep", "300", "root"]),
        "{}",
        pm.diag(&out)
    );

    pm.ok(&["pause", "ctl"]);
    assert_eq!(pm.inspect("ctl", "{{.State.Status}}"), "paused");
    assert!(cg.frozen(), "{cg:?} is not frozen");
    assert_eq!(pm.calls.of("pause", &id).len(), 1, "{}", pm.logs());

    // stats reads the cgroup (paused or not).
    let out = pm.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "ctl",
    ]);
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(
        fields.len() == 5 && fields[0] == "ctl" && fields[1] == "1" && fields[4] == "67.11MB",
        "{}",
        pm.diag(&out)
    );

    pm.ok(&["unpause", "ctl"]);
    assert_eq!(pm.inspect("ctl", "{{.State.Status}}"), "running");
    assert!(cg.thawed(), "{cg:?} is not thawed");
    assert_eq!(pm.calls.of("resume", &id).len(), 1, "{}", pm.logs());
    pm.ok(&["exec", "ctl", "true"]);

    // stop: sleep as pid 1 ignores SIGTERM, so SIGKILL after the timeout: 137.
    let t0 = Instant::now();
    pm.ok(&["stop", "-t", "1", "ctl"]);
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert_eq!(pm.inspect("ctl", "{{.State.Status}}"), "exited");
    assert_eq!(pm.inspect("ctl", "{{.State.ExitCode}}"), "137");
    let kills = pm.calls.of("kill", &id);
    assert!(
        kills.iter().any(|c| c.ends_with(" 15")) && kills.iter().any(|c| c.ends_with(" 9")),
        "expected kill 15 then kill 9:\n{}",
        pm.logs()
    );

    // A process that handles SIGTERM stops at once with its own status.
    pm.start_detached(
        "polite",
        &[
            IMAGE,
            "sh",
            "-c",
            "trap 'exit 9' TERM; while :; do sleep 0.1; done",
        ],
    );
    let t0 = Instant::now();
    pm.ok(&["stop", "-t", "20", "polite"]);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(pm.inspect("polite", "{{.State.ExitCode}}"), "9");
}

/// podman shows the runtime's error (the one JSON object of its `--log` file) as
/// `Error: <runtime>: <message>: <podman's category>`; with hull the message must be hull's,
/// worded as runc words it.
#[test]
fn oci_error_matches_runc() {
    let pm = Podman::new("pm-err", Registration::Conf);
    let runc_root = pm.s.path("runc-state");
    let runc_flag = format!("root={}", runc_root.display());
    let mut hull_out = pm.run_ctr(&["--rm", IMAGE, "/nonexistent"]);
    let mut runc_cmd = pm.cmd(&["--runtime", RUNC, "--runtime-flag", &runc_flag, "run"]);
    runc_cmd
        .args(pm.ctr_flags())
        .args(["--rm", IMAGE, "/nonexistent"]);
    let runc_out = run(&mut runc_cmd);
    assert_eq!(runc_out.code, 127, "{runc_out}");
    assert_eq!(hull_out.code, 127, "{}", pm.diag(&hull_out));
    let want = "Error: hull: hull create failed: unable to start container process: exec: \
                \"/nonexistent\": stat /nonexistent: no such file or directory: OCI runtime \
                attempted to invoke a command that was not found";
    assert_eq!(hull_out.stderr.trim(), want, "{}", pm.diag(&hull_out));
    // runc's says the same but for the runtime's name.
    assert_eq!(
        runc_out
            .stderr
            .trim()
            .replace(RUNC, "hull")
            .replace("runc ", "hull "),
        want,
        "{runc_out}"
    );

    // The error of a failing exec reaches the user the same way.
    pm.start_detached("up", &[IMAGE, "sleep", "300"]);
    hull_out = pm.podman(&["exec", "up", "/nonexistent"]);
    assert_eq!(hull_out.code, 127, "{}", pm.diag(&hull_out));
    assert_eq!(
        hull_out.stderr.trim(),
        "Error: hull: exec failed: unable to start container process: exec: \"/nonexistent\": \
         stat /nonexistent: no such file or directory: OCI runtime attempted to invoke a \
         command that was not found",
        "{}",
        pm.diag(&hull_out)
    );
    let out = pm.podman(&["exec", "up", "/etc/passwd"]);
    assert_eq!(out.code, 126, "{}", pm.diag(&out));
    assert_eq!(
        out.stderr.trim(),
        "Error: hull: exec failed: unable to start container process: exec: \"/etc/passwd\": \
         permission denied: OCI permission denied",
        "{}",
        pm.diag(&out)
    );
}

/// BUG (hull, open): `hull create` accepts a `process.args[0]` that is not executable and
/// only fails at `start` (execve's EACCES). runc 1.1.5 looks the program up with
/// exec.LookPath in the init before it reports ready, so `runc create` fails with
/// `exec: "/etc/passwd": permission denied` in its --log file and podman shows that one
/// line. With hull, podman prints hull's text-format stderr of `start` and
/// ``Error: `<hull> start <id>` failed: exit status 1`` instead.
#[test]
fn oci_error_not_executable_matches_runc() {
    let pm = Podman::new("pm-noexec", Registration::Conf);
    let out = pm.run_ctr(&["--rm", IMAGE, "/etc/passwd"]);
    assert_eq!(out.code, 126, "{}", pm.diag(&out));
    assert_eq!(
        out.stderr.trim(),
        "Error: hull: hull create failed: unable to start container process: exec: \
         \"/etc/passwd\": permission denied: OCI permission denied",
        "{}",
        pm.diag(&out)
    );
}

/// `podman --runtime <path>`: no containers.conf entry for hull, no wrapper; hull runs with
/// podman's environment alone (no --root: its default root).
#[test]
fn runtime_flag_registration() {
    let pm = Podman::new("pm-flag", Registration::Flag);
    let out = pm.run_ctr(&["--rm", "-e", "V=flag", IMAGE, "sh", "-c", "echo $V; exit 3"]);
    assert_eq!(out.code, 3, "{}", pm.diag(&out));
    assert_eq!(out.stdout.trim(), "flag", "{}", pm.diag(&out));

    let id = pm.start_detached("viaflag", &[IMAGE, "sleep", "300"]);
    // conmon runs the built hull, and hull keeps the container in its default root.
    let conmon_pid = pm.inspect("viaflag", "{{.State.ConmonPid}}");
    let cmdline = fs::read(format!("/proc/{conmon_pid}/cmdline")).unwrap_or_default();
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let r = argv
        .iter()
        .position(|a| a == "-r")
        .map(|i| argv[i + 1].clone());
    assert_eq!(r, Some(hull().to_string_lossy().into_owned()), "{argv:?}");
    assert!(
        argv.iter().any(|a| a == "--log-format=json"),
        "runtime_supports_json did not apply to --runtime PATH: {argv:?}"
    );
    let state = pm.hull_root.join(&id).join("state.json");
    assert!(state.exists(), "{} missing\n{}", state.display(), pm.logs());
    let st = run(Command::new(hull()).args(["state", &id]));
    assert!(st.success() && st.stdout.contains("\"running\""), "{st}");

    let out = pm.ok(&["exec", "viaflag", "echo", "exec via flag"]);
    assert_eq!(out.stdout.trim(), "exec via flag");
    pm.ok(&["stop", "-t", "1", "viaflag"]);
    assert_eq!(pm.inspect("viaflag", "{{.State.ExitCode}}"), "137");
    pm.ok(&["rm", "viaflag"]);
    assert!(
        util::wait_until(Duration::from_secs(10), || !pm.hull_root.join(&id).exists()),
        "hull's state for {id} left in {}",
        pm.hull_root.display()
    );
}

/// podman's default cgroup manager on a systemd host with cgroup v2 is systemd: conmon runs
/// hull with `--systemd-cgroup` and the cgroupsPath `machine.slice:libpod:<id>`, and hull
/// asks systemd for the delegated scope `libpod-<id>.scope`. The limits are checked three
/// ways (the scope's cgroup files, the unit's properties, what the container reads of its
/// own cgroup) at run and after `podman update` — which podman runs itself, without
/// `--systemd-cgroup`, so hull must know the container's driver from its own state — then
/// `podman stats`, an exec landing in the scope, pause and unpause, stop; after rm no unit
/// (the container's, or conmon's `libpod-conmon-<id>.scope` when podman made one) and no
/// cgroup is left.
#[test]
#[ignore = "needs systemd as PID 1 and cgroup v2: runs in the VM guest (tests/vm/guest-tests.sh clients)"]
fn systemd_run_limits_update_exec_pause_stop() {
    assert_systemd_host();
    let pm = Podman::with("pm-sd", Registration::Conf, Cgroups::ClientDefault);
    let info = pm.ok(&[
        "info",
        "--format",
        "{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}",
    ]);
    assert_eq!(info.stdout.trim(), "systemd v2", "{}", pm.diag(&info));
    let id = pm.start_detached(
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
    assert_hull_ran(&pm, &id);
    let scope = pm.scope("limited", &id);
    assert_eq!(scope.cgroup, format!("/machine.slice/libpod-{id}.scope"));
    let pid: i32 = pm.inspect("limited", "{{.State.Pid}}").parse().unwrap();
    assert_scope_runs(&scope, pid, || pm.logs());

    // The limits: the scope's files, the unit's properties, what the container sees (its
    // own cgroup namespace, rooted at the scope: podman's default on cgroup v2).
    let cg = scope.cg();
    assert_eq!(cg.memory_limit(), "67108864");
    assert_eq!(cg.pids_max(), "50");
    assert_eq!(cg.cpu_quota_period(), ("50000".into(), "100000".into()));
    let props = |memory, cpu| {
        [
            ("MemoryMax", memory),
            ("TasksMax", "50"),
            ("CPUQuotaPerSecUSec", cpu),
        ]
    };
    assert_unit_props(&scope, &props("67108864", "500ms"), || pm.logs());
    let [mem, pids, _, cpu] = cg.inside_files();
    let script = format!("cat {mem} {pids} {cpu} /proc/self/cgroup");
    let out = pm.ok(&["exec", "limited", "sh", "-c", &script]);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["67108864", "50", "50000", "100000", "0::/"],
        "{}",
        pm.diag(&out)
    );

    // stats: podman reads the scope's cgroup itself.
    let out = pm.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "limited",
    ]);
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(
        fields.len() == 5 && fields[0] == "limited" && fields[1] == "1" && fields[4] == "67.11MB",
        "{}",
        pm.diag(&out)
    );

    // exec: the new process joins the scope.
    pm.ok(&["exec", "-d", "limited", "sleep", "1234"]);
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
        pm.logs()
    );

    // update (podman 4.3 has no --pids-limit for it: TasksMax stays); then a daemon-reload
    // (systemd applying each unit's properties to its cgroup again) leaves the new limits.
    pm.ok(&[
        "update",
        "--memory",
        "32m",
        "--memory-swap",
        "64m",
        "--cpus",
        "0.25",
        "limited",
    ]);
    assert!(
        !pm.calls.of("update", &id).is_empty(),
        "no hull update of {id}:\n{}",
        pm.logs()
    );
    let check_updated = |when: &str| {
        let files = (
            cg.memory_limit(),
            cg.memory_swap_limit(),
            cg.pids_max(),
            cg.cpu_quota_period(),
        );
        assert_eq!(
            files,
            (
                "33554432".into(),
                "67108864".into(),
                "50".into(),
                ("25000".into(), "100000".into())
            ),
            "{} files {when}\n{}{}",
            scope.dir().display(),
            journal(&scope.unit, 20),
            pm.logs()
        );
        assert_unit_props(&scope, &props("33554432", "250ms"), || pm.logs());
    };
    check_updated("after podman update");
    let out = pm.ok(&["exec", "limited", "sh", "-c", &script]);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["33554432", "50", "25000", "100000", "0::/"],
        "{}",
        pm.diag(&out)
    );
    let reload = run(Command::new("systemctl").arg("daemon-reload"));
    assert!(reload.success(), "{reload}");
    check_updated("after systemctl daemon-reload");

    // pause and unpause: cgroup.freeze of the scope.
    pm.ok(&["pause", "limited"]);
    assert_eq!(pm.inspect("limited", "{{.State.Status}}"), "paused");
    assert!(cg.frozen(), "{} is not frozen", scope.dir().display());
    let freeze = fs::read_to_string(scope.dir().join("cgroup.freeze")).unwrap_or_default();
    assert_eq!(freeze.trim(), "1");
    assert_eq!(pm.calls.of("pause", &id).len(), 1, "{}", pm.logs());
    pm.ok(&["unpause", "limited"]);
    assert_eq!(pm.inspect("limited", "{{.State.Status}}"), "running");
    assert!(cg.thawed(), "{} is not thawed", scope.dir().display());
    pm.ok(&["exec", "limited", "true"]);

    // stop (sleep as pid 1 ignores SIGTERM: SIGKILL after 1 s) and rm: hull deleted it, and
    // neither a unit nor the cgroup is left.
    pm.ok(&["stop", "-t", "1", "limited"]);
    assert_eq!(pm.inspect("limited", "{{.State.ExitCode}}"), "137");
    pm.ok(&["rm", "limited"]);
    assert!(!pm.calls.of("delete", &id).is_empty(), "{}", pm.logs());
    assert!(
        !pm.hull_root.join(&id).exists(),
        "hull's state of {id} left\n{}",
        pm.logs()
    );
    assert_scope_gone(&scope, &format!("libpod-*{id}*"), || pm.logs());
}

/// `podman container checkpoint` and `restore` with hull, on the guest's kernel where CRIU
/// works: a counting container is checkpointed (hull's `checkpoint` through conmon's
/// podman), restored, and counts on; then exported and imported as a new container, as a
/// migration does.
#[test]
#[ignore = "needs a kernel CRIU works on (criu check fails on this host's): runs in the VM guest (tests/vm/guest-tests.sh clients)"]
fn systemd_checkpoint_restore_and_migrate() {
    assert_systemd_host();
    let pm = Podman::with("pm-criu", Registration::Conf, Cgroups::ClientDefault);
    let count = |name: &str| -> u64 {
        pm.podman(&["exec", name, "cat", "/tmp/count"])
            .stdout
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let id = pm.start_detached(
        "counter",
        &[
            IMAGE,
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done",
        ],
    );
    assert!(util::wait_until(Duration::from_secs(30), || count(
        "counter"
    ) >= 3));
    pm.ok(&["container", "checkpoint", "counter"]);
    assert!(
        !pm.calls.of("checkpoint", &id).is_empty(),
        "{}",
        pm.calls.section()
    );
    assert_eq!(pm.inspect("counter", "{{.State.Status}}"), "exited");
    pm.ok(&["container", "restore", "counter"]);
    assert!(
        !pm.calls.of("restore", &id).is_empty(),
        "{}",
        pm.calls.section()
    );
    pm.wait_status("counter", "running");
    let at = count("counter");
    assert!(at >= 3, "restarted from scratch: {at}");
    assert!(util::wait_until(Duration::from_secs(30), || count(
        "counter"
    ) >= at + 3));
    // Migration: the checkpoint exported to a file, imported as another container.
    let archive = pm.s.path("counter.tar.gz");
    let archive = archive.to_str().unwrap();
    pm.ok(&["container", "checkpoint", "--export", archive, "counter"]);
    pm.ok(&["rm", "-f", "counter"]);
    pm.ok(&[
        "container",
        "restore",
        "--import",
        archive,
        "--name",
        "moved",
    ]);
    pm.wait_status("moved", "running");
    let moved = count("moved");
    assert!(
        moved >= at,
        "the imported container restarted: {moved} < {at}"
    );
    pm.ok(&["rm", "-f", "-t", "0", "moved"]);
}
