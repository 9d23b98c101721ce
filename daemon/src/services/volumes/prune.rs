//! `docker volume prune`: unused volumes; only anonymous ones unless `all`
//! (API ≥ 1.42; the route asks for `all` on older versions, as dockerd).

use api_types::filters::Filters;
use api_types::volume::VolumePruneResponse;

use super::list::parse_bool;
use super::{VolumeService, ANONYMOUS_LABEL};
use crate::services::ServiceError;

impl VolumeService {
    pub async fn prune(&self, filters: &Filters, all_by_default: bool) -> Result<VolumePruneResponse, ServiceError> {
        filters.only(&["label", "label!", "all"]).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        let mut all = all_by_default;
        for v in filters.get("all") {
            all = parse_bool("all", v)?;
        }
        let candidates: Vec<String> = {
            let reg = self.registry();
            reg.volumes
                .values()
                .filter(|r| !reg.refs.contains_key(&r.name))
                .filter(|r| all || r.labels.contains_key(ANONYMOUS_LABEL))
                .filter(|r| filters.labels_match(&r.labels))
                .filter(|r| {
                    !filters.get("label!").iter().any(|l| match l.split_once('=') {
                        Some((k, v)) => r.labels.get(k).is_some_and(|have| have == v),
                        None => r.labels.contains_key(l.as_str()),
                    })
                })
                .map(|r| r.name.clone())
                .collect()
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for name in candidates {
            let store = self.store.clone();
            let owned = name.clone();
            let size = tokio::task::spawn_blocking(move || store.size(&owned)).await.unwrap_or(0);
            match self.remove(&name, false).await {
                Ok(()) => {
                    reclaimed += size;
                    deleted.push(name);
                }
                // Taken by a container meanwhile, or already gone.
                Err(e) => tracing::debug!(volume.name = %name, error = %e, "not pruned"),
            }
        }
        self.emit("prune", "", &[("reclaimed", reclaimed.to_string())]);
        Ok(VolumePruneResponse {
            volumes_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: reclaimed,
        })
    }
}
