//! The embedded DNS server at 127.0.0.11 on user-defined networks, through
//! the stock CLI and busybox's `nslookup`: names, aliases, short IDs,
//! isolation between networks, names that go with their container, PTR,
//! forwarding to upstream resolvers, and resolv.conf as dockerd writes it.
//!
//! Every daemon runs in a network namespace of its own; the upstream
//! resolvers the tests start listen on loopback addresses in there.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;

use compat_tests::images::BusyboxImage;
use compat_tests::Berthd;

/// Create a user network on a subnet of its own.
fn network(daemon: &Berthd, name: &str, n: u32) {
    let subnet = format!("10.197.{n}.0/24");
    daemon.docker(&["network", "create", "--subnet", &subnet, name]).success();
}

fn with_busybox(daemon: Berthd) -> Berthd {
    let archive = BusyboxImage::new("busybox:latest").build().and_then(|i| i.docker_archive()).expect("busybox image");
    daemon.docker_stdin(&["load"], &archive).success();
    daemon
}

/// The IPv4 addresses busybox's nslookup printed for `name` asked from
/// `container`, or `None` when the lookup failed; with the whole output.
fn lookup(daemon: &Berthd, container: &str, name: &str) -> (Option<Vec<String>>, String) {
    let out = daemon.docker(&["exec", container, "nslookup", "-type=a", name]);
    let text = format!("{}{}", out.stdout, out.stderr);
    if out.code != 0 || text.contains("can't find") {
        return (None, text);
    }
    let addresses = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Name:"))
        .filter_map(|l| l.strip_prefix("Address:").map(|a| a.trim().to_string()))
        .collect();
    (Some(addresses), text)
}

#[track_caller]
fn resolves(daemon: &Berthd, container: &str, name: &str, want: &[&str]) {
    let (got, text) = lookup(daemon, container, name);
    let mut got = got.unwrap_or_else(|| panic!("{name} did not resolve from {container}:\n{text}"));
    got.sort();
    assert_eq!(got, want, "{name} from {container}:\n{text}");
}

#[track_caller]
fn does_not_resolve(daemon: &Berthd, container: &str, name: &str) {
    let (got, text) = lookup(daemon, container, name);
    assert!(got.is_none(), "{name} resolved from {container}:\n{text}");
}

fn inspect(daemon: &Berthd, format: &str, name: &str) -> String {
    daemon.docker(&["inspect", "-f", format, name]).success().stdout.trim().to_string()
}

#[test]
fn containers_find_each_other_by_name_alias_and_id_on_their_networks_only() {
    let daemon = Berthd::start_with_busybox();
    network(&daemon, "front", 11);
    network(&daemon, "back", 12);
    daemon
        .docker(&["run", "-d", "--name", "web", "--network", "front", "--network-alias", "www", "busybox", "sleep", "300"])
        .success();
    daemon.docker(&["run", "-d", "--name", "client", "--network", "front", "busybox", "sleep", "300"]).success();
    daemon
        .docker(&["run", "-d", "--name", "other", "--network", "back", "--hostname", "elsewhere", "busybox", "sleep", "300"])
        .success();
    let web_id = inspect(&daemon, "{{.Id}}", "web");

    resolves(&daemon, "client", "web", &["10.197.11.2"]);
    resolves(&daemon, "client", "WEB", &["10.197.11.2"]);
    resolves(&daemon, "client", "www", &["10.197.11.2"]);
    resolves(&daemon, "client", &web_id[..12], &["10.197.11.2"]);
    resolves(&daemon, "client", "web.front", &["10.197.11.2"]);
    resolves(&daemon, "web", "client", &["10.197.11.3"]);
    resolves(&daemon, "web", "web", &["10.197.11.2"]);
    resolves(&daemon, "other", "elsewhere", &["10.197.12.2"]);
    let ping = daemon.docker(&["exec", "client", "ping", "-c1", "-W2", "www"]);
    assert_eq!(ping.code, 0, "{ping:?}");
    assert_eq!(
        inspect(&daemon, "{{.NetworkSettings.Networks.front.Aliases}} {{.NetworkSettings.Networks.front.DNSNames}}", "web"),
        format!("[www] [web www {}]", &web_id[..12])
    );

    // Another network's names are not ours to resolve.
    does_not_resolve(&daemon, "other", "web");
    does_not_resolve(&daemon, "other", "www");
    does_not_resolve(&daemon, "client", "other");
    does_not_resolve(&daemon, "client", "elsewhere");

    // A name known with IPv4 only has no IPv6 address: an empty answer,
    // not an error.
    let aaaa = daemon.docker(&["exec", "client", "nslookup", "-type=aaaa", "web"]);
    let text = format!("{}{}", aaaa.stdout, aaaa.stderr);
    assert!(!text.contains("can't find"), "{text}");
    assert!(!text.contains("Address: 10."), "{text}");

    // Addresses resolve back to name.network.
    let ptr = daemon.docker(&["exec", "client", "nslookup", "10.197.11.2"]);
    assert!(ptr.stdout.contains("name = web.front"), "{ptr:?}");

    // A renamed container answers to its new name only.
    daemon.docker(&["rename", "web", "site"]).success();
    resolves(&daemon, "client", "site", &["10.197.11.2"]);
    does_not_resolve(&daemon, "client", "web");
    resolves(&daemon, "client", "www", &["10.197.11.2"]);

    // Stopped containers' names go with them, and come back with a start.
    daemon.docker(&["stop", "-t", "0", "site"]).success();
    does_not_resolve(&daemon, "client", "site");
    does_not_resolve(&daemon, "client", "www");
    daemon.docker(&["start", "site"]).success();
    resolves(&daemon, "client", "www", &["10.197.11.2"]);
    resolves(&daemon, "client", "site", &["10.197.11.2"]);
    daemon.docker(&["rm", "-f", "site"]).success();
    does_not_resolve(&daemon, "client", "site");
    daemon.docker(&["rm", "-f", "client", "other"]).success();
}

