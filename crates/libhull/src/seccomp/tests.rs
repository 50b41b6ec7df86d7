use super::*;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde_json::json;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("a LinuxSeccomp")
}

fn compile_err(v: serde_json::Value) -> String {
    match compile_with(&profile(v), None) {
        Ok(_) => panic!("compiled"),
        Err(e) => e.to_string(),
    }
}

fn docker() -> LinuxSeccomp {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hull/tests/fixtures/seccomp-docker-default.json"
    );
    serde_json::from_slice(&std::fs::read(path).expect("read the fixture")).expect("parse")
}

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hull-seccomp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child we forked: killed and reaped on drop unless already reaped.
struct Child(Option<Pid>);

impl Child {
    fn wait(&mut self) -> WaitStatus {
        let pid = self.0.take().expect("not reaped yet");
        loop {
            match waitpid(pid, None) {
                Err(Errno::EINTR) => continue,
                other => return other.expect("waitpid"),
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// Forks; the child runs `body` (raw syscalls only: the harness has other threads) and
/// exits with its return value.
fn fork_child(body: impl FnOnce() -> i32) -> Child {
    // SAFETY: the child only makes raw syscalls (no locks, no allocation) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", Errno::last());
    if pid == 0 {
        let code = body();
        // SAFETY: leaving the forked child without running the harness's destructors.
        unsafe { libc::_exit(code) };
    }
    Child(Some(Pid::from_raw(pid)))
}

fn run_child(body: impl FnOnce() -> i32) -> WaitStatus {
    fork_child(body).wait()
}

/// A raw syscall; the unused argument registers are zeroed (prctl checks them).
fn sys(nr: libc::c_long, a: u64, b: u64, c: u64) -> Result<i64, i32> {
    // SAFETY: the tests pass syscalls and arguments that touch no memory of ours, or
    // buffers they own for the duration of the call.
    let ret = unsafe { libc::syscall(nr, a, b, c, 0u64, 0u64, 0u64) };
    if ret < 0 {
        Err(Errno::last_raw())
    } else {
        Ok(ret)
    }
}

/// In a child: no core dumps, no_new_privs, then the filter.
fn child_load(filter: &Filter) -> Result<Option<OwnedFd>, i32> {
    if sys(libc::SYS_prctl, libc::PR_SET_DUMPABLE as u64, 0, 0).is_err()
        || sys(libc::SYS_prctl, libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0).is_err()
    {
        return Err(90);
    }
    filter.load().map_err(|_| 91)
}

/// Compiles `v` and runs `checks` in a child after loading it; each check is
/// (syscall result wanted, nr, args), and the child exits with the 1-based index of the
/// first check that failed.
type Check = (Result<(), i32>, libc::c_long, [u64; 3]);

fn run_checks(filter: &Filter, checks: &[Check]) -> WaitStatus {
    run_child(|| {
        if let Err(code) = child_load(filter) {
            return code;
        }
        for (i, (want, nr, [a, b, c])) in checks.iter().enumerate() {
            let got = sys(*nr, *a, *b, *c).map(|_| ());
            if got != *want {
                return i as i32 + 1;
            }
        }
        0
    })
}

fn assert_exit0(status: WaitStatus) {
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "child: {status:?} (exit n = check n failed; 90/91 = setup/load failed)"
    );
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
            "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno value",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 1}]}),
            "linux.seccomp.syscalls[1].errnoRet: SCMP_ACT_KILL_PROCESS takes no errno value",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
            "linux.seccomp.syscalls[0].errnoRet: 70000 is out of range (0 to 65535)",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": [], "action": "SCMP_ACT_ERRNO"}]}),
            "linux.seccomp.syscalls[0].names: must name at least one syscall",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd", ""], "action": "SCMP_ACT_ERRNO"}]}),
            "linux.seccomp.syscalls[0].names[1]: empty syscall name",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["close"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[1].index: 6 is out of range: syscalls have arguments 0 to 5",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath: required for SCMP_ACT_NOTIFY (linux.seccomp.syscalls[0])",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath: required for SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [
                {"names": ["getcwd", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
            "linux.seccomp.listenerMetadata: set without linux.seccomp.listenerPath",
        ),
    ];
    for (v, want) in cases {
        let got = compile_err(v.clone());
        assert!(got.starts_with(want), "{v}\n got: {got}\nwant: {want}");
    }
}

#[test]
fn architecture_unknown_to_libseccomp_names_the_field() {
    // LoongArch arrived in libseccomp 2.6; on 2.5 adding it fails.
    let v = libseccomp_version().unwrap_or_default();
    let config = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_LOONGARCH64"]});
    if !v.starts_with("2.5.") {
        // A libseccomp that knows it compiles the profile.
        assert!(
            compile_with(&profile(config), None).is_ok(),
            "libseccomp {v}"
        );
        return;
    }
    let got = compile_err(config);
    assert!(
        got.starts_with(&format!(
            "linux.seccomp.architectures[1]: SCMP_ARCH_LOONGARCH64 is not supported by libseccomp {v}: "
        )),
        "{got}"
    );
}

#[test]
fn unknown_names_are_refused_when_config_json_is_parsed() {
    // The OCI types are enums: the spec loader reports these with the field's path.
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_FOO"}]}),
            "syscalls[0].action",
            "SCMP_ACT_FOO",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_BAR"}),
            "defaultAction",
            "SCMP_ACT_BAR",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}),
            "flags[0]",
            "SECCOMP_FILTER_FLAG_FOO",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
            "architectures[0]",
            "SCMP_ARCH_VAX",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["close"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}),
            "syscalls[0].args[0].op",
            "SCMP_CMP_XX",
        ),
    ];
    for (v, path, name) in cases {
        let text = v.to_string();
        let mut de = serde_json::Deserializer::from_str(&text);
        let err = serde_path_to_error::deserialize::<_, LinuxSeccomp>(&mut de).expect_err("parsed");
        assert_eq!(err.path().to_string(), path);
        assert!(err.inner().to_string().contains(name), "{err}");
    }
}

