//! Writing a tar into a container root (`PUT /containers/{id}/archive`),
//! with dockerd's `Untar` rules: parents made as needed, an existing
//! directory merged with a directory entry and anything else replaced,
//! ownership, modes and times from the headers, directory times last.
//! Every path is resolved inside the root, and names that climb out of
//! the destination are refused.

use std::io::{BufRead, Read};
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::{components, io_err, Root};

#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner for every entry (`copyUIDGID` with a container user); else the
    /// headers' own.
    pub chown: Option<(u32, u32)>,
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

/// A malformed tar is the client's fault: InvalidInput (a 400), unless
/// reading the client's stream itself failed.
fn bad_tar(e: std::io::Error) -> std::io::Error {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => e,
        _ => invalid(e.to_string()),
    }
}

/// The entry's path below the destination, or `None` for the destination
/// itself; `..` that climbs above it is refused.
fn entry_path(name: &str, dest: &str) -> std::io::Result<Option<Vec<String>>> {
    let mut out: Vec<String> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(invalid(format!("{name:?} is outside of {dest:?}")));
                }
            }
            other => out.push(other.to_string()),
        }
    }
    Ok(if out.is_empty() { None } else { Some(out) })
}

impl Root {
    /// Unpack `input` (a tar, gzip-compressed or not) into the directory
    /// `dest` (a final symlink followed).
    pub fn extract(&self, dest: &str, input: impl Read, opts: ExtractOptions) -> std::io::Result<()> {
        let mut input = std::io::BufReader::with_capacity(COPY_BUFFER, input);
        let gzip = input.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(input)) } else { Box::new(input) };
        let dest_fd = self.open(dest, true)?;
        if FileType::from_raw_mode(rustix::fs::fstat(&dest_fd).map_err(io_err)?.st_mode) != FileType::Directory {
            return Err(invalid("extraction point is not a directory".into()));
        }
        // Resolve the destination once: entries go below what it is now.
        let base = format!("/{}", components(dest).join("/"));
        let mut archive = tar::Archive::new(crate::backends::tar_guard::TarGuard::new(reader));
        let mut dirs: Vec<(String, Timespec)> = Vec::new();
        let mut buffer = vec![0u8; COPY_BUFFER];
        for entry in archive.entries().map_err(bad_tar)? {
            let mut entry = entry.map_err(bad_tar)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(parts) = entry_path(&name, dest)? else { continue };
            let header = entry.header().clone();
            let kind = header.entry_type();
            if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink) {
                continue;
            }
            let pax = Pax::of(&mut entry, &header)?;
            let rel = parts.join("/");
            let full = format!("{base}/{rel}");
            let parent_path = format!("{base}/{}", parts[..parts.len() - 1].join("/"));
            let dir = self.mkdir_all(&parent_path)?;
            let leaf = parts[parts.len() - 1].as_str();
            let is_dir = kind == tar::EntryType::Directory;
            match rustix::fs::statat(&dir, leaf, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    let existing_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                    if opts.no_overwrite_dir_non_dir && existing_dir && !is_dir {
                        return Err(invalid(format!("cannot overwrite directory {full:?} with non-directory {dest:?}")));
                    }
                    if opts.no_overwrite_dir_non_dir && !existing_dir && is_dir {
                        return Err(invalid(format!("cannot overwrite non-directory {full:?} with directory {dest:?}")));
                    }
                    if !(existing_dir && is_dir) {
                        remove_all(&dir, leaf)?;
                    }
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(io_err(e)),
            }
            let mode = Mode::from_raw_mode(header.mode().map_err(bad_tar)? & 0o7777);
            match kind {
                tar::EntryType::Directory => match rustix::fs::mkdirat(&dir, leaf, mode) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_err(e)),
                },
                tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                    let fd = rustix::fs::openat(&dir, leaf, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode)
                        .map_err(io_err)?;
                    copy(&mut entry, &mut std::fs::File::from(fd), &mut buffer)?;
                }
                tar::EntryType::Symlink => {
                    let target = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                    rustix::fs::symlinkat(target.as_str(), &dir, leaf).map_err(io_err)?;
                }
                tar::EntryType::Link => {
                    let target = entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                    let Some(target_parts) = entry_path(&target, dest)? else {
                        return Err(invalid(format!("invalid hardlink {name:?} -> {target:?}")));
                    };
                    let (tdir, tname) = self.parent(&format!("{base}/{}", target_parts.join("/")))?;
                    let tname = tname.unwrap_or_default();
                    rustix::fs::linkat(&tdir, tname.as_str(), &dir, leaf, AtFlags::empty()).map_err(io_err)?;
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    let file_type = match kind {
                        tar::EntryType::Char => FileType::CharacterDevice,
                        tar::EntryType::Block => FileType::BlockDevice,
                        _ => FileType::Fifo,
                    };
                    let dev = rustix::fs::makedev(header.device_major().map_err(bad_tar)?.unwrap_or(0), header.device_minor().map_err(bad_tar)?.unwrap_or(0));
                    rustix::fs::mknodat(&dir, leaf, file_type, mode, dev).map_err(io_err)?;
                }
                // Other kinds (PAX extensions already applied, sparse
                // variants) carry nothing to create.
                _ => continue,
            }
            let (uid, gid) = match opts.chown {
                Some(ids) => ids,
                None => (header.uid().map_err(bad_tar)? as u32, header.gid().map_err(bad_tar)? as u32),
            };
            chown(&dir, leaf, uid, gid)?;
            if kind != tar::EntryType::Symlink && kind != tar::EntryType::Link {
                // chmod and xattrs after chown: chown clears set-id bits
                // and file capabilities.
                set_mode(&dir, leaf, mode)?;
                set_xattrs(&dir, leaf, &pax.xattrs)?;
            }
            if is_dir {
                dirs.push((full, pax.mtime));
            } else if kind != tar::EntryType::Link {
                set_times(&dir, leaf, pax.mtime)?;
            }
        }
        // Directory times last: creating entries in them changed their mtime.
        for (path, mtime) in dirs.iter().rev() {
            let (dir, leaf) = self.parent(path)?;
            set_times(&dir, leaf.as_deref().unwrap_or("."), *mtime)?;
        }
        // Read what follows the end marker, so the client is not cut off
        // while it still writes padding.
        std::io::copy(&mut archive.into_inner().into_inner(), &mut std::io::sink())?;
        Ok(())
    }
}

