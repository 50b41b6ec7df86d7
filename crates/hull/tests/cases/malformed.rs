//! Malformed config.json files: a corpus of hand-made ones (truncated, wrong types, huge and
//! negative values, deep nesting, NUL bytes, absurd mount options, bad names) and a property
//! test that mutates a valid busybox config at random. Every `create` either fails with exit
//! status 1 and one line naming the field or file (on stderr, and as one JSON object in a
//! `--log-format json` log), never a panic, or, for a random config that happens to be valid,
//! succeeds and deletes cleanly. Either way nothing is left: no state dir, mount, cgroup or
//! process.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{base_config, cgroup_hierarchies, Out, Test};

/// What a case may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Refused, with one of the needles in the message.
    Refused,
    /// Refused as above, or accepted (then deleted, leaving nothing): inputs that are odd
    /// but that a runtime may handle safely.
    RefusedOrClean,
}

/// Cgroup directories a container `id` with no `linux.cgroupsPath` would get, that exist:
/// `<own cgroup>/<id>` (v1), `<parent of own>/<id>` (cgroup2), `/<id>`.
pub(super) fn cgroups_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for h in cgroup_hierarchies() {
        let own = h.mount.join(h.own.trim_start_matches('/'));
        let mut candidates = vec![own.join(id), h.mount.join(id)];
        if let Some(parent) = own.parent() {
            candidates.push(parent.join(id));
        }
        for c in candidates {
            if c.is_dir() && !found.contains(&c) {
                found.push(c);
            }
        }
    }
    found
}

/// Asserts a failed or deleted container `id` left nothing behind.
#[track_caller]
fn assert_clean(t: &Test, id: &str, what: &str) {
    let state = t.root.join(id);
    assert!(
        !state.exists(),
        "{what}: state dir {} left",
        state.display()
    );
    let mounts = t.mounts_left();
    assert!(mounts.is_empty(), "{what}: mounts left: {mounts:?}");
    let cgroups = cgroups_named(id);
    assert!(cgroups.is_empty(), "{what}: cgroups left: {cgroups:?}");
    let procs = t.wait_no_processes(id, Duration::from_secs(3));
    assert!(procs.is_empty(), "{what}: processes left: {procs:?}");
}

/// Checks a refusal: status 1, one line, no panic, one of `needles` named.
#[track_caller]
fn assert_one_line_refusal(what: &str, out: &Out, text: &str, needles: &[&str]) {
    assert!(
        !out.timed_out && out.code == 1,
        "{what}: expected exit status 1:\n{out}"
    );
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "{what}: panic:\n{out}"
    );
    let lines = text.trim_end().lines().count();
    assert_eq!(lines, 1, "{what}: expected one line:\n{text}\n{out}");
    assert!(
        needles.iter().any(|n| text.contains(n)),
        "{what}: expected one of {needles:?} in the message:\n{text}"
    );
}

/// Runs `create` of a fresh id on the bundle whose config.json is `body`, with the error on
/// stderr and then with a JSON log, and checks the outcome. Returns whether it succeeded.
#[track_caller]
fn check_create(t: &Test, what: &str, body: &[u8], needles: &[&str], expect: Expect) -> bool {
    fs::write(t.bundle.join("config.json"), body).unwrap();
    let bundle = t.bundle_str();
    for json_log in [false, true] {
        let id = t.new_id();
        let log = t.dir.join(format!("{id}.log"));
        let log_s = log.to_string_lossy().into_owned();
        let mut args: Vec<&str> = Vec::new();
        if json_log {
            args.extend(["--log", &log_s, "--log-format", "json"]);
        }
        args.extend(["create", "--bundle", &bundle, &id]);
        let out = t.hull(&args);
        let what = format!("{what} ({})", if json_log { "json log" } else { "stderr" });
        if out.success() {
            // Cleaned up first, so that a wrong acceptance leaves nothing for later cases.
            println!("{what}: accepted");
            t.hull(&["delete", "--force", &id]).ok();
            assert_clean(t, &id, &what);
            assert_eq!(
                expect,
                Expect::RefusedOrClean,
                "{what}: create succeeded:\n{out}"
            );
            return true;
        }
        assert_one_line_refusal(&what, &out, &out.stderr, needles);
        if json_log {
            let text = fs::read_to_string(&log).unwrap_or_default();
            assert_one_line_refusal(&what, &out, &text, needles);
            let entry: Value = serde_json::from_str(text.trim_end())
                .unwrap_or_else(|e| panic!("{what}: log line is not JSON ({e}): {text}"));
            assert_eq!(entry["level"], "error", "{what}: {text}");
            let msg = entry["msg"].as_str().unwrap_or_default();
            assert!(
                needles.iter().any(|n| msg.contains(n)),
                "{what}: msg lacks {needles:?}: {text}"
            );
        }
        assert_clean(t, &id, &what);
    }
    false
}

