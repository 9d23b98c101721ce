//! `POST /images/load`: a docker-archive (`manifest.json`) or OCI image
//! layout (`oci-layout` + `index.json`) tar, plain or gzip-compressed,
//! streamed into the content store under one lease. Nothing is named until
//! every image in the archive is stored and unpacked; on any failure the
//! lease goes and GC takes what was written.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};

use api_types::image::{JsonMessage, ProgressDetail};
use api_types::reference::Reference;
use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::unpack::Ingestion;
use super::unpack_ahead::UnpackAhead;
use super::{
    short_id, ImageService, Index, WireDescriptor, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
    MAX_METADATA_BLOB, MEDIA_TYPE_DOCKER_CONFIG, MEDIA_TYPE_DOCKER_LAYER, MEDIA_TYPE_DOCKER_LAYER_GZIP,
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_OCI_LAYER_ZSTD,
};
use crate::backends::containerd::content::{labels, WRITE_CHUNK};
use crate::backends::containerd::{ContentWriter, OciDescriptor};
use crate::services::ServiceError;

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Only the final `Loaded image…` lines, no per-layer progress.
    pub quiet: bool,
}

/// Archive metadata files kept in memory instead of the content store.
const METADATA_FILES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];

/// What the blocking tar reader hands to the async side.
#[derive(Debug)]
enum TarEvent {
    File { path: String, size: u64 },
    Data(Bytes),
    EndFile,
    Link { path: String, target: String },
    Finished,
}

/// An archive entry path made relative and checked not to escape.
fn clean_path(raw: &Path) -> Result<String, String> {
    let mut parts: Vec<String> = Vec::new();
    for comp in raw.components() {
        match comp {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!("invalid archive entry {:?}: path escapes the archive root", raw.display().to_string()))
            }
        }
    }
    Ok(parts.join("/"))
}

/// A symlink target, relative to its entry's directory, as an archive path.
fn resolve_link(path: &str, target: &Path, hard: bool) -> Result<String, String> {
    let joined = if hard {
        target.to_path_buf()
    } else {
        Path::new(path).parent().unwrap_or(Path::new("")).join(target)
    };
    let mut parts: Vec<String> = Vec::new();
    for comp in joined.components() {
        match comp {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir if !parts.is_empty() => {
                parts.pop();
            }
            _ => return Err(format!("invalid archive entry {path:?}: link target escapes the archive root")),
        }
    }
    Ok(parts.join("/"))
}

/// Runs on a blocking thread: gunzip if needed, walk the tar, send events.
fn read_archive(reader: impl Read, tx: mpsc::Sender<Result<TarEvent, String>>) {
    if let Err(e) = read_archive_inner(reader, &tx) {
        let _ = tx.blocking_send(Err(e));
    }
}

fn read_archive_inner(reader: impl Read, tx: &mpsc::Sender<Result<TarEvent, String>>) -> Result<(), String> {
    let mut buffered = BufReader::with_capacity(WRITE_CHUNK, reader);
    let head = buffered.fill_buf().map_err(|e| format!("failed to read the image archive: {e}"))?.to_vec();
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        return Err("unsupported archive compression: use a plain or gzip-compressed tar".into());
    } else {
        Box::new(buffered)
    };
    let send = |ev: TarEvent| tx.blocking_send(Ok(ev)).map_err(|_| "load cancelled".to_string());
    let mut archive = tar::Archive::new(crate::backends::tar_guard::TarGuard::new(reader));
    let entries = archive.entries().map_err(|e| format!("failed to read the image archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("failed to read the image archive: {e}"))?;
        let raw = entry.path().map_err(|e| format!("invalid archive entry name: {e}"))?.into_owned();
        let path = clean_path(&raw)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| format!("invalid link in archive entry {path:?}: {e}"))?
                .ok_or_else(|| format!("invalid link in archive entry {path:?}"))?
                .into_owned();
            let target = resolve_link(&path, &target, kind.is_hard_link())?;
            send(TarEvent::Link { path, target })?;
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        let size = entry.header().size().map_err(|e| format!("invalid archive entry {path:?}: {e}"))?;
        send(TarEvent::File { path, size })?;
        let mut remaining = size;
        while remaining > 0 {
            let mut buf = vec![0u8; remaining.min(WRITE_CHUNK as u64) as usize];
            entry.read_exact(&mut buf).map_err(|e| format!("failed to read the image archive: {e}"))?;
            remaining -= buf.len() as u64;
            send(TarEvent::Data(Bytes::from(buf)))?;
        }
        send(TarEvent::EndFile)?;
    }
    send(TarEvent::Finished)
}

