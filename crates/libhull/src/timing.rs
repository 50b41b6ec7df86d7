//! Timestamps of the runtime's steps, for `bench/profile.sh`: where the milliseconds of one
//! command go, without a tracer slowing every syscall down.
//!
//! Off unless `HULL_TIMING=1` is in the environment when [`init`] runs. Then each [`mark`]
//! writes one line, `hull-timing <pid> <CLOCK_MONOTONIC ns> <label>`, to stderr with a single
//! write(2) from a stack buffer: no allocation and no lock, so the container init may mark
//! its steps between clone and exec too. Off, a mark is one relaxed atomic load. The init's
//! stderr is the container's: with `terminal: true` its marks after the console is set up go
//! to the pty.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static ON: AtomicBool = AtomicBool::new(false);

/// Reads `HULL_TIMING` once; call it first thing in `main`.
pub fn init() {
    // Only onto an open stderr: a closed fd 2 may later be a state or lock file.
    let stderr_open = nix::fcntl::fcntl(2, nix::fcntl::F_GETFD).is_ok();
    if stderr_open && std::env::var_os("HULL_TIMING").is_some_and(|v| v == "1") {
        ON.store(true, Ordering::Relaxed);
    }
}

/// Records that the step `label` is done (or, for the last one, that the command ends).
pub fn mark(label: &'static str) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let Ok(now) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) else {
        return;
    };
    let ns = now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64;
    let mut buf = [0u8; 160];
    let mut w = &mut buf[..];
    // A cursor over a stack array: write! formats integers without allocating.
    let _ = writeln!(w, "hull-timing {} {ns} {label}", std::process::id());
    let len = 160 - w.len();
    let _ = nix::unistd::write(std::io::stderr(), &buf[..len]);
}
