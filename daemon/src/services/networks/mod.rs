//! Networks: the predefined `bridge`, `host` and `none`, user-defined
//! bridge networks with their addresses, and the endpoints that join
//! containers to them. One file per verb; this module holds the records.

mod connect;
mod create;
mod disconnect;
mod firewall;
mod dns;
mod inspect;
mod list;
pub mod ports;
mod prune;
mod remove;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::backends::network::{bridge, ipam, ipam6};
use crate::backends::store;
use crate::backends::store::networks::NetworkStore;
use crate::config::NetworkConfig;
use crate::services::events::EventBus;
use crate::services::versioned::{Version, Versioned};
use crate::services::ServiceError;

pub use dns::DnsDefaults;
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
    /// Published ports, bound while the endpoint exists.
    #[serde(default)]
    pub ports: Vec<ports::PortMapping>,
    /// What the embedded DNS answers to on this network (dockerd's
    /// DNSNames); empty in records from before it was kept.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// `--network-alias` and connect's aliases (for the embedded DNS).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The interface inside the container (`eth0`, `eth1` …).
    #[serde(default)]
    pub ifname: String,
    /// `GwPriority` (API 1.48): the highest gives the default route.
    #[serde(default)]
    pub gw_priority: i64,
    /// Legacy links of this (parent) container on the default bridge:
    /// what `icc: false` still lets it reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkRule>,
    /// The IPv6 address, its prefix length and gateway on a network with
    /// IPv6; empty otherwise.
    #[serde(default)]
    pub ip6: String,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: String,
}

/// One exposed port of a linked child, open to its parent when
/// inter-container communication is off (dockerd's link rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRule {
    pub child_ip: String,
    pub proto: String,
    pub port: u16,
}

/// What a container asks of one network: an entry of create's
/// `NetworkingConfig.EndpointsConfig` or connect's `EndpointConfig`. Kept
/// on the container, joined at each start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`; empty for an address from the pool.
    #[serde(default)]
    pub ipv4_address: String,
    /// `--mac-address`; empty for dockerd's MAC from the address.
    #[serde(default)]
    pub mac_address: String,
    /// `--network name=…,gw-priority=N`.
    #[serde(default)]
    pub gw_priority: i64,
    /// `--ip6`; empty for an address from the pool.
    #[serde(default)]
    pub ipv6_address: String,
}

