//! Networks through the stock CLI: create, ls, inspect, rm, and containers
//! on a user-defined bridge network reaching each other.
//!
//! Every daemon runs in a network namespace of its own, so bridges and
//! subnets never clash between tests; links are looked up in there.

use compat_tests::{eventually, Berthd};

fn link(daemon: &Berthd, name: &str) -> Option<String> {
    let out = daemon.in_netns(&["ip", "-o", "addr", "show", "dev", name]);
    (out.code == 0).then_some(out.stdout)
}

/// The interfaces enslaved to a bridge in the daemon's namespace.
fn bridge_ports(daemon: &Berthd, bridge: &str) -> Vec<String> {
    let out = daemon.in_netns(&["ip", "-o", "link", "show", "master", bridge]);
    out.stdout
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_string()))
        .collect()
}

#[test]
fn network_create_ls_inspect_rm() {
    let daemon = Berthd::start();
    let bridge = "bt1".to_string();
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
    let addr = link(&daemon, &bridge).expect("the bridge exists on the host");
    assert!(addr.contains("inet 10.199.1.1/24"), "{addr}");

    let again = daemon.docker(&["network", "create", "--subnet", "10.199.101.0/24", "net1"]).failure();
    assert!(again.stderr.contains("network with name net1 already exists"), "{}", again.stderr);

    let rm = daemon.docker(&["network", "rm", "net1"]).success();
    assert_eq!(rm.stdout.trim(), "net1");
    assert!(link(&daemon, &bridge).is_none(), "the bridge outlived its network");
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
    let bridge = "bt2".to_string();
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
    assert_eq!(bridge_ports(&daemon, &bridge).len(), 2);

    let busy = daemon.docker(&["network", "rm", "net2"]).failure();
    assert!(busy.stderr.contains("error while removing network: network net2 id"), "{}", busy.stderr);
    assert!(busy.stderr.contains("has active endpoints"), "{}", busy.stderr);

    // Removing a container frees its address and its veth.
    daemon.docker(&["rm", "-f", "pa"]).success();
    assert_eq!(bridge_ports(&daemon, &bridge).len(), 1, "a veth outlived its container");
    daemon.docker(&["run", "-d", "--name", "pc", "--network", "net2", "busybox", "sleep", "300"]).success();
    let c = daemon.docker(&["inspect", "-f", "{{.NetworkSettings.Networks.net2.IPAddress}}", "pc"]).success();
    assert_eq!(c.stdout.trim(), "10.199.2.2");

    // A stopped container keeps its network but not its address.
    daemon.docker(&["stop", "-t", "0", "pb"]).success();
    let b = daemon.docker(&["inspect", "-f", format, "pb"]).success().stdout;
    assert_eq!(b.trim(), format!("{}  0", net_id.trim()));
    assert_eq!(bridge_ports(&daemon, &bridge).len(), 1);

    daemon.docker(&["rm", "-f", "pb", "pc"]).success();
    assert!(bridge_ports(&daemon, &bridge).is_empty());
    daemon.docker(&["network", "rm", "net2"]).success();
    assert!(link(&daemon, &bridge).is_none());
}

fn inspect(daemon: &Berthd, format: &str, name: &str) -> String {
    daemon.inspect_format(format, name)
}


#[test]
fn default_bridge_wires_containers_as_dockerd() {
    let daemon = Berthd::start_with_busybox();
    let addr = link(&daemon, "docker0").expect("docker0 exists in the daemon's namespace");
    assert!(addr.contains("inet 172.17.0.1/16"), "{addr}");
    daemon.docker(&["run", "-d", "--name", "da", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "db", "busybox", "sleep", "300"]).success();
    let bridge_id = daemon.docker(&["network", "inspect", "-f", "{{.Id}}", "bridge"]).success().stdout;
    let top = "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.IPPrefixLen}} {{.NetworkSettings.Gateway}} \
               {{.NetworkSettings.MacAddress}} {{.NetworkSettings.Networks.bridge.NetworkID}} \
               {{.NetworkSettings.Networks.bridge.IPAddress}}";
    assert_eq!(
        inspect(&daemon, top, "da"),
        format!("172.17.0.2 16 172.17.0.1 02:42:ac:11:00:02 {} 172.17.0.2", bridge_id.trim())
    );
    assert!(inspect(&daemon, "{{.NetworkSettings.IPAddress}}", "db") == "172.17.0.3");
    let ping = daemon.docker(&["exec", "da", "ping", "-c1", "-W2", "172.17.0.3"]);
    assert_eq!(ping.code, 0, "{ping:?}");
    let hosts = daemon.docker(&["exec", "da", "cat", "/etc/hosts"]).success().stdout;
    let hostname = inspect(&daemon, "{{.Config.Hostname}}", "da");
    assert!(hosts.contains(&format!("172.17.0.2\t{hostname}")), "{hosts}");
    let members = daemon
        .docker(&["network", "inspect", "-f", "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}", "bridge"])
        .success();
    let mut members: Vec<&str> = members.stdout.split_whitespace().collect();
    members.sort();
    assert_eq!(members, ["da=172.17.0.2/16", "db=172.17.0.3/16"]);
    // The host reaches containers on the bridge.
    let ping = daemon.in_netns(&["busybox", "ping", "-c1", "-W2", "172.17.0.2"]);
    assert_eq!(ping.code, 0, "{ping:?}");

    // none and host keep out of the bridge.
    daemon.docker(&["run", "-d", "--name", "dn", "--network", "none", "busybox", "sleep", "300"]).success();
    assert_eq!(inspect(&daemon, "{{.NetworkSettings.IPAddress}}|{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", "dn"), "|none");
    let links = daemon.docker(&["exec", "dn", "ip", "-o", "link"]).success().stdout;
    assert_eq!(links.lines().count(), 1, "{links}");
    assert_eq!(bridge_ports(&daemon, "docker0").len(), 2);

    daemon.docker(&["rm", "-f", "da", "db", "dn"]).success();
    assert!(bridge_ports(&daemon, "docker0").is_empty(), "veths outlived their containers");
}

