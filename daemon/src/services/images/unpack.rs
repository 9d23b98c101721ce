//! Ingestion, shared by load, import and pull: blobs written under a lease,
//! layers unpacked into snapshots by containerd's diff service, GC labels
//! set as containerd's own client sets them, then the image records.
//!
//! ```text
//! let ingest = images.begin_ingestion().await?;       // lease
//! ingest.write_blob(&desc, chunks).await?;            // verified against desc
//! let stored = images.store_image(&ingest, &target, &names).await?;
//! ingest.finish().await;                               // records now hold it
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use api_types::reference::Reference;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::{
    is_index, is_manifest, ImageService, Index, ResolvedImage, DANGLING_PREFIX,
};
use crate::backends::containerd::content::labels;
use crate::backends::containerd::snapshots::LABEL_SNAPSHOT_REF;
use crate::backends::containerd::{
    CommittedBlob, Containerd, ContentWriter, ErrorKind, ImageRecord, LeaseResource, OciDescriptor,
};
use crate::services::ServiceError;

/// How long an ingestion lease outlives a crashed berthd (containerd's
/// client uses the same).
const LEASE_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// One ingestion: everything written through it is held by its lease until
/// `finish` (records reference it by then) or `abort` (GC takes it).
pub struct Ingestion {
    leased: Containerd,
    base: Containerd,
    lease: String,
}

/// What `store_image` created.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The image ID (config digest).
    pub id: String,
    pub target: OciDescriptor,
    /// Per name: the ID of the image that held it before, when it changed.
    pub replaced: Vec<(Reference, String)>,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

impl Ingestion {
    /// The containerd handle whose calls run under this ingestion's lease.
    pub fn containerd(&self) -> &Containerd {
        &self.leased
    }

    /// Whether the blob is present already; if so the lease now holds it.
    pub async fn has_blob(&self, digest: &str) -> Result<bool, ServiceError> {
        if self.base.content_info(digest).await?.is_none() {
            return Ok(false);
        }
        self.base.lease_add_resource(&self.lease, LeaseResource::Content(digest)).await?;
        Ok(true)
    }

    /// A writer for one blob; with `expected`, commit fails (and keeps
    /// nothing) unless digest and size match.
    pub async fn blob_writer(&self, expected: Option<(&str, i64)>) -> Result<ContentWriter, ServiceError> {
        Ok(self.leased.content_writer(&unique("berthd-ingest"), expected).await?)
    }

    /// Write a blob from a stream of chunks, verified against `expected`.
    pub async fn write_blob<S, E>(&self, expected: &OciDescriptor, chunks: S) -> Result<CommittedBlob, ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let mut writer = self.blob_writer(Some((&expected.digest, expected.size))).await?;
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    writer.abort().await;
                    return Err(ServiceError::Internal(format!("reading blob {}: {e}", expected.digest)));
                }
            };
            for piece in chunk.chunks(crate::backends::containerd::content::WRITE_CHUNK) {
                writer.write(piece).await?;
            }
        }
        Ok(writer.commit(&BTreeMap::new()).await?)
    }

    /// Write a small in-memory blob (manifest, config) with labels.
    pub async fn write_small_blob(&self, data: &[u8], with_labels: &BTreeMap<String, String>) -> Result<String, ServiceError> {
        match self.leased.content_write_blob(&unique("berthd-ingest"), data, with_labels).await {
            Ok(digest) => Ok(digest),
            // Here already (an earlier pull or load): the lease takes it.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let digest = crate::backends::containerd::content::sha256_digest(data);
                self.has_blob(&digest).await?;
                self.leased.content_set_labels(&digest, with_labels).await?;
                Ok(digest)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Apply `layer` (whose uncompressed digest must be `diff_id`) onto
    /// the snapshot `parent` ("" for none) and commit it as `chain`; a
    /// snapshot already there is reused.
    pub async fn apply_layer(&self, layer: &OciDescriptor, diff_id: &str, parent: &str, chain: &str) -> Result<(), ServiceError> {
        let c = &self.leased;
        if c.snapshot_stat(c.snapshotter(), chain).await?.is_some() {
            self.base.lease_add_resource(&self.lease, LeaseResource::Snapshot { snapshotter: self.base.snapshotter(), key: chain }).await?;
            return Ok(());
        }
        let key = format!("extract-{} {chain}", uuid::Uuid::new_v4().simple());
        let snapshot_labels = [(LABEL_SNAPSHOT_REF, chain)];
        let mounts = c.snapshot_prepare(c.snapshotter(), &key, parent, &snapshot_labels).await?;
        let applied = match c.diff_apply(layer, &mounts).await {
            Ok(a) => a,
            Err(e) => {
                let _ = c.snapshot_remove(c.snapshotter(), &key).await;
                return Err(ServiceError::Internal(format!(
                    "failed to extract layer ({} {}): {e}",
                    layer.media_type, layer.digest
                )));
            }
        };
        if applied.digest != diff_id {
            let _ = c.snapshot_remove(c.snapshotter(), &key).await;
            return Err(ServiceError::InvalidParameter(format!(
                "wrong diff id {} calculated on extraction of {}, expected {diff_id}",
                applied.digest, layer.digest
            )));
        }
        match c.snapshot_commit(c.snapshotter(), chain, &key, &snapshot_labels).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let _ = c.snapshot_remove(c.snapshotter(), &key).await;
            }
            Err(e) => {
                let _ = c.snapshot_remove(c.snapshotter(), &key).await;
                return Err(e.into());
            }
        }
        if layer.digest != diff_id {
            let set = BTreeMap::from([(labels::UNCOMPRESSED.to_string(), diff_id.to_string())]);
            c.content_set_labels(&layer.digest, &set).await?;
        }
        Ok(())
    }

    /// Done: the records hold what was written; drop the lease.
    pub async fn finish(self) {
        if let Err(e) = self.base.lease_delete(&self.lease, false).await {
            tracing::warn!(lease = %self.lease, error = %e, "could not delete ingestion lease; it expires by itself");
        }
    }

    /// `finish` after success, `abort` after failure; passes `result` on.
    pub async fn settle<T>(self, result: Result<T, ServiceError>) -> Result<T, ServiceError> {
        match &result {
            Ok(_) => self.finish().await,
            Err(_) => self.abort().await,
        }
        result
    }

    /// Failed: drop the lease and let GC remove what was written now.
    pub async fn abort(self) {
        if let Err(e) = self.base.lease_delete(&self.lease, true).await {
            tracing::warn!(lease = %self.lease, error = %e, "could not delete ingestion lease; it expires by itself");
        }
    }
}

