//! A private containerd 1.6 for one test, shared by the `ctr` tests and the CRI test: root,
//! state, the gRPC and ttrpc sockets and TMPDIR (the shim's console sockets and process.json
//! files) under the test's Scratch dir; hull behind a wrapper that logs its calls; the busybox
//! image imported. Teardown stops the daemon, kills what is left under the dir and removes the
//! sockets the 1.6 shim leaves in /run/containerd/s, the one path it puts outside.
//!
//! The client's own teardown (`ctr task delete`, `RemovePodSandbox`) runs first, in the Drop
//! of the struct that holds this one.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{assert_shim_ran_hull, hull_wrapper, kill_processes_under, run, shim_logs};
use crate::common::{shim_socket, CallLog, Daemon, Output, Scratch};

const CONTAINERD: &str = "/usr/bin/containerd";
pub const CTR: &str = "/usr/bin/ctr";
/// The busybox image every test imports.
pub const IMAGE: &str = "localhost/busybox:e2e";

pub struct ContainerdDaemon {
    /// Declared before `s`: stopped before the Scratch teardown.
    pub daemon: Daemon,
    pub s: Scratch,
    /// The containerd namespace the test works in.
    pub ns: &'static str,
    pub sock: PathBuf,
    /// The wrapper's call log.
    pub calls: CallLog,
    /// What the shim runs as its runtime.
    pub wrapper: PathBuf,
    /// `options.Root`; hull's `--root` is `<root>/<ns>`.
    pub root: PathBuf,
    /// The shims this test started (container ids for `ctr`, sandbox ids for the CRI): their
    /// sockets are removed on drop.
    pub shims: RefCell<Vec<String>>,
    /// Whether the shim runs hull with `--systemd-cgroup` (its `SystemdCgroup` option).
    pub systemd: bool,
}

impl ContainerdDaemon {
    /// Starts containerd on the config `config(dir, wrapper, root)` returns, with the wrapper
    /// at `bin/<wrapper_name>` (first in containerd's PATH if `wrapper_in_path`), and imports
    /// the busybox image with `image_cmd` as its command.
    pub fn start(
        s: Scratch,
        ns: &'static str,
        wrapper_name: &str,
        wrapper_in_path: bool,
        config: impl FnOnce(&Path, &Path, &Path) -> String,
        image_cmd: &[&str],
    ) -> ContainerdDaemon {
        let d = s.dir.clone();
        for sub in ["root", "state", "tmp", "bin", "opt"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        let calls = d.join("calls.log");
        let wrapper = d.join("bin").join(wrapper_name);
        hull_wrapper(&wrapper, &calls);
        let root = d.join("hull-root");
        let sock = d.join("c.sock");
        fs::write(d.join("config.toml"), config(&d, &wrapper, &root)).unwrap();
        let mut cmd = Command::new(CONTAINERD);
        cmd.arg("--config")
            .arg(d.join("config.toml"))
            .env("TMPDIR", d.join("tmp"));
        if wrapper_in_path {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", d.join("bin").display()));
        }
        let probe = sock.clone();
        let daemon = Daemon::start("containerd", &d, &mut cmd, move || {
            probe.exists() && run(Command::new(CTR).arg("-a").arg(&probe).arg("version")).success()
        });
        let c = ContainerdDaemon {
            daemon,
            s,
            ns,
            sock,
            calls: CallLog::new(calls),
            wrapper,
            root,
            shims: RefCell::new(Vec::new()),
            systemd: false,
        };
        let archive = c.s.oci_archive(IMAGE, image_cmd);
        c.ok(&["image", "import", &archive.to_string_lossy()]);
        c
    }

    /// `ctr -a <sock> -n <ns> ARGS…`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(CTR);
        c.arg("-a").arg(&self.sock).args(["-n", self.ns]).args(args);
        c
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    /// Runs ctr and panics with the diagnostics unless it succeeded.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.ctr(args);
        assert!(out.success(), "{}", self.diag(&out));
        out
    }

    /// hull's `--root` for this test's containers.
    pub fn hull_root(&self) -> PathBuf {
        self.root.join(self.ns)
    }

    /// The shim's task dir: a bundle per container.
    pub fn tasks(&self) -> PathBuf {
        self.s
            .path("state/io.containerd.runtime.v2.task")
            .join(self.ns)
    }

    /// The bundle the shim made for `id` (hull's `--log` is `<bundle>/log.json`).
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.tasks().join(id)
    }

    /// Asserts hull (through the wrapper) created and started `id` with the flags the shim
    /// passes: its `--root` under `options.Root`, its log in the bundle as JSON,
    /// `--systemd-cgroup` as `SystemdCgroup` says.
    #[track_caller]
    pub fn assert_hull_ran(&self, id: &str) {
        let root = self.hull_root().to_string_lossy().into_owned();
        let bundle = self.bundle(id);
        assert_shim_ran_hull(&self.calls, id, &root, &bundle, self.systemd, || {
            self.logs()
        });
    }

    /// The 1.6 shim's socket for shim `id` (a container's, or a pod's for the CRI).
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        shim_socket(&self.sock, self.ns, id)
    }

    pub fn diag(&self, out: &Output) -> String {
        format!("{out}\n{}", self.logs())
    }

    /// The runtime calls, hull's logs (`<bundle>/log.json` of every live bundle), what hull
    /// has in its root, and the daemon's log tail.
    pub fn logs(&self) -> String {
        let root = self.hull_root();
        shim_logs(&self.calls, &self.tasks(), Some(&root), &self.daemon, 60)
    }
}

impl Drop for ContainerdDaemon {
    fn drop(&mut self) {
        self.daemon.stop();
        kill_processes_under(&self.s.dir);
        for id in self.shims.borrow().iter() {
            let _ = fs::remove_file(self.shim_socket(id));
        }
    }
}

/// The config.toml of a private containerd under `d`: root, state, its gRPC and ttrpc
/// sockets, the opt plugin's dir all in `d`, a debug log; the CRI plugin on only if `cri`
/// (the caller appends its section).
pub fn containerd_config(d: &Path, cri: bool) -> String {
    // ctr needs no CRI; the opt plugin would make /opt/containerd; the snapshotters this host
    // cannot use only add noise to the log.
    let no_cri = if cri {
        ""
    } else {
        "\n  \"io.containerd.grpc.v1.cri\","
    };
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [{no_cri}
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
        d = d.display()
    )
}
