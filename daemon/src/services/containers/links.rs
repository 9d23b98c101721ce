//! Legacy links (`--link name:alias`) on the default bridge, and the other
//! extra `/etc/hosts` lines (`--add-host`), as dockerd makes them: a child's
//! address under its alias in the parent's hosts file, its ports, name and
//! environment in the parent's environment; `docker rm --link` drops one.

use serde::{Deserialize, Serialize};

use api_types::container::HostConfig;

use super::etc_files::HostEntry;
use super::record::{Container, Status};
use super::ContainerService;
use crate::services::networks::{predefined_mode, Endpoint, LinkRule};
use crate::services::ServiceError;

/// A link as the parent keeps it: the child by ID (it may be renamed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub child_id: String,
    pub alias: String,
}

const HOST_AND_LINKS: &str =
    "conflicting options: host type networking can't be used with links. This would result in undefined behavior";

/// `name[:alias]`, the alias defaulting to the name (dockerd's ParseLink).
fn parse(spec: &str) -> Result<(String, String), ServiceError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || ServiceError::Internal(format!("bad format for links: {spec}"));
    let (name, alias) = match parts.as_slice() {
        [name] => (*name, *name),
        [name, alias] => (*name, *alias),
        _ => return Err(bad()),
    };
    let name = name.trim_start_matches('/');
    if name.is_empty() || alias.is_empty() {
        return Err(bad());
    }
    Ok((name.to_string(), alias.trim_start_matches('/').to_string()))
}

/// A string list of HostConfig kept verbatim (`Links`, `ExtraHosts`).
fn list(host_config: &HostConfig, key: &str) -> Vec<String> {
    host_config.other.get(key).and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}

/// `--add-host` entries: `name:ip` (or `name=ip`), `host-gateway` standing
/// for `gateway`.
fn extra_hosts(host_config: &HostConfig, gateway: Option<&str>) -> Result<Vec<HostEntry>, ServiceError> {
    list(host_config, "ExtraHosts")
        .iter()
        .map(|spec| {
            let (name, ip) = spec.split_once('=').or_else(|| spec.split_once(':')).unwrap_or((spec.as_str(), ""));
            let ip = match (ip, gateway) {
                ("host-gateway", Some(gw)) => gw.to_string(),
                (ip, _) if ip.parse::<std::net::IpAddr>().is_ok() || ip == "host-gateway" => ip.to_string(),
                (ip, _) => return Err(ServiceError::InvalidParameter(format!("invalid IP address in add-host: {ip:?}"))),
            };
            Ok(HostEntry { ip, names: name.to_string() })
        })
        .collect()
}

