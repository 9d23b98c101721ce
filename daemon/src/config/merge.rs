//! Flags + daemon.json → [`Config`]. A setting given both ways is an error,
//! as in dockerd's `getConflictFreeConfiguration`.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use super::container_defaults::{self, ContainerDefaults, Ulimit};
use super::daemon_json::ParsedFile;
use crate::backends::logging::driver::{LogDriver, DEFAULT_DRIVER};
use super::{Config, TlsConfig};
use crate::cli::Cli;

pub fn merge(cli: &Cli, file: ParsedFile, path: &Path) -> Result<Config, String> {
    reject_conflicts(cli, &file)?;
    let f = file.config;
    let container_defaults = container_defaults(cli, &f)?;
    let hosts = if !cli.hosts.is_empty() {
        cli.hosts.clone()
    } else {
        f.hosts.filter(|h| !h.is_empty()).unwrap_or_else(|| vec![super::DEFAULT_HOST.to_string()])
    };
    // As in dockerd, giving --tlsverify at all (even =false) turns TLS on.
    let tls_verify_set = cli.tls_verify.or(f.tls_verify);
    let tls_verify = tls_verify_set.unwrap_or(false);
    let tls_flag = cli.tls.or(f.tls);
    let tls = if tls_verify_set.is_some() || tls_flag == Some(true) {
        let docker_dir = home_docker_dir();
        Some(TlsConfig {
            verify: tls_verify,
            ca_cert: cli.tls_ca_cert.clone().or(f.tls_ca_cert).unwrap_or_else(|| docker_dir.join("ca.pem")),
            cert: cli.tls_cert.clone().or(f.tls_cert).unwrap_or_else(|| docker_dir.join("cert.pem")),
            key: cli.tls_key.clone().or(f.tls_key).unwrap_or_else(|| docker_dir.join("key.pem")),
        })
    } else {
        None
    };
    Ok(Config {
        config_file: path.to_path_buf(),
        hosts,
        data_root: cli.data_root.clone().or(f.data_root).unwrap_or_else(|| super::DEFAULT_DATA_ROOT.into()),
        exec_root: cli.exec_root.clone().or(f.exec_root).unwrap_or_else(|| super::DEFAULT_EXEC_ROOT.into()),
        containerd: cli.containerd.clone().or(f.containerd),
        containerd_namespace: cli
            .containerd_namespace
            .clone()
            .or(f.containerd_namespace)
            .unwrap_or_else(|| super::DEFAULT_NAMESPACE.to_string()),
        snapshotter: snapshotter_for(cli.storage_driver.as_deref().or(f.storage_driver.as_deref()).unwrap_or("")),
        debug: cli.debug.or(f.debug).unwrap_or(false),
        log_level: cli.log_level.clone().or(f.log_level).unwrap_or_else(|| "info".to_string()),
        pidfile: cli.pidfile.clone().or(f.pidfile).unwrap_or_else(|| super::DEFAULT_PIDFILE.into()),
        group: cli.group.clone().or(f.group),
        tls,
        tls_explicitly_off: tls_flag == Some(false) && tls_verify_set.is_none(),
        live_restore: cli.live_restore.or(f.live_restore).unwrap_or(false),
        shutdown_timeout: cli.shutdown_timeout.or(f.shutdown_timeout).unwrap_or(super::DEFAULT_SHUTDOWN_TIMEOUT),
        labels: f.labels.unwrap_or_default(),
        registry_mirrors: f.registry_mirrors.unwrap_or_default().into_iter().map(normalize_mirror).collect(),
        insecure_registries: f.insecure_registries.unwrap_or_default(),
        max_concurrent_downloads: concurrency(
            cli.max_concurrent_downloads.or(f.max_concurrent_downloads),
            super::DEFAULT_MAX_CONCURRENT_DOWNLOADS,
            "downloads",
        )?,
        max_concurrent_uploads: concurrency(
            cli.max_concurrent_uploads.or(f.max_concurrent_uploads),
            super::DEFAULT_MAX_CONCURRENT_UPLOADS,
            "uploads",
        )?,
        container_defaults,
        dns: f.dns.unwrap_or_default(),
        dns_search: f.dns_search.unwrap_or_default(),
        dns_opts: f.dns_opts.unwrap_or_default(),
        ignored_keys: file.ignored,
        file_keys: file.raw.keys().cloned().collect(),
        log_format: cli.log_format.clone().or(f.log_format).unwrap_or_else(|| "text".to_string()),
        metrics_addr: cli.metrics_addr.clone().or(f.metrics_addr).filter(|a| !a.is_empty()),
        network: super::NetworkConfig {
            bridge: cli.bridge.clone().or(f.bridge),
            bip: cli.bip.clone().or(f.bip),
            fixed_cidr: cli.fixed_cidr.clone().or(f.fixed_cidr),
            ipv6: cli.ipv6.or(f.ipv6).unwrap_or(false),
            fixed_cidr_v6: match cli.fixed_cidr_v6.clone().or(f.fixed_cidr_v6) {
                Some(c) if crate::backends::network::ipam6::Subnet6::parse(&c).is_none() => {
                    return Err(format!("invalid fixed-cidr-v6 {c}: invalid CIDR address: {c}"))
                }
                other => other,
            },
            bip6: match cli.bip6.clone().or(f.bip6) {
                Some(b) if crate::backends::network::ipam6::Subnet6::parse(&b).is_none() => {
                    return Err(format!("invalid bip6 {b}: invalid CIDR address: {b}"))
                }
                other => other,
            },
            default_gateway: match cli.default_gateway.clone().or(f.default_gateway) {
                None => None,
                Some(ip) => Some(ip.parse().map_err(|_| format!("invalid IP address: {ip}"))?),
            },
            default_gateway_v6: match cli.default_gateway_v6.clone().or(f.default_gateway_v6) {
                None => None,
                Some(ip) => Some(ip.parse().map_err(|_| format!("invalid IP address: {ip}"))?),
            },
            ip6tables: cli.ip6tables.or(f.ip6tables).unwrap_or(true),
            userland_proxy: cli.userland_proxy.or(f.userland_proxy).unwrap_or(true),
            mtu: match cli.mtu.or(f.mtu) {
                None | Some(0) => 1500,
                Some(n) if !(68..=65535).contains(&n) => return Err(format!("invalid MTU: {n}")),
                Some(n) => n as u32,
            },
            ip_forward: cli.ip_forward.or(f.ip_forward).unwrap_or(true),
            ip_masq: cli.ip_masq.or(f.ip_masq).unwrap_or(true),
            iptables: cli.iptables.or(f.iptables).unwrap_or(true),
            icc: cli.icc.or(f.icc).unwrap_or(true),
            default_bind_ip: cli.ip.clone().or(f.ip).unwrap_or_else(|| "0.0.0.0".into()),
            host_gateway_ip: match f.host_gateway_ip {
                None => None,
                Some(ip) => Some(ip.parse().map_err(|_| format!("invalid IP address: {ip}"))?),
            },
            address_pools: address_pools(f.default_address_pools.unwrap_or_default())?,
        },
    })
}

