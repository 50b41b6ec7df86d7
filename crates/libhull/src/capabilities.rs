//! Capabilities: the bounding set dropped before the uid change, then the permitted,
//! inheritable, effective and ambient sets applied after it.
//!
//! A capability the running kernel does not know (newer than it) is skipped, as runc does;
//! names unknown to everyone were already rejected when config.json was parsed. A process
//! without `capabilities` in its config keeps what it has: callers skip both steps then.

use std::fmt;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("drop {cap} from the bounding set: {source}")]
    DropBounding {
        cap: caps::Capability,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("read the {set} capability set: {source}")]
    Read {
        set: &'static str,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("effective capabilities {missing} are not in the permitted set {permitted}")]
    EffectiveNotPermitted {
        missing: CapList,
        permitted: CapList,
    },
    #[error("permitted capabilities {missing} are not available to this process (missing from its bounding or permitted set)")]
    Unavailable { missing: CapList },
    #[error("inheritable capabilities {missing} are not in the bounding set")]
    InheritableNotBounded { missing: CapList },
    #[error("set the {set} capabilities to {value}: {source}")]
    Set {
        set: &'static str,
        value: CapList,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("clear the ambient capabilities: {source}")]
    ClearAmbient {
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("set PR_SET_KEEPCAPS to {value}: {source}")]
    KeepCaps {
        value: bool,
        #[source]
        source: caps::errors::CapsError,
    },
}

/// A set of capabilities printed as a sorted `[CAP_A, CAP_B]` list, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapList(Vec<caps::Capability>);

impl CapList {
    fn new(set: &CapsHashSet) -> Self {
        let mut caps: Vec<_> = set.iter().copied().collect();
        caps.sort_by_key(|c| c.index());
        CapList(caps)
    }
}

impl fmt::Display for CapList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, cap) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{cap}")?;
        }
        f.write_str("]")
    }
}

/// Drops every capability not in `caps.bounding` from the bounding set. Runs before the uid
/// change, while the init still has CAP_SETPCAP.
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<(), CapsError> {
    let known = kernel_caps();
    let keep = to_kernel_set(caps.bounding().as_ref(), &known);
    // Dropping a capability the set lacks is a no-op, so nothing is read first: one prctl
    // per capability not kept.
    for cap in sorted(known.difference(&keep)) {
        if let Err(source) = caps::drop(None, CapSet::Bounding, cap) {
            // Only a capability the set still holds is worth failing for (without
            // CAP_SETPCAP the kernel refuses even a no-op drop).
            if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(true) {
                return Err(CapsError::DropBounding { cap, source });
            }
        }
    }
    Ok(())
}

/// The capabilities (of those the `caps` crate names) the running kernel knows. The kernel
/// numbers them densely from 0 and PR_CAPBSET_READ fails past its last one, so one probe of
/// the highest usually answers, and a binary search (not 41 probes) otherwise.
fn kernel_caps() -> CapsHashSet {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    let known = |c: &caps::Capability| caps::has_cap(None, CapSet::Bounding, *c).is_ok();
    let n = match all.last() {
        Some(last) if known(last) => all.len(),
        _ => all.partition_point(known),
    };
    all.truncate(n);
    all.into_iter().collect()
}

