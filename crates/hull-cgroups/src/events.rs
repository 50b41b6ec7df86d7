//! The library side of `hull events`: the JSON events runc prints (`stats` every interval,
//! `oom` when the kernel's OOM killer hits the container's memory cgroup), the OOM watcher
//! behind them (v1: an eventfd registered on memory.oom_control; cgroup2: inotify on
//! memory.events), and the loop that drives both until the container is gone.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use serde::{Deserialize, Serialize};

use super::stats::{self, Stats};
use crate::error::CgroupError;
use crate::model::Cgroups;

/// How often the loop asks whether the container still runs, whatever the interval.
const ALIVE_CHECK: Duration = Duration::from_secs(1);

/// What an [`Event`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Stats,
    Oom,
}

/// One line of `events` output, runc's `types.Event`: `{"type":"stats","id":"x","data":{…}}`
/// or `{"type":"oom","id":"x"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Event {
    pub fn stats(id: &str, stats: Stats) -> Event {
        Event {
            kind: EventType::Stats,
            id: id.to_string(),
            data: Some(stats),
        }
    }

    pub fn oom(id: &str) -> Event {
        Event {
            kind: EventType::Oom,
            id: id.to_string(),
            data: None,
        }
    }
}

/// What [`OomWatcher::consume`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomReport {
    /// OOM events since the last call: on v1 one per wakeup (as runc counts them), on
    /// cgroup2 the rise of memory.events' `oom_kill`.
    pub ooms: u64,
    /// The cgroup is gone (v1: removed; cgroup2: no process left in it).
    pub gone: bool,
}

/// Watches the container's memory cgroup for OOM kills. Poll [`AsFd::as_fd`] for
/// readability, then call [`OomWatcher::consume`].
#[derive(Debug)]
pub struct OomWatcher {
    inner: Watch,
}

#[derive(Debug)]
enum Watch {
    V1 {
        eventfd: File,
        /// The kernel's registration refers to this open file: kept open while watching.
        _oom_control: File,
        event_control: PathBuf,
    },
    V2 {
        inotify: nix::sys::inotify::Inotify,
        dir: PathBuf,
        oom_kills: u64,
    },
}

impl AsFd for OomWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Watch::V1 { eventfd, .. } => eventfd.as_fd(),
            Watch::V2 { inotify, .. } => inotify.as_fd(),
        }
    }
}

impl OomWatcher {
    /// Reads what woke the fd (without blocking) and says how many OOM events it meant.
    pub fn consume(&mut self) -> Result<OomReport, CgroupError> {
        match &mut self.inner {
            Watch::V1 {
                eventfd,
                event_control,
                ..
            } => {
                let mut buf = [0u8; 8];
                let count = match eventfd.read(&mut buf) {
                    Ok(8) => u64::from_ne_bytes(buf),
                    Ok(_) => 0,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(source) => {
                        return Err(CgroupError::Io {
                            step: "read the OOM eventfd of",
                            path: event_control.clone(),
                            source,
                        })
                    }
                };
                if count == 0 {
                    return Ok(OomReport::default());
                }
                // Removing the cgroup also signals the eventfd.
                if std::fs::symlink_metadata(&*event_control).is_err() {
                    return Ok(OomReport {
                        ooms: 0,
                        gone: true,
                    });
                }
                Ok(OomReport {
                    ooms: 1,
                    gone: false,
                })
            }
            Watch::V2 {
                inotify,
                dir,
                oom_kills,
            } => {
                drain(inotify, dir)?;
                let Some(now) = v2_oom_kills(dir) else {
                    return Ok(OomReport {
                        ooms: 0,
                        gone: true,
                    });
                };
                let ooms = now.saturating_sub(*oom_kills);
                *oom_kills = now;
                // cgroupfs sends no delete events; cgroup.events says when the last
                // process has left.
                let populated = std::fs::read_to_string(dir.join("cgroup.events"))
                    .ok()
                    .and_then(|t| value_of(&t, "populated"));
                Ok(OomReport {
                    ooms,
                    gone: populated != Some(1),
                })
            }
        }
    }
}

/// Reads every pending inotify event; only the fact that something changed matters.
fn drain(inotify: &mut nix::sys::inotify::Inotify, dir: &Path) -> Result<(), CgroupError> {
    loop {
        match inotify.read_events() {
            Ok(events) if events.is_empty() => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(()),
            Err(e) => {
                return Err(CgroupError::Io {
                    step: "read inotify events for",
                    path: dir.join("memory.events"),
                    source: e.into(),
                })
            }
        }
    }
}

