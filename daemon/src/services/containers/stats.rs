//! `docker stats`: samples of a container's cgroup and network counters in
//! dockerd's shape, one a second when streaming.
//!
//! dockerd answers `stream=false` only after two samples a second apart.
//! Each container keeps its latest sample instead, so a later answer takes
//! its `precpu_stats` from there at once; only the first needs a short wait.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use api_types::stats::{
    CpuStats, CpuUsage, MemoryStats, NetworkStats, PidsStats, StatsResponse, ThrottlingData, ZERO_TIME,
};
use futures_util::Stream;

use super::list::network_mode;
use super::record::Status;
use super::{ContainerService, Entry};
use crate::backends::cgroups::{self, CgroupMetrics};
use crate::backends::host;
use crate::services::ServiceError;

/// How often a stream samples, as dockerd's collector.
const INTERVAL: Duration = Duration::from_secs(1);
/// A kept sample serves as the previous one within this window: younger
/// ones measure too short a span, older ones too long a past.
const PREVIOUS_MIN_AGE: Duration = Duration::from_millis(100);
const PREVIOUS_MAX_AGE: Duration = Duration::from_secs(60);
/// The span measured when no kept sample fits.
const FIRST_SPAN: Duration = Duration::from_millis(500);
/// A sample this young is handed to other clients as is: several streams
/// of one container (several `docker stats`, compose, monitoring) share
/// one read of the cgroup a second, as dockerd's collector does.
const SHARED_AGE: Duration = Duration::from_millis(500);

/// A container's latest answer in full (shared, and the next one's
/// previous), and the sample before it.
#[derive(Default)]
pub(super) struct Kept {
    previous: Option<LastSample>,
    latest: Option<(Instant, StatsResponse)>,
}

/// A sample's time and CPU counters.
#[derive(Clone)]
struct LastSample {
    taken: Instant,
    read: String,
    cpu: CpuStats,
}

impl LastSample {
    fn of(taken: Instant, sample: &StatsResponse) -> Self {
        Self { taken, read: sample.read.clone(), cpu: sample.cpu_stats.clone() }
    }
}

pub struct StatsOptions {
    pub stream: bool,
    pub one_shot: bool,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn machine_memory() -> u64 {
    static MEM: OnceLock<u64> = OnceLock::new();
    *MEM.get_or_init(|| host::mem_total().unwrap_or(0))
}

/// The wire shape of one sample.
fn response(
    id: &str,
    name: &str,
    m: CgroupMetrics,
    system: Option<(u64, u64)>,
    networks: Option<BTreeMap<String, NetworkStats>>,
) -> StatsResponse {
    let (system_cpu_usage, online_cpus) = system.unwrap_or_default();
    let memory_limit = match machine_memory() {
        host if host > 0 && m.memory_limit > host => host,
        _ => m.memory_limit,
    };
    StatsResponse {
        read: now(),
        pids_stats: PidsStats { current: m.pids_current, limit: m.pids_limit },
        blkio_stats: m.blkio,
        cpu_stats: CpuStats {
            cpu_usage: CpuUsage {
                total_usage: m.cpu_total_ns,
                percpu_usage: m.cpu_percpu_ns,
                usage_in_kernelmode: m.cpu_kernel_ns,
                usage_in_usermode: m.cpu_user_ns,
            },
            system_cpu_usage,
            online_cpus,
            throttling_data: ThrottlingData {
                periods: m.periods,
                throttled_periods: m.throttled_periods,
                throttled_time: m.throttled_ns,
            },
        },
        memory_stats: MemoryStats {
            usage: m.memory_usage,
            max_usage: m.memory_max_usage,
            stats: m.memory_stats,
            failcnt: m.memory_failcnt,
            limit: memory_limit,
        },
        networks: networks.filter(|n| !n.is_empty()),
        ..StatsResponse::empty(id, name)
    }
}

impl ContainerService {
    /// The container's stats: one answer, or one a second until the client
    /// goes away.
    pub async fn stats(
        self: &Arc<Self>,
        name: &str,
        opts: StatsOptions,
    ) -> Result<impl Stream<Item = StatsResponse> + Send + 'static, ServiceError> {
        let entry = self.lookup(name)?;
        let service = self.clone();
        let first = if opts.stream {
            None
        } else {
            let mut sample = service.sample(&entry).await;
            if !opts.one_shot && sample.read != ZERO_TIME {
                sample = service.with_previous(&entry, sample).await;
            }
            Some(sample)
        };
        let state = (service, entry, first, None::<LastSample>, false);
        Ok(futures_util::stream::unfold(state, move |(service, entry, first, previous, started)| async move {
            if let Some(sample) = first {
                return Some((sample, (service, entry, None, None, true)));
            }
            if started && !opts.stream {
                return None;
            }
            if started {
                tokio::time::sleep(INTERVAL).await;
            }
            let mut sample = service.sample(&entry).await;
            let previous = if started { previous } else { kept(&entry) };
            if let Some(p) = previous.filter(|_| sample.read != ZERO_TIME) {
                sample.preread = p.read;
                sample.precpu_stats = p.cpu;
            }
            let next = (sample.read != ZERO_TIME)
                .then(|| LastSample::of(Instant::now(), &sample));
            Some((sample, (service, entry, None, next, true)))
        }))
    }

