//! The runtime's own binary, out of a container's reach (CVE-2019-5736).
//!
//! Until the init execs the user's program it is a copy of this process. A container that
//! makes it exec `/proc/self/exe` (as its program, a `#!` or an ELF interpreter) runs this
//! process's binary inside the container, and through `/proc/<pid>/exe` holds a handle on it
//! that it could reopen for writing. So create, run and exec first re-execute themselves
//! (same argv, environment, descriptors and pid) from a file no such handle can write to.
//! [`ensure`] tries, in this order:
//!
//! 1. **Read-only overlay**: the binary's directory as the lower layer of an overlayfs made
//!    with `fsmount` and attached nowhere. No copy. Opening the file for writing fails with
//!    EROFS, always: an overlayfs without an upper layer is read-only whatever its mount
//!    flags, and the mount is in no mount namespace where anyone could reach it. Needs
//!    CAP_SYS_ADMIN. Only such a detached overlay counts as protected, not any read-only one.
//!    Unlike a copy, it does not keep the host from rewriting the real binary in place under
//!    a running hull (no ETXTBSY through the overlay): install hull by rename, as packages do.
//! 2. **Sealed memfd**: a copy in memory whose seals refuse writes, resizes and new seals,
//!    always. Refused where `vm.memfd_noexec` is 2.
//! 3. **O_TMPFILE copy**: an unnamed file (O_EXCL: it can never be linked), mode 0500,
//!    reopened read-only and its writable descriptor closed before the exec. The kernel
//!    refuses write opens of a file some process is running (ETXTBSY); the re-executed
//!    process checks that it does (Linux 6.11 and 6.12 did not for a while) unless the copy
//!    is immutable. A handle that outlives every such process could then write to the
//!    copy, which nothing can run again; on tmpfs, with CAP_LINUX_IMMUTABLE, the copy is
//!    made immutable as well.
//!
//! The re-executed process checks that it runs from one of these, the very file its parent
//! made (named by device and inode in the marker; any sealed memfd will do); if it does not,
//! it fails instead of re-executing again.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use hull_sys::fs::FS_IMMUTABLE_FL;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};

/// The seals of a memfd copy: no write, no resize, and no way to lift them.
const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Set for the re-executed process only, and removed from the environment as soon as it
/// reads it: `<pid>.<start time>:<protection code><comm>`. The pid and start time (execve
/// keeps both) make a marker that came from any other process count for nothing.
const MARKER: &str = "_HULL_SEALED_REEXEC";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("protect the runtime binary (CVE-2019-5736): {step}: {errno}")]
    Step { step: &'static str, errno: Errno },
    /// No way worked; one reason per way tried, in order.
    #[error("protect the runtime binary (CVE-2019-5736): no protected copy to run: {}", .0.join("; "))]
    NoProtection(Vec<String>),
    #[error(
        "protect the runtime binary (CVE-2019-5736): re-executed from a {via}, but \
         /proc/self/exe ({exe}) is still not protected; not re-executing again"
    )]
    StillExposed { via: &'static str, exe: String },
}

/// The ways to run the binary out of a container's reach, in the order [`ensure`] tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protection {
    Overlay,
    Memfd,
    Tmpfile,
}

impl Protection {
    const ALL: [Protection; 3] = [Self::Overlay, Self::Memfd, Self::Tmpfile];

    fn name(self) -> &'static str {
        match self {
            Self::Overlay => "read-only overlay",
            Self::Memfd => "sealed memfd",
            Self::Tmpfile => "O_TMPFILE copy",
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Overlay => b'o',
            Self::Memfd => b'm',
            Self::Tmpfile => b't',
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// Returns when this process runs from a protected binary; otherwise re-executes itself
/// from one (then it does not return). Call it first thing in `main`, before any thread
/// starts: it edits the environment.
pub fn ensure() -> Result<(), SealError> {
    ensure_with(&Protection::ALL)
}

fn ensure_with(order: &[Protection]) -> Result<(), SealError> {
    let marker = take_marker();
    let exe = File::open("/proc/self/exe").map_err(|e| SealError::Step {
        step: "open /proc/self/exe",
        errno: io_errno(&e),
    })?;
    // A sealed memfd is safe whoever made it. The other ways are recognised by properties
    // that other files can share (a deleted file, an overlay mounted outside our root), so
    // they count only as the very file our parent made, named in the marker.
    let found = protection(&exe);
    let made_by_us =
        |m: &Marker| found.is_some() && m.via == found && Some(m.file) == file_id(&exe);
    if found == Some(Protection::Memfd) || marker.as_ref().is_some_and(made_by_us) {
        if let Some(marker) = &marker {
            set_comm(&marker.comm);
        }
        return Ok(());
    }
    if let Some(marker) = marker {
        return Err(SealError::StillExposed {
            via: marker.via.map_or("protected copy", Protection::name),
            exe: std::fs::read_link("/proc/self/exe")
                .map_or_else(|e| format!("unreadable: {e}"), |p| p.display().to_string()),
        });
    }
    let exec = Exec::new()?;
    let mut failures = Vec::new();
    for &via in order {
        let failure = match make(via, &exe) {
            Ok(fd) => exec.run(&fd, via),
            Err(e) => e,
        };
        failures.push(format!("{}: {failure}", via.name()));
    }
    Err(SealError::NoProtection(failures))
}

/// How `file` is protected, if it is one of the files [`make`] makes.
fn protection(file: &File) -> Option<Protection> {
    if is_sealed(file) {
        Some(Protection::Memfd)
    } else if is_private_tmpfile(file) {
        Some(Protection::Tmpfile)
    } else if is_detached_read_only_overlay(file) {
        Some(Protection::Overlay)
    } else {
        None
    }
}

/// A protected file with the running binary's content; the failed step if it cannot.
fn make(via: Protection, exe: &File) -> Result<OwnedFd, String> {
    match via {
        Protection::Overlay => overlay_view(exe),
        Protection::Memfd => sealed_copy(exe),
        Protection::Tmpfile => tmpfile_copy(exe),
    }
}

fn step(what: impl std::fmt::Display) -> impl FnOnce(Errno) -> String {
    move |errno| format!("{what}: {errno}")
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

// --- 1. read-only overlay ------------------------------------------------------------------

/// Whether `file` lies on a read-only overlayfs whose mount is attached nowhere in this
/// mount namespace, as [`overlay_view`] makes. An attached one (an admin's read-only image,
/// say) could be remounted read-write by whoever sees it, so it does not count.
fn is_detached_read_only_overlay(file: &File) -> bool {
    let on_overlay = nix::sys::statfs::fstatfs(file)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
    on_overlay
        && fstatvfs(file).is_ok_and(|v| v.flags().contains(FsFlags::ST_RDONLY))
        && mount_id(file).is_some_and(|id| !mounted_here(id))
}

/// The id of the mount `file` was opened through, from `/proc/self/fdinfo`.
fn mount_id(file: &File) -> Option<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd())).ok()?;
    let value = info.lines().find_map(|l| l.strip_prefix("mnt_id:"))?;
    value.trim().parse().ok()
}

