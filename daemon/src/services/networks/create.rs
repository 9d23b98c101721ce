//! `docker network create`: a user-defined bridge network with its subnet,
//! gateway and Linux bridge.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use api_types::network::{IpamConfig, NetworkCreateRequest, NetworkCreateResponse};

use super::{ensure_bridge, new_id, now, Network, NetworkService, BRIDGE_NAME_OPTION};
use crate::backends::network::{bridge, ipam, ipam6};
use crate::services::ServiceError;

impl NetworkService {
    pub async fn create(&self, req: NetworkCreateRequest) -> Result<NetworkCreateResponse, ServiceError> {
        if req.name.is_empty() {
            return Err(ServiceError::InvalidParameter("network name cannot be empty".into()));
        }
        let driver = if req.driver.is_empty() { "bridge".to_string() } else { req.driver.clone() };
        match driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(ServiceError::Forbidden(format!("only one instance of \"{driver}\" network is allowed")))
            }
            other => {
                return Err(ServiceError::NotFound(format!(
                    "could not find plugin {other} in v1 plugin registry: plugin not found"
                )))
            }
        }
        let ipam_req = req.ipam.clone().unwrap_or_default();
        let ipam_driver = if ipam_req.driver.is_empty() { "default".to_string() } else { ipam_req.driver.clone() };
        if ipam_driver != "default" {
            return Err(ServiceError::NotFound(format!(
                "could not find plugin {ipam_driver} in v1 plugin registry: plugin not found"
            )));
        }
        let requested = ipam_req.config.clone().unwrap_or_default();
        let v4: Vec<_> = requested.iter().filter(|c| !c.subnet.contains(':')).collect();
        if v4.len() > 1 {
            return Err(ServiceError::NotImplemented(
                "more than one IPv4 subnet per network is not implemented by berthd yet".into(),
            ));
        }
        let v6: Vec<_> = requested.iter().filter(|c| c.subnet.contains(':')).collect();
        if v6.len() > 1 {
            return Err(ServiceError::NotImplemented(
                "more than one IPv6 subnet per network is not implemented by berthd yet".into(),
            ));
        }
        let enable_ipv6 = req.enable_ipv6.unwrap_or(false);
        let id = new_id();
        let mut nets = self.networks.lock().await;
        if nets.values().any(|n| n.name == req.name) {
            return Err(ServiceError::Conflict(format!("network with name {} already exists", req.name)));
        }
        let used: Vec<ipam::Subnet> =
            nets.values().filter_map(|n| n.subnet.as_deref().and_then(ipam::Subnet::parse)).collect();
        let (subnet, gateway) = match v4.first() {
            Some(c) if !c.subnet.is_empty() => {
                let subnet = ipam::Subnet::parse(&c.subnet).ok_or_else(|| {
                    ServiceError::InvalidParameter(format!("invalid subnet {} : invalid CIDR address: {}", c.subnet, c.subnet))
                })?;
                if used.iter().any(|u| u.overlaps(&subnet)) {
                    return Err(ServiceError::Forbidden(
                        "Pool overlaps with other one on this address space".into(),
                    ));
                }
                let gateway = if c.gateway.is_empty() {
                    subnet.first_host()
                } else {
                    let gw: Ipv4Addr = c.gateway.parse().map_err(|_| {
                        ServiceError::InvalidParameter(format!("invalid gateway address {}", c.gateway))
                    })?;
                    if !subnet.contains(gw) {
                        return Err(ServiceError::InvalidParameter(format!(
                            "no matching subnet for gateway {}",
                            c.gateway
                        )));
                    }
                    gw
                };
                (subnet, gateway)
            }
            Some(c) if !c.gateway.is_empty() => {
                return Err(ServiceError::InvalidParameter(format!("no matching subnet for gateway {}", c.gateway)))
            }
            _ => {
                let mut taken = used.clone();
                taken.extend(host_subnets().await);
                let subnet = ipam::allocate_subnet(&self.pools(), &taken).ok_or_else(|| {
                    ServiceError::Forbidden(
                        "all predefined address pools have been fully subnetted".into(),
                    )
                })?;
                (subnet, subnet.first_host())
            }
        };
        let ip_range = match v4.first().map(|c| c.ip_range.as_str()).filter(|r| !r.is_empty()) {
            Some(r) => {
                let range = ipam::Subnet::parse(r).ok_or_else(|| {
                    ServiceError::InvalidParameter(format!("invalid ip-range {r}: invalid CIDR address: {r}"))
                })?;
                if !subnet.contains(range.network) || range.prefix < subnet.prefix {
                    return Err(ServiceError::Forbidden(format!("IP range {r} is not within the subnet {subnet}")));
                }
                Some(range.to_string())
            }
            None => None,
        };
        let (subnet6, gateway6, ip_range6) = self.plan_ipv6(&nets, v6.first().copied(), enable_ipv6)?;
        let aux_addresses = aux_addresses(&requested, &subnet, subnet6.as_ref())?;
        check_bridge_options(&req.options)?;
        let bridge_name = match req.options.get(BRIDGE_NAME_OPTION) {
            Some(b) if !b.is_empty() => b.clone(),
            _ => format!("br-{}", &id[..12]),
        };
        if bridge_name.len() > 15 {
            return Err(ServiceError::InvalidParameter(format!("invalid bridge name {bridge_name}: too long")));
        }
        if nets.values().any(|n| n.bridge.as_deref() == Some(bridge_name.as_str())) {
            return Err(ServiceError::Conflict(format!("bridge name {bridge_name} is already in use by another network")));
        }
        let mut config = ipam_req.clone();
        config.driver = ipam_driver.clone();
        let network = Network {
            id: id.clone(),
            name: req.name.clone(),
            created: now(),
            driver,
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6,
            ipam_driver,
            ipam_options: ipam_req.options.clone(),
            subnet: Some(subnet.to_string()),
            gateway: Some(gateway.to_string()),
            ip_range,
            subnet6: subnet6.map(|s| s.to_string()),
            gateway6: gateway6.map(|g| g.to_string()),
            ip_range6: ip_range6.map(|r| r.to_string()),
            aux_addresses,
            options: req.options.clone(),
            labels: req.labels.clone(),
            bridge: Some(bridge_name.clone()),
            predefined: false,
            endpoints: Default::default(),
        };
        // On disk before the bridge exists: a crash leaves a record whose
        // bridge the next start makes.
        self.save(&network)?;
        if let Err(e) = ensure_bridge(&network, &self.config).await {
            let _ = bridge::delete_link(&bridge_name).await;
            let _ = self.store.remove(&id);
            return Err(e);
        }
        tracing::info!(network.id = %id, network.name = %network.name, subnet = %subnet, "network created");
        nets.insert(id.clone(), network);
        if let Err(e) = self.sync_firewall(&nets).await {
            // Nothing half-made stays: the network goes again.
            let n = nets.remove(&id);
            let _ = bridge::delete_link(&bridge_name).await;
            let _ = self.store.remove(&id);
            let _ = self.sync_firewall(&nets).await;
            drop(n);
            return Err(e);
        }
        if let Some(n) = nets.get(&id) {
            self.emit("create", n, None);
        }
        Ok(NetworkCreateResponse { id, warning: String::new() })
    }
}

