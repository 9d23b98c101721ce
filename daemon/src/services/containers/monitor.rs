//! Task exits from containerd's event stream: record them, wake waiters,
//! auto-remove; and reconcile with containerd after missed events.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::record::Status;
use super::create::{OWNER, OWNER_LABEL};
use super::io::Fifos;
use super::ContainerService;
use crate::backends::containerd::{ContainerdError, ErrorKind, TaskEvent, TaskState};

/// containerd's tasks by container ID, with their state and PID.
type Tasks = HashMap<String, (TaskState, u32)>;

/// Follow containerd's task events for the daemon's whole life. The stream
/// never ends by itself, so if it or its consumer stops (a panic in either)
/// both are started again, with a reconcile for what went by meanwhile:
/// a dead consumer must not leave exits unrecorded for good.
pub async fn supervise(service: Arc<ContainerService>, first: mpsc::Receiver<TaskEvent>) {
    let mut events = first;
    loop {
        match tokio::spawn(run(service.clone(), events)).await {
            Err(e) if e.is_panic() => tracing::error!("the task event consumer panicked; restarting it"),
            _ => tracing::error!("the task event stream stopped; restarting it"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        events = service.containerd.task_events();
        reconcile(&service).await;
    }
}

async fn run(service: Arc<ContainerService>, mut events: mpsc::Receiver<TaskEvent>) {
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
                    let mut record = entry.record.lock().await;
                    record.state.oom_killed = true;
                    service.emit(&record, "oom", &[]);
                }
            }
            TaskEvent::Resubscribed => {
                reconcile(&service).await;
                // A containerd just restarted may still report a task its
                // shim has seen exit, or finish a call cut short: look once
                // more when it has settled.
                settle_later(&service, &[3]);
            }
            TaskEvent::Exit { container_id, exec_id, exit_status, .. } => {
                let service = service.clone();
                tokio::spawn(async move { service.exec_exited(&container_id, &exec_id, exit_status).await });
            }
        }
    }
}

/// Bring records in line with containerd: tasks that ended while we were
/// not listening are recorded as exits.
pub async fn reconcile(service: &Arc<ContainerService>) {
    match service.containerd.task_states().await {
        Ok(tasks) => reconcile_with(service, &tasks).await,
        Err(e) => tracing::warn!(error = %e, "cannot list tasks to reconcile containers"),
    }
}

