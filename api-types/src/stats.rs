//! `GET /containers/{id}/stats`: dockerd's `StatsResponse`, field for
//! field (cgroup v1 and v2 fill different parts; zero values where dockerd
//! sends them, omitted where Go's `omitempty` omits them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Go's zero `time.Time`, what `read`/`preread` hold when unset.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub online_cpus: u64,
    pub throttling_data: ThrottlingData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_usage: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failcnt: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStatEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Lists are `null` when the cgroup version has no such counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_queue_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_service_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_wait_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_merged_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub sectors_recursive: Option<Vec<BlkioStatEntry>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Windows-only counters; always empty here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStats {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsResponse {
    pub name: String,
    pub id: String,
    pub os_type: String,
    /// RFC 3339 with nanoseconds.
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub num_procs: u32,
    pub storage_stats: StorageStats,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

impl StatsResponse {
    /// What dockerd answers for a container that is not running: only the
    /// name and ID, every counter zero.
    pub fn empty(id: &str, name: &str) -> Self {
        Self {
            name: name.to_string(),
            id: id.to_string(),
            os_type: "linux".into(),
            read: ZERO_TIME.into(),
            preread: ZERO_TIME.into(),
            pids_stats: PidsStats::default(),
            blkio_stats: BlkioStats::default(),
            num_procs: 0,
            storage_stats: StorageStats::default(),
            cpu_stats: CpuStats::default(),
            precpu_stats: CpuStats::default(),
            memory_stats: MemoryStats::default(),
            networks: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_have_dockerd_shape() {
        let v = serde_json::to_value(StatsResponse::empty("abc", "/web")).unwrap();
        assert_eq!(v["read"], ZERO_TIME);
        assert_eq!(v["memory_stats"], serde_json::json!({}));
        assert_eq!(v["pids_stats"], serde_json::json!({}));
        assert_eq!(v["blkio_stats"]["io_service_bytes_recursive"], serde_json::Value::Null);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(v["cpu_stats"].get("system_cpu_usage").is_none());
        assert!(v.get("networks").is_none());
    }
}
