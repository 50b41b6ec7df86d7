//! The runtime run by an unprivileged user: `spec --rootless`'s config (a user namespace
//! that maps the caller's own ids), the state under a root that user owns, and the
//! lifecycle commands as the same user.

use std::fs;

use serde_json::Value;

use crate::util::*;

/// A uid with no account: the kernel needs none to run a process or map it.
const UID: u32 = 64_123;

#[test]
fn unprivileged_caller_runs_a_container_as_root_of_its_user_namespace() {
    let (t, c) = rootless_test(
        "rootless-run",
        UID,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; \
             touch /tmp/w && stat -c %u /tmp/w",
        ],
    );
    t.write_config();
    let out = t.call(&["run", &t.id], &c);
    out.ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    let uid = UID.to_string();
    assert_eq!(
        words,
        ["0", &uid, "1", "0", &uid, "1", "0", "0", "0"],
        "{out:?}"
    );
    // The rootfs file the container made belongs to the caller on the host.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(t.rootfs.join("tmp/w")).unwrap().uid(), UID);
    t.assert_nothing_left(&t.id);
}

#[test]
fn unprivileged_caller_creates_execs_kills_and_deletes() {
    let (t, c) = rootless_test("rootless-life", UID, &["sleep", "600"]);
    t.write_config();
    let pid_path = t.bundle.join("init.pid");
    t.call(
        &["create", "--pid-file", pid_path.to_str().unwrap(), &t.id],
        &c,
    )
    .ok();
    let pid: i32 = fs::read_to_string(&pid_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        UID,
        "the init runs as the caller on the host"
    );
    let state: Value = serde_json::from_str(&t.call(&["state", &t.id], &c).ok().stdout).unwrap();
    assert_eq!(state["status"], "created");
    t.call(&["start", &t.id], &c).ok();
    let out = t.call(
        &[
            "exec",
            &t.id,
            "sh",
            "-c",
            "id -u; tr '\\0' ' ' </proc/1/cmdline",
        ],
        &c,
    );
    out.ok();
    assert_eq!(out.stdout, "0\nsleep 600 ", "{out:?}");
    // ps by the init's pid namespace; what needs the cgroups it does not have says so.
    let ps = t.call(&["ps", "--format", "json", &t.id], &c);
    assert_eq!(ps.ok().stdout, format!("[{pid}]\n"), "{ps:?}");
    if !is_runc() {
        for cmd in ["pause", "events"] {
            let mut args = vec![cmd, &t.id];
            if cmd == "events" {
                args.insert(1, "--stats");
            }
            t.call(&args, &c)
                .fails()
                .one_line()
                .stderr_has(&format!("container {} has no cgroups", t.id));
        }
    }
    t.call(&["kill", &t.id, "KILL"], &c).ok();
    assert_eq!(t.wait_status(&t.id, "stopped", STOP_TIMEOUT), "stopped");
    t.call(&["delete", &t.id], &c).ok();
    let left = t.call(&["list", "-q"], &c);
    assert_eq!(left.ok().stdout, "", "{left:?}");
    t.assert_nothing_left(&t.id);
}

/// `--rootless` as runc reads it: `false` makes a cgroup the caller may not make an error
/// (as for root), `true` and auto (an unprivileged caller) run without cgroups of its own.
#[test]
fn rootless_false_makes_a_cgroup_the_caller_cannot_make_an_error() {
    let (t, c) = rootless_test("rootless-flag", UID, &["true"]);
    t.write_config();
    let out = t.call(&["--rootless=false", "run", &t.id], &c);
    out.fails().one_line();
    if !is_runc() {
        out.stderr_has("ermission denied");
    }
    t.assert_nothing_left(&t.id);
    for flag in ["--rootless=true", "--rootless=auto"] {
        let id = t.new_id();
        t.call(&[flag, "run", &id], &c).ok();
        t.assert_nothing_left(&id);
    }
}

/// A second caller: the subordinate-id tests give it ranges in a private /etc.
const SUB_UID: u32 = 64_125;

