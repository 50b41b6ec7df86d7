//! The container's console: a pty allocated from the container's own devpts, its master sent
//! to the caller over the console socket, its peer made the init's controlling terminal,
//! stdio and /dev/console.
//!
//! Wire format of the console socket (what runc sends and go-runc, containerd's shim and conmon
//! receive): ONE `sendmsg` on a connected `AF_UNIX` stream socket whose data is the path the
//! master was opened from ([`PTMX_PATH`], never empty, shorter than [`MAX_NAME_LEN`]) and whose
//! only control message is `SCM_RIGHTS` with exactly one fd, the pty master. No reply.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};

use hull_sys::pty;

/// Where the master is allocated from: the ptmx node of the devpts mounted at /dev/pts (what
/// /dev/ptmx points to), opened without following symlinks. Also the name sent with the master.
pub const PTMX_PATH: &str = "/dev/pts/ptmx";
const CONSOLE_PATH: &str = "/dev/console";
/// Receivers (go-runc, runc's own cmsg code, conmon) read the name into a 4096-byte buffer and
/// refuse a message that fills it.
pub const MAX_NAME_LEN: usize = 4096;

const PTMX_MAJOR: u64 = 5;
const PTMX_MINOR: u64 = 2;
/// devpts always gives its ptmx node inode number 2.
const PTMX_INO: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: Errno,
    },
    #[error("{step} {path}: {source}")]
    Path {
        step: &'static str,
        path: String,
        #[source]
        source: Errno,
    },
    #[error("{path} is not {expected}: {found}")]
    Unexpected {
        path: String,
        expected: &'static str,
        found: String,
    },
    #[error("console socket: {reason}")]
    Message { reason: String },
}

fn sys(step: &'static str) -> impl FnOnce(Errno) -> ConsoleError {
    move |source| ConsoleError::Sys { step, source }
}

fn at<'a>(step: &'static str, path: &'a str) -> impl FnOnce(Errno) -> ConsoleError + 'a {
    move |source| ConsoleError::Path {
        step,
        path: path.to_owned(),
        source,
    }
}

/// A freshly allocated pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    /// Opened through the master with TIOCGPTPEER, never by path.
    pub peer: OwnedFd,
    /// `/dev/pts/N`, for messages only.
    pub peer_name: String,
}

/// In the init, after pivot_root: allocate a pty from /dev/ptmx, get its peer with
/// TIOCGPTPEER, bind the peer onto /dev/console, send the master over `socket`, and make the
/// peer the controlling terminal and fds 0-2.
#[cfg(test)]
pub fn setup(socket: OwnedFd) -> Result<(), ConsoleError> {
    setup_with_size(socket, None, false)
}

/// [`setup`] that first sets the window size from `process.consoleSize`, and with
/// `clear_onlcr` leaves `\n` unconverted (what runc's own relay sets on the pty it receives).
pub fn setup_with_size(
    socket: OwnedFd,
    size: Option<&oci_spec::runtime::Box>,
    clear_onlcr: bool,
) -> Result<(), ConsoleError> {
    attach_new_pty(socket, size, true, clear_onlcr)
}

/// For a process joining a running container (`exec --tty`): as [`setup_with_size`] but
/// leaves /dev/console alone, which belongs to the init's console.
pub fn setup_exec(
    socket: OwnedFd,
    size: Option<&oci_spec::runtime::Box>,
    clear_onlcr: bool,
) -> Result<(), ConsoleError> {
    attach_new_pty(socket, size, false, clear_onlcr)
}

