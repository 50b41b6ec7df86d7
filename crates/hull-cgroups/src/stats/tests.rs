use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;

use super::testing::{burn_300ms, fork_gated, hold_8m, sleep_forever, v1_cgroups, Scratch};
use super::*;

/// What runc 1.1.5 prints for a container with no usage at all: nested objects always,
/// zero numbers only where its Go types have no `omitempty`.
#[test]
fn empty_stats_serialize_as_runc() {
    let want = concat!(
        r#"{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},"#,
        r#""cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"#,
        r#""memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"#,
        r#""sched_relax_domain_level":0},"#,
        r#""memory":{"usage":{"limit":0,"failcnt":0},"swap":{"limit":0,"failcnt":0},"#,
        r#""kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}},"#,
        r#""pids":{},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}"#
    );
    assert_eq!(serde_json::to_string(&Stats::default()).unwrap(), want);
}

/// Every field set: the names runc's types/events.go gives them, in its order.
#[test]
fn full_stats_use_runc_field_names() {
    let entry = BlkioEntry {
        major: 8,
        minor: 0,
        op: "Read".into(),
        value: 5,
    };
    let mut s = Stats::default();
    s.cpu.usage = CpuUsage {
        total: 1,
        percpu: vec![1],
        percpu_kernel: vec![2],
        percpu_user: vec![3],
        kernel: 4,
        user: 5,
    };
    s.cpu.throttling = Throttling {
        periods: 1,
        throttled_periods: 2,
        throttled_time: 3,
    };
    s.cpuset.cpus = vec![0, 1];
    s.cpuset.mems = vec![0];
    s.cpuset.sched_relax_domain_level = -1;
    s.memory.cache = 7;
    s.memory.usage = MemoryEntry {
        limit: 1,
        usage: 2,
        max: 3,
        failcnt: 4,
    };
    s.memory.raw.insert("rss".into(), 9);
    s.pids = Pids {
        current: 2,
        limit: 10,
    };
    s.blkio = Blkio {
        io_service_bytes_recursive: vec![entry.clone()],
        io_serviced_recursive: vec![entry.clone()],
        io_queued_recursive: vec![entry.clone()],
        io_service_time_recursive: vec![entry.clone()],
        io_wait_time_recursive: vec![entry.clone()],
        io_merged_recursive: vec![entry.clone()],
        io_time_recursive: vec![entry.clone()],
        sectors_recursive: vec![entry],
    };
    s.hugetlb.insert(
        "2MB".into(),
        Hugetlb {
            usage: 1,
            max: 2,
            failcnt: 3,
        },
    );
    s.hugetlb.insert("1GB".into(), Hugetlb::default());
    let json = serde_json::to_value(&s).unwrap();
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(
        keys(&json),
        [
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
            "network_interfaces"
        ]
    );
    assert_eq!(
        keys(&json["cpu"]["usage"]),
        [
            "total",
            "percpu",
            "percpu_kernel",
            "percpu_user",
            "kernel",
            "user"
        ]
    );
    assert_eq!(
        keys(&json["cpu"]["throttling"]),
        ["periods", "throttledPeriods", "throttledTime"]
    );
    assert_eq!(
        keys(&json["cpuset"]),
        [
            "cpus",
            "cpu_exclusive",
            "mems",
            "mem_hardwall",
            "mem_exclusive",
            "memory_migrate",
            "memory_spread_page",
            "memory_spread_slab",
            "memory_pressure",
            "sched_load_balance",
            "sched_relax_domain_level"
        ]
    );
    assert_eq!(
        keys(&json["memory"]),
        ["cache", "usage", "swap", "kernel", "kernelTCP", "raw"]
    );
    assert_eq!(
        keys(&json["memory"]["usage"]),
        ["limit", "usage", "max", "failcnt"]
    );
    assert_eq!(keys(&json["pids"]), ["current", "limit"]);
    assert_eq!(
        keys(&json["blkio"]),
        [
            "ioServiceBytesRecursive",
            "ioServicedRecursive",
            "ioQueueRecursive",
            "ioServiceTimeRecursive",
            "ioWaitTimeRecursive",
            "ioMergedRecursive",
            "ioTimeRecursive",
            "sectorsRecursive"
        ]
    );
    // Go leaves out the zero minor number.
    assert_eq!(
        json["blkio"]["ioServicedRecursive"][0].to_string(),
        r#"{"major":8,"op":"Read","value":5}"#
    );
    // Sorted like Go's map keys; a zero usage is left out, failcnt never.
    assert_eq!(
        json["hugetlb"].to_string(),
        r#"{"1GB":{"failcnt":0},"2MB":{"usage":1,"max":2,"failcnt":3}}"#
    );
    let iface = NetworkInterface {
        name: "eth0".into(),
        ..NetworkInterface::default()
    };
    assert_eq!(
        serde_json::to_string(&iface).unwrap(),
        concat!(
            r#"{"Name":"eth0","RxBytes":0,"RxPackets":0,"RxErrors":0,"RxDropped":0,"#,
            r#""TxBytes":0,"TxPackets":0,"TxErrors":0,"TxDropped":0}"#
        )
    );
}

