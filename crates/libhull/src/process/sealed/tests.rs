use super::*;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Tells [`child`] what to do in a child process of the test binary.
const CHILD: &str = "HULL_SEALED_TEST_CHILD";

fn exe() -> File {
    File::open("/proc/self/exe").unwrap()
}

fn errno_of(e: &std::io::Error) -> Option<i32> {
    e.raw_os_error()
}

/// The ways this machine can test: the overlay needs CAP_SYS_ADMIN.
fn testable() -> Vec<Protection> {
    Protection::ALL
        .into_iter()
        .filter(|p| *p != Protection::Overlay || hull_testing::is_root())
        .collect()
}

#[test]
fn each_way_makes_a_recognised_copy_of_the_binary() {
    let want = std::fs::read("/proc/self/exe").unwrap();
    assert_eq!(protection(&exe()), None, "the test binary is a plain file");
    for via in testable() {
        let fd = make(via, &exe()).unwrap_or_else(|e| panic!("{}: {e}", via.name()));
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let file = File::open(&path).unwrap();
        assert_eq!(protection(&file), Some(via), "{}", via.name());
        assert!(
            std::fs::read(&path).unwrap() == want,
            "{} differs",
            via.name()
        );
    }
}

#[test]
fn a_sealed_copy_refuses_writes_resizes_and_new_seals() {
    let mut copy = File::from(sealed_copy(&exe()).unwrap());
    let err = copy.write_all(b"pwned").unwrap_err();
    assert_eq!(errno_of(&err), Some(libc::EPERM));
    assert_eq!(errno_of(&copy.set_len(1).unwrap_err()), Some(libc::EPERM));
    // Reopened through /proc, as an attacker holding the fd would: no write either.
    let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
    if let Ok(mut reopened) = std::fs::OpenOptions::new().write(true).open(&path) {
        let err = reopened.write_all(b"pwned").unwrap_err();
        assert_eq!(errno_of(&err), Some(libc::EPERM), "{path}");
    }
    // SAFETY: F_ADD_SEALS on our own fd; it must fail because F_SEAL_SEAL is set.
    let r = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_EXEC) };
    assert_eq!(r, -1);
}

#[test]
fn the_overlay_view_is_read_only() {
    hull_testing::skip_unless_root!();
    let view = overlay_view(&exe()).unwrap();
    let path = format!("/proc/self/fd/{}", view.as_raw_fd());
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_err();
    assert_eq!(errno_of(&err), Some(libc::EROFS), "{path}");
}

/// The second layer older kernels get: the view is still the running binary, read-only,
/// and recognised as protected.
#[test]
fn the_overlay_over_dev_is_a_read_only_view_of_the_binary() {
    hull_testing::skip_unless_root!();
    let path = std::fs::read_link("/proc/self/exe").unwrap();
    let mnt = overlay_with(path.parent().unwrap(), "/dev").unwrap();
    let name = path.file_name().unwrap();
    let view =
        File::open(Path::new(&format!("/proc/self/fd/{}", mnt.as_raw_fd())).join(name)).unwrap();
    assert_eq!(protection(&view), Some(Protection::Overlay));
    assert!(same_file(&exe(), &OwnedFd::from(view.try_clone().unwrap())));
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", view.as_raw_fd()))
        .unwrap_err();
    assert_eq!(errno_of(&err), Some(libc::EROFS));
}

#[test]
fn a_tmpfile_copy_has_no_name_and_cannot_get_one() {
    // One directory on tmpfs, one (here) on disk.
    for dir in ["/dev/shm", "/tmp"].map(Path::new) {
        let copy = tmpfile_in(dir, &exe()).unwrap();
        let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
        let st = nix::sys::stat::fstat(copy.as_raw_fd()).unwrap();
        assert_eq!((st.st_nlink, st.st_mode & 0o7777), (0, 0o500), "{dir:?}");
        // O_EXCL: linkat refuses to give it a name in its own file system, even to root.
        let name = dir.join(format!("hull-sealed-link-{}", std::process::id()));
        let linked = nix::unistd::linkat(
            None,
            path.as_str(),
            None,
            name.to_str().unwrap(),
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        );
        if linked.is_ok() {
            let _ = std::fs::remove_file(&name);
        }
        // ENOENT for O_EXCL; EPERM first where the copy is immutable too.
        assert!(
            matches!(linked, Err(Errno::ENOENT | Errno::EPERM)),
            "{dir:?}: {linked:?}"
        );
        // The descriptor we keep is read-only.
        let flags = nix::fcntl::fcntl(copy.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_ACCMODE, libc::O_RDONLY, "{dir:?}");
    }
}