/// The base config (busybox `true`) changed by `edit`, refused naming one of `needles`.
#[track_caller]
fn refused(name: &str, edit: impl FnOnce(&mut Value), needles: &[&str]) {
    edited(name, edit, needles, Expect::Refused);
}

#[track_caller]
fn edited(name: &str, edit: impl FnOnce(&mut Value), needles: &[&str], expect: Expect) {
    let t = Test::new(name);
    let mut c = base_config();
    edit(&mut c);
    let body = serde_json::to_vec(&c).unwrap();
    check_create(&t, name, &body, needles, expect);
}

/// A config.json of raw bytes, refused naming one of `needles`.
#[track_caller]
fn refused_raw(name: &str, body: &[u8], needles: &[&str]) {
    let t = Test::new(name);
    check_create(&t, name, body, needles, Expect::Refused);
}

fn base_text() -> String {
    serde_json::to_string_pretty(&base_config()).unwrap()
}

// --- not JSON, or not the right JSON ---------------------------------------------------------

#[test]
fn truncated_json() {
    let text = base_text();
    refused_raw(
        "mf_truncated",
        &text.as_bytes()[..text.len() / 2],
        &["config.json"],
    );
}

#[test]
fn empty_file() {
    refused_raw("mf_empty", b"", &["config.json"]);
}

#[test]
fn not_json_at_all() {
    refused_raw("mf_not_json", b"ociVersion: 1.0.2\n", &["config.json"]);
}

#[test]
fn a_top_level_array() {
    refused_raw("mf_array", b"[]", &["config.json"]);
}

#[test]
fn trailing_garbage() {
    let mut text = base_text();
    text.push_str("\n}{\"x\":1}");
    refused_raw("mf_trailing", text.as_bytes(), &["config.json"]);
}

#[test]
fn non_utf8_bytes_in_a_string() {
    let text = base_text().replace("hull-test", "hull-\u{1}test");
    let mut body = text.into_bytes();
    let at = body.iter().position(|b| *b == 1).unwrap();
    body.splice(at..=at, [0xff, 0xfe]);
    refused_raw("mf_non_utf8", &body, &["config.json", "hostname"]);
}

#[test]
fn a_lone_surrogate_escape_in_args() {
    let text = base_text().replace("\"true\"", "\"tr\\ud800ue\"");
    refused_raw(
        "mf_surrogate",
        text.as_bytes(),
        &["config.json", "process.args"],
    );
}

#[test]
fn deep_nesting_in_an_annotation_value() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let text = base_text().replacen('{', &format!("{{\"annotations\": {{\"a\": {deep}}},"), 1);
    refused_raw("mf_deep_annotation", text.as_bytes(), &["annotations"]);
}

/// An unknown field is skipped however deep it is (serde_json skips it without recursing;
/// Go's decoder, and so runc, refuses past depth 10000): refused or accepted, nothing breaks.
#[test]
fn deep_nesting_in_an_unknown_field() {
    let t = Test::new("mf_deep_unknown");
    let arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let objects = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    each([arrays, objects], |deep| {
        let text = base_text().replacen('{', &format!("{{\"x-unknown\": {deep},"), 1);
        check_create(
            &t,
            "deep x-unknown",
            text.as_bytes(),
            &["config.json", "x-unknown"],
            Expect::RefusedOrClean,
        );
    });
}

// --- wrong types -----------------------------------------------------------------------------

