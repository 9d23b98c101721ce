//! Embedded DNS for user-defined networks: the name table the servers
//! answer from, kept in step with the endpoints, and one server per
//! container on a user-defined network (backends/network/dns.rs).
//!
//! A container resolves the DNS names of every endpoint on the networks it
//! is on (its own included), also as `name.network`; addresses of those
//! endpoints resolve back to `container-name.network`. Names exist only
//! while their container runs, since endpoints do.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use super::{Endpoint, Network, NetworkService};
use crate::backends::network::dns::{self, Lookup, Question, Record};
use crate::backends::store;
use crate::services::ServiceError;

/// daemon.json `dns`, `dns-search` and `dns-opts`: what containers get
/// when they set none of their own.
#[derive(Debug, Clone, Default)]
pub struct DnsDefaults {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The names of one network's running endpoints.
#[derive(Default)]
struct NetworkNames {
    name: String,
    addresses: HashMap<String, Vec<IpAddr>>,
    /// Address → container name, for PTR.
    owners: HashMap<IpAddr, String>,
}

#[derive(Default)]
struct Snapshot {
    networks: HashMap<String, NetworkNames>,
    /// Container ID → the user-defined networks it is on.
    memberships: HashMap<String, Vec<String>>,
}

/// The table every server reads; rebuilt whole on each endpoint change
/// (rare) so a query never waits on a writer for long.
#[derive(Default)]
pub(super) struct NameTable {
    snapshot: RwLock<Arc<Snapshot>>,
}

/// What an endpoint answers to: its own names when recorded, else the
/// container's name and short ID, as dockerd's DNSNames.
fn endpoint_names(container_id: &str, e: &Endpoint) -> Vec<String> {
    if !e.dns_names.is_empty() {
        return e.dns_names.clone();
    }
    vec![e.container_name.clone(), container_id.chars().take(12).collect()]
}

impl NameTable {
    pub(super) fn refresh(&self, nets: &HashMap<String, Network>) {
        let mut snapshot = Snapshot::default();
        for n in nets.values().filter(|n| !n.predefined) {
            let mut names = NetworkNames { name: n.name.to_ascii_lowercase(), ..Default::default() };
            for (container_id, e) in &n.endpoints {
                let Ok(ip) = e.ip.parse::<Ipv4Addr>() else { continue };
                let ip6 = e.ip6.parse::<std::net::Ipv6Addr>().ok();
                for name in endpoint_names(container_id, e) {
                    let ips = names.addresses.entry(name.to_ascii_lowercase()).or_default();
                    for ip in std::iter::once(IpAddr::V4(ip)).chain(ip6.map(IpAddr::V6)) {
                        if !ips.contains(&ip) {
                            ips.push(ip);
                        }
                    }
                }
                names.owners.insert(IpAddr::V4(ip), e.container_name.clone());
                if let Some(ip6) = ip6 {
                    names.owners.insert(IpAddr::V6(ip6), e.container_name.clone());
                }
                snapshot.memberships.entry(container_id.clone()).or_default().push(n.id.clone());
            }
            snapshot.networks.insert(n.id.clone(), names);
        }
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Snapshot {
    fn networks_of<'a>(&'a self, container_id: &str) -> impl Iterator<Item = &'a NetworkNames> + 'a {
        let ids = self.memberships.get(container_id).map(Vec::as_slice).unwrap_or_default();
        ids.iter().filter_map(|id| self.networks.get(id))
    }

    /// `name` on any of the container's networks, else `name.network` for
    /// one of them (names and networks may both hold dots, as in dockerd).
    fn resolve(&self, container_id: &str, name: &str) -> Vec<IpAddr> {
        let mut found: Vec<IpAddr> = Vec::new();
        for n in self.networks_of(container_id) {
            add_new(&mut found, n.addresses.get(name));
        }
        if found.is_empty() {
            for (dot, _) in name.match_indices('.') {
                let (short, network) = (&name[..dot], &name[dot + 1..]);
                for n in self.networks_of(container_id).filter(|n| n.name == network) {
                    add_new(&mut found, n.addresses.get(short));
                }
            }
        }
        found
    }
}

fn add_new(found: &mut Vec<IpAddr>, ips: Option<&Vec<IpAddr>>) {
    for ip in ips.into_iter().flatten() {
        if !found.contains(ip) {
            found.push(*ip);
        }
    }
}

impl dns::Names for NameTable {
    fn lookup(&self, container_id: &str, question: &Question) -> Lookup {
        let snapshot = self.current();
        match question.qtype {
            dns::TYPE_A | dns::TYPE_AAAA | dns::TYPE_MX => {
                let ips = snapshot.resolve(container_id, &question.name);
                // A known name without an address of the asked family (and
                // never a mail exchanger): an empty NOERROR, as dockerd.
                let records = ips.iter().filter_map(|ip| match (ip, question.qtype) {
                    (IpAddr::V4(ip), dns::TYPE_A) => Some(Record::A(*ip)),
                    (IpAddr::V6(ip), dns::TYPE_AAAA) => Some(Record::Aaaa(*ip)),
                    _ => None,
                });
                if ips.is_empty() { Lookup::Forward } else { Lookup::Answer(records.collect()) }
            }
            dns::TYPE_PTR => {
                let ip = dns::reverse_v4(&question.name)
                    .map(IpAddr::V4)
                    .or_else(|| dns::reverse_v6(&question.name).map(IpAddr::V6));
                let owner = ip.and_then(|ip| {
                    snapshot.networks_of(container_id).find_map(|n| n.owners.get(&ip).map(|c| format!("{c}.{}", n.name)))
                });
                match owner {
                    Some(name) => Lookup::Answer(vec![Record::Ptr(name)]),
                    None => Lookup::Forward,
                }
            }
            _ => Lookup::Forward,
        }
    }
}

/// The running servers, by container ID.
#[derive(Default)]
pub(super) struct Servers {
    running: std::sync::Mutex<HashMap<String, dns::Server>>,
}

/// Upstream resolvers for a container: its own `--dns`, else daemon.json
/// `dns`, else the host's nameservers — loopback ones too, since the
/// server forwards from berthd's namespace. IPv6 servers too, as dockerd
/// 28 (20.10 listed them in the container's resolv.conf instead).
pub fn upstreams(container_dns: &[String], defaults: &DnsDefaults, host_resolv_conf: &str) -> Vec<SocketAddr> {
    let host: Vec<String>;
    let servers = if !container_dns.is_empty() {
        container_dns
    } else if !defaults.servers.is_empty() {
        &defaults.servers
    } else {
        host = host_resolv_conf
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("nameserver")).then(|| words.next().map(str::to_string)).flatten()
            })
            .collect();
        &host
    };
    servers
        .iter()
        // A scoped IPv6 address (`fe80::1%eth0`) does not parse: it cannot
        // be reached from here.
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

