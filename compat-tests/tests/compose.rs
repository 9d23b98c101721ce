//! Compose projects end to end against berthd: the compose v2 plugin (and
//! Debian's docker-compose 1.29, which talks through docker-py) bring up
//! `compose/shop` (a database stand-in and a web server built from busybox
//! with build args and a target, a one-shot migration gated on a
//! healthcheck, a named volume, two user networks, a published port),
//! exercise it over loopback, scale, restart and tear it down with nothing
//! left behind; a second project goes through a local registry (`push`,
//! `pull`) and is watched with `logs -f` and `events`. Builds use the classic builder (`DOCKER_BUILDKIT=0`), as
//! compose does when BuildKit is off.

use std::path::PathBuf;
use std::process::Command;

use std::io::BufRead;

use compat_tests::registry::Registry;
use compat_tests::{eventually, Berthd, CmdOutput};

/// The shop project's directory.
fn shop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compose/shop")
}

/// One compose project on one daemon.
struct Project<'a> {
    daemon: &'a Berthd,
    name: &'a str,
    dir: PathBuf,
}

impl Project<'_> {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.dir)
            .env("DOCKER_HOST", self.daemon.host())
            .env("DOCKER_CONFIG", self.daemon.dir().join("docker-config"))
            .env("DOCKER_BUILDKIT", "0")
            .env("COMPOSE_PROJECT_NAME", self.name)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROFILES");
        cmd
    }

    /// `docker compose ARGS` (the v2 plugin).
    fn compose(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = self.command(compat_tests::cli::docker_binary().to_str().unwrap());
        cmd.arg("compose").args(args);
        compat_tests::cli::run_piped(cmd, None)
    }

    /// `docker compose ARGS` running in the background (at most a minute,
    /// so a follower that never sees what it waits for fails the test
    /// instead of hanging it), its stdout piped.
    fn follow(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = self.command("timeout");
        cmd.arg("60").arg(compat_tests::cli::docker_binary()).arg("compose").args(args);
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        cmd.spawn().expect("spawning docker compose")
    }

    /// `docker-compose ARGS` (1.29, Python).
    fn compose_v1(&self, args: &[&str]) -> CmdOutput {
        let program = "/usr/bin/docker-compose";
        assert!(std::path::Path::new(program).exists(), "docker-compose 1.29 is missing: scripts/setup.sh --tests installs it");
        let mut cmd = self.command(program);
        cmd.args(args);
        compat_tests::cli::run_piped(cmd, None)
    }

    /// The published `host:port` of the web container `index`.
    fn web_address(&self, index: u32) -> String {
        let out = self.compose(&["port", "--index", &index.to_string(), "web", "8080"]).success();
        out.stdout.trim().to_string()
    }

    /// `GET path` on `address` from the daemon's network namespace (where
    /// its loopback ports are).
    fn get(&self, address: &str, path: &str) -> String {
        let url = format!("http://{address}{path}");
        eventually(20, &format!("an answer from {url}"), || {
            let out = self.daemon.in_netns(&["curl", "-sf", "--max-time", "5", &url]);
            (out.code == 0).then_some(out.stdout)
        })
    }

    /// `NAME STATE` lines of `compose ps -a`, sorted.
    fn states(&self) -> Vec<String> {
        let out = self.compose(&["ps", "-a", "--format", "{{.Name}} {{.State}}"]).success();
        let mut lines: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }
}

/// Nothing of the project is left: containers, networks, volumes, bridges
/// and iptables rules naming them.
#[track_caller]
fn assert_nothing_left(daemon: &Berthd, project: &str) {
    let ps = daemon.docker(&["ps", "-aq"]).success();
    assert_eq!(ps.stdout.trim(), "", "containers left");
    let nets = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]).success();
    let mut nets: Vec<&str> = nets.stdout.lines().collect();
    nets.sort();
    assert_eq!(nets, ["bridge", "host", "none"], "networks left");
    let vols = daemon.docker(&["volume", "ls", "-q"]).success();
    assert_eq!(vols.stdout.trim(), "", "volumes left");
    let links = daemon.in_netns(&["ip", "-o", "link"]).success();
    assert!(!links.stdout.contains("br-") && !links.stdout.contains("veth"), "interfaces left: {}", links.stdout);
    let rules = daemon.in_netns(&["iptables-save"]).success();
    assert!(!rules.stdout.contains("br-"), "iptables rules left for {project}: {}", rules.stdout);
}