impl ImageService {
    /// Unpack an image whose layers are not in this daemon's snapshotter
    /// (pulled while `storage-driver` named another one).
    pub async fn ensure_unpacked(&self, image_id: &str) -> Result<(), ServiceError> {
        let found = self.find(image_id).await?;
        let ingest = self.begin_ingestion().await?;
        let result = self.unpack(&ingest, &found.image.resolved).await;
        ingest.settle(result).await
    }

    /// Start an ingestion (a fresh lease).
    pub async fn begin_ingestion(&self) -> Result<Ingestion, ServiceError> {
        let lease = self.containerd.lease_create(&unique("berthd-ingest"), "ingest", LEASE_EXPIRY).await?;
        Ok(Ingestion { leased: self.containerd.with_lease(&lease), base: self.containerd.clone(), lease })
    }

    /// Make `target` (an index or manifest whose blobs are in the content
    /// store) a usable image: GC labels on index and manifest, layers
    /// unpacked for this platform, config labelled with its snapshot. Does
    /// not name it; see `name_image`.
    pub async fn prepare_image(&self, ingest: &Ingestion, target: &OciDescriptor) -> Result<ResolvedImage, ServiceError> {
        let c = ingest.containerd();
        if is_index(&target.media_type) {
            let index: Index = self.read_json(c, &target.digest).await?;
            let set: BTreeMap<String, String> = index
                .manifests
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("{}{i}", labels::GC_REF_MANIFEST_PREFIX), m.digest.clone()))
                .collect();
            c.content_set_labels(&target.digest, &set).await?;
        }
        let resolved = self.resolve_uncached(c, target).await?;
        if !is_manifest(&resolved.manifest.media_type) {
            return Err(ServiceError::InvalidParameter(format!("{} is not an image manifest", resolved.manifest.digest)));
        }
        let mut set = BTreeMap::from([(labels::GC_REF_CONFIG.to_string(), resolved.config_descriptor.digest.clone())]);
        for (i, layer) in resolved.layers.iter().enumerate() {
            set.insert(format!("{}{i}", labels::GC_REF_LAYER_PREFIX), layer.digest.clone());
        }
        c.content_set_labels(&resolved.manifest.digest, &set).await?;
        self.unpack(ingest, &resolved).await?;
        Ok(resolved)
    }

    /// Unpack the layers into the overlayfs snapshotter, one committed
    /// snapshot per chain ID; layers already there are reused.
    pub async fn unpack(&self, ingest: &Ingestion, image: &ResolvedImage) -> Result<(), ServiceError> {
        check_layer_count(image)?;
        for i in 0..image.layers.len() {
            self.unpack_layer(ingest, image, i).await?;
        }
        if let Some(top) = image.chain_ids.last() {
            let set = BTreeMap::from([(labels::gc_ref_snapshot(ingest.containerd().snapshotter()), top.clone())]);
            ingest.containerd().content_set_labels(&image.config_descriptor.digest, &set).await?;
        }
        Ok(())
    }

    /// Unpack layer `i` onto the snapshot of the layers below it (which
    /// must be unpacked already); a snapshot already there is reused.
    pub async fn unpack_layer(&self, ingest: &Ingestion, image: &ResolvedImage, i: usize) -> Result<(), ServiceError> {
        check_layer_count(image)?;
        let parent = if i == 0 { "" } else { image.chain_ids[i - 1].as_str() };
        ingest.apply_layer(&image.layers[i], &image.config.rootfs.diff_ids[i], parent, &image.chain_ids[i]).await
    }

    /// Prepare `target` and give it `names` (tags and/or digests); with no
    /// names it is kept as a dangling image. The ingestion is left open:
    /// the caller finishes it.
    pub async fn store_image(
        &self,
        ingest: &Ingestion,
        target: &OciDescriptor,
        names: &[Reference],
    ) -> Result<StoredImage, ServiceError> {
        let resolved = self.prepare_image(ingest, target).await?;
        let replaced = self.name_image(target, names).await?;
        Ok(StoredImage { id: resolved.id().to_string(), target: target.clone(), replaced })
    }

    /// Point each name at `target`; a name that pointed at another image
    /// moves, and that image stays listed (dangling) if it has no other
    /// name. With no names, `target` gets a dangling record.
    pub async fn name_image(&self, target: &OciDescriptor, names: &[Reference]) -> Result<Vec<(Reference, String)>, ServiceError> {
        let mut replaced = Vec::new();
        if names.is_empty() {
            self.ensure_dangling(target).await?;
            return Ok(replaced);
        }
        for name in names {
            if let Some(old_id) = self.put_record(&name.to_string(), target).await? {
                replaced.push((name.clone(), old_id));
            }
        }
        self.containerd.image_delete(&dangling_name(&target.digest), false).await?;
        Ok(replaced)
    }

    /// Create or move one record; answers the old image's ID when it moved.
    pub(crate) async fn put_record(&self, name: &str, target: &OciDescriptor) -> Result<Option<String>, ServiceError> {
        let record = ImageRecord::new(name, target.clone());
        match self.containerd.image_create(&record).await {
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        let Some(existing) = self.containerd.image_get(name).await? else {
            self.containerd.image_create(&record).await?;
            return Ok(None);
        };
        if existing.target.digest == target.digest {
            return Ok(None);
        }
        let old = self.resolve_target(&existing.target).await.ok();
        let new = self.resolve_target(target).await?;
        let old_id = old.as_ref().map(|o| o.id().to_string());
        if old_id.as_deref() != Some(new.id()) {
            // The old image keeps being listed unless another name holds it.
            let others = self.containerd.image_list(&[]).await?;
            let mut still_named = false;
            for r in others.iter().filter(|r| r.name != name && !r.name.starts_with(DANGLING_PREFIX)) {
                if let Ok(res) = self.resolve_target(&r.target).await {
                    if Some(res.id()) == old_id.as_deref() {
                        still_named = true;
                        break;
                    }
                }
            }
            if !still_named {
                self.ensure_dangling(&existing.target).await?;
            }
        }
        let mut moved = existing.clone();
        moved.target = target.clone();
        self.containerd.image_update(&moved).await?;
        Ok(old_id.filter(|id| id != new.id()))
    }

    pub(crate) async fn ensure_dangling(&self, target: &OciDescriptor) -> Result<(), ServiceError> {
        let record = ImageRecord::new(dangling_name(&target.digest), target.clone());
        match self.containerd.image_create(&record).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn check_layer_count(image: &ResolvedImage) -> Result<(), ServiceError> {
    let diff_ids = image.config.rootfs.diff_ids.len();
    if diff_ids != image.layers.len() {
        return Err(ServiceError::InvalidParameter(format!(
            "mismatched image rootfs and manifest layers: {diff_ids} diff IDs, {} layers",
            image.layers.len()
        )));
    }
    Ok(())
}

pub fn dangling_name(digest: &str) -> String {
    format!("{DANGLING_PREFIX}{digest}")
}
