//! `docker network ls`, with dockerd's filters.

use api_types::filters::Filters;
use api_types::network as api;

use super::{Network, NetworkService};
use crate::services::ServiceError;

pub struct ListOptions {
    pub filters: Filters,
}

const FILTERS: &[&str] = &["name", "id", "driver", "label", "type", "scope", "dangling"];

impl NetworkService {
    pub async fn list(&self, opts: ListOptions) -> Result<Vec<api::Network>, ServiceError> {
        let f = &opts.filters;
        f.only(FILTERS).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        for v in f.get("type") {
            if v != "custom" && v != "builtin" {
                return Err(ServiceError::InvalidParameter(format!("invalid filter: 'type'='{v}'")));
            }
        }
        for v in f.get("dangling") {
            if !matches!(v.as_str(), "true" | "false" | "1" | "0") {
                return Err(ServiceError::InvalidParameter(format!(
                    "invalid value for 'dangling' filter: {v}: should be one of true, false"
                )));
            }
        }
        let nets = self.networks.lock().await;
        let mut out: Vec<api::Network> = nets
            .values()
            .filter(|n| matches(f, n))
            .map(|n| {
                let mut shown = to_api(n);
                // dockerd lists networks without their containers.
                shown.containers.clear();
                shown
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

fn matches(f: &Filters, n: &Network) -> bool {
    f.any("name", |v| n.name.contains(v))
        && f.any("id", |v| n.id.starts_with(v))
        && f.any("driver", |v| n.driver == v)
        && f.labels_match(&n.labels)
        && f.any("type", |v| (v == "builtin") == n.predefined)
        && f.any("scope", |v| v == "local")
        && f.any("dangling", |v| {
            let dangling = !n.predefined && n.endpoints.is_empty();
            matches!(v, "true" | "1") == dangling
        })
}

/// The network in dockerd's inspect shape.
pub(super) fn to_api(n: &Network) -> api::Network {
    let aux = |v6: bool| -> Option<std::collections::BTreeMap<String, String>> {
        let picked: std::collections::BTreeMap<String, String> = n
            .aux_addresses
            .iter()
            .filter(|(_, ip)| ip.contains(':') == v6)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!picked.is_empty()).then_some(picked)
    };
    let mut config = Vec::new();
    if let Some(subnet) = &n.subnet {
        config.push(api::IpamConfig {
            subnet: subnet.clone(),
            gateway: n.gateway.clone().unwrap_or_default(),
            ip_range: n.ip_range.clone().unwrap_or_default(),
            auxiliary_addresses: aux(false),
        });
    }
    if let Some(subnet) = &n.subnet6 {
        config.push(api::IpamConfig {
            subnet: subnet.clone(),
            gateway: n.gateway6.clone().unwrap_or_default(),
            ip_range: n.ip_range6.clone().unwrap_or_default(),
            auxiliary_addresses: aux(true),
        });
    }
    let config = Some(config);
    api::Network {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local".into(),
        driver: n.driver.clone(),
        enable_ipv6: n.enable_ipv6,
        ipam: api::Ipam { driver: n.ipam_driver.clone(), options: n.ipam_options.clone(), config },
        internal: n.internal,
        attachable: n.attachable,
        ingress: false,
        config_from: api::ConfigFrom { network: String::new() },
        config_only: false,
        containers: n
            .endpoints
            .iter()
            .map(|(id, e)| {
                (
                    id.clone(),
                    api::NetworkContainer {
                        name: e.container_name.clone(),
                        endpoint_id: e.endpoint_id.clone(),
                        mac_address: e.mac.clone(),
                        ipv4_address: format!("{}/{}", e.ip, e.prefix),
                        ipv6_address: if e.ip6.is_empty() { String::new() } else { format!("{}/{}", e.ip6, e.prefix6) },
                    },
                )
            })
            .collect(),
        options: n.options.clone(),
        labels: n.labels.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let mut n = super::super::predefined("bridge", "bridge");
        let f = |s: &str| Filters::parse(s).unwrap();
        assert!(matches(&f(r#"{"name":["bri"]}"#), &n));
        assert!(matches(&f(r#"{"type":["builtin"]}"#), &n));
        assert!(!matches(&f(r#"{"type":["custom"]}"#), &n));
        assert!(!matches(&f(r#"{"dangling":["true"]}"#), &n));
        n.predefined = false;
        assert!(matches(&f(r#"{"dangling":["true"]}"#), &n));
        assert!(!matches(&f(r#"{"driver":["null"]}"#), &n));
        n.labels.insert("a".into(), "b".into());
        assert!(matches(&f(r#"{"label":["a=b"]}"#), &n));
    }
}
