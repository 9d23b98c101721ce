//! `POST /images/create?fromImage=`: pull from a registry into containerd,
//! as dockerd's `daemon/containerd/image_pull.go` with the progress of
//! `distribution/pull_v2.go`. Resolve and fetch the manifest and config
//! first (failures there are the HTTP answer), then, under one ingestion
//! lease, layers download in parallel (the daemon-wide download limit),
//! each streamed into the content store and verified, and are unpacked in
//! order as soon as the ones below are. Nothing is named until everything
//! is in; any failure or a client hang-up drops the lease.

use std::collections::{BTreeMap, HashSet};

use api_types::reference::{Digest, Reference};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::distribution::{pull_error, read_small_blob, registry_error, tag_or_digest, to_containerd, ByteCounter, Progress};
use super::unpack::Ingestion;
use super::{short_id, ImageService, ResolvedImage};
use crate::backends::containerd::content::labels::DISTRIBUTION_SOURCE_PREFIX;
use crate::backends::containerd::OciDescriptor;
use crate::backends::registry::{Credentials, Descriptor, Platform, PlatformManifest, PlatformMatcher, Repository};
use crate::services::ServiceError;

pub struct PullOptions {
    /// With a tag or a digest.
    pub reference: Reference,
    /// `None`: the daemon's platform.
    pub platform: Option<Platform>,
    pub credentials: Credentials,
}

/// What was resolved before any output.
struct Remote {
    repo: Repository,
    /// The descriptor the tag or digest resolved to (an index or a manifest).
    top: Descriptor,
    chosen: PlatformManifest,
    config: bytes::Bytes,
}

impl ImageService {
    /// Pull `opts.reference`, reporting on `progress`.
    pub async fn pull(&self, opts: PullOptions, progress: &Progress) -> Result<(), ServiceError> {
        let name = opts.reference.familiar_string();
        let result = progress
            .run(async {
                let remote = self.resolve_remote(&opts).await?;
                let ingest = self.begin_ingestion().await?;
                let result = tokio::select! {
                    r = self.pull_into(&ingest, &opts.reference, &remote, progress) => r,
                    _ = progress.closed() => Err(super::distribution::cancelled()),
                };
                ingest.settle(result).await
            })
            .await;
        if result.is_ok() {
            self.emit("pull", &name, &name);
        }
        crate::services::metrics::METRICS.pull(result.is_ok());
        result
    }

    async fn resolve_remote(&self, opts: &PullOptions) -> Result<Remote, ServiceError> {
        let reference = &opts.reference;
        let matcher = opts.platform.as_ref().map(PlatformMatcher::only).unwrap_or_else(PlatformMatcher::host);
        let (repo, top) = self.registry()?.resolve(reference, &opts.credentials).await.map_err(|e| pull_error(e, reference))?;
        let chosen = repo.fetch_platform_manifest(&top, &matcher).await.map_err(|e| pull_error(e, reference))?;
        let config = read_small_blob(&repo, &chosen.manifest.config).await.map_err(|e| pull_error(e, reference))?;
        Ok(Remote { repo, top, chosen, config })
    }

    async fn pull_into(
        &self,
        ingest: &Ingestion,
        reference: &Reference,
        remote: &Remote,
        progress: &Progress,
    ) -> Result<(), ServiceError> {
        progress.message(&tag_or_digest(reference), format!("Pulling from {}", reference.path)).await;
        let source = BTreeMap::from([(format!("{DISTRIBUTION_SOURCE_PREFIX}{}", reference.domain), reference.path.clone())]);
        let layers = &remote.chosen.manifest.layers;
        let config_desc = &remote.chosen.manifest.config;

        // What is here already, before this pull writes anything.
        let mut present = Vec::with_capacity(layers.len());
        for layer in layers {
            present.push(ingest.has_blob(&layer.digest).await?);
        }
        let up_to_date = ingest.has_blob(&config_desc.digest).await? && present.iter().all(|p| *p);

        for (_, bytes) in &remote.chosen.indexes {
            ingest.write_small_blob(bytes, &source).await?;
        }
        ingest.write_small_blob(&remote.chosen.bytes, &source).await?;
        ingest.write_small_blob(&remote.config, &source).await?;
        let (target, image) = self.pulled_target(ingest, remote).await?;

        if !up_to_date {
            for (layer, here) in layers.iter().zip(&present) {
                let status = if *here { "Already exists" } else { "Pulling fs layer" };
                progress.update(&short_id(&layer.digest), status).await;
            }
        }
        let (done_tx, done_rx) = mpsc::unbounded_channel::<usize>();
        let (present_here, source) = (&present, &source);
        let downloads = async move {
            let mut running = FuturesUnordered::new();
            let mut started = HashSet::new();
            for (i, layer) in layers.iter().enumerate() {
                // A layer listed twice is fetched once.
                if !present_here[i] && started.insert(layer.digest.clone()) {
                    running.push(self.download_layer(ingest, &remote.repo, layer, source, progress));
                }
            }
            while let Some(done) = running.next().await {
                let digest = done?;
                let _ = done_tx.send(layers.iter().position(|l| l.digest == digest).unwrap_or(usize::MAX));
            }
            Ok::<(), ServiceError>(())
        };
        let extraction = self.extract_in_order(ingest, &image, &present, up_to_date, done_rx, progress);
        futures_util::future::try_join(downloads, extraction).await?;

        let names = pulled_names(reference, &remote.top.digest)?;
        let mut newer = false;
        for name in &names {
            let current = self.containerd.image_get(&name.to_string()).await?;
            newer |= current.map(|r| r.target.digest) != Some(target.digest.clone());
        }
        self.store_image(ingest, &target, &names).await?;
        progress.message("", format!("Digest: {}", remote.top.digest)).await;
        let status = if newer { "Downloaded newer image for" } else { "Image is up to date for" };
        progress.message("", format!("Status: {status} {}", reference.familiar_string())).await;
        Ok(())
    }