/// runc 1.1.5's `events --stats` output on this host (memory.stat trimmed) reads back
/// and prints byte for byte the same.
#[test]
fn runc_output_round_trips() {
    let runc = concat!(
        r#"{"cpu":{"usage":{"total":12293479,"percpu":[3587490,8705989],"percpu_kernel":[0,0],"#,
        r#""percpu_user":[0,4000000],"kernel":0,"user":10000000},"throttling":{}},"#,
        r#""cpuset":{"cpus":[0,1],"cpu_exclusive":0,"mems":[0],"mem_hardwall":0,"mem_exclusive":0,"#,
        r#""memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"#,
        r#""sched_load_balance":1,"sched_relax_domain_level":-1},"#,
        r#""memory":{"cache":16384,"usage":{"limit":9223372036854771712,"usage":741376,"max":2514944,"failcnt":0},"#,
        r#""swap":{"limit":9223372036854771712,"usage":741376,"max":2514944,"failcnt":0},"#,
        r#""kernel":{"limit":9223372036854771712,"usage":483328,"max":602112,"failcnt":0},"#,
        r#""kernelTCP":{"limit":9223372036854771712,"failcnt":0},"#,
        r#""raw":{"active_anon":4096,"cache":16384,"hierarchical_memory_limit":9223372036854771712,"#,
        r#""pgfault":776,"rss":53248,"total_rss":53248}},"#,
        r#""pids":{"current":1,"limit":100},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}"#
    );
    let stats: Stats = serde_json::from_str(runc).unwrap();
    assert_eq!(stats.cpu.usage.percpu_user, [0, 4_000_000]);
    assert_eq!(stats.cpuset.sched_relax_domain_level, -1);
    assert_eq!(serde_json::to_string(&stats).unwrap(), runc);
}

#[test]
fn cpu_lists() {
    let p = Path::new("cpuset.cpus");
    assert_eq!(cpu_list(p, "0-3,8\n").unwrap(), [0, 1, 2, 3, 8]);
    assert_eq!(cpu_list(p, "1").unwrap(), [1]);
    assert!(cpu_list(p, "\n").unwrap().is_empty());
    assert!(cpu_list(p, "3-1").is_err());
    assert!(cpu_list(p, "x").is_err());
}

#[test]
fn counters_parse_as_runc_parses_them() {
    assert_eq!(parse_u64("12\n"), Some(12));
    assert_eq!(parse_u64("max"), Some(u64::MAX));
    assert_eq!(parse_u64("-4096"), Some(0));
    assert_eq!(parse_u64("1.5"), None);
}

