//! Extra processes in a running task (`docker exec`), and TTY sizes.

use containerd_client::services::v1::{
    tasks_client::TasksClient, CloseIoRequest, DeleteProcessRequest, ExecProcessRequest, KillRequest, ResizePtyRequest,
    StartRequest,
};
use prost_types::Any;

use super::{Containerd, ContainerdError, ErrorKind, TaskIo};

const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

fn path_text(p: Option<&std::path::Path>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

impl Containerd {
    /// Add a process (the OCI `process` object) to a container's task.
    pub async fn exec_create(
        &self,
        container_id: &str,
        exec_id: &str,
        process: &serde_json::Value,
        io: TaskIo<'_>,
    ) -> Result<(), ContainerdError> {
        let spec = serde_json::to_vec(process).map_err(|e| ContainerdError::invalid("tasks.exec", e))?;
        let req = ExecProcessRequest {
            container_id: container_id.to_string(),
            stdin: path_text(io.stdin),
            stdout: path_text(io.stdout),
            stderr: path_text(io.stderr),
            terminal: io.terminal,
            spec: Some(Any { type_url: PROCESS_TYPE_URL.to_string(), value: spec }),
            exec_id: exec_id.to_string(),
        };
        TasksClient::new(self.channel.clone())
            .exec(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.exec", s))?;
        Ok(())
    }

    pub async fn exec_start(&self, container_id: &str, exec_id: &str) -> Result<u32, ContainerdError> {
        let req = StartRequest { container_id: container_id.to_string(), exec_id: exec_id.to_string() };
        Ok(TasksClient::new(self.channel.clone())
            .start(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.start", s))?
            .into_inner()
            .pid)
    }

    /// Remove an exited process; returns its exit status if it existed.
    pub async fn exec_delete(&self, container_id: &str, exec_id: &str) -> Result<Option<u32>, ContainerdError> {
        let req = DeleteProcessRequest { container_id: container_id.to_string(), exec_id: exec_id.to_string() };
        match TasksClient::new(self.channel.clone()).delete_process(self.request(req)).await {
            Ok(r) => Ok(Some(r.into_inner().exit_status)),
            Err(s) => match ContainerdError::from_status("tasks.delete_process", s) {
                e if e.kind() == ErrorKind::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }

    /// End a process's stdin: the shim holds the FIFO open, so closing our
    /// end alone is not an EOF for the process.
    pub async fn close_stdin(&self, container_id: &str, exec_id: &str) -> Result<(), ContainerdError> {
        let req = CloseIoRequest { container_id: container_id.to_string(), exec_id: exec_id.to_string(), stdin: true };
        TasksClient::new(self.channel.clone())
            .close_io(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.close_io", s))?;
        Ok(())
    }

    /// Resize the TTY of the init process (`exec_id` empty) or an exec.
    pub async fn resize_pty(&self, container_id: &str, exec_id: &str, width: u32, height: u32) -> Result<(), ContainerdError> {
        let req = ResizePtyRequest { container_id: container_id.to_string(), exec_id: exec_id.to_string(), width, height };
        TasksClient::new(self.channel.clone())
            .resize_pty(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.resize_pty", s))?;
        Ok(())
    }

    /// Signal an exec's process.
    pub async fn exec_kill(&self, container_id: &str, exec_id: &str, signal: u32) -> Result<(), ContainerdError> {
        let req = KillRequest { container_id: container_id.to_string(), exec_id: exec_id.to_string(), signal, all: false };
        TasksClient::new(self.channel.clone())
            .kill(self.request(req))
            .await
            .map_err(|s| ContainerdError::from_status("tasks.kill", s))?;
        Ok(())
    }
}
