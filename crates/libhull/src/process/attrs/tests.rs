use std::os::fd::AsRawFd;
use std::process::{Child, Command};

use nix::sched::{unshare, CloneFlags};
use oci_spec::runtime::{PosixRlimitBuilder, UserBuilder};

use super::forked::{check, ensure, run, status_field};
use super::*;

#[test]
fn env_keeps_the_last_value_of_each_name_and_drops_an_empty_home() {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        prepare_env(&v(&["ONE=two", "PATH=/bin", "ONE=three"])),
        (v(&["PATH=/bin", "ONE=three"]), false)
    );
    assert_eq!(
        prepare_env(&v(&["HOME=/override", "HOME="])),
        (v(&[]), false)
    );
    assert_eq!(
        prepare_env(&v(&["HOME=", "HOME=/x", "A=", "A=="])),
        (v(&["HOME=/x", "A=="]), true)
    );
}

fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .unwrap()
}

fn has_effective(cap: caps::Capability) -> bool {
    caps::has_cap(None, caps::CapSet::Effective, cap).unwrap_or(false)
}

/// A sleeping child the test kills (by its pid) and reaps when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Self {
        Sleeper(
            Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.id() as i32)
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn switch_user_sets_ids_groups_umask_and_keeps_permitted_caps() {
    run(|| {
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(1001u32)
            .additional_gids(vec![1002u32, 1003])
            .umask(0o077u32)
            .build()
            .unwrap();
        let permitted_before = status_field("CapPrm")?;
        check("switch_user", switch_user(&user))?;

        let uids = check("getresuid", nix::unistd::getresuid())?;
        let gids = check("getresgid", nix::unistd::getresgid())?;
        ensure(
            [uids.real, uids.effective, uids.saved] == [Uid::from_raw(1000); 3],
            || format!("uids {uids:?}"),
        )?;
        ensure(
            [gids.real, gids.effective, gids.saved] == [Gid::from_raw(1001); 3],
            || format!("gids {gids:?}"),
        )?;
        let groups = check("getgroups", nix::unistd::getgroups())?;
        ensure(groups == [Gid::from_raw(1002), Gid::from_raw(1003)], || {
            format!("groups {groups:?}")
        })?;
        let umask = nix::sys::stat::umask(Mode::empty());
        ensure(umask.bits() == 0o077, || {
            format!("umask {:o}", umask.bits())
        })?;

        // The permitted set survived the switch; effective was cleared by it.
        let permitted = status_field("CapPrm")?;
        ensure(permitted == permitted_before, || {
            format!("CapPrm {permitted}, was {permitted_before}")
        })?;
        let effective = status_field("CapEff")?;
        ensure(effective == "0000000000000000", || {
            format!("CapEff {effective}")
        })?;
        let keep = check("has_keepcaps", caps::securebits::has_keepcaps())?;
        ensure(!keep, || "PR_SET_KEEPCAPS still set".into())
    });
}

#[test]
fn switch_user_defaults_umask_and_clears_groups() {
    run(|| {
        check("setgroups", nix::unistd::setgroups(&[Gid::from_raw(42)]))?;
        nix::sys::stat::umask(Mode::from_bits_truncate(0o000));
        let user = UserBuilder::default().uid(0u32).gid(0u32).build().unwrap();
        check("switch_user", switch_user(&user))?;
        let groups = check("getgroups", nix::unistd::getgroups())?;
        ensure(groups.is_empty(), || format!("groups {groups:?}"))?;
        let umask = nix::sys::stat::umask(Mode::empty());
        ensure(umask.bits() == 0o022, || {
            format!("umask {:o}", umask.bits())
        })
    });
}

/// Enters a user namespace mapping root to our uid, with setgroups denied.
fn enter_userns_with_setgroups_denied() -> Result<(), String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    check("unshare user", unshare(CloneFlags::CLONE_NEWUSER))?;
    check(
        "setgroups deny",
        std::fs::write("/proc/self/setgroups", "deny"),
    )?;
    check(
        "uid_map",
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")),
    )?;
    check(
        "gid_map",
        std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")),
    )
}

#[test]
fn switch_user_skips_denied_setgroups_without_additional_gids() {
    run(|| {
        enter_userns_with_setgroups_denied()?;
        let user = UserBuilder::default().uid(0u32).gid(0u32).build().unwrap();
        check("switch_user", switch_user(&user))
    });
}

#[test]
fn switch_user_refuses_additional_gids_when_setgroups_is_denied() {
    run(|| {
        enter_userns_with_setgroups_denied()?;
        let user = UserBuilder::default()
            .uid(0u32)
            .gid(0u32)
            .additional_gids(vec![0u32])
            .build()
            .unwrap();
        match switch_user(&user) {
            Err(AttrError::SetgroupsDenied { gids }) if gids == [0] => Ok(()),
            other => Err(format!("expected SetgroupsDenied, got {other:?}")),
        }
    });
}

