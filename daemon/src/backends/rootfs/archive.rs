//! Reading out of a container root: dockerd's path stat and its tar of a
//! path (`GET /containers/{id}/archive`, export), names rebased as dockerd
//! does (`/d` → `d/…`, `/d/.` → `./…`, a file → its base name).

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use serde::Serialize;

use super::{components, io_err, Root};

/// `X-Docker-Container-Path-Stat`: Go's `os.FileMode` and RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    pub link_target: String,
}

/// Go's `os.FileMode` bits for a `st_mode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => 1 << 31,
        FileType::Symlink => 1 << 27,
        FileType::Fifo => 1 << 25,
        FileType::Socket => 1 << 24,
        FileType::BlockDevice => 1 << 26,
        FileType::CharacterDevice => (1 << 26) | (1 << 21),
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

/// Go's `time.RFC3339Nano`: trailing zeros of the fraction dropped.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let t = chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default();
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = format!("{nanos:09}");
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{base}Z") } else { format!("{base}.{frac}Z") }
}

/// dockerd's reading of a path: absolute, `..` clamped, a trailing `/` or
/// `/.` kept (they make the last symlink followed).
fn follows_last(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "."
}

fn base_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    components(path).last().map(|s| s.to_string()).unwrap_or_else(|| "/".into())
}

