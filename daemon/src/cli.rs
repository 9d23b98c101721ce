//! The command line, with dockerd's flag names, short forms and defaults.
//!
//! Every setting that daemon.json can also carry is an `Option` here, so the
//! merge can tell "given on the command line" from "left at its default".

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "berthd",
    about = "A self-sufficient runtime for containers, on containerd",
    disable_version_flag = true,
    // As with dockerd, a flag given twice takes the last value.
    args_override_self = true
)]
pub struct Cli {
    /// Daemon socket(s) to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    pub hosts: Vec<String>,

    /// Daemon configuration file
    #[arg(long = "config-file", value_name = "string")]
    pub config_file: Option<PathBuf>,

    /// Root directory of persistent berthd state
    #[arg(long = "data-root", value_name = "string")]
    pub data_root: Option<PathBuf>,

    /// Root directory for execution state files
    #[arg(long = "exec-root", value_name = "string")]
    pub exec_root: Option<PathBuf>,

    /// containerd grpc address
    #[arg(long = "containerd", value_name = "string")]
    pub containerd: Option<PathBuf>,

    /// containerd namespace to use
    #[arg(long = "containerd-namespace", value_name = "string")]
    pub containerd_namespace: Option<String>,

    /// Storage driver to use
    #[arg(short = 's', long = "storage-driver", value_name = "string")]
    pub storage_driver: Option<String>,

    /// Enable debug mode
    #[arg(short = 'D', long = "debug", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub debug: Option<bool>,

    /// Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")
    #[arg(short = 'l', long = "log-level", value_name = "string")]
    pub log_level: Option<String>,

    /// Path to use for daemon PID file
    #[arg(short = 'p', long = "pidfile", value_name = "string")]
    pub pidfile: Option<PathBuf>,

    /// Group for the unix socket
    #[arg(short = 'G', long = "group", value_name = "string")]
    pub group: Option<String>,

    /// Use TLS; implied by --tlsverify
    #[arg(long = "tls", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub tls: Option<bool>,

    /// Use TLS and verify the remote
    #[arg(long = "tlsverify", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub tls_verify: Option<bool>,

    /// Trust certs signed only by this CA
    #[arg(long = "tlscacert", value_name = "string")]
    pub tls_ca_cert: Option<PathBuf>,

    /// Path to TLS certificate file
    #[arg(long = "tlscert", value_name = "string")]
    pub tls_cert: Option<PathBuf>,

    /// Path to TLS key file
    #[arg(long = "tlskey", value_name = "string")]
    pub tls_key: Option<PathBuf>,

    /// Enable live restore of containers when the daemon stops
    #[arg(long = "live-restore", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub live_restore: Option<bool>,

    /// Set the default shutdown timeout
    #[arg(long = "shutdown-timeout", value_name = "int", allow_negative_numbers = true)]
    pub shutdown_timeout: Option<i64>,

    /// Set the max concurrent downloads
    #[arg(long = "max-concurrent-downloads", value_name = "int", allow_negative_numbers = true)]
    pub max_concurrent_downloads: Option<i64>,

    /// Set the max concurrent uploads
    #[arg(long = "max-concurrent-uploads", value_name = "int", allow_negative_numbers = true)]
    pub max_concurrent_uploads: Option<i64>,

    /// Attach containers to a network bridge
    #[arg(short = 'b', long = "bridge", value_name = "string")]
    pub bridge: Option<String>,

    /// Network bridge IP
    #[arg(long = "bip", value_name = "string")]
    pub bip: Option<String>,

    /// IPv4 subnet for fixed IPs
    #[arg(long = "fixed-cidr", value_name = "string")]
    pub fixed_cidr: Option<String>,

    /// Enable IPv6 networking
    #[arg(long = "ipv6", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub ipv6: Option<bool>,

    /// IPv6 subnet for fixed IPs
    #[arg(long = "fixed-cidr-v6", value_name = "string")]
    pub fixed_cidr_v6: Option<String>,

    /// Network bridge IPv6 address
    #[arg(long = "bip6", value_name = "string")]
    pub bip6: Option<String>,

