use super::*;

#[test]
fn paths_are_cleaned_without_climbing_above_the_start() {
    assert_eq!(clean("/a/./b//c/"), PathBuf::from("a/b/c"));
    assert_eq!(clean("../../x"), PathBuf::from("x"));
    assert_eq!(clean("a/../../b"), PathBuf::from("b"));
    assert_eq!(clean("/.."), PathBuf::new());
}

#[test]
fn a_mount_of_a_sub_cgroup_strips_its_root() {
    let m = Path::new("/sys/fs/cgroup/memory");
    assert_eq!(
        under_mount(m, "/", Path::new("a/b")),
        PathBuf::from("/sys/fs/cgroup/memory/a/b")
    );
    // Inside a cgroup namespace's view the mount's root is the caller's cgroup.
    assert_eq!(
        under_mount(m, "/x/y", Path::new("x/y/c")),
        PathBuf::from("/sys/fs/cgroup/memory/c")
    );
}

#[test]
fn controllers_match_in_any_order() {
    let c = vec!["cpuacct".to_string(), "cpu".to_string()];
    assert!(same_controllers("cpu,cpuacct", &c));
    assert!(!same_controllers("cpu", &c));
    assert!(!same_controllers("", &[]));
}

#[test]
fn relative_paths_nest_under_the_callers_cgroup_of_each_hierarchy() {
    let own = own_cgroups().unwrap();
    let cg = Cgroups::resolve(Some(Path::new("hulltest-unit/x")), "id", false, rootless()).unwrap();
    assert!(!cg.v1.is_empty() || cg.unified.is_some());
    for h in &cg.v1 {
        let mine =
            own_in(own, Some(&h.controllers)).expect("every hierarchy is in /proc/self/cgroup");
        let expect = clean(mine).join("hulltest-unit/x");
        assert!(
            h.dir.ends_with(&expect),
            "{}: {} does not end with {}",
            h.controllers.join(","),
            h.dir.display(),
            expect.display()
        );
    }
    // cgroup2: under the parent of the caller's cgroup, which holds the caller.
    if let Some(u) = &cg.unified {
        let mine = own_in(own, None).expect("cgroup2 is in /proc/self/cgroup");
        let parent = Path::new(mine).parent().unwrap_or(Path::new("/"));
        let expect = clean(&parent.to_string_lossy()).join("hulltest-unit/x");
        assert!(
            u.ends_with(&expect),
            "{} does not end with {}",
            u.display(),
            expect.display()
        );
    }
    // No path: the container id, nested the same way.
    let cg = Cgroups::resolve(None, "the-id", false, rootless()).unwrap();
    assert!(cg.dirs().all(|d| d.ends_with("the-id")));
    // Absolute: from each hierarchy's root.
    let cg = Cgroups::resolve(Some(Path::new("/abs/x")), "id", false, rootless()).unwrap();
    let mounts = host_mounts().unwrap();
    if let (Some(u), Some((mount, _))) = (&cg.unified, &mounts.unified) {
        assert_eq!(u, &mount.join("abs/x"));
    }
    for h in &cg.v1 {
        assert_eq!(
            h.dir
                .parent()
                .and_then(Path::parent)
                .map(|p| p.join("abs/x")),
            Some(h.dir.clone())
        );
    }
    assert!(matches!(
        Cgroups::resolve(Some(Path::new("/..")), "id", false, rootless()),
        Err(CgroupError::Path { .. })
    ));
}

#[test]
fn systemd_paths_are_refused_with_the_reason() {
    let no_systemd = !Path::new("/run/systemd/system").exists();
    let e = Cgroups::resolve(Some(Path::new("a:b")), "id", true, rootless()).unwrap_err();
    assert!(e.to_string().contains("slice:prefix:name"), "{e}");
    if no_systemd {
        let e = Cgroups::resolve(
            Some(Path::new("system.slice:hull:id")),
            "id",
            true,
            rootless(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("linux.cgroupsPath \"system.slice:hull:id\": "),
            "{e}"
        );
        assert!(e.contains("not running"), "{e}");
        let e = Cgroups::resolve(None, "id", true, rootless())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not running"), "{e}");
    }
}

#[test]
fn only_limits_beyond_device_rules_count() {
    let res: oci_spec::runtime::LinuxResources =
        serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
    assert!(!has_limits(&res));
    let res: oci_spec::runtime::LinuxResources =
        serde_json::from_str(r#"{"pids":{"limit":5}}"#).unwrap();
    assert!(has_limits(&res));
}

#[test]
fn permission_errors_are_told_apart() {
    let io = |errno| CgroupError::Io {
        step: "create cgroup",
        path: "/x".into(),
        source: io::Error::from_raw_os_error(errno),
    };
    assert!(io(libc::EACCES).is_permission());
    assert!(io(libc::EROFS).is_permission());
    assert!(!io(libc::EINVAL).is_permission());
    let invalid = CgroupError::Invalid {
        field: "f".into(),
        reason: "r".into(),
    };
    assert!(!invalid.is_permission());
}
