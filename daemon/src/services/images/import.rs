//! `POST /images/create?fromSrc=`: `docker import`. A tar from the request
//! body (`-`) or a URL, plain or compressed (gzip here; bzip2, xz and zstd
//! through their tools, as dockerd runs `xz`), becomes the one layer of a
//! new image. The tar is checked entry by entry on its way into the
//! content store (uncompressed, so its digest is its diff ID) and then goes
//! the way of commit: config, manifest, unpack, names, under one lease.

use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};
use std::pin::Pin;

use api_types::container::ContainerConfig;
use api_types::reference::Reference;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::distribution::{ByteCounter, Progress};
use super::unpack::Ingestion;
use super::{ImageService, NewImage, Platform, StoredImage, MEDIA_TYPE_DOCKER_LAYER};
use crate::backends::containerd::content::WRITE_CHUNK;
use crate::backends::containerd::OciDescriptor;
use crate::services::ServiceError;

pub struct ImportOptions {
    /// `-` for the request body, else a URL (`http://` when no scheme).
    pub source: String,
    pub names: Vec<Reference>,
    /// The image's and its history entry's comment.
    pub message: String,
    /// The image config, from the `changes`.
    pub config: ContainerConfig,
    pub platform: Option<Platform>,
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// What the blocking reader hands on: uncompressed bytes, then `None`.
type Chunk = Result<Option<Bytes>, String>;

impl ImageService {
    /// Import `body` (or the URL in `opts`); the new image's ID is the last
    /// progress message, as dockerd writes it.
    pub async fn import<S>(&self, body: S, opts: ImportOptions, progress: &Progress) -> Result<(), ServiceError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        progress
            .run(async {
                let (input, source) = if opts.source == "-" {
                    (Box::pin(body) as ByteStream, opts.source.clone())
                } else {
                    drop(body);
                    self.download(&opts.source, progress).await?
                };
                let message = if opts.message.is_empty() { format!("Imported from {source}") } else { opts.message.clone() };
                let ingest = self.begin_ingestion().await?;
                let result = self.import_into(&ingest, input, &opts, &message).await;
                let stored = ingest.settle(result).await?;
                for name in &opts.names {
                    self.emit("tag", &stored.id, &name.familiar_string());
                }
                self.emit("import", &stored.id, &stored.id);
                progress.message("", stored.id).await;
                Ok(())
            })
            .await
    }

    async fn import_into(&self, ingest: &Ingestion, input: ByteStream, opts: &ImportOptions, message: &str) -> Result<StoredImage, ServiceError> {
        let layer = write_layer(ingest, input).await?;
        let new = NewImage {
            parent: None,
            snapshot: None,
            config: &opts.config,
            container_config: None,
            container: "",
            created_by: String::new(),
            author: String::new(),
            comment: message.to_string(),
            names: &opts.names,
        };
        self.create_image_in(ingest, &new, Some(layer), opts.platform.as_ref()).await
    }

    /// GET the source, with dockerd's "Downloading from" and "Importing"
    /// progress; answers the body and the URL as dockerd names it.
    async fn download(&self, source: &str, progress: &Progress) -> Result<(ByteStream, String), ServiceError> {
        let address = if source.contains("://") { source.to_string() } else { format!("http://{source}") };
        let url = reqwest::Url::parse(&address).map_err(|e| ServiceError::InvalidParameter(format!("parse \"{address}\": {e}")))?;
        let response = reqwest::Client::new()
            .get(url.clone())
            .send()
            .await
            .map_err(|e| ServiceError::Internal(format!("Get \"{url}\": {}", error_chain(&e))))?;
        let status = response.status();
        if status.as_u16() >= 400 {
            let body = response.text().await.unwrap_or_default();
            let message = format!(
                "failed to GET {url} with status {} {}: {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default(),
                body.trim()
            );
            return Err(match status.as_u16() {
                404 => ServiceError::NotFound(message),
                400 => ServiceError::InvalidParameter(message),
                _ => ServiceError::Internal(message),
            });
        }
        progress.message("", format!("Downloading from {url}")).await;
        let mut counter = ByteCounter::new(response.content_length().unwrap_or(0));
        let progress = progress.clone();
        let stream = response.bytes_stream().map(move |chunk| {
            let chunk = chunk.map_err(|e| std::io::Error::other(error_chain(&e)))?;
            if let Some(current) = counter.advance(chunk.len()) {
                progress.bytes("", "Importing", current, counter.total);
            }
            Ok(chunk)
        });
        Ok((Box::pin(stream), url.to_string()))
    }
}

