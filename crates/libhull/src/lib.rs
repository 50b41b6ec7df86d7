//! libhull: an OCI runtime as a library, on top of `hull-cgroups` and `hull-sys`
//! (docs/architecture.md has the crate graph).
//!
//! Layers, each using only those below it:
//! 1. [`container`]: the lifecycle (create, start, kill, delete, state, list) and its
//!    [`state`] store.
//! 2. [`process`]: spawning the container init and the ordered setup it runs before exec.
//! 3. Facilities the init uses: [`namespaces`], [`rootfs`], [`console`], [`hooks`],
//!    [`seccomp`], [`lsm`], [`notify`].
//! 4. Leaves: [`spec`], [`capabilities`], [`logging`]; [`features`] reads the layers above.
//! 5. The crates below: [`cgroups`] (`hull-cgroups`) and [`sys`] (`hull-sys`).

#![cfg_attr(not(test), forbid(unsafe_code))]

pub mod capabilities;
pub mod console;
pub mod container;
pub mod features;
pub mod hooks;
pub mod logging;
pub mod lsm;
pub mod namespaces;
pub mod notify;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;

/// The cgroup managers (the `hull-cgroups` crate).
pub use hull_cgroups as cgroups;
/// The system layer (the `hull-sys` crate).
pub use hull_sys as sys;

pub use container::{CreateOptions, Error, ExecOptions, RunOptions, Runtime};
