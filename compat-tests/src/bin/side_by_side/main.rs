//! The side-by-side benchmark (issue 8): berthd against Debian's dockerd on
//! the same containerd, one run, same workloads, alternating daemons.
//!
//! Run it with `./scripts/bench.sh` (installs docker.io, builds release
//! binaries). `--quick` runs few repetitions, to check the bench itself.
//! Writes the table to stdout, `target/bench/side_by_side.json` and
//! `target/bench/side_by_side.png`. Never part of the test suite.

mod api_load;
mod build;
mod chart;
mod containers;
mod daemons;
mod filesystems;
mod images;
mod load;
mod networking;
mod report;
mod streams;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use compat_tests::containerd;
use compat_tests::images::BusyboxImage;
use futures_util::{stream, StreamExt};

use daemons::{Daemon, Kind};
use report::{Better, Floor, Outcome, Report, Row};

/// Set by SIGINT/SIGTERM; every repetition loop checks it so the guards
/// (daemons, namespaces, netns, temp dirs) get to clean up.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn check_stop() -> Result<()> {
    ensure!(!STOP.load(Ordering::SeqCst), "interrupted");
    Ok(())
}

/// Repetitions per workload (after `warmup` unrecorded ones per daemon).
struct Plan {
    quick: bool,
    /// `--only a,b`: run only these workloads (for working on them; the
    /// table then goes to side_by_side.partial.*).
    only: Option<Vec<String>>,
    warmup: usize,
    run_rm: usize,
    lifecycle: usize,
    parallel: usize,
    listing: usize,
    /// The rows bound by the CLI's own start (15-20 ms of a 20 ms row):
    /// enough repetitions that the medians' noise is below the gaps.
    cli: usize,
    list_api: usize,
    load_save: usize,
    pull: usize,
    running: usize,
    restarts: usize,
    api_requests: usize,
    logs: usize,
    stats: usize,
    fs: usize,
    build: usize,
    layers: usize,
    layer_mib: usize,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            only: None,
            warmup: 2,
            run_rm: 30,
            lifecycle: 7,
            parallel: 7,
            listing: 30,
            cli: 60,
            list_api: 60,
            load_save: 7,
            pull: 7,
            running: 100,
            restarts: 3,
            api_requests: 5000,
            logs: 5,
            stats: 7,
            fs: 7,
            build: 5,
            layers: 3,
            layer_mib: 20,
        }
    }

    fn selected(&self, workload: &str) -> bool {
        self.only.as_ref().is_none_or(|names| names.iter().any(|n| n == workload))
    }

    fn mode(&self) -> String {
        let mode = if self.quick { "quick" } else { "full" };
        match &self.only {
            Some(names) => format!("{mode}, only {}", names.join(",")),
            None => mode.to_string(),
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            only: None,
            warmup: 1,
            run_rm: 5,
            lifecycle: 2,
            parallel: 2,
            listing: 5,
            cli: 21,
            list_api: 10,
            load_save: 2,
            pull: 2,
            running: 100,
            restarts: 1,
            api_requests: 1000,
            logs: 1,
            stats: 2,
            fs: 2,
            build: 1,
            layers: 3,
            layer_mib: 10,
        }
    }
}

