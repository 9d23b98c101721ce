//! `SizeRw` and `SizeRootFs` (`docker ps -s`, `inspect --size`, `system
//! df`): the usage of the container's writable layer as containerd's
//! snapshotter counts it, plus the image layers under it (cached per layer
//! by the image service), not a walk of the merged filesystem.

use std::collections::HashMap;
use std::path::PathBuf;

use super::record::Container;
use super::ContainerService;
use crate::backends::disk_usage::disk_usage;
use crate::backends::rootfs::upper_dir;
use crate::services::ServiceError;

/// Blocking tasks the walks are shared among: as many as the cores a
/// small machine has; more only wait for a core (each a wake-up).
const WALK_TASKS: usize = 2;

/// What does not change about a container's writable layer while its
/// snapshot exists: where its files are (when the snapshotter keeps them
/// in a directory) and the size of the image layers under it.
#[derive(Debug, Clone)]
pub(super) struct LayerFacts {
    upper: Option<PathBuf>,
    below: i64,
}

/// Container ID → its layer's facts, learnt on first sizing.
pub(super) type LayerCache = std::sync::Mutex<HashMap<String, LayerFacts>>;

impl ContainerService {
    /// (SizeRw, SizeRootFs) of a container.
    pub(super) async fn sizes(&self, r: &Container) -> Result<(i64, i64), ServiceError> {
        let (rw, parent) = self.writable_layer(r).await?;
        Ok((rw, rw + self.size_below(&parent).await?))
    }

    /// The sizes of many containers (`ps -s`, `system df`) in a few
    /// milliseconds: each writable layer's directory is walked here, side
    /// by side on blocking threads, as containerd's Usage would walk it;
    /// where it is and the image layers' size under it are asked of
    /// containerd once per container. `None` for a container whose
    /// snapshot is gone (one being removed).
    pub(super) async fn sizes_of(&self, records: &[&Container]) -> Vec<Option<(i64, i64)>> {
        let facts = self.layer_facts(records).await;
        let per_task = records.len().div_ceil(WALK_TASKS).max(1);
        let walks = facts.chunks(per_task).map(|chunk| {
            let dirs: Vec<Option<PathBuf>> = chunk.iter().map(|f| f.as_ref().and_then(|f| f.upper.clone())).collect();
            let len = dirs.len();
            async move {
                let walked = tokio::task::spawn_blocking(move || dirs.iter().map(|d| d.as_deref().map(disk_usage)).collect());
                walked.await.unwrap_or_else(|_| (0..len).map(|_| None).collect::<Vec<_>>())
            }
        });
        let walked: Vec<Option<std::io::Result<i64>>> =
            futures_util::future::join_all(walks).await.into_iter().flatten().collect();
        let mut out = Vec::with_capacity(records.len());
        for ((r, facts), walked) in records.iter().zip(facts).zip(walked) {
            let Some(facts) = facts else {
                out.push(None);
                continue;
            };
            let rw = match walked {
                Some(Ok(size)) => Some(size),
                other => {
                    // Gone (removed, or prepared anew elsewhere): learn again next time.
                    if other.is_some() {
                        self.layer_cache.lock().unwrap_or_else(|e| e.into_inner()).remove(&r.id);
                    }
                    self.containerd.snapshot_usage(self.containerd.snapshotter(), &r.id).await.ok().map(|u| u.size)
                }
            };
            out.push(rw.map(|rw| (rw, rw + facts.below)));
        }
        out
    }

    /// The cached facts of each container's layer; the missing ones
    /// learnt from one snapshot listing (parents) and their mounts.
    async fn layer_facts(&self, records: &[&Container]) -> Vec<Option<LayerFacts>> {
        let mut facts: Vec<Option<LayerFacts>> = {
            let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
            let mut cache = self.layer_cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|id, _| registry.by_id.contains_key(id));
            records.iter().map(|r| cache.get(&r.id).cloned()).collect()
        };
        let missing: Vec<usize> = (0..records.len()).filter(|&i| facts[i].is_none()).collect();
        if missing.is_empty() {
            return facts;
        }
        let parents: HashMap<String, String> = match self.containerd.snapshot_list(self.containerd.snapshotter()).await {
            Ok(all) => all.into_iter().map(|s| (s.name, s.parent)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing snapshots for container sizes");
                return facts;
            }
        };
        let known: Vec<usize> = missing.into_iter().filter(|&i| parents.contains_key(&records[i].id)).collect();
        // Image layers' size under each parent, and whether every layer's
        // size was had (a partial sum is not kept).
        let mut below: HashMap<&str, (i64, bool)> = HashMap::new();
        for chunk in known.chunks(16) {
            let mounts = futures_util::future::join_all(chunk.iter().map(|&i| self.containerd.rootfs_mounts(&records[i].id))).await;
            for (&i, mounts) in chunk.iter().zip(mounts) {
                let Ok(mounts) = mounts else { continue };
                let parent = parents[&records[i].id].as_str();
                if !below.contains_key(parent) {
                    let (mut total, mut whole) = (0, true);
                    let mut layer = parent;
                    while !layer.is_empty() {
                        let size = self.images.layer_size(layer).await;
                        whole &= size.is_some();
                        total += size.unwrap_or(0);
                        let Some(next) = parents.get(layer) else { break };
                        layer = next;
                    }
                    below.insert(parent, (total, whole));
                }
                let (size, whole) = below[parent];
                let learnt = LayerFacts { upper: upper_dir(&mounts), below: size };
                if whole {
                    self.layer_cache.lock().unwrap_or_else(|e| e.into_inner()).insert(records[i].id.clone(), learnt.clone());
                }
                facts[i] = Some(learnt);
            }
        }
        facts
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