#[test]
fn pids_of_a_scratch_cgroup() {
    let pids_cg = Scratch::cgroup("pids");
    pids_cg.write("pids.max", "10");
    let mut child = fork_gated(sleep_forever);
    pids_cg.join(child.pid);
    child.release();
    let stats = collect(&v1_cgroups(&[("pids", &pids_cg)])).unwrap();
    assert_eq!(
        stats.pids,
        Pids {
            current: 1,
            limit: 10
        }
    );

    pids_cg.write("pids.max", "max");
    let stats = collect(&v1_cgroups(&[("pids", &pids_cg)])).unwrap();
    assert_eq!(
        stats.pids,
        Pids {
            current: 1,
            limit: 0
        }
    );
    drop(child);
}

#[test]
fn memory_of_a_scratch_cgroup() {
    let mem = Scratch::cgroup("memory");
    mem.write("memory.limit_in_bytes", &(64u64 << 20).to_string());
    let mut child = fork_gated(hold_8m);
    mem.join(child.pid);
    child.release();
    let cg = v1_cgroups(&[("memory", &mem)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = collect(&cg).unwrap();
        if stats.memory.usage.usage >= 8 << 20 || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let m = &stats.memory;
    assert!(
        m.usage.usage >= 8 << 20,
        "usage {} after 8 MiB written",
        m.usage.usage
    );
    assert!(m.usage.max >= m.usage.usage);
    assert_eq!(m.usage.limit, 64 << 20);
    assert!(
        m.raw.get("rss").is_some_and(|&rss| rss >= 8 << 20),
        "{:?}",
        m.raw
    );
    assert_eq!(m.cache, m.raw["cache"]);
    if mem.dir.join("memory.memsw.usage_in_bytes").exists() {
        assert!(m.swap.usage >= m.usage.usage);
    }
    drop(child);
}

#[test]
fn cpu_usage_after_a_child_burns_cpu() {
    let cpu = Scratch::cgroup("cpu");
    let cpuacct = Scratch::cgroup("cpuacct");
    let cpuset = Scratch::cgroup("cpuset");
    let mut child = fork_gated(burn_300ms);
    for s in [&cpu, &cpuacct, &cpuset] {
        s.join(child.pid);
    }
    child.release();
    assert_eq!(child.wait(), WaitStatus::Exited(child.pid, 0));
    let cg = v1_cgroups(&[("cpu", &cpu), ("cpuacct", &cpuacct), ("cpuset", &cpuset)]);
    let stats = collect(&cg).unwrap();
    let u = &stats.cpu.usage;
    assert!(
        u.total >= 100_000_000,
        "total {} ns after 300 ms spinning",
        u.total
    );
    assert_eq!(u.percpu.iter().sum::<u64>(), u.total);
    assert_eq!(u.percpu_user.len(), u.percpu.len());
    assert!(u.user + u.kernel > 0, "{u:?}");
    let online = std::fs::read_to_string(cpuset.dir.join("cpuset.cpus")).unwrap();
    assert_eq!(
        stats.cpuset.cpus,
        cpu_list(Path::new("x"), &online).unwrap()
    );
    assert!(!stats.cpuset.mems.is_empty());
}

#[test]
fn v1_blkio_takes_the_first_family_with_entries() {
    let d = Scratch::plain();
    // BFQ present but idle: runc moves on to the throttle tables.
    d.write("blkio.bfq.io_serviced_recursive", "Total 0\n");
    d.write("blkio.bfq.io_service_bytes_recursive", "Total 0\n");
    d.write(
        "blkio.throttle.io_serviced_recursive",
        "8:0 Read 3\n8:0 Write 4\n8:0 Sync 7\nTotal 7\n",
    );
    d.write(
        "blkio.throttle.io_service_bytes_recursive",
        "8:16 Read 4096\nTotal 4096\n",
    );
    d.write("blkio.throttle.io_serviced", "9:9 Read 1\n");
    let mut b = Blkio::default();
    v1_blkio(&d.dir, &mut b).unwrap();
    assert_eq!(b.io_serviced_recursive.len(), 3);
    assert_eq!(
        b.io_serviced_recursive[1],
        BlkioEntry {
            major: 8,
            minor: 0,
            op: "Write".into(),
            value: 4
        }
    );
    assert_eq!(b.io_service_bytes_recursive[0].minor, 16);
    assert!(b.sectors_recursive.is_empty());

    d.write("blkio.throttle.io_serviced_recursive", "8:0 Read\n");
    assert!(v1_blkio(&d.dir, &mut Blkio::default()).is_err());
}

/// cgroup2 files, read as runc reads them: microseconds to nanoseconds, swap reported as
/// memory+swap, io.stat split into v1's tables.
#[test]
fn v2_files_read_as_runc_reads_them() {
    let d = Scratch::plain();
    d.write(
        "cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\nthrottled_usec 7\n",
    );
    d.write("memory.stat", "anon 4096\nfile 8192\n");
    d.write("memory.current", "12288\n");
    d.write("memory.max", "1048576\n");
    d.write("memory.swap.current", "100\n");
    d.write("memory.swap.max", "max\n");
    d.write("pids.current", "3\n");
    d.write("pids.max", "max\n");
    d.write(
        "io.stat",
        "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    let sizes = page_sizes();
    for size in &sizes {
        d.write(&format!("hugetlb.{size}.current"), "0\n");
        d.write(&format!("hugetlb.{size}.events"), "max 5\n");
    }
    let cg = Cgroups {
        unified: Some(d.dir.clone()),
        unified_only: true,
        ..Cgroups::default()
    };
    let s = collect(&cg).unwrap();
    assert_eq!(
        s.cpu.usage,
        CpuUsage {
            total: 1_500_000,
            user: 1_000_000,
            kernel: 500_000,
            ..CpuUsage::default()
        }
    );
    assert_eq!(
        s.cpu.throttling,
        Throttling {
            periods: 4,
            throttled_periods: 2,
            throttled_time: 7000
        }
    );
    assert_eq!(s.memory.cache, 8192);
    assert_eq!(s.memory.usage.usage, 12288);
    assert_eq!(s.memory.usage.limit, 1 << 20);
    assert_eq!(s.memory.swap.usage, 12388);
    assert_eq!(s.memory.swap.limit, u64::MAX);
    assert_eq!(
        s.pids,
        Pids {
            current: 3,
            limit: 0
        }
    );
    let ops: Vec<(&str, u64)> = s
        .blkio
        .io_service_bytes_recursive
        .iter()
        .map(|e| (e.op.as_str(), e.value))
        .collect();
    assert_eq!(ops, [("Read", 10), ("Write", 20)]);
    assert_eq!(s.blkio.io_serviced_recursive.len(), 2);
    assert_eq!(s.hugetlb.len(), sizes.len());
    assert!(s.hugetlb.values().all(|h| h.failcnt == 5));
    assert_eq!(s.cpuset, CpuSet::default());

    d.write("memory.swap.max", "1000\n");
    assert_eq!(collect(&cg).unwrap().memory.swap.limit, 1000 + (1 << 20));
}

/// On a hybrid host the cgroup2 side only adds hugetlb, and only where the controller is.
#[test]
fn hybrid_takes_hugetlb_from_the_unified_side() {
    let pids_cg = Scratch::cgroup("pids");
    let unified = Scratch::plain();
    unified.write("cpu.stat", "usage_usec 99\n");
    let mut cg = v1_cgroups(&[("pids", &pids_cg)]);
    cg.unified = Some(unified.dir.clone());
    let s = collect(&cg).unwrap();
    assert!(s.hugetlb.is_empty());
    assert_eq!(s.cpu.usage.total, 0);
    for size in page_sizes() {
        unified.write(&format!("hugetlb.{size}.current"), "2097152\n");
        unified.write(&format!("hugetlb.{size}.events"), "max 0\n");
    }
    let s = collect(&cg).unwrap();
    assert_eq!(s.hugetlb.len(), page_sizes().len());
    assert!(s.hugetlb.values().all(|h| h.usage == 2 << 20));
}