/// An error with its causes, as Go's wrapped errors read.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Stream `input`, decompressed and checked, into one uncompressed blob.
async fn write_layer(ingest: &Ingestion, input: ByteStream) -> Result<OciDescriptor, ServiceError> {
    let (tx, mut rx) = mpsc::channel::<Chunk>(8);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(input));
    let reading = tokio::task::spawn_blocking(move || {
        let result = read_layer(reader, &tx);
        let _ = tx.blocking_send(result.map(|()| None));
    });
    let mut writer = ingest.blob_writer(None).await?;
    let written: Result<(), ServiceError> = async {
        loop {
            match rx.recv().await {
                Some(Ok(Some(bytes))) => writer.write(&bytes).await?,
                Some(Ok(None)) => return Ok(()),
                Some(Err(message)) => return Err(ServiceError::InvalidParameter(format!("Error processing tar file: {message}"))),
                None => return Err(ServiceError::Internal("the import reader stopped unexpectedly".into())),
            }
        }
    }
    .await;
    drop(rx);
    let _ = reading.await;
    if let Err(e) = written {
        writer.abort().await;
        return Err(e);
    }
    let blob = writer.commit(&Default::default()).await?;
    Ok(OciDescriptor { media_type: MEDIA_TYPE_DOCKER_LAYER.into(), digest: blob.digest, size: blob.size, annotations: Default::default() })
}

/// Runs on a blocking thread: decompress, walk the tar checking each entry
/// (no path or link may leave the root), and forward every byte read.
fn read_layer(input: impl Read + Send + 'static, tx: &mpsc::Sender<Chunk>) -> Result<(), String> {
    let decompressed = decompress(input)?;
    let forward = BufReader::with_capacity(WRITE_CHUNK, Forward { inner: decompressed, tx });
    let mut archive = tar::Archive::new(crate::backends::tar_guard::TarGuard::new(forward));
    for entry in archive.entries().map_err(|e| tar_error(&e))? {
        let entry = entry.map_err(|e| tar_error(&e))?;
        check_entry(&entry)?;
    }
    // The end-of-archive blocks and anything after them belong to the layer
    // (its digest is over every byte, as containerd's apply reads them).
    std::io::copy(&mut archive.into_inner().into_inner(), &mut std::io::sink()).map_err(|e| tar_error(&e))?;
    Ok(())
}

/// A tar reading error; a short read in Go's words, as dockerd says it.
fn tar_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    if e.kind() == std::io::ErrorKind::UnexpectedEof || text.contains("failed to read entire block") {
        return "unexpected EOF".into();
    }
    text
}

/// Passes what it reads on to the async side.
struct Forward<'a, R> {
    inner: R,
    tx: &'a mpsc::Sender<Chunk>,
}

impl<R: Read> Read for Forward<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.tx
                .blocking_send(Ok(Some(Bytes::copy_from_slice(&buf[..n]))))
                .map_err(|_| std::io::Error::other("import cancelled"))?;
        }
        Ok(n)
    }
}

/// The tar inside `input`, by its magic bytes (moby's DecompressStream).
fn decompress(input: impl Read + Send + 'static) -> Result<Box<dyn Read + Send>, String> {
    let mut buffered = BufReader::with_capacity(WRITE_CHUNK, input);
    let head = buffered.fill_buf().map_err(|e| e.to_string())?.to_vec();
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if head.starts_with(b"BZh") {
        Box::new(Tool::spawn("bzip2", buffered)?)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(Tool::spawn("xz", buffered)?)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(Tool::spawn("zstd", buffered)?)
    } else {
        Box::new(buffered)
    })
}

/// A decompressing tool (`xz -d -c -q`) fed from a thread; its exit
/// status is checked at the end of its output; dropped early, it is killed.
struct Tool {
    name: &'static str,
    child: std::process::Child,
    stdout: std::process::ChildStdout,
}