/// A one-name DNS server on a loopback address in the daemon's
/// namespace: `external.test` is `answer`, any other name is NXDOMAIN.
struct Upstream {
    address: IpAddr,
}

impl Upstream {
    fn start(netns: &Path, address: impl Into<IpAddr>, answer: Ipv4Addr) -> Self {
        let address = address.into();
        let netns = netns.to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread of its own enters the namespace and serves from there.
        std::thread::spawn(move || {
            let file = std::fs::File::open(&netns).expect("opening the daemon's netns");
            // SAFETY: changes only this thread's network namespace.
            assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
            let socket = UdpSocket::bind((address, 53)).unwrap_or_else(|e| panic!("binding {address}:53: {e}"));
            tx.send(()).expect("signalling the test");
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                if let Some(reply) = upstream_reply(&buf[..n], answer) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        rx.recv().expect("the upstream resolver did not start");
        Upstream { address }
    }
}

fn upstream_reply(query: &[u8], answer: Ipv4Addr) -> Option<Vec<u8>> {
    let mut pos = 12;
    let mut labels = Vec::new();
    while *query.get(pos)? != 0 {
        let len = usize::from(query[pos]);
        labels.push(String::from_utf8_lossy(query.get(pos + 1..pos + 1 + len)?).to_ascii_lowercase());
        pos += 1 + len;
    }
    let end = pos + 5;
    let qtype = u16::from_be_bytes([*query.get(pos + 1)?, *query.get(pos + 2)?]);
    let known = labels.join(".") == "external.test";
    let mut out = query[..2].to_vec();
    out.extend([0x81, if known { 0x80 } else { 0x83 }, 0, 1, 0, u8::from(known && qtype == 1), 0, 0, 0, 0]);
    out.extend(query.get(12..end)?);
    if known && qtype == 1 {
        out.extend([0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend(answer.octets());
    }
    Some(out)
}

#[test]
fn other_names_are_forwarded_to_the_daemon_or_container_dns_servers() {
    let daemon = with_busybox(
        Berthd::builder()
            .daemon_json(serde_json::json!({"dns": ["127.0.0.53"], "dns-search": ["corp.test"]}))
            .start(),
    );
    let netns = daemon.netns().expect("the daemon's namespace").path();
    let _daemon_wide = Upstream::start(&netns, Ipv4Addr::new(127, 0, 0, 53), Ipv4Addr::new(192, 0, 2, 10));
    let own = Upstream::start(&netns, Ipv4Addr::new(127, 0, 0, 54), Ipv4Addr::new(192, 0, 2, 20));
    network(&daemon, "fwd", 13);
    daemon.docker(&["run", "-d", "--name", "plain", "--network", "fwd", "busybox", "sleep", "300"]).success();
    let own_dns = own.address.to_string();
    daemon
        .docker(&["run", "-d", "--name", "custom", "--network", "fwd", "--dns", &own_dns, "busybox", "sleep", "300"])
        .success();

    resolves(&daemon, "plain", "external.test", &["192.0.2.10"]);
    resolves(&daemon, "custom", "external.test", &["192.0.2.20"]);
    // Local names still win over the upstream.
    resolves(&daemon, "custom", "plain.", &["10.197.13.2"]);
    let missing = daemon.docker(&["exec", "plain", "nslookup", "-type=a", "missing.test"]);
    assert!(missing.stdout.contains("NXDOMAIN"), "{missing:?}");

    // The container's resolv.conf names only the embedded server; the
    // upstreams stay with berthd.
    let resolv = daemon.docker(&["exec", "plain", "cat", "/etc/resolv.conf"]).success().stdout;
    assert_eq!(resolv, "search corp.test\nnameserver 127.0.0.11\noptions ndots:0\n");
    let resolv = daemon.docker(&["exec", "custom", "cat", "/etc/resolv.conf"]).success().stdout;
    assert_eq!(resolv, "search corp.test\nnameserver 127.0.0.11\noptions ndots:0\n");
}

#[test]
fn unreachable_upstreams_give_servfail() {
    // Nothing listens on this loopback address of the daemon's namespace.
    let daemon = with_busybox(Berthd::builder().daemon_json(serde_json::json!({"dns": ["127.0.0.99"]})).start());
    network(&daemon, "dark", 14);
    daemon.docker(&["run", "-d", "--name", "lonely", "--network", "dark", "busybox", "sleep", "300"]).success();
    let out = daemon.docker(&["exec", "lonely", "nslookup", "-type=a", "anything.test"]);
    assert!(out.stdout.contains("SERVFAIL"), "{out:?}");
    resolves(&daemon, "lonely", "lonely", &["10.197.14.2"]);
}

#[test]
fn resolv_conf_follows_dns_options_and_the_default_bridge_has_no_embedded_dns() {
    let daemon = Berthd::start_with_busybox();
    network(&daemon, "opts", 15);
    let with_options = [
        "--dns", "192.0.2.53", "--dns", "2001:db8::53", "--dns-search", "a.test", "--dns-search", "b.test", "--dns-option", "ndots:3",
        "--dns-option", "timeout:2",
    ];
    let mut args = vec!["run", "--rm", "--network", "opts"];
    args.extend(with_options);
    args.extend(["busybox", "cat", "/etc/resolv.conf"]);
    let user = daemon.docker(&args).success().stdout;
    // As dockerd 28: the embedded server forwards to the IPv6 ones too.
    assert_eq!(user, "search a.test b.test\nnameserver 127.0.0.11\noptions ndots:3 timeout:2\n");

    let mut args = vec!["run", "--rm"];
    args.extend(with_options);
    args.extend(["busybox", "cat", "/etc/resolv.conf"]);
    let bridge = daemon.docker(&args).success().stdout;
    assert_eq!(bridge, "search a.test b.test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:3 timeout:2\n");
    let only_options = daemon
        .docker(&["run", "--rm", "--network", "opts", "--dns-option", "timeout:2", "busybox", "cat", "/etc/resolv.conf"])
        .success()
        .stdout;
    assert!(only_options.ends_with("nameserver 127.0.0.11\noptions timeout:2 ndots:0\n"), "{only_options}");

    let plain = daemon.docker(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]).success().stdout;
    assert!(!plain.contains("127.0.0.11"), "{plain}");
}

#[test]
fn dns_comes_back_after_a_live_restore_restart() {
    let live = serde_json::json!({"live-restore": true});
    let mut first = with_busybox(Berthd::builder().daemon_json(live.clone()).start());
    network(&first, "kept", 16);
    first.docker(&["run", "-d", "--name", "ka", "--network", "kept", "--network-alias", "alpha", "busybox", "sleep", "300"]).success();
    first.docker(&["run", "-d", "--name", "kb", "--network", "kept", "busybox", "sleep", "300"]).success();
    resolves(&first, "kb", "alpha", &["10.197.16.2"]);
    assert!(first.stop().expect("daemon").success());

    let second = first.successor(live);
    resolves(&second, "kb", "alpha", &["10.197.16.2"]);
    resolves(&second, "ka", "kb", &["10.197.16.3"]);
    second.docker(&["stop", "-t", "0", "ka"]).success();
    does_not_resolve(&second, "kb", "alpha");
    second.docker(&["rm", "-f", "ka", "kb"]).success();
}

#[test]
fn compose_services_reach_each_other_by_service_name() {
    let daemon = Berthd::start_with_busybox();
    let project = daemon.dir().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let compose = r#"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www"]
  app:
    image: busybox
    command: ["sleep", "300"]
networks:
  default:
    ipam:
      config:
        - subnet: 10.197.17.0/24
"#;
    let file = project.join("compose.yaml");
    std::fs::write(&file, compose).unwrap();
    let file = file.to_str().unwrap();
    daemon.docker(&["compose", "-p", "named", "-f", file, "up", "-d"]).success();
    let web = inspect(&daemon, "{{.NetworkSettings.Networks.named_default.IPAddress}}", "named-web-1");
    resolves(&daemon, "named-app-1", "web", &[web.as_str()]);
    resolves(&daemon, "named-app-1", "named-web-1", &[web.as_str()]);
    // httpd may still be starting: ask until it answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = daemon.docker(&["exec", "named-app-1", "wget", "-q", "-O", "-", "http://web/"]);
        if out.code == 0 {
            assert_eq!(out.stdout, "hello-from-web\n");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "web never answered by name: {out:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    daemon.docker(&["compose", "-p", "named", "-f", file, "down", "-t", "0"]).success();
}

/// One A query for `name` over TCP to 127.0.0.11:53 from inside `netns`;
/// the answer's rcode and IPv4 addresses.
fn query_over_tcp(netns: &Path, name: &str) -> (u8, Vec<Ipv4Addr>) {
    use std::io::{Read, Write};
    let netns = netns.to_path_buf();
    let name = name.to_string();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).expect("opening the container's netns");
        // SAFETY: changes only this short-lived thread's network namespace.
        assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
        let mut query = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            query.push(label.len() as u8);
            query.extend(label.as_bytes());
        }
        query.extend([0, 0, 1, 0, 1]);
        let mut stream = std::net::TcpStream::connect(("127.0.0.11", 53)).expect("connecting over TCP");
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        stream.write_all(&(query.len() as u16).to_be_bytes()).unwrap();
        stream.write_all(&query).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).expect("answer length");
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut answer).expect("answer");
        assert_eq!(&answer[..2], &[0xAB, 0xCD], "answer ID");
        let count = u16::from_be_bytes([answer[6], answer[7]]);
        // The question is echoed; each A record after it is 16 bytes.
        let mut pos = query.len();
        let mut ips = Vec::new();
        for _ in 0..count {
            ips.push(Ipv4Addr::new(answer[pos + 12], answer[pos + 13], answer[pos + 14], answer[pos + 15]));
            pos += 16;
        }
        (answer[3] & 0x0F, ips)
    })
    .join()
    .expect("the TCP query thread")
}

