//! The device rules both cgroup versions enforce: `linux.resources.devices` parsed and
//! checked into [`Rule`]s (an error names `linux.resources.devices[i]`), hull's default
//! allow list ([`default_rules`]), and the order the two take effect ([`effective_rules`]).
//! [`super::v1`] writes them to devices.allow and devices.deny, [`super::devices_bpf`]
//! turns them into a cgroup2 device program.

use std::fmt;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::CgroupError;

/// Access bits, valued as the kernel hands them to a device program (`BPF_DEVCG_ACC_*`).
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const ALL: u8 = MKNOD | READ | WRITE;

/// The bits of an access string such as `rw`; `Err` holds the first letter not in `rwm`.
pub fn parse_access(access: &str) -> Result<u8, char> {
    access.chars().try_fold(0, |acc, c| match c {
        'r' => Ok(acc | READ),
        'w' => Ok(acc | WRITE),
        'm' => Ok(acc | MKNOD),
        other => Err(other),
    })
}

/// [`parse_access`] that skips letters other than `rwm`, as runc's does.
fn parse_access_lenient(access: &str) -> u8 {
    access
        .chars()
        .filter_map(|c| parse_access(&c.to_string()).ok())
        .fold(0, |acc, b| acc | b)
}

/// The access string of `bits`, in the kernel's `rwm` order.
pub fn access_string(bits: u8) -> String {
    [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// A device type a node can have (the wildcard type `a` is a [`Rule`] without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceKind {
    Char,
    Block,
}

impl DeviceKind {
    pub fn letter(self) -> char {
        match self {
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        }
    }
}

/// A device node, or a wildcard over some of its numbers (`None` = `*`). Ordered by numbers
/// first, so wildcards sort before the nodes they cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub kind: DeviceKind,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |n: Option<u32>| n.map_or("*".to_owned(), |n| n.to_string());
        write!(
            f,
            "{} {}:{}",
            self.kind.letter(),
            num(self.major),
            num(self.minor)
        )
    }
}

/// One device rule; `kind: None` is type `a` (every type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Option<DeviceKind>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// The config field of rule `index`, with `name` (`.access`, …) appended.
pub fn field(index: usize, name: &str) -> String {
    format!("linux.resources.devices[{index}]{name}")
}

impl Rule {
    /// Checks and converts `linux.resources.devices[index]`: no type is `a`, no major or
    /// minor or -1 is a wildcard, and access must be a non-empty subset of `rwm` (runc
    /// refuses a rule without one).
    pub fn parse(index: usize, d: &LinuxDeviceCgroup) -> Result<Rule, CgroupError> {
        let invalid = |name: &str, reason: String| CgroupError::Invalid {
            field: field(index, name),
            reason,
        };
        let number = |v: Option<i64>, name: &str| match v {
            None | Some(-1) => Ok(None),
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(invalid(
                name,
                format!("{n} is neither -1 (any) nor a device number"),
            )),
        };
        let major = number(d.major(), ".major")?;
        let minor = number(d.minor(), ".minor")?;
        let access = match d.access().as_deref() {
            None | Some("") => return Err(invalid(".access", "must not be empty".into())),
            // As runc: letters other than r, w and m count for nothing ("rwa" is "rw").
            Some(s) => match parse_access_lenient(s) {
                0 => return Err(invalid(".access", format!("{s:?} has none of r, w and m"))),
                bits => bits,
            },
        };
        let kind = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DeviceKind::Block),
            LinuxDeviceType::C => Some(DeviceKind::Char),
            other => {
                return Err(invalid(
                    ".type",
                    format!("{:?} is not a, b or c", other.as_str()),
                ))
            }
        };
        Ok(Rule {
            allow: d.allow(),
            kind,
            major,
            minor,
            access,
        })
    }

    /// `a *:* rwm`: every device allowed or denied, dropping the rules before it. The
    /// kernel reads any `a` line as this one, so a type-`a` rule that names numbers or
    /// less access is not a reset: see [`Rule::nodes`].
    pub fn is_reset(&self) -> bool {
        self.kind.is_none() && self.major.is_none() && self.minor.is_none() && self.access == ALL
    }

    /// The nodes a rule names, one per type: type `a` is a `b` and a `c` node.
    pub fn nodes(&self) -> Vec<Node> {
        let kinds: &[DeviceKind] = match self.kind {
            Some(DeviceKind::Char) => &[DeviceKind::Char],
            Some(DeviceKind::Block) => &[DeviceKind::Block],
            None => &[DeviceKind::Block, DeviceKind::Char],
        };
        kinds
            .iter()
            .map(|&kind| Node {
                major: self.major,
                minor: self.minor,
                kind,
            })
            .collect()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |n: Option<u32>| n.map_or("*".to_owned(), |n| n.to_string());
        write!(
            f,
            "{} {} {}:{} {}",
            if self.allow { "allow" } else { "deny" },
            self.kind.map_or('a', DeviceKind::letter),
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }
}

