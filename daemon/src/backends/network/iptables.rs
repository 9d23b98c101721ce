//! berthd's firewall rules, in chains of its own (BERTHD-*) hooked from the
//! built-in chains: masquerade for bridge subnets, isolation between bridge
//! networks, internal networks, inter-container communication, and DNAT for
//! published ports.
//!
//! The chains' whole content is rendered from the networks' state and loaded
//! with one `iptables-restore --noflush` (a declared chain is flushed and
//! refilled atomically per table), so rules are restored at start and never
//! drift from the state; the jumps from the built-in chains are added once.
//! `iptables` is whatever the host's alternative is (legacy or nft).

use std::fmt::Write as _;

use super::{bridge::run, NetworkError};

/// One bridge network's part of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnet: String,
    pub internal: bool,
    pub masquerade: bool,
    pub icc: bool,
    /// Opened between linked containers when `icc` is off.
    pub links: Vec<LinkRule>,
}

/// A parent's way to one exposed port of a linked child, and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRule {
    pub parent_ip: String,
    pub child_ip: String,
    pub proto: String,
    pub port: u16,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub proto: String,
    /// `None` for every address (0.0.0.0).
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_ip: String,
    pub container_port: u16,
    pub bridge: String,
}

const NAT: &str = "BERTHD";
const POSTROUTING: &str = "BERTHD-POSTROUTING";
const FORWARD: &str = "BERTHD-FORWARD";
const ISOLATION_1: &str = "BERTHD-ISOLATION-STAGE-1";
const ISOLATION_2: &str = "BERTHD-ISOLATION-STAGE-2";

/// Which address family's tables: `iptables` or `ip6tables`, the same
/// chains in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    fn restore(self) -> &'static str {
        match self {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        }
    }

    fn host_bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// `ip:port` as DNAT takes it.
    fn destination(self, ip: &str, port: u16) -> String {
        match self {
            Family::V4 => format!("{ip}:{port}"),
            Family::V6 => format!("[{ip}]:{port}"),
        }
    }

    /// The jumps into our chains: (table, built-in chain, match and
    /// target). With `hairpin` (no userland proxy) the host's IPv4
    /// loopback traffic is DNATed too (route_localnet), as dockerd's; IPv6
    /// has no route_localnet, so `::1` is never DNATed (as dockerd 28) and
    /// berthd's `[::]` socket serves it instead.
    fn jumps(self, hairpin: bool) -> [(&'static str, &'static str, &'static str); 4] {
        let output = match (self, hairpin) {
            (Family::V4, true) => LOCAL_OUTPUT,
            (Family::V4, false) => "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BERTHD",
            (Family::V6, _) => "! -d ::1/128 -m addrtype --dst-type LOCAL -j BERTHD",
        };
        [
            ("nat", "PREROUTING", "-m addrtype --dst-type LOCAL -j BERTHD"),
            ("nat", "OUTPUT", output),
            ("nat", "POSTROUTING", "-j BERTHD-POSTROUTING"),
            ("filter", "FORWARD", "-j BERTHD-FORWARD"),
        ]
    }
}

/// The OUTPUT jump without the loopback exception (`userland-proxy:
/// false`).
const LOCAL_OUTPUT: &str = "-m addrtype --dst-type LOCAL -j BERTHD";

/// Hairpin NAT instead of the in-process proxy (`userland-proxy: false`):
/// the host's own connections to published ports, loopback included, are
/// DNATed and leave towards the bridge masqueraded; containers reach
/// published ports through the host's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hairpin(pub bool);

