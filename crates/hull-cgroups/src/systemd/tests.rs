use super::*;
use std::path::Path;

fn unit(path: &str) -> Result<Unit, String> {
    Unit::parse(path, "c1", false).map_err(|e| e.to_string())
}

#[test]
fn paths_name_scopes_and_slices_as_runc() {
    let u = unit("system.slice:docker:abc").unwrap();
    assert_eq!(
        (u.name.as_str(), u.slice.as_str()),
        ("docker-abc.scope", "system.slice")
    );
    assert_eq!(u.cgroup(), Path::new("system.slice/docker-abc.scope"));
    let u = unit(":libpod:x").unwrap();
    assert_eq!(
        (u.name.as_str(), u.slice.as_str()),
        ("libpod-x.scope", "system.slice")
    );
    let u = unit("").unwrap();
    assert_eq!(u.name, "hull-c1.scope");
    let u = Unit::parse("", "c1", true).unwrap();
    assert_eq!(u.slice, "user.slice");
    let u = unit("machine.slice::bare").unwrap();
    assert_eq!(u.name, "-bare.scope");
    let u = unit("kubepods-besteffort-pod12.slice:cri-containerd:c9").unwrap();
    assert_eq!(
        u.cgroup(),
        Path::new(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-c9.scope"
        )
    );
    let u = unit("system.slice:x:a-b.slice").unwrap();
    assert!(u.is_slice());
    assert_eq!(u.cgroup(), Path::new("a.slice/a-b.slice"));
}

#[test]
fn bad_paths_are_refused_naming_the_path() {
    for (path, why) in [
        ("a:b", "slice:prefix:name"),
        ("a:b:c:d", "slice:prefix:name"),
        ("/abs/path", "slice:prefix:name"),
        ("system:docker:x", "ends in \".slice\""),
        ("a--b.slice:p:x", "empty part"),
        ("-a.slice:p:x", "empty part"),
        ("sys tem.slice:p:x", "not allowed"),
        ("system.slice:p:", "empty"),
        ("system.slice:p:a/b", "not allowed"),
    ] {
        let e = unit(path).unwrap_err();
        assert!(e.contains(why) && e.contains(path), "{path}: {e}");
        assert!(e.starts_with("linux.cgroupsPath"), "{e}");
    }
    assert_eq!(expand_slice("-.slice").unwrap(), PathBuf::new());
}

#[test]
fn files_become_properties_with_runcs_conversions() {
    let files: Vec<(String, String)> = [
        ("memory.max", "67108864"),
        ("memory.swap.max", "max"),
        ("memory.low", "1000"),
        ("pids.max", "max"),
        ("cpu.weight", "39"),
        ("cpu.max", "50001 100000"),
        ("cpuset.cpus", "0-1,9"),
        ("io.weight", "500"),
        ("io.max", "8:0 rbps=1000 wiops=max"),
        ("hugetlb.2MB.max", "0"),
        ("cpu.idle", "1"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let props = properties_of_files(&files, &|| 252).unwrap();
    let get = |n: &str| {
        props
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("{n} missing: {props:?}"))
    };
    assert_eq!(get("MemoryMax"), "uint64 67108864");
    assert_eq!(get("MemorySwapMax"), format!("uint64 {}", u64::MAX));
    assert_eq!(get("MemoryLow"), "uint64 1000");
    assert_eq!(get("TasksMax"), format!("uint64 {}", u64::MAX));
    assert_eq!(get("CPUWeight"), "uint64 39");
    assert_eq!(get("CPUQuotaPeriodUSec"), "uint64 100000");
    // 500010 us per second, rounded up to the next 1 %.
    assert_eq!(get("CPUQuotaPerSecUSec"), "uint64 510000");
    assert_eq!(get("AllowedCPUs"), "[byte 0x03, 0x02]");
    assert_eq!(get("IOWeight"), "uint64 500");
    assert!(get("IOReadBandwidthMax").contains("/dev/block/8:0"));
    assert!(get("IOWriteIOPSMax").contains(&u64::MAX.to_string()));
    assert_eq!(props.iter().filter(|(k, _)| k.contains("huge")).count(), 0);
    // cpu.idle 1 is systemd 252's idle weight, 0, set after the shares' weight.
    let weights = |p: &[Property]| -> Vec<String> {
        p.iter()
            .filter(|(k, _)| k == "CPUWeight")
            .map(|(_, v)| v.to_string())
            .collect()
    };
    assert_eq!(weights(&props), ["uint64 39", "uint64 0"]);
    // An old systemd gets no property it does not know.
    let old = properties_of_files(&files, &|| 239).unwrap();
    assert!(!old
        .iter()
        .any(|(k, _)| k == "AllowedCPUs" || k == "CPUQuotaPeriodUSec"));
    assert_eq!(weights(&old), ["uint64 39"]);
    assert_eq!(quota_per_sec(100_000, 100_000), 1_000_000);
    assert_eq!(quota_per_sec(1_000, 100_000), 10_000);
    assert_eq!(quota_per_sec(1_001, 100_000), 20_000);
}

#[test]
fn v1_limits_take_their_v1_property_names() {
    let res: oci_spec::runtime::LinuxResources = serde_json::from_str(
        r#"{"memory":{"limit":-1},"cpu":{"shares":512,"quota":-1},
            "blockIO":{"weight":300},"pids":{"limit":0}}"#,
    )
    .unwrap();
    let props: Vec<String> = v1_properties(&res, &|| 252)
        .unwrap()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let max = u64::MAX;
    assert_eq!(
        props,
        [
            format!("MemoryLimit=uint64 {max}"),
            "CPUShares=uint64 512".to_string(),
            format!("CPUQuotaPerSecUSec=uint64 {max}"),
            "BlockIOWeight=uint64 300".to_string(),
        ]
    );
}