#[test]
fn tmpfile_places_on_tmpfs_come_first() {
    let dirs = tmpfile_dirs();
    let on_tmpfs: Vec<bool> = dirs
        .iter()
        .map(|d| {
            nix::sys::statfs::statfs(d.as_path())
                .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        })
        .collect();
    assert!(
        on_tmpfs.windows(2).all(|w| w[0] >= w[1]),
        "{dirs:?} {on_tmpfs:?}"
    );
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    assert!(
        dirs.contains(&exe.parent().unwrap().to_path_buf()),
        "{dirs:?}"
    );
}

/// A copy that is not immutable counts only while the kernel refuses to open it for
/// writing, which it does only while something runs it.
#[test]
fn a_mutable_tmpfile_copy_counts_only_while_writes_are_refused() {
    let exe_dir = std::fs::read_link("/proc/self/exe").unwrap();
    let dir = exe_dir.parent().unwrap();
    if nix::sys::statfs::statfs(dir)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
    {
        hull_testing::skip(
            "disk-tmp",
            "the test binary's directory is on tmpfs (the copy is immutable)",
        );
        return;
    }
    let copy = tmpfile_in(dir, &exe()).unwrap();
    let view = File::from(copy);
    assert!(!is_immutable(&view));
    assert!(!is_private_tmpfile(&view), "an idle mutable copy counted");
    let mode = nix::sys::stat::fstat(view.as_raw_fd()).unwrap().st_mode & 0o7777;
    assert_eq!(mode, 0o500, "the probe left the mode changed");
    let mut child = run_blocked(&view);
    // Until the child has exec'd, the copy is not yet running.
    let running = wait_for(|| is_private_tmpfile(&view));
    drop(child.stdin.take());
    child.wait().unwrap();
    assert!(running, "a running copy did not count");
}

