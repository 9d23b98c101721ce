//! `DELETE /images/{name}`: untag, or delete, as dockerd decides.
//!
//! A name given: that name goes; the image goes too when it was its last
//! name (and, for a tag, the digest names of the same repository go with
//! it). An ID given: the image goes with all its names, provided those are
//! all in one repository with at most one tag, or `force` is set; else 409.
//! Conflicts with containers come with the containers service (not yet).

use api_types::image::ImageDeleteResponseItem;

use super::{is_id_prefix, short_id, ImageService, LocalImage, RecordName};
use crate::backends::containerd::SNAPSHOTTER;
use crate::services::ServiceError;

#[derive(Debug, Clone, Copy, Default)]
pub struct ImageRemoveOptions {
    pub force: bool,
    /// `noprune`: keep untagged parents (the builder's step images).
    pub no_prune: bool,
}

fn familiar(name: &RecordName) -> Option<String> {
    name.reference().map(|r| r.familiar_string())
}

impl ImageService {
    pub async fn remove(&self, input: &str, opts: ImageRemoveOptions) -> Result<Vec<ImageDeleteResponseItem>, ServiceError> {
        let found = self.find(input).await?;
        let id = found.image.id().to_string();
        let out = self.remove_found(input, found, opts).await?;
        self.emit_removals(&id, &out);
        Ok(out)
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

    async fn remove_found(&self, input: &str, found: super::Found, opts: ImageRemoveOptions) -> Result<Vec<ImageDeleteResponseItem>, ServiceError> {
        let image = found.image;
        let mut out = Vec::new();
        let by_id = found.record.is_none() && is_id_prefix(image.id(), input);
        if let (false, Some(record)) = (by_id, found.record.as_ref()) {
            let removed = RecordName::parse(&record.name);
            self.containerd.image_delete(&record.name, false).await?;
            out.extend(familiar(&removed).map(ImageDeleteResponseItem::untagged));
            let mut remaining: Vec<_> = image.records.iter().filter(|r| r.name != record.name).cloned().collect();
            if let RecordName::Tag(removed) = &removed {
                let same_repo_tag = remaining
                    .iter()
                    .any(|r| matches!(RecordName::parse(&r.name), RecordName::Tag(t) if t.name() == removed.name()));
                if !same_repo_tag {
                    let mut keep = Vec::new();
                    for r in remaining {
                        match RecordName::parse(&r.name) {
                            RecordName::Digest(d) if d.name() == removed.name() => {
                                self.containerd.image_delete(&r.name, false).await?;
                                out.push(ImageDeleteResponseItem::untagged(d.familiar_string()));
                            }
                            _ => keep.push(r),
                        }
                    }
                    remaining = keep;
                }
            }
            if remaining.iter().any(|r| !matches!(RecordName::parse(&r.name), RecordName::Dangling)) {
                return Ok(out);
            }
            let rest = LocalImage { resolved: image.resolved.clone(), records: remaining };
            self.delete_image(&rest, &mut out).await?;
            if !opts.no_prune {
                self.delete_untagged_parents(&image, &mut out).await?;
            }
            return Ok(out);
        }
        let names: Vec<RecordName> =
            image.records.iter().map(|r| RecordName::parse(&r.name)).filter(|n| n.reference().is_some()).collect();
        let tags = names.iter().filter(|n| matches!(n, RecordName::Tag(_))).count();
        let mut repos: Vec<String> = names.iter().filter_map(|n| n.reference().map(|r| r.name())).collect();
        repos.dedup();
        let single = tags <= 1 && repos.len() <= 1;
        if !single && !opts.force {
            return Err(ServiceError::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short_id(image.id())
            )));
        }
        self.delete_image(&image, &mut out).await?;
        if !opts.no_prune {
            self.delete_untagged_parents(&image, &mut out).await?;
        }
        Ok(out)
    }

    /// As dockerd after deleting an image: its parent goes too when it has
    /// no name and no other child, and so on up the chain.
    async fn delete_untagged_parents(&self, deleted: &LocalImage, out: &mut Vec<ImageDeleteResponseItem>) -> Result<(), ServiceError> {
        let mut parent = deleted.resolved.config.parent.clone().filter(|p| !p.is_empty());
        while let Some(id) = parent.take() {
            let images = self.local_images().await?;
            let Some(image) = images.iter().find(|i| i.id() == id) else { break };
            let has_child = images.iter().any(|i| i.resolved.config.parent.as_deref() == Some(id.as_str()));
            if !image.is_dangling() || has_child {
                break;
            }
            let mut items = Vec::new();
            self.delete_image(image, &mut items).await?;
            self.emit_removals(image.id(), &items);
            out.extend(items);
            parent = image.resolved.config.parent.clone().filter(|p| !p.is_empty());
        }
        Ok(())
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
            if self.containerd.snapshot_stat(SNAPSHOTTER, chain).await?.is_none() {
                out.push(ImageDeleteResponseItem::deleted(chain.clone()));
                reclaimed += size.max(0) as u64;
            }
        }
        self.forget_sizes(&chains);
        Ok(reclaimed)
    }
}
