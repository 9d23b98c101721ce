//! The firewall rules the networks' state calls for, loaded as a whole
//! whenever a network or a published port comes or goes.

use std::collections::HashMap;

use super::{Network, NetworkService};
use crate::backends::network::iptables::{self, BridgeRules, PortRule};
use crate::services::ServiceError;

fn option_on(n: &Network, key: &str) -> bool {
    n.options.get(key).is_none_or(|v| v != "false")
}

impl NetworkService {
    /// Rewrite berthd's chains from `nets` (held locked by the caller, so
    /// two changes never interleave). A no-op with `--iptables=false`.
    pub(super) async fn sync_firewall(&self, nets: &HashMap<String, Network>) -> Result<(), ServiceError> {
        if !self.config.iptables {
            return Ok(());
        }
        let mut bridged: Vec<&Network> = nets.values().filter(|n| n.bridge.is_some() && n.subnet.is_some()).collect();
        // A stable order keeps the rendered rules comparable across runs.
        bridged.sort_by(|a, b| a.id.cmp(&b.id));
        let bridges: Vec<BridgeRules> = bridged
            .iter()
            .map(|n| BridgeRules {
                bridge: n.bridge.clone().unwrap_or_default(),
                subnet: n.subnet.clone().unwrap_or_default(),
                internal: n.internal,
                masquerade: option_on(n, "com.docker.network.bridge.enable_ip_masquerade"),
                icc: option_on(n, "com.docker.network.bridge.enable_icc"),
            })
            .collect();
        let ports: Vec<PortRule> = bridged
            .iter()
            .flat_map(|n| {
                n.endpoints.values().flat_map(move |e| {
                    e.ports.iter().map(move |p| PortRule {
                        proto: p.proto.clone(),
                        host_ip: (p.host_ip != "0.0.0.0" && !p.host_ip.is_empty()).then(|| p.host_ip.clone()),
                        host_port: p.host_port,
                        container_ip: e.ip.clone(),
                        container_port: p.container_port,
                        bridge: n.bridge.clone().unwrap_or_default(),
                    })
                })
            })
            .collect();
        iptables::apply(&bridges, &ports)
            .await
            .map_err(|e| ServiceError::Internal(format!("programming the firewall: {e}")))
    }
}