#[test]
fn shop_comes_up_serves_scales_restarts_and_goes_away() {
    let daemon = Berthd::start_with_busybox();
    let p = Project { daemon: &daemon, name: "shop", dir: shop_dir() };

    // `up -d --build`: both images built with the classic builder (args
    // and a target), the migration waits for the healthy database, the
    // web server for the migration.
    let up = p.compose(&["up", "-d", "--build"]).success();
    let all = format!("{}{}", up.stdout, up.stderr);
    assert!(all.contains("Successfully tagged shop-db:latest"), "{all}");
    assert!(all.contains("Successfully tagged shop-web:latest"), "{all}");
    assert!(all.contains("Step 3/8 : RUN mkdir -p /srv"), "the db build stops at its target: {all}");
    assert!(all.contains("Container shop-db-1  Healthy"), "{all}");
    assert_eq!(p.states(), ["shop-db-1 running", "shop-migrate-1 exited", "shop-web-1 running"]);
    let migrate = daemon.inspect_format("{{.State.ExitCode}}", "shop-migrate-1");
    assert_eq!(migrate, "0");
    let ps = p.compose(&["ps", "--format", "{{.Service}} {{.Status}}"]).success();
    assert!(ps.stdout.contains("db Up") && ps.stdout.contains("(healthy)"), "{}", ps.stdout);

    // Over loopback: env_file, the database by service name on the user
    // network, the migration's output in the named volume, the tmpfs and
    // the bind mount.
    let web = p.web_address(1);
    assert!(web.starts_with("127.0.0.1:"), "{web}");
    let status = p.get(&web, "/cgi-bin/status");
    assert!(status.contains("greeting=hello-from-env-file\n"), "{status}");
    assert!(status.contains("db=v42\n"), "{status}");
    assert!(status.contains("tmpfs=1\n"), "{status}");
    assert!(status.contains("v42\nmigrated\n"), "{status}");
    assert_eq!(p.get(&web, "/static/index.txt"), "static page\n");

    // Labels, limits and restart policy reach the container.
    let web_id = p.compose(&["ps", "-q", "web"]).success().stdout.trim().to_string();
    assert_eq!(daemon.inspect_format("{{index .Config.Labels \"shop.role\"}}", &web_id), "frontend");
    assert_eq!(daemon.inspect_format("{{.HostConfig.Memory}}", &web_id), "67108864");
    assert_eq!(daemon.inspect_format("{{.HostConfig.RestartPolicy.Name}}", &web_id), "unless-stopped");

    // logs, exec, top.
    let logs = p.compose(&["logs", "--no-color", "db"]).success();
    assert!(logs.stdout.contains("db v42 ready"), "{}", logs.stdout);
    let exec = p.compose(&["exec", "-T", "web", "cat", "/data/schema"]).success();
    assert_eq!(exec.stdout, "v42\nmigrated\n");
    let top = p.compose(&["top", "web"]).success();
    assert!(top.stdout.contains("httpd -f -p 8080"), "{}", top.stdout);

    // A second `up -d` with nothing changed recreates nothing (compose
    // compares config hashes, image IDs, network IDs and volumes).
    let again = p.compose(&["up", "-d"]).success();
    let all = format!("{}{}", again.stdout, again.stderr);
    assert!(!all.contains("Recreate") && !all.contains("Creat"), "{all}");
    assert_eq!(p.compose(&["ps", "-q", "web"]).success().stdout.trim(), web_id);

    // Scale: three web servers, each on a port of its own, each serving.
    p.compose(&["up", "-d", "--scale", "web=3"]).success();
    let running: Vec<String> = p.states().into_iter().filter(|s| s.starts_with("shop-web-") && s.ends_with(" running")).collect();
    assert_eq!(running.len(), 3, "{running:?}");
    let mut addresses: Vec<String> = (1..=3).map(|i| p.web_address(i)).collect();
    for a in &addresses {
        assert!(p.get(a, "/cgi-bin/status").contains("db=v42"), "{a}");
    }
    addresses.dedup();
    assert_eq!(addresses.len(), 3, "{addresses:?}");
    p.compose(&["up", "-d", "--scale", "web=1"]).success();
    assert_eq!(p.states(), ["shop-db-1 running", "shop-migrate-1 exited", "shop-web-1 running"]);

    // restart / stop / start keep the containers and their data.
    let started = daemon.inspect_format("{{.State.StartedAt}}", &web_id);
    p.compose(&["restart", "web"]).success();
    assert_ne!(daemon.inspect_format("{{.State.StartedAt}}", &web_id), started);
    p.compose(&["stop"]).success();
    assert_eq!(p.states(), ["shop-db-1 exited", "shop-migrate-1 exited", "shop-web-1 exited"]);
    p.compose(&["start"]).success();
    eventually(30, "web running again", || p.states().contains(&"shop-web-1 running".to_string()).then_some(()));
    let web = p.web_address(1);
    assert!(p.get(&web, "/cgi-bin/status").contains("v42\nmigrated\n"));

    // `down -v --remove-orphans`: nothing left.
    let down = p.compose(&["down", "-v", "--remove-orphans", "-t", "1"]).success();
    let all = format!("{}{}", down.stdout, down.stderr);
    assert!(all.contains("Volume shop_dbdata  Removed"), "{all}");
    assert!(all.contains("Network shop_backend  Removed"), "{all}");
    assert_nothing_left(&daemon, "shop");
}

