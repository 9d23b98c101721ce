//! The API frame and the system endpoints, through the stock clients: what
//! `docker version`, `docker info` and friends show, how versions are
//! negotiated, the errors a new user runs into, the command line, the
//! sockets berthd listens on, and the containerd it manages itself.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use compat_tests::images::BusyboxImage;
use compat_tests::tls::TlsCerts;
use compat_tests::{Berthd, BerthdBuilder, CmdOutput};
use serde_json::{json, Value};

const MAX_API: &str = "1.51";
const MIN_API: &str = "1.24";
const NOT_A_SWARM_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \
     \"docker swarm join\" to connect this node to swarm and try again.";

// ---------------------------------------------------------------- helpers

/// Poll `done` every 20 ms until it holds; panic with `what` after 20 s.
#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run a future to completion (bollard is async; these tests are not).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// Override a flag the harness sets: berthd, like dockerd, takes the last
/// value of a repeated flag, and test arguments come after the harness's.
fn with_flag_value(builder: BerthdBuilder, flag: &str, value: &Path) -> BerthdBuilder {
    builder.arg(flag).arg(value.display().to_string())
}

/// Runs `berthd ARGS` to exit with `--config-file` pointing at a file that
/// holds exactly `text` (invalid JSON included).
fn run_with_config_text(text: &str, args: &[&str]) -> (CmdOutput, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.json");
    std::fs::write(&path, text).unwrap();
    let out = with_flag_value(
        Berthd::builder().args(args.iter().copied()),
        "--config-file",
        &path,
    )
    .run_to_exit();
    (out, path, dir)
}

/// The value of `key` in the Server section of `docker info`'s text output.
fn server_info_value(info: &str, key: &str) -> Option<String> {
    let server = &info[info.find("\nServer:\n")?..];
    let prefix = format!("{key}: ");
    server
        .lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim_end().to_string()))
}

/// The indented list under `key:` in the Server section of `docker info`.
fn server_info_list(info: &str, key: &str) -> Vec<String> {
    let server = &info[info
        .find("\nServer:\n")
        .expect("no Server section in docker info")..];
    let heading = format!(" {key}:");
    let mut lines = server.lines().skip_while(|l| *l != heading);
    assert!(
        lines.next().is_some(),
        "no {key:?} list in docker info:\n{info}"
    );
    lines
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect()
}

fn docker_info_json(daemon: &Berthd) -> Value {
    let out = daemon.docker(&["info", "--format", "{{json .}}"]).success();
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("docker info JSON ({e}): {}", out.stdout))
}

fn run(program: &str, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    compat_tests::cli::run(cmd, None)
}

/// `ctr -n NAMESPACE ARGS` on the shared containerd.
fn ctr(namespace: &str, args: &[&str]) -> CmdOutput {
    let mut all = vec![
        "--address",
        compat_tests::containerd::SOCKET,
        "-n",
        namespace,
    ];
    all.extend_from_slice(args);
    run("ctr", &all)
}

/// A TCP port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until `socket` answers `GET /_ping` with 200.
#[track_caller]
fn wait_for_ping(daemon: &Berthd, socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(resp) = compat_tests::client::try_raw_request(socket, "GET", "/_ping", &[], None)
        {
            if resp.status == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no answer on {}; log:\n{}",
            socket.display(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while a process with this PID exists and is not a zombie.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The log lines at WARN level.
fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" WARN ")).collect()
}

// ------------------------------------------------- docker version / info

#[test]
fn docker_version_shows_berthd_on_containerd() {
    let daemon = Berthd::start();
    let out = daemon.docker(&["version"]).success();
    assert!(out.stdout.contains("Server: berthd"), "{}", out.stdout);
    assert!(
        out.stdout.contains(" containerd:\n  Version:          1."),
        "{}",
        out.stdout
    );
}

#[test]
fn docker_version_and_info_print_the_server_without_warnings() {
    let daemon = Berthd::start();
    let version = daemon.docker(&["version"]).success();
    assert_eq!(version.stderr, "", "docker version warned");
    assert!(
        version.stdout.contains(&format!(
            "  API version:      {MAX_API} (minimum version {MIN_API})"
        )),
        "{}",
        version.stdout
    );
    let info = daemon.docker(&["info"]).success();
    assert_eq!(
        info.stderr, "",
        "docker info warned (unix socket only, nothing to warn about)"
    );
    assert!(
        info.stdout.contains("\nServer:\n Containers: "),
        "{}",
        info.stdout
    );
    assert!(!info.stdout.contains("ERROR"), "{}", info.stdout);
}

#[test]
fn docker_info_shows_swarm_storage_root_dir_cgroup_and_cpus() {
    let daemon = Berthd::start();
    let info = daemon.docker(&["info"]).success().stdout;
    let value = |key| {
        server_info_value(&info, key)
            .unwrap_or_else(|| panic!("no {key:?} in docker info:\n{info}"))
    };

    assert_eq!(value("Swarm"), "inactive");
    assert_eq!(value("Storage Driver"), "overlayfs");
    assert_eq!(
        value("Docker Root Dir"),
        daemon.data_root.display().to_string()
    );
    let cgroup_fs = run("stat", &["-fc", "%T", "/sys/fs/cgroup"])
        .success()
        .stdout;
    let cgroup_version = if cgroup_fs.trim() == "cgroup2fs" {
        "2"
    } else {
        "1"
    };
    assert_eq!(value("Cgroup Version"), cgroup_version);
    assert_eq!(value("CPUs"), run("nproc", &[]).success().stdout.trim());
    let kernel = run("uname", &["-r"]).success().stdout;
    assert_eq!(value("Kernel Version"), kernel.trim());
    assert_eq!(value("OSType"), "linux");
    assert_eq!(value("Default Runtime"), "runc");
    assert_eq!(value("Live Restore Enabled"), "false");
    assert_eq!(value("Debug Mode"), "false");
}

