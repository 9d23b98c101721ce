//! `docker network prune`: remove user-defined networks nothing uses.

use api_types::filters::Filters;

use super::NetworkService;
use crate::services::images::parse_until;
use crate::services::ServiceError;

impl NetworkService {
    pub async fn prune(&self, filters: &Filters) -> Result<Vec<String>, ServiceError> {
        filters.only(&["label", "label!", "until"]).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        let until = filters.get("until").iter().map(|v| parse_until(v)).collect::<Result<Vec<_>, _>>()?;
        let candidates: Vec<(String, String)> = {
            let nets = self.networks.lock().await;
            nets.values()
                .filter(|n| !n.predefined && n.endpoints.is_empty())
                .filter(|n| filters.labels_match(&n.labels) && !filters.labels_excluded(&n.labels))
                .filter(|n| {
                    let created = chrono::DateTime::parse_from_rfc3339(&n.created).map(|t| t.timestamp()).unwrap_or(0);
                    until.iter().all(|u| created < *u)
                })
                .map(|n| (n.id.clone(), n.name.clone()))
                .collect()
        };
        let mut deleted = Vec::new();
        for (id, name) in candidates {
            match self.remove(&id).await {
                Ok(()) => deleted.push(name),
                Err(e) => tracing::warn!(network.name = %name, error = %e, "prune skipped a network"),
            }
        }
        self.events.publish(
            api_types::events::TYPE_NETWORK,
            "prune",
            api_types::events::EventActor { id: String::new(), attributes: [("reclaimed".to_string(), "0".to_string())].into() },
        );
        Ok(deleted)
    }
}
