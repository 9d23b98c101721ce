//! COPY and ADD: files from the context (or another stage's root) written
//! into a fresh snapshot's upper directory, owned by root or `--chown`,
//! with `--chmod`; ADD unpacks local tar archives. Source paths are
//! resolved inside their root (symlinks cannot lead out of it); what is
//! written is never reached through a symlink.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::context::Ignore;
use crate::services::ServiceError;

/// Where sources are read from.
pub struct SourceRoot<'a> {
    pub root: &'a Path,
    /// The context's `.dockerignore`; none for another stage.
    pub ignore: Option<&'a Ignore>,
}

/// One resolved source: its host path and the name it had.
#[derive(Debug, Clone)]
pub struct Source {
    pub host: PathBuf,
    pub rel: String,
    pub is_dir: bool,
}

pub struct CopyPlan {
    pub sources: Vec<Source>,
    /// Absolute destination inside the image.
    pub dest: String,
    /// The destination is a directory (ends with `/`, several sources, or
    /// a directory in the image already).
    pub dest_is_dir: bool,
    pub owner: (u32, u32),
    pub chmod: Option<u32>,
    /// ADD: unpack local tar archives instead of copying them.
    pub extract: bool,
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidParameter(message.into())
}

fn io(what: &str, e: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!("{what}: {e}"))
}

/// Resolve `path` inside `root` as if `root` were `/`, following symlinks
/// without leaving it (moby's `FollowSymlinkInScope`).
pub fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(parts.join("/")).join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && links < 255 => {
                links += 1;
                let target = std::fs::read_link(&candidate).unwrap_or_default();
                let target = target.to_string_lossy().to_string();
                if target.starts_with('/') {
                    parts.clear();
                }
                for p in target.split('/').rev() {
                    pending.push(p.to_string());
                }
            }
            _ => parts.push(part),
        }
    }
    root.join(parts.join("/"))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expand one source (maybe with wildcards) under `src`.
pub fn expand_source(src: &SourceRoot<'_>, pattern: &str, keyword: &str) -> Result<Vec<Source>, ServiceError> {
    let clean = crate::services::dockerfile::clean_path(&format!("/{pattern}"));
    let rel = clean.trim_start_matches('/').to_string();
    let excluded = |r: &str| src.ignore.is_some_and(|i| !r.is_empty() && i.excluded(r));
    if !has_wildcard(&rel) {
        let host = resolve_in_root(src.root, &rel);
        let meta = std::fs::metadata(&host);
        return match meta {
            Ok(m) if !excluded(&rel) => Ok(vec![Source { host, rel, is_dir: m.is_dir() }]),
            _ => Err(bad(format!(
                "{keyword} failed: file not found in build context or excluded by .dockerignore: stat {}: file does not exist",
                if rel.is_empty() { "." } else { &rel }
            ))),
        };
    }
    let mut found = vec![(String::new(), src.root.to_path_buf())];
    for part in rel.split('/') {
        let mut next = Vec::new();
        for (r, dir) in found {
            if !has_wildcard(part) {
                let p = dir.join(part);
                if std::fs::symlink_metadata(&p).is_ok() {
                    next.push((join_rel(&r, part), p));
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut names: Vec<String> = entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
            names.sort();
            for name in names {
                if crate::services::images::glob_match(part, &name) {
                    next.push((join_rel(&r, &name), dir.join(&name)));
                }
            }
        }
        found = next;
    }
    let sources: Vec<Source> = found
        .into_iter()
        .filter(|(r, _)| !excluded(r))
        .filter_map(|(r, host)| {
            let m = std::fs::metadata(&host).ok()?;
            Some(Source { host, rel: r, is_dir: m.is_dir() })
        })
        .collect();
    if sources.is_empty() {
        return Err(bad(format!("{keyword} failed: no source files were specified")));
    }
    Ok(sources)
}

fn join_rel(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// A checksum of the sources' names, modes and contents: the cache key of
/// a COPY/ADD (`file:<hex>` for one file, `dir:<hex>` otherwise).
pub fn checksum(sources: &[Source], ignore: Option<&Ignore>) -> Result<String, ServiceError> {
    let mut h = Sha256::new();
    for s in sources {
        h.update(s.rel.as_bytes());
        h.update([0]);
        hash_tree(&mut h, &s.host, &s.rel, ignore).map_err(|e| io("reading the build context", e))?;
    }
    let kind = if sources.len() == 1 && !sources[0].is_dir { "file" } else { "dir" };
    Ok(format!("{kind}:{}", hex::encode(h.finalize())))
}

fn hash_tree(h: &mut Sha256, path: &Path, rel: &str, ignore: Option<&Ignore>) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(path)?;
    h.update(format!("{rel}\0{:o}\0", m.mode()).as_bytes());
    if m.file_type().is_symlink() {
        h.update(std::fs::read_link(path)?.to_string_lossy().as_bytes());
    } else if m.is_file() {
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else if m.is_dir() {
        for (name, child_rel) in children(path, rel, ignore)? {
            hash_tree(h, &path.join(&name), &child_rel, ignore)?;
        }
    }
    Ok(())
}

/// A directory's entries, sorted, minus what `.dockerignore` excludes.
fn children(dir: &Path, rel: &str, ignore: Option<&Ignore>) -> std::io::Result<Vec<(String, String)>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let r = join_rel(rel, &n);
            (n, r)
        })
        .filter(|(_, r)| ignore.is_none_or(|i| !i.excluded(r) || i.may_include_below(r)))
        .collect())
}

