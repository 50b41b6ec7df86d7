//! The container's filesystem: mounts from the config, symlinked destinations, masked and
//! read-only paths, a read-only root, /dev and its devices, `--no-pivot`.

use std::fs;
use std::os::unix::fs::symlink;

use serde_json::json;

use crate::util::{has_opt, mount_entry, mount_tmpfs, write, Test};

#[test]
fn default_mounts_are_in_place() {
    let mut t = Test::new("rootfs_default_mounts");
    t.args(&["cat", "/proc/self/mountinfo"]);
    let info = t.output();
    for (point, fstype) in [
        ("/", ""),
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        let e = mount_entry(&info, point).unwrap_or_else(|| panic!("{point} missing:\n{info}"));
        if !fstype.is_empty() {
            assert_eq!(e.2, fstype, "{point}: {e:?}");
        }
    }
    let sys = mount_entry(&info, "/sys").unwrap();
    assert!(has_opt(&sys.1, "ro"), "/sys not read-only: {sys:?}");
    let shm = mount_entry(&info, "/dev/shm").unwrap();
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(has_opt(&shm.1, o), "/dev/shm lacks {o}: {shm:?}");
    }
    assert!(has_opt(&shm.3, "size=65536k"), "{shm:?}");
    assert!(
        info.lines().any(|l| l.contains(" /sys/fs/cgroup")),
        "no cgroup mount:\n{info}"
    );
}

#[test]
fn tmpfs_mount_has_its_options() {
    let mut t = Test::new("rootfs_tmpfs");
    t.mount(json!({
        "destination": "/mnt/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1024k", "mode=750"]
    }));
    t.sh("cat /proc/self/mountinfo; echo ---; stat -c %a /mnt/scratch");
    let out = t.output();
    let (info, mode) = out.split_once("---\n").unwrap();
    let e = mount_entry(info, "/mnt/scratch").unwrap_or_else(|| panic!("no mount:\n{info}"));
    assert_eq!(e.2, "tmpfs");
    for o in ["nosuid", "nodev", "noexec", "rw"] {
        assert!(has_opt(&e.1, o), "lacks {o}: {e:?}");
    }
    assert!(has_opt(&e.3, "size=1024k"), "{e:?}");
    assert_eq!(mode.trim(), "750");
}

#[test]
fn read_only_bind_mount_of_a_host_dir() {
    let mut t = Test::new("rootfs_ro_bind");
    let src = t.mkdir("src");
    write(&src.join("hello"), "from host\n");
    t.mount(json!({
        "destination": "/mnt/ro", "type": "bind", "source": src,
        "options": ["rbind", "ro"]
    }));
    t.sh(
        "cat /mnt/ro/hello; touch /mnt/ro/new 2>&1 || echo refused; \
         grep ' /mnt/ro ' /proc/self/mountinfo",
    );
    let out = t.output();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("from host"));
    let err = lines.next().unwrap_or_default();
    assert!(err.contains("Read-only file system"), "{out}");
    assert_eq!(lines.next(), Some("refused"));
    let e = crate::util::parse_mountinfo_line(lines.next().unwrap()).unwrap();
    assert!(has_opt(&e.1, "ro"), "{e:?}");
    assert!(!src.join("new").exists());
}

#[test]
fn rbind_takes_submounts_and_bind_does_not() {
    let mut t = Test::new("rootfs_rbind");
    let src = t.mkdir("src");
    mount_tmpfs(&src.join("sub"));
    write(&src.join("sub/inner"), "inner\n");
    t.mount(json!({
        "destination": "/mnt/r", "type": "bind", "source": src, "options": ["rbind"]
    }));
    t.mount(json!({
        "destination": "/mnt/b", "type": "bind", "source": src, "options": ["bind"]
    }));
    t.sh("cat /mnt/r/sub/inner; test -e /mnt/b/sub/inner && echo leaked || echo absent");
    assert_eq!(t.output(), "inner\nabsent\n");
}

#[test]
fn bind_mount_is_writable_through_to_the_host() {
    let mut t = Test::new("rootfs_rw_bind");
    let src = t.mkdir("src");
    t.mount(json!({
        "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "rw"]
    }));
    t.sh("echo written > /data/out");
    t.output();
    assert_eq!(fs::read_to_string(src.join("out")).unwrap(), "written\n");
}