/// The devices every container may use whatever its config says (those hull creates in
/// /dev, plus mknod of any node), as runc 1.1.5 allows them. A config's explicit deny of
/// one of them still wins: see [`effective_rules`].
pub fn default_rules() -> Vec<Rule> {
    use DeviceKind::{Block, Char};
    let rule = |kind, major, minor, access| Rule {
        allow: true,
        kind: Some(kind),
        major,
        minor,
        access,
    };
    vec![
        rule(Char, None, None, MKNOD),
        rule(Block, None, None, MKNOD),
        rule(Char, Some(1), Some(3), ALL),    // /dev/null
        rule(Char, Some(1), Some(8), ALL),    // /dev/random
        rule(Char, Some(1), Some(7), ALL),    // /dev/full
        rule(Char, Some(5), Some(0), ALL),    // /dev/tty
        rule(Char, Some(1), Some(5), ALL),    // /dev/zero
        rule(Char, Some(1), Some(9), ALL),    // /dev/urandom
        rule(Char, Some(136), None, ALL),     // /dev/pts/*
        rule(Char, Some(5), Some(2), ALL),    // /dev/ptmx
        rule(Char, Some(10), Some(200), ALL), // /dev/net/tun, which runc allows too
    ]
}

/// The config's rules, checked, with [`default_rules`], in the order they take effect for
/// a writer that applies them one after the other from "deny everything": the defaults
/// right after the config's last reset ([`Rule::is_reset`]), or first if it has none. So a
/// leading deny-all keeps the defaults, and a deny of a default device that follows it
/// wins; runc instead puts the defaults last, where they override such a deny. Each rule
/// comes with the index of the config rule it is (`None` for a default).
pub fn effective_rules(
    rules: &[LinuxDeviceCgroup],
) -> Result<Vec<(Option<usize>, Rule)>, CgroupError> {
    let parsed = rules
        .iter()
        .enumerate()
        .map(|(i, d)| Rule::parse(i, d).map(|r| (Some(i), r)))
        .collect::<Result<Vec<_>, _>>()?;
    let split = parsed
        .iter()
        .rposition(|(_, r)| r.is_reset())
        .map_or(0, |i| i + 1);
    let mut out = parsed[..split].to_vec();
    out.extend(default_rules().into_iter().map(|r| (None, r)));
    out.extend_from_slice(&parsed[split..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn access_bits_and_strings_round_trip() {
        assert_eq!(parse_access("rwm"), Ok(ALL));
        assert_eq!(parse_access("mr"), Ok(READ | MKNOD));
        assert_eq!(parse_access(""), Ok(0));
        assert_eq!(parse_access("rx"), Err('x'));
        assert_eq!(access_string(ALL), "rwm");
        assert_eq!(access_string(MKNOD | WRITE), "wm");
        for s in ["r", "w", "m", "rw", "rm", "wm", "rwm"] {
            assert_eq!(access_string(parse_access(s).unwrap()), s);
        }
    }

    #[test]
    fn numbers_types_and_wildcards() {
        let rules = spec(
            r#"[{"allow":true,"access":"rwm"},
                {"allow":false,"type":"c","major":-1,"minor":4294967295,"access":"r"},
                {"allow":true,"type":"a","major":1,"access":"rwm"},
                {"allow":true,"type":"a","access":"rw"}]"#,
        );
        let parsed: Vec<Rule> = rules
            .iter()
            .enumerate()
            .map(|(i, d)| Rule::parse(i, d).unwrap())
            .collect();
        assert!(parsed[0].is_reset());
        assert_eq!(parsed[0].to_string(), "allow a *:* rwm");
        assert_eq!(parsed[1].to_string(), "deny c *:4294967295 r");
        assert!(!parsed[1].is_reset());
        // A type-a rule that names numbers or less access is one rule per type.
        for r in &parsed[2..] {
            assert!(!r.is_reset(), "{r}");
            let nodes: Vec<String> = r.nodes().iter().map(ToString::to_string).collect();
            let num = if r.major.is_some() { "1" } else { "*" };
            assert_eq!(nodes, [format!("b {num}:*"), format!("c {num}:*")]);
        }
    }

    #[test]
    fn bad_rules_name_their_field() {
        let cases = [
            (
                r#"{"allow":true,"type":"c","major":1,"minor":5,"access":""}"#,
                "linux.resources.devices[1].access: must not be empty",
            ),
            (
                r#"{"allow":true,"type":"c","major":1,"minor":5}"#,
                "linux.resources.devices[1].access: must not be empty",
            ),
            (
                r#"{"allow":true,"type":"c","major":1,"minor":5,"access":"xa"}"#,
                "linux.resources.devices[1].access: \"xa\" has none of r, w and m",
            ),
            (
                r#"{"allow":true,"type":"u","major":1,"minor":5,"access":"r"}"#,
                "linux.resources.devices[1].type: \"u\"",
            ),
            (
                r#"{"allow":true,"type":"p","access":"rwm"}"#,
                "linux.resources.devices[1].type: \"p\"",
            ),
            (
                r#"{"allow":true,"type":"c","major":1099511627776,"minor":5,"access":"r"}"#,
                "linux.resources.devices[1].major",
            ),
            (
                r#"{"allow":true,"type":"c","major":-3,"access":"r"}"#,
                "linux.resources.devices[1].major",
            ),
            (
                r#"{"allow":true,"type":"c","major":1,"minor":-2,"access":"r"}"#,
                "linux.resources.devices[1].minor",
            ),
        ];
        for (rule, want) in cases {
            let rules = spec(&format!(r#"[{{"allow":false,"access":"rwm"}},{rule}]"#));
            let err = effective_rules(&rules).unwrap_err();
            assert!(matches!(err, CgroupError::Invalid { .. }), "{rule}: {err}");
            let err = err.to_string();
            assert!(
                err.starts_with(want),
                "{err:?} does not start with {want:?}"
            );
        }
    }

    #[test]
    fn effective_rules_put_the_defaults_after_the_last_reset() {
        let rules = spec(
            r#"[{"allow":true,"type":"c","major":1,"minor":1,"access":"r"},
                {"allow":false,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
        );
        let parsed: Vec<(Option<usize>, Rule)> = rules
            .iter()
            .enumerate()
            .map(|(i, d)| (Some(i), Rule::parse(i, d).unwrap()))
            .collect();
        let defaults: Vec<(Option<usize>, Rule)> =
            default_rules().into_iter().map(|r| (None, r)).collect();
        let effective = effective_rules(&rules).unwrap();
        assert_eq!(effective.len(), rules.len() + defaults.len());
        assert_eq!(effective[..2], parsed[..2]);
        assert_eq!(effective[2..2 + defaults.len()], defaults[..]);
        assert_eq!(effective.last(), parsed.last());
        // No reset: defaults first, and the config's rules keep their own indices.
        let effective = effective_rules(&rules[2..]).unwrap();
        assert_eq!(effective[..defaults.len()], defaults[..]);
        assert_eq!(effective[defaults.len()], (Some(0), parsed[2].1));
        // A type-a rule with numbers is no reset.
        let typed = spec(r#"[{"allow":true,"type":"a","major":1,"access":"rwm"}]"#);
        assert_eq!(effective_rules(&typed).unwrap()[0], defaults[0]);
    }
}
