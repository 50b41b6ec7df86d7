//! CRIU, which checkpoints a container's processes into image files and restores them,
//! driven as runc drives it: one `criu swrk 3` per request over a SOCK_SEQPACKET socketpair,
//! one protobuf message (rust-criu's generated `rpc` types) per packet, and CRIU's
//! notifications (`post-dump`, `setup-namespaces`, `post-restore`, `orphan-pts-master`, …)
//! answered as they come. Where CRIU fails, the reason is in its log, not in its reply: the
//! error quotes the log's last `Error` line.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::unistd::Pid;
use protobuf::Message;
pub use rust_criu::rust_criu_protobuf::rpc;

/// The oldest CRIU hull drives (runc's floor for external namespaces, which it always
/// names).
pub const MIN_VERSION: u32 = 31500;

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("run criu: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("criu: executable file not found in $PATH")]
    NotFound,
    #[error("criu: {0}")]
    Rpc(String),
    /// CRIU refused or failed the request; `why` quotes its log.
    #[error("criu failed: type {kind} errno {errno}{why}")]
    Failed {
        kind: String,
        errno: i32,
        why: String,
    },
    #[error("criu failed: {0}{1}")]
    Exit(std::process::ExitStatus, String),
    #[error("CRIU version {have} must be {want} or higher")]
    Version { have: u32, want: u32 },
    /// CRIU is there but `criu check` fails: its reason.
    #[error("CRIU does not work here: {0}")]
    Unusable(String),
    /// A notification's handler failed.
    #[error("{0}")]
    Notify(String),
}

/// What one `criu swrk` gets besides the request.
#[derive(Debug, Default)]
pub struct Swrk<'a> {
    /// Handed to CRIU as its fds 4, 5, … (inherited namespaces, for `inherit_fd`).
    pub extra_fds: Vec<BorrowedFd<'a>>,
    /// CRIU's stdin, stdout and stderr (a restore's process inherits them); /dev/null else.
    pub stdio: Option<[Stdio; 3]>,
    /// The log CRIU writes for this request, quoted when it fails.
    pub log: Option<PathBuf>,
}

/// Answers CRIU's notifications: the script name, the message, and a descriptor that came
/// with it (the pty master of `orphan-pts-master`).
pub type OnNotify<'a> =
    dyn FnMut(&str, &rpc::Criu_notify, Option<OwnedFd>) -> Result<(), String> + 'a;

/// Runs one request of `kind` with `opts`; `before` gets CRIU's pid before the request is
/// sent (a restore puts CRIU into the container's cgroups, where the restored processes are
/// born), `notify` each notification.
pub fn call(
    kind: rpc::Criu_req_type,
    opts: Option<rpc::Criu_opts>,
    swrk: Swrk<'_>,
    before: &mut dyn FnMut(Pid) -> Result<(), String>,
    notify: &mut OnNotify<'_>,
) -> Result<rpc::Criu_resp, CriuError> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| CriuError::Rpc(format!("socketpair: {e}")))?;
    let mut cmd = Command::new("criu");
    cmd.args(["swrk", "3"]);
    // What CRIU says before its log is open (a bad configuration file, a crash) is kept, to
    // be quoted when there is no log to quote: in a file, not a pipe, which a process that
    // outlives CRIU (an action script's) would hold open.
    let mut said_file = None;
    match swrk.stdio {
        Some([i, o, e]) => cmd.stdin(i).stdout(o).stderr(e),
        None => {
            let memfd = nix::sys::memfd::memfd_create(
                c"criu-stderr",
                nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
            );
            let err = match memfd.map(std::fs::File::from) {
                Ok(f) => {
                    let stderr = f.try_clone().map(Stdio::from).unwrap_or(Stdio::null());
                    said_file = Some(f);
                    stderr
                }
                Err(_) => Stdio::null(),
            };
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err)
        }
    };
    let mut fds = vec![(theirs.as_raw_fd(), 3)];
    fds.extend(
        swrk.extra_fds
            .iter()
            .zip(4..)
            .map(|(fd, n)| (fd.as_raw_fd(), n)),
    );
    hull_sys::process::hand_over_fds(&mut cmd, fds);
    // A log left by an earlier request must not be quoted for this one, should CRIU fail
    // before it opens its own.
    if let Some(log) = &swrk.log {
        let _ = std::fs::remove_file(log);
    }
    let mut child = cmd.spawn().map_err(spawn_error)?;
    drop(theirs);
    let reap = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let pid = Pid::from_raw(child.id() as i32);
    if let Err(e) = before(pid) {
        reap(&mut child);
        return Err(CriuError::Notify(e));
    }
    let result = exchange(&ours, kind, opts, notify);
    // CRIU exits once its socket closes.
    drop(ours);
    let status = child.wait().map_err(CriuError::Spawn)?;
    let said = said_file
        .map(|mut f| {
            let mut bytes = Vec::new();
            let _ = std::io::Seek::rewind(&mut f);
            let _ = std::io::Read::read_to_end(&mut f, &mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .unwrap_or_default();
    let why = || {
        let from_log = swrk.log.as_deref().map(quote_log).unwrap_or_default();
        if !from_log.is_empty() {
            return from_log;
        }
        match said.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(last) => format!(": {}", last.trim()),
            None => String::new(),
        }
    };
    match result {
        Ok(resp) if !resp.success() => Err(CriuError::Failed {
            kind: format!("{:?}", resp.type_()),
            errno: resp.cr_errno(),
            why: why(),
        }),
        // A pre-dump's CRIU waits for the next request and exits non-zero without it.
        Ok(resp) if status.success() || kind == rpc::Criu_req_type::PRE_DUMP => Ok(resp),
        Ok(_) => Err(CriuError::Exit(status, why())),
        Err(CriuError::Rpc(e)) if !status.success() => {
            Err(CriuError::Rpc(format!("{e} ({status}){}", why())))
        }
        Err(CriuError::Rpc(e)) => Err(CriuError::Rpc(format!("{e}{}", why()))),
        Err(e) => Err(e),
    }
}

/// `criu` not on PATH is said in runc's words.
fn spawn_error(e: std::io::Error) -> CriuError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return CriuError::NotFound;
    }
    CriuError::Spawn(e)
}

