//! `docker cp`, `docker export` and `docker diff`: a container's filesystem
//! read and written through `backends::rootfs`, so every path is resolved
//! inside the container.
//!
//! Running containers are reached through their task's root, which shows
//! their volumes and binds as the process sees them (and is the only view
//! that stays right while the process changes its mounts). Stopped ones
//! get their snapshot mounted with their volumes and binds on a thread in
//! a private mount namespace. Export always reads the snapshot (no volumes,
//! no /proc), read-only, with the writable layer as the top lower layer so
//! a running container's overlay is not mounted twice.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use super::mounts::clean;
use super::record::Container;
use super::ContainerService;
use crate::backends::oci_spec::{parse_bind, Bind};
use crate::backends::rootfs::{self, BindMount, Change, ExtractOptions, PathStat, Source};
use crate::services::ServiceError;

/// Chunks of tar as they are made.
pub type TarStream = mpsc::Receiver<std::io::Result<Bytes>>;

/// `PUT /containers/{id}/archive` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractToDirOptions {
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

fn empty_path() -> ServiceError {
    // dockerd's text, missing space included.
    ServiceError::InvalidParameter("bad parameter: pathcannot be empty".into())
}

/// An I/O error from the container's filesystem, in dockerd's terms.
fn fs_error(e: std::io::Error, path: &str, container: &str) -> ServiceError {
    match e.kind() {
        std::io::ErrorKind::NotFound => ServiceError::NotFound(format!("Could not find the file {path} in container {container}")),
        std::io::ErrorKind::InvalidInput => ServiceError::InvalidParameter(e.to_string()),
        _ if e.raw_os_error() == Some(libc::ENOTDIR) => ServiceError::InvalidParameter(format!("lstat {path}: not a directory")),
        _ => ServiceError::Internal(format!("{path} in container {container}: {e}")),
    }
}

/// Bytes written by the filesystem thread, sent on as body chunks.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    fn new(tx: mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        Self { tx, buf: Vec::with_capacity(CHUNK) }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        // A closed channel: the client went away; stop making the tar.
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Chunks of an upload read ahead of the filesystem thread: a few MiB, so
/// the client keeps sending while a replaced file is unlinked (ms for a
/// big one) or a write stalls, instead of waiting on a full socket.
const READ_AHEAD_CHUNKS: usize = 32;

/// The request body as a blocking reader for the filesystem thread, fed
/// by a task that reads it ahead.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    chunk: Bytes,
}