/// Sets the permitted, inheritable, effective and ambient sets. Runs after the uid change
/// (with PR_SET_KEEPCAPS held across it), so the permitted set still holds what the
/// bounding set allows and the effective set may be empty.
///
/// The kernel checks each `capset` against the sets of that moment, so the order matters:
/// inheritable first (still backed by the old permitted set), then the effective set shrunk
/// to fit the new permitted set, the permitted set, the effective set, and the ambient set
/// last (an ambient capability must be both permitted and inheritable).
pub fn apply(caps: &LinuxCapabilities) -> Result<(), CapsError> {
    let known = kernel_caps();
    let permitted = to_kernel_set(caps.permitted().as_ref(), &known);
    let effective = to_kernel_set(caps.effective().as_ref(), &known);
    let inheritable = to_kernel_set(caps.inheritable().as_ref(), &known);
    let ambient = to_kernel_set(caps.ambient().as_ref(), &known);

    if !effective.is_subset(&permitted) {
        return Err(CapsError::EffectiveNotPermitted {
            missing: CapList::new(&effective.difference(&permitted).copied().collect()),
            permitted: CapList::new(&permitted),
        });
    }

    let current_inheritable = read_set(CapSet::Inheritable, "inheritable")?;
    // Only new inheritable capabilities need the bounding set: read just those.
    let mut unbounded = CapsHashSet::new();
    for &cap in inheritable.difference(&current_inheritable) {
        let bounded =
            caps::has_cap(None, CapSet::Bounding, cap).map_err(|source| CapsError::Read {
                set: "bounding",
                source,
            })?;
        if !bounded {
            unbounded.insert(cap);
        }
    }
    if !unbounded.is_empty() {
        return Err(CapsError::InheritableNotBounded {
            missing: CapList::new(&unbounded),
        });
    }
    // Exactly the configured set, nothing inherited from us (CVE-2022-29162).
    set(CapSet::Inheritable, "inheritable", &inheritable)?;

    let current_permitted = read_set(CapSet::Permitted, "permitted")?;
    let unavailable: CapsHashSet = permitted.difference(&current_permitted).copied().collect();
    if !unavailable.is_empty() {
        return Err(CapsError::Unavailable {
            missing: CapList::new(&unavailable),
        });
    }
    let current_effective = read_set(CapSet::Effective, "effective")?;
    let shrunk: CapsHashSet = current_effective
        .intersection(&permitted)
        .copied()
        .collect();
    set(CapSet::Effective, "effective", &shrunk)?;
    set(CapSet::Permitted, "permitted", &permitted)?;
    set(CapSet::Effective, "effective", &effective)?;

    apply_ambient(&ambient)
}

/// Replaces the ambient set. As runc does, a capability the kernel refuses (one that is not
/// both permitted and inheritable) is left out with a warning rather than failing the
/// container: clients such as podman list ambient capabilities they do not make inheritable.
fn apply_ambient(ambient: &CapsHashSet) -> Result<(), CapsError> {
    if let Err(source) = caps::clear(None, CapSet::Ambient) {
        // Kernels before 4.3 have no ambient set; there is nothing to clear or raise then.
        if caps::runtime::ambient_set_supported().is_err() {
            if !ambient.is_empty() {
                tracing::warn!(
                    caps = %CapList::new(ambient),
                    "the kernel has no ambient capability set; ambient capabilities ignored"
                );
            }
            return Ok(());
        }
        return Err(CapsError::ClearAmbient { source });
    }
    for cap in sorted(ambient.iter()) {
        if caps::raise(None, CapSet::Ambient, cap).is_err() {
            // runc's words; the kernel's reason is EPERM unless it is both permitted and
            // inheritable.
            let why = crate::logging::errno_text(&std::io::Error::last_os_error());
            tracing::warn!("can't raise ambient capability {cap}: {why}");
        }
    }
    Ok(())
}

/// Sets PR_SET_KEEPCAPS: with it, the permitted set survives a switch from uid 0 to another
/// uid (the effective set is still cleared). Clear it again once the switch is done.
pub fn set_keep_caps(value: bool) -> Result<(), CapsError> {
    caps::securebits::set_keepcaps(value).map_err(|source| CapsError::KeepCaps { value, source })
}

fn read_set(set: CapSet, name: &'static str) -> Result<CapsHashSet, CapsError> {
    caps::read(None, set).map_err(|source| CapsError::Read { set: name, source })
}

fn set(set: CapSet, name: &'static str, value: &CapsHashSet) -> Result<(), CapsError> {
    caps::set(None, set, value).map_err(|source| CapsError::Set {
        set: name,
        value: CapList::new(value),
        source,
    })
}

