//! Which URLs serve a registry domain, in the order dockerd tries them:
//! `registry-mirrors` then `registry-1.docker.io` for Docker Hub, `https`
//! then plain `http` for insecure registries (`insecure-registries` by
//! `host:port` or CIDR, plus loopback by default).

use std::collections::HashSet;
use std::net::IpAddr;

use super::error::RegistryError;

/// The host behind `docker.io` names.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// The canonical domain of Docker Hub references.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// What clients send as `serveraddress` for Docker Hub logins.
pub const DOCKER_HUB_INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// One way to reach a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://registry-1.docker.io` or a mirror's URL, without a trailing
    /// slash; API paths go below `<base>/v2/`.
    pub base: String,
    /// `host[:port]` of `base`.
    pub host: String,
    pub mirror: bool,
    /// False for insecure registries over https: any certificate goes.
    pub tls_verify: bool,
}

impl Endpoint {
    /// `<base>/v2/<rest>`.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{rest}", self.base)
    }

    pub fn is_https(&self) -> bool {
        self.base.starts_with("https://")
    }
}

/// An IPv4 or IPv6 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is its IPv4 address here, as in Go.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The daemon's registry settings, validated as dockerd validates them.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Normalized mirror URLs (scheme, host, optional path; no trailing
    /// slash), in the configured order.
    mirrors: Vec<String>,
    insecure_hosts: HashSet<String>,
    insecure_cidrs: Vec<Cidr>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self::new(&[], &[]).unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl EndpointConfig {
    /// `mirrors` and `insecure` as in daemon.json's `registry-mirrors` and
    /// `insecure-registries`. Errors carry dockerd's text.
    pub fn new(mirrors: &[String], insecure: &[String]) -> Result<Self, RegistryError> {
        let mirrors = mirrors.iter().map(|m| validate_mirror(m)).collect::<Result<Vec<_>, _>>()?;
        let mut insecure_hosts = HashSet::new();
        let mut insecure_cidrs = Vec::new();
        for entry in insecure {
            let lower = entry.to_lowercase();
            let entry = if lower.starts_with("http://") {
                &entry[7..]
            } else if lower.starts_with("https://") {
                &entry[8..]
            } else if entry.contains("://") {
                return Err(RegistryError::invalid(format!("insecure registry {entry} should not contain '://'")));
            } else {
                entry.as_str()
            };
            let entry = entry.trim_end_matches('/');
            if let Some(cidr) = Cidr::parse(entry) {
                insecure_cidrs.push(cidr);
            } else if is_host_port(entry) {
                insecure_hosts.insert(entry.to_owned());
            } else {
                return Err(RegistryError::invalid(format!("insecure registry {entry} is not valid")));
            }
        }
        // Loopback is always insecure, as in dockerd.
        for default in ["127.0.0.0/8", "::1/128"] {
            if let Some(cidr) = Cidr::parse(default) {
                if !insecure_cidrs.contains(&cidr) {
                    insecure_cidrs.push(cidr);
                }
            }
        }
        Ok(Self { mirrors, insecure_hosts, insecure_cidrs })
    }

    pub fn mirrors(&self) -> &[String] {
        &self.mirrors
    }

    /// The CIDRs that make a registry insecure, defaults included.
    pub fn insecure_cidrs(&self) -> &[Cidr] {
        &self.insecure_cidrs
    }

    /// dockerd's `isSecureIndex`: Docker Hub is secure; a listed
    /// `host:port` is insecure; otherwise insecure when the host (resolved
    /// through DNS when it is a name) is in an insecure CIDR.
    pub async fn is_secure(&self, host: &str) -> bool {
        if host == DOCKER_HUB_DOMAIN || host == DOCKER_HUB_REGISTRY {
            return true;
        }
        if self.insecure_hosts.contains(host) {
            return false;
        }
        let name = host_without_port(host);
        let ips: Vec<IpAddr> = match name.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match tokio::net::lookup_host((name, 0)).await {
                Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                // dockerd treats a name that does not resolve as secure.
                Err(_) => return true,
            },
        };
        !ips.iter().any(|ip| self.insecure_cidrs.iter().any(|c| c.contains(*ip)))
    }

    /// Endpoints to pull `domain`'s images from, best first: mirrors then
    /// the upstream for Docker Hub; https then http for insecure hosts.
    pub async fn pull_endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if domain == DOCKER_HUB_DOMAIN {
            for mirror in &self.mirrors {
                let (scheme, rest) = mirror.split_once("://").unwrap_or(("https", mirror));
                let host = rest.split('/').next().unwrap_or(rest).to_owned();
                let tls_verify = scheme != "https" || self.is_secure(&host).await;
                out.push(Endpoint { base: mirror.clone(), host, mirror: true, tls_verify });
            }
        }
        out.extend(self.push_endpoints(domain).await);
        out
    }

    /// Endpoints to push to (and log in at): never mirrors.
    pub async fn push_endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let host = if domain == DOCKER_HUB_DOMAIN { DOCKER_HUB_REGISTRY } else { domain };
        let secure = self.is_secure(domain).await;
        let mut out = vec![Endpoint {
            base: format!("https://{host}"),
            host: host.to_owned(),
            mirror: false,
            tls_verify: secure,
        }];
        if !secure {
            out.push(Endpoint { base: format!("http://{host}"), host: host.to_owned(), mirror: false, tls_verify: false });
        }
        out
    }
}

