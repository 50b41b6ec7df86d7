//! Differential tests: the same bundle under runc and under the runtime under test; the
//! process must see the same world (mounts, capabilities, ids, limits, /dev, env).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::util::{parse_mountinfo_line, Call, Test, RUNC};

/// Prints one section per aspect, each introduced by `@name`.
const PROBE: &str = "\
echo @mounts; cat /proc/self/mountinfo; \
echo @caps; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; \
echo @status; grep -E '^(NoNewPrivs|Seccomp|Groups|Umask)' /proc/self/status; \
echo @id; id; \
echo @ulimit; ulimit -a; \
echo @dev; stat -c '%A %u %g %t:%T %N' /dev/* /dev/pts/* /dev/shm /dev/mqueue; \
echo @env; env | sort; \
echo @misc; hostname; pwd; umask; echo $$; ls -A /; \
echo @end";

/// Splits the probe's output into sections, normalising what legitimately differs.
fn sections(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = String::new();
    for line in out.lines() {
        if let Some(name) = line.strip_prefix('@') {
            cur = name.to_string();
            map.entry(cur.clone()).or_default();
            continue;
        }
        let line = if cur == "mounts" {
            normalise_mount(line)
        } else if cur == "dev" && line.ends_with(" /dev/mqueue") {
            // Deliberate difference: in a user namespace hull makes the ipc namespace as the
            // namespace's root, so container root's group owns the mqueue root; runc 1.1.5
            // makes it before its setresgid and the group is the overflow gid.
            line.replace(" 0 65534 ", " 0 0 ")
        } else {
            line.to_string()
        };
        map.entry(cur.clone()).or_default().push(line);
    }
    // Mounts at different points do not depend on each other's order.
    if let Some(m) = map.get_mut("mounts") {
        m.sort();
    }
    map
}

/// A mountinfo line minus mount ids, device numbers, root and source; propagation kept
/// only as its kind.
fn normalise_mount(line: &str) -> String {
    let Some((point, opts, fstype, sopts)) = parse_mountinfo_line(line) else {
        return line.to_string();
    };
    let left = line.split_once(" - ").map(|p| p.0).unwrap_or_default();
    let mut prop: Vec<&str> = left
        .split(' ')
        .skip(6)
        .map(|f| f.split(':').next().unwrap_or(f))
        .collect();
    prop.sort();
    // Deliberate difference: hull mounts the tmpfs holding the cgroup hierarchies read-only
    // (runc 1.1.5 leaves it writable); the hierarchies under it are read-only in both.
    let opts = if point == "/sys/fs/cgroup" && fstype == "tmpfs" {
        let mut o: Vec<&str> = opts.split(',').collect();
        o.iter_mut().filter(|x| **x == "ro").for_each(|x| *x = "rw");
        o.join(",")
    } else {
        opts.to_string()
    };
    format!("{point} {opts} [{}] {fstype} {sopts}", prop.join(","))
}

/// Runs the probe with `t.config` under runc and under the runtime under test.
fn compare(t: &mut Test) {
    hull_testing::skip_unless!(Path::new(RUNC).exists(), "runc", "{RUNC} missing");
    t.sh(PROBE);
    t.write_config();

    let runc_root = t.path("runc-root");
    let runc_id = t.new_id();
    t.track(Path::new(RUNC), &runc_root, &runc_id);
    let runc = Call {
        bin: Some(RUNC.into()),
        root: Some(runc_root),
        ..Call::default()
    };
    let b = t.bundle_str();
    let theirs = t.call(&["run", "--bundle", &b, &runc_id], &runc);
    theirs.ok();
    let ours = t.call(&["run", "--bundle", &b, &t.id], &Call::default());
    ours.ok();

    let (a, b) = (sections(&ours.stdout), sections(&theirs.stdout));
    assert!(a.contains_key("end"), "probe did not finish:\n{ours}");
    let mut diffs = Vec::new();
    for (name, want) in &b {
        let got = a.get(name).cloned().unwrap_or_default();
        if &got != want {
            let extra: Vec<&String> = got.iter().filter(|l| !want.contains(l)).collect();
            let missing: Vec<&String> = want.iter().filter(|l| !got.contains(l)).collect();
            diffs.push(format!(
                "[{name}]\n  only here: {extra:#?}\n  only in runc: {missing:#?}{}",
                if extra.is_empty() && missing.is_empty() {
                    "\n  (same lines, different order)"
                } else {
                    ""
                }
            ));
        }
    }
    assert!(diffs.is_empty(), "differs from runc:\n{}", diffs.join("\n"));
}

#[test]
fn default_bundle_looks_the_same_as_under_runc() {
    let mut t = Test::new("diff_default");
    compare(&mut t);
}

#[test]
fn non_root_bundle_looks_the_same_as_under_runc() {
    let mut t = Test::new("diff_nonroot");
    t.config["process"]["user"] =
        json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o077 });
    t.config["process"]["cwd"] = json!("/home/user");
    t.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024 },
        { "type": "RLIMIT_NPROC", "soft": 100, "hard": 200 }
    ]);
    t.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL"],
        "effective": ["CAP_NET_RAW"], "permitted": ["CAP_NET_RAW"],
        "inheritable": ["CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]
    });
    t.config["root"]["readonly"] = json!(true);
    compare(&mut t);
}

#[test]
fn bundle_with_extra_mounts_and_devices_looks_the_same_as_under_runc() {
    let mut t = Test::new("diff_mounts");
    let src = t.mkdir("src");
    t.mount(
        json!({ "destination": "/data", "type": "bind", "source": src,
                    "options": ["rbind", "ro", "nosuid"] }),
    );
    t.mount(
        json!({ "destination": "/run", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "nodev", "mode=755", "size=2m"] }),
    );
    t.config["linux"]["devices"] = json!([
        { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
          "fileMode": 0o666, "uid": 0, "gid": 0 }
    ]);
    t.add_namespace("cgroup", None);
    compare(&mut t);
}

#[test]
fn user_namespace_bundle_looks_the_same_as_under_runc() {
    let mut t = Test::new("diff_userns");
    super::namespaces::new_user_namespace(&mut t);
    compare(&mut t);
}
