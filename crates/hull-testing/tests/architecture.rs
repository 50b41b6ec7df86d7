//! Checks the claims docs/architecture.md makes that can be checked: the crate graph (each
//! crate's hull dependencies), which crates forbid `unsafe`, and that every libhull module
//! has its row in the module table.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn read_opt(rel: &str) -> Option<String> {
    std::fs::read_to_string(workspace().join(rel)).ok()
}

/// The rows of the markdown table that follows `marker`.
fn table_after(doc: &str, marker: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in the doc"));
    doc[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

fn names(cell: &str) -> Vec<String> {
    cell.split(',')
        .map(|n| n.trim().trim_matches('`').to_owned())
        .filter(|n| !n.is_empty() && n != "—")
        .collect()
}

/// The hull crates a manifest's `[dependencies]` (not dev) name.
fn hull_deps(manifest: &str) -> Vec<String> {
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if !in_deps {
            continue;
        }
        let name = line.split(['.', '=', ' ']).next().unwrap_or("");
        if name == "libhull" || name == "hull" || name.starts_with("hull-") {
            deps.push(name.to_owned());
        }
    }
    deps.sort();
    deps
}

const CRATE_GRAPH: &str =
    "<!-- crate graph, checked by crates/hull-testing/tests/architecture.rs -->";
const MODULE_LIST: &str =
    "<!-- module list, checked by crates/hull-testing/tests/architecture.rs -->";

#[test]
fn the_crate_graph_is_the_one_documented() {
    let doc = read("docs/architecture.md");
    let rows = table_after(&doc, CRATE_GRAPH);
    let root = read("Cargo.toml");
    let mut documented: Vec<String> = rows.iter().map(|r| names(&r[0])[0].clone()).collect();
    documented.sort();
    let mut members: Vec<String> = root
        .lines()
        .filter_map(|l| l.trim().strip_prefix("\"crates/"))
        .map(|l| l.trim_end_matches(['"', ',']).to_owned())
        .collect();
    members.sort();
    assert_eq!(
        documented, members,
        "the table's crates are the workspace's members"
    );
    for row in &rows {
        let krate = names(&row[0])[0].clone();
        let mut want = names(&row[1]);
        want.sort();
        let got = hull_deps(&read(&format!("crates/{krate}/Cargo.toml")));
        assert_eq!(got, want, "{krate}: hull dependencies");
    }
}

#[test]
fn crates_documented_without_unsafe_forbid_it() {
    let doc = read("docs/architecture.md");
    for row in table_after(&doc, CRATE_GRAPH) {
        let krate = names(&row[0])[0].clone();
        if row[2] != "forbidden" {
            continue;
        }
        let root = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|f| workspace().join("crates").join(&krate).join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{krate}: no lib.rs or main.rs"));
        let text = std::fs::read_to_string(&root).unwrap();
        assert!(
            text.contains("#![forbid(unsafe_code)]")
                || text.contains("#![cfg_attr(not(test), forbid(unsafe_code))]"),
            "{}: the doc says unsafe is forbidden, the crate does not say so",
            root.display()
        );
    }
}

#[test]
fn every_libhull_module_has_its_row() {
    let doc = read("docs/architecture.md");
    let rows: Vec<String> = table_after(&doc, MODULE_LIST)
        .iter()
        .map(|r| r[0].clone())
        .collect();
    let lib = read("crates/libhull/src/lib.rs");
    // Every module of the crate root, public or not.
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| {
            ["pub mod ", "pub(crate) mod ", "mod "]
                .iter()
                .find_map(|p| l.strip_prefix(p))
        })
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(modules.len() > 10, "{modules:?}");
    for m in &modules {
        assert!(
            rows.iter().any(|r| r == &format!("`{m}`")),
            "libhull::{m} has no row in docs/architecture.md's module table"
        );
    }
    // And every row names a module that exists: one of those, a submodule of one (with its
    // file), or a crate of the workspace.
    for row in &rows {
        let name = row.trim_matches('`');
        let known = if let Some(krate) = name.strip_suffix("` (crate)") {
            read_opt(&format!("crates/{krate}/Cargo.toml")).is_some()
        } else if let Some((parent, child)) = name.split_once("::") {
            modules.contains(&parent)
                && (read_opt(&format!("crates/libhull/src/{parent}/{child}.rs")).is_some()
                    || read_opt(&format!("crates/libhull/src/{parent}/{child}/mod.rs")).is_some())
        } else {
            modules.contains(&name)
        };
        assert!(
            known,
            "docs/architecture.md's module table names {row}, which does not exist"
        );
    }
}