    /// The record target: the index the tag named when this daemon's own
    /// platform resolution picks the same manifest from it, else the
    /// manifest itself (a pull for another platform).
    async fn pulled_target(&self, ingest: &Ingestion, remote: &Remote) -> Result<(OciDescriptor, ResolvedImage), ServiceError> {
        let manifest = to_containerd(&remote.chosen.descriptor);
        if let Some((outer, _)) = remote.chosen.indexes.first() {
            let index = to_containerd(outer);
            if let Ok(resolved) = self.resolve_uncached(ingest.containerd(), &index).await {
                if resolved.manifest.digest == manifest.digest {
                    return Ok((index, resolved));
                }
            }
        }
        let resolved = self.resolve_uncached(ingest.containerd(), &manifest).await?;
        Ok((manifest, resolved))
    }

    /// One layer: wait for a download slot, stream it from the registry
    /// into the content store (verified on the way), report progress.
    /// Answers the layer's digest.
    async fn download_layer(
        &self,
        ingest: &Ingestion,
        repo: &Repository,
        layer: &Descriptor,
        source: &BTreeMap<String, String>,
        progress: &Progress,
    ) -> Result<String, ServiceError> {
        let id = short_id(&layer.digest);
        let _slot = self.transfer_slot(false, &id, progress).await?;
        let blob = repo.fetch_blob(layer).await.map_err(registry_error)?;
        let mut counter = ByteCounter::new(layer.size);
        let counted = blob.inspect(|chunk| {
            if let Some(current) = chunk.as_ref().ok().and_then(|c| counter.advance(c.len())) {
                progress.bytes(&id, "Downloading", current, counter.total);
            }
        });
        ingest.write_blob(&to_containerd(layer), counted).await.map_err(|e| match e {
            ServiceError::Internal(m) if m.contains("verification failed") => {
                ServiceError::Internal(format!("filesystem layer verification failed for digest {}", layer.digest))
            }
            other => other,
        })?;
        ingest.containerd().content_set_labels(&layer.digest, source).await?;
        progress.update(&id, "Verifying Checksum").await;
        progress.update(&id, "Download complete").await;
        Ok(layer.digest.clone())
    }

    /// Unpack layers bottom up, each once its download (announced on
    /// `done`) and the layers below it are in.
    async fn extract_in_order(
        &self,
        ingest: &Ingestion,
        image: &ResolvedImage,
        present: &[bool],
        quiet: bool,
        mut done: mpsc::UnboundedReceiver<usize>,
        progress: &Progress,
    ) -> Result<(), ServiceError> {
        let mut ready: HashSet<String> =
            image.layers.iter().zip(present).filter(|(_, p)| **p).map(|(l, _)| l.digest.clone()).collect();
        for (i, layer) in image.layers.iter().enumerate() {
            while !ready.contains(&layer.digest) {
                match done.recv().await {
                    Some(j) => {
                        if let Some(l) = image.layers.get(j) {
                            ready.insert(l.digest.clone());
                        }
                    }
                    None => return Err(ServiceError::Internal(format!("layer {} was not downloaded", layer.digest))),
                }
            }
            let id = short_id(&layer.digest);
            let fresh = !present[i] && !quiet;
            if fresh {
                let size = layer.size.max(0) as u64;
                progress.bytes(&id, "Extracting", size, size);
            }
            self.unpack_layer(ingest, image, i).await?;
            if fresh {
                progress.update(&id, "Pull complete").await;
            }
        }
        Ok(())
    }
}

/// The names a pull gives: `name:tag` for a tag, and `name@digest` (the
/// RepoDigest) always.
fn pulled_names(reference: &Reference, digest: &str) -> Result<Vec<Reference>, ServiceError> {
    let digest = Digest::parse(digest).map_err(|e| ServiceError::Internal(format!("registry digest {digest}: {e}")))?;
    let mut names = Vec::new();
    if let Some(tag) = &reference.tag {
        names.push(reference.with_tag(tag).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?);
    }
    names.push(reference.with_digest(&digest));
    Ok(names)
}