/// The test binary run from `file`, blocked until its stdin closes.
fn run_blocked(file: &impl AsRawFd) -> std::process::Child {
    Command::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .args(CHILD_ARGS)
        .env(CHILD, "block")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

#[test]
fn a_tmpfile_copy_on_tmpfs_is_immutable_for_root() {
    hull_testing::skip_unless_root!();
    let copy = tmpfile_in(Path::new("/dev/shm"), &exe()).unwrap();
    let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_err();
    assert_eq!(errno_of(&err), Some(libc::EPERM), "{path}");
}

/// A directory of the test's own, removed (unmounting what is left on it) when dropped.
struct TempDir(PathBuf);

fn tempdir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("hull-sealed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0.join("mnt"), nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The same overlay, once attached somewhere, is no longer trusted: the tightening of
/// "any read-only overlay" to "a read-only overlay mounted nowhere".
#[test]
fn an_attached_read_only_overlay_does_not_count() {
    use hull_sys::mount::move_mount;
    use std::os::fd::AsFd;
    hull_testing::skip_unless_root!();
    let path = std::fs::read_link("/proc/self/exe").unwrap();
    let mnt = overlay_of(path.parent().unwrap()).unwrap();
    let name = path.file_name().unwrap();
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let file = File::from(hull_sys::fd::openat(mnt.as_fd(), name, flags, Mode::empty()).unwrap());
    let id = mount_id(&file).unwrap();
    assert!(
        !mounted_here(id),
        "a fsmount()ed mount is listed in mountinfo"
    );
    assert_eq!(protection(&file), Some(Protection::Overlay));

    // Attach that very mount (no clone): same id, now listed, and no longer trusted.
    let dir = tempdir("attached");
    let target = dir.0.join("mnt");
    std::fs::create_dir(&target).unwrap();
    move_mount(mnt.as_fd(), File::open(&target).unwrap().as_fd()).unwrap();
    assert!(
        mounted_here(id),
        "an attached mount is missing from mountinfo"
    );
    assert_eq!(protection(&file), None);
    let through = File::open(target.join(name)).unwrap();
    assert_eq!(protection(&through), None);
}

// --- in child processes: the real exec ---------------------------------------------

/// argv that makes the test binary run only [`child`].
const CHILD_ARGS: [&str; 5] = [
    "--exact",
    "process::sealed::tests::child",
    "--ignored",
    "--nocapture",
    "--test-threads=1",
];

/// The child side of the tests below; does nothing when run on its own.
#[test]
#[ignore = "run by the other tests in a child process"]
fn child() {
    let Some(what) = std::env::var_os(CHILD) else {
        return;
    };
    let what = what.to_string_lossy().into_owned();
    if what == "block" {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return;
    }
    if what == "loop" {
        let ours = identity().unwrap();
        let marker = std::env::var_os(MARKER).unwrap_or_default();
        if !marker.as_bytes().starts_with(ours.as_bytes()) {
            // Re-execute from the plain binary, as a protection the check misses would.
            let why = Exec::new()
                .unwrap()
                .run(&OwnedFd::from(exe()), Protection::Memfd);
            println!("sealed-report:error=the first exec failed: {why}");
        } else {
            let result = ensure();
            println!(
                "sealed-report:error={}",
                result.err().map(|e| e.to_string()).unwrap_or_default()
            );
        }
        return;
    }
    let order: Vec<Protection> = what
        .strip_prefix("ensure:")
        .unwrap()
        .bytes()
        .map(|c| Protection::from_code(c).unwrap())
        .collect();
    // Probe memfd_noexec once per run (both runs report; the parent reads the last).
    let probe = memfd_create(
        c"probe",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::from_bits_retain(libc::MFD_EXEC),
    )
    .map_or_else(|e| format!("{e:?}"), |_| "ok".into());
    // Printed by both runs: the first before its re-exec, the second before its check.
    println!("sealed-report:fds={}", open_fds());
    if let Err(e) = ensure_with(&order) {
        println!("sealed-report:error={e}");
        return;
    }
    let report = |k: &str, v: String| println!("sealed-report:{k}={v}");
    let me = exe();
    report(
        "via",
        protection(&me).map_or("none", Protection::name).into(),
    );
    report(
        "listed",
        mount_id(&me).is_some_and(mounted_here).to_string(),
    );
    let (dev, ino) = file_id(&me).unwrap();
    report("file", format!("{dev}.{ino}"));
    drop(me);
    let link = std::fs::read_link("/proc/self/exe").unwrap();
    report("exe", link.display().to_string());
    report("comm", String::from_utf8_lossy(&comm()).into_owned());
    report("marker", std::env::var_os(MARKER).is_some().to_string());
    report("pid", std::process::id().to_string());
    report(
        "argv",
        format!("{:?}", std::env::args_os().skip(1).collect::<Vec<_>>()),
    );
    report(
        "keep",
        format!("{:?}", std::env::var_os("HULL_SEALED_TEST_KEEP")),
    );
    report("memfd_exec", probe);
    report("fds", open_fds());
    // SAFETY: fd 7 was listed just now and is not closed while borrowed.
    let seven = unsafe { std::os::fd::BorrowedFd::borrow_raw(7) };
    report(
        "fd7",
        format!("{:?}", nix::unistd::write(seven, b"through fd 7")),
    );
}

/// This process's open descriptors with what they are, but for the one listing them.
fn open_fds() -> String {
    // The pid as this /proc shows it (not getpid() in a pid namespace of its own).
    let own = Path::new("/proc")
        .join(std::fs::read_link("/proc/self").unwrap())
        .join("fd");
    let mut fds: Vec<(i32, PathBuf)> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            Some((
                e.file_name().to_str()?.parse().ok()?,
                e.path().read_link().ok()?,
            ))
        })
        .filter(|(_, link)| *link != own)
        .collect();
    fds.sort_unstable();
    format!("{fds:?}")
}