/// dockerd's link variables: `<ALIAS>_PORT…` for the child's exposed ports
/// (ranges of consecutive ports also as `_START`/`_END`), `<ALIAS>_NAME`,
/// and `<ALIAS>_ENV_…` for its environment (but HOME and PATH).
fn link_env(full_name: &str, ip: &str, exposed: &[(u16, String)], child_env: &[String]) -> Vec<String> {
    let alias = full_name.rsplit('/').next().unwrap_or(full_name).to_uppercase().replace('-', "_");
    let mut ports = exposed.to_vec();
    // By number; at the same number tcp first.
    ports.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| (b.1 == "tcp").cmp(&(a.1 == "tcp"))));
    let mut env = Vec::new();
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{ip}:{port}"));
    }
    let mut i = 0;
    while i < ports.len() {
        // The last of a run of consecutive numbers (dockerd ignores the
        // protocol here).
        let mut j = i;
        while j + 1 < ports.len() && ports[j + 1].0 == ports[j].0.saturating_add(1) {
            j += 1;
        }
        if j > i {
            let (p, proto) = &ports[i];
            let (q, qproto) = &ports[j];
            let up = proto.to_uppercase();
            env.push(format!("{alias}_PORT_{p}_{up}_START={proto}://{ip}:{p}"));
            env.push(format!("{alias}_PORT_{p}_{up}_ADDR={ip}"));
            env.push(format!("{alias}_PORT_{p}_{up}_PROTO={proto}"));
            env.push(format!("{alias}_PORT_{p}_{up}_PORT_START={p}"));
            env.push(format!("{alias}_PORT_{p}_{}_END={qproto}://{ip}:{q}", qproto.to_uppercase()));
            env.push(format!("{alias}_PORT_{p}_{}_PORT_END={q}", qproto.to_uppercase()));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    for (port, proto) in &ports {
        let up = proto.to_uppercase();
        env.push(format!("{alias}_PORT_{port}_{up}={proto}://{ip}:{port}"));
        env.push(format!("{alias}_PORT_{port}_{up}_ADDR={ip}"));
        env.push(format!("{alias}_PORT_{port}_{up}_PORT={port}"));
        env.push(format!("{alias}_PORT_{port}_{up}_PROTO={proto}"));
    }
    env.push(format!("{alias}_NAME={full_name}"));
    for var in child_env {
        let Some((name, value)) = var.split_once('=') else { continue };
        if name != "HOME" && name != "PATH" {
            env.push(format!("{alias}_ENV_{name}={value}"));
        }
    }
    env
}

/// The exposed ports of a config as (number, protocol).
fn exposed_ports(child: &Container) -> Vec<(u16, String)> {
    child
        .config
        .exposed_ports
        .iter()
        .flatten()
        .filter_map(|(key, _)| {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            Some((port.parse().ok()?, proto.to_string()))
        })
        .collect()
}

/// The hosts line for a child: its alias, hostname and (when the alias
/// differs) its name.
fn child_entry(alias: &str, child: &Container, ip: &str) -> HostEntry {
    let mut names = format!("{alias} {}", child.config.hostname);
    if alias != child.bare_name() {
        names.push(' ');
        names.push_str(child.bare_name());
    }
    HostEntry { ip: ip.to_string(), names }
}

/// A linked child that runs on the default bridge.
struct LiveChild {
    alias: String,
    child: Container,
    endpoint: Endpoint,
}

impl ContainerService {
    /// At create: the links `HostConfig.Links` asks for, each child found.
    /// On user-defined networks dockerd keeps no legacy links.
    pub(super) async fn plan_links(&self, host_config: &HostConfig) -> Result<Vec<Link>, ServiceError> {
        let specs = list(host_config, "Links");
        if specs.is_empty() {
            return Ok(vec![]);
        }
        let mode = host_config.network_mode.as_str();
        if mode == "host" {
            return Err(ServiceError::InvalidParameter(HOST_AND_LINKS.into()));
        }
        if predefined_mode(mode).is_none() && !mode.starts_with("container:") {
            return Ok(vec![]);
        }
        let mut links: Vec<Link> = Vec::new();
        for spec in &specs {
            let (name, alias) = parse(spec)?;
            let entry = self
                .lookup(&name)
                .map_err(|e| ServiceError::InvalidParameter(format!("could not get container for {name}: {e}")))?;
            let (child_id, child_mode) = {
                let child = entry.record.lock().await;
                (child.id.clone(), child.host_config.network_mode.clone())
            };
            if child_mode == "host" {
                return Err(ServiceError::InvalidParameter(HOST_AND_LINKS.into()));
            }
            links.retain(|l| l.alias != alias);
            links.push(Link { child_id, alias });
        }
        Ok(links)
    }

    /// `--add-host` lines; `host-gateway` needs the daemon's gateway.
    pub(super) async fn extra_hosts(&self, host_config: &HostConfig) -> Result<Vec<HostEntry>, ServiceError> {
        let wants_gateway = list(host_config, "ExtraHosts").iter().any(|h| h.ends_with("host-gateway"));
        let gateway = if wants_gateway { Some(self.networks.host_gateway().await?) } else { None };
        extra_hosts(host_config, gateway.as_deref())
    }

    /// The linked children running on the default bridge. With `strict`
    /// (the parent's start), one that is not running fails as in dockerd;
    /// otherwise it is left out. Removed children are gone from the links.
    /// `known` is a child whose record the caller holds (locked).
    async fn live_children(&self, parent: &Container, strict: bool, known: Option<&Container>) -> Result<Vec<LiveChild>, ServiceError> {
        let mut out = Vec::new();
        for link in &parent.links {
            if link.child_id == parent.id {
                continue;
            }
            // A known child is joining its networks: it is starting.
            let starting = known.is_some_and(|k| k.id == link.child_id);
            let child = match known.filter(|k| k.id == link.child_id) {
                Some(k) => k.clone(),
                None => {
                    let Ok(entry) = self.lookup(&link.child_id) else { continue };
                    // Never wait on a child's lock outside the parent's
                    // own start (the child's start may be updating us).
                    let locked = entry.record.try_lock().map(|r| r.clone());
                    match locked {
                        Ok(r) => r,
                        Err(_) if strict => entry.record.lock().await.clone(),
                        Err(_) => continue,
                    }
                }
            };
            let running = starting || matches!(child.state.status, Status::Running | Status::Paused | Status::Restarting);
            let endpoint = if running { self.networks.default_bridge_endpoint(&child.id).await } else { None };
            match endpoint {
                Some(endpoint) => out.push(LiveChild { alias: link.alias.clone(), child, endpoint }),
                None if !strict => {}
                None if !running => {
                    return Err(ServiceError::Internal(format!(
                        "Cannot link to a non running container: {} AS {}/{}",
                        child.name, parent.name, link.alias
                    )))
                }
                None => {
                    return Err(ServiceError::Internal(format!(
                        "Cannot link to {}, as it does not belong to the default network",
                        child.name
                    )))
                }
            }
        }
        Ok(out)
    }

    /// At start, before the task: the extra hosts lines (add-host, then
    /// links) and the link variables, which go into the stored spec's
    /// environment (the container's own values win, as in dockerd).
    pub(super) async fn prepare_links(&self, record: &Container) -> Result<(Vec<HostEntry>, Vec<LinkRule>), ServiceError> {
        let mut hosts = self.extra_hosts(&record.host_config).await?;
        if record.links.is_empty() {
            return Ok((hosts, Vec::new()));
        }
        let children = self.live_children(record, true, None).await?;
        let mut env = Vec::new();
        // With `icc: false`, the parent may reach each child's exposed ports.
        let rules = children
            .iter()
            .flat_map(|c| {
                exposed_ports(&c.child).into_iter().map(|(port, proto)| LinkRule { child_ip: c.endpoint.ip.clone(), proto, port })
            })
            .collect();
        for c in &children {
            hosts.push(child_entry(&c.alias, &c.child, &c.endpoint.ip));
            let full_name = format!("{}/{}", record.name, c.alias);
            env.extend(link_env(&full_name, &c.endpoint.ip, &exposed_ports(&c.child), c.child.config.env.as_deref().unwrap_or_default()));
        }
        self.set_link_env(record, env).await?;
        Ok((hosts, rules))
    }

    /// The process environment with the link variables (see
    /// `environment.rs`), into the stored spec.
    async fn set_link_env(&self, record: &Container, links: Vec<String>) -> Result<(), ServiceError> {
        let own = record.config.env.as_deref().unwrap_or_default();
        let env = super::environment::process_env(&record.config.hostname, record.config.tty, links, own);
        self.containerd
            .container_edit_spec(&record.id, |spec| spec["process"]["env"] = serde_json::json!(env))
            .await
            .map_err(ServiceError::from)
    }

    /// The hosts lines for a running container (add-host, then the links
    /// whose children run): what its file is rewritten with when a child
    /// starts or a link goes.
    async fn current_hosts(&self, record: &Container, known: Option<&Container>) -> Vec<HostEntry> {
        let mut hosts = self.extra_hosts(&record.host_config).await.unwrap_or_default();
        for c in self.live_children(record, false, known).await.unwrap_or_default() {
            hosts.push(child_entry(&c.alias, &c.child, &c.endpoint.ip));
        }
        hosts
    }

    /// Rewrite a running container's `/etc/hosts` from its state.
    async fn rewrite_hosts(&self, record: &Container, known: Option<&Container>) {
        let attached = self.attachments(record).await.unwrap_or_default();
        let first = attached.first().map(|a| a.network_id.as_str());
        let Some((_, endpoint)) = self.networks.endpoint_of(&record.id, first).await else { return };
        let hosts = self.current_hosts(record, known).await;
        let path = std::path::Path::new(&record.hosts_path);
        if let Err(e) = super::etc_files::write_hosts(path, &record.config.hostname, &endpoint.ip, &endpoint.ip6, &hosts) {
            tracing::warn!(container.id = %record.id, error = %e, "updating /etc/hosts");
        }
    }

    /// After a container joined the default bridge: the running parents
    /// that link to it see its new address (dockerd's parent update).
    pub(super) async fn update_parents(&self, child: &Container) {
        for entry in self.entries() {
            // Never wait on another container's lock while ours is held.
            let Ok(parent) = entry.record.try_lock().map(|r| r.clone()) else { continue };
            if parent.id != child.id && parent.links.iter().any(|l| l.child_id == child.id) && parent.state.status.is_live() {
                self.rewrite_hosts(&parent, Some(child)).await;
            }
        }
    }

    /// `HostConfig.Links` for inspect: `/child:/parent/alias`, as dockerd
    /// renders its link graph; `None` without links.
    pub(super) async fn links_for_inspect(&self, record: &Container) -> Option<Vec<String>> {
        let mut links = Vec::new();
        for l in &record.links {
            let Ok(entry) = self.lookup(&l.child_id) else { continue };
            let name = entry.record.lock().await.name.clone();
            links.push(format!("{name}:{}/{}", record.name, l.alias));
        }
        (!links.is_empty()).then_some(links)
    }

    /// `DELETE /containers/<parent>/<alias>?link=1` (`docker rm --link`).
    pub async fn remove_link(&self, name: &str) -> Result<(), ServiceError> {
        let name = name.trim_start_matches('/');
        let Some((parent_name, alias)) = name.rsplit_once('/') else {
            // A container's own name is its default link name.
            self.lookup(name)?;
            return Err(ServiceError::Internal("Conflict, cannot remove the default link name of the container".into()));
        };
        let not_found = || ServiceError::NotFound(format!("No such container: {name}"));
        let entry = self.lookup(parent_name).map_err(|_| not_found())?;
        let mut record = entry.record.lock().await;
        if record.bare_name() != parent_name || !record.links.iter().any(|l| l.alias == alias) {
            return Err(not_found());
        }
        record.links.retain(|l| l.alias != alias);
        self.save(&record)?;
        if record.state.status.is_live() {
            self.rewrite_hosts(&record, None).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_specs() {
        assert_eq!(parse("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(parse("/db:x").unwrap(), ("db".into(), "x".into()));
        assert_eq!(parse("a:b:c").unwrap_err().to_string(), "bad format for links: a:b:c");
        assert!(parse(":x").is_err());
    }

    #[test]
    fn variables_as_dockerd() {
        let ports = vec![(5432, "tcp".to_string()), (53, "udp".to_string()), (53, "tcp".to_string())];
        let env = link_env("/client/db-x", "172.17.0.2", &ports, &["SECRET=x".into(), "PATH=/bin".into()]);
        assert_eq!(env[0], "DB_X_PORT=tcp://172.17.0.2:53");
        assert!(env.contains(&"DB_X_PORT_53_UDP=udp://172.17.0.2:53".to_string()));
        assert!(env.contains(&"DB_X_PORT_5432_TCP_ADDR=172.17.0.2".to_string()));
        assert!(env.contains(&"DB_X_NAME=/client/db-x".to_string()));
        assert!(env.contains(&"DB_X_ENV_SECRET=x".to_string()));
        assert!(!env.iter().any(|v| v.contains("ENV_PATH")));
        let range: Vec<(u16, String)> = (8000..=8002).map(|p| (p, "tcp".to_string())).collect();
        let env = link_env("/c/web", "10.0.0.2", &range, &[]);
        assert!(env.contains(&"WEB_PORT_8000_TCP_START=tcp://10.0.0.2:8000".to_string()));
        assert!(env.contains(&"WEB_PORT_8000_TCP_END=tcp://10.0.0.2:8002".to_string()));
        assert!(env.contains(&"WEB_PORT_8000_TCP_PORT_END=8002".to_string()));
    }

    #[test]
    fn add_host_entries() {
        let mut hc = HostConfig::default();
        hc.other.insert("ExtraHosts".into(), serde_json::json!(["foo:1.2.3.4", "gw:host-gateway", "v6:2001:db8::1"]));
        let hosts = extra_hosts(&hc, Some("172.17.0.1")).unwrap();
        let lines: Vec<String> = hosts.iter().map(|h| format!("{} {}", h.ip, h.names)).collect();
        assert_eq!(lines, ["1.2.3.4 foo", "172.17.0.1 gw", "2001:db8::1 v6"]);
        hc.other.insert("ExtraHosts".into(), serde_json::json!(["foo:bad"]));
        assert_eq!(extra_hosts(&hc, None).unwrap_err().to_string(), "invalid IP address in add-host: \"bad\"");
    }
}
