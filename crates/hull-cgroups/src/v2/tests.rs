use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxRdmaBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};

use super::*;

/// The host's cgroup2 mount, wherever it is: /sys/fs/cgroup/unified on a hybrid host,
/// /sys/fs/cgroup on a unified one.
pub(crate) fn unified_root() -> PathBuf {
    crate::host_mounts()
        .expect("read the host's cgroup mounts")
        .unified
        .map(|(mount, _)| mount)
        .expect("no cgroup2 hierarchy mounted on this host")
}
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A scratch child of the host's cgroup2 hierarchy, removed (after its processes are
/// gone) on drop.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let dir = unified_root().join(unique("hulltest"));
        std::fs::create_dir(&dir).expect("mkdir scratch cgroup");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A process that just exited can keep the cgroup busy for a moment.
        for _ in 0..200 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        println!("could not remove {}", self.0.display());
    }
}

fn in_cgroup(dir: &Path, script: &str) -> Command {
    let procs = dir.join("cgroup.procs");
    let mut cmd = Command::new("/usr/bin/busybox");
    cmd.args(["sh", "-c", script]);
    // SAFETY: the hook runs in the forked child before exec and only opens and writes
    // one file through a path built before the fork (std's open uses a stack buffer for
    // short paths), so it neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&procs)?
                .write_all(b"0")
        });
    }
    cmd
}

/// Runs a busybox shell script in the cgroup `dir` and waits for it.
pub(crate) fn run_in(dir: &Path, script: &str) -> Output {
    in_cgroup(dir, script).output().expect("run busybox")
}

/// A child this test started, SIGKILLed and reaped on drop.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain directory standing in for a cgroup: the files `apply` may write, empty.
struct FakeDir(PathBuf);