#[test]
fn one_off_runs_profiles_config_cp_and_build() {
    let daemon = Berthd::start_with_busybox();
    let p = Project { daemon: &daemon, name: "tools", dir: shop_dir() };

    // `config` resolves the project as compose sees it.
    let services = p.compose(&["config", "--services"]).success();
    let mut names: Vec<&str> = services.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["db", "migrate", "web"], "profiles hide debug");
    let services = p.compose(&["--profile", "debug", "config", "--services"]).success();
    assert!(services.stdout.lines().any(|l| l == "debug"), "{}", services.stdout);

    // `build` alone, then `up` uses the built images without building.
    let build = p.compose(&["build"]).success();
    let all = format!("{}{}", build.stdout, build.stderr);
    assert!(all.contains("Successfully built "), "{all}");
    let images = daemon.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).success();
    assert!(images.stdout.contains("tools-db:latest") && images.stdout.contains("tools-web:latest"), "{}", images.stdout);
    let rebuilt = p.compose(&["build", "web"]).success();
    let all = format!("{}{}", rebuilt.stdout, rebuilt.stderr);
    assert!(all.contains(" ---> Using cache"), "an unchanged rebuild hits the cache: {all}");
    let up = p.compose(&["up", "-d", "--wait"]).success();
    let all = format!("{}{}", up.stdout, up.stderr);
    assert!(!all.contains("Step 1/"), "up rebuilt an image it had: {all}");

    // `run --rm` is a one-off container on the project's network and
    // volume, removed afterwards.
    let run = p.compose(&["run", "--rm", "-T", "migrate", "sh", "-c", "cat /data/schema; wget -q -O- http://db:5432/version"]).success();
    assert_eq!(run.stdout, "v42\nmigrated\nv42\n");
    let oneoffs = daemon.docker(&["ps", "-aq", "--filter", "label=com.docker.compose.oneoff=True"]).success();
    assert_eq!(oneoffs.stdout.trim(), "", "the one-off container stays");

    // A profile's service starts only when asked for.
    assert!(!p.states().iter().any(|s| s.starts_with("tools-debug")));
    p.compose(&["--profile", "debug", "up", "-d", "debug"]).success();
    assert!(p.states().contains(&"tools-debug-1 running".to_string()), "{:?}", p.states());

    // `cp` both ways.
    let scratch = tempfile::tempdir().unwrap();
    let local = scratch.path().join("schema");
    p.compose(&["cp", "web:/data/schema", local.to_str().unwrap()]).success();
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "v42\nmigrated\n");
    std::fs::write(&local, "copied in\n").unwrap();
    p.compose(&["cp", local.to_str().unwrap(), "web:/tmp/schema"]).success();
    assert_eq!(p.compose(&["exec", "-T", "web", "cat", "/tmp/schema"]).success().stdout, "copied in\n");

    p.compose(&["--profile", "debug", "down", "-v", "-t", "1"]).success();
    assert_nothing_left(&daemon, "tools");
}

#[test]
fn docker_compose_v1_runs_the_same_project() {
    let daemon = Berthd::start_with_busybox();
    let p = Project { daemon: &daemon, name: "legacy", dir: shop_dir() };
    let up = p.compose_v1(&["up", "-d", "--build"]);
    let all = format!("{}{}", up.stdout, up.stderr);
    assert_eq!(up.code, 0, "{all}");
    assert!(all.contains("Successfully tagged legacy_web:latest") || all.contains("Successfully tagged legacy-web:latest"), "{all}");
    eventually(30, "the web server", || {
        let out = p.compose_v1(&["ps"]);
        (out.code == 0 && out.stdout.contains("Up")).then_some(())
    });
    let port = p.compose_v1(&["port", "web", "8080"]).success();
    let status = p.get(port.stdout.trim(), "/cgi-bin/status");
    assert!(status.contains("db=v42\n") && status.contains("migrated\n"), "{status}");
    let exec = p.compose_v1(&["exec", "-T", "web", "cat", "/data/schema"]).success();
    assert_eq!(exec.stdout, "v42\nmigrated\n");
    let again = p.compose_v1(&["up", "-d"]).success();
    let all = format!("{}{}", again.stdout, again.stderr);
    assert!(!all.contains("Recreating"), "{all}");
    p.compose_v1(&["down", "-v", "-t", "1"]).success();
    assert_nothing_left(&daemon, "legacy");
}

