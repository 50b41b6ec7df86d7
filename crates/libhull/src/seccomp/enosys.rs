//! The ENOSYS stub: syscall numbers above the largest one the profile names, per
//! architecture, return ENOSYS; everything else falls through to libseccomp's program.

use super::{Insn, ScmpArch, SeccompError};

const LD_W_ABS: u16 = 0x20;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const RET_ERRNO: u32 = 0x0005_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Clone, Copy)]
enum To {
    Next,
    Enosys,
    Filter,
    Section(usize),
    /// Skip this many instructions.
    Skip(u8),
}

struct Op {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn op(code: u16, k: u32) -> Op {
    Op {
        code,
        k,
        jt: To::Next,
        jf: To::Next,
    }
}

fn jump(code: u16, k: u32, jt: To, jf: To) -> Op {
    Op { code, k, jt, jf }
}

/// The kernel's AUDIT_ARCH value for a libseccomp architecture (what `seccomp_data.arch`
/// holds). libseccomp's tokens are the audit values, except x32 which shares x86_64's.
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    Some(match arch {
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::X8664 | ScmpArch::X32 => AUDIT_ARCH_X86_64,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Mips => 0x0000_0008,
        ScmpArch::Mips64 => 0x8000_0008,
        ScmpArch::Mips64N32 => 0xa000_0008,
        ScmpArch::Mipsel => 0x4000_0008,
        ScmpArch::Mipsel64 => 0xc000_0008,
        ScmpArch::Mipsel64N32 => 0xe000_0008,
        ScmpArch::Ppc => 0x0000_0014,
        ScmpArch::Ppc64 => 0x8000_0015,
        ScmpArch::Ppc64Le => 0xc000_0015,
        ScmpArch::S390 => 0x0000_0016,
        ScmpArch::S390X => 0x8000_0016,
        ScmpArch::Parisc => 0x0000_000f,
        ScmpArch::Parisc64 => 0x8000_000f,
        ScmpArch::Riscv64 => 0xc000_00f3,
        ScmpArch::Loongarch64 => 0xc000_0102,
        ScmpArch::M68k => 0x0000_0004,
        ScmpArch::Sh => 0x4000_002a,
        ScmpArch::Sheb => 0x0000_002a,
        _ => return None,
    })
}

/// The stub for `(architecture, largest syscall number)` pairs.
pub(super) fn stub(targets: &[(ScmpArch, u32)]) -> Result<Vec<Insn>, SeccompError> {
    // x86_64 and x32 share an audit arch and differ by a bit in the syscall number.
    let mut x86_64 = None;
    let mut x32 = None;
    let mut sections: Vec<(u32, Vec<Op>)> = Vec::new();
    for &(arch, largest) in targets {
        match arch {
            ScmpArch::X8664 => x86_64 = Some(largest),
            ScmpArch::X32 => x32 = Some(largest),
            _ => {
                let Some(audit) = audit_arch(arch) else {
                    tracing::debug!("seccomp: no ENOSYS stub for {arch:?}");
                    continue;
                };
                let mut ops = vec![op(LD_W_ABS, OFF_NR)];
                if matches!(arch, ScmpArch::S390 | ScmpArch::S390X) {
                    // Syscall numbers the kernel does not know arrive as 0 (the old
                    // setup(2) slot, used to multiplex large numbers there).
                    ops.push(jump(JEQ_K, 0, To::Enosys, To::Next));
                }
                ops.push(jump(JGT_K, largest, To::Enosys, To::Filter));
                sections.push((audit, ops));
            }
        }
    }
    if x86_64.is_some() || x32.is_some() {
        let part = |largest: Option<u32>| match largest {
            Some(n) => jump(JGT_K, n, To::Enosys, To::Filter),
            None => op(JA, 0),
        };
        let mut x64_part = part(x86_64);
        let mut x32_part = part(x32);
        // A part without a largest number hands every such call to the filter.
        for p in [&mut x64_part, &mut x32_part] {
            if p.code == JA {
                p.jt = To::Filter;
            }
        }
        sections.push((
            AUDIT_ARCH_X86_64,
            vec![
                op(LD_W_ABS, OFF_NR),
                jump(JSET_K, X32_SYSCALL_BIT, To::Skip(1), To::Next),
                x64_part,
                x32_part,
            ],
        ));
    }

    let mut ops = vec![op(LD_W_ABS, OFF_ARCH)];
    for (i, (audit, _)) in sections.iter().enumerate() {
        ops.push(jump(JEQ_K, *audit, To::Section(i), To::Next));
    }
    ops.push(jump(JA, 0, To::Filter, To::Next));
    let mut starts = Vec::new();
    for (_, section) in sections {
        starts.push(ops.len());
        ops.extend(section);
    }
    let enosys = ops.len();
    ops.push(op(RET_K, RET_ERRNO | libc::ENOSYS as u32));
    let filter = ops.len();

    let mut out = Vec::with_capacity(ops.len());
    for (pc, o) in ops.iter().enumerate() {
        let target = |to: To| match to {
            To::Next => pc + 1,
            To::Enosys => enosys,
            To::Filter => filter,
            To::Section(i) => starts[i],
            To::Skip(n) => pc + 1 + n as usize,
        };
        let rel = |to: To| -> Result<u8, SeccompError> {
            u8::try_from(target(to) - pc - 1).map_err(|_| {
                SeccompError::invalid("linux.seccomp", "ENOSYS stub jump out of range")
            })
        };
        out.push(if o.code == JA {
            Insn {
                code: JA,
                jt: 0,
                jf: 0,
                k: (target(o.jt) - pc - 1) as u32,
            }
        } else if o.code & 0x07 == 0x05 {
            Insn {
                code: o.code,
                jt: rel(o.jt)?,
                jf: rel(o.jf)?,
                k: o.k,
            }
        } else {
            Insn {
                code: o.code,
                jt: 0,
                jf: 0,
                k: o.k,
            }
        });
    }
    Ok(out)
}