#[test]
fn what_is_accepted_and_how_flags_come_out() {
    // Unknown syscall names are skipped; a rule repeating the default is dropped;
    // listenerPath without notify rules is ignored, as the runtime-spec says.
    let (f, _) = compile_with(
        &profile(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/x",
            "syscalls": [
                {"names": ["no_such_syscall_at_all", "getcwd"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}),
        ),
        None,
    )
    .expect("compile");
    assert!(!f.wants_listener());
    // Unset flags: SPEC_ALLOW, as runc and crun (this kernel has it).
    assert_eq!(f.flags(), FilterFlags(FLAG_SPEC_ALLOW));

    let flags = |flags: serde_json::Value, notify: bool| {
        let mut v = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags});
        if notify {
            v["listenerPath"] = json!("/x");
            v["syscalls"] = json!([{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]);
        }
        compile_with(&profile(v), None).expect("compile").0
    };
    assert_eq!(flags(json!([]), false).flags(), FilterFlags(0));
    assert_eq!(
        flags(
            json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"]),
            false
        )
        .flags(),
        FilterFlags(FLAG_LOG | FLAG_TSYNC)
    );
    // WAIT_KILLABLE_RECV only means something with a listener.
    let f = flags(json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), false);
    assert_eq!(f.flags(), FilterFlags(0));
    let f = flags(json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]), true);
    assert_eq!(f.flags(), FilterFlags(FLAG_WAIT_KILLABLE_RECV));
    assert!(f.wants_listener());

    assert_eq!(
        FilterFlags(FLAG_LOG | FLAG_NEW_LISTENER | 0x100).to_string(),
        "SECCOMP_FILTER_FLAG_LOG|SECCOMP_FILTER_FLAG_NEW_LISTENER|0x100"
    );
    let all = supported_flags();
    assert_eq!(all, FLAGS, "kernel 5.19+ takes every flag");
}

#[test]
fn load_error_says_what_the_caller_lacks() {
    let e = SeccompError::Load {
        flags: FilterFlags(FLAG_SPEC_ALLOW),
        source: Errno::EACCES,
    };
    assert_eq!(
        e.to_string(),
        "load seccomp filter (flags SECCOMP_FILTER_FLAG_SPEC_ALLOW): EACCES: Permission denied \
         (loading a filter needs no_new_privs or CAP_SYS_ADMIN)"
    );
}

