//! Host mounts berthd makes itself: containerd's mounts (a snapshot's
//! `bind` or `overlay`) read-only, for the builder to read another stage's
//! files, the tmpfs behind a shareable container's `/dev/shm`, the
//! filesystems of `local` volumes with options (`type`/`device`/`o`),
//! mounted as moby's `mount.Mount` does, and a volume's subpath resolved
//! safely and bound where the container's spec expects it.

use std::ffi::CString;
use std::path::Path;

use crate::backends::containerd::Mount;

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a mount argument"))
}

/// Mount `mounts` (one, as containerd's snapshotters return for a view)
/// read-only at `target`.
pub fn mount_readonly(mounts: &[Mount], target: &Path) -> std::io::Result<()> {
    let [m] = mounts else {
        return Err(std::io::Error::other(format!("expected one mount, got {}", mounts.len())));
    };
    let target_c = cstr(&target.to_string_lossy())?;
    let data: Vec<&str> = m.options.iter().map(String::as_str).filter(|o| !matches!(*o, "ro" | "rw" | "rbind" | "bind")).collect();
    let (source, fstype, flags, data) = match m.kind.as_str() {
        "bind" => (m.source.clone(), None, libc::MS_BIND | libc::MS_REC, String::new()),
        _ => (m.source.clone(), Some(m.kind.clone()), libc::MS_RDONLY, data.join(",")),
    };
    let source_c = cstr(&source)?;
    let fstype_c = fstype.as_deref().map(cstr).transpose()?;
    let data_c = cstr(&data)?;
    // SAFETY: every pointer is a valid NUL-terminated string for the call.
    let rc = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            if data.is_empty() { std::ptr::null() } else { data_c.as_ptr().cast() },
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if m.kind == "bind" {
        // A bind mount is made read-only by a remount.
        // SAFETY: as above.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                target_c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            let _ = unmount(target);
            return Err(e);
        }
    }
    Ok(())
}

