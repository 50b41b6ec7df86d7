//! Thin wrappers for the few system calls `nix` lacks, one function per syscall.
//!
//! Each submodule maps one kernel facility; fds come in and go out as `OwnedFd`/`BorrowedFd`.

pub mod mount;
pub mod net;
pub mod process;
pub mod pty;
pub mod sched;
