//! Checks on a merged configuration. Pure: no I/O.

use super::hosts::{self, ListenAddr};
use super::Config;

pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "fatal", "panic"];

pub fn validate(config: &Config) -> Result<(), String> {
    if !LOG_LEVELS.contains(&config.log_level.as_str()) {
        return Err(format!("unable to parse logging level: {}", config.log_level));
    }
    if !matches!(config.log_format.as_str(), "text" | "json") {
        return Err(format!("invalid log format: {}", config.log_format));
    }
    if config.containerd_namespace.is_empty() || !valid_namespace(&config.containerd_namespace) {
        return Err(format!("invalid containerd namespace: {:?}", config.containerd_namespace));
    }
    for label in &config.labels {
        if !label.contains('=') {
            return Err(format!("bad attribute format: {label}"));
        }
    }
    for host in &config.hosts {
        let addr = hosts::parse(host, config.tls.is_some())?;
        if matches!(addr, ListenAddr::Tcp { .. }) && config.tls.is_none() && !config.tls_explicitly_off {
            return Err(tcp_without_tls(host));
        }
    }
    Ok(())
}

/// dockerd 27+ refuses an unencrypted TCP listener unless `--tls=false` is
/// given explicitly.
pub fn tcp_without_tls(host: &str) -> String {
    format!(
        "API-endpoint at {host} is configured without TLS; refusing to start. \
         Use --tlsverify (with --tlscacert, --tlscert, --tlskey) to protect it, \
         or --tls=false to run it unprotected anyway"
    )
}

/// containerd's rule for namespace names: a label of letters, digits, `_`,
/// `-` and `.`, starting with a letter or digit.
fn valid_namespace(ns: &str) -> bool {
    ns.len() <= 76
        && ns.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && ns.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let cli = Cli::try_parse_from(std::iter::once("berthd").chain(args.iter().copied())).unwrap();
        super::super::merge::merge(&cli, Default::default(), std::path::Path::new("f")).unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&config(&[])), Ok(()));
    }

    #[test]
    fn tcp_needs_tls_or_explicit_opt_out() {
        let err = validate(&config(&["-H", "tcp://127.0.0.1:2375"])).unwrap_err();
        assert!(err.contains("without TLS"), "{err}");
        assert_eq!(validate(&config(&["-H", "tcp://127.0.0.1:2375", "--tls=false"])), Ok(()));
        assert_eq!(validate(&config(&["-H", "tcp://127.0.0.1:2376", "--tlsverify"])), Ok(()));
    }

    #[test]
    fn bad_values() {
        assert_eq!(validate(&config(&["-l", "loud"])), Err("unable to parse logging level: loud".into()));
        assert!(validate(&config(&["-H", "udp://x"])).is_err());
        assert!(validate(&config(&["--containerd-namespace=-bad"])).is_err());
    }
}
