use super::*;
use crate::Hierarchy;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Cgroups made for one test in one v1 hierarchy, under this process's own cgroup there
/// (never written to itself); removed, children first, when dropped.
struct Scratch {
    controller: &'static str,
    dirs: Vec<PathBuf>,
}

impl Scratch {
    /// None when the host has no such v1 hierarchy or we may not make cgroups in it.
    fn new(controller: &'static str) -> Option<Scratch> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_owned())
        })?;
        let base = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path.trim_start_matches('/'));
        let mut s = Scratch {
            controller,
            dirs: Vec::new(),
        };
        s.child(&base).ok()?;
        Some(s)
    }

    fn child(&mut self, parent: &Path) -> io::Result<PathBuf> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("hulltest-{}-{n}", std::process::id()));
        fs::create_dir(&dir)?;
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    fn dir(&self) -> &Path {
        &self.dirs[0]
    }

    fn hierarchy(&self, dir: &Path) -> Hierarchy {
        Hierarchy {
            controllers: vec![self.controller.to_owned()],
            dir: dir.to_owned(),
        }
    }

    fn cgroups(&self) -> Cgroups {
        Cgroups {
            v1: vec![self.hierarchy(self.dir())],
            created: vec![self.dir().to_owned()],
            ..Default::default()
        }
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.dir().join(file))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            for _ in 0..50 {
                match fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
    }
}

