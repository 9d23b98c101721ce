//! Networks through the stock CLI: create, ls, inspect, rm, and containers
//! on a user-defined bridge network reaching each other.
//!
//! Every test uses its own subnet (10.199.N.0/24) and its own bridge, since
//! all tests share the host's interfaces.

use std::process::Command;

use compat_tests::Berthd;

/// Deletes a test's bridge even when the test fails halfway.
struct BridgeGuard(String);

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", "dev", &self.0]).output();
    }
}

/// A bridge name no other test (or concurrent run) uses.
fn bridge_name(test: u32) -> String {
    format!("bt{test}-{}", std::process::id() % 1_000_000)
}

fn host_link(name: &str) -> Option<String> {
    let out = Command::new("ip").args(["-o", "addr", "show", "dev", name]).output().expect("running ip");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The interfaces enslaved to a bridge on the host.
fn bridge_ports(bridge: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link", "show", "master", bridge]).output().expect("running ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_string()))
        .collect()
}

#[test]
fn network_create_ls_inspect_rm() {
    let daemon = Berthd::start();
    let bridge = bridge_name(1);
    let _guard = BridgeGuard(bridge.clone());
    let opt = format!("com.docker.network.bridge.name={bridge}");
    let id = daemon
        .docker(&["network", "create", "--subnet", "10.199.1.0/24", "-o", &opt, "--label", "team=a", "net1"])
        .success()
        .stdout;
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));

    let ls = daemon.docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]).success();
    let lines: Vec<&str> = ls.stdout.lines().collect();
    for want in ["bridge bridge local", "host host local", "none null local", "net1 bridge local"] {
        assert!(lines.contains(&want), "{want} missing from:\n{}", ls.stdout);
    }
    let filtered = daemon.docker(&["network", "ls", "-q", "--no-trunc", "--filter", "label=team=a"]).success();
    assert_eq!(filtered.stdout.trim(), id);
    let custom = daemon.docker(&["network", "ls", "--format", "{{.Name}}", "--filter", "type=custom"]).success();
    assert_eq!(custom.stdout.trim(), "net1");

    let shown = daemon
        .docker(&[
            "network",
            "inspect",
            "-f",
            "{{.Id}} {{.Driver}} {{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{.Labels.team}}",
            "net1",
        ])
        .success();
    assert_eq!(shown.stdout.trim(), format!("{id} bridge 10.199.1.0/24 10.199.1.1 a"));
    let addr = host_link(&bridge).expect("the bridge exists on the host");
    assert!(addr.contains("inet 10.199.1.1/24"), "{addr}");

    let again = daemon.docker(&["network", "create", "--subnet", "10.199.101.0/24", "net1"]).failure();
    assert!(again.stderr.contains("network with name net1 already exists"), "{}", again.stderr);

    let rm = daemon.docker(&["network", "rm", "net1"]).success();
    assert_eq!(rm.stdout.trim(), "net1");
    assert!(host_link(&bridge).is_none(), "the bridge outlived its network");
    let gone = daemon.docker(&["network", "inspect", "net1"]).failure();
    assert!(gone.stderr.contains("network net1 not found"), "{}", gone.stderr);
    let rm_again = daemon.docker(&["network", "rm", "net1"]).failure();
    assert!(rm_again.stderr.contains("network net1 not found"), "{}", rm_again.stderr);
}

#[test]
fn predefined_networks_cannot_be_removed() {
    let daemon = Berthd::start();
    for name in ["bridge", "host", "none"] {
        let out = daemon.docker(&["network", "rm", name]).failure();
        assert!(
            out.stderr.contains(&format!("{name} is a pre-defined network and cannot be removed")),
            "{}",
            out.stderr
        );
    }
    let ids = daemon.docker(&["network", "ls", "-q", "--no-trunc", "--filter", "type=builtin"]).success();
    assert_eq!(ids.stdout.lines().count(), 3, "{}", ids.stdout);
    assert!(ids.stdout.lines().all(|id| id.len() == 64), "{}", ids.stdout);
}

