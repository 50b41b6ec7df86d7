//! cgroup v2 device control: `linux.resources.devices` (plus the devices every container
//! may use) turned into a `BPF_PROG_TYPE_CGROUP_DEVICE` program and attached to the
//! container's cgroup2 directory, replacing the program hull attached before.
//!
//! Hand-written rather than libcgroups' `cgroupsv2_devices`: that feature builds libbpf from C
//! (libelf-dev and zlib1g-dev on every build host), its `apply_devices` raises RLIMIT_MEMLOCK
//! to 128 MiB and fails without CAP_SYS_RESOURCE (this host's bounding set lacks it), and its
//! rule merging is not the v1 kernel's (a partial-access deny after an allow still allows
//! `rw`). What is left to write is small: a rule folder, a dozen instructions per rule, and
//! five bpf(2) commands.
//!
//! The rules are the ones the v1 writer hands the kernel, in the same order
//! ([`devices::effective_rules`]: the config's, with hull's defaults after its last
//! "all devices" rule), folded the way the v1 kernel folds them into a default action and
//! exceptions, so a container is allowed the same devices on either hierarchy. The program
//! checks the exceptions as the v1 kernel does: with default deny, one exception must cover
//! the device and every access asked for; with default allow, an exception that shares any
//! access denies (runc's program tests "covers all" there too, and so lets `rw` through a
//! `w` deny). Since kernel 5.11 BPF memory is charged to the memory cgroup: no rlimit change.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use hull_sys::bpf;

use crate::devices::{self, DeviceKind, Node, Rule};
use crate::error::CgroupError;

/// The name hull gives its programs, so an update detaches only those.
const PROG_NAME: &[u8] = b"hull_devices";

/// Writes the device rules of a container (`rules` from `linux.resources.devices`, with
/// hull's defaults as the v1 writer places them) as a device program on the cgroup2
/// directory `dir`. Any program hull attached there before is detached once the new one is
/// in place (`update`, or a retried create); programs attached by others are left alone.
pub fn apply_devices(
    dir: &Path,
    rules: &[LinuxDeviceCgroup],
    update: bool,
) -> Result<(), CgroupError> {
    let program = Program::from_spec(rules)?;
    tracing::debug!(dir = %dir.display(), update, "device program:\n{program}");
    attach(dir, &program)
}

/// `BPF_DEVCG_DEV_CHAR` / `BPF_DEVCG_DEV_BLOCK`.
fn bpf_type(kind: DeviceKind) -> i32 {
    match kind {
        DeviceKind::Block => 1,
        DeviceKind::Char => 2,
    }
}

/// The state a v1 devices cgroup reaches after the rules are written to devices.allow and
/// devices.deny in order: a default action plus exceptions (each with its access bits).
#[derive(Debug, Default, PartialEq, Eq)]
struct Emulator {
    default_allow: bool,
    /// Keyed by [`Node`], whose order puts wildcards first, as runc does; all exceptions
    /// share one action, so their order cannot change the result.
    exceptions: BTreeMap<Node, u8>,
}