#[test]
fn bip_fixed_cidr_and_mtu_shape_the_default_bridge() {
    let daemon = Berthd::builder()
        .daemon_json(serde_json::json!({"bip": "10.123.0.1/16", "fixed-cidr": "10.123.7.0/24", "mtu": 1400}))
        .start();
    let archive = compat_tests::images::BusyboxImage::new("busybox:latest").build().unwrap().docker_archive().unwrap();
    daemon.docker_stdin(&["load"], &archive).success();
    let shown = daemon
        .docker(&["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{(index .IPAM.Config 0).IPRange}}", "bridge"])
        .success();
    assert_eq!(shown.stdout.trim(), "10.123.0.0/16 10.123.0.1 10.123.7.0/24");
    daemon.docker(&["run", "-d", "--name", "cc", "busybox", "sleep", "300"]).success();
    let ip = inspect(&daemon, "{{.NetworkSettings.IPAddress}}", "cc");
    assert!(ip.starts_with("10.123.7."), "{ip}");
    let eth0 = daemon.docker(&["exec", "cc", "ip", "-o", "link", "show", "eth0"]).success().stdout;
    assert!(eth0.contains("mtu 1400"), "{eth0}");
}

#[test]
fn bridge_none_disables_the_default_bridge() {
    let daemon = Berthd::builder().args(["--bridge", "none"]).start();
    let names = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]).success().stdout;
    assert_eq!(names.lines().collect::<Vec<_>>(), ["host", "none"]);
    assert!(link(&daemon, "docker0").is_none());
}

#[test]
fn outbound_traffic_is_masqueraded_and_networks_are_isolated() {
    let daemon = Berthd::start_with_busybox();
    let outside = compat_tests::netns::NetNs::create(&compat_tests::berthd::unique_name("outside"));
    daemon.netns().expect("own namespace").link_to(&outside, "10.251.0.1/24", "10.251.0.2/24");
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "from outside\n").unwrap();
    let _httpd = outside.spawn(&["busybox", "httpd", "-f", "-p", "10.251.0.2:8000", "-h", root.path().to_str().unwrap()]);

    // The outside host has no route back to 172.17.0.0/16: only
    // masqueraded traffic gets an answer.
    daemon.docker(&["run", "-d", "--name", "out", "busybox", "sleep", "300"]).success();
    let body = eventually(10, "the outside server to answer", || {
        let got = daemon.docker(&["exec", "out", "timeout", "3", "wget", "-qO-", "http://10.251.0.2:8000/"]);
        (got.code == 0).then_some(got.stdout)
    });
    assert_eq!(body, "from outside\n");

    // A user network cannot reach the default bridge, nor the other way.
    daemon.docker(&["network", "create", "--subnet", "10.199.3.0/24", "iso"]).success();
    daemon.docker(&["run", "-d", "--name", "in-iso", "--network", "iso", "busybox", "sleep", "300"]).success();
    assert_eq!(daemon.docker(&["exec", "in-iso", "ping", "-c1", "-W1", "172.17.0.2"]).code, 1);
    assert_eq!(daemon.docker(&["exec", "out", "ping", "-c1", "-W1", "10.199.3.2"]).code, 1);
    // ... but both reach the outside.
    daemon.docker(&["exec", "in-iso", "timeout", "3", "wget", "-qO-", "http://10.251.0.2:8000/"]).success();

    // An internal network has no way out.
    daemon.docker(&["network", "create", "--internal", "--subnet", "10.199.4.0/24", "closed"]).success();
    daemon.docker(&["run", "-d", "--name", "in-closed", "--network", "closed", "busybox", "sleep", "300"]).success();
    let blocked = daemon.docker(&["exec", "in-closed", "timeout", "3", "wget", "-qO-", "http://10.251.0.2:8000/"]);
    assert_ne!(blocked.code, 0, "{blocked:?}");

    // Removing a network takes its rules along.
    daemon.docker(&["rm", "-f", "in-iso"]).success();
    daemon.docker(&["network", "rm", "iso"]).success();
    let nat = daemon.in_netns(&["iptables", "-t", "nat", "-S"]).success().stdout;
    assert!(!nat.contains("10.199.3.0/24"), "{nat}");
}

#[test]
fn firewall_rules_go_with_the_daemon() {
    let mut daemon = Berthd::start();
    let nat = daemon.in_netns(&["iptables", "-t", "nat", "-S"]).success().stdout;
    assert!(nat.contains("-A BERTHD-POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"), "{nat}");
    assert!(nat.contains("-A POSTROUTING -j BERTHD-POSTROUTING"), "{nat}");
    assert!(daemon.stop().expect("daemon").success());
    let nat = daemon.in_netns(&["iptables", "-t", "nat", "-S"]).success().stdout;
    let filter = daemon.in_netns(&["iptables", "-S"]).success().stdout;
    assert!(!nat.contains("BERTHD") && !filter.contains("BERTHD"), "{nat}{filter}");
}

#[test]
fn container_mode_shares_the_other_containers_namespace_and_files() {
    let daemon = Berthd::start_with_busybox();
    let web_id = daemon
        .docker(&["run", "-d", "--name", "web", "--hostname", "webhost", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"])
        .success()
        .stdout
        .trim()
        .to_string();
    daemon.docker(&["run", "-d", "--name", "side", "--network", "container:web", "busybox", "sleep", "300"]).success();
    assert_eq!(inspect(&daemon, "{{.HostConfig.NetworkMode}}", "side"), format!("container:{web_id}"));
    assert_eq!(inspect(&daemon, "{{.Config.Hostname}}", "side"), "webhost");
    assert_eq!(inspect(&daemon, "{{len .NetworkSettings.Networks}}", "side"), "0");
    // The same interfaces, and the other's server on its loopback.
    let eth0 = daemon.docker(&["exec", "side", "ip", "-o", "-4", "addr", "show", "dev", "eth0"]).success().stdout;
    assert!(eth0.contains("inet 172.17.0.2/16"), "{eth0}");
    let body = eventually(10, "the server next door", || {
        let got = daemon.docker(&["exec", "side", "timeout", "3", "wget", "-qO-", "http://127.0.0.1/hostname"]);
        (got.code == 0).then_some(got.stdout)
    });
    assert_eq!(body, "webhost\n");
    let hosts = daemon.docker(&["exec", "side", "cat", "/etc/hosts"]).success().stdout;
    assert!(hosts.contains("172.17.0.2\twebhost"), "{hosts}");

    let conflict = daemon.docker(&["create", "--network", "container:web", "--hostname", "x", "busybox"]).failure();
    assert!(conflict.stderr.contains("conflicting options: hostname and the network mode"), "{}", conflict.stderr);
    let conflict = daemon.docker(&["create", "--network", "container:web", "-p", "80:80", "busybox"]).failure();
    assert!(conflict.stderr.contains("conflicting options: port publishing and the container type network mode"), "{}", conflict.stderr);
    // (The CLI would take that 404 for a missing image and try to pull.)
    let body = br#"{"Image":"busybox","HostConfig":{"NetworkMode":"container:nope"}}"#;
    let missing = daemon.request("POST", "/v1.47/containers/create", Some(body));
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(missing.json()["message"], "No such container: nope");

    // Joining a stopped container fails the start.
    daemon.docker(&["stop", "-t", "0", "side", "web"]).success();
    let out = daemon.docker(&["start", "side"]).failure();
    assert!(out.stderr.contains(&format!("cannot join network of a non running container: {web_id}")), "{}", out.stderr);

    // On `none`, the joined namespace has loopback only.
    daemon.docker(&["run", "-d", "--name", "alone", "--network", "none", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "with-alone", "--network", "container:alone", "busybox", "sleep", "300"]).success();
    let links = daemon.docker(&["exec", "with-alone", "ip", "-o", "link"]).success().stdout;
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
}

#[test]
fn host_mode_sees_the_hosts_interfaces() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "onhost", "--network", "host", "busybox", "sleep", "300"]).success();
    let links = daemon.docker(&["exec", "onhost", "ip", "-o", "link", "show", "docker0"]).success().stdout;
    assert!(links.contains("docker0"), "{links}");
    assert_eq!(
        inspect(&daemon, "{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.NetworkID}}{{end}}", "onhost"),
        format!("host host {}", daemon.docker(&["network", "inspect", "-f", "{{.Id}}", "host"]).success().stdout.trim())
    );
}