impl EndpointRequest {
    /// From the API's `EndpointSettings` shape.
    pub fn from_api(network_id: &str, settings: Option<&serde_json::Value>) -> Result<Self, ServiceError> {
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let settings = settings.filter(|v| v.is_object());
        let aliases = settings
            .and_then(|s| s.get("Aliases"))
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let ipv4_address = text(settings.and_then(|s| s.get("IPAMConfig")).and_then(|i| i.get("IPv4Address")));
        if !ipv4_address.is_empty() && ipv4_address.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(ServiceError::InvalidParameter(format!("invalid IPv4 address: {ipv4_address}")));
        }
        let ipv6_address = text(settings.and_then(|s| s.get("IPAMConfig")).and_then(|i| i.get("IPv6Address")));
        // Go's ParseIP reads `::ffff:a.b.c.d` as IPv4, which dockerd refuses here.
        if !ipv6_address.is_empty() && ipv6_address.parse::<std::net::Ipv6Addr>().map_or(true, |ip| ip.to_ipv4_mapped().is_some()) {
            return Err(ServiceError::InvalidParameter(format!("invalid IPv6 address: {ipv6_address}")));
        }
        let mac_address = text(settings.and_then(|s| s.get("MacAddress")));
        if !mac_address.is_empty() && !valid_mac(&mac_address) {
            return Err(ServiceError::InvalidParameter(format!("invalid MAC address: {mac_address}")));
        }
        let gw_priority = settings.and_then(|s| s.get("GwPriority")).and_then(|p| p.as_i64()).unwrap_or(0);
        Ok(Self { network_id: network_id.to_string(), aliases, ipv4_address, mac_address, gw_priority, ipv6_address })
    }
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
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
    /// Where containers' addresses come from inside the subnet (`IPRange`,
    /// `fixed-cidr`); the whole subnet when unset.
    #[serde(default)]
    pub ip_range: Option<String>,
    /// The IPv6 subnet, gateway and range (`EnableIPv6`; the default
    /// bridge's `fixed-cidr-v6`). A subnet given without `EnableIPv6` is
    /// kept for inspect only, as dockerd does.
    #[serde(default)]
    pub subnet6: Option<String>,
    #[serde(default)]
    pub gateway6: Option<String>,
    #[serde(default)]
    pub ip_range6: Option<String>,
    /// IPAM `AuxiliaryAddresses` (both families): reserved, never handed
    /// out.
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, String>,
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
    config: NetworkConfig,
    /// Where IPv6 subnets come from: the IPv6 `default-address-pools`,
    /// else dockerd 28's ULA pool derived from the engine ID.
    pools6: Vec<(ipam6::Subnet6, u8)>,
    /// berthd's own namespace, pinned for `host` mode.
    host_netns: Option<PathBuf>,
    /// By ID. One lock: network changes are rare and short.
    /// Every mutable access bumps `version` (the container list cache).
    networks: Versioned<HashMap<String, Network>>,
    version: Version,
    /// Container ID → the tasks serving its published ports.
    proxies: std::sync::Mutex<HashMap<String, Vec<tokio::task::JoinHandle<()>>>>,
    /// The ephemeral host ports handed out in turn (`-P`).
    ephemeral: ports::Ephemeral,
    /// Embedded DNS: the names, the per-container servers, the defaults.
    names: std::sync::Arc<dns::NameTable>,
    servers: dns::Servers,
    dns_defaults: DnsDefaults,
    events: EventBus,
}

/// Where berthd's own namespace is pinned, beside the containers' ones
/// (not a container ID: those are 64 hex digits).
const HOST_NETNS: &str = "host";

/// The default bridge's interface when `--bridge` is not given.
const DEFAULT_BRIDGE: &str = "docker0";

