//! The command-line contract clients parse: the JSON log, `--version`, single-dash long
//! flags, `spec`, `features`; hull's own step timestamps (`HULL_TIMING`, for bench/profile.sh).

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::util::{runtime_name, skip_on_runc, Call, Test, RUNC};

#[test]
fn json_log_of_a_failing_command_is_one_error_line() {
    let t = Test::new("cli_json_log");
    let log = t.path("log.json");
    let log_s = log.to_string_lossy().into_owned();
    let out = t.hull(&[
        "--log",
        &log_s,
        "--log-format",
        "json",
        "state",
        "missing-id",
    ]);
    out.fails();
    let text = fs::read_to_string(&log).expect("log file written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "log: {text:?}");
    let v: Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["level"], "error", "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("container does not exist"),
        "{v}"
    );
    assert!(v["time"].is_string(), "{v}");
}

#[test]
fn json_log_is_appended_to() {
    let t = Test::new("cli_json_log_append");
    let log = t.path("log.json");
    fs::write(
        &log,
        "{\"level\":\"info\",\"msg\":\"earlier\",\"time\":\"x\"}\n",
    )
    .unwrap();
    let log_s = log.to_string_lossy().into_owned();
    t.hull(&["--log", &log_s, "--log-format=json", "state", "missing-id"])
        .fails();
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("earlier"));
    let v: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(v["level"], "error");
}

#[test]
fn log_file_is_created_even_when_nothing_fails() {
    let t = Test::new("cli_log_created");
    let log = t.path("log.json");
    let log_s = log.to_string_lossy().into_owned();
    t.hull(&["--log", &log_s, "--log-format", "json", "list"])
        .ok();
    assert!(log.exists(), "log file not created");
}

#[test]
fn version_prints_name_commit_spec_and_libseccomp() {
    let t = Test::new("cli_version");
    for flag in ["-v", "--version"] {
        let out = t.call(
            &[flag],
            &Call {
                root: Some("".into()),
                ..Call::default()
            },
        );
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(lines.len() >= 3, "{out}");
        assert!(
            lines[0].starts_with(&format!("{} version ", runtime_name())),
            "{out}"
        );
        assert!(lines[1].starts_with("commit: "), "{out}");
        assert!(lines[2].starts_with("spec: 1."), "{out}");
        // runc's `go:` line is hull's `rust:`; the libseccomp line is the same, and names
        // the library in use, as the features document does.
        let seccomp = lines
            .iter()
            .find_map(|l| l.strip_prefix("libseccomp: "))
            .unwrap_or_else(|| panic!("no libseccomp line:\n{out}"));
        let features: serde_json::Value =
            serde_json::from_str(&t.hull(&["features"]).stdout).unwrap();
        assert_eq!(
            features["annotations"]["io.github.seccomp.libseccomp.version"], seccomp,
            "{out}"
        );
        assert!(
            seccomp.split('.').count() == 3 && seccomp.starts_with("2."),
            "{out}"
        );
        if !crate::util::is_runc() {
            assert_eq!(lines.len(), 5, "{out}");
            assert!(lines[3].starts_with("rust: 1."), "{out}");
        }
    }
}

#[test]
fn single_dash_long_flags_are_accepted() {
    let mut t = Test::new("cli_single_dash");
    t.args(&["sleep", "100"]);
    let id = t.id.clone();
    t.create(&id).0.ok();
    let root = t.root_str();
    let no_root = Call {
        root: Some("".into()),
        ..Call::default()
    };
    let out = t.call(&["-root", &root, "state", &id], &no_root);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["status"], "created");

    let log = t.path("log.json").to_string_lossy().into_owned();
    let out = t.call(
        &[
            "-root",
            &root,
            "-log",
            &log,
            "-log-format=json",
            "state",
            "missing-id",
        ],
        &no_root,
    );
    out.fails();
    assert!(fs::read_to_string(&log).unwrap().contains("\"error\""));

    t.call(&["-root", &root, "delete", "-force", &id], &no_root)
        .ok();
}

#[test]
fn spec_writes_config_json_and_refuses_to_overwrite() {
    let t = Test::new("cli_spec");
    let dir = t.mkdir("specdir");
    let d = dir.to_string_lossy().into_owned();
    t.hull(&["spec", "--bundle", &d]).ok();
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["process"]["terminal"], true, "{v}");
    assert_eq!(v["process"]["args"], serde_json::json!(["sh"]), "{v}");
    assert_eq!(v["root"]["path"], "rootfs", "{v}");
    assert!(v["ociVersion"].as_str().unwrap().starts_with("1."), "{v}");

    t.hull(&["spec", "--bundle", &d])
        .fails()
        .stderr_has("File config.json exists. Remove it first");
}

#[test]
fn spec_writes_into_the_current_directory() {
    let t = Test::new("cli_spec_cwd");
    let dir = t.mkdir("specdir");
    let c = Call {
        cwd: Some(dir.clone()),
        ..Call::default()
    };
    t.call(&["spec"], &c).ok();
    assert!(dir.join("config.json").exists());
}

