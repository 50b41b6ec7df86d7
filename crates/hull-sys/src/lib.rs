//! hull's system layer: thin wrappers for the system calls `nix` lacks (one function per
//! syscall, fds in and out as `OwnedFd`/`BorrowedFd`) and the readers of the kernel's
//! generated files (/proc) that more than one part of the runtime needs.
//!
//! It is the bottom of hull's crate graph: it knows nothing of containers, configs or
//! cgroups, and it is the one crate of the workspace where `unsafe` code may live; every
//! other crate wraps system calls through it, `nix` or `pathrs`.

pub mod bpf;
pub mod fd;
pub mod fdpass;
pub mod fs;
pub mod keyring;
pub mod mount;
pub mod mountinfo;
pub mod net;
pub mod proc;
pub mod process;
pub mod pty;
pub mod sched;
pub mod seccomp;
pub mod signal;
