//! `docker exec`: extra processes in a running container, with their own
//! stdio and exit codes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use api_types::exec::{ExecCreateRequest, ExecInspect, ProcessConfig};
use tokio::sync::{watch, Mutex};

use super::io::ContainerIo;
use super::record::{Container, Status};
use super::{user, AttachStreams, ContainerService};
use crate::backends::containerd::{ErrorKind, TaskIo};
use crate::backends::oci_spec::{self, NetworkNamespace, SpecInput};
use crate::services::ServiceError;

/// One exec instance.
pub struct Exec {
    id: String,
    container_id: String,
    request: ExecCreateRequest,
    state: Mutex<ExecState>,
    io: Arc<ContainerIo>,
    /// Flips to true once the exit code is recorded.
    exited: watch::Sender<bool>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    pid: u32,
    exit_code: Option<i64>,
}

#[derive(Default)]
pub struct ExecRegistry {
    by_id: RwLock<HashMap<String, Arc<Exec>>>,
}

/// The output of a started exec.
pub struct ExecStreams {
    pub attach: AttachStreams,
    /// Resolves once the exit code is recorded, so a client that inspects
    /// right after the stream ends sees it.
    pub exited: watch::Receiver<bool>,
}

/// What `exec start` came to once the exec and its container were found.
pub enum ExecStart {
    Running(ExecStreams),
    /// The process did not start (the exit code, if any, is recorded). As
    /// dockerd: a detached start answers this as its error, an attached one
    /// writes it into the hijacked stream.
    Failed { tty: bool, error: ServiceError },
}

/// dockerd's exec actions carry the command: `exec_start: sh -c true`.
fn exec_action(verb: &str, request: &ExecCreateRequest) -> String {
    let cmd = request.cmd.as_deref().unwrap_or_default();
    let (entrypoint, args) = cmd.split_first().map_or(("", &[][..]), |(e, a)| (e.as_str(), a));
    format!("{verb}: {entrypoint} {}", args.join(" "))
}

fn no_such_exec(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("No such exec instance: {id}"))
}

/// dockerd's refusals of an exec (create or start) by the container's state.
fn execs_allowed(record: &Container) -> Result<(), ServiceError> {
    match record.state.status {
        Status::Running => Ok(()),
        Status::Paused => {
            Err(ServiceError::Conflict(format!("Container {} is paused, unpause the container before exec", record.id)))
        }
        _ => Err(ServiceError::Conflict(format!("Container {} is not running", record.id))),
    }
}

impl ContainerService {
    fn exec_lookup(&self, id: &str) -> Result<Arc<Exec>, ServiceError> {
        self.execs.by_id.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned().ok_or_else(|| no_such_exec(id))
    }

