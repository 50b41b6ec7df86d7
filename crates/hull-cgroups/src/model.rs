//! What a container's cgroups are, as kept in its state: the v1 hierarchies, the cgroup2
//! directory, what hull made, the systemd unit.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::systemd;

/// One v1 hierarchy the container is in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// Its controllers as /proc/self/cgroup names them (`cpu`, `memory`, `name=systemd`);
    /// more than one when co-mounted (`cpu,cpuacct`).
    pub controllers: Vec<String>,
    /// The container's cgroup directory in it (absolute, on the host).
    pub dir: PathBuf,
}

/// Where one container's cgroups are; kept in its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroups {
    /// The v1 hierarchies (legacy and hybrid hosts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub v1: Vec<Hierarchy>,
    /// The cgroup2 directory: the only one on a unified host, the side hierarchy (hugetlb
    /// here) on a hybrid host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
    /// Whether `unified` is the whole story (a unified host) or a side hierarchy.
    #[serde(default)]
    pub unified_only: bool,
    /// The directories hull made, parents first: only these are the container's own (their
    /// processes are its processes) and removed with what is below them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<PathBuf>,
    /// The directories `plan` found missing, recorded before `make` creates them so that a
    /// runtime killed in between leaves them findable. Until `make` says which it really
    /// made, they grant nothing: `remove` only tries an rmdir of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PathBuf>,
    /// The systemd unit that holds the container (`--systemd-cgroup`): systemd makes and
    /// removes its cgroup, `unified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
    /// The config's `org.systemd.property.*` annotations, checked, for the unit's start.
    #[serde(skip)]
    pub(crate) unit_annotations: std::collections::BTreeMap<String, String>,
}

impl Cgroups {
    /// The container's directory in the v1 hierarchy holding `controller`.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.dir.as_path())
    }
}
