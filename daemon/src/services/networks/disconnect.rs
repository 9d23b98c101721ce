//! Leaving networks: one endpoint (`docker network disconnect` of a running
//! container), or all of them when a container's task ends or the
//! container goes; veth, address, ports and namespace, every step tried,
//! each with its `disconnect` event. And what inspect shows of them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{lookup, EndpointRequest, Network, NetworkService};
use crate::backends::network::bridge;
use crate::services::ServiceError;

impl NetworkService {
    /// Whether the container has an endpoint on the network (a crash
    /// between the network's save and the container's can leave one the
    /// container's record does not list).
    pub async fn has_endpoint(&self, network_id: &str, container_id: &str) -> bool {
        self.networks.lock().await.get(network_id).is_some_and(|n| n.endpoints.contains_key(container_id))
    }

    /// The networks the container has an endpoint on.
    pub async fn endpoint_networks(&self, container_id: &str) -> Vec<String> {
        self.networks.lock().await.values().filter(|n| n.endpoints.contains_key(container_id)).map(|n| n.id.clone()).collect()
    }

    /// Remove one endpoint and its veth (the namespace stays).
    pub async fn detach_endpoint(&self, network_id: &str, container_id: &str) -> Result<(), ServiceError> {
        let mut nets = self.networks.lock().await;
        let Some(n) = nets.get_mut(network_id) else { return Ok(()) };
        let Some(e) = n.endpoints.get(container_id).cloned() else { return Ok(()) };
        bridge::delete_link(&e.host_veth)
            .await
            .map_err(|err| ServiceError::Internal(format!("removing the endpoint: {err}")))?;
        if !e.ports.is_empty() {
            self.stop_proxies(container_id);
        }
        n.endpoints.remove(container_id);
        let n = n.clone();
        self.save(&n)?;
        self.emit("disconnect", &n, Some(container_id));
        self.names.refresh(&nets);
        self.route_default(&nets, container_id).await?;
        self.sync_firewall(&nets).await
    }

