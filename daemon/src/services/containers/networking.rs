//! A container's place on user-defined networks: joined before its task
//! starts, left when the task ends or the container goes.

use std::path::Path;

use super::record::Container;
use super::ContainerService;
use crate::services::ServiceError;

impl ContainerService {
    /// Join the user-defined network the container's mode names (after
    /// clearing what a previous run left), and write its `/etc/hosts`.
    /// Containers on `bridge`, `host` or `none` are untouched.
    pub(super) async fn join_networks(&self, record: &Container) -> Result<(), ServiceError> {
        if let Err(e) = self.networks.detach_container(&record.id).await {
            tracing::warn!(container.id = %record.id, error = %e, "clearing a previous run's network endpoints");
        }
        let Some(network) = self.networks.user_network(&record.host_config.network_mode).await? else {
            return Ok(());
        };
        let endpoint = self.networks.attach_container(&network, &record.id, record.bare_name()).await?;
        if let Err(e) = super::etc_files::write_hosts(Path::new(&record.hosts_path), &record.config.hostname, &endpoint.ip) {
            let _ = self.networks.detach_container(&record.id).await;
            return Err(ServiceError::Internal(format!("writing {}: {e}", record.hosts_path)));
        }
        Ok(())
    }

    /// Leave every network: veth, address and namespace.
    pub(super) async fn leave_networks(&self, id: &str) -> Result<(), ServiceError> {
        self.networks.detach_container(id).await
    }

    /// `NetworkSettings.Networks` for inspect.
    pub(super) async fn network_entries(&self, record: &Container) -> std::collections::BTreeMap<String, serde_json::Value> {
        let dns_names = vec![record.bare_name().to_string(), record.short_id().to_string()];
        self.networks.container_networks(&record.host_config.network_mode, &record.id, None, dns_names).await
    }
}
