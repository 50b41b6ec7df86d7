//! seccomp(2): loading a classic BPF filter into the calling process, and asking the kernel
//! which filter flags it takes.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The size of one instruction in bytes.
pub const INSN_SIZE: usize = std::mem::size_of::<Insn>();

impl Insn {
    /// An instruction from its first [`INSN_SIZE`] bytes in native byte order.
    pub fn from_ne_bytes(b: &[u8]) -> Insn {
        Insn {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn to_ne_bytes(self) -> [u8; INSN_SIZE] {
        let c = self.code.to_ne_bytes();
        let k = self.k.to_ne_bytes();
        [c[0], c[1], self.jt, self.jf, k[0], k[1], k[2], k[3]]
    }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, program)`; with the NEW_LISTENER flag, the notify
/// listener the kernel returns. No allocation: the init calls it right before exec.
pub fn load_filter(program: &[Insn], flags: u32) -> Result<Option<OwnedFd>, Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `program`, a live array of `len` instructions with the layout
    // of `struct sock_filter`; the kernel copies it before returning and does not write
    // through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }))
}

/// Asks the kernel about `flags` without loading anything: it checks the flags before it
/// reads the program, so a NULL program fails with EFAULT for flags it takes and EINVAL for
/// the others. `Ok` would mean a NULL program was loaded, which cannot happen.
pub fn probe_filter_flags(flags: u32) -> Result<(), Errno> {
    // SAFETY: a NULL program pointer makes the kernel fail (EFAULT, or EINVAL for the flags)
    // before it installs anything; no memory of ours is read or written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instruction_has_the_kernels_layout_and_round_trips() {
        assert_eq!(INSN_SIZE, std::mem::size_of::<libc::sock_filter>());
        let i = Insn {
            code: 0x15,
            jt: 1,
            jf: 2,
            k: 0xdead_beef,
        };
        assert_eq!(Insn::from_ne_bytes(&i.to_ne_bytes()), i);
    }

    #[test]
    fn unknown_flags_are_einval_and_known_ones_efault() {
        assert_eq!(probe_filter_flags(0), Err(Errno::EFAULT));
        assert_eq!(probe_filter_flags(1 << 31), Err(Errno::EINVAL));
    }
}