#[test]
fn spec_matches_runcs_default_config() {
    hull_testing::skip_unless!(Path::new(RUNC).exists(), "runc", "{RUNC} missing");
    let t = Test::new("cli_spec_vs_runc");
    let ours = t.mkdir("ours");
    let theirs = t.mkdir("theirs");
    t.hull(&["spec", "--bundle", &ours.to_string_lossy()]).ok();
    let runc = Call {
        bin: Some(RUNC.into()),
        ..Call::default()
    };
    t.call(&["spec", "--bundle", &theirs.to_string_lossy()], &runc)
        .ok();
    let read = |d: &Path| -> Value {
        let mut v: Value =
            serde_json::from_str(&fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
        // Version and the runtime's own name may differ.
        let o = v.as_object_mut().unwrap();
        o.remove("ociVersion");
        o.remove("hostname");
        // runc 1.3's default (which hull follows) no longer sets ambient capabilities;
        // runc 1.1.5 still does.
        if let Some(caps) = v
            .pointer_mut("/process/capabilities")
            .and_then(Value::as_object_mut)
        {
            caps.remove("ambient");
        }
        v
    };
    let (a, b) = (read(&ours), read(&theirs));
    for key in ["process", "root", "mounts", "linux"] {
        assert_eq!(a[key], b[key], "spec differs from runc's in {key}");
    }
}

#[test]
fn features_prints_json() {
    let t = Test::new("cli_features");
    let out = t.call(
        &["features"],
        &Call {
            root: Some("".into()),
            ..Call::default()
        },
    );
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(
        v["ociVersionMin"]
            .as_str()
            .unwrap_or_default()
            .starts_with("1."),
        "{v}"
    );
    assert!(v["ociVersionMax"].is_string(), "{v}");
    let hooks = v["hooks"].as_array().expect("hooks list");
    assert!(hooks.iter().any(|h| h == "createRuntime"), "{v}");
    let ns = v["linux"]["namespaces"]
        .as_array()
        .expect("namespaces list");
    for kind in ["pid", "network", "mount", "user", "uts", "ipc", "cgroup"] {
        assert!(ns.iter().any(|n| n == kind), "{kind} missing: {v}");
    }
}

#[test]
fn list_of_an_empty_root_succeeds() {
    let t = Test::new("cli_list_empty");
    let out = t.hull(&["list", "--format", "json"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "{out}"
    );
}

#[test]
fn invalid_log_format_is_refused() {
    let t = Test::new("cli_bad_log_format");
    let out = t.hull(&["--log-format", "xml", "list"]);
    assert_ne!(out.code, 0, "{out}");
    out.stderr_has("invalid log-format: xml");
}

#[test]
fn unknown_subcommand_fails() {
    let t = Test::new("cli_unknown_cmd");
    // runc 1.3's words and exit status, with or without -h.
    for args in [&["frobnicate"][..], &["frobnicate", "-h"]] {
        let out = t.hull(args);
        assert_eq!(out.code, 3, "{out}");
        out.stderr_has("No help topic for 'frobnicate'");
    }
}

/// `HULL_TIMING=1`: one `hull-timing PID NS LABEL` line per step on stderr, from the runtime and
/// from the container init (its own pid) until it loads the container's seccomp filter;
/// nothing without it.
#[test]
fn timing_marks_cover_the_runtime_and_the_init() {
    if skip_on_runc("HULL_TIMING is hull's own profiling switch") {
        return;
    }
    let mut t = Test::new("timing-marks");
    t.args(&["true"]);
    let quiet = t.run();
    quiet.ok();
    assert!(!quiet.stderr.contains("hull-timing"), "{quiet}");

    t.write_config();
    let id = t.new_id();
    let c = Call {
        env: vec![("HULL_TIMING".into(), "1".into())],
        ..Call::default()
    };
    let out = t.call(&["run", "--bundle", &t.bundle_str(), &id], &c);
    out.ok();
    // (pid, ns, label), in time order.
    let mut marks: Vec<(u32, u64, String)> = out
        .stderr
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(4, ' ');
            (f.next()? == "hull-timing").then_some(())?;
            Some((
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
                f.next()?.to_string(),
            ))
        })
        .collect();
    marks.sort_by_key(|m| m.1);
    let at = |label: &str| {
        marks
            .iter()
            .position(|m| m.2 == label)
            .unwrap_or_else(|| panic!("no mark {label:?}:\n{out}"))
    };
    let order = [
        "exec'd",
        "protected copy made",
        "config loaded",
        "cgroups made",
        "clone",
        "init: go received",
        "init: mounts made",
        "init: pivot_root",
        "init: process prepared",
        "created",
        "run: process exited",
        "run: deleted",
        "end",
    ];
    let places: Vec<usize> = order.iter().map(|l| at(l)).collect();
    assert!(
        places.windows(2).all(|w| w[0] < w[1]),
        "{order:?} at {places:?}:\n{out}"
    );
    let runtime = marks[at("config loaded")].0;
    let init = marks[at("init: go received")].0;
    assert_ne!(runtime, init, "the init marks with its own pid:\n{out}");
    assert_eq!(marks[at("init: process prepared")].0, init, "{out}");
    assert_eq!(marks[at("end")].0, runtime, "{out}");
}
