//! `docker commit`: the container's changes as a new image layer over its
//! image, with its config (plus `--change` instructions) as the image's.

use api_types::container::ContainerConfig;
use api_types::reference::Reference;

use super::create::merge_image_config;
use super::record::Status;
use super::ContainerService;
use crate::services::dockerfile::apply_changes;
use crate::services::images::{new_image_reference, NewImage};
use crate::services::ServiceError;

#[derive(Debug, Default)]
pub struct CommitOptions {
    pub container: String,
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    pub pause: bool,
    pub changes: Vec<String>,
    pub config: Option<ContainerConfig>,
}

impl ContainerService {
    /// Commit the container; answers the new image's ID.
    pub async fn commit(&self, opts: CommitOptions) -> Result<String, ServiceError> {
        let names: Vec<Reference> = new_image_reference(&opts.repo, &opts.tag, "commit")?.into_iter().collect();
        let entry = self.lookup(&opts.container)?;
        let record = entry.record.lock().await.clone();
        if matches!(record.state.status, Status::Removing | Status::Dead) {
            return Err(ServiceError::Conflict(format!(
                "You cannot commit container {} which is being removed or dead",
                record.id
            )));
        }
        let config = apply_changes(opts.config.unwrap_or_default(), &opts.changes)?;
        let config = merge_image_config(config, &record.config);
        let parent = match record.image_id.as_str() {
            "" => None,
            id => Some(self.images.find(id).await?.image.resolved),
        };
        let paused = opts.pause && record.state.status == Status::Running && self.pause(&record.id).await.is_ok();
        let created_by = std::iter::once(record.path.clone()).chain(record.args.iter().cloned()).collect::<Vec<_>>().join(" ");
        let stored = self
            .images
            .create_image(NewImage {
                parent: parent.as_deref(),
                snapshot: Some(&record.id),
                config: &config,
                container_config: None,
                container: &record.id,
                created_by,
                author: opts.author.clone(),
                comment: opts.comment.clone(),
                names: &names,
            })
            .await;
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                self.unpause_after_commit(paused, &record.id).await;
                return Err(e);
            }
        };
        let image_ref = names.first().map(|n| n.familiar_string()).unwrap_or_default();
        for name in &names {
            self.images.emit("tag", &stored.id, &name.familiar_string());
        }
        self.emit(
            &record,
            "commit",
            &[("comment", opts.comment.clone()), ("imageID", stored.id.clone()), ("imageRef", image_ref)],
        );
        // As dockerd: the commit event comes before the unpause.
        self.unpause_after_commit(paused, &record.id).await;
        Ok(stored.id)
    }

    async fn unpause_after_commit(&self, paused: bool, id: &str) {
        if paused {
            if let Err(e) = self.unpause(id).await {
                tracing::warn!(container.id = %id, error = %e, "unpausing after commit");
            }
        }
    }
}
