//! docs/compat.md against the two command lines it describes: every command and flag of
//! `runc --help` and `hull --help` has a row, and each row's status is what the binaries show.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::RUNC;

const COMMANDS: &[&str] = &[
    "checkpoint",
    "create",
    "delete",
    "events",
    "exec",
    "features",
    "kill",
    "list",
    "pause",
    "ps",
    "restore",
    "resume",
    "run",
    "spec",
    "start",
    "state",
    "update",
];

fn help(bin: &Path, cmd: Option<&str>) -> String {
    let mut c = Command::new(bin);
    if let Some(cmd) = cmd {
        c.arg(cmd);
    }
    let out = c.arg("--help").output().unwrap_or_else(|e| {
        panic!("{} --help: {e}", bin.display());
    });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The long flag names in the options section of a help text (`--x` or, for a flag with
/// only a short form, `-x`); `--help` left out.
fn flags(help: &str, header: &str) -> BTreeSet<String> {
    let Some((_, section)) = help.split_once(header) else {
        return BTreeSet::new();
    };
    let mut found = BTreeSet::new();
    for line in section.lines() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('-') || trimmed.len() == line.len() {
            continue;
        }
        let spec = trimmed.split("  ").next().unwrap_or_default();
        let names: Vec<&str> = spec
            .split(',')
            .filter_map(|p| p.split_whitespace().next())
            .filter(|n| n.starts_with('-'))
            .collect();
        let name = names
            .iter()
            .find(|n| n.starts_with("--"))
            .or(names.first())
            .copied();
        if let Some(n) = name.filter(|n| *n != "--help") {
            found.insert(n.to_owned());
        }
    }
    found
}

/// The subcommands a help text lists.
fn commands(help: &str, header: &str) -> BTreeSet<String> {
    let Some((_, section)) = help.split_once(header) else {
        return BTreeSet::new();
    };
    section
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(|w| w.trim_end_matches(',').to_owned())
        .filter(|w| w != "help")
        .collect()
}

#[derive(Debug)]
struct Row {
    runc: String,
    hull: String,
}

/// (command tables rows by command, flag rows by (command, long flag)).
fn doc() -> (BTreeMap<String, Row>, BTreeMap<(String, String), Row>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/compat.md");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut cmds = BTreeMap::new();
    let mut flag_rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        let strip = |s: &str| {
            s.split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('`')
                .to_owned()
        };
        match cells.len() {
            4 => {
                cmds.insert(
                    strip(&cells[0]),
                    Row {
                        runc: cells[1].clone(),
                        hull: cells[2].clone(),
                    },
                );
            }
            5 => {
                let cmd = strip(&cells[0]);
                let key = (cmd, strip(&cells[1]));
                assert!(
                    !flag_rows.contains_key(&key),
                    "docs/compat.md lists {key:?} twice"
                );
                flag_rows.insert(
                    key,
                    Row {
                        runc: cells[2].clone(),
                        hull: cells[3].clone(),
                    },
                );
            }
            n => panic!("docs/compat.md: a row of {n} cells: {line}"),
        }
    }
    (cmds, flag_rows)
}

#[test]
fn compat_page_matches_runc_and_hull() {
    let hull = PathBuf::from(env!("CARGO_BIN_EXE_hull"));
    let runc = PathBuf::from(RUNC);
    assert!(
        runc.exists(),
        "{RUNC} is needed to check docs/compat.md (install Debian's runc package)"
    );
    let (cmd_rows, flag_rows) = doc();
    let mut problems = Vec::new();

    let in_runc = commands(&help(&runc, None), "COMMANDS:");
    let in_hull = commands(&help(&hull, None), "Commands:");
    for c in in_runc.union(&in_hull) {
        match cmd_rows.get(c) {
            None => problems.push(format!("command {c}: no row")),
            Some(r) => {
                if (r.runc == "yes") != in_runc.contains(c) {
                    problems.push(format!("command {c}: runc column says {}", r.runc));
                }
                if (r.hull != "no") != in_hull.contains(c) {
                    problems.push(format!("command {c}: hull column says {}", r.hull));
                }
            }
        }
    }
    for c in cmd_rows.keys() {
        if !in_runc.contains(c) && !in_hull.contains(c) {
            problems.push(format!("command {c}: a row, but neither runtime has it"));
        }
    }

    let mut scopes: Vec<Option<&str>> = vec![None];
    scopes.extend(COMMANDS.iter().map(|c| Some(*c)));
    let mut seen = BTreeSet::new();
    for scope in scopes {
        let name = scope.unwrap_or("(global)").to_owned();
        let runc_flags = flags(&help(&runc, scope), "OPTIONS:");
        let hull_flags = flags(&help(&hull, scope), "Options:");
        assert!(
            !hull_flags.is_empty() || scope.is_some(),
            "no hull flags parsed"
        );
        for f in runc_flags.union(&hull_flags) {
            let key = (name.clone(), f.clone());
            seen.insert(key.clone());
            match flag_rows.get(&key) {
                None => problems.push(format!("{name} {f}: no row")),
                Some(r) => {
                    if (r.runc == "yes") != runc_flags.contains(f) {
                        problems.push(format!("{name} {f}: runc column says {}", r.runc));
                    }
                    if (r.hull != "no") != hull_flags.contains(f) {
                        problems.push(format!("{name} {f}: hull column says {}", r.hull));
                    }
                }
            }
        }
    }
    for key in flag_rows.keys() {
        if !seen.contains(key) {
            problems.push(format!(
                "{} {}: a row, but neither runtime has it",
                key.0, key.1
            ));
        }
    }
    for (key, r) in &flag_rows {
        if !["yes", "parsed", "no"].contains(&r.hull.as_str()) {
            problems.push(format!("{} {}: unknown status {:?}", key.0, key.1, r.hull));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/compat.md is out of date:\n  {}",
        problems.join("\n  ")
    );
}