/// Kernel order, so failures are reported for the same capability on every run.
fn sorted<'a>(caps: impl Iterator<Item = &'a caps::Capability>) -> Vec<caps::Capability> {
    let mut caps: Vec<_> = caps.copied().collect();
    caps.sort_by_key(|c| c.index());
    caps
}

/// The configured capabilities the running kernel knows; a missing list is the empty set.
fn to_kernel_set(caps: Option<&Capabilities>, known: &CapsHashSet) -> CapsHashSet {
    caps.into_iter()
        .flatten()
        .map(|&c| to_kernel(c))
        .filter(|c| known.contains(c))
        .collect()
}

/// The `caps` crate's name for an OCI capability (both follow the kernel's names).
pub fn to_kernel(cap: Capability) -> caps::Capability {
    use caps::Capability as K;
    match cap {
        Capability::AuditControl => K::CAP_AUDIT_CONTROL,
        Capability::AuditRead => K::CAP_AUDIT_READ,
        Capability::AuditWrite => K::CAP_AUDIT_WRITE,
        Capability::BlockSuspend => K::CAP_BLOCK_SUSPEND,
        Capability::Bpf => K::CAP_BPF,
        Capability::CheckpointRestore => K::CAP_CHECKPOINT_RESTORE,
        Capability::Chown => K::CAP_CHOWN,
        Capability::DacOverride => K::CAP_DAC_OVERRIDE,
        Capability::DacReadSearch => K::CAP_DAC_READ_SEARCH,
        Capability::Fowner => K::CAP_FOWNER,
        Capability::Fsetid => K::CAP_FSETID,
        Capability::IpcLock => K::CAP_IPC_LOCK,
        Capability::IpcOwner => K::CAP_IPC_OWNER,
        Capability::Kill => K::CAP_KILL,
        Capability::Lease => K::CAP_LEASE,
        Capability::LinuxImmutable => K::CAP_LINUX_IMMUTABLE,
        Capability::MacAdmin => K::CAP_MAC_ADMIN,
        Capability::MacOverride => K::CAP_MAC_OVERRIDE,
        Capability::Mknod => K::CAP_MKNOD,
        Capability::NetAdmin => K::CAP_NET_ADMIN,
        Capability::NetBindService => K::CAP_NET_BIND_SERVICE,
        Capability::NetBroadcast => K::CAP_NET_BROADCAST,
        Capability::NetRaw => K::CAP_NET_RAW,
        Capability::Perfmon => K::CAP_PERFMON,
        Capability::Setgid => K::CAP_SETGID,
        Capability::Setfcap => K::CAP_SETFCAP,
        Capability::Setpcap => K::CAP_SETPCAP,
        Capability::Setuid => K::CAP_SETUID,
        Capability::SysAdmin => K::CAP_SYS_ADMIN,
        Capability::SysBoot => K::CAP_SYS_BOOT,
        Capability::SysChroot => K::CAP_SYS_CHROOT,
        Capability::SysModule => K::CAP_SYS_MODULE,
        Capability::SysNice => K::CAP_SYS_NICE,
        Capability::SysPacct => K::CAP_SYS_PACCT,
        Capability::SysPtrace => K::CAP_SYS_PTRACE,
        Capability::SysRawio => K::CAP_SYS_RAWIO,
        Capability::SysResource => K::CAP_SYS_RESOURCE,
        Capability::SysTime => K::CAP_SYS_TIME,
        Capability::SysTtyConfig => K::CAP_SYS_TTY_CONFIG,
        Capability::Syslog => K::CAP_SYSLOG,
        Capability::WakeAlarm => K::CAP_WAKE_ALARM,
    }
}

#[cfg(test)]
mod tests {
    use caps::Capability as K;
    use nix::unistd::Uid;
    use oci_spec::runtime::{LinuxCapabilitiesBuilder, UserBuilder};

    use super::*;
    use crate::process::attrs::forked::{check, ensure, run, status_field};
    use crate::process::attrs::switch_user;

