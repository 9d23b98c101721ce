//! The container as berthd remembers it: Docker's config and state, saved
//! under the data-root before each action it describes.

use serde::{Deserialize, Serialize};

use api_types::container::{ContainerConfig, HostConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// A task exists and has not exited.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds; Go's zero time when never set.
    pub started_at: String,
    pub finished_at: String,
    /// Only for containers with a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<api_types::container::Health>,
}

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Default for State {
    fn default() -> Self {
        Self {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            health: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// With the leading slash, as dockerd stores it.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The image as the user named it (what `docker ps` shows).
    pub image_name: String,
    /// The image ID (config digest).
    pub image_id: String,
    /// The containerd image record the container was made from.
    pub image_ref: String,
    pub state: State,
    pub restart_count: i64,
    /// Set by an explicit stop/kill, so restart policies stand down.
    pub manually_stopped: bool,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// The volumes it mounts (named and anonymous); older records have none.
    #[serde(default)]
    pub volumes: Vec<super::volumes::VolumeMount>,
    /// Host binds taken from `--volumes-from` containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherited_binds: Vec<api_types::mount::Mount>,
    /// `NetworkingConfig.EndpointsConfig.<network>.Aliases` from the create
    /// (`--network-alias`, compose service names), by network as named.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub network_aliases: std::collections::BTreeMap<String, Vec<String>>,
    /// The bridge networks it joins at start, the mode's first; `None` on
    /// records older than multi-network support (the mode's network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<crate::services::networks::EndpointRequest>>,
    /// Legacy links to other containers (`--link`) on the default bridge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<super::links::Link>,
}

impl Container {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The name without the leading slash.
    pub fn bare_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }
}
