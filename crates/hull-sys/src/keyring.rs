//! The session keyring calls (keyctl(2)) the init makes.

use std::ffi::CStr;

use nix::errno::Errno;

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
const KEYCTL_SETPERM: libc::c_int = 5;
const KEYCTL_DESCRIBE: libc::c_int = 6;

/// Joins (making it if need be) the session keyring `name`; returns its serial.
pub fn join_session(name: &CStr) -> Result<i32, Errno> {
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING reads one NUL-terminated string that outlives the
    // call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(|serial| serial as i32)
}

/// Sets a key's permission mask.
pub fn set_perm(serial: i32, perm: u32) -> Result<(), Errno> {
    // SAFETY: KEYCTL_SETPERM takes a serial and a permission mask by value.
    Errno::result(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, perm) })
        .map(drop)
}

/// KEYCTL_DESCRIBE: "type;uid;gid;perm;description" of a key.
pub fn describe(serial: i32) -> Result<String, Errno> {
    let mut buf = vec![0u8; 512];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which is that long.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_DESCRIBE,
                serial,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let needed = Errno::result(ret)? as usize;
        if needed <= buf.len() {
            buf.truncate(needed.saturating_sub(1));
            break;
        }
        buf.resize(needed, 0);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