/// Sends the request and reads CRIU's answers until the one that ends it.
fn exchange(
    sock: &OwnedFd,
    kind: rpc::Criu_req_type,
    opts: Option<rpc::Criu_opts>,
    notify: &mut OnNotify<'_>,
) -> Result<rpc::Criu_resp, CriuError> {
    let mut req = rpc::Criu_req::new();
    req.set_type(kind);
    if let Some(opts) = opts {
        req.opts = protobuf::MessageField::some(opts);
    }
    send_msg(sock, &req)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let got = hull_sys::fdpass::recv_fds(sock.as_fd(), &mut buf)
            .map_err(|e| CriuError::Rpc(format!("read: {e}")))?;
        if got.len == 0 {
            return Err(CriuError::Rpc("unexpected EOF".into()));
        }
        let resp = rpc::Criu_resp::parse_from_bytes(&buf[..got.len])
            .map_err(|e| CriuError::Rpc(format!("bad message: {e}")))?;
        if !resp.success() {
            return Ok(resp);
        }
        match resp.type_() {
            rpc::Criu_req_type::NOTIFY => {
                let script = resp.notify.script().to_string();
                let fd = got.fds.into_iter().next();
                notify(&script, &resp.notify, fd).map_err(CriuError::Notify)?;
                let mut ack = rpc::Criu_req::new();
                ack.set_type(rpc::Criu_req_type::NOTIFY);
                ack.set_notify_success(true);
                send_msg(sock, &ack)?;
            }
            t if t == kind => return Ok(resp),
            other => return Err(CriuError::Rpc(format!("unexpected answer {other:?}"))),
        }
    }
}

fn send_msg(sock: &OwnedFd, msg: &rpc::Criu_req) -> Result<(), CriuError> {
    let bytes = msg
        .write_to_bytes()
        .map_err(|e| CriuError::Rpc(format!("encode: {e}")))?;
    send(sock.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)
        .map_err(|e| CriuError::Rpc(format!("write: {e}")))?;
    Ok(())
}

/// CRIU's version as `major * 10000 + minor * 100 + sublevel` (a git build counts as the
/// next minor, as runc counts it).
pub fn version() -> Result<u32, CriuError> {
    let resp = call(
        rpc::Criu_req_type::VERSION,
        None,
        Swrk::default(),
        &mut |_| Ok(()),
        &mut |_, _, _| Ok(()),
    )?;
    let v = &resp.version;
    let mut n = (v.major_number() * 10000 + v.minor_number() * 100 + v.sublevel()) as u32;
    if v.has_gitid() {
        n = n - n % 100 + 100;
    }
    Ok(n)
}

/// Fails unless CRIU is at least [`MIN_VERSION`]; where it cannot even say its version, the
/// reason is what `criu check` says.
pub fn check_version() -> Result<u32, CriuError> {
    let have = version().map_err(|e| match criu_check() {
        Some(why) => CriuError::Unusable(why),
        None => e,
    })?;
    if have < MIN_VERSION {
        return Err(CriuError::Version {
            have,
            want: MIN_VERSION,
        });
    }
    Ok(have)
}

/// Whether CRIU can checkpoint and restore here: present, new enough, and passing `criu
/// check` (a CRIU that answers but cannot dump on this kernel fails the last).
pub fn usable() -> Result<u32, CriuError> {
    let have = check_version()?;
    match criu_check() {
        Some(why) => Err(CriuError::Unusable(why)),
        None => Ok(have),
    }
}

/// `criu check`'s complaint (its last `Error` line), or `None` when it passes.
pub fn criu_check() -> Option<String> {
    // Its log is its only output: at the default level, on stderr.
    let out = Command::new("criu")
        .args(["check", "-o", "/dev/stderr"])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => Some(spawn_error(e).to_string()),
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stderr).into_owned()
                + &String::from_utf8_lossy(&o.stdout);
            Some(first_error(&text).unwrap_or_else(|| format!("criu check: {}", o.status)))
        }
    }
}

/// `: <the log's first Error line> (see LOG)`, or nothing when the log has none.
fn quote_log(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    match first_error(&text) {
        Some(line) => format!(": {line} (see {})", log.display()),
        None => String::new(),
    }
}

/// The first line of CRIU output that reports an error: the cause (the ones after it are
/// CRIU giving up, "Dumping FAILED.").
fn first_error(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.contains("Error"))
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_line_is_quoted() {
        let log = "(00.001) a\n(00.002) Error (criu/a.c:1): first\n(00.003) Error (criu/b.c:2): last\nok\n";
        assert_eq!(
            first_error(log).as_deref(),
            Some("(00.002) Error (criu/a.c:1): first")
        );
        assert_eq!(first_error("fine\n"), None);
    }
}
