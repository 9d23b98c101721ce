//! Health checks: the image's or the user's `HEALTHCHECK`, probed as execs
//! in the running container, with dockerd's defaults, state machine
//! (starting → healthy/unhealthy), last five results and events.

use std::sync::Arc;
use std::time::Duration;

use api_types::container::{ContainerConfig, Health, HealthConfig, HealthcheckResult};
use api_types::exec::ExecCreateRequest;
use tokio::sync::broadcast::error::RecvError;

use super::io::Output;
use super::record::Container;
use super::ContainerService;
use crate::services::ServiceError;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";
/// `docker ps --filter health=` values.
pub const FILTER_VALUES: &[&str] = &[STARTING, HEALTHY, UNHEALTHY, "none"];

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG_ENTRIES: usize = 5;
const MAX_OUTPUT_LEN: usize = 4096;
/// How long a killed probe may take to be reaped before we move on.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// The running monitor of one container, if any.
#[derive(Default)]
pub(super) struct Monitor {
    /// Bumped whenever monitoring starts or stops, so a probe that finishes
    /// after that is ignored.
    generation: u64,
    task: Option<tokio::task::AbortHandle>,
}

/// Nanoseconds, 0 (unset) → `default`.
fn duration_or(nanos: Option<i64>, default: Duration) -> Duration {
    match nanos {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The command a probe runs, or `None` when the container has no check
/// (`NONE`, no test, an unknown test type).
fn probe_command(config: &ContainerConfig) -> Option<Vec<String>> {
    let test = config.healthcheck.as_ref()?.test.as_ref()?;
    let (kind, args) = test.split_first()?;
    match kind.as_str() {
        "CMD" => Some(args.to_vec()),
        "CMD-SHELL" => {
            let mut cmd = match config.shell.as_ref().filter(|s| !s.is_empty()) {
                Some(shell) => shell.clone(),
                None => vec!["/bin/sh".to_string(), "-c".to_string()],
            };
            cmd.extend(args.iter().cloned());
            Some(cmd)
        }
        _ => None,
    }
}

/// dockerd's checks on a create's health check (durations at least 1ms).
pub fn validate(config: Option<&HealthConfig>) -> Result<(), ServiceError> {
    let Some(c) = config else { return Ok(()) };
    let bad = |what: &str, v: Option<i64>| v.is_some_and(|n| n != 0 && n < 1_000_000).then(|| what.to_string());
    if let Some(what) = bad("Interval", c.interval).or_else(|| bad("Timeout", c.timeout)) {
        return Err(ServiceError::InvalidParameter(format!("{what} in Healthcheck cannot be less than 1ms")));
    }
    if c.retries.is_some_and(|r| r < 0) {
        return Err(ServiceError::InvalidParameter("Retries in Healthcheck cannot be negative".into()));
    }
    if let Some(what) = bad("StartPeriod", c.start_period).or_else(|| bad("StartInterval", c.start_interval)) {
        return Err(ServiceError::InvalidParameter(format!("{what} in Healthcheck cannot be less than 1ms")));
    }
    Ok(())
}

/// The user's health check over the image's, field by field, as dockerd
/// merges them.
pub fn merge(user: Option<HealthConfig>, image: Option<&HealthConfig>) -> Option<HealthConfig> {
    let Some(image) = image else { return user };
    let Some(mut user) = user else { return Some(image.clone()) };
    let unset = |v: &Option<i64>| v.is_none_or(|n| n == 0);
    if user.test.as_ref().is_none_or(|t| t.is_empty()) {
        user.test = image.test.clone();
    }
    for (mine, theirs) in [
        (&mut user.interval, image.interval),
        (&mut user.timeout, image.timeout),
        (&mut user.start_period, image.start_period),
        (&mut user.start_interval, image.start_interval),
        (&mut user.retries, image.retries),
    ] {
        if unset(mine) {
            *mine = theirs;
        }
    }
    Some(user)
}

/// Go's `time.Duration` text for whole milliseconds and up (`30s`,
/// `1m30s`, `500ms`), as dockerd's timeout message shows it.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s) = (d.as_secs() / 3600, d.as_secs() / 60 % 60, d.as_secs_f64() % 60.0);
    let secs = format!("{s}").trim_end_matches(".0").to_string() + "s";
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Probe output, cut at 4096 bytes with `...` after it, as dockerd keeps it.
#[derive(Default)]
struct LimitedBuffer {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedBuffer {
    fn write(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT_LEN.saturating_sub(self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        self.truncated |= keep < data.len();
    }

    fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            out.push_str("...");
        }
        out
    }
}

/// A health state after one probe result; returns the new status.
fn apply(health: &mut Health, result: HealthcheckResult, retries: i64, within_start_period: bool) -> String {
    if health.log.len() >= MAX_LOG_ENTRIES {
        let drop = health.log.len() + 1 - MAX_LOG_ENTRIES;
        health.log.drain(..drop);
    }
    let passed = result.exit_code == 0;
    health.log.push(result);
    if passed {
        health.failing_streak = 0;
        health.status = HEALTHY.into();
    } else if !(health.status == STARTING && within_start_period) {
        // Failures during the start period do not count while starting.
        health.failing_streak += 1;
        if health.failing_streak >= retries {
            health.status = UNHEALTHY.into();
        }
    }
    health.status.clone()
}

/// The status `docker ps` and the `health` filter see: an unset status
/// counts as unhealthy, as in dockerd.
pub fn status_of(health: &Health) -> &str {
    if health.status.is_empty() {
        UNHEALTHY
    } else {
        &health.status
    }
}

impl ContainerService {
    fn me(&self) -> Option<Arc<Self>> {
        self.me.upgrade()
    }

    /// A container (re)started: health `starting`, streak reset, probes on.
    pub(super) fn health_start(&self, record: &mut Container) {
        if probe_command(&record.config).is_none() {
            return;
        }
        let health = record.state.health.get_or_insert_with(Health::default);
        health.status = STARTING.into();
        health.failing_streak = 0;
        self.health_resume(record);
    }

    /// Probes on again without resetting the state (unpause, a berthd
    /// restart with the container still running).
    pub(super) fn health_resume(&self, record: &Container) {
        if record.state.health.is_none() || probe_command(&record.config).is_none() {
            return;
        }
        let (Ok(entry), Some(service)) = (self.lookup(&record.id), self.me()) else { return };
        let mut monitor = entry.health.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = monitor.task.take() {
            task.abort();
        }
        monitor.generation += 1;
        let (id, generation) = (record.id.clone(), monitor.generation);
        monitor.task = Some(tokio::spawn(async move { service.health_monitor(id, generation).await }).abort_handle());
    }

    /// A running container found at start-up: probes resume where they
    /// were, or start for a record that predates health checks.
    pub(super) fn health_restore(&self, record: &mut Container) {
        if record.state.health.is_none() {
            self.health_start(record);
        } else {
            self.health_resume(record);
        }
    }

    /// Probes off (exit, pause); as dockerd, a stopped check reads
    /// unhealthy.
    pub(super) fn health_stop(&self, record: &mut Container) {
        let Ok(entry) = self.lookup(&record.id) else { return };
        let mut monitor = entry.health.lock().unwrap_or_else(|e| e.into_inner());
        monitor.generation += 1;
        if let Some(task) = monitor.task.take() {
            task.abort();
            if let Some(health) = record.state.health.as_mut() {
                health.status = UNHEALTHY.into();
            }
        }
    }

    async fn health_monitor(self: Arc<Self>, id: String, generation: u64) {
        loop {
            let Ok(entry) = self.lookup(&id) else { return };
            let (config, started_at, status) = {
                let r = entry.record.lock().await;
                let status = r.state.health.as_ref().map(|h| h.status.clone()).unwrap_or_default();
                (r.config.clone(), r.state.started_at.clone(), status)
            };
            drop(entry);
            let Some(check) = config.healthcheck.clone() else { return };
            let start_period = duration_or(check.start_period, Duration::ZERO);
            let since_start = chrono::DateTime::parse_from_rfc3339(&started_at)
                .ok()
                .and_then(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().ok())
                .unwrap_or_default();
            let interval = if since_start < start_period && status == STARTING {
                duration_or(check.start_interval, DEFAULT_START_INTERVAL)
            } else {
                duration_or(check.interval, DEFAULT_INTERVAL)
            };
            tokio::time::sleep(interval).await;
            let result = self.probe(&id, &config, duration_or(check.timeout, DEFAULT_TIMEOUT)).await;
            if !self.record_probe(&id, generation, result).await {
                return;
            }
        }
    }

    /// Run the check once as an exec, as dockerd's `cmdProbe` does.
    async fn probe(&self, id: &str, config: &ContainerConfig, timeout: Duration) -> HealthcheckResult {
        let start = now();
        let failed = |output: String| HealthcheckResult { start: start.clone(), end: now(), exit_code: -1, output };
        let cmd = probe_command(config).unwrap_or_default();
        if cmd.is_empty() {
            return failed(format!("healthcheck for container {id} has no command"));
        }
        let request = ExecCreateRequest {
            attach_stdout: true,
            attach_stderr: true,
            cmd: Some(cmd),
            user: config.user.clone(),
            working_dir: config.working_dir.clone(),
            ..Default::default()
        };
        let exec_id = match self.exec_create(id, request).await {
            Ok(exec_id) => exec_id,
            Err(e) => return failed(e.to_string()),
        };
        let result = self.run_probe(id, &exec_id, timeout, &start).await;
        self.exec_forget(&exec_id);
        result.unwrap_or_else(|e| failed(e.to_string()))
    }

    async fn run_probe(&self, id: &str, exec_id: &str, timeout: Duration, start: &str) -> Result<HealthcheckResult, ServiceError> {
        let streams = match self.exec_start(exec_id).await? {
            super::ExecStart::Running(streams) => streams,
            super::ExecStart::Failed { error, .. } => return Err(error),
        };
        let mut output = LimitedBuffer::default();
        let mut rx = streams.attach.output;
        let mut exited = streams.exited;
        let finished = tokio::time::timeout(timeout, async {
            loop {
                match rx.recv().await {
                    Ok(Output::Data(_, data)) => output.write(&data),
                    Ok(Output::End) | Err(RecvError::Closed) => break,
                    Err(RecvError::Lagged(_)) => continue,
                }
            }
            let _ = exited.wait_for(|done| *done).await;
        })
        .await;
        if finished.is_err() {
            tracing::debug!(container.id = %id, "health check taking too long");
            self.exec_kill(exec_id).await;
            let _ = tokio::time::timeout(KILL_GRACE, exited.wait_for(|done| *done)).await;
            let out = output.text();
            let limit = go_duration(timeout);
            let message = if out.is_empty() {
                format!("Health check exceeded timeout ({limit})")
            } else {
                format!("Health check exceeded timeout ({limit}): {out}")
            };
            return Ok(HealthcheckResult { start: start.to_string(), end: now(), exit_code: -1, output: message });
        }
        let exit_code = self.exec_inspect(exec_id).await?.exit_code.unwrap_or(-1);
        Ok(HealthcheckResult { start: start.to_string(), end: now(), exit_code, output: output.text() })
    }

    /// Fold a probe's result into the container's health; false when the
    /// monitor has been stopped meanwhile.
    async fn record_probe(&self, id: &str, generation: u64, result: HealthcheckResult) -> bool {
        let Ok(entry) = self.lookup(id) else { return false };
        let mut record = entry.record.lock().await;
        if entry.health.lock().unwrap_or_else(|e| e.into_inner()).generation != generation {
            return false;
        }
        let check = record.config.healthcheck.clone().unwrap_or_default();
        let retries = check.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
        let start_period = duration_or(check.start_period, Duration::ZERO);
        let within_start_period = match (
            chrono::DateTime::parse_from_rfc3339(&result.start),
            chrono::DateTime::parse_from_rfc3339(&record.state.started_at),
        ) {
            (Ok(probe), Ok(started)) => (probe - started).to_std().is_ok_and(|d| d < start_period),
            _ => false,
        };
        let Some(health) = record.state.health.as_mut() else { return false };
        let before = status_of(health).to_string();
        let after = apply(health, result, retries, within_start_period);
        if after != before {
            if let Err(e) = self.save(&record) {
                tracing::warn!(container.id = %id, error = %e, "recording health status");
            }
            self.emit(&record, &format!("health_status: {after}"), &[]);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> HealthcheckResult {
        HealthcheckResult { exit_code: code, ..Default::default() }
    }

    #[test]
    fn starting_to_healthy_to_unhealthy_after_retries() {
        let mut h = Health { status: STARTING.into(), ..Default::default() };
        assert_eq!(apply(&mut h, result(0), 2, false), HEALTHY);
        assert_eq!(apply(&mut h, result(1), 2, false), HEALTHY);
        assert_eq!(h.failing_streak, 1);
        assert_eq!(apply(&mut h, result(1), 2, false), UNHEALTHY);
        assert_eq!(apply(&mut h, result(0), 2, false), HEALTHY);
        assert_eq!(h.failing_streak, 0);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_while_starting() {
        let mut h = Health { status: STARTING.into(), ..Default::default() };
        assert_eq!(apply(&mut h, result(1), 1, true), STARTING);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(apply(&mut h, result(1), 1, false), UNHEALTHY);
    }

    #[test]
    fn log_keeps_the_last_five() {
        let mut h = Health::default();
        for code in 0..7 {
            apply(&mut h, result(code), 3, false);
        }
        let codes: Vec<i64> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, [2, 3, 4, 5, 6]);
    }

    #[test]
    fn output_is_cut_at_4096_bytes() {
        let mut b = LimitedBuffer::default();
        b.write(&[b'a'; 4000]);
        b.write(&[b'b'; 200]);
        let text = b.text();
        assert_eq!(text.len(), 4096 + 3);
        assert!(text.ends_with("bb..."));
    }

    #[test]
    fn probe_commands() {
        let mut c = ContainerConfig::default();
        let check = |test: &[&str]| Some(HealthConfig { test: Some(test.iter().map(|s| s.to_string()).collect()), ..Default::default() });
        c.healthcheck = check(&["CMD-SHELL", "exit 0"]);
        assert_eq!(probe_command(&c).unwrap(), ["/bin/sh", "-c", "exit 0"]);
        c.shell = Some(vec!["/bin/ash".into(), "-e".into(), "-c".into()]);
        assert_eq!(probe_command(&c).unwrap(), ["/bin/ash", "-e", "-c", "exit 0"]);
        c.healthcheck = check(&["CMD", "true", "x"]);
        assert_eq!(probe_command(&c).unwrap(), ["true", "x"]);
        c.healthcheck = check(&["NONE"]);
        assert!(probe_command(&c).is_none());
    }

    #[test]
    fn user_check_over_image_check() {
        let image = HealthConfig { test: Some(vec!["CMD".into(), "a".into()]), interval: Some(5), retries: Some(2), ..Default::default() };
        let user = HealthConfig { interval: Some(9), ..Default::default() };
        let merged = merge(Some(user), Some(&image)).unwrap();
        assert_eq!(merged.test, image.test);
        assert_eq!(merged.interval, Some(9));
        assert_eq!(merged.retries, Some(2));
        assert_eq!(merge(None, Some(&image)), Some(image));
    }

    #[test]
    fn validation_texts() {
        let c = HealthConfig { interval: Some(10), ..Default::default() };
        assert_eq!(validate(Some(&c)).unwrap_err().to_string(), "Interval in Healthcheck cannot be less than 1ms");
        let c = HealthConfig { retries: Some(-1), ..Default::default() };
        assert_eq!(validate(Some(&c)).unwrap_err().to_string(), "Retries in Healthcheck cannot be negative");
        let c = HealthConfig { start_interval: Some(5), ..Default::default() };
        assert_eq!(validate(Some(&c)).unwrap_err().to_string(), "StartInterval in Healthcheck cannot be less than 1ms");
        assert!(validate(Some(&HealthConfig { interval: Some(1_000_000), ..Default::default() })).is_ok());
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
