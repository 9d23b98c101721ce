//! Images, kept in containerd: records in its image store named by the full
//! normalized reference, content in its content store, layers unpacked into
//! the overlayfs snapshotter. The image ID is the config digest, as in
//! dockerd; records play the part of dockerd's reference store
//! (`name:tag`, `name@digest`, and `moby-dangling@<digest>` for an image
//! that lost its last name).

pub mod auth;
mod cache;
pub mod commit;
pub mod distribution;
mod history;
mod import;
mod inspect;
mod list;
mod load;
mod prune;
mod pull;
mod push;
mod remove;
mod save;
mod tag;
pub mod unpack;
mod unpack_ahead;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use api_types::reference::{self, InvalidReference, Reference};
use serde::Deserialize;

use super::events::EventBus;
use super::ServiceError;
use crate::backends::containerd::{Containerd, ImageRecord, OciDescriptor};

pub use commit::{NewImage, WorkSnapshot};
pub use list::glob_match;
pub use distribution::Progress;
pub use import::ImportOptions;
pub use list::ImageListOptions;
pub use pull::PullOptions;
pub use push::PushOptions;
pub use load::LoadOptions;
pub use prune::ImagePruneOptions;
pub use prune::parse_until;
pub use remove::{ImageRemoveOptions, ImageUser};
pub use save::SaveArchive;
pub use unpack::{Ingestion, StoredImage};

/// Name prefix of the record that keeps an untagged image listed.
pub const DANGLING_PREFIX: &str = "moby-dangling@";

pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// containerd's annotation for the full image name in an index.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI's reference-name annotation (`docker save` puts the tag there).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Manifests, indexes and configs are small; anything larger is refused.
pub const MAX_METADATA_BLOB: usize = 20 * 1024 * 1024;

pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_MANIFEST || media_type == MEDIA_TYPE_DOCKER_MANIFEST
}

/// "No such image: busybox:latest", as dockerd words it.
pub fn no_such_image(input: &str) -> ServiceError {
    let shown = match Reference::parse_normalized(input) {
        Ok(r) => r.with_default_tag().familiar_string(),
        Err(_) => input.to_string(),
    };
    ServiceError::NotFound(format!("No such image: {shown}"))
}

/// A reference as the API takes it; 400 with Docker's text when invalid.
pub fn parse_reference(input: &str) -> Result<Reference, ServiceError> {
    Reference::parse_normalized(input).map_err(|e| ServiceError::InvalidParameter(e.to_string()))
}

/// The name `repo` and `tag` give a new image (commit, import), as dockerd
/// reads them; `verb` names the operation in the digest refusal.
pub fn new_image_reference(repo: &str, tag: &str, verb: &str) -> Result<Option<Reference>, ServiceError> {
    if repo.is_empty() {
        return Ok(None);
    }
    let r = parse_reference(repo)?;
    if r.digest.is_some() {
        return Err(ServiceError::InvalidParameter(format!("cannot {verb} digest reference")));
    }
    let r = if tag.is_empty() { r } else { r.with_tag(tag).map_err(|e| ServiceError::InvalidParameter(e.to_string()))? };
    Ok(Some(r.with_default_tag()))
}

/// The platform this daemon runs images for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl Platform {
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "aarch64" => ("arm64", "v8"),
            "x86" => ("386", ""),
            "arm" => ("arm", "v7"),
            "powerpc64" => ("ppc64le", ""),
            "s390x" => ("s390x", ""),
            "riscv64" => ("riscv64", ""),
            other => (other, ""),
        };
        Self { os: "linux".into(), architecture: architecture.into(), variant: variant.into() }
    }

    fn matches(&self, os: &str, architecture: &str, variant: &str) -> bool {
        os == self.os
            && architecture == self.architecture
            && (variant.is_empty() || self.variant.is_empty() || variant == self.variant || (self.architecture == "arm64" && variant == "v8"))
    }
}