#[test]
fn load_without_no_new_privs_or_cap_sys_admin_is_eacces() {
    hull_testing::skip_unless_root!();
    let (f, _) =
        compile_with(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW"})), None).expect("compile");
    let status = run_child(|| {
        // Dropping root clears every capability; no_new_privs stays off.
        if sys(libc::SYS_setresuid, 65534, 65534, 65534).is_err() {
            return 90;
        }
        match f.load() {
            Err(SeccompError::Load {
                source: Errno::EACCES,
                ..
            }) => 0,
            _ => 1,
        }
    });
    assert_exit0(status);
}

#[test]
fn errno_trace_and_log_actions() {
    let (f, _) = compile_with(
        &profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV},
            {"names": ["sched_yield"], "action": "SCMP_ACT_TRACE"},
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"}]})),
        None,
    )
    .expect("compile");
    let mut buf = [0u8; 512];
    let p = buf.as_mut_ptr() as u64;
    assert_exit0(run_checks(
        &f,
        &[
            (Err(libc::EPERM), libc::SYS_getcwd, [p, 512, 0]),
            (Err(libc::EXDEV), libc::SYS_uname, [p, 0, 0]),
            // TRACE without a tracer: the call fails with ENOSYS.
            (Err(libc::ENOSYS), libc::SYS_sched_yield, [0, 0, 0]),
            (Ok(()), libc::SYS_getppid, [0, 0, 0]),
            (Ok(()), libc::SYS_getpid, [0, 0, 0]),
        ],
    ));
}

#[test]
fn kill_process_and_trap_end_in_sigsys() {
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
        let (f, _) = compile_with(
            &profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": action}]})),
            None,
        )
        .expect("compile");
        let mut buf = [0u8; 64];
        let p = buf.as_mut_ptr() as u64;
        let status = run_checks(&f, &[(Ok(()), libc::SYS_getcwd, [p, 64, 0])]);
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{action}: {status:?}"
        );
    }
}

