//! Container workloads: `docker run --rm`, the bollard lifecycle, parallel
//! `run -d`, and listing/inspect with many running containers.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bollard::models::ContainerCreateBody;
use compat_tests::containerd;
use futures_util::StreamExt;

use crate::daemons::{self, Daemon, Kind};
use crate::report::{Better, Floor, Outcome, Row};
use crate::{check_stop, for_each_concurrently, remove_all, Bench};

impl Bench {
    /// 1. `docker run --rm busybox true` through the CLI, and `ctr run --rm`
    /// of the same image on the same containerd as the floor.
    pub(crate) fn run_rm(&mut self, busybox_tar: &Path) -> Result<()> {
        let series = self.alternate("docker run --rm busybox true", self.plan.run_rm, [None, None], |d, p| {
            p.start()?;
            d.docker(&["run", "--rm", "busybox", "true"])?;
            p.stop()
        })?;
        self.push("docker run --rm busybox true (CLI)", "ms", Better::Lower, &series, |ms| ms);

        let ns = CtrNamespace::with_busybox(busybox_tar)?;
        let floor = floor(self.plan.warmup, self.plan.run_rm, "ctr run --rm busybox true (same containerd, no daemon)", |rep| {
            let t0 = Instant::now();
            ns.ctr(&["run", "--rm", "docker.io/library/busybox:latest", &format!("bench-{rep}"), "true"])?;
            Ok(t0.elapsed())
        })?;
        self.floors.push(floor);
        Ok(())
    }

