//! `docker exec`: create, start and inspect shapes.

use serde::{Deserialize, Serialize};

use crate::container::{null_default, str_slice};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecCreateRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stderr: bool,
    #[serde(default)]
    pub detach_keys: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub tty: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_default")]
    pub working_dir: String,
    #[serde(default)]
    pub console_size: Option<[u32; 2]>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecStartRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub detach: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub tty: bool,
    #[serde(default)]
    pub console_size: Option<[u32; 2]>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessConfig {
    pub privileged: bool,
    pub user: String,
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub process_config: ProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub detach_keys: String,
    pub pid: i64,
}
