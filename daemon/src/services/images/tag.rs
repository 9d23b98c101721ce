//! `POST /images/{name}/tag`.

use super::{parse_reference, ImageService};
use crate::services::ServiceError;

impl ImageService {
    /// Give the image `source` the name `repo[:tag]`.
    pub async fn tag(&self, source: &str, repo: &str, tag: Option<&str>) -> Result<(), ServiceError> {
        if repo.is_empty() {
            return Err(ServiceError::InvalidParameter("repository name must have at least one component".into()));
        }
        let mut reference = parse_reference(repo)?;
        if reference.digest.is_some() {
            return Err(ServiceError::InvalidParameter("refusing to create a tag with a digest reference".into()));
        }
        if let Some(tag) = tag.filter(|t| !t.is_empty()) {
            reference = reference.with_tag(tag).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        }
        let reference = reference.with_default_tag();
        if reference.familiar_name() == "sha256" {
            return Err(ServiceError::InvalidParameter(
                "refusing to create an ambiguous tag using digest algorithm as name".into(),
            ));
        }
        let found = self.find(source).await?;
        let target = found.record.map(|r| r.target).unwrap_or_else(|| found.image.resolved.target.clone());
        self.name_image(&target, std::slice::from_ref(&reference)).await?;
        self.emit("tag", found.image.id(), &reference.familiar_string());
        Ok(())
    }
}