#[test]
fn docker_info_json_has_the_server_fields_compose_and_scripts_read() {
    let daemon = Berthd::start();
    let info = docker_info_json(&daemon);
    assert!(info.get("ServerErrors").is_none(), "{info}");
    assert_eq!(
        info["Swarm"]["LocalNodeState"], "inactive",
        "compose treats anything else as swarm mode"
    );
    assert_eq!(info["Driver"], "overlayfs");
    assert_eq!(
        info["DockerRootDir"],
        daemon.data_root.display().to_string()
    );
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["DefaultRuntime"], "runc");
    assert!(info["Runtimes"].get("runc").is_some(), "{info}");
    assert_eq!(
        info["Containerd"]["Namespaces"]["Containers"],
        daemon.namespace
    );
    assert_eq!(
        info["Containerd"]["Address"],
        compat_tests::containerd::SOCKET
    );
    assert!(info["MemTotal"].as_i64().unwrap() > 0, "{info}");
    assert!(info["NCPU"].as_i64().unwrap() >= 1, "{info}");
    let id = info["ID"].as_str().unwrap();
    assert!(!id.is_empty());
    assert!(!info["ServerVersion"].as_str().unwrap().is_empty());
    assert!(!info["Name"].as_str().unwrap().is_empty());
    assert_eq!(
        info["RegistryConfig"]["IndexConfigs"]["docker.io"]["Official"],
        true
    );
    assert_eq!(info["IndexServerAddress"], "https://index.docker.io/v1/");
    assert!(info["SystemTime"].as_str().unwrap().contains('T'), "{info}");
}

#[test]
fn bollard_parses_info_version_and_ping() {
    let daemon = Berthd::start();
    let client = daemon.client();
    let (info, version, ping) = block_on(async {
        (
            client.info().await,
            client.version().await,
            client.ping().await,
        )
    });
    let info = info.expect("bollard info()");
    assert_eq!(info.id.as_deref().map(str::is_empty), Some(false));
    assert_eq!(info.driver.as_deref(), Some("overlayfs"));
    assert_eq!(
        info.docker_root_dir,
        Some(daemon.data_root.display().to_string())
    );
    assert_eq!(
        info.swarm.and_then(|s| s.local_node_state),
        Some(bollard::models::LocalNodeState::INACTIVE)
    );
    assert_eq!(info.containers, Some(0));
    assert_eq!(info.images, Some(0));

    let version = version.expect("bollard version()");
    assert_eq!(version.api_version.as_deref(), Some(MAX_API));
    assert_eq!(version.min_api_version.as_deref(), Some(MIN_API));
    assert_eq!(version.os.as_deref(), Some("linux"));
    let components: Vec<String> = version
        .components
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(components, ["Engine", "containerd", "runc"]);

    assert_eq!(ping.expect("bollard ping()"), "OK");
}

#[test]
fn version_components_are_the_real_containerd_and_runc() {
    let daemon = Berthd::start();
    let out = daemon
        .docker(&["version", "--format", "{{json .Server}}"])
        .success();
    let server: Value = serde_json::from_str(&out.stdout).unwrap();
    let component = |name: &str| -> Value {
        server["Components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Name"] == name)
            .unwrap_or_else(|| panic!("no {name} component: {server}"))
            .clone()
    };

    // `ctr version`'s Server section is containerd's own answer.
    let ctr = run(
        "ctr",
        &["--address", compat_tests::containerd::SOCKET, "version"],
    )
    .success()
    .stdout;
    let server_part = &ctr[ctr
        .find("Server:")
        .expect("ctr version has a Server section")..];
    let field = |key: &str| {
        server_part
            .lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {key} in ctr version:\n{ctr}"))
    };
    let containerd = component("containerd");
    assert_eq!(containerd["Version"], field("Version:"));
    assert_eq!(containerd["Details"]["GitCommit"], field("Revision:"));

    let runc = run("runc", &["--version"]).success().stdout;
    let runc_version = runc
        .lines()
        .find_map(|l| l.strip_prefix("runc version "))
        .unwrap()
        .trim();
    let runc_commit = runc
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .unwrap()
        .trim();
    let component = component("runc");
    assert_eq!(component["Version"], runc_version);
    assert_eq!(component["Details"]["GitCommit"], runc_commit);

    let engine = server["Components"][0].clone();
    assert_eq!(engine["Name"], "Engine");
    assert_eq!(engine["Details"]["ApiVersion"], MAX_API);
    assert_eq!(engine["Details"]["MinAPIVersion"], MIN_API);
}

#[test]
fn info_id_is_stable_across_restarts_with_the_same_data_root() {
    let mut first = Berthd::start();
    let id = docker_info_json(&first)["ID"].as_str().unwrap().to_string();
    assert!(first.stop().expect("first daemon exit").success());

    let second = with_flag_value(Berthd::builder(), "--data-root", &first.data_root).start();
    let info = docker_info_json(&second);
    assert_eq!(info["DockerRootDir"], first.data_root.display().to_string());
    assert_eq!(info["ID"], id.as_str(), "same data-root, same engine ID");

    let other = Berthd::start();
    assert_ne!(
        docker_info_json(&other)["ID"],
        id.as_str(),
        "another data-root is another engine"
    );
}

/// dockerd (pflag) takes the last of a string flag given twice; systemd
/// drop-ins and wrapper scripts rely on appending an override.
#[test]
fn data_root_given_twice_uses_the_last_like_dockerd() {
    let dir = tempfile::tempdir().unwrap();
    let data_root = dir.path().join("override");
    let daemon = Berthd::builder()
        .arg("--data-root")
        .arg(data_root.display().to_string())
        .start();
    let info = docker_info_json(&daemon);
    assert_eq!(info["DockerRootDir"], data_root.display().to_string());
}