/// A daemon on the host's own network (as in production, not the tests'
/// usual namespace of its own): runc refuses `net.*` sysctls in its own
/// namespace, so host-mode containers must get none. They are named as the
/// host is, as with dockerd.
#[test]
fn host_mode_starts_from_a_daemon_on_the_hosts_network() {
    let daemon = Berthd::builder().host_network().start_with_busybox();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let port_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    let script = "echo $HOSTNAME; hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start";
    let out = daemon.docker(&["run", "--rm", "--network", "host", "busybox", "sh", "-c", script]).success();
    assert_eq!(out.stdout, format!("{host_name}\n{host_name}\n{port_start}"));
    let id = daemon.docker(&["create", "--network", "host", "-h", "custom", "busybox", "hostname"]).success().stdout;
    assert_eq!(inspect(&daemon, "{{.Config.Hostname}}", id.trim()), "custom");
}

#[test]
fn connect_and_disconnect_a_running_and_a_stopped_container() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["network", "create", "--subnet", "10.199.5.0/24", "front"]).success();
    daemon.docker(&["network", "create", "--subnet", "10.199.6.0/24", "back"]).success();
    daemon.docker(&["run", "-d", "--name", "app", "--network", "front", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "db", "--network", "back", "busybox", "sleep", "300"]).success();
    assert_eq!(daemon.docker(&["exec", "app", "ping", "-c1", "-W1", "10.199.6.2"]).code, 1);

    daemon
        .docker(&["network", "connect", "--ip", "10.199.6.50", "--alias", "api", "back", "app"])
        .success();
    let eth1 = daemon.docker(&["exec", "app", "ip", "-o", "-4", "addr", "show", "dev", "eth1"]).success().stdout;
    assert!(eth1.contains("inet 10.199.6.50/24"), "{eth1}");
    let ping = daemon.docker(&["exec", "app", "ping", "-c1", "-W2", "10.199.6.2"]);
    assert_eq!(ping.code, 0, "{ping:?}");
    let format = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}/{{$v.Aliases}}/{{json $v.IPAMConfig}} {{end}}";
    assert_eq!(inspect(&daemon, format, "app"), r#"back=10.199.6.50/[api]/{"IPv4Address":"10.199.6.50"} front=10.199.5.2/[]/null"#);
    let members = daemon
        .docker(&["network", "inspect", "-f", "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}", "back"])
        .success();
    let mut members: Vec<&str> = members.stdout.split_whitespace().collect();
    members.sort();
    assert_eq!(members, ["app=10.199.6.50/24", "db=10.199.6.2/24"]);

    let again = daemon.docker(&["network", "connect", "back", "app"]).failure();
    assert!(again.stderr.contains("endpoint with name app already exists in network back"), "{}", again.stderr);

    // Connections survive a restart of the container.
    daemon.docker(&["restart", "-t", "0", "app"]).success();
    assert_eq!(inspect(&daemon, format, "app"), r#"back=10.199.6.50/[api]/{"IPv4Address":"10.199.6.50"} front=10.199.5.2/[]/null"#);

    daemon.docker(&["network", "disconnect", "back", "app"]).success();
    let links = daemon.docker(&["exec", "app", "ip", "-o", "link"]).success().stdout;
    assert!(!links.contains("eth1"), "{links}");
    assert_eq!(inspect(&daemon, "{{len .NetworkSettings.Networks}}", "app"), "1");
    let not = daemon.docker(&["network", "disconnect", "back", "app"]).failure();
    assert!(not.stderr.contains("is not connected to network back"), "{}", not.stderr);

    // A stopped container is connected for its next start.
    daemon.docker(&["create", "--name", "later", "--network", "front", "busybox", "sleep", "300"]).success();
    daemon.docker(&["network", "connect", "back", "later"]).success();
    assert_eq!(inspect(&daemon, "{{len .NetworkSettings.Networks}} {{.NetworkSettings.Networks.back.IPAddress}}", "later"), "2");
    daemon.docker(&["start", "later"]).success();
    let eth1 = daemon.docker(&["exec", "later", "ip", "-o", "-4", "addr", "show", "dev", "eth1"]).success().stdout;
    assert!(eth1.contains("inet 10.199.6."), "{eth1}");

    // Errors as dockerd's.
    let missing = daemon.docker(&["network", "connect", "nonet", "app"]).failure();
    assert!(missing.stderr.contains("network nonet not found"), "{}", missing.stderr);
    let missing = daemon.docker(&["network", "connect", "back", "nobody"]).failure();
    assert!(missing.stderr.contains("No such container: nobody"), "{}", missing.stderr);
    let host = daemon.docker(&["network", "connect", "host", "app"]).failure();
    assert!(host.stderr.contains("container cannot be disconnected from host network or connected to host network"), "{}", host.stderr);
    let bad_ip = daemon.docker(&["network", "connect", "--ip", "172.17.0.9", "bridge", "app"]).failure();
    assert!(bad_ip.stderr.contains("user specified IP address is supported on user defined networks only"), "{}", bad_ip.stderr);
}

#[test]
fn create_joins_every_network_with_its_ip_mac_and_aliases() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["network", "create", "--subnet", "10.199.7.0/24", "one"]).success();
    daemon.docker(&["network", "create", "--subnet", "10.199.8.0/24", "two"]).success();
    // The CLI sends both networks in one create (API >= 1.44).
    daemon
        .docker(&[
            "run", "-d", "--name", "multi", "--network", "name=one,ip=10.199.7.77,mac-address=02:42:0a:00:00:77,alias=first",
            "--network", "two", "busybox", "sleep", "300",
        ])
        .success();
    let format = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}},{{$v.MacAddress}},{{$v.Aliases}} {{end}}";
    let shown = inspect(&daemon, format, "multi");
    assert!(shown.starts_with("one=10.199.7.77,02:42:0a:00:00:77,[first] two=10.199.8.2,02:42:0a:c7:08:02,"), "{shown}");
    let route = daemon.docker(&["exec", "multi", "ip", "route"]).success().stdout;
    assert!(route.contains("default via 10.199.7.1 dev eth0"), "{route}");
    let taken = daemon.docker(&["run", "-d", "--network", "one", "--ip", "10.199.7.77", "busybox", "sleep", "1"]).failure();
    assert!(taken.stderr.contains("Address already in use"), "{}", taken.stderr);
    let outside = daemon.docker(&["create", "--network", "one", "--ip", "10.9.9.9", "busybox"]);
    let started = if outside.code == 0 { daemon.docker(&["start", outside.stdout.trim()]) } else { outside };
    assert!(started.stderr.contains("no configured subnet or ip-range contain the IP address 10.9.9.9"), "{}", started.stderr);
}