/// Reads and writes in large pieces: a 200 MB copy in 8 KiB ones (what
/// `std::io::copy` uses here) spends its time in syscalls and in waking
/// the request body for every piece.
const COPY_BUFFER: usize = 256 * 1024;

fn copy(from: &mut impl Read, to: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<()> {
    use std::io::Write;
    loop {
        // Fill the buffer as far as the entry goes before writing.
        let mut filled = 0;
        while filled < buffer.len() {
            match from.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..filled])?;
    }
}

fn chown(dir: &OwnedFd, leaf: &str, uid: u32, gid: u32) -> std::io::Result<()> {
    let (uid, gid) = (rustix::fs::Uid::from_raw(uid), rustix::fs::Gid::from_raw(gid));
    rustix::fs::chownat(dir, leaf, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW).map_err(io_err)
}

/// chmod through a handle opened without following symlinks, so a swapped
/// entry cannot redirect it.
fn set_mode(dir: &OwnedFd, leaf: &str, mode: Mode) -> std::io::Result<()> {
    let fd = rustix::fs::openat(dir, leaf, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(io_err)?;
    rustix::fs::chmodat(rustix::fs::CWD, format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)), mode, AtFlags::empty())
        .map_err(io_err)
}

/// What an entry's PAX records add to its header: the modification time
/// to the nanosecond and extended attributes (`SCHILY.xattr.*`).
struct Pax {
    mtime: Timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Pax {
    fn of<R: Read>(entry: &mut tar::Entry<'_, R>, header: &tar::Header) -> std::io::Result<Pax> {
        let mut pax = Pax { mtime: Timespec { tv_sec: header.mtime().unwrap_or(0) as i64, tv_nsec: 0 }, xattrs: Vec::new() };
        let Some(records) = entry.pax_extensions().map_err(bad_tar)? else { return Ok(pax) };
        for record in records {
            let record = record.map_err(bad_tar)?;
            let Ok(key) = record.key() else { continue };
            if key == "mtime" {
                if let Some(t) = record.value().ok().and_then(parse_pax_time) {
                    pax.mtime = t;
                }
            } else if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                pax.xattrs.push((name.to_string(), record.value_bytes().to_vec()));
            }
        }
        Ok(pax)
    }
}

/// A PAX time, `seconds[.fraction]` (Go's parsePAXTime).
fn parse_pax_time(value: &str) -> Option<Timespec> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let tv_nsec: i64 = digits.parse().ok()?;
    if secs.starts_with('-') && tv_nsec != 0 {
        // "-1.5" is half a second before -1.
        // checked: "-9223372036854775808.5" overflowed (a panic with debug
        // assertions); Go's parsePAXTime refuses it as out of range too.
        return Some(Timespec { tv_sec: tv_sec.checked_sub(1)?, tv_nsec: (1_000_000_000 - tv_nsec) as _ });
    }
    Some(Timespec { tv_sec, tv_nsec: tv_nsec as _ })
}

