//! The devices controller (v1): the exception list moved from what the kernel has to what
//! the rules want with the fewest writes, never passing through a state that allows more.

use oci_spec::runtime::LinuxDeviceCgroup;

use crate::devices::{self, access_string, DeviceKind, Node, Rule};
use crate::error::CgroupError;

/// One exception in a device cgroup: allowed in a deny-by-default cgroup, denied in an
/// allow-by-default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exception {
    node: Node,
    access: u8,
    /// The part of `access` that the config's own rules gave (the rest is from defaults).
    from_config: u8,
    /// The index of the first config rule that added to it: the position in the config.
    first_rule: Option<usize>,
}

/// What a v1 device cgroup holds, as the kernel keeps it: a default and an ordered list of
/// exceptions, merged per node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct DeviceState {
    allow_all: bool,
    exceptions: Vec<Exception>,
}

impl DeviceState {
    /// The state the config's rules plus the defaults ask for, starting from "deny all" as
    /// runc does.
    pub(super) fn target(rules: &[LinuxDeviceCgroup]) -> Result<DeviceState, CgroupError> {
        let mut state = DeviceState::default();
        for (index, rule) in devices::effective_rules(rules)? {
            state.apply(&rule, index)?;
        }
        Ok(state)
    }

    /// Applies one rule as the kernel would: `index` is the config rule it comes from,
    /// `None` for a default.
    fn apply(&mut self, rule: &Rule, index: Option<usize>) -> Result<(), CgroupError> {
        if rule.is_reset() {
            self.allow_all = rule.allow;
            self.exceptions.clear();
            return Ok(());
        }
        rule.nodes()
            .into_iter()
            .try_for_each(|node| self.apply_node(rule, node, index))
    }

    /// Applies `rule` to one of its nodes.
    fn apply_node(
        &mut self,
        rule: &Rule,
        node: Node,
        index: Option<usize>,
    ) -> Result<(), CgroupError> {
        let from_config = if index.is_some() { rule.access } else { 0 };
        if rule.allow != self.allow_all {
            match self.exceptions.iter_mut().find(|e| e.node == node) {
                Some(e) => {
                    e.access |= rule.access;
                    e.from_config |= from_config;
                    e.first_rule = e.first_rule.or(index);
                }
                None => self.exceptions.push(Exception {
                    node,
                    access: rule.access,
                    from_config,
                    first_rule: index,
                }),
            }
            return Ok(());
        }
        // The kernel removes only an exception for exactly this node: a wildcard exception
        // that also covers it stays, and the rule would not take full effect.
        let wildcards = [
            Node {
                major: None,
                ..node
            },
            Node {
                minor: None,
                ..node
            },
            Node {
                major: None,
                minor: None,
                ..node
            },
        ];
        for w in wildcards.iter().filter(|w| **w != node) {
            let Some(e) = self.exceptions.iter().find(|e| e.node == *w) else {
                continue;
            };
            let overlap = e.access & rule.access;
            if overlap == 0 {
                continue;
            }
            // A default "c *:* m" still allowing mknod of a node the config denies is
            // harmless: the node cannot be opened. Anything else is refused, as in runc.
            if self.allow_all || e.from_config & overlap != 0 || overlap != devices::MKNOD {
                let verb = if rule.allow { "allow" } else { "deny" };
                return Err(CgroupError::Invalid {
                    field: index.map_or_else(
                        || "linux.resources.devices".to_string(),
                        |i| devices::field(i, ""),
                    ),
                    reason: format!(
                        "cannot {verb} {node} {}: the rule {} {} covers it, and a v1 device \
                         cgroup cannot make an exception inside a wildcard rule",
                        access_string(rule.access),
                        e.node,
                        access_string(e.access)
                    ),
                });
            }
            tracing::debug!("{node}: mknod stays allowed by the default rule {}", e.node);
        }
        if let Some(pos) = self.exceptions.iter().position(|e| e.node == node) {
            let e = &mut self.exceptions[pos];
            e.access &= !rule.access;
            e.from_config &= !rule.access;
            if e.access == 0 {
                self.exceptions.remove(pos);
            }
        }
        Ok(())
    }