/// The image config (the part berthd reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(rename = "os.version", default)]
    pub os_version: Option<String>,
    #[serde(default)]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub rootfs: RootFsConfig,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub docker_version: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    /// The builder step's config, which its cache matches on.
    #[serde(default)]
    pub container_config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFsConfig {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct HistoryEntry {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

impl ImageConfig {
    pub fn labels(&self) -> Option<BTreeMap<String, String>> {
        let labels = self.config.as_ref()?.get("Labels")?.as_object()?;
        Some(labels.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
    }

    pub fn created_time(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        self.created.as_deref().and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
    }

    pub fn created_unix(&self) -> i64 {
        self.created_time().map(|t| t.timestamp()).unwrap_or(0)
    }
}

/// A manifest (the part berthd reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: WireDescriptor,
    #[serde(default)]
    pub layers: Vec<WireDescriptor>,
}

/// An index (the part berthd reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<WireDescriptor>,
}

/// A descriptor as JSON documents carry it.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WireDescriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<WirePlatform>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct WirePlatform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl From<&WireDescriptor> for OciDescriptor {
    fn from(d: &WireDescriptor) -> Self {
        OciDescriptor { media_type: d.media_type.clone(), digest: d.digest.clone(), size: d.size, annotations: d.annotations.clone() }
    }
}

/// What a record's target resolves to for this platform. Content is
/// immutable, so this is cached by target digest.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub target: OciDescriptor,
    pub manifest: OciDescriptor,
    pub config_descriptor: OciDescriptor,
    pub layers: Vec<OciDescriptor>,
    pub config: ImageConfig,
    pub chain_ids: Vec<String>,
}

impl ResolvedImage {
    /// The image ID: the config digest.
    pub fn id(&self) -> &str {
        &self.config_descriptor.digest
    }
}

/// How a record's name reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordName {
    Tag(Reference),
    Digest(Reference),
    Dangling,
    Other,
}

impl RecordName {
    pub fn parse(name: &str) -> Self {
        if name.starts_with(DANGLING_PREFIX) {
            return Self::Dangling;
        }
        match Reference::parse_normalized(name) {
            Ok(r) if r.tag.is_some() => Self::Tag(r),
            Ok(r) if r.digest.is_some() => Self::Digest(r),
            _ => Self::Other,
        }
    }

    pub fn reference(&self) -> Option<&Reference> {
        match self {
            Self::Tag(r) | Self::Digest(r) => Some(r),
            _ => None,
        }
    }
}

/// One image as users see it: every record whose target resolves to the
/// same config digest.
#[derive(Debug, Clone)]
pub struct LocalImage {
    pub resolved: Arc<ResolvedImage>,
    pub records: Vec<ImageRecord>,
}

impl LocalImage {
    pub fn id(&self) -> &str {
        self.resolved.id()
    }

    pub fn names(&self) -> impl Iterator<Item = (RecordName, &ImageRecord)> {
        self.records.iter().map(|r| (RecordName::parse(&r.name), r))
    }

    pub fn repo_tags(&self) -> Vec<String> {
        let mut tags: Vec<String> =
            self.names().filter_map(|(n, _)| if let RecordName::Tag(r) = n { Some(r.familiar_string()) } else { None }).collect();
        tags.sort();
        tags
    }

    pub fn repo_digests(&self) -> Vec<String> {
        let mut digests: Vec<String> =
            self.names().filter_map(|(n, _)| if let RecordName::Digest(r) = n { Some(r.familiar_string()) } else { None }).collect();
        digests.sort();
        digests
    }

    /// No tag and no digest reference.
    pub fn is_dangling(&self) -> bool {
        self.names().all(|(n, _)| matches!(n, RecordName::Dangling | RecordName::Other))
    }

    /// When a name last changed, RFC 3339 (dockerd's `LastTagTime`).
    pub fn last_tag_time(&self) -> String {
        self.records
            .iter()
            .filter(|r| !r.name.starts_with(DANGLING_PREFIX))
            .filter_map(|r| r.updated_at)
            .max()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string())
    }
}

/// What a lookup by name or ID found.
pub struct Found {
    pub image: LocalImage,
    /// The record the input named, when it named one.
    pub record: Option<ImageRecord>,
}