fn attach_new_pty(
    socket: OwnedFd,
    size: Option<&oci_spec::runtime::Box>,
    bind_console: bool,
    clear_onlcr: bool,
) -> Result<(), ConsoleError> {
    let Pty {
        master,
        peer,
        peer_name,
    } = allocate()?;
    tracing::debug!(pty = %peer_name, "allocated console");
    if let Some(size) = size {
        resize(master.as_fd(), size)?;
    }
    if clear_onlcr {
        use nix::sys::termios::{tcgetattr, tcsetattr, OutputFlags, SetArg};
        let mut t = tcgetattr(&master).map_err(sys("read the pty's modes (TCGETS)"))?;
        t.output_flags.remove(OutputFlags::ONLCR);
        tcsetattr(&master, SetArg::TCSANOW, &t).map_err(sys("clear ONLCR on the pty (TCSETS)"))?;
    }
    if bind_console {
        bind_onto_console(peer.as_fd(), &peer_name)?;
    }
    send_fd(socket.as_fd(), PTMX_PATH, master.as_fd())?;
    // The caller holds the only master from here on; the init must not keep one open.
    drop(master);
    drop(socket);
    make_controlling_stdio(peer)
}

/// Allocates a pty from [`PTMX_PATH`] in the current mount namespace. The ptmx node is checked
/// to be the real ptmx of a devpts mount before it is opened for reading and writing.
pub fn allocate() -> Result<Pty, ConsoleError> {
    let master = open_ptmx()?;
    pty::unlock(master.as_fd()).map_err(sys("unlock the pty (TIOCSPTLCK)"))?;
    let index = pty::number(master.as_fd()).map_err(sys("get the pty number (TIOCGPTN)"))?;
    let peer = pty::open_peer(
        master.as_fd(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
    )
    .map_err(sys("open the pty peer (TIOCGPTPEER)"))?;
    Ok(Pty {
        master,
        peer,
        peer_name: format!("/dev/pts/{index}"),
    })
}

fn open_ptmx() -> Result<OwnedFd, ConsoleError> {
    let handle = open_no_symlinks(PTMX_PATH, OFlag::O_PATH | OFlag::O_CLOEXEC)
        .map_err(at("open", PTMX_PATH))?;
    let expected = fstat_fd(handle.as_fd()).map_err(at("stat", PTMX_PATH))?;
    check_ptmx(handle.as_fd(), &expected)?;
    // Opening a device can have side effects, so it happens only once the O_PATH handle is
    // known to be a ptmx; the opened fd must then be that same inode.
    let master = open_no_symlinks(
        PTMX_PATH,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
    )
    .map_err(at("open", PTMX_PATH))?;
    let opened = fstat_fd(master.as_fd()).map_err(at("stat", PTMX_PATH))?;
    if (opened.st_dev, opened.st_ino) != (expected.st_dev, expected.st_ino) {
        return Err(ConsoleError::Unexpected {
            path: PTMX_PATH.to_owned(),
            expected: "the node that was checked",
            found: "a different inode on reopen".to_owned(),
        });
    }
    Ok(master)
}

fn check_ptmx(handle: BorrowedFd<'_>, st: &FileStat) -> Result<(), ConsoleError> {
    let unexpected = |found: String| ConsoleError::Unexpected {
        path: PTMX_PATH.to_owned(),
        expected: "the ptmx of a devpts mount",
        found,
    };
    let fs = nix::sys::statfs::fstatfs(handle).map_err(at("statfs", PTMX_PATH))?;
    if fs.filesystem_type() != nix::sys::statfs::DEVPTS_SUPER_MAGIC {
        return Err(unexpected(format!(
            "filesystem magic {:#x}",
            fs.filesystem_type().0
        )));
    }
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let rdev = st.st_rdev;
    let (major, minor) = (libc::major(rdev) as u64, libc::minor(rdev) as u64);
    if kind != SFlag::S_IFCHR || (major, minor) != (PTMX_MAJOR, PTMX_MINOR) {
        return Err(unexpected(format!(
            "file type {:#o}, device {major}:{minor}",
            kind.bits()
        )));
    }
    if st.st_ino != PTMX_INO {
        return Err(unexpected(format!("inode {}", st.st_ino)));
    }
    Ok(())
}

/// Sets the window size of the pty when both dimensions are given (non-zero), as runc does.
fn resize(master: BorrowedFd<'_>, size: &oci_spec::runtime::Box) -> Result<(), ConsoleError> {
    let (rows, cols) = (size.height(), size.width());
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let clamp = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
    pty::set_window_size(master, clamp(rows), clamp(cols))
        .map_err(sys("set the console size (TIOCSWINSZ)"))
}

/// Bind-mounts the pty peer onto /dev/console through fds, so that no path inside the
/// container is followed for either end of the mount.
fn bind_onto_console(peer: BorrowedFd<'_>, peer_name: &str) -> Result<(), ConsoleError> {
    let console = open_console_target()?;
    // open_tree + move_mount: no /proc magic link is walked, so an image whose /proc is not
    // (yet) a real procfs cannot redirect either end.
    let tree = hull_sys::mount::open_tree(
        Some(peer),
        std::path::Path::new(""),
        hull_sys::mount::OPEN_TREE_CLONE
            | hull_sys::mount::OPEN_TREE_CLOEXEC
            | hull_sys::mount::AT_EMPTY_PATH as u32,
    );
    tree.and_then(|tree| hull_sys::mount::move_mount(tree.as_fd(), console.as_fd()))
        .map_err(|source| ConsoleError::Path {
            step: "bind-mount the console",
            path: format!("{peer_name} onto {CONSOLE_PATH}"),
            source,
        })
}

/// An O_PATH handle on /dev/console, created as an empty file if missing; never a symlink.
fn open_console_target() -> Result<OwnedFd, ConsoleError> {
    let path_flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let handle = match open_fd(CONSOLE_PATH, path_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            // O_EXCL: a dangling symlink left in its place is refused, not followed.
            let created = open_fd(
                CONSOLE_PATH,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o666),
            )
            .map_err(at("create", CONSOLE_PATH))?;
            drop(created);
            open_fd(CONSOLE_PATH, path_flags, Mode::empty()).map_err(at("open", CONSOLE_PATH))?
        }
        Err(e) => return Err(at("open", CONSOLE_PATH)(e)),
    };
    let st = fstat_fd(handle.as_fd()).map_err(at("stat", CONSOLE_PATH))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        let found = match kind {
            SFlag::S_IFLNK => "a symlink".to_owned(),
            SFlag::S_IFDIR => "a directory".to_owned(),
            other => format!("file type {:#o}", other.bits()),
        };
        return Err(ConsoleError::Unexpected {
            path: CONSOLE_PATH.to_owned(),
            expected: "a regular file or character device",
            found,
        });
    }
    Ok(handle)
}