    /// The exceptions in the order to write them: those the config names, in the config's
    /// order, then the defaults. The kernel lists exceptions in the order they were
    /// written, and the OCI validation suite compares devices.list with the config's
    /// rules position by position.
    pub(super) fn ordered(&self) -> Vec<&Exception> {
        let mut out: Vec<&Exception> = self.exceptions.iter().collect();
        out.sort_by_key(|e| e.first_rule.unwrap_or(usize::MAX));
        out
    }

    pub(super) fn access_of(&self, node: Node) -> u8 {
        self.exceptions
            .iter()
            .find(|e| e.node == node)
            .map_or(0, |e| e.access)
    }

    /// Parses devices.list. An allow-by-default cgroup prints only `a *:* rwm` (its deny
    /// exceptions are not shown).
    pub(super) fn from_list(list: &str) -> Result<DeviceState, String> {
        let mut state = DeviceState::default();
        for line in list.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || format!("unexpected line {line:?}");
            let mut parts = line.split_whitespace();
            let (Some(kind), Some(numbers), Some(access), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            if kind == "a" {
                return Ok(DeviceState {
                    allow_all: true,
                    exceptions: Vec::new(),
                });
            }
            let kind = match kind {
                "b" => DeviceKind::Block,
                "c" => DeviceKind::Char,
                _ => return Err(bad()),
            };
            let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
            let number = |n: &str| match n {
                "*" => Ok(None),
                n => n.parse().map(Some).map_err(|_| bad()),
            };
            let node = Node {
                kind,
                major: number(major)?,
                minor: number(minor)?,
            };
            let access = devices::parse_access(access).map_err(|_| bad())?;
            state.exceptions.push(Exception {
                node,
                access,
                from_config: 0,
                first_rule: None,
            });
        }
        Ok(state)
    }

    /// The (file, line) writes that take a cgroup in state `self` to `want`. `reset`: start
    /// from "a", the only way when the default changes or is allow (whose exceptions
    /// devices.list does not show).
    pub(super) fn transition(
        &self,
        want: &DeviceState,
        reset: bool,
    ) -> Vec<(&'static str, String)> {
        let (add_file, drop_file) = if want.allow_all {
            ("devices.deny", "devices.allow")
        } else {
            ("devices.allow", "devices.deny")
        };
        let mut out = Vec::new();
        let reset = reset || self.allow_all || want.allow_all;
        if reset {
            out.push((drop_file, "a".to_owned()));
        } else {
            for e in &self.exceptions {
                let dropped = e.access & !want.access_of(e.node);
                if dropped != 0 {
                    out.push((drop_file, format!("{} {}", e.node, access_string(dropped))));
                }
            }
        }
        for e in want.ordered() {
            let gained = if reset {
                e.access
            } else {
                e.access & !self.access_of(e.node)
            };
            if gained != 0 {
                out.push((add_file, format!("{} {}", e.node, access_string(gained))));
            }
        }
        out
    }

    /// Whether the kernel's state (read back from devices.list) is `want`. For an
    /// allow-by-default cgroup only the default can be seen.
    pub(super) fn same_as(&self, want: &DeviceState) -> bool {
        if self.allow_all || want.allow_all {
            return self.allow_all == want.allow_all;
        }
        let mut got: Vec<(Node, u8)> = self.exceptions.iter().map(|e| (e.node, e.access)).collect();
        let mut wanted: Vec<(Node, u8)> =
            want.exceptions.iter().map(|e| (e.node, e.access)).collect();
        got.sort();
        wanted.sort();
        got == wanted
    }

    pub(super) fn describe(&self) -> String {
        if self.allow_all {
            return "a *:* rwm".to_owned();
        }
        self.exceptions
            .iter()
            .map(|e| format!("{} {}", e.node, access_string(e.access)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
