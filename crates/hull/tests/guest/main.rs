//! Guest tests: what only a stock modern host can show — a unified cgroup v2 hierarchy with
//! every controller, systemd as PID 1, AppArmor, a distribution kernel. They run inside the Debian 12 guest of the
//! VM test layer (`tests/vm/guest-tests.sh`, which CI runs after the host tests), not in
//! `cargo test --workspace`: this target has `test = false`. On any other host every test
//! fails at its first line, naming what is missing, instead of passing by skipping.

#[path = "../util/mod.rs"]
#[allow(unused_imports)]
mod util;

mod apparmor;
mod cgroup_v2;
mod criu;
mod sealed;
mod systemd;
mod systemd_hybrid;
mod systemd_user;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use util::{unified_hierarchy, CgHierarchy};

/// Under emulation (TCG) a container start takes about a second: waits for what a container
/// does get this long.
pub const SLOW: Duration = Duration::from_secs(30);

/// The host's cgroup2 hierarchy, checked to be the whole of a unified host: mounted at
/// /sys/fs/cgroup with no v1 hierarchy beside it, with the controllers the tests use.
#[track_caller]
pub fn unified() -> CgHierarchy {
    let fstype = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    let h = unified_hierarchy();
    match h {
        Some(h) if fstype && util::cgroup_hierarchies().len() == 1 => {
            let have = fs::read_to_string(h.mount.join("cgroup.controllers")).unwrap_or_default();
            for c in ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"] {
                assert!(
                    have.split_whitespace().any(|x| x == c),
                    "the cgroup2 root lacks the {c} controller ({have:?}): not the guest's host"
                );
            }
            h
        }
        _ => panic!(
            "not a unified cgroup v2 host (/sys/fs/cgroup is not cgroup2, or v1 hierarchies \
             exist): the guest tests run in the VM, see tests/vm/guest-tests.sh"
        ),
    }
}

/// The directory of `linux.cgroupsPath` `path` on the unified hierarchy.
#[track_caller]
pub fn v2_dir(path: &str) -> PathBuf {
    unified().dir_for(path)
}

/// A cgroup file of `linux.cgroupsPath` `path`, trimmed (panics if it cannot be read).
#[track_caller]
pub fn v2_read(path: &str, file: &str) -> String {
    let p = v2_dir(path).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}
