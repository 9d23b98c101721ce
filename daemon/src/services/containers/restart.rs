//! Restart policies: dockerd's restart manager. After an exit the policy
//! decides; a restart waits a backoff that starts at 100 ms, doubles up to
//! one minute and resets when the container ran for 10 s or more.

use std::sync::Arc;
use std::time::Duration;

use api_types::container::RestartPolicy;

use super::record::{Container, Status};
use super::{ContainerService, Entry};

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// One container's backoff and the generation of its pending restart; a
/// bump of the generation cancels a restart that is waiting.
#[derive(Debug, Default)]
pub struct Backoff {
    delay: Duration,
    generation: u64,
}

impl Backoff {
    /// The wait before the next restart, after a run of `ran_for`.
    fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() { BACKOFF_START } else { (self.delay * 2).min(BACKOFF_MAX) };
        self.delay
    }

    /// Forget the backoff and cancel any pending restart (start, stop, rm).
    pub fn reset(&mut self) {
        self.delay = Duration::ZERO;
        self.generation += 1;
    }
}

/// dockerd's `RestartManager.ShouldRestart`, without the timing.
pub fn should_restart(policy: &RestartPolicy, restart_count: i64, exit_code: i64, manually_stopped: bool) -> bool {
    match policy.name.as_str() {
        "always" => !manually_stopped,
        "unless-stopped" => !manually_stopped,
        "on-failure" => {
            let max = policy.maximum_retry_count;
            !manually_stopped && exit_code != 0 && (max == 0 || restart_count < max)
        }
        _ => false,
    }
}

/// Whether a stopped container is started when the daemon starts: dockerd
/// starts `always` containers even after an explicit stop.
fn restart_on_boot(record: &Container) -> bool {
    let policy = &record.host_config.restart_policy;
    record.state.status == Status::Exited
        && match policy.name.as_str() {
            "always" => true,
            _ => should_restart(policy, record.restart_count, record.state.exit_code, record.manually_stopped),
        }
}

fn ran_for(record: &Container) -> Duration {
    let started = chrono::DateTime::parse_from_rfc3339(&record.state.started_at).ok();
    started
        .and_then(|s| (chrono::Utc::now() - s.with_timezone(&chrono::Utc)).to_std().ok())
        .unwrap_or_default()
}

impl ContainerService {
    /// Called with the record locked right after an exit was recorded: when
    /// the policy says so, mark the container restarting and return the wait
    /// and the generation to restart under.
    pub(super) fn plan_restart(&self, entry: &Entry, record: &mut Container) -> Option<(Duration, u64)> {
        if self.is_shutting_down()
            || !should_restart(
                &record.host_config.restart_policy,
                record.restart_count,
                record.state.exit_code,
                record.manually_stopped,
            )
        {
            return None;
        }
        let mut backoff = entry.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let delay = backoff.next(ran_for(record));
        record.restart_count += 1;
        record.state.status = Status::Restarting;
        Some((delay, backoff.generation))
    }

    /// Start the container again after `delay`, unless something (stop,
    /// start, rm) cancelled the restart meanwhile.
    pub(super) fn schedule_restart(self: &Arc<Self>, entry: Arc<Entry>, delay: Duration, generation: u64) {
        let service = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut record = entry.record.lock().await;
            let current = entry.backoff.lock().unwrap_or_else(|e| e.into_inner()).generation;
            if current != generation || record.state.status != Status::Restarting || service.is_shutting_down() {
                return;
            }
            if let Err(e) = service.run_task(&entry, &mut record).await {
                tracing::warn!(container.id = %record.id, error = %e, "restarting container failed");
                record.state.status = Status::Exited;
                let _ = service.save(&record);
                entry.notify();
            }
        });
    }

    /// Stop a pending restart: the container is exited from now on.
    /// Returns false when the container was not restarting.
    pub(super) fn cancel_restart(&self, entry: &Entry, record: &mut Container) -> bool {
        entry.backoff.lock().unwrap_or_else(|e| e.into_inner()).reset();
        if record.state.status != Status::Restarting {
            return false;
        }
        record.state.status = Status::Exited;
        record.manually_stopped = true;
        if let Err(e) = self.save(record) {
            tracing::warn!(container.id = %record.id, error = %e, "recording a cancelled restart");
        }
        entry.notify();
        true
    }

    /// At start-up: start the containers their restart policy wants running,
    /// and resume restarts that were waiting when the daemon went down.
    pub(super) async fn start_on_boot(self: &Arc<Self>) {
        let starts = self.entries().into_iter().map(|entry| async move {
            let mut record = entry.record.lock().await;
            let waiting = record.state.status == Status::Restarting;
            if !waiting && !restart_on_boot(&record) {
                return;
            }
            record.manually_stopped = false;
            if let Err(e) = self.run_task(&entry, &mut record).await {
                tracing::warn!(container.id = %record.id, error = %e, "starting container at daemon start");
                if waiting {
                    record.state.status = Status::Exited;
                    let _ = self.save(&record);
                }
            }
        });
        // All at once, as dockerd does; start-up waits for them.
        futures_util::future::join_all(starts).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy { name: name.into(), maximum_retry_count: max }
    }

    #[test]
    fn policies_follow_dockerd() {
        assert!(!should_restart(&policy("", 0), 0, 1, false));
        assert!(!should_restart(&policy("no", 0), 0, 1, false));
        assert!(should_restart(&policy("always", 0), 5, 0, false));
        assert!(!should_restart(&policy("always", 0), 0, 0, true));
        assert!(!should_restart(&policy("unless-stopped", 0), 0, 1, true));
        assert!(should_restart(&policy("on-failure", 0), 100, 1, false));
        assert!(!should_restart(&policy("on-failure", 0), 0, 0, false));
        assert!(should_restart(&policy("on-failure", 3), 2, 1, false));
        assert!(!should_restart(&policy("on-failure", 3), 3, 1, false));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        assert_eq!(b.next(short), Duration::from_millis(100));
        assert_eq!(b.next(short), Duration::from_millis(200));
        assert_eq!(b.next(short), Duration::from_millis(400));
        for _ in 0..20 {
            b.next(short);
        }
        assert_eq!(b.next(short), BACKOFF_MAX);
        assert_eq!(b.next(Duration::from_secs(10)), Duration::from_millis(100));
        let generation = b.generation;
        b.reset();
        assert_ne!(b.generation, generation);
        assert_eq!(b.next(short), Duration::from_millis(100));
    }
}