    /// Every set given: the builder fills unset ones with oci-spec's defaults, not None.
    struct Sets<'a> {
        bounding: &'a [Capability],
        permitted: &'a [Capability],
        effective: &'a [Capability],
        inheritable: &'a [Capability],
        ambient: &'a [Capability],
    }

    impl Sets<'_> {
        fn build(&self) -> LinuxCapabilities {
            let set = |caps: &[Capability]| caps.iter().copied().collect::<Capabilities>();
            LinuxCapabilitiesBuilder::default()
                .bounding(set(self.bounding))
                .permitted(set(self.permitted))
                .effective(set(self.effective))
                .inheritable(set(self.inheritable))
                .ambient(set(self.ambient))
                .build()
                .unwrap()
        }
    }

    fn mask(caps: &[K]) -> String {
        format!("{:016x}", caps.iter().fold(0u64, |m, c| m | c.bitmask()))
    }

    fn expect_status(field: &str, caps: &[K]) -> Result<(), String> {
        let got = status_field(field)?;
        let want = mask(caps);
        ensure(got == want, || format!("{field} {got}, want {want}"))
    }

    #[test]
    fn every_kernel_capability_maps_from_its_oci_name() {
        for kernel in caps::all() {
            let oci: Capability = serde_json::from_str(&format!("\"{kernel}\"")).unwrap();
            assert_eq!(to_kernel(oci), kernel);
        }
    }

    #[test]
    fn kernel_caps_are_those_the_bounding_set_can_name() {
        assert_eq!(kernel_caps(), caps::runtime::thread_all_supported());
    }

    #[test]
    fn missing_sets_in_config_json_are_empty() {
        let config: LinuxCapabilities =
            serde_json::from_str(r#"{"bounding": ["CAP_CHOWN"]}"#).unwrap();
        let known = caps::runtime::thread_all_supported();
        assert!(to_kernel_set(config.ambient().as_ref(), &known).is_empty());
        assert_eq!(
            to_kernel_set(config.bounding().as_ref(), &known),
            [K::CAP_CHOWN].into_iter().collect()
        );
    }

    #[test]
    fn bounding_then_user_switch_then_apply_gives_exactly_the_configured_sets() {
        use Capability::*;
        run(|| {
            let config = Sets {
                bounding: &[Chown, Kill, NetBindService, Setuid, Setgid, Setpcap],
                permitted: &[Chown, Kill, NetBindService],
                effective: &[Chown, Kill],
                inheritable: &[NetBindService],
                ambient: &[NetBindService],
            }
            .build();
            check("drop_bounding", drop_bounding(&config))?;
            let user = UserBuilder::default()
                .uid(1000u32)
                .gid(1000u32)
                .build()
                .unwrap();
            check("switch_user", switch_user(&user))?;
            ensure(nix::unistd::geteuid() == Uid::from_raw(1000), || {
                "still root".into()
            })?;
            check("apply", apply(&config))?;

            let bounding = [
                K::CAP_CHOWN,
                K::CAP_KILL,
                K::CAP_NET_BIND_SERVICE,
                K::CAP_SETUID,
                K::CAP_SETGID,
                K::CAP_SETPCAP,
            ];
            expect_status("CapBnd", &bounding)?;
            expect_status(
                "CapPrm",
                &[K::CAP_CHOWN, K::CAP_KILL, K::CAP_NET_BIND_SERVICE],
            )?;
            expect_status("CapEff", &[K::CAP_CHOWN, K::CAP_KILL])?;
            expect_status("CapInh", &[K::CAP_NET_BIND_SERVICE])?;
            expect_status("CapAmb", &[K::CAP_NET_BIND_SERVICE])
        });
    }

    #[test]
    fn apply_as_root_replaces_an_inherited_inheritable_set() {
        use Capability::*;
        run(|| {
            let inherited: CapsHashSet = [K::CAP_KILL, K::CAP_SYS_ADMIN].into_iter().collect();
            check(
                "seed inheritable",
                caps::set(None, CapSet::Inheritable, &inherited),
            )?;
            let config = Sets {
                bounding: &[Chown, Kill],
                permitted: &[Chown, Kill],
                effective: &[Chown],
                inheritable: &[Chown],
                ambient: &[],
            }
            .build();
            check("drop_bounding", drop_bounding(&config))?;
            check("apply", apply(&config))?;
            expect_status("CapBnd", &[K::CAP_CHOWN, K::CAP_KILL])?;
            expect_status("CapInh", &[K::CAP_CHOWN])?;
            expect_status("CapPrm", &[K::CAP_CHOWN, K::CAP_KILL])?;
            expect_status("CapEff", &[K::CAP_CHOWN])?;
            expect_status("CapAmb", &[])
        });
    }

    #[test]
    fn apply_refuses_effective_outside_permitted() {
        use Capability::*;
        run(|| {
            let config = Sets {
                bounding: &[],
                permitted: &[Chown],
                effective: &[Chown, SysAdmin],
                inheritable: &[],
                ambient: &[],
            }
            .build();
            match apply(&config) {
                Err(e @ CapsError::EffectiveNotPermitted { .. }) => {
                    ensure(e.to_string().contains("[CAP_SYS_ADMIN]"), || e.to_string())
                }
                other => Err(format!("expected EffectiveNotPermitted, got {other:?}")),
            }
        });
    }

    #[test]
    fn apply_names_permitted_caps_the_process_no_longer_has() {
        use Capability::*;
        run(|| {
            let narrow = Sets {
                bounding: &[Chown],
                permitted: &[Chown],
                effective: &[Chown],
                inheritable: &[],
                ambient: &[],
            }
            .build();
            check("drop_bounding", drop_bounding(&narrow))?;
            check("apply", apply(&narrow))?;
            let wider = Sets {
                bounding: &[Chown],
                permitted: &[Chown, Kill],
                effective: &[],
                inheritable: &[],
                ambient: &[],
            }
            .build();
            match apply(&wider) {
                Err(e @ CapsError::Unavailable { .. }) => {
                    ensure(e.to_string().contains("[CAP_KILL]"), || e.to_string())
                }
                other => Err(format!("expected Unavailable, got {other:?}")),
            }
        });
    }

    #[test]
    fn apply_refuses_inheritable_caps_outside_the_bounding_set() {
        use Capability::*;
        run(|| {
            check("clear inheritable", caps::clear(None, CapSet::Inheritable))?;
            let config = Sets {
                bounding: &[Chown],
                permitted: &[Chown],
                effective: &[],
                inheritable: &[Kill],
                ambient: &[],
            }
            .build();
            check("drop_bounding", drop_bounding(&config))?;
            match apply(&config) {
                Err(e @ CapsError::InheritableNotBounded { .. }) => {
                    ensure(e.to_string().contains("[CAP_KILL]"), || e.to_string())
                }
                other => Err(format!("expected InheritableNotBounded, got {other:?}")),
            }
        });
    }

    #[test]
    fn ambient_caps_the_kernel_refuses_are_skipped() {
        use Capability::*;
        run(|| {
            // Kill is ambient but not inheritable: left out, as runc does.
            let config = Sets {
                bounding: &[Chown, Kill],
                permitted: &[Chown, Kill],
                effective: &[],
                inheritable: &[Chown],
                ambient: &[Chown, Kill],
            }
            .build();
            check("drop_bounding", drop_bounding(&config))?;
            check("apply", apply(&config))?;
            expect_status("CapAmb", &[K::CAP_CHOWN])
        });
    }

    #[test]
    fn set_keep_caps_toggles_the_flag() {
        run(|| {
            check("set", set_keep_caps(true))?;
            ensure(caps::securebits::has_keepcaps().unwrap_or(false), || {
                "keepcaps not set".into()
            })?;
            check("clear", set_keep_caps(false))?;
            ensure(!caps::securebits::has_keepcaps().unwrap_or(true), || {
                "keepcaps not cleared".into()
            })
        });
    }
}