/// A blob of the archive, by path.
#[derive(Debug, Clone)]
struct ArchiveBlob {
    digest: String,
    size: i64,
}

/// Where the bytes of the current entry go.
enum Sink {
    Memory { path: String, data: Vec<u8> },
    Blob { path: String, writer: ContentWriter },
    Known { path: String, blob: ArchiveBlob },
}

/// Everything read from the archive.
#[derive(Default)]
struct Archive {
    metadata: BTreeMap<String, Vec<u8>>,
    blobs: BTreeMap<String, ArchiveBlob>,
    links: BTreeMap<String, String>,
}

impl Archive {
    fn blob(&self, path: &str) -> Option<&ArchiveBlob> {
        let mut path = path.trim_start_matches("./").to_string();
        for _ in 0..16 {
            if let Some(b) = self.blobs.get(&path) {
                return Some(b);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }
}

/// A legacy `<dir>/layer.tar` is in: tell the applier ahead.
fn archive_layer(ahead: &mut UnpackAhead, path: &str, blob: &ArchiveBlob) {
    if let Some(dir) = path.strip_suffix("/layer.tar") {
        ahead.layer_blob(dir, &blob.digest, blob.size);
    }
}

/// `blobs/sha256/<hex>`: the digest the path promises.
fn layout_digest(path: &str) -> Option<String> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())).then(|| format!("sha256:{hex}"))
}

#[derive(Deserialize)]
struct ArchiveManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DockerManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: WireDescriptor,
    layers: Vec<WireDescriptor>,
}

fn bad_archive(message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidParameter(message.into())
}

/// The names an index entry carries, as containerd reads them.
fn names_from_annotations(annotations: &BTreeMap<String, String>) -> Vec<Reference> {
    let name = annotations.get(ANNOTATION_IMAGE_NAME).or_else(|| {
        annotations.get(ANNOTATION_REF_NAME).filter(|r| r.contains('/') || r.contains(':'))
    });
    name.and_then(|n| Reference::parse_normalized(n).ok()).map(|r| r.with_default_tag()).into_iter().collect()
}

impl ImageService {
    /// Load an archive from `body`, reporting on `progress`.
    pub async fn load<S>(&self, body: S, opts: LoadOptions, progress: &mpsc::Sender<JsonMessage>) -> Result<(), ServiceError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
    {
        let ingest = self.begin_ingestion().await?;
        let result = self.load_into(&ingest, body, opts, progress).await;
        ingest.settle(result).await
    }

    async fn load_into<S>(
        &self,
        ingest: &Ingestion,
        body: S,
        opts: LoadOptions,
        progress: &mpsc::Sender<JsonMessage>,
    ) -> Result<(), ServiceError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
    {
        let archive = self.ingest_archive(ingest, body).await?;
        // (target, names) per image, then prepare all before naming any.
        let mut images: Vec<(OciDescriptor, Vec<Reference>)> = Vec::new();
        if archive.metadata.contains_key("oci-layout") && archive.metadata.contains_key("index.json") {
            let index: Index = serde_json::from_slice(&archive.metadata["index.json"])
                .map_err(|e| bad_archive(format!("invalid index.json in OCI layout: {e}")))?;
            for m in &index.manifests {
                images.push((m.into(), names_from_annotations(&m.annotations)));
            }
        } else if let Some(manifest) = archive.metadata.get("manifest.json") {
            let entries: Vec<ArchiveManifestEntry> =
                serde_json::from_slice(manifest).map_err(|e| bad_archive(format!("invalid manifest.json: {e}")))?;
            for entry in entries {
                let target = self.docker_archive_manifest(ingest, &archive, &entry).await?;
                let mut names = Vec::new();
                for tag in entry.repo_tags.unwrap_or_default() {
                    let r = Reference::parse_normalized(&tag)
                        .map_err(|e| bad_archive(format!("invalid tag {tag:?} in manifest.json: {e}")))?;
                    names.push(r.with_default_tag());
                }
                images.push((target, names));
            }
        } else {
            return Err(bad_archive(
                "unrecognized image format: the archive has neither manifest.json nor an OCI layout (oci-layout, index.json)",
            ));
        }
        if images.is_empty() {
            return Err(bad_archive("the archive holds no image"));
        }
        let mut prepared = Vec::with_capacity(images.len());
        for (target, names) in images {
            let resolved = self.prepare_image(ingest, &target).await.map_err(|e| match e {
                ServiceError::NotFound(m) => bad_archive(format!("incomplete image archive: {m}")),
                e => e,
            })?;
            if !opts.quiet {
                for (layer, diff_id) in resolved.layers.iter().zip(&resolved.config.rootfs.diff_ids) {
                    let _ = progress
                        .send(JsonMessage {
                            status: Some("Loading layer".into()),
                            id: Some(short_id(diff_id)),
                            progress_detail: Some(ProgressDetail { current: Some(layer.size), total: Some(layer.size) }),
                            ..Default::default()
                        })
                        .await;
                }
            }
            prepared.push((target, names, resolved.id().to_string()));
        }
        for (target, names, id) in prepared {
            let replaced = self.name_image(&target, &names).await?;
            self.emit("load", &id, &id);
            for (name, old) in replaced {
                let line = format!(
                    "The image {} already exists, renaming the old one with ID {old} to empty string\n",
                    name.familiar_string()
                );
                let _ = progress.send(JsonMessage::stream(line)).await;
            }
            if names.is_empty() {
                let _ = progress.send(JsonMessage::stream(format!("Loaded image ID: {id}\n"))).await;
            }
            for name in names {
                let _ = progress.send(JsonMessage::stream(format!("Loaded image: {}\n", name.familiar_string()))).await;
            }
        }
        Ok(())
    }

