//! AppArmor for real: profiles loaded for the test confine the container's process (`run`)
//! and the processes `exec` adds (the container's profile, or `--apparmor`'s); a profile
//! that is not loaded is refused before anything runs.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::unified;
use crate::util::{assert_cgroups_gone, Test};

/// A profile loaded into the kernel for one test, removed on drop.
struct Profile {
    name: String,
}

impl Profile {
    /// Loads a profile named `hull-test-<name>-<pid>` that allows everything but reading the
    /// paths in `deny`.
    fn load(name: &str, deny: &[&str]) -> Profile {
        assert_eq!(
            fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .unwrap_or_default()
                .trim(),
            "Y",
            "AppArmor is not enabled on this host: not the guest"
        );
        let name = format!("hull-test-{name}-{}", std::process::id());
        let rules: String = deny.iter().map(|p| format!("  deny {p} r,\n")).collect();
        // attach_disconnected: the process lives in another mount namespace.
        let text = format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  \
             capability,\n  network,\n  signal,\n  ptrace,\n  unix,\n  mount,\n  umount,\n  \
             pivot_root,\n{rules}}}\n"
        );
        parser(&["-r"], &text);
        Profile { name }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = Command::new("apparmor_parser")
            .args(["-R"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("profile {} {{}}\n", self.name).as_bytes())?;
                c.wait()
            });
    }
}

/// Runs apparmor_parser with `text` on stdin; panics with its output if it fails.
fn parser(args: &[&str], text: &str) {
    let mut child = Command::new("apparmor_parser")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apparmor_parser (apparmor package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "apparmor_parser {args:?}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A rootfs with /secret and /open to read.
fn with_files(t: &Test) {
    fs::write(t.rootfs.join("secret"), "s3cret\n").unwrap();
    fs::write(t.rootfs.join("open"), "open-ok\n").unwrap();
}

const PROBE: &str = "echo label=$(cat /proc/self/attr/current); \
    cat /secret || echo secret-denied; cat /open || echo open-denied";

#[test]
fn run_under_a_loaded_profile_is_confined_by_it() {
    unified();
    let p = Profile::load("run", &["/secret"]);
    let mut t = Test::new("aa_run");
    with_files(&t);
    t.config["process"]["apparmorProfile"] = json!(p.name);
    t.sh(PROBE);
    let out = t.run();
    out.ok();
    assert!(
        out.stdout.contains(&format!("label={} (enforce)", p.name)),
        "{out}"
    );
    assert!(out.stdout.contains("secret-denied"), "{out}");
    assert!(!out.stdout.contains("s3cret"), "{out}");
    assert!(out.stdout.contains("open-ok"), "{out}");
    out.stderr_has("'/secret': Permission denied");
}

#[test]
fn without_a_profile_the_process_is_unconfined() {
    unified();
    let mut t = Test::new("aa_none");
    with_files(&t);
    t.sh(PROBE);
    let out = t.run();
    out.ok();
    assert!(out.stdout.contains("label=unconfined"), "{out}");
    assert!(out.stdout.contains("s3cret"), "{out}");
}

#[test]
fn exec_gets_the_containers_profile_or_the_one_it_names() {
    unified();
    let deny_secret = Profile::load("exec-a", &["/secret"]);
    let deny_open = Profile::load("exec-b", &["/open"]);
    let mut t = Test::new("aa_exec");
    with_files(&t);
    t.config["process"]["apparmorProfile"] = json!(deny_secret.name);
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create_and_start(&id);

    let inherited = t.hull(&["exec", &id, "sh", "-c", PROBE]);
    inherited.ok();
    assert!(
        inherited
            .stdout
            .contains(&format!("label={} (enforce)", deny_secret.name)),
        "{inherited}"
    );
    assert!(inherited.stdout.contains("secret-denied"), "{inherited}");
    assert!(inherited.stdout.contains("open-ok"), "{inherited}");

    let named = t.hull(&[
        "exec",
        "--apparmor",
        &deny_open.name,
        &id,
        "sh",
        "-c",
        PROBE,
    ]);
    named.ok();
    assert!(
        named
            .stdout
            .contains(&format!("label={} (enforce)", deny_open.name)),
        "{named}"
    );
    assert!(named.stdout.contains("s3cret"), "{named}");
    assert!(named.stdout.contains("open-denied"), "{named}");
}

#[test]
fn a_profile_that_is_not_loaded_is_refused_and_nothing_is_left() {
    unified();
    let mut t = Test::new("aa_missing");
    let g = t.cgroup_guard();
    let id = t.id.clone();
    let path = t.in_cgroup(&g, &id);
    let name = format!("hull-test-never-loaded-{}", std::process::id());
    t.config["process"]["apparmorProfile"] = json!(name);
    let marker = t.rootfs.join("ran");
    t.sh("touch /ran");
    let (out, _) = t.create_fails();
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line:\n{out}");
    out.stderr_has(&name);
    out.stderr_has("not loaded");
    assert!(!marker.exists(), "the process ran");
    assert_cgroups_gone(&path);

    // exec --apparmor with a missing profile: refused, the container unharmed.
    t.config["process"]["apparmorProfile"] = json!(null);
    t.args(&["sleep", "100"]);
    t.create_and_start(&id);
    let out = t.hull(&["exec", "--apparmor", &name, &id, "touch", "/ran"]);
    assert_eq!(out.code, 255, "exec fails as runc's does:\n{out}");
    out.stderr_has(&name);
    assert!(!marker.exists(), "the exec'd process ran");
    assert_eq!(t.status(&id), "running");
}