/// `default-address-pools`, checked as dockerd does.
fn address_pools(pools: Vec<super::AddressPool>) -> Result<Vec<super::AddressPool>, String> {
    for p in &pools {
        // IPv4 bases, and IPv6 ones for networks with `EnableIPv6`.
        let (prefix, bits) = match crate::backends::network::ipam::Subnet::parse(&p.base) {
            Some(base) => (base.prefix, 32),
            None => match crate::backends::network::ipam6::Subnet6::parse(&p.base) {
                Some(base) => (base.prefix, 128),
                None => return Err(format!("invalid base pool {:?}: invalid CIDR address: {}", p.base, p.base)),
            },
        };
        if p.size < prefix || p.size > bits {
            return Err(format!("invalid pools size: {}", p.size));
        }
    }
    Ok(pools)
}

fn container_defaults(cli: &Cli, f: &super::daemon_json::DaemonJson) -> Result<ContainerDefaults, String> {
    let ulimits = if cli.default_ulimits.is_empty() {
        let from_file = f.default_ulimits.clone().unwrap_or_default();
        for u in from_file.values() {
            u.check()?;
        }
        from_file
    } else {
        let mut by_name = BTreeMap::new();
        for text in &cli.default_ulimits {
            let u = Ulimit::parse(text)?;
            by_name.insert(u.name.clone(), u);
        }
        by_name
    };
    let ipc_mode = cli.default_ipc_mode.clone().or(f.default_ipc_mode.clone()).unwrap_or_else(|| "private".into());
    container_defaults::check_ipc_mode(&ipc_mode)?;
    let cgroupns_mode = cli.default_cgroupns_mode.clone().or(f.default_cgroupns_mode.clone()).unwrap_or_default();
    container_defaults::check_cgroupns_mode(&cgroupns_mode)?;
    let shm_size = match cli.default_shm_size.as_ref().or(f.default_shm_size.as_ref()) {
        Some(text) => container_defaults::parse_size(text)?,
        None => 0,
    };
    let log_driver = cli.log_driver.clone().or(f.log_driver.clone()).unwrap_or_else(|| DEFAULT_DRIVER.to_string());
    let log_opts = if cli.log_opts.is_empty() {
        f.log_opts.clone().unwrap_or_default()
    } else {
        cli.log_opts
            .iter()
            .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("invalid key/value pair format in log-opt: {kv}")))
            .collect::<Result<_, _>>()?
    };
    LogDriver::parse(&log_driver, &log_opts).map_err(|e| format!("failed to set log opts: {e}"))?;
    let mut runtimes = f.runtimes.clone().unwrap_or_default();
    for spec in &cli.add_runtimes {
        let (name, path) = spec.split_once('=').ok_or_else(|| format!("invalid runtime spec: {spec}"))?;
        runtimes.insert(name.to_string(), container_defaults::RuntimeConfig { path: path.to_string(), runtime_args: vec![] });
    }
    let default_runtime = cli.default_runtime.clone().or(f.default_runtime.clone()).unwrap_or_else(|| container_defaults::RUNC.into());
    container_defaults::check_runtimes(&runtimes, &default_runtime)?;
    Ok(ContainerDefaults {
        runtimes,
        default_runtime,
        log_driver,
        log_opts,
        ulimits,
        init: cli.init.or(f.init).unwrap_or(false),
        init_path: cli.init_path.clone().or(f.init_path.clone()),
        ipc_mode,
        cgroupns_mode,
        shm_size,
    })
}

