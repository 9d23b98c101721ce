//! A container's place on bridge networks (the default `bridge` or a
//! user-defined one): joined before its task starts with its published
//! ports, left when the task ends or the container goes.

use std::path::Path;

use api_types::container::NetworkSettings;

use crate::backends::oci_spec::NetworkNamespace;

use super::record::{Container, Status};
use super::ContainerService;
use crate::services::networks::{ports, predefined_mode, EndpointRequest};
use crate::services::ServiceError;

/// dockerd's refusals for modes that share a namespace, and for the
/// `host`/`none` networks, which take no extra endpoints.
fn check_shared_modes(mode: &str, network_name: &str, predefined: bool) -> Result<(), ServiceError> {
    if mode == "host" || (predefined && network_name == "host") {
        return Err(ServiceError::InvalidParameter(
            "container cannot be disconnected from host network or connected to host network".into(),
        ));
    }
    if mode.starts_with("container:") {
        return Err(ServiceError::InvalidParameter(
            "container sharing network namespace with another container or host cannot be connected to any other network".into(),
        ));
    }
    if mode == "none" || (predefined && network_name == "none") {
        return Err(ServiceError::InvalidParameter(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
        ));
    }
    Ok(())
}

/// `--ip` and aliases only on user-defined networks, as dockerd.
pub(super) fn check_endpoint_request(req: &EndpointRequest, network_name: &str, predefined: bool) -> Result<(), ServiceError> {
    if !predefined {
        return Ok(());
    }
    if !req.ipv4_address.is_empty() || !req.ipv6_address.is_empty() {
        return Err(ServiceError::InvalidParameter(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    if !req.aliases.is_empty() {
        return Err(ServiceError::InvalidParameter(format!(
            "network-scoped alias is supported only for containers in user defined networks (not {network_name})"
        )));
    }
    Ok(())
}

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
        let attached = self.attachments(record).await?;
        if attached.is_empty() {
            return self.networks.isolate_container(&record.id).await;
        }
        let publish = ports::requests(&record.host_config.other, record.config.exposed_ports.as_ref())?;
        // Links fail the start before anything is joined.
        let (extra_hosts, link_rules) = self.prepare_links(record).await?;
        let mut first_ip = None;
        for (i, req) in attached.iter().enumerate() {
            let primary = i == 0;
            let publish: &[ports::PortRequest] = if primary { &publish } else { &[] };
            match self.networks.attach_container(req, &record.id, record.bare_name(), publish, primary).await {
                Ok(endpoint) => {
                    first_ip.get_or_insert((endpoint.ip, endpoint.ip6));
                }
                Err(e) => {
                    let _ = self.networks.detach_container(&record.id).await;
                    return Err(e);
                }
            }
        }
        if !link_rules.is_empty() {
            if let Err(e) = self.networks.open_links(&record.id, link_rules).await {
                let _ = self.networks.detach_container(&record.id).await;
                return Err(e);
            }
        }
        let (ip, ip6) = first_ip.unwrap_or_default();
        if let Err(e) = super::etc_files::write_hosts(Path::new(&record.hosts_path), &record.config.hostname, &ip, &ip6, &extra_hosts) {
            let _ = self.networks.detach_container(&record.id).await;
            return Err(ServiceError::Internal(format!("writing {}: {e}", record.hosts_path)));
        }
        let dns_servers = host_config_list(record, "Dns");
        for req in &attached {
            let names = dns_names(record, &req.aliases);
            if let Err(e) = self.networks.serve_dns(&record.id, &req.network_id, names, &dns_servers).await {
                let _ = self.networks.detach_container(&record.id).await;
                return Err(e);
            }
        }
        self.embedded_dns_on_user_networks(record, &attached).await;
        self.update_parents(record).await;
        Ok(())
    }

    /// A container of the default bridge that is also on a user-defined
    /// network gets the embedded resolver, as with dockerd (whose
    /// resolv.conf then names 127.0.0.11 too).
    async fn embedded_dns_on_user_networks(&self, record: &Container, attached: &[EndpointRequest]) {
        if predefined_mode(&record.host_config.network_mode).is_none() {
            return; // user-defined from the start: written so at create
        }
        let mut on_user_network = false;
        for a in attached {
            on_user_network |= self.networks.resolve(&a.network_id).await.is_ok_and(|(_, _, predefined)| !predefined);
        }
        if on_user_network {
            let path = Path::new(&record.resolv_conf_path);
            if let Err(e) = super::etc_files::rewrite_resolv(path, &self.resolv_settings(record, true)) {
                tracing::warn!(container.id = %record.id, error = %e, "rewriting resolv.conf");
            }
        }
    }

    /// At create: the bridge networks to join, the mode's first, each with
    /// its `EndpointsConfig` entry (API ≥ 1.44 may name several).
    pub(super) async fn plan_networks(
        &self,
        mode: &str,
        networking_config: Option<&serde_json::Value>,
    ) -> Result<Option<Vec<EndpointRequest>>, ServiceError> {
        let endpoints = networking_config.and_then(|c| c.get("EndpointsConfig")).and_then(|e| e.as_object());
        // dockerd checks every endpoint's addresses whatever the mode
        // (`none` and `host` included), before it looks networks up.
        for settings in endpoints.into_iter().flat_map(|e| e.values()) {
            EndpointRequest::from_api("", Some(settings))?;
        }
        let Some(primary) = self.networks.bridge_network(mode).await? else {
            return Ok(None);
        };
        let (_, primary_name, primary_predefined) = self.networks.resolve(&primary).await?;
        let mut planned = Vec::new();
        let mut first = None;
        let mut others = Vec::new();
        for (name, settings) in endpoints.into_iter().flatten() {
            // The CLI keys the mode's own entry as the mode reads (`default`).
            if name == mode || (predefined_mode(name).is_some() && predefined_mode(name) == predefined_mode(mode)) {
                first = Some(settings);
                continue;
            }
            let (id, network_name, predefined) = self.networks.resolve(name).await?;
            if id == primary {
                first = Some(settings);
            } else {
                if predefined && network_name != "bridge" {
                    return Err(ServiceError::InvalidParameter(
                        "container cannot be connected to multiple networks with one of the networks in private (none) mode"
                            .into(),
                    ));
                }
                others.push((id, network_name, predefined, settings));
            }
        }
        let req = EndpointRequest::from_api(&primary, first)?;
        check_endpoint_request(&req, &primary_name, primary_predefined)?;
        planned.push(req);
        for (id, name, predefined, settings) in others {
            let req = EndpointRequest::from_api(&id, Some(settings))?;
            check_endpoint_request(&req, &name, predefined)?;
            planned.push(req);
        }
        Ok(Some(planned))
    }

    /// The bridge networks a container joins, the mode's first.
    pub(super) async fn attachments(&self, record: &Container) -> Result<Vec<EndpointRequest>, ServiceError> {
        if let Some(list) = &record.networks {
            return Ok(list.clone());
        }
        Ok(match self.networks.bridge_network(&record.host_config.network_mode).await? {
            Some(id) => vec![EndpointRequest { network_id: id, aliases: self.aliases(record).to_vec(), ..Default::default() }],
            None => vec![],
        })
    }

    /// `POST /networks/{id}/connect`: recorded for the next starts, and
    /// joined at once when the container runs.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        settings: Option<&serde_json::Value>,
    ) -> Result<(), ServiceError> {
        let (network_id, network_name, predefined) = self.networks.resolve(network).await?;
        let entry = self.lookup(container)?;
        let mut record = entry.record.lock().await;
        check_shared_modes(&record.host_config.network_mode, &network_name, predefined)?;
        let mut attached = self.attachments(&record).await?;
        if attached.iter().any(|a| a.network_id == network_id) {
            return Err(ServiceError::Forbidden(format!(
                "endpoint with name {} already exists in network {network_name}",
                record.bare_name()
            )));
        }
        let req = EndpointRequest::from_api(&network_id, settings)?;
        check_endpoint_request(&req, &network_name, predefined)?;
        if record.state.status.is_live() {
            self.networks.attach_container(&req, &record.id, record.bare_name(), &[], false).await?;
            let names = dns_names(&record, &req.aliases);
            let dns_servers = host_config_list(&record, "Dns");
            if let Err(e) = self.networks.serve_dns(&record.id, &network_id, names, &dns_servers).await {
                let _ = self.networks.detach_endpoint(&network_id, &record.id).await;
                return Err(e);
            }
            self.embedded_dns_on_user_networks(&record, std::slice::from_ref(&req)).await;
        }
        attached.push(req);
        record.networks = Some(attached);
        self.save(&record)
    }

    /// `POST /networks/{id}/disconnect`. With `force`, a container that is
    /// gone still has its endpoint removed.
    pub async fn disconnect_network(&self, network: &str, container: &str, force: bool) -> Result<(), ServiceError> {
        let (network_id, network_name, predefined) = self.networks.resolve(network).await?;
        let entry = match self.lookup(container) {
            Ok(entry) => entry,
            Err(e) if force => {
                tracing::debug!(error = %e, "forced disconnect of a container berthd does not know");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut record = entry.record.lock().await;
        if predefined && network_name == "host" && record.host_config.network_mode == "host" {
            return Err(ServiceError::InvalidParameter(
                "container cannot be disconnected from host network or connected to host network".into(),
            ));
        }
        let mut attached = self.attachments(&record).await?;
        let listed = attached.iter().any(|a| a.network_id == network_id);
        // An endpoint the record does not list: a connect cut short by a
        // crash after the network saved it. It is removed like any other.
        let stray = !listed && self.networks.has_endpoint(&network_id, &record.id).await;
        if !listed && !stray {
            return Err(ServiceError::Forbidden(format!(
                "container {} is not connected to network {network_name}",
                record.id
            )));
        }
        if record.state.status.is_live() || stray {
            self.networks.detach_endpoint(&network_id, &record.id).await?;
        }
        if !listed {
            return Ok(());
        }
        attached.retain(|a| a.network_id != network_id);
        record.networks = Some(attached);
        self.save(&record)
    }

    /// Remove endpoints the record does not list: a connect cut short by
    /// a crash after the network saved its endpoint would otherwise hold
    /// the network (it cannot be removed) and a veth nobody shows.
    pub(super) async fn drop_stray_endpoints(&self, record: &Container) {
        let Ok(listed) = self.attachments(record).await else { return };
        for network_id in self.networks.endpoint_networks(&record.id).await {
            if listed.iter().any(|a| a.network_id == network_id) {
                continue;
            }
            tracing::info!(container.id = %record.id, network.id = %network_id, "removing an endpoint left by an interrupted connect");
            if let Err(e) = self.networks.detach_endpoint(&network_id, &record.id).await {
                tracing::warn!(container.id = %record.id, error = %e, "removing a stray endpoint");
            }
        }
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
            Some(path) => (NetworkNamespace::HostAt(path.to_path_buf()), true),
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
        let dns_names = dns_names(record, &[]);
        let attached = self.attachments(record).await.unwrap_or_default();
        let networks = self.networks.container_networks(&record.host_config.network_mode, &record.id, &attached, dns_names).await;
        let mut settings = NetworkSettings { networks, ..Default::default() };
        let first = attached.first().map(|a| a.network_id.as_str());
        let Some((default_bridge, endpoint)) = self.networks.endpoint_of(&record.id, first).await else {
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
            settings.global_ipv6_address = endpoint.ip6;
            settings.global_ipv6_prefix_len = i64::from(endpoint.prefix6);
            settings.ipv6_gateway = endpoint.gateway6;
        }
        settings
    }

    /// `NetworkSettings.Networks` for `docker ps` (the same endpoints as
    /// inspect: compose compares their `NetworkID`s to decide a recreate).
    pub(super) async fn summary_networks(&self, record: &Container) -> std::collections::BTreeMap<String, serde_json::Value> {
        let attached = self.attachments(record).await.unwrap_or_default();
        self.networks.container_networks(&record.host_config.network_mode, &record.id, &attached, dns_names(record, &[])).await
    }

    /// `Ports` for `docker ps`: published and exposed ports while running.
    pub(super) async fn summary_ports(&self, record: &Container) -> Vec<serde_json::Value> {
        if !matches!(record.state.status, Status::Running | Status::Paused | Status::Restarting) {
            return vec![];
        }
        let publish = ports::requests(&record.host_config.other, record.config.exposed_ports.as_ref()).unwrap_or_default();
        let attached = self.attachments(record).await.unwrap_or_default();
        let first = attached.first().map(|a| a.network_id.as_str());
        let mappings = self.networks.endpoint_of(&record.id, first).await.map(|(_, e)| e.ports).unwrap_or_default();
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
