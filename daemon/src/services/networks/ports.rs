//! Published ports: what a container asks for (`PortBindings`,
//! `PublishAllPorts` with `ExposedPorts`), binding the host side, and how
//! inspect and `docker ps` show the result.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::backends::network::proxy;
use crate::services::ServiceError;

/// One published port while its container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub proto: String,
    pub container_port: u16,
    pub host_ip: String,
    pub host_port: u16,
}

/// One port a container wants published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: String,
    pub container_port: u16,
    /// Empty: the daemon's default (`--ip`, 0.0.0.0).
    pub host_ip: String,
    /// Inclusive; `(0, 0)` for a port from the ephemeral range.
    pub host_ports: (u16, u16),
}

/// `80/tcp` → (80, "tcp"); a bare number is TCP.
fn parse_port_key(key: &str) -> Option<(u16, String)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    Some((port.parse().ok()?, proto))
}

fn parse_host_ports(text: &str) -> Option<(u16, u16)> {
    if text.is_empty() {
        return Some((0, 0));
    }
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => text.parse().ok().map(|p| (p, p)),
    }
}

/// The ports a container publishes, from its host config's
/// `PortBindings`/`PublishAllPorts` and its exposed ports.
pub fn requests(
    host_config: &BTreeMap<String, Value>,
    exposed: Option<&BTreeMap<String, Value>>,
) -> Result<Vec<PortRequest>, ServiceError> {
    let mut out = Vec::new();
    let bindings = host_config.get("PortBindings").and_then(Value::as_object);
    for (key, list) in bindings.into_iter().flatten() {
        let (container_port, proto) =
            parse_port_key(key).ok_or_else(|| ServiceError::InvalidParameter(format!("invalid port specification: \"{key}\"")))?;
        for b in list.as_array().into_iter().flatten() {
            let host_ip = b.get("HostIp").and_then(Value::as_str).unwrap_or_default().to_string();
            if !host_ip.is_empty() && host_ip.parse::<IpAddr>().is_err() {
                return Err(ServiceError::InvalidParameter(format!("invalid IP address: {host_ip}")));
            }
            let host_port = b.get("HostPort").and_then(Value::as_str).unwrap_or_default();
            let host_ports = parse_host_ports(host_port)
                .ok_or_else(|| ServiceError::InvalidParameter(format!("invalid port specification: \"{host_port}\"")))?;
            out.push(PortRequest { proto: proto.clone(), container_port, host_ip, host_ports });
        }
    }
    if host_config.get("PublishAllPorts").and_then(Value::as_bool).unwrap_or(false) {
        for key in exposed.into_iter().flat_map(|e| e.keys()) {
            let Some((container_port, proto)) = parse_port_key(key) else { continue };
            if !out.iter().any(|r| r.container_port == container_port && r.proto == proto) {
                out.push(PortRequest { proto, container_port, host_ip: String::new(), host_ports: (0, 0) });
            }
        }
    }
    Ok(out)
}

/// Bind the host side of every request. On failure the sockets bound so
/// far are closed (dropped) and the error has dockerd's text after
/// "driver failed programming external connectivity on endpoint ...".
/// Where ephemeral host ports are taken from: the kernel's local port
/// range, handed out in turn after the last one per protocol, as
/// dockerd's port allocator does (so `-P` ports do not repeat at once).
#[derive(Debug, Default)]
pub struct Ephemeral {
    last: std::sync::Mutex<BTreeMap<String, u16>>,
}

impl Ephemeral {
    fn range() -> (u16, u16) {
        let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        let mut it = text.split_whitespace().filter_map(|w| w.parse::<u16>().ok());
        match (it.next(), it.next()) {
            (Some(a), Some(b)) if a <= b && a > 0 => (a, b),
            _ => (32768, 60999),
        }
    }

    /// The ports to try for `proto`, starting after the last handed out.
    fn candidates(&self, proto: &str) -> Vec<u16> {
        let (first, last) = Self::range();
        let prev = self.last.lock().unwrap_or_else(|e| e.into_inner()).get(proto).copied().unwrap_or(last);
        let start = if prev >= last || prev < first { first } else { prev + 1 };
        (start..=last).chain(first..start).collect()
    }

    fn taken(&self, proto: &str, port: u16) {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).insert(proto.to_string(), port);
    }
}

pub async fn bind_all(
    requests: &[PortRequest],
    default_ip: &str,
    taken_by_us: &[PortMapping],
    ephemeral: &Ephemeral,
) -> Result<Vec<(PortMapping, proxy::Bound)>, String> {
    let mut bound = Vec::new();
    for r in requests {
        if r.proto == "sctp" {
            return Err("publishing SCTP ports is not supported by berthd".into());
        }
        let host_ip = if r.host_ip.is_empty() { default_ip.to_string() } else { r.host_ip.clone() };
        let ip: IpAddr = host_ip.parse().map_err(|_| format!("invalid host IP {host_ip}"))?;
        let from_range = r.host_ports == (0, 0);
        let ports: Vec<u16> = if from_range {
            ephemeral.candidates(&r.proto)
        } else {
            (r.host_ports.0..=r.host_ports.1).collect()
        };
        let mut result = Err(String::new());
        for port in ports {
            let ours = port != 0 && taken_by_us.iter().chain(bound.iter().map(|(m, _)| m)).any(|m: &PortMapping| {
                m.host_port == port && m.proto == r.proto && (m.host_ip == host_ip || m.host_ip == "0.0.0.0" || host_ip == "0.0.0.0")
            });
            if ours {
                result = Err(format!("Bind for {host_ip}:{port} failed: port is already allocated"));
                continue;
            }
            match proxy::bind(&r.proto, SocketAddr::new(ip, port)).await {
                Ok(b) => {
                    result = Ok(b);
                    break;
                }
                Err(e) => {
                    let family = if ip.is_ipv4() { "4" } else { "6" };
                    result = Err(format!(
                        "Error starting userland proxy: listen {}{family} {host_ip}:{port}: bind: {}",
                        r.proto,
                        io_text(&e)
                    ));
                }
            }
        }
        let b = result?;
        if from_range {
            ephemeral.taken(&r.proto, b.local_port());
        }
        let mapping = PortMapping { proto: r.proto.clone(), container_port: r.container_port, host_ip, host_port: b.local_port() };
        bound.push((mapping, b));
    }
    Ok(bound)
}