macro_rules! scratch {
    ($controller:expr) => {
        match Scratch::new($controller) {
            Some(s) => s,
            None => {
                hull_testing::skip(
                    "cgroup-v1",
                    &format!("no v1 {} hierarchy we may write to", $controller),
                );
                return;
            }
        }
    };
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn field_of(e: &CgroupError) -> &str {
    match e {
        CgroupError::Invalid { field, .. }
        | CgroupError::Unsupported { field, .. }
        | CgroupError::Write { field, .. } => field,
        _ => "",
    }
}

const MB: u64 = 1 << 20;

#[test]
fn memory_limit_and_swap_raise_lower_and_lift() {
    let s = scratch!("memory");
    let cg = s.cgroups();
    let mem = |limit: i64, swap: i64| {
        res(&format!(
            r#"{{"memory":{{"limit":{limit},"swap":{swap}}}}}"#
        ))
    };

    apply(&cg, &mem(64 << 20, 128 << 20), false).unwrap();
    assert_eq!(s.read("memory.limit_in_bytes"), (64 * MB).to_string());
    assert_eq!(
        s.read("memory.memsw.limit_in_bytes"),
        (128 * MB).to_string()
    );

    // Raising the limit above the old memory+swap total needs memsw written first.
    apply(&cg, &mem(256 << 20, 512 << 20), true).unwrap();
    assert_eq!(s.read("memory.limit_in_bytes"), (256 * MB).to_string());
    assert_eq!(
        s.read("memory.memsw.limit_in_bytes"),
        (512 * MB).to_string()
    );

    // Lowering memsw below the old limit needs the limit written first.
    apply(&cg, &mem(32 << 20, 48 << 20), true).unwrap();
    assert_eq!(s.read("memory.limit_in_bytes"), (32 * MB).to_string());
    assert_eq!(s.read("memory.memsw.limit_in_bytes"), (48 * MB).to_string());

    // An unlimited limit without swap lifts memsw too (runc), in the order that works.
    apply(&cg, &res(r#"{"memory":{"limit":-1}}"#), true).unwrap();
    assert_eq!(
        s.read("memory.limit_in_bytes"),
        MEMORY_UNLIMITED.to_string()
    );
    assert_eq!(
        s.read("memory.memsw.limit_in_bytes"),
        MEMORY_UNLIMITED.to_string()
    );
}

#[test]
fn memory_kernel_tcp_reservation_swappiness_and_oom() {
    let s = scratch!("memory");
    let cg = s.cgroups();
    let r = res(
        r#"{"memory":{"kernel":33554432,"kernelTCP":16777216,"reservation":33554432,
        "swappiness":10,"disableOOMKiller":true,"useHierarchy":true}}"#,
    );
    apply(&cg, &r, false).unwrap();
    assert_eq!(
        s.read("memory.kmem.tcp.limit_in_bytes"),
        (16 * MB).to_string()
    );
    assert_eq!(s.read("memory.soft_limit_in_bytes"), (32 * MB).to_string());
    assert_eq!(s.read("memory.swappiness"), "10");
    assert!(s.read("memory.oom_control").contains("oom_kill_disable 1"));
    assert_eq!(s.read("memory.use_hierarchy"), "1");

    apply(&cg, &res(r#"{"memory":{"disableOOMKiller":false}}"#), true).unwrap();
    assert!(s.read("memory.oom_control").contains("oom_kill_disable 0"));
    // Fields absent from an update stay as they are.
    assert_eq!(
        s.read("memory.kmem.tcp.limit_in_bytes"),
        (16 * MB).to_string()
    );
    assert_eq!(s.read("memory.swappiness"), "10");

    // This kernel always accounts hierarchically: false is a warning, as runc ignores it.
    apply(&cg, &res(r#"{"memory":{"useHierarchy":false}}"#), true).unwrap();
    assert_eq!(s.read("memory.use_hierarchy"), "1");
}

#[test]
fn invalid_memory_values_are_refused_before_any_write() {
    let s = scratch!("memory");
    let cg = s.cgroups();
    let unlimited = MEMORY_UNLIMITED.to_string();
    let cases = [
        (
            r#"{"memory":{"limit":67108864,"swappiness":200}}"#,
            "linux.resources.memory.swappiness",
        ),
        (
            r#"{"memory":{"limit":67108864,"swap":33554432}}"#,
            "linux.resources.memory.swap",
        ),
        (r#"{"memory":{"limit":-5}}"#, "linux.resources.memory.limit"),
        (
            r#"{"memory":{"limit":67108864,"kernelTCP":-7}}"#,
            "linux.resources.memory.kernelTCP",
        ),
    ];
    for (json, want) in cases {
        let err = apply(&cg, &res(json), false).unwrap_err();
        assert!(matches!(err, CgroupError::Invalid { .. }), "{json}: {err}");
        assert_eq!(field_of(&err), want, "{json}: {err}");
        assert_eq!(s.read("memory.limit_in_bytes"), unlimited, "{json}");
    }
    let err = apply(&cg, &res(r#"{"memory":{"swappiness":200}}"#), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.resources.memory.swappiness: 200 is out of range 0..=100"
    );
    // u64::MAX is -1, "unset", as in runc.
    apply(
        &cg,
        &res(r#"{"memory":{"swappiness":18446744073709551615}}"#),
        false,
    )
    .unwrap();
}

#[test]
fn a_bad_value_in_one_controller_leaves_the_others_unwritten() {
    let m = scratch!("memory");
    let c = scratch!("cpu");
    let cg = Cgroups {
        v1: vec![m.hierarchy(m.dir()), c.hierarchy(c.dir())],
        ..Default::default()
    };
    let before = c.read("cpu.shares");
    let r = res(r#"{"memory":{"limit":67108864},"cpu":{"shares":1}}"#);
    let err = apply(&cg, &r, true).unwrap_err();
    assert_eq!(field_of(&err), "linux.resources.cpu.shares", "{err}");
    assert_eq!(
        m.read("memory.limit_in_bytes"),
        MEMORY_UNLIMITED.to_string()
    );
    assert_eq!(c.read("cpu.shares"), before);
}

#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    // A plain directory standing in for the cgroup: the check reads usage and writes
    // nothing.
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hull-v1-{}-{n}", std::process::id()));
    fs::create_dir(&dir).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    fs::write(dir.join("memory.limit_in_bytes"), "1073741824").unwrap();
    fs::write(dir.join("memory.usage_in_bytes"), "50000000").unwrap();
    fs::write(dir.join("memory.use_hierarchy"), "1").unwrap();
    let cg = Cgroups {
        v1: vec![Hierarchy {
            controllers: vec!["memory".into()],
            dir: dir.clone(),
        }],
        ..Default::default()
    };
    let r = res(r#"{"memory":{"limit":10000000,"checkBeforeUpdate":true}}"#);
    let err = apply(&cg, &r, true).unwrap_err();
    assert!(matches!(err, CgroupError::Invalid { .. }), "{err}");
    assert_eq!(field_of(&err), "linux.resources.memory.limit");
    assert!(err.to_string().contains("50000000"), "{err}");
    let limit = fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap();
    assert_eq!(limit, "1073741824");
    // Above usage, or without the flag, the limit is written.
    let r = res(r#"{"memory":{"limit":60000000,"checkBeforeUpdate":true}}"#);
    apply(&cg, &r, true).unwrap();
    let limit = fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap();
    assert!(limit.starts_with("60000000"), "{limit}");
}

#[test]
fn pids_limit_and_max() {
    let s = scratch!("pids");
    let cg = s.cgroups();
    apply(&cg, &res(r#"{"pids":{"limit":10}}"#), false).unwrap();
    assert_eq!(s.read("pids.max"), "10");
    // 0 is "not set": the limit stays.
    apply(&cg, &res(r#"{"pids":{"limit":0}}"#), true).unwrap();
    assert_eq!(s.read("pids.max"), "10");
    apply(&cg, &res(r#"{"pids":{"limit":7}}"#), true).unwrap();
    assert_eq!(s.read("pids.max"), "7");
    apply(&cg, &res(r#"{"pids":{"limit":-1}}"#), true).unwrap();
    assert_eq!(s.read("pids.max"), "max");
}

#[test]
fn cpu_shares_quota_period_burst_and_idle() {
    let s = scratch!("cpu");
    let cg = s.cgroups();
    let r = res(r#"{"cpu":{"shares":512,"period":50000,"quota":25000,"burst":10000}}"#);
    apply(&cg, &r, false).unwrap();
    assert_eq!(s.read("cpu.shares"), "512");
    assert_eq!(s.read("cpu.cfs_period_us"), "50000");
    assert_eq!(s.read("cpu.cfs_quota_us"), "25000");
    assert_eq!(s.read("cpu.cfs_burst_us"), "10000");

    // Shares and idle together: shares first, as the kernel refuses shares while idle
    // (an idle group then reads its shares as 3).
    apply(&cg, &res(r#"{"cpu":{"shares":256,"idle":1}}"#), true).unwrap();
    assert_eq!(s.read("cpu.idle"), "1");

    // shares is refused while idle: idle must be left first.
    apply(&cg, &res(r#"{"cpu":{"shares":1024,"idle":0}}"#), true).unwrap();
    assert_eq!(s.read("cpu.shares"), "1024");
    assert_eq!(s.read("cpu.idle"), "0");

    // A quota below the current burst: the burst must be lowered first.
    apply(&cg, &res(r#"{"cpu":{"quota":5000,"burst":0}}"#), true).unwrap();
    assert_eq!(s.read("cpu.cfs_quota_us"), "5000");
    assert_eq!(s.read("cpu.cfs_burst_us"), "0");
    // And a burst above the current quota comes after the new quota.
    apply(&cg, &res(r#"{"cpu":{"quota":40000,"burst":30000}}"#), true).unwrap();
    assert_eq!(s.read("cpu.cfs_quota_us"), "40000");
    assert_eq!(s.read("cpu.cfs_burst_us"), "30000");

    // One of them alone must fit the other's current value.
    let err = apply(&cg, &res(r#"{"cpu":{"quota":20000}}"#), true).unwrap_err();
    assert_eq!(field_of(&err), "linux.resources.cpu.quota", "{err}");
    let err = apply(&cg, &res(r#"{"cpu":{"burst":50000}}"#), true).unwrap_err();
    assert_eq!(field_of(&err), "linux.resources.cpu.burst", "{err}");
    assert_eq!(s.read("cpu.cfs_quota_us"), "40000");

    apply(&cg, &res(r#"{"cpu":{"quota":-1}}"#), true).unwrap();
    assert_eq!(s.read("cpu.cfs_quota_us"), "-1");

    for (json, want) in [
        (r#"{"cpu":{"quota":10}}"#, "linux.resources.cpu.quota"),
        (r#"{"cpu":{"period":10}}"#, "linux.resources.cpu.period"),
        (
            r#"{"cpu":{"quota":5000,"burst":6000}}"#,
            "linux.resources.cpu.burst",
        ),
        (r#"{"cpu":{"idle":2}}"#, "linux.resources.cpu.idle"),
        (r#"{"cpu":{"shares":300000}}"#, "linux.resources.cpu.shares"),
    ] {
        let err = apply(&cg, &res(json), true).unwrap_err();
        assert_eq!(field_of(&err), want, "{json}: {err}");
    }
    assert_eq!(s.read("cpu.cfs_quota_us"), "-1");
    assert_eq!(s.read("cpu.shares"), "1024");
}

#[test]
fn cpu_period_and_quota_in_the_order_a_limited_parent_accepts() {
    let mut s = scratch!("cpu");
    let parent = s.dir().to_owned();
    fs::write(parent.join("cpu.cfs_quota_us"), "50000").unwrap();
    let child = s.child(&parent).unwrap();
    let cg = Cgroups {
        v1: vec![s.hierarchy(&child)],
        ..Default::default()
    };
    apply(
        &cg,
        &res(r#"{"cpu":{"period":100000,"quota":50000}}"#),
        false,
    )
    .unwrap();
    // Period first would make the child's ratio 1.0, above the parent's 0.5: the
    // kernel refuses it, so the quota goes first.
    apply(&cg, &res(r#"{"cpu":{"period":50000,"quota":25000}}"#), true).unwrap();
    let read = |f: &str| fs::read_to_string(child.join(f)).unwrap().trim().to_owned();
    assert_eq!(read("cpu.cfs_period_us"), "50000");
    assert_eq!(read("cpu.cfs_quota_us"), "25000");
}

#[test]
fn cpu_realtime() {
    let s = scratch!("cpu");
    hull_testing::skip_unless!(
        s.dir().join("cpu.rt_runtime_us").exists(),
        "rt-group-sched",
        "the kernel has no cpu.rt_runtime_us (CONFIG_RT_GROUP_SCHED)"
    );
    let cg = s.cgroups();
    let r = res(r#"{"cpu":{"realtimePeriod":500000,"realtimeRuntime":10000}}"#);
    apply(&cg, &r, false).unwrap();
    assert_eq!(s.read("cpu.rt_period_us"), "500000");
    assert_eq!(s.read("cpu.rt_runtime_us"), "10000");
    let r = res(r#"{"cpu":{"realtimePeriod":5000,"realtimeRuntime":10000}}"#);
    let err = apply(&cg, &r, true).unwrap_err();
    assert_eq!(
        field_of(&err),
        "linux.resources.cpu.realtimeRuntime",
        "{err}"
    );
}

#[test]
fn cpuset_written_and_filled_from_parents() {
    let mut s = scratch!("cpuset");
    let top = s.dir().to_owned();
    let leaf = s.child(&top).unwrap();
    let cg = Cgroups {
        v1: vec![s.hierarchy(&leaf)],
        created: vec![top.clone(), leaf.clone()],
        ..Default::default()
    };
    let root_cpus = fs::read_to_string(top.parent().unwrap().join("cpuset.cpus")).unwrap();
    let read = |d: &Path, f: &str| fs::read_to_string(d.join(f)).unwrap().trim().to_owned();
    assert_eq!(
        read(&top, "cpuset.cpus"),
        "",
        "a new v1 cpuset starts empty"
    );

    apply(&cg, &res(r#"{"cpu":{"cpus":"0"}}"#), false).unwrap();
    assert_eq!(read(&top, "cpuset.cpus"), root_cpus.trim());
    assert_eq!(read(&leaf, "cpuset.cpus"), "0");
    assert_eq!(read(&leaf, "cpuset.mems"), read(&top, "cpuset.mems"));
    assert!(!read(&leaf, "cpuset.mems").is_empty());

    apply(&cg, &res(r#"{"cpu":{"mems":"0"}}"#), true).unwrap();
    assert_eq!(read(&leaf, "cpuset.mems"), "0");
    assert_eq!(read(&leaf, "cpuset.cpus"), "0");

    let err = apply(&cg, &res(r#"{"cpu":{"cpus":"0,4096"}}"#), true).unwrap_err();
    assert_eq!(field_of(&err), "linux.resources.cpu.cpus", "{err}");
    assert!(err.to_string().contains("not within"), "{err}");
    assert_eq!(read(&leaf, "cpuset.cpus"), "0");
    let err = apply(&cg, &res(r#"{"cpu":{"cpus":"zero"}}"#), true).unwrap_err();
    assert_eq!(field_of(&err), "linux.resources.cpu.cpus", "{err}");
}

fn devices_list(s: &Scratch) -> Vec<String> {
    s.read("devices.list").lines().map(str::to_owned).collect()
}

const DEFAULT_LIST: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

#[test]
fn devices_list_has_the_config_rules_in_order_then_the_defaults() {
    let s = scratch!("devices");
    let cg = s.cgroups();
    // The rules of the validation suite's linux_cgroups_devices.
    let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
        {"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"},
        {"allow":true,"type":"b","major":8,"minor":20,"access":"rw"},
        {"allow":true,"type":"b","major":10,"minor":200,"access":"r"}]}"#);
    apply(&cg, &r, false).unwrap();
    let mut want = vec!["c 10:229 rwm", "b 8:20 rw", "b 10:200 r"];
    want.extend(DEFAULT_LIST);
    assert_eq!(devices_list(&s), want);

    // An update changes only what differs: no reset, no moment without /dev/null.
    let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
        {"allow":true,"type":"c","major":10,"minor":229,"access":"r"},
        {"allow":true,"type":"c","major":4,"minor":1,"access":"rw"}]}"#);
    apply(&cg, &r, true).unwrap();
    let mut want = vec!["c 10:229 r"];
    want.extend(DEFAULT_LIST);
    want.push("c 4:1 rw");
    assert_eq!(devices_list(&s), want);

    // Absent from an update: untouched.
    apply(&cg, &res(r#"{"pids":null}"#), true).unwrap();
    assert_eq!(devices_list(&s), want);
}

#[test]
fn devices_default_only_and_a_deny_of_a_default_wins() {
    let s = scratch!("devices");
    let cg = s.cgroups();
    apply(&cg, &res("{}"), false).unwrap();
    assert_eq!(devices_list(&s), DEFAULT_LIST);

    let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
        {"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"},
        {"allow":false,"type":"c","major":136,"access":"rwm"}]}"#);
    apply(&cg, &r, false).unwrap();
    let list = devices_list(&s);
    assert!(!list.iter().any(|l| l.starts_with("c 1:3 ")), "{list:?}");
    assert!(!list.iter().any(|l| l.starts_with("c 136:")), "{list:?}");
    assert!(list.contains(&"c 1:5 rwm".to_owned()), "{list:?}");

    // An allow-all config: the default is allow, with the config's denies.
    let r = res(r#"{"devices":[{"allow":true,"access":"rwm"},
        {"allow":false,"type":"b","major":8,"minor":0,"access":"w"}]}"#);
    apply(&cg, &r, true).unwrap();
    assert_eq!(devices_list(&s), ["a *:* rwm"]);
}

#[test]
fn devices_bad_rules_are_refused_before_any_write() {
    let s = scratch!("devices");
    let cg = s.cgroups();
    let cases = [
        // A hole in the default c 136:* rwm.
        (
            r#"[{"allow":false,"access":"rwm"},{"allow":false,"type":"c","major":136,"minor":5,"access":"rw"}]"#,
            "linux.resources.devices[1]",
        ),
        // A hole in the config's own wildcard.
        (
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","access":"rwm"},{"allow":false,"type":"b","major":8,"minor":0,"access":"m"}]"#,
            "linux.resources.devices[2]",
        ),
        // A rule the shared parser refuses (devices.rs tests each field).
        (
            r#"[{"allow":true,"type":"p","access":"rwm"}]"#,
            "linux.resources.devices[0].type",
        ),
    ];
    for (rules, want) in cases {
        let err = apply(&cg, &res(&format!(r#"{{"devices":{rules}}}"#)), false).unwrap_err();
        assert!(matches!(err, CgroupError::Invalid { .. }), "{rules}: {err}");
        assert_eq!(field_of(&err), want, "{rules}: {err}");
        assert_eq!(devices_list(&s), ["a *:* rwm"], "{rules}");
    }
    // A denied mknod of a default device inside the default "c *:* m" is fine: the
    // node could not be opened anyway.
    let r = r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"m"}]}"#;
    apply(&cg, &res(r), false).unwrap();
    assert!(devices_list(&s).contains(&"c 1:3 rw".to_owned()));
}

#[test]
fn unmounted_controllers_are_unsupported_naming_the_field() {
    let cg = Cgroups::default();
    for (json, want) in [
        (
            r#"{"network":{"classID":1048577}}"#,
            "linux.resources.network.classID",
        ),
        (
            r#"{"network":{"priorities":[{"name":"eth0","priority":5}]}}"#,
            "linux.resources.network.priorities",
        ),
        (
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#,
            "linux.resources.hugepageLimits",
        ),
        (
            r#"{"rdma":{"mlx5_0":{"hcaHandles":3}}}"#,
            "linux.resources.rdma",
        ),
        (r#"{"pids":{"limit":5}}"#, "linux.resources.pids.limit"),
    ] {
        let err = apply(&cg, &res(json), true).unwrap_err();
        assert!(
            matches!(err, CgroupError::Unsupported { .. }),
            "{json}: {err}"
        );
        assert_eq!(field_of(&err), want, "{json}: {err}");
    }
    // Hugepages on a hybrid host go to the unified hierarchy (v2.rs).
    let hybrid = Cgroups {
        unified: Some("/sys/fs/cgroup/unified/x".into()),
        ..Default::default()
    };
    let r = res(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#);
    apply(&hybrid, &r, true).unwrap();
}

#[test]
fn blkio_weight_without_a_weight_scheduler_is_unsupported() {
    let s = scratch!("blkio");
    hull_testing::skip_unless!(
        !s.dir().join("blkio.weight").exists() && !s.dir().join("blkio.bfq.weight").exists(),
        "no-blkio-weight",
        "the host's block scheduler has a blkio weight, so the refusal cannot be seen"
    );
    let cg = s.cgroups();
    for (json, want) in [
        (
            r#"{"blockIO":{"weight":500}}"#,
            "linux.resources.blockIO.weight",
        ),
        (
            r#"{"blockIO":{"leafWeight":500}}"#,
            "linux.resources.blockIO.leafWeight",
        ),
        (
            r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":100}]}}"#,
            "linux.resources.blockIO.weightDevice[0].weight",
        ),
    ] {
        let err = apply(&cg, &res(json), false).unwrap_err();
        assert!(
            matches!(err, CgroupError::Unsupported { .. }),
            "{json}: {err}"
        );
        assert_eq!(field_of(&err), want, "{json}: {err}");
    }
}

#[test]
fn blkio_throttle() {
    let s = scratch!("blkio");
    // A whole disk (throttling refuses partitions).
    let Some(disk) = fs::read_dir("/sys/dev/block").ok().and_then(|rd| {
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| {
                !Path::new("/sys/dev/block")
                    .join(n)
                    .join("partition")
                    .exists()
                    && !n.starts_with("7:")
            })
    }) else {
        hull_testing::skip("block-disk", "no whole disk to throttle");
        return;
    };
    let cg = s.cgroups();
    let (major, minor) = disk.split_once(':').unwrap();
    let r = res(&format!(
        r#"{{"blockIO":{{"throttleReadBpsDevice":[{{"major":{major},"minor":{minor},"rate":1048576}}],
            "throttleWriteIOPSDevice":[{{"major":{major},"minor":{minor},"rate":100}}]}}}}"#
    ));
    apply(&cg, &r, false).unwrap();
    assert_eq!(
        s.read("blkio.throttle.read_bps_device"),
        format!("{disk} 1048576")
    );
    assert_eq!(
        s.read("blkio.throttle.write_iops_device"),
        format!("{disk} 100")
    );
    let r = res(r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-1,"minor":0,"rate":1}]}}"#);
    let err = apply(&cg, &r, true).unwrap_err();
    assert_eq!(
        field_of(&err),
        "linux.resources.blockIO.throttleReadBpsDevice[0]",
        "{err}"
    );
}
