//! The side-by-side benchmark (issue 8): berthd against Debian's dockerd on
//! the same containerd, one run, same workloads, alternating daemons.
//!
//! Run it with `./scripts/bench.sh` (installs docker.io, builds release
//! binaries). `--quick` runs few repetitions, to check the bench itself.
//! Writes the table to stdout, `target/bench/side_by_side.json` and
//! `target/bench/side_by_side.png`. Never part of the test suite.

mod chart;
mod daemons;
mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use compat_tests::containerd;
use compat_tests::images::{BuiltImage, BusyboxImage};
use compat_tests::registry::Registry;
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
    warmup: usize,
    run_rm: usize,
    lifecycle: usize,
    parallel: usize,
    listing: usize,
    list_api: usize,
    load_save: usize,
    pull: usize,
    running: usize,
    layers: usize,
    layer_mib: usize,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            quick: false,
            warmup: 2,
            run_rm: 30,
            lifecycle: 7,
            parallel: 7,
            listing: 30,
            list_api: 60,
            load_save: 7,
            pull: 7,
            running: 100,
            layers: 3,
            layer_mib: 20,
        }
    }

    fn quick() -> Plan {
        Plan {
            quick: true,
            warmup: 1,
            run_rm: 5,
            lifecycle: 2,
            parallel: 2,
            listing: 5,
            list_api: 10,
            load_save: 2,
            pull: 2,
            running: 100,
            layers: 3,
            layer_mib: 10,
        }
    }
}