/// dockerd publishes a port of the unspecified address on both families:
/// the `[::]` twin of each `0.0.0.0` port (for a container without IPv6,
/// only with the userland proxy, which forwards it to the IPv4 address).
pub fn bind_v6_twins(bound: &[(PortMapping, proxy::Bound)]) -> Result<Vec<(PortMapping, proxy::Bound)>, String> {
    let mut twins = Vec::new();
    for (m, _) in bound.iter().filter(|(m, _)| m.host_ip == "0.0.0.0") {
        let b = proxy::bind_v6only(&m.proto, SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), m.host_port))
            .map_err(|e| {
                format!("Error starting userland proxy: listen {}6 [::]:{}: bind: {}", m.proto, m.host_port, io_text(&e))
            })?;
        twins.push((PortMapping { host_ip: "::".into(), ..m.clone() }, b));
    }
    Ok(twins)
}

/// Go's wording for the common bind errors.
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "address already in use".into(),
        std::io::ErrorKind::AddrNotAvailable => "cannot assign requested address".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Every port a container exposes or publishes, as `80/tcp` keys.
fn port_keys(exposed: Option<&BTreeMap<String, Value>>, requests: &[PortRequest]) -> Vec<String> {
    let mut keys: Vec<String> = exposed
        .into_iter()
        .flat_map(|e| e.keys())
        .filter_map(|k| parse_port_key(k).map(|(p, proto)| format!("{p}/{proto}")))
        .collect();
    keys.extend(requests.iter().map(|r| format!("{}/{}", r.container_port, r.proto)));
    keys.sort();
    keys.dedup();
    keys
}

/// `NetworkSettings.Ports` of a running container: every exposed or
/// published port, with its host bindings or `null`.
pub fn inspect_ports(
    exposed: Option<&BTreeMap<String, Value>>,
    requests: &[PortRequest],
    mappings: &[PortMapping],
) -> BTreeMap<String, Value> {
    port_keys(exposed, requests)
        .into_iter()
        .map(|key| {
            let bound: Vec<Value> = mappings
                .iter()
                .filter(|m| format!("{}/{}", m.container_port, m.proto) == key)
                .map(|m| json!({"HostIp": m.host_ip, "HostPort": m.host_port.to_string()}))
                .collect();
            let value = if bound.is_empty() { Value::Null } else { Value::Array(bound) };
            (key, value)
        })
        .collect()
}

/// `Ports` in `GET /containers/json` for a running container.
pub fn summary_ports(
    exposed: Option<&BTreeMap<String, Value>>,
    requests: &[PortRequest],
    mappings: &[PortMapping],
) -> Vec<Value> {
    let mut out = Vec::new();
    for key in port_keys(exposed, requests) {
        let Some((port, proto)) = parse_port_key(&key) else { continue };
        let bound: Vec<&PortMapping> = mappings.iter().filter(|m| m.container_port == port && m.proto == proto).collect();
        if bound.is_empty() {
            out.push(json!({"PrivatePort": port, "Type": proto}));
        }
        for m in bound {
            out.push(json!({"IP": m.host_ip, "PrivatePort": port, "PublicPort": m.host_port, "Type": proto}));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_bindings_and_publish_all() {
        let hc: BTreeMap<String, Value> = serde_json::from_value(json!({
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5300-5310"}]},
            "PublishAllPorts": true
        }))
        .unwrap();
        let exposed: BTreeMap<String, Value> = serde_json::from_value(json!({"80/tcp": {}, "443/tcp": {}})).unwrap();
        let r = requests(&hc, Some(&exposed)).unwrap();
        assert_eq!(r.len(), 3);
        assert!(r.contains(&PortRequest { proto: "udp".into(), container_port: 53, host_ip: "127.0.0.1".into(), host_ports: (5300, 5310) }));
        assert!(r.contains(&PortRequest { proto: "tcp".into(), container_port: 443, host_ip: String::new(), host_ports: (0, 0) }));
        let bad: BTreeMap<String, Value> = serde_json::from_value(json!({"PortBindings": {"x/tcp": []}})).unwrap();
        assert!(requests(&bad, None).is_err());
    }

    #[test]
    fn shapes_for_inspect_and_ps() {
        let exposed: BTreeMap<String, Value> = serde_json::from_value(json!({"443/tcp": {}})).unwrap();
        let m = [PortMapping { proto: "tcp".into(), container_port: 80, host_ip: "0.0.0.0".into(), host_port: 8080 }];
        let r = [PortRequest { proto: "tcp".into(), container_port: 80, host_ip: String::new(), host_ports: (8080, 8080) }];
        let ports = inspect_ports(Some(&exposed), &r, &m);
        assert_eq!(json!(ports), json!({"443/tcp": null, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}));
        let ps = summary_ports(Some(&exposed), &r, &m);
        assert_eq!(ps.len(), 2);
    }
}
