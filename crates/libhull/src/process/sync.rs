//! The sync channel between the runtime and the container init: a SOCK_SEQPACKET socketpair
//! carrying one JSON message per packet, so every setup step can report success or a typed
//! error back to the runtime.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

/// A failed setup step in the init, as the runtime reports it: which step (a type both
/// sides share) and what went wrong (rendered in the init, whose error values cannot cross
/// the process boundary).
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{step}: {message}")]
pub struct InitError {
    pub step: InitStep,
    pub message: String,
}

/// Declares [`InitStep`] with the words each step is reported with (runc's where it has some).
macro_rules! init_steps {
    ($($step:ident => $words:literal,)*) => {
        /// The setup steps of the container init that can fail.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum InitStep {
            $($step,)*
        }

        impl InitStep {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(InitStep::$step => $words,)*
                }
            }
        }
    };
}

init_steps! {
    ContainerInitPanicked => "container init panicked",
    JoinNamespaces => "join namespaces",
    CreateUserNamespace => "create user namespace",
    Sync => "sync",
    CreateNamespaces => "create namespaces",
    TimeNamespace => "time namespace",
    ForkIntoPidNamespace => "fork into pid namespace",
    InstallSignalHandler => "install signal handler",
    ResetSignalHandlers => "reset signal handlers",
    ResetSignalMask => "reset signal mask",
    RootGidInUserNamespace => "setresgid 0 in user namespace",
    RootUidInUserNamespace => "setresuid 0 in user namespace",
    SetNonDumpable => "set non-dumpable",
    SetParentDeathSignal => "set parent death signal",
    LoopbackUp => "set the loopback interface up",
    SessionKeyringLabel => "session keyring label",
    SessionKeyring => "session keyring",
    PrepareRootfs => "prepare rootfs",
    EnterRootfs => "enter rootfs",
    CreateCwd => "create cwd",
    Console => "console",
    Sysctl => "sysctl",
    FinalizeRootfs => "finalize rootfs",
    Hostname => "hostname",
    Domainname => "domainname",
    CreateContainerHook => "createContainer hook",
    WaitForStart => "wait for start",
    Rlimits => "rlimits",
    Chroot => "chroot",
    StartContainerProcess => "unable to start container process",
    Setsid => "setsid",
    Personality => "personality",
    Scheduler => "scheduler",
    IoPriority => "ioPriority",
    InitialCpuAffinity => "execCPUAffinity.initial",
    Chdir => "chdir",
    OomScoreAdj => "oomScoreAdj",
    Capabilities => "capabilities",
    LsmLabels => "lsm labels",
    ChownStdio => "chown stdio",
    User => "user",
    CloseFds => "close fds",
    FinalCpuAffinity => "execCPUAffinity.final",
    NoNewPrivileges => "noNewPrivileges",
    Seccomp => "seccomp",
    SendSeccompListener => "send seccomp listener",
    StartContainerHook => "startContainer hook",
    ReadPasswd => "read /etc/passwd",
}

impl std::fmt::Display for InitStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest message that goes over the channel; a packet holds 64 KiB and a longer error
/// (a huge hostname quoted back) would arrive cut inside its JSON.
const MAX_ERROR: usize = 4096;

impl InitError {
    pub fn new(step: InitStep, err: impl std::fmt::Display) -> InitError {
        let mut message = err.to_string();
        if message.len() > MAX_ERROR {
            let mut end = MAX_ERROR;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        InitError { step, message }
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
    /// The init could not move itself into its v1 cgroups: the runtime joins it, then
    /// continues.
    JoinCgroups,
    /// Mounts are done: run the prestart and createRuntime hooks now.
    RunRuntimeHooks,
    /// The seccomp notify listener follows in the next packet (SCM_RIGHTS): send it to the
    /// agent, then continue.
    SeccompListener,
    /// A detached copy of `mounts[N]`'s source follows in the next packet (SCM_RIGHTS): set
    /// its idmapping ([`crate::rootfs::set_idmap`]), then continue.
    IdmapMount(usize),
    /// Setup is complete; the init waits for `start`.
    Ready,
    Failed(InitError),
}

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
    /// [`crate::console::recv_fd`] reads it; no allocation (see `hull_sys::fdpass`), as
    /// right after a notify filter is loaded.
    pub fn send_fd_no_alloc(&self, name: &str, fd: BorrowedFd<'_>) -> Result<(), SyncError> {
        hull_sys::fdpass::send_fd(self.fd.as_fd(), name.as_bytes(), fd)?;
        Ok(())
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
    use std::io::Read;

    #[test]
    fn an_fd_sent_without_allocating_arrives_with_its_name() {
        let (runtime, init) = pair().unwrap();
        // A pipe's read end stands for the listener: what goes into the write end comes out
        // of the fd the runtime received.
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        init.send_encoded(&Channel::encode(&FromInit::SeccompListener).unwrap())
            .unwrap();
        init.send_fd_no_alloc("seccomp", read_end.as_fd()).unwrap();
        drop(read_end);
        nix::unistd::write(&write_end, b"listener").unwrap();
        drop(write_end);
        assert!(matches!(
            runtime.recv::<FromInit>().unwrap(),
            FromInit::SeccompListener
        ));
        let (name, fd) = crate::console::recv_fd(runtime.as_fd()).unwrap();
        assert_eq!(name, "seccomp");
        let mut got = std::fs::File::from(fd);
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "listener");
    }

    #[test]
    fn a_failed_step_crosses_the_channel_as_its_type() {
        let (runtime, init) = pair().unwrap();
        let long = "x".repeat(MAX_ERROR + 10);
        init.send(&FromInit::Failed(InitError::new(InitStep::Chdir, &long)))
            .unwrap();
        let Ok(FromInit::Failed(e)) = runtime.recv::<FromInit>() else {
            panic!("no Failed message");
        };
        assert_eq!(e.step, InitStep::Chdir);
        assert!(e.to_string().starts_with("chdir: xxx"), "{e}");
        assert!(e.message.ends_with('…') && e.message.len() <= MAX_ERROR + 3);
        assert_eq!(
            InitError::new(InitStep::StartContainerProcess, "exec: \"x\": not found").to_string(),
            "unable to start container process: exec: \"x\": not found"
        );
    }
}
