//! `checkpoint` and `restore` where the container or the images are wrong, and on this
//! machine kind, whose kernel CRIU cannot work on (`criu check` fails): each fails with one
//! line that says why (CRIU's own complaint quoted), the container is left as it was, and a
//! failed restore leaves nothing. The real dumps and restores run in the guest
//! (`guest::criu`).

use std::fs;

use crate::util::*;

/// `restore -d` of `id` from `images` with the test's bundle.
fn restore_detached(t: &Test, images: &str, id: &str) -> Out {
    t.hull(&[
        "restore",
        "-d",
        "--image-path",
        images,
        "--bundle",
        &t.bundle_str(),
        id,
    ])
}

fn criu_works() -> bool {
    std::process::Command::new("criu")
        .arg("check")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn checkpoint_of_a_container_that_is_not_running_is_refused() {
    if skip_on_runc("runc's words differ for a missing container") {
        return;
    }
    let mut t = Test::new("cpt_state");
    t.args(&["sleep", "100"]);
    let images = t.dir.join("images");
    let img = images.to_str().unwrap();
    t.hull(&["checkpoint", "--image-path", img, "nope"])
        .fails()
        .one_line()
        .stderr_has("container does not exist");
    let (out, _) = t.create(&t.id);
    out.ok();
    t.hull(&["checkpoint", "--image-path", img, &t.id])
        .fails()
        .one_line()
        .stderr_has("Container cannot be checkpointed in created state");
    assert_eq!(t.status(&t.id), "created");
    t.hull(&["kill", &t.id, "KILL"]).ok();
    assert_eq!(t.wait_status(&t.id, "stopped", STOP_TIMEOUT), "stopped");
    t.hull(&["checkpoint", "--image-path", img, &t.id])
        .fails()
        .one_line()
        .stderr_has("Container cannot be checkpointed in stopped state");
    assert!(
        !images.exists(),
        "a refused checkpoint made {}",
        images.display()
    );
}

#[test]
fn bad_checkpoint_flags_are_refused_naming_them() {
    if skip_on_runc("hull's words") {
        return;
    }
    let mut t = Test::new("cpt_flags");
    t.args(&["sleep", "100"]);
    let (out, _) = t.create(&t.id);
    out.ok();
    t.hull(&["start", &t.id]).ok();
    let img = t.dir.join("images");
    let img = img.to_str().unwrap();
    for (flags, want) in [
        (
            vec!["--manage-cgroups-mode", "sideways"],
            "invalid manage-cgroups-mode value sideways",
        ),
        (vec!["--empty-ns", "pid"], "namespace pid is not supported"),
        (
            vec!["--page-server", "nowhere"],
            "Use --page-server ADDRESS:PORT",
        ),
        (
            vec!["--parent-path", "/abs"],
            "--parent-path must be relative",
        ),
    ] {
        let mut args = vec!["checkpoint", "--image-path", img];
        args.extend(flags);
        args.push(&t.id);
        t.hull(&args).fails().one_line().stderr_has(want);
        assert_eq!(t.status(&t.id), "running", "{args:?} touched the container");
        assert!(
            !t.dir.join("images").exists(),
            "{args:?} made the images directory"
        );
    }
}

#[test]
fn restore_from_missing_images_or_over_an_existing_id_leaves_nothing() {
    if skip_on_runc("hull's words") {
        return;
    }
    let mut t = Test::new("rst_bad");
    t.args(&["sleep", "100"]);
    t.write_config();
    let id = t.new_id();
    let missing = t.dir.join("missing");
    restore_detached(&t, missing.to_str().unwrap(), &id)
        .fails()
        .one_line()
        .stderr_has("descriptors.json");
    t.assert_nothing_left(&id);
    let (out, _) = t.create(&t.id);
    out.ok();
    fs::create_dir(&missing).unwrap();
    fs::write(
        missing.join("descriptors.json"),
        "[\"/dev/null\",\"/dev/null\",\"/dev/null\"]",
    )
    .unwrap();
    restore_detached(&t, missing.to_str().unwrap(), &t.id)
        .fails()
        .one_line();
    assert_eq!(
        t.status(&t.id),
        "created",
        "the refusal touched the container"
    );
}

/// Where CRIU cannot work (this machine's kernel), both commands say so in one line with
/// CRIU's own words, the container runs on, and the failed restore leaves nothing.
#[test]
fn without_a_working_criu_both_commands_fail_in_criu_s_words() {
    if criu_works() {
        hull_testing::report(
            &hull_testing::test_name(),
            "criu check passes on this kernel: the dump works here (the guest tests cover it)",
        );
        return;
    }
    if skip_on_runc("runc quotes CRIU's log over several lines") {
        return;
    }
    let mut t = Test::new("cpt_nocriu");
    t.args(&["sleep", "100"]);
    let (out, _) = t.create(&t.id);
    out.ok();
    t.hull(&["start", &t.id]).ok();
    let images = t.dir.join("images");
    let img = images.to_str().unwrap();
    t.hull(&["checkpoint", "--image-path", img, &t.id])
        .fails()
        .one_line()
        .stderr_has("criu failed: type DUMP")
        .stderr_has("Error (criu/");
    assert_eq!(t.status(&t.id), "running");
    let id = t.new_id();
    restore_detached(&t, img, &id)
        .fails()
        .one_line()
        .stderr_has("criu failed: type RESTORE")
        .stderr_has("Error (criu/");
    t.assert_nothing_left(&id);
}

/// The host's /dev/null handed to the container as stdin becomes the container's own (as
/// runc makes it): a descriptor of a file on a mount the container lacks is one CRIU cannot
/// dump, and podman gives every container /dev/null for stdin.
#[test]
fn the_hosts_dev_null_as_stdin_becomes_the_containers_own() {
    let mut t = Test::new("devnull_stdin");
    t.sh(
        "[ \"$(stat -L -c %d:%i /proc/self/fd/0)\" = \"$(stat -c %d:%i /dev/null)\" ] \
         && echo same || echo other",
    );
    let out = t.run();
    out.ok();
    assert_eq!(out.stdout, "same\n", "{out}");
}

/// `checkpoint --help` and `restore --help` succeed only where CRIU works (podman asks them
/// whether the runtime can checkpoint), and the features document says the same; where it
/// does not, the help is followed by one line with CRIU's reason, and fails.
#[test]
fn help_and_features_say_whether_checkpoint_works_here() {
    if skip_on_runc("runc says checkpoint works whether CRIU does or not") {
        return;
    }
    let t = Test::new("cpt_help");
    let works = criu_works();
    for cmd in ["checkpoint", "restore"] {
        let out = t.hull(&[cmd, "--help"]);
        assert!(out.stdout.contains("--image-path"), "no help:\n{out}");
        if works {
            out.ok();
        } else {
            out.fails()
                .one_line()
                .stderr_has("CRIU does not work here: Error (criu/");
        }
    }
    let out = t.hull(&["features"]);
    out.ok();
    let features: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let enabled = &features["annotations"]["org.opencontainers.runc.checkpoint.enabled"];
    assert_eq!(
        enabled.as_str() == Some("true"),
        works,
        "criu check passes: {works}, features say {enabled}"
    );
    // Other commands' help is not CRIU's business.
    t.hull(&["run", "--help"]).ok();
}

/// A container with a terminal is restored with its pty master sent where a create sends
/// one: detached, that needs a console socket; a socket without a terminal is refused too.
/// Both before anything is made.
#[test]
fn restore_refuses_a_terminal_without_a_console_socket_and_the_reverse() {
    if skip_on_runc("hull checks the console before it reads the images") {
        return;
    }
    let mut t = Test::new("rst_tty");
    t.args(&["sleep", "100"]);
    t.config["process"]["terminal"] = serde_json::json!(true);
    t.write_config();
    let images = t.mkdir("images");
    fs::write(
        images.join("descriptors.json"),
        "[\"/dev/pts/0\",\"/dev/pts/0\",\"/dev/pts/0\"]",
    )
    .unwrap();
    let id = t.new_id();
    restore_detached(&t, images.to_str().unwrap(), &id)
        .fails()
        .one_line()
        .stderr_has("without setting console socket");
    t.assert_nothing_left(&id);
    t.config["process"]["terminal"] = serde_json::json!(false);
    t.write_config();
    let sock = t.dir.join("console.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    t.hull(&[
        "restore",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        "--image-path",
        images.to_str().unwrap(),
        "--bundle",
        &t.bundle_str(),
        &id,
    ])
    .fails()
    .one_line()
    .stderr_has("cannot use console socket");
    t.assert_nothing_left(&id);
}