/// Starts a new session and makes `peer` its controlling terminal and this process's stdin,
/// stdout and stderr.
fn make_controlling_stdio(peer: OwnedFd) -> Result<(), ConsoleError> {
    if let Err(e) = nix::unistd::setsid() {
        // EPERM: already a process group leader; fine if it leads its own session already.
        let me = nix::unistd::getpid();
        if e != Errno::EPERM || nix::unistd::getsid(None).ok() != Some(me) {
            return Err(ConsoleError::Sys {
                step: "start a new session (setsid)",
                source: e,
            });
        }
    }
    pty::set_controlling(peer.as_fd())
        .map_err(sys("make the console the controlling terminal (TIOCSCTTY)"))?;
    // dup2 onto itself keeps O_CLOEXEC set, so move a peer that landed on 0-2 out of the way.
    let peer = if peer.as_raw_fd() <= 2 {
        hull_sys::fd::dup_cloexec_from(peer.as_fd(), 3).map_err(sys("duplicate the console fd"))?
    } else {
        peer
    };
    for target in 0..=2 {
        nix::unistd::dup2(peer.as_raw_fd(), target).map_err(sys("dup the console onto stdio"))?;
    }
    Ok(())
}

/// Sends `fd` over the connected `socket` in one message whose data is `name` (runc's
/// `SendRawFd`). `name` must not be empty: a stream socket drops fds sent with no data.
pub fn send_fd(socket: BorrowedFd<'_>, name: &str, fd: BorrowedFd<'_>) -> Result<(), ConsoleError> {
    if name.is_empty() || name.len() >= MAX_NAME_LEN {
        return Err(ConsoleError::Message {
            reason: format!(
                "name to send must be 1 to {} bytes, got {}",
                MAX_NAME_LEN - 1,
                name.len()
            ),
        });
    }
    let sent = hull_sys::fdpass::send_fd(socket, name.as_bytes(), fd)
        .map_err(sys("send a descriptor over the socket"))?;
    if sent != name.len() {
        return Err(ConsoleError::Message {
            reason: format!("short send: {sent} of {} bytes", name.len()),
        });
    }
    Ok(())
}

