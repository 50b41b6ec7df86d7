//! The cpu controller (v1): shares, CFS quota, period and burst, realtime runtime and
//! period, SCHED_IDLE groups.

use super::*;

impl<'a> Plan<'a> {
    pub(super) fn cpu(&mut self, c: &LinuxCpu) -> Result<(), CgroupError> {
        let Some(v) = CpuValues::check(c)? else {
            return Ok(());
        };
        let CpuValues {
            shares,
            quota,
            period,
            burst,
            rt_runtime,
            rt_period,
            idle,
        } = v;
        let dir = self.dir("cpu", "cpu")?;
        let no_cfs = "the kernel has no CFS bandwidth control";
        let no_rt = "the kernel has no realtime group scheduling (CONFIG_RT_GROUP_SCHED)";
        if shares.is_some() {
            self.need("cpu.shares", dir, "cpu.shares", "no CFS group scheduling")?;
        }
        if quota.is_some() {
            self.need("cpu.quota", dir, "cpu.cfs_quota_us", no_cfs)?;
        }
        if period.is_some() {
            self.need("cpu.period", dir, "cpu.cfs_period_us", no_cfs)?;
        }
        if burst.is_some() {
            self.need(
                "cpu.burst",
                dir,
                "cpu.cfs_burst_us",
                "the kernel has no CFS burst (5.14+)",
            )?;
        }
        if rt_runtime.is_some() {
            self.need("cpu.realtimeRuntime", dir, "cpu.rt_runtime_us", no_rt)?;
        }
        if rt_period.is_some() {
            self.need("cpu.realtimePeriod", dir, "cpu.rt_period_us", no_rt)?;
        }
        if idle.is_some() {
            self.need(
                "cpu.idle",
                dir,
                "cpu.idle",
                "the kernel has no SCHED_IDLE groups (5.15+)",
            )?;
        }

        // The kernel refuses cpu.shares while the group is idle: leave idle first, and
        // enter it last.
        if let Some(0) = idle {
            self.steps
                .push(Step::Write(self.write("cpu.idle", dir, "cpu.idle", 0)));
        }
        if let Some(s) = shares {
            self.steps
                .push(Step::Write(self.write("cpu.shares", dir, "cpu.shares", s)));
        }
        self.cpu_bandwidth(dir, quota, period, burst)?;
        let rt_period_write =
            rt_period.map(|p| self.write("cpu.realtimePeriod", dir, "cpu.rt_period_us", p));
        let rt_runtime_write =
            rt_runtime.map(|r| self.write("cpu.realtimeRuntime", dir, "cpu.rt_runtime_us", r));
        self.push_pair(rt_period_write, rt_runtime_write);
        if let Some(1) = idle {
            self.steps
                .push(Step::Write(self.write("cpu.idle", dir, "cpu.idle", 1)));
        }
        Ok(())
    }

    /// CFS quota, period and burst, in an order the kernel accepts (burst <= quota always).
    fn cpu_bandwidth(
        &mut self,
        dir: &'a Path,
        quota: Option<i64>,
        period: Option<u64>,
        burst: Option<u64>,
    ) -> Result<(), CgroupError> {
        // burst <= quota always: lower the burst before the quota, raise it after. When
        // only one of them changes, the other is the current value.
        let burst_file = dir.join("cpu.cfs_burst_us");
        match (quota, burst) {
            (Some(q), None) if q > 0 && burst_file.exists() => {
                let current: u64 = read_number(&burst_file)?;
                if current > q as u64 {
                    return Err(invalid(
                        field("cpu.quota"),
                        format!(
                            "{q} is below the current burst {current}; set \
                             linux.resources.cpu.burst as well"
                        ),
                    ));
                }
            }
            (None, Some(b)) if b > 0 => {
                let current: i64 = read_number(&dir.join("cpu.cfs_quota_us"))?;
                if current > 0 && b > current as u64 {
                    return Err(invalid(
                        field("cpu.burst"),
                        format!(
                            "{b} is above the current quota {current}; set \
                             linux.resources.cpu.quota as well"
                        ),
                    ));
                }
            }
            _ => {}
        }
        let mut burst_after = None;
        if let Some(b) = burst {
            let w = self.write("cpu.burst", dir, "cpu.cfs_burst_us", b);
            let current: u64 = read_number(&dir.join("cpu.cfs_burst_us"))?;
            if b <= current {
                self.steps.push(Step::Write(w));
            } else {
                burst_after = Some(w);
            }
        }
        let period_write = period.map(|p| self.write("cpu.period", dir, "cpu.cfs_period_us", p));
        let quota_write = quota.map(|q| self.write("cpu.quota", dir, "cpu.cfs_quota_us", q));
        self.push_pair(period_write, quota_write);
        if let Some(w) = burst_after {
            self.steps.push(Step::Write(w));
        }
        Ok(())
    }
}