pub struct ImageService {
    containerd: Containerd,
    platform: Platform,
    resolved: Mutex<HashMap<String, Arc<ResolvedImage>>>,
    usage: Mutex<HashMap<String, i64>>,
    /// Replaced on reload; transfers in flight keep the one they started with.
    distribution: std::sync::RwLock<Option<Arc<Distribution>>>,
    events: EventBus,
}

/// Pull and push: the registry client and the daemon-wide transfer limits
/// (`max-concurrent-downloads`, `max-concurrent-uploads`).
struct Distribution {
    registry: crate::backends::registry::RegistryClient,
    downloads: Arc<tokio::sync::Semaphore>,
    uploads: Arc<tokio::sync::Semaphore>,
}

impl ImageService {
    pub fn new(containerd: Containerd) -> Self {
        Self {
            containerd,
            platform: Platform::host(),
            resolved: Mutex::default(),
            usage: Mutex::default(),
            distribution: std::sync::RwLock::new(None),
            events: EventBus::new(),
        }
    }

    /// Publish image events on `events` (the daemon's bus).
    pub fn with_events(mut self, events: EventBus) -> Self {
        self.events = events;
        self
    }

    /// An image event, as moby's `LogImageEvent`: the actor is `id`, with
    /// the name the action concerns as its `name` attribute.
    pub(crate) fn emit(&self, action: &str, id: &str, name: &str) {
        let attributes = [("name".to_string(), name.to_string())].into();
        self.events.publish(api_types::events::TYPE_IMAGE, action, api_types::events::EventActor { id: id.to_string(), attributes });
    }

    /// Pull and push through `registry`, with at most `downloads` layers
    /// downloading and `uploads` uploading at once, daemon-wide.
    pub fn with_registry(self, registry: crate::backends::registry::RegistryClient, downloads: usize, uploads: usize) -> Self {
        self.set_registry(registry, downloads, uploads);
        self
    }

