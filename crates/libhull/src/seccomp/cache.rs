//! The compiled-filter cache: one file per profile, `<dir>/<hash of the key>`, holding the key
//! itself (compared byte for byte, so neither a hash collision nor a swapped file can load
//! another profile's program), the program, and a checksum over both. Files must be regular,
//! owned by us and writable by nobody else; anything odd is ignored and overwritten. The cache
//! keeps other users and accidents out, not a root that can write the directory.

use super::*;
use std::os::unix::fs::OpenOptionsExt;

const MAGIC: &[u8; 8] = b"HULLBPF1";
const HEADER: usize = 32;
/// Bump when the same profile would compile to a different program.
const FORMAT: &str = "hull seccomp cache 1";
const MAX_KEY: usize = 4 << 20;

/// What a cached program depends on: the profile (without the listener fields, which do
/// not change the program), libseccomp's version and the machine.
/// None when the profile cannot be put in canonical form (then there is no caching).
pub(super) fn key(seccomp: &LinuxSeccomp) -> Option<Vec<u8>> {
    let mut profile = seccomp.clone();
    profile.set_listener_path(None);
    profile.set_listener_metadata(None);
    let version = ScmpVersion::current().ok()?;
    let mut key = format!(
        "{FORMAT}\nlibseccomp {}.{}.{}\nnative {:?}\n",
        version.major,
        version.minor,
        version.micro,
        ScmpArch::native()
    )
    .into_bytes();
    // Serializing a typed struct is deterministic: a canonical form of the profile.
    key.extend(serde_json::to_vec(&profile).ok()?);
    Some(key)
}

pub(super) fn file_name(key: &[u8]) -> String {
    format!("{:032x}", fnv1a_128(key))
}

fn fnv1a_128(data: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for &b in data {
        h ^= b as u128;
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

fn checksum(key: &[u8], program: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.iter().chain(program) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Owned by us and writable by nobody else.
fn trusted(meta: &std::fs::Metadata, what: &str) -> Result<(), String> {
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(format!("{what} is owned by uid {}, not {euid}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{what} is group or world writable (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

fn open_dir(dir: &Path) -> Result<File, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| format!("open {}: {e}", dir.display()))?;
    let meta = file.metadata().map_err(|e| format!("stat: {e}"))?;
    trusted(&meta, "the cache directory")?;
    Ok(file)
}

fn openat(dir: &File, name: &str, flags: libc::c_int, mode: libc::mode_t) -> Result<File, Errno> {
    hull_sys::fd::openat(
        dir.as_fd(),
        name,
        nix::fcntl::OFlag::from_bits_retain(flags)
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_retain(mode),
    )
    .map(File::from)
}

pub(super) fn read(dir: &Path, key: &[u8]) -> Result<Vec<Insn>, String> {
    let dir = open_dir(dir)?;
    let name = file_name(key);
    // O_NONBLOCK: a FIFO planted under the name must not hang the open.
    let mut file = openat(&dir, &name, libc::O_RDONLY | libc::O_NONBLOCK, 0)
        .map_err(|e| format!("open {name}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("stat {name}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("{name} is not a regular file"));
    }
    trusted(&meta, &name)?;
    let size = meta.len() as usize;
    let max = HEADER + MAX_KEY + MAX_INSNS * INSN_SIZE;
    if !(HEADER..=max).contains(&size) {
        return Err(format!("{name} has an implausible size ({size} bytes)"));
    }
    let mut data = Vec::with_capacity(size);
    (&mut file)
        .take(size as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("read {name}: {e}"))?;
    parse(&data, key).map_err(|why| format!("{name}: {why}"))
}

pub(super) fn parse(data: &[u8], key: &[u8]) -> Result<Vec<Insn>, &'static str> {
    if data.len() < HEADER || &data[..8] != MAGIC {
        return Err("not a hull seccomp cache file");
    }
    let field = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
    let (key_len, prog_len, sum) = (field(8), field(16), field(24));
    if key_len != key.len() as u64 {
        return Err("stored profile differs");
    }
    if prog_len == 0
        || prog_len % INSN_SIZE as u64 != 0
        || prog_len > (MAX_INSNS * INSN_SIZE) as u64
    {
        return Err("implausible program length");
    }
    if data.len() as u64 != HEADER as u64 + key_len + prog_len {
        return Err("size does not match the header");
    }
    let stored_key = &data[HEADER..HEADER + key.len()];
    let program = &data[HEADER + key.len()..];
    if stored_key != key {
        return Err("stored profile differs");
    }
    if checksum(stored_key, program) != sum {
        return Err("checksum mismatch");
    }
    Ok(program_from_bytes(program))
}

pub(super) fn encode(key: &[u8], program: &[Insn]) -> Vec<u8> {
    let program = program_to_bytes(program);
    let mut data = Vec::with_capacity(HEADER + key.len() + program.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&(key.len() as u64).to_le_bytes());
    data.extend_from_slice(&(program.len() as u64).to_le_bytes());
    data.extend_from_slice(&checksum(key, &program).to_le_bytes());
    data.extend_from_slice(key);
    data.extend_from_slice(&program);
    data
}

pub(super) fn write(dir: &Path, key: &[u8], program: &[Insn]) -> Result<(), String> {
    if key.len() > MAX_KEY {
        return Err(format!("profile too large to cache ({} bytes)", key.len()));
    }
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(format!("create {}: {e}", dir.display())),
    }
    let dir = open_dir(dir)?;
    let name = file_name(key);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = format!(".{name}.{}.{nanos}.tmp", std::process::id());
    let mut file = openat(
        &dir,
        &tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o600,
    )
    .map_err(|e| format!("create {tmp}: {e}"))?;
    let written = file
        .write_all(&encode(key, program))
        .map_err(|e| format!("write {tmp}: {e}"))
        .and_then(|()| {
            nix::fcntl::renameat(
                Some(dir.as_raw_fd()),
                tmp.as_str(),
                Some(dir.as_raw_fd()),
                name.as_str(),
            )
            .map_err(|e| format!("rename {tmp} to {name}: {e}"))
        });
    if written.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    written
}