    /// 2. create+start+wait+rm of 50 containers through bollard, 10 at a time.
    pub(crate) fn lifecycle(&mut self) -> Result<()> {
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
    /// 20 parallel `ctr run -d` on the same containerd is the floor.
    pub(crate) fn parallel_run(&mut self, busybox_tar: &Path) -> Result<()> {
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

        let ns = CtrNamespace::with_busybox(busybox_tar)?;
        let workload = "20 parallel ctr run -d busybox sleep 300 (same containerd, no daemon)";
        let floor = floor(self.plan.warmup, self.plan.parallel, workload, |rep| {
            let ids: Vec<String> = (0..N).map(|i| format!("bench-{rep}-{i}")).collect();
            let t0 = Instant::now();
            let results: Vec<Result<String>> = std::thread::scope(|s| {
                let handles: Vec<_> = ids
                    .iter()
                    .map(|id| s.spawn(|| ns.ctr(&["run", "-d", "docker.io/library/busybox:latest", id, "sleep", "300"])))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))).collect()
            });
            let elapsed = t0.elapsed();
            for id in &ids {
                // -f kills the task and waits for it.
                let _ = ns.ctr(&["task", "rm", "-f", id]);
                let _ = ns.ctr(&["containers", "rm", id]);
            }
            results.into_iter().collect::<Result<Vec<_>>>()?;
            Ok(elapsed)
        })?;
        self.floors.push(floor);
        Ok(())
    }

    /// 4. `docker ps`, `GET /containers/json` and `docker inspect` with
    /// N running containers; daemon RSS with them.
    pub(crate) fn listing(&mut self) -> Result<()> {
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
        // Each logged berthd container has a copier process of its own
        // (its logging survives the daemon); dockerd has no such process.
        let total = [0, 1].map(|i| match &skip[i] {
            Some(reason) => Outcome::Skipped { reason: reason.clone() },
            None => {
                let d = &self.daemons[i];
                match (self.rss_samples(d), d.helpers_pss_kib()) {
                    (Ok(rss), Ok(helpers)) => Outcome::from_samples(&[rss + helpers as f64 / 1024.0], None),
                    (Err(e), _) | (_, Err(e)) => Outcome::Failed { error: format!("{e:#}") },
                }
            }
        });
        let [tb, td] = total;
        self.rows.push(Row::new(
            &format!("RSS + per-container log copiers' PSS with {n} running containers"),
            "MiB",
            Better::Lower,
            tb,
            td,
        ));

        let series = self.alternate("docker ps", self.plan.cli, skip.clone(), |d, p| {
            p.start()?;
            d.docker_discard(&["ps"])?;
            p.stop()
        })?;
        self.push(&format!("`docker ps` with {n} running (CLI)"), "ms", Better::Lower, &series, |ms| ms);

        let listed = |_: &Daemon, body: &serde_json::Value| {
            let count = body.as_array().map_or(0, Vec::len);
            ensure!(count == n, "listed {count} containers, expected {n}");
            Ok(())
        };
        let series = self.raw_get("GET /containers/json", skip.clone(), |_| "/v1.41/containers/json".into(), listed)?;
        self.push(&format!("GET /containers/json with {n} running (raw HTTP)"), "ms", Better::Lower, &series, |ms| ms);

        let ids = first_ids.clone();
        let series = self.alternate("docker inspect", self.plan.cli, skip.clone(), |d, p| {
            let id = &ids[usize::from(d.kind == Kind::Dockerd)];
            p.start()?;
            d.docker_discard(&["inspect", id])?;
            p.stop()
        })?;
        self.push(&format!("`docker inspect` of one of {n} (CLI)"), "ms", Better::Lower, &series, |ms| ms);
        let id_of = |d: &Daemon| ids[usize::from(d.kind == Kind::Dockerd)].clone();
        let series = self.raw_get(
            "GET /containers/{id}/json",
            skip.clone(),
            |d| format!("/v1.41/containers/{}/json", id_of(d)),
            |d, body| {
                ensure!(body["Id"].as_str() == Some(id_of(d).as_str()), "inspected {}", body["Id"]);
                Ok(())
            },
        )?;
        self.push(&format!("GET /containers/{{id}}/json of one of {n} (raw HTTP)"), "ms", Better::Lower, &series, |ms| ms);
        self.cli_floor()?;
        self.system_df_with_volumes(n, &skip)?;
        self.restart_with_running(n, &skip)
    }

    /// What the CLI costs before it talks to any daemon: the floor of the
    /// CLI listing rows.
    fn cli_floor(&mut self) -> Result<()> {
        let d = &self.daemons[0];
        let floor = floor(self.plan.warmup, self.plan.cli, "docker --version (the CLI's own start, no daemon)", |_| {
            let t0 = Instant::now();
            daemons::run_checked(&mut d.docker_command(&["--version"]))?;
            Ok(t0.elapsed())
        })?;
        self.floors.push(floor);
        Ok(())
    }

    /// `docker system df` with the running containers and 50 volumes
    /// holding a little data each (the volumes issue's workload).
    fn system_df_with_volumes(&mut self, n: usize, skip: &[Option<String>; 2]) -> Result<()> {
        const VOLUMES: usize = 50;
        let names: Vec<String> = (0..VOLUMES).map(|i| format!("bench-df-{i}")).collect();
        for (i, d) in self.daemons.iter().enumerate() {
            if skip[i].is_none() {
                for name in &names {
                    d.docker(&["volume", "create", name])?;
                }
                let mounts: Vec<String> = names.iter().flat_map(|v| ["-v".to_string(), format!("{v}:/{v}")]).collect();
                let mut args: Vec<&str> = vec!["run", "--rm"];
                args.extend(mounts.iter().map(String::as_str));
                args.extend(["busybox", "sh", "-c", "for d in /bench-df-*; do head -c 65536 /dev/zero > $d/data; done"]);
                d.docker(&args)?;
            }
        }
        let series = self.alternate("docker system df", self.plan.cli, skip.clone(), |d, p| {
            p.start()?;
            d.docker_discard(&["system", "df"])?;
            p.stop()
        })?;
        self.push(&format!("`docker system df` with {n} running and {VOLUMES} volumes (CLI)"), "ms", Better::Lower, &series, |ms| ms);
        let series = self.raw_get("GET /system/df", skip.clone(), |_| "/v1.41/system/df".into(), |_, body| {
            let volumes = body["Volumes"].as_array().map_or(0, Vec::len);
            let containers = body["Containers"].as_array().map_or(0, Vec::len);
            ensure!(volumes >= VOLUMES && containers >= n, "system df counted {volumes} volumes, {containers} containers");
            Ok(())
        })?;
        self.push(&format!("GET /system/df with {n} running and {VOLUMES} volumes (raw HTTP)"), "ms", Better::Lower, &series, |ms| ms);
        for (i, d) in self.daemons.iter().enumerate() {
            if skip[i].is_none() {
                let mut args = vec!["volume", "rm"];
                args.extend(names.iter().map(String::as_str));
                d.docker(&args)?;
            }
        }
        Ok(())
    }

    /// 6. Daemon start-up to the first `/_ping` with `n` running containers
    /// (live-restore on): each daemon is restarted `restarts` times,
    /// alternating, and must list all `n` afterwards.
    fn restart_with_running(&mut self, n: usize, skip: &[Option<String>; 2]) -> Result<()> {
        let mut samples: [Vec<f64>; 2] = Default::default();
        let mut errors: [Option<String>; 2] = Default::default();
        for rep in 0..self.plan.restarts {
            let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                check_stop()?;
                if skip[i].is_some() || errors[i].is_some() {
                    continue;
                }
                let d = &mut self.daemons[i];
                let result = d.restart().and_then(|elapsed| {
                    let listed = d.docker(&["ps", "-q"])?.lines().count();
                    ensure!(listed == n, "{listed} containers running after the restart, expected {n}");
                    Ok(elapsed)
                });
                match result {
                    Ok(elapsed) => samples[i].push(elapsed.as_secs_f64() * 1e3),
                    Err(e) => errors[i] = Some(format!("restart {}: {e:#}", rep + 1)),
                }
            }
        }
        let outcome = |i: usize| match &skip[i] {
            Some(reason) => Outcome::Skipped { reason: reason.clone() },
            None => Outcome::from_samples(&samples[i], errors[i].clone()),
        };
        self.rows.push(Row::new(
            &format!("start-up to first /_ping with {n} running containers (live-restore)"),
            "ms",
            Better::Lower,
            outcome(0),
            outcome(1),
        ));
        Ok(())
    }

}

