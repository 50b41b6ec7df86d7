//! runc's container-escape CVE classes, each performed against a real container: the test
//! builds the malicious bundle, runs the attack from inside, and asserts that the host (a
//! target the test owns: a copy of the runtime, a directory or cgroup of its own, the
//! container's own namespaces) is unharmed. The mount-race and /dev classes are in
//! `cve_mounts`; docs/security.md lists every CVE with its test.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::namespaces::new_user_namespace;
use crate::util::{
    cap_mask, cgroup_hierarchies, open_fd, raw, runtime, runtime_name, skip_on_runc, status_field,
    wait_until, write, Call, Out, Test,
};

/// How long an in-container attack script may take before the test gives up on it.
const ATTACK_TIMEOUT: Duration = Duration::from_secs(40);

// --- shared helpers ---------------------------------------------------------------------

/// A capability field (`CapInh`, …) of a /proc/PID/status dump as a mask.
#[track_caller]
fn caps_field(status: &str, key: &str) -> u64 {
    let v = status_field(status, key).unwrap_or_else(|| panic!("no {key} in:\n{status}"));
    u64::from_str_radix(v, 16).unwrap_or_else(|e| panic!("{key}: {v:?}: {e}"))
}

/// `create --bundle B --pid-file F ID` through `c` with the current config; the init's host
/// pid, recorded for the guard to kill.
#[track_caller]
fn create_via(t: &Test, c: &Call, id: &str) -> i32 {
    t.write_config();
    let pid_file = t.path(&format!("{id}.pid"));
    let b = t.bundle_str();
    let pf = pid_file.to_string_lossy().into_owned();
    t.call(&["create", "--bundle", &b, "--pid-file", &pf, id], c)
        .ok();
    let text = fs::read_to_string(&pid_file).expect("pid file");
    let pid: i32 = text.trim().parse().expect("pid in the pid file");
    t.track_pid(pid);
    pid
}

/// `exec ID CMD…` into a container of the test.
fn exec(t: &Test, id: &str, flags: &[&str], cmd: &[&str]) -> Out {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(id);
    args.extend_from_slice(cmd);
    t.hull(&args)
}

/// Polls a file until it holds `needle` or `timeout` passes; what it held last.
fn wait_for_text(path: &Path, needle: &str, timeout: Duration) -> (bool, String) {
    let mut text = String::new();
    let ok = wait_until(timeout, || {
        text = fs::read_to_string(path).unwrap_or_default();
        text.contains(needle)
    });
    (ok, text)
}

/// Every file and directory under `dir` with its contents (directories as `<dir>`): a
/// snapshot to prove an attack target was not written to.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(rel, "<dir>".to_string());
                todo.push(p);
            } else {
                let text = fs::read(&p).unwrap_or_default();
                out.insert(rel, String::from_utf8_lossy(&text).into_owned());
            }
        }
    }
    out
}

/// A fake /proc: the files a runtime writes (sysctls, oom_score_adj, LSM attributes) as
/// plain files holding `fake`, so that a write that lands here is visible.
fn fake_proc_tree(dir: &Path) {
    for f in [
        "sys/kernel/domainname",
        "sys/net/ipv4/ip_forward",
        "self/oom_score_adj",
        "self/attr/exec",
        "thread-self/attr/exec",
    ] {
        write(&dir.join(f), "fake\n");
    }
}

/// A fake /sys: a few directories a runtime mounts on or below, and a file.
fn fake_sys_tree(dir: &Path) {
    for d in ["fs/cgroup", "kernel/security", "firmware"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    write(&dir.join("marker"), "fake\n");
}

/// Reads a file of the container's namespaces (`--uts`, `--net`) through nsenter(1) from
/// the host.
fn read_in_ns(pid: i32, ns: &str, path: &str) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--{ns}=/proc/{pid}/ns/{ns}"))
        .args(["cat", path])
        .output()
        .expect("run nsenter");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o666) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

// --- CVE-2019-5736: a writable handle on the runtime binary --------------------------------

