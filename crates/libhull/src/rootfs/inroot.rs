//! Paths inside the rootfs, resolved by the kernel: openat2 with `RESOLVE_IN_ROOT` (every
//! symlink and `..` is resolved as if the rootfs were `/`, so nothing leads out of it) and
//! `RESOLVE_NO_MAGICLINKS` (no jumping through /proc/*/fd links). New inodes are made with
//! one `*at` call on a single final component, relative to a directory resolved that way.
//!
//! This is what libpathrs does on a kernel with openat2 (5.6; hull needs 5.12 for
//! mount_setattr anyway), without re-verifying its procfs handle on every call and without
//! building a path for every ENOENT, which made a busybox container's setup cost ~1500
//! syscalls. Every fd handed out is `O_PATH`.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// openat2 returns EAGAIN when a rename or mount raced with a `..` lookup; a few retries
/// are enough for anything but a deliberate, endless race.
const EAGAIN_RETRIES: usize = 32;

/// A directory fd that paths are resolved in, as if it were `/`.
#[derive(Debug)]
pub(super) struct InRoot {
    fd: OwnedFd,
}

impl InRoot {
    /// Opens the host directory `path` (its last component must not be a symlink).
    pub fn open(path: &Path) -> Result<Self, Errno> {
        let fd = hull_sys::fd::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(InRoot { fd })
    }

    /// openat2 in the root with `flags` (plus `O_CLOEXEC`).
    fn openat2(&self, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        in_root(self.fd.as_fd(), path, flags)
    }

    /// An `O_PATH` fd of `path`, following symlinks inside the root.
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd, Errno> {
        self.openat2(path, OFlag::O_PATH)
    }

    /// Like [`resolve`](Self::resolve), but a symlink in the last component is not
    /// followed: the fd is the symlink itself.
    pub fn resolve_nofollow(&self, path: &Path) -> Result<OwnedFd, Errno> {
        self.openat2(path, OFlag::O_PATH | OFlag::O_NOFOLLOW)
    }

    /// [`resolve`](Self::resolve), with `None` for a path that does not exist.
    pub fn lookup(&self, path: &Path) -> Result<Option<OwnedFd>, Errno> {
        match self.resolve(path) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_dir(&self, path: &Path) -> Result<OwnedFd, Errno> {
        self.openat2(path, OFlag::O_PATH | OFlag::O_DIRECTORY)
    }

    /// The directory `path` (symlinks followed inside the root), created with its missing
    /// parents. Missing components are made one at a time with mkdirat in the directory
    /// before them and opened without following a symlink, so one planted meanwhile is
    /// refused, never followed.
    pub fn mkdir_all(&self, path: &Path, mode: Mode) -> Result<OwnedFd, Errno> {
        match self.open_dir(path) {
            Err(Errno::ENOENT) => {}
            r => return r,
        }
        let parts: Vec<Component> = path
            .components()
            .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
            .collect();
        // The deepest directory that exists; "/" always does.
        let mut have = parts.len();
        let mut dir = loop {
            if have == 0 {
                break self.open_dir(Path::new("/"))?;
            }
            have -= 1;
            let prefix: PathBuf = std::iter::once(Component::RootDir)
                .chain(parts[..have].iter().copied())
                .collect();
            match self.open_dir(&prefix) {
                Ok(fd) => break fd,
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        };
        for part in &parts[have..] {
            // `..` after a missing directory has nothing sensible to mean.
            let Component::Normal(name) = part else {
                return Err(Errno::EINVAL);
            };
            match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), *name, mode) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            dir = child(dir.as_fd(), name, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        }
        Ok(dir)
    }

    /// The directory holding `path` (resolved inside the root) and the last component.
    fn parent<'p>(&self, path: &'p Path) -> Result<(OwnedFd, &'p OsStr), Errno> {
        let name = match path.components().next_back() {
            Some(Component::Normal(name)) => name,
            // "/", or a path ending in `..`: nothing to create.
            _ => return Err(Errno::EINVAL),
        };
        let dir = self.open_dir(path.parent().unwrap_or(Path::new("/")))?;
        Ok((dir, name))
    }

    /// A new empty file at `path` (`O_EXCL`: never an existing one, never through a
    /// symlink); its parent must exist.
    pub fn create_file(&self, path: &Path, mode: Mode) -> Result<OwnedFd, Errno> {
        let (dir, name) = self.parent(path)?;
        let flags =
            OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        hull_sys::fd::openat(dir.as_fd(), name, flags, mode)
    }
}

impl AsFd for InRoot {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// openat2 of `path` inside `root` (which acts as `/`), retried on EAGAIN.
fn in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let how = || {
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let mut tries = 0;
    loop {
        match hull_sys::fd::openat2(Some(root), path, how()) {
            Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            r => return r,
        }
    }
}

/// The entry `name` of `dir`, which must not be a symlink (nor `..`, nor a mount crossing
/// out of `dir`'s tree), opened with `flags` (plus `O_CLOEXEC`).
pub(super) fn child(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    hull_sys::fd::openat2(Some(dir), name, how)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("hull-inroot-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside_the_root() {
        let d = Dir::new("escape");
        let root = d.0.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(d.0.join("etc")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../etc", root.join("rel")).unwrap();
        let r = InRoot::open(&root).unwrap();
        for p in ["/abs", "/rel", "/../etc", "abs/../../etc"] {
            let fd = r.resolve(Path::new(p)).unwrap();
            assert_eq!(real(&fd), root.join("etc"), "{p}");
        }
        assert_eq!(r.lookup(Path::new("/nope/x")).unwrap().map(drop), None);
    }

    #[test]
    fn mkdir_all_creates_inside_and_refuses_a_symlink_it_would_create_through() {
        let d = Dir::new("mkdir");
        let root = d.0.join("root");
        std::fs::create_dir_all(&root).unwrap();
        symlink("/", root.join("up")).unwrap();
        let r = InRoot::open(&root).unwrap();
        let fd = r
            .mkdir_all(Path::new("/a/b/c"), Mode::from_bits_truncate(0o755))
            .unwrap();
        assert_eq!(real(&fd), root.join("a/b/c"));
        // An existing symlink to a directory is followed inside the root.
        let fd = r
            .mkdir_all(Path::new("/up/a/d"), Mode::from_bits_truncate(0o755))
            .unwrap();
        assert_eq!(real(&fd), root.join("a/d"));
        // A dangling one is neither followed nor replaced.
        symlink("/x/y", root.join("dangling")).unwrap();
        let err = r
            .mkdir_all(Path::new("/dangling/z"), Mode::from_bits_truncate(0o755))
            .unwrap_err();
        assert!(matches!(err, Errno::ELOOP | Errno::ENOTDIR), "{err}");
        assert!(!d.0.join("x").exists() && !root.join("x").exists());
    }

    #[test]
    fn create_file_never_goes_through_a_symlink() {
        let d = Dir::new("create");
        let root = d.0.join("root");
        std::fs::create_dir_all(&root).unwrap();
        symlink(d.0.join("victim"), root.join("link")).unwrap();
        let r = InRoot::open(&root).unwrap();
        let mode = Mode::from_bits_truncate(0o644);
        assert_eq!(
            r.create_file(Path::new("/link"), mode).unwrap_err(),
            Errno::EEXIST
        );
        assert!(!d.0.join("victim").exists());
        r.create_file(Path::new("/f"), mode).unwrap();
        assert_eq!(
            r.create_file(Path::new("/f"), mode).unwrap_err(),
            Errno::EEXIST
        );
        assert_eq!(r.parent(Path::new("/")).unwrap_err(), Errno::EINVAL);
    }
}