#[test]
fn the_server_answers_over_tcp_too() {
    let daemon = Berthd::start_with_busybox();
    network(&daemon, "tcpnet", 18);
    daemon.docker(&["run", "-d", "--name", "asker", "--network", "tcpnet", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "target", "--network", "tcpnet", "busybox", "sleep", "300"]).success();
    let id = inspect(&daemon, "{{.Id}}", "asker");
    let netns = daemon.exec_root.join("netns").join(id);
    assert_eq!(query_over_tcp(&netns, "target"), (0, vec![Ipv4Addr::new(10, 197, 18, 3)]));
    daemon.docker(&["stop", "-t", "0", "target"]).success();
    // Forwarded now, and no upstream answers: the host's resolvers are out
    // of reach from the daemon's own namespace.
    assert_eq!(query_over_tcp(&netns, "target"), (2, vec![]));
}

#[test]
fn network_connect_and_disconnect_follow_in_dns() {
    let daemon = Berthd::start_with_busybox();
    network(&daemon, "first", 19);
    network(&daemon, "second", 20);
    daemon.docker(&["run", "-d", "--name", "mover", "--network", "first", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "watcher", "--network", "second", "busybox", "sleep", "300"]).success();
    does_not_resolve(&daemon, "watcher", "mover");
    daemon.docker(&["network", "connect", "--alias", "moved", "second", "mover"]).success();
    let ip = inspect(&daemon, "{{.NetworkSettings.Networks.second.IPAddress}}", "mover");
    resolves(&daemon, "watcher", "mover", &[ip.as_str()]);
    resolves(&daemon, "watcher", "moved", &[ip.as_str()]);
    resolves(&daemon, "mover", "watcher", &["10.197.20.2"]);
    daemon.docker(&["network", "disconnect", "second", "mover"]).success();
    does_not_resolve(&daemon, "watcher", "mover");
    does_not_resolve(&daemon, "watcher", "moved");
}

