//! End-to-end tests: real clients (containerd with `ctr` and through its CRI plugin, docker,
//! podman), installed from Debian's packages, drive the built `hull` exactly as they drive
//! runc. Each test starts its own private daemon (state dirs and sockets under its own
//! directory), imports an image made from busybox-static, and tears everything down even when
//! it fails.
//!
//! `.ci/run` installs the clients; without them these tests fail, they do not skip. The
//! `systemd_` tests run the clients on their default cgroup driver, which is systemd only
//! where systemd is PID 1 with cgroup v2: they are `#[ignore]`d (reported by name with the
//! reason) and run in the VM guest (`tests/vm/guest-tests.sh clients`, `--include-ignored`).

#[path = "../util/mod.rs"]
#[allow(unused_imports)]
mod util;

mod common;
mod containerd;
mod containerd_daemon;
mod cri;
mod docker;
mod podman;
mod podman_rootless;
mod pty;