#[test]
fn argument_rules() {
    let cmp = |index: u64, op: &str, value: u64| json!({"index": index, "value": value, "op": op});
    let (f, _) = compile_with(
        &profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            // Only the query form of personality is allowed.
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
             "args": [cmp(0, "SCMP_CMP_NE", 0xffff_ffff)]},
            // Two conditions on one argument: either matches (runc's semantics).
            {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
             "args": [cmp(0, "SCMP_CMP_EQ", 1000), cmp(0, "SCMP_CMP_EQ", 1001)]},
            // Conditions on different arguments: all must match.
            {"names": ["fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
             "args": [cmp(0, "SCMP_CMP_EQ", 1000), cmp(1, "SCMP_CMP_EQ", libc::F_GETFD as u64)]},
            {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
             "args": [{"index": 0, "value": 0xff00, "valueTwo": 0x0300, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["fsync"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
             "args": [cmp(0, "SCMP_CMP_GT", 5000)]},
            {"names": ["fdatasync"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
             "args": [cmp(0, "SCMP_CMP_GE", 5000)]},
            {"names": ["fchdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
             "args": [cmp(0, "SCMP_CMP_LT", 3000)]},
            {"names": ["syncfs"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
             "args": [cmp(0, "SCMP_CMP_LE", 3000)]}]})),
        None,
    )
    .expect("compile");
    let (e2big, ebadf) = (Err(libc::E2BIG), Err(libc::EBADF));
    assert_exit0(run_checks(
        &f,
        &[
            (Ok(()), libc::SYS_personality, [0xffff_ffff, 0, 0]),
            (Err(libc::EACCES), libc::SYS_personality, [0, 0, 0]),
            (e2big, libc::SYS_close, [1000, 0, 0]),
            (e2big, libc::SYS_close, [1001, 0, 0]),
            (ebadf, libc::SYS_close, [1002, 0, 0]),
            (e2big, libc::SYS_fcntl, [1000, libc::F_GETFD as u64, 0]),
            (ebadf, libc::SYS_fcntl, [1000, libc::F_GETFL as u64, 0]),
            (ebadf, libc::SYS_fcntl, [1001, libc::F_GETFD as u64, 0]),
            (e2big, libc::SYS_dup, [0x0312, 0, 0]),
            (ebadf, libc::SYS_dup, [0x0412, 0, 0]),
            (e2big, libc::SYS_fsync, [5001, 0, 0]),
            (ebadf, libc::SYS_fsync, [5000, 0, 0]),
            (e2big, libc::SYS_fdatasync, [5000, 0, 0]),
            (ebadf, libc::SYS_fdatasync, [4999, 0, 0]),
            (e2big, libc::SYS_fchdir, [2999, 0, 0]),
            (ebadf, libc::SYS_fchdir, [3000, 0, 0]),
            (e2big, libc::SYS_syncfs, [3000, 0, 0]),
            (ebadf, libc::SYS_syncfs, [3001, 0, 0]),
        ],
    ));
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let p = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["exit_group", "getpid", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"}]}));
    let (f, _) = compile_with(&p, None).expect("compile");
    let largest = ScmpSyscall::from_name("exit_group")
        .expect("exit_group")
        .as_raw_syscall() as libc::c_long;
    assert!(largest > libc::SYS_getppid);
    assert_exit0(run_checks(
        &f,
        &[
            (Ok(()), libc::SYS_getpid, [0, 0, 0]),
            // Known to the profile's era: the default action.
            (Err(libc::EPERM), libc::SYS_getppid, [0, 0, 0]),
            // Newer than anything the profile names: ENOSYS, so callers fall back.
            (Err(libc::ENOSYS), largest + 1, [0, 0, 0]),
            (Err(libc::ENOSYS), 1000, [0, 0, 0]),
        ],
    ));

    // Permissive defaults, and a default that already says ENOSYS, get no stub.
    let stub = |default: &str, errno: Option<u32>| {
        let mut v = json!({"defaultAction": default, "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]});
        if let Some(errno) = errno {
            v["defaultErrnoRet"] = json!(errno);
        }
        Plan::check(&profile(v)).expect("check").enosys_stub
    };
    assert!(!stub("SCMP_ACT_ALLOW", None));
    assert!(!stub("SCMP_ACT_LOG", None));
    assert!(!stub("SCMP_ACT_TRACE", None));
    assert!(!stub("SCMP_ACT_ERRNO", Some(libc::ENOSYS as u32)));
    assert!(stub("SCMP_ACT_ERRNO", None));
    assert!(stub("SCMP_ACT_KILL", None));
    assert!(stub("SCMP_ACT_TRAP", None));
}

/// Runs a program of the opcodes the stub uses on (nr, arch): Some(return value), or None
/// when it falls off its end (into the filter).
fn run_stub(prog: &[Insn], nr: u32, arch: u32) -> Option<u32> {
    let (mut pc, mut acc) = (0usize, 0u32);
    while pc < prog.len() {
        let i = prog[pc];
        pc += 1;
        let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
        match i.code {
            0x20 => acc = if i.k == 0 { nr } else { arch },
            0x05 => pc += i.k as usize,
            0x15 => pc += jump(acc == i.k),
            0x25 => pc += jump(acc > i.k),
            0x45 => pc += jump(acc & i.k != 0),
            0x06 => return Some(i.k),
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
    assert_eq!(pc, prog.len(), "jumped past the stub");
    None
}

#[test]
fn enosys_stub_per_architecture() {
    const X86_64: u32 = 0xc000_003e;
    const I386: u32 = 0x4000_0003;
    const S390X: u32 = 0x8000_0016;
    const ENOSYS: Option<u32> = Some(0x0005_0000 | libc::ENOSYS as u32);
    let x32 = 0x4000_0000;
    let stub = enosys::stub(&[
        (ScmpArch::X8664, 300),
        (ScmpArch::X86, 400),
        (ScmpArch::X32, x32 + 500),
        (ScmpArch::S390X, 200),
    ])
    .expect("stub");
    assert_eq!(run_stub(&stub, 300, X86_64), None);
    assert_eq!(run_stub(&stub, 301, X86_64), ENOSYS);
    assert_eq!(run_stub(&stub, x32 + 500, X86_64), None);
    assert_eq!(run_stub(&stub, x32 + 501, X86_64), ENOSYS);
    assert_eq!(run_stub(&stub, 400, I386), None);
    assert_eq!(run_stub(&stub, 401, I386), ENOSYS);
    assert_eq!(run_stub(&stub, 0, S390X), ENOSYS);
    assert_eq!(run_stub(&stub, 5, S390X), None);
    assert_eq!(
        run_stub(&stub, 9999, 0x4000_0028),
        None,
        "arm: not in the filter"
    );

    // Only x86_64 in the filter: x32 calls are libseccomp's business (bad arch).
    let stub = enosys::stub(&[(ScmpArch::X8664, 300)]).expect("stub");
    assert_eq!(run_stub(&stub, x32 + 9999, X86_64), None);
    assert_eq!(run_stub(&stub, 301, X86_64), ENOSYS);
    assert_eq!(run_stub(&stub, 301, I386), None);
}

#[test]
fn notify_listener_reaches_an_agent_that_answers() {
    let (f, _) = compile_with(
        &profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/unused",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}),
        ),
        None,
    )
    .expect("compile");
    assert!(f.wants_listener());
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair");
    let mut child = fork_child(|| {
        let listener = match child_load(&f) {
            Ok(Some(fd)) => fd,
            Ok(None) => return 92,
            Err(code) => return code,
        };
        if hull_sys::fdpass::send_fd(theirs.as_fd(), b"x", listener.as_fd()) != Ok(1) {
            return 93;
        }
        // Answered by the agent in the parent.
        match sys(libc::SYS_getppid, 0, 0, 0) {
            Ok(4242) => 0,
            _ => 1,
        }
    });
    drop(theirs);
    let listener = recv_fd(&ours).expect("listener from the child");
    assert!(
        poll_in(&listener, Duration::from_secs(10)),
        "no notification"
    );
    let req = libseccomp::ScmpNotifReq::receive(listener.as_raw_fd()).expect("receive");
    assert_eq!(req.data.syscall, ScmpSyscall::from_name("getppid").unwrap());
    libseccomp::ScmpNotifResp::new_val(req.id, 4242, libseccomp::ScmpNotifRespFlags::empty())
        .respond(listener.as_raw_fd())
        .expect("respond");
    assert_exit0(child.wait());
}

fn poll_in(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = nix::poll::PollTimeout::try_from(timeout).expect("timeout");
    matches!(nix::poll::poll(&mut fds, ms), Ok(1))
}

fn recv_fd(sock: &OwnedFd) -> Option<OwnedFd> {
    assert!(
        poll_in(sock, Duration::from_secs(10)),
        "nothing from the child"
    );
    let mut byte = [0u8; 1];
    let got = hull_sys::fdpass::recv_fds(sock.as_fd(), &mut byte).ok()?;
    got.fds.into_iter().next()
}

#[test]
fn send_listener_sends_the_fd_and_the_process_state() {
    let dir = TempDir::new("agent");
    let sock = dir.0.join("agent.sock");
    let server = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let agent = std::thread::spawn(move || {
        let (conn, _) = server.accept().expect("accept");
        let conn = OwnedFd::from(conn);
        let fd = recv_fd_and_data(&conn);
        let mut rest = Vec::new();
        File::from(conn).read_to_end(&mut rest).expect("read");
        (fd.0, [fd.1, rest].concat())
    });
    let file = File::create(dir.0.join("payload")).expect("create");
    let state = json!({"ociVersion": "1.2.1", "id": "c1", "status": "creating", "pid": 42,
        "bundle": "/b", "annotations": {"a": "b"}});
    send_listener(&sock, file.as_fd(), 42, Some("meta data"), &state).expect("send");
    let (fd, data) = agent.join().expect("agent");
    let got: serde_json::Value = serde_json::from_slice(&data).expect("one JSON object");
    assert_eq!(
        got,
        json!({"ociVersion": crate::spec::OCI_VERSION, "fds": ["seccompFd"], "pid": 42,
            "metadata": "meta data", "state": state})
    );
    let (a, b) = (
        File::from(fd.expect("an fd")).metadata().unwrap(),
        file.metadata().unwrap(),
    );
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));

    // No metadata: no field.
    let server = std::os::unix::net::UnixListener::bind(dir.0.join("b.sock")).expect("bind");
    let agent = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().expect("accept");
        let mut data = Vec::new();
        conn.read_to_end(&mut data).expect("read");
        data
    });
    send_listener(&dir.0.join("b.sock"), file.as_fd(), 7, None, &state).expect("send");
    let got: serde_json::Value = serde_json::from_slice(&agent.join().unwrap()).unwrap();
    assert!(got.get("metadata").is_none(), "{got}");

    let err = send_listener(&dir.0.join("none.sock"), file.as_fd(), 7, None, &state)
        .expect_err("no agent");
    let text = err.to_string();
    assert!(
        text.starts_with("failed to connect with seccomp agent ") && text.contains("none.sock: "),
        "{text}"
    );
}

fn recv_fd_and_data(sock: &OwnedFd) -> (Option<OwnedFd>, Vec<u8>) {
    let mut buf = vec![0u8; 65536];
    let got = hull_sys::fdpass::recv_fds(sock.as_fd(), &mut buf).expect("recvmsg");
    assert!(got.fds.len() <= 1, "exactly one fd");
    buf.truncate(got.len);
    (got.fds.into_iter().next(), buf)
}

#[test]
fn cache_env_switch() {
    assert!(cache_enabled(None));
    assert!(cache_enabled(Some(OsStr::new("1"))));
    for off in ["0", "false", "OFF", "no"] {
        assert!(!cache_enabled(Some(OsStr::new(off))), "{off}");
    }
}

#[test]
fn cache_hits_and_refuses_what_it_cannot_trust() {
    let tmp = TempDir::new("cache");
    let dir = tmp.0.join("cache");
    let p = docker();
    let fresh = compile_with(&p, None).expect("compile").0;

    let (f, used) = compile_with(&p, Some(&dir)).expect("compile");
    assert!(
        matches!(used, CacheUse::Miss(ref why) if why.contains("No such file")),
        "{used:?}"
    );
    assert_eq!(f, fresh);
    let dmode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dmode, 0o700);
    let file = dir.join(cache::file_name(&cache::key(&p).unwrap()));
    let fmode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(fmode, 0o600);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temp files left"
    );

    let hit = |why: &str| {
        let (f, used) = compile_with(&p, Some(&dir)).expect("compile");
        assert_eq!(f, fresh, "{why}");
        used
    };
    assert_eq!(hit("hit"), CacheUse::Hit);
    // The listener fields do not change the program: same entry.
    let mut with_listener = p.clone();
    with_listener.set_listener_path(Some("/agent".into()));
    assert_eq!(cache::key(&with_listener).unwrap(), cache::key(&p).unwrap());

    let miss = |why: &str| {
        let used = hit(why);
        assert!(
            matches!(used, CacheUse::Miss(ref m) if m.contains(why)),
            "{why}: {used:?}"
        );
        // Rewritten on the miss.
        assert_eq!(hit(why), CacheUse::Hit, "{why}");
    };

    std::fs::write(&file, b"garbage").unwrap();
    miss("implausible size");
    std::fs::write(&file, [b"garbage".as_slice(), &[0u8; 64]].concat()).unwrap();
    miss("not a hull seccomp cache file");

    let mut bytes = std::fs::read(&file).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    miss("checksum mismatch");

    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 8);
    std::fs::write(&file, &bytes).unwrap();
    miss("size does not match");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    miss("group or world writable");

    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        miss("owned by uid 65534");
    }

    // Another profile's entry under this name (a collision, or a swapped file).
    let other = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}));
    compile_with(&other, Some(&dir)).expect("compile");
    let other_file = dir.join(cache::file_name(&cache::key(&other).unwrap()));
    std::fs::copy(&other_file, &file).unwrap();
    miss("stored profile differs");
    // Same length, one byte of the profile changed.
    let key = cache::key(&p).unwrap();
    let mut bytes = cache::encode(&key, &fresh.program);
    bytes[32 + key.len() - 2] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    miss("stored profile differs");

    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&other_file, &file).unwrap();
    miss("ELOOP");

    std::fs::remove_file(&file).unwrap();
    nix::unistd::mkfifo(&file, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let used = hit("fifo");
    assert!(
        matches!(used, CacheUse::Miss(ref m) if m.contains("not a regular file")),
        "{used:?}"
    );
    std::fs::remove_file(&file).unwrap();

    // A directory others can write is not used at all.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let used = hit("open dir");
    assert!(
        matches!(used, CacheUse::Miss(ref m) if m.contains("group or world writable")),
        "{used:?}"
    );
    assert!(
        !file.exists(),
        "nothing written into an untrusted directory"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn docker_profile_compiles_and_behaves() {
    let p = docker();
    let names: usize = p.syscalls().iter().flatten().map(|s| s.names().len()).sum();
    assert!(names > 300, "{names}");
    let (f, _) = compile_with(&p, None).expect("compile");
    assert!(f.len() < MAX_INSNS, "{}", f.len());
    let mut buf = [0u8; 512];
    let b = buf.as_mut_ptr() as u64;
    let eperm = Err(libc::EPERM);
    assert_exit0(run_checks(
        &f,
        &[
            (Ok(()), libc::SYS_getcwd, [b, 512, 0]),
            (Ok(()), libc::SYS_personality, [0xffff_ffff, 0, 0]),
            (Ok(()), libc::SYS_personality, [0, 0, 0]),
            (eperm, libc::SYS_personality, [1, 0, 0]),
            (eperm, libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0]),
            (eperm, libc::SYS_mount, [0, 0, 0]),
            (eperm, libc::SYS_socket, [40, libc::SOCK_STREAM as u64, 0]),
            (Err(libc::ENOSYS), libc::SYS_clone3, [0, 0, 0]),
            (Err(libc::ENOSYS), 1000, [0, 0, 0]),
        ],
    ));
}