/// The cpu controller's fields of a config, checked (0 means unset, as in runc); `None`
/// when none is set. cpus and mems are checked here too but written by the cpuset code.
struct CpuValues {
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
    burst: Option<u64>,
    rt_runtime: Option<i64>,
    rt_period: Option<u64>,
    idle: Option<i64>,
}

impl CpuValues {
    fn check(c: &LinuxCpu) -> Result<Option<CpuValues>, CgroupError> {
        // As in runc, 0 means "unset" for shares, quota, period and the realtime values.
        let shares = match c.shares() {
            None | Some(0) => None,
            Some(s) if (2..=262_144).contains(&s) => Some(s),
            Some(s) => {
                return Err(invalid(
                    field("cpu.shares"),
                    format!("{s} is out of range 2..=262144"),
                ))
            }
        };
        let quota = match c.quota() {
            None | Some(0) => None,
            Some(q) if q == -1 || q >= 1000 => Some(q),
            Some(q) => {
                return Err(invalid(
                    field("cpu.quota"),
                    format!("{q} is neither -1 (no limit) nor at least 1000 µs"),
                ))
            }
        };
        let period = match c.period() {
            None | Some(0) => None,
            Some(p) if (1000..=1_000_000).contains(&p) => Some(p),
            Some(p) => {
                return Err(invalid(
                    field("cpu.period"),
                    format!("{p} is out of range 1000..=1000000 µs"),
                ))
            }
        };
        let burst = c.burst();
        if let (Some(b), Some(q)) = (burst, quota) {
            if q > 0 && b > q as u64 {
                return Err(invalid(
                    field("cpu.burst"),
                    format!("{b} is above cpu.quota {q}"),
                ));
            }
        }
        let rt_runtime = match c.realtime_runtime() {
            None | Some(0) => None,
            Some(r) if r >= -1 => Some(r),
            Some(r) => {
                return Err(invalid(
                    field("cpu.realtimeRuntime"),
                    format!("{r} is neither -1 (no limit) nor a positive number of µs"),
                ))
            }
        };
        let rt_period = c.realtime_period().filter(|p| *p != 0);
        if let (Some(r), Some(p)) = (rt_runtime, rt_period) {
            if r > 0 && r as u64 > p {
                return Err(invalid(
                    field("cpu.realtimeRuntime"),
                    format!("{r} is above cpu.realtimePeriod {p}"),
                ));
            }
        }
        let idle = match c.idle() {
            None => None,
            Some(i @ (0 | 1)) => Some(i),
            Some(i) => {
                return Err(invalid(
                    field("cpu.idle"),
                    format!("{i} is neither 0 nor 1"),
                ))
            }
        };
        for (name, list) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
            if let Some(list) = list {
                let ok = |ch: char| ch.is_ascii_digit() || ",-:/".contains(ch);
                if !list.trim().chars().all(ok) {
                    return Err(invalid(
                        field(name),
                        format!("{list:?} is not a list like \"0-3,6\""),
                    ));
                }
            }
        }

        let anything = shares.is_some()
            || quota.is_some()
            || period.is_some()
            || burst.is_some()
            || rt_runtime.is_some()
            || rt_period.is_some()
            || idle.is_some();
        if !anything {
            return Ok(None);
        }
        Ok(Some(CpuValues {
            shares,
            quota,
            period,
            burst,
            rt_runtime,
            rt_period,
            idle,
        }))
    }
}