impl Tool {
    fn spawn(name: &'static str, mut input: impl Read + Send + 'static) -> Result<Self, String> {
        let mut child = std::process::Command::new(name)
            .args(["-d", "-c", "-q"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot decompress the {name} stream: {e}"))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("cannot decompress the {name} stream: no pipes"));
        };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut input, &mut stdin);
        });
        Ok(Self { name, child, stdout })
    }
}

impl Read for Tool {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let status = self.child.wait()?;
            if !status.success() {
                return Err(std::io::Error::other(format!("{} failed ({status}): not a valid compressed stream", self.name)));
            }
        }
        Ok(n)
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// dockerd's breakout checks: entries, hard link targets and relative
/// symlink targets stay inside the root.
fn check_entry<R: Read>(entry: &tar::Entry<'_, R>) -> Result<(), String> {
    let raw = entry.path().map_err(|e| format!("invalid entry name: {e}"))?;
    let path = raw.display().to_string();
    if inside_root(Path::new(""), &raw).is_none() {
        return Err(format!("{path:?} is outside of the image root"));
    }
    let kind = entry.header().entry_type();
    if kind.is_hard_link() || kind.is_symlink() {
        let target = entry.link_name().map_err(|e| format!("invalid link {path:?}: {e}"))?.unwrap_or_default();
        let target_text = target.display().to_string();
        if kind.is_hard_link() {
            if inside_root(Path::new(""), &target).is_none() {
                return Err(format!("invalid hardlink {path:?} -> {target_text:?}"));
            }
        } else if target.is_relative() {
            let dir = raw.parent().unwrap_or(Path::new(""));
            if inside_root(dir, &target).is_none() {
                return Err(format!("invalid symlink {path:?} -> {target_text:?}"));
            }
        }
    }
    Ok(())
}

/// `base/rel` cleaned lexically, as a path under the root (a leading `/`
/// means the root); its depth, or `None` when it climbs out.
fn inside_root(base: &Path, rel: &Path) -> Option<usize> {
    let mut depth = 0usize;
    for comp in base.components().chain(rel.components()) {
        match comp {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => depth = depth.checked_sub(1)?,
            Component::RootDir => depth = 0,
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(inside_root(Path::new(""), Path::new("./a/b")), Some(2));
        assert_eq!(inside_root(Path::new(""), Path::new("a/../b")), Some(1));
        assert_eq!(inside_root(Path::new(""), Path::new("../../etc/passwd")), None);
        assert_eq!(inside_root(Path::new("a/b"), Path::new("../../..")), None);
        assert_eq!(inside_root(Path::new("a/b"), Path::new("../c")), Some(2));
        assert_eq!(inside_root(Path::new(""), Path::new("/etc/passwd")), Some(2));
    }

    fn tar_with(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_mode(0o644);
        // set_path refuses `..`: write the name bytes directly.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if let Some(l) = link {
            header.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, std::io::empty()).unwrap();
        builder.into_inner().unwrap()
    }

    fn check(data: Vec<u8>) -> Result<(), String> {
        let (tx, mut rx) = mpsc::channel(1024);
        let handle = std::thread::spawn(move || read_layer(std::io::Cursor::new(data), &tx));
        while rx.blocking_recv().is_some() {}
        handle.join().unwrap()
    }

    #[test]
    fn breakouts_are_refused() {
        assert!(check(tar_with("etc/passwd", tar::EntryType::Regular, None)).is_ok());
        assert!(check(tar_with("../../etc/passwd", tar::EntryType::Regular, None)).unwrap_err().contains("outside of the image root"));
        assert!(check(tar_with("a/l", tar::EntryType::Symlink, Some("/etc/passwd"))).is_ok());
        assert!(check(tar_with("a/l", tar::EntryType::Symlink, Some("../../x"))).unwrap_err().contains("invalid symlink"));
        assert!(check(tar_with("a/h", tar::EntryType::Link, Some("../x"))).unwrap_err().contains("invalid hardlink"));
        assert!(check(b"not a tar".to_vec()).unwrap_err().contains("unexpected EOF"));
    }
}
