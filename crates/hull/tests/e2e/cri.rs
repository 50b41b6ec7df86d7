//! containerd 1.6's CRI plugin drives hull the way the kubelet does: a runtime handler
//! `hull` in config.toml (`runtime_type = "io.containerd.runc.v2"`, `options.BinaryName` =
//! the hull wrapper, `options.Root` in the Scratch dir) is what a RuntimeClass with
//! `handler: hull` selects. The default runtime stays `runc`, so only the
//! `RunPodSandboxRequest.runtime_handler` makes the pod a hull pod. The handler runs on the
//! cgroupfs driver with pods under the Scratch cgroup parent, or (the `systemd_` test) as
//! with a kubelet on its systemd driver: `SystemdCgroup = true` and pods in a
//! `kubepods-besteffort-pod<uid>.slice`.
//!
//! Debian 12 has no crictl. The client is Debian's python3-grpcio (from /usr/bin/python3),
//! used only to move bytes: this file encodes the few CRI messages it sends and decodes the
//! fields it reads (protobuf wire format, field numbers from the CRI API, runtime.v1), and a
//! ten-line script makes the unary call. Pods use the host network, so CNI is never called;
//! its directories, the pod logs, root, state, sockets and TMPDIR are all in the Scratch dir.
//!
//! As with `ctr`, the one thing outside: the shim's ttrpc socket in /run/containerd/s (one
//! shim per pod, named after the sandbox id); the shim removes it, teardown removes leftovers.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{assert_scope_gone, assert_scope_runs, assert_systemd_host, assert_unit_props};
use crate::common::{bundle_cgroups_path, journal, stop_units, unit_active, Cgroups, Scope};
use crate::common::{dir_names, hull, run, run_timeout, Scratch};
use crate::containerd_daemon::{containerd_config, ContainerdDaemon, IMAGE};
use crate::util;

/// Debian's python, which has python3-grpcio (not whatever python3 is first on PATH).
const PYTHON: &str = "/usr/bin/python3";
/// The containerd namespace of the CRI plugin; hull's `--root` is `<options.Root>/k8s.io`.
const NS: &str = "k8s.io";
/// The runtime handler (RuntimeClass `handler`) that selects hull.
const HANDLER: &str = "hull";
const RUNTIME: &str = "/runtime.v1.RuntimeService/";
const IMAGES: &str = "/runtime.v1.ImageService/";

/// `NamespaceMode` values: the container's own namespace, the host's.
const NS_MODE_CONTAINER: u64 = 1;
const NS_MODE_NODE: u64 = 2;
/// `ContainerState` values.
const CONTAINER_RUNNING: u64 = 1;
const CONTAINER_EXITED: u64 = 2;

/// The gRPC transport: one unary call, request and response as hex (no serializers: grpcio
/// passes bytes through). Exit 2 with `CODE: details` on stderr for a gRPC error.
const CLIENT_PY: &str = r#"import sys, grpc
sock, method, timeout, request = sys.argv[1:5]
call = grpc.insecure_channel("unix://" + sock).unary_unary(method)
try:
    response = call(bytes.fromhex(request), timeout=float(timeout))
except grpc.RpcError as e:
    sys.stderr.write("%s: %s\n" % (e.code().name, e.details()))
    sys.exit(2)
sys.stdout.write(response.hex())
"#;

// ---- protobuf, as much as the test needs ----