/// Whether mount `id` appears in this process's mountinfo; true when that cannot be read,
/// so that doubt means "not protected".
fn mounted_here(id: u64) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    info.lines()
        .any(|l| l.split(' ').next().and_then(|f| f.parse::<u64>().ok()) == Some(id))
}

/// The running binary seen through a read-only overlayfs of its directory, mounted nowhere.
fn overlay_view(exe: &File) -> Result<OwnedFd, String> {
    let path = std::fs::read_link("/proc/self/exe")
        .map_err(|e| step("read /proc/self/exe")(io_errno(&e)))?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(step(format!("split {}", path.display()))(Errno::EINVAL));
    };
    let mnt = overlay_of(dir)?;
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let view = hull_sys::fd::openat(mnt.as_fd(), name, flags, Mode::empty())
        .map_err(step(format!("open {} in the overlay", path.display())))?;
    // The path may name another file by now (an upgrade renamed a new binary over it):
    // run only the very file this process runs.
    if !same_file(exe, &view) {
        return Err(step(format!(
            "{} is no longer the running binary",
            path.display()
        ))(Errno::ESTALE));
    }
    Ok(view)
}

/// A read-only overlayfs mount of `dir`, attached nowhere.
///
/// overlayfs wants two layers when it has no upper one, and refuses a layer twice or layers
/// that overlap: the second is an empty tmpfs, itself attached nowhere. Kernels before 6.15
/// (Debian 12's 6.1, every distribution kernel of today) refuse a detached layer ("failed to
/// clone lowerpath", logged by the kernel each time), so there the second layer is /dev, a
/// mount of this namespace: its entries never shadow the binary (the first layer wins a
/// lookup, and `overlay_view` opens only the file that is the running binary), and the overlay
/// is nodev. Only a binary on devtmpfs itself, or in a `/` that holds /dev, overlaps it; the
/// other layer is tried next, then the next way.
fn overlay_of(dir: &Path) -> Result<OwnedFd, String> {
    type Way = fn(&Path) -> Result<OwnedFd, String>;
    let (first, second, second_name): (Way, Way, &str) = if detached_layers_allowed() {
        (overlay_over_empty, overlay_over_dev, "/dev")
    } else {
        (
            overlay_over_dev,
            overlay_over_empty,
            "an empty detached tmpfs",
        )
    };
    first(dir).or_else(|e| {
        second(dir).map_err(|e2| format!("{e}; with {second_name} as the second layer: {e2}"))
    })
}

/// `dir` over an empty tmpfs attached nowhere (made only when tried).
fn overlay_over_empty(dir: &Path) -> Result<OwnedFd, String> {
    use hull_sys::mount::{fsconfig_create, fsmount, fsopen};
    use std::os::fd::AsFd;
    let empty = fsopen("tmpfs").map_err(step("fsopen tmpfs"))?;
    fsconfig_create(empty.as_fd()).map_err(step("create the empty layer"))?;
    let empty =
        fsmount(empty.as_fd(), libc::MOUNT_ATTR_RDONLY).map_err(step("fsmount the empty layer"))?;
    overlay_with(dir, &format!("/proc/self/fd/{}", empty.as_raw_fd()))
}

fn overlay_over_dev(dir: &Path) -> Result<OwnedFd, String> {
    overlay_with(dir, "/dev")
}

/// Whether this kernel (6.15 or later) takes a layer attached nowhere.
fn detached_layers_allowed() -> bool {
    let Ok(uts) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = uts.release().to_string_lossy();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (6, 15)
}

/// A read-only overlayfs mount of `dir` over the layer `second`, attached nowhere.
fn overlay_with(dir: &Path, second: &str) -> Result<OwnedFd, String> {
    use hull_sys::mount::{fsconfig_create, fsconfig_set, fsmount, fsopen};
    use std::os::fd::AsFd;
    let dir = dir
        .to_str()
        .ok_or_else(|| step(format!("{} is not UTF-8", dir.display()))(Errno::EINVAL))?;
    let escaped = dir.replace('\\', "\\\\").replace(':', "\\:");
    let fs = fsopen("overlay").map_err(step("fsopen overlay"))?;
    let layers = format!("{escaped}:{second}");
    fsconfig_set(fs.as_fd(), "lowerdir", Some(&layers))
        .map_err(step(format!("overlay lowerdir {dir}")))?;
    // Inode numbers as the lower layer has them (`same_file` compares them); nothing to gain
    // from xino here.
    let _ = fsconfig_set(fs.as_fd(), "xino", Some("off"));
    fsconfig_create(fs.as_fd()).map_err(step(format!("create an overlay of {dir}")))?;
    fsmount(
        fs.as_fd(),
        libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID,
    )
    .map_err(step("fsmount the overlay"))
}

/// Same inode number (overlayfs with xino off shows the lower one), size, and times.
fn same_file(a: &File, b: &OwnedFd) -> bool {
    use nix::sys::stat::fstat;
    let (Ok(a), Ok(b)) = (fstat(a.as_raw_fd()), fstat(b.as_raw_fd())) else {
        return false;
    };
    let key = |s: &libc::stat| {
        (
            s.st_ino,
            s.st_size,
            s.st_mtime,
            s.st_mtime_nsec,
            s.st_ctime,
            s.st_ctime_nsec,
        )
    };
    key(&a) == key(&b)
}

