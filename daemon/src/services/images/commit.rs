//! New images from old ones: a container's snapshot diffed against its
//! image's top layer becomes one more layer (`docker commit`, and every
//! RUN/COPY/ADD step of the builder), or only the config changes (the
//! builder's metadata steps). The layer is made by containerd's diff
//! service, stored uncompressed (so its digest is its diff ID, and the
//! unpack that follows checks it), then the config, the manifest and the
//! record, all under one ingestion lease.

use std::collections::BTreeMap;

use api_types::container::ContainerConfig;
use api_types::reference::Reference;
use serde_json::{json, Map, Value};

use super::{
    is_manifest, ImageService, ResolvedImage, StoredImage, MEDIA_TYPE_DOCKER_CONFIG, MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_OCI_MANIFEST,
};
use crate::backends::containerd::OciDescriptor;
use crate::services::ServiceError;

const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_TYPE_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// The diff ID of a tar with no entries: a change that changed nothing.
pub const EMPTY_TAR_DIFF_ID: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// What a new image is made of.
pub struct NewImage<'a> {
    /// The image it builds on; `None` is `scratch`.
    pub parent: Option<&'a ResolvedImage>,
    /// An active snapshot over the parent's top layer whose changes become
    /// the new layer; `None` for a config-only image.
    pub snapshot: Option<&'a str>,
    /// The new image's `config`.
    pub config: &'a ContainerConfig,
    /// The config that made it (the builder's cache key), kept as dockerd
    /// keeps `container_config`.
    pub container_config: Option<&'a ContainerConfig>,
    /// The container it was committed from, if any.
    pub container: &'a str,
    pub created_by: String,
    pub author: String,
    pub comment: String,
    /// Names for it; none leaves it dangling.
    pub names: &'a [Reference],
}

impl ImageService {
    /// Make and store the image `new` describes; answers its ID and target.
    pub async fn create_image(&self, new: NewImage<'_>) -> Result<StoredImage, ServiceError> {
        let ingest = self.begin_ingestion().await?;
        let result = self.create_image_in(&ingest, &new, None, None).await;
        ingest.settle(result).await
    }