/// The image's view of one path, from its layer directories (topmost
/// first): whether it is a directory, and its metadata.
fn lower_meta(lowers: &[PathBuf], path: &str) -> Option<std::fs::Metadata> {
    let rel = path.trim_start_matches('/');
    lowers.iter().find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
}

/// Make the directories of `path` (absolute in the image) in `upper`; new
/// ones copy the image's own metadata when it has them, else `owner` and 0755.
fn ensure_dirs(upper: &Path, lowers: &[PathBuf], path: &str, owner: (u32, u32)) -> Result<PathBuf, ServiceError> {
    let mut host = upper.to_path_buf();
    let mut image_path = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        image_path.push('/');
        image_path.push_str(part);
        host.push(part);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(bad(format!("cannot copy to {image_path}: not a directory")));
            }
            Err(_) => {}
        }
        let (mode, uid, gid) = match lower_meta(lowers, &image_path) {
            Some(m) if m.is_dir() => (m.mode() & 0o7777, m.uid(), m.gid()),
            Some(m) if m.file_type().is_symlink() => {
                return Err(ServiceError::NotImplemented(format!(
                    "copying through the symbolic link {image_path} in the image is not supported by berthd yet"
                )))
            }
            Some(_) => return Err(bad(format!("cannot copy to {image_path}: not a directory"))),
            None => (0o755, owner.0, owner.1),
        };
        std::fs::create_dir(&host).map_err(|e| io("creating a directory", e))?;
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode)).map_err(|e| io("setting a mode", e))?;
        std::os::unix::fs::lchown(&host, Some(uid), Some(gid)).map_err(|e| io("setting an owner", e))?;
    }
    Ok(host)
}

/// Run the plan against a snapshot's upper directory and the image's
/// layer directories below it.
pub fn apply(plan: &CopyPlan, upper: &Path, lowers: &[PathBuf], ignore: Option<&Ignore>) -> Result<(), ServiceError> {
    for s in &plan.sources {
        if s.is_dir {
            let dir = ensure_dirs(upper, lowers, &plan.dest, plan.owner)?;
            copy_children(&s.host, &dir, &s.rel, plan, ignore)?;
            continue;
        }
        if plan.extract && is_tar(&s.host) {
            let dir = ensure_dirs(upper, lowers, &plan.dest, plan.owner)?;
            extract(&s.host, &dir)?;
            continue;
        }
        let (parent, name) = if plan.dest_is_dir {
            (plan.dest.clone(), s.host.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default())
        } else {
            let (p, n) = plan.dest.rsplit_once('/').unwrap_or(("", &plan.dest));
            (p.to_string(), n.to_string())
        };
        let dir = ensure_dirs(upper, lowers, &parent, plan.owner)?;
        copy_one(&s.host, &dir.join(name), plan)?;
    }
    Ok(())
}