#[test]
fn info_counts_images_from_containerd() {
    let daemon = Berthd::start();
    let info = daemon.docker(&["info"]).success().stdout;
    assert_eq!(server_info_value(&info, "Images").as_deref(), Some("0"));

    let image = BusyboxImage::new(format!("berth-test/{}:latest", daemon.namespace))
        .build()
        .unwrap();
    let archive = daemon.dir().join("image.tar");
    image
        .write_oci_archive(std::fs::File::create(&archive).unwrap())
        .unwrap();
    ctr(
        &daemon.namespace,
        &["images", "import", archive.to_str().unwrap()],
    )
    .success();

    let info = daemon.docker(&["info"]).success().stdout;
    assert_eq!(
        server_info_value(&info, "Images").as_deref(),
        Some("1"),
        "{info}"
    );
    assert_eq!(docker_info_json(&daemon)["Images"], 1);
}

/// Resumes, kills and removes the test's containerd tasks before the
/// harness empties the namespace (a paused task cannot be killed).
struct TaskCleanup<'a> {
    namespace: &'a str,
    tasks: &'a [&'a str],
}

impl Drop for TaskCleanup<'_> {
    fn drop(&mut self) {
        for task in self.tasks {
            let _ = ctr(self.namespace, &["tasks", "resume", task]);
            let _ = ctr(self.namespace, &["tasks", "kill", "-s", "SIGKILL", task]);
            let _ = ctr(self.namespace, &["tasks", "rm", "-f", task]);
        }
    }
}

#[test]
fn info_counts_containers_by_state_from_containerd() {
    let daemon = Berthd::start();
    let image = BusyboxImage::new(format!("berth-test/{}:latest", daemon.namespace))
        .build()
        .unwrap();
    let archive = daemon.dir().join("image.tar");
    image
        .write_oci_archive(std::fs::File::create(&archive).unwrap())
        .unwrap();
    let ns = daemon.namespace.as_str();
    ctr(ns, &["images", "import", archive.to_str().unwrap()]).success();
    let reference = image.full_name();

    let _cleanup = TaskCleanup {
        namespace: ns,
        tasks: &["running", "paused"],
    };
    ctr(ns, &["run", "-d", &reference, "running", "sleep", "1000"]).success();
    ctr(ns, &["run", "-d", &reference, "paused", "sleep", "1000"]).success();
    ctr(ns, &["tasks", "pause", "paused"]).success();
    ctr(ns, &["containers", "create", &reference, "created"]).success();

    let info = daemon.docker(&["info"]).success().stdout;
    let value = |key| {
        server_info_value(&info, key)
            .unwrap_or_else(|| panic!("no {key:?} in docker info:\n{info}"))
    };
    assert_eq!(value("Containers"), "3", "{info}");
    assert_eq!(value("Running"), "1", "{info}");
    assert_eq!(value("Paused"), "1", "{info}");
    assert_eq!(value("Stopped"), "1", "{info}");
    let json = docker_info_json(&daemon);
    assert_eq!(
        (
            &json["Containers"],
            &json["ContainersRunning"],
            &json["ContainersPaused"],
            &json["ContainersStopped"]
        ),
        (&json!(3), &json!(1), &json!(1), &json!(1))
    );
}

#[test]
fn containerd_namespace_exists_once_berthd_has_started() {
    let daemon = Berthd::start();
    let namespaces = run(
        "ctr",
        &[
            "--address",
            compat_tests::containerd::SOCKET,
            "namespaces",
            "ls",
            "-q",
        ],
    )
    .success();
    assert!(
        namespaces.stdout.lines().any(|l| l == daemon.namespace),
        "namespace {} not created; ctr namespaces ls -q:\n{}",
        daemon.namespace,
        namespaces.stdout
    );
}

#[test]
fn daemon_json_settings_show_in_docker_info() {
    let daemon = Berthd::builder()
        .daemon_json(json!({
            "labels": ["com.example.env=test"],
            "registry-mirrors": ["https://mirror.example.com"],
            "insecure-registries": ["myregistry.local:5000", "10.0.0.0/8"],
            "live-restore": true,
            "debug": true,
        }))
        .start();
    let info = daemon.docker(&["info"]).success().stdout;
    assert_eq!(
        server_info_value(&info, "Debug Mode").as_deref(),
        Some("true"),
        "{info}"
    );
    assert_eq!(
        server_info_value(&info, "Live Restore Enabled").as_deref(),
        Some("true"),
        "{info}"
    );
    assert_eq!(server_info_list(&info, "Labels"), ["com.example.env=test"]);
    let insecure = server_info_list(&info, "Insecure Registries");
    for expected in [
        "myregistry.local:5000",
        "10.0.0.0/8",
        "::1/128",
        "127.0.0.0/8",
    ] {
        assert!(
            insecure.iter().any(|r| r == expected),
            "{expected} missing from {insecure:?}"
        );
    }
    // dockerd normalises mirrors to end in a slash (registry.ValidateMirror).
    assert_eq!(
        server_info_list(&info, "Registry Mirrors"),
        ["https://mirror.example.com/"]
    );
}

#[test]
fn debug_flag_shows_in_docker_info() {
    let daemon = Berthd::builder().arg("-D").start();
    let info = daemon.docker(&["info"]).success().stdout;
    assert_eq!(
        server_info_value(&info, "Debug Mode").as_deref(),
        Some("true"),
        "{info}"
    );
}

// ---------------------------------------------------- version negotiation

