//! `docker ps`: summaries, filtered and ordered newest first. The common
//! listing (no filters, limit or sizes: what `docker ps`, compose and
//! monitors poll) is rendered once and reused while nothing it shows
//! changed; only the clock-dependent `Status` text is written per request.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use api_types::container::{ContainerSummary, SummaryHostConfig, SummaryNetworkSettings};
use api_types::filters::Filters;

use super::record::{Container, Status};
use super::{health, ContainerService, Entry};
use crate::services::ServiceError;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub filters: Filters,
    /// Fill `SizeRw`/`SizeRootFs`.
    pub size: bool,
}

const FILTERS: &[&str] = &[
    "id", "name", "label", "status", "exited", "ancestor", "before", "since", "volume", "network",
    "health", "publish", "expose", "is-task",
];
const STATUSES: &[&str] = &["created", "restarting", "running", "removing", "paused", "exited", "dead"];

/// The last rendering of the common listing.
#[derive(Default)]
pub(super) struct Cache(tokio::sync::Mutex<Option<Arc<Rendered>>>);

struct Rendered {
    /// The container and network versions it was rendered at.
    version: (u64, u64),
    /// Newest first.
    items: Vec<Item>,
}

/// One summary's JSON around its `Status` string's contents.
struct Item {
    live: bool,
    head: Vec<u8>,
    tail: Vec<u8>,
    clock: Clock,
}

impl ContainerService {
    /// `GET /containers/json` as the JSON body.
    pub async fn list_json(&self, opts: ListOptions) -> Result<Vec<u8>, ServiceError> {
        if !opts.filters.is_empty() || opts.limit.is_some() || opts.size {
            let list = self.list(opts).await?;
            return serde_json::to_vec(&list).map_err(|e| ServiceError::Internal(format!("rendering the container list: {e}")));
        }
        let rendered = self.rendered().await?;
        let now = Utc::now();
        let mut out = Vec::with_capacity(2 + rendered.items.iter().map(|i| i.head.len() + i.tail.len() + 40).sum::<usize>());
        out.push(b'[');
        for item in rendered.items.iter().filter(|i| opts.all || i.live) {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(&item.head);
            // Our own text: letters, digits, spaces, parentheses, colons.
            out.extend_from_slice(item.clock.text(now).as_bytes());
            out.extend_from_slice(&item.tail);
        }
        out.push(b']');
        Ok(out)
    }

    /// The cached rendering, or a new one when a record, the registry or a
    /// network changed since. Concurrent callers share one rendering.
    async fn rendered(&self) -> Result<Arc<Rendered>, ServiceError> {
        let mut cached = self.list_cache.0.lock().await;
        // Read before rendering: a change made during it moves the version
        // past this one, and the next call renders again.
        let version = (self.version.get(), self.networks.version());
        if let Some(rendered) = cached.as_ref().filter(|r| r.version == version) {
            return Ok(rendered.clone());
        }
        let mut items = Vec::new();
        for entry in self.entries() {
            items.push(self.render(&entry).await?);
        }
        items.sort_by(|a, b| b.0.cmp(&a.0));
        let rendered = Arc::new(Rendered { version, items: items.into_iter().map(|(_, item)| item).collect() });
        *cached = Some(rendered.clone());
        Ok(rendered)
    }

    /// One container's summary, split around its `Status`, with its
    /// creation time for the order.
    async fn render(&self, entry: &Entry) -> Result<(String, Item), ServiceError> {
        let record = entry.record.lock().await;
        let shown = self.summary_of(&record).await;
        let failed = |e: serde_json::Error| ServiceError::Internal(format!("rendering the container list: {e}"));
        // Two renderings that differ only in the status text: the first
        // byte where they part is where the text goes.
        let empty = serde_json::to_vec(&ContainerSummary { status: String::new(), ..shown.clone() }).map_err(failed)?;
        let marked = serde_json::to_vec(&ContainerSummary { status: "x".into(), ..shown }).map_err(failed)?;
        let at = empty.iter().zip(&marked).position(|(a, b)| a != b).unwrap_or(empty.len());
        let item = Item {
            live: record.state.status.is_live(),
            head: empty[..at].to_vec(),
            tail: empty[at..].to_vec(),
            clock: Clock::of(&record),
        };
        Ok((record.created.clone(), item))
    }

    /// A record's summary with its ports, mounts and networks.
    async fn summary_of(&self, record: &Container) -> ContainerSummary {
        let mut shown = summary(record);
        shown.ports = self.summary_ports(record).await;
        shown.mounts = self.mount_points(record);
        shown.network_settings.networks = self.summary_networks(record).await;
        shown
    }