/// The `org.criu.config` annotation names CRIU's configuration file for this container, as
/// with runc (whose settings override the request's): here one that moves CRIU's log. The
/// log is written wherever CRIU gets (on this machine's kernel it fails in it).
#[test]
fn the_org_criu_config_annotation_names_criu_s_configuration_file() {
    if skip_on_runc("runc reads the annotation too, but this checks hull's log quoting") {
        return;
    }
    let mut t = Test::new("cpt_conf");
    t.args(&["sleep", "100"]);
    let conf = t.dir.join("criu.conf");
    fs::write(&conf, "log-file custom.log\n").unwrap();
    t.config["annotations"] = serde_json::json!({ "org.criu.config": conf });
    let (out, _) = t.create(&t.id);
    out.ok();
    t.hull(&["start", &t.id]).ok();
    let images = t.dir.join("images");
    let _ = t.hull(&[
        "checkpoint",
        "--leave-running",
        "--image-path",
        images.to_str().unwrap(),
        &t.id,
    ]);
    let log = fs::read_to_string(images.join("custom.log")).unwrap_or_default();
    assert!(
        log.contains("Dumping") || log.contains("Error (criu/"),
        "CRIU did not log where its configuration said: {log:?}"
    );
    assert!(!images.join("dump.log").exists(), "the file was not read");
    assert_eq!(t.status(&t.id), "running");
}
