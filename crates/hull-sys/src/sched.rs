//! Scheduling syscalls nix lacks: `sched_setattr`/`sched_getattr` (sched(7)),
//! `ioprio_set`/`ioprio_get` (ioprio_set(2)) and `sched_setaffinity`/`sched_getaffinity` with a
//! CPU mask of any length (nix's `CpuSet` stops at 1024 CPUs).
//!
//! A `pid` of 0 means the calling thread, as in the syscalls themselves.

use nix::errno::Errno;
use nix::unistd::Pid;

/// `SCHED_RESET_ON_FORK` and friends: the `sched_flags` bits of `struct sched_attr`.
pub const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
pub const SCHED_FLAG_RECLAIM: u64 = 0x02;
pub const SCHED_FLAG_DL_OVERRUN: u64 = 0x04;
pub const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
pub const SCHED_FLAG_KEEP_PARAMS: u64 = 0x10;
pub const SCHED_FLAG_UTIL_CLAMP_MIN: u64 = 0x20;
pub const SCHED_FLAG_UTIL_CLAMP_MAX: u64 = 0x40;

/// `struct sched_attr` as of Linux 5.3 (`SCHED_ATTR_SIZE_VER1`, 56 bytes, with the
/// utilization clamps). Older kernels accept it as long as the clamp fields are zero.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
    pub sched_util_min: u32,
    pub sched_util_max: u32,
}

impl SchedAttr {
    /// An attribute block of the right size with every field zero (SCHED_OTHER, nice 0).
    pub fn new() -> Self {
        SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            ..Default::default()
        }
    }
}

/// `sched_setattr(pid, attr, 0)`: sets the scheduling policy and its parameters.
pub fn sched_setattr(pid: Pid, attr: &SchedAttr) -> Result<(), Errno> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the kernel reads at most `attr.size` bytes from a valid, live sched_attr.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            pid.as_raw(),
            &attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    Errno::result(ret).map(drop)
}

/// `sched_getattr(pid, attr, size, 0)`: reads the scheduling policy and its parameters.
pub fn sched_getattr(pid: Pid) -> Result<SchedAttr, Errno> {
    let mut attr = SchedAttr::new();
    // SAFETY: the kernel writes at most `size` bytes into `attr`, which is that large.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            pid.as_raw(),
            &mut attr as *mut SchedAttr,
            std::mem::size_of::<SchedAttr>() as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    Errno::result(ret).map(|_| attr)
}

/// I/O scheduling classes (`IOPRIO_CLASS_*`).
pub const IOPRIO_CLASS_RT: u16 = 1;
pub const IOPRIO_CLASS_BE: u16 = 2;
pub const IOPRIO_CLASS_IDLE: u16 = 3;
/// Levels 0 (highest) to 7 (lowest) within the RT and BE classes.
pub const IOPRIO_LEVELS: u16 = 8;

const IOPRIO_CLASS_SHIFT: u16 = 13;
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// The `ioprio` value for a class and a level within it (`IOPRIO_PRIO_VALUE`).
pub fn ioprio_value(class: u16, level: u16) -> u16 {
    (class << IOPRIO_CLASS_SHIFT) | level
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, pid, ioprio)`: sets the I/O priority of one thread
/// (0: the caller); children created afterwards inherit it.
pub fn ioprio_set(pid: Pid, ioprio: u16) -> Result<(), Errno> {
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            pid.as_raw(),
            libc::c_int::from(ioprio),
        )
    };
    Errno::result(ret).map(drop)
}

/// `ioprio_get(IOPRIO_WHO_PROCESS, pid)`: the I/O priority of one thread (0: the caller).
pub fn ioprio_get(pid: Pid) -> Result<u16, Errno> {
    // SAFETY: ioprio_get takes two integers and touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, pid.as_raw()) };
    Errno::result(ret).map(|v| v as u16)
}

/// `sched_setaffinity(pid, len, mask)`: bit N of `mask` (word N / 64, bit N % 64) allows CPU N.
pub fn sched_setaffinity(pid: Pid, mask: &[u64]) -> Result<(), Errno> {
    // SAFETY: the kernel reads `len` bytes from `mask`, which is exactly that long.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            pid.as_raw(),
            std::mem::size_of_val(mask),
            mask.as_ptr(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `sched_getaffinity(pid, len, mask)`: the CPUs a thread may run on, in the layout
/// [`sched_setaffinity`] takes. Grows the buffer until the kernel's CPU count fits.
pub fn sched_getaffinity(pid: Pid) -> Result<Vec<u64>, Errno> {
    let mut words = 16;
    loop {
        let mut mask = vec![0u64; words];
        // SAFETY: the kernel writes at most `len` bytes into `mask`, which is that long.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_sched_getaffinity,
                pid.as_raw(),
                std::mem::size_of_val(mask.as_slice()),
                mask.as_mut_ptr(),
            )
        };
        match Errno::result(ret) {
            Ok(bytes) => {
                mask.truncate((bytes as usize).div_ceil(8));
                return Ok(mask);
            }
            // EINVAL: the buffer is smaller than the kernel's CPU mask.
            Err(Errno::EINVAL) if words < 1 << 16 => words *= 4,
            Err(e) => return Err(e),
        }
    }
}
