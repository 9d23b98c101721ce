//! Operating berthd: systemd socket activation and readiness, remote access
//! (TLS contexts, `docker system dial-stdio`), reload on SIGHUP, metrics,
//! logs, packaging and the switch-over from dockerd.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use compat_tests::cli::{self, CmdOutput};
use compat_tests::tls::TlsCerts;
use compat_tests::{eventually, Berthd};

// ---------------------------------------------------------------- helpers

/// Wait until `socket` answers `GET /_ping` with 200.
#[track_caller]
fn wait_for_ping(daemon: &Berthd, socket: &Path) {
    eventually(30, &format!("a ping on {}; log:\n{}", socket.display(), daemon.log()), || {
        compat_tests::client::try_raw_request(socket, "GET", "/_ping", &[], None)
            .ok()
            .filter(|r| r.status == 200)
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The stock CLI with its own config dir and no DOCKER_HOST: contexts decide.
fn docker_with_config(config: &Path, args: &[&str], stdin: Option<&[u8]>) -> CmdOutput {
    let mut cmd = Command::new(cli::docker_binary());
    cmd.args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    cli::run_piped(cmd, stdin)
}

/// Receive one datagram from systemd's notify socket (as the test plays it).
fn recv_notify(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notify message within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

// ---------------------------------------------------------------- systemd

/// The test plays systemd: it binds two sockets, hands them over as fds 3
/// and 4 with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, and listens on
/// NOTIFY_SOCKET. `-H fd://` serves both, READY=1 comes once the API is up
/// and STOPPING=1 on SIGTERM.
#[test]
fn fd_host_serves_sockets_handed_over_by_systemd_and_notifies_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let sockets: Vec<OwnedFd> = vec![UnixListener::bind(&a).unwrap().into(), UnixListener::bind(&b).unwrap().into()];
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut daemon = Berthd::builder()
        .without_default_host()
        .args(["-H", "fd://"])
        .env("NOTIFY_SOCKET", notify_path.to_str().unwrap())
        .systemd_sockets(sockets, "docker.socket:extra")
        .spawn();
    let ready = recv_notify(&notify);
    let pid = daemon.pid().unwrap();
    assert_eq!(ready, format!("READY=1\nMAINPID={pid}"), "log:\n{}", daemon.log());
    // Ready means ready: both sockets answer at once, without polling.
    for socket in [&a, &b] {
        let resp = compat_tests::client::try_raw_request(socket, "GET", "/_ping", &[], None).unwrap();
        assert_eq!(resp.status, 200);
        let out = daemon.docker_at(&format!("unix://{}", socket.display()), &["version"]).success();
        assert!(out.stdout.contains("Server: berthd"), "{}", out.stdout);
    }
    daemon.signal(libc::SIGTERM);
    assert_eq!(recv_notify(&notify), "STOPPING=1");
    assert!(daemon.stop().is_some_and(|s| s.success()));
}

/// `-H fd://4` serves the second socket only; the first is closed, as
/// dockerd does.
#[test]
fn fd_host_with_a_number_serves_that_socket_only() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let sockets: Vec<OwnedFd> = vec![UnixListener::bind(&a).unwrap().into(), UnixListener::bind(&b).unwrap().into()];
    let daemon = Berthd::builder()
        .without_default_host()
        .args(["-H", "fd://4"])
        .systemd_sockets(sockets, "a:b")
        .spawn();
    wait_for_ping(&daemon, &b);
    let refused = eventually(10, "fd 3 closed", || UnixStream::connect(&a).err());
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    let out = Berthd::builder()
        .without_default_host()
        .args(["-H", "fd://9"])
        .systemd_sockets(vec![UnixListener::bind(dir.path().join("c.sock")).unwrap().into()], "c")
        .run_to_exit();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("too few socket activated files passed in by systemd"), "{}", out.stderr);
}

// ---------------------------------------------------------------- remote access

/// `docker context create` with a TCP+TLS endpoint, then `docker --context`:
/// the way operators reach a remote daemon. TLS 1.0/1.1 are refused.
#[test]
fn docker_context_with_a_tls_endpoint_reaches_berthd() {
    let certs = TlsCerts::generate().unwrap();
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let daemon = Berthd::builder().host_network().args(["-H", &host]).args(certs.daemon_args()).start();
    let config = tempfile::tempdir().unwrap();
    let endpoint = format!(
        "host={host},ca={},cert={},key={}",
        certs.ca().display(),
        certs.client_cert().display(),
        certs.client_key().display()
    );
    docker_with_config(config.path(), &["context", "create", "berth-tls", "--docker", &endpoint], None).success();
    let out = docker_with_config(config.path(), &["--context", "berth-tls", "version"], None).success();
    assert!(out.stdout.contains("Server: berthd"), "{}", out.stdout);
    docker_with_config(config.path(), &["context", "use", "berth-tls"], None).success();
    let out = docker_with_config(config.path(), &["info", "--format", "{{.ID}}"], None).success();
    let id = daemon.docker(&["info", "--format", "{{.ID}}"]).success().stdout;
    assert_eq!(out.stdout, id);

    // Old protocol versions are refused; TLS 1.2 is served.
    let openssl = |version: &str| {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}"), version, "-CAfile"])
            .arg(certs.ca())
            .args(["-cert"])
            .arg(certs.client_cert())
            .args(["-key"])
            .arg(certs.client_key());
        cli::run_piped(cmd, Some(b"Q\n"))
    };
    assert_ne!(openssl("-tls1_1").code, 0, "TLS 1.1 accepted");
    let tls12 = openssl("-tls1_2");
    assert!(tls12.stdout.contains("Protocol  : TLSv1.2") || tls12.stdout.contains("TLSv1.2"), "{}", tls12.stdout);
}