#[test]
fn network_events_are_published() {
    let daemon = Berthd::start_with_busybox();
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let id = daemon.docker(&["network", "create", "--subnet", "10.199.9.0/24", "evnet"]).success().stdout.trim().to_string();
    let cid = daemon.docker(&["run", "-d", "--network", "evnet", "busybox", "sleep", "300"]).success().stdout.trim().to_string();
    daemon.docker(&["rm", "-f", &cid]).success();
    daemon.docker(&["network", "rm", "evnet"]).success();
    let now = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string();
    let events = daemon
        .docker(&[
            "events", "--since", &start, "--until", &now, "--filter", "type=network",
            "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}} {{.Actor.Attributes.container}}",
        ])
        .success()
        .stdout;
    let lines: Vec<&str> = events.lines().map(|l| l.trim_end_matches(" <no value>")).collect();
    assert_eq!(
        lines,
        [
            format!("create {id} evnet bridge"),
            format!("connect {id} evnet bridge {cid}"),
            format!("disconnect {id} evnet bridge {cid}"),
            format!("destroy {id} evnet bridge"),
        ]
    );
}

#[test]
fn legacy_links_give_hosts_entries_and_variables() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "db", "-e", "SECRET=x", "--expose", "5432", "--expose", "53/udp", "busybox", "sleep", "300"]).success();
    let db_ip = inspect(&daemon, "{{.NetworkSettings.IPAddress}}", "db");
    let db_host = inspect(&daemon, "{{.Config.Hostname}}", "db");
    let out = daemon
        .docker(&["run", "--name", "client", "--link", "db:dbalias", "--link", "db", "--add-host", "foo:1.2.3.4", "-e", "DB_NAME=mine", "busybox", "sh", "-c", "tail -4 /etc/hosts; env | sort"])
        .success()
        .stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1.2.3.4\tfoo", "{out}");
    assert_eq!(lines[1], format!("{db_ip}\tdbalias {db_host} db"), "{out}");
    assert_eq!(lines[2], format!("{db_ip}\tdb {db_host}"), "{out}");
    for want in [
        format!("DBALIAS_PORT=udp://{db_ip}:53"),
        format!("DBALIAS_PORT_5432_TCP=tcp://{db_ip}:5432"),
        format!("DBALIAS_PORT_5432_TCP_ADDR={db_ip}"),
        "DBALIAS_PORT_5432_TCP_PORT=5432".to_string(),
        "DBALIAS_PORT_53_UDP_PROTO=udp".to_string(),
        "DBALIAS_NAME=/client/dbalias".to_string(),
        "DBALIAS_ENV_SECRET=x".to_string(),
        "DB_ENV_SECRET=x".to_string(),
        // The container's own variable wins over the link's.
        "DB_NAME=mine".to_string(),
    ] {
        assert!(lines.contains(&want.as_str()), "{want} missing in {out}");
    }
    assert!(!out.contains("_ENV_PATH="), "{out}");
    assert_eq!(
        inspect(&daemon, "{{json .HostConfig.Links}}", "client"),
        r#"["/db:/client/dbalias","/db:/client/db"]"#
    );

    // A parent running while its child restarts sees the child's address.
    daemon.docker(&["run", "-d", "--name", "parent", "--link", "db:x", "busybox", "sleep", "300"]).success();
    assert!(daemon.docker(&["exec", "parent", "cat", "/etc/hosts"]).success().stdout.contains(&format!("{db_ip}\tx {db_host} db")));
    daemon.docker(&["stop", "-t0", "db"]).success();
    daemon.docker(&["run", "-d", "--name", "other", "busybox", "sleep", "300"]).success();
    daemon.docker(&["start", "db"]).success();
    let new_ip = inspect(&daemon, "{{.NetworkSettings.IPAddress}}", "db");
    assert_ne!(new_ip, db_ip);
    let hosts = daemon.docker(&["exec", "parent", "cat", "/etc/hosts"]).success().stdout;
    assert!(hosts.contains(&format!("{new_ip}\tx {db_host} db")) && !hosts.contains(&db_ip), "{hosts}");

    // docker rm --link drops the link and its hosts line at once.
    let err = daemon.docker(&["rm", "--link", "db"]).failure();
    assert!(err.stderr.contains("Conflict, cannot remove the default link name of the container"), "{err:?}");
    let err = daemon.docker(&["rm", "--link", "parent/nope"]).failure();
    assert!(err.stderr.contains("No such container: parent/nope"), "{err:?}");
    daemon.docker(&["rm", "--link", "/parent/x"]).success();
    assert_eq!(inspect(&daemon, "{{json .HostConfig.Links}}", "parent"), "null");
    let hosts = daemon.docker(&["exec", "parent", "cat", "/etc/hosts"]).success().stdout;
    assert!(!hosts.contains("\tx "), "{hosts}");

    // dockerd's refusals.
    let err = daemon.docker(&["run", "--rm", "--link", "nope:x", "busybox", "true"]).failure();
    assert!(err.stderr.contains("could not get container for nope: No such container: nope"), "{err:?}");
    let err = daemon.docker(&["run", "--rm", "--network", "host", "--link", "db:x", "busybox", "true"]).failure();
    assert!(err.stderr.contains("conflicting options: host type networking can't be used with links"), "{err:?}");
    daemon.docker(&["stop", "-t0", "db"]).success();
    let err = daemon.docker(&["run", "--name", "late", "--link", "db:x", "busybox", "true"]).failure();
    assert!(err.stderr.contains("Cannot link to a non running container: /db AS /late/x"), "{err:?}");
    daemon.docker(&["rm", "-f", "client", "parent", "other", "late", "db"]).success();
}

