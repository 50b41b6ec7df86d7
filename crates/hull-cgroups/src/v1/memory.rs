//! The memory controller (v1): limits, swap (memory+swap) and their order, reservation,
//! kernel memory, swappiness, the OOM killer.

use super::*;

impl<'a> Plan<'a> {
    pub(super) fn memory(&mut self, m: &LinuxMemory) -> Result<(), CgroupError> {
        let Some(v) = MemoryValues::check(m)? else {
            return Ok(());
        };
        let MemoryValues {
            limit,
            reservation,
            mut swap,
            kernel,
            kernel_tcp,
            swappiness,
        } = v;
        let dir = self.dir("memory", "memory")?;
        let memsw = dir.join("memory.memsw.limit_in_bytes");

        // Before anything is charged: the kernel only changes it while the cgroup is empty.
        if let Some(wanted) = m.use_hierarchy() {
            let current = read(&dir.join("memory.use_hierarchy"))?.trim() == "1";
            if wanted != current {
                let w = self.write(
                    "memory.useHierarchy",
                    dir,
                    "memory.use_hierarchy",
                    u8::from(wanted),
                );
                // Kernels since 5.16 always account hierarchically and refuse 0; runc
                // ignores the field altogether, so a refusal is only a warning.
                self.steps.push(if wanted {
                    Step::Write(w)
                } else {
                    Step::WriteOrWarn(w)
                });
            }
        }

        if swap.is_none() && limit == Some(-1) && memsw.exists() {
            // runc: an unlimited memory limit lifts the memory+swap limit too, which must
            // never be below it.
            swap = Some(-1);
        }
        if swap.is_some() && !memsw.exists() {
            return Err(unsupported(
                field("memory.swap"),
                "memory.memsw.limit_in_bytes does not exist: swap accounting is off on this \
                 host (boot with swapaccount=1)",
            ));
        }
        if self.update && m.check_before_update() == Some(true) {
            if let Some(l) = limit.filter(|l| *l > 0) {
                let usage: u64 = read_number(&dir.join("memory.usage_in_bytes"))?;
                if (l as u64) < usage {
                    return Err(invalid(
                        field("memory.limit"),
                        format!(
                            "{l} is below the current usage {usage} (checkBeforeUpdate is set)"
                        ),
                    ));
                }
            }
        }
        self.memory_and_swap(dir, limit, swap)?;

        self.memory_extras(m, dir, reservation, kernel, kernel_tcp, swappiness)
    }

    /// The memory and memory+swap limits, in the order the kernel accepts (it keeps
    /// memory+swap >= memory at every moment).
    fn memory_and_swap(
        &mut self,
        dir: &'a Path,
        limit: Option<i64>,
        swap: Option<i64>,
    ) -> Result<(), CgroupError> {
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        let limit_file = dir.join("memory.limit_in_bytes");
        let as_u64 = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
        match (limit, swap) {
            (Some(l), Some(s)) => {
                // The kernel keeps memory+swap >= memory at every moment: raise memsw
                // first when the new total is at least the current limit, else lower the
                // limit first.
                let current: u64 = read_number(&limit_file)?;
                let swap_write = self.write("memory.swap", dir, "memory.memsw.limit_in_bytes", s);
                let limit_write = self.write("memory.limit", dir, "memory.limit_in_bytes", l);
                if as_u64(s) >= current {
                    self.steps.push(Step::Write(swap_write));
                    self.steps.push(Step::MemoryLimit(limit_write));
                } else {
                    self.steps.push(Step::MemoryLimit(limit_write));
                    self.steps.push(Step::Write(swap_write));
                }
            }
            (Some(l), None) => {
                if memsw.exists() {
                    let total: u64 = read_number(&memsw)?;
                    if as_u64(l) > total && total < MEMORY_UNLIMITED {
                        return Err(invalid(
                            field("memory.limit"),
                            format!(
                                "{l} is above the current memory+swap limit {total}; \
                                 set linux.resources.memory.swap as well"
                            ),
                        ));
                    }
                }
                let w = self.write("memory.limit", dir, "memory.limit_in_bytes", l);
                self.steps.push(Step::MemoryLimit(w));
            }
            (None, Some(s)) => {
                let current: u64 = read_number(&limit_file)?;
                if as_u64(s) < current {
                    return Err(invalid(
                        field("memory.swap"),
                        format!(
                            "{s} is below the current memory limit {current}: swap is the \
                             memory+swap total; set linux.resources.memory.limit as well"
                        ),
                    ));
                }
                let w = self.write("memory.swap", dir, "memory.memsw.limit_in_bytes", s);
                self.steps.push(Step::Write(w));
            }
            (None, None) => {}
        }

        Ok(())
    }

