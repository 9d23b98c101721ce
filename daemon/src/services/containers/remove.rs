//! `docker rm`: stop if forced, then remove everything the container owns,
//! in containerd and on disk, collecting every failure.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::record::Status;
use super::{ContainerService, Entry};
use crate::backends::containerd::ErrorKind;
use crate::services::ServiceError;

impl ContainerService {
    /// With `remove_volumes` (`rm -v`), the container's anonymous volumes go too.
    pub async fn remove(&self, name: &str, force: bool, remove_volumes: bool) -> Result<(), ServiceError> {
        let entry = self.lookup(name)?;
        let (id, live) = {
            let record = entry.record.lock().await;
            let live = record.state.status.is_live();
            if live && !force {
                let what = match record.state.status {
                    Status::Paused => "paused",
                    Status::Restarting => "restarting",
                    _ => "running",
                };
                return Err(ServiceError::Conflict(format!(
                    "cannot remove container \"{}\": container is {what}: stop the container before removing or force remove",
                    record.name
                )));
            }
            if record.state.status == Status::Removing {
                return Err(ServiceError::Conflict(format!(
                    "removal of container {} is already in progress",
                    record.bare_name()
                )));
            }
            (record.id.clone(), live)
        };
        if live {
            let restarting = {
                let mut record = entry.record.lock().await;
                record.manually_stopped = true;
                self.save(&record)?;
                self.cancel_restart(&entry, &mut record)
            };
            if !restarting {
                self.stop_task(&entry, &id, libc::SIGKILL as u32, 30).await?;
            }
        }
        self.destroy(&entry).await?;
        if remove_volumes {
            let record = entry.record.lock().await.clone();
            self.detach_volumes(&record, true).await;
        }
        Ok(())
    }

    /// Remove the container's task, containerd record, snapshot, files and
    /// name. Every step runs; the failures are reported together.
    pub(super) async fn destroy(&self, entry: &Arc<Entry>) -> Result<(), ServiceError> {
        let (id, name, actor) = {
            let mut record = entry.record.lock().await;
            record.state.status = Status::Removing;
            // On disk first: a crash from here on is finished at next start.
            if let Err(e) = self.save(&record) {
                tracing::warn!(container.id = %record.id, error = %e, "recording removal");
            }
            for (i, v) in record.volumes.iter().enumerate() {
                self.unbind_subpath(&record.id, i, v);
            }
            (record.id.clone(), record.name.clone(), super::events::actor(&record, &[]))
        };
        // The task first, killed if it still runs (a start whose answer was
        // lost): deleting the containerd container under a live task would
        // strand the task where no call reaches it. Without that, nothing
        // else is touched, so a later `rm` can finish the job.
        if let Err(e) = self.discard_task(&id).await {
            let mut record = entry.record.lock().await;
            record.state.status = Status::Dead;
            record.state.error = e.to_string();
            let _ = self.save(&record);
            entry.notify();
            let message = format!("unable to remove container {id}: {e}");
            return Err(match e.kind() {
                ErrorKind::Unavailable => ServiceError::Unavailable(message),
                _ => ServiceError::Internal(message),
            });
        }
        let mut failures = Vec::new();
        if let Err(e) = self.leave_networks(&id).await {
            failures.push(e.to_string());
        }
        self.unmount_shared_shm(&id);
        // Independent objects in containerd: removed side by side.
        let (deleted, removed) = tokio::join!(self.containerd.container_delete(&id), self.containerd.rootfs_remove(&id));
        failures.extend(deleted.err().map(|e| e.to_string()));
        failures.extend(removed.err().map(|e| e.to_string()));
        if let Err(e) = self.store.remove(&id) {
            failures.push(format!("removing container files: {e}"));
        }
        self.execs_forget_container(&id);
        let _ = std::fs::remove_dir_all(self.fifo_dir(&id));
        if !failures.is_empty() {
            let mut record = entry.record.lock().await;
            record.state.status = Status::Dead;
            record.state.error = failures.join("; ");
            let _ = self.save(&record);
            entry.notify();
            return Err(ServiceError::Internal(format!(
                "unable to remove container {id}: {}",
                failures.join("; ")
            )));
        }
        self.forget(&id, &name);
        let record = entry.record.lock().await.clone();
        // `--rm` removes anonymous volumes as `rm -v` does.
        self.detach_volumes(&record, record.host_config.auto_remove).await;
        self.events.publish(api_types::events::TYPE_CONTAINER, "destroy", actor);
        entry.removed.store(true, Ordering::SeqCst);
        entry.notify();
        tracing::info!(container.id = %id, "container removed");
        Ok(())
    }
}
