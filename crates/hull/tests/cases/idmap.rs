//! Idmapped bind mounts (`mounts[].uidMappings`/`gidMappings`, `idmap`, `ridmap`): what the
//! process inside sees of the owners of files on them, the owners its writes get on the host,
//! the Kubernetes `hostUsers: false` shape (a user namespace and volumes idmapped to it), and
//! refusals that name the mount and leave nothing behind.

use std::fs;
use std::os::unix::fs::{chown, MetadataExt};
use std::path::PathBuf;

use serde_json::{json, Value};

use super::namespaces::new_user_namespace;
use crate::util::*;

fn range(container: u32, host: u32, size: u32) -> Value {
    json!([{ "containerID": container, "hostID": host, "size": size }])
}

/// A host directory (beside the bundle, on the test's ext4) with files of several owners.
fn volume(t: &Test) -> PathBuf {
    let dir = t.dir.join("volume");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    for (name, uid, gid) in [("root", 0, 0), ("u1000", 1000, 1001), ("far", 3000, 3000)] {
        let f = dir.join(name);
        fs::write(&f, name).unwrap();
        chown(&f, Some(uid), Some(gid)).unwrap();
    }
    dir
}

#[test]
fn files_on_an_idmapped_bind_show_the_mapped_owners_and_writes_land_unmapped() {
    let mut t = Test::new("idmap_owners");
    let vol = volume(&t);
    // On-disk ids 0..2000 show as 50000.. (uids) and 60000.. (gids); 3000 is outside.
    t.mount(json!({
        "destination": "/vol", "type": "bind", "source": vol,
        "options": ["bind", "idmap"],
        "uidMappings": range(0, 50_000, 2000),
        "gidMappings": range(0, 60_000, 2000)
    }));
    t.config["process"]["user"] = json!({ "uid": 51_000, "gid": 61_000 });
    t.sh(
        "cd /vol && stat -c '%n %u %g' root u1000 far && touch new && stat -c '%n %u %g' new; \
         grep ' /vol ' /proc/self/mountinfo | grep -c idmapped",
    );
    let out = t.run();
    out.ok();
    assert_eq!(
        out.stdout, "root 50000 60000\nu1000 51000 61001\nfar 65534 65534\nnew 51000 61000\n1\n",
        "{out}"
    );
    // Through the mount uid 51000 is on-disk 1000: the host sees that.
    let new = fs::metadata(vol.join("new")).unwrap();
    assert_eq!((new.uid(), new.gid()), (1000, 1000));
    t.assert_nothing_left(&t.id);
}

#[test]
fn ridmap_maps_the_mounts_below_the_bind_and_idmap_only_its_top() {
    let mut t = Test::new("idmap_recursive");
    let vol = volume(&t);
    let sub = vol.join("sub");
    fs::create_dir(&sub).unwrap();
    mount_tmpfs(&sub);
    fs::write(sub.join("f"), "x").unwrap();
    for (dest, option) in [("/r", "ridmap"), ("/t", "idmap")] {
        t.mount(json!({
            "destination": dest, "type": "bind", "source": vol,
            "options": ["rbind", option],
            "uidMappings": range(0, 70_000, 10),
            "gidMappings": range(0, 70_000, 10)
        }));
    }
    t.sh("stat -c '%n %u' /r/root /r/sub/f /t/root /t/sub/f");
    let out = t.run();
    unmount_all_under(&vol);
    out.ok();
    assert_eq!(
        out.stdout, "/r/root 70000\n/r/sub/f 70000\n/t/root 70000\n/t/sub/f 0\n",
        "{out}"
    );
    t.assert_nothing_left(&t.id);
}

/// The Kubernetes `hostUsers: false` shape: the container's root is host 100000, and a
/// volume of host-root files is idmapped to the container's own maps (`idmap` without maps),
/// so root inside owns them and what it writes belongs to host root.
#[test]
fn a_user_namespace_with_volumes_idmapped_to_it() {
    let mut t = Test::new("idmap_userns");
    new_user_namespace(&mut t);
    let vol = volume(&t);
    let own = t.dir.join("own");
    fs::create_dir(&own).unwrap();
    t.mount(json!({
        "destination": "/vol", "type": "bind", "source": vol, "options": ["bind", "idmap"]
    }));
    // Explicit maps, other than the container's: on-disk 0 shows as host 101000, which is
    // container uid 1000.
    t.mount(json!({
        "destination": "/own", "type": "bind", "source": own, "options": ["bind", "idmap"],
        "uidMappings": range(0, 101_000, 1), "gidMappings": range(0, 101_000, 1)
    }));
    t.sh(
        "stat -c '%n %u %g' /vol/root /vol/u1000 /vol/far /own; echo hi > /vol/by-root; \
         cat /proc/self/uid_map",
    );
    let out = t.run();
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "/vol/root 0 0",
            "/vol/u1000 1000 1001",
            "/vol/far 3000 3000",
            "/own 1000 1000"
        ],
        "{out}"
    );
    assert!(
        lines[4].split_whitespace().eq(["0", "100000", "65536"]),
        "{out}"
    );
    let written = fs::metadata(vol.join("by-root")).unwrap();
    assert_eq!((written.uid(), written.gid()), (0, 0), "host root owns it");
    t.assert_nothing_left(&t.id);
}