/// A protobuf message being built; fields are appended in call order.
#[derive(Debug, Default, Clone)]
struct Msg(Vec<u8>);

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Msg {
    fn new() -> Msg {
        Msg::default()
    }

    /// A varint field (wire type 0): ints, bools, enums.
    fn int(mut self, field: u64, v: u64) -> Msg {
        put_varint(&mut self.0, field << 3);
        put_varint(&mut self.0, v);
        self
    }

    /// A length-delimited field (wire type 2): strings, bytes, messages.
    fn bytes(mut self, field: u64, v: &[u8]) -> Msg {
        put_varint(&mut self.0, (field << 3) | 2);
        put_varint(&mut self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    fn str(self, field: u64, v: &str) -> Msg {
        self.bytes(field, v.as_bytes())
    }

    fn msg(self, field: u64, m: Msg) -> Msg {
        self.bytes(field, &m.0)
    }

    /// One entry of a `map<string, string>` field (a message: key = 1, value = 2).
    fn map_entry(self, field: u64, key: &str, value: &str) -> Msg {
        self.msg(field, Msg::new().str(1, key).str(2, value))
    }
}

/// A decoded message: its fields in wire order, varints as numbers, length-delimited ones as
/// bytes (fixed-width fields are skipped: the test reads none).
#[derive(Debug, Default)]
struct Decoded(Vec<(u64, Field)>);

#[derive(Debug)]
enum Field {
    Int(u64),
    Bytes(Vec<u8>),
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

impl Decoded {
    fn parse(buf: &[u8]) -> Option<Decoded> {
        let mut fields = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let key = get_varint(buf, &mut pos)?;
            let value = match key & 7 {
                0 => Field::Int(get_varint(buf, &mut pos)?),
                2 => {
                    let len = get_varint(buf, &mut pos)? as usize;
                    let v = buf.get(pos..pos + len)?.to_vec();
                    pos += len;
                    Field::Bytes(v)
                }
                1 => {
                    pos += 8;
                    continue;
                }
                5 => {
                    pos += 4;
                    continue;
                }
                _ => return None,
            };
            fields.push((key >> 3, value));
        }
        Some(Decoded(fields))
    }

    /// The last value of varint field `n` (proto3: absent means 0).
    fn int(&self, n: u64) -> u64 {
        self.0
            .iter()
            .rev()
            .find_map(|(f, v)| match v {
                Field::Int(i) if *f == n => Some(*i),
                _ => None,
            })
            .unwrap_or(0)
    }

    fn bytes(&self, n: u64) -> Option<&[u8]> {
        self.0.iter().rev().find_map(|(f, v)| match v {
            Field::Bytes(b) if *f == n => Some(b.as_slice()),
            _ => None,
        })
    }

    fn str(&self, n: u64) -> String {
        String::from_utf8_lossy(self.bytes(n).unwrap_or_default()).into_owned()
    }

    fn msg(&self, n: u64) -> Decoded {
        self.bytes(n).and_then(Decoded::parse).unwrap_or_default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

// ---- the CRI messages ----

/// A pod: `PodSandboxConfig` with metadata (name 1, uid 2, namespace 3), `log_directory`
/// (3) and `linux` (8): `cgroup_parent` (1) and a security context (2) whose namespace
/// options (1) are [`namespaces`].
fn pod_config(name: &str, uid: &str, log_dir: &Path, cgroup_parent: &str) -> Msg {
    let metadata = Msg::new().str(1, name).str(2, uid).str(3, "hull-e2e");
    let linux = Msg::new()
        .str(1, cgroup_parent)
        .msg(2, Msg::new().msg(1, namespaces()));
    Msg::new()
        .msg(1, metadata)
        .str(3, &log_dir.to_string_lossy())
        .map_entry(6, "hull-e2e", "cri")
        .msg(8, linux)
}

/// `NamespaceOption` as the kubelet sends it for a host-network pod, to the sandbox and to
/// each container: the host network (`network`, 1; so CNI is never called), a PID namespace
/// per container (`pid`, 2), the pod's IPC namespace (`ipc`, 3, the default).
fn namespaces() -> Msg {
    Msg::new().int(1, NS_MODE_NODE).int(2, NS_MODE_CONTAINER)
}

/// A container: `ContainerConfig` with metadata (1: name 1), image (2: `ImageSpec.image`
/// 1), command (3), envs (6: key 1, value 2) and `log_path` (11, relative to the pod's log
/// directory), and `linux` (15) whose security context (2) has [`namespaces`] (3).
fn container_config(name: &str, command: &[&str], env: &[(&str, &str)], log_path: &str) -> Msg {
    container_config_with(name, command, env, log_path, Msg::new())
}

/// [`container_config`] whose `linux` (15) also has `resources` (1), a
/// `LinuxContainerResources`.
fn container_config_with(
    name: &str,
    command: &[&str],
    env: &[(&str, &str)],
    log_path: &str,
    resources: Msg,
) -> Msg {
    let mut m = Msg::new()
        .msg(1, Msg::new().str(1, name))
        .msg(2, Msg::new().str(1, IMAGE));
    for c in command {
        m = m.str(3, c);
    }
    for (k, v) in env {
        m = m.msg(6, Msg::new().str(1, k).str(2, v));
    }
    let security = Msg::new().msg(3, namespaces());
    let mut linux = Msg::new();
    if !resources.0.is_empty() {
        linux = linux.msg(1, resources);
    }
    m.str(11, log_path).msg(15, linux.msg(2, security))
}

/// `LinuxContainerResources`: `cpu_period` (1), `cpu_quota` (2), `cpu_shares` (3),
/// `memory_limit_in_bytes` (4).
fn resources(cpu_period: u64, cpu_quota: u64, cpu_shares: u64, memory: u64) -> Msg {
    Msg::new()
        .int(1, cpu_period)
        .int(2, cpu_quota)
        .int(3, cpu_shares)
        .int(4, memory)
}

/// What `ContainerStatus` says of a container (`ContainerStatusResponse.status`, 1).
#[derive(Debug)]
struct Status {
    /// `state` (3), a `ContainerState`.
    state: u64,
    /// `exit_code` (7).
    exit_code: i32,
    /// `reason` (10): `Completed` or `Error` once exited.
    reason: String,
    /// `log_path` (15), absolute.
    log_path: String,
}

/// What `ExecSync` returned: stdout (1), stderr (2), exit code (3).
#[derive(Debug)]
struct ExecResult {
    stdout: String,
    stderr: String,
    exit_code: i32,
}

// ---- the daemon ----

/// One test's private containerd with the CRI plugin on.
struct Cri {
    d: ContainerdDaemon,
    /// The CRI client script.
    client: PathBuf,
    /// The pods' log directory.
    logs_dir: PathBuf,
    /// The cgroup parent of the test's pods (under the Scratch cgroup parent; with the
    /// systemd driver the pod slice's path, `/kubepods.slice/…/kubepods-besteffort-pod<uid>.slice`).
    cgroup_parent: String,
    cgroups: Cgroups,
    /// Slice units to stop on drop: the pod slice, and its parents if this test started them.
    slices: Vec<String>,
    /// Containers (not sandboxes) this test made: their scopes are stopped on drop.
    containers: std::cell::RefCell<Vec<String>>,
}

impl Deref for Cri {
    type Target = ContainerdDaemon;
    fn deref(&self) -> &ContainerdDaemon {
        &self.d
    }
}

impl Cri {
    /// A CRI whose hull handler is on the cgroupfs driver.
    fn new(name: &str) -> Cri {
        Cri::with(name, Cgroups::Cgroupfs)
    }

    fn with(name: &str, cgroups: Cgroups) -> Cri {
        let s = Scratch::new(name);
        let mut slices = Vec::new();
        let cgroup_parent = match cgroups {
            Cgroups::Cgroupfs => {
                s.cgroup_parent();
                s.cgroup("pods")
            }
            Cgroups::ClientDefault => {
                // The kubelet's systemd names: the pod's uid with `_` for `-` (a `-` in a slice
                // name is a level), in the QoS class's slice, in kubepods.slice.
                let pod_slice =
                    format!("kubepods-besteffort-pod{}.slice", s.name.replace('-', "_"));
                for parent in ["kubepods.slice", "kubepods-besteffort.slice"] {
                    if !unit_active(parent) {
                        slices.push(parent.to_owned());
                    }
                }
                slices.push(pod_slice.clone());
                crate::common::expand_slice(&pod_slice)
            }
        };
        for sub in ["cni/bin", "cni/net.d", "pods"] {
            fs::create_dir_all(s.path(sub)).unwrap();
        }
        let client = s.path("cri_client.py");
        fs::write(&client, CLIENT_PY).unwrap();
        let logs_dir = s.path("pods");
        let restrict_oom = !may_lower_oom_score_adj();
        // One image: the sandbox ("pause") image and the workload image; its default command
        // keeps running, as a pause image's does.
        let d = ContainerdDaemon::start(
            s,
            NS,
            "hull",
            false,
            |dir, wrapper, root| config_toml(dir, wrapper, root, restrict_oom, cgroups),
            &["sleep", "3600"],
        );
        let mut c = Cri {
            d,
            client,
            logs_dir,
            cgroup_parent,
            cgroups,
            slices,
            containers: Default::default(),
        };
        c.d.systemd = cgroups == Cgroups::ClientDefault;
        // The plugin learns of the image from containerd's events: wait until it knows it
        // (`ImageStatusResponse.image`, 1), or RunPodSandbox would try to pull it. This is
        // also the wait for the CRI service itself.
        let mut last = Err(String::new());
        let known = util::wait_until(Duration::from_secs(20), || {
            last = c.call(
                &format!("{IMAGES}ImageStatus"),
                Msg::new().msg(1, Msg::new().str(1, IMAGE)),
            );
            last.as_ref().is_ok_and(|r| r.bytes(1).is_some())
        });
        assert!(known, "CRI does not see {IMAGE}: {last:?}\n{}", c.logs());
        c
    }

    /// One CRI call; the decoded response or the gRPC error.
    fn call(&self, method: &str, req: Msg) -> Result<Decoded, String> {
        cri_call(&self.client, &self.sock, method, &req)
    }

    /// A RuntimeService call that must succeed.
    #[track_caller]
    fn ok(&self, method: &str, req: Msg) -> Decoded {
        match self.call(&format!("{RUNTIME}{method}"), req) {
            Ok(r) => r,
            Err(e) => panic!("{method}: {e}\n{}", self.logs()),
        }
    }

    /// `RunPodSandbox` (config 1, runtime_handler 2); the sandbox id (1).
    #[track_caller]
    fn run_pod(&self, config: &Msg) -> String {
        let id = self
            .ok(
                "RunPodSandbox",
                Msg::new().msg(1, config.clone()).str(2, HANDLER),
            )
            .str(1);
        assert!(!id.is_empty(), "no sandbox id\n{}", self.logs());
        self.shims.borrow_mut().push(id.clone());
        id
    }

    /// `CreateContainer` (pod_sandbox_id 1, config 2, sandbox_config 3); the container id
    /// (1).
    #[track_caller]
    fn create_container(&self, pod: &str, pod_config: &Msg, config: Msg) -> String {
        let req = Msg::new()
            .str(1, pod)
            .msg(2, config)
            .msg(3, pod_config.clone());
        let id = self.ok("CreateContainer", req).str(1);
        assert!(!id.is_empty(), "no container id\n{}", self.logs());
        self.containers.borrow_mut().push(id.clone());
        id
    }

    /// `CreateContainer` then `StartContainer` (container_id 1): the shim's create and start.
    #[track_caller]
    fn start_container(&self, pod: &str, pod_config: &Msg, config: Msg) -> String {
        let id = self.create_container(pod, pod_config, config);
        self.ok("StartContainer", Msg::new().str(1, &id));
        id
    }

    /// `ContainerStatus` (container_id 1).
    #[track_caller]
    fn status(&self, id: &str) -> Status {
        let st = self.ok("ContainerStatus", Msg::new().str(1, id)).msg(1);
        Status {
            state: st.int(3),
            exit_code: st.int(7) as i32,
            reason: st.str(10),
            log_path: st.str(15),
        }
    }

    /// Polls `ContainerStatus` until the container is in `state`.
    #[track_caller]
    fn wait_state(&self, id: &str, state: u64) -> Status {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let st = self.status(id);
            if st.state == state {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "{id} is {st:?}, not state {state}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ExecSync` (container_id 1, cmd 2, timeout 3 in seconds).
    #[track_caller]
    fn exec_sync(&self, id: &str, cmd: &[&str]) -> ExecResult {
        let mut req = Msg::new().str(1, id);
        for c in cmd {
            req = req.str(2, c);
        }
        let r = self.ok("ExecSync", req.int(3, 20));
        ExecResult {
            stdout: r.str(1),
            stderr: r.str(2),
            exit_code: r.int(3) as i32,
        }
    }

    /// `StopPodSandbox` then `RemovePodSandbox` (pod_sandbox_id 1).
    fn remove_pod(&self, id: &str) -> Result<(), String> {
        for method in ["StopPodSandbox", "RemovePodSandbox"] {
            self.call(&format!("{RUNTIME}{method}"), Msg::new().str(1, id))?;
        }
        Ok(())
    }

    /// The cgroup of container (or sandbox) `id` of a pod: `<cgroup_parent>/<id>`
    /// (cgroupfs).
    fn cgroup(&self, id: &str) -> String {
        assert_eq!(self.cgroups, Cgroups::Cgroupfs);
        format!("{}/{id}", self.cgroup_parent)
    }

    /// The systemd scope of container (or sandbox) `id` of a pod in the pod slice: asserts
    /// the bundle asks for `<pod slice>:cri-containerd:<id>`, as the CRI plugin makes it of a
    /// cgroup parent ending in `.slice`.
    #[track_caller]
    fn scope(&self, id: &str) -> Scope {
        let path = bundle_cgroups_path(&self.bundle(id));
        let slice = self.cgroup_parent.rsplit('/').next().unwrap_or_default();
        assert_eq!(
            path,
            format!("{slice}:cri-containerd:{id}"),
            "cgroupsPath\n{}",
            self.logs()
        );
        Scope::of(&path).unwrap()
    }

    /// Live processes other than containerd that mention the Scratch dir (shims, containers,
    /// hull): `pid: cmdline`.
    fn our_processes(&self) -> Vec<String> {
        let dir = self.s.dir.clone();
        let needle = dir.to_string_lossy().into_owned();
        let daemon = self.daemon.pid();
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        let pids: Vec<i32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != daemon && !util::is_gone(pid))
            .filter(|pid| {
                let p = PathBuf::from(format!("/proc/{pid}"));
                let cmdline = fs::read(p.join("cmdline")).unwrap_or_default();
                let under = |l: &str| fs::read_link(p.join(l)).is_ok_and(|l| l.starts_with(&dir));
                String::from_utf8_lossy(&cmdline).contains(&needle) || under("cwd") || under("root")
            })
            .collect();
        util::describe_pids(&pids)
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        // Through the CRI (hull's kill and delete); ContainerdDaemon's drop does the rest.
        for id in self.shims.borrow().iter() {
            let _ = self.remove_pod(id);
        }
        if self.cgroups == Cgroups::ClientDefault {
            // The scopes, then the slices (the pod's first: it stops what it still holds).
            let mut units: Vec<String> = self
                .shims
                .borrow()
                .iter()
                .chain(self.containers.borrow().iter())
                .map(|id| format!("cri-containerd-{id}.scope"))
                .collect();
            units.extend(self.slices.iter().rev().cloned());
            stop_units(&units);
        }
    }
}

/// One unary call through the python transport.
fn cri_call(client: &Path, sock: &Path, method: &str, req: &Msg) -> Result<Decoded, String> {
    let out = run_timeout(
        Command::new(PYTHON)
            .arg(client)
            .arg(sock)
            .arg(method)
            .arg("30")
            .arg(hex(&req.0)),
        Duration::from_secs(40),
    );
    if !out.success() {
        return Err(format!("{method}: {}", out.stderr.trim()));
    }
    unhex(&out.stdout)
        .and_then(|b| Decoded::parse(&b))
        .ok_or_else(|| format!("{method}: bad response {:?}", out.stdout))
}

/// Whether this process may lower an oom_score_adj below the inherited minimum: it needs
/// CAP_SYS_RESOURCE (bit 24), and hosts whose PID 1 lacks it in its bounding set (some CI
/// VMs) cannot give the sandbox its -998, through hull or runc alike ("permission denied").
fn may_lower_oom_score_adj() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    util::status_field(&status, "CapEff")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// config.toml of a private containerd under `d` whose CRI plugin has a `hull` handler.
/// `restrict_oom_score_adj`: whether the plugin keeps oom_score_adj at or above its own (the
/// sandbox's -998 becomes containerd's 0).
fn config_toml(
    d: &Path,
    wrapper: &Path,
    hull_root: &Path,
    restrict_oom: bool,
    cgroups: Cgroups,
) -> String {
    let base = containerd_config(d, true);
    format!(
        r#"{base}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  disable_cgroup = false
  disable_apparmor = true
  restrict_oom_score_adj = {restrict_oom}
  enable_selinux = false
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER}.options]
        BinaryName = "{wrapper}"
        Root = "{hull_root}"
        SystemdCgroup = {systemd}

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/net.d"
"#,
        d = d.display(),
        wrapper = wrapper.display(),
        hull_root = hull_root.display(),
        systemd = cgroups == Cgroups::ClientDefault,
    )
}

/// A pod selected by `runtime_handler = "hull"`: its sandbox, a workload that exits, a
/// long-running container with an exec, then stop and remove: hull ran and deleted each one,
/// and nothing is left.
#[test]
fn pod_lifecycle_with_hull_handler() {
    let c = Cri::new("cri-pod");
    let pod_config = pod_config("pod", &c.s.name, &c.logs_dir, &c.cgroup_parent);
    let pod = c.run_pod(&pod_config);
    // The sandbox ("pause") container is hull's, under the handler's Root.
    c.assert_hull_ran(&pod);
    let st = c.ok("PodSandboxStatus", Msg::new().str(1, &pod)).msg(1);
    assert_eq!(st.str(9), HANDLER, "PodSandboxStatus.runtime_handler");
    // hull agrees it runs, and gave it the sandbox's oom_score_adj (the kubelet's -998,
    // unless the plugin had to restrict it to containerd's own 0).
    let out = run(Command::new(hull())
        .arg("--root")
        .arg(c.hull_root())
        .args(["state", &pod]));
    let state: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    assert_eq!(state["status"], "running", "{}", c.diag(&out));
    let pid = state["pid"].as_i64().unwrap_or(0);
    let adj = fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap_or_default();
    let want = if may_lower_oom_score_adj() {
        "-998"
    } else {
        "0"
    };
    assert_eq!(
        adj.trim(),
        want,
        "oom_score_adj of the sandbox's init {pid}"
    );
    util::assert_cgroups_exist(&c.cgroup(&pod));

    // A workload: env, output to the CRI log, exit code.
    let once = c.start_container(
        &pod,
        &pod_config,
        container_config(
            "once",
            &["sh", "-c", "echo $GREETING; id -u; exit 3"],
            &[("GREETING", "hello from cri")],
            "once.log",
        ),
    );
    c.assert_hull_ran(&once);
    let st = c.wait_state(&once, CONTAINER_EXITED);
    assert_eq!(
        (st.exit_code, st.reason.as_str()),
        (3, "Error"),
        "{st:?}\n{}",
        c.logs()
    );
    assert_eq!(
        st.log_path,
        c.logs_dir.join("once.log").to_string_lossy(),
        "{st:?}"
    );
    // CRI log lines: `<time> stdout F <line>`.
    let mut log = String::new();
    let logged = util::wait_until(Duration::from_secs(10), || {
        log = fs::read_to_string(&st.log_path).unwrap_or_default();
        log.lines().count() >= 2
    });
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .collect();
    assert!(
        logged && lines == ["stdout F hello from cri", "stdout F 0"],
        "{log:?}\n{}",
        c.logs()
    );

    // A long-running container and ExecSync: `hull exec --process … --detach`.
    let sleeper = c.start_container(
        &pod,
        &pod_config,
        container_config("sleeper", &["sleep", "3599"], &[], "sleeper.log"),
    );
    c.assert_hull_ran(&sleeper);
    c.wait_state(&sleeper, CONTAINER_RUNNING);
    let r = c.exec_sync(
        &sleeper,
        &[
            "sh",
            "-c",
            "echo out $(cat /proc/1/cmdline | tr '\\0' ' '); echo err >&2; exit 4",
        ],
    );
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.exit_code),
        ("out sleep 3599\n", "err\n", 4),
        "{r:?}\n{}",
        c.logs()
    );
    let execs = c.calls.of("exec", &sleeper);
    assert!(
        !execs.is_empty()
            && execs
                .iter()
                .all(|l| l.contains("--process") && l.contains("--detach")),
        "{}",
        c.logs()
    );
    let st = c.status(&sleeper);
    assert_eq!(st.state, CONTAINER_RUNNING, "{st:?}\n{}", c.logs());

    // A container hull cannot start: the kubelet sees hull's error, worded as runc's.
    let broken = c.create_container(
        &pod,
        &pod_config,
        container_config("broken", &["/nonexistent"], &[], "broken.log"),
    );
    let err = c
        .call(
            &format!("{RUNTIME}StartContainer"),
            Msg::new().str(1, &broken),
        )
        .expect_err("StartContainer of /nonexistent");
    assert!(
        err.contains(
            "OCI runtime create failed: hull create failed: unable to start container \
             process: exec: \"/nonexistent\": stat /nonexistent: no such file or directory"
        ),
        "{err}\n{}",
        c.logs()
    );
    assert!(!c.calls.of("create", &broken).is_empty(), "{}", c.logs());

    // Stop and remove the pod: hull deleted the three that ran, nothing is left.
    if let Err(e) = c.remove_pod(&pod) {
        panic!("{e}\n{}", c.logs());
    }
    for id in [&pod, &once, &sleeper] {
        assert!(
            !c.calls.of("delete", id).is_empty(),
            "no hull delete of {id}\n{}",
            c.logs()
        );
    }
    let shim = c.shim_socket(&pod);
    let mut left = Vec::new();
    let clean = util::wait_until(Duration::from_secs(10), || {
        left = c.our_processes();
        left.is_empty()
            && dir_names(&c.hull_root()).is_empty()
            && [&pod, &once, &sleeper, &broken]
                .iter()
                .all(|id| util::existing_cgroups(&c.cgroup(id)).is_empty())
            && !shim.exists()
    });
    assert!(
        clean,
        "left: processes {left:?}, in hull's root {:?}, cgroups {:?}, shim socket {}\n{}",
        dir_names(&c.hull_root()),
        [&pod, &once, &sleeper, &broken]
            .iter()
            .flat_map(|id| util::existing_cgroups(&c.cgroup(id)))
            .collect::<Vec<_>>(),
        shim.exists(),
        c.logs()
    );
    let out = c.ok("ListPodSandbox", Msg::new());
    assert!(out.0.is_empty(), "pods left: {out:?}");
}

/// A pod as a kubelet on its systemd cgroup driver makes it: the hull handler with
/// `SystemdCgroup = true` (the shim runs hull with `--systemd-cgroup`) and the cgroup parent
/// `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice`. The CRI
/// plugin gives the sandbox and each container the cgroupsPath
/// `kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`, and hull asks systemd for the
/// scope `cri-containerd-<id>.scope` in the pod's slice (systemd making the slices above it).
/// A container's CPU and memory limits are checked as files, unit properties and from
/// inside, at create and after `UpdateContainerResources`; once the pod is removed no scope
/// and no cgroup of it is left.
#[test]
#[ignore = "needs systemd as PID 1 and cgroup v2: runs in the VM guest (tests/vm/guest-tests.sh clients)"]
fn systemd_pod_in_kubepods_slice() {
    assert_systemd_host();
    let c = Cri::with("cri-sd", Cgroups::ClientDefault);
    let init = |id: &str| -> i32 {
        let out = run(Command::new(hull())
            .arg("--root")
            .arg(c.hull_root())
            .args(["state", id]));
        let state: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        assert_eq!(state["status"], "running", "{}", c.diag(&out));
        state["pid"].as_i64().unwrap_or(0) as i32
    };
    let pod_config = pod_config("pod", &c.s.name, &c.logs_dir, &c.cgroup_parent);
    let pod = c.run_pod(&pod_config);
    c.assert_hull_ran(&pod);
    let pod_scope = c.scope(&pod);
    assert_eq!(
        pod_scope.cgroup,
        format!("{}/cri-containerd-{pod}.scope", c.cgroup_parent)
    );
    assert_scope_runs(&pod_scope, init(&pod), || c.logs());

    // A container with CPU and memory limits: 0.5 CPU, cpu_shares 1024 (cpu.weight 39 by
    // runc's linear map, CPUWeight the same), 64 MiB.
    let limited = c.start_container(
        &pod,
        &pod_config,
        container_config_with(
            "limited",
            &["sleep", "3599"],
            &[],
            "limited.log",
            resources(100_000, 50_000, 1024, 64 << 20),
        ),
    );
    c.assert_hull_ran(&limited);
    c.wait_state(&limited, CONTAINER_RUNNING);
    let scope = c.scope(&limited);
    assert_eq!(
        scope.cgroup,
        format!("{}/cri-containerd-{limited}.scope", c.cgroup_parent)
    );
    assert_scope_runs(&scope, init(&limited), || c.logs());
    let cg = scope.cg();
    let weight = || {
        fs::read_to_string(scope.dir().join("cpu.weight"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    assert_eq!(cg.memory_limit(), "67108864");
    assert_eq!(cg.cpu_quota_period(), ("50000".into(), "100000".into()));
    assert_eq!(weight(), "39");
    assert_unit_props(
        &scope,
        &[
            ("MemoryMax", "67108864"),
            ("CPUQuotaPerSecUSec", "500ms"),
            ("CPUWeight", "39"),
        ],
        || c.logs(),
    );
    let inside = [
        "cat",
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/cpu.max",
        "/sys/fs/cgroup/cpu.weight",
        "/proc/self/cgroup",
    ];
    let r = c.exec_sync(&limited, &inside);
    assert_eq!(
        (r.stdout.split_whitespace().collect::<Vec<_>>(), r.exit_code),
        (vec!["67108864", "50000", "100000", "39", "0::/"], 0),
        "{r:?}\n{}",
        c.logs()
    );
    let execs = c.calls.of("exec", &limited);
    assert!(
        !execs.is_empty() && execs.iter().all(|l| l.contains(" --systemd-cgroup exec ")),
        "{}",
        c.logs()
    );

    // UpdateContainerResources (container_id 1, linux 2), as for an in-place resize: the shim
    // runs `hull --systemd-cgroup update --resources -`.
    c.ok(
        "UpdateContainerResources",
        Msg::new()
            .str(1, &limited)
            .msg(2, resources(100_000, 25_000, 1024, 32 << 20)),
    );
    assert!(
        c.calls
            .of("update", &limited)
            .iter()
            .any(|l| l.contains(" --systemd-cgroup update --resources -")),
        "no hull update of {limited}\n{}",
        c.logs()
    );
    assert_eq!(
        (cg.memory_limit(), cg.cpu_quota_period(), weight()),
        (
            "33554432".into(),
            ("25000".into(), "100000".into()),
            "39".into()
        ),
        "{}{}",
        journal(&scope.unit, 20),
        c.logs()
    );
    assert_unit_props(
        &scope,
        &[
            ("MemoryMax", "33554432"),
            ("CPUQuotaPerSecUSec", "250ms"),
            ("CPUWeight", "39"),
        ],
        || c.logs(),
    );
    let r = c.exec_sync(&limited, &inside);
    assert_eq!(
        (r.stdout.split_whitespace().collect::<Vec<_>>(), r.exit_code),
        (vec!["33554432", "25000", "100000", "39", "0::/"], 0),
        "{r:?}\n{}",
        c.logs()
    );

    // Stop and remove the pod: hull deleted both, and neither scope nor cgroup is left.
    if let Err(e) = c.remove_pod(&pod) {
        panic!("{e}\n{}", c.logs());
    }
    for id in [&pod, &limited] {
        assert!(
            !c.calls.of("delete", id).is_empty(),
            "no hull delete of {id}\n{}",
            c.logs()
        );
    }
    assert_scope_gone(&scope, &format!("cri-containerd-*{limited}*"), || c.logs());
    assert_scope_gone(&pod_scope, &format!("cri-containerd-*{pod}*"), || c.logs());
    assert!(
        dir_names(&c.hull_root()).is_empty(),
        "left in hull's root: {:?}",
        dir_names(&c.hull_root())
    );
}