impl NetworkService {
    /// The IPv6 subnet, gateway and range of a new network: the requested
    /// ones, else (with `EnableIPv6`) the first free subnet of the IPv6
    /// `default-address-pools` or dockerd 28's ULA pool. A subnet given without `EnableIPv6` is only
    /// recorded, as dockerd 20.10 does.
    fn plan_ipv6(
        &self,
        nets: &HashMap<String, Network>,
        requested: Option<&IpamConfig>,
        enable_ipv6: bool,
    ) -> Result<(Option<ipam6::Subnet6>, Option<Ipv6Addr>, Option<ipam6::Subnet6>), ServiceError> {
        let used: Vec<ipam6::Subnet6> = nets.values().filter_map(|n| n.v6().map(|(s, _, _)| s)).collect();
        let subnet = match requested {
            Some(c) => {
                let subnet = ipam6::Subnet6::parse(&c.subnet).ok_or_else(|| {
                    ServiceError::InvalidParameter(format!("invalid subnet {} : invalid CIDR address: {}", c.subnet, c.subnet))
                })?;
                if enable_ipv6 && used.iter().any(|u| u.overlaps(&subnet)) {
                    return Err(ServiceError::Forbidden("Pool overlaps with other one on this address space".into()));
                }
                subnet
            }
            None if enable_ipv6 => ipam6::allocate_subnet(&self.pools6, &used).ok_or_else(|| {
                ServiceError::Forbidden(
                    "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"
                        .into(),
                )
            })?,
            None => return Ok((None, None, None)),
        };
        let gateway = match requested.map(|c| c.gateway.as_str()).filter(|g| !g.is_empty()) {
            Some(text) => {
                let gw: Ipv6Addr = text
                    .parse()
                    .map_err(|_| ServiceError::InvalidParameter(format!("invalid gateway address {text}")))?;
                if !subnet.contains(gw) {
                    return Err(ServiceError::InvalidParameter(format!("no matching subnet for gateway {text}")));
                }
                gw
            }
            None => subnet.first_host(),
        };
        let range = match requested.map(|c| c.ip_range.as_str()).filter(|r| !r.is_empty()) {
            Some(r) => {
                let range = ipam6::Subnet6::parse(r).ok_or_else(|| {
                    ServiceError::InvalidParameter(format!("invalid ip-range {r}: invalid CIDR address: {r}"))
                })?;
                if !subnet.contains(range.network) || range.prefix < subnet.prefix {
                    return Err(ServiceError::Forbidden(format!("IP range {r} is not within the subnet {subnet}")));
                }
                Some(range)
            }
            None => None,
        };
        Ok((Some(subnet), Some(gateway), range))
    }
}