    /// The image `new` describes, under `ingest`. Its layer is `layer`
    /// (a blob written under `ingest`, uncompressed) when given, else the
    /// snapshot's diff; `platform` overrides the parent's or this host's.
    pub(super) async fn create_image_in(
        &self,
        ingest: &super::Ingestion,
        new: &NewImage<'_>,
        layer: Option<OciDescriptor>,
        platform: Option<&super::Platform>,
    ) -> Result<StoredImage, ServiceError> {
        let c = ingest.containerd();
        let oci = new.parent.is_some_and(|p| p.manifest.media_type == MEDIA_TYPE_OCI_MANIFEST);
        let layer = match (layer, new.snapshot) {
            (Some(layer), _) => Some(layer),
            (None, Some(key)) => self.diff_layer(c, new.parent, key).await?,
            (None, None) => None,
        };
        let mut base: Map<String, Value> = match new.parent {
            Some(p) => self.read_json(c, &p.config_descriptor.digest).await?,
            None => Map::new(),
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        match platform {
            Some(p) => {
                base.insert("architecture".into(), json!(p.architecture));
                base.insert("os".into(), json!(p.os));
                set_or_remove(&mut base, "variant", &p.variant);
            }
            None => {
                let platform = self.platform();
                base.entry("architecture").or_insert_with(|| json!(platform.architecture));
                base.entry("os").or_insert_with(|| json!(platform.os));
            }
        }
        base.insert("config".into(), serde_json::to_value(new.config).map_err(internal)?);
        base.insert("created".into(), json!(now));
        base.insert("docker_version".into(), json!(crate::release::VERSION));
        set_or_remove(&mut base, "author", &new.author);
        set_or_remove(&mut base, "comment", &new.comment);
        set_or_remove(&mut base, "container", new.container);
        match new.container_config {
            Some(cc) => base.insert("container_config".into(), serde_json::to_value(cc).map_err(internal)?),
            None => base.remove("container_config"),
        };
        match new.parent {
            Some(p) => base.insert("parent".into(), json!(p.id())),
            None => base.remove("parent"),
        };
        let mut diff_ids: Vec<Value> = new.parent.map(|p| p.config.rootfs.diff_ids.iter().map(|d| json!(d)).collect()).unwrap_or_default();
        if let Some(l) = &layer {
            diff_ids.push(json!(l.digest));
        }
        base.insert("rootfs".into(), json!({"type": "layers", "diff_ids": diff_ids}));
        let mut entry = Map::new();
        entry.insert("created".into(), json!(now));
        if !new.author.is_empty() {
            entry.insert("author".into(), json!(new.author));
        }
        if !new.created_by.is_empty() {
            entry.insert("created_by".into(), json!(new.created_by));
        }
        if !new.comment.is_empty() {
            entry.insert("comment".into(), json!(new.comment));
        }
        if layer.is_none() {
            entry.insert("empty_layer".into(), json!(true));
        }
        let history = base.entry("history").or_insert_with(|| json!([]));
        if !history.is_array() {
            *history = json!([]);
        }
        if let Some(h) = history.as_array_mut() {
            h.push(Value::Object(entry));
        }
        let mut layers: Vec<Value> = new.parent.map(|p| p.layers.iter().map(descriptor_json).collect()).unwrap_or_default();
        if let Some(l) = &layer {
            let media_type = if oci { MEDIA_TYPE_OCI_LAYER } else { MEDIA_TYPE_DOCKER_LAYER };
            layers.push(json!({"mediaType": media_type, "digest": l.digest, "size": l.size}));
        }
        self.store_config(ingest, &base, layers, oci, new.names).await
    }

    /// Store an image made of `config` and `layers` (descriptors whose
    /// blobs are in the content store): the config and manifest blobs,
    /// then the image itself, named `names` or dangling.
    pub(super) async fn store_config(
        &self,
        ingest: &super::Ingestion,
        config: &Map<String, Value>,
        layers: Vec<Value>,
        oci: bool,
        names: &[Reference],
    ) -> Result<StoredImage, ServiceError> {
        let config_bytes = serde_json::to_vec(config).map_err(internal)?;
        let config_type = if oci { MEDIA_TYPE_OCI_CONFIG } else { MEDIA_TYPE_DOCKER_CONFIG };
        let config_digest = ingest.write_small_blob(&config_bytes, &BTreeMap::new()).await?;
        let manifest_type = if oci { MEDIA_TYPE_OCI_MANIFEST } else { MEDIA_TYPE_DOCKER_MANIFEST };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config_bytes.len()},
            "layers": layers,
        });
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(internal)?;
        let manifest_digest = ingest.write_small_blob(&manifest_bytes, &BTreeMap::new()).await?;
        let target = OciDescriptor {
            media_type: manifest_type.to_string(),
            digest: manifest_digest,
            size: manifest_bytes.len() as i64,
            annotations: BTreeMap::new(),
        };
        debug_assert!(is_manifest(&target.media_type));
        self.store_image(ingest, &target, names).await
    }

    /// The changes in snapshot `key` over the parent's top layer, as an
    /// uncompressed layer blob; `None` when nothing changed.
    async fn diff_layer(
        &self,
        c: &crate::backends::containerd::Containerd,
        parent: Option<&ResolvedImage>,
        key: &str,
    ) -> Result<Option<OciDescriptor>, ServiceError> {
        let upper = c.rootfs_mounts(key).await?;
        let view = format!("berthd-commit-view-{}", uuid::Uuid::new_v4().simple());
        // Against the layer right below (a container's init layer, whose
        // files are not the container's changes), else the image's top.
        let below = c.snapshot_stat(c.snapshotter(), key).await?.map(|i| i.parent);
        let top = below.unwrap_or_else(|| parent.and_then(|p| p.chain_ids.last().cloned()).unwrap_or_default());
        let lower = c.snapshot_view(c.snapshotter(), &view, &top).await?;
        let reference = format!("berthd-commit-{}", uuid::Uuid::new_v4().simple());
        let diff = c.diff_compare(&lower, &upper, MEDIA_TYPE_OCI_LAYER, &reference).await;
        if let Err(e) = c.snapshot_remove(c.snapshotter(), &view).await {
            tracing::warn!(snapshot = %view, error = %e, "removing the commit's lower view");
        }
        let diff = diff?;
        Ok((diff.digest != EMPTY_TAR_DIFF_ID).then_some(diff))
    }

    /// The image a builder step with `container_config` over `parent` made
    /// before, if it is still here (the classic builder's cache: same
    /// parent, same step config).
    pub async fn find_child(&self, parent: Option<&str>, container_config: &ContainerConfig) -> Result<Option<String>, ServiceError> {
        child_of(&self.local_images().await?, parent, container_config)
    }
}

