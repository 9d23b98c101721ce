//! `SizeRw` and `SizeRootFs` (`docker ps -s`, `inspect --size`): the
//! snapshotter's usage of the container's writable layer and of the image
//! layers under it (cached per layer by the image service), not a walk of
//! the merged filesystem.

use super::record::Container;
use super::ContainerService;
use crate::backends::containerd::SNAPSHOTTER;
use crate::services::ServiceError;

impl ContainerService {
    /// (SizeRw, SizeRootFs) of a container.
    pub(super) async fn sizes(&self, r: &Container) -> Result<(i64, i64), ServiceError> {
        let rw = self.containerd.snapshot_usage(SNAPSHOTTER, &r.id).await?.size;
        let mut total = rw;
        let mut parent = self.containerd.snapshot_stat(SNAPSHOTTER, &r.id).await?.map(|i| i.parent);
        while let Some(layer) = parent.filter(|p| !p.is_empty()) {
            total += self.images.layer_size(&layer).await.unwrap_or(0);
            parent = self.containerd.snapshot_stat(SNAPSHOTTER, &layer).await?.map(|i| i.parent);
        }
        Ok((rw, total))
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