/// Mount a fresh tmpfs at `target` with `options` (e.g. `mode=1777,size=…`).
pub fn mount_tmpfs(target: &Path, options: &str) -> std::io::Result<()> {
    let target_c = cstr(&target.to_string_lossy())?;
    let fstype = cstr("tmpfs")?;
    let data = cstr(options)?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: every pointer is a valid NUL-terminated string for the call.
    let rc = unsafe { libc::mount(fstype.as_ptr(), target_c.as_ptr(), fstype.as_ptr(), flags, data.as_ptr().cast()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Detach the mount at `target`.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    let target_c = cstr(&target.to_string_lossy())?;
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::umount2(target_c.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `mount -o` words that are flags (moby/sys/mount's table): the flag, and
/// whether the word clears it.
const MOUNT_FLAGS: &[(&str, libc::c_ulong, bool)] = &[
    ("defaults", 0, false),
    ("ro", libc::MS_RDONLY, false),
    ("rw", libc::MS_RDONLY, true),
    ("suid", libc::MS_NOSUID, true),
    ("nosuid", libc::MS_NOSUID, false),
    ("dev", libc::MS_NODEV, true),
    ("nodev", libc::MS_NODEV, false),
    ("exec", libc::MS_NOEXEC, true),
    ("noexec", libc::MS_NOEXEC, false),
    ("sync", libc::MS_SYNCHRONOUS, false),
    ("async", libc::MS_SYNCHRONOUS, true),
    ("dirsync", libc::MS_DIRSYNC, false),
    ("remount", libc::MS_REMOUNT, false),
    ("mand", libc::MS_MANDLOCK, false),
    ("nomand", libc::MS_MANDLOCK, true),
    ("atime", libc::MS_NOATIME, true),
    ("noatime", libc::MS_NOATIME, false),
    ("diratime", libc::MS_NODIRATIME, true),
    ("nodiratime", libc::MS_NODIRATIME, false),
    ("bind", libc::MS_BIND, false),
    ("rbind", libc::MS_BIND | libc::MS_REC, false),
    ("unbindable", libc::MS_UNBINDABLE, false),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC, false),
    ("private", libc::MS_PRIVATE, false),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC, false),
    ("shared", libc::MS_SHARED, false),
    ("rshared", libc::MS_SHARED | libc::MS_REC, false),
    ("slave", libc::MS_SLAVE, false),
    ("rslave", libc::MS_SLAVE | libc::MS_REC, false),
    ("relatime", libc::MS_RELATIME, false),
    ("norelatime", libc::MS_RELATIME, true),
    ("strictatime", libc::MS_STRICTATIME, false),
    ("nostrictatime", libc::MS_STRICTATIME, true),
];

const PROPAGATION: libc::c_ulong = libc::MS_SHARED | libc::MS_PRIVATE | libc::MS_SLAVE | libc::MS_UNBINDABLE;

/// Flags and filesystem data of `-o` options (moby's parseOptions).
fn parse_options(options: &str) -> (libc::c_ulong, String) {
    let mut flags = 0;
    let mut data = Vec::new();
    for word in options.split(',').filter(|w| !w.is_empty()) {
        match MOUNT_FLAGS.iter().find(|(name, _, _)| *name == word) {
            Some((_, flag, true)) => flags &= !flag,
            Some((_, flag, false)) => flags |= flag,
            None => data.push(word),
        }
    }
    (flags, data.join(","))
}

/// A syscall error in Go's words ("no such file or directory"), as
/// dockerd's messages carry them.
pub fn go_errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

fn raw_mount(source: Option<&str>, target: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: &str) -> std::io::Result<()> {
    let target_c = cstr(&target.to_string_lossy())?;
    let source_c = source.map(cstr).transpose()?;
    let fstype_c = fstype.map(cstr).transpose()?;
    let data_c = cstr(data)?;
    // SAFETY: every pointer is null or a valid NUL-terminated string.
    let rc = unsafe {
        libc::mount(
            source_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            if data.is_empty() { std::ptr::null() } else { data_c.as_ptr().cast() },
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Mount `device` of `fstype` at `target` with `mount -o` style `options`,
/// as moby's `mount.Mount`: the mount, then the propagation, then a
/// read-only remount for a read-only bind. Errors read as moby's.
pub fn mount_with_options(device: &str, target: &Path, fstype: &str, options: &str) -> Result<(), String> {
    let (flags, data) = parse_options(options);
    let plain = flags & !PROPAGATION;
    let at = target.display();
    let fail = |op: &str, source: &str, flags: libc::c_ulong, data: &str, e: std::io::Error| {
        let mut text = format!("{op} ");
        if source.is_empty() {
            text.push_str(&at.to_string());
        } else {
            text.push_str(&format!("{source}:{at}"));
        }
        if flags != 0 {
            text.push_str(&format!(", flags: {flags:#x}"));
        }
        if !data.is_empty() {
            text.push_str(&format!(", data: {data}"));
        }
        format!("{text}: {}", go_errno_text(&e))
    };
    if plain & libc::MS_REMOUNT == 0 || !data.is_empty() {
        raw_mount(Some(device), target, Some(fstype), plain, &data).map_err(|e| fail("mount", device, plain, &data, e))?;
    }
    if flags & PROPAGATION != 0 {
        let propagation = flags & (PROPAGATION | libc::MS_REC | libc::MS_SILENT);
        raw_mount(None, target, None, propagation, "").map_err(|e| fail("remount", "", propagation, "", e))?;
    }
    let read_only_bind = libc::MS_BIND | libc::MS_RDONLY;
    if plain & read_only_bind == read_only_bind {
        raw_mount(None, target, None, plain | libc::MS_REMOUNT, "").map_err(|e| fail("remount-ro", "", plain | libc::MS_REMOUNT, "", e))?;
    }
    Ok(())
}

/// Why a volume's subpath cannot be mounted (moby's safepath errors).
#[derive(Debug)]
pub enum BeneathError {
    /// Missing, or a symlink loop: "cannot access path …".
    NotAccessible(String),
    /// It leads outside the base: "path concatenation escapes …".
    Escapes(String),
    Other(String),
}

impl std::fmt::Display for BeneathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BeneathError::NotAccessible(m) | BeneathError::Escapes(m) | BeneathError::Other(m) => f.write_str(m),
        }
    }
}

/// Open `subpath` below `base` as an `O_PATH` handle in one kernel walk
/// (`openat2` with `RESOLVE_BENEATH`): `..` or a symlink that leaves `base`
/// fails instead of being followed, even if the tree changes meanwhile,
/// as moby's `safepath.Join`. Mounting the handle then binds exactly
/// what was checked.
pub fn open_beneath(base: &Path, subpath: &str) -> Result<std::os::fd::OwnedFd, BeneathError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dir = rustix::fs::open(base, flags, Mode::empty())
        .map_err(|e| BeneathError::NotAccessible(format!("cannot access path {}: {}", base.display(), go_errno_text(&e.into()))))?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&dir, subpath, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), resolve) {
        Ok(fd) => Ok(fd),
        Err(Errno::XDEV) => Err(BeneathError::Escapes(format!(
            "path concatenation escapes the base directory, base: {}, subpath: {subpath}",
            base.display()
        ))),
        Err(e @ (Errno::NOENT | Errno::LOOP | Errno::NOTDIR)) => Err(BeneathError::NotAccessible(format!(
            "cannot access path {}: {}",
            base.join(subpath).display(),
            go_errno_text(&e.into())
        ))),
        Err(e) => Err(BeneathError::Other(format!("openat2 {subpath}: {}", go_errno_text(&e.into())))),
    }
}

/// Bind-mount what `fd` refers to at `target`, made to match it (a
/// directory, or an empty file); whatever was mounted there goes first.
pub fn bind_fd(fd: &std::os::fd::OwnedFd, target: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let is_dir = rustix::fs::fstat(fd).map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir()).map_err(std::io::Error::from)?;
    unmount_all(target);
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() == is_dir => {}
        Ok(m) if m.is_dir() => std::fs::remove_dir(target)?,
        Ok(_) => std::fs::remove_file(target)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if is_dir {
        match std::fs::create_dir(target) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    } else {
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(target)?;
    }
    raw_mount(Some(&format!("/proc/self/fd/{}", fd.as_raw_fd())), target, None, libc::MS_BIND, "")
}

/// Detach every mount stacked at `target` (none is fine).
pub fn unmount_all(target: &Path) {
    while unmount(target).is_ok() {}
}

/// Whether something is mounted exactly at `path` (this process's view).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let wanted = path.to_string_lossy();
    info.lines().filter_map(|l| l.split(' ').nth(4)).any(|p| unescape_mountinfo(p) == wanted)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            out.push((bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        assert_eq!(parse_options("bind"), (libc::MS_BIND, String::new()));
        assert_eq!(parse_options("size=10m,uid=1000,ro"), (libc::MS_RDONLY, "size=10m,uid=1000".into()));
        assert_eq!(parse_options("ro,rw,rprivate"), (libc::MS_PRIVATE | libc::MS_REC, String::new()));
    }

    #[test]
    fn errors_and_mountinfo_read_as_go() {
        assert_eq!(go_errno_text(&std::io::Error::from_raw_os_error(libc::ENOENT)), "no such file or directory");
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert!(is_mountpoint(Path::new("/proc")));
    }
}