fn value_of(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn v2_oom_kills(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("memory.events")).ok()?;
    Some(value_of(&text, "oom_kill").unwrap_or(0))
}

/// Where the container's memory accounting is: (directory, whether it is cgroup2).
fn memory_dir(cg: &Cgroups) -> Option<(&Path, bool)> {
    if cg.unified_only {
        return cg.unified.as_deref().map(|d| (d, true));
    }
    cg.v1_dir("memory").map(|d| (d, false))
}

/// Starts watching the container's memory cgroup for OOM events.
pub fn oom_watcher(cg: &Cgroups) -> Result<OomWatcher, CgroupError> {
    let Some((dir, v2)) = memory_dir(cg) else {
        return Err(CgroupError::Unsupported {
            field: "events".into(),
            reason: "OOM notification needs the memory controller, which this host does not mount"
                .into(),
        });
    };
    let inner = if v2 { watch_v2(dir)? } else { watch_v1(dir)? };
    Ok(OomWatcher { inner })
}

fn watch_v1(dir: &Path) -> Result<Watch, CgroupError> {
    let oom_path = dir.join("memory.oom_control");
    let oom_control = File::open(&oom_path).map_err(|source| CgroupError::Io {
        step: "open",
        path: oom_path.clone(),
        source,
    })?;
    let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(|e| CgroupError::Io {
            step: "create an eventfd for",
            path: oom_path.clone(),
            source: e.into(),
        })?;
    let event_control = dir.join("cgroup.event_control");
    let line = format!("{} {}", efd.as_raw_fd(), oom_control.as_raw_fd());
    std::fs::write(&event_control, &line).map_err(|source| CgroupError::Write {
        field: "events".into(),
        path: event_control.clone(),
        value: line,
        source,
    })?;
    Ok(Watch::V1 {
        eventfd: File::from(OwnedFd::from(efd)),
        _oom_control: oom_control,
        event_control,
    })
}

fn watch_v2(dir: &Path) -> Result<Watch, CgroupError> {
    let events = dir.join("memory.events");
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(|e| {
        CgroupError::Io {
            step: "create an inotify instance for",
            path: events.clone(),
            source: e.into(),
        }
    })?;
    for file in ["memory.events", "cgroup.events"] {
        let path = dir.join(file);
        if let Err(e) = inotify.add_watch(&path, AddWatchFlags::IN_MODIFY) {
            return Err(CgroupError::Io {
                step: "watch",
                path,
                source: e.into(),
            });
        }
    }
    Ok(Watch::V2 {
        inotify,
        dir: dir.to_path_buf(),
        oom_kills: v2_oom_kills(dir).unwrap_or(0),
    })
}

/// How many times the kernel's OOM killer has killed a process of the container's memory
/// cgroup (v1: memory.oom_control's `oom_kill`; cgroup2: memory.events' `oom_kill`); 0 when
/// unknown.
pub fn oom_kill_count(cg: &Cgroups) -> u64 {
    let Some((dir, v2)) = memory_dir(cg) else {
        return 0;
    };
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|t| value_of(&t, "oom_kill"))
        .unwrap_or(0)
}

/// Waits up to `timeout` for `fd` to be readable.
fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> Result<bool, CgroupError> {
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match nix::poll::poll(&mut fds, timeout) {
        Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(false),
        Ok(_) => Ok(fds[0].any().unwrap_or(false)),
        Err(e) => Err(CgroupError::Io {
            step: "poll",
            path: PathBuf::from("the OOM watcher"),
            source: e.into(),
        }),
    }
}

/// Emits the OOM events the watcher has; true once the cgroup is gone.
fn oom_events(
    id: &str,
    watcher: &mut OomWatcher,
    emit: &mut dyn FnMut(&Event) -> io::Result<()>,
) -> Result<bool, CgroupError> {
    let report = watcher.consume()?;
    for _ in 0..report.ooms {
        emit(&Event::oom(id)).map_err(emit_error)?;
    }
    Ok(report.gone)
}

fn emit_error(source: io::Error) -> CgroupError {
    CgroupError::Io {
        step: "write an event to",
        path: PathBuf::from("the events output"),
        source,
    }
}