    pub async fn exec_create(&self, container: &str, request: ExecCreateRequest) -> Result<String, ServiceError> {
        let entry = self.lookup(container)?;
        let record = entry.record.lock().await;
        execs_allowed(&record)?;
        if request.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ServiceError::InvalidParameter("No exec command specified".into()));
        }
        if let Some(keys) = request.detach_keys.as_deref() {
            super::detach::parse(keys).map_err(|_| ServiceError::Internal(format!("Invalid escape keys ({keys}) provided")))?;
        }
        let id = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        self.emit(&record, &exec_action("exec_create", &request), &[("execID", id.clone())]);
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: record.id.clone(),
            request,
            state: Mutex::default(),
            io: Arc::default(),
            exited: watch::channel(false).0,
        });
        self.execs.by_id.write().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), exec);
        Ok(id)
    }

    /// Errors returned here come before dockerd would hijack the
    /// connection (no such exec, the container not running); the rest are
    /// in `ExecStart::Failed`.
    pub async fn exec_start(&self, id: &str) -> Result<ExecStart, ServiceError> {
        let exec = self.exec_lookup(id)?;
        let entry = self.lookup(&exec.container_id)?;
        let record = entry.record.lock().await.clone();
        execs_allowed(&record)?;
        let tty = exec.request.tty;
        let mut state = exec.state.lock().await;
        if state.started {
            let what = if state.exit_code.is_some() { "has already run" } else { "is already running" };
            let error = ServiceError::Conflict(format!("Error: Exec command {id} {what}"));
            return Ok(ExecStart::Failed { tty, error });
        }
        state.started = true;
        self.emit(&record, &exec_action("exec_start", &exec.request), &[("execID", exec.id.clone())]);
        match self.exec_launch(&exec, &record).await {
            Ok((attach, pid)) => {
                exec.io.stdin_ready();
                state.running = true;
                state.pid = pid;
                Ok(ExecStart::Running(ExecStreams { attach, exited: exec.exited.subscribe() }))
            }
            Err(error) => {
                // dockerd's code for a process that could not start: 127 or
                // 126 when the command is the reason, else 126.
                state.exit_code = Some(super::start::command_failure_code(&error.to_string()).unwrap_or(126));
                exec.exited.send_replace(true);
                Ok(ExecStart::Failed { tty, error })
            }
        }
    }

    /// Build the process, wire its stdio and start it in containerd;
    /// returns its streams and PID.
    async fn exec_launch(&self, exec: &Exec, record: &Container) -> Result<(AttachStreams, u32), ServiceError> {
        let req = &exec.request;
        let mounts = self.containerd.rootfs_mounts(&record.id).await?;
        let user_name = if req.user.is_empty() { record.config.user.as_str() } else { req.user.as_str() };
        let process_user = user::resolve(user_name, &[], &user::RootfsFiles::new(&mounts))?;
        let mut host_config = record.host_config.clone();
        host_config.privileged |= req.privileged;
        // Only the process part of the spec is used: the container's mounts
        // (named volumes among them) are already in place.
        host_config.binds = None;
        host_config.mounts = None;
        host_config.tmpfs = None;
        let mut config = record.config.clone();
        config.tty = req.tty;
        if !req.working_dir.is_empty() {
            config.working_dir = req.working_dir.clone();
        }
        // The container's environment as its process got it (without the
        // link variables), then the exec's own.
        let own = record.config.env.as_deref().unwrap_or_default();
        let env = super::environment::process_env(&record.config.hostname, req.tty, Vec::new(), own);
        let env = super::environment::replace_or_append(env, req.env.as_deref().unwrap_or_default());
        let spec = oci_spec::generate(&SpecInput {
            id: &record.id,
            config: &config,
            host_config: &host_config,
            args: req.cmd.clone().unwrap_or_default(),
            env,
            user: process_user,
            hostname: record.config.hostname.clone(),
            etc_files: None,
            network: NetworkNamespace::New,
            cgroups_path: String::new(),
            defaults: &self.defaults(),
            devices: &[],
            joined: Default::default(),
        })
        .map_err(|e| ServiceError::InvalidParameter(e.to_string()))?;
        let prefix = format!("exec-{}", &exec.id[..12]);
        let fifos = exec
            .io
            .wire(&self.fifo_dir(&record.id), &prefix, req.tty, req.attach_stdin, None)
            .await
            .map_err(|e| ServiceError::Internal(format!("setting up exec stdio: {e}")))?;
        let attach = AttachStreams {
            tty: req.tty,
            running: true,
            output: exec.io.subscribe(),
            stdin: req.attach_stdin.then(|| exec.io.clone()),
            stdin_once: true,
            want_stdout: req.attach_stdout,
            want_stderr: req.attach_stderr,
            detach: (req.tty && req.attach_stdin).then(|| {
                let keys = super::detach::parse(req.detach_keys.as_deref().unwrap_or_default()).unwrap_or_default();
                let (events, actor) = (self.events.clone(), super::events::actor(record, &[("execID", exec.id.clone())]));
                let announce = move || events.publish(api_types::events::TYPE_CONTAINER, "exec_detach", actor);
                super::attach::Detach { keys, announce: Box::new(announce) as Box<dyn FnOnce() + Send> }
            }),
        };
        let io = TaskIo {
            stdin: fifos.stdin.as_deref(),
            stdout: Some(&fifos.stdout),
            stderr: fifos.stderr.as_deref(),
            terminal: req.tty,
        };
        if req.attach_stdin {
            exec.io.set_stdin_owner(self.containerd.clone(), &record.id, &exec.id).await;
        }
        let started = match self.containerd.exec_create(&record.id, &exec.id, &spec["process"], io).await {
            Ok(()) => self.containerd.exec_start(&record.id, &exec.id).await,
            Err(e) => Err(e),
        };
        match started {
            Ok(pid) => Ok((attach, pid)),
            Err(e) => {
                exec.io.abandon(&fifos);
                let _ = self.containerd.exec_delete(&record.id, &exec.id).await;
                // The runc shim's text already starts so; dockerd adds nothing.
                let message = match e.message.starts_with("OCI runtime exec failed") {
                    true => e.message.clone(),
                    false => format!("OCI runtime exec failed: {}", e.message),
                };
                Err(match e.kind() {
                    ErrorKind::Unavailable => ServiceError::Unavailable(e.to_string()),
                    // As dockerd: a command that cannot run is the client's
                    // mistake (400); anything else is the runtime's (500).
                    _ if super::start::command_failure_code(&message).is_some() => ServiceError::InvalidParameter(message),
                    _ => ServiceError::Internal(message),
                })
            }
        }
    }

    /// An exec's process ended (from containerd's event stream).
    pub(super) async fn exec_exited(&self, container_id: &str, exec_id: &str, exit_status: u32) {
        let Ok(exec) = self.exec_lookup(exec_id) else { return };
        // `exec_start` holds the state while it launches: a process that
        // exits before containerd's start call has answered is deleted
        // only after it (deleting it first made that call fail with "process
        // does not exist"), and is not marked running after it ended.
        let mut state = exec.state.lock().await;
        let _ = self.containerd.exec_delete(container_id, exec_id).await;
        state.running = false;
        state.exit_code = Some(i64::from(exit_status));
        if let Ok(entry) = self.lookup(container_id) {
            let attributes = [("execID", exec_id.to_string()), ("exitCode", exit_status.to_string())];
            self.emit(&*entry.record.lock().await, "exec_die", &attributes);
        }
        exec.exited.send_replace(true);
        self.exec_remove_fifos(container_id, exec_id);
    }

    fn exec_remove_fifos(&self, container_id: &str, exec_id: &str) {
        let prefix = format!("exec-{}", &exec_id[..12.min(exec_id.len())]);
        for suffix in ["stdin", "stdout", "stderr"] {
            let _ = std::fs::remove_file(self.fifo_dir(container_id).join(format!("{prefix}-{suffix}")));
        }
    }

    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspect, ServiceError> {
        let exec = self.exec_lookup(id)?;
        let state = exec.state.lock().await;
        let req = &exec.request;
        let mut cmd = req.cmd.clone().unwrap_or_default();
        let entrypoint = if cmd.is_empty() { String::new() } else { cmd.remove(0) };
        Ok(ExecInspect {
            id: exec.id.clone(),
            running: state.running,
            exit_code: state.exit_code,
            process_config: ProcessConfig {
                privileged: req.privileged,
                user: req.user.clone(),
                tty: req.tty,
                entrypoint,
                arguments: cmd,
            },
            open_stdin: req.attach_stdin,
            open_stderr: req.attach_stderr,
            open_stdout: req.attach_stdout,
            can_remove: !state.running,
            container_id: exec.container_id.clone(),
            detach_keys: req.detach_keys.clone().unwrap_or_default(),
            pid: i64::from(state.pid),
        })
    }

    /// SIGKILL an exec's process (a health probe past its timeout).
    pub(super) async fn exec_kill(&self, id: &str) {
        let Ok(exec) = self.exec_lookup(id) else { return };
        if let Err(e) = self.containerd.exec_kill(&exec.container_id, id, libc::SIGKILL as u32).await {
            tracing::debug!(exec.id = %id, error = %e, "killing an exec");
        }
    }

    /// Drop an exec nobody will inspect (a finished health probe).
    pub(super) fn exec_forget(&self, id: &str) {
        self.execs.by_id.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Forget every exec of a container that stopped or goes away, as
    /// dockerd's clean-up after an exit does: a later start, inspect or
    /// resize of one answers 404 "No such exec instance", and a
    /// long-running container's finished execs do not pile up.
    pub(super) fn execs_forget_container(&self, container_id: &str) {
        let mut dropped = Vec::new();
        self.execs.by_id.write().unwrap_or_else(|e| e.into_inner()).retain(|id, exec| {
            let keep = exec.container_id != container_id;
            if !keep {
                dropped.push(id.clone());
            }
            keep
        });
        // An exec whose exit event comes later is no longer found there,
        // so its FIFOs go now.
        for id in dropped {
            self.exec_remove_fifos(container_id, &id);
        }
    }

    pub async fn exec_resize(&self, id: &str, height: u32, width: u32) -> Result<(), ServiceError> {
        let exec = self.exec_lookup(id)?;
        if !exec.state.lock().await.running {
            return Err(ServiceError::Conflict(format!("exec {id} is not running")));
        }
        self.containerd.resize_pty(&exec.container_id, &exec.id, width, height).await?;
        Ok(())
    }

    /// Resize the container's own TTY.
    pub async fn resize(&self, name: &str, height: u32, width: u32) -> Result<(), ServiceError> {
        let entry = self.lookup(name)?;
        let record = entry.record.lock().await;
        if !record.state.status.is_live() {
            return Err(ServiceError::Conflict(format!("Container {} is not running", record.id)));
        }
        self.containerd.resize_pty(&record.id, "", width, height).await?;
        self.emit(&record, "resize", &[("height", height.to_string()), ("width", width.to_string())]);
        Ok(())
    }
}
