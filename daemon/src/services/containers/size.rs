//! `SizeRw` and `SizeRootFs` (`docker ps -s`, `inspect --size`): the
//! snapshotter's usage of the container's writable layer and of the image
//! layers under it (cached per layer by the image service), not a walk of
//! the merged filesystem.

use std::collections::HashMap;

use super::record::Container;
use super::ContainerService;
use crate::services::ServiceError;

impl ContainerService {
    /// (SizeRw, SizeRootFs) of a container.
    pub(super) async fn sizes(&self, r: &Container) -> Result<(i64, i64), ServiceError> {
        let (rw, parent) = self.writable_layer(r).await?;
        Ok((rw, rw + self.size_below(&parent).await?))
    }

    /// The sizes of many containers (`ps -s`, `system df`): their writable
    /// layers asked of containerd side by side, the image layers under them
    /// summed once per distinct parent. `None` for a container whose
    /// snapshot is gone (one being removed).
    pub(super) async fn sizes_of(&self, records: &[&Container]) -> Vec<Option<(i64, i64)>> {
        let mut layers: Vec<Option<(i64, String)>> = Vec::with_capacity(records.len());
        for chunk in records.chunks(16) {
            let answers = futures_util::future::join_all(chunk.iter().map(|r| self.writable_layer(r))).await;
            layers.extend(answers.into_iter().map(Result::ok));
        }
        let mut below: HashMap<&str, Option<i64>> = HashMap::new();
        for (_, parent) in layers.iter().flatten() {
            if !below.contains_key(parent.as_str()) {
                below.insert(parent, self.size_below(parent).await.ok());
            }
        }
        layers
            .iter()
            .map(|layer| {
                let (rw, parent) = layer.as_ref()?;
                Some((*rw, rw + below.get(parent.as_str()).copied().flatten()?))
            })
            .collect()
    }

    /// The container's own layer: its usage, and the snapshot it sits on.
    async fn writable_layer(&self, r: &Container) -> Result<(i64, String), ServiceError> {
        let (usage, info) = tokio::join!(
            self.containerd.snapshot_usage(self.containerd.snapshotter(), &r.id),
            self.containerd.snapshot_stat(self.containerd.snapshotter(), &r.id)
        );
        Ok((usage?.size, info?.map(|i| i.parent).unwrap_or_default()))
    }

    /// The image layers from `parent` down (sizes cached per layer).
    async fn size_below(&self, parent: &str) -> Result<i64, ServiceError> {
        let mut total = 0;
        let mut parent = Some(parent.to_string());
        while let Some(layer) = parent.filter(|p| !p.is_empty()) {
            total += self.images.layer_size(&layer).await.unwrap_or(0);
            parent = self.containerd.snapshot_stat(self.containerd.snapshotter(), &layer).await?.map(|i| i.parent);
        }
        Ok(total)
    }

    /// `GET /containers/{id}/json?size=1`.
    pub async fn inspect_with_size(&self, name: &str) -> Result<api_types::container::ContainerInspect, ServiceError> {
        let mut out = self.inspect(name).await?;
        let record = self.lookup(name)?.record.lock().await.clone();
        let (rw, rootfs) = self.sizes(&record).await?;
        out.size_rw = Some(rw);
        out.size_root_fs = Some(rootfs);
        Ok(out)
    }

    /// Every container with its sizes, as `/system/df` lists them.
    pub async fn disk_usage(&self) -> Result<Vec<api_types::container::ContainerSummary>, ServiceError> {
        self.list(super::ListOptions { all: true, size: true, ..Default::default() }).await
    }
}