    /// Container default gateway IPv4 address
    #[arg(long = "default-gateway", value_name = "ip")]
    pub default_gateway: Option<String>,

    /// Container default gateway IPv6 address
    #[arg(long = "default-gateway-v6", value_name = "ip")]
    pub default_gateway_v6: Option<String>,

    /// Use userland proxy for loopback traffic
    #[arg(long = "userland-proxy", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub userland_proxy: Option<bool>,

    /// Enable addition of ip6tables rules
    #[arg(long = "ip6tables", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub ip6tables: Option<bool>,

    /// Set the containers network MTU
    #[arg(long = "mtu", value_name = "int")]
    pub mtu: Option<i64>,

    /// Enable net.ipv4.ip_forward
    #[arg(long = "ip-forward", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub ip_forward: Option<bool>,

    /// Enable IP masquerading
    #[arg(long = "ip-masq", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub ip_masq: Option<bool>,

    /// Enable addition of iptables rules
    #[arg(long = "iptables", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub iptables: Option<bool>,

    /// Enable inter-container communication
    #[arg(long = "icc", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub icc: Option<bool>,

    /// Default IP when binding container ports
    #[arg(long = "ip", value_name = "ip")]
    pub ip: Option<String>,

    /// Default ulimits for containers (repeatable, e.g. nofile=1024:2048)
    #[arg(long = "default-ulimit", value_name = "ulimit")]
    pub default_ulimits: Vec<String>,

    /// Run an init in the container to forward signals and reap processes
    #[arg(long = "init", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "bool")]
    pub init: Option<bool>,

    /// Path to the docker-init binary
    #[arg(long = "init-path", value_name = "string")]
    pub init_path: Option<PathBuf>,

    /// Default mode for containers ipc ("shareable" | "private")
    #[arg(long = "default-ipc-mode", value_name = "string")]
    pub default_ipc_mode: Option<String>,

    /// Default mode for containers cgroup namespace ("host" | "private")
    #[arg(long = "default-cgroupns-mode", value_name = "string")]
    pub default_cgroupns_mode: Option<String>,

    /// Default shm size for containers
    #[arg(long = "default-shm-size", value_name = "bytes")]
    pub default_shm_size: Option<String>,

    /// Register an additional OCI compatible runtime (name=path, repeatable)
    #[arg(long = "add-runtime", value_name = "runtime")]
    pub add_runtimes: Vec<String>,

    /// Default OCI runtime for containers
    #[arg(long = "default-runtime", value_name = "string")]
    pub default_runtime: Option<String>,

    /// Default driver for container logs
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,

    /// Default log driver options for containers (repeatable, key=value)
    #[arg(long = "log-opt", value_name = "map")]
    pub log_opts: Vec<String>,

    /// Set the logging format ("text"|"json")
    #[arg(long = "log-format", value_name = "string")]
    pub log_format: Option<String>,

    /// Set default address and port to serve the metrics api on
    #[arg(long = "metrics-addr", value_name = "string")]
    pub metrics_addr: Option<String>,

    /// Validate daemon configuration and exit
    #[arg(long = "validate")]
    pub validate: bool,

    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("berthd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn repeated_hosts_and_short_forms() {
        let cli = parse(&["-H", "unix:///a.sock", "--host", "tcp://127.0.0.1:2375", "-D", "-l", "warn"]);
        assert_eq!(cli.hosts, ["unix:///a.sock", "tcp://127.0.0.1:2375"]);
        assert_eq!(cli.debug, Some(true));
        assert_eq!(cli.log_level.as_deref(), Some("warn"));
    }

    #[test]
    fn last_value_wins() {
        let cli = parse(&["--data-root", "/a", "--data-root", "/b", "-H", "unix:///x", "-H", "unix:///y"]);
        assert_eq!(cli.data_root, Some("/b".into()));
        assert_eq!(cli.hosts, ["unix:///x", "unix:///y"]);
    }

    #[test]
    fn explicit_false_booleans() {
        let cli = parse(&["--tls=false", "--debug=false"]);
        assert_eq!(cli.tls, Some(false));
        assert_eq!(cli.debug, Some(false));
        assert_eq!(parse(&[]).tls, None);
    }
}