/// A transfer limit: unset or 0 is the default; negative is an error with
/// dockerd's text.
/// dockerd's graph driver names for the containerd snapshotters behind
/// them; a snapshotter's own name is taken as is (checked against
/// containerd's plugins at start).
fn snapshotter_for(storage_driver: &str) -> String {
    match storage_driver {
        "" | "overlay2" => "overlayfs".into(),
        "vfs" => "native".into(),
        other => other.into(),
    }
}

fn concurrency(value: Option<i64>, default: usize, what: &str) -> Result<usize, String> {
    match value {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 => Err(format!("invalid max concurrent {what}: {n}")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

/// dockerd stores mirrors with a trailing slash.
fn normalize_mirror(mirror: String) -> String {
    if mirror.ends_with('/') {
        mirror
    } else {
        format!("{mirror}/")
    }
}

fn home_docker_dir() -> PathBuf {
    std::env::var_os("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".docker"))
}

/// The flags given on the command line, by their daemon.json key, with the
/// value as dockerd would print it.
fn flags_set(cli: &Cli) -> Vec<(&'static str, String)> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let text = |s: &Option<String>| s.clone();
    let boolean = |b: &Option<bool>| b.map(|b| b.to_string());
    let hosts = (!cli.hosts.is_empty()).then(|| format!("[{}]", cli.hosts.join(" ")));
    [
        ("hosts", hosts),
        ("data-root", path(&cli.data_root)),
        ("exec-root", path(&cli.exec_root)),
        ("containerd", path(&cli.containerd)),
        ("containerd-namespace", text(&cli.containerd_namespace)),
        ("storage-driver", text(&cli.storage_driver)),
        ("debug", boolean(&cli.debug)),
        ("log-level", text(&cli.log_level)),
        ("pidfile", path(&cli.pidfile)),
        ("group", text(&cli.group)),
        ("tls", boolean(&cli.tls)),
        ("tlsverify", boolean(&cli.tls_verify)),
        ("tlscacert", path(&cli.tls_ca_cert)),
        ("tlscert", path(&cli.tls_cert)),
        ("tlskey", path(&cli.tls_key)),
        ("live-restore", boolean(&cli.live_restore)),
        ("shutdown-timeout", cli.shutdown_timeout.map(|n| n.to_string())),
        ("max-concurrent-downloads", cli.max_concurrent_downloads.map(|n| n.to_string())),
        ("max-concurrent-uploads", cli.max_concurrent_uploads.map(|n| n.to_string())),
        ("bridge", text(&cli.bridge)),
        ("bip", text(&cli.bip)),
        ("fixed-cidr", text(&cli.fixed_cidr)),
        ("ipv6", boolean(&cli.ipv6)),
        ("fixed-cidr-v6", text(&cli.fixed_cidr_v6)),
        ("bip6", text(&cli.bip6)),
        ("default-gateway", text(&cli.default_gateway)),
        ("default-gateway-v6", text(&cli.default_gateway_v6)),
        ("ip6tables", boolean(&cli.ip6tables)),
        ("userland-proxy", boolean(&cli.userland_proxy)),
        ("mtu", cli.mtu.map(|n| n.to_string())),
        ("ip-forward", boolean(&cli.ip_forward)),
        ("ip-masq", boolean(&cli.ip_masq)),
        ("iptables", boolean(&cli.iptables)),
        ("icc", boolean(&cli.icc)),
        ("ip", text(&cli.ip)),
        ("default-ulimits", (!cli.default_ulimits.is_empty()).then(|| format!("[{}]", cli.default_ulimits.join(" ")))),
        ("init", boolean(&cli.init)),
        ("init-path", path(&cli.init_path)),
        ("default-ipc-mode", text(&cli.default_ipc_mode)),
        ("default-cgroupns-mode", text(&cli.default_cgroupns_mode)),
        ("default-shm-size", text(&cli.default_shm_size)),
        ("log-driver", text(&cli.log_driver)),
        ("default-runtime", text(&cli.default_runtime)),
        ("log-format", text(&cli.log_format)),
        ("metrics-addr", text(&cli.metrics_addr)),
        ("log-opts", (!cli.log_opts.is_empty()).then(|| format!("[{}]", cli.log_opts.join(" ")))),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
}

fn reject_conflicts(cli: &Cli, file: &ParsedFile) -> Result<(), String> {
    let conflicts: Vec<String> = flags_set(cli)
        .into_iter()
        .filter_map(|(key, flag)| {
            file.raw
                .get(key)
                .map(|v| format!("{key}: (from flag: {flag}, from file: {})", go_display(v)))
        })
        .collect();
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            conflicts.join(", ")
        ))
    }
}

/// Values printed the way Go's `%v` prints them in dockerd's message.
fn go_display(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            format!("[{}]", items.iter().map(go_display).collect::<Vec<_>>().join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::daemon_json::parse;

    fn cli(args: &[&str]) -> Cli {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("berthd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults() {
        let c = merge(&cli(&[]), ParsedFile::default(), Path::new("/etc/docker/daemon.json")).unwrap();
        assert_eq!(c.hosts, ["unix:///var/run/docker.sock"]);
        assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.exec_root, PathBuf::from("/var/run/berth"));
        assert_eq!(c.containerd_namespace, "berth");
        assert_eq!(c.log_level, "info");
        assert!(c.tls.is_none() && !c.debug && c.containerd.is_none());
        assert_eq!(c.shutdown_timeout, 15);
        assert_eq!((c.max_concurrent_downloads, c.max_concurrent_uploads), (3, 5));
    }

    #[test]
    fn transfer_limits_from_file_or_flag() {
        let file = parse(r#"{"max-concurrent-downloads": 7}"#).unwrap();
        let c = merge(&cli(&["--max-concurrent-uploads", "2"]), file, Path::new("f")).unwrap();
        assert_eq!((c.max_concurrent_downloads, c.max_concurrent_uploads), (7, 2));
        let file = parse(r#"{"max-concurrent-uploads": -1}"#).unwrap();
        assert_eq!(merge(&cli(&[]), file, Path::new("f")).unwrap_err(), "invalid max concurrent uploads: -1");
    }

    #[test]
    fn file_values_apply_when_no_flag() {
        let file = parse(r#"{"data-root": "/srv/berth", "hosts": ["unix:///x.sock"], "debug": true}"#).unwrap();
        let c = merge(&cli(&["--exec-root", "/run/b"]), file, Path::new("f")).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/srv/berth"));
        assert_eq!(c.exec_root, PathBuf::from("/run/b"));
        assert_eq!(c.hosts, ["unix:///x.sock"]);
        assert!(c.debug);
    }

    #[test]
    fn conflicts_name_both_values() {
        let file = parse(r#"{"debug": false, "hosts": ["unix:///x.sock"]}"#).unwrap();
        let err = merge(&cli(&["-D", "-H", "unix:///y.sock"]), file, Path::new("f")).unwrap_err();
        assert_eq!(
            err,
            "the following directives are specified both as a flag and in the configuration file: \
             hosts: (from flag: [unix:///y.sock], from file: [unix:///x.sock]), \
             debug: (from flag: true, from file: false)"
        );
    }

    #[test]
    fn tlsverify_implies_tls_and_tls_false_is_remembered() {
        let c = merge(&cli(&["--tlsverify", "--tlscacert", "/ca"]), ParsedFile::default(), Path::new("f")).unwrap();
        let tls = c.tls.unwrap();
        assert!(tls.verify);
        assert_eq!(tls.ca_cert, PathBuf::from("/ca"));
        let c = merge(&cli(&["--tls=false"]), ParsedFile::default(), Path::new("f")).unwrap();
        assert!(c.tls.is_none() && c.tls_explicitly_off);
    }
}