#[test]
fn mount_through_a_symlink_pointing_outside_stays_inside_the_rootfs() {
    let mut t = Test::new("rootfs_symlink_escape");
    let src = t.mkdir("src");
    write(&src.join("hello"), "mounted\n");
    // An absolute link to a host path that does not exist: followed on the host it would
    // create the path there; resolved inside the rootfs it lands under rootfs/.
    let outside = t.path("outside/new");
    fs::create_dir_all(t.path("outside")).unwrap();
    symlink(&outside, t.rootfs.join("mnt/link")).unwrap();
    t.mount(json!({
        "destination": "/mnt/link", "type": "bind", "source": src, "options": ["rbind"]
    }));
    t.sh("cat /mnt/link/hello");
    assert_eq!(t.output(), "mounted\n");
    assert!(
        !outside.exists(),
        "the runtime followed the symlink out of the rootfs to {}",
        outside.display()
    );
    assert_eq!(fs::read_dir(t.path("outside")).unwrap().count(), 0);
}

#[test]
fn relative_symlink_destination_cannot_climb_out() {
    let mut t = Test::new("rootfs_symlink_dotdot");
    let src = t.mkdir("src");
    write(&src.join("hello"), "mounted\n");
    // ../../../../../../ from rootfs/mnt climbs past the rootfs on the host.
    symlink(
        "../../../../../../../../tmp-escape-target",
        t.rootfs.join("mnt/up"),
    )
    .unwrap();
    t.mount(json!({
        "destination": "/mnt/up", "type": "bind", "source": src, "options": ["rbind"]
    }));
    t.sh("cat /mnt/up/hello");
    assert_eq!(t.output(), "mounted\n");
    assert!(!std::path::Path::new("/tmp-escape-target").exists());
}

#[test]
fn masked_paths_read_empty() {
    let mut t = Test::new("rootfs_masked");
    fs::create_dir_all(t.rootfs.join("secret")).unwrap();
    write(&t.rootfs.join("secret/data"), "hidden\n");
    write(&t.rootfs.join("secretfile"), "hidden\n");
    fs::create_dir_all(t.rootfs.join("secret2")).unwrap();
    let masked = t.config["linux"]["maskedPaths"].as_array_mut().unwrap();
    masked.push(json!("/secret"));
    masked.push(json!("/secretfile"));
    masked.push(json!("/does/not/exist"));
    masked.push(json!("/secret2"));
    // The masked directories share one read-only tmpfs, as runc's do (one device number).
    t.sh(
        "ls -A /secret | wc -l; cat /secretfile | wc -c; cat /proc/kcore | wc -c; \
         touch /secret/x 2>&1; touch /secret2/x 2>&1; \
         [ $(stat -c %d /secret) = $(stat -c %d /secret2) ] && echo one-tmpfs",
    );
    let out = t.output();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[..3], ["0", "0", "0"], "{out}");
    assert!(lines[3].contains("Read-only file system"), "{out}");
    assert!(lines[4].contains("Read-only file system"), "{out}");
    assert_eq!(lines.get(5), Some(&"one-tmpfs"), "{out}");
}

#[test]
fn readonly_paths_refuse_writes() {
    let mut t = Test::new("rootfs_readonly_paths");
    fs::create_dir_all(t.rootfs.join("rodir")).unwrap();
    t.config["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/rodir"));
    t.sh(
        "touch /rodir/x 2>&1; echo 1 > /proc/sys/kernel/hostname 2>&1 || echo procsys-refused; \
         touch /ok && echo root-writable",
    );
    let out = t.output();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("Read-only file system"), "{out}");
    assert!(out.contains("procsys-refused"), "{out}");
    assert!(out.contains("root-writable"), "{out}");
}

#[test]
fn readonly_root_refuses_writes() {
    let mut t = Test::new("rootfs_readonly_root");
    t.config["root"]["readonly"] = json!(true);
    t.sh("touch /x 2>&1; touch /dev/shm/ok && echo shm-writable; cat /proc/self/mountinfo");
    let out = t.output();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("Read-only file system"), "{out}");
    assert_eq!(lines[1], "shm-writable", "{out}");
    let root = mount_entry(&out, "/").unwrap();
    assert!(has_opt(&root.1, "ro"), "{root:?}");
    assert!(!t.rootfs.join("x").exists());
}

#[test]
fn default_devices_exist() {
    let mut t = Test::new("rootfs_default_devices");
    t.args(&[
        "stat",
        "-c",
        "%n %t:%T %A",
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    ]);
    let out = t.output();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/dev/null 1:3 crw-rw-rw-",
            "/dev/zero 1:5 crw-rw-rw-",
            "/dev/full 1:7 crw-rw-rw-",
            "/dev/random 1:8 crw-rw-rw-",
            "/dev/urandom 1:9 crw-rw-rw-",
            "/dev/tty 5:0 crw-rw-rw-",
        ]
    );
}

