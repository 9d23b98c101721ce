//! Daemon shutdown: without live-restore, stop every running container with
//! its own stop signal and timeout, all at once, as dockerd does; with
//! live-restore, leave them running for the next daemon to take up.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::stop::{parse_signal, DEFAULT_STOP_TIMEOUT};
use super::ContainerService;

/// Extra time the daemon allows beyond the longest container stop timeout.
const GRACE: i64 = 5;

impl ContainerService {
    /// `shutdown_timeout`: daemon.json's `shutdown-timeout` (seconds,
    /// negative: wait forever).
    pub async fn shutdown(&self, live_restore: bool, shutdown_timeout: i64) {
        self.shutting_down.store(true, Ordering::SeqCst);
        if live_restore {
            tracing::info!("live-restore: leaving containers running");
            return;
        }
        let mut stops = Vec::new();
        let mut overall = shutdown_timeout;
        for entry in self.entries() {
            let (id, signal, timeout) = {
                let mut record = entry.record.lock().await;
                if self.cancel_restart(&entry, &mut record) || !record.state.status.is_live() {
                    continue;
                }
                let signal = record.config.stop_signal.as_deref().map(parse_signal).and_then(Result::ok);
                let timeout = record.config.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
                (record.id.clone(), signal.unwrap_or(libc::SIGTERM as u32), timeout)
            };
            // dockerd's ShutdownTimeout: long enough for the slowest container.
            if overall >= 0 {
                overall = if timeout < 0 { -1 } else { overall.max(timeout + GRACE) };
            }
            stops.push(async move {
                tracing::debug!(container.id = %id, "stopping container for shutdown");
                if let Err(e) = self.stop_task(&entry, &id, signal, timeout).await {
                    tracing::warn!(container.id = %id, error = %e, "stopping container at shutdown");
                }
            });
        }
        if stops.is_empty() {
            return;
        }
        tracing::info!(containers = stops.len(), timeout_s = overall, "stopping containers");
        let all = futures_util::future::join_all(stops);
        if overall < 0 {
            all.await;
        } else if tokio::time::timeout(Duration::from_secs(overall as u64), all).await.is_err() {
            tracing::error!("Force shutdown daemon");
        }
    }
}