/// A call that runs the runtime as `uid` in a private mount namespace whose /etc (an overlay
/// of the host's, nothing of the host's changes) names the user and gives it host ids
/// 200000..265535 in /etc/subuid and /etc/subgid, for `newuidmap`/`newgidmap` to read.
fn with_subordinate_ids(t: &Test, uid: u32, bin: &std::path::Path) -> Call {
    let d = t.dir.join("etc-overlay");
    for sub in ["up", "work"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    let mut passwd = fs::read_to_string("/etc/passwd").unwrap();
    passwd.push_str(&format!(
        "hulltest:x:{uid}:{uid}::/nonexistent:/bin/false\n"
    ));
    fs::write(d.join("up/passwd"), passwd).unwrap();
    for f in ["subuid", "subgid"] {
        fs::write(d.join("up").join(f), "hulltest:200000:65536\n").unwrap();
    }
    let script = format!(
        "#!/bin/sh\nexec unshare --mount --propagation private /bin/sh -c 'mount -t overlay \
         overlay -o lowerdir=/etc,upperdir={d}/up,workdir={d}/work /etc && exec setpriv \
         --reuid={uid} --regid={uid} --clear-groups {bin} \"$@\"' sh \"$@\"\n",
        d = d.display(),
        bin = bin.display()
    );
    let wrapper = t.dir.join("as-subordinate-user");
    fs::write(&wrapper, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    Call {
        bin: Some(wrapper),
        cwd: Some(t.bundle.clone()),
        ..Default::default()
    }
}

/// Maps beyond the caller's own id go through newuidmap/newgidmap, within the ranges
/// /etc/subuid and /etc/subgid give the caller; a range they do not give is refused before
/// anything is made, naming the entry.
#[test]
fn multi_range_maps_go_through_the_helpers_within_the_delegated_ids() {
    let (mut t, c) = rootless_test(
        "rootless-subids",
        SUB_UID,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/s && chown 1000:1001 /tmp/s",
        ],
    );
    let maps = |second: u32| {
        serde_json::json!([
            {"containerID": 0, "hostID": SUB_UID, "size": 1},
            {"containerID": 1, "hostID": second, "size": 65536}
        ])
    };
    t.config["linux"]["uidMappings"] = maps(200_000);
    t.config["linux"]["gidMappings"] = maps(200_000);
    for set in ["bounding", "effective", "permitted"] {
        t.config["process"]["capabilities"][set] = serde_json::json!(["CAP_CHOWN"]);
    }
    t.write_config();
    let sub = with_subordinate_ids(&t, SUB_UID, c.bin.as_deref().unwrap());
    let out = t.call(&["run", &t.id], &sub);
    out.ok();
    let sub_uid = SUB_UID.to_string();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let want = [vec!["0", &sub_uid, "1"], vec!["1", "200000", "65536"]];
    assert_eq!(lines[..2], want[..], "uid_map: {out:?}");
    assert_eq!(lines[2..], want[..], "gid_map: {out:?}");
    // Container 1000:1001 is host 200999:201000.
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(t.rootfs.join("tmp/s")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (200_999, 201_000));
    t.assert_nothing_left(&t.id);

    t.config["linux"]["uidMappings"] = maps(300_000);
    t.write_config();
    let id = t.new_id();
    let out = t.call(&["run", &id], &sub);
    out.fails().one_line();
    if !is_runc() {
        out.stderr_has(&format!(
            "invalid config.json: linux.uidMappings[1]: host ids 300000-365535 are neither the \
             caller's ({SUB_UID}) nor delegated to it in /etc/subuid"
        ));
    }
    t.assert_nothing_left(&id);
}

/// A user and network namespace the user made beforehand (as rootlesskit and slirp4netns
/// make them): the container joins both by path and gets the rest new inside them.
#[test]
fn a_rootless_container_joins_a_network_namespace_made_beforehand() {
    let (mut t, c) = rootless_test(
        "rootless-netns",
        UID,
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/net; cat /proc/self/uid_map; id -u",
        ],
    );
    let uid = UID.to_string();
    /// The namespaces' holder, killed and reaped however the test ends.
    struct Holder(std::process::Child);
    impl Drop for Holder {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let holder = Holder(
        std::process::Command::new("setpriv")
            .args(["--reuid", &uid, "--regid", &uid, "--clear-groups"])
            .args([
                "unshare",
                "--user",
                "--map-root-user",
                "--net",
                "sleep",
                "300",
            ])
            .spawn()
            .unwrap(),
    );
    let pid = holder.0.id() as i32;
    let ns = |p: &str, kind: &str| fs::read_link(format!("/proc/{p}/ns/{kind}")).ok();
    assert!(
        wait_until(STOP_TIMEOUT, || ns(&pid.to_string(), "net")
            != ns("self", "net")),
        "the holder made no network namespace"
    );
    let net = ns(&pid.to_string(), "net").unwrap();
    t.remove_namespace("user").remove_namespace("network");
    t.add_namespace("user", Some(&format!("/proc/{pid}/ns/user")));
    t.add_namespace("network", Some(&format!("/proc/{pid}/ns/net")));
    for maps in ["uidMappings", "gidMappings"] {
        t.config["linux"].as_object_mut().unwrap().remove(maps);
    }
    t.write_config();
    let out = t.call(&["run", &t.id], &c);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], net.to_str().unwrap(), "{out:?}");
    assert!(lines[1].split_whitespace().eq(["0", &uid, "1"]), "{out:?}");
    assert_eq!(lines[2], "0", "{out:?}");
    t.assert_nothing_left(&t.id);
}
