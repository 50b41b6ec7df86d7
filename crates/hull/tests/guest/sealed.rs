//! The runtime's protection of its own binary (CVE-2019-5736) on a distribution kernel: the
//! cheap way, a read-only overlay attached nowhere, works there too (with /dev as its second
//! layer before Linux 6.15), so create does not copy the whole binary.

use nix::sys::statfs::{statfs, OVERLAYFS_SUPER_MAGIC};

use crate::unified;
use crate::util::Test;

#[test]
fn a_created_containers_init_runs_hull_from_a_read_only_overlay() {
    unified();
    let mut t = Test::new("sealed_overlay");
    t.args(&["true"]);
    let id = t.id.clone();
    let (out, pid) = t.create(&id);
    out.ok();
    let pid = pid.expect("pid file");
    // Until `start` the init is still hull, re-executed from its protected view.
    let exe = format!("/proc/{pid}/exe");
    let target = std::fs::read_link(&exe).unwrap();
    let fs = statfs(exe.as_str()).unwrap();
    assert_eq!(
        fs.filesystem_type(),
        OVERLAYFS_SUPER_MAGIC,
        "{exe} -> {} is not on an overlay (a copy was made)",
        target.display()
    );
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{exe}");
}