#[test]
fn add_host_and_host_gateway_fill_etc_hosts() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "--add-host", "foo:1.2.3.4", "--add-host", "gw:host-gateway", "busybox", "cat", "/etc/hosts"]).success().stdout;
    assert!(out.contains("1.2.3.4\tfoo\n172.17.0.1\tgw\n"), "{out}");
    let out = daemon.docker(&["run", "--rm", "--network", "none", "--add-host", "foo:1.2.3.4", "busybox", "cat", "/etc/hosts"]).success().stdout;
    assert!(out.ends_with("1.2.3.4\tfoo\n"), "{out}");
    let out = daemon.docker(&["run", "--rm", "--network", "host", "--add-host", "foo:1.2.3.4", "busybox", "cat", "/etc/hosts"]).success().stdout;
    assert!(out.ends_with("1.2.3.4\tfoo\n"), "{out}");
    let bad = daemon.request("POST", "/containers/create", Some(br#"{"Image":"busybox","HostConfig":{"ExtraHosts":["foo:bad"]}}"#));
    assert_eq!(bad.status, 400, "{bad:?}");
    drop(daemon);

    let daemon = Berthd::builder().daemon_json(serde_json::json!({"host-gateway-ip": "192.0.2.7"})).start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "--add-host", "gw:host-gateway", "busybox", "cat", "/etc/hosts"]).success().stdout;
    assert!(out.contains("192.0.2.7\tgw\n"), "{out}");
}

#[test]
fn default_address_pools_give_subnets_to_the_bridge_and_new_networks() {
    let daemon = Berthd::builder()
        .daemon_json(serde_json::json!({"default-address-pools": [{"base": "10.123.0.0/16", "size": 24}]}))
        .start();
    let addr = link(&daemon, "docker0").expect("docker0 exists");
    assert!(addr.contains("inet 10.123.0.1/24"), "{addr}");
    daemon.docker(&["network", "create", "p1"]).success();
    daemon.docker(&["network", "create", "p2"]).success();
    let subnets = |n: &str| daemon.docker(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", n]).success().stdout.trim().to_string();
    assert_eq!(subnets("p1"), "10.123.1.0/24 10.123.1.1");
    assert_eq!(subnets("p2"), "10.123.2.0/24 10.123.2.1");
    drop(daemon);
    let bad = Berthd::builder()
        .daemon_json(serde_json::json!({"default-address-pools": [{"base": "10.0.0.0/16", "size": 8}]}))
        .run_to_exit();
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("invalid pools size: 8"), "{bad:?}");
}

#[test]
fn prune_filters_and_verbose_inspect() {
    let daemon = Berthd::start();
    daemon.docker(&["network", "create", "--label", "keep=yes", "old-kept"]).success();
    daemon.docker(&["network", "create", "--label", "team=a", "old-a"]).success();
    daemon.docker(&["network", "create", "old-b"]).success();
    // `until` compares whole seconds: wait for the next second.
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let cutoff = now() + 1;
    eventually(5, "the next second", || (now() >= cutoff).then_some(()));
    daemon.docker(&["network", "create", "new-c"]).success();
    let until = format!("until={cutoff}");
    let out = daemon.docker(&["network", "prune", "-f", "--filter", &until, "--filter", "label!=keep"]).success().stdout;
    assert!(out.contains("old-a") && out.contains("old-b") && !out.contains("old-kept") && !out.contains("new-c"), "{out}");
    let out = daemon.docker(&["network", "prune", "-f", "--filter", "label=keep=yes"]).success().stdout;
    assert!(out.contains("old-kept") && !out.contains("new-c"), "{out}");
    let err = daemon.docker(&["network", "prune", "-f", "--filter", "until=soon"]).failure();
    assert!(err.stderr.contains("invalid value for 'until' filter: soon") || err.stderr.contains("soon"), "{err:?}");

    // A local network reads the same with --verbose (services are swarm's).
    let plain = daemon.docker(&["network", "inspect", "new-c"]).success().stdout;
    let verbose = daemon.docker(&["network", "inspect", "--verbose", "new-c"]).success().stdout;
    assert_eq!(plain, verbose);
    let swarm = daemon.request("GET", "/networks/new-c?scope=swarm", None);
    assert_eq!(swarm.status, 404);
}

#[test]
fn the_default_route_goes_through_the_gateway_network_as_dockerd() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["network", "create", "--subnet", "10.50.0.0/24", "zz"]).success();
    daemon.docker(&["network", "create", "--subnet", "10.51.0.0/24", "aa"]).success();
    daemon.docker(&["network", "create", "--internal", "--subnet", "10.52.0.0/24", "0in"]).success();
    let route = |c: &str| {
        let out = daemon.docker(&["exec", c, "ip", "route"]).success().stdout;
        out.lines().find(|l| l.starts_with("default")).map(|l| l.split_whitespace().take(5).collect::<Vec<_>>().join(" ")).unwrap_or_default()
    };
    // dockerd 20.10's order: not internal, then the network's name.
    daemon.docker(&["run", "-d", "--name", "r1", "--network", "zz", "busybox", "sleep", "300"]).success();
    assert_eq!(route("r1"), "default via 10.50.0.1 dev eth0");
    daemon.docker(&["network", "connect", "aa", "r1"]).success();
    assert_eq!(route("r1"), "default via 10.51.0.1 dev eth1");
    daemon.docker(&["network", "connect", "bridge", "r1"]).success();
    assert_eq!(route("r1"), "default via 10.51.0.1 dev eth1");
    daemon.docker(&["network", "connect", "0in", "r1"]).success();
    assert_eq!(route("r1"), "default via 10.51.0.1 dev eth1");
    daemon.docker(&["network", "disconnect", "aa", "r1"]).success();
    assert_eq!(route("r1"), "default via 172.17.0.1 dev eth2");
    // Only internal: no default route.
    daemon.docker(&["run", "-d", "--name", "r2", "--network", "0in", "busybox", "sleep", "300"]).success();
    assert_eq!(route("r2"), "");
    // gw-priority (API 1.48) outranks the name.
    daemon.docker(&["run", "-d", "--name", "r3", "--network", "aa", "--network", "name=zz,gw-priority=1", "busybox", "sleep", "300"]).success();
    let zz_if = daemon.docker(&["exec", "r3", "ip", "-o", "-4", "addr"]).success().stdout;
    let zz_if = zz_if.lines().find(|l| l.contains("10.50.0.")).and_then(|l| l.split_whitespace().nth(1)).unwrap().to_string();
    assert_eq!(route("r3"), format!("default via 10.50.0.1 dev {zz_if}"));
}

