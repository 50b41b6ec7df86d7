//! Behaviours found by running peers' test suites (issue #17, part 2), each checked by hand
//! against runc: what a runc user sees, hull must show too.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::util::*;

/// runc enters `process.cwd` before switching to the process's user: a directory root may
/// enter but the user may not is the process's cwd all the same.
#[test]
fn a_cwd_only_root_may_enter_is_entered_before_the_user_switch() {
    let mut t = Test::new("parity_cwd");
    fs::set_permissions(t.rootfs.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    t.config["process"]["user"] = serde_json::json!({ "uid": 42, "gid": 42 });
    t.config["process"]["cwd"] = "/root".into();
    t.sh("pwd; id -u; ls . >/dev/null 2>&1 || echo cannot-list");
    let out = t.output();
    assert_eq!(out, "/root\n42\ncannot-list\n");
}
