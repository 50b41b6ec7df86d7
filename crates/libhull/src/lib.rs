//! libhull: an OCI runtime as a library, on top of `hull-cgroups` and `hull-sys`
//! (docs/architecture.md has the crate graph).
//!
//! Layers, each using only those below it:
//! 1. [`container`]: the lifecycle (create, start, kill, delete, state, list) and its
//!    [`state`] store (`container::state`).
//! 2. [`process`]: spawning the container init and the ordered setup it runs before exec.
//! 3. Facilities the init uses: [`namespaces`], [`rootfs`], [`console`], [`hooks`],
//!    [`seccomp`], [`lsm`], [`notify`].
//! 4. Leaves: [`spec`], [`capabilities`], [`logging`], [`timing`]; [`features`] reads the
//!    layers above.
//! 5. The crates below: [`cgroups`] (`hull-cgroups`) and [`sys`] (`hull-sys`).
//!
//! The public API is what the `hull` CLI uses: [`Runtime`] and its options for the commands,
//! [`state`] for what `state` and `list` print, [`spec`] for `config.json` and `hull spec`,
//! [`features`], [`logging`], [`timing`], and the protection of the runtime binary
//! ([`process::sealed::ensure`]). The facilities below are internal.
//!
//! # Example
//!
//! Run a container from a bundle in the foreground and delete it, as `hull run` does (as
//! root, the bundle made with `hull spec`):
//!
//! ```no_run
//! use libhull::{CreateOptions, RunOptions, Runtime};
//!
//! // Before anything else, as `hull` does: re-execute from a copy a container cannot reach.
//! libhull::process::sealed::ensure().expect("protect the runtime binary");
//! let runtime = Runtime::new("/run/hull-example");
//! let create = CreateOptions {
//!     id: "demo".into(),
//!     bundle: "/tmp/bundle".into(),
//!     ..Default::default()
//! };
//! let exit_code = runtime.run(&create, &RunOptions::default())?;
//! println!("the container exited with {exit_code}");
//! # Ok::<(), libhull::Error>(())
//! ```

#![cfg_attr(not(test), forbid(unsafe_code))]

pub(crate) mod capabilities;
pub(crate) mod console;
pub mod container;
pub(crate) mod criu;
pub mod features;
pub(crate) mod hooks;
pub mod logging;
pub(crate) mod lsm;
pub(crate) mod namespaces;
pub(crate) mod notify;
pub mod process;
pub(crate) mod rootfs;
pub(crate) mod seccomp;
pub mod spec;
pub mod timing;

/// The cgroup managers (the `hull-cgroups` crate).
pub use hull_cgroups as cgroups;
/// The system layer (the `hull-sys` crate).
pub use hull_sys as sys;

pub use container::{
    state, CheckpointError, CheckpointOptions, CreateOptions, Error, ExecOptions, RestoreError,
    RestoreOptions, RunOptions, Runtime,
};
