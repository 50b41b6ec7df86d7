//! The runc CVE classes that attack through mounts and paths in the rootfs, each performed
//! against real containers and aimed at files and directories the test owns: mount
//! destinations and mkdir paths swapped for symlinks while a second container races
//! (CVE-2021-30465, CVE-2024-45310), a symlinked /dev/null used to unmask (CVE-2025-31133),
//! a redirected console bind (CVE-2025-52565), procfs writes under mounts placed over /proc
//! (CVE-2025-52881), and a /dev that is a symlink to a host path (CVE-2026-41579).
//!
//! Every test accepts either outcome a safe runtime may choose — the create is refused with
//! an error and leaves nothing, or the container is set up entirely inside its rootfs — and
//! asserts that the test's stand-ins for host files and directories are untouched. A
//! vulnerable runtime (runc 1.1.5 for the 2024-2026 classes) damages only those stand-ins.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{
    is_gone, mounts_under, parse_mountinfo_line, recv_fds, write, Out, Test, STOP_TIMEOUT,
};

/// The size of every tmpfs these tests mount: a mark to find them in any mount table (a
/// whole number of pages, so that the kernel shows it as given).
const MARK: &str = "size=4876k";

/// How long a racing test keeps creating containers.
const RACE_TIME: Duration = Duration::from_secs(10);

fn marked_tmpfs(dest: &str) -> Value {
    json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", MARK] })
}

fn bind(source: &Path, dest: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "bind", "source": source, "options": options })
}

/// Drops the config's tmpfs on /dev, so that the rootfs's own /dev is what the runtime
/// populates.
fn without_dev_tmpfs(t: &mut Test) {
    t.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev");
}

/// Every entry below `dir` (not following symlinks) with what it is: a file's content, a
/// symlink's target, `dir`, or the device numbers of a node.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = fs::symlink_metadata(&p) else {
                continue;
            };
            let what = if md.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                todo.push(p.clone());
                "dir".to_string()
            } else if md.is_file() {
                format!("file {:?}", fs::read_to_string(&p).unwrap_or_default())
            } else {
                format!("node {:#o} {:#x}", md.mode(), md.rdev())
            };
            out.insert(p, what);
        }
    }
    out
}

/// The mount table of process `pid`: (mount point, per-mount options, fs type, super
/// options) per mount.
fn mount_table(pid: i32) -> Vec<(String, String, String, String)> {
    fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(parse_mountinfo_line)
        .collect()
}

/// Host mounts carrying `MARK`: a tmpfs of these tests that reached the host's mount table.
fn marked_host_mounts() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(MARK))
        .map(str::to_string)
        .collect()
}

/// Prints what became of one attack: set up, or refused with which error.
fn report(what: &str, out: &Out) {
    let outcome = if out.success() {
        "set up".to_string()
    } else {
        let line = out.stderr.trim().lines().last().unwrap_or_default();
        format!(
            "refused: {}",
            line.split_once("msg=").map_or(line, |(_, m)| m)
        )
    };
    println!("{what}: {outcome}");
}

/// A failed create must be an ordinary error: exit status 1, a message, no panic, and
/// nothing left of the container.
#[track_caller]
fn assert_clean_refusal(t: &Test, id: &str, out: &Out) {
    assert!(
        !out.timed_out && out.code == 1 && !out.stderr.trim().is_empty(),
        "expected a clean error:\n{out}"
    );
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(
        !t.root.join(id).exists(),
        "state of refused {id} left behind"
    );
    t.assert_no_processes(id, Duration::from_secs(3));
}

