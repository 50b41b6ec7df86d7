//! The process's attributes: user and groups, cwd, env, umask, capabilities, rlimits,
//! no_new_privs, oom_score_adj, and the file descriptors it inherits.

use std::fs;

use serde_json::json;

use crate::util::{cap_mask, raw, status_field, write, Call, Test};

#[test]
fn user_group_and_additional_gids() {
    let mut t = Test::new("proc_user");
    t.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20] });
    t.sh("id -u; id -g; id -G | tr ' ' '\\n' | sort -n | tr '\\n' ' '; echo");
    let out = t.output();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["1000", "1000", "10 20 1000"], "{out}");
}

#[test]
fn groups_are_only_the_additional_gids() {
    let mut t = Test::new("proc_groups_exact");
    t.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [10] });
    t.args(&["grep", "^Groups:", "/proc/self/status"]);
    let out = t.output();
    let groups: Vec<&str> = out
        .trim_start_matches("Groups:")
        .split_whitespace()
        .collect();
    assert_eq!(groups, ["10"], "{out}");
}

#[test]
fn root_user_has_no_supplementary_groups_by_default() {
    let mut t = Test::new("proc_root_groups");
    t.args(&["grep", "^Groups:", "/proc/self/status"]);
    let out = t.output();
    assert_eq!(out.trim_start_matches("Groups:").trim(), "", "{out}");
}

#[test]
fn cwd_comes_from_the_config() {
    let mut t = Test::new("proc_cwd");
    t.config["process"]["cwd"] = json!("/tmp");
    t.args(&["pwd"]);
    assert_eq!(t.output(), "/tmp\n");
}

#[test]
fn env_comes_from_the_config() {
    let mut t = Test::new("proc_env");
    t.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY="]);
    t.sh("echo \"$FOO\"; echo \"[$EMPTY]\"; echo $PATH");
    assert_eq!(t.output(), "bar baz\n[]\n/bin\n");
}

#[test]
fn umask_comes_from_the_config() {
    let mut t = Test::new("proc_umask");
    t.config["process"]["user"]["umask"] = json!(0o027);
    t.sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    assert_eq!(t.output(), "0027\n640\n");
}

#[test]
fn default_umask_is_0022() {
    let mut t = Test::new("proc_umask_default");
    t.args(&["sh", "-c", "umask"]);
    assert_eq!(t.output(), "0022\n");
}

/// Reads CapInh/CapPrm/CapEff/CapBnd/CapAmb of the container's process.
fn caps_seen(t: &Test) -> [u64; 5] {
    let out = t.run();
    out.ok();
    let get = |k: &str| {
        let v = status_field(&out.stdout, k).unwrap_or_else(|| panic!("{k} missing:\n{out}"));
        u64::from_str_radix(v, 16).unwrap()
    };
    [
        get("CapInh"),
        get("CapPrm"),
        get("CapEff"),
        get("CapBnd"),
        get("CapAmb"),
    ]
}

#[test]
fn capability_sets_of_a_non_root_process_match_the_config() {
    let mut t = Test::new("proc_caps_nonroot");
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_NET_RAW",
        "CAP_AUDIT_WRITE",
    ];
    let permitted = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let inheritable = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let ambient = ["CAP_NET_BIND_SERVICE"];
    t.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    t.config["process"]["capabilities"] = json!({
        "bounding": bounding, "effective": permitted, "permitted": permitted,
        "inheritable": inheritable, "ambient": ambient
    });
    t.args(&["cat", "/proc/self/status"]);
    let [inh, prm, eff, bnd, amb] = caps_seen(&t);
    // execve of a binary without file capabilities by a non-root user: the new permitted
    // and effective sets are the ambient set; inheritable, bounding and ambient carry over.
    assert_eq!(inh, cap_mask(&inheritable), "CapInh {inh:x}");
    assert_eq!(bnd, cap_mask(&bounding), "CapBnd {bnd:x}");
    assert_eq!(amb, cap_mask(&ambient), "CapAmb {amb:x}");
    assert_eq!(prm, cap_mask(&ambient), "CapPrm {prm:x}");
    assert_eq!(eff, cap_mask(&ambient), "CapEff {eff:x}");
}

#[test]
fn capability_sets_of_root_match_the_config() {
    let mut t = Test::new("proc_caps_root");
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_ADMIN",
    ];
    let inheritable = ["CAP_KILL"];
    t.config["process"]["capabilities"] = json!({
        "bounding": bounding, "effective": bounding, "permitted": bounding,
        "inheritable": inheritable, "ambient": []
    });
    t.args(&["cat", "/proc/self/status"]);
    let [inh, prm, eff, bnd, amb] = caps_seen(&t);
    // execve by root: permitted and effective become the bounding set.
    assert_eq!(bnd, cap_mask(&bounding), "CapBnd {bnd:x}");
    assert_eq!(prm, cap_mask(&bounding), "CapPrm {prm:x}");
    assert_eq!(eff, cap_mask(&bounding), "CapEff {eff:x}");
    assert_eq!(inh, cap_mask(&inheritable), "CapInh {inh:x}");
    assert_eq!(amb, 0, "CapAmb {amb:x}");
}