// --- 2. sealed memfd -----------------------------------------------------------------------

/// Whether `file` is a memfd carrying our seals (a plain file has none: F_GET_SEALS fails).
fn is_sealed(file: &File) -> bool {
    nix::fcntl::fcntl(file.as_raw_fd(), FcntlArg::F_GET_SEALS)
        .is_ok_and(|seals| seals & SEALS.bits() == SEALS.bits())
}

fn sealed_copy(exe: &File) -> Result<OwnedFd, String> {
    let name = c"hull";
    // MFD_EXEC (Linux 6.3+) keeps the copy executable where vm.memfd_noexec = 1 makes
    // memfds noexec by default; older kernels refuse the flag and make them executable.
    // With vm.memfd_noexec = 2 it fails with EACCES, and a noexec memfd would be no use.
    let flags = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    let exec = MemFdCreateFlag::from_bits_retain(libc::MFD_EXEC);
    let memfd = memfd_create(name, flags | exec)
        .or_else(|e| match e {
            Errno::EINVAL => memfd_create(name, flags),
            e => Err(e),
        })
        .map_err(step("memfd_create"))?;
    copy_all(exe, &memfd).map_err(step("copy the binary"))?;
    nix::fcntl::fcntl(memfd.as_raw_fd(), FcntlArg::F_ADD_SEALS(SEALS))
        .map_err(step("seal the copy"))?;
    Ok(memfd)
}

// --- 3. O_TMPFILE copy ---------------------------------------------------------------------

/// Whether `file` is an unnamed regular file nobody may write by its mode, as
/// [`tmpfile_copy`] makes: with no name it is reachable only through handles, and while this
/// process runs it, the kernel refuses to open it for writing.
fn is_private_tmpfile(file: &File) -> bool {
    nix::sys::stat::fstat(file.as_raw_fd()).is_ok_and(|s| {
        s.st_mode & libc::S_IFMT == libc::S_IFREG && s.st_nlink == 0 && s.st_mode & 0o7222 == 0
    }) && (is_immutable(file) || refuses_write_opens(file))
}

fn is_immutable(file: &File) -> bool {
    hull_sys::fs::inode_flags(file.as_fd()).is_ok_and(|f| f & FS_IMMUTABLE_FL != 0)
}

/// Whether opening `file` (which some process runs) for writing fails with ETXTBSY, as it
/// must for the copy to be safe: Linux 6.11 and 6.12 dropped that refusal for a while. The
/// mode is opened up for the probe, so that it is the kernel's refusal we see and not the
/// mode's; nothing in a container can reach the file yet.
fn refuses_write_opens(file: &File) -> bool {
    let fd = file.as_raw_fd();
    let Ok(st) = nix::sys::stat::fstat(fd) else {
        return false;
    };
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    if nix::sys::stat::fchmod(fd, mode | Mode::S_IWUSR).is_err() {
        return false;
    }
    let opened = nix::fcntl::open(
        format!("/proc/self/fd/{fd}").as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let refused = match opened {
        Err(e) => e == Errno::ETXTBSY,
        Ok(w) => {
            let _ = nix::unistd::close(w);
            false
        }
    };
    nix::sys::stat::fchmod(fd, mode).is_ok() && refused
}

/// Where the copy may go, best first. `/run` (root's, usually tmpfs), `$XDG_RUNTIME_DIR`
/// (the rootless caller's, tmpfs), `/dev/shm` and `/tmp` (world-writable, harmless for a
/// file that never has a name), and last the binary's own directory: surely on a mount that
/// allows exec, but usually on disk and often not writable. Those on tmpfs go first, so
/// that nothing reaches a disk and the copy vanishes with its last user; [`tmpfile_in`]
/// skips noexec mounts.
fn tmpfile_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/run")];
    dirs.extend(
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute()),
    );
    dirs.extend(["/dev/shm", "/tmp"].map(PathBuf::from));
    if let Ok(exe) = std::fs::read_link("/proc/self/exe") {
        dirs.extend(exe.parent().map(Path::to_path_buf));
    }
    let mut seen = Vec::new();
    dirs.retain(|d| {
        let new = !seen.contains(d);
        seen.push(d.clone());
        new
    });
    let on_tmpfs = |d: &PathBuf| {
        nix::sys::statfs::statfs(d.as_path())
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
    };
    // A stable sort: tmpfs first, each group in the order above.
    dirs.sort_by_key(|d| !on_tmpfs(d));
    dirs
}

fn tmpfile_copy(exe: &File) -> Result<OwnedFd, String> {
    let mut failures = Vec::new();
    for dir in tmpfile_dirs() {
        match tmpfile_in(&dir, exe) {
            Ok(fd) => return Ok(fd),
            Err(e) => failures.push(format!("in {}: {e}", dir.display())),
        }
    }
    Err(failures.join(", "))
}

fn tmpfile_in(dir: &Path, exe: &File) -> Result<OwnedFd, String> {
    let flags = OFlag::O_TMPFILE | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    let writable = hull_sys::fd::open(dir, flags, Mode::S_IRWXU).map_err(step("open O_TMPFILE"))?;
    if fstatvfs(&writable).is_ok_and(|v| v.flags().contains(FsFlags::ST_NOEXEC)) {
        return Err(step("mounted noexec")(Errno::EACCES));
    }
    copy_all(exe, &writable).map_err(step("copy the binary"))?;
    nix::sys::stat::fchmod(writable.as_raw_fd(), Mode::S_IRUSR | Mode::S_IXUSR)
        .map_err(step("chmod 0500"))?;
    make_immutable(&writable);
    let path = format!("/proc/self/fd/{}", writable.as_raw_fd());
    let read_only = hull_sys::fd::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(step("reopen read-only"))?;
    // A writer left open would make the exec fail with ETXTBSY, and could write later.
    drop(writable);
    Ok(read_only)
}