#[test]
fn device_rules_become_a_superset_allow_list() {
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"b","major":8,"access":"r"},
            {"allow":false,"type":"c","major":1,"minor":5,"access":"rwm"}]"#,
    )
    .unwrap();
    let props = device_properties(&rules, false).unwrap();
    assert_eq!(props[0].1.to_string(), "\"strict\"");
    let list = props[1].1.to_string();
    for want in [
        "\"block-8\", \"r\"",
        "\"/dev/char/1:3\", \"rwm\"",
        "\"char-136\"",
        "\"char-*\", \"m\"",
    ] {
        assert!(list.contains(want), "{want} in {list}");
    }
    let open: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_str(r#"[{"allow":true,"access":"rwm"}]"#).unwrap();
    assert_eq!(
        device_properties(&open, false).unwrap()[0].1.to_string(),
        "\"auto\""
    );
    let odd: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","minor":3,"access":"r"}]"#,
    )
    .unwrap();
    assert_eq!(
        device_properties(&odd, false).unwrap()[0].1.to_string(),
        "\"auto\""
    );
}

#[test]
fn v1_device_lists_are_exact() {
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow":false,"access":"rwm"},
            {"allow":false,"type":"c","major":1,"minor":5,"access":"rwm"},
            {"allow":false,"type":"c","major":136,"minor":3,"access":"w"},
            {"allow":true,"type":"c","minor":7,"access":"r"}]"#,
    )
    .unwrap();
    let list = device_properties(&rules, true).unwrap()[1].1.to_string();
    // /dev/zero denied outright; pts lose w and mknod of any char device goes (systemd
    // cannot except one device from a wildcard); the wildcard-major rule cannot be named.
    assert!(!list.contains("1:5"), "{list}");
    assert!(list.contains("\"char-136\", \"rm\""), "{list}");
    assert!(list.contains("\"/dev/char/1:3\", \"rwm\""), "{list}");
    assert!(list.contains("\"block-*\", \"m\""), "{list}");
    assert!(!list.contains("char-*") && !list.contains("*:7"), "{list}");
    let deny_list: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"b","access":"rwm"}]"#,
    )
    .unwrap();
    let props = device_properties(&deny_list, true).unwrap();
    assert_eq!(props[0].1.to_string(), "\"strict\"");
    assert_eq!(props[1].1.to_string(), "@a(ss) []");
}

#[test]
fn annotations_are_typed_as_runc_types_them() {
    let a = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("{ANNOTATION_PREFIX}{k}"), v.to_string()))
            .collect();
        annotation_properties(&map)
            .map(|v| {
                v.into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        a(&[
            ("TimeoutStopSec", "uint64 3"),
            ("CollectMode", "'inactive-or-failed'"),
            ("RuntimeMaxSec", "1.5"),
            ("After", "['a.service', \"b.service\"]"),
            ("CPUWeight", "@t 7"),
            ("Delegate", "true"),
            ("Weird", "int32 -2"),
            ("Wants", "@as []"),
            ("Nums", "@an [1, -2]"),
        ])
        .unwrap(),
        [
            "After=[\"a.service\", \"b.service\"]",
            "CPUWeight=uint64 7",
            "CollectMode=\"inactive-or-failed\"",
            "Delegate=true",
            "Nums=[int16 1, -2]",
            "RuntimeMaxUSec=uint64 1500000",
            "TimeoutStopUSec=uint64 3000000",
            "Wants=@as []",
            "Weird=-2",
        ]
    );
    for (name, value, why) in [
        ("X", "1", "property name"),
        ("Foo1", "1", "property name"),
        ("TimeoutSec", "'x'", "must be a number"),
        ("TimeoutSec", "-1", "negative"),
        ("Foo", "uint64 x", "not a number"),
        ("Foo", "[1, 'a']", "expected"),
        ("Foo", "[]", "needs a type"),
        ("Foo", "'open", "unterminated"),
        ("Foo", "1 2", "unexpected"),
        ("Foo", "uint64 uint64 1", "two type annotations"),
        ("Foo", "@t @t 1", "two type annotations"),
    ] {
        let e = a(&[(name, value)]).unwrap_err();
        assert!(
            e.contains(why) && e.contains(&format!("{ANNOTATION_PREFIX}{name}")),
            "{name}={value}: {e}"
        );
    }
    let other = BTreeMap::from([("org.other".to_string(), "x".to_string())]);
    assert!(annotation_properties(&other).unwrap().is_empty());
}

#[test]
fn cpu_lists_become_bitmasks() {
    assert_eq!(cpu_bits("0").unwrap(), [1]);
    assert_eq!(cpu_bits("0-7,8").unwrap(), [0xff, 1]);
    assert_eq!(cpu_bits("").unwrap(), Vec::<u8>::new());
    assert!(cpu_bits("3-1").is_err());
    assert!(cpu_bits("a").is_err());
}