#[test]
fn a_default_bridge_container_connected_to_a_user_network_gets_the_embedded_resolver() {
    let daemon = Berthd::start_with_busybox();
    network(&daemon, "joined", 21);
    daemon.docker(&["run", "-d", "--name", "peer", "--network", "joined", "busybox", "sleep", "300"]).success();
    daemon.docker(&["run", "-d", "--name", "plain", "busybox", "sleep", "300"]).success();
    let before = daemon.docker(&["exec", "plain", "cat", "/etc/resolv.conf"]).success().stdout;
    assert!(!before.contains("127.0.0.11"), "{before}");
    daemon.docker(&["network", "connect", "joined", "plain"]).success();
    let after = daemon.docker(&["exec", "plain", "cat", "/etc/resolv.conf"]).success().stdout;
    assert!(after.starts_with("nameserver 127.0.0.11\n") && after.contains("options ndots:0"), "{after}");
    resolves(&daemon, "plain", "peer", &["10.197.21.2"]);
    // Created on both networks, it has the embedded resolver from its start.
    daemon.docker(&["create", "--name", "both", "busybox", "sleep", "300"]).success();
    daemon.docker(&["network", "connect", "joined", "both"]).success();
    daemon.docker(&["start", "both"]).success();
    let both = daemon.docker(&["exec", "both", "cat", "/etc/resolv.conf"]).success().stdout;
    assert!(both.starts_with("nameserver 127.0.0.11\n"), "{both}");
    resolves(&daemon, "both", "peer", &["10.197.21.2"]);
}