    /// Replace the registry client and transfer limits (a reload).
    pub fn set_registry(&self, registry: crate::backends::registry::RegistryClient, downloads: usize, uploads: usize) {
        let d = Distribution {
            registry,
            downloads: Arc::new(tokio::sync::Semaphore::new(downloads.max(1))),
            uploads: Arc::new(tokio::sync::Semaphore::new(uploads.max(1))),
        };
        *self.distribution.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(d));
    }

    fn distribution(&self) -> Option<Arc<Distribution>> {
        self.distribution.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// On start: drop the ingestion leases a previous run left, so GC can
    /// take what they held.
    pub async fn reconcile(&self) -> Result<(), ServiceError> {
        for lease in self.containerd.lease_list_berthd().await? {
            tracing::info!(lease = %lease, "dropping a lease left by an interrupted ingestion");
            self.containerd.lease_delete(&lease, false).await?;
        }
        Ok(())
    }

    /// Read a small JSON blob.
    pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(&self, c: &Containerd, digest: &str) -> Result<T, ServiceError> {
        let bytes = c.content_read_all(digest, MAX_METADATA_BLOB).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ServiceError::InvalidParameter(format!("invalid JSON in blob {digest}: {e}")))
    }

    /// Resolve a target (index or manifest) to this platform's image.
    pub async fn resolve_target(&self, target: &OciDescriptor) -> Result<Arc<ResolvedImage>, ServiceError> {
        if let Some(hit) = self.resolved.lock().unwrap_or_else(|e| e.into_inner()).get(&target.digest) {
            return Ok(hit.clone());
        }
        let resolved = Arc::new(self.resolve_uncached(&self.containerd, target).await?);
        self.resolved.lock().unwrap_or_else(|e| e.into_inner()).insert(target.digest.clone(), resolved.clone());
        Ok(resolved)
    }

    pub(crate) async fn resolve_uncached(&self, c: &Containerd, target: &OciDescriptor) -> Result<ResolvedImage, ServiceError> {
        let mut manifest_desc = target.clone();
        if is_index(&target.media_type) {
            let index: Index = self.read_json(c, &target.digest).await?;
            let chosen = index
                .manifests
                .iter()
                .filter(|m| is_manifest(&m.media_type))
                .find(|m| match &m.platform {
                    Some(p) => self.platform.matches(&p.os, &p.architecture, &p.variant),
                    None => true,
                })
                .ok_or_else(|| {
                    ServiceError::NotFound(format!(
                        "image {} has no manifest for {}/{}",
                        target.digest, self.platform.os, self.platform.architecture
                    ))
                })?;
            manifest_desc = chosen.into();
        } else if !is_manifest(&target.media_type) {
            return Err(ServiceError::InvalidParameter(format!(
                "unsupported image media type {} ({})",
                target.media_type, target.digest
            )));
        }
        let manifest: Manifest = self.read_json(c, &manifest_desc.digest).await?;
        let config_descriptor: OciDescriptor = (&manifest.config).into();
        let config: ImageConfig = self.read_json(c, &config_descriptor.digest).await?;
        let chain_ids = chain_ids(&config.rootfs.diff_ids);
        Ok(ResolvedImage {
            target: target.clone(),
            manifest: manifest_desc,
            config_descriptor,
            layers: manifest.layers.iter().map(OciDescriptor::from).collect(),
            config,
            chain_ids,
        })
    }

    /// Every local image, records grouped by image ID. Records whose
    /// content is missing or unreadable are left out.
    pub async fn local_images(&self) -> Result<Vec<LocalImage>, ServiceError> {
        let records = self.containerd.image_list(&[]).await?;
        let mut by_id: BTreeMap<String, LocalImage> = BTreeMap::new();
        for record in records {
            let resolved = match self.resolve_target(&record.target).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(image.ref = %record.name, error = %e, "skipping image record");
                    continue;
                }
            };
            by_id
                .entry(resolved.id().to_string())
                .or_insert_with(|| LocalImage { resolved: resolved.clone(), records: vec![] })
                .records
                .push(record);
        }
        Ok(by_id.into_values().collect())
    }

    /// Find an image by full or short ID, `name`, `name:tag` or
    /// `name@digest`, as dockerd does.
    pub async fn find(&self, input: &str) -> Result<Found, ServiceError> {
        match self.find_in_records(input).await {
            Err(ServiceError::NotFound(_)) => {
                // Another client's new image may not have been heard of yet.
                self.containerd.forget_image_records();
                self.find_in_records(input).await
            }
            found => found,
        }
    }

    async fn find_in_records(&self, input: &str) -> Result<Found, ServiceError> {
        let parsed = match Reference::parse_normalized(input) {
            Ok(r) => Some(r),
            Err(InvalidReference::Identifier(_)) => None,
            Err(_) if input.starts_with("sha256:") && reference::Digest::parse(input).is_ok() => None,
            Err(e) => return Err(ServiceError::InvalidParameter(e.to_string())),
        };
        let images = self.local_images().await?;
        if let Some(r) = &parsed {
            if let Some(found) = find_by_reference(&images, r) {
                return Ok(found);
            }
        }
        let id = input.strip_prefix("sha256:").unwrap_or(input);
        if (4..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            let full = format!("sha256:{id}");
            let exact: Vec<&LocalImage> = images
                .iter()
                .filter(|i| i.id() == full || i.records.iter().any(|r| r.target.digest == full))
                .collect();
            let matches: Vec<&LocalImage> = if exact.is_empty() {
                images.iter().filter(|i| i.id()["sha256:".len()..].starts_with(id)).collect()
            } else {
                exact
            };
            if matches.len() == 1 {
                return Ok(Found { image: matches[0].clone(), record: None });
            }
        }
        Err(no_such_image(input))
    }

    /// Size of one unpacked layer (its snapshot), cached: committed
    /// snapshots never change.
    pub(crate) async fn layer_size(&self, chain_id: &str) -> Option<i64> {
        if let Some(size) = self.usage.lock().unwrap_or_else(|e| e.into_inner()).get(chain_id) {
            return Some(*size);
        }
        let usage = self.containerd.snapshot_usage(self.containerd.snapshotter(), chain_id).await.ok()?;
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).insert(chain_id.to_string(), usage.size);
        Some(usage.size)
    }

    /// An image's size: its unpacked layers, or its compressed layers when
    /// it is not unpacked.
    pub(crate) async fn image_size(&self, image: &ResolvedImage) -> i64 {
        let mut total = 0;
        for (i, chain) in image.chain_ids.iter().enumerate() {
            total += match self.layer_size(chain).await {
                Some(size) => size,
                None => image.layers.get(i).map(|l| l.size).unwrap_or(0),
            };
        }
        total
    }

    /// Forget cached sizes of snapshots that may be gone.
    pub(crate) fn forget_sizes(&self, chain_ids: &[String]) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        for c in chain_ids {
            usage.remove(c);
        }
    }

    /// Distinct image IDs (`/info`'s `Images`).
    pub async fn count(&self) -> Result<u64, ServiceError> {
        Ok(self.local_images().await?.len() as u64)
    }

    /// Bytes used by every image's unpacked layers, each layer once
    /// (`/system/df`'s `LayersSize`).
    pub async fn layers_size(&self) -> Result<i64, ServiceError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut total = 0;
        for image in self.local_images().await? {
            for (i, chain) in image.resolved.chain_ids.iter().enumerate() {
                if seen.insert(chain.clone()) {
                    total += match self.layer_size(chain).await {
                        Some(size) => size,
                        None => image.resolved.layers.get(i).map(|l| l.size).unwrap_or(0),
                    };
                }
            }
        }
        Ok(total)
    }
}

