//! The image a container is created from: its config and top layer, found
//! by the image service (name, `name:tag`, `name@digest`, full or short ID).

use api_types::container::ContainerConfig;
use api_types::reference::Reference;

use crate::services::images::ImageService;
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

/// dockerd names the tag it looked for: `No such image: busybox:latest`.
fn no_such_image(name: &str) -> ServiceError {
    let shown = Reference::parse_normalized(name)
        .map(|r| r.with_default_tag().familiar_string())
        .unwrap_or_else(|_| name.to_string());
    ServiceError::NotFound(format!("No such image: {shown}"))
}

pub async fn resolve(images: &ImageService, name: &str) -> Result<ImageForContainer, ServiceError> {
    let found = images.find(name).await.map_err(|e| match e {
        ServiceError::NotFound(_) => no_such_image(name),
        other => other,
    })?;
    let resolved = &found.image.resolved;
    let record = found
        .record
        .as_ref()
        .or(found.image.records.first())
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let config = match &resolved.config.config {
        Some(map) => serde_json::from_value(serde_json::Value::Object(map.clone()))
            .map_err(|e| ServiceError::Internal(format!("image {name}: bad config: {e}")))?,
        None => ContainerConfig::default(),
    };
    Ok(ImageForContainer {
        record,
        id: resolved.id().to_string(),
        config,
        top_chain_id: resolved.chain_ids.last().cloned().unwrap_or_default(),
    })
}