#[test]
fn ping_get_and_head_send_dockerd_headers() {
    let daemon = Berthd::start();
    for (method, path) in [
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/v1.24/_ping"),
        ("HEAD", "/v1.51/_ping"),
    ] {
        let resp = daemon.request(method, path, None);
        assert_eq!(resp.status, 200, "{method} {path}: {}", resp.text());
        assert_eq!(resp.header("Api-Version"), Some(MAX_API), "{method} {path}");
        assert_eq!(
            resp.header("Docker-Experimental"),
            Some("false"),
            "{method} {path}"
        );
        assert_eq!(resp.header("Ostype"), Some("linux"), "{method} {path}");
        let server = resp.header("Server").unwrap_or_default();
        assert!(
            server.starts_with("Docker/") && server.ends_with(" (linux)"),
            "{method} {path}: Server {server:?}"
        );
        assert_eq!(
            resp.header("Cache-Control"),
            Some("no-cache, no-store, must-revalidate"),
            "{method} {path}"
        );
        assert_eq!(resp.header("Pragma"), Some("no-cache"), "{method} {path}");
        assert!(
            resp.header("Builder-Version")
                .is_some_and(|v| !v.is_empty()),
            "{method} {path}"
        );
        assert_eq!(resp.header("Swarm"), Some("inactive"), "{method} {path}");
        if method == "GET" {
            assert_eq!(resp.text(), "OK");
        } else {
            assert!(resp.body.is_empty(), "HEAD has no body");
        }
    }
}

#[test]
fn versioned_paths_in_range_are_served_and_unprefixed_is_the_maximum() {
    let daemon = Berthd::start();
    let mut answers = Vec::new();
    for path in [
        "/v1.24/version",
        "/v1.40/version",
        "/v1.51/version",
        "/version",
    ] {
        let resp = daemon.request("GET", path, None);
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert_eq!(resp.header("Api-Version"), Some(MAX_API), "{path}");
        let body = resp.json();
        assert_eq!(body["ApiVersion"], MAX_API, "{path}");
        assert_eq!(body["MinAPIVersion"], MIN_API, "{path}");
        answers.push(body);
    }
    assert_eq!(
        answers[3], answers[2],
        "unprefixed /version answers as /v1.51/version"
    );
    let unprefixed = daemon.request("GET", "/info", None).json();
    let prefixed = daemon.request("GET", "/v1.51/info", None).json();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&unprefixed),
        keys(&prefixed),
        "unprefixed /info has the 1.51 shape"
    );
}

#[test]
fn api_version_above_the_maximum_is_rejected_with_dockerd_text() {
    let daemon = Berthd::start();
    let resp = daemon.request("GET", "/v1.99/version", None);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    assert_eq!(
        resp.json(),
        json!({"message": "client version 1.99 is too new. Maximum supported API version is 1.51"})
    );
}

#[test]
fn api_version_below_the_minimum_is_rejected_with_dockerd_text() {
    let daemon = Berthd::start();
    let resp = daemon.request("GET", "/v1.12/version", None);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"message": "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"})
    );
}

#[test]
fn cli_pinned_to_an_unsupported_api_version_shows_the_daemon_error() {
    let daemon = Berthd::start();
    let config = tempfile::tempdir().unwrap();
    let docker = |api: &str| {
        let mut cmd = Command::new(compat_tests::cli::docker_binary());
        cmd.arg("version")
            .env("DOCKER_HOST", daemon.host())
            .env("DOCKER_CONFIG", config.path())
            .env("DOCKER_API_VERSION", api)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        compat_tests::cli::run(cmd, None)
    };
    let new = docker("1.99").failure();
    assert!(
        new.stderr.contains("Error response from daemon: client version 1.99 is too new. Maximum supported API version is 1.51"),
        "{}",
        new.stderr
    );
    let old = docker("1.12").failure();
    assert!(
        old.stderr.contains(
            "Error response from daemon: client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        ),
        "{}",
        old.stderr
    );
    let pinned = docker("1.41").success();
    assert!(
        pinned.stdout.contains("Server: berthd"),
        "{}",
        pinned.stdout
    );
}

#[test]
fn bollard_negotiates_down_to_1_51_and_keeps_working() {
    let daemon = Berthd::start();
    let client = daemon.client();
    let negotiated = block_on(async move {
        let client = client.negotiate_version().await.expect("negotiate_version");
        let version = client.client_version();
        client.info().await.expect("info after negotiation");
        version
    });
    assert_eq!(
        (negotiated.major_version, negotiated.minor_version),
        (1, 51)
    );
}

// ------------------------------------------------------------------ errors

#[test]
fn unknown_route_is_page_not_found_json() {
    let daemon = Berthd::start();
    for path in ["/nope", "/v1.51/nope", "/containers/x/nonsense", "/v1.51"] {
        let resp = daemon.request("GET", path, None);
        assert_eq!(resp.status, 404, "{path}: {}", resp.text());
        assert_eq!(
            resp.header("Content-Type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(resp.json(), json!({"message": "page not found"}), "{path}");
    }
}

#[test]
fn wrong_method_on_a_known_path_is_page_not_found() {
    let daemon = Berthd::start();
    for (method, path) in [("DELETE", "/version"), ("POST", "/info"), ("PUT", "/_ping")] {
        let resp = daemon.request(method, path, None);
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text());
        assert_eq!(
            resp.json(),
            json!({"message": "page not found"}),
            "{method} {path}"
        );
    }
}

/// Managed plugins are not built: the example of an endpoint that answers
/// "not implemented" rather than a fake success.
#[test]
fn endpoint_not_built_yet_answers_501_naming_the_operation() {
    let daemon = Berthd::start();
    let resp = daemon.request("GET", "/plugins/anything/json", None);
    assert_eq!(resp.status, 501, "{}", resp.text());
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let message = resp.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("GET /plugins/{name}/json") && message.contains("not implemented"),
        "{message}"
    );

    let out = daemon.docker(&["plugin", "inspect", "anything"]).failure();
    assert_eq!(
        out.stderr.trim_end(),
        format!("Error response from daemon: {message}")
    );
    // inspect prints the (empty) list of what it found.
    assert_eq!(out.stdout, "[]\n");
}

#[test]
fn malformed_and_oversize_json_bodies_are_bad_requests() {
    let daemon = Berthd::start();
    let resp = daemon.request("POST", "/containers/create", Some(b"{bad"));
    assert_eq!(resp.status, 400, "{}", resp.text());
    let message = resp.json()["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("invalid JSON:"), "{message}");

    let resp = daemon.request("POST", "/containers/create", Some(b""));
    assert_eq!(resp.status, 400, "{}", resp.text());

    // A body over the limit: the server stops reading at the limit and
    // answers 400, so the writer may see a broken pipe; read the answer on
    // this thread while another writes.
    let mut conn = UnixStream::connect(&daemon.socket).unwrap();
    let mut writer = conn.try_clone().unwrap();
    let size = 17 * 1024 * 1024;
    let head = format!(
        "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..17 {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let _ = sender.join();
    let answer = String::from_utf8_lossy(&raw).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("larger than"), "{answer}");

    // Nothing was created by any of these.
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout, "");
}

#[test]
fn swarm_commands_say_this_node_is_not_a_swarm_manager() {
    let daemon = Berthd::start();
    for command in [
        ["node", "ls"],
        ["service", "ls"],
        ["secret", "ls"],
        ["config", "ls"],
    ] {
        let out = daemon.docker(&command).failure();
        assert_eq!(
            out.stderr.trim_end(),
            format!("Error response from daemon: {NOT_A_SWARM_MANAGER}"),
            "docker {}",
            command.join(" ")
        );
    }
    for path in [
        "/swarm",
        "/v1.51/nodes",
        "/services",
        "/tasks",
        "/secrets",
        "/configs",
    ] {
        let resp = daemon.request("GET", path, None);
        assert_eq!(resp.status, 503, "{path}: {}", resp.text());
        assert_eq!(
            resp.json(),
            json!({"message": NOT_A_SWARM_MANAGER}),
            "{path}"
        );
    }
}

#[test]
fn swarm_leave_says_this_node_is_not_part_of_a_swarm() {
    let daemon = Berthd::start();
    let out = daemon.docker(&["swarm", "leave"]).failure();
    assert_eq!(
        out.stderr.trim_end(),
        "Error response from daemon: This node is not part of a swarm"
    );
    let resp = daemon.request("POST", "/swarm/leave", None);
    assert_eq!(resp.status, 503);
    assert_eq!(
        resp.json(),
        json!({"message": "This node is not part of a swarm"})
    );
}

#[test]
fn plugin_list_is_empty() {
    let daemon = Berthd::start();
    let resp = daemon.request("GET", "/plugins", None);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!([]));
    let out = daemon.docker(&["plugin", "ls"]).success();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [["ID", "NAME", "DESCRIPTION", "ENABLED"]],
        "{}",
        out.stdout
    );
}