/// A copy of the runtime under test in the test's own directory (alone in a directory of
/// its own, as it is the lower layer of hull's read-only overlay view). The 5736 tests drive
/// their containers with this copy, so that a vulnerable runtime only damages the copy.
fn runtime_copy(t: &Test) -> PathBuf {
    let dir = t.mkdir("runtime");
    let copy = dir.join(runtime_name());
    fs::copy(runtime(), &copy).expect("copy the runtime");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Copies the dynamic loader and libraries of `bin` (as `ldd` lists them) into the rootfs
/// at the same paths, so that the runtime's binary can run inside the container.
fn install_libraries(rootfs: &Path, bin: &Path) {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    for lib in text.split_whitespace().filter(|w| w.starts_with('/')) {
        let dest = rootfs.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(lib, &dest).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
}

/// How the container comes to run the runtime's own binary.
#[derive(Clone, Copy)]
enum Entry {
    /// `process.args[0]` (or the exec'd command) is `/proc/self/exe`.
    ProcSelfExe,
    /// A script whose interpreter line is `#!/proc/self/exe`.
    Shebang,
}

/// The in-container attacker's second half: finds the process that runs the runtime's
/// binary (argv[0] `/proc/self/exe`, blocked opening `fifo` as its `--log`), opens
/// `/proc/PID/exe` read-only, lets it exit by reading the fifo, then reopens the file for
/// writing through `/proc/self/fd/3` (retrying while the kernel says it is busy: a
/// vulnerable runtime's binary is free once its last process is gone). Reports each step
/// to /cve-result, `done` last.
fn watcher_script(fifo: &str) -> String {
    format!(
        r#"exec >/cve-result 2>&1
pid=
i=0
while [ -z "$pid" ] && [ $i -lt 200 ]; do
  for d in /proc/[0-9]*; do
    case "$(tr '\0' ' ' <$d/cmdline 2>/dev/null)" in
      "/proc/self/exe "*"{fifo} "*) pid=${{d#/proc/}} ;;
    esac
  done
  [ -n "$pid" ] || {{ i=$((i+1)); sleep 0.05; }}
done
if [ -z "$pid" ]; then echo "attacker: not found"; echo done; exit 0; fi
echo "attacker: $pid $(tr '\0' ' ' </proc/$pid/cmdline)"
if exec 3</proc/$pid/exe; then
  echo "handle: $(readlink /proc/self/fd/3)"
else
  echo "handle: none"; cat {fifo} >/dev/null; echo done; exit 0
fi
cat {fifo} >/dev/null
n=0
while :; do
  if echo pwned 2>/cve-err >/proc/self/fd/3; then echo "write: succeeded"; break; fi
  err=$(cat /cve-err)
  case "$err" in
    *busy*)
      n=$((n+1))
      if [ $n -ge 300 ]; then echo "write: still busy: $err"; break; fi
      sleep 0.05 ;;
    *) echo "write: failed: $err"; break ;;
  esac
done
echo done
"#
    )
}

/// A runtime call started in the background with another binary than `util`'s; killed and
/// reaped when dropped.
struct Background(std::process::Child);

impl Background {
    fn start(t: &Test, bin: &Path, args: &[&str]) -> Background {
        let out = t.path("background.out");
        let child = Command::new(bin)
            .process_group(0)
            .arg("--root")
            .arg(&t.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(t.path("background.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Background(child)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes a process inside a container run the runtime's binary (through `entry`, as the
/// init of a `run` or as an `exec`'d process), and a second process in the container try to
/// write to that binary once the first has exited. The containers are driven by a copy of
/// the runtime; the copy must come out byte for byte unchanged.
///
/// The attacker's processes share the pid namespace of a `sleep` container (the run path's
/// container joins it), so that the watcher outlives the process it watches.
fn attack_runtime_binary(name: &str, via_exec: bool, entry: Entry) {
    let mut t = Test::new(name);
    let copy = runtime_copy(&t);
    let original = fs::read(runtime()).unwrap();
    install_libraries(&t.rootfs, &copy);
    let fifo = format!("/cve-fifo-{}", t.id);
    mkfifo(&t.rootfs.join(&fifo[1..]));
    let mut argv = match entry {
        Entry::ProcSelfExe => vec!["/proc/self/exe"],
        Entry::Shebang => {
            // The kernel runs `/proc/self/exe --root /cve-evil ARGS…`: the script's path
            // becomes the value of --root, and ARGS the rest of the command line.
            let script = t.rootfs.join("cve-evil");
            fs::write(&script, "#!/proc/self/exe --root\n").unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
            vec!["/cve-evil"]
        }
    };
    argv.extend_from_slice(&["--log", &fifo, "state", "x"]);
    let c = Call {
        bin: Some(copy.clone()),
        ..Call::default()
    };

    t.args(&["sleep", "100"]);
    let host_id = t.id.clone();
    let host_pid = create_via(&t, &c, &host_id);
    t.call(&["start", &host_id], &c).ok();

    let _attacker = if via_exec {
        let mut args = vec!["exec", host_id.as_str()];
        args.extend_from_slice(&argv);
        Some(Background::start(&t, &copy, &args))
    } else {
        let id = t.new_id();
        t.add_namespace("pid", Some(&format!("/proc/{host_pid}/ns/pid")));
        t.args(&argv);
        t.write_config();
        let b = t.bundle_str();
        t.call(&["run", "--detach", "--bundle", &b, &id], &c).ok();
        None
    };
    let script = watcher_script(&fifo);
    t.call(&["exec", "--detach", &host_id, "sh", "-c", &script], &c)
        .ok();

    let (finished, result) = wait_for_text(&t.rootfs.join("cve-result"), "done\n", ATTACK_TIMEOUT);
    println!("attack report:\n{result}");
    let now = fs::read(&copy).unwrap();
    assert!(finished, "the attack did not finish:\n{result}");
    assert!(
        result.contains("attacker: ") && !result.contains("attacker: not found"),
        "the attack never started: no process of the runtime's binary in the container:\n{result}"
    );
    assert!(
        !result.contains("write: succeeded"),
        "the container reopened the runtime's binary for writing:\n{result}"
    );
    assert!(
        now == original,
        "the runtime copy {} was modified ({} bytes, was {}):\n{result}",
        copy.display(),
        now.len(),
        original.len()
    );
}

#[test]
fn cve_2019_5736_run_of_proc_self_exe_cannot_overwrite_the_runtime() {
    attack_runtime_binary("cve_5736_run", false, Entry::ProcSelfExe);
}

#[test]
fn cve_2019_5736_run_of_a_proc_self_exe_script_cannot_overwrite_the_runtime() {
    attack_runtime_binary("cve_5736_run_script", false, Entry::Shebang);
}

#[test]
fn cve_2019_5736_exec_of_proc_self_exe_cannot_overwrite_the_runtime() {
    attack_runtime_binary("cve_5736_exec", true, Entry::ProcSelfExe);
}

#[test]
fn cve_2019_5736_exec_of_a_proc_self_exe_script_cannot_overwrite_the_runtime() {
    attack_runtime_binary("cve_5736_exec_script", true, Entry::Shebang);
}

// --- CVE-2016-9962: the runtime's setup process reachable through /proc ---------------------

/// What a process of the container can get at of process `pid` (a number in its own pid
/// namespace) through /proc: one `what: readable|denied` line each.
fn probe_script(pid: i32) -> String {
    format!(
        r#"p={pid}
echo "cmdline: $(tr '\0' ' ' </proc/$p/cmdline)"
if l=$(readlink /proc/$p/exe 2>&1); then echo "exe: readable $l"; else echo "exe: denied $l"; fi
echo "fds: $(ls /proc/$p/fd | wc -l)"
for f in /proc/$p/fd/*; do
  if l=$(readlink $f 2>&1); then echo "fd-link: $f -> $l"; fi
  if ( : <$f ) 2>/dev/null; then echo "fd-open: $f"; fi
done
if l=$(cat /proc/$p/environ 2>&1); then echo "environ: readable"; else echo "environ: denied $l"; fi
if l=$(ls /proc/$p/root/ 2>&1); then echo "root: readable $l"; else echo "root: denied $l"; fi
if l=$(ls /proc/$p/cwd/ 2>&1); then echo "cwd: readable $l"; else echo "cwd: denied $l"; fi
"#
    )
}

/// The pid of host process `pid` in its innermost pid namespace (the last NSpid field).
fn inner_pid(pid: i32) -> i32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status_field(&status, "NSpid")
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no NSpid for {pid}:\n{status}"))
}

#[test]
fn cve_2016_9962_a_created_init_is_not_reachable_from_a_container_sharing_its_pid_namespace() {
    // The init of a created container sits in the runtime's code, holding the runtime's
    // descriptors, until `start`. Another container in the same pid namespace, with the same
    // capabilities (so only the init's dumpable flag stands in the way), must not get at
    // its fds, exe, environment, root or cwd.
    let mut t = Test::new("cve_9962_created");
    t.args(&["sleep", "100"]);
    let watcher_id = t.id.clone();
    let (_, watcher_init) = t.create_and_start(&watcher_id);
    let id = t.new_id();
    t.add_namespace("pid", Some(&format!("/proc/{watcher_init}/ns/pid")));
    t.args(&["true"]);
    let (out, pid) = t.create(&id);
    out.ok();
    let pid = pid.expect("pid file");
    let seen = inner_pid(pid);
    let out = exec(&t, &watcher_id, &[], &["sh", "-c", &probe_script(seen)]);
    out.ok();
    println!("{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .next()
            .is_some_and(|l| l.len() > "cmdline: ".len()),
        "the created init (pid {seen} there) is not visible in the shared pid namespace:\n{out}"
    );
    for what in ["exe", "environ", "root", "cwd"] {
        assert!(
            out.stdout.contains(&format!("{what}: denied")),
            "{what} of the created init is reachable from the container:\n{out}"
        );
    }
    // Its fd numbers may be listed (the directory belongs to root); none may be followed.
    assert!(
        !out.stdout.contains("fds: 0\n"),
        "no fds listed: the probe proves nothing:\n{out}"
    );
    assert!(
        !out.stdout.contains("fd-link:") && !out.stdout.contains("fd-open:"),
        "an fd of the created init is reachable from the container:\n{out}"
    );
}

/// The racing watcher of the exec test: scans its pid namespace until /cve-stop exists, with
/// shell builtins only (a fork would miss the window), for processes whose command is none
/// of the rootfs's programs it expects (`true` exec'd by the test, its own `sh`, the init's
/// `sleep`): the runtime's setup process before its execve. It tries to follow that
/// process's exe and fd links, and reports a leak if one was followed while the process
/// still had its command (execve sets the command right after it makes the process
/// dumpable, so a process that exec'd in between is not counted).
const EXEC_RACE_WATCHER: &str = r#"exec >/cve-result 2>&1
me=$$
iters=0
setup=0
programs=0
while [ ! -e /cve-stop ]; do
  iters=$((iters+1))
  for d in /proc/[0-9]*; do
    read c <$d/comm 2>/dev/null || continue
    case "$c" in
      true) programs=$((programs+1)); continue ;;
      sleep|sh|ls) continue ;;
    esac
    setup=$((setup+1))
    hit=
    [ -e $d/exe ] && hit=exe
    for f in $d/fd/*; do [ -e "$f" ] && hit="$hit fd"; done
    if [ -n "$hit" ]; then
      read c2 <$d/comm 2>/dev/null
      if [ "$c2" = "$c" ]; then
        echo "leak: $hit of ${d#/proc/} ($c) followed before its execve:"
        ls -l $d/exe $d/fd/ 2>&1
      fi
    fi
  done
done
echo "iterations: $iters; exec'd programs seen: $programs; setup processes seen: $setup"
echo done
"#;

#[test]
fn cve_2016_9962_exec_setup_is_not_reachable_from_the_container() {
    // While `exec` runs processes into the container over and over, a process of the
    // container scans /proc for them: none may be reachable before it runs its program.
    let mut t = Test::new("cve_9962_exec");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create_and_start(&id);
    exec(&t, &id, &["--detach"], &["sh", "-c", EXEC_RACE_WATCHER]).ok();
    for _ in 0..100 {
        exec(&t, &id, &[], &["true"]).ok();
    }
    write(&t.rootfs.join("cve-stop"), "");
    let (finished, result) = wait_for_text(&t.rootfs.join("cve-result"), "done\n", ATTACK_TIMEOUT);
    println!("{result}");
    assert!(finished, "the watcher did not finish:\n{result}");
    assert!(
        !result.contains("leak:"),
        "the container reached an exec's setup process:\n{result}"
    );
    let seen: u32 = result
        .split("setup processes seen: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        seen > 0,
        "the watcher never caught an exec in its setup: the race proves nothing:\n{result}"
    );
}

// --- CVE-2022-29162: inheritable capabilities -------------------------------------------

/// Gives `path` the file capability `cap` in its inheritable set, with the effective bit
/// (as `setcap cap=ie` does): a process whose own inheritable set holds `cap` gains it on
/// exec, one without does not.
fn set_inheritable_file_cap(path: &Path, cap: &str) {
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 1;
    let mask = cap_mask(&[cap]);
    let mut data = Vec::new();
    data.extend_from_slice(&(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE).to_le_bytes());
    // Low words (permitted, inheritable), then high words.
    data.extend_from_slice(&0u32.to_le_bytes());
    data.extend_from_slice(&(mask as u32).to_le_bytes());
    data.extend_from_slice(&0u32.to_le_bytes());
    data.extend_from_slice(&((mask >> 32) as u32).to_le_bytes());
    let p = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: setxattr(2) with NUL-terminated strings and a buffer that outlive the call.
    let rc = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"security.capability".as_ptr(),
            data.as_ptr().cast(),
            data.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr security.capability on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A container running `sleep` with the capabilities `caps` (`inheritable` only if given),
/// no ambient set, no_new_privs off, and `/capbin/cat`: busybox with CAP_NET_RAW as an
/// inheritable file capability. The init's host pid.
fn start_capability_container(t: &mut Test, inheritable: Option<&[&str]>) -> i32 {
    let caps = [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
    ];
    let mut set = json!({ "bounding": caps, "effective": caps, "permitted": caps });
    if let Some(inh) = inheritable {
        set["inheritable"] = json!(inh);
    }
    t.config["process"]["capabilities"] = set;
    t.config["process"]["noNewPrivileges"] = json!(false);
    let capbin = t.rootfs.join("capbin");
    fs::create_dir_all(&capbin).unwrap();
    fs::copy(crate::util::BUSYBOX, capbin.join("cat")).unwrap();
    fs::set_permissions(capbin.join("cat"), fs::Permissions::from_mode(0o755)).unwrap();
    set_inheritable_file_cap(&capbin.join("cat"), "CAP_NET_RAW");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create_and_start(&id).1
}

/// `/proc/self/status` of a process exec'd with `flags`, failing the test unless it ran.
#[track_caller]
fn exec_status(t: &Test, flags: &[&str], cat: &str) -> String {
    let out = exec(t, &t.id, flags, &[cat, "/proc/self/status"]);
    out.ok();
    out.stdout
}

#[test]
fn cve_2022_29162_inheritable_capabilities_stay_empty_unless_the_config_asks() {
    let mut t = Test::new("cve_29162");
    let init = start_capability_container(&mut t, None);
    let status = fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert_eq!(caps_field(&status, "CapInh"), 0, "init:\n{status}");
    assert_eq!(caps_field(&status, "CapAmb"), 0, "init:\n{status}");

    // --cap lands in bounding, effective and permitted, never in inheritable.
    let s = exec_status(&t, &["--cap", "CAP_NET_ADMIN"], "cat");
    let admin = cap_mask(&["CAP_NET_ADMIN"]);
    for key in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(caps_field(&s, key) & admin, admin, "{key} with --cap:\n{s}");
    }
    assert_eq!(
        caps_field(&s, "CapInh"),
        0,
        "exec --cap CAP_NET_ADMIN:\n{s}"
    );
    assert_eq!(
        caps_field(&s, "CapAmb"),
        0,
        "exec --cap CAP_NET_ADMIN:\n{s}"
    );

    // The attack: an unprivileged process given --cap runs a binary whose file capabilities
    // grant CAP_NET_RAW to any process that has it inheritable.
    let s = exec_status(
        &t,
        &["--user", "1000:1000", "--cap", "CAP_NET_RAW"],
        "/capbin/cat",
    );
    assert_eq!(caps_field(&s, "CapInh"), 0, "exec -u 1000 --cap:\n{s}");
    assert_eq!(
        caps_field(&s, "CapPrm"),
        0,
        "a non-root process gained capabilities from an inheritable file capability:\n{s}"
    );

    // A process.json without `inheritable`, root and not.
    for user in [
        json!({ "uid": 0, "gid": 0 }),
        json!({ "uid": 1000, "gid": 1000 }),
    ] {
        let process = json!({
            "user": user,
            "args": ["/capbin/cat", "/proc/self/status"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_NET_RAW"],
                "effective": ["CAP_KILL", "CAP_NET_RAW"],
                "permitted": ["CAP_KILL", "CAP_NET_RAW"]
            }
        });
        let file = t.path("process.json");
        write(&file, &process.to_string());
        let out = exec(&t, &t.id, &["--process", &file.to_string_lossy()], &[]);
        out.ok();
        let s = &out.stdout;
        assert_eq!(caps_field(s, "CapInh"), 0, "exec -p as {user}:\n{s}");
        if user["uid"] != 0 {
            assert_eq!(caps_field(s, "CapPrm"), 0, "exec -p as {user}:\n{s}");
        }
    }
}

#[test]
fn cve_2022_29162_a_config_that_asks_for_inheritable_gets_exactly_that() {
    let mut t = Test::new("cve_29162_asked");
    let init = start_capability_container(&mut t, Some(&["CAP_NET_RAW"]));
    let raw_cap = cap_mask(&["CAP_NET_RAW"]);
    let status = fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert_eq!(caps_field(&status, "CapInh"), raw_cap, "init:\n{status}");

    let s = exec_status(&t, &["--cap", "CAP_NET_ADMIN"], "cat");
    assert_eq!(
        caps_field(&s, "CapInh"),
        raw_cap,
        "exec --cap CAP_NET_ADMIN:\n{s}"
    );

    // The file capability works when asked for: the other test's attack could succeed.
    let s = exec_status(&t, &["--user", "1000:1000"], "/capbin/cat");
    assert_eq!(caps_field(&s, "CapInh"), raw_cap, "exec -u 1000:\n{s}");
    assert_eq!(caps_field(&s, "CapPrm"), raw_cap, "exec -u 1000:\n{s}");
}

// --- CVE-2023-25809: a writable cgroupfs without a cgroup namespace -----------------------

/// Removes the probe directories a vulnerable runtime let the container make, before the
/// cgroup guard removes the container's cgroups (declare it after the guard).
struct ProbeDirs(Vec<PathBuf>);

impl Drop for ProbeDirs {
    fn drop(&mut self) {
        for p in &self.0 {
            if fs::remove_dir(p).is_ok() {
                println!("cleanup: removed {}", p.display());
            }
        }
    }
}

/// Starts a container without a cgroup namespace whose cgroup mount has `options`, and
/// has it try to mkdir a child cgroup in every directory under /sys/fs/cgroup. Every
/// attempt must fail and no directory may appear in any host hierarchy.
fn cgroupfs_is_not_writable(name: &str, options: &[&str], userns: bool) {
    let mut t = Test::new(name);
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    let probe = format!("cve-probe-{id}");
    let mut candidates = Vec::new();
    for h in cgroup_hierarchies() {
        candidates.push(h.dir_for(&path).join(&probe));
        candidates.push(h.mount.join(h.own.trim_start_matches('/')).join(&probe));
        candidates.push(h.mount.join(&probe));
    }
    let _probes = ProbeDirs(candidates.clone());

    t.remove_namespace("cgroup");
    if userns {
        new_user_namespace(&mut t);
    }
    t.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys/fs/cgroup");
    t.mount(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": options
    }));
    t.sh(&format!(
        "for d in /sys/fs/cgroup/* /sys/fs/cgroup/*/*/; do \
           [ -d \"$d\" ] || continue; \
           if e=$(mkdir \"$d/{probe}\" 2>&1); then echo \"created: $d\"; \
           else echo \"refused: $d: $e\"; fi; \
         done; echo done; exec sleep 100"
    ));
    let (out, _) = t.create_and_start(&id);
    let (finished, seen) = wait_for_text(&out.stdout_path, "done\n", ATTACK_TIMEOUT);
    println!("{seen}");
    let landed: Vec<&PathBuf> = candidates.iter().filter(|p| p.exists()).collect();
    assert!(finished, "the container did not finish its script:\n{seen}");
    assert!(
        seen.lines().any(|l| l.starts_with("refused: ")),
        "no cgroup directory visible in the container:\n{seen}"
    );
    assert!(
        !seen.contains("created: "),
        "the container made a cgroup directory:\n{seen}\non the host: {landed:?}"
    );
    assert!(landed.is_empty(), "cgroups made on the host: {landed:?}");
}

#[test]
fn cve_2023_25809_cgroupfs_is_read_only_without_a_cgroup_namespace() {
    cgroupfs_is_not_writable(
        "cve_25809",
        &["nosuid", "noexec", "nodev", "relatime", "ro"],
        false,
    );
}

#[test]
fn cve_2023_25809_cgroupfs_is_read_only_in_a_user_namespace_even_without_ro() {
    // The CVE proper: a user-namespaced container without a cgroup namespace whose cgroup
    // mount does not say `ro`.
    cgroupfs_is_not_writable(
        "cve_25809_userns",
        &["nosuid", "noexec", "nodev", "relatime"],
        true,
    );
}

#[test]
fn cve_2023_25809_cgroupfs_is_read_only_without_ro_or_a_cgroup_namespace() {
    if skip_on_runc("runc 1.1.5 mounts cgroupfs read-write outside a user namespace") {
        return;
    }
    cgroupfs_is_not_writable(
        "cve_25809_no_ro",
        &["nosuid", "noexec", "nodev", "relatime"],
        false,
    );
}

// --- CVE-2024-21626: leaked host fds, and a cwd through them --------------------------------

/// A host directory of the test with a marker file that no container path leads to; the
/// directory and the marker's text.
fn host_marker_dir(t: &Test) -> (PathBuf, String) {
    let dir = t.mkdir("hostdir");
    let marker = format!("host-marker-{}", t.id);
    write(&dir.join("marker"), &format!("{marker}\n"));
    (dir, marker)
}

/// A call that hands the runtime `dir` (opened read-only) at fds 3..=10, none of them
/// preserved: as if the runtime's caller had leaked them. The file must outlive the call.
fn leaky_call(dir: &Path) -> (fs::File, Call) {
    let f = open_fd(dir);
    let fds = (3..=10).map(|n| (raw(&f), n)).collect();
    (
        f,
        Call {
            fds,
            ..Call::default()
        },
    )
}

/// The fd numbers of a `ls` listing between two marker lines.
fn fd_set(text: &str, start: &str) -> Vec<u32> {
    text.lines()
        .skip_while(|l| *l != start)
        .skip(1)
        .take_while(|l| !l.starts_with("--"))
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

const FD_LISTING: &str = "echo '-- init'; ls /proc/1/fd; echo '-- self'; ls /proc/self/fd; \
     echo '-- links'; for f in /proc/1/fd/* /proc/self/fd/*; do echo \"$f $(readlink $f)\"; done; \
     echo '-- end'";

#[test]
fn cve_2024_21626_no_host_fd_reaches_the_container() {
    let mut t = Test::new("cve_21626_fds");
    let (dir, _) = host_marker_dir(&t);
    let (_file, c) = leaky_call(&dir);
    t.sh(&format!("{FD_LISTING}; exec sleep 100"));
    t.write_config();
    let b = t.bundle_str();
    let id = t.id.clone();
    let pid_file = t.path("init.pid");
    let pf = pid_file.to_string_lossy().into_owned();
    let out = t.call(&["create", "--bundle", &b, "--pid-file", &pf, &id], &c);
    out.ok();
    if let Some(p) = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.parse().ok())
    {
        t.track_pid(p);
    }
    t.hull(&["start", &id]).ok();
    let (finished, seen) = wait_for_text(&out.stdout_path, "-- end\n", ATTACK_TIMEOUT);
    assert!(finished, "the init did not list its fds:\n{seen}");
    // The init is `sh` (pid 1): stdio only. `ls` adds its directory, the lowest free fd.
    assert_eq!(
        fd_set(&seen, "-- init"),
        [0, 1, 2],
        "fds of the init:\n{seen}"
    );
    assert_eq!(
        fd_set(&seen, "-- self"),
        [0, 1, 2, 3],
        "fds of a child:\n{seen}"
    );

    // An exec'd process, handed the same fds by its caller.
    let mut args = vec!["exec", id.as_str(), "sh", "-c", FD_LISTING];
    let out = t.call(&args, &c);
    out.ok();
    assert_eq!(
        fd_set(&out.stdout, "-- init"),
        [0, 1, 2],
        "fds of the init:\n{out}"
    );
    assert_eq!(
        fd_set(&out.stdout, "-- self"),
        [0, 1, 2, 3],
        "fds of an exec:\n{out}"
    );
    assert!(!out.stdout.contains(&*dir.to_string_lossy()), "{out}");

    // And without any fd from the caller: nothing of the runtime's own either.
    args.truncate(2);
    args.extend_from_slice(&["ls", "/proc/self/fd"]);
    let out = t.hull(&args);
    out.ok();
    let fds: Vec<u32> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(fds, [0, 1, 2, 3], "fds of an exec:\n{out}");
}

/// What a process whose cwd was set to `/proc/self/fd/N` sees: its cwd, and whether the
/// host's marker is reachable from there (directly, or by climbing out of a cwd that lies
/// outside the container's root).
fn cwd_script(dir: &Path) -> String {
    let up = "../".repeat(16);
    format!(
        "echo \"cwd=$(readlink /proc/self/cwd)\"; \
         cat marker 2>/dev/null; cat {up}{}/marker 2>/dev/null; echo done",
        dir.display()
    )
}

/// Asserts that a process started with cwd `/proc/self/fd/N` either was refused or ran
/// without reaching the host directory.
#[track_caller]
fn assert_cwd_contained(out: &Out, n: u32, dir: &Path, marker: &str) {
    assert!(!out.timed_out, "{out}");
    assert!(
        !out.stdout.contains(marker),
        "cwd /proc/self/fd/{n} let the process read the host's {}/marker:\n{out}",
        dir.display()
    );
    if out.success() {
        assert!(
            !out.stdout.contains(&format!("cwd={}", dir.display())),
            "cwd /proc/self/fd/{n} is the host directory:\n{out}"
        );
    }
}

#[test]
fn cve_2024_21626_cwd_through_proc_self_fd_never_leaves_the_container() {
    let mut t = Test::new("cve_21626_cwd");
    let (dir, marker) = host_marker_dir(&t);
    let (_file, c) = leaky_call(&dir);
    let script = cwd_script(&dir);
    let mut outcomes = Vec::new();
    for n in 3..=10 {
        t.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        t.sh(&script);
        t.write_config();
        let id = t.new_id();
        let b = t.bundle_str();
        let out = t.call(&["run", "--bundle", &b, &id], &c);
        assert_cwd_contained(&out, n, &dir, &marker);
        outcomes.push(format!(
            "run cwd /proc/self/fd/{n}: {}",
            if out.success() {
                out.stdout.trim().replace('\n', " ")
            } else {
                out.stderr.trim().to_string()
            }
        ));
    }

    // exec --cwd into a running container.
    t.config["process"]["cwd"] = json!("/");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create_and_start(&id);
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = t.call(&["exec", "--cwd", &cwd, &id, "sh", "-c", &script], &c);
        assert_cwd_contained(&out, n, &dir, &marker);
        outcomes.push(format!(
            "exec --cwd {cwd}: {}",
            if out.success() {
                out.stdout.trim().replace('\n', " ")
            } else {
                out.stderr.trim().to_string()
            }
        ));
    }
    println!("{}", outcomes.join("\n"));
}

/// The program path of the attack on the program itself: through `/proc/self/fd/N`, up to
/// the root of whatever N is, and down to a copy of busybox in the host directory. Only a
/// host directory left open at N (the caller's, or the runtime's own) resolves it.
fn host_program(n: u32, dir: &Path) -> String {
    format!("/proc/self/fd/{n}/{}{}/sh", "../".repeat(16), dir.display())
}

/// Run by the host's busybox if it ever runs in the container: says so, and (once its
/// parent is gone) tries to overwrite the host file it runs from, as a 5736-style attacker
/// would.
const HOST_PROGRAM_SCRIPT: &str = "echo HOST-BINARY-RAN $(readlink /proc/self/exe); \
     exec 3</proc/self/exe; \
     /bin/sh -c 'sleep 0.5; echo pwned >/proc/self/fd/3 && echo OVERWROTE' \
       </dev/null >/cve-overwrite 2>&1 &";

#[test]
fn cve_2024_21626_a_program_path_through_proc_self_fd_never_runs_a_host_binary() {
    // process.args[0] of /proc/self/fd/N/… is resolved by execve while the runtime may
    // still hold fds its caller leaked to it (here: a host directory at 3..=10, none of
    // them preserved) or fds of its own.
    let mut t = Test::new("cve_21626_argv0");
    let (dir, _) = host_marker_dir(&t);
    fs::copy(crate::util::BUSYBOX, dir.join("sh")).unwrap();
    let original = fs::read(dir.join("sh")).unwrap();
    let (_file, c) = leaky_call(&dir);
    let mut ran = Vec::new();
    for n in 3..=10 {
        let prog = host_program(n, &dir);
        t.args(&[&prog, "-c", HOST_PROGRAM_SCRIPT]);
        t.write_config();
        let id = t.new_id();
        let b = t.bundle_str();
        let out = t.call(&["run", "--bundle", &b, &id], &c);
        if out.stdout.contains("HOST-BINARY-RAN") {
            ran.push(format!("run, fd {n}:\n{out}"));
        }
    }

    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create_and_start(&id);
    for n in 3..=10 {
        let prog = host_program(n, &dir);
        let out = t.call(&["exec", &id, &prog, "-c", HOST_PROGRAM_SCRIPT], &c);
        if out.stdout.contains("HOST-BINARY-RAN") {
            ran.push(format!("exec, fd {n}:\n{out}"));
        }
    }
    // Time for a background writer to try.
    if !ran.is_empty() {
        wait_for_text(
            &t.rootfs.join("cve-overwrite"),
            "\n",
            Duration::from_secs(3),
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let overwrite = fs::read_to_string(t.rootfs.join("cve-overwrite")).unwrap_or_default();
    let now = fs::read(dir.join("sh")).unwrap();
    assert!(
        ran.is_empty(),
        "the container ran a program from the host:\n{}\n\
         its write to the host file: {overwrite:?}; host file changed: {}",
        ran.join("\n"),
        now != original
    );
    assert!(
        now == original,
        "the host file {}/sh changed",
        dir.display()
    );
}

// --- CVE-2019-16884, CVE-2019-19921, CVE-2023-27561, CVE-2023-28642: a fake /proc or /sys ---

/// Sets the writes a runtime makes through /proc: sysctls in the container's UTS and network
/// namespaces and the process's oom_score_adj.
fn with_proc_writes(t: &mut Test) {
    t.config["linux"]["sysctl"] = json!({
        "kernel.domainname": "cve-real-domain",
        "net.ipv4.ip_forward": "1"
    });
    t.config["process"]["oomScoreAdj"] = json!(123);
}

/// Replaces rootfs/`name` by a symlink to `target`.
fn replace_with_symlink(t: &Test, name: &str, target: &str) {
    let p = t.rootfs.join(name);
    fs::remove_dir(&p).unwrap();
    symlink(target, &p).unwrap();
}

/// A rootfs whose /proc or /sys (`which`) is a symlink to a fake tree: inside the rootfs
/// (`absolute` false), or at an absolute path that names a directory of the test on the
/// host. The create must fail, and neither the fake tree nor its in-rootfs namesake may
/// change or get a mount.
fn symlinked_special_dir_is_refused(name: &str, which: &str, absolute: bool) {
    let mut t = Test::new(name);
    with_proc_writes(&mut t);
    t.args(&["sleep", "100"]);
    let fake_tree = if which == "proc" {
        fake_proc_tree
    } else {
        fake_sys_tree
    };
    let (target, fakes) = if absolute {
        let host = t.path(&format!("fake{which}"));
        fake_tree(&host);
        // What the same absolute path names inside the rootfs, in case it is resolved there.
        let inside = t.rootfs.join(host.strip_prefix("/").unwrap());
        fake_tree(&inside);
        (host.to_string_lossy().into_owned(), vec![host, inside])
    } else {
        let inside = t.rootfs.join(format!("fake{which}"));
        fake_tree(&inside);
        (format!("fake{which}"), vec![inside])
    };
    replace_with_symlink(&t, which, &target);
    let before: Vec<_> = fakes.iter().map(|f| tree(f)).collect();
    let (out, _) = t.create(&t.id.clone());
    let after: Vec<_> = fakes.iter().map(|f| tree(f)).collect();
    println!("{out}");
    assert!(
        before == after,
        "the fake /{which} changed:\nbefore {before:?}\nafter {after:?}\n{out}"
    );
    out.fails();
    assert!(
        out.stderr.contains(&format!("/{which}")),
        "the error does not name /{which}:\n{out}"
    );
    if which == "proc" {
        // runc's words, which its own suite checks.
        out.stderr_has("must be mounted on ordinary directory");
    }
    t.assert_nothing_left(&t.id);
}

#[test]
fn cve_2019_16884_proc_as_a_symlink_inside_the_rootfs_is_refused() {
    symlinked_special_dir_is_refused("cve_16884_proc_rel", "proc", false);
}

#[test]
fn cve_2019_16884_proc_as_a_symlink_to_a_host_path_is_refused() {
    symlinked_special_dir_is_refused("cve_16884_proc_abs", "proc", true);
}

#[test]
fn cve_2019_16884_sys_as_a_symlink_inside_the_rootfs_is_refused() {
    symlinked_special_dir_is_refused("cve_16884_sys_rel", "sys", false);
}

#[test]
fn cve_2019_16884_sys_as_a_symlink_to_a_host_path_is_refused() {
    symlinked_special_dir_is_refused("cve_16884_sys_abs", "sys", true);
}

/// A config that mounts `fake` (a bind of a fake tree, or a tmpfs) at /proc instead of
/// procfs and asks for sysctls and oom_score_adj. Refused, or the values reach the
/// container's real procfs; the fake files never change.
fn fake_procfs_never_receives_writes(name: &str, fake: fn(&Test) -> Value) {
    let mut t = Test::new(name);
    let host_fake = t.path("fakeproc");
    fake_proc_tree(&host_fake);
    with_proc_writes(&mut t);
    let mount = fake(&t);
    let mounts = t.config["mounts"].as_array_mut().unwrap();
    let at = mounts
        .iter()
        .position(|m| m["destination"] == "/proc")
        .unwrap();
    mounts[at] = mount;
    t.args(&["sleep", "100"]);
    let before = tree(&host_fake);
    let id = t.id.clone();
    let (out, pid) = t.create(&id);
    println!("{out}");
    assert!(
        tree(&host_fake) == before,
        "the fake /proc was written to: {:?}\n{out}",
        tree(&host_fake)
    );
    if !out.success() {
        out.fails();
        t.assert_nothing_left(&id);
        return;
    }
    let pid = pid.expect("pid file");
    // What the container's /proc holds now (a tmpfs: anything a runtime created in it).
    let inside = tree(&PathBuf::from(format!("/proc/{pid}/root/proc")));
    assert!(
        !inside
            .keys()
            .any(|k| k.starts_with("sys") || k.starts_with("self")),
        "the runtime wrote into the fake /proc: {inside:?}"
    );
    let adj = fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(adj.trim(), "123", "oom_score_adj did not reach the init");
    assert_eq!(
        read_in_ns(pid, "uts", "/proc/sys/kernel/domainname"),
        "cve-real-domain",
        "kernel.domainname did not reach the container's UTS namespace"
    );
    assert_eq!(
        read_in_ns(pid, "net", "/proc/sys/net/ipv4/ip_forward"),
        "1",
        "net.ipv4.ip_forward did not reach the container's network namespace"
    );
}

#[test]
fn cve_2019_19921_a_bind_mounted_fake_proc_never_receives_sysctl_or_oom_writes() {
    fake_procfs_never_receives_writes("cve_19921_bind", |t| {
        json!({
            "destination": "/proc", "type": "bind",
            "source": t.path("fakeproc").to_string_lossy(),
            "options": ["rbind"]
        })
    });
}

#[test]
fn cve_2019_19921_a_tmpfs_at_proc_never_receives_sysctl_or_oom_writes() {
    fake_procfs_never_receives_writes("cve_19921_tmpfs", |_| {
        json!({
            "destination": "/proc", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid"]
        })
    });
}