#[test]
fn wrong_types_at_many_fields() {
    let cases: &[(&str, &[&str], Value)] = &[
        ("ociVersion", &["ociVersion"], json!(1)),
        ("process", &["process"], json!("sh")),
        ("process.args", &["process.args"], json!("true")),
        ("process.args.0", &["process.args"], json!(1)),
        ("process.env", &["process.env"], json!({"A": "b"})),
        ("process.cwd", &["process.cwd"], json!(5)),
        ("process.terminal", &["process.terminal"], json!("yes")),
        ("process.user", &["process.user"], json!("root")),
        ("process.user.uid", &["process.user.uid"], json!("0")),
        ("process.user.gid", &["process.user.gid"], json!(1.5)),
        (
            "process.user.additionalGids",
            &["process.user.additionalGids"],
            json!(7),
        ),
        (
            "process.capabilities.bounding",
            &["process.capabilities.bounding"],
            json!("CAP_KILL"),
        ),
        ("process.rlimits", &["process.rlimits"], json!({})),
        (
            "process.rlimits.0.hard",
            &["process.rlimits"],
            json!("1024"),
        ),
        (
            "process.noNewPrivileges",
            &["process.noNewPrivileges"],
            json!(1),
        ),
        ("process.oomScoreAdj", &["process.oomScoreAdj"], json!("0")),
        ("root", &["root"], json!([])),
        ("root.path", &["root.path"], json!(5)),
        ("root.readonly", &["root.readonly"], json!("no")),
        ("hostname", &["hostname"], json!(5)),
        ("mounts", &["mounts"], json!({})),
        ("mounts.0", &["mounts"], json!("proc")),
        ("mounts.0.destination", &["mounts[0].destination"], json!(1)),
        ("mounts.1.options", &["mounts[1].options"], json!("ro")),
        ("mounts.1.options.0", &["mounts[1].options"], json!(null)),
        ("linux", &["linux"], json!(true)),
        ("linux.namespaces", &["linux.namespaces"], json!("pid")),
        ("linux.namespaces.0.type", &["linux.namespaces"], json!(5)),
        ("linux.maskedPaths", &["linux.maskedPaths"], json!("/proc")),
        ("linux.readonlyPaths.0", &["linux.readonlyPaths"], json!([])),
        ("linux.resources", &["linux.resources"], json!(1)),
        (
            "linux.resources.devices.0.allow",
            &["linux.resources.devices"],
            json!("no"),
        ),
        ("linux.cgroupsPath", &["linux.cgroupsPath"], json!(5)),
        ("annotations", &["annotations"], json!(["a"])),
        ("hooks", &["hooks"], json!("x")),
    ];
    let t = Test::new("mf_types");
    each(cases, |(path, needles, value)| {
        let mut c = base_config();
        // Fields the base config lacks are added where the path leads.
        set_path(&mut c, path, value.clone());
        let body = serde_json::to_vec(&c).unwrap();
        check_create(&t, path, &body, needles, Expect::Refused);
    });
}

/// Sets the value at a dotted path (array indices as numbers), creating objects on the way.
fn set_path(c: &mut Value, path: &str, value: Value) {
    let mut at = c;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let next = match part.parse::<usize>() {
            Ok(n) => &mut at[n],
            Err(_) => {
                if at.get(*part).is_none() {
                    at[*part] = json!({});
                }
                &mut at[*part]
            }
        };
        if last {
            *next = value;
            return;
        }
        at = next;
    }
}

// --- huge, negative and overflowing numbers ----------------------------------------------------

#[test]
fn numbers_out_of_range() {
    let cases: &[(&str, &[&str], Value)] = &[
        ("process.user.uid", &["process.user.uid"], json!(-1)),
        (
            "process.user.uid",
            &["process.user.uid"],
            json!(4294967296u64),
        ),
        ("process.user.gid", &["process.user.gid"], json!(-1)),
        (
            "process.user.additionalGids",
            &["process.user.additionalGids"],
            json!([-5]),
        ),
        ("process.rlimits.0.hard", &["process.rlimits"], json!(-1)),
        ("process.rlimits.0.soft", &["process.rlimits"], json!(1e30)),
        (
            "process.oomScoreAdj",
            &["process.oomScoreAdj"],
            json!(2147483648u64),
        ),
        (
            "process.oomScoreAdj",
            &["process.oomScoreAdj"],
            json!(100_000),
        ),
        (
            "process.consoleSize.height",
            &["process.consoleSize"],
            json!(-1),
        ),
        (
            "linux.resources.memory.limit",
            &["linux.resources.memory"],
            json!("1g"),
        ),
        (
            "linux.resources.pids.limit",
            &["linux.resources.pids"],
            json!(18446744073709551615u64),
        ),
    ];
    let t = Test::new("mf_numbers");
    each(cases, |(path, needles, value)| {
        let mut c = base_config();
        set_path(&mut c, path, value.clone());
        let body = serde_json::to_vec(&c).unwrap();
        check_create(
            &t,
            &format!("{path}={value}"),
            &body,
            needles,
            Expect::Refused,
        );
    });
}