#[test]
fn system_df_answers_with_the_usage_shape() {
    let daemon = Berthd::start();
    for path in [
        "/system/df",
        "/v1.51/system/df?type=container&type=image&type=volume&type=build-cache",
    ] {
        let resp = daemon.request("GET", path, None);
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        let body = resp.json();
        assert!(body["LayersSize"].is_i64(), "{path}: {body}");
        for key in ["Images", "Containers", "Volumes", "BuildCache"] {
            assert!(body[key].is_array(), "{path}: {key} in {body}");
        }
    }
    let out = daemon.docker(&["system", "df"]).success();
    let kinds: Vec<&str> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split("  ").next().unwrap().trim())
        .collect();
    assert_eq!(
        kinds,
        ["Images", "Containers", "Local Volumes", "Build Cache"],
        "{}",
        out.stdout
    );
    let client = daemon.client();
    block_on(async move {
        client
            .df(None::<bollard::query_parameters::DataUsageOptions>)
            .await
    })
    .expect("bollard df()");
}

#[test]
fn system_df_with_an_unknown_type_is_a_bad_request() {
    let daemon = Berthd::start();
    let resp = daemon.request("GET", "/system/df?type=bogus", None);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"message": "unknown object type: bogus"})
    );
}

#[test]
fn system_df_computes_only_the_asked_kinds() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["volume", "create", "asked"]).success();
    daemon.docker(&["create", "--name", "counted", "-v", "asked:/a", "busybox", "true"]).success();
    let only_volumes = daemon.request("GET", "/v1.51/system/df?type=volume", None);
    assert_eq!(only_volumes.status, 200, "{}", only_volumes.text());
    let body = only_volumes.json();
    assert_eq!(body["Volumes"][0]["Name"], "asked", "{body}");
    for key in ["Images", "Containers", "BuildCache"] {
        assert!(body[key].is_null(), "{key} not asked: {body}");
    }
    assert_eq!(body["LayersSize"], 0, "{body}");
    // Images still count their containers when containers are not asked.
    let only_images = daemon.request("GET", "/v1.51/system/df?type=image", None).json();
    assert_eq!(only_images["Images"][0]["Containers"], 1, "{only_images}");
    assert!(only_images["LayersSize"].as_i64().unwrap() > 0, "{only_images}");
    assert!(only_images["Containers"].is_null() && only_images["Volumes"].is_null(), "{only_images}");
    // Before API 1.42 `type` is not read: everything, even for an unknown type.
    let old = daemon.request("GET", "/v1.41/system/df?type=bogus", None);
    assert_eq!(old.status, 200, "{}", old.text());
    let old = old.json();
    for key in ["Images", "Containers", "Volumes", "BuildCache"] {
        assert!(old[key].is_array(), "{key} in {old}");
    }
}

