//! `/proc/self/mountinfo`, read as far as the runtime needs it (the rootfs, cgroup mounts, LSM
//! filesystems): ids, the tree, mount
//! points (with the kernel's octal escapes undone), filesystem types and super options.

use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u32,
    pub parent: u32,
    /// `major:minor` of the filesystem: mounts of one superblock share it.
    pub device: String,
    /// The directory of the filesystem that is the root of this mount.
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
    /// Per-superblock options, e.g. `rw,cpu,cpuacct` for a cgroup v1 hierarchy.
    pub super_options: String,
}

/// Reads and parses `/proc/self/mountinfo`.
pub fn read_self() -> std::io::Result<Vec<MountEntry>> {
    let text = crate::proc::read_file(Path::new("/proc/self/mountinfo"))?;
    Ok(parse(&text))
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let id = l.next()?.parse().ok()?;
    let parent = l.next()?.parse().ok()?;
    let device = l.next()?.to_string();
    let root = unescape(l.next()?);
    let mount_point = PathBuf::from(unescape(l.next()?));
    let mut r = right.split(' ');
    let fs_type = unescape(r.next()?);
    let source = unescape(r.next()?);
    let super_options = unescape(r.next().unwrap_or(""));
    Some(MountEntry {
        id,
        parent,
        device,
        root,
        mount_point,
        fs_type,
        source,
        super_options,
    })
}

/// Undoes the kernel's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `path` is `base` or lies below it (component-wise, not by string prefix).
pub fn is_at_or_below(path: &Path, base: &Path) -> bool {
    path.starts_with(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
31 22 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
40 22 8:1 /tmp/b\\040x/rootfs /tmp/b\\040x/rootfs rw,relatime - ext4 /dev/sda1 rw
garbage line
";

    #[test]
    fn parses_fields_and_unescapes_paths() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].fs_type, "cgroup");
        assert_eq!(m[1].super_options, "rw,cpu,cpuacct");
        assert_eq!(m[1].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m[2].mount_point, Path::new("/tmp/b x/rootfs"));
        assert_eq!((m[2].id, m[2].parent), (40, 22));
    }

    #[test]
    fn below_is_component_wise() {
        assert!(is_at_or_below(
            Path::new("/a/rootfs/proc"),
            Path::new("/a/rootfs")
        ));
        assert!(is_at_or_below(
            Path::new("/a/rootfs"),
            Path::new("/a/rootfs")
        ));
        assert!(!is_at_or_below(
            Path::new("/a/rootfs2"),
            Path::new("/a/rootfs")
        ));
    }
}