/// Numbers serde_json's `Value` cannot hold (above u64::MAX, below i64::MIN, beyond f64),
/// written into the text by hand.
#[test]
fn numbers_serde_cannot_hold() {
    let t = Test::new("mf_big_numbers");
    let base = base_text();
    let cases: &[(&str, String, &[&str])] = &[
        (
            "rlimit above u64::MAX",
            base.replace("\"hard\": 1024", "\"hard\": 18446744073709551616"),
            &["process.rlimits"],
        ),
        (
            "oomScoreAdj -1e400",
            base.replacen(
                "\"terminal\": false",
                "\"terminal\": false, \"oomScoreAdj\": -1e400",
                1,
            ),
            &["process.oomScoreAdj", "config.json"],
        ),
        (
            "memory limit 1e400",
            base.replacen(
                "\"resources\": {",
                "\"resources\": { \"memory\": { \"limit\": 1e400 },",
                1,
            ),
            &["linux.resources.memory", "config.json"],
        ),
        (
            "cpu quota below i64::MIN",
            base.replacen(
                "\"resources\": {",
                "\"resources\": { \"cpu\": { \"quota\": -9223372036854775809 },",
                1,
            ),
            &["linux.resources.cpu"],
        ),
    ];
    each(cases, |(what, text, needles)| {
        check_create(&t, what, text.as_bytes(), needles, Expect::Refused);
    });
}

/// Runs `check` on every case, and fails at the end listing every case that failed (each
/// failure's message is printed as it happens).
fn each<T>(cases: impl IntoIterator<Item = T>, mut check: impl FnMut(T)) {
    let mut failed = 0;
    let mut total = 0;
    for case in cases {
        total += 1;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(case)));
        if run.is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "{failed} of {total} cases failed (see above)");
}

#[test]
fn rlimits_at_u64_max_are_refused_naming_the_rlimit() {
    // Raising the hard NOFILE limit past the kernel's nr_open fails (and this host lacks
    // CAP_SYS_RESOURCE anyway).
    refused(
        "mf_rlimit_max",
        |c| {
            c["process"]["rlimits"] = json!([{
                "type": "RLIMIT_NOFILE", "hard": u64::MAX, "soft": u64::MAX
            }])
        },
        &["RLIMIT_NOFILE"],
    );
}

#[test]
fn the_largest_uid_is_refused_not_taken_as_no_change() {
    // setresuid(-1, -1, -1) changes nothing: a uid of 4294967295 must not leave the process
    // running as root.
    for field in ["uid", "gid"] {
        refused(
            &format!("mf_max_{field}"),
            |c| c["process"]["user"][field] = json!(u32::MAX),
            &[&format!("process.user.{field}"), &format!("{}", u32::MAX)],
        );
    }
}

#[test]
fn the_largest_additional_gid_is_refused() {
    refused(
        "mf_max_additional_gid",
        |c| c["process"]["user"]["additionalGids"] = json!([u32::MAX]),
        &["additionalGids", "4294967295"],
    );
}

