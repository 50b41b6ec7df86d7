//! The sync channel between the runtime and the container init: a SOCK_SEQPACKET socketpair
//! carrying one JSON message per packet, so every setup step can report success or a typed
//! error back to the runtime.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

/// A failed setup step in the init, as the runtime reports it.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{step}: {message}")]
pub struct InitError {
    pub step: String,
    pub message: String,
}

/// Longest message that goes over the channel; a packet holds 64 KiB and a longer error
/// (a huge hostname quoted back) would arrive cut inside its JSON.
const MAX_ERROR: usize = 4096;

impl InitError {
    pub fn new(step: impl Into<String>, err: impl std::fmt::Display) -> InitError {
        let mut message = err.to_string();
        if message.len() > MAX_ERROR {
            let mut end = MAX_ERROR;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        InitError {
            step: step.into(),
            message,
        }
    }
}

/// Init → runtime.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    /// The process that unshared a new user namespace waits for its id maps.
    WantIdMaps,
    /// The process that unshared a time namespace owned by a new user namespace waits for
    /// its offsets: only the runtime may write them (see [`crate::namespaces::write_time_offsets`]).
    WantTimeOffsets,
    /// The container init's pid in the runtime's pid namespace, when it is not the clone
    /// child itself (an extra fork was needed to enter a pid or time namespace).
    InitPid(i32),
    /// Mounts are done: run the prestart and createRuntime hooks now.
    RunRuntimeHooks,
    /// The seccomp notify listener follows in the next packet (SCM_RIGHTS): send it to the
    /// agent, then continue.
    SeccompListener,
    /// Setup is complete; the init waits for `start`.
    Ready,
    Failed(InitError),
}

/// One SCM_RIGHTS control message with one fd, laid out as CMSG_SPACE(sizeof(int)) bytes:
/// the header is already aligned, the fd follows it at CMSG_DATA.
#[repr(C)]
struct FdControl {
    hdr: libc::cmsghdr,
    fd: libc::c_int,
}

/// CMSG_LEN(sizeof(int)).
const FD_CMSG_LEN: usize =
    std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<libc::c_int>();

/// Runtime → init.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    /// First message to the init: go on; `host_pid` is its pid as the runtime sees it.
    Go {
        host_pid: i32,
    },
    Continue,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync channel: {0}")]
    Sys(#[from] Errno),
    #[error("sync channel: bad message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("sync channel closed by the other side")]
    Closed,
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Makes a connected pair (runtime end, init end), both close-on-exec.
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

const MAX_MSG: usize = 64 * 1024;

impl Channel {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), SyncError> {
        self.send_encoded(&Self::encode(msg)?)
    }

    /// `msg` as [`Channel::send_encoded`] sends it, made ahead of a moment when the init
    /// must not allocate.
    pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, SyncError> {
        Ok(serde_json::to_vec(msg)?)
    }

    /// Sends a message [`Channel::encode`] made; one syscall, no allocation.
    pub fn send_encoded(&self, data: &[u8]) -> Result<(), SyncError> {
        loop {
            match send(self.fd.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL) {
                Err(Errno::EINTR) => continue,
                r => return r.map(drop).map_err(Into::into),
            }
        }
    }

    /// Sends `fd` in a packet of its own whose payload is `name`, as
    /// [`crate::console::recv_fd`] reads it. Unlike `console::send_fd` it builds the control
    /// message on the stack: right after a notify filter is loaded, a brk or mmap could be
    /// held for an agent that cannot have the listener yet.
    pub fn send_fd_no_alloc(&self, name: &str, fd: BorrowedFd<'_>) -> Result<(), SyncError> {
        let mut control = FdControl {
            hdr: libc::cmsghdr {
                cmsg_len: FD_CMSG_LEN as _,
                cmsg_level: libc::SOL_SOCKET,
                cmsg_type: libc::SCM_RIGHTS,
            },
            fd: fd.as_raw_fd(),
        };
        let mut iov = libc::iovec {
            iov_base: name.as_ptr() as *mut libc::c_void,
            iov_len: name.len(),
        };
        // SAFETY: an all-zero msghdr is a valid empty one.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = (&mut control as *mut FdControl).cast();
        msg.msg_controllen = std::mem::size_of::<FdControl>() as _;
        loop {
            // SAFETY: `msg` is a valid msghdr whose buffers are alive for the call.
            let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(());
            }
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e.into()),
            }
        }
    }

    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<T, SyncError> {
        let mut buf = vec![0u8; MAX_MSG];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Err(SyncError::Closed);
        }
        Ok(serde_json::from_slice(&buf[..n])?)
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

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
    fn an_fd_sent_without_allocating_arrives_with_its_name() {
        let (runtime, init) = pair().unwrap();
        let mut file = tempfile_in_tmp();
        file.write_all(b"listener").unwrap();
        init.send_encoded(&Channel::encode(&FromInit::SeccompListener).unwrap())
            .unwrap();
        init.send_fd_no_alloc("seccomp", file.as_fd()).unwrap();
        assert!(matches!(
            runtime.recv::<FromInit>().unwrap(),
            FromInit::SeccompListener
        ));
        let (name, fd) = crate::console::recv_fd(runtime.as_fd()).unwrap();
        assert_eq!(name, "seccomp");
        let mut got = std::fs::File::from(fd);
        got.rewind().unwrap();
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "listener");
    }

    fn tempfile_in_tmp() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("hull-sync-test-{}", std::process::id()));
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
