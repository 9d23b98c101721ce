//! `docker attach` (and the attach half of `docker run`): a live view of
//! the container's output and, with `OpenStdin`, a way into its stdin.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::io::{ContainerIo, Output};
use super::ContainerService;
use crate::services::ServiceError;

#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// What the HTTP layer pumps between the client and the container.
pub struct AttachStreams {
    pub tty: bool,
    pub output: broadcast::Receiver<Output>,
    /// Present when the client asked for stdin and the container has one.
    pub stdin: Option<Arc<ContainerIo>>,
    /// Close the container's stdin when this client's input ends.
    pub stdin_once: bool,
    pub want_stdout: bool,
    pub want_stderr: bool,
}

impl ContainerService {
    pub async fn attach(&self, name: &str, opts: AttachOptions) -> Result<AttachStreams, ServiceError> {
        let entry = self.lookup(name)?;
        let record = entry.record.lock().await;
        if record.state.status == super::Status::Removing || record.state.status == super::Status::Dead {
            return Err(ServiceError::Conflict(format!("container {} is being removed", record.id)));
        }
        self.emit(&record, "attach", &[]);
        Ok(AttachStreams {
            tty: record.config.tty,
            output: entry.io.subscribe(),
            stdin: (opts.stdin && record.config.open_stdin).then(|| entry.io.clone()),
            stdin_once: record.config.stdin_once,
            want_stdout: opts.stdout,
            want_stderr: opts.stderr,
        })
    }
}