/// Receives one message sent by [`send_fd`] (or runc): the name and the single fd, which is
/// close-on-exec here. Anything else is an error, and every fd received with it is closed.
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<(String, OwnedFd), ConsoleError> {
    let mut buf = vec![0u8; MAX_NAME_LEN];
    let got = hull_sys::fdpass::recv_fds(socket, &mut buf)
        .map_err(sys("receive from the console socket"))?;
    let (len, mut fds) = (got.len, got.fds);
    let bad = |reason: String| Err(ConsoleError::Message { reason });
    if got.fds_truncated {
        return bad("control data truncated (too many fds)".to_owned());
    }
    if len == 0 && fds.is_empty() {
        return bad("peer closed without sending a file descriptor".to_owned());
    }
    if len >= MAX_NAME_LEN {
        return bad(format!("name of {len} bytes or more is too long"));
    }
    if fds.len() != 1 {
        return bad(format!("expected exactly one fd, got {}", fds.len()));
    }
    let name = String::from_utf8_lossy(&buf[..len]).into_owned();
    Ok((name, fds.remove(0)))
}

fn open_fd<P: AsRef<Path>>(path: P, flags: OFlag, mode: Mode) -> Result<OwnedFd, Errno> {
    hull_sys::fd::open(path.as_ref(), flags, mode)
}

/// Opens `path` refusing a symlink in any component, not only the last: a /dev/pts that is a
/// symlink (through /proc/PID/root to the host's devpts, without a pid namespace) must not
/// give the container a pty of someone else's devpts (CVE-2025-52565).
fn open_no_symlinks(path: &str, flags: OFlag) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    hull_sys::fd::openat2(None, path, how)
}