fn new_id() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn predefined(name: &str, driver: &str) -> Network {
    let bridge = name == "bridge";
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
        ip_range: None,
        subnet6: None,
        gateway6: None,
        ip_range6: None,
        aux_addresses: BTreeMap::new(),
        options: BTreeMap::new(),
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

/// The default `bridge` network as the configuration sets it up: its
/// interface, subnet (from `bip`), `fixed-cidr` and driver options. The
/// stored record keeps its ID (compose compares it) and its endpoints.
fn configure_default_bridge(
    n: &mut Network,
    config: &NetworkConfig,
    pools6: &[(ipam6::Subnet6, u8)],
    used6: &[ipam6::Subnet6],
) -> Result<(), ServiceError> {
    let name = config.bridge.clone().unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
    let (subnet, gateway) = match &config.bip {
        Some(bip) => {
            let subnet = ipam::Subnet::parse(bip)
                .ok_or_else(|| ServiceError::InvalidParameter(format!("invalid bip {bip}: invalid CIDR address: {bip}")))?;
            let gateway = bip.split('/').next().unwrap_or_default().to_string();
            (subnet, gateway)
        }
        None => {
            // As dockerd: the first subnet of the configured pools, else
            // 172.17.0.0/16.
            let subnet = ipam::pool_subnets(&pools(config))
                .next()
                .filter(|_| !config.address_pools.is_empty())
                .unwrap_or_else(|| ipam::Subnet::parse(ipam::DEFAULT_BRIDGE_SUBNET).expect("constant subnet"));
            (subnet, subnet.first_host().to_string())
        }
    };
    let ip_range = match &config.fixed_cidr {
        Some(cidr) => {
            let range = ipam::Subnet::parse(cidr)
                .ok_or_else(|| ServiceError::InvalidParameter(format!("invalid fixed-cidr {cidr}: invalid CIDR address: {cidr}")))?;
            if !subnet.contains(range.network) {
                return Err(ServiceError::InvalidParameter(format!(
                    "fixed-cidr {cidr} is not within the bridge's subnet {subnet}"
                )));
            }
            Some(range.to_string())
        }
        None => None,
    };
    // As dockerd 28: `default-gateway` must be on the bridge's subnet
    // (else the daemon does not start); it is kept as an auxiliary address.
    let invalid_gateway =
        || ServiceError::InvalidParameter("error creating default \"bridge\" network: default gateway ip must be part of the network".into());
    n.aux_addresses = BTreeMap::new();
    if let Some(gw) = config.default_gateway {
        if !subnet.contains(gw) {
            return Err(invalid_gateway());
        }
        n.aux_addresses.insert(DEFAULT_GATEWAY_V4.into(), gw.to_string());
    }
    n.subnet = Some(subnet.to_string());
    n.gateway = Some(gateway);
    n.ip_range = ip_range;
    n.enable_ipv6 = config.ipv6;
    let v6 = if config.ipv6 { Some(default_bridge_v6(n, config, pools6, used6)?) } else { None };
    if let (Some(gw), Some((subnet6, _, _))) = (config.default_gateway_v6, v6) {
        if !subnet6.contains(gw) {
            return Err(invalid_gateway());
        }
        n.aux_addresses.insert(DEFAULT_GATEWAY_V6.into(), gw.to_string());
    }
    n.subnet6 = v6.map(|(s, _, _)| s.to_string());
    n.gateway6 = v6.map(|(_, g, _)| g.to_string());
    n.ip_range6 = v6.and_then(|(_, _, r)| r).map(|r| r.to_string());
    n.bridge = Some(name.clone());
    n.options = [
        ("com.docker.network.bridge.default_bridge", "true".to_string()),
        ("com.docker.network.bridge.enable_icc", config.icc.to_string()),
        ("com.docker.network.bridge.enable_ip_masquerade", config.ip_masq.to_string()),
        ("com.docker.network.bridge.host_binding_ipv4", config.default_bind_ip.clone()),
        (BRIDGE_NAME_OPTION, name),
        ("com.docker.network.driver.mtu", config.mtu.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(())
}

/// The auxiliary-address keys dockerd gives `default-gateway(-v6)`.
const DEFAULT_GATEWAY_V4: &str = "DefaultGatewayIPv4";
const DEFAULT_GATEWAY_V6: &str = "DefaultGatewayIPv6";

/// The default bridge's IPv6 subnet, gateway and range, as dockerd 28:
/// `bip6` (its address is the gateway) with `fixed-cidr-v6` as the range;
/// else `fixed-cidr-v6` as the subnet; else a /64 of the IPv6 pools (the
/// one it had if still free, so addresses survive a restart).
fn default_bridge_v6(
    n: &Network,
    config: &NetworkConfig,
    pools6: &[(ipam6::Subnet6, u8)],
    used6: &[ipam6::Subnet6],
) -> Result<(ipam6::Subnet6, std::net::Ipv6Addr, Option<ipam6::Subnet6>), ServiceError> {
    let fixed = config.fixed_cidr_v6.as_deref().and_then(ipam6::Subnet6::parse);
    if let Some(bip6) = &config.bip6 {
        let subnet = ipam6::Subnet6::parse(bip6)
            .ok_or_else(|| ServiceError::InvalidParameter(format!("invalid bip6 {bip6}: invalid CIDR address: {bip6}")))?;
        let gateway = bip6.split('/').next().unwrap_or_default().parse().map_err(|_| {
            ServiceError::InvalidParameter(format!("invalid bip6 {bip6}: invalid CIDR address: {bip6}"))
        })?;
        if let Some(range) = fixed.filter(|r| !subnet.contains(r.network) || r.prefix < subnet.prefix) {
            return Err(ServiceError::InvalidParameter(format!(
                "fixed-cidr-v6 {range} is not within the bridge's subnet {subnet}"
            )));
        }
        return Ok((subnet, gateway, fixed));
    }
    if let Some(subnet) = fixed {
        return Ok((subnet, subnet.first_host(), None));
    }
    let kept = n
        .subnet6
        .as_deref()
        .and_then(ipam6::Subnet6::parse)
        .filter(|s| pools6.iter().any(|(base, size)| base.contains(s.network) && s.prefix == *size))
        .filter(|s| !used6.iter().any(|u| u.overlaps(s)));
    let subnet = match kept {
        Some(s) => s,
        None => ipam6::allocate_subnet(pools6, used6).ok_or_else(|| {
            ServiceError::Forbidden(
                "error creating default \"bridge\" network: could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network".into(),
            )
        })?,
    };
    Ok((subnet, subnet.first_host(), None))
}

impl NetworkService {
    /// Load stored networks, add the predefined ones on first start, make
    /// sure every bridge exists, and restore the firewall rules and the
    /// published ports of endpoints that outlived the last run.
    pub async fn load(
        data_root: PathBuf,
        exec_root: PathBuf,
        config: NetworkConfig,
        events: EventBus,
    ) -> Result<Self, ServiceError> {
        if config.iptables && !crate::backends::network::iptables::available() {
            // As dockerd: no firewall tool, no start. berthd speaks to
            // nftables only through iptables-nft.
            return Err(ServiceError::Internal(
                "failed to create NAT chain BERTHD: iptables not found (install iptables, whose nftables variant \
                 works on nftables-only hosts, or set \"iptables\": false)"
                    .into(),
            ));
        }
        let store = NetworkStore::new(&data_root);
        let records: Vec<Network> =
            store.load_all().map_err(|e| ServiceError::Internal(format!("loading networks: {e}")))?;
        let mut networks: HashMap<String, Network> = records.into_iter().map(|n| (n.id.clone(), n)).collect();
        let bridge_disabled = config.bridge.as_deref() == Some("none");
        let host_id = store::engine_id(&data_root)
            .map_err(|e| ServiceError::Internal(format!("reading the engine ID: {e}")))?;
        let pools6 = match pools6(&config) {
            p if p.is_empty() => vec![ipam6::ula_pool(&host_id)],
            p => p,
        };
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if name == "bridge" && bridge_disabled {
                // As dockerd with `--bridge none`: there is no `bridge`.
                networks.retain(|_, n| !(n.predefined && n.name == "bridge"));
                continue;
            }
            let mut n = match networks.values().find(|n| n.predefined && n.name == name) {
                Some(n) => n.clone(),
                None => predefined(name, driver),
            };
            if name == "bridge" {
                let used6: Vec<ipam6::Subnet6> =
                    networks.values().filter(|o| o.id != n.id).filter_map(|o| o.v6().map(|(s, _, _)| s)).collect();
                configure_default_bridge(&mut n, &config, &pools6, &used6)?;
            }
            store.save(&n.id, &n).map_err(|e| ServiceError::Internal(format!("saving network {name}: {e}")))?;
            networks.insert(n.id.clone(), n);
        }
        for n in networks.values() {
            if let Err(e) = ensure_bridge(n, &config).await {
                tracing::warn!(network.name = %n.name, error = %e, "cannot set up the network's bridge");
            }
        }
        if config.ip_forward {
            if let Err(e) = crate::backends::network::iptables::enable_ip_forward() {
                tracing::warn!(error = %e, "cannot enable IP forwarding");
            }
        }
        let host_netns = exec_root.join("netns").join(HOST_NETNS);
        let host_netns = match bridge::pin_own_netns(&host_netns) {
            Ok(()) => Some(host_netns),
            Err(e) => {
                tracing::warn!(error = %e, "host-mode containers will join containerd's network namespace");
                None
            }
        };
        let version = Version::default();
        let service = Self {
            store,
            exec_root,
            config,
            pools6,
            host_netns,
            networks: Versioned::new(networks, version.clone()),
            version,
            proxies: Default::default(),
            ephemeral: Default::default(),
            names: Default::default(),
            servers: Default::default(),
            dns_defaults: Default::default(),
            events,
        };
        service.restore_ports().await;
        let nets = service.networks.lock().await;
        if let Err(e) = service.sync_firewall(&nets).await {
            tracing::warn!(error = %e, "cannot install the firewall rules");
        }
        drop(nets);
        service.recover_dns().await;
        Ok(service)
    }

    fn save(&self, n: &Network) -> Result<(), ServiceError> {
        self.store.save(&n.id, n).map_err(|e| ServiceError::Internal(format!("saving network {}: {e}", n.name)))
    }

    /// A network event as dockerd's: the network's ID, its name and
    /// driver, and the container for connect/disconnect.
    fn emit(&self, action: &str, n: &Network, container: Option<&str>) {
        let mut attributes: BTreeMap<String, String> =
            [("name".to_string(), n.name.clone()), ("type".to_string(), n.driver.clone())].into();
        if let Some(c) = container {
            attributes.insert("container".into(), c.to_string());
        }
        self.events.publish(
            api_types::events::TYPE_NETWORK,
            action,
            api_types::events::EventActor { id: n.id.clone(), attributes },
        );
    }

    /// A network by ID, name or ID prefix: (ID, name, predefined).
    pub async fn resolve(&self, name_or_id: &str) -> Result<(String, String, bool), ServiceError> {
        let nets = self.networks.lock().await;
        let n = lookup(&nets, name_or_id)?;
        Ok((n.id.clone(), n.name.clone(), n.predefined))
    }

    /// Where new networks' subnets come from.
    fn pools(&self) -> Vec<(ipam::Subnet, u8)> {
        pools(&self.config)
    }

    /// Moves on every change to networks and their endpoints (addresses,
    /// published ports), for the container list cache.
    pub fn version(&self) -> u64 {
        self.version.get()
    }

    /// The namespace `host` mode joins: berthd's own, when pinned.
    pub fn host_netns(&self) -> Option<&std::path::Path> {
        self.host_netns.as_deref()
    }

    /// Where a container's network namespace is bind-mounted.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.exec_root.join("netns").join(container_id)
    }

    /// The bridge network a container's `NetworkMode` joins it to: the
    /// default `bridge` (unless disabled) or a user-defined one; `None` for
    /// `host`, `none` and `container:`, 404 for an unknown network.
    pub async fn bridge_network(&self, mode: &str) -> Result<Option<String>, ServiceError> {
        if mode.starts_with("container:") || matches!(predefined_mode(mode), Some("host" | "none")) {
            return Ok(None);
        }
        let nets = self.networks.lock().await;
        if predefined_mode(mode) == Some("bridge") {
            return Ok(nets.values().find(|n| n.predefined && n.name == "bridge").map(|n| n.id.clone()));
        }
        let n = lookup(&nets, mode)?;
        Ok((!n.predefined).then(|| n.id.clone()))
    }

    /// Route the container's default traffic through its gateway endpoint
    /// (after an endpoint came or went).
    async fn route_default(&self, nets: &HashMap<String, Network>, container_id: &str) -> Result<(), ServiceError> {
        let (gateway, gateway6) = gateway_endpoints(nets, container_id);
        let route = gateway.and_then(|e| Some((e.gateway.parse::<std::net::Ipv4Addr>().ok()?, e.ifname.as_str())));
        let route6 = gateway6.and_then(|e| Some((e.gateway6.parse::<std::net::Ipv6Addr>().ok()?, e.ifname.as_str())));
        bridge::set_default_route(&self.netns_path(container_id), route, route6)
            .await
            .map_err(|e| ServiceError::Internal(format!("setting the default route: {e}")))
    }

    /// Stop serving a container's published ports.
    fn stop_proxies(&self, container_id: &str) {
        let tasks = self.proxies.lock().unwrap_or_else(|e| e.into_inner()).remove(container_id);
        for task in tasks.into_iter().flatten() {
            task.abort();
        }
    }

    /// Shutdown: stop the port proxies; remove berthd's firewall rules
    /// unless containers keep running (`live-restore`), whose published
    /// ports from other hosts then keep working.
    pub async fn shutdown(&self, keep_rules: bool) {
        let all: Vec<String> = self.proxies.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        for id in all {
            self.stop_proxies(&id);
        }
        // Host-mode tasks hold the namespace itself; the pin is only for
        // starting them, and the next start pins it again.
        if let Some(pin) = &self.host_netns {
            if let Err(e) = bridge::delete_netns(pin) {
                tracing::warn!(error = %e, "unpinning the daemon's network namespace");
            }
        }
        if self.config.iptables && !keep_rules {
            use crate::backends::network::iptables::{remove_all, Family};
            if let Err(e) = remove_all(Family::V4).await {
                tracing::warn!(error = %e, "removing the firewall rules");
            }
            if self.config.ip6tables {
                if let Err(e) = remove_all(Family::V6).await {
                    tracing::debug!(error = %e, "removing the IPv6 firewall rules");
                }
            }
        }
    }
}

/// The endpoints that give a container its IPv4 and IPv6 default routes,
/// as dockerd 28 picks them: in order of the highest `GwPriority`, then
/// the network's name, skipping internal networks, the first dual-stack
/// endpoint gives both; failing that, the first endpoint gives the IPv4
/// route and the IPv6 one comes from no one.
fn gateway_endpoints<'a>(nets: &'a HashMap<String, Network>, container_id: &str) -> (Option<&'a Endpoint>, Option<&'a Endpoint>) {
    let mut candidates: Vec<(&Network, &Endpoint)> =
        nets.values().filter(|n| !n.internal).filter_map(|n| Some((n, n.endpoints.get(container_id)?))).collect();
    candidates.sort_by(|(na, ea), (nb, eb)| eb.gw_priority.cmp(&ea.gw_priority).then_with(|| na.name.cmp(&nb.name)));
    match candidates.iter().find(|(_, e)| !e.gateway6.is_empty()) {
        Some((_, dual)) => (Some(dual), Some(dual)),
        None => (candidates.first().map(|(_, e)| *e), None),
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

/// daemon.json's `default-address-pools`, parsed (checked at start-up).
fn pools(config: &NetworkConfig) -> Vec<(ipam::Subnet, u8)> {
    config.address_pools.iter().filter_map(|p| Some((ipam::Subnet::parse(&p.base)?, p.size))).collect()
}

/// daemon.json's `default-address-pools` with an IPv6 base.
fn pools6(config: &NetworkConfig) -> Vec<(ipam6::Subnet6, u8)> {
    config.address_pools.iter().filter_map(|p| Some((ipam6::Subnet6::parse(&p.base)?, p.size))).collect()
}

impl Network {
    /// The IPv6 subnet, gateway and range containers get addresses from:
    /// only with `EnableIPv6`.
    fn v6(&self) -> Option<(ipam6::Subnet6, std::net::Ipv6Addr, Option<ipam6::Subnet6>)> {
        if !self.enable_ipv6 {
            return None;
        }
        let subnet = ipam6::Subnet6::parse(self.subnet6.as_deref()?)?;
        let gateway = self.gateway6.as_deref()?.parse().ok()?;
        Some((subnet, gateway, self.ip_range6.as_deref().and_then(ipam6::Subnet6::parse)))
    }

    /// Auxiliary addresses of one family, never handed out.
    fn reserved<T: std::str::FromStr>(&self) -> impl Iterator<Item = T> + '_ {
        self.aux_addresses.values().filter_map(|a| a.parse().ok())
    }

    /// A new endpoint's IPv6 address on this network (none without IPv6):
    /// `--ip6`, else on the default bridge the one dockerd builds from the
    /// MAC, else the lowest free. (address, prefix length, gateway).
    fn endpoint_v6(&self, requested: &str, mac: &str) -> Result<Option<(std::net::Ipv6Addr, u8, std::net::Ipv6Addr)>, ServiceError> {
        let Some((subnet, gateway, range)) = self.v6() else {
            if !requested.is_empty() {
                return Err(ServiceError::InvalidParameter(format!(
                    "no configured subnet or ip-range contain the IP address {requested}"
                )));
            }
            return Ok(None);
        };
        let mut used: Vec<std::net::Ipv6Addr> = self.endpoints.values().filter_map(|e| e.ip6.parse().ok()).collect();
        used.extend(self.reserved::<std::net::Ipv6Addr>());
        let ip = if !requested.is_empty() {
            let ip: std::net::Ipv6Addr = requested
                .parse()
                .map_err(|_| ServiceError::InvalidParameter(format!("invalid IPv6 address: {requested}")))?;
            if !subnet.contains(ip) {
                return Err(ServiceError::InvalidParameter(format!(
                    "no configured subnet or ip-range contain the IP address {ip}"
                )));
            }
            if used.contains(&ip) || ip == gateway {
                return Err(ServiceError::Forbidden("Address already in use".into()));
            }
            ip
        } else if let Some(ip) = ipam6::from_mac(&subnet, mac).filter(|_| self.predefined) {
            ip
        } else {
            // A range's first address is skipped, as dockerd's allocator.
            let mut skip = used.clone();
            skip.extend(range.map(|r| r.network));
            ipam6::allocate_ip(&subnet, range.as_ref(), gateway, &skip).ok_or_else(|| {
                ServiceError::Unavailable(format!(
                    "no available IPv6 addresses on this network's address pools: {} ({})",
                    self.name, self.id
                ))
            })?
        };
        Ok(Some((ip, subnet.prefix, self.route_gateway(DEFAULT_GATEWAY_V6).unwrap_or(gateway))))
    }

    /// `default-gateway(-v6)` on the default bridge: where its containers
    /// route instead of the bridge's address.
    fn route_gateway<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.aux_addresses.get(key).and_then(|a| a.parse().ok())
    }
}

