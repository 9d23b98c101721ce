//! `docker container prune`: remove every stopped container that matches
//! the `until` and `label` filters, reporting the space their layers held.

use api_types::container::ContainerPruneResponse;
use api_types::filters::Filters;

use super::record::Status;
use super::ContainerService;
use crate::services::images::parse_until;
use crate::services::ServiceError;

const FILTERS: &[&str] = &["until", "label", "label!"];

impl ContainerService {
    pub async fn prune(&self, filters: &Filters) -> Result<ContainerPruneResponse, ServiceError> {
        filters.only(FILTERS).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        let until = filters.get("until").iter().map(|v| parse_until(v)).collect::<Result<Vec<_>, _>>()?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for entry in self.entries() {
            let id = {
                let record = entry.record.lock().await;
                let stopped = matches!(record.state.status, Status::Created | Status::Exited | Status::Dead);
                let created = chrono::DateTime::parse_from_rfc3339(&record.created).map(|t| t.timestamp()).unwrap_or(0);
                let labels = &record.config.labels;
                let unwanted = filters.labels_excluded(labels);
                if !stopped || until.iter().any(|u| created >= *u) || !filters.labels_match(labels) || unwanted {
                    continue;
                }
                record.id.clone()
            };
            let size = self.containerd.snapshot_usage(self.containerd.snapshotter(), &id).await.map(|u| u.size).unwrap_or(0);
            match self.destroy(&entry).await {
                Ok(()) => {
                    reclaimed += u64::try_from(size).unwrap_or(0);
                    deleted.push(id);
                }
                Err(e) => tracing::warn!(container.id = %id, error = %e, "pruning container"),
            }
        }
        self.emit_anonymous("prune", &[("reclaimed", reclaimed.to_string())]);
        Ok(ContainerPruneResponse { containers_deleted: (!deleted.is_empty()).then_some(deleted), space_reclaimed: reclaimed })
    }
}