impl Emulator {
    fn apply(&mut self, rule: &Rule) {
        if rule.is_reset() {
            // `a *:* rwm`: everything allowed or denied from here on.
            *self = Emulator {
                default_allow: rule.allow,
                exceptions: BTreeMap::new(),
            };
            return;
        }
        // Any other rule, type `a` included (one `b` and one `c` node), acts per node, as
        // the v1 writer writes it, so both cgroup versions allow the same devices.
        for node in rule.nodes() {
            if rule.allow != self.default_allow {
                *self.exceptions.entry(node).or_default() |= rule.access;
            } else if let Some(held) = self.exceptions.get_mut(&node) {
                // Like the kernel: only the exception with these very numbers shrinks; a
                // wildcard exception that also covers the device stays as it is.
                *held &= !rule.access;
                if *held == 0 {
                    self.exceptions.remove(&node);
                }
            }
        }
    }
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    // Opcodes: class | op | source.
    const LDX_MEM_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W
    const ALU32_AND_K: u8 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
    const ALU32_RSH_K: u8 = 0x04 | 0x70; // BPF_ALU | BPF_RSH | BPF_K
    const ALU32_MOV_K: u8 = 0x04 | 0xb0; // BPF_ALU | BPF_MOV | BPF_K
    const ALU32_MOV_X: u8 = 0x04 | 0xb0 | 0x08; // BPF_ALU | BPF_MOV | BPF_X
    const JNE_K: u8 = 0x05 | 0x50; // BPF_JMP | BPF_JNE | BPF_K
    const JNE_X: u8 = 0x05 | 0x50 | 0x08; // BPF_JMP | BPF_JNE | BPF_X
    const JEQ_K: u8 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    const EXIT: u8 = 0x05 | 0x90; // BPF_JMP | BPF_EXIT

    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// `struct bpf_insn` in the host's layout: the register bitfields put dst_reg in the low
    /// nibble on little-endian hosts and in the high one on big-endian hosts.
    fn encode(self) -> [u8; 8] {
        let regs = if cfg!(target_endian = "little") {
            (self.src << 4) | (self.dst & 0x0f)
        } else {
            (self.dst << 4) | (self.src & 0x0f)
        };
        let [o0, o1] = self.off.to_ne_bytes();
        let [i0, i1, i2, i3] = self.imm.to_ne_bytes();
        [self.code, regs, o0, o1, i0, i1, i2, i3]
    }
}

/// A device program: the instructions, and the rules they encode (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
    default_allow: bool,
    exceptions: Vec<Rule>,
}

impl Program {
    /// The program for `linux.resources.devices` with hull's default rules.
    pub fn from_spec(rules: &[LinuxDeviceCgroup]) -> Result<Self, CgroupError> {
        let all: Vec<Rule> = devices::effective_rules(rules)?
            .into_iter()
            .map(|(_, rule)| rule)
            .collect();
        Ok(Self::from_rules(&all))
    }

    /// The program for exactly `rules`, folded in order from "deny all".
    fn from_rules(rules: &[Rule]) -> Self {
        let mut emu = Emulator::default();
        for rule in rules {
            emu.apply(rule);
        }
        let exceptions: Vec<Rule> = emu
            .exceptions
            .iter()
            .map(|(node, &access)| Rule {
                allow: !emu.default_allow,
                kind: Some(node.kind),
                major: node.major,
                minor: node.minor,
                access,
            })
            .collect();
        let mut insns = vec![
            // R2 = device type (low 16 bits of access_type), R3 = access (high 16 bits),
            // R4 = major, R5 = minor (struct bpf_cgroup_dev_ctx, in R1).
            Insn::new(Insn::LDX_MEM_W, 2, 1, 0, 0),
            Insn::new(Insn::ALU32_AND_K, 2, 0, 0, 0xffff),
            Insn::new(Insn::LDX_MEM_W, 3, 1, 0, 0),
            Insn::new(Insn::ALU32_RSH_K, 3, 0, 0, 16),
            Insn::new(Insn::LDX_MEM_W, 4, 1, 4, 0),
            Insn::new(Insn::LDX_MEM_W, 5, 1, 8, 0),
        ];
        for rule in &exceptions {
            let mut block = Vec::new();
            // Each jump's offset is filled in once the block's length is known.
            block.push(Insn::new(
                Insn::JNE_K,
                2,
                0,
                0,
                rule.kind.map_or(0, bpf_type),
            ));
            if rule.access != devices::ALL {
                // R1 = the access asked for that the exception names.
                block.push(Insn::new(Insn::ALU32_MOV_X, 1, 3, 0, 0));
                block.push(Insn::new(
                    Insn::ALU32_AND_K,
                    1,
                    0,
                    0,
                    i32::from(rule.access),
                ));
                if rule.allow {
                    // An allow must cover all of it: skip unless R1 == R3.
                    block.push(Insn::new(Insn::JNE_X, 1, 3, 0, 0));
                } else {
                    // A deny hits on any of it: skip only if R1 == 0.
                    block.push(Insn::new(Insn::JEQ_K, 1, 0, 0, 0));
                }
            }
            // A number past i32::MAX sign-extends to one no 32-bit register holds, so it
            // matches nothing: right, as no device has it (majors have 12 bits, minors 20).
            if let Some(major) = rule.major {
                block.push(Insn::new(Insn::JNE_K, 4, 0, 0, major as i32));
            }
            if let Some(minor) = rule.minor {
                block.push(Insn::new(Insn::JNE_K, 5, 0, 0, minor as i32));
            }
            block.push(Insn::new(Insn::ALU32_MOV_K, 0, 0, 0, i32::from(rule.allow)));
            block.push(Insn::new(Insn::EXIT, 0, 0, 0, 0));
            let len = block.len();
            for (i, insn) in block.iter_mut().enumerate() {
                if matches!(insn.code, Insn::JNE_K | Insn::JNE_X | Insn::JEQ_K) {
                    // Jump past the rest of the block: offsets count from the next insn.
                    insn.off = (len - i - 1) as i16;
                }
            }
            insns.extend(block);
        }
        insns.push(Insn::new(
            Insn::ALU32_MOV_K,
            0,
            0,
            0,
            i32::from(emu.default_allow),
        ));
        insns.push(Insn::new(Insn::EXIT, 0, 0, 0, 0));
        Program {
            insns,
            default_allow: emu.default_allow,
            exceptions,
        }
    }