#[test]
fn switch_user_names_an_unmapped_uid() {
    run(|| {
        enter_userns_with_setgroups_denied()?;
        let user = UserBuilder::default().uid(5u32).gid(0u32).build().unwrap();
        let err = switch_user(&user)
            .err()
            .ok_or("switch to unmapped uid 5 worked")?;
        let text = err.to_string();
        ensure(
            matches!(
                err,
                AttrError::Setuid {
                    uid: 5,
                    source: Errno::EINVAL
                }
            ) && text.contains("not mapped"),
            || format!("unexpected error: {text}"),
        )
    });
}

#[test]
fn chown_stdio_gives_pipes_to_the_uid_and_leaves_dev_null() {
    run(|| {
        let (r, w) = check("pipe", nix::unistd::pipe())?;
        let null = check("open /dev/null", std::fs::File::open("/dev/null"))?;
        check("dup2 0", nix::unistd::dup2(null.as_raw_fd(), 0))?;
        check("dup2 1", nix::unistd::dup2(w.as_raw_fd(), 1))?;
        check("dup2 2", nix::unistd::dup2(r.as_raw_fd(), 2))?;
        check("chown_stdio", chown_stdio(1000))?;
        for (fd, want) in [(0, 0), (1, 1000), (2, 1000)] {
            let st = check("fstat", nix::sys::stat::fstat(fd))?;
            ensure(st.st_uid == want, || {
                format!("fd {fd} owned by {}, want {want}", st.st_uid)
            })?;
        }
        Ok(())
    });
}

#[test]
fn set_rlimits_sets_soft_and_hard() {
    run(|| {
        check(
            "set_rlimits",
            set_rlimits(&[
                rlimit(PosixRlimitType::RlimitNofile, 100, 200),
                rlimit(PosixRlimitType::RlimitCore, 0, 4096),
            ]),
        )?;
        let nofile = check(
            "getrlimit",
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE),
        )?;
        ensure(nofile == (100, 200), || format!("NOFILE {nofile:?}"))?;
        let core = check(
            "getrlimit",
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE),
        )?;
        ensure(core == (0, 4096), || format!("CORE {core:?}"))
    });
}

#[test]
fn set_rlimits_explains_a_refused_hard_raise() {
    run(|| {
        // Without CAP_SYS_RESOURCE nobody may raise a hard limit: drop it if we have it.
        check(
            "drop CAP_SYS_RESOURCE",
            caps::drop(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_RESOURCE,
            ),
        )?;
        check(
            "lower",
            set_rlimits(&[rlimit(PosixRlimitType::RlimitNofile, 100, 200)]),
        )?;
        let err = set_rlimits(&[rlimit(PosixRlimitType::RlimitNofile, 100, 300)])
            .err()
            .ok_or("raising the hard NOFILE limit worked without CAP_SYS_RESOURCE")?;
        let text = err.to_string();
        ensure(
            matches!(
                err,
                AttrError::RlimitRaise {
                    current_hard: 200,
                    ..
                }
            ) && text.contains("RLIMIT_NOFILE")
                && text.contains("CAP_SYS_RESOURCE"),
            || format!("unexpected error: {text}"),
        )
    });
}

#[test]
fn set_rlimits_of_reaches_another_process() {
    let sleeper = Sleeper::start();
    set_rlimits_of(
        sleeper.pid(),
        &[rlimit(PosixRlimitType::RlimitNofile, 111, 222)],
    )
    .unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", sleeper.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3..5], ["111", "222"], "{line}");
}

#[test]
fn set_oom_score_adj_writes_proc_self() {
    run(|| {
        check("set_oom_score_adj", set_oom_score_adj(500))?;
        let v = check("read", std::fs::read_to_string("/proc/self/oom_score_adj"))?;
        ensure(v.trim() == "500", || format!("oom_score_adj {v}"))?;
        if !has_effective(caps::Capability::CAP_SYS_RESOURCE) {
            match set_oom_score_adj(-1000) {
                Err(AttrError::OomScoreAdjDenied { value: -1000, .. }) => {}
                other => return Err(format!("expected OomScoreAdjDenied, got {other:?}")),
            }
        }
        Ok(())
    });
}