fn main() -> ExitCode {
    let mut plan = Plan::full();
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => plan = Plan::quick(),
            "--only" => only = args.next().map(|names| names.split(',').map(str::to_string).collect()),
            "-h" | "--help" => {
                println!(
                    "usage: side_by_side [--quick] [--only WORKLOAD,…]\n\
                     Runs the same workloads against berthd ($BERTHD_BIN, default target/release/berthd)\n\
                     and /usr/sbin/dockerd on the system containerd; prints a table and writes\n\
                     target/bench/side_by_side.json and .png. Run as root; see BENCHMARK.md."
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
    plan.only = only;
    match run(plan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("side_by_side: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn require_tools() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    ensure!(unsafe { libc::geteuid() } == 0, "run as root (network namespaces, containerd, dockerd)");
    for tool in ["ip", "nsenter", "ctr", "umount"] {
        ensure!(containerd::which(tool).is_some(), "{tool} is missing from PATH");
    }
    let cli = std::env::var_os("DOCKER_CLI").map(PathBuf::from).unwrap_or_else(|| "/usr/local/bin/docker".into());
    ensure!(cli.is_file(), "the stock docker CLI is missing at {}", cli.display());
    ensure!(Path::new(daemons::DOCKERD).is_file(), "{} is missing: run ./scripts/setup.sh --bench", daemons::DOCKERD);
    Ok(())
}

fn run(plan: Plan) -> Result<()> {
    require_tools()?;
    if std::env::var_os("BERTHD_BIN").is_none() {
        let release = workspace_root().join("target/release/berthd");
        ensure!(release.is_file(), "{} is missing: cargo build --release -p berthd", release.display());
        std::env::set_var("BERTHD_BIN", &release);
    }
    containerd::ensure_running();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let work = tempfile::Builder::new().prefix("berth-bench-").tempdir()?;

    eprintln!("building test images…");
    let busybox = BusyboxImage::new("busybox:latest").build()?;
    let busybox_tar = work.path().join("busybox.tar");
    std::fs::write(&busybox_tar, busybox.docker_archive()?)?;
    let mut multi = BusyboxImage::new("bench/multilayer:1");
    for i in 0..plan.layers {
        multi = multi.layer_with_random_file(format!("/data/layer{i}"), plan.layer_mib << 20, i as u64 + 1);
    }
    let multi = Arc::new(multi.build()?);
    let multi_tar = work.path().join("multilayer.tar");
    std::fs::write(&multi_tar, multi.docker_archive()?)?;
    // Pulled content must not be in the daemon already (`docker rmi` after
    // a pull of the loaded image would only untag it): other seeds.
    let mut pulled = BusyboxImage::new("bench/pulled:1");
    for i in 0..plan.layers {
        pulled = pulled.layer_with_random_file(format!("/data/layer{i}"), plan.layer_mib << 20, i as u64 + 101);
    }
    let pulled = Arc::new(pulled.build()?);

    eprintln!("starting berthd, then dockerd…");
    let berthd = Daemon::start(Kind::Berthd)?;
    let dockerd = Daemon::start(Kind::Dockerd)?;
    let mut bench = Bench { daemons: [berthd, dockerd], rt, plan, rows: Vec::new(), floors: Vec::new() };
    let versions = bench.versions();

    // 6 (part): start-up and idle memory.
    bench.rows.push(Row::new(
        "start-up to first /_ping, empty data-root",
        "ms",
        Better::Lower,
        Outcome::from_samples(&[bench.daemons[0].startup.as_secs_f64() * 1e3], None),
        Outcome::from_samples(&[bench.daemons[1].startup.as_secs_f64() * 1e3], None),
    ));
    std::thread::sleep(Duration::from_secs(2));
    bench.rss_row("RSS idle after start")?;

    for d in &bench.daemons {
        d.docker_stdin_file(&["load"], &busybox_tar)?;
    }

    let workloads: [(&str, fn(&mut Bench, &Path) -> Result<()>); 9] = [
        ("run --rm", |b, tar| b.run_rm(tar)),
        ("lifecycle", |b, _| b.lifecycle()),
        ("parallel run -d", |b, tar| b.parallel_run(tar)),
        ("listing with running containers", |b, _| b.listing()),
        ("API requests per second", |b, _| b.api_load()),
        ("latency under load", |b, _| b.load_latency()),
        ("logs", |b, _| b.logs()),
        ("stats and streaming clients", |b, _| b.stats()),
        ("networking", |b, _| b.networking()),
    ];
    for (name, workload) in workloads {
        check_stop()?;
        if !bench.plan.selected(name) {
            continue;
        }
        eprintln!("== {name}");
        if let Err(e) = workload(&mut bench, &busybox_tar) {
            check_stop()?;
            bench.failed_workload(name, &e);
        }
        bench.cleanup_containers();
    }
    check_stop()?;
    if bench.plan.selected("images") {
        eprintln!("== images");
        if let Err(e) = bench.images(&multi, &multi_tar, &pulled) {
            check_stop()?;
            bench.failed_workload("images", &e);
        }
    }
    let size = format!("{} x {} MiB", bench.plan.layers, bench.plan.layer_mib);
    let later: [(&str, Box<dyn Fn(&mut Bench) -> Result<()>>); 3] = [
        ("filesystems", Box::new(|b| b.filesystems(multi.reference(), &size))),
        ("build", Box::new(|b| b.build())),
        ("compose", Box::new(|b| b.compose())),
    ];
    for (name, workload) in later {
        check_stop()?;
        if !bench.plan.selected(name) {
            continue;
        }
        eprintln!("== {name}");
        if let Err(e) = workload(&mut bench) {
            check_stop()?;
            bench.failed_workload(name, &e);
        }
        bench.cleanup_containers();
    }
    std::thread::sleep(Duration::from_secs(2));
    bench.rss_row("RSS idle after all workloads")?;

    let report = Report {
        date: sh("date -u +%Y-%m-%dT%H:%M:%SZ"),
        machine: machine(),
        berthd_version: versions[0].clone(),
        dockerd_version: versions[1].clone(),
        containerd_version: sh("ctr version | awk '/Server/{s=1} s && /Version/{print $2; exit}'"),
        docker_cli_version: sh("docker version --format '{{.Client.Version}}' 2>/dev/null || true"),
        mode: bench.plan.mode(),
        rows: bench.rows.clone(),
        floors: bench.floors.clone(),
    };
    println!(
        "\nberthd {} vs dockerd {} on containerd {}, {} ({}), {}\n",
        report.berthd_version,
        report.dockerd_version,
        report.containerd_version,
        report.machine,
        report.mode,
        report.date
    );
    println!("{}", report.table());
    let out_dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let stem = if bench.plan.only.is_some() { "side_by_side.partial" } else { "side_by_side" };
    let json_path = out_dir.join(format!("{stem}.json"));
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    let png_path = out_dir.join(format!("{stem}.png"));
    chart::write_png(&report.rows, &png_path)?;
    println!("wrote {} and {} (bars numbered as the table rows)", json_path.display(), png_path.display());
    drop(bench);
    drop(work);
    Ok(())
}

/// Output of a shell snippet, trimmed (for report metadata only).
fn sh(script: &str) -> String {
    Command::new("sh")
        .args(["-c", script])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = sh("awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo");
    let mem = sh("awk '/MemTotal/{printf \"%.1f GiB\", $2/1048576}' /proc/meminfo");
    let kernel = sh("uname -r");
    format!("{cpus} CPUs ({model}), {mem} RAM, Linux {kernel}")
}

/// Times one repetition: the workload brackets the measured part with
/// `start`/`stop`; daemon CPU is read at the same two points.
struct Probe<'a> {
    daemon: &'a Daemon,
    started: Option<(Instant, f64)>,
    elapsed: Option<Duration>,
    cpu_ms: f64,
}

impl Probe<'_> {
    fn start(&mut self) -> Result<()> {
        self.started = Some((Instant::now(), self.daemon.cpu_ms()?));
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        let (t0, cpu0) = self.started.take().context("probe stopped before start")?;
        self.elapsed = Some(t0.elapsed());
        self.cpu_ms = self.daemon.cpu_ms()? - cpu0;
        Ok(())
    }
}

/// One daemon's repetitions of one workload.
#[derive(Default)]
struct Series {
    elapsed_ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    /// Fatal: the daemon died, or most repetitions failed.
    error: Option<String>,
    /// Repetitions that failed (not in the stats), with the error.
    failures: Vec<String>,
    reps: usize,
    skipped: Option<String>,
}

impl Series {
    fn outcome(&self, map: impl Fn(f64) -> f64) -> Outcome {
        if let Some(reason) = &self.skipped {
            return Outcome::Skipped { reason: reason.clone() };
        }
        let values: Vec<f64> = self.elapsed_ms.iter().copied().map(map).collect();
        Outcome::from_samples(&values, self.error.clone())
    }

    fn cpu_outcome(&self) -> Outcome {
        if let Some(reason) = &self.skipped {
            return Outcome::Skipped { reason: reason.clone() };
        }
        Outcome::from_stats(report::Stats::mean_of(&self.cpu_ms), self.error.clone())
    }

    fn note(&self, label: &str) -> Option<String> {
        let first = self.failures.first()?;
        Some(format!(
            "{label}: {} of {} repetitions failed (left out of the stats); first: {first}",
            self.failures.len(),
            self.reps
        ))
    }
}

struct Bench {
    daemons: [Daemon; 2],
    rt: tokio::runtime::Runtime,
    plan: Plan,
    rows: Vec<Row>,
    floors: Vec<Floor>,
}

impl Bench {
    fn versions(&self) -> [String; 2] {
        let v = |d: &Daemon| d.docker(&["version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]);
        [
            v(&self.daemons[0]).map(|s| s.trim().to_owned()).unwrap_or_else(|e| format!("? ({e})")),
            v(&self.daemons[1]).map(|s| s.trim().to_owned()).unwrap_or_else(|e| format!("? ({e})")),
        ]
    }

    /// Runs `warmup + reps` repetitions on both daemons, alternating which
    /// goes first, so drift on the machine hits both alike. A daemon whose
    /// repetition fails is dropped from the rest of the workload.
    fn alternate(
        &self,
        name: &str,
        reps: usize,
        skip: [Option<String>; 2],
        mut f: impl FnMut(&Daemon, &mut Probe<'_>) -> Result<()>,
    ) -> Result<[Series; 2]> {
        let mut series: [Series; 2] = Default::default();
        let total = self.plan.warmup + reps;
        for (s, reason) in series.iter_mut().zip(skip) {
            s.skipped = reason;
            s.reps = total;
        }
        for rep in 0..total {
            let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                check_stop()?;
                let s = &mut series[i];
                if s.error.is_some() || s.skipped.is_some() {
                    continue;
                }
                let daemon = &self.daemons[i];
                let mut probe = Probe { daemon, started: None, elapsed: None, cpu_ms: 0.0 };
                let result = f(daemon, &mut probe).and_then(|()| probe.elapsed.context("workload did not time itself"));
                match result {
                    Ok(elapsed) => {
                        if rep >= self.plan.warmup {
                            s.elapsed_ms.push(elapsed.as_secs_f64() * 1e3);
                            s.cpu_ms.push(probe.cpu_ms);
                        }
                    }
                    Err(e) => {
                        check_stop()?;
                        let msg = format!("rep {}/{total}: {e:#}", rep + 1);
                        eprintln!("  {name}: {} failed: {msg}", daemon.label());
                        if let Err(dead) = daemon.ensure_alive() {
                            s.error = Some(format!("{msg}\n{dead:#}"));
                        } else {
                            s.failures.push(msg);
                            if s.failures.len() * 2 > total {
                                s.error = Some(format!(
                                    "{} of {total} repetitions failed; first: {}",
                                    s.failures.len(),
                                    s.failures[0]
                                ));
                            }
                        }
                    }
                }
            }
        }
        let med = |s: &Series| report::Stats::of(&s.elapsed_ms).map(|s| report::fmt(s.median)).unwrap_or("-".into());
        eprintln!("  {name}: berthd {} ms, dockerd {} ms (median)", med(&series[0]), med(&series[1]));
        Ok(series)
    }

    /// Pushes the workload's row (`map` turns elapsed ms into the unit) and
    /// its daemon-CPU row.
    /// One GET per repetition on a fresh unix-socket connection, checked
    /// by `check`: the daemon's own share of a CLI row.
    fn raw_get(
        &self,
        name: &str,
        skip: [Option<String>; 2],
        path: impl Fn(&Daemon) -> String,
        check: impl Fn(&Daemon, &serde_json::Value) -> Result<()>,
    ) -> Result<[Series; 2]> {
        self.alternate(name, self.plan.list_api, skip, |d, p| {
            let path = path(d);
            p.start()?;
            let resp = compat_tests::http::unix_request(&d.socket, "GET", &path, &[], &[])?;
            p.stop()?;
            ensure!(resp.status == 200, "GET {path}: status {}: {}", resp.status, resp.text());
            check(d, &resp.json())
        })
    }

    fn push(&mut self, name: &str, unit: &str, better: Better, series: &[Series; 2], map: impl Fn(f64) -> f64) {
        let mut row = Row::new(name, unit, better, series[0].outcome(&map), series[1].outcome(&map));
        row.notes.extend(series[0].note("berthd"));
        row.notes.extend(series[1].note("dockerd"));
        self.rows.push(row);
        self.rows.push(Row::new(
            &format!("daemon CPU during: {name}"),
            "ms per rep, mean",
            Better::Lower,
            series[0].cpu_outcome(),
            series[1].cpu_outcome(),
        ));
    }

    fn failed_workload(&mut self, name: &str, e: &anyhow::Error) {
        eprintln!("  workload {name} failed: {e:#}");
        let error = format!("{e:#}");
        self.rows.push(Row::new(
            &format!("{name} (set-up)"),
            "-",
            Better::Lower,
            Outcome::Failed { error: error.clone() },
            Outcome::Failed { error },
        ));
    }

    /// Median of five VmRSS samples, 200 ms apart, per daemon.
    fn rss_samples(&self, d: &Daemon) -> Result<f64> {
        let mut samples = Vec::new();
        for _ in 0..5 {
            samples.push(d.rss_kib()? as f64 / 1024.0);
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(report::Stats::of(&samples).map(|s| s.median).unwrap_or_default())
    }

    fn rss_row(&mut self, name: &str) -> Result<()> {
        let b = self.rss_samples(&self.daemons[0]);
        let d = self.rss_samples(&self.daemons[1]);
        let outcome = |r: Result<f64>| match r {
            Ok(v) => Outcome::from_samples(&[v], None),
            Err(e) => Outcome::Failed { error: format!("{e:#}") },
        };
        self.rows.push(Row::new(name, "MiB", Better::Lower, outcome(b), outcome(d)));
        Ok(())
    }

    /// Removes every container of both daemons (force), untimed.
    fn cleanup_containers(&self) {
        for d in &self.daemons {
            if let Err(e) = self.rt.block_on(remove_all(&d.client())) {
                eprintln!("  cleanup on {}: {e:#}", d.label());
            }
        }
    }
}

/// Runs `f(i)` for i in 0..n, at most `limit` at a time; all results, or
/// the first error (after every task finished).
async fn for_each_concurrently<T, F, Fut>(n: usize, limit: usize, f: F) -> Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let results: Vec<Result<T>> = stream::iter(0..n).map(f).buffer_unordered(limit).collect().await;
    results.into_iter().collect()
}

/// Force-removes every container, 10 at a time.
async fn remove_all(client: &bollard::Docker) -> Result<()> {
    let list = client.list_containers(Some(ListContainersOptions { all: true, ..Default::default() })).await?;
    let ids: Vec<String> = list.into_iter().filter_map(|c| c.id).collect();
    for_each_concurrently(ids.len(), 10, |i| {
        let id = ids[i].clone();
        async move {
            client
                .remove_container(&id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
                .await
                .with_context(|| format!("rm -f {id}"))
        }
    })
    .await?;
    Ok(())
}