/// `events`: with `stats_only`, one `stats` event; else `oom` events as they happen and a
/// `stats` event every `interval`, until `alive()` says the container has stopped or its
/// cgroup is gone. A stats read that fails mid-way is logged and skipped, as runc does.
pub fn run(
    id: &str,
    cg: &Cgroups,
    interval: Duration,
    stats_only: bool,
    alive: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(&Event) -> io::Result<()>,
) -> Result<(), CgroupError> {
    if stats_only {
        return emit(&Event::stats(id, stats::collect(cg)?)).map_err(emit_error);
    }
    if interval.is_zero() {
        return Err(CgroupError::Invalid {
            field: "--interval".into(),
            reason: "duration interval must be greater than 0".into(),
        });
    }
    let mut watcher = oom_watcher(cg)?;
    let mut next = Instant::now() + interval;
    loop {
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(ALIVE_CHECK);
        if readable(watcher.as_fd(), wait)? && oom_events(id, &mut watcher, emit)? {
            return Ok(());
        }
        if !alive() {
            // An OOM kill that ended the container may have arrived just now.
            if readable(watcher.as_fd(), Duration::ZERO)? {
                oom_events(id, &mut watcher, emit)?;
            }
            return Ok(());
        }
        let now = Instant::now();
        if now >= next {
            match stats::collect(cg) {
                Ok(s) => emit(&Event::stats(id, s)).map_err(emit_error)?,
                Err(e) => tracing::warn!("events {id}: reading stats: {e}"),
            }
            next += interval;
            if next <= now {
                next = now + interval;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;

    use super::*;
    use crate::stats::testing::{fork_gated, hog_64m, sleep_forever, v1_cgroups, Scratch};

    #[test]
    fn events_serialize_as_runc() {
        assert_eq!(
            serde_json::to_string(&Event::oom("c1")).unwrap(),
            r#"{"type":"oom","id":"c1"}"#
        );
        let line = serde_json::to_string(&Event::stats("c1", Stats::default())).unwrap();
        assert!(
            line.starts_with(r#"{"type":"stats","id":"c1","data":{"cpu":{"usage":"#),
            "{line}"
        );
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, Event::stats("c1", Stats::default()));
    }

    /// A memory cgroup limited to 16 MiB without swap, under the test's own memory cgroup.
    fn oom_cgroup() -> Scratch {
        let mem = Scratch::cgroup("memory");
        let limit = (16u64 << 20).to_string();
        mem.write("memory.limit_in_bytes", &limit);
        if mem.dir.join("memory.memsw.limit_in_bytes").exists() {
            mem.write("memory.memsw.limit_in_bytes", &limit);
        }
        mem
    }

    #[test]
    fn oom_kill_wakes_the_v1_watcher() {
        let mut mem = oom_cgroup();
        let cg = v1_cgroups(&[("memory", &mem)]);
        let mut watcher = oom_watcher(&cg).unwrap();
        assert!(!readable(watcher.as_fd(), Duration::ZERO).unwrap());
        assert_eq!(oom_kill_count(&cg), 0);

        let mut child = fork_gated(hog_64m);
        mem.join(child.pid);
        child.release();
        assert!(
            readable(watcher.as_fd(), Duration::from_secs(20)).unwrap(),
            "no OOM notification"
        );
        assert_eq!(
            child.wait(),
            WaitStatus::Signaled(child.pid, Signal::SIGKILL, false)
        );
        let report = watcher.consume().unwrap();
        assert_eq!(
            report,
            OomReport {
                ooms: 1,
                gone: false
            }
        );
        assert_eq!(oom_kill_count(&cg), 1);

        // Removing the cgroup wakes the watcher once more, as gone.
        let _ = watcher.consume();
        mem.remove();
        assert!(readable(watcher.as_fd(), Duration::from_secs(5)).unwrap());
        assert_eq!(
            watcher.consume().unwrap(),
            OomReport {
                ooms: 0,
                gone: true
            }
        );
    }

    #[test]
    fn run_reports_the_oom_kill_and_stats() {
        let mem = oom_cgroup();
        let pids_cg = Scratch::cgroup("pids");
        let cg = v1_cgroups(&[("memory", &mem), ("pids", &pids_cg)]);
        let mut hog = fork_gated(hog_64m);
        let mut sleeper = fork_gated(sleep_forever);
        for pid in [hog.pid, sleeper.pid] {
            mem.join(pid);
            pids_cg.join(pid);
        }
        let events = RefCell::new(Vec::new());
        let deadline = Instant::now() + Duration::from_secs(20);
        // Runs until a stats event follows the OOM one.
        let stats_after_oom = || {
            let events = events.borrow();
            let first_oom = events.iter().position(|e: &Event| e.kind == EventType::Oom);
            first_oom.is_some_and(|i| events[i..].iter().any(|e| e.kind == EventType::Stats))
        };
        let alive = || !stats_after_oom() && Instant::now() < deadline;
        let mut emit = |e: &Event| {
            events.borrow_mut().push(e.clone());
            Ok(())
        };
        hog.release();
        run(
            "c1",
            &cg,
            Duration::from_millis(100),
            false,
            &alive,
            &mut emit,
        )
        .unwrap();
        assert_eq!(
            hog.wait(),
            WaitStatus::Signaled(hog.pid, Signal::SIGKILL, false)
        );

        let events = events.into_inner();
        let ooms: Vec<&Event> = events.iter().filter(|e| e.kind == EventType::Oom).collect();
        assert_eq!(ooms.len(), 1, "{events:?}");
        assert_eq!(ooms[0], &Event::oom("c1"));
        let stats = events
            .iter()
            .rev()
            .find_map(|e| e.data.as_ref())
            .expect("a stats event");
        // The sleeper, and the killed hog: a zombie counts until it is reaped.
        assert_eq!(stats.pids.current, 2);
        assert_eq!(stats.memory.usage.limit, 16 << 20);
        assert_eq!(oom_kill_count(&cg), 1);
        sleeper.release();
    }

    #[test]
    fn stats_only_emits_one_event() {
        let pids_cg = Scratch::cgroup("pids");
        let cg = v1_cgroups(&[("pids", &pids_cg)]);
        let mut lines = Vec::new();
        let mut emit = |e: &Event| {
            lines.push(serde_json::to_string(e).unwrap());
            Ok(())
        };
        // No memory cgroup: without --stats there would be no OOM watcher to start.
        run("c1", &cg, Duration::from_secs(5), true, &|| true, &mut emit).unwrap();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with(r#"{"type":"stats","id":"c1","data":{"#));
        assert!(run(
            "c1",
            &cg,
            Duration::from_secs(5),
            false,
            &|| true,
            &mut |_| Ok(())
        )
        .is_err());
        assert!(run("c1", &cg, Duration::ZERO, false, &|| true, &mut |_| Ok(())).is_err());
    }

    #[test]
    fn run_stops_when_the_container_is_gone() {
        let mem = Scratch::cgroup("memory");
        let cg = v1_cgroups(&[("memory", &mem)]);
        let calls = Cell::new(0);
        let alive = || {
            calls.set(calls.get() + 1);
            calls.get() < 3
        };
        let mut n = 0;
        let start = Instant::now();
        run(
            "c1",
            &cg,
            Duration::from_millis(50),
            false,
            &alive,
            &mut |_| {
                n += 1;
                Ok(())
            },
        )
        .unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(n >= 1, "stats events: {n}");

        // A failing output ends the loop with an error.
        let err = run(
            "c1",
            &cg,
            Duration::from_millis(10),
            false,
            &|| true,
            &mut |_| Err(io::Error::from_raw_os_error(libc::EPIPE)),
        );
        assert!(err.is_err());
    }

    /// cgroup2: memory.events rises and the inotify watch wakes; an emptied cgroup is gone.
    #[test]
    fn v2_watcher_counts_oom_kill_rises() {
        let d = Scratch::plain();
        d.write("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        d.write("cgroup.events", "populated 1\nfrozen 0\n");
        let cg = Cgroups {
            unified: Some(d.dir.clone()),
            unified_only: true,
            ..Cgroups::default()
        };
        assert_eq!(oom_kill_count(&cg), 1);
        let mut watcher = oom_watcher(&cg).unwrap();
        assert!(!readable(watcher.as_fd(), Duration::ZERO).unwrap());

        d.write("memory.events", "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n");
        assert!(readable(watcher.as_fd(), Duration::from_secs(2)).unwrap());
        assert_eq!(
            watcher.consume().unwrap(),
            OomReport {
                ooms: 2,
                gone: false
            }
        );
        assert!(!readable(watcher.as_fd(), Duration::ZERO).unwrap());
        assert_eq!(oom_kill_count(&cg), 3);

        d.write("cgroup.events", "populated 0\nfrozen 0\n");
        assert!(readable(watcher.as_fd(), Duration::from_secs(2)).unwrap());
        assert_eq!(
            watcher.consume().unwrap(),
            OomReport {
                ooms: 0,
                gone: true
            }
        );
    }
}