#[test]
fn system_df_sizes_match_inspect_size() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&["run", "-d", "--name", "grower", "busybox", "sh", "-c",
            "mkdir -p /d/e && head -c 5000 /dev/zero > /d/e/f && ln /d/e/f /d/g && ln -s /nowhere /d/l && exec sleep 600"])
        .success();
    daemon.docker(&["run", "--name", "stopped", "busybox", "sh", "-c", "head -c 70000 /dev/zero > /x"]).success();
    let df_sizes = |name: &str| {
        let df = daemon.request("GET", "/system/df", None).json();
        let c = df["Containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Names"][0] == format!("/{name}"))
            .unwrap_or_else(|| panic!("{name} in {df}"))
            .clone();
        (c["SizeRw"].as_i64().unwrap(), c["SizeRootFs"].as_i64().unwrap())
    };
    let inspect_sizes = |name: &str| {
        let c = daemon.request("GET", &format!("/containers/{name}/json?size=1"), None).json();
        (c["SizeRw"].as_i64().unwrap(), c["SizeRootFs"].as_i64().unwrap())
    };
    // The writer's files are in place once /d/l exists.
    wait_until("grower wrote its files", || daemon.docker(&["exec", "grower", "test", "-L", "/d/l"]).code == 0);
    for name in ["grower", "stopped"] {
        assert_eq!(df_sizes(name), inspect_sizes(name), "{name}");
    }
    assert!(df_sizes("stopped").0 >= 70000, "{:?}", df_sizes("stopped"));
    // A second listing sees the layer as it is now, not as first measured.
    let before = df_sizes("grower").0;
    daemon.docker(&["exec", "grower", "sh", "-c", "head -c 100000 /dev/zero > /more"]).success();
    let after = df_sizes("grower");
    assert!(after.0 >= before + 100000, "{before} then {after:?}");
    assert_eq!(after, inspect_sizes("grower"));
}

// ------------------------------------------------------------ command line

#[test]
fn berthd_v_prints_its_version() {
    for flag in ["-v", "--version"] {
        let out = Berthd::builder().arg(flag).run_to_exit();
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.starts_with("berthd version "), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn validate_accepts_a_good_file() {
    let out = Berthd::builder()
        .daemon_json(
            json!({"debug": false, "log-level": "warn", "labels": ["a=b"], "live-restore": true}),
        )
        .arg("--validate")
        .run_to_exit();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr.trim_end(), "configuration OK");
}

#[test]
fn validate_names_an_unknown_key() {
    let (out, path, _dir) = run_with_config_text(r#"{"debug": true, "foo": 1}"#, &["--validate"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "unable to configure the Docker daemon with file {}: the following directives don't match any configuration option: foo",
            path.display()
        )
    );
}

#[test]
fn validate_refuses_invalid_json() {
    let (out, path, _dir) = run_with_config_text("{\"debug\": true,", &["--validate"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "unable to configure the Docker daemon with file {}: ",
            path.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn flag_and_file_setting_the_same_key_is_refused() {
    let out = Berthd::builder()
        .daemon_json(json!({"debug": true}))
        .arg("-D")
        .run_to_exit();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: true)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("unable to configure the Docker daemon with file "),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_named_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.json");
    let out = with_flag_value(Berthd::builder(), "--config-file", &missing).run_to_exit();
    assert_eq!(out.code, 1, "{}", out.stderr);
    // dockerd wraps the open error: loadDaemonCliConfig.
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "unable to configure the Docker daemon with file {0}: open {0}: no such file or directory",
            missing.display()
        )
    );
}

#[test]
fn dockerd_key_not_honoured_yet_starts_with_a_warning() {
    let daemon = Berthd::builder()
        .daemon_json(json!({"cgroup-parent": "berth"}))
        .start();
    daemon.docker(&["version"]).success();
    let log = daemon.log();
    assert!(
        warnings(&log).iter().any(|l| l.contains("cgroup-parent")),
        "no warning naming cgroup-parent:\n{log}"
    );
}

#[test]
fn bogus_log_level_is_refused() {
    let out = Berthd::builder()
        .args(["--log-level", "bogus"])
        .run_to_exit();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim_end(),
        "unable to parse logging level: bogus"
    );
}

#[test]
fn pidfile_held_by_a_live_process_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("docker.pid");
    let mut holder = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = holder.id().to_string();
    std::fs::write(&pidfile, &pid).unwrap();

    let out = with_flag_value(Berthd::builder(), "--pidfile", &pidfile).run_to_exit();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("process with PID {pid} is still running")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&pidfile.display().to_string()),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        pid,
        "the pidfile was touched"
    );
}

#[test]
fn stale_pidfile_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("docker.pid");
    let mut gone = Command::new("true").spawn().unwrap();
    let stale = gone.id();
    gone.wait().unwrap();
    std::fs::write(&pidfile, stale.to_string()).unwrap();

    let mut daemon = with_flag_value(Berthd::builder(), "--pidfile", &pidfile).start();
    let written = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(written.trim(), daemon.pid().unwrap().to_string());
    assert!(daemon.stop().expect("exit status").success());
    assert!(!pidfile.exists(), "pidfile left behind after SIGTERM");
}

#[test]
fn sigterm_exits_zero_and_removes_socket_and_pidfile() {
    let mut daemon = Berthd::start();
    daemon.docker(&["info"]).success();
    assert_eq!(
        std::fs::read_to_string(&daemon.pidfile).unwrap().trim(),
        daemon.pid().unwrap().to_string()
    );
    let started = Instant::now();
    let status = daemon.stop().expect("exit status");
    assert!(status.success(), "{status}; log:\n{}", daemon.log());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SIGTERM took {:?}",
        started.elapsed()
    );
    assert!(!daemon.socket.exists(), "socket left behind");
    assert!(!daemon.pidfile.exists(), "pidfile left behind");
}

