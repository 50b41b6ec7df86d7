//! `checkpoint` and `restore` with a working CRIU (the guest's Debian 12 kernel; this
//! project's host kernel fails `criu check`): a container counting into a volume is dumped
//! and restored and counts on from where it was; `--leave-running` keeps the original;
//! `--pre-dump` then a dump with `--parent-path`; a restore into a new id and bundle; refusals
//! that leave nothing behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::util::{wait_until, Test};
use crate::SLOW;

/// A container that counts, one number every 0.2 s, into `count` on a bind-mounted host
/// directory, and keeps the last number in a tmpfs (which CRIU dumps with the process).
fn counter(name: &str) -> (Test, PathBuf) {
    let out = Command::new("criu").arg("check").output().expect("criu");
    assert!(
        out.status.success(),
        "criu check fails here (the guest's kernel is needed): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut t = Test::new(name);
    let vol = t.dir.join("vol");
    fs::create_dir(&vol).unwrap();
    t.mount(json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind"]}));
    t.mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}));
    t.sh(
        "i=0; while true; do i=$((i+1)); echo $i > /scratch/last; echo $i > /vol/count; \
         sleep 0.2; done",
    );
    t.config["process"]["terminal"] = json!(false);
    (t, vol)
}

fn count(vol: &Path) -> u64 {
    fs::read_to_string(vol.join("count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until the count reaches `at_least`.
#[track_caller]
fn counts_to(vol: &Path, at_least: u64) {
    assert!(
        wait_until(SLOW, || count(vol) >= at_least),
        "the count stopped at {}",
        count(vol)
    );
}

/// `run -d` with pipes for the container's stdio: CRIU dumps a pipe and a restore hands it
/// over, where a host file the container inherited (/dev/null, a log) lies on a mount the
/// container's namespace does not have, which CRIU refuses (as with runc). The returned
/// handle keeps the pipes' other ends open.
fn start_detached(t: &Test, id: &str) -> Pipes {
    with_pipes(t, "run", id)
}

/// The test's ends of a container's stdio pipes.
#[allow(dead_code)]
struct Pipes(
    Option<std::process::ChildStdin>,
    Option<std::process::ChildStdout>,
    Option<std::process::ChildStderr>,
);

/// `run -d` (`cmd` "run") or `create` (`cmd` "create") with pipes for stdio.
fn with_pipes(t: &Test, cmd: &str, id: &str) -> Pipes {
    t.write_config();
    let mut args = vec!["--root".to_string(), t.root_str(), cmd.to_string()];
    if cmd == "run" {
        args.push("-d".into());
    }
    args.extend(["--bundle".to_string(), t.bundle_str(), id.to_string()]);
    let mut child = Command::new(crate::util::runtime())
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{cmd} {id}: {status}");
    Pipes(child.stdin.take(), child.stdout.take(), child.stderr.take())
}

#[test]
fn a_checkpointed_container_is_restored_and_counts_on() {
    let (t, vol) = counter("criu_count");
    let id = t.id.clone();
    let _pipes = start_detached(&t, &id);
    counts_to(&vol, 3);
    let images = t.dir.join("images");
    t.hull(&["checkpoint", "--image-path", images.to_str().unwrap(), &id])
        .ok();
    // The container is gone, and its count stands still.
    assert!(
        t.state(&id).is_none(),
        "the checkpointed container is still there"
    );
    let frozen = count(&vol);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(count(&vol), frozen, "something still counts");
    let out = t.hull(&[
        "restore",
        "-d",
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        &t.bundle_str(),
        &id,
    ]);
    out.ok();
    assert_eq!(t.status(&id), "running");
    counts_to(&vol, frozen + 3);
    // It went on from where it was, tmpfs and all: no restart from 1.
    let state = t.state(&id).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let last: u64 = fs::read_to_string(format!("/proc/{pid}/root/scratch/last"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        last > frozen,
        "the tmpfs says {last}, the dump was at {frozen}"
    );
    t.hull(&["delete", "-f", &id]).ok();
    t.assert_nothing_left(&id);
}

#[test]
fn leave_running_keeps_the_original_and_a_pre_dump_is_a_parent() {
    let (t, vol) = counter("criu_leave");
    let id = t.id.clone();
    let _pipes = start_detached(&t, &id);
    counts_to(&vol, 2);
    let pre = t.dir.join("images/pre");
    let last = t.dir.join("images/last");
    t.hull(&[
        "checkpoint",
        "--pre-dump",
        "--image-path",
        pre.to_str().unwrap(),
        &id,
    ])
    .ok();
    assert_eq!(t.status(&id), "running", "a pre-dump leaves it running");
    t.hull(&[
        "checkpoint",
        "--leave-running",
        "--image-path",
        last.to_str().unwrap(),
        "--parent-path",
        "../pre",
        &id,
    ])
    .ok();
    assert_eq!(t.status(&id), "running", "--leave-running");
    let now = count(&vol);
    counts_to(&vol, now + 2);
    // The dump on top of the pre-dump restores, as a new container in a new bundle.
    t.hull(&["delete", "-f", &id]).ok();
    let bundle2 = t.dir.join("bundle2");
    fs::create_dir(&bundle2).unwrap();
    fs::copy(t.bundle.join("config.json"), bundle2.join("config.json")).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle2.join("config.json")).unwrap()).unwrap();
    config["root"]["path"] = json!(t.rootfs);
    fs::write(bundle2.join("config.json"), config.to_string()).unwrap();
    let id2 = t.new_id();
    t.hull(&[
        "restore",
        "-d",
        "--image-path",
        last.to_str().unwrap(),
        "--bundle",
        bundle2.to_str().unwrap(),
        &id2,
    ])
    .ok();
    assert_eq!(t.status(&id2), "running");
    let now = count(&vol);
    counts_to(&vol, now + 2);
    t.hull(&["delete", "-f", &id2]).ok();
    t.assert_nothing_left(&id2);
}

#[test]
fn refusals_name_the_reason_and_leave_nothing() {
    let (t, vol) = counter("criu_refuse");
    let id = t.id.clone();
    // Created, not started: nothing to dump yet.
    let _pipes = with_pipes(&t, "create", &id);
    let images = t.dir.join("images");
    let img = images.to_str().unwrap();
    t.hull(&["checkpoint", "--image-path", img, &id])
        .fails()
        .one_line()
        .stderr_has("Container cannot be checkpointed in created state");
    t.hull(&["start", &id]).ok();
    counts_to(&vol, 1);
    t.hull(&["checkpoint", "--leave-running", "--image-path", img, &id])
        .ok();
    // Restoring over an id that exists.
    t.hull(&[
        "restore",
        "-d",
        "--image-path",
        img,
        "--bundle",
        &t.bundle_str(),
        &id,
    ])
    .fails()
    .one_line()
    .stderr_has("exists");
    assert_eq!(
        t.status(&id),
        "running",
        "the refusal touched the container"
    );
    // Images that are not there, or not images.
    let id2 = t.new_id();
    let empty = t.dir.join("empty");
    fs::create_dir(&empty).unwrap();
    for dir in [t.dir.join("missing"), empty] {
        t.hull(&[
            "restore",
            "-d",
            "--image-path",
            dir.to_str().unwrap(),
            "--bundle",
            &t.bundle_str(),
            &id2,
        ])
        .fails()
        .one_line();
        t.assert_nothing_left(&id2);
    }
    t.hull(&["kill", &id, "KILL"]).ok();
    assert_eq!(t.wait_status(&id, "stopped", SLOW), "stopped");
    t.hull(&["checkpoint", "--image-path", img, &id])
        .fails()
        .one_line()
        .stderr_has("Container cannot be checkpointed in stopped state");
}

/// Without `--detach` restore waits for the process, as `run` does: its exit code is
/// restore's, the container is deleted, and the bundle's rootfs is as it was.
#[test]
fn a_foreground_restore_waits_and_deletes_leaving_the_rootfs_alone() {
    let (t, vol) = counter("criu_fg");
    let id = t.id.clone();
    let _pipes = start_detached(&t, &id);
    counts_to(&vol, 2);
    let images = t.dir.join("images");
    t.hull(&["checkpoint", "--image-path", images.to_str().unwrap(), &id])
        .ok();
    let restore = Command::new(crate::util::runtime())
        .args(["--root", &t.root_str(), "restore", "--image-path"])
        .arg(&images)
        .args(["--bundle", &t.bundle_str(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(t.wait_status(&id, "running", SLOW), "running");
    let now = count(&vol);
    counts_to(&vol, now + 2);
    t.hull(&["kill", &id, "KILL"]).ok();
    let out = restore.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.rootfs.join("bin/busybox").exists(),
        "the rootfs lost its files"
    );
    t.assert_nothing_left(&id);
}
