//! Mount options of a `mounts[]` entry: the classic mount(2) flags and their negations,
//! propagation types, recursive attributes (`rro`, `rnosuid`, …), and the runtime extensions
//! (`tmpcopyup`, `idmap`). Everything else is filesystem data (`mode=755`, `size=64k`, …).

use nix::mount::MsFlags;

use hull_sys::mount::{
    MountAttr, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME,
    MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME,
};

/// `MS_NOSYMFOLLOW` (Linux 5.10), which nix 0.29 does not name.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// The atime flags of mount(2); only one mode (relatime, noatime, strictatime) applies.
const ATIME_FLAGS: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// The per-mount flags a bind mount's options set or clear, and their mount_setattr bits
/// (the atime ones apart: they are one mode, plus nodiratime).
const PER_MOUNT: [(MsFlags, u64); 5] = [
    (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
    (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
    (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
    (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
];

/// Options that set (`false`) or clear (`true`) a mount(2) flag.
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("iversion", false, MsFlags::MS_I_VERSION),
    ("lazytime", false, MsFlags::MS_LAZYTIME),
    ("loud", true, MsFlags::MS_SILENT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("noiversion", true, MsFlags::MS_I_VERSION),
    ("nolazytime", true, MsFlags::MS_LAZYTIME),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("silent", false, MsFlags::MS_SILENT),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
    ("symfollow", true, MS_NOSYMFOLLOW),
];

/// Recursive attribute options, applied with mount_setattr(AT_RECURSIVE): set (`false`) or
/// clear (`true`) a `MOUNT_ATTR_*` bit on the mount and everything below it.
const REC_ATTRS: &[(&str, bool, u64)] = &[
    ("rro", false, MOUNT_ATTR_RDONLY),
    ("rrw", true, MOUNT_ATTR_RDONLY),
    ("rnosuid", false, MOUNT_ATTR_NOSUID),
    ("rsuid", true, MOUNT_ATTR_NOSUID),
    ("rnodev", false, MOUNT_ATTR_NODEV),
    ("rdev", true, MOUNT_ATTR_NODEV),
    ("rnoexec", false, MOUNT_ATTR_NOEXEC),
    ("rexec", true, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", false, MOUNT_ATTR_NODIRATIME),
    ("rdiratime", true, MOUNT_ATTR_NODIRATIME),
    ("rrelatime", false, MOUNT_ATTR_RELATIME),
    ("rnorelatime", true, MOUNT_ATTR_RELATIME),
    ("rnoatime", false, MOUNT_ATTR_NOATIME),
    ("ratime", true, MOUNT_ATTR_NOATIME),
    ("rstrictatime", false, MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", true, MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW),
];

/// Every option name this module understands (the rest is filesystem data), for
/// `hull features` (which reports `idmap` and `ridmap` under `mountExtensions`).
pub fn known_options() -> impl Iterator<Item = &'static str> {
    let propagation = [
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ];
    FLAGS
        .iter()
        .map(|f| f.0)
        .chain(REC_ATTRS.iter().map(|a| a.0))
        .chain(propagation)
        .chain(["tmpcopyup", "idmap", "ridmap"])
}

/// An idmapped mount was asked for (`idmap` or `ridmap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    /// `idmap`: only the top mount.
    Top,
    /// `ridmap`: the whole tree.
    Recursive,
}

/// What the options of one mount ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// mount(2) flags to set, including `MS_BIND`, `MS_REC` and `MS_REMOUNT`.
    pub flags: MsFlags,
    /// Flags the options explicitly turn off (`rw`, `suid`, `exec`, …).
    pub cleared: MsFlags,
    /// Propagation changes, in the order given.
    pub propagation: Vec<MsFlags>,
    /// `MOUNT_ATTR_*` bits to set and clear on the whole tree.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Filesystem-specific options, comma-joined for mount(2).
    pub data: Vec<String>,
    /// `tmpcopyup`: fill a new tmpfs with what the destination held.
    pub tmpcopyup: bool,
    pub idmap: Option<Idmap>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
            data: Vec::new(),
            tmpcopyup: false,
            idmap: None,
        }
    }
}

impl MountOptions {
    /// Sorts each option into its kind; unknown options are filesystem data.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
        let mut o = MountOptions::default();
        for opt in options.iter().map(AsRef::as_ref) {
            if let Some(&(_, clear, flag)) = FLAGS.iter().find(|f| f.0 == opt) {
                if clear {
                    o.flags.remove(flag);
                    o.cleared.insert(flag);
                } else {
                    o.flags.insert(flag);
                    o.cleared.remove(flag);
                }
            } else if let Some(flag) = crate::spec::propagation_flags(opt) {
                o.propagation.push(flag);
            } else if let Some(&(_, clear, attr)) = REC_ATTRS.iter().find(|a| a.0 == opt) {
                if clear {
                    o.rec_clr |= attr;
                    o.rec_set &= !attr;
                } else {
                    o.rec_set |= attr;
                    o.rec_clr &= !attr;
                }
                // The atime attributes form one field: changing it means clearing it whole.
                if attr & MOUNT_ATTR__ATIME == attr {
                    o.rec_clr |= MOUNT_ATTR__ATIME;
                }
            } else if opt == "tmpcopyup" {
                o.tmpcopyup = true;
            } else if opt == "idmap" {
                o.idmap = Some(Idmap::Top);
            } else if opt == "ridmap" {
                o.idmap = Some(Idmap::Recursive);
            } else {
                o.data.push(opt.to_string());
            }
        }
        o
    }

    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    pub fn is_recursive_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC)
    }

    pub fn readonly(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }

    /// The data string for mount(2).
    pub fn data(&self) -> String {
        self.data.join(",")
    }

    /// The flags for mounting a new filesystem with mount(2).
    pub fn fs_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }

    /// The per-mount flags of a bind mount as a mount_setattr request for its top mount:
    /// what the options set and clear, leaving every other flag (and so any flag the kernel
    /// locked in a user namespace) as the source had it. `None` if nothing is asked.
    pub fn bind_attr(&self) -> Option<MountAttr> {
        let mut attr = empty_attr();
        let nodiratime = [(MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME)];
        for (flag, bit) in PER_MOUNT.into_iter().chain(nodiratime) {
            if self.flags.contains(flag) {
                attr.attr_set |= bit;
            } else if self.cleared.contains(flag) {
                attr.attr_clr |= bit;
            }
        }
        // mount(2) semantics: noatime wins, then strictatime; relatime is the default, so
        // turning off noatime or strictatime means relatime. "norelatime" alone is a no-op.
        let atime = if self.flags.contains(MsFlags::MS_NOATIME) {
            Some(MOUNT_ATTR_NOATIME)
        } else if self.flags.contains(MsFlags::MS_STRICTATIME) {
            Some(MOUNT_ATTR_STRICTATIME)
        } else if self.flags.contains(MsFlags::MS_RELATIME)
            || self.cleared.intersects(ATIME_FLAGS - MsFlags::MS_RELATIME)
        {
            Some(MOUNT_ATTR_RELATIME)
        } else {
            None
        };
        if let Some(mode) = atime {
            attr.attr_clr |= MOUNT_ATTR__ATIME;
            attr.attr_set |= mode;
        }
        (attr.attr_set != 0 || attr.attr_clr != 0).then_some(attr)
    }

    /// The per-mount flags of a new bind mount, as runc 1.3 gives them: with no flag in the
    /// options at all, the source's flags stay (mount(8)'s `--bind`); with any flag set or
    /// cleared, the mount gets exactly the flags set and loses the others, except the atime
    /// ones, which stay as the source had them unless an atime flag is set (runc's remount
    /// with MS_BIND, whose atime rules these are). See [`locked_retry`] for a user namespace.
    pub fn fresh_bind_attr(&self) -> Option<MountAttr> {
        let asked = self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if asked.is_empty() && self.cleared.is_empty() {
            return None;
        }
        let mut attr = empty_attr();
        for (flag, bit) in PER_MOUNT {
            if self.flags.contains(flag) {
                attr.attr_set |= bit;
            } else {
                attr.attr_clr |= bit;
            }
        }
        if self.flags.intersects(ATIME_FLAGS | MsFlags::MS_NODIRATIME) {
            attr.attr_clr |= MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME;
            attr.attr_set |= if self.flags.contains(MsFlags::MS_NOATIME) {
                MOUNT_ATTR_NOATIME
            } else if self.flags.contains(MsFlags::MS_STRICTATIME) {
                MOUNT_ATTR_STRICTATIME
            } else {
                MOUNT_ATTR_RELATIME
            };
            if self.flags.contains(MsFlags::MS_NODIRATIME) {
                attr.attr_set |= MOUNT_ATTR_NODIRATIME;
            }
        }
        Some(attr)
    }

    /// [`fresh_bind_attr`] again after the kernel refused it (EPERM: flags a user namespace
    /// locked on the source, given as `MOUNT_ATTR_*` bits): the locked flags the options only
    /// left out are kept, as runc retries; `Err` names those the options explicitly clear,
    /// or an atime mode other than the locked one, which cannot be had.
    pub fn locked_retry(&self, attr: &MountAttr, locked: u64) -> Result<MountAttr, String> {
        const CLEARING: [(MsFlags, u64, &str); 4] = [
            (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY, "MS_RDONLY"),
            (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID, "MS_NOSUID"),
            (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV, "MS_NODEV"),
            (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC, "MS_NOEXEC"),
        ];
        let cannot: Vec<&str> = CLEARING
            .iter()
            .filter(|(flag, bit, _)| self.cleared.contains(*flag) && locked & bit != 0)
            .map(|(_, _, name)| *name)
            .collect();
        if !cannot.is_empty() {
            // runc's words.
            return Err(format!("cannot clear locked flags {}", cannot.join("|")));
        }
        let atime_bits = MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME;
        if attr.attr_clr & MOUNT_ATTR__ATIME != 0
            && attr.attr_set & atime_bits != locked & atime_bits
        {
            return Err("cannot change locked atime flags".into());
        }
        let mut retry = *attr;
        retry.attr_clr &= !locked;
        retry.attr_set |= locked & !atime_bits;
        Ok(retry)
    }

    /// The recursive attributes as a mount_setattr request, `None` if none were asked.
    pub fn rec_attr(&self) -> Option<MountAttr> {
        (self.rec_set != 0 || self.rec_clr != 0).then(|| MountAttr {
            attr_set: self.rec_set,
            attr_clr: self.rec_clr,
            ..empty_attr()
        })
    }
}