#[test]
fn sigint_shuts_down_like_sigterm() {
    let mut daemon = Berthd::start();
    daemon.signal(libc::SIGINT);
    wait_until("the socket and pidfile are removed after SIGINT", || {
        !daemon.socket.exists() && !daemon.pidfile.exists()
    });
    let status = daemon.stop().expect("exit status");
    assert!(status.success(), "{status}; log:\n{}", daemon.log());
}

/// Bytes written to a unix socket that the peer has not read yet.
fn unread_by_peer(stream: &UnixStream) -> i32 {
    use std::os::fd::AsRawFd;
    let mut pending: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int for a socket we own.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut pending) };
    assert_eq!(
        rc,
        0,
        "ioctl(TIOCOUTQ): {}",
        std::io::Error::last_os_error()
    );
    pending
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_zero() {
    let mut daemon = Berthd::start();
    let mut conn = UnixStream::connect(&daemon.socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The request head without its final empty line: in flight, not complete.
    conn.write_all(b"GET /v1.51/info HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n")
        .unwrap();
    wait_until("berthd has read the start of the request", || {
        unread_by_peer(&conn) == 0
    });

    daemon.signal(libc::SIGTERM);
    wait_until("berthd stops accepting connections", || {
        UnixStream::connect(&daemon.socket).is_err()
    });

    conn.write_all(b"\r\n").unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let info: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        info["DockerRootDir"],
        daemon.data_root.display().to_string()
    );

    let finished = Instant::now();
    let status = daemon.stop().expect("exit status");
    assert!(status.success(), "{status}; log:\n{}", daemon.log());
    assert!(
        finished.elapsed() < Duration::from_secs(5),
        "exit took {:?} after the last request",
        finished.elapsed()
    );
    assert!(!daemon.socket.exists() && !daemon.pidfile.exists());
}

// ------------------------------------------------------------------ socket

fn docker_group_gid() -> Option<u32> {
    let out = run("getent", &["group", "docker"]);
    (out.code == 0).then(|| {
        out.stdout
            .trim()
            .split(':')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap()
    })
}

#[test]
fn socket_is_0660_and_owned_by_the_docker_group() {
    let daemon = Berthd::start();
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660, "srw-rw----");
    assert_eq!(meta.uid(), 0);
    assert_eq!(
        meta.gid(),
        docker_group_gid().unwrap_or(0),
        "group docker when it exists, else root"
    );
    let ls = run("ls", &["-l", daemon.socket.to_str().unwrap()])
        .success()
        .stdout;
    assert!(ls.starts_with("srw-rw---- "), "{ls}");
}

#[test]
fn group_root_gives_the_socket_to_root() {
    let daemon = Berthd::builder().args(["-G", "root"]).start();
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert_eq!(meta.gid(), 0);
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
}

#[test]
fn unknown_socket_group_is_refused() {
    let out = Berthd::builder().args(["-G", "nosuchgroup"]).run_to_exit();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("failed to load listeners: group nosuchgroup not found"),
        "{}",
        out.stderr
    );
}

#[test]
fn hosts_from_daemon_json_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("from-json.sock");
    let host = format!("unix://{}", socket.display());
    let daemon = Berthd::builder()
        .without_default_host()
        .daemon_json(json!({"hosts": [host]}))
        .spawn();
    wait_for_ping(&daemon, &socket);
    let out = daemon.docker_at(&host, &["version"]).success();
    assert!(out.stdout.contains("Server: berthd"), "{}", out.stdout);
}

#[test]
fn fd_host_serves_systemd_activated_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("activated.sock");
    let daemon = Berthd::builder()
        .without_default_host()
        .args(["-H", "fd://"])
        .wrapped_in(["systemd-socket-activate", "-l", socket.to_str().unwrap()])
        .spawn();
    wait_for_ping(&daemon, &socket);
    daemon
        .docker_at(&format!("unix://{}", socket.display()), &["version"])
        .success();
}

#[test]
fn fd_host_without_socket_activation_is_refused() {
    let out = Berthd::builder()
        .without_default_host()
        .args(["-H", "fd://"])
        .run_to_exit();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "no sockets found via socket activation: make sure the service was started by systemd"
        ),
        "{}",
        out.stderr
    );
}

// --------------------------------------------------------------------- TCP

#[test]
fn tcp_without_tls_is_refused() {
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let out = Berthd::builder().host_network().args(["-H", &host]).run_to_exit();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("TLS") && out.stderr.contains(&host),
        "{}",
        out.stderr
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on {host}"
    );
}

#[test]
fn tcp_with_tls_false_serves_plain_http_with_a_warning() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let host = format!("tcp://{addr}");
    let daemon = Berthd::builder().host_network().args(["-H", &host, "--tls=false"]).start();
    let log = daemon.log();
    assert!(
        warnings(&log)
            .iter()
            .any(|l| l.contains("without encryption") && l.contains(&addr)),
        "no warning about plain TCP:\n{log}"
    );

    let out = daemon.docker_at(&host, &["version"]).success();
    assert!(out.stdout.contains("Server: berthd"), "{}", out.stdout);
    let info = daemon.docker_at(&host, &["info"]).success();
    assert!(
        info.stderr.contains(&format!(
            "[DEPRECATION NOTICE]: API is accessible on http://{addr} without encryption."
        )),
        "docker info should carry dockerd's warning: {}",
        info.stderr
    );
}

