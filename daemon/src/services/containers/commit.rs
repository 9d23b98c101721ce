//! `docker commit`: the container's changes as a new image layer over its
//! image, with its config (plus `--change` instructions) as the image's.

use api_types::container::ContainerConfig;
use api_types::reference::Reference;

use super::create::merge_image_config;
use super::record::Status;
use super::ContainerService;
use crate::services::dockerfile;
use crate::services::images::{parse_reference, NewImage};
use crate::services::ServiceError;

/// The instructions `--change` accepts (moby's `validCommitCommands`).
const COMMIT_CHANGES: &[&str] =
    &["cmd", "entrypoint", "env", "expose", "label", "onbuild", "stopsignal", "user", "volume", "workdir", "healthcheck"];

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

/// The name `repo` and `tag` give, as dockerd reads them.
pub fn commit_reference(repo: &str, tag: &str) -> Result<Option<Reference>, ServiceError> {
    if repo.is_empty() {
        return Ok(None);
    }
    let r = parse_reference(repo)?;
    if r.digest.is_some() {
        return Err(ServiceError::InvalidParameter("cannot commit to digest reference".into()));
    }
    let r = if tag.is_empty() { r } else { r.with_tag(tag).map_err(|e| ServiceError::InvalidParameter(e.to_string()))? };
    Ok(Some(r.with_default_tag()))
}

/// `config` with the `--change` instructions applied, as moby's
/// `BuildFromConfig`.
pub fn apply_changes(mut config: ContainerConfig, changes: &[String]) -> Result<ContainerConfig, ServiceError> {
    let text = changes.join("\n");
    let parsed = dockerfile::parse(&text)?;
    let mut cmd_set = false;
    for ins in &parsed.instructions {
        if !COMMIT_CHANGES.contains(&ins.keyword.as_str()) {
            return Err(ServiceError::InvalidParameter(format!("{} is not a valid change command", ins.keyword)));
        }
        let vars = dockerfile::env_vars(config.env.as_deref().unwrap_or_default());
        dockerfile::apply_metadata(ins, &mut config, &vars, parsed.escape)?;
        match ins.keyword.as_str() {
            "cmd" => cmd_set = true,
            "entrypoint" if !cmd_set => config.cmd = None,
            _ => {}
        }
    }
    Ok(config)
}

impl ContainerService {
    /// Commit the container; answers the new image's ID.
    pub async fn commit(&self, opts: CommitOptions) -> Result<String, ServiceError> {
        let names: Vec<Reference> = commit_reference(&opts.repo, &opts.tag)?.into_iter().collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_in_order() {
        let base = ContainerConfig { cmd: Some(vec!["sh".into()]), env: Some(vec!["A=1".into()]), ..Default::default() };
        let c = apply_changes(base.clone(), &["ENV B=$A".into(), "EXPOSE 80".into(), "ENTRYPOINT [\"/x\"]".into()]).unwrap();
        assert_eq!(c.env.unwrap(), ["A=1", "B=1"]);
        assert!(c.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(c.cmd, None);
        let c = apply_changes(base.clone(), &["CMD [\"a\"]".into(), "ENTRYPOINT /x".into()]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["a"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/x"]);
        assert!(apply_changes(base, &["RUN x".into()]).is_err());
    }

    #[test]
    fn references() {
        assert_eq!(commit_reference("", "x").unwrap(), None);
        assert_eq!(commit_reference("me/img", "").unwrap().unwrap().familiar_string(), "me/img:latest");
        assert_eq!(commit_reference("me/img", "v1").unwrap().unwrap().familiar_string(), "me/img:v1");
        assert!(commit_reference("Bad", "").is_err());
    }
}