    pub async fn list(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>, ServiceError> {
        let f = &opts.filters;
        f.only(FILTERS).map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        if let Some(bad) = f.get("status").iter().find(|s| !STATUSES.contains(&s.as_str())) {
            return Err(ServiceError::InvalidParameter(format!("invalid filter 'status={bad}'")));
        }
        if let Some(bad) = f.get("health").iter().find(|s| !health::FILTER_VALUES.contains(&s.as_str())) {
            return Err(ServiceError::InvalidParameter(format!("Unrecognised filter value for health: {bad}")));
        }
        let mut records = Vec::new();
        for entry in self.entries() {
            records.push(entry.record.lock().await.clone());
        }
        records.sort_by(|a, b| b.created.cmp(&a.created));
        let before = match f.get("before").first() {
            Some(name) => Some(self.lookup(name)?.record.lock().await.created.clone()),
            None => None,
        };
        let since = match f.get("since").first() {
            Some(name) => Some(self.lookup(name)?.record.lock().await.created.clone()),
            None => None,
        };
        // Any filter beyond the default view implies all containers, as dockerd.
        let all = opts.all || f.contains("status") || f.contains("exited");
        let mut out = Vec::new();
        let mut shown_records = Vec::new();
        for record in &records {
            if !all && !record.state.status.is_live() {
                continue;
            }
            if before.as_ref().is_some_and(|b| record.created >= *b) || since.as_ref().is_some_and(|s| record.created <= *s) {
                continue;
            }
            if matches(record, f) {
                out.push(self.summary_of(record).await);
                shown_records.push(record);
            }
            if opts.limit.is_some_and(|l| l > 0 && out.len() >= l) {
                break;
            }
        }
        if opts.size {
            // A container being removed may have lost its snapshot: no sizes.
            for (shown, sizes) in out.iter_mut().zip(self.sizes_of(&shown_records).await) {
                if let Some((rw, rootfs)) = sizes {
                    (shown.size_rw, shown.size_root_fs) = (Some(rw), Some(rootfs));
                }
            }
        }
        Ok(out)
    }
}

fn matches(r: &Container, f: &Filters) -> bool {
    let status = r.state.status.as_str();
    f.any("id", |v| r.id.starts_with(v))
        && f.any("name", |v| r.bare_name().contains(v.trim_start_matches('/')))
        && f.labels_match(&r.config.labels)
        && f.any("status", |v| v == status)
        && f.any("exited", |v| r.state.status == Status::Exited && v.parse::<i64>().is_ok_and(|c| c == r.state.exit_code))
        && f.any("ancestor", |v| {
            r.image_name == v || r.image_id.starts_with(v) || r.image_id.trim_start_matches("sha256:").starts_with(v)
                || r.image_ref == v
        })
        && f.any("network", |v| network_mode(r) == v)
        && f.any("volume", |v| {
            r.host_config.binds.iter().flatten().any(|b| b.split(':').take(2).any(|p| p == v))
                || r.host_config.mounts.iter().flatten().any(|m| m.source == v || m.target == v)
                || r.volumes.iter().any(|m| m.name == v || m.destination == v)
        })
        && f.any("health", |v| v == health_filter_value(r))
        && f.any("expose", |v| r.config.exposed_ports.as_ref().is_some_and(|p| p.contains_key(v) || p.contains_key(&format!("{v}/tcp"))))
        && f.any("publish", |_| false)
        && f.any("is-task", |v| v == "false")
}

/// What `--filter health=` compares with: `none` without a check.
fn health_filter_value(r: &Container) -> &str {
    r.state.health.as_ref().map_or("none", health::status_of)
}

pub fn network_mode(r: &Container) -> &str {
    match r.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        other => other,
    }
}

fn summary(r: &Container) -> ContainerSummary {
    let mut command = r.path.clone();
    for arg in &r.args {
        command.push(' ');
        command.push_str(arg);
    }
    ContainerSummary {
        id: r.id.clone(),
        names: vec![r.name.clone()],
        image: r.image_name.clone(),
        image_id: r.image_id.clone(),
        command,
        created: DateTime::parse_from_rfc3339(&r.created).map(|t| t.timestamp()).unwrap_or(0),
        ports: vec![],
        size_rw: None,
        size_root_fs: None,
        labels: r.config.labels.clone(),
        state: r.state.status.as_str().to_string(),
        status: status_text(r),
        host_config: SummaryHostConfig { network_mode: network_mode(r).to_string() },
        network_settings: SummaryNetworkSettings { networks: Default::default() },
        mounts: vec![],
    }
}

/// What `docker ps`'s STATUS column is made of: the text changes with
/// the clock, so it is written per request.
struct Clock {
    status: Status,
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
    exit_code: i64,
    health: Option<String>,
}

impl Clock {
    fn of(r: &Container) -> Self {
        let parse = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc));
        Self {
            status: r.state.status,
            started: parse(&r.state.started_at),
            finished: parse(&r.state.finished_at),
            exit_code: r.state.exit_code,
            health: r.state.health.as_ref().map(|h| health::status_of(h).to_string()),
        }
    }

    fn text(&self, now: DateTime<Utc>) -> String {
        let since = |t: Option<DateTime<Utc>>| human_duration(t.and_then(|t| (now - t).to_std().ok()).unwrap_or_default());
        match self.status {
            Status::Created => "Created".into(),
            Status::Running => {
                let up = since(self.started);
                match self.health.as_deref() {
                    Some(health::STARTING) => format!("Up {up} (health: starting)"),
                    Some(status) => format!("Up {up} ({status})"),
                    None => format!("Up {up}"),
                }
            }
            Status::Paused => format!("Up {} (Paused)", since(self.started)),
            Status::Restarting => format!("Restarting ({}) {} ago", self.exit_code, since(self.finished)),
            Status::Removing => "Removal In Progress".into(),
            Status::Exited => format!("Exited ({}) {} ago", self.exit_code, since(self.finished)),
            Status::Dead => "Dead".into(),
        }
    }
}

/// `docker ps`'s STATUS column.
pub fn status_text(r: &Container) -> String {
    Clock::of(r).text(Utc::now())
}

/// Go's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    match hours {
        1 => "About an hour".into(),
        h if h < 48 => format!("{h} hours"),
        h if h < 24 * 7 * 2 => format!("{} days", h / 24),
        h if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        h if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", (d.as_secs_f64() / 3600.0 / 24.0 / 365.0) as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_millis(200)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(59)), "59 seconds");
        assert_eq!(human_duration(Duration::from_secs(61)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3600)), "About an hour");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }
}
