//! `docker network prune`: remove user-defined networks nothing uses.

use api_types::filters::Filters;

use super::NetworkService;
use crate::services::ServiceError;

impl NetworkService {
    pub async fn prune(&self, filters: &Filters) -> Result<Vec<String>, ServiceError> {
        filters.only(&["label", "until"]).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        if filters.contains("until") {
            return Err(ServiceError::NotImplemented(
                "the 'until' filter of network prune is not implemented by berthd yet".into(),
            ));
        }
        let candidates: Vec<(String, String)> = {
            let nets = self.networks.lock().await;
            nets.values()
                .filter(|n| !n.predefined && n.endpoints.is_empty() && filters.labels_match(&n.labels))
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
