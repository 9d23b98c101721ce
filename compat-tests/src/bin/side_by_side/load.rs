//! Latency under load (issue 12): one extra client's `GET /_ping`, inspect
//! of a container and `GET /containers/json`, p50 and p99, on an idle
//! daemon and while 200 clients list containers and 50 streams (logs -f,
//! events, stats) run, one of which is never read. The target is a
//! latency of other requests than the load's within 2x idle; the rows give
//! both daemons' ratios, and the same for the load's own request.
//!
//! The listers run two ways. Back to back (a closed loop): each sends its
//! next request as soon as the answer arrives, so the load grows until the
//! 2 cores are saturated by the daemon and the generator together, and the
//! faster daemon is the one facing more load. A listing probe then queues
//! behind up to 200 requests like its own whatever the daemon does
//! (Little's law: 200 in flight / listings per second); other requests
//! need not, if the daemon serves them ahead of the listings. Paced: each lister sends one
//! request every `PACE` (2,000 listings/s in all), with the same 200
//! connections and streams open; this is the load both daemons face alike.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

use crate::api_load::{get_request, read_response};
use crate::daemons::Daemon;
use crate::report::{Better, Outcome, Row};
use crate::Bench;

/// Clients listing containers back to back, one keep-alive connection each.
const LISTERS: usize = 200;
/// Streaming clients: logs -f, events and stats, in turn.
const STREAMS: usize = 50;
/// How long the load runs before the probe starts.
const RAMP: Duration = Duration::from_secs(3);
/// The interval between a probe's requests.
const PROBE_GAP: Duration = Duration::from_millis(2);
/// A paced lister's interval.
const PACE: Duration = Duration::from_millis(100);

#[derive(Clone, Copy)]
enum Listers {
    BackToBack,
    Paced,
}

impl Listers {
    fn short(self) -> &'static str {
        match self {
            Listers::BackToBack => "back-to-back load",
            Listers::Paced => "paced load",
        }
    }

    fn describe(self) -> String {
        match self {
            Listers::BackToBack => format!("{LISTERS} clients listing back to back + {STREAMS} streams (1 stalled)"),
            Listers::Paced => format!(
                "{LISTERS} clients listing every {} ms + {STREAMS} streams (1 stalled)",
                PACE.as_millis()
            ),
        }
    }
}

/// What the extra client asks: requests other than the load's, which the
/// issue's target is about, and the load's own listing, which queues with
/// it.
struct Probe {
    /// The path as the rows show it; `{id}` is the load's container.
    shown: &'static str,
    other: bool,
}

const PROBES: [Probe; 3] = [
    Probe { shown: "/_ping", other: true },
    Probe { shown: "/containers/{id}/json", other: true },
    Probe { shown: "/containers/json", other: false },
];

impl Probe {
    fn path(&self, container: &str) -> String {
        self.shown.replace("{id}", container)
    }

    fn target(&self) -> &'static str {
        if self.other {
            "target <= 2"
        } else {
            "the load's own request"
        }
    }
}

/// Every probe's latencies, in `PROBES` order.
fn probe_all(socket: &Path, container: &str, requests: usize) -> Result<Vec<Vec<f64>>> {
    PROBES.iter().map(|p| probe(socket, &p.path(container), requests)).collect()
}

/// One daemon's measurements: per probed path, idle and loaded latencies
/// (ms, sorted) under each kind of listers, plus what the loads got done
/// meanwhile.
struct Measured {
    idle: Vec<Vec<f64>>,
    loaded: [Loaded; 2],
}

struct Loaded {
    latencies: Vec<Vec<f64>>,
    rss_mib: f64,
    listings: usize,
    load_errors: usize,
}

