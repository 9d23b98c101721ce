//! The classic builder's cache with `--cache-from` (moby's image/cache
//! ImageCache): with source images given, a local hit counts only when it
//! is an ancestor of a source; otherwise a source whose history continues
//! the parent's with the step's command answers it: the source itself when
//! that entry is its last, else an image restored from the parent plus that
//! entry (and its layer), after which only that source is used. Sources
//! pulled from a registry carry their history, not their parents' images,
//! so this is how a fresh machine reuses a pushed build.

use std::collections::HashMap;
use std::sync::Arc;

use api_types::container::ContainerConfig;
use serde_json::{json, Map, Value};

use super::commit::{child_of, descriptor_json};
use super::{ImageService, ResolvedImage, MEDIA_TYPE_OCI_MANIFEST};
use crate::services::ServiceError;

impl ImageService {
    /// The `cachefrom` images that are here; missing ones are skipped, as
    /// dockerd does (a warning in its log, not an error).
    pub async fn cache_sources(&self, refs: &[String]) -> Vec<Arc<ResolvedImage>> {
        let mut sources = Vec::new();
        for r in refs {
            match self.find(r).await {
                Ok(found) => sources.push(found.image.resolved),
                Err(e) => tracing::warn!(image = %r, error = %e, "could not look up a cache-from image, skipping it"),
            }
        }
        sources
    }

    /// The cache's answer for a step with `key` over `parent`, given
    /// `sources`; narrows `sources` to the one a restored image came from.
    pub async fn cached_from_sources(
        &self,
        parent: Option<&ResolvedImage>,
        key: &ContainerConfig,
        sources: &mut Vec<Arc<ResolvedImage>>,
    ) -> Result<Option<Arc<ResolvedImage>>, ServiceError> {
        let images = self.local_images().await?;
        if let Some(id) = child_of(&images, parent.map(ResolvedImage::id), key)? {
            let parents: HashMap<&str, &str> =
                images.iter().filter_map(|i| Some((i.id(), i.resolved.config.parent.as_deref().filter(|p| !p.is_empty())?))).collect();
            if sources.iter().any(|s| is_ancestor(&parents, s.id(), &id)) {
                return Ok(Some(self.find(&id).await?.image.resolved));
            }
        }
        let at = parent.map_or(0, |p| p.config.history.len());
        let wanted = key.cmd.as_deref().unwrap_or_default().join(" ");
        let matching = sources.iter().find(|s| {
            continues(s, parent) && s.config.history.get(at).is_some_and(|h| h.created_by.as_deref().unwrap_or_default() == wanted)
        });
        let Some(source) = matching.cloned() else { return Ok(None) };
        if source.config.history.len() == at + 1 {
            return Ok(Some(source));
        }
        let restored = self.restore_cached_image(parent, &source, key, at).await?;
        *sources = vec![source];
        Ok(Some(restored))
    }