fn copy_children(src: &Path, dst: &Path, rel: &str, plan: &CopyPlan, ignore: Option<&Ignore>) -> Result<(), ServiceError> {
    for (name, child_rel) in children(src, rel, ignore).map_err(|e| io("reading the build context", e))? {
        let from = src.join(&name);
        let to = dst.join(&name);
        if ignore.is_some_and(|i| i.excluded(&child_rel)) {
            // Excluded, but an exception may want something below it.
            if std::fs::symlink_metadata(&from).map(|m| m.is_dir()).unwrap_or(false) {
                copy_dir_node(&from, &to, plan)?;
                copy_children(&from, &to, &child_rel, plan, ignore)?;
            }
            continue;
        }
        let m = std::fs::symlink_metadata(&from).map_err(|e| io("reading the build context", e))?;
        if m.is_dir() {
            copy_dir_node(&from, &to, plan)?;
            copy_children(&from, &to, &child_rel, plan, ignore)?;
        } else {
            copy_one(&from, &to, plan)?;
        }
    }
    Ok(())
}

fn copy_dir_node(from: &Path, to: &Path, plan: &CopyPlan) -> Result<(), ServiceError> {
    match std::fs::symlink_metadata(to) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            std::fs::remove_file(to).map_err(|e| io("replacing a file", e))?;
            std::fs::create_dir(to).map_err(|e| io("creating a directory", e))?;
        }
        Err(_) => std::fs::create_dir(to).map_err(|e| io("creating a directory", e))?,
    }
    let mode = plan.chmod.unwrap_or_else(|| std::fs::metadata(from).map(|m| m.mode() & 0o7777).unwrap_or(0o755));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(|e| io("setting a mode", e))?;
    std::os::unix::fs::lchown(to, Some(plan.owner.0), Some(plan.owner.1)).map_err(|e| io("setting an owner", e))
}

fn copy_one(from: &Path, to: &Path, plan: &CopyPlan) -> Result<(), ServiceError> {
    let m = std::fs::symlink_metadata(from).map_err(|e| io("reading the build context", e))?;
    if let Ok(existing) = std::fs::symlink_metadata(to) {
        if existing.is_dir() {
            std::fs::remove_dir_all(to).map_err(|e| io("replacing a directory", e))?;
        } else {
            std::fs::remove_file(to).map_err(|e| io("replacing a file", e))?;
        }
    }
    if m.file_type().is_symlink() {
        let target = std::fs::read_link(from).map_err(|e| io("reading a link", e))?;
        std::os::unix::fs::symlink(target, to).map_err(|e| io("creating a link", e))?;
    } else if m.is_file() {
        std::fs::copy(from, to).map_err(|e| io("copying a file", e))?;
        let mode = plan.chmod.unwrap_or(m.mode() & 0o7777);
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(|e| io("setting a mode", e))?;
    } else {
        // Sockets, FIFOs and devices are not copied.
        return Ok(());
    }
    std::os::unix::fs::lchown(to, Some(plan.owner.0), Some(plan.owner.1)).map_err(|e| io("setting an owner", e))
}

fn open_maybe_gzip(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    let f = std::fs::File::open(path)?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] { Box::new(flate2::read::GzDecoder::new(f)) } else { Box::new(f) })
}

/// A tar (maybe gzipped): `ustar` at offset 257 of the first block.
fn is_tar(path: &Path) -> bool {
    let Ok(mut r) = open_maybe_gzip(path) else { return false };
    let mut block = [0u8; 512];
    let mut read = 0;
    while read < 512 {
        match r.read(&mut block[read..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    &block[257..262] == b"ustar"
}

fn extract(archive: &Path, dir: &Path) -> Result<(), ServiceError> {
    let r = open_maybe_gzip(archive).map_err(|e| io("opening an archive", e))?;
    let mut tar = tar::Archive::new(crate::backends::tar_guard::TarGuard::new(r));
    tar.set_preserve_permissions(true);
    tar.set_preserve_ownerships(true);
    tar.set_overwrite(true);
    tar.unpack(dir).map_err(|e| bad(format!("failed to extract {}: {}", archive.display(), super::context::with_causes(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../real", dir.path().join("rel")).unwrap();
        assert_eq!(resolve_in_root(dir.path(), "abs/passwd"), dir.path().join("etc/passwd"));
        assert_eq!(resolve_in_root(dir.path(), "rel/x"), dir.path().join("real/x"));
        assert_eq!(resolve_in_root(dir.path(), "../../x"), dir.path().join("x"));
    }
}