fn clean_abs(parts: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for p in parts {
        match *p {
            "." | "" => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

impl Root {
    fn stat_at(&self, path: &str) -> std::io::Result<(Stat, Option<OwnedFd>)> {
        if follows_last(path) {
            let fd = self.open(path, true)?;
            let st = rustix::fs::fstat(&fd).map_err(io_err)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            return Ok((st, Some(fd)));
        }
        let (dir, name) = self.parent(path)?;
        match name {
            Some(name) => Ok((rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(io_err)?, None)),
            None => Ok((rustix::fs::fstat(&dir).map_err(io_err)?, Some(dir))),
        }
    }

    /// dockerd's stat of `path`; a symlink reports where it leads, as an
    /// absolute path inside the container.
    pub fn stat(&self, path: &str) -> std::io::Result<PathStat> {
        let (st, _) = self.stat_at(path)?;
        let mut link_target = String::new();
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            link_target = self.link_target(path)?;
        }
        Ok(PathStat {
            name: base_name(path),
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime: rfc3339_nano(st.st_mtime, st.st_mtime_nsec as u32),
            link_target,
        })
    }

    /// Follow a chain of symlinks lexically, inside the root.
    fn link_target(&self, path: &str) -> std::io::Result<String> {
        let mut current: Vec<String> = components(path).iter().map(|s| s.to_string()).collect();
        for _ in 0..40 {
            let here = clean_abs(&current.iter().map(String::as_str).collect::<Vec<_>>());
            // A dangling link reports where it points.
            let Ok((dir, Some(name))) = self.parent(&here) else { return Ok(here) };
            match rustix::fs::readlinkat(&dir, name.as_str(), Vec::new()) {
                Ok(target) => {
                    let target = target.to_string_lossy().into_owned();
                    current.pop();
                    if target.starts_with('/') {
                        current.clear();
                    }
                    current.extend(target.split('/').map(str::to_string));
                    let cleaned = clean_abs(&current.iter().map(String::as_str).collect::<Vec<_>>());
                    current = components(&cleaned).iter().map(|s| s.to_string()).collect();
                }
                Err(_) => return Ok(here),
            }
        }
        Err(std::io::Error::from_raw_os_error(libc::ELOOP))
    }

    /// The tar of `path` as dockerd makes it, written to `out`.
    pub fn archive(&self, path: &str, out: impl Write) -> std::io::Result<()> {
        let (st, fd) = self.stat_at(path)?;
        let mut tar = Tar { builder: tar::Builder::new(out), links: HashMap::new() };
        let name = base_name(path);
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let dir = match fd {
                Some(fd) => fd,
                None => self.open(path, false)?,
            };
            tar.walk_dir(&dir, &name, &st)?;
        } else {
            let (dir, last) = self.parent(path)?;
            tar.entry(&dir, last.as_deref().unwrap_or("."), &name, &st)?;
        }
        tar.builder.into_inner()?.flush()
    }

    /// The whole filesystem as `docker export` gives it: names relative to
    /// the root, no leading `./`.
    pub fn export(&self, out: impl Write) -> std::io::Result<()> {
        let st = rustix::fs::fstat(&self.fd).map_err(io_err)?;
        let mut tar = Tar { builder: tar::Builder::new(out), links: HashMap::new() };
        tar.walk_children(self.fd(), "", &st)?;
        tar.builder.into_inner()?.flush()
    }
}

struct Tar<W: Write> {
    builder: tar::Builder<W>,
    /// (dev, inode) of files with several links → the first name written.
    links: HashMap<(u64, u64), String>,
}

fn header_for(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// The extended attribute dockerd puts in its tars (moby's
/// `ReadSecurityXattrToTarHeader`): file capabilities, read through a
/// handle so nothing is followed.
const CAPABILITY: &str = "security.capability";

fn capability(fd: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    let n = rustix::fs::getxattr(format!("/proc/self/fd/{}", fd.as_raw_fd()), CAPABILITY, &mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// Write `h` named `name` exactly (tar-rs would drop a leading `./`),
/// with GNU long-name records for names past 100 bytes and a PAX record
/// for a file capability.
fn append<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    link: Option<&str>,
    cap: Option<&[u8]>,
    data: impl std::io::Read,
) -> std::io::Result<()> {
    fn long<W: Write>(b: &mut tar::Builder<W>, kind: tar::EntryType, value: &str) -> std::io::Result<()> {
        let mut l = tar::Header::new_gnu();
        l.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        l.set_mode(0o644);
        l.set_entry_type(kind);
        l.set_size(value.len() as u64 + 1);
        l.set_cksum();
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        b.append(&l, &bytes[..])
    }
    if let Some(link) = link {
        if link.len() > 100 {
            long(b, tar::EntryType::new(b'K'), link)?;
        }
        let n = link.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&link.as_bytes()[..n]);
    }
    if name.len() > 100 {
        long(b, tar::EntryType::new(b'L'), name)?;
    }
    if let Some(cap) = cap {
        b.append_pax_extensions([("SCHILY.xattr.security.capability", cap)])?;
    }
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name.as_bytes()[..n]);
    h.set_cksum();
    b.append(h, data)
}

impl<W: Write> Tar<W> {
    fn walk_dir(&mut self, dir: &OwnedFd, name: &str, st: &Stat) -> std::io::Result<()> {
        let mut h = header_for(st, tar::EntryType::Directory);
        append(&mut self.builder, &mut h, &format!("{name}/"), None, capability(dir).as_deref(), std::io::empty())?;
        self.walk_children(dir, name, st)
    }

    fn walk_children(&mut self, dir: &OwnedFd, name: &str, _st: &Stat) -> std::io::Result<()> {
        let readable = rustix::fs::openat(dir, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io_err)?;
        let mut names: Vec<String> = Vec::new();
        for entry in Dir::read_from(&readable).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let n = entry.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        names.sort();
        for child in names {
            let st = match rustix::fs::statat(dir, child.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Gone since the listing.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(io_err(e)),
            };
            let full = if name.is_empty() { child.clone() } else { format!("{name}/{child}") };
            self.entry(dir, &child, &full, &st)?;
        }
        Ok(())
    }

    /// One entry `child` of `dir`, named `full` in the tar.
    fn entry(&mut self, dir: &OwnedFd, child: &str, full: &str, st: &Stat) -> std::io::Result<()> {
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let sub = rustix::fs::openat(dir, child, OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                    .map_err(io_err)?;
                self.walk_dir(&sub, full, st)
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        let mut h = header_for(st, tar::EntryType::Link);
                        let first = first.clone();
                        return append(&mut self.builder, &mut h, full, Some(&first), None, std::io::empty());
                    }
                    self.links.insert(key, full.to_string());
                }
                let file = rustix::fs::openat(dir, child, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(io_err)?;
                let cap = capability(&file);
                let mut file = std::fs::File::from(file);
                // The size at open: a file growing meanwhile is cut there.
                let size = file.metadata()?.len();
                let mut h = header_for(st, tar::EntryType::Regular);
                h.set_size(size);
                append(&mut self.builder, &mut h, full, None, cap.as_deref(), std::io::Read::take(&mut file, size))
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, child, Vec::new()).map_err(io_err)?;
                let mut h = header_for(st, tar::EntryType::Symlink);
                append(&mut self.builder, &mut h, full, Some(target.to_string_lossy().as_ref()), None, std::io::empty())
            }
            kind @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let entry = match kind {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header_for(st, entry);
                if kind != FileType::Fifo {
                    h.set_device_major(rustix::fs::major(st.st_rdev))?;
                    h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                let node = rustix::fs::openat(dir, child, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(io_err)?;
                append(&mut self.builder, &mut h, full, None, capability(&node).as_deref(), std::io::empty())
            }
            // Sockets have no tar form (Go's archive/tar skips them too).
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_times_as_go_writes_them() {
        assert_eq!(go_file_mode(0o040755), 2147484141);
        assert_eq!(go_file_mode(0o120777), 134218239);
        assert_eq!(go_file_mode(0o100644), 420);
        assert_eq!(rfc3339_nano(0, 500_000_000), "1970-01-01T00:00:00.5Z");
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(base_name("/d/."), ".");
        assert_eq!(base_name("/d/link/"), "link");
    }

    #[test]
    fn archives_a_directory_with_rebased_names_and_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        std::fs::write(dir.path().join("d/sub/f"), "hi\n").unwrap();
        std::fs::hard_link(dir.path().join("d/sub/f"), dir.path().join("d/hard")).unwrap();
        std::os::unix::fs::symlink("../etc/passwd", dir.path().join("d/rel")).unwrap();
        let root = Root { fd: rustix::fs::open(dir.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap() };
        let mut out = Vec::new();
        root.archive("/d", &mut out).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let names: Vec<String> = archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert_eq!(names, ["d/", "d/hard", "d/rel", "d/sub/", "d/sub/f"]);
        let mut out = Vec::new();
        root.archive("/d/.", &mut out).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let first = archive.entries().unwrap().next().unwrap().unwrap().path().unwrap().display().to_string();
        assert_eq!(first, "./");
        let long = format!("d/{}", "x".repeat(150));
        std::fs::write(dir.path().join(&long), "l").unwrap();
        let mut out = Vec::new();
        root.archive("/d", &mut out).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        assert!(archive.entries().unwrap().any(|e| e.unwrap().path().unwrap().display().to_string() == long));
        assert_eq!(root.stat("/d/rel").unwrap().link_target, "/etc/passwd");
        assert_eq!(root.stat("/d/sub/f").unwrap().size, 3);
    }
}