#[test]
fn missing_capabilities_section_gives_no_capabilities_to_a_non_root_user() {
    let mut t = Test::new("proc_caps_none");
    t.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    t.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    t.args(&["cat", "/proc/self/status"]);
    let [inh, prm, eff, _bnd, amb] = caps_seen(&t);
    assert_eq!([inh, prm, eff, amb], [0, 0, 0, 0]);
}

#[test]
fn dropped_capability_is_enforced() {
    let mut t = Test::new("proc_caps_enforced");
    // Without CAP_CHOWN, root cannot give a file away.
    t.sh("touch /tmp/f; chown 1000 /tmp/f 2>&1 || echo refused");
    let out = t.output();
    assert!(out.contains("refused"), "{out}");
}

#[test]
fn rlimits_come_from_the_config() {
    let mut t = Test::new("proc_rlimits");
    t.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000 },
        { "type": "RLIMIT_NPROC", "soft": 300, "hard": 400 },
        { "type": "RLIMIT_CORE", "soft": 0, "hard": 0 }
    ]);
    t.sh("ulimit -Sn; ulimit -Hn; ulimit -Su; ulimit -Hu; ulimit -Sc; ulimit -Hc");
    assert_eq!(t.output(), "1000\n2000\n300\n400\n0\n0\n");
}

#[test]
fn no_new_privileges_is_set() {
    let mut t = Test::new("proc_nnp");
    t.args(&["grep", "^NoNewPrivs:", "/proc/self/status"]);
    let out = t.output();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );

    t.config["process"]["noNewPrivileges"] = json!(false);
    let out = t.run_with(&t.new_id(), &[]);
    out.ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "0"]
    );
}

#[test]
fn oom_score_adj_comes_from_the_config() {
    let mut t = Test::new("proc_oom");
    t.config["process"]["oomScoreAdj"] = json!(500);
    t.args(&["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(t.output(), "500\n");
}

#[test]
fn no_file_descriptors_leak_into_the_container() {
    let mut t = Test::new("proc_no_fd_leak");
    // Hand the runtime an inheritable fd 7: it must not reach the container.
    let leak_src = t.path("leak");
    write(&leak_src, "leak\n");
    let f = fs::File::open(&leak_src).unwrap();
    t.args(&["ls", "/proc/self/fd"]);
    t.write_config();
    let c = Call {
        fds: vec![(raw(&f), 7)],
        ..Call::default()
    };
    let out = t.call(&["run", "--bundle", &t.bundle_str(), &t.id], &c);
    out.ok();
    // 0-2, and the directory ls itself has open.
    let fds: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
}

#[test]
fn preserve_fds_keeps_fd_3_open() {
    let mut t = Test::new("proc_preserve_fds");
    let src = t.path("preserved");
    write(&src, "preserved\n");
    let f = fs::File::open(&src).unwrap();
    t.sh("cat <&3; ls /proc/self/fd | tr '\\n' ' '");
    t.write_config();
    let c = Call {
        fds: vec![(raw(&f), 3)],
        ..Call::default()
    };
    let out = t.call(
        &[
            "run",
            "--bundle",
            &t.bundle_str(),
            "--preserve-fds",
            "1",
            &t.id,
        ],
        &c,
    );
    out.ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("preserved"), "{out}");
    // 0-3, and ls's own directory fd.
    assert_eq!(lines.next().map(str::trim), Some("0 1 2 3 4"), "{out}");
}

#[test]
fn args_are_passed_verbatim() {
    let mut t = Test::new("proc_args");
    t.args(&["echo", "a b", "", "$HOME", "*"]);
    assert_eq!(t.output(), "a b  $HOME *\n");
}

#[test]
fn relative_args0_is_looked_up_in_path() {
    let mut t = Test::new("proc_path_lookup");
    let tool = t.rootfs.join("opt/tools/hello");
    write(&tool, "#!/bin/sh\necho found in $0\n");
    fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    t.config["process"]["env"] = json!(["PATH=/opt/tools:/bin"]);
    t.args(&["hello"]);
    assert_eq!(t.output(), "found in /opt/tools/hello\n");
}

#[test]
fn home_defaults_to_the_users_passwd_entry() {
    let mut t = Test::new("proc_home");
    t.config["process"]["env"] = json!(["PATH=/bin"]);
    t.args(&["sh", "-c", "echo $HOME"]);
    assert_eq!(t.output(), "/root\n");

    t.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let out = t.run_with(&t.new_id(), &[]);
    out.ok();
    assert_eq!(out.stdout, "/home/user\n");

    // An explicit HOME wins.
    t.config["process"]["env"] = json!(["PATH=/bin", "HOME=/elsewhere"]);
    let out = t.run_with(&t.new_id(), &[]);
    out.ok();
    assert_eq!(out.stdout, "/elsewhere\n");
}