/// A mount_setattr request that changes nothing.
pub fn empty_attr() -> MountAttr {
    MountAttr {
        attr_set: 0,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    }
}

/// A mount_setattr request that makes a mount read-only and changes nothing else.
pub fn readonly_attr() -> MountAttr {
    MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        ..empty_attr()
    }
}

/// A mount_setattr request that only changes propagation (`MS_SHARED`, `MS_SLAVE`, …).
pub fn propagation_attr(flags: MsFlags) -> MountAttr {
    MountAttr {
        propagation: (flags - MsFlags::MS_REC).bits(),
        ..empty_attr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tmpfs_options_split_into_flags_and_data() {
        let o = MountOptions::parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data(), "mode=755,size=65536k");
        assert!(!o.is_bind());
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = MountOptions::parse(&["ro", "rw", "nodev", "dev", "suid", "nosuid"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID);
        assert_eq!(o.cleared, MsFlags::MS_RDONLY | MsFlags::MS_NODEV);
    }

    #[test]
    fn propagation_keeps_order_and_recursive_forms() {
        let o = MountOptions::parse(&["rbind", "rprivate", "shared"]);
        assert!(o.is_recursive_bind());
        assert_eq!(
            o.propagation,
            vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC, MsFlags::MS_SHARED]
        );
        assert_eq!(
            propagation_attr(o.propagation[0]).propagation,
            libc::MS_PRIVATE
        );
    }

    #[test]
    fn recursive_attributes_clear_the_whole_atime_field() {
        let o = MountOptions::parse(&["rro", "rnoatime", "rexec"]);
        let a = o.rec_attr().unwrap();
        assert_eq!(a.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME);
        assert_eq!(a.attr_clr, MOUNT_ATTR_NOEXEC | MOUNT_ATTR__ATIME);
        assert!(MountOptions::parse(&["ro"]).rec_attr().is_none());
    }

    #[test]
    fn bind_attr_sets_and_clears_only_what_is_asked() {
        assert!(MountOptions::parse(&["rbind"]).bind_attr().is_none());
        let a = MountOptions::parse(&["bind", "ro", "exec", "noatime"])
            .bind_attr()
            .unwrap();
        assert_eq!(a.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME);
        assert_eq!(a.attr_clr, MOUNT_ATTR_NOEXEC | MOUNT_ATTR__ATIME);
        let a = MountOptions::parse(&["bind", "nostrictatime"])
            .bind_attr()
            .unwrap();
        assert_eq!(
            (a.attr_set, a.attr_clr),
            (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)
        );
        assert!(MountOptions::parse(&["bind", "norelatime"])
            .bind_attr()
            .is_none());
    }

    #[test]
    fn a_fresh_bind_gets_exactly_the_flags_asked_for_but_keeps_its_atime() {
        // runc 1.3: no flag at all keeps the source's.
        assert!(MountOptions::parse(&["rbind", "rprivate"])
            .fresh_bind_attr()
            .is_none());
        // A clearing flag alone clears the rest too; atime stays the source's.
        let a = MountOptions::parse(&["bind", "dev"])
            .fresh_bind_attr()
            .unwrap();
        assert_eq!(a.attr_set, 0);
        assert_eq!(
            a.attr_clr,
            MOUNT_ATTR_RDONLY
                | MOUNT_ATTR_NOSUID
                | MOUNT_ATTR_NODEV
                | MOUNT_ATTR_NOEXEC
                | MOUNT_ATTR_NOSYMFOLLOW
        );
        let a = MountOptions::parse(&["bind", "ro", "noatime"])
            .fresh_bind_attr()
            .unwrap();
        assert_eq!(a.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME);
        assert_ne!(a.attr_clr & MOUNT_ATTR__ATIME, 0);
        assert_ne!(a.attr_clr & MOUNT_ATTR_NODIRATIME, 0);
    }

    #[test]
    fn a_locked_flag_is_kept_unless_explicitly_cleared() {
        let o = MountOptions::parse(&["bind", "nosuid", "nodev"]);
        let a = o.fresh_bind_attr().unwrap();
        let locked = MOUNT_ATTR_RDONLY | MOUNT_ATTR_RELATIME;
        let r = o.locked_retry(&a, locked).unwrap();
        assert_eq!(r.attr_set & MOUNT_ATTR_RDONLY, MOUNT_ATTR_RDONLY);
        assert_eq!(r.attr_clr & MOUNT_ATTR_RDONLY, 0);
        assert_eq!(
            r.attr_set & (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        );
        let o = MountOptions::parse(&["bind", "rw", "nosuid"]);
        let a = o.fresh_bind_attr().unwrap();
        let err = o.locked_retry(&a, locked).unwrap_err();
        assert!(err.contains("MS_RDONLY"), "{err}");
        let o = MountOptions::parse(&["bind", "strictatime"]);
        let a = o.fresh_bind_attr().unwrap();
        assert!(o.locked_retry(&a, MOUNT_ATTR_NOATIME).is_err());
    }

    #[test]
    fn extensions_are_not_data() {
        let o = MountOptions::parse(&["tmpcopyup", "ridmap", "nosymfollow", "acl"]);
        assert!(o.tmpcopyup);
        assert_eq!(o.idmap, Some(Idmap::Recursive));
        assert_eq!(o.flags, MS_NOSYMFOLLOW);
        assert_eq!(o.data, vec!["acl"]);
        assert_eq!(o.fs_flags(), MS_NOSYMFOLLOW);
    }

    #[test]
    fn every_known_option_is_recognised() {
        for name in known_options() {
            let o = MountOptions::parse(&[name]);
            assert!(o.data.is_empty(), "{name} parsed as data");
        }
    }
}