    /// Stream the tar into the content store; keep metadata files in memory.
    async fn ingest_archive<S>(&self, ingest: &Ingestion, body: S) -> Result<Archive, ServiceError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
    {
        let (tx, mut rx) = mpsc::channel(8);
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
        let reading_task = tokio::task::spawn_blocking(move || read_archive(reader, tx));
        let mut archive = Archive::default();
        let mut sink: Option<Sink> = None;
        let (mut ahead, applier) = UnpackAhead::new();
        let reading = async {
            let read = self.read_entries(ingest, &mut rx, &mut archive, &mut sink, &mut ahead).await;
            if read.is_err() {
                ahead.cancel();
            }
            // Dropped: the applier ends once it has applied what it has.
            drop(ahead);
            read
        };
        let (result, ()) = tokio::join!(reading, applier.run(ingest));
        if let Some(Sink::Blob { writer, .. }) = sink.take() {
            writer.abort().await;
        }
        drop(rx);
        let _ = reading_task.await;
        result.map(|()| archive)
    }

    /// The archive's entries, from the blocking reader, into `archive`.
    async fn read_entries(
        &self,
        ingest: &Ingestion,
        rx: &mut mpsc::Receiver<Result<TarEvent, String>>,
        archive: &mut Archive,
        sink: &mut Option<Sink>,
        ahead: &mut UnpackAhead,
    ) -> Result<(), ServiceError> {
        loop {
            let event = match rx.recv().await {
                Some(Ok(ev)) => ev,
                Some(Err(message)) => return Err(bad_archive(message)),
                None => return Err(ServiceError::Internal("the archive reader stopped unexpectedly".into())),
            };
            match event {
                TarEvent::File { path, size } => {
                    let base = path.rsplit('/').next().unwrap_or_default();
                    *sink = Some(if METADATA_FILES.contains(&path.as_str()) {
                        if size as usize > MAX_METADATA_BLOB {
                            return Err(bad_archive(format!("{path} is too large")));
                        }
                        Sink::Memory { path, data: Vec::with_capacity(size as usize) }
                    } else if path.contains('/') && base == "json" && size as usize <= MAX_METADATA_BLOB {
                        // Legacy per-layer metadata: its parent link lets
                        // layers be unpacked ahead of the manifest.
                        Sink::Memory { path, data: Vec::with_capacity(size as usize) }
                    } else if path.contains('/') && (base == "VERSION" || base == "json") {
                        Sink::Memory { path: String::new(), data: Vec::new() }
                    } else if let Some(digest) = layout_digest(&path) {
                        let blob = ArchiveBlob { digest: digest.clone(), size: size as i64 };
                        if ingest.has_blob(&digest).await? {
                            Sink::Known { path, blob }
                        } else {
                            Sink::Blob { path, writer: ingest.blob_writer(Some((&digest, size as i64))).await? }
                        }
                    } else {
                        Sink::Blob { path, writer: ingest.blob_writer(None).await? }
                    });
                }
                TarEvent::Data(bytes) => match sink.as_mut() {
                    Some(Sink::Memory { path, data }) if !path.is_empty() => data.extend_from_slice(&bytes),
                    Some(Sink::Blob { writer, .. }) => writer.write(&bytes).await?,
                    _ => {}
                },
                TarEvent::EndFile => match sink.take() {
                    Some(Sink::Memory { path, data }) if !path.is_empty() => match path.strip_suffix("/json") {
                        Some(dir) => ahead.legacy_json(dir, &data),
                        None => {
                            archive.metadata.insert(path, data);
                        }
                    },
                    Some(Sink::Blob { path, writer }) => {
                        let committed = writer.commit(&BTreeMap::new()).await.map_err(|e| {
                            bad_archive(format!("archive entry {path}: {e}"))
                        })?;
                        let blob = ArchiveBlob { digest: committed.digest, size: committed.size };
                        archive_layer(ahead, &path, &blob);
                        archive.blobs.insert(path, blob);
                    }
                    Some(Sink::Known { path, blob }) => {
                        archive_layer(ahead, &path, &blob);
                        archive.blobs.insert(path, blob);
                    }
                    _ => {}
                },
                TarEvent::Link { path, target } => {
                    archive.links.insert(path, target);
                }
                TarEvent::Finished => return Ok(()),
            }
        }
    }