/// Set the entry's extended attributes through a handle (nothing is
/// followed); a filesystem or a kernel that refuses one is skipped, as
/// dockerd does for ENOTSUP and EPERM.
fn set_xattrs(dir: &OwnedFd, leaf: &str, xattrs: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let fd = rustix::fs::openat(dir, leaf, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).map_err(io_err)?;
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    for (name, value) in xattrs {
        match rustix::fs::setxattr(path.as_str(), name.as_str(), value, rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP | Errno::PERM) => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(())
}

fn set_times(dir: &OwnedFd, leaf: &str, mtime: Timespec) -> std::io::Result<()> {
    let times = Timestamps { last_access: mtime, last_modification: mtime };
    rustix::fs::utimensat(dir, leaf, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(io_err)
}

/// Remove `leaf` of `dir` and, for a directory, everything below it.
fn remove_all(dir: &OwnedFd, leaf: &str) -> std::io::Result<()> {
    match rustix::fs::unlinkat(dir, leaf, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(io_err(e)),
    }
    let sub = rustix::fs::openat(dir, leaf, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
        .map_err(io_err)?;
    let names: Vec<String> = rustix::fs::Dir::read_from(&sub)
        .map_err(io_err)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    for n in names {
        remove_all(&sub, &n)?;
    }
    rustix::fs::unlinkat(dir, leaf, AtFlags::REMOVEDIR).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = |s| parse_pax_time(s).map(|t| (t.tv_sec, t.tv_nsec as i64));
        assert_eq!(t("1577934245.123456789"), Some((1577934245, 123456789)));
        assert_eq!(t("1577934245.5"), Some((1577934245, 500000000)));
        assert_eq!(t("1577934245"), Some((1577934245, 0)));
        assert_eq!(t("-1.5"), Some((-2, 500000000)));
        assert_eq!(t("1.x"), None);
        // Found by reading: the borrow of a second below i64::MIN overflowed.
        assert_eq!(t("-9223372036854775808.5"), None);
    }

    fn root(dir: &std::path::Path) -> Root {
        Root { fd: rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap() }
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory { 0o755 } else { 0o640 });
            h.set_uid(1234);
            h.set_gid(4321);
            h.set_mtime(1_000_000);
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if *kind == tar::EntryType::Symlink || *kind == tar::EntryType::Link {
                h.as_old_mut().linkname[..data.len()].copy_from_slice(data.as_bytes());
                h.set_size(0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            } else {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn extracts_with_owners_modes_and_links() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dst")).unwrap();
        let data = tar_of(&[
            ("a/", tar::EntryType::Directory, ""),
            ("a/f", tar::EntryType::Regular, "hello"),
            ("a/l", tar::EntryType::Symlink, "/etc/passwd"),
            ("a/h", tar::EntryType::Link, "a/f"),
        ]);
        root(dir.path()).extract("/dst", &data[..], ExtractOptions::default()).unwrap();
        let f = dir.path().join("dst/a/f");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "hello");
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777, m.mtime(), m.nlink()), (1234, 4321, 0o640, 1_000_000, 2));
        assert_eq!(std::fs::read_link(dir.path().join("dst/a/l")).unwrap().display().to_string(), "/etc/passwd");
        assert_eq!(std::fs::metadata(dir.path().join("dst/a")).unwrap().mtime(), 1_000_000);
    }

    #[test]
    fn hostile_entries_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let rootdir = dir.path().join("root");
        std::fs::create_dir_all(rootdir.join("dst")).unwrap();
        // A symlink in the container pointing at the host's /tmp-like path.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, rootdir.join("dst/esc")).unwrap();
        let climb = tar_of(&[("../../x", tar::EntryType::Regular, "no")]);
        let err = root(&rootdir).extract("/dst", &climb[..], ExtractOptions::default()).unwrap_err();
        assert!(err.to_string().contains("is outside of"), "{err}");
        // Through a symlink: resolved inside the root, so nothing lands outside.
        let through = tar_of(&[("esc/owned", tar::EntryType::Regular, "no")]);
        let _ = root(&rootdir).extract("/dst", &through[..], ExtractOptions::default());
        assert!(!outside.join("owned").exists());
        // A symlink entry followed by a file through it.
        let pair = tar_of(&[("s", tar::EntryType::Symlink, "/"), ("s/etc-owned", tar::EntryType::Regular, "no")]);
        let _ = root(&rootdir).extract("/dst", &pair[..], ExtractOptions::default());
        assert!(!std::path::Path::new("/etc-owned").exists());
        assert!(rootdir.join("etc-owned").exists());
        let no_overwrite = tar_of(&[("dirx", tar::EntryType::Regular, "f")]);
        std::fs::create_dir(rootdir.join("dst/dirx")).unwrap();
        let opts = ExtractOptions { no_overwrite_dir_non_dir: true, ..Default::default() };
        assert!(root(&rootdir).extract("/dst", &no_overwrite[..], opts).unwrap_err().to_string().contains("cannot overwrite directory"));
    }
}
