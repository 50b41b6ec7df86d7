//! The start gate: a listening unix socket in the container's state directory on which the
//! created init blocks until `start` connects.
//!
//! `start` sends one byte and then reads: the connection is close-on-exec in the init, so
//! end-of-file means the user process was exec'ed, and any bytes are the init's error.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};

/// The socket's name inside the state directory.
pub const GATE: &str = "start.sock";

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("start gate: {step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Init(String),
}

/// A path to the gate through the state directory's fd: short whatever the state root is,
/// so it always fits in sun_path.
fn gate_path(dir: &File) -> String {
    format!("/proc/self/fd/{}/{GATE}", dir.as_raw_fd())
}

/// Binds and listens on the gate in the state directory `dir`.
pub fn bind_gate(dir: &File) -> Result<OwnedFd, GateError> {
    let sys = |step| {
        move |e: Errno| GateError::Sys {
            step,
            source: e.into(),
        }
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("socket"))?;
    let addr = UnixAddr::new(gate_path(dir).as_str()).map_err(sys("address"))?;
    bind(fd.as_raw_fd(), &addr).map_err(sys("bind"))?;
    // Only the container's owner may start it, whatever the caller's umask.
    nix::sys::stat::fchmodat(
        None,
        gate_path(dir).as_str(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(sys("chmod"))?;
    listen(&fd, Backlog::new(1).expect("valid backlog")).map_err(sys("listen"))?;
    Ok(fd)
}

/// In the init: blocks until `start` connects and sends its byte; returns the connection.
pub fn wait(listener: &OwnedFd) -> Result<File, Errno> {
    // A peer that hangs up without its byte (a probe, a killed `start`) is not a start.
    loop {
        match wait_one(listener) {
            Err(Errno::ECONNRESET) => continue,
            r => return r,
        }
    }
}

fn wait_one(listener: &OwnedFd) -> Result<File, Errno> {
    let mut conn = File::from(hull_sys::fd::accept(listener.as_fd())?);
    let mut byte = [0u8; 1];
    loop {
        match conn.read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(1) => return Ok(conn),
            Ok(_) => return Err(Errno::ECONNRESET),
            Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
        }
    }
}

/// In `start`: releases the init waiting on the gate in `dir` and waits until it has exec'ed
/// (end-of-file) or reported why it could not.
pub fn release(dir: &File) -> Result<(), GateError> {
    let sys = |step| move |source| GateError::Sys { step, source };
    let mut conn = UnixStream::connect(gate_path(dir)).map_err(sys("connect"))?;
    conn.write_all(b"s").map_err(sys("write"))?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply).map_err(sys("read"))?;
    if reply.is_empty() {
        Ok(())
    } else {
        Err(GateError::Init(reply))
    }
}