#[test]
fn devices_from_the_config_are_created_with_mode_and_owner() {
    let mut t = Test::new("rootfs_linux_devices");
    t.config["linux"]["devices"] = json!([
        { "path": "/dev/custom0", "type": "c", "major": 1, "minor": 5,
          "fileMode": 0o662, "uid": 1000, "gid": 20 },
        { "path": "/dev/sub/blk0", "type": "b", "major": 7, "minor": 0,
          "fileMode": 0o600, "uid": 0, "gid": 0 }
    ]);
    t.args(&[
        "stat",
        "-c",
        "%n %t:%T %A %u %g",
        "/dev/custom0",
        "/dev/sub/blk0",
    ]);
    let out = t.output();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/dev/custom0 1:5 crw-rw--w- 1000 20",
            "/dev/sub/blk0 7:0 brw------- 0 0",
        ]
    );
}

#[test]
fn dev_symlinks_exist() {
    let mut t = Test::new("rootfs_dev_symlinks");
    t.sh("for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr /dev/ptmx; do readlink $l; done");
    let out = t.output();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/proc/self/fd",
            "/proc/self/fd/0",
            "/proc/self/fd/1",
            "/proc/self/fd/2",
            "pts/ptmx",
        ]
    );
}

#[test]
fn no_pivot_runs_in_the_rootfs() {
    let mut t = Test::new("rootfs_no_pivot");
    t.sh("cat /etc/passwd | grep -c '^user:'; test -x /bin/busybox && echo rootfs");
    let out = t.run_with(&t.id, &["--no-pivot"]);
    out.ok();
    assert_eq!(out.stdout, "1\nrootfs\n");
}

#[test]
fn cwd_inside_the_rootfs_is_created() {
    let mut t = Test::new("rootfs_cwd_created");
    t.config["process"]["cwd"] = json!("/work/dir");
    t.args(&["pwd"]);
    assert_eq!(t.output(), "/work/dir\n");
}

/// The options of the mount at `/mnt` as the container sees it, or the failed call.
fn mnt_options(t: &Test, opts: &[&str]) -> Result<Vec<String>, Box<crate::util::Out>> {
    let mut t2 = Test::new("rootfs_bind_flags_run");
    t2.config = t.config.clone();
    t2.config["root"]["path"] = t.rootfs.to_string_lossy().into_owned().into();
    let src = t.path("src");
    t2.mount(json!({ "destination": "/mnt", "type": "bind", "source": src, "options": opts }));
    t2.sh("grep ' /mnt ' /proc/self/mounts");
    let out = t2.run();
    if out.code != 0 {
        return Err(Box::new(out));
    }
    let line = out.stdout.lines().last().unwrap_or_default().to_string();
    Ok(line
        .split(' ')
        .nth(3)
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect())
}

/// runc 1.3's flags for a new bind mount: none asked keeps the source's; any asked gives
/// exactly those (the atime ones stay the source's); in a user namespace a locked flag the
/// options only leave out stays, and clearing one explicitly fails.
#[test]
fn bind_mount_flags_are_runcs() {
    use nix::mount::{mount, MsFlags};
    for userns in [false, true] {
        let mut t = Test::new("rootfs_bind_flags");
        let src = t.path("src");
        mount_tmpfs(&src);
        let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC | MsFlags::MS_NODIRATIME;
        mount(
            None::<&str>,
            &src,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | ro,
            None::<&str>,
        )
        .unwrap();
        fs::create_dir_all(t.rootfs.join("mnt")).unwrap();
        if userns {
            super::namespaces::new_user_namespace(&mut t);
        }
        let has = |o: &[String], f: &str| o.iter().any(|x| x == f);
        let o = mnt_options(&t, &["bind"]).unwrap();
        assert!(
            has(&o, "ro") && has(&o, "noexec") && has(&o, "nodiratime"),
            "userns {userns}: {o:?}"
        );
        let o = mnt_options(&t, &["bind", "nosuid"]).unwrap();
        assert!(
            has(&o, "nosuid") && has(&o, "nodiratime"),
            "userns {userns}: {o:?}"
        );
        if userns {
            // Locked by the user namespace: kept.
            assert!(has(&o, "ro") && has(&o, "noexec"), "{o:?}");
            let out = mnt_options(&t, &["bind", "rw"]).unwrap_err();
            out.stderr_has("cannot clear locked flags MS_RDONLY");
        } else {
            assert!(has(&o, "rw") && !has(&o, "noexec"), "{o:?}");
            let o = mnt_options(&t, &["bind", "dev"]).unwrap();
            assert!(
                has(&o, "rw") && !has(&o, "noexec") && has(&o, "nodiratime"),
                "{o:?}"
            );
        }
    }
}