/// Swaps two directory entries with renameat2(RENAME_EXCHANGE) in a loop on a thread, so
/// that the first path is always there, alternately one thing and the other.
struct Exchanger {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Exchanger {
    fn start(a: &Path, b: &Path) -> Exchanger {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let a = CString::new(a.as_os_str().as_bytes()).unwrap();
        let b = CString::new(b.as_os_str().as_bytes()).unwrap();
        let handle = std::thread::spawn(move || {
            let mut swaps = 0;
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: renameat2 on two NUL-terminated paths in the test's own directory.
                let rc = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                if rc == 0 {
                    swaps += 1;
                }
                // Leaves the runtimes under test (on two cores) some CPU.
                std::thread::sleep(Duration::from_micros(20));
            }
            swaps
        });
        Exchanger {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the loop; how many swaps it made.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Exchanger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

static SOCKETS: AtomicU32 = AtomicU32::new(0);

/// `create --console-socket` of `id` with the test's config: the call, the init's pid and
/// the pty master the runtime sent (none when the create failed before sending one).
fn create_with_console(t: &Test, id: &str) -> (Out, Option<i32>, Option<OwnedFd>) {
    t.write_config();
    let n = SOCKETS.fetch_add(1, Ordering::SeqCst);
    let socket = t.path(&format!("c{n}.sock"));
    let pid_file = t.path(&format!("c{n}.pid"));
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let call = t.spawn_call(&[
        "create",
        "--bundle",
        &t.bundle_str(),
        "--console-socket",
        &socket.to_string_lossy(),
        "--pid-file",
        &pid_file.to_string_lossy(),
        id,
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept on the console socket: {e}"),
        }
        if is_gone(call.pid()) || Instant::now() > deadline {
            // The runtime may have connected just before it exited.
            break listener.accept().ok().map(|(s, _)| s);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let master = stream.and_then(|s| {
        s.set_nonblocking(false).unwrap();
        recv_fds(&s).1.pop()
    });
    let out = call.wait();
    let pid = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.parse::<i32>().ok());
    if let Some(p) = pid {
        t.track_pid(p);
    }
    (out, pid, master)
}

/// A magic link to the host's root that a container without a pid namespace can follow:
/// /proc/PID/root of this test process (pid 1 of this machine does not let itself be
/// inspected, and a container with its own pid namespace sees only its own processes).
fn host_root_link() -> String {
    format!("/proc/{}/root", std::process::id())
}

// --- CVE-2021-30465, CVE-2024-45310 ------------------------------------------------------

/// Container A shares a volume with container B and keeps turning `d1` in it into a
/// directory, nothing, and a symlink that climbs out (`../../…/outside`); a thread on the
/// host (standing in for a faster attacker in A: busybox has no RENAME_EXCHANGE) swaps
/// `d2` atomically between a directory and an absolute symlink to the same place. B is
/// created over and over with the volume at /vol and tmpfs and bind mounts at (and below,
/// with parents to create) /vol/d1 and /vol/d2. Last, B rbinds the outside directory, so a
/// mount that landed on it in B's namespace before pivot_root would show up in B's table.
#[test]
fn cve_2021_30465_and_2024_45310_swapped_mount_destinations_stay_in_the_rootfs() {
    let mut t = Test::new("cve_mnt_race");
    let vol = t.mkdir("vol");
    let outside = t.mkdir("outside");
    write(&outside.join("sentinel"), "host data\n");
    let src = t.mkdir("src");
    write(&src.join("hello"), "bind source\n");
    let before = snapshot(&outside);

    // The attacker, A.
    let mut a = Test::new("cve_mnt_race_a");
    a.mount(bind(&vol, "/vol", &["rbind", "rw"]));
    let rel = format!(
        "{}{}",
        "../".repeat(16),
        outside.strip_prefix("/").unwrap().display()
    );
    a.sh(&format!(
        "exec 2>&-; cd /vol || exit 1; \
         while :; do mkdir d1; rm -rf d1; ln -s '{rel}' d1; rm -f d1; done"
    ));
    let a_id = a.id.clone();
    let (a_out, a_pid) = a.create(&a_id);
    a_out.ok();
    a.hull(&["start", &a_id]).ok();
    let a_pid = a_pid.expect("pid file of A");

    fs::create_dir(vol.join("d2")).unwrap();
    symlink(&outside, vol.join("d2x")).unwrap();
    let swapper = Exchanger::start(&vol.join("d2"), &vol.join("d2x"));

    // The victim, B.
    t.mount(bind(&vol, "/vol", &["rbind", "rw"]));
    t.mount(marked_tmpfs("/vol/d1/m"));
    t.mount(bind(&src, "/vol/d2/b", &["rbind", "rw"]));
    t.mount(marked_tmpfs("/vol/d2/deep/er/path"));
    t.mount(marked_tmpfs("/vol/d1"));
    t.mount(bind(&outside, "/outside_view", &["rbind", "ro"]));

    let started = Instant::now();
    let (mut created, mut refused) = (0, 0);
    let mut landed: BTreeMap<String, u32> = BTreeMap::new();
    let mut errors: BTreeMap<String, u32> = BTreeMap::new();
    while started.elapsed() < RACE_TIME && created + refused < 80 {
        let id = t.new_id();
        let (out, pid) = t.create(&id);
        if out.success() {
            created += 1;
            let pid = pid.expect("pid file of B");
            let table = mount_table(pid);
            let seen: Vec<_> = table
                .iter()
                .filter(|m| m.0 == "/outside_view" || m.0.starts_with("/outside_view/"))
                .collect();
            assert!(
                seen.len() == 1 && seen[0].0 == "/outside_view" && seen[0].2 != "tmpfs",
                "a mount of B landed on the host directory {}: {seen:?}",
                outside.display()
            );
            for m in table.iter().filter(|m| m.3.contains(MARK)) {
                *landed.entry(m.0.clone()).or_default() += 1;
            }
            t.hull(&["delete", "--force", &id]).ok();
        } else {
            refused += 1;
            assert_clean_refusal(&t, &id, &out);
            let line = out.stderr.lines().last().unwrap_or_default();
            // The message without the log line's time, cut before most racing paths.
            let msg = line.split_once("msg=").map_or(line, |(_, m)| m);
            let key: String = msg.chars().take(70).collect();
            *errors.entry(key).or_default() += 1;
        }
        assert_eq!(
            marked_host_mounts(),
            Vec::<String>::new(),
            "tmpfs on the host"
        );
        assert_eq!(t.mounts_left(), Vec::<PathBuf>::new(), "mounts on the host");
        let a_marked: Vec<_> = mount_table(a_pid)
            .into_iter()
            .filter(|m| m.3.contains(MARK))
            .collect();
        assert!(a_marked.is_empty(), "B's tmpfs reached A: {a_marked:?}");
        assert_eq!(snapshot(&outside), before, "the outside directory changed");
    }
    let swaps = swapper.finish();
    println!(
        "{created} created, {refused} refused in {:?}; {swaps} swaps of d2; \
         marked mounts at {landed:?}; errors {errors:?}",
        started.elapsed()
    );
    assert_eq!(a.status(&a_id), "running", "the attacker stopped racing");
    assert!(swaps > 0, "the exchanger never swapped");
    assert!(created + refused >= 10, "too few attempts to race");
}

// --- CVE-2025-31133 ----------------------------------------------------------------------

/// Tries to write every masked file, then shows what each is and how much it reads; then
/// whether a sysctl of the container's own UTS namespace can be written (/proc/sys is a
/// read-only path). Results go to /out/result: /dev/null is never used (it is the attack),
/// and a runtime that follows it may have reopened the process's stdio from it.
const UNMASK_PROBE: &str = "\
for p in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug /proc/latency_stats \
/proc/timer_stats; do
  [ -e \"$p\" ] || continue
  { echo pwned > \"$p\"; } 2>/tmp/err
  echo \"masked $p $(stat -c '%F %t:%T' \"$p\") $(head -c 64 \"$p\" 2>/tmp/err | wc -c)\"
done >> /out/result
if { echo probe > /proc/sys/kernel/hostname; } 2>/tmp/err; then echo sysctl writable
else echo sysctl read-only; fi >> /out/result";

/// The rootfs's /dev/null is a symlink: to a host file the container sees read-only (the
/// test's stand-in for core_pattern), and to a sysctl below the read-only /proc/sys (one of
/// the container's own pid namespace). Masking must bind a verified 1:3 /dev/null or refuse:
/// a runtime that follows the link unmasks /proc/keys and /proc/timer_list (they show the
/// link's target) and may hand the container a writable view of the target.
#[test]
fn cve_2025_31133_symlinked_dev_null_cannot_unmask() {
    for target in ["/standin", "/proc/sys/kernel/ns_last_pid"] {
        let mut t = Test::new("cve_31133");
        let standin = t.path("core_pattern");
        write(&standin, "|/usr/lib/stand-in-handler %p\n");
        without_dev_tmpfs(&mut t);
        t.mount(bind(&standin, "/standin", &["bind", "ro"]));
        let results = t.mkdir("out");
        t.mount(bind(&results, "/out", &["bind", "rw"]));
        symlink(target, t.rootfs.join("dev/null")).unwrap();
        t.sh(UNMASK_PROBE);
        let out = t.run();
        report(&format!("/dev/null -> {target}"), &out);
        if out.success() {
            let result = fs::read_to_string(results.join("result")).unwrap_or_default();
            let masked: Vec<&str> = result
                .lines()
                .filter(|l| l.starts_with("masked "))
                .collect();
            assert!(
                !masked.is_empty(),
                "no masked file probed:\n{result}\n{out}"
            );
            for l in masked {
                assert!(
                    l.ends_with(" character special file 1:3 0"),
                    "/dev/null -> {target}: a masked path is not the null device: {l}"
                );
            }
            assert!(result.contains("sysctl read-only"), "{result}");
        } else {
            assert_clean_refusal(&t, &t.id, &out);
            assert_eq!(t.mounts_left(), Vec::<PathBuf>::new());
        }
        assert_eq!(
            fs::read_to_string(&standin).unwrap(),
            "|/usr/lib/stand-in-handler %p\n",
            "/dev/null -> {target}: the stand-in for core_pattern was written"
        );
    }
}

// --- CVE-2025-52565 ----------------------------------------------------------------------

/// The host's own devpts instance, as `st_dev`.
fn host_devpts_dev() -> u64 {
    fs::metadata("/dev/pts/ptmx").unwrap().dev()
}

/// After a successful create with a console: /dev/console is a bind of a pty of the
/// container's own devpts (mounted with ptmxmode=0666, the host's has 000), the master is
/// not from the host's devpts, and `guarded` (mount points of test files) have no pty over
/// them.
#[track_caller]
fn assert_console_is_the_containers_pty(pid: i32, master: Option<&OwnedFd>, guarded: &[&str]) {
    let table = mount_table(pid);
    let console = table
        .iter()
        .rfind(|m| m.0 == "/dev/console")
        .unwrap_or_else(|| panic!("no mount on /dev/console: {table:#?}"));
    assert_eq!(console.2, "devpts", "/dev/console: {console:?}");
    assert!(
        console.3.contains("ptmxmode=666"),
        "/dev/console is a pty of another devpts: {console:?}"
    );
    let master = master.expect("a create that succeeded sent no pty master");
    let st = nix::sys::stat::fstat(master.as_raw_fd()).unwrap();
    assert_ne!(
        st.st_dev,
        host_devpts_dev(),
        "the console pty was allocated from the host's devpts"
    );
    for g in guarded {
        let over: Vec<_> = table
            .iter()
            .filter(|m| m.0 == *g && m.2 == "devpts")
            .collect();
        assert!(over.is_empty(), "the console was bound onto {g}: {over:?}");
    }
}

/// Starts a created container whose process writes to /dev/console, and waits for it.
fn start_and_wait(t: &Test, id: &str) {
    t.hull(&["start", id]).ok();
    let st = t.wait_status(id, "stopped", STOP_TIMEOUT);
    assert_eq!(st, "stopped", "{id} did not stop");
}

/// Three ways to redirect the console bind, each with `terminal: true` and a console socket:
/// - the rootfs's /dev/console is a symlink to a test file bound into the container;
/// - the config binds a test directory over /dev/pts whose `ptmx` leads to the container's
///   real devpts (mounted elsewhere) and whose `0`..`3` are test files: a runtime that
///   binds the peer by its name (/dev/pts/N) binds a test file onto /dev/console;
/// - without a pid namespace, /dev/pts is a symlink through /proc/PID/root to the host's
///   devpts: a runtime that follows it allocates the console from the host's devpts.
///
/// The console must be a pty of the container's devpts, or the create refused.
#[test]
fn cve_2025_52565_symlinked_console_or_pts_does_not_redirect_the_console_bind() {
    const WRITE: &str = "echo pwned > /dev/console; echo pwned > /dev/tty; true";

    // /dev/console -> /standin.
    {
        let mut t = Test::new("cve_52565_console");
        let victim = t.path("victim");
        write(&victim, "victim\n");
        without_dev_tmpfs(&mut t);
        // Writable, so that a runtime that follows the link gets as far as the bind.
        t.mount(bind(&victim, "/standin", &["bind", "rw"]));
        symlink("/standin", t.rootfs.join("dev/console")).unwrap();
        t.config["process"]["terminal"] = json!(true);
        t.sh(WRITE);
        let id = t.id.clone();
        let (out, pid, master) = create_with_console(&t, &id);
        report("/dev/console -> /standin", &out);
        if out.success() {
            assert_console_is_the_containers_pty(pid.unwrap(), master.as_ref(), &["/standin"]);
            start_and_wait(&t, &id);
        } else {
            assert_clean_refusal(&t, &id, &out);
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "victim\n");
    }

    // A test directory over /dev/pts, the real devpts at /dev/realpts.
    {
        let mut t = Test::new("cve_52565_pts");
        let fake = t.mkdir("fakepts");
        symlink("/dev/realpts/ptmx", fake.join("ptmx")).unwrap();
        for n in 0..4 {
            let f = fake.join(n.to_string());
            write(&f, &format!("victim {n}\n"));
            fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).unwrap();
        }
        let before = snapshot(&fake);
        for m in t.config["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev/pts" {
                m["destination"] = json!("/dev/realpts");
            }
        }
        t.mount(bind(&fake, "/dev/pts", &["rbind", "rw"]));
        t.config["process"]["terminal"] = json!(true);
        t.sh(WRITE);
        let id = t.id.clone();
        let (out, pid, master) = create_with_console(&t, &id);
        report("a test directory over /dev/pts", &out);
        if out.success() {
            assert_console_is_the_containers_pty(pid.unwrap(), master.as_ref(), &[]);
            start_and_wait(&t, &id);
        } else {
            assert_clean_refusal(&t, &id, &out);
        }
        assert_eq!(
            snapshot(&fake),
            before,
            "a test file behind /dev/pts changed"
        );
    }

    // /dev/pts -> /proc/PID/root/<a devpts of the test's own on the host>, without a pid
    // namespace. The kernel tells of every pty made in that devpts through inotify.
    {
        let mut t = Test::new("cve_52565_hostpts");
        let hostpts = t.mkdir("hostpts");
        let watch = HostDevpts::mount(&hostpts);
        without_dev_tmpfs(&mut t);
        t.config["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev/pts");
        t.remove_namespace("pid");
        let link = format!("{}{}", host_root_link(), hostpts.display());
        symlink(&link, t.rootfs.join("dev/pts")).unwrap();
        t.config["process"]["terminal"] = json!(true);
        t.sh(WRITE);
        let id = t.id.clone();
        let (out, _, master) = create_with_console(&t, &id);
        report(&format!("/dev/pts -> {link}"), &out);
        let made = watch.ptys_made();
        assert!(
            made.is_empty(),
            "the runtime followed /dev/pts out of the container and made ptys {made:?} in \
             the host's devpts {}\n{out}",
            hostpts.display()
        );
        if out.success() {
            // With no devpts of its own, the container cannot have a console at all.
            let st = nix::sys::stat::fstat(master.expect("no pty master").as_raw_fd()).unwrap();
            assert_ne!(st.st_dev, fs::metadata(&hostpts).unwrap().dev());
            start_and_wait(&t, &id);
        } else {
            assert_clean_refusal(&t, &id, &out);
        }
        drop(watch);
    }
}

/// A devpts instance of the test's own, mounted on the host in the test's directory (the
/// guard unmounts it), with an inotify watch that sees every pty made in it.
struct HostDevpts {
    inotify: OwnedFd,
}

impl HostDevpts {
    fn mount(dir: &Path) -> HostDevpts {
        let target = CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: mount(2) of a new devpts instance on a directory the test owns, with
        // NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"devpts".as_ptr(),
                target.as_ptr(),
                c"devpts".as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                c"newinstance,ptmxmode=0666,mode=0620".as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount devpts: {}", std::io::Error::last_os_error());
        // SAFETY: inotify_init1 takes flags only; the new fd is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: inotify_init1 just returned this fd and nothing else owns it.
        let inotify = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY: a watch on a NUL-terminated path, through the fd we own.
        let wd = unsafe { libc::inotify_add_watch(fd, target.as_ptr(), libc::IN_CREATE) };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        HostDevpts { inotify }
    }

    /// Names of the ptys made in the instance since it was mounted (or last asked).
    fn ptys_made(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a live buffer of the given size from a fd we own.
            let n =
                unsafe { libc::read(self.inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return names;
            }
            // struct inotify_event: wd (4), mask (4), cookie (4), len (4), then the name.
            let mut at = 0;
            while at + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                let name = &buf[at + 16..at + 16 + len];
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                names.push(String::from_utf8_lossy(name).into_owned());
                at += 16 + len;
            }
        }
    }
}

/// /dev is bound from a directory a racer owns, where a host thread keeps exchanging
/// `console` (an empty file) with a symlink to a test file the container sees read-only.
/// Each create must bind the pty onto the file (wherever the race has since moved it) or
/// refuse; never onto the test file.
#[test]
fn cve_2025_52565_console_swapped_while_the_container_is_created() {
    let mut t = Test::new("cve_52565_race");
    let victim = t.path("victim");
    write(&victim, "victim\n");
    let dev = t.mkdir("shareddev");
    let null = CString::new(dev.join("null").as_os_str().as_bytes()).unwrap();
    // SAFETY: mknod of a 1:3 node in the test's own directory.
    let rc = unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(rc, 0, "mknod: {}", std::io::Error::last_os_error());
    fs::create_dir(dev.join("pts")).unwrap();
    symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    write(&dev.join("console"), "");
    symlink("/standin", dev.join("console.x")).unwrap();
    for m in t.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            *m = bind(&dev, "/dev", &["rbind", "rw"]);
        }
    }
    t.mount(bind(&victim, "/standin", &["bind", "ro"]));
    t.config["process"]["terminal"] = json!(true);
    t.args(&["true"]);
    let swapper = Exchanger::start(&dev.join("console"), &dev.join("console.x"));

    let started = Instant::now();
    let (mut created, mut refused) = (0, 0);
    while started.elapsed() < RACE_TIME && created + refused < 40 {
        let id = t.new_id();
        let (out, pid, master) = create_with_console(&t, &id);
        if out.success() {
            created += 1;
            let pid = pid.unwrap();
            let table = mount_table(pid);
            // The pty follows the file it was bound onto, which the race may have renamed.
            let over: Vec<_> = table
                .iter()
                .filter(|m| m.0 == "/standin" && m.2 == "devpts")
                .collect();
            assert!(
                over.is_empty(),
                "the console was bound onto /standin: {over:?}"
            );
            let console = table
                .iter()
                .find(|m| m.2 == "devpts" && (m.0 == "/dev/console" || m.0 == "/dev/console.x"));
            assert!(console.is_some(), "no pty on the console file: {table:#?}");
            drop(master);
            t.hull(&["delete", "--force", &id]).ok();
        } else {
            refused += 1;
            assert_clean_refusal(&t, &id, &out);
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "victim\n");
    }
    let swaps = swapper.finish();
    println!(
        "{created} created, {refused} refused in {:?}; {swaps} swaps",
        started.elapsed()
    );
    assert!(swaps > 0);
    assert!(created + refused >= 5, "too few attempts to race");
    assert_eq!(t.mounts_left(), Vec::<PathBuf>::new());
}

// --- CVE-2025-52881 ----------------------------------------------------------------------

/// A sysctl of the network namespace of `pid`, read from a thread that joined it.
fn netns_sysctl(pid: i32, rel: &str) -> String {
    let ns = fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let path = format!("/proc/sys/{rel}");
    std::thread::spawn(move || {
        // SAFETY: setns of this thread only, with a namespace fd it owns; the thread ends
        // right after the read.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        fs::read_to_string(&path).unwrap().trim().to_string()
    })
    .join()
    .unwrap()
}

const TTL: &str = "net/ipv4/ip_default_ttl";

/// Creates `t`'s container, whose config sets `net.ipv4.ip_default_ttl` to 42 and
/// `oomScoreAdj` to 123; checks that both reached the kernel and that `fakes` (test files
/// somebody mounted over the procfs files) are unchanged. A refused create must be clean.
fn create_and_check_proc_writes(t: &mut Test, fakes: &[&Path], what: &str) {
    t.config["linux"]["sysctl"] = json!({ "net.ipv4.ip_default_ttl": "42" });
    t.config["process"]["oomScoreAdj"] = json!(123);
    let before: Vec<String> = fakes
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    let id = t.id.clone();
    let (out, pid) = t.create(&id);
    if out.success() {
        let pid = pid.unwrap();
        assert_eq!(netns_sysctl(pid, TTL), "42", "{what}: sysctl not in procfs");
        let adj = fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
        assert_eq!(adj.trim(), "123", "{what}: oom_score_adj not in procfs");
    } else {
        assert_clean_refusal(t, &id, &out);
    }
    for (f, b) in fakes.iter().zip(&before) {
        assert_eq!(
            &fs::read_to_string(f).unwrap(),
            b,
            "{what}: a procfs write went to {}",
            f.display()
        );
    }
}

/// Procfs writes of the runtime (a sysctl and oom_score_adj) with test files mounted over
/// their targets: by a createContainer hook in the container's mount namespace just before
/// the writes (as a racing mount would), by the config's own mounts, and by a mount whose
/// destination is a symlink into /proc/sys. The writes must reach the real procfs (or the
/// create be refused) and the test files stay as they were.
#[test]
fn cve_2025_52881_procfs_writes_are_not_redirected_by_mounts_over_proc() {
    // A hook mounts over the files in the container's procfs after every config mount.
    {
        let mut t = Test::new("cve_52881_hook");
        let ttl = t.path("fake_ttl");
        let oom = t.path("fake_oom");
        write(&ttl, "fake ttl\n");
        write(&oom, "fake oom\n");
        let rootfs = t.rootfs.display().to_string();
        let script = format!(
            "/usr/bin/busybox mount --bind {} {rootfs}/proc/sys/{TTL} && \
             /usr/bin/busybox mount --bind {} {rootfs}/proc/1/oom_score_adj",
            ttl.display(),
            oom.display()
        );
        t.config["hooks"] = json!({ "createContainer": [
            { "path": "/usr/bin/busybox", "args": ["busybox", "sh", "-c", script] }
        ]});
        create_and_check_proc_writes(&mut t, &[&ttl, &oom], "hook mounts");
    }
    // The config mounts over them.
    for (dest, name) in [
        (format!("/proc/sys/{TTL}"), "fake_ttl"),
        ("/proc/self/oom_score_adj".to_string(), "fake_oom"),
    ] {
        let mut t = Test::new("cve_52881_config");
        let fake = t.path(name);
        write(&fake, "fake\n");
        t.mount(bind(&fake, &dest, &["bind", "rw"]));
        create_and_check_proc_writes(&mut t, &[&fake], &dest);
    }
    // The config mounts onto a symlink that leads into /proc/sys.
    {
        let mut t = Test::new("cve_52881_link");
        let fake = t.path("fake_ttl");
        write(&fake, "fake\n");
        symlink(format!("/proc/sys/{TTL}"), t.rootfs.join("etc/ttl")).unwrap();
        t.mount(bind(&fake, "/etc/ttl", &["bind", "rw"]));
        create_and_check_proc_writes(&mut t, &[&fake], "symlinked destination");
    }
}

// --- CVE-2026-41579 ----------------------------------------------------------------------

/// The rootfs's /dev is a symlink to a test directory standing in for a host one (which
/// holds files named like devices): absolute, relative (`../../`, climbing out of the
/// rootfs), and through /proc/PID/root without a pid namespace; each with the config's tmpfs
/// on /dev and without it. Nothing may be created, removed or mounted in the host
/// directory: the runtime resolves /dev inside the rootfs or refuses.
#[test]
fn cve_2026_41579_dev_symlink_to_a_host_path_does_not_touch_the_host() {
    for (kind, tmpfs) in [
        ("absolute", true),
        ("absolute", false),
        ("relative", true),
        ("relative", false),
        ("magic", true),
        ("magic", false),
    ] {
        let mut t = Test::new("cve_41579");
        let hostdev = t.mkdir("hostdev");
        for f in ["null", "ptmx", "console", "fd"] {
            write(&hostdev.join(f), "host file\n");
        }
        let before = snapshot(&hostdev);
        let target = match kind {
            "absolute" => hostdev.display().to_string(),
            // rootfs/dev -> rootfs/../../hostdev on the host.
            "relative" => "../../hostdev".to_string(),
            _ => {
                t.remove_namespace("pid");
                format!("{}{}", host_root_link(), hostdev.display())
            }
        };
        fs::remove_dir(t.rootfs.join("dev")).unwrap();
        symlink(&target, t.rootfs.join("dev")).unwrap();
        if !tmpfs {
            without_dev_tmpfs(&mut t);
        }
        t.sh("stat -L -c '%F %t:%T' /dev/null; ls /dev");
        let out = t.run();
        let what = format!(
            "/dev -> {target} ({} tmpfs)",
            if tmpfs { "with" } else { "no" }
        );
        if out.success() {
            assert!(
                out.stdout.starts_with("character special file 1:3\n"),
                "{what}: no /dev/null in the container:\n{out}"
            );
        } else {
            assert_clean_refusal(&t, &t.id, &out);
        }
        assert_eq!(
            snapshot(&hostdev),
            before,
            "{what}: the host directory changed"
        );
        assert_eq!(
            mounts_under(&hostdev),
            Vec::<PathBuf>::new(),
            "{what}: mounts on the host directory"
        );
        report(&what, &out);
    }
}