/// The bridge driver's options as moby's `fromLabels` reads them (Go's
/// `strconv` rules and words), then its MTU check; the rest are kept as given.
fn check_bridge_options(options: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    let parse_err = |label: &str, value: &str, why: String| {
        ServiceError::InvalidParameter(format!("failed to parse {label} value: {value} ({why})"))
    };
    for (label, value) in options {
        match label.as_str() {
            "com.docker.network.driver.mtu" => {
                let mtu = value.parse::<i64>().map_err(|e| {
                    let why = match e.kind() {
                        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => "value out of range",
                        _ => "invalid syntax",
                    };
                    parse_err(label, value, format!("strconv.Atoi: parsing {value:?}: {why}"))
                })?;
                if mtu < 0 {
                    return Err(ServiceError::InvalidParameter(format!("invalid MTU number: {mtu}")));
                }
            }
            "com.docker.network.enable_ipv6"
            | "com.docker.network.bridge.enable_ip_masquerade"
            | "com.docker.network.bridge.enable_icc"
            | "com.docker.network.bridge.default_bridge" => {
                if go_bool(value).is_none() {
                    return Err(parse_err(label, value, format!("strconv.ParseBool: parsing {value:?}: invalid syntax")));
                }
            }
            "com.docker.network.bridge.host_binding_ipv4" if value.parse::<IpAddr>().is_err() => {
                return Err(parse_err(label, value, "nil ip".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
pub(super) fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// IPAM `AuxiliaryAddresses` of every config entry, each inside its
/// network's subnet of the same family.
fn aux_addresses(
    requested: &[IpamConfig],
    subnet: &ipam::Subnet,
    subnet6: Option<&ipam6::Subnet6>,
) -> Result<BTreeMap<String, String>, ServiceError> {
    let mut out = BTreeMap::new();
    for (name, text) in requested.iter().filter_map(|c| c.auxiliary_addresses.as_ref()).flatten() {
        let inside = match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => subnet.contains(ip),
            Ok(IpAddr::V6(ip)) => subnet6.is_some_and(|s| s.contains(ip)),
            Err(_) => return Err(ServiceError::InvalidParameter(format!("invalid auxiliary address {name}={text}"))),
        };
        if !inside {
            return Err(ServiceError::Forbidden(format!("no matching subnet for aux-address {text}")));
        }
        out.insert(name.clone(), text.clone());
    }
    Ok(out)
}

/// IPv4 subnets already on the host's interfaces, which new networks avoid.
async fn host_subnets() -> Vec<ipam::Subnet> {
    let Ok(out) = tokio::process::Command::new("ip").args(["-o", "-4", "addr", "show"]).output().await else {
        return vec![];
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            ipam::Subnet::parse(words.next()?)
        })
        .filter(|s| s.prefix > 0 && !s.network.is_loopback())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_options_follow_go_strconv() {
        assert_eq!(go_bool("F"), Some(false));
        assert_eq!(go_bool("1"), Some(true));
        assert_eq!(go_bool("yes"), None);
        let opts = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(check_bridge_options(&opts("com.docker.network.driver.mtu", "+1400")).is_ok());
        assert!(check_bridge_options(&opts("com.docker.network.driver.mtu", " 1")).is_err());
        assert!(check_bridge_options(&opts("com.docker.network.bridge.host_binding_ipv4", "::1")).is_ok());
        assert!(check_bridge_options(&opts("com.example.anything", "x")).is_ok());
    }
}
