//! `GET /images/{name}/json`.

use api_types::image::{GraphDriver, ImageInspect, ImageMetadata, OciDescriptor as WireOciDescriptor, RootFs};

use super::ImageService;
use crate::services::ServiceError;

impl ImageService {
    pub async fn inspect(&self, name: &str) -> Result<ImageInspect, ServiceError> {
        let found = self.find(name).await?;
        let image = &found.image;
        let r = &image.resolved;
        let cfg = &r.config;
        let comment = cfg
            .comment
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| cfg.history.last().and_then(|h| h.comment.clone()))
            .unwrap_or_default();
        let target = found.record.as_ref().map(|rec| rec.target.clone()).unwrap_or_else(|| r.target.clone());
        Ok(ImageInspect {
            id: r.id().to_string(),
            repo_tags: image.repo_tags(),
            repo_digests: image.repo_digests(),
            parent: cfg.parent.clone().unwrap_or_default(),
            comment,
            created: cfg.created_time().map(|t| t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            docker_version: cfg.docker_version.clone().unwrap_or_default(),
            author: cfg.author.clone().unwrap_or_default(),
            config: cfg.config.clone().unwrap_or_default(),
            architecture: cfg.architecture.clone(),
            variant: cfg.variant.clone().unwrap_or_default(),
            os: cfg.os.clone(),
            os_version: cfg.os_version.clone().unwrap_or_default(),
            size: self.image_size(r).await,
            graph_driver: GraphDriver { data: None, name: self.containerd.snapshotter().into() },
            rootfs: RootFs { kind: cfg.rootfs.kind.clone(), layers: cfg.rootfs.diff_ids.clone() },
            metadata: ImageMetadata { last_tag_time: image.last_tag_time() },
            descriptor: Some(WireOciDescriptor {
                media_type: target.media_type,
                digest: target.digest,
                size: target.size,
                annotations: None,
                platform: None,
            }),
        })
    }
}