/// Reconcile against a listing of the tasks. One listing serves all: a
/// call per container made start-up with many containers slow. The
/// listing ages while we go (starts and exits go on meanwhile), so
/// whatever it says needs doing is asked again before it is done.
async fn reconcile_with(service: &Arc<ContainerService>, tasks: &Tasks) {
    for entry in service.entries() {
        let (id, live) = {
            let record = entry.record.lock().await;
            if matches!(record.state.status, Status::Created | Status::Exited) {
                // A task of a container that is not running: a start whose
                // answer was lost (containerd or berthd went down mid-call)
                // and that went through after all. The client was told it
                // failed, so it goes. The lock keeps a `start` out meanwhile.
                if tasks.contains_key(&record.id) && matches!(service.containerd.task_state(&record.id).await, Ok(Some(_))) {
                    tracing::info!(container.id = %record.id, "removing the task of a container that is not running");
                    if let Err(e) = service.discard_task(&record.id).await {
                        tracing::warn!(container.id = %record.id, error = %e, "removing a stray task");
                    }
                }
                continue;
            }
            (record.id.clone(), record.state.status.is_live() && record.state.status != Status::Restarting)
        };
        if !live {
            continue;
        }
        if let Some((TaskState::Running, _)) = tasks.get(&id) {
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

/// At start-up, before anything else touches the containers: `recover`,
/// then `reconcile`, on one listing of the tasks.
pub async fn restore(service: &Arc<ContainerService>) {
    match service.containerd.task_states().await {
        Ok(tasks) => {
            recover(service, &tasks).await;
            reconcile_with(service, &tasks).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot list containerd tasks; skipping crash recovery"),
    }
}

/// Finish what a crash interrupted (a create or remove half done on either
/// side), and take up the output of tasks that kept running while we were
/// down.
async fn recover(service: &Arc<ContainerService>, tasks: &Tasks) {
    let in_containerd: HashSet<String> = match service.containerd.container_ids_owned_by(OWNER_LABEL, OWNER).await {
        Ok(ids) => ids.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list containerd containers; skipping crash recovery");
            return;
        }
    };
    let mut known = HashSet::new();
    for entry in service.entries() {
        let (id, status, unfinished) = {
            let record = entry.record.lock().await;
            let exited_auto_remove = record.state.status == Status::Exited && record.host_config.auto_remove;
            (record.id.clone(), record.state.status, !in_containerd.contains(&record.id) || exited_auto_remove)
        };
        known.insert(id.clone());
        if unfinished || status == Status::Removing {
            // A create that never reached containerd, a remove that had
            // already deleted containerd's side, or an auto-remove cut short:
            // finish the removal.
            tracing::info!(container.id = %id, "removing the remains of an interrupted create or remove");
            if let Err(e) = service.destroy(&entry).await {
                tracing::warn!(container.id = %id, error = %e, "cleaning up after a crash");
            }
            continue;
        }
        let listed = tasks.get(&id).copied();
        // What the listing says of a container whose record says otherwise
        // is asked again: the event consumer may have seen it exit since.
        let expected = match entry.record.lock().await.state.status {
            Status::Running => Some(TaskState::Running),
            Status::Paused => Some(TaskState::Paused),
            _ => None,
        };
        let task = match (listed, expected) {
            (Some((state, _)), Some(want)) if state == want => listed,
            (None, None) => None,
            _ => service.containerd.task_state(&id).await.ok().flatten(),
        };
        let mut record = entry.record.lock().await;
        match task {
            Some((state @ (TaskState::Running | TaskState::Paused), pid)) => {
                let status = if state == TaskState::Paused { Status::Paused } else { Status::Running };
                if record.state.status != status {
                    // Started (or restarted) just before a crash, before the
                    // record said so: the task is the truth.
                    record.state.status = status;
                    record.state.pid = pid;
                    if let Err(e) = service.save(&record) {
                        tracing::warn!(container.id = %id, error = %e, "recording an adopted task");
                    }
                }
                if status == Status::Running {
                    service.health_restore(&mut record);
                }
                service.drop_stray_endpoints(&record).await;
                let copier = service.fifo_dir(&id).join(super::logs::COPIER_SOCKET);
                let fifos = Fifos::at(&service.fifo_dir(&id), "init", record.config.tty, record.config.open_stdin);
                let followed = match copier.exists() {
                    // The copier kept writing the log meanwhile: only the live view comes back.
                    true => entry.io.follow_copier(&copier).await,
                    false => Err(std::io::ErrorKind::NotFound.into()),
                };
                let reattached = match followed {
                    Ok(()) => entry.io.reopen_stdin(&fifos).await,
                    // No copier (or berthd's own on FIFOs died): the FIFOs held what came meanwhile.
                    Err(_) if fifos.stdout.exists() => {
                        entry.io.reattach(&fifos, service.log_file(&record).ok().flatten().as_ref()).await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = reattached {
                    tracing::warn!(container.id = %id, error = %e, "cannot reattach container output");
                } else if record.config.open_stdin {
                    entry.io.set_stdin_owner(service.containerd.clone(), &id, "").await;
                    entry.io.stdin_ready();
                }
            }
            // Created but never started when we crashed: nobody reads its
            // output, so it goes; the container stays as it was recorded.
            Some((TaskState::Created, _)) if !record.state.status.is_live() => {
                drop(record);
                if let Err(e) = service.discard_task(&id).await {
                    tracing::warn!(container.id = %id, error = %e, "deleting a task left by a crash");
                }
            }
            _ => {}
        }
    }
    for orphan in in_containerd.difference(&known) {
        service.remove_orphan(orphan).await;
    }
    // Calls the previous berthd made just before it died may still be
    // finishing in containerd (a container created after the record was
    // cleared above, a task started): look again when they are done.
    settle_later(service, &[5, 30]);
}

/// Reconcile and sweep orphans again, `delays` seconds from now.
fn settle_later(service: &Arc<ContainerService>, delays: &[u64]) {
    let (service, delays) = (Arc::downgrade(service), delays.to_vec());
    tokio::spawn(async move {
        for delay in delays {
            tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
            let Some(service) = service.upgrade() else { return };
            if service.is_shutting_down() {
                return;
            }
            reconcile(&service).await;
            sweep_orphans(&service).await;
        }
    });
}

/// Remove the containerd containers of ours that no record describes. Safe
/// at any time: a record is registered before its containerd container is
/// made and forgotten only after it is deleted.
async fn sweep_orphans(service: &Arc<ContainerService>) {
    let ids = match service.containerd.container_ids_owned_by(OWNER_LABEL, OWNER).await {
        Ok(ids) => ids,
        Err(e) => return tracing::debug!(error = %e, "cannot list containerd containers for the orphan sweep"),
    };
    for id in ids {
        if service.lookup(&id).is_err() {
            service.remove_orphan(&id).await;
        }
    }
}

impl ContainerService {
    /// Delete a containerd container (and its task and snapshot) that no
    /// record describes.
    async fn remove_orphan(&self, id: &str) {
        tracing::info!(container.id = %id, "removing a containerd container berthd has no record of");
        if let Err(e) = self.discard_task(id).await {
            // Deleting the container would strand its task where no call
            // reaches it; the next sweep or start-up tries again.
            return tracing::warn!(container.id = %id, error = %e, "removing orphaned container's task");
        }
        let results = [
            self.containerd.container_delete(id).await,
            self.containerd.rootfs_remove(id).await,
        ];
        for e in results.into_iter().filter_map(Result::err) {
            tracing::warn!(container.id = %id, error = %e, "removing orphaned container");
        }
        let _ = std::fs::remove_dir_all(self.fifo_dir(id));
    }

    /// Kill a task if it runs, wait for it to stop, and delete it; Ok when
    /// there is no task left.
    pub(super) async fn discard_task(&self, id: &str) -> Result<(), ContainerdError> {
        // The usual case, no task or a stopped one, costs one call.
        match self.containerd.task_delete(id).await {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Unavailable => return Err(e),
            Err(_) => {}
        }
        let _ = self.containerd.task_kill(id, libc::SIGKILL as u32).await;
        for _ in 0..100 {
            match self.containerd.task_state(id).await {
                Ok(Some((TaskState::Stopped { .. }, _))) | Ok(None) | Err(_) => break,
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        self.containerd.task_delete(id).await.map(drop)
    }

    pub(super) async fn task_exited(self: &Arc<Self>, id: &str, exit_status: u32, exited_at: Option<i64>) {
        let Ok(entry) = self.lookup(id) else { return };
        let (auto_remove, restart) = {
            let mut record = entry.record.lock().await;
            if !record.state.status.is_live() || record.state.status == Status::Restarting || record.id != id {
                return;
            }
            // The process is gone: the shim's teardown and the network's
            // are independent, and both sit in `docker run --rm`'s latency.
            let teardown = std::time::Instant::now();
            let (_, left) = tokio::join!(self.containerd.task_delete(id), self.leave_networks(id));
            tracing::debug!(container.id = %id, took_ms = teardown.elapsed().as_millis() as u64, "task deleted");
            if let Err(e) = left {
                tracing::warn!(container.id = %id, error = %e, "leaving networks after exit");
            }
            self.health_stop(&mut record);
            self.unmount_shared_shm(id);
            record.state.status = Status::Exited;
            // Under the record's lock: an exec create either came before
            // (and is forgotten here) or sees the container stopped.
            self.execs_forget_container(id);
            record.state.pid = 0;
            record.state.exit_code = i64::from(exit_status);
            record.state.finished_at = match exited_at {
                Some(ns) => chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            };
            let ran = chrono::DateTime::parse_from_rfc3339(&record.state.started_at)
                .map(|s| (chrono::Utc::now() - s.with_timezone(&chrono::Utc)).num_seconds().max(0))
                .unwrap_or(0);
            self.emit(&record, "die", &[("exitCode", exit_status.to_string()), ("execDuration", ran.to_string())]);
            for (i, v) in record.volumes.iter().enumerate() {
                self.volumes.unmounted(&v.name, &record.id);
                self.unbind_subpath(&record.id, i, v);
            }
            let restart = self.plan_restart(&entry, &mut record);
            if let Err(e) = self.save(&record) {
                tracing::error!(container.id = %id, error = %e, "recording exit");
            }
            tracing::info!(container.id = %id, exit_code = exit_status, restarting = restart.is_some(), "container exited");
            (record.host_config.auto_remove, restart)
        };
        entry.exits.fetch_add(1, Ordering::SeqCst);
        entry.notify();
        if let Some((delay, generation)) = restart {
            self.schedule_restart(entry, delay, generation);
        } else if auto_remove {
            if let Err(e) = self.destroy(&entry).await {
                tracing::warn!(container.id = %id, error = %e, "auto-remove failed");
            }
        }
    }
}
