//! `docker pause`, `docker unpause` and `docker restart`.

use super::record::Status;
use super::ContainerService;
use crate::services::ServiceError;

impl ContainerService {
    pub async fn pause(&self, name: &str) -> Result<(), ServiceError> {
        let entry = self.lookup(name)?;
        let mut record = entry.record.lock().await;
        match record.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(ServiceError::Conflict(format!("Container {} is already paused", record.id)))
            }
            _ => return Err(ServiceError::Conflict(format!("Container {} is not running", record.id))),
        }
        self.containerd.task_pause(&record.id).await?;
        record.state.status = Status::Paused;
        self.health_stop(&mut record);
        self.save(&record)?;
        entry.notify();
        self.emit(&record, "pause", &[]);
        Ok(())
    }

    pub async fn unpause(&self, name: &str) -> Result<(), ServiceError> {
        let entry = self.lookup(name)?;
        let mut record = entry.record.lock().await;
        if record.state.status != Status::Paused {
            return Err(ServiceError::Conflict(format!("Container {} is not paused", record.id)));
        }
        self.containerd.task_resume(&record.id).await?;
        record.state.status = Status::Running;
        self.health_resume(&record);
        self.save(&record)?;
        entry.notify();
        self.emit(&record, "unpause", &[]);
        Ok(())
    }

    pub async fn restart(&self, name: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<(), ServiceError> {
        match self.stop(name, signal, timeout).await {
            Ok(()) | Err(ServiceError::NotModified) => {}
            Err(e) => return Err(e),
        }
        let entry = self.lookup(name)?;
        let mut record = entry.record.lock().await;
        if record.state.status.is_live() {
            return Ok(());
        }
        record.manually_stopped = false;
        record.restart_count = 0;
        entry.backoff.lock().unwrap_or_else(|e| e.into_inner()).reset();
        self.run_task(&entry, &mut record).await?;
        self.emit(&record, "restart", &[]);
        Ok(())
    }
}