#[test]
fn a_hundred_thousand_mounts_with_a_bad_last_one() {
    let t = Test::new("mf_many_mounts");
    let mut c = base_config();
    let mounts = c["mounts"].as_array_mut().unwrap();
    for _ in 0..100_000 {
        mounts.push(json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs" }));
    }
    mounts.push(json!({ "destination": "relative", "type": "tmpfs", "source": "tmpfs" }));
    let n = mounts.len() - 1;
    let body = serde_json::to_vec(&c).unwrap();
    let started = std::time::Instant::now();
    check_create(
        &t,
        "100k mounts",
        &body,
        &[&format!("mounts[{n}]"), "relative"],
        Expect::Refused,
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_hostname_longer_than_the_kernel_takes() {
    refused(
        "mf_long_hostname",
        |c| c["hostname"] = json!("h".repeat(100)),
        &["hostname"],
    );
}

#[test]
fn a_megabyte_hostname() {
    refused(
        "mf_huge_hostname",
        |c| c["hostname"] = json!("h".repeat(1 << 20)),
        &["hostname"],
    );
}

// --- NUL bytes ---------------------------------------------------------------------------------

/// A config with a NUL byte somewhere, the field that holds it, and what else identifies the
/// entry in a message from the init: the value up to its NUL (escaped differently on stderr
/// and in the JSON log), or the mount's destination.
type NulCase = (&'static str, &'static str, fn(&mut Value));

fn nul_cases() -> Vec<NulCase> {
    vec![
        ("root.path", "rootfs-nul", |c| {
            c["root"]["path"] = json!("rootfs-nul\0x")
        }),
        ("mounts[7].destination", "/mnt/nul-dest", |c| {
            c["mounts"].as_array_mut().unwrap().push(
                json!({ "destination": "/mnt/nul-dest\0/x", "type": "tmpfs", "source": "tmpfs" }),
            )
        }),
        ("mounts[7].source", "/tmp/nul-source", |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/mnt", "type": "bind", "source": "/tmp/nul-source\0x",
                "options": ["rbind"]
            }))
        }),
        ("mounts[1].options", "tmpfs at /dev", |c| {
            c["mounts"][1]["options"] = json!(["mode=755\0,size=1k"])
        }),
        ("process.cwd", "/tmp/nul-cwd", |c| {
            c["process"]["cwd"] = json!("/tmp/nul-cwd\0/x")
        }),
        ("process.args", "nul-arg", |c| {
            c["process"]["args"] = json!(["echo", "nul-arg\0b"])
        }),
        ("process.args", "nul-exe", |c| {
            c["process"]["args"] = json!(["nul-exe\0"])
        }),
        ("process.env", "NUL_ENV", |c| {
            c["process"]["env"] = json!(["NUL_ENV=b\0c"])
        }),
        ("linux.maskedPaths[0]", "/proc/nul-masked", |c| {
            c["linux"]["maskedPaths"] = json!(["/proc/nul-masked\0x"])
        }),
        ("linux.readonlyPaths[0]", "/proc/nul-ro", |c| {
            c["linux"]["readonlyPaths"] = json!(["/proc/nul-ro\0x"])
        }),
        ("linux.namespaces[1]", "/proc/1/ns/nul-ns", |c| {
            c["linux"]["namespaces"][1] =
                json!({ "type": "network", "path": "/proc/1/ns/nul-ns\0net" })
        }),
        ("linux.devices[0]", "/dev/nul-device", |c| {
            c["linux"]["devices"] =
                json!([{ "path": "/dev/nul-device\0x", "type": "c", "major": 1, "minor": 3 }])
        }),
        ("linux.sysctl", "net.ipv4.nul_sysctl", |c| {
            c["linux"]["sysctl"] = json!({ "net.ipv4.nul_sysctl\0x": "1" })
        }),
    ]
}

#[test]
fn nul_bytes_fail_in_one_line_naming_the_field_or_value_and_leave_nothing() {
    let t = Test::new("mf_nul");
    each(nul_cases(), |(field, value, edit)| {
        let mut c = base_config();
        edit(&mut c);
        let body = serde_json::to_vec(&c).unwrap();
        check_create(&t, field, &body, &[field, value], Expect::Refused);
    });
}

#[test]
fn nul_bytes_are_refused_naming_the_field() {
    let t = Test::new("mf_nul_strict");
    each(nul_cases(), |(field, _, edit)| {
        let mut c = base_config();
        edit(&mut c);
        let body = serde_json::to_vec(&c).unwrap();
        check_create(&t, field, &body, &[field], Expect::Refused);
    });
}

#[test]
fn nul_in_a_hostname_is_harmless() {
    // The kernel takes the bytes as given (runc passes them on as well); uname shows "a".
    edited(
        "mf_nul_hostname",
        |c| c["hostname"] = json!("a\0b"),
        &["hostname"],
        Expect::RefusedOrClean,
    );
}

// --- absurd mount options and types ------------------------------------------------------------

#[test]
fn absurd_mount_options() {
    let cases: Vec<(&str, Value)> = vec![
        ("negative size", json!(["size=-1"])),
        ("unknown option", json!(["nosuid", "no-such-option=1"])),
        ("mode not a number", json!(["mode=abc"])),
        ("huge size", json!(["size=99999999999999999999999T"])),
        ("ten thousand options", json!(vec!["nosuid"; 10_000])),
        (
            "a 100 KiB option",
            json!([format!("x={}", "y".repeat(100 * 1024))]),
        ),
        ("empty option", json!(["", ""])),
    ];
    let t = Test::new("mf_mount_opts");
    each(cases, |(what, options)| {
        let mut c = base_config();
        c["mounts"].as_array_mut().unwrap().push(
            json!({ "destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                          "options": options }),
        );
        let body = serde_json::to_vec(&c).unwrap();
        check_create(
            &t,
            what,
            &body,
            &["mounts[7]", "/mnt"],
            Expect::RefusedOrClean,
        );
    });
}

#[test]
fn an_unknown_filesystem_type() {
    refused(
        "mf_unknown_fs",
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "destination": "/mnt", "type": "nosuchfs", "source": "none" }))
        },
        &["mounts[7]", "/mnt"],
    );
}