fn fstat_fd(fd: BorrowedFd<'_>) -> Result<FileStat, Errno> {
    nix::sys::stat::fstat(fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use nix::mount::MsFlags;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};
    use std::panic::AssertUnwindSafe;
    use std::time::{Duration, Instant};

    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::{kill, Signal};
    use nix::sys::socket::socketpair;
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use nix::unistd::{ForkResult, Pid};

    use super::*;

    /// A forked child running a test body; killed and reaped if the test fails first.
    struct ChildGuard(Option<Pid>);

    impl ChildGuard {
        fn spawn(body: impl FnOnce() -> i32) -> Self {
            // SAFETY: the child only runs `body` (syscalls and small allocations, which glibc
            // keeps usable after fork) and leaves with _exit, never returning into the harness.
            match unsafe { nix::unistd::fork() }.expect("fork") {
                ForkResult::Child => {
                    let code = std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
                    // SAFETY: _exit ends the child without running the parent's atexit handlers.
                    unsafe { libc::_exit(code) }
                }
                ForkResult::Parent { child } => ChildGuard(Some(child)),
            }
        }

        /// The child's exit code, waiting up to 5 s.
        fn exit_code(mut self) -> i32 {
            let pid = self.0.take().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match waitpid(pid, Some(WaitPidFlag::WNOHANG)).unwrap() {
                    WaitStatus::Exited(_, code) => return code,
                    WaitStatus::StillAlive if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    other => {
                        let _ = kill(pid, Signal::SIGKILL);
                        let _ = waitpid(pid, None);
                        panic!("child did not exit cleanly: {other:?}");
                    }
                }
            }
        }
    }

    impl Drop for ChildGuard {
        fn drop(&mut self) {
            if let Some(pid) = self.0.take() {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
            }
        }
    }

    fn socket_pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    /// Reads from the pty master until `needle` shows up; what was read, or an error.
    fn read_until(master: BorrowedFd<'_>, needle: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = String::new();
        while !seen.contains(needle) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| format!("timed out waiting for {needle:?}; got {seen:?}"))?;
            let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
            nix::poll::poll(&mut fds, PollTimeout::try_from(left).unwrap()).unwrap();
            let mut buf = [0u8; 512];
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => return Err(format!("pty closed; got {seen:?}")),
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok(seen)
    }

    /// The child side after the console is set up: talk over stdio, which must be the pty.
    fn echo_over_stdio(extra: &str) -> i32 {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one struct winsize through the pointer, which outlives
        // the call.
        if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut size) } != 0 {
            return 20;
        }
        let hello = format!("ready {}x{} {extra}\n", size.ws_row, size.ws_col);
        if nix::unistd::write(std::io::stdout(), hello.as_bytes()).is_err() {
            return 21;
        }
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while line.last() != Some(&b'\n') {
            match nix::unistd::read(0, &mut byte) {
                Ok(1) => line.push(byte[0]),
                _ => return 22,
            }
        }
        let reply = format!("got:{}", String::from_utf8_lossy(&line));
        if nix::unistd::write(std::io::stderr(), reply.as_bytes()).is_err() {
            return 23;
        }
        0
    }

    fn size(rows: u64, cols: u64) -> oci_spec::runtime::Box {
        oci_spec::runtime::BoxBuilder::default()
            .height(rows)
            .width(cols)
            .build()
            .unwrap()
    }

    #[test]
    fn exec_console_sends_the_master_and_the_child_talks_over_the_peer() {
        let (ours, theirs) = socket_pair();
        // The child's copy of `ours` stays open until it exits, which changes nothing here.
        let child = ChildGuard::spawn(|| {
            let Ok(theirs) = theirs.try_clone() else {
                return 9;
            };
            match setup_exec(theirs, Some(&size(24, 81)), true) {
                Ok(()) => echo_over_stdio(""),
                Err(_) => 10,
            }
        });
        drop(theirs);

        let (name, master) = recv_fd(ours.as_fd()).unwrap();
        assert_eq!(name, PTMX_PATH);
        let modes = nix::sys::termios::tcgetattr(&master).unwrap();
        assert!(!modes
            .output_flags
            .contains(nix::sys::termios::OutputFlags::ONLCR));
        read_until(master.as_fd(), "ready 24x81").unwrap();
        nix::unistd::write(&master, b"ping\n").unwrap();
        read_until(master.as_fd(), "got:ping").unwrap();
        assert_eq!(child.exit_code(), 0);
    }

    /// Mounts a fresh /dev (tmpfs) with its own devpts in a private mount namespace of the
    /// calling (forked) process, laid out as the rootfs code leaves a container's /dev.
    fn private_dev() -> Result<(), Errno> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )?;
        nix::mount::mount(
            Some("tmpfs"),
            "/dev",
            Some("tmpfs"),
            MsFlags::MS_NOSUID,
            Some("mode=755"),
        )?;
        nix::unistd::mkdir("/dev/pts", Mode::from_bits_truncate(0o755))?;
        nix::mount::mount(
            Some("devpts"),
            "/dev/pts",
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )?;
        nix::unistd::symlinkat("pts/ptmx", None, "/dev/ptmx")
    }

    #[test]
    fn init_console_is_bound_onto_dev_console_in_a_private_mount_namespace() {
        let (ours, theirs) = socket_pair();
        let child = ChildGuard::spawn(|| {
            let Ok(theirs) = theirs.try_clone() else {
                return 9;
            };
            if private_dev().is_err() {
                return 11;
            }
            if setup(theirs).is_err() {
                return 12;
            }
            let stdin = nix::sys::stat::fstat(0);
            let console = nix::sys::stat::stat(CONSOLE_PATH);
            let same = matches!((stdin, console), (Ok(a), Ok(b)) if a.st_rdev == b.st_rdev);
            echo_over_stdio(if same {
                "console-is-pty"
            } else {
                "console-differs"
            })
        });
        drop(theirs);

        let (name, master) = recv_fd(ours.as_fd()).unwrap();
        assert_eq!(name, PTMX_PATH);
        read_until(master.as_fd(), "ready 0x0 console-is-pty").unwrap();
        nix::unistd::write(&master, b"pong\n").unwrap();
        read_until(master.as_fd(), "got:pong").unwrap();
        assert_eq!(child.exit_code(), 0);
    }

    #[test]
    fn symlinked_console_and_fake_ptmx_are_refused() {
        let child = ChildGuard::spawn(|| {
            if private_dev().is_err() {
                return 11;
            }
            if std::os::unix::fs::symlink("/etc/passwd", CONSOLE_PATH).is_err() {
                return 12;
            }
            let pty = match allocate() {
                Ok(pty) => pty,
                Err(_) => return 13,
            };
            match bind_onto_console(pty.peer.as_fd(), &pty.peer_name) {
                Err(ConsoleError::Unexpected { found, .. }) if found == "a symlink" => {}
                _ => return 14,
            }
            drop(pty);
            // A regular file where the devpts ptmx should be.
            let detach = nix::mount::MntFlags::MNT_DETACH;
            if nix::mount::umount2("/dev/pts", detach).is_err()
                || std::fs::write(PTMX_PATH, b"").is_err()
            {
                return 15;
            }
            match allocate() {
                Err(ConsoleError::Unexpected {
                    expected: "the ptmx of a devpts mount",
                    ..
                }) => 0,
                _ => 16,
            }
        });
        assert_eq!(child.exit_code(), 0);
    }

    #[test]
    fn recv_fd_rejects_a_message_without_exactly_one_fd() {
        let (a, b) = socket_pair();
        nix::unistd::write(&a, b"/dev/ptmx").unwrap();
        let err = recv_fd(b.as_fd()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "console socket: expected exactly one fd, got 0"
        );

        let (c, d) = socket_pair();
        let iov = [std::io::IoSlice::new(b"two")];
        let fds = [c.as_raw_fd(), d.as_raw_fd()];
        nix::sys::socket::sendmsg::<()>(
            c.as_raw_fd(),
            &iov,
            &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .unwrap();
        let err = recv_fd(d.as_fd()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "console socket: expected exactly one fd, got 2"
        );

        drop(a);
        let err = recv_fd(b.as_fd()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "console socket: peer closed without sending a file descriptor"
        );
        assert!(send_fd(c.as_fd(), "", d.as_fd()).is_err());
    }
}

