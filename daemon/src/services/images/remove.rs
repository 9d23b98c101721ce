//! `DELETE /images/{name}`: untag, or delete, as dockerd decides.
//!
//! A name given: that name goes; the image goes too when it was its last
//! name (and, for a tag, the digest names of the same repository go with
//! it). An ID given: the image goes with all its names, provided those are
//! all in one repository with at most one tag, or `force` is set; else 409.
//! Containers made from the image and child images (the builder's and
//! commit's `parent`) conflict as in moby's image_delete.go: a running
//! container or a child can never be forced, a stopped container can.

use api_types::image::ImageDeleteResponseItem;

use super::unpack::dangling_name;
use super::{is_id_prefix, short_id, ImageService, LocalImage, RecordName};
use crate::backends::containerd::ImageRecord;
use crate::services::ServiceError;

#[derive(Debug, Clone, Copy, Default)]
pub struct ImageRemoveOptions {
    pub force: bool,
    /// `noprune`: keep untagged parents (the builder's step images).
    pub no_prune: bool,
}

/// A container made from an image, as far as image removal cares.
#[derive(Debug, Clone)]
pub struct ImageUser {
    pub container_id: String,
    pub image_id: String,
    /// Running, paused or restarting (dockerd's `IsRunning`).
    pub running: bool,
}

fn familiar(name: &RecordName) -> Option<String> {
    name.reference().map(|r| r.familiar_string())
}

/// Which soft conflicts a delete step checks; hard ones (child images,
/// running containers) are always checked (moby's conflictType).
#[derive(Clone, Copy)]
struct Soft {
    /// Names still held.
    references: bool,
    /// Stopped containers.
    stopped: bool,
}

struct Conflict {
    hard: bool,
    /// A container uses the image.
    used: bool,
    message: String,
}

impl Conflict {
    fn into_error(self, id: &str) -> ServiceError {
        let forced = if self.hard { "cannot be forced" } else { "must be forced" };
        ServiceError::Conflict(format!("conflict: unable to delete {} ({forced}) - {}", short_id(id), self.message))
    }
}

/// dockerd's `isSingleReference`: one name, or at most one tag with every
/// digest name in the same single repository.
fn is_single_reference(names: &[RecordName]) -> bool {
    if names.len() <= 1 {
        return names.len() == 1;
    }
    let mut tag_repo = None;
    let mut digest_repos = std::collections::BTreeSet::new();
    for n in names {
        match n {
            RecordName::Digest(r) => {
                digest_repos.insert(r.name());
            }
            RecordName::Tag(r) if tag_repo.is_none() => tag_repo = Some(r.name()),
            _ => return false,
        }
    }
    let single = tag_repo.or_else(|| names[0].reference().map(|r| r.name()));
    digest_repos.len() == 1 && single.is_some_and(|s| digest_repos.contains(&s))
}

/// The tag and digest names of an image.
fn named(records: &[ImageRecord]) -> Vec<RecordName> {
    records.iter().map(|r| RecordName::parse(&r.name)).filter(|n| n.reference().is_some()).collect()
}

impl ImageService {
    /// Remove `input`; `users` are the daemon's containers and their images.
    pub async fn remove(&self, input: &str, opts: ImageRemoveOptions, users: &[ImageUser]) -> Result<Vec<ImageDeleteResponseItem>, ServiceError> {
        let found = self.find(input).await?;
        let id = found.image.id().to_string();
        let mut out = Vec::new();
        let result = self.remove_found(input, found, opts, users, &mut out).await;
        self.emit_removals(&id, &out);
        result.map(|()| out)
    }

    /// `untag` and `delete` events for what a delete or prune answered.
    pub(crate) fn emit_removals(&self, id: &str, items: &[ImageDeleteResponseItem]) {
        for item in items {
            if let Some(name) = &item.untagged {
                self.emit("untag", id, name);
            }
            if item.deleted.as_deref() == Some(id) {
                self.emit("delete", id, id);
            }
        }
    }