fn main() -> ExitCode {
    let mut plan = Plan::full();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => plan = Plan::quick(),
            "-h" | "--help" => {
                println!(
                    "usage: side_by_side [--quick]\n\
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

    let workloads: [(&str, fn(&mut Bench, &Path) -> Result<()>); 4] = [
        ("run --rm", |b, tar| b.run_rm(tar)),
        ("lifecycle", |b, _| b.lifecycle()),
        ("parallel run -d", |b, _| b.parallel_run()),
        ("listing with running containers", |b, _| b.listing()),
    ];
    for (name, workload) in workloads {
        check_stop()?;
        eprintln!("== {name}");
        if let Err(e) = workload(&mut bench, &busybox_tar) {
            check_stop()?;
            bench.failed_workload(name, &e);
        }
        bench.cleanup_containers();
    }
    check_stop()?;
    eprintln!("== images");
    if let Err(e) = bench.images(&multi, &multi_tar, &pulled) {
        check_stop()?;
        bench.failed_workload("images", &e);
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
        mode: if bench.plan.quick { "quick".into() } else { "full".into() },
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
    let json_path = out_dir.join("side_by_side.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    let png_path = out_dir.join("side_by_side.png");
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

    /// 1. `docker run --rm busybox true` through the CLI, and `ctr run --rm`
    /// of the same image on the same containerd as the floor.
    fn run_rm(&mut self, busybox_tar: &Path) -> Result<()> {
        let series = self.alternate("docker run --rm busybox true", self.plan.run_rm, [None, None], |d, p| {
            p.start()?;
            d.docker(&["run", "--rm", "busybox", "true"])?;
            p.stop()
        })?;
        self.push("docker run --rm busybox true (CLI)", "ms", Better::Lower, &series, |ms| ms);

        let ns = CtrNamespace(compat_tests::berthd::unique_name("berth-bench-ctr"));
        let ctr = |args: &[&str]| {
            daemons::run_checked(Command::new("ctr").args(["--address", containerd::SOCKET, "-n", &ns.0]).args(args))
        };
        ctr(&["images", "import", &busybox_tar.display().to_string()])?;
        let mut samples = Vec::new();
        for rep in 0..self.plan.warmup + self.plan.run_rm {
            check_stop()?;
            let id = format!("bench-{rep}");
            let t0 = Instant::now();
            ctr(&["run", "--rm", "docker.io/library/busybox:latest", &id, "true"])?;
            if rep >= self.plan.warmup {
                samples.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        self.floors.push(Floor {
            workload: "ctr run --rm busybox true (same containerd, no daemon)".into(),
            unit: "ms".into(),
            stats: Outcome::from_samples(&samples, None),
        });
        Ok(())
    }

    /// 2. create+start+wait+rm of 50 containers through bollard, 10 at a time.
    fn lifecycle(&mut self) -> Result<()> {
        const N: usize = 50;
        let rt = &self.rt;
        let series = self.alternate("lifecycle x50", self.plan.lifecycle, [None, None], |d, p| {
            let client = d.client();
            p.start()?;
            rt.block_on(for_each_concurrently(N, 10, |_| one_lifecycle(&client)))?;
            p.stop()
        })?;
        self.push(
            "create+start+wait+rm x50, bollard, 10 at a time",
            "containers/s",
            Better::Higher,
            &series,
            |ms| N as f64 / (ms / 1e3),
        );
        Ok(())
    }

    /// 3. 20 parallel `docker run -d busybox sleep 300`, then removal (untimed).
    fn parallel_run(&mut self) -> Result<()> {
        const N: usize = 20;
        let rt = &self.rt;
        let series = self.alternate("20 parallel run -d", self.plan.parallel, [None, None], |d, p| {
            p.start()?;
            let results: Vec<Result<String>> = std::thread::scope(|s| {
                let handles: Vec<_> =
                    (0..N).map(|_| s.spawn(|| d.docker(&["run", "-d", "busybox", "sleep", "300"]))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))).collect()
            });
            p.stop()?;
            rt.block_on(remove_all(&d.client()))?;
            let failed: Vec<String> = results.into_iter().filter_map(Result::err).map(|e| format!("{e:#}")).collect();
            ensure!(failed.is_empty(), "{} of {N} runs failed, first: {}", failed.len(), failed[0]);
            Ok(())
        })?;
        self.push("20 parallel `docker run -d busybox sleep 300` (CLI)", "ms", Better::Lower, &series, |ms| ms);
        Ok(())
    }

    /// 4. `docker ps`, `GET /containers/json` and `docker inspect` with
    /// N running containers; daemon RSS with them.
    fn listing(&mut self) -> Result<()> {
        let n = self.plan.running;
        let mut start_ms = Vec::new();
        let mut first_ids = Vec::new();
        let mut start_notes = Vec::new();
        for d in &self.daemons {
            check_stop()?;
            let client = d.client();
            let t0 = Instant::now();
            let ids = self.rt.block_on(for_each_concurrently(n, 10, |_| start_sleeper(&client)));
            start_ms.push(match ids {
                Ok(ids) => {
                    let failures: Vec<&String> = ids.iter().flat_map(|(_, f)| f).collect();
                    if let Some(first) = failures.first() {
                        start_notes.push(format!(
                            "{}: {} create/start attempts failed and were retried; first: {first}",
                            d.label(),
                            failures.len()
                        ));
                    }
                    let ids: Vec<String> = ids.into_iter().map(|(id, _)| id).collect();
                    first_ids.push(ids[0].clone());
                    Ok(t0.elapsed().as_secs_f64() * 1e3)
                }
                Err(e) => {
                    first_ids.push(String::new());
                    Err(e)
                }
            });
        }
        let outcome = |r: &Result<f64>| match r {
            Ok(v) => Outcome::from_samples(&[*v], None),
            Err(e) => Outcome::Failed { error: format!("{e:#}") },
        };
        let mut row = Row::new(
            &format!("start {n} `sleep 300` containers, bollard, 10 at a time (one pass)"),
            "ms",
            Better::Lower,
            outcome(&start_ms[0]),
            outcome(&start_ms[1]),
        );
        row.notes = start_notes;
        self.rows.push(row);
        let skip: [Option<String>; 2] = [0, 1].map(|i| {
            start_ms[i].as_ref().err().map(|e| format!("could not start {n} containers: {e:#}"))
        });
        if skip.iter().all(Option::is_some) {
            bail!("neither daemon started {n} containers");
        }
        // Sanity: `docker ps` must list all of them.
        for (i, d) in self.daemons.iter().enumerate() {
            if skip[i].is_none() {
                let listed = d.docker(&["ps", "-q"])?.lines().count();
                if listed != n {
                    eprintln!("  NOTE: docker ps on {} lists {listed} containers, expected {n}", d.label());
                }
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        let rss = [0, 1].map(|i| match &skip[i] {
            Some(reason) => Outcome::Skipped { reason: reason.clone() },
            None => match self.rss_samples(&self.daemons[i]) {
                Ok(v) => Outcome::from_samples(&[v], None),
                Err(e) => Outcome::Failed { error: format!("{e:#}") },
            },
        });
        let [rb, rd] = rss;
        self.rows.push(Row::new(&format!("RSS with {n} running containers"), "MiB", Better::Lower, rb, rd));

        let series = self.alternate("docker ps", self.plan.listing, skip.clone(), |d, p| {
            p.start()?;
            d.docker_discard(&["ps"])?;
            p.stop()
        })?;
        self.push(&format!("`docker ps` with {n} running (CLI)"), "ms", Better::Lower, &series, |ms| ms);

        let series = self.alternate("GET /containers/json", self.plan.list_api, skip.clone(), |d, p| {
            p.start()?;
            let resp = compat_tests::http::unix_request(&d.socket, "GET", "/v1.41/containers/json", &[], &[])?;
            p.stop()?;
            ensure!(resp.status == 200, "status {}: {}", resp.status, resp.text());
            let count = resp.json().as_array().map_or(0, Vec::len);
            ensure!(count == n, "listed {count} containers, expected {n}");
            Ok(())
        })?;
        self.push(&format!("GET /containers/json with {n} running (raw HTTP)"), "ms", Better::Lower, &series, |ms| ms);

        let ids = first_ids.clone();
        let series = self.alternate("docker inspect", self.plan.listing, skip, |d, p| {
            let id = &ids[usize::from(d.kind == Kind::Dockerd)];
            p.start()?;
            d.docker_discard(&["inspect", id])?;
            p.stop()
        })?;
        self.push(&format!("`docker inspect` of one of {n} (CLI)"), "ms", Better::Lower, &series, |ms| ms);
        Ok(())
    }

    /// 5. load, save, `docker images` with 100 tags, pull from a local registry.
    fn images(&mut self, multi: &Arc<BuiltImage>, multi_tar: &Path, pulled: &Arc<BuiltImage>) -> Result<()> {
        let reference = multi.reference().to_owned();
        let size = format!("{} x {} MiB layers", self.plan.layers, self.plan.layer_mib);
        let r = reference.clone();
        let series = self.alternate("docker load", self.plan.load_save, [None, None], |d, p| {
            p.start()?;
            d.docker_stdin_file(&["load"], multi_tar)?;
            p.stop()?;
            d.docker(&["rmi", &r])?;
            Ok(())
        })?;
        self.push(&format!("`docker load` busybox + {size}"), "ms", Better::Lower, &series, |ms| ms);

        let mut skip: [Option<String>; 2] = [None, None];
        for (i, d) in self.daemons.iter().enumerate() {
            if let Err(e) = d.docker_stdin_file(&["load"], multi_tar) {
                skip[i] = Some(format!("could not load the image: {e:#}"));
            }
        }
        let r = reference.clone();
        let series = self.alternate("docker save", self.plan.load_save, skip, |d, p| {
            p.start()?;
            d.docker_discard(&["save", &r])?;
            p.stop()
        })?;
        self.push(&format!("`docker save` busybox + {size} to a pipe"), "ms", Better::Lower, &series, |ms| ms);

        // `docker images` with 100 tags of busybox.
        for d in &self.daemons {
            for t in 0..100 {
                let path = format!("/v1.41/images/busybox:latest/tag?repo=bench/tag&tag=t{t}");
                let resp = compat_tests::http::unix_request(&d.socket, "POST", &path, &[], &[])?;
                ensure!(resp.status == 201, "tagging on {}: {} {}", d.label(), resp.status, resp.text());
            }
            let listed = d.docker(&["images", "-q", "--no-trunc"])?.lines().count();
            let tags = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])?.lines().count();
            if tags < 100 {
                eprintln!("  NOTE: docker images on {} lists {tags} rows ({listed} with -q), expected > 100", d.label());
            }
        }
        let series = self.alternate("docker images", self.plan.listing, [None, None], |d, p| {
            p.start()?;
            d.docker_discard(&["images"])?;
            p.stop()
        })?;
        self.push("`docker images` with 100+ tags (CLI)", "ms", Better::Lower, &series, |ms| ms);

        self.pull(pulled, &size)
    }

    /// Pull from a local docker-registry started inside each daemon's
    /// network namespace (127.0.0.1 there), pushed with the same image.
    fn pull(&mut self, image: &Arc<BuiltImage>, size: &str) -> Result<()> {
        let mut registries = Vec::new();
        let mut refs = Vec::new();
        let mut skip: [Option<String>; 2] = [None, None];
        for (i, d) in self.daemons.iter().enumerate() {
            let image = Arc::clone(image);
            let registry = daemons::in_netns(&d.netns_path(), move || {
                let registry = Registry::start()?;
                registry.push_oci(&image, "bench/pulled", "1")?;
                Ok(registry)
            })?;
            let reference = registry.reference("bench/pulled", "1");
            // The pull endpoint may not be served yet: say so, don't hide it.
            let (repo, tag) = reference.rsplit_once(':').context("reference without tag")?;
            let path = format!("/v1.41/images/create?fromImage={repo}&tag={tag}");
            let resp = compat_tests::http::unix_request(&d.socket, "POST", &path, &[], &[])?;
            if resp.status == 501 {
                let reason = format!("POST /images/create answered 501: {}", resp.text().trim());
                eprintln!("  pull: {} skipped: {reason}", d.label());
                skip[i] = Some(reason);
            } else if resp.status != 200 || resp.text().contains("\"error") {
                skip[i] = None;
                eprintln!("  pull probe on {}: {} {}", d.label(), resp.status, resp.text().trim());
            } else {
                // The probe pulled it; start each repetition from nothing.
                let _ = d.docker(&["rmi", &reference]);
            }
            registries.push(registry);
            refs.push(reference);
        }
        let series = self.alternate("docker pull", self.plan.pull, skip, |d, p| {
            let reference = &refs[usize::from(d.kind == Kind::Dockerd)];
            p.start()?;
            d.docker(&["pull", "-q", reference])?;
            p.stop()?;
            d.docker(&["rmi", reference])?;
            Ok(())
        })?;
        self.push(&format!("`docker pull` busybox + {size}, local registry"), "ms", Better::Lower, &series, |ms| ms);
        drop(registries);
        Ok(())
    }
}

/// A containerd namespace for the `ctr run` floor, emptied and removed on drop.
struct CtrNamespace(String);

impl Drop for CtrNamespace {
    fn drop(&mut self) {
        containerd::remove_namespace(&self.0);
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

fn busybox_body(cmd: &[&str]) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some("busybox".into()),
        cmd: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
        ..Default::default()
    }
}

async fn one_lifecycle(client: &bollard::Docker) -> Result<()> {
    let id = client.create_container(None, busybox_body(&["true"])).await.context("create")?.id;
    client.start_container(&id, None).await.with_context(|| format!("start {id}"))?;
    let mut wait = client.wait_container(&id, None);
    while let Some(status) = wait.next().await {
        let status = status.with_context(|| format!("wait {id}"))?;
        ensure!(status.status_code == 0, "container exited {}", status.status_code);
    }
    client.remove_container(&id, None).await.with_context(|| format!("rm {id}"))?;
    Ok(())
}

/// Creates and starts one `sleep 300`, retrying up to 3 times: the
/// listing workload needs all N running; the failures are reported.
async fn start_sleeper(client: &bollard::Docker) -> Result<(String, Vec<String>)> {
    let mut failures = Vec::new();
    loop {
        let attempt = async {
            let id = client.create_container(None, busybox_body(&["sleep", "300"])).await?.id;
            client.start_container(&id, None).await.with_context(|| format!("starting {id}"))?;
            anyhow::Ok(id)
        };
        match attempt.await {
            Ok(id) => return Ok((id, failures)),
            Err(e) if failures.len() < 3 => failures.push(format!("{e:#}")),
            Err(e) => return Err(e.context(format!("after {} retries", failures.len()))),
        }
    }
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