/// The caller's terminal while a foreground container owns it: the first of stderr, stdout
/// and stdin that is a terminal, else the controlling terminal (`/dev/tty`), as runc picks it.
/// It is put in raw mode (keys go to the container's pty as typed) and gives the pty its size;
/// the old mode comes back on drop, however the run ends.
#[derive(Debug)]
pub struct HostTerminal {
    fd: OwnedFd,
    saved: Option<nix::sys::termios::Termios>,
}

impl HostTerminal {
    /// The caller's terminal in raw mode; None if it has none (the pty is relayed all the
    /// same).
    pub fn raw() -> Option<HostTerminal> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let (err, out, inp) = (std::io::stderr(), std::io::stdout(), std::io::stdin());
        let fd = [err.as_fd(), out.as_fd(), inp.as_fd()]
            .into_iter()
            .find(|fd| nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false))
            .and_then(|fd| hull_sys::fd::dup_cloexec_from(fd, 3).ok())
            .or_else(|| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/tty")
                    .ok()
                    .map(OwnedFd::from)
            })?;
        let saved = tcgetattr(&fd).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(&fd, SetArg::TCSANOW, &raw);
        }
        Some(HostTerminal { fd, saved })
    }

    /// Gives the container's pty this terminal's size.
    pub fn copy_size_to(&self, master: BorrowedFd<'_>) {
        if let Ok((rows, cols)) = pty::window_size(self.fd.as_fd()) {
            let _ = pty::set_window_size(master, rows, cols);
        }
    }
}

impl Drop for HostTerminal {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(&self.fd, SetArg::TCSANOW, saved);
        }
    }
}