impl NetworkService {
    fn dns_file(&self, container_id: &str) -> PathBuf {
        self.exec_root.join("dns").join(format!("{container_id}.json"))
    }

    /// daemon.json's DNS settings, for new containers.
    pub fn with_dns_defaults(mut self, defaults: DnsDefaults) -> Self {
        self.dns_defaults = defaults;
        self
    }

    pub fn dns_defaults(&self) -> &DnsDefaults {
        &self.dns_defaults
    }

    /// Give the container's endpoint on user-defined `network_id` its DNS names and
    /// serve 127.0.0.11 in its namespace, forwarding to the upstreams its
    /// `--dns` (or the daemon's) picks. The upstreams are kept under the
    /// exec root so a restarted berthd serves the container again.
    pub async fn serve_dns(
        &self,
        container_id: &str,
        network_id: &str,
        names: Vec<String>,
        container_dns: &[String],
    ) -> Result<(), ServiceError> {
        {
            let mut nets = self.networks.lock().await;
            // The default bridge has no embedded DNS, as with dockerd.
            if nets.get(network_id).is_none_or(|n| n.predefined) {
                return Ok(());
            }
            if let Some(n) = nets.get_mut(network_id) {
                if let Some(e) = n.endpoints.get_mut(container_id) {
                    e.dns_names = names;
                    let n = n.clone();
                    self.save(&n)?;
                }
            }
            self.names.refresh(&nets);
        }
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let upstreams = upstreams(container_dns, &self.dns_defaults, &host);
        let file = self.dns_file(container_id);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ServiceError::Internal(format!("creating {}: {e}", dir.display())))?;
        }
        let json = serde_json::to_vec(&upstreams).map_err(|e| ServiceError::Internal(e.to_string()))?;
        store::atomic_write(&file, &json)
            .map_err(|e| ServiceError::Internal(format!("writing {}: {e}", file.display())))?;
        self.start_dns_server(container_id, upstreams).await
    }

    async fn start_dns_server(&self, container_id: &str, upstreams: Vec<SocketAddr>) -> Result<(), ServiceError> {
        if self.servers.running.lock().unwrap_or_else(|e| e.into_inner()).contains_key(container_id) {
            return Ok(());
        }
        let names: Arc<dyn dns::Names> = self.names.clone();
        let server = dns::start(&self.netns_path(container_id), container_id, names, upstreams)
            .await
            .map_err(|e| ServiceError::Internal(format!("starting the embedded DNS server: {e}")))?;
        self.servers.running.lock().unwrap_or_else(|e| e.into_inner()).insert(container_id.to_string(), server);
        tracing::debug!(container.id = %container_id, "embedded DNS server started");
        Ok(())
    }

    /// `docker rename`: the container's endpoints answer to the new name.
    pub async fn rename_endpoints(&self, container_id: &str, old: &str, new: &str) {
        let mut nets = self.networks.lock().await;
        for n in nets.values_mut() {
            let Some(e) = n.endpoints.get_mut(container_id) else { continue };
            e.container_name = new.to_string();
            for name in e.dns_names.iter_mut().filter(|name| *name == old) {
                *name = new.to_string();
            }
            if let Err(e) = self.save(n) {
                tracing::warn!(container.id = %container_id, error = %e, "keeping the renamed endpoint");
            }
        }
        self.names.refresh(&nets);
    }

    /// Stop the container's server, before its namespace goes.
    pub(super) fn stop_dns(&self, container_id: &str) {
        let stopped = self.servers.running.lock().unwrap_or_else(|e| e.into_inner()).remove(container_id);
        if stopped.is_some() {
            tracing::debug!(container.id = %container_id, "embedded DNS server stopped");
        }
        let _ = std::fs::remove_file(self.dns_file(container_id));
    }

    /// At start-up: serve again every container that was served when
    /// berthd went away and whose namespace is still there.
    pub(super) async fn recover_dns(&self) {
        let containers: Vec<String> = {
            let nets = self.networks.lock().await;
            self.names.refresh(&nets);
            nets.values().filter(|n| !n.predefined).flat_map(|n| n.endpoints.keys().cloned()).collect()
        };
        for id in containers {
            let file = self.dns_file(&id);
            if !file.exists() || !self.netns_path(&id).exists() {
                continue;
            }
            let upstreams: Vec<SocketAddr> = match std::fs::read(&file).map(|b| serde_json::from_slice(&b)) {
                Ok(Ok(u)) => u,
                _ => {
                    tracing::warn!(container.id = %id, "unreadable DNS upstreams; serving without them");
                    Vec::new()
                }
            };
            if let Err(e) = self.start_dns_server(&id, upstreams).await {
                tracing::warn!(container.id = %id, error = %e, "cannot serve the container's DNS again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::network::dns::Names;

    fn endpoint(name: &str, ip: &str, dns_names: &[&str]) -> Endpoint {
        Endpoint {
            container_name: name.into(),
            endpoint_id: "e".into(),
            ip: ip.into(),
            prefix: 24,
            gateway: "10.0.0.1".into(),
            mac: String::new(),
            host_veth: String::new(),
            ports: vec![],
            dns_names: dns_names.iter().map(|s| s.to_string()).collect(),
            aliases: vec![],
            ifname: "eth0".into(),
            gw_priority: 0,
            ip6: String::new(),
            prefix6: 0,
            gateway6: String::new(),
            links: Vec::new(),
        }
    }

    fn network(id: &str, name: &str, endpoints: &[(&str, Endpoint)]) -> Network {
        let mut n = super::super::predefined(name, "bridge");
        n.id = id.into();
        n.predefined = false;
        n.endpoints = endpoints.iter().map(|(c, e)| (c.to_string(), e.clone())).collect();
        n
    }

    fn table() -> NameTable {
        let nets: HashMap<String, Network> = [
            network("n1", "front", &[
                ("aaaaaaaaaaaaaaaa", endpoint("web", "10.0.0.2", &["web", "www", "aaaaaaaaaaaa"])),
                ("bbbbbbbbbbbbbbbb", endpoint("db", "10.0.0.3", &[])),
            ]),
            network("n2", "back", &[("cccccccccccccccc", endpoint("cache", "10.1.0.2", &[]))]),
        ]
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
        let t = NameTable::default();
        t.refresh(&nets);
        t
    }

    fn a(t: &NameTable, from: &str, name: &str) -> Option<Vec<String>> {
        match t.lookup(from, &Question { name: name.into(), qtype: dns::TYPE_A }) {
            Lookup::Answer(r) => Some(
                r.iter()
                    .map(|r| match r {
                        Record::A(ip) => ip.to_string(),
                        Record::Aaaa(ip) => ip.to_string(),
                        Record::Ptr(n) => n.clone(),
                    })
                    .collect(),
            ),
            Lookup::Forward => None,
        }
    }

    #[test]
    fn names_on_shared_networks_resolve() {
        let t = table();
        assert_eq!(a(&t, "bbbbbbbbbbbbbbbb", "web"), Some(vec!["10.0.0.2".into()]));
        assert_eq!(a(&t, "bbbbbbbbbbbbbbbb", "www"), Some(vec!["10.0.0.2".into()]));
        assert_eq!(a(&t, "bbbbbbbbbbbbbbbb", "aaaaaaaaaaaa"), Some(vec!["10.0.0.2".into()]));
        assert_eq!(a(&t, "aaaaaaaaaaaaaaaa", "db"), Some(vec!["10.0.0.3".into()]));
        assert_eq!(a(&t, "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbb"), Some(vec!["10.0.0.3".into()]));
        assert_eq!(a(&t, "aaaaaaaaaaaaaaaa", "db.front"), Some(vec!["10.0.0.3".into()]));
        assert_eq!(a(&t, "aaaaaaaaaaaaaaaa", "db.back"), None);
        // Not on `back`: its names are forwarded, never answered.
        assert_eq!(a(&t, "aaaaaaaaaaaaaaaa", "cache"), None);
        assert_eq!(a(&t, "someone-else", "web"), None);
    }

    #[test]
    fn ipv4_only_names_answer_aaaa_empty_and_ptr_with_the_network() {
        let t = table();
        let q = Question { name: "web".into(), qtype: dns::TYPE_AAAA };
        assert!(matches!(t.lookup("bbbbbbbbbbbbbbbb", &q), Lookup::Answer(r) if r.is_empty()));
        assert_eq!(a(&t, "bbbbbbbbbbbbbbbb", "nope"), None);
        let q = Question { name: "2.0.0.10.in-addr.arpa".into(), qtype: dns::TYPE_PTR };
        assert!(matches!(t.lookup("bbbbbbbbbbbbbbbb", &q), Lookup::Answer(r) if matches!(&r[..], [Record::Ptr(n)] if n == "web.front")));
        let q = Question { name: "2.0.1.10.in-addr.arpa".into(), qtype: dns::TYPE_PTR };
        assert!(matches!(t.lookup("bbbbbbbbbbbbbbbb", &q), Lookup::Forward));
    }

    #[test]
    fn upstreams_from_container_daemon_or_host() {
        let host = "nameserver 127.0.0.53\nnameserver 2001:db8::1\nsearch x\n";
        let d = DnsDefaults { servers: vec!["9.9.9.9".into()], ..Default::default() };
        assert_eq!(upstreams(&["1.1.1.1".into()], &d, host), vec!["1.1.1.1:53".parse().unwrap()]);
        assert_eq!(upstreams(&[], &d, host), vec!["9.9.9.9:53".parse().unwrap()]);
        let host_ones: Vec<SocketAddr> = vec!["127.0.0.53:53".parse().unwrap(), "[2001:db8::1]:53".parse().unwrap()];
        assert_eq!(upstreams(&[], &DnsDefaults::default(), host), host_ones);
        assert_eq!(upstreams(&["fe80::1%eth0".into(), "::1".into()], &d, host), vec!["[::1]:53".parse().unwrap()]);
    }
}
