use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use crate::{Cgroups, Hierarchy};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A directory made for one test and removed (with what is below it) when dropped.
#[derive(Debug)]
pub(crate) struct Scratch {
    pub dir: PathBuf,
    removed: bool,
}

impl Scratch {
    /// A new cgroup in the v1 hierarchy of `controller`, under the test process's own
    /// cgroup there (which, for memory, is not ours to limit: only the child is).
    pub fn cgroup(controller: &str) -> Scratch {
        let own = std::fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
        let path = own
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _ = parts.next()?;
                let names = parts.next()?;
                names
                    .split(',')
                    .any(|n| n == controller)
                    .then(|| parts.next().map(str::to_string))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no v1 {controller} hierarchy on this host"));
        let parent = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path.trim_start_matches('/'));
        let dir = parent.join(unique("hulltest-stats"));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let scratch = Scratch {
            dir,
            removed: false,
        };
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let path = scratch.dir.join(file);
            if path.exists() {
                let value = std::fs::read_to_string(parent.join(file)).unwrap();
                std::fs::write(&path, value.trim()).unwrap();
            }
        }
        scratch
    }

    /// A plain directory standing in for a cgroup whose files a test writes itself.
    pub fn plain() -> Scratch {
        let dir = std::env::temp_dir().join(unique("hulltest-fakecg"));
        std::fs::create_dir(&dir).unwrap();
        Scratch {
            dir,
            removed: false,
        }
    }

    pub fn write(&self, file: &str, value: &str) {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
    }

    pub fn join(&self, pid: Pid) {
        self.write("cgroup.procs", &pid.to_string());
    }

    /// Removes the cgroup now; its processes must be gone.
    pub fn remove(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let res = if self.dir.starts_with("/sys/fs/cgroup") {
                std::fs::remove_dir(&self.dir)
            } else {
                std::fs::remove_dir_all(&self.dir)
            };
            match res {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("remove {}: {e}", self.dir.display()),
            }
        }
        self.removed = true;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.removed && !std::thread::panicking() {
            self.remove();
        } else if !self.removed {
            let _ = std::fs::remove_dir(&self.dir);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A `Cgroups` whose v1 hierarchies are the given scratch cgroups.
pub(crate) fn v1_cgroups(dirs: &[(&str, &Scratch)]) -> Cgroups {
    Cgroups {
        v1: dirs
            .iter()
            .map(|(c, s)| Hierarchy {
                controllers: vec![c.to_string()],
                dir: s.dir.clone(),
            })
            .collect(),
        ..Cgroups::default()
    }
}

/// A forked child that waits on a gate before it runs its work, so the test can move it
/// into cgroups first. Killed and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Child {
    pub pid: Pid,
    gate: Option<OwnedFd>,
    reaped: bool,
}

/// Forks a child that runs `work` once released; `work` must only make raw syscalls
/// (the test process has other threads) and never return.
pub(crate) fn fork_gated(work: fn() -> !) -> Child {
    let (rx, tx) = nix::unistd::pipe().expect("pipe");
    // SAFETY: the child only makes async-signal-safe syscalls (close, read, the work's
    // raw syscalls, _exit) before it exits.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: closing the child's copy of the write end, a fd it owns.
            unsafe { libc::close(tx.as_raw_fd()) };
            let mut byte = 0u8;
            // SAFETY: reads one byte into a live local.
            let n = unsafe { libc::read(rx.as_raw_fd(), (&raw mut byte).cast(), 1) };
            if n == 1 {
                work();
            }
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(rx);
            Child {
                pid: child,
                gate: Some(tx),
                reaped: false,
            }
        }
    }
}

impl Child {
    /// Lets the child run its work.
    pub fn release(&mut self) {
        if let Some(tx) = self.gate.take() {
            nix::unistd::write(&tx, b"x").expect("release the child");
        }
    }

    pub fn wait(&mut self) -> WaitStatus {
        let status = waitpid(self.pid, None).expect("waitpid");
        self.reaped = true;
        status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// Work: sleep until killed.
pub(crate) fn sleep_forever() -> ! {
    loop {
        // SAFETY: pause(2) only waits for a signal.
        unsafe { libc::pause() };
    }
}

/// Maps `len` bytes of anonymous memory and writes to every page; None if mmap fails.
fn touch(len: usize) -> Option<()> {
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let base = p.cast::<u8>();
    for off in (0..len).step_by(4096) {
        // SAFETY: `off` < `len`: the pointer stays inside the mapping.
        let page = unsafe { base.add(off) };
        // SAFETY: `page` is in the private mapping just made writable.
        unsafe { page.write_volatile(1) };
    }
    Some(())
}

/// Work: charge 8 MiB to the memory cgroup, then sleep until killed.
pub(crate) fn hold_8m() -> ! {
    if touch(8 << 20).is_none() {
        // SAFETY: ends the child.
        unsafe { libc::_exit(2) }
    }
    sleep_forever()
}

/// Work: write 64 MiB, more than the test's memory limit.
pub(crate) fn hog_64m() -> ! {
    let code = if touch(64 << 20).is_some() { 0 } else { 2 };
    // SAFETY: ends the child.
    unsafe { libc::_exit(code) }
}

fn now_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Work: spin on the CPU for 300 ms, then exit.
pub(crate) fn burn_300ms() -> ! {
    let end = now_ns() + 300_000_000;
    while now_ns() < end {
        std::hint::spin_loop();
    }
    // SAFETY: ends the child.
    unsafe { libc::_exit(0) }
}