const KINDS: [Listers; 2] = [Listers::BackToBack, Listers::Paced];

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
        for (p, probed) in PROBES.iter().enumerate() {
            let path = probed.shown;
            for (label, q) in [("p50", 0.50), ("p99", 0.99)] {
                let [b, d] = cell(&|m| percentile(&m.idle[p], q));
                self.rows.push(Row::new(&format!("GET {path} {label}, idle"), "ms", Better::Lower, b, d));
                for (k, kind) in KINDS.iter().enumerate() {
                    let [b, d] = cell(&|m| percentile(&m.loaded[k].latencies[p], q));
                    let name = format!("GET {path} {label}, {}", kind.describe());
                    self.rows.push(Row::new(&name, "ms", Better::Lower, b, d));
                    let [b, d] = cell(&|m| percentile(&m.loaded[k].latencies[p], q) / percentile(&m.idle[p], q));
                    let name = format!("GET {path} {label}, {} / idle ({})", kind.short(), probed.target());
                    self.rows.push(Row::new(&name, "x", Better::Lower, b, d));
                }
            }
        }
        for (k, kind) in KINDS.iter().enumerate() {
            let [b, d] = cell(&|m| m.loaded[k].rss_mib);
            let mut row = Row::new(&format!("RSS under {}", kind.describe()), "MiB", Better::Lower, b, d);
            for (i, who) in ["berthd", "dockerd"].iter().enumerate() {
                let listings: Vec<String> = results[i].iter().map(|m| m.loaded[k].listings.to_string()).collect();
                let errors: usize = results[i].iter().map(|m| m.loaded[k].load_errors).sum();
                if !listings.is_empty() {
                    row.notes.push(format!(
                        "{who}, {}: {} listings answered while probed (per repetition), {errors} load connections failed",
                        kind.short(),
                        listings.join(" / ")
                    ));
                }
            }
            self.rows.push(row);
        }
        Ok(())
    }

    fn measure(&self, d: &Daemon, probes: usize) -> Result<Measured> {
        let name = format!("bench-load-{}", d.label());
        let _ = d.docker(&["rm", "-f", &name]);
        // Output for the log followers (and the stalled one) to carry.
        d.docker(&["run", "-d", "--name", &name, "busybox", "sh", "-c", "while true; do seq 1 200; sleep 0.1; done"])?;
        let idle = probe_all(&d.socket, &name, probes);
        let measured = idle.and_then(|idle| {
            let [back_to_back, paced] = KINDS.map(|kind| self.loaded(d, &name, kind, probes));
            Ok(Measured { idle, loaded: [back_to_back?, paced?] })
        });
        let _ = d.docker(&["rm", "-f", &name]);
        d.ensure_alive()?;
        measured
    }

    /// The probes' latencies while `kind` listers and the streams run.
    fn loaded(&self, d: &Daemon, container: &str, kind: Listers, probes: usize) -> Result<Loaded> {
        let listings = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let tasks = self.rt.block_on(start_load(&d.socket, container, kind, &listings, &errors))?;
        std::thread::sleep(RAMP);
        let before = listings.load(Ordering::Relaxed);
        let latencies = probe_all(&d.socket, container, probes);
        let loaded = latencies.and_then(|latencies| {
            let rss_mib = d.rss_kib()? as f64 / 1024.0;
            let listings = listings.load(Ordering::Relaxed) - before;
            Ok(Loaded { latencies, rss_mib, listings, load_errors: errors.load(Ordering::Relaxed) })
        });
        for t in tasks {
            t.abort();
        }
        loaded
    }
}

/// `requests` GETs of `path` on one keep-alive connection, one every
/// `PROBE_GAP`, from a thread of its own (the load's tasks must not delay
/// the probe's); their latencies in ms, sorted. Spacing the probes spreads
/// them over the load's ups and downs (back to back, 200 probes would see
/// 30 ms of it) and makes the probe an ordinary client, not more load.
fn probe(socket: &Path, path: &str, requests: usize) -> Result<Vec<f64>> {
    let (socket, path) = (socket.to_owned(), path.to_owned());
    std::thread::spawn(move || -> Result<Vec<f64>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let mut stream = UnixStream::connect(&socket).await?;
            let request = get_request(&path);
            let mut buf = Vec::with_capacity(8192);
            let mut times = Vec::with_capacity(requests);
            let mut ticks = tokio::time::interval(PROBE_GAP);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..requests {
                ticks.tick().await;
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
    kind: Listers,
    listings: &Arc<AtomicUsize>,
    errors: &Arc<AtomicUsize>,
) -> Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for i in 0..LISTERS {
        let stream = UnixStream::connect(socket).await.context("a lister's connection")?;
        let (listings, errors) = (listings.clone(), errors.clone());
        // Paced listers start spread over one interval, not all at once.
        let pace = match kind {
            Listers::BackToBack => None,
            Listers::Paced => Some((PACE * i as u32 / LISTERS as u32, PACE)),
        };
        tasks.push(tokio::spawn(async move {
            if lister(stream, pace, &listings).await.is_err() {
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
        let request = get_request(&path);
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

/// Lists containers on `stream` forever: back to back, or with `pace`
/// (phase, interval) once per interval (a late answer delays the next
/// request rather than bunching the missed ones).
async fn lister(mut stream: UnixStream, pace: Option<(Duration, Duration)>, listings: &AtomicUsize) -> Result<()> {
    let request = get_request("/containers/json");
    let mut buf = Vec::with_capacity(8192);
    let mut ticks = pace.map(|(phase, period)| {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    loop {
        if let Some(ticks) = ticks.as_mut() {
            ticks.tick().await;
        }
        stream.write_all(request.as_bytes()).await?;
        read_response(&mut stream, &mut buf).await?;
        listings.fetch_add(1, Ordering::Relaxed);
    }
}
