//! `SizeRw` and `SizeRootFs` (`docker ps -s`, `inspect --size`): the
//! snapshotter's usage of the container's writable layer and of the image
//! layers under it (cached per layer by the image service), not a walk of
//! the merged filesystem.

use std::collections::HashMap;
use std::path::PathBuf;

use super::record::Container;
use super::ContainerService;
use crate::backends::disk_usage::disk_usage;
use crate::backends::rootfs::upper_dir;
use crate::services::ServiceError;

/// Writable layers walked per blocking task (a few tasks share the cores).
const WALK_CHUNK: usize = 32;

/// Container ID → its writable snapshot's upper directory.
pub(super) type UpperDirs = std::sync::Mutex<HashMap<String, PathBuf>>;

impl ContainerService {
    /// (SizeRw, SizeRootFs) of a container.
    pub(super) async fn sizes(&self, r: &Container) -> Result<(i64, i64), ServiceError> {
        let (rw, parent) = self.writable_layer(r).await?;
        Ok((rw, rw + self.size_below(&parent).await?))
    }

    /// The sizes of many containers (`ps -s`, `system df`) in a few
    /// milliseconds: one snapshot listing gives every container's parent
    /// and the image layers' chains (their sizes cached per layer), and
    /// the writable layers are walked here, side by side on blocking
    /// threads, as containerd's Usage would walk them. `None` for a
    /// container whose snapshot is gone (one being removed).
    pub(super) async fn sizes_of(&self, records: &[&Container]) -> Vec<Option<(i64, i64)>> {
        let parents: HashMap<String, String> = match self.containerd.snapshot_list(self.containerd.snapshotter()).await {
            Ok(all) => all.into_iter().map(|s| (s.name, s.parent)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing snapshots for container sizes");
                return vec![None; records.len()];
            }
        };
        let rw = self.writable_sizes(records, &parents).await;
        let mut below: HashMap<&str, i64> = HashMap::new();
        let mut out = Vec::with_capacity(records.len());
        for (r, rw) in records.iter().zip(rw) {
            let (Some(rw), Some(parent)) = (rw, parents.get(&r.id)) else {
                out.push(None);
                continue;
            };
            if !below.contains_key(parent.as_str()) {
                let mut total = 0;
                let mut layer = parent;
                while !layer.is_empty() {
                    total += self.images.layer_size(layer).await.unwrap_or(0);
                    let Some(next) = parents.get(layer) else { break };
                    layer = next;
                }
                below.insert(parent, total);
            }
            out.push(Some((rw, rw + below[parent.as_str()])));
        }
        out
    }

    /// Usage of each container's writable layer: its upper directory
    /// (known once per snapshot: it never moves) walked in-process;
    /// containerd's Usage when the directory is not known or has gone.
    async fn writable_sizes(&self, records: &[&Container], parents: &HashMap<String, String>) -> Vec<Option<i64>> {
        let mut dirs: Vec<Option<PathBuf>> = {
            let mut cache = self.upper_dirs.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|id, _| parents.contains_key(id));
            records.iter().map(|r| cache.get(&r.id).cloned()).collect()
        };
        let missing: Vec<usize> =
            (0..records.len()).filter(|&i| dirs[i].is_none() && parents.contains_key(&records[i].id)).collect();
        for chunk in missing.chunks(16) {
            let found = futures_util::future::join_all(chunk.iter().map(|&i| self.containerd.rootfs_mounts(&records[i].id))).await;
            let mut cache = self.upper_dirs.lock().unwrap_or_else(|e| e.into_inner());
            for (&i, mounts) in chunk.iter().zip(found) {
                dirs[i] = mounts.ok().as_deref().and_then(upper_dir);
                if let Some(dir) = &dirs[i] {
                    cache.insert(records[i].id.clone(), dir.clone());
                }
            }
        }
        let walks = dirs.chunks(WALK_CHUNK).map(|chunk| {
            let (chunk, len) = (chunk.to_vec(), chunk.len());
            async move {
                let walked = tokio::task::spawn_blocking(move || chunk.iter().map(|d| d.as_deref().map(disk_usage)).collect());
                walked.await.unwrap_or_else(|_| (0..len).map(|_| None).collect::<Vec<_>>())
            }
        });
        let walked: Vec<Option<std::io::Result<i64>>> =
            futures_util::future::join_all(walks).await.into_iter().flatten().collect();
        let mut out = Vec::with_capacity(records.len());
        for (r, walked) in records.iter().zip(walked) {
            out.push(match walked {
                Some(Ok(size)) => Some(size),
                _ if !parents.contains_key(&r.id) => None,
                other => {
                    if other.is_some() {
                        self.upper_dirs.lock().unwrap_or_else(|e| e.into_inner()).remove(&r.id);
                    }
                    self.containerd.snapshot_usage(self.containerd.snapshotter(), &r.id).await.ok().map(|u| u.size)
                }
            });
        }
        out
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

    /// Every container, with its sizes when `sizes`, as `/system/df` lists them.
    pub async fn disk_usage(&self, sizes: bool) -> Result<Vec<api_types::container::ContainerSummary>, ServiceError> {
        self.list(super::ListOptions { all: true, size: sizes, ..Default::default() }).await
    }
}