/// Read `child`'s stdout lines until one satisfies `done` (or it ends);
/// then kill it. Answers what was read.
fn read_until(mut child: std::process::Child, done: impl Fn(&str) -> bool) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        seen.push_str(&line);
        seen.push('\n');
        if done(&line) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn push_pull_follow_logs_and_events() {
    let registry = Registry::start().unwrap();
    let daemon = Berthd::start_with_busybox();
    daemon.reach_host_port(registry.port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("app/Dockerfile"), "FROM busybox\nRUN echo built > /built\n").unwrap();
    let compose = format!(
        r#"services:
  app:
    build: ./app
    image: {}/shop/app:1
    command: ["sh", "-c", "cat /built; while true; do echo tick; sleep 0.2; done"]
    stop_grace_period: 1s
  worker:
    image: {}/shop/app:1
    depends_on: [app]
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"#,
        registry.addr(),
        registry.addr()
    );
    std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    let p = Project { daemon: &daemon, name: "reg", dir: dir.path().to_path_buf() };
    let image = format!("{}/shop/app:1", registry.addr());

    // build + push, then the local copy goes and `pull` brings it back.
    p.compose(&["build"]).success();
    let push = p.compose(&["push", "app"]).success();
    assert!(format!("{}{}", push.stdout, push.stderr).contains("Pushed"), "{push:?}");
    daemon.docker(&["rmi", &image]).success();
    daemon.docker(&["image", "inspect", &image]).failure();
    p.compose(&["pull"]).success();
    daemon.docker(&["image", "inspect", &image]).success();

    // depends_on's short form (service_started): both run.
    p.compose(&["up", "-d", "--no-build"]).success();
    assert_eq!(p.states(), ["reg-app-1 running", "reg-worker-1 running"]);

    // `logs -f` follows: ticks as they come.
    let seen = read_until(p.follow(&["logs", "-f", "--no-color", "--since", "1s", "app"]), |l| l.ends_with("tick"));
    assert!(seen.contains("app-1  | tick"), "{seen}");

    // `events --json` sees a restart made meanwhile.
    let child = p.follow(&["events", "--json"]);
    let restarter = std::thread::scope(|s| {
        let h = s.spawn(|| read_until(child, |l| l.contains("\"action\":\"start\"") && l.contains("worker")));
        // Nothing says when compose has subscribed: restart until it saw one.
        while !h.is_finished() {
            p.compose(&["restart", "worker"]).success();
        }
        h.join().unwrap()
    });
    assert!(restarter.contains("\"service\":\"worker\""), "{restarter}");

    p.compose(&["down", "-v", "-t", "1"]).success();
    assert_nothing_left(&daemon, "reg");
}

/// `build.cache_from`: docker-compose 1.29 passes it to the classic
/// builder, which reuses a loaded image's history (no step images of it
/// are here). Compose v2's classic build path does not send it (its
/// imageBuildOptions has no CacheFrom), against dockerd too.
#[test]
fn build_cache_from_reuses_a_loaded_image() {
    let builder = Berthd::start_with_busybox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM busybox\nENV A=1\nRUN echo cached > /c\nCMD [\"cat\", \"/c\"]\n").unwrap();
    let built = Command::new(compat_tests::cli::docker_binary())
        .args(["build", "-q", "-t", "cache-src:1"])
        .arg(dir.path())
        .env("DOCKER_HOST", builder.host())
        .env("DOCKER_CONFIG", builder.dir().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let id = String::from_utf8(built.stdout).unwrap().trim().to_string();
    let archive_path = dir.path().join("cache-src.tar");
    builder.docker(&["save", "-o", archive_path.to_str().unwrap(), "cache-src:1"]).success();
    let archive = std::fs::read(&archive_path).unwrap();
    std::fs::remove_file(&archive_path).unwrap();

    let daemon = Berthd::start_with_busybox();
    daemon.docker_stdin(&["load"], &archive).success();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  app:\n    image: cached-app:1\n    build:\n      context: .\n      cache_from: [\"cache-src:1\"]\n",
    )
    .unwrap();
    let p = Project { daemon: &daemon, name: "cachefrom", dir: dir.path().to_path_buf() };
    let out = p.compose_v1(&["build"]).success();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(all.matches(" ---> Using cache").count(), 3, "{all}");
    assert_eq!(daemon.inspect_format("{{.Id}}", "cached-app:1").trim(), id);
}