impl FakeDir {
    fn new(controllers: &str, files: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(unique("hull-v2-test"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
        for f in files {
            std::fs::write(dir.join(f), "").unwrap();
        }
        FakeDir(dir)
    }

    fn get(&self, file: &str) -> String {
        std::fs::read_to_string(self.0.join(file)).unwrap()
    }
}

impl Drop for FakeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ALL_FILES: &[&str] = &[
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "pids.max",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "rdma.max",
];
const ALL_CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma";

#[test]
fn cpu_weight_is_runc_linear_map() {
    assert_eq!(cpu_weight_from_shares(2), 1);
    assert_eq!(cpu_weight_from_shares(1024), 39);
    assert_eq!(cpu_weight_from_shares(262_144), 10_000);
    // Out of the v1 range: clamped as the v1 kernel does, never wrapped.
    assert_eq!(cpu_weight_from_shares(1), 1);
    assert_eq!(cpu_weight_from_shares(1 << 40), 10_000);
}

#[test]
fn io_weight_is_runc_linear_map() {
    assert_eq!(io_weight_from_blkio(10), Ok(1));
    assert_eq!(io_weight_from_blkio(500), Ok(4950));
    assert_eq!(io_weight_from_blkio(1000), Ok(10_000));
    assert!(io_weight_from_blkio(9).is_err());
    assert!(io_weight_from_blkio(1001).is_err());
}

#[test]
fn swap_total_becomes_swap_only() {
    assert_eq!(swap_max(3000, 1000), Ok(Some("2000".into())));
    // Equal totals: swap disabled.
    assert_eq!(swap_max(1000, 1000), Ok(Some("0".into())));
    assert_eq!(swap_max(-1, 1000), Ok(Some("max".into())));
    assert_eq!(swap_max(0, 1000), Ok(None));
    assert_eq!(swap_max(0, -1), Ok(Some("max".into())));
    assert_eq!(swap_max(0, 0), Ok(None));
    assert!(swap_max(500, 1000).unwrap_err().contains("below"));
    assert!(swap_max(3000, 0)
        .unwrap_err()
        .contains("needs a memory limit"));
    assert!(swap_max(3000, -1).is_err());
    assert!(swap_max(-2, 1000).is_err());
}

#[test]
fn unified_keys_name_one_file() {
    assert!(check_unified_key("memory.high").is_ok());
    assert!(check_unified_key("cgroup.max.descendants").is_ok());
    assert!(check_unified_key("hugetlb.2MB.max").is_ok());
    for bad in [
        "",
        ".",
        "..",
        "../memory.max",
        "a/b.c",
        "memory",
        ".max",
        "memory.",
        "cgroup.procs",
        "cgroup.threads",
        "cgroup.subtree_control",
        "cgroup.kill",
        "cgroup.freeze",
    ] {
        assert!(check_unified_key(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn page_sizes_are_spelled_like_the_kernel() {
    assert_eq!(page_size_name(64), "64KB");
    assert_eq!(page_size_name(2048), "2MB");
    assert_eq!(page_size_name(1 << 20), "1GB");
    assert_eq!(page_size_name(16 << 20), "16GB");
    let host = host_page_sizes();
    assert!(host.iter().all(|s| s.ends_with("B")), "{host:?}");
}

fn everything() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1_000_000)
                .swap(3_000_000)
                .reservation(500_000)
                .kernel_tcp(1_000_000)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
        .cpu(
            LinuxCpuBuilder::default()
                .shares(1024u64)
                .quota(50_000)
                .period(100_000u64)
                .burst(1000u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8)
                    .minor(0)
                    .rate(1000u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(2 * 1024 * 1024)
            .build()
            .unwrap()])
        .rdma(HashMap::from([(
            "mlx5_0".to_string(),
            LinuxRdmaBuilder::default()
                .hca_handles(3u32)
                .build()
                .unwrap(),
        )]))
        .unified(HashMap::from([(
            "memory.high".to_string(),
            "900000".to_string(),
        )]))
        .build()
        .unwrap()
}

#[test]
fn unified_host_gets_every_field() {
    let d = FakeDir::new(ALL_CONTROLLERS, ALL_FILES);
    // update = true and no devices: no program to attach to a plain directory.
    apply(&d.0, &everything(), true, true).unwrap();
    let expect = [
        ("memory.max", "1000000"),
        ("memory.swap.max", "2000000"),
        ("memory.low", "500000"),
        ("pids.max", "10"),
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpu.max.burst", "1000"),
        ("cpu.idle", ""),
        ("cpuset.cpus", "0"),
        ("cpuset.mems", "0"),
        ("io.weight", "4950"),
        ("io.max", "8:0 rbps=1000"),
        ("hugetlb.2MB.max", "2097152"),
        ("rdma.max", "mlx5_0 hca_handle=3"),
        ("memory.high", "900000"),
    ];
    for (file, value) in expect {
        assert_eq!(d.get(file), value, "{file}");
    }
}

#[test]
fn update_keeps_what_it_does_not_name() {
    let d = FakeDir::new(ALL_CONTROLLERS, ALL_FILES);
    std::fs::write(d.0.join("cpu.max"), "30000 100000").unwrap();
    std::fs::write(d.0.join("memory.max"), "1000").unwrap();
    let res = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .period(50_000u64)
                .build()
                .unwrap(),
        )
        .memory(LinuxMemoryBuilder::default().swap(2500).build().unwrap())
        .build()
        .unwrap();
    apply(&d.0, &res, true, true).unwrap();
    assert_eq!(d.get("cpu.max"), "30000 50000");
    assert_eq!(d.get("memory.swap.max"), "1500");
    assert_eq!(d.get("memory.max"), "1000");
    assert_eq!(d.get("pids.max"), "");
    // Quota alone: the period stays (the kernel keeps it), unlimited is "max".
    let res = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().quota(-1).build().unwrap())
        .build()
        .unwrap();
    apply(&d.0, &res, true, true).unwrap();
    assert_eq!(d.get("cpu.max"), "max");
}

#[test]
fn errors_name_the_field_and_write_nothing() {
    let cases: Vec<(LinuxResources, &str)> = vec![
        (
            LinuxResourcesBuilder::default()
                .memory(LinuxMemoryBuilder::default().limit(1000).build().unwrap())
                .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                    .page_size("3MB")
                    .limit(0)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
            "linux.resources.hugepageLimits[0].pageSize: unknown page size 3MB",
        ),
        (
            LinuxResourcesBuilder::default()
                .memory(
                    LinuxMemoryBuilder::default()
                        .limit(1000)
                        .swap(500)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            "linux.resources.memory.swap: memory+swap limit 500 is below",
        ),
        (
            LinuxResourcesBuilder::default()
                .memory(LinuxMemoryBuilder::default().limit(1000).build().unwrap())
                .unified(HashMap::from([(
                    "cgroup.procs".to_string(),
                    "1".to_string(),
                )]))
                .build()
                .unwrap(),
            "linux.resources.unified[\"cgroup.procs\"]: cgroup.procs is not a resource limit",
        ),
        (
            LinuxResourcesBuilder::default()
                .memory(LinuxMemoryBuilder::default().limit(1000).build().unwrap())
                .unified(HashMap::from([("misc.max".to_string(), "x 1".to_string())]))
                .build()
                .unwrap(),
            "linux.resources.unified[\"misc.max\"]: controller \"misc\" is not available",
        ),
        (
            LinuxResourcesBuilder::default()
                .memory(LinuxMemoryBuilder::default().limit(1000).build().unwrap())
                .block_io(LinuxBlockIoBuilder::default().weight(5u16).build().unwrap())
                .build()
                .unwrap(),
            "linux.resources.blockIO.weight: 5 is outside",
        ),
        (
            LinuxResourcesBuilder::default()
                .memory(LinuxMemoryBuilder::default().limit(1000).build().unwrap())
                .cpu(LinuxCpuBuilder::default().idle(2).build().unwrap())
                .build()
                .unwrap(),
            "linux.resources.cpu.idle: 2 is neither 0 nor 1",
        ),
    ];
    for (res, want) in cases {
        let d = FakeDir::new(ALL_CONTROLLERS, ALL_FILES);
        let err = apply(&d.0, &res, true, true).unwrap_err().to_string();
        assert!(
            err.starts_with(want),
            "{err:?} does not start with {want:?}"
        );
        assert_eq!(d.get("memory.max"), "", "written before failing: {want}");
    }
}

#[test]
fn a_controller_not_enabled_is_named() {
    let d = FakeDir::new("cpu", &["cpu.max"]);
    let res = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().quota(1000).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    let err = apply(&d.0, &res, true, true).unwrap_err().to_string();
    assert!(
        err.starts_with("linux.resources.pids.limit: the pids controller is not enabled"),
        "{err}"
    );
    assert_eq!(d.get("cpu.max"), "");
}

#[test]
fn hybrid_host_writes_only_hugetlb_and_existing_unified_files() {
    let d = FakeDir::new("hugetlb", &["hugetlb.2MB.max", "hugetlb.1GB.max"]);
    let mut res = everything();
    res.set_unified(Some(HashMap::from([(
        "hugetlb.1GB.max".to_string(),
        "0".to_string(),
    )])));
    apply(&d.0, &res, false, false).unwrap();
    if hugetlb_on_v1() == Some(false) {
        assert_eq!(d.get("hugetlb.2MB.max"), "2097152");
    }
    assert_eq!(d.get("hugetlb.1GB.max"), "0");
    assert!(!d.0.join("memory.max").exists());

    res.set_unified(Some(HashMap::from([(
        "memory.max".to_string(),
        "1".to_string(),
    )])));
    let err = apply(&d.0, &res, false, false).unwrap_err().to_string();
    assert!(
        err.starts_with("linux.resources.unified[\"memory.max\"]: invalid configuration: cannot use unified on cgroup v1"),
        "{err}"
    );
}

/// hugetlb on this host's real cgroup2 hierarchy. Delegating hugetlb from the root is
/// what `hull create` itself does for hugepage limits here; it is left on.
#[test]
fn hugetlb_limit_lands_in_a_real_cgroup2_child() {
    hull_testing::skip_unless!(
        hugetlb_on_v1() == Some(false),
        "hybrid",
        "hugetlb is not on cgroup2 here"
    );
    enable_controllers(&unified_root(), &["hugetlb", "no-such-controller"]).unwrap();
    let cg = Scratch::new();
    let res = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4 * 1024 * 1024)
            .build()
            .unwrap()])
        .unified(HashMap::from([(
            "hugetlb.1GB.max".to_string(),
            "0".to_string(),
        )]))
        .build()
        .unwrap();
    apply(&cg.0, &res, false, false).unwrap();
    assert_eq!(read(&cg.0, "hugetlb.2MB.max").unwrap().trim(), "4194304");
    assert_eq!(read(&cg.0, "hugetlb.1GB.max").unwrap().trim(), "0");
    // Unlimited again through -1.
    let res = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(-1)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    apply(&cg.0, &res, false, true).unwrap();
    assert_eq!(read(&cg.0, "hugetlb.2MB.max").unwrap().trim(), "max");
}

#[test]
fn freeze_thaw_and_kill_a_real_cgroup() {
    let cg = Scratch::new();
    let child = Started(in_cgroup(&cg.0, "exec sleep 30").spawn().unwrap());
    // Wait for the child to be in the cgroup (pre_exec runs before spawn returns, but
    // be sure before freezing).
    assert!(read(&cg.0, "cgroup.procs")
        .unwrap()
        .contains(&child.0.id().to_string()));
    assert!(!is_frozen(&cg.0));
    freeze(&cg.0, true).unwrap();
    assert!(is_frozen(&cg.0));
    assert!(read(&cg.0, "cgroup.events").unwrap().contains("frozen 1"));
    freeze(&cg.0, false).unwrap();
    assert!(!is_frozen(&cg.0));
    assert!(read(&cg.0, "cgroup.events").unwrap().contains("frozen 0"));
    let mut child = child;
    kill(&cg.0).unwrap();
    let status = child.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[test]
fn freeze_without_cgroup_freeze_is_unsupported() {
    let d = FakeDir::new("", &[]);
    assert!(freeze(&d.0, false).is_ok());
    let err = freeze(&d.0, true).unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
    assert!(matches!(kill(&d.0), Err(CgroupError::Unsupported { .. })));
}