    /// Fill `precpu_stats` from the kept sample, or from a second sample a
    /// short span later when none fits.
    async fn with_previous(&self, entry: &Entry, sample: StatsResponse) -> StatsResponse {
        let (previous, mut sample) = match kept(entry) {
            Some(previous) => (previous, sample),
            None => {
                tokio::time::sleep(FIRST_SPAN).await;
                let previous = LastSample::of(Instant::now(), &sample);
                (previous, self.sample(entry).await)
            }
        };
        if sample.read != ZERO_TIME {
            sample.preread = previous.read;
            sample.precpu_stats = previous.cpu;
        }
        sample
    }

    /// One sample now; the empty answer when the container is not running.
    /// A running container's sample is kept as its latest.
    async fn sample(&self, entry: &Entry) -> StatsResponse {
        let (id, name, status, pid, own_netns) = {
            let r = entry.record.lock().await;
            (r.id.clone(), r.name.clone(), r.state.status, r.state.pid, network_mode(&r) != "host")
        };
        if !matches!(status, Status::Running | Status::Paused) || pid == 0 {
            return StatsResponse::empty(&id, &name);
        }
        if let Some(shared) = shared_sample(entry) {
            return shared;
        }
        let read = tokio::task::spawn_blocking(move || {
            let metrics = cgroups::metrics(pid)?;
            let system = cgroups::system_cpu();
            let networks = if own_netns { cgroups::interfaces(pid) } else { None };
            Some((metrics, system, networks))
        })
        .await
        .ok()
        .flatten();
        let Some((metrics, system, networks)) = read else {
            return StatsResponse::empty(&id, &name);
        };
        let sample = response(&id, &name, metrics, system, networks);
        // The sample a later request measures from; the one it replaces
        // is what this request measures from (see `kept`).
        let mut kept = entry.stats.lock().unwrap_or_else(|e| e.into_inner());
        kept.previous = kept.latest.take().map(|(taken, latest)| LastSample::of(taken, &latest));
        kept.latest = Some((Instant::now(), sample.clone()));
        sample
    }
}

/// The latest sample, when it is young enough to share (see `SHARED_AGE`).
fn shared_sample(entry: &Entry) -> Option<StatsResponse> {
    let kept = entry.stats.lock().unwrap_or_else(|e| e.into_inner());
    let (taken, sample) = kept.latest.as_ref()?;
    (taken.elapsed() < SHARED_AGE).then(|| sample.clone())
}

/// The sample before the one just taken, if its age makes it a fair
/// starting point for CPU usage.
fn kept(entry: &Entry) -> Option<LastSample> {
    let previous = entry.stats.lock().unwrap_or_else(|e| e.into_inner()).previous.clone()?;
    fits(&previous).then_some(previous)
}

fn fits(previous: &LastSample) -> bool {
    let age = previous.taken.elapsed();
    (PREVIOUS_MIN_AGE..=PREVIOUS_MAX_AGE).contains(&age)
}