#[test]
fn ipv6_on_user_networks_and_the_default_bridge() {
    let daemon = Berthd::builder()
        .daemon_json(serde_json::json!({"ipv6": true, "fixed-cidr-v6": "fd00:dead:beef::/64"}))
        .start_with_busybox();
    daemon
        .docker(&[
            "network", "create", "--ipv6", "--subnet", "10.199.60.0/24", "--subnet", "fd00:60::/64",
            "--aux-address", "r4=10.199.60.2", "--aux-address", "r6=fd00:60::2", "v6net",
        ])
        .success();
    let ipam = daemon.docker(&["network", "inspect", "-f", "{{.EnableIPv6}} {{json .IPAM.Config}}", "v6net"]).success();
    assert_eq!(
        ipam.stdout.trim(),
        r#"true [{"Subnet":"10.199.60.0/24","Gateway":"10.199.60.1","AuxiliaryAddresses":{"r4":"10.199.60.2"}},{"Subnet":"fd00:60::/64","Gateway":"fd00:60::1","AuxiliaryAddresses":{"r6":"fd00:60::2"}}]"#
    );
    daemon.docker(&["run", "-d", "--name", "six-a", "--network", "v6net", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "six-b", "--network", "v6net", "--ip6", "fd00:60::99", "busybox", "sleep", "300"]).success();

    // Auxiliary addresses are never handed out.
    let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}} {{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}}{{end}}";
    assert_eq!(inspect(&daemon, format, "six-a"), "10.199.60.3 fd00:60::3 64 fd00:60::1");
    assert_eq!(inspect(&daemon, format, "six-b"), "10.199.60.4 fd00:60::99 64 fd00:60::1");
    assert_eq!(inspect(&daemon, "{{json .NetworkSettings.Networks.v6net.IPAMConfig}}", "six-b"), r#"{"IPv6Address":"fd00:60::99"}"#);
    let members = daemon.docker(&["network", "inspect", "-f", "{{range .Containers}}{{.Name}}={{.IPv6Address}} {{end}}", "v6net"]).success();
    let mut members: Vec<&str> = members.stdout.split_whitespace().collect();
    members.sort();
    assert_eq!(members, ["six-a=fd00:60::3/64", "six-b=fd00:60::99/64"]);

    // Container to container over IPv6, by address and by name (AAAA).
    let ping = daemon.docker(&["exec", "six-a", "ping", "-c1", "-W2", "fd00:60::99"]);
    assert_eq!(ping.code, 0, "{ping:?}");
    let aaaa = daemon.docker(&["exec", "six-a", "nslookup", "-type=AAAA", "six-b", "127.0.0.11"]).success();
    assert!(aaaa.stdout.contains("fd00:60::99"), "{}", aaaa.stdout);
    let a = daemon.docker(&["exec", "six-a", "nslookup", "-type=A", "six-b", "127.0.0.11"]).success();
    assert!(a.stdout.contains("10.199.60.4") && !a.stdout.contains("fd00:60::99"), "{}", a.stdout);
    let route = daemon.docker(&["exec", "six-a", "ip", "-6", "route", "show", "default"]).success();
    assert!(route.stdout.contains("default via fd00:60::1 dev eth0"), "{}", route.stdout);
    let hosts = daemon.docker(&["exec", "six-a", "cat", "/etc/hosts"]).success();
    assert!(hosts.stdout.contains("fd00:60::3\t"), "{}", hosts.stdout);
    // IPv6 on for the interface with an address, off elsewhere, as dockerd.
    let sysctls = "cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6 /proc/sys/net/ipv6/conf/all/disable_ipv6";
    assert_eq!(daemon.docker(&["exec", "six-a", "sh", "-c", sysctls]).success().stdout, "0\n1\n");

    // The default bridge: dockerd's address from the MAC in fixed-cidr-v6.
    daemon.docker(&["run", "-d", "--name", "six-bridge", "busybox", "sleep", "300"]).success();
    let top = "{{.NetworkSettings.GlobalIPv6Address}} {{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}}";
    assert_eq!(inspect(&daemon, top, "six-bridge"), "fd00:dead:beef::242:ac11:2 64 fd00:dead:beef::1");
    let bridge_ipam = daemon.docker(&["network", "inspect", "-f", "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}", "bridge"]).success();
    assert_eq!(bridge_ipam.stdout.trim(), "true 172.17.0.0/16 fd00:dead:beef::/64");

    // A network without IPv6: off in the container, no address.
    daemon.docker(&["network", "create", "--subnet", "10.199.61.0/24", "v4only"]).success();
    daemon.docker(&["run", "-d", "--name", "six-no", "--network", "v4only", "busybox", "sleep", "300"]).success();
    assert_eq!(daemon.docker(&["exec", "six-no", "sh", "-c", sysctls]).success().stdout, "1\n1\n");
    assert_eq!(inspect(&daemon, format, "six-no"), "10.199.61.2  0");
    let refused = daemon.docker(&["run", "--rm", "--network", "v4only", "--ip6", "fd00:61::5", "busybox", "true"]).failure();
    assert!(refused.stderr.contains("no configured subnet or ip-range contain the IP address fd00:61::5"), "{}", refused.stderr);

    // A published port of a container with IPv6 is on [::] too, as dockerd's.
    daemon
        .docker(&["run", "-d", "--name", "six-web", "--network", "v6net", "-p", "8096:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"])
        .success();
    assert_eq!(daemon.docker(&["port", "six-web"]).success().stdout, "80/tcp -> 0.0.0.0:8096\n80/tcp -> [::]:8096\n");
    for url in ["http://127.0.0.1:8096/hostname", "http://[::1]:8096/hostname"] {
        eventually(10, url, || (daemon.in_netns(&["curl", "-sS", "--max-time", "3", "-g", url]).code == 0).then_some(()));
    }
    let nat6 = daemon.in_netns(&["ip6tables", "-t", "nat", "-S", "BERTHD"]).success().stdout;
    assert!(nat6.contains("--dport 8096 -j DNAT --to-destination [fd00:60::4]:80"), "{nat6}");

    // Masquerade and isolation in ip6tables, as in iptables.
    let nat = daemon.in_netns(&["ip6tables", "-t", "nat", "-S"]).success().stdout;
    assert!(nat.contains("-A BERTHD-POSTROUTING -s fd00:60::/64 ! -o "), "{nat}");
    assert!(nat.contains("-A BERTHD-POSTROUTING -s fd00:dead:beef::/64 ! -o docker0 -j MASQUERADE"), "{nat}");
    let filter = daemon.in_netns(&["ip6tables", "-S"]).success().stdout;
    assert!(filter.contains("-A BERTHD-ISOLATION-STAGE-2 -o docker0 -j DROP"), "{filter}");
}