/// dockerd's `ValidateMirror`: http(s) URL, no query, fragment or user.
fn validate_mirror(mirror: &str) -> Result<String, RegistryError> {
    let bad = |why: String| RegistryError::invalid(format!("invalid mirror: {why}"));
    let url = reqwest::Url::parse(mirror).map_err(|_| bad(format!("\"{mirror}\" is not a valid URI")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad(format!("unsupported scheme \"{}\" in \"{mirror}\"", url.scheme())));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!("query or fragment at end of the URI \"{mirror}\"")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(format!("username/password not allowed in URI \"{mirror}\"")));
    }
    if url.host_str().unwrap_or_default().is_empty() {
        return Err(bad(format!("\"{mirror}\" is not a valid URI")));
    }
    Ok(mirror.trim_end_matches('/').to_owned())
}

/// `host` or `host:port`, with `[v6]` allowed (dockerd's `validateHostPort`).
fn is_host_port(s: &str) -> bool {
    if s.is_empty() || s.contains('/') || s.contains(char::is_whitespace) {
        return false;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return false,
            },
            None => return false,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return false,
            None => (s, None),
        }
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return false;
        }
    }
    !host.is_empty()
}

/// `host` of `host:port` and `[v6]:port`; a bare IPv6 address stays whole.
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mirrors: &[&str], insecure: &[&str]) -> EndpointConfig {
        let m: Vec<String> = mirrors.iter().map(|s| s.to_string()).collect();
        let i: Vec<String> = insecure.iter().map(|s| s.to_string()).collect();
        EndpointConfig::new(&m, &i).unwrap()
    }

    fn bases(endpoints: &[Endpoint]) -> Vec<(String, bool)> {
        endpoints.iter().map(|e| (e.base.clone(), e.tls_verify)).collect()
    }

    #[tokio::test]
    async fn docker_hub_goes_through_mirrors_in_order_then_upstream() {
        let c = config(&["https://m1.example.com/", "http://127.0.0.1:5001", "https://10.1.2.3/prefix"], &["10.0.0.0/8"]);
        let e = c.pull_endpoints("docker.io").await;
        assert_eq!(
            bases(&e),
            vec![
                ("https://m1.example.com".into(), true),
                ("http://127.0.0.1:5001".into(), true),
                ("https://10.1.2.3/prefix".into(), false),
                ("https://registry-1.docker.io".into(), true),
            ]
        );
        assert!(e[..3].iter().all(|e| e.mirror));
        assert!(!e[3].mirror);
        assert_eq!(e[2].url("library/x/manifests/latest"), "https://10.1.2.3/prefix/v2/library/x/manifests/latest");
        assert_eq!(e[3].host, "registry-1.docker.io");
        // Mirrors serve pulls of Docker Hub images only, never pushes.
        assert_eq!(bases(&c.push_endpoints("docker.io").await), vec![("https://registry-1.docker.io".into(), true)]);
        assert_eq!(bases(&c.pull_endpoints("quay.io").await), vec![("https://quay.io".into(), true)]);
    }

    #[tokio::test]
    async fn loopback_is_insecure_by_default_and_falls_back_to_http() {
        let c = EndpointConfig::default();
        for host in ["127.0.0.1:5000", "127.8.9.10", "[::1]:5000"] {
            assert!(!c.is_secure(host).await, "{host}");
            let e = c.pull_endpoints(host).await;
            assert_eq!(
                bases(&e),
                vec![(format!("https://{host}"), false), (format!("http://{host}"), false)],
                "{host}"
            );
        }
        assert!(c.is_secure("192.168.1.1:5000").await);
        assert!(c.is_secure("docker.io").await);
        // localhost resolves to loopback
        assert!(!c.is_secure("localhost:5000").await);
    }

    #[tokio::test]
    async fn insecure_registries_by_host_port_and_cidr() {
        let c = config(&[], &["myreg.example.com:5000", "http://other.example.com", "192.168.0.0/16"]);
        assert!(!c.is_secure("myreg.example.com:5000").await);
        assert!(c.is_secure("myreg.example.com").await, "the port is part of the entry");
        assert!(!c.is_secure("other.example.com").await);
        assert!(!c.is_secure("192.168.44.2:443").await);
        assert!(c.is_secure("192.169.0.1").await);
        assert_eq!(c.insecure_cidrs().len(), 3);
        let e = c.push_endpoints("myreg.example.com:5000").await;
        assert_eq!(e.len(), 2);
        assert!(!e[1].is_https());
    }

    #[test]
    fn bad_settings_are_refused_with_dockerd_texts() {
        let err = |m: &[&str], i: &[&str]| {
            let m: Vec<String> = m.iter().map(|s| s.to_string()).collect();
            let i: Vec<String> = i.iter().map(|s| s.to_string()).collect();
            EndpointConfig::new(&m, &i).unwrap_err().to_string()
        };
        assert_eq!(err(&["ftp://m"], &[]), "invalid mirror: unsupported scheme \"ftp\" in \"ftp://m\"");
        assert_eq!(err(&["mirror.example.com"], &[]), "invalid mirror: \"mirror.example.com\" is not a valid URI");
        assert!(err(&["https://m/?x=1"], &[]).contains("query or fragment"));
        assert!(err(&["https://u:p@m/"], &[]).contains("username/password"));
        assert_eq!(err(&[], &["ftp://x"]), "insecure registry ftp://x should not contain '://'");
        assert_eq!(err(&[], &["a b"]), "insecure registry a b is not valid");
        assert_eq!(err(&[], &["x:99999"]), "insecure registry x:99999 is not valid");
        assert_eq!(err(&[], &["10.0.0.0/40"]), "insecure registry 10.0.0.0/40 is not valid");
    }

    #[test]
    fn cidrs_match_v4_v6_and_mapped() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.1").is_none());
        assert_eq!(host_without_port("[::1]:5000"), "::1");
        assert_eq!(host_without_port("a:5000"), "a");
        assert_eq!(host_without_port("::1"), "::1");
    }
}
