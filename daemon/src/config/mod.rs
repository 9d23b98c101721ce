//! The daemon's configuration: command line and daemon.json merged the way
//! dockerd merges them, then validated.

pub mod container_defaults;
pub mod daemon_json;
pub mod hosts;
pub mod merge;
pub mod reload;
pub mod validate;

use std::path::{Path, PathBuf};

use crate::cli::Cli;

pub const DEFAULT_CONFIG_FILE: &str = "/etc/docker/daemon.json";
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/var/run/berth";
pub const DEFAULT_PIDFILE: &str = "/var/run/docker.pid";
pub const DEFAULT_NAMESPACE: &str = "berth";
/// dockerd's default `shutdown-timeout`, in seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: i64 = 15;
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 3;
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 5;
pub const DEFAULT_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// TLS settings for TCP listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub verify: bool,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub config_file: PathBuf,
    pub hosts: Vec<String>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// `None`: use the system containerd if it answers, else start our own.
    pub containerd: Option<PathBuf>,
    pub containerd_namespace: String,
    /// The containerd snapshotter `storage-driver` names (`overlay2` →
    /// `overlayfs`, `vfs` → `native`, others as given).
    pub snapshotter: String,
    pub debug: bool,
    pub log_level: String,
    pub pidfile: PathBuf,
    /// `None`: the default (`docker` when that group exists, else root).
    pub group: Option<String>,
    /// `None` when TLS is off.
    pub tls: Option<TlsConfig>,
    /// The operator asked for plain TCP with an explicit `--tls=false`.
    pub tls_explicitly_off: bool,
    pub live_restore: bool,
    /// Seconds to wait for containers to stop at shutdown (negative: forever).
    pub shutdown_timeout: i64,
    pub labels: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    /// Layers pulled at once (`max-concurrent-downloads`, default 3).
    pub max_concurrent_downloads: usize,
    /// Layers pushed at once (`max-concurrent-uploads`, default 5).
    pub max_concurrent_uploads: usize,
    /// What new containers get unless they say otherwise.
    pub container_defaults: container_defaults::ContainerDefaults,
    /// daemon.json `dns`, `dns-search`, `dns-opts`: containers' defaults.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opts: Vec<String>,
    /// dockerd keys present in the file that berthd does not honour yet.
    pub ignored_keys: Vec<String>,
    /// Every key the file set: a reload changes only those (dockerd's
    /// `IsValueSet`).
    pub file_keys: std::collections::BTreeSet<String>,
    /// `log-format`: `text` (default) or `json`.
    pub log_format: String,
    /// `metrics-addr`: where Prometheus metrics are served, if anywhere.
    pub metrics_addr: Option<String>,
    pub network: NetworkConfig,
}

/// The default bridge and the host's firewall, as dockerd's flags set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `--bridge`: the default bridge's interface; `none` disables it.
    pub bridge: Option<String>,
    /// `--bip`: the bridge's address with its prefix (`172.17.0.1/16`).
    pub bip: Option<String>,
    /// `--fixed-cidr`: containers' addresses come from this part of it.
    pub fixed_cidr: Option<String>,
    /// `--ipv6`: the default bridge has IPv6 (its subnet from `--bip6`,
    /// else `--fixed-cidr-v6`, else the IPv6 pools, as dockerd 28).
    pub ipv6: bool,
    pub fixed_cidr_v6: Option<String>,
    /// `--bip6`: the bridge's IPv6 address with its prefix.
    pub bip6: Option<String>,
    /// `--default-gateway(-v6)`: the default bridge's containers route
    /// through this router instead of the bridge's address.
    pub default_gateway: Option<std::net::Ipv4Addr>,
    pub default_gateway_v6: Option<std::net::Ipv6Addr>,
    /// `--ip6tables`: IPv6 rules as the IPv4 ones (dockerd 28's default).
    pub ip6tables: bool,
    /// `--userland-proxy`: the host's own traffic to published ports
    /// through berthd's listeners; `false` for hairpin NAT, as dockerd.
    pub userland_proxy: bool,
    pub mtu: u32,
    pub ip_forward: bool,
    pub ip_masq: bool,
    pub iptables: bool,
    pub icc: bool,
    /// `--ip`: the default host address of published ports.
    pub default_bind_ip: String,
    /// `host-gateway-ip`: what `--add-host name:host-gateway` maps to
    /// (else the default bridge's address).
    pub host_gateway_ip: Option<std::net::Ipv4Addr>,
    /// `default-address-pools`: where user networks' subnets come from
    /// (dockerd's pools when empty).
    pub address_pools: Vec<AddressPool>,
}

/// One `default-address-pools` entry: `base` cut into subnets of `size`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            bridge: None,
            bip: None,
            fixed_cidr: None,
            ipv6: false,
            fixed_cidr_v6: None,
            bip6: None,
            default_gateway: None,
            default_gateway_v6: None,
            ip6tables: true,
            userland_proxy: true,
            mtu: 1500,
            ip_forward: true,
            ip_masq: true,
            iptables: true,
            icc: true,
            default_bind_ip: "0.0.0.0".into(),
            host_gateway_ip: None,
            address_pools: Vec::new(),
        }
    }
}

/// A configuration that cannot be used; the text is what dockerd prints.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unable to configure the Docker daemon with file {}: {reason}", .file.display())]
    File { file: PathBuf, reason: String },
    #[error("unable to configure the Docker daemon with file {}: open {}: no such file or directory", .0.display(), .0.display())]
    MissingFile(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

/// Read the configuration file (a missing default file is fine, a missing
/// named one is not), merge it with the flags and validate the result.
pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
    let (path, named) = match &cli.config_file {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let parsed = match std::fs::read_to_string(&path) {
        Ok(text) => daemon_json::parse(&text).map_err(|e| file_error(&path, e.to_string()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => Default::default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::MissingFile(path))
        }
        Err(e) => return Err(file_error(&path, e.to_string())),
    };
    let config = merge::merge(cli, parsed, &path).map_err(|reason| file_error(&path, reason))?;
    validate::validate(&config).map_err(ConfigError::Invalid)?;
    Ok(config)
}

fn file_error(file: &Path, reason: String) -> ConfigError {
    ConfigError::File { file: file.to_path_buf(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Every example in `configs/` loads and validates.
    #[test]
    fn example_configs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let cli = Cli::try_parse_from(["berthd", "--config-file", path.to_str().unwrap()]).unwrap();
                let config = load(&cli).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(config.ignored_keys.is_empty(), "{}: {:?}", path.display(), config.ignored_keys);
                seen += 1;
            }
        }
        assert!(seen >= 2);
    }

    #[test]
    fn missing_named_file_is_an_error_but_missing_default_is_not() {
        let cli = Cli::try_parse_from(["berthd", "--config-file", "/nonexistent/daemon.json"]).unwrap();
        assert_eq!(
            load(&cli).unwrap_err().to_string(),
            "unable to configure the Docker daemon with file /nonexistent/daemon.json: \
             open /nonexistent/daemon.json: no such file or directory"
        );
    }
}
