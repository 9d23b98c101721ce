//! `docker attach` (and the attach half of `docker run`): a live view of
//! the container's output and, with `OpenStdin`, a way into its stdin.

use std::sync::Arc;

use tokio::sync::broadcast;

use api_types::events::TYPE_CONTAINER;

use super::detach;
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
    /// The container was running when the client attached.
    pub running: bool,
    pub output: broadcast::Receiver<Output>,
    /// Present when the client asked for stdin and the container has one.
    pub stdin: Option<Arc<ContainerIo>>,
    /// Close the container's stdin when this client's input ends.
    pub stdin_once: bool,
    pub want_stdout: bool,
    pub want_stderr: bool,
    /// With a TTY and stdin: the keys that end this attach, and the event
    /// that says so.
    pub detach: Option<Detach>,
}

pub struct Detach {
    pub keys: Vec<u8>,
    pub announce: Box<dyn FnOnce() + Send>,
}

impl AttachStreams {
    /// The client's input ended. As dockerd: without a TTY and with
    /// `StdinOnce` the process's stdin closes and output goes on; otherwise
    /// the attach ends (the process keeps its stdin).
    pub fn input_ends_attach(&self) -> bool {
        !(self.stdin_once && !self.tty)
    }
}

impl ContainerService {
    pub async fn attach(&self, name: &str, opts: AttachOptions, detach_keys: &str) -> Result<AttachStreams, ServiceError> {
        let keys = detach::parse(detach_keys)
            .map_err(|_| ServiceError::InvalidParameter(format!("Invalid detach keys ({detach_keys}) provided")))?;
        let entry = self.lookup(name)?;
        let record = entry.record.lock().await;
        if record.state.status == super::Status::Removing || record.state.status == super::Status::Dead {
            return Err(ServiceError::Conflict(format!("container {} is being removed", record.id)));
        }
        self.emit(&record, "attach", &[]);
        let stdin = (opts.stdin && record.config.open_stdin).then(|| entry.io.clone());
        let detach = (record.config.tty && stdin.is_some()).then(|| {
            let (events, actor) = (self.events.clone(), super::events::actor(&record, &[]));
            Detach { keys, announce: Box::new(move || events.publish(TYPE_CONTAINER, "detach", actor)) as Box<dyn FnOnce() + Send> }
        });
        Ok(AttachStreams {
            tty: record.config.tty,
            running: record.state.status.is_live(),
            output: entry.io.subscribe(),
            stdin,
            stdin_once: record.config.stdin_once,
            want_stdout: opts.stdout,
            want_stderr: opts.stderr,
            detach,
        })
    }
}