#[test]
fn ipv6_upstreams_are_forwarded_and_ipv6_addresses_answer_ptr() {
    let daemon = with_busybox(Berthd::builder().daemon_json(serde_json::json!({"dns": ["::1"]})).start());
    let netns = daemon.netns().expect("the daemon's namespace").path();
    // Two IPv6 resolvers in the daemon's namespace: on ::1 (daemon.json)
    // and on an address of its loopback (a container's `--dns`).
    daemon.in_netns(&["ip", "-6", "addr", "add", "fd00:53::53/128", "dev", "lo", "nodad"]).success();
    let _daemon_wide = Upstream::start(&netns, std::net::Ipv6Addr::LOCALHOST, Ipv4Addr::new(192, 0, 2, 30));
    let own = Upstream::start(&netns, "fd00:53::53".parse::<std::net::Ipv6Addr>().unwrap(), Ipv4Addr::new(192, 0, 2, 40));
    daemon.docker(&["network", "create", "--ipv6", "--subnet", "10.197.20.0/24", "--subnet", "fd00:197:20::/64", "v6dns"]).success();
    daemon.docker(&["run", "-d", "--name", "p6-a", "--network", "v6dns", "busybox", "sleep", "300"]).success();
    let own_dns = own.address.to_string();
    daemon
        .docker(&["run", "-d", "--name", "p6-b", "--network", "v6dns", "--dns", &own_dns, "busybox", "sleep", "300"])
        .success();
    resolves(&daemon, "p6-a", "external.test", &["192.0.2.30"]);
    resolves(&daemon, "p6-b", "external.test", &["192.0.2.40"]);
    let resolv = daemon.docker(&["exec", "p6-b", "cat", "/etc/resolv.conf"]).success().stdout;
    assert!(resolv.contains("nameserver 127.0.0.11\n") && !resolv.contains("fd00:53::53"), "{resolv}");

    // PTR for an IPv6 address on the network: `name.network`, as for IPv4.
    let b6 = inspect(&daemon, "{{.NetworkSettings.Networks.v6dns.GlobalIPv6Address}}", "p6-b");
    assert_eq!(b6, "fd00:197:20::3");
    let ptr = daemon.docker(&["exec", "p6-a", "nslookup", &b6, "127.0.0.11"]).success();
    assert!(ptr.stdout.contains("name = p6-b.v6dns"), "{ptr:?}");
    let ptr4 = daemon.docker(&["exec", "p6-a", "nslookup", "10.197.20.3", "127.0.0.11"]).success();
    assert!(ptr4.stdout.contains("name = p6-b.v6dns"), "{ptr4:?}");
}