#[test]
fn icc_off_isolates_containers_except_for_linked_ports() {
    let daemon = Berthd::builder().daemon_json(serde_json::json!({"icc": false})).start_with_busybox();
    daemon
        .docker(&["run", "-d", "--name", "icc-web", "--expose", "8000", "busybox", "httpd", "-f", "-p", "8000", "-h", "/etc"])
        .success();
    daemon.docker(&["run", "-d", "--name", "icc-other", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "icc-parent", "--link", "icc-web:web", "busybox", "sleep", "300"]).success();
    let web_ip = inspect(&daemon, "{{.NetworkSettings.IPAddress}}", "icc-web");

    // The link opens the child's exposed port to its parent, and only that.
    eventually(10, "the linked port to answer", || {
        let got = daemon.docker(&["exec", "icc-parent", "timeout", "3", "wget", "-qO-", "http://web:8000/hostname"]);
        (got.code == 0).then_some(())
    });
    let ping = daemon.docker(&["exec", "icc-parent", "ping", "-c1", "-W1", &web_ip]);
    assert_ne!(ping.code, 0, "{ping:?}");
    let url = format!("http://{web_ip}:8000/hostname");
    let blocked = daemon.docker(&["exec", "icc-other", "timeout", "3", "wget", "-qO-", &url]);
    assert_ne!(blocked.code, 0, "{blocked:?}");
    let filter = daemon.in_netns(&["iptables", "-S", "BERTHD-FORWARD"]).success().stdout;
    assert!(filter.contains("-A BERTHD-FORWARD -i docker0 -o docker0 -j DROP"), "{filter}");
    assert!(filter.contains(&format!("-d {web_ip}/32 -i docker0 -o docker0 -p tcp -m tcp --dport 8000 -j ACCEPT")), "{filter}");

    // The same per network, with its driver option.
    let opt = "com.docker.network.bridge.enable_icc=false";
    daemon.docker(&["network", "create", "--subnet", "10.199.62.0/24", "-o", opt, "noicc"]).success();
    daemon.docker(&["run", "-d", "--name", "icc-a", "--network", "noicc", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "icc-b", "--network", "noicc", "busybox", "sleep", "300"]).success();
    let ping = daemon.docker(&["exec", "icc-a", "ping", "-c1", "-W1", "10.199.62.3"]);
    assert_ne!(ping.code, 0, "{ping:?}");
}

#[test]
fn without_iptables_the_daemon_refuses_to_start_as_dockerd() {
    // /usr/bin has ip, unshare and nsenter but no iptables (in /usr/sbin):
    // a host with nftables only.
    let out = Berthd::builder().env("PATH", "/usr/bin").run_to_exit();
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("failed to create NAT chain BERTHD: iptables not found"), "{}", out.stderr);
    // With `iptables: false` it starts, as dockerd.
    let daemon = Berthd::builder().env("PATH", "/usr/bin").daemon_json(serde_json::json!({"iptables": false})).start();
    daemon.docker(&["network", "create", "--subnet", "10.199.63.0/24", "nofw"]).success();
}

/// dockerd 28's IPv6 pool when none is configured: a ULA /48 from the
/// SHA-256 of the engine ID (low 40 bits of its first eight bytes).
fn ula_base(daemon: &Berthd) -> String {
    use sha2::Digest;
    let id = daemon.docker(&["info", "-f", "{{.ID}}"]).success().stdout.trim().to_string();
    let sha = sha2::Sha256::digest(id.as_bytes());
    let gid = u64::from_be_bytes(sha[..8].try_into().unwrap()) & ((1 << 40) - 1);
    let base = u128::from(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)) + (u128::from(gid) << 80);
    let text = std::net::Ipv6Addr::from(base).to_string();
    text.trim_end_matches(':').to_string()
}

