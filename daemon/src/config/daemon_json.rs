//! `daemon.json`: dockerd's key names, parsed strictly.
//!
//! Keys berthd honours are fields of [`DaemonJson`]. Keys dockerd knows but
//! berthd does not honour yet are accepted with a start-up warning, so a
//! working dockerd configuration never stops berthd from starting; any other
//! key is an error, as in dockerd.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DaemonJson {
    pub hosts: Option<Vec<String>>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub containerd: Option<PathBuf>,
    pub containerd_namespace: Option<String>,
    pub storage_driver: Option<String>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    pub pidfile: Option<PathBuf>,
    pub group: Option<String>,
    pub tls: Option<bool>,
    #[serde(rename = "tlsverify")]
    pub tls_verify: Option<bool>,
    #[serde(rename = "tlscacert")]
    pub tls_ca_cert: Option<PathBuf>,
    #[serde(rename = "tlscert")]
    pub tls_cert: Option<PathBuf>,
    #[serde(rename = "tlskey")]
    pub tls_key: Option<PathBuf>,
    pub live_restore: Option<bool>,
    pub shutdown_timeout: Option<i64>,
    pub labels: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub max_concurrent_downloads: Option<i64>,
    pub max_concurrent_uploads: Option<i64>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub fixed_cidr: Option<String>,
    pub ipv6: Option<bool>,
    pub fixed_cidr_v6: Option<String>,
    pub bip6: Option<String>,
    pub default_gateway: Option<String>,
    pub default_gateway_v6: Option<String>,
    pub ip6tables: Option<bool>,
    pub mtu: Option<i64>,
    pub ip_forward: Option<bool>,
    pub ip_masq: Option<bool>,
    pub iptables: Option<bool>,
    pub icc: Option<bool>,
    pub ip: Option<String>,
    pub userland_proxy: Option<bool>,
    pub host_gateway_ip: Option<String>,
    pub default_address_pools: Option<Vec<super::AddressPool>>,
    pub default_ulimits: Option<BTreeMap<String, super::container_defaults::Ulimit>>,
    pub init: Option<bool>,
    pub init_path: Option<PathBuf>,
    pub default_ipc_mode: Option<String>,
    pub default_cgroupns_mode: Option<String>,
    pub default_shm_size: Option<String>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_opts: Option<Vec<String>>,
    pub log_driver: Option<String>,
    pub log_opts: Option<BTreeMap<String, String>>,
    pub runtimes: Option<BTreeMap<String, super::container_defaults::RuntimeConfig>>,
    pub default_runtime: Option<String>,
    pub log_format: Option<String>,
    pub metrics_addr: Option<String>,
}

/// Keys that dockerd accepts and berthd does not honour yet.
pub const NOT_YET_HONOURED: &[&str] = &[
    "allow-nondistributable-artifacts", "api-cors-header", "authorization-plugins",
    "builder", "cdi-spec-dirs", "cgroup-parent",
    "containerd-plugins-namespace", "cpu-rt-period", "cpu-rt-runtime", "cri-containerd",
    "default-network-opts",
    "exec-opts",
    "experimental", "features",
    "host-gateway-ips",
    "ip-forward-no-drop",
    "max-download-attempts", "min-api-version", "no-new-privileges",
    "node-generic-resources", "oom-score-adjust", "proxies", "raw-logs",
    "seccomp-profile", "selinux-enabled",
    "storage-opts", "swarm-default-advertise-addr",
    "userland-proxy-path", "userns-remap",
];

/// The keys [`DaemonJson`] honours, in dockerd's spelling.
pub const HONOURED: &[&str] = &[
    "hosts", "data-root", "exec-root", "containerd", "containerd-namespace", "storage-driver", "debug",
    "log-level", "pidfile", "group", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey",
    "live-restore", "shutdown-timeout", "labels", "registry-mirrors", "insecure-registries",
    "max-concurrent-downloads", "max-concurrent-uploads", "bridge", "bip", "fixed-cidr", "mtu",
    "ip-forward", "ip-masq", "iptables", "icc", "ip", "userland-proxy", "ipv6", "fixed-cidr-v6", "ip6tables",
    "bip6", "default-gateway", "default-gateway-v6", "host-gateway-ip", "default-address-pools",
    "default-ulimits", "init",
    "init-path", "default-ipc-mode", "default-cgroupns-mode", "default-shm-size", "dns", "dns-search", "dns-opts",
    "log-driver", "log-opts", "runtimes", "default-runtime", "log-format", "metrics-addr",
];