#[test]
fn a_filesystem_that_cannot_be_idmapped_is_one_line_naming_the_mount() {
    let mut t = Test::new("idmap_unsupported");
    // sysfs has no idmapping support.
    t.mount(json!({
        "destination": "/k", "type": "bind", "source": "/sys/kernel",
        "options": ["rbind", "ridmap"],
        "uidMappings": range(0, 50_000, 10), "gidMappings": range(0, 50_000, 10)
    }));
    t.args(&["true"]);
    let out = t.run();
    if is_runc() {
        out.fails();
    } else {
        out.fails().one_line().stderr_has(
            "idmap mounts[7] (/sys/kernel onto /k): its filesystem cannot be idmapped (EINVAL: \
             Invalid argument)",
        );
    }
    t.assert_nothing_left(&t.id);
}

#[test]
fn bad_idmapped_mounts_are_refused_naming_the_field_and_leave_nothing() {
    let bind = |extra: Value| {
        let mut m = json!({"destination": "/v", "type": "bind", "source": "/tmp"});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    let overlapping = json!([
        {"containerID": 0, "hostID": 50000, "size": 100},
        {"containerID": 50, "hostID": 90000, "size": 10}
    ]);
    let too_many: Vec<Value> = (0..341)
        .map(|i| json!({"containerID": i, "hostID": 50_000 + i, "size": 1}))
        .collect();
    let cases = [
        (
            bind(json!({"options": ["bind"], "uidMappings": overlapping, "gidMappings": range(0, 1, 1)})),
            "mounts[7].uidMappings[1]: its containerID range overlaps that of mounts[7].uidMappings[0]",
        ),
        (
            bind(json!({"options": ["bind"], "uidMappings": too_many, "gidMappings": range(0, 1, 1)})),
            "mounts[7].uidMappings: 341 ranges, the kernel takes at most 340",
        ),
        (
            bind(json!({"options": ["bind", "idmap"], "gidMappings": range(0, 1, 1)})),
            "mounts[7].uidMappings: /v: an idmapped mount needs uid mappings with its gid mappings",
        ),
        (
            bind(json!({"options": ["bind", "ridmap"]})),
            "mounts[7].options: /v: idmapped without uidMappings and gidMappings, and no user namespace to take them from",
        ),
        (
            json!({"destination": "/v", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                   "uidMappings": range(0, 1, 1), "gidMappings": range(0, 1, 1)}),
            "mounts[7].options: /v: idmapped mounts are only supported for bind mounts",
        ),
    ];
    for (mount, want) in cases {
        let mut t = Test::new("idmap_bad");
        t.mount(mount);
        t.args(&["true"]);
        let out = t.run();
        out.fails();
        if !is_runc() {
            out.one_line()
                .stderr_has(&format!("invalid config.json: {want}"));
        }
        t.assert_nothing_left(&t.id);
    }
}

#[test]
fn a_rootless_caller_is_refused_idmapped_mounts_naming_the_mount() {
    let (mut t, c) = rootless_test("idmap_rootless", 64_124, &["true"]);
    let vol = t.dir.join("vol");
    fs::create_dir(&vol).unwrap();
    t.mount(json!({
        "destination": "/v", "type": "bind", "source": vol, "options": ["bind", "idmap"]
    }));
    t.write_config();
    let out = t.call(&["run", &t.id], &c);
    out.fails();
    if !is_runc() {
        out.one_line().stderr_has(&format!(
            "idmap mounts[{}] ({} onto /v): idmapped mounts are not supported for rootless \
             containers",
            t.config["mounts"].as_array().unwrap().len() - 1,
            vol.display()
        ));
    }
    t.assert_nothing_left(&t.id);
}

#[test]
fn features_report_idmapped_mounts() {
    let t = Test::new("idmap_features");
    let out = t.hull(&["features"]);
    out.ok();
    let f: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
}
