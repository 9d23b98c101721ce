//! The image a container is created from: its config and top layer.

use api_types::container::ContainerConfig;
use api_types::reference::Reference;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::backends::containerd::{Containerd, Descriptor};
use crate::services::ServiceError;

/// What creating a container needs from its image.
#[derive(Debug, Clone)]
pub struct ImageForContainer {
    /// The containerd image record.
    pub record: String,
    /// The image ID: the config digest.
    pub id: String,
    pub config: ContainerConfig,
    /// Chain ID of the top layer: the parent of the container's snapshot.
    pub top_chain_id: String,
}

#[derive(Deserialize)]
struct ImageConfigBlob {
    #[serde(default)]
    config: Option<ContainerConfig>,
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

pub fn no_such_image(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("No such image: {name}"))
}

pub async fn resolve(containerd: &Containerd, name: &str) -> Result<ImageForContainer, ServiceError> {
    let reference = Reference::parse_normalized(name)
        .map_err(|e| ServiceError::InvalidParameter(e.to_string()))?
        .with_default_tag();
    let record = reference.to_string();
    let target = containerd.image_target(&record).await?.ok_or_else(|| no_such_image(&reference.familiar_string()))?;
    let manifest = platform_manifest(containerd, target).await?;
    let manifest: serde_json::Value = serde_json::from_slice(&containerd.metadata_blob(&manifest).await?)
        .map_err(|e| ServiceError::Internal(format!("image {record}: bad manifest: {e}")))?;
    let config_desc = descriptor(&manifest["config"])
        .ok_or_else(|| ServiceError::Internal(format!("image {record}: manifest has no config")))?;
    let blob: ImageConfigBlob = serde_json::from_slice(&containerd.metadata_blob(&config_desc).await?)
        .map_err(|e| ServiceError::Internal(format!("image {record}: bad config: {e}")))?;
    Ok(ImageForContainer {
        record,
        id: config_desc.digest,
        config: blob.config.unwrap_or_default(),
        top_chain_id: chain_id(&blob.rootfs.diff_ids),
    })
}

fn descriptor(v: &serde_json::Value) -> Option<Descriptor> {
    Some(Descriptor {
        media_type: v["mediaType"].as_str().unwrap_or_default().to_string(),
        digest: v["digest"].as_str()?.to_string(),
        size: v["size"].as_i64()?,
    })
}

/// Follow an index or manifest list to this host's linux manifest.
async fn platform_manifest(containerd: &Containerd, target: Descriptor) -> Result<Descriptor, ServiceError> {
    let is_index = target.media_type.contains("index") || target.media_type.contains("manifest.list");
    if !is_index {
        return Ok(target);
    }
    let index: serde_json::Value = serde_json::from_slice(&containerd.metadata_blob(&target).await?)
        .map_err(|e| ServiceError::Internal(format!("bad image index: {e}")))?;
    let arch = crate::backends::host::go_arch();
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
        .and_then(descriptor)
        .ok_or_else(|| ServiceError::NotFound(format!("image has no manifest for linux/{arch}")))
}

/// The OCI chain ID of a layer stack.
pub fn chain_id(diff_ids: &[String]) -> String {
    let mut chain = String::new();
    for diff in diff_ids {
        chain = if chain.is_empty() {
            diff.clone()
        } else {
            format!("sha256:{}", hex::encode(Sha256::digest(format!("{chain} {diff}").as_bytes())))
        };
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids() {
        assert_eq!(chain_id(&[]), "");
        assert_eq!(chain_id(&["sha256:a".into()]), "sha256:a");
        let two = chain_id(&["sha256:a".into(), "sha256:b".into()]);
        assert_eq!(two, format!("sha256:{}", hex::encode(Sha256::digest(b"sha256:a sha256:b"))));
    }
}