#[test]
fn ipv6_without_a_subnet_takes_ula_64s_and_the_v6_route_follows_the_v6_network() {
    // `ipv6` without `fixed-cidr-v6`: the default bridge takes the pool's
    // first /64, as dockerd 28; user networks the next ones.
    let daemon = Berthd::builder().daemon_json(serde_json::json!({"ipv6": true})).start_with_busybox();
    let base = ula_base(&daemon);
    let subnets = |net: &str| {
        let out = daemon.docker(&["network", "inspect", "-f", "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}", net]);
        out.success().stdout.trim().to_string()
    };
    assert_eq!(subnets("bridge"), format!("true 172.17.0.0/16 {base}::/64"));
    daemon.docker(&["network", "create", "--ipv6", "--subnet", "10.199.64.0/24", "ula6"]).success();
    assert_eq!(subnets("ula6"), format!("true 10.199.64.0/24 {base}:1::/64"));
    daemon.docker(&["run", "-d", "--name", "ula-a", "--network", "ula6", "busybox", "sleep", "300"]).success();
    let format = "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}}{{end}}";
    assert_eq!(inspect(&daemon, format, "ula-a"), format!("{base}:1::2/64 {base}:1::1"));
    daemon.docker(&["run", "-d", "--name", "ula-bridge", "busybox", "sleep", "300"]).success();
    let v6 = inspect(&daemon, "{{.NetworkSettings.GlobalIPv6Address}} {{.NetworkSettings.IPv6Gateway}}", "ula-bridge");
    assert!(v6.starts_with(&format!("{base}::")) && v6.ends_with(&format!(" {base}::1")), "{v6}");
    let ping = daemon.docker(&["exec", "ula-bridge", "ping", "-c1", "-W5", &format!("{base}::1")]);
    assert_eq!(ping.code, 0, "{ping:?}");

    // On a v4-only network first (eth0) and then a v6 one: the v6 default
    // route goes through the v6 network's gateway. dockerd 28 takes both
    // routes from the first dual-stack endpoint.
    daemon.docker(&["network", "create", "--subnet", "10.199.65.0/24", "a-v4"]).success();
    daemon.docker(&["run", "-d", "--name", "ula-mixed", "--network", "a-v4", "busybox", "sleep", "300"]).success();
    let route6 = |c: &str| daemon.docker(&["exec", c, "ip", "-6", "route", "show", "default"]).success().stdout;
    let route4 = |c: &str| daemon.docker(&["exec", c, "ip", "route", "show", "default"]).success().stdout;
    assert_eq!(route6("ula-mixed").trim(), "");
    daemon.docker(&["network", "connect", "ula6", "ula-mixed"]).success();
    assert!(route6("ula-mixed").contains(&format!("default via {base}:1::1 dev eth1")), "{}", route6("ula-mixed"));
    assert!(route4("ula-mixed").contains("default via 10.199.64.1 dev eth1"), "{}", route4("ula-mixed"));
    daemon.docker(&["network", "disconnect", "ula6", "ula-mixed"]).success();
    assert_eq!(route6("ula-mixed").trim(), "");
    assert!(route4("ula-mixed").contains("default via 10.199.65.1 dev eth0"), "{}", route4("ula-mixed"));

    // The pool holds across a restart: the bridge keeps its /64.
    daemon.docker(&["rm", "-f", "ula-a", "ula-bridge", "ula-mixed"]).success();
    let mut daemon = daemon;
    assert!(daemon.stop().expect("daemon").success());
    let again = daemon.successor(serde_json::json!({"ipv6": true}));
    assert_eq!(ula_base(&again), base);
    let bridge = again.docker(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", "bridge"]).success();
    assert_eq!(bridge.stdout.trim(), format!("172.17.0.0/16 {base}::/64"));
}

#[test]
fn bip6_and_default_gateways_shape_the_default_bridge() {
    let daemon = Berthd::builder()
        .daemon_json(serde_json::json!({
            "ipv6": true, "bip6": "fd00:b6::5/64", "fixed-cidr-v6": "fd00:b6::/80",
            "default-gateway": "172.17.0.254", "default-gateway-v6": "fd00:b6::fe",
        }))
        .start_with_busybox();
    let ipam = daemon.docker(&["network", "inspect", "-f", "{{json .IPAM.Config}}", "bridge"]).success();
    assert_eq!(
        ipam.stdout.trim(),
        r#"[{"Subnet":"172.17.0.0/16","Gateway":"172.17.0.1","AuxiliaryAddresses":{"DefaultGatewayIPv4":"172.17.0.254"}},{"Subnet":"fd00:b6::/64","IPRange":"fd00:b6::/80","Gateway":"fd00:b6::5","AuxiliaryAddresses":{"DefaultGatewayIPv6":"fd00:b6::fe"}}]"#
    );
    let addrs = daemon.in_netns(&["ip", "-6", "addr", "show", "dev", "docker0"]).success().stdout;
    assert!(addrs.contains("inet6 fd00:b6::5/64"), "{addrs}");
    daemon.docker(&["run", "-d", "--name", "gw", "busybox", "sleep", "300"]).success();
    let top = "{{.NetworkSettings.Gateway}} {{.NetworkSettings.IPv6Gateway}}";
    assert_eq!(inspect(&daemon, top, "gw"), "172.17.0.254 fd00:b6::fe");
    let route = daemon.docker(&["exec", "gw", "ip", "route", "show", "default"]).success().stdout;
    assert!(route.contains("default via 172.17.0.254 dev eth0"), "{route}");
    let route6 = daemon.docker(&["exec", "gw", "ip", "-6", "route", "show", "default"]).success().stdout;
    assert!(route6.contains("default via fd00:b6::fe dev eth0"), "{route6}");
    // The bridge itself still answers on its addresses.
    let ping = daemon.docker(&["exec", "gw", "ping", "-c1", "-W5", "fd00:b6::5"]);
    assert_eq!(ping.code, 0, "{ping:?}");

    // A gateway off the bridge's subnet stops the daemon, as dockerd.
    let out = Berthd::builder().daemon_json(serde_json::json!({"default-gateway": "10.1.2.3"})).run_to_exit();
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("default gateway ip must be part of the network"), "{}", out.stderr);
}

/// dockerd checks `--ip`/`--ip6` whatever the network mode, `none` and
/// `host` included, and reads `::ffff:a.b.c.d` as IPv4, no IPv6 address;
/// nothing is created.
#[test]
fn endpoint_addresses_are_checked_in_every_network_mode() {
    let daemon = Berthd::start_with_busybox();
    let cases: [(&[&str], &str); 4] = [
        (&["--network", "none", "--ip", "bogus"], "invalid IPv4 address: bogus"),
        (&["--network", "host", "--ip6", "bogus"], "invalid IPv6 address: bogus"),
        (&["--network", "none", "--ip", "10.0.0.5", "--ip6", "::ffff:1.2.3.4"], "invalid IPv6 address: ::ffff:1.2.3.4"),
        (&["--ip", "300.1.1.1"], "invalid IPv4 address: 300.1.1.1"),
    ];
    for (flags, words) in cases {
        let out = daemon.docker(&[&["create"], flags, &["busybox", "true"]].concat()).failure();
        assert!(out.stderr.contains(&format!("Error response from daemon: {words}")), "{flags:?}: {}", out.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.trim(), "");
    daemon.docker(&["create", "--network", "host", "--ip", "10.0.0.5", "--ip6", "fe80::1", "busybox", "true"]).success();
}

/// The bridge driver's options are read as dockerd reads them (Go's
/// strconv, in its words): a bad MTU, boolean or binding address is refused
/// and no network is made.
#[test]
fn bad_bridge_driver_options_are_refused_as_dockerd_refuses_them() {
    let daemon = Berthd::start_with_busybox();
    let cases = [
        ("com.docker.network.driver.mtu=bogus", r#"failed to parse com.docker.network.driver.mtu value: bogus (strconv.Atoi: parsing "bogus": invalid syntax)"#),
        ("com.docker.network.driver.mtu=-5", "invalid MTU number: -5"),
        ("com.docker.network.bridge.enable_icc=bogus", r#"failed to parse com.docker.network.bridge.enable_icc value: bogus (strconv.ParseBool: parsing "bogus": invalid syntax)"#),
        ("com.docker.network.bridge.enable_ip_masquerade=x", r#"failed to parse com.docker.network.bridge.enable_ip_masquerade value: x (strconv.ParseBool: parsing "x": invalid syntax)"#),
        ("com.docker.network.bridge.host_binding_ipv4=bogus", "failed to parse com.docker.network.bridge.host_binding_ipv4 value: bogus (nil ip)"),
    ];
    let before = daemon.docker(&["network", "ls", "-q"]).success().stdout;
    for (opt, words) in cases {
        let out = daemon.docker(&["network", "create", "-o", opt, "badopts"]).failure();
        assert!(out.stderr.contains(&format!("Error response from daemon: {words}")), "{opt}: {}", out.stderr);
    }
    assert_eq!(daemon.docker(&["network", "ls", "-q"]).success().stdout, before);
    daemon.docker(&["network", "create", "-o", "com.docker.network.bridge.enable_icc=0", "-o", "com.docker.network.driver.mtu=1400", "goodopts"]).success();
}
