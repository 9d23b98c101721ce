//! Published ports through the stock CLI: `-p`, `-P`, `docker port`, the
//! PORTS column, reaching them on loopback, on the bridge address and from
//! another host, and conflicts that leave nothing behind.

use compat_tests::netns::NetNs;
use compat_tests::{eventually, Berthd};

fn inspect(daemon: &Berthd, format: &str, name: &str) -> String {
    daemon.inspect_format(format, name)
}


/// `curl` from the daemon's namespace (the host, as the container sees it).
fn fetch(daemon: &Berthd, url: &str) -> String {
    eventually(10, url, || {
        let got = daemon.in_netns(&["curl", "-sS", "-g", "--max-time", "3", url]);
        (got.code == 0).then_some(got.stdout)
    })
}

/// A web server in a container answering with its own hostname.
fn web(daemon: &Berthd, name: &str, publish: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--hostname", name];
    args.extend_from_slice(publish);
    args.extend(["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    daemon.docker(&args).success().stdout.trim().to_string()
}

#[test]
fn published_port_is_reached_on_loopback_bridge_and_from_outside() {
    let daemon = Berthd::start_with_busybox();
    web(&daemon, "w1", &["-p", "8080:80"]);
    assert_eq!(fetch(&daemon, "http://127.0.0.1:8080/hostname"), "w1\n");
    assert_eq!(fetch(&daemon, "http://172.17.0.1:8080/hostname"), "w1\n");

    let outside = NetNs::create(&compat_tests::berthd::unique_name("outside"));
    daemon.netns().expect("own namespace").link_to(&outside, "10.252.0.1/24", "10.252.0.2/24");
    let from_outside = outside.run(&["curl", "-sS", "--max-time", "3", "http://10.252.0.1:8080/hostname"]);
    assert_eq!(from_outside.stdout, "w1\n", "{from_outside:?}");

    // An IPv4-only container is on [::] too, through the proxy, as dockerd.
    assert_eq!(fetch(&daemon, "http://[::1]:8080/hostname"), "w1\n");
    assert_eq!(daemon.docker(&["port", "w1"]).success().stdout, "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n");
    assert_eq!(daemon.docker(&["port", "w1", "80"]).success().stdout, "0.0.0.0:8080\n[::]:8080\n");
    let ps = daemon.docker(&["ps", "--format", "{{.Names}} {{.Ports}}"]).success().stdout;
    assert_eq!(ps.trim(), "w1 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp");
    assert_eq!(
        inspect(&daemon, "{{json .NetworkSettings.Ports}} {{json .HostConfig.PortBindings}}", "w1"),
        r#"{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}]} {"80/tcp":[{"HostIp":"","HostPort":"8080"}]}"#
    );

    // Stopped: no ports, and the host port is free for another container.
    daemon.docker(&["stop", "-t", "0", "w1"]).success();
    assert_eq!(inspect(&daemon, "{{json .NetworkSettings.Ports}}", "w1"), "{}");
    web(&daemon, "w2", &["-p", "127.0.0.1:8080:80/tcp"]);
    assert_eq!(fetch(&daemon, "http://127.0.0.1:8080/hostname"), "w2\n");
    assert_eq!(daemon.docker(&["port", "w2"]).success().stdout, "80/tcp -> 127.0.0.1:8080\n");
}

#[test]
fn a_taken_port_fails_the_start_and_leaves_nothing_behind() {
    let daemon = Berthd::start_with_busybox();
    web(&daemon, "first", &["-p", "8081:80"]);
    let rules_before = daemon.in_netns(&["iptables", "-t", "nat", "-S"]).success().stdout;
    let out = daemon.docker(&["run", "-d", "--name", "second", "-p", "8081:80", "busybox", "httpd", "-f", "-p", "80"]).failure();
    assert!(out.stderr.contains("driver failed programming external connectivity on endpoint second"), "{}", out.stderr);
    assert!(out.stderr.contains("Bind for 0.0.0.0:8081 failed: port is already allocated"), "{}", out.stderr);
    assert_eq!(inspect(&daemon, "{{.State.Status}}", "second"), "created");
    assert_eq!(daemon.in_netns(&["iptables", "-t", "nat", "-S"]).success().stdout, rules_before);
    let veths = daemon.in_netns(&["ip", "-o", "link", "show", "master", "docker0"]).success().stdout;
    assert_eq!(veths.lines().count(), 1, "{veths}");
    let members = daemon.docker(&["network", "inspect", "-f", "{{len .Containers}}", "bridge"]).success().stdout;
    assert_eq!(members.trim(), "1");

    // A port some other program holds.
    let _holder = daemon.netns().unwrap().spawn(&["busybox", "nc", "-l", "-p", "8082"]);
    eventually(10, "the holder to listen", || {
        let listening = daemon.in_netns(&["busybox", "netstat", "-ltn"]).stdout;
        listening.contains(":8082 ").then_some(())
    });
    let out = daemon.docker(&["run", "-d", "-p", "8082:80", "busybox", "true"]).failure();
    assert!(out.stderr.contains("address already in use"), "{}", out.stderr);
    // The first container still serves.
    assert_eq!(fetch(&daemon, "http://127.0.0.1:8081/hostname"), "first\n");
}

#[test]
fn publish_all_takes_ports_from_the_ephemeral_range() {
    let daemon = Berthd::start_with_busybox();
    web(&daemon, "all", &["-P", "--expose", "80", "--expose", "9999/udp"]);
    let range = daemon.in_netns(&["cat", "/proc/sys/net/ipv4/ip_local_port_range"]).success().stdout;
    let (low, high): (u16, u16) = {
        let mut it = range.split_whitespace().map(|p| p.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    let port: u16 = inspect(&daemon, "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}", "all").parse().unwrap();
    assert!((low..=high).contains(&port), "{port} outside {low}-{high}");
    let udp: u16 = inspect(&daemon, "{{(index (index .NetworkSettings.Ports \"9999/udp\") 0).HostPort}}", "all").parse().unwrap();
    assert!((low..=high).contains(&udp));
    assert_eq!(fetch(&daemon, &format!("http://127.0.0.1:{port}/hostname")), "all\n");
    let listed = daemon.docker(&["port", "all"]).success().stdout;
    assert!(listed.contains(&format!("80/tcp -> 0.0.0.0:{port}")), "{listed}");
    // As dockerd's allocator (the daemon's namespace has its own ports):
    // the range's start, per protocol, then each next one in turn, also
    // after a port is given back.
    assert_eq!((port, udp), (low, low));
    web(&daemon, "second", &["-P", "--expose", "80"]);
    let second = inspect(&daemon, "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}", "second");
    assert_eq!(second, (low + 1).to_string());
    daemon.docker(&["rm", "-f", "all"]).success();
    web(&daemon, "third", &["-P", "--expose", "80"]);
    let third = inspect(&daemon, "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}", "third");
    assert_eq!(third, (low + 2).to_string());
}

#[test]
fn bad_port_specs_are_refused_at_create() {
    let daemon = Berthd::start_with_busybox();
    let body = br#"{"Image":"busybox","HostConfig":{"PortBindings":{"x/tcp":[{"HostPort":"1"}]}}}"#;
    let resp = daemon.request("POST", "/v1.47/containers/create", Some(body));
    assert_eq!(resp.status, 400, "{}", resp.text());
    let names = daemon.docker(&["ps", "-a", "-q"]).success().stdout;
    assert!(names.is_empty());
}

#[test]
fn live_restore_keeps_addresses_and_published_ports() {
    let live = serde_json::json!({"live-restore": true});
    let mut first = Berthd::builder().daemon_json(live.clone()).start();
    let archive = compat_tests::images::BusyboxImage::new("busybox:latest").build().unwrap().docker_archive().unwrap();
    first.docker_stdin(&["load"], &archive).success();
    web(&first, "kept", &["-p", "8090:80"]);
    let ip = inspect(&first, "{{.NetworkSettings.IPAddress}}", "kept");
    assert_eq!(fetch(&first, "http://127.0.0.1:8090/hostname"), "kept\n");
    assert!(first.stop().expect("daemon").success());
    // While berthd is down, other hosts still reach the port (DNAT).
    let outside = NetNs::create(&compat_tests::berthd::unique_name("outside"));
    first.netns().expect("own namespace").link_to(&outside, "10.253.0.1/24", "10.253.0.2/24");
    let down = outside.run(&["curl", "-sS", "--max-time", "3", "http://10.253.0.1:8090/hostname"]);
    assert_eq!(down.stdout, "kept\n", "{down:?}");

    let second = first.successor(live);
    assert_eq!(inspect(&second, "{{.NetworkSettings.IPAddress}}", "kept"), ip);
    assert_eq!(fetch(&second, "http://127.0.0.1:8090/hostname"), "kept\n");
    assert_eq!(fetch(&second, "http://[::1]:8090/hostname"), "kept\n");
    assert_eq!(second.docker(&["port", "kept"]).success().stdout, "80/tcp -> 0.0.0.0:8090\n80/tcp -> [::]:8090\n");
    // No address is handed out twice.
    second.docker(&["run", "-d", "--name", "next", "busybox", "sleep", "300"]).success();
    assert_ne!(inspect(&second, "{{.NetworkSettings.IPAddress}}", "next"), ip);
}

#[test]
fn without_the_userland_proxy_published_ports_take_hairpin_nat() {
    let daemon = Berthd::builder().daemon_json(serde_json::json!({"userland-proxy": false})).start_with_busybox();
    web(&daemon, "hp", &["-p", "8090:80"]);
    // Nothing in berthd answers the port: loopback works through DNAT,
    // route_localnet and masquerade, as dockerd's.
    assert_eq!(fetch(&daemon, "http://127.0.0.1:8090/hostname"), "hp\n");
    assert_eq!(fetch(&daemon, "http://172.17.0.1:8090/hostname"), "hp\n");
    let nat = daemon.in_netns(&["iptables", "-t", "nat", "-S"]).success().stdout;
    assert!(nat.contains("-A OUTPUT -m addrtype --dst-type LOCAL -j BERTHD\n"), "{nat}");
    assert!(!nat.contains("! -d 127.0.0.0/8"), "{nat}");
    assert!(nat.contains("-A BERTHD-POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE"), "{nat}");
    assert!(nat.contains("-A BERTHD -p tcp -m tcp --dport 8090 -j DNAT --to-destination 172.17.0.2:80"), "{nat}");
    let localnet = daemon.in_netns(&["cat", "/proc/sys/net/ipv4/conf/docker0/route_localnet"]).success().stdout;
    assert_eq!(localnet, "1\n");
    // A container reaches its own published port through the host (hairpin).
    let own = daemon.docker(&["exec", "hp", "timeout", "3", "wget", "-qO-", "http://172.17.0.1:8090/hostname"]);
    assert_eq!(own.stdout, "hp\n", "{own:?}");
    // The port is still taken while the container runs.
    let out = daemon.docker(&["run", "-d", "--name", "hp2", "-p", "8090:80", "busybox", "httpd", "-f", "-p", "80"]).failure();
    assert!(out.stderr.contains("Bind for 0.0.0.0:8090 failed: port is already allocated"), "{}", out.stderr);
    assert_eq!(daemon.docker(&["port", "hp"]).success().stdout, "80/tcp -> 0.0.0.0:8090\n");

    // A container with IPv6: `[::]` by ip6tables DNAT; `[::1]` cannot be
    // DNATed (no route_localnet in IPv6), so berthd's `[::]` socket serves
    // it (dockerd 28 leaves it to a socket nobody accepts on).
    daemon.docker(&["network", "create", "--ipv6", "--subnet", "10.199.66.0/24", "--subnet", "fd00:66::/64", "hp6"]).success();
    web(&daemon, "hp6", &["--network", "hp6", "-p", "8097:80"]);
    assert_eq!(daemon.docker(&["port", "hp6"]).success().stdout, "80/tcp -> 0.0.0.0:8097\n80/tcp -> [::]:8097\n");
    assert_eq!(fetch(&daemon, "http://[fd00:66::1]:8097/hostname"), "hp6\n");
    assert_eq!(fetch(&daemon, "http://[::1]:8097/hostname"), "hp6\n");
    let nat6 = daemon.in_netns(&["ip6tables", "-t", "nat", "-S", "OUTPUT"]).success().stdout;
    assert!(nat6.contains("-A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j BERTHD"), "{nat6}");
}
