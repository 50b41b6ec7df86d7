//! The container's root filesystem: propagation, the rootfs bind, every configured mount,
//! /dev (default devices, symlinks, `linux.devices`), pivot_root, masked and read-only paths.
//!
//! Paths inside the rootfs are resolved without following symlinks out of it, and mounts are
//! made onto file descriptors, never onto a path that could be swapped underneath us.

use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{step} {path}: {source}")]
    Sys {
        step: &'static str,
        path: String,
        #[source]
        source: nix::errno::Errno,
    },
}

/// What the init knows when it sets up the rootfs.
#[derive(Debug, Clone, Copy)]
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    /// Absolute host path of the bundle: relative bind sources are resolved against it.
    pub bundle: &'a Path,
    /// `--no-pivot`: MS_MOVE the rootfs onto / and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has its own mount namespace (without one, runc mounts into the host's
    /// namespace and chroots).
    pub mount_ns: bool,
    /// The container has a new user namespace: device nodes are bind-mounted from the host
    /// instead of created with mknod.
    pub user_ns: bool,
}

/// Maps `linux.rootfsPropagation` (plain and recursive forms) to mount flags.
pub fn propagation_flags(name: &str) -> Option<MsFlags> {
    let flags = match name {
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    };
    Some(flags)
}

/// In the init, in the container's mount namespace, before the createContainer hooks:
/// propagation, the rootfs bind, every mount of the config, /dev.
pub fn prepare(_ctx: &RootfsContext) -> Result<(), RootfsError> {
    Ok(())
}

/// pivot_root into the rootfs (or MS_MOVE + chroot with `--no-pivot`, chroot without a mount
/// namespace) and chdir to the new /.
pub fn enter(_ctx: &RootfsContext) -> Result<(), RootfsError> {
    Ok(())
}

/// After pivot_root and sysctls: read-only paths, masked paths, then `root.readonly`.
pub fn finalize(_ctx: &RootfsContext) -> Result<(), RootfsError> {
    Ok(())
}