/// A floor line under the table: `timed(rep)` answers how long one
/// repetition took; the warm-up ones are not kept.
pub(crate) fn floor(warmup: usize, reps: usize, workload: &str, mut timed: impl FnMut(usize) -> Result<Duration>) -> Result<Floor> {
    let mut samples = Vec::new();
    for rep in 0..warmup + reps {
        check_stop()?;
        let elapsed = timed(rep)?;
        if rep >= warmup {
            samples.push(elapsed.as_secs_f64() * 1e3);
        }
    }
    Ok(Floor { workload: workload.into(), unit: "ms".into(), stats: Outcome::from_samples(&samples, None) })
}

/// A containerd namespace for the `ctr` floors, emptied and removed on drop.
pub(crate) struct CtrNamespace(String);

impl CtrNamespace {
    pub(crate) fn empty() -> CtrNamespace {
        CtrNamespace(compat_tests::berthd::unique_name("berth-bench-ctr"))
    }

    fn with_busybox(busybox_tar: &Path) -> Result<CtrNamespace> {
        let ns = CtrNamespace::empty();
        ns.ctr(&["images", "import", &busybox_tar.display().to_string()])?;
        Ok(ns)
    }

    pub(crate) fn ctr(&self, args: &[&str]) -> Result<String> {
        daemons::run_checked(&mut self.command(args))
    }

    /// `ctr` on this namespace, to be run as is or inside a network namespace.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.args(["--address", containerd::SOCKET, "-n", &self.0]).args(args);
        cmd
    }

    /// Removes every image, waiting for containerd to collect their
    /// content and snapshots (so the next repetition starts from nothing).
    pub(crate) fn remove_images(&self) -> Result<()> {
        let names = self.ctr(&["images", "ls", "-q"])?;
        let mut args = vec!["images", "rm", "--sync"];
        args.extend(names.lines().filter(|l| !l.is_empty()));
        if args.len() > 3 {
            self.ctr(&args)?;
        }
        Ok(())
    }
}

impl Drop for CtrNamespace {
    fn drop(&mut self) {
        containerd::remove_namespace(&self.0);
    }
}

pub fn busybox_body(cmd: &[&str]) -> ContainerCreateBody {
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
pub(crate) async fn start_sleeper(client: &bollard::Docker) -> Result<(String, Vec<String>)> {
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