    /// Write the docker manifest an archive entry describes; answers its
    /// descriptor.
    async fn docker_archive_manifest(
        &self,
        ingest: &Ingestion,
        archive: &Archive,
        entry: &ArchiveManifestEntry,
    ) -> Result<OciDescriptor, ServiceError> {
        let config = archive
            .blob(&entry.config)
            .ok_or_else(|| bad_archive(format!("image config {:?} not found in the archive", entry.config)))?;
        let mut layers = Vec::with_capacity(entry.layers.len());
        for path in &entry.layers {
            let blob = archive.blob(path).ok_or_else(|| bad_archive(format!("layer {path:?} not found in the archive")))?;
            let head = ingest.containerd().content_read_head(&blob.digest, blob.size.clamp(0, 4) as usize).await?;
            let media_type = if head.starts_with(&[0x1f, 0x8b]) {
                MEDIA_TYPE_DOCKER_LAYER_GZIP
            } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                MEDIA_TYPE_OCI_LAYER_ZSTD
            } else {
                MEDIA_TYPE_DOCKER_LAYER
            };
            layers.push(WireDescriptor { media_type: media_type.into(), digest: blob.digest.clone(), size: blob.size, ..Default::default() });
        }
        let manifest = DockerManifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_DOCKER_MANIFEST,
            config: WireDescriptor {
                media_type: MEDIA_TYPE_DOCKER_CONFIG.into(),
                digest: config.digest.clone(),
                size: config.size,
                ..Default::default()
            },
            layers,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut set = BTreeMap::from([(labels::GC_REF_CONFIG.to_string(), config.digest.clone())]);
        for (i, l) in manifest.layers.iter().enumerate() {
            set.insert(format!("{}{i}", labels::GC_REF_LAYER_PREFIX), l.digest.clone());
        }
        let digest = ingest.write_small_blob(&bytes, &set).await?;
        Ok(OciDescriptor { media_type: MEDIA_TYPE_DOCKER_MANIFEST.into(), digest, size: bytes.len() as i64, annotations: BTreeMap::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_may_not_escape() {
        assert_eq!(clean_path(Path::new("./blobs/sha256/ab")).unwrap(), "blobs/sha256/ab");
        assert!(clean_path(Path::new("../../etc/passwd")).is_err());
        assert!(clean_path(Path::new("/etc/passwd")).is_err());
        assert!(clean_path(Path::new("a/../../b")).is_err());
    }

    #[test]
    fn links_resolve_inside_the_archive() {
        assert_eq!(resolve_link("abc/layer.tar", Path::new("../def/layer.tar"), false).unwrap(), "def/layer.tar");
        assert_eq!(resolve_link("x", Path::new("blobs/sha256/a"), true).unwrap(), "blobs/sha256/a");
        assert!(resolve_link("abc/layer.tar", Path::new("../../etc/passwd"), false).is_err());
    }

    #[test]
    fn layout_paths_promise_digests() {
        let hex = "a".repeat(64);
        assert_eq!(layout_digest(&format!("blobs/sha256/{hex}")), Some(format!("sha256:{hex}")));
        assert_eq!(layout_digest("blobs/sha256/zz"), None);
        assert_eq!(layout_digest("abc.json"), None);
    }

    #[test]
    fn index_names_come_from_annotations() {
        let a = BTreeMap::from([(ANNOTATION_IMAGE_NAME.to_string(), "docker.io/library/busybox:1".to_string())]);
        assert_eq!(names_from_annotations(&a)[0].to_string(), "docker.io/library/busybox:1");
        let tag_only = BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), "latest".to_string())]);
        assert!(names_from_annotations(&tag_only).is_empty());
    }
}