/// What `docker context create --docker host=ssh://...` runs on the remote
/// side: `docker system dial-stdio`, a CLI-side proxy to the local socket.
/// Against berthd's unix socket it carries HTTP both ways.
#[test]
fn docker_system_dial_stdio_proxies_to_berthd() {
    let daemon = Berthd::start();
    let mut cmd = Command::new(cli::docker_binary());
    cmd.args(["system", "dial-stdio"])
        .env("DOCKER_HOST", daemon.host())
        .env("DOCKER_CONFIG", daemon.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // stdin stays open until the answer is in: like ssh, the peer keeps
    // talking; the server's close ends the session.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"GET /v1.51/version HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    drop(stdin);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let _ = child.wait();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("\"Components\""), "{out}");
}

/// An sshd of the test's own on 127.0.0.1 (its own host key, config and
/// authorized key), stopped when dropped.
struct Sshd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Sshd {
    /// Logins with the key `dir/id` get `DOCKER_HOST=docker_host`, as a
    /// remote host whose daemon listens there.
    fn start(docker_host: &str) -> Sshd {
        const SSHD: &str = "/usr/sbin/sshd";
        assert!(Path::new(SSHD).is_file(), "{SSHD} is missing: install openssh-server (scripts/setup.sh --tests does)");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "id"] {
            let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(d.join(key)).output().unwrap();
            assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        }
        let id = std::fs::read_to_string(d.join("id.pub")).unwrap();
        // The remote side runs `docker` from PATH: the stock CLI's directory first.
        let cli_dir = cli::docker_binary().parent().unwrap().display().to_string();
        std::fs::write(
            d.join("authorized_keys"),
            format!("environment=\"DOCKER_HOST={docker_host}\",environment=\"PATH={cli_dir}:/usr/bin:/bin\" {id}"),
        )
        .unwrap();
        let port = free_port();
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {host_key}")).unwrap();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PermitUserEnvironment DOCKER_HOST,PATH\n",
                d = d.display()
            ),
        )
        .unwrap();
        // The client side: the CLI runs `ssh` from PATH; this one uses the
        // test's key and pins the test's host key.
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::write(
            d.join("bin/ssh"),
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F /dev/null -i {d}/id -o IdentitiesOnly=yes -o BatchMode=yes \
                 -o UserKnownHostsFile={d}/known_hosts -o StrictHostKeyChecking=yes \"$@\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("bin/ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let sshd = Sshd { child, dir, port };
        eventually(30, &format!("sshd listening; log:\n{}", sshd.log()), || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        sshd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The stock CLI with this sshd's `ssh` first in PATH.
    fn docker(&self, config: &Path, args: &[&str]) -> CmdOutput {
        let path = format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new(cli::docker_binary());
        cmd.args(args).env("DOCKER_CONFIG", config).env("PATH", path).env_remove("DOCKER_HOST").env_remove("DOCKER_CONTEXT");
        cli::run_piped(cmd, None)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `docker context create --docker host=ssh://root@127.0.0.1:PORT`: the CLI
/// logs in over ssh and runs `docker system dial-stdio` on the remote side,
/// which talks to berthd's unix socket. Requests, hijacked streams (run)
/// and the context switch all work through it.
#[test]
fn docker_context_over_ssh_reaches_berthd() {
    let daemon = Berthd::start_with_busybox();
    let sshd = Sshd::start(&daemon.host());
    let config = tempfile::tempdir().unwrap();
    let host = format!("host=ssh://root@127.0.0.1:{}", sshd.port);
    sshd.docker(config.path(), &["context", "create", "berth-ssh", "--docker", &host]).success();
    let out = sshd.docker(config.path(), &["--context", "berth-ssh", "version"]);
    assert_eq!(out.code, 0, "{}\n{}\nsshd log:\n{}", out.stdout, out.stderr, sshd.log());
    assert!(out.stdout.contains("Server: berthd"), "{}", out.stdout);
    sshd.docker(config.path(), &["context", "use", "berth-ssh"]).success();
    let id = daemon.docker(&["info", "--format", "{{.ID}}"]).success().stdout;
    assert_eq!(sshd.docker(config.path(), &["info", "--format", "{{.ID}}"]).success().stdout, id);
    let run = sshd.docker(config.path(), &["run", "--rm", "busybox", "echo", "over ssh"]).success();
    assert_eq!(run.stdout.trim(), "over ssh");
    assert!(sshd.log().contains("Accepted publickey for root"), "{}", sshd.log());
}

// ---------------------------------------------------------------- reload

fn write_config(daemon: &Berthd, text: &str) {
    std::fs::write(&daemon.config_file, text).unwrap();
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The daemon events between `since` and now, as JSON values.
fn daemon_events(daemon: &Berthd, since: u64) -> Vec<serde_json::Value> {
    let until = (now_secs() + 1).to_string();
    let out = daemon
        .docker(&["events", "--since", &since.to_string(), "--until", &until, "--filter", "type=daemon", "--format", "{{json .}}"])
        .success();
    out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// SIGHUP with a new mirror list: `docker info` shows it, a pull of a
/// Docker Hub name goes through it, the log says what changed, and the
/// daemon `reload` event carries dockerd's attributes.
#[test]
fn reload_with_a_changed_mirror_list_pulls_through_the_new_mirror() {
    let registry = compat_tests::registry::Registry::start().unwrap();
    let img = compat_tests::images::BusyboxImage::new("busybox:latest").build().unwrap();
    registry.push_oci(&img, "library/busybox", "latest").unwrap();
    let daemon = Berthd::builder()
        .daemon_json(serde_json::json!({"registry-mirrors": ["http://127.0.0.1:1"], "labels": ["stage=before"]}))
        .start();
    daemon.reach_host_port(registry.port());
    let since = now_secs();
    daemon.docker(&["pull", "busybox"]).failure();

    let mirror = format!("http://{}", registry.addr());
    write_config(&daemon, &serde_json::json!({"registry-mirrors": [mirror], "labels": ["stage=after"]}).to_string());
    daemon.signal(libc::SIGHUP);
    let mirrors = eventually(20, "the new mirror in docker info", || {
        let out = daemon.docker(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]).success();
        Some(out.stdout).filter(|m| m.contains(registry.addr()))
    });
    assert_eq!(mirrors.trim(), format!("[\"{mirror}/\"]"));
    let labels = daemon.docker(&["info", "--format", "{{json .Labels}}"]).success().stdout;
    assert_eq!(labels.trim(), r#"["stage=after"]"#);

    let out = daemon.docker(&["pull", "busybox"]).success();
    assert!(out.stdout.contains("Status: Downloaded newer image for busybox:latest"), "{}", out.stdout);

    let log = daemon.log();
    assert!(log.contains("Got signal to reload configuration"), "{log}");
    let changed: Vec<&str> = log.lines().filter(|l| l.contains("configuration changed")).collect();
    assert!(changed.iter().any(|l| l.contains("registry-mirrors") && l.contains(registry.addr())), "{log}");
    assert!(changed.iter().any(|l| l.contains("labels") && l.contains("stage=after")), "{log}");

    let events = daemon_events(&daemon, since);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["Type"], "daemon");
    assert_eq!(event["Action"], "reload");
    let id = daemon.docker(&["info", "--format", "{{.ID}}"]).success().stdout;
    assert_eq!(event["Actor"]["ID"], id.trim());
    let attrs = &event["Actor"]["Attributes"];
    assert_eq!(attrs["registry-mirrors"], format!("[\"{mirror}/\"]"));
    assert_eq!(attrs["labels"], r#"["stage=after"]"#);
    assert_eq!(attrs["insecure-registries"], "[]");
    assert_eq!(attrs["debug"], "false");
    assert_eq!(attrs["live-restore"], "false");
    assert_eq!(attrs["max-concurrent-downloads"], "3");
    assert_eq!(attrs["max-concurrent-uploads"], "5");
    assert_eq!(attrs["shutdown-timeout"], "15");
    assert_eq!(attrs["default-runtime"], "runc");
    assert!(attrs["name"].as_str().is_some_and(|n| !n.is_empty()), "{attrs}");
}

/// A broken file (bad JSON, an unknown key, a bad mirror) changes nothing:
/// the reason is logged, `docker info` still shows the running values, no
/// reload event; a good file afterwards is applied.
#[test]
fn reload_with_a_broken_file_keeps_the_running_configuration() {
    let daemon = Berthd::builder().daemon_json(serde_json::json!({"labels": ["stage=running"], "debug": false})).start();
    let since = now_secs();
    let cases = [
        ("{\"labels\": [\"stage=broken\"],", "unable to configure the Docker daemon with file"),
        (r#"{"labels": ["stage=broken"], "no-such-key": 1}"#, "the following directives don't match any configuration option: no-such-key"),
        (r#"{"labels": ["stage=broken"], "registry-mirrors": ["not a mirror"]}"#, "not a mirror"),
    ];
    for (n, (text, reason)) in cases.iter().enumerate() {
        write_config(&daemon, text);
        daemon.signal(libc::SIGHUP);
        let errors = eventually(20, "the reload error in the log", || {
            let log = daemon.log();
            let errors: Vec<String> =
                log.lines().filter(|l| l.contains("Error reloading configuration")).map(str::to_string).collect();
            Some(errors).filter(|e| e.len() > n)
        });
        assert!(errors[n].contains(reason), "{}", errors[n]);
        let labels = daemon.docker(&["info", "--format", "{{json .Labels}}"]).success().stdout;
        assert_eq!(labels.trim(), r#"["stage=running"]"#);
    }
    assert!(daemon_events(&daemon, since).is_empty());

    write_config(&daemon, r#"{"labels": ["stage=fixed"], "debug": true}"#);
    daemon.signal(libc::SIGHUP);
    eventually(20, "the fixed file applied", || {
        let out = daemon.docker(&["info", "--format", "{{json .Labels}} {{.Debug}}"]).success();
        Some(()).filter(|_| out.stdout.trim() == r#"["stage=fixed"] true"#)
    });
    assert_eq!(daemon_events(&daemon, since).len(), 1);
}

// ---------------------------------------------------------------- metrics and logs

fn scrape(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.1 200") && head.contains("text/plain; version=0.0.4")).then(|| body.to_string())
}

/// The value of one sample line (`name{labels} value`).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

/// `metrics-addr`: Prometheus text with per-endpoint request counts and
/// latencies, container states and pulls, as the CLI's work shows them.
#[test]
fn metrics_addr_serves_requests_container_states_and_pulls() {
    let port = free_port();
    let daemon = Berthd::builder()
        .host_network()
        .daemon_json(serde_json::json!({"metrics-addr": format!("127.0.0.1:{port}")}))
        .start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "up", "busybox", "sleep", "600"]).success();
    daemon.docker(&["create", "--name", "down", "busybox", "true"]).success();
    daemon.docker(&["inspect", "up"]).success();
    daemon.docker(&["inspect", "nothing-here"]).failure();
    daemon.docker(&["pull", "127.0.0.1:1/nothing:latest"]).failure();

    let metrics = scrape(port).expect("a scrape");
    assert!(metrics.contains("# TYPE berthd_http_requests_total counter"), "{metrics}");
    assert_eq!(sample(&metrics, "engine_daemon_container_states_containers{state=\"running\"}"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "engine_daemon_container_states_containers{state=\"stopped\"}"), Some(1.0), "{metrics}");
    let inspect = "method=\"GET\",route=\"/containers/{id}/json\"";
    assert!(sample(&metrics, &format!("berthd_http_requests_total{{{inspect},status=\"200\"}}")).is_some_and(|n| n >= 1.0), "{metrics}");
    assert_eq!(sample(&metrics, &format!("berthd_http_requests_total{{{inspect},status=\"404\"}}")), Some(1.0), "{metrics}");
    let count = sample(&metrics, &format!("berthd_http_request_duration_seconds_count{{{inspect}}}")).unwrap();
    assert_eq!(sample(&metrics, &format!("berthd_http_request_duration_seconds_bucket{{{inspect},le=\"+Inf\"}}")), Some(count));
    assert_eq!(sample(&metrics, "berthd_image_pulls_total{result=\"failure\"}"), Some(1.0), "{metrics}");
    assert!(metrics.contains("engine_daemon_engine_info{daemon=\"berthd\""), "{metrics}");

    // The address is the metrics', not the API's.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"GET /_ping HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
}

/// `log-format: json` writes one JSON object per line with logrus's keys;
/// debug mode logs every request, with secret-bearing query values hidden
/// and no bodies (environment values, credentials) at all.
#[test]
fn json_logs_and_debug_request_logging_without_secrets() {
    let daemon = Berthd::builder().daemon_json(serde_json::json!({"log-format": "json", "debug": true})).start_with_busybox();
    daemon
        .docker(&["create", "--name", "sec", "-e", "DB_PASSWORD=hunter2-env", "busybox", "true"])
        .success();
    daemon.docker(&["info"]).success();
    let _ = daemon.docker(&["build", "--build-arg", "TOKEN=hunter2-arg", "-t", "x", "-"]);
    daemon.docker(&["inspect", "sec"]).success();
    let log = daemon.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        assert!(line["level"].is_string() && line["msg"].is_string() && line["time"].is_string(), "{line}");
    }
    let requests: Vec<&serde_json::Value> = lines.iter().filter(|l| l["msg"] == "request").collect();
    assert!(requests.iter().any(|l| l["http.path"].as_str().is_some_and(|p| p.ends_with("/containers/create"))), "{log}");
    assert!(requests.iter().any(|l| l["http.path"].as_str().is_some_and(|p| p.ends_with("/containers/sec/json"))), "{log}");
    assert!(!log.contains("hunter2"), "a secret reached the log:\n{log}");

    // An unknown format is refused at start, with dockerd's words.
    let bad = Berthd::builder().daemon_json(serde_json::json!({"log-format": "yaml"})).run_to_exit();
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("invalid log format: yaml"), "{}", bad.stderr);
}

/// A reload that turns debug off stops the request log.
#[test]
fn reload_changes_the_log_level() {
    let daemon = Berthd::builder().daemon_json(serde_json::json!({"debug": true})).start();
    daemon.docker(&["version"]).success();
    assert!(daemon.log().contains("http.route=\"/version\"") || daemon.log().contains("http.route=/version"), "{}", daemon.log());
    write_config(&daemon, r#"{"debug": false}"#);
    daemon.signal(libc::SIGHUP);
    eventually(20, "debug off", || {
        let out = daemon.docker(&["info", "--format", "{{.Debug}}"]).success();
        Some(()).filter(|_| out.stdout.trim() == "false")
    });
    let before = daemon.log().matches("http.path").count();
    daemon.docker(&["ps"]).success();
    daemon.docker(&["images"]).success();
    assert_eq!(daemon.log().matches("http.path").count(), before, "{}", daemon.log());
}
