//! containerd tasks: the running process of a container.

use std::collections::HashMap;
use std::path::Path;

use containerd_client::services::v1::{
    tasks_client::TasksClient, CreateTaskRequest, DeleteTaskRequest, GetRequest, KillRequest,
    ListPidsRequest, ListTasksRequest, PauseTaskRequest, ResumeTaskRequest, StartRequest, UpdateTaskRequest,
};
use containerd_client::types::v1::{Process, Status};
use containerd_client::types::Mount as ProtoMount;

use super::{Containerd, ContainerdError, ErrorKind};

fn state_of(p: &Process) -> (TaskState, u32) {
    let state = match Status::try_from(p.status).unwrap_or(Status::Unknown) {
        Status::Created => TaskState::Created,
        Status::Running => TaskState::Running,
        Status::Paused | Status::Pausing => TaskState::Paused,
        Status::Stopped => TaskState::Stopped { exit_status: p.exit_status },
        Status::Unknown => TaskState::Unknown,
    };
    (state, p.pid)
}

const RESOURCES_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// A mount as containerd's snapshotter describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// The FIFOs (or empty strings) a task's stdio is wired to.
#[derive(Debug, Clone, Default)]
pub struct TaskIo<'a> {
    pub stdin: Option<&'a Path>,
    pub stdout: Option<&'a Path>,
    pub stderr: Option<&'a Path>,
    pub terminal: bool,
}

/// A task's state as containerd reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Created,
    Running,
    Paused,
    Stopped { exit_status: u32 },
    Unknown,
}

fn path_text(p: Option<&Path>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

impl Containerd {
    /// Create the task (the process, not yet started); returns its PID.
    pub async fn task_create(&self, id: &str, rootfs: &[Mount], io: TaskIo<'_>) -> Result<u32, ContainerdError> {
        let req = CreateTaskRequest {
            container_id: id.to_string(),
            rootfs: rootfs
                .iter()
                .map(|m| ProtoMount {
                    r#type: m.kind.clone(),
                    source: m.source.clone(),
                    options: m.options.clone(),
                    ..Default::default()
                })
                .collect(),
            stdin: path_text(io.stdin),
            stdout: path_text(io.stdout),
            stderr: path_text(io.stderr),
            terminal: io.terminal,
            ..Default::default()
        };
        Ok(TasksClient::new(self.channel.clone())
            .create(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.create", s))?
            .into_inner()
            .pid)
    }

    pub async fn task_start(&self, id: &str) -> Result<u32, ContainerdError> {
        Ok(TasksClient::new(self.channel.clone())
            .start(self.request(StartRequest { container_id: id.to_string(), exec_id: String::new() }))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.start", s))?
            .into_inner()
            .pid)
    }

    pub async fn task_kill(&self, id: &str, signal: u32) -> Result<(), ContainerdError> {
        let req = KillRequest { container_id: id.to_string(), exec_id: String::new(), signal, all: false };
        TasksClient::new(self.channel.clone())
            .kill(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.kill", s))?;
        Ok(())
    }

    pub async fn task_pause(&self, id: &str) -> Result<(), ContainerdError> {
        TasksClient::new(self.channel.clone())
            .pause(self.request(PauseTaskRequest { container_id: id.to_string() }))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.pause", s))?;
        Ok(())
    }

    pub async fn task_resume(&self, id: &str) -> Result<(), ContainerdError> {
        TasksClient::new(self.channel.clone())
            .resume(self.request(ResumeTaskRequest { container_id: id.to_string() }))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.resume", s))?;
        Ok(())
    }

    /// Change a running task's cgroup limits; `resources` is the OCI
    /// `LinuxResources` object.
    pub async fn task_update(&self, id: &str, resources: &serde_json::Value) -> Result<(), ContainerdError> {
        let value = serde_json::to_vec(resources).map_err(|e| ContainerdError::invalid("tasks.update", e))?;
        let req = UpdateTaskRequest {
            container_id: id.to_string(),
            resources: Some(prost_types::Any { type_url: RESOURCES_TYPE_URL.to_string(), value }),
            ..Default::default()
        };
        TasksClient::new(self.channel.clone())
            .update(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.update", s))?;
        Ok(())
    }

    /// Delete a stopped task; a missing one is not an error. Returns the exit
    /// status when there was a task.
    pub async fn task_delete(&self, id: &str) -> Result<Option<u32>, ContainerdError> {
        let mut client = TasksClient::new(self.channel.clone());
        let request = self.request(DeleteTaskRequest { container_id: id.to_string() });
        let answer = self
            .to_completion(async move { client.delete(request).await })
            .await
            .unwrap_or_else(|e| Err(tonic::Status::internal(e.to_string())));
        match answer {
            Ok(r) => Ok(Some(r.into_inner().exit_status)),
            Err(s) => match ContainerdError::from_status("tasks.delete", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    /// The task's state, `None` when the container has no task.
    pub async fn task_state(&self, id: &str) -> Result<Option<(TaskState, u32)>, ContainerdError> {
        let resp = TasksClient::new(self.channel.clone())
            .get(self.request(GetRequest { container_id: id.to_string(), exec_id: String::new() }))
            .await;
        let process = match resp {
            Ok(r) => r.into_inner().process,
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) => return Err(ContainerdError::from_status("tasks.get", s)),
        };
        Ok(process.as_ref().map(state_of))
    }

    /// Every task of the namespace with its state and PID, by container ID:
    /// one call where a `task_state` per container would be as many (the
    /// start-up of a daemon with many containers).
    pub async fn task_states(&self) -> Result<HashMap<String, (TaskState, u32)>, ContainerdError> {
        let tasks = TasksClient::new(self.channel.clone())
            .list(self.request(ListTasksRequest { filter: String::new() }))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.list", s))?
            .into_inner()
            .tasks;
        Ok(tasks.iter().map(|p| (p.id.clone(), state_of(p))).collect())
    }

    /// The PIDs (host view) of every process in the container's task.
    pub async fn task_pids(&self, id: &str) -> Result<Vec<u32>, ContainerdError> {
        Ok(TasksClient::new(self.channel.clone())
            .list_pids(self.request(ListPidsRequest { container_id: id.to_string() }))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.list_pids", s))?
            .into_inner()
            .processes
            .into_iter()
            .map(|p| p.pid)
            .collect())
    }
}
