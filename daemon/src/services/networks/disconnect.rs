//! Leaving networks when a container's task ends or the container goes:
//! veth, address and namespace, every step tried. And
//! `docker network disconnect`, not served yet for this slice.

use super::{lookup, NetworkService};
use crate::backends::network::bridge;
use crate::services::ServiceError;

impl NetworkService {
    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(&self, network: &str, _container: &str, _force: bool) -> Result<(), ServiceError> {
        lookup(&*self.networks.lock().await, network)?;
        Err(ServiceError::NotImplemented(
            "disconnecting a container from a network is not implemented by berthd yet".into(),
        ))
    }

    /// Remove every endpoint of the container and its namespace. Safe to
    /// call for containers that have none; failures are reported together.
    pub async fn detach_container(&self, container_id: &str) -> Result<(), ServiceError> {
        let mut failures = Vec::new();
        let netns = self.netns_path(container_id);
        self.stop_proxies(container_id);
        self.stop_dns(container_id);
        let mut nets = self.networks.lock().await;
        let mut changed = false;
        let attached: Vec<String> =
            nets.values().filter(|n| n.endpoints.contains_key(container_id)).map(|n| n.id.clone()).collect();
        for id in attached {
            let Some(n) = nets.get_mut(&id) else { continue };
            if let Some(e) = n.endpoints.get(container_id) {
                if let Err(err) = bridge::delete_link(&e.host_veth).await {
                    failures.push(err.to_string());
                    continue;
                }
            }
            n.endpoints.remove(container_id);
            if let Err(e) = self.store.save(&n.id, &*n) {
                failures.push(format!("saving network {}: {e}", n.name));
            }
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

    /// The container's endpoint, and whether it is on the default bridge
    /// (whose address dockerd also shows at the top of `NetworkSettings`).
    pub async fn endpoint_of(&self, container_id: &str) -> Option<(bool, super::Endpoint)> {
        let nets = self.networks.lock().await;
        nets.values()
            .find_map(|n| n.endpoints.get(container_id).map(|e| (n.predefined && n.name == "bridge", e.clone())))
    }

    /// `NetworkSettings.Networks` for a container: one entry for the
    /// network its mode names, with the endpoint while it runs.
    pub async fn container_networks(
        &self,
        mode: &str,
        container_id: &str,
        aliases: Option<Vec<String>>,
        dns_names: Vec<String>,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        let nets = self.networks.lock().await;
        let key = super::predefined_mode(mode).unwrap_or(mode);
        let found = match super::predefined_mode(mode) {
            Some(name) => nets.values().find(|n| n.predefined && n.name == name),
            None => lookup(&nets, mode).ok(),
        };
        let Some(n) = found else { return Default::default() };
        let e = n.endpoints.get(container_id);
        let user = !n.predefined;
        let entry = serde_json::json!({
            "IPAMConfig": null,
            "Links": null,
            "Aliases": if user { serde_json::json!(aliases) } else { serde_json::Value::Null },
            "MacAddress": e.map(|e| e.mac.clone()).unwrap_or_default(),
            "DriverOpts": null,
            "NetworkID": n.id,
            "EndpointID": e.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
            "Gateway": e.map(|e| e.gateway.clone()).unwrap_or_default(),
            "IPAddress": e.map(|e| e.ip.clone()).unwrap_or_default(),
            "IPPrefixLen": e.map(|e| e.prefix).unwrap_or(0),
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": if user && e.is_some() { serde_json::json!(dns_names) } else { serde_json::Value::Null },
        });
        [(if user { n.name.clone() } else { key.to_string() }, entry)].into()
    }
}