struct ChildRun {
    pid: u32,
    report: Vec<(String, String)>,
    /// What the child wrote to the pipe it got as fd 7.
    fd7: String,
    output: String,
}

impl ChildRun {
    /// Every value reported for `key`, first to last.
    fn all(&self, key: &str) -> Vec<&str> {
        let found = self.report.iter().filter(|(k, _)| k == key);
        found.map(|(_, v)| v.as_str()).collect()
    }

    /// The descriptors the child had, the same before and after each re-exec.
    fn fds(&self) -> &str {
        let all = self.all("fds");
        assert!(
            all.len() >= 3,
            "fds reported {} times:\n{}",
            all.len(),
            self.output
        );
        assert!(
            all.iter().all(|f| *f == all[0]),
            "descriptors changed:\n{}",
            self.output
        );
        all[0]
    }

    fn get(&self, key: &str) -> &str {
        let found = self.report.iter().rev().find(|(k, _)| k == key);
        found.map_or_else(
            || panic!("no {key} in the child's report:\n{}", self.output),
            |(_, v)| v.as_str(),
        )
    }
}

/// Runs [`child`] as `what`, with a pipe as fd 7, under `wrapper` (a command that ends
/// by running its arguments) if given; kills it after 30 s.
fn run_child(what: &str, wrapper: &[&str]) -> ChildRun {
    run_child_of(&std::env::current_exe().unwrap(), what, wrapper)
}

/// [`run_child`] with the test binary run from `test_binary`.
fn run_child_of(test_binary: &Path, what: &str, wrapper: &[&str]) -> ChildRun {
    let mut cmd = match wrapper.split_first() {
        None => Command::new(test_binary),
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(test_binary);
            c
        }
    };
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let w_raw = w.as_raw_fd();
    let give_fd7 = move || {
        let ret = if w_raw == 7 {
            // dup2(7, 7) would leave it close-on-exec.
            // SAFETY: clears FD_CLOEXEC on fd 7, open in the child between fork and exec.
            unsafe { libc::fcntl(7, libc::F_SETFD, 0) }
        } else {
            // SAFETY: dup2 onto 7 in the child between fork and exec; w_raw is open there.
            unsafe { libc::dup2(w_raw, 7) }
        };
        match ret {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        }
    };
    cmd.args(CHILD_ARGS)
        .env(CHILD, what)
        .env("HULL_SEALED_TEST_KEEP", "a=b c")
        .env(MARKER, "1:mstale") // a foreign marker: must count for nothing
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the hook only calls dup2, which is async-signal-safe.
    unsafe { cmd.pre_exec(give_fd7) };
    let mut child = cmd.spawn().unwrap();
    drop(w);
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child {what} did not finish in 30 s (a re-exec loop?)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let mut fd7 = String::new();
    File::from(r).read_to_string(&mut fd7).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let output = format!(
        "{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout
        .lines()
        .filter_map(|l| Some(&l[l.find("sealed-report:")? + "sealed-report:".len()..]))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ChildRun {
        pid,
        report,
        fd7,
        output,
    }
}

/// The comm the kernel gives a process run by the path of this test binary.
fn expected_comm() -> String {
    let path = std::env::current_exe().unwrap();
    let base = path.file_name().unwrap().as_bytes();
    String::from_utf8_lossy(&base[..base.len().min(15)]).into_owned()
}