    /// Remove every endpoint of the container and its namespace. Safe to
    /// call for containers that have none; failures are reported together.
    pub async fn detach_container(&self, container_id: &str) -> Result<(), ServiceError> {
        let mut failures = Vec::new();
        let netns = self.netns_path(container_id);
        self.stop_proxies(container_id);
        self.stop_dns(container_id);
        // The veths go before the records, outside the lock (other
        // containers' starts need it): until the records go, nobody else
        // is handed these addresses.
        let attached: Vec<(String, String)> = self
            .networks
            .lock()
            .await
            .values()
            .filter_map(|n| Some((n.id.clone(), n.endpoints.get(container_id)?.host_veth.clone())))
            .collect();
        let mut removed = Vec::new();
        for (id, veth) in attached {
            match bridge::delete_link(&veth).await {
                Ok(()) => removed.push(id),
                Err(err) => failures.push(err.to_string()),
            }
        }
        let mut nets = self.networks.lock().await;
        let mut changed = false;
        for id in removed {
            let Some(n) = nets.get_mut(&id) else { continue };
            if n.endpoints.remove(container_id).is_none() {
                continue;
            }
            if let Err(e) = self.store.save(&n.id, &*n) {
                failures.push(format!("saving network {}: {e}", n.name));
            }
            self.emit("disconnect", n, Some(container_id));
            tracing::info!(container.id = %container_id, network.name = %n.name, "endpoint removed");
            changed = true;
        }
        if changed {
            if let Err(e) = self.sync_firewall(&nets).await {
                failures.push(e.to_string());
            }
        }
        self.names.refresh(&nets);
        drop(nets);
        if let Err(e) = bridge::delete_netns(&netns) {
            failures.push(e.to_string());
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Internal(format!("leaving networks: {}", failures.join("; "))))
        }
    }

    /// The container's endpoint on its first network, and whether that is
    /// the default bridge (whose address dockerd also shows at the top of
    /// `NetworkSettings`).
    pub async fn endpoint_of(&self, container_id: &str, first_network: Option<&str>) -> Option<(bool, super::Endpoint)> {
        let nets = self.networks.lock().await;
        let n = match first_network {
            Some(id) => nets.get(id),
            None => nets.values().find(|n| n.endpoints.contains_key(container_id)),
        }?;
        n.endpoints.get(container_id).map(|e| (n.predefined && n.name == "bridge", e.clone()))
    }

    /// The container's endpoint on the default `bridge` (legacy links).
    pub async fn default_bridge_endpoint(&self, container_id: &str) -> Option<super::Endpoint> {
        let nets = self.networks.lock().await;
        nets.values().find(|n| n.predefined && n.name == "bridge")?.endpoints.get(container_id).cloned()
    }

    /// What `host-gateway` in `--add-host` stands for: daemon.json's
    /// `host-gateway-ip`, else the default bridge's address, as dockerd.
    pub async fn host_gateway(&self) -> Result<String, ServiceError> {
        if let Some(ip) = self.config.host_gateway_ip {
            return Ok(ip.to_string());
        }
        let nets = self.networks.lock().await;
        nets.values()
            .find(|n| n.predefined && n.name == "bridge")
            .and_then(|n| n.gateway.clone())
            .ok_or_else(|| ServiceError::InvalidParameter("unable to derive the IP value for host-gateway".into()))
    }

    /// `NetworkSettings.Networks` for a container: its bridge networks
    /// (`attached`), with their endpoints while it runs; or the one entry
    /// of `host`/`none`.
    pub async fn container_networks(
        &self,
        mode: &str,
        container_id: &str,
        attached: &[EndpointRequest],
        dns_names: Vec<String>,
    ) -> BTreeMap<String, Value> {
        let nets = self.networks.lock().await;
        if let Some(name @ ("host" | "none")) = super::predefined_mode(mode) {
            return match nets.values().find(|n| n.predefined && n.name == name) {
                Some(n) => [(name.to_string(), entry(n, None, None, &dns_names))].into(),
                None => BTreeMap::new(),
            };
        }
        attached
            .iter()
            .filter_map(|req| {
                let n = nets.get(&req.network_id).or_else(|| lookup(&nets, &req.network_id).ok())?;
                Some((n.name.clone(), entry(n, n.endpoints.get(container_id), Some(req), &dns_names)))
            })
            .collect()
    }
}

/// One `EndpointSettings` in dockerd's shape.
fn entry(n: &Network, e: Option<&super::Endpoint>, req: Option<&EndpointRequest>, dns_names: &[String]) -> Value {
    let user = !n.predefined;
    let aliases = req.map(|r| r.aliases.clone()).unwrap_or_default();
    let ipam = req.filter(|r| !r.ipv4_address.is_empty() || !r.ipv6_address.is_empty()).map(|r| {
        let mut ipam = serde_json::Map::new();
        if !r.ipv4_address.is_empty() {
            ipam.insert("IPv4Address".into(), json!(r.ipv4_address));
        }
        if !r.ipv6_address.is_empty() {
            ipam.insert("IPv6Address".into(), json!(r.ipv6_address));
        }
        Value::Object(ipam)
    });
    json!({
        "IPAMConfig": ipam,
        "Links": null,
        "Aliases": if user && !aliases.is_empty() { json!(aliases) } else { Value::Null },
        "MacAddress": e.map(|e| e.mac.clone()).unwrap_or_default(),
        "DriverOpts": null,
        "NetworkID": n.id,
        "EndpointID": e.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": e.map(|e| e.gateway.clone()).unwrap_or_default(),
        "IPAddress": e.map(|e| e.ip.clone()).unwrap_or_default(),
        "IPPrefixLen": e.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": e.map(|e| e.gateway6.clone()).unwrap_or_default(),
        "GlobalIPv6Address": e.map(|e| e.ip6.clone()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": e.map(|e| e.prefix6).unwrap_or(0),
        "DNSNames": match e {
            Some(e) if user && !e.dns_names.is_empty() => json!(e.dns_names),
            Some(_) if user => {
                let mut names = dns_names.to_vec();
                names.extend(aliases);
                json!(names)
            }
            _ => Value::Null,
        },
    })
}