#[test]
fn an_empty_mount_destination() {
    refused(
        "mf_empty_dest",
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "destination": "", "type": "tmpfs", "source": "tmpfs" }))
        },
        &["mounts[7].destination"],
    );
}

// --- bad names -----------------------------------------------------------------------------------

#[test]
fn invalid_namespace_types() {
    let t = Test::new("mf_ns_types");
    each(["bogus", "", "NET", "net ", "mount\0"], |ty| {
        let mut c = base_config();
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": ty }));
        let body = serde_json::to_vec(&c).unwrap();
        check_create(
            &t,
            &format!("namespace {ty:?}"),
            &body,
            &["linux.namespaces"],
            Expect::Refused,
        );
    });
}

#[test]
fn a_missing_namespace_path() {
    refused(
        "mf_ns_missing",
        |c| c["linux"]["namespaces"][1] = json!({ "type": "network", "path": "/nonexistent/net" }),
        &["/nonexistent/net"],
    );
}

#[test]
fn empty_strings_where_required() {
    let cases: &[(&str, &[&str])] = &[
        ("ociVersion", &["ociVersion"]),
        ("root.path", &["root.path"]),
        ("process.cwd", &["process.cwd"]),
        (
            "process.args.0",
            &["process.args", "executable file not found"],
        ),
        ("linux.namespaces.0.type", &["linux.namespaces"]),
        ("process.rlimits.0.type", &["process.rlimits"]),
        ("process.capabilities.bounding.0", &["process.capabilities"]),
        ("process.env.0", &["process.env"]),
    ];
    let t = Test::new("mf_empty_strings");
    each(cases, |(path, needles)| {
        let mut c = base_config();
        set_path(&mut c, path, json!(""));
        let body = serde_json::to_vec(&c).unwrap();
        check_create(&t, &format!("{path}=\"\""), &body, needles, Expect::Refused);
    });
}

#[test]
fn empty_args() {
    refused(
        "mf_no_args",
        |c| c["process"]["args"] = json!([]),
        &["process.args"],
    );
}

#[test]
fn unknown_device_types() {
    let t = Test::new("mf_dev_types");
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "linux.devices type q",
            json!({"linux": {"devices": [
                { "path": "/dev/x", "type": "q", "major": 1, "minor": 3 }]}}),
            &["linux.devices[0]"],
        ),
        (
            "linux.devices type empty",
            json!({"linux": {"devices": [
                { "path": "/dev/x", "type": "", "major": 1, "minor": 3 }]}}),
            &["linux.devices[0]"],
        ),
        (
            "linux.devices negative major",
            json!({"linux": {"devices": [
                { "path": "/dev/x", "type": "c", "major": -1, "minor": 3 }]}}),
            // Named by its path, from the init.
            &["linux.devices[0]", "/dev/x"],
        ),
        (
            "linux.devices relative path",
            json!({"linux": {"devices": [
                { "path": "dev/x", "type": "c", "major": 1, "minor": 3 }]}}),
            &["linux.devices[0]"],
        ),
        (
            "linux.resources.devices type q",
            json!({"linux": {"resources": {"devices": [
                { "allow": false, "access": "rwm" },
                { "allow": true, "type": "q", "major": 1, "minor": 3, "access": "rwm" }]}}}),
            &["linux.resources.devices[1]"],
        ),
        (
            "linux.resources.devices access xyz",
            json!({"linux": {"resources": {"devices": [
                { "allow": false, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "xyz" }]}}}),
            &["linux.resources.devices[1]", "xyz"],
        ),
    ];
    each(cases, |(what, patch, needles)| {
        let mut c = base_config();
        merge(&mut c, &patch);
        let body = serde_json::to_vec(&c).unwrap();
        check_create(&t, what, &body, needles, Expect::Refused);
    });
}

/// Lays `patch`'s objects over `c`'s (arrays and scalars replace).
fn merge(c: &mut Value, patch: &Value) {
    match (c, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (c, p) => *c = p.clone(),
    }
}

#[test]
fn dot_dot_in_sysctl_names() {
    // Aimed at the container's own UTS namespace (kernel.domainname), in case one got through.
    let t = Test::new("mf_sysctl_dots");
    let keys = [
        "net.ipv4..ip_forward",
        "net/../kernel/domainname",
        "net.ipv4.conf.all/../../../kernel/domainname",
        "..",
        "net.",
        "",
    ];
    each(keys, |key| {
        let mut c = base_config();
        c["linux"]["sysctl"] = json!({ key: "hull-escaped" });
        let body = serde_json::to_vec(&c).unwrap();
        check_create(
            &t,
            &format!("sysctl {key:?}"),
            &body,
            &["sysctl", "linux.sysctl"],
            Expect::Refused,
        );
    });
}

