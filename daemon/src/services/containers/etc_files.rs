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

/// What a container's `/etc/resolv.conf` is made of: its `--dns`,
/// `--dns-search`, `--dns-option` (else daemon.json's), and whether it
/// is on a user-defined network, whose resolver is the embedded 127.0.0.11.
#[derive(Debug, Clone, Default)]
pub struct Resolv {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    pub embedded: bool,
}

/// One `/etc/hosts` line beyond the defaults (`--add-host`, links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: String,
    pub names: String,
}

fn entries(extra: &[HostEntry]) -> String {
    extra.iter().map(|e| format!("{}\t{}\n", e.ip, e.names)).collect()
}

/// Write the three files for a container on its own network namespace or
/// the host's; `extra` (`--add-host`) follows the default hosts lines.
pub fn write(dir: &Path, hostname: &str, host_network: bool, resolv: &Resolv, extra: &[HostEntry]) -> std::io::Result<EtcFiles> {
    std::fs::create_dir_all(dir)?;
    let files = EtcFiles {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
    };
    std::fs::write(&files.hostname, format!("{hostname}\n"))?;
    let mut hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS_HEADER.to_string())
    } else {
        HOSTS_HEADER.to_string()
    };
    if !hosts.is_empty() && !hosts.ends_with('\n') {
        hosts.push('\n');
    }
    hosts.push_str(&entries(extra));
    std::fs::write(&files.hosts, hosts)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(&files.resolv_conf, resolv_conf_for_container(&host_resolv, host_network, resolv))?;
    Ok(files)
}

/// Rewrite `/etc/hosts` in place (it may be bind-mounted already): the
/// defaults, `extra` (`--add-host`, then links), and last the container's
/// address on its network, in dockerd's order.
/// `ip6` (on a network with IPv6) gets its line too, as with dockerd.
pub fn write_hosts(path: &Path, hostname: &str, ip: &str, ip6: &str, extra: &[HostEntry]) -> std::io::Result<()> {
    let v6 = if ip6.is_empty() { String::new() } else { format!("{ip6}\t{hostname}\n") };
    std::fs::write(path, format!("{HOSTS_HEADER}{}{ip}\t{hostname}\n{v6}", entries(extra)))
}

/// Rewrite a container's resolv.conf in place (it may be bind-mounted).
pub fn rewrite_resolv(path: &Path, resolv: &Resolv) -> std::io::Result<()> {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(path, resolv_conf_for_container(&host_resolv, false, resolv))
}

/// The words after the last `keyword` line of a resolv.conf.
fn last_line_words(text: &str, keyword: &str) -> Vec<String> {
    text.lines()
        .rev()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(keyword)).then(|| words.map(str::to_string).collect::<Vec<_>>())
        })
        .unwrap_or_default()
}

fn is_loopback_nameserver(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some("nameserver") && words.next().is_some_and(|ip| ip.starts_with("127.") || ip == "::1")
}

/// A container's resolv.conf, as dockerd builds it: the host's file (on a
/// private namespace without its loopback nameservers, which cannot be
/// reached from there), or one built from the container's DNS settings
/// with the host's filling what they leave out; on a user-defined network
/// the only nameserver is the embedded one, with `ndots:0` unless the
/// options set ndots.
pub fn resolv_conf_for_container(host: &str, host_network: bool, r: &Resolv) -> String {
    let custom = !r.servers.is_empty() || !r.search.is_empty() || !r.options.is_empty();
    if !custom && !r.embedded {
        if host_network {
            return host.to_string();
        }
        return host.lines().filter(|l| !is_loopback_nameserver(l)).map(|l| format!("{l}\n")).collect();
    }
    let pick = |own: &Vec<String>, keyword: &str| if own.is_empty() { last_line_words(host, keyword) } else { own.clone() };
    let search = pick(&r.search, "search");
    let mut options = pick(&r.options, "options");
    let mut servers = if r.servers.is_empty() {
        host.lines()
            .filter(|l| host_network || !is_loopback_nameserver(l))
            .filter_map(|l| l.strip_prefix("nameserver").map(|ip| ip.trim().to_string()))
            .collect()
    } else {
        r.servers.clone()
    };
    if r.embedded {
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".to_string());
        }
        // The embedded server forwards to every server, IPv6 ones too, as
        // dockerd 28 (20.10 listed those after it).
        servers = vec![crate::backends::network::dns::ADDRESS.to_string()];
    }
    let mut out = String::new();
    let search = search.join(" ");
    if !search.is_empty() && search.trim() != "." {
        out.push_str(&format!("search {search}\n"));
    }
    for server in servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_dropped_off_host_network() {
        let host = "search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions ndots:1\n";
        assert_eq!(
            resolv_conf_for_container(host, false, &Resolv::default()),
            "search example.org\nnameserver 10.0.0.2\noptions ndots:1\n"
        );
        assert_eq!(resolv_conf_for_container(host, true, &Resolv::default()), host);
    }

    #[test]
    fn user_networks_get_the_embedded_resolver() {
        let host = "search example.org\nnameserver 127.0.0.53\noptions edns0\n";
        let embedded = Resolv { embedded: true, ..Default::default() };
        assert_eq!(
            resolv_conf_for_container(host, false, &embedded),
            "search example.org\nnameserver 127.0.0.11\noptions edns0 ndots:0\n"
        );
        let own = Resolv {
            servers: vec!["1.1.1.1".into(), "2001:db8::1".into()],
            search: vec!["a.test".into(), "b.test".into()],
            options: vec!["ndots:2".into()],
            embedded: true,
        };
        assert_eq!(
            resolv_conf_for_container(host, false, &own),
            "search a.test b.test\nnameserver 127.0.0.11\noptions ndots:2\n"
        );
        let bridge = Resolv { embedded: false, ..own };
        assert_eq!(
            resolv_conf_for_container(host, false, &bridge),
            "search a.test b.test\nnameserver 1.1.1.1\nnameserver 2001:db8::1\noptions ndots:2\n"
        );
        let only_search = Resolv { search: vec![".".into()], ..Default::default() };
        assert_eq!(resolv_conf_for_container(host, false, &only_search), "options edns0\n");
    }

    #[test]
    fn files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "abc123", false, &Resolv::default(), &[]).unwrap();
        assert_eq!(std::fs::read_to_string(f.hostname).unwrap(), "abc123\n");
        assert!(std::fs::read_to_string(f.hosts).unwrap().starts_with("127.0.0.1\tlocalhost"));
    }
}