/// A parsed file: the typed keys, the raw values (for conflict messages) and
/// the dockerd keys that were present but are not honoured yet.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    pub config: DaemonJson,
    pub raw: BTreeMap<String, serde_json::Value>,
    pub ignored: Vec<String>,
}

/// Why a daemon.json could not be used. The text after the file name follows
/// dockerd's wording.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    #[error("{0}")]
    Syntax(String),
    #[error("the following directives don't match any configuration option: {}", .0.join(", "))]
    UnknownKeys(Vec<String>),
    #[error("{0}")]
    BadValue(String),
}

pub fn parse(text: &str) -> Result<ParsedFile, FileError> {
    if text.trim().is_empty() {
        return Ok(ParsedFile::default());
    }
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| FileError::Syntax(e.to_string()))?;
    let unknown: Vec<String> = raw
        .keys()
        .filter(|k| !HONOURED.contains(&k.as_str()) && !NOT_YET_HONOURED.contains(&k.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(FileError::UnknownKeys(unknown));
    }
    let ignored: Vec<String> = raw
        .keys()
        .filter(|k| NOT_YET_HONOURED.contains(&k.as_str()))
        .cloned()
        .collect();
    let honoured: serde_json::Map<String, serde_json::Value> = raw
        .iter()
        .filter(|(k, _)| HONOURED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let config = serde_json::from_value(serde_json::Value::Object(honoured))
        .map_err(|e| FileError::BadValue(e.to_string()))?;
    Ok(ParsedFile { config, raw, ignored })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_key_in_honoured() {
        let all = r#"{"hosts":[],"data-root":"/d","exec-root":"/e","containerd":"/c",
            "containerd-namespace":"n","storage-driver":"vfs","debug":true,"log-level":"info","pidfile":"/p",
            "group":"g","tls":true,"tlsverify":true,"tlscacert":"/ca","tlscert":"/c",
            "tlskey":"/k","live-restore":true,"shutdown-timeout":15,"labels":["a=b"],"registry-mirrors":[],
            "insecure-registries":[],"max-concurrent-downloads":3,"max-concurrent-uploads":5,
            "bridge":"b0","bip":"10.1.0.1/24","fixed-cidr":"10.1.0.0/25","mtu":1500,"ip-forward":true,
            "ip-masq":true,"iptables":true,"icc":true,"ip":"0.0.0.0","userland-proxy":true,
            "ipv6":true,"fixed-cidr-v6":"fd00::/64","ip6tables":true,
            "bip6":"fd00::1/64","default-gateway":"10.1.0.2","default-gateway-v6":"fd00::2",
            "host-gateway-ip":"192.0.2.1","default-address-pools":[{"base":"10.9.0.0/16","size":24}],
            "default-ulimits":{"nofile":{"Name":"nofile","Soft":10,"Hard":20}},"init":true,
            "init-path":"/i","default-ipc-mode":"shareable","default-cgroupns-mode":"host",
            "default-shm-size":"64m",
            "dns":["1.1.1.1"],"dns-search":["a.test"],"dns-opts":["ndots:2"],
            "log-driver":"local","log-opts":{"max-size":"1m"},
            "runtimes":{"r1":{"path":"/bin/r1","runtimeArgs":["--x"]}},"default-runtime":"r1",
            "log-format":"json","metrics-addr":"127.0.0.1:9323"}"#;
        let parsed = parse(all).unwrap();
        assert_eq!(parsed.raw.len(), HONOURED.len());
        assert_eq!(parsed.config.containerd_namespace.as_deref(), Some("n"));
    }

    #[test]
    fn unknown_keys_are_listed() {
        let err = parse(r#"{"foo": 1, "debug": true, "bar": 2}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the following directives don't match any configuration option: bar, foo"
        );
    }

    #[test]
    fn dockerd_keys_not_yet_honoured_are_accepted_and_reported() {
        let parsed = parse(r#"{"raw-logs": true, "debug": true}"#).unwrap();
        assert_eq!(parsed.ignored, ["raw-logs"]);
        assert_eq!(parsed.config.debug, Some(true));
    }

    #[test]
    fn empty_file_is_empty_config() {
        assert_eq!(parse("  \n").unwrap().config, DaemonJson::default());
    }

    #[test]
    fn wrong_types_and_syntax_are_errors() {
        assert!(matches!(parse(r#"{"debug": "yes"}"#), Err(FileError::BadValue(_))));
        assert!(matches!(parse("{bad"), Err(FileError::Syntax(_))));
    }

    #[test]
    fn lists_do_not_overlap() {
        for k in HONOURED {
            assert!(!NOT_YET_HONOURED.contains(k), "{k}");
        }
    }
}