#[test]
fn dot_dot_in_masked_and_readonly_paths() {
    // Either refused, or the mask lands inside the container (its own mount namespace), and
    // nothing is left on the host.
    let t = Test::new("mf_masked_dots");
    each(["maskedPaths", "readonlyPaths"], |field| {
        for p in ["/proc/../../../../tmp", "/../../..", "/proc/.."] {
            let mut c = base_config();
            c["linux"][field] = json!([p]);
            let body = serde_json::to_vec(&c).unwrap();
            check_create(
                &t,
                &format!("{field} {p:?}"),
                &body,
                &[&format!("linux.{field}[0]")],
                Expect::RefusedOrClean,
            );
        }
    });
}

#[test]
fn unknown_enum_values() {
    let cases: &[(&str, &[&str], Value)] = &[
        (
            "process.rlimits.0.type",
            &["process.rlimits"],
            json!("RLIMIT_BOGUS"),
        ),
        (
            "process.ioPriority",
            &["process.ioPriority"],
            json!({ "class": "IOPRIO_CLASS_BOGUS", "priority": 1 }),
        ),
        (
            "process.scheduler",
            &["process.scheduler"],
            json!({ "policy": "SCHED_BOGUS" }),
        ),
        (
            "linux.personality",
            &["linux.personality"],
            json!({ "domain": "LINUX_BOGUS" }),
        ),
        (
            "linux.rootfsPropagation",
            &["linux.rootfsPropagation"],
            json!("sideways"),
        ),
        (
            "linux.seccomp",
            &["linux.seccomp"],
            json!({ "defaultAction": "SCMP_ACT_BOGUS" }),
        ),
        (
            "linux.seccomp",
            &["linux.seccomp", "SCMP_ARCH_BOGUS"],
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"] }),
        ),
        (
            "linux.timeOffsets",
            &["linux.timeOffsets"],
            json!({ "monotonic": { "secs": 1 } }),
        ),
        (
            "hooks.prestart",
            &["hooks.prestart[0]"],
            json!([{ "path": "relative/hook" }]),
        ),
        (
            "hooks.createRuntime",
            &["hooks.createRuntime[0]"],
            json!([{ "path": "/bin/true", "timeout": -1 }]),
        ),
    ];
    let t = Test::new("mf_enums");
    each(cases, |(path, needles, value)| {
        let mut c = base_config();
        set_path(&mut c, path, value.clone());
        let body = serde_json::to_vec(&c).unwrap();
        check_create(
            &t,
            &format!("{path}={value}"),
            &body,
            needles,
            Expect::Refused,
        );
    });
}

/// Five megabytes of arguments parse, and fail (E2BIG) no earlier than exec at start.
#[test]
fn a_five_megabyte_argument_list() {
    edited(
        "mf_huge_args",
        |c| {
            let mut args = vec!["true".to_string()];
            args.extend(vec!["x".repeat(1000); 5000]);
            c["process"]["args"] = json!(args);
        },
        &["process.args", "argument list too long"],
        Expect::RefusedOrClean,
    );
}

// --- property test: random mutations of a valid config -----------------------------------------

/// A small deterministic PRNG (SplitMix64), so a failing case can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values to drop in: wrong types, edge numbers, odd strings. None names a host path a
/// container could harm, and none is a namespace path (see `safe`).
fn weird_value(rng: &mut Rng) -> Value {
    let deep = (0..rng.below(200)).fold(json!(1), |v, _| json!([v]));
    let pool = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(u32::MAX),
        json!(4294967296u64),
        json!(1.5),
        json!(-0.0),
        json!(""),
        json!(" "),
        json!(".."),
        json!("/"),
        json!("/.."),
        json!("relative"),
        json!("a\0b"),
        json!("/tmp/\0"),
        json!("\u{ff}\u{fe}"),
        json!("x".repeat(5000)),
        json!("ro"),
        json!("rbind"),
        json!("size=-1"),
        json!("RLIMIT_BOGUS"),
        json!("CAP_BOGUS"),
        json!("bogus"),
        json!([]),
        json!({}),
        json!([""]),
        json!(["a\0b"]),
        json!([null]),
        json!({ "a": "b" }),
        deep,
    ];
    rng.pick(&pool).clone()
}

