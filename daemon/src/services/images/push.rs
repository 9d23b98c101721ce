//! `POST /images/{name}/push`: an image's blobs, read as streams from
//! containerd's content store, uploaded in parallel (the daemon-wide upload
//! limit), mounted from another repository of the same registry when the
//! blob came from there, then the manifest under its tag. Progress as
//! dockerd's `distribution/push_v2.go` writes it.

use std::collections::BTreeMap;

use api_types::reference::Reference;
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{StreamExt, TryStreamExt};

use super::distribution::{registry_error, to_registry, ByteCounter, Progress};
use super::{is_index, short_id, ImageService, RecordName, MAX_METADATA_BLOB};
use crate::backends::containerd::content::labels::DISTRIBUTION_SOURCE_PREFIX;
use crate::backends::containerd::OciDescriptor;
use crate::backends::registry::{BlobPush, Credentials, Repository};
use crate::services::ServiceError;

pub struct PushOptions {
    /// With a tag; without one every local tag of the repository is pushed.
    pub reference: Reference,
    pub credentials: Credentials,
}

impl ImageService {
    /// Push `opts.reference`, reporting on `progress`.
    pub async fn push(&self, opts: PushOptions, progress: &Progress) -> Result<(), ServiceError> {
        let name = opts.reference.familiar_string();
        let result = progress
            .run(async {
                let reference = &opts.reference;
                progress.message("", format!("The push refers to repository [{}]", reference.name())).await;
                if reference.digest.is_some() {
                    return Err(ServiceError::InvalidParameter("cannot push a digest reference".into()));
                }
                let tags = self.tags_to_push(reference).await?;
                if tags.is_empty() {
                    return Err(ServiceError::NotFound(format!(
                        "An image does not exist locally with the tag: {}",
                        reference.familiar_name()
                    )));
                }
                let repo = self.registry()?.open_for_push(reference, &opts.credentials).await.map_err(registry_error)?;
                for (tag, target) in tags {
                    self.push_tag(&repo, reference, &tag, &target, progress).await?;
                }
                Ok(())
            })
            .await;
        if result.is_ok() {
            self.emit("push", &name, &name);
        }
        result
    }

    /// (tag, record target) for each local tag to push.
    async fn tags_to_push(&self, reference: &Reference) -> Result<Vec<(String, OciDescriptor)>, ServiceError> {
        if let Some(tag) = &reference.tag {
            return Ok(match self.containerd.image_get(&reference.to_string()).await? {
                Some(record) => vec![(tag.clone(), record.target)],
                None => vec![],
            });
        }
        let mut out: Vec<(String, OciDescriptor)> = Vec::new();
        for record in self.containerd.image_list(&[]).await? {
            if let RecordName::Tag(r) = RecordName::parse(&record.name) {
                if r.name() == reference.name() {
                    out.push((r.tag.unwrap_or_default(), record.target));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn push_tag(
        &self,
        repo: &Repository,
        reference: &Reference,
        tag: &str,
        target: &OciDescriptor,
        progress: &Progress,
    ) -> Result<(), ServiceError> {
        let image = self.resolve_target(target).await?;
        // An index is pushed as the manifest this daemon uses from it: the
        // other platforms' content is usually not here.
        let manifest = if is_index(&target.media_type) { image.manifest.clone() } else { target.clone() };
        let layers: Vec<&OciDescriptor> = image.layers.iter().rev().collect();
        for layer in &layers {
            progress.update(&short_id(&layer.digest), "Preparing").await;
        }
        let mut running = FuturesUnordered::new();
        for layer in layers {
            running.push(self.push_layer(repo, reference, layer, progress));
        }
        while let Some(done) = running.next().await {
            done?;
        }
        drop(running);
        let config = &image.config_descriptor;
        let body = self.content_stream(config, None);
        repo.push_blob(&to_registry(config), None, body).await.map_err(registry_error)?;
        let bytes = Bytes::from(self.containerd.content_read_all(&manifest.digest, MAX_METADATA_BLOB).await?);
        let size = bytes.len();
        let digest = repo.put_manifest(tag, &manifest.media_type, bytes).await.map_err(registry_error)?;
        progress.message("", format!("{tag}: digest: {digest} size: {size}")).await;
        progress.aux(serde_json::json!({"Tag": tag, "Digest": digest.to_string(), "Size": size})).await;
        Ok(())
    }

    /// One layer: wait for an upload slot; skip, mount or upload it.
    async fn push_layer(
        &self,
        repo: &Repository,
        reference: &Reference,
        layer: &OciDescriptor,
        progress: &Progress,
    ) -> Result<(), ServiceError> {
        let id = short_id(&layer.digest);
        let _slot = self.transfer_slot(true, &id, progress).await?;
        let source_key = format!("{DISTRIBUTION_SOURCE_PREFIX}{}", reference.domain);
        let info = self.containerd.content_info(&layer.digest).await?;
        let sources: Vec<String> = info
            .as_ref()
            .and_then(|i| i.labels.get(&source_key))
            .map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let mount_from = sources.iter().find(|s| **s != reference.path).cloned();
        let body = self.content_stream(layer, Some((progress.clone(), id.clone())));
        let outcome = repo.push_blob(&to_registry(layer), mount_from.as_deref(), body).await.map_err(registry_error)?;
        match outcome {
            BlobPush::Exists => progress.update(&id, "Layer already exists").await,
            BlobPush::Mounted => progress.update(&id, format!("Mounted from {}", mount_from.unwrap_or_default())).await,
            BlobPush::Uploaded => progress.update(&id, "Pushed").await,
        }
        // Remember the repository, for mounts by later pushes.
        if !sources.contains(&reference.path) && info.is_some() {
            let mut all = sources;
            all.push(reference.path.clone());
            let set = BTreeMap::from([(source_key, all.join(","))]);
            self.containerd.content_set_labels(&layer.digest, &set).await?;
        }
        Ok(())
    }

    /// A blob from the content store, opened only when first polled;
    /// with `report`, `Pushing` progress as it is read.
    fn content_stream(
        &self,
        desc: &OciDescriptor,
        report: Option<(Progress, String)>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let containerd = self.containerd.clone();
        let digest = desc.digest.clone();
        let mut counter = ByteCounter::new(desc.size.max(0) as u64);
        futures_util::stream::once(async move { containerd.content_read(&digest, 0).await.map_err(std::io::Error::other) })
            .map_ok(|chunks| chunks.map_err(std::io::Error::other))
            .try_flatten()
            .inspect_ok(move |chunk| {
                if let (Some((progress, id)), Some(current)) = (&report, counter.advance(chunk.len())) {
                    progress.bytes(id, "Pushing", current, counter.total);
                }
            })
    }
}
