//! The firewall rules the networks' state calls for, loaded as a whole
//! whenever a network or a published port comes or goes.

use std::collections::HashMap;

use super::{Network, NetworkService};
use crate::backends::network::iptables::{self, BridgeRules, Family, Hairpin, PortRule};
use crate::services::ServiceError;

fn option_on(n: &Network, key: &str) -> bool {
    n.options.get(key).is_none_or(|v| super::create::go_bool(v) != Some(false))
}

impl NetworkService {
    /// `userland-proxy: false`: published ports by NAT alone.
    fn hairpin(&self) -> Hairpin {
        Hairpin(!self.config.userland_proxy)
    }

    /// Open the parent's links to its children's exposed ports (they
    /// matter with `icc: false`), on its default-bridge endpoint.
    pub async fn open_links(&self, container_id: &str, links: Vec<super::LinkRule>) -> Result<(), ServiceError> {
        let mut nets = self.networks.lock().await;
        let Some(n) = nets.values_mut().find(|n| n.predefined && n.name == "bridge") else { return Ok(()) };
        let Some(e) = n.endpoints.get_mut(container_id) else { return Ok(()) };
        e.links = links;
        let n = n.clone();
        self.save(&n)?;
        self.sync_firewall(&nets).await
    }

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
                links: n
                    .endpoints
                    .values()
                    .flat_map(|e| {
                        e.links.iter().map(|l| iptables::LinkRule {
                            parent_ip: e.ip.clone(),
                            child_ip: l.child_ip.clone(),
                            proto: l.proto.clone(),
                            port: l.port,
                        })
                    })
                    .collect(),
            })
            .collect();
        let ports = port_rules(&bridged, Family::V4);
        iptables::apply(Family::V4, self.hairpin(), &bridges, &ports)
            .await
            .map_err(|e| ServiceError::Internal(format!("programming the firewall: {e}")))?;
        if !self.config.ip6tables {
            return Ok(());
        }
        // The same rules for the networks with IPv6, in ip6tables.
        let bridges6: Vec<BridgeRules> = bridged
            .iter()
            .zip(&bridges)
            .filter_map(|(n, b)| Some(BridgeRules { subnet: n.v6()?.0.to_string(), links: Vec::new(), ..b.clone() }))
            .collect();
        let ports6 = port_rules(&bridged, Family::V6);
        match iptables::apply(Family::V6, self.hairpin(), &bridges6, &ports6).await {
            Ok(()) => Ok(()),
            // A host without ip6tables (or IPv6) is fine until a network
            // has IPv6.
            Err(e) if bridges6.is_empty() => {
                tracing::debug!(error = %e, "no ip6tables rules");
                Ok(())
            }
            Err(e) => Err(ServiceError::Internal(format!("programming the IPv6 firewall: {e}"))),
        }
    }
}

/// DNAT for the published ports of `family`: an IPv6 host address
/// forwards to the container's IPv6 address.
fn port_rules(bridged: &[&Network], family: Family) -> Vec<PortRule> {
    bridged
        .iter()
        .flat_map(|n| {
            n.endpoints.values().flat_map(move |e| {
                e.ports.iter().filter_map(move |p| {
                    let v6 = p.host_ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_ipv6());
                    let container_ip = match family {
                        Family::V4 if !v6 => e.ip.clone(),
                        Family::V6 if v6 && !e.ip6.is_empty() => e.ip6.clone(),
                        _ => return None,
                    };
                    let unspecified = p.host_ip.is_empty() || p.host_ip == "0.0.0.0" || p.host_ip == "::";
                    Some(PortRule {
                        proto: p.proto.clone(),
                        host_ip: (!unspecified).then(|| p.host_ip.clone()),
                        host_port: p.host_port,
                        container_ip,
                        container_port: p.container_port,
                        bridge: n.bridge.clone().unwrap_or_default(),
                    })
                })
            })
        })
        .collect()
}