#[test]
fn set_sysctls_writes_in_the_callers_ipc_namespace() {
    run(|| {
        // A private IPC namespace: the host's kernel.shm* stay untouched.
        check("unshare ipc", unshare(CloneFlags::CLONE_NEWIPC))?;
        let sysctls = HashMap::from([
            ("kernel.shmmax".to_owned(), "123456789".to_owned()),
            ("kernel/shmmni".to_owned(), "1234".to_owned()),
        ]);
        let planned = check("plan_sysctls", plan_sysctls(Some(&sysctls)))?;
        check("set_sysctls", set_sysctls(&planned))?;
        for (file, want) in [("shmmax", "123456789"), ("shmmni", "1234")] {
            let v = check(
                "read",
                std::fs::read_to_string(format!("/proc/sys/kernel/{file}")),
            )?;
            ensure(v.trim() == want, || format!("{file} = {v}"))?;
        }
        Ok(())
    });
}

#[test]
fn set_sysctls_names_a_missing_key() {
    run(|| {
        check("unshare ipc", unshare(CloneFlags::CLONE_NEWIPC))?;
        let sysctls = HashMap::from([("kernel.no_such_knob".to_owned(), "1".to_owned())]);
        let planned = check("plan_sysctls", plan_sysctls(Some(&sysctls)))?;
        let err = set_sysctls(&planned).err().ok_or("missing key accepted")?;
        let text = err.to_string();
        ensure(text.contains("/proc/sys/kernel/no_such_knob"), || {
            format!("unexpected error: {text}")
        })
    });
}

#[test]
fn sysctl_keys_map_to_paths_and_bad_keys_are_refused() {
    assert_eq!(
        sysctl_path("net.ipv4.ip_forward").as_deref(),
        Some("sys/net/ipv4/ip_forward")
    );
    assert_eq!(
        sysctl_path("net/ipv4/conf/eth0.1/rp_filter").as_deref(),
        Some("sys/net/ipv4/conf/eth0.1/rp_filter")
    );
    for bad in [
        "",
        "kernel..shmmax",
        ".kernel",
        "kernel/../../etc",
        "/kernel/x",
        "a\0b",
    ] {
        assert_eq!(sysctl_path(bad), None, "{bad:?} accepted");
    }
    let bad = HashMap::from([("fs.mqueue..x".to_owned(), "1".to_owned())]);
    assert_eq!(
        plan_sysctls(Some(&bad)).unwrap_err().to_string(),
        "invalid config.json: linux.sysctl.fs.mqueue..x: not a valid sysctl name"
    );
}

#[test]
fn hostname_and_domainname_in_a_private_uts_namespace() {
    run(|| {
        check("unshare uts", unshare(CloneFlags::CLONE_NEWUTS))?;
        check("set_hostname", set_hostname("hull-attrs-test"))?;
        check("set_domainname", set_domainname("hull.example"))?;
        let uts = check("uname", nix::sys::utsname::uname())?;
        ensure(uts.nodename() == "hull-attrs-test", || {
            format!("hostname {:?}", uts.nodename())
        })?;
        ensure(uts.domainname() == "hull.example", || {
            format!("domainname {:?}", uts.domainname())
        })
    });
}

#[test]
fn join_session_keyring_creates_a_searchable_private_keyring() {
    const KEY_SPEC_SESSION_KEYRING: i32 = -3;
    run(|| {
        let id = format!("hull-attrs-test-{}", std::process::id());
        check(
            "join_session_keyring",
            join_session_keyring(&format!("_ses.{id}")),
        )?;
        let description = describe_key(KEY_SPEC_SESSION_KEYRING)?;
        ensure(description.ends_with(&format!(";_ses.{id}")), || {
            format!("session keyring {description:?}")
        })?;
        let perm = keyring_perm(KEY_SPEC_SESSION_KEYRING)?;
        ensure(perm & KEY_USR_SEARCH != 0, || format!("perm {perm:#x}"))
    });
}

#[test]
fn join_session_keyring_lets_others_search_it_in_a_user_namespace() {
    const KEY_SPEC_SESSION_KEYRING: i32 = -3;
    run(|| {
        enter_userns_with_setgroups_denied()?;
        ensure(in_user_namespace()?, || {
            "not seen as a user namespace".into()
        })?;
        let name = format!("_ses.hull-attrs-userns-test-{}", std::process::id());
        check("join_session_keyring", join_session_keyring(&name))?;
        let perm = keyring_perm(KEY_SPEC_SESSION_KEYRING)?;
        ensure(perm & KEY_OTH_SEARCH != 0, || format!("perm {perm:#x}"))
    });
}

#[test]
fn the_initial_user_namespace_is_not_a_user_namespace() {
    assert!(!in_user_namespace().unwrap());
}

#[test]
fn set_no_new_privileges_shows_in_status() {
    run(|| {
        check("set_no_new_privileges", set_no_new_privileges())?;
        let v = status_field("NoNewPrivs")?;
        ensure(v == "1", || format!("NoNewPrivs {v}"))
    });
}