/// `find_child` among `images`.
pub(super) fn child_of(images: &[super::LocalImage], parent: Option<&str>, container_config: &ContainerConfig) -> Result<Option<String>, ServiceError> {
    let wanted = serde_json::to_value(container_config).map_err(internal)?;
    let mut best: Option<(i64, String)> = None;
    for image in images {
        let cfg = &image.resolved.config;
        if cfg.parent.as_deref().filter(|p| !p.is_empty()) != parent || cfg.container_config.as_ref() != Some(&wanted) {
            continue;
        }
        let created = cfg.created_unix();
        if best.as_ref().is_none_or(|(t, _)| created > *t) {
            best = Some((created, image.id().to_string()));
        }
    }
    Ok(best.map(|(_, id)| id))
}

pub(super) fn descriptor_json(d: &OciDescriptor) -> Value {
    let mut v = json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size});
    if !d.annotations.is_empty() {
        v["annotations"] = json!(d.annotations);
    }
    v
}

fn set_or_remove(map: &mut Map<String, Value>, key: &str, value: &str) {
    if value.is_empty() {
        map.remove(key);
    } else {
        map.insert(key.into(), json!(value));
    }
}

fn internal(e: serde_json::Error) -> ServiceError {
    ServiceError::Internal(format!("encoding image config: {e}"))
}

/// A snapshot the builder works in, held by its own lease (containerd's
/// GC would take an unreferenced active snapshot at any moment).
pub struct WorkSnapshot {
    pub key: String,
    pub mounts: Vec<crate::backends::containerd::Mount>,
    lease: String,
}

/// How long a build snapshot's lease outlives a crashed berthd.
const WORK_LEASE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl ImageService {
    /// A new writable snapshot over `parent`'s top layer (empty for scratch).
    pub async fn work_snapshot(&self, parent: Option<&ResolvedImage>) -> Result<WorkSnapshot, ServiceError> {
        self.build_snapshot(parent, true).await
    }

    /// A read-only view of `image`'s root.
    pub async fn view_snapshot(&self, image: &ResolvedImage) -> Result<WorkSnapshot, ServiceError> {
        self.build_snapshot(Some(image), false).await
    }

    async fn build_snapshot(&self, parent: Option<&ResolvedImage>, writable: bool) -> Result<WorkSnapshot, ServiceError> {
        let key = format!("berthd-build-{}", uuid::Uuid::new_v4().simple());
        let lease = self.containerd.lease_create(&key, "build", WORK_LEASE_EXPIRY).await?;
        let leased = self.containerd.with_lease(&lease);
        let top = parent.and_then(|p| p.chain_ids.last().cloned()).unwrap_or_default();
        let mounts = if writable { leased.rootfs_prepare(&key, &top).await } else { leased.snapshot_view(leased.snapshotter(), &key, &top).await };
        match mounts {
            Ok(mounts) => Ok(WorkSnapshot { key, mounts, lease }),
            Err(e) => {
                let _ = self.containerd.lease_delete(&lease, false).await;
                Err(e.into())
            }
        }
    }

    pub async fn drop_snapshot(&self, snapshot: &WorkSnapshot) {
        if let Err(e) = self.containerd.rootfs_remove(&snapshot.key).await {
            tracing::warn!(snapshot = %snapshot.key, error = %e, "removing a build snapshot");
        }
        if let Err(e) = self.containerd.lease_delete(&snapshot.lease, false).await {
            tracing::warn!(lease = %snapshot.lease, error = %e, "dropping a build snapshot's lease");
        }
    }
}

impl ImageService {
    /// The classic builder's cache: untagged images a build step made
    /// (they carry the step's `container_config`), except those `in_use`.
    /// Removes them; answers their IDs and the bytes freed.
    pub async fn prune_build_cache(&self, in_use: &std::collections::BTreeSet<String>) -> Result<(Vec<String>, u64), ServiceError> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for image in self.local_images().await? {
            if !image.is_dangling() || image.resolved.config.container_config.is_none() || in_use.contains(image.id()) {
                continue;
            }
            let mut out = Vec::new();
            reclaimed += self.delete_image(&image, &mut out).await?;
            self.emit_removals(image.id(), &out);
            deleted.push(image.id().to_string());
        }
        Ok((deleted, reclaimed))
    }
}