    async fn remove_found(
        &self,
        input: &str,
        found: super::Found,
        opts: ImageRemoveOptions,
        users: &[ImageUser],
        out: &mut Vec<ImageDeleteResponseItem>,
    ) -> Result<(), ServiceError> {
        let image = found.image;
        let id = image.id().to_string();
        let by_id = found.record.is_none() && is_id_prefix(&id, input);
        let names = named(&image.records);
        let Some(record) = found.record.filter(|_| !by_id) else {
            if is_single_reference(&names) {
                let soft = Soft { references: false, stopped: !opts.force };
                if let Some(conflict) = self.delete_conflict(&image, soft, users).await? {
                    return Err(conflict.into_error(&id));
                }
            }
            return self.delete_helper(image, opts.force, !opts.no_prune, false, users, out).await;
        };
        if !opts.force && is_single_reference(&names) {
            if let Some(user) = users.iter().find(|u| u.image_id == id) {
                return Err(ServiceError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{input}\" (must force) - container {} is using its referenced image {}",
                    short_id(&user.container_id),
                    short_id(&id)
                )));
            }
        }
        // The name, and for a tag the same repository's digest names when
        // no other tag of it remains.
        let removed = RecordName::parse(&record.name);
        let mut untag = vec![record.clone()];
        let mut remaining: Vec<ImageRecord> = image.records.iter().filter(|r| r.name != record.name).cloned().collect();
        if let RecordName::Tag(removed) = &removed {
            let same_repo_tag =
                remaining.iter().any(|r| matches!(RecordName::parse(&r.name), RecordName::Tag(t) if t.name() == removed.name()));
            if !same_repo_tag {
                let (digests, keep): (Vec<_>, Vec<_>) = remaining
                    .into_iter()
                    .partition(|r| matches!(RecordName::parse(&r.name), RecordName::Digest(d) if d.name() == removed.name()));
                untag.extend(digests);
                remaining = keep;
            }
        }
        let last_name = named(&remaining).is_empty();
        if last_name {
            // Keep the image itself (dangling) while its names go: a
            // conflict below may keep it, as dockerd keeps it.
            let dangling = ImageRecord::new(dangling_name(&record.target.digest), record.target.clone());
            self.ensure_dangling(&record.target).await?;
            if !remaining.iter().any(|r| r.name == dangling.name) {
                remaining.push(dangling);
            }
        }
        for r in &untag {
            self.containerd.image_delete(&r.name, false).await?;
            out.extend(familiar(&RecordName::parse(&r.name)).map(ImageDeleteResponseItem::untagged));
        }
        if !last_name {
            return Ok(());
        }
        let rest = LocalImage { resolved: image.resolved.clone(), records: remaining };
        self.delete_helper(rest, opts.force, !opts.no_prune, true, users, out).await
    }

    /// moby's imageDeleteHelper: check conflicts (soft ones unless
    /// `force`); `quiet` (after an untag) keeps an image that a conflict
    /// holds without an error. Then, with `prune`, the parents go while
    /// nothing holds them (no name, child or container).
    async fn delete_helper(
        &self,
        image: LocalImage,
        force: bool,
        prune: bool,
        quiet: bool,
        users: &[ImageUser],
        out: &mut Vec<ImageDeleteResponseItem>,
    ) -> Result<(), ServiceError> {
        let soft = Soft { references: !force, stopped: !force };
        if let Some(conflict) = self.delete_conflict(&image, soft, users).await? {
            let dangling = image.is_dangling() && !self.has_children(image.id()).await?;
            if quiet && (!dangling || conflict.used) {
                return Ok(());
            }
            return Err(conflict.into_error(image.id()));
        }
        self.delete_image(&image, out).await?;
        if prune {
            self.delete_parents(&image, users, out).await?;
        }
        Ok(())
    }

    /// The parents of a deleted image go while nothing holds them (no name,
    /// other child or container), as moby's imageDeleteHelper with `prune`.
    /// Answers the bytes reclaimed.
    pub(crate) async fn delete_parents(&self, image: &LocalImage, users: &[ImageUser], out: &mut Vec<ImageDeleteResponseItem>) -> Result<u64, ServiceError> {
        let mut reclaimed = 0;
        let mut parent = image.resolved.config.parent.clone().filter(|p| !p.is_empty());
        while let Some(id) = parent.take() {
            let Some(image) = self.local_images().await?.into_iter().find(|i| i.id() == id) else { break };
            let all = Soft { references: true, stopped: true };
            if self.delete_conflict(&image, all, users).await?.is_some() {
                break;
            }
            let mut items = Vec::new();
            reclaimed += self.delete_image(&image, &mut items).await?;
            self.emit_removals(image.id(), &items);
            out.extend(items);
            parent = image.resolved.config.parent.clone().filter(|p| !p.is_empty());
        }
        Ok(reclaimed)
    }

    /// moby's checkImageDeleteConflict, in its order.
    async fn delete_conflict(&self, image: &LocalImage, soft: Soft, users: &[ImageUser]) -> Result<Option<Conflict>, ServiceError> {
        if self.has_children(image.id()).await? {
            return Ok(Some(Conflict { hard: true, used: false, message: "image has dependent child images".into() }));
        }
        let using = |running: bool| users.iter().find(|u| u.image_id == image.id() && u.running == running);
        if let Some(user) = using(true) {
            let message = format!("image is being used by running container {}", short_id(&user.container_id));
            return Ok(Some(Conflict { hard: true, used: true, message }));
        }
        if soft.references && !named(&image.records).is_empty() {
            let message = "image is referenced in multiple repositories".to_string();
            return Ok(Some(Conflict { hard: false, used: false, message }));
        }
        if let Some(user) = using(false).filter(|_| soft.stopped) {
            let message = format!("image is being used by stopped container {}", short_id(&user.container_id));
            return Ok(Some(Conflict { hard: false, used: true, message }));
        }
        Ok(None)
    }

    /// Whether an image is another's `parent` (a commit or build step on it).
    async fn has_children(&self, id: &str) -> Result<bool, ServiceError> {
        Ok(self.local_images().await?.iter().any(|i| i.resolved.config.parent.as_deref() == Some(id)))
    }

    /// Delete every record of `image` (untag lines for named ones), wait
    /// for containerd's GC, and report the image and the layers that went.
    /// Answers the bytes reclaimed.
    pub(crate) async fn delete_image(&self, image: &LocalImage, out: &mut Vec<ImageDeleteResponseItem>) -> Result<u64, ServiceError> {
        let chains = image.resolved.chain_ids.clone();
        let mut sizes = Vec::with_capacity(chains.len());
        for c in &chains {
            sizes.push(self.layer_size(c).await.unwrap_or(0));
        }
        let count = image.records.len();
        for (i, record) in image.records.iter().enumerate() {
            self.containerd.image_delete(&record.name, i + 1 == count).await?;
            out.extend(familiar(&RecordName::parse(&record.name)).map(ImageDeleteResponseItem::untagged));
        }
        out.push(ImageDeleteResponseItem::deleted(image.id()));
        let mut reclaimed = 0u64;
        for (chain, size) in chains.iter().zip(sizes).rev() {
            if self.containerd.snapshot_stat(self.containerd.snapshotter(), chain).await?.is_none() {
                out.push(ImageDeleteResponseItem::deleted(chain.clone()));
                reclaimed += size.max(0) as u64;
            }
        }
        self.forget_sizes(&chains);
        Ok(reclaimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<RecordName> {
        list.iter().map(|n| RecordName::parse(n)).collect()
    }

    #[test]
    fn single_reference_as_dockerd() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(!is_single_reference(&[]));
        assert!(is_single_reference(&names(&["docker.io/library/a:1"])));
        assert!(!is_single_reference(&names(&["docker.io/library/a:1", "docker.io/library/a:2"])));
        assert!(is_single_reference(&names(&["docker.io/library/a:1", &format!("docker.io/library/a@{d}")])));
        assert!(!is_single_reference(&names(&["docker.io/library/a:1", &format!("docker.io/library/b@{d}")])));
    }
}