#[test]
fn containers_on_a_user_network_reach_each_other() {
    let daemon = Berthd::start_with_busybox();
    let bridge = bridge_name(2);
    let _guard = BridgeGuard(bridge.clone());
    let opt = format!("com.docker.network.bridge.name={bridge}");
    daemon.docker(&["network", "create", "--subnet", "10.199.2.0/24", "-o", &opt, "net2"]).success();
    daemon.docker(&["run", "-d", "--name", "pa", "--network", "net2", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "pb", "--network", "net2", "busybox", "sleep", "300"]).success();

    let net_id = daemon.docker(&["network", "inspect", "-f", "{{.Id}}", "net2"]).success().stdout;
    let format = "{{.NetworkSettings.Networks.net2.NetworkID}} {{.NetworkSettings.Networks.net2.IPAddress}} \
                  {{.NetworkSettings.Networks.net2.IPPrefixLen}} {{.NetworkSettings.Networks.net2.Gateway}} \
                  {{.NetworkSettings.Networks.net2.MacAddress}}";
    let a = daemon.docker(&["inspect", "-f", format, "pa"]).success().stdout;
    assert_eq!(a.trim(), format!("{} 10.199.2.2 24 10.199.2.1 02:42:0a:c7:02:02", net_id.trim()));
    let b = daemon.docker(&["inspect", "-f", format, "pb"]).success().stdout;
    assert_eq!(b.trim(), format!("{} 10.199.2.3 24 10.199.2.1 02:42:0a:c7:02:03", net_id.trim()));

    let ping = daemon.docker(&["exec", "pa", "ping", "-c1", "-W2", "10.199.2.3"]);
    assert_eq!(ping.code, 0, "{ping:?}");
    let ping = daemon.docker(&["exec", "pb", "ping", "-c1", "-W2", "10.199.2.2"]);
    assert_eq!(ping.code, 0, "{ping:?}");
    let hosts = daemon.docker(&["exec", "pa", "cat", "/etc/hosts"]).success();
    let hostname = daemon.docker(&["inspect", "-f", "{{.Config.Hostname}}", "pa"]).success().stdout;
    assert!(hosts.stdout.contains(&format!("10.199.2.2\t{}", hostname.trim())), "{}", hosts.stdout);
    let eth0 = daemon.docker(&["exec", "pa", "ip", "-o", "-4", "addr", "show", "dev", "eth0"]).success();
    assert!(eth0.stdout.contains("inet 10.199.2.2/24"), "{}", eth0.stdout);

    let members = daemon
        .docker(&["network", "inspect", "-f", "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}", "net2"])
        .success();
    let mut members: Vec<&str> = members.stdout.split_whitespace().collect();
    members.sort();
    assert_eq!(members, ["pa=10.199.2.2/24", "pb=10.199.2.3/24"]);
    assert_eq!(bridge_ports(&bridge).len(), 2);

    let busy = daemon.docker(&["network", "rm", "net2"]).failure();
    assert!(busy.stderr.contains("error while removing network: network net2 id"), "{}", busy.stderr);
    assert!(busy.stderr.contains("has active endpoints"), "{}", busy.stderr);

    // Removing a container frees its address and its veth.
    daemon.docker(&["rm", "-f", "pa"]).success();
    assert_eq!(bridge_ports(&bridge).len(), 1, "a veth outlived its container");
    daemon.docker(&["run", "-d", "--name", "pc", "--network", "net2", "busybox", "sleep", "300"]).success();
    let c = daemon.docker(&["inspect", "-f", "{{.NetworkSettings.Networks.net2.IPAddress}}", "pc"]).success();
    assert_eq!(c.stdout.trim(), "10.199.2.2");

    // A stopped container keeps its network but not its address.
    daemon.docker(&["stop", "-t", "0", "pb"]).success();
    let b = daemon.docker(&["inspect", "-f", format, "pb"]).success().stdout;
    assert_eq!(b.trim(), format!("{}  0", net_id.trim()));
    assert_eq!(bridge_ports(&bridge).len(), 1);

    daemon.docker(&["rm", "-f", "pb", "pc"]).success();
    assert!(bridge_ports(&bridge).is_empty());
    daemon.docker(&["network", "rm", "net2"]).success();
    assert!(host_link(&bridge).is_none());
}