    /// Reservation, kernel memory, swappiness and the OOM killer.
    fn memory_extras(
        &mut self,
        m: &LinuxMemory,
        dir: &'a Path,
        reservation: Option<i64>,
        kernel: Option<i64>,
        kernel_tcp: Option<i64>,
        swappiness: Option<u64>,
    ) -> Result<(), CgroupError> {
        if let Some(r) = reservation {
            let w = self.write("memory.reservation", dir, "memory.soft_limit_in_bytes", r);
            self.steps.push(Step::Write(w));
        }
        if let Some(k) = kernel {
            if dir.join("memory.kmem.limit_in_bytes").exists() {
                let w = self.write("memory.kernel", dir, "memory.kmem.limit_in_bytes", k);
                self.steps.push(Step::WriteOrWarn(w));
            } else {
                tracing::warn!(
                    "{}: ignored: this kernel has no memory.kmem.limit_in_bytes",
                    field("memory.kernel")
                );
            }
        }
        if let Some(k) = kernel_tcp {
            if dir.join("memory.kmem.tcp.limit_in_bytes").exists() {
                let w = self.write("memory.kernelTCP", dir, "memory.kmem.tcp.limit_in_bytes", k);
                self.steps.push(Step::Write(w));
            } else {
                tracing::warn!(
                    "{}: ignored: this kernel has no memory.kmem.tcp.limit_in_bytes",
                    field("memory.kernelTCP")
                );
            }
        }
        if let Some(s) = swappiness {
            self.need(
                "memory.swappiness",
                dir,
                "memory.swappiness",
                "no per-cgroup swappiness",
            )?;
            let w = self.write("memory.swappiness", dir, "memory.swappiness", s);
            self.steps.push(Step::Write(w));
        }
        if let Some(disable) = m.disable_oom_killer() {
            let control = read(&dir.join("memory.oom_control"))?;
            let current = control
                .lines()
                .any(|l| l.split_whitespace().eq(["oom_kill_disable", "1"]));
            if disable != current {
                let w = self.write(
                    "memory.disableOOMKiller",
                    dir,
                    "memory.oom_control",
                    u8::from(disable),
                );
                self.steps.push(Step::Write(w));
            }
        }
        Ok(())
    }
}

/// The memory fields of a config, checked; `None` when none is set.
struct MemoryValues {
    limit: Option<i64>,
    reservation: Option<i64>,
    swap: Option<i64>,
    kernel: Option<i64>,
    kernel_tcp: Option<i64>,
    swappiness: Option<u64>,
}

impl MemoryValues {
    fn check(m: &LinuxMemory) -> Result<Option<MemoryValues>, CgroupError> {
        let limit = memory_bytes("memory.limit", m.limit())?;
        let reservation = memory_bytes("memory.reservation", m.reservation())?;
        let swap = memory_bytes("memory.swap", m.swap())?;
        let kernel = memory_bytes("memory.kernel", m.kernel())?;
        let kernel_tcp = memory_bytes("memory.kernelTCP", m.kernel_tcp())?;
        // runc reads -1 (which a u64 field holds as u64::MAX) as "unset".
        let swappiness = match m.swappiness() {
            Some(u64::MAX) | None => None,
            Some(v) if v <= 100 => Some(v),
            Some(v) => {
                return Err(invalid(
                    field("memory.swappiness"),
                    format!("{v} is out of range 0..=100"),
                ))
            }
        };
        if let (Some(l), Some(s)) = (limit, swap) {
            if s != -1 && (l == -1 || s < l) {
                return Err(invalid(
                    field("memory.swap"),
                    format!(
                        "{s} is below memory.limit {l}: swap is the memory+swap total, \
                         so it must be at least the limit (or -1)"
                    ),
                ));
            }
        }
        let anything = limit.is_some()
            || reservation.is_some()
            || swap.is_some()
            || kernel.is_some()
            || kernel_tcp.is_some()
            || swappiness.is_some()
            || m.disable_oom_killer().is_some()
            || m.use_hierarchy().is_some();
        if !anything {
            return Ok(None);
        }
        Ok(Some(MemoryValues {
            limit,
            reservation,
            swap,
            kernel,
            kernel_tcp,
            swappiness,
        }))
    }
}
