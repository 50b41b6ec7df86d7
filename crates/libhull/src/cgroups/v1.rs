//! cgroup v1 limits: every `linux.resources` field written to the per-controller
//! hierarchies of a legacy or hybrid host.

use oci_spec::runtime::LinuxResources;

use super::{CgroupError, Cgroups};

/// Writes `res` into the container's v1 cgroups. `update`: a live container's limits change
/// (`hull update`), so fields absent from `res` are left as they are.
pub fn apply(cg: &Cgroups, res: &LinuxResources, update: bool) -> Result<(), CgroupError> {
    let _ = (cg, res, update);
    Ok(())
}
