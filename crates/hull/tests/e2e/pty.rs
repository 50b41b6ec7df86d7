//! Interactive clients (`docker run -it`, `podman exec -it`, `ctr run -t`, …): a command on a
//! new pty, as the session leader with the pty as its controlling terminal.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{kill_child_group, wait_child};
use crate::util;

/// Runs `cmd` (a client starting an interactive `sh` in a container) on a new 24x80 pty:
/// asserts the shell's `# ` prompt shows (with `logs()` if not), types `input`, reads until
/// `until` shows, and waits up to 20 s for the client to exit. What was read after the
/// prompt, and the client's exit code (None if it still ran: it is killed then).
#[track_caller]
pub fn shell_session(
    cmd: Command,
    input: &str,
    until: &str,
    logs: impl Fn() -> String,
) -> (String, Option<i32>) {
    let mut p = PtyChild::spawn(cmd);
    let prompt = p.read_until("# ");
    assert!(prompt.contains("# "), "no prompt: {prompt:?}\n{}", logs());
    p.write(input);
    let text = p.read_until(until);
    let code = p.wait(Duration::from_secs(20));
    (text, code)
}

/// A process on a new pty: its session leader with the pty as controlling terminal. Its
/// session is killed on drop.
struct PtyChild {
    child: Child,
    master: OwnedFd,
}

impl PtyChild {
    fn spawn(mut cmd: Command) -> PtyChild {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut master = -1;
        let mut slave = -1;
        let ws = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the ints we pass; name and termios may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty just made this fd; nothing else owns it.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        // SAFETY: as for the master.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        // SAFETY: fcntl on an fd we own.
        unsafe {
            libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: the hook only calls setsid and ioctl (async-signal-safe) and allocates
        // nothing, as code between fork and exec must.
        unsafe {
            cmd.pre_exec(take_stdin_as_ctty);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program} on a pty: {e}"));
        // Our copies of the slave go with `cmd`, so the master sees EIO once the child and
        // its descendants are gone.
        drop(cmd);
        PtyChild { child, master }
    }

    fn read_until(&self, needle: &str) -> String {
        util::pty_read_until(&self.master, needle, Duration::from_secs(20))
    }

    fn write(&self, text: &str) {
        util::pty_write(&self.master, text.as_bytes());
    }

    /// Waits up to `timeout` for the process to exit; its exit code.
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        wait_child(&mut self.child, timeout)
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        // Its session is its process group.
        kill_child_group(&mut self.child);
    }
}

/// In a forked child: a new session whose controlling terminal is stdin (the pty slave).
fn take_stdin_as_ctty() -> std::io::Result<()> {
    // SAFETY: setsid(2) touches no memory of ours.
    if unsafe { libc::setsid() } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: TIOCSCTTY takes an integer argument, no pointer.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
