//! Namespaces as the container process sees them: new ones, joined ones, UTS names and
//! user-namespace id mappings.

use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;

use serde_json::json;

use crate::util::{host_ns, skip_on_runc, Test};

#[test]
fn new_namespaces_differ_from_the_hosts() {
    let mut t = Test::new("ns_new");
    t.add_namespace("cgroup", None);
    let kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    t.sh(&script);
    let out = t.output();
    let inside: Vec<&str> = out.lines().collect();
    assert_eq!(inside.len(), kinds.len(), "{out}");
    for (k, seen) in kinds.iter().zip(inside) {
        let host = host_ns(k);
        assert!(seen.starts_with(&format!("{k}:[")), "{k}: {seen}");
        assert_ne!(seen, host, "{k} namespace is the host's");
    }
}

#[test]
fn namespaces_not_in_the_config_are_the_hosts() {
    let mut t = Test::new("ns_shared");
    t.remove_namespace("network").remove_namespace("ipc");
    t.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc");
    let out = t.output();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [host_ns("net"), host_ns("ipc")]);
}

#[test]
fn process_is_pid_1_in_a_new_pid_namespace() {
    let mut t = Test::new("ns_pid1");
    // `exec` so that readlink runs as the shell's pid.
    t.sh("echo $$; exec readlink /proc/self");
    assert_eq!(t.output(), "1\n1\n");
}

#[test]
fn hostname_comes_from_the_config() {
    let mut t = Test::new("ns_hostname");
    t.config["hostname"] = json!("box-a");
    t.args(&["hostname"]);
    assert_eq!(t.output(), "box-a\n");
}

#[test]
fn domainname_comes_from_the_config() {
    // Known to fail on runc 1.1.5: it ignores `domainname`.
    if skip_on_runc("runc 1.1.5 ignores domainname") {
        return;
    }
    let mut t = Test::new("ns_domainname");
    t.config["domainname"] = json!("example.test");
    t.args(&["cat", "/proc/sys/kernel/domainname"]);
    assert_eq!(t.output(), "example.test\n");
}

#[test]
fn user_namespace_maps_ids() {
    let mut t = Test::new("ns_user");
    new_user_namespace(&mut t);
    t.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch /root/ok && echo wrote");
    let out = t.output();
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["0", "100000", "65536"],
            vec!["0", "100000", "65536"],
            vec!["0"],
            vec!["0"],
            vec!["wrote"],
        ],
        "{out}"
    );
    // The file the container's root created belongs to the mapped host uid.
    let meta = fs::metadata(t.rootfs.join("root/ok")).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::gid(&meta)
        ),
        (100_000, 100_000)
    );
}

#[test]
fn user_namespace_is_new() {
    let mut t = Test::new("ns_user_new");
    new_user_namespace(&mut t);
    t.args(&["readlink", "/proc/self/ns/user"]);
    let out = t.output();
    assert_ne!(out.trim(), host_ns("user"));
}

#[test]
fn joining_a_network_namespace_by_path() {
    let mut t = Test::new("ns_join");
    // The first container owns a new network namespace.
    t.args(&["sleep", "100"]);
    let first = t.id.clone();
    let (out, pid) = t.create(&first);
    out.ok();
    let pid = pid.unwrap();
    let ns_path = format!("/proc/{pid}/ns/net");
    let want = fs::read_link(&ns_path).unwrap();
    assert_ne!(want.to_string_lossy(), host_ns("net"));

    // The second joins it by path.
    t.add_namespace("network", Some(&ns_path));
    t.args(&["readlink", "/proc/self/ns/net"]);
    let second = t.new_id();
    let out = t.run_with(&second, &[]);
    out.ok();
    assert_eq!(out.stdout.trim(), want.to_string_lossy());
}

#[test]
fn joining_a_uts_namespace_by_path_sees_its_hostname() {
    let mut t = Test::new("ns_join_uts");
    t.config["hostname"] = json!("first-box");
    t.args(&["sleep", "100"]);
    let first = t.id.clone();
    let (out, pid) = t.create(&first);
    out.ok();
    let pid = pid.unwrap();

    // Joining a UTS namespace without a hostname leaves its name alone.
    t.config.as_object_mut().unwrap().remove("hostname");
    t.add_namespace("uts", Some(&format!("/proc/{pid}/ns/uts")));
    t.args(&["hostname"]);
    let out = t.run_with(&t.new_id(), &[]);
    out.ok();
    assert_eq!(out.stdout, "first-box\n");
}

/// A new user namespace mapping container ids 0..65536 to host 100000.., with the rootfs
/// owned by the mapped root so the container can use it.
pub(super) fn new_user_namespace(t: &mut Test) {
    chown_tree(&t.rootfs, 100_000, 100_000);
    t.add_namespace("user", None);
    t.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    t.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
}

/// `chown -hR uid:gid` of a rootfs, and opens it up so a mapped root can read it.
fn chown_tree(p: &Path, uid: u32, gid: u32) {
    lchown(p, Some(uid), Some(gid)).unwrap();
    let meta = fs::symlink_metadata(p).unwrap();
    if meta.is_dir() {
        let mode = meta.permissions().mode();
        fs::set_permissions(p, fs::Permissions::from_mode(mode | 0o755)).unwrap();
        for e in fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

#[test]
fn joining_a_namespace_works_every_time() {
    // Regression: an init killed by its parent-death signal when the intermediate process
    // exited after the init had set it (a race, so try it several times).
    let mut t = Test::new("ns_join_repeat");
    t.args(&["sleep", "100"]);
    let first = t.id.clone();
    let (out, pid) = t.create(&first);
    out.ok();
    let pid = pid.unwrap();
    t.add_namespace("network", Some(&format!("/proc/{pid}/ns/net")));
    t.args(&["true"]);
    for i in 0..10 {
        let out = t.run_with(&t.new_id(), &[]);
        assert!(out.success(), "attempt {i}:\n{out}");
    }
}