    /// `parent` plus `source`'s history entry `at` and the layer it made,
    /// with `key` as its config (as dockerd writes it).
    async fn restore_cached_image(
        &self,
        parent: Option<&ResolvedImage>,
        source: &ResolvedImage,
        key: &ContainerConfig,
        at: usize,
    ) -> Result<Arc<ResolvedImage>, ServiceError> {
        let c = &self.containerd;
        let raw: Map<String, Value> = self.read_json(c, &source.config_descriptor.digest).await?;
        let entry = raw.get("history").and_then(|h| h.get(at)).cloned().unwrap_or_default();
        let mut history = match parent {
            Some(p) => {
                let raw_parent: Map<String, Value> = self.read_json(c, &p.config_descriptor.digest).await?;
                raw_parent.get("history").and_then(Value::as_array).cloned().unwrap_or_default()
            }
            None => Vec::new(),
        };
        history.push(entry.clone());
        let mut diff_ids: Vec<String> = parent.map(|p| p.config.rootfs.diff_ids.clone()).unwrap_or_default();
        let mut layers: Vec<Value> = parent.map(|p| p.layers.iter().map(descriptor_json).collect()).unwrap_or_default();
        if let Some(i) = layer_index(source, at) {
            let (Some(diff_id), Some(layer)) = (source.config.rootfs.diff_ids.get(i), source.layers.get(i)) else {
                return Err(ServiceError::InvalidParameter(format!("cache-from image {} has fewer layers than its history says", source.id())));
            };
            diff_ids.push(diff_id.clone());
            layers.push(descriptor_json(layer));
        }
        let mut config = Map::new();
        config.insert("architecture".into(), json!(source.config.architecture));
        config.insert("os".into(), json!(source.config.os));
        if let Some(v) = source.config.os_version.as_deref().filter(|v| !v.is_empty()) {
            config.insert("os.version".into(), json!(v));
        }
        if let Some(a) = source.config.author.as_deref().filter(|a| !a.is_empty()) {
            config.insert("author".into(), json!(a));
        }
        config.insert("config".into(), serde_json::to_value(key).map_err(|e| ServiceError::Internal(e.to_string()))?);
        config.insert("created".into(), entry.get("created").cloned().unwrap_or(Value::Null));
        config.insert("docker_version".into(), json!(crate::release::VERSION));
        // berthd records an image's parent in its config (dockerd's SetParent).
        if let Some(p) = parent {
            config.insert("parent".into(), json!(p.id()));
        }
        config.insert("rootfs".into(), json!({"type": "layers", "diff_ids": diff_ids}));
        config.insert("history".into(), Value::Array(history));
        let oci = source.manifest.media_type == MEDIA_TYPE_OCI_MANIFEST;
        let ingest = self.begin_ingestion().await?;
        let stored = self.store_config(&ingest, &config, layers, oci, &[]).await;
        let stored = ingest.settle(stored).await?;
        self.resolve_target(&stored.target).await
    }
}

/// Whether `ancestor` is on `image`'s parent chain (not `image` itself).
fn is_ancestor(parents: &HashMap<&str, &str>, image: &str, ancestor: &str) -> bool {
    let mut next = parents.get(image).copied();
    // The chain is at most as long as the number of images (a loop ends it).
    for _ in 0..=parents.len() {
        match next {
            Some(p) if p == ancestor => return true,
            Some(p) => next = parents.get(p).copied(),
            None => return false,
        }
    }
    false
}

/// Whether `image`'s history and layers start with all of `parent`'s.
fn continues(image: &ResolvedImage, parent: Option<&ResolvedImage>) -> bool {
    let (history, diff_ids) = (&image.config.history, &image.config.rootfs.diff_ids);
    if history.is_empty() {
        return false;
    }
    let Some(parent) = parent else { return true };
    let (ph, pd) = (&parent.config.history, &parent.config.rootfs.diff_ids);
    if ph.is_empty() && pd.is_empty() {
        return true;
    }
    ph.len() < history.len() && pd.len() <= diff_ids.len() && history.starts_with(ph) && diff_ids.starts_with(pd)
}

/// The index among the layers of the one history entry `at` made; `None`
/// for an entry that made no layer.
fn layer_index(image: &ResolvedImage, at: usize) -> Option<usize> {
    let history = &image.config.history;
    if history.get(at)?.empty_layer {
        return None;
    }
    Some(history[..at].iter().filter(|h| !h.empty_layer).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_follow_the_parent_chain_and_stop_on_loops() {
        let parents: HashMap<&str, &str> = [("c", "b"), ("b", "a"), ("x", "y"), ("y", "x")].into_iter().collect();
        assert!(is_ancestor(&parents, "c", "a"));
        assert!(is_ancestor(&parents, "c", "b"));
        assert!(!is_ancestor(&parents, "c", "c"));
        assert!(!is_ancestor(&parents, "a", "c"));
        assert!(!is_ancestor(&parents, "x", "z"));
    }
}
