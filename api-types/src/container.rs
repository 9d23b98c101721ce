//! Containers: the create body, inspect, list and wait shapes.
//!
//! Requests are tolerant (unknown fields ignored, `null` for empty,
//! `Cmd`/`Entrypoint` as a string or a list). Responses carry every field
//! dockerd sends, with dockerd's empty values. `HostConfig` keeps the fields
//! berthd does not act on yet verbatim, so inspect returns what was sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// `null` or missing → the type's default.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's `StrSlice`: a JSON string or a list of strings; `null` stays
/// `None`.
pub fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// The container's `Config` (also the image config's `config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "null_default")]
    pub hostname: String,
    #[serde(default, deserialize_with = "null_default")]
    pub domainname: String,
    #[serde(default, deserialize_with = "null_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, deserialize_with = "null_default")]
    pub tty: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, deserialize_with = "null_default")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, deserialize_with = "null_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(default, deserialize_with = "null_default")]
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub config: BTreeMap<String, String>,
}

/// `HostConfig`: typed where berthd acts on a field, the rest kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub network_mode: String,
    #[serde(default, deserialize_with = "null_default")]
    pub restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "null_default")]
    pub auto_remove: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub log_config: LogConfig,
    #[serde(default)]
    pub cap_add: Option<Vec<String>>,
    #[serde(default)]
    pub cap_drop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub init: Option<bool>,
    #[serde(default, deserialize_with = "null_default")]
    pub memory: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub memory_swap: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_shares: i64,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub runtime: String,
    #[serde(default)]
    pub console_size: Option<[u32; 2]>,
    /// `--mount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<crate::mount::Mount>>,
    /// `--tmpfs`: destination → mount options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `--volumes-from`: `container[:ro|:rw]`.
    #[serde(default)]
    pub volumes_from: Option<Vec<String>>,
    /// Fields berthd does not act on yet, returned as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `POST /containers/create` body: `Config` fields at the top level plus
/// `HostConfig` and `NetworkingConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking_config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "Running")]
    pub running: bool,
    #[serde(rename = "Paused")]
    pub paused: bool,
    #[serde(rename = "Restarting")]
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    #[serde(rename = "Dead")]
    pub dead: bool,
    #[serde(rename = "Pid")]
    pub pid: i64,
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "StartedAt")]
    pub started_at: String,
    #[serde(rename = "FinishedAt")]
    pub finished_at: String,
    /// Only for containers with a health check.
    #[serde(rename = "Health", default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `State.Health`: the health check's verdict and its latest probes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthcheckResult>,
}

/// One probe: RFC 3339 times, its exit code (-1 when it timed out or
/// could not run) and its output (at most 4096 bytes, then `...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub sandbox_key: String,
    pub ports: BTreeMap<String, serde_json::Value>,
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: i64,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<serde_json::Value>>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<serde_json::Value>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    pub mac_address: String,
    pub networks: BTreeMap<String, serde_json::Value>,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    /// With `size=1` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<serde_json::Value>,
    pub config: ContainerConfig,
    pub network_settings: NetworkSettings,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworkSettings,
    pub mounts: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    pub networks: BTreeMap<String, serde_json::Value>,
}

/// `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerWaitResponse {
    pub status_code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    pub message: String,
}

/// `POST /containers/{id}/update` body: the resources and restart policy
/// to change. The CLI sends every field; zero means "leave as is".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUpdateRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub memory: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub memory_swap: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub memory_reservation: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_shares: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_period: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_quota: i64,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub cpuset_cpus: String,
    #[serde(default, deserialize_with = "null_default")]
    pub cpuset_mems: String,
    #[serde(default, deserialize_with = "null_default")]
    pub blkio_weight: u16,
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUpdateResponse {
    pub warnings: Vec<String>,
}

/// `POST /containers/prune`; dockerd sends `null` when nothing was deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPruneResponse {
    pub containers_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

/// `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_is_tolerant() {
        let body: ContainerCreateRequest = serde_json::from_str(
            r#"{"Image":"busybox","Cmd":"echo hi","Entrypoint":null,"Env":null,"Labels":null,
                "HostConfig":{"AutoRemove":true,"Binds":null,"ShmSize":0,"Unknown":{"a":1}},
                "NetworkingConfig":{"EndpointsConfig":{}},"Whatever":1}"#,
        )
        .unwrap();
        assert_eq!(body.config.image, "busybox");
        assert_eq!(body.config.cmd, Some(vec!["echo hi".to_string()]));
        assert!(body.config.labels.is_empty());
        assert!(body.host_config.auto_remove);
        assert_eq!(body.host_config.other["ShmSize"], 0);
        assert_eq!(body.host_config.other["Unknown"]["a"], 1);
    }

    #[test]
    fn host_config_round_trips_unknown_fields() {
        let text = r#"{"NetworkMode":"none","Dns":["1.1.1.1"],"AutoRemove":false}"#;
        let hc: HostConfig = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&hc).unwrap();
        assert_eq!(back["Dns"][0], "1.1.1.1");
        assert_eq!(back["NetworkMode"], "none");
    }
}