impl ChannelReader {
    fn spawn<S>(mut body: S) -> Self
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    {
        use futures_util::StreamExt;
        let (tx, rx) = mpsc::channel(READ_AHEAD_CHUNKS);
        tokio::spawn(async move {
            while let Some(chunk) = body.next().await {
                let failed = chunk.is_err();
                // The reader is gone (done or failed): stop reading.
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        Self { rx, chunk: Bytes::new() }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// How much of a refused upload is read before answering: a client still
/// writing its body would otherwise see a broken pipe instead of the
/// error (Go's server reads some of it too).
const DRAIN_LIMIT: u64 = 16 << 20;

async fn drain<S: Stream<Item = std::io::Result<Bytes>> + Unpin>(mut body: S) {
    use futures_util::StreamExt;
    let mut read = 0u64;
    while let Some(Ok(chunk)) = body.next().await {
        read += chunk.len() as u64;
        if read > DRAIN_LIMIT {
            break;
        }
    }
}

impl ContainerService {
    /// Host paths mounted into the container: volumes, binds (own,
    /// `--mount` and inherited).
    fn bind_mounts(&self, r: &Container) -> Vec<BindMount> {
        let volumes = r.volumes.iter().map(|v| BindMount {
            source: self.volumes.data_path(&v.name),
            subpath: v.subpath.clone(),
            destination: v.destination.clone(),
            read_only: v.read_only,
        });
        let host = r.host_config.binds.iter().flatten().filter_map(|b| parse_bind(b).ok());
        let mounts = r.host_config.mounts.iter().flatten().filter(|m| m.kind == "bind").map(Bind::from_mount);
        let inherited = r.inherited_binds.iter().map(Bind::from_mount);
        let binds = host.chain(mounts).chain(inherited).map(|b| BindMount { source: b.source, subpath: String::new(), destination: b.destination, read_only: b.read_only });
        volumes.chain(binds).collect()
    }

    /// Where to find the container's filesystem now.
    async fn fs_source(&self, r: &Container, writable: bool, with_binds: bool) -> Result<Source, ServiceError> {
        if r.state.status.is_live() && r.state.pid > 0 && with_binds {
            return Ok(Source::Process(r.state.pid));
        }
        let mounts = self.containerd.rootfs_mounts(&r.id).await?;
        let scratch: PathBuf = self.container_dir(&r.id).join(format!("rootfs-{}", uuid::Uuid::new_v4().simple()));
        let binds = if with_binds { self.bind_mounts(r) } else { vec![] };
        // Volumes need their mountpoints, which a container that never ran
        // may lack: the snapshot is mounted writable to make them, as the
        // runtime would on start. Without any, a read is mounted read-only:
        // a writable overlay syncs its whole upper filesystem when unmounted.
        let writable = writable || !binds.is_empty();
        Ok(Source::Snapshot { mounts, binds, scratch, writable })
    }

    /// `HEAD /containers/{id}/archive`: stat of a path.
    pub async fn archive_stat(&self, name: &str, path: &str) -> Result<PathStat, ServiceError> {
        if path.is_empty() {
            return Err(empty_path());
        }
        let record = self.lookup(name)?.record.lock().await.clone();
        let source = self.fs_source(&record, false, true).await?;
        let p = path.to_string();
        rootfs::open_unmount_later(source, move |root| root.stat(&p)).await.map_err(|e| fs_error(e, path, name))
    }

    /// `GET /containers/{id}/archive`: the path's stat, then its tar as
    /// it is made.
    pub async fn archive_get(&self, name: &str, path: &str) -> Result<(PathStat, TarStream), ServiceError> {
        if path.is_empty() {
            return Err(empty_path());
        }
        let record = self.lookup(name)?.record.lock().await.clone();
        let source = self.fs_source(&record, false, true).await?;
        let (stat_tx, stat_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(8);
        let p = path.to_string();
        let work = rootfs::open_unmount_later(source, move |root| {
            let stat = root.stat(&p);
            let ok = stat.is_ok();
            let _ = stat_tx.send(stat);
            if !ok {
                return Ok(());
            }
            let mut out = ChannelWriter::new(tx.clone());
            if let Err(e) = root.archive(&p, &mut out).and_then(|()| std::io::Write::flush(&mut out)) {
                // Headers are gone: the error can only cut the body.
                let _ = tx.blocking_send(Err(e));
            }
            Ok(())
        });
        let (result_tx, result_rx) = oneshot::channel();
        tokio::spawn(async move {
            let _ = result_tx.send(work.await);
        });
        let stat = tokio::select! {
            biased;
            stat = stat_rx => stat.map_err(|_| ServiceError::Internal(format!("reading {path} in container {name}")))?,
            result = result_rx => match result {
                // The filesystem could not be opened: the closure never ran.
                Ok(Err(e)) => Err(e),
                _ => return Err(ServiceError::Internal(format!("reading {path} in container {name}"))),
            },
        }
        .map_err(|e| fs_error(e, path, name))?;
        self.emit(&record, "archive-path", &[]);
        Ok((stat, rx))
    }

    /// `PUT /containers/{id}/archive`: unpack a tar into the directory at
    /// `path`.
    pub async fn archive_put<S>(&self, name: &str, path: &str, opts: ExtractToDirOptions, body: S) -> Result<(), ServiceError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    {
        let (record, source, extract) = match self.prepare_put(name, path, opts).await {
            Ok(prepared) => prepared,
            Err(e) => {
                drain(body).await;
                return Err(e);
            }
        };
        let mut reader = ChannelReader::spawn(body);
        let p = path.to_string();
        rootfs::open_unmount_later(source, move |root| {
            let result = root.extract(&p, &mut reader, extract);
            if result.is_err() {
                let _ = std::io::copy(&mut std::io::Read::take(&mut reader, DRAIN_LIMIT), &mut std::io::sink());
            }
            result
        })
        .await
        .map_err(|e| fs_error(e, path, name))?;
        self.emit(&record, "extract-to-dir", &[]);
        Ok(())
    }

    /// The checks before a tar is read, and where it goes.
    async fn prepare_put(&self, name: &str, path: &str, opts: ExtractToDirOptions) -> Result<(Container, Source, ExtractOptions), ServiceError> {
        if path.is_empty() {
            return Err(empty_path());
        }
        let record = self.lookup(name)?.record.lock().await.clone();
        self.check_writable(&record, path)?;
        let chown = if opts.copy_uid_gid && !record.config.user.is_empty() {
            let mounts = self.containerd.rootfs_mounts(&record.id).await?;
            let files = super::user::RootfsFiles::new(&mounts);
            let user = super::user::resolve(&record.config.user, &[], &files)?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        let source = self.fs_source(&record, true, true).await?;
        Ok((record, source, ExtractOptions { no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir, chown }))
    }

    /// dockerd refuses writes into a read-only volume or a read-only root.
    fn check_writable(&self, r: &Container, path: &str) -> Result<(), ServiceError> {
        let target = clean(&format!("/{}", path.trim_start_matches('/')));
        let within = |dest: &str| {
            let d = clean(dest);
            target == d || target.starts_with(&format!("{}/", d.trim_end_matches('/')))
        };
        let mounts = self.bind_mounts(r);
        match mounts.iter().filter(|m| within(&m.destination)).max_by_key(|m| m.destination.len()) {
            Some(m) if m.read_only => Err(ServiceError::InvalidParameter("mounted volume is marked read-only".into())),
            Some(_) => Ok(()),
            None if r.host_config.readonly_rootfs => Err(ServiceError::InvalidParameter("container rootfs is marked read-only".into())),
            None => Ok(()),
        }
    }

    /// `GET /containers/{id}/export`: the whole filesystem as a tar.
    pub async fn export(&self, name: &str) -> Result<TarStream, ServiceError> {
        let record = self.lookup(name)?.record.lock().await.clone();
        let source = self.fs_source(&record, false, false).await?;
        let (ready_tx, ready_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(8);
        let work = rootfs::open_unmount_later(source, move |root| {
            let _ = ready_tx.send(());
            let mut out = ChannelWriter::new(tx.clone());
            if let Err(e) = root.export(&mut out).and_then(|()| std::io::Write::flush(&mut out)) {
                let _ = tx.blocking_send(Err(e));
            }
            Ok(())
        });
        let (result_tx, result_rx) = oneshot::channel();
        tokio::spawn(async move {
            let _ = result_tx.send(work.await);
        });
        // The filesystem opened (or not) before the answer starts.
        tokio::select! {
            biased;
            _ = ready_rx => {}
            result = result_rx => {
                if let Ok(Err(e)) = result {
                    return Err(ServiceError::Internal(format!("exporting container {name}: {e}")));
                }
            }
        }
        self.emit(&record, "export", &[]);
        Ok(rx)
    }

    /// `GET /containers/{id}/changes`: the writable layer against the image.
    pub async fn changes(&self, name: &str) -> Result<Vec<Change>, ServiceError> {
        let record = self.lookup(name)?.record.lock().await.clone();
        let mounts = self.containerd.rootfs_mounts(&record.id).await?;
        let upper = rootfs::upper_dir(&mounts).ok_or_else(|| ServiceError::Internal(format!("no writable layer for container {name}")))?;
        let lowers = rootfs::lower_dirs(&mounts);
        let all = tokio::task::spawn_blocking(move || rootfs::changes(&upper, &lowers))
            .await
            .map_err(|e| ServiceError::Internal(format!("changes of container {name}: {e}")))?
            .map_err(|e| ServiceError::Internal(format!("changes of container {name}: {e}")))?;
        Ok(without_runtime_files(all))
    }
}

/// What the runtime makes in every container (dockerd keeps these in an
/// "init" layer below the container's, so `docker diff` never shows them).
const INIT_PATHS: &[&str] = &[
    "/dev", "/dev/pts", "/dev/shm", "/dev/console", "/dev/mqueue", "/proc", "/sys",
    "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab", "/.dockerenv",
];

fn without_runtime_files(all: Vec<Change>) -> Vec<Change> {
    let kept: Vec<Change> = all.into_iter().filter(|c| !INIT_PATHS.contains(&c.path.as_str())).collect();
    // A parent of those (`/etc`) that changed only because of them goes too.
    let has_child = |dir: &str| kept.iter().any(|c| c.path.starts_with(&format!("{dir}/")));
    kept.iter()
        .filter(|c| !matches!(c.path.as_str(), "/etc" | "/dev") || has_child(&c.path))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::rootfs::ChangeKind;

    #[test]
    fn runtime_files_are_not_changes() {
        let c = |path: &str, kind| Change { path: path.into(), kind };
        let all = vec![
            c("/dev", ChangeKind::Added),
            c("/etc", ChangeKind::Modified),
            c("/etc/hostname", ChangeKind::Added),
            c("/proc", ChangeKind::Added),
            c("/tmp", ChangeKind::Modified),
            c("/tmp/x", ChangeKind::Added),
        ];
        assert_eq!(without_runtime_files(all), [c("/tmp", ChangeKind::Modified), c("/tmp/x", ChangeKind::Added)]);
    }
}