/// The `iptables-restore` (`ip6tables-restore`) input for both tables;
/// subnets and addresses are of `family`.
pub fn render(family: Family, hairpin: Hairpin, bridges: &[BridgeRules], ports: &[PortRule]) -> String {
    let bits = family.host_bits();
    let mut nat = String::from("*nat\n");
    for chain in [NAT, POSTROUTING] {
        let _ = writeln!(nat, ":{chain} - [0:0]");
    }
    if hairpin.0 {
        for b in bridges {
            let _ = writeln!(nat, "-A {POSTROUTING} -o {} -m addrtype --src-type LOCAL -j MASQUERADE", b.bridge);
        }
    }
    for b in bridges.iter().filter(|b| b.masquerade && !b.internal) {
        let _ = writeln!(nat, "-A {POSTROUTING} -s {} ! -o {} -j MASQUERADE", b.subnet, b.bridge);
    }
    // A container reaching its own published port comes back to itself.
    for p in ports {
        let _ = writeln!(
            nat,
            "-A {POSTROUTING} -s {cip}/{bits} -d {cip}/{bits} -p {proto} -m {proto} --dport {cp} -j MASQUERADE",
            cip = p.container_ip,
            proto = p.proto,
            cp = p.container_port,
        );
    }
    for p in ports {
        let dst = p.host_ip.as_ref().map(|ip| format!("-d {ip}/{bits} ")).unwrap_or_default();
        // Without the proxy, containers come in through their bridge too.
        let from = if hairpin.0 { String::new() } else { format!("! -i {} ", p.bridge) };
        let _ = writeln!(
            nat,
            "-A {NAT} {dst}{from}-p {proto} -m {proto} --dport {hp} -j DNAT --to-destination {to}",
            proto = p.proto,
            hp = p.host_port,
            to = family.destination(&p.container_ip, p.container_port),
        );
    }
    nat.push_str("COMMIT\n");

    let mut filter = String::from("*filter\n");
    for chain in [FORWARD, ISOLATION_1, ISOLATION_2] {
        let _ = writeln!(filter, ":{chain} - [0:0]");
    }
    let _ = writeln!(filter, "-A {FORWARD} -j {ISOLATION_1}");
    for b in bridges {
        let _ = writeln!(filter, "-A {ISOLATION_1} -i {br} ! -o {br} -j {ISOLATION_2}", br = b.bridge);
        let _ = writeln!(filter, "-A {ISOLATION_2} -o {} -j DROP", b.bridge);
        if b.internal {
            let _ = writeln!(filter, "-A {FORWARD} -i {br} ! -o {br} -j DROP", br = b.bridge);
            let _ = writeln!(filter, "-A {FORWARD} -o {br} ! -i {br} -j DROP", br = b.bridge);
        }
    }
    for p in ports {
        let _ = writeln!(
            filter,
            "-A {FORWARD} -d {cip}/{bits} ! -i {br} -o {br} -p {proto} -m {proto} --dport {cp} -j ACCEPT",
            cip = p.container_ip,
            br = p.bridge,
            proto = p.proto,
            cp = p.container_port,
        );
    }
    for b in bridges {
        let br = &b.bridge;
        let _ = writeln!(filter, "-A {FORWARD} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        if !b.internal {
            let _ = writeln!(filter, "-A {FORWARD} -i {br} ! -o {br} -j ACCEPT");
        }
        if !b.icc {
            for l in &b.links {
                let _ = writeln!(
                    filter,
                    "-A {FORWARD} -s {p}/{bits} -d {c}/{bits} -i {br} -o {br} -p {proto} -m {proto} --dport {port} -j ACCEPT",
                    p = l.parent_ip,
                    c = l.child_ip,
                    proto = l.proto,
                    port = l.port,
                );
                let _ = writeln!(
                    filter,
                    "-A {FORWARD} -s {c}/{bits} -d {p}/{bits} -i {br} -o {br} -p {proto} -m {proto} --sport {port} -j ACCEPT",
                    p = l.parent_ip,
                    c = l.child_ip,
                    proto = l.proto,
                    port = l.port,
                );
            }
        }
        let _ = writeln!(filter, "-A {FORWARD} -i {br} -o {br} -j {}", if b.icc { "ACCEPT" } else { "DROP" });
        // Nothing else enters a bridge from outside: only replies and
        // published ports do, as under dockerd.
        let _ = writeln!(filter, "-A {FORWARD} -o {br} -j DROP");
    }
    filter.push_str("COMMIT\n");
    nat + &filter
}

/// Load the rules and make sure the built-in chains jump to ours.
pub async fn apply(family: Family, hairpin: Hairpin, bridges: &[BridgeRules], ports: &[PortRule]) -> Result<(), NetworkError> {
    let rules = render(family, hairpin, bridges, ports);
    if loaded(family).as_deref() == Some(rules.as_str()) {
        return Ok(());
    }
    run(family.restore(), &["--noflush", "-w"], Some(&rules)).await?;
    // The other mode's OUTPUT jump, left by a previous run, goes.
    let (_, _, stale) = family.jumps(!hairpin.0)[1];
    let (_, _, current) = family.jumps(hairpin.0)[1];
    // IPv6 has one OUTPUT jump for both modes; an older berthd's hairpin
    // one (without the `::1` exception) goes too.
    let stale = if stale == current { LOCAL_OUTPUT } else { stale };
    let stale: Vec<&str> = stale.split(' ').collect();
    let mut delete = vec!["-w", "-t", "nat", "-D", "OUTPUT"];
    delete.extend(&stale);
    while run(family.tool(), &delete, None).await.is_ok() {}
    for (table, chain, rule) in family.jumps(hairpin.0) {
        let rule: Vec<&str> = rule.split(' ').collect();
        let mut check = vec!["-w", "-t", table, "-C", chain];
        check.extend(&rule);
        if run(family.tool(), &check, None).await.is_err() {
            let mut insert = vec!["-w", "-t", table, "-I", chain, "1"];
            insert.extend(&rule);
            run(family.tool(), &insert, None).await?;
        }
    }
    *loaded(family) = Some(rules);
    Ok(())
}

