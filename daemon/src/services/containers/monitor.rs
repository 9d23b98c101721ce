//! Task exits from containerd's event stream: record them, wake waiters,
//! auto-remove; and reconcile with containerd after missed events.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::record::Status;
use super::ContainerService;
use crate::backends::containerd::{TaskEvent, TaskState};

pub async fn run(service: Arc<ContainerService>, mut events: mpsc::Receiver<TaskEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            TaskEvent::Exit { container_id, exec_id, exit_status, exited_at, .. } if exec_id.is_empty() => {
                let service = service.clone();
                // Each exit on its own task: one slow teardown must not hold
                // up the others.
                tokio::spawn(async move { service.task_exited(&container_id, exit_status, exited_at).await });
            }
            TaskEvent::Oom { container_id } => {
                if let Ok(entry) = service.lookup(&container_id) {
                    entry.record.lock().await.state.oom_killed = true;
                }
            }
            TaskEvent::Resubscribed => reconcile(&service).await,
            TaskEvent::Exit { .. } => {}
        }
    }
}

/// Bring records in line with containerd: tasks that ended while we were
/// not listening are recorded as exits.
pub async fn reconcile(service: &Arc<ContainerService>) {
    for entry in service.entries() {
        let (id, live) = {
            let record = entry.record.lock().await;
            (record.id.clone(), record.state.status.is_live())
        };
        if !live {
            continue;
        }
        match service.containerd.task_state(&id).await {
            Ok(Some((TaskState::Stopped { exit_status }, _))) => service.task_exited(&id, exit_status, None).await,
            // The shim is gone (host reboot): nothing runs any more.
            Ok(None) => service.task_exited(&id, 255, None).await,
            Ok(Some((TaskState::Paused, pid))) => {
                let mut record = entry.record.lock().await;
                record.state.status = Status::Paused;
                record.state.pid = pid;
            }
            Ok(Some(_)) => {}
            Err(e) => tracing::warn!(container.id = %id, error = %e, "cannot reconcile container"),
        }
    }
}

impl ContainerService {
    pub(super) async fn task_exited(&self, id: &str, exit_status: u32, exited_at: Option<i64>) {
        let Ok(entry) = self.lookup(id) else { return };
        let auto_remove = {
            let mut record = entry.record.lock().await;
            if !record.state.status.is_live() || record.id != id {
                return;
            }
            let _ = self.containerd.task_delete(id).await;
            record.state.status = Status::Exited;
            record.state.pid = 0;
            record.state.exit_code = i64::from(exit_status);
            record.state.finished_at = match exited_at {
                Some(ns) => chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            };
            if let Err(e) = self.save(&record) {
                tracing::error!(container.id = %id, error = %e, "recording exit");
            }
            tracing::info!(container.id = %id, exit_code = exit_status, "container exited");
            record.host_config.auto_remove
        };
        entry.exits.fetch_add(1, Ordering::SeqCst);
        entry.notify();
        if auto_remove {
            if let Err(e) = self.destroy(&entry).await {
                tracing::warn!(container.id = %id, error = %e, "auto-remove failed");
            }
        }
    }
}