/// A network's MTU: its driver option, else the daemon's `mtu`.
fn network_mtu(n: &Network, default: u32) -> u32 {
    n.options.get("com.docker.network.driver.mtu").and_then(|m| m.parse().ok()).unwrap_or(default)
}

async fn ensure_bridge(n: &Network, config: &NetworkConfig) -> Result<(), ServiceError> {
    let mtu = network_mtu(n, config.mtu);
    let (Some(bridge_name), Some(subnet), Some(gateway)) = (&n.bridge, &n.subnet, &n.gateway) else {
        return Ok(());
    };
    let subnet = ipam::Subnet::parse(subnet).ok_or_else(|| ServiceError::Internal(format!("bad subnet {subnet}")))?;
    let gateway = gateway.parse().map_err(|_| ServiceError::Internal(format!("bad gateway {gateway}")))?;
    let v6 = n.v6().map(|(subnet6, gateway6, _)| (gateway6, subnet6.prefix));
    bridge::ensure_bridge(bridge_name, gateway, subnet.prefix, mtu, v6, config.iptables && !config.userland_proxy)
        .await
        .map_err(|e| ServiceError::Internal(format!("creating bridge {bridge_name}: {e}")))?;
    if v6.is_some() && config.ip_forward {
        // As dockerd: only once a network has IPv6 (it stops the host
        // from taking router advertisements on other interfaces).
        if let Err(e) = crate::backends::network::iptables::enable_ip6_forward() {
            tracing::warn!(error = %e, "cannot enable IPv6 forwarding");
        }
    }
    Ok(())
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
