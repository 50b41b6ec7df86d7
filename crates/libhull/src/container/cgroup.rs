//! The commands that act on a container's cgroups: `pause`, `resume`, `ps`, `events`,
//! `update`.

use super::*;

impl Runtime {
    /// Freezes every process of a running (or created) container.
    pub fn pause(&self, id: &str) -> Result<(), ControlError> {
        let entry = self.store.open(id)?;
        let st = entry.load()?;
        match st.status() {
            Status::Running | Status::Created => {}
            _ => return Err(ControlError::NotRunning),
        }
        self.cgroups_of(&st)?.freeze(true)?;
        Ok(())
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<(), ControlError> {
        let entry = self.store.open(id)?;
        let st = entry.load()?;
        if st.status() != Status::Paused {
            return Err(ControlError::NotPaused);
        }
        self.cgroups_of(&st)?.freeze(false)?;
        Ok(())
    }

    /// The host pids of the container's processes (`ps`).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, ControlError> {
        let st = self.store.read(id)?;
        let mut pids: Vec<i32> = container_pids(&st).into_iter().map(Pid::as_raw).collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Usage statistics of the container's cgroups, as `events --stats` prints them.
    pub fn stats(&self, id: &str) -> Result<cgroups::stats::Stats, ControlError> {
        let st = self.store.read(id)?;
        if st.status() == Status::Stopped {
            return Err(ControlError::EventsNotRunning(id.to_string()));
        }
        Ok(cgroups::stats::collect(self.cgroups_of(&st)?)?)
    }

    /// `events`: with `stats_only` one stats event; else stats every `interval` and OOM
    /// events as they happen, until the container stops.
    pub fn events(
        &self,
        id: &str,
        interval: Duration,
        stats_only: bool,
        emit: &mut dyn FnMut(&cgroups::events::Event) -> std::io::Result<()>,
    ) -> Result<(), ControlError> {
        let st = self.store.read(id)?;
        if st.status() == Status::Stopped {
            return Err(ControlError::EventsNotRunning(id.to_string()));
        }
        let cg = self.cgroups_of(&st)?;
        let alive = || {
            self.store
                .read(id)
                .is_ok_and(|now| now.status() != Status::Stopped)
        };
        cgroups::events::run(id, cg, interval, stats_only, &alive, emit)?;
        Ok(())
    }

    /// Changes the limits of a live container: `res` holds only the fields to change.
    pub fn update(
        &self,
        id: &str,
        res: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), ControlError> {
        let entry = self.store.open(id)?;
        let mut st = entry.load()?;
        if st.status() == Status::Stopped {
            return Err(ControlError::NotRunning);
        }
        let cg = self.cgroups_of(&st)?.clone();
        cg.check_ownership(true)?;
        let mut res = res.clone();
        if res.devices().is_some() {
            // As runc: device rules are set at create only.
            tracing::warn!("update: linux.resources.devices is ignored");
            res.set_devices(None);
        }
        cg.apply(&res, true)?;
        let linux = st.config.linux_mut().get_or_insert_with(Default::default);
        let mut merged = linux.resources().clone().unwrap_or_default();
        crate::spec::merge_resources(&mut merged, &res);
        linux.set_resources(Some(merged));
        entry.save(&st)?;
        Ok(())
    }

    pub(super) fn cgroups_of<'a>(
        &self,
        st: &'a ContainerState,
    ) -> Result<&'a Cgroups, ControlError> {
        st.cgroups
            .as_ref()
            .ok_or_else(|| ControlError::NoCgroups(st.id.clone()))
    }
}
