//! notify: systemd's readiness protocol (`sd_notify`) through the runtime, as runc does it.
//! When `create` or `run` is called with `NOTIFY_SOCKET` set (a `Type=notify` service, podman
//! `--sdnotify=container`), the container gets a socket of its own, `/run/notify/notify.sock`
//! (bound read-only from the container's state directory), with `NOTIFY_SOCKET` pointing at
//! it. The command that starts the container waits until the container writes `READY=…`
//! there, or its init is gone, and then tells the caller's socket `READY=1` and `MAINPID=`
//! (the init; a foreground `run` names itself, as it stays the service's main process).

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{MountBuilder, Spec};

/// The directory in the container's state directory that holds the socket.
const DIR: &str = "notify";
const SOCKET: &str = "notify.sock";
/// Where the container finds it (runc's path).
const IN_CONTAINER_DIR: &str = "/run/notify";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET: {step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("NOTIFY_SOCKET: the container's mount of {IN_CONTAINER_DIR}: {0}")]
    Spec(String),
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> NotifyError {
    let path = path.to_path_buf();
    move |source| NotifyError::Io { step, path, source }
}

/// Gives the container its socket: the mount of `state_dir/notify` at /run/notify and
/// `NOTIFY_SOCKET` in its process's environment (replacing one the config sets).
pub fn setup_spec(spec: &mut Spec, state_dir: &Path) -> Result<(), NotifyError> {
    let mount = MountBuilder::default()
        .destination(IN_CONTAINER_DIR)
        .typ("bind")
        .source(state_dir.join(DIR))
        .options(
            ["bind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .map_err(|e| NotifyError::Spec(e.to_string()))?;
    spec.mounts_mut().get_or_insert_with(Vec::new).push(mount);
    if let Some(p) = spec.process_mut().as_mut() {
        let env = p.env_mut().get_or_insert_with(Vec::new);
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={IN_CONTAINER_DIR}/{SOCKET}"));
    }
    Ok(())
}

/// Makes the directory the mount binds (before the init mounts it).
pub fn make_dir(state_dir: &Path) -> Result<(), NotifyError> {
    let dir = state_dir.join(DIR);
    std::fs::create_dir(&dir).map_err(io_err("create", &dir))
}

/// The container's end, bound by the command that starts it, before it does.
#[derive(Debug)]
pub struct Listener {
    sock: UnixDatagram,
}

impl Listener {
    pub fn bind(state_dir: &Path) -> Result<Listener, NotifyError> {
        use std::os::unix::fs::PermissionsExt;
        let path = state_dir.join(DIR).join(SOCKET);
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).map_err(io_err("bind", &path))?;
        // Any user of the container may be the one to report readiness.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            .map_err(io_err("chmod", &path))?;
        Ok(Listener { sock })
    }

    /// Waits for the container's `READY=`, then sends `READY=1` and `MAINPID=main_pid` to
    /// `host` (a path, or `@name` in the abstract namespace). Returns early, sending
    /// nothing, once `alive` says the container's init is gone.
    pub fn forward_ready(
        &self,
        host: &Path,
        main_pid: i32,
        alive: &dyn Fn() -> bool,
    ) -> Result<(), NotifyError> {
        let here = Path::new(IN_CONTAINER_DIR);
        self.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(io_err("set a timeout on", here))?;
        let mut buf = [0u8; 4096];
        let mut checked = std::time::Instant::now();
        loop {
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    if buf[..n]
                        .split(|b| *b == b'\n')
                        .any(|l| l.starts_with(b"READY="))
                    {
                        break;
                    }
                    // A stream of other messages must not keep a dead init's wait going.
                    if checked.elapsed() > Duration::from_millis(100) {
                        if !alive() {
                            return Ok(());
                        }
                        checked = std::time::Instant::now();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if !alive() {
                        return Ok(());
                    }
                }
                Err(e) => return Err(io_err("receive from", here)(e)),
            }
        }
        let client = UnixDatagram::unbound().map_err(io_err("socket for", host))?;
        let text = host.to_string_lossy();
        let addr = match text.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            }
            None => SocketAddr::from_pathname(host),
        }
        .map_err(io_err("address", host))?;
        let msg = format!("READY=1\nMAINPID={main_pid}\n");
        client
            .send_to_addr(msg.as_bytes(), &addr)
            .map_err(io_err("send READY=1 to", host))?;
        // systemd learns which unit a message is for from its sender, which must still be
        // there when it reads it: wait until it has (sd_notify_barrier, as runc).
        if let Err(e) = barrier(&client, host) {
            tracing::warn!("NOTIFY_SOCKET {}: BARRIER=1: {e}", host.display());
        }
        Ok(())
    }
}

