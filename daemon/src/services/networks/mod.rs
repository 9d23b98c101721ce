//! Networks: the predefined `bridge`, `host` and `none`, user-defined
//! bridge networks with their addresses, and the endpoints that join
//! containers to them. One file per verb; this module holds the records.

mod connect;
mod create;
mod disconnect;
mod inspect;
mod list;
mod prune;
mod remove;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::backends::network::{bridge, ipam};
use crate::backends::store::networks::NetworkStore;
use crate::services::ServiceError;

pub use list::ListOptions;

/// One container's place on a network while its task runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_name: String,
    pub endpoint_id: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    pub host_veth: String,
}

/// A network as berthd remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub created: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub ipam_driver: String,
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// `None` for `host` and `none`.
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The Linux bridge berthd made for a user-defined network.
    pub bridge: Option<String>,
    pub predefined: bool,
    /// Container ID → endpoint.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

pub fn network_not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("network {name} not found"))
}

pub struct NetworkService {
    store: NetworkStore,
    exec_root: PathBuf,
    /// By ID. One lock: network changes are rare and short.
    networks: Mutex<HashMap<String, Network>>,
}

fn new_id() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn predefined(name: &str, driver: &str) -> Network {
    let bridge = name == "bridge";
    let options = if bridge {
        [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            (BRIDGE_NAME_OPTION, "docker0"),
            ("com.docker.network.driver.mtu", "1500"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    } else {
        BTreeMap::new()
    };
    Network {
        id: new_id(),
        name: name.into(),
        created: now(),
        driver: driver.into(),
        internal: false,
        attachable: false,
        enable_ipv6: false,
        ipam_driver: "default".into(),
        ipam_options: None,
        subnet: bridge.then(|| ipam::DEFAULT_BRIDGE_SUBNET.to_string()),
        gateway: bridge.then(|| "172.17.0.1".to_string()),
        options,
        labels: BTreeMap::new(),
        bridge: None,
        predefined: true,
        endpoints: BTreeMap::new(),
    }
}

/// The predefined network a container's `NetworkMode` names, if any.
pub fn predefined_mode(mode: &str) -> Option<&'static str> {
    match mode {
        "" | "default" | "bridge" => Some("bridge"),
        "host" => Some("host"),
        "none" => Some("none"),
        _ => None,
    }
}

impl NetworkService {
    /// Load stored networks, add the predefined ones on first start, and
    /// make sure every user-defined network's bridge exists.
    pub async fn load(data_root: PathBuf, exec_root: PathBuf) -> Result<Self, ServiceError> {
        let store = NetworkStore::new(&data_root);
        let records: Vec<Network> =
            store.load_all().map_err(|e| ServiceError::Internal(format!("loading networks: {e}")))?;
        let mut networks: HashMap<String, Network> = records.into_iter().map(|n| (n.id.clone(), n)).collect();
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if !networks.values().any(|n| n.predefined && n.name == name) {
                let n = predefined(name, driver);
                store.save(&n.id, &n).map_err(|e| ServiceError::Internal(format!("saving network {name}: {e}")))?;
                networks.insert(n.id.clone(), n);
            }
        }
        for n in networks.values() {
            if let Err(e) = ensure_bridge(n).await {
                tracing::warn!(network.name = %n.name, error = %e, "cannot set up the network's bridge");
            }
        }
        Ok(Self { store, exec_root, networks: Mutex::new(networks) })
    }

    fn save(&self, n: &Network) -> Result<(), ServiceError> {
        self.store.save(&n.id, n).map_err(|e| ServiceError::Internal(format!("saving network {}: {e}", n.name)))
    }

    /// Where a container's network namespace is bind-mounted.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.exec_root.join("netns").join(container_id)
    }

    /// The user-defined network a container's `NetworkMode` names: `None`
    /// for the predefined modes, 404 for an unknown network.
    pub async fn user_network(&self, mode: &str) -> Result<Option<String>, ServiceError> {
        if predefined_mode(mode).is_some() || mode.starts_with("container:") {
            return Ok(None);
        }
        let nets = self.networks.lock().await;
        let n = lookup(&nets, mode)?;
        Ok((!n.predefined).then(|| n.id.clone()))
    }
}

/// dockerd's order: full ID, then name, then unique ID prefix.
fn lookup<'a>(nets: &'a HashMap<String, Network>, name_or_id: &str) -> Result<&'a Network, ServiceError> {
    if let Some(n) = nets.get(name_or_id) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.name == name_or_id) {
        return Ok(n);
    }
    if !name_or_id.is_empty() {
        let mut matches = nets.values().filter(|n| n.id.starts_with(name_or_id));
        if let Some(first) = matches.next() {
            if matches.next().is_some() {
                return Err(ServiceError::InvalidParameter(format!(
                    "network {name_or_id} is ambiguous ({} matches found on ID prefix)",
                    nets.values().filter(|n| n.id.starts_with(name_or_id)).count()
                )));
            }
            return Ok(first);
        }
    }
    Err(network_not_found(name_or_id))
}

async fn ensure_bridge(n: &Network) -> Result<(), ServiceError> {
    let (Some(bridge_name), Some(subnet), Some(gateway)) = (&n.bridge, &n.subnet, &n.gateway) else {
        return Ok(());
    };
    let subnet = ipam::Subnet::parse(subnet).ok_or_else(|| ServiceError::Internal(format!("bad subnet {subnet}")))?;
    let gateway = gateway.parse().map_err(|_| ServiceError::Internal(format!("bad gateway {gateway}")))?;
    bridge::ensure_bridge(bridge_name, gateway, subnet.prefix)
        .await
        .map_err(|e| ServiceError::Internal(format!("creating bridge {bridge_name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> HashMap<String, Network> {
        let mut a = predefined("bridge", "bridge");
        a.id = "abc123".into();
        let mut b = predefined("host", "host");
        b.id = "abd456".into();
        [(a.id.clone(), a), (b.id.clone(), b)].into()
    }

    #[test]
    fn lookup_by_id_name_and_prefix() {
        let nets = nets();
        assert_eq!(lookup(&nets, "abc123").unwrap().name, "bridge");
        assert_eq!(lookup(&nets, "host").unwrap().name, "host");
        assert_eq!(lookup(&nets, "abd").unwrap().name, "host");
        assert!(matches!(lookup(&nets, "ab"), Err(ServiceError::InvalidParameter(_))));
        assert_eq!(lookup(&nets, "zzz").unwrap_err().to_string(), "network zzz not found");
    }

    #[test]
    fn modes() {
        assert_eq!(predefined_mode(""), Some("bridge"));
        assert_eq!(predefined_mode("none"), Some("none"));
        assert_eq!(predefined_mode("mynet"), None);
    }
}
