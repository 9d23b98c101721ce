//! A container's place on bridge networks (the default `bridge` or a
//! user-defined one): joined before its task starts with its published
//! ports, left when the task ends or the container goes.

use std::path::Path;

use api_types::container::NetworkSettings;

use crate::backends::oci_spec::NetworkNamespace;

use super::record::{Container, Status};
use super::ContainerService;
use crate::services::networks::ports;
use crate::services::ServiceError;

impl ContainerService {
    /// Join the bridge network the container's mode names (after clearing
    /// what a previous run left), publish its ports, and write its
    /// `/etc/hosts`. Containers on `host`, `none` (or on `bridge` with
    /// `--bridge none`) are untouched.
    pub(super) async fn join_networks(&self, record: &Container) -> Result<(), ServiceError> {
        if let Err(e) = self.networks.detach_container(&record.id).await {
            tracing::warn!(container.id = %record.id, error = %e, "clearing a previous run's network endpoints");
        }
        let mode = record.host_config.network_mode.as_str();
        if let Some(target) = mode.strip_prefix("container:") {
            // Its namespace is the other container's: that one must run.
            let other = self.lookup(target)?;
            let other = other.record.lock().await;
            if !matches!(other.state.status, Status::Running | Status::Paused | Status::Restarting) {
                return Err(ServiceError::Conflict(format!("cannot join network of a non running container: {}", other.id)));
            }
            return Ok(());
        }
        if mode == "host" {
            return Ok(());
        }
        let Some(network) = self.networks.bridge_network(mode).await? else {
            return self.networks.isolate_container(&record.id).await;
        };
        let publish = ports::requests(&record.host_config.other, record.config.exposed_ports.as_ref())?;
        let endpoint = self.networks.attach_container(&network, &record.id, record.bare_name(), &publish).await?;
        if let Err(e) = super::etc_files::write_hosts(Path::new(&record.hosts_path), &record.config.hostname, &endpoint.ip) {
            let _ = self.networks.detach_container(&record.id).await;
            return Err(ServiceError::Internal(format!("writing {}: {e}", record.hosts_path)));
        }
        let dns_servers = host_config_list(record, "Dns");
        let names = dns_names(record, self.aliases(record));
        if let Err(e) = self.networks.serve_dns(&record.id, &network, names, &dns_servers).await {
            let _ = self.networks.detach_container(&record.id).await;
            return Err(e);
        }
        Ok(())
    }

    /// The container whose namespace a `container:<name|id>` mode joins.
    pub(super) async fn network_container(&self, mode: &str) -> Result<Option<Container>, ServiceError> {
        let Some(target) = mode.strip_prefix("container:") else { return Ok(None) };
        let entry = self.lookup(target)?;
        let other = entry.record.lock().await.clone();
        if other.host_config.network_mode.starts_with("container:") {
            // dockerd joins only a container with a namespace of its own.
            return Err(ServiceError::InvalidParameter(format!(
                "cannot join network namespace of container {target}: it shares another container's"
            )));
        }
        Ok(Some(other))
    }

    /// The namespace the spec names for a container's network mode (the
    /// host's, another container's, or its own at the path its start
    /// makes), and whether it is the host's.
    pub(super) async fn spec_namespace(&self, record: &Container) -> Result<(NetworkNamespace, bool), ServiceError> {
        let host = || match self.networks.host_netns() {
            Some(path) => (NetworkNamespace::Path(path.to_path_buf()), true),
            None => (NetworkNamespace::Host, true),
        };
        let mode = record.host_config.network_mode.as_str();
        if mode == "host" {
            return Ok(host());
        }
        match self.network_container(mode).await? {
            Some(other) if other.host_config.network_mode == "host" => Ok(host()),
            Some(other) => Ok((NetworkNamespace::Path(self.networks.netns_path(&other.id)), false)),
            None => Ok((NetworkNamespace::Path(self.networks.netns_path(&record.id)), false)),
        }
    }

    /// The aliases asked for on the network the container's mode names.
    fn aliases<'a>(&self, record: &'a Container) -> &'a [String] {
        record.network_aliases.get(&record.host_config.network_mode).map(Vec::as_slice).unwrap_or_default()
    }

    /// The container's `--dns*` settings, else the daemon's, for its
    /// resolv.conf; `embedded` on a user-defined network.
    pub(super) fn resolv_settings(&self, record: &Container, embedded: bool) -> super::etc_files::Resolv {
        let defaults = self.networks.dns_defaults();
        let or_default = |own: Vec<String>, default: &Vec<String>| if own.is_empty() { default.clone() } else { own };
        super::etc_files::Resolv {
            servers: or_default(host_config_list(record, "Dns"), &defaults.servers),
            search: or_default(host_config_list(record, "DnsSearch"), &defaults.search),
            options: or_default(host_config_list(record, "DnsOptions"), &defaults.options),
            embedded,
        }
    }

    /// Leave every network: veth, address and namespace.
    pub(super) async fn leave_networks(&self, id: &str) -> Result<(), ServiceError> {
        self.networks.detach_container(id).await
    }

    /// `NetworkSettings` for inspect: the networks, and (as dockerd) the
    /// default bridge's endpoint and the published ports at the top level.
    pub(super) async fn network_settings(&self, record: &Container) -> NetworkSettings {
        let aliases = self.aliases(record);
        let dns_names = dns_names(record, aliases);
        let aliases = (!aliases.is_empty()).then(|| aliases.to_vec());
        let networks = self.networks.container_networks(&record.host_config.network_mode, &record.id, aliases, dns_names).await;
        let mut settings = NetworkSettings { networks, ..Default::default() };
        let Some((default_bridge, endpoint)) = self.networks.endpoint_of(&record.id).await else {
            return settings;
        };
        let publish = ports::requests(&record.host_config.other, record.config.exposed_ports.as_ref()).unwrap_or_default();
        if matches!(record.state.status, Status::Running | Status::Paused | Status::Restarting) {
            settings.ports = ports::inspect_ports(record.config.exposed_ports.as_ref(), &publish, &endpoint.ports);
            settings.sandbox_key = self.networks.netns_path(&record.id).display().to_string();
        }
        if default_bridge {
            settings.endpoint_id = endpoint.endpoint_id;
            settings.gateway = endpoint.gateway;
            settings.ip_address = endpoint.ip;
            settings.ip_prefix_len = i64::from(endpoint.prefix);
            settings.mac_address = endpoint.mac;
        }
        settings
    }

    /// `Ports` for `docker ps`: published and exposed ports while running.
    pub(super) async fn summary_ports(&self, record: &Container) -> Vec<serde_json::Value> {
        if !matches!(record.state.status, Status::Running | Status::Paused | Status::Restarting) {
            return vec![];
        }
        let publish = ports::requests(&record.host_config.other, record.config.exposed_ports.as_ref()).unwrap_or_default();
        let mappings = self.networks.endpoint_of(&record.id).await.map(|(_, e)| e.ports).unwrap_or_default();
        ports::summary_ports(record.config.exposed_ports.as_ref(), &publish, &mappings)
    }
}

/// dockerd's DNSNames: the name, the aliases, the short ID, the hostname.
fn dns_names(record: &Container, aliases: &[String]) -> Vec<String> {
    let mut names = vec![record.bare_name().to_string()];
    names.extend(aliases.iter().cloned());
    names.push(record.short_id().to_string());
    names.push(record.config.hostname.clone());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    names
}

/// A string list of HostConfig (`Dns`, `DnsSearch`, `DnsOptions`).
fn host_config_list(record: &Container, key: &str) -> Vec<String> {
    record.host_config.other.get(key).and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}
