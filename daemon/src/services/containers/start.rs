//! `docker start`: wire stdio, create and start containerd's task.


use std::path::Path;

use super::io::Fifos;
use super::record::{Container, Status};
use super::{ContainerService, Entry};
use crate::backends::containerd::{ContainerdError, ErrorKind, TaskIo};
use crate::backends::logging::copier;
use crate::services::ServiceError;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl ContainerService {
    pub async fn start(&self, name: &str) -> Result<(), ServiceError> {
        let entry = self.lookup(name)?;
        let mut record = entry.record.lock().await;
        match record.state.status {
            Status::Running | Status::Restarting => return Err(ServiceError::NotModified),
            Status::Paused => {
                return Err(ServiceError::Conflict("cannot start a paused container, try unpause instead".into()))
            }
            Status::Removing | Status::Dead => {
                return Err(ServiceError::Conflict(format!(
                    "container is marked for removal and cannot be started"
                )))
            }
            Status::Created | Status::Exited => {}
        }
        record.manually_stopped = false;
        record.restart_count = 0;
        entry.backoff.lock().unwrap_or_else(|e| e.into_inner()).reset();
        let result = self.run_task(&entry, &mut record).await;
        let auto_remove = record.host_config.auto_remove;
        drop(record);
        if result.is_err() && auto_remove {
            // As dockerd: an auto-remove container that cannot start is
            // removed; `docker run --rm` waits for that.
            if let Err(e) = self.destroy(&entry).await {
                tracing::warn!(error = %e, "auto-remove after a failed start");
            }
        }
        result
    }

    /// Start a task for a container that has none running (start, restart,
    /// restart policy). The record is saved either way.
    pub(super) async fn run_task(&self, entry: &Entry, record: &mut Container) -> Result<(), ServiceError> {
        // A task left from the previous run (or a start whose answer was
        // lost) must go before a new one.
        let begun = std::time::Instant::now();
        self.discard_task(&record.id).await?;
        let mounts = self.containerd.rootfs_mounts(&record.id).await?;
        let log = self.log_file(record)?;
        let stdio_error = |e: std::io::Error| ServiceError::Internal(format!("setting up container stdio: {e}"));
        let copier = self.log_copier(record, log.as_ref()).map_err(stdio_error)?;
        let dir = self.fifo_dir(&record.id);
        let fifos = match &copier {
            // berthd's own copier on FIFOs (stdin, no TTY).
            Some(c) if c.spawn.is_some() => {
                entry.io.make_fifos(&dir, "init", false, true).await.map_err(stdio_error)?
            }
            Some(_) => Fifos {
                // The shim's console copy reads a stdin FIFO (TTY only, see `log_copier`).
                stdin: match record.config.open_stdin {
                    true => Some(entry.io.wire_stdin(&dir, "init").await.map_err(stdio_error)?),
                    false => None,
                },
                ..Fifos::at(&dir, "init", false, false)
            },
            None => entry
                .io
                .wire(&dir, "init", record.config.tty, record.config.open_stdin, log.as_ref())
                .await
                .map_err(stdio_error)?,
        };
        if let Some((program, config)) = copier.as_ref().and_then(|c| c.spawn.as_ref()) {
            if let Err(e) = copier::spawn(program, config).await {
                entry.io.abandon(&fifos);
                return Err(stdio_error(e));
            }
        }
        let io = match &copier {
            // (A URI, not a path: containerd passes it through as text.)
            Some(c) if c.spawn.is_none() => TaskIo {
                stdin: fifos.stdin.as_deref(),
                stdout: Some(Path::new(&c.uri)),
                stderr: None,
                terminal: record.config.tty,
            },
            _ => TaskIo {
                stdin: fifos.stdin.as_deref(),
                stdout: Some(&fifos.stdout),
                stderr: fifos.stderr.as_deref(),
                terminal: record.config.tty,
            },
        };
        if record.config.open_stdin {
            entry.io.set_stdin_owner(self.containerd.clone(), &record.id, "").await;
        }
        if let Err(e) = self.mount_shared_shm(record) {
            entry.io.abandon(&fifos);
            return Err(e);
        }
        if let Err(e) = self.join_shared_namespaces(record).await {
            entry.io.abandon(&fifos);
            return Err(e);
        }
        if let Err(e) = self.join_networks(record).await {
            entry.io.abandon(&fifos);
            return Err(e);
        }
        if let Err(e) = self.mount_volumes(record) {
            entry.io.abandon(&fifos);
            let _ = self.leave_networks(&record.id).await;
            return Err(e);
        }
        let prepared = begun.elapsed();
        let started = match self.containerd.task_create(&record.id, &mounts, io).await {
            Ok(_) => match &copier {
                Some(c) => match entry.io.follow_copier(&c.socket).await {
                    Ok(()) => {
                        tracing::debug!(prepare_ms = prepared.as_millis() as u64, created_ms = begun.elapsed().as_millis() as u64, "task created");
                        self.containerd.task_start(&record.id).await
                    }
                    Err(e) => Err(ContainerdError {
                        kind: ErrorKind::Other,
                        op: "start",
                        message: format!("connecting to the log copier: {e}"),
                    }),
                },
                None => self.containerd.task_start(&record.id).await,
            },
            Err(e) => Err(e),
        };
        match started {
            Ok(pid) => {
                entry.io.stdin_ready();
                record.state.status = Status::Running;
                record.state.pid = pid;
                record.state.exit_code = 0;
                record.state.error.clear();
                record.state.oom_killed = false;
                record.state.started_at = now();
                self.health_start(record);
                self.save(record)?;
                entry.notify();
                for v in &record.volumes {
                    self.volumes.mounted(&v.name, &record.id, &v.destination, !v.read_only);
                }
                self.emit(record, "start", &[]);
                tracing::info!(container.id = %record.id, pid, took_ms = begun.elapsed().as_millis() as u64, "container started");
                Ok(())
            }
            Err(e) => {
                entry.io.abandon(&fifos);
                // A start cut short may have gone through in containerd.
                let _ = self.discard_task(&record.id).await;
                let _ = self.leave_networks(&record.id).await;
                self.unmount_volumes(&record.id, &record.volumes);
                let message = format!("failed to create task for container: {}", e.message);
                let code = command_failure_code(&message);
                let invalid = code.is_some();
                record.state.exit_code = code.unwrap_or(128);
                record.state.error = message.clone();
                self.save(record)?;
                entry.notify();
                Err(if invalid { ServiceError::InvalidParameter(message) } else { ServiceError::Internal(message) })
            }
        }
    }
}

/// dockerd's exit code for a process (init or exec) the runtime could not
/// start because of its command: 127 when it is missing, 126 when it cannot
/// be executed; `None` for other failures.
pub(super) fn command_failure_code(message: &str) -> Option<i64> {
    if message.contains("executable file not found") || message.contains("no such file or directory") {
        Some(127)
    } else if message.contains("permission denied") {
        Some(126)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_codes() {
        assert_eq!(command_failure_code("exec: \"nope\": executable file not found in $PATH"), Some(127));
        assert_eq!(command_failure_code("exec: \"/etc\": permission denied"), Some(126));
        assert_eq!(command_failure_code("cgroup trouble"), None);
    }
}