    fn bytecode(&self) -> Vec<[u8; 8]> {
        self.insns.iter().map(|i| i.encode()).collect()
    }

    /// Runs the program as the kernel would for one access (`kind`, major, minor, `access`
    /// as r/w/m letters): true = allowed. A tiny interpreter of just the opcodes emitted here.
    pub fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: &str) -> bool {
        let acc = u64::from(devices::parse_access(access).unwrap_or(0));
        let mut regs = [0u64; 11];
        let ctx = [
            (acc << 16) | bpf_type(kind) as u64,
            u64::from(major),
            u64::from(minor),
        ];
        let mut pc = 0usize;
        while let Some(insn) = self.insns.get(pc) {
            let (d, s) = (usize::from(insn.dst), usize::from(insn.src));
            let imm = i64::from(insn.imm) as u64;
            pc += 1;
            match insn.code {
                Insn::LDX_MEM_W => regs[d] = ctx[(insn.off / 4) as usize],
                Insn::ALU32_AND_K => regs[d] = (regs[d] & imm) & 0xffff_ffff,
                Insn::ALU32_RSH_K => regs[d] = (regs[d] & 0xffff_ffff) >> insn.imm,
                Insn::ALU32_MOV_K => regs[d] = imm & 0xffff_ffff,
                Insn::ALU32_MOV_X => regs[d] = regs[s] & 0xffff_ffff,
                Insn::JNE_K if regs[d] != imm => pc += insn.off as usize,
                Insn::JNE_X if regs[d] != regs[s] => pc += insn.off as usize,
                Insn::JEQ_K if regs[d] == imm => pc += insn.off as usize,
                Insn::JNE_K | Insn::JNE_X | Insn::JEQ_K => {}
                Insn::EXIT => return regs[0] == 1,
                _ => return false,
            }
        }
        false
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "default: {}",
            if self.default_allow { "allow" } else { "deny" }
        )?;
        for rule in &self.exceptions {
            writeln!(f, "{rule}")?;
        }
        Ok(())
    }
}

