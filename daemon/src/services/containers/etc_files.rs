//! The `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` each container
//! gets, written into its directory and bind-mounted, as dockerd does.

use std::path::Path;

use crate::backends::oci_spec::EtcFiles;

const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

/// Write the three files for a container on its own network namespace or
/// the host's.
pub fn write(dir: &Path, hostname: &str, host_network: bool) -> std::io::Result<EtcFiles> {
    std::fs::create_dir_all(dir)?;
    let files = EtcFiles {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
    };
    std::fs::write(&files.hostname, format!("{hostname}\n"))?;
    let hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS_HEADER.to_string())
    } else {
        HOSTS_HEADER.to_string()
    };
    std::fs::write(&files.hosts, hosts)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(&files.resolv_conf, resolv_conf_for_container(&host_resolv, host_network))?;
    Ok(files)
}

/// Rewrite `/etc/hosts` in place (it may be bind-mounted already) with
/// the container's address on its network.
pub fn write_hosts(path: &Path, hostname: &str, ip: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{HOSTS_HEADER}{ip}\t{hostname}\n"))
}

/// The host's resolv.conf; on a private network namespace, loopback
/// nameservers cannot be reached and are dropped (dockerd then falls back to
/// public resolvers; offline we fall back to none).
pub fn resolv_conf_for_container(host: &str, host_network: bool) -> String {
    if host_network {
        return host.to_string();
    }
    host.lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            !(words.next() == Some("nameserver")
                && words.next().is_some_and(|ip| ip.starts_with("127.") || ip == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_dropped_off_host_network() {
        let host = "search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions ndots:1\n";
        assert_eq!(
            resolv_conf_for_container(host, false),
            "search example.org\nnameserver 10.0.0.2\noptions ndots:1\n"
        );
        assert_eq!(resolv_conf_for_container(host, true), host);
    }

    #[test]
    fn files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "abc123", false).unwrap();
        assert_eq!(std::fs::read_to_string(f.hostname).unwrap(), "abc123\n");
        assert!(std::fs::read_to_string(f.hosts).unwrap().starts_with("127.0.0.1\tlocalhost"));
    }
}