#[test]
fn tls_verify_serves_only_clients_with_a_certificate_from_the_ca() {
    let certs = TlsCerts::generate().unwrap();
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let daemon = Berthd::builder()
        .host_network()
        .args(["-H", &host])
        .args(certs.daemon_args())
        .start();

    let with_cert = |extra: &[&str]| {
        let mut args: Vec<String> = certs.client_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        daemon.docker_at(&host, &args)
    };
    let out = with_cert(&["version"]).success();
    assert!(out.stdout.contains("Server: berthd"), "{}", out.stdout);
    let info = with_cert(&["info"]).success();
    assert_eq!(
        info.stderr, "",
        "TLS with client verification: nothing to warn about"
    );

    // The CLI with the CA but no client certificate.
    let ca = certs.ca().display().to_string();
    let out = daemon
        .docker_at(&host, &["--tlsverify", "--tlscacert", &ca, "version"])
        .failure();
    assert!(out.stderr.contains("certificate"), "{}", out.stderr);
    assert!(!out.stdout.contains("Server: berthd"), "{}", out.stdout);

    // A client certificate from another CA.
    let strangers = TlsCerts::generate().unwrap();
    let (cert, key) = (
        strangers.client_cert().display().to_string(),
        strangers.client_key().display().to_string(),
    );
    let out = daemon
        .docker_at(
            &host,
            &[
                "--tlsverify",
                "--tlscacert",
                &ca,
                "--tlscert",
                &cert,
                "--tlskey",
                &key,
                "version",
            ],
        )
        .failure();
    assert!(!out.stdout.contains("Server: berthd"), "{}", out.stdout);

    // Plain HTTP on the TLS port.
    daemon.docker_at(&host, &["version"]).failure();

    // curl: with the client certificate it is served, without it it is not.
    let url = format!("https://127.0.0.1:{port}/_ping");
    let (client_cert, client_key) = (
        certs.client_cert().display().to_string(),
        certs.client_key().display().to_string(),
    );
    let ok = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            &ca,
            "--cert",
            &client_cert,
            "--key",
            &client_key,
            &url,
        ],
    )
    .success();
    assert_eq!(ok.stdout, "OK");
    let refused = run("curl", &["-sS", "--cacert", &ca, &url]);
    assert_ne!(
        refused.code, 0,
        "served without a client certificate: {}",
        refused.stdout
    );
    // TLS 1.2 is the oldest served: a TLS 1.0/1.1 client (its own
    // security level lowered so that the refusal is the daemon's) gets the
    // daemon's alert (rustls answers handshake_failure).
    let old = run(
        "curl",
        &[
            "-sS", "--cacert", &ca, "--cert", &client_cert, "--key", &client_key,
            "--tlsv1.0", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0", &url,
        ],
    );
    assert_ne!(old.code, 0, "served over TLS 1.1: {}", old.stdout);
    assert!(old.stderr.contains("alert"), "{}", old.stderr);
    let tls12 = run(
        "curl",
        &["-sS", "--cacert", &ca, "--cert", &client_cert, "--key", &client_key, "--tlsv1.2", "--tls-max", "1.2", &url],
    )
    .success();
    assert_eq!(tls12.stdout, "OK");
}

#[test]
fn tls_verify_with_missing_certificate_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (ca, cert, key) = (
        path("ca.pem"),
        path("server-cert.pem"),
        path("server-key.pem"),
    );
    let host = format!("tcp://127.0.0.1:{}", free_port());
    let out = Berthd::builder()
        .host_network()
        .args([
            "-H",
            &host,
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
        ])
        .run_to_exit();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        [&ca, &cert, &key]
            .iter()
            .any(|p| out.stderr.contains(p.as_str())),
        "the error names none of the missing files: {}",
        out.stderr
    );
    assert!(
        out.stderr.to_lowercase().contains("no such file"),
        "{}",
        out.stderr
    );
}

// ------------------------------------------------------ managed containerd

/// PIDs of containerd processes started with a config under `dir`.
fn containerd_pids_under(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first().is_some_and(|a| a.ends_with("containerd"))
                && args.iter().any(|a| a.starts_with(&needle))
                && process_alive(*pid)
        })
        .collect()
}

#[test]
fn starts_and_stops_its_own_containerd_when_none_answers() {
    // In a private mount namespace with an empty /run/containerd, nothing
    // answers at the default socket, whatever runs on the host.
    const EMPTY_RUN_CONTAINERD: &str = "mount -t tmpfs tmpfs /run/containerd && exec \"$0\" \"$@\"";
    let probe = run(
        "unshare",
        &[
            "-m",
            "sh",
            "-c",
            EMPTY_RUN_CONTAINERD,
            "ls",
            "-A",
            "/run/containerd",
        ],
    )
    .success();
    assert_eq!(
        probe.stdout, "",
        "/run/containerd is not empty in the mount namespace"
    );
    assert!(
        Path::new(compat_tests::containerd::SOCKET).exists(),
        "the tmpfs leaked out of the mount namespace"
    );

    let mut daemon = Berthd::builder()
        .without_containerd_flag()
        .wrapped_in(["unshare", "-m", "sh", "-c", EMPTY_RUN_CONTAINERD])
        .start();

    let own_dir = daemon.exec_root.join("containerd");
    let own_socket = own_dir.join("containerd.sock");
    assert!(
        std::fs::metadata(&own_socket).is_ok_and(|m| m.file_type().is_socket()),
        "{}",
        own_socket.display()
    );
    let info = docker_info_json(&daemon);
    assert_eq!(
        info["Containerd"]["Address"],
        own_socket.display().to_string()
    );
    let version = daemon.docker(&["version"]).success();
    assert!(
        version
            .stdout
            .contains(" containerd:\n  Version:          1."),
        "{}",
        version.stdout
    );

    let pids = containerd_pids_under(&own_dir);
    assert_eq!(
        pids.len(),
        1,
        "one managed containerd expected, found {pids:?}"
    );
    // The host's containerd is untouched.
    run(
        "ctr",
        &["--address", compat_tests::containerd::SOCKET, "version"],
    )
    .success();

    let status = daemon.stop().expect("exit status");
    assert!(status.success(), "{status}; log:\n{}", daemon.log());
    wait_until("the managed containerd is gone", || !process_alive(pids[0]));
    assert!(containerd_pids_under(&own_dir).is_empty());
}
