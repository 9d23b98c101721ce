//! Host mounts berthd makes itself: a snapshot from containerd's mounts
//! (`bind` or `overlay`), for the builder to read another stage's files and
//! for `rootfs` to reach a stopped container's filesystem, the tmpfs behind a shareable container's `/dev/shm`, the
//! filesystems of `local` volumes with options (`type`/`device`/`o`),
//! mounted as moby's `mount.Mount` does, and a volume's subpath resolved
//! safely and bound where the container's spec expects it.

use std::ffi::CString;
use std::path::Path;

use crate::backends::containerd::Mount;

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a mount argument"))
}

/// Mount a snapshot (containerd's mounts for it: one `overlay` or `bind`)
/// at `target`; read-only unless `writable`.
pub fn mount_snapshot(mounts: &[Mount], target: &Path, writable: bool) -> std::io::Result<()> {
    use rustix::mount::{mount, mount_bind_recursive, mount_remount, MountFlags};
    let [m] = mounts else {
        return Err(std::io::Error::other(format!("expected one snapshot mount, got {}", mounts.len())));
    };
    match m.kind.as_str() {
        "overlay" => {
            let data = cstr(&overlay_options(&m.options, writable))?;
            let flags = if writable { MountFlags::empty() } else { MountFlags::RDONLY };
            mount("overlay", target, "overlay", flags, Some(data.as_c_str()))?;
        }
        "bind" => {
            mount_bind_recursive(m.source.as_str(), target)?;
            if !writable || m.options.iter().any(|o| o == "ro") {
                // A bind mount is made read-only by a remount.
                if let Err(e) = mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "") {
                    let _ = unmount(target);
                    return Err(e.into());
                }
            }
        }
        other => return Err(std::io::Error::other(format!("unsupported snapshot mount type {other}"))),
    }
    Ok(())
}

/// A snapshot's overlay as a detached mount (the new mount API), reached
/// only through the returned handle and gone when it closes: no mount
/// namespace is copied, which costs as much as the host has mounts. The
/// layers go in one by one (`lowerdir+`, Linux 6.8), as a string option
/// is limited to 256 bytes. `None` for what only `mount_snapshot` does
/// (a bind snapshot, an older kernel).
pub fn detached_snapshot(mounts: &[Mount], writable: bool) -> Option<std::os::fd::OwnedFd> {
    use rustix::mount::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags, MountAttrFlags};
    let [m] = mounts else { return None };
    if m.kind != "overlay" {
        return None;
    }
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ok()?;
    for option in overlay_options(&m.options, writable).split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("lowerdir", layers)) => {
                for layer in layers.split(':') {
                    fsconfig_set_string(&fs, "lowerdir+", layer).ok()?;
                }
            }
            Some((key, value)) => fsconfig_set_string(&fs, key, value).ok()?,
            None => fsconfig_set_flag(&fs, option).ok()?,
        }
    }
    fsconfig_create(&fs).ok()?;
    let attrs = if writable { MountAttrFlags::empty() } else { MountAttrFlags::MOUNT_ATTR_RDONLY };
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).ok()
}

/// containerd's overlay options as mount data (flag words dropped);
/// read-only uses the upper layer as the top lower one, so an active
/// snapshot is not mounted twice as an upper.
fn overlay_options(options: &[String], writable: bool) -> String {
    let data = options.iter().filter(|o| !matches!(o.as_str(), "ro" | "rw" | "bind" | "rbind"));
    let upper = options.iter().find_map(|o| o.strip_prefix("upperdir="));
    let has_lower = options.iter().any(|o| o.starts_with("lowerdir="));
    let Some(upper) = upper.filter(|_| !writable && has_lower) else {
        // Writable, a view (no upper), or a snapshot with no parent (an
        // overlay needs two lower layers): as containerd gave them.
        return data.cloned().collect::<Vec<_>>().join(",");
    };
    data.filter(|o| !o.starts_with("upperdir=") && !o.starts_with("workdir="))
        .map(|o| match o.strip_prefix("lowerdir=") {
            Some(lowers) => format!("lowerdir={upper}:{lowers}"),
            None => o.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Mount a fresh tmpfs at `target` with `options` (e.g. `mode=1777,size=…`).
pub fn mount_tmpfs(target: &Path, options: &str) -> std::io::Result<()> {
    raw_mount(Some("tmpfs"), target, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, options)
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

/// Open `subpath` below `base` as an `O_PATH` handle, as moby's
/// `safepath.Join`: symlinks in `base/subpath` are resolved as the host
/// sees them (so an absolute link back into the volume is fine), the
/// result must lie below `base`, and that relative path is then opened in
/// one kernel walk (`openat2`, `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`):
/// a link swapped in meanwhile fails instead of being followed. Mounting
/// the handle then binds exactly what was checked.
pub fn open_beneath(base: &Path, subpath: &str) -> Result<std::os::fd::OwnedFd, BeneathError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let not_accessible = |path: &Path, e: &std::io::Error| {
        BeneathError::NotAccessible(format!("cannot access path {}: lstat {}: {}", path.display(), path.display(), go_errno_text(e)))
    };
    let resolve_links = |path: &Path, what: &str| {
        std::fs::canonicalize(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_accessible(path, &e),
            _ => BeneathError::Other(format!("error while resolving symlinks in {what} {:?}: {}", path.display(), go_errno_text(&e))),
        })
    };
    let base = resolve_links(base, "base directory")?;
    // Go's filepath.Join: lexical, before any link is looked at.
    let mut combined = base.clone();
    for part in subpath.split('/') {
        match part {
            "" | "." => {}
            // Above `base` is caught as an escape below.
            ".." => {
                combined.pop();
            }
            p => combined.push(p),
        }
    }
    let resolved = resolve_links(&combined, "combined path")?;
    let escapes = || BeneathError::Escapes(format!("path concatenation escapes the base directory, base: {}, subpath: {subpath}", base.display()));
    let relative = resolved.strip_prefix(&base).map_err(|_| escapes())?;
    let relative = if relative.as_os_str().is_empty() { Path::new(".") } else { relative };
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dir = rustix::fs::open(&base, flags, Mode::empty()).map_err(|e| {
        BeneathError::NotAccessible(format!("cannot access path {}: {}", base.display(), go_errno_text(&e.into())))
    })?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS;
    match rustix::fs::openat2(&dir, relative, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), resolve) {
        Ok(fd) => Ok(fd),
        Err(Errno::XDEV) => Err(escapes()),
        Err(e @ (Errno::NOENT | Errno::LOOP)) => Err(BeneathError::NotAccessible(format!(
            "cannot access path {}: {}",
            base.join(relative).display(),
            go_errno_text(&e.into())
        ))),
        Err(e) => Err(BeneathError::Other(format!("openat2 {}: {}", relative.display(), go_errno_text(&e.into())))),
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
    fn read_only_overlay_puts_the_upper_layer_on_top() {
        let opts: Vec<String> = ["index=off", "workdir=/s/2/work", "upperdir=/s/2/fs", "lowerdir=/s/1/fs"].map(String::from).to_vec();
        assert_eq!(overlay_options(&opts, false), "index=off,lowerdir=/s/2/fs:/s/1/fs");
        assert_eq!(overlay_options(&opts, true), opts.join(","));
        let view: Vec<String> = ["ro", "index=off", "lowerdir=/s/2/fs:/s/1/fs"].map(String::from).to_vec();
        assert_eq!(overlay_options(&view, false), "index=off,lowerdir=/s/2/fs:/s/1/fs");
    }

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
