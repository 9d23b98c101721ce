//! A container's filesystem opened so that every path is resolved inside
//! it, chroot-style, by the kernel (`openat2` with `RESOLVE_IN_ROOT`): a
//! symlink or `..` in the container or in a tar can never reach outside,
//! even while the container races us. Used by `docker cp`, export and diff.
//!
//! Running containers are reached through `/proc/<pid>/root`, which shows
//! their mounts and volumes. Stopped ones are mounted from their snapshot,
//! with their volumes and binds, in a private mount namespace that belongs
//! to one thread: the mounts disappear with the thread, even if berthd dies.
//!
//! API: [`open`] (and [`open_unmount_later`]) runs a closure with a
//! [`Root`] on a thread of its own;
//! `Root::stat`/`archive` (tar out, `archive.rs`), `Root::extract` (tar in,
//! `extract.rs`); [`upper_dir`] and `changes.rs` read a snapshot's own layer.

mod archive;
mod changes;
mod extract;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::backends::containerd::Mount;

pub use archive::PathStat;
pub use changes::{changes, Change, ChangeKind};
pub use extract::ExtractOptions;

/// A host path mounted into the container (a volume's directory or a bind).
#[derive(Debug, Clone)]
pub struct BindMount {
    pub source: PathBuf,
    /// Only this path below `source` (a volume's subpath), resolved
    /// without leaving it.
    pub subpath: String,
    pub destination: String,
    pub read_only: bool,
}

/// Where a container's filesystem is found.
#[derive(Debug, Clone)]
pub enum Source {
    /// A live task: its root as its own mount namespace shows it.
    Process(u32),
    /// The container's snapshot (containerd's mounts), mounted at
    /// `scratch` in a private namespace with `binds` over it; read-only
    /// unless `writable`.
    Snapshot { mounts: Vec<Mount>, binds: Vec<BindMount>, scratch: PathBuf, writable: bool },
}

/// An open container root.
pub struct Root {
    fd: OwnedFd,
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

fn io_err(e: Errno) -> std::io::Error {
    e.into()
}

/// Run `f` on a thread of its own with the container's root open; the
/// answer is `f`'s. The thread ends, and any mounts with it, when `f`
/// returns; a detached mount is closed before the answer, for callers
/// that use the snapshot next.
pub async fn open<R, F>(source: Source, f: F) -> std::io::Result<R>
where
    R: Send + 'static,
    F: FnOnce(&Root) -> std::io::Result<R> + Send + 'static,
{
    run(source, f, false).await
}

/// [`open`], answering as soon as `f` returns and unmounting after: a
/// writable overlay's unmount syncs its whole upper filesystem (tens of
/// ms after a `docker cp` of 20 MiB in), which no API answer waits for.
pub async fn open_unmount_later<R, F>(source: Source, f: F) -> std::io::Result<R>
where
    R: Send + 'static,
    F: FnOnce(&Root) -> std::io::Result<R> + Send + 'static,
{
    run(source, f, true).await
}

async fn run<R, F>(source: Source, f: F, answer_first: bool) -> std::io::Result<R>
where
    R: Send + 'static,
    F: FnOnce(&Root) -> std::io::Result<R> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let scratch = match &source {
        Source::Snapshot { scratch, .. } => Some(scratch.clone()),
        Source::Process(_) => None,
    };
    std::thread::Builder::new()
        .name("rootfs".into())
        .spawn(move || {
            let (result, root) = match enter(&source) {
                Ok(root) => (f(&root), Some(root)),
                Err(e) => (Err(e), None),
            };
            if answer_first {
                let _ = tx.send(result);
                drop(root);
            } else {
                drop(root);
                let _ = tx.send(result);
            }
        })?;
    let result = rx.await.unwrap_or_else(|_| Err(std::io::Error::other("container filesystem thread ended")));
    if let Some(dir) = scratch {
        // Mounted only inside the thread's namespace: here it is empty.
        let _ = std::fs::remove_dir(dir);
    }
    result
}

fn enter(source: &Source) -> std::io::Result<Root> {
    match source {
        Source::Process(pid) => {
            let fd = rustix::fs::open(format!("/proc/{pid}/root"), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(io_err)?;
            Ok(Root { fd })
        }
        Source::Snapshot { mounts, binds, scratch, writable } => {
            // Nothing to bind over it: a detached mount needs no namespace.
            if binds.is_empty() {
                if let Some(fd) = crate::backends::mount::detached_snapshot(mounts, *writable) {
                    return Ok(Root { fd });
                }
            }
            mount_snapshot(mounts, binds, scratch, *writable)
        }
    }
}

fn mount_snapshot(mounts: &[Mount], binds: &[BindMount], scratch: &Path, writable: bool) -> std::io::Result<Root> {
    use rustix::mount::{mount_bind_recursive, mount_change, mount_remount, MountFlags, MountPropagationFlags};
    use rustix::thread::{unshare_unsafe, UnshareFlags};
    std::fs::create_dir_all(scratch)?;
    // SAFETY: FILES is not unshared, so file descriptors stay shared with
    // the other threads; only this thread's mount namespace and fs context
    // change, and the thread ends with the operation.
    unsafe { unshare_unsafe(UnshareFlags::NEWNS | UnshareFlags::FS) }.map_err(io_err)?;
    mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE).map_err(io_err)?;
    crate::backends::mount::mount_snapshot(mounts, scratch, writable)?;
    let root = Root { fd: rustix::fs::open(scratch, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io_err)? };
    let mut sorted: Vec<&BindMount> = binds.iter().collect();
    sorted.sort_by_key(|b| b.destination.split('/').filter(|c| !c.is_empty()).count());
    for b in sorted {
        // A subpath is bound through a handle that cannot have left it.
        let held = match b.subpath.as_str() {
            "" => None,
            sub => Some(crate::backends::mount::open_beneath(&b.source, sub).map_err(|e| std::io::Error::other(e.to_string()))?),
        };
        let source = held.as_ref().map_or_else(|| b.source.clone(), |fd| PathBuf::from(proc_fd(fd)));
        let is_dir = std::fs::metadata(&source).map(|m| m.is_dir()).unwrap_or(true);
        let target = root.mountpoint(&b.destination, is_dir, writable)?;
        mount_bind_recursive(&source, proc_fd(&target)).map_err(io_err)?;
        if b.read_only || !writable {
            // Remount the new mount (reopened: the old handle is under it).
            let mounted = root.open(&b.destination, true)?;
            mount_remount(proc_fd(&mounted), MountFlags::BIND | MountFlags::RDONLY, "").map_err(io_err)?;
        }
    }
    Ok(root)
}