/// Best effort, on tmpfs only (nothing of it can outlive a crash there): the immutable flag
/// also refuses writes once no process runs the copy. Needs CAP_LINUX_IMMUTABLE.
fn make_immutable(file: &OwnedFd) {
    let on_tmpfs = nix::sys::statfs::fstatfs(file)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
    if !on_tmpfs {
        return;
    }
    if let Ok(flags) = hull_sys::fs::inode_flags(file.as_fd()) {
        let _ = hull_sys::fs::set_inode_flags(file.as_fd(), flags | FS_IMMUTABLE_FL);
    }
}

// --- copying and re-executing ---------------------------------------------------------------

/// Copies all of `from` into `to` in the kernel, from offset 0 whatever `from`'s position.
fn copy_all(from: &File, to: &OwnedFd) -> Result<(), Errno> {
    let size = nix::sys::stat::fstat(from.as_raw_fd())?.st_size;
    let mut offset: libc::off_t = 0;
    while offset < size {
        let chunk = (size - offset).min(1 << 30) as usize;
        match nix::sys::sendfile::sendfile(to, from, Some(&mut offset), chunk) {
            Ok(0) => return Err(Errno::EIO),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What the re-executed process gets: this one's argv and environment (minus any stale
/// marker), a fresh marker, and its descriptors, which execve keeps except the close-on-exec
/// ones (every descriptor this module opens is). So preserved fds, `LISTEN_FDS` (whose
/// `LISTEN_PID` stays right: execve keeps the pid) and the console socket pass unchanged.
struct Exec {
    argv: Vec<CString>,
    env: Vec<CString>,
    /// This process's [`identity`], the start of the marker.
    identity: String,
    /// The name the kernel gave this process from the path it was run by.
    comm: Vec<u8>,
}

impl Exec {
    fn new() -> Result<Self, SealError> {
        let nul = |_| SealError::Step {
            step: "argv holds a NUL byte",
            errno: Errno::EINVAL,
        };
        let argv = std::env::args_os()
            .map(|a| CString::new(a.into_vec()).map_err(nul))
            .collect::<Result<_, _>>()?;
        // The environment exactly as this process got it, entries without `=` included.
        let raw = std::fs::read("/proc/self/environ").map_err(|e| SealError::Step {
            step: "read /proc/self/environ",
            errno: io_errno(&e),
        })?;
        let stale = format!("{MARKER}=");
        let env = raw
            .split(|b| *b == 0)
            .filter(|e| !e.is_empty() && !e.starts_with(stale.as_bytes()))
            // No NUL inside: the split removed them all.
            .filter_map(|e| CString::new(e).ok())
            .collect();
        Ok(Self {
            argv,
            env,
            identity: identity().ok_or(SealError::Step {
                step: "read /proc/self/stat",
                errno: Errno::EIO,
            })?,
            comm: comm(),
        })
    }

    /// execveat(fd, "", argv, env, AT_EMPTY_PATH); returns only on failure, with why.
    fn run(&self, fd: &OwnedFd, via: Protection) -> String {
        let Some((dev, ino)) = file_id(fd) else {
            return step("fstat the copy")(Errno::last());
        };
        let mut marker = format!("{MARKER}={}:{dev}.{ino}:", self.identity).into_bytes();
        marker.push(via.code());
        marker.extend_from_slice(&self.comm);
        let Ok(marker) = CString::new(marker) else {
            return step("marker")(Errno::EINVAL);
        };
        let mut env: Vec<&std::ffi::CStr> = self.env.iter().map(|e| e.as_c_str()).collect();
        env.push(&marker);
        let Err(e) = nix::unistd::execveat(
            Some(fd.as_raw_fd()),
            c"",
            &self.argv,
            &env,
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        );
        step("re-execute")(e)
    }
}

struct Marker {
    via: Option<Protection>,
    /// Device and inode of the file the parent made.
    file: (u64, u64),
    comm: Vec<u8>,
}

fn file_id(file: &impl AsRawFd) -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(file.as_raw_fd()).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Reads and removes the marker; `None` unless this very process set it before its exec.
fn take_marker() -> Option<Marker> {
    let value = std::env::var_os(MARKER)?;
    std::env::remove_var(MARKER);
    let value = value.as_bytes();
    let colon = value.iter().position(|b| *b == b':')?;
    if value[..colon] != *identity()?.as_bytes() {
        return None;
    }
    let rest = &value[colon + 1..];
    let colon = rest.iter().position(|b| *b == b':')?;
    let (dev, ino) = std::str::from_utf8(&rest[..colon]).ok()?.split_once('.')?;
    let rest = &rest[colon + 1..];
    Some(Marker {
        via: rest.first().copied().and_then(Protection::from_code),
        file: (dev.parse().ok()?, ino.parse().ok()?),
        comm: rest.get(1..).unwrap_or_default().to_vec(),
    })
}

/// `<pid>.<start time>`: what identifies this process across its execs and no other.
fn identity() -> Option<String> {
    let stat = std::fs::read("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold any byte; the
    // start time is field 22, the 20th after the name.
    let after_name = &stat[stat.iter().rposition(|b| *b == b')')? + 1..];
    let start = after_name
        .split(|b| *b == b' ')
        .filter(|f| !f.is_empty())
        .nth(19)?;
    let start: u64 = std::str::from_utf8(start).ok()?.parse().ok()?;
    Some(format!("{}.{start}", std::process::id()))
}

/// The process's name (its thread-group leader's, whichever thread asks).
fn comm() -> Vec<u8> {
    let mut name = std::fs::read("/proc/self/comm").unwrap_or_default();
    if name.last() == Some(&b'\n') {
        name.pop();
    }
    name
}

/// Gives the process back the name it had before the re-exec (`ps`, `pidof`, `pgrep -x`):
/// after an exec through a descriptor the kernel names it after the memfd or the fd.
fn set_comm(comm: &[u8]) {
    if !comm.is_empty() {
        // The kernel keeps the first 15 bytes.
        let _ = std::fs::write("/proc/self/comm", comm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Tells [`child`] what to do in a child process of the test binary.
    const CHILD: &str = "HULL_SEALED_TEST_CHILD";

    fn exe() -> File {
        File::open("/proc/self/exe").unwrap()
    }

    fn errno_of(e: &std::io::Error) -> Option<i32> {
        e.raw_os_error()
    }

    /// The ways this machine can test: the overlay needs CAP_SYS_ADMIN.
    fn testable() -> Vec<Protection> {
        Protection::ALL
            .into_iter()
            .filter(|p| *p != Protection::Overlay || hull_testing::is_root())
            .collect()
    }

    #[test]
    fn each_way_makes_a_recognised_copy_of_the_binary() {
        let want = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(protection(&exe()), None, "the test binary is a plain file");
        for via in testable() {
            let fd = make(via, &exe()).unwrap_or_else(|e| panic!("{}: {e}", via.name()));
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let file = File::open(&path).unwrap();
            assert_eq!(protection(&file), Some(via), "{}", via.name());
            assert!(
                std::fs::read(&path).unwrap() == want,
                "{} differs",
                via.name()
            );
        }
    }

    #[test]
    fn a_sealed_copy_refuses_writes_resizes_and_new_seals() {
        let mut copy = File::from(sealed_copy(&exe()).unwrap());
        let err = copy.write_all(b"pwned").unwrap_err();
        assert_eq!(errno_of(&err), Some(libc::EPERM));
        assert_eq!(errno_of(&copy.set_len(1).unwrap_err()), Some(libc::EPERM));
        // Reopened through /proc, as an attacker holding the fd would: no write either.
        let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
        if let Ok(mut reopened) = std::fs::OpenOptions::new().write(true).open(&path) {
            let err = reopened.write_all(b"pwned").unwrap_err();
            assert_eq!(errno_of(&err), Some(libc::EPERM), "{path}");
        }
        // SAFETY: F_ADD_SEALS on our own fd; it must fail because F_SEAL_SEAL is set.
        let r = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_EXEC) };
        assert_eq!(r, -1);
    }

    #[test]
    fn the_overlay_view_is_read_only() {
        hull_testing::skip_unless_root!();
        let view = overlay_view(&exe()).unwrap();
        let path = format!("/proc/self/fd/{}", view.as_raw_fd());
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_err();
        assert_eq!(errno_of(&err), Some(libc::EROFS), "{path}");
    }

    /// The second layer older kernels get: the view is still the running binary, read-only,
    /// and recognised as protected.
    #[test]
    fn the_overlay_over_dev_is_a_read_only_view_of_the_binary() {
        hull_testing::skip_unless_root!();
        let path = std::fs::read_link("/proc/self/exe").unwrap();
        let mnt = overlay_with(path.parent().unwrap(), "/dev").unwrap();
        let name = path.file_name().unwrap();
        let view = File::open(Path::new(&format!("/proc/self/fd/{}", mnt.as_raw_fd())).join(name))
            .unwrap();
        assert_eq!(protection(&view), Some(Protection::Overlay));
        assert!(same_file(&exe(), &OwnedFd::from(view.try_clone().unwrap())));
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", view.as_raw_fd()))
            .unwrap_err();
        assert_eq!(errno_of(&err), Some(libc::EROFS));
    }

    #[test]
    fn a_tmpfile_copy_has_no_name_and_cannot_get_one() {
        // One directory on tmpfs, one (here) on disk.
        for dir in ["/dev/shm", "/tmp"].map(Path::new) {
            let copy = tmpfile_in(dir, &exe()).unwrap();
            let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
            let st = nix::sys::stat::fstat(copy.as_raw_fd()).unwrap();
            assert_eq!((st.st_nlink, st.st_mode & 0o7777), (0, 0o500), "{dir:?}");
            // O_EXCL: linkat refuses to give it a name in its own file system, even to root.
            let name = dir.join(format!("hull-sealed-link-{}", std::process::id()));
            let linked = nix::unistd::linkat(
                None,
                path.as_str(),
                None,
                name.to_str().unwrap(),
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            );
            if linked.is_ok() {
                let _ = std::fs::remove_file(&name);
            }
            // ENOENT for O_EXCL; EPERM first where the copy is immutable too.
            assert!(
                matches!(linked, Err(Errno::ENOENT | Errno::EPERM)),
                "{dir:?}: {linked:?}"
            );
            // The descriptor we keep is read-only.
            let flags = nix::fcntl::fcntl(copy.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
            assert_eq!(flags & libc::O_ACCMODE, libc::O_RDONLY, "{dir:?}");
        }
    }

    #[test]
    fn tmpfile_places_on_tmpfs_come_first() {
        let dirs = tmpfile_dirs();
        let on_tmpfs: Vec<bool> = dirs
            .iter()
            .map(|d| {
                nix::sys::statfs::statfs(d.as_path())
                    .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
            })
            .collect();
        assert!(
            on_tmpfs.windows(2).all(|w| w[0] >= w[1]),
            "{dirs:?} {on_tmpfs:?}"
        );
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert!(
            dirs.contains(&exe.parent().unwrap().to_path_buf()),
            "{dirs:?}"
        );
    }

    /// A copy that is not immutable counts only while the kernel refuses to open it for
    /// writing, which it does only while something runs it.
    #[test]
    fn a_mutable_tmpfile_copy_counts_only_while_writes_are_refused() {
        let exe_dir = std::fs::read_link("/proc/self/exe").unwrap();
        let dir = exe_dir.parent().unwrap();
        if nix::sys::statfs::statfs(dir)
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        {
            hull_testing::skip(
                "disk-tmp",
                "the test binary's directory is on tmpfs (the copy is immutable)",
            );
            return;
        }
        let copy = tmpfile_in(dir, &exe()).unwrap();
        let view = File::from(copy);
        assert!(!is_immutable(&view));
        assert!(!is_private_tmpfile(&view), "an idle mutable copy counted");
        let mode = nix::sys::stat::fstat(view.as_raw_fd()).unwrap().st_mode & 0o7777;
        assert_eq!(mode, 0o500, "the probe left the mode changed");
        let mut child = run_blocked(&view);
        // Until the child has exec'd, the copy is not yet running.
        let running = wait_for(|| is_private_tmpfile(&view));
        drop(child.stdin.take());
        child.wait().unwrap();
        assert!(running, "a running copy did not count");
    }

    /// The test binary run from `file`, blocked until its stdin closes.
    fn run_blocked(file: &impl AsRawFd) -> std::process::Child {
        Command::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .args(CHILD_ARGS)
            .env(CHILD, "block")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_tmpfile_copy_on_tmpfs_is_immutable_for_root() {
        hull_testing::skip_unless_root!();
        let copy = tmpfile_in(Path::new("/dev/shm"), &exe()).unwrap();
        let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_err();
        assert_eq!(errno_of(&err), Some(libc::EPERM), "{path}");
    }

    /// A directory of the test's own, removed (unmounting what is left on it) when dropped.
    struct TempDir(PathBuf);

    fn tempdir(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hull-sealed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0.join("mnt"), nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The same overlay, once attached somewhere, is no longer trusted: the tightening of
    /// "any read-only overlay" to "a read-only overlay mounted nowhere".
    #[test]
    fn an_attached_read_only_overlay_does_not_count() {
        use hull_sys::mount::move_mount;
        use std::os::fd::AsFd;
        hull_testing::skip_unless_root!();
        let path = std::fs::read_link("/proc/self/exe").unwrap();
        let mnt = overlay_of(path.parent().unwrap()).unwrap();
        let name = path.file_name().unwrap();
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let file =
            File::from(hull_sys::fd::openat(mnt.as_fd(), name, flags, Mode::empty()).unwrap());
        let id = mount_id(&file).unwrap();
        assert!(
            !mounted_here(id),
            "a fsmount()ed mount is listed in mountinfo"
        );
        assert_eq!(protection(&file), Some(Protection::Overlay));

        // Attach that very mount (no clone): same id, now listed, and no longer trusted.
        let dir = tempdir("attached");
        let target = dir.0.join("mnt");
        std::fs::create_dir(&target).unwrap();
        move_mount(mnt.as_fd(), File::open(&target).unwrap().as_fd()).unwrap();
        assert!(
            mounted_here(id),
            "an attached mount is missing from mountinfo"
        );
        assert_eq!(protection(&file), None);
        let through = File::open(target.join(name)).unwrap();
        assert_eq!(protection(&through), None);
    }

    // --- in child processes: the real exec ---------------------------------------------

    /// argv that makes the test binary run only [`child`].
    const CHILD_ARGS: [&str; 5] = [
        "--exact",
        "process::sealed::tests::child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ];

    /// The child side of the tests below; does nothing when run on its own.
    #[test]
    #[ignore = "run by the other tests in a child process"]
    fn child() {
        let Some(what) = std::env::var_os(CHILD) else {
            return;
        };
        let what = what.to_string_lossy().into_owned();
        if what == "block" {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            return;
        }
        if what == "loop" {
            let ours = identity().unwrap();
            let marker = std::env::var_os(MARKER).unwrap_or_default();
            if !marker.as_bytes().starts_with(ours.as_bytes()) {
                // Re-execute from the plain binary, as a protection the check misses would.
                let why = Exec::new()
                    .unwrap()
                    .run(&OwnedFd::from(exe()), Protection::Memfd);
                println!("sealed-report:error=the first exec failed: {why}");
            } else {
                let result = ensure();
                println!(
                    "sealed-report:error={}",
                    result.err().map(|e| e.to_string()).unwrap_or_default()
                );
            }
            return;
        }
        let order: Vec<Protection> = what
            .strip_prefix("ensure:")
            .unwrap()
            .bytes()
            .map(|c| Protection::from_code(c).unwrap())
            .collect();
        // Probe memfd_noexec once per run (both runs report; the parent reads the last).
        let probe = memfd_create(
            c"probe",
            MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::from_bits_retain(libc::MFD_EXEC),
        )
        .map_or_else(|e| format!("{e:?}"), |_| "ok".into());
        // Printed by both runs: the first before its re-exec, the second before its check.
        println!("sealed-report:fds={}", open_fds());
        if let Err(e) = ensure_with(&order) {
            println!("sealed-report:error={e}");
            return;
        }
        let report = |k: &str, v: String| println!("sealed-report:{k}={v}");
        let me = exe();
        report(
            "via",
            protection(&me).map_or("none", Protection::name).into(),
        );
        report(
            "listed",
            mount_id(&me).is_some_and(mounted_here).to_string(),
        );
        let (dev, ino) = file_id(&me).unwrap();
        report("file", format!("{dev}.{ino}"));
        drop(me);
        let link = std::fs::read_link("/proc/self/exe").unwrap();
        report("exe", link.display().to_string());
        report("comm", String::from_utf8_lossy(&comm()).into_owned());
        report("marker", std::env::var_os(MARKER).is_some().to_string());
        report("pid", std::process::id().to_string());
        report(
            "argv",
            format!("{:?}", std::env::args_os().skip(1).collect::<Vec<_>>()),
        );
        report(
            "keep",
            format!("{:?}", std::env::var_os("HULL_SEALED_TEST_KEEP")),
        );
        report("memfd_exec", probe);
        report("fds", open_fds());
        // SAFETY: fd 7 was listed just now and is not closed while borrowed.
        let seven = unsafe { std::os::fd::BorrowedFd::borrow_raw(7) };
        report(
            "fd7",
            format!("{:?}", nix::unistd::write(seven, b"through fd 7")),
        );
    }

    /// This process's open descriptors with what they are, but for the one listing them.
    fn open_fds() -> String {
        // The pid as this /proc shows it (not getpid() in a pid namespace of its own).
        let own = Path::new("/proc")
            .join(std::fs::read_link("/proc/self").unwrap())
            .join("fd");
        let mut fds: Vec<(i32, PathBuf)> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| {
                Some((
                    e.file_name().to_str()?.parse().ok()?,
                    e.path().read_link().ok()?,
                ))
            })
            .filter(|(_, link)| *link != own)
            .collect();
        fds.sort_unstable();
        format!("{fds:?}")
    }

    struct ChildRun {
        pid: u32,
        report: Vec<(String, String)>,
        /// What the child wrote to the pipe it got as fd 7.
        fd7: String,
        output: String,
    }

    impl ChildRun {
        /// Every value reported for `key`, first to last.
        fn all(&self, key: &str) -> Vec<&str> {
            let found = self.report.iter().filter(|(k, _)| k == key);
            found.map(|(_, v)| v.as_str()).collect()
        }

        /// The descriptors the child had, the same before and after each re-exec.
        fn fds(&self) -> &str {
            let all = self.all("fds");
            assert!(
                all.len() >= 3,
                "fds reported {} times:\n{}",
                all.len(),
                self.output
            );
            assert!(
                all.iter().all(|f| *f == all[0]),
                "descriptors changed:\n{}",
                self.output
            );
            all[0]
        }

        fn get(&self, key: &str) -> &str {
            let found = self.report.iter().rev().find(|(k, _)| k == key);
            found.map_or_else(
                || panic!("no {key} in the child's report:\n{}", self.output),
                |(_, v)| v.as_str(),
            )
        }
    }

    /// Runs [`child`] as `what`, with a pipe as fd 7, under `wrapper` (a command that ends
    /// by running its arguments) if given; kills it after 30 s.
    fn run_child(what: &str, wrapper: &[&str]) -> ChildRun {
        run_child_of(&std::env::current_exe().unwrap(), what, wrapper)
    }

    /// [`run_child`] with the test binary run from `test_binary`.
    fn run_child_of(test_binary: &Path, what: &str, wrapper: &[&str]) -> ChildRun {
        let mut cmd = match wrapper.split_first() {
            None => Command::new(test_binary),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(test_binary);
                c
            }
        };
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let w_raw = w.as_raw_fd();
        let give_fd7 = move || {
            let ret = if w_raw == 7 {
                // dup2(7, 7) would leave it close-on-exec.
                // SAFETY: clears FD_CLOEXEC on fd 7, open in the child between fork and exec.
                unsafe { libc::fcntl(7, libc::F_SETFD, 0) }
            } else {
                // SAFETY: dup2 onto 7 in the child between fork and exec; w_raw is open there.
                unsafe { libc::dup2(w_raw, 7) }
            };
            match ret {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            }
        };
        cmd.args(CHILD_ARGS)
            .env(CHILD, what)
            .env("HULL_SEALED_TEST_KEEP", "a=b c")
            .env(MARKER, "1:mstale") // a foreign marker: must count for nothing
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the hook only calls dup2, which is async-signal-safe.
        unsafe { cmd.pre_exec(give_fd7) };
        let mut child = cmd.spawn().unwrap();
        drop(w);
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child {what} did not finish in 30 s (a re-exec loop?)");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().unwrap();
        let mut fd7 = String::new();
        File::from(r).read_to_string(&mut fd7).unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let output = format!(
            "{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = stdout
            .lines()
            .filter_map(|l| Some(&l[l.find("sealed-report:")? + "sealed-report:".len()..]))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ChildRun {
            pid,
            report,
            fd7,
            output,
        }
    }

    /// The comm the kernel gives a process run by the path of this test binary.
    fn expected_comm() -> String {
        let path = std::env::current_exe().unwrap();
        let base = path.file_name().unwrap().as_bytes();
        String::from_utf8_lossy(&base[..base.len().min(15)]).into_owned()
    }

    #[test]
    fn ensure_reexecutes_from_each_way_keeping_argv_env_fds_pid_and_name() {
        for via in testable() {
            let what = format!("ensure:{}", via.code() as char);
            let run = run_child(&what, &[]);
            let out = &run.output;
            assert_eq!(run.get("via"), via.name(), "{out}");
            assert_eq!(run.get("pid"), run.pid.to_string(), "{out}");
            assert_eq!(run.get("comm"), expected_comm(), "{out}");
            assert_eq!(
                run.get("marker"),
                "false",
                "the marker reached the program:\n{out}"
            );
            let argv = format!("{:?}", CHILD_ARGS.map(std::ffi::OsString::from));
            assert_eq!(run.get("argv"), argv, "{out}");
            assert_eq!(run.get("keep"), r#"Some("a=b c")"#, "{out}");
            // Nothing the re-exec opened leaked, none was lost, and fd 7 is still our pipe.
            assert!(run.fds().contains("(7, "), "{out}");
            assert_eq!(run.fd7, "through fd 7", "{out}");
            if via == Protection::Overlay {
                assert_eq!(run.get("listed"), "false", "{out}");
                let exe = std::fs::read_link("/proc/self/exe").unwrap();
                let name = exe.file_name().unwrap().to_str().unwrap();
                assert_eq!(run.get("exe"), format!("/{name}"), "{out}");
            }
        }
    }

    /// A file that looks protected but that no parent of ours made (here a tmpfile copy the
    /// test made and ran us from, without a marker) is replaced by a fresh copy; only a
    /// sealed memfd is taken as it is.
    #[test]
    fn only_the_copy_our_parent_made_counts() {
        for via in testable() {
            let made = make(via, &exe()).unwrap();
            // Above 7, which the child gets as its report pipe.
            let copy = hull_sys::fd::dup_cloexec_from(made.as_fd(), 100).unwrap();
            drop(made);
            let (dev, ino) = file_id(&copy).unwrap();
            let path = PathBuf::from(format!("/proc/self/fd/{}", copy.as_raw_fd()));
            // Every way: the overlay cannot be made from a binary that has no path.
            let all: String = Protection::ALL.iter().map(|p| p.code() as char).collect();
            let run = run_child_of(&path, &format!("ensure:{all}"), &[]);
            let out = &run.output;
            assert!(!run.report.iter().any(|(k, _)| k == "error"), "{out}");
            assert_ne!(run.get("via"), "none", "{out}");
            let reexecuted = run.get("file") != format!("{dev}.{ino}");
            assert_eq!(
                reexecuted,
                via != Protection::Memfd,
                "{}: {out}",
                via.name()
            );
        }
    }

    #[test]
    fn a_reexec_that_is_still_unprotected_fails_instead_of_looping() {
        let run = run_child("loop", &[]);
        let error = run.get("error");
        assert!(
            error.contains("re-executed from a sealed memfd")
                && error.contains("not re-executing again"),
            "{}",
            run.output
        );
    }

    /// Drops CAP_SYS_ADMIN for good before running its arguments.
    const WITHOUT_SYS_ADMIN: [&str; 4] = [
        "setpriv",
        "--inh-caps=-sys_admin",
        "--bounding-set=-sys_admin",
        "--",
    ];

    fn have(tool: &str) -> bool {
        Command::new(tool).arg("--version").output().is_ok()
    }

    /// The whole order, as `ensure()` runs it: the overlay needs CAP_SYS_ADMIN.
    #[test]
    fn without_cap_sys_admin_the_copy_is_a_sealed_memfd() {
        hull_testing::skip_unless_root!();
        hull_testing::skip_unless!(
            have("setpriv"),
            "tools",
            "drops CAP_SYS_ADMIN with setpriv(1)"
        );
        let run = run_child("ensure:omt", &WITHOUT_SYS_ADMIN);
        let out = &run.output;
        assert_eq!(run.get("via"), Protection::Memfd.name(), "{out}");
        assert_eq!(run.get("comm"), expected_comm(), "{out}");
        assert!(run.fds().contains("(7, "), "{out}");
        assert_eq!(run.fd7, "through fd 7", "{out}");
    }

    /// The whole order without CAP_SYS_ADMIN, and vm.memfd_noexec = 2 set in a new pid
    /// namespace of the child only (the sysctl is per pid namespace); the host's value is
    /// checked unchanged afterwards.
    #[test]
    fn with_memfd_noexec_2_the_copy_is_an_o_tmpfile() {
        const SYSCTL: &str = "/proc/sys/vm/memfd_noexec";
        hull_testing::skip_unless_root!();
        hull_testing::skip_unless!(
            have("unshare") && have("setpriv"),
            "tools",
            "sets the sysctl in a namespace of its own with unshare(1) and setpriv(1)"
        );
        hull_testing::skip_unless!(
            Path::new(SYSCTL).exists(),
            "memfd-noexec",
            "this kernel has no {SYSCTL} (Linux 6.3 added it): memfd exec is never refused"
        );
        let host = std::fs::read_to_string(SYSCTL).unwrap();
        // `$$` is 1 only in a new pid namespace: the write below never reaches the host's.
        let script = format!(
            r#"[ "$$" = 1 ] || exit 99
echo 2 >{SYSCTL} || exit 98
exec {} "$@""#,
            WITHOUT_SYS_ADMIN.join(" ")
        );
        let wrapper = [
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            &script,
            "sh",
        ];
        let run = run_child("ensure:omt", &wrapper);
        assert_eq!(
            std::fs::read_to_string(SYSCTL).unwrap(),
            host,
            "host sysctl changed"
        );
        let out = &run.output;
        assert_eq!(run.get("memfd_exec"), "EACCES", "{out}");
        assert_eq!(run.get("via"), Protection::Tmpfile.name(), "{out}");
        assert_eq!(run.get("comm"), expected_comm(), "{out}");
        assert!(run.fds().contains("(7, "), "{out}");
        assert_eq!(run.fd7, "through fd 7", "{out}");
    }

    /// What a container does with a process of the runtime's binary: open its
    /// `/proc/<pid>/exe`, then try to write to it, directly and by reopening the handle.
    #[test]
    fn a_running_copy_cannot_be_opened_for_writing() {
        let want = std::fs::read("/proc/self/exe").unwrap();
        for via in testable() {
            let view = make(via, &exe()).unwrap();
            let path = format!("/proc/self/fd/{}", view.as_raw_fd());
            let mut child = run_blocked(&view);
            let exe_link = format!("/proc/{}/exe", child.id());
            // Once seen under emulation (TCG): the link still named the test binary when
            // read right after spawn. Wait until it names the copy.
            let original = std::fs::read_link("/proc/self/exe").unwrap();
            wait_for(|| std::fs::read_link(&exe_link).is_ok_and(|l| l != original));
            let handle = File::open(&exe_link).unwrap();
            let seen = || {
                format!(
                    "{}: {exe_link} -> {:?}: fs {:?}, flags {:?}, mount {:?} mounted here {:?}",
                    via.name(),
                    std::fs::read_link(&exe_link),
                    nix::sys::statfs::fstatfs(&handle).map(|s| s.filesystem_type()),
                    fstatvfs(&handle).map(|v| v.flags()),
                    mount_id(&handle),
                    mount_id(&handle).map(mounted_here),
                )
            };
            assert_eq!(protection(&handle), Some(via), "{}", seen());
            let reopen = format!("/proc/self/fd/{}", handle.as_raw_fd());
            let mut outcomes = Vec::new();
            for target in [&exe_link, &reopen] {
                let opened = std::fs::OpenOptions::new().write(true).open(target);
                outcomes.push(match opened {
                    Err(e) => errno_of(&e),
                    Ok(mut f) => f.write_all(b"pwned").err().and_then(|e| errno_of(&e)),
                });
            }
            drop(child.stdin.take());
            child.wait().unwrap();
            let allowed = [libc::EROFS, libc::ETXTBSY, libc::EPERM];
            assert!(
                outcomes
                    .iter()
                    .all(|o| o.is_some_and(|e| allowed.contains(&e))),
                "{}: a write got through or failed oddly: {outcomes:?}",
                via.name()
            );
            assert!(
                std::fs::read(&path).unwrap() == want,
                "{} changed",
                via.name()
            );
        }
    }

    /// Not a check: prints what each way costs. Run with
    /// `cargo test -p libhull --release sealed::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement"]
    fn cost_of_each_way() {
        const N: u32 = 50;
        for via in testable() {
            let start = Instant::now();
            for _ in 0..N {
                drop(make(via, &exe()).unwrap());
            }
            let make_each = start.elapsed() / N;
            let start = Instant::now();
            for _ in 0..N {
                drop(File::open("/proc/self/exe").map(|f| protection(&f)));
            }
            let check_each = start.elapsed() / N;
            let size = std::fs::metadata("/proc/self/exe").unwrap().len() >> 20;
            println!(
                "{}: make {make_each:?}, check {check_each:?} ({size} MiB binary)",
                via.name()
            );
        }
    }
}