/// How long the notify socket's reader gets to take in what was sent before BARRIER=1.
const BARRIER_TIMEOUT_MS: u16 = 5000;

/// Sends BARRIER=1 with the write end of a pipe, then waits until the reader has closed it
/// (systemd does once it handled every message before it).
fn barrier(client: &UnixDatagram, host: &Path) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::os::fd::{AsFd, AsRawFd};
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let text = host.to_string_lossy();
    let addr = match text.strip_prefix('@') {
        Some(name) => UnixAddr::new_abstract(name.as_bytes())?,
        None => UnixAddr::new(host)?,
    };
    let fds = [write.as_raw_fd()];
    sendmsg(
        client.as_raw_fd(),
        &[io::IoSlice::new(b"BARRIER=1")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        Some(&addr),
    )?;
    drop(write);
    let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(BARRIER_TIMEOUT_MS))? {
        0 => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the reader did not take it in 5 s",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_gets_the_mount_and_one_notify_socket() {
        let mut spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.2.1","root":{"path":"rootfs"},
                "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},
                "env":["A=1","NOTIFY_SOCKET=/old"]}}"#,
        )
        .unwrap();
        setup_spec(&mut spec, Path::new("/run/hull/c1")).unwrap();
        let m = spec.mounts().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(m.destination(), Path::new("/run/notify"));
        assert_eq!(
            m.source().as_deref(),
            Some(Path::new("/run/hull/c1/notify"))
        );
        assert!(m.options().as_ref().unwrap().contains(&"ro".to_string()));
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert_eq!(env, ["A=1", "NOTIFY_SOCKET=/run/notify/notify.sock"]);
    }

    #[test]
    fn ready_is_forwarded_with_the_main_pid_and_a_dead_init_ends_the_wait() {
        let dir = std::env::temp_dir().join(format!("hull-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        make_dir(&dir).unwrap();
        let host_path = dir.join("host.sock");
        let host = UnixDatagram::bind(&host_path).unwrap();
        let l = Listener::bind(&dir).unwrap();
        let container = UnixDatagram::unbound().unwrap();
        let sock = dir.join("notify/notify.sock");
        container.send_to(b"STATUS=starting", &sock).unwrap();
        container.send_to(b"READY=1\nSTATUS=up", &sock).unwrap();
        // The caller's end: takes the messages as they come (the barrier waits for that).
        let reader = host.try_clone().unwrap();
        let got = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut out = Vec::new();
            for _ in 0..2 {
                let n = reader.recv(&mut buf).unwrap();
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            out
        });
        let t0 = std::time::Instant::now();
        l.forward_ready(&host_path, 42, &|| true).unwrap();
        assert_eq!(got.join().unwrap(), ["READY=1\nMAINPID=42\n", "BARRIER=1"]);
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "the barrier waited for nothing"
        );
        let mut buf = [0u8; 64];
        // Nothing comes and the init is gone: no READY is sent.
        l.forward_ready(&host_path, 42, &|| false).unwrap();
        host.set_nonblocking(true).unwrap();
        assert!(host.recv(&mut buf).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