fn find_by_reference(images: &[LocalImage], r: &Reference) -> Option<Found> {
    if let Some(digest) = &r.digest {
        let exact = format!("{}@{digest}", r.name());
        for image in images {
            for record in &image.records {
                let same_repo = RecordName::parse(&record.name).reference().map(|n| n.name()) == Some(r.name());
                if record.name == exact || (same_repo && &record.target.digest == digest) {
                    return Some(Found { image: image.clone(), record: Some(record.clone()) });
                }
            }
        }
        return None;
    }
    let name = r.clone().with_default_tag().to_string();
    images.iter().find_map(|image| {
        image.records.iter().find(|rec| rec.name == name).map(|rec| Found { image: image.clone(), record: Some(rec.clone()) })
    })
}

/// OCI chain IDs of a layer stack, bottom first.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => crate::backends::containerd::content::sha256_digest(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The 12-hex short form of an ID.
pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Whether `input` names `id` by a prefix of it (with or without `sha256:`).
pub fn is_id_prefix(id: &str, input: &str) -> bool {
    id.starts_with(input) || id.trim_start_matches("sha256:").starts_with(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = "sha256:aaaa".to_string();
        let b = "sha256:bbbb".to_string();
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], crate::backends::containerd::content::sha256_digest(b"sha256:aaaa sha256:bbbb"));
    }

    #[test]
    fn record_names_classify() {
        assert!(matches!(RecordName::parse("docker.io/library/busybox:latest"), RecordName::Tag(_)));
        assert!(matches!(
            RecordName::parse(&format!("docker.io/library/busybox@sha256:{}", "a".repeat(64))),
            RecordName::Digest(_)
        ));
        assert_eq!(RecordName::parse(&format!("moby-dangling@sha256:{}", "a".repeat(64))), RecordName::Dangling);
    }

    #[test]
    fn references() {
        assert_eq!(new_image_reference("", "x", "commit").unwrap(), None);
        assert_eq!(new_image_reference("me/img", "", "commit").unwrap().unwrap().familiar_string(), "me/img:latest");
        assert_eq!(new_image_reference("me/img", "v1", "commit").unwrap().unwrap().familiar_string(), "me/img:v1");
        assert!(new_image_reference("Bad", "", "commit").is_err());
    }

    #[test]
    fn id_prefixes() {
        let id = format!("sha256:{}", "ab12".repeat(16));
        assert!(is_id_prefix(&id, "ab12ab"));
        assert!(is_id_prefix(&id, "sha256:ab12"));
        assert!(!is_id_prefix(&id, "busybox"));
        assert_eq!(short_id(&id), "ab12ab12ab12");
    }
}
