//! Passing one file descriptor over a unix socket (SCM_RIGHTS): the console socket's pty
//! master, the seccomp notify listener to the runtime and to an agent.
//!
//! [`send_fd`] builds its control message on the stack and allocates nothing, so the init can
//! use it right after a notify filter is loaded (when a brk or mmap could be held for an agent
//! that cannot have the listener yet).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// One SCM_RIGHTS control message with one fd, laid out as CMSG_SPACE(sizeof(int)) bytes:
/// the header is already aligned, the fd follows it at CMSG_DATA, and the tail pads it to
/// the header's alignment.
#[repr(C)]
struct FdControl {
    hdr: libc::cmsghdr,
    fd: libc::c_int,
    pad: libc::c_int,
}

/// CMSG_LEN(sizeof(int)).
const FD_CMSG_LEN: usize =
    std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<libc::c_int>();

/// Sends `fd` in one message whose data is `data` (which must not be empty: a stream socket
/// drops fds sent with no data). Returns how many bytes of `data` went; EINTR is retried.
/// One syscall, no allocation.
pub fn send_fd(socket: BorrowedFd<'_>, data: &[u8], fd: BorrowedFd<'_>) -> Result<usize, Errno> {
    let mut control = FdControl {
        hdr: libc::cmsghdr {
            cmsg_len: FD_CMSG_LEN as _,
            cmsg_level: libc::SOL_SOCKET,
            cmsg_type: libc::SCM_RIGHTS,
        },
        fd: fd.as_raw_fd(),
        pad: 0,
    };
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut control as *mut FdControl).cast();
    msg.msg_controllen = std::mem::size_of::<FdControl>() as _;
    loop {
        // SAFETY: `msg` is a valid msghdr whose buffers (iov, data, control) are alive for
        // the call; sendmsg only reads them.
        let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// The most fds [`recv_fds`] takes from one message; more truncate it (and are closed by the
/// kernel).
pub const RECV_MAX_FDS: usize = 4;

/// What one message brought.
#[derive(Debug)]
pub struct Received {
    /// Bytes of data, written to the start of the caller's buffer.
    pub len: usize,
    /// The fds that came with it, close-on-exec, owned here: dropped, they close.
    pub fds: Vec<OwnedFd>,
    /// The control part did not fit (MSG_CTRUNC): more fds were sent than taken.
    pub fds_truncated: bool,
}

/// Receives one message into `buf` with the fds (up to [`RECV_MAX_FDS`]) sent with it.
/// EINTR is retried.
pub fn recv_fds(socket: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Received, Errno> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; RECV_MAX_FDS]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => other?,
        };
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: SCM_RIGHTS just installed these fds in our table; nothing else
                // owns them, and wrapping them at once closes them on every error path.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        return Ok(Received {
            len: msg.bytes,
            fds_truncated: msg.flags.contains(MsgFlags::MSG_CTRUNC),
            fds,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    #[test]
    fn the_fd_control_message_has_the_kernels_layout() {
        let int = std::mem::size_of::<libc::c_int>() as u32;
        // SAFETY: the CMSG_* macros are arithmetic on their argument.
        let space = unsafe { libc::CMSG_SPACE(int) } as usize;
        // SAFETY: as above.
        let len = unsafe { libc::CMSG_LEN(int) } as usize;
        assert_eq!(std::mem::size_of::<FdControl>(), space);
        assert_eq!(FD_CMSG_LEN, len);
    }

    #[test]
    fn an_fd_sent_arrives_with_its_data_and_still_open() {
        for ty in [SockType::Stream, SockType::SeqPacket] {
            let (a, b) = socketpair(AddressFamily::Unix, ty, None, SockFlag::SOCK_CLOEXEC).unwrap();
            let mut file = tempfile();
            file.write_all(b"listener").unwrap();
            assert_eq!(send_fd(a.as_fd(), b"seccomp", file.as_fd()).unwrap(), 7);
            let mut buf = [0u8; 64];
            let got = recv_fds(b.as_fd(), &mut buf).unwrap();
            assert_eq!(&buf[..got.len], b"seccomp");
            assert!(!got.fds_truncated);
            assert_eq!(got.fds.len(), 1);
            let mut f = std::fs::File::from(got.fds.into_iter().next().unwrap());
            f.rewind().unwrap();
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            assert_eq!(text, "listener");
        }
    }

    #[test]
    fn a_message_without_fds_brings_none_and_a_closed_peer_nothing() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        nix::unistd::write(&a, b"x").unwrap();
        let mut buf = [0u8; 8];
        let got = recv_fds(b.as_fd(), &mut buf).unwrap();
        assert_eq!((got.len, got.fds.len()), (1, 0));
        drop(a);
        let got = recv_fds(b.as_fd(), &mut buf).unwrap();
        assert_eq!((got.len, got.fds.len()), (0, 0));
    }

    fn tempfile() -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "hull-sys-fdpass-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }
}
