//! `delete`: ending a container (with `--force`, a running one) and releasing what it holds.

use super::*;

impl Runtime {
    /// Deletes a stopped container (`force`: kills it first); `force` on a missing id succeeds.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), DeleteError> {
        let entry = match self.store.open(id) {
            Ok(e) => e,
            Err(StateError::NotExist) if force => {
                // A create killed before it wrote state leaves only its directory.
                if let Ok(e) = self.store.open_partial(id) {
                    let _ = e.remove();
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let st = match entry.load() {
            Ok(st) => st,
            Err(e @ StateError::Corrupt { .. }) if force => {
                // Nothing says where the container's processes and cgroups are but its id.
                let found = cgroups::reap_by_id(id);
                tracing::warn!(
                    "{e}; removed the container by its id (cgroups: {})",
                    if found.is_empty() {
                        "none found".to_string()
                    } else {
                        found
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
                entry.remove()?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let status = st.status();
        // As runc: a created container goes without --force too. containerd's shim deletes a
        // task that never started that way (runtime-spec says it must be refused; runc and
        // youki do not, and the validation suite's `delete` file checks it).
        if !matches!(status, Status::Stopped | Status::Created) && !force {
            return Err(DeleteError::NotStopped {
                id: id.to_string(),
                status,
            });
        }
        // With the init gone its children may live on (no pid namespace of its own): they are
        // the container's too.
        kill_everything(&st);
        release_resources(&st)?;
        entry.remove()?;
        if st.creating {
            // Its create died: it never was a container, so no poststop.
            return Ok(());
        }
        let list = st
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_deref());
        warn_hooks("poststop", list, &st, HookStatus::Stopped);
        Ok(())
    }
}
