//! Chaos: a mixed workload from several concurrent clients while berthd is
//! `kill -9`ed and started again, containerd is killed and restarted and the
//! registry stopped and started, on a fixed schedule; then the invariants:
//! nothing orphaned or stuck, live-restore containers untouched, their logs
//! whole, and every request either succeeded or got a clear error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use compat_tests::containerd::{ctr_lines_at, PrivateContainerd};
use compat_tests::registry::Registry;
use compat_tests::{Berthd, CmdOutput};

/// How long the workload runs; the schedule below fits in it.
const WORKLOAD: Duration = Duration::from_secs(70);
const COUNTERS: usize = 3;

/// What the clients share.
struct Ctx {
    host: String,
    config: PathBuf,
    image: String,
    work: PathBuf,
    stop: AtomicBool,
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    ok: BTreeMap<&'static str, usize>,
    errors: BTreeMap<&'static str, usize>,
    /// Failures without a message a user could act on.
    unclear: Vec<String>,
    /// Execs cut by a kill -9 of berthd, which the CLI reports with
    /// exit code 255 alone (see `docker`).
    silent_exec: Vec<String>,
    /// Requests that never returned.
    hangs: Vec<String>,
    /// A few of each operation's error texts, for the report.
    samples: BTreeMap<&'static str, BTreeSet<String>>,
    /// Names of containers whose create or remove failed.
    risky_names: BTreeSet<String>,
}

impl Ctx {
    /// `docker ARGS` under `timeout`, counted.
    fn docker(&self, op: &'static str, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new("timeout");
        cmd.arg("120")
            .arg(compat_tests::cli::docker_binary())
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.config)
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        let out = compat_tests::cli::run_piped(cmd, None);
        let mut tally = self.tally.lock().unwrap();
        let text = format!("{op} `docker {}`: code {} {} {}", args.join(" "), out.code, out.stderr.trim(), out.stdout.trim());
        if out.code == 0 {
            *tally.ok.entry(op).or_default() += 1;
        } else if out.code == 124 {
            tally.hangs.push(text);
        } else if op == "exec" && out.code == 255 && out.stderr.trim().is_empty() {
            // The stock CLI's word for a daemon that died during the exec:
            // its exec inspect cannot connect, and it exits 255 without a
            // message (docker/cli getExecExitStatus), whether or not the
            // output came through; dockerd's users see the same. Counted
            // apart.
            tally.silent_exec.push(text);
        } else if clear(&out.stderr) || (op == "exec" && clear(&out.stdout)) {
            // As dockerd, an exec that cannot start says why on its
            // output stream (stdout), not as an error response.
            *tally.errors.entry(op).or_default() += 1;
            let samples = tally.samples.entry(op).or_default();
            if samples.len() < 4 {
                let said = if out.stderr.trim().is_empty() { &out.stdout } else { &out.stderr };
                let text: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("Run '")).collect();
                samples.insert(text.join(" | ").chars().take(240).collect());
            }
        } else {
            tally.unclear.push(text);
        }
        out
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn risky(&self, name: &str) {
        self.tally.lock().unwrap().risky_names.insert(name.to_string());
    }
}

/// An error a user can act on: the CLI's "Error…"/"error…" lines naming
/// what failed (the daemon not answering included), and a stream's error
/// naming containerd (as `docker pull -q` prints a pull cut by a containerd
/// restart: "containerd: content.write: write session closed by
/// containerd"; issue 12 asks for outage errors that name containerd).
/// Also the stock CLI's
/// own words for a connection cut by `kill -9` ("unexpected EOF",
/// "connection reset"), for a
/// hijack refused with a status ("unable to upgrade to tcp, received 503")
/// and for `cp` whose destination stat failed because the daemon was down
/// ("no such directory": the CLI ignores the stat error and guesses).
fn clear(stderr: &str) -> bool {
    let text = stderr.to_lowercase();
    !text.trim().is_empty()
        && ["error", "cannot", "failed", "containerd", "unexpected eof", "connection reset", "received 503", "no such directory"]
            .iter()
            .any(|w| text.contains(w))
}