#[test]
fn ensure_reexecutes_from_each_way_keeping_argv_env_fds_pid_and_name() {
    for via in testable() {
        let what = format!("ensure:{}", via.code() as char);
        let run = run_child(&what, &[]);
        let out = &run.output;
        assert_eq!(run.get("via"), via.name(), "{out}");
        assert_eq!(run.get("pid"), run.pid.to_string(), "{out}");
        assert_eq!(run.get("comm"), expected_comm(), "{out}");
        assert_eq!(
            run.get("marker"),
            "false",
            "the marker reached the program:\n{out}"
        );
        let argv = format!("{:?}", CHILD_ARGS.map(std::ffi::OsString::from));
        assert_eq!(run.get("argv"), argv, "{out}");
        assert_eq!(run.get("keep"), r#"Some("a=b c")"#, "{out}");
        // Nothing the re-exec opened leaked, none was lost, and fd 7 is still our pipe.
        assert!(run.fds().contains("(7, "), "{out}");
        assert_eq!(run.fd7, "through fd 7", "{out}");
        if via == Protection::Overlay {
            assert_eq!(run.get("listed"), "false", "{out}");
            let exe = std::fs::read_link("/proc/self/exe").unwrap();
            let name = exe.file_name().unwrap().to_str().unwrap();
            assert_eq!(run.get("exe"), format!("/{name}"), "{out}");
        }
    }
}

/// A file that looks protected but that no parent of ours made (here a tmpfile copy the
/// test made and ran us from, without a marker) is replaced by a fresh copy; only a
/// sealed memfd is taken as it is.
#[test]
fn only_the_copy_our_parent_made_counts() {
    for via in testable() {
        let made = make(via, &exe()).unwrap();
        // Above 7, which the child gets as its report pipe.
        let copy = hull_sys::fd::dup_cloexec_from(made.as_fd(), 100).unwrap();
        drop(made);
        let (dev, ino) = file_id(&copy).unwrap();
        let path = PathBuf::from(format!("/proc/self/fd/{}", copy.as_raw_fd()));
        // Every way: the overlay cannot be made from a binary that has no path.
        let all: String = Protection::ALL.iter().map(|p| p.code() as char).collect();
        let run = run_child_of(&path, &format!("ensure:{all}"), &[]);
        let out = &run.output;
        assert!(!run.report.iter().any(|(k, _)| k == "error"), "{out}");
        assert_ne!(run.get("via"), "none", "{out}");
        let reexecuted = run.get("file") != format!("{dev}.{ino}");
        assert_eq!(
            reexecuted,
            via != Protection::Memfd,
            "{}: {out}",
            via.name()
        );
    }
}

#[test]
fn a_reexec_that_is_still_unprotected_fails_instead_of_looping() {
    let run = run_child("loop", &[]);
    let error = run.get("error");
    assert!(
        error.contains("re-executed from a sealed memfd")
            && error.contains("not re-executing again"),
        "{}",
        run.output
    );
}

/// Drops CAP_SYS_ADMIN for good before running its arguments.
const WITHOUT_SYS_ADMIN: [&str; 4] = [
    "setpriv",
    "--inh-caps=-sys_admin",
    "--bounding-set=-sys_admin",
    "--",
];

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// The whole order, as `ensure()` runs it: the overlay needs CAP_SYS_ADMIN.
#[test]
fn without_cap_sys_admin_the_copy_is_a_sealed_memfd() {
    hull_testing::skip_unless_root!();
    hull_testing::skip_unless!(
        have("setpriv"),
        "tools",
        "drops CAP_SYS_ADMIN with setpriv(1)"
    );
    let run = run_child("ensure:omt", &WITHOUT_SYS_ADMIN);
    let out = &run.output;
    assert_eq!(run.get("via"), Protection::Memfd.name(), "{out}");
    assert_eq!(run.get("comm"), expected_comm(), "{out}");
    assert!(run.fds().contains("(7, "), "{out}");
    assert_eq!(run.fd7, "through fd 7", "{out}");
}

/// The whole order without CAP_SYS_ADMIN, and vm.memfd_noexec = 2 set in a new pid
/// namespace of the child only (the sysctl is per pid namespace); the host's value is
/// checked unchanged afterwards.
#[test]
fn with_memfd_noexec_2_the_copy_is_an_o_tmpfile() {
    const SYSCTL: &str = "/proc/sys/vm/memfd_noexec";
    hull_testing::skip_unless_root!();
    hull_testing::skip_unless!(
        have("unshare") && have("setpriv"),
        "tools",
        "sets the sysctl in a namespace of its own with unshare(1) and setpriv(1)"
    );
    hull_testing::skip_unless!(
        Path::new(SYSCTL).exists(),
        "memfd-noexec",
        "this kernel has no {SYSCTL} (Linux 6.3 added it): memfd exec is never refused"
    );
    let host = std::fs::read_to_string(SYSCTL).unwrap();
    // `$$` is 1 only in a new pid namespace: the write below never reaches the host's.
    let script = format!(
        r#"[ "$$" = 1 ] || exit 99
echo 2 >{SYSCTL} || exit 98
exec {} "$@""#,
        WITHOUT_SYS_ADMIN.join(" ")
    );
    let wrapper = [
        "unshare",
        "--pid",
        "--fork",
        "--kill-child",
        "sh",
        "-c",
        &script,
        "sh",
    ];
    let run = run_child("ensure:omt", &wrapper);
    assert_eq!(
        std::fs::read_to_string(SYSCTL).unwrap(),
        host,
        "host sysctl changed"
    );
    let out = &run.output;
    assert_eq!(run.get("memfd_exec"), "EACCES", "{out}");
    assert_eq!(run.get("via"), Protection::Tmpfile.name(), "{out}");
    assert_eq!(run.get("comm"), expected_comm(), "{out}");
    assert!(run.fds().contains("(7, "), "{out}");
    assert_eq!(run.fd7, "through fd 7", "{out}");
}

/// What a container does with a process of the runtime's binary: open its
/// `/proc/<pid>/exe`, then try to write to it, directly and by reopening the handle.
#[test]
fn a_running_copy_cannot_be_opened_for_writing() {
    let want = std::fs::read("/proc/self/exe").unwrap();
    for via in testable() {
        let view = make(via, &exe()).unwrap();
        let path = format!("/proc/self/fd/{}", view.as_raw_fd());
        let mut child = run_blocked(&view);
        let exe_link = format!("/proc/{}/exe", child.id());
        // Once seen under emulation (TCG): the link still named the test binary when
        // read right after spawn. Wait until it names the copy.
        let original = std::fs::read_link("/proc/self/exe").unwrap();
        wait_for(|| std::fs::read_link(&exe_link).is_ok_and(|l| l != original));
        let handle = File::open(&exe_link).unwrap();
        let seen = || {
            format!(
                "{}: {exe_link} -> {:?}: fs {:?}, flags {:?}, mount {:?} mounted here {:?}",
                via.name(),
                std::fs::read_link(&exe_link),
                nix::sys::statfs::fstatfs(&handle).map(|s| s.filesystem_type()),
                fstatvfs(&handle).map(|v| v.flags()),
                mount_id(&handle),
                mount_id(&handle).map(mounted_here),
            )
        };
        assert_eq!(protection(&handle), Some(via), "{}", seen());
        let reopen = format!("/proc/self/fd/{}", handle.as_raw_fd());
        let mut outcomes = Vec::new();
        for target in [&exe_link, &reopen] {
            let opened = std::fs::OpenOptions::new().write(true).open(target);
            outcomes.push(match opened {
                Err(e) => errno_of(&e),
                Ok(mut f) => f.write_all(b"pwned").err().and_then(|e| errno_of(&e)),
            });
        }
        drop(child.stdin.take());
        child.wait().unwrap();
        let allowed = [libc::EROFS, libc::ETXTBSY, libc::EPERM];
        assert!(
            outcomes
                .iter()
                .all(|o| o.is_some_and(|e| allowed.contains(&e))),
            "{}: a write got through or failed oddly: {outcomes:?}",
            via.name()
        );
        assert!(
            std::fs::read(&path).unwrap() == want,
            "{} changed",
            via.name()
        );
    }
}

/// Not a check: prints what each way costs. Run with
/// `cargo test -p libhull --release sealed::tests::cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement"]
fn cost_of_each_way() {
    const N: u32 = 50;
    for via in testable() {
        let start = Instant::now();
        for _ in 0..N {
            drop(make(via, &exe()).unwrap());
        }
        let make_each = start.elapsed() / N;
        let start = Instant::now();
        for _ in 0..N {
            drop(File::open("/proc/self/exe").map(|f| protection(&f)));
        }
        let check_each = start.elapsed() / N;
        let size = std::fs::metadata("/proc/self/exe").unwrap().len() >> 20;
        println!(
            "{}: make {make_each:?}, check {check_each:?} ({size} MiB binary)",
            via.name()
        );
    }
}
