//! `docker network rm`: refuse predefined and busy networks, then delete
//! the bridge and the record.

use super::{lookup, NetworkService};
use crate::backends::network::bridge;
use crate::services::ServiceError;

impl NetworkService {
    pub async fn remove(&self, name_or_id: &str) -> Result<(), ServiceError> {
        let mut nets = self.networks.lock().await;
        let n = lookup(&nets, name_or_id)?.clone();
        if n.predefined {
            return Err(ServiceError::Forbidden(format!("{} is a pre-defined network and cannot be removed", n.name)));
        }
        if !n.endpoints.is_empty() {
            return Err(ServiceError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        if let Some(b) = &n.bridge {
            bridge::delete_link(b)
                .await
                .map_err(|e| ServiceError::Internal(format!("error while removing network: deleting bridge {b}: {e}")))?;
        }
        self.store
            .remove(&n.id)
            .map_err(|e| ServiceError::Internal(format!("error while removing network: {e}")))?;
        nets.remove(&n.id);
        if let Err(e) = self.sync_firewall(&nets).await {
            tracing::warn!(network.name = %n.name, error = %e, "updating the firewall rules after removing a network");
        }
        self.emit("destroy", &n, None);
        tracing::info!(network.id = %n.id, network.name = %n.name, "network removed");
        Ok(())
    }
}