fn run_worker(ctx: &Ctx, w: usize) {
    let mut i = 0;
    while ctx.running() {
        let out = ctx.docker("run --rm", &["run", "--rm", "--network", "chaosnet", "busybox", "echo", "hi"]);
        if out.code == 0 {
            assert_eq!(out.stdout, "hi\n", "run --rm printed the wrong output");
        }
        let name = format!("chaos-run-{w}-{i}");
        if ctx.docker("run -d", &["run", "-d", "--name", &name, "-p", "80", "--network", "chaosnet", "busybox", "sleep", "60"]).code != 0 {
            ctx.risky(&name);
        }
        if ctx.docker("rm -f", &["rm", "-f", &name]).code != 0 {
            ctx.risky(&name);
        }
        i += 1;
    }
}

fn exec_worker(ctx: &Ctx, _: usize) {
    while ctx.running() {
        let out = ctx.docker("exec", &["exec", "counter0", "echo", "inside"]);
        if out.code == 0 {
            assert_eq!(out.stdout, "inside\n");
        }
        ctx.docker("logs", &["logs", "--tail", "2", "counter1"]);
    }
}

fn follow_worker(ctx: &Ctx, _: usize) {
    while ctx.running() {
        // A follower for two seconds; `timeout`'s 124 is the normal end.
        let mut cmd = Command::new("timeout");
        cmd.arg("2")
            .arg(compat_tests::cli::docker_binary())
            .args(["logs", "-f", "--tail", "1", "counter1"])
            .env("DOCKER_HOST", &ctx.host)
            .env("DOCKER_CONFIG", &ctx.config);
        let out = compat_tests::cli::run_piped(cmd, None);
        let mut tally = ctx.tally.lock().unwrap();
        if out.code == 124 || out.code == 0 {
            *tally.ok.entry("logs -f").or_default() += 1;
        } else if clear(&out.stderr) {
            *tally.errors.entry("logs -f").or_default() += 1;
        } else {
            tally.unclear.push(format!("logs -f: code {} {}", out.code, out.stderr.trim()));
        }
        drop(tally);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pull_worker(ctx: &Ctx, _: usize) {
    while ctx.running() {
        if ctx.docker("pull", &["pull", "-q", &ctx.image]).code == 0 {
            ctx.docker("rmi", &["rmi", &ctx.image]);
        } else {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn build_worker(ctx: &Ctx, w: usize) {
    let dir = ctx.work.join(format!("build-{w}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut i = 0;
    while ctx.running() {
        std::fs::write(dir.join("Dockerfile"), format!("FROM busybox\nRUN echo {i} > /i\nCOPY Dockerfile /\n")).unwrap();
        let tag = format!("chaos-build:{w}");
        ctx.docker("build", &["build", "-q", "--no-cache", "-t", &tag, dir.to_str().unwrap()]);
        i += 1;
    }
}

fn network_worker(ctx: &Ctx, w: usize) {
    let mut i = 0;
    while ctx.running() {
        let net = format!("chaos-net-{w}-{i}");
        if ctx.docker("network create", &["network", "create", &net]).code == 0 {
            if ctx.docker("network connect", &["network", "connect", &net, "counter2"]).code == 0 {
                ctx.docker("network disconnect", &["network", "disconnect", &net, "counter2"]);
            }
            ctx.docker("network rm", &["network", "rm", &net]);
        }
        i += 1;
    }
}

fn cp_worker(ctx: &Ctx, w: usize) {
    let dir = ctx.work.join(format!("cp-{w}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut i = 0;
    while ctx.running() {
        let file = dir.join(format!("f{i}"));
        std::fs::write(&file, format!("copy {i}\n")).unwrap();
        // Into and out of each counter's named volume.
        let target = format!("counter{}:/data/", i % COUNTERS);
        if ctx.docker("cp in", &["cp", file.to_str().unwrap(), &target]).code == 0 {
            let back = dir.join(format!("back{i}"));
            let source = format!("counter{}:/data/f{i}", i % COUNTERS);
            if ctx.docker("cp out", &["cp", &source, back.to_str().unwrap()]).code == 0 {
                assert_eq!(std::fs::read_to_string(&back).unwrap(), format!("copy {i}\n"));
            }
        }
        i += 1;
    }
}

fn compose_worker(ctx: &Ctx, w: usize) {
    let dir = ctx.work.join(format!("compose-{w}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(&file, "services:\n  web:\n    image: busybox\n    command: sleep 60\n  side:\n    image: busybox\n    command: sleep 60\n").unwrap();
    let file = file.to_str().unwrap();
    while ctx.running() {
        ctx.docker("compose up", &["compose", "-p", "chaos", "-f", file, "up", "-d"]);
        ctx.docker("compose down", &["compose", "-p", "chaos", "-f", file, "down", "-t", "1"]);
    }
}

/// Start a berthd on the shared state, reached at `socket`.
fn start_berthd(ctd: &PrivateContainerd, socket: &Path, first: Option<&Berthd>) -> Berthd {
    let mut builder = Berthd::builder()
        .containerd(&ctd.socket())
        .daemon_json(serde_json::json!({"live-restore": true}))
        .without_default_host()
        .args(["-H".to_string(), format!("unix://{}", socket.display())]);
    if let Some(first) = first {
        builder = builder
            .same_network_as(first)
            .args(["--data-root", &first.data_root.display().to_string()])
            .args(["--exec-root", &first.exec_root.display().to_string()])
            .args(["--containerd-namespace", &first.namespace]);
    }
    builder.start()
}

fn lines(out: &CmdOutput) -> BTreeSet<String> {
    out.stdout.lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
}

/// The mount points under `root`.
fn mounts_under(root: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| Path::new(p).starts_with(root))
        .map(str::to_string)
        .collect()
}

#[test]
fn chaos_kills_and_restarts_lose_nothing_and_leave_nothing_behind() {
    let mut registry = Registry::start().expect("registry");
    let pushed = compat_tests::images::BusyboxImage::new("berth/chaos:v1")
        .layer_with_file("/chaos", "pulled\n")
        .build()
        .expect("image");
    registry.push_oci(&pushed, "berth/chaos", "v1").expect("push");
    let image = registry.reference("berth/chaos", "v1");
    let mut ctd = PrivateContainerd::start();
    let work = tempfile::Builder::new().prefix("berth-chaos-").tempdir().expect("tempdir");
    let socket = work.path().join("berthd.sock");
    let first = start_berthd(&ctd, &socket, None);
    let archive = compat_tests::images::BusyboxImage::new("busybox:latest").build().and_then(|i| i.docker_archive()).expect("busybox");
    first.docker_stdin(&["load"], &archive).success();
    first.reach_host_port(registry.port());
    first.docker(&["network", "create", "--subnet", "10.99.0.0/29", "chaosnet"]).success();
    for i in 0..COUNTERS {
        let name = format!("counter{i}");
        let volume = format!("chaos-vol-{i}:/data");
        first
            .docker(&[
                "run", "-d", "--name", &name, "-v", &volume, "busybox", "sh", "-c",
                "i=0; while true; do i=$((i+1)); echo seq$i; sleep 0.1; done",
            ])
            .success();
    }
    let pids: Vec<String> = (0..COUNTERS).map(|i| first.inspect_format("{{.State.Pid}}", &format!("counter{i}"))).collect();

    let ctx = Arc::new(Ctx {
        host: format!("unix://{}", socket.display()),
        config: first.dir().join("docker-config"),
        image: image.clone(),
        work: work.path().to_path_buf(),
        stop: AtomicBool::new(false),
        tally: Mutex::new(Tally::default()),
    });
    let workers: Vec<(&str, fn(&Ctx, usize))> = vec![
        ("run", run_worker),
        ("exec", exec_worker),
        ("follow", follow_worker),
        ("pull", pull_worker),
        ("build", build_worker),
        ("network", network_worker),
        ("cp", cp_worker),
        ("compose", compose_worker),
    ];
    let handles: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(w, (name, f))| {
            let ctx = ctx.clone();
            std::thread::Builder::new().name(name.into()).spawn(move || f(&ctx, w)).unwrap()
        })
        .collect();

    // The schedule: (seconds into the workload, fault).
    let start = Instant::now();
    let at = |secs: u64| {
        let due = start + Duration::from_secs(secs);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    };
    let mut daemons = vec![first];
    let kill_berthd = |daemons: &mut Vec<Berthd>| {
        let current = daemons.last_mut().unwrap();
        current.signal(libc::SIGKILL);
        current.stop();
    };
    let mut faults: Vec<String> = vec![];
    at(8);
    kill_berthd(&mut daemons);
    let t = Instant::now();
    let next = start_berthd(&ctd, &socket, Some(&daemons[0]));
    faults.push(format!("berthd kill -9 (back in {:.1?})", t.elapsed()));
    daemons.push(next);
    at(20);
    ctd.kill();
    std::thread::sleep(Duration::from_secs(2));
    ctd.restart();
    faults.push("containerd kill -9 + restart".into());
    at(30);
    registry.kill();
    faults.push("registry stop".into());
    at(38);
    registry.restart().expect("registry restart");
    faults.push("registry start".into());
    at(45);
    kill_berthd(&mut daemons);
    let t = Instant::now();
    let next = start_berthd(&ctd, &socket, Some(&daemons[0]));
    faults.push(format!("berthd kill -9 (back in {:.1?})", t.elapsed()));
    daemons.push(next);
    at(55);
    kill_berthd(&mut daemons);
    ctd.kill();
    let t = Instant::now();
    ctd.restart();
    let next = start_berthd(&ctd, &socket, Some(&daemons[0]));
    faults.push(format!("berthd and containerd kill -9 together (back in {:.1?})", t.elapsed()));
    daemons.push(next);
    at(WORKLOAD.as_secs());
    ctx.stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("a client thread failed");
    }
    let workload_time = start.elapsed();
    let daemon = daemons.last().unwrap();

    // Clear away what the clients left (each may have been cut short);
    // what cannot be cleared is a problem found.
    let mut cleanup_failures = vec![];
    let clean = |args: &[&str]| {
        let out = daemon.docker(args);
        (out.code != 0).then(|| format!("docker {}: {}", args.join(" "), out.stderr.trim()))
    };
    let out = daemon.docker(&["ps", "-a", "--format", "{{.Names}}"]).success();
    for name in out.stdout.lines().filter(|n| !n.starts_with("counter")) {
        cleanup_failures.extend(clean(&["rm", "-f", name]));
    }
    let out = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]).success();
    for net in out.stdout.lines().filter(|n| n.starts_with("chaos-net") || n.starts_with("chaos_")) {
        let joined = daemon.inspect_format("{{json .NetworkSettings.Networks}}", "counter2");
        if joined.contains(&format!("\"{net}\":")) {
            let out = daemon.docker(&["network", "disconnect", "-f", net, "counter2"]);
            if out.code != 0 {
                let seen = daemon.inspect_format("{{json .NetworkSettings.Networks}}", "counter2");
                let network = daemon.docker(&["network", "inspect", net]).stdout;
                let ids = daemon.docker(&["network", "ls", "--no-trunc"]).stdout;
                cleanup_failures.push(format!("disconnect {net}: {}\ncounter2 sees {seen}\nnetwork: {network}\n{ids}", out.stderr.trim()));
            }
        }
        cleanup_failures.extend(clean(&["network", "rm", net]));
    }
    for tag in daemon.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).success().stdout.lines() {
        if tag.starts_with("chaos-build") || tag.contains("berth/chaos") {
            cleanup_failures.extend(clean(&["rmi", "-f", tag]));
        }
    }
    cleanup_failures.extend(clean(&["image", "prune", "-f"]));
    cleanup_failures.extend(clean(&["builder", "prune", "-f"]));

    let counters: BTreeSet<String> = (0..COUNTERS)
        .map(|i| daemon.inspect_format("{{.Id}}", &format!("counter{i}")))
        .collect();
    let ctr = |args: &[&str]| ctr_lines_at(&ctd.socket(), &daemon.namespace, args);
    let mut f = Findings::default();
    f.check("leftovers that could not be removed", cleanup_failures);

    // Containers known both ways.
    let known = lines(&daemon.docker(&["ps", "-aq", "--no-trunc"]).success());
    let in_containerd: BTreeSet<String> = ctr(&["containers", "ls", "-q"]).into_iter().collect();
    f.check("containers only in containerd", in_containerd.difference(&known).cloned().collect());
    f.check("containers only in berthd", known.difference(&in_containerd).cloned().collect());
    f.check("containers besides the counters", known.difference(&counters).cloned().collect());
    // Tasks, snapshots, leases.
    let tasks = ctr(&["tasks", "ls"]);
    f.check(
        "orphaned or stopped tasks",
        tasks.iter().skip(1).filter(|l| !counters.iter().any(|c| l.starts_with(c.as_str())) || !l.contains("RUNNING")).cloned().collect(),
    );
    let snapshots = ctr(&["snapshots", "--snapshotter", "overlayfs", "ls"]);
    f.check(
        "active snapshots of no container",
        snapshots
            .iter()
            .skip(1)
            .filter(|l| l.split_whitespace().nth(2) == Some("Active"))
            .filter(|l| !counters.iter().any(|c| l.starts_with(c.as_str())))
            .cloned()
            .collect(),
    );
    f.check("leases", ctr(&["leases", "ls", "-q"]));
    // Network namespaces, veths, firewall rules.
    let netns: Vec<String> = std::fs::read_dir(daemon.exec_root.join("netns"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    f.check("netns of no running container", netns.into_iter().filter(|n| n != "host" && !counters.contains(n)).collect());
    let links = daemon.in_netns(&["ip", "-o", "link", "show", "type", "veth"]).success().stdout;
    let veths = links.lines().count();
    f.report.push(format!("veths: {veths} for {COUNTERS} endpoints"));
    if veths != COUNTERS {
        f.problems.push(format!("{veths} veths for {COUNTERS} endpoints:\n{links}"));
    }
    let rules = daemon.in_netns(&["iptables-save"]).success().stdout;
    f.check("DNAT rules", rules.lines().filter(|l| l.contains("DNAT")).map(str::to_string).collect());
    let bridges = daemon.in_netns(&["ip", "-o", "link", "show", "type", "bridge"]).success().stdout;
    let bridge_networks = lines(&daemon.docker(&["network", "ls", "-q", "--filter", "driver=bridge"]).success()).len();
    let bridge_count = bridges.lines().count();
    f.report.push(format!("bridge networks: {bridge_networks}, bridges: {bridge_count}"));
    if bridge_networks != bridge_count {
        f.problems.push(format!("{bridge_count} bridges for {bridge_networks} bridge networks:\n{bridges}"));
    }
    // Mounts and log files.
    let mounts: Vec<String> = [daemon.data_root.clone(), daemon.exec_root.clone(), ctd_state(&ctd)]
        .iter()
        .flat_map(|root| mounts_under(root))
        .filter(|m| !counters.iter().any(|c| m.contains(c.as_str())) && !m.ends_with("/netns/host"))
        .collect();
    f.check("mounts of no container", mounts);
    let dirs: Vec<String> = std::fs::read_dir(daemon.data_root.join("containers"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    f.check("container directories of no container", dirs.into_iter().filter(|d| !counters.contains(d)).collect());

    // No name stuck as taken: every name a failed create or remove touched.
    let risky: Vec<String> = ctx.tally.lock().unwrap().risky_names.iter().take(10).cloned().collect();
    let mut stuck_names = vec![];
    for name in &risky {
        let out = daemon.docker(&["create", "--name", name, "busybox", "true"]);
        if out.code != 0 {
            stuck_names.push(format!("{name}: {}", out.stderr.trim()));
        } else {
            daemon.docker(&["rm", name]).success();
        }
    }
    f.report.push(format!("names checked: {}", risky.len()));
    f.check("names stuck as taken", stuck_names);
    // No address stuck: chaosnet's five addresses can all be had again.
    let mut stuck_ips = vec![];
    for i in 0..5 {
        let name = format!("ip-check-{i}");
        let out = daemon.docker(&["run", "-d", "--name", &name, "--network", "chaosnet", "busybox", "sleep", "60"]);
        if out.code != 0 {
            stuck_ips.push(out.stderr.trim().to_string());
        }
    }
    for i in 0..5 {
        daemon.docker(&["rm", "-f", &format!("ip-check-{i}")]);
    }
    f.check("chaosnet addresses stuck", stuck_ips);

    // Live-restore containers ran through it all, their logs whole.
    let mut log_report = vec![];
    for (i, pid) in pids.iter().enumerate() {
        let name = format!("counter{i}");
        let now = daemon.inspect_format("{{.State.Status}} {{.State.Pid}}", &name);
        if now != format!("running {pid}") {
            f.problems.push(format!("{name} was running as {pid}, is now {now}"));
        }
        let out = daemon.docker(&["logs", &name]).success();
        let numbers: Vec<u64> = out.stdout.lines().filter_map(|l| l.strip_prefix("seq")?.parse().ok()).collect();
        let last = numbers.last().copied().unwrap_or(0);
        let unique: BTreeSet<u64> = numbers.iter().copied().collect();
        let lost = last - unique.len() as u64;
        let duplicated = numbers.len() - unique.len();
        let foreign = out.stdout.lines().count() - numbers.len();
        log_report.push(format!("{name}: {} lines, {lost} lost, {duplicated} duplicated, {foreign} torn", numbers.len()));
        if lost + duplicated as u64 + foreign as u64 > 0 || numbers.windows(2).any(|w| w[0] >= w[1]) {
            f.problems.push(format!("{name}'s log is not whole: {lost} lost, {duplicated} duplicated, {foreign} torn"));
        }
    }

    let tally = ctx.tally.lock().unwrap();
    println!("chaos: {:.0?} of workload; faults: {faults:?}", workload_time);
    println!("requests that succeeded: {:?}", tally.ok);
    println!("requests that failed with a clear error: {:?}", tally.errors);
    for (op, texts) in &tally.samples {
        for t in texts {
            println!("  {op} error: {t}");
        }
    }
    println!("requests that failed unclearly: {}, hung: {}, execs cut by berthd dying (CLI exit 255): {}", tally.unclear.len(), tally.hangs.len(), tally.silent_exec.len());
    for line in f.report.iter().chain(&log_report) {
        println!("  {line}");
    }
    for u in tally.unclear.iter().chain(&tally.hangs).chain(&tally.silent_exec) {
        println!("  unclear/hung: {u}");
    }
    if !tally.unclear.is_empty() || !tally.hangs.is_empty() {
        f.problems.push(format!("{} unclear failures, {} hangs", tally.unclear.len(), tally.hangs.len()));
    }
    assert!(tally.ok.values().sum::<usize>() > 50, "the workload hardly ran: {:?}", tally.ok);
    drop(tally);
    assert!(f.problems.is_empty(), "chaos left problems:\n{}", f.problems.join("\n"));
    // Successors first, then the first daemon (which empties the namespace).
    while let Some(d) = daemons.pop() {
        drop(d);
    }
}

/// What the invariants found: counts to print, and problems.
#[derive(Default)]
struct Findings {
    report: Vec<String>,
    problems: Vec<String>,
}

impl Findings {
    fn check(&mut self, what: &str, found: Vec<String>) {
        self.report.push(format!("{what}: {}", found.len()));
        if !found.is_empty() {
            self.problems.push(format!("{what}: {found:?}"));
        }
    }
}

/// The private containerd's state directory (its shims' rootfs mounts).
fn ctd_state(ctd: &PrivateContainerd) -> PathBuf {
    ctd.socket().parent().unwrap().join("state")
}
