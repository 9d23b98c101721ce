//! `GET /images/get`: a docker-archive that is also an OCI image layout
//! (`manifest.json`, `repositories`, `index.json`, `oci-layout`, blobs
//! under `blobs/sha256/`), as dockerd 25+ writes it. Blobs are streamed
//! from the content store as they are written, never buffered whole.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use api_types::reference::Reference;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{is_id_prefix, ImageService, RecordName, ResolvedImage, WireDescriptor, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE_OCI_INDEX};
use crate::backends::containerd::{Containerd, OciDescriptor};
use crate::services::ServiceError;

/// What one save will write: images with the tags each carries.
pub struct SaveArchive {
    images: Vec<(Arc<ResolvedImage>, Vec<Reference>)>,
}

#[derive(Serialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexOut {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<WireDescriptor>,
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn header(path: &str, size: u64, kind: tar::EntryType) -> Result<Bytes, ServiceError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|e| ServiceError::Internal(format!("tar header for {path}: {e}")))?;
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    Ok(Bytes::copy_from_slice(h.as_bytes()))
}

fn padding(size: u64) -> Bytes {
    Bytes::from(vec![0u8; ((512 - size % 512) % 512) as usize])
}

impl ImageService {
    /// Resolve the names to save, as dockerd does: an ID saves the image
    /// without tags; a bare repository name saves every tag it has; a
    /// `name:tag` saves that tag.
    pub async fn save_plan(&self, names: &[String]) -> Result<SaveArchive, ServiceError> {
        let mut images: BTreeMap<String, (Arc<ResolvedImage>, Vec<Reference>)> = BTreeMap::new();
        let mut order = Vec::new();
        let mut add = |resolved: Arc<ResolvedImage>, tag: Option<Reference>| {
            let entry = images.entry(resolved.id().to_string()).or_insert_with(|| {
                order.push(resolved.id().to_string());
                (resolved, vec![])
            });
            if let Some(tag) = tag {
                if !entry.1.contains(&tag) {
                    entry.1.push(tag);
                }
            }
        };
        for name in names {
            let parsed = Reference::parse_normalized(name).ok();
            if let Some(r) = parsed.as_ref().filter(|r| r.tag.is_none() && r.digest.is_none()) {
                let mut any = false;
                for image in self.local_images().await? {
                    for (n, _) in image.names() {
                        if let RecordName::Tag(t) = n {
                            if t.name() == r.name() {
                                add(image.resolved.clone(), Some(t));
                                any = true;
                            }
                        }
                    }
                }
                if any {
                    continue;
                }
            }
            let found = self.find(name).await?;
            let tag = match (&found.record, parsed) {
                (None, _) if is_id_prefix(found.image.id(), name) => None,
                (_, Some(r)) if r.tag.is_some() => Some(r.with_default_tag()),
                _ => None,
            };
            add(found.image.resolved.clone(), tag);
        }
        let images: Vec<_> = order.into_iter().filter_map(|id| images.remove(&id)).collect();
        for (resolved, _) in &images {
            self.emit("save", resolved.id(), resolved.id());
        }
        Ok(SaveArchive { images })
    }

    /// The archive as a byte stream. An error mid-way ends the stream with
    /// that error (the client sees a truncated archive).
    pub fn save_stream(&self, plan: SaveArchive) -> impl Stream<Item = Result<Bytes, ServiceError>> + Send + 'static {
        let (tx, rx) = mpsc::channel::<Result<Bytes, ServiceError>>(4);
        let containerd = self.containerd.clone();
        tokio::spawn(async move {
            if let Err(e) = write_archive(&containerd, plan, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
    }
}

async fn send(tx: &mpsc::Sender<Result<Bytes, ServiceError>>, bytes: Bytes) -> Result<(), ServiceError> {
    tx.send(Ok(bytes)).await.map_err(|_| ServiceError::Internal("client went away".into()))
}

async fn write_file(tx: &mpsc::Sender<Result<Bytes, ServiceError>>, path: &str, data: Vec<u8>) -> Result<(), ServiceError> {
    let size = data.len() as u64;
    send(tx, header(path, size, tar::EntryType::Regular)?).await?;
    send(tx, Bytes::from(data)).await?;
    send(tx, padding(size)).await
}

async fn write_blob(c: &Containerd, tx: &mpsc::Sender<Result<Bytes, ServiceError>>, desc: &OciDescriptor) -> Result<(), ServiceError> {
    let size = desc.size.max(0) as u64;
    send(tx, header(&blob_path(&desc.digest), size, tar::EntryType::Regular)?).await?;
    let mut stream = Box::pin(c.content_read(&desc.digest, 0).await?);
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        written += chunk.len() as u64;
        if written > size {
            return Err(ServiceError::Internal(format!("blob {} is larger than its descriptor says", desc.digest)));
        }
        send(tx, chunk).await?;
    }
    if written != size {
        return Err(ServiceError::Internal(format!("blob {} is shorter than its descriptor says", desc.digest)));
    }
    send(tx, padding(size)).await
}

async fn write_archive(c: &Containerd, plan: SaveArchive, tx: &mpsc::Sender<Result<Bytes, ServiceError>>) -> Result<(), ServiceError> {
    send(tx, header("blobs/", 0, tar::EntryType::Directory)?).await?;
    send(tx, header("blobs/sha256/", 0, tar::EntryType::Directory)?).await?;
    let mut written = BTreeSet::new();
    let mut manifest_json = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (image, tags) in &plan.images {
        let mut blobs: Vec<&OciDescriptor> = image.layers.iter().collect();
        blobs.push(&image.config_descriptor);
        blobs.push(&image.manifest);
        for desc in blobs {
            if written.insert(desc.digest.clone()) {
                write_blob(c, tx, desc).await?;
            }
        }
        let familiar: Vec<String> = tags.iter().map(|t| t.familiar_string()).collect();
        manifest_json.push(ManifestEntry {
            config: blob_path(&image.config_descriptor.digest),
            repo_tags: if familiar.is_empty() { None } else { Some(familiar) },
            layers: image.layers.iter().map(|l| blob_path(&l.digest)).collect(),
        });
        let manifest = WireDescriptor {
            media_type: image.manifest.media_type.clone(),
            digest: image.manifest.digest.clone(),
            size: image.manifest.size,
            ..Default::default()
        };
        if tags.is_empty() {
            index.push(manifest.clone());
        }
        for tag in tags {
            let mut m = manifest.clone();
            m.annotations.insert(ANNOTATION_IMAGE_NAME.into(), tag.to_string());
            m.annotations.insert(ANNOTATION_REF_NAME.into(), tag.tag.clone().unwrap_or_default());
            index.push(m);
            if let (Some(t), Some(top)) = (&tag.tag, image.layers.last()) {
                repositories
                    .entry(tag.familiar_name())
                    .or_default()
                    .insert(t.clone(), top.digest.trim_start_matches("sha256:").to_string());
            }
        }
    }
    let index = IndexOut { schema_version: 2, media_type: MEDIA_TYPE_OCI_INDEX, manifests: index };
    write_file(tx, "index.json", to_json(&index)?).await?;
    write_file(tx, "manifest.json", to_json(&manifest_json)?).await?;
    write_file(tx, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()).await?;
    if !repositories.is_empty() {
        write_file(tx, "repositories", to_json(&repositories)?).await?;
    }
    send(tx, Bytes::from(vec![0u8; 1024])).await
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(value).map_err(|e| ServiceError::Internal(e.to_string()))
}