/// The rules last loaded by this process: most container starts and exits
/// (no published port) leave them as they are, and then cost no iptables
/// run. The caller serializes changes, so this is never stale.
fn loaded(family: Family) -> std::sync::MutexGuard<'static, Option<String>> {
    static V4: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    static V6: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    match family {
        Family::V4 => &V4,
        Family::V6 => &V6,
    }
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

/// Take out the jumps and our chains, leaving everything else as found.
pub async fn remove_all(family: Family) -> Result<(), NetworkError> {
    *loaded(family) = None;
    let tool = family.tool();
    let both = family.jumps(false).into_iter().chain(std::iter::once(("nat", "OUTPUT", LOCAL_OUTPUT)));
    for (table, chain, rule) in both {
        let rule: Vec<&str> = rule.split(' ').collect();
        let mut delete = vec!["-w", "-t", table, "-D", chain];
        delete.extend(&rule);
        // Repeated in case an earlier crash left a duplicate.
        while run(tool, &delete, None).await.is_ok() {}
    }
    let mut failures = Vec::new();
    for (table, chains) in [("nat", &[NAT, POSTROUTING][..]), ("filter", &[FORWARD, ISOLATION_1, ISOLATION_2][..])] {
        for chain in chains {
            let _ = run(tool, &["-w", "-t", table, "-F", chain], None).await;
        }
        for chain in chains {
            if let Err(e) = run(tool, &["-w", "-t", table, "-X", chain], None).await {
                if !e.0.contains("No chain") && !e.0.contains("does not exist") {
                    failures.push(e.0);
                }
            }
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(NetworkError(failures.join("; "))) }
}

/// `net.ipv4.ip_forward=1` (per network namespace).
pub fn enable_ip_forward() -> Result<(), NetworkError> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| NetworkError(format!("enabling net.ipv4.ip_forward: {e}")))
}

/// Whether `iptables-restore` (legacy or the nftables variant) is on
/// PATH: without it no rule can be loaded.
pub fn available() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(Family::V4.restore()).is_file())
}

/// `net.ipv6.conf.all.forwarding=1` (and for new interfaces).
pub fn enable_ip6_forward() -> Result<(), NetworkError> {
    for key in ["all", "default"] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/forwarding"), "1")
            .map_err(|e| NetworkError(format!("enabling net.ipv6.conf.{key}.forwarding: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_for_a_bridge_and_a_port() {
        let bridges = [
            BridgeRules { bridge: "docker0".into(), subnet: "172.17.0.0/16".into(), internal: false, masquerade: true, icc: true, links: vec![] },
            BridgeRules { bridge: "br-x".into(), subnet: "10.0.0.0/24".into(), internal: true, masquerade: true, icc: false, links: vec![] },
        ];
        let ports = [PortRule {
            proto: "tcp".into(),
            host_ip: None,
            host_port: 8080,
            container_ip: "172.17.0.2".into(),
            container_port: 80,
            bridge: "docker0".into(),
        }];
        let text = render(Family::V4, Hairpin(false), &bridges, &ports);
        assert!(text.contains("-A BERTHD-POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n"));
        assert!(!text.contains("-s 10.0.0.0/24"), "internal networks are not masqueraded");
        assert!(text.contains("-A BERTHD ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n"));
        assert!(text.contains("-A BERTHD-FORWARD -i br-x -o br-x -j DROP\n"));
        assert!(text.contains("-A BERTHD-ISOLATION-STAGE-2 -o br-x -j DROP\n"));
        assert_eq!(text.matches("COMMIT").count(), 2);
        let v6 = [PortRule { container_ip: "fd00::2".into(), host_ip: Some("::1".into()), ..ports[0].clone() }];
        let text = render(Family::V6, Hairpin(false), &bridges, &v6);
        assert!(text.contains("-A BERTHD -d ::1/128 ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00::2]:80\n"));
        assert!(text.contains("-A BERTHD-FORWARD -d fd00::2/128 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT\n"));
        let text = render(Family::V4, Hairpin(true), &bridges, &ports);
        assert!(text.contains("-A BERTHD -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n"));
        assert!(text.contains("-A BERTHD-POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE\n"));
        assert!(text.contains("-A BERTHD-POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE\n"));
    }
}