/// Every (path, value) of `v`, parents before children.
fn paths(v: &Value, at: Vec<PathPart>, out: &mut Vec<Vec<PathPart>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let mut p = at.clone();
                p.push(PathPart::Key(k.clone()));
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = at.clone();
                p.push(PathPart::Index(i));
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathPart {
    Key(String),
    Index(usize),
}

fn get_mut<'a>(v: &'a mut Value, path: &[PathPart]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, p| match p {
        PathPart::Key(k) => v.get_mut(k.as_str()),
        PathPart::Index(i) => v.get_mut(*i),
    })
}

/// One to three random edits of the base config: replace a value, remove a key or element,
/// duplicate an element, or add an unknown key.
fn mutate(rng: &mut Rng) -> Value {
    let mut c = base_config();
    for _ in 0..1 + rng.below(3) {
        let mut all = Vec::new();
        paths(&c, Vec::new(), &mut all);
        let path = rng.pick(&all[1..]).clone();
        let (parent_path, last) = path.split_at(path.len() - 1);
        let op = rng.below(10);
        let value = weird_value(rng);
        let Some(parent) = get_mut(&mut c, parent_path) else {
            continue;
        };
        match (&last[0], parent) {
            (PathPart::Key(k), Value::Object(m)) if op == 0 => {
                m.remove(k);
            }
            (PathPart::Key(_), Value::Object(m)) if op == 1 => {
                m.insert(format!("x-fuzz-{}", rng.below(100)), value);
            }
            (PathPart::Index(i), Value::Array(a)) if op == 0 => {
                a.remove(*i);
            }
            (PathPart::Index(i), Value::Array(a)) if op == 1 => {
                let dup = a[*i].clone();
                a.push(dup);
            }
            (PathPart::Key(k), Value::Object(m)) => {
                m.insert(k.clone(), value);
            }
            (PathPart::Index(i), Value::Array(a)) => {
                a[*i] = value;
            }
            _ => {}
        }
    }
    c
}

/// Whether a mutated config is safe to run on this host. It must keep its private mount
/// namespace, join no namespace by path, and keep the default cgroup named after the id; its
/// rootfs and mount sources must not be absolute (the host's `/` bound in as a container's
/// `/dev` would get device nodes). Configs that cannot parse are safe whatever they hold.
fn safe(c: &Value) -> bool {
    let Some(linux) = c.get("linux").and_then(Value::as_object) else {
        return true;
    };
    let keeps_mount_ns = match linux.get("namespaces") {
        Some(Value::Array(list)) => {
            list.iter().any(|n| n == &json!({ "type": "mount" }))
                && list.iter().all(|n| n.get("path").is_none())
        }
        // No list at all: no namespaces.
        None | Some(Value::Null) => false,
        Some(_) => true,
    };
    let absolute = |v: &Value| v.as_str().is_some_and(|s| s.starts_with('/'));
    let root_inside = !absolute(&c["root"]["path"]);
    let sources_inside = match c.get("mounts").and_then(Value::as_array) {
        Some(ms) => ms.iter().all(|m| !absolute(&m["source"])),
        None => true,
    };
    keeps_mount_ns && !linux.contains_key("cgroupsPath") && root_inside && sources_inside
}

#[test]
fn random_mutations_of_a_valid_config_never_panic_and_leave_nothing() {
    let seed: u64 = std::env::var("HULL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_F00D);
    let cases: usize = std::env::var("HULL_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let t = Test::new("mf_fuzz");
    let mut rng = Rng(seed);
    let (mut accepted, mut refused) = (0, 0);
    let mut failed = Vec::new();
    let mut done = 0;
    while done < cases {
        let case_seed = rng.next();
        let mut case_rng = Rng(case_seed);
        let c = mutate(&mut case_rng);
        if !safe(&c) {
            continue;
        }
        done += 1;
        let body = serde_json::to_vec(&c).unwrap();
        let what = format!("case {done} (HULL_FUZZ_SEED={seed}, case seed {case_seed})");
        // A random config has no particular field to name: any one-line error will do.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_create(&t, &what, &body, &[""], Expect::RefusedOrClean)
        }));
        match run {
            Ok(true) => accepted += 1,
            Ok(false) => refused += 1,
            Err(_) => {
                println!(
                    "failing config of {what}: {}",
                    String::from_utf8_lossy(&body)
                );
                failed.push(what);
            }
        }
    }
    println!(
        "{accepted} accepted, {refused} refused, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "failed: {failed:#?}");
}