fn proc_fd(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The components of an absolute container path, without `.` and empty ones.
pub(crate) fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect()
}

/// The path relative to the root, `.` for the root itself.
fn relative(path: &str) -> String {
    let parts = components(path);
    if parts.is_empty() { ".".into() } else { parts.join("/") }
}

impl Root {
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Open `path` (inside the root) as an `O_PATH` handle, following a
    /// final symlink when `follow`.
    pub fn open(&self, path: &str, follow: bool) -> std::io::Result<OwnedFd> {
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        rustix::fs::openat2(self.fd.as_fd(), relative(path), flags, Mode::empty(), RESOLVE).map_err(io_err)
    }

    /// The directory holding `path`'s last component, and that component
    /// (`None` for the root).
    pub fn parent(&self, path: &str) -> std::io::Result<(OwnedFd, Option<String>)> {
        let mut parts = components(path);
        let name = parts.pop().map(str::to_string);
        let dir = rustix::fs::openat2(
            self.fd.as_fd(),
            if parts.is_empty() { ".".to_string() } else { parts.join("/") },
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(io_err)?;
        Ok((dir, name))
    }

    /// Make the directories of `path` that are missing (mode 0755), each
    /// resolved inside the root, and answer the last one.
    pub fn mkdir_all(&self, path: &str) -> std::io::Result<OwnedFd> {
        let parts = components(path);
        for i in 0..parts.len() {
            let prefix = parts[..=i].join("/");
            match rustix::fs::openat2(self.fd.as_fd(), &prefix, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
                Ok(_) => {}
                Err(Errno::NOENT) => {
                    let (dir, name) = self.parent(&prefix)?;
                    match rustix::fs::mkdirat(&dir, name.as_deref().unwrap_or("."), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err(e)),
                    }
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        rustix::fs::openat2(self.fd.as_fd(), relative(path), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), RESOLVE)
            .map_err(io_err)
    }

    /// Where a bind goes: the destination, made if missing (a directory,
    /// or an empty file for a file bind) when the snapshot is writable.
    fn mountpoint(&self, destination: &str, is_dir: bool, writable: bool) -> std::io::Result<OwnedFd> {
        match self.open(destination, true) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && writable => {}
            Err(e) => return Err(e),
        }
        if is_dir {
            return self.mkdir_all(destination);
        }
        self.make_file(destination)?;
        self.open(destination, false)
    }

    /// An empty file (mode 0755, as dockerd's mountpoints) at `path`
    /// unless something is there, with its missing parent directories.
    pub fn make_file(&self, path: &str) -> std::io::Result<()> {
        let (dir, name) = self.missing(path)?;
        let Some((dir, name)) = dir.zip(name) else { return Ok(()) };
        rustix::fs::openat(&dir, name.as_str(), OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::from_raw_mode(0o755))
            .map_err(io_err)?;
        Ok(())
    }

    /// A symlink at `path` to `target` unless something is there.
    pub fn make_symlink(&self, path: &str, target: &str) -> std::io::Result<()> {
        let (dir, name) = self.missing(path)?;
        let Some((dir, name)) = dir.zip(name) else { return Ok(()) };
        rustix::fs::symlinkat(target, &dir, name.as_str()).map_err(io_err)
    }

    /// For a `path` that does not resolve: its parent (made if missing)
    /// and last component; `None` when it exists.
    fn missing(&self, path: &str) -> std::io::Result<(Option<OwnedFd>, Option<String>)> {
        match self.open(path, true) {
            Ok(_) => return Ok((None, None)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut parts = components(path);
        let name = parts.pop().map(str::to_string);
        Ok((Some(self.mkdir_all(&parts.join("/"))?), name))
    }
}

/// The snapshot's own (upper) layer directory, from containerd's mounts.
pub fn upper_dir(mounts: &[Mount]) -> Option<PathBuf> {
    mounts.iter().find_map(|m| match m.kind.as_str() {
        "overlay" => m.options.iter().find_map(|o| o.strip_prefix("upperdir=")).map(PathBuf::from),
        "bind" => Some(PathBuf::from(&m.source)),
        _ => None,
    })
}

/// The lower (image) layer directories, top first.
pub fn lower_dirs(mounts: &[Mount]) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter(|m| m.kind == "overlay")
        .flat_map(|m| m.options.iter().filter_map(|o| o.strip_prefix("lowerdir=")))
        .flat_map(|l| l.split(':').map(PathBuf::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("escape")).unwrap();
        let root = Root { fd: rustix::fs::open(dir.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap() };
        // An absolute symlink and `..` stay inside.
        let fd = root.open("/escape/passwd", true).unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        assert_eq!(st.st_size, 6);
        assert!(root.open("/../../etc/passwd", true).is_ok());
        root.mkdir_all("/escape/new/deeper").unwrap();
        assert!(dir.path().join("etc/new/deeper").is_dir());
    }
}