/// Loads `program` and attaches it to `dir`, then detaches the hull programs that were
/// there before (new first, so the directory is never without one).
fn attach(dir: &Path, program: &Program) -> Result<(), CgroupError> {
    let io_err = |step: &'static str| {
        move |source: io::Error| CgroupError::Io {
            step,
            path: dir.to_path_buf(),
            source,
        }
    };
    let cgroup = std::fs::File::open(dir).map_err(io_err("open cgroup directory"))?;
    let old = bpf::query_device_progs(cgroup.as_raw_fd())
        .map_err(io_err("list device programs attached to"))?;
    let prog = bpf::load_device_prog(&program.bytecode(), PROG_NAME)
        .map_err(io_err("load the device program for"))?;
    bpf::attach_device_prog(cgroup.as_raw_fd(), prog.as_raw_fd())
        .map_err(io_err("attach the device program to"))?;
    for id in old {
        let Ok(fd) = bpf::prog_fd_by_id(id) else {
            // Detached or unloaded since the query.
            continue;
        };
        match bpf::prog_name(fd.as_raw_fd()) {
            Ok(name) if name.as_bytes() == PROG_NAME => {
                bpf::detach_device_prog(cgroup.as_raw_fd(), fd.as_raw_fd())
                    .map_err(io_err("detach the previous device program from"))?;
            }
            Ok(name) => tracing::warn!(
                dir = %dir.display(), id, ?name,
                "leaving a device program hull did not attach"
            ),
            Err(e) => tracing::warn!(dir = %dir.display(), id, "device program info: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
fn count_device_progs(dir: &Path) -> io::Result<usize> {
    let f = std::fs::File::open(dir)?;
    bpf::query_device_progs(f.as_raw_fd()).map(|v| v.len())
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResources};

    use super::super::v2::tests::{run_in, Scratch};
    use super::*;
    use DeviceKind::{Block, Char};

    fn spec(
        allow: bool,
        typ: LinuxDeviceType,
        mm: Option<(i64, i64)>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some((major, minor)) = mm {
            b = b.major(major).minor(minor);
        }
        b.build().unwrap()
    }

    fn rule(
        allow: bool,
        kind: Option<DeviceKind>,
        major: Option<u32>,
        minor: Option<u32>,
        access: &str,
    ) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: devices::parse_access(access).unwrap(),
        }
    }

    #[test]
    fn instructions_encode_as_struct_bpf_insn() {
        // r2 = *(u32 *)(r1 + 0)
        assert_eq!(
            Insn::new(Insn::LDX_MEM_W, 2, 1, 0, 0).encode(),
            [0x61, 0x12, 0, 0, 0, 0, 0, 0]
        );
        // if r4 != 136 goto +3
        assert_eq!(
            Insn::new(Insn::JNE_K, 4, 0, 3, 136).encode(),
            [0x55, 0x04, 3, 0, 136, 0, 0, 0]
        );
        // w0 = 1; exit
        assert_eq!(
            Insn::new(Insn::ALU32_MOV_K, 0, 0, 0, 1).encode(),
            [0xb4, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            Insn::new(Insn::EXIT, 0, 0, 0, 0).encode(),
            [0x95, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn a_type_a_rule_short_of_a_reset_acts_per_node_as_on_v1() {
        // deny all, then allow reading every device of major 1, block and char.
        let p = Program::from_rules(&[
            rule(false, None, None, None, "rwm"),
            rule(true, None, Some(1), None, "r"),
        ]);
        assert!(p.allows(Char, 1, 5, "r"));
        assert!(p.allows(Block, 1, 0, "r"));
        assert!(!p.allows(Char, 1, 5, "w"));
        assert!(!p.allows(Char, 2, 0, "r"));
    }

    #[test]
    fn without_rules_only_the_defaults_are_allowed() {
        let p = Program::from_spec(&[]).unwrap();
        assert!(p.allows(Char, 1, 3, "rw"));
        assert!(p.allows(Char, 1, 5, "rwm"));
        assert!(p.allows(Char, 136, 7, "rw"));
        assert!(p.allows(Char, 5, 2, "rw"));
        assert!(p.allows(Char, 10, 200, "rw"));
        // mknod of anything, but no use of it.
        assert!(p.allows(Block, 8, 0, "m"));
        assert!(!p.allows(Block, 8, 0, "r"));
        assert!(!p.allows(Char, 1, 11, "r"));
        assert!(!p.allows(Char, 1, 1, "rw"));
        assert!(!p.allows(Char, 5, 1, "rw"));
    }

    #[test]
    fn defaults_follow_the_last_all_devices_rule() {
        // As the v1 writer orders them: a deny after the defaults wins, even of a default
        // device; the wildcard mknod default survives it, as in the v1 kernel.
        let p = Program::from_spec(&[
            spec(false, LinuxDeviceType::A, None, "rwm"),
            spec(false, LinuxDeviceType::C, Some((1, 5)), "rwm"),
        ])
        .unwrap();
        assert!(!p.allows(Char, 1, 5, "r"));
        assert!(!p.allows(Char, 1, 5, "w"));
        assert!(p.allows(Char, 1, 5, "m"));
        assert!(p.allows(Char, 1, 3, "rw"));
        // After an allow-all the defaults change nothing and the denies stay.
        let p = Program::from_spec(&[
            spec(true, LinuxDeviceType::A, None, "rwm"),
            spec(false, LinuxDeviceType::C, Some((1, 5)), "rwm"),
            spec(false, LinuxDeviceType::C, Some((1, 11)), "rwm"),
        ])
        .unwrap();
        assert!(!p.allows(Char, 1, 5, "r"));
        assert!(!p.allows(Char, 1, 11, "r"));
        assert!(p.allows(Block, 8, 0, "rw"));
    }

    #[test]
    fn partial_access_is_folded_like_the_v1_kernel() {
        let p = Program::from_rules(&[
            rule(true, Some(Char), Some(1), Some(5), "rw"),
            rule(false, Some(Char), Some(1), Some(5), "w"),
        ]);
        assert!(p.allows(Char, 1, 5, "r"));
        assert!(!p.allows(Char, 1, 5, "w"));
        assert!(!p.allows(Char, 1, 5, "rw"));
        assert!(!p.allows(Char, 1, 5, "m"));
        // Default allow: a deny of some access refuses any request that includes it.
        let p = Program::from_rules(&[
            rule(true, None, None, None, "rwm"),
            rule(false, Some(Char), Some(1), Some(5), "w"),
        ]);
        assert!(p.allows(Char, 1, 5, "r"));
        assert!(p.allows(Char, 1, 5, "m"));
        assert!(!p.allows(Char, 1, 5, "w"));
        assert!(!p.allows(Char, 1, 5, "rw"));
        assert!(p.allows(Char, 1, 6, "rw"));
        // Wildcards in allow-list mode.
        let p = Program::from_rules(&[
            rule(true, Some(Char), Some(4), None, "rw"),
            rule(true, Some(Block), None, Some(0), "r"),
        ]);
        assert!(p.allows(Char, 4, 63, "rw"));
        assert!(!p.allows(Char, 5, 63, "r"));
        assert!(p.allows(Block, 259, 0, "r"));
        assert!(!p.allows(Block, 259, 0, "w"));
        assert!(!p.allows(Char, 259, 0, "r"));
    }

    #[test]
    fn a_deny_inside_a_wildcard_allow_keeps_the_wildcard() {
        // The v1 kernel only shrinks the exception with the same numbers.
        let p = Program::from_rules(&[
            rule(true, Some(Char), None, None, "rwm"),
            rule(false, Some(Char), Some(1), Some(5), "r"),
        ]);
        assert!(p.allows(Char, 1, 5, "r"));
        let p = Program::from_rules(&[
            rule(true, Some(Char), Some(1), Some(5), "rwm"),
            rule(false, Some(Char), Some(1), Some(5), "r"),
        ]);
        assert!(!p.allows(Char, 1, 5, "r"));
        assert!(p.allows(Char, 1, 5, "wm"));
    }

    #[test]
    fn numbers_past_i32_match_no_device() {
        // No device has such a number; the sign-extended compare must not match 0 or -1.
        let p = Program::from_rules(&[
            rule(true, None, None, None, "rwm"),
            rule(false, Some(Char), Some(u32::MAX), None, "rwm"),
            rule(false, Some(Char), Some(1), Some(1 << 31), "rwm"),
        ]);
        assert!(p.allows(Char, 1, 3, "rw"));
        assert!(p.allows(Char, 0, 0, "rw"));
        let p = Program::from_rules(&[rule(true, Some(Char), Some(u32::MAX), None, "rwm")]);
        assert!(!p.allows(Char, 0, 0, "r"));
        assert!(!p.allows(Char, 1, 3, "r"));
    }

    #[test]
    fn the_kernel_verifier_accepts_the_programs() {
        let many: Vec<LinuxDeviceCgroup> = (0..200)
            .map(|i| {
                spec(
                    true,
                    LinuxDeviceType::B,
                    Some((8, i)),
                    if i % 2 == 0 { "rw" } else { "rwm" },
                )
            })
            .collect();
        for rules in [
            vec![],
            vec![spec(true, LinuxDeviceType::A, None, "rwm")],
            vec![
                spec(true, LinuxDeviceType::A, None, "rwm"),
                spec(false, LinuxDeviceType::C, Some((1, 5)), "w"),
                spec(false, LinuxDeviceType::B, None, "m"),
                spec(
                    false,
                    LinuxDeviceType::C,
                    Some((i64::from(u32::MAX), 1)),
                    "r",
                ),
            ],
            many,
        ] {
            let p = Program::from_spec(&rules).unwrap();
            bpf::load_device_prog(&p.bytecode(), PROG_NAME).unwrap();
        }
    }

    const OPEN_NULL_AND: &str = ": </dev/null || exit 10; : <";

    /// The brief's check: in a cgroup2 child with a program denying c 1:5, a process that
    /// moved itself in cannot open /dev/zero and can open /dev/null.
    #[test]
    fn a_denied_device_cannot_be_opened_in_the_cgroup() {
        let cg = Scratch::new();
        let p = Program::from_rules(&[
            rule(true, None, None, None, "rwm"),
            rule(false, Some(Char), Some(1), Some(5), "rwm"),
        ]);
        attach(&cg.0, &p).unwrap();
        let out = run_in(&cg.0, &format!("{OPEN_NULL_AND}/dev/zero"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("Operation not permitted"), "{err}");
        let out = run_in(&cg.0, &format!("{OPEN_NULL_AND}/dev/full"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A deny of write access in an allow-all program refuses a read-write open and lets a
    /// read-only one through (the kernel's v1 rule; runc's program lets both through).
    #[test]
    fn a_write_deny_stops_read_write_opens() {
        let cg = Scratch::new();
        let p = Program::from_rules(&[
            rule(true, None, None, None, "rwm"),
            rule(false, Some(Char), Some(1), Some(5), "w"),
        ]);
        attach(&cg.0, &p).unwrap();
        let out = run_in(&cg.0, &format!("{OPEN_NULL_AND}/dev/zero"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run_in(&cg.0, ": <>/dev/zero");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Operation not permitted"), "{err}");
    }

    /// apply_devices with defaults, then an update that replaces hull's program (one stays).
    #[test]
    fn update_replaces_the_program() {
        let cg = Scratch::new();
        apply_devices(
            &cg.0,
            &[spec(false, LinuxDeviceType::A, None, "rwm")],
            false,
        )
        .unwrap();
        assert_eq!(count_device_progs(&cg.0).unwrap(), 1);
        // c 1:11 is /dev/kmsg: not a default device.
        let out = run_in(&cg.0, &format!("{OPEN_NULL_AND}/dev/kmsg"));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run_in(&cg.0, &format!("{OPEN_NULL_AND}/dev/zero"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        apply_devices(
            &cg.0,
            &[spec(true, LinuxDeviceType::C, Some((1, 11)), "r")],
            true,
        )
        .unwrap();
        assert_eq!(count_device_progs(&cg.0).unwrap(), 1);
        let out = run_in(&cg.0, &format!("{OPEN_NULL_AND}/dev/kmsg"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Through v2::apply on a unified host: the program goes on at create even without rules.
    #[test]
    fn v2_apply_attaches_the_default_program_on_create() {
        let cg = Scratch::new();
        super::super::v2::apply(&cg.0, &LinuxResources::default(), true, false).unwrap();
        assert_eq!(count_device_progs(&cg.0).unwrap(), 1);
        let out = run_in(&cg.0, &format!("{OPEN_NULL_AND}/dev/kmsg"));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // An update without devices leaves the program alone.
        super::super::v2::apply(&cg.0, &LinuxResources::default(), true, true).unwrap();
        assert_eq!(count_device_progs(&cg.0).unwrap(), 1);
    }
}
