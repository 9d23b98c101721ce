//! The `HostConfig` fields that the container record keeps as sent (in
//! `HostConfig.other`), read as types for the spec.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use api_types::container::HostConfig;

use crate::config::container_defaults::Ulimit;

/// `--device /dev/fuse:/dev/fuse:rwm`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    #[serde(default)]
    pub path_in_container: String,
    #[serde(default)]
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostExtras {
    pub ulimits: Option<Vec<Ulimit>>,
    pub devices: Option<Vec<DeviceMapping>>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub ipc_mode: Option<String>,
    pub pid_mode: Option<String>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: Option<String>,
    pub cgroupns_mode: Option<String>,
    pub oom_score_adj: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<u16>,
    pub shm_size: Option<i64>,
}

impl HostExtras {
    /// Fields of the wrong type read as unset; create has validated them.
    pub fn of(hc: &HostConfig) -> Self {
        let known = [
            "Ulimits", "Devices", "DeviceCgroupRules", "Sysctls", "IpcMode", "PidMode", "UTSMode", "CgroupnsMode",
            "OomScoreAdj", "CpusetCpus", "CpusetMems", "BlkioWeight", "ShmSize",
        ];
        let subset: serde_json::Map<String, Value> = known
            .iter()
            .filter_map(|k| hc.other.get(*k).filter(|v| !v.is_null()).map(|v| (k.to_string(), v.clone())))
            .collect();
        Self::parse(Value::Object(subset)).unwrap_or_default()
    }

    /// Strictly, for create's validation.
    pub fn parse(subset: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(subset)
    }

    pub fn ipc_mode(&self) -> &str {
        self.ipc_mode.as_deref().unwrap_or("")
    }

    pub fn pid_mode(&self) -> &str {
        self.pid_mode.as_deref().unwrap_or("")
    }

    pub fn uts_mode(&self) -> &str {
        self.uts_mode.as_deref().unwrap_or("")
    }

    pub fn cgroupns_mode(&self) -> &str {
        self.cgroupns_mode.as_deref().unwrap_or("")
    }
}
