//! Latency under load (issue 12): one extra client's `GET /_ping` and
//! `GET /containers/json`, p50 and p99, on an idle daemon and while 200
//! clients list containers back to back and 50 streams (logs -f, events,
//! stats) run, one of which is never read. The target is a loaded
//! p99 within 2x idle; the rows give both daemons' ratios.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

use crate::api_load::read_response;
use crate::daemons::Daemon;
use crate::report::{Better, Outcome, Row};
use crate::Bench;

/// Clients listing containers back to back, one keep-alive connection each.
const LISTERS: usize = 200;
/// Streaming clients: logs -f, events and stats, in turn.
const STREAMS: usize = 50;
/// How long the load runs before the probe starts.
const RAMP: Duration = Duration::from_secs(3);
const PROBED: [&str; 2] = ["/_ping", "/containers/json"];

/// One daemon's measurements: per probed path, idle and loaded latencies
/// (ms, sorted), plus what the load got done meanwhile.
struct Measured {
    idle: Vec<Vec<f64>>,
    loaded: Vec<Vec<f64>>,
    rss_mib: f64,
    listings: usize,
    load_errors: usize,
}

impl Bench {
    pub(crate) fn load_latency(&mut self) -> Result<()> {
        let probes = if self.plan.quick { 200 } else { 1000 };
        // One loaded probe swings widely on 2 shared cores: each daemon is
        // measured several times, alternating, and the rows give the
        // median (min, max) of the repetitions.
        let reps = if self.plan.quick { 2 } else { 3 };
        let mut results: [Vec<Measured>; 2] = Default::default();
        let mut failed: [Option<String>; 2] = [None, None];
        for rep in 0..reps {
            let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                if failed[i].is_none() {
                    match self.measure(&self.daemons[i], probes) {
                        Ok(m) => results[i].push(m),
                        Err(e) => failed[i] = Some(format!("{e:#}")),
                    }
                }
            }
        }
        let cell = |pick: &dyn Fn(&Measured) -> f64| -> [Outcome; 2] {
            [0, 1].map(|i| match &failed[i] {
                Some(error) => Outcome::Failed { error: error.clone() },
                None => Outcome::from_samples(&results[i].iter().map(pick).collect::<Vec<_>>(), None),
            })
        };
        for (p, path) in PROBED.iter().enumerate() {
            for (label, q) in [("p50", 0.50), ("p99", 0.99)] {
                let [b, d] = cell(&|m| percentile(&m.idle[p], q));
                self.rows.push(Row::new(&format!("GET {path} {label}, idle"), "ms", Better::Lower, b, d));
                let [b, d] = cell(&|m| percentile(&m.loaded[p], q));
                let name = format!("GET {path} {label}, {LISTERS} listing clients + {STREAMS} streams (1 stalled)");
                self.rows.push(Row::new(&name, "ms", Better::Lower, b, d));
                let [b, d] = cell(&|m| percentile(&m.loaded[p], q) / percentile(&m.idle[p], q));
                self.rows.push(Row::new(&format!("GET {path} {label}, loaded / idle (target <= 2)"), "x", Better::Lower, b, d));
            }
        }
        let [b, d] = cell(&|m| m.rss_mib);
        let mut row = Row::new("RSS under the listing + streaming load", "MiB", Better::Lower, b, d);
        for (i, who) in ["berthd", "dockerd"].iter().enumerate() {
            let listings: Vec<String> = results[i].iter().map(|m| m.listings.to_string()).collect();
            let errors: usize = results[i].iter().map(|m| m.load_errors).sum();
            if !listings.is_empty() {
                row.notes.push(format!(
                    "{who}: {} listings answered while probed under load (per repetition), {errors} load connections failed",
                    listings.join(" / ")
                ));
            }
        }
        self.rows.push(row);
        Ok(())
    }

    fn measure(&self, d: &Daemon, probes: usize) -> Result<Measured> {
        let name = format!("bench-load-{}", d.label());
        let _ = d.docker(&["rm", "-f", &name]);
        // Output for the log followers (and the stalled one) to carry.
        d.docker(&["run", "-d", "--name", &name, "busybox", "sh", "-c", "while true; do seq 1 200; sleep 0.1; done"])?;
        let idle = PROBED.iter().map(|path| probe(&d.socket, path, probes)).collect::<Result<Vec<_>>>()?;
        let listings = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let tasks = self.rt.block_on(start_load(&d.socket, &name, &listings, &errors))?;
        std::thread::sleep(RAMP);
        let before = listings.load(Ordering::Relaxed);
        let loaded = PROBED.iter().map(|path| probe(&d.socket, path, probes)).collect::<Result<Vec<_>>>();
        let measured = loaded.and_then(|loaded| {
            let rss_mib = d.rss_kib()? as f64 / 1024.0;
            let listings = listings.load(Ordering::Relaxed) - before;
            Ok(Measured { idle, loaded, rss_mib, listings, load_errors: errors.load(Ordering::Relaxed) })
        });
        for t in tasks {
            t.abort();
        }
        let _ = d.docker(&["rm", "-f", &name]);
        d.ensure_alive()?;
        measured
    }
}

/// `requests` sequential GETs of `path` on one keep-alive connection, from
/// a thread of its own (the load's tasks must not delay the probe's);
/// their latencies in ms, sorted.
fn probe(socket: &Path, path: &str, requests: usize) -> Result<Vec<f64>> {
    let (socket, path) = (socket.to_owned(), path.to_owned());
    std::thread::spawn(move || -> Result<Vec<f64>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let mut stream = UnixStream::connect(&socket).await?;
            let request = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n\r\n");
            let mut buf = Vec::with_capacity(8192);
            let mut times = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                stream.write_all(request.as_bytes()).await?;
                read_response(&mut stream, &mut buf).await.with_context(|| format!("probe GET {path}"))?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            Ok(times)
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the probe thread panicked"))?
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted.get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

/// Start the listers and the streams; returns once every connection is
/// open. Failures after that are counted in `errors`.
async fn start_load(
    socket: &Path,
    container: &str,
    listings: &Arc<AtomicUsize>,
    errors: &Arc<AtomicUsize>,
) -> Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for _ in 0..LISTERS {
        let stream = UnixStream::connect(socket).await.context("a lister's connection")?;
        let (listings, errors) = (listings.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            if lister(stream, &listings).await.is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..STREAMS {
        let path = match i % 3 {
            0 => format!("/containers/{container}/logs?follow=1&stdout=1&stderr=1&tail=10"),
            1 => "/events".to_owned(),
            _ => format!("/containers/{container}/stats?stream=1"),
        };
        let mut stream = UnixStream::connect(socket).await.context("a stream's connection")?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        if i == 0 {
            // The stalled reader: a follower whose bytes nobody reads.
            tasks.push(tokio::spawn(async move {
                let _kept = stream;
                std::future::pending::<()>().await;
            }));
            continue;
        }
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut chunk = vec![0u8; 16384];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(n) if n > 0 => {}
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    Ok(tasks)
}

async fn lister(mut stream: UnixStream, listings: &AtomicUsize) -> Result<()> {
    let request = "GET /containers/json HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n\r\n";
    let mut buf = Vec::with_capacity(8192);
    loop {
        stream.write_all(request.as_bytes()).await?;
        read_response(&mut stream, &mut buf).await?;
        listings.fetch_add(1, Ordering::Relaxed);
    }
}
