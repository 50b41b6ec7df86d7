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
        crate::timing::mark("protected copy made");
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
    let (_, start) = hull_sys::proc::stat(std::process::id() as i32)?;
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
mod tests;
