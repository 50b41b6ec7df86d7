//! Reading the kernel's generated files under /proc that more than one layer needs.

use std::io::Read;
use std::path::Path;

/// Reads a generated /proc file. Its size shows as 0, so `read_to_string` would start with
/// 32-byte reads, each of which makes the kernel walk the table again from the start: one
/// large buffer makes it a single walk.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    let mut text = String::with_capacity(64 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// What /proc/PID/stat says of a process that hull needs: its state letter (`R`, `S`, `Z`, …)
/// and its start time in clock ticks since boot (with the pid, what tells it from a later
/// process that reuses the pid). `None` when there is no such process.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some((stat.state, stat.starttime))
}

/// Whether `uid_map` text is the initial user namespace's: the identity over the whole
/// 32-bit id range.
pub fn is_initial_uid_map(text: &str) -> bool {
    text.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

/// Whether this process runs in a user namespace other than the initial one. A process
/// that cannot read its own uid_map (no /proc) counts as in the initial one.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !is_initial_uid_map(&m))
}

/// This process's effective uid as the parent user namespace sees it, when it runs in a
/// user namespace other than the initial one (`None` there, or when its uid is unmapped).
pub fn outer_uid() -> Option<u32> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    if is_initial_uid_map(&map) {
        return None;
    }
    outer_id(&map, nix::unistd::geteuid().as_raw())
}

/// `id` of a user namespace, through its `uid_map` text, as the parent namespace sees it.
fn outer_id(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let mut f = l.split_whitespace().map(|w| w.parse::<u32>().ok());
        let (inner, outer, count) = (f.next()??, f.next()??, f.next()??);
        (inner <= id && u64::from(id) < u64::from(inner) + u64::from(count))
            .then(|| outer + (id - inner))
    })
}

/// Whether this process lacks the rights of the host's root: not uid 0, or uid 0 of a user
/// namespace.
pub fn rootless() -> bool {
    !nix::unistd::geteuid().is_root() || in_user_namespace()
}

/// One line of /proc/PID/cgroup: a hierarchy's controllers (`cpu,cpuacct`, `name=systemd`,
/// empty for cgroup2) and the process's path in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub controllers: String,
    pub path: String,
}

/// Parses /proc/PID/cgroup text (`ID:CONTROLLERS:PATH` lines); malformed lines are skipped.
pub fn parse_cgroups(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            Some(CgroupLine {
                controllers: parts.next()?.to_owned(),
                path: parts.next()?.to_owned(),
            })
        })
        .collect()
}

/// This process's cgroups, from /proc/self/cgroup.
pub fn own_cgroups() -> std::io::Result<Vec<CgroupLine>> {
    Ok(parse_cgroups(&read_file(Path::new("/proc/self/cgroup"))?))
}

/// This process's cgroup2 path: the `0::` line of /proc/self/cgroup.
pub fn own_cgroup2() -> std::io::Result<Option<String>> {
    Ok(own_cgroups()?
        .into_iter()
        .find(|l| l.controllers.is_empty())
        .map(|l| l.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_whole_identity_map_is_the_initial_namespace() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        let map = "         0       1501          1\n         1     100000      65536\n";
        assert_eq!(outer_id(map, 0), Some(1501));
        assert_eq!(outer_id(map, 1000), Some(100_999));
        assert_eq!(outer_id(map, 70_000), None);
        assert!(!is_initial_uid_map("         0       1000          1\n"));
        assert!(!is_initial_uid_map(
            "0 0 4294967295\n0 0 1\n" // never written so, but not the identity alone
        ));
        assert!(!is_initial_uid_map(""));
    }

    #[test]
    fn a_child_is_seen_sleeping_then_as_a_zombie_then_gone() {
        let (_, own_start) = stat(std::process::id() as i32).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stat(pid).is_none_or(|(s, _)| s != 'S') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (state, start) = stat(pid).unwrap();
        assert_eq!(state, 'S');
        assert!(start >= own_start, "{start} < {own_start}");
        child.kill().unwrap();
        while stat(pid).is_some_and(|(s, _)| s != 'Z') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(stat(pid).map(|(s, _)| s), Some('Z'));
        child.wait().unwrap();
        assert_eq!(stat(pid), None);
    }

    #[test]
    fn cgroup_lines_split_at_the_first_two_colons() {
        let lines = parse_cgroups("12:cpu,cpuacct:/a:b\n1:name=systemd:/\n0::/x\nbad\n");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].controllers, "cpu,cpuacct");
        assert_eq!(lines[0].path, "/a:b");
        assert_eq!(lines[2].controllers, "");
        assert_eq!(lines[2].path, "/x");
    }

    #[test]
    fn this_process_reads_its_own_cgroup2_line() {
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let expected = text.lines().find_map(|l| l.strip_prefix("0::"));
        assert_eq!(own_cgroup2().unwrap().as_deref(), expected);
    }
}
